//! Native tests of the device authorization grant against the SDK's test
//! host: the device authorization response, user code normalisation, the
//! user step, and every answer of the token endpoint's polling.

use grantbox_sdk::testing::{Capability, TestHost, assert_error, strings};
use grantbox_sdk::{Client, PendingAuthorization, TokenResponse, UserDecision};
use sha2::{Digest, Sha256};

use super::*;

/// The manifest's `capabilities`, so a capability missing there fails here.
const CAPABILITIES: [Capability; 6] = [
    Capability::Tokens,
    Capability::KeyValue,
    Capability::Random,
    Capability::Clock,
    Capability::Config,
    Capability::Log,
];

fn tv() -> Client {
    Client::public("tv")
        .with_scopes(&["read", "write"])
        .with_grant_types(&[GRANT_TYPE])
}

fn device_host() -> TestHost {
    TestHost::new()
        .client(tv())
        .grant_capabilities(&CAPABILITIES)
        .issuer("https://as.example")
}

/// The parsed device authorization response.
struct Started {
    device_code: String,
    user_code: String,
    body: serde_json::Value,
}

fn start(test_host: &mut TestHost, params: &[(&str, &str)]) -> Started {
    let request = test_host.endpoint_request(ENDPOINT, params);
    let response = test_host.endpoint::<DeviceCode>(request).unwrap();
    assert_eq!(response.status, 200);
    let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    Started {
        device_code: body["device_code"].as_str().unwrap().to_string(),
        user_code: body["user_code"].as_str().unwrap().to_string(),
        body,
    }
}

fn find(test_host: &mut TestHost, typed: &str) -> Option<PendingAuthorization> {
    let entry = test_host.user_code_entry(USER_STEP, typed);
    test_host.find_user_code::<DeviceCode>(entry).unwrap()
}

fn decide(test_host: &mut TestHost, typed: &str, decision: UserDecision) {
    let pending = find(test_host, typed).expect("the user code is pending");
    let outcome = test_host.user_code_outcome(USER_STEP, pending.data, decision);
    test_host.complete_user_code::<DeviceCode>(outcome).unwrap();
}

fn poll(test_host: &mut TestHost, device_code: &str) -> Result<TokenResponse, OAuthError> {
    let request = test_host.token_request(GRANT_TYPE, None, &[("device_code", device_code)]);
    test_host.exchange::<DeviceCode>(request)
}

fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

#[test]
fn info_provides_the_device_code_grant_type() {
    assert_eq!(
        device_host().info::<DeviceCode>().grant_types,
        strings(&[GRANT_TYPE])
    );
}

#[test]
fn the_device_authorization_response_has_every_member() {
    let mut test_host = device_host();
    let started = start(&mut test_host, &[("scope", "read")]);
    let body = &started.body;
    assert_eq!(started.device_code.len(), 64, "256 bits in hex");
    assert!(started.device_code.bytes().all(|b| b.is_ascii_hexdigit()));
    let shown = started.user_code.as_bytes();
    assert_eq!(shown.len(), 9);
    assert_eq!(shown[4], b'-');
    assert!(
        shown
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || USER_CODE_ALPHABET.contains(b)),
        "{}",
        started.user_code
    );
    assert_eq!(body["verification_uri"], "https://as.example/device");
    assert_eq!(
        body["verification_uri_complete"],
        format!("https://as.example/device?user_code={}", started.user_code)
    );
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["interval"], 5);
    assert_eq!(body.as_object().unwrap().len(), 6, "{body}");
}

#[test]
fn lifetimes_and_interval_come_from_the_config() {
    let mut test_host = device_host()
        .config_raw("expires_in", "120")
        .config_raw("interval", "2");
    let started = start(&mut test_host, &[]);
    assert_eq!(started.body["expires_in"], 120);
    assert_eq!(started.body["interval"], 2);
    test_host.advance(119);
    assert_error(
        poll(&mut test_host, &started.device_code),
        "authorization_pending",
        "the user has not yet approved the device",
    );
    test_host.advance(1);
    assert_eq!(
        poll(&mut test_host, &started.device_code)
            .unwrap_err()
            .error,
        "expired_token"
    );

    let mut misconfigured = device_host().config_raw("interval", "0");
    let request = misconfigured.endpoint_request(ENDPOINT, &[]);
    assert_error(
        misconfigured.endpoint::<DeviceCode>(request),
        "server_error",
        "the device authorization grant is misconfigured",
    );
    let mut unknown_key = device_host().config_raw("user_code_length", "9");
    let request = unknown_key.endpoint_request(ENDPOINT, &[]);
    assert_eq!(
        unknown_key
            .endpoint::<DeviceCode>(request)
            .unwrap_err()
            .error,
        "server_error"
    );
}

