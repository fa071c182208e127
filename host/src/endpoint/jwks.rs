//! `GET /jwks`: the JWK Set (RFC 7517 §5) of the host's published signing
//! keys, public parameters only, at the fixed path node-oidc-provider uses
//! and advertised as `jwks_uri` in the metadata. Cached no longer than a new
//! key waits before it signs (`[keys] activation_delay_seconds`), so a
//! resource server that caches it sees a new key before any token it signed.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;

pub async fn jwks(State(app): State<App>) -> Response {
    let now = app.clock.now();
    let mut response = (StatusCode::OK, axum::Json(app.keys.jwks(now))).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    let cache = if app.jwks_max_age == 0 {
        "no-cache".to_owned()
    } else {
        format!("public, max-age={}", app.jwks_max_age)
    };
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&cache).expect("digits and ascii"),
    );
    response
}
