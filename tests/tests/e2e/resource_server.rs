//! `grantbox-resource-server` in front of a small axum API, against the real
//! binary: a token from each grant passes; an expired token (by the resource
//! server's test clock, and by Grantbox's own lifetime), a revoked one after
//! the cache bound, one of another audience (from the token-exchange
//! example) and a refresh token are 401 `invalid_token`; a missing scope is
//! 403; Grantbox down is 503; and a revoked token passes from the cache for
//! at most the TTL.

use std::time::Duration;

use grantbox_resource_server::axum::routing::{get, post};
use grantbox_resource_server::axum::{self, Json, Router};
use grantbox_resource_server::{Authorized, Clock, Config, ResourceServer, require_scope};

use crate::harness::{
    Browser, Options, Server, alice_password_request, approve, http, install_plugin,
    introspect_token, redirect_params, test_plugin_wasm, token_request, user_add, web_client,
    workspace,
};

const PASSWORD: &str = "correct horse battery staple";
const CALLBACK: &str = "http://127.0.0.1:9999/cb";

/// A server with alice, a client `web` registered for every grant with
/// scopes `read` and `write`, and the resource server's client `rs`.
struct Setup {
    server: Server,
    web: String,
    rs: String,
}

fn setup() -> Setup {
    setup_with(Options::default())
}

fn setup_with(options: Options) -> Setup {
    let server = Server::start_with(options);
    user_add(&server, "alice", PASSWORD);
    let web = web_client(
        &server,
        CALLBACK,
        &[
            "--grant-type",
            "password",
            "--grant-type",
            "client_credentials",
            "--grant-type",
            "refresh_token",
            "--scope",
            "read",
            "--scope",
            "write",
        ],
    );
    let rs = server
        .client_add(&[
            "rs",
            "--introspection",
            "--grant-type",
            "client_credentials",
        ])
        .expect("rs is confidential");
    Setup { server, web, rs }
}

impl Setup {
    fn token(&self, form: &[(&str, &str)]) -> serde_json::Value {
        let (status, body, _) = token_request(&self.server, "web", &self.web, form);
        assert_eq!(status, 200, "{body}");
        body
    }

    /// alice's tokens by the password grant.
    fn password(&self, scope: &str) -> (String, String) {
        let body = self.token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("scope", scope),
        ]);
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    fn client_credentials(&self, scope: &str) -> String {
        self.token(&[("grant_type", "client_credentials"), ("scope", scope)])["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn revoke(&self, token: &str) {
        let response = http()
            .post(self.server.url("/revoke"))
            .basic_auth("web", Some(&self.web))
            .form(&[("token", token)])
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }

    fn api(&self, change: impl FnOnce(&mut Config)) -> Api {
        let mut config = Config::new(&self.server.base, "rs", &self.rs);
        config.realm = "e2e-api".into();
        change(&mut config);
        Api::start(config)
    }
}

/// The protected API, served on its own runtime on a loopback port.
struct Api {
    base: String,
    clock: Clock,
    _runtime: tokio::runtime::Runtime,
}

/// One answer of the API.
#[derive(Debug)]
struct Reply {
    status: u16,
    challenge: String,
    retry_after: Option<String>,
    body: serde_json::Value,
}

async fn whoami(auth: Authorized) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "sub": auth.subject,
        "client_id": auth.client_id,
        "scopes": auth.scopes,
        "aud": auth.audience,
        "exp": auth.expires_at,
    }))
}

impl Api {
    fn start(config: Config) -> Api {
        let clock = config.clock.clone();
        let resource_server = ResourceServer::new(config).expect("a valid configuration");
        let app = Router::new()
            .route("/hello", get(whoami).route_layer(require_scope("read")))
            .route("/items", post(whoami).route_layer(require_scope("write")))
            .layer(resource_server.layer());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Api {
            base,
            clock,
            _runtime: runtime,
        }
    }

    fn send(&self, request: reqwest::blocking::RequestBuilder) -> Reply {
        let response = request.send().expect("the API answers");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let challenge = header("www-authenticate").unwrap_or_default();
        let retry_after = header("retry-after");
        let status = response.status().as_u16();
        let body = response.json().unwrap_or(serde_json::Value::Null);
        Reply {
            status,
            challenge,
            retry_after,
            body,
        }
    }

