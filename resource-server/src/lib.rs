//! Protect an axum (or any tower) API with access tokens issued by Grantbox:
//! one [`BearerLayer`] validates the bearer token of every request and puts
//! an [`Authorized`] into the request's extensions, the [`Authorized`]
//! extractor reads it in a handler, and [`require_scope`] is a per-route
//! layer that answers 403 `insufficient_scope` when the token lacks a scope.
//!
//! # Validation: opaque tokens through `/introspect` only
//!
//! Tokens are validated by asking Grantbox's introspection endpoint (RFC
//! 7662), found by RFC 8414 discovery from the issuer URL
//! (`{issuer}/.well-known/oauth-authorization-server`). Discovery happens at
//! the first request, and again after any failed request to the endpoint, so
//! a resource server started before Grantbox works once Grantbox is up. The
//! resource server authenticates with HTTP Basic as a client registered for
//! it:
//!
//! ```sh
//! grantbox client add my-api --introspection
//! ```
//!
//! An `https` issuer is reached over TLS (rustls) and verified against the
//! operating system's trust store; `http` is for loopback and development.
//!
//! Offline validation of JWT access tokens (RFC 9068) is **not** part of
//! this crate yet: Grantbox issues opaque tokens only until its signing-keys
//! work lands; then a JWKS validator can sit beside the introspector.
//!
//! A token passes when Grantbox says it is `active`, its `token_type` is
//! `Bearer` or `DPoP` (a refresh token has none, so a refresh token
//! presented as an access token is refused), its `exp` is in the future by
//! this crate's [`Clock`], and, when [`Config::audience`] is set, its `aud`
//! contains that audience.
//!
//! # DPoP-bound tokens (RFC 9449)
//!
//! A token introspection calls `DPoP` (with `cnf.jkt`, the thumbprint of
//! its key) passes only as `Authorization: DPoP <token>` with a `DPoP`
//! header: a proof of `typ` `dpop+jwt`, signed (ES256, RS256, PS256 or
//! EdDSA) by the public key in its `jwk`, whose thumbprint is the token's
//! `cnf.jkt`, naming this request (`htm`; `htu`, [`Config::public_url`]
//! followed by the path, or `http://` and the `Host` when unset), recent
//! (`iat` within [`Config::dpop_proof_max_age`]), for this token (`ath`),
//! and not seen before (`jti`, remembered in memory). A DPoP-bound token
//! sent as a bearer token, or a bearer token with the `DPoP` scheme, is
//! `invalid_token`, a bad proof `invalid_dpop_proof`, both with a `DPoP`
//! challenge naming the algorithms. [`Authorized::dpop_jkt`] says which key
//! a request proved.
//!
//! # The cache, and how long a revoked token may still pass
//!
//! Answers are cached by the SHA-256 of the token (the token itself is never
//! stored), in at most [`Config::cache_capacity`] entries (default 10,000;
//! when full, expired entries go first, then the one that would expire
//! soonest). An active answer is kept for [`Config::cache_ttl`] (default
//! 30 s) but never past the token's `exp`. **A token revoked at Grantbox may
//! therefore still pass for up to `cache_ttl` after its revocation** (after
//! its last introspection, to be exact); set `cache_ttl` to zero to ask
//! Grantbox on every request. Inactive answers (unknown, expired, revoked,
//! refresh tokens, other audiences) are cached for
//! [`Config::inactive_cache_ttl`] (default 5 s, never longer than
//! `cache_ttl`): an inactive opaque token never becomes active again, and
//! the short cache keeps a client retrying a dead token from reaching
//! Grantbox on every request. Two requests with the same uncached token may
//! both introspect it; there is no single-flight.
//!
//! # Responses (RFC 6750 §3)
//!
//! | case | status | `WWW-Authenticate` |
//! |---|---|---|
//! | no token | 401 | `Bearer realm="…"` (no error code, §3.1) |
//! | malformed, expired, revoked, inactive, refresh token, other audience | 401 | `…, error="invalid_token"` |
//! | token sent by more than one method, repeated `access_token` | 400 | `…, error="invalid_request"` |
//! | scope missing ([`require_scope`]) | 403 | `…, error="insufficient_scope", scope="read"` |
//! | Grantbox unreachable, 5xx, or refusing the resource server's credentials | 503, `Retry-After: 5` | — |
//!
//! The token is read from `Authorization: Bearer` only, unless
//! [`Config::token_in_form_body`] or [`Config::token_in_query`] enable the
//! other RFC 6750 §2 methods (§2.3 advises against the query). No log line
//! of this crate contains a token: failures log the endpoint and the cause,
//! refusals log the rule the token broke.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::{get, post}};
//! use grantbox_resource_server::{Authorized, Config, ResourceServer, require_scope};
//!
//! async fn hello(auth: Authorized) -> String {
//!     format!("hello, {}", auth.subject.as_deref().unwrap_or(&auth.client_id))
//! }
//!
//! async fn create_item(auth: Authorized) -> &'static str {
//!     "created"
//! }
//!
//! fn app(resource_server: &ResourceServer) -> Router {
//!     Router::new()
//!         .route("/hello", get(hello).route_layer(require_scope("read")))
//!         .route("/items", post(create_item).route_layer(require_scope("write")))
//!         // Every route above needs a valid token; routes added after it do not.
//!         .layer(resource_server.layer())
//!         .route("/public", get(|| async { "open to all" }))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut config = Config::new("http://127.0.0.1:8080", "my-api", "its secret");
//! config.realm = "my-api".into();
//! config.cache_ttl = std::time::Duration::from_secs(10);
//! let resource_server = ResourceServer::new(config).expect("a valid configuration");
//! let app = app(&resource_server);
//!
//! // Without a token: 401 and a challenge without an error code; Grantbox is
//! // not even asked.
//! use tower::ServiceExt as _;
//! let request = axum::http::Request::get("/hello").body(axum::body::Body::empty()).unwrap();
//! let response = app.clone().oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="my-api""#);
//!
//! // The open route answers without one.
//! let request = axum::http::Request::get("/public").body(axum::body::Body::empty()).unwrap();
//! assert_eq!(app.clone().oneshot(request).await.unwrap().status(), 200);
//!
//! // Serving it (Grantbox at the issuer above must be running for tokens to pass):
//! # if false {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! # }
//! ```

