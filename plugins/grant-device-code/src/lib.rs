//! The device authorization grant (RFC 8628 §3) as a plugin: a device with
//! no browser (a TV, a CLI) asks for a device code and a user code, shows the
//! user code, and polls the token endpoint while the user approves on
//! another device.
//!
//! - The endpoint `/device_authorization` (§3.1, §3.2): the client must be
//!   registered for [`GRANT_TYPE`] (else `unauthorized_client`) and may ask
//!   for a scope within its registration (else `invalid_scope`); the answer
//!   carries `device_code`, `user_code`, `verification_uri` (the issuer
//!   followed by [`USER_STEP`]), `verification_uri_complete`, `expires_in`
//!   and `interval`.
//! - The user step [`USER_STEP`] (§3.3): the host asks a signed-in user for
//!   the user code; `find_user_code` says which client asks for which scope,
//!   `complete_user_code` records the approval or denial. A user code is
//!   used once.
//! - `grant_type=urn:ietf:params:oauth:grant-type:device_code` at the token
//!   endpoint (§3.4, §3.5): `authorization_pending` until the user decided,
//!   `slow_down` (and 5 s more on the interval, kept with the device code)
//!   when the client polls faster than its interval, `access_denied`,
//!   `expired_token`, and the tokens once: a poll after them is
//!   `invalid_grant`. Only the client that asked for the device code may
//!   poll it. A refresh token comes with the tokens when the client is
//!   registered for `refresh_token`.
//!
//! State lives in the key-value store under the SHA-256 of the device code
//! and of the normalised user code, never the codes themselves, with TTLs
//! that end it after the device code expired. Time comes from the `clock`
//! capability and codes from `random`.
//!
//! `[config]` keys (decoded into [`Config`]; a missing key takes its
//! default, a malformed one answers `server_error` and logs which key):
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `expires_in` | `600` | seconds a device code and its user code live (§3.2 `expires_in`) |
//! | `interval` | `5` | seconds a client waits between polls (§3.2 `interval`) |

use std::num::NonZeroU32;

use grantbox_sdk::{
    EndpointRequest, EndpointResponse, Grant, OAuthError, PendingAuthorization, PluginInfo,
    TokenGrant, TokenRequest, TokenResponse, UserCodeEntry, UserCodeOutcome, UserDecision,
    check_scope, host, param, requested_scope,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `grant_type` this plugin provides (RFC 8628 §3.4).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The device authorization endpoint's path (RFC 8628 §3.1).
pub const ENDPOINT: &str = "/device_authorization";
/// The user step's path: the `verification_uri` (RFC 8628 §3.2).
pub const USER_STEP: &str = "/device";

/// RFC 8628 §6.1: consonants only, no vowels (no words) and none of the
/// easily confused letters; 20 characters.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code: 20^8 ≈ 2^34.6 codes.
pub const USER_CODE_LENGTH: usize = 8;
/// Random bytes in a device code (256 bits).
const DEVICE_CODE_BYTES: u32 = 32;
/// RFC 8628 §3.5: `slow_down` adds 5 seconds to the interval.
const SLOW_DOWN_SECONDS: u64 = 5;
/// How long after its expiry a device code is still known as expired.
const EXPIRED_KEPT_SECONDS: u64 = 600;
/// Tries at drawing a user code no pending device holds.
const USER_CODE_ATTEMPTS: usize = 8;

/// The step data that names the device record (its key's digest).
const DATA_DEVICE: &str = "device";
/// The step data that names the user code (its key's digest).
const DATA_USER_CODE: &str = "user_code";

/// The manifest's `[config]` (the table in the module documentation).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    expires_in: NonZeroU32,
    interval: NonZeroU32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            expires_in: NonZeroU32::new(600).expect("600 is not zero"),
            interval: NonZeroU32::new(5).expect("5 is not zero"),
        }
    }
}

impl Config {
    fn load() -> Result<Config, OAuthError> {
        host::config::decode().map_err(|error| {
            error.into_oauth_error("the device authorization grant is misconfigured")
        })
    }
}

/// What the plugin keeps for one device code, under `device:<digest>`.
#[derive(Debug, Serialize, Deserialize)]
struct Device {
    client_id: String,
    scope: Vec<String>,
    /// When the device code and its user code expire (Unix seconds).
    expires_at: u64,
    /// The polling interval, grown by `slow_down`.
    interval: u64,
    /// When the client last polled.
    last_poll: Option<u64>,
    status: Status,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Status {
    Pending,
    Approved { subject: String, scope: Vec<String> },
    Denied,
}

/// The device authorization grant.
pub struct DeviceCode;

impl Grant for DeviceCode {
    fn info() -> PluginInfo {
        PluginInfo::new().grant_type(GRANT_TYPE)
    }

