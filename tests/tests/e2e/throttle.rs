//! Failed sign-ins slow the attacker down and lock nobody out: counted per
//! username and address together on the login page and the password grant
//! alike, 429 with a growing `Retry-After`, brakes against
//! spraying and distributed guessing, and counters in the database, shared
//! by two instances on PostgreSQL and kept across a restart on SQLite.
//! Addresses come from `X-Forwarded-For` behind the trusted proxy 127.0.0.1.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Options, Server, text, user_add};

const PASSWORD: &str = "correct horse battery staple";
const ATTACKER: &str = "203.0.113.66";
const ALICE_AT_HOME: &str = "198.51.100.7";

/// A config file trusting the test's own proxy (127.0.0.1), plus `extra`.
fn config_options(extra: &str) -> (Options, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("grantbox.toml");
    std::fs::write(
        &config,
        format!("trusted_proxies = [\"127.0.0.1\"]\n{extra}"),
    )
    .expect("the config is written");
    let options = Options {
        env: vec![("GRANTBOX_CONFIG".into(), config.display().to_string())],
        ..Default::default()
    };
    (options, dir)
}

/// A server with `alice` and a public password-grant client `legacy`.
fn start(extra_config: &str) -> (Server, tempfile::TempDir) {
    let (options, config_dir) = config_options(extra_config);
    let server = Server::start_with(options);
    prepare(&server);
    (server, config_dir)
}

fn prepare(server: &Server) {
    user_add(server, "alice", PASSWORD);
    server.client_add(&["legacy", "--public", "--grant-type", "password"]);
}

/// One answer as the test sees it.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    content_type: String,
    cache_control: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

fn answer(response: reqwest::blocking::Response) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = header("retry-after").map(|v| v.parse().expect("Retry-After is seconds"));
    let content_type = header("content-type").unwrap_or_default();
    let cache_control = header("cache-control");
    let status = response.status().as_u16();
    let body = text(&response.bytes().unwrap_or_default());
    Answer {
        status,
        retry_after,
        content_type,
        cache_control,
        body,
    }
}

/// Signs in on the login page from `address` (forwarded by the trusted
/// proxy), with a fresh browser session and its CSRF token.
fn login(server: &Server, address: &str, username: &str, password: &str) -> Answer {
    let browser = reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");
    let page = browser
        .get(server.url("/login"))
        .header("x-forwarded-for", address)
        .send()
        .and_then(|r| r.text())
        .expect("the login page");
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).expect("a CSRF token") + marker.len();
    let csrf = &page[start..start + page[start..].find('"').expect("a closed attribute")];
    answer(
        browser
            .post(server.url("/login"))
            .header("x-forwarded-for", address)
            .form(&[
                ("username", username),
                ("password", password),
                ("csrf_token", csrf),
            ])
            .send()
            .expect("the login form answers"),
    )
}

/// The password grant from `address` through the public client: no session,
/// no CSRF token.
fn password_grant(server: &Server, address: &str, username: &str, password: &str) -> Answer {
    answer(
        crate::harness::http()
            .post(server.url("/token"))
            .header("x-forwarded-for", address)
            .form(&[
                ("grant_type", "password"),
                ("client_id", "legacy"),
                ("username", username),
                ("password", password),
            ])
            .send()
            .expect("the token endpoint answers"),
    )
}

/// Fails `count` times for `username` from `address` on the login page.
fn fail_logins(server: &Server, address: &str, username: &str, count: usize) {
    for attempt in 1..=count {
        let failed = login(server, address, username, "a wrong guess");
        assert_eq!(failed.status, 401, "failure {attempt}: {}", failed.body);
    }
}

/// A throttled login page: 429, the page with its message, `Retry-After`.
fn assert_login_throttled(answer: &Answer, why: &str) -> u64 {
    assert_eq!(answer.status, 429, "{why}: {}", answer.body);
    assert!(
        answer.content_type.starts_with("text/html")
            && answer.body.contains("Too many failed attempts"),
        "{why}: the login page says why: {}",
        answer.body
    );
    answer.retry_after.expect("Retry-After on a 429")
}

