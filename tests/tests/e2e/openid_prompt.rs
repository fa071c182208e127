//! The OpenID Connect parameters of the authorization request (OIDC Core
//! §3.1.2.1, §11) over one shared server: `prompt=none` answers by redirect
//! and never shows a page (`login_required`, `consent_required`,
//! `interaction_required`, or the code), `prompt=login` and `max_age` show
//! the sign-in page to a signed-in user, `prompt=consent` shows consent
//! despite a remembered one, `login_hint` pre-fills the username, and
//! `offline_access` in an `openid` request needs consent. The pages are
//! clicked through in headless Chromium; the request matrices that need no
//! session run in process.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::harness::webdriver::{
    Callback, Driver, assert_clean_console, click, find, runtime, screenshots, sign_in,
    wait_heading,
};
use crate::harness::{
    Browser, Call, InProcess, PASSWORD, Page, Server, allow, redirect_params, server_with_alice,
    visit_as_alice,
};

/// Where the clients' responses go; nothing listens there: the tests read
/// the redirect.
const REDIRECT_URI: &str = "https://rp.example/cb";

/// The module's shared server: alice, and the relying parties
/// `rp` (confidential), `trusted-rp` (trusted) and `native-rp` (public,
/// loopback redirect), each for `openid offline_access read`.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = server_with_alice();
        for (client_id, redirect_uri, extra) in [
            ("rp", REDIRECT_URI, &[][..]),
            ("trusted-rp", REDIRECT_URI, &["--trusted"][..]),
            ("native-rp", "http://127.0.0.1/cb", &["--public"][..]),
            // The Chromium tests' callback servers listen on loopback ports.
            (
                "browser-rp",
                "http://127.0.0.1/cb",
                &["--name", "Example RP"][..],
            ),
        ] {
            let mut args = vec![
                client_id,
                "--redirect-uri",
                redirect_uri,
                "--grant-type",
                "authorization_code",
                "--grant-type",
                "refresh_token",
            ];
            for scope in ["openid", "offline_access", "read"] {
                args.extend(["--scope", scope]);
            }
            args.extend_from_slice(extra);
            server.client_add(&args);
        }
        server
    })
}

/// An authorization request of `client_id` for `scope` with the further
/// parameters `extra` (state `st`, PKCE S256).
fn authorize_url(
    client_id: &str,
    redirect_uri: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = url::Url::parse(&server().url("/authorize")).expect("a url");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", scope)
        .append_pair("state", "st")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256")
        .extend_pairs(extra);
    url.to_string()
}

/// The parameters of a redirect straight to the client: never a page.
fn answered_without_a_page(page: &Page, redirect_uri: &str) -> HashMap<String, String> {
    assert_eq!(page.status, 302, "a redirect, not a page: {}", page.body);
    let location = page.location();
    assert!(
        location.starts_with(redirect_uri),
        "to the client, not a page of the server: {location}"
    );
    let params = redirect_params(&location, false);
    assert_eq!(
        params.get("state").map(String::as_str),
        Some("st"),
        "{location}"
    );
    assert_eq!(params.get("iss"), Some(&server().base), "{location}");
    params
}

fn assert_error(page: &Page, redirect_uri: &str, error: &str) {
    let params = answered_without_a_page(page, redirect_uri);
    assert_eq!(
        params.get("error").map(String::as_str),
        Some(error),
        "{params:?}"
    );
    assert!(!params.contains_key("code"), "{params:?}");
}

fn assert_code(page: &Page, redirect_uri: &str) {
    let params = answered_without_a_page(page, redirect_uri);
    assert!(params.contains_key("code"), "{params:?}");
    assert!(!params.contains_key("error"), "{params:?}");
}

/// A browser with alice signed in and her consent to `rp` for `scope`
/// remembered.
fn alice_consented(client_id: &str, redirect_uri: &str, scope: &str) -> Browser {
    let browser = Browser::new();
    let consent = visit_as_alice(
        &browser,
        server(),
        &authorize_url(client_id, redirect_uri, scope, &[]),
    );
    // Tests share the server and alice: another may have remembered this
    // consent already, and then the code comes back without the page.
    if consent.status != 200 {
        answered_without_a_page(&consent, redirect_uri);
        return browser;
    }
    let answer = allow(&browser, server(), &consent);
    assert_eq!(answer.status, 303, "{}", answer.body);
    browser
}

