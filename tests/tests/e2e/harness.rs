//! The end-to-end test kit, by concern: the real server and its CLI
//! (`server`), PostgreSQL databases (`postgres`), plain HTTP and a scripted
//! cookie-keeping browser (`http`), the test plugins (`plugins`), headless
//! Chromium over WebDriver (`webdriver`), the setups the tests share
//! (`fixtures`) and the router driven in process without a server
//! (`in_process`). Everything is re-exported here, so tests name
//! `harness::Server`, `harness::http` and so on.

mod http;
mod plugins;
mod postgres;
mod server;
pub mod webdriver;

pub use http::*;
pub use plugins::*;
pub use postgres::*;
pub use server::*;
