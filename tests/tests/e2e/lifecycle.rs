//! A token's life after issuance: introspection (RFC 7662), revocation
//! (RFC 7009), the metadata document that advertises them (RFC 8414), and
//! tokens surviving a crash and restart.

use serde_json::{Value, json};

use crate::harness::{
    Options, Server, client_credentials_grant, confidential_client, grantbox, http,
    introspection_client, service_client, text, token_request,
};

/// How a request authenticates its client.
#[derive(Clone, Copy)]
enum Auth<'a> {
    /// `client_secret_basic`.
    Basic(&'a str, &'a str),
    /// `client_secret_post`.
    Post(&'a str, &'a str),
    /// `none`: a public client's bare `client_id`.
    Public(&'a str),
}

/// POSTs a form to `path` with the client authentication; returns status,
/// raw body and headers.
fn call(
    server: &Server,
    path: &str,
    auth: Auth<'_>,
    form: &[(&str, &str)],
) -> (u16, String, reqwest::header::HeaderMap) {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut request = http().post(server.url(path));
    match auth {
        Auth::Basic(id, secret) => request = request.basic_auth(id, Some(secret)),
        Auth::Post(id, secret) => form.extend([("client_id", id), ("client_secret", secret)]),
        Auth::Public(id) => form.push(("client_id", id)),
    }
    let response = request.form(&form).send().expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().unwrap_or_default(), headers)
}

fn introspect(server: &Server, auth: Auth<'_>, token: &str) -> (u16, Value) {
    let (status, body, headers) = call(server, "/introspect", auth, &[("token", token)]);
    assert_eq!(headers["cache-control"], "no-store", "{body}");
    let body = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
    (status, body)
}

fn revoke(server: &Server, auth: Auth<'_>, token: &str) -> (u16, String) {
    let (status, body, _) = call(server, "/revoke", auth, &[("token", token)]);
    (status, body)
}

/// A server with `svc` (gets tokens), `rs` (a resource server that
/// introspects) and `spa` (public); returns the two secrets.
fn setup(server: &Server) -> (String, String) {
    let svc = service_client(server, &["read", "write"]);
    let rs = introspection_client(server);
    server.client_add(&[
        "spa",
        "--public",
        "--redirect-uri",
        "https://app.example/cb",
        "--scope",
        "profile",
    ]);
    (svc, rs)
}

fn issue(server: &Server, secret: &str, scope: &str) -> (String, Value) {
    let body = client_credentials_grant(server, secret, scope);
    let token = body["access_token"].as_str().expect("a token").to_owned();
    (token, body)
}

#[test]
fn lifecycle_introspection_describes_an_active_token() {
    let server = Server::start();
    let (svc, rs) = setup(&server);
    let (token, issued) = issue(&server, &svc, "read");

    let (status, body) = introspect(&server, Auth::Basic("rs", &rs), &token);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true);
    assert_eq!(body["scope"], "read");
    assert_eq!(body["client_id"], "svc");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["iss"], server.base.as_str());
    assert!(body.get("sub").is_none(), "client credentials: no user");
    assert!(body.get("username").is_none());
    let (exp, iat) = (body["exp"].as_i64().unwrap(), body["iat"].as_i64().unwrap());
    assert_eq!(Some(exp - iat), issued["expires_in"].as_i64(), "{body}");

    // The token's own client may introspect it too, with either secret method.
    let (status, again) = introspect(&server, Auth::Post("svc", &svc), &token);
    assert_eq!((status, &again), (200, &body));
    // The hint is allowed and does not change the lookup.
    let (status, text, _) = call(
        &server,
        "/introspect",
        Auth::Basic("rs", &rs),
        &[("token", &token), ("token_type_hint", "refresh_token")],
    );
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), body);
}

#[test]
fn lifecycle_unknown_tokens_are_inactive_and_reveal_nothing() {
    let server = Server::start();
    let (_, rs) = setup(&server);
    for token in [
        "unknown-token-value",
        "x",
        "%%%garbage\u{e9}",
        &"a".repeat(4000),
    ] {
        let (status, body) = introspect(&server, Auth::Basic("rs", &rs), token);
        assert_eq!((status, body), (200, json!({"active": false})), "{token}");
    }
}

