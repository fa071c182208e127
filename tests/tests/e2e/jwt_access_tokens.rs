//! Resource indicators (RFC 8707) and JWT access tokens (RFC 9068): the
//! `resource` rules at `/authorize` and `/token` as a table against the real
//! router in process, and the code flow with its refresh over the real
//! binary, where a resource is bound to the grant it was authorized for.

use serde_json::{Value, json};

use crate::harness::{
    Browser, Call, InProcess, Server, allow, assert_oauth_error, http, introspect_token,
    redirect_params, server_with_alice, token_request, visit_as_alice,
};

const CALLBACK: &str = "http://127.0.0.1:9999/cb";
const API: &str = "https://api.example/";
const BILLING: &str = "https://billing.example/v1";

/// Introspects `token` in process as `client_id`; the answer must be a 200.
fn introspect_in_process(app: &InProcess, client_id: &str, secret: &str, token: &str) -> Value {
    let reply =
        app.send(Call::form("/introspect", &[("token", token)]).basic_auth(client_id, secret));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// A client-credentials request: client, further form fields, the status,
/// and the error or the introspected `aud` expected.
type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, Value);

#[test]
fn resource_indicators_at_the_token_endpoint() {
    let app = InProcess::start();
    let svc = app
        .client_add(&[
            "svc",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
            "--resource",
            API,
            "--resource",
            BILLING,
        ])
        .expect("svc gets a secret");
    let plain = app
        .client_add(&[
            "plain",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
        ])
        .expect("plain gets a secret");
    // (client, extra form, expected status, expected error or audience)
    let rows: &[Row] = &[
        // RFC 8707 §2: a registered resource becomes the token's audience.
        ("svc", &[("resource", API)], 200, json!([API])),
        // RFC 8707 §2: resource may repeat at the token endpoint.
        (
            "svc",
            &[("resource", API), ("resource", BILLING)],
            200,
            json!([API, BILLING]),
        ),
        // RFC 9068 §3: without resource, every registered one (the default).
        ("svc", &[], 200, json!([API, BILLING])),
        // RFC 8707 §2: an unregistered resource is invalid_target.
        (
            "svc",
            &[("resource", "https://evil.example/")],
            400,
            json!("invalid_target"),
        ),
        // RFC 8707 §2: not an absolute URI.
        ("svc", &[("resource", "api")], 400, json!("invalid_target")),
        // RFC 8707 §2: a fragment is not allowed.
        (
            "svc",
            &[("resource", "https://api.example/#x")],
            400,
            json!("invalid_target"),
        ),
        // One bad value among good ones fails the request.
        (
            "svc",
            &[("resource", API), ("resource", "https://evil.example/")],
            400,
            json!("invalid_target"),
        ),
        // RFC 6749 §3.2: only resource may repeat; a repeated scope still fails.
        (
            "svc",
            &[("resource", API), ("scope", "read"), ("scope", "read")],
            400,
            json!("invalid_request"),
        ),
        // A client without registered resources may name none.
        ("plain", &[("resource", API)], 400, json!("invalid_target")),
        // ... and its tokens stay unrestricted.
        ("plain", &[], 200, Value::Null),
    ];
    for (client_id, extra, status, expect) in rows {
        let secret = if *client_id == "svc" { &svc } else { &plain };
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let (got, body, _) = app.token_request(client_id, secret, &form);
        if *status != 200 {
            assert_oauth_error((got, &body), *status, expect.as_str().unwrap());
            continue;
        }
        assert_eq!(got, 200, "{client_id} {extra:?}: {body}");
        let token = body["access_token"].as_str().expect("an access token");
        let introspection = introspect_in_process(&app, client_id, secret, token);
        assert_eq!(introspection["active"], true, "{introspection}");
        assert_eq!(
            introspection["aud"], *expect,
            "{client_id} {extra:?}: {introspection}"
        );
    }
}

