//! The test host's side of plugin endpoints and user steps (since interface
//! 1.3.0): requests and outcomes built as the host passes them, and calls
//! that check the plugin's answer as the host does.

use super::TestHost;
use crate::{
    Approval, EndpointRequest, EndpointResponse, Grant, OAuthError, Params, PendingAuthorization,
    UserCodeEntry, UserCodeOutcome, UserDecision,
};

impl TestHost {
    /// A request to the plugin endpoint `path` (as the manifest declares it)
    /// from the calling client, with the body parameters `params` (client
    /// credentials already removed) and the test host's issuer. Set `client`
    /// to `None` for an endpoint declared with `authenticate_client = false`.
    pub fn endpoint_request(&self, path: &str, params: &[(&str, &str)]) -> EndpointRequest {
        EndpointRequest {
            path: path.to_string(),
            client: Some(self.calling_client().clone()),
            params: super::params(params),
            issuer: self.issuer_identifier().to_string(),
        }
    }

    /// Calls `G::endpoint(request)` with this host installed.
    ///
    /// Panics when a successful response is one the real host refuses to
    /// send: a status outside 2xx, or a body that is not a JSON object.
    pub fn endpoint<G: Grant>(
        &mut self,
        request: EndpointRequest,
    ) -> Result<EndpointResponse, OAuthError> {
        let path = request.path.clone();
        let result = self.run(|| G::endpoint(request));
        if let Ok(response) = &result {
            assert!(
                (200..300).contains(&response.status),
                "endpoint `{path}` answered status {}; the host sends only a 2xx",
                response.status
            );
            let body: Result<serde_json::Value, _> = serde_json::from_str(&response.body);
            assert!(
                matches!(body, Ok(serde_json::Value::Object(_))),
                "endpoint `{path}` answered a body that is not a JSON object: {}",
                response.body
            );
        }
        result
    }

    /// A code a user typed at the user step `step` (as the manifest declares it).
    pub fn user_code_entry(&self, step: &str, user_code: &str) -> UserCodeEntry {
        UserCodeEntry {
            step: step.to_string(),
            user_code: user_code.to_string(),
        }
    }

    /// Calls `G::find_user_code(entry)` with this host installed.
    ///
    /// Panics when the authorization found asks for a scope outside the
    /// calling client's registration while naming the calling client: the
    /// real host refuses to show such a consent page.
    pub fn find_user_code<G: Grant>(
        &mut self,
        entry: UserCodeEntry,
    ) -> Result<Option<PendingAuthorization>, OAuthError> {
        let result = self.run(|| G::find_user_code(entry));
        if let Ok(Some(pending)) = &result {
            let client = self.calling_client();
            if pending.client_id == client.client_id {
                let outside = pending
                    .scope
                    .iter()
                    .find(|word| !client.scopes.contains(word));
                assert!(
                    outside.is_none(),
                    "the pending authorization asks for scope {outside:?}, outside client `{}`'s registration",
                    client.client_id
                );
            }
        }
        result
    }

    /// The outcome of the user step `step` for the calling client, as the
    /// host passes it after the consent page: `data` is what
    /// [`TestHost::find_user_code`] returned, `decision` what the user chose
    /// (see [`TestHost::approved`] and [`UserDecision::Denied`]).
    pub fn user_code_outcome(
        &self,
        step: &str,
        data: Params,
        decision: UserDecision,
    ) -> UserCodeOutcome {
        UserCodeOutcome {
            step: step.to_string(),
            client: self.calling_client().clone(),
            data,
            decision,
        }
    }

    /// `subject`'s approval of `scope` at a user step.
    pub fn approved(subject: &str, scope: &[&str]) -> UserDecision {
        UserDecision::Approved(Approval {
            subject: subject.to_string(),
            scope: super::strings(scope),
        })
    }

    /// Calls `G::complete_user_code(outcome)` with this host installed.
    ///
    /// Panics when an approval grants a scope outside the calling client's
    /// registration: the real host never passes one.
    pub fn complete_user_code<G: Grant>(
        &mut self,
        outcome: UserCodeOutcome,
    ) -> Result<(), OAuthError> {
        if let UserDecision::Approved(approval) = &outcome.decision {
            let outside = approval
                .scope
                .iter()
                .find(|word| !outcome.client.scopes.contains(word));
            assert!(
                outside.is_none(),
                "an approval cannot grant scope {outside:?}, outside client `{}`'s registration",
                outcome.client.client_id
            );
        }
        self.run(|| G::complete_user_code(outcome))
    }
}
