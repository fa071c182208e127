//! The bundled plugins, built from `plugins/` by `host/build.rs` and embedded
//! in the binary so `grantbox serve` works without a plugin directory.

/// One embedded plugin: its manifest (with the wasm's SHA-256 filled in) and wasm.
#[derive(Debug)]
pub struct BundledPlugin {
    /// The folder name under `plugins/`.
    pub name: &'static str,
    pub manifest: &'static str,
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
