//! The SQLite backend: one WAL-mode database file behind a sqlx pool, migrated when opened.
//! Every statement Grantbox runs against SQLite is in this file; a PostgreSQL file will
//! mirror it function for function.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Executor, QueryBuilder, Row, Sqlite, SqliteConnection, Transaction};

use super::group_commit::{GroupCommit, Presented, TokenWriter};
use super::{
    Client, CodeRecord, GrantOrigin, KvUsage, NewCode, NewToken, ROTATION_RACE_WINDOW,
    RedeemOutcome, RotateOutcome, StoreError, StoreErrorKind, TokenKind, TokenRecord, User,
    audience_from_column, audience_to_column, from_json, join_scope, split_scope, to_hash, to_json,
    to_kind,
};

/// The SQLite backend. Cloning shares the pools.
///
/// SQLite lets one connection write at a time. Writers that meet a held lock
/// wait in SQLite's busy handler, which sleeps 1, 2, 5, 10, ... ms between
/// tries: under 64 concurrent token requests that sleep was the p99. So every
/// write goes through `writer`, a pool of exactly one connection, where
/// waiting writers queue in sqlx's fair async acquire and are woken the moment
/// the connection is free. Reads use `readers`, which in WAL mode never wait
/// for the writer.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    readers: SqlitePool,
    writer: SqlitePool,
    /// Issued tokens, code redemptions and refresh rotations, written in
    /// groups through `writer`.
    tokens: GroupCommit,
    /// The connection that copies the WAL into the database (file databases).
    checkpointer: Option<SqlitePool>,
}

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a statement waits for another connection's write lock before
/// failing with [`StoreErrorKind::Unavailable`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the checkpointer copies committed pages from the WAL into the
/// database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// WAL size (in pages) beyond which the writer rewinds the WAL itself after
/// its next write (see [`checkpoint`]): the WAL stays near 16 MB.
const WAL_REWIND_PAGES: i64 = 4_000;

/// How long a caller waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows deleted per statement by `purge_expired`, so that each delete holds
/// the write lock only briefly and token requests slip in between.
const PURGE_BATCH: i64 = 500;

// Column lists as macros so that `concat!` can build `&'static str` statements.
macro_rules! token_columns {
    () => {
        "token_hash, kind, client_id, subject, scope, grant_id, issued_at, expires_at, grant_expires_at, audience, actor, revoked_at, rotated_at"
    };
}

macro_rules! code_columns {
    () => {
        "code_hash, client_id, subject, redirect_uri, scope, data, grant_id, issued_at, expires_at, redeemed_at"
    };
}

macro_rules! client_columns {
    () => {
        "client_id, secret_hash, name, redirect_uris, grant_types, scopes, public, trusted, created_at, client_uri, introspection"
    };
}

