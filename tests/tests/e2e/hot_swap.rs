//! Hot swap of plugins in a running server: a reload through `grantbox
//! plugins reload`, the admin endpoint or SIGHUP swaps in the plugin
//! directory's new set while requests keep flowing, refuses a broken set and
//! keeps the old one serving, and lets a waiting authorization transaction
//! be decided by the plugin version that began it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{
    Browser, Options, Server, client_credentials_request, example_app, grantbox, redirect_params,
    service_client, sha256_hex, test_plugin_wasm, text, user_add, visit_as_alice,
};

const CALLBACK: &str = "http://127.0.0.1:9999/cb";
const PASSWORD: &str = "correct horse battery staple";
/// The response type the swap plugin claims in the transaction tests.
const SWAP_RESPONSE_TYPE: &str = "urn:grantbox:test:swap";

/// One version of the swap plugin: what its manifest says.
struct Version<'a> {
    version: &'a str,
    generation: &'a str,
    grant_type: &'a str,
    response_type: Option<&'a str>,
}

impl Version<'_> {
    /// Replaces a bundled grant: `client_credentials` answered by the swap plugin.
    fn client_credentials(generation: &str) -> Version<'_> {
        Version {
            version: if generation == "1" { "0.1.0" } else { "0.2.0" },
            generation,
            grant_type: "client_credentials",
            response_type: None,
        }
    }

    fn manifest(&self, wasm_file: &str, sha256: &str) -> String {
        let response_types = match self.response_type {
            Some(response_type) => format!("[\"{response_type}\"]"),
            None => "[]".into(),
        };
        let response_type_config = match self.response_type {
            Some(response_type) => format!("response_type = \"{response_type}\"\n"),
            None => String::new(),
        };
        format!(
            r#"[plugin]
name = "swap-plugin"
version = "{version}"
description = "hot swap test plugin, generation {generation}"
interface = "grantbox:plugin@1.0.0"
capabilities = ["tokens", "config"]

[wasm]
file = "{wasm_file}"
sha256 = "{sha256}"

[provides]
response_types = {response_types}
grant_types = ["{grant_type}"]

[limits]
memory_mib = 4
timeout_ms = 1000

[config]
generation = "{generation}"
grant_type = "{grant_type}"
{response_type_config}"#,
            version = self.version,
            generation = self.generation,
            grant_type = self.grant_type,
        )
    }
}

/// Writes `bytes` to `path` as a whole: into a temporary file beside it,
/// then renamed over it, so a server reading at any moment sees the old file
/// or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) {
    let temporary = path.with_extension("partial");
    std::fs::write(&temporary, bytes).expect("the plugin directory is writable");
    std::fs::rename(&temporary, path).expect("rename within one directory");
}

/// Installs (or replaces) the swap plugin in `<plugins>/swap-plugin/`: the
/// wasm first, under a name of its own, then the manifest that names it.
fn install(plugins: &Path, version: &Version<'_>, wasm: &[u8]) -> PathBuf {
    let folder = plugins.join("swap-plugin");
    std::fs::create_dir_all(&folder).expect("plugin folder");
    let wasm_file = format!("swap_plugin-{}.wasm", version.generation);
    write_atomically(&folder.join(&wasm_file), wasm);
    let manifest = folder.join("plugin.toml");
    write_atomically(
        &manifest,
        version.manifest(&wasm_file, &sha256_hex(wasm)).as_bytes(),
    );
    manifest
}

fn swap_wasm() -> Vec<u8> {
    std::fs::read(test_plugin_wasm("swap-plugin")).expect("the swap plugin was built")
}

/// A server on a plugin directory holding generation 1 of `version`.
fn start(version: &Version<'_>) -> (Server, tempfile::TempDir) {
    let plugins = tempfile::tempdir().unwrap();
    install(plugins.path(), version, &swap_wasm());
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    (server, plugins)
}

/// `grantbox plugins reload --admin <the server's admin URL>`.
fn reload(server: &Server) -> std::process::Output {
    server.reload_plugins()
}

/// The generation that answered a client credentials request, with its status.
fn generation(server: &Server, secret: &str) -> (u16, String) {
    let (status, body, _) = client_credentials_request(server, secret, None);
    let generation = body["plugin_generation"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, generation)
}

