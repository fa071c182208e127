//! The `signing` capability (interface 1.2.0) over the real binary, with the
//! fault plugin in `sign` mode: granted, the plugin answers with a JWT the
//! host signed (`iss` the host's, `kid` a key of `/jwks`), which a resource
//! server verifies with `jsonwebtoken` (a JOSE implementation other than the
//! host's); the host does not store it, so `/introspect` does not know it.
//! Withheld from the manifest, the call is denied and the plugin sees the
//! refusal. One server for both.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use crate::harness::{
    Options, Server, fault_manifest, http, install_plugin, introspect_token, test_plugin_wasm,
    token_request,
};

const AUDIENCE: &str = "https://api.example/";

fn grant_type(name: &str) -> String {
    format!("urn:grantbox:test:{name}")
}

/// The fault plugin in `sign` mode as `name`, on interface 1.2.0 with
/// `capabilities`.
fn manifest(name: &str, capabilities: &str) -> String {
    let manifest = fault_manifest(&grant_type(name), "sign", capabilities);
    let newer = manifest.replace("grantbox:plugin@1.0.0", "grantbox:plugin@1.2.0");
    assert_ne!(newer, manifest, "the fault manifest names its interface");
    format!("{newer}audience = \"{AUDIENCE}\"\n")
}

fn get_json(server: &Server, path: &str) -> Value {
    http().get(server.url(path)).send().unwrap().json().unwrap()
}

#[test]
fn a_plugin_signs_through_the_host_only_when_granted_and_the_jwt_is_not_stored() {
    let wasm = test_plugin_wasm("fault-plugin");
    let plugins = tempfile::tempdir().unwrap();
    install_plugin(
        plugins.path(),
        "sign",
        &wasm,
        &manifest("sign", "\"config\", \"clock\", \"signing\""),
    );
    install_plugin(
        plugins.path(),
        "sign-withheld",
        &wasm,
        &manifest("sign-withheld", "\"config\", \"clock\""),
    );
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    let secret = server
        .client_add(&[
            "svc",
            "--grant-type",
            &grant_type("sign"),
            "--grant-type",
            &grant_type("sign-withheld"),
        ])
        .unwrap();

    let (status, body, _) = token_request(
        &server,
        "svc",
        &secret,
        &[("grant_type", &grant_type("sign"))],
    );
    assert_eq!(status, 200, "{body}\n{}", server.logs());
    let jwt = body["access_token"].as_str().unwrap();
    let issuer = server.metadata()["issuer"].as_str().unwrap().to_owned();
    let jwks: JwkSet = serde_json::from_value(get_json(&server, "/jwks")).unwrap();
    let header = decode_header(jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks
        .find(header.kid.as_deref().expect("a kid"))
        .expect("the JWKS publishes the signing key");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[&issuer]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = decode::<Value>(jwt, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap_or_else(|e| panic!("verifies offline: {e}"))
        .claims;
    assert_eq!(claims["iss"], issuer.as_str(), "the host sets iss");
    assert_eq!(claims["client_id"], "svc");
    // Not stored: the server does not know what a plugin signed itself.
    let described = introspect_token(&server, "svc", &secret, jwt);
    assert_eq!(described["active"], false, "{described}");

    let (status, body, _) = token_request(
        &server,
        "svc",
        &secret,
        &[("grant_type", &grant_type("sign-withheld"))],
    );
    assert_eq!(status, 500, "{body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with("host refused after 0: denied"),
        "{body}"
    );
    let denied = |l: &str| l.contains("was not granted") && l.contains("signing");
    let logs = server.logs_once(denied);
    assert!(logs.lines().any(denied), "{logs}");
}