#[test]
fn resource_indicators_at_the_authorization_endpoint() {
    let app = InProcess::start();
    app.client_add(&[
        "web",
        "--redirect-uri",
        CALLBACK,
        "--grant-type",
        "authorization_code",
        "--scope",
        "read",
        "--resource",
        API,
    ])
    .expect("web gets a secret");
    let authorize = |extra: &str| {
        app.send(Call::get(&format!(
            "/authorize?response_type=code&client_id=web&redirect_uri={CALLBACK}&state=st{extra}"
        )))
    };
    // RFC 8707 §2: an unregistered, relative or fragment resource goes back
    // to the client as invalid_target, with state.
    for bad in ["https://evil.example/", "api", "https://api.example/%23x"] {
        let reply = authorize(&format!("&resource={bad}"));
        assert_eq!(reply.status, 302, "{bad}: {}", reply.body);
        let params = redirect_params(&reply.location(), false);
        assert_eq!(params["error"], "invalid_target", "{bad}: {params:?}");
        assert_eq!(params["state"], "st");
    }
    // A registered resource, even repeated, starts the sign-in.
    for good in [
        format!("&resource={API}"),
        format!("&resource={API}&resource={API}"),
    ] {
        let reply = authorize(&good);
        assert_eq!(reply.status, 302, "{good}: {}", reply.body);
        assert!(
            reply.location().starts_with("/login"),
            "{good}: {}",
            reply.location()
        );
    }
}

/// Walks the code flow of `web` for alice with the authorization request's
/// `extra` parameters; returns the code.
fn code_for(server: &Server, extra: &str) -> String {
    let browser = Browser::new();
    let url = server.url(&format!(
        "/authorize?response_type=code&client_id=web&redirect_uri={CALLBACK}&state=s{extra}"
    ));
    // The first approval is remembered: later ones skip the consent page.
    let page = visit_as_alice(&browser, server, &url);
    let done = match page.status {
        200 => allow(&browser, server, &page),
        _ => page,
    };
    let params = redirect_params(&done.location(), false);
    params
        .get("code")
        .unwrap_or_else(|| panic!("a code: {params:?}"))
        .clone()
}

#[test]
fn a_code_and_its_refresh_tokens_reach_only_the_authorized_resources() {
    let server = server_with_alice();
    let secret = server
        .client_add(&[
            "web",
            "--redirect-uri",
            CALLBACK,
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--scope",
            "read",
            "--resource",
            API,
            "--resource",
            BILLING,
        ])
        .expect("web gets a secret");
    let redeem = |code: &str, resource: Option<&str>| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
        ];
        form.extend(resource.map(|r| ("resource", r)));
        token_request(&server, "web", &secret, &form)
    };
    // RFC 8707 §2.2: a resource registered but not authorized for this
    // grant is invalid_target.
    let code = code_for(&server, &format!("&resource={API}"));
    let (status, body, _) = redeem(&code, Some(BILLING));
    assert_oauth_error((status, &body), 400, "invalid_target");

    let code = code_for(&server, &format!("&resource={API}"));
    let (status, body, _) = redeem(&code, Some(API));
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        introspect_token(&server, "web", &secret, access)["aud"],
        json!([API])
    );
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    // The refresh token is not an audience-restricted token: no aud shown.
    let introspection = introspect_token(&server, "web", &secret, &refresh);
    assert_eq!(introspection["active"], true);
    assert!(introspection.get("aud").is_none(), "{introspection}");

    let refresh_with = |refresh: &str, resource: Option<&str>| {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh)];
        form.extend(resource.map(|r| ("resource", r)));
        token_request(&server, "web", &secret, &form)
    };
    // RFC 8707 §2.2: a refresh reaches only the grant's resources, and the
    // refusal leaves the refresh token usable.
    let (status, body, _) = refresh_with(&refresh, Some(BILLING));
    assert_oauth_error((status, &body), 400, "invalid_target");
    let (status, body, _) = refresh_with(&refresh, None);
    assert_eq!(status, 200, "the refused refresh did not rotate: {body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        introspect_token(&server, "web", &secret, access)["aud"],
        json!([API])
    );
    let refresh = body["refresh_token"].as_str().unwrap();
    let (status, body, _) = refresh_with(refresh, Some(API));
    assert_eq!(status, 200, "{body}");

    // Without resource at /authorize the grant covers every registered one,
    // and the token request may narrow it.
    let code = code_for(&server, "");
    let (status, body, _) = redeem(&code, Some(BILLING));
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        introspect_token(&server, "web", &secret, access)["aud"],
        json!([BILLING])
    );
}

