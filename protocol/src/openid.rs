//! The sans-IO rules of OpenID Connect that the host and its plugins share:
//! a user's claims and which of them a scope reveals ([`claims`]).

pub mod claims;
