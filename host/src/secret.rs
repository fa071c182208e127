//! Secret material: random tokens, their SHA-256 hashes, constant-time comparison and
//! argon2id password hashing. Knows nothing about where secrets are stored or sent.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, Params};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of a [`new_token`] string: 32 bytes in unpadded base64url.
pub const TOKEN_LEN: usize = 43;

/// Failure to hash a password.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// argon2 refused the input or its parameters; the text is argon2's own.
    #[error("cannot hash password: {0}")]
    HashPassword(String),
}

/// A fresh 256-bit random value, base64url without padding (43 characters).
///
/// Used for access tokens, refresh tokens, codes, client secrets and ids.
/// `rand::rng()` is a ChaCha12 generator seeded and periodically reseeded
/// from the operating system, so it is a CSPRNG.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The id of a new token family (grant): the time `now` (seconds) and a
/// per-process sequence, hex and fixed width, then 128 random bits in
/// base64url (38 characters).
///
/// Ids made one after the other sort one after the other, so the `grant_id`
/// indexes of tokens and codes grow at their end: a batch of inserts writes
/// a few index pages instead of one page per token at a random place. The
/// random part keeps ids of different processes apart and none guessable;
/// a family id is never a credential (`tokens.issue` accepts only families
/// the call itself learned).
pub fn new_grant_id(now: i64) -> String {
    static SEQUENCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0xff_ffff;
    let mut random = [0u8; 16];
    rand::rng().fill_bytes(&mut random);
    format!(
        "{:010x}{sequence:06x}{}",
        now.max(0),
        URL_SAFE_NO_PAD.encode(random)
    )
}

/// `len` bytes from the same CSPRNG as [`new_token`] (for plugins that need randomness).
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// SHA-256 of a token, code or client secret: the only form in which they are stored.
///
/// A fast hash is enough because the inputs are 256-bit random values; a slow
/// hash would buy nothing and cap the token endpoint.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `presented` hashes to `stored_hash`, compared in constant time.
///
/// A stored hash of the wrong length never matches.
pub fn secret_matches(presented: &str, stored_hash: &[u8]) -> bool {
    token_hash(presented).as_slice().ct_eq(stored_hash).into()
}

/// An argon2id PHC string (`$argon2id$v=19$...`) for `password`, with a random salt
/// and the crate's default cost (19 MiB, 2 passes, 1 lane, as OWASP recommends).
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| SecretError::HashPassword(e.to_string()))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| SecretError::HashPassword(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`; a malformed `phc` never matches.
///
/// The cost parameters are read from `phc`, so hashes made with older
/// parameters keep verifying.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Always `false`, after doing the work of one [`verify_password`] with the
/// default parameters, so that a login for a missing user takes as long as
/// one with a wrong password.
///
/// Use it as `user.map_or_else(|| dummy_verify(pw), |u| verify_password(pw, &u.password_hash))`.
pub fn dummy_verify(password: &str) -> bool {
    let matched = verify_password(password, DUMMY_PHC);
    // The result is discarded; keep the optimizer from reasoning the work away.
    let _ = std::hint::black_box(matched);
    false
}

/// The hash of a random password that was thrown away, made with
/// `Argon2::default()`. A test checks its parameters still equal the default.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$IY1I8faXBHDNH8CsUgzQhg$1xlQhd8ZD82Mp0y9sXNBsr+kIoWzCCSKI/hgmd6UOic";

/// Whether a PHC string uses the current default cost parameters.
///
/// Lets a caller rehash a password at login when the defaults change.
pub fn uses_default_params(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let default = Params::default();
    parsed.algorithm == argon2::Algorithm::Argon2id.ident()
        && params.m_cost() == default.m_cost()
        && params.t_cost() == default.t_cost()
        && params.p_cost() == default.p_cost()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_ids_sort_in_the_order_they_were_made_and_never_repeat() {
        let mut ids: Vec<String> = (0..1000).map(|_| new_grant_id(1_764_000_000)).collect();
        ids.push(new_grant_id(1_764_000_001));
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids.iter().all(|id| id.len() == 38));
        // The random part: the same second and sequence never give the same id.
        let again = new_grant_id(1_764_000_000);
        assert_ne!(&again[16..], &ids[0][16..]);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&again[16..]).map(|v| v.len()).ok(),
            Some(16)
        );
    }

    #[test]
    fn new_token_is_43_base64url_chars_and_fresh() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), TOKEN_LEN);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).map(|v| v.len()).ok(), Some(32));
        assert_ne!(a, b);
    }

    #[test]
    fn token_hash_is_sha256() {
        assert_eq!(
            hex::encode(token_hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn secret_matches_only_the_same_secret() {
        let secret = new_token();
        let stored = token_hash(&secret);
        let check = |presented: &str, stored: &[u8], expect: bool| {
            assert_eq!(secret_matches(presented, stored), expect, "{presented:?}");
        };
        check(&secret, &stored, true);
        check(&secret[1..], &stored, false);
        check("", &stored, false);
        check(&secret, &stored[..31], false);
        check(&secret, &[], false);
    }

    #[test]
    fn password_round_trip() {
        let phc = hash_password("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horsE", &phc));
        assert!(!verify_password("", &phc));
        assert!(uses_default_params(&phc));
        // Two hashes of one password differ by their salt.
        assert_ne!(phc, hash_password("correct horse").expect("hash"));
    }

    #[test]
    fn malformed_phc_never_matches() {
        for phc in ["", "plain", "$argon2id$v=19$m=19456,t=2,p=1$", "$md5$abc"] {
            assert!(!verify_password("", phc), "{phc:?}");
            assert!(!uses_default_params(phc), "{phc:?}");
        }
    }

    #[test]
    fn dummy_verify_costs_a_default_verify_and_fails() {
        // Same cost as a real verify only while its parameters are the default ones.
        assert!(uses_default_params(DUMMY_PHC));
        assert!(PasswordHash::new(DUMMY_PHC).is_ok());
        assert!(!dummy_verify(""));
        assert!(!dummy_verify("password"));
    }
}
