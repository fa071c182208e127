//! `grantbox plugins build`: runs `cargo build --release --target
//! wasm32-wasip2` in a plugin crate with cargo's output streamed through,
//! copies the component to the file `[wasm] file` names and writes its
//! SHA-256 into `plugin.toml` with [`manifest_edit`](super::manifest_edit).
//! Validating the result is `plugins check`'s job (see `cli.rs`).

use std::io::{BufRead as _, BufReader, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha256};

use super::manifest_edit;
use grantbox_protocol::plugin::manifest::is_plain_file_name;

/// The target plugins are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// What a build produced.
#[derive(Debug, Clone)]
pub struct Built {
    /// Where cargo wrote the component.
    pub artifact: PathBuf,
    /// The copy beside `plugin.toml`.
    pub wasm: PathBuf,
    pub sha256: String,
    pub manifest: PathBuf,
}

/// Builds the plugin crate in `dir` and fills in its manifest. A relative
/// `dir` is taken from the current directory.
pub fn build(dir: &Path) -> anyhow::Result<Built> {
    // cargo runs inside the crate, where a relative path would no longer
    // name it.
    let dir = &std::path::absolute(dir)
        .with_context(|| format!("{}: cannot resolve the directory", dir.display()))?;
    let cargo_toml = dir.join("Cargo.toml");
    let manifest_path = dir.join("plugin.toml");
    for needed in [&cargo_toml, &manifest_path] {
        if !needed.is_file() {
            bail!(
                "{}: not found; plugins build takes a plugin crate's directory (see plugins new)",
                needed.display()
            );
        }
    }
    // Read the manifest first, so a bad one fails before a long build.
    let manifest = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let wasm_file = manifest_edit::wasm_file(&manifest)
        .map_err(|e| anyhow::anyhow!("{}: {e}", manifest_path.display()))?;
    if !is_plain_file_name(&wasm_file) {
        bail!(
            "{}: wasm.file: {wasm_file:?} must be a file name beside plugin.toml",
            manifest_path.display()
        );
    }

    let artifact = cargo_build(dir, &cargo_toml)?;
    let wasm = std::fs::read(&artifact)
        .with_context(|| format!("reading the component {}", artifact.display()))?;
    let sha256 = hex::encode(Sha256::digest(&wasm));
    let wasm_path = dir.join(&wasm_file);
    std::fs::write(&wasm_path, &wasm)
        .with_context(|| format!("writing {}", wasm_path.display()))?;
    let updated = manifest_edit::with_sha256(&manifest, &sha256)
        .map_err(|e| anyhow::anyhow!("{}: {e}", manifest_path.display()))?;
    if updated != manifest {
        std::fs::write(&manifest_path, updated)
            .with_context(|| format!("writing {}", manifest_path.display()))?;
    }
    Ok(Built {
        artifact,
        wasm: wasm_path,
        sha256,
        manifest: manifest_path,
    })
}

