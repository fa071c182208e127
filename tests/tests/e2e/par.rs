//! Pushed authorization requests (RFC 9126) over the real binary: a
//! confidential client pushes its request to `POST /par` with
//! client_secret_basic and completes the code flow with PKCE (the `oauth2`
//! crate builds the request and redeems the code, the scripted browser signs
//! in and consents); a `request_uri` is used once, only by its client, only
//! before it expires; `/par` answers JSON errors (401 without client
//! authentication, 400 for what `/authorize` refuses), never a redirect; a
//! client registered with `--require-par`, or every client under `[par]
//! require_pushed_authorization_requests`, cannot send its parameters to
//! `/authorize` directly; the metadata names the endpoint; a
//! client_secret_jwt assertion may name `/par` as its audience. One shared
//! server, and one with a one-second `request_uri` lifetime that requires
//! pushing.

use std::sync::OnceLock;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse as _, TokenUrl,
};
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::harness::{
    Browser, Options, Server, allow, assert_oauth_error, http, redirect_params, server_with_alice,
    text, user_add, visit_as_alice,
};

/// Where the clients' callbacks are; nothing listens there, the tests read
/// the redirects.
const CALLBACK: &str = "https://app.example/cb";
const OTHER_CALLBACK: &str = "https://other.example/cb";
/// RFC 9126 §2.2.
const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The module's shared server: alice; `web`, a confidential code-flow
/// client; `other`, another one; `pusher`, one registered with
/// `--require-par`; and `spa`, a public client.
fn server() -> &'static (Server, String, String, String) {
    static SERVER: OnceLock<(Server, String, String, String)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = server_with_alice();
        let web = code_flow_client(&server, "web", CALLBACK, &[]).expect("web gets a secret");
        let other =
            code_flow_client(&server, "other", OTHER_CALLBACK, &[]).expect("other gets a secret");
        let pusher = code_flow_client(&server, "pusher", CALLBACK, &["--require-par"])
            .expect("pusher gets a secret");
        code_flow_client(&server, "spa", CALLBACK, &["--public"]);
        (server, web, other, pusher)
    })
}

fn code_flow_client(
    server: &Server,
    client_id: &str,
    redirect_uri: &str,
    extra: &[&str],
) -> Option<String> {
    let mut args = vec![
        client_id,
        "--redirect-uri",
        redirect_uri,
        "--grant-type",
        "authorization_code",
        "--scope",
        "read",
        "--scope",
        "write",
    ];
    args.extend_from_slice(extra);
    server.client_add(&args)
}

/// What `POST /par` answered: status, headers, JSON body.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

