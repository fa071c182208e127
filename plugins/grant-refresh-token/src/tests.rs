//! Native tests of the refresh token grant against the SDK's test host.

use grantbox_sdk::testing::{Capability, TestHost, TokenKind, assert_error, strings};
use grantbox_sdk::{Client, HostError, IssuedTokens, OAuthError, TokenGrant, TokenResponse, host};

use super::{GRANT_TYPE, RefreshToken};

/// The host as the manifest configures it: only `refresh-tokens`. `tokens`
/// is granted only so the tests can issue the tokens of an earlier grant;
/// it stays denied while the plugin runs.
fn test_host(client: Client) -> TestHost {
    TestHost::new()
        .client(client)
        .grant_capabilities(&[Capability::RefreshTokens, Capability::Tokens])
        .fail(Capability::Tokens, not_in_the_manifest())
}

fn not_in_the_manifest() -> HostError {
    HostError::Denied("capability `tokens` is not granted to this plugin".into())
}

fn web_app() -> Client {
    Client::confidential("web")
        .with_scopes(&["read", "write", "admin"])
        .with_grant_types(&["authorization_code", GRANT_TYPE])
}

/// Tokens for `alice` with `read write`, as an earlier grant issued them.
fn earlier_grant(test_host: &mut TestHost) -> IssuedTokens {
    test_host.set_failure(Capability::Tokens, None);
    let issued = test_host.run(|| {
        host::tokens::issue(&TokenGrant {
            subject: Some("alice".into()),
            scope: strings(&["read", "write"]),
            refresh_token: true,
            grant_id: None,
        })
    });
    test_host.set_failure(Capability::Tokens, Some(not_in_the_manifest()));
    issued.unwrap()
}

/// The refresh token of an earlier grant.
fn refresh_token_of(test_host: &mut TestHost) -> String {
    earlier_grant(test_host).refresh_token.unwrap()
}

fn exchange(
    test_host: &mut TestHost,
    scope: Option<&[&str]>,
    refresh_token: &str,
) -> Result<TokenResponse, OAuthError> {
    let request = test_host.token_request(GRANT_TYPE, scope, &[("refresh_token", refresh_token)]);
    test_host.exchange::<RefreshToken>(request)
}

#[test]
fn info_provides_only_the_grant_type() {
    let info = TestHost::new().info::<RefreshToken>();
    assert_eq!(info.grant_types, strings(&[GRANT_TYPE]));
    assert!(info.response_types.is_empty());
}

#[test]
fn a_refresh_rotates_the_token_within_its_family() {
    let mut test_host = test_host(web_app());
    let earlier = earlier_grant(&mut test_host);
    let old_refresh = earlier.refresh_token.unwrap();

    let response = exchange(&mut test_host, None, &old_refresh).unwrap();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.expires_in, Some(3600));
    // Without a `scope`, the original scope.
    assert_eq!(response.scope, Some(strings(&["read", "write"])));
    let new_refresh = response.refresh_token.unwrap();
    assert_ne!(new_refresh, old_refresh);

    let access = test_host.token(&response.access_token).unwrap();
    assert_eq!(access.kind, TokenKind::Access);
    assert_eq!(access.subject.as_deref(), Some("alice"));
    assert_eq!(access.grant_id, earlier.grant_id);
    let refresh = test_host.token(&new_refresh).unwrap();
    assert_eq!(refresh.kind, TokenKind::Refresh);
    assert_eq!(refresh.grant_id, earlier.grant_id);
    assert!(test_host.token(&old_refresh).unwrap().rotated);

    // The new refresh token works in turn.
    assert!(exchange(&mut test_host, None, &new_refresh).is_ok());
}

