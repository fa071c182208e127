//! Real-browser tests: headless Chromium driven over WebDriver (chromedriver,
//! through the `fantoccini` crate) clicks through the pages a person sees —
//! sign in, consent, deny, a wrong password, `form_post` — lands on a local
//! callback server that records what the browser delivered, and redeems the
//! code. They also prove that a page on another origin cannot frame the
//! login and consent pages, that no page breaks its own Content-Security-Policy
//! (Chromium's console stays clean), and save screenshots of each page at
//! phone and desktop sizes under `target/screenshots/`.
//!
//! `GRANTBOX_TEST_CHROMEDRIVER` names the chromedriver binary (`.ci/run` sets
//! it to Debian's `/usr/bin/chromedriver`); when it is set and chromedriver or
//! Chromium cannot start, the tests fail; when it is unset they print a note
//! and pass without a browser.

use std::time::Duration;

use base64::Engine as _;
use fantoccini::{Client, Locator};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::harness::webdriver::*;
use crate::harness::{Server, example_app, server_with_alice};

// ---------------------------------------------------------------------------
// The server and the authorization request

fn setup(callback: &Callback, public: bool) -> Server {
    let server = server_with_alice();
    let mut extra = vec!["--name", "Example App"];
    if public {
        extra.push("--public");
    }
    example_app(&server, &callback.redirect_uri(), &extra);
    server
}

fn challenge() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()))
}

fn authorize_url(server: &Server, callback: &Callback, extra: &str) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).expect("a url");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "app")
        .append_pair("redirect_uri", &callback.redirect_uri())
        .append_pair("scope", "read write")
        .append_pair("state", "st4te")
        .append_pair("code_challenge", &challenge())
        .append_pair("code_challenge_method", "S256");
    format!("{url}{extra}")
}

/// Opens the authorization URL, signs in as alice and waits for the
/// consent page, checking each page's console.
async fn to_consent(browser: &Client, url: &str) {
    browser
        .goto(url)
        .await
        .expect("the authorization URL opens");
    wait_heading(browser, "Sign in").await;
    assert!(text(browser).await.contains("Example App"));
    assert_clean_console(browser, "login page", &[]).await;
    sign_in(browser, "alice", PASSWORD).await;
    wait_heading(browser, "Authorize Example App").await;
    let consent = text(browser).await;
    assert!(
        consent.contains("read") && consent.contains("127.0.0.1"),
        "{consent}"
    );
    assert_clean_console(browser, "consent page", &[]).await;
}

// ---------------------------------------------------------------------------
// The tests

#[test]
fn code_flow_with_pkce_clicked_through_and_redeemed() {
    let test = "code_flow_with_pkce_clicked_through_and_redeemed";
    let Some(driver) = Driver::start(test) else {
        return;
    };
    let callback = Callback::start();
    let server = setup(&callback, true);
    let url = authorize_url(&server, &callback, "");
    runtime().block_on(async {
        let browser = driver.session().await;
        to_consent(&browser, &url).await;
        click(&browser, "button[name=allow]").await;
        let hit = callback.hit(&browser).await;
        assert_eq!((hit.method.as_str(), hit.path.as_str()), ("GET", "/cb"));
        assert_eq!(hit.query.get("state").map(String::as_str), Some("st4te"));
        assert_eq!(hit.query.get("iss"), Some(&server.base));
        wait_heading(&browser, "Callback").await;
        assert_clean_console(&browser, "the decision and its redirect", &[]).await;
        browser.close().await.expect("the session closes");

        let response = reqwest::Client::new()
            .post(server.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &hit.query["code"]),
                ("redirect_uri", &callback.redirect_uri()),
                ("client_id", "app"),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .await
            .expect("the token endpoint answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON token response");
        assert_eq!(status, 200, "{body}");
        assert!(body["access_token"].is_string(), "{body}");
        assert_eq!(body["scope"], "read write", "{body}");
    });
}

