//! The WASI context a plugin runs in, seen from inside a real plugin (the
//! fault plugin's `sandbox` mode reports it): no environment variables, no
//! arguments, no files (not even one the server itself reads), a wall clock
//! stopped at the epoch and a monotonic clock that does not move; the time
//! comes only through the `clock` capability, and only when it is granted.

use std::collections::HashMap;

use crate::harness::{
    Options, Server, confidential_client, fault_manifest, install_plugin, test_plugin_wasm,
    token_request,
};

const WITHOUT_CLOCK: &str = "urn:grantbox:test:sandbox";
const WITH_CLOCK: &str = "urn:grantbox:test:sandbox-clock";

/// The plugin's report, `name=value` pairs, from its error description.
fn report(body: &serde_json::Value) -> HashMap<String, String> {
    let description = body["error_description"]
        .as_str()
        .unwrap_or_else(|| panic!("no description: {body}"));
    description
        .split(' ')
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("{pair} in {description}"));
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

#[test]
fn a_plugin_sees_no_environment_files_or_clock_of_its_own() {
    let wasm = test_plugin_wasm("fault-plugin");
    let plugins = tempfile::tempdir().unwrap();
    // A file the server process reads: the plugin's own manifest.
    let probe = plugins.path().join("sandbox").join("plugin.toml");
    let probe_line = format!("probe_path = {:?}\n", probe.display().to_string());
    install_plugin(
        plugins.path(),
        "sandbox",
        &wasm,
        &(fault_manifest(WITHOUT_CLOCK, "sandbox", "\"tokens\", \"config\"") + &probe_line),
    );
    install_plugin(
        plugins.path(),
        "sandbox-clock",
        &wasm,
        &(fault_manifest(WITH_CLOCK, "sandbox", "\"tokens\", \"config\", \"clock\"") + &probe_line),
    );
    assert!(probe.is_file(), "the probe file exists for the server");
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        // The server's environment has variables a leaky sandbox would pass on.
        env: vec![("GRANTBOX_SANDBOX_PROBE".into(), "visible".into())],
        ..Default::default()
    });
    let secret = confidential_client(&server, "svc", &[WITHOUT_CLOCK, WITH_CLOCK], &[]);
    let seen = |grant_type: &str| {
        let (status, body, _) =
            token_request(&server, "svc", &secret, &[("grant_type", grant_type)]);
        assert_eq!(status, 500, "{body}");
        report(&body)
    };

    let without = seen(WITHOUT_CLOCK);
    for (name, expected) in [
        ("environment", "0"),
        ("arguments", "0"),
        ("root", "unreadable"),
        ("cwd", "unreadable"),
        ("probe", "unreadable"),
        ("wall_clock", "0"),
        ("monotonic_ns", "0"),
        ("clock_capability", "refused"),
    ] {
        assert_eq!(without[name], expected, "{name}: {without:?}");
    }

    // Granted the clock capability, the plugin gets the server's time there,
    // and only there.
    let with = seen(WITH_CLOCK);
    assert_eq!(with["wall_clock"], "0", "{with:?}");
    assert_eq!(with["environment"], "0", "{with:?}");
    let now: u64 = with["clock_capability"]
        .parse()
        .unwrap_or_else(|_| panic!("{with:?}"));
    let test_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        now.abs_diff(test_now) < 60,
        "the clock capability says {now}, the test {test_now}"
    );
}
