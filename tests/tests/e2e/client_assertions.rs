//! JWT client authentication (RFC 7523 §2.2, §3) over the real binary. A
//! client registered with `client add --auth-method private_key_jwt --jwks
//! FILE` and no secret authenticates at /token, /introspect and /revoke with
//! ES256, RS256 and EdDSA assertions signed here with the p256, rsa and
//! ed25519-dalek crates (not the host's jwt-simple); a replay, a wrong
//! `aud`, an expired or too long-lived assertion, `alg: none`, an HMAC keyed
//! with the public key, another client's key and a method other than the
//! registered one are all `invalid_client`. A `client_secret_jwt` client
//! authenticates with HS256, HS384 and HS512 assertions keyed with its
//! secret (signed with jsonwebtoken); a wrong secret, a replay, `alg: none`,
//! a signature and the secret itself are refused. One server for the whole
//! matrix.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use getrandom::SysRng;
use p256::elliptic_curve::Generate;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{
    Server, assert_oauth_error, grantbox, grantbox_with, http, service_client, text, token_request,
};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A compact JWS of `header` and `claims`, signed by `sign`.
fn jws(header: &Value, claims: &Value, sign: &dyn Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

/// HMAC-SHA-256 (RFC 2104) from sha2, so no JOSE crate is involved.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// Signs a JWS signing input.
type SignFn = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// A client's signing key, with its public JWK.
struct Signer {
    alg: &'static str,
    kid: &'static str,
    jwk: Value,
    sign: SignFn,
}

impl Signer {
    fn es256(kid: &'static str) -> Signer {
        let key = p256::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng).unwrap();
        let point = key.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        Signer {
            alg: "ES256",
            kid,
            jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&bytes[1..33]), "y": b64(&bytes[33..65])}),
            sign: Box::new(move |input| {
                use p256::ecdsa::signature::Signer;
                let signature: p256::ecdsa::Signature = key.sign(input);
                signature.to_bytes().to_vec()
            }),
        }
    }

    fn rs256(kid: &'static str) -> Signer {
        let private = rsa::PrivateKey::new(&mut SysRng, 2048).unwrap();
        let public = private.to_public_key();
        let trimmed = |bytes: Box<[u8]>| {
            let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
            b64(&bytes[first..])
        };
        let jwk = json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
            "n": trimmed(public.n().to_be_bytes()),
            "e": trimmed(public.e().to_be_bytes()),
        });
        let key = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(private);
        Signer {
            alg: "RS256",
            kid,
            jwk,
            sign: Box::new(move |input| {
                use rsa::signature::{SignatureEncoding, Signer};
                key.sign(input).to_vec()
            }),
        }
    }

    fn eddsa(kid: &'static str) -> Signer {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        Signer {
            alg: "EdDSA",
            kid,
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(&key.verifying_key().to_bytes())}),
            sign: Box::new(move |input| {
                use ed25519_dalek::Signer;
                key.sign(input).to_bytes().to_vec()
            }),
        }
    }

    fn assertion(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg, "kid": self.kid, "typ": "JWT"});
        jws(&header, claims, &*self.sign)
    }
}

