//! OpenID Connect RP-Initiated Logout 1.0 at `/end_session`: the
//! registration of `post_logout_redirect_uris` (CLI and dynamic
//! registration); the confirmation page, its two buttons and what each does
//! to the session, over one shared server with a cookie-keeping browser;
//! the refusals (error pages, never a redirect) in process; and the pages
//! clicked through in headless Chromium, with screenshots.

use std::sync::OnceLock;

use grantbox::config::{RawConfig, RawRegistration};
use serde_json::{Value, json};

use crate::harness::webdriver::{
    Callback, Driver, assert_clean_console, click, runtime, screenshots, sign_in as type_sign_in,
    text as page_text, wait_heading,
};
use crate::harness::{
    Browser, Call, InProcess, PASSWORD, Page, Server, grantbox, redirect_params, server_with_alice,
    text,
};

/// Where the scripted browser's relying party lives; nothing listens there,
/// the tests read the redirects.
const RP_CALLBACK: &str = "https://rp.example/cb";
const RP_SIGNED_OUT: &str = "https://rp.example/signed-out";
/// RFC 7636 appendix B.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The module's shared server: alice, and the trusted confidential client
/// `rp` with one post-logout redirect URI.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = server_with_alice();
        server
            .client_add(&[
                "rp",
                "--name",
                "Example RP",
                "--redirect-uri",
                RP_CALLBACK,
                "--grant-type",
                "authorization_code",
                "--scope",
                "read",
                "--trusted",
                "--post-logout-redirect-uri",
                RP_SIGNED_OUT,
            ])
            .expect("rp gets a secret");
        server
    })
}

fn authorize_url(server: &Server) -> String {
    server.url(&format!(
        "/authorize?response_type=code&client_id=rp&redirect_uri={RP_CALLBACK}&scope=read&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256"
    ))
}

/// Signs alice in through a code flow of `rp` (trusted: no consent page)
/// and checks that the code came back.
fn signed_in_browser(server: &Server) -> Browser {
    let browser = Browser::new();
    let first = browser.get(&authorize_url(server));
    assert_eq!(first.status, 302, "{}", first.body);
    assert!(
        first.location().starts_with("/login"),
        "{}",
        first.location()
    );
    let after_login = browser.sign_in(server, &first.location(), "alice", PASSWORD);
    assert_eq!(after_login.status, 303, "{}", after_login.body);
    let back = browser.get(&server.url(&after_login.location()));
    assert!(
        back.location().starts_with(RP_CALLBACK),
        "{}",
        back.location()
    );
    assert!(is_signed_in(&browser, server));
    browser
}

/// Whether `/authorize` goes straight back with a code (signed in) rather
/// than to the login page.
fn is_signed_in(browser: &Browser, server: &Server) -> bool {
    let page = browser.get(&authorize_url(server));
    assert_eq!(page.status, 302, "{}", page.body);
    let location = page.location();
    if location.starts_with("/login") {
        return false;
    }
    assert!(
        redirect_params(&location, false).contains_key("code"),
        "{location}"
    );
    true
}

fn end_session_url(server: &Server, query: &str) -> String {
    server.url(&format!("/end_session?{query}"))
}

