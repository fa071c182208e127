//! Unit tests of JWK Set registration and assertion verification, with keys
//! made by jwt-simple in-process (the end-to-end tests sign with other crates).

use jwt_simple::prelude::*;
use serde_json::json;

use super::*;

const NOW: i64 = 1_700_000_000;
const TOKEN_ENDPOINT: &str = "https://as.example/token";

fn expect() -> Expectations<'static> {
    Expectations {
        client_id: "c1",
        audiences: &[TOKEN_ENDPOINT],
        audience_string_only: false,
        now: NOW,
    }
}

fn claims(jti: &str) -> JWTClaims<NoCustomClaims> {
    let mut claims = Claims::create(Duration::from_secs(60))
        .with_issuer("c1")
        .with_subject("c1")
        .with_audience(TOKEN_ENDPOINT)
        .with_jwt_id(jti);
    claims.issued_at = Some(Duration::from_secs(NOW as u64));
    claims.invalid_before = None;
    claims.expires_at = Some(Duration::from_secs(NOW as u64 + 60));
    claims
}

fn jwks(keys: &[String]) -> String {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| serde_json::from_str(k).unwrap())
        .collect();
    json!({ "keys": keys }).to_string()
}

#[test]
fn a_registered_key_verifies_its_assertions_and_no_other() {
    let es = ES256KeyPair::generate().with_key_id("es");
    let ed = Ed25519KeyPair::generate().with_key_id("ed");
    let stranger = ES256KeyPair::generate().with_key_id("es");
    let registered = parse_jwks(&jwks(&[es.public_key().to_jwk(), ed.public_key().to_jwk()]))
        .expect("valid set");
    let check = |token: &str| verify(&registered, token, &expect());

    let accepted = check(&es.sign(claims("j1")).unwrap()).expect("ES256");
    assert_eq!(accepted.jti, "j1");
    assert!(check(&ed.sign(claims("j2")).unwrap()).is_ok(), "EdDSA");
    assert_eq!(
        check(&stranger.sign(claims("j3")).unwrap()),
        Err(AssertionError::Signature { alg: "ES256" })
    );
    let unknown_kid = ES256KeyPair::generate().with_key_id("other");
    assert_eq!(
        check(&unknown_kid.sign(claims("j4")).unwrap()),
        Err(AssertionError::NoKey {
            alg: "ES256",
            kid: Some("other".into())
        })
    );
    // Algorithm confusion: HMAC keyed with the public key's bytes.
    let public_bytes = es.public_key().to_bytes();
    let confused = HS256Key::from_bytes(&public_bytes)
        .authenticate(claims("j5"))
        .unwrap();
    assert_eq!(
        check(&confused),
        Err(AssertionError::MethodAlg {
            alg: "HS256",
            method: "private_key_jwt"
        })
    );
    // A verified signature does not excuse the claims.
    let mut late = claims("j6");
    late.expires_at = Some(Duration::from_secs(NOW as u64 + 3600));
    assert_eq!(
        check(&es.sign(late).unwrap()),
        Err(AssertionError::Rule(Rejection::TooLongLived))
    );
}

#[test]
fn the_client_secret_keys_hmac_assertions_and_nothing_else() {
    let secret = b"a-client-secret-of-forty-three-characters!!";
    let check = |token: &str| verify_hmac(secret, token, &expect());
    let accepted = check(
        &HS256Key::from_bytes(secret)
            .authenticate(claims("j1"))
            .unwrap(),
    )
    .expect("HS256");
    assert_eq!(accepted.jti, "j1");
    assert!(
        check(
            &HS384Key::from_bytes(secret)
                .authenticate(claims("j2"))
                .unwrap()
        )
        .is_ok()
    );
    assert!(
        check(
            &HS512Key::from_bytes(secret)
                .authenticate(claims("j3"))
                .unwrap()
        )
        .is_ok()
    );
    let other = HS256Key::from_bytes(b"another-secret-of-forty-three-characters!!!");
    assert_eq!(
        check(&other.authenticate(claims("j4")).unwrap()),
        Err(AssertionError::Signature { alg: "HS256" })
    );
    // A signature, even a valid one, is not this method's.
    let es = ES256KeyPair::generate();
    assert_eq!(
        check(&es.sign(claims("j5")).unwrap()),
        Err(AssertionError::MethodAlg {
            alg: "ES256",
            method: "client_secret_jwt"
        })
    );
    // The claims still rule.
    let mut late = claims("j6");
    late.expires_at = Some(Duration::from_secs(NOW as u64 + 3600));
    assert_eq!(
        check(&HS256Key::from_bytes(secret).authenticate(late).unwrap()),
        Err(AssertionError::Rule(Rejection::TooLongLived))
    );
}

