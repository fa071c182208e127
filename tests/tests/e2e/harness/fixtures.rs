//! The setups the end-to-end tests share: the registered clients most tests
//! start from, a client-credentials token, the walk through login and
//! consent that approves an authorization request, and the check of the
//! RFC 6749 §5.2 JSON error shape.

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::http::{Browser, Page, token_request};
use super::in_process::InProcess;
use super::server::Server;

/// Where a test registers its clients: a running server (through the CLI)
/// or the in-process app (through the store).
pub trait Registrar {
    /// Registers a client from `grantbox client add`'s arguments; returns
    /// its secret, if any.
    fn register(&self, args: &[&str]) -> Option<String>;
}

impl Registrar for Server {
    fn register(&self, args: &[&str]) -> Option<String> {
        self.client_add(args)
    }
}

impl Registrar for InProcess {
    fn register(&self, args: &[&str]) -> Option<String> {
        self.client_add(args)
    }
}

/// The password the tests give alice and the other users they add.
pub const PASSWORD: &str = "correct horse battery staple";

/// A server (as [`Server::start`] starts it) with the user alice.
pub fn server_with_alice() -> Server {
    let server = Server::start();
    super::server::user_add(&server, "alice", PASSWORD);
    server
}

/// Registers `svc`, a confidential client of the client-credentials grant
/// with `scopes`; returns its secret.
pub fn service_client(target: &impl Registrar, scopes: &[&str]) -> String {
    confidential_client(target, "svc", &["client_credentials"], scopes)
}

/// Registers a confidential client `client_id` of `grant_types` with
/// `scopes`, no redirect URI; returns its secret.
pub fn confidential_client(
    target: &impl Registrar,
    client_id: &str,
    grant_types: &[&str],
    scopes: &[&str],
) -> String {
    let mut args = vec![client_id];
    for grant_type in grant_types {
        args.extend(["--grant-type", grant_type]);
    }
    for scope in scopes {
        args.extend(["--scope", scope]);
    }
    target
        .register(&args)
        .unwrap_or_else(|| panic!("{client_id} gets a secret"))
}

/// Registers `app`, a client asking for `read` and `write` at
/// `redirect_uri`, with the further `client add` arguments `extra`; returns
/// its secret, if it has one.
pub fn example_app(target: &impl Registrar, redirect_uri: &str, extra: &[&str]) -> Option<String> {
    let mut args = vec![
        "app",
        "--redirect-uri",
        redirect_uri,
        "--scope",
        "read",
        "--scope",
        "write",
    ];
    args.extend_from_slice(extra);
    target.register(&args)
}

/// Registers `rs`, a resource server that may introspect every client's
/// tokens (RFC 7662 §4) and itself gets tokens for scope `introspect`;
/// returns its secret.
pub fn introspection_client(server: &Server) -> String {
    server
        .client_add(&[
            "rs",
            "--introspection",
            "--grant-type",
            "client_credentials",
            "--scope",
            "introspect",
        ])
        .expect("rs gets a secret")
}

/// Registers `web`, a confidential client of the authorization-code grant
/// with `redirect_uri` and the further `client add` arguments `extra`;
/// returns its secret.
pub fn web_client(target: &impl Registrar, redirect_uri: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "web",
        "--redirect-uri",
        redirect_uri,
        "--grant-type",
        "authorization_code",
    ];
    args.extend_from_slice(extra);
    target.register(&args).expect("web gets a secret")
}

/// A client-credentials token request of `svc` (HTTP Basic), for `scope`
/// when one is given.
pub fn client_credentials_request(
    server: &Server,
    secret: &str,
    scope: Option<&str>,
) -> (u16, Value, HeaderMap) {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend(scope.map(|scope| ("scope", scope)));
    token_request(server, "svc", secret, &form)
}

/// The token response of a successful client-credentials request of `svc`.
pub fn client_credentials_grant(server: &Server, secret: &str, scope: &str) -> Value {
    let (status, body, _) = client_credentials_request(server, secret, Some(scope));
    assert_eq!(status, 200, "{body}");
    body
}

/// An access token for `svc` by the client-credentials grant with `scope`.
pub fn client_credentials_token(server: &Server, secret: &str, scope: &str) -> String {
    client_credentials_grant(server, secret, scope)["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// A password-grant request (RFC 6749 §4.3) of `client_id` for alice, for
/// `scope` when one is given.
pub fn alice_password_request(
    server: &Server,
    client_id: &str,
    secret: &str,
    scope: Option<&str>,
) -> (u16, Value, HeaderMap) {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    form.extend(scope.map(|scope| ("scope", scope)));
    token_request(server, client_id, secret, &form)
}

/// Introspects `token` (RFC 7662) as `client_id` with HTTP Basic
/// authentication; returns the answer, which must be a 200.
pub fn introspect_token(server: &Server, client_id: &str, secret: &str, token: &str) -> Value {
    let response = super::http::http()
        .post(server.url("/introspect"))
        .basic_auth(client_id, Some(secret))
        .form(&[("token", token)])
        .send()
        .expect("the introspection endpoint answers");
    assert_eq!(response.status().as_u16(), 200);
    response.json().expect("a JSON introspection answer")
}

/// Opens the authorization request `url`, signs alice in when the server
/// sends the browser to its login page, and returns the page that follows
/// (the consent page, or whatever the server answered instead of a login).
pub fn visit_as_alice(browser: &Browser, server: &Server, url: &str) -> Page {
    let first = browser.get(url);
    if first.status == 302 && first.location().starts_with("/login") {
        let after_login = browser.sign_in(server, &first.location(), "alice", PASSWORD);
        assert_eq!(after_login.status, 303, "{}", after_login.body);
        return browser.get(&server.url(&after_login.location()));
    }
    first
}

/// Allows the request of a consent page; returns the decision's answer.
pub fn allow(browser: &Browser, server: &Server, consent: &Page) -> Page {
    browser.post(
        &server.url("/authorize/decision"),
        &[
            ("transaction_id", &consent.input("transaction_id")),
            ("csrf_token", &consent.input("csrf_token")),
            ("allow", "1"),
        ],
    )
}

/// Walks authorize → (login as alice) → consent → allow and returns the
/// final redirect.
pub fn approve(browser: &Browser, server: &Server, url: &str) -> Page {
    let consent = visit_as_alice(browser, server, url);
    assert_eq!(consent.status, 200, "{}", consent.body);
    allow(browser, server, &consent)
}

/// Asserts an RFC 6749 §5.2 error response: `status`, and a JSON object
/// whose `error` is `error` and whose `error_description`, when present, is
/// a string.
pub fn assert_oauth_error(response: (u16, &Value), status: u16, error: &str) {
    let (actual_status, body) = response;
    assert_eq!(actual_status, status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body.get("error_description")
            .is_none_or(|description| description.is_string()),
        "error_description is a string: {body}"
    );
}