    fn endpoint(request: EndpointRequest) -> Result<EndpointResponse, OAuthError> {
        if request.path != ENDPOINT {
            return Err(OAuthError::server_error(format!(
                "endpoint `{}` is not served by the device authorization grant",
                request.path
            )));
        }
        let client = request.authenticated_client()?;
        if !client.has_grant_type(GRANT_TYPE) {
            return Err(OAuthError::unauthorized_client(format!(
                "the client is not registered for the grant type {GRANT_TYPE}"
            )));
        }
        let scope = requested_scope(&request.params, client)?.unwrap_or(client.scopes.clone());
        let config = Config::load()?;
        let expires_in = config.expires_in.get();
        let now = host::clock::now()?;

        let device_code = hex(&host::random::bytes(DEVICE_CODE_BYTES)?);
        let device_key = device_key(&device_code);
        let device = Device {
            client_id: client.client_id.clone(),
            scope,
            expires_at: now + u64::from(expires_in),
            interval: u64::from(config.interval.get()),
            last_poll: None,
            status: Status::Pending,
        };
        save(&device_key, &device)?;

        let user_code = draw_user_code(&device_key, expires_in)?;
        let shown = display_user_code(&user_code);
        let verification_uri = request.url(USER_STEP);
        Ok(EndpointResponse::ok(&serde_json::json!({
            "device_code": device_code,
            "user_code": shown,
            "verification_uri": verification_uri,
            "verification_uri_complete": format!("{verification_uri}?user_code={shown}"),
            "expires_in": expires_in,
            "interval": device.interval,
        })))
    }

    fn find_user_code(entry: UserCodeEntry) -> Result<Option<PendingAuthorization>, OAuthError> {
        let Some(user_code) = normalise_user_code(&entry.user_code) else {
            return Ok(None);
        };
        let user_key = user_key(&user_code);
        let Some(device_key) = host::key_value::get(&user_key)? else {
            return Ok(None);
        };
        let device_key = String::from_utf8(device_key)
            .map_err(|_| OAuthError::server_error("a user code record is not text"))?;
        let Some(device) = load(&device_key)? else {
            return Ok(None);
        };
        if !matches!(device.status, Status::Pending) || host::clock::now()? >= device.expires_at {
            return Ok(None);
        }
        Ok(Some(
            PendingAuthorization::new(&device.client_id, &device.scope)
                .with_data(DATA_DEVICE, &device_key)
                .with_data(DATA_USER_CODE, &user_key),
        ))
    }

    fn complete_user_code(outcome: UserCodeOutcome) -> Result<(), OAuthError> {
        let device_key = param(&outcome.data, DATA_DEVICE)?;
        let user_key = param(&outcome.data, DATA_USER_CODE)?;
        let expired =
            || OAuthError::expired_token("this code has expired; start again on your device");
        let Some(mut device) = load(device_key)? else {
            return Err(expired());
        };
        if device.client_id != outcome.client.client_id {
            return Err(OAuthError::invalid_request(
                "this code belongs to another client",
            ));
        }
        if host::clock::now()? >= device.expires_at {
            return Err(expired());
        }
        // Deleting the user code is the one atomic step: of two users
        // deciding on one code at once, only the first decides.
        if !matches!(device.status, Status::Pending) || !host::key_value::delete(user_key)? {
            return Err(OAuthError::invalid_grant("this code was already used"));
        }
        device.status = match outcome.decision {
            UserDecision::Approved(approval) => {
                check_scope(&approval.scope, &device.scope)?;
                Status::Approved {
                    subject: approval.subject,
                    scope: approval.scope,
                }
            }
            UserDecision::Denied => Status::Denied,
        };
        save(device_key, &device)
    }

