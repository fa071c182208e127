//! The login and transaction sessions (tower-sessions) in the same database as the
//! rest of the state, on either backend, so that a flow begun on one `grantbox`
//! process can finish on another that shares a PostgreSQL database.
//!
//! The session tables belong to `tower-sessions-sqlx-store`, which creates them;
//! [`SessionBackend`] picks its SQLite or PostgreSQL store and delegates to it.

use std::future::Future;
use std::pin::Pin;

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

/// What the `async_trait` methods of tower-sessions return.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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

// `SessionStore` and `ExpiredDeletion` are `#[async_trait]` traits; these are
// the signatures that macro generates, written out so the host needs no macro.
impl SessionStore for SessionBackend {
    fn create<'a, 'b, 'f>(&'a self, record: &'b mut Record) -> BoxFuture<'f, Result<()>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            match self {
                SessionBackend::Sqlite(s) => s.create(record).await,
                SessionBackend::Postgres(s) => s.create(record).await,
            }
        })
    }

    fn save<'a, 'b, 'f>(&'a self, record: &'b Record) -> BoxFuture<'f, Result<()>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            match self {
                SessionBackend::Sqlite(s) => s.save(record).await,
                SessionBackend::Postgres(s) => s.save(record).await,
            }
        })
    }

    fn load<'a, 'b, 'f>(&'a self, id: &'b Id) -> BoxFuture<'f, Result<Option<Record>>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            match self {
                SessionBackend::Sqlite(s) => s.load(id).await,
                SessionBackend::Postgres(s) => s.load(id).await,
            }
        })
    }

    fn delete<'a, 'b, 'f>(&'a self, id: &'b Id) -> BoxFuture<'f, Result<()>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            match self {
                SessionBackend::Sqlite(s) => s.delete(id).await,
                SessionBackend::Postgres(s) => s.delete(id).await,
            }
        })
    }
}

impl ExpiredDeletion for SessionBackend {
    fn delete_expired<'a, 'f>(&'a self) -> BoxFuture<'f, Result<()>>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            match self {
                SessionBackend::Sqlite(s) => s.delete_expired().await,
                SessionBackend::Postgres(s) => s.delete_expired().await,
            }
        })
    }
}
