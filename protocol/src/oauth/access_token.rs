//! The claim set of an RFC 9068 JWT access token: what the host signs with
//! header `typ: at+jwt` for a client registered for JWT access tokens. A pure
//! function of the token's values; the host signs and stores it.

use serde_json::{Map, Value, json};

/// The `typ` header of a JWT access token (RFC 9068 §2.1).
pub const JWT_TYPE: &str = "at+jwt";

/// What one access token says.
#[derive(Debug, Clone, Copy)]
pub struct AccessToken<'a> {
    /// `iss`: the server's issuer identifier (RFC 8414).
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The resource owner; `None` for a token issued to the client itself
    /// (client credentials), whose `sub` is then the client id (RFC 9068 §2.2).
    pub subject: Option<&'a str>,
    /// `aud`: the resources the token is for (RFC 8707); never empty for a
    /// JWT access token (RFC 9068 §3, the registration requires a resource).
    pub audience: &'a [String],
    pub scope: &'a [String],
    pub issued_at: i64,
    pub expires_at: i64,
    /// `jti`: unique per token (RFC 9068 §2.2, RFC 7519 §4.1.7).
    pub jti: &'a str,
    /// The acting party of a delegation (RFC 8693 §4.1 `act`).
    pub actor: Option<&'a str>,
    /// The JWK Thumbprint of the DPoP key the token is bound to (RFC 9449
    /// §6.1 `cnf.jkt`).
    pub confirmation: Option<&'a str>,
}

/// The claims of `token` (RFC 9068 §2.2): `iss`, `exp`, `aud` (a string
/// for one resource, an array for several, RFC 7519 §4.1.3), `sub`,
/// `client_id`, `iat`, `jti`, and `scope` (space-separated, RFC 9068 §2.2.3)
/// when the token has one; `act` for a delegation.
pub fn claims(token: &AccessToken<'_>) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(token.issuer));
    claims.insert("exp".into(), json!(token.expires_at));
    let audience = match token.audience {
        [one] => json!(one),
        many => json!(many),
    };
    claims.insert("aud".into(), audience);
    claims.insert(
        "sub".into(),
        json!(token.subject.unwrap_or(token.client_id)),
    );
    claims.insert("client_id".into(), json!(token.client_id));
    claims.insert("iat".into(), json!(token.issued_at));
    claims.insert("jti".into(), json!(token.jti));
    if !token.scope.is_empty() {
        claims.insert("scope".into(), json!(token.scope.join(" ")));
    }
    if let Some(actor) = token.actor {
        claims.insert("act".into(), json!({ "sub": actor }));
    }
    if let Some(jkt) = token.confirmation {
        claims.insert("cnf".into(), json!({ "jkt": jkt }));
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[track_caller]
    fn check(token: AccessToken<'_>, expect: Value) {
        assert_eq!(Value::Object(claims(&token)), expect);
    }

    #[test]
    fn claim_sets() {
        let api = strings(&["https://api.example/"]);
        let two = strings(&["https://api.example/", "https://billing.example/"]);
        let read_write = strings(&["read", "write"]);
        let user = AccessToken {
            issuer: "https://as.example",
            client_id: "app",
            subject: Some("u-1"),
            audience: &api,
            scope: &read_write,
            issued_at: 1_000,
            expires_at: 1_600,
            jti: "j-1",
            actor: None,
            confirmation: None,
        };
        // RFC 9068 §2.2: every required claim; scope space-separated (§2.2.3).
        check(
            user,
            json!({"iss": "https://as.example", "exp": 1600, "aud": "https://api.example/",
                   "sub": "u-1", "client_id": "app", "iat": 1000, "jti": "j-1",
                   "scope": "read write"}),
        );
        // RFC 9068 §2.2: a token of the client itself has the client id as sub.
        check(
            AccessToken {
                subject: None,
                ..user
            },
            json!({"iss": "https://as.example", "exp": 1600, "aud": "https://api.example/",
                   "sub": "app", "client_id": "app", "iat": 1000, "jti": "j-1",
                   "scope": "read write"}),
        );
        // RFC 7519 §4.1.3: several audiences are an array.
        check(
            AccessToken {
                audience: &two,
                scope: &[],
                ..user
            },
            json!({"iss": "https://as.example", "exp": 1600,
                   "aud": ["https://api.example/", "https://billing.example/"],
                   "sub": "u-1", "client_id": "app", "iat": 1000, "jti": "j-1"}),
        );
        // RFC 8693 §4.1: a delegation names the actor.
        check(
            AccessToken {
                actor: Some("svc"),
                ..user
            },
            json!({"iss": "https://as.example", "exp": 1600, "aud": "https://api.example/",
                   "sub": "u-1", "client_id": "app", "iat": 1000, "jti": "j-1",
                   "scope": "read write", "act": {"sub": "svc"}}),
        );
        // RFC 9449 §6.1: a DPoP-bound token names its key's thumbprint.
        check(
            AccessToken {
                confirmation: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"),
                ..user
            },
            json!({"iss": "https://as.example", "exp": 1600, "aud": "https://api.example/",
                   "sub": "u-1", "client_id": "app", "iat": 1000, "jti": "j-1",
                   "scope": "read write",
                   "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}),
        );
    }
}
