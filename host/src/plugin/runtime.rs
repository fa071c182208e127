//! The sandbox: one wasmtime [`Engine`] with the pooling allocator, fuel and
//! epoch interruption, a compiled-artifact cache, one `InstancePre` per
//! plugin, and a fresh `Store` for every call, so no state outlives a request.
//! Each call is bounded by fuel (the guest's work), a host-call budget (count
//! and time) and a wall-clock backstop.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tracing::{Instrument, debug, warn};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{Plugin as PluginWorld, PluginPre, wit};
use super::manifest::{HOST_INTERFACE, INTERFACE_PACKAGE, InterfaceVersion, LimitCaps, Manifest};
use super::{
    AuthorizationApproval, AuthorizationRequest, CallError, Capability, ClientView, Fault,
    FaultKind, HostServices, PluginInfo, TokenRequest, TokenResponse,
};
use crate::clock::Clock;
use crate::store::TokenRecord;

/// The least deadline of the `info` call at load (see `Plugin::info`).
const LOAD_DEADLINE: Duration = Duration::from_secs(2);

/// How often the epoch advances; the wall-clock backstop and the host
/// budget are checked at each tick.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Fuel (about one unit per wasm instruction) a guest gets per millisecond of
/// its `timeout_ms`: roughly what one core runs in a millisecond (measured: at
/// 2 million, fault-plugin's spin loop with `timeout_ms = 100` stopped after
/// 30-50 ms on the 2-core CI machine under load). Fuel counts the guest's own
/// work, so a guest that waits for a core (CPU starvation) spends none of it.
pub const FUEL_PER_MS: u64 = 4_000_000;

/// The wall-clock backstop of a call: this many times its guest deadline,
/// plus its host-time budget. It stops what fuel does not count (a guest
/// descheduled forever, work inside one instruction such as `memory.fill`)
/// and leaves room for a starved but healthy guest.
const WALL_CLOCK_FACTOR: u32 = 10;

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
    pre: PluginPre<CallCtx>,
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
        let pre = PluginPre::new(instance_pre).map_err(|e| {
            format!(
                "{source}: wasm.file: {} lacks an export: {e:#}",
                manifest.wasm_file
            )
        })?;

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
            calls: self.calls.clone(),
            ticker: self.ticker.state.clone(),
            services: self.services.clone(),
        });
        let fingerprint = fingerprint(&manifest, &capabilities);
        let mut plugin = Plugin {
            manifest,
            info: PluginInfo::default(),
            capabilities,
            fingerprint,
            pre,
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

    fn compile(&self, wasm: &[u8], wasm_sha256: &str) -> wasmtime::Result<Component> {
        let Some(dir) = &self.config.cache_dir else {
            return Component::new(&self.engine, wasm);
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        let key = format!("{wasm_sha256}-{:016x}", hasher.finish());
        let artifact = dir.join(format!("{key}.cwasm"));
        let checksum = dir.join(format!("{key}.cwasm.sha256"));
        if let (Ok(bytes), Ok(expected)) =
            (std::fs::read(&artifact), std::fs::read_to_string(&checksum))
        {
            if hex::encode(Sha256::digest(&bytes)) == expected.trim() {
                debug!(artifact = %artifact.display(), "loading compiled plugin from cache");
                return deserialize(&self.engine, &bytes);
            }
            warn!(artifact = %artifact.display(), "cached plugin failed its checksum; recompiling");
        }
        let bytes = self.engine.precompile_component(wasm)?;
        if let Err(e) = write_cache(dir, &artifact, &checksum, &bytes) {
            warn!(dir = %dir.display(), error = %e, "cannot write the plugin cache");
        }
        deserialize(&self.engine, &bytes)
    }
}

/// Loads code this process compiled (or read back and verified against its
/// SHA-256): wasmtime does not integrity-check precompiled artifacts itself.
#[allow(
    unsafe_code,
    reason = "the bytes come from Engine::precompile_component, checked by SHA-256"
)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `bytes` were produced by `precompile_component` of an engine with
    // the same compatibility hash (part of the cache key), and their SHA-256
    // matched the checksum written next to them.
    unsafe { Component::deserialize(engine, bytes) }
}