/// A resource server's view of a JWT access token: its header and claims
/// once verified offline against the keys of the server's published JWKS
/// (found through its metadata's `jwks_uri`), with `jsonwebtoken`, not the
/// host's JOSE library.
struct Verified {
    header: jsonwebtoken::Header,
    claims: Value,
}

/// The server's JWK Set, fetched as a resource server fetches it.
fn jwks(server: &Server) -> jsonwebtoken::jwk::JwkSet {
    let uri = server.metadata()["jwks_uri"]
        .as_str()
        .expect("the metadata names jwks_uri")
        .to_owned();
    http()
        .get(uri)
        .send()
        .expect("the JWKS answers")
        .json()
        .expect("a JWK Set")
}

/// Verifies `token` for `audience` against `keys`: signature, `typ`,
/// `iss`, `exp`, `aud`; panics when anything is wrong.
fn verify(
    server: &Server,
    keys: &jsonwebtoken::jwk::JwkSet,
    token: &str,
    audience: &str,
) -> Verified {
    try_verify(server, keys, token, audience)
        .unwrap_or_else(|e| panic!("the token verifies offline: {e}"))
}

/// As [`verify`], with jsonwebtoken's refusal (its error kind) as the error.
fn try_verify(
    server: &Server,
    keys: &jsonwebtoken::jwk::JwkSet,
    token: &str,
    audience: &str,
) -> Result<Verified, String> {
    let header = jsonwebtoken::decode_header(token).expect("a JWS header");
    // RFC 9068 §2.1, §4: typ at+jwt, and the key named by kid.
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "{header:?}");
    let kid = header.kid.as_deref().expect("the header names its key");
    let jwk = keys
        .find(kid)
        .unwrap_or_else(|| panic!("kid {kid} is in the JWKS"));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("a usable public key");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[server.metadata()["issuer"].as_str().unwrap()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|e| format!("{:?}", e.kind()))?;
    Ok(Verified {
        header,
        claims: data.claims,
    })
}

/// Asserts every RFC 9068 §2.2 claim of a verified token.
#[track_caller]
fn assert_claims(
    server: &Server,
    token: &Verified,
    client_id: &str,
    sub: &str,
    aud: Value,
    scope: &str,
) {
    let claims = &token.claims;
    assert_eq!(claims["iss"], server.metadata()["issuer"], "{claims}");
    assert_eq!(claims["client_id"], client_id, "{claims}");
    assert_eq!(claims["sub"], sub, "{claims}");
    assert_eq!(claims["aud"], aud, "{claims}");
    assert_eq!(claims["scope"], scope, "{claims}");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    // The default access token lifetime.
    assert_eq!(exp - iat, 3600, "{claims}");
    assert!(
        claims["jti"].as_str().is_some_and(|jti| jti.len() >= 32),
        "{claims}"
    );
    let names: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names.len(), 8, "exactly the RFC 9068 claims: {names:?}");
}

/// `svc`: client credentials for `read`, JWT access tokens for [`API`];
/// returns its secret.
fn jwt_service_client(server: &Server) -> String {
    server
        .client_add(&[
            "svc",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
            "--access-token-format",
            "jwt",
            "--resource",
            API,
        ])
        .expect("svc gets a secret")
}