/// Pushes `form` to `/par`, authenticated with HTTP Basic when `secret` is given.
fn push(server: &Server, credentials: Option<(&str, &str)>, form: &[(&str, &str)]) -> Answer {
    let mut request = http().post(server.url("/par")).form(form);
    if let Some((client_id, secret)) = credentials {
        request = request.basic_auth(client_id, Some(secret));
    }
    let response = request
        .send()
        .expect("the pushed authorization request endpoint answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

/// A code request of `client_id` for scope `read` with PKCE S256 and
/// `state`, as the form a client pushes; returns it with the PKCE verifier.
fn code_request(client_id: &str, state: &str) -> (Vec<(String, String)>, PkceCodeVerifier) {
    code_request_for(client_id, state, "read")
}

fn code_request_for(
    client_id: &str,
    state: &str,
    scope: &str,
) -> (Vec<(String, String)>, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let form = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("scope", scope),
        ("state", state),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let form = form
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    (form, verifier)
}

fn pairs(form: &[(String, String)]) -> Vec<(&str, &str)> {
    form.iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

/// Pushes a code request of `client_id` (HTTP Basic with `secret`); returns
/// the `request_uri` and the PKCE verifier.
fn pushed_code_request(
    server: &Server,
    client_id: &str,
    secret: &str,
    state: &str,
) -> (String, PkceCodeVerifier) {
    let (form, verifier) = code_request(client_id, state);
    let answer = push(server, Some((client_id, secret)), &pairs(&form));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let request_uri = answer.body["request_uri"]
        .as_str()
        .expect("a request_uri")
        .to_owned();
    (request_uri, verifier)
}

/// The authorization request that refers to a pushed one (RFC 9126 §4).
fn authorize_url(server: &Server, client_id: &str, request_uri: &str, extra: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri)
        .finish();
    server.url(&format!("/authorize?{query}{extra}"))
}

/// Asserts a redirect to `callback` carrying `error` (and `iss`), no code.
fn assert_redirected_error(page_location: &str, callback: &str, error: &str) -> Value {
    assert!(page_location.starts_with(callback), "{page_location}");
    let params = redirect_params(page_location, false);
    assert_eq!(
        params.get("error").map(String::as_str),
        Some(error),
        "{params:?}"
    );
    assert!(!params.contains_key("code"), "{params:?}");
    serde_json::to_value(params).unwrap()
}

#[test]
fn a_confidential_client_pushes_and_completes_the_code_flow_with_pkce() {
    let (server, web_secret, _, _) = server();
    let client = BasicClient::new(ClientId::new("web".into()))
        .set_client_secret(ClientSecret::new(web_secret.clone()))
        .set_auth_uri(AuthUrl::new(server.url("/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(server.url("/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(CALLBACK.to_owned()).unwrap());
    // The crate writes the authorization request; the client pushes its
    // parameters instead of sending the browser with them.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let answer = push(server, Some(("web", web_secret.as_str())), &pairs(&form));
    assert_eq!(answer.status, 201, "RFC 9126 §2.2: {}", answer.body);
    assert_eq!(answer.headers["cache-control"], "no-store");
    assert_eq!(answer.body["expires_in"], 60, "{}", answer.body);
    let request_uri = answer.body["request_uri"].as_str().unwrap().to_owned();
    let reference = request_uri
        .strip_prefix(REQUEST_URI_PREFIX)
        .unwrap_or_else(|| panic!("{request_uri}"));
    assert!(reference.len() >= 43, "256 random bits: {reference}");

    // The browser carries only client_id and request_uri; alice signs in and
    // sees the consent page, which survives a reload (the request_uri is
    // spent by then, the transaction holds the parameters).
    let browser = Browser::new();
    let consent = visit_as_alice(
        &browser,
        server,
        &authorize_url(server, "web", &request_uri, ""),
    );
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("read"), "{}", consent.body);
    let first_id = consent.input("transaction_id");
    let reloaded =
        browser.get(&server.url(&format!("/authorize/continue?transaction_id={first_id}")));
    assert_eq!(reloaded.status, 200, "{}", reloaded.body);
    assert_eq!(reloaded.input("transaction_id"), first_id);
    let done = allow(&browser, server, &reloaded);
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location().starts_with(CALLBACK), "{}", done.location());
    let params = redirect_params(&done.location(), false);
    assert_eq!(params["state"], *csrf.secret(), "the pushed state");
    assert_eq!(params["iss"], server.base);

    let token = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .set_pkce_verifier(verifier)
        .request(&http())
        .expect("the oauth2 crate redeems the code with client_secret_basic and PKCE");
    assert_eq!(
        token.scopes().map(|s| s[0].as_str().to_owned()),
        Some("read".into())
    );

    // RFC 9126 §4: one-time use. Presented again (a reload of /authorize),
    // it is invalid_request_uri, sent to web's only redirect URI.
    let again = browser.get(&authorize_url(server, "web", &request_uri, "&state=s"));
    assert_eq!(again.status, 302, "{}", again.body);
    let params = assert_redirected_error(&again.location(), CALLBACK, "invalid_request_uri");
    assert_eq!(params["iss"], server.base.as_str());
    assert!(
        params.get("state").is_none(),
        "the request's own state is ignored"
    );

    // Signed in already: a pushed request goes on at /authorize/continue
    // (a page there can be reloaded), where the remembered consent approves.
    let (request_uri, _) = pushed_code_request(server, "web", web_secret, "second");
    let first = browser.get(&authorize_url(server, "web", &request_uri, ""));
    assert_eq!(first.status, 302, "{}", first.body);
    assert!(
        first
            .location()
            .starts_with("/authorize/continue?transaction_id="),
        "{}",
        first.location()
    );
    let done = browser.get(&server.url(&first.location()));
    let params = redirect_params(&done.location(), false);
    assert_eq!(params["state"], "second", "{params:?}");
    assert!(params.contains_key("code"), "{params:?}");
}

/// RFC 9126 §4: only the pushed parameters count; those sent to
/// `/authorize` beside `client_id` and `request_uri` are ignored.
#[test]
fn the_authorization_endpoint_uses_only_the_pushed_parameters() {
    let (server, web_secret, _, _) = server();
    // Scope write: alice consents to web's read in another test, never to this.
    let (form, _) = code_request_for("web", "pushed", "write");
    let answer = push(server, Some(("web", web_secret.as_str())), &pairs(&form));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let request_uri = answer.body["request_uri"].as_str().unwrap();
    let browser = Browser::new();
    let extra = "&scope=read&state=mine&response_mode=fragment&redirect_uri=https://evil.example/";
    let consent = visit_as_alice(
        &browser,
        server,
        &authorize_url(server, "web", request_uri, extra),
    );
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("write"), "{}", consent.body);
    let deny = browser.post(
        &server.url("/authorize/decision"),
        &[
            ("transaction_id", &consent.input("transaction_id")),
            ("csrf_token", &consent.input("csrf_token")),
            ("cancel", "1"),
        ],
    );
    assert!(deny.location().starts_with(CALLBACK), "{}", deny.location());
    let params = redirect_params(&deny.location(), false);
    assert_eq!(
        params["state"], "pushed",
        "in the query, with the pushed state"
    );
}

#[test]
fn a_request_uri_is_bound_to_the_client_that_pushed_it() {
    let (server, web_secret, _, _) = server();
    let (request_uri, _) = pushed_code_request(server, "web", web_secret, "s");
    let browser = Browser::new();
    let stolen = browser.get(&authorize_url(server, "other", &request_uri, ""));
    assert_eq!(stolen.status, 302, "{}", stolen.body);
    assert_redirected_error(&stolen.location(), OTHER_CALLBACK, "invalid_request_uri");
    // The other client's attempt does not spend it.
    let own = browser.get(&authorize_url(server, "web", &request_uri, ""));
    assert_eq!(own.status, 302, "{}", own.body);
    assert!(
        own.location().starts_with("/login?transaction_id="),
        "{}",
        own.location()
    );
    // Neither does a request_uri this server never issued name anything.
    for unknown in [
        format!("{REQUEST_URI_PREFIX}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        "https://app.example/request.jwt".to_owned(),
    ] {
        let page = browser.get(&authorize_url(server, "web", &unknown, ""));
        assert_redirected_error(&page.location(), CALLBACK, "invalid_request_uri");
    }
}

#[test]
fn pushing_needs_client_authentication() {
    let (server, web_secret, _, _) = server();
    let (form, _) = code_request("web", "s");
    let form = pairs(&form);
    // RFC 9126 §2.1, RFC 6749 §5.2: no credentials, a confidential client's
    // id alone, a wrong secret: 401 invalid_client with a challenge.
    let without_id: Vec<(&str, &str)> = form
        .iter()
        .copied()
        .filter(|(name, _)| *name != "client_id")
        .collect();
    for (what, answer) in [
        ("no credentials", push(server, None, &without_id)),
        ("client_id only", push(server, None, &form)),
        (
            "wrong secret",
            push(server, Some(("web", "not-the-secret")), &form),
        ),
    ] {
        assert_oauth_error((answer.status, &answer.body), 401, "invalid_client");
        assert!(
            answer.headers.contains_key("www-authenticate"),
            "{what}: {:?}",
            answer.headers
        );
        assert!(answer.headers.get("location").is_none(), "{what}");
    }
    // The body's client_id must be the authenticated client.
    let answer = push(server, Some(("web", web_secret.as_str())), &{
        let mut form = form.clone();
        form.retain(|(name, _)| *name != "client_id");
        form.push(("client_id", "other"));
        form
    });
    assert_oauth_error((answer.status, &answer.body), 400, "invalid_request");
    // RFC 9126 §2.1: a public client pushes with its client_id (and PKCE).
    let (public_form, _) = code_request("spa", "s");
    let answer = push(server, None, &pairs(&public_form));
    assert_eq!(answer.status, 201, "{}", answer.body);
}

#[test]
fn what_the_authorization_endpoint_refuses_is_a_json_error_at_the_push() {
    let (server, web_secret, _, _) = server();
    let (form, _) = code_request("web", "s");
    let with = |name: &str, value: &str| {
        let mut changed: Vec<(&str, &str)> = pairs(&form)
            .into_iter()
            .filter(|(n, _)| *n != name)
            .collect();
        changed.push((name, value));
        push(server, Some(("web", web_secret.as_str())), &changed)
    };
    let cases = [
        // RFC 9126 §2.3, RFC 6749 §3.1.2.4: shown at /authorize, JSON here.
        (
            with("redirect_uri", "https://evil.example/cb"),
            "invalid_request",
            "redirect_uri",
        ),
        // RFC 9126 §2.1: a pushed request may not itself refer to one.
        (
            with("request_uri", &format!("{REQUEST_URI_PREFIX}abc")),
            "invalid_request",
            "request_uri",
        ),
        // Sent back to the client at /authorize, JSON here.
        (with("scope", "read admin"), "invalid_scope", "admin"),
        (
            with("response_type", "token"),
            "unauthorized_client",
            "implicit",
        ),
        // The grant plugin's own checks run too: PKCE's method.
        (
            with("code_challenge_method", "S512"),
            "invalid_request",
            "code_challenge_method",
        ),
        // What the server keeps for a request_uri is bounded.
        (
            with("extension", &"x".repeat(17 * 1024)),
            "invalid_request",
            "larger than",
        ),
    ];
    for (answer, error, mentions) in cases {
        assert_oauth_error((answer.status, &answer.body), 400, error);
        assert!(answer.headers.get("location").is_none(), "{}", answer.body);
        let description = answer.body["error_description"]
            .as_str()
            .unwrap_or_default();
        assert!(description.contains(mentions), "{}", answer.body);
        assert_eq!(answer.headers["cache-control"], "no-store");
    }
    // A public client's request without PKCE: the plugin's refusal.
    let (public_form, _) = code_request("spa", "s");
    let without_pkce: Vec<(&str, &str)> = pairs(&public_form)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("code_challenge"))
        .collect();
    let answer = push(server, None, &without_pkce);
    assert_oauth_error((answer.status, &answer.body), 400, "invalid_request");
    // Parameters in the query are refused, as at the token endpoint.
    let response = http()
        .post(server.url("/par?response_type=code"))
        .basic_auth("web", Some(web_secret))
        .form(&pairs(&form))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
}

#[test]
fn a_client_registered_with_require_par_must_push() {
    let (server, _, _, pusher_secret) = server();
    let (form, _) = code_request("pusher", "st");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&form)
        .finish();
    let browser = Browser::new();
    let plain = browser.get(&server.url(&format!("/authorize?{query}")));
    assert_eq!(plain.status, 302, "{}", plain.body);
    let params = assert_redirected_error(&plain.location(), CALLBACK, "invalid_request");
    assert_eq!(params["state"], "st");
    let description = params["error_description"].as_str().unwrap();
    assert!(description.contains("RFC 9126"), "{description}");
    // Pushed, the same request goes on to the sign-in.
    let (request_uri, _) = pushed_code_request(server, "pusher", pusher_secret, "st");
    let pushed = browser.get(&authorize_url(server, "pusher", &request_uri, ""));
    assert!(
        pushed.location().starts_with("/login?transaction_id="),
        "{}",
        pushed.location()
    );
}

