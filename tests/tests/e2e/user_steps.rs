//! A plugin's user step over the real binary, with the bundled device
//! authorization plugin (RFC 8628) as the plugin: the code entry page, sign-in,
//! the consent page, the done page, the wrong-code error and its throttle
//! per session and per address, CSRF, the plugin's refusal shown to the
//! person, the `verification_uri_complete`
//! pre-fill that never approves by itself, a hot swap while a step is
//! pending, and the pages clicked through in headless Chromium.

use std::time::Duration;

use serde_json::Value;

use crate::harness::webdriver::{
    Driver, assert_clean_console, click, find, runtime, screenshots, sign_in as type_sign_in, text,
    wait_heading,
};
use crate::harness::{
    Options, PASSWORD, Page, Server, http, install_plugin, test_plugin_wasm, user_add,
};

/// The user step the device plugin declares.
const STEP: &str = "/device";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

// ---------------------------------------------------------------------------
// The server, the device and the person

/// A server trusting its own proxy (so each test's visitors come from
/// addresses of their own, `X-Forwarded-For`), with alice and the public
/// device client `tv`, optionally with a plugin directory.
fn start(plugins: Option<&std::path::Path>) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("grantbox.toml");
    std::fs::write(&config, "trusted_proxies = [\"127.0.0.1\"]\n").expect("the config");
    let server = Server::start_with(Options {
        plugins: plugins.map(std::path::Path::to_path_buf),
        env: vec![("GRANTBOX_CONFIG".into(), config.display().to_string())],
        ..Default::default()
    });
    user_add(&server, "alice", PASSWORD);
    server.client_add(&[
        "tv",
        "--public",
        "--name",
        "Living Room TV",
        "--grant-type",
        DEVICE_GRANT,
        "--scope",
        "read",
        "--scope",
        "write",
    ]);
    (server, dir)
}

/// What the device got from the device authorization endpoint.
struct Device {
    device_code: String,
    user_code: String,
    verification_uri_complete: String,
}

/// The device's request (RFC 8628 §3.1) as the public client `tv`.
fn start_device(server: &Server, scope: &str) -> Device {
    let response = http()
        .post(server.url("/device_authorization"))
        .form(&[("client_id", "tv"), ("scope", scope)])
        .send()
        .expect("the device authorization endpoint answers");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().expect("a JSON answer");
    let field = |name: &str| {
        body[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} in {body}"))
            .to_owned()
    };
    Device {
        device_code: field("device_code"),
        user_code: field("user_code"),
        verification_uri_complete: field("verification_uri_complete"),
    }
}

/// The device's token request (RFC 8628 §3.4): status and body.
fn poll(server: &Server, device: &Device) -> (u16, Value) {
    let response = http()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", &device.device_code),
            ("client_id", "tv"),
        ])
        .send()
        .expect("the token endpoint answers");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// A person's browser: keeps cookies, follows nothing, and comes from
/// `address` (through the trusted proxy).
struct Visitor {
    client: reqwest::blocking::Client,
}

