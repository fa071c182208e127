//! The real router driven in process, without a server: `grantbox::app::router`
//! built as `grantbox serve` builds it (its store on a SQLite file in a
//! temporary directory, or a fresh PostgreSQL database with
//! `GRANTBOX_E2E_BACKEND=postgres`; the bundled plugins; the default
//! configuration), each request sent with `tower::ServiceExt::oneshot`. For
//! the request matrices (bad input, error shapes) that need no listener,
//! no process and no log.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use clap::Parser as _;
use grantbox::app::{self, AppState, HttpConfig};
use grantbox::cli::{Cli, ClientCommand, Command};
use grantbox::clock::Clock;
use grantbox::config::{RawConfig, ServeConfig, ServeFlags};
use grantbox::plugin::{HostServices, LiveRegistry, Registry, Runtime};
use grantbox::ratelimit::LoginLimiter;
use grantbox::registration::{self, ClientRegistration};
use grantbox::store::{AuditFilter, AuditRecord, Client, SessionBackend, Store};
use grantbox::ui::Ui;
use reqwest::header::HeaderMap;
use tower::ServiceExt as _;

use super::server::{default_db, shared_cache_dir};

/// The issuer of the in-process app, as a server bound to 127.0.0.1 names itself.
pub const IN_PROCESS_ISSUER: &str = "http://127.0.0.1";

/// The address every in-process request comes from (what the listener
/// gives the handlers as `ConnectInfo`).
const PEER: ([u8; 4], u16) = ([127, 0, 0, 1], 40000);

/// The router with its store and a tokio runtime to run them on.
pub struct InProcess {
    /// The issuer identifier, as `iss` carries it (RFC 9207).
    pub issuer: String,
    router: Option<axum::Router>,
    store: Option<Store>,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

/// One answer as the test sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The body as JSON, or `Null` when it is none.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn location(&self) -> String {
        super::http::location(&self.headers)
    }
}

/// A request to send: the method, path (with its query) and body, and the
/// headers it carries.
pub struct Call {
    request: http::request::Builder,
    body: Vec<u8>,
}

impl Call {
    pub fn get(path: &str) -> Call {
        Call {
            request: http::Request::get(path),
            body: Vec::new(),
        }
    }

    /// A POST of `body` as `application/x-www-form-urlencoded`.
    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Call {
        Call {
            request: http::Request::post(path)
                .header("content-type", "application/x-www-form-urlencoded"),
            body: body.into(),
        }
    }

    /// A POST of `form`, encoded as a browser or reqwest encodes it.
    pub fn form(path: &str, form: &[(&str, &str)]) -> Call {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        Call::post(path, body)
    }

    /// Another method than the constructor's (e.g. `PUT`, `DELETE`).
    pub fn method(mut self, method: http::Method) -> Call {
        self.request = self.request.method(method);
        self
    }

    /// Sets header `name` (replacing one of that name, as reqwest's
    /// `header` after `form` does).
    pub fn header(mut self, name: &'static str, value: &str) -> Call {
        let headers = self.request.headers_mut().expect("a valid request");
        headers.insert(name, value.parse().expect("a valid header value"));
        self
    }

    /// Adds a header `name`, beside any of that name already set.
    pub fn append_header(mut self, name: &'static str, value: &str) -> Call {
        let headers = self.request.headers_mut().expect("a valid request");
        headers.append(name, value.parse().expect("a valid header value"));
        self
    }

    /// HTTP Basic client authentication (RFC 6749 §2.3.1), as reqwest sends it.
    pub fn basic_auth(self, client_id: &str, secret: &str) -> Call {
        use base64::Engine as _;
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
        self.header("authorization", &format!("Basic {credentials}"))
    }
}

impl InProcess {
    /// The router as `grantbox serve` builds it with no flags and no config file.
    pub fn start() -> InProcess {
        Self::start_with_config(RawConfig::default())
    }

    /// The router as `grantbox serve` builds it with no flags and the config
    /// file `raw`.
    pub fn start_with_config(raw: RawConfig) -> InProcess {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let flags = ServeFlags {
            db: Some(default_db(dir.path())),
            cache_dir: Some(shared_cache_dir()),
            issuer: Some(IN_PROCESS_ISSUER.into()),
            ..ServeFlags::default()
        };
        let config =
            ServeConfig::resolve(flags, raw, "in-process").expect("the configuration is valid");
        let (router, store) = runtime.block_on(build(config));
        InProcess {
            issuer: IN_PROCESS_ISSUER.into(),
            router: Some(router),
            store: Some(store),
            runtime,
            _dir: dir,
        }
    }

