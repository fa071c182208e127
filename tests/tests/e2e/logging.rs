//! What the server logs of each plugin call, and `GRANTBOX_LOG` choosing
//! what is shown: a `plugin call` line at debug level names the plugin, its
//! version, the function called, how long it took and its outcome; the
//! default filter (`info`) hides it, a filter for the plugin module shows it,
//! and a filter that lowers that module alone hides it among other debug lines.

use crate::harness::{Options, Server, client_credentials_request, service_client};

/// A server with `GRANTBOX_LOG=filter` and a client of the bundled client
/// credentials grant; returns it after one token request.
fn served_with(filter: &str) -> Server {
    let server = Server::start_with(Options {
        env: vec![("GRANTBOX_LOG".into(), filter.into())],
        ..Default::default()
    });
    let secret = service_client(&server, &[]);
    let (status, body, _) = client_credentials_request(&server, &secret, None);
    assert_eq!(status, 200, "{body}");
    server
}

/// Waits (stderr is read on a thread of its own) until a log line passes
/// `wanted`; returns the line, or `None` after two seconds.
fn log_line(server: &Server, wanted: impl Fn(&str) -> bool) -> Option<String> {
    for _ in 0..20 {
        if let Some(line) = server.logs().lines().find(|line| wanted(line)) {
            return Some(line.to_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

fn is_plugin_call(line: &str) -> bool {
    line.contains("plugin call")
}

/// The version of the bundled client credentials plugin, from its
/// `plugin loaded` line (logged at info level whatever the filter below).
fn loaded_version(server: &Server) -> String {
    let line = log_line(server, |line| {
        line.contains("plugin loaded") && line.contains("plugin=grant-client-credentials")
    })
    .unwrap_or_else(|| panic!("no plugin loaded line:\n{}", server.logs()));
    let start = line.find(" version=").expect("a version field") + " version=".len();
    line[start..]
        .split_whitespace()
        .next()
        .expect("a version")
        .to_owned()
}

#[test]
fn a_plugin_call_logs_plugin_version_function_duration_and_outcome() {
    let server = served_with("info,grantbox::plugin=debug");
    let version = loaded_version(&server);
    let line = log_line(&server, |line| {
        is_plugin_call(line) && line.contains("function=\"exchange\"")
    })
    .unwrap_or_else(|| panic!("no plugin call line:\n{}", server.logs()));
    assert!(line.contains("DEBUG"), "{line}");
    for field in [
        "plugin=grant-client-credentials".to_owned(),
        format!("version={version}"),
        "function=\"exchange\"".to_owned(),
        "outcome=\"ok\"".to_owned(),
    ] {
        assert!(line.contains(&field), "{field} in {line}");
    }
    let duration = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("duration_us="))
        .unwrap_or_else(|| panic!("no duration in {line}"));
    assert!(duration.parse::<u64>().is_ok(), "{line}");
}

#[test]
fn grantbox_log_hides_or_shows_plugin_calls() {
    // The default filter: the plugin loaded (info) but its call (debug) is hidden.
    let server = served_with("info");
    loaded_version(&server);
    assert_eq!(log_line(&server, is_plugin_call), None);
    drop(server);

    // Debug everywhere but the plugin module: other debug lines, no plugin call.
    let server = served_with("debug,grantbox::plugin=info");
    assert!(
        log_line(&server, |line| line.contains("DEBUG")).is_some(),
        "other modules log at debug:\n{}",
        server.logs()
    );
    assert_eq!(log_line(&server, is_plugin_call), None);
    drop(server);

    // Debug for the plugin module alone shows the call.
    let server = served_with("warn,grantbox::plugin=debug");
    assert!(
        log_line(&server, is_plugin_call).is_some(),
        "{}",
        server.logs()
    );
}
