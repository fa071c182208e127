//! Unit tests of the `id_token_hint` check: tokens signed by the host's own
//! keys (every algorithm, expired ones, retired keys still published) pass;
//! foreign keys, `alg: none`, altered tokens, a wrong issuer and access
//! tokens do not.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::*;
use crate::keys::{Alg, KeyInfo, SigningKey};

const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "https://as.example";

fn id_token_claims(exp: i64) -> Map<String, Value> {
    json!({
        "iss": ISSUER,
        "sub": "u-4f2a",
        "aud": "rp-1",
        "azp": "rp-1",
        "exp": exp,
        "iat": exp - 300,
        "auth_time": exp - 400,
        "nonce": "n-0S6_WzA2Mj",
    })
    .as_object()
    .unwrap()
    .clone()
}

fn keys() -> Keys {
    Keys::ephemeral(Alg::ES256, &Alg::ALL, NOW - 1000)
}

#[test]
fn an_id_token_of_each_algorithm_verifies() {
    let keys = keys();
    for alg in Alg::ALL {
        let token = keys
            .sign_with(alg, "JWT", &id_token_claims(NOW + 300), NOW)
            .unwrap();
        let hint = verify_id_token_hint(&keys, ISSUER, &token, NOW).unwrap();
        assert_eq!(hint.sub, "u-4f2a", "{alg}");
        assert_eq!(hint.aud, vec!["rp-1".to_string()]);
        assert_eq!(hint.azp.as_deref(), Some("rp-1"));
        assert_eq!(hint.auth_time, Some(NOW - 100));
        assert_eq!(hint.exp, Some(NOW + 300));
        assert!(hint.issued_to("rp-1"));
        assert!(!hint.issued_to("rp-2"));
    }
}

#[test]
fn an_expired_id_token_is_accepted() {
    let keys = keys();
    let token = keys
        .sign("JWT", &id_token_claims(NOW - 86_400 * 30), NOW)
        .unwrap();
    let hint = verify_id_token_hint(&keys, ISSUER, &token, NOW).unwrap();
    assert_eq!(hint.exp, Some(NOW - 86_400 * 30));
}

#[test]
fn several_audiences_are_kept() {
    let keys = keys();
    let mut claims = id_token_claims(NOW + 300);
    claims.insert("aud".into(), json!(["rp-1", "api"]));
    let token = keys.sign("JWT", &claims, NOW).unwrap();
    let hint = verify_id_token_hint(&keys, ISSUER, &token, NOW).unwrap();
    assert!(hint.issued_to("rp-1") && hint.issued_to("api"));
}

#[test]
fn a_retired_key_still_published_verifies_and_an_expired_one_does_not() {
    let keys = keys();
    let token = keys
        .sign_with(Alg::RS256, "JWT", &id_token_claims(NOW + 300), NOW)
        .unwrap();
    let old = keys.active(Alg::RS256, NOW).unwrap();
    let retired = SigningKey::generate(Alg::RS256, NOW, NOW);
    keys.insert(retired);
    keys.insert(old.with_info(KeyInfo {
        retired_at: Some(NOW),
        published_until: Some(NOW + 3600),
        ..old.info.clone()
    }));
    assert!(verify_id_token_hint(&keys, ISSUER, &token, NOW + 60).is_ok());
    assert!(matches!(
        verify_id_token_hint(&keys, ISSUER, &token, NOW + 3600),
        Err(HintError::Signature(VerifyError::UnknownKey(_)))
    ));
}

#[test]
fn a_foreign_key_is_refused() {
    let keys = keys();
    let foreign = Keys::ephemeral(Alg::ES256, &Alg::ALL, NOW - 1000);
    let token = foreign
        .sign("JWT", &id_token_claims(NOW + 300), NOW)
        .unwrap();
    assert!(matches!(
        verify_id_token_hint(&keys, ISSUER, &token, NOW),
        Err(HintError::Signature(VerifyError::UnknownKey(_)))
    ));
}

