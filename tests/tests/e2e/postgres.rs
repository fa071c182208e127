//! End to end on PostgreSQL (`GRANTBOX_TEST_POSTGRES`, set by `.ci/run`): the token
//! endpoint and introspection, two `grantbox serve` processes sharing one database
//! (a flow begun on one finishes on the other, revocation seen by both), state
//! surviving a restart, and a database outage (on a cluster of the test's own,
//! stopped and started with `pg_ctl`) answering 503 and healing without a restart.
//! Unset, each test prints a note and passes; set with the server down, each fails.

use serde_json::Value;

use crate::harness::{
    Browser, Options, Server, allow, assert_oauth_error, client_credentials_token,
    introspection_client, redirect_params, service_client, token_request, user_add, web_client,
};

const CALLBACK: &str = "http://127.0.0.1:9999/cb";
const PASSWORD: &str = "correct horse battery staple";

/// POSTs a form with HTTP Basic client authentication; returns status and JSON.
fn call(
    server: &Server,
    path: &str,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let response = crate::harness::http()
        .post(server.url(path))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .expect("the server answers");
    let status = response.status().as_u16();
    let body = response.json().unwrap_or(Value::Null);
    (status, body)
}

fn introspect(server: &Server, rs_secret: &str, token: &str) -> Value {
    let (status, body) = call(server, "/introspect", "rs", rs_secret, &[("token", token)]);
    assert_eq!(status, 200, "{body}");
    body
}

/// `svc` gets tokens by client credentials, `rs` introspects; returns their secrets.
fn service_clients(server: &Server) -> (String, String) {
    (
        service_client(server, &["read", "write"]),
        introspection_client(server),
    )
}

#[test]
fn postgres_client_credentials_and_introspection() {
    let Some(server) = Server::start_postgres(
        "postgres_client_credentials_and_introspection",
        Options::default(),
    ) else {
        return;
    };
    let health = crate::harness::http()
        .get(server.url("/healthz"))
        .send()
        .expect("healthz answers");
    assert_eq!(health.status().as_u16(), 200);

    let (svc, rs) = service_clients(&server);
    let token = client_credentials_token(&server, &svc, "read write");
    let body = introspect(&server, &rs, &token);
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], "svc", "{body}");
    assert_eq!(body["scope"], "read write", "{body}");

    let (status, _) = call(&server, "/revoke", "svc", &svc, &[("token", &token)]);
    assert_eq!(status, 200);
    assert_eq!(introspect(&server, &rs, &token)["active"], false);

    // A wrong secret is refused on PostgreSQL as on SQLite.
    let (status, body, _) = token_request(
        &server,
        "svc",
        "not the secret",
        &[("grant_type", "client_credentials")],
    );
    assert_oauth_error((status, &body), 401, "invalid_client");
}

#[test]
fn postgres_two_instances_share_flows_and_revocations() {
    let Some(first) = Server::start_postgres(
        "postgres_two_instances_share_flows_and_revocations",
        Options {
            // One issuer, as behind a load balancer.
            extra_args: vec!["--issuer".into(), "http://localhost:1".into()],
            ..Default::default()
        },
    ) else {
        return;
    };
    let second = Server::start_with(Options {
        db: Some(first.db.clone()),
        extra_args: vec!["--issuer".into(), "http://localhost:1".into()],
        ..Default::default()
    });
    assert_ne!(first.base, second.base);

    user_add(&first, "alice", PASSWORD);
    let web = web_client(
        &first,
        CALLBACK,
        &["--grant-type", "refresh_token", "--scope", "read"],
    );
    let rs = introspection_client(&second);

    // The authorization request on the first instance...
    let browser = Browser::new();
    let start = browser.get(&first.url(&format!(
        "/authorize?response_type=code&client_id=web&redirect_uri={CALLBACK}&scope=read&state=st4te"
    )));
    assert_eq!(start.status, 302, "{}", start.body);
    assert!(
        start.location().starts_with("/login"),
        "{}",
        start.location()
    );
    // ...login and consent on the second, with the same session cookie...
    let after_login = browser.sign_in(&second, &start.location(), "alice", PASSWORD);
    assert_eq!(after_login.status, 303, "{}", after_login.body);
    let consent = browser.get(&second.url(&after_login.location()));
    assert_eq!(consent.status, 200, "{}", consent.body);
    let done = allow(&browser, &second, &consent);
    assert!(
        done.location().starts_with(CALLBACK),
        "{} {}",
        done.status,
        done.body
    );
    let params = redirect_params(&done.location(), false);
    assert_eq!(params["state"], "st4te");
    assert_eq!(params["iss"], "http://localhost:1");

    // ...and the code redeemed on the first, once.
    let code = params["code"].clone();
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
    ];
    let (status, tokens, _) = token_request(&first, "web", &web, &redeem);
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let (status, body, _) = token_request(&second, "web", &web, &redeem);
    assert_oauth_error((status, &body), 400, "invalid_grant");

    // The replay on the second revoked what the first issued.
    assert_eq!(introspect(&first, &rs, &access)["active"], false);

    // A fresh authorization, redeemed on the second; revoke on the first,
    // introspect on the second.
    let again = browser.get(&first.url(&format!(
        "/authorize?response_type=code&client_id=web&redirect_uri={CALLBACK}&scope=read&state=s2"
    )));
    // The consent remembered through the second instance skips the page on the first.
    assert!(
        again.location().starts_with(CALLBACK),
        "{} {}",
        again.status,
        again.body
    );
    let done = again;
    let code = redirect_params(&done.location(), false)["code"].clone();
    let (status, tokens, _) = token_request(
        &second,
        "web",
        &web,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
        ],
    );
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    assert_ne!(
        refresh,
        tokens["refresh_token"].as_str().unwrap_or_default()
    );
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    // A refresh token is introspected by its own client only (RFC 7662 §4).
    let introspect_own = |server: &Server, token: &str| {
        let (status, body) = call(server, "/introspect", "web", &web, &[("token", token)]);
        assert_eq!(status, 200, "{body}");
        body
    };
    assert_eq!(introspect(&first, &rs, &access)["active"], true);
    assert_eq!(introspect_own(&second, &refresh)["active"], true);
    assert_eq!(introspect(&second, &rs, &refresh)["active"], false);

    let (status, _) = call(&first, "/revoke", "web", &web, &[("token", &refresh)]);
    assert_eq!(status, 200);
    assert_eq!(introspect_own(&second, &refresh)["active"], false);
    assert_eq!(
        introspect(&second, &rs, &access)["active"],
        false,
        "revoking the refresh token revoked its family on every instance"
    );
}

