//! The sans-IO rules of OpenID Connect that the host and its plugins share:
//! a user's claims and which of them a scope reveals ([`claims`]), the
//! host's record of how a user signed in ([`authentication`]), and the
//! authorization request's parameters about signing in ([`request`]), and the
//! claims of an ID token ([`id_token`]).

pub mod authentication;
pub mod claims;
pub mod id_token;
pub mod request;

pub use authentication::{ACR_PASSWORD, AMR_PASSWORD, Authentication};

/// The scope value of an OpenID Connect request (Core §3.1.2.1).
pub const OPENID_SCOPE: &str = "openid";
