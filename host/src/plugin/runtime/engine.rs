//! The engine and the compiled-artifact cache: the pooling allocator sized by
//! the operator's settings with fuel and epoch interruption, and compiled
//! plugins kept on disk under their SHA-256 and the engine's compatibility
//! hash, verified before they are loaded.

use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};
use tracing::{debug, warn};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::{Runtime, RuntimeConfig};

impl Runtime {
    pub(super) fn compile(&self, wasm: &[u8], wasm_sha256: &str) -> wasmtime::Result<Component> {
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
        // the memory (the guest's stack sits 1 MiB in). The scan roughly
        // halved a fresh instance and call (`cargo bench -p grantbox-bench
        // -- sandbox/`; the figures are in bench/README.md, "The hot-path
        // changes"); a client-credentials call dirties less than 16 KiB, and
        // 64 KiB leaves room for grants that carry more.
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
