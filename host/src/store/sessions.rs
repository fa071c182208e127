//! The login and transaction sessions (tower-sessions) in the same database as the
//! rest of the state, on either backend, so that a flow begun on one `grantbox`
//! process can finish on another that shares a PostgreSQL database.
//!
//! The session tables belong to `tower-sessions-sqlx-store`, which creates them;
//! [`SessionBackend`] picks its SQLite or PostgreSQL store and delegates to it.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{ExpiredDeletion, Result, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::{Store, StoreError, StoreErrorKind};

/// The session store of a [`Store`]'s backend. Cloning shares the pool.
#[derive(Clone, Debug)]
pub enum SessionBackend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// `$call` on the session store of `$backend`, named `$s`.
macro_rules! on_backend {
    ($backend:expr, $s:ident => $call:expr) => {
        match $backend {
            SessionBackend::Sqlite($s) => $call,
            SessionBackend::Postgres($s) => $call,
        }
    };
}

impl SessionBackend {
    /// The session store on `store`'s pool, its table created if missing.
    pub async fn open(store: &Store) -> std::result::Result<SessionBackend, StoreError> {
        let migrate_error = |e: sqlx::Error| {
            StoreError::with_cause(
                StoreErrorKind::Unavailable,
                "cannot create the session table",
                e,
            )
        };
        match store {
            Store::Sqlite(s) => {
                let sessions = SqliteStore::new(s.pool().clone());
                sessions.migrate().await.map_err(migrate_error)?;
                Ok(SessionBackend::Sqlite(sessions))
            }
            Store::Postgres(s) => {
                let sessions = PostgresStore::new(s.pool().clone());
                sessions.migrate().await.map_err(migrate_error)?;
                Ok(SessionBackend::Postgres(sessions))
            }
        }
    }
}

#[async_trait]
impl SessionStore for SessionBackend {
    async fn create(&self, record: &mut Record) -> Result<()> {
        on_backend!(self, s => s.create(record).await)
    }

    async fn save(&self, record: &Record) -> Result<()> {
        on_backend!(self, s => s.save(record).await)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        on_backend!(self, s => s.load(id).await)
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        on_backend!(self, s => s.delete(id).await)
    }
}

#[async_trait]
impl ExpiredDeletion for SessionBackend {
    async fn delete_expired(&self) -> Result<()> {
        on_backend!(self, s => s.delete_expired().await)
    }
}
