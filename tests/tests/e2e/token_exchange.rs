//! OAuth 2.0 Token Exchange (RFC 8693) from `examples/grant-token-exchange`,
//! built for wasm32-wasip2, installed with its own `plugin.toml` (plus a
//! policy in `[config]`) and served by the real binary: a resource server
//! trades a user's access token for one restricted to other audiences
//! (impersonation) or one that names itself as actor (delegation), and
//! `/introspect` shows `aud` and `act`; every refusal RFC 8693 names; only
//! this grant takes repeated `audience`; without `token-exchange` in its
//! manifest the host denies the capability.

use serde_json::Value;

use crate::harness::{
    Options, Server, alice_password_request, confidential_client, http, install_plugin,
    introspect_token, test_plugin_wasm, token_request, user_add, workspace,
};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const PASSWORD: &str = "correct horse battery staple";

/// The running server and the secrets of its clients: `web` (gets alice's
/// token by the password grant), `orders-api` (exchanges, with a policy),
/// `stranger` (registered for the grant but without a policy) and `rs` (a
/// resource server that introspects).
struct Setup {
    server: Server,
    _plugins: tempfile::TempDir,
    web: String,
    orders_api: String,
    stranger: String,
    rs: String,
}

/// The example's own `plugin.toml`, with the wasm's hash and a policy for
/// `orders-api` added.
fn manifest() -> String {
    let example =
        std::fs::read_to_string(workspace().join("examples/grant-token-exchange/plugin.toml"))
            .expect("the example has a plugin.toml");
    let with_hash = example.replace(
        "file = \"grant_token_exchange.wasm\"",
        "file = \"{wasm}\"\nsha256 = \"{sha256}\"",
    );
    assert_ne!(with_hash, example, "the example names its wasm file");
    format!(
        "{with_hash}\n[config.clients.orders-api]\naudiences = [\"billing\", \"shipping\"]\nresources = [\"https://billing.example/api\"]\n"
    )
}

fn setup() -> Setup {
    setup_with(&manifest())
}

fn setup_with(manifest: &str) -> Setup {
    let wasm = test_plugin_wasm("grant-token-exchange");
    let plugins = tempfile::tempdir().unwrap();
    install_plugin(plugins.path(), "grant-token-exchange", &wasm, manifest);
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    user_add(&server, "alice", PASSWORD);
    let web = confidential_client(
        &server,
        "web",
        &["password", "refresh_token"],
        &["orders:read", "orders:write", "email"],
    );
    let orders_api = confidential_client(
        &server,
        "orders-api",
        &[GRANT_TYPE, "client_credentials"],
        &["orders:read", "orders:write"],
    );
    let stranger = confidential_client(&server, "stranger", &[GRANT_TYPE], &["orders:read"]);
    let rs = server.client_add(&["rs", "--introspection"]).unwrap();
    Setup {
        server,
        _plugins: plugins,
        web,
        orders_api,
        stranger,
        rs,
    }
}

impl Setup {
    /// alice's access and refresh tokens, issued to `web`.
    fn alice_tokens(&self) -> (String, String) {
        let (status, body, _) = alice_password_request(
            &self.server,
            "web",
            &self.web,
            Some("orders:read orders:write email"),
        );
        assert_eq!(status, 200, "{body}");
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    fn exchange(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let mut full = vec![("grant_type", GRANT_TYPE)];
        full.extend_from_slice(form);
        let (status, body, headers) =
            token_request(&self.server, "orders-api", &self.orders_api, &full);
        if status == 200 {
            assert_eq!(headers["cache-control"], "no-store");
        }
        (status, body)
    }

    fn introspect(&self, token: &str) -> Value {
        introspect_token(&self.server, "rs", &self.rs, token)
    }
}

#[test]
fn impersonation_restricts_the_audience_and_narrows_the_scope() {
    let setup = setup();
    let (alice, _) = setup.alice_tokens();
    let alice_sub = setup.introspect(&alice)["sub"].clone();
    assert!(alice_sub.is_string());

    let (status, body) = setup.exchange(&[
        ("subject_token", &alice),
        ("subject_token_type", ACCESS_TOKEN),
        ("requested_token_type", ACCESS_TOKEN),
        ("audience", "billing"),
        ("audience", "shipping"),
        ("resource", "https://billing.example/api"),
        ("scope", "orders:read"),
    ]);
    assert_eq!(status, 200, "{body}\n{}", setup.server.logs());
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "orders:read");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    assert!(body.get("refresh_token").is_none(), "{body}");