/// A plugin version's identity: name, version, the wasm's SHA-256, the
/// granted capabilities and the `[config]` table, hashed.
fn fingerprint(manifest: &Manifest, capabilities: &BTreeSet<Capability>) -> String {
    let identity = serde_json::json!([
        manifest.name,
        manifest.version,
        manifest.wasm_sha256,
        capabilities.iter().map(|c| c.name()).collect::<Vec<_>>(),
        manifest.config,
    ]);
    hex::encode(Sha256::digest(identity.to_string()))
}

fn write_cache(
    dir: &std::path::Path,
    artifact: &std::path::Path,
    checksum: &std::path::Path,
    bytes: &[u8],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let temporary = artifact.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, artifact)?;
    std::fs::write(checksum, hex::encode(Sha256::digest(bytes)))
}

/// Bytes of each pooled memory and table that may stay resident between
/// instances (see `build_engine`).
const KEEP_RESIDENT_BYTES: usize = 64 << 10;

/// The engine every plugin runs on: the pooling allocator sized by
/// `config`, epoch interruption. Public for the micro-benchmarks, which must
/// measure this engine and not a copy of it.
pub fn build_engine(config: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let mut wasm = wasmtime::Config::new();
    wasm.epoch_interruption(true);
    // The guest's deadline is counted in fuel (its own work), the wall-clock
    // backstop in epochs.
    wasm.consume_fuel(true);
    let slots = config.max_concurrent_calls.max(1);
    let mut pooling = wasmtime::PoolingAllocationConfig::default();
    pooling
        .total_component_instances(slots)
        .total_core_instances(slots * 8)
        .total_memories(slots * 2)
        .total_tables(slots * 8)
        .total_stacks(slots)
        .max_memory_size(config.caps.max_memory_bytes)
        // When a slot is freed, wasmtime resets its memory and tables. By
        // default it gives every touched page back (madvise), so the next
        // instance in that slot page-faults on each page it touches again.
        // With Linux's PAGEMAP_SCAN (6.7+; `Auto` falls back to the plain
        // reset elsewhere) it finds the pages the call dirtied and restores
        // up to KEEP_RESIDENT_BYTES of them in place, wherever they are in
        // the memory (the guest's stack sits 1 MiB in). Measured with `cargo
        // bench -p grantbox-bench -- sandbox/` (median, one core): fresh
        // instance + call 27.5 µs with neither, 23.7 µs keeping the lowest
        // 16 KiB resident without the scan, 12.1 µs with the scan (16 KiB,
        // 1, 2 and 4 MiB: 12.0-12.7 µs, a client-credentials call dirties
        // less than 16 KiB); 64 KiB leaves room for grants that carry more.
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut pooled = wasm.clone();
    pooled.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
    match Engine::new(&pooled) {
        Ok(engine) => Ok(engine),
        Err(e) => {
            // As Spin and wasmCloud do: some hosts cannot reserve the virtual
            // address space the pool needs (ulimit -v, overcommit settings).
            warn!(error = %e, "pooling allocator unavailable; allocating instances on demand");
            Engine::new(&wasm)
        }
    }
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

/// Advances the engine's epoch on its own OS thread: a tokio task would never
/// run while a guest spins on the same worker. It ticks only while a call is
/// in flight and parks otherwise, so an idle server does not wake a thousand
/// times a second.
struct EpochTicker {
    state: Arc<TickerState>,
}

/// What the ticker thread and the calls share.
struct TickerState {
    stop: AtomicBool,
    /// Calls in flight (each holds a [`Ticking`]).
    in_flight: AtomicUsize,
    /// The ticker thread, to unpark; unset if it could not start.
    thread: OnceLock<std::thread::Thread>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let state = Arc::new(TickerState {
            stop: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            thread: OnceLock::new(),
        });
        let shared = state.clone();
        let spawned = std::thread::Builder::new()
            .name("grantbox-epoch".into())
            .spawn(move || {
                while !shared.stop.load(Ordering::Acquire) {
                    if shared.in_flight.load(Ordering::Acquire) == 0 {
                        // Woken by the next call's `enter` (an unpark that
                        // comes first makes this return at once) or by drop.
                        std::thread::park();
                        continue;
                    }
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            });
        match spawned {
            Ok(handle) => {
                let _ = state.thread.set(handle.thread().clone());
            }
            Err(e) => warn!(error = %e, "cannot start the epoch ticker; plugin deadlines are off"),
        }
        Self { state }
    }
}

impl TickerState {
    /// Marks a call in flight until the returned guard drops, waking the
    /// ticker if it was parked.
    fn enter(self: &Arc<Self>) -> Ticking {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) == 0
            && let Some(thread) = self.thread.get()
        {
            thread.unpark();
        }
        Ticking(self.clone())
    }
}

