//! The host's capabilities as plain functions, one module per WIT interface.
//! On `wasm32` they call the component's imports; elsewhere they call the
//! thread's [`crate::testing::TestHost`], so plugin logic runs under `cargo test`.
//!
//! Every call succeeds only when the plugin's manifest asks for the
//! capability and the operator allows it; otherwise it returns
//! [`HostError::Denied`](crate::HostError::Denied), as a value.

#[cfg(target_arch = "wasm32")]
use crate::bindings::grantbox::plugin as backend;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::backend;

/// Capability `tokens`: the host mints, hashes and stores every token.
pub mod tokens {
    use super::backend;
    use crate::{HostError, IssuedTokens, TokenGrant, TokenInfo};

    /// Issues an access token, and a refresh token when asked and the
    /// client's registration lists `refresh_token`, to the calling client.
    pub fn issue(grant: &TokenGrant) -> Result<IssuedTokens, HostError> {
        backend::tokens::issue(grant)
    }

    /// Looks up an active token of this server, whichever client holds it;
    /// `None` when it is expired, revoked or unknown.
    pub fn introspect(token: &str) -> Result<Option<TokenInfo>, HostError> {
        backend::tokens::introspect(token)
    }

    /// Revokes every token of an authorization grant (token family).
    pub fn revoke_grant(grant_id: &str) -> Result<(), HostError> {
        backend::tokens::revoke_grant(grant_id)
    }
}

/// Capability `token-exchange` (interface 1.1.0, RFC 8693): tokens restricted
/// to audiences and carrying the acting party. A manifest that asks for it
/// must name `interface = "grantbox:plugin@1.1.0"` or later.
pub mod token_exchange {
    use super::backend;
    use crate::{ExchangeGrant, ExchangedTokenInfo, HostError, IssuedTokens};

    /// Issues an access token (never a refresh token) to the calling client,
    /// with the grant's audience and actor, in the family of a token this
    /// call looked up when `grant_id` names one.
    pub fn issue(grant: &ExchangeGrant) -> Result<IssuedTokens, HostError> {
        backend::token_exchange::issue(grant)
    }

    /// Looks up an active token of this server, whichever client holds it,
    /// with its audience and actor; `None` when it is expired, revoked or
    /// unknown.
    pub fn lookup(token: &str) -> Result<Option<ExchangedTokenInfo>, HostError> {
        backend::token_exchange::lookup(token)
    }
}

/// Capability `signing` (interface 1.2.0): JWTs signed with the host's own
/// key, the one its JWKS publishes, so a resource server verifies them
/// offline. The plugin never sees the key. A manifest that asks for it must
/// name `interface = "grantbox:plugin@1.2.0"` or later.
pub mod signing {
    use super::backend;
    use crate::HostError;

    /// Signs `claims` as a JWS compact serialization with the host's signing
    /// key that is active now; the header carries `alg`, `kid` and `typ`
    /// (e.g. `at+jwt`, RFC 9068 §2.1). The host sets `iss` to its issuer
    /// identifier, replacing any in `claims`, and refuses as
    /// [`HostError::InvalidArgument`] claims without an integer `exp` in the
    /// future and within the host's access token lifetime, claims over
    /// 16 KiB, or a `typ` that is not a media type name of at most 64
    /// characters. The token counts as issued in this call: the plugin may
    /// answer with it as its `access_token`.
    pub fn sign(
        typ: &str,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, HostError> {
        let claims = serde_json::Value::Object(claims.clone()).to_string();
        backend::signing::sign(typ, &claims)
    }
}

/// Capability `openid` (interface 1.4.0): the host's OpenID Connect ID token
/// for a grant this call redeemed a code of or rotated a refresh token into.
/// The host states who signed in, when and how, and the user's claims the
/// scope releases, and signs with its own keys; the plugin decides when to
/// ask and passes the request's `nonce` through. A manifest that asks for it
/// must name `interface = "grantbox:plugin@1.4.0"` or later.
pub mod openid {
    use super::backend;
    use crate::{HostError, IdTokenRequest, IssuedTokens, TokenResponse};

    /// The scope value that asks for an ID token (OIDC Core §3.1.2.1).
    pub const OPENID_SCOPE: &str = "openid";