    fn hello(&self, token: &str) -> Reply {
        self.send(
            http()
                .get(format!("{}/hello", self.base))
                .bearer_auth(token),
        )
    }

    fn items(&self, token: &str) -> Reply {
        self.send(
            http()
                .post(format!("{}/items", self.base))
                .bearer_auth(token),
        )
    }
}

#[track_caller]
fn assert_invalid_token(reply: &Reply) {
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(
        reply
            .challenge
            .starts_with(r#"Bearer realm="e2e-api", error="invalid_token""#),
        "{reply:?}"
    );
}

#[test]
fn a_token_from_each_grant_is_accepted() {
    let setup = setup();
    let api = setup.api(|_| {});

    let token = setup.client_credentials("read");
    let reply = api.hello(&token);
    assert_eq!(reply.status, 200, "client credentials: {reply:?}");
    assert_eq!(reply.body["client_id"], "web");
    assert_eq!(reply.body["sub"], serde_json::Value::Null, "no user");
    assert_eq!(reply.body["scopes"], serde_json::json!(["read"]));

    let (token, refresh) = setup.password("read write");
    let reply = api.hello(&token);
    assert_eq!(reply.status, 200, "password: {reply:?}");
    let alice = reply.body["sub"].clone();
    assert!(alice.is_string(), "{reply:?}");
    assert_eq!(api.items(&token).status, 200, "write granted");

    let refreshed = setup.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]);
    let reply = api.hello(refreshed["access_token"].as_str().unwrap());
    assert_eq!(reply.status, 200, "refresh: {reply:?}");
    assert_eq!(reply.body["sub"], alice);

    // The authorization code flow, as a browser walks it.
    let browser = Browser::new();
    let done = approve(
        &browser,
        &setup.server,
        &setup.server.url(&format!(
            "/authorize?response_type=code&client_id=web&redirect_uri={CALLBACK}&scope=read&state=s"
        )),
    );
    let code = redirect_params(&done.location(), false)["code"].clone();
    let body = setup.token(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CALLBACK),
    ]);
    let reply = api.hello(body["access_token"].as_str().unwrap());
    assert_eq!(reply.status, 200, "authorization code: {reply:?}");
    assert_eq!(reply.body["sub"], alice);
    assert_eq!(reply.body["scopes"], serde_json::json!(["read"]));
}