#[test]
fn jwt_access_tokens_verify_offline_against_the_jwks() {
    let server = server_with_alice();
    let svc = jwt_service_client(&server);
    let pw = server
        .client_add(&[
            "pw",
            "--grant-type",
            "password",
            "--grant-type",
            "refresh_token",
            "--scope",
            "read",
            "--access-token-format",
            "jwt",
            "--resource",
            API,
            "--resource",
            BILLING,
        ])
        .expect("pw gets a secret");
    let web = server
        .client_add(&[
            "web",
            "--redirect-uri",
            CALLBACK,
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--scope",
            "read",
            "--access-token-format",
            "jwt",
            "--resource",
            API,
            "--resource",
            BILLING,
        ])
        .expect("web gets a secret");
    let keys = jwks(&server);
    let access = |body: &Value| {
        body["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned()
    };

    // Client credentials: sub is the client itself (RFC 9068 §2.2).
    let (status, body, _) = token_request(
        &server,
        "svc",
        &svc,
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let cc_token = access(&body);
    let verified = verify(&server, &keys, &cc_token, API);
    assert_eq!(
        verified.header.alg,
        jsonwebtoken::Algorithm::ES256,
        "ES256 by default"
    );
    assert_claims(&server, &verified, "svc", "svc", json!(API), "read");

    // Password: sub is alice's subject; aud from resource.
    let (status, body, _) = token_request(
        &server,
        "pw",
        &pw,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", crate::harness::PASSWORD),
            ("resource", BILLING),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let subject = introspect_token(&server, "pw", &pw, &access(&body))["sub"]
        .as_str()
        .expect("alice's subject")
        .to_owned();
    let verified = verify(&server, &keys, &access(&body), BILLING);
    assert_claims(&server, &verified, "pw", &subject, json!(BILLING), "read");
    // Refresh tokens stay opaque; a refresh gives a new JWT with a new jti.
    let refresh = body["refresh_token"].as_str().unwrap();
    assert!(
        jsonwebtoken::decode_header(refresh).is_err(),
        "an opaque refresh token"
    );
    let (status, refreshed, _) = token_request(
        &server,
        "pw",
        &pw,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    );
    assert_eq!(status, 200, "{refreshed}");
    let again = verify(&server, &keys, &access(&refreshed), BILLING);
    assert_claims(&server, &again, "pw", &subject, json!(BILLING), "read");
    assert_ne!(again.claims["jti"], verified.claims["jti"]);

    // The code flow: aud from the authorization request's resources.
    let code = code_for(&server, &format!("&resource={API}&resource={BILLING}"));
    let (status, body, _) = token_request(
        &server,
        "web",
        &web,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let verified = verify(&server, &keys, &access(&body), BILLING);
    assert_claims(
        &server,
        &verified,
        "web",
        &subject,
        json!([API, BILLING]),
        "read",
    );

    // A resource server of another audience refuses it.
    let refused = try_verify(&server, &keys, &cc_token, BILLING).err();
    assert_eq!(refused.as_deref(), Some("InvalidAudience"), "wrong aud");

    // Introspection and revocation work for a JWT as for an opaque token...
    let introspection = introspect_token(&server, "svc", &svc, &cc_token);
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["aud"], json!([API]));
    let revoked = http()
        .post(server.url("/revoke"))
        .basic_auth("svc", Some(&svc))
        .form(&[("token", cc_token.as_str())])
        .send()
        .expect("the revocation endpoint answers");
    assert_eq!(revoked.status().as_u16(), 200);
    assert_eq!(
        introspect_token(&server, "svc", &svc, &cc_token)["active"],
        false
    );
    // ... but a resource server checking offline accepts it until exp (README).
    verify(&server, &jwks(&server), &cc_token, API);

    // The resource rules hold for JWT clients too.
    let (status, body, _) = token_request(
        &server,
        "svc",
        &svc,
        &[("grant_type", "client_credentials"), ("resource", BILLING)],
    );
    assert_oauth_error((status, &body), 400, "invalid_target");
}

#[test]
fn a_jwt_signed_before_a_rotation_still_verifies_after_it() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let config = dir.path().join("keys.toml");
    // The new key signs at once; the server reloads the keys every second.
    std::fs::write(
        &config,
        "[keys]\nactivation_delay_seconds = 0\nreload_interval_seconds = 1\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let server = Server::start_with(crate::harness::Options {
        dir: Some(dir),
        extra_args: vec!["--config".into(), config.clone()],
        ..Default::default()
    });
    let secret = jwt_service_client(&server);
    let token = || {
        let (status, body, _) = token_request(
            &server,
            "svc",
            &secret,
            &[("grant_type", "client_credentials")],
        );
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    };
    let kid = |jwt: &str| jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap();
    let before = token();
    let output = crate::harness::grantbox_with(
        &server.db,
        &["keys", "rotate", "--alg", "ES256"],
        None,
        &[("GRANTBOX_CONFIG", config.as_str())],
    );
    assert!(
        output.status.success(),
        "{}",
        crate::harness::text(&output.stderr)
    );
    // Within the reload interval the new key signs.
    let started = std::time::Instant::now();
    let after = loop {
        let after = token();
        if kid(&after) != kid(&before) {
            break after;
        }
        assert!(started.elapsed().as_secs() < 5, "the new key never signed");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // One JWKS verifies both: the old key stays published for its tokens.
    let keys = jwks(&server);
    verify(&server, &keys, &before, API);
    verify(&server, &keys, &after, API);
}
