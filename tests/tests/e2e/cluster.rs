//! The instances sharing one database: each server registers itself at
//! start and deregisters on a clean shutdown; `grantbox instances` lists
//! them with their addresses and plugin set fingerprints.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Options, Server, grantbox, text};

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
