//! Unit tests of the scaffold: names, the generated manifest against the real
//! manifest parser, and what `create` refuses. The e2e suite builds and serves
//! a scaffolded plugin (`tests/tests/e2e/scaffold.rs`).

use super::*;
use crate::author::manifest_edit;
use crate::plugin::manifest::{LimitCaps, Manifest};

#[test]
fn names_are_checked() {
    let check = |name: &str, valid: bool| {
        assert_eq!(check_name(name).is_ok(), valid, "{name:?}");
    };
    check("grant-hello", true);
    check("hello_2", true);
    check("a", true);
    check("", false);
    check("Grant", false);
    check("2fa", false);
    check("-x", false);
    check("x-", false);
    check("a/b", false);
    check("../x", false);
    check("grant hello", false);
    check("héllo", false);
    check("test", false);
    check("std", false);
    check("proc-macro", false);
    check(&"a".repeat(65), false);
    let message = check_name("Bad").unwrap_err().to_string();
    assert!(
        message.contains("\"Bad\"") && message.contains("lowercase"),
        "{message}"
    );
}

#[test]
fn grant_types_and_type_names_come_from_the_name() {
    assert_eq!(
        grant_type("grant-hello"),
        "urn:example:params:oauth:grant-type:hello"
    );
    assert_eq!(
        grant_type("my-grant"),
        "urn:example:params:oauth:grant-type:my-grant"
    );
    assert_eq!(
        grant_type("grant"),
        "urn:example:params:oauth:grant-type:grant"
    );
    assert_eq!(type_name("grant-hello-world"), "HelloWorldGrant");
    assert_eq!(type_name("my_grant"), "MyGrantGrant");
    assert_eq!(type_name("grant-2fa"), "Grant2faGrant");
}

#[test]
fn the_generated_manifest_is_valid_once_built() {
    let sdk = Path::new("/opt/grantbox \"sdk\"/plugin-sdk");
    let files = render("grant-hello", sdk).unwrap();
    let file = |name: &str| {
        files
            .iter()
            .find(|(path, _)| *path == name)
            .map(|(_, text)| text.clone())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    // A placeholder is `@` + capitals or `_` + `@`.
    let placeholder = |text: &str| {
        let parts: Vec<&str> = text.split('@').collect();
        parts.len() > 2
            && parts[1..parts.len() - 1].iter().any(|part| {
                !part.is_empty() && part.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
            })
    };
    assert!(placeholder("x @NAME@ y") && !placeholder("grantbox:plugin@1.0.0"));
    for (path, text) in &files {
        assert!(!placeholder(text), "{path} keeps a placeholder:\n{text}");
    }

    // What `plugins build` does to it, then what `serve` checks.
    let manifest = file("plugin.toml");
    assert_eq!(
        manifest_edit::wasm_file(&manifest).unwrap(),
        "grant_hello.wasm"
    );
    let built = manifest_edit::with_sha256(&manifest, &"ab".repeat(32)).unwrap();
    let caps = LimitCaps {
        max_memory_bytes: 64 << 20,
        max_timeout_ms: 5000,
        ..LimitCaps::DEFAULT
    };
    let parsed = Manifest::parse(&built, "plugin.toml", caps).unwrap();
    assert_eq!(parsed.name, "grant-hello");
    assert_eq!(
        parsed.grant_types,
        vec!["urn:example:params:oauth:grant-type:hello".to_string()]
    );
    assert!(parsed.config.contains_key("audience"));

    // The SDK path survives TOML quoting; the crate stands alone.
    let cargo: toml::Table = toml::from_str(&file("Cargo.toml")).unwrap();
    assert_eq!(
        cargo["dependencies"]["grantbox-sdk"]["path"].as_str(),
        Some("/opt/grantbox \"sdk\"/plugin-sdk")
    );
    assert!(cargo["workspace"].as_table().is_some_and(|t| t.is_empty()));
    assert_eq!(cargo["package"]["name"].as_str(), Some("grant-hello"));
    assert!(file("src/lib.rs").contains("pub struct HelloGrant;"));
}

#[test]
fn create_refuses_an_existing_directory_and_a_missing_sdk() {
    let parent = tempfile::tempdir().unwrap();
    let sdk = Path::new(BUILT_SDK).to_owned();
    let request = |name: &str, sdk: Option<PathBuf>| ScaffoldRequest {
        name: name.into(),
        parent: parent.path().to_owned(),
        sdk,
    };

    std::fs::create_dir(parent.path().join("taken")).unwrap();
    let error = create(&request("taken", Some(sdk.clone())))
        .unwrap_err()
        .to_string();
    assert!(error.contains("already exists"), "{error}");
    assert_eq!(
        std::fs::read_dir(parent.path().join("taken"))
            .unwrap()
            .count(),
        0
    );

    let error = create(&request("fresh", Some(parent.path().join("nowhere"))))
        .unwrap_err()
        .to_string();
    assert!(error.contains("--sdk"), "{error}");
    assert!(!parent.path().join("fresh").exists());

    let made = create(&request("fresh", None)).unwrap();
    assert_eq!(made.dir, parent.path().join("fresh"));
    assert!(made.dir.join("src/tests.rs").is_file());
    let cargo = std::fs::read_to_string(made.dir.join("Cargo.toml")).unwrap();
    let sdk = sdk.canonicalize().unwrap();
    assert!(
        cargo.contains(&format!("path = \"{}\"", sdk.display())),
        "{cargo}"
    );
}
