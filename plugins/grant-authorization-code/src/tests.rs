//! Native tests of the authorization code grant with PKCE against the SDK's
//! test host.

use grantbox_sdk::testing::{Capability, TestHost, assert_error, params, strings};
use grantbox_sdk::{
    AuthorizationApproval, AuthorizationRequest, Client, HostError, OAuthError, Params,
    ResponseMode, TokenResponse,
};

use super::{
    AuthorizationCode, GRANT_TYPE, RESPONSE_TYPE, base64url, constant_time_eq, is_pkce_string, s256,
};

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// A plain verifier (and so challenge) of the shortest allowed length.
const PLAIN_VERIFIER: &str = "abcdefghijklmnopqrstuvwxyz0123456789-._~ABC";
const REDIRECT_URI: &str = "https://app.example/callback";

/// A confidential web app that may refresh.
fn web_app() -> Client {
    Client::confidential("web")
        .with_scopes(&["read", "write"])
        .with_grant_types(&[GRANT_TYPE, "refresh_token"])
}

/// A public single-page app.
fn spa() -> Client {
    Client::public("spa")
        .with_scopes(&["read"])
        .with_grant_types(&[GRANT_TYPE])
}

/// The host as the manifest configures it (`codes`, `tokens`, `config` and
/// the manifest's `[config]` table), with `plain` re-enabled as an operator
/// may, so that both methods can be tested.
fn test_host(client: Client) -> TestHost {
    TestHost::new()
        .client(client)
        .grant_capabilities(&[Capability::Codes, Capability::Tokens, Capability::Config])
        .config_raw("code_lifetime_seconds", "60")
        .config_raw("require_pkce", "false")
        .config_raw("allow_plain", "true")
}

/// An authorization request for `scope=read` with the PKCE `extra` params, as
/// the host passes it after validating the client and the redirect URI.
fn authorization_request(test_host: &TestHost, extra: &[(&str, &str)]) -> AuthorizationRequest {
    test_host.authorization_request(RESPONSE_TYPE, REDIRECT_URI, &["read"], extra)
}

fn authorize_request(
    test_host: &mut TestHost,
    extra: &[(&str, &str)],
) -> Result<Params, OAuthError> {
    let request = authorization_request(test_host, extra);
    test_host.authorize_request::<AuthorizationCode>(request)
}

/// The user `alice` approved `scope=read`; `redirect_uri` is what the client sent.
fn approval(test_host: &TestHost, data: Params, redirect_uri: &str) -> AuthorizationApproval {
    test_host.approval(RESPONSE_TYPE, redirect_uri, "alice", &["read"], data)
}

/// The whole authorization endpoint: request, approval, the `code` returned.
fn authorize(test_host: &mut TestHost, extra: &[(&str, &str)], redirect_uri: &str) -> String {
    let data = authorize_request(test_host, extra).unwrap();
    let approval = approval(test_host, data, redirect_uri);
    let response = test_host
        .authorize_response::<AuthorizationCode>(approval)
        .unwrap();
    assert_eq!(response.len(), 1);
    assert_eq!(response[0].0, "code");
    response[0].1.clone()
}

fn exchange(test_host: &mut TestHost, body: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
    let request = test_host.token_request(GRANT_TYPE, None, body);
    test_host.exchange::<AuthorizationCode>(request)
}

// info

#[test]
fn info_provides_the_code_response_type_and_the_grant_type() {
    let info = TestHost::new().info::<AuthorizationCode>();
    assert_eq!(info.grant_types, strings(&[GRANT_TYPE]));
    assert_eq!(info.response_types.len(), 1);
    assert_eq!(info.response_types[0].response_type, strings(&["code"]));
    assert_eq!(
        info.response_types[0].default_response_mode,
        ResponseMode::Query
    );
}

// authorize_request

#[test]
fn a_confidential_client_may_skip_pkce() {
    let mut test_host = test_host(web_app());
    assert_eq!(authorize_request(&mut test_host, &[]), Ok(Vec::new()));
}

