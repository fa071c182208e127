//! Tests that keep ARCHITECTURE.md a true map of this crate: every source
//! file is named there, and the layering it states holds (which files may
//! name the HTTP stack, SQL and wasmtime), and the host's code knows plugin
//! endpoints and user steps, never a protocol built on them.

use std::path::{Path, PathBuf};

const HOST: &str = env!("CARGO_MANIFEST_DIR");

/// Each crate with the files (relative to `host/src`, a folder ending in
/// `/`) allowed to `use` it. Fully qualified paths inside tests are not
/// `use` lines and are not counted.
const LAYERS: &[(&str, &[&str])] = &[
    ("axum", &["app.rs", "serve.rs", "endpoint.rs", "endpoint/"]),
    ("hyper", &["app.rs", "serve.rs"]),
    (
        "tower_sessions",
        &["app.rs", "serve.rs", "endpoint/", "store/sessions.rs"],
    ),
    ("sqlx", &["store.rs", "store/"]),
    ("wasmtime", &["plugin.rs", "plugin/"]),
];

/// The `.rs` files under `dir`, as paths relative to `root`.
fn sources(root: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("source folder is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(sources(root, &path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
    files.sort();
    files
}

/// Whether `file` (relative, with `/`) is one of `allowed`.
fn allowed(file: &str, allowed: &[&str]) -> bool {
    allowed.iter().any(|a| {
        if a.ends_with('/') {
            file.starts_with(a)
        } else {
            file == *a
        }
    })
}

/// `use` lines of `text` that name `krate` (`use axum::…`, `use {axum, …}`).
fn uses(text: &str, krate: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim_start();
            let line = line.strip_prefix("pub ").unwrap_or(line);
            line.strip_prefix("use ").is_some_and(|rest| {
                rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|word| word == krate)
            })
        })
        .map(|(n, _)| n + 1)
        .collect()
}

/// Every `use` of a layered crate outside the files allowed to name it.
fn layer_breaches(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let name = file.to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for (krate, may) in LAYERS {
            if !allowed(&name, may) {
                for line in uses(&text, krate) {
                    found.push(format!("{name}:{line} uses {krate}"));
                }
            }
        }
    }
    found
}

#[test]
fn every_source_file_is_on_the_map() {
    let root = Path::new(HOST).join("src");
    let map = std::fs::read_to_string(Path::new(HOST).join("../ARCHITECTURE.md")).unwrap();
    let files = sources(&root, &root);
    assert!(files.len() > 30, "found only {files:?}");
    let missing: Vec<String> = files
        .iter()
        .map(|file| file.to_string_lossy().replace('\\', "/"))
        // Unit tests beside their module, and this file, go with what they test.
        .filter(|file| !file.ends_with("tests.rs") && file != "architecture.rs")
        .filter(|file| {
            let name = file.rsplit('/').next().unwrap();
            !map.contains(&format!("`{name}`")) && !map.contains(&format!("`{file}`"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's file table names none of {missing:?}"
    );
}

#[test]
fn only_the_layers_named_in_the_map_use_http_sql_and_wasmtime() {
    let root = Path::new(HOST).join("src");
    let files = sources(&root, &root);
    let found = layer_breaches(&root, &files);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_layer_check_finds_a_breach() {
    assert_eq!(uses("use axum::Router;\n// use sqlx\n", "axum"), [1]);
    assert_eq!(uses("pub use {serde, wasmtime::Engine};", "wasmtime"), [1]);
    assert!(uses("use axum_extra::x;\nlet axum = 1;", "axum").is_empty());
    let root = std::env::temp_dir().join(format!("grantbox-architecture-{}", std::process::id()));
    std::fs::create_dir_all(root.join("oauth")).unwrap();
    std::fs::write(root.join("oauth/bad.rs"), "use sqlx::Pool;\n").unwrap();
    std::fs::write(root.join("store.rs"), "use sqlx::Pool;\n").unwrap();
    let files = sources(&root, &root);
    let found = layer_breaches(&root, &files);
    std::fs::remove_dir_all(&root).unwrap();
    assert_eq!(found, ["oauth/bad.rs:1 uses sqlx"]);
}

/// Lines of code (comments and `#[cfg(test)]` modules left out) under `root`
/// that contain `word`, ignoring case.
fn code_naming(root: &Path, files: &[PathBuf], word: &str) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let name = file.to_string_lossy().replace('\\', "/");
        if name.ends_with("tests.rs") || name == "architecture.rs" {
            continue;
        }
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let code = text
            .lines()
            .take_while(|line| line.trim() != "#[cfg(test)]");
        for (n, line) in code.enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if code.to_ascii_lowercase().contains(word) {
                found.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

/// The device authorization grant (RFC 8628) is a plugin with an endpoint
/// and a user step; the host routes both without knowing what they are for.
#[test]
fn the_host_code_never_names_a_protocol_plugins_bring() {
    let root = Path::new(HOST).join("src");
    let files = sources(&root, &root);
    let found = code_naming(&root, &files, "device");
    assert!(found.is_empty(), "{found:#?}");
    let probe = std::env::temp_dir().join(format!("grantbox-naming-{}", std::process::id()));
    std::fs::create_dir_all(&probe).unwrap();
    std::fs::write(
        probe.join("x.rs"),
        "// a device in a comment\nlet grant = \"Device_code\";\n#[cfg(test)]\nmod t { const D: &str = \"device\"; }\n",
    )
    .unwrap();
    let found = code_naming(&probe, &sources(&probe, &probe), "device");
    std::fs::remove_dir_all(&probe).unwrap();
    assert_eq!(found, ["x.rs:2: let grant = \"Device_code\";"]);
}
