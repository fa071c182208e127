//! Plugin quotas and call budgets over the real binary:
//! tokens past the per-call cap and key-value writes past the quota are
//! refused before they are stored, one name is one plugin, and host calls
//! (count and time) are bounded so that a plugin's deadline bounds its call.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{
    Options, Server, assert_oauth_error, fault_manifest, grantbox, install_plugin, query_integer,
    test_plugin_wasm, text, token_request, user_add,
};

/// A server whose only directory plugin is the fault plugin in `mode`, with
/// `capabilities`, the manifest passed through `edit`; and a client `svc`
/// that may use its grant type. Returns the server and the client secret.
fn fault_server(
    plugins: &Path,
    mode: &str,
    capabilities: &str,
    edit: impl Fn(String) -> String,
) -> (Server, String) {
    let grant_type = format!("urn:grantbox:test:{mode}");
    install_plugin(
        plugins,
        &format!("fault-{mode}"),
        &test_plugin_wasm("fault-plugin"),
        &edit(fault_manifest(&grant_type, mode, capabilities)),
    );
    let server = Server::start_with(Options {
        plugins: Some(plugins.to_owned()),
        ..Default::default()
    });
    let secret = server
        .client_add(&["svc", "--grant-type", &grant_type, "--scope", "read"])
        .unwrap();
    (server, secret)
}

fn description(body: &serde_json::Value) -> &str {
    body["error_description"].as_str().unwrap_or_default()
}

#[test]
fn tokens_past_the_per_call_cap_are_refused_before_they_are_stored() {
    let plugins = tempfile::tempdir().unwrap();
    let (server, secret) = fault_server(
        plugins.path(),
        "issue-many",
        "\"tokens\", \"config\"",
        |m| m,
    );
    let (status, body, _) = token_request(
        &server,
        "svc",
        &secret,
        &[("grant_type", "urn:grantbox:test:issue-many")],
    );
    assert_eq!(status, 500, "{body}");
    assert!(
        description(&body)
            .contains("host refused after 16: invalid-argument: at most 16 tokens or codes a call"),
        "{body}"
    );
    // The refused 17th token was never written: the 16 allowed are in the
    // store, not one more.
    let stored = query_integer(
        &server,
        "SELECT COUNT(*) FROM tokens WHERE client_id = 'svc'",
    );
    assert_eq!(stored, 16, "tokens stored by one call");
}

#[test]
fn key_value_writes_past_the_quota_are_refused_with_invalid_argument() {
    let plugins = tempfile::tempdir().unwrap();
    // The manifest's defaults: 256 KiB of writes a call, 1 MiB and 1,000
    // keys a namespace.
    let (server, secret) = fault_server(
        plugins.path(),
        "key-value-flood",
        "\"tokens\", \"config\", \"key-value\"",
        |m| m,
    );
    let namespace_bytes = || {
        query_integer(
            &server,
            "SELECT CAST(COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) AS BIGINT) FROM kv \
             WHERE namespace = 'fault-key-value-flood'",
        )
    };
    let mut descriptions = Vec::new();
    for round in 0..6 {
        let (status, body, _) = token_request(
            &server,
            "svc",
            &secret,
            &[
                ("grant_type", "urn:grantbox:test:key-value-flood"),
                ("prefix", &format!("round-{round}")),
            ],
        );
        assert_eq!(status, 500, "{body}");
        assert!(
            description(&body).contains("invalid-argument"),
            "round {round}: {body}"
        );
        assert!(
            namespace_bytes() <= (round + 1) * 256 * 1024,
            "round {round}: more than the per-call write budget was stored"
        );
        descriptions.push(description(&body).to_owned());
    }
    assert!(
        descriptions[0].contains("key-value writes of one call exceed 262144 bytes"),
        "{descriptions:?}"
    );
    assert!(
        descriptions
            .iter()
            .any(|d| d.contains("namespace of plugin fault-key-value-flood is full")),
        "{descriptions:?}"
    );
    let stored = namespace_bytes();
    assert!(
        stored > 512 * 1024 && stored <= 1024 * 1024,
        "the namespace holds {stored} bytes; its quota is 1 MiB"
    );
}

