//! Native tests of the password grant against the SDK's test host.

use grantbox_sdk::testing::{Capability, TestHost, TokenKind, assert_error, strings};
use grantbox_sdk::{Client, HostError, OAuthError, TokenResponse};

use super::{GRANT_TYPE, Password};

/// The host as the manifest configures it: `users` and `tokens`, one user.
fn test_host(client: Client) -> TestHost {
    TestHost::new()
        .client(client)
        .grant_capabilities(&[Capability::Users, Capability::Tokens])
        .user("alice", "correct horse battery staple", "sub-alice")
}

/// A first-party app being migrated, registered for `password` and refresh.
fn migrating_app() -> Client {
    Client::confidential("legacy")
        .with_scopes(&["read", "write"])
        .with_grant_types(&[GRANT_TYPE, "refresh_token"])
}

fn exchange(
    test_host: &mut TestHost,
    scope: Option<&[&str]>,
    body: &[(&str, &str)],
) -> Result<TokenResponse, OAuthError> {
    let request = test_host.token_request(GRANT_TYPE, scope, body);
    test_host.exchange::<Password>(request)
}

const ALICE: [(&str, &str); 2] = [
    ("username", "alice"),
    ("password", "correct horse battery staple"),
];

#[test]
fn info_provides_only_the_grant_type() {
    let info = TestHost::new().info::<Password>();
    assert_eq!(info.grant_types, strings(&[GRANT_TYPE]));
    assert!(info.response_types.is_empty());
}

#[test]
fn valid_credentials_get_tokens_for_the_user() {
    let mut test_host = test_host(migrating_app());
    let response = exchange(&mut test_host, Some(&["read"]), &ALICE).unwrap();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.scope, Some(strings(&["read"])));
    let refresh_token = response.refresh_token.unwrap();

    let access = test_host.token(&response.access_token).unwrap();
    assert_eq!(access.subject.as_deref(), Some("sub-alice"));
    assert_eq!(access.client_id, "legacy");
    let refresh = test_host.token(&refresh_token).unwrap();
    assert_eq!(refresh.kind, TokenKind::Refresh);
    assert_eq!(refresh.grant_id, access.grant_id);
}

#[test]
fn without_a_scope_the_client_gets_its_registered_scopes() {
    let mut test_host = test_host(migrating_app());
    let response = exchange(&mut test_host, None, &ALICE).unwrap();
    assert_eq!(response.scope, Some(strings(&["read", "write"])));
}

#[test]
fn a_client_without_refresh_token_gets_none() {
    let client = Client::public("mobile")
        .with_scopes(&["read"])
        .with_grant_types(&[GRANT_TYPE]);
    let mut test_host = test_host(client);
    let response = exchange(&mut test_host, None, &ALICE).unwrap();
    assert_eq!(response.refresh_token, None);
}

#[test]
fn unknown_user_and_wrong_password_look_the_same() {
    let mut test_host = test_host(migrating_app());
    let wrong_password = exchange(
        &mut test_host,
        None,
        &[("username", "alice"), ("password", "Tr0ub4dor&3")],
    );
    assert_error(
        wrong_password,
        "invalid_grant",
        "invalid resource owner credentials",
    );
    let unknown_user = exchange(
        &mut test_host,
        None,
        &[
            ("username", "mallory"),
            ("password", "correct horse battery staple"),
        ],
    );
    assert_error(
        unknown_user,
        "invalid_grant",
        "invalid resource owner credentials",
    );
    assert!(test_host.issued_tokens().is_empty());
}

#[test]
fn username_and_password_are_required_once() {
    let mut test_host = test_host(migrating_app());
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("password", "x")], "missing parameter `username`"),
        (&[("username", "alice")], "missing parameter `password`"),
        (
            &[("username", "alice"), ("password", "")],
            "missing parameter `password`",
        ),
        (
            &[
                ("username", "alice"),
                ("username", "bob"),
                ("password", "x"),
            ],
            "parameter `username` is included more than once",
        ),
        (
            &[
                ("username", "alice"),
                ("password", "correct horse battery staple"),
                ("password", "x"),
            ],
            "parameter `password` is included more than once",
        ),
    ];
    for (body, description) in cases {
        assert_error(
            exchange(&mut test_host, None, body),
            "invalid_request",
            description,
        );
    }
}

#[test]
fn a_client_not_registered_for_the_grant_is_refused() {
    let client = Client::confidential("web")
        .with_scopes(&["read"])
        .with_grant_types(&["authorization_code"]);
    let mut test_host = test_host(client);
    assert_error(
        exchange(&mut test_host, None, &ALICE),
        "unauthorized_client",
        "the client is not registered for the password grant",
    );
}

#[test]
fn a_rate_limited_or_unreachable_user_store_is_temporarily_unavailable() {
    let mut test_host = test_host(migrating_app()).fail(
        Capability::Users,
        HostError::Unavailable("too many failed attempts for this user; try later".into()),
    );
    assert_error(
        exchange(&mut test_host, None, &ALICE),
        "temporarily_unavailable",
        "the server is temporarily unavailable",
    );
}

#[test]
fn credentials_over_the_hosts_limits_are_invalid() {
    let mut test_host = test_host(migrating_app()).fail(
        Capability::Users,
        HostError::InvalidArgument("username is longer than 255 bytes".into()),
    );
    assert_error(
        exchange(&mut test_host, None, &ALICE),
        "invalid_grant",
        "invalid resource owner credentials",
    );
}

#[test]
fn a_withheld_capability_is_a_server_error_without_the_hosts_text() {
    let mut test_host = test_host(migrating_app()).grant_capabilities(&[Capability::Tokens]);
    let error = exchange(&mut test_host, None, &ALICE).unwrap_err();
    assert_eq!(error.error, "server_error");
    assert!(!error.error_description.unwrap().contains("users"));
}

#[test]
fn a_failure_to_issue_is_reported() {
    let mut test_host = test_host(migrating_app())
        .fail(Capability::Tokens, HostError::Unavailable("db down".into()));
    let error = exchange(&mut test_host, None, &ALICE).unwrap_err();
    assert_eq!(error.error, "temporarily_unavailable");
}

#[test]
fn descriptions_never_echo_the_credentials() {
    let mut test_host = test_host(migrating_app());
    let secret = "hunter2-but-longer";
    let error = exchange(
        &mut test_host,
        None,
        &[("username", "alice"), ("password", secret)],
    )
    .unwrap_err();
    assert!(!format!("{error:?}").contains(secret));
    assert!(!format!("{error:?}").contains("alice"));
}