    /// The token response for tokens just issued (by `tokens::issue` for a
    /// redeemed code, or `refresh_tokens::rotate`): with the host's
    /// `id_token` for their family when `openid` is in their scope (OIDC
    /// Core §3.1.3.3; on refresh §12.2, with `nonce` `None`), its `at_hash`
    /// from their access token. Without `openid`, the plain response.
    pub fn token_response(
        issued: IssuedTokens,
        nonce: Option<&str>,
    ) -> Result<TokenResponse, HostError> {
        let id_token = if issued.scope.iter().any(|word| word == OPENID_SCOPE) {
            Some(id_token(
                &issued.grant_id,
                nonce,
                Some(&issued.access_token),
            )?)
        } else {
            None
        };
        let mut response = TokenResponse::from(issued);
        if let Some(id_token) = id_token {
            response.extra.push(("id_token".to_string(), id_token));
        }
        Ok(response)
    }

    /// The ID token (a JWS compact serialization, `typ` `JWT`) of
    /// `grant_id` for the calling client: `grant_id` must be one whose code
    /// `codes::redeem` redeemed, or whose refresh token
    /// `refresh_tokens::rotate` rotated, in this call, with `openid` in that
    /// scope. `nonce` is echoed exactly (1 to 512 bytes, no control
    /// characters; `None` on refresh, OIDC Core §12.2); `access_token`, an
    /// access token issued in this call, gives the token its `at_hash`.
    /// [`HostError::InvalidArgument`] when any of that does not hold, or the
    /// user has been removed or disabled since. The token counts as issued
    /// in this call: the plugin may answer with it (as `id_token`).
    pub fn id_token(
        grant_id: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<String, HostError> {
        backend::openid::id_token(&IdTokenRequest {
            grant_id: grant_id.to_string(),
            nonce: nonce.map(str::to_string),
            access_token: access_token.map(str::to_string),
        })
    }
}

/// Capability `codes`: one-time authorization codes (RFC 6749 §4.1.2).
pub mod codes {
    use super::backend;
    use crate::{AuthorizationCode, CodeGrant, HostError, RedeemError};

    /// Creates a code for the calling client that lives `lifetime_seconds`.
    pub fn issue(grant: &CodeGrant, lifetime_seconds: u32) -> Result<String, HostError> {
        backend::codes::issue(grant, lifetime_seconds)
    }

    /// Redeems a code of the calling client, once. A second redemption is
    /// [`RedeemError::Replayed`] and revokes every token issued from the code.
    pub fn redeem(code: &str) -> Result<AuthorizationCode, RedeemError> {
        backend::codes::redeem(code)
    }
}

/// Capability `refresh-tokens`: lookup and rotation (RFC 6749 §6, RFC 9700 §4.14).
pub mod refresh_tokens {
    use super::backend;
    use crate::{HostError, IssuedTokens, RefreshError, TokenInfo};

    /// Looks up an active refresh token of the calling client. A token
    /// retired by rotation is reuse: the host revokes its whole family and
    /// answers `None`, so "`None` means `invalid_grant`" is safe.
    pub fn find(refresh_token: &str) -> Result<Option<TokenInfo>, HostError> {
        backend::refresh_tokens::find(refresh_token)
    }

    /// Retires `refresh_token` and issues, in the same family and atomically,
    /// a new access token with `scope` (within the retired token's scope) and
    /// a new refresh token with the retired token's scope (RFC 6749 §6).
    /// Presenting a retired token again is [`RefreshError::Reused`] and
    /// revokes the whole family.
    pub fn rotate(refresh_token: &str, scope: &[String]) -> Result<IssuedTokens, RefreshError> {
        backend::refresh_tokens::rotate(refresh_token, scope)
    }
}

/// Capability `users`: resource owner passwords.
pub mod users {
    use super::backend;
    use crate::HostError;

    /// Checks a password under the host's login rate limit; the subject when
    /// it matches, `None` otherwise.
    pub fn verify_password(username: &str, password: &str) -> Result<Option<String>, HostError> {
        backend::users::verify_password(username, password)
    }
}

/// Capability `key-value`: a namespace of the plugin's own, values expire after their TTL.
pub mod key_value {
    use super::backend;
    use crate::HostError;

    /// The value of `key`, `None` when it is absent or expired.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
        backend::key_value::get(key)
    }

    /// Stores `value` under `key`, for `ttl_seconds` or for good.
    pub fn set(key: &str, value: &[u8], ttl_seconds: Option<u32>) -> Result<(), HostError> {
        backend::key_value::set(key, value, ttl_seconds)
    }

