//! Interface versions (`plugin-sdk/README.md`, "Interface versions"): a plugin
//! built against a frozen copy of `grantbox:plugin@1.0.0` or `@1.1.0` runs
//! on this 1.4 host and serves a token request; a plugin of a newer minor (1.5.0) or
//! another major (2.0.0) is refused at load with both versions named, whether
//! the manifest says so or lies and only the component's export tells.

use crate::harness::{
    Options, Server, confidential_client, grantbox, install_plugin, introspect_token,
    test_plugin_wasm, test_plugin_wasm_with, text, token_request,
};

const HOST: &str = "grantbox:plugin@1.4.0";

fn manifest(interface: &str, grant_type: &str) -> String {
    manifest_with(interface, grant_type, r#"["tokens"]"#)
}

fn manifest_with(interface: &str, grant_type: &str, capabilities: &str) -> String {
    format!(
        r#"[plugin]
name = "{{name}}"
version = "0.1.0"
interface = "{interface}"
capabilities = {capabilities}

[wasm]
file = "{{wasm}}"
sha256 = "{{sha256}}"

[provides]
grant_types = ["{grant_type}"]
"#
    )
}

/// `grantbox plugins check DIR` on one installed plugin: success and output.
fn check(wasm: &std::path::Path, manifest_body: &str) -> (bool, String) {
    let plugins = tempfile::tempdir().unwrap();
    install_plugin(plugins.path(), "versioned", wasm, manifest_body);
    let output = grantbox(
        "sqlite::memory:",
        &["plugins", "check", &plugins.path().display().to_string()],
        None,
    );
    (
        output.status.success(),
        format!("{}{}", text(&output.stdout), text(&output.stderr)),
    )
}

#[test]
fn a_plugin_built_against_1_1_serves_tokens_on_this_host() {
    const GRANT_TYPE: &str = "urn:grantbox:test:interface-1-1";
    let wasm = test_plugin_wasm("interface-1-1-plugin");
    let plugins = tempfile::tempdir().unwrap();
    install_plugin(
        plugins.path(),
        "interface-1-1",
        &wasm,
        &manifest_with(
            "grantbox:plugin@1.1.0",
            GRANT_TYPE,
            r#"["tokens", "token-exchange"]"#,
        ),
    );
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    let secret = confidential_client(&server, "mid", &[GRANT_TYPE], &["read"]);
    let (status, body, _) = token_request(&server, "mid", &secret, &[("grant_type", GRANT_TYPE)]);
    assert_eq!(status, 200, "{body}\n{}", server.logs());
    assert_eq!(body["scope"], "read");
    // The plugin looked its own token up through the 1.1 `token-exchange` import.
    assert_eq!(body["looked_up_client_id"], "mid");
}

#[test]
fn a_plugin_built_against_1_0_serves_tokens_on_this_host() {
    const GRANT_TYPE: &str = "urn:grantbox:test:interface-1-0";
    let wasm = test_plugin_wasm("interface-1-0-plugin");
    let plugins = tempfile::tempdir().unwrap();
    install_plugin(
        plugins.path(),
        "interface-1-0",
        &wasm,
        &manifest("grantbox:plugin@1.0.0", GRANT_TYPE),
    );
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    let secret = confidential_client(&server, "old", &[GRANT_TYPE], &["read"]);
    let (status, body, _) = token_request(&server, "old", &secret, &[("grant_type", GRANT_TYPE)]);
    assert_eq!(status, 200, "{body}\n{}", server.logs());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read");
    // The plugin introspected its own token through the 1.0 `tokens` import.
    assert_eq!(body["introspected_client_id"], "old");

    let access_token = body["access_token"].as_str().unwrap();
    let introspection = introspect_token(&server, "old", &secret, access_token);
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["client_id"], "old");
}

#[test]
fn a_manifest_naming_a_newer_minor_or_another_major_is_refused() {
    let wasm = test_plugin_wasm("interface-1-0-plugin");
    for newer in ["grantbox:plugin@1.5.0", "grantbox:plugin@2.0.0"] {
        let (ok, output) = check(&wasm, &manifest(newer, "urn:grantbox:test:interface-1-0"));
        assert!(!ok, "{newer} was accepted: {output}");
        assert!(output.contains("plugin.interface"), "{output}");
        assert!(
            output.contains(newer) && output.contains(HOST),
            "the error names both versions: {output}"
        );
    }
}

#[test]
fn a_component_built_against_a_newer_interface_is_refused_though_its_manifest_lies() {
    for (feature, built) in [
        ("minor", "grantbox:plugin@1.5.0"),
        ("major", "grantbox:plugin@2.0.0"),
    ] {
        let wasm = test_plugin_wasm_with("interface-next-plugin", &[feature]);
        let (ok, output) = check(
            &wasm,
            &manifest("grantbox:plugin@1.0.0", "urn:grantbox:test:interface-next"),
        );
        assert!(
            !ok,
            "a component built against {built} was accepted: {output}"
        );
        assert!(output.contains("wasm.file"), "{output}");
        assert!(
            output.contains(&format!("built against {built}")) && output.contains(HOST),
            "the error names both versions: {output}"
        );
    }
}

#[test]
fn a_manifest_claiming_more_than_the_component_was_built_against_is_refused() {
    let wasm = test_plugin_wasm("interface-1-0-plugin");
    let (ok, output) = check(
        &wasm,
        &manifest("grantbox:plugin@1.1.0", "urn:grantbox:test:interface-1-0"),
    );
    assert!(!ok, "{output}");
    assert!(
        output.contains("plugin.interface")
            && output.contains("the manifest says grantbox:plugin@1.1.0")
            && output.contains("built against grantbox:plugin@1.0.0"),
        "{output}"
    );
}