#[test]
fn two_plugins_of_one_name_are_refused() {
    let wasm = test_plugin_wasm("fault-plugin");
    let plugins = tempfile::tempdir().unwrap();
    for (folder, grant_type) in [("first", "urn:fault:first"), ("second", "urn:fault:second")] {
        let manifest = fault_manifest(grant_type, "ok", "\"tokens\", \"config\", \"key-value\"")
            .replace("name = \"{name}\"", "name = \"shared-name\"");
        install_plugin(plugins.path(), folder, &wasm, &manifest);
    }
    let output = grantbox(
        "sqlite::memory:",
        &["plugins", "check", &plugins.path().display().to_string()],
        None,
    );
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success(),
        "two plugins named shared-name loaded"
    );
    assert!(
        stderr.contains("second/plugin.toml: plugin.name: \"shared-name\" is also the name of")
            && stderr.contains("first/plugin.toml"),
        "{stderr}"
    );
}

#[test]
fn host_calls_past_the_budget_end_the_call_as_a_deadline_fault() {
    let plugins = tempfile::tempdir().unwrap();
    let (server, secret) = fault_server(
        plugins.path(),
        "key-value-gets",
        "\"tokens\", \"config\", \"key-value\"",
        |m| m,
    );
    let started = Instant::now();
    let (status, body, _) = token_request(
        &server,
        "svc",
        &secret,
        &[("grant_type", "urn:grantbox:test:key-value-gets")],
    );
    let elapsed = started.elapsed();
    assert_oauth_error((status, &body), 500, "server_error");
    // A generous bound: the budget is 64 calls; 20,000 took about a second.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let stored = query_integer(
        &server,
        "SELECT COUNT(*) FROM tokens WHERE client_id = 'svc'",
    );
    assert_eq!(stored, 0, "the call issued a token past its budget");
    let fault = |l: &str| {
        l.contains("plugin fault")
            && l.contains("fault-key-value-gets")
            && l.contains("kind=deadline")
            && l.contains("more than 64 host calls")
    };
    let logs = server.logs_once(fault);
    assert!(logs.lines().any(fault), "{logs}");
}

#[test]
fn time_in_host_calls_past_the_budget_ends_the_call_as_a_deadline_fault() {
    let plugins = tempfile::tempdir().unwrap();
    let (server, secret) = fault_server(
        plugins.path(),
        "password-checks",
        "\"tokens\", \"config\", \"users\"",
        |m| {
            m.replace("timeout_ms = 200", "timeout_ms = 200\nhost_time_ms = 300")
                .replace(
                    "[config]",
                    "[config]\nusername = \"alice\"\npassword = \"wonderland-1\"",
                )
        },
    );
    user_add(&server, "alice", "wonderland-1");
    let started = Instant::now();
    let (status, body, _) = token_request(
        &server,
        "svc",
        &secret,
        &[("grant_type", "urn:grantbox:test:password-checks")],
    );
    let elapsed = started.elapsed();
    assert_oauth_error((status, &body), 500, "server_error");
    // 300 checks took 5-7 s before; the budget stops the call after about
    // 300 ms of them (one check may run past it), or after 64 calls.
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    let stored = query_integer(
        &server,
        "SELECT COUNT(*) FROM tokens WHERE client_id = 'svc'",
    );
    assert_eq!(stored, 0, "the call issued a token past its budget");
    let fault = |l: &str| {
        l.contains("plugin fault")
            && l.contains("fault-password-checks")
            && l.contains("kind=deadline")
            && l.contains("budget spent")
    };
    let logs = server.logs_once(fault);
    assert!(logs.lines().any(fault), "{logs}");
}
