//! The claims of an ID token (OpenID Connect Core 1.0 §2, §3.1.3.6, §5.4):
//! what the host asserts about a sign-in for one client, assembled from
//! values. Sans-IO: the host signs the result and computes `at_hash` with
//! the hash of the algorithm it signs with.

use serde_json::{Map, Value};

use super::Authentication;

/// The longest `nonce` the host echoes: a value a client chose to bind its
/// session to the ID token, so a short random string in practice.
pub const MAX_NONCE_LEN: usize = 512;

/// The `typ` header of an ID token (the JWT media type, RFC 7519 §5.1).
pub const JWT_TYPE: &str = "JWT";

/// What one ID token says.
#[derive(Debug, Clone)]
pub struct IdToken<'a> {
    /// `iss`: the host's issuer identifier.
    pub issuer: &'a str,
    /// `sub`: `users.subject`, the same as the access token's.
    pub subject: &'a str,
    /// `aud` (as a one-element array) and `azp`: the client.
    pub client_id: &'a str,
    pub issued_at: i64,
    pub expires_at: i64,
    /// `auth_time`, `amr`, `acr`: how the user signed in.
    pub authentication: &'a Authentication,
    /// Echoed exactly when the authorization request had one (§3.1.2.1).
    pub nonce: Option<&'a str>,
    /// §3.1.3.6: of the access token issued with the ID token.
    pub at_hash: Option<&'a str>,
    /// The user's claims the granted scope releases (§5.4).
    pub released: Map<String, Value>,
}

/// The JSON claims of `token`. The user's claims never replace one the
/// host sets: the operator cannot store those ([`super::claims::RESERVED`]),
/// and they are inserted first here besides.
pub fn claims(token: IdToken<'_>) -> Map<String, Value> {
    let mut claims = token.released;
    claims.insert("iss".into(), token.issuer.into());
    claims.insert("sub".into(), token.subject.into());
    claims.insert("aud".into(), Value::Array(vec![token.client_id.into()]));
    claims.insert("azp".into(), token.client_id.into());
    claims.insert("exp".into(), token.expires_at.into());
    claims.insert("iat".into(), token.issued_at.into());
    claims.insert("auth_time".into(), token.authentication.auth_time.into());
    claims.insert(
        "amr".into(),
        Value::Array(
            (token.authentication.amr.iter())
                .map(|m| Value::from(m.as_str()))
                .collect(),
        ),
    );
    if let Some(acr) = &token.authentication.acr {
        claims.insert("acr".into(), acr.as_str().into());
    }
    if let Some(nonce) = token.nonce {
        claims.insert("nonce".into(), nonce.into());
    }
    if let Some(at_hash) = token.at_hash {
        claims.insert("at_hash".into(), at_hash.into());
    }
    claims
}

/// Whether `nonce` may be echoed: 1 to [`MAX_NONCE_LEN`] bytes without
/// control characters.
pub fn is_valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty() && nonce.len() <= MAX_NONCE_LEN && !nonce.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_host_claims_win_and_optional_ones_appear_when_given() {
        let authentication = Authentication::password(1_000);
        let mut released = Map::new();
        released.insert("name".into(), "Alice".into());
        released.insert("sub".into(), "forged".into());
        let claims = claims(IdToken {
            issuer: "https://id.example",
            subject: "s-1",
            client_id: "rp",
            issued_at: 2_000,
            expires_at: 2_300,
            authentication: &authentication,
            nonce: Some("n-0S6_WzA2Mj"),
            at_hash: Some("77QmUPtjPfzWtF2AnpK9RQ"),
            released,
        });
        assert_eq!(
            Value::Object(claims),
            json!({
                "iss": "https://id.example", "sub": "s-1", "aud": ["rp"], "azp": "rp",
                "exp": 2_300, "iat": 2_000, "auth_time": 1_000, "amr": ["pwd"],
                "nonce": "n-0S6_WzA2Mj", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "name": "Alice",
            })
        );

        let with_acr = Authentication {
            acr: Some(crate::openid::ACR_PASSWORD.into()),
            ..Authentication::password(1_000)
        };
        let claims = super::claims(IdToken {
            issuer: "https://id.example",
            subject: "s-1",
            client_id: "rp",
            issued_at: 2_000,
            expires_at: 2_300,
            authentication: &with_acr,
            nonce: None,
            at_hash: None,
            released: Map::new(),
        });
        assert_eq!(claims["acr"], crate::openid::ACR_PASSWORD);
        assert!(!claims.contains_key("nonce") && !claims.contains_key("at_hash"));
    }

    #[test]
    fn nonces_are_bounded() {
        assert!(is_valid_nonce("n-0S6_WzA2Mj"));
        assert!(is_valid_nonce(&"n".repeat(MAX_NONCE_LEN)));
        assert!(!is_valid_nonce(&"n".repeat(MAX_NONCE_LEN + 1)));
        assert!(!is_valid_nonce(""));
        assert!(!is_valid_nonce("a\nb"));
    }
}
