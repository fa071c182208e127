//! The sandbox: one wasmtime [`Engine`] with the pooling allocator, fuel and
//! epoch interruption, a compiled-artifact cache, one `InstancePre` per
//! plugin, and a fresh `Store` for every call, so no state outlives a request.
//! Each call is bounded by fuel (the guest's work), a host-call budget (count
//! and time) and a wall-clock backstop.
//!
//! This file holds the runtime's and a plugin's types and loading (checks of
//! the wasm against its manifest); `engine.rs` the engine and the
//! compiled-artifact cache, `call.rs` instantiation and calls, `context.rs`
//! what a call's `Store` holds, `fault.rs` fault classification and
//! `ticker.rs` the epoch ticker.

mod call;
mod context;
mod engine;
mod fault;
#[cfg(test)]
mod tests;
mod ticker;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tracing::warn;
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};

use super::bindings::{ExportIndices, Plugin as PluginWorld};
use super::manifest::{HOST_INTERFACE, INTERFACE_PACKAGE, InterfaceVersion, LimitCaps, Manifest};
use super::{Capability, HostServices, PluginInfo};
pub(super) use context::{CallCtx, LookedUp};
use context::{KeyValueEstimate, KeyValueQuota};
pub use engine::build_engine;
use ticker::{EpochTicker, TickerState};

/// Settings of the sandbox as a whole.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled plugins are cached; `None` compiles at every start.
    pub cache_dir: Option<PathBuf>,
    /// Plugin calls running at once; also the size of the instance pool.
    pub max_concurrent_calls: u32,
    pub caps: LimitCaps,
    /// What the operator allows plugins to use; a plugin gets the
    /// intersection of this and what its manifest asks for.
    pub allowed_capabilities: BTreeSet<Capability>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_concurrent_calls: 256,
            caps: LimitCaps::DEFAULT,
            allowed_capabilities: Capability::ALL.into_iter().collect(),
        }
    }
}

/// The engine, the linker and the services every call shares.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallCtx>,
    calls: Arc<Semaphore>,
    config: RuntimeConfig,
    services: Option<HostServices>,
    ticker: EpochTicker,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A loaded plugin: its manifest, what it said it provides, and a
/// pre-instantiated component to make fresh instances from.
pub struct Plugin {
    pub manifest: Manifest,
    pub info: PluginInfo,
    /// The capabilities the plugin really gets (manifest ∩ operator policy).
    pub capabilities: BTreeSet<Capability>,
    /// What identifies this version of the plugin across reloads, restarts
    /// and instances (see [`fingerprint`]); computed once at load.
    pub fingerprint: String,
    /// The token-endpoint parameters that may repeat for this plugin's grant
    /// types: the manifest's `repeatable_parameters` and RFC 8707 `resource`,
    /// computed once at load.
    pub token_repeatable_parameters: Vec<String>,
    pre: InstancePre<CallCtx>,
    exports: ExportIndices,
    shared: Arc<CallShared>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .finish_non_exhaustive()
    }
}

/// What every call of one plugin needs besides the request.
struct CallShared {
    name: String,
    version: String,
    capabilities: BTreeSet<Capability>,
    config_json: String,
    config: serde_json::Map<String, serde_json::Value>,
    memory_bytes: usize,
    timeout: Duration,
    /// Host calls one call may make, and the time it may spend in them.
    host_calls: u32,
    host_time: Duration,
    key_value: KeyValueQuota,
    key_value_estimate: KeyValueEstimate,
    calls: Arc<Semaphore>,
    ticker: Arc<TickerState>,
    services: Option<HostServices>,
}

