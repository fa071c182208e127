//! The FAPI 2.0 Security Profile mode (`client add --profile fapi2`) over
//! the real binary, on the backend `GRANTBOX_E2E_BACKEND` names, against one
//! shared server: a FAPI client completes PAR + PKCE S256 +
//! `private_key_jwt` + DPoP end to end, its code lives at most 60 s, and
//! every shortcut the profile forbids is refused with the error the RFCs
//! name: registration without private_key_jwt, with an implicit or password
//! grant or an http redirect URI; an authorization request not pushed;
//! a pushed one without PKCE, with `plain`, for a token, in form_post or
//! without `redirect_uri`; a client assertion for the token endpoint or in
//! a list; a token request without a DPoP proof; a code redeemed with
//! another key than `dpop_jkt`.

use std::sync::OnceLock;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

use crate::dpop::DpopKey;
use crate::harness::{
    Browser, PASSWORD, Server, allow, assert_oauth_error, grantbox, http, query_integer,
    redirect_params, text, visit_as_alice,
};

const CALLBACK: &str = "https://bank.example/cb";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const VERIFIER: &str = "fapi-code-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn random() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).unwrap();
    hex::encode(bytes)
}

/// The FAPI client's own signing key for `private_key_jwt`: a P-256 key
/// like a DPoP key, published with a `kid`.
struct ClientKey {
    key: DpopKey,
    jwk: Jwk,
}

impl ClientKey {
    fn generate() -> ClientKey {
        let key = DpopKey::generate();
        let mut jwk = key.jwk().clone();
        jwk.common.key_id = Some("bank-1".into());
        ClientKey { key, jwk }
    }

    /// An RFC 7523 client assertion of `client_id` for `aud`.
    fn assertion(&self, client_id: &str, aud: Value) -> String {
        let header = Header {
            kid: Some("bank-1".into()),
            ..Header::new(Algorithm::ES256)
        };
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": aud,
            "iat": now(), "exp": now() + 60, "jti": random(),
        });
        self.key.encode(&header, &claims)
    }
}

struct World {
    server: Server,
    issuer: String,
    key: ClientKey,
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
        let key = ClientKey::generate();
        let jwks = server.dir.path().join("bank-jwks.json");
        std::fs::write(&jwks, json!({ "keys": [key.jwk] }).to_string()).unwrap();
        let jwks = jwks.display().to_string();
        assert_eq!(
            server.client_add(&[
                "bank",
                "--redirect-uri",
                CALLBACK,
                "--grant-type",
                "authorization_code",
                "--grant-type",
                "refresh_token",
                "--scope",
                "accounts",
                "--auth-method",
                "private_key_jwt",
                "--jwks",
                &jwks,
                "--profile",
                "fapi2",
            ]),
            None,
            "a private_key_jwt client has no secret"
        );
        let issuer = server.metadata()["issuer"].as_str().unwrap().to_owned();
        World {
            server,
            issuer,
            key,
        }
    })
}

