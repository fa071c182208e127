//! Proofs signed by a second JOSE implementation's keys: a good one per
//! algorithm, a signature by another key than the `jwk`, a tampered claim,
//! and the nonces' periods.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use jwt_simple::prelude::{ES256KeyPair, Ed25519KeyPair};
use serde_json::{Value, json};

use super::*;

const NOW: i64 = 1_700_000_000;
const TOKEN_ENDPOINT: &str = "https://as.example/token";

/// A client key: how it signs and its public JWK.
struct ClientKey {
    alg: Algorithm,
    key: EncodingKey,
    jwk: Jwk,
}

fn es256() -> ClientKey {
    let pem = ES256KeyPair::generate().to_pem().unwrap();
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    ClientKey {
        alg: Algorithm::ES256,
        key,
        jwk,
    }
}

fn eddsa() -> ClientKey {
    let pem = Ed25519KeyPair::generate().to_pem();
    let key = EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
    let jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA).unwrap();
    ClientKey {
        alg: Algorithm::EdDSA,
        key,
        jwk,
    }
}

impl ClientKey {
    /// A proof signed by this key whose header carries `jwk`.
    fn sign_with_jwk(&self, jwk: &Jwk, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(jwk.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    fn proof(&self, claims: &Value) -> String {
        self.sign_with_jwk(&self.jwk, claims)
    }

    fn thumbprint(&self) -> String {
        let jwk = serde_json::to_value(&self.jwk).unwrap();
        dpop::thumbprint(jwk.as_object().unwrap()).unwrap()
    }
}

fn claims() -> Value {
    json!({ "jti": "j-1", "htm": "POST", "htu": TOKEN_ENDPOINT, "iat": NOW })
}

fn expect() -> Expectations<'static> {
    Expectations {
        method: "POST",
        target_uri: TOKEN_ENDPOINT,
        now: NOW,
        max_age_seconds: 60,
        access_token: None,
    }
}

#[test]
fn a_proof_verifies_with_its_own_key_and_names_its_thumbprint() {
    for key in [es256(), eddsa()] {
        let proof = verify(&key.proof(&claims()), &expect()).unwrap();
        assert_eq!(proof.jkt, key.thumbprint());
        assert_eq!(proof.accepted.jti, "j-1");
    }
}

#[test]
fn a_proof_signed_by_another_key_than_its_jwk_is_refused() {
    let (signer, named) = (es256(), es256());
    let proof = signer.sign_with_jwk(&named.jwk, &claims());
    assert_eq!(verify(&proof, &expect()), Err(Rejection::Signature));
}

#[test]
fn a_tampered_claim_breaks_the_signature() {
    let key = es256();
    let proof = key.proof(&claims());
    let mut parts: Vec<String> = proof.split('.').map(str::to_owned).collect();
    let tampered = json!({ "jti": "j-1", "htm": "POST", "htu": TOKEN_ENDPOINT, "iat": NOW + 1 });
    parts[1] = URL_SAFE_NO_PAD.encode(tampered.to_string());
    assert_eq!(
        verify(&parts.join("."), &expect()),
        Err(Rejection::Signature)
    );
}

#[test]
fn claim_rules_run_after_the_signature() {
    let key = eddsa();
    let stale = json!({ "jti": "j", "htm": "POST", "htu": TOKEN_ENDPOINT, "iat": NOW - 61 });
    assert_eq!(verify(&key.proof(&stale), &expect()), Err(Rejection::Stale));
    let wrong_method = json!({ "jti": "j", "htm": "GET", "htu": TOKEN_ENDPOINT, "iat": NOW });
    assert_eq!(
        verify(&key.proof(&wrong_method), &expect()),
        Err(Rejection::Method)
    );
}

#[test]
fn a_short_rsa_key_is_refused_before_verifying() {
    let header = json!({
        "typ": "dpop+jwt", "alg": "PS256",
        "jwk": { "kty": "RSA", "e": "AQAB", "n": URL_SAFE_NO_PAD.encode([0xffu8; 128]) }
    });
    let proof = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    assert_eq!(verify(&proof, &expect()), Err(Rejection::KeyType("PS256")));
}

#[test]
fn nonces_last_one_to_two_periods_and_depend_on_the_key() {
    let kek = KeyEncryptionKey::from_bytes([7; 32]);
    let start = NOW - NOW.rem_euclid(NONCE_PERIOD_SECONDS);
    let issued = nonce(&kek, start);
    assert_eq!(nonce(&kek, start + NONCE_PERIOD_SECONDS - 1), issued);
    assert!(nonce_is_current(&kek, &issued, start));
    assert!(nonce_is_current(
        &kek,
        &issued,
        start + 2 * NONCE_PERIOD_SECONDS - 1
    ));
    assert!(!nonce_is_current(
        &kek,
        &issued,
        start + 2 * NONCE_PERIOD_SECONDS
    ));
    assert!(!nonce_is_current(&kek, &issued, start - 1));
    let other = KeyEncryptionKey::from_bytes([8; 32]);
    assert!(!nonce_is_current(&other, &issued, start));
    assert_ne!(nonce(&other, start), issued);
}
