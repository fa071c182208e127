//! The router and the state every handler shares.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;
use tower_sessions::{SessionManagerLayer, SessionStore};

use crate::clock::Clock;
use crate::endpoint;
use crate::endpoint::admin::AdminState;
use crate::plugin::{HostServices, LiveRegistry, Registry};
use crate::store::Store;
use crate::ui::Ui;

/// Shared state: cheap to clone.
pub type App = Arc<AppState>;

#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    /// The plugins, swapped whole by a reload; read them through [`AppState::registry`].
    pub plugins: Arc<LiveRegistry>,
    pub clock: Clock,
    pub issuer: String,
    pub ui: Ui,
    /// Seconds a user has to sign in and decide.
    pub transaction_lifetime: i64,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Human descriptions of scopes for the consent page.
    pub scope_descriptions: std::collections::BTreeMap<String, String>,
    pub services: HostServices,
    /// Registered clients for client authentication.
    pub clients: crate::client_cache::ClientCache,
    /// The signing keys and the key-encryption key.
    pub keys: Arc<crate::keys::Keys>,
    /// The `max-age` of `/jwks` ([`crate::config::KeysConfig::jwks_max_age`]).
    pub jwks_max_age: u64,
    /// The policy of dynamic client registration (`/register`).
    pub registration: crate::config::RegistrationConfig,
    /// Pushed authorization requests (`POST /par`, RFC 9126).
    pub par: crate::config::ParConfig,
    /// How DPoP proofs are judged (`[dpop]`).
    pub dpop: crate::config::DpopConfig,
}

impl AppState {
    /// The plugin set for one request: take it once, at the start, and use
    /// it throughout, so a reload never changes plugins under a request.
    pub fn registry(&self) -> Arc<Registry> {
        self.plugins.snapshot()
    }
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct HttpConfig {
    /// Request bodies larger than this get 413 (`body_limit_bytes`, 64 KiB by default).
    pub body_limit_bytes: usize,
}

/// The session cookie: HttpOnly, SameSite=Lax, and behind an https issuer
/// Secure with the `__Host-` prefix (RFC 6265bis §4.1.3.2), so that no
/// sibling domain and no plain-http page can set or shadow it. The issuer is
/// normalised at start (`config::normalize_issuer`), so its scheme is lowercase.
pub fn session_layer<S: SessionStore + Clone>(store: S, issuer: &str) -> SessionManagerLayer<S> {
    let https = issuer.starts_with("https://");
    SessionManagerLayer::new(store)
        .with_name(if https {
            "__Host-grantbox_session"
        } else {
            "grantbox_session"
        })
        .with_path("/")
        .with_http_only(true)
        .with_same_site(tower_sessions::cookie::SameSite::Lax)
        .with_secure(https)
        .with_expiry(tower_sessions::Expiry::OnInactivity(
            endpoint::transaction::SIGNED_IN_SESSION_LIFETIME,
        ))
}

/// Runs inside the session layer: after the handler, a changed session gets
/// its lifetime by whether a user is signed in (`transaction::set_session_lifetime`).
async fn session_lifetime(
    State(app): State<App>,
    session: tower_sessions::Session,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let anonymous = time::Duration::seconds(app.transaction_lifetime);
    if let Err(error) = endpoint::transaction::set_session_lifetime(&session, anonymous).await {
        tracing::error!(%error, "cannot set the session lifetime");
        return endpoint::json_error(&crate::oauth::OAuthError::server_error());
    }
    response
}

pub fn router<S>(app: App, http: HttpConfig, sessions: SessionManagerLayer<S>) -> Router
where
    S: SessionStore + Clone,
{
    // Client credentials and tokens travel only in bodies (RFC 6749 §2.3.1,
    // RFC 9700 §4.3): these endpoints refuse any query string.
    let token_endpoints = Router::new()
        .route("/token", post(endpoint::token::token))
        .route("/introspect", post(endpoint::introspect::introspect))
        .route("/revoke", post(endpoint::revoke::revoke))
        .route("/par", post(endpoint::par::par))
        .route_layer(middleware::from_fn(refuse_query));
    // The browser's endpoints (and the plugins' own, which may have user
    // steps) carry the session; the token endpoints, called by clients with
    // no cookie, skip its layers.
    Router::new()
        .route("/authorize", get(endpoint::authorize::authorize_get).post(endpoint::authorize::authorize_post))
        .route("/authorize/continue", get(endpoint::decision::resume))
        .route("/authorize/decision", post(endpoint::decision::decision))
        .route("/login", get(endpoint::login::login_form).post(endpoint::login::login))
        .route("/logout", post(endpoint::login::logout))
        .route("/end_session", get(endpoint::end_session::end_session_get).post(endpoint::end_session::end_session_post))
        .route("/end_session/confirm", post(endpoint::end_session::confirm))
        .route("/static/grantbox.css", get(endpoint::page::stylesheet))
        // Browsers ask for it on every page; there is none, and no 404 to log.
        .route("/favicon.ico", get(|| async { axum::http::StatusCode::NO_CONTENT }))
        .route("/.well-known/oauth-authorization-server", get(endpoint::metadata::metadata))
        .route("/.well-known/openid-configuration", get(endpoint::metadata::metadata))
        .route("/userinfo", get(endpoint::userinfo::userinfo_get).post(endpoint::userinfo::userinfo_post))
        .route("/healthz", get(endpoint::health::healthz))
        .route("/jwks", get(endpoint::jwks::jwks))
        .route("/register", post(endpoint::registration::register))
        .route("/register/{client_id}", get(endpoint::registration::read).put(endpoint::registration::update).delete(endpoint::registration::delete))
        // The paths plugins declare: read from each request's registry snapshot.
        .fallback(endpoint::plugin_route::route)
        .layer(middleware::from_fn_with_state(app.clone(), session_lifetime))
        .layer(sessions)
        .merge(token_endpoints)
        .layer(middleware::from_fn(record_request))
        .layer(middleware::from_fn(run_to_completion))
        .layer(middleware::from_fn(limit_headers))
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(
            // Only the method and path go into the span: query strings and
            // bodies may carry codes, tokens or passwords.
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
            }),
        )
        .with_state(app)
}