/// A call in flight, as far as the epoch ticker is concerned.
struct Ticking(Arc<TickerState>);

impl Drop for Ticking {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(thread) = self.state.thread.get() {
            thread.unpark();
        }
    }
}

/// The data of one call's `Store`.
pub(super) struct CallCtx {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: MemoryLimit,
    shared: Arc<CallShared>,
    /// The client the request came from, when there is one.
    pub(super) client: Option<ClientView>,
    /// Tokens and codes the host issued during this call; the plugin may
    /// only return these.
    pub(super) issued: Vec<String>,
    /// Token families this call learned from redeemed codes.
    pub(super) known_grants: Vec<String>,
    /// Tokens `token-exchange.lookup` found in this call: their family and
    /// expiry. An exchange may join only these families and never outlives them.
    pub(super) looked_up: Vec<LookedUp>,
    /// The refresh token `refresh-tokens.find` last found active in this
    /// call (by hash), so that `rotate` need not read it again: what it
    /// takes from it (family, subject, scope) never changes, and whether it
    /// is still unrotated is decided by the rotation's own UPDATE.
    pub(super) found_refresh: Option<([u8; 32], TokenRecord)>,
    /// Where the token request's password checks come from (`users`).
    pub(super) sign_in_origin: Option<Arc<crate::ratelimit::SignInOrigin>>,
    /// Bytes of keys and values this call wrote to the key-value store.
    pub(super) key_value_written: u64,
    started: Instant,
    /// The wall-clock backstop: the call is interrupted past it.
    wall_deadline: Duration,
    /// Host calls made so far.
    host_calls: u32,
    /// Time spent in host calls so far (the guest's fuel does not pay for it).
    host_time: Duration,
    /// Time spent in host calls that failed in the store, which counts
    /// against neither the host-time budget nor the wall-clock backstop.
    excused_time: Duration,
}

/// Which host budget of a call is spent: the call then ends as a deadline
/// fault, whatever the guest does next.
#[derive(Debug, Clone, Copy)]
pub(super) enum Spent {
    /// More host calls than this.
    HostCalls(u32),
    /// More time in host calls than this.
    HostTime(Duration),
}

impl std::fmt::Display for Spent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HostCalls(calls) => {
                write!(f, "host-call budget spent: more than {calls} host calls")
            }
            Self::HostTime(time) => write!(
                f,
                "host-time budget spent: more than {} ms in host calls",
                time.as_millis()
            ),
        }
    }
}

/// The key-value quota of one plugin (from its manifest, capped by the operator).
#[derive(Debug, Clone, Copy)]
pub(super) struct KeyValueQuota {
    /// Live keys of the namespace.
    pub(super) keys: u64,
    /// Bytes of live keys and values of the namespace.
    pub(super) bytes: u64,
    /// Bytes of keys and values one call may write.
    pub(super) write_bytes_per_call: u64,
}

impl WasiView for CallCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl CallCtx {
    pub(super) fn plugin_name(&self) -> &str {
        &self.shared.name
    }

