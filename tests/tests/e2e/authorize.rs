//! The authorization flow end to end, as a browser walks it: authorization
//! request, login, consent, decision, redirect, and the code redeemed with a
//! real OAuth client library (the `oauth2` crate).

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    Scope, TokenResponse as _, TokenUrl,
};

use crate::harness::{
    Browser, Call, InProcess, Options, Server, alice_password_request, allow, approve,
    assert_oauth_error, confidential_client, example_app, http, introspect_token, redirect_params,
    server_with_alice, service_client, token_request, user_add, web_client,
};

const CALLBACK: &str = "http://127.0.0.1:9999/cb";
const PASSWORD: &str = "correct horse battery staple";

fn authorize_url(server: &Server, client_id: &str, extra: &str) -> String {
    let state = if extra.contains("&state=") {
        ""
    } else {
        "&state=st4te"
    };
    server.url(&format!(
        "/authorize?response_type=code&client_id={client_id}&redirect_uri={CALLBACK}{state}{extra}"
    ))
}

fn oauth2_client(
    server: &Server,
    id: &str,
    secret: Option<String>,
) -> oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
> {
    let mut client = BasicClient::new(ClientId::new(id.to_owned()))
        .set_auth_uri(AuthUrl::new(server.url("/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(server.url("/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(CALLBACK.to_owned()).unwrap());
    if let Some(secret) = secret {
        client = client.set_client_secret(ClientSecret::new(secret));
    }
    client
}

#[test]
fn public_client_code_flow_with_pkce_s256_through_the_oauth2_crate() {
    let server = server_with_alice();
    example_app(&server, CALLBACK, &["--public", "--name", "Example App"]);
    let client = oauth2_client(&server, "app", None);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = Browser::new();
    let first = browser.get(url.as_str());
    assert_eq!(first.status, 302);
    assert!(
        first.location().starts_with("/login?transaction_id="),
        "{}",
        first.location()
    );
    let login = browser.get(&server.url(&first.location()));
    assert!(
        login.body.contains("Example App"),
        "the login page names the client"
    );
    let after_login = browser.sign_in(&server, &first.location(), "alice", PASSWORD);
    let consent = browser.get(&server.url(&after_login.location()));
    assert!(
        consent.body.contains("Example App")
            && consent.body.contains("read")
            && consent.body.contains("127.0.0.1"),
        "{}",
        consent.body
    );
    let done = allow(&browser, &server, &consent);
    assert_eq!(done.status, 303, "303 after the form POST");
    let params = redirect_params(&done.location(), false);
    assert!(done.location().starts_with(CALLBACK));
    assert_eq!(params["state"], *csrf.secret());
    assert_eq!(params["iss"], server.base, "RFC 9207 iss");

    let token = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .set_pkce_verifier(verifier)
        .request(&http())
        .expect("the oauth2 crate redeems the code");
    assert_eq!(
        token.scopes().map(|s| s[0].as_str().to_owned()),
        Some("read".into())
    );
    assert!(
        token.refresh_token().is_none(),
        "the client did not register refresh_token"
    );
}

#[test]
fn confidential_client_code_flow_with_its_secret_and_refresh_rotation() {
    let server = server_with_alice();
    let secret = web_client(
        &server,
        CALLBACK,
        &[
            "--grant-type",
            "refresh_token",
            "--scope",
            "read",
            "--scope",
            "write",
        ],
    );
    let browser = Browser::new();
    let done = approve(
        &browser,
        &server,
        &authorize_url(&server, "web", "&scope=read%20write"),
    );
    let code = redirect_params(&done.location(), false)["code"].clone();
    let client = oauth2_client(&server, "web", Some(secret.clone()));
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .request(&http())
        .expect("code redeemed with client_secret_basic");
    let first_refresh = token
        .refresh_token()
        .expect("a refresh token")
        .secret()
        .clone();

    let (status, body, _) = token_request(
        &server,
        "web",
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first_refresh),
            ("scope", "read"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read", "a narrower scope is allowed");
    let second_refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh, "rotated");
    let (status, body, _) = token_request(
        &server,
        "web",
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &second_refresh),
            ("scope", "read write admin"),
        ],
    );
    assert_oauth_error((status, &body), 400, "invalid_scope");

    // Reusing the rotated token revokes the whole family, the newest token too.
    let (status, body, _) = token_request(
        &server,
        "web",
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first_refresh),
        ],
    );
    assert_oauth_error((status, &body), 400, "invalid_grant");
    let (status, body, _) = token_request(
        &server,
        "web",
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &second_refresh),
        ],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "family revoked: {body}"
    );
}

