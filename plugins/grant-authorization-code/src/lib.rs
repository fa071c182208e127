//! The authorization code grant (RFC 6749 §4.1) with Proof Key for Code
//! Exchange (RFC 7636), both halves in one plugin:
//!
//! - `response_type=code` at the authorization endpoint: `authorize_request`
//!   checks the PKCE `code_challenge` and `code_challenge_method` against the
//!   policy in `[config]` and keeps them with the transaction;
//!   `authorize_response` binds a one-time code to the subject, the redirect
//!   URI the client sent, the granted scope and the challenge.
//! - `grant_type=authorization_code` at the token endpoint: `exchange`
//!   redeems the code (once; a replay makes the host revoke what the code
//!   issued), checks `redirect_uri` (RFC 6749 §4.1.3) and the
//!   `code_verifier` (RFC 7636 §4.6), then issues tokens in the code's token
//!   family, with a refresh token when the client registers `refresh_token`.
//!
//! OpenID Connect (Core 1.0 §3.1): the request's `nonce` (at most 512 bytes,
//! no control characters) is bound to the code like the PKCE challenge, and
//! redeeming a code whose scope includes `openid` also returns the host's
//! `id_token` (capability `openid`) with that nonce and the access token's
//! `at_hash`. For such a code the response carries a refresh token only when
//! `offline_access` was granted too (Core §11): a refresh token outlives the
//! user's session, which the user must have agreed to.
//!
//! PKCE is always required of public clients (RFC 9700 §2.1.1); `[config]`
//! `require_pkce = true` requires it of every client. A `code_verifier` for a
//! code issued without a challenge is refused, so an attacker cannot strip
//! the challenge from a request and still redeem the code (PKCE downgrade,
//! RFC 9700 §2.1.1, §4.8.2).
//!
//! `[config]` keys (decoded into [`Config`]; a missing key takes its
//! default, a malformed one answers `server_error` and logs which key):
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `code_lifetime_seconds` | `60` | how long a code lives (RFC 6749 §4.1.2 recommends at most 600) |
//! | `require_pkce` | `false` | require a `code_challenge` of confidential clients too |
//! | `allow_plain` | `false` | accept the `plain` method (a missing method means `plain`, RFC 7636 §4.3); off as RFC 9700 §2.1.1 advises, and the server's metadata lists `plain` only when this is true |

use std::num::NonZeroU32;

use grantbox_sdk::{
    AuthorizationApproval, AuthorizationRequest, CodeGrant, Grant, OAuthError, Params, PluginInfo,
    ResponseMode, TokenGrant, TokenRequest, TokenResponse, host, optional_param, param,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The `response_type` this plugin provides.
pub const RESPONSE_TYPE: &str = "code";
/// The `grant_type` this plugin provides.
pub const GRANT_TYPE: &str = "authorization_code";

/// The transaction data and code binding that carries the PKCE challenge.
const CODE_CHALLENGE: &str = "code_challenge";
/// The transaction data and code binding that carries the PKCE method.
const CODE_CHALLENGE_METHOD: &str = "code_challenge_method";
/// The transaction data and code binding that carries the OpenID Connect
/// `nonce` (Core §3.1.2.1), echoed in the ID token.
const NONCE: &str = "nonce";
/// The longest `nonce` kept: the host echoes no longer one.
const MAX_NONCE_LEN: usize = 512;
/// The scope value of an OpenID Connect request (Core §3.1.2.1).
use grantbox_sdk::host::openid::OPENID_SCOPE as OPENID;
/// The scope value that asks for a refresh token in OpenID Connect (Core §11).
const OFFLINE_ACCESS: &str = "offline_access";
/// RFC 7636 §4.2: `S256`, BASE64URL(SHA256(ASCII(code_verifier))).
const S256: &str = "S256";
/// RFC 7636 §4.2: `plain`, the challenge is the verifier.
const PLAIN: &str = "plain";

/// The manifest's `[config]` (the table in the module documentation).
#[derive(Debug, Deserialize)]
#[serde(default)]
struct Config {
    code_lifetime_seconds: NonZeroU32,
    require_pkce: bool,
    allow_plain: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            code_lifetime_seconds: NonZeroU32::new(60).expect("60 is not zero"),
            require_pkce: false,
            allow_plain: false,
        }
    }
}

impl Config {
    fn load() -> Result<Config, OAuthError> {
        host::config::decode().map_err(|error| {
            error.into_oauth_error("the authorization code grant is misconfigured")
        })
    }
}

