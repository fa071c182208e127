//! DPoP (RFC 9449) over the real binary, on the backend
//! `GRANTBOX_E2E_BACKEND` names, against one shared server: a client whose
//! proofs are signed with `jsonwebtoken` (EC P-256 keys made here with the
//! p256 crate) gets `token_type: DPoP` tokens bound to its key's thumbprint
//! (introspection's `cnf.jkt`, a JWT access token's `cnf.jkt`) by client
//! credentials and by the code flow with PKCE and `dpop_jkt`; a public
//! client's refresh token works only with its key, a confidential client's
//! with any; a replayed proof, a wrong `htm` or `htu`, a stale `iat`, a
//! proof signed by another key than its `jwk`, a code redeemed with another
//! key than `dpop_jkt`, a `--require-dpop` client without a proof, and a
//! DPoP-bound token used as a bearer token at `/userinfo` are refused.
//! Server nonces (`[dpop] require_nonce`) in process.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use getrandom::SysRng;
use grantbox::config::{RawConfig, RawDpop};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::Generate;
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{
    Browser, Call, InProcess, PASSWORD, Server, allow, assert_oauth_error, grantbox, http,
    introspect_token, redirect_params, text, visit_as_alice,
};

const CALLBACK: &str = "http://127.0.0.1:9/cb";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A client's DPoP key: an EC P-256 key pair, its public JWK and thumbprint
/// (`fapi.rs` signs its client assertions with one too).
pub(crate) struct DpopKey {
    key: EncodingKey,
    jwk: Jwk,
}

impl DpopKey {
    pub(crate) fn generate() -> DpopKey {
        let secret = p256::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng).unwrap();
        let der = secret.to_pkcs8_der().unwrap();
        let key = EncodingKey::from_ec_der(der.as_bytes());
        let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        DpopKey { key, jwk }
    }

    /// RFC 7638, as jsonwebtoken computes it.
    pub(crate) fn jkt(&self) -> String {
        self.jwk.thumbprint(ThumbprintHash::SHA256).unwrap()
    }

    /// The public key as a JWK.
    pub(crate) fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// `claims` signed by this key (ES256) under `header`.
    pub(crate) fn encode(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.key).unwrap()
    }

    /// A proof of a request: its claims, signed by this key, with `jwk` in the header.
    fn sign(&self, jwk: &Jwk, claims: &Value) -> String {
        let header = Header {
            typ: Some("dpop+jwt".into()),
            jwk: Some(jwk.clone()),
            ..Header::new(Algorithm::ES256)
        };
        self.encode(&header, claims)
    }

    /// A fresh proof for `htm` `htu`, with `ath` of `access_token` when given.
    pub(crate) fn proof(&self, htm: &str, htu: &str, access_token: Option<&str>) -> String {
        self.sign(&self.jwk, &claims(htm, htu, access_token))
    }
}

/// Fresh proof claims: a random `jti`, `iat` now.
fn claims(htm: &str, htu: &str, access_token: Option<&str>) -> Value {
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti).unwrap();
    let mut claims = json!({
        "jti": URL_SAFE_NO_PAD.encode(jti), "htm": htm, "htu": htu, "iat": now()
    });
    if let Some(token) = access_token {
        claims["ath"] = URL_SAFE_NO_PAD
            .encode(Sha256::digest(token.as_bytes()))
            .into();
    }
    claims
}

/// The module's shared server and its clients' secrets.
struct World {
    server: Server,
    /// `svc`: client credentials, opaque tokens; also introspects its own.
    svc: String,
    /// `svcjwt`: client credentials, RFC 9068 JWT access tokens.
    svcjwt: String,
    /// `strict`: client credentials, registered `--require-dpop`.
    strict: String,
    /// `web`: a confidential code-flow client with refresh tokens.
    web: String,
    /// `rs`: a resource server that introspects every client's tokens.
    rs: String,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let server = Server::start();
        let output = grantbox(
            &server.db,
            &["user", "add", "alice", "--password-stdin"],
            Some(PASSWORD),
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
        let service = |id: &str, extra: &[&str]| {
            let mut args = vec![id, "--grant-type", "client_credentials", "--scope", "read"];
            args.extend_from_slice(extra);
            server.client_add(&args).expect("a secret")
        };
        let svc = service("svc", &[]);
        let svcjwt = service(
            "svcjwt",
            &[
                "--access-token-format",
                "jwt",
                "--resource",
                "https://api.example",
            ],
        );
        let strict = service("strict", &["--require-dpop"]);
        server.client_add(&[
            "strictspa",
            "--public",
            "--redirect-uri",
            CALLBACK,
            "--grant-type",
            "implicit",
            "--scope",
            "read",
            "--require-dpop",
        ]);
        let code_flow = [
            "--redirect-uri",
            CALLBACK,
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--scope",
            "openid",
            "--scope",
            "read",
        ];
        let mut web_args = vec!["web"];
        web_args.extend_from_slice(&code_flow);
        let web = server.client_add(&web_args).expect("a secret");
        let mut spa_args = vec!["spa", "--public"];
        spa_args.extend_from_slice(&code_flow);
        assert_eq!(server.client_add(&spa_args), None, "a public client");
        let rs = server
            .client_add(&[
                "rs",
                "--introspection",
                "--grant-type",
                "client_credentials",
            ])
            .expect("a secret");
        World {
            server,
            svc,
            svcjwt,
            strict,
            web,
            rs,
        }
    })
}