mod cache;
mod clock;
mod dpop;
mod extract;
mod introspect;
mod rejection;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::Request;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};
use url::Url;

use cache::{Cache, Cached};
use introspect::{Answer, Introspector};

/// The axum this crate is built against, so an application (or a test) can
/// name the same version of `Router` and `Body` without a dependency of its own.
pub use axum;
pub use clock::Clock;
pub use dpop::ALGORITHMS as DPOP_ALGORITHMS;
pub use rejection::{RETRY_AFTER_SECONDS, Rejection};

/// How a [`ResourceServer`] validates tokens. [`Config::new`] gives the
/// defaults; change the public fields before [`ResourceServer::new`].
#[derive(Clone)]
pub struct Config {
    /// Grantbox's issuer URL; discovery reads
    /// `{issuer}/.well-known/oauth-authorization-server`.
    pub issuer: String,
    /// The client id this resource server introspects as (registered with
    /// `grantbox client add ID --introspection`).
    pub client_id: String,
    /// That client's secret.
    pub client_secret: String,
    /// The `realm` of the `WWW-Authenticate` challenges. Default `grantbox`.
    pub realm: String,
    /// When set, a token whose `aud` does not contain this value is
    /// `invalid_token`. A token without `aud` (unrestricted) passes.
    pub audience: Option<String>,
    /// How long an active answer is cached (never past the token's `exp`):
    /// the bound on how long a revoked token may still pass. Default 30 s;
    /// zero disables the cache.
    pub cache_ttl: Duration,
    /// How long an inactive answer is cached (at most `cache_ttl`). Default 5 s.
    pub inactive_cache_ttl: Duration,
    /// The most answers the cache holds. Default 10,000.
    pub cache_capacity: usize,
    /// Also read `access_token` from an `application/x-www-form-urlencoded`
    /// body (RFC 6750 §2.2). Default off.
    pub token_in_form_body: bool,
    /// Also read `access_token` from the query (RFC 6750 §2.3, which advises
    /// against it: URLs end up in logs). Default off.
    pub token_in_query: bool,
    /// The largest form body buffered to look for `access_token`; larger is
    /// 413. Default 64 KiB.
    pub form_body_limit: usize,
    /// The timeout of each request to Grantbox. Default 5 s.
    pub timeout: Duration,
    /// The clock expiry and the cache are checked against; a test may advance
    /// it. Default the system clock.
    pub clock: Clock,
    /// This API's URL as its clients call it (scheme, host, port, and any
    /// path prefix before the routes), the start of the `htu` a DPoP proof
    /// must name. Unset, it is `http://` and the request's `Host`: set it
    /// behind TLS or a proxy.
    pub public_url: Option<String>,
    /// How far a DPoP proof's `iat` may be from now, either way; its `jti`
    /// is remembered that long. Default 60 s.
    pub dpop_proof_max_age: Duration,
}