// ---------------------------------------------------------------------------
// prompt=none: never a page

#[test]
fn prompt_none_without_a_session_is_login_required() {
    let browser = Browser::new();
    let page = browser.get(&authorize_url(
        "rp",
        REDIRECT_URI,
        "openid read",
        &[("prompt", "none")],
    ));
    assert_error(&page, REDIRECT_URI, "login_required");
}

#[test]
fn prompt_none_answers_at_once_with_a_live_session_and_remembered_consent() {
    let browser = alice_consented("rp", REDIRECT_URI, "openid read");
    let none = [("prompt", "none")];
    let page = browser.get(&authorize_url("rp", REDIRECT_URI, "openid read", &none));
    assert_code(&page, REDIRECT_URI);
    // A trusted client needs no consent.
    let page = browser.get(&authorize_url(
        "trusted-rp",
        REDIRECT_URI,
        "openid read",
        &none,
    ));
    assert_code(&page, REDIRECT_URI);
    // Consent to a scope not yet consented to.
    let page = browser.get(&authorize_url(
        "rp",
        REDIRECT_URI,
        "openid read offline_access",
        &none,
    ));
    assert_error(&page, REDIRECT_URI, "consent_required");
}

#[test]
fn prompt_none_is_consent_required_for_offline_access_even_when_remembered() {
    let scope = "openid offline_access";
    let browser = alice_consented("rp", REDIRECT_URI, scope);
    let page = browser.get(&authorize_url(
        "rp",
        REDIRECT_URI,
        scope,
        &[("prompt", "none")],
    ));
    assert_error(&page, REDIRECT_URI, "consent_required");
    // Without openid, offline_access is an ordinary scope: remembered consent answers.
    let page = browser.get(&authorize_url(
        "rp",
        REDIRECT_URI,
        "offline_access",
        &[("prompt", "none")],
    ));
    assert_code(&page, REDIRECT_URI);
    // A trusted client needs no consent for it (the operator vouched for it).
    let page = browser.get(&authorize_url(
        "trusted-rp",
        REDIRECT_URI,
        scope,
        &[("prompt", "none")],
    ));
    assert_code(&page, REDIRECT_URI);
}

#[test]
fn prompt_none_is_interaction_required_for_a_native_app_that_confirms_each_time() {
    let redirect_uri = "http://127.0.0.1:9/cb";
    let browser = alice_consented("native-rp", redirect_uri, "openid read");
    let page = browser.get(&authorize_url(
        "native-rp",
        redirect_uri,
        "openid read",
        &[("prompt", "none")],
    ));
    assert_error(&page, redirect_uri, "interaction_required");
}

#[test]
fn prompt_none_is_login_required_when_the_sign_in_is_too_old_or_the_hint_is_not_the_user() {
    let browser = alice_consented("rp", REDIRECT_URI, "openid read");
    // max_age counts whole seconds: let the sign-in be a second old.
    std::thread::sleep(Duration::from_millis(1100));
    let page = browser.get(&authorize_url(
        "rp",
        REDIRECT_URI,
        "openid read",
        &[("prompt", "none"), ("max_age", "0")],
    ));
    assert_error(&page, REDIRECT_URI, "login_required");
    let page = browser.get(&authorize_url(
        "rp",
        REDIRECT_URI,
        "openid read",
        &[("prompt", "none"), ("max_age", "3600")],
    ));
    assert_code(&page, REDIRECT_URI);
    // An id_token_hint this server did not sign.
    let forged = "eyJhbGciOiJFUzI1NiIsImtpZCI6Im5vLXN1Y2gta2V5In0.eyJzdWIiOiJ4In0.c2ln";
    let page = browser.get(&authorize_url(
        "rp",
        REDIRECT_URI,
        "openid read",
        &[("prompt", "none"), ("id_token_hint", forged)],
    ));
    assert_error(&page, REDIRECT_URI, "login_required");
}

// ---------------------------------------------------------------------------
// The request matrix: no session needed

