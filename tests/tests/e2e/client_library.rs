//! A real OAuth client library (the `oauth2` crate) against the real binary
//! for what `authorize.rs` does not use it for: the refresh token grant, token
//! introspection (RFC 7662) and token revocation (RFC 7009).

use oauth2::basic::BasicClient;
use oauth2::{
    AccessToken, ClientId, ClientSecret, IntrospectionUrl, RequestTokenError,
    ResourceOwnerPassword, ResourceOwnerUsername, RevocationUrl, Scope, StandardRevocableToken,
    TokenIntrospectionResponse as _, TokenResponse as _, TokenUrl,
};

use crate::harness::{confidential_client, http, server_with_alice};

/// `url` with the https scheme.
fn as_https(url: &str) -> String {
    url.replacen("http://", "https://", 1)
}

/// The crate refuses a revocation URL that is not https (RFC 7009 §2);
/// Grantbox serves plain HTTP behind a TLS-terminating proxy. This transport
/// plays that proxy: it sends the crate's request unchanged, but over http,
/// to the same host and port.
fn tls_terminating_proxy(
    http: &reqwest::blocking::Client,
) -> impl Fn(
    oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, oauth2::HttpClientError<reqwest::Error>>
+ '_ {
    move |mut request| {
        let plain = request.uri().to_string().replacen("https://", "http://", 1);
        *request.uri_mut() = plain.parse().expect("an http URI");
        oauth2::SyncHttpClient::call(http, request)
    }
}

const PASSWORD: &str = "correct horse battery staple";

#[test]
fn the_oauth2_crate_refreshes_introspects_and_revokes() {
    let server = server_with_alice();
    let secret = confidential_client(
        &server,
        "app",
        &["password", "refresh_token"],
        &["read", "write"],
    );
    let client = BasicClient::new(ClientId::new("app".into()))
        .set_client_secret(ClientSecret::new(secret))
        .set_token_uri(TokenUrl::new(server.url("/token")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(server.url("/introspect")).unwrap())
        .set_revocation_url(RevocationUrl::new(as_https(&server.url("/revoke"))).unwrap());
    let http = http();
    let behind_tls = tls_terminating_proxy(&http);

    let first = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new(PASSWORD.into()),
        )
        .add_scope(Scope::new("read".into()))
        .add_scope(Scope::new("write".into()))
        .request(&http)
        .expect("the password grant answers the crate");
    let first_refresh = first.refresh_token().expect("a refresh token").clone();

    // Refresh, narrowing the scope (RFC 6749 §6): a new pair, the old refresh
    // token rotated away.
    let second = client
        .exchange_refresh_token(&first_refresh)
        .add_scope(Scope::new("read".into()))
        .request(&http)
        .expect("the refresh token grant answers the crate");
    let second_refresh = second.refresh_token().expect("rotated").clone();
    assert_ne!(second_refresh.secret(), first_refresh.secret());
    assert_ne!(
        second.access_token().secret(),
        first.access_token().secret()
    );
    assert_eq!(
        second.scopes().map(|scopes| scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect::<Vec<_>>()),
        Some(vec!["read".to_owned()])
    );

    // Introspection as the crate parses it.
    let seen = client
        .introspect(second.access_token())
        .request(&http)
        .expect("introspection answers the crate");
    assert!(seen.active());
    assert_eq!(seen.client_id().map(|id| id.as_str()), Some("app"));
    assert_eq!(
        seen.scopes()
            .map(|scopes| scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
        Some(vec!["read"])
    );
    assert!(seen.sub().is_some_and(|sub| !sub.is_empty()), "{seen:?}");
    assert!(seen.exp().is_some(), "{seen:?}");
    let unknown = AccessToken::new("not-a-token-grantbox-issued".into());
    let seen = client
        .introspect(&unknown)
        .request(&http)
        .expect("introspection answers the crate");
    assert!(!seen.active(), "an unknown token is inactive");

    // Revoking the access token: introspection then calls it inactive, and
    // the refresh token lives on.
    client
        .revoke_token(StandardRevocableToken::AccessToken(
            second.access_token().clone(),
        ))
        .expect("a revocation URL is set")
        .request(&behind_tls)
        .expect("revocation answers the crate");
    let seen = client
        .introspect(second.access_token())
        .request(&http)
        .unwrap();
    assert!(!seen.active(), "a revoked access token is inactive");
    let refresh_as_seen = AccessToken::new(second_refresh.secret().clone());
    assert!(
        client
            .introspect(&refresh_as_seen)
            .request(&http)
            .unwrap()
            .active(),
        "revoking the access token leaves the refresh token"
    );

    // Revoking the refresh token ends the grant: the crate's next refresh is
    // refused with invalid_grant.
    client
        .revoke_token(StandardRevocableToken::RefreshToken(second_refresh.clone()))
        .expect("a revocation URL is set")
        .request(&behind_tls)
        .expect("revocation answers the crate");
    assert!(
        !client
            .introspect(&refresh_as_seen)
            .request(&http)
            .unwrap()
            .active()
    );
    match client
        .exchange_refresh_token(&second_refresh)
        .request(&http)
    {
        Err(RequestTokenError::ServerResponse(error)) => assert_eq!(
            error.error(),
            &oauth2::basic::BasicErrorResponseType::InvalidGrant,
            "{error:?}"
        ),
        other => panic!("a revoked refresh token was not refused: {other:?}"),
    }
}