#[test]
fn lifecycle_introspection_requires_a_confidential_client() {
    let server = Server::start();
    let (svc, rs) = setup(&server);
    let (token, _) = issue(&server, &svc, "read");

    let (status, body, headers) = call(
        &server,
        "/introspect",
        Auth::Public("spa"),
        &[("token", &token)],
    );
    assert_eq!(status, 401, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(body.get("active").is_none(), "{body}");
    assert!(headers.contains_key("www-authenticate"));

    for auth in [
        Auth::Basic("rs", "wrong-secret"),
        Auth::Basic("nobody", &rs),
        Auth::Public("rs"),
    ] {
        let (status, body, _) = call(&server, "/introspect", auth, &[("token", &token)]);
        assert_eq!(status, 401, "{body}");
        assert!(!body.contains("active"), "{body}");
    }
    let response = http()
        .post(server.url("/introspect"))
        .form(&[("token", token.as_str())])
        .send()
        .unwrap();
    assert_eq!(response.status(), 401, "no client authentication at all");
}

#[test]
fn lifecycle_revocation_by_the_owner_deactivates_the_token() {
    let server = Server::start();
    let (svc, rs) = setup(&server);
    let (token, _) = issue(&server, &svc, "read write");
    let (status, body) = introspect(&server, Auth::Basic("rs", &rs), &token);
    assert_eq!((status, &body["active"]), (200, &json!(true)));
    assert_eq!(body["scope"], "read write");

    let (status, text) = revoke(&server, Auth::Basic("svc", &svc), &token);
    assert_eq!((status, text.as_str()), (200, ""));
    let (status, body) = introspect(&server, Auth::Basic("rs", &rs), &token);
    assert_eq!((status, body), (200, json!({"active": false})));

    // Revoking again is still 200 (RFC 7009 §2.2), by either secret method.
    let (status, _) = revoke(&server, Auth::Post("svc", &svc), &token);
    assert_eq!(status, 200);
}

#[test]
fn lifecycle_another_client_cannot_revoke_a_token() {
    let server = Server::start();
    let (svc, rs) = setup(&server);
    let (token, _) = issue(&server, &svc, "read");

    let (status, text) = revoke(&server, Auth::Basic("rs", &rs), &token);
    assert_eq!(
        (status, text.as_str()),
        (200, ""),
        "RFC 7009 §2.2: no oracle"
    );
    // A public client authenticates with its client_id alone, but still
    // revokes only its own tokens.
    let (status, text) = revoke(&server, Auth::Public("spa"), &token);
    assert_eq!((status, text.as_str()), (200, ""));

    let (_, body) = introspect(&server, Auth::Basic("rs", &rs), &token);
    assert_eq!(body["active"], true, "{body}");
}

#[test]
fn lifecycle_revoking_an_unknown_token_is_200() {
    let server = Server::start();
    let (svc, _) = setup(&server);
    let (status, text) = revoke(&server, Auth::Basic("svc", &svc), "no-such-token");
    assert_eq!((status, text.as_str()), (200, ""));
    let (status, _) = revoke(&server, Auth::Public("spa"), "no-such-token");
    assert_eq!(status, 200);
}

#[test]
fn lifecycle_request_errors() {
    let server = Server::start();
    let (svc, rs) = setup(&server);
    for path in ["/introspect", "/revoke"] {
        let check = |auth: Auth<'_>, form: &[(&str, &str)], status: u16, error: &str| {
            let (got, body, headers) = call(&server, path, auth, form);
            let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            assert_eq!(
                (got, body["error"].as_str()),
                (status, Some(error)),
                "{path} {form:?}: {body}"
            );
            assert_eq!(headers["cache-control"], "no-store");
        };
        check(Auth::Basic("rs", &rs), &[], 400, "invalid_request");
        check(
            Auth::Basic("svc", &svc),
            &[("token", "")],
            400,
            "invalid_request",
        );
        check(
            Auth::Basic("rs", &rs),
            &[("token", "a"), ("token", "b")],
            400,
            "invalid_request",
        );
        check(
            Auth::Basic("rs", "wrong"),
            &[("token", "a")],
            401,
            "invalid_client",
        );

        let response = http()
            .post(server.url(path))
            .basic_auth("rs", Some(&rs))
            .header("content-type", "application/json")
            .body(r#"{"token":"a"}"#)
            .send()
            .unwrap();
        assert_eq!(response.status(), 400, "{path}: a JSON body is not a form");
        let response = http().get(server.url(path)).send().unwrap();
        assert_eq!(response.status(), 405, "{path}: POST only");
    }
}

#[test]
fn lifecycle_metadata_document() {
    let server = Server::start();
    setup(&server);
    let response = http()
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(response.headers()["cache-control"], "max-age=300");
    let body: Value = response.json().unwrap();
    let base = server.base.as_str();
    assert_eq!(
        body["issuer"], base,
        "RFC 8414 §3.3: issuer is the base URL"
    );
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("introspection_endpoint", "/introspect"),
        ("revocation_endpoint", "/revoke"),
    ] {
        assert_eq!(body[field], format!("{base}{path}"), "{field}");
    }
    // The bundled plugins, in sorted order; `implicit` because the `token`
    // response type is offered (RFC 7591 §2 pairs them).
    assert_eq!(
        body["grant_types_supported"],
        json!([
            "authorization_code",
            "client_credentials",
            "implicit",
            "password",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(body["response_types_supported"], json!(["code", "token"]));
    assert_eq!(
        body["code_challenge_methods_supported"],
        json!(["S256"]),
        "a plugin issues codes: PKCE is advertised, plain only when allowed"
    );
    assert_eq!(
        body["response_modes_supported"],
        json!(["query", "fragment", "form_post"])
    );
    let methods = json!([
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "client_secret_jwt",
        "none"
    ]);
    assert_eq!(body["token_endpoint_auth_methods_supported"], methods);
    assert_eq!(body["revocation_endpoint_auth_methods_supported"], methods);
    assert_eq!(
        body["introspection_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "client_secret_jwt"
        ]),
        "public clients cannot introspect"
    );
    assert_eq!(
        body["scopes_supported"],
        json!([
            "address",
            "email",
            "introspect",
            "offline_access",
            "openid",
            "phone",
            "profile",
            "read",
            "write"
        ]),
        "the OpenID Connect scopes and the union of every client's scopes"
    );
    assert_eq!(body["authorization_response_iss_parameter_supported"], true);

    // A client added while the server runs shows at once.
    server.client_add(&["late", "--scope", "admin"]);
    let body: Value = server.metadata();
    assert_eq!(
        body["scopes_supported"],
        json!([
            "address",
            "admin",
            "email",
            "introspect",
            "offline_access",
            "openid",
            "phone",
            "profile",
            "read",
            "write"
        ])
    );
}

fn user_add(server: &Server, username: &str, password: &str) {
    let output = grantbox(
        &server.db,
        &["user", "add", username, "--password-stdin"],
        Some(password),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
}

/// A password-grant token request; `secret: None` is a public client.
fn password_grant(server: &Server, client_id: &str, secret: Option<&str>) -> Value {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "correct horse battery"),
    ];
    let mut request = http().post(server.url("/token"));
    match secret {
        Some(secret) => request = request.basic_auth(client_id, Some(secret)),
        None => form.push(("client_id", client_id)),
    }
    let response = request.form(&form).send().unwrap();
    assert_eq!(response.status(), 200);
    response.json().unwrap()
}

#[test]
fn lifecycle_refresh_tokens_are_described_and_revoke_their_family() {
    let server = Server::start();
    let (_, rs) = setup(&server);
    let app = confidential_client(&server, "app", &["password", "refresh_token"], &["profile"]);
    user_add(&server, "alice", "correct horse battery");
    let first = password_grant(&server, "app", Some(&app));
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"].as_str().expect("a refresh token");

    let (_, body) = introspect(&server, Auth::Basic("rs", &rs), access);
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let sub = body["sub"].as_str().expect("a user's token has a sub");
    assert!(
        !sub.is_empty() && sub != "alice",
        "sub is the stable subject"
    );
    assert!(body.get("username").is_none(), "{body}");
    // A refresh token is described to its own client only (RFC 7662 §4).
    let (_, body) = introspect(&server, Auth::Basic("rs", &rs), refresh);
    assert_eq!(body, json!({"active": false}), "not to a resource server");
    let (_, body) = introspect(&server, Auth::Basic("app", &app), refresh);
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(
        (&body["client_id"], &body["sub"], &body["scope"]),
        (&json!("app"), &json!(sub), &json!("profile"))
    );
    assert!(body.get("token_type").is_none(), "refresh: no token_type");

    // A rotated refresh token is no longer active; its successor is.
    let (status, second, _) = token_request(
        &server,
        "app",
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    );
    assert_eq!(status, 200, "{second}");
    let (_, body) = introspect(&server, Auth::Basic("app", &app), refresh);
    assert_eq!(body, json!({"active": false}));
    let new_refresh = second["refresh_token"].as_str().unwrap();
    let new_access = second["access_token"].as_str().unwrap();
    let (_, body) = introspect(&server, Auth::Basic("app", &app), new_refresh);
    assert_eq!(body["active"], true, "{body}");

    // Revoking the refresh token (whatever the hint says) revokes the family.
    let (status, text, _) = call(
        &server,
        "/revoke",
        Auth::Basic("app", &app),
        &[("token", new_refresh), ("token_type_hint", "access_token")],
    );
    assert_eq!((status, text.as_str()), (200, ""));
    for token in [access, new_access, new_refresh] {
        let (_, body) = introspect(&server, Auth::Basic("app", &app), token);
        assert_eq!(body, json!({"active": false}));
    }
}

#[test]
fn lifecycle_a_public_client_revokes_its_own_tokens_with_its_client_id() {
    let server = Server::start();
    let (_, rs) = setup(&server);
    server.client_add(&[
        "mobile",
        "--public",
        "--grant-type",
        "password",
        "--scope",
        "profile",
    ]);
    user_add(&server, "alice", "correct horse battery");
    let issued = password_grant(&server, "mobile", None);
    let access = issued["access_token"].as_str().unwrap();
    let (_, body) = introspect(&server, Auth::Basic("rs", &rs), access);
    assert_eq!(body["active"], true, "{body}");

    // Another public client's bare client_id revokes nothing.
    assert_eq!(revoke(&server, Auth::Public("spa"), access).0, 200);
    let (_, body) = introspect(&server, Auth::Basic("rs", &rs), access);
    assert_eq!(body["active"], true, "{body}");

    let (status, text) = revoke(&server, Auth::Public("mobile"), access);
    assert_eq!((status, text.as_str()), (200, ""));
    let (_, body) = introspect(&server, Auth::Basic("rs", &rs), access);
    assert_eq!(body, json!({"active": false}));
}

#[test]
fn lifecycle_tokens_survive_a_crash_and_restart() {
    let server = Server::start();
    let (svc, rs) = setup(&server);
    let (kept, _) = issue(&server, &svc, "read");
    let (revoked, _) = issue(&server, &svc, "write");
    assert_eq!(revoke(&server, Auth::Basic("svc", &svc), &revoked).0, 200);
    let (_, before) = introspect(&server, Auth::Basic("rs", &rs), &kept);
    assert_eq!(before["active"], true);

    let dir = server.kill();
    let server = Server::start_with(Options {
        dir: Some(dir),
        ..Default::default()
    });
    let (status, after) = introspect(&server, Auth::Basic("rs", &rs), &kept);
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["active"], true, "{after}");
    for field in ["scope", "client_id", "exp", "iat", "token_type"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    assert_eq!(
        after["iss"],
        server.base.as_str(),
        "the new server's issuer"
    );
    let (_, body) = introspect(&server, Auth::Basic("rs", &rs), &revoked);
    assert_eq!(body, json!({"active": false}), "a revocation survives too");
}