    let exchanged = setup.introspect(body["access_token"].as_str().unwrap());
    assert_eq!(exchanged["active"], true, "{exchanged}");
    assert_eq!(exchanged["sub"], alice_sub);
    assert_eq!(exchanged["client_id"], "orders-api");
    assert_eq!(exchanged["scope"], "orders:read");
    assert_eq!(
        exchanged["aud"],
        serde_json::json!(["billing", "shipping", "https://billing.example/api"])
    );
    assert!(exchanged.get("act").is_none(), "impersonation: {exchanged}");
    // The subject token is untouched and has no audience restriction.
    let original = setup.introspect(&alice);
    assert_eq!(original["active"], true);
    assert!(original.get("aud").is_none(), "{original}");

    // Without `scope`, the subject token's scope as far as the client is
    // registered for it (`email` is not).
    let (status, body) = setup.exchange(&[
        ("subject_token", &alice),
        ("subject_token_type", ACCESS_TOKEN),
    ]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "orders:read orders:write");
}

#[test]
fn delegation_shows_the_actor_and_revoking_the_subject_grant_revokes_it() {
    let setup = setup();
    let (alice, alice_refresh) = setup.alice_tokens();
    let (status, body, _) = token_request(
        &setup.server,
        "orders-api",
        &setup.orders_api,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "orders:read"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let actor_token = body["access_token"].as_str().unwrap().to_owned();
    // Let the clock move on by a second, so that a token issued now with
    // the full lifetime would outlive the two it is exchanged for.
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let (status, body) = setup.exchange(&[
        ("subject_token", &alice),
        ("subject_token_type", ACCESS_TOKEN),
        ("actor_token", &actor_token),
        ("actor_token_type", ACCESS_TOKEN),
        ("audience", "billing"),
    ]);
    assert_eq!(status, 200, "{body}");
    let delegated = body["access_token"].as_str().unwrap().to_owned();
    let introspected = setup.introspect(&delegated);
    assert_eq!(introspected["sub"], setup.introspect(&alice)["sub"]);
    // A client's own token has no subject: the client is the actor (RFC 8693 §4.1).
    assert_eq!(
        introspected["act"],
        serde_json::json!({"sub": "orders-api"})
    );
    assert_eq!(introspected["aud"], serde_json::json!(["billing"]));
    let ends = |token: &str| setup.introspect(token)["exp"].as_i64().unwrap();
    assert_eq!(
        introspected["exp"].as_i64().unwrap(),
        ends(&alice).min(ends(&actor_token)),
        "an exchanged token ends with the tokens it was exchanged for"
    );
    assert_eq!(
        body["expires_in"].as_i64().unwrap(),
        introspected["exp"].as_i64().unwrap() - introspected["iat"].as_i64().unwrap()
    );

    // web revokes alice's refresh token (RFC 7009): the whole grant goes,
    // including what orders-api obtained by exchanging its access token.
    let response = http()
        .post(setup.server.url("/revoke"))
        .basic_auth("web", Some(&setup.web))
        .form(&[("token", alice_refresh.as_str())])
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(setup.introspect(&alice)["active"], false);
    assert_eq!(
        setup.introspect(&delegated),
        serde_json::json!({"active": false})
    );
    let (status, body) = setup.exchange(&[
        ("subject_token", &alice),
        ("subject_token_type", ACCESS_TOKEN),
    ]);
    assert_eq!(
        (status, &body["error"]),
        (400, &Value::from("invalid_request"))
    );
}

#[test]
fn refusals_name_the_rfc_8693_errors() {
    let setup = setup();
    let (alice, alice_refresh) = setup.alice_tokens();
    let subject = [
        ("subject_token", alice.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut form = subject.to_vec();
        form.extend_from_slice(extra);
        form
    };
    let jwt = "urn:ietf:params:oauth:token-type:jwt";
    // A form, the error code and a part of its description.
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("subject_token_type", ACCESS_TOKEN)],
            "invalid_request",
            "subject_token",
        ),
        (
            vec![("subject_token", &alice)],
            "invalid_request",
            "subject_token_type",
        ),
        (
            vec![("subject_token", &alice), ("subject_token_type", jwt)],
            "invalid_request",
            "subject_token_type",
        ),
        (
            vec![
                ("subject_token", "not-a-token-of-this-server"),
                ("subject_token_type", ACCESS_TOKEN),
            ],
            "invalid_request",
            "subject_token is not an active access token of this server",
        ),
        (
            vec![
                ("subject_token", &alice_refresh),
                ("subject_token_type", ACCESS_TOKEN),
            ],
            "invalid_request",
            "subject_token is not an access token",
        ),
        (
            with(&[("actor_token", "whatever")]),
            "invalid_request",
            "actor_token_type is required",
        ),
        (
            with(&[("actor_token_type", ACCESS_TOKEN)]),
            "invalid_request",
            "without actor_token",
        ),
        (
            with(&[
                ("actor_token", "unknown"),
                ("actor_token_type", ACCESS_TOKEN),
            ]),
            "invalid_request",
            "actor_token is not an active access token",
        ),
        (
            with(&[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )]),
            "invalid_request",
            "requested_token_type",
        ),
        (
            with(&[("audience", "billing"), ("audience", "payroll")]),
            "invalid_target",
            "audience payroll",
        ),
        (
            with(&[("resource", "https://evil.example/")]),
            "invalid_target",
            "resource https://evil.example/",
        ),
        (
            with(&[("resource", "billing")]),
            "invalid_request",
            "absolute URI",
        ),
        (
            with(&[
                ("scope", "orders:read orders:write"),
                ("scope", "orders:read"),
            ]),
            "invalid_request",
            "parameter scope is repeated",
        ),
        (
            with(&[("subject_token", "again")]),
            "invalid_request",
            "parameter subject_token is repeated",
        ),
    ];
    for (form, error, description) in cases {
        let (status, body) = setup.exchange(&form);
        assert_eq!(status, 400, "{form:?}: {body}");
        assert_eq!(body["error"], error, "{form:?}: {body}");
        let text = body["error_description"].as_str().unwrap_or_default();
        assert!(text.contains(description), "{form:?}: {body}");
    }

    // A scope the client is registered for but the subject token lacks is
    // the plugin's refusal (one it is not registered for, the host's).
    let (status, body, _) =
        alice_password_request(&setup.server, "web", &setup.web, Some("orders:read"));
    assert_eq!(status, 200, "{body}");
    let read_only = body["access_token"].as_str().unwrap();
    let (status, body) = setup.exchange(&[
        ("subject_token", read_only),
        ("subject_token_type", ACCESS_TOKEN),
        ("scope", "orders:read orders:write"),
    ]);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_scope", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("orders:write is not granted by the subject_token"),
        "{body}"
    );

    // A client registered for the grant but without a policy.
    let (status, body, _) = token_request(
        &setup.server,
        "stranger",
        &setup.stranger,
        &[
            ("grant_type", GRANT_TYPE),
            ("subject_token", &alice),
            ("subject_token_type", ACCESS_TOKEN),
        ],
    );
    assert_eq!(
        (status, &body["error"]),
        (400, &Value::from("unauthorized_client"))
    );
}

