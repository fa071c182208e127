//! OpenID Connect over the real binary, on the backend the run uses: the
//! host keeps the sign-in record of a family whose code was issued for
//! `openid` (who signed in, when, how), which the family's ID tokens state;
//! the `openidconnect` crate, as a relying party configured by discovery,
//! runs the code flow with PKCE and a nonce and verifies the ID tokens
//! (signature through the JWKS, `iss`, `aud`, `nonce`, `at_hash`), also
//! after a refresh and a key rotation, reads UserInfo and signs the user out
//! at the `end_session_endpoint`. One shared server for the module.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

use crate::harness::{
    Browser, Options, PASSWORD, Server, allow, grantbox_with, http, query_integer, redirect_params,
    text, user_add,
};

const CALLBACK: &str = "http://127.0.0.1:9999/cb";
/// Where `rp` asks to be sent after signing the user out.
const SIGNED_OUT: &str = "http://127.0.0.1:9999/signed-out";

/// The module's tests run one at a time on the shared server: one counts
/// the sign-in records, one rotates the keys.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The module's shared server (keys that sign at once after a rotation,
/// picked up within a second), with alice, carol, the clients `rp` and
/// `rp-es` (ES256 ID tokens), `rp`'s secret, the config file and `rp-es`'s
/// secret.
fn server() -> &'static (Server, String, String, String) {
    static SERVER: OnceLock<(Server, String, String, String)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("a temporary directory"));
        let config = dir.path().join("oidc.toml");
        std::fs::write(
            &config,
            "[keys]\nactivation_delay_seconds = 0\nreload_interval_seconds = 1\n",
        )
        .unwrap();
        let config = config.display().to_string();
        let server = Server::start_with(Options {
            env: vec![("GRANTBOX_CONFIG".into(), config.clone())],
            dir: Some(dir),
            ..Options::default()
        });
        user_add(&server, "alice", PASSWORD);
        // Only the sign-in records test signs carol in.
        user_add(&server, "carol", PASSWORD);
        let secret = server
            .client_add(&[
                "rp",
                "--redirect-uri",
                CALLBACK,
                "--grant-type",
                "authorization_code",
                "--grant-type",
                "refresh_token",
                "--scope",
                "openid",
                "--scope",
                "offline_access",
                "--scope",
                "profile",
                "--scope",
                "read",
                "--post-logout-redirect-uri",
                SIGNED_OUT,
            ])
            .expect("rp gets a secret");
        let es_secret = server
            .client_add(&[
                "rp-es",
                "--redirect-uri",
                CALLBACK,
                "--grant-type",
                "authorization_code",
                "--scope",
                "openid",
                "--id-token-signed-response-alg",
                "ES256",
            ])
            .expect("rp-es gets a secret");
        (server, secret, config, es_secret)
    })
}

/// Signs `user` in with a fresh browser and approves `rp`'s request for
/// `scope`; returns the code and the seconds between which they signed in.
fn code_for(server: &Server, user: &str, scope: &str) -> (String, (i64, i64)) {
    code_at(
        server,
        user,
        &server.url(&format!(
            "/authorize?response_type=code&client_id=rp&redirect_uri={CALLBACK}&state=s&scope={scope}"
        )),
    )
}

/// As [`code_for`], for the authorization request `url`.
fn code_at(server: &Server, user: &str, url: &str) -> (String, (i64, i64)) {
    code_in(&Browser::new(), server, user, url)
}

