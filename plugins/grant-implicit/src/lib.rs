//! The implicit grant (RFC 6749 §4.2): `response_type=token` returns an
//! access token straight from the authorization endpoint, in the redirect
//! URI's fragment, with no token request.
//!
//! **Legacy.** RFC 9700 §2.1.2 says clients SHOULD NOT use it: a token in
//! the front channel can leak (browser history, `Referer`, open redirectors,
//! a tampered redirect URI, RFC 9700 §4.1–§4.3), an attacker can inject a
//! stolen token into a client's response (§4.6), and nothing binds the token
//! to the client that asked for it. The authorization code grant with PKCE
//! (`grant-authorization-code`) does the same job without these weaknesses.
//! The grant loads so existing clients keep working during a migration, but
//! it answers only clients whose registration lists `implicit` in its
//! `grant_types`; every other client gets `unauthorized_client`.
//!
//! It never issues a refresh token (RFC 6749 §4.2.2) and reads no
//! configuration.

use grantbox_sdk::{
    AuthorizationApproval, AuthorizationRequest, Client, Grant, OAuthError, Params, PluginInfo,
    ResponseMode, TokenGrant, host, optional_param,
};

/// The `response_type` this plugin provides.
pub const RESPONSE_TYPE: &str = "token";
/// The registration `grant_types` value (RFC 7591 §2) a client needs.
pub const REGISTERED_GRANT_TYPE: &str = "implicit";

/// The implicit grant.
pub struct Implicit;

impl Grant for Implicit {
    fn info() -> PluginInfo {
        PluginInfo::new().response_type(&[RESPONSE_TYPE], ResponseMode::Fragment)
    }

    fn authorize_request(request: AuthorizationRequest) -> Result<Params, OAuthError> {
        check_registration(&request.client)?;
        // The token travels in the fragment (RFC 6749 §4.2.2); in the query it
        // would reach the client's server logs and `Referer` headers.
        if optional_param(&request.params, "response_mode")? == Some("query") {
            return Err(OAuthError::invalid_request(
                "response_type token cannot use response_mode query",
            ));
        }
        Ok(Vec::new())
    }

    fn authorize_response(approval: AuthorizationApproval) -> Result<Params, OAuthError> {
        // The registration may have changed while the user decided.
        check_registration(&approval.client)?;
        let grant = TokenGrant {
            subject: Some(approval.subject),
            scope: approval.scope,
            // RFC 6749 §4.2.2: the authorization server MUST NOT issue a
            // refresh token.
            refresh_token: false,
            grant_id: None,
        };
        let issued = host::tokens::issue(&grant)?;
        // RFC 6749 §4.2.2; the host adds `state` (and `iss`).
        Ok(vec![
            ("access_token".to_string(), issued.access_token),
            ("token_type".to_string(), issued.token_type),
            ("expires_in".to_string(), issued.expires_in.to_string()),
            ("scope".to_string(), issued.scope.join(" ")),
        ])
    }
}

grantbox_sdk::export!(Implicit);

/// Only a client whose registration lists `implicit` may use this legacy grant.
fn check_registration(client: &Client) -> Result<(), OAuthError> {
    if client
        .grant_types
        .iter()
        .any(|grant_type| grant_type == REGISTERED_GRANT_TYPE)
    {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client(
            "the client is not registered for the implicit grant",
        ))
    }
}

#[cfg(test)]
mod tests;
