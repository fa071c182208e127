//! Native tests of the modes that return; the others are the host's to catch.

use grantbox_sdk::Client;
use grantbox_sdk::testing::{Capability, TestHost};

use super::{DEFAULT_GRANT_TYPE, Fault, Mode};

/// The host as the template manifest configures it.
fn test_host(mode: &str) -> TestHost {
    TestHost::new()
        .client(Client::confidential("fault-test").with_scopes(&["read"]))
        .grant_capabilities(&[Capability::Tokens, Capability::Config])
        .config("mode", mode)
}

#[test]
fn info_claims_the_configured_grant_type() {
    let claimed = |mut test_host: TestHost| test_host.info::<Fault>().grant_types;
    assert_eq!(claimed(TestHost::new()), vec![DEFAULT_GRANT_TYPE]);
    assert_eq!(
        claimed(TestHost::new().config("grant_type", "urn:test:other")),
        vec!["urn:test:other"]
    );
    // Without the config capability it still answers, with the default.
    assert_eq!(
        claimed(TestHost::new().grant_capabilities(&[])),
        vec![DEFAULT_GRANT_TYPE]
    );
}

#[test]
fn modes_parse() {
    assert_eq!(Mode::parse("memory"), Some(Mode::Memory));
    assert_eq!(Mode::parse("sandbox"), Some(Mode::Sandbox));
    assert_eq!(Mode::parse("sign"), Some(Mode::Sign));
    assert_eq!(Mode::parse("Memory"), None);
}

#[test]
fn ok_mode_issues_a_token() {
    let mut test_host = test_host("ok");
    let request = test_host.token_request(DEFAULT_GRANT_TYPE, None, &[]);
    let response = test_host.exchange::<Fault>(request).unwrap();
    assert_eq!(response.scope, Some(vec!["read".to_string()]));
    assert_eq!(test_host.issued_tokens().len(), 1);
}

#[test]
fn capability_mode_reports_the_refusal() {
    let mut test_host = test_host("capability");
    let request = test_host.token_request(DEFAULT_GRANT_TYPE, None, &[]);
    let error = test_host.exchange::<Fault>(request).unwrap_err();
    assert_eq!(error.error, "server_error");
    assert_eq!(
        error.error_description.as_deref(),
        Some("host refused: capability `users` is not granted to this plugin")
    );
}

#[test]
fn sign_mode_answers_with_what_the_host_signed() {
    let mut granted = test_host("sign")
        .grant_capabilities(&[Capability::Config, Capability::Clock, Capability::Signing])
        .config("audience", "https://api.example/");
    let request = granted.token_request(DEFAULT_GRANT_TYPE, None, &[]);
    let response = granted.exchange::<Fault>(request).unwrap();
    assert_eq!(granted.signed_tokens(), [response.access_token]);
    let mut denied = test_host("sign").grant_capabilities(&[Capability::Config, Capability::Clock]);
    let request = denied.token_request(DEFAULT_GRANT_TYPE, None, &[]);
    let error = denied.exchange::<Fault>(request).unwrap_err();
    assert!(
        error
            .error_description
            .is_some_and(|d| d.starts_with("host refused after 0: denied")),
    );
}

#[test]
fn unknown_mode_is_a_server_error() {
    let mut test_host = test_host("explode");
    let request = test_host.token_request(DEFAULT_GRANT_TYPE, None, &[]);
    let error = test_host.exchange::<Fault>(request).unwrap_err();
    assert_eq!(error.error, "server_error");
}

#[test]
#[should_panic(expected = "fault-plugin: panic mode")]
fn panic_mode_panics() {
    let mut test_host = test_host("panic");
    let request = test_host.token_request(DEFAULT_GRANT_TYPE, None, &[]);
    let _ = test_host.exchange::<Fault>(request);
}
