//! The plugin author's path, with the real binary and real cargo: `plugins
//! new` writes a crate, its native tests pass, `plugins build` compiles it
//! for wasm32-wasip2 and fills in the manifest, `plugins check` accepts it,
//! and `serve --plugins` answers the new grant type with a token carrying
//! the audience from `[config]`, which introspection then reports active.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::harness::{
    Options, Server, assert_oauth_error, binary, confidential_client, introspect_token,
    introspection_client, sha256_hex, shared_cache_dir, text, token_request, workspace,
};

const NAME: &str = "grant-greeting";
const GRANT_TYPE: &str = "urn:example:params:oauth:grant-type:greeting";

/// Where the scaffolded crates build: one stable folder, so a rerun is warm.
fn target_dir() -> PathBuf {
    workspace().join("target").join("scaffold-plugins")
}

/// Runs `program` in `dir` with the nested cargo's environment cleaned of
/// the outer build's flags and wrappers, as `harness::test_plugin_wasm` does.
/// It runs at the lowest CPU priority (`nice -n 19`, coreutils): the tests
/// beside it that put servers under load with 100 ms plugin deadlines
/// (`resilience.rs`) must not lose their cores to this compiler.
fn run(program: &Path, args: &[&str], dir: &Path) -> Output {
    Command::new("nice")
        .args(["-n", "19"])
        .arg(program)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("GRANTBOX_CACHE_DIR", shared_cache_dir())
        .env_remove("GRANTBOX_CONFIG")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", program.display()))
}

fn grantbox(args: &[&str], dir: &Path) -> Output {
    run(&binary(), args, dir)
}