/// A foreign signature under the host's `kid`: the kid is known, the
/// signature is not the host's.
#[test]
fn a_foreign_signature_under_our_kid_is_refused() {
    let keys = keys();
    let foreign = Keys::ephemeral(Alg::ES256, &[Alg::ES256], NOW - 1000);
    let ours = keys.sign("JWT", &id_token_claims(NOW + 300), NOW).unwrap();
    let theirs = foreign
        .sign("JWT", &id_token_claims(NOW + 300), NOW)
        .unwrap();
    let header = ours.split('.').next().unwrap();
    let rest: Vec<&str> = theirs.split('.').skip(1).collect();
    let forged = format!("{header}.{}", rest.join("."));
    assert_eq!(
        verify_id_token_hint(&keys, ISSUER, &forged, NOW),
        Err(HintError::Signature(VerifyError::BadSignature))
    );
}

#[test]
fn an_altered_payload_is_refused() {
    let keys = keys();
    let token = keys.sign("JWT", &id_token_claims(NOW + 300), NOW).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = id_token_claims(NOW + 300);
    claims.insert("sub".into(), json!("someone-else"));
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let altered = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_eq!(
        verify_id_token_hint(&keys, ISSUER, &altered, NOW),
        Err(HintError::Signature(VerifyError::BadSignature))
    );
}

#[test]
fn alg_none_is_refused() {
    let keys = keys();
    let kid = keys.active(Alg::ES256, NOW).unwrap().info.kid.clone();
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": kid}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(json!(id_token_claims(NOW + 300)).to_string());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert!(verify_id_token_hint(&keys, ISSUER, &token, NOW).is_err());
    }
}

/// The header names an ES256 key but claims RS256: the key's own
/// algorithm is the only one tried.
#[test]
fn an_algorithm_other_than_the_keys_is_refused() {
    let keys = keys();
    let es_kid = keys.active(Alg::ES256, NOW).unwrap().info.kid.clone();
    let token = keys
        .sign_with(Alg::RS256, "JWT", &id_token_claims(NOW + 300), NOW)
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT", "kid": es_kid}).to_string());
    let swapped = format!("{header}.{}.{}", parts[1], parts[2]);
    assert_eq!(
        verify_id_token_hint(&keys, ISSUER, &swapped, NOW),
        Err(HintError::Signature(VerifyError::WrongAlgorithm(
            "RS256".into()
        )))
    );
}

#[test]
fn a_wrong_issuer_is_refused() {
    let keys = keys();
    let token = keys.sign("JWT", &id_token_claims(NOW + 300), NOW).unwrap();
    assert_eq!(
        verify_id_token_hint(&keys, "https://other.example", &token, NOW),
        Err(HintError::WrongIssuer)
    );
}

#[test]
fn a_jwt_access_token_is_refused() {
    let keys = keys();
    let token = keys
        .sign("at+jwt", &id_token_claims(NOW + 300), NOW)
        .unwrap();
    assert_eq!(
        verify_id_token_hint(&keys, ISSUER, &token, NOW),
        Err(HintError::NotAnIdToken("at+jwt".into()))
    );
}

#[test]
fn not_a_jws_is_refused() {
    let keys = keys();
    for token in ["", "abc", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"] {
        assert!(
            matches!(
                verify_id_token_hint(&keys, ISSUER, token, NOW),
                Err(HintError::Signature(_))
            ),
            "{token:?}"
        );
    }
}

#[test]
fn a_token_without_sub_or_aud_is_refused() {
    let keys = keys();
    for (name, error) in [("sub", "sub"), ("aud", "aud")] {
        let mut claims = id_token_claims(NOW + 300);
        claims.remove(name);
        let token = keys.sign("JWT", &claims, NOW).unwrap();
        assert_eq!(
            verify_id_token_hint(&keys, ISSUER, &token, NOW),
            Err(HintError::Claim(error))
        );
    }
}
