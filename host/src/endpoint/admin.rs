//! The admin listener (`admin_listen`, off unless configured): its guard —
//! an admin bearer token on every request, a `Host` that is the admin host or
//! a loopback name (against DNS rebinding), no foreign `Origin`, never a CORS
//! header — and the plugin and metrics routes (`GET /admin/plugins`, `POST
//! /admin/plugins/reload`, `GET /metrics`). The operator routes are in
//! `admin/api.rs`, the OpenAPI document in `admin/openapi.rs`. It knows no
//! OAuth.

pub mod api;
pub mod openapi;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{FromRef, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

use crate::clock::Clock;
use crate::config::AdminListen;
use crate::keys::Keys;
use crate::manage::admin_token::admin_token_verify;
use crate::plugin::{LiveRegistry, LoadError, Registry};
use crate::store::Store;

/// What every admin handler may read: cheap to clone.
#[derive(Clone, FromRef)]
pub struct AdminState {
    pub store: Store,
    pub clock: Clock,
    pub plugins: Arc<LiveRegistry>,
    pub metrics: Option<PrometheusHandle>,
    pub guard: Arc<AdminGuard>,
    /// This server's id in the instance registry (`cluster.rs`).
    pub instance_id: Arc<str>,
    /// The server's keys: their key-encryption key seals the secret of a
    /// `client_secret_jwt` client added through the API.
    pub keys: Arc<Keys>,
}

/// Which `Host` and `Origin` values the admin listener answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminGuard {
    /// Lowercase `Host` values: the loopback names with the bound port, and
    /// the configured `admin_host`.
    hosts: Vec<String>,
    /// Lowercase origins: the admin listener's own (`http://` + a loopback
    /// host, or `https://` + `admin_host` behind a TLS proxy).
    origins: Vec<String>,
}

/// The admin token a request was authenticated with: its id, as the audit
/// trail names it.
#[derive(Clone, Debug)]
pub struct AdminActor(pub String);

impl AdminGuard {
    /// The guard of an admin listener bound to `bound` under `config`.
    pub fn new(config: &AdminListen, bound: SocketAddr) -> Self {
        let port = bound.port();
        let mut hosts = Vec::new();
        for name in ["localhost", "127.0.0.1", "[::1]"] {
            hosts.push(format!("{name}:{port}"));
            if port == 80 {
                hosts.push(name.to_owned());
            }
        }
        let mut origins: Vec<String> = hosts.iter().map(|host| format!("http://{host}")).collect();
        if let Some(host) = &config.host {
            hosts.push(host.clone());
            let scheme = if config.behind_tls_proxy {
                "https"
            } else {
                "http"
            };
            origins.push(format!("{scheme}://{host}"));
        }
        AdminGuard { hosts, origins }
    }

    /// Why a request with these headers is refused before its token is
    /// looked at, if it is: a foreign `Host` (a page on a rebound DNS name)
    /// or a foreign `Origin` (a page the browser sends from elsewhere).
    fn refusal(&self, headers: &HeaderMap) -> Option<&'static str> {
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_ascii_lowercase);
        if !host.is_some_and(|host| self.hosts.contains(&host)) {
            return Some("the Host header is not the admin host or a loopback name");
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().map(str::to_ascii_lowercase);
            if !origin.is_ok_and(|origin| self.origins.contains(&origin)) {
                return Some("the Origin header is not the admin origin");
            }
        }
        None
    }
}

/// The middleware in front of every admin route: `Host`, `Origin`, then the
/// admin bearer token, whose id it hands the handler as an [`AdminActor`].
pub async fn guard(State(state): State<AdminState>, mut request: Request, next: Next) -> Response {
    if let Some(reason) = state.guard.refusal(request.headers()) {
        return refuse(StatusCode::FORBIDDEN, "forbidden", reason);
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let Some(presented) = presented else {
        return unauthorized("an admin token is required (Authorization: Bearer …)");
    };
    match admin_token_verify(&state.store, &presented, state.clock.now()).await {
        Ok(Some(id)) => {
            request.extensions_mut().insert(AdminActor(id));
            next.run(request).await
        }
        Ok(None) => unauthorized("the admin token is unknown, revoked or expired"),
        Err(error) => {
            tracing::warn!(%error, "cannot check an admin token");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "cannot check the admin token now",
            )
        }
    }
}