#[test]
fn only_clients_registered_for_the_grant_may_start_it() {
    let mut test_host = device_host().client(Client::public("web").with_scopes(&["read"]));
    let request = test_host.endpoint_request(ENDPOINT, &[]);
    assert_error(
        test_host.endpoint::<DeviceCode>(request),
        "unauthorized_client",
        "the client is not registered for the grant type urn:ietf:params:oauth:grant-type:device_code",
    );
}

#[test]
fn the_scope_stays_within_the_registration_and_defaults_to_it() {
    let mut test_host = device_host();
    let request = test_host.endpoint_request(ENDPOINT, &[("scope", "read admin")]);
    assert_error(
        test_host.endpoint::<DeviceCode>(request),
        "invalid_scope",
        "scope admin is not allowed for this client",
    );

    let narrow = start(&mut test_host, &[("scope", "write")]);
    let pending = find(&mut test_host, &narrow.user_code).unwrap();
    assert_eq!(pending.client_id, "tv");
    assert_eq!(pending.scope, strings(&["write"]));

    let default = start(&mut test_host, &[]);
    let pending = find(&mut test_host, &default.user_code).unwrap();
    assert_eq!(pending.scope, strings(&["read", "write"]));
}

#[test]
fn codes_are_stored_only_as_digests() {
    let mut test_host = device_host();
    let started = start(&mut test_host, &[]);
    let canonical = started.user_code.replace('-', "");
    assert_eq!(
        test_host.key_value(&format!("device:{}", started.device_code)),
        None
    );
    assert_eq!(test_host.key_value(&format!("user:{canonical}")), None);
    let record = test_host
        .key_value(&format!("device:{}", sha256_hex(&started.device_code)))
        .expect("the device record is under the device code's digest");
    let record = String::from_utf8(record.to_vec()).unwrap();
    assert!(!record.contains(&started.device_code));
    assert!(!record.contains(&canonical));
    let pointer = test_host
        .key_value(&format!("user:{}", sha256_hex(&canonical)))
        .expect("the user code is under its digest");
    let pointer = String::from_utf8(pointer.to_vec()).unwrap();
    assert_eq!(
        pointer,
        format!("device:{}", sha256_hex(&started.device_code))
    );
}

#[test]
fn user_codes_are_normalised() {
    let check = |typed: &str, expect: Option<&str>| {
        assert_eq!(normalise_user_code(typed).as_deref(), expect, "{typed:?}");
    };
    check("WDJB-MJHT", Some("WDJBMJHT"));
    check("wdjb-mjht", Some("WDJBMJHT"));
    check("WdJb MjHt", Some("WDJBMJHT"));
    check(" wdjbmjht ", Some("WDJBMJHT"));
    check("W-D-J-B-M-J-H-T", Some("WDJBMJHT"));
    check("WDJB\tMJHT", Some("WDJBMJHT"));
    check("WDJB-MJH", None);
    check("WDJB-MJHTX", None);
    check("WDJB-MJHA", None); // a vowel is not in the alphabet
    check("WDJB-MJH1", None);
    check("WDJB_MJHT", None);
    check("", None);
    check("ẞDJB-MJHT", None);
    assert_eq!(display_user_code("WDJBMJHT"), "WDJB-MJHT");
}

#[test]
fn the_user_step_accepts_the_code_however_it_is_typed() {
    let mut test_host = device_host();
    let started = start(&mut test_host, &[]);
    let typed = [
        started.user_code.clone(),
        started.user_code.to_lowercase(),
        started.user_code.replace('-', " "),
        started.user_code.replace('-', ""),
        format!(
            "  {}  ",
            started.user_code.to_lowercase().replace('-', " - ")
        ),
    ];
    for typed in typed {
        let pending = find(&mut test_host, &typed);
        assert_eq!(pending.map(|p| p.client_id), Some("tv".into()), "{typed:?}");
    }
    assert_eq!(find(&mut test_host, "BCDF-GHJK"), None, "another code");
    assert_eq!(find(&mut test_host, "not a code"), None);
}

