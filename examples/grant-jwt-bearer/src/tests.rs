//! Native tests of the JWT bearer grant against the SDK's test host, with
//! keys generated here and assertions signed here for ES256, RS256 and EdDSA.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use getrandom::SysRng;
use grantbox_sdk::testing::{Capability, TestHost};
use grantbox_sdk::{Client, HostError, OAuthError, TokenResponse};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{Value, json};

use super::{GRANT_TYPE, JwtBearer, replay_key};

const NOW: u64 = 1_700_000_000;
const TOKEN_ENDPOINT: &str = "https://as.example/token";
const CLIENT: &str = "partner";

/// A private key of the test and its public half as the config holds it.
struct TestKey {
    alg: &'static str,
    kid: &'static str,
    signer: Signer,
    public_key_pem: String,
}

enum Signer {
    Es256(p256::ecdsa::SigningKey),
    Rs256(Box<rsa::pkcs1v15::SigningKey<rsa::sha2::Sha256>>),
    EdDsa(ed25519_dalek::SigningKey),
}

fn es256(kid: &'static str) -> TestKey {
    let key = p256::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng).unwrap();
    let public_key_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    TestKey {
        alg: "ES256",
        kid,
        signer: Signer::Es256(key),
        public_key_pem,
    }
}

/// RSA key generation is slow in debug builds: two keys serve every test.
fn rsa_private(index: usize) -> rsa::PrivateKey {
    static KEYS: OnceLock<[rsa::PrivateKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| std::array::from_fn(|_| rsa::PrivateKey::new(&mut SysRng, 2048).unwrap()))
        [index]
        .clone()
}

fn rs256_from(kid: &'static str, index: usize) -> TestKey {
    let private = rsa_private(index);
    let public_key_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    TestKey {
        alg: "RS256",
        kid,
        signer: Signer::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(private))),
        public_key_pem,
    }
}

fn rs256(kid: &'static str) -> TestKey {
    rs256_from(kid, 0)
}

fn eddsa(kid: &'static str) -> TestKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public_key_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    TestKey {
        alg: "EdDSA",
        kid,
        signer: Signer::EdDsa(key),
        public_key_pem,
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestKey {
    /// The key's entry in `[config.clients.<id>] keys`.
    fn config_entry(&self) -> Value {
        json!({ "kid": self.kid, "alg": self.alg, "public_key_pem": self.public_key_pem })
    }

    fn signature(&self, input: &[u8]) -> Vec<u8> {
        match &self.signer {
            Signer::Es256(key) => {
                use p256::ecdsa::signature::Signer as _;
                let signature: p256::ecdsa::Signature = key.sign(input);
                signature.to_bytes().to_vec()
            }
            Signer::Rs256(key) => {
                use rsa::signature::{SignatureEncoding, Signer as _};
                key.sign(input).to_vec()
            }
            Signer::EdDsa(key) => {
                use ed25519_dalek::Signer as _;
                key.sign(input).to_bytes().to_vec()
            }
        }
    }

    /// A compact JWS of `claims` under `header`.
    fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = self.signature(input.as_bytes());
        format!("{input}.{}", b64(&signature))
    }

    /// A compact JWS of `claims` with this key's `alg` and `kid`.
    fn sign(&self, claims: &Value) -> String {
        let header = json!({ "alg": self.alg, "kid": self.kid, "typ": "JWT" });
        self.sign_with_header(&header, claims)
    }
}

