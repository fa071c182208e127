//! OAuth 2.0 error responses (RFC 6749 §4.1.2.1, §5.2) and the HTTP status each
//! one takes at the token endpoint; the single shape every error leaves in.

use std::fmt;

/// An RFC 6749 error code, or an extension code a plugin chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is missing a required parameter, includes an unsupported
    /// value, repeats a parameter, or is otherwise malformed.
    InvalidRequest,
    /// Client authentication failed (unknown client, no client authentication
    /// included, or unsupported authentication method).
    InvalidClient,
    /// The authorization grant or refresh token is invalid, expired, revoked,
    /// does not match the redirection URI, or was issued to another client.
    InvalidGrant,
    /// The authenticated client is not authorized to use this grant type.
    UnauthorizedClient,
    /// The grant type is not supported by the authorization server.
    UnsupportedGrantType,
    /// The authorization server does not support this response type.
    UnsupportedResponseType,
    /// The requested scope is invalid, unknown, malformed, or exceeds what was granted.
    InvalidScope,
    /// The resource owner or authorization server denied the request.
    AccessDenied,
    /// The server met an unexpected condition that prevented it from fulfilling the request.
    ServerError,
    /// The server is currently unable to handle the request (overload, maintenance, database down).
    TemporarilyUnavailable,
    /// RFC 8707 §2: the requested resource is invalid, missing, unknown, or
    /// malformed.
    InvalidTarget,
    /// RFC 9101 §7.1, RFC 9126 §4: the `request_uri` of the authorization
    /// request returns an error or contains invalid data (here: unknown,
    /// used, expired, or pushed by another client).
    InvalidRequestUri,
    /// An extension error code, e.g. `authorization_pending` (RFC 8628 §3.5).
    Extension(String),
}

impl ErrorCode {
    /// The code as it appears in the `error` parameter.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidRequestUri => "invalid_request_uri",
            Self::Extension(code) => code,
        }
    }

    /// Reads a code a plugin returned. Codes outside RFC 6749 §5.2's character
    /// set (%x20-21 / %x23-5B / %x5D-7E) become `server_error`, so a plugin can
    /// never inject arbitrary text into a redirect or header.
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "invalid_target" => Self::InvalidTarget,
            "invalid_request_uri" => Self::InvalidRequestUri,
            other if is_error_text(other) && !other.is_empty() && !other.contains(' ') => {
                Self::Extension(other.to_owned())
            }
            _ => Self::ServerError,
        }
    }

    /// The status this error takes at the token endpoint (RFC 6749 §5.2):
    /// 401 for `invalid_client`, 5xx for server-side conditions, 400 otherwise.
    pub fn token_endpoint_status(&self) -> u16 {
        match self {
            Self::InvalidClient => 401,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error response: code, optional description and URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Option<String>,
    pub uri: Option<String>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        let description = description.into();
        Self {
            code,
            description: Some(description).filter(|d| is_error_text(d) && !d.is_empty()),
            uri: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, description)
    }

    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidTarget, description)
    }

    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedGrantType, description)
    }

    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }

    pub fn temporarily_unavailable() -> Self {
        Self::new(
            ErrorCode::TemporarilyUnavailable,
            "the server is temporarily unable to handle the request",
        )
    }

    /// Builds an error from the values a plugin returned, dropping a
    /// description or URI with characters RFC 6749 does not allow.
    pub fn from_plugin(code: &str, description: Option<&str>, uri: Option<&str>) -> Self {
        Self {
            code: ErrorCode::parse(code),
            description: description
                .filter(|d| is_error_text(d) && !d.is_empty() && d.len() <= 1024)
                .map(str::to_owned),
            uri: uri
                .filter(|u| is_error_uri(u) && url::Url::parse(u).is_ok())
                .map(str::to_owned),
        }
    }

    /// The JSON body of RFC 6749 §5.2.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.code.as_str().into());
        if let Some(description) = &self.description {
            body.insert("error_description".into(), description.as_str().into());
        }
        if let Some(uri) = &self.uri {
            body.insert("error_uri".into(), uri.as_str().into());
        }
        serde_json::Value::Object(body)
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(description) => write!(f, "{}: {description}", self.code),
            None => write!(f, "{}", self.code),
        }
    }
}

/// RFC 6749 §5.2: `error` and `error_description` use %x20-21 / %x23-5B / %x5D-7E.
fn is_error_text(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// RFC 6749 §5.2: `error_uri` uses %x21 / %x23-5B / %x5D-7E, so no space
/// (a URL parser would accept one and percent-encode it).
fn is_error_uri(text: &str) -> bool {
    is_error_text(text) && !text.contains(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_rfc_6749() {
        let check = |code: &str, status: u16| {
            assert_eq!(
                ErrorCode::parse(code).token_endpoint_status(),
                status,
                "{code}"
            );
        };
        check("invalid_request", 400);
        check("invalid_client", 401);
        check("invalid_grant", 400);
        check("unauthorized_client", 400);
        check("unsupported_grant_type", 400);
        check("invalid_scope", 400);
        check("server_error", 500);
        check("temporarily_unavailable", 503);
        check("authorization_pending", 400);
    }

    #[test]
    fn plugin_text_outside_the_rfc_charset_is_dropped() {
        let error = OAuthError::from_plugin("bad\"code", Some("quote \" here"), Some("not a uri"));
        assert_eq!(error.code, ErrorCode::ServerError);
        assert_eq!(error.description, None);
        assert_eq!(error.uri, None);
        let error = OAuthError::from_plugin("slow_down", Some("poll less"), None);
        assert_eq!(error.code, ErrorCode::Extension("slow_down".into()));
        assert_eq!(error.to_json()["error_description"], "poll less");
    }

    /// Found by the `plugin_values` fuzz target: `url::Url::parse` accepts
    /// a space, which RFC 6749 §5.2 does not allow in `error_uri`.
    #[test]
    fn plugin_error_uri_with_a_space_is_dropped() {
        let error = OAuthError::from_plugin(
            "authorization_pending",
            Some("poll again"),
            Some("https://as.example/device x"),
        );
        assert_eq!(error.uri, None);
        assert_eq!(error.description.as_deref(), Some("poll again"));
        let error = OAuthError::from_plugin("x", None, Some("https://as.example/device"));
        assert_eq!(error.uri.as_deref(), Some("https://as.example/device"));
    }
}
