//! Building blocks every grant plugin's native tests need: word lists and
//! parameter lists as the WIT types carry them, the authorization endpoint's
//! request and approval as the host passes them, and an assertion on an
//! OAuth error's code and description.

use super::TestHost;
use crate::{AuthorizationApproval, AuthorizationRequest, OAuthError, Params};

/// `words` as owned strings, e.g. a scope or a list of response types.
pub fn strings(words: &[&str]) -> Vec<String> {
    crate::types::strings(words)
}

/// `pairs` as request parameters, in order.
pub fn params(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// Asserts that `result` is the OAuth error `error` (RFC 6749 §5.2 /
/// §4.1.2.1) with exactly this `description`.
#[track_caller]
pub fn assert_error<T: std::fmt::Debug>(
    result: Result<T, OAuthError>,
    error: &str,
    description: &str,
) {
    let refused = result.unwrap_err();
    assert_eq!(refused.error, error, "{refused:?}");
    assert_eq!(
        refused.error_description.as_deref(),
        Some(description),
        "{refused:?}"
    );
}

impl TestHost {
    /// An authorization request from the calling client, as the host passes
    /// it after validating the client, the redirect URI and the scope: the
    /// raw parameters are `response_type`, `client_id`, `redirect_uri`,
    /// `scope` (when not empty), `state=xyz`, then `extra`.
    pub fn authorization_request(
        &self,
        response_type: &str,
        redirect_uri: &str,
        scope: &[&str],
        extra: &[(&str, &str)],
    ) -> AuthorizationRequest {
        let client = self.calling_client().clone();
        let joined = scope.join(" ");
        let mut raw = params(&[
            ("response_type", response_type),
            ("client_id", &client.client_id),
            ("redirect_uri", redirect_uri),
        ]);
        if !scope.is_empty() {
            raw.extend(params(&[("scope", &joined)]));
        }
        raw.extend(params(&[("state", "xyz")]));
        raw.extend(params(extra));
        AuthorizationRequest {
            response_type: strings(&[response_type]),
            client,
            redirect_uri: redirect_uri.to_string(),
            scope: strings(scope),
            params: raw,
        }
    }

    /// `subject`'s approval of a request of the calling client for `scope`:
    /// `redirect_uri` is the one the client sent, `data` what the grant's
    /// `authorize_request` returned.
    pub fn approval(
        &self,
        response_type: &str,
        redirect_uri: &str,
        subject: &str,
        scope: &[&str],
        data: Params,
    ) -> AuthorizationApproval {
        AuthorizationApproval {
            response_type: strings(&[response_type]),
            client: self.calling_client().clone(),
            redirect_uri: redirect_uri.to_string(),
            subject: subject.to_string(),
            scope: strings(scope),
            data,
        }
    }
}
