//! JWT client authentication (RFC 7523 §2.2) in the host: for
//! `private_key_jwt` the JWK Set a client registers (`client add --jwks`),
//! checked once at registration and parsed again at each use; for
//! `client_secret_jwt` the HMAC keyed with the client secret (OpenID Connect
//! Core §9); and for an assertion naming no registered client, the same work
//! against fixed dummy keys. Signatures and MACs are verified with
//! jwt-simple (constant-time for MACs) before the claim rules of
//! `oauth::client_assertion` run. Knows no HTTP and no store.

use jwt_simple::prelude::{
    Duration, ECDSAP256PublicKeyLike, ES256PublicKey, Ed25519PublicKey, EdDSAPublicKeyLike,
    HS256Key, HS384Key, HS512Key, MACLike, NoCustomClaims, RS256PublicKey, RSAPublicKeyLike,
    VerificationOptions,
};
use serde_json::{Map, Value};

use crate::oauth::client_assertion::{
    self, Accepted, Alg, CLOCK_SKEW_SECONDS, Expectations, Rejection,
};

/// At most this many keys in a client's JWK Set: enough for a rotation
/// with several algorithms, few enough that trying each stays cheap.
pub const MAX_KEYS: usize = 10;

/// Why a JWK Set cannot be registered. Each names the key by its position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error(
        "the JWK Set is not a JSON object with a non-empty \"keys\" array of at most {MAX_KEYS} objects"
    )]
    Shape,
    #[error("key {index} of the JWK Set has private member {member:?}: register public keys only")]
    PrivateMember { index: usize, member: String },
    #[error(
        "key {index} of the JWK Set has kty {kty:?} (crv {crv:?}): supported are EC P-256, RSA and OKP Ed25519"
    )]
    KeyType {
        index: usize,
        kty: String,
        crv: Option<String>,
    },
    #[error("key {index} of the JWK Set has alg {alg:?}, but its key type signs with {expected}")]
    Alg {
        index: usize,
        alg: String,
        expected: &'static str,
    },
    #[error("key {index} of the JWK Set is an RSA key of {bits} bits: at least 2048 are required")]
    WeakRsa { index: usize, bits: usize },
    #[error(
        "key {index} of the JWK Set has use {key_use:?}: a client assertion key must be \"sig\""
    )]
    Use { index: usize, key_use: String },
    #[error("key {index} of the JWK Set repeats kid {kid:?}")]
    DuplicateKid { index: usize, kid: String },
    #[error("key {index} of the JWK Set is not a valid {alg} public key")]
    Invalid { index: usize, alg: &'static str },
}