impl Config {
    /// The defaults, for this issuer and introspection client.
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            realm: "grantbox".into(),
            audience: None,
            cache_ttl: Duration::from_secs(30),
            inactive_cache_ttl: Duration::from_secs(5),
            cache_capacity: 10_000,
            token_in_form_body: false,
            token_in_query: false,
            form_body_limit: 64 * 1024,
            timeout: Duration::from_secs(5),
            clock: Clock::system(),
            public_url: None,
            dpop_proof_max_age: Duration::from_secs(60),
        }
    }
}

/// A configuration [`ResourceServer::new`] refuses.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("issuer {issuer:?}: {reason}")]
    Issuer { issuer: String, reason: String },
    #[error("client_id is empty")]
    EmptyClientId,
    #[error("the HTTP client cannot be built: {0}")]
    Http(#[from] reqwest::Error),
}

/// What a valid token grants; put into the request's extensions by
/// [`BearerLayer`] and read by handlers as an extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// The user (`sub`); `None` for a token issued to a client on its own
    /// behalf (client credentials).
    pub subject: Option<String>,
    /// The client the token was issued to.
    pub client_id: String,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// Where the token may be used (`aud`); empty when unrestricted.
    pub audience: Vec<String>,
    /// Unix seconds after which the token is expired.
    pub expires_at: i64,
    /// The thumbprint of the key a DPoP-bound token is bound to (RFC 9449
    /// `cnf.jkt`), whose proof came with this request; `None` for a bearer
    /// token.
    pub dpop_jkt: Option<String>,
    /// The realm of the layer that validated it, for [`require_scope`]'s
    /// challenge.
    realm: Arc<str>,
}

impl Authorized {
    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|granted| granted == scope)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Authorized>()
            .cloned()
            .ok_or_else(|| {
                tracing::error!(
                    path = parts.uri.path(),
                    "Authorized extractor on a route without the bearer layer"
                );
                Rejection::MissingLayer.response("")
            })
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Authorized {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Authorized>().cloned())
    }
}

/// The validator: configuration, introspection client and cache. Cheap to
/// clone (shared).
#[derive(Clone)]
pub struct ResourceServer {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    realm: Arc<str>,
    introspector: Introspector,
    cache: Cache,
    seen_proofs: dpop::SeenProofs,
}