fn unauthorized(reason: &str) -> Response {
    let mut response = refuse(StatusCode::UNAUTHORIZED, "invalid_token", reason);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"grantbox-admin\""),
    );
    response
}

fn refuse(status: StatusCode, error: &str, reason: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": error, "error_description": reason })),
    )
        .into_response()
}

/// One loaded plugin as the admin endpoint reports it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoadedPlugin {
    pub name: String,
    pub version: String,
    /// Lowercase hex SHA-256 of the `.wasm`.
    pub sha256: String,
    /// The manifest's path, or `bundled:<name>`.
    pub source: String,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    /// The paths of its plugin endpoints (`POST`).
    pub endpoints: Vec<String>,
    /// The paths of its user code steps.
    pub user_steps: Vec<String>,
}

/// `GET /admin/plugins`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginList {
    pub plugins: Vec<LoadedPlugin>,
}

/// `POST /admin/plugins/reload`'s answer: the plugins now serving, or why
/// the new set was refused.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginsReloaded {
    /// Whether the new set loaded and now serves.
    pub reloaded: bool,
    /// The plugins now serving (when reloaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Vec<LoadedPlugin>>,
    /// Why the new set was refused (the old set keeps serving).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /metrics`: the Prometheus text, or 404 when no recorder is installed.
#[utoipa::path(
    get,
    tag = "server",
    path = "/metrics",
    summary = "The Prometheus metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 404, description = "No metrics recorder is installed"),
    ),
)]
pub async fn metrics(State(metrics): State<Option<PrometheusHandle>>) -> Response {
    match metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `POST /admin/plugins/reload`: 200 with the plugins now serving, or 422
/// with the reason the new set was refused (the old set keeps serving).
#[utoipa::path(
    post,
    tag = "plugins",
    path = "/admin/plugins/reload",
    summary = "Load the plugin directory again",
    responses(
        (status = 200, description = "The plugins now serving", body = PluginsReloaded),
        (status = 422, description = "The new set was refused; the old set keeps serving", body = PluginsReloaded),
    ),
)]
pub async fn reload(State(plugins): State<Arc<LiveRegistry>>) -> Response {
    // In a task of its own: a caller that hangs up does not cancel a reload
    // halfway, so it is logged and counted like any other.
    let reloaded = tokio::spawn(async move { plugins.reload().await })
        .await
        .unwrap_or_else(|join_error| Err(LoadError(format!("plugin reload failed: {join_error}"))));
    match reloaded {
        Ok(registry) => (
            StatusCode::OK,
            axum::Json(PluginsReloaded {
                reloaded: true,
                plugins: Some(loaded(&registry)),
                error: None,
            }),
        )
            .into_response(),
        Err(error) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(PluginsReloaded {
                reloaded: false,
                plugins: None,
                error: Some(error.to_string()),
            }),
        )
            .into_response(),
    }
}

/// `GET /admin/plugins`: the plugins serving now.
#[utoipa::path(
    get,
    tag = "plugins",
    path = "/admin/plugins",
    summary = "The plugins serving now",
    responses((status = 200, description = "The plugins, with their grant types, response types, endpoints and user steps", body = PluginList)),
)]
pub async fn list(State(plugins): State<Arc<LiveRegistry>>) -> axum::Json<PluginList> {
    let registry = plugins.snapshot();
    axum::Json(PluginList {
        plugins: loaded(&registry),
    })
}

fn loaded(registry: &Registry) -> Vec<LoadedPlugin> {
    registry
        .plugins()
        .iter()
        .map(|plugin| LoadedPlugin {
            name: plugin.manifest.name.clone(),
            version: plugin.manifest.version.clone(),
            sha256: plugin.manifest.wasm_sha256.clone(),
            source: plugin.manifest.source.clone(),
            grant_types: plugin.info.grant_types.clone(),
            response_types: plugin
                .info
                .response_types
                .iter()
                .map(|(response_type, _)| response_type.clone())
                .collect(),
            endpoints: (plugin.manifest.endpoints.iter())
                .map(|e| e.path.clone())
                .collect(),
            user_steps: (plugin.manifest.user_steps.iter())
                .map(|s| s.path.clone())
                .collect(),
        })
        .collect()
}
