//! Constructors for [`OAuthError`] named after the RFC error codes, and the
//! conversions from host failures a plugin usually wants.

use crate::types::{HostError, OAuthError, RedeemError, RefreshError};

impl OAuthError {
    /// An error with any `code` (e.g. an extension's) and a description for
    /// the client developer; the description must never carry a secret.
    pub fn new(code: &str, description: impl Into<String>) -> Self {
        Self {
            error: code.to_string(),
            error_description: Some(description.into()),
            error_uri: None,
        }
    }

    /// Adds an `error_uri`: a page describing the error.
    pub fn with_uri(mut self, uri: &str) -> Self {
        self.error_uri = Some(uri.to_string());
        self
    }

    /// `invalid_request` (RFC 6749 §5.2, §4.1.2.1): the request is missing a
    /// required parameter, includes an unsupported parameter value, repeats a
    /// parameter, or is otherwise malformed.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    /// `invalid_client` (RFC 6749 §5.2): client authentication failed (unknown
    /// client, no client authentication included, or an unsupported method).
    /// The host normally authenticates clients before the plugin runs.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new("invalid_client", description)
    }

    /// `invalid_grant` (RFC 6749 §5.2): the authorization grant or refresh
    /// token is invalid, expired, revoked, does not match the redirection URI
    /// used in the authorization request, or was issued to another client.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }

    /// `unauthorized_client` (RFC 6749 §5.2, §4.1.2.1): the authenticated
    /// client is not authorized to use this authorization grant type.
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new("unauthorized_client", description)
    }

    /// `unsupported_grant_type` (RFC 6749 §5.2): the authorization grant type
    /// is not supported by the authorization server.
    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", description)
    }

    /// `invalid_scope` (RFC 6749 §5.2, §4.1.2.1): the requested scope is
    /// invalid, unknown, malformed, or exceeds the scope granted by the
    /// resource owner.
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new("invalid_scope", description)
    }

    /// `access_denied` (RFC 6749 §4.1.2.1): the resource owner or
    /// authorization server denied the request. RFC 8628 §3.5 uses it at the
    /// token endpoint when the user denied a device authorization.
    pub fn access_denied(description: impl Into<String>) -> Self {
        Self::new("access_denied", description)
    }

    /// `unsupported_response_type` (RFC 6749 §4.1.2.1): the authorization
    /// server does not support obtaining an authorization code (or token)
    /// using this method.
    pub fn unsupported_response_type(description: impl Into<String>) -> Self {
        Self::new("unsupported_response_type", description)
    }

    /// `server_error` (RFC 6749 §4.1.2.1): the authorization server met an
    /// unexpected condition that prevented it from fulfilling the request.
    pub fn server_error(description: impl Into<String>) -> Self {
        Self::new("server_error", description)
    }

    /// `temporarily_unavailable` (RFC 6749 §4.1.2.1): the authorization
    /// server cannot handle the request now because of a temporary overload
    /// or maintenance.
    pub fn temporarily_unavailable(description: impl Into<String>) -> Self {
        Self::new("temporarily_unavailable", description)
    }

    /// `invalid_target` (RFC 8693 §2.2.2): the requested resource or audience
    /// is invalid, unknown or malformed.
    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new("invalid_target", description)
    }

    /// `authorization_pending` (RFC 8628 §3.5): the user has not yet finished
    /// the device authorization; the client should keep polling.
    pub fn authorization_pending(description: impl Into<String>) -> Self {
        Self::new("authorization_pending", description)
    }

    /// `slow_down` (RFC 8628 §3.5): still pending, and the client polls too
    /// often; it must add 5 seconds to its polling interval.
    pub fn slow_down(description: impl Into<String>) -> Self {
        Self::new("slow_down", description)
    }

    /// `expired_token` (RFC 8628 §3.5): the device code expired; the client
    /// may start a new device authorization.
    pub fn expired_token(description: impl Into<String>) -> Self {
        Self::new("expired_token", description)
    }
}

impl From<HostError> for OAuthError {
    /// `temporarily_unavailable` when the host's store is unavailable,
    /// `server_error` otherwise. The description is generic: the host's own
    /// text may name internals, so log it instead of sending it.
    fn from(error: HostError) -> Self {
        match error {
            HostError::Unavailable(_) => {
                Self::temporarily_unavailable("the server is temporarily unavailable")
            }
            HostError::Denied(_) => Self::server_error("the grant plugin was refused a capability"),
            HostError::InvalidArgument(_) => {
                Self::server_error("the grant plugin made an invalid host call")
            }
        }
    }
}

impl From<RedeemError> for OAuthError {
    /// `invalid_grant` for a code that is unknown, expired or already used
    /// (RFC 6749 §4.1.2, §5.2); a host failure as for [`HostError`].
    fn from(error: RedeemError) -> Self {
        match error {
            RedeemError::Unknown => Self::invalid_grant("the authorization code is invalid"),
            RedeemError::Expired => Self::invalid_grant("the authorization code has expired"),
            RedeemError::Replayed => Self::invalid_grant("the authorization code was already used"),
            RedeemError::Host(error) => error.into(),
        }
    }
}

impl From<RefreshError> for OAuthError {
    /// `invalid_grant` for a refresh token that is unknown, expired or
    /// already rotated (RFC 6749 §5.2, RFC 9700 §4.14.2); a host failure as
    /// for [`HostError`].
    fn from(error: RefreshError) -> Self {
        match error {
            RefreshError::Unknown => Self::invalid_grant("the refresh token is invalid"),
            RefreshError::Expired => Self::invalid_grant("the refresh token has expired"),
            RefreshError::Reused => Self::invalid_grant("the refresh token was already used"),
            RefreshError::Host(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests;
