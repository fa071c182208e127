//! RFC 9700 (OAuth 2.0 Security Best Current Practice), the authorization
//! server's side, one test per requirement; the section is in each test's name
//! and doc. Some requirements are covered in depth elsewhere; those tests say where.

use crate::harness::{
    Browser, Server, allow, grantbox, http, redirect_params, server_with_alice, service_client,
    token_request, visit_as_alice,
};

const CALLBACK: &str = "https://app.example/cb";
const PASSWORD: &str = "correct horse battery staple";

fn server_with_client() -> Server {
    let server = server_with_alice();
    server.client_add(&[
        "web",
        "--redirect-uri",
        CALLBACK,
        "--redirect-uri",
        "http://127.0.0.1:8000/cb",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "implicit",
    ]);
    server
}

fn authorize(server: &Server, redirect_uri: &str) -> crate::harness::Page {
    let encoded: String = url::form_urlencoded::byte_serialize(redirect_uri.as_bytes()).collect();
    Browser::new().get(&server.url(&format!(
        "/authorize?response_type=code&client_id=web&state=s&redirect_uri={encoded}"
    )))
}

/// §4.1.3, §2.1: redirect URIs are compared by exact string; only a loopback port may vary.
#[test]
fn s4_1_3_exact_redirect_uri_matching() {
    let server = server_with_client();
    for (case, uri) in [
        ("trailing slash", "https://app.example/cb/"),
        ("extra query", "https://app.example/cb?next=x"),
        ("case", "https://APP.example/cb"),
        ("path case", "https://app.example/CB"),
        ("fragment", "https://app.example/cb#x"),
        ("userinfo", "https://x@app.example/cb"),
        ("loopback userinfo", "http://x@127.0.0.1:8000/cb"),
        ("other port, not loopback", "https://app.example:8443/cb"),
        ("other scheme", "http://app.example/cb"),
        ("suffix domain", "https://app.example.evil.example/cb"),
    ] {
        let page = authorize(&server, uri);
        assert_eq!(page.status, 400, "{case}: {uri}");
        assert!(page.headers.get("location").is_none(), "{case} redirected");
    }
    assert_eq!(authorize(&server, CALLBACK).status, 302);
    assert_eq!(
        authorize(&server, "http://127.0.0.1:43210/cb").status,
        302,
        "RFC 8252 §7.3 loopback port"
    );
}

/// §4.1: an invalid client or redirect URI is never redirected to.
#[test]
fn s4_1_no_redirect_for_an_invalid_client_or_redirect_uri() {
    let server = server_with_client();
    let browser = Browser::new();
    for url in [
        format!("/authorize?response_type=code&client_id=ghost&redirect_uri={CALLBACK}"),
        "/authorize?response_type=code&client_id=web&redirect_uri=https://evil.example/cb"
            .to_owned(),
    ] {
        let page = browser.get(&server.url(&url));
        assert_eq!(page.status, 400, "{url}");
        assert!(page.headers.get("location").is_none(), "{url}");
    }
}

/// §4.11: no endpoint is an open redirector; the login form only ever returns to a transaction.
#[test]
fn s4_11_no_open_redirect_on_any_endpoint() {
    let server = server_with_client();
    let browser = Browser::new();
    let login = browser
        .get(&server.url("/login?return_to=https://evil.example/&next=https://evil.example/"));
    assert_eq!(login.status, 200);
    let csrf = login.input("csrf_token");
    let signed_in = browser.post(
        &server.url("/login?return_to=https://evil.example/"),
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", csrf.as_str()),
            ("return_to", "https://evil.example/"),
            ("transaction_id", "https://evil.example/"),
        ],
    );
    assert_eq!(signed_in.status, 303);
    assert_eq!(
        signed_in.location(),
        "/login",
        "never to a URL the request names"
    );
    let resume = browser.get(
        &server
            .url("/authorize/continue?transaction_id=unknown&redirect_uri=https://evil.example/"),
    );
    assert!(resume.headers.get("location").is_none());
}

/// §4.12: no 307 redirects; form POSTs are answered with 303.
#[test]
fn s4_12_no_307_redirects() {
    let server = server_with_client();
    let browser = Browser::new();
    let first = browser.get(&server.url(&format!(
        "/authorize?response_type=code&client_id=web&redirect_uri={CALLBACK}&state=s"
    )));
    assert_eq!(first.status, 302);
    let after_login = browser.sign_in(&server, &first.location(), "alice", PASSWORD);
    assert_eq!(after_login.status, 303);
    let consent = browser.get(&server.url(&after_login.location()));
    let done = allow(&browser, &server, &consent);
    assert_eq!(done.status, 303);
}