#[test]
fn pkce_is_enforced_and_downgrade_rejected() {
    let server = server_with_alice();
    server.client_add(&["app", "--public", "--redirect-uri", CALLBACK]);
    let secret = web_client(&server, CALLBACK, &[]);

    let browser = Browser::new();
    let missing = browser.get(&authorize_url(&server, "app", ""));
    let params = redirect_params(&missing.location(), false);
    assert_eq!(
        params["error"], "invalid_request",
        "a public client must send a code_challenge"
    );
    assert_eq!(params["state"], "st4te");

    // A confidential client without PKCE gets a code; sending a verifier anyway is a downgrade.
    let done = approve(&browser, &server, &authorize_url(&server, "web", ""));
    let code = redirect_params(&done.location(), false)["code"].clone();
    let (status, body, _) = token_request(
        &server,
        "web",
        &secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &"a".repeat(43)),
        ],
    );
    assert_oauth_error((status, &body), 400, "invalid_grant");

    // A wrong verifier fails.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let done = approve(
        &browser,
        &server,
        &authorize_url(
            &server,
            "app",
            &format!(
                "&code_challenge={}&code_challenge_method=S256",
                challenge.as_str()
            ),
        ),
    );
    let code = redirect_params(&done.location(), false)["code"].clone();
    let response = http()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "app"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &"b".repeat(43)),
        ])
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<serde_json::Value>().unwrap()["error"],
        "invalid_grant"
    );
}

#[test]
fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let server = server_with_alice();
    let secret = web_client(&server, CALLBACK, &[]);
    let browser = Browser::new();
    let done = approve(&browser, &server, &authorize_url(&server, "web", ""));
    let code = redirect_params(&done.location(), false)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
    ];
    let (status, body, _) = token_request(&server, "web", &secret, &form);
    assert_eq!(status, 200, "{body}");
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    let (status, body, _) = token_request(&server, "web", &secret, &form);
    assert_oauth_error((status, &body), 400, "invalid_grant");
    let introspection = introspect_token(&server, "web", &secret, &access_token);
    assert_eq!(
        introspection["active"], false,
        "RFC 6749 §4.1.2: tokens of a replayed code are revoked"
    );
}

#[test]
fn deny_redirects_access_denied_with_state_and_iss() {
    let server = server_with_alice();
    web_client(&server, CALLBACK, &[]);
    let browser = Browser::new();
    let first = browser.get(&authorize_url(&server, "web", ""));
    let after_login = browser.sign_in(&server, &first.location(), "alice", PASSWORD);
    let consent = browser.get(&server.url(&after_login.location()));
    let denied = browser.post(
        &server.url("/authorize/decision"),
        &[
            ("transaction_id", &consent.input("transaction_id")),
            ("csrf_token", &consent.input("csrf_token")),
            ("cancel", "Deny"),
        ],
    );
    assert_eq!(denied.status, 303);
    let params = redirect_params(&denied.location(), false);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "st4te");
    assert_eq!(params["iss"], server.base);
    assert!(!params.contains_key("code"));
}