#[test]
fn a_public_client_must_send_a_code_challenge() {
    let mut test_host = test_host(spa());
    assert_error(
        authorize_request(&mut test_host, &[]),
        "invalid_request",
        "code_challenge required",
    );
    // An empty value counts as absent (RFC 6749 §3.1).
    assert_error(
        authorize_request(&mut test_host, &[("code_challenge", "")]),
        "invalid_request",
        "code_challenge required",
    );
}

#[test]
fn require_pkce_applies_to_confidential_clients() {
    let mut test_host = test_host(web_app()).config_raw("require_pkce", "true");
    assert_error(
        authorize_request(&mut test_host, &[]),
        "invalid_request",
        "code_challenge required",
    );
    let data = authorize_request(
        &mut test_host,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    );
    assert!(data.is_ok());
}

#[test]
fn an_s256_challenge_is_kept_with_the_transaction() {
    let mut test_host = test_host(spa());
    let data = authorize_request(
        &mut test_host,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    );
    assert_eq!(
        data,
        Ok(params(&[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256")
        ]))
    );
}

#[test]
fn a_missing_method_means_plain() {
    let mut test_host = test_host(spa());
    let data = authorize_request(&mut test_host, &[("code_challenge", PLAIN_VERIFIER)]);
    assert_eq!(
        data,
        Ok(params(&[
            ("code_challenge", PLAIN_VERIFIER),
            ("code_challenge_method", "plain")
        ]))
    );
}

#[test]
fn plain_is_refused_when_the_operator_disallows_it() {
    let mut test_host = test_host(spa()).config_raw("allow_plain", "false");
    let refused = "code_challenge_method plain is not allowed; use S256";
    assert_error(
        authorize_request(
            &mut test_host,
            &[
                ("code_challenge", PLAIN_VERIFIER),
                ("code_challenge_method", "plain"),
            ],
        ),
        "invalid_request",
        refused,
    );
    // A missing method is plain, so it is refused as well.
    assert_error(
        authorize_request(&mut test_host, &[("code_challenge", PLAIN_VERIFIER)]),
        "invalid_request",
        refused,
    );
    assert!(
        authorize_request(
            &mut test_host,
            &[
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256")
            ],
        )
        .is_ok()
    );
}

#[test]
fn an_unknown_method_is_refused() {
    let mut test_host = test_host(spa());
    for method in ["s256", "SHA256", "S512", "PLAIN"] {
        assert_error(
            authorize_request(
                &mut test_host,
                &[
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", method),
                ],
            ),
            "invalid_request",
            "code_challenge_method must be S256 or plain",
        );
    }
}

#[test]
fn a_method_without_a_challenge_is_refused() {
    let mut test_host = test_host(web_app());
    assert_error(
        authorize_request(&mut test_host, &[("code_challenge_method", "S256")]),
        "invalid_request",
        "code_challenge_method without code_challenge",
    );
}

#[test]
fn a_malformed_challenge_is_refused() {
    let mut test_host = test_host(spa());
    let malformed = "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~";
    let too_short = &PLAIN_VERIFIER[..42];
    let too_long = "a".repeat(129);
    let padded = format!("{}=", &CHALLENGE[..42]);
    let standard_base64 = CHALLENGE.replace('-', "+");
    for challenge in [too_short, &too_long, &padded, &standard_base64] {
        assert_error(
            authorize_request(&mut test_host, &[("code_challenge", challenge)]),
            "invalid_request",
            malformed,
        );
    }
    let longest = "~".repeat(128);
    assert!(authorize_request(&mut test_host, &[("code_challenge", &longest)]).is_ok());
}

#[test]
fn an_s256_challenge_must_be_a_sha256_digest_long() {
    let mut test_host = test_host(spa());
    let challenge = format!("{CHALLENGE}A");
    assert_error(
        authorize_request(
            &mut test_host,
            &[
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        ),
        "invalid_request",
        "an S256 code_challenge is 43 characters",
    );
}

#[test]
fn a_repeated_pkce_parameter_is_refused() {
    let mut test_host = test_host(spa());
    let error = authorize_request(
        &mut test_host,
        &[("code_challenge", CHALLENGE), ("code_challenge", CHALLENGE)],
    )
    .unwrap_err();
    assert_eq!(error.error, "invalid_request");
    let error = authorize_request(
        &mut test_host,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("code_challenge_method", "plain"),
        ],
    )
    .unwrap_err();
    assert_eq!(error.error, "invalid_request");
}

