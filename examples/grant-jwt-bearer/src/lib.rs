//! The JWT bearer authorization grant (RFC 7523 §2.1) as a Grantbox
//! extension plugin: a client trades a JWT it signed (ES256, RS256 or EdDSA)
//! for an access token for the JWT's `sub`.
//!
//! The client is authenticated by the host before the plugin runs; the
//! plugin verifies the assertion against that client's public keys from the
//! manifest's `[config]`, checks the claims of RFC 7523 §3 against the host's
//! clock, and makes the `jti` single-use through the key-value capability.
//! Every rejected assertion is `invalid_grant` with a description that never
//! repeats the assertion; a broken `[config]` is `server_error`.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use grantbox_sdk::host::config::ConfigError;
use grantbox_sdk::{
    Grant, OAuthError, PluginInfo, TokenGrant, TokenRequest, TokenResponse, host, param,
};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The `grant_type` this plugin provides (RFC 7523 §2.1).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The longest assertion accepted, in bytes.
pub const MAX_ASSERTION_BYTES: usize = 16 * 1024;

/// The longest `jti` accepted, in bytes (the host caps key-value keys at 512).
pub const MAX_JTI_BYTES: usize = 256;

/// The clock skew allowed when `max_skew_seconds` is not configured.
pub const DEFAULT_MAX_SKEW_SECONDS: u64 = 60;

/// The longest `exp - iat` accepted when `max_lifetime_seconds` is not configured.
pub const DEFAULT_MAX_LIFETIME_SECONDS: u64 = 300;

/// The smallest RSA modulus accepted for RS256 (RFC 7518 §3.3).
pub const MIN_RSA_BITS: u32 = 2048;

/// The JWT bearer grant.
pub struct JwtBearer;

impl Grant for JwtBearer {
    fn info() -> PluginInfo {
        PluginInfo::new().grant_type(GRANT_TYPE)
    }

    fn exchange(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        // RFC 7523 §2.1: exactly one `assertion` (missing or repeated is invalid_request).
        let assertion = param(&request.params, "assertion")?;
        let config = Config::load(&request.client.client_id)?;
        let now = host::clock::now()?;
        let verified = verify(assertion, &config, now)?;

        // The `jti` is burnt only once everything else passed, so a rejected
        // assertion can be corrected and sent again with the same `jti`.
        let replay_key = replay_key(&verified.issuer, &verified.jti);
        let ttl = u32::try_from(
            verified
                .expires_at
                .saturating_add(config.max_skew)
                .saturating_sub(now)
                .max(1),
        )
        .unwrap_or(u32::MAX);
        if !host::key_value::insert_new(&replay_key, b"", Some(ttl))? {
            return Err(OAuthError::invalid_grant("assertion replayed"));
        }

        // The host already checked a requested scope against the registration;
        // without one, the client gets every scope it registered.
        let scope = request.scope.unwrap_or(request.client.scopes);
        let grant = TokenGrant {
            subject: Some(verified.subject),
            scope,
            // RFC 7523 §2.1 and RFC 6749 §4.4.3 in spirit: a fresh assertion
            // is the way to get a new token, not a refresh token.
            refresh_token: false,
            grant_id: None,
        };
        match host::tokens::issue(&grant) {
            Ok(issued) => Ok(TokenResponse::from(issued)),
            Err(error) => {
                // No token was issued: let the client retry the same assertion.
                let _ = host::key_value::delete(&replay_key);
                Err(error.into())
            }
        }
    }
}

grantbox_sdk::export!(JwtBearer);

/// A signature algorithm this plugin verifies (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Alg {
    /// ECDSA using P-256 and SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 using SHA-256.
    #[serde(rename = "RS256")]
    Rs256,
    /// Ed25519.
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl Alg {
    /// The JOSE `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
            Alg::EdDsa => "EdDSA",
        }
    }

    fn parse(name: &str) -> Option<Alg> {
        match name {
            "ES256" => Some(Alg::Es256),
            "RS256" => Some(Alg::Rs256),
            "EdDSA" => Some(Alg::EdDsa),
            _ => None,
        }
    }
}

