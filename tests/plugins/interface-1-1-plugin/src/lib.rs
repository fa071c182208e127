//! A grant plugin as it was built against interface 1.1.0: `wit/plugin.wit`
//! here is a frozen copy of `grantbox:plugin@1.1.0`, used through wit-bindgen
//! directly. Its `exchange` issues a client token and looks it up through
//! the 1.1 `token-exchange` import, so that import and its records are
//! exercised on whatever later 1.x host loads it.
// The generated glue lowers and lifts values across the component ABI by hand.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    world: "plugin",
    path: "wit",
});

use exports::grantbox::plugin::grant::Guest;
use grantbox::plugin::token_exchange;
use grantbox::plugin::tokens::{self, TokenGrant};
use grantbox::plugin::types::{
    AuthorizationApproval, AuthorizationRequest, OauthError, Params, PluginInfo, TokenRequest,
    TokenResponse,
};

/// The grant type this fixture provides.
pub const GRANT_TYPE: &str = "urn:grantbox:test:interface-1-1";

struct Frozen;

fn error(code: &str, description: &str) -> OauthError {
    OauthError {
        error: code.to_string(),
        error_description: Some(description.to_string()),
        error_uri: None,
    }
}

impl Guest for Frozen {
    fn info() -> PluginInfo {
        PluginInfo {
            response_types: Vec::new(),
            grant_types: vec![GRANT_TYPE.to_string()],
        }
    }

    fn authorize_request(_request: AuthorizationRequest) -> Result<Params, OauthError> {
        Err(error("unsupported_response_type", "no response types"))
    }

    fn authorize_response(_approval: AuthorizationApproval) -> Result<Params, OauthError> {
        Err(error("server_error", "no response types"))
    }

    fn exchange(request: TokenRequest) -> Result<TokenResponse, OauthError> {
        let scope = request.scope.unwrap_or(request.client.scopes);
        let issued = tokens::issue(&TokenGrant {
            subject: None,
            scope,
            refresh_token: false,
            grant_id: None,
        })
        .map_err(|_| error("server_error", "the host refused to issue"))?;
        // The 1.1 record `exchanged-token-info` must still come back from a newer host.
        let found = token_exchange::lookup(&issued.access_token)
            .map_err(|_| error("server_error", "the host refused the lookup"))?
            .ok_or_else(|| error("server_error", "the token just issued is not active"))?;
        let info = found.token;
        Ok(TokenResponse {
            access_token: issued.access_token,
            token_type: issued.token_type,
            expires_in: Some(issued.expires_in),
            refresh_token: None,
            scope: Some(issued.scope),
            extra: vec![("looked_up_client_id".to_string(), info.client_id)],
        })
    }
}

export!(Frozen);