#[test]
fn polls_before_the_user_decides_are_pending_and_too_fast_ones_slow_down() {
    let mut test_host = device_host();
    let started = start(&mut test_host, &[]);
    let code = started.device_code.as_str();
    let check = |test_host: &mut TestHost, after: u64, expect: (&str, &str)| {
        test_host.advance(after);
        assert_error(poll(test_host, code), expect.0, expect.1);
    };
    let pending = (
        "authorization_pending",
        "the user has not yet approved the device",
    );
    check(&mut test_host, 0, pending);
    check(&mut test_host, 5, pending);
    check(
        &mut test_host,
        4,
        (
            "slow_down",
            "polling too often; wait 10 seconds between requests",
        ),
    );
    // The interval grew to 10 s and stays there.
    check(
        &mut test_host,
        9,
        (
            "slow_down",
            "polling too often; wait 15 seconds between requests",
        ),
    );
    check(&mut test_host, 15, pending);
    check(&mut test_host, 15, pending);
    check(
        &mut test_host,
        14,
        (
            "slow_down",
            "polling too often; wait 20 seconds between requests",
        ),
    );
}

#[test]
fn an_approved_device_gets_tokens_once() {
    let mut test_host = device_host();
    let started = start(&mut test_host, &[("scope", "read write")]);
    assert_eq!(
        poll(&mut test_host, &started.device_code)
            .unwrap_err()
            .error,
        "authorization_pending"
    );
    decide(
        &mut test_host,
        &started.user_code,
        TestHost::approved("alice", &["read"]),
    );
    test_host.advance(5);
    let response = poll(&mut test_host, &started.device_code).unwrap();
    assert_eq!(response.scope, Some(strings(&["read"])));
    assert_eq!(
        response.refresh_token, None,
        "tv is not registered for refresh_token"
    );
    let issued = test_host.token(&response.access_token).unwrap();
    assert_eq!(issued.subject.as_deref(), Some("alice"));
    assert_eq!(issued.client_id, "tv");

    for _ in 0..2 {
        test_host.advance(5);
        assert_error(
            poll(&mut test_host, &started.device_code),
            "invalid_grant",
            "the device_code was already used",
        );
    }
    assert_eq!(test_host.issued_tokens().len(), 1);
}

#[test]
fn a_client_registered_for_refresh_tokens_gets_one() {
    let client = tv().with_grant_types(&[GRANT_TYPE, "refresh_token"]);
    let mut test_host = device_host().client(client);
    let started = start(&mut test_host, &[]);
    decide(
        &mut test_host,
        &started.user_code,
        TestHost::approved("alice", &["read", "write"]),
    );
    let response = poll(&mut test_host, &started.device_code).unwrap();
    assert!(response.refresh_token.is_some());
    assert_eq!(response.scope, Some(strings(&["read", "write"])));
}

#[test]
fn a_denied_device_hears_access_denied() {
    let mut test_host = device_host();
    let started = start(&mut test_host, &[]);
    decide(&mut test_host, &started.user_code, UserDecision::Denied);
    for _ in 0..2 {
        test_host.advance(5);
        assert_error(
            poll(&mut test_host, &started.device_code),
            "access_denied",
            "the user denied the device authorization",
        );
    }
    assert!(test_host.issued_tokens().is_empty());
}

#[test]
fn an_expired_device_code_is_expired_token_and_its_user_code_is_gone() {
    let mut test_host = device_host();
    let started = start(&mut test_host, &[]);
    let pending = find(&mut test_host, &started.user_code).unwrap();
    test_host.advance(600);
    assert_eq!(find(&mut test_host, &started.user_code), None);
    let outcome = test_host.user_code_outcome(
        USER_STEP,
        pending.data,
        TestHost::approved("alice", &["read"]),
    );
    assert_error(
        test_host.complete_user_code::<DeviceCode>(outcome),
        "expired_token",
        "this code has expired; start again on your device",
    );
    assert_error(
        poll(&mut test_host, &started.device_code),
        "expired_token",
        "the device_code has expired; start a new device authorization",
    );
    // Long after, the record is gone and the code is simply unknown.
    test_host.advance(600);
    assert_error(
        poll(&mut test_host, &started.device_code),
        "invalid_grant",
        "the device_code is invalid",
    );
}

#[test]
fn an_approval_does_not_outlive_the_device_code() {
    let mut test_host = device_host();
    let started = start(&mut test_host, &[]);
    decide(
        &mut test_host,
        &started.user_code,
        TestHost::approved("alice", &["read"]),
    );
    test_host.advance(600);
    assert_eq!(
        poll(&mut test_host, &started.device_code)
            .unwrap_err()
            .error,
        "expired_token"
    );
    assert!(test_host.issued_tokens().is_empty());
}

