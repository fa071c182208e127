//! The live plugin set of a running server: the registry behind an
//! `ArcSwap`, so each request takes one snapshot and keeps it while a reload
//! swaps in a new set. A reload loads the whole set as start-up does and
//! swaps only when all of it is valid; reloads run one at a time. A watch on
//! the plugin directory may trigger them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::Watcher as _;
use tracing::{error, info, warn};

use super::{LoadError, Registry, Runtime};
use crate::clock::Clock;

/// The registry every request reads, and what a reload needs to rebuild it.
pub struct LiveRegistry {
    current: ArcSwap<Registry>,
    runtime: Arc<Runtime>,
    /// The `--plugins` directory, read again at every reload.
    dir: Option<PathBuf>,
    /// Held for the whole of a reload: two reloads never interleave.
    reloading: tokio::sync::Mutex<()>,
    clock: Clock,
    /// How long replaced plugins are kept for the transactions they began.
    keep_retired_seconds: i64,
}

impl std::fmt::Debug for LiveRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRegistry")
            .field("dir", &self.dir)
            .field("plugins", &self.current.load().plugins().len())
            .finish_non_exhaustive()
    }
}

impl LiveRegistry {
    /// Serves `registry`, which start-up loaded from `runtime` and `dir`.
    pub fn new(
        runtime: Runtime,
        dir: Option<PathBuf>,
        registry: Registry,
        clock: Clock,
        keep_retired_seconds: i64,
    ) -> Self {
        Self {
            current: ArcSwap::from_pointee(registry),
            runtime: Arc::new(runtime),
            dir,
            reloading: tokio::sync::Mutex::new(()),
            clock,
            keep_retired_seconds,
        }
    }

    /// The plugin set as it is now. A request takes this once and uses it to
    /// the end, so a reload never changes the plugins under a request.
    pub fn snapshot(&self) -> Arc<Registry> {
        self.current.load_full()
    }

    /// Loads the bundled plugins and the plugin directory again and, when
    /// every manifest, hash, component and type claim is valid, makes them
    /// the current set. On any error the current set stays, and the error
    /// (naming file and field) is logged, counted and returned.
    pub async fn reload(&self) -> Result<Arc<Registry>, LoadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let started = Clock::instant();
        // Compiling a plugin the cache lacks takes tens of milliseconds of
        // CPU: do it on a blocking thread, not on a worker serving requests.
        let (runtime, dir) = (self.runtime.clone(), self.dir.clone());
        let handle = tokio::runtime::Handle::current();
        let loaded = tokio::task::spawn_blocking(move || {
            handle.block_on(async move { Registry::load(&runtime, dir.as_deref()).await })
        })
        .await
        .unwrap_or_else(|join_error| Err(LoadError(format!("plugin reload failed: {join_error}"))));
        let mut fresh = match loaded {
            Ok(fresh) => fresh,
            Err(load_error) => {
                metrics::counter!("grantbox_plugin_reloads_total", "result" => "error")
                    .increment(1);
                error!(error = %load_error, "plugin reload refused; the previous plugins keep serving");
                return Err(load_error);
            }
        };
        // Only this function stores, and it holds the lock: nothing can swap
        // between this load and the store below.
        let previous = self.current.load_full();
        fresh.retire(&previous, self.clock.now(), self.keep_retired_seconds);
        let fresh = Arc::new(fresh);
        self.current.store(fresh.clone());
        metrics::counter!("grantbox_plugin_reloads_total", "result" => "ok").increment(1);
        log_loaded(&fresh);
        info!(
            plugins = fresh.plugins().len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "plugins reloaded"
        );
        Ok(fresh)
    }
}

/// How long the plugin directory must be quiet before a change reloads it:
/// copying a plugin in writes several files.
const WATCH_QUIET: Duration = Duration::from_millis(300);

/// A watch on the plugin directory; dropping it ends the watch.
pub struct PluginWatch {
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for PluginWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginWatch").finish_non_exhaustive()
    }
}

/// Reloads `live` whenever files under `dir` are created, changed, renamed
/// or removed, once the directory has been quiet for [`WATCH_QUIET`]. A
/// reload that finds a half-copied plugin is refused like any other, and
/// the change that completes the copy reloads again.
pub fn watch(live: Arc<LiveRegistry>, dir: &Path) -> Result<PluginWatch, LoadError> {
    let (changed, mut changes) = tokio::sync::mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            // Reading the files (a reload does) is no change.
            Ok(event) if event.kind.is_access() => {}
            // A full channel already holds a pending change: nothing is lost.
            Ok(_) => drop(changed.try_send(())),
            Err(error) => warn!(%error, "watching the plugin directory failed"),
        }
    })
    .map_err(|e| {
        LoadError(format!(
            "{}: cannot watch the plugin directory: {e}",
            dir.display()
        ))
    })?;
    watcher
        .watch(dir, notify::RecursiveMode::Recursive)
        .map_err(|e| {
            LoadError(format!(
                "{}: cannot watch the plugin directory: {e}",
                dir.display()
            ))
        })?;
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            while let Ok(Some(())) = tokio::time::timeout(WATCH_QUIET, changes.recv()).await {}
            info!("the plugin directory changed: reloading the plugins");
            let _ = live.reload().await;
        }
    });
    info!(dir = %dir.display(), "watching the plugin directory");
    Ok(PluginWatch { _watcher: watcher })
}

/// One log line per plugin of a set that was loaded.
pub fn log_loaded(registry: &Registry) {
    for plugin in registry.plugins() {
        info!(
            plugin = %plugin.manifest.name,
            version = %plugin.manifest.version,
            sha256 = %plugin.manifest.wasm_sha256,
            source = %plugin.manifest.source,
            grant_types = ?plugin.info.grant_types,
            response_types = ?plugin.info.response_types.iter().map(|(t, _)| t).collect::<Vec<_>>(),
            "plugin loaded"
        );
    }
}

#[cfg(test)]
mod tests;