impl ResourceServer {
    /// Checks the configuration and builds the HTTP client; contacts nobody
    /// (discovery happens at the first request).
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let issuer_error = |reason: &str| ConfigError::Issuer {
            issuer: config.issuer.clone(),
            reason: reason.into(),
        };
        let issuer = Url::parse(&config.issuer).map_err(|e| issuer_error(&e.to_string()))?;
        if !matches!(issuer.scheme(), "http" | "https") {
            return Err(issuer_error("not an http or https URL"));
        }
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(issuer_error(
                "an issuer has no query or fragment (RFC 8414 §2)",
            ));
        }
        if config.client_id.is_empty() {
            return Err(ConfigError::EmptyClientId);
        }
        let introspector = Introspector::new(
            issuer,
            config.client_id.clone(),
            config.client_secret.clone(),
            config.timeout,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                realm: config.realm.as_str().into(),
                cache: Cache::new(config.cache_capacity),
                seen_proofs: dpop::SeenProofs::new(config.cache_capacity),
                introspector,
                config,
            }),
        })
    }

    /// The layer that validates the bearer token of every request it wraps.
    pub fn layer(&self) -> BearerLayer {
        BearerLayer {
            resource_server: self.clone(),
        }
    }

    /// Validates `token` (from the cache or by introspection).
    pub async fn authorize(&self, token: &str) -> Result<Authorized, Rejection> {
        let inner = &self.inner;
        let key = cache::token_hash(token);
        let now_ms = inner.config.clock.now_ms();
        match inner.cache.get(&key, now_ms) {
            Some(Cached::Active(authorized)) => return Ok(authorized),
            Some(Cached::Inactive) => {
                return Err(Rejection::InvalidToken {
                    description: "the token is not active",
                });
            }
            None => {}
        }
        let answer = inner
            .introspector
            .introspect(token)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "grantbox cannot validate tokens now");
                Rejection::Unavailable
            })?;
        // The clock may have moved while Grantbox answered.
        let now_ms = inner.config.clock.now_ms();
        match self.judge(answer, now_ms) {
            Ok(authorized) => {
                let ttl_ms = millis(inner.config.cache_ttl);
                let until_exp_ms = authorized.expires_at.saturating_mul(1000);
                inner.cache.insert(
                    key,
                    Cached::Active(authorized.clone()),
                    now_ms,
                    now_ms.saturating_add(ttl_ms).min(until_exp_ms),
                );
                Ok(authorized)
            }
            Err(rejection) => {
                let ttl_ms = millis(inner.config.inactive_cache_ttl.min(inner.config.cache_ttl));
                inner
                    .cache
                    .insert(key, Cached::Inactive, now_ms, now_ms.saturating_add(ttl_ms));
                Err(rejection)
            }
        }
    }

    /// The rules beyond `active`: an access token, not expired by our clock,
    /// for our audience.
    fn judge(&self, answer: Answer, now_ms: i64) -> Result<Authorized, Rejection> {
        let Answer::Active(details) = answer else {
            return Err(Rejection::InvalidToken {
                description: "the token is not active",
            });
        };
        // A bearer token, or (RFC 9449 §6.2) a DPoP-bound one with the
        // thumbprint of its key; a refresh token has no token_type.
        let kind = details.token_type.as_deref().unwrap_or_default();
        let dpop_jkt = if kind.eq_ignore_ascii_case("bearer") {
            None
        } else if kind.eq_ignore_ascii_case("dpop") {
            match details.cnf.and_then(|cnf| cnf.jkt) {
                Some(jkt) => Some(jkt),
                None => {
                    return Err(Rejection::InvalidToken {
                        description: "a DPoP-bound token without the thumbprint of its key",
                    });
                }
            }
        } else {
            return Err(Rejection::InvalidToken {
                description: "not an access token",
            });
        };
        let (Some(expires_at), Some(client_id)) = (details.exp, details.client_id) else {
            return Err(Rejection::InvalidToken {
                description: "the token has no expiry or client",
            });
        };
        if expires_at.saturating_mul(1000) <= now_ms {
            return Err(Rejection::InvalidToken {
                description: "the token is expired",
            });
        }
        let audience = details.aud.map(|aud| aud.into_vec()).unwrap_or_default();
        if let Some(expected) = &self.inner.config.audience
            && !audience.is_empty()
            && !audience.contains(expected)
        {
            return Err(Rejection::InvalidToken {
                description: "the token is for another audience",
            });
        }
        Ok(Authorized {
            subject: details.sub,
            client_id,
            scopes: details
                .scope
                .unwrap_or_default()
                .split(' ')
                .filter(|scope| !scope.is_empty())
                .map(str::to_owned)
                .collect(),
            audience,
            expires_at,
            dpop_jkt,
            realm: self.inner.realm.clone(),
        })
    }

    /// RFC 9449 §7.1: a DPoP-bound token comes with the `DPoP` scheme and a
    /// proof of its key for this request; a bearer token with neither.
    fn check_binding(
        &self,
        authorized: &Authorized,
        scheme: Scheme,
        request: &Request<Body>,
        token: &str,
    ) -> Result<(), Rejection> {
        match (&authorized.dpop_jkt, scheme) {
            (None, Scheme::Bearer) => Ok(()),
            (None, Scheme::Dpop) => Err(Rejection::InvalidDpopToken {
                description: "the token is not DPoP-bound: send it as a bearer token",
            }),
            (Some(_), Scheme::Bearer) => Err(Rejection::InvalidDpopToken {
                description: "a DPoP-bound token is sent with the DPoP scheme and a proof",
            }),
            (Some(jkt), Scheme::Dpop) => {
                let proof = extract::dpop_proof(request.headers())?;
                let url = self.request_url(request);
                let config = &self.inner.config;
                let expected = dpop::Expected {
                    method: request.method().as_str(),
                    url: &url,
                    access_token: token,
                    jkt,
                    now: config.clock.now_ms() / 1000,
                    max_age: i64::try_from(config.dpop_proof_max_age.as_secs()).unwrap_or(60),
                };
                dpop::check(&proof, &expected, &self.inner.seen_proofs)
            }
        }
    }

    /// The request's URL as its client named it, without query (`htu`).
    fn request_url(&self, request: &Request<Body>) -> String {
        let path = request.uri().path();
        match &self.inner.config.public_url {
            Some(base) => format!("{}{path}", base.trim_end_matches('/')),
            None => {
                let host = (request.headers().get(axum::http::header::HOST))
                    .and_then(|host| host.to_str().ok())
                    .unwrap_or_default();
                format!("http://{host}{path}")
            }
        }
    }

    /// The token of a request, by the enabled methods; the request comes back
    /// (its body rebuilt when it was read).
    async fn token_of(
        &self,
        request: Request<Body>,
    ) -> Result<(Request<Body>, Option<(String, Scheme)>), Rejection> {
        let config = &self.inner.config;
        let dpop = extract::from_dpop_header(request.headers())?;
        let scheme = if dpop.is_some() {
            Scheme::Dpop
        } else {
            Scheme::Bearer
        };
        let header = extract::from_header(request.headers())?.or(dpop);
        let query = match (config.token_in_query, request.uri().query()) {
            (true, Some(query)) => extract::from_urlencoded(query.as_bytes())?,
            _ => None,
        };
        let (request, body) = if config.token_in_form_body
            && extract::is_form_post(request.method(), request.headers())
        {
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, config.form_body_limit)
                .await
                .map_err(|_| Rejection::BodyTooLarge)?;
            let token = extract::from_urlencoded(&bytes)?;
            (Request::from_parts(parts, Body::from(bytes)), token)
        } else {
            (request, None)
        };
        let token = extract::only_one([header, query, body])?;
        Ok((request, token.map(|token| (token, scheme))))
    }

    fn reject(&self, rejection: &Rejection) -> Response {
        tracing::debug!(
            status = rejection.status().as_u16(),
            error = rejection.error_code(),
            "bearer token refused"
        );
        rejection.response(&self.inner.realm)
    }
}