#[test]
fn a_narrower_scope_narrows_only_the_access_token() {
    let mut test_host = test_host(web_app());
    let old_refresh = refresh_token_of(&mut test_host);
    let response = exchange(&mut test_host, Some(&["read"]), &old_refresh).unwrap();
    assert_eq!(response.scope, Some(strings(&["read"])));
    assert_eq!(
        test_host.token(&response.access_token).unwrap().scope,
        strings(&["read"])
    );
    // RFC 6749 §6: the new refresh token keeps the original scope.
    let new_refresh = response.refresh_token.unwrap();
    assert_eq!(
        test_host.token(&new_refresh).unwrap().scope,
        strings(&["read", "write"])
    );
    let response = exchange(&mut test_host, Some(&["write"]), &new_refresh).unwrap();
    assert_eq!(response.scope, Some(strings(&["write"])));
}

#[test]
fn a_wider_scope_is_an_invalid_scope_and_keeps_the_token() {
    let mut test_host = test_host(web_app());
    let old_refresh = refresh_token_of(&mut test_host);
    // `admin` is registered for the client but was not granted.
    assert_error(
        exchange(&mut test_host, Some(&["read", "admin"]), &old_refresh),
        "invalid_scope",
        "scope `admin` was not granted to the refresh token",
    );
    assert!(!test_host.token(&old_refresh).unwrap().rotated);
    assert!(exchange(&mut test_host, None, &old_refresh).is_ok());
}

#[test]
fn the_refresh_token_parameter_is_required_once() {
    let mut test_host = test_host(web_app());
    let request = test_host.token_request(GRANT_TYPE, None, &[]);
    assert_error(
        test_host.exchange::<RefreshToken>(request),
        "invalid_request",
        "missing parameter `refresh_token`",
    );
    let old_refresh = refresh_token_of(&mut test_host);
    let request = test_host.token_request(
        GRANT_TYPE,
        None,
        &[
            ("refresh_token", &old_refresh),
            ("refresh_token", &old_refresh),
        ],
    );
    assert_error(
        test_host.exchange::<RefreshToken>(request),
        "invalid_request",
        "parameter `refresh_token` is included more than once",
    );
    assert!(!test_host.token(&old_refresh).unwrap().rotated);
}

#[test]
fn an_unknown_token_is_an_invalid_grant() {
    let mut test_host = test_host(web_app());
    assert_error(
        exchange(&mut test_host, None, "not-a-token"),
        "invalid_grant",
        "the refresh token is invalid",
    );
}

#[test]
fn an_access_token_is_not_a_refresh_token() {
    let mut test_host = test_host(web_app());
    let access_token = earlier_grant(&mut test_host).access_token;
    assert_error(
        exchange(&mut test_host, None, &access_token),
        "invalid_grant",
        "the refresh token is invalid",
    );
}

#[test]
fn another_clients_token_is_an_invalid_grant() {
    let mut test_host = test_host(web_app());
    let old_refresh = refresh_token_of(&mut test_host);
    test_host.set_client(
        Client::confidential("other")
            .with_scopes(&["read", "write"])
            .with_grant_types(&[GRANT_TYPE]),
    );
    assert_error(
        exchange(&mut test_host, None, &old_refresh),
        "invalid_grant",
        "the refresh token is invalid",
    );
    assert!(!test_host.token(&old_refresh).unwrap().rotated);
}

#[test]
fn an_expired_token_is_an_invalid_grant() {
    let mut test_host = test_host(web_app()).token_lifetimes(60, 600);
    let old_refresh = refresh_token_of(&mut test_host);
    test_host.advance(600);
    assert_error(
        exchange(&mut test_host, None, &old_refresh),
        "invalid_grant",
        "the refresh token is invalid",
    );
}

#[test]
fn reusing_a_rotated_token_revokes_the_family() {
    let mut test_host = test_host(web_app());
    let earlier = earlier_grant(&mut test_host);
    let old_refresh = earlier.refresh_token.unwrap();
    let response = exchange(&mut test_host, None, &old_refresh).unwrap();

    // The old token again: an attacker, or the client replaying it.
    assert_error(
        exchange(&mut test_host, None, &old_refresh),
        "invalid_grant",
        "the refresh token is invalid",
    );
    // Everything of the family is revoked, the latest tokens included.
    assert!(test_host.token(&earlier.access_token).unwrap().revoked);
    assert!(test_host.token(&response.access_token).unwrap().revoked);
    let new_refresh = response.refresh_token.unwrap();
    assert!(test_host.token(&new_refresh).unwrap().revoked);
    assert_error(
        exchange(&mut test_host, None, &new_refresh),
        "invalid_grant",
        "the refresh token is invalid",
    );
}

