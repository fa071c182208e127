//! Starts the real `grantbox` binary on a free port with its own database
//! (a SQLite file in a temporary directory, or a fresh PostgreSQL database
//! with `GRANTBOX_E2E_BACKEND=postgres`), captures its log, and runs its CLI.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::postgres::{POSTGRES_ENV, fresh_postgres_db};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

/// The `grantbox` binary `cargo test --workspace` built next to this test
/// (or `GRANTBOX_BIN`).
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("GRANTBOX_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test knows its path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join("grantbox");
    assert!(
        binary.is_file(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        binary.display()
    );
    binary
}

/// Compiled plugins are cached here across tests, as an operator's would be.
pub fn shared_cache_dir() -> PathBuf {
    workspace().join("target").join("e2e-plugin-cache")
}

/// The key-encryption key of every test server and command on PostgreSQL
/// (which has no key file beside the database): 32 bytes, base64url.
pub const TEST_KEY_ENCRYPTION_KEY: &str = "dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMzItYnl0ZXM";

/// `GRANTBOX_KEY_ENCRYPTION_KEY` for a server or command on `db`: the tests'
/// key on PostgreSQL, none on SQLite (the key file beside the database).
pub fn key_encryption_key_for(db: &str) -> Option<&'static str> {
    db.starts_with("postgres")
        .then_some(TEST_KEY_ENCRYPTION_KEY)
}

/// Runs a `grantbox` subcommand against a database.
pub fn grantbox(db: &str, args: &[&str], stdin: Option<&str>) -> Output {
    grantbox_with(db, args, stdin, &[])
}

