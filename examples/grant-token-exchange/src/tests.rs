//! Native tests of the token exchange grant against the SDK's test host:
//! impersonation, delegation, audience and resource policy, scope narrowing
//! and every refusal RFC 8693 §2.2.2 names.

use grantbox_sdk::testing::{Capability, TestHost};
use grantbox_sdk::{Client, OAuthError, TokenResponse, host};

use super::{ACCESS_TOKEN_TYPE, GRANT_TYPE, TokenExchange};

/// The client that exchanges: a resource server that received a user's token.
const CLIENT: &str = "orders-api";

/// A test host configured like `plugin.toml`, calling as `orders-api`, and
/// the user's token (issued earlier to the `web` client) as subject token.
fn setup() -> (TestHost, String) {
    let mut test_host = TestHost::new()
        .client(
            Client::confidential(CLIENT)
                .with_scopes(&["orders:read", "orders:write", "profile"])
                .with_grant_types(&[GRANT_TYPE]),
        )
        .grant_capabilities(&[Capability::TokenExchange, Capability::Config])
        .config_raw(
            "clients",
            r#"{"orders-api": {"audiences": ["billing", "shipping"],
                               "resources": ["https://billing.example/api"]}}"#,
        );
    let subject_token = test_host.existing_token(
        "web",
        Some("alice"),
        &["orders:read", "orders:write", "email"],
    );
    (test_host, subject_token)
}

fn exchange(
    test_host: &mut TestHost,
    scope: Option<&[&str]>,
    params: &[(&str, &str)],
) -> Result<TokenResponse, OAuthError> {
    let request = test_host.token_request(GRANT_TYPE, scope, params);
    test_host.exchange::<TokenExchange>(request)
}

fn extra<'a>(response: &'a TokenResponse, name: &str) -> Option<&'a str> {
    response
        .extra
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn check_error(
    test_host: &mut TestHost,
    scope: Option<&[&str]>,
    params: &[(&str, &str)],
    expect: (&str, &str),
) {
    let error = exchange(test_host, scope, params).expect_err("refused");
    assert_eq!(error.error, expect.0, "{params:?}: {error:?}");
    let description = error.error_description.unwrap_or_default();
    assert!(
        description.contains(expect.1),
        "{params:?}: {description:?} lacks {:?}",
        expect.1
    );
}