/// How the request presented its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// `Authorization: Bearer`, or the form body or query (RFC 6750).
    Bearer,
    /// `Authorization: DPoP` (RFC 9449 §7.1).
    Dpop,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The tower layer of [`ResourceServer::layer`].
#[derive(Clone)]
pub struct BearerLayer {
    resource_server: ResourceServer,
}

impl<S> Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerService {
            inner,
            resource_server: self.resource_server.clone(),
        }
    }
}

/// The service of [`BearerLayer`]: refuses the request with the RFC 6750
/// answer, or passes it on with an [`Authorized`] in its extensions.
#[derive(Clone)]
pub struct BearerService<S> {
    inner: S,
    resource_server: ResourceServer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for BearerService<S>
where
    S: Service<Request<Body>> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone that was driven to readiness serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let resource_server = self.resource_server.clone();
        Box::pin(async move {
            let (mut request, (token, scheme)) = match resource_server.token_of(request).await {
                Ok((request, Some(token))) => (request, token),
                Ok((_, None)) => return Ok(resource_server.reject(&Rejection::MissingToken)),
                Err(rejection) => return Ok(resource_server.reject(&rejection)),
            };
            let checked = match resource_server.authorize(&token).await {
                Ok(authorized) => resource_server
                    .check_binding(&authorized, scheme, &request, &token)
                    .map(|()| authorized),
                Err(rejection) => Err(rejection),
            };
            match checked {
                Ok(authorized) => {
                    request.extensions_mut().insert(authorized);
                    inner.call(request).await.map(IntoResponse::into_response)
                }
                Err(rejection) => Ok(resource_server.reject(&rejection)),
            }
        })
    }
}

/// A per-route layer: 403 `insufficient_scope` (with `scope="…"` in the
/// challenge) unless the request's [`Authorized`] grants `scope`. Use it
/// under [`BearerLayer`] (e.g. `get(handler).route_layer(require_scope("read"))`).
pub fn require_scope(scope: &str) -> RequireScopeLayer {
    RequireScopeLayer {
        scope: scope.into(),
    }
}

/// The layer of [`require_scope`].
#[derive(Clone)]
pub struct RequireScopeLayer {
    scope: Arc<str>,
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScope {
            inner,
            scope: self.scope.clone(),
        }
    }
}

/// The service of [`require_scope`].
#[derive(Clone)]
pub struct RequireScope<S> {
    inner: S,
    scope: Arc<str>,
}

impl<S, B> Service<Request<B>> for RequireScope<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let refusal = match request.extensions().get::<Authorized>() {
            None => {
                tracing::error!(
                    path = request.uri().path(),
                    "require_scope on a route without the bearer layer"
                );
                Some(Rejection::MissingLayer.response(""))
            }
            Some(authorized) if !authorized.has_scope(&self.scope) => {
                let rejection = Rejection::InsufficientScope {
                    scope: self.scope.to_string(),
                };
                tracing::debug!(scope = %self.scope, "bearer token refused: scope missing");
                Some(rejection.response(&authorized.realm))
            }
            Some(_) => None,
        };
        if let Some(response) = refusal {
            return Box::pin(async move { Ok(response) });
        }
        let future = self.inner.call(request);
        Box::pin(async move { future.await.map(IntoResponse::into_response) })
    }
}

#[cfg(test)]
mod tests;
