//! The instances sharing one database: each server registers itself at
//! start and deregisters on a clean shutdown; `grantbox instances` lists
//! them with their addresses and plugin set fingerprints; `grantbox plugins
//! reload --cluster` and the admin API's `POST /admin/cluster/reload` reload
//! every one and report each outcome.

use std::ops::Not as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{
    Options, Server, client_credentials_request, grantbox, grantbox_with, query_integer,
    service_client, sha256_hex, test_plugin_wasm, text,
};

/// `grantbox instances --json` on `db`.
fn instances(db: &str) -> Vec<Value> {
    let output = grantbox(db, &["--json", "instances"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("a JSON array of instances")
}

fn addresses(listed: &[Value]) -> Vec<String> {
    let mut addresses: Vec<String> = listed
        .iter()
        .map(|i| format!("http://{}", i["address"].as_str().unwrap()))
        .collect();
    addresses.sort();
    addresses
}

#[test]
fn instances_register_list_and_deregister_on_shutdown() {
    let first = Server::start();
    let listed = instances(&first.db);
    assert_eq!(addresses(&listed), [first.base.as_str()]);
    let one = &listed[0];
    assert_eq!(
        one["admin_address"],
        first.admin.trim_start_matches("http://")
    );
    assert_eq!(one["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(one["stale"], false);
    let fingerprint = one["plugins"].as_str().unwrap().to_owned();
    assert_eq!(fingerprint.len(), 16, "{fingerprint}");
    // Three missed heartbeats (a minute each) later, it shows as stale.
    let later = grantbox_with(
        &first.db,
        &["--json", "instances"],
        None,
        &[("GRANTBOX_CLOCK_OFFSET", "200")],
    );
    let later: Vec<Value> = serde_json::from_slice(&later.stdout).expect("JSON instances");
    assert_eq!(later[0]["stale"], true);

    // A second server on the same database, with the same plugins.
    let second = Server::start_with(Options {
        db: Some(first.db.clone()),
        ..Options::default()
    });
    let listed = instances(&first.db);
    let mut expected = vec![first.base.clone(), second.base.clone()];
    expected.sort();
    assert_eq!(addresses(&listed), expected);
    assert!(listed.iter().all(|i| i["plugins"] == fingerprint.as_str()));
    assert_ne!(listed[0]["id"], listed[1]["id"]);

    // The table for people names both, live.
    let output = grantbox(&first.db, &["instances"], None);
    let table = text(&output.stdout);
    assert!(table.starts_with("ID"), "{table}");
    assert_eq!(table.matches(" live").count(), 2, "{table}");

    // A clean shutdown (SIGTERM) leaves the registry.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &second.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listed = instances(&first.db);
        if listed.len() == 1 {
            assert_eq!(addresses(&listed), [first.base.as_str()]);
            break;
        }
        assert!(Instant::now() < deadline, "still listed: {listed:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes generation `generation` of the swap plugin (answering
/// `client_credentials`) into `<plugins>/swap-plugin/`, the wasm first;
/// with `broken`, the manifest names a wrong SHA-256 and the set is refused.
fn install_swap(plugins: &Path, generation: &str, broken: bool) {
    let folder = plugins.join("swap-plugin");
    std::fs::create_dir_all(&folder).unwrap();
    let wasm = std::fs::read(test_plugin_wasm("swap-plugin")).expect("the swap plugin was built");
    let wasm_file = format!("swap_plugin-{generation}.wasm");
    std::fs::write(folder.join(&wasm_file), &wasm).unwrap();
    let sha256 = if broken {
        "0".repeat(64)
    } else {
        sha256_hex(&wasm)
    };
    let manifest = format!(
        r#"[plugin]
name = "swap-plugin"
version = "0.{generation}.0"
description = "cluster reload test plugin, generation {generation}"
interface = "grantbox:plugin@1.0.0"
capabilities = ["tokens", "config"]

[wasm]
file = "{wasm_file}"
sha256 = "{sha256}"

[provides]
response_types = []
grant_types = ["client_credentials"]

[limits]
memory_mib = 4
timeout_ms = 1000

[config]
generation = "{generation}"
grant_type = "client_credentials"
"#
    );
    let path = folder.join("plugin.toml");
    std::fs::write(path.with_extension("partial"), manifest).unwrap();
    std::fs::rename(path.with_extension("partial"), path).unwrap();
}

/// The swap plugin generation that answered a client credentials request.
fn generation(server: &Server, secret: &str) -> String {
    let (status, body, _) = client_credentials_request(server, secret, None);
    assert_eq!(status, 200, "{body}");
    body["plugin_generation"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `grantbox plugins reload --cluster --json` on `server`'s database (on
/// SQLite it goes through the server's admin API, with its admin token).
fn reload_cluster(server: &Server) -> std::process::Output {
    grantbox_with(
        &server.db,
        &[
            "--json",
            "plugins",
            "reload",
            "--cluster",
            "--timeout-seconds",
            "20",
        ],
        None,
        &[("GRANTBOX_ADMIN_TOKEN", &server.admin_token)],
    )
}

#[test]
fn plugins_reload_cluster_reaches_every_instance_and_reports_each_outcome() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for dir in &dirs {
        install_swap(dir.path(), "1", false);
    }
    let first = Server::start_with(Options {
        plugins: Some(dirs[0].path().to_owned()),
        ..Options::default()
    });
    let postgres = first.db.starts_with("postgres");
    let mut servers = vec![first];
    // On SQLite one instance uses the database.
    if postgres {
        servers.push(Server::start_with(Options {
            plugins: Some(dirs[1].path().to_owned()),
            db: Some(servers[0].db.clone()),
            ..Options::default()
        }));
    }
    let db = servers[0].db.clone();
    let secret = service_client(&servers[0], &[]);
    for server in &servers {
        assert_eq!(generation(server, &secret), "1");
    }
    let before = instances(&db)[0]["plugins"].as_str().unwrap().to_owned();

    // A new generation everywhere: every instance serves it.
    for dir in &dirs {
        install_swap(dir.path(), "2", false);
    }
    let output = reload_cluster(&servers[0]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    for server in &servers {
        assert_eq!(generation(server, &secret), "2");
    }
    let listed = instances(&db);
    assert_eq!(listed.len(), servers.len());
    let reload: Value = serde_json::from_slice(&output.stdout).expect("a JSON reload");
    assert_eq!(reload["reloaded"], true, "{reload}");
    let answers = reload["instances"].as_array().unwrap();
    assert_eq!(answers.len(), servers.len(), "{answers:?}");
    let after = answers[0]["plugins"].as_str().unwrap().to_owned();
    assert_ne!(after, before);
    for answer in answers {
        assert_eq!(
            (&answer["answered"], &answer["ok"]),
            (&json!(true), &json!(true)),
            "{answer}"
        );
        assert_eq!(answer["plugins"], after.as_str());
        assert!(
            listed.iter().any(|i| i["id"] == answer["instance_id"]),
            "{answer} is not a listed instance"
        );
    }
    // The heartbeat (once a minute) has not run since: the registry still
    // shows the fingerprint of the start.
    assert!(listed.iter().all(|i| i["plugins"] == before.as_str()));

    // The last instance's directory is broken: it reports the error and
    // keeps serving generation 2; the others move on to 3.
    install_swap(dirs[0].path(), "3", postgres.not());
    install_swap(dirs[1].path(), "3", true);
    let output = reload_cluster(&servers[0]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    let (broken, healthy) = servers.split_last().unwrap();
    assert_eq!(generation(broken, &secret), "2");
    for server in healthy {
        assert_eq!(generation(server, &secret), "3");
    }
    let reload: Value = serde_json::from_slice(&output.stdout).expect("a JSON reload");
    assert_eq!(reload["reloaded"], false, "{reload}");
    let failed = by_address_in(&reload, broken);
    assert_eq!(
        (&failed["answered"], &failed["ok"]),
        (&json!(true), &json!(false))
    );
    assert!(
        failed["error"].as_str().unwrap().contains("sha256"),
        "{failed}"
    );
    assert!(stderr.contains("failed"), "{stderr}");
    assert!(
        stderr.contains(failed["instance_id"].as_str().unwrap()),
        "{stderr}"
    );
    for server in healthy {
        assert_eq!(by_address_in(&reload, server)["ok"], true);
    }

    // The admin API's route does the same for any instance it is asked of
    // (on SQLite: that instance, with its one outcome), and the audit trail
    // names the admin token that asked.
    for dir in &dirs {
        install_swap(dir.path(), "4", false);
    }
    let response = servers[0]
        .admin_request(
            reqwest::Method::POST,
            "/admin/cluster/reload?timeout_seconds=20",
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let reload: Value = response.json().unwrap();
    assert_eq!(reload["reloaded"], true, "{reload}");
    assert_eq!(reload["instances"].as_array().unwrap().len(), servers.len());
    for server in &servers {
        assert_eq!(generation(server, &secret), "4");
        assert_eq!(by_address_in(&reload, server)["ok"], true);
    }
    let trail = servers[0]
        .admin_request(reqwest::Method::GET, "/admin/audit")
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert!(
        trail
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "plugins.reload_cluster"
                && r["target"] == reload["request_id"]
                && r["actor"].as_str().unwrap().starts_with("admin-token:")),
        "{trail}"
    );
    let refused = servers[0]
        .admin_request(
            reqwest::Method::POST,
            "/admin/cluster/reload?timeout_seconds=0",
        )
        .send()
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.json::<Value>().unwrap()["field"], "timeout_seconds");

    if postgres {
        // A lost LISTEN connection is opened again: with both connections
        // ended by the database, the next request still reaches both.
        let listening = "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'";
        assert_eq!(query_integer(broken, listening), 2);
        let ended = query_integer(
            broken,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        );
        assert_eq!(ended, 2);
        let deadline = Instant::now() + Duration::from_secs(15);
        while query_integer(broken, listening) < 2 {
            assert!(Instant::now() < deadline, "the listeners did not come back");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // The CLI through the admin API (`--admin`) asks the same route.
    for dir in &dirs {
        install_swap(dir.path(), "5", false);
    }
    let output = servers[0].admin_cli(
        &[
            "--json",
            "plugins",
            "reload",
            "--cluster",
            "--timeout-seconds",
            "20",
        ],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let reload: Value = serde_json::from_slice(&output.stdout).expect("a JSON reload");
    assert_eq!(reload["instances"].as_array().unwrap().len(), servers.len());
    for server in &servers {
        assert_eq!(generation(server, &secret), "5");
    }
}

/// The outcome of `server` in a cluster reload's answer.
fn by_address_in(reload: &Value, server: &Server) -> Value {
    reload["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| format!("http://{}", a["address"].as_str().unwrap()) == server.base)
        .unwrap_or_else(|| panic!("{} answered: {reload}", server.base))
        .clone()
}
