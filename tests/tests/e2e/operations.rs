//! What an operator relies on: the compiled-plugin cache is verified before
//! use, templates can be replaced, legacy grants are called out at start,
//! and sign-out ends the session.

use std::sync::Arc;

use crate::harness::{
    Browser, Options, Server, alice_password_request, client_credentials_request,
    confidential_client, server_with_alice, service_client, token_request, user_add, web_client,
};

#[test]
fn a_corrupted_compiled_plugin_is_detected_and_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let env = vec![(
        "GRANTBOX_CACHE_DIR".to_owned(),
        cache.path().display().to_string(),
    )];
    let server = Server::start_with(Options {
        env: env.clone(),
        ..Default::default()
    });
    let dir = server.kill();
    let artifacts: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(
        artifacts.len(),
        6,
        "one compiled artifact per bundled plugin: {artifacts:?}"
    );
    for artifact in &artifacts {
        let mut bytes = std::fs::read(artifact).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        std::fs::write(artifact, bytes).unwrap();
    }
    let server = Server::start_with(Options {
        env,
        dir: Some(dir),
        ..Default::default()
    });
    assert!(
        server
            .logs()
            .contains("cached plugin failed its checksum; recompiling"),
        "{}",
        server.logs()
    );
    let secret = service_client(&server, &[]);
    let (status, _, _) = client_credentials_request(&server, &secret, None);
    assert_eq!(status, 200, "the recompiled plugin serves");
}

#[test]
fn operators_replace_templates_and_a_broken_one_stops_the_start() {
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("error.html"),
        "<!doctype html><title>{{ title }}</title><p id=custom>Custom: {{ message }}</p>",
    )
    .unwrap();
    let config = templates.path().join("grantbox.toml");
    std::fs::write(
        &config,
        format!("templates = {:?}\n", templates.path().display().to_string()),
    )
    .unwrap();
    let env = vec![("GRANTBOX_CONFIG".to_owned(), config.display().to_string())];
    let server = Server::start_with(Options {
        env: env.clone(),
        ..Default::default()
    });
    let page = Browser::new().get(&server.url("/authorize?client_id=nobody"));
    assert!(page.body.contains("<p id=custom>Custom: "), "{}", page.body);
    assert_eq!(
        page.headers["x-frame-options"], "DENY",
        "headers stay on custom pages"
    );
    drop(server);

    std::fs::write(templates.path().join("login.html"), "{% if %}broken").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("g.db").display());
    let output = std::process::Command::new(crate::harness::binary())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("GRANTBOX_DB", db)
        .env("GRANTBOX_CONFIG", &config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("login.html: line 1"), "{stderr}");
}

