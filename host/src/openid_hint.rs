//! The check of an `id_token_hint` (OpenID Connect Core 1.0 §3.1.2.1,
//! RP-Initiated Logout 1.0 §2): an ID token this host issued, verified
//! against its published keys and its issuer. It knows nothing of clients or
//! sessions: the caller compares `aud` and `sub` with its own.

use serde_json::Value;

use crate::keys::{Keys, VerifyError};

/// What a verified `id_token_hint` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    /// The subject (`users.subject`) the ID token was issued for.
    pub sub: String,
    /// The audiences (client ids); a single string becomes one entry.
    pub aud: Vec<String>,
    pub azp: Option<String>,
    /// When the user signed in (Unix seconds), if the token says.
    pub auth_time: Option<i64>,
    /// When the ID token expired (Unix seconds): a past one is accepted.
    pub exp: Option<i64>,
    pub sid: Option<String>,
}

impl IdTokenHint {
    /// Whether `client_id` is one of the token's audiences.
    pub fn issued_to(&self, client_id: &str) -> bool {
        self.aud.iter().any(|aud| aud == client_id)
    }
}

/// Why an `id_token_hint` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HintError {
    /// Not signed by one of the host's published keys (not a JWS, `alg:
    /// none`, unknown `kid`, bad signature).
    #[error("id_token_hint: {0}")]
    Signature(#[from] VerifyError),
    /// A JWT of another kind (an RFC 9068 access token, `typ: at+jwt`).
    #[error("id_token_hint: typ {0:?} is not an ID token")]
    NotAnIdToken(String),
    /// `iss` is not this host's issuer.
    #[error("id_token_hint: iss is not this issuer")]
    WrongIssuer,
    /// A claim an ID token must carry is missing or of the wrong type.
    #[error("id_token_hint: claim {0} is missing or malformed")]
    Claim(&'static str),
}

/// Verifies `token` as an ID token this host issued to someone: signed by a
/// key published at `now` (by `kid`, with that key's algorithm), `iss` equal
/// to `issuer`, not an access token. An expired ID token is accepted (OIDC
/// Core §3.1.2.1: the hint may be a past one); `aud` is the caller's to check.
pub fn verify_id_token_hint(
    keys: &Keys,
    issuer: &str,
    token: &str,
    now: i64,
) -> Result<IdTokenHint, HintError> {
    let verified = keys.verify(token, now)?;
    // ID tokens are signed with `typ: JWT` or none; RFC 9068 access tokens
    // (and anything else typed) are not hints.
    if let Some(typ) = &verified.typ
        && !typ.eq_ignore_ascii_case("JWT")
    {
        return Err(HintError::NotAnIdToken(typ.clone()));
    }
    let claims = verified.claims;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(HintError::WrongIssuer);
    }
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|sub| !sub.is_empty())
        .ok_or(HintError::Claim("sub"))?
        .to_string();
    let aud = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .map(|aud| aud.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .ok_or(HintError::Claim("aud"))?,
        _ => return Err(HintError::Claim("aud")),
    };
    if aud.is_empty() {
        return Err(HintError::Claim("aud"));
    }
    let optional_string = |name: &'static str| match claims.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(HintError::Claim(name)),
    };
    let optional_time = |name: &'static str| match claims.get(name) {
        None => Ok(None),
        Some(value) => value.as_i64().map(Some).ok_or(HintError::Claim(name)),
    };
    Ok(IdTokenHint {
        sub,
        aud,
        azp: optional_string("azp")?,
        auth_time: optional_time("auth_time")?,
        exp: optional_time("exp")?,
        sid: optional_string("sid")?,
    })
}

#[cfg(test)]
mod tests;