    pub(super) fn plugin_version(&self) -> &str {
        &self.shared.version
    }

    pub(super) fn granted(&self, capability: Capability) -> bool {
        self.shared.capabilities.contains(&capability)
    }

    pub(super) fn services(&self) -> Option<&HostServices> {
        self.shared.services.as_ref()
    }

    pub(super) fn config(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.shared.config
    }

    pub(super) fn config_json(&self) -> &str {
        &self.shared.config_json
    }

    pub(super) fn key_value_quota(&self) -> KeyValueQuota {
        self.shared.key_value
    }

    /// Counts a host call against the call's budget; fails once the budget
    /// (count or time) is spent. The call then ends as a deadline fault.
    pub(super) fn spend_host_call(&mut self) -> Result<(), Spent> {
        self.host_calls = self.host_calls.saturating_add(1);
        self.spent().map_or(Ok(()), Err)
    }

    /// Adds the time of a host call that began at `since` to the call's
    /// host time. A host call that `failed` in the store (an outage, a
    /// statement timeout) is the server's trouble, not the plugin's: its time
    /// is excused from both the budget and the wall-clock backstop, so the
    /// plugin's answer (typically `temporarily_unavailable`) reaches the
    /// client instead of a fault.
    pub(super) fn add_host_time(&mut self, since: Instant, failed: bool) {
        if failed {
            self.excused_time += since.elapsed();
        } else {
            self.host_time += since.elapsed();
        }
    }

    /// The host budget this call has spent, if any.
    fn spent(&self) -> Option<Spent> {
        if self.host_calls > self.shared.host_calls {
            Some(Spent::HostCalls(self.shared.host_calls))
        } else if self.host_time > self.shared.host_time {
            Some(Spent::HostTime(self.shared.host_time))
        } else {
            None
        }
    }
}

/// A token a `token-exchange` lookup found during a call.
pub(super) struct LookedUp {
    pub(super) grant_id: String,
    pub(super) expires_at: i64,
}