#[test]
fn untrusted_client_or_redirect_gets_a_page_never_a_redirect() {
    let app = InProcess::start();
    app.client_add(&[
        "web",
        "--redirect-uri",
        CALLBACK,
        "--redirect-uri",
        "https://app.example/cb",
        "--grant-type",
        "authorization_code",
    ]);
    let cases = [
        (
            "unknown client",
            String::from(&format!(
                "/authorize?response_type=code&client_id=nobody&redirect_uri={CALLBACK}"
            )),
        ),
        (
            "missing client",
            String::from(&format!(
                "/authorize?response_type=code&redirect_uri={CALLBACK}"
            )),
        ),
        (
            "repeated client_id",
            String::from(&format!(
                "/authorize?response_type=code&client_id=web&client_id=web&redirect_uri={CALLBACK}"
            )),
        ),
        (
            "unregistered redirect",
            String::from(
                "/authorize?response_type=code&client_id=web&redirect_uri=https://evil.example/cb",
            ),
        ),
        (
            "trailing slash",
            String::from(
                "/authorize?response_type=code&client_id=web&redirect_uri=https://app.example/cb/",
            ),
        ),
        (
            "ambiguous missing redirect",
            String::from("/authorize?response_type=code&client_id=web"),
        ),
    ];
    for (name, url) in cases {
        let page = app.send(Call::get(&url));
        assert_eq!(page.status, 400, "{name}: {}", page.body);
        assert!(page.headers.get("location").is_none(), "{name} redirected");
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{name}"
        );
        assert_eq!(page.headers["x-frame-options"], "DENY", "{name}");
        assert!(
            page.headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{name}"
        );
        assert_eq!(page.headers["referrer-policy"], "no-referrer", "{name}");
    }
    // A loopback redirect URI may use another port (RFC 8252 §7.3).
    let page = app.send(Call::get("/authorize?response_type=code&client_id=web&redirect_uri=http://127.0.0.1:41234/cb&state=s"));
    assert_eq!(page.status, 302, "{}", page.body);
}

#[test]
fn other_errors_redirect_with_state_and_iss() {
    let app = InProcess::start();
    web_client(&app, CALLBACK, &["--scope", "read"]);
    let check = |query: &str, error: &str| {
        let page = app.send(Call::get(&format!(
            "/authorize?client_id=web&redirect_uri={CALLBACK}&state=abc{query}"
        )));
        assert_eq!(page.status, 302, "{query}: {}", page.body);
        let fragment = page.location().contains('#');
        let params = redirect_params(&page.location(), fragment);
        assert_eq!(
            params.get("error").map(String::as_str),
            Some(error),
            "{query}: {}",
            page.location()
        );
        assert_eq!(params["state"], "abc");
        assert_eq!(params["iss"], app.issuer);
    };
    check("", "invalid_request");
    check("&response_type=bogus", "unsupported_response_type");
    check("&response_type=code&scope=admin", "invalid_scope");
    check(
        "&response_type=code&response_mode=sideways",
        "invalid_request",
    );
    check(
        "&response_type=code&scope=read&scope=read",
        "invalid_request",
    );
    check("&response_type=token", "unauthorized_client");
}

#[test]
fn implicit_returns_the_token_in_the_fragment_for_registered_clients_only() {
    let server = server_with_alice();
    server.client_add(&[
        "spa",
        "--public",
        "--redirect-uri",
        CALLBACK,
        "--grant-type",
        "implicit",
        "--scope",
        "read",
    ]);
    let browser = Browser::new();
    let url = server.url(&format!(
        "/authorize?response_type=token&client_id=spa&redirect_uri={CALLBACK}&state=s1"
    ));
    let done = approve(&browser, &server, &url);
    assert!(
        !done.location().contains('?'),
        "no token in a query: {}",
        done.location()
    );
    let params = redirect_params(&done.location(), true);
    assert_eq!(params["token_type"], "Bearer");
    assert_eq!(params["expires_in"], "3600");
    assert_eq!(params["scope"], "read");
    assert_eq!(params["state"], "s1");
    assert_eq!(params["iss"], server.base);
    assert_eq!(params["access_token"].len(), 43);
    assert!(!params.contains_key("refresh_token"));
}

#[test]
fn form_post_mode_renders_an_auto_submitting_form() {
    let server = server_with_alice();
    web_client(&server, CALLBACK, &[]);
    let browser = Browser::new();
    let done = approve(
        &browser,
        &server,
        &authorize_url(&server, "web", "&response_mode=form_post"),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    // minijinja escapes `/` in attributes; the browser decodes it.
    assert!(
        done.body
            .contains("method=\"post\" action=\"http:&#x2f;&#x2f;127.0.0.1:9999&#x2f;cb\""),
        "{}",
        done.body
    );
    assert_eq!(done.input("state"), "st4te");
    assert_eq!(done.input("code").len(), 43);
    let csp = done.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action http://127.0.0.1:9999") && csp.contains("script-src 'sha256-"),
        "{csp}"
    );
}

