//! Bad input: oversized, malformed, repeated, misplaced and empty parameters
//! get the RFC error (400 JSON at the token endpoint, an error page or a
//! redirect at /authorize) — never a 500, a panic, a hang or a leak of internals.
//! The request matrices run in process against the router
//! ([`crate::harness::InProcess`]); the log is read from the real binary.

use crate::harness::{
    Browser, Call, InProcess, Server, http, redirect_params, service_client, user_add, web_client,
};

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

fn raw_token_request(app: &InProcess, secret: &str, body: Vec<u8>) -> (u16, String) {
    let reply = app.send(Call::post("/token", body).basic_auth("svc", secret));
    (reply.status, reply.body)
}

#[test]
fn malformed_token_requests_get_400_json() {
    let app = InProcess::start();
    let secret = service_client(&app, &["read"]);
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
        let (status, body) = raw_token_request(&app, &secret, body);
        assert_eq!(status, 400, "{case}: {body}");
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{case}: not JSON: {body}"));
        assert_eq!(json["error"], "invalid_request", "{case}");
        assert_no_internals(&body);
    }
    let (status, _) = raw_token_request(&app, &secret, b"grant_type=client_credentials".to_vec());
    assert_eq!(status, 200, "still serving");
}

#[test]
fn oversized_requests_get_413_or_431_everywhere() {
    let app = InProcess::start();
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
        let response = app.send(Call::post(path, body));
        assert_eq!(response.status, 413, "{path}");
    }
    let huge_header = "h".repeat(128 * 1024);
    let response = app.send(Call::get("/healthz").header("x-huge", &huge_header));
    assert!(matches!(response.status, 431 | 400), "{}", response.status);
    assert_eq!(app.send(Call::get("/healthz")).status, 200, "still serving");
}

#[test]
fn malformed_authorization_requests_get_a_page_or_a_redirect() {
    let app = InProcess::start();
    app.user_add("alice", "correct horse battery staple");
    web_client(&app, "https://app.example/cb", &[]);
    for (case, query) in [
        ("non-UTF-8", "client_id=%FF"),
        ("truncated escape", "client_id=web%"),
        ("empty client_id", "client_id=&response_type=code"),
        ("no parameters", ""),
    ] {
        let page = app.send(Call::get(&format!("/authorize?{query}")));
        assert_eq!(page.status, 400, "{case}: {}", page.body);
        assert!(page.headers.get("location").is_none(), "{case}");
        assert_no_internals(&page.body);
    }
    let repeated = app.send(Call::get("/authorize?client_id=web&redirect_uri=https://app.example/cb&response_type=code&response_type=code&state=s"));
    assert_eq!(
        redirect_params(&repeated.location(), false)["error"],
        "invalid_request"
    );
    let both = app.send(Call::form(
        "/authorize?client_id=web",
        &[("client_id", "web"), ("response_type", "code")],
    ));
    assert_eq!(both.status, 400, "parameters in both query and body");
    let decision = app.send(Call::form(
        "/authorize/decision",
        &[("transaction_id", "%%%")],
    ));
    assert_eq!(decision.status, 403);
    let garbage = app.send(Call::post(
        "/authorize/decision",
        b"transaction_id=\xff\xfe".to_vec(),
    ));
    assert_eq!(garbage.status, 400);
    let login = app.send(Call::post("/login", "username=a").header("content-type", "text/plain"));
    assert_eq!(login.status, 400);
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
