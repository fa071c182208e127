//! The refresh token's idle lifetime on its own: with an idle lifetime much
//! shorter than the absolute one, a refresh token left unused past it is
//! refused, and each rotation starts it again. Time moves by restarting the
//! server on the same database with its test clock (`GRANTBOX_CLOCK_OFFSET`)
//! further on.

use std::sync::Arc;

use crate::harness::{
    Options, Server, alice_password_request, confidential_client, token_request, user_add,
};

const PASSWORD: &str = "correct horse battery staple";
const IDLE: i64 = 100;

/// The same database, the config, and the clock `offset` seconds on.
fn restart_at(dir: Arc<tempfile::TempDir>, config: &str, offset: i64) -> Server {
    Server::start_with(Options {
        dir: Some(dir),
        env: vec![
            ("GRANTBOX_CONFIG".into(), config.to_owned()),
            ("GRANTBOX_CLOCK_OFFSET".into(), offset.to_string()),
        ],
        ..Default::default()
    })
}

fn refresh(server: &Server, secret: &str, token: &str) -> (u16, serde_json::Value) {
    let (status, body, _) = token_request(
        server,
        "app",
        secret,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    );
    (status, body)
}

#[test]
fn an_idle_refresh_token_expires_before_its_absolute_lifetime() {
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("grantbox.toml");
    std::fs::write(
        &config,
        format!(
            "[tokens]\nrefresh_token_idle_lifetime = {IDLE}\nrefresh_token_absolute_lifetime = 86400\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let server = restart_at(Arc::new(tempfile::tempdir().unwrap()), &config, 0);
    user_add(&server, "alice", PASSWORD);
    let secret = confidential_client(&server, "app", &["password", "refresh_token"], &[]);
    let (status, body, _) = alice_password_request(&server, "app", &secret, None);
    assert_eq!(status, 200, "{body}");
    let first = body["refresh_token"].as_str().unwrap().to_owned();

    // 60 s on, within the idle lifetime: refreshed, and rotated.
    let server = restart_at(server.kill(), &config, 60);
    let (status, body) = refresh(&server, &secret, &first);
    assert_eq!(status, 200, "within the idle lifetime: {body}");
    let second = body["refresh_token"].as_str().unwrap().to_owned();

    // 150 s on: past the first token's idle lifetime, but 90 s after the
    // rotation, which started it again.
    let server = restart_at(server.kill(), &config, 150);
    let (status, body) = refresh(&server, &secret, &second);
    assert_eq!(
        status, 200,
        "the rotation renewed the idle lifetime: {body}"
    );
    let third = body["refresh_token"].as_str().unwrap().to_owned();

    // 150 + IDLE + 1 s on: unused for longer than the idle lifetime, far
    // within the absolute one (a day).
    let server = restart_at(server.kill(), &config, 150 + IDLE + 1);
    let (status, body) = refresh(&server, &secret, &third);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "idle for longer than its idle lifetime: {body}"
    );
    drop(config_dir);
}
