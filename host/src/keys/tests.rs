//! Unit tests of the signing keys: what is signed verifies (with
//! jwt-simple's verifier here; the end-to-end tests verify with another
//! library), the JWKS shows public parameters only, rotation times pick the
//! signing key, and sealing refuses a wrong key.

use jwt_simple::algorithms::{
    ECDSAP256PublicKeyLike, ES256PublicKey, Ed25519PublicKey, EdDSAPublicKeyLike, RS256PublicKey,
    RSAPublicKeyLike,
};
use jwt_simple::common::VerificationOptions;
use serde_json::{Map, Value, json};

use super::*;

const NOW: i64 = 1_800_000_000;

fn claims() -> Map<String, Value> {
    json!({"iss": "https://as.example", "sub": "alice", "exp": NOW + 60, "iat": NOW})
        .as_object()
        .unwrap()
        .clone()
}

fn header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Verifies `token` against the JWK published for its `kid`.
fn verify(keys: &Keys, token: &str) -> Result<(), String> {
    let kid = header(token)["kid"].as_str().unwrap().to_string();
    let jwks = keys.jwks(NOW);
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or("kid not in the JWKS")?
        .to_string();
    let options = Some(VerificationOptions {
        time_tolerance: Some(jwt_simple::prelude::Duration::from_days(365 * 10)),
        ..VerificationOptions::default()
    });
    let result = match header(token)["alg"].as_str().unwrap() {
        "ES256" => ES256PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token::<Map<String, Value>>(token, options)
            .map(|_| ()),
        "RS256" => RS256PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token::<Map<String, Value>>(token, options)
            .map(|_| ()),
        "EdDSA" => Ed25519PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token::<Map<String, Value>>(token, options)
            .map(|_| ()),
        other => panic!("alg {other}"),
    };
    result.map_err(|e| e.to_string())
}

#[test]
fn what_each_algorithm_signs_verifies_with_its_published_key() {
    let keys = Keys::ephemeral(Alg::ES256, &Alg::ALL, NOW);
    for alg in Alg::ALL {
        let token = keys.sign_with(alg, "at+jwt", &claims(), NOW).unwrap();
        let header = header(&token);
        assert_eq!(header["alg"], alg.name());
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(
            header["kid"],
            keys.active(alg, NOW).unwrap().info.kid.as_str()
        );
        assert_eq!(
            payload(&token),
            Value::Object(claims()),
            "claims are the caller's, no more"
        );
        verify(&keys, &token).unwrap_or_else(|e| panic!("{alg}: {e}"));
    }
    // The default algorithm.
    let token = keys.sign("JWT", &claims(), NOW).unwrap();
    assert_eq!(header(&token)["alg"], "ES256");
}

#[test]
fn a_tampered_token_or_another_key_does_not_verify() {
    let keys = Keys::ephemeral(Alg::ES256, &[Alg::ES256], NOW);
    let token = keys.sign("JWT", &claims(), NOW).unwrap();
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    let mut altered = claims();
    altered.insert("sub".into(), json!("mallory"));
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&altered).unwrap());
    assert!(verify(&keys, &parts.join(".")).is_err());
    // Signed by another key that claims this one's kid.
    let other = Keys::ephemeral(Alg::ES256, &[Alg::ES256], NOW);
    let forged = other.sign("JWT", &claims(), NOW).unwrap();
    let mut forged_parts: Vec<String> = forged.split('.').map(String::from).collect();
    forged_parts[0] = token.split('.').next().unwrap().to_string();
    assert!(verify(&keys, &forged_parts.join(".")).is_err());
}