    fn exchange(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        let device_code = param(&request.params, "device_code")?;
        let device_key = device_key(device_code);
        let unknown = || OAuthError::invalid_grant("the device_code is invalid");
        let Some(mut device) = load(&device_key)? else {
            return Err(unknown());
        };
        // RFC 8628 §3.4 with RFC 6749 §5.2: a device code issued to another
        // client is as good as unknown.
        if device.client_id != request.client.client_id {
            return Err(unknown());
        }
        let now = host::clock::now()?;
        if now >= device.expires_at {
            return Err(OAuthError::expired_token(
                "the device_code has expired; start a new device authorization",
            ));
        }
        match device.status {
            Status::Pending => {
                let too_soon = device
                    .last_poll
                    .is_some_and(|last_poll| now < last_poll + device.interval);
                device.last_poll = Some(now);
                if too_soon {
                    device.interval += SLOW_DOWN_SECONDS;
                    save(&device_key, &device)?;
                    return Err(OAuthError::slow_down(format!(
                        "polling too often; wait {} seconds between requests",
                        device.interval
                    )));
                }
                save(&device_key, &device)?;
                Err(OAuthError::authorization_pending(
                    "the user has not yet approved the device",
                ))
            }
            Status::Denied => Err(OAuthError::access_denied(
                "the user denied the device authorization",
            )),
            Status::Approved { subject, scope } => {
                // The guard is inserted before the tokens are issued, so of
                // two polls at once only one gets tokens, and every later
                // poll finds it. It lives as long as the device record.
                let guard = issued_key(&device_key);
                let ttl = record_ttl(device.expires_at, now);
                if !host::key_value::insert_new(&guard, b"", Some(ttl))? {
                    return Err(OAuthError::invalid_grant(
                        "the device_code was already used",
                    ));
                }
                let grant = TokenGrant {
                    subject: Some(subject),
                    scope,
                    // The host drops it unless the client registers `refresh_token`.
                    refresh_token: true,
                    grant_id: None,
                };
                match host::tokens::issue(&grant) {
                    Ok(issued) => Ok(TokenResponse::from(issued)),
                    Err(error) => {
                        // Nothing was issued: the next poll may try again.
                        let _ = host::key_value::delete(&guard);
                        Err(error.into())
                    }
                }
            }
        }
    }
}

grantbox_sdk::export!(DeviceCode);

/// A user code as typed (any case, dashes, spaces) in its canonical form:
/// 8 upper-case letters of [`USER_CODE_ALPHABET`]; `None` when it cannot be
/// one, so no lookup is made for it.
pub fn normalise_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid = code.len() == USER_CODE_LENGTH
        && code.bytes().all(|byte| USER_CODE_ALPHABET.contains(&byte));
    valid.then_some(code)
}

/// A canonical user code as shown to the user: `XXXX-XXXX`.
pub fn display_user_code(code: &str) -> String {
    let (first, second) = code.split_at(code.len() / 2);
    format!("{first}-{second}")
}

/// Draws a user code no pending device holds and points it at `device_key`.
fn draw_user_code(device_key: &str, expires_in: u32) -> Result<String, OAuthError> {
    for _ in 0..USER_CODE_ATTEMPTS {
        let code = random_user_code()?;
        if host::key_value::insert_new(&user_key(&code), device_key.as_bytes(), Some(expires_in))? {
            return Ok(code);
        }
    }
    Err(OAuthError::temporarily_unavailable(
        "no free user code was found; try again",
    ))
}

/// Eight characters drawn uniformly from [`USER_CODE_ALPHABET`]: bytes of
/// 240 and above are dropped, so `byte % 20` has no bias.
fn random_user_code() -> Result<String, OAuthError> {
    let mut code = String::with_capacity(USER_CODE_LENGTH);
    while code.len() < USER_CODE_LENGTH {
        for byte in host::random::bytes(16)? {
            if byte < 240 && code.len() < USER_CODE_LENGTH {
                code.push(char::from(USER_CODE_ALPHABET[usize::from(byte % 20)]));
            }
        }
    }
    Ok(code)
}

fn device_key(device_code: &str) -> String {
    format!("device:{}", hex(&Sha256::digest(device_code.as_bytes())))
}

fn user_key(user_code: &str) -> String {
    format!("user:{}", hex(&Sha256::digest(user_code.as_bytes())))
}

/// Marks a device code whose tokens were issued.
fn issued_key(device_key: &str) -> String {
    format!("issued:{device_key}")
}

fn load(device_key: &str) -> Result<Option<Device>, OAuthError> {
    let Some(bytes) = host::key_value::get(device_key)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| OAuthError::server_error("a device record does not decode"))
}

/// Stores the device record (see [`record_ttl`]).
fn save(device_key: &str, device: &Device) -> Result<(), OAuthError> {
    let now = host::clock::now()?;
    let bytes = serde_json::to_vec(device)
        .map_err(|_| OAuthError::server_error("a device record does not encode"))?;
    host::key_value::set(device_key, &bytes, Some(record_ttl(device.expires_at, now)))?;
    Ok(())
}

/// How long a device record (and its used-up guard) is kept: until the device
/// code expires and [`EXPIRED_KEPT_SECONDS`] more, so a late poll hears
/// `expired_token` (RFC 8628 §3.5) rather than `invalid_grant`.
fn record_ttl(expires_at: u64, now: u64) -> u32 {
    let seconds = expires_at.saturating_sub(now) + EXPIRED_KEPT_SECONDS;
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    out
}

#[cfg(test)]
mod tests;
