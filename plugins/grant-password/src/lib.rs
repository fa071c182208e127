//! The resource owner password credentials grant (RFC 6749 §4.3): the client
//! sends the user's `username` and `password` to the token endpoint and gets
//! tokens for that user.
//!
//! **Legacy.** RFC 9700 §2.4 says it MUST NOT be used: the client sees the
//! user's credentials, so they can leak in more places than the
//! authorization server; users learn to type their password into other
//! pages; and it cannot carry multi-factor or phishing-resistant logins
//! (WebAuthn). It is still offered for what RFC 6749 §4.3 meant it for:
//! migrating existing first-party clients that hold credentials to tokens,
//! until they move to the authorization code grant. It answers only clients
//! whose registration lists `password` in its `grant_types`; the host
//! enforces that before the plugin runs, and the plugin checks again.
//!
//! The host verifies the password under its login rate limit; a rate-limited
//! or unreachable store answers `temporarily_unavailable`. An unknown user
//! and a wrong password get the same `invalid_grant`, so the response does
//! not tell which usernames exist. The plugin reads no configuration.

use grantbox_sdk::{
    Grant, HostError, OAuthError, PluginInfo, TokenGrant, TokenRequest, TokenResponse, host, param,
};

/// The `grant_type` this plugin provides.
pub const GRANT_TYPE: &str = "password";

/// The one description for every credential failure.
const INVALID_CREDENTIALS: &str = "invalid resource owner credentials";

/// The resource owner password credentials grant.
pub struct Password;

impl Grant for Password {
    fn info() -> PluginInfo {
        PluginInfo::new().grant_type(GRANT_TYPE)
    }

    fn exchange(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        // The host refuses unregistered grant types; this legacy grant checks
        // again rather than rely on it alone.
        if !request
            .client
            .grant_types
            .iter()
            .any(|grant_type| grant_type == GRANT_TYPE)
        {
            return Err(OAuthError::unauthorized_client(
                "the client is not registered for the password grant",
            ));
        }
        // Missing, empty or repeated → invalid_request (RFC 6749 §3.1, §4.3.2).
        let username = param(&request.params, "username")?;
        let password = param(&request.params, "password")?;

        let subject = match host::users::verify_password(username, password) {
            Ok(Some(subject)) => subject,
            Ok(None) => return Err(OAuthError::invalid_grant(INVALID_CREDENTIALS)),
            // The host refuses a username or password longer than its limits:
            // no account has such credentials.
            Err(HostError::InvalidArgument(_)) => {
                return Err(OAuthError::invalid_grant(INVALID_CREDENTIALS));
            }
            // `unavailable` (store down, or the login rate limit) becomes
            // temporarily_unavailable, anything else server_error.
            Err(error) => return Err(error.into()),
        };

        // The host already checked a requested scope against the registration;
        // without one, the client gets every scope it registered.
        let grant = TokenGrant {
            subject: Some(subject),
            scope: request.scope.unwrap_or(request.client.scopes),
            // The host drops it unless the client registers `refresh_token`.
            refresh_token: true,
            grant_id: None,
        };
        let issued = host::tokens::issue(&grant)?;
        Ok(TokenResponse::from(issued))
    }
}

grantbox_sdk::export!(Password);

#[cfg(test)]
mod tests;