/// A token request with the given `DPoP` headers (none, one or several),
/// authenticated by Basic when a secret is given; status, body, headers.
fn token_request(
    client_id: &str,
    secret: Option<&str>,
    proofs: &[&str],
    form: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let server = &world().server;
    let mut request = http().post(server.url("/token"));
    request = match secret {
        Some(secret) => request.basic_auth(client_id, Some(secret)),
        None => request,
    };
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    let mut form = form.to_vec();
    if secret.is_none() {
        form.push(("client_id", client_id));
    }
    let response = request
        .form(&form)
        .send()
        .expect("the token endpoint answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.json().unwrap_or(Value::Null), headers)
}

fn token_endpoint() -> String {
    world().server.url("/token")
}

/// A client-credentials request of `client_id` with `proofs`.
fn client_credentials(client_id: &str, secret: &str, proofs: &[&str]) -> (u16, Value) {
    let form = [("grant_type", "client_credentials"), ("scope", "read")];
    let (status, body, _) = token_request(client_id, Some(secret), proofs, &form);
    (status, body)
}

#[test]
fn client_credentials_with_a_proof_get_a_token_bound_to_the_key() {
    let world = world();
    let key = DpopKey::generate();
    let proof = key.proof("POST", &token_endpoint(), None);
    let (status, body) = client_credentials("svc", &world.svc, &[&proof]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    let introspection = introspect_token(&world.server, "rs", &world.rs, token);
    assert_eq!(introspection["active"], true);
    assert_eq!(introspection["token_type"], "DPoP");
    assert_eq!(introspection["cnf"]["jkt"], key.jkt());
    // Without a proof, the same client gets a bearer token as before.
    let (status, body) = client_credentials("svc", &world.svc, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let bearer = body["access_token"].as_str().unwrap();
    let introspection = introspect_token(&world.server, "rs", &world.rs, bearer);
    assert_eq!(introspection["token_type"], "Bearer");
    assert!(introspection.get("cnf").is_none(), "{introspection}");
    // The metadata names the algorithms of the proofs verified.
    assert_eq!(
        world.server.metadata()["dpop_signing_alg_values_supported"],
        json!(["ES256", "RS256", "PS256", "EdDSA"])
    );
}

#[test]
fn a_jwt_access_token_carries_the_keys_thumbprint() {
    let world = world();
    let key = DpopKey::generate();
    let proof = key.proof("POST", &token_endpoint(), None);
    let (status, body) = client_credentials("svcjwt", &world.svcjwt, &[&proof]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["cnf"], json!({ "jkt": key.jkt() }));
}

#[test]
fn proofs_that_do_not_fit_the_request_are_refused() {
    let world = world();
    let key = DpopKey::generate();
    let endpoint = token_endpoint();
    let refused = |proofs: &[&str], why: &str| {
        let (status, body) = client_credentials("svc", &world.svc, proofs);
        assert_oauth_error((status, &body), 400, "invalid_dpop_proof");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains(why)),
            "{why}: {body}"
        );
    };
    // Replayed: the same proof twice.
    let once = key.proof("POST", &endpoint, None);
    assert_eq!(client_credentials("svc", &world.svc, &[&once]).0, 200);
    refused(&[&once], "used before");
    // Another method, another URI.
    refused(&[&key.proof("GET", &endpoint, None)], "htm");
    let introspect = world.server.url("/introspect");
    refused(&[&key.proof("POST", &introspect, None)], "htu");
    // The query of the URI does not matter.
    let with_query = key.proof("POST", &format!("{endpoint}?x=1"), None);
    assert_eq!(client_credentials("svc", &world.svc, &[&with_query]).0, 200);
    // Issued two minutes ago, or two minutes ahead: outside the 60 s window.
    let mut stale = claims("POST", &endpoint, None);
    stale["iat"] = (now() - 120).into();
    refused(&[&key.sign(&key.jwk, &stale)], "too long ago");
    let mut early = claims("POST", &endpoint, None);
    early["iat"] = (now() + 120).into();
    refused(&[&key.sign(&key.jwk, &early)], "future");
    // Signed by another key than the one it names.
    let other = DpopKey::generate();
    let forged = other.sign(&key.jwk, &claims("POST", &endpoint, None));
    refused(&[&forged], "signature");
    // Two DPoP headers.
    let (a, b) = (
        key.proof("POST", &endpoint, None),
        key.proof("POST", &endpoint, None),
    );
    refused(&[&a, &b], "at most one");
    // Not a proof at all.
    refused(&["not.a.proof"], "");
}

#[test]
fn a_client_that_requires_dpop_gets_no_bearer_token() {
    let world = world();
    let (status, body) = client_credentials("strict", &world.strict, &[]);
    assert_oauth_error((status, &body), 400, "invalid_dpop_proof");
    assert!(body.get("access_token").is_none());
    let key = DpopKey::generate();
    let proof = key.proof("POST", &token_endpoint(), None);
    let (status, body) = client_credentials("strict", &world.strict, &[&proof]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
}

#[test]
fn a_client_that_requires_dpop_gets_no_token_from_the_authorization_endpoint() {
    let server = &world().server;
    let url = server.url(&format!(
        "/authorize?response_type=token&client_id=strictspa&redirect_uri={CALLBACK}&state=s1"
    ));
    let response = http().get(url).send().unwrap();
    let location = crate::harness::location(response.headers());
    assert!(location.starts_with(CALLBACK), "{location}");
    let params = redirect_params(&location, true);
    assert_eq!(params["error"], "unauthorized_client", "{location}");
    assert!(!params.contains_key("access_token"));
}

/// PKCE S256 (RFC 7636): a verifier and its challenge.
fn pkce() -> (String, String) {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Alice approves `client_id`'s authorization request for `scope` (with
/// `dpop_jkt` when given); the code and the PKCE verifier. A refresh token
/// comes only without `openid` (or with `offline_access`, OIDC Core §11).
fn approved_code(client_id: &str, scope: &str, dpop_jkt: Option<&str>) -> (String, String) {
    let server = &world().server;
    let (verifier, challenge) = pkce();
    let mut url = format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={CALLBACK}\
         &scope={}&state=s&code_challenge={challenge}&code_challenge_method=S256",
        server.base,
        scope.replace(' ', "%20"),
    );
    if let Some(jkt) = dpop_jkt {
        url.push_str(&format!("&dpop_jkt={jkt}"));
    }
    let browser = Browser::new();
    let page = visit_as_alice(&browser, server, &url);
    // Consent is remembered after the first time: then the redirect comes at once.
    let done = if page.status == 200 {
        allow(&browser, server, &page)
    } else {
        page
    };
    assert!(done.location().starts_with(CALLBACK), "{}", done.body);
    let params = redirect_params(&done.location(), false);
    (params["code"].clone(), verifier)
}

/// Redeems `code` as `client_id` with `proofs`.
fn redeem(
    client_id: &str,
    secret: Option<&str>,
    code: &str,
    verifier: &str,
    proofs: &[&str],
) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier),
    ];
    let (status, body, _) = token_request(client_id, secret, proofs, &form);
    (status, body)
}

