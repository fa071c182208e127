//! Starts the real `grantbox` binary on a free port with its own SQLite file (or,
//! for the PostgreSQL tests, a fresh database on the server `GRANTBOX_TEST_POSTGRES`
//! names), runs its CLI, and builds the test plugins for wasm32-wasip2 once.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

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

/// Runs a `grantbox` subcommand against a database.
pub fn grantbox(db: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .env("GRANTBOX_DB", db)
        .env("GRANTBOX_CACHE_DIR", shared_cache_dir())
        .env_remove("GRANTBOX_CONFIG")
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

/// A running server, killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    /// The admin listener's URL (`--admin-listen 127.0.0.1:0`).
    pub admin: String,
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
        let mut command = Command::new(binary());
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--admin-listen", "127.0.0.1:0"])
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
            db,
            dir,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything the server wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.log.lock().expect("log lock").clone()
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

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// A token request with HTTP Basic client authentication.
pub fn token_request(
    server: &Server,
    client_id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let response = http()
        .post(server.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(form)
        .send()
        .expect("the token endpoint answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().unwrap_or(serde_json::Value::Null);
    (status, body, headers)
}

/// Builds a test plugin crate under `tests/plugins/` for wasm32-wasip2 once
/// per test run and returns the `.wasm`.
pub fn test_plugin_wasm(package: &str) -> PathBuf {
    test_plugin_wasm_with(package, &[])
}

/// Like [`test_plugin_wasm`], with cargo `features` on; each set of features
/// gets a `.wasm` of its own (`<name>+<features>.wasm` beside the artifact).
pub fn test_plugin_wasm_with(package: &str, features: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().expect("build lock");
    let target_dir = workspace().join("target").join("test-plugins");
    let artifact_dir = target_dir.join("wasm32-wasip2").join("plugin");
    let artifact = artifact_dir.join(format!("{}.wasm", package.replace('-', "_")));
    let key = format!("{package}+{}", features.join(","));
    let wasm = if features.is_empty() {
        artifact.clone()
    } else {
        artifact_dir.join(format!(
            "{}+{}.wasm",
            package.replace('-', "_"),
            features.join("+")
        ))
    };
    if !built.contains(&key) {
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command
            .current_dir(workspace())
            .args([
                "build",
                "--profile",
                "plugin",
                "--target",
                "wasm32-wasip2",
                "-p",
                package,
                "--target-dir",
            ])
            .arg(&target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("RUSTC_WORKSPACE_WRAPPER");
        if !features.is_empty() {
            command.arg("--features").arg(features.join(","));
        }
        let status = command.status().expect("cargo runs");
        assert!(status.success(), "building test plugin {key} failed");
        if wasm != artifact {
            std::fs::copy(&artifact, &wasm).expect("the featured wasm is copied aside");
        }
        built.push(key);
    }
    wasm
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes a plugin folder (`<dir>/<name>/plugin.toml` + wasm) into a plugin directory.
pub fn install_plugin(plugins_dir: &Path, name: &str, wasm: &Path, manifest_body: &str) -> PathBuf {
    let folder = plugins_dir.join(name);
    std::fs::create_dir_all(&folder).expect("plugin folder");
    let wasm_bytes = std::fs::read(wasm).expect("the wasm was built");
    let wasm_name = wasm
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    std::fs::write(folder.join(&wasm_name), &wasm_bytes).expect("wasm copied");
    let manifest = manifest_body
        .replace("{wasm}", &wasm_name)
        .replace("{sha256}", &sha256_hex(&wasm_bytes))
        .replace("{name}", name);
    std::fs::write(folder.join("plugin.toml"), manifest).expect("manifest written");
    folder
}

/// A manifest for the fault plugin: `mode` picks the misbehaviour.
pub fn fault_manifest(grant_type: &str, mode: &str, capabilities: &str) -> String {
    format!(
        r#"[plugin]
name = "{{name}}"
version = "0.1.0"
description = "misbehaves on purpose: {mode}"
interface = "grantbox:plugin@1.0.0"
capabilities = [{capabilities}]

[wasm]
file = "{{wasm}}"
sha256 = "{{sha256}}"

[provides]
grant_types = ["{grant_type}"]

[limits]
memory_mib = 8
timeout_ms = 200

[config]
mode = "{mode}"
grant_type = "{grant_type}"
"#
    )
}

/// A cookie-keeping client that follows nothing by itself, like a browser
/// whose every step the test inspects.
pub struct Browser {
    client: reqwest::blocking::Client,
}

/// One response as the test sees it.
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> String {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The value of a hidden input of the page's form.
    pub fn input(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no input {name} in:\n{}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').expect("a closed attribute") + start;
        self.body[start..end].to_owned()
    }
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self {
            client: reqwest::blocking::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
        }
    }

    fn page(response: reqwest::blocking::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, url: &str) -> Page {
        Self::page(self.client.get(url).send().expect("the server answers"))
    }

    pub fn post(&self, url: &str, form: &[(&str, &str)]) -> Page {
        Self::page(
            self.client
                .post(url)
                .form(form)
                .send()
                .expect("the server answers"),
        )
    }

    /// Signs in on the login page the server redirected to; returns the next page.
    pub fn sign_in(
        &self,
        server: &Server,
        login_location: &str,
        username: &str,
        password: &str,
    ) -> Page {
        let login = self.get(&server.url(login_location));
        assert_eq!(login.status, 200, "{}", login.body);
        let csrf = login.input("csrf_token");
        let mut form = vec![
            ("username", username),
            ("password", password),
            ("csrf_token", csrf.as_str()),
        ];
        let transaction = login
            .body
            .contains("name=\"transaction_id\"")
            .then(|| login.input("transaction_id"));
        if let Some(transaction) = &transaction {
            form.push(("transaction_id", transaction));
        }
        self.post(&server.url("/login"), &form)
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

/// The query (or fragment) parameters of a redirect.
pub fn redirect_params(
    location: &str,
    fragment: bool,
) -> std::collections::HashMap<String, String> {
    let url = url::Url::parse(location).unwrap_or_else(|e| panic!("{location}: {e}"));
    let part = if fragment {
        url.fragment().unwrap_or_default().to_owned()
    } else {
        url.query().unwrap_or_default().to_owned()
    };
    url::form_urlencoded::parse(part.as_bytes())
        .into_owned()
        .collect()
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

fn default_db(dir: &Path) -> String {
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