/// Why an assertion did not authenticate its client; logged at debug level,
/// never sent (the client only learns `invalid_client`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error(transparent)]
    Rule(#[from] Rejection),
    #[error("no registered key of the client fits alg {alg} and kid {kid:?}")]
    NoKey {
        alg: &'static str,
        kid: Option<String>,
    },
    #[error("the signature does not verify with the client's {alg} key")]
    Signature { alg: &'static str },
    #[error("the client has no usable registered keys")]
    NotVerifiable,
    #[error("alg {alg} is not one of {method}'s algorithms")]
    MethodAlg {
        alg: &'static str,
        method: &'static str,
    },
}

/// Member names that carry private key material (RFC 7518 §6.2.2, §6.3.2,
/// §6.4.1; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Validates a JWK Set of public keys for `private_key_jwt` and returns it
/// as the JSON text to store.
pub fn parse_jwks(text: &str) -> Result<String, JwksError> {
    let keys = registered_keys(text)?;
    let stored: Vec<Value> = keys.into_iter().map(|key| Value::Object(key.jwk)).collect();
    Ok(serde_json::json!({ "keys": stored }).to_string())
}

/// Verifies `assertion` as the `private_key_jwt` credential of the client
/// whose registered JWK Set is `jwks`: a registered key of the header's
/// algorithm (and `kid`, when given) verifies the signature, and the claims
/// meet RFC 7523 §3. An HMAC is refused before any key is read, so an HMAC
/// keyed with a public key never verifies (algorithm confusion).
pub fn verify(
    jwks: &str,
    assertion: &str,
    expect: &Expectations<'_>,
) -> Result<Accepted, AssertionError> {
    let header = client_assertion::read_header(assertion)?;
    if header.alg.is_hmac() {
        return Err(AssertionError::MethodAlg {
            alg: header.alg.as_str(),
            method: "private_key_jwt",
        });
    }
    let keys = registered_keys(jwks).map_err(|_| AssertionError::NotVerifiable)?;
    verify_with_keys(&keys, header.alg, header.kid, assertion, expect)
}

/// Verifies `assertion` as the `client_secret_jwt` credential of a client
/// whose secret is `secret` (its octets are the HMAC key, OpenID Connect
/// Core §10.1): HS256, HS384 or HS512 only, compared in constant time, then
/// the claims of RFC 7523 §3.
pub fn verify_hmac(
    secret: &[u8],
    assertion: &str,
    expect: &Expectations<'_>,
) -> Result<Accepted, AssertionError> {
    let header = client_assertion::read_header(assertion)?;
    if !header.alg.is_hmac() {
        return Err(AssertionError::MethodAlg {
            alg: header.alg.as_str(),
            method: "client_secret_jwt",
        });
    }
    let options = options(expect);
    let verified = match header.alg {
        Alg::Hs256 => HS256Key::from_bytes(secret)
            .verify_token::<NoCustomClaims>(assertion, Some(options))
            .is_ok(),
        Alg::Hs384 => HS384Key::from_bytes(secret)
            .verify_token::<NoCustomClaims>(assertion, Some(options))
            .is_ok(),
        Alg::Hs512 => HS512Key::from_bytes(secret)
            .verify_token::<NoCustomClaims>(assertion, Some(options))
            .is_ok(),
        Alg::Es256 | Alg::Rs256 | Alg::EdDsa => unreachable!("refused above: not an HMAC"),
    };
    if !verified {
        return Err(AssertionError::Signature {
            alg: header.alg.as_str(),
        });
    }
    let claims = client_assertion::read_claims(assertion)?;
    Ok(client_assertion::check_claims(&claims, expect)?)
}

/// For an assertion whose `sub` names no registered client: the work a
/// registered client's assertion of the same `alg` costs (parsing a JWK Set
/// and verifying a signature, or an HMAC), against fixed dummy keys, so the
/// time of the refusal does not tell an unknown client id from a known one.
/// The caller refuses the client whatever this returns; it returns what the
/// verification found, so a test can see that the verification ran.
pub fn verify_for_unknown_client(
    assertion: &str,
    expect: &Expectations<'_>,
) -> Result<Accepted, AssertionError> {
    let header = client_assertion::read_header(assertion)?;
    if header.alg.is_hmac() {
        return verify_hmac(DUMMY_SECRET.as_bytes(), assertion, expect);
    }
    let keys = registered_keys(DUMMY_JWKS).map_err(|_| AssertionError::NotVerifiable)?;
    // The dummy keys have no kid: whatever the header names, its algorithm's
    // dummy key is tried, as a registered key would be.
    verify_with_keys(&keys, header.alg, None, assertion, expect)
}

/// The HMAC key of [`verify_for_unknown_client`]: as long as a generated
/// client secret. Public on purpose: what it verifies is refused anyway.
pub(crate) const DUMMY_SECRET: &str = "unknown-client-dummy-secret-43-characters--";

/// The public keys of [`verify_for_unknown_client`], one per asymmetric
/// algorithm (their private parts were discarded when they were made).
const DUMMY_JWKS: &str = r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "afGRM_gV2-0-xBZiCmqP7joNhJ-7lze19YgrfqKY6J4", "y": "Lu49pAtM94ml9GpCYMGJ7gagSx2Lybv_XsIWYLdLP5E"}, {"kty": "RSA", "n": "rewQ23_UQaxHH33-D0-dbm7NCYNv5TCDSGxhr0SojFEzVczWPth4laSvJRUhr7eJzZAl02NgYH8ghKco18ox19xgN58jk9VLq-t7NwcV0fNJosZNeZWFOomxVEkebNMvjyLLqcYvem6egHk_iBbcILgl1I6i3F4pM1q7M_v8Ykkw61c-aEXxiz0ov5xEcyETvTYcQ5yNI9SvOzQhdSbn1zPRupGg1epktfR-zwsRC9tkk5Esy_429Kek48tQfoUAQwCHjnKr1mtyfTV9rqIw6Q7QEg9qe6mmeaJOa1syDs-Frebk2axTRiCnjTfwESOm418YP5rBxHi6K1wt-zFEUw", "e": "AQAB"}, {"kty": "OKP", "crv": "Ed25519", "x": "HS1JSdZIhAVerSTwGundmui9LVrxo28DzNZfIJwRXyk"}]}"#;

/// jwt-simple's checks at `expect.now`, with the clock skew.
fn options(expect: &Expectations<'_>) -> VerificationOptions {
    VerificationOptions {
        artificial_time: Some(Duration::from_secs(expect.now.max(0) as u64)),
        time_tolerance: Some(Duration::from_secs(CLOCK_SKEW_SECONDS as u64)),
        ..VerificationOptions::default()
    }
}

/// A key of `alg` among `keys` (and of `kid`, when given) verifies the
/// signature, and the claims pass.
fn verify_with_keys(
    keys: &[RegisteredKey],
    alg: Alg,
    kid: Option<String>,
    assertion: &str,
    expect: &Expectations<'_>,
) -> Result<Accepted, AssertionError> {
    let options = options(expect);
    let candidates: Vec<&RegisteredKey> = keys
        .iter()
        .filter(|key| key.alg == alg)
        .filter(|key| kid.is_none() || key.kid == kid)
        .collect();
    if candidates.is_empty() {
        return Err(AssertionError::NoKey {
            alg: alg.as_str(),
            kid,
        });
    }
    let verified = candidates
        .iter()
        .any(|key| key.public_key.verifies(assertion, &options));
    if !verified {
        return Err(AssertionError::Signature { alg: alg.as_str() });
    }
    let claims = client_assertion::read_claims(assertion)?;
    Ok(client_assertion::check_claims(&claims, expect)?)
}

