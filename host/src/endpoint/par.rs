//! `POST /par`, the pushed authorization request endpoint (RFC 9126): a
//! client, authenticated as at the token endpoint (public clients with their
//! `client_id`, §2.1), pushes the parameters of an authorization request;
//! they get the checks `/authorize` runs (`authorize::prepare`), with errors
//! as JSON (§2.3), never a redirect, and are kept under SHA-256 of the random
//! part of a new `request_uri`, bound to the client, for `[par]
//! request_uri_lifetime_seconds`. `/authorize` takes them back once. A DPoP
//! proof sent with the push (RFC 9449 §10.1) binds the code to its key, as
//! `dpop_jkt` does.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::authorize::prepare;
use super::dpop::{self as dpop_proof, ProofRequest};
use super::transaction;
use super::{authenticated_form_with_repeats, json_error, no_store};
use crate::app::App;
use crate::oauth::authorize::{Arrival, REQUEST_URI_PREFIX, Rejection};
use crate::oauth::{OAuthError, Params, dpop};
use crate::secret;
use crate::store::{Client, PushedRequest};

/// Where the endpoint answers (`pushed_authorization_request_endpoint`).
pub const PAR_PATH: &str = "/par";

/// The parameters that authenticate the client at this endpoint and are no
/// part of the authorization request (`client_id` is, and stays).
const CLIENT_SECRETS: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

/// The most bytes of parameter names and values one pushed request keeps:
/// room for a 2048-byte `state` and an 8192-byte `id_token_hint` beside the
/// rest, and a bound on what a public client, which anyone can name, makes
/// the database hold for a `request_uri` lifetime.
pub const MAX_PUSHED_BYTES: usize = 16 * 1024;

/// RFC 9126 §2.2: the answer, 201 Created.
#[derive(Serialize)]
struct Pushed<'a> {
    request_uri: &'a str,
    expires_in: i64,
}

pub async fn par(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    match push(&app, &headers, &body).await {
        Ok(response) => response,
        Err(error) => json_error(&error),
    }
}

async fn push(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Response, OAuthError> {
    let now = app.clock.now();
    let registry = app.registry();
    let (client, params) = authenticated_form_with_repeats(app, headers, body).await?;
    // RFC 9126 §2.1: the request's client_id is the authenticated client
    // (client authentication already holds Basic and assertions to it).
    if params
        .get("client_id")?
        .is_some_and(|id| id != client.client_id)
    {
        return Err(OAuthError::invalid_request(
            "client_id differs from the authenticated client",
        ));
    }
    let mut parameters = params.without(&CLIENT_SECRETS);
    // RFC 9449 §10.1: a DPoP proof sent with the push binds the code to its
    // key, as `dpop_jkt` does; when both are sent they must name one key.
    if let Some(jkt) = proof_key(app, headers).await? {
        match params.get("dpop_jkt")? {
            Some(sent) if sent != jkt => {
                return Err(dpop::invalid_dpop_proof(
                    "dpop_jkt is not the thumbprint of the DPoP proof's key",
                ));
            }
            Some(_) => {}
            None => parameters.push(("dpop_jkt".to_owned(), jkt)),
        }
    }
    let size: usize = (parameters.iter())
        .map(|(name, value)| name.len() + value.len())
        .sum();
    if size > MAX_PUSHED_BYTES {
        return Err(OAuthError::invalid_request(format!(
            "the pushed authorization request is larger than {MAX_PUSHED_BYTES} bytes"
        )));
    }
    let pushed = Params::from_pairs(parameters.clone());
    let found = Some(Client::clone(&client));
    let (transaction, _) = prepare(app, &registry, &pushed, found, Arrival::Pushed, now)
        .await
        .map_err(json_rejection)?;
    // What `/authorize` would refuse to keep, refused before it is stored.
    transaction::check_size(&transaction)?;
    let reference = secret::new_token();
    let expires_in = app.par.request_uri_lifetime;
    let request = PushedRequest {
        request_uri_hash: secret::token_hash(&reference),
        client_id: client.client_id.clone(),
        parameters,
        expires_at: now + expires_in,
    };
    app.store
        .insert_pushed_request(&request)
        .await
        .map_err(|error| {
            tracing::error!(%error, "store error while keeping a pushed authorization request");
            OAuthError::temporarily_unavailable()
        })?;
    let request_uri = format!("{REQUEST_URI_PREFIX}{reference}");
    let body = Pushed {
        request_uri: &request_uri,
        expires_in,
    };
    Ok(no_store(
        (StatusCode::CREATED, axum::Json(body)).into_response(),
    ))
}

/// The thumbprint of the key of the push's DPoP proof, when it carries one
/// (checked for `POST` of this endpoint, its `jti` used once).
async fn proof_key(app: &App, headers: &HeaderMap) -> Result<Option<String>, OAuthError> {
    let request = ProofRequest {
        method: "POST",
        path: PAR_PATH,
        access_token: None,
        require_nonce: false,
    };
    let proof = dpop_proof::check(app, headers, request).await?;
    Ok(proof.map(|proof| proof.jkt))
}

/// RFC 9126 §2.3: every refusal of the authorization request's checks is an
/// error response of this endpoint, whether `/authorize` would have shown
/// it (an unregistered `redirect_uri`) or sent it back to the client.
fn json_rejection(rejection: Rejection) -> OAuthError {
    match rejection {
        Rejection::Page(error) | Rejection::Redirect { error, .. } => error,
    }
}
