//! The host's record of how a user signed in, which an ID token states
//! (OpenID Connect Core 1.0 §2: `auth_time`, `amr`, `acr`). The host builds
//! it from the session when a request is approved; plugins never see it.

use serde::{Deserialize, Serialize};

/// The one Authentication Context Class Reference this server offers: the
/// user signed in with a username and password on the login page. It is
/// the only value of `acr_values_supported`, and an ID token carries it in
/// `acr` only when the request asked for it (`acr_values`).
pub const ACR_PASSWORD: &str = "urn:grantbox:acr:password";

/// The Authentication Method Reference (RFC 8176 §2) of a password sign-in.
pub const AMR_PASSWORD: &str = "pwd";

/// How and when the user who approved a request signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    /// When the user signed in, in seconds since the Unix epoch (§2
    /// `auth_time`).
    pub auth_time: i64,
    /// How the user signed in (§2 `amr`, RFC 8176 values such as `pwd`).
    pub amr: Vec<String>,
    /// The context class the sign-in satisfied (§2 `acr`), when the request
    /// asked for one.
    pub acr: Option<String>,
}

impl Authentication {
    /// A sign-in with a password on the login page at `auth_time`, with no
    /// `acr` (the request did not ask for one).
    pub fn password(auth_time: i64) -> Self {
        Self {
            auth_time,
            amr: vec![AMR_PASSWORD.to_owned()],
            acr: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_sign_in_says_pwd_and_no_acr() {
        let authentication = Authentication::password(1_700_000_000);
        assert_eq!(authentication.auth_time, 1_700_000_000);
        assert_eq!(authentication.amr, ["pwd"]);
        assert_eq!(authentication.acr, None);
    }

    #[test]
    fn it_round_trips_through_json() {
        let authentication = Authentication {
            auth_time: 42,
            amr: vec!["pwd".into()],
            acr: Some(ACR_PASSWORD.into()),
        };
        let json = serde_json::to_string(&authentication).unwrap();
        assert_eq!(
            json,
            r#"{"auth_time":42,"amr":["pwd"],"acr":"urn:grantbox:acr:password"}"#
        );
        let back: Authentication = serde_json::from_str(&json).unwrap();
        assert_eq!(back, authentication);
    }
}