impl SqliteStore {
    pub(super) async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        if url.is_empty() {
            return Err(StoreError::new(
                StoreErrorKind::Other,
                "database url is empty",
            ));
        }
        let in_memory = matches!(url, ":memory:" | "sqlite::memory:" | "sqlite://:memory:")
            || (url.starts_with("sqlite:") && url.contains("mode=memory"));
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)
                .map_err(|e| error(format!("invalid database url `{url}`"), e))?
        } else if url == ":memory:" {
            SqliteConnectOptions::from_str("sqlite::memory:")
                .map_err(|e| error(format!("invalid database url `{url}`"), e))?
        } else {
            // A plain path is taken literally: no URL decoding, `?` is part of the name.
            SqliteConnectOptions::new().filename(url)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode, NORMAL syncs the WAL only at checkpoints, not at
            // each commit. A committed transaction is in the WAL file (in the
            // OS page cache) before COMMIT returns, so a process crash or
            // kill -9 never loses it; only a power loss or OS crash can roll
            // back the last commits, and the database stays consistent even
            // then. FULL would cost an fsync per commit, that is per token
            // request.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            // No connection checkpoints when it commits: by default the
            // commit that fills the WAL past 1,000 pages copies it into the
            // database, and every token request queued behind that commit
            // waits for it. The checkpointer does it beside the writer.
            .pragma("wal_autocheckpoint", "0")
            .foreign_keys(true);
        // No ping before each acquire: a SQLite connection is a file handle in
        // this process, not a socket that can go stale, and the ping is one
        // more round trip to the connection's worker thread per statement.
        let pool_options = SqlitePoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false);
        let connect = |pool_options: SqlitePoolOptions| {
            let options = options.clone();
            async move {
                pool_options
                    .connect_with(options)
                    .await
                    .map_err(|e| error(format!("cannot open database `{url}`"), e))
            }
        };
        // An in-memory database lives as long as one connection to it does:
        // keep exactly one, forever, for reading and writing alike.
        let (readers, writer, checkpointer) = if in_memory {
            let only = connect(
                pool_options
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None),
            )
            .await?;
            (only.clone(), only, None)
        } else {
            let writer = connect(pool_options.clone().max_connections(1)).await?;
            let checkpointer = connect(pool_options.clone().max_connections(1)).await?;
            (connect(pool_options).await?, writer, Some(checkpointer))
        };
        MIGRATOR.run(&writer).await.map_err(|e| {
            let kind = match &e {
                MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => kind_of(e),
                _ => StoreErrorKind::Other,
            };
            StoreError::with_cause(kind, format!("cannot migrate database `{url}`"), e)
        })?;
        let rewind = Arc::new(AtomicBool::new(false));
        let tokens = GroupCommit::spawn(Writer {
            pool: writer.clone(),
            rewind: rewind.clone(),
        });
        if let Some(checkpointer) = &checkpointer {
            tokio::spawn(checkpoint(checkpointer.clone(), rewind));
        }
        Ok(SqliteStore {
            readers,
            writer,
            tokens,
            checkpointer,
        })
    }

    /// The pool for others' writes (the session store): SQLite's one writer.
    pub(super) fn pool(&self) -> &SqlitePool {
        &self.writer
    }

    pub(super) async fn close(&self) {
        self.writer.close().await;
        self.readers.close().await;
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.close().await;
        }
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
            .await
            .map_err(|e| error("database does not answer", e))?;
        Ok(())
    }

    pub(super) async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        let what = || format!("client id `{}`", client.client_id);
        sqlx::query(concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&client.client_id)
        .bind(client.secret_hash.as_deref())
        .bind(client.name.as_deref())
        .bind(to_json(&client.redirect_uris, "redirect uris")?)
        .bind(to_json(&client.grant_types, "grant types")?)
        .bind(to_json(&client.scopes, "scopes")?)
        .bind(client.public)
        .bind(client.trusted)
        .bind(client.created_at)
        .bind(client.client_uri.as_deref())
        .bind(client.introspection)
        .execute(&self.writer)
        .await
        .map_err(|e| insert_error(what(), e))?;
        Ok(())
    }

    pub(super) async fn find_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE client_id = ?"
        ))
        .bind(client_id)
        .fetch_optional(&self.readers)
        .await
        .map_err(|e| error(format!("cannot read client `{client_id}`"), e))?;
        row.as_ref().map(client_from_row).transpose()
    }

    pub(super) async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients ORDER BY client_id"
        ))
        .fetch_all(&self.readers)
        .await
        .map_err(|e| error("cannot list clients", e))?;
        rows.iter().map(client_from_row).collect()
    }

    pub(super) async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (username, password_hash, subject, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.subject)
        .bind(user.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| insert_error(format!("user `{}`", user.username), e))?;
        Ok(())
    }

    pub(super) async fn find_user(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(
            "SELECT username, password_hash, subject, created_at FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.readers)
        .await
        .map_err(|e| error(format!("cannot read user `{username}`"), e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(User {
            username: get(&row, "username")?,
            password_hash: get(&row, "password_hash")?,
            subject: get(&row, "subject")?,
            created_at: get(&row, "created_at")?,
        }))
    }

    pub(super) async fn insert_tokens(
        &self,
        tokens: &[NewToken],
        origin: GrantOrigin,
    ) -> Result<(), StoreError> {
        if tokens.is_empty() {
            return Ok(());
        }
        self.tokens.insert(tokens, origin).await
    }

    pub(super) async fn find_token(
        &self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE token_hash = ? \
              AND revoked_at IS NULL AND rotated_at IS NULL AND expires_at > ?"
        ))
        .bind(&token_hash[..])
        .bind(now)
        .fetch_optional(&self.readers)
        .await
        .map_err(|e| error("cannot read token", e))?;
        row.as_ref().map(token_from_row).transpose()
    }

    pub(super) async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<u64, StoreError> {
        revoke_family(&self.writer, grant_id, now).await
    }

    pub(super) async fn revoke_token(
        &self,
        token_hash: &[u8; 32],
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write("revoke token").await?;
        let row =
            sqlx::query("SELECT kind, grant_id FROM tokens WHERE token_hash = ? AND client_id = ?")
                .bind(&token_hash[..])
                .bind(client_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| error(format!("cannot read token of client `{client_id}`"), e))?;
        let Some(row) = row else {
            rollback(tx, "revoke token").await?;
            return Ok(false);
        };
        let kind = to_kind(&get::<String>(&row, "kind")?)?;
        match kind {
            TokenKind::Refresh => {
                let grant_id: String = get(&row, "grant_id")?;
                revoke_family(&mut *tx, &grant_id, now).await?;
            }
            TokenKind::Access => {
                sqlx::query(
                    "UPDATE tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(&token_hash[..])
                .execute(&mut *tx)
                .await
                .map_err(|e| error(format!("cannot revoke token of client `{client_id}`"), e))?;
            }
        }
        commit(tx, "revoke token").await?;
        Ok(true)
    }

    pub(super) async fn insert_code(&self, code: &NewCode) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO codes (code_hash, client_id, subject, redirect_uri, scope, data, \
             grant_id, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&code.code_hash[..])
        .bind(&code.client_id)
        .bind(&code.subject)
        .bind(&code.redirect_uri)
        .bind(join_scope(&code.scope)?)
        .bind(to_json(&code.data, "code data")?)
        .bind(&code.grant_id)
        .bind(code.issued_at)
        .bind(code.expires_at)
        .execute(&self.writer)
        .await
        .map_err(|e| insert_error(format!("code of client `{}`", code.client_id), e))?;
        Ok(())
    }

    pub(super) async fn redeem_code(
        &self,
        code_hash: &[u8; 32],
        client_id: &str,
        now: i64,
    ) -> Result<RedeemOutcome, StoreError> {
        let code = Presented {
            hash: *code_hash,
            client_id: client_id.to_owned(),
            now,
        };
        if let Some(code) = self.tokens.redeem(code).await? {
            return Ok(RedeemOutcome::Redeemed(*code));
        }

        // Why not? Unknown, expired, or redeemed already (perhaps by a
        // request that won the race since): a replay, which revokes the grant.
        let mut tx = self.begin_write("redeem code").await?;
        let row = sqlx::query(
            "SELECT redeemed_at, grant_id FROM codes WHERE code_hash = ? AND client_id = ?",
        )
        .bind(&code_hash[..])
        .bind(client_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| error(format!("cannot read code of client `{client_id}`"), e))?;
        let Some(row) = row else {
            rollback(tx, "redeem code").await?;
            return Ok(RedeemOutcome::Unknown);
        };
        let redeemed_at: Option<i64> = get(&row, "redeemed_at")?;
        if redeemed_at.is_none() {
            // Present, this client's, not redeemed, yet the UPDATE missed: expired.
            rollback(tx, "redeem code").await?;
            return Ok(RedeemOutcome::Expired);
        }
        let grant_id: String = get(&row, "grant_id")?;
        sqlx::query("UPDATE codes SET replayed_at = COALESCE(replayed_at, ?) WHERE code_hash = ?")
            .bind(now)
            .bind(&code_hash[..])
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                error(
                    format!("cannot mark code of client `{client_id}` replayed"),
                    e,
                )
            })?;
        let revoked = revoke_family(&mut *tx, &grant_id, now).await?;
        commit(tx, "redeem code").await?;
        tracing::warn!(
            client_id,
            grant_id,
            revoked,
            "authorization code replayed; its grant is revoked"
        );
        Ok(RedeemOutcome::Replayed)
    }

    pub(super) async fn find_refresh(
        &self,
        token_hash: &[u8; 32],
        client_id: &str,
        now: i64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE token_hash = ? AND client_id = ? AND kind = 'refresh'"
        ))
        .bind(&token_hash[..])
        .bind(client_id)
        .fetch_optional(&self.readers)
        .await
        .map_err(|e| {
            error(
                format!("cannot read refresh token of client `{client_id}`"),
                e,
            )
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let record = token_from_row(&row)?;
        if record.rotated_at.is_some() {
            let revoked = revoke_family(&self.writer, &record.grant_id, now).await?;
            if revoked > 0 {
                tracing::warn!(
                    client_id,
                    grant_id = record.grant_id,
                    revoked,
                    "rotated refresh token reused; its grant is revoked"
                );
            }
            return Ok(None);
        }
        Ok(record.is_active(now).then_some(record))
    }

    pub(super) async fn rotate_refresh(
        &self,
        token_hash: &[u8; 32],
        client_id: &str,
        now: i64,
        new: &[NewToken],
    ) -> Result<RotateOutcome, StoreError> {
        let refresh_token = Presented {
            hash: *token_hash,
            client_id: client_id.to_owned(),
            now,
        };
        if let Some(old) = self.tokens.rotate(refresh_token, new).await? {
            return Ok(RotateOutcome::Rotated(old));
        }

        // Why not? Unknown, revoked, expired, or rotated already (perhaps by
        // a request that won the race since).
        let mut tx = self.begin_write("rotate refresh token").await?;
        let row = sqlx::query(
            "SELECT grant_id, expires_at, revoked_at, rotated_at FROM tokens \
             WHERE token_hash = ? AND client_id = ? AND kind = 'refresh'",
        )
        .bind(&token_hash[..])
        .bind(client_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| {
            error(
                format!("cannot read refresh token of client `{client_id}`"),
                e,
            )
        })?;
        let Some(row) = row else {
            rollback(tx, "rotate refresh token").await?;
            return Ok(RotateOutcome::Unknown);
        };
        let rotated_at: Option<i64> = get(&row, "rotated_at")?;
        let revoked_at: Option<i64> = get(&row, "revoked_at")?;
        let expires_at: i64 = get(&row, "expires_at")?;
        match rotated_at {
            Some(rotated_at) if now - rotated_at <= ROTATION_RACE_WINDOW => {
                rollback(tx, "rotate refresh token").await?;
                Ok(RotateOutcome::Unknown)
            }
            Some(_) => {
                let grant_id: String = get(&row, "grant_id")?;
                let revoked = revoke_family(&mut *tx, &grant_id, now).await?;
                commit(tx, "rotate refresh token").await?;
                tracing::warn!(
                    client_id,
                    grant_id,
                    revoked,
                    "rotated refresh token reused; its grant is revoked"
                );
                Ok(RotateOutcome::Reused)
            }
            None => {
                rollback(tx, "rotate refresh token").await?;
                if revoked_at.is_none() && expires_at <= now {
                    Ok(RotateOutcome::Expired)
                } else {
                    Ok(RotateOutcome::Unknown)
                }
            }
        }
    }

    pub(super) async fn kv_get(
        &self,
        namespace: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query(
            "SELECT value FROM kv WHERE namespace = ? AND key = ? \
             AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(namespace)
        .bind(key)
        .bind(now)
        .fetch_optional(&self.readers)
        .await
        .map_err(|e| {
            error(
                format!("cannot read key {key:?} of namespace `{namespace}`"),
                e,
            )
        })?;
        row.map(|row| get(&row, "value")).transpose()
    }

    pub(super) async fn kv_set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        expires_at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (namespace, key) \
             DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        )
        .bind(namespace)
        .bind(key)
        .bind(value)
        .bind(expires_at)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            error(
                format!("cannot set key {key:?} of namespace `{namespace}`"),
                e,
            )
        })?;
        Ok(())
    }

    pub(super) async fn kv_insert_new(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        // One statement: a live row makes the DO UPDATE a no-op (0 rows
        // changed); an expired row is overwritten as if absent.
        let result = sqlx::query(
            "INSERT INTO kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (namespace, key) \
             DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at \
             WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= ?",
        )
        .bind(namespace)
        .bind(key)
        .bind(value)
        .bind(expires_at)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            error(
                format!("cannot insert key {key:?} of namespace `{namespace}`"),
                e,
            )
        })?;
        Ok(result.rows_affected() == 1)
    }

    pub(super) async fn find_consent(
        &self,
        subject: &str,
        client_id: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let scope: Option<String> =
            sqlx::query_scalar("SELECT scope FROM consents WHERE subject = ? AND client_id = ?")
                .bind(subject)
                .bind(client_id)
                .fetch_optional(&self.readers)
                .await
                .map_err(|e| {
                    error(
                        format!("cannot read the consent of client `{client_id}`"),
                        e,
                    )
                })?;
        Ok(scope.map(|s| {
            s.split(' ')
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect()
        }))
    }

    pub(super) async fn save_consent(
        &self,
        subject: &str,
        client_id: &str,
        scope: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consents (subject, client_id, scope, granted_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (subject, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(subject)
        .bind(client_id)
        .bind(scope.join(" "))
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| error(format!("cannot save the consent of client `{client_id}`"), e))?;
        Ok(())
    }

    pub(super) async fn kv_usage(
        &self,
        namespace: &str,
        key: &str,
        now: i64,
    ) -> Result<KvUsage, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS keys, COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(value)), 0) AS bytes, \
             SUM(CASE WHEN key = ? THEN LENGTH(CAST(key AS BLOB)) + LENGTH(value) END) AS key_bytes \
             FROM kv WHERE namespace = ? AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(key)
        .bind(namespace)
        .bind(now)
        .fetch_one(&self.readers)
        .await
        .map_err(|e| error(format!("cannot measure namespace `{namespace}`"), e))?;
        let keys: i64 = get(&row, "keys")?;
        let bytes: i64 = get(&row, "bytes")?;
        let key_bytes: Option<i64> = get(&row, "key_bytes")?;
        Ok(KvUsage {
            keys: keys.max(0) as u64,
            bytes: bytes.max(0) as u64,
            key_bytes: key_bytes.map(|b| b.max(0) as u64),
        })
    }

    pub(super) async fn kv_delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM kv WHERE namespace = ? AND key = ?")
            .bind(namespace)
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(|e| {
                error(
                    format!("cannot delete key {key:?} of namespace `{namespace}`"),
                    e,
                )
            })?;
        Ok(result.rows_affected() > 0)
    }

    pub(super) async fn claim_decision(
        &self,
        transaction_hash: &[u8; 32],
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query("INSERT INTO decided_transactions (transaction_hash, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .bind(transaction_hash.as_slice())
            .bind(expires_at)
            .execute(&self.writer)
            .await
            .map_err(|e| error("cannot record an authorization decision".to_owned(), e))?
            .rows_affected();
        Ok(inserted == 1)
    }

    pub(super) async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        // Redeemed codes stay until they expire so that a replay is still
        // recognised (and revokes the grant) during the code's lifetime.
        const STATEMENTS: [(&str, &str); 4] = [
            (
                "codes",
                "DELETE FROM codes WHERE code_hash IN \
                 (SELECT code_hash FROM codes WHERE expires_at <= ? LIMIT ?)",
            ),
            (
                "tokens",
                "DELETE FROM tokens WHERE token_hash IN \
                 (SELECT token_hash FROM tokens WHERE expires_at <= ? LIMIT ?)",
            ),
            (
                "kv entries",
                "DELETE FROM kv WHERE (namespace, key) IN \
                 (SELECT namespace, key FROM kv WHERE expires_at <= ? LIMIT ?)",
            ),
            (
                "decided transactions",
                "DELETE FROM decided_transactions WHERE transaction_hash IN \
                 (SELECT transaction_hash FROM decided_transactions WHERE expires_at <= ? LIMIT ?)",
            ),
        ];
        let mut total = 0;
        for (what, statement) in STATEMENTS {
            loop {
                let deleted = sqlx::query(statement)
                    .bind(now)
                    .bind(PURGE_BATCH)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| error(format!("cannot purge expired {what}"), e))?
                    .rows_affected();
                total += deleted;
                if deleted < PURGE_BATCH as u64 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        Ok(total)
    }

    /// Starts a transaction that holds the write lock from its first statement.
    ///
    /// A plain (deferred) transaction that reads and then writes fails at
    /// once with SQLITE_BUSY, without waiting for the busy timeout, when
    /// another connection committed in between; `BEGIN IMMEDIATE` takes the
    /// lock up front and waits for it instead.
    async fn begin_write(&self, what: &str) -> Result<Transaction<'static, Sqlite>, StoreError> {
        begin_write(&self.writer, what).await
    }
}

