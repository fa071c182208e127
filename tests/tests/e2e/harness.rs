//! The end-to-end test kit, by concern: the real server and its CLI
//! (`server`), PostgreSQL databases (`postgres`), plain HTTP and a scripted
//! cookie-keeping browser (`http`), the test plugins (`plugins`), headless
//! Chromium over WebDriver (`webdriver`), the setups the tests share
//! (`fixtures`) and the router driven in process without a server
//! (`in_process`). All but `webdriver` is re-exported here, so tests name
//! `harness::Server`, `harness::http` and so on.

mod fixtures;
mod http;
mod in_process;
mod plugins;
mod postgres;
mod server;
pub mod webdriver;

pub use fixtures::*;
pub use http::*;
pub use in_process::*;
pub use plugins::*;
pub use postgres::*;
pub use server::*;