/// The authorization code grant with PKCE.
pub struct AuthorizationCode;

impl Grant for AuthorizationCode {
    fn info() -> PluginInfo {
        PluginInfo::new()
            .response_type(&[RESPONSE_TYPE], ResponseMode::Query)
            .grant_type(GRANT_TYPE)
    }

    fn authorize_request(request: AuthorizationRequest) -> Result<Params, OAuthError> {
        let nonce = optional_param(&request.params, NONCE)?;
        if nonce.is_some_and(|nonce| !is_valid_nonce(nonce)) {
            return Err(OAuthError::invalid_request(format!(
                "nonce must be 1 to {MAX_NONCE_LEN} bytes without control characters"
            )));
        }
        let mut data = pkce_data(&request)?;
        if let Some(nonce) = nonce {
            data.push((NONCE.to_string(), nonce.to_string()));
        }
        Ok(data)
    }

    fn authorize_response(approval: AuthorizationApproval) -> Result<Params, OAuthError> {
        authorize_response(approval)
    }

    fn exchange(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        exchange(request)
    }
}

grantbox_sdk::export!(AuthorizationCode);

/// Whether an OpenID Connect `nonce` is kept: 1 to [`MAX_NONCE_LEN`] bytes
/// without control characters, the bound the host echoes.
fn is_valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty() && nonce.len() <= MAX_NONCE_LEN && !nonce.chars().any(char::is_control)
}

/// The PKCE bindings of an authorization request (RFC 7636 §4.3): the
/// challenge and its method, or nothing when the policy allows that.
fn pkce_data(request: &AuthorizationRequest) -> Result<Params, OAuthError> {
    let challenge = optional_param(&request.params, CODE_CHALLENGE)?;
    let method = optional_param(&request.params, CODE_CHALLENGE_METHOD)?;
    let Config {
        require_pkce,
        allow_plain,
        ..
    } = Config::load()?;

    let Some(challenge) = challenge else {
        if method.is_some() {
            return Err(OAuthError::invalid_request(
                "code_challenge_method without code_challenge",
            ));
        }
        // RFC 7636 §4.4.1: a server that requires PKCE answers
        // invalid_request "code challenge required".
        if request.client.public || require_pkce {
            return Err(OAuthError::invalid_request("code_challenge required"));
        }
        return Ok(Vec::new());
    };
    // RFC 7636 §4.3: a missing method means `plain`.
    let method = match method.unwrap_or(PLAIN) {
        S256 => S256,
        PLAIN => PLAIN,
        _ => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256 or plain",
            ));
        }
    };
    if !is_pkce_string(challenge) {
        return Err(OAuthError::invalid_request(
            "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        ));
    }
    // The base64url of a SHA-256 digest is always 43 characters; any other
    // length could never match a verifier, so say so now rather than at
    // the token endpoint after the user consented.
    if method == S256 && challenge.len() != 43 {
        return Err(OAuthError::invalid_request(
            "an S256 code_challenge is 43 characters",
        ));
    }
    if method == PLAIN && !allow_plain {
        return Err(OAuthError::invalid_request(
            "code_challenge_method plain is not allowed; use S256",
        ));
    }
    Ok(vec![
        (CODE_CHALLENGE.to_string(), challenge.to_string()),
        (CODE_CHALLENGE_METHOD.to_string(), method.to_string()),
    ])
}

/// Binds a one-time code to the approval: subject, redirect URI, scope, and
/// the bindings `authorize_request` kept (PKCE, `nonce`).
fn authorize_response(approval: AuthorizationApproval) -> Result<Params, OAuthError> {
    let lifetime = Config::load()?.code_lifetime_seconds.get();
    // The data is what `authorize_request` returned: the challenge and its
    // method, or nothing. Only those bindings go with the code.
    let data = approval
        .data
        .into_iter()
        .filter(|(name, _)| [CODE_CHALLENGE, CODE_CHALLENGE_METHOD, NONCE].contains(&name.as_str()))
        .collect();
    let grant = CodeGrant {
        subject: approval.subject,
        // The URI the client sent (empty when it sent none): RFC 6749
        // §4.1.3 binds the code to it.
        redirect_uri: approval.redirect_uri,
        scope: approval.scope,
        data,
    };
    let code = host::codes::issue(&grant, lifetime)?;
    Ok(vec![("code".to_string(), code)])
}

/// Redeems the code for tokens (and, for `openid`, an ID token).
fn exchange(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
    // Everything that can be checked without the code is checked first, so
    // a malformed request does not use the code up.
    let code = param(&request.params, "code")?;
    let redirect_uri = optional_param(&request.params, "redirect_uri")?;
    let verifier = optional_param(&request.params, "code_verifier")?;
    if verifier.is_some_and(|verifier| !is_pkce_string(verifier)) {
        return Err(OAuthError::invalid_request(
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        ));
    }

    // Unknown (or another client's), expired, or replayed → invalid_grant
    // with distinct descriptions; a replay revoked the code's tokens.
    let code = host::codes::redeem(code)?;
    if code.client_id != request.client.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code is invalid",
        ));
    }
    check_redirect_uri(&code.redirect_uri, redirect_uri)?;
    check_code_verifier(&code.data, verifier, request.client.public)?;

    let openid = code.scope.iter().any(|word| word == OPENID);
    // A `scope` parameter is not part of this request (RFC 6749 §4.1.3):
    // the tokens carry the scope the user granted to the code.
    let grant = TokenGrant {
        subject: Some(code.subject),
        scope: code.scope.clone(),
        // The host drops it unless the client registers `refresh_token`;
        // for OpenID Connect only with `offline_access` (Core §11).
        refresh_token: !openid || code.scope.iter().any(|word| word == OFFLINE_ACCESS),
        // The code's token family: a later replay of the code revokes these.
        grant_id: Some(code.grant_id.clone()),
    };
    let issued = host::tokens::issue(&grant)?;
    // With `openid`, the host's ID token carries the request's nonce.
    Ok(host::openid::token_response(
        issued,
        data_value(&code.data, NONCE),
    )?)
}

