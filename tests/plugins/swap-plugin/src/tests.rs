//! Native tests: the configured generation reaches every response, and the
//! configured types are what `info()` claims.

use grantbox_sdk::Client;
use grantbox_sdk::testing::{Capability, TestHost};

use super::{DEFAULT_GRANT_TYPE, GENERATION_PARAM, Swap};

fn test_host() -> TestHost {
    TestHost::new()
        .client(Client::confidential("swap-test").with_scopes(&["read"]))
        .grant_capabilities(&[Capability::Tokens, Capability::Config])
}

#[test]
fn the_generation_travels_in_the_token_response() {
    let mut test_host = test_host().config("generation", "7");
    let request = test_host.token_request(DEFAULT_GRANT_TYPE, None, &[]);
    let response = test_host.exchange::<Swap>(request).unwrap();
    assert_eq!(
        response.extra,
        vec![(GENERATION_PARAM.to_string(), "7".to_string())]
    );
}

#[test]
fn a_missing_generation_is_a_server_error() {
    let mut test_host = test_host();
    let request = test_host.token_request(DEFAULT_GRANT_TYPE, None, &[]);
    let error = test_host.exchange::<Swap>(request).unwrap_err();
    assert_eq!(error.error, "server_error");
}

#[test]
fn info_claims_the_configured_types() {
    let info = test_host()
        .config("grant_type", "client_credentials")
        .config("response_type", "urn:test:swap")
        .info::<Swap>();
    assert_eq!(info.grant_types, vec!["client_credentials"]);
    assert_eq!(info.response_types.len(), 1);
    assert_eq!(info.response_types[0].response_type, vec!["urn:test:swap"]);
    assert!(test_host().info::<Swap>().response_types.is_empty());
}

fn endpoint_request(params: &[(&str, &str)]) -> grantbox_sdk::EndpointRequest {
    grantbox_sdk::EndpointRequest {
        path: "/swap_echo".into(),
        client: None,
        params: (params.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        issuer: "https://as.example".into(),
    }
}

#[test]
fn the_endpoint_echoes_the_generation_and_the_parameters() {
    use grantbox_sdk::Grant;
    let mut test_host = test_host().config("generation", "7");
    let response = test_host
        .run(|| Swap::endpoint(endpoint_request(&[("a", "x\"y")])))
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.body,
        r#"{"plugin_generation":"7","path":"/swap_echo","client_id":null,"params":[["a","x\"y"]]}"#
    );
    let raw = test_host
        .run(|| Swap::endpoint(endpoint_request(&[("raw_body", "oops"), ("status", "302")])))
        .unwrap();
    assert_eq!((raw.status, raw.body.as_str()), (302, "oops"));
    let error = test_host
        .run(|| Swap::endpoint(endpoint_request(&[("error", "slow_down")])))
        .unwrap_err();
    assert_eq!(error.error, "slow_down");
}