/// As [`code_at`], in `browser`, which keeps the session.
fn code_in(browser: &Browser, server: &Server, user: &str, url: &str) -> (String, (i64, i64)) {
    let first = browser.get(url);
    assert_eq!(first.status, 302, "{}", first.body);
    let before = unix_now();
    let signed_in = browser.sign_in(server, &first.location(), user, PASSWORD);
    let after = unix_now();
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let page = browser.get(&server.url(&signed_in.location()));
    let done = match page.status {
        200 => allow(browser, server, &page),
        _ => page,
    };
    let params = redirect_params(&done.location(), false);
    let code = params
        .get("code")
        .unwrap_or_else(|| panic!("a code: {params:?}"))
        .clone();
    (code, (before, after))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

#[test]
fn a_code_for_openid_keeps_when_and_how_the_user_signed_in() {
    let _serial = one_at_a_time();
    let (server, ..) = server();
    let records = |condition: &str| {
        query_integer(
            server,
            &format!(
                "SELECT COUNT(*) FROM sign_ins WHERE client_id = 'rp' \
                 AND subject = (SELECT subject FROM users WHERE username = 'carol') \
                 AND {condition}"
            ),
        )
    };
    let before = records("1 = 1");
    let (_code, (signed_in_from, signed_in_until)) = code_for(server, "carol", "openid%20profile");
    assert_eq!(records("1 = 1"), before + 1);
    assert_eq!(
        records(&format!(
            "auth_time BETWEEN {signed_in_from} AND {signed_in_until} \
             AND amr = '[\"pwd\"]' AND acr IS NULL"
        )),
        before + 1
    );
    // It outlives every token of the family: the code lifetime plus the
    // refresh token absolute lifetime.
    assert_eq!(
        records(&format!(
            "expires_at > {}",
            signed_in_until + 30 * 24 * 3600 - 1
        )),
        before + 1
    );

    // A code without `openid` has no sign-in record: nothing will ask for
    // an ID token of its family.
    let count = records("1 = 1");
    code_for(server, "carol", "read");
    assert_eq!(records("1 = 1"), count);
}

/// The relying party, configured from the server's discovery document (a
/// fresh fetch: its JWKS too).
fn relying_party(server: &Server, secret: &str) -> Rp {
    relying_party_for(server, "rp", secret)
}

/// A relying party configured from discovery: the token endpoint set, the
/// user info endpoint maybe.
type Rp = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// As [`relying_party`], for the client `client_id`.
fn relying_party_for(server: &Server, client_id: &str, secret: &str) -> Rp {
    let issuer = IssuerUrl::new(server.url("")).expect("an issuer URL");
    let metadata = CoreProviderMetadata::discover(&issuer, &http()).expect("discovery");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.into()),
        Some(ClientSecret::new(secret.into())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap())
}

/// The `kid` of a JWS's header.
fn kid_of(token: &CoreIdToken) -> String {
    let header = jsonwebtoken::decode_header(token.to_string()).expect("a JWS header");
    header.kid.expect("a kid")
}

