//! Dynamic client registration in the store (RFC 7591, RFC 7592): initial
//! access tokens, the registration of a client with its registration access
//! token in one transaction, and the check of that token. Updating and
//! deleting a client are the operator's operations (`store/manage.rs`). Only
//! SHA-256 hashes of the tokens are stored. The SQL, the same on both
//! backends, is the body of [`registration_operations!`], which
//! `store/sqlite.rs` and `store/postgres.rs` each expand once.

use super::{Client, Store, StoreError};

/// An initial access token as stored (`grantbox registration token create`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialAccessToken {
    pub token_hash: [u8; 32],
    /// Registrations it still allows; `None` for any number.
    pub uses_left: Option<i64>,
    pub created_at: i64,
    /// `None`: it never expires.
    pub expires_at: Option<i64>,
}

/// What [`Store::register_client`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// The client and its registration access token are stored.
    Registered,
    /// The initial access token is unknown, expired or used up (perhaps by a
    /// concurrent registration since it was checked): nothing was stored.
    InitialAccessTokenRefused,
}

impl Store {
    /// Stores an initial access token; an existing hash is a
    /// [`super::StoreErrorKind::Conflict`].
    pub async fn insert_initial_access_token(
        &self,
        token: &InitialAccessToken,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.insert_initial_access_token(token).await)
    }

    /// Whether the initial access token with this hash allows a registration
    /// at `now`: it exists, has not expired and has a use left. Does not use it.
    pub async fn initial_access_token_usable(
        &self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.initial_access_token_usable(token_hash, now).await)
    }

    /// Registers `client` with the registration access token whose hash is
    /// `registration_token_hash`, using the initial access token
    /// `initial_access_token` once (when given), all in one transaction: of
    /// concurrent registrations with a single-use token exactly one is
    /// stored. An existing client id is a [`super::StoreErrorKind::Conflict`].
    pub async fn register_client(
        &self,
        client: &Client,
        initial_access_token: Option<&[u8; 32]>,
        registration_token_hash: &[u8; 32],
        now: i64,
    ) -> Result<RegisterOutcome, StoreError> {
        on_backend!(self, s => s.register_client(client, initial_access_token, registration_token_hash, now).await)
    }

    /// Whether `token_hash` is the registration access token of `client_id`
    /// (false for a client registered by the operator, which has none).
    pub async fn registration_token_matches(
        &self,
        client_id: &str,
        token_hash: &[u8; 32],
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.registration_token_matches(client_id, token_hash).await)
    }
}

/// The registration operations for the store type `$store` on the sqlx
/// database `$db`: a module `registration_operations` in the expanding
/// backend file, which provides `BEGIN` (see `shared_operations!`).
macro_rules! registration_operations {
    ($store:ident, $db:ident) => {
        mod registration_operations {
            use super::operations::insert_client_row;
            use super::{$store, BEGIN};
            use $crate::store::registration::{InitialAccessToken, RegisterOutcome};
            use $crate::store::sql::{error, insert_error};
            use $crate::store::{Client, StoreError};

            impl $store {
                pub(in $crate::store) async fn insert_initial_access_token(
                    &self,
                    token: &InitialAccessToken,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO initial_access_tokens (token_hash, uses_left, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&token.token_hash[..])
                    .bind(token.uses_left)
                    .bind(token.created_at)
                    .bind(token.expires_at)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| insert_error("initial access token".into(), e))?;
                    Ok(())
                }

                pub(in $crate::store) async fn initial_access_token_usable(
                    &self,
                    token_hash: &[u8; 32],
                    now: i64,
                ) -> Result<bool, StoreError> {
                    let found: Option<i64> = sqlx::query_scalar(
                        "SELECT created_at FROM initial_access_tokens WHERE token_hash = $1 \
                         AND (expires_at IS NULL OR expires_at > $2) \
                         AND (uses_left IS NULL OR uses_left > 0)",
                    )
                    .bind(&token_hash[..])
                    .bind(now)
                    .fetch_optional(&self.writer)
                    .await
                    .map_err(|e| error("cannot read initial access tokens", e))?;
                    Ok(found.is_some())
                }

                pub(in $crate::store) async fn register_client(
                    &self,
                    client: &Client,
                    initial_access_token: Option<&[u8; 32]>,
                    registration_token_hash: &[u8; 32],
                    now: i64,
                ) -> Result<RegisterOutcome, StoreError> {
                    let what = || format!("client id `{}`", client.client_id);
                    let mut tx = self
                        .writer
                        .begin_with(BEGIN)
                        .await
                        .map_err(|e| error("cannot begin transaction to register a client", e))?;
                    if let Some(token_hash) = initial_access_token {
                        // One statement that only a usable token matches, so
                        // that two registrations cannot both take its last use.
                        let used = sqlx::query(
                            "UPDATE initial_access_tokens \
                             SET uses_left = CASE WHEN uses_left IS NULL THEN NULL ELSE uses_left - 1 END \
                             WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > $2) \
                             AND (uses_left IS NULL OR uses_left > 0)",
                        )
                        .bind(&token_hash[..])
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| error("cannot use an initial access token", e))?;
                        if used.rows_affected() != 1 {
                            tx.rollback()
                                .await
                                .map_err(|e| error("cannot roll back a registration", e))?;
                            return Ok(RegisterOutcome::InitialAccessTokenRefused);
                        }
                    }
                    insert_client_row(&mut *tx, client).await?;
                    sqlx::query(
                        "INSERT INTO registration_access_tokens (client_id, token_hash, issued_at) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(&client.client_id)
                    .bind(&registration_token_hash[..])
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| insert_error(format!("registration access token of {}", what()), e))?;
                    tx.commit()
                        .await
                        .map_err(|e| error(format!("cannot commit the registration of {}", what()), e))?;
                    Ok(RegisterOutcome::Registered)
                }

                pub(in $crate::store) async fn registration_token_matches(
                    &self,
                    client_id: &str,
                    token_hash: &[u8; 32],
                ) -> Result<bool, StoreError> {
                    let found: Option<i64> = sqlx::query_scalar(
                        "SELECT issued_at FROM registration_access_tokens \
                         WHERE client_id = $1 AND token_hash = $2",
                    )
                    .bind(client_id)
                    .bind(&token_hash[..])
                    .fetch_optional(&self.writer)
                    .await
                    .map_err(|e| {
                        error(format!("cannot read the registration access token of client `{client_id}`"), e)
                    })?;
                    Ok(found.is_some())
                }
            }
        }
    };
}

pub(super) use registration_operations;