    /// Stores `value` only when `key` is absent or expired; `false` when it
    /// exists. The building block for replay detection (e.g. a JWT `jti`).
    pub fn insert_new(
        key: &str,
        value: &[u8],
        ttl_seconds: Option<u32>,
    ) -> Result<bool, HostError> {
        backend::key_value::insert_new(key, value, ttl_seconds)
    }

    /// Removes `key`; `true` when it existed.
    pub fn delete(key: &str) -> Result<bool, HostError> {
        backend::key_value::delete(key)
    }
}

/// Capability `random`: a cryptographically secure generator.
pub mod random {
    use super::backend;
    use crate::HostError;

    /// `len` random bytes, at most 1024 a call.
    pub fn bytes(len: u32) -> Result<Vec<u8>, HostError> {
        backend::random::bytes(len)
    }
}

/// Capability `clock`: the host's clock (tests run it fixed).
pub mod clock {
    use super::backend;
    use crate::HostError;

    /// Seconds since the Unix epoch.
    pub fn now() -> Result<u64, HostError> {
        backend::clock::now()
    }
}

/// Capability `log`: lines in the host's log, tagged with the plugin.
pub mod log {
    use super::backend;
    use crate::HostError;

    pub use crate::bindings::grantbox::plugin::log::Level;

    /// Writes `message` (at most 4096 bytes) at `level`.
    pub fn log(level: Level, message: &str) -> Result<(), HostError> {
        backend::log::log(level, message)
    }

    /// Writes an error line. Like [`warn`], [`info`] and [`debug`] it ignores
    /// a failure: a plugin that cannot log should still answer the client.
    pub fn error(message: &str) {
        let _ = log(Level::Error, message);
    }

    /// Writes a warning line, ignoring a failure.
    pub fn warn(message: &str) {
        let _ = log(Level::Warn, message);
    }

    /// Writes an info line, ignoring a failure.
    pub fn info(message: &str) {
        let _ = log(Level::Info, message);
    }

    /// Writes a debug line, ignoring a failure.
    pub fn debug(message: &str) {
        let _ = log(Level::Debug, message);
    }
}

/// Capability `config`: the `[config]` table of the plugin's manifest.
///
/// [`decode`](config::decode) reads the whole table into the plugin's own
/// `serde` type, so a plugin states its configuration once, as a struct:
///
/// ```
/// use grantbox_sdk::host;
/// use grantbox_sdk::testing::{Capability, TestHost};
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Config {
///     #[serde(default = "default_lifetime")]
///     lifetime_seconds: u32,
///     audiences: Vec<String>,
/// }
/// fn default_lifetime() -> u32 { 60 }
///
/// let mut test_host = TestHost::new()
///     .grant_capabilities(&[Capability::Config])
///     .config_raw("audiences", r#"["billing"]"#);
/// let config: Config = test_host.run(|| host::config::decode()).unwrap();
/// assert_eq!((config.lifetime_seconds, config.audiences), (60, vec!["billing".to_string()]));
///
/// let mut test_host = test_host.config_raw("lifetime_seconds", r#""soon""#);
/// let error = test_host.run(|| host::config::decode::<Config>()).unwrap_err();
/// assert_eq!(error.key(), Some("lifetime_seconds"));
/// ```
pub mod config {
    use super::backend;
    use crate::HostError;

    pub use crate::config_error::ConfigError;

    /// A top-level key: strings as they are, numbers and booleans as text,
    /// tables and arrays as JSON; `None` when the key is absent.
    pub fn get(key: &str) -> Result<Option<String>, HostError> {
        backend::config::get(key)
    }

    /// The whole table as a JSON object.
    pub fn json() -> Result<String, HostError> {
        backend::config::json()
    }

    /// The whole table as the plugin's type `T`: TOML's strings, numbers,
    /// booleans, arrays and tables arrive as they are written (unlike
    /// [`get`], which turns them into text). A key `T` does not name is
    /// ignored; a missing one takes `T`'s `#[serde(default)]` or fails.
    /// The error names the key (`clients.app.keys[0].alg`) and what is
    /// wrong with it.
    pub fn decode<T: serde::de::DeserializeOwned>() -> Result<T, ConfigError> {
        let json = json().map_err(ConfigError::Host)?;
        ConfigError::decode(&json)
    }
}