#[test]
fn deny_reaches_the_callback_with_access_denied() {
    let Some(driver) = Driver::start("deny_reaches_the_callback_with_access_denied") else {
        return;
    };
    let callback = Callback::start();
    let server = setup(&callback, true);
    let url = authorize_url(&server, &callback, "");
    runtime().block_on(async {
        let browser = driver.session().await;
        to_consent(&browser, &url).await;
        click(&browser, "button[name=cancel]").await;
        let hit = callback.hit(&browser).await;
        assert_eq!(
            hit.query.get("error").map(String::as_str),
            Some("access_denied"),
            "{hit:?}"
        );
        assert!(!hit.query.contains_key("code"), "{hit:?}");
        assert_eq!(hit.query.get("state").map(String::as_str), Some("st4te"));
        wait_heading(&browser, "Callback").await;
        assert_clean_console(&browser, "the denial and its redirect", &[]).await;
        browser.close().await.expect("the session closes");
    });
}

#[test]
fn a_wrong_password_then_the_right_one() {
    let Some(driver) = Driver::start("a_wrong_password_then_the_right_one") else {
        return;
    };
    let callback = Callback::start();
    let server = setup(&callback, true);
    let url = authorize_url(&server, &callback, "");
    runtime().block_on(async {
        let browser = driver.session().await;
        browser
            .goto(&url)
            .await
            .expect("the authorization URL opens");
        wait_heading(&browser, "Sign in").await;
        sign_in(&browser, "alice", "wrong password").await;
        let error = find(&browser, ".error[role=alert]").await;
        assert!(
            !error.text().await.expect("a message").is_empty(),
            "the login page says what went wrong"
        );
        wait_heading(&browser, "Sign in").await;
        assert_clean_console(&browser, "login page after a wrong password", &[401]).await;
        sign_in(&browser, "alice", PASSWORD).await;
        wait_heading(&browser, "Authorize Example App").await;
        assert_clean_console(&browser, "consent page", &[]).await;
        click(&browser, "button[name=allow]").await;
        let hit = callback.hit(&browser).await;
        assert!(hit.query.contains_key("code"), "{hit:?}");
        browser.close().await.expect("the session closes");
    });
}

#[test]
fn form_post_submits_itself_within_its_csp() {
    let Some(driver) = Driver::start("form_post_submits_itself_within_its_csp") else {
        return;
    };
    let callback = Callback::start();
    let server = setup(&callback, true);
    let url = authorize_url(&server, &callback, "&response_mode=form_post");
    runtime().block_on(async {
        let browser = driver.session().await;
        to_consent(&browser, &url).await;
        click(&browser, "button[name=allow]").await;
        // The form_post page's hashed script submits its form to the client's
        // origin: both need the page's CSP to allow them.
        let hit = callback.hit(&browser).await;
        assert_eq!(hit.method, "POST", "{hit:?}");
        assert!(hit.query.is_empty(), "nothing in the URL: {hit:?}");
        assert_eq!(hit.form.get("state").map(String::as_str), Some("st4te"));
        assert_eq!(hit.form.get("iss"), Some(&server.base));
        assert_eq!(hit.form.get("code").map(String::len), Some(43), "{hit:?}");
        wait_heading(&browser, "Callback").await;
        assert_clean_console(&browser, "form_post page", &[]).await;
        browser.close().await.expect("the session closes");
    });
}