/// Claims that pass every check at `NOW`.
fn claims(jti: &str) -> Value {
    json!({
        "iss": CLIENT,
        "sub": "user-42",
        "aud": TOKEN_ENDPOINT,
        "iat": NOW,
        "exp": NOW + 120,
        "jti": jti,
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

/// The host as the manifest configures it, with `client` entry `entry`.
fn host_with_client(entry: Value) -> TestHost {
    TestHost::new()
        .client(
            Client::confidential(CLIENT)
                .with_scopes(&["read", "write"])
                .with_grant_types(&[GRANT_TYPE]),
        )
        .grant_capabilities(&[
            Capability::Tokens,
            Capability::KeyValue,
            Capability::Clock,
            Capability::Config,
        ])
        .config("token_endpoint", TOKEN_ENDPOINT)
        .config_raw("clients", &json!({ CLIENT: entry }).to_string())
        .clock(NOW)
}

fn host(keys: &[&TestKey]) -> TestHost {
    let keys: Vec<Value> = keys.iter().map(|key| key.config_entry()).collect();
    host_with_client(json!({ "keys": keys }))
}

fn exchange(host: &mut TestHost, assertion: &str) -> Result<TokenResponse, OAuthError> {
    let request = host.token_request(GRANT_TYPE, None, &[("assertion", assertion)]);
    host.exchange::<JwtBearer>(request)
}

/// Asserts `invalid_grant` whose description contains `needle` and not the assertion.
fn rejected(host: &mut TestHost, assertion: &str, needle: &str) {
    let issued_before = host.issued_tokens().len();
    let error = exchange(host, assertion).unwrap_err();
    let description = error.error_description.clone().unwrap_or_default();
    assert_eq!(error.error, "invalid_grant", "{description}");
    assert!(
        description.contains(needle),
        "{description:?} lacks {needle:?}"
    );
    for part in assertion.split('.').filter(|part| part.len() > 8) {
        assert!(
            !description.contains(part),
            "the description echoes the assertion"
        );
    }
    assert_eq!(host.issued_tokens().len(), issued_before);
}

#[test]
fn info_provides_only_the_grant_type() {
    let info = TestHost::new().info::<JwtBearer>();
    assert_eq!(info.grant_types, vec![GRANT_TYPE.to_string()]);
    assert!(info.response_types.is_empty());
}

#[test]
fn every_algorithm_gets_a_token_for_the_subject() {
    for key in [es256("ec"), rs256("rsa"), eddsa("ed")] {
        let mut host = host(&[&key]);
        let response = exchange(&mut host, &key.sign(&claims("jti-1")))
            .unwrap_or_else(|e| panic!("{}: {e:?}", key.alg));
        assert_eq!(response.token_type, "Bearer");
        assert_eq!(response.refresh_token, None);
        assert_eq!(
            response.scope,
            Some(vec!["read".to_string(), "write".to_string()])
        );
        let issued = host.issued_tokens();
        assert_eq!(issued.len(), 1, "{}", key.alg);
        assert_eq!(issued[0].token, response.access_token);
        assert_eq!(issued[0].client_id, CLIENT);
        assert_eq!(issued[0].subject.as_deref(), Some("user-42"));
        assert!(host.key_value(&replay_key(CLIENT, "jti-1")).is_some());
    }
}

#[test]
fn a_requested_scope_is_what_is_issued() {
    let key = es256("ec");
    let mut host = host(&[&key]);
    let assertion = key.sign(&claims("jti-1"));
    let request = host.token_request(GRANT_TYPE, Some(&["read"]), &[("assertion", &assertion)]);
    let response = host.exchange::<JwtBearer>(request).unwrap();
    assert_eq!(response.scope, Some(vec!["read".to_string()]));
}

#[test]
fn the_assertion_parameter_is_required() {
    let key = es256("ec");
    let mut host = host(&[&key]);
    let request = host.token_request(GRANT_TYPE, None, &[]);
    let error = host.exchange::<JwtBearer>(request).unwrap_err();
    assert_eq!(error.error, "invalid_request");
}

#[test]
fn a_replayed_jti_is_refused_until_it_expires() {
    let key = eddsa("ed");
    let mut host = host(&[&key]);
    let assertion = key.sign(&claims("once"));
    exchange(&mut host, &assertion).unwrap();

    let error = exchange(&mut host, &assertion).unwrap_err();
    assert_eq!(error.error, "invalid_grant");
    assert_eq!(
        error.error_description.as_deref(),
        Some("assertion replayed")
    );
    // Another assertion with the same jti is a replay too.
    let again = key.sign(&with(claims("once"), "sub", json!("someone-else")));
    let error = exchange(&mut host, &again).unwrap_err();
    assert_eq!(
        error.error_description.as_deref(),
        Some("assertion replayed")
    );
    assert_eq!(host.issued_tokens().len(), 1);

    // The marker lives until exp + skew, when the assertion is expired anyway.
    host.advance(120 + 60 - 1);
    assert!(host.key_value(&replay_key(CLIENT, "once")).is_some());
    host.advance(1);
    assert!(host.key_value(&replay_key(CLIENT, "once")).is_none());
}

#[test]
fn a_rejected_assertion_does_not_burn_its_jti() {
    let key = es256("ec");
    let mut host = host(&[&key]);
    let wrong = key.sign(&with(claims("retry"), "aud", json!("https://elsewhere")));
    rejected(&mut host, &wrong, "aud");
    exchange(&mut host, &key.sign(&claims("retry"))).unwrap();
}

#[test]
fn a_wrong_key_is_refused_for_every_algorithm() {
    for (configured, signer) in [
        (es256("k"), es256("k")),
        (rs256_from("k", 0), rs256_from("k", 1)),
        (eddsa("k"), eddsa("k")),
    ] {
        let mut host = host(&[&configured]);
        rejected(
            &mut host,
            &signer.sign(&claims("jti-1")),
            "signature does not verify",
        );
    }
}

#[test]
fn a_tampered_payload_is_refused() {
    for key in [es256("ec"), rs256("rsa"), eddsa("ed")] {
        let mut host = host(&[&key]);
        let assertion = key.sign(&claims("jti-1"));
        let mut parts: Vec<String> = assertion.split('.').map(str::to_owned).collect();
        let forged = with(claims("jti-1"), "sub", json!("admin"));
        parts[1] = b64(forged.to_string().as_bytes());
        rejected(&mut host, &parts.join("."), "signature does not verify");
    }
}

#[test]
fn alg_none_and_other_algorithms_are_refused() {
    let key = es256("ec");
    let mut host = host(&[&key]);
    let payload = b64(claims("jti-1").to_string().as_bytes());
    let none = format!("{}.{payload}.", b64(br#"{"alg":"none"}"#));
    rejected(&mut host, &none, "alg none");
    let hs256 = format!("{}.{payload}.{}", b64(br#"{"alg":"HS256"}"#), b64(b"mac"));
    rejected(&mut host, &hs256, "not one of ES256, RS256, EdDSA");
    let missing = format!("{}.{payload}.{}", b64(br#"{"typ":"JWT"}"#), b64(b"sig"));
    rejected(&mut host, &missing, "no alg");
}

#[test]
fn the_header_cannot_switch_a_key_to_another_algorithm() {
    let key = eddsa("ed");
    let mut host = host(&[&key]);
    // Signed with an ES256 key but labelled with the EdDSA key's kid.
    let other = es256("ed");
    let header = json!({ "alg": "ES256", "kid": "ed" });
    rejected(
        &mut host,
        &other.sign_with_header(&header, &claims("jti-1")),
        "no ES256 key",
    );
}

#[test]
fn the_kid_selects_the_key() {
    let first = es256("first");
    let second = es256("second");
    let mut host = host(&[&first, &second]);
    exchange(&mut host, &second.sign(&claims("a"))).unwrap();

    // Without a kid every key of the alg is tried.
    let header = json!({ "alg": "ES256" });
    exchange(&mut host, &second.sign_with_header(&header, &claims("b"))).unwrap();

    // A kid naming one key but signed by the other does not verify.
    let header = json!({ "alg": "ES256", "kid": "first" });
    rejected(
        &mut host,
        &second.sign_with_header(&header, &claims("c")),
        "signature does not verify",
    );
    let header = json!({ "alg": "ES256", "kid": "unknown" });
    rejected(
        &mut host,
        &second.sign_with_header(&header, &claims("d")),
        "kid",
    );
}

#[test]
fn an_expired_assertion_is_refused_beyond_the_skew() {
    let key = rs256("rsa");
    let mut host = host(&[&key]);
    let expired = with(claims("old"), "exp", json!(NOW - 60));
    let expired = with(expired, "iat", json!(NOW - 120));
    rejected(&mut host, &key.sign(&expired), "expired");

    // Within the default 60 s of skew it still passes.
    let late = with(claims("late"), "exp", json!(NOW - 59));
    let late = with(late, "iat", json!(NOW - 120));
    exchange(&mut host, &key.sign(&late)).unwrap();
}

#[test]
fn a_not_yet_valid_assertion_is_refused() {
    let key = es256("ec");
    let mut host = host(&[&key]);
    let early = with(claims("nbf"), "nbf", json!(NOW + 61));
    rejected(&mut host, &key.sign(&early), "not valid yet");
    let future = with(claims("iat"), "iat", json!(NOW + 61));
    let future = with(future, "exp", json!(NOW + 200));
    rejected(&mut host, &key.sign(&future), "issued in the future");

    // Within the skew, and as fractional NumericDates, they pass.
    let close = with(claims("close"), "nbf", json!(NOW + 30));
    let close = with(close, "iat", json!(NOW as f64 + 30.5));
    exchange(&mut host, &key.sign(&close)).unwrap();
}

#[test]
fn a_long_lived_assertion_is_refused() {
    let key = es256("ec");
    let mut host = host(&[&key]);
    let long = with(claims("long"), "exp", json!(NOW + 301));
    rejected(&mut host, &key.sign(&long), "longer than 300 seconds");
    // Without iat the lifetime counts from now.
    let long = with(without(claims("long"), "iat"), "exp", json!(NOW + 301));
    rejected(&mut host, &key.sign(&long), "longer than 300 seconds");

    let mut host = host_with_client(json!({ "keys": [key.config_entry()] }))
        .config_raw("max_lifetime_seconds", "600")
        .config_raw("max_skew_seconds", "0");
    exchange(&mut host, &key.sign(&claims("a"))).unwrap();
    let long = with(claims("b"), "exp", json!(NOW + 600));
    exchange(&mut host, &key.sign(&long)).unwrap();
    let expired = with(claims("c"), "exp", json!(NOW));
    rejected(&mut host, &key.sign(&expired), "expired");
}

#[test]
fn a_wrong_audience_is_refused() {
    let key = eddsa("ed");
    let mut host = host(&[&key]);
    let other = with(claims("a"), "aud", json!("https://other.example/token"));
    rejected(&mut host, &key.sign(&other), "aud");
    let several = with(claims("b"), "aud", json!(["https://x", "https://y"]));
    rejected(&mut host, &key.sign(&several), "aud");
    rejected(&mut host, &key.sign(&without(claims("c"), "aud")), "no aud");

    // An array naming the token endpoint passes.
    let array = with(claims("d"), "aud", json!(["https://x", TOKEN_ENDPOINT]));
    exchange(&mut host, &key.sign(&array)).unwrap();
}

#[test]
fn a_wrong_issuer_is_refused() {
    let key = es256("ec");
    let mut host = host(&[&key]);
    let other = with(claims("a"), "iss", json!("someone-else"));
    rejected(&mut host, &key.sign(&other), "iss");

    // A configured issuer replaces the client id.
    let issuer = "https://partner.example";
    let mut host = host_with_client(json!({ "issuer": issuer, "keys": [key.config_entry()] }));
    rejected(&mut host, &key.sign(&claims("b")), "iss");
    let assertion = key.sign(&with(claims("c"), "iss", json!(issuer)));
    exchange(&mut host, &assertion).unwrap();
    assert!(host.key_value(&replay_key(issuer, "c")).is_some());
    assert!(host.key_value("jti:https%3A//partner.example:c").is_some());
}

#[test]
fn required_claims_are_required() {
    let key = es256("ec");
    let mut host = host(&[&key]);
    for claim in ["iss", "sub", "exp", "jti"] {
        rejected(
            &mut host,
            &key.sign(&without(claims("x"), claim)),
            &format!("no {claim} claim"),
        );
    }
    rejected(
        &mut host,
        &key.sign(&with(claims("x"), "sub", json!(""))),
        "sub claim is not",
    );
    rejected(
        &mut host,
        &key.sign(&with(claims("x"), "exp", json!("tomorrow"))),
        "NumericDate",
    );
    let long_jti = "j".repeat(257);
    rejected(&mut host, &key.sign(&claims(&long_jti)), "jti is longer");
}

#[test]
fn malformed_assertions_are_invalid_grant() {
    let key = es256("ec");
    let mut host = host(&[&key]);
    rejected(&mut host, "not-a-jwt", "compact serialization");
    rejected(&mut host, "a.b.c.d.e", "JWE");
    rejected(&mut host, "%%%.e30.e30", "JOSE header");
    let valid = key.sign(&claims("x"));
    let (input, _) = valid.rsplit_once('.').unwrap();
    rejected(&mut host, &format!("{input}.***"), "not base64url");
    // A DER-encoded ECDSA signature is not the JWS form.
    rejected(
        &mut host,
        &format!("{input}.{}", b64(&[0x30; 70])),
        "signature",
    );
    let crit = json!({ "alg": "ES256", "kid": "ec", "crit": ["exp"] });
    rejected(
        &mut host,
        &key.sign_with_header(&crit, &claims("x")),
        "crit",
    );
    rejected(&mut host, &"a".repeat(20_000), "longer than");
}

#[test]
fn a_client_without_configured_keys_is_refused() {
    let key = es256("ec");
    let mut host = host(&[&key]);
    host.set_client(Client::confidential("stranger").with_grant_types(&[GRANT_TYPE]));
    rejected(&mut host, &key.sign(&claims("x")), "no assertion keys");
}

#[test]
fn a_broken_config_is_a_server_error() {
    let key = es256("ec");
    let check = |mut host: TestHost, needle: &str| {
        let error = exchange(&mut host, &key.sign(&claims("x"))).unwrap_err();
        assert_eq!(error.error, "server_error");
        let description = error.error_description.unwrap_or_default();
        assert!(description.contains(needle), "{description}");
    };
    let bad_pem = json!({ "kid": "ec", "alg": "ES256", "public_key_pem": "garbage" });
    check(
        host_with_client(json!({ "keys": [bad_pem] })),
        "P-256 public key",
    );
    let bad_alg = json!({ "kid": "ec", "alg": "HS256", "public_key_pem": key.public_key_pem });
    check(
        host_with_client(json!({ "keys": [bad_alg] })),
        "keys[0].alg",
    );
    check(host_with_client(json!({})), "missing field `keys`");
    let no_endpoint = TestHost::new()
        .client(Client::confidential(CLIENT))
        .grant_capabilities(&[
            Capability::Tokens,
            Capability::KeyValue,
            Capability::Clock,
            Capability::Config,
        ])
        .config_raw(
            "clients",
            &json!({ CLIENT: { "keys": [key.config_entry()] } }).to_string(),
        )
        .clock(NOW);
    check(no_endpoint, "token_endpoint");
    // An RSA key under 2048 bits is refused as configuration.
    let small = rsa::PrivateKey::new(&mut SysRng, 1024).unwrap();
    let small_pem = small
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let small = json!({ "kid": "ec", "alg": "RS256", "public_key_pem": small_pem });
    let mut host = host_with_client(json!({ "keys": [small] }));
    let rsa_key = rs256("ec");
    let error = exchange(&mut host, &rsa_key.sign(&claims("x"))).unwrap_err();
    assert_eq!(error.error, "server_error");
    assert!(error.error_description.unwrap().contains("2048"));
}

#[test]
fn a_failed_issue_releases_the_jti() {
    let key = es256("ec");
    let mut host = host(&[&key]).fail(Capability::Tokens, HostError::Unavailable("db down".into()));
    let assertion = key.sign(&claims("retry"));
    let error = exchange(&mut host, &assertion).unwrap_err();
    assert_eq!(error.error, "temporarily_unavailable");
    assert!(host.key_value(&replay_key(CLIENT, "retry")).is_none());

    host.set_failure(Capability::Tokens, None);
    exchange(&mut host, &assertion).unwrap();
}

#[test]
fn missing_capabilities_are_server_errors() {
    let key = es256("ec");
    let assertion = key.sign(&claims("x"));
    for missing in [Capability::KeyValue, Capability::Clock, Capability::Config] {
        let granted: Vec<Capability> = [
            Capability::Tokens,
            Capability::KeyValue,
            Capability::Clock,
            Capability::Config,
        ]
        .into_iter()
        .filter(|c| *c != missing)
        .collect();
        let mut host = host(&[&key]).grant_capabilities(&granted);
        let error = exchange(&mut host, &assertion).unwrap_err();
        assert_eq!(error.error, "server_error", "{missing:?}");
        assert!(host.issued_tokens().is_empty());
    }
}
