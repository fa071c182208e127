//! The check of a DPoP proof at a protected resource (RFC 9449 §4.3, §7.1):
//! a JWS of `typ` `dpop+jwt`, signed with an asymmetric algorithm by the
//! public key in its own `jwk` header (verified with `jsonwebtoken`), whose
//! `htm` and `htu` name this request, whose `iat` is recent, whose `ath` is
//! the hash of the access token presented, whose key is the one the token
//! is bound to (`cnf.jkt`), and whose `jti` this resource server has not
//! seen within the proof's lifetime ([`SeenProofs`], in memory: one
//! process; proofs are bound to one request and one key, so a replay to
//! another instance gains only a request the proof's owner already made).

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Rejection;

/// The proof algorithms accepted, as the `algs` of a `DPoP` challenge.
pub const ALGORITHMS: [&str; 4] = ["ES256", "RS256", "PS256", "EdDSA"];

/// What a proof must match: the request and the token it comes with.
pub(crate) struct Expected<'a> {
    /// The request method (`htm`).
    pub method: &'a str,
    /// The request URL without query and fragment (`htu`).
    pub url: &'a str,
    /// The access token presented (its SHA-256 is `ath`).
    pub access_token: &'a str,
    /// The thumbprint the token is bound to (`cnf.jkt`).
    pub jkt: &'a str,
    /// Unix seconds now.
    pub now: i64,
    /// How far `iat` may be from now, either way.
    pub max_age: i64,
}

fn refuse<T>(description: &'static str) -> Result<T, Rejection> {
    Err(Rejection::InvalidDpopProof { description })
}

/// Checks `proof` against `expected`; its `jti` is remembered in `seen`.
pub(crate) fn check(
    proof: &str,
    expected: &Expected<'_>,
    seen: &SeenProofs,
) -> Result<(), Rejection> {
    let Ok(header) = jsonwebtoken::decode_header(proof) else {
        return refuse("the DPoP proof is not a JWS");
    };
    if header.typ.as_deref() != Some("dpop+jwt") {
        return refuse("the DPoP proof's typ is not dpop+jwt");
    }
    let allowed = [
        Algorithm::ES256,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::EdDSA,
    ];
    if !allowed.contains(&header.alg) {
        return refuse("the DPoP proof's alg is not an accepted asymmetric algorithm");
    }
    let Some(jwk) = &header.jwk else {
        return refuse("the DPoP proof has no jwk");
    };
    // A symmetric key would be a shared secret, never a proof of possession.
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return refuse("the DPoP proof's jwk is not a public key");
    }
    let Ok(key) = DecodingKey::from_jwk(jwk) else {
        return refuse("the DPoP proof's jwk is not a usable public key");
    };
    let mut validation = Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let Ok(claims) = jsonwebtoken::decode::<Value>(proof, &key, &validation) else {
        return refuse("the DPoP proof's signature does not verify with its jwk");
    };
    let claims = claims.claims;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("htm") != Some(expected.method) {
        return refuse("the DPoP proof's htm is not this request's method");
    }
    let Some(htu) = text("htu") else {
        return refuse("the DPoP proof has no htu");
    };
    let htu = htu.split(['?', '#']).next().unwrap_or_default();
    if htu.trim_end_matches('/') != expected.url.trim_end_matches('/') {
        return refuse("the DPoP proof's htu is not this request's URL");
    }
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else {
        return refuse("the DPoP proof has no iat");
    };
    if (expected.now - iat).abs() > expected.max_age {
        return refuse("the DPoP proof's iat is not recent");
    }
    let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(expected.access_token.as_bytes()));
    if text("ath") != Some(ath.as_str()) {
        return refuse("the DPoP proof's ath is not the hash of this access token");
    }
    if jwk.thumbprint(ThumbprintHash::SHA256).ok().as_deref() != Some(expected.jkt) {
        return refuse("the DPoP proof is signed by another key than the token's");
    }
    let Some(jti) = text("jti").filter(|jti| !jti.is_empty() && jti.len() <= 256) else {
        return refuse("the DPoP proof has no jti");
    };
    if !seen.first_use(jti, expected.jkt, iat + expected.max_age, expected.now) {
        return refuse("the DPoP proof was used before");
    }
    Ok(())
}

/// The `jti`s of the proofs accepted, until they could no longer pass the
/// `iat` check: a replayed proof is refused. Bounded: when full, the ones
/// nearest their end are forgotten first.
pub(crate) struct SeenProofs {
    capacity: usize,
    seen: Mutex<HashMap<(String, String), i64>>,
}

impl SeenProofs {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records `jti` of the key `jkt` until `until`; false if it was seen.
    fn first_use(&self, jti: &str, jkt: &str, until: i64, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let key = (jkt.to_owned(), jti.to_owned());
        if seen.get(&key).is_some_and(|&end| end >= now) {
            return false;
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, end| *end >= now);
        }
        if seen.len() >= self.capacity
            && let Some(nearest) = seen
                .iter()
                .min_by_key(|(_, end)| **end)
                .map(|(k, _)| k.clone())
        {
            seen.remove(&nearest);
        }
        seen.insert(key, until);
        true
    }
}

#[cfg(test)]
pub(crate) mod tests;