#[test]
fn malformed_parameters_and_unoffered_response_types_go_back_to_the_client() {
    let app = InProcess::start();
    app.client_add(&[
        "rp",
        "--redirect-uri",
        REDIRECT_URI,
        "--grant-type",
        "authorization_code",
        "--scope",
        "openid",
        "--scope",
        "offline_access",
    ]);
    let cases: &[(&str, &str)] = &[
        // OIDC Core §3.1.2.1: none stands alone.
        ("response_type=code&prompt=none%20login", "invalid_request"),
        (
            "response_type=code&prompt=consent%20none",
            "invalid_request",
        ),
        // max_age is a non-negative integer.
        ("response_type=code&max_age=-5", "invalid_request"),
        ("response_type=code&max_age=soon", "invalid_request"),
        // No session: prompt=none answers login_required, never the login page.
        ("response_type=code&prompt=none", "login_required"),
        (
            "response_type=code&prompt=none&max_age=60",
            "login_required",
        ),
        // Only the code flow: an ID token in the front channel is not offered.
        (
            "response_type=id_token&nonce=n",
            "unsupported_response_type",
        ),
        (
            "response_type=code%20id_token&nonce=n",
            "unsupported_response_type",
        ),
    ];
    for (query, error) in cases {
        let path = format!(
            "/authorize?client_id=rp&scope=openid&state=st&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&{query}"
        );
        let reply = app.send(Call::get(&path));
        assert_eq!(reply.status, 302, "{query}: {}", reply.body);
        let params = redirect_params(&reply.location(), false);
        assert!(reply.location().starts_with(REDIRECT_URI), "{query}");
        assert_eq!(
            params.get("error").map(String::as_str),
            Some(*error),
            "{query}"
        );
        assert_eq!(
            params.get("state").map(String::as_str),
            Some("st"),
            "{query}"
        );
        assert_eq!(params.get("iss"), Some(&app.issuer), "{query}");
    }
    // OIDC Core §3.1.2.1 on the code flow: nonce is optional; an unknown
    // prompt value (select_account) is ignored: the sign-in page follows.
    for query in [
        "response_type=code",
        "response_type=code&prompt=select_account",
    ] {
        let path = format!(
            "/authorize?client_id=rp&scope=openid&state=st&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&{query}"
        );
        let reply = app.send(Call::get(&path));
        assert_eq!(reply.status, 302, "{query}: {}", reply.body);
        assert!(
            reply.location().starts_with("/login?transaction_id="),
            "{query}: {}",
            reply.location()
        );
    }
}

// ---------------------------------------------------------------------------
// The pages, in Chromium

/// Opens `url` in the browser and returns what reached the callback.
async fn to_callback(browser: &Client, url: &str, callback: &Callback) -> HashMap<String, String> {
    browser
        .goto(url)
        .await
        .expect("the authorization URL opens");
    callback.hit(browser).await.query
}

async fn username_value(browser: &Client) -> String {
    find(browser, "input#username")
        .await
        .prop("value")
        .await
        .expect("the username field has a value")
        .unwrap_or_default()
}