/// `client add|update --require-par` and the admin API's
/// `require_pushed_authorization_requests`, as `client show --json` and the
/// admin API show it.
#[test]
fn require_par_is_set_and_cleared_by_the_operator() {
    let (server, _, _, _) = server();
    let shown = |client_id: &str| -> Value {
        let output = server.admin_cli(&["--json", "client", "show", client_id], None);
        assert!(output.status.success(), "{}", text(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("JSON")
    };
    code_flow_client(server, "flagged", CALLBACK, &[]);
    assert_eq!(
        shown("flagged")["require_pushed_authorization_requests"],
        false
    );
    for (args, expected) in [
        (&["client", "update", "flagged", "--require-par"][..], true),
        (
            &["client", "update", "flagged", "--require-par", "false"][..],
            false,
        ),
    ] {
        let output = server.admin_cli(args, None);
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert_eq!(
            shown("flagged")["require_pushed_authorization_requests"],
            expected,
            "{args:?}"
        );
    }
    let response = server
        .admin_request(reqwest::Method::POST, "/admin/clients")
        .json(&serde_json::json!({
            "client_id": "registered-pusher",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code"],
            "require_pushed_authorization_requests": true,
        }))
        .send()
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "{}",
        response.text().unwrap()
    );
    assert_eq!(
        shown("registered-pusher")["require_pushed_authorization_requests"],
        true
    );
}

/// RFC 9126 §5.
#[test]
fn the_metadata_names_the_endpoint() {
    let (server, _, _, _) = server();
    let metadata = server.metadata();
    assert_eq!(
        metadata["pushed_authorization_request_endpoint"],
        server.url("/par")
    );
    assert_eq!(metadata["require_pushed_authorization_requests"], false);
}

/// `[par] request_uri_lifetime_seconds = 1`: a `request_uri` is dead a
/// second later; `[par] require_pushed_authorization_requests = true`: no
/// client may send its parameters to `/authorize`, and the metadata says so.
#[test]
fn request_uris_expire_and_the_server_can_require_pushing() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let config = dir.path().join("grantbox.toml");
    std::fs::write(
        &config,
        "[par]\nrequest_uri_lifetime_seconds = 1\nrequire_pushed_authorization_requests = true\n",
    )
    .unwrap();
    let server = Server::start_with(Options {
        extra_args: vec!["--config".into(), config.display().to_string()],
        dir: Some(dir),
        ..Options::default()
    });
    user_add(&server, "alice", crate::harness::PASSWORD);
    let secret = code_flow_client(&server, "web", CALLBACK, &[]).expect("a secret");
    assert_eq!(
        server.metadata()["require_pushed_authorization_requests"],
        true
    );

    let (form, _) = code_request("web", "st");
    let answer = push(&server, Some(("web", secret.as_str())), &pairs(&form));
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["expires_in"], 1);
    let request_uri = answer.body["request_uri"].as_str().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let browser = Browser::new();
    let expired = browser.get(&authorize_url(&server, "web", request_uri, ""));
    assert_redirected_error(&expired.location(), CALLBACK, "invalid_request_uri");

    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&form)
        .finish();
    let plain = browser.get(&server.url(&format!("/authorize?{query}")));
    let params = assert_redirected_error(&plain.location(), CALLBACK, "invalid_request");
    assert_eq!(params["state"], "st");
}

