//! The host's pure, sans-IO modules compiled on their own, so that the fuzz
//! targets build in about a minute instead of rebuilding wasmtime, sqlx and
//! axum with sanitizer flags. The files are the host's own (`#[path]`), not
//! copies; the two items they name from `crate::plugin` (`Capability`,
//! `ResponseMode`) are extracted from `host/src/plugin.rs` by `build.rs`, so
//! nothing here can drift from what the server runs.
//!
//! The modules sit at the crate root because their `super::…` paths
//! (`super::OAuthError`, `super::Capability`) must resolve; `oauth` and
//! `plugin` re-export them under the host's own paths.

#[path = "../../host/src/oauth/client_auth.rs"]
pub mod client_auth;
#[path = "../../host/src/oauth/error.rs"]
pub mod error;
#[path = "../../host/src/plugin/manifest.rs"]
pub mod manifest;
#[path = "../../host/src/oauth/params.rs"]
pub mod params;
#[path = "../../host/src/oauth/redirect.rs"]
pub mod redirect;
#[path = "../../host/src/oauth/scope.rs"]
pub mod scope;

pub use error::{ErrorCode, OAuthError};
pub use params::Params;

include!(concat!(env!("OUT_DIR"), "/plugin_items.rs"));

/// `grantbox::oauth`.
pub mod oauth {
    pub use super::{ErrorCode, OAuthError, Params, client_auth, error, params, redirect, scope};
}

/// The parts of `grantbox::plugin` the host files above use.
pub mod plugin {
    pub use super::{Capability, ResponseMode, manifest};
}