fn metrics(server: &Server) -> String {
    server.metrics()
}

/// One token request of the load: its status, the generation that answered,
/// and whether it started after `plugins reload` had returned.
#[derive(Debug, Clone)]
struct Outcome {
    status: u16,
    generation: String,
    after_reload: bool,
}

#[test]
fn a_swap_under_load_fails_no_request_and_later_requests_see_the_new_version() {
    let (server, plugins) = start(&Version::client_credentials("1"));
    let secret = service_client(&server, &[]);
    assert_eq!(generation(&server, &secret), (200, "1".to_owned()));

    let server = Arc::new(server);
    let reloaded = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<Vec<Outcome>>>> = Arc::new(Mutex::new(vec![Vec::new(); 4]));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (server, secret) = (server.clone(), secret.clone());
            let (reloaded, stop, outcomes) = (reloaded.clone(), stop.clone(), outcomes.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let after_reload = reloaded.load(Ordering::SeqCst);
                    let (status, generation) = generation(&server, &secret);
                    outcomes.lock().unwrap()[worker].push(Outcome {
                        status,
                        generation,
                        after_reload,
                    });
                }
            })
        })
        .collect();
    let wait_until_each_worker_has = |count: usize, after_reload: bool| {
        for _ in 0..6000 {
            let done = outcomes.lock().unwrap().iter().all(|outcomes| {
                outcomes
                    .iter()
                    .filter(|o| o.after_reload == after_reload)
                    .count()
                    >= count
            });
            if done {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the load stalled: {:?}", outcomes.lock().unwrap());
    };
    wait_until_each_worker_has(10, false);

    install(
        plugins.path(),
        &Version::client_credentials("2"),
        &swap_wasm(),
    );
    let output = reload(&server);
    reloaded.store(true, Ordering::SeqCst);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("swap-plugin 0.2.0")
            && stdout.contains(&format!("sha256={}", sha256_hex(&swap_wasm())))
            && stdout.contains("grant-authorization-code"),
        "{stdout}"
    );

    wait_until_each_worker_has(10, true);
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.join().unwrap();
    }
    let outcomes = outcomes.lock().unwrap();
    for (worker, outcomes) in outcomes.iter().enumerate() {
        let failed: Vec<_> = outcomes.iter().filter(|o| o.status != 200).collect();
        assert!(failed.is_empty(), "worker {worker}: {failed:?}");
        assert_eq!(outcomes[0].generation, "1", "worker {worker}");
        // Each worker's requests follow one another: once one saw the new
        // version, no later one may see the old.
        let first_new = outcomes
            .iter()
            .position(|o| o.generation == "2")
            .unwrap_or_else(|| panic!("worker {worker} never saw generation 2"));
        let old_after_new: Vec<_> = outcomes[first_new..]
            .iter()
            .filter(|o| o.generation != "2")
            .collect();
        assert!(
            old_after_new.is_empty(),
            "worker {worker}: {old_after_new:?}"
        );
        assert!(
            outcomes
                .iter()
                .filter(|o| o.after_reload)
                .all(|o| o.generation == "2"),
            "worker {worker}: a request begun after the reload saw the old version"
        );
    }
    assert!(
        metrics(&server).contains(r#"grantbox_plugin_reloads_total{result="ok"} 1"#),
        "{}",
        metrics(&server)
    );
}

