//! The `signing` capability (interface 1.2.0) over the real binary:
//! `examples/grant-token-exchange`, for a client its `[config]` registers
//! for JWTs, answers a token exchange with a JWT access token (RFC 9068,
//! with `act`) the host signed; a resource server holding only `/jwks`
//! verifies it with `jsonwebtoken`, a JOSE implementation other than the
//! host's. Without `signing` in the manifest the host denies the call.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::harness::{
    Options, Server, alice_password_request, confidential_client, http, install_plugin,
    test_plugin_wasm, token_request, user_add, workspace,
};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const PASSWORD: &str = "correct horse battery staple";

/// The example's own `plugin.toml` with the wasm's hash, `orders-api`
/// registered for JWT access tokens, and `edit` applied.
fn manifest(edit: impl Fn(String) -> String) -> String {
    let example =
        std::fs::read_to_string(workspace().join("examples/grant-token-exchange/plugin.toml"))
            .expect("the example has a plugin.toml");
    let with_hash = example.replace(
        "file = \"grant_token_exchange.wasm\"",
        "file = \"{wasm}\"\nsha256 = \"{sha256}\"",
    );
    edit(format!(
        "{with_hash}\n[config.clients.orders-api]\naudiences = [\"billing\"]\ntoken_format = \"jwt\"\n"
    ))
}

/// A server with the plugin, alice, `web` (password grant) and `orders-api`
/// (exchanges); returns alice's token and `orders-api`'s secret.
fn start(manifest: &str) -> (Server, tempfile::TempDir, String, String) {
    let wasm = test_plugin_wasm("grant-token-exchange");
    let plugins = tempfile::tempdir().unwrap();
    install_plugin(plugins.path(), "grant-token-exchange", &wasm, manifest);
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    user_add(&server, "alice", PASSWORD);
    let web = confidential_client(&server, "web", &["password"], &["orders:read"]);
    let orders_api = confidential_client(
        &server,
        "orders-api",
        &[GRANT_TYPE, "client_credentials"],
        &["orders:read"],
    );
    let (status, body, _) = alice_password_request(&server, "web", &web, Some("orders:read"));
    assert_eq!(status, 200, "{body}");
    let alice = body["access_token"].as_str().unwrap().to_owned();
    (server, plugins, alice, orders_api)
}

fn get_json(server: &Server, path: &str) -> Value {
    http().get(server.url(path)).send().unwrap().json().unwrap()
}

#[test]
fn an_exchanged_jwt_verifies_against_the_jwks_alone() {
    let (server, _plugins, alice, orders_api) = start(&manifest(|m| m));
    let (status, actor, _) = token_request(
        &server,
        "orders-api",
        &orders_api,
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(status, 200, "{actor}");
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
            ("audience", "billing"),
        ],
    );
    assert_eq!(status, 200, "{body}\n{}", server.logs());
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    let jwt = body["access_token"].as_str().unwrap();

    // What a resource server does: the metadata's issuer, the JWKS, offline.
    let metadata = get_json(&server, "/.well-known/oauth-authorization-server");
    let issuer = metadata["issuer"].as_str().unwrap();
    let jwks: JwkSet = serde_json::from_value(get_json(&server, "/jwks")).unwrap();
    let header = decode_header(jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.as_deref().expect("a kid");
    let jwk = jwks.find(kid).expect("the JWKS publishes the signing key");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&["billing"]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = decode::<Value>(jwt, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["iss"], issuer);
    assert!(claims["sub"].as_str().is_some_and(|sub| !sub.is_empty()));
    assert_eq!(claims["aud"], serde_json::json!(["billing"]));
    assert_eq!(claims["client_id"], "orders-api");
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(claims["act"], serde_json::json!({"sub": "orders-api"}));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert!(claims["jti"].as_str().is_some_and(|jti| jti.len() == 32));

    // Another audience's resource server refuses it.
    let mut elsewhere = Validation::new(header.alg);
    elsewhere.set_audience(&["shipping"]);
    assert!(decode::<Value>(jwt, &DecodingKey::from_jwk(jwk).unwrap(), &elsewhere).is_err());
}

#[test]
fn without_signing_in_the_manifest_the_host_denies_it() {
    let manifest = manifest(|m| {
        let without = m.replace(
            "capabilities = [\"token-exchange\", \"config\", \"signing\", \"clock\", \"random\"]",
            "capabilities = [\"token-exchange\", \"config\", \"clock\", \"random\"]",
        );
        assert_ne!(without, m, "the example asks for signing");
        without
    });
    let (server, _plugins, alice, orders_api) = start(&manifest);
    let (status, body, _) = token_request(
        &server,
        "orders-api",
        &orders_api,
        &[
            ("grant_type", GRANT_TYPE),
            ("subject_token", &alice),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "billing"),
        ],
    );
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "server_error");
    let logs = server.logs_once(|logs| logs.contains("capability=\"signing\""));
    assert!(
        logs.contains("plugin called a capability it was not granted"),
        "{logs}"
    );
}