#[test]
fn prompt_login_max_age_and_prompt_consent_show_their_pages_to_a_signed_in_user() {
    let test = "prompt_login_max_age_and_prompt_consent_show_their_pages_to_a_signed_in_user";
    let Some(driver) = Driver::start(test) else {
        return;
    };
    // The shared server starts outside the test's runtime (on PostgreSQL
    // it makes its database with a runtime of its own).
    server();
    runtime().block_on(async {
        let browser = driver.session().await;
        // First sign-in and consent (asked for, since another test on the
        // shared server may already have had alice consent).
        let first = Callback::start();
        let url = authorize_url(
            "browser-rp",
            &first.redirect_uri(),
            "openid read",
            &[("prompt", "consent")],
        );
        browser
            .goto(&url)
            .await
            .expect("the authorization URL opens");
        wait_heading(&browser, "Sign in").await;
        sign_in(&browser, "alice", PASSWORD).await;
        wait_heading(&browser, "Authorize Example RP").await;
        click(&browser, "button[name=allow]").await;
        assert!(first.hit(&browser).await.query.contains_key("code"));

        // Remembered: the next request answers at once.
        let again = Callback::start();
        let url = authorize_url("browser-rp", &again.redirect_uri(), "openid read", &[]);
        assert!(
            to_callback(&browser, &url, &again)
                .await
                .contains_key("code")
        );

        // Age the first sign-in, so that the max_age check at the end tells
        // a renewed sign-in from the first one.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        for extra in [[("prompt", "login")], [("max_age", "0")]] {
            let callback = Callback::start();
            let url = authorize_url(
                "browser-rp",
                &callback.redirect_uri(),
                "openid read",
                &extra,
            );
            browser
                .goto(&url)
                .await
                .expect("the authorization URL opens");
            // The signed-in user is asked to sign in again, her name filled in.
            wait_heading(&browser, "Sign in").await;
            assert_eq!(username_value(&browser).await, "alice", "{extra:?}");
            assert_clean_console(&browser, "sign-in page again", &[]).await;
            sign_in(&browser, "alice", PASSWORD).await;
            // Consent is remembered: straight on to the client.
            let query = callback.hit(&browser).await.query;
            assert!(query.contains_key("code"), "{extra:?}: {query:?}");
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        // The sign-in was renewed: a max_age shorter than the time since the
        // first sign-in (over four seconds ago) is satisfied without a page.
        let callback = Callback::start();
        let url = authorize_url(
            "browser-rp",
            &callback.redirect_uri(),
            "openid read",
            &[("prompt", "none"), ("max_age", "3")],
        );
        let query = to_callback(&browser, &url, &callback).await;
        assert!(query.contains_key("code"), "{query:?}");

        // prompt=consent: the consent page although consent is remembered.
        let callback = Callback::start();
        let url = authorize_url(
            "browser-rp",
            &callback.redirect_uri(),
            "openid read",
            &[("prompt", "consent")],
        );
        browser
            .goto(&url)
            .await
            .expect("the authorization URL opens");
        wait_heading(&browser, "Authorize Example RP").await;
        assert_clean_console(&browser, "consent page on prompt=consent", &[]).await;
        click(&browser, "button[name=allow]").await;
        assert!(callback.hit(&browser).await.query.contains_key("code"));
        browser.close().await.expect("the session closes");
    });
}

#[test]
fn login_hint_pre_fills_the_username() {
    let test = "login_hint_pre_fills_the_username";
    let Some(driver) = Driver::start(test) else {
        return;
    };
    // The shared server starts outside the test's runtime (on PostgreSQL
    // it makes its database with a runtime of its own).
    server();
    runtime().block_on(async {
        let browser = driver.session().await;
        let callback = Callback::start();
        let url = authorize_url(
            "browser-rp",
            &callback.redirect_uri(),
            "openid read",
            // Other tests on the shared server may have left alice's
            // consent to browser-rp remembered: prompt=consent makes the
            // page after sign-in the consent page whatever ran before.
            &[("login_hint", "alice"), ("prompt", "consent")],
        );
        browser
            .goto(&url)
            .await
            .expect("the authorization URL opens");
        wait_heading(&browser, "Sign in").await;
        assert_eq!(username_value(&browser).await, "alice");
        assert_clean_console(&browser, "sign-in page with login_hint", &[]).await;
        screenshots(&browser, "login-hint").await;
        // Only the password is typed.
        find(&browser, "input#password")
            .await
            .send_keys(PASSWORD)
            .await
            .expect("a password typed");
        click(&browser, "form button[type=submit]").await;
        wait_heading(&browser, "Authorize Example RP").await;

        // Markup in a hint is text in the field, never markup on the page.
        let callback = Callback::start();
        let hint = "\"><script>alert(1)</script>";
        let url = authorize_url(
            "browser-rp",
            &callback.redirect_uri(),
            "openid read",
            &[("login_hint", hint), ("prompt", "login")],
        );
        browser
            .goto(&url)
            .await
            .expect("the authorization URL opens");
        wait_heading(&browser, "Sign in").await;
        assert_eq!(username_value(&browser).await, hint);
        assert!(
            browser
                .find(Locator::Css("script:not([src])"))
                .await
                .is_err()
        );
        browser.close().await.expect("the session closes");
    });
}