#[test]
fn missing_malformed_and_unscoped_tokens_get_their_rfc_6750_answers() {
    let setup = setup();
    let api = setup.api(|_| {});
    let reply = api.send(http().get(format!("{}/hello", api.base)));
    assert_eq!(
        (reply.status, reply.challenge.as_str()),
        (401, r#"Bearer realm="e2e-api""#),
        "no error code without a token (RFC 6750 §3.1)"
    );
    assert_invalid_token(&api.hello("not-a-token-grantbox-issued"));
    assert_invalid_token(
        &api.send(
            http()
                .get(format!("{}/hello", api.base))
                .header("authorization", "Bearer a b c"),
        ),
    );

    let read_only = setup.client_credentials("read");
    assert_eq!(api.hello(&read_only).status, 200);
    let reply = api.items(&read_only);
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(
        reply
            .challenge
            .starts_with(r#"Bearer realm="e2e-api", error="insufficient_scope""#)
            && reply.challenge.ends_with(r#", scope="write""#),
        "{reply:?}"
    );

    // With the query method enabled, a token in the header and the query at once.
    let api = setup.api(|config| config.token_in_query = true);
    let reply = api.send(
        http()
            .get(format!("{}/hello?access_token={read_only}", api.base))
            .bearer_auth(&read_only),
    );
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(
        reply.challenge.contains(r#"error="invalid_request""#),
        "{reply:?}"
    );
    let reply = api.send(http().get(format!("{}/hello?access_token={read_only}", api.base)));
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[test]
fn an_expired_token_is_invalid_by_the_test_clock_and_by_grantbox() {
    let setup = setup();
    let api = setup.api(|_| {});
    let token = setup.client_credentials("read");
    let reply = api.hello(&token);
    assert_eq!(reply.status, 200, "{reply:?}");
    let exp = reply.body["exp"].as_i64().unwrap();
    // One hour later by the resource server's clock: the cached answer is
    // not used past exp, Grantbox (whose clock did not move) still says
    // active, and the resource server's own expiry check refuses it.
    api.clock.advance(Duration::from_secs(3601));
    assert!(api.clock.now_ms() / 1000 >= exp);
    let reply = api.hello(&token);
    assert_invalid_token(&reply);
    assert_eq!(reply.body["error_description"], "the token is expired");

    // A token that expires at Grantbox (a 1-second lifetime), real time.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("grantbox.toml");
    std::fs::write(&config, "[tokens]\naccess_token_lifetime = 1\n").unwrap();
    let short = setup_with(Options {
        extra_args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    });
    let api = short.api(|_| {});
    let token = short.client_credentials("read");
    std::thread::sleep(Duration::from_millis(2100));
    assert_invalid_token(&api.hello(&token));
}

#[test]
fn a_revoked_token_passes_from_the_cache_for_at_most_the_ttl() {
    let setup = setup();
    // The default TTL (30 s), on the test clock.
    let api = setup.api(|_| {});
    let (token, _) = setup.password("read");
    assert_eq!(api.hello(&token).status, 200);
    setup.revoke(&token);
    api.clock.advance(Duration::from_secs(29));
    assert_eq!(
        api.hello(&token).status,
        200,
        "revoked, but still within the TTL: served from the cache"
    );
    api.clock.advance(Duration::from_secs(2));
    assert_invalid_token(&api.hello(&token));

    // A short TTL in real time: 1 s.
    let api = setup.api(|config| config.cache_ttl = Duration::from_secs(1));
    let token = setup.client_credentials("read");
    assert_eq!(api.hello(&token).status, 200);
    setup.revoke(&token);
    assert_eq!(api.hello(&token).status, 200, "within the TTL");
    std::thread::sleep(Duration::from_millis(1100));
    assert_invalid_token(&api.hello(&token));

    // No cache: refused at once.
    let api = setup.api(|config| config.cache_ttl = Duration::ZERO);
    let token = setup.client_credentials("read");
    assert_eq!(api.hello(&token).status, 200);
    setup.revoke(&token);
    assert_invalid_token(&api.hello(&token));
}

#[test]
fn a_refresh_token_is_not_an_access_token() {
    let setup = setup();
    let api = setup.api(|_| {});
    let (access, refresh) = setup.password("read");
    assert_eq!(api.hello(&access).status, 200);
    assert_invalid_token(&api.hello(&refresh));

    // Grantbox shows another client's refresh token as inactive; a resource
    // server introspecting its own refresh token sees it active, without
    // `token_type`: the crate's own check refuses it.
    let own = setup
        .server
        .client_add(&[
            "rs-own",
            "--introspection",
            "--grant-type",
            "password",
            "--grant-type",
            "refresh_token",
            "--scope",
            "read",
        ])
        .unwrap();
    let (status, body, _) = alice_password_request(&setup.server, "rs-own", &own, Some("read"));
    assert_eq!(status, 200, "{body}");
    let own_refresh = body["refresh_token"].as_str().unwrap();
    let seen = introspect_token(&setup.server, "rs-own", &own, own_refresh);
    assert_eq!(seen["active"], true, "{seen}");
    let mut config = Config::new(&setup.server.base, "rs-own", &own);
    config.realm = "e2e-api".into();
    let own_api = Api::start(config);
    assert_eq!(
        own_api.hello(body["access_token"].as_str().unwrap()).status,
        200
    );
    let reply = own_api.hello(own_refresh);
    assert_invalid_token(&reply);
    assert_eq!(reply.body["error_description"], "not an access token");
}

#[test]
fn a_token_for_another_audience_is_invalid() {
    // examples/grant-token-exchange mints tokens restricted to audiences.
    let example =
        std::fs::read_to_string(workspace().join("examples/grant-token-exchange/plugin.toml"))
            .unwrap();
    let manifest = format!(
        "{}\n[config.clients.web]\naudiences = [\"billing\", \"shipping\"]\n",
        example.replace(
            "file = \"grant_token_exchange.wasm\"",
            "file = \"{wasm}\"\nsha256 = \"{sha256}\"",
        )
    );
    let wasm = test_plugin_wasm("grant-token-exchange");
    let plugins = tempfile::tempdir().unwrap();
    install_plugin(plugins.path(), "grant-token-exchange", &wasm, &manifest);
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    user_add(&server, "alice", PASSWORD);
    let grant = "urn:ietf:params:oauth:grant-type:token-exchange";
    let web = server
        .client_add(&[
            "web",
            "--grant-type",
            "password",
            "--grant-type",
            grant,
            "--scope",
            "read",
        ])
        .unwrap();
    let rs = server.client_add(&["rs", "--introspection"]).unwrap();
    let setup = Setup { server, web, rs };
    let alice = setup.token(&[
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
        ("scope", "read"),
    ])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let billing = setup.token(&[
        ("grant_type", grant),
        ("subject_token", &alice),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("audience", "billing"),
    ])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let shipping_api = setup.api(|config| config.audience = Some("shipping".into()));
    let reply = shipping_api.hello(&billing);
    assert_invalid_token(&reply);
    assert_eq!(
        reply.body["error_description"],
        "the token is for another audience"
    );
    assert_eq!(
        shipping_api.hello(&alice).status,
        200,
        "an unrestricted token (no aud) passes"
    );
    let billing_api = setup.api(|config| config.audience = Some("billing".into()));
    let reply = billing_api.hello(&billing);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["aud"], serde_json::json!(["billing"]));
}

#[test]
fn grantbox_down_is_503_not_401() {
    let setup = setup();
    let api = setup.api(|_| {});
    let seen = setup.client_credentials("read");
    let unseen = setup.client_credentials("read");
    assert_eq!(api.hello(&seen).status, 200);
    let Setup { server, .. } = setup;
    server.kill();
    let reply = api.hello(&unseen);
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.retry_after.as_deref(), Some("5"));
    assert!(reply.challenge.is_empty(), "not a token problem: {reply:?}");
    assert_eq!(
        api.hello(&seen).status,
        200,
        "a token validated before the outage passes from the cache within the TTL"
    );

    // Wrong credentials of the resource server itself: also 503, not 401.
    let setup = self::setup();
    let mut config = Config::new(&setup.server.base, "rs", "not-the-secret");
    config.realm = "e2e-api".into();
    let api = Api::start(config);
    let reply = api.hello(&setup.client_credentials("read"));
    assert_eq!(reply.status, 503, "{reply:?}");
}

/// RFC 9449 §7: a DPoP-bound token from Grantbox passes the layer with the
/// `DPoP` scheme and a proof of its key for the request (checked against
/// introspection's `cnf.jkt`), once per proof; as a bearer token, or with a
/// proof of another key, it is refused with a `DPoP` challenge.
#[test]
fn a_dpop_bound_token_passes_only_with_a_proof_of_its_key() {
    use crate::dpop::DpopKey;
    let setup = setup();
    let api = setup.api(|_| {});
    let key = DpopKey::generate();
    let token_endpoint = format!("{}/token", setup.server.base);
    let proof = key.proof("POST", &token_endpoint, None);
    let answer = http()
        .post(&token_endpoint)
        .basic_auth("web", Some(&setup.web))
        .header("DPoP", proof)
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let url = format!("{}/hello", api.base);
    let with_proof = |proof: &str| {
        api.send(
            http()
                .get(&url)
                .header("Authorization", format!("DPoP {token}"))
                .header("DPoP", proof),
        )
    };
    let proof = key.proof("GET", &url, Some(&token));
    let reply = with_proof(&proof);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["client_id"], "web");
    let refused = |reply: Reply, error: &str| {
        assert_eq!(reply.status, 401, "{reply:?}");
        assert!(
            reply.challenge.starts_with(r#"DPoP realm="e2e-api""#)
                && reply.challenge.contains(&format!("error=\"{error}\"")),
            "{reply:?}"
        );
    };
    // The same proof again; a proof of another key; the token as a bearer token.
    refused(with_proof(&proof), "invalid_dpop_proof");
    let other = DpopKey::generate().proof("GET", &url, Some(&token));
    refused(with_proof(&other), "invalid_dpop_proof");
    refused(api.hello(&token), "invalid_token");
}