/// One public key of a client, as configured.
#[derive(Deserialize)]
struct Key {
    kid: Option<String>,
    alg: Alg,
    public_key_pem: String,
}

/// The plugin's `[config]`, as the manifest writes it.
#[derive(Deserialize)]
struct Table {
    /// Accepted `aud` values: a URL or several.
    token_endpoint: OneOrMore,
    #[serde(default = "default_max_skew")]
    max_skew_seconds: u64,
    #[serde(default = "default_max_lifetime")]
    max_lifetime_seconds: u64,
    #[serde(default)]
    clients: BTreeMap<String, ClientKeys>,
}

/// `[config.clients.<client_id>]`.
#[derive(Deserialize)]
struct ClientKeys {
    /// The `iss` the client's assertions carry (default the client id).
    issuer: Option<String>,
    keys: Vec<Key>,
}

/// A string or an array of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMore {
    One(String),
    More(Vec<String>),
}

fn default_max_skew() -> u64 {
    DEFAULT_MAX_SKEW_SECONDS
}

fn default_max_lifetime() -> u64 {
    DEFAULT_MAX_LIFETIME_SECONDS
}

/// The plugin's `[config]` as it applies to the calling client.
struct Config {
    /// Accepted `aud` values.
    audiences: Vec<String>,
    max_skew: u64,
    max_lifetime: u64,
    /// The `iss` the client's assertions carry.
    issuer: String,
    keys: Vec<Key>,
}

/// A `[config]` the operator got wrong: the host answers `server_error`.
fn config_error(what: impl std::fmt::Display) -> OAuthError {
    OAuthError::server_error(format!("the jwt-bearer plugin is misconfigured: {what}"))
}

fn invalid(description: impl Into<String>) -> OAuthError {
    OAuthError::invalid_grant(description)
}

impl Config {
    fn load(client_id: &str) -> Result<Config, OAuthError> {
        let mut table: Table = host::config::decode().map_err(|error| match error {
            ConfigError::Host(error) => OAuthError::from(error),
            invalid => config_error(invalid),
        })?;
        let audiences = match table.token_endpoint {
            OneOrMore::One(url) => vec![url],
            OneOrMore::More(urls) => urls,
        };
        if audiences.is_empty() || audiences.iter().any(String::is_empty) {
            return Err(config_error("token_endpoint must not be empty"));
        }
        let client = table
            .clients
            .remove(client_id)
            .ok_or_else(|| invalid("no assertion keys are configured for this client"))?;
        let issuer = match client.issuer {
            None => client_id.to_owned(),
            Some(issuer) if !issuer.is_empty() => issuer,
            Some(_) => {
                return Err(config_error(format!(
                    "clients.{client_id}.issuer must not be empty"
                )));
            }
        };
        Ok(Config {
            audiences,
            max_skew: table.max_skew_seconds,
            max_lifetime: table.max_lifetime_seconds,
            issuer,
            keys: client.keys,
        })
    }
}

/// What a verified assertion grants.
struct Verified {
    issuer: String,
    subject: String,
    jti: String,
    expires_at: u64,
}