#[test]
fn a_malformed_config_is_a_server_error() {
    for (key, value) in [
        ("require_pkce", "yes"),
        ("allow_plain", "1"),
        ("allow_plain", "TRUE"),
    ] {
        let mut test_host = test_host(web_app()).config_raw(key, value);
        assert_error(
            authorize_request(&mut test_host, &[]),
            "server_error",
            "the authorization code grant is misconfigured",
        );
    }
}

#[test]
fn missing_config_keys_take_the_defaults() {
    let mut test_host = TestHost::new().client(spa()).grant_capabilities(&[
        Capability::Codes,
        Capability::Tokens,
        Capability::Config,
    ]);
    // allow_plain defaults to false (RFC 9700 §2.1.1), so a missing method,
    // which means plain, is refused; the lifetime defaults to 60 seconds.
    assert_error(
        authorize_request(&mut test_host, &[("code_challenge", PLAIN_VERIFIER)]),
        "invalid_request",
        "code_challenge_method plain is not allowed; use S256",
    );
    let code = authorize(
        &mut test_host,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
        "",
    );
    test_host.advance(59);
    assert!(
        exchange(
            &mut test_host,
            &[("code", &code), ("code_verifier", VERIFIER)]
        )
        .is_ok()
    );
    // require_pkce defaults to false.
    test_host.set_client(web_app());
    assert!(authorize_request(&mut test_host, &[]).is_ok());
}

#[test]
fn without_the_config_capability_the_request_fails_closed() {
    let mut test_host = TestHost::new()
        .client(web_app())
        .grant_capabilities(&[Capability::Codes, Capability::Tokens]);
    let error = authorize_request(&mut test_host, &[]).unwrap_err();
    assert_eq!(error.error, "server_error");
}

// authorize_response

#[test]
fn the_code_is_bound_to_the_approval() {
    let mut test_host = test_host(web_app());
    let code = authorize(&mut test_host, &[], REDIRECT_URI);
    assert!(!code.is_empty());
    let response = exchange(
        &mut test_host,
        &[("code", &code), ("redirect_uri", REDIRECT_URI)],
    )
    .unwrap();
    assert_eq!(response.scope, Some(strings(&["read"])));
    let issued = test_host.token(&response.access_token).unwrap();
    assert_eq!(issued.subject.as_deref(), Some("alice"));
    assert_eq!(issued.client_id, "web");
}

#[test]
fn the_code_lives_as_long_as_the_config_says() {
    let mut test_host = test_host(web_app()).config_raw("code_lifetime_seconds", "30");
    let code = authorize(&mut test_host, &[], "");
    test_host.advance(30);
    assert_error(
        exchange(&mut test_host, &[("code", &code)]),
        "invalid_grant",
        "the authorization code has expired",
    );
}

#[test]
fn a_malformed_code_lifetime_is_a_server_error() {
    for value in ["0", "-5", "1.5", "soon", "4294967296"] {
        let mut test_host = test_host(web_app()).config_raw("code_lifetime_seconds", value);
        let approval = approval(&test_host, Vec::new(), REDIRECT_URI);
        assert_error(
            test_host.authorize_response::<AuthorizationCode>(approval),
            "server_error",
            "the authorization code grant is misconfigured",
        );
    }
}

#[test]
fn a_host_failure_to_issue_the_code_is_reported() {
    let mut test_host =
        test_host(web_app()).fail(Capability::Codes, HostError::Unavailable("db down".into()));
    let approval = approval(&test_host, Vec::new(), REDIRECT_URI);
    assert_error(
        test_host.authorize_response::<AuthorizationCode>(approval),
        "temporarily_unavailable",
        "the server is temporarily unavailable",
    );
}

// exchange

#[test]
fn rfc_7636_appendix_b_round_trip() {
    let mut test_host = test_host(spa());
    let code = authorize(
        &mut test_host,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
        REDIRECT_URI,
    );
    let response = exchange(
        &mut test_host,
        &[
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ],
    )
    .unwrap();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.expires_in, Some(3600));
    assert_eq!(response.scope, Some(strings(&["read"])));
    // The SPA does not register `refresh_token`.
    assert_eq!(response.refresh_token, None);
}

