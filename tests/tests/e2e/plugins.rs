//! The plugin set: bundled plugins embedded in the binary, a plugin directory
//! that adds and replaces, and `plugins list|check|export`.

use crate::harness::{
    Options, Server, client_credentials_request, fault_manifest, grantbox, install_plugin,
    service_client, test_plugin_wasm, text,
};

#[test]
fn a_directory_plugin_replaces_the_bundled_one_of_the_same_type() {
    let wasm = test_plugin_wasm("fault-plugin");
    let plugins = tempfile::tempdir().unwrap();
    install_plugin(
        plugins.path(),
        "my-cc",
        &wasm,
        &fault_manifest("client_credentials", "ok", "\"tokens\", \"config\""),
    );
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    let secret = service_client(&server, &[]);
    let (status, body, _) = client_credentials_request(&server, &secret, None);
    assert_eq!(status, 200, "{body}");
    let logs = server.logs();
    assert!(
        logs.contains("replaces a bundled one") && logs.contains("grant-client-credentials"),
        "{logs}"
    );
    let metrics = server.metrics();
    assert!(
        metrics.contains(
            r#"grantbox_plugin_calls_total{plugin="my-cc",function="exchange",outcome="ok"} 1"#
        ),
        "{metrics}"
    );
}

#[test]
fn export_then_check_and_serve_the_exported_set() {
    let out = tempfile::tempdir().unwrap();
    let output = grantbox(
        "sqlite::memory:",
        &["plugins", "export", &out.path().display().to_string()],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let manifest =
        std::fs::read_to_string(out.path().join("grant-client-credentials/plugin.toml")).unwrap();
    assert!(manifest.contains("sha256 = \""), "{manifest}");

    let output = grantbox(
        "sqlite::memory:",
        &["plugins", "check", &out.path().display().to_string()],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("plugin(s) valid"));

    let output = grantbox(
        "sqlite::memory:",
        &[
            "plugins",
            "list",
            "--plugins",
            &out.path().display().to_string(),
        ],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let listing = text(&output.stdout);
    assert!(
        listing.contains("grant-client-credentials 0.1.0"),
        "{listing}"
    );
    assert!(
        listing.contains("plugin.toml"),
        "the exported copy replaced the bundled one: {listing}"
    );

    let server = Server::start_with(Options {
        plugins: Some(out.path().to_owned()),
        ..Default::default()
    });
    let secret = service_client(&server, &[]);
    let (status, _, _) = client_credentials_request(&server, &secret, None);
    assert_eq!(status, 200);
}

#[test]
fn check_reports_a_broken_directory() {
    let empty = tempfile::tempdir().unwrap();
    let output = grantbox(
        "sqlite::memory:",
        &["plugins", "check", &empty.path().display().to_string()],
        None,
    );
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("no plugin.toml found"),
        "{}",
        text(&output.stderr)
    );
}