/// A throttled token request: 429, `Retry-After`, an RFC 6749 JSON error.
fn assert_token_throttled(answer: &Answer, why: &str) -> u64 {
    assert_eq!(answer.status, 429, "{why}: {}", answer.body);
    assert!(
        answer.content_type.starts_with("application/json"),
        "{why}: {}",
        answer.content_type
    );
    assert_eq!(
        answer.json()["error"],
        "temporarily_unavailable",
        "{why}: {}",
        answer.body
    );
    answer.retry_after.expect("Retry-After on a 429")
}

#[test]
fn an_attack_from_one_address_does_not_lock_alice_out_of_the_login_page() {
    let (server, _config) = start("");
    // Five failures: the allowance of a username and address.
    fail_logins(&server, ATTACKER, "alice", 5);
    let retry_after = assert_login_throttled(
        &login(&server, ATTACKER, "alice", PASSWORD),
        "the attacker's address waits, even with the right password",
    );
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let alice = login(&server, ALICE_AT_HOME, "alice", PASSWORD);
    assert_eq!(
        alice.status, 303,
        "alice signs in from her own address: {}",
        alice.body
    );
    // The same through the password grant: the counters are shared.
    assert_token_throttled(
        &password_grant(&server, ATTACKER, "alice", PASSWORD),
        "the password grant from the attacker's address",
    );
    let alice = password_grant(&server, ALICE_AT_HOME, "alice", PASSWORD);
    assert_eq!(alice.status, 200, "{}", alice.body);
}

#[test]
fn an_attack_through_the_password_grant_does_not_lock_alice_out() {
    let (server, _config) = start("");
    for attempt in 1..=5 {
        let failed = password_grant(&server, ATTACKER, "alice", "a wrong guess");
        assert_eq!(
            (failed.status, failed.json()["error"].as_str()),
            (400, Some("invalid_grant")),
            "failure {attempt}: {}",
            failed.body
        );
    }
    let throttled = password_grant(&server, ATTACKER, "alice", PASSWORD);
    let retry_after = assert_token_throttled(&throttled, "the attacker waits");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        throttled.cache_control.as_deref(),
        Some("no-store"),
        "a 429 of the token endpoint is not cached either"
    );

    let alice = password_grant(&server, ALICE_AT_HOME, "alice", PASSWORD);
    assert_eq!(
        alice.status, 200,
        "alice gets a token from her own address: {}",
        alice.body
    );
    assert!(alice.json()["access_token"].is_string());
    let alice = login(&server, ALICE_AT_HOME, "alice", PASSWORD);
    assert_eq!(alice.status, 303, "and signs in: {}", alice.body);
    assert_login_throttled(
        &login(&server, ATTACKER, "alice", PASSWORD),
        "the login page knows the password grant's failures",
    );
}

#[test]
fn the_password_grant_is_throttled_per_address_as_the_login_page_is() {
    let (server, _config) = start("");
    // Spraying: one guess each for many usernames from one address. The
    // default brake is 20 failures an address.
    for i in 0..20 {
        let failed = password_grant(&server, ATTACKER, &format!("user{i}"), "Winter2026!");
        assert_eq!(failed.status, 400, "user{i}: {}", failed.body);
    }
    assert_token_throttled(
        &password_grant(&server, ATTACKER, "someone", "Winter2026!"),
        "the spraying address is braked",
    );
    assert_login_throttled(
        &login(&server, ATTACKER, "someone", "Winter2026!"),
        "on the login page too",
    );
    let other = password_grant(&server, ALICE_AT_HOME, "someone", "Winter2026!");
    assert_eq!(
        (other.status, other.json()["error"].as_str()),
        (400, Some("invalid_grant")),
        "another address is not braked: {}",
        other.body
    );
    let alice = password_grant(&server, ALICE_AT_HOME, "alice", PASSWORD);
    assert_eq!(alice.status, 200, "{}", alice.body);
}