#[test]
fn a_plain_challenge_round_trip() {
    let mut test_host = test_host(spa());
    let code = authorize(&mut test_host, &[("code_challenge", PLAIN_VERIFIER)], "");
    let response = exchange(
        &mut test_host,
        &[("code", &code), ("code_verifier", PLAIN_VERIFIER)],
    );
    assert!(response.is_ok());
}

#[test]
fn a_client_that_registers_refresh_token_gets_one_in_the_codes_family() {
    let mut test_host = test_host(web_app());
    let code = authorize(&mut test_host, &[], REDIRECT_URI);
    let response = exchange(
        &mut test_host,
        &[("code", &code), ("redirect_uri", REDIRECT_URI)],
    )
    .unwrap();
    let refresh_token = response.refresh_token.unwrap();
    let access = test_host.token(&response.access_token).unwrap();
    let refresh = test_host.token(&refresh_token).unwrap();
    assert_eq!(access.grant_id, refresh.grant_id);
    assert_eq!(refresh.subject.as_deref(), Some("alice"));
    assert_eq!(refresh.scope, strings(&["read"]));
}

#[test]
fn the_code_parameter_is_required_once() {
    let mut test_host = test_host(web_app());
    assert_error(
        exchange(&mut test_host, &[]),
        "invalid_request",
        "missing parameter `code`",
    );
    assert_error(
        exchange(&mut test_host, &[("code", "")]),
        "invalid_request",
        "missing parameter `code`",
    );
    let code = authorize(&mut test_host, &[], "");
    assert_error(
        exchange(&mut test_host, &[("code", &code), ("code", &code)]),
        "invalid_request",
        "parameter `code` is included more than once",
    );
    // The malformed request did not use the code up.
    assert!(exchange(&mut test_host, &[("code", &code)]).is_ok());
}

#[test]
fn an_unknown_code_is_an_invalid_grant() {
    let mut test_host = test_host(web_app());
    assert_error(
        exchange(&mut test_host, &[("code", "not-a-code")]),
        "invalid_grant",
        "the authorization code is invalid",
    );
}

#[test]
fn another_clients_code_is_an_invalid_grant() {
    let mut test_host = test_host(web_app());
    let code = authorize(&mut test_host, &[], "");
    test_host.set_client(
        Client::confidential("other")
            .with_scopes(&["read"])
            .with_grant_types(&[GRANT_TYPE]),
    );
    assert_error(
        exchange(&mut test_host, &[("code", &code)]),
        "invalid_grant",
        "the authorization code is invalid",
    );
}

#[test]
fn an_expired_code_is_an_invalid_grant() {
    let mut test_host = test_host(web_app());
    let code = authorize(&mut test_host, &[], "");
    test_host.advance(60);
    assert_error(
        exchange(&mut test_host, &[("code", &code)]),
        "invalid_grant",
        "the authorization code has expired",
    );
}

#[test]
fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let mut test_host = test_host(web_app());
    let code = authorize(&mut test_host, &[], "");
    let first = exchange(&mut test_host, &[("code", &code)]).unwrap();
    assert_error(
        exchange(&mut test_host, &[("code", &code)]),
        "invalid_grant",
        "the authorization code was already used",
    );
    assert!(test_host.token(&first.access_token).unwrap().revoked);
    assert!(
        test_host
            .token(first.refresh_token.as_deref().unwrap())
            .unwrap()
            .revoked
    );
}

#[test]
fn a_bound_redirect_uri_must_be_repeated_identically() {
    let mut test_host = test_host(web_app());
    let code = authorize(&mut test_host, &[], REDIRECT_URI);
    assert_error(
        exchange(&mut test_host, &[("code", &code)]),
        "invalid_grant",
        "redirect_uri is required: the authorization request included one",
    );

    for other in [
        "https://app.example/callback/",
        "https://app.example/Callback",
        "https://evil.example/callback",
    ] {
        let code = authorize(&mut test_host, &[], REDIRECT_URI);
        assert_error(
            exchange(&mut test_host, &[("code", &code), ("redirect_uri", other)]),
            "invalid_grant",
            "redirect_uri does not match the authorization request",
        );
    }
}