impl Runtime {
    pub fn new(config: RuntimeConfig, services: Option<HostServices>) -> anyhow::Result<Self> {
        let engine = build_engine(&config).map_err(anyhow::Error::from)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        PluginWorld::add_to_linker::<CallCtx, HasSelf<CallCtx>>(&mut linker, |ctx| ctx)
            .map_err(anyhow::Error::from)?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            calls: Arc::new(Semaphore::new(config.max_concurrent_calls as usize)),
            engine,
            linker,
            config,
            services,
            ticker,
        })
    }

    pub fn caps(&self) -> LimitCaps {
        self.config.caps
    }

    /// Checks the wasm against the manifest, compiles it (or loads it from the
    /// cache), links it and asks it what it provides. Errors name the source.
    pub async fn load(&self, manifest: Manifest, wasm: &[u8]) -> Result<Plugin, String> {
        let source = manifest.source.clone();
        let actual = hex::encode(Sha256::digest(wasm));
        if actual != manifest.wasm_sha256 {
            return Err(format!(
                "{source}: wasm.sha256: {} does not match {} (sha256 {actual})",
                manifest.wasm_sha256, manifest.wasm_file
            ));
        }
        let component = self.compile(wasm, &actual).map_err(|e| {
            format!(
                "{source}: wasm.file: {} is not a valid component: {e}",
                manifest.wasm_file
            )
        })?;
        check_interface(&self.engine, &component, &manifest)?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            format!(
                "{source}: wasm.file: cannot link {}: {e:#}",
                manifest.wasm_file
            )
        })?;
        let exports = ExportIndices::new(&instance_pre).map_err(|e| {
            format!(
                "{source}: wasm.file: {} lacks an export: {e:#}",
                manifest.wasm_file
            )
        })?;
        check_optional_exports(&manifest, &exports)?;

        let capabilities: BTreeSet<Capability> = manifest
            .capabilities
            .intersection(&self.config.allowed_capabilities)
            .copied()
            .collect();
        for withheld in manifest.capabilities.difference(&capabilities) {
            warn!(plugin = %manifest.name, capability = withheld.name(), "capability withheld by operator policy");
        }
        let shared = Arc::new(CallShared {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            capabilities: capabilities.clone(),
            config_json: serde_json::Value::Object(manifest.config.clone()).to_string(),
            config: manifest.config.clone(),
            memory_bytes: manifest.memory_bytes,
            timeout: Duration::from_millis(manifest.timeout_ms),
            host_calls: manifest.host_calls,
            host_time: Duration::from_millis(manifest.host_time_ms),
            key_value: KeyValueQuota {
                keys: manifest.key_value_keys,
                bytes: manifest.key_value_bytes,
                write_bytes_per_call: manifest.key_value_write_bytes,
            },
            key_value_estimate: KeyValueEstimate::default(),
            calls: self.calls.clone(),
            ticker: self.ticker.state.clone(),
            services: self.services.clone(),
        });
        let fingerprint = fingerprint(&manifest, &capabilities);
        let mut token_repeatable_parameters = manifest.repeatable_parameters.clone();
        if !token_repeatable_parameters.iter().any(|p| p == "resource") {
            token_repeatable_parameters.push("resource".to_owned());
        }
        let mut plugin = Plugin {
            manifest,
            info: PluginInfo::default(),
            capabilities,
            fingerprint,
            token_repeatable_parameters,
            pre: instance_pre,
            exports,
            shared,
        };
        let info = plugin
            .info()
            .await
            .map_err(|e| format!("{source}: wasm.file: info() failed: {e}"))?;
        check_provides(&plugin.manifest, &info)?;
        plugin.info = info;
        Ok(plugin)
    }
}

/// A plugin version's identity: name, version, the wasm's SHA-256, the
/// granted capabilities, the `[config]` table and, when it has any, its
/// endpoints and user steps, hashed. (A plugin without endpoints keeps the
/// fingerprint it had before they existed, so an upgrade of the host does
/// not orphan the transactions it began.)
fn fingerprint(manifest: &Manifest, capabilities: &BTreeSet<Capability>) -> String {
    let mut identity = vec![
        serde_json::json!(manifest.name),
        serde_json::json!(manifest.version),
        serde_json::json!(manifest.wasm_sha256),
        serde_json::json!(capabilities.iter().map(|c| c.name()).collect::<Vec<_>>()),
        serde_json::Value::Object(manifest.config.clone()),
    ];
    if !manifest.endpoints.is_empty() || !manifest.user_steps.is_empty() {
        let endpoints: Vec<_> = (manifest.endpoints.iter())
            .map(|e| serde_json::json!([e.path, e.authenticate_client, e.metadata]))
            .collect();
        let user_steps: Vec<_> = manifest.user_steps.iter().map(|s| &s.path).collect();
        identity.push(serde_json::json!([endpoints, user_steps]));
    }
    hex::encode(Sha256::digest(
        serde_json::Value::Array(identity).to_string(),
    ))
}

