//! Faults under load and crash durability: misbehaving plugins do not cost the
//! healthy grant a single request nor grow the host's memory past a bound, and
//! `kill -9` during a load loses no token whose response reached the client.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{
    Options, Server, client_credentials_request, grantbox, http, install_fault_plugins,
    service_client, text, token_request,
};

const FAULTS: [&str; 3] = ["loop", "memory", "panic"];

#[test]
fn faulting_plugins_under_load_cost_the_healthy_grant_nothing() {
    let plugins = tempfile::tempdir().unwrap();
    install_fault_plugins(plugins.path(), &FAULTS, |mode| format!("urn:fault:{mode}"));
    // The healthy grant is the bundled client-credentials plugin, exported
    // with its shipped limits (a deadline of 100 ms) unchanged: the deadline
    // counts the guest's own work (fuel), so a thread descheduled on a 2-core
    // CI machine compiling beside the tests does not trip it.
    let exported = tempfile::tempdir().unwrap();
    let output = grantbox(
        "sqlite::memory:",
        &["plugins", "export", &exported.path().display().to_string()],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let healthy = plugins.path().join("grant-client-credentials");
    std::fs::rename(exported.path().join("grant-client-credentials"), &healthy).unwrap();
    let manifest = std::fs::read_to_string(healthy.join("plugin.toml")).unwrap();
    assert!(manifest.contains("timeout_ms = 100"), "{manifest}");
    let server = Arc::new(Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    }));
    let mut args = vec![
        "svc".to_owned(),
        "--grant-type".into(),
        "client_credentials".into(),
    ];
    for mode in FAULTS {
        args.extend(["--grant-type".into(), format!("urn:fault:{mode}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let secret = Arc::new(server.client_add(&args).unwrap());
    // Warm up, then take the baseline.
    for _ in 0..50 {
        client_credentials_request(&server, &secret, None);
    }
    let baseline_kib = server.rss_kib();

    let stop = Arc::new(AtomicBool::new(false));
    let healthy_ok = Arc::new(AtomicUsize::new(0));
    let healthy_failed = Arc::new(Mutex::new(Vec::new()));
    let faults_answered = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for _ in 0..4 {
        let (server, secret, stop, ok, failed) = (
            server.clone(),
            secret.clone(),
            stop.clone(),
            healthy_ok.clone(),
            healthy_failed.clone(),
        );
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (status, body, _) = client_credentials_request(&server, &secret, None);
                if status == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.lock().unwrap().push(format!("{status} {body}"));
                }
            }
        }));
    }
    for mode in FAULTS {
        let (server, secret, stop, answered) = (
            server.clone(),
            secret.clone(),
            stop.clone(),
            faults_answered.clone(),
        );
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (status, body, _) = token_request(
                    &server,
                    "svc",
                    &secret,
                    &[("grant_type", &format!("urn:fault:{mode}"))],
                );
                assert_eq!(
                    (status, body["error"].as_str()),
                    (500, Some("server_error")),
                    "{mode}"
                );
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("a load thread panicked");
    }
    let failed = healthy_failed.lock().unwrap();
    assert!(
        failed.is_empty(),
        "{} healthy requests failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        healthy_ok.load(Ordering::Relaxed) > 100,
        "the healthy load ran"
    );
    assert!(
        faults_answered.load(Ordering::Relaxed) >= 6,
        "the faulty grants ran"
    );

    // Every faulting instance is dropped: memory stays within a stated bound
    // (64 MiB over the warm baseline) however many faults happened.
    let grown_kib = server.rss_kib().saturating_sub(baseline_kib);
    assert!(
        grown_kib < 64 * 1024,
        "the host grew by {grown_kib} KiB under faults"
    );

    let metrics = server.metrics();
    for (mode, kind) in [
        ("loop", "deadline"),
        ("memory", "memory"),
        ("panic", "panic"),
    ] {
        assert!(
            metrics.contains(&format!(
                "grantbox_plugin_faults_total{{plugin=\"fault-{mode}\",kind=\"{kind}\"}}"
            )),
            "{mode}: {metrics}"
        );
    }
}

#[test]
fn kill_9_during_a_load_loses_no_token_that_reached_the_client() {
    let server = Server::start();
    let secret = Arc::new(service_client(&server, &[]));
    let base = server.base.clone();
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut threads = Vec::new();
    for _ in 0..4 {
        let (base, secret, received) = (base.clone(), secret.clone(), received.clone());
        threads.push(std::thread::spawn(move || {
            let client = http();
            loop {
                let response = client
                    .post(format!("{base}/token"))
                    .basic_auth("svc", Some(secret.as_str()))
                    .form(&[("grant_type", "client_credentials")])
                    .send();
                // After the kill: connection refused or reset ends the load.
                let Ok(response) = response else { break };
                let Ok(body) = response.json::<serde_json::Value>() else {
                    break;
                };
                if let Some(token) = body["access_token"].as_str() {
                    received.lock().unwrap().push(token.to_owned());
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let dir = server.kill();
    for thread in threads {
        thread.join().unwrap();
    }
    let received = received.lock().unwrap().clone();
    assert!(received.len() > 50, "the load ran: {}", received.len());

    let server = Server::start_with(Options {
        dir: Some(dir),
        ..Default::default()
    });
    let client = http();
    for token in &received {
        let introspection: serde_json::Value = client
            .post(server.url("/introspect"))
            .basic_auth("svc", Some(secret.as_str()))
            .form(&[("token", token.as_str())])
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(
            introspection["active"], true,
            "a token the client received was lost by the crash"
        );
    }
}

/// Clients that hang up mid-request must not leave a store transaction open:
/// a dropped `BEGIN IMMEDIATE` once left SQLite's write lock held and every
/// later token request failing (found under load by bench/run.sh).
#[test]
fn clients_hanging_up_mid_request_leave_the_store_usable() {
    let server = Arc::new(Server::start());
    let secret = Arc::new(service_client(server.as_ref(), &[]));
    let mut threads = Vec::new();
    for _ in 0..8 {
        let (server, secret) = (server.clone(), secret.clone());
        threads.push(std::thread::spawn(move || {
            let impatient = reqwest::blocking::Client::builder()
                .timeout(Duration::from_micros(300))
                .build()
                .unwrap();
            for _ in 0..150 {
                let _ = impatient
                    .post(server.url("/token"))
                    .basic_auth("svc", Some(secret.as_str()))
                    .form(&[("grant_type", "client_credentials")])
                    .send();
            }
        }));
    }
    for thread in threads {
        thread.join().unwrap();
    }
    for _ in 0..20 {
        let (status, body, _) = client_credentials_request(&server, &secret, None);
        assert_eq!(status, 200, "the store is still usable: {body}");
    }
}
