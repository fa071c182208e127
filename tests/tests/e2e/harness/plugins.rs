//! The test plugins: builds a crate under `tests/plugins/` for wasm32-wasip2
//! once per run, and installs a `.wasm` with its manifest into a plugin
//! directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

use super::server::workspace;

/// Builds a test plugin crate under `tests/plugins/` for wasm32-wasip2 once
/// per test run and returns the `.wasm`.
pub fn test_plugin_wasm(package: &str) -> PathBuf {
    test_plugin_wasm_with(package, &[])
}

/// Like [`test_plugin_wasm`], with cargo `features` on; each set of features
/// gets a `.wasm` of its own (`<name>+<features>.wasm` beside the artifact).
pub fn test_plugin_wasm_with(package: &str, features: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().expect("build lock");
    let target_dir = workspace().join("target").join("test-plugins");
    let artifact_dir = target_dir.join("wasm32-wasip2").join("plugin");
    let artifact = artifact_dir.join(format!("{}.wasm", package.replace('-', "_")));
    let key = format!("{package}+{}", features.join(","));
    let wasm = if features.is_empty() {
        artifact.clone()
    } else {
        artifact_dir.join(format!(
            "{}+{}.wasm",
            package.replace('-', "_"),
            features.join("+")
        ))
    };
    if !built.contains(&key) {
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command
            .current_dir(workspace())
            .args([
                "build",
                "--profile",
                "plugin",
                "--target",
                "wasm32-wasip2",
                "-p",
                package,
                "--target-dir",
            ])
            .arg(&target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("RUSTC_WORKSPACE_WRAPPER");
        if !features.is_empty() {
            command.arg("--features").arg(features.join(","));
        }
        let status = command.status().expect("cargo runs");
        assert!(status.success(), "building test plugin {key} failed");
        if wasm != artifact {
            std::fs::copy(&artifact, &wasm).expect("the featured wasm is copied aside");
        }
        built.push(key);
    }
    wasm
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes a plugin folder (`<dir>/<name>/plugin.toml` + wasm) into a plugin directory.
pub fn install_plugin(plugins_dir: &Path, name: &str, wasm: &Path, manifest_body: &str) -> PathBuf {
    let folder = plugins_dir.join(name);
    std::fs::create_dir_all(&folder).expect("plugin folder");
    let wasm_bytes = std::fs::read(wasm).expect("the wasm was built");
    let wasm_name = wasm
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    std::fs::write(folder.join(&wasm_name), &wasm_bytes).expect("wasm copied");
    let manifest = manifest_body
        .replace("{wasm}", &wasm_name)
        .replace("{sha256}", &sha256_hex(&wasm_bytes))
        .replace("{name}", name);
    std::fs::write(folder.join("plugin.toml"), manifest).expect("manifest written");
    folder
}

/// Installs the fault plugin once per mode of `modes`, as `fault-<mode>`
/// serving the grant type `grant_type(mode)` with the `tokens` and `config`
/// capabilities.
pub fn install_fault_plugins(
    plugins_dir: &Path,
    modes: &[&str],
    grant_type: impl Fn(&str) -> String,
) {
    let wasm = test_plugin_wasm("fault-plugin");
    for mode in modes {
        install_plugin(
            plugins_dir,
            &format!("fault-{mode}"),
            &wasm,
            &fault_manifest(&grant_type(mode), mode, "\"tokens\", \"config\""),
        );
    }
}

/// A manifest for the fault plugin: `mode` picks the misbehaviour.
pub fn fault_manifest(grant_type: &str, mode: &str, capabilities: &str) -> String {
    format!(
        r#"[plugin]
name = "{{name}}"
version = "0.1.0"
description = "misbehaves on purpose: {mode}"
interface = "grantbox:plugin@1.0.0"
capabilities = [{capabilities}]

[wasm]
file = "{{wasm}}"
sha256 = "{{sha256}}"

[provides]
grant_types = ["{grant_type}"]

[limits]
memory_mib = 8
timeout_ms = 200

[config]
mode = "{mode}"
grant_type = "{grant_type}"
"#
    )
}
