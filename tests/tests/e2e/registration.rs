//! Dynamic client registration: closed by default; `POST /register` (RFC
//! 7591) with initial access tokens from `grantbox registration token
//! create`, the registered clients then getting tokens (client credentials,
//! an authorization code with PKCE); the RFC 7592 read, update and delete,
//! deletion making the client's tokens inactive. The RFC 7591 §3.2.2 error
//! matrix runs in process.

use grantbox::config::{RawConfig, RawRegistration};
use oauth2::PkceCodeChallenge;
use serde_json::{Value, json};

use crate::harness::{
    Browser, Call, InProcess, Options, PASSWORD, Server, approve, grantbox, grantbox_with, http,
    introspect_token, introspection_client, redirect_params, text, token_request, user_add,
};

const CALLBACK: &str = "http://127.0.0.1:9/cb";

/// `[registration]` open to initial access tokens, offering `read` and `write`.
const OPEN_CONFIG: &str = "[registration]\nenabled = true\nscopes = [\"read\", \"write\"]\n";

/// A server with registration open (`OPEN_CONFIG`) and the user alice.
fn open_server() -> Server {
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("a temporary directory"));
    let config = dir.path().join("grantbox.toml");
    std::fs::write(&config, OPEN_CONFIG).expect("the config is written");
    let server = Server::start_with(Options {
        extra_args: vec!["--config".into(), config.display().to_string()],
        dir: Some(dir),
        ..Options::default()
    });
    user_add(&server, "alice", PASSWORD);
    server
}

/// `grantbox registration token create` with `args`; the token, which must
/// be alone on stdout.
fn create_initial_access_token(server: &Server, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut full = vec!["registration", "token", "create"];
    full.extend_from_slice(args);
    let output = grantbox_with(&server.db, &full, None, env);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "the token alone on stdout: {stdout:?}");
    assert!(
        text(&output.stderr).contains("initial access token created"),
        "{}",
        text(&output.stderr)
    );
    lines[0].to_owned()
}