/// RFC 6749 §4.1.3: when the authorization request included `redirect_uri`
/// (the code is bound to a non-empty one), the token request must include
/// the identical value. When it did not, a `redirect_uri` here is ignored.
fn check_redirect_uri(bound: &str, sent: Option<&str>) -> Result<(), OAuthError> {
    if bound.is_empty() {
        return Ok(());
    }
    match sent {
        None => Err(OAuthError::invalid_grant(
            "redirect_uri is required: the authorization request included one",
        )),
        Some(sent) if sent != bound => Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        )),
        Some(_) => Ok(()),
    }
}

/// RFC 7636 §4.6: the verifier must transform into the challenge the code is
/// bound to. A code without a challenge takes no verifier (RFC 9700 §2.1.1:
/// a verifier for a challenge-less code means the challenge was stripped),
/// and is never redeemed by a public client.
fn check_code_verifier(
    data: &Params,
    verifier: Option<&str>,
    public_client: bool,
) -> Result<(), OAuthError> {
    let challenge = data_value(data, CODE_CHALLENGE);
    let (challenge, verifier) = match (challenge, verifier) {
        (Some(challenge), Some(verifier)) => (challenge, verifier),
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier required")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge",
            ));
        }
        // `authorize_request` refused a public client without a challenge;
        // this holds even if the registration changed since.
        (None, None) if public_client => {
            return Err(OAuthError::invalid_grant(
                "the authorization code was issued without PKCE, which a public client needs",
            ));
        }
        (None, None) => return Ok(()),
    };
    let matches = match data_value(data, CODE_CHALLENGE_METHOD).unwrap_or(PLAIN) {
        S256 => constant_time_eq(s256(verifier).as_bytes(), challenge.as_bytes()),
        PLAIN => constant_time_eq(verifier.as_bytes(), challenge.as_bytes()),
        // `authorize_request` stores only S256 or plain.
        _ => {
            return Err(OAuthError::server_error(
                "the authorization code carries an unknown code_challenge_method",
            ));
        }
    };
    if !matches {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    Ok(())
}

/// The first value of `name` in the code's data.
fn data_value<'a>(data: &'a Params, name: &str) -> Option<&'a str> {
    data.iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// RFC 7636 §4.1 (`code-verifier = 43*128unreserved`), also the shape of a
/// `code_challenge`: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn is_pkce_string(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 §4.2 S256: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))).
fn s256(verifier: &str) -> String {
    base64url(&Sha256::digest(verifier.as_bytes()))
}

/// Base64url without padding (RFC 7636 Appendix A, RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity((bytes.len() * 4).div_ceil(3));
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        // 1 byte → 2 characters, 2 → 3, 3 → 4.
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
