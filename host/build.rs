//! Builds every plugin under `plugins/` for `wasm32-wasip2` with the `plugin`
//! profile, writes each manifest with the wasm's SHA-256 filled in, and
//! generates `bundled.rs` so the binary embeds them.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

#[path = "src/author/manifest_edit.rs"]
#[allow(dead_code, reason = "the build fills in sha256 but reads no wasm.file")]
mod manifest_edit;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ sits in the workspace")
        .to_owned();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let plugins_dir = workspace.join("plugins");
    println!("cargo:rerun-if-changed={}", plugins_dir.display());
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("plugin-sdk").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("src/author/manifest_edit.rs").display()
    );
    // sqlx::migrate! notices edits to migrations but not new files.
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("migrations").display()
    );

    let mut names: Vec<String> = fs::read_dir(&plugins_dir)
        .expect("plugins/ is readable")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("plugin.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();

    // A separate target directory: the outer cargo holds the lock on its own.
    let target_dir = workspace.join("target").join("bundled-plugins");
    let mut cargo = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(&workspace)
        .args([
            "build",
            "--profile",
            "plugin",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    for name in &names {
        cargo.args(["-p", name]);
    }
    // The outer build's flags and wrappers (clippy, coverage) are not for guests.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
    ] {
        cargo.env_remove(var);
    }
    let status = if names.is_empty() {
        None
    } else {
        Some(cargo.status().expect("cargo runs"))
    };
    assert!(
        status.is_none_or(|s| s.success()),
        "building the bundled plugins failed; is the wasm32-wasip2 target installed (rustup target add wasm32-wasip2)?"
    );

    let mut generated = String::from(
        "/// The plugins built from `plugins/`.\npub static BUNDLED: &[BundledPlugin] = &[\n",
    );
    for name in &names {
        let wasm_name = format!("{}.wasm", name.replace('-', "_"));
        let wasm_path = target_dir
            .join("wasm32-wasip2")
            .join("plugin")
            .join(&wasm_name);
        let wasm = fs::read(&wasm_path).unwrap_or_else(|e| panic!("{}: {e}", wasm_path.display()));
        let sha256 = hex::encode(Sha256::digest(&wasm));
        let manifest_path = plugins_dir.join(name).join("plugin.toml");
        let manifest = fs::read_to_string(&manifest_path)
            .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
        let manifest = with_sha256(&manifest, &sha256, &manifest_path);
        let out_wasm = out_dir.join(&wasm_name);
        let out_manifest = out_dir.join(format!("{name}.plugin.toml"));
        fs::write(&out_wasm, &wasm).expect("OUT_DIR is writable");
        fs::write(&out_manifest, manifest).expect("OUT_DIR is writable");
        writeln!(
            generated,
            "    BundledPlugin {{ name: {name:?}, manifest: include_str!({:?}), wasm: include_bytes!({:?}) }},",
            out_manifest.display().to_string(),
            out_wasm.display().to_string()
        )
        .expect("writing to a String");
    }
    generated.push_str("];\n");
    fs::write(out_dir.join("bundled.rs"), generated).expect("OUT_DIR is writable");
}

/// Adds `sha256 = "…"` to the `[wasm]` table of a checked-in manifest, with
/// the same editor `grantbox plugins build` uses.
fn with_sha256(manifest: &str, sha256: &str, path: &Path) -> String {
    assert!(
        !manifest
            .lines()
            .any(|line| line.trim_start().starts_with("sha256")),
        "{}: the checked-in manifest must not carry sha256; the build fills it in",
        path.display()
    );
    manifest_edit::with_sha256(manifest, sha256)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
