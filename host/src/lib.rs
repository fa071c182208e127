//! Grantbox: an OAuth 2.0 authorization server whose grant types are
//! sandboxed WebAssembly plugins. The binary in `main.rs` is a thin shell
//! over [`cli`]; see ARCHITECTURE.md for the map.

pub mod app;
pub mod author;
pub mod cli;
pub mod client_assertion;
pub mod client_cache;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod dpop;
pub mod endpoint;
pub mod keys;
pub mod manage;
pub mod openid_hint;
pub mod password;
pub mod plugin;
pub mod ratelimit;
pub mod registration;
pub mod secret;
pub mod serve;
pub mod store;
pub mod ui;

pub use grantbox_protocol::oauth;
pub use grantbox_protocol::openid;

#[cfg(test)]
mod architecture;
