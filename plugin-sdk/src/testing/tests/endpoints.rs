//! Tests of the test host's plugin endpoint and user step calls: a toy plugin
//! whose endpoint remembers a code in the key-value store and whose user step
//! finds and completes it.

use crate::host;
use crate::testing::{Capability, TestHost, assert_error, strings};
use crate::{
    Client, EndpointRequest, EndpointResponse, Grant, OAuthError, PendingAuthorization, PluginInfo,
    UserCodeEntry, UserCodeOutcome, UserDecision, param, requested_scope,
};

/// `/start` stores the requested scope under `code`; `/step` finds it and
/// records the decision under `decision`.
struct Toy;

impl Grant for Toy {
    fn info() -> PluginInfo {
        PluginInfo::new()
    }

    fn endpoint(request: EndpointRequest) -> Result<EndpointResponse, OAuthError> {
        let client = request.authenticated_client()?;
        let scope = requested_scope(&request.params, client)?.unwrap_or_default();
        let code = param(&request.params, "code")?;
        host::key_value::set(code, scope.join(" ").as_bytes(), Some(60))?;
        if code == "bad-status" {
            return Ok(EndpointResponse::json(302, &serde_json::json!({})));
        }
        if code == "bad-body" {
            return Ok(EndpointResponse {
                status: 200,
                body: "[]".into(),
            });
        }
        Ok(EndpointResponse::ok(&serde_json::json!({
            "code": code,
            "url": request.url("/step"),
        })))
    }

    fn find_user_code(entry: UserCodeEntry) -> Result<Option<PendingAuthorization>, OAuthError> {
        let Some(scope) = host::key_value::get(&entry.user_code)? else {
            return Ok(None);
        };
        let scope = String::from_utf8(scope).expect("the toy stores text");
        let scope: Vec<String> = scope.split_whitespace().map(str::to_string).collect();
        Ok(Some(
            PendingAuthorization::new("app", &scope).with_data("code", &entry.user_code),
        ))
    }

    fn complete_user_code(outcome: UserCodeOutcome) -> Result<(), OAuthError> {
        let code = param(&outcome.data, "code")?;
        let decision = match outcome.decision {
            UserDecision::Approved(approval) => approval.subject,
            UserDecision::Denied => "denied".to_string(),
        };
        host::key_value::set(&format!("decision:{code}"), decision.as_bytes(), None)?;
        Ok(())
    }
}

fn toy_host() -> TestHost {
    TestHost::new()
        .client(Client::public("app").with_scopes(&["read", "write"]))
        .issuer("https://as.example/")
}

#[test]
fn an_endpoint_call_carries_the_client_params_and_issuer() {
    let mut test_host = toy_host();
    let request = test_host.endpoint_request("/start", &[("code", "c1"), ("scope", "read")]);
    assert_eq!(request.client.as_ref().unwrap().client_id, "app");
    assert_eq!(request.issuer, "https://as.example/");
    let response = test_host.endpoint::<Toy>(request).unwrap();
    assert_eq!(response.status, 200);
    let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(body["url"], "https://as.example/step");
    assert_eq!(test_host.key_value("c1"), Some(&b"read"[..]));

    let request = test_host.endpoint_request("/start", &[("code", "c2"), ("scope", "admin")]);
    assert_error(
        test_host.endpoint::<Toy>(request),
        "invalid_scope",
        "scope admin is not allowed for this client",
    );

    let mut request = test_host.endpoint_request("/start", &[("code", "c3")]);
    request.client = None;
    let error = test_host.endpoint::<Toy>(request).unwrap_err();
    assert_eq!(error.error, "server_error");
}

#[test]
fn an_endpoint_call_has_only_the_granted_capabilities() {
    let mut test_host = toy_host().grant_capabilities(&[Capability::Clock]);
    let request = test_host.endpoint_request("/start", &[("code", "c1")]);
    let error = test_host.endpoint::<Toy>(request).unwrap_err();
    assert_eq!(error.error, "server_error");
    assert_eq!(test_host.key_value("c1"), None);

    let entry = test_host.user_code_entry("/step", "c1");
    assert_eq!(
        test_host.find_user_code::<Toy>(entry).unwrap_err().error,
        "server_error"
    );
}

#[test]
#[should_panic(expected = "the host sends only a 2xx")]
fn an_endpoint_answering_a_redirect_is_refused() {
    let mut test_host = toy_host();
    let request = test_host.endpoint_request("/start", &[("code", "bad-status")]);
    let _ = test_host.endpoint::<Toy>(request);
}

#[test]
#[should_panic(expected = "not a JSON object")]
fn an_endpoint_answering_a_json_array_is_refused() {
    let mut test_host = toy_host();
    let request = test_host.endpoint_request("/start", &[("code", "bad-body")]);
    let _ = test_host.endpoint::<Toy>(request);
}

#[test]
fn a_user_step_finds_the_code_and_hears_the_decision() {
    let mut test_host = toy_host();
    let request = test_host.endpoint_request("/start", &[("code", "c1"), ("scope", "write")]);
    test_host.endpoint::<Toy>(request).unwrap();

    let entry = test_host.user_code_entry("/step", "nope");
    assert_eq!(test_host.find_user_code::<Toy>(entry).unwrap(), None);

    let entry = test_host.user_code_entry("/step", "c1");
    let pending = test_host.find_user_code::<Toy>(entry).unwrap().unwrap();
    assert_eq!(pending.client_id, "app");
    assert_eq!(pending.scope, strings(&["write"]));

    let decision = TestHost::approved("alice", &["write"]);
    let outcome = test_host.user_code_outcome("/step", pending.data.clone(), decision);
    test_host.complete_user_code::<Toy>(outcome).unwrap();
    assert_eq!(test_host.key_value("decision:c1"), Some(&b"alice"[..]));

    let outcome = test_host.user_code_outcome("/step", pending.data, UserDecision::Denied);
    test_host.complete_user_code::<Toy>(outcome).unwrap();
    assert_eq!(test_host.key_value("decision:c1"), Some(&b"denied"[..]));
}

#[test]
#[should_panic(expected = "outside client `app`'s registration")]
fn an_approval_outside_the_registration_is_refused() {
    let mut test_host = toy_host();
    let decision = TestHost::approved("alice", &["admin"]);
    let outcome = test_host.user_code_outcome("/step", Vec::new(), decision);
    let _ = test_host.complete_user_code::<Toy>(outcome);
}

#[test]
fn the_defaults_refuse_endpoints_and_know_no_code() {
    struct Nothing;
    impl Grant for Nothing {
        fn info() -> PluginInfo {
            PluginInfo::new()
        }
    }
    let mut test_host = toy_host();
    let request = test_host.endpoint_request("/start", &[]);
    assert_error(
        test_host.endpoint::<Nothing>(request),
        "server_error",
        "endpoint `/start` is not implemented by this plugin",
    );
    let entry = test_host.user_code_entry("/step", "c1");
    assert_eq!(test_host.find_user_code::<Nothing>(entry).unwrap(), None);
    let outcome = test_host.user_code_outcome("/step", Vec::new(), UserDecision::Denied);
    assert_error(
        test_host.complete_user_code::<Nothing>(outcome),
        "server_error",
        "user step `/step` is not implemented by this plugin",
    );
}
