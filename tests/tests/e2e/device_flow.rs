//! The device authorization grant (RFC 8628) over the real binary, with the
//! bundled `grant-device-code` plugin: a device client nobody here wrote (the
//! `oauth2` crate's device flow) gets tokens after a person enters the code
//! in the scripted browser; the answers of polling (pending, slow down,
//! denial, expiry on the test clock, once only, bound to the client); wrong
//! and reused user codes; a refresh token only for a client registered for
//! it; and a hot swap of the plugin while a device waits.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse,
    TokenResponse as _, TokenUrl,
};
use serde_json::Value;

use crate::harness::{
    Browser, Options, PASSWORD, Page, Server, assert_oauth_error, confidential_client, grantbox,
    http, sha256_hex, text, token_request, user_add,
};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The user step the plugin declares: the `verification_uri`.
const STEP: &str = "/device";

/// The bundled plugins exported into a plugin directory, the device plugin's
/// `[config] interval` set to `interval` (so a poll loop need not wait 5 s)
/// and its version to `version`; the wasm under `wasm_file`.
fn export_device_plugin(plugins: &Path, interval: u32, version: &str, wasm_file: &str) {
    let exported = tempfile::tempdir().unwrap();
    let output = grantbox(
        "sqlite::memory:",
        &["plugins", "export", &exported.path().display().to_string()],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let source = exported.path().join("grant-device-code");
    let folder = plugins.join("grant-device-code");
    std::fs::create_dir_all(&folder).unwrap();
    let wasm = std::fs::read(source.join("grant_device_code.wasm")).unwrap();
    // The wasm first, under a name of its own, then the manifest naming it.
    std::fs::write(folder.join(wasm_file), &wasm).unwrap();
    let manifest = std::fs::read_to_string(source.join("plugin.toml")).unwrap();
    assert!(manifest.contains("interval = 5\n"), "{manifest}");
    let manifest = manifest
        .replace("interval = 5\n", &format!("interval = {interval}\n"))
        .replace("version = \"0.1.0\"", &format!("version = \"{version}\""))
        .replace(
            "file = \"grant_device_code.wasm\"",
            &format!("file = \"{wasm_file}\""),
        );
    assert!(manifest.contains(&sha256_hex(&wasm)), "{manifest}");
    let temporary = folder.join("plugin.toml.partial");
    std::fs::write(&temporary, manifest).unwrap();
    std::fs::rename(&temporary, folder.join("plugin.toml")).unwrap();
}

/// alice, the public device client `tv` (read, write) and the confidential
/// `console` registered for the device grant and refresh tokens (read);
/// returns console's secret.
fn register(server: &Server) -> String {
    user_add(server, "alice", PASSWORD);
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
    confidential_client(
        server,
        "console",
        &[DEVICE_GRANT, "refresh_token"],
        &["read"],
    )
}

/// A device authorization response (RFC 8628 §3.2), as JSON.
struct Device {
    device_code: String,
    user_code: String,
    body: Value,
}

/// The public client `tv`'s device authorization request: status and body.
fn device_authorization(server: &Server, form: &[(&str, &str)]) -> (u16, Value) {
    let response = http()
        .post(server.url("/device_authorization"))
        .form(form)
        .send()
        .expect("the device authorization endpoint answers");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn start_tv(server: &Server, scope: &str) -> Device {
    let (status, body) = device_authorization(server, &[("client_id", "tv"), ("scope", scope)]);
    assert_eq!(status, 200, "{body}");
    Device {
        device_code: body["device_code"].as_str().unwrap().to_owned(),
        user_code: body["user_code"].as_str().unwrap().to_owned(),
        body,
    }
}

/// `tv`'s token request for `device`: status and body.
fn poll_tv(server: &Server, device: &Device) -> (u16, Value) {
    let response = http()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("client_id", "tv"),
            ("device_code", &device.device_code),
        ])
        .send()
        .expect("the token endpoint answers");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// A person at the user step: submits `typed` on the code entry form (opened
/// at `entry`, the `verification_uri` or `verification_uri_complete`).
fn enter_code(browser: &Browser, server: &Server, entry: &str, typed: &str) -> Page {
    let form = browser.get(entry);
    assert_eq!(form.status, 200, "{}", form.body);
    browser.post(
        &server.url(STEP),
        &[
            ("csrf_token", &form.input("csrf_token")),
            ("user_code", typed),
        ],
    )
}

/// From an accepted code to the consent page, signing alice in when asked.
fn consent_page(browser: &Browser, server: &Server, accepted: &Page) -> Page {
    assert_eq!(
        accepted.status, 303,
        "the code is accepted: {}",
        accepted.body
    );
    let step = server.url(&accepted.location());
    let next = browser.get(&step);
    if next.status != 302 {
        return next;
    }
    let signed_in = browser.sign_in(server, &next.location(), "alice", PASSWORD);
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    browser.get(&server.url(&signed_in.location()))
}

/// Answers a consent page with `button` (`allow` or `cancel`).
fn decide(browser: &Browser, server: &Server, consent: &Page, button: &str) -> Page {
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(
        consent.body.contains("Living Room TV") || consent.body.contains("console"),
        "the consent page names the client: {}",
        consent.body
    );
    let done = browser.post(
        &server.url("/authorize/decision"),
        &[
            ("transaction_id", &consent.input("transaction_id")),
            ("csrf_token", &consent.input("csrf_token")),
            (button, "1"),
        ],
    );
    assert_eq!(done.status, 200, "{}", done.body);
    done
}

/// A person enters `typed` at the user step, signs in if asked and answers
/// with `button`.
fn person_decides(browser: &Browser, server: &Server, typed: &str, button: &str) {
    let accepted = enter_code(browser, server, &server.url(STEP), typed);
    let consent = consent_page(browser, server, &accepted);
    decide(browser, server, &consent, button);
}

/// The code entry form answered a code it does not take: no step begins, and
/// the form says so.
fn assert_refused_code(page: &Page) {
    assert_ne!(
        page.status, 303,
        "a wrong code begins no step: {}",
        page.body
    );
    assert!(page.body.contains("role=\"alert\""), "{}", page.body);
}

#[test]
fn the_oauth2_crate_gets_tokens_after_a_person_enters_the_code() {
    let plugins = tempfile::tempdir().unwrap();
    export_device_plugin(plugins.path(), 1, "0.1.0", "grant_device_code.wasm");
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    register(&server);

    // The metadata tells a client where the device flow starts (RFC 8628 §4).
    let metadata = server.metadata();
    assert_eq!(
        metadata["device_authorization_endpoint"],
        server.url("/device_authorization")
    );
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from(DEVICE_GRANT)),
        "{metadata}"
    );

    let client = BasicClient::new(ClientId::new("tv".into()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(
                metadata["device_authorization_endpoint"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
            .unwrap(),
        )
        .set_token_uri(TokenUrl::new(server.url("/token")).unwrap());
    let http = http();
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("read".into()))
        .request(&http)
        .expect("the device authorization response");
    let user_code = details.user_code().secret().clone();
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(&user_code[4..5], "-", "{user_code}");
    assert!(
        user_code
            .chars()
            .filter(|c| *c != '-')
            .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{user_code}"
    );
    assert_eq!(details.verification_uri().as_str(), server.url(STEP));
    let complete = details
        .verification_uri_complete()
        .expect("verification_uri_complete")
        .secret()
        .clone();
    assert_eq!(
        complete,
        server.url(&format!("{STEP}?user_code={user_code}"))
    );
    assert_eq!(details.interval(), Duration::from_secs(1));
    assert_eq!(details.expires_in(), Duration::from_secs(600));

    // The device polls (the crate's own loop, its own sleep) while the
    // person, on another device, opens verification_uri_complete.
    let device_code = details.device_code().secret().clone();
    let poller = std::thread::spawn(move || {
        let http = crate::harness::http();
        client
            .exchange_device_access_token(&details)
            .request(&http, std::thread::sleep, Some(Duration::from_secs(60)))
            .map_err(|error| format!("{error:?}"))
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        !poller.is_finished(),
        "still pending before the person acts"
    );

    let browser = Browser::new();
    // The pre-filled form (RFC 8628 §5.4) still waits for the person.
    let form = browser.get(&complete);
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains(&user_code), "pre-filled: {}", form.body);
    let accepted = enter_code(&browser, &server, &complete, &user_code);
    let consent = consent_page(&browser, &server, &accepted);
    assert!(consent.body.contains("read"), "{}", consent.body);
    decide(&browser, &server, &consent, "allow");

    let token = poller
        .join()
        .unwrap()
        .expect("the crate's poll loop ends with tokens");
    assert_eq!(
        token
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["read".to_owned()])
    );
    assert!(
        token.refresh_token().is_none(),
        "tv is not registered for refresh_token"
    );

    // The tokens were issued once: the next poll is invalid_grant.
    let device = Device {
        device_code,
        user_code,
        body: Value::Null,
    };
    let (status, body) = poll_tv(&server, &device);
    assert_oauth_error((status, &body), 400, "invalid_grant");
}

