//! The sans-IO rules of OpenID Connect that the host and its plugins share:
//! a user's claims and which of them a scope reveals ([`claims`]), and the
//! host's record of how a user signed in ([`authentication`]).

pub mod authentication;
pub mod claims;

pub use authentication::{ACR_PASSWORD, AMR_PASSWORD, Authentication};