/// Runs cargo with its diagnostics passed through to our stderr and its JSON
/// messages on a pipe, from which the one `cdylib` `.wasm` is the component.
fn cargo_build(dir: &Path, cargo_toml: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let color = if std::io::stderr().is_terminal() {
        "always"
    } else {
        "never"
    };
    let mut child = Command::new(&cargo)
        .current_dir(dir)
        .args(["build", "--release", "--target", WASM_TARGET])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--color",
            color,
        ])
        .arg("--manifest-path")
        .arg(cargo_toml)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", cargo.to_string_lossy()))?;
    let stderr = child.stderr.take().context("cargo's stderr is piped")?;
    let last_error = std::thread::spawn(move || pass_through(stderr));
    let stdout = child.stdout.take().context("cargo's stdout is piped")?;
    let mut components = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's messages")?;
        components.extend(component_of(&line));
    }
    let status = child.wait().context("waiting for cargo")?;
    let last_error = last_error.join().unwrap_or(None);
    if !status.success() {
        if target_installed(dir) == Some(false) {
            bail!(
                "cargo build failed in {}: the {WASM_TARGET} target is not installed; \
                 run `rustup target add {WASM_TARGET}`",
                dir.display()
            );
        }
        match last_error {
            Some(cause) => bail!(
                "cargo build failed in {}: {cause} (cargo's output is above)",
                dir.display()
            ),
            None => bail!(
                "cargo build failed in {} with {status} and no error message",
                dir.display()
            ),
        }
    }
    components.sort();
    components.dedup();
    match components.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "{}: the build produced no .wasm component; is the crate's [lib] crate-type \"cdylib\"?",
            cargo_toml.display()
        ),
        many => bail!(
            "{}: the build produced several components ({}); build one plugin crate at a time",
            cargo_toml.display(),
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Copies cargo's stderr to ours line by line and returns its last `error:`
/// line without the prefix: cargo's own summary of why it failed (a crate
/// that did not compile, a manifest that does not exist).
fn pass_through(stderr: impl std::io::Read) -> Option<String> {
    let mut ours = std::io::stderr();
    let mut last_error = None;
    for line in BufReader::new(stderr).split(b'\n') {
        let Ok(line) = line else { break };
        // Our stderr going away must not stop cargo: keep reading its pipe.
        let _ = ours.write_all(&line).and_then(|()| ours.write_all(b"\n"));
        if let Some(cause) = without_escapes(&String::from_utf8_lossy(&line))
            .trim()
            .strip_prefix("error: ")
        {
            last_error = Some(cause.to_owned());
        }
    }
    last_error
}

/// `line` without ANSI escape sequences (cargo's colours, `ESC [ … letter`).
fn without_escapes(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The `.wasm` of a `cdylib` in one of cargo's `compiler-artifact` messages.
fn component_of(message: &str) -> Vec<PathBuf> {
    let Ok(message) = serde_json::from_str::<serde_json::Value>(message) else {
        return Vec::new();
    };
    let is_cdylib = message["target"]["kind"]
        .as_array()
        .is_some_and(|kinds| kinds.iter().any(|kind| kind == "cdylib"));
    if message["reason"] != "compiler-artifact" || !is_cdylib {
        return Vec::new();
    }
    message["filenames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|file| file.as_str())
        .filter(|file| file.ends_with(".wasm"))
        .map(PathBuf::from)
        .collect()
}

/// Whether the toolchain cargo used in `dir` has the standard library for
/// [`WASM_TARGET`]; `None` when rustc cannot say.
fn target_installed(dir: &Path) -> Option<bool> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .current_dir(dir)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    let sysroot = String::from_utf8_lossy(&output.stdout);
    Some(sysroot_has_target(Path::new(sysroot.trim())))
}

fn sysroot_has_target(sysroot: &Path) -> bool {
    sysroot
        .join("lib")
        .join("rustlib")
        .join(WASM_TARGET)
        .join("lib")
        .is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_component_is_the_wasm_of_a_cdylib() {
        let component = r#"{"reason":"compiler-artifact","target":{"kind":["cdylib","rlib"],"name":"grant_x"},"filenames":["/t/wasm32-wasip2/release/grant_x.wasm","/t/wasm32-wasip2/release/libgrant_x.rlib"]}"#;
        assert_eq!(
            component_of(component),
            vec![PathBuf::from("/t/wasm32-wasip2/release/grant_x.wasm")]
        );
        let dependency = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"wit_bindgen"},"filenames":["/t/libwit_bindgen.rlib"]}"#;
        assert!(component_of(dependency).is_empty());
        let finished = r#"{"reason":"build-finished","success":true}"#;
        assert!(component_of(finished).is_empty());
        assert!(component_of("   Compiling x").is_empty());
    }

    #[test]
    fn the_cause_is_cargo_s_last_error_line() {
        let coloured = "\u{1b}[1m\u{1b}[91merror\u{1b}[0m\u{1b}[1m: could not compile `grant-x` (lib) due to 1 previous error\u{1b}[0m\n";
        let stderr =
            format!("   Compiling grant-x v0.1.0\nerror[E0308]: mismatched types\n{coloured}");
        assert_eq!(
            pass_through(stderr.as_bytes()).as_deref(),
            Some("could not compile `grant-x` (lib) due to 1 previous error")
        );
        assert_eq!(
            pass_through(&b"error: manifest path `x/Cargo.toml` does not exist\n"[..]).as_deref(),
            Some("manifest path `x/Cargo.toml` does not exist")
        );
        assert_eq!(pass_through(&b"   Compiling grant-x\n"[..]), None);
    }

    #[test]
    fn a_directory_without_a_crate_is_refused_before_cargo_runs() {
        let dir = tempfile::tempdir().unwrap();
        let error = build(dir.path()).unwrap_err().to_string();
        assert!(error.contains("Cargo.toml: not found"), "{error}");

        std::fs::write(dir.path().join("Cargo.toml"), "[package]\n").unwrap();
        std::fs::write(
            dir.path().join("plugin.toml"),
            "[wasm]\nfile = \"../x.wasm\"\n",
        )
        .unwrap();
        let error = build(dir.path()).unwrap_err().to_string();
        assert!(error.contains("plugin.toml: wasm.file"), "{error}");
    }

    #[test]
    fn the_target_check_reads_the_sysroot() {
        let sysroot = tempfile::tempdir().unwrap();
        assert!(!sysroot_has_target(sysroot.path()));
        std::fs::create_dir_all(sysroot.path().join("lib/rustlib/wasm32-wasip2/lib")).unwrap();
        assert!(sysroot_has_target(sysroot.path()));
        // The toolchain running these tests built the bundled plugins, so it has the target.
        assert_eq!(
            target_installed(Path::new(env!("CARGO_MANIFEST_DIR"))),
            Some(true)
        );
    }
}
