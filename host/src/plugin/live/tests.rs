//! Reloads of a live registry over a real plugin directory (the bundled
//! authorization code plugin, exported under changing versions): a refused
//! set leaves the snapshot untouched, and a replaced version decides the
//! transactions it began for as long as a transaction lives.

use std::path::Path;
use std::sync::Arc;

use super::LiveRegistry;
use crate::clock::Clock;
use crate::plugin::{Registry, Runtime, RuntimeConfig, TransactionPluginError, bundled};

/// How long replaced plugins are kept in these tests.
const KEEP_SECONDS: i64 = 600;

/// Writes the bundled authorization code plugin into `dir` as `version`.
fn export_code_plugin(dir: &Path, version: &str) {
    let plugin = bundled::BUNDLED
        .iter()
        .find(|p| p.name == "grant-authorization-code")
        .expect("the authorization code plugin is bundled");
    let folder = dir.join(plugin.name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("grant_authorization_code.wasm"), plugin.wasm).unwrap();
    let manifest = plugin.manifest.replacen(
        "version = \"0.1.0\"",
        &format!("version = \"{version}\""),
        1,
    );
    assert!(manifest.contains(version), "{manifest}");
    std::fs::write(folder.join("plugin.toml"), manifest).unwrap();
}

fn code_plugin_fingerprint(registry: &Registry) -> String {
    let (plugin, _) = registry
        .for_response_type("code")
        .expect("code is provided");
    plugin.fingerprint.clone()
}

fn version_for(registry: &Registry, began_with: &str) -> Result<String, TransactionPluginError> {
    registry
        .for_transaction("code", Some(began_with))
        .map(|plugin| plugin.manifest.version.clone())
}

#[tokio::test]
async fn reloads_swap_whole_sets_and_keep_replaced_versions_for_their_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    export_code_plugin(dir.path(), "1.0.0");
    let runtime = Runtime::new(
        RuntimeConfig {
            cache_dir: Some(cache.path().to_owned()),
            ..RuntimeConfig::default()
        },
        None,
    )
    .unwrap();
    let initial = Registry::load(&runtime, Some(dir.path())).await.unwrap();
    let clock = Clock::system();
    let live = LiveRegistry::new(
        runtime,
        Some(dir.path().to_owned()),
        initial,
        clock.clone(),
        KEEP_SECONDS,
    );
    let first = live.snapshot();
    let began_with_first = code_plugin_fingerprint(&first);

    // A broken set is refused whole, and the same snapshot keeps serving.
    let manifest = dir.path().join("grant-authorization-code/plugin.toml");
    let good = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, good.replace("[wasm]", "[wasm]\ncolour = 1")).unwrap();
    let error = live.reload().await.unwrap_err().to_string();
    assert!(
        error.contains("plugin.toml") && error.contains("colour"),
        "{error}"
    );
    assert!(Arc::ptr_eq(&first, &live.snapshot()));

    export_code_plugin(dir.path(), "2.0.0");
    let second = live.reload().await.unwrap();
    assert!(Arc::ptr_eq(&second, &live.snapshot()));
    let began_with_second = code_plugin_fingerprint(&second);
    assert_ne!(began_with_first, began_with_second);
    // The snapshot a request took before the reload is unchanged.
    assert_eq!(
        version_for(&first, &began_with_first).as_deref(),
        Ok("1.0.0")
    );
    // On the new set, each transaction goes to the version that began it;
    // one saved without a fingerprint goes to the current version.
    assert_eq!(
        version_for(&second, &began_with_first).as_deref(),
        Ok("1.0.0")
    );
    assert_eq!(
        version_for(&second, &began_with_second).as_deref(),
        Ok("2.0.0")
    );
    let current = second.for_transaction("code", None).unwrap();
    assert_eq!(current.manifest.version, "2.0.0");
    assert_eq!(
        version_for(&second, "unknown"),
        Err(TransactionPluginError::Replaced)
    );
    assert_eq!(
        second.for_transaction("urn:example:gone", None).err(),
        Some(TransactionPluginError::Vanished("urn:example:gone".into()))
    );

    // Once a transaction's lifetime has passed since a version was
    // replaced, the next reload lets it go.
    clock.advance(KEEP_SECONDS + 1);
    export_code_plugin(dir.path(), "3.0.0");
    let third = live.reload().await.unwrap();
    assert_eq!(
        version_for(&third, &began_with_first),
        Err(TransactionPluginError::Replaced)
    );
    assert_eq!(
        version_for(&third, &began_with_second).as_deref(),
        Ok("2.0.0")
    );
}