#[test]
fn without_a_bound_redirect_uri_none_is_needed() {
    let mut test_host = test_host(web_app());
    let code = authorize(&mut test_host, &[], "");
    assert!(exchange(&mut test_host, &[("code", &code)]).is_ok());
    let code = authorize(&mut test_host, &[], "");
    assert!(
        exchange(
            &mut test_host,
            &[("code", &code), ("redirect_uri", REDIRECT_URI)]
        )
        .is_ok()
    );
}

#[test]
fn a_challenge_needs_its_verifier() {
    let mut test_host = test_host(spa());
    let code = authorize(
        &mut test_host,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
        "",
    );
    assert_error(
        exchange(&mut test_host, &[("code", &code)]),
        "invalid_grant",
        "code_verifier required",
    );
    assert!(test_host.issued_tokens().is_empty());
}

#[test]
fn a_wrong_verifier_is_an_invalid_grant() {
    let mut test_host = test_host(spa());
    let mismatch = "code_verifier does not match the code_challenge";
    let code = authorize(
        &mut test_host,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
        "",
    );
    let wrong = format!("{}A", &VERIFIER[..42]);
    assert_error(
        exchange(
            &mut test_host,
            &[("code", &code), ("code_verifier", &wrong)],
        ),
        "invalid_grant",
        mismatch,
    );
    // The challenge itself is not the verifier of an S256 code.
    let code = authorize(
        &mut test_host,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
        "",
    );
    assert_error(
        exchange(
            &mut test_host,
            &[("code", &code), ("code_verifier", CHALLENGE)],
        ),
        "invalid_grant",
        mismatch,
    );
    // Nor is the S256 of a plain challenge its verifier.
    let code = authorize(&mut test_host, &[("code_challenge", CHALLENGE)], "");
    assert_error(
        exchange(
            &mut test_host,
            &[("code", &code), ("code_verifier", VERIFIER)],
        ),
        "invalid_grant",
        mismatch,
    );
    assert!(test_host.issued_tokens().is_empty());
}

#[test]
fn a_failed_verification_uses_the_code_up() {
    let mut test_host = test_host(spa());
    let code = authorize(
        &mut test_host,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
        "",
    );
    let wrong = "x".repeat(43);
    assert!(
        exchange(
            &mut test_host,
            &[("code", &code), ("code_verifier", &wrong)]
        )
        .is_err()
    );
    assert_error(
        exchange(
            &mut test_host,
            &[("code", &code), ("code_verifier", VERIFIER)],
        ),
        "invalid_grant",
        "the authorization code was already used",
    );
}

#[test]
fn a_malformed_verifier_is_an_invalid_request_and_keeps_the_code() {
    let mut test_host = test_host(spa());
    let code = authorize(
        &mut test_host,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
        "",
    );
    let too_long = "a".repeat(129);
    let bad_char = format!("{VERIFIER}+");
    for verifier in [&VERIFIER[..42], too_long.as_str(), bad_char.as_str()] {
        assert_error(
            exchange(
                &mut test_host,
                &[("code", &code), ("code_verifier", verifier)],
            ),
            "invalid_request",
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        );
    }
    let error = exchange(
        &mut test_host,
        &[
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("code_verifier", VERIFIER),
        ],
    )
    .unwrap_err();
    assert_eq!(error.error, "invalid_request");
    assert!(
        exchange(
            &mut test_host,
            &[("code", &code), ("code_verifier", VERIFIER)]
        )
        .is_ok()
    );
}

#[test]
fn a_verifier_for_a_code_without_a_challenge_is_a_downgrade() {
    let mut test_host = test_host(web_app());
    let code = authorize(&mut test_host, &[], "");
    assert_error(
        exchange(
            &mut test_host,
            &[("code", &code), ("code_verifier", VERIFIER)],
        ),
        "invalid_grant",
        "code_verifier sent, but the authorization request had no code_challenge",
    );
    assert!(test_host.issued_tokens().is_empty());
}

