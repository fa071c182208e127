//! End-to-end tests: the real `grantbox` binary over HTTP, real SQLite files
//! and real `.wasm` plugins. One test binary; each module is one area.

mod harness;

mod authorize;
mod badinput;
mod browser;
mod cli;
mod faults;
mod hot_swap;
mod jwt_bearer;
mod lifecycle;
mod operations;
mod plugin_limits;
mod plugins;
mod postgres;
mod resilience;
mod scaffold;
mod security;
mod token;
mod token_exchange;
mod versioning;
