//! The client credentials grant (RFC 6749 §4.4): a confidential client asks
//! for an access token on its own behalf. It issues no refresh token and
//! reads no configuration.

use grantbox_sdk::{Grant, OAuthError, PluginInfo, TokenGrant, TokenRequest, TokenResponse, host};

/// The `grant_type` this plugin provides.
pub const GRANT_TYPE: &str = "client_credentials";

/// The client credentials grant.
pub struct ClientCredentials;

impl Grant for ClientCredentials {
    fn info() -> PluginInfo {
        PluginInfo::new().grant_type(GRANT_TYPE)
    }

    fn exchange(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        // RFC 6749 §4.4: the client credentials grant type MUST only be used
        // by confidential clients.
        if request.client.public {
            return Err(OAuthError::unauthorized_client(
                "the client credentials grant needs a confidential client",
            ));
        }
        // The host already checked a requested scope against the registration;
        // without one, the client gets every scope it registered.
        let scope = request.scope.unwrap_or(request.client.scopes);
        let grant = TokenGrant {
            subject: None,
            scope,
            // RFC 6749 §4.4.3: a refresh token SHOULD NOT be included.
            refresh_token: false,
            grant_id: None,
        };
        // A host failure becomes `server_error`, or `temporarily_unavailable`
        // when the store is down, without the host's own text.
        let issued = host::tokens::issue(&grant)?;
        Ok(TokenResponse::from(issued))
    }
}

grantbox_sdk::export!(ClientCredentials);

#[cfg(test)]
mod tests;
