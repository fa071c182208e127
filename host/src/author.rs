//! The plugin author's tools behind `grantbox plugins new` and `plugins
//! build`: scaffolding a plugin crate, building it for `wasm32-wasip2` and
//! filling in its manifest. They run cargo and edit TOML; none of them
//! knows wasmtime.

pub mod builder;
pub mod manifest_edit;
pub mod scaffold;