impl Visitor {
    fn from(address: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            address.parse().expect("an address header"),
        );
        Self {
            client: reqwest::blocking::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(headers)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
        }
    }

    fn page(response: reqwest::blocking::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    fn get(&self, server: &Server, path: &str) -> Page {
        Self::page(
            self.client
                .get(server.url(path))
                .send()
                .expect("the server answers"),
        )
    }

    fn post(&self, server: &Server, path: &str, form: &[(&str, &str)]) -> Page {
        Self::page(
            self.client
                .post(server.url(path))
                .form(form)
                .send()
                .expect("the server answers"),
        )
    }

    /// Opens the code entry page and submits `user_code`; the POST's answer.
    fn enter_code(&self, server: &Server, user_code: &str) -> Page {
        let form = self.get(server, STEP);
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.input("csrf_token");
        self.post(
            server,
            STEP,
            &[("csrf_token", &csrf), ("user_code", user_code)],
        )
    }

    /// From an accepted code to the consent page, signing alice in when the
    /// server asks.
    fn to_consent(&self, server: &Server, accepted: &Page) -> Page {
        assert_eq!(accepted.status, 303, "{}", accepted.body);
        let step = accepted.location();
        assert!(
            step.starts_with(&format!("{STEP}?transaction_id=")),
            "{step}"
        );
        let next = self.get(server, &step);
        if next.status != 302 {
            return next;
        }
        let login = next.location();
        assert!(login.starts_with("/login?transaction_id="), "{login}");
        let form = self.get(server, &login);
        assert_eq!(form.status, 200, "{}", form.body);
        assert!(form.body.contains("Living Room TV"), "{}", form.body);
        let signed_in = self.post(
            server,
            "/login",
            &[
                ("csrf_token", &form.input("csrf_token")),
                ("transaction_id", &form.input("transaction_id")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        );
        assert_eq!(signed_in.status, 303, "{}", signed_in.body);
        assert_eq!(signed_in.location(), step, "back to the user step");
        self.get(server, &step)
    }

    /// Answers the consent page: `allow` or `cancel`.
    fn decide(&self, server: &Server, consent: &Page, button: &str) -> Page {
        self.post(
            server,
            "/authorize/decision",
            &[
                ("transaction_id", &consent.input("transaction_id")),
                ("csrf_token", &consent.input("csrf_token")),
                (button, "1"),
            ],
        )
    }
}

fn assert_consent(page: &Page) {
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Authorize Living Room TV") && page.body.contains("<code>read</code>"),
        "the consent page names the client and the scope: {}",
        page.body
    );
}

// ---------------------------------------------------------------------------
// The tests

#[test]
fn a_person_enters_the_code_signs_in_and_allows_and_the_device_gets_its_token() {
    let (server, _config) = start(None);
    let device = start_device(&server, "read");
    let visitor = Visitor::from("198.51.100.1");

    let form = visitor.get(&server, STEP);
    assert_eq!(form.status, 200);
    let csp = form.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    assert_eq!(form.headers["x-frame-options"], "DENY");
    assert_eq!(form.headers["cache-control"], "no-store");

    // The plugin, not the host, reads the code: lowercase, no dash.
    let typed = device.user_code.replace('-', "").to_lowercase();
    let accepted = visitor.enter_code(&server, &typed);
    let consent = visitor.to_consent(&server, &accepted);
    assert_consent(&consent);
    assert!(
        !consent.body.contains("sent back to"),
        "no redirect: {}",
        consent.body
    );
    assert_eq!(poll(&server, &device).1["error"], "authorization_pending");

    let done = visitor.decide(&server, &consent, "allow");
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Access allowed"), "{}", done.body);
    assert!(done.body.contains("Go back to the screen"), "{}", done.body);

    let (status, token) = poll(&server, &device);
    assert_eq!(status, 200, "{token}");
    assert!(token["access_token"].is_string(), "{token}");
    assert_eq!(token["scope"], "read", "{token}");

    // The consent form is answered once.
    let again = visitor.decide(&server, &consent, "allow");
    assert_eq!(again.status, 403, "{}", again.body);

    // A signed-in person goes from the code straight to the consent page,
    // and is asked again for the same client: no remembered consent.
    let second = start_device(&server, "read");
    let accepted = visitor.enter_code(&server, &second.user_code);
    assert_eq!(accepted.status, 303);
    let consent = visitor.get(&server, &accepted.location());
    assert_consent(&consent);
}

#[test]
fn a_person_denies_and_the_device_hears_access_denied() {
    let (server, _config) = start(None);
    let device = start_device(&server, "read write");
    let visitor = Visitor::from("198.51.100.2");
    let consent = visitor.to_consent(&server, &visitor.enter_code(&server, &device.user_code));
    assert_consent(&consent);
    assert!(
        consent.body.contains("<code>write</code>"),
        "{}",
        consent.body
    );
    let done = visitor.decide(&server, &consent, "cancel");
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Access denied"), "{}", done.body);
    let (status, body) = poll(&server, &device);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("access_denied")),
        "{body}"
    );
}

#[test]
fn a_wrong_code_is_an_error_on_the_same_page_and_the_right_one_then_works() {
    let (server, _config) = start(None);
    let device = start_device(&server, "read");
    let visitor = Visitor::from("198.51.100.3");
    let wrong = visitor.enter_code(&server, "BBBB-BBBB");
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(
        wrong.body.contains("That code is not valid"),
        "{}",
        wrong.body
    );
    assert!(
        wrong.body.contains("value=\"BBBB-BBBB\""),
        "the entry stays: {}",
        wrong.body
    );
    let csrf = wrong.input("csrf_token");
    let right = visitor.post(
        &server,
        STEP,
        &[("csrf_token", &csrf), ("user_code", &device.user_code)],
    );
    assert_consent(&visitor.to_consent(&server, &right));
    assert!(server.logs().contains("wrong user code"), "logged");
}