/// RFC 7523 §3 claims of `client_id` for `aud`, valid for a minute.
fn claims(client_id: &str, aud: Value, jti: &str) -> Value {
    let now = now();
    json!({"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60, "jti": jti})
}

/// POSTs `form` plus the assertion to `path`; the status and JSON body.
fn post(server: &Server, path: &str, assertion: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let mut form = form.to_vec();
    form.extend([
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ]);
    let response = http().post(server.url(path)).form(&form).send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn jwks_file(server: &Server, name: &str, keys: &[&Value]) -> String {
    let path = server.dir.path().join(name);
    std::fs::write(&path, json!({ "keys": keys }).to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn jwt_client_assertions_authenticate_once_and_refuse_every_bad_one() {
    let server = Server::start();
    let metadata = server.metadata();
    let issuer = metadata["issuer"].as_str().unwrap().to_owned();
    let token_endpoint = metadata["token_endpoint"].as_str().unwrap().to_owned();
    for endpoint in ["token", "introspection", "revocation"] {
        let methods = &metadata[format!("{endpoint}_endpoint_auth_methods_supported")];
        assert!(
            methods
                .as_array()
                .unwrap()
                .contains(&json!("private_key_jwt")),
            "{metadata}"
        );
        assert_eq!(
            metadata[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")],
            json!(["ES256", "RS256", "EdDSA", "HS256", "HS384", "HS512"]),
            "{metadata}"
        );
    }
    client_secret_jwt_authenticates_once_and_refuses_every_bad_assertion(
        &server,
        &issuer,
        &token_endpoint,
    );

    let signers = [
        Signer::es256("ec"),
        Signer::rs256("rsa"),
        Signer::eddsa("ed"),
    ];
    let stranger = Signer::es256("other-ec");
    let keys: Vec<&Value> = signers.iter().map(|s| &s.jwk).collect();
    let file = jwks_file(&server, "keyed.jwks", &keys);
    let keyed = [
        "keyed",
        "--grant-type",
        "client_credentials",
        "--scope",
        "read",
        "--auth-method",
        "private_key_jwt",
        "--jwks",
        &file,
    ];
    assert_eq!(server.client_add(&keyed), None, "no secret is made");
    let other_file = jwks_file(&server, "other.jwks", &[&stranger.jwk]);
    server.client_add(&[
        "other",
        "--grant-type",
        "client_credentials",
        "--auth-method",
        "private_key_jwt",
        "--jwks",
        &other_file,
    ]);
    let svc_secret = service_client(&server, &["read"]);

    let grant = [("grant_type", "client_credentials"), ("scope", "read")];
    let mut first_assertion = None;
    for signer in &signers {
        let alg = signer.alg;
        let assertion = signer.assertion(&claims(
            "keyed",
            json!(token_endpoint),
            &format!("{alg}-token"),
        ));
        let (status, body) = post(&server, "/token", &assertion, &grant);
        assert_eq!(status, 200, "{alg}: {body}\n{}", server.logs());
        let access_token = body["access_token"].as_str().unwrap().to_owned();
        first_assertion.get_or_insert(assertion);

        // The issuer as aud, at /introspect; a list naming it, at /revoke.
        let introspect = signer.assertion(&claims(
            "keyed",
            json!(issuer),
            &format!("{alg}-introspect"),
        ));
        let (status, body) = post(
            &server,
            "/introspect",
            &introspect,
            &[("token", &access_token)],
        );
        assert_eq!(
            (status, &body["active"]),
            (200, &json!(true)),
            "{alg}: {body}"
        );
        assert_eq!(body["client_id"], "keyed");
        let revoke = signer.assertion(&claims(
            "keyed",
            json!(["https://elsewhere.example", issuer]),
            &format!("{alg}-revoke"),
        ));
        let (status, body) = post(&server, "/revoke", &revoke, &[("token", &access_token)]);
        assert_eq!(status, 200, "{alg}: {body}");
        let again = signer.assertion(&claims(
            "keyed",
            json!(issuer),
            &format!("{alg}-introspect-2"),
        ));
        let (_, body) = post(&server, "/introspect", &again, &[("token", &access_token)]);
        assert_eq!(body["active"], false, "{alg}: revoked");
    }

    let (ec, now) = (&signers[0], now());
    let refused = |what: &str, assertion: &str| {
        let (status, body) = post(&server, "/token", assertion, &grant);
        assert_oauth_error((status, &body), 401, "invalid_client");
        assert_eq!(
            body["error_description"], "client authentication failed",
            "{what}: {body}"
        );
    };
    // A stolen assertion replayed.
    refused("replay", first_assertion.as_deref().unwrap());
    refused(
        "wrong aud",
        &ec.assertion(&claims("keyed", json!("https://rs.example"), "aud")),
    );
    refused(
        "aud of another endpoint",
        &ec.assertion(&claims(
            "keyed",
            json!(format!("{issuer}/introspect")),
            "aud2",
        )),
    );
    let mut expired = claims("keyed", json!(token_endpoint), "expired");
    expired["iat"] = json!(now - 300);
    expired["exp"] = json!(now - 120);
    refused("expired", &ec.assertion(&expired));
    let mut long_lived = claims("keyed", json!(token_endpoint), "long");
    long_lived["exp"] = json!(now + 3600);
    refused("too long-lived", &ec.assertion(&long_lived));
    let mut no_jti = claims("keyed", json!(token_endpoint), "");
    no_jti.as_object_mut().unwrap().remove("jti");
    refused("no jti", &ec.assertion(&no_jti));
    let unsigned = jws(
        &json!({"alg": "none", "typ": "JWT"}),
        &claims("keyed", json!(token_endpoint), "none"),
        &|_| Vec::new(),
    );
    refused("alg none", &unsigned);
    // Algorithm confusion: an HMAC keyed with the registered public key.
    let public_jwk = ec.jwk.to_string();
    let confused = jws(
        &json!({"alg": "HS256", "kid": "ec", "typ": "JWT"}),
        &claims("keyed", json!(token_endpoint), "hs256"),
        &|input| hmac_sha256(public_jwk.as_bytes(), input),
    );
    refused("HMAC with the public key", &confused);
    // Another client's key, whether or not its kid names one of keyed's.
    refused(
        "another client's key",
        &stranger.assertion(&claims("keyed", json!(token_endpoint), "k1")),
    );
    let borrowed_kid = Signer::es256("ec");
    refused(
        "an unregistered key under a registered kid",
        &borrowed_kid.assertion(&claims("keyed", json!(token_endpoint), "k2")),
    );
    // A client nobody registered (verified against dummy keys, refused alike).
    refused(
        "unknown client",
        &ec.assertion(&claims("nobody", json!(token_endpoint), "nobody")),
    );
    // iss must be the client too.
    let mut foreign_issuer = claims("keyed", json!(token_endpoint), "iss");
    foreign_issuer["iss"] = json!("other");
    refused("iss of another client", &ec.assertion(&foreign_issuer));

    // One method per client: keyed with a secret, svc with an assertion.
    let (status, body, _) = token_request(&server, "keyed", "guess", &grant);
    assert_oauth_error((status, &body), 401, "invalid_client");
    let svc_assertion = ec.assertion(&claims("svc", json!(token_endpoint), "svc"));
    let (status, body) = post(&server, "/token", &svc_assertion, &grant);
    assert_oauth_error((status, &body), 401, "invalid_client");
    // A secret client registered for the body may not use Basic.
    let poster = server
        .client_add(&[
            "poster",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
            "--auth-method",
            "client_secret_post",
        ])
        .unwrap();
    let (status, body, _) = token_request(&server, "poster", &poster, &grant);
    assert_oauth_error((status, &body), 401, "invalid_client");
    let mut form = grant.to_vec();
    form.extend([("client_id", "poster"), ("client_secret", poster.as_str())]);
    let response = http()
        .post(server.url("/token"))
        .form(&form)
        .send()
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "client_secret_post as registered"
    );
    // And never two methods in one request (RFC 6749 §2.3).
    let both = ec.assertion(&claims("keyed", json!(token_endpoint), "both"));
    let mut form = grant.to_vec();
    form.extend([("client_secret", svc_secret.as_str())]);
    let (status, body) = post(&server, "/token", &both, &form);
    assert_oauth_error((status, &body), 400, "invalid_request");

    // The reason is in the debug log only; the client was told nothing more.
    let logs = server.logs();
    assert!(logs.contains("client authentication failed"), "{logs}");
    assert!(!logs.contains(&public_jwk), "no key material in the log");

    // Registration refuses private keys and a missing --jwks, naming the file.
    let private = jwks_file(
        &server,
        "private.jwks",
        &[
            &json!({"kty": "EC", "crv": "P-256", "x": ec.jwk["x"], "y": ec.jwk["y"], "d": b64(&[7; 32])}),
        ],
    );
    let output = grantbox(
        &server.db,
        &[
            "client",
            "add",
            "leaky",
            "--auth-method",
            "private_key_jwt",
            "--jwks",
            &private,
        ],
        None,
    );
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("private.jwks") && stderr.contains("private member \"d\""),
        "{stderr}"
    );
    let output = grantbox(
        &server.db,
        &[
            "client",
            "add",
            "keyless",
            "--auth-method",
            "private_key_jwt",
        ],
        None,
    );
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("--jwks"),
        "{}",
        text(&output.stderr)
    );
}

/// An HMAC assertion (RFC 7518 §3.2) keyed with `secret`, from jsonwebtoken.
fn hmac_assertion(alg: jsonwebtoken::Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// `client_secret_jwt` (OpenID Connect Core §9), on the shared server.
fn client_secret_jwt_authenticates_once_and_refuses_every_bad_assertion(
    server: &Server,
    issuer: &str,
    token_endpoint: &str,
) {
    use jsonwebtoken::Algorithm::{HS256, HS384, HS512};
    for endpoint in ["token", "introspection", "revocation"] {
        let methods = &server.metadata()[format!("{endpoint}_endpoint_auth_methods_supported")];
        assert!(
            methods
                .as_array()
                .unwrap()
                .contains(&json!("client_secret_jwt")),
            "{methods}"
        );
    }
    let hmac_client = [
        "hmac",
        "--grant-type",
        "client_credentials",
        "--scope",
        "read",
        "--auth-method",
        "client_secret_jwt",
    ];
    let secret = server
        .client_add(&hmac_client)
        .expect("the generated secret is shown once");
    let grant = [("grant_type", "client_credentials"), ("scope", "read")];
    let mut first_assertion = None;
    for alg in [HS256, HS384, HS512] {
        let assertion = hmac_assertion(
            alg,
            &secret,
            &claims("hmac", json!(token_endpoint), &format!("{alg:?}-token")),
        );
        let (status, body) = post(server, "/token", &assertion, &grant);
        assert_eq!(status, 200, "{alg:?}: {body}\n{}", server.logs());
        let access_token = body["access_token"].as_str().unwrap().to_owned();
        first_assertion.get_or_insert(assertion);
        let introspect = hmac_assertion(
            alg,
            &secret,
            &claims("hmac", json!(issuer), &format!("{alg:?}-introspect")),
        );
        let (status, body) = post(
            server,
            "/introspect",
            &introspect,
            &[("token", &access_token)],
        );
        assert_eq!(
            (status, &body["active"]),
            (200, &json!(true)),
            "{alg:?}: {body}"
        );
        let revoke = hmac_assertion(
            alg,
            &secret,
            &claims("hmac", json!(issuer), &format!("{alg:?}-revoke")),
        );
        let (status, body) = post(server, "/revoke", &revoke, &[("token", &access_token)]);
        assert_eq!(status, 200, "{alg:?}: {body}");
        let again = hmac_assertion(
            alg,
            &secret,
            &claims("hmac", json!(issuer), &format!("{alg:?}-introspect-2")),
        );
        let (_, body) = post(server, "/introspect", &again, &[("token", &access_token)]);
        assert_eq!(body["active"], false, "{alg:?}: revoked");
    }

    let refused = |what: &str, assertion: &str| {
        let (status, body) = post(server, "/token", assertion, &grant);
        assert_oauth_error((status, &body), 401, "invalid_client");
        assert_eq!(
            body["error_description"], "client authentication failed",
            "{what}: {body}"
        );
    };
    refused("replay", first_assertion.as_deref().unwrap());
    let wrong_secret = "a-secret-of-the-same-length-that-is-not-it";
    refused(
        "wrong secret",
        &hmac_assertion(
            HS256,
            wrong_secret,
            &claims("hmac", json!(token_endpoint), "wrong"),
        ),
    );
    refused(
        "wrong aud",
        &hmac_assertion(
            HS256,
            &secret,
            &claims("hmac", json!("https://rs.example"), "aud"),
        ),
    );
    let unsigned = jws(
        &json!({"alg": "none", "typ": "JWT"}),
        &claims("hmac", json!(token_endpoint), "none"),
        &|_| Vec::new(),
    );
    refused("alg none", &unsigned);
    // A signature is private_key_jwt's, even by a key nobody registered.
    let signer = Signer::rs256("rsa");
    refused(
        "RS256 for a client_secret_jwt client",
        &signer.assertion(&claims("hmac", json!(token_endpoint), "rs256")),
    );
    // The secret itself, by Basic or in the body: not the registered method.
    let (status, body, _) = token_request(server, "hmac", &secret, &grant);
    assert_oauth_error((status, &body), 401, "invalid_client");
    let mut form = grant.to_vec();
    form.extend([("client_id", "hmac"), ("client_secret", secret.as_str())]);
    let response = http()
        .post(server.url("/token"))
        .form(&form)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401, "client_secret_post");
    let logs = server.logs();
    assert!(!logs.contains(&secret), "the secret is never logged");

    // An operator's own secret is sealed as well and keys the HMAC.
    let given = "an-operator-chosen-secret-of-more-than-32-characters";
    let mut with_secret = hmac_client.to_vec();
    with_secret[0] = "hmac-given";
    with_secret.extend(["--secret", given]);
    let shown = server.client_add(&with_secret).unwrap_or_default();
    assert!(!shown.contains(given), "not echoed: {shown}");
    let assertion = hmac_assertion(
        HS256,
        given,
        &claims("hmac-given", json!(token_endpoint), "given"),
    );
    let (status, body) = post(server, "/token", &assertion, &grant);
    assert_eq!(status, 200, "{body}");

    // `client add` opens the key-encryption key as `serve` does: a key other
    // than the one the signing keys were sealed under is refused.
    let mut args = vec!["client", "add"];
    args.extend(hmac_client);
    args[2] = "hmac-wrong-key";
    let wrong_key = "b3RoZXIta2V5LWVuY3J5cHRpb24ta2V5LTMyLWJ5dGU";
    let output = grantbox_with(
        &server.db,
        &args,
        None,
        &[("GRANTBOX_KEY_ENCRYPTION_KEY", wrong_key)],
    );
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("GRANTBOX_KEY_ENCRYPTION_KEY is not the one signing key"),
        "{stderr}"
    );
}

/// `client add --auth-method client_secret_jwt` on a SQLite database no
/// server has opened yet creates the key-encryption key file beside it, as
/// `serve` would (mode 0600), and the server then started on it uses that
/// key: the client authenticates. Without the file, once keys are sealed
/// under it, `client add` stops with `serve`'s error.
#[test]
fn client_secret_jwt_registration_opens_the_key_encryption_key_as_serve_does() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let db_path = dir.path().join("fresh.db");
    let db = format!("sqlite://{}", db_path.display());
    let add = |client_id: &str| {
        grantbox_with(
            &db,
            &[
                "client",
                "add",
                client_id,
                "--grant-type",
                "client_credentials",
                "--scope",
                "read",
                "--auth-method",
                "client_secret_jwt",
            ],
            None,
            &[],
        )
    };
    let output = add("first");
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let key_file = dir.path().join("fresh.db.key-encryption-key");
    assert!(
        stderr.contains("created the key-encryption key file"),
        "{stderr}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is its owner's only");
    }
    let secret = text(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("client_secret: ").map(str::to_owned))
        .expect("the secret is shown once");

    let server = Server::start_with(crate::harness::Options {
        db: Some(db.clone()),
        dir: Some(dir.clone()),
        ..Default::default()
    });
    let token_endpoint = server.metadata()["token_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let assertion = hmac_assertion(
        jsonwebtoken::Algorithm::HS256,
        &secret,
        &claims("first", json!(token_endpoint), "first"),
    );
    let grant = [("grant_type", "client_credentials"), ("scope", "read")];
    let (status, body) = post(&server, "/token", &assertion, &grant);
    assert_eq!(status, 200, "{body}\n{}", server.logs());
    drop(server);

    // The signing keys are sealed under the file's key now: without it,
    // `client add` refuses as `serve` does.
    std::fs::remove_file(&key_file).unwrap();
    let output = add("second");
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("no key-encryption key was given") && stderr.contains("is missing"),
        "{stderr}"
    );
}