/// Posts the confirmation page's form with one of its buttons.
fn answer(browser: &Browser, server: &Server, confirmation: &Page, button: &str) -> Page {
    let mut form = vec![
        ("csrf_token".to_owned(), confirmation.input("csrf_token")),
        (button.to_owned(), "1".to_owned()),
    ];
    for hidden in ["client_id", "post_logout_redirect_uri", "state"] {
        if confirmation.body.contains(&format!("name=\"{hidden}\"")) {
            form.push((
                hidden.to_owned(),
                html_unescape(&confirmation.input(hidden)),
            ));
        }
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    browser.post(&server.url("/end_session/confirm"), &form)
}

/// minijinja escapes `/` and `:` in attribute values; a browser reads them back.
fn html_unescape(value: &str) -> String {
    value
        .replace("&#x2f;", "/")
        .replace("&#x3a;", ":")
        .replace("&#x3d;", "=")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn assert_confirmation(page: &Page, server: &Server, client_name: Option<&str>) {
    assert_eq!(page.status, 200, "{}", page.body);
    let body = html_unescape(&page.body);
    assert!(
        body.contains(&format!("<h1>Sign out of {}?</h1>", server.base)),
        "{body}"
    );
    if let Some(name) = client_name {
        assert!(body.contains(name), "{body}");
    }
    assert!(page.body.contains("name=\"sign_out\""), "{}", page.body);
    assert!(page.body.contains("name=\"stay\""), "{}", page.body);
}

// ---------------------------------------------------------------------------
// Registration of post-logout redirect URIs

#[test]
fn the_cli_registers_shows_and_updates_post_logout_redirect_uris() {
    let server = server();
    let run = |args: &[&str]| grantbox(&server.db, args, None);
    let added = run(&[
        "client",
        "add",
        "cli-rp",
        "--public",
        "--redirect-uri",
        "https://cli-rp.example/cb",
        "--post-logout-redirect-uri",
        "https://cli-rp.example/bye",
        "--post-logout-redirect-uri",
        "com.example.app:/bye",
    ]);
    assert!(added.status.success(), "{}", text(&added.stderr));
    let show = |id: &str| -> Value {
        let output = run(&["--json", "client", "show", id]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("JSON")
    };
    assert_eq!(
        show("cli-rp")["post_logout_redirect_uris"],
        json!(["https://cli-rp.example/bye", "com.example.app:/bye"])
    );
    let listed = run(&["--json", "client", "list"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let rp = (listed.as_array().expect("a list").iter())
        .find(|c| c["client_id"] == "cli-rp")
        .expect("cli-rp is listed");
    assert_eq!(rp["post_logout_redirect_uris"][1], "com.example.app:/bye");

    // The redirect URI rules: no plain http off loopback, no fragment.
    for bad in ["http://cli-rp.example/bye", "https://cli-rp.example/bye#x"] {
        let refused = run(&[
            "client",
            "add",
            "cli-bad",
            "--public",
            "--redirect-uri",
            "https://cli-rp.example/cb",
            "--post-logout-redirect-uri",
            bad,
        ]);
        assert!(!refused.status.success());
        let stderr = text(&refused.stderr);
        assert!(
            stderr.contains("post-logout redirect uri") && stderr.contains(bad),
            "{stderr}"
        );
    }

    let updated = run(&[
        "client",
        "update",
        "cli-rp",
        "--post-logout-redirect-uri",
        "https://cli-rp.example/other",
    ]);
    assert!(updated.status.success(), "{}", text(&updated.stderr));
    assert_eq!(
        show("cli-rp")["post_logout_redirect_uris"],
        json!(["https://cli-rp.example/other"])
    );
    let refused = run(&[
        "client",
        "update",
        "cli-rp",
        "--post-logout-redirect-uri",
        "javascript:alert(1)",
    ]);
    assert!(!refused.status.success());
    let emptied = run(&[
        "client",
        "update",
        "cli-rp",
        "--no-post-logout-redirect-uris",
    ]);
    assert!(emptied.status.success(), "{}", text(&emptied.stderr));
    assert_eq!(show("cli-rp")["post_logout_redirect_uris"], json!([]));
}

#[test]
fn dynamic_registration_takes_and_checks_post_logout_redirect_uris() {
    let app = InProcess::start_with_config(RawConfig {
        registration: RawRegistration {
            enabled: Some(true),
            initial_access_token_required: Some(false),
            scopes: Some(vec!["read".into()]),
        },
        ..RawConfig::default()
    });
    let register = |metadata: Value| {
        let reply = app.send(
            Call::post("/register", metadata.to_string())
                .header("content-type", "application/json"),
        );
        (reply.status, reply.json())
    };
    let (status, body) = register(json!({
        "redirect_uris": ["https://dyn.example/cb"],
        "token_endpoint_auth_method": "none",
        "post_logout_redirect_uris": ["https://dyn.example/bye"],
    }));
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["post_logout_redirect_uris"],
        json!(["https://dyn.example/bye"])
    );
    let client_id = body["client_id"].as_str().expect("a client id");
    let stored = app.find_client(client_id).expect("stored");
    assert_eq!(
        stored.post_logout_redirect_uris,
        ["https://dyn.example/bye"]
    );

    for (value, error) in [
        (json!(["http://dyn.example/bye"]), "invalid_redirect_uri"),
        (json!(["https://dyn.example/bye#f"]), "invalid_redirect_uri"),
        (json!("https://dyn.example/bye"), "invalid_client_metadata"),
        (json!([7]), "invalid_client_metadata"),
    ] {
        let (status, body) = register(json!({
            "redirect_uris": ["https://dyn.example/cb"],
            "token_endpoint_auth_method": "none",
            "post_logout_redirect_uris": value,
        }));
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{value}: {body}"
        );
    }
}

// ---------------------------------------------------------------------------
// Refusals: an error page, never a redirect

#[test]
fn refused_logout_requests_get_an_error_page_and_no_redirect() {
    let app = InProcess::start();
    app.client_add(&[
        "rp",
        "--public",
        "--redirect-uri",
        RP_CALLBACK,
        "--post-logout-redirect-uri",
        RP_SIGNED_OUT,
    ]);
    app.client_add(&[
        "other",
        "--public",
        "--redirect-uri",
        "https://other.example/cb",
    ]);
    let uri = "post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fsigned-out";
    let long_state = format!("state={}", "s".repeat(2049));
    let cases: Vec<(&str, Call, &str)> = vec![
        (
            "an unknown client",
            Call::get(&format!("/end_session?client_id=nobody&{uri}")),
            "not registered",
        ),
        (
            "a return address without a client",
            Call::get(&format!("/end_session?{uri}")),
            "needs the client",
        ),
        (
            "a return address of another client",
            Call::get(&format!("/end_session?client_id=other&{uri}")),
            "not registered for client",
        ),
        (
            "a return address that only starts like the registered one",
            Call::get(&format!("/end_session?client_id=rp&{uri}%2Fx")),
            "not registered for client",
        ),
        (
            "a return address with another query",
            Call::get(&format!(
                "/end_session?client_id=rp&{uri}%3Fnext%3Dhttps%3A%2F%2Fevil.example"
            )),
            "not registered for client",
        ),
        (
            "a repeated parameter",
            Call::get(&format!("/end_session?client_id=rp&{uri}&{uri}")),
            "repeated",
        ),
        (
            "a repeated ignored parameter",
            Call::get("/end_session?ui_locales=en&ui_locales=de"),
            "repeated",
        ),
        (
            "a malformed escape",
            Call::get("/end_session?client_id=%zz"),
            "",
        ),
        (
            "an unreadable id_token_hint",
            Call::get("/end_session?id_token_hint=not.a.jwt&client_id=rp"),
            "id_token_hint",
        ),
        (
            "a state over 2048 bytes",
            Call::get(&format!("/end_session?client_id=rp&{long_state}")),
            "state",
        ),
        (
            "parameters in both the query and the body",
            Call::post("/end_session?client_id=rp", "client_id=rp"),
            "either",
        ),
        (
            "a body that is not a form",
            Call::post("/end_session", "client_id=rp").header("content-type", "text/plain"),
            "",
        ),
    ];
    for (what, call, message) in cases {
        let reply = app.send(call);
        assert_eq!(reply.status, 400, "{what}: {}", reply.body);
        assert_eq!(reply.location(), "", "{what}: never a redirect");
        assert!(
            reply.body.contains("Cannot sign out"),
            "{what}: {}",
            reply.body
        );
        assert!(reply.body.contains(message), "{what}: {}", reply.body);
        assert!(
            reply.headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("form-action 'self';"),
            "{what}"
        );
    }

    // The confirmation form is bound to the session's CSRF token.
    let reply = app.send(Call::form(
        "/end_session/confirm",
        &[
            ("client_id", "rp"),
            ("post_logout_redirect_uri", RP_SIGNED_OUT),
            ("sign_out", "1"),
            ("csrf_token", "forged"),
        ],
    ));
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.location(), "");

    // A good request gets the confirmation page, whose form may lead to the
    // relying party's origin and nowhere else.
    let reply = app.send(Call::get(&format!(
        "/end_session?client_id=rp&{uri}&state=abc&logout_hint=alice&ui_locales=en"
    )));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let csp = reply.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' https://rp.example;"),
        "{csp}"
    );
    assert_eq!(reply.headers["x-frame-options"], "DENY");
    assert_eq!(reply.headers["cache-control"], "no-store");
}

// ---------------------------------------------------------------------------
// The confirmation page and the session

#[test]
fn without_a_hint_the_user_confirms_and_sign_out_ends_the_session() {
    let server = server();
    let browser = signed_in_browser(server);
    let query = format!("client_id=rp&post_logout_redirect_uri={RP_SIGNED_OUT}&state=x%20y");
    let confirmation = browser.get(&end_session_url(server, &query));
    assert_confirmation(&confirmation, server, Some("Example RP"));
    assert!(confirmation.body.contains("alice"), "{}", confirmation.body);
    assert!(is_signed_in(&browser, server), "asking ends nothing");

    let confirmation = browser.get(&end_session_url(server, &query));
    let done = answer(&browser, server, &confirmation, "sign_out");
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), format!("{RP_SIGNED_OUT}?state=x+y"));
    assert!(!is_signed_in(&browser, server), "the session has ended");
}