#[test]
fn another_origin_cannot_frame_the_login_or_consent_page() {
    let Some(driver) = Driver::start("another_origin_cannot_frame_the_login_or_consent_page")
    else {
        return;
    };
    let callback = Callback::start();
    let server = setup(&callback, true);
    let url = authorize_url(&server, &callback, "");
    runtime().block_on(async {
        let browser = driver.session().await;
        browser
            .goto(&url)
            .await
            .expect("the authorization URL opens");
        wait_heading(&browser, "Sign in").await;
        let login = browser.current_url().await.expect("a URL").to_string();
        sign_in(&browser, "alice", PASSWORD).await;
        wait_heading(&browser, "Authorize Example App").await;
        let consent = browser.current_url().await.expect("a URL").to_string();
        let _ = console(&browser).await;

        let mut frame = url::Url::parse(&format!("{}/frame", callback.base)).expect("a url");
        frame
            .query_pairs_mut()
            .append_pair("login", &login)
            .append_pair("consent", &consent);
        browser
            .goto(frame.as_str())
            .await
            .expect("the framing page opens");

        // Chromium reports each refusal on the console.
        let mut refusals = Vec::new();
        for _ in 0..300 {
            refusals.extend(
                console(&browser)
                    .await
                    .into_iter()
                    .map(|(_, message)| message)
                    .filter(|m| m.contains("frame-ancestors")),
            );
            if refusals.len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(refusals.len(), 2, "{refusals:#?}");
        let framed = format!("Framing '{}/'", server.base);
        assert!(
            refusals.iter().all(|m| m.contains(&framed)),
            "{refusals:#?}"
        );

        // The same-origin control frame loaded; the framed pages did not.
        let control = find(&browser, "iframe#control").await;
        control.enter_frame().await.expect("into the control frame");
        find(&browser, "h1#control").await;
        browser.enter_parent_frame().await.expect("back out");
        for name in ["login", "consent"] {
            let iframe = find(&browser, &format!("iframe#{name}")).await;
            iframe.enter_frame().await.expect("into the frame");
            let forms = browser
                .find_all(Locator::Css("form, input, button"))
                .await
                .expect("the frame can be searched");
            let shown = text(&browser).await;
            assert!(
                forms.is_empty() && !shown.contains("Sign in") && !shown.contains("Authorize"),
                "the {name} page rendered inside a frame on another origin: {shown}"
            );
            browser.enter_parent_frame().await.expect("back out");
        }
        browser.close().await.expect("the session closes");
    });
}

#[test]
fn every_page_keeps_its_csp_and_is_photographed_at_phone_and_desktop_sizes() {
    let Some(driver) =
        Driver::start("every_page_keeps_its_csp_and_is_photographed_at_phone_and_desktop_sizes")
    else {
        return;
    };
    let callback = Callback::start();
    let server = setup(&callback, true);
    let url = authorize_url(&server, &callback, "");
    runtime().block_on(async {
        let browser = driver.session().await;

        // An error page that must not redirect: an unknown client.
        browser
            .goto(&server.url(&format!(
                "/authorize?response_type=code&client_id=nobody&redirect_uri={}",
                callback.redirect_uri()
            )))
            .await
            .expect("the error page opens");
        find(&browser, ".error[role=alert]").await;
        assert_clean_console(&browser, "error page", &[400]).await;
        screenshots(&browser, "error").await;

        browser
            .goto(&url)
            .await
            .expect("the authorization URL opens");
        wait_heading(&browser, "Sign in").await;
        assert_clean_console(&browser, "login page", &[]).await;
        screenshots(&browser, "login").await;

        sign_in(&browser, "alice", "wrong password").await;
        find(&browser, ".error[role=alert]").await;
        assert_clean_console(&browser, "login page with an error", &[401]).await;
        screenshots(&browser, "login-error").await;

        sign_in(&browser, "alice", PASSWORD).await;
        wait_heading(&browser, "Authorize Example App").await;
        assert_clean_console(&browser, "consent page", &[]).await;
        screenshots(&browser, "consent").await;

        browser
            .goto(&server.url("/login"))
            .await
            .expect("/login opens");
        wait_heading(&browser, "Signed in").await;
        assert_clean_console(&browser, "signed-in page", &[]).await;
        screenshots(&browser, "signed-in").await;
        browser.close().await.expect("the session closes");
    });
}