#[test]
fn the_jwks_has_public_parameters_only() {
    let keys = Keys::ephemeral(Alg::ES256, &Alg::ALL, NOW);
    let jwks = keys.jwks(NOW);
    let published = jwks["keys"].as_array().unwrap();
    assert_eq!(published.len(), 3);
    let private = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
    for jwk in published {
        for member in ["kid", "kty", "alg", "use"] {
            assert!(jwk[member].is_string(), "{member} missing in {jwk}");
        }
        assert_eq!(jwk["use"], "sig");
        for member in private {
            assert!(jwk.get(member).is_none(), "private {member} in {jwk}");
        }
        match jwk["alg"].as_str().unwrap() {
            "ES256" => {
                assert_eq!(
                    (jwk["kty"].as_str(), jwk["crv"].as_str()),
                    (Some("EC"), Some("P-256"))
                );
                assert!(jwk["x"].is_string() && jwk["y"].is_string());
            }
            "RS256" => {
                assert_eq!(jwk["kty"], "RSA");
                assert!(jwk["n"].as_str().unwrap().len() >= 342, "2048-bit modulus");
                assert_eq!(jwk["e"], "AQAB");
            }
            "EdDSA" => {
                assert_eq!(
                    (jwk["kty"].as_str(), jwk["crv"].as_str()),
                    (Some("OKP"), Some("Ed25519"))
                );
                assert!(jwk["x"].is_string());
            }
            other => panic!("alg {other}"),
        }
    }
}