#[test]
fn a_public_client_never_redeems_a_code_without_pkce() {
    // The client was confidential at the authorization endpoint and is
    // public by the time it redeems the code.
    let mut test_host = test_host(Client::confidential("spa").with_scopes(&["read"]));
    let code = authorize(&mut test_host, &[], "");
    test_host.set_client(spa());
    assert_error(
        exchange(&mut test_host, &[("code", &code)]),
        "invalid_grant",
        "the authorization code was issued without PKCE, which a public client needs",
    );
}

#[test]
fn a_token_endpoint_scope_does_not_change_the_codes_scope() {
    let mut test_host = test_host(web_app());
    let code = authorize(&mut test_host, &[], "");
    let request = test_host.token_request(GRANT_TYPE, Some(&["read", "write"]), &[("code", &code)]);
    let response = test_host.exchange::<AuthorizationCode>(request).unwrap();
    assert_eq!(response.scope, Some(strings(&["read"])));
}

#[test]
fn host_failures_at_the_token_endpoint_become_oauth_errors() {
    let mut test_host = test_host(web_app());
    let code = authorize(&mut test_host, &[], "");
    test_host.set_failure(
        Capability::Codes,
        Some(HostError::Unavailable("db down".into())),
    );
    assert_error(
        exchange(&mut test_host, &[("code", &code)]),
        "temporarily_unavailable",
        "the server is temporarily unavailable",
    );
    test_host.set_failure(Capability::Codes, None);
    test_host.set_failure(
        Capability::Tokens,
        Some(HostError::Denied("no tokens".into())),
    );
    let error = exchange(&mut test_host, &[("code", &code)]).unwrap_err();
    assert_eq!(error.error, "server_error");
    assert!(!error.error_description.unwrap().contains("no tokens"));
}

// PKCE helpers

#[test]
fn s256_matches_rfc_7636_appendix_b() {
    assert_eq!(s256(VERIFIER), CHALLENGE);
}

#[test]
fn base64url_matches_rfc_4648_vectors() {
    // RFC 4648 §10, without padding, and the two URL-safe characters.
    let vectors: [(&[u8], &str); 8] = [
        (b"", ""),
        (b"f", "Zg"),
        (b"fo", "Zm8"),
        (b"foo", "Zm9v"),
        (b"foob", "Zm9vYg"),
        (b"fooba", "Zm9vYmE"),
        (b"foobar", "Zm9vYmFy"),
        (&[0xfb, 0xff, 0xbf], "-_-_"),
    ];
    for (bytes, encoded) in vectors {
        assert_eq!(base64url(bytes), encoded);
    }
}

#[test]
fn pkce_strings_are_43_to_128_unreserved_characters() {
    assert!(is_pkce_string(VERIFIER));
    assert!(is_pkce_string(PLAIN_VERIFIER));
    assert!(is_pkce_string(&"a".repeat(128)));
    assert!(!is_pkce_string(&"a".repeat(42)));
    assert!(!is_pkce_string(&"a".repeat(129)));
    assert!(!is_pkce_string(&format!("{}é", "a".repeat(42))));
    assert!(!is_pkce_string(&format!("{} ", "a".repeat(42))));
    assert!(!is_pkce_string(&format!("{}/", "a".repeat(42))));
}

#[test]
fn constant_time_eq_compares_whole_values() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abcd"));
    assert!(constant_time_eq(b"", b""));
}

// OpenID Connect

/// A confidential relying party registered for OpenID Connect.
fn relying_party() -> Client {
    Client::confidential("rp")
        .with_scopes(&["openid", "offline_access", "profile"])
        .with_grant_types(&[GRANT_TYPE, "refresh_token"])
}

/// Request, approval of `scope` by `alice`, and redemption of the code.
fn openid_flow(test_host: &mut TestHost, scope: &[&str], extra: &[(&str, &str)]) -> TokenResponse {
    let request = test_host.authorization_request(RESPONSE_TYPE, REDIRECT_URI, scope, extra);
    let data = test_host
        .authorize_request::<AuthorizationCode>(request)
        .unwrap();
    let approval = test_host.approval(RESPONSE_TYPE, REDIRECT_URI, "alice", scope, data);
    let response = test_host
        .authorize_response::<AuthorizationCode>(approval)
        .unwrap();
    let code = response[0].1.clone();
    exchange(
        test_host,
        &[("code", &code), ("redirect_uri", REDIRECT_URI)],
    )
    .unwrap()
}