#[test]
fn remembered_consent_and_trusted_clients_skip_the_consent_page() {
    let server = server_with_alice();
    web_client(&server, CALLBACK, &["--scope", "read", "--scope", "write"]);
    server.client_add(&[
        "first-party",
        "--trusted",
        "--redirect-uri",
        CALLBACK,
        "--grant-type",
        "authorization_code",
    ]);
    let browser = Browser::new();
    approve(
        &browser,
        &server,
        &authorize_url(&server, "web", "&scope=read"),
    );
    let again = browser.get(&authorize_url(&server, "web", "&scope=read"));
    assert_eq!(again.status, 302);
    assert!(
        redirect_params(&again.location(), false).contains_key("code"),
        "remembered: {}",
        again.location()
    );
    let wider = browser.get(&authorize_url(&server, "web", "&scope=read%20write"));
    assert_eq!(wider.status, 200, "a wider scope asks again");
    let trusted = browser.get(&authorize_url(&server, "first-party", ""));
    assert!(
        redirect_params(&trusted.location(), false).contains_key("code"),
        "trusted: {}",
        trusted.location()
    );
}

#[test]
fn decision_needs_the_right_transaction_and_csrf_token() {
    let server = server_with_alice();
    web_client(&server, CALLBACK, &[]);
    let browser = Browser::new();
    let first = browser.get(&authorize_url(&server, "web", "&state=one"));
    let after_login = browser.sign_in(&server, &first.location(), "alice", PASSWORD);
    let consent_one = browser.get(&server.url(&after_login.location()));
    // A second transaction in the same session, interleaved with the first.
    let consent_two = browser.get(&authorize_url(&server, "web", "&state=two"));
    assert_eq!(consent_two.status, 200);
    let (one, two) = (
        consent_one.input("transaction_id"),
        consent_two.input("transaction_id"),
    );
    assert_ne!(one, two);

    let tampered = browser.post(
        &server.url("/authorize/decision"),
        &[
            ("transaction_id", "forged"),
            ("csrf_token", &consent_one.input("csrf_token")),
            ("allow", "1"),
        ],
    );
    assert_eq!(tampered.status, 403);
    let no_csrf = browser.post(
        &server.url("/authorize/decision"),
        &[("transaction_id", &one), ("allow", "1")],
    );
    assert_eq!(no_csrf.status, 403);
    let crossed = browser.post(
        &server.url("/authorize/decision"),
        &[
            ("transaction_id", &one),
            ("csrf_token", &consent_two.input("csrf_token")),
            ("allow", "1"),
        ],
    );
    assert_eq!(
        crossed.status, 403,
        "a CSRF token is bound to its transaction"
    );

    let second = browser.post(
        &server.url("/authorize/decision"),
        &[
            ("transaction_id", &two),
            ("csrf_token", &consent_two.input("csrf_token")),
            ("allow", "1"),
        ],
    );
    assert_eq!(redirect_params(&second.location(), false)["state"], "two");
    let first_done = browser.post(
        &server.url("/authorize/decision"),
        &[
            ("transaction_id", &one),
            ("csrf_token", &consent_one.input("csrf_token")),
            ("allow", "1"),
        ],
    );
    assert_eq!(
        redirect_params(&first_done.location(), false)["state"],
        "one"
    );
    let again = browser.post(
        &server.url("/authorize/decision"),
        &[
            ("transaction_id", &one),
            ("csrf_token", &consent_one.input("csrf_token")),
            ("allow", "1"),
        ],
    );
    assert_eq!(again.status, 403, "a decided transaction is gone");

    // Another browser (another session) cannot use the transaction.
    let other = Browser::new();
    let stolen = other.post(
        &server.url("/authorize/decision"),
        &[
            ("transaction_id", &two),
            ("csrf_token", &consent_two.input("csrf_token")),
            ("allow", "1"),
        ],
    );
    assert_eq!(stolen.status, 403);
}