/// Checks `at_hash` against the access token, as OIDC Core §3.1.3.8 asks.
fn check_at_hash(
    verifier: &openidconnect::core::CoreIdTokenVerifier<'_>,
    token: &CoreIdToken,
    claims: &CoreIdTokenClaims,
    access_token: &openidconnect::AccessToken,
) {
    let expected = claims.access_token_hash().expect("an at_hash");
    let actual = AccessTokenHash::from_token(
        access_token,
        token.signing_alg().unwrap(),
        token.signing_key(verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected);
}

#[test]
fn a_relying_party_verifies_the_id_tokens_of_sign_in_refresh_and_after_a_key_rotation() {
    let _serial = one_at_a_time();
    let (server, secret, config, _) = server();
    let http = http();
    let client = relying_party(server, secret);

    // The code flow with PKCE and a nonce, through the scripted browser.
    let (challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let (code, (signed_in_from, signed_in_until)) = code_at(server, "alice", url.as_str());
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(pkce_verifier)
        .request(&http)
        .expect("a token response");
    let id_token = tokens.id_token().expect("an id_token");
    // Signature through the JWKS, iss, aud, exp and the nonce.
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("a valid ID token")
        .clone();
    check_at_hash(
        &client.id_token_verifier(),
        id_token,
        &claims,
        tokens.access_token(),
    );
    let auth_time = claims.auth_time().expect("auth_time").timestamp();
    assert!(
        (signed_in_from..=signed_in_until).contains(&auth_time),
        "{auth_time} not in {signed_in_from}..={signed_in_until}"
    );
    assert_eq!(claims.nonce().map(Nonce::secret), Some(nonce.secret()));
    let subject = claims.subject().to_string();
    assert_eq!(
        query_integer(
            server,
            &format!(
                "SELECT COUNT(*) FROM users WHERE username = 'alice' AND subject = '{subject}'"
            ),
        ),
        1,
        "sub is users.subject"
    );
    let first_kid = kid_of(id_token);
    let mut refresh_token = tokens
        .refresh_token()
        .expect("offline_access: a refresh token")
        .clone();

    // A key rotation between the sign-in and the refresh; the server signs
    // with the new key once it reloaded its keys (within a second).
    let output = grantbox_with(
        &server.db,
        &["keys", "rotate", "--alg", "RS256"],
        None,
        &[("GRANTBOX_CONFIG", config.as_str())],
    );
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let refreshed = loop {
        let refreshed = client
            .exchange_refresh_token(&refresh_token)
            .unwrap()
            .request(&http)
            .expect("a refreshed token response");
        let id_token = refreshed.id_token().expect("a new id_token on refresh");
        if kid_of(id_token) != first_kid {
            break refreshed;
        }
        assert!(
            Instant::now() < deadline,
            "the server never signed with the new key"
        );
        // The refresh token rotated: go on with the new one.
        refresh_token = refreshed.refresh_token().unwrap().clone();
        std::thread::sleep(Duration::from_millis(300));
    };
    let new_id_token = refreshed.id_token().unwrap();

    // The old client's JWKS does not know the new key; a fresh discovery
    // (and JWKS fetch) verifies it. No nonce on refresh (OIDC Core §12.2).
    let fresh = relying_party(server, secret);
    let no_nonce = |nonce: Option<&Nonce>| match nonce {
        None => Ok(()),
        Some(_) => Err("a nonce on refresh".to_string()),
    };
    assert!(
        new_id_token
            .claims(&client.id_token_verifier(), no_nonce)
            .is_err(),
        "the key is new to the old JWKS"
    );
    let new_claims = new_id_token
        .claims(&fresh.id_token_verifier(), no_nonce)
        .expect("the new ID token verifies with the fresh JWKS")
        .clone();
    check_at_hash(
        &fresh.id_token_verifier(),
        new_id_token,
        &new_claims,
        refreshed.access_token(),
    );
    // The original sign-in, the same subject.
    assert_eq!(new_claims.auth_time().unwrap().timestamp(), auth_time);
    assert_eq!(new_claims.subject().as_str(), subject);
    assert!(new_claims.nonce().is_none());
    let new_kid = kid_of(new_id_token);
    let jwks: serde_json::Value = http
        .get(server.url("/jwks"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let kids: Vec<&str> = (jwks["keys"].as_array().unwrap().iter())
        .filter_map(|key| key["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&new_kid.as_str()) && kids.contains(&first_kid.as_str()),
        "{kids:?}"
    );
}

#[test]
fn openid_without_offline_access_has_an_id_token_and_no_refresh_token() {
    let _serial = one_at_a_time();
    let (server, secret, ..) = server();
    let client = relying_party(server, secret);
    let (url, _state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    let (code, _) = code_at(server, "alice", url.as_str());
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .request(&http())
        .expect("a token response");
    assert!(tokens.refresh_token().is_none(), "OIDC Core §11");
    let id_token = tokens.id_token().expect("an id_token");
    let fresh = relying_party(server, secret);
    let claims = id_token
        .claims(&fresh.id_token_verifier(), &nonce)
        .expect("a valid ID token");
    assert_eq!(
        claims.audiences(),
        &[openidconnect::Audience::new("rp".into())]
    );
}

#[test]
fn a_client_registered_for_es256_gets_es256_id_tokens() {
    let _serial = one_at_a_time();
    let (server, _, _, es_secret) = server();
    let client = relying_party_for(server, "rp-es", es_secret);
    let (url, _state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    let (code, _) = code_at(server, "alice", url.as_str());
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .request(&http())
        .expect("a token response");
    let id_token = tokens.id_token().expect("an id_token");
    assert_eq!(
        id_token.signing_alg().unwrap(),
        &CoreJwsSigningAlgorithm::EcdsaP256Sha256
    );
    // A relying party that accepts only RS256 refuses it.
    let rs256_only = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    assert!(id_token.claims(&rs256_only, &nonce).is_err());
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("a valid ES256 ID token")
        .clone();
    check_at_hash(&verifier, id_token, &claims, tokens.access_token());

    // Only an algorithm the server keeps a key for (ES256 and RS256 here).
    let refused = grantbox_with(
        &server.db,
        &[
            "client",
            "add",
            "rp-ed",
            "--redirect-uri",
            CALLBACK,
            "--scope",
            "openid",
            "--id-token-signed-response-alg",
            "EdDSA",
        ],
        None,
        &[],
    );
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("no EdDSA key"), "{stderr}");
    let refused = grantbox_with(
        &server.db,
        &[
            "client",
            "add",
            "rp-hs",
            "--redirect-uri",
            CALLBACK,
            "--id-token-signed-response-alg",
            "HS256",
        ],
        None,
        &[],
    );
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("id_token_signed_response_alg \"HS256\""),
        "{stderr}"
    );
}

/// What an application does with only the discovery URL: a stock relying
/// party signs a user in (the code flow with PKCE and a nonce, the ID token
/// verified by the library), reads the user's claims from UserInfo (the
/// library checks that its `sub` is the ID token's), and signs the user out
/// at the discovery document's `end_session_endpoint` with the ID token as
/// its hint: back at the registered address with `state`, the session over.
#[test]
fn a_relying_party_signs_a_user_in_reads_userinfo_and_signs_the_user_out() {
    let _serial = one_at_a_time();
    let (server, secret, _, _) = server();
    let output = grantbox_with(
        &server.db,
        &[
            "user",
            "add",
            "dora",
            "--password-stdin",
            "--claim",
            "name=Dora Explorer",
            "--claim",
            "email=dora@example.com",
        ],
        Some(PASSWORD),
        &[],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let http = http();
    let client = relying_party(server, secret);

    let (challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = Browser::new();
    let (code, _) = code_in(&browser, server, "dora", url.as_str());
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(pkce_verifier)
        .request(&http)
        .expect("a token response");
    let id_token = tokens.id_token().expect("an id_token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("a valid ID token")
        .clone();
    let name = |name: Option<&openidconnect::LocalizedClaim<openidconnect::EndUserName>>| {
        name.and_then(|name| name.get(None))
            .map(|name| name.to_string())
    };
    assert_eq!(name(claims.name()).as_deref(), Some("Dora Explorer"));
    // `email` was not asked for: its claims stay out.
    assert_eq!(claims.email(), None);

    // UserInfo, found by discovery; the library compares its `sub`.
    let userinfo: openidconnect::core::CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .expect("a userinfo_endpoint in discovery")
        .request(&http)
        .expect("UserInfo answers");
    assert_eq!(userinfo.subject(), claims.subject());
    assert_eq!(name(userinfo.name()).as_deref(), Some("Dora Explorer"));
    assert_eq!(userinfo.email(), None);

    // prompt=none with the ID token as id_token_hint: the signed-in user is
    // the hint's, so the code comes back without a page (OIDC Core
    // §3.1.2.1); another client's hint is login_required.
    let silent = |client_id: &str| {
        let mut request = url::Url::parse(&server.url("/authorize")).expect("a URL");
        request
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", CALLBACK)
            .append_pair("scope", "openid")
            .append_pair("state", "s")
            .append_pair("prompt", "none")
            .append_pair("id_token_hint", &id_token.to_string());
        let answer = browser.get(request.as_str());
        assert_eq!(answer.status, 302, "never a page: {}", answer.body);
        redirect_params(&answer.location(), false)
    };
    assert!(silent("rp").contains_key("code"));
    assert_eq!(
        silent("rp-es").get("error").map(String::as_str),
        Some("login_required")
    );

    // Signing out where discovery says, with the ID token as the hint: the
    // hint names the signed-in user and the client, so no page is shown.
    let discovery: serde_json::Value = http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .and_then(|response| response.json())
        .expect("the discovery document");
    let end_session = discovery["end_session_endpoint"]
        .as_str()
        .expect("an end_session_endpoint");
    let mut logout = url::Url::parse(end_session).expect("a URL");
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", &id_token.to_string())
        .append_pair("post_logout_redirect_uri", SIGNED_OUT)
        .append_pair("state", "bye");
    let signed_out = browser.get(logout.as_str());
    assert_eq!(signed_out.status, 302, "{}", signed_out.body);
    assert_eq!(
        signed_out.location(),
        format!("{SIGNED_OUT}?state=bye"),
        "back at the registered address with state"
    );
    // The session is over: the next authorization request signs in again.
    let again = browser.get(url.as_str());
    assert_eq!(again.status, 302, "{}", again.body);
    assert!(
        again.location().starts_with("/login"),
        "{}",
        again.location()
    );
    // The ID token is a hint no longer tied to a session, but it still
    // verifies: with no one signed in the user is asked to confirm.
    let confirm = browser.get(logout.as_str());
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("Sign out"), "{}", confirm.body);
}