#[test]
fn a_user_code_is_used_once() {
    let mut test_host = device_host();
    let started = start(&mut test_host, &[]);
    let pending = find(&mut test_host, &started.user_code).unwrap();
    let first = test_host.user_code_outcome(
        USER_STEP,
        pending.data.clone(),
        TestHost::approved("alice", &["read"]),
    );
    test_host.complete_user_code::<DeviceCode>(first).unwrap();
    assert_eq!(find(&mut test_host, &started.user_code), None);
    // A second decision on the same code (another tab, another user) is refused.
    let second = test_host.user_code_outcome(USER_STEP, pending.data, UserDecision::Denied);
    assert_error(
        test_host.complete_user_code::<DeviceCode>(second),
        "invalid_grant",
        "this code was already used",
    );
    assert!(poll(&mut test_host, &started.device_code).is_ok());
}

#[test]
fn an_approval_grants_no_more_than_the_device_asked_for() {
    let mut test_host = device_host();
    let started = start(&mut test_host, &[("scope", "read")]);
    let pending = find(&mut test_host, &started.user_code).unwrap();
    let outcome = test_host.user_code_outcome(
        USER_STEP,
        pending.data,
        TestHost::approved("alice", &["read", "write"]),
    );
    assert_error(
        test_host.complete_user_code::<DeviceCode>(outcome),
        "invalid_scope",
        "scope write is not allowed for this client",
    );
}

#[test]
fn the_device_code_is_bound_to_the_client_that_asked() {
    let mut test_host = device_host();
    let started = start(&mut test_host, &[]);
    decide(
        &mut test_host,
        &started.user_code,
        TestHost::approved("alice", &["read"]),
    );
    test_host.set_client(Client::confidential("other").with_grant_types(&[GRANT_TYPE]));
    assert_error(
        poll(&mut test_host, &started.device_code),
        "invalid_grant",
        "the device_code is invalid",
    );
    // The other client's poll did not use the code up.
    test_host.set_client(tv());
    assert!(poll(&mut test_host, &started.device_code).is_ok());

    // Nor may another client's outcome decide it.
    let started = start(&mut test_host, &[]);
    let pending = find(&mut test_host, &started.user_code).unwrap();
    test_host.set_client(Client::confidential("other"));
    let outcome = test_host.user_code_outcome(USER_STEP, pending.data, UserDecision::Denied);
    assert_error(
        test_host.complete_user_code::<DeviceCode>(outcome),
        "invalid_request",
        "this code belongs to another client",
    );
}

#[test]
fn unknown_and_missing_device_codes_are_refused() {
    let mut test_host = device_host();
    assert_error(
        poll(&mut test_host, "not-a-device-code"),
        "invalid_grant",
        "the device_code is invalid",
    );
    let request = test_host.token_request(GRANT_TYPE, None, &[]);
    assert_error(
        test_host.exchange::<DeviceCode>(request),
        "invalid_request",
        "missing parameter `device_code`",
    );
}

#[test]
fn each_device_gets_its_own_codes() {
    let mut test_host = device_host();
    let mut device_codes = std::collections::BTreeSet::new();
    let mut user_codes = std::collections::BTreeSet::new();
    let mut letters = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let started = start(&mut test_host, &[]);
        letters.extend(started.user_code.replace('-', "").bytes());
        device_codes.insert(started.device_code);
        user_codes.insert(started.user_code);
    }
    assert_eq!(device_codes.len(), 200);
    assert_eq!(user_codes.len(), 200);
    assert_eq!(letters.len(), 20, "every letter of the alphabet is drawn");
}

#[test]
fn a_store_outage_is_temporarily_unavailable_and_uses_nothing_up() {
    let mut test_host = device_host();
    let started = start(&mut test_host, &[]);
    decide(
        &mut test_host,
        &started.user_code,
        TestHost::approved("alice", &["read"]),
    );
    test_host.set_failure(
        Capability::Tokens,
        Some(grantbox_sdk::HostError::Unavailable("down".into())),
    );
    assert_eq!(
        poll(&mut test_host, &started.device_code)
            .unwrap_err()
            .error,
        "temporarily_unavailable"
    );
    test_host.set_failure(Capability::Tokens, None);
    assert!(poll(&mut test_host, &started.device_code).is_ok());
}

#[test]
fn an_endpoint_path_it_does_not_serve_is_a_server_error() {
    let mut test_host = device_host();
    let request = test_host.endpoint_request("/other", &[]);
    assert_eq!(
        test_host.endpoint::<DeviceCode>(request).unwrap_err().error,
        "server_error"
    );
}
