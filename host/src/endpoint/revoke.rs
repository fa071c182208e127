//! `POST /revoke` (RFC 7009): a client revokes one of its own tokens; a
//! refresh token takes its whole family with it. The answer is 200 whether or
//! not the token existed or belonged to the caller (RFC 7009 §2.2).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{authenticated_form, json_error};
use crate::app::App;
use crate::oauth::OAuthError;
use crate::secret;

pub async fn revoke(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    match run(&app, &headers, &body).await {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => json_error(&error),
    }
}

/// Public clients authenticate with `client_id` alone (RFC 7009 §2.1), which
/// suffices because they can only revoke tokens issued to themselves.
async fn run(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
    let (client, params) = authenticated_form(app, headers, body).await?;
    let token = params.require("token")?;
    // `token_type_hint` is allowed and ignored: one lookup by hash finds
    // either kind, so `unsupported_token_type` is never needed.
    params.get("token_type_hint")?;
    let revoked = app
        .store
        .revoke_token(
            &secret::token_hash(token),
            &client.client_id,
            app.clock.now(),
        )
        .await
        .map_err(|error| {
            tracing::error!(%error, "store error while revoking a token");
            OAuthError::temporarily_unavailable()
        })?;
    tracing::debug!(client_id = %client.client_id, revoked, "revocation request");
    Ok(())
}