#[test]
fn the_attackers_wait_grows_with_each_failure() {
    let (server, _config) = start(
        "[login_throttle]\nfree_failures = 3\nwait_increment_seconds = 2\nmax_wait_seconds = 60\n",
    );
    fail_logins(&server, ATTACKER, "alice", 3);
    let first = assert_login_throttled(
        &login(&server, ATTACKER, "alice", "a wrong guess"),
        "after three failures",
    );
    assert!((1..=2).contains(&first), "one increment: {first}");
    std::thread::sleep(Duration::from_millis(first * 1000 + 200));
    fail_logins(&server, ATTACKER, "alice", 1);
    let second = assert_token_throttled(
        &password_grant(&server, ATTACKER, "alice", PASSWORD),
        "after the fourth failure",
    );
    assert!(
        second > first && (3..=4).contains(&second),
        "two increments: {second} after {first}"
    );
}

#[test]
fn guessing_one_username_from_many_addresses_hits_a_brake() {
    let (server, _config) = start("[login_throttle]\nusername_failures = 6\n");
    for i in 1..=6 {
        fail_logins(&server, &format!("10.0.0.{i}"), "alice", 1);
    }
    assert_login_throttled(
        &login(&server, "10.0.0.1", "alice", "another guess"),
        "past the username brake an address that failed waits after one failure",
    );
    let alice = login(&server, ALICE_AT_HOME, "alice", PASSWORD);
    assert_eq!(
        alice.status, 303,
        "an address with no failure still signs in: {}",
        alice.body
    );
    let newcomer = password_grant(&server, "10.0.0.7", "alice", "yet another guess");
    assert_eq!(newcomer.status, 400, "{}", newcomer.body);
    assert_token_throttled(
        &password_grant(&server, "10.0.0.7", "alice", "and another"),
        "a new address gets one guess",
    );
}

#[test]
fn the_counters_survive_a_restart_until_they_reset() {
    let (options, config_dir) = config_options("");
    let config_env = options.env.clone();
    let server = Server::start_with(options);
    prepare(&server);
    fail_logins(&server, ATTACKER, "alice", 5);
    let dir = server.kill();

    let restarted = Server::start_with(Options {
        dir: Some(dir.clone()),
        env: config_env.clone(),
        ..Default::default()
    });
    assert_login_throttled(
        &login(&restarted, ATTACKER, "alice", PASSWORD),
        "the failures survive the restart",
    );
    let alice = login(&restarted, ALICE_AT_HOME, "alice", PASSWORD);
    assert_eq!(alice.status, 303, "{}", alice.body);
    drop(restarted.kill());

    // Past the failure reset time (12 hours by default) the counter starts again.
    let mut env = config_env;
    env.push(("GRANTBOX_CLOCK_OFFSET".into(), (12 * 3600 + 60).to_string()));
    let later = Server::start_with(Options {
        dir: Some(dir),
        env,
        ..Default::default()
    });
    let attacker = login(&later, ATTACKER, "alice", PASSWORD);
    assert_eq!(attacker.status, 303, "reset: {}", attacker.body);
    drop(config_dir);
}

#[test]
fn postgres_two_instances_share_the_counters() {
    let (options, _config_dir) = config_options("");
    let env = options.env.clone();
    let Some(first) = Server::start_postgres("postgres_two_instances_share_the_counters", options)
    else {
        return;
    };
    let second = Server::start_with(Options {
        db: Some(first.db.clone()),
        env,
        ..Default::default()
    });
    prepare(&first);
    // Five failures in all, split between the instances.
    fail_logins(&first, ATTACKER, "alice", 3);
    for attempt in 1..=2 {
        let failed = password_grant(&second, ATTACKER, "alice", "a wrong guess");
        assert_eq!(failed.status, 400, "failure {attempt}: {}", failed.body);
    }
    assert_login_throttled(
        &login(&first, ATTACKER, "alice", PASSWORD),
        "the first instance counts the second's failures",
    );
    assert_token_throttled(
        &password_grant(&second, ATTACKER, "alice", PASSWORD),
        "the second instance counts the first's failures",
    );
    let alice = login(&second, ALICE_AT_HOME, "alice", PASSWORD);
    assert_eq!(alice.status, 303, "{}", alice.body);
}