/// The per-call memory limit; remembers that it was hit so the fault is named.
struct MemoryLimit {
    bytes: usize,
    hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.bytes {
            self.hit = true;
            wasmtime::bail!(
                "memory limit of {} bytes reached (asked for {desired})",
                self.bytes
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A store and a fresh instance for one call.
struct Call {
    store: Store<CallCtx>,
    instance: PluginWorld,
    _ticking: Ticking,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    pub fn version(&self) -> &str {
        &self.manifest.version
    }

    /// Asks the plugin what it provides (done once at load).
    async fn info(&self) -> Result<PluginInfo, Fault> {
        // Asked once, at load, with at least LOAD_DEADLINE of fuel: its
        // wall-clock backstop is ten times that, so a server starting on a
        // busy machine (or under `nice`) does not refuse a healthy plugin.
        // A plugin that spins here is still stopped.
        let mut call = self
            .begin(None, self.shared.timeout.max(LOAD_DEADLINE))
            .await?;
        let result = call
            .instance
            .grantbox_plugin_grant()
            .call_info(&mut call.store)
            .await;
        self.finish("info", call, result).map(PluginInfo::from)
    }

    /// Runs a token-endpoint exchange.
    pub async fn exchange(&self, request: &TokenRequest) -> Result<TokenResponse, CallError> {
        self.exchange_from(request, None).await
    }

    /// Runs a token-endpoint exchange whose password checks are throttled by
    /// `origin`'s address.
    pub async fn exchange_from(
        &self,
        request: &TokenRequest,
        origin: Option<Arc<crate::ratelimit::SignInOrigin>>,
    ) -> Result<TokenResponse, CallError> {
        let span = tracing::info_span!("plugin", plugin = %self.name(), version = %self.version(), function = "exchange");
        async {
            let mut call = self
                .begin(Some(request.client.clone()), self.shared.timeout)
                .await?;
            call.store.data_mut().sign_in_origin = origin;
            let wit_request = wit::TokenRequest::from(request);
            let result = call
                .instance
                .grantbox_plugin_grant()
                .call_exchange(&mut call.store, &wit_request)
                .await;
            let issued = std::mem::take(&mut call.store.data_mut().issued);
            let response: TokenResponse = match self.finish("exchange", call, result)? {
                Ok(response) => response.into(),
                Err(error) => return Err(CallError::Refused(error.into())),
            };
            let forged = std::iter::once(&response.access_token)
                .chain(response.refresh_token.as_ref())
                .any(|token| !issued.contains(token));
            if forged {
                return Err(self
                    .contract_fault("exchange returned a token the host did not issue")
                    .into());
            }
            Ok(response)
        }
        .instrument(span)
        .await
    }

    /// Parses the grant's own authorization request parameters.
    pub async fn authorize_request(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Vec<(String, String)>, CallError> {
        let span = tracing::info_span!("plugin", plugin = %self.name(), version = %self.version(), function = "authorize_request");
        async {
            let mut call = self
                .begin(Some(request.client.clone()), self.shared.timeout)
                .await?;
            let wit_request = wit::AuthorizationRequest::from(request);
            let result = call
                .instance
                .grantbox_plugin_grant()
                .call_authorize_request(&mut call.store, &wit_request)
                .await;
            self.finish("authorize_request", call, result)?
                .map_err(|error| CallError::Refused(error.into()))
        }
        .instrument(span)
        .await
    }

    /// Issues the response parameters of an approved transaction. Returns the
    /// parameters and what the host issued during the call.
    pub async fn authorize_response(
        &self,
        approval: &AuthorizationApproval,
    ) -> Result<(Vec<(String, String)>, Vec<String>), CallError> {
        let span = tracing::info_span!("plugin", plugin = %self.name(), version = %self.version(), function = "authorize_response");
        async {
            let mut call = self
                .begin(Some(approval.client.clone()), self.shared.timeout)
                .await?;
            let wit_approval = wit::AuthorizationApproval::from(approval);
            let result = call
                .instance
                .grantbox_plugin_grant()
                .call_authorize_response(&mut call.store, &wit_approval)
                .await;
            let issued = std::mem::take(&mut call.store.data_mut().issued);
            let params = self
                .finish("authorize_response", call, result)?
                .map_err(|error| CallError::Refused(error.into()))?;
            Ok((params, issued))
        }
        .instrument(span)
        .await
    }

    /// A fault for a response that broke the contract; counted like a trap.
    pub fn contract_fault(&self, detail: &str) -> Fault {
        let fault = Fault {
            kind: FaultKind::Contract,
            detail: detail.to_owned(),
        };
        record_fault(&self.shared, &fault);
        fault
    }

    async fn begin(&self, client: Option<ClientView>, deadline: Duration) -> Result<Call, Fault> {
        let permit = self
            .shared
            .calls
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Fault {
                kind: FaultKind::Instantiate,
                detail: "the runtime is shutting down".into(),
            })?;
        // Before instantiation, which may already run guest code.
        let ticking = self.shared.ticker.enter();
        let ctx = CallCtx {
            wasi: sandbox_wasi(),
            table: ResourceTable::new(),
            limits: MemoryLimit {
                bytes: self.shared.memory_bytes,
                hit: false,
            },
            shared: self.shared.clone(),
            client,
            issued: Vec::new(),
            known_grants: Vec::new(),
            looked_up: Vec::new(),
            found_refresh: None,
            sign_in_origin: None,
            key_value_written: 0,
            started: Clock::instant(),
            wall_deadline: deadline * WALL_CLOCK_FACTOR + self.shared.host_time,
            host_calls: 0,
            host_time: Duration::ZERO,
            excused_time: Duration::ZERO,
        };
        let mut store = Store::new(self.pre.engine(), ctx);
        store.limiter(|ctx| &mut ctx.limits);
        let fuel = u64::try_from(deadline.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(FUEL_PER_MS);
        if let Err(e) = store.set_fuel(fuel) {
            warn!(error = %e, "cannot set the plugin's fuel");
        }
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|store| {
            let ctx = store.data();
            let elapsed = ctx.started.elapsed().saturating_sub(ctx.excused_time);
            if ctx.spent().is_some() || elapsed >= ctx.wall_deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Let other requests on this worker run while a slow guest computes.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let instance = match self.pre.instantiate_async(&mut store).await {
            Ok(instance) => instance,
            Err(e) => {
                let fault = classify(&e, store.data());
                record_fault(&self.shared, &fault);
                return Err(fault);
            }
        };
        Ok(Call {
            store,
            instance,
            _ticking: ticking,
            _permit: permit,
        })
    }

    /// Turns a call's wasmtime result into the value or a fault, with metrics
    /// and a log line either way. The store (and instance) drop here.
    fn finish<R>(
        &self,
        function: &'static str,
        call: Call,
        result: wasmtime::Result<R>,
    ) -> Result<R, Fault> {
        let ctx = call.store.data();
        let elapsed = ctx.started.elapsed();
        let labels = [
            ("plugin", self.shared.name.clone()),
            ("function", function.to_owned()),
        ];
        metrics::histogram!("grantbox_plugin_call_duration_seconds", &labels)
            .record(elapsed.as_secs_f64());
        // A guest that goes on after its budget ran out (it saw the host's
        // refusals) still ends as a deadline fault.
        let result = match (result, ctx.spent()) {
            (Ok(_), Some(spent)) => Err(wasmtime::Error::msg(spent.to_string())),
            (result, _) => result,
        };
        match result {
            Ok(value) => {
                metrics::counter!("grantbox_plugin_calls_total", "plugin" => self.shared.name.clone(), "function" => function, "outcome" => "ok").increment(1);
                debug!(
                    duration_us = elapsed.as_micros() as u64,
                    outcome = "ok",
                    "plugin call"
                );
                Ok(value)
            }
            Err(e) => {
                metrics::counter!("grantbox_plugin_calls_total", "plugin" => self.shared.name.clone(), "function" => function, "outcome" => "fault").increment(1);
                let fault = classify(&e, ctx);
                record_fault(&self.shared, &fault);
                Err(fault)
            }
        }
    }
}

fn classify(error: &wasmtime::Error, ctx: &CallCtx) -> Fault {
    if let Some(spent) = ctx.spent() {
        debug!(error = ?error, "plugin fault details");
        return Fault {
            kind: FaultKind::Deadline,
            detail: spent.to_string(),
        };
    }
    let kind = if ctx.limits.hit {
        FaultKind::Memory
    } else {
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt | Trap::OutOfFuel) => FaultKind::Deadline,
            Some(Trap::StackOverflow) => FaultKind::StackOverflow,
            Some(Trap::UnreachableCodeReached) => FaultKind::Panic,
            Some(Trap::MemoryOutOfBounds) => FaultKind::OutOfBounds,
            Some(_) => FaultKind::Trap,
            None if error.to_string().contains("instance") => FaultKind::Instantiate,
            None => FaultKind::Trap,
        }
    };
    // The wasm backtrace goes to the debug log; the fault line keeps the cause.
    debug!(error = ?error, "plugin fault details");
    let detail = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    Fault { kind, detail }
}

fn record_fault(shared: &CallShared, fault: &Fault) {
    metrics::counter!("grantbox_plugin_faults_total", "plugin" => shared.name.clone(), "kind" => fault.kind.as_str()).increment(1);
    tracing::error!(plugin = %shared.name, version = %shared.version, kind = %fault.kind, detail = %fault.detail, "plugin fault");
}

/// WASI for std's own needs only: no files, environment, arguments or
/// sockets, output discarded, and clocks stuck at the epoch so time comes
/// only through the `clock` capability.
fn sandbox_wasi() -> WasiCtx {
    WasiCtx::builder()
        .wall_clock(StoppedClock)
        .monotonic_clock(StoppedClock)
        .build()
}

struct StoppedClock;

impl wasmtime_wasi::HostWallClock for StoppedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for StoppedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}
