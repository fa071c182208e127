//! Grantbox's protocol vocabulary, shared by the server (`grantbox`) and the
//! fuzz targets: the sans-IO rules of OAuth 2.0 ([`oauth`]) and OpenID
//! Connect ([`openid`]), and what a grant
//! plugin declares and exchanges with the host ([`plugin`]). Nothing here
//! does IO or knows wasmtime, HTTP, SQL or an async runtime.

pub mod oauth;
pub mod openid;
pub mod plugin;

#[cfg(test)]
mod layering;
