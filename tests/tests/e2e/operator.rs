//! The operator's commands over the real binary: clients shown, listed,
//! updated, rotated and removed; users listed, re-passworded, disabled,
//! enabled and removed; consents listed and withdrawn; the kill switches
//! (`token revoke`, `client remove`) seen at once by a second instance on the
//! same database; and the audit trail, which never holds a secret. Each test
//! runs on the backend `GRANTBOX_E2E_BACKEND` names.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{
    Browser, Options, PASSWORD, Server, alice_password_request, confidential_client, grantbox,
    introspection_client, service_client, text, token_request, user_add, web_client,
};

const CALLBACK: &str = "http://127.0.0.1:9999/cb";

/// Runs a command that must succeed; returns its stdout and stderr.
fn ok(server: &Server, args: &[&str], stdin: Option<&str>) -> (String, String) {
    let output = grantbox(&server.db, args, stdin);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{args:?} failed: {stderr}");
    (stdout, stderr)
}

/// Runs a command that must fail; returns its stderr.
fn refused(server: &Server, args: &[&str]) -> String {
    let output = grantbox(&server.db, args, None);
    assert!(!output.status.success(), "{args:?} was accepted");
    text(&output.stderr)
}

fn json(server: &Server, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.push("--json");
    let (stdout, _) = ok(server, &full, None);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

fn introspect(server: &Server, rs_secret: &str, token: &str) -> bool {
    let response = crate::harness::http()
        .post(server.url("/introspect"))
        .basic_auth("rs", Some(rs_secret))
        .form(&[("token", token)])
        .send()
        .expect("the introspection endpoint answers");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().expect("json");
    body["active"].as_bool().expect("active")
}

/// The status of a client-credentials request of `svc` with `secret`.
fn svc_token_status(server: &Server, secret: &str) -> (u16, Value) {
    let (status, body, _) = token_request(
        server,
        "svc",
        secret,
        &[("grant_type", "client_credentials"), ("scope", "read")],
    );
    (status, body)
}

/// Waits (up to 3 s) for `check`: instances notice a changed client
/// within a second.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item[field].as_str().expect("a name").to_owned())
        .collect()
}

/// The audit records of the operations under test: without the harness's
/// admin token (made before start) and the setup's `client add` and
/// `user add` (audited too; `admin_api` tests those records).
fn operations_only(entries: Value) -> Value {
    Value::Array(
        (entries.as_array().expect("a list").iter())
            .filter(|entry| {
                let action = entry["action"].as_str().unwrap_or_default();
                action != "admin_token.create" && !action.ends_with(".add")
            })
            .cloned()
            .collect(),
    )
}

