//! The curated re-exports of the WIT types and the small constructors that
//! make them pleasant to build; no other SDK module names the generated paths.

use crate::bindings::exports::grantbox::plugin::{endpoint, user_step};
use crate::bindings::grantbox::plugin::{
    codes, openid, refresh_tokens, token_exchange, tokens, types,
};

/// Name/value pairs: request parameters, transaction data, response parameters.
pub type Params = types::Params;
/// An OAuth 2.0 error response the plugin chose (RFC 6749 §4.1.2.1, §5.2);
/// see the constructors named after the RFC codes.
pub type OAuthError = types::OauthError;
pub use types::{
    AuthorizationApproval, AuthorizationRequest, Client, HostError, PluginInfo, ResponseMode,
    ResponseTypeInfo, TokenRequest, TokenResponse,
};

pub use codes::{AuthorizationCode, CodeGrant, RedeemError};
pub use openid::IdTokenRequest;
pub use refresh_tokens::RefreshError;
pub use token_exchange::{ExchangeGrant, ExchangedTokenInfo};
pub use tokens::{IssuedTokens, TokenGrant, TokenInfo};

pub use endpoint::{EndpointRequest, EndpointResponse};
pub use user_step::{
    Approval, Decision as UserDecision, PendingAuthorization, UserCodeEntry, UserCodeOutcome,
};

impl PluginInfo {
    /// Provides nothing yet; add types with [`PluginInfo::grant_type`] and
    /// [`PluginInfo::response_type`].
    pub fn new() -> Self {
        Self {
            response_types: Vec::new(),
            grant_types: Vec::new(),
        }
    }

    /// Also provides the token-endpoint `grant_type` `name`.
    pub fn grant_type(mut self, name: &str) -> Self {
        self.grant_types.push(name.to_string());
        self
    }

    /// Also provides the authorization-endpoint `response_type` made of
    /// `words` (e.g. `&["code"]`), answered by default in `default_mode`.
    pub fn response_type(mut self, words: &[&str], default_mode: ResponseMode) -> Self {
        self.response_types.push(ResponseTypeInfo {
            response_type: strings(words),
            default_response_mode: default_mode,
        });
        self
    }
}

impl Default for PluginInfo {
    fn default() -> Self {
        Self::new()
    }
}

impl From<IssuedTokens> for TokenResponse {
    /// The RFC 6749 §5.1 response for tokens the host just issued, with
    /// `expires_in` and the granted `scope`, and no extension parameters.
    fn from(issued: IssuedTokens) -> Self {
        Self {
            access_token: issued.access_token,
            token_type: issued.token_type,
            expires_in: Some(issued.expires_in),
            refresh_token: issued.refresh_token,
            scope: Some(issued.scope),
            extra: Vec::new(),
        }
    }
}

impl TokenResponse {
    /// Adds an extension parameter, e.g. `issued_token_type` (RFC 8693 §2.2.1).
    pub fn with_extra(mut self, name: &str, value: &str) -> Self {
        self.extra.push((name.to_string(), value.to_string()));
        self
    }
}

impl HostError {
    /// The host's explanation, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            HostError::Denied(message)
            | HostError::InvalidArgument(message)
            | HostError::Unavailable(message) => message,
        }
    }
}

impl Client {
    /// A confidential client (one that authenticates) with no registered
    /// scopes or grant types; handy for tests.
    pub fn confidential(client_id: &str) -> Self {
        Self {
            client_id: client_id.to_string(),
            public: false,
            grant_types: Vec::new(),
            scopes: Vec::new(),
        }
    }

    /// A public client (token endpoint auth method `none`) with no registered
    /// scopes or grant types; handy for tests.
    pub fn public(client_id: &str) -> Self {
        Self {
            public: true,
            ..Self::confidential(client_id)
        }
    }

    /// Replaces the scopes the client may request.
    pub fn with_scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = strings(scopes);
        self
    }

    /// Replaces the RFC 7591 `grant_types` of the registration.
    pub fn with_grant_types(mut self, grant_types: &[&str]) -> Self {
        self.grant_types = strings(grant_types);
        self
    }
}

pub(crate) fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| word.to_string()).collect()
}

impl Client {
    /// Whether the registration's RFC 7591 `grant_types` lists `grant_type`:
    /// a plugin endpoint that starts a grant checks it and answers
    /// `unauthorized_client` when not (RFC 6749 §5.2).
    pub fn has_grant_type(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|listed| listed == grant_type)
    }
}

impl EndpointRequest {
    /// The client the host authenticated, or `server_error` when the
    /// manifest's endpoint does not authenticate clients
    /// (`authenticate_client = false`) and so the request carries none.
    pub fn authenticated_client(&self) -> Result<&Client, OAuthError> {
        self.client.as_ref().ok_or_else(|| {
            OAuthError::server_error(format!(
                "endpoint `{}` needs an authenticated client; its manifest entry must not set authenticate_client = false",
                self.path
            ))
        })
    }

    /// The URL of the plugin's endpoint or user step at `path` (e.g.
    /// `/device`): the issuer identifier followed by the path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer.trim_end_matches('/'))
    }
}

impl EndpointResponse {
    /// A response with `status` (a 2xx) whose body is the JSON object `body`;
    /// the host sends it as `application/json` with `Cache-Control: no-store`.
    ///
    /// `body` should be an object (`serde_json::json!({ ... })`); the host
    /// refuses anything else, as it refuses a status outside 2xx.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            body: body.to_string(),
        }
    }

    /// A `200 OK` response with the JSON object `body` (see [`EndpointResponse::json`]).
    pub fn ok(body: &serde_json::Value) -> Self {
        Self::json(200, body)
    }
}

impl PendingAuthorization {
    /// The authorization a user code stands for: `client_id` asks for `scope`.
    pub fn new(client_id: &str, scope: &[String]) -> Self {
        Self {
            client_id: client_id.to_string(),
            scope: scope.to_vec(),
            data: Vec::new(),
        }
    }

    /// Adds a name/value pair the host keeps with the step and hands back in
    /// the [`UserCodeOutcome`]'s `data` (read it with [`crate::param`]).
    pub fn with_data(mut self, name: &str, value: &str) -> Self {
        self.data.push((name.to_string(), value.to_string()));
        self
    }
}
