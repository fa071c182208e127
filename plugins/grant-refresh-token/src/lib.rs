//! The refresh token grant (RFC 6749 §6) with refresh token rotation
//! (RFC 9700 §4.14.2): every use retires the presented refresh token and
//! issues, in the same token family, a new access token and a new refresh
//! token.
//!
//! A retired refresh token presented again means two parties hold it, the
//! client and perhaps an attacker, and the host cannot tell which is which:
//! it revokes the whole family, so both have to go back to the user. That
//! happens in the host (on lookup and on rotation) and the client sees
//! `invalid_grant`.
//!
//! A request may narrow the scope of the new access token, never widen it
//! (RFC 6749 §6: `invalid_scope`); the new refresh token keeps the retired
//! one's scope, so a narrowed request does not shrink later refreshes. The
//! plugin reads no configuration.
//!
//! OpenID Connect (Core 1.0 §12.2): when the new access token's scope
//! includes `openid`, the response also carries a new `id_token` from the
//! host (capability `openid`), stating the original sign-in (`auth_time`),
//! without a `nonce`, with the new access token's `at_hash`.

use grantbox_sdk::{Grant, OAuthError, PluginInfo, TokenRequest, TokenResponse, host, param};

/// The `grant_type` this plugin provides.
pub const GRANT_TYPE: &str = "refresh_token";

/// For a refresh token the calling client does not hold an active one of.
const INVALID_REFRESH_TOKEN: &str = "the refresh token is invalid";

/// The refresh token grant with rotation.
pub struct RefreshToken;

impl Grant for RefreshToken {
    fn info() -> PluginInfo {
        PluginInfo::new().grant_type(GRANT_TYPE)
    }

    fn exchange(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        let refresh_token = param(&request.params, "refresh_token")?;

        // Unknown, another client's, expired, revoked or already rotated →
        // `None` (an already rotated one also revokes its family).
        let Some(found) = host::refresh_tokens::find(refresh_token)? else {
            return Err(OAuthError::invalid_grant(INVALID_REFRESH_TOKEN));
        };
        if found.client_id != request.client.client_id {
            return Err(OAuthError::invalid_grant(INVALID_REFRESH_TOKEN));
        }

        // RFC 6749 §6: the requested scope must not include any scope not
        // originally granted by the resource owner; absent, it is the
        // original scope.
        let scope = match request.scope {
            None => found.scope,
            Some(requested) => {
                if let Some(word) = requested.iter().find(|word| !found.scope.contains(word)) {
                    return Err(OAuthError::invalid_scope(format!(
                        "scope `{word}` was not granted to the refresh token"
                    )));
                }
                requested
            }
        };

        // Unknown, expired or reused (the host revoked the family) →
        // invalid_grant with distinct descriptions; a host failure →
        // server_error or temporarily_unavailable.
        let issued = host::refresh_tokens::rotate(refresh_token, &scope)?;
        // With `openid`, a new ID token for the original sign-in, no nonce.
        Ok(host::openid::token_response(issued, None)?)
    }
}

grantbox_sdk::export!(RefreshToken);

#[cfg(test)]
mod tests;