async fn begin_write(
    writer: &SqlitePool,
    what: &str,
) -> Result<Transaction<'static, Sqlite>, StoreError> {
    writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| error(format!("cannot begin transaction to {what}"), e))
}

/// Inserts the rows with one multi-row `INSERT`.
async fn insert_rows<'c, E>(executor: E, tokens: &[&NewToken]) -> Result<(), StoreError>
where
    E: Executor<'c, Database = Sqlite>,
{
    let columns = tokens
        .iter()
        .map(|token| {
            Ok((
                join_scope(&token.scope)?,
                audience_to_column(&token.audience)?,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO tokens (token_hash, kind, client_id, subject, scope, grant_id, \
         issued_at, expires_at, grant_expires_at, audience, actor) ",
    );
    insert.push_values(
        tokens.iter().zip(columns),
        |mut row, (token, (scope, audience))| {
            row.push_bind(&token.token_hash[..])
                .push_bind(token.kind.as_str())
                .push_bind(&token.client_id)
                .push_bind(token.subject.as_deref())
                .push_bind(scope)
                .push_bind(&token.grant_id)
                .push_bind(token.issued_at)
                .push_bind(token.expires_at)
                .push_bind(token.grant_expires_at)
                .push_bind(audience)
                .push_bind(token.actor.as_deref());
        },
    );
    insert
        .build()
        .execute(executor)
        .await
        .map_err(|e| insert_error(format!("tokens of client `{}`", tokens[0].client_id), e))?;
    Ok(())
}

async fn revoke_family<'c, E>(executor: E, grant_id: &str, now: i64) -> Result<u64, StoreError>
where
    E: Executor<'c, Database = Sqlite>,
{
    let result =
        sqlx::query("UPDATE tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(grant_id)
            .execute(executor)
            .await
            .map_err(|e| error(format!("cannot revoke grant `{grant_id}`"), e))?;
    Ok(result.rows_affected())
}

async fn commit(tx: Transaction<'static, Sqlite>, what: &str) -> Result<(), StoreError> {
    tx.commit()
        .await
        .map_err(|e| error(format!("cannot commit transaction to {what}"), e))
}

async fn rollback(tx: Transaction<'static, Sqlite>, what: &str) -> Result<(), StoreError> {
    tx.rollback()
        .await
        .map_err(|e| error(format!("cannot roll back transaction to {what}"), e))
}

fn client_from_row(row: &SqliteRow) -> Result<Client, StoreError> {
    let client_id: String = get(row, "client_id")?;
    let list = |column: &'static str| -> Result<Vec<String>, StoreError> {
        from_json(
            &get::<String>(row, column)?,
            &format!("{column} of client `{client_id}`"),
        )
    };
    Ok(Client {
        secret_hash: get(row, "secret_hash")?,
        name: get(row, "name")?,
        client_uri: get(row, "client_uri")?,
        redirect_uris: list("redirect_uris")?,
        grant_types: list("grant_types")?,
        scopes: list("scopes")?,
        public: get(row, "public")?,
        trusted: get(row, "trusted")?,
        introspection: get(row, "introspection")?,
        created_at: get(row, "created_at")?,
        client_id,
    })
}

fn token_from_row(row: &SqliteRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        token_hash: to_hash(get(row, "token_hash")?, "token hash")?,
        kind: to_kind(&get::<String>(row, "kind")?)?,
        client_id: get(row, "client_id")?,
        subject: get(row, "subject")?,
        scope: split_scope(&get::<String>(row, "scope")?),
        grant_id: get(row, "grant_id")?,
        issued_at: get(row, "issued_at")?,
        expires_at: get(row, "expires_at")?,
        grant_expires_at: get(row, "grant_expires_at")?,
        audience: audience_from_column(get(row, "audience")?)?,
        actor: get(row, "actor")?,
        revoked_at: get(row, "revoked_at")?,
        rotated_at: get(row, "rotated_at")?,
    })
}

fn code_from_row(row: &SqliteRow) -> Result<CodeRecord, StoreError> {
    let client_id: String = get(row, "client_id")?;
    Ok(CodeRecord {
        code_hash: to_hash(get(row, "code_hash")?, "code hash")?,
        subject: get(row, "subject")?,
        redirect_uri: get(row, "redirect_uri")?,
        scope: split_scope(&get::<String>(row, "scope")?),
        data: from_json(
            &get::<String>(row, "data")?,
            &format!("data of a code of client `{client_id}`"),
        )?,
        grant_id: get(row, "grant_id")?,
        issued_at: get(row, "issued_at")?,
        expires_at: get(row, "expires_at")?,
        redeemed_at: get(row, "redeemed_at")?,
        client_id,
    })
}

fn get<'r, T>(row: &'r SqliteRow, column: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(column)
        .map_err(|e| error(format!("cannot read column `{column}`"), e))
}