#[test]
fn polls_answer_pending_slow_down_denial_and_tokens_once() {
    let server = Server::start();
    let console_secret = register(&server);

    // Only a client registered for the grant starts it, within its scope.
    let web = confidential_client(&server, "web", &["client_credentials"], &["read"]);
    let response = http()
        .post(server.url("/device_authorization"))
        .basic_auth("web", Some(&web))
        .form(&[("scope", "read")])
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap();
    assert_oauth_error((status, &body), 400, "unauthorized_client");
    let (status, body) = device_authorization(&server, &[("client_id", "tv"), ("scope", "admin")]);
    assert_oauth_error((status, &body), 400, "invalid_scope");

    let device = start_tv(&server, "read write");
    assert_eq!(device.body["interval"], 5);
    assert_eq!(device.body["verification_uri"], server.url(STEP));
    let (status, body) = poll_tv(&server, &device);
    assert_oauth_error((status, &body), 400, "authorization_pending");
    // Again at once, well within the 5 s interval: slow down (RFC 8628 §3.5).
    let (status, body) = poll_tv(&server, &device);
    assert_oauth_error((status, &body), 400, "slow_down");

    // A wrong code is refused on the same page; the right one, typed in
    // lower case without its dash, is taken.
    let browser = Browser::new();
    let wrong = enter_code(&browser, &server, &server.url(STEP), "BCDF-GHJK");
    assert_refused_code(&wrong);
    let typed = device.user_code.replace('-', "").to_lowercase();
    person_decides(&browser, &server, &typed, "allow");

    // Approved: tokens, whatever the interval grew to; then never again.
    let (status, body) = poll_tv(&server, &device);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read write", "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let (status, body) = poll_tv(&server, &device);
    assert_oauth_error((status, &body), 400, "invalid_grant");
    // The used user code is refused like a wrong one.
    assert_refused_code(&enter_code(
        &browser,
        &server,
        &server.url(STEP),
        &device.user_code,
    ));

    // Denied: access_denied, and no tokens.
    let denied = start_tv(&server, "read");
    person_decides(&browser, &server, &denied.user_code, "cancel");
    let (status, body) = poll_tv(&server, &denied);
    assert_oauth_error((status, &body), 400, "access_denied");

    // A device code answers only the client that asked for it.
    let bound = start_tv(&server, "read");
    person_decides(&browser, &server, &bound.user_code, "allow");
    let (status, body, _) = token_request(
        &server,
        "console",
        &console_secret,
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", &bound.device_code),
        ],
    );
    assert_oauth_error((status, &body), 400, "invalid_grant");
    let (status, body) = poll_tv(&server, &bound);
    assert_eq!(
        status, 200,
        "the other client's poll used nothing up: {body}"
    );
}

