//! Sans-IO protocol rules of OAuth 2.0: request parameters, errors, scopes,
//! client authentication and DPoP proofs. Nothing here does IO; the host's `endpoint/` feeds
//! it values.

pub mod access_token;
pub mod authorize;
pub mod client_assertion;
pub mod client_auth;
pub mod dpop;
pub mod error;
pub mod jws;
pub mod params;
pub mod profile;
pub mod redirect;
pub mod resource;
pub mod response_mode;
pub mod scope;

pub use error::{ErrorCode, OAuthError};
pub use params::Params;
pub use response_mode::ResponseMode;
