//! The command line: client and user registration against a real SQLite file,
//! and what a restart keeps.

use crate::harness::{Options, Server, confidential_client, grantbox, text, token_request};

#[test]
fn client_add_validates_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("g.db").display());
    let refused = |args: &[&str], expect: &str| {
        let mut full = vec!["client", "add"];
        full.extend_from_slice(args);
        let output = grantbox(&db, &full, None);
        assert!(!output.status.success(), "{args:?} was accepted");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    };
    refused(
        &[
            "a",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "http://example.com/cb",
        ],
        "http",
    );
    refused(
        &[
            "a",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "https://example.com/cb#frag",
        ],
        "fragment",
    );
    refused(&["a", "--secret", "too-short"], "32");
    refused(
        &["a", "--public", "--grant-type", "client_credentials"],
        "client_credentials",
    );

    let output = grantbox(
        &db,
        &["client", "add", "a", "--secret", &"s".repeat(32)],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = grantbox(
        &db,
        &["client", "add", "a", "--secret", &"s".repeat(32)],
        None,
    );
    assert!(!output.status.success(), "a duplicate id was accepted");
    assert!(
        text(&output.stderr).contains("a"),
        "{}",
        text(&output.stderr)
    );
    let output = grantbox(&db, &["client", "list"], None);
    let listed = text(&output.stdout);
    let row = listed.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("a ") && row.contains("confidential"),
        "{listed}"
    );
}

#[test]
fn user_add_reads_the_password_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("g.db").display());
    let output = grantbox(
        &db,
        &["user", "add", "alice", "--password-stdin"],
        Some("correct horse battery\n"),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = grantbox(
        &db,
        &["user", "add", "alice", "--password-stdin"],
        Some("another password\n"),
    );
    assert!(!output.status.success(), "a duplicate user was accepted");
    let output = grantbox(&db, &["user", "add", "bob"], Some("x"));
    assert!(
        !output.status.success(),
        "the password must come from stdin"
    );
}

#[test]
fn user_claims_are_checked_when_added_and_updated() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("g.db").display());
    let run = |args: &[&str]| grantbox(&db, args, Some("correct horse battery\n"));
    let refused = |args: &[&str], expect: &str| {
        let output = run(args);
        assert!(!output.status.success(), "{args:?} was accepted");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    };
    let add = ["user", "add", "alice", "--password-stdin"];
    refused(
        &[&add[..], &["--claim", "sub=someone-else"]].concat(),
        "\"sub\"",
    );
    refused(
        &[&add[..], &["--claim", "email_verified=yes"]].concat(),
        "\"email_verified\" must be true or false",
    );
    refused(&[&add[..], &["--claim", "name"]].concat(), "name=value");
    let output = run(&[
        &add[..],
        &[
            "--claim",
            "name=Alice Liddell",
            "--claim",
            "email=alice@example.com",
        ],
    ]
    .concat());
    assert!(output.status.success(), "{}", text(&output.stderr));

    let update = ["user", "update", "alice"];
    let output = run(&[
        &update[..],
        &["--claim", "email_verified=true", "--claim", "name="],
    ]
    .concat());
    assert!(output.status.success(), "{}", text(&output.stderr));
    refused(
        &[&update[..], &["--claim", "updated_at=soon"]].concat(),
        "updated_at",
    );
    refused(
        &["user", "update", "bob", "--claim", "name=Bob"],
        "\"bob\" does not exist",
    );
    refused(&["user", "update", "alice"], "--claim");
}

#[test]
fn a_client_added_while_serving_is_usable_at_once_and_survives_a_crash() {
    let server = Server::start();
    let secret = confidential_client(&server, "late", &["client_credentials"], &[]);
    let (status, _, _) = token_request(
        &server,
        "late",
        &secret,
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(status, 200);
    let dir = server.kill();
    let server = Server::start_with(Options {
        dir: Some(dir),
        ..Default::default()
    });
    let (status, _, _) = token_request(
        &server,
        "late",
        &secret,
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(status, 200, "the client survived kill -9 and a restart");
}

#[test]
fn a_broken_config_file_names_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("grantbox.toml");
    std::fs::write(&config, "[tokens]\naccess_token_lifetime = -5\n").unwrap();
    let output = grantbox(
        "sqlite::memory:",
        &[
            "--config",
            &config.display().to_string(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
        None,
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("grantbox.toml: tokens.access_token_lifetime"),
        "{stderr}"
    );
}