fn openid_host() -> TestHost {
    TestHost::new()
        .client(relying_party())
        .grant_capabilities(&[
            Capability::Codes,
            Capability::Tokens,
            Capability::Config,
            Capability::Openid,
        ])
}

fn id_token_of(response: &TokenResponse) -> Option<String> {
    (response.extra.iter())
        .find(|(name, _)| name == "id_token")
        .map(|(_, value)| value.clone())
}

#[test]
fn an_openid_code_returns_an_id_token_with_the_nonce_and_at_hash() {
    let mut test_host = openid_host();
    let signed_in_at = test_host.now();
    let response = openid_flow(
        &mut test_host,
        &["openid", "profile"],
        &[("nonce", "n-0S6_WzA2Mj")],
    );
    let id_token = id_token_of(&response).expect("an id_token");
    assert_eq!(test_host.id_tokens(), std::slice::from_ref(&id_token));
    let claims = TestHost::jwt_claims(&id_token);
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], grantbox_sdk::serde_json::json!(["rp"]));
    assert_eq!(claims["auth_time"], signed_in_at);
    // OIDC Core §3.1.3.6, SHA-256 for the test host's ES256 key.
    let digest = <sha2::Sha256 as sha2::Digest>::digest(response.access_token.as_bytes());
    assert_eq!(claims["at_hash"], base64url(&digest[..16]));
    // Core §11: no refresh token without `offline_access`.
    assert_eq!(response.refresh_token, None);
}

#[test]
fn offline_access_brings_a_refresh_token_and_no_nonce_none_is_echoed() {
    let mut test_host = openid_host();
    let response = openid_flow(&mut test_host, &["openid", "offline_access"], &[]);
    assert!(response.refresh_token.is_some());
    let claims = TestHost::jwt_claims(&id_token_of(&response).unwrap());
    assert!(!claims.contains_key("nonce"), "{claims:?}");
}

#[test]
fn without_openid_there_is_no_id_token() {
    let mut test_host = openid_host();
    let response = openid_flow(&mut test_host, &["profile"], &[("nonce", "n-1")]);
    assert_eq!(id_token_of(&response), None);
    assert!(test_host.id_tokens().is_empty());
    // An OAuth client keeps its refresh token.
    assert!(response.refresh_token.is_some());
}

#[test]
fn a_nonce_is_bounded() {
    let mut test_host = openid_host();
    let long = "n".repeat(513);
    for nonce in [long.as_str(), "a\nb"] {
        let request = test_host.authorization_request(
            RESPONSE_TYPE,
            REDIRECT_URI,
            &["openid"],
            &[("nonce", nonce)],
        );
        let refused = test_host.authorize_request::<AuthorizationCode>(request);
        assert_error(
            refused,
            "invalid_request",
            "nonce must be 1 to 512 bytes without control characters",
        );
    }
    let request = test_host.authorization_request(
        RESPONSE_TYPE,
        REDIRECT_URI,
        &["openid"],
        &[("nonce", &"n".repeat(512))],
    );
    let data = test_host
        .authorize_request::<AuthorizationCode>(request)
        .unwrap();
    assert_eq!(data, params(&[("nonce", &"n".repeat(512))]));
}

#[test]
fn a_host_refusal_of_the_id_token_is_not_a_token_response() {
    let mut test_host = openid_host().fail(
        Capability::Openid,
        HostError::InvalidArgument("the grant has no sign-in record".into()),
    );
    let request = test_host.authorization_request(RESPONSE_TYPE, REDIRECT_URI, &["openid"], &[]);
    let data = test_host
        .authorize_request::<AuthorizationCode>(request)
        .unwrap();
    let approval = test_host.approval(RESPONSE_TYPE, REDIRECT_URI, "alice", &["openid"], data);
    let code = test_host
        .authorize_response::<AuthorizationCode>(approval)
        .unwrap()[0]
        .1
        .clone();
    let refused = exchange(
        &mut test_host,
        &[("code", &code), ("redirect_uri", REDIRECT_URI)],
    );
    assert_error(
        refused,
        "server_error",
        "the grant plugin made an invalid host call",
    );
}