/// Failed sign-in counters (`Store::find_login_failures` and the rest).
impl SqliteStore {
    pub(super) async fn find_login_failures(
        &self,
        counters: &[String],
        reset_before: i64,
    ) -> Result<Vec<super::LoginFailures>, StoreError> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT counter, failures, last_failure_at FROM login_failures WHERE last_failure_at > ",
        );
        query.push_bind(reset_before).push(" AND counter IN (");
        let mut list = query.separated(", ");
        for counter in counters {
            list.push_bind(counter);
        }
        list.push_unseparated(")");
        let rows = query
            .build()
            .fetch_all(&self.readers)
            .await
            .map_err(|e| error("cannot read the failed sign-in counters", e))?;
        rows.iter().map(login_failures_from_row).collect()
    }

    pub(super) async fn add_login_failure(
        &self,
        counters: &[&str],
        now: i64,
        reset_before: i64,
    ) -> Result<Vec<super::LoginFailures>, StoreError> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO login_failures (counter, failures, last_failure_at) ",
        );
        query.push_values(counters, |mut row, counter| {
            row.push_bind(*counter).push_bind(1_i64).push_bind(now);
        });
        query
            .push(
                " ON CONFLICT (counter) DO UPDATE SET failures = CASE \
                 WHEN login_failures.last_failure_at <= ",
            )
            .push_bind(reset_before)
            .push(
                " THEN 1 ELSE login_failures.failures + 1 END, \
                 last_failure_at = MAX(login_failures.last_failure_at, excluded.last_failure_at) \
                 RETURNING counter, failures, last_failure_at",
            );
        let rows = query
            .build()
            .fetch_all(&self.writer)
            .await
            .map_err(|e| error("cannot count a failed sign-in", e))?;
        rows.iter().map(login_failures_from_row).collect()
    }

    pub(super) async fn clear_login_failures(&self, counter: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE counter = ?")
            .bind(counter)
            .execute(&self.writer)
            .await
            .map_err(|e| {
                error(
                    format!("cannot clear the failed sign-in counter {counter:?}"),
                    e,
                )
            })?;
        Ok(())
    }

    pub(super) async fn purge_login_failures(&self, reset_before: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = sqlx::query(
                "DELETE FROM login_failures WHERE counter IN \
                 (SELECT counter FROM login_failures WHERE last_failure_at <= ? LIMIT ?)",
            )
            .bind(reset_before)
            .bind(PURGE_BATCH)
            .execute(&self.writer)
            .await
            .map_err(|e| error("cannot purge old failed sign-in counters", e))?
            .rows_affected();
            total += deleted;
            if deleted < PURGE_BATCH as u64 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }
}