/// Refreshes as `client_id` with `proofs`.
fn refresh(
    client_id: &str,
    secret: Option<&str>,
    refresh_token: &str,
    proofs: &[&str],
) -> (u16, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let (status, body, _) = token_request(client_id, secret, proofs, &form);
    (status, body)
}

#[test]
fn a_public_clients_code_and_refresh_token_are_bound_to_its_key() {
    let world = world();
    let key = DpopKey::generate();
    let endpoint = token_endpoint();
    let (code, verifier) = approved_code("spa", "read", Some(&key.jkt()));
    let (status, body) = redeem(
        "spa",
        None,
        &code,
        &verifier,
        &[&key.proof("POST", &endpoint, None)],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let access = body["access_token"].as_str().unwrap();
    let introspection = introspect_token(&world.server, "rs", &world.rs, access);
    assert_eq!(introspection["cnf"]["jkt"], key.jkt());
    let refresh_token = body["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();

    // Another key, or none, cannot use the refresh token; it stays usable.
    let thief = DpopKey::generate();
    let (status, body) = refresh(
        "spa",
        None,
        &refresh_token,
        &[&thief.proof("POST", &endpoint, None)],
    );
    assert_oauth_error((status, &body), 400, "invalid_grant");
    let (status, body) = refresh("spa", None, &refresh_token, &[]);
    assert_oauth_error((status, &body), 400, "invalid_grant");
    let (status, body) = refresh(
        "spa",
        None,
        &refresh_token,
        &[&key.proof("POST", &endpoint, None)],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let access = body["access_token"].as_str().unwrap();
    let introspection = introspect_token(&world.server, "rs", &world.rs, access);
    assert_eq!(introspection["cnf"]["jkt"], key.jkt());
    // The rotated refresh token is bound as well.
    let rotated = body["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(
        "spa",
        None,
        rotated,
        &[&thief.proof("POST", &endpoint, None)],
    );
    assert_oauth_error((status, &body), 400, "invalid_grant");
}

#[test]
fn a_code_bound_by_dpop_jkt_is_redeemed_only_with_that_key() {
    let key = DpopKey::generate();
    let endpoint = token_endpoint();
    let (code, verifier) = approved_code("spa", "read", Some(&key.jkt()));
    let other = DpopKey::generate();
    let (status, body) = redeem(
        "spa",
        None,
        &code,
        &verifier,
        &[&other.proof("POST", &endpoint, None)],
    );
    assert_oauth_error((status, &body), 400, "invalid_dpop_proof");
    let (code, verifier) = approved_code("spa", "read", Some(&key.jkt()));
    let (status, body) = redeem("spa", None, &code, &verifier, &[]);
    assert_oauth_error((status, &body), 400, "invalid_dpop_proof");
}

#[test]
fn a_confidential_clients_refresh_token_binds_each_new_token_to_the_new_key() {
    let world = world();
    let endpoint = token_endpoint();
    let first = DpopKey::generate();
    let (code, verifier) = approved_code("web", "read", None);
    let proof = first.proof("POST", &endpoint, None);
    let (status, body) = redeem("web", Some(&world.web), &code, &verifier, &[&proof]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let refresh_token = body["refresh_token"].as_str().expect("a refresh token");
    // The client authenticates, so its refresh token is not bound: a new
    // key gets a token bound to the new key.
    let second = DpopKey::generate();
    let proof = second.proof("POST", &endpoint, None);
    let (status, body) = refresh("web", Some(&world.web), refresh_token, &[&proof]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let access = body["access_token"].as_str().unwrap();
    let introspection = introspect_token(&world.server, "rs", &world.rs, access);
    assert_eq!(introspection["cnf"]["jkt"], second.jkt());
}

/// `/userinfo` with the given `Authorization` and `DPoP` headers: status,
/// `WWW-Authenticate`, body.
fn userinfo(authorization: &str, proof: Option<&str>) -> (u16, String, Value) {
    let server = &world().server;
    let mut request = http()
        .get(server.url("/userinfo"))
        .header("Authorization", authorization);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response = request.send().expect("userinfo answers");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, response.json().unwrap_or(Value::Null))
}

#[test]
fn userinfo_takes_a_dpop_token_only_with_a_proof_of_its_key() {
    let world = world();
    let key = DpopKey::generate();
    let (code, verifier) = approved_code("web", "openid read", None);
    let proof = key.proof("POST", &token_endpoint(), None);
    let (status, body) = redeem("web", Some(&world.web), &code, &verifier, &[&proof]);
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let userinfo_url = world.server.url("/userinfo");

    // As a bearer token: refused with a DPoP challenge (RFC 9449 §7.1).
    let (status, challenge, _) = userinfo(&format!("Bearer {token}"), None);
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with("DPoP algs=\"ES256 RS256 PS256 EdDSA\""),
        "{challenge}"
    );
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    // With the DPoP scheme but no proof, or a proof without `ath`.
    let (status, challenge, _) = userinfo(&format!("DPoP {token}"), None);
    assert_eq!(status, 401);
    assert!(
        challenge.contains("error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    let no_ath = key.proof("GET", &userinfo_url, None);
    let (status, challenge, _) = userinfo(&format!("DPoP {token}"), Some(&no_ath));
    assert_eq!(status, 401);
    assert!(
        challenge.contains("error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    // A proof by another key.
    let other = DpopKey::generate();
    let foreign = other.proof("GET", &userinfo_url, Some(token));
    let (status, _, _) = userinfo(&format!("DPoP {token}"), Some(&foreign));
    assert_eq!(status, 401);
    // The key's proof of this request and token.
    let good = key.proof("GET", &userinfo_url, Some(token));
    let (status, _, body) = userinfo(&format!("DPoP {token}"), Some(&good));
    assert_eq!(status, 200, "{body}");
    assert!(body["sub"].is_string(), "{body}");
}

#[test]
fn server_nonces_are_required_and_handed_out_when_configured() {
    let app = InProcess::start_with_config(RawConfig {
        dpop: RawDpop {
            require_nonce: Some(true),
            ..RawDpop::default()
        },
        ..RawConfig::default()
    });
    let secret = app
        .client_add(&["svc", "--grant-type", "client_credentials"])
        .expect("a secret");
    let endpoint = format!("{}/token", app.issuer);
    let key = DpopKey::generate();
    let request = |proof: &str| {
        app.send(
            Call::form("/token", &[("grant_type", "client_credentials")])
                .basic_auth("svc", &secret)
                .header("dpop", proof),
        )
    };
    // Without a nonce: `use_dpop_nonce`, and the nonce to use.
    let first = request(&key.proof("POST", &endpoint, None));
    assert_oauth_error((first.status, &first.json()), 400, "use_dpop_nonce");
    let nonce = first.headers["dpop-nonce"].to_str().unwrap().to_owned();
    // A made-up nonce is no better.
    let mut made_up = claims("POST", &endpoint, None);
    made_up["nonce"] = "made-up".into();
    let refused = request(&key.sign(&key.jwk, &made_up));
    assert_oauth_error((refused.status, &refused.json()), 400, "use_dpop_nonce");
    // With it: a bound token, and a nonce for the next proof.
    let mut with_nonce = claims("POST", &endpoint, None);
    with_nonce["nonce"] = nonce.clone().into();
    let accepted = request(&key.sign(&key.jwk, &with_nonce));
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(accepted.json()["token_type"], "DPoP");
    assert!(accepted.headers.contains_key("dpop-nonce"));
}

#[test]
fn client_update_sets_and_lifts_the_requirement() {
    let server = &world().server;
    let secret = server
        .client_add(&[
            "toggle",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
        ])
        .expect("a secret");
    let update = |value: &[&str]| {
        let mut args = vec!["client", "update", "toggle", "--require-dpop"];
        args.extend_from_slice(value);
        let output = grantbox(&server.db, &args, None);
        assert!(output.status.success(), "{}", text(&output.stderr));
    };
    // The client cache follows the change within about a second.
    let answer_becomes = |error: Option<&str>| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (status, body) = client_credentials("toggle", &secret, &[]);
            let got = (status != 200).then(|| body["error"].as_str().unwrap_or("").to_owned());
            if got.as_deref() == error {
                return body;
            }
            assert!(std::time::Instant::now() < deadline, "{body}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    update(&[]);
    answer_becomes(Some("invalid_dpop_proof"));
    let show = grantbox(&server.db, &["client", "show", "toggle", "--json"], None);
    let shown: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(shown["dpop_bound_access_tokens"], true, "{shown}");
    update(&["false"]);
    let body = answer_becomes(None);
    assert_eq!(body["token_type"], "Bearer");
}

#[test]
fn dynamic_registration_takes_dpop_bound_access_tokens() {
    use grantbox::config::RawRegistration;
    let app = InProcess::start_with_config(RawConfig {
        registration: RawRegistration {
            enabled: Some(true),
            initial_access_token_required: Some(false),
            scopes: Some(vec!["read".into()]),
        },
        ..RawConfig::default()
    });
    let register = |metadata: Value| {
        app.send(
            Call::post("/register", metadata.to_string())
                .header("content-type", "application/json"),
        )
    };
    let reply = register(json!({
        "redirect_uris": ["https://app.example/cb"],
        "grant_types": ["authorization_code"],
        "dpop_bound_access_tokens": true
    }));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["dpop_bound_access_tokens"], true, "{body}");
    let client_id = body["client_id"].as_str().unwrap();
    let stored = app.find_client(client_id).expect("the client is stored");
    assert!(stored.dpop_bound_access_tokens);
    let reply = register(json!({
        "redirect_uris": ["https://app.example/cb"],
        "dpop_bound_access_tokens": "yes"
    }));
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.json()["error"], "invalid_client_metadata");
}