#[test]
fn a_new_key_is_published_at_once_and_signs_after_its_activation() {
    let keys = Keys::ephemeral(Alg::ES256, &[Alg::ES256], NOW);
    let old = keys.active(Alg::ES256, NOW).unwrap().info.kid.clone();
    let new = SigningKey::generate(Alg::ES256, NOW + 10, NOW + 100);
    let new_kid = new.info.kid.clone();
    keys.insert(new);
    let kids = |now| -> Vec<String> {
        keys.jwks(now)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(kids(NOW + 10).contains(&new_kid));
    let signer = |now| header(&keys.sign("JWT", &claims(), now).unwrap())["kid"].clone();
    assert_eq!(signer(NOW + 99), old.as_str());
    assert_eq!(signer(NOW + 100), new_kid.as_str());
    let infos = keys.infos();
    let active = signing_key(&infos, Alg::ES256, NOW + 100).map(|i| i.kid.as_str());
    let states: Vec<_> = infos
        .iter()
        .map(|i| {
            (
                i.kid.clone(),
                key_state(
                    i,
                    NOW + 50,
                    signing_key(&infos, Alg::ES256, NOW + 50).map(|i| i.kid.as_str()),
                ),
            )
        })
        .collect();
    assert!(states.contains(&(new_kid.clone(), KeyState::Pending)));
    assert!(states.contains(&(old.clone(), KeyState::Active)));
    let old_info = infos.iter().find(|i| i.kid == old).unwrap();
    assert_eq!(key_state(old_info, NOW + 100, active), KeyState::Superseded);
}

#[test]
fn a_retired_key_stops_signing_and_leaves_the_jwks_when_published_until_passes() {
    let mut key = SigningKey::generate(Alg::ES256, NOW, NOW);
    key.info.retired_at = Some(NOW + 10);
    key.info.published_until = Some(NOW + 70);
    let kid = key.info.kid.clone();
    let keys = Keys::new(KeyEncryptionKey::generate(), Alg::ES256, vec![key]);
    assert!(keys.sign("JWT", &claims(), NOW + 9).is_ok());
    assert!(matches!(
        keys.sign("JWT", &claims(), NOW + 10),
        Err(SignError::NoActiveKey(Alg::ES256))
    ));
    assert_eq!(keys.jwks(NOW + 69)["keys"][0]["kid"], kid.as_str());
    assert_eq!(keys.jwks(NOW + 70)["keys"], json!([]));
    let info = &keys.infos()[0];
    assert_eq!(key_state(info, NOW + 10, None), KeyState::Retired);
    assert_eq!(key_state(info, NOW + 70, None), KeyState::Expired);
}

#[test]
fn no_key_of_an_algorithm_is_an_error_naming_it() {
    let keys = Keys::ephemeral(Alg::ES256, &[Alg::ES256], NOW);
    let error = keys
        .sign_with(Alg::RS256, "JWT", &claims(), NOW)
        .unwrap_err();
    assert_eq!(error.to_string(), "no active RS256 signing key");
    assert_eq!(keys.algs(NOW), [Alg::ES256]);
}

#[test]
fn seal_then_open_round_trips_and_a_wrong_key_or_alteration_is_refused() {
    let keys = Keys::ephemeral(Alg::ES256, &[], NOW);
    let sealed = keys.seal(b"client secret");
    assert_ne!(&sealed[13..], b"client secret");
    assert_eq!(keys.open(&sealed).unwrap(), b"client secret");
    // Two seals of one secret differ (a fresh nonce each).
    assert_ne!(keys.seal(b"client secret"), sealed);
    let other = Keys::ephemeral(Alg::ES256, &[], NOW);
    assert_eq!(other.open(&sealed), Err(OpenError::Refused));
    let mut altered = sealed.clone();
    *altered.last_mut().unwrap() ^= 1;
    assert_eq!(keys.open(&altered), Err(OpenError::Refused));
    assert_eq!(keys.open(&sealed[..20]), Err(OpenError::Malformed));
}

#[test]
fn a_sealed_private_key_opens_only_under_its_key_and_its_kid() {
    let kek = KeyEncryptionKey::generate();
    for alg in Alg::ALL {
        let key = SigningKey::generate(alg, NOW, NOW);
        let sealed = key.seal_private(&kek);
        let opened = SigningKey::unseal(key.info.clone(), &sealed, &kek).unwrap();
        assert_eq!(opened.public_jwk, key.public_jwk);
        let wrong = KeyEncryptionKey::generate();
        let error = SigningKey::unseal(key.info.clone(), &sealed, &wrong).unwrap_err();
        assert!(error.contains("does not open"), "{error}");
        // Sealed for another kid: the associated data differs.
        let mut info = key.info.clone();
        info.kid = "another".into();
        assert!(SigningKey::unseal(info, &sealed, &kek).is_err());
    }
}

#[test]
fn the_key_encryption_key_parses_base64url_of_32_bytes_and_never_shows_itself() {
    let kek = KeyEncryptionKey::generate();
    let text = kek.encode();
    assert_eq!(text.len(), 43);
    let parsed = KeyEncryptionKey::parse(&format!("{}=\n", text.as_str())).unwrap();
    assert_eq!(parsed.check_value(), kek.check_value());
    assert_ne!(
        KeyEncryptionKey::generate().check_value(),
        kek.check_value()
    );
    assert_eq!(
        KeyEncryptionKey::parse("c2hvcnQ").unwrap_err(),
        KeyEncryptionKeyError::Length(5)
    );
    assert_eq!(
        KeyEncryptionKey::parse("not base64!").unwrap_err(),
        KeyEncryptionKeyError::Encoding
    );
    assert!(!format!("{kek:?}").contains(text.as_str()));
    let keys = Keys::new(
        kek,
        Alg::ES256,
        vec![SigningKey::generate(Alg::ES256, NOW, NOW)],
    );
    let shown = format!("{keys:?}");
    assert!(
        !shown.contains(text.as_str()) && !shown.contains("\"d\""),
        "{shown}"
    );
}

#[test]
fn algorithm_names_round_trip() {
    for alg in Alg::ALL {
        assert_eq!(alg.name().parse::<Alg>(), Ok(alg));
    }
    assert!("HS256".parse::<Alg>().unwrap_err().contains("HS256"));
}

#[test]
fn at_hash_is_the_left_half_of_the_algorithms_hash() {
    // OIDC Core 1.0 Appendix A.4's access token and its RS256 at_hash.
    let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
    assert_eq!(Alg::RS256.left_half_hash(token), "77QmUPtjPfzWtF2AnpK9RQ");
    assert_eq!(Alg::ES256.left_half_hash(token), "77QmUPtjPfzWtF2AnpK9RQ");
    // Ed25519 hashes with SHA-512: 32 of its 64 bytes.
    assert_eq!(
        Alg::EdDSA.left_half_hash(token),
        "q7nS86GgvvFaZkzALLWqJYaJIKw2wCDAVfCAsm5CrBM"
    );
}