#[test]
fn other_families_survive_a_reuse() {
    let mut test_host = test_host(web_app());
    let victim = refresh_token_of(&mut test_host);
    let bystander = refresh_token_of(&mut test_host);
    exchange(&mut test_host, None, &victim).unwrap();
    assert!(exchange(&mut test_host, None, &victim).is_err());
    assert!(exchange(&mut test_host, None, &bystander).is_ok());
}

#[test]
fn host_errors_become_oauth_errors() {
    let mut test_host = test_host(web_app());
    let old_refresh = refresh_token_of(&mut test_host);
    test_host.set_failure(
        Capability::RefreshTokens,
        Some(HostError::Unavailable("db down".into())),
    );
    assert_error(
        exchange(&mut test_host, None, &old_refresh),
        "temporarily_unavailable",
        "the server is temporarily unavailable",
    );
    test_host.set_failure(
        Capability::RefreshTokens,
        Some(HostError::Denied("withheld".into())),
    );
    let error = exchange(&mut test_host, None, &old_refresh).unwrap_err();
    assert_eq!(error.error, "server_error");
    assert!(!error.error_description.unwrap().contains("withheld"));
    test_host.set_failure(Capability::RefreshTokens, None);
    assert!(exchange(&mut test_host, None, &old_refresh).is_ok());
}

// OpenID Connect

fn relying_party() -> Client {
    Client::confidential("rp")
        .with_scopes(&["openid", "offline_access", "profile"])
        .with_grant_types(&["authorization_code", GRANT_TYPE])
}

fn openid_host() -> TestHost {
    TestHost::new()
        .client(relying_party())
        .grant_capabilities(&[Capability::RefreshTokens, Capability::Openid])
}

fn id_token_of(response: &TokenResponse) -> Option<String> {
    (response.extra.iter())
        .find(|(name, _)| name == "id_token")
        .map(|(_, value)| value.clone())
}

#[test]
fn refreshing_an_openid_grant_returns_a_new_id_token_of_the_original_sign_in() {
    let mut test_host = openid_host();
    let signed_in_at = test_host.now() - 600;
    let refresh_token = test_host.signed_in_refresh_token(
        "alice",
        &["openid", "offline_access", "profile"],
        signed_in_at,
    );
    test_host.advance(60);
    let response = exchange(&mut test_host, None, &refresh_token).unwrap();
    let id_token = id_token_of(&response).expect("an id_token");
    let claims = TestHost::jwt_claims(&id_token);
    // OIDC Core §12.2: the original auth_time, no nonce.
    assert_eq!(claims["auth_time"], signed_in_at);
    assert_eq!(claims["iat"], test_host.now());
    assert_eq!(claims["sub"], "alice");
    assert!(!claims.contains_key("nonce"), "{claims:?}");
    assert!(claims.contains_key("at_hash"), "{claims:?}");
    assert_eq!(test_host.id_tokens(), [id_token]);
}

#[test]
fn a_refresh_narrowed_without_openid_has_no_id_token() {
    let mut test_host = openid_host();
    let refresh_token =
        test_host.signed_in_refresh_token("alice", &["openid", "offline_access", "profile"], 1);
    let response = exchange(&mut test_host, Some(&["profile"]), &refresh_token).unwrap();
    assert_eq!(id_token_of(&response), None);
    assert!(test_host.id_tokens().is_empty());
}

#[test]
fn a_refresh_without_the_openid_capability_fails() {
    let mut test_host = TestHost::new()
        .client(relying_party())
        .grant_capabilities(&[Capability::RefreshTokens]);
    let refresh_token =
        test_host.signed_in_refresh_token("alice", &["openid", "offline_access"], 1);
    let refused = exchange(&mut test_host, None, &refresh_token);
    assert_error(
        refused,
        "server_error",
        "the grant plugin was refused a capability",
    );
}