/// POSTs a form with the bank's client assertion (for `aud`) to `path`.
fn post_as_bank(
    world: &World,
    path: &str,
    form: &[(&str, &str)],
    aud: Value,
    dpop: Option<&str>,
) -> (u16, Value) {
    let assertion = world.key.assertion("bank", aud);
    let mut form = form.to_vec();
    form.extend([
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ]);
    let mut request = http().post(world.server.url(path)).form(&form);
    if let Some(proof) = dpop {
        request = request.header("DPoP", proof);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// The pushed authorization request of a FAPI client, as the profile wants
/// it; `change` edits it first (`None` removes a parameter).
fn pushed(
    change: &[(&'static str, Option<&'static str>)],
    dpop_jkt: &str,
) -> Vec<(&'static str, String)> {
    use base64::Engine;
    use sha2::Digest;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
    let mut form: Vec<(&'static str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", "bank".into()),
        ("redirect_uri", CALLBACK.into()),
        ("scope", "accounts".into()),
        ("state", "s-fapi".into()),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256".into()),
        ("dpop_jkt", dpop_jkt.into()),
    ];
    for (name, value) in change {
        form.retain(|(n, _)| n != name);
        if let Some(value) = value {
            form.push((name, (*value).into()));
        }
    }
    form
}

fn push(world: &World, form: &[(&'static str, String)]) -> (u16, Value) {
    let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (*n, v.as_str())).collect();
    post_as_bank(world, "/par", &form, json!(world.issuer), None)
}

/// Pushes the profile's authorization request bound to `dpop_jkt`, has
/// alice approve it in a fresh browser, checks the response, and returns
/// the code.
fn approved_code(world: &World, dpop_jkt: &str) -> String {
    code_for_push(world, push(world, &pushed(&[], dpop_jkt)))
}

/// Has alice approve the request of a push's answer, and returns the code.
fn code_for_push(world: &World, (status, body): (u16, Value)) -> String {
    let server = &world.server;
    assert_eq!(status, 201, "{body}");
    let request_uri = body["request_uri"].as_str().unwrap();
    let url = server.url(&format!(
        "/authorize?client_id=bank&request_uri={}",
        url::form_urlencoded::byte_serialize(request_uri.as_bytes()).collect::<String>()
    ));
    // The consent page the first time; remembered after that.
    let browser = Browser::new();
    let page = visit_as_alice(&browser, server, &url);
    let redirect = match page.status {
        200 => allow(&browser, server, &page),
        _ => page,
    };
    assert!([302, 303].contains(&redirect.status), "{}", redirect.body);
    let location = redirect.location();
    assert!(location.starts_with(CALLBACK), "{location}");
    let params = redirect_params(&location, false);
    assert_eq!(
        params["iss"], world.issuer,
        "FAPI 2.0 §5.3.2.2: iss in the response"
    );
    assert_eq!(params["state"], "s-fapi");
    params["code"].clone()
}

#[test]
fn a_fapi2_client_completes_par_pkce_private_key_jwt_and_dpop_end_to_end() {
    let world = world();
    let server = &world.server;
    let dpop = DpopKey::generate();
    let token_endpoint = format!("{}/token", world.issuer);
    let redeem = |code: &str, proof: Option<&str>| {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ];
        post_as_bank(world, "/token", &form, json!(world.issuer), proof)
    };

    // A code bound to one key (dpop_jkt) is refused with a proof of another.
    let code = approved_code(world, &dpop.jkt());
    let other = DpopKey::generate().proof("POST", &token_endpoint, None);
    let (status, body) = redeem(&code, Some(&other));
    assert_oauth_error((status, &body), 400, "invalid_dpop_proof");

    let code = approved_code(world, &dpop.jkt());
    // §5.3.2.2 item 12: the code lives at most 60 s.
    let lifetime = query_integer(
        server,
        "SELECT MAX(expires_at - issued_at) FROM codes WHERE client_id = 'bank'",
    );
    assert!((1..=60).contains(&lifetime), "{lifetime}");
    // Without a proof: no bearer token for a FAPI client (§5.3.2.1 item 4);
    // the code is not spent by the refusal.
    let (status, body) = redeem(&code, None);
    assert_oauth_error((status, &body), 400, "invalid_dpop_proof");
    // The bound key: a DPoP-bound token.
    let proof = dpop.proof("POST", &token_endpoint, None);
    let (status, body) = redeem(&code, Some(&proof));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let access_token = body["access_token"].as_str().unwrap();
    // The token works at UserInfo only with a proof of the same key.
    let userinfo = format!("{}/userinfo", world.issuer);
    let answer = http()
        .get(&userinfo)
        .header("Authorization", format!("DPoP {access_token}"))
        .header("DPoP", dpop.proof("GET", &userinfo, Some(access_token)))
        .send()
        .unwrap();
    assert_eq!(
        answer.status(),
        403,
        "no openid scope: the token is valid, the scope is not"
    );
    let bearer = http()
        .get(&userinfo)
        .bearer_auth(access_token)
        .send()
        .unwrap();
    assert_eq!(
        bearer.status(),
        401,
        "a DPoP-bound token is no bearer token"
    );
}

#[test]
fn every_shortcut_the_profile_forbids_is_refused() {
    let world = world();
    let server = &world.server;
    let jkt = DpopKey::generate().jkt();
    // §5.3.2.2 item 3: a request that was not pushed.
    let browser = Browser::new();
    let plain = browser.get(&server.url(&format!(
        "/authorize?client_id=bank&response_type=code&redirect_uri={CALLBACK}&scope=accounts&state=s"
    )));
    let location = plain.location();
    assert!(
        location.starts_with(CALLBACK),
        "{} {}",
        plain.status,
        plain.body
    );
    assert_eq!(
        redirect_params(&location, false)["error"],
        "invalid_request"
    );
    // Item 5: PKCE with S256; items 1, 6 and the query response mode.
    for (change, error) in [
        (vec![("code_challenge", None)], "invalid_request"),
        (
            vec![("code_challenge_method", Some("plain"))],
            "invalid_request",
        ),
        (vec![("code_challenge_method", None)], "invalid_request"),
        (vec![("redirect_uri", None)], "invalid_request"),
        (
            vec![("response_mode", Some("form_post"))],
            "invalid_request",
        ),
        (
            vec![("response_type", Some("token"))],
            "unauthorized_client",
        ),
    ] {
        let (status, body) = push(world, &pushed(&change, &jkt));
        assert_oauth_error((status, &body), 400, error);
    }
    // §5.3.2.1 item 8: the assertion names the issuer, as a string.
    let form = pushed(&[], &jkt);
    let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (*n, v.as_str())).collect();
    for aud in [
        json!(format!("{}/token", world.issuer)),
        json!([world.issuer]),
    ] {
        let (status, body) = post_as_bank(world, "/par", &form, aud, None);
        assert_oauth_error((status, &body), 401, "invalid_client");
    }
    // Registration: private_key_jwt, https, no implicit or password.
    let jwks = server
        .dir
        .path()
        .join("bank-jwks.json")
        .display()
        .to_string();
    let keyed = ["--auth-method", "private_key_jwt", "--jwks", jwks.as_str()];
    for (args, says) in [
        (vec!["weak", "--redirect-uri", CALLBACK], "private_key_jwt"),
        (
            vec!["pw", "--redirect-uri", CALLBACK, "--grant-type", "password"],
            "implicit nor the password",
        ),
        (
            vec!["plainhttp", "--redirect-uri", "http://127.0.0.1:9/cb"],
            "https",
        ),
    ] {
        let mut args: Vec<&str> = [&["client", "add"][..], &args].concat();
        if says != "private_key_jwt" {
            args.extend(keyed);
        }
        args.extend(["--profile", "fapi2"]);
        let output = grantbox(&server.db, &args, None);
        assert!(!output.status.success());
        let stderr = text(&output.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }
}

/// RFC 9449 §10.1: a DPoP proof sent with the push binds the code to its
/// key as `dpop_jkt` does; a `dpop_jkt` naming another key is refused.
#[test]
fn a_dpop_proof_at_the_push_binds_the_code_to_its_key() {
    let world = world();
    let key = DpopKey::generate();
    let par_endpoint = format!("{}/par", world.issuer);
    let token_endpoint = format!("{}/token", world.issuer);
    let without_jkt = pushed(&[("dpop_jkt", None)], "");
    let form: Vec<(&str, &str)> = without_jkt.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let code_of_a_push = || {
        let proof = key.proof("POST", &par_endpoint, None);
        code_for_push(
            world,
            post_as_bank(world, "/par", &form, json!(world.issuer), Some(&proof)),
        )
    };
    let redeem = |code: &str, proof: &str| {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ];
        post_as_bank(world, "/token", &form, json!(world.issuer), Some(proof))
    };
    // Bound to the push's key: another key's proof is refused.
    let stranger = DpopKey::generate().proof("POST", &token_endpoint, None);
    let (status, body) = redeem(&code_of_a_push(), &stranger);
    assert_oauth_error((status, &body), 400, "invalid_dpop_proof");
    let (status, body) = redeem(&code_of_a_push(), &key.proof("POST", &token_endpoint, None));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");

    // A proof and a dpop_jkt of two keys.
    let other = DpopKey::generate();
    let with_other_jkt = pushed(&[], &other.jkt());
    let form: Vec<(&str, &str)> = with_other_jkt
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    let proof = key.proof("POST", &par_endpoint, None);
    let (status, body) = post_as_bank(world, "/par", &form, json!(world.issuer), Some(&proof));
    assert_oauth_error((status, &body), 400, "invalid_dpop_proof");
    // A proof made for another endpoint.
    let wrong = key.proof("POST", &token_endpoint, None);
    let (status, body) = post_as_bank(world, "/par", &form, json!(world.issuer), Some(&wrong));
    assert_oauth_error((status, &body), 400, "invalid_dpop_proof");
}