#[test]
fn a_code_another_person_used_meanwhile_shows_the_plugins_message() {
    let (server, _config) = start(None);
    let device = start_device(&server, "read");
    let first = Visitor::from("198.51.100.8");
    let second = Visitor::from("198.51.100.9");
    let first_consent = first.to_consent(&server, &first.enter_code(&server, &device.user_code));
    let second_consent = second.to_consent(&server, &second.enter_code(&server, &device.user_code));
    assert_consent(&first_consent);
    assert_consent(&second_consent);
    let done = first.decide(&server, &first_consent, "allow");
    assert!(done.body.contains("Access allowed"), "{}", done.body);
    // The plugin refuses the second decision; the person reads why.
    let refused = second.decide(&server, &second_consent, "cancel");
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("this code was already used"),
        "{}",
        refused.body
    );
    assert_eq!(poll(&server, &device).0, 200, "the first decision stands");
}

#[test]
fn forms_without_their_csrf_token_are_refused() {
    let (server, _config) = start(None);
    let device = start_device(&server, "read");
    let visitor = Visitor::from("198.51.100.4");
    let _ = visitor.get(&server, STEP);
    for form in [
        vec![("user_code", device.user_code.as_str())],
        vec![
            ("user_code", device.user_code.as_str()),
            ("csrf_token", "forged"),
        ],
    ] {
        let refused = visitor.post(&server, STEP, &form);
        assert_eq!(refused.status, 403, "{}", refused.body);
    }
    let consent = visitor.to_consent(&server, &visitor.enter_code(&server, &device.user_code));
    assert_consent(&consent);
    let forged = visitor.post(
        &server,
        "/authorize/decision",
        &[
            ("transaction_id", &consent.input("transaction_id")),
            ("csrf_token", "forged"),
            ("allow", "1"),
        ],
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(poll(&server, &device).1["error"], "authorization_pending");
    // The refused post decided nothing: the real form still does.
    let done = visitor.decide(&server, &consent, "allow");
    assert!(done.body.contains("Access allowed"), "{}", done.body);
}

#[test]
fn the_complete_verification_uri_fills_the_code_in_and_waits_for_the_person() {
    let (server, _config) = start(None);
    let device = start_device(&server, "read");
    let visitor = Visitor::from("198.51.100.5");
    // Signed in already, so nothing but the confirmation stands between the
    // link and the consent page.
    let first = start_device(&server, "read");
    let consent = visitor.to_consent(&server, &visitor.enter_code(&server, &first.user_code));
    assert_consent(&consent);

    let link = url::Url::parse(&device.verification_uri_complete).expect("a URL");
    assert_eq!(link.path(), STEP);
    let path = format!("{STEP}?{}", link.query().expect("a query"));
    let filled = visitor.get(&server, &path);
    assert_eq!(filled.status, 200, "{}", filled.body);
    assert!(filled.body.contains("Enter your code"), "{}", filled.body);
    assert!(
        filled
            .body
            .contains(&format!("value=\"{}\"", device.user_code)),
        "pre-filled: {}",
        filled.body
    );
    assert!(!filled.body.contains("Authorize Living Room TV"));
    assert_eq!(poll(&server, &device).1["error"], "authorization_pending");

    let confirmed = visitor.post(
        &server,
        STEP,
        &[
            ("csrf_token", &filled.input("csrf_token")),
            ("user_code", &device.user_code),
        ],
    );
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    assert_consent(&visitor.get(&server, &confirmed.location()));
}

#[test]
fn wrong_codes_are_throttled_per_session_and_per_address() {
    let (server, _config) = start(None);
    let device = start_device(&server, "read");

    // One session: five wrong codes are answered, the sixth try waits,
    // even with the right code.
    let guesser = Visitor::from("203.0.113.10");
    for n in 0..5 {
        let wrong = guesser.enter_code(&server, "BBBB-BBBB");
        assert_eq!(wrong.status, 400, "wrong code {n}: {}", wrong.body);
    }
    let throttled = guesser.enter_code(&server, &device.user_code);
    assert_eq!(throttled.status, 429, "{}", throttled.body);
    assert!(
        throttled.body.contains("Too many wrong codes"),
        "{}",
        throttled.body
    );
    let retry_after: u64 = throttled.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // A new session from the same address is not slowed by one session's typos.
    let fresh = Visitor::from("203.0.113.10");
    assert_eq!(fresh.enter_code(&server, "BBBB-BBBB").status, 400);

    // One address, a new session every four guesses: the address brake
    // stops it at twenty, whatever the session.
    let address = "203.0.113.20";
    for session in 0..5 {
        let visitor = Visitor::from(address);
        for n in 0..4 {
            let wrong = visitor.enter_code(&server, "BBBB-BBBB");
            assert_eq!(
                wrong.status, 400,
                "session {session}, code {n}: {}",
                wrong.body
            );
        }
    }
    let next_session = Visitor::from(address);
    assert_eq!(
        next_session.enter_code(&server, &device.user_code).status,
        429
    );

    // Another address is not slowed by either.
    let person = Visitor::from("198.51.100.6");
    assert_consent(&person.to_consent(&server, &person.enter_code(&server, &device.user_code)));
}

/// Installs the device plugin into `plugins` as a directory plugin (which
/// replaces the bundled one of its name), at `version` with `interval`.
fn install_device_plugin(plugins: &std::path::Path, version: &str, interval: u32) {
    let manifest = std::fs::read_to_string(
        crate::harness::workspace().join("plugins/grant-device-code/plugin.toml"),
    )
    .expect("the device plugin's manifest");
    let manifest = manifest
        .replace("version = \"0.1.0\"", &format!("version = \"{version}\""))
        .replace("interval = 5", &format!("interval = {interval}"))
        .replace(
            "file = \"grant_device_code.wasm\"",
            "file = \"{wasm}\"\nsha256 = \"{sha256}\"",
        );
    assert!(
        manifest.contains(&format!("interval = {interval}")),
        "{manifest}"
    );
    install_plugin(
        plugins,
        "grant-device-code",
        &test_plugin_wasm("grant-device-code"),
        &manifest,
    );
}

/// The `interval` a new device is told.
fn interval(server: &Server) -> Value {
    let response = http()
        .post(server.url("/device_authorization"))
        .form(&[("client_id", "tv")])
        .send()
        .expect("the device authorization endpoint answers");
    response.json::<Value>().expect("JSON")["interval"].clone()
}

#[test]
fn a_step_pending_over_a_hot_swap_of_its_plugin_completes() {
    let plugins = tempfile::tempdir().expect("a plugin directory");
    install_device_plugin(plugins.path(), "0.1.0", 5);
    let (server, _config) = start(Some(plugins.path()));
    let device = start_device(&server, "read");
    let visitor = Visitor::from("198.51.100.7");
    let consent = visitor.to_consent(&server, &visitor.enter_code(&server, &device.user_code));
    assert_consent(&consent);

    // A new version (another interval) replaces it while the person reads
    // the consent page.
    install_device_plugin(plugins.path(), "0.1.1", 7);
    let reload = server.reload_plugins();
    let stdout = String::from_utf8_lossy(&reload.stdout);
    assert!(
        reload.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&reload.stderr)
    );
    assert!(stdout.contains("grant-device-code 0.1.1"), "{stdout}");
    assert_eq!(interval(&server), 7, "the new version answers new devices");

    let done = visitor.decide(&server, &consent, "allow");
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Access allowed"), "{}", done.body);
    let (status, token) = poll(&server, &device);
    assert_eq!(status, 200, "{token}");
}

