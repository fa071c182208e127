//! The registry: which plugin answers each `response_type` and `grant_type`,
//! each plugin endpoint and user step path, and each metadata key of a plugin
//! endpoint. Built from the bundled set, then a plugin directory whose
//! plugins replace bundled ones of the same type or path; two directory
//! plugins claiming one type, path or metadata key is a startup error naming
//! both files. A registry also keeps the plugins that
//! earlier reloads replaced, for a while, so that an authorization
//! transaction is decided by the plugin version that began it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::info;

use super::manifest::{EndpointDecl, Manifest, normalize_response_type};
use super::{PluginRef, ResponseMode, Runtime, bundled};

/// A plugin set that could not be loaded; the message names file and field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

/// Plugins by the types they provide.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    plugins: Vec<PluginRef>,
    by_response_type: BTreeMap<String, (PluginRef, ResponseMode)>,
    by_grant_type: BTreeMap<String, PluginRef>,
    /// Plugin endpoints and user steps by path; a path is one or the other.
    by_path: BTreeMap<String, (PluginRef, PluginPath)>,
    /// Plugin endpoints by the RFC 8414 metadata key that advertises them.
    by_metadata_key: BTreeMap<String, PluginRef>,
    /// Plugins that earlier reloads replaced, newest last.
    retired: Vec<Retired>,
}

/// What a plugin serves at one of its paths.
#[derive(Debug, Clone)]
enum PluginPath {
    Endpoint(EndpointDecl),
    UserStep,
}

/// A plugin an earlier reload replaced, and when (Unix seconds).
#[derive(Debug, Clone)]
struct Retired {
    plugin: PluginRef,
    retired_at: i64,
}

/// At most this many replaced plugins are kept for the transactions they began.
const MAX_RETIRED: usize = 32;

/// Why an authorization transaction cannot be decided on this registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionPluginError {
    /// No plugin provides the transaction's `response_type` any more.
    #[error("response type {0} is no longer supported")]
    Vanished(String),
    /// The plugin version that began the transaction was replaced and is no
    /// longer kept (or it was never loaded by this process).
    #[error("the plugin that began this authorization request was replaced; start again")]
    Replaced,
}

/// Where a plugin came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Bundled,
    Directory(PathBuf),
}

impl Registry {
    /// Loads the bundled plugins and, when given, every plugin of `dir`.
    pub async fn load(runtime: &Runtime, dir: Option<&Path>) -> Result<Self, LoadError> {
        let mut registry = Registry::default();
        for plugin in load_bundled(runtime).await? {
            registry.insert(plugin, &Origin::Bundled)?;
        }
        if let Some(dir) = dir {
            for plugin in load_dir(runtime, dir).await? {
                registry.insert(plugin, &Origin::Directory(dir.to_owned()))?;
            }
        }
        registry.plugins.retain(|p| {
            registry.by_grant_type.values().any(|q| Arc::ptr_eq(p, q))
                || registry
                    .by_response_type
                    .values()
                    .any(|(q, _)| Arc::ptr_eq(p, q))
                || registry.by_path.values().any(|(q, _)| Arc::ptr_eq(p, q))
        });
        registry.check_names_are_unique()?;
        Ok(registry)
    }

    /// A plugin's key-value data is kept under its manifest's `name`, so two
    /// plugins serving at once under one name would share it: refused, with
    /// both sources named. (A plugin of the directory that replaces every
    /// type of a bundled one of its name is its upgrade and keeps its data.)
    fn check_names_are_unique(&self) -> Result<(), LoadError> {
        let mut by_name: BTreeMap<&str, &PluginRef> = BTreeMap::new();
        for plugin in &self.plugins {
            if let Some(other) = by_name.insert(plugin.name(), plugin) {
                return Err(LoadError(format!(
                    "{}: plugin.name: {:?} is also the name of {}; plugin names must be unique (the key-value namespace is the name)",
                    plugin.manifest.source,
                    plugin.name(),
                    other.manifest.source
                )));
            }
        }
        Ok(())
    }

