//! The test host's `signing` capability: the rules the real host applies to
//! what a plugin asks it to sign, and an ES256 signature with a fixed test
//! key whose public half tests get from `TestHost::signing_public_key_pem`.
//! The key is public knowledge: nothing signed here is worth anything.

use jwt_simple::prelude::{ECDSAP256KeyPairLike, ES256KeyPair, HeaderOptions, JWTClaims};

use crate::HostError;

/// The `kid` of the fixed test key, in the header of every JWT it signs.
pub const SIGNING_KEY_ID: &str = "grantbox-test-key";

/// The most bytes of claims the host signs in one call.
const MAX_CLAIMS_BYTES: usize = 16 * 1024;
/// The longest `typ`.
const MAX_TYP_CHARS: usize = 64;

/// The fixed test key: a P-256 private scalar nobody should ever trust.
fn key_pair() -> ES256KeyPair {
    ES256KeyPair::from_bytes(&[0x5a; 32])
        .expect("a fixed scalar below the P-256 order")
        .with_key_id(SIGNING_KEY_ID)
}

pub(super) fn public_key_pem() -> String {
    key_pair()
        .public_key()
        .to_pem()
        .expect("a P-256 public key encodes as PEM")
}

/// Checks `typ` and `claims` as the real host does, sets `iss`, and signs.
pub(super) fn sign(
    typ: &str,
    claims: &str,
    issuer: &str,
    now: u64,
    max_lifetime: u64,
) -> Result<String, HostError> {
    let invalid = |message: String| Err(HostError::InvalidArgument(message));
    if typ.is_empty()
        || typ.len() > MAX_TYP_CHARS
        || !typ
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    {
        return invalid(format!(
            "typ must be a media type name of 1 to {MAX_TYP_CHARS} characters"
        ));
    }
    if claims.len() > MAX_CLAIMS_BYTES {
        return invalid(format!("claims are longer than {MAX_CLAIMS_BYTES} bytes"));
    }
    let Ok(serde_json::Value::Object(mut claims)) = serde_json::from_str(claims) else {
        return invalid("claims are not a JSON object".to_string());
    };
    match claims.get("exp").and_then(serde_json::Value::as_u64) {
        Some(exp) if exp > now && exp <= now + max_lifetime => {}
        _ => {
            return invalid(format!(
                "claims need an integer exp after now and at most {max_lifetime} seconds ahead"
            ));
        }
    }
    claims.insert("iss".to_string(), issuer.into());
    // Every claim as the plugin wrote it: jwt-simple's own fields would turn
    // `aud` into an unordered set.
    let claims = JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        issuer: None,
        subject: None,
        audiences: None,
        jwt_id: None,
        nonce: None,
        custom: claims,
    };
    key_pair()
        .sign_with_options(
            claims,
            &HeaderOptions {
                signature_type: Some(typ.to_string()),
                ..Default::default()
            },
        )
        .map_err(|error| HostError::Unavailable(format!("signing failed: {error}")))
}

/// OIDC Core §3.1.3.6 `at_hash` for an ES256 or RS256 token: the base64url
/// of the left half of the SHA-256 of `token`.
pub(super) fn left_half_sha256(token: &str) -> String {
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    Base64UrlSafeNoPadding::encode_to_string(&digest[..16]).expect("16 bytes encode")
}

/// The claims of a compact JWS, not verified: tests inspect what was signed.
pub(super) fn claims_of(jwt: &str) -> serde_json::Map<String, serde_json::Value> {
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    let payload = jwt.split('.').nth(1).expect("a compact JWS has a payload");
    let bytes = Base64UrlSafeNoPadding::decode_to_vec(payload, None).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("a JSON object payload")
}
