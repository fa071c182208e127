//! The JWT bearer grant (RFC 7523 §2.1) from `examples/grant-jwt-bearer`,
//! built for wasm32-wasip2, installed in a plugin directory with this test's
//! public keys in its `[config]`, and served by the real binary: ES256,
//! RS256 and EdDSA assertions signed here get tokens; a replay does not.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use getrandom::SysRng;
use p256::elliptic_curve::Generate;
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::json;

use crate::harness::{
    Options, Server, assert_oauth_error, confidential_client, install_plugin, introspect_token,
    test_plugin_wasm, token_request,
};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_ENDPOINT: &str = "https://as.test/token";
const CLIENT: &str = "partner";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS of `claims`, signed by `sign` over the signing input.
fn jws(
    alg: &str,
    kid: &str,
    claims: &serde_json::Value,
    sign: impl Fn(&[u8]) -> Vec<u8>,
) -> String {
    let header = json!({ "alg": alg, "kid": kid, "typ": "JWT" });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(jti: &str) -> serde_json::Value {
    let now = now();
    json!({
        "iss": CLIENT,
        "sub": "user-42",
        "aud": TOKEN_ENDPOINT,
        "iat": now,
        "exp": now + 120,
        "jti": jti,
    })
}

fn manifest(keys: &[(&str, &str, &str)]) -> String {
    let mut manifest = r#"[plugin]
name = "{name}"
version = "0.1.0"
description = "JWT bearer grant (RFC 7523)"
interface = "grantbox:plugin@1.0.0"
capabilities = ["tokens", "key-value", "clock", "config"]

[wasm]
file = "{wasm}"
sha256 = "{sha256}"

[provides]
grant_types = ["urn:ietf:params:oauth:grant-type:jwt-bearer"]

[limits]
memory_mib = 16
timeout_ms = 500

[config]
token_endpoint = "https://as.test/token"
max_skew_seconds = 60
max_lifetime_seconds = 300
"#
    .to_owned();
    for (kid, alg, pem) in keys {
        manifest.push_str(&format!(
            "\n[[config.clients.{CLIENT}.keys]]\nkid = \"{kid}\"\nalg = \"{alg}\"\npublic_key_pem = \"\"\"\n{pem}\"\"\"\n"
        ));
    }
    manifest
}

#[test]
fn signed_assertions_get_tokens_once() {
    let wasm = test_plugin_wasm("grant-jwt-bearer");

    let ec = p256::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng).unwrap();
    let ec_pem = ec
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let rsa_private = rsa::PrivateKey::new(&mut SysRng, 2048).unwrap();
    let rsa_pem = rsa_private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let rsa = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(rsa_private);
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    let ed = ed25519_dalek::SigningKey::from_bytes(&seed);
    let ed_pem = ed
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();

    let plugins = tempfile::tempdir().unwrap();
    install_plugin(
        plugins.path(),
        "grant-jwt-bearer",
        &wasm,
        &manifest(&[
            ("ec", "ES256", &ec_pem),
            ("rsa", "RS256", &rsa_pem),
            ("ed", "EdDSA", &ed_pem),
        ]),
    );
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    let secret = confidential_client(&server, CLIENT, &[GRANT_TYPE], &["read", "write"]);

    let es256 = jws("ES256", "ec", &claims("jti-ec"), |input| {
        use p256::ecdsa::signature::Signer;
        let signature: p256::ecdsa::Signature = ec.sign(input);
        signature.to_bytes().to_vec()
    });
    let rs256 = jws("RS256", "rsa", &claims("jti-rsa"), |input| {
        use rsa::signature::{SignatureEncoding, Signer};
        rsa.sign(input).to_vec()
    });
    let eddsa = jws("EdDSA", "ed", &claims("jti-ed"), |input| {
        use ed25519_dalek::Signer;
        ed.sign(input).to_bytes().to_vec()
    });

    for (alg, assertion) in [("ES256", &es256), ("RS256", &rs256), ("EdDSA", &eddsa)] {
        let (status, body, _) = token_request(
            &server,
            CLIENT,
            &secret,
            &[
                ("grant_type", GRANT_TYPE),
                ("assertion", assertion),
                ("scope", "read"),
            ],
        );
        assert_eq!(status, 200, "{alg}: {body}\n{}", server.logs());
        assert_eq!(body["token_type"], "Bearer", "{body}");
        assert_eq!(body["scope"], "read", "{body}");
        assert!(body.get("refresh_token").is_none(), "{body}");

        // The token is for the assertion's subject.
        let access_token = body["access_token"].as_str().unwrap();
        let introspection = introspect_token(&server, CLIENT, &secret, access_token);
        assert_eq!(introspection["active"], true, "{introspection}");
        assert_eq!(introspection["sub"], "user-42", "{introspection}");
        assert_eq!(introspection["client_id"], CLIENT, "{introspection}");
    }

    // RFC 7523 §3 item 7: the same assertion again is a replay.
    let (status, body, _) = token_request(
        &server,
        CLIENT,
        &secret,
        &[("grant_type", GRANT_TYPE), ("assertion", &es256)],
    );
    assert_oauth_error((status, &body), 400, "invalid_grant");
    assert_eq!(body["error_description"], "assertion replayed", "{body}");

    // A forged payload under a valid signature does not verify, and the
    // description does not repeat the assertion.
    let mut parts: Vec<&str> = eddsa.split('.').collect();
    let mut forged_claims = claims("jti-forged");
    forged_claims["sub"] = json!("admin");
    let forged_payload = b64(forged_claims.to_string().as_bytes());
    parts[1] = &forged_payload;
    let (status, body, _) = token_request(
        &server,
        CLIENT,
        &secret,
        &[("grant_type", GRANT_TYPE), ("assertion", &parts.join("."))],
    );
    assert_oauth_error((status, &body), 400, "invalid_grant");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains("signature"), "{body}");
    assert!(!description.contains(&forged_payload), "{body}");

    // An unsigned assertion is refused.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims("jti-none").to_string().as_bytes())
    );
    let (status, body, _) = token_request(
        &server,
        CLIENT,
        &secret,
        &[("grant_type", GRANT_TYPE), ("assertion", &none)],
    );
    assert_oauth_error((status, &body), 400, "invalid_grant");
}
