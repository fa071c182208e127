//! The PostgreSQL backend: a sqlx pool on one database shared by any number of
//! `grantbox` processes, migrated when opened. The statements it shares with
//! SQLite are in `store/sql.rs`; this file keeps what is PostgreSQL's own: the
//! pool and its URL settings, the family lock, the replay check (its grant ids
//! bound as one array), and what PostgreSQL's error codes mean.
//!
//! Transactions run at READ COMMITTED. Single use rests, as on SQLite, on one
//! `UPDATE … WHERE <not yet used> RETURNING`: PostgreSQL makes a concurrent
//! updater of the same row wait and re-check the condition, so exactly one wins.
//! What SQLite gets from its single writer, PostgreSQL gets from a transaction
//! lock per token family (`pg_advisory_xact_lock` on the grant id), taken
//! before any row of the family is touched: a replay or reuse that revokes a
//! family and a concurrent insert into that family are serialised, so tokens
//! are never left alive behind a revocation.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use super::group_commit::GroupCommit;
use super::registration::registration_operations;
use super::sql::{error, migrate_error, shared_operations};
use super::{StoreError, StoreErrorKind};

/// The PostgreSQL backend. Cloning shares the pool.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    /// The one pool, for reads and writes alike (the shared operations name
    /// both): PostgreSQL needs no writer connection of its own.
    readers: PgPool,
    writer: PgPool,
    /// Issued tokens, code redemptions and refresh rotations, written in
    /// groups.
    tokens: GroupCommit,
}

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Connections per process unless the URL says `pool_size=N`.
const DEFAULT_POOL_SIZE: u32 = 16;

/// Milliseconds a statement may run before the server cancels it, unless the
/// URL says `statement_timeout=MS`.
const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 5_000;

/// How long a caller waits for a pooled connection, including reconnecting
/// to a server that is down, before the request fails as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A plain transaction at READ COMMITTED; writers of one token family
/// serialise on [`LOCK_FAMILY`].
const BEGIN: &str = "BEGIN";

/// Serialises, until the transaction ends, every transaction that touches
/// the token family `$1` (see the file's doc).
const LOCK_FAMILY: Option<&str> = Some("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))");

shared_operations!(PostgresStore, Postgres);
registration_operations!(PostgresStore, Postgres);

/// What `open` takes from the URL besides what sqlx understands.
struct Settings {
    options: PgConnectOptions,
    pool_size: u32,
    statement_timeout_ms: u64,
}

/// Splits Grantbox's own parameters (`pool_size`, `statement_timeout`) off a
/// `postgres://` URL and parses the rest as sqlx connect options.
fn settings(url: &str) -> Result<Settings, StoreError> {
    let shown = redact(url);
    let invalid = |detail: String| {
        StoreError::new(
            StoreErrorKind::Other,
            format!("invalid database url `{shown}`: {detail}"),
        )
    };
    let mut parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    let mut pool_size = DEFAULT_POOL_SIZE;
    let mut statement_timeout_ms = DEFAULT_STATEMENT_TIMEOUT_MS;
    let mut rest = Vec::new();
    for (key, value) in parsed.query_pairs() {
        match key.as_ref() {
            "pool_size" => {
                pool_size = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| invalid(format!("pool_size {value:?} is not a count")))?;
            }
            "statement_timeout" => {
                statement_timeout_ms = value.parse().map_err(|_| {
                    invalid(format!("statement_timeout {value:?} is not milliseconds"))
                })?;
            }
            _ => rest.push((key.into_owned(), value.into_owned())),
        }
    }
    if rest.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(rest);
    }
    let options = PgConnectOptions::from_str(parsed.as_str())
        .map_err(|e| invalid(e.to_string()))?
        .application_name("grantbox")
        .options([("statement_timeout", statement_timeout_ms)]);
    Ok(Settings {
        options,
        pool_size,
        statement_timeout_ms,
    })
}

/// The URL without its password, for messages and logs.
pub(super) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "postgres://…".to_owned(),
    }
}

