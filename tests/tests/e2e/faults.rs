//! Fault isolation with real misbehaving plugins built with the SDK: runtime
//! faults answer `server_error` and the server keeps serving; load-time
//! faults stop `serve` with an error naming the file and the field.

use std::path::Path;

use crate::harness::{
    Options, Server, client_credentials_request, fault_manifest, grantbox, install_fault_plugins,
    install_plugin, test_plugin_wasm, text, token_request,
};

const MODES: [&str; 5] = ["panic", "loop", "memory", "recursion", "capability"];

fn grant_type(mode: &str) -> String {
    format!("urn:grantbox:test:{mode}")
}

#[test]
fn runtime_faults_answer_server_error_and_the_server_keeps_serving() {
    let plugins = tempfile::tempdir().unwrap();
    install_fault_plugins(plugins.path(), &MODES, grant_type);
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    let mut args = vec![
        "svc".to_owned(),
        "--grant-type".into(),
        "client_credentials".into(),
    ];
    for mode in MODES {
        args.extend(["--grant-type".into(), grant_type(mode)]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let secret = server.client_add(&args).unwrap();

    for mode in MODES {
        for round in 0..2 {
            let (status, body, _) = token_request(
                &server,
                "svc",
                &secret,
                &[("grant_type", &grant_type(mode))],
            );
            assert_eq!(status, 500, "{mode} round {round}: {body}");
            assert_eq!(body["error"], "server_error", "{mode}");
            let (status, _, _) = client_credentials_request(&server, &secret, None);
            assert_eq!(status, 200, "the healthy grant still works after {mode}");
        }
    }

    let logs = server.logs();
    // A Rust guest keeps its stack in linear memory: unbounded recursion
    // overflows it into an out-of-bounds access before wasm's own call stack.
    for (mode, kind) in [
        ("panic", "panic"),
        ("loop", "deadline"),
        ("memory", "memory"),
        ("recursion", "out_of_bounds"),
    ] {
        assert!(
            logs.lines().any(|l| l.contains("plugin fault")
                && l.contains(&format!("fault-{mode}"))
                && l.contains(&format!("kind={kind}"))),
            "no {kind} fault logged for {mode}:\n{logs}"
        );
    }
    assert!(
        logs.lines().any(|l| l.contains("was not granted")
            && l.contains("fault-capability")
            && l.contains("users")),
        "the denied capability call is logged:\n{logs}"
    );
    let metrics = server.metrics();
    for (mode, kind) in [
        ("panic", "panic"),
        ("loop", "deadline"),
        ("memory", "memory"),
        ("recursion", "out_of_bounds"),
    ] {
        assert!(
            metrics.contains(&format!(
                r#"grantbox_plugin_faults_total{{plugin="fault-{mode}",kind="{kind}"}} 2"#
            )),
            "fault metric for {mode}:\n{metrics}"
        );
    }
    assert!(
        metrics.contains(
            r#"grantbox_plugin_denied_calls_total{plugin="fault-capability",capability="users"} 2"#
        ),
        "{metrics}"
    );
}

#[test]
fn a_denied_capability_is_an_error_the_plugin_sees() {
    let wasm = test_plugin_wasm("fault-plugin");
    let plugins = tempfile::tempdir().unwrap();
    install_plugin(
        plugins.path(),
        "fault-capability",
        &wasm,
        &fault_manifest(
            &grant_type("capability"),
            "capability",
            "\"tokens\", \"config\"",
        ),
    );
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    let secret = server
        .client_add(&["svc", "--grant-type", &grant_type("capability")])
        .unwrap();
    let (status, body, _) = token_request(
        &server,
        "svc",
        &secret,
        &[("grant_type", &grant_type("capability"))],
    );
    assert_eq!(status, 500, "{body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with("host refused: capability users is not granted"),
        "{body}"
    );
}

/// Starts `serve` on a plugin directory that must be refused; returns stderr.
fn refused(plugins: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("db").display());
    let output = grantbox(
        &db,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--plugins",
            &plugins.display().to_string(),
        ],
        None,
    );
    assert!(
        !output.status.success(),
        "serve started with a broken plugin"
    );
    text(&output.stderr)
}

#[test]
fn load_time_faults_stop_serve_naming_file_and_field() {
    let wasm = test_plugin_wasm("fault-plugin");
    let ok = fault_manifest("urn:x", "ok", "\"tokens\", \"config\"");

    let tampered = tempfile::tempdir().unwrap();
    let folder = install_plugin(tampered.path(), "tampered", &wasm, &ok);
    let wasm_file = folder.join("fault_plugin.wasm");
    let mut bytes = std::fs::read(&wasm_file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&wasm_file, bytes).unwrap();
    let error = refused(tampered.path());
    assert!(
        error.contains("tampered/plugin.toml: wasm.sha256"),
        "{error}"
    );

    let unknown_key = tempfile::tempdir().unwrap();
    install_plugin(
        unknown_key.path(),
        "unknown-key",
        &wasm,
        &ok.replace("[limits]", "[limits]\ncolour = \"red\""),
    );
    let error = refused(unknown_key.path());
    assert!(error.contains("unknown-key/plugin.toml: line"), "{error}");
    assert!(error.contains("unknown field `colour`"), "{error}");

    let newer = tempfile::tempdir().unwrap();
    install_plugin(
        newer.path(),
        "newer",
        &wasm,
        &ok.replace("grantbox:plugin@1.0.0", "grantbox:plugin@2.0.0"),
    );
    let error = refused(newer.path());
    assert!(
        error.contains("newer/plugin.toml: plugin.interface"),
        "{error}"
    );
    assert!(
        // Both versions: the plugin's and this host's.
        error.contains("grantbox:plugin@2.0.0") && error.contains("grantbox:plugin@1.4.0"),
        "{error}"
    );

    let twice = tempfile::tempdir().unwrap();
    install_plugin(twice.path(), "first", &wasm, &ok);
    install_plugin(twice.path(), "second", &wasm, &ok);
    let error = refused(twice.path());
    assert!(
        error.contains("second/plugin.toml") && error.contains("first/plugin.toml"),
        "{error}"
    );
    assert!(error.contains("urn:x"), "{error}");

    let mismatch = tempfile::tempdir().unwrap();
    install_plugin(
        mismatch.path(),
        "mismatch",
        &wasm,
        &ok.replace("grant_types = [\"urn:x\"]", "grant_types = [\"urn:y\"]"),
    );
    let error = refused(mismatch.path());
    assert!(
        error.contains("mismatch/plugin.toml: provides.grant_types"),
        "{error}"
    );

    let not_wasm = tempfile::tempdir().unwrap();
    let folder = not_wasm.path().join("garbage");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("g.wasm"), b"not wasm at all").unwrap();
    let manifest = ok
        .replace("{wasm}", "g.wasm")
        .replace("{sha256}", &crate::harness::sha256_hex(b"not wasm at all"))
        .replace("{name}", "garbage");
    std::fs::write(folder.join("plugin.toml"), manifest).unwrap();
    let error = refused(not_wasm.path());
    assert!(error.contains("garbage/plugin.toml: wasm.file"), "{error}");
}
