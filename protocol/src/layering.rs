//! The crate's promise, checked: it depends on nothing that does IO (no
//! wasmtime, HTTP stack, SQL or async runtime), and its OAuth rules do not
//! reach into the plugin vocabulary, so `oauth` stays a protocol of its own.

use std::path::{Path, PathBuf};

const CRATE: &str = env!("CARGO_MANIFEST_DIR");

/// Crates that would bring IO, a runtime or the sandbox into the protocol.
const FORBIDDEN_DEPENDENCIES: &[&str] = &[
    "axum",
    "hyper",
    "http",
    "reqwest",
    "sqlx",
    "tokio",
    "tower",
    "tower-sessions",
    "wasmtime",
    "wasmtime-wasi",
];

/// What `oauth/` may not name: the plugin vocabulary, the host, and the
/// crates above.
const FORBIDDEN_IN_OAUTH: &[&str] = &[
    "crate::plugin",
    "super::plugin",
    "super::super::plugin",
    "grantbox_protocol::plugin",
    "grantbox::",
    "axum",
    "hyper",
    "sqlx",
    "tokio",
    "wasmtime",
];

/// The dependency names of every `[*dependencies]` table of Cargo.toml.
fn dependencies(manifest: &str) -> Vec<String> {
    let table: toml::Table = manifest.parse().expect("protocol/Cargo.toml parses");
    let mut names = Vec::new();
    for (key, value) in &table {
        if key.ends_with("dependencies")
            && let Some(deps) = value.as_table()
        {
            names.extend(deps.keys().cloned());
        }
    }
    names
}

/// The `.rs` files under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("source folder is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The lines of `text` that are code: comments and doc comments removed.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(n, line)| {
        let code = line.split("//").next().unwrap_or("").trim();
        (!code.is_empty()).then_some((n + 1, code))
    })
}

/// Every occurrence of a forbidden name in the code lines of `files`.
fn offences(files: &[PathBuf], forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("source is readable");
        for (n, code) in code_lines(&text) {
            for name in forbidden {
                if code.contains(name) {
                    found.push(format!("{}:{n}: {name}", file.display()));
                }
            }
        }
    }
    found
}

#[test]
fn the_crate_depends_on_nothing_that_does_io() {
    let manifest = std::fs::read_to_string(Path::new(CRATE).join("Cargo.toml")).unwrap();
    let names = dependencies(&manifest);
    assert!(
        names.iter().any(|n| n == "url"),
        "the parse found no dependencies: {names:?}"
    );
    let bad: Vec<&String> = names
        .iter()
        .filter(|n| FORBIDDEN_DEPENDENCIES.contains(&n.as_str()))
        .collect();
    assert!(bad.is_empty(), "protocol/Cargo.toml depends on {bad:?}");
}

#[test]
fn oauth_names_neither_the_plugin_vocabulary_nor_io() {
    let files = sources(&Path::new(CRATE).join("src/oauth"));
    assert!(files.len() >= 7, "found only {files:?}");
    let found = offences(&files, FORBIDDEN_IN_OAUTH);
    assert!(
        found.is_empty(),
        "oauth/ must stay sans-IO and plugin-free: {found:#?}"
    );
}

#[test]
fn the_checks_find_what_they_look_for() {
    // The positive control: the same scan over a file that does name them.
    let dir = std::env::temp_dir().join(format!("grantbox-layering-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.rs");
    std::fs::write(
        &file,
        "//! axum in a comment is fine\nuse crate::plugin::Capability;\nuse axum::Router; // and here\n",
    )
    .unwrap();
    let found = offences(&[file], FORBIDDEN_IN_OAUTH);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].ends_with(":2: crate::plugin"), "{found:?}");
    assert!(found[1].ends_with(":3: axum"), "{found:?}");
    assert_eq!(
        dependencies("[dependencies]\naxum = \"1\"\n[dev-dependencies]\nurl = \"2\"\n"),
        ["axum", "url"]
    );
}