/// The channel `grantbox plugins reload --cluster` notifies, with a
/// request id as payload.
const RELOAD_CHANNEL: &str = "grantbox_plugins_reload";

/// The reload requests sent to every instance on a PostgreSQL database,
/// received on a connection of their own (`LISTEN`).
pub struct ReloadRequests {
    listener: sqlx::postgres::PgListener,
}

impl std::fmt::Debug for ReloadRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadRequests").finish_non_exhaustive()
    }
}

impl ReloadRequests {
    /// The next request id. A lost connection is opened again and listens
    /// again on the next call (requests sent meanwhile are lost); an error
    /// means it could not be, and the caller waits before calling again.
    pub async fn next(&mut self) -> Result<String, StoreError> {
        let notification = self
            .listener
            .recv()
            .await
            .map_err(|e| error("cannot receive plugin reload requests", e))?;
        Ok(notification.payload().to_owned())
    }
}

impl PostgresStore {
    /// Listens for reload requests; listening when this returns.
    pub(super) async fn reload_requests(&self) -> Result<ReloadRequests, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.writer)
            .await
            .map_err(|e| error("cannot listen for plugin reload requests", e))?;
        listener
            .listen(RELOAD_CHANNEL)
            .await
            .map_err(|e| error("cannot listen for plugin reload requests", e))?;
        Ok(ReloadRequests { listener })
    }

    /// Sends reload request `request_id` to every listening instance.
    pub(super) async fn request_reload(&self, request_id: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(RELOAD_CHANNEL)
            .bind(request_id)
            .execute(&self.writer)
            .await
            .map_err(|e| error("cannot send the plugin reload request", e))?;
        Ok(())
    }

    pub(super) async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let shown = redact(url);
        let settings = settings(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.pool_size)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(settings.options)
            .await
            .map_err(|e| error(format!("cannot open database `{shown}`"), e))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| migrate_error(&shown, e))?;
        tracing::debug!(
            pool_size = settings.pool_size,
            statement_timeout_ms = settings.statement_timeout_ms,
            "postgresql store open"
        );
        let tokens = GroupCommit::spawn(Writer { pool: pool.clone() });
        Ok(PostgresStore {
            readers: pool.clone(),
            writer: pool,
            tokens,
        })
    }

    pub(super) fn pool(&self) -> &PgPool {
        &self.writer
    }

    pub(super) async fn close(&self) {
        self.writer.close().await;
    }
}

/// Revokes the tokens of those of `grant_ids` whose code was replayed (the
/// replay check of a [`GroupCommit`] batch), the ids bound as one array.
async fn revoke_replayed(
    tx: &mut Transaction<'static, Postgres>,
    grant_ids: &[&str],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tokens SET revoked_at = issued_at \
         WHERE grant_id = ANY($1) AND revoked_at IS NULL \
         AND EXISTS (SELECT 1 FROM codes \
                     WHERE codes.grant_id = tokens.grant_id AND codes.replayed_at IS NOT NULL)",
    )
    .bind(grant_ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What a PostgreSQL SQLSTATE means.
pub(super) fn error_kind(err: &PgDatabaseError) -> StoreErrorKind {
    match err.code() {
        // Data corrupted, index corrupted.
        "XX001" | "XX002" => StoreErrorKind::Corrupt,
        // Serialization failure, deadlock: retrying may succeed.
        "40001" | "40P01" => StoreErrorKind::Unavailable,
        // Statement timeout or cancel; shutdown, crash, starting up.
        "57014" | "57P01" | "57P02" | "57P03" => StoreErrorKind::Unavailable,
        // Connection exceptions; insufficient resources (disk full,
        // out of memory, too many connections).
        c if c.starts_with("08") || c.starts_with("53") => StoreErrorKind::Unavailable,
        _ => StoreErrorKind::Other,
    }
}

/// The statements of a [`GroupCommit`] batch.
struct Writer {
    pool: PgPool,
}

impl Writer {
    /// Nothing to do after a write: the server checkpoints by itself.
    async fn after_write(&self) {}
}
