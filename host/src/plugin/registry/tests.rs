//! Plugin endpoints and user steps in the registry, over real plugins (the
//! bundled client credentials and password plugins, exported with endpoint
//! tables added): lookups by path and metadata key, and conflicts that name
//! both files.

use std::path::Path;

use super::Registry;
use crate::plugin::{Runtime, RuntimeConfig, bundled};

/// Writes the bundled plugin `name` into `dir` at interface 1.3.0 with
/// `tables` appended to its manifest.
fn export(dir: &Path, name: &str, tables: &str) {
    let plugin = bundled::BUNDLED
        .iter()
        .find(|p| p.name == name)
        .expect("the plugin is bundled");
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let wasm_name = format!("{}.wasm", name.replace('-', "_"));
    std::fs::write(folder.join(wasm_name), plugin.wasm).unwrap();
    let manifest = plugin
        .manifest
        .replacen("grantbox:plugin@1.0.0", "grantbox:plugin@1.3.0", 1);
    assert!(manifest.contains("@1.3.0"), "{manifest}");
    std::fs::write(folder.join("plugin.toml"), format!("{manifest}\n{tables}")).unwrap();
}

/// A runtime with a compiled-artifact cache, so that each case of a test
/// does not compile the bundled set again.
fn runtime(cache: &Path) -> Runtime {
    let config = RuntimeConfig {
        cache_dir: Some(cache.to_owned()),
        ..RuntimeConfig::default()
    };
    Runtime::new(config, None).unwrap()
}

async fn load(runtime: &Runtime, dir: &Path) -> Result<Registry, String> {
    Registry::load(runtime, Some(dir))
        .await
        .map_err(|e| e.to_string())
}

fn endpoint(path: &str, metadata: Option<&str>) -> String {
    let metadata = metadata.map_or(String::new(), |key| format!("metadata = \"{key}\"\n"));
    format!("[[provides.endpoints]]\npath = \"{path}\"\n{metadata}")
}

fn user_step(path: &str) -> String {
    format!("[[provides.user_steps]]\npath = \"{path}\"\n")
}

#[tokio::test]
async fn endpoints_and_user_steps_are_found_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        "{}{}{}",
        endpoint("/x_authorization", Some("x_authorization_endpoint")),
        endpoint("/x_open", None).replace("path", "authenticate_client = false\npath"),
        user_step("/x")
    );
    export(dir.path(), "grant-client-credentials", &tables);
    let cache = tempfile::tempdir().unwrap();
    let registry = load(&runtime(cache.path()), dir.path()).await.unwrap();

    let (plugin, declared) = registry.endpoint("/x_authorization").unwrap();
    assert_eq!(plugin.name(), "grant-client-credentials");
    assert!(declared.authenticate_client);
    assert_eq!(
        declared.metadata.as_deref(),
        Some("x_authorization_endpoint")
    );
    let (_, open) = registry.endpoint("/x_open").unwrap();
    assert!(!open.authenticate_client);
    assert_eq!(
        registry.user_step("/x").unwrap().name(),
        "grant-client-credentials"
    );
    // A path is an endpoint or a user step, never both; unknown paths are neither.
    assert!(registry.endpoint("/x").is_none());
    assert!(registry.user_step("/x_authorization").is_none());
    assert!(registry.endpoint("/y").is_none() && registry.user_step("/y").is_none());
    // The bundled plugins (the device grant) declare endpoints of their own.
    assert_eq!(
        registry
            .endpoint_metadata()
            .filter(|(key, _)| key.starts_with("x_"))
            .collect::<Vec<_>>(),
        vec![("x_authorization_endpoint", "/x_authorization")]
    );
    assert_eq!(
        registry
            .endpoints()
            .filter(|(_, declared)| declared.path.starts_with("/x"))
            .count(),
        2
    );
}

#[tokio::test]
async fn two_plugins_on_one_path_or_metadata_key_name_both_files() {
    let cases = [
        (
            endpoint("/x", None),
            endpoint("/x", None),
            "provides.endpoints: path \"/x\"",
        ),
        (
            user_step("/x"),
            user_step("/x"),
            "provides.user_steps: path \"/x\"",
        ),
        (
            user_step("/x"),
            endpoint("/x", None),
            "provides.endpoints: path \"/x\"",
        ),
        (
            endpoint("/x", Some("x_endpoint")),
            endpoint("/y", Some("x_endpoint")),
            "provides.endpoints: metadata key \"x_endpoint\"",
        ),
    ];
    let cache = tempfile::tempdir().unwrap();
    let runtime = runtime(cache.path());
    for (first, second, conflict) in cases {
        let dir = tempfile::tempdir().unwrap();
        export(dir.path(), "grant-client-credentials", &first);
        export(dir.path(), "grant-password", &second);
        let error = load(&runtime, dir.path()).await.unwrap_err();
        let first_file = dir.path().join("grant-client-credentials/plugin.toml");
        let second_file = dir.path().join("grant-password/plugin.toml");
        assert!(
            error.starts_with(&second_file.display().to_string()),
            "{error}"
        );
        assert!(error.contains(conflict), "{conflict}: {error}");
        assert!(
            error.contains(&format!("also provided by {}", first_file.display())),
            "{error}"
        );
    }
}
