//! DPoP proofs (RFC 9449) in the host: the signature of a proof checked
//! with the public key in its own `jwk` header, then the rules of
//! `oauth::dpop`; and the server's nonces (§8), stateless: an HMAC of the
//! current time period under the key-encryption key, so every instance on
//! the same key issues and accepts the same nonce. Knows no HTTP and no
//! store (the `jti` is used once by the caller).
//!
//! The signature is verified with `jsonwebtoken`'s raw JWS verification
//! (`crypto::verify` over the signing input), not jwt-simple: jwt-simple
//! 0.15 reads the `jwk` header member as a string, so it refuses every
//! proof (whose `jwk` is a JSON object) before looking at the signature.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use subtle::ConstantTimeEq as _;

use crate::keys::KeyEncryptionKey;
use crate::oauth::dpop::{self, Accepted, Alg, Expectations, ProofHeader, Rejection};

/// How long one nonce is current; the previous period's is still accepted,
/// so a nonce works for one to two periods.
pub const NONCE_PERIOD_SECONDS: i64 = 300;

/// The label of the nonce MAC (see [`KeyEncryptionKey::mac`]).
const NONCE_PURPOSE: &[u8] = b"grantbox dpop nonce v1";

/// A proof that passed: the thumbprint of its key and what must be used once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// The JWK SHA-256 Thumbprint of the proof's key (RFC 7638): what
    /// tokens are bound to (`cnf.jkt`).
    pub jkt: String,
    pub accepted: Accepted,
}

/// Verifies one proof: its header (`typ`, asymmetric `alg`, a public `jwk`
/// of that algorithm), its signature by that `jwk`, then its claims against
/// `expect` (`htm`, `htu`, `iat`, `jti`, `ath`). The nonce and the `jti`'s
/// single use are the caller's.
pub fn verify(proof: &str, expect: &Expectations<'_>) -> Result<Proof, Rejection> {
    let header = dpop::read_header(proof)?;
    verify_signature(proof, &header)?;
    let claims = dpop::read_claims(proof)?;
    let accepted = dpop::check_claims(&claims, expect)?;
    let jkt = dpop::thumbprint(&header.jwk)?;
    Ok(Proof { jkt, accepted })
}

/// The signature over the proof's signing input, by its own `jwk` (already
/// checked public and of the header's algorithm); an RSA key of at least
/// 2048 bits, as for client assertions.
fn verify_signature(proof: &str, header: &ProofHeader) -> Result<(), Rejection> {
    let key_type = Rejection::KeyType(header.alg.as_str());
    if matches!(header.alg, Alg::Rs256 | Alg::Ps256)
        && crate::client_assertion::rsa_modulus_bits(&header.jwk).is_none_or(|bits| bits < 2048)
    {
        return Err(key_type);
    }
    let jwk: Jwk =
        serde_json::from_value(Value::Object(header.jwk.clone())).map_err(|_| key_type.clone())?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| key_type)?;
    let algorithm = match header.alg {
        Alg::Es256 => Algorithm::ES256,
        Alg::Rs256 => Algorithm::RS256,
        Alg::Ps256 => Algorithm::PS256,
        Alg::EdDsa => Algorithm::EdDSA,
    };
    let (signing_input, signature) = proof.rsplit_once('.').ok_or(Rejection::Malformed)?;
    match jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), &key, algorithm) {
        Ok(true) => Ok(()),
        _ => Err(Rejection::Signature),
    }
}

/// The nonce current at `now` (RFC 9449 §8): the same on every instance
/// sharing `kek`, a new one every [`NONCE_PERIOD_SECONDS`].
pub fn nonce(kek: &KeyEncryptionKey, now: i64) -> String {
    nonce_of_period(kek, now.div_euclid(NONCE_PERIOD_SECONDS))
}

/// Whether `nonce` is the current period's or the previous one's.
pub fn nonce_is_current(kek: &KeyEncryptionKey, nonce: &str, now: i64) -> bool {
    let period = now.div_euclid(NONCE_PERIOD_SECONDS);
    let matches = |period: i64| {
        let expected = nonce_of_period(kek, period);
        bool::from(expected.as_bytes().ct_eq(nonce.as_bytes()))
    };
    matches(period) | matches(period - 1)
}

fn nonce_of_period(kek: &KeyEncryptionKey, period: i64) -> String {
    URL_SAFE_NO_PAD.encode(kek.mac(NONCE_PURPOSE, &period.to_be_bytes()))
}

#[cfg(test)]
mod tests;
