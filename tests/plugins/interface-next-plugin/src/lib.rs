//! A grant plugin built against an interface newer than the host's: by
//! default `wit-1.5` (`grantbox:plugin@1.5.0`, a newer minor), with feature
//! `major` `wit-2.0` (`grantbox:plugin@2.0.0`). Otherwise an ordinary plugin
//! that would issue a client token; the host must refuse it at load, even
//! when its manifest claims an interface the host runs.
// The generated glue lowers and lifts values across the component ABI by hand.
#![allow(unsafe_code)]

#[cfg(not(feature = "major"))]
wit_bindgen::generate!({
    world: "plugin",
    path: "wit-1.5",
});

#[cfg(feature = "major")]
wit_bindgen::generate!({
    world: "plugin",
    path: "wit-2.0",
});

use exports::grantbox::plugin::grant::Guest;
use grantbox::plugin::tokens::{self, TokenGrant};
use grantbox::plugin::types::{
    AuthorizationApproval, AuthorizationRequest, OauthError, Params, PluginInfo, TokenRequest,
    TokenResponse,
};

/// The grant type this fixture provides.
pub const GRANT_TYPE: &str = "urn:grantbox:test:interface-next";

struct Next;

fn error(code: &str) -> OauthError {
    OauthError {
        error: code.to_string(),
        error_description: None,
        error_uri: None,
    }
}

impl Guest for Next {
    fn info() -> PluginInfo {
        PluginInfo {
            response_types: Vec::new(),
            grant_types: vec![GRANT_TYPE.to_string()],
        }
    }

    fn authorize_request(_request: AuthorizationRequest) -> Result<Params, OauthError> {
        Err(error("unsupported_response_type"))
    }

    fn authorize_response(_approval: AuthorizationApproval) -> Result<Params, OauthError> {
        Err(error("server_error"))
    }

    fn exchange(request: TokenRequest) -> Result<TokenResponse, OauthError> {
        let issued = tokens::issue(&TokenGrant {
            subject: None,
            scope: request.scope.unwrap_or(request.client.scopes),
            refresh_token: false,
            grant_id: None,
        })
        .map_err(|_| error("server_error"))?;
        Ok(TokenResponse {
            access_token: issued.access_token,
            token_type: issued.token_type,
            expires_in: Some(issued.expires_in),
            refresh_token: None,
            scope: Some(issued.scope),
            extra: Vec::new(),
        })
    }
}

export!(Next);
