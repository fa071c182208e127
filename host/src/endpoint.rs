//! The axum handlers: the only code that knows HTTP. Each endpoint turns a
//! request into values for `oauth/`, the store and the plugins, and turns
//! their answers into a response.

pub mod health;
pub mod token;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::oauth::OAuthError;

/// An OAuth error as the token, introspection and revocation endpoints send
/// it: JSON, never cached, 401 with a challenge for `invalid_client`.
pub fn json_error(error: &OAuthError) -> Response {
    let status =
        StatusCode::from_u16(error.code.token_endpoint_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, axum::Json(error.to_json())).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"grantbox\", charset=\"UTF-8\""),
        );
    }
    response
}