#[test]
fn legacy_grants_are_called_out_at_start() {
    let server = Server::start();
    assert!(
        !server.logs().contains("legacy grant"),
        "no client, no call-out: {}",
        server.logs()
    );
    server.client_add(&["kiosk", "--grant-type", "password"]);
    let dir: Arc<tempfile::TempDir> = server.kill();
    let server = Server::start_with(Options {
        dir: Some(dir),
        ..Default::default()
    });
    // stderr is read on a thread of its own: give it a moment to catch up.
    for _ in 0..50 {
        if server.logs().contains("legacy grant") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let logs = server.logs();
    let call_out = logs
        .lines()
        .find(|line| line.contains("legacy grant"))
        .unwrap_or_else(|| panic!("no legacy grant warning: {logs}"));
    // The warning names the grant type and the client that uses it.
    assert!(
        call_out.contains("grant_type=\"password\"") && call_out.contains("clients=[\"kiosk\"]"),
        "{call_out}"
    );
}

#[test]
fn sign_out_ends_the_session() {
    let server = server_with_alice();
    let browser = Browser::new();
    assert_eq!(
        browser
            .sign_in(&server, "/login", "alice", "correct horse battery staple")
            .status,
        303
    );
    let signed_in = browser.get(&server.url("/login"));
    let csrf = signed_in.input("csrf_token");
    let forged = browser.post(&server.url("/logout"), &[("csrf_token", "forged")]);
    assert_eq!(forged.status, 403);
    let out = browser.post(&server.url("/logout"), &[("csrf_token", &csrf)]);
    assert_eq!((out.status, out.location().as_str()), (303, "/login"));
    let login = browser.get(&server.url("/login"));
    assert!(
        login.body.contains("name=\"password\""),
        "signed out: {}",
        login.body
    );
}

#[test]
fn configured_lifetimes_bound_access_and_refresh_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("grantbox.toml");
    std::fs::write(
        &config,
        "[tokens]\naccess_token_lifetime = 120\nrefresh_token_idle_lifetime = 100\nrefresh_token_absolute_lifetime = 4\n",
    )
    .unwrap();
    let server = Server::start_with(Options {
        env: vec![("GRANTBOX_CONFIG".into(), config.display().to_string())],
        ..Default::default()
    });
    user_add(&server, "alice", "correct horse battery staple");
    let secret = confidential_client(&server, "app", &["password", "refresh_token"], &[]);
    let (status, body, _) = alice_password_request(&server, "app", &secret, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 120);
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body, _) = token_request(
        &server,
        "app",
        &secret,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    assert_eq!(status, 200, "within the absolute lifetime: {body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    std::thread::sleep(std::time::Duration::from_millis(5100));
    let (status, body, _) = token_request(
        &server,
        "app",
        &secret,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "rotation does not extend the family past its absolute lifetime: {body}"
    );
}

#[test]
fn behind_a_trusted_proxy_login_throttling_counts_the_forwarded_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("grantbox.toml");
    std::fs::write(&config, "trusted_proxies = [\"127.0.0.1\"]\n").unwrap();
    let server = Server::start_with(Options {
        env: vec![("GRANTBOX_CONFIG".into(), config.display().to_string())],
        ..Default::default()
    });
    let client = reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let attempt = |username: &str, forwarded_for: &str| {
        let login = client
            .get(server.url("/login"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        let marker = "name=\"csrf_token\" value=\"";
        let start = login.find(marker).unwrap() + marker.len();
        let csrf = &login[start..start + login[start..].find('"').unwrap()];
        client
            .post(server.url("/login"))
            .header("x-forwarded-for", format!("203.0.113.9, {forwarded_for}"))
            .form(&[
                ("username", username),
                ("password", "wrong password"),
                ("csrf_token", csrf),
            ])
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // The per-address limit is 20 failures in the window, whoever the user.
    for i in 0..20 {
        assert_eq!(attempt(&format!("user{i}"), "10.0.0.1"), 401);
    }
    assert_eq!(
        attempt("someone", "10.0.0.1"),
        429,
        "the forwarded address is throttled"
    );
    assert_eq!(
        attempt("someone", "10.0.0.2"),
        401,
        "another client behind the proxy is not"
    );
}

#[test]
fn the_consent_page_describes_scopes_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("grantbox.toml");
    std::fs::write(&config, "[scopes]\nread = \"Read your <profile>\"\n").unwrap();
    let server = Server::start_with(Options {
        env: vec![("GRANTBOX_CONFIG".into(), config.display().to_string())],
        ..Default::default()
    });
    user_add(&server, "alice", "correct horse battery staple");
    web_client(
        &server,
        "https://app.example/cb",
        &[
            "--client-uri",
            "https://app.example/about",
            "--scope",
            "read",
            "--scope",
            "write",
        ],
    );
    let browser = Browser::new();
    let first = browser.get(&server.url(
        "/authorize?response_type=code&client_id=web&redirect_uri=https://app.example/cb&state=s",
    ));
    let after_login = browser.sign_in(
        &server,
        &first.location(),
        "alice",
        "correct horse battery staple",
    );
    let consent = browser.get(&server.url(&after_login.location()));
    assert!(
        consent.body.contains("Read your &lt;profile&gt;"),
        "described and escaped: {}",
        consent.body
    );
    assert!(
        consent.body.contains("<code>write</code>"),
        "an undescribed scope shows its name"
    );
}

/// Voluntary context switches of the server's epoch-ticker thread (Linux).
fn epoch_ticker_wakeups(server: &Server) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).expect("/proc");
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == "grantbox-epoch" {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            return status
                .lines()
                .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|count| count.trim().parse().ok())
                .expect("voluntary_ctxt_switches");
        }
    }
    panic!("no grantbox-epoch thread in the server");
}

/// An idle server does not wake up every millisecond: the epoch ticker that
/// enforces plugin deadlines runs only while a call is in flight (faults.rs
/// shows deadlines still stop a spinning plugin that starts on an idle one).
#[test]
fn an_idle_server_lets_the_epoch_ticker_sleep() {
    let server = Server::start();
    let secret = service_client(&server, &[]);
    let (status, _, _) = client_credentials_request(&server, &secret, None);
    assert_eq!(status, 200);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = epoch_ticker_wakeups(&server);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let idle = epoch_ticker_wakeups(&server) - before;
    // Ticking, it would wake ~1,000 times in that second.
    assert!(
        idle < 20,
        "the epoch ticker woke {idle} times in an idle second"
    );
    let (status, _, _) = client_credentials_request(&server, &secret, None);
    assert_eq!(status, 200, "a call after the idle second is served");
}