#[test]
fn stay_signed_in_returns_to_the_relying_party_with_the_session_kept() {
    let server = server();
    let browser = signed_in_browser(server);
    let query = format!("client_id=rp&post_logout_redirect_uri={RP_SIGNED_OUT}&state=kept");
    let confirmation = browser.get(&end_session_url(server, &query));
    assert_confirmation(&confirmation, server, Some("Example RP"));
    let stayed = answer(&browser, server, &confirmation, "stay");
    assert_eq!(stayed.status, 303, "{}", stayed.body);
    assert_eq!(stayed.location(), format!("{RP_SIGNED_OUT}?state=kept"));
    assert!(is_signed_in(&browser, server));

    // Without a return address "Stay signed in" shows the signed-in page.
    let confirmation = browser.get(&end_session_url(server, ""));
    assert_confirmation(&confirmation, server, None);
    let stayed = answer(&browser, server, &confirmation, "stay");
    assert_eq!((stayed.status, stayed.location().as_str()), (303, "/login"));
    let page = browser.get(&server.url("/login"));
    assert!(page.body.contains("You are signed in as"), "{}", page.body);
}

#[test]
fn a_post_without_a_return_address_ends_at_the_signed_out_page() {
    let server = server();
    let browser = signed_in_browser(server);
    // RP-Initiated Logout 1.0 §2: POST with a form body works as GET does.
    let confirmation = browser.post(&server.url("/end_session"), &[("client_id", "rp")]);
    assert_confirmation(&confirmation, server, Some("Example RP"));
    let done = answer(&browser, server, &confirmation, "sign_out");
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("You are signed out"), "{}", done.body);
    assert!(!is_signed_in(&browser, server));
}

