//! The admin endpoint, served on its own loopback listener (`admin_listen`):
//! `POST /admin/plugins/reload` swaps in the plugin directory's current set,
//! `GET /admin/plugins` shows the set that serves, and `GET /metrics` gives
//! the Prometheus text (kept off the public listener: it names clients'
//! endpoints and plugin faults). It knows no OAuth.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

use crate::plugin::{LiveRegistry, LoadError, Registry};

/// One loaded plugin as the admin endpoint reports it.
#[derive(Debug, Serialize)]
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

/// `GET /metrics`: the Prometheus text, or 404 when no recorder is installed.
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
pub async fn reload(State(plugins): State<Arc<LiveRegistry>>) -> Response {
    // In a task of its own: a caller that hangs up does not cancel a reload
    // halfway, so it is logged and counted like any other.
    let reloaded = tokio::spawn(async move { plugins.reload().await })
        .await
        .unwrap_or_else(|join_error| Err(LoadError(format!("plugin reload failed: {join_error}"))));
    match reloaded {
        Ok(registry) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({
                "reloaded": true,
                "plugins": loaded(&registry),
            })),
        )
            .into_response(),
        Err(error) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(serde_json::json!({
                "reloaded": false,
                "error": error.to_string(),
            })),
        )
            .into_response(),
    }
}

/// `GET /admin/plugins`: the plugins serving now.
pub async fn list(State(plugins): State<Arc<LiveRegistry>>) -> Response {
    let registry = plugins.snapshot();
    axum::Json(serde_json::json!({ "plugins": loaded(&registry) })).into_response()
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