/// [`grantbox`] with more environment variables (they win over the defaults).
pub fn grantbox_with(db: &str, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(binary());
    if let Some(key) = key_encryption_key_for(db) {
        command.env("GRANTBOX_KEY_ENCRYPTION_KEY", key);
    }
    command
        .args(args)
        .env("GRANTBOX_DB", db)
        .env("GRANTBOX_CACHE_DIR", shared_cache_dir())
        .env_remove("GRANTBOX_CONFIG");
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("grantbox starts");
    if let Some(input) = stdin {
        let written = child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes());
        // A command that refuses its arguments exits without reading stdin.
        if let Err(error) = written
            && error.kind() != std::io::ErrorKind::BrokenPipe
        {
            panic!("stdin does not accept: {error}");
        }
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("grantbox runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A new admin token on `db`, made through the CLI as an operator would.
pub fn create_admin_token(db: &str) -> String {
    let output = grantbox(db, &["admin", "token", "create", "--name", "e2e"], None);
    assert!(
        output.status.success(),
        "admin token create failed: {}",
        text(&output.stderr)
    );
    let token = text(&output.stdout).trim().to_owned();
    assert!(!token.is_empty() && !token.contains('\n'), "{token:?}");
    token
}

/// A running server, killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    /// The admin listener's URL (`--admin-listen 127.0.0.1:0`).
    pub admin: String,
    /// An admin token made with `grantbox admin token create` before start;
    /// [`Server::admin_request`], [`Server::admin_cli`] and
    /// [`Server::reload_plugins`] send it.
    pub admin_token: String,
    pub db: String,
    pub dir: Arc<tempfile::TempDir>,
    log: Arc<Mutex<String>>,
}

/// How to start a server.
#[derive(Default)]
pub struct Options {
    pub plugins: Option<PathBuf>,
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Reuse the database directory of an earlier server (restart tests).
    pub dir: Option<Arc<tempfile::TempDir>>,
    /// A database URL instead of a SQLite file in `dir` (e.g. from
    /// [`fresh_postgres_db`]).
    pub db: Option<String>,
    /// Start without `--admin-listen` (the default: no admin listener);
    /// `admin` is then empty.
    pub without_admin_listener: bool,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Server {
        let dir = options
            .dir
            .unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("a temporary directory")));
        let db = options.db.unwrap_or_else(|| default_db(dir.path()));
        let admin_token = create_admin_token(&db);
        let mut command = Command::new(binary());
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(&options.extra_args)
            .env("GRANTBOX_DB", &db)
            .env("GRANTBOX_CACHE_DIR", shared_cache_dir())
            .env("GRANTBOX_LOG", "info")
            .env_remove("GRANTBOX_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(plugins) = &options.plugins {
            command.arg("--plugins").arg(plugins);
        }
        if options.without_admin_listener {
            command.env_remove("GRANTBOX_ADMIN_LISTEN");
        } else {
            command.args(["--admin-listen", "127.0.0.1:0"]);
        }
        if let Some(key) = key_encryption_key_for(&db) {
            command.env("GRANTBOX_KEY_ENCRYPTION_KEY", key);
        }
        for (name, value) in &options.env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("grantbox serve starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // The admin line comes first, then the main one.
            let mut admin = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let first_word = |rest: &str| {
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                };
                if let Some(rest) = line.strip_prefix("grantbox admin listening on ") {
                    admin = first_word(rest);
                } else if let Some(rest) = line.strip_prefix("grantbox listening on ") {
                    let _ = sender.send((first_word(rest), admin.clone()));
                }
            }
        });
        let (base, admin) = match receiver.recv_timeout(Duration::from_secs(120)) {
            Ok(addresses) => addresses,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "grantbox serve did not start:\n{}",
                    log.lock().expect("log lock")
                );
            }
        };
        Server {
            child,
            base,
            admin,
            admin_token,
            db,
            dir,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The authorization server metadata document (RFC 8414).
    pub fn metadata(&self) -> serde_json::Value {
        super::http::http()
            .get(self.url("/.well-known/oauth-authorization-server"))
            .send()
            .expect("the metadata endpoint answers")
            .json()
            .expect("a JSON metadata document")
    }

    /// The Prometheus text of the admin listener's `/metrics`.
    pub fn metrics(&self) -> String {
        let response = self
            .admin_request(reqwest::Method::GET, "/metrics")
            .send()
            .expect("the admin listener answers");
        text(&response.bytes().expect("a metrics body"))
    }

    /// A request to the admin listener at `path`, with the admin token.
    pub fn admin_request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        super::http::http()
            .request(method, format!("{}{path}", self.admin))
            .bearer_auth(&self.admin_token)
    }

    /// `grantbox --admin <this server's admin URL> <args>` with the admin
    /// token in `GRANTBOX_ADMIN_TOKEN`: the command runs through the admin API.
    pub fn admin_cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut full = vec!["--admin", self.admin.as_str()];
        full.extend_from_slice(args);
        grantbox_with(
            &self.db,
            &full,
            stdin,
            &[("GRANTBOX_ADMIN_TOKEN", &self.admin_token)],
        )
    }

    /// `grantbox plugins reload` through this server's admin API.
    pub fn reload_plugins(&self) -> Output {
        self.admin_cli(&["plugins", "reload"], None)
    }

    /// Everything the server wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// The logs once a line satisfies `wanted`, waiting up to 10 s: the
    /// server writes a line after it answered, and a reader thread copies it
    /// here, so a check right after a response may otherwise race the line.
    /// Returns the logs as they are at the deadline when no line came.
    pub fn logs_once(&self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let logs = self.logs();
            if logs.lines().any(&wanted) || std::time::Instant::now() > deadline {
                return logs;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Registers a client through the CLI; returns its secret, if any.
    pub fn client_add(&self, args: &[&str]) -> Option<String> {
        let mut full = vec!["client", "add"];
        full.extend_from_slice(args);
        let output = grantbox(&self.db, &full, None);
        assert!(
            output.status.success(),
            "client add failed: {}",
            text(&output.stderr)
        );
        text(&output.stdout)
            .lines()
            .find_map(|line| line.strip_prefix("client_secret: ").map(str::to_owned))
    }

    /// Kills the process at once (no graceful shutdown), as a crash would.
    pub fn kill(mut self) -> Arc<tempfile::TempDir> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Adds a user through the CLI.
pub fn user_add(server: &Server, username: &str, password: &str) {
    let output = grantbox(
        &server.db,
        &["user", "add", username, "--password-stdin"],
        Some(password),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
}

impl Server {
    /// The server's process id, e.g. to read its memory from /proc.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    }
}

/// Which backend `Server::start` uses when a test names none: SQLite in the
/// server's directory, or — with `GRANTBOX_E2E_BACKEND=postgres` (`.ci/run`
/// runs the whole suite a second time so) — a fresh PostgreSQL database,
/// remembered in the directory so a restart on it finds the same data.
pub const BACKEND_ENV: &str = "GRANTBOX_E2E_BACKEND";

pub(super) fn default_db(dir: &Path) -> String {
    let remembered = dir.join("db-url");
    if let Ok(url) = std::fs::read_to_string(&remembered) {
        return url;
    }
    let url = match std::env::var(BACKEND_ENV).as_deref() {
        Ok("postgres") => {
            let server = std::env::var(POSTGRES_ENV)
                .unwrap_or_else(|_| panic!("{BACKEND_ENV}=postgres needs {POSTGRES_ENV}"));
            fresh_postgres_db(&server)
        }
        Ok("sqlite") | Err(_) => format!("sqlite://{}", dir.join("grantbox.db").display()),
        Ok(other) => panic!("{BACKEND_ENV}={other}: expected sqlite or postgres"),
    };
    std::fs::write(&remembered, &url).expect("the server directory is writable");
    url
}
