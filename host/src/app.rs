//! The router and the state every handler shares.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::trace::TraceLayer;

use crate::clock::Clock;
use crate::endpoint;
use crate::plugin::Registry;
use crate::store::Store;

/// Shared state: cheap to clone.
pub type App = Arc<AppState>;

#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    pub registry: Registry,
    pub clock: Clock,
    pub issuer: String,
    pub metrics: Option<PrometheusHandle>,
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct HttpConfig {
    /// Request bodies larger than this get 413 (DESIGN §6: 64 KiB by default).
    pub body_limit_bytes: usize,
}

pub fn router(app: App, http: HttpConfig) -> Router {
    Router::new()
        .route("/token", post(endpoint::token::token))
        .route("/healthz", get(endpoint::health::healthz))
        .route("/metrics", get(endpoint::health::metrics))
        .layer(middleware::from_fn_with_state(app.clone(), record_request))
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

/// Counts requests and their latency per endpoint and status.
async fn record_request(State(_app): State<App>, request: Request, next: Next) -> Response {
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