/// Sends `metadata` to `POST /register` with `token` as bearer token.
fn register(
    server: &Server,
    token: Option<&str>,
    metadata: &Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = http().post(server.url("/register")).json(metadata);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().expect("the registration endpoint answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.json().unwrap_or(Value::Null), headers)
}

/// A request to a client configuration endpoint (RFC 7592).
fn configure(
    server: &Server,
    method: reqwest::Method,
    client_id: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = http()
        .request(method, server.url(&format!("/register/{client_id}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().expect("the configuration endpoint answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.json().unwrap_or(Value::Null), headers)
}

#[track_caller]
fn assert_unauthorized(answer: &(u16, Value, reqwest::header::HeaderMap)) {
    let (status, body, headers) = answer;
    assert_eq!(*status, 401, "{body}");
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
}

fn service_metadata() -> Value {
    json!({
        "client_name": "Registered service",
        "grant_types": ["client_credentials"],
        "scope": "read",
        "trusted": true,
        "introspection": true,
        "software_id": "ignored-unknown-field",
    })
}

fn native_app_metadata() -> Value {
    json!({
        "client_name": "Registered app",
        "redirect_uris": [CALLBACK],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "read write",
    })
}

#[test]
fn registration_is_closed_by_default() {
    let server = Server::start();
    assert!(
        server.metadata().get("registration_endpoint").is_none(),
        "no registration_endpoint while closed"
    );
    // Even with a token an operator created, nothing answers.
    let token = create_initial_access_token(&server, &[], &[]);
    let (status, _, _) = register(&server, Some(&token), &service_metadata());
    assert_eq!(status, 404);
    let (status, _, _) = configure(&server, reqwest::Method::GET, "any", &token, None);
    assert_eq!(status, 404);
    // The command refuses what makes no sense, and then prints no token.
    for args in [
        &["--uses", "0"][..],
        &["--uses", "2", "--multi-use"],
        &["--expires-in", "0"],
    ] {
        let mut full = vec!["registration", "token", "create"];
        full.extend_from_slice(args);
        let output = grantbox(&server.db, &full, None);
        assert!(!output.status.success(), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn registration_with_initial_access_tokens_and_client_management() {
    let server = open_server();
    assert_eq!(
        server.metadata()["registration_endpoint"],
        server.url("/register")
    );
    let rs_secret = introspection_client(&server);

    // Refused without a token, with a wrong one, a used-up one, an expired one.
    let refused = register(&server, None, &service_metadata());
    assert_unauthorized(&refused);
    assert_eq!(refused.2["www-authenticate"], "Bearer realm=\"grantbox\"");
    let refused = register(&server, Some("not-a-token"), &service_metadata());
    assert_unauthorized(&refused);
    assert!(
        refused.2["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    let expired = create_initial_access_token(
        &server,
        &["--expires-in", "60"],
        &[("GRANTBOX_CLOCK_OFFSET", "-3600")],
    );
    assert_unauthorized(&register(&server, Some(&expired), &service_metadata()));

    // A single-use token registers one client, then no more.
    let once = create_initial_access_token(&server, &[], &[]);
    let (status, service, headers) = register(&server, Some(&once), &service_metadata());
    assert_eq!(status, 201, "{service}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_unauthorized(&register(&server, Some(&once), &service_metadata()));
    let service_id = service["client_id"]
        .as_str()
        .expect("a client_id")
        .to_owned();
    let service_secret = service["client_secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    let service_token = service["registration_access_token"]
        .as_str()
        .expect("a registration access token")
        .to_owned();
    assert_eq!(
        service["registration_client_uri"],
        server.url(&format!("/register/{service_id}"))
    );
    assert_eq!(service["client_secret_expires_at"], 0);
    assert!(
        service["client_id_issued_at"].as_i64().is_some(),
        "{service}"
    );
    assert_eq!(service["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(service["grant_types"], json!(["client_credentials"]));
    assert_eq!(service["response_types"], json!([]));
    assert_eq!(service["scope"], "read");
    assert_eq!(service["client_name"], "Registered service");
    for ignored in ["trusted", "introspection", "software_id"] {
        assert!(service.get(ignored).is_none(), "{ignored}: {service}");
    }

    // The new client's credentials get a token (client credentials).
    let (status, body, _) = token_request(
        &server,
        &service_id,
        &service_secret,
        &[("grant_type", "client_credentials"), ("scope", "read")],
    );
    assert_eq!(status, 200, "{body}");
    let service_access_token = body["access_token"].as_str().unwrap().to_owned();
    // It asked to be an introspection client and is not: another client's
    // token is inactive to it.
    let rs_token = {
        let (status, body, _) = token_request(
            &server,
            "rs",
            &rs_secret,
            &[("grant_type", "client_credentials")],
        );
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        introspect_token(&server, &service_id, &service_secret, &rs_token)["active"],
        false
    );

    // A token of two uses registers a public native app; it runs an
    // authorization code flow with PKCE (and is asked for consent: never trusted).
    let twice = create_initial_access_token(&server, &["--uses", "2"], &[]);
    let (status, app, _) = register(&server, Some(&twice), &native_app_metadata());
    assert_eq!(status, 201, "{app}");
    let app_id = app["client_id"].as_str().unwrap().to_owned();
    assert!(app.get("client_secret").is_none(), "public: {app}");
    assert!(
        app.get("client_secret_expires_at").is_none(),
        "public: {app}"
    );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &app_id)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("scope", "read")
        .append_pair("state", "st4te")
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256");
    let done = approve(&Browser::new(), &server, url.as_str());
    let code = redirect_params(&done.location(), false)["code"].clone();
    let response = http()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", app_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier.secret().as_str()),
        ])
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().unwrap();
    assert_eq!(tokens["scope"], "read", "{tokens}");
    let (status, _, _) = register(&server, Some(&twice), &native_app_metadata());
    assert_eq!(status, 201, "the second use");
    assert_unauthorized(&register(&server, Some(&twice), &native_app_metadata()));

    // A multi-use token, and the RFC 7591 errors over HTTP.
    let many = create_initial_access_token(&server, &["--multi-use"], &[]);
    let (status, body, headers) = register(
        &server,
        Some(&many),
        &json!({"redirect_uris": ["https://app.example/cb#fragment"]}),
    );
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_redirect_uri")),
        "{body}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    let (status, body, _) = register(
        &server,
        Some(&many),
        &json!({"grant_types": ["client_credentials"], "scope": "admin"}),
    );
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_client_metadata")),
        "{body}"
    );
    for _ in 0..3 {
        let (status, body, _) = register(&server, Some(&many), &service_metadata());
        assert_eq!(status, 201, "{body}");
    }

    // RFC 7592 read: only with the client's own registration access token.
    let (status, read, headers) = configure(
        &server,
        reqwest::Method::GET,
        &service_id,
        &service_token,
        None,
    );
    assert_eq!(status, 200, "{read}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(read["client_id"], service_id);
    assert_eq!(read["scope"], "read");
    assert!(
        read.get("client_secret").is_none(),
        "never read back: {read}"
    );
    assert!(read.get("registration_access_token").is_none(), "{read}");
    assert_unauthorized(&configure(
        &server,
        reqwest::Method::GET,
        &service_id,
        "wrong",
        None,
    ));
    assert_unauthorized(&configure(
        &server,
        reqwest::Method::GET,
        &app_id,
        &service_token,
        None,
    ));
    assert_unauthorized(&configure(
        &server,
        reqwest::Method::GET,
        "rs",
        &service_token,
        None,
    ));

    // RFC 7592 update: a full replacement, checked again; the secret stays.
    let mut update = service_metadata();
    update["client_id"] = json!(service_id);
    update["client_name"] = json!("Renamed service");
    update["scope"] = json!("read write");
    let (status, updated, _) = configure(
        &server,
        reqwest::Method::PUT,
        &service_id,
        &service_token,
        Some(&update),
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["client_name"], "Renamed service");
    assert_eq!(updated["scope"], "read write");
    let (status, body, _) = token_request(
        &server,
        &service_id,
        &service_secret,
        &[("grant_type", "client_credentials"), ("scope", "write")],
    );
    assert_eq!(status, 200, "the old secret, the new scope: {body}");
    let refused_updates = [
        json!({"grant_types": ["client_credentials"]}),
        json!({"client_id": service_id, "grant_types": ["client_credentials"], "client_secret": "not-the-secret"}),
        json!({"client_id": service_id, "grant_types": ["client_credentials"], "registration_access_token": service_token}),
        json!({"client_id": service_id, "token_endpoint_auth_method": "none", "redirect_uris": [CALLBACK]}),
        json!({"client_id": service_id, "grant_types": ["client_credentials"], "scope": "admin"}),
    ];
    for refused in refused_updates {
        let (status, body, _) = configure(
            &server,
            reqwest::Method::PUT,
            &service_id,
            &service_token,
            Some(&refused),
        );
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("invalid_client_metadata")),
            "{refused}: {body}"
        );
    }
    let (status, body, _) = configure(
        &server,
        reqwest::Method::PUT,
        &service_id,
        &service_token,
        Some(&json!({"client_id": service_id, "redirect_uris": ["http://app.example/cb"]})),
    );
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_redirect_uri")),
        "{body}"
    );

    // RFC 7592 delete: the client and its tokens are gone at once.
    assert_eq!(
        introspect_token(&server, "rs", &rs_secret, &service_access_token)["active"],
        true
    );
    let (status, _, headers) = configure(
        &server,
        reqwest::Method::DELETE,
        &service_id,
        &service_token,
        None,
    );
    assert_eq!(status, 204);
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(
        introspect_token(&server, "rs", &rs_secret, &service_access_token)["active"],
        false,
        "a deleted client's tokens are inactive"
    );
    let (status, body, _) = token_request(
        &server,
        &service_id,
        &service_secret,
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(
        (status, &body["error"]),
        (401, &json!("invalid_client")),
        "{body}"
    );
    assert_unauthorized(&configure(
        &server,
        reqwest::Method::GET,
        &service_id,
        &service_token,
        None,
    ));
    let listed = grantbox(&server.db, &["client", "list"], None);
    assert!(
        !text(&listed.stdout).contains(&service_id),
        "{}",
        text(&listed.stdout)
    );
    assert!(
        text(&listed.stdout).contains(&app_id),
        "{}",
        text(&listed.stdout)
    );
}

/// An in-process app with registration open to initial access tokens.
fn open_in_process(initial_access_token_required: bool) -> InProcess {
    InProcess::start_with_config(RawConfig {
        registration: RawRegistration {
            enabled: Some(true),
            initial_access_token_required: Some(initial_access_token_required),
            scopes: Some(vec!["read".into(), "write".into()]),
        },
        ..RawConfig::default()
    })
}

fn register_in_process(
    app: &InProcess,
    token: Option<&str>,
    body: &str,
    content_type: &str,
) -> (u16, Value, String) {
    let mut call =
        Call::post("/register", body.as_bytes().to_vec()).header("content-type", content_type);
    if let Some(token) = token {
        call = call.header("authorization", &format!("Bearer {token}"));
    }
    let reply = app.send(call);
    let cache = reply
        .headers
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (reply.status, reply.json(), cache)
}

/// Every RFC 7591 §3.2.2 refusal: 400, JSON, never cached, nothing stored,
/// and the single-use initial access token not spent.
#[test]
fn registration_errors_of_rfc_7591() {
    let app = open_in_process(true);
    let token = app.initial_access_token(Some(1));
    let json = "application/json";
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"redirect_uris":["https://app.example/cb#x"]}"#,
            json,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["http://app.example/cb"]}"#,
            json,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["javascript:alert(1)"]}"#,
            json,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["/relative"]}"#,
            json,
            "invalid_redirect_uri",
        ),
        (
            r#"{"grant_types":["authorization_code"]}"#,
            json,
            "invalid_redirect_uri",
        ),
        (r#"{}"#, json, "invalid_redirect_uri"),
        (
            r#"{"redirect_uris":["https://app.example/cb"],"grant_types":["authorization_code"],"response_types":["token"]}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"redirect_uris":["https://app.example/cb"],"response_types":["code id_token"]}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":["password"]}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":["urn:example:not-offered"]}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":["Client_Credentials"]}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":["client_credentials"],"token_endpoint_auth_method":"tls_client_auth"}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":["client_credentials"],"token_endpoint_auth_method":"none"}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":["client_credentials"],"scope":"read admin"}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":["client_credentials"],"client_uri":"http://app.example/"}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":["client_credentials"],"client_name":"bad\u0007name"}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":["client_credentials"],"redirect_uris":"https://app.example/cb"}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":"client_credentials"}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":["client_credentials"],"scope":["read"]}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":["client_credentials"],"jwks_uri":"https://app.example/jwks"}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt"}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[]}}"#,
            json,
            "invalid_client_metadata",
        ),
        (
            r#"{"grant_types":["client_credentials"],"jwks":{"keys":[]}}"#,
            json,
            "invalid_client_metadata",
        ),
        (r#"["client_credentials"]"#, json, "invalid_client_metadata"),
        (
            r#"{"grant_types":["client_credentials"]"#,
            json,
            "invalid_client_metadata",
        ),
        (
            "grant_types=client_credentials",
            "application/x-www-form-urlencoded",
            "invalid_request",
        ),
    ];
    for (body, content_type, error) in cases {
        let (status, answer, cache) = register_in_process(&app, Some(&token), body, content_type);
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some(*error)),
            "{body}: {answer}"
        );
        assert!(answer["error_description"].is_string(), "{body}: {answer}");
        assert_eq!(cache, "no-store", "{body}");
    }
    // None of them spent the single use, and a valid request still gets it.
    let (status, answer, _) = register_in_process(
        &app,
        Some(&token),
        r#"{"grant_types":["client_credentials"],"scope":"read","trusted":true,"introspection":true}"#,
        json,
    );
    assert_eq!(status, 201, "{answer}");
    let client = app
        .find_client(answer["client_id"].as_str().unwrap())
        .expect("stored");
    assert!(
        !client.trusted && !client.introspection && !client.public,
        "{client:?}"
    );
    assert_eq!(client.scopes, ["read"]);
    let (status, _, _) = register_in_process(
        &app,
        Some(&token),
        r#"{"grant_types":["client_credentials"]}"#,
        json,
    );
    assert_eq!(status, 401, "used up");
}