/// RFC 9126 §2: a client authenticating with a JWT assertion may name the
/// pushed authorization request endpoint as its audience; the assertion is
/// used once there as at `/token` (client_secret_jwt, signed with
/// jsonwebtoken).
#[test]
fn a_client_secret_jwt_client_pushes_with_the_endpoint_as_audience() {
    let (server, _, _, _) = server();
    let secret = code_flow_client(
        server,
        "hmac",
        CALLBACK,
        &["--auth-method", "client_secret_jwt"],
    )
    .expect("the generated secret");
    let assertion = |aud: &str, jti: &str| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = serde_json::json!({
            "iss": "hmac", "sub": "hmac", "aud": aud, "iat": now, "exp": now + 60, "jti": jti,
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let (form, _) = code_request("hmac", "s");
    let push_with = |assertion: &str| {
        let mut form = pairs(&form);
        form.extend([
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ]);
        push(server, None, &form)
    };
    let for_par = assertion(&server.url("/par"), "par-1");
    let answer = push_with(&for_par);
    assert_eq!(answer.status, 201, "{}", answer.body);
    // RFC 7523 §3 item 7: once.
    let replayed = push_with(&for_par);
    assert_oauth_error((replayed.status, &replayed.body), 401, "invalid_client");
    // The issuer is an audience too; another endpoint is not.
    let answer = push_with(&assertion(&server.base, "par-2"));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let elsewhere = push_with(&assertion(&server.url("/revoke"), "par-3"));
    assert_oauth_error((elsewhere.status, &elsewhere.body), 401, "invalid_client");
}