#[test]
fn the_user_step_pages_clicked_through_in_chromium_keep_their_csp() {
    let test = "the_user_step_pages_clicked_through_in_chromium_keep_their_csp";
    let Some(driver) = Driver::start(test) else {
        return;
    };
    let (server, _config) = start(None);
    let device = start_device(&server, "read write");
    runtime().block_on(async {
        let browser = driver.session().await;
        browser
            .goto(&server.url(STEP))
            .await
            .expect("the user step opens");
        wait_heading(&browser, "Enter your code").await;
        assert_clean_console(&browser, "code entry page", &[]).await;
        screenshots(&browser, "user-code").await;

        let field = find(&browser, "input#user_code").await;
        field.send_keys("BBBB-BBBB").await.expect("a code typed");
        click(&browser, "form button[type=submit]").await;
        find(&browser, ".error[role=alert]").await;
        wait_heading(&browser, "Enter your code").await;
        assert_clean_console(&browser, "code entry page after a wrong code", &[400]).await;
        screenshots(&browser, "user-code-error").await;

        let field = find(&browser, "input#user_code").await;
        field.clear().await.expect("the field clears");
        field
            .send_keys(&device.user_code)
            .await
            .expect("a code typed");
        click(&browser, "form button[type=submit]").await;
        wait_heading(&browser, "Sign in").await;
        assert!(text(&browser).await.contains("Living Room TV"));
        assert_clean_console(&browser, "login page of a user step", &[]).await;
        type_sign_in(&browser, "alice", PASSWORD).await;
        wait_heading(&browser, "Authorize Living Room TV").await;
        assert_clean_console(&browser, "consent page of a user step", &[]).await;
        screenshots(&browser, "user-code-consent").await;

        click(&browser, "button[name=allow]").await;
        wait_heading(&browser, "Access allowed").await;
        assert_clean_console(&browser, "done page", &[]).await;
        screenshots(&browser, "user-code-done").await;
        browser.close().await.expect("the session closes");
    });
    let (status, token) = poll(&server, &device);
    assert_eq!(status, 200, "{token}");
}