#[test]
fn a_client_registered_for_refresh_tokens_gets_one() {
    let server = Server::start();
    let secret = register(&server);
    let response = http()
        .post(server.url("/device_authorization"))
        .basic_auth("console", Some(&secret))
        .form(&[("scope", "read")])
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().unwrap();
    let device_code = body["device_code"].as_str().unwrap().to_owned();
    let browser = Browser::new();
    let user_code = body["user_code"].as_str().unwrap().to_owned();
    person_decides(&browser, &server, &user_code, "allow");

    let (status, body, _) = token_request(
        &server,
        "console",
        &secret,
        &[("grant_type", DEVICE_GRANT), ("device_code", &device_code)],
    );
    assert_eq!(status, 200, "{body}");
    let refresh_token = body["refresh_token"].as_str().expect("a refresh token");
    let (status, body, _) = token_request(
        &server,
        "console",
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    );
    assert_eq!(status, 200, "the refresh token works: {body}");
}

#[test]
fn a_device_code_expires_on_the_test_clock() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let server = Server::start_with(Options {
        dir: Some(dir.clone()),
        ..Default::default()
    });
    register(&server);
    let device = start_tv(&server, "read");
    let (status, body) = poll_tv(&server, &device);
    assert_oauth_error((status, &body), 400, "authorization_pending");

    // The same database 601 s later: past expires_in (600).
    drop(server.kill());
    let server = Server::start_with(Options {
        dir: Some(dir),
        env: vec![("GRANTBOX_CLOCK_OFFSET".into(), "601".into())],
        ..Default::default()
    });
    let (status, body) = poll_tv(&server, &device);
    assert_oauth_error((status, &body), 400, "expired_token");
    let browser = Browser::new();
    assert_refused_code(&enter_code(
        &browser,
        &server,
        &server.url(STEP),
        &device.user_code,
    ));
}

#[test]
fn a_device_flow_pending_across_a_hot_swap_completes() {
    let plugins = tempfile::tempdir().unwrap();
    export_device_plugin(plugins.path(), 5, "0.1.0", "grant_device_code-1.wasm");
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    register(&server);
    let device = start_tv(&server, "read");
    let (status, body) = poll_tv(&server, &device);
    assert_oauth_error((status, &body), 400, "authorization_pending");

    // Version 0.2.0, with a different interval, swapped in while it waits.
    export_device_plugin(plugins.path(), 7, "0.2.0", "grant_device_code-2.wasm");
    let output = server.reload_plugins();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let serving: Value = server
        .admin_request(reqwest::Method::GET, "/admin/plugins")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(serving.to_string().contains("0.2.0"), "{serving}");
    assert_eq!(start_tv(&server, "read").body["interval"], 7);

    // The new version knows the device the old one started.
    let browser = Browser::new();
    person_decides(&browser, &server, &device.user_code, "allow");
    let (status, body) = poll_tv(&server, &device);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read");
}
