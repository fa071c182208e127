//! A small API protected by Grantbox tokens: `GET /hello` needs `read`,
//! `POST /items` needs `write`, `GET /public` is open. Configured by the
//! environment (see README.md); one layer and one extractor do the work.

use std::time::Duration;

use anyhow::Context as _;
use axum::routing::{get, post};
use axum::{Json, Router};
use grantbox_resource_server::{Authorized, Config, ResourceServer, require_scope};

async fn hello(auth: Authorized) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "hello": auth.subject.as_deref().unwrap_or(&auth.client_id),
        "client_id": auth.client_id,
        "scopes": auth.scopes,
    }))
}

async fn create_item(auth: Authorized, body: String) -> (axum::http::StatusCode, String) {
    (
        axum::http::StatusCode::CREATED,
        format!("item created by {}: {body}\n", auth.client_id),
    )
}

async fn public() -> &'static str {
    "open to all\n"
}

fn app(resource_server: &ResourceServer) -> Router {
    Router::new()
        .route("/hello", get(hello).route_layer(require_scope("read")))
        .route(
            "/items",
            post(create_item).route_layer(require_scope("write")),
        )
        .layer(resource_server.layer())
        .route("/public", get(public))
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set (see README.md)"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RS_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut config = Config::new(
        env("GRANTBOX_ISSUER")?,
        env("RS_CLIENT_ID")?,
        env("RS_CLIENT_SECRET")?,
    );
    config.realm = "example-api".into();
    if let Ok(seconds) = std::env::var("RS_CACHE_TTL") {
        let seconds: u64 = seconds
            .parse()
            .context("RS_CACHE_TTL is a number of seconds")?;
        config.cache_ttl = Duration::from_secs(seconds);
    }
    if let Ok(public_url) = std::env::var("RS_PUBLIC_URL") {
        config.public_url = Some(public_url);
    }
    if let Ok(audience) = std::env::var("RS_AUDIENCE") {
        config.audience = Some(audience);
    }
    let resource_server = ResourceServer::new(config)?;
    let listen = std::env::var("RS_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!("resource server listening on {}", listener.local_addr()?);
    axum::serve(listener, app(&resource_server)).await?;
    Ok(())
}
