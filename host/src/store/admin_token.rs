//! The SQL of admin tokens (migration 0014): insert, list, find by hash,
//! revoke. A macro expanded inside
//! [`shared_operations!`](super::sql::shared_operations) like the operator's
//! store operations, and the [`Store`] methods that dispatch to it. Only a
//! token's SHA-256 reaches the database.

use super::{Store, StoreError};

/// An admin token as stored: never the token, only its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminTokenRow {
    pub id: String,
    pub name: Option<String>,
    pub token_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Store {
    /// Stores a new admin token (its hash).
    pub async fn insert_admin_token(&self, token: &AdminTokenRow) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.insert_admin_token(token).await,
            Store::Postgres(s) => s.insert_admin_token(token).await,
        }
    }

    /// Every admin token, revoked and expired ones too, oldest first.
    pub async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenRow>, StoreError> {
        match self {
            Store::Sqlite(s) => s.list_admin_tokens().await,
            Store::Postgres(s) => s.list_admin_tokens().await,
        }
    }

    /// The admin token whose hash is `token_hash`, whatever its state.
    pub async fn find_admin_token(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<AdminTokenRow>, StoreError> {
        match self {
            Store::Sqlite(s) => s.find_admin_token(token_hash).await,
            Store::Postgres(s) => s.find_admin_token(token_hash).await,
        }
    }

    /// Marks the admin token `id` revoked at `now` (keeping an earlier
    /// revocation time); `false` when there is no such token.
    pub async fn revoke_admin_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.revoke_admin_token(id, now).await,
            Store::Postgres(s) => s.revoke_admin_token(id, now).await,
        }
    }
}

/// The admin token store operations, for the sqlx database `$db`, as
/// methods of `$store`; expanded in the `operations` module of each backend.
macro_rules! admin_token_operations {
    ($store:ident, $db:ident) => {
        impl $store {
            pub(in $crate::store) async fn insert_admin_token(
                &self,
                token: &$crate::store::AdminTokenRow,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO admin_tokens (id, name, token_hash, created_at, expires_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&token.id)
                .bind(token.name.as_deref())
                .bind(token.token_hash.as_slice())
                .bind(token.created_at)
                .bind(token.expires_at)
                .bind(token.revoked_at)
                .execute(&self.writer)
                .await
                .map_err(|e| error(format!("cannot store admin token `{}`", token.id), e))?;
                Ok(())
            }

            pub(in $crate::store) async fn list_admin_tokens(
                &self,
            ) -> Result<Vec<$crate::store::AdminTokenRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, name, token_hash, created_at, expires_at, revoked_at \
                     FROM admin_tokens ORDER BY created_at, id",
                )
                .fetch_all(&self.readers)
                .await
                .map_err(|e| error("cannot list the admin tokens", e))?;
                rows.iter().map(admin_token_from_row).collect()
            }

            pub(in $crate::store) async fn find_admin_token(
                &self,
                token_hash: &[u8],
            ) -> Result<Option<$crate::store::AdminTokenRow>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, name, token_hash, created_at, expires_at, revoked_at \
                     FROM admin_tokens WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.readers)
                .await
                .map_err(|e| error("cannot look up an admin token", e))?;
                row.as_ref().map(admin_token_from_row).transpose()
            }

            pub(in $crate::store) async fn revoke_admin_token(
                &self,
                id: &str,
                now: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE admin_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .execute(&self.writer)
                .await
                .map_err(|e| error(format!("cannot revoke admin token `{id}`"), e))?;
                Ok(done.rows_affected() == 1)
            }
        }

        fn admin_token_from_row(row: &Row) -> Result<$crate::store::AdminTokenRow, StoreError> {
            Ok($crate::store::AdminTokenRow {
                id: get(row, "id")?,
                name: get(row, "name")?,
                token_hash: get(row, "token_hash")?,
                created_at: get(row, "created_at")?,
                expires_at: get(row, "expires_at")?,
                revoked_at: get(row, "revoked_at")?,
            })
        }
    };
}

pub(super) use admin_token_operations;