fn login_failures_from_row(row: &SqliteRow) -> Result<super::LoginFailures, StoreError> {
    let column = |e| error("cannot read a failed sign-in counter", e);
    Ok(super::LoginFailures {
        counter: row.try_get("counter").map_err(column)?,
        failures: row.try_get("failures").map_err(column)?,
        last_failure_at: row.try_get("last_failure_at").map_err(column)?,
    })
}

/// A store error for a failed statement, with the portable kind of `err`.
fn error(message: impl Into<String>, err: sqlx::Error) -> StoreError {
    StoreError::with_cause(kind_of(&err), message, err)
}

/// A store error for a failed insert of `what`: "`what` already exists" for
/// a unique violation, so the message names the taken key.
fn insert_error(what: String, err: sqlx::Error) -> StoreError {
    let kind = kind_of(&err);
    let message = match err.as_database_error() {
        _ if kind == StoreErrorKind::Conflict => format!("{what} already exists"),
        Some(db) if db.is_foreign_key_violation() => {
            format!("cannot insert {what}: no such client")
        }
        _ => format!("cannot insert {what}"),
    };
    StoreError::with_cause(kind, message, err)
}

fn kind_of(err: &sqlx::Error) -> StoreErrorKind {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreErrorKind::Conflict,
        sqlx::Error::Database(db) => {
            // SQLite reports extended result codes; the low byte is the primary code.
            let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
            match code & 0xff {
                // BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL
                5 | 6 | 8 | 10 | 13 | 14 | 15 => StoreErrorKind::Unavailable,
                // CORRUPT, NOTADB
                11 | 26 => StoreErrorKind::Corrupt,
                _ => StoreErrorKind::Other,
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreErrorKind::Unavailable,
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => StoreErrorKind::Corrupt,
        _ => StoreErrorKind::Other,
    }
}

/// The statements of a [`GroupCommit`] batch, on the writer connection.
struct Writer {
    pool: SqlitePool,
    /// Set by [`checkpoint`] when the WAL has grown past [`WAL_REWIND_PAGES`].
    rewind: Arc<AtomicBool>,
}

impl Writer {
    /// After a write, when asked: checkpoint what `checkpoint` has not
    /// copied yet and rewind the WAL (`RESTART`). On the writer's own
    /// connection it waits for no other writer, only for readers still
    /// reading old pages, and most pages are copied already.
    async fn rewind_if_asked(&self) {
        if self.rewind.swap(false, Ordering::Relaxed)
            && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                .execute(&self.pool)
                .await
        {
            tracing::warn!(error = %e, "SQLite WAL rewind failed");
        }
    }
}

impl TokenWriter for Writer {
    type Tx = Transaction<'static, Sqlite>;

    async fn insert_alone(&self, rows: &[&NewToken]) -> Result<(), StoreError> {
        insert_rows(&self.pool, rows).await?;
        self.rewind_if_asked().await;
        Ok(())
    }

    /// SQLite's one writer serialises everything; no family needs a lock.
    async fn begin(&self, _continued: &[&str]) -> Result<Self::Tx, StoreError> {
        begin_write(&self.pool, "write tokens").await
    }

    async fn rotate(
        &self,
        tx: &mut Self::Tx,
        refresh_token: &Presented,
    ) -> Result<Option<TokenRecord>, StoreError> {
        rotate(tx, refresh_token).await
    }

    async fn redeem(
        &self,
        tx: &mut Self::Tx,
        code: &Presented,
    ) -> Result<Option<CodeRecord>, StoreError> {
        redeem(tx, code).await
    }

    async fn insert(&self, tx: &mut Self::Tx, rows: &[&NewToken]) -> Result<(), StoreError> {
        insert_rows(&mut **tx, rows).await
    }

    async fn revoke_if_replayed(
        &self,
        tx: &mut Self::Tx,
        grant_ids: &[&str],
    ) -> Result<(), StoreError> {
        let mut update = QueryBuilder::<Sqlite>::new(
            "UPDATE tokens SET revoked_at = issued_at \
             WHERE revoked_at IS NULL AND grant_id IN (",
        );
        let mut ids = update.separated(", ");
        for grant_id in grant_ids {
            ids.push_bind(*grant_id);
        }
        update.push(
            ") AND EXISTS (SELECT 1 FROM codes \
             WHERE codes.grant_id = tokens.grant_id AND codes.replayed_at IS NOT NULL)",
        );
        update
            .build()
            .execute(&mut **tx)
            .await
            .map_err(|e| error("cannot check replayed codes of the grants", e))?;
        Ok(())
    }

    async fn commit(&self, tx: Self::Tx) -> Result<(), StoreError> {
        commit(tx, "write tokens").await?;
        self.rewind_if_asked().await;
        Ok(())
    }
}

/// The single-use guarantee of rotation: only one UPDATE can see
/// `rotated_at IS NULL`. The token as it was, if this one did.
async fn rotate(
    tx: &mut SqliteConnection,
    refresh_token: &Presented,
) -> Result<Option<TokenRecord>, StoreError> {
    let Presented {
        hash,
        client_id,
        now,
    } = refresh_token;
    let rotated = sqlx::query(concat!(
        "UPDATE tokens SET rotated_at = ? \
         WHERE token_hash = ? AND client_id = ? AND kind = 'refresh' \
         AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > ? \
         RETURNING ",
        token_columns!()
    ))
    .bind(now)
    .bind(&hash[..])
    .bind(client_id)
    .bind(now)
    .fetch_optional(tx)
    .await
    .map_err(|e| {
        error(
            format!("cannot rotate refresh token of client `{client_id}`"),
            e,
        )
    })?;
    rotated.as_ref().map(token_from_row).transpose()
}

/// The single-use guarantee of codes: only one UPDATE can see `redeemed_at
/// IS NULL`. The code as it was, if this one did.
async fn redeem(
    tx: &mut SqliteConnection,
    code: &Presented,
) -> Result<Option<CodeRecord>, StoreError> {
    let Presented {
        hash,
        client_id,
        now,
    } = code;
    let redeemed = sqlx::query(concat!(
        "UPDATE codes SET redeemed_at = ? \
         WHERE code_hash = ? AND client_id = ? AND redeemed_at IS NULL AND expires_at > ? \
         RETURNING ",
        code_columns!()
    ))
    .bind(now)
    .bind(&hash[..])
    .bind(client_id)
    .bind(now)
    .fetch_optional(tx)
    .await
    .map_err(|e| error(format!("cannot redeem code of client `{client_id}`"), e))?;
    redeemed.as_ref().map(code_from_row).transpose()
}

/// Copies committed pages from the WAL into the database file every
/// [`CHECKPOINT_INTERVAL`], on a connection of its own, so that no token
/// request waits for it: `PASSIVE` never blocks the writer. The WAL is
/// rewound when a checkpoint has copied all of it and the next write
/// begins; under a load that never pauses that may not happen, so past
/// [`WAL_REWIND_PAGES`] this asks the writer to rewind it (`rewind`). Ends
/// when the store is closed.
async fn checkpoint(pool: SqlitePool, rewind: Arc<AtomicBool>) {
    let mut interval = tokio::time::interval(CHECKPOINT_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if pool.is_closed() {
            return;
        }
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await
        {
            Ok((_, wal_pages, _)) => {
                if wal_pages > WAL_REWIND_PAGES {
                    rewind.store(true, Ordering::Relaxed);
                }
            }
            Err(_) if pool.is_closed() => return,
            // The next round tries again; the WAL keeps every commit meanwhile.
            Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
        }
    }
}