/// §2.1: http redirect URIs are refused at registration except for loopback.
#[test]
fn s2_1_plain_http_redirect_uris_are_refused_except_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("g.db").display());
    let add = |id: &str, uri: &str| {
        grantbox(
            &db,
            &[
                "client",
                "add",
                id,
                "--grant-type",
                "authorization_code",
                "--redirect-uri",
                uri,
            ],
            None,
        )
    };
    assert!(!add("a", "http://app.example/cb").status.success());
    assert!(add("b", "http://127.0.0.1/cb").status.success());
    assert!(add("c", "http://[::1]:8080/cb").status.success());
    assert!(add("d", "https://app.example/cb").status.success());
}

/// §4.16 (CORS is not for the authorization endpoint): no Access-Control headers.
#[test]
fn no_cors_on_the_authorization_endpoint() {
    let server = server_with_client();
    let response = http()
        .get(server.url(&format!(
            "/authorize?response_type=code&client_id=web&redirect_uri={CALLBACK}"
        )))
        .header("origin", "https://evil.example")
        .send()
        .unwrap();
    assert!(
        response
            .headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-"))
    );
    let preflight = http()
        .request(reqwest::Method::OPTIONS, server.url("/authorize"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .unwrap();
    assert!(
        preflight
            .headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-"))
    );
}

/// §4.16: every HTML page forbids framing and referrers.
#[test]
fn s4_16_anti_framing_and_referrer_policy_on_every_html_page() {
    let server = server_with_client();
    let browser = Browser::new();
    let mut pages = vec![
        ("login", browser.get(&server.url("/login"))),
        (
            "error",
            browser.get(&server.url("/authorize?client_id=ghost")),
        ),
    ];
    let consent = visit_as_alice(&browser, &server, &server.url(&format!("/authorize?response_type=code&client_id=web&redirect_uri={CALLBACK}&state=s&response_mode=form_post")));
    let form_post = allow(&browser, &server, &consent);
    pages.push(("consent", consent));
    pages.push(("form_post", form_post));
    pages.push(("signed in", browser.get(&server.url("/login"))));
    for (name, page) in pages {
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{name}"
        );
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
            "{name}: {csp}"
        );
        assert_eq!(page.headers["x-frame-options"], "DENY", "{name}");
        assert_eq!(page.headers["referrer-policy"], "no-referrer", "{name}");
        assert!(
            !page.body.contains("https://") || name == "form_post",
            "{name}: no third-party resources"
        );
    }
}

/// §4.4 and RFC 9207: `iss` in every authorization response, success and error.
#[test]
fn s4_4_iss_in_authorization_responses() {
    let server = server_with_client();
    let error = Browser::new().get(&server.url(&format!(
        "/authorize?response_type=bogus&client_id=web&redirect_uri={CALLBACK}&state=s"
    )));
    assert_eq!(
        redirect_params(&error.location(), false)["iss"],
        server.base
    );
    // Success responses: see authorize::public_client_code_flow_with_pkce_s256_through_the_oauth2_crate.
}

/// §2.1.1, §4.8: PKCE is required for public clients and a downgrade is refused.
/// In depth: authorize::pkce_is_enforced_and_downgrade_rejected.
#[test]
fn s2_1_1_pkce_required_for_public_clients() {
    let server = Server::start();
    server.client_add(&[
        "native",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/cb",
    ]);
    let page = Browser::new().get(&server.url(
        "/authorize?response_type=code&client_id=native&redirect_uri=http://127.0.0.1/cb&state=s",
    ));
    assert_eq!(
        redirect_params(&page.location(), false)["error"],
        "invalid_request"
    );
    let plain = Browser::new().get(&server.url(&format!(
        "/authorize?response_type=code&client_id=native&redirect_uri=http://127.0.0.1/cb&state=s&code_challenge={}&code_challenge_method=S257",
        "a".repeat(43)
    )));
    assert_eq!(
        redirect_params(&plain.location(), false)["error"],
        "invalid_request",
        "unknown method"
    );
}

