//! End-to-end tests: the real `grantbox` binary over HTTP, real SQLite files
//! and real `.wasm` plugins; request matrices that need no process drive the
//! real router in process (`harness::InProcess`). One test binary; each
//! module is one area.

mod harness;

mod admin_api;
mod authorize;
mod badinput;
mod browser;
mod cli;
mod client_assertions;
mod client_library;
mod cluster;
mod device_flow;
mod dpop;
mod end_session;
mod fapi;
mod faults;
mod hardening;
mod hot_swap;
mod jwt_access_tokens;
mod jwt_bearer;
mod keys;
mod lifecycle;
mod limits;
mod logging;
mod openid_connect;
mod openid_prompt;
mod operations;
mod operator;
mod par;
mod plugin_endpoints;
mod plugin_limits;
mod plugins;
mod postgres;
mod reference;
mod registration;
mod resilience;
mod resource_server;
mod sandbox;
mod scaffold;
mod security;
mod signing;
mod throttle;
mod token;
mod token_exchange;
mod token_exchange_jwt;
mod token_lifetimes;
mod user_steps;
mod userinfo;
mod versioning;