#[test]
fn a_broken_replacement_is_refused_and_the_old_version_keeps_serving() {
    let (server, plugins) = start(&Version::client_credentials("1"));
    let secret = service_client(&server, &[]);
    let wasm = swap_wasm();
    let manifest = plugins.path().join("swap-plugin").join("plugin.toml");

    // A manifest whose sha256 is not the wasm's.
    let version = Version::client_credentials("2");
    let wasm_file = "swap_plugin-2.wasm";
    write_atomically(&manifest.with_file_name(wasm_file), &wasm);
    write_atomically(
        &manifest,
        version.manifest(wasm_file, &"0".repeat(64)).as_bytes(),
    );
    let output = reload(&server);
    assert!(!output.status.success(), "a bad sha256 was accepted");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&manifest.display().to_string()) && stderr.contains("wasm.sha256"),
        "{stderr}"
    );
    assert_eq!(generation(&server, &secret), (200, "1".to_owned()));

    // A file that is not wasm at all, with its true sha256.
    let not_wasm = b"this is not a WebAssembly component";
    let wasm_file = "swap_plugin-3.wasm";
    write_atomically(&manifest.with_file_name(wasm_file), not_wasm);
    write_atomically(
        &manifest,
        version
            .manifest(wasm_file, &sha256_hex(not_wasm))
            .as_bytes(),
    );
    let output = reload(&server);
    assert!(!output.status.success(), "a non-wasm file was accepted");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&manifest.display().to_string())
            && stderr.contains("wasm.file")
            && stderr.contains(wasm_file),
        "{stderr}"
    );
    assert_eq!(generation(&server, &secret), (200, "1".to_owned()));

    // The admin endpoint answers the same refusal as JSON, with a 4xx.
    let response = server
        .admin_request(reqwest::Method::POST, "/admin/plugins/reload")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["reloaded"], false, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains(wasm_file),
        "{body}"
    );
    let logs = server.logs();
    assert!(
        logs.contains("plugin reload refused") && logs.contains("wasm.sha256"),
        "{logs}"
    );
    let metrics_text = metrics(&server);
    assert!(
        metrics_text.contains(r#"grantbox_plugin_reloads_total{result="error"} 3"#),
        "{metrics_text}"
    );

    // Once the directory is whole again, the next reload takes it.
    install(plugins.path(), &version, &wasm);
    let output = reload(&server);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(generation(&server, &secret), (200, "2".to_owned()));
}

#[test]
fn sighup_reloads_the_plugins() {
    let (server, plugins) = start(&Version::client_credentials("1"));
    let secret = service_client(&server, &[]);
    assert_eq!(generation(&server, &secret), (200, "1".to_owned()));
    install(
        plugins.path(),
        &Version::client_credentials("2"),
        &swap_wasm(),
    );
    // Nothing reloads by itself.
    assert_eq!(generation(&server, &secret), (200, "1".to_owned()));

    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    // The signal is handled in the background: wait for the swap.
    let mut seen = Vec::new();
    for _ in 0..600 {
        let answer = generation(&server, &secret);
        assert_eq!(answer.0, 200, "{seen:?}");
        if answer.1 == "2" {
            break;
        }
        seen.push(answer);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(generation(&server, &secret), (200, "2".to_owned()));
    let logs = server.logs();
    assert!(
        logs.contains("SIGHUP") && logs.contains("plugins reloaded"),
        "{logs}"
    );
}

#[test]
fn with_watch_plugins_a_change_to_the_directory_reloads() {
    let plugins = tempfile::tempdir().unwrap();
    install(
        plugins.path(),
        &Version::client_credentials("1"),
        &swap_wasm(),
    );
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        extra_args: vec!["--watch-plugins".into()],
        ..Default::default()
    });
    let secret = service_client(&server, &[]);
    assert_eq!(generation(&server, &secret), (200, "1".to_owned()));

    install(
        plugins.path(),
        &Version::client_credentials("2"),
        &swap_wasm(),
    );
    for _ in 0..600 {
        let answer = generation(&server, &secret);
        assert_eq!(answer.0, 200);
        if answer.1 == "2" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(generation(&server, &secret), (200, "2".to_owned()));
    let logs = server.logs();
    assert!(
        logs.contains("the plugin directory changed") && logs.contains("plugins reloaded"),
        "{logs}"
    );
}