#[test]
fn postgres_state_survives_a_crash_and_restart() {
    let Some(server) = Server::start_postgres(
        "postgres_state_survives_a_crash_and_restart",
        Options::default(),
    ) else {
        return;
    };
    let (svc, rs) = service_clients(&server);
    let kept = client_credentials_token(&server, &svc, "read");
    let revoked = client_credentials_token(&server, &svc, "write");
    let (status, _) = call(&server, "/revoke", "svc", &svc, &[("token", &revoked)]);
    assert_eq!(status, 200);
    let before = introspect(&server, &rs, &kept);
    assert_eq!(before["active"], true);

    let db = server.db.clone();
    drop(server.kill());
    let server = Server::start_with(Options {
        db: Some(db),
        ..Default::default()
    });
    let after = introspect(&server, &rs, &kept);
    assert_eq!(after["active"], true, "{after}");
    for field in ["scope", "client_id", "exp", "iat"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    assert_eq!(introspect(&server, &rs, &revoked)["active"], false);
}

/// A PostgreSQL cluster of one test's own, in a temporary folder, so that the
/// test can stop and start it without disturbing the shared server.
struct Cluster {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Runs a PostgreSQL program as the `postgres` user when we are root
    /// (initdb and postgres refuse root).
    fn run(&self, program: &str, args: &[&str]) -> bool {
        let path = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            std::process::Command::new(&path)
        };
        command
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn new() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("postgresql is installed under /usr/lib/postgresql (.ci/run installs it)")
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").is_file())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().expect("a temporary directory");
        if is_root() {
            let status = std::process::Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown postgres {}", dir.path().display());
        }
        let data = dir.path().join("data");
        // Below the ephemeral range, so no client socket holds it.
        let port = (26_000 + (std::process::id() % 3_000) as u16..32_000)
            .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .expect("a free port");
        let cluster = Cluster {
            bin,
            data,
            port,
            dir,
        };
        let data = cluster.data.to_string_lossy().into_owned();
        assert!(
            cluster.run(
                "initdb",
                &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            "initdb failed"
        );
        cluster.start();
        cluster
    }

    fn start(&self) {
        let data = self.data.to_string_lossy().into_owned();
        let log = self.data.join("server.log").to_string_lossy().into_owned();
        let options = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        assert!(
            self.run(
                "pg_ctl",
                &[
                    "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options, "start"
                ]
            ),
            "pg_ctl start failed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn stop(&self) {
        let data = self.data.to_string_lossy().into_owned();
        assert!(
            self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]),
            "pg_ctl stop failed"
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data.to_string_lossy().into_owned();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn healthz(server: &Server) -> (u16, Value) {
    let response = crate::harness::http()
        .get(server.url("/healthz"))
        .send()
        .expect("healthz answers");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn postgres_outage_answers_503_and_recovers_without_a_restart() {
    if crate::harness::postgres_server("postgres_outage_answers_503_and_recovers_without_a_restart")
        .is_none()
    {
        return;
    }
    let cluster = Cluster::new();
    let server = Server::start_with(Options {
        db: Some(cluster.url()),
        ..Default::default()
    });
    let (svc, _rs) = service_clients(&server);
    client_credentials_token(&server, &svc, "read");
    assert_eq!(healthz(&server).0, 200);

    cluster.stop();
    let form = [("grant_type", "client_credentials"), ("scope", "read")];
    let (status, body, _) = token_request(&server, "svc", &svc, &form);
    assert_oauth_error((status, &body), 503, "temporarily_unavailable");
    let (status, body) = healthz(&server);
    assert_eq!(
        (status, body["database"].as_str()),
        (503, Some("unavailable"))
    );

    cluster.start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body, _) = token_request(&server, "svc", &svc, &form);
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery: {status} {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(healthz(&server).0, 200);
}
