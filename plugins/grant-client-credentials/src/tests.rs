//! Native tests of the client credentials grant against the SDK's test host.

use grantbox_sdk::testing::{Capability, TestHost};
use grantbox_sdk::{Client, HostError};

use super::{ClientCredentials, GRANT_TYPE};

/// The host as the manifest configures it: only `tokens`.
fn test_host(client: Client) -> TestHost {
    TestHost::new()
        .client(client)
        .grant_capabilities(&[Capability::Tokens])
}

fn service() -> Client {
    Client::confidential("service")
        .with_scopes(&["read", "write"])
        .with_grant_types(&[GRANT_TYPE, "refresh_token"])
}

#[test]
fn info_provides_only_the_grant_type() {
    let info = TestHost::new().info::<ClientCredentials>();
    assert_eq!(info.grant_types, vec![GRANT_TYPE.to_string()]);
    assert!(info.response_types.is_empty());
}

#[test]
fn a_confidential_client_gets_a_token_with_the_requested_scope() {
    let mut test_host = test_host(service());
    let request = test_host.token_request(GRANT_TYPE, Some(&["read"]), &[]);
    let response = test_host.exchange::<ClientCredentials>(request).unwrap();

    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.expires_in, Some(3600));
    assert_eq!(response.scope, Some(vec!["read".to_string()]));
    // The client registered `refresh_token`, yet none is issued (§4.4.3).
    assert_eq!(response.refresh_token, None);
    assert!(response.extra.is_empty());

    let issued = test_host.issued_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].token, response.access_token);
    assert_eq!(issued[0].client_id, "service");
    assert_eq!(issued[0].subject, None);
}

#[test]
fn without_a_scope_the_client_gets_its_registered_scopes() {
    let mut test_host = test_host(service());
    let request = test_host.token_request(GRANT_TYPE, None, &[]);
    let response = test_host.exchange::<ClientCredentials>(request).unwrap();
    assert_eq!(
        response.scope,
        Some(vec!["read".to_string(), "write".to_string()])
    );
}

#[test]
fn a_public_client_is_refused() {
    let mut test_host = test_host(Client::public("spa").with_scopes(&["read"]));
    let request = test_host.token_request(GRANT_TYPE, None, &[]);
    let error = test_host
        .exchange::<ClientCredentials>(request)
        .unwrap_err();
    assert_eq!(error.error, "unauthorized_client");
    assert!(test_host.issued_tokens().is_empty());
}

#[test]
fn host_errors_become_oauth_errors() {
    let check = |host_error: HostError, code: &str| {
        let mut test_host = test_host(service()).fail(Capability::Tokens, host_error);
        let request = test_host.token_request(GRANT_TYPE, None, &[]);
        let error = test_host
            .exchange::<ClientCredentials>(request)
            .unwrap_err();
        assert_eq!(error.error, code);
        assert!(error.error_description.is_some());
    };
    check(
        HostError::Unavailable("db down".into()),
        "temporarily_unavailable",
    );
    check(
        HostError::InvalidArgument("bad scope".into()),
        "server_error",
    );
    check(HostError::Denied("no tokens".into()), "server_error");
}

#[test]
fn a_manifest_without_tokens_is_a_server_error() {
    let mut test_host = TestHost::new().client(service()).grant_capabilities(&[]);
    let request = test_host.token_request(GRANT_TYPE, None, &[]);
    let error = test_host
        .exchange::<ClientCredentials>(request)
        .unwrap_err();
    assert_eq!(error.error, "server_error");
}
