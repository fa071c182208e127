//! Token exchange (`examples/grant-token-exchange`) follows the calling
//! client's registration, over the real binary: for a client registered with
//! `client add --access-token-format jwt` the host mints the exchanged token
//! as an RFC 9068 JWT with `act`, which a resource server holding only
//! `/jwks` verifies with `jsonwebtoken` (a JOSE implementation other than
//! the host's); the host stores it, so `/introspect` describes it and
//! `/revoke` ends it, and revoking the subject token's grant ends it too. The
//! plugin's `[config]` says nothing about the format.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::{Value, json};

use crate::harness::{
    Options, Server, alice_password_request, confidential_client, http, install_plugin,
    introspect_token, test_plugin_wasm, token_request, user_add, workspace,
};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const PASSWORD: &str = "correct horse battery staple";
const BILLING_API: &str = "https://billing.example/api";

/// The example's own `plugin.toml` with the wasm's hash and a policy for
/// `orders-api`: no word about the token format.
fn manifest() -> String {
    let example =
        std::fs::read_to_string(workspace().join("examples/grant-token-exchange/plugin.toml"))
            .expect("the example has a plugin.toml");
    let with_hash = example.replace(
        "file = \"grant_token_exchange.wasm\"",
        "file = \"{wasm}\"\nsha256 = \"{sha256}\"",
    );
    format!(
        "{with_hash}\n[config.clients.orders-api]\naudiences = [\"billing\"]\nresources = [\"{BILLING_API}\"]\n"
    )
}

fn get_json(server: &Server, path: &str) -> Value {
    http().get(server.url(path)).send().unwrap().json().unwrap()
}

fn revoke(server: &Server, client_id: &str, secret: &str, token: &str) {
    let response = http()
        .post(server.url("/revoke"))
        .basic_auth(client_id, Some(secret))
        .form(&[("token", token)])
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[test]
fn an_exchange_for_a_jwt_client_is_a_stored_rfc_9068_jwt_with_act() {
    let wasm = test_plugin_wasm("grant-token-exchange");
    let plugins = tempfile::tempdir().unwrap();
    install_plugin(plugins.path(), "grant-token-exchange", &wasm, &manifest());
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    user_add(&server, "alice", PASSWORD);
    let web = confidential_client(
        &server,
        "web",
        &["password", "refresh_token"],
        &["orders:read"],
    );
    let orders_api = server
        .client_add(&[
            "orders-api",
            "--grant-type",
            GRANT_TYPE,
            "--grant-type",
            "client_credentials",
            "--scope",
            "orders:read",
            "--access-token-format",
            "jwt",
            "--resource",
            BILLING_API,
        ])
        .expect("a generated secret");
    let (status, body, _) = alice_password_request(&server, "web", &web, Some("orders:read"));
    assert_eq!(status, 200, "{body}");
    let alice = body["access_token"].as_str().unwrap().to_owned();
    let alice_refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, actor, _) = token_request(
        &server,
        "orders-api",
        &orders_api,
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(status, 200, "{actor}");

    let exchange = |audience: &str| {
        let (status, body, _) = token_request(
            &server,
            "orders-api",
            &orders_api,
            &[
                ("grant_type", GRANT_TYPE),
                ("subject_token", &alice),
                ("subject_token_type", ACCESS_TOKEN),
                ("actor_token", actor["access_token"].as_str().unwrap()),
                ("actor_token_type", ACCESS_TOKEN),
                ("audience", audience),
            ],
        );
        assert_eq!(status, 200, "{body}\n{}", server.logs());
        body
    };
    let body = exchange("billing");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    let jwt = body["access_token"].as_str().unwrap().to_owned();

    // What a resource server does: the metadata's issuer, the JWKS, offline.
    let metadata = get_json(&server, "/.well-known/oauth-authorization-server");
    let issuer = metadata["issuer"].as_str().unwrap();
    let jwks: JwkSet = serde_json::from_value(get_json(&server, "/jwks")).unwrap();
    let header = decode_header(&jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.as_deref().expect("a kid");
    let jwk = jwks.find(kid).expect("the JWKS publishes the signing key");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&["billing"]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = decode::<Value>(&jwt, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["iss"], issuer);
    let alice_sub = introspect_token(&server, "web", &web, &alice)["sub"].clone();
    assert_eq!(claims["sub"], alice_sub, "the subject token's subject");
    assert_eq!(claims["aud"], json!("billing"), "one audience, as a string");
    assert_eq!(claims["client_id"], "orders-api");
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(claims["act"], json!({"sub": "orders-api"}));
    assert_eq!(
        body["expires_in"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap()
    );
    // Another audience's resource server refuses it.
    let mut elsewhere = Validation::new(header.alg);
    elsewhere.set_audience(&["shipping"]);
    assert!(decode::<Value>(&jwt, &DecodingKey::from_jwk(jwk).unwrap(), &elsewhere).is_err());

    // Stored like any token: introspection describes it, revocation ends it.
    let described = introspect_token(&server, "orders-api", &orders_api, &jwt);
    assert_eq!(described["active"], true, "{described}");
    assert_eq!(described["aud"], json!(["billing"]));
    assert_eq!(described["act"], json!({"sub": "orders-api"}));
    revoke(&server, "orders-api", &orders_api, &jwt);
    let described = introspect_token(&server, "orders-api", &orders_api, &jwt);
    assert_eq!(described["active"], false, "revoked: {described}");

    // In the subject token's family: revoking alice's grant ends it too.
    let second = exchange("billing")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(decode_header(&second).is_ok(), "a JWT again");
    assert_eq!(
        introspect_token(&server, "orders-api", &orders_api, &second)["active"],
        true
    );
    revoke(&server, "web", &web, &alice_refresh);
    assert_eq!(
        introspect_token(&server, "orders-api", &orders_api, &second)["active"],
        false,
        "revoked with the subject token's grant"
    );
}