#[test]
fn without_a_session_the_user_is_asked_and_returned() {
    let server = server();
    let browser = Browser::new();
    let query = format!("client_id=rp&post_logout_redirect_uri={RP_SIGNED_OUT}&state=z");
    let confirmation = browser.get(&end_session_url(server, &query));
    assert_confirmation(&confirmation, server, Some("Example RP"));
    assert!(
        !confirmation.body.contains("alice"),
        "{}",
        confirmation.body
    );
    let done = answer(&browser, server, &confirmation, "sign_out");
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), format!("{RP_SIGNED_OUT}?state=z"));
}

#[test]
fn a_confirmation_form_with_a_changed_return_address_is_refused() {
    let server = server();
    let browser = signed_in_browser(server);
    let query = format!("client_id=rp&post_logout_redirect_uri={RP_SIGNED_OUT}");
    let confirmation = browser.get(&end_session_url(server, &query));
    let refused = browser.post(
        &server.url("/end_session/confirm"),
        &[
            ("csrf_token", confirmation.input("csrf_token").as_str()),
            ("client_id", "rp"),
            ("post_logout_redirect_uri", "https://evil.example/"),
            ("sign_out", "1"),
        ],
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.location(), "");
    assert!(is_signed_in(&browser, server), "nothing was ended");
}