#[test]
fn an_expired_transaction_cannot_be_decided() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("grantbox.toml");
    std::fs::write(&config, "transaction_lifetime_seconds = 5\n").unwrap();
    let server = Server::start_with(Options {
        extra_args: vec![],
        env: vec![("GRANTBOX_CONFIG".into(), config.display().to_string())],
        ..Default::default()
    });
    user_add(&server, "alice", PASSWORD);
    web_client(&server, CALLBACK, &[]);
    let browser = Browser::new();
    let first = browser.get(&authorize_url(&server, "web", ""));
    let after_login = browser.sign_in(&server, &first.location(), "alice", PASSWORD);
    let consent = browser.get(&server.url(&after_login.location()));
    std::thread::sleep(std::time::Duration::from_millis(5500));
    let late = allow(&browser, &server, &consent);
    assert_eq!(late.status, 403, "{}", late.body);
    assert!(late.body.contains("expired"));
}

#[test]
fn login_checks_passwords_throttles_and_renews_the_session() {
    let server = server_with_alice();
    let browser = Browser::new();
    let wrong = browser.sign_in(&server, "/login", "alice", "wrong password");
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("wrong"), "{}", wrong.body);
    let right = browser.sign_in(&server, "/login", "alice", PASSWORD);
    assert_eq!(right.status, 303);
    assert!(
        right.headers.get("set-cookie").is_some(),
        "a new session id on login"
    );
    let signed_in = browser.get(&server.url("/login"));
    assert!(
        signed_in.body.contains("signed in as <strong>alice"),
        "{}",
        signed_in.body
    );

    let attacker = Browser::new();
    for _ in 0..5 {
        assert_eq!(
            attacker.sign_in(&server, "/login", "alice", "guess").status,
            401
        );
    }
    let throttled = attacker.sign_in(&server, "/login", "alice", PASSWORD);
    assert_eq!(
        throttled.status, 429,
        "throttled even with the right password"
    );

    let forged = Browser::new().post(
        &server.url("/login"),
        &[("username", "alice"), ("password", PASSWORD)],
    );
    assert_eq!(forged.status, 403, "a login without the form's CSRF token");
}

#[test]
fn password_grant_only_for_registered_clients() {
    let server = server_with_alice();
    let secret = confidential_client(&server, "legacy", &["password", "refresh_token"], &["read"]);
    let (status, body, _) = alice_password_request(&server, "legacy", &secret, None);
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string());
    let (status, body, _) = token_request(
        &server,
        "legacy",
        &secret,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "nope"),
        ],
    );
    assert_oauth_error((status, &body), 400, "invalid_grant");
    let other = service_client(&server, &[]);
    let (status, body, _) = alice_password_request(&server, "svc", &other, None);
    assert_oauth_error((status, &body), 400, "unauthorized_client");
}

/// RFC 6749 §3.1: the authorization endpoint takes POST as well as GET. A
/// valid request sent as a form goes all the way to a code and a token, and
/// what the body asked for (scope, state, PKCE) is what is granted.
#[test]
fn a_valid_post_authorization_request_ends_in_a_code_and_a_token() {
    let server = server_with_alice();
    let secret = web_client(&server, CALLBACK, &["--scope", "read", "--scope", "write"]);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let browser = Browser::new();
    let first = browser.post(
        &server.url("/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", CALLBACK),
            ("scope", "read"),
            ("state", "posted-state"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    );
    assert!(
        matches!(first.status, 302 | 303) && first.location().starts_with("/login"),
        "{} {}: {}",
        first.status,
        first.location(),
        first.body
    );
    let after_login = browser.sign_in(&server, &first.location(), "alice", PASSWORD);
    assert_eq!(after_login.status, 303, "{}", after_login.body);
    let consent = browser.get(&server.url(&after_login.location()));
    assert_eq!(consent.status, 200, "{}", consent.body);
    let done = browser.post(
        &server.url("/authorize/decision"),
        &[
            ("transaction_id", &consent.input("transaction_id")),
            ("csrf_token", &consent.input("csrf_token")),
            ("allow", "1"),
        ],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location().starts_with(CALLBACK), "{}", done.location());
    let params = redirect_params(&done.location(), false);
    assert_eq!(params["state"], "posted-state");
    assert_eq!(params["iss"], server.base);
    let code = params["code"].clone();

    // Redeemed with the verifier of the posted challenge (a verifier for a
    // code without one is refused as a downgrade), for the posted scope.
    let (status, body, _) = token_request(
        &server,
        "web",
        &secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier.secret()),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read", "{body}");
    assert!(body["access_token"].is_string(), "{body}");
}