#[test]
fn impersonation_issues_a_token_for_the_subject_with_its_scope() {
    let (mut test_host, subject_token) = setup();
    let response = exchange(
        &mut test_host,
        None,
        &[
            ("subject_token", &subject_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ],
    )
    .unwrap();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(
        extra(&response, "issued_token_type"),
        Some(ACCESS_TOKEN_TYPE)
    );
    assert_eq!(response.refresh_token, None);
    // The subject token's scope, as far as this client is registered for it.
    assert_eq!(
        response.scope,
        Some(vec!["orders:read".to_string(), "orders:write".to_string()])
    );
    let issued = test_host.token(&response.access_token).unwrap();
    assert_eq!(issued.client_id, CLIENT);
    assert_eq!(issued.subject.as_deref(), Some("alice"));
    assert_eq!(issued.actor, None);
    assert!(issued.audience.is_empty());
    // It joined the subject token's family.
    let subject_family = &test_host.token(&subject_token).unwrap().grant_id;
    assert_eq!(&issued.grant_id, subject_family);

    // Later, the new token ends with the subject token, not an hour on.
    test_host.advance(600);
    let later = exchange(
        &mut test_host,
        None,
        &[
            ("subject_token", &subject_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ],
    )
    .unwrap();
    assert_eq!(later.expires_in, Some(3000));
}

#[test]
fn delegation_carries_the_actor() {
    let (mut test_host, subject_token) = setup();
    let actor_token = test_host.existing_token("orders-api", None, &["orders:read"]);
    let response = exchange(
        &mut test_host,
        Some(&["orders:read"]),
        &[
            ("subject_token", &subject_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("actor_token", &actor_token),
            ("actor_token_type", ACCESS_TOKEN_TYPE),
        ],
    )
    .unwrap();
    let issued = test_host.token(&response.access_token).unwrap();
    assert_eq!(issued.subject.as_deref(), Some("alice"));
    // A client token has no subject: the client is the actor.
    assert_eq!(issued.actor.as_deref(), Some("orders-api"));
    assert_eq!(issued.scope, vec!["orders:read"]);

    // Exchanging the delegated token again keeps the actor and the audience.
    let user_actor = test_host.existing_token("web", Some("bob"), &[]);
    let delegated = exchange(
        &mut test_host,
        None,
        &[
            ("subject_token", &subject_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("actor_token", &user_actor),
            ("actor_token_type", ACCESS_TOKEN_TYPE),
            ("audience", "billing"),
        ],
    )
    .unwrap();
    assert_eq!(
        test_host
            .token(&delegated.access_token)
            .unwrap()
            .actor
            .as_deref(),
        Some("bob")
    );
    let again = exchange(
        &mut test_host,
        None,
        &[
            ("subject_token", &delegated.access_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ],
    )
    .unwrap();
    let again = test_host.token(&again.access_token).unwrap();
    assert_eq!(again.actor.as_deref(), Some("bob"));
    assert_eq!(again.audience, vec!["billing"]);
}

#[test]
fn audience_and_resource_become_the_token_audience() {
    let (mut test_host, subject_token) = setup();
    let response = exchange(
        &mut test_host,
        None,
        &[
            ("subject_token", &subject_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
            ("audience", "billing"),
            ("audience", "shipping"),
            ("audience", "billing"),
            ("resource", "https://billing.example/api"),
        ],
    )
    .unwrap();
    assert_eq!(
        test_host.token(&response.access_token).unwrap().audience,
        vec!["billing", "shipping", "https://billing.example/api"]
    );
}

#[test]
fn refusals_follow_rfc_8693() {
    let (mut test_host, subject_token) = setup();
    let subject = |extra: &[(&'static str, &'static str)]| {
        let mut params = vec![
            ("subject_token", subject_token.clone()),
            ("subject_token_type", ACCESS_TOKEN_TYPE.to_string()),
        ];
        params.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        params
    };
    // The form, the requested scope, and the error code with a part of its description.
    type Case<'a> = (
        Vec<(&'a str, String)>,
        Option<&'a [&'a str]>,
        (&'a str, &'a str),
    );
    let cases: Vec<Case> = vec![
        (
            vec![("subject_token_type", ACCESS_TOKEN_TYPE.to_string())],
            None,
            ("invalid_request", "subject_token"),
        ),
        (
            vec![("subject_token", subject_token.clone())],
            None,
            ("invalid_request", "subject_token_type"),
        ),
        (
            vec![
                ("subject_token", subject_token.clone()),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:jwt".to_string(),
                ),
            ],
            None,
            ("invalid_request", "subject_token_type"),
        ),
        (
            vec![
                ("subject_token", "not-a-token-of-this-server".to_string()),
                ("subject_token_type", ACCESS_TOKEN_TYPE.to_string()),
            ],
            None,
            (
                "invalid_request",
                "subject_token is not an active access token of this server",
            ),
        ),
        (
            subject(&[("actor_token", "whatever")]),
            None,
            ("invalid_request", "actor_token_type is required"),
        ),
        (
            subject(&[("actor_token_type", ACCESS_TOKEN_TYPE)]),
            None,
            ("invalid_request", "without actor_token"),
        ),
        (
            subject(&[
                ("actor_token", "unknown"),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
            ]),
            None,
            (
                "invalid_request",
                "actor_token is not an active access token",
            ),
        ),
        (
            subject(&[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )]),
            None,
            ("invalid_request", "requested_token_type"),
        ),
        (
            subject(&[("audience", "payroll")]),
            None,
            ("invalid_target", "audience payroll"),
        ),
        (
            subject(&[("resource", "https://evil.example/")]),
            None,
            ("invalid_target", "resource https://evil.example/"),
        ),
        (
            subject(&[("resource", "billing")]),
            None,
            ("invalid_request", "absolute URI"),
        ),
        (
            subject(&[("resource", "https://billing.example/api#x")]),
            None,
            ("invalid_request", "fragment"),
        ),
        (
            subject(&[]),
            Some(&["orders:read", "profile"]),
            ("invalid_scope", "scope profile"),
        ),
    ];
    for (params, scope, expect) in cases {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        check_error(&mut test_host, scope, &params, expect);
    }
    assert!(
        test_host
            .issued_tokens()
            .iter()
            .all(|token| token.client_id != CLIENT),
        "nothing was issued"
    );
}

#[test]
fn an_expired_or_refresh_subject_token_is_invalid_request() {
    let (mut test_host, subject_token) = setup();
    let params = [
        ("subject_token", subject_token.as_str()),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ];
    test_host.advance(3600);
    check_error(
        &mut test_host,
        None,
        &params,
        ("invalid_request", "not an active access token"),
    );

    // A refresh token of the `web` client, issued through `tokens` (which the
    // plugin itself never calls).
    let (test_host, _) = setup();
    let mut test_host = test_host.grant_capabilities(&[
        Capability::Tokens,
        Capability::TokenExchange,
        Capability::Config,
    ]);
    test_host.set_client(
        Client::confidential("web")
            .with_scopes(&["orders:read"])
            .with_grant_types(&["refresh_token"]),
    );
    let issued = test_host
        .run(|| {
            host::tokens::issue(&grantbox_sdk::TokenGrant {
                subject: Some("alice".into()),
                scope: vec!["orders:read".into()],
                refresh_token: true,
                grant_id: None,
            })
        })
        .unwrap();
    test_host.set_client(
        Client::confidential(CLIENT)
            .with_scopes(&["orders:read"])
            .with_grant_types(&[GRANT_TYPE]),
    );
    let refresh_token = issued.refresh_token.unwrap();
    check_error(
        &mut test_host,
        None,
        &[
            ("subject_token", &refresh_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ],
        ("invalid_request", "subject_token is not an access token"),
    );
}

#[test]
fn a_client_without_policy_is_unauthorized_and_a_broken_policy_is_server_error() {
    let (mut test_host, subject_token) = setup();
    let params = [
        ("subject_token", subject_token.as_str()),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ];
    test_host.set_client(Client::confidential("stranger").with_grant_types(&[GRANT_TYPE]));
    check_error(
        &mut test_host,
        None,
        &params,
        ("unauthorized_client", "stranger"),
    );

    let (test_host, subject_token) = setup();
    let mut test_host =
        test_host.config_raw("clients", r#"{"orders-api": {"audiences": "billing"}}"#);
    check_error(
        &mut test_host,
        None,
        &[
            ("subject_token", &subject_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ],
        ("server_error", "clients.orders-api.audiences"),
    );
}

#[test]
fn without_the_capability_the_host_refuses() {
    let (test_host, subject_token) = setup();
    let mut test_host = test_host.grant_capabilities(&[Capability::Config]);
    check_error(
        &mut test_host,
        None,
        &[
            ("subject_token", &subject_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ],
        ("server_error", "refused a capability"),
    );
}

#[test]
fn a_token_format_in_the_config_is_an_error_the_registration_decides() {
    // The form of the token is the client's registration's (`client add
    // --access-token-format`), not the plugin's: an older `[config]` that
    // still says `token_format` is refused rather than ignored in silence.
    let (test_host, subject_token) = setup();
    let mut test_host = test_host.config_raw(
        "clients",
        r#"{"orders-api": {"audiences": ["billing"], "token_format": "jwt"}}"#,
    );
    check_error(
        &mut test_host,
        None,
        &[
            ("subject_token", &subject_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("audience", "billing"),
        ],
        ("server_error", "token_format"),
    );
}
