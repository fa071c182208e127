//! The DPoP proof of one request (RFC 9449 §4.3): at most one `DPoP`
//! header, verified by `crate::dpop` for this method and URI, with a current
//! server nonce where one is required (§8), and its `jti` used once across
//! every instance (the store). Shared by the token endpoint and UserInfo;
//! each answers the refusals in its own form.

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;

use crate::app::App;
use crate::dpop::{self, Proof};
use crate::oauth::OAuthError;
use crate::oauth::dpop::{Expectations, Rejection};

/// The request header carrying a proof (RFC 9449 §4.1 `DPoP`), as the
/// http crate names headers: in lowercase (names are case-insensitive).
pub const PROOF_HEADER: &str = "dpop";

/// The response header carrying the server's nonce (RFC 9449 §8.1 `DPoP-Nonce`).
pub const NONCE_HEADER: &str = "dpop-nonce";

/// What the proof of one request is checked against.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    pub method: &'a str,
    /// The endpoint's path; the proof's `htu` is the issuer followed by it,
    /// built only when the request carries a proof.
    pub path: &'a str,
    /// The access token the request presents, which `ath` must hash.
    pub access_token: Option<&'a str>,
    /// Whether the proof must carry a current server nonce.
    pub require_nonce: bool,
}

/// Why a request's proof was refused.
#[derive(Debug)]
pub enum ProofError {
    /// Malformed, wrongly signed, for another request, stale, replayed, or
    /// more than one `DPoP` header; the text says which.
    Invalid(String),
    /// The proof lacks the current server nonce (`use_dpop_nonce`).
    NonceRequired,
    /// The store could not record the `jti`.
    Unavailable,
}

/// The request's DPoP proof, checked; `None` when it carries none.
pub async fn check(
    app: &App,
    headers: &HeaderMap,
    request: ProofRequest<'_>,
) -> Result<Option<Proof>, ProofError> {
    let mut values = headers.get_all(PROOF_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ProofError::Invalid(
            "a request carries at most one DPoP header".into(),
        ));
    }
    let text = value
        .to_str()
        .map_err(|_| ProofError::Invalid(Rejection::Malformed.to_string()))?;
    let now = app.clock.now();
    let target_uri = format!("{}{}", app.issuer, request.path);
    let expect = Expectations {
        method: request.method,
        target_uri: &target_uri,
        now,
        max_age_seconds: app.dpop.proof_max_age_seconds,
        access_token: request.access_token,
    };
    let proof = dpop::verify(text, &expect).map_err(|r| ProofError::Invalid(r.to_string()))?;
    if request.require_nonce {
        let kek = app.keys.key_encryption_key();
        let current = (proof.accepted.nonce.as_deref())
            .is_some_and(|nonce| dpop::nonce_is_current(kek, nonce, now));
        if !current {
            return Err(ProofError::NonceRequired);
        }
    }
    let first_use = app
        .store
        .use_dpop_proof(
            &proof.jkt,
            &proof.accepted.jti,
            proof.accepted.expires_at,
            now,
        )
        .await
        .map_err(|error| {
            tracing::error!(%error, "store error while recording a DPoP proof");
            ProofError::Unavailable
        })?;
    if !first_use {
        return Err(ProofError::Invalid(Rejection::Replayed.to_string()));
    }
    Ok(Some(proof))
}

/// A refusal at an endpoint that answers RFC 6749 §5.2 errors (`/token`,
/// `/par`).
impl From<ProofError> for OAuthError {
    fn from(error: ProofError) -> Self {
        match error {
            ProofError::Invalid(reason) => crate::oauth::dpop::invalid_dpop_proof(reason),
            ProofError::NonceRequired => crate::oauth::dpop::use_dpop_nonce(),
            ProofError::Unavailable => OAuthError::temporarily_unavailable(),
        }
    }
}

/// Adds a fresh `DPoP-Nonce` to `response`.
pub fn with_nonce(app: &App, mut response: Response) -> Response {
    let nonce = dpop::nonce(app.keys.key_encryption_key(), app.clock.now());
    if let Ok(value) = HeaderValue::from_str(&nonce) {
        response.headers_mut().insert(NONCE_HEADER, value);
    }
    response
}