#[test]
fn only_the_token_exchange_grant_takes_repeated_audience() {
    let setup = setup();
    // client_credentials declares no repeatable parameter: RFC 6749 §3.1 holds.
    let (status, body, _) = token_request(
        &setup.server,
        "orders-api",
        &setup.orders_api,
        &[
            ("grant_type", "client_credentials"),
            ("audience", "billing"),
            ("audience", "shipping"),
        ],
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body["error_description"], "parameter audience is repeated");

    // The same at the RFC 8693 grant, which declares `audience` repeatable.
    let (alice, _) = setup.alice_tokens();
    let (status, body) = setup.exchange(&[
        ("subject_token", &alice),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "billing"),
        ("audience", "shipping"),
    ]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        setup.introspect(body["access_token"].as_str().unwrap())["aud"],
        serde_json::json!(["billing", "shipping"])
    );
}

#[test]
fn without_the_capability_in_its_manifest_the_plugin_is_refused_by_the_host() {
    let withheld = manifest().replace(
        "capabilities = [\"token-exchange\", \"config\"]",
        "capabilities = [\"config\"]",
    );
    assert_ne!(withheld, manifest(), "the example asks for token-exchange");
    let setup = setup_with(&withheld);
    let (alice, _) = setup.alice_tokens();
    let (status, body) = setup.exchange(&[
        ("subject_token", &alice),
        ("subject_token_type", ACCESS_TOKEN),
    ]);
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "server_error");
    let denied = |l: &str| l.contains("was not granted") && l.contains("token-exchange");
    let logs = setup.server.logs_once(denied);
    assert!(logs.lines().any(denied), "{logs}");
    let metrics = setup.server.metrics();
    assert!(
        metrics.contains(
            r#"grantbox_plugin_denied_calls_total{plugin="grant-token-exchange",capability="token-exchange"} 1"#
        ),
        "{metrics}"
    );
}