/// §4.3, §2.2: no tokens or credentials in URLs; only the implicit grant's fragment carries a token.
#[test]
fn s4_3_no_tokens_in_urls() {
    let server = server_with_client();
    let query_token = Browser::new().get(&server.url(&format!("/authorize?response_type=token&client_id=web&redirect_uri={CALLBACK}&state=s&response_mode=query")));
    let location = query_token.location();
    assert!(
        location.contains("error=invalid_request") && !location.contains("access_token"),
        "{location}"
    );
    let secret = service_client(&server, &[]);
    let response = http()
        .post(server.url(&format!("/token?client_id=svc&client_secret={secret}")))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(response.status(), 400, "credentials in the URL are refused");
    for endpoint in ["/introspect?token=x", "/revoke?token=x"] {
        let response = http()
            .post(server.url(endpoint))
            .basic_auth("svc", Some(&secret))
            .form(&[("token", "x")])
            .send()
            .unwrap();
        assert_eq!(response.status(), 400, "{endpoint}");
    }
}

/// §4.5, §4.14: single-use codes with revocation on replay, refresh rotation with family
/// revocation. In depth: authorize::a_replayed_code_is_refused_and_revokes_what_it_issued and
/// authorize::confidential_client_code_flow_with_its_secret_and_refresh_rotation. Here: the
/// metadata advertises what is enforced.
#[test]
fn s4_5_and_s4_14_metadata_advertises_pkce_and_iss() {
    let server = Server::start();
    let metadata: serde_json::Value = server.metadata();
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    assert!(
        metadata["code_challenge_methods_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "S256")
    );
}

/// §4.7 (CSRF): login and consent forms carry CSRF tokens. In depth:
/// authorize::decision_needs_the_right_transaction_and_csrf_token.
#[test]
fn s4_7_login_needs_its_csrf_token() {
    let server = server_with_client();
    let forged = Browser::new().post(
        &server.url("/login"),
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", "guess"),
        ],
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    // The same login with the token its form carries signs in: the 403 above
    // is the token's doing, not the credentials'.
    let browser = Browser::new();
    let form = browser.get(&server.url("/login"));
    let csrf = form.input("csrf_token");
    let without = browser.post(
        &server.url("/login"),
        &[("username", "alice"), ("password", PASSWORD)],
    );
    assert_eq!(without.status, 403, "no token: {}", without.body);
    let signed_in = browser.post(
        &server.url("/login"),
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", csrf.as_str()),
        ],
    );
    assert_eq!(signed_in.status, 303, "with its token: {}", signed_in.body);
    let (status, _, _) =
        token_request(&server, "web", "x", &[("grant_type", "client_credentials")]);
    assert_eq!(status, 401);
}

/// Login abuse (issue 7 item 6): throttling answers 429 with `Retry-After`;
/// an unknown user and a wrong password look the same; the session cookie is
/// HttpOnly and SameSite=Lax, and Secure behind an https issuer.
#[test]
fn login_abuse_defences() {
    let server = server_with_client();
    let browser = Browser::new();
    let unknown = browser.sign_in(&server, "/login", "mallory", "whatever password");
    let wrong = browser.sign_in(&server, "/login", "alice", "whatever password");
    assert_eq!((unknown.status, wrong.status), (401, 401));
    let message = |body: &str| {
        body.lines()
            .find(|l| l.contains("class=\"error\""))
            .map(str::to_owned)
    };
    assert_eq!(
        message(&unknown.body),
        message(&wrong.body),
        "no user enumeration by message"
    );
    for _ in 0..4 {
        browser.sign_in(&server, "/login", "alice", "whatever password");
    }
    let throttled = browser.sign_in(&server, "/login", "alice", PASSWORD);
    assert_eq!(throttled.status, 429);
    let retry_after: u64 = throttled.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");

    let cookie = |server: &Server| {
        let response = http().get(server.url("/login")).send().unwrap();
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let plain = cookie(&server);
    assert!(
        plain.contains("HttpOnly") && plain.contains("SameSite=Lax") && !plain.contains("Secure"),
        "{plain}"
    );
    let https = Server::start_with(crate::harness::Options {
        extra_args: vec!["--issuer".into(), "https://auth.example".into()],
        ..Default::default()
    });
    let secure = cookie(&https);
    assert!(
        secure.contains("Secure") && secure.contains("HttpOnly") && secure.contains("SameSite=Lax"),
        "{secure}"
    );
}
