//! The proof rules one by one, with proofs signed by `jsonwebtoken` with
//! two fixed P-256 test keys (test material only).

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

pub(crate) const KEY_A: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgdK9A1Gl0BMo2v89j
+JWy6aB9UAzSPsYzCMOZBxnfm9uhRANCAASjp+Td9w8QvTIZxK1eRi0peQYkN2r9
lVP+uO13S5ubxu6GeUZ4HVW8WKPJpRDGiX8Loz9PHkzXB2U25VdYHpzO
-----END PRIVATE KEY-----";
pub(crate) const KEY_B: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgVbNpnYn5yb4l1cbO
aaH/sleM7GyR5YhXy0CGBqSHwvyhRANCAAQanO+O4+t0l1SK4GHf1pkZDmUpUrch
tFyEJutMp/TOSOop+jvPQxIjEqRXy90yeQXiMhq4apndKRBlZekjh8Zq
-----END PRIVATE KEY-----";
const NOW: i64 = 1_800_000_000;
const URL: &str = "https://api.example/items";
const TOKEN: &str = "the-access-token";

fn key(pem: &str) -> (EncodingKey, Jwk) {
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    (key, jwk)
}

pub(crate) fn jkt(pem: &str) -> String {
    key(pem).1.thumbprint(ThumbprintHash::SHA256).unwrap()
}

/// A proof signed with `signer` carrying `jwk_of`'s public key, with claims
/// changed by `change`.
fn proof(signer: &str, jwk_of: &str, typ: &str, change: impl FnOnce(&mut Value)) -> String {
    let (_, jwk) = key(jwk_of);
    let (signing_key, _) = key(signer);
    let header = Header {
        typ: Some(typ.into()),
        jwk: Some(jwk),
        ..Header::new(Algorithm::ES256)
    };
    let mut claims = json!({
        "jti": "j-1", "htm": "GET", "htu": URL, "iat": NOW,
        "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(TOKEN.as_bytes())),
    });
    change(&mut claims);
    jsonwebtoken::encode(&header, &claims, &signing_key).unwrap()
}

fn expected(jkt: &str) -> Expected<'_> {
    Expected {
        method: "GET",
        url: URL,
        access_token: TOKEN,
        jkt,
        now: NOW,
        max_age: 60,
    }
}

fn outcome(proof: &str, jkt: &str) -> Result<(), &'static str> {
    check(proof, &expected(jkt), &SeenProofs::new(100)).map_err(|rejection| match rejection {
        Rejection::InvalidDpopProof { description } => description,
        other => panic!("{other:?}"),
    })
}

#[test]
fn a_proof_of_the_token_key_for_this_request_passes_once() {
    let jkt_a = jkt(KEY_A);
    let good = proof(KEY_A, KEY_A, "dpop+jwt", |_| {});
    let seen = SeenProofs::new(100);
    assert_eq!(check(&good, &expected(&jkt_a), &seen), Ok(()));
    assert!(matches!(
        check(&good, &expected(&jkt_a), &seen),
        Err(Rejection::InvalidDpopProof { description }) if description.contains("used before")
    ));
    // A query on htu is not part of the comparison (RFC 9449 §4.3 item 9).
    let with_query = proof(KEY_A, KEY_A, "dpop+jwt", |c| {
        c["htu"] = json!(format!("{URL}?page=2"))
    });
    assert_eq!(outcome(&with_query, &jkt_a), Ok(()));
}

#[test]
fn every_rule_refuses_its_own_breach() {
    let jkt_a = jkt(KEY_A);
    let refused = |proof: String, jkt: &str, says: &str| {
        let why = outcome(&proof, jkt).unwrap_err();
        assert!(why.contains(says), "{why} does not say {says}");
    };
    refused(proof(KEY_A, KEY_A, "JWT", |_| {}), &jkt_a, "typ");
    refused(
        proof(KEY_A, KEY_A, "dpop+jwt", |c| c["htm"] = json!("POST")),
        &jkt_a,
        "htm",
    );
    refused(
        proof(KEY_A, KEY_A, "dpop+jwt", |c| {
            c["htu"] = json!("https://api.example/other")
        }),
        &jkt_a,
        "htu",
    );
    refused(
        proof(KEY_A, KEY_A, "dpop+jwt", |c| c["iat"] = json!(NOW - 61)),
        &jkt_a,
        "iat",
    );
    refused(
        proof(KEY_A, KEY_A, "dpop+jwt", |c| c["iat"] = json!(NOW + 61)),
        &jkt_a,
        "iat",
    );
    refused(
        proof(KEY_A, KEY_A, "dpop+jwt", |c| c["ath"] = json!("x")),
        &jkt_a,
        "ath",
    );
    refused(
        proof(KEY_A, KEY_A, "dpop+jwt", |c| {
            c.as_object_mut().unwrap().remove("jti");
        }),
        &jkt_a,
        "jti",
    );
    // Signed by one key, carrying another's jwk.
    refused(proof(KEY_B, KEY_A, "dpop+jwt", |_| {}), &jkt_a, "signature");
    // A good proof of another key than the token's.
    refused(
        proof(KEY_B, KEY_B, "dpop+jwt", |_| {}),
        &jkt_a,
        "another key",
    );
    refused("not.a.jws".into(), &jkt_a, "not a JWS");
}

#[test]
fn the_seen_proofs_stay_bounded() {
    let seen = SeenProofs::new(2);
    assert!(seen.first_use("a", "k", NOW + 10, NOW));
    assert!(seen.first_use("b", "k", NOW + 20, NOW));
    assert!(seen.first_use("c", "k", NOW + 30, NOW));
    assert!(!seen.first_use("c", "k", NOW + 30, NOW));
    assert!(seen.seen.lock().unwrap().len() <= 2);
    // Past its end, a jti is forgotten.
    assert!(seen.first_use("b", "k", NOW + 100, NOW + 50));
}

/// A fresh proof of `pem`'s key for `htm` `htu` with `token` at `iat`, for
/// the layer's own tests.
pub(crate) fn proof_for(
    pem: &str,
    htm: &str,
    htu: &str,
    token: &str,
    iat: i64,
    jti: &str,
) -> String {
    proof(pem, pem, "dpop+jwt", |c| {
        c["htm"] = json!(htm);
        c["htu"] = json!(htu);
        c["iat"] = json!(iat);
        c["jti"] = json!(jti);
        c["ath"] = json!(URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())));
    })
}
