//! What the host signs for a plugin through the `signing` capability: the
//! rules on the `typ` and the claims a plugin hands over, and the claims the
//! host then signs (its own `iss`). Pure; the key and the clock are the
//! caller's.

use serde_json::{Map, Value};

/// The most bytes of claims (JSON text) the host signs in one call.
pub const MAX_CLAIMS_BYTES: usize = 16 * 1024;
/// The longest `typ`.
pub const MAX_TYP_CHARS: usize = 64;

/// Why the host refuses to sign; the plugin sees it as `invalid-argument`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningRefusal {
    #[error("typ must be a media type name (RFC 6838 §4.2) of 1 to {MAX_TYP_CHARS} characters")]
    Typ,
    #[error("claims are longer than {MAX_CLAIMS_BYTES} bytes")]
    TooLong,
    #[error("claims are not a JSON object")]
    NotAnObject,
    #[error("claims need an integer exp after now and at most {0} seconds ahead")]
    Expiry(i64),
}

/// The claims to sign for a plugin: `claims` (JSON object text) with `iss`
/// set to `issuer`, replacing whatever the plugin wrote, so a plugin can
/// never make the server's key vouch for another issuer. `exp` is required
/// and at most `max_lifetime` seconds after `now`, so nothing the host signs
/// outlives the time a retired key stays published.
pub fn claims_to_sign(
    typ: &str,
    claims: &str,
    issuer: &str,
    now: i64,
    max_lifetime: i64,
) -> Result<Map<String, Value>, SigningRefusal> {
    if !is_media_type_name(typ) {
        return Err(SigningRefusal::Typ);
    }
    if claims.len() > MAX_CLAIMS_BYTES {
        return Err(SigningRefusal::TooLong);
    }
    let Ok(Value::Object(mut claims)) = serde_json::from_str::<Value>(claims) else {
        return Err(SigningRefusal::NotAnObject);
    };
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp > now && exp <= now.saturating_add(max_lifetime) => {}
        _ => return Err(SigningRefusal::Expiry(max_lifetime)),
    }
    claims.insert("iss".to_owned(), Value::String(issuer.to_owned()));
    Ok(claims)
}

/// A `restricted-name` of RFC 6838 §4.2 (e.g. `at+jwt`), at most
/// [`MAX_TYP_CHARS`] long: no spaces, quotes or separators a header could
/// be confused by.
fn is_media_type_name(typ: &str) -> bool {
    let mut bytes = typ.bytes();
    (1..=MAX_TYP_CHARS).contains(&typ.len())
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn check(typ: &str, claims: &str, expect: Result<Value, SigningRefusal>) {
        let got = claims_to_sign(typ, claims, "https://as.example", NOW, 3600).map(Value::Object);
        assert_eq!(got, expect, "typ {typ:?}, claims {claims}");
    }

    #[test]
    fn the_rules_on_what_a_plugin_asks_to_sign() {
        let exp = NOW + 60;
        let signed = |extra: &str| {
            Ok(serde_json::from_str::<Value>(&format!(
                r#"{{"iss":"https://as.example","exp":{exp}{extra}}}"#
            ))
            .unwrap())
        };
        // The plugin's claims pass through, with the host's `iss`.
        check(
            "at+jwt",
            &format!(r#"{{"exp":{exp},"sub":"alice","act":{{"sub":"svc"}}}}"#),
            signed(r#","sub":"alice","act":{"sub":"svc"}"#),
        );
        // A plugin cannot name another issuer.
        check(
            "at+jwt",
            &format!(r#"{{"exp":{exp},"iss":"https://evil.example"}}"#),
            signed(""),
        );
        check("JWT", &format!(r#"{{"exp":{exp}}}"#), signed(""));
        // `exp`: required, an integer, in the future, within the lifetime.
        let expiry = Err(SigningRefusal::Expiry(3600));
        check("at+jwt", r#"{"sub":"alice"}"#, expiry.clone());
        check("at+jwt", &format!(r#"{{"exp":"{exp}"}}"#), expiry.clone());
        check("at+jwt", &format!(r#"{{"exp":{NOW}}}"#), expiry.clone());
        check(
            "at+jwt",
            &format!(r#"{{"exp":{}}}"#, NOW + 3601),
            expiry.clone(),
        );
        check("at+jwt", &format!(r#"{{"exp":{}}}"#, NOW + 3600), {
            let exp = NOW + 3600;
            Ok(serde_json::json!({"iss": "https://as.example", "exp": exp}))
        });
        // Not an object.
        for claims in ["[]", "\"exp\"", "{", ""] {
            check("at+jwt", claims, Err(SigningRefusal::NotAnObject));
        }
        // `typ`: a media type name, short.
        let long = "a".repeat(MAX_TYP_CHARS + 1);
        for typ in ["", "at jwt", "at\"jwt", "+jwt", "at/jwt", long.as_str()] {
            check(
                typ,
                &format!(r#"{{"exp":{exp}}}"#),
                Err(SigningRefusal::Typ),
            );
        }
        check(
            &"a".repeat(MAX_TYP_CHARS),
            &format!(r#"{{"exp":{exp}}}"#),
            signed(""),
        );
        // Size.
        let big = format!(
            r#"{{"exp":{exp},"pad":"{}"}}"#,
            "x".repeat(MAX_CLAIMS_BYTES)
        );
        check("at+jwt", &big, Err(SigningRefusal::TooLong));
    }
}