/// With `initial_access_token_required = false`, anyone may register.
#[test]
fn open_registration_needs_no_initial_access_token() {
    let app = open_in_process(false);
    let (status, answer, _) = register_in_process(
        &app,
        None,
        r#"{"redirect_uris":["com.example.app:/cb"],"token_endpoint_auth_method":"none"}"#,
        "application/json",
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["grant_types"], json!(["authorization_code"]));
    assert_eq!(answer["response_types"], json!(["code"]));
    assert!(
        app.find_client(answer["client_id"].as_str().unwrap())
            .is_some_and(|c| c.public)
    );
    // A client that authenticates with its keys gets no secret; its keys are
    // registered as sent and read back.
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
    let metadata = json!({"grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks});
    let (status, answer, _) =
        register_in_process(&app, None, &metadata.to_string(), "application/json");
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(answer["jwks"], jwks);
    assert!(answer.get("client_secret").is_none(), "{answer}");
    assert!(answer.get("client_secret_expires_at").is_none(), "{answer}");
    let closed = InProcess::start();
    let reply = closed
        .send(Call::post("/register", b"{}".to_vec()).header("content-type", "application/json"));
    assert_eq!(reply.status, 404);
}

/// Registrations and the RFC 7592 changes are in the audit trail under the
/// client's own name, token creation under the CLI's, and no record holds
/// a token or a secret.
#[test]
fn registrations_and_their_changes_are_audited_without_secrets() {
    let app = open_in_process(true);
    let token = app.initial_access_token(None);
    let (status, registered, _) = register_in_process(
        &app,
        Some(&token),
        r#"{"grant_types":["client_credentials"],"scope":"read"}"#,
        "application/json",
    );
    assert_eq!(status, 201, "{registered}");
    let client_id = registered["client_id"].as_str().unwrap();
    let secret = registered["client_secret"].as_str().unwrap();
    let registration_token = registered["registration_access_token"].as_str().unwrap();
    let path = format!("/register/{client_id}");
    let bearer = format!("Bearer {registration_token}");
    let update =
        json!({"client_id": client_id, "grant_types": ["client_credentials"], "scope": "write"});
    let reply = app.send(
        Call::post(&path, update.to_string())
            .method(http::Method::PUT)
            .header("content-type", "application/json")
            .header("authorization", &bearer),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(app.find_client(client_id).unwrap().scopes, ["write"]);
    let call = Call::get(&path)
        .method(http::Method::DELETE)
        .header("authorization", &bearer);
    assert_eq!(app.send(call).status, 204);
    assert!(app.find_client(client_id).is_none());

    let records = app.audit_records();
    let by_client = format!("registration:{client_id}");
    let actions: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.actor.as_str(), r.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("cli", "registration_token.create"),
            (by_client.as_str(), "client.register"),
            (by_client.as_str(), "client.update"),
            (by_client.as_str(), "client.remove"),
        ]
    );
    for record in &records {
        let text = format!("{record:?}");
        for secret in [token.as_str(), secret, registration_token] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}