// ---------------------------------------------------------------------------
// Headless Chromium

#[test]
fn logout_clicked_through_in_chromium() {
    let test = "logout_clicked_through_in_chromium";
    let Some(driver) = Driver::start(test) else {
        return;
    };
    let server = server();
    let code_callback = Callback::start();
    let stay_callback = Callback::start();
    let out_callback = Callback::start();
    server.client_add(&[
        "browser-rp",
        "--public",
        "--name",
        "Browser RP",
        "--redirect-uri",
        &code_callback.redirect_uri(),
        "--scope",
        "read",
        "--post-logout-redirect-uri",
        &stay_callback.redirect_uri(),
        "--post-logout-redirect-uri",
        &out_callback.redirect_uri(),
    ]);
    let authorize = server.url(&format!(
        "/authorize?response_type=code&client_id=browser-rp&redirect_uri={}&scope=read&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256",
        code_callback.redirect_uri()
    ));
    let end_session = |callback: &Callback, state: &str| {
        let mut url = url::Url::parse(&server.url("/end_session")).expect("a url");
        url.query_pairs_mut()
            .append_pair("client_id", "browser-rp")
            .append_pair("post_logout_redirect_uri", &callback.redirect_uri())
            .append_pair("state", state);
        url.to_string()
    };
    runtime().block_on(async {
        let browser = driver.session().await;
        browser.goto(&authorize).await.expect("authorize opens");
        wait_heading(&browser, "Sign in").await;
        type_sign_in(&browser, "alice", PASSWORD).await;
        wait_heading(&browser, "Authorize Browser RP").await;
        click(&browser, "button[name=allow]").await;
        let hit = code_callback.hit(&browser).await;
        assert!(hit.query.contains_key("code"), "{hit:?}");

        // Asked first; "Stay signed in" goes back with state, still signed in.
        browser
            .goto(&end_session(&stay_callback, "stay-1"))
            .await
            .expect("end_session opens");
        let heading = format!("Sign out of {}?", server.base);
        wait_heading(&browser, &heading).await;
        assert!(page_text(&browser).await.contains("Browser RP"));
        assert_clean_console(&browser, "confirmation page", &[]).await;
        screenshots(&browser, "end-session-confirm").await;
        click(&browser, "button[name=stay]").await;
        let hit = stay_callback.hit(&browser).await;
        assert_eq!(hit.query.get("state").map(String::as_str), Some("stay-1"));
        browser.goto(&authorize).await.expect("authorize opens");
        wait_heading(&browser, "Authorize Browser RP").await;

        // "Sign out" ends the session and goes back with state.
        browser
            .goto(&end_session(&out_callback, "out-1"))
            .await
            .expect("end_session opens");
        wait_heading(&browser, &heading).await;
        click(&browser, "button[name=sign_out]").await;
        let hit = out_callback.hit(&browser).await;
        assert_eq!(hit.query.get("state").map(String::as_str), Some("out-1"));
        assert_clean_console(&browser, "sign out and its redirect", &[]).await;
        browser.goto(&authorize).await.expect("authorize opens");
        wait_heading(&browser, "Sign in").await;

        // Without a return address: the signed-out page.
        browser
            .goto(&server.url("/end_session"))
            .await
            .expect("end_session opens");
        wait_heading(&browser, &heading).await;
        click(&browser, "button[name=sign_out]").await;
        wait_heading(&browser, "You are signed out").await;
        assert_clean_console(&browser, "signed-out page", &[]).await;
        screenshots(&browser, "end-session-done").await;
        browser.close().await.expect("the session closes");
    });
}