#[test]
fn clients_are_shown_listed_updated_rotated_and_removed() {
    let server = Server::start();
    let first_secret = service_client(&server, &["read"]);
    ok(
        &server,
        &[
            "client",
            "add",
            "native",
            "--public",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            CALLBACK,
        ],
        None,
    );

    let shown = json(&server, &["client", "show", "svc"]);
    assert_eq!(shown["client_id"], "svc");
    assert_eq!(shown["public"], false);
    assert!(!shown.to_string().contains(&first_secret));
    let (table, _) = ok(&server, &["client", "show", "svc"], None);
    assert!(
        table.lines().next().unwrap().starts_with("CLIENT_ID"),
        "{table}"
    );
    assert!(refused(&server, &["client", "show", "nobody"]).contains("\"nobody\""));

    let all = json(&server, &["client", "list"]);
    assert_eq!(names(&all, "client_id"), ["native", "svc"]);
    let public = json(&server, &["client", "list", "--public"]);
    assert_eq!(names(&public, "client_id"), ["native"]);
    let confidential = json(&server, &["client", "list", "--confidential"]);
    assert_eq!(names(&confidential, "client_id"), ["svc"]);
    let by_grant = json(
        &server,
        &["client", "list", "--grant-type", "authorization_code"],
    );
    assert_eq!(names(&by_grant, "client_id"), ["native"]);

    // Update: the checks of `client add`, and the change served within a
    // second though the client is cached.
    assert_eq!(svc_token_status(&server, &first_secret).0, 200);
    let (status, body, _) = token_request(
        &server,
        "svc",
        &first_secret,
        &[("grant_type", "client_credentials"), ("scope", "write")],
    );
    assert_eq!(status, 400, "{body}");
    let stderr = refused(
        &server,
        &[
            "client",
            "update",
            "native",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
    );
    assert!(stderr.contains("redirect_uris"), "{stderr}");
    let updated = json(
        &server,
        &[
            "client", "update", "svc", "--scope", "read", "--scope", "write", "--name", "Service",
        ],
    );
    assert_eq!(updated["scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(updated["client_name"], "Service");
    eventually("the updated scope is served", || {
        let (status, _, _) = token_request(
            &server,
            "svc",
            &first_secret,
            &[("grant_type", "client_credentials"), ("scope", "write")],
        );
        status == 200
    });

    // Rotation with a grace period: the new secret alone on stdout; both work.
    let (stdout, stderr) = ok(
        &server,
        &["client", "rotate-secret", "svc", "--grace", "3600"],
        None,
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let second_secret = stdout.trim().to_owned();
    assert!(second_secret.len() >= 32);
    assert!(stderr.contains("accepted until"), "{stderr}");
    assert!(!stderr.contains(&second_secret));
    assert_eq!(svc_token_status(&server, &second_secret).0, 200);
    assert_eq!(svc_token_status(&server, &first_secret).0, 200);
    // Without grace (the default) the previous secret stops at once.
    let (stdout, _) = ok(&server, &["client", "rotate-secret", "svc"], None);
    let third_secret = stdout.trim().to_owned();
    eventually("the rotated-out secrets are refused", || {
        svc_token_status(&server, &second_secret).0 == 401
            && svc_token_status(&server, &first_secret).0 == 401
    });
    assert_eq!(svc_token_status(&server, &third_secret).0, 200);
    assert!(refused(&server, &["client", "rotate-secret", "native"]).contains("public"));

    // Removal revokes what the client holds.
    let rs_secret = introspection_client(&server);
    let token = svc_token_status(&server, &third_secret).1["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert!(introspect(&server, &rs_secret, &token));
    let removed = json(&server, &["client", "remove", "svc"]);
    assert_eq!(removed["client_id"], "svc");
    assert!(!introspect(&server, &rs_secret, &token));
    assert!(refused(&server, &["client", "show", "svc"]).contains("\"svc\""));

    // The audit trail names each change and holds no secret.
    let (audit, _) = ok(&server, &["audit", "list", "--json"], None);
    for secret in [&first_secret, &second_secret, &third_secret, &rs_secret] {
        assert!(!audit.contains(secret.as_str()), "a secret in {audit}");
    }
    let entries = operations_only(serde_json::from_str(&audit).expect("json"));
    let actions = names(&entries, "action");
    assert_eq!(
        actions,
        [
            "client.update",
            "client.rotate_secret",
            "client.rotate_secret",
            "client.remove"
        ]
    );
    assert_eq!(entries[0]["actor"], "cli");
    assert_eq!(entries[0]["before"]["scopes"], serde_json::json!(["read"]));
    assert_eq!(
        entries[0]["after"]["scopes"],
        serde_json::json!(["read", "write"])
    );
    let (table, _) = ok(&server, &["audit", "list", "--limit", "1"], None);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.contains("client.remove"), "{table}");
}

#[test]
fn users_consents_and_kill_switches() {
    let server = Server::start();
    user_add(&server, "alice", PASSWORD);
    user_add(&server, "bob", PASSWORD);
    let rs_secret = introspection_client(&server);
    let pw_secret = confidential_client(&server, "pw", &["password"], &["read"]);
    web_client(&server, CALLBACK, &["--scope", "read"]);

    let users = json(&server, &["user", "list"]);
    assert_eq!(names(&users, "username"), ["alice", "bob"]);
    let alice = json(&server, &["user", "show", "alice"]);
    assert_eq!(alice["disabled_at"], Value::Null);
    assert!(alice.get("password_hash").is_none(), "{alice}");
    assert!(refused(&server, &["user", "show", "carol"]).contains("\"carol\""));

    // A new password: the old one stops working.
    let new_password = "a brand new passphrase";
    ok(
        &server,
        &["user", "set-password", "alice", "--password-stdin"],
        Some(&format!("{new_password}\n")),
    );
    let (status, _, _) = alice_password_request(&server, "pw", &pw_secret, Some("read"));
    assert_eq!(status, 400, "the old password is refused");
    let grant = |password: &str| {
        token_request(
            &server,
            "pw",
            &pw_secret,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", password),
                ("scope", "read"),
            ],
        )
    };
    let (status, body, _) = grant(new_password);
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().expect("a token").to_owned();
    assert!(introspect(&server, &rs_secret, &token));

    // A consent through the browser, listed and withdrawn.
    let browser = Browser::new();
    let authorize = server.url(&format!(
        "/authorize?response_type=code&client_id=web&redirect_uri={CALLBACK}&scope=read&state=s"
    ));
    let first = browser.get(&authorize);
    let after_login = browser.sign_in(&server, &first.location(), "alice", new_password);
    assert_eq!(after_login.status, 303, "{}", after_login.body);
    let consent = browser.get(&server.url(&after_login.location()));
    let done = crate::harness::allow(&browser, &server, &consent);
    assert!(done.location().starts_with(CALLBACK), "{}", done.location());
    let consents = json(&server, &["consent", "list", "--user", "alice"]);
    assert_eq!(names(&consents, "client_id"), ["web"]);
    ok(
        &server,
        &["consent", "revoke", "--user", "alice", "--client", "web"],
        None,
    );
    assert_eq!(
        json(&server, &["consent", "list", "--user", "alice"]),
        serde_json::json!([])
    );
    assert!(
        refused(
            &server,
            &["consent", "revoke", "--user", "alice", "--client", "web"]
        )
        .contains("\"web\"")
    );

    // Disabled: no sign-in by form or password grant, tokens inactive,
    // the browser's session ended.
    let disabled = json(&server, &["user", "disable", "alice"]);
    assert_eq!(disabled["target"], "alice");
    assert!(
        disabled["tokens_revoked"].as_u64().unwrap() >= 1,
        "{disabled}"
    );
    assert!(!introspect(&server, &rs_secret, &token));
    assert_eq!(grant(new_password).0, 400);
    let again = browser.get(&authorize);
    assert_eq!(again.status, 302);
    assert!(
        again.location().starts_with("/login"),
        "{}",
        again.location()
    );
    let login = Browser::new().sign_in(&server, "/login", "alice", new_password);
    assert_eq!(login.status, 401, "a disabled user cannot sign in");
    assert!(json(&server, &["user", "show", "alice"])["disabled_at"].is_i64());

    // Enabled again: sign-in works; `token revoke --user` kills the new tokens.
    ok(&server, &["user", "enable", "alice"], None);
    let (status, body, _) = grant(new_password);
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().expect("a token").to_owned();
    let revoked = json(&server, &["token", "revoke", "--user", "alice"]);
    assert_eq!(revoked["tokens_revoked"], 1);
    assert!(!introspect(&server, &rs_secret, &token));
    assert!(refused(&server, &["token", "revoke", "--user", "carol"]).contains("\"carol\""));

    // `token revoke --client` leaves the client, kills its tokens.
    let (_, body, _) = grant(new_password);
    let token = body["access_token"].as_str().expect("a token").to_owned();
    let (stdout, _) = ok(&server, &["token", "revoke", "--client", "pw"], None);
    assert!(stdout.contains("1 token(s) revoked"), "{stdout}");
    assert!(!introspect(&server, &rs_secret, &token));
    assert_eq!(grant(new_password).0, 200, "the client still works");

    // Removed: gone, and the name is free again with a new subject.
    let subject = json(&server, &["user", "show", "bob"])["subject"].clone();
    ok(&server, &["user", "remove", "bob"], None);
    assert!(refused(&server, &["user", "show", "bob"]).contains("\"bob\""));
    user_add(&server, "bob", PASSWORD);
    assert_ne!(json(&server, &["user", "show", "bob"])["subject"], subject);

    let (audit, _) = ok(&server, &["audit", "list", "--json"], None);
    for secret in [new_password, PASSWORD, &pw_secret, &rs_secret] {
        assert!(!audit.contains(secret), "a secret in {audit}");
    }
    let entries = operations_only(serde_json::from_str(&audit).expect("json"));
    assert_eq!(
        names(&entries, "action"),
        [
            "user.set_password",
            "consent.revoke",
            "user.disable",
            "user.enable",
            "token.revoke_user",
            "token.revoke_client",
            "user.remove"
        ]
    );
    let by_cli = operations_only(json(&server, &["audit", "list", "--actor", "cli"]));
    assert_eq!(by_cli.as_array().unwrap().len(), 7);
    let since = entries[6]["at"].as_i64().unwrap() + 1;
    let none = operations_only(json(
        &server,
        &["audit", "list", "--since", &since.to_string()],
    ));
    assert_eq!(none, serde_json::json!([]));
}

#[test]
fn each_change_is_logged_under_the_audit_target_without_its_secret() {
    let server = Server::start();
    let secret = service_client(&server, &["read"]);
    let (stdout, stderr) = ok(&server, &["client", "rotate-secret", "svc"], None);
    let new_secret = stdout.trim();
    assert!(stderr.contains("grantbox::audit"), "{stderr}");
    assert!(stderr.contains("client.rotate_secret"), "{stderr}");
    assert!(!stderr.contains(new_secret) && !stderr.contains(&secret));
}

#[test]
fn a_stolen_client_is_dead_at_once_on_a_second_instance() {
    let first = Server::start();
    // A second instance on the same database, as behind a load balancer.
    let second = Server::start_with(Options {
        db: Some(first.db.clone()),
        ..Default::default()
    });
    let secret = service_client(&first, &["read"]);
    let rs_secret = introspection_client(&first);
    let token = |server: &Server| {
        let (status, body) = svc_token_status(server, &secret);
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().expect("a token").to_owned()
    };
    // Both instances have the client cached and its tokens active.
    let (on_first, on_second) = (token(&first), token(&second));
    assert!(introspect(&second, &rs_secret, &on_first));

    // One command revokes everything it holds: inactive at once everywhere.
    ok(&first, &["token", "revoke", "--client", "svc"], None);
    assert!(!introspect(&second, &rs_secret, &on_first));
    assert!(!introspect(&second, &rs_secret, &on_second));
    assert!(!introspect(&first, &rs_secret, &on_second));

    // Removed: its new tokens are inactive at once, and it stops
    // authenticating on the second instance within a second.
    let fresh = token(&second);
    ok(&first, &["client", "remove", "svc"], None);
    assert!(!introspect(&second, &rs_secret, &fresh));
    eventually(
        "the removed client is refused on the second instance",
        || svc_token_status(&second, &secret).0 == 401,
    );
    // What the stolen client still presents is refused.
    let (status, _) = svc_token_status(&first, &secret);
    assert_eq!(status, 401);
}