/// Verifies the assertion's signature with the client's keys, then its
/// claims (RFC 7523 §3).
fn verify(assertion: &str, config: &Config, now: u64) -> Result<Verified, OAuthError> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(invalid(format!(
            "the assertion is longer than {MAX_ASSERTION_BYTES} bytes"
        )));
    }
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = parts[..] else {
        return Err(invalid(if parts.len() == 5 {
            "encrypted assertions (JWE) are not supported"
        } else {
            "the assertion is not a JWS in compact serialization"
        }));
    };
    let header = json_object(header_b64)
        .ok_or_else(|| invalid("the assertion's JOSE header is not base64url-encoded JSON"))?;
    let alg = match header.get("alg").and_then(Value::as_str) {
        None => return Err(invalid("the assertion's JOSE header has no alg")),
        Some("none") => return Err(invalid("unsigned assertions (alg none) are not accepted")),
        Some(name) => Alg::parse(name)
            .ok_or_else(|| invalid("the assertion's alg is not one of ES256, RS256, EdDSA"))?,
    };
    // RFC 7515 §4.1.11: extensions marked critical must be understood; none are.
    if header.contains_key("crit") {
        return Err(invalid(
            "the assertion's JOSE header has critical extensions (crit) this server does not support",
        ));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(invalid("the assertion's kid is not a string")),
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| invalid("the assertion's signature is not base64url-encoded"))?;

    // A key is bound to one algorithm, so a header cannot pick another
    // algorithm for the same key (no RS256/ES256 confusion).
    let candidates: Vec<&Key> = config
        .keys
        .iter()
        .filter(|key| kid.is_none() || key.kid.as_deref() == kid)
        .collect();
    if candidates.is_empty() {
        return Err(invalid("no key of this client has the assertion's kid"));
    }
    let candidates: Vec<&Key> = candidates.into_iter().filter(|k| k.alg == alg).collect();
    if candidates.is_empty() {
        return Err(invalid(format!(
            "no {} key is configured for this client{}",
            alg.name(),
            if kid.is_some() {
                " with the assertion's kid"
            } else {
                ""
            }
        )));
    }
    let signing_input = &assertion[..header_b64.len() + 1 + payload_b64.len()];
    let mut verified = false;
    for key in candidates {
        if verify_signature(key, signing_input.as_bytes(), &signature)? {
            verified = true;
            break;
        }
    }
    if !verified {
        return Err(invalid(
            "the assertion's signature does not verify with this client's keys",
        ));
    }

    let claims = json_object(payload_b64)
        .ok_or_else(|| invalid("the assertion's claims are not base64url-encoded JSON"))?;
    check_claims(&claims, config, now)
}

/// RFC 7523 §3 items 1 to 7, after the signature verified.
fn check_claims(
    claims: &Map<String, Value>,
    config: &Config,
    now: u64,
) -> Result<Verified, OAuthError> {
    let string = |name: &str| match claims.get(name) {
        None => Err(invalid(format!("the assertion has no {name} claim"))),
        Some(Value::String(value)) if !value.is_empty() => Ok(value.clone()),
        Some(_) => Err(invalid(format!(
            "the assertion's {name} claim is not a non-empty string"
        ))),
    };
    let date = |name: &str| match claims.get(name) {
        None => Ok(None),
        Some(value) => numeric_date(value)
            .map(Some)
            .ok_or_else(|| invalid(format!("the assertion's {name} claim is not a NumericDate"))),
    };

    // §3 item 1: `iss` identifies the client (or its configured issuer).
    let issuer = string("iss")?;
    if issuer != config.issuer {
        return Err(invalid(
            "the assertion's iss is not the issuer configured for this client",
        ));
    }
    // §3 item 2: `sub`, the principal the token is for.
    let subject = string("sub")?;
    // §3 item 3: `aud` names this authorization server's token endpoint.
    let audience_ok = match claims.get("aud") {
        None => return Err(invalid("the assertion has no aud claim")),
        Some(Value::String(aud)) => config.audiences.contains(aud),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| config.audiences.iter().any(|ours| ours == aud)),
        Some(_) => {
            return Err(invalid(
                "the assertion's aud claim is not a string or strings",
            ));
        }
    };
    if !audience_ok {
        return Err(invalid(
            "the assertion's aud does not name this authorization server's token endpoint",
        ));
    }
    // §3 item 4: `exp` is required and not passed (with the allowed skew).
    let expires_at = date("exp")?.ok_or_else(|| invalid("the assertion has no exp claim"))?;
    if now >= expires_at.saturating_add(config.max_skew) {
        return Err(invalid("the assertion has expired"));
    }
    // §3 item 5: not used before `nbf`.
    if let Some(not_before) = date("nbf")?
        && not_before > now.saturating_add(config.max_skew)
    {
        return Err(invalid(
            "the assertion is not valid yet (nbf is in the future)",
        ));
    }
    // §3 item 6: `iat` not in the future, and the assertion not too long-lived.
    let issued_at = date("iat")?;
    if let Some(issued_at) = issued_at
        && issued_at > now.saturating_add(config.max_skew)
    {
        return Err(invalid("the assertion was issued in the future (iat)"));
    }
    let lifetime = expires_at.saturating_sub(issued_at.unwrap_or(now));
    if lifetime > config.max_lifetime {
        return Err(invalid(format!(
            "the assertion lives longer than {} seconds (exp - iat)",
            config.max_lifetime
        )));
    }
    // §3 item 7: `jti`, single use (checked by the caller against key-value).
    let jti = string("jti")?;
    if jti.len() > MAX_JTI_BYTES {
        return Err(invalid(format!(
            "the assertion's jti is longer than {MAX_JTI_BYTES} bytes"
        )));
    }
    Ok(Verified {
        issuer,
        subject,
        jti,
        expires_at,
    })
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, fractions dropped.
fn numeric_date(value: &Value) -> Option<u64> {
    if let Some(seconds) = value.as_u64() {
        return Some(seconds);
    }
    let seconds = value.as_f64()?;
    // Truncation is the point: fractions of a second do not matter here.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = seconds as u64;
    (seconds.is_finite() && seconds >= 0.0 && seconds < u64::MAX as f64).then_some(whole)
}