    fn insert(&mut self, plugin: PluginRef, origin: &Origin) -> Result<(), LoadError> {
        for (response_type, mode) in &plugin.info.response_types {
            let key =
                normalize_response_type(response_type).unwrap_or_else(|| response_type.clone());
            if let Some((existing, _)) = self.by_response_type.get(&key) {
                let what = format!("response_type {key:?}");
                self.replace_or_conflict(existing, &plugin, origin, "provides", &what)?;
            }
            self.by_response_type.insert(key, (plugin.clone(), *mode));
        }
        for grant_type in &plugin.info.grant_types {
            if let Some(existing) = self.by_grant_type.get(grant_type) {
                let what = format!("grant_type {grant_type:?}");
                self.replace_or_conflict(existing, &plugin, origin, "provides", &what)?;
            }
            self.by_grant_type
                .insert(grant_type.clone(), plugin.clone());
        }
        let paths = (plugin.manifest.endpoints.iter())
            .map(|e| {
                (
                    "provides.endpoints",
                    &e.path,
                    PluginPath::Endpoint(e.clone()),
                )
            })
            .chain(
                (plugin.manifest.user_steps.iter())
                    .map(|s| ("provides.user_steps", &s.path, PluginPath::UserStep)),
            );
        for (field, path, served) in paths {
            if let Some((existing, _)) = self.by_path.get(path) {
                let what = format!("path {path:?}");
                self.replace_or_conflict(existing, &plugin, origin, field, &what)?;
            }
            self.by_path.insert(path.clone(), (plugin.clone(), served));
        }
        for key in plugin
            .manifest
            .endpoints
            .iter()
            .filter_map(|e| e.metadata.as_ref())
        {
            if let Some(existing) = self.by_metadata_key.get(key) {
                let what = format!("metadata key {key:?}");
                self.replace_or_conflict(existing, &plugin, origin, "provides.endpoints", &what)?;
            }
            self.by_metadata_key.insert(key.clone(), plugin.clone());
        }
        self.plugins.push(plugin);
        Ok(())
    }

    fn replace_or_conflict(
        &self,
        existing: &PluginRef,
        plugin: &PluginRef,
        origin: &Origin,
        field: &str,
        what: &str,
    ) -> Result<(), LoadError> {
        let existing_is_bundled = existing.manifest.source.starts_with("bundled:");
        if *origin == Origin::Bundled || !existing_is_bundled {
            return Err(LoadError(format!(
                "{}: {field}: {what} is also provided by {}",
                plugin.manifest.source, existing.manifest.source
            )));
        }
        info!(
            %what,
            bundled = %existing.manifest.name,
            replacement = %plugin.manifest.source,
            "a plugin from the plugin directory replaces a bundled one"
        );
        Ok(())
    }

    /// The plugin for a `response_type` (its words in any order) and its default mode.
    pub fn for_response_type(&self, response_type: &str) -> Option<(&PluginRef, ResponseMode)> {
        let key = normalize_response_type(response_type)?;
        self.by_response_type.get(&key).map(|(p, mode)| (p, *mode))
    }

    /// The plugin that decides a transaction: the one whose `fingerprint`
    /// began it, when the `response_type` is still provided; `None` (a
    /// transaction saved before fingerprints were kept) means the current one.
    pub fn for_transaction(
        &self,
        response_type: &str,
        began_with: Option<&str>,
    ) -> Result<&PluginRef, TransactionPluginError> {
        let Some((current, _)) = self.for_response_type(response_type) else {
            return Err(TransactionPluginError::Vanished(response_type.to_owned()));
        };
        let Some(began_with) = began_with else {
            return Ok(current);
        };
        if current.fingerprint == began_with {
            return Ok(current);
        }
        self.retired
            .iter()
            .rev()
            .map(|retired| &retired.plugin)
            .find(|plugin| plugin.fingerprint == began_with)
            .ok_or(TransactionPluginError::Replaced)
    }

    /// Keeps the plugins of `previous` that this registry does not hold,
    /// with `previous`'s own retired ones, for `keep_seconds` after they were
    /// replaced (the longest an authorization transaction lives).
    pub fn retire(&mut self, previous: &Registry, now: i64, keep_seconds: i64) {
        let current: Vec<&str> = self
            .plugins
            .iter()
            .map(|p| p.fingerprint.as_str())
            .collect();
        let mut retired: Vec<Retired> = previous
            .retired
            .iter()
            .filter(|r| r.retired_at + keep_seconds > now)
            .cloned()
            .collect();
        retired.extend(previous.plugins.iter().map(|plugin| Retired {
            plugin: plugin.clone(),
            retired_at: now,
        }));
        retired.retain(|r| !current.contains(&r.plugin.fingerprint.as_str()));
        let excess = retired.len().saturating_sub(MAX_RETIRED);
        retired.drain(..excess);
        self.retired = retired;
    }

