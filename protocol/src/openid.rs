//! The sans-IO rules of OpenID Connect that the host and its plugins share:
//! a user's claims and which of them a scope reveals ([`claims`]).

pub mod claims;

/// The Authentication Context Class Reference (OIDC Core §2 `acr`) of a
/// sign-in with a username and password: the only class this server
/// offers, advertised as `acr_values_supported`.
pub const ACR_PASSWORD: &str = "urn:grantbox:acr:password";
