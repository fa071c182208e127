//! The generated wasmtime bindings of `plugin-sdk/wit` and the conversions
//! between them and the host's plain types. Besides this file, only the
//! plugin runtime names generated types: `capability.rs` implements the
//! generated host traits, and `runtime/` links and calls the component.

use crate::oauth::OAuthError;

use super::{
    AuthorizationApproval, AuthorizationRequest, ClientView, EndpointRequest, EndpointResponse,
    PendingAuthorization, PluginInfo, ResponseMode, TokenRequest, TokenResponse, UserCodeEntry,
    UserCodeOutcome, UserDecision,
};

wasmtime::component::bindgen!({
    path: "../plugin-sdk/wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

use self::exports::grantbox::plugin::{endpoint, grant, user_step};
pub use self::grantbox::plugin::types as wit;

/// Where a plugin's exports are, looked up once at load: `grant` always;
/// `endpoint` and `user-step` (since 1.3.0) only when the component has them,
/// so a plugin built against an older minor still loads.
#[derive(Clone)]
pub struct ExportIndices {
    grant: grant::GuestIndices,
    endpoint: Option<endpoint::GuestIndices>,
    user_step: Option<user_step::GuestIndices>,
}

impl ExportIndices {
    pub fn new<T>(pre: &wasmtime::component::InstancePre<T>) -> wasmtime::Result<Self> {
        Ok(Self {
            grant: grant::GuestIndices::new(pre)?,
            endpoint: endpoint::GuestIndices::new(pre).ok(),
            user_step: user_step::GuestIndices::new(pre).ok(),
        })
    }

    /// Whether the component exports `endpoint` and `user-step`.
    pub fn has_endpoint(&self) -> bool {
        self.endpoint.is_some()
    }

    pub fn has_user_step(&self) -> bool {
        self.user_step.is_some()
    }

    pub fn grant(
        &self,
        store: impl wasmtime::AsContextMut,
        instance: &wasmtime::component::Instance,
    ) -> wasmtime::Result<grant::Guest> {
        self.grant.load(store, instance)
    }

    pub fn endpoint(
        &self,
        store: impl wasmtime::AsContextMut,
        instance: &wasmtime::component::Instance,
    ) -> wasmtime::Result<endpoint::Guest> {
        let indices = self.endpoint.as_ref().ok_or_else(|| {
            wasmtime::Error::msg("the component does not export `grantbox:plugin/endpoint`")
        })?;
        indices.load(store, instance)
    }

    pub fn user_step(
        &self,
        store: impl wasmtime::AsContextMut,
        instance: &wasmtime::component::Instance,
    ) -> wasmtime::Result<user_step::Guest> {
        let indices = self.user_step.as_ref().ok_or_else(|| {
            wasmtime::Error::msg("the component does not export `grantbox:plugin/user-step`")
        })?;
        indices.load(store, instance)
    }
}

impl From<&ClientView> for wit::Client {
    fn from(client: &ClientView) -> Self {
        Self {
            client_id: client.client_id.clone(),
            public: client.public,
            grant_types: client.grant_types.clone(),
            scopes: client.scopes.clone(),
        }
    }
}

impl From<&TokenRequest> for wit::TokenRequest {
    fn from(request: &TokenRequest) -> Self {
        Self {
            grant_type: request.grant_type.clone(),
            client: (&request.client).into(),
            scope: request.scope.clone(),
            params: request.params.clone(),
        }
    }
}

impl From<&AuthorizationRequest> for wit::AuthorizationRequest {
    fn from(request: &AuthorizationRequest) -> Self {
        Self {
            response_type: request.response_type.clone(),
            client: (&request.client).into(),
            redirect_uri: request.redirect_uri.clone(),
            scope: request.scope.clone(),
            params: request.params.clone(),
        }
    }
}

impl From<&AuthorizationApproval> for wit::AuthorizationApproval {
    fn from(approval: &AuthorizationApproval) -> Self {
        Self {
            response_type: approval.response_type.clone(),
            client: (&approval.client).into(),
            redirect_uri: approval.redirect_uri.clone(),
            subject: approval.subject.clone(),
            scope: approval.scope.clone(),
            data: approval.data.clone(),
        }
    }
}

impl From<&EndpointRequest> for endpoint::EndpointRequest {
    fn from(request: &EndpointRequest) -> Self {
        Self {
            path: request.path.clone(),
            client: request.client.as_ref().map(wit::Client::from),
            params: request.params.clone(),
            issuer: request.issuer.clone(),
        }
    }
}

impl From<endpoint::EndpointResponse> for EndpointResponse {
    fn from(response: endpoint::EndpointResponse) -> Self {
        Self {
            status: response.status,
            body: response.body,
        }
    }
}

impl From<&UserCodeEntry> for user_step::UserCodeEntry {
    fn from(entry: &UserCodeEntry) -> Self {
        Self {
            step: entry.step.clone(),
            user_code: entry.user_code.clone(),
        }
    }
}

impl From<user_step::PendingAuthorization> for PendingAuthorization {
    fn from(pending: user_step::PendingAuthorization) -> Self {
        Self {
            client_id: pending.client_id,
            scope: pending.scope,
            data: pending.data,
        }
    }
}

impl From<&UserCodeOutcome> for user_step::UserCodeOutcome {
    fn from(outcome: &UserCodeOutcome) -> Self {
        Self {
            step: outcome.step.clone(),
            client: (&outcome.client).into(),
            data: outcome.data.clone(),
            decision: match &outcome.decision {
                UserDecision::Approved { subject, scope } => {
                    user_step::Decision::Approved(user_step::Approval {
                        subject: subject.clone(),
                        scope: scope.clone(),
                    })
                }
                UserDecision::Denied => user_step::Decision::Denied,
            },
        }
    }
}

impl From<wit::TokenResponse> for TokenResponse {
    fn from(response: wit::TokenResponse) -> Self {
        Self {
            access_token: response.access_token,
            token_type: response.token_type,
            expires_in: response.expires_in,
            refresh_token: response.refresh_token,
            scope: response.scope,
            extra: response.extra,
        }
    }
}

impl From<wit::OauthError> for OAuthError {
    fn from(error: wit::OauthError) -> Self {
        OAuthError::from_plugin(
            &error.error,
            error.error_description.as_deref(),
            error.error_uri.as_deref(),
        )
    }
}

impl From<wit::PluginInfo> for PluginInfo {
    fn from(info: wit::PluginInfo) -> Self {
        Self {
            response_types: info
                .response_types
                .into_iter()
                .map(|r| {
                    let mode = match r.default_response_mode {
                        wit::ResponseMode::Query => ResponseMode::Query,
                        wit::ResponseMode::Fragment => ResponseMode::Fragment,
                        wit::ResponseMode::FormPost => ResponseMode::FormPost,
                    };
                    (r.response_type.join(" "), mode)
                })
                .collect(),
            grant_types: info.grant_types,
        }
    }
}