    /// The plugin endpoint at `path` and its declaration.
    pub fn endpoint(&self, path: &str) -> Option<(&PluginRef, &EndpointDecl)> {
        match self.by_path.get(path)? {
            (plugin, PluginPath::Endpoint(declared)) => Some((plugin, declared)),
            (_, PluginPath::UserStep) => None,
        }
    }

    /// The plugin whose user step is at `path`.
    pub fn user_step(&self, path: &str) -> Option<&PluginRef> {
        match self.by_path.get(path)? {
            (plugin, PluginPath::UserStep) => Some(plugin),
            (_, PluginPath::Endpoint(_)) => None,
        }
    }

    /// Every plugin endpoint, by path.
    pub fn endpoints(&self) -> impl Iterator<Item = (&PluginRef, &EndpointDecl)> {
        self.by_path
            .values()
            .filter_map(|(plugin, served)| match served {
                PluginPath::Endpoint(declared) => Some((plugin, declared)),
                PluginPath::UserStep => None,
            })
    }

    /// Each RFC 8414 metadata key a plugin endpoint claims, and its path.
    pub fn endpoint_metadata(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_metadata_key.iter().filter_map(|(key, plugin)| {
            let declared =
                (plugin.manifest.endpoints.iter()).find(|e| e.metadata.as_ref() == Some(key))?;
            // Only while the plugin still serves the path.
            self.endpoint(&declared.path)
                .filter(|(serving, _)| Arc::ptr_eq(serving, plugin))
                .map(|_| (key.as_str(), declared.path.as_str()))
        })
    }

    pub fn for_grant_type(&self, grant_type: &str) -> Option<&PluginRef> {
        self.by_grant_type.get(grant_type)
    }

    pub fn plugins(&self) -> &[PluginRef] {
        &self.plugins
    }

    pub fn grant_types(&self) -> impl Iterator<Item = &str> {
        self.by_grant_type.keys().map(String::as_str)
    }

    pub fn response_types(&self) -> impl Iterator<Item = &str> {
        self.by_response_type.keys().map(String::as_str)
    }
}

/// The plugin version a pending user step began with.
impl Registry {
    /// The plugin with this fingerprint, current or kept after a reload
    /// replaced it (for as long as a transaction lives); `None` once gone.
    pub fn by_fingerprint(&self, fingerprint: &str) -> Option<&PluginRef> {
        self.plugins
            .iter()
            .chain(self.retired.iter().rev().map(|retired| &retired.plugin))
            .find(|plugin| plugin.fingerprint == fingerprint)
    }
}

async fn load_bundled(runtime: &Runtime) -> Result<Vec<PluginRef>, LoadError> {
    let mut plugins = Vec::new();
    for bundled in bundled::BUNDLED {
        let source = format!("bundled:{}", bundled.name);
        let manifest = Manifest::parse(bundled.manifest, &source, runtime.caps())
            .map_err(|e| LoadError(e.to_string()))?;
        let plugin = runtime
            .load(manifest, bundled.wasm)
            .await
            .map_err(LoadError)?;
        plugins.push(Arc::new(plugin));
    }
    Ok(plugins)
}

/// Every `*/plugin.toml` one level below `dir`, and `dir/plugin.toml` itself.
pub fn manifest_paths(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let unreadable = |e: std::io::Error| {
        LoadError(format!(
            "{}: cannot read the plugin directory: {e}",
            dir.display()
        ))
    };
    let mut paths = Vec::new();
    if dir.join("plugin.toml").is_file() {
        paths.push(dir.join("plugin.toml"));
    }
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let manifest = entry.map_err(unreadable)?.path().join("plugin.toml");
        if manifest.is_file() {
            paths.push(manifest);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(LoadError(format!(
            "{}: no plugin.toml found in the plugin directory",
            dir.display()
        )));
    }
    Ok(paths)
}

async fn load_dir(runtime: &Runtime, dir: &Path) -> Result<Vec<PluginRef>, LoadError> {
    let mut plugins = Vec::new();
    for path in manifest_paths(dir)? {
        let manifest =
            Manifest::load(&path, runtime.caps()).map_err(|e| LoadError(e.to_string()))?;
        let wasm_path = manifest.wasm_path(&path);
        let wasm = std::fs::read(&wasm_path).map_err(|e| {
            LoadError(format!(
                "{}: wasm.file: cannot read {}: {e}",
                path.display(),
                wasm_path.display()
            ))
        })?;
        let plugin = runtime.load(manifest, &wasm).await.map_err(LoadError)?;
        plugins.push(Arc::new(plugin));
    }
    Ok(plugins)
}

#[cfg(test)]
mod tests;
