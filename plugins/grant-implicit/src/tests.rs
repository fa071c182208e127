//! Native tests of the implicit grant against the SDK's test host.

use grantbox_sdk::testing::{Capability, TestHost, TokenKind, strings};
use grantbox_sdk::{AuthorizationRequest, Client, HostError, OAuthError, Params, ResponseMode};

use super::{Implicit, RESPONSE_TYPE};

const REDIRECT_URI: &str = "https://legacy.example/callback";

/// The host as the manifest configures it: only `tokens`.
fn test_host(client: Client) -> TestHost {
    TestHost::new()
        .client(client)
        .grant_capabilities(&[Capability::Tokens])
}

/// A legacy browser app registered for the implicit grant (and, wrongly,
/// for refresh tokens too).
fn legacy_app() -> Client {
    Client::public("legacy")
        .with_scopes(&["read", "write"])
        .with_grant_types(&["implicit", "refresh_token"])
}

/// A client registered for the authorization code grant only.
fn modern_app() -> Client {
    Client::public("modern")
        .with_scopes(&["read", "write"])
        .with_grant_types(&["authorization_code"])
}

fn authorization_request(test_host: &TestHost, extra: &[(&str, &str)]) -> AuthorizationRequest {
    test_host.authorization_request(RESPONSE_TYPE, REDIRECT_URI, &["read", "write"], extra)
}

fn authorize_response(test_host: &mut TestHost, scope: &[&str]) -> Result<Params, OAuthError> {
    let approval = test_host.approval(RESPONSE_TYPE, REDIRECT_URI, "alice", scope, Vec::new());
    test_host.authorize_response::<Implicit>(approval)
}

#[test]
fn info_provides_the_token_response_type_in_the_fragment() {
    let info = TestHost::new().info::<Implicit>();
    assert!(info.grant_types.is_empty());
    assert_eq!(info.response_types.len(), 1);
    assert_eq!(info.response_types[0].response_type, strings(&["token"]));
    assert_eq!(
        info.response_types[0].default_response_mode,
        ResponseMode::Fragment
    );
}

#[test]
fn a_registered_client_passes_the_request_with_no_data() {
    let mut test_host = test_host(legacy_app());
    let request = authorization_request(&test_host, &[]);
    assert_eq!(
        test_host.authorize_request::<Implicit>(request),
        Ok(Vec::new())
    );
}

#[test]
fn an_unregistered_client_is_refused() {
    let mut test_host = test_host(modern_app());
    let request = authorization_request(&test_host, &[]);
    let error = test_host
        .authorize_request::<Implicit>(request)
        .unwrap_err();
    assert_eq!(error.error, "unauthorized_client");
    assert_eq!(
        error.error_description.as_deref(),
        Some("the client is not registered for the implicit grant")
    );
    // Also at the response, should the registration change meanwhile.
    let error = authorize_response(&mut test_host, &["read"]).unwrap_err();
    assert_eq!(error.error, "unauthorized_client");
    assert!(test_host.issued_tokens().is_empty());
}

#[test]
fn the_query_response_mode_is_refused() {
    let mut test_host = test_host(legacy_app());
    let request = authorization_request(&test_host, &[("response_mode", "query")]);
    let error = test_host
        .authorize_request::<Implicit>(request)
        .unwrap_err();
    assert_eq!(error.error, "invalid_request");
    for mode in ["fragment", "form_post"] {
        let request = authorization_request(&test_host, &[("response_mode", mode)]);
        assert!(test_host.authorize_request::<Implicit>(request).is_ok());
    }
    let request = authorization_request(
        &test_host,
        &[("response_mode", "fragment"), ("response_mode", "query")],
    );
    let error = test_host
        .authorize_request::<Implicit>(request)
        .unwrap_err();
    assert_eq!(error.error, "invalid_request");
}

#[test]
fn the_response_carries_an_access_token_and_no_refresh_token() {
    let mut test_host = test_host(legacy_app());
    let response = authorize_response(&mut test_host, &["read", "write"]).unwrap();

    let names: Vec<&str> = response.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["access_token", "token_type", "expires_in", "scope"]);
    let issued = test_host.issued_tokens();
    // The client registers `refresh_token`, yet only an access token is issued.
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].kind, TokenKind::Access);
    assert_eq!(response[0].1, issued[0].token);
    assert_eq!(response[1].1, "Bearer");
    assert_eq!(response[2].1, "3600");
    assert_eq!(response[3].1, "read write");
    assert_eq!(issued[0].subject.as_deref(), Some("alice"));
    assert_eq!(issued[0].client_id, "legacy");
    assert_eq!(issued[0].scope, strings(&["read", "write"]));
}

#[test]
fn the_scope_is_what_the_user_granted() {
    let mut test_host = test_host(legacy_app());
    let response = authorize_response(&mut test_host, &["read"]).unwrap();
    assert_eq!(response[3], ("scope".to_string(), "read".to_string()));
}

#[test]
fn host_errors_become_oauth_errors() {
    let check = |host_error: HostError, code: &str| {
        let mut test_host = test_host(legacy_app()).fail(Capability::Tokens, host_error);
        let error = authorize_response(&mut test_host, &["read"]).unwrap_err();
        assert_eq!(error.error, code);
    };
    check(
        HostError::Unavailable("db down".into()),
        "temporarily_unavailable",
    );
    check(HostError::Denied("withheld".into()), "server_error");
    check(
        HostError::InvalidArgument("bad scope".into()),
        "server_error",
    );
}

#[test]
fn the_token_endpoint_is_not_served() {
    let mut test_host = test_host(legacy_app());
    let request = test_host.token_request("implicit", None, &[]);
    let error = test_host.exchange::<Implicit>(request).unwrap_err();
    assert_eq!(error.error, "unsupported_grant_type");
}