/// A base64url (no padding) segment holding a JSON object.
fn json_object(segment: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The key-value key that marks a `jti` used: `jti:<iss>:<jti>`, with `%`
/// and `:` of the issuer percent-encoded so no two (iss, jti) pairs collide.
pub fn replay_key(issuer: &str, jti: &str) -> String {
    let issuer = issuer.replace('%', "%25").replace(':', "%3A");
    format!("jti:{issuer}:{jti}")
}

/// Whether `signature` over `input` verifies with `key`. An undecodable
/// configured key is a configuration error; a malformed signature is `false`.
fn verify_signature(key: &Key, input: &[u8], signature: &[u8]) -> Result<bool, OAuthError> {
    let bad_key = |what: &str| {
        config_error(format!(
            "the {} key{} is not a valid {what}",
            key.alg.name(),
            key.kid
                .as_deref()
                .map(|kid| format!(" {kid:?}"))
                .unwrap_or_default(),
        ))
    };
    match key.alg {
        Alg::Es256 => {
            use p256::ecdsa::signature::Verifier;
            use p256::pkcs8::DecodePublicKey;
            let public = p256::ecdsa::VerifyingKey::from_public_key_pem(&key.public_key_pem)
                .map_err(|_| bad_key("P-256 public key PEM (SPKI)"))?;
            // JWS carries R || S, 32 bytes each (RFC 7518 §3.4), not DER.
            let Ok(signature) = p256::ecdsa::Signature::from_slice(signature) else {
                return Ok(false);
            };
            Ok(public.verify(input, &signature).is_ok())
        }
        Alg::Rs256 => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            use rsa::pkcs8::DecodePublicKey;
            use rsa::signature::Verifier;
            use rsa::traits::PublicKeyParts;
            let public = rsa::PublicKey::from_public_key_pem(&key.public_key_pem)
                .or_else(|_| rsa::PublicKey::from_pkcs1_pem(&key.public_key_pem))
                .map_err(|_| bad_key("RSA public key PEM (SPKI or PKCS#1)"))?;
            if public.n().bit_width() < MIN_RSA_BITS {
                return Err(bad_key("RSA key of at least 2048 bits"));
            }
            let verifier = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(public);
            let Ok(signature) = rsa::pkcs1v15::Signature::try_from(signature) else {
                return Ok(false);
            };
            Ok(verifier.verify(input, &signature).is_ok())
        }
        Alg::EdDsa => {
            use ed25519_dalek::pkcs8::DecodePublicKey;
            let public = ed25519_dalek::VerifyingKey::from_public_key_pem(&key.public_key_pem)
                .map_err(|_| bad_key("Ed25519 public key PEM (SPKI)"))?;
            let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
                return Ok(false);
            };
            // Strict: no small-order keys, no malleable signatures.
            Ok(public.verify_strict(input, &signature).is_ok())
        }
    }
}

#[cfg(test)]
mod tests;