/// A manifest that declares endpoints or user steps needs a component that
/// exports `endpoint` or `user-step`.
fn check_optional_exports(manifest: &Manifest, exports: &ExportIndices) -> Result<(), String> {
    let needed = [
        (
            "provides.endpoints",
            !manifest.endpoints.is_empty(),
            exports.has_endpoint(),
            "endpoint",
        ),
        (
            "provides.user_steps",
            !manifest.user_steps.is_empty(),
            exports.has_user_step(),
            "user-step",
        ),
    ];
    for (field, declared, exported, interface) in needed {
        if declared && !exported {
            return Err(format!(
                "{}: {field}: wasm.file {} does not export {INTERFACE_PACKAGE}/{interface}",
                manifest.source, manifest.wasm_file
            ));
        }
    }
    Ok(())
}

/// The component must export `grantbox:plugin/grant` of a version this host
/// runs (the same major, no newer minor), and the manifest's `interface` (the
/// lowest version the plugin needs) must be of that major and no newer than
/// what the component was built against. wasmtime matches the names of
/// imports and exports by semver (`…@1.0.0` finds the host's `…@1.1.0`, and so
/// would `…@1.2.0`), so this check is what refuses a newer minor.
fn check_interface(
    engine: &Engine,
    component: &Component,
    manifest: &Manifest,
) -> Result<(), String> {
    let source = &manifest.source;
    let prefix = format!("{INTERFACE_PACKAGE}/grant@");
    let exported = component
        .component_type()
        .exports(engine)
        .find_map(|(name, _)| name.strip_prefix(&prefix).and_then(InterfaceVersion::parse));
    let Some(exported) = exported else {
        return Err(format!(
            "{source}: wasm.file: {} does not export {INTERFACE_PACKAGE}/grant",
            manifest.wasm_file
        ));
    };
    if !exported.runs_on(HOST_INTERFACE) {
        return Err(format!(
            "{source}: wasm.file: {} was built against {exported} but this host implements {HOST_INTERFACE}",
            manifest.wasm_file
        ));
    }
    if !manifest.interface.runs_on(exported) {
        return Err(format!(
            "{source}: plugin.interface: the manifest says {} but {} was built against {exported}",
            manifest.interface, manifest.wasm_file
        ));
    }
    Ok(())
}

/// What `info()` returns must be what the manifest declares.
fn check_provides(manifest: &Manifest, info: &PluginInfo) -> Result<(), String> {
    let source = &manifest.source;
    let mut declared: Vec<&str> = manifest.response_types.iter().map(String::as_str).collect();
    let mut exported: Vec<String> = info
        .response_types
        .iter()
        .filter_map(|(words, _)| super::manifest::normalize_response_type(words))
        .collect();
    declared.sort_unstable();
    exported.sort_unstable();
    if declared != exported {
        return Err(format!(
            "{source}: provides.response_types: the manifest declares {declared:?} but the plugin provides {exported:?}"
        ));
    }
    let mut declared: Vec<&str> = manifest.grant_types.iter().map(String::as_str).collect();
    let mut exported: Vec<&str> = info.grant_types.iter().map(String::as_str).collect();
    declared.sort_unstable();
    exported.sort_unstable();
    if declared != exported {
        return Err(format!(
            "{source}: provides.grant_types: the manifest declares {declared:?} but the plugin provides {exported:?}"
        ));
    }
    Ok(())
}