#[test]
fn the_admin_listener_refuses_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("g.db").display());
    let output = grantbox(
        &db,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
        ],
        None,
    );
    assert!(
        !output.status.success(),
        "serve took a public admin address"
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("admin_listen")
            && stderr.contains("not a loopback address")
            && stderr.contains("admin_behind_tls_proxy"),
        "{stderr}"
    );

    let config = dir.path().join("grantbox.toml");
    std::fs::write(&config, "admin_listen = \"192.0.2.1:8181\"\n").unwrap();
    let output = grantbox(
        &db,
        &[
            "--config",
            &config.display().to_string(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
        None,
    );
    assert!(
        !output.status.success(),
        "serve took a public admin address"
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr
            .contains("grantbox.toml: admin_listen: \"192.0.2.1:8181\" is not a loopback address"),
        "{stderr}"
    );
}

#[test]
fn the_metadata_document_follows_the_current_set() {
    let version = |generation, grant_type| Version {
        version: "0.1.0",
        generation,
        grant_type,
        response_type: None,
    };
    let (server, plugins) = start(&version("1", "urn:example:first"));
    let supported = || {
        let document: serde_json::Value = server.metadata();
        document["grant_types_supported"].clone()
    };
    assert!(
        supported()
            .as_array()
            .unwrap()
            .contains(&"urn:example:first".into())
    );
    install(
        plugins.path(),
        &version("2", "urn:example:second"),
        &swap_wasm(),
    );
    let output = reload(&server);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let grant_types = supported();
    let grant_types = grant_types.as_array().unwrap();
    assert!(
        grant_types.contains(&"urn:example:second".into()),
        "{grant_types:?}"
    );
    assert!(
        !grant_types.contains(&"urn:example:first".into()),
        "{grant_types:?}"
    );
    assert!(
        grant_types.contains(&"client_credentials".into()),
        "{grant_types:?}"
    );
}

/// Signs in and stops at the consent page of an authorization request for
/// the swap plugin's response type; returns the consent form's fields. Each
/// call asks for a scope not consented to yet, so the consent page shows.
fn consent_page(server: &Server, browser: &Browser, scope: &str) -> (String, String) {
    let consent = visit_as_alice(
        browser,
        server,
        &server.url(&format!(
            "/authorize?response_type={SWAP_RESPONSE_TYPE}&client_id=app&redirect_uri={CALLBACK}&state=s1&scope={scope}"
        )),
    );
    assert_eq!(consent.status, 200, "{}", consent.body);
    (consent.input("transaction_id"), consent.input("csrf_token"))
}

fn allow(
    server: &Server,
    browser: &Browser,
    (transaction_id, csrf_token): &(String, String),
) -> std::collections::HashMap<String, String> {
    let decided = browser.post(
        &server.url("/authorize/decision"),
        &[
            ("transaction_id", transaction_id),
            ("csrf_token", csrf_token),
            ("allow", "1"),
        ],
    );
    assert_eq!(decided.status, 303, "{}", decided.body);
    redirect_params(&decided.location(), true)
}

#[test]
fn a_transaction_begun_before_a_swap_is_decided_by_the_version_that_began_it() {
    let version = |generation, response_type| Version {
        version: "0.1.0",
        generation,
        grant_type: "urn:grantbox:test:swap",
        response_type,
    };
    let (server, plugins) = start(&version("1", Some(SWAP_RESPONSE_TYPE)));
    user_add(&server, "alice", PASSWORD);
    example_app(&server, CALLBACK, &["--scope", "admin"]);
    let browser = Browser::new();

    let waiting = consent_page(&server, &browser, "read");
    install(
        plugins.path(),
        &version("2", Some(SWAP_RESPONSE_TYPE)),
        &swap_wasm(),
    );
    assert!(reload(&server).status.success());
    let decided = allow(&server, &browser, &waiting);
    assert_eq!(
        decided.get("plugin_generation").map(String::as_str),
        Some("1"),
        "{decided:?}"
    );
    assert_eq!(
        decided.get("began_with_generation").map(String::as_str),
        Some("1")
    );

    // A transaction begun now belongs to the new version.
    let fresh = consent_page(&server, &browser, "write");
    let decided = allow(&server, &browser, &fresh);
    assert_eq!(
        decided.get("plugin_generation").map(String::as_str),
        Some("2"),
        "{decided:?}"
    );

    // A swap that drops the response type fails the waiting transaction
    // with an OAuth error, sent back to the client.
    let waiting = consent_page(&server, &browser, "admin");
    install(plugins.path(), &version("3", None), &swap_wasm());
    assert!(reload(&server).status.success());
    let decided = allow(&server, &browser, &waiting);
    assert_eq!(
        decided.get("error").map(String::as_str),
        Some("unsupported_response_type"),
        "{decided:?}"
    );
    assert_eq!(decided.get("state").map(String::as_str), Some("s1"));
    assert!(!decided.contains_key("plugin_generation"), "{decided:?}");
}