fn succeeded(what: &str, output: &Output) -> String {
    assert!(
        output.status.success(),
        "{what} failed:\nstdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn failed(what: &str, output: &Output) -> String {
    assert!(
        !output.status.success(),
        "{what} succeeded:\n{}",
        text(&output.stdout)
    );
    text(&output.stderr)
}

#[test]
fn a_new_plugin_builds_checks_and_serves_tokens() {
    let parent = tempfile::tempdir().unwrap();
    let out = succeeded(
        "plugins new",
        &grantbox(&["plugins", "new", NAME, "--dir", "."], parent.path()),
    );
    assert!(out.contains(&format!("grant_type: {GRANT_TYPE}")), "{out}");
    let dir = parent.path().join(NAME);
    for file in [
        "Cargo.toml",
        "plugin.toml",
        "src/lib.rs",
        "src/tests.rs",
        ".gitignore",
        "README.md",
    ] {
        assert!(dir.join(file).is_file(), "plugins new wrote no {file}");
    }

    // The audience is this run's own, so the token response can only have
    // it from the manifest the server read.
    let audience = format!(
        "https://api.test/{}",
        parent.path().file_name().unwrap().to_string_lossy()
    );
    let manifest_path = dir.join("plugin.toml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    assert!(
        manifest.contains("audience = \"https://api.example.com\""),
        "{manifest}"
    );
    let manifest = manifest.replace("https://api.example.com", &audience);
    std::fs::write(&manifest_path, &manifest).unwrap();

    // The generated code is as rustfmt writes it, and its native tests pass
    // against the SDK's TestHost.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    succeeded(
        "cargo fmt --check",
        &run(Path::new(&cargo), &["fmt", "--check"], &dir),
    );
    let tests = succeeded("cargo test", &run(Path::new(&cargo), &["test"], &dir));
    let passed: u32 = tests
        .lines()
        .filter_map(|line| line.strip_prefix("test result: ok. "))
        .filter_map(|rest| rest.split(' ').next()?.parse::<u32>().ok())
        .sum();
    assert!(passed > 0, "no generated test ran:\n{tests}");

    // A compile error: cargo's diagnostics come through, and nothing is written.
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        format!("{lib}\nfn broken() -> u8 {{ \"no\" }}\n"),
    )
    .unwrap();
    let stderr = failed(
        "plugins build of a broken crate",
        &grantbox(&["plugins", "build", "."], &dir),
    );
    assert!(stderr.contains("mismatched types"), "{stderr}");
    // The failure names its cause, not only "see above".
    assert!(
        stderr
            .lines()
            .any(|line| line.contains("cargo build failed") && line.contains("could not compile")),
        "{stderr}"
    );
    assert!(!dir.join("grant_greeting.wasm").exists());
    assert_eq!(std::fs::read_to_string(&manifest_path).unwrap(), manifest);
    std::fs::write(dir.join("src/lib.rs"), lib).unwrap();

    // From the parent folder, with a relative path, as an author types it.
    let out = succeeded(
        "plugins build",
        &grantbox(&["plugins", "build", NAME], parent.path()),
    );
    assert!(out.contains("1 plugin(s) valid"), "{out}");
    let wasm = std::fs::read(dir.join("grant_greeting.wasm")).unwrap();
    let built = std::fs::read_to_string(&manifest_path).unwrap();
    let sha256_line = format!("sha256 = \"{}\"", sha256_hex(&wasm));
    // Only the sha256 line is new; the author's comments and layout stay.
    assert_eq!(
        built.replace(&format!("{sha256_line}\n"), ""),
        manifest,
        "{built}"
    );
    assert!(built.contains(&sha256_line), "{built}");

    let out = succeeded(
        "plugins check",
        &grantbox(&["plugins", "check", dir.to_str().unwrap()], parent.path()),
    );
    assert!(out.contains("1 plugin(s) valid"), "{out}");

    let server = Server::start_with(Options {
        plugins: Some(dir.clone()),
        ..Options::default()
    });
    let metadata: Value = server.metadata();
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == GRANT_TYPE),
        "{metadata}"
    );
    let svc = confidential_client(&server, "svc", &[GRANT_TYPE], &["read", "write"]);
    let rs = introspection_client(&server);

    let (status, body, _) = token_request(
        &server,
        "svc",
        &svc,
        &[("grant_type", GRANT_TYPE), ("scope", "read")],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["scope"], "read", "{body}");
    assert_eq!(body["audience"], audience.as_str(), "{body}");
    let access_token = body["access_token"].as_str().expect("an access token");

    let introspection = introspect_token(&server, "rs", &rs, access_token);
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["client_id"], "svc", "{introspection}");
    assert_eq!(introspection["scope"], "read", "{introspection}");

    // The rs client did not register the grant: the host refuses it before the plugin runs.
    let (status, body, _) = token_request(&server, "rs", &rs, &[("grant_type", GRANT_TYPE)]);
    assert_oauth_error((status, &body), 400, "unauthorized_client");
    // The plugin's `log` capability reached the server's log.
    let issued = |l: &str| l.contains("issued an access token to svc");
    let logs = server.logs_once(issued);
    assert!(logs.lines().any(issued), "{logs}");
}

#[test]
fn plugins_new_refuses_an_existing_directory_a_bad_name_and_a_missing_sdk() {
    let parent = tempfile::tempdir().unwrap();
    let taken = parent.path().join("grant-taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("Cargo.toml"), "# mine\n").unwrap();
    let stderr = failed(
        "plugins new into an existing directory",
        &grantbox(
            &["plugins", "new", "grant-taken", "--dir", "."],
            parent.path(),
        ),
    );
    assert!(stderr.contains("grant-taken: already exists"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(taken.join("Cargo.toml")).unwrap(),
        "# mine\n"
    );
    assert_eq!(std::fs::read_dir(&taken).unwrap().count(), 1);

    for bad in [
        "Grant-Hello",
        "../escape",
        "a/b",
        "2fa",
        "grant-",
        "test",
        "",
    ] {
        let stderr = failed(
            &format!("plugins new {bad:?}"),
            &grantbox(&["plugins", "new", bad, "--dir", "."], parent.path()),
        );
        assert!(
            stderr.contains(&format!("plugin name {bad:?}")),
            "{bad:?}: {stderr}"
        );
    }

    let nowhere = parent.path().join("no-sdk-here");
    let stderr = failed(
        "plugins new with a missing --sdk",
        &grantbox(
            &[
                "plugins",
                "new",
                "grant-x",
                "--sdk",
                nowhere.to_str().unwrap(),
            ],
            parent.path(),
        ),
    );
    assert!(stderr.contains("--sdk"), "{stderr}");

    // Nothing but the directory made above was written.
    let entries: Vec<_> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("grant-taken")]);
}