/// The admin listener's routes (`endpoint::admin::api::routes`), every one
/// behind the admin guard (`Host`, `Origin`, admin bearer token).
pub fn admin_router(state: AdminState) -> Router {
    let mut router = Router::new();
    for (_, path, method_router) in endpoint::admin::api::routes() {
        router = router.route(path, method_router);
    }
    router
        .layer(middleware::from_fn_with_state(
            state.clone(),
            endpoint::admin::guard,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                tracing::info_span!("admin", method = %request.method(), path = %request.uri().path())
            }),
        )
        .with_state(state)
}

/// Counts requests and their latency per endpoint and status.
async fn record_request(request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let started = Clock::instant();
    let response = next.run(request).await;
    let elapsed: Duration = started.elapsed();
    let status = response.status().as_u16().to_string();
    metrics::counter!("grantbox_http_requests_total", "endpoint" => endpoint.clone(), "status" => status).increment(1);
    metrics::histogram!("grantbox_http_request_duration_seconds", "endpoint" => endpoint)
        .record(elapsed.as_secs_f64());
    response
}

async fn refuse_query(request: Request, next: Next) -> Response {
    if let Err(error) = endpoint::refuse_query(request.uri()) {
        return endpoint::json_error(&error);
    }
    next.run(request).await
}

/// Header bytes a request may carry before it gets 431 (RFC 6585 §5); hyper's
/// own ceiling is far higher.
const MAX_HEADER_BYTES: usize = 16 * 1024;

async fn limit_headers(request: Request, next: Next) -> Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + request.uri().to_string().len();
    if size > MAX_HEADER_BYTES {
        return axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE.into_response();
    }
    next.run(request).await
}

/// Runs every handler in a task of its own, so a client that disconnects
/// cannot cancel a request halfway: a store transaction dropped between
/// `BEGIN` and `COMMIT` would leave its pooled connection holding SQLite's
/// write lock (found under load by the benchmark harness).
async fn run_to_completion(request: Request, next: Next) -> Response {
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(%error, "request handler failed");
            endpoint::json_error(&crate::oauth::OAuthError::server_error())
        }
    }
}
