//! The PostgreSQL side of the harness: the server the tests may use
//! (`GRANTBOX_TEST_POSTGRES`), a fresh database per test, and SQL run
//! directly on a server's own database (SQLite or PostgreSQL).

use super::server::{Options, Server};

/// The environment variable naming the PostgreSQL server of the tests.
pub const POSTGRES_ENV: &str = "GRANTBOX_TEST_POSTGRES";

/// The PostgreSQL server of the tests, a URL of a user that may create
/// databases; `None`, with a note on stderr, when `GRANTBOX_TEST_POSTGRES` is
/// unset (`.ci/run` always sets it, so no PostgreSQL test is skipped in CI).
pub fn postgres_server(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("{test}: {POSTGRES_ENV} is not set; this postgresql test is skipped");
            None
        }
    }
}

/// Creates an empty database on `server` and returns its URL. Panics (the
/// test fails) when the server cannot be reached.
pub fn fresh_postgres_db(server: &str) -> String {
    use sqlx::Connection as _;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!(
        "e2e_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let mut admin = sqlx::PgConnection::connect(server)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_ENV}={server}: cannot connect: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let _ = admin.close().await;
    });
    let mut url = url::Url::parse(server).expect("GRANTBOX_TEST_POSTGRES is a url");
    url.set_path(&name);
    url.to_string()
}

impl Server {
    /// A server on a fresh PostgreSQL database, or `None` (with a note) when
    /// `GRANTBOX_TEST_POSTGRES` is unset.
    pub fn start_postgres(test: &str, mut options: Options) -> Option<Server> {
        let server = postgres_server(test)?;
        options.db = Some(fresh_postgres_db(&server));
        Some(Server::start_with(options))
    }
}

/// Runs `sql`, which returns one integer, on the server's own database
/// (its SQLite file, read beside the running server, or its PostgreSQL database).
pub fn query_integer(server: &Server, sql: &str) -> i64 {
    use sqlx::Connection as _;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        if server.db.starts_with("postgres") {
            let mut connection = sqlx::PgConnection::connect(&server.db)
                .await
                .unwrap_or_else(|e| panic!("{}: cannot connect: {e}", server.db));
            let value: i64 = sqlx::query_scalar(sql)
                .fetch_one(&mut connection)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let _ = connection.close().await;
            value
        } else {
            let mut connection = sqlx::SqliteConnection::connect(&server.db)
                .await
                .unwrap_or_else(|e| panic!("{}: cannot open: {e}", server.db));
            let value: i64 = sqlx::query_scalar(sql)
                .fetch_one(&mut connection)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let _ = connection.close().await;
            value
        }
    })
}
