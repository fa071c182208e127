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
//!
//! The JWS itself (header, algorithm, signature) is verified by `jwt-simple`
//! (pure Rust); the claims are checked here, against the host's clock passed
//! in explicitly, since the sandbox gives the library no clock of its own.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use grantbox_sdk::host::config::ConfigError;
use grantbox_sdk::{
    Grant, OAuthError, PluginInfo, TokenGrant, TokenRequest, TokenResponse, host, param,
};
use jwt_simple::prelude::{
    Duration, ECDSAP256PublicKeyLike, ES256PublicKey, Ed25519PublicKey, EdDSAPublicKeyLike,
    NoCustomClaims, RS256PublicKey, RSAPublicKeyLike, UnixTimeStamp, VerificationOptions,
};
use jwt_simple::{JWTError, token::Token};
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

/// Verifies the assertion's claims (RFC 7523 §3), then its signature with
/// the client's keys; nothing is burnt or issued unless both pass.
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
    // Before the library sees it, so a header it cannot read is named as such.
    let header = json_object(header_b64)
        .ok_or_else(|| invalid("the assertion's JOSE header is not base64url-encoded JSON"))?;
    match (header.get("alg"), header.get("kid")) {
        (None, _) => return Err(invalid("the assertion's JOSE header has no alg")),
        (_, Some(kid)) if !kid.is_string() => {
            return Err(invalid("the assertion's kid is not a string"));
        }
        _ => {}
    }
    let header = Token::decode_metadata(assertion)
        .map_err(|_| invalid("the assertion's JOSE header is not a JWS header"))?;
    let alg = match header.algorithm() {
        "none" => return Err(invalid("unsigned assertions (alg none) are not accepted")),
        name => Alg::parse(name)
            .ok_or_else(|| invalid("the assertion's alg is not one of ES256, RS256, EdDSA"))?,
    };
    // RFC 7515 §4.1.11: extensions marked critical must be understood; none are.
    if header.critical().is_some() {
        return Err(invalid(
            "the assertion's JOSE header has critical extensions (crit) this server does not support",
        ));
    }
    let kid = header.key_id();
    if URL_SAFE_NO_PAD.decode(signature_b64).is_err() {
        return Err(invalid(
            "the assertion's signature is not base64url-encoded",
        ));
    }
    // The claims are checked first: the library only confirms the signature.
    let claims = json_object(payload_b64)
        .ok_or_else(|| invalid("the assertion's claims are not base64url-encoded JSON"))?;
    let verified = check_claims(&claims, config, now)?;

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
    let mut signature_verified = false;
    for key in candidates {
        if verify_signature(key, assertion, config, now)? {
            signature_verified = true;
            break;
        }
    }
    if !signature_verified {
        return Err(invalid(
            "the assertion's signature does not verify with this client's keys",
        ));
    }
    Ok(verified)
}

/// RFC 7523 §3 items 1 to 7; the signature is verified after them.
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

/// Whether the assertion's JWS verifies with `key`, by `jwt-simple`. An
/// undecodable configured key is a configuration error; a signature that
/// does not verify is `false`. The claims passed [`check_claims`] already;
/// the library's own time checks run against the host's `now` (the sandbox
/// has no clock the library could read) with the same skew, so they agree.
fn verify_signature(
    key: &Key,
    assertion: &str,
    config: &Config,
    now: u64,
) -> Result<bool, OAuthError> {
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
    let options = VerificationOptions {
        artificial_time: Some(UnixTimeStamp::from_secs(now)),
        time_tolerance: Some(Duration::from_secs(config.max_skew)),
        max_token_length: Some(MAX_ASSERTION_BYTES),
        ..Default::default()
    };
    let verified = match key.alg {
        Alg::Es256 => ES256PublicKey::from_pem(&key.public_key_pem)
            .map_err(|_| bad_key("P-256 public key PEM (SPKI)"))?
            .verify_token::<NoCustomClaims>(assertion, Some(options)),
        Alg::Rs256 => {
            let public = RS256PublicKey::from_pem(&key.public_key_pem).map_err(|_| {
                bad_key("RSA public key PEM (SPKI or PKCS#1) of at least 2048 bits")
            })?;
            if public.to_components().n.len() * 8 < MIN_RSA_BITS as usize {
                return Err(bad_key("RSA key of at least 2048 bits"));
            }
            public.verify_token::<NoCustomClaims>(assertion, Some(options))
        }
        Alg::EdDsa => Ed25519PublicKey::from_pem(&key.public_key_pem)
            .map_err(|_| bad_key("Ed25519 public key PEM (SPKI)"))?
            .verify_token::<NoCustomClaims>(assertion, Some(options)),
    };
    match verified {
        Ok(_) => Ok(true),
        Err(error) => match error.downcast_ref::<JWTError>() {
            Some(JWTError::InvalidSignature) => Ok(false),
            // The claims passed the same rules above; whatever else the
            // library refuses (a `typ` that is not a JWT, a claim it cannot
            // read) is refused without echoing the assertion.
            _ => Err(invalid("the assertion is not a JWT this server accepts")),
        },
    }
}

#[cfg(test)]
mod tests;
