//! The SQLite backend: one WAL-mode database file behind a writer pool of one
//! connection, a reader pool and a checkpointer connection, migrated when opened.
//! The statements it shares with PostgreSQL are in `store/sql.rs`; this file keeps
//! what is SQLite's own: the pools, WAL checkpoints, `BEGIN IMMEDIATE`, the
//! replay check (its grant ids bound one by one), and what SQLite's error codes
//! mean.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteError, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, Transaction};

use super::group_commit::GroupCommit;
use super::registration::registration_operations;
use super::sql::{error, migrate_error, shared_operations};
use super::{StoreError, StoreErrorKind};

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

/// Starts a transaction that holds the write lock from its first statement.
///
/// A plain (deferred) transaction that reads and then writes fails at
/// once with SQLITE_BUSY, without waiting for the busy timeout, when
/// another connection committed in between; `BEGIN IMMEDIATE` takes the
/// lock up front and waits for it instead.
const BEGIN: &str = "BEGIN IMMEDIATE";

/// No family lock: SQLite's one writer serialises every write transaction.
const LOCK_FAMILY: Option<&str> = None;

shared_operations!(SqliteStore, Sqlite);
registration_operations!(SqliteStore, Sqlite);

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
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| migrate_error(url, e))?;
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
}

/// Revokes the tokens of those of `grant_ids` whose code was replayed (the
/// replay check of a [`GroupCommit`] batch), the ids bound one by one.
async fn revoke_replayed(
    tx: &mut Transaction<'static, Sqlite>,
    grant_ids: &[&str],
) -> Result<(), sqlx::Error> {
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
    update.build().execute(&mut **tx).await?;
    Ok(())
}

/// What a SQLite result code means. SQLite reports extended result codes;
/// the low byte is the primary code.
pub(super) fn error_kind(err: &SqliteError) -> StoreErrorKind {
    let code = sqlx::error::DatabaseError::code(err)
        .and_then(|c| c.parse::<i32>().ok())
        .unwrap_or(0);
    match code & 0xff {
        // BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL
        5 | 6 | 8 | 10 | 13 | 14 | 15 => StoreErrorKind::Unavailable,
        // CORRUPT, NOTADB
        11 | 26 => StoreErrorKind::Corrupt,
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
    async fn after_write(&self) {
        if self.rewind.swap(false, Ordering::Relaxed)
            && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                .execute(&self.pool)
                .await
        {
            tracing::warn!(error = %e, "SQLite WAL rewind failed");
        }
    }
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
