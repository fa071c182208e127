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

/// [`setup`] with `orders-api` registered for JWT access tokens.
fn jwt_setup(extra_policy: &str) -> (TestHost, String) {
    let (test_host, subject_token) = setup();
    let test_host = test_host
        .grant_capabilities(&[
            Capability::TokenExchange,
            Capability::Config,
            Capability::Signing,
            Capability::Clock,
            Capability::Random,
        ])
        .config_raw(
            "clients",
            &format!(
                r#"{{"orders-api": {{"audiences": ["billing", "shipping"],
                    "resources": ["https://billing.example/api"],
                    "token_format": "jwt"{extra_policy}}}}}"#
            ),
        );
    (test_host, subject_token)
}

/// Verifies `jwt` with `jsonwebtoken` (not the crate the test host signs
/// with) against the test host's public key, as a resource server would:
/// signature, `alg`, `typ`, `kid`, `iss` and `aud`. Returns the claims.
fn verify_jwt(test_host: &TestHost, jwt: &str, audience: &str) -> serde_json::Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    let header = decode_header(jwt).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(
        header.kid.as_deref(),
        Some(grantbox_sdk::testing::SIGNING_KEY_ID)
    );
    let key = DecodingKey::from_ec_pem(TestHost::signing_public_key_pem().as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[test_host.issuer_identifier()]);
    validation.set_audience(&[audience]);
    // The test host's clock is fixed in 2023; `exp` is checked against it below.
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    decode::<serde_json::Value>(jwt, &key, &validation)
        .unwrap()
        .claims
}

#[test]
fn a_jwt_client_gets_a_signed_rfc_9068_token_with_act() {
    let (mut test_host, subject_token) = jwt_setup("");
    let actor_token = test_host.existing_token("orders-api", None, &["orders:read"]);
    let stored_before = test_host.issued_tokens().len();
    let response = exchange(
        &mut test_host,
        Some(&["orders:read"]),
        &[
            ("subject_token", &subject_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("actor_token", &actor_token),
            ("actor_token_type", ACCESS_TOKEN_TYPE),
            ("audience", "billing"),
            ("resource", "https://billing.example/api"),
        ],
    )
    .unwrap();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.expires_in, Some(300));
    assert_eq!(
        extra(&response, "issued_token_type"),
        Some(ACCESS_TOKEN_TYPE)
    );
    // Signed by the host, not stored as a token of its own.
    assert_eq!(
        test_host.signed_tokens(),
        std::slice::from_ref(&response.access_token)
    );
    assert_eq!(test_host.issued_tokens().len(), stored_before);

    let claims = verify_jwt(&test_host, &response.access_token, "billing");
    let now = test_host.now();
    assert_eq!(claims["iss"], "https://grantbox.test");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(
        claims["aud"],
        serde_json::json!(["billing", "https://billing.example/api"])
    );
    assert_eq!(claims["client_id"], CLIENT);
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 300);
    assert_eq!(claims["act"], serde_json::json!({"sub": "orders-api"}));
    assert_eq!(claims["jti"].as_str().unwrap().len(), 32);

    // Impersonation: no `act`; each token has its own `jti`.
    let second = exchange(
        &mut test_host,
        None,
        &[
            ("subject_token", &subject_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("audience", "shipping"),
        ],
    )
    .unwrap();
    let second = verify_jwt(&test_host, &second.access_token, "shipping");
    assert!(second.get("act").is_none(), "{second}");
    assert_eq!(second["scope"], "orders:read orders:write");
    assert_ne!(second["jti"], claims["jti"]);

    // A changed claim breaks the signature: the verification above can fail.
    use base64::Engine as _;
    let mut forged_claims = claims.clone();
    forged_claims["sub"] = "bob".into();
    let forged_claims =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged_claims.to_string());
    let mut parts: Vec<&str> = response.access_token.split('.').collect();
    parts[1] = &forged_claims;
    let forged = parts.join(".");
    let key = jsonwebtoken::DecodingKey::from_ec_pem(TestHost::signing_public_key_pem().as_bytes())
        .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    let error = jsonwebtoken::decode::<serde_json::Value>(&forged, &key, &validation).unwrap_err();
    assert_eq!(
        error.kind(),
        &jsonwebtoken::errors::ErrorKind::InvalidSignature
    );
}

#[test]
fn a_jwt_never_outlives_the_tokens_presented_and_follows_the_configured_lifetime() {
    let (mut test_host, subject_token) = jwt_setup(r#", "jwt_lifetime_seconds": 120"#);
    let params = [
        ("subject_token", subject_token.as_str()),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        ("audience", "billing"),
    ];
    let response = exchange(&mut test_host, None, &params).unwrap();
    assert_eq!(response.expires_in, Some(120));
    let claims = verify_jwt(&test_host, &response.access_token, "billing");
    assert_eq!(claims["exp"], test_host.now() + 120);

    // The subject token (3600 s from the clock it was issued at) ends in 50 s.
    test_host.advance(3600 - 50);
    let response = exchange(&mut test_host, None, &params).unwrap();
    assert_eq!(response.expires_in, Some(50));
    let claims = verify_jwt(&test_host, &response.access_token, "billing");
    assert_eq!(claims["exp"], test_host.now() + 50);
}

#[test]
fn a_jwt_needs_an_audience_and_the_signing_capability() {
    let (mut test_host, subject_token) = jwt_setup("");
    let params = [
        ("subject_token", subject_token.as_str()),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ];
    check_error(
        &mut test_host,
        None,
        &params,
        ("invalid_target", "audience"),
    );

    let with_audience = [params[0], params[1], ("audience", "billing")];
    let mut test_host = test_host.grant_capabilities(&[
        Capability::TokenExchange,
        Capability::Config,
        Capability::Clock,
        Capability::Random,
    ]);
    check_error(
        &mut test_host,
        None,
        &with_audience,
        ("server_error", "refused a capability"),
    );
    assert!(test_host.signed_tokens().is_empty());
}
