//! Why a request was refused, and its RFC 6750 §3 response: the one exit for
//! every error of this crate. A response never carries the token, and the
//! description never says more than which rule the token broke.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A refused request. [`Rejection::response`] turns it into the RFC 6750
/// answer for a realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No bearer token in the request (RFC 6750 §3.1: the response carries no
    /// error code, only the `realm`): 401.
    MissingToken,
    /// `invalid_request` (RFC 6750 §3.1): "The request is missing a required
    /// parameter, includes an unsupported parameter or parameter value,
    /// repeats the same parameter, uses more than one method for including an
    /// access token, or is otherwise malformed": 400.
    InvalidRequest {
        /// Which rule, for `error_description`.
        description: &'static str,
    },
    /// `invalid_token` (RFC 6750 §3.1): "The access token provided is
    /// expired, revoked, malformed, or invalid for other reasons": 401.
    InvalidToken {
        /// Which rule, for `error_description`.
        description: &'static str,
    },
    /// `invalid_dpop_proof` (RFC 9449 §7.1): the DPoP proof is missing,
    /// malformed, or does not fit the request, the token or its key: 401
    /// with a `DPoP` challenge.
    InvalidDpopProof {
        /// Which rule, for `error_description`.
        description: &'static str,
    },
    /// `invalid_token` for the DPoP scheme (RFC 9449 §7.1): a DPoP-bound
    /// token sent as a bearer token, or an unbound one sent with the DPoP
    /// scheme: 401 with a `DPoP` challenge.
    InvalidDpopToken {
        /// Which rule, for `error_description`.
        description: &'static str,
    },
    /// `insufficient_scope` (RFC 6750 §3.1): "The request requires higher
    /// privileges than provided by the access token": 403, with the `scope`
    /// the route needs.
    InsufficientScope {
        /// The scope the route needs.
        scope: String,
    },
    /// Grantbox could not be asked (unreachable, a 5xx, an answer that is not
    /// RFC 7662, or it refused this resource server's own credentials): 503
    /// with `Retry-After`, never 401, since the token may well be good.
    Unavailable,
    /// The form body holding `access_token` is larger than the configured
    /// bound: 413.
    BodyTooLarge,
    /// An [`Authorized`](crate::Authorized) extractor or
    /// [`require_scope`](crate::require_scope) on a route the bearer layer
    /// does not cover: a programming error, 500.
    MissingLayer,
}

/// Seconds a client is told to wait after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 5;

impl Rejection {
    /// The HTTP status of this rejection.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken
            | Self::InvalidToken { .. }
            | Self::InvalidDpopProof { .. }
            | Self::InvalidDpopToken { .. } => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The RFC 6750 error code, if the response carries one.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest { .. } => Some("invalid_request"),
            Self::InvalidToken { .. } | Self::InvalidDpopToken { .. } => Some("invalid_token"),
            Self::InvalidDpopProof { .. } => Some("invalid_dpop_proof"),
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
            _ => None,
        }
    }

    fn description(&self) -> Option<&str> {
        match self {
            Self::InvalidRequest { description }
            | Self::InvalidToken { description }
            | Self::InvalidDpopProof { description }
            | Self::InvalidDpopToken { description } => Some(description),
            Self::InsufficientScope { .. } => Some("the token lacks the scope this route needs"),
            Self::Unavailable => Some("the authorization server cannot be reached"),
            Self::BodyTooLarge => Some("the request body is too large"),
            Self::MissingLayer => Some("internal error"),
            Self::MissingToken => None,
        }
    }

    /// The response: status, `WWW-Authenticate: Bearer realm="…"` (with
    /// `error`, `error_description` and `scope` when they apply) on 400, 401
    /// and 403, `Retry-After` on 503, and a small JSON body.
    pub fn response(&self, realm: &str) -> Response {
        let mut response = match (self.error_code(), self.description()) {
            (Some(error), Some(description)) => (
                self.status(),
                axum::Json(serde_json::json!({"error": error, "error_description": description})),
            )
                .into_response(),
            (None, Some(description)) => (
                self.status(),
                axum::Json(serde_json::json!({"error_description": description})),
            )
                .into_response(),
            _ => self.status().into_response(),
        };
        let headers = response.headers_mut();
        if matches!(
            self.status(),
            StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN
        ) {
            // RFC 9449 §7.1: a refusal about DPoP is a `DPoP` challenge,
            // naming the algorithms proofs may use.
            let dpop = matches!(
                self,
                Self::InvalidDpopProof { .. } | Self::InvalidDpopToken { .. }
            );
            let scheme = if dpop { "DPoP" } else { "Bearer" };
            let mut challenge = format!("{scheme} realm=\"{}\"", quote(realm));
            if dpop {
                challenge.push_str(&format!(", algs=\"{}\"", crate::dpop::ALGORITHMS.join(" ")));
            }
            if let Some(error) = self.error_code() {
                challenge.push_str(&format!(", error=\"{error}\""));
            }
            if let Some(description) = self.description() {
                challenge.push_str(&format!(", error_description=\"{}\"", quote(description)));
            }
            if let Self::InsufficientScope { scope } = self {
                challenge.push_str(&format!(", scope=\"{}\"", quote(scope)));
            }
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        if *self == Self::Unavailable {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// The inside of a quoted-string: `"` and `\` escaped, control characters
/// dropped.
fn quote(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}
