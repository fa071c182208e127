//! The admin API over the real binary, on the backend `GRANTBOX_E2E_BACKEND`
//! names: refused without an admin token, with a revoked or expired one, with
//! a foreign `Host` or `Origin`, never a CORS header; a route per operator
//! operation, changes recorded under the admin token's id; the CLI's
//! `--admin URL` mode; no admin listener by default, so two servers on one
//! host both run; a non-loopback `admin_listen` only behind a TLS proxy.

use std::sync::OnceLock;

use reqwest::Method;
use reqwest::header::{HOST, ORIGIN};
use serde_json::{Value, json};

use crate::harness::{Options, Server, grantbox, grantbox_with, http, text};

/// The module's shared server.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(Server::start)
}

/// `host:port` of the admin listener.
fn admin_authority(server: &Server) -> String {
    server.admin.trim_start_matches("http://").to_owned()
}

/// Runs `grantbox` on the server's database (not through the API); must succeed.
fn on_database(server: &Server, args: &[&str], stdin: Option<&str>) -> String {
    let output = grantbox(&server.db, args, stdin);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn status_of(request: reqwest::blocking::RequestBuilder) -> u16 {
    request.send().unwrap().status().as_u16()
}

#[test]
fn the_admin_api_refuses_requests_without_a_live_token_or_from_a_foreign_host_or_origin() {
    let server = server();
    let plugins = format!("{}/admin/plugins", server.admin);

    // No token, a malformed one, an unknown one.
    let response = http().get(&plugins).send().unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"),
    );
    assert_eq!(status_of(http().get(&plugins).bearer_auth("nonsense")), 401);
    assert_eq!(
        status_of(
            http()
                .get(&plugins)
                .bearer_auth(format!("gbadm_{}", "A".repeat(43)))
        ),
        401
    );
    assert_eq!(
        status_of(server.admin_request(Method::GET, "/admin/plugins")),
        200
    );

    // A revoked token.
    let created: Value = serde_json::from_str(&on_database(
        server,
        &["--json", "admin", "token", "create", "--name", "to revoke"],
        None,
    ))
    .unwrap();
    let token = created["token"].as_str().unwrap();
    assert_eq!(status_of(http().get(&plugins).bearer_auth(token)), 200);
    on_database(
        server,
        &["admin", "token", "revoke", created["id"].as_str().unwrap()],
        None,
    );
    assert_eq!(status_of(http().get(&plugins).bearer_auth(token)), 401);

    // An expired token: made ten minutes ago with a lifetime of one minute.
    let output = grantbox_with(
        &server.db,
        &["admin", "token", "create", "--expires-in", "60"],
        None,
        &[("GRANTBOX_CLOCK_OFFSET", "-600")],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let expired = text(&output.stdout).trim().to_owned();
    assert_eq!(status_of(http().get(&plugins).bearer_auth(&expired)), 401);

    // A foreign Host (DNS rebinding) is refused even with a live token; the
    // loopback names with the listener's port are not.
    let port = admin_authority(server)
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    for (host, expected) in [
        (format!("evil.example:{port}"), 403),
        (format!("127.0.0.1.evil.example:{port}"), 403),
        ("localhost:1".to_owned(), 403),
        (format!("localhost:{port}"), 200),
        (format!("127.0.0.1:{port}"), 200),
        (format!("[::1]:{port}"), 200),
    ] {
        let request = server
            .admin_request(Method::GET, "/admin/plugins")
            .header(HOST, &host);
        assert_eq!(status_of(request), expected, "Host: {host}");
    }

    // A foreign Origin (a web page the browser sends from) is refused; the
    // listener's own origin is not.
    for (origin, expected) in [
        ("http://evil.example".to_owned(), 403),
        ("null".to_owned(), 403),
        (format!("http://localhost:{port}"), 200),
    ] {
        let request = server
            .admin_request(Method::GET, "/admin/plugins")
            .header(ORIGIN, &origin);
        assert_eq!(status_of(request), expected, "Origin: {origin}");
    }

    // Never a CORS header: not on a preflight, not on an answer.
    let preflight = http()
        .request(Method::OPTIONS, &plugins)
        .header(ORIGIN, "http://evil.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .send()
        .unwrap();
    let answered = server
        .admin_request(Method::GET, "/admin/plugins")
        .header(ORIGIN, format!("http://127.0.0.1:{port}"))
        .send()
        .unwrap();
    assert_eq!(answered.status(), 200);
    for response in [&preflight, &answered] {
        assert!(
            !response
                .headers()
                .keys()
                .any(|name| name.as_str().starts_with("access-control-")),
            "{:?}",
            response.headers()
        );
    }

    // /metrics is behind the same guard.
    assert_eq!(
        status_of(http().get(format!("{}/metrics", server.admin))),
        401
    );
    assert!(server.metrics().contains("grantbox_"));

    // No admin token ever reaches the log.
    let logs = server.logs();
    for secret in [token, expired.as_str(), server.admin_token.as_str()] {
        assert!(!logs.contains(secret), "an admin token was logged");
    }
}

#[test]
fn every_operator_operation_has_a_route_that_works() {
    let server = server();
    let call = |method: Method, path: &str, body: Option<Value>| -> (u16, Value) {
        let mut request = server.admin_request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    };
    let ok = |method: Method, path: &str, body: Option<Value>| -> Value {
        let (status, answer) = call(method.clone(), path, body);
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer
    };
    on_database(
        server,
        &[
            "client",
            "add",
            "api-client",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
        ],
        None,
    );
    on_database(
        server,
        &["user", "add", "api-user", "--password-stdin"],
        Some("a long enough password 1"),
    );

    // Clients.
    let clients = ok(
        Method::GET,
        "/admin/clients?grant_type=client_credentials&public=false",
        None,
    );
    assert!(clients.to_string().contains("\"api-client\""), "{clients}");
    assert!(!clients.to_string().contains("secret_hash"), "{clients}");
    let client = ok(Method::GET, "/admin/clients/api-client", None);
    assert_eq!(client["scopes"], json!(["read"]));
    let updated = ok(
        Method::PATCH,
        "/admin/clients/api-client",
        Some(json!({ "scopes": ["read", "write"] })),
    );
    assert_eq!(updated["scopes"], json!(["read", "write"]));
    let (status, refusal) = call(
        Method::PATCH,
        "/admin/clients/api-client",
        Some(json!({ "redirect_uris": ["http://example.com/cb#fragment"] })),
    );
    assert_eq!(
        (status, refusal["field"].clone()),
        (400, json!("redirect_uris")),
        "{refusal}"
    );
    let rotated = ok(
        Method::POST,
        "/admin/clients/api-client/rotate-secret",
        Some(json!({ "grace_seconds": 60 })),
    );
    let secret = rotated["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 32 && rotated["previous_secret_expires_at"].is_i64());
    let token = http()
        .post(server.url("/token"))
        .basic_auth("api-client", Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .unwrap();
    assert_eq!(token.status(), 200, "the rotated secret authenticates");
    let revoked = ok(
        Method::POST,
        "/admin/clients/api-client/revoke-tokens",
        None,
    );
    assert_eq!(revoked["tokens_revoked"], 1, "{revoked}");

    // Users and consents.
    let users = ok(Method::GET, "/admin/users", None);
    assert!(users.to_string().contains("\"api-user\""), "{users}");
    assert!(!users.to_string().contains("argon2"), "{users}");
    assert_eq!(
        ok(Method::GET, "/admin/users/api-user", None)["username"],
        "api-user"
    );
    ok(
        Method::PUT,
        "/admin/users/api-user/password",
        Some(json!({ "password": "another long password 2" })),
    );
    let (status, refusal) = call(
        Method::PUT,
        "/admin/users/api-user/password",
        Some(json!({ "password": "short" })),
    );
    assert_eq!(
        (status, refusal["field"].clone()),
        (400, json!("password")),
        "{refusal}"
    );
    ok(Method::POST, "/admin/users/api-user/disable", None);
    assert!(ok(Method::GET, "/admin/users/api-user", None)["disabled_at"].is_i64());
    ok(Method::POST, "/admin/users/api-user/enable", None);
    assert!(ok(Method::GET, "/admin/users/api-user", None)["disabled_at"].is_null());
    ok(Method::POST, "/admin/users/api-user/revoke-tokens", None);
    assert_eq!(
        ok(Method::GET, "/admin/users/api-user/consents", None),
        json!([])
    );
    let (status, missing) = call(
        Method::DELETE,
        "/admin/users/api-user/consents/api-client",
        None,
    );
    assert_eq!(status, 404, "{missing}");
    let (status, missing) = call(Method::GET, "/admin/users/nobody", None);
    assert_eq!(status, 404);
    assert!(
        missing["error_description"]
            .as_str()
            .unwrap()
            .contains("nobody"),
        "{missing}"
    );

    // Admin tokens.
    let created = ok(
        Method::POST,
        "/admin/tokens",
        Some(json!({ "name": "made over http" })),
    );
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        status_of(
            http()
                .get(format!("{}/admin/tokens", server.admin))
                .bearer_auth(created["token"].as_str().unwrap())
        ),
        200
    );
    let listed = ok(Method::GET, "/admin/tokens", None);
    assert!(
        listed.to_string().contains(id) && !listed.to_string().contains("gbadm_"),
        "{listed}"
    );
    assert!(ok(Method::DELETE, &format!("/admin/tokens/{id}"), None)["revoked_at"].is_i64());

    // Removal, then the audit trail names the admin token that acted.
    ok(Method::DELETE, "/admin/users/api-user", None);
    ok(Method::DELETE, "/admin/clients/api-client", None);
    assert_eq!(call(Method::GET, "/admin/clients/api-client", None).0, 404);
    let audit = ok(Method::GET, "/admin/audit", None);
    let tokens = ok(Method::GET, "/admin/tokens", None);
    let own_id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "e2e")
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .unwrap();
    let actor = format!("admin-token:{own_id}");
    for action in [
        "client.update",
        "client.rotate_secret",
        "user.disable",
        "user.remove",
        "client.remove",
        "admin_token.create",
        "admin_token.revoke",
    ] {
        assert!(
            audit
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["actor"] == actor.as_str() && r["action"] == action),
            "no {action} by {actor}: {audit}"
        );
    }
    assert!(
        !audit.to_string().contains(secret),
        "the audit trail holds a secret"
    );
    let filtered = ok(
        Method::GET,
        &format!("/admin/audit?actor={actor}&limit=1"),
        None,
    );
    assert_eq!(filtered.as_array().unwrap().len(), 1, "{filtered}");

    // Plugins, and the document that describes all of this.
    assert!(ok(Method::GET, "/admin/plugins", None)["plugins"].is_array());
    let document = ok(Method::GET, "/admin/openapi.json", None);
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::harness::workspace().join("docs/admin-openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(document, committed);
}

#[test]
fn the_cli_runs_operator_commands_through_the_admin_api_with_admin() {
    let server = server();
    on_database(
        server,
        &[
            "client",
            "add",
            "cli-client",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
        ],
        None,
    );
    let run = |args: &[&str]| {
        let output = server.admin_cli(args, None);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        (text(&output.stdout), text(&output.stderr))
    };
    let (listed, _) = run(&["--json", "client", "list"]);
    assert!(listed.contains("\"cli-client\""), "{listed}");
    let (shown, _) = run(&["client", "show", "cli-client"]);
    assert!(shown.contains("cli-client"), "{shown}");
    let (secret, note) = run(&["client", "rotate-secret", "cli-client"]);
    assert_eq!(
        secret.lines().count(),
        1,
        "the secret alone on stdout: {secret:?}"
    );
    assert!(note.contains("cli-client"), "{note}");
    let (created, _) = run(&["admin", "token", "create", "--name", "from the api"]);
    assert!(created.trim().starts_with("gbadm_") && created.lines().count() == 1);
    run(&["token", "revoke", "--client", "cli-client"]);

    // The changes went through the API: the trail names the admin token.
    let (trail, _) = run(&["--json", "audit", "list"]);
    let trail: Value = serde_json::from_str(&trail).unwrap();
    assert!(
        trail
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "client.rotate_secret"
                && r["target"] == "cli-client"
                && r["actor"].as_str().unwrap().starts_with("admin-token:")),
        "{trail}"
    );

    // Errors name the thing; no token, or a wrong one, is refused.
    let output = server.admin_cli(&["client", "show", "no-such-client"], None);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("no-such-client"),
        "{}",
        text(&output.stderr)
    );
    let output = grantbox(
        &server.db,
        &["--admin", &server.admin, "client", "list"],
        None,
    );
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("GRANTBOX_ADMIN_TOKEN"),
        "{}",
        text(&output.stderr)
    );
    let output = grantbox_with(
        &server.db,
        &["--admin", &server.admin, "client", "list"],
        None,
        &[("GRANTBOX_ADMIN_TOKEN", "gbadm_wrong")],
    );
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("401"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn clients_and_users_are_added_through_the_admin_api_and_the_cli_with_admin() {
    let server = server();
    let call = |method: Method, path: &str, body: Value| -> (u16, Value) {
        let response = server
            .admin_request(method, path)
            .json(&body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    };

    // A confidential client: the generated secret comes back once and works.
    let (status, added) = call(
        Method::POST,
        "/admin/clients",
        json!({
            "client_id": "added-client",
            "grant_types": ["client_credentials"],
            "scopes": ["read"],
            "client_name": "Added over HTTP",
        }),
    );
    assert_eq!(status, 200, "{added}");
    assert_eq!(
        (&added["client_id"], &added["client_name"], &added["public"]),
        (
            &json!("added-client"),
            &json!("Added over HTTP"),
            &json!(false)
        )
    );
    let secret = added["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32, "{added}");
    let token = http()
        .post(server.url("/token"))
        .basic_auth("added-client", Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .unwrap();
    assert_eq!(token.status(), 200, "the returned secret authenticates");
    let shown = server
        .admin_request(Method::GET, "/admin/clients/added-client")
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert!(shown["client_secret"].is_null(), "{shown}");

    // The rules of `client add`, and a taken id, are refused by name.
    let (status, refused) = call(
        Method::POST,
        "/admin/clients",
        json!({ "client_id": "added-client", "grant_types": ["client_credentials"] }),
    );
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("added-client"),
        "{refused}"
    );
    let (status, refused) = call(
        Method::POST,
        "/admin/clients",
        json!({
            "client_id": "fragment-client",
            "public": true,
            "redirect_uris": ["https://app.example/cb#fragment"],
        }),
    );
    assert_eq!((status, &refused["field"]), (400, &json!("redirect_uris")));
    // A body that does not decode is a 400 naming the field, not axum's 422.
    let (status, refused) = call(
        Method::POST,
        "/admin/clients",
        json!({ "client_id": "typo-client", "scope": ["read"] }),
    );
    assert_eq!(status, 400, "an unknown field: {refused}");
    assert_eq!(refused["error"], "invalid_request");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("unknown field `scope`"),
        "{refused}"
    );
    let (status, refused) = call(
        Method::POST,
        "/admin/clients",
        json!({ "client_id": "method-client", "token_endpoint_auth_method": "client_secret_carrier_pigeon" }),
    );
    assert_eq!(
        (status, &refused["field"]),
        (400, &json!("token_endpoint_auth_method")),
        "{refused}"
    );
    let (status, refused) = call(
        Method::POST,
        "/admin/clients",
        json!({ "client_id": "typed-client", "public": "yes" }),
    );
    assert_eq!(
        (status, &refused["field"]),
        (400, &json!("public")),
        "{refused}"
    );
    // An ID token algorithm the server keeps no key for, by name.
    let (status, refused) = call(
        Method::POST,
        "/admin/clients",
        json!({
            "client_id": "eddsa-client",
            "redirect_uris": ["https://app.example/cb"],
            "id_token_signed_response_alg": "EdDSA",
        }),
    );
    assert_eq!(
        (status, &refused["field"]),
        (400, &json!("id_token_signed_response_alg")),
        "{refused}"
    );
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("no EdDSA key"),
        "{refused}"
    );

    // A user: the password is taken, never answered, logged or audited.
    let password = "a password sent over http 7";
    let (status, user) = call(
        Method::POST,
        "/admin/users",
        json!({ "username": "added-user", "password": password, "claims": ["name=Added User"] }),
    );
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["username"], "added-user");
    assert_eq!(user["claims"], json!({ "name": "Added User" }));
    assert!(user["subject"].as_str().is_some_and(|s| s != "added-user"));
    assert!(!user.to_string().contains(password), "{user}");
    let (status, refused) = call(
        Method::POST,
        "/admin/users",
        json!({ "username": "short-user", "password": "short" }),
    );
    assert_eq!((status, &refused["field"]), (400, &json!("password")));
    let (status, _) = call(
        Method::POST,
        "/admin/users",
        json!({ "username": "added-user", "password": password }),
    );
    assert_eq!(status, 409);
    assert!(
        on_database(server, &["--json", "user", "show", "added-user"], None).contains("Added User")
    );

    // The CLI's `client add` and `user add` go through the same routes
    // with --admin: the secret alone on its line, as on the database.
    let output = server.admin_cli(
        &[
            "client",
            "add",
            "cli-added-client",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
        ],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let cli_secret = stdout
        .lines()
        .find_map(|line| line.strip_prefix("client_secret: "))
        .unwrap_or_else(|| panic!("no secret line: {stdout}"))
        .to_owned();
    let token = http()
        .post(server.url("/token"))
        .basic_auth("cli-added-client", Some(&cli_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(token.status(), 200);
    let cli_password = "a password piped to the cli 8";
    let output = server.admin_cli(
        &["user", "add", "cli-added-user", "--password-stdin"],
        Some(cli_password),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("cli-added-user"));
    let output = server.admin_cli(
        &["user", "add", "cli-short-user", "--password-stdin"],
        Some("short"),
    );
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("password"),
        "{}",
        text(&output.stderr)
    );

    // Each addition is audited under the admin token, without a secret.
    let trail = server
        .admin_request(Method::GET, "/admin/audit")
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    for (action, target) in [
        ("client.add", "added-client"),
        ("client.add", "cli-added-client"),
        ("user.add", "added-user"),
        ("user.add", "cli-added-user"),
    ] {
        assert!(
            trail
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["action"] == action
                    && r["target"] == target
                    && r["actor"].as_str().unwrap().starts_with("admin-token:")),
            "no {action} of {target}: {trail}"
        );
    }
    let logs = server.logs();
    for secret in [secret.as_str(), cli_secret.as_str(), password, cli_password] {
        assert!(
            !trail.to_string().contains(secret),
            "a secret in the audit trail"
        );
        assert!(!logs.contains(secret), "a secret in the log");
    }
}

#[test]
fn two_servers_with_default_settings_on_one_host_both_run_without_an_admin_listener() {
    let first = Server::start_with(Options {
        without_admin_listener: true,
        ..Default::default()
    });
    let second = Server::start_with(Options {
        without_admin_listener: true,
        ..Default::default()
    });
    for server in [&first, &second] {
        assert!(
            server.admin.is_empty(),
            "an admin listener started by default"
        );
        assert_eq!(server.metadata()["issuer"], server.base.as_str());
    }
    // Reloading stays possible without it (SIGHUP, --watch-plugins); the CLI
    // says so when there is nothing to reach.
    let output = grantbox(&first.db, &["plugins", "reload"], None);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("SIGHUP"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_non_loopback_admin_listen_needs_the_tls_proxy_flag_and_an_admin_host() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("grantbox.toml");
    std::fs::write(&config, "admin_listen = \"0.0.0.0:0\"\n").unwrap();
    let config_arg = config.display().to_string();
    let output = grantbox(
        &server().db,
        &["--config", &config_arg, "serve", "--listen", "127.0.0.1:0"],
        None,
    );
    assert!(
        !output.status.success(),
        "a public admin address without TLS"
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("admin_listen") && stderr.contains("admin_behind_tls_proxy"),
        "{stderr}"
    );

    // Behind a TLS proxy with its host, it serves that host and its https origin.
    std::fs::write(
        &config,
        "admin_listen = \"0.0.0.0:0\"\nadmin_behind_tls_proxy = true\nadmin_host = \"admin.example.com\"\n",
    )
    .unwrap();
    let proxied = Server::start_with(Options {
        without_admin_listener: true,
        env: vec![("GRANTBOX_CONFIG".into(), config_arg)],
        ..Default::default()
    });
    let port = proxied.admin.rsplit(':').next().unwrap().to_owned();
    let at = |host: &str, origin: Option<&str>| {
        let mut request = http()
            .get(format!("http://127.0.0.1:{port}/admin/plugins"))
            .bearer_auth(&proxied.admin_token)
            .header(HOST, host);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        status_of(request)
    };
    assert_eq!(
        at("admin.example.com", Some("https://admin.example.com")),
        200
    );
    assert_eq!(
        at("admin.example.com", Some("http://admin.example.com")),
        403
    );
    assert_eq!(at("other.example.com", None), 403);
}