/// One registered key, parsed.
struct RegisteredKey {
    alg: Alg,
    kid: Option<String>,
    public_key: PublicKey,
    /// The key's JWK as registered.
    jwk: Map<String, Value>,
}

enum PublicKey {
    Es256(ES256PublicKey),
    /// Boxed: far larger than the other keys.
    Rs256(Box<RS256PublicKey>),
    EdDsa(Ed25519PublicKey),
}

impl PublicKey {
    /// Whether the signature verifies. jwt-simple also checks that the
    /// header's `alg` is this key's, and `exp`/`nbf`/`iat` against `now`;
    /// the claim rules proper run afterwards.
    fn verifies(&self, assertion: &str, options: &VerificationOptions) -> bool {
        let options = Some(options.clone());
        match self {
            Self::Es256(key) => key
                .verify_token::<NoCustomClaims>(assertion, options)
                .is_ok(),
            Self::Rs256(key) => key
                .verify_token::<NoCustomClaims>(assertion, options)
                .is_ok(),
            Self::EdDsa(key) => key
                .verify_token::<NoCustomClaims>(assertion, options)
                .is_ok(),
        }
    }
}

fn registered_keys(text: &str) -> Result<Vec<RegisteredKey>, JwksError> {
    let Ok(Value::Object(mut set)) = serde_json::from_str::<Value>(text) else {
        return Err(JwksError::Shape);
    };
    let Some(Value::Array(keys)) = set.remove("keys") else {
        return Err(JwksError::Shape);
    };
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(JwksError::Shape);
    }
    let mut parsed: Vec<RegisteredKey> = Vec::with_capacity(keys.len());
    for (index, key) in keys.into_iter().enumerate() {
        let Value::Object(jwk) = key else {
            return Err(JwksError::Shape);
        };
        let key = registered_key(index, jwk)?;
        if let Some(kid) = &key.kid
            && parsed.iter().any(|other| other.kid.as_ref() == Some(kid))
        {
            return Err(JwksError::DuplicateKid {
                index,
                kid: kid.clone(),
            });
        }
        parsed.push(key);
    }
    Ok(parsed)
}

fn registered_key(index: usize, jwk: Map<String, Value>) -> Result<RegisteredKey, JwksError> {
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(JwksError::PrivateMember {
            index,
            member: (*member).to_owned(),
        });
    }
    let text = |name: &str| jwk.get(name).and_then(Value::as_str).map(str::to_owned);
    let kty = text("kty").unwrap_or_default();
    let crv = text("crv");
    let alg = match (kty.as_str(), crv.as_deref()) {
        ("EC", Some("P-256")) => Alg::Es256,
        ("RSA", None) => Alg::Rs256,
        ("OKP", Some("Ed25519")) => Alg::EdDsa,
        _ => return Err(JwksError::KeyType { index, kty, crv }),
    };
    let expected = alg.as_str();
    if let Some(declared) = jwk.get("alg")
        && declared.as_str() != Some(alg.as_str())
    {
        return Err(JwksError::Alg {
            index,
            alg: declared.to_string(),
            expected,
        });
    }
    if let Some(key_use) = jwk.get("use")
        && key_use.as_str() != Some("sig")
    {
        return Err(JwksError::Use {
            index,
            key_use: key_use.to_string(),
        });
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => {
            return Err(JwksError::Invalid {
                index,
                alg: alg.as_str(),
            });
        }
    };
    let invalid = |_| JwksError::Invalid {
        index,
        alg: alg.as_str(),
    };
    let json = Value::Object(jwk.clone()).to_string();
    let public_key = match alg {
        Alg::Es256 => PublicKey::Es256(ES256PublicKey::from_jwk(&json).map_err(invalid)?),
        Alg::EdDsa => PublicKey::EdDsa(Ed25519PublicKey::from_jwk(&json).map_err(invalid)?),
        Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => unreachable!("key types map to public-key algs"),
        Alg::Rs256 => {
            let bits = rsa_modulus_bits(&jwk).ok_or(JwksError::Invalid {
                index,
                alg: alg.as_str(),
            })?;
            if bits < 2048 {
                return Err(JwksError::WeakRsa { index, bits });
            }
            PublicKey::Rs256(Box::new(RS256PublicKey::from_jwk(&json).map_err(invalid)?))
        }
    };
    Ok(RegisteredKey {
        alg,
        kid,
        public_key,
        jwk,
    })
}

/// The bit length of an RSA JWK's modulus `n` (base64url, RFC 7518 §6.3.1.1).
pub(crate) fn rsa_modulus_bits(jwk: &Map<String, Value>) -> Option<usize> {
    use base64::Engine as _;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwk.get("n")?.as_str()?)
        .ok()?;
    let first = n.iter().position(|&b| b != 0)?;
    Some((n.len() - first) * 8 - n[first].leading_zeros() as usize)
}

#[cfg(test)]
mod tests;