#[test]
fn an_unknown_client_s_assertion_is_verified_against_dummy_keys() {
    let check = |token: &str| verify_for_unknown_client(token, &expect());
    // The dummy HMAC key verifies what it keyed: the MAC was computed.
    let dummy = HS256Key::from_bytes(DUMMY_SECRET.as_bytes());
    assert_eq!(
        check(&dummy.authenticate(claims("j1")).unwrap()).map(|a| a.jti),
        Ok("j1".to_owned())
    );
    let other = HS512Key::from_bytes(b"another-secret-of-forty-three-characters!!!");
    assert_eq!(
        check(&other.authenticate(claims("j2")).unwrap()),
        Err(AssertionError::Signature { alg: "HS512" })
    );
    // A signature of each algorithm reaches the dummy key of its algorithm,
    // whatever kid it names (not "no key", which would cost nothing).
    let es = ES256KeyPair::generate().with_key_id("some-kid");
    assert_eq!(
        check(&es.sign(claims("j3")).unwrap()),
        Err(AssertionError::Signature { alg: "ES256" })
    );
    let ed = Ed25519KeyPair::generate();
    assert_eq!(
        check(&ed.sign(claims("j4")).unwrap()),
        Err(AssertionError::Signature { alg: "EdDSA" })
    );
    // The dummy set holds one parsed key per asymmetric algorithm.
    let keys = registered_keys(DUMMY_JWKS).expect("the dummy keys parse");
    let algs: Vec<Alg> = keys.iter().map(|key| key.alg).collect();
    assert_eq!(algs, [Alg::Es256, Alg::Rs256, Alg::EdDsa]);
}

#[test]
fn jwks_registration_rules() {
    let es: Value = serde_json::from_str(&ES256KeyPair::generate().public_key().to_jwk()).unwrap();
    let es_private: Value = serde_json::from_str(&ES256KeyPair::generate().to_jwk()).unwrap();
    let with = |changes: Value| {
        let mut key = es.clone();
        for (name, value) in changes.as_object().unwrap() {
            key[name] = value.clone();
        }
        key
    };
    // A 1024-bit modulus (its value is irrelevant: the size is checked first).
    let weak_rsa = json!({"kty": "RSA", "n": b64url(&[0xc5; 128]), "e": "AQAB"});
    let rows: Vec<(Value, Result<(), JwksError>)> = vec![
        (json!({"keys": [es.clone()]}), Ok(())),
        (
            json!({"keys": [with(json!({"alg": "ES256", "use": "sig", "kid": "k"}))]}),
            Ok(()),
        ),
        (json!({"keys": []}), Err(JwksError::Shape)),
        (json!([es.clone()]), Err(JwksError::Shape)),
        (json!({"keys": [es.clone(), 1]}), Err(JwksError::Shape)),
        (
            json!({"keys": vec![es.clone(); MAX_KEYS + 1]}),
            Err(JwksError::Shape),
        ),
        (
            json!({"keys": [es_private]}),
            Err(JwksError::PrivateMember {
                index: 0,
                member: "d".into(),
            }),
        ),
        (
            json!({"keys": [es.clone(), {"kty": "oct", "k": "c2VjcmV0"}]}),
            Err(JwksError::PrivateMember {
                index: 1,
                member: "k".into(),
            }),
        ),
        (
            json!({"keys": [with(json!({"crv": "P-384"}))]}),
            Err(JwksError::KeyType {
                index: 0,
                kty: "EC".into(),
                crv: Some("P-384".into()),
            }),
        ),
        (
            json!({"keys": [with(json!({"alg": "HS256"}))]}),
            Err(JwksError::Alg {
                index: 0,
                alg: "\"HS256\"".into(),
                expected: "ES256",
            }),
        ),
        (
            json!({"keys": [with(json!({"use": "enc"}))]}),
            Err(JwksError::Use {
                index: 0,
                key_use: "\"enc\"".into(),
            }),
        ),
        (
            json!({"keys": [with(json!({"x": "AAAA"}))]}),
            Err(JwksError::Invalid {
                index: 0,
                alg: "ES256",
            }),
        ),
        (
            json!({"keys": [with(json!({"kid": "k"})), with(json!({"kid": "k"}))]}),
            Err(JwksError::DuplicateKid {
                index: 1,
                kid: "k".into(),
            }),
        ),
        (
            json!({"keys": [weak_rsa]}),
            Err(JwksError::WeakRsa {
                index: 0,
                bits: 1024,
            }),
        ),
    ];
    for (set, expect) in rows {
        assert_eq!(parse_jwks(&set.to_string()).map(|_| ()), expect, "{set}");
    }
    assert_eq!(parse_jwks("not json"), Err(JwksError::Shape));
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