    /// Sends one request through the router.
    pub fn send(&self, call: Call) -> Reply {
        let mut request = call
            .request
            .body(Body::from(call.body))
            .expect("a well-formed request");
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(SocketAddr::from(PEER)));
        let router = self.router.clone().expect("the router lives until drop");
        self.runtime.block_on(async move {
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("the body is read");
            Reply {
                status,
                headers,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            }
        })
    }

    /// A token request with HTTP Basic client authentication, as
    /// [`super::token_request`] sends it to a server.
    pub fn token_request(
        &self,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> (u16, serde_json::Value, HeaderMap) {
        let reply = self.send(Call::form("/token", form).basic_auth(client_id, secret));
        let body = reply.json();
        (reply.status, body, reply.headers)
    }

    /// Registers a client from `grantbox client add`'s arguments; returns
    /// its secret, if any.
    pub fn client_add(&self, args: &[&str]) -> Option<String> {
        let command = ["grantbox", "client", "add"].iter().chain(args);
        let cli = Cli::try_parse_from(command).unwrap_or_else(|e| panic!("client add: {e}"));
        let Command::Client(ClientCommand::Add(args)) = cli.command else {
            unreachable!("parsed as client add");
        };
        let registration = ClientRegistration::from(*args);
        let (client, secret) = registration::validate(registration, Clock::system().now())
            .unwrap_or_else(|e| panic!("client add: {e}"));
        let store = self.store();
        self.runtime
            .block_on(store.insert_client(&client))
            .unwrap_or_else(|e| panic!("client add: {e}"));
        secret
    }

    /// Adds a user, as `grantbox user add` does.
    pub fn user_add(&self, username: &str, password: &str) {
        let user = registration::validate_user(username, password, &[], Clock::system().now())
            .unwrap_or_else(|e| panic!("user add: {e}"));
        let store = self.store();
        self.runtime
            .block_on(store.insert_user(&user))
            .unwrap_or_else(|e| panic!("user add: {e}"));
    }

    /// A new initial access token for `POST /register`, made as `grantbox
    /// registration token create` makes it: `uses_left` `None` for any
    /// number of uses, valid for a day.
    pub fn initial_access_token(&self, uses_left: Option<i64>) -> String {
        let now = Clock::system().now();
        self.runtime
            .block_on(grantbox::cli::create_initial_access_token(
                self.store(),
                &grantbox::manage::Actor::Cli,
                uses_left,
                86_400,
                now,
            ))
            .unwrap_or_else(|e| panic!("initial access token: {e:#}"))
    }

    /// The audit trail, oldest first.
    pub fn audit_records(&self) -> Vec<AuditRecord> {
        self.runtime
            .block_on(self.store().list_audit(&AuditFilter::default()))
            .unwrap_or_else(|e| panic!("audit records: {e}"))
    }

    /// The client as stored, if it exists.
    pub fn find_client(&self, client_id: &str) -> Option<Client> {
        self.runtime
            .block_on(self.store().find_client(client_id))
            .unwrap_or_else(|e| panic!("find client {client_id}: {e}"))
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("the store lives until drop")
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        // The pools and the plugins' tasks belong to the runtime: end them on it.
        let router = self.router.take();
        let store = self.store.take();
        self.runtime.block_on(async move {
            drop(router);
            if let Some(store) = store {
                store.close().await;
            }
        });
    }
}

/// What `grantbox serve` does before it listens, less the listeners, the
/// signals and the background tasks.
async fn build(config: ServeConfig) -> (axum::Router, Store) {
    let clock = Clock::system();
    let store = Store::open(&config.db)
        .await
        .unwrap_or_else(|e| panic!("opening the database {}: {e}", config.db));
    let issuer = config.issuer.clone().expect("an issuer is given");
    // As `serve` opens them: created on first start (beside a SQLite file,
    // or under the tests' key-encryption key on PostgreSQL).
    let keys = grantbox::keys::persist::open(
        &store,
        &config.keys,
        &config.db,
        super::server::key_encryption_key_for(&config.db),
        clock.now(),
    )
    .await
    .unwrap_or_else(|e| panic!("signing keys: {e:#}"))
    .keys;
    let keys = Arc::new(keys);
    let services = HostServices {
        store: store.clone(),
        clock: clock.clone(),
        lifetimes: config.lifetimes,
        login_limiter: Arc::new(LoginLimiter::new(config.login_limits, store.clone())),
        passwords: grantbox::password::PasswordChecker::default(),
        keys: keys.clone(),
        issuer: issuer.clone(),
    };
    let runtime =
        Runtime::new(config.runtime.clone(), Some(services.clone())).expect("the plugin runtime");
    let registry = Registry::load(&runtime, None)
        .await
        .expect("the bundled plugins load");
    let plugins = Arc::new(LiveRegistry::new(
        runtime,
        None,
        registry,
        clock.clone(),
        config.transaction_lifetime,
    ));
    let app = Arc::new(AppState {
        store: store.clone(),
        plugins,
        clock,
        issuer: issuer.clone(),
        ui: Ui::load(None).expect("the built-in pages"),
        services,
        transaction_lifetime: config.transaction_lifetime,
        trusted_proxies: config.trusted_proxies.clone(),
        scope_descriptions: config.scope_descriptions.clone(),
        clients: Default::default(),
        keys,
        jwks_max_age: config.keys.jwks_max_age(),
        registration: config.registration.clone(),
        par: config.par,
        dpop: config.dpop,
    });
    let sessions = SessionBackend::open(&store)
        .await
        .expect("the session store opens");
    let router = app::router(
        app,
        HttpConfig {
            body_limit_bytes: config.body_limit_bytes,
        },
        app::session_layer(sessions, &issuer),
    );
    (router, store)
}
