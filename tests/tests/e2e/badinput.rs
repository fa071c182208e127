//! Bad input: oversized, malformed, repeated, misplaced and empty parameters
//! get the RFC error (400 JSON at the token endpoint, an error page or a
//! redirect at /authorize) — never a 500, a panic, a hang or a leak of internals.

use crate::harness::{Browser, Server, http, redirect_params, user_add};

fn assert_no_internals(body: &str) {
    for leak in [
        "panicked",
        ".rs:",
        "src/",
        "sqlx",
        "wasmtime",
        "tokio",
        "stack backtrace",
        "RUST_BACKTRACE",
    ] {
        assert!(!body.contains(leak), "response leaks {leak:?}: {body}");
    }
}

fn raw_token_request(server: &Server, secret: &str, body: Vec<u8>) -> (u16, String) {
    let response = http()
        .post(server.url("/token"))
        .basic_auth("svc", Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

#[test]
fn malformed_token_requests_get_400_json() {
    let server = Server::start();
    let secret = server
        .client_add(&[
            "svc",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
        ])
        .unwrap();
    for (case, body) in [
        (
            "non-UTF-8",
            b"grant_type=client_credentials&scope=%FF%FE".to_vec(),
        ),
        (
            "raw non-UTF-8",
            b"grant_type=client_credentials&scope=\xff".to_vec(),
        ),
        (
            "truncated escape",
            b"grant_type=client_credentials&scope=%4".to_vec(),
        ),
        ("bad escape", b"grant_type=client%ZZcredentials".to_vec()),
        (
            "duplicate grant_type",
            b"grant_type=client_credentials&grant_type=client_credentials".to_vec(),
        ),
        ("empty grant_type", b"grant_type=".to_vec()),
        ("absent grant_type", b"scope=read".to_vec()),
        ("empty body", Vec::new()),
        ("only separators", b"&&&=&=".to_vec()),
    ] {
        let (status, body) = raw_token_request(&server, &secret, body);
        assert_eq!(status, 400, "{case}: {body}");
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{case}: not JSON: {body}"));
        assert_eq!(json["error"], "invalid_request", "{case}");
        assert_no_internals(&body);
    }
    let (status, _) =
        raw_token_request(&server, &secret, b"grant_type=client_credentials".to_vec());
    assert_eq!(status, 200, "still serving");
}

#[test]
fn oversized_requests_get_413_or_431_everywhere() {
    let server = Server::start();
    let big = vec![b'a'; 70 * 1024];
    for path in [
        "/token",
        "/introspect",
        "/revoke",
        "/authorize",
        "/authorize/decision",
        "/login",
    ] {
        let mut body = b"x=".to_vec();
        body.extend_from_slice(&big);
        let response = http()
            .post(server.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(response.status(), 413, "{path}");
    }
    let huge_header = "h".repeat(128 * 1024);
    let response = http()
        .get(server.url("/healthz"))
        .header("x-huge", huge_header)
        .send();
    match response {
        Ok(response) => assert!(
            matches!(response.status().as_u16(), 431 | 400),
            "{}",
            response.status()
        ),
        Err(error) => assert!(
            error.is_request() || error.is_connect() || error.is_body(),
            "{error}"
        ),
    }
    assert_eq!(
        http().get(server.url("/healthz")).send().unwrap().status(),
        200,
        "still serving"
    );
}

#[test]
fn malformed_authorization_requests_get_a_page_or_a_redirect() {
    let server = Server::start();
    user_add(&server, "alice", "correct horse battery staple");
    server.client_add(&[
        "web",
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        "https://app.example/cb",
    ]);
    let browser = Browser::new();
    for (case, query) in [
        ("non-UTF-8", "client_id=%FF"),
        ("truncated escape", "client_id=web%"),
        ("empty client_id", "client_id=&response_type=code"),
        ("no parameters", ""),
    ] {
        let page = browser.get(&server.url(&format!("/authorize?{query}")));
        assert_eq!(page.status, 400, "{case}: {}", page.body);
        assert!(page.headers.get("location").is_none(), "{case}");
        assert_no_internals(&page.body);
    }
    let repeated = browser.get(&server.url("/authorize?client_id=web&redirect_uri=https://app.example/cb&response_type=code&response_type=code&state=s"));
    assert_eq!(
        redirect_params(&repeated.location(), false)["error"],
        "invalid_request"
    );
    let both = http()
        .post(server.url("/authorize?client_id=web"))
        .form(&[("client_id", "web"), ("response_type", "code")])
        .send()
        .unwrap();
    assert_eq!(both.status(), 400, "parameters in both query and body");
    let decision = browser.post(
        &server.url("/authorize/decision"),
        &[("transaction_id", "%%%")],
    );
    assert_eq!(decision.status, 403);
    let garbage = http()
        .post(server.url("/authorize/decision"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"transaction_id=\xff\xfe".to_vec())
        .send()
        .unwrap();
    assert_eq!(garbage.status(), 400);
    let login = http()
        .post(server.url("/login"))
        .header("content-type", "text/plain")
        .body("username=a")
        .send()
        .unwrap();
    assert_eq!(login.status(), 400);
}

#[test]
fn nothing_secret_reaches_the_log() {
    let server = Server::start_with(crate::harness::Options {
        env: vec![("GRANTBOX_LOG".into(), "debug".into())],
        ..Default::default()
    });
    user_add(&server, "alice", "correct horse battery staple");
    let secret = server
        .client_add(&[
            "web",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--redirect-uri",
            "https://app.example/cb",
        ])
        .unwrap();
    let browser = Browser::new();
    let first = browser.get(&server.url(
        "/authorize?response_type=code&client_id=web&redirect_uri=https://app.example/cb&state=s",
    ));
    browser.sign_in(&server, &first.location(), "alice", "wrong-password-value");
    let after_login = browser.sign_in(
        &server,
        &first.location(),
        "alice",
        "correct horse battery staple",
    );
    let consent = browser.get(&server.url(&after_login.location()));
    let done = browser.post(
        &server.url("/authorize/decision"),
        &[
            ("transaction_id", &consent.input("transaction_id")),
            ("csrf_token", &consent.input("csrf_token")),
            ("allow", "1"),
        ],
    );
    let code = redirect_params(&done.location(), false)["code"].clone();
    let response: serde_json::Value = http()
        .post(server.url("/token"))
        .basic_auth("web", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "https://app.example/cb"),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(response["access_token"].is_string(), "{response}");
    // Positive control: the log was captured, at debug level, up to the last
    // request (the code exchange's plugin call, which logs after it ran).
    let exchange_logged = |logs: &str| {
        logs.lines()
            .any(|line| line.contains("function=\"exchange\"") && line.contains("plugin call"))
    };
    for _ in 0..50 {
        if exchange_logged(&server.logs()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let logs = server.logs();
    assert!(exchange_logged(&logs), "the log was not captured: {logs}");
    for (what, value) in [
        ("code", code.as_str()),
        ("client secret", secret.as_str()),
        ("password", "correct horse battery staple"),
        ("wrong password", "wrong-password-value"),
        ("access token", response["access_token"].as_str().unwrap()),
        ("refresh token", response["refresh_token"].as_str().unwrap()),
        ("CSRF token", consent.input("csrf_token").as_str()),
        ("transaction id", consent.input("transaction_id").as_str()),
    ] {
        assert!(!logs.contains(value), "the {what} is in the log");
    }
}
