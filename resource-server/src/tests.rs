//! The layer, extractor and cache against a fake Grantbox (an axum server on
//! a loopback port that answers discovery and introspection from a table and
//! counts the introspections), with the crate's clock moved by hand.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower::ServiceExt as _;

use super::*;

/// The fake authorization server: what `/introspect` answers per token, and
/// how often it was asked.
#[derive(Default)]
struct Fake {
    answers: Mutex<HashMap<String, serde_json::Value>>,
    introspections: AtomicUsize,
    status: Mutex<Option<StatusCode>>,
}

impl Fake {
    fn answer(&self, token: &str, body: serde_json::Value) {
        self.answers.lock().unwrap().insert(token.into(), body);
    }

    fn asked(&self) -> usize {
        self.introspections.load(Ordering::SeqCst)
    }
}

async fn start_fake() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let metadata = serde_json::json!({
        "issuer": base,
        "introspection_endpoint": format!("{base}/introspect"),
    });
    let state = fake.clone();
    let router = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || async move { axum::Json(metadata) }),
        )
        .route(
            "/introspect",
            post(
                move |headers: axum::http::HeaderMap, body: String| async move {
                    state.introspections.fetch_add(1, Ordering::SeqCst);
                    if let Some(status) = *state.status.lock().unwrap() {
                        return (status, axum::Json(serde_json::json!({}))).into_response();
                    }
                    // Basic rs:secret
                    assert_eq!(headers["authorization"], "Basic cnM6c2VjcmV0");
                    let token = form_urlencoded::parse(body.as_bytes())
                        .find(|(name, _)| name == "token")
                        .map(|(_, value)| value.into_owned())
                        .unwrap_or_default();
                    let answer = state
                        .answers
                        .lock()
                        .unwrap()
                        .get(&token)
                        .cloned()
                        .unwrap_or(serde_json::json!({"active": false}));
                    axum::Json(answer).into_response()
                },
            ),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
    (fake, base)
}

fn now_s(clock: &Clock) -> i64 {
    clock.now_ms() / 1000
}

fn active(clock: &Clock, scope: &str, lifetime: i64) -> serde_json::Value {
    serde_json::json!({
        "active": true, "scope": scope, "client_id": "web", "sub": "alice",
        "token_type": "Bearer", "exp": now_s(clock) + lifetime, "iat": now_s(clock),
        "iss": "x",
    })
}

fn app(resource_server: &ResourceServer) -> Router {
    Router::new()
        .route(
            "/hello",
            get(|auth: Authorized| async move { format!("{:?}", auth.subject) })
                .route_layer(require_scope("read")),
        )
        .route("/echo", post(|body: String| async move { body }))
        .layer(resource_server.layer())
}

struct Reply {
    status: u16,
    challenge: String,
    retry_after: Option<String>,
    body: String,
}

async fn call(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let status = response.status().as_u16();
    let challenge = header("www-authenticate").unwrap_or_default();
    let retry_after = header("retry-after");
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        challenge,
        retry_after,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn get_with(token: &str) -> Request<Body> {
    Request::get("/hello")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

async fn setup(change: impl FnOnce(&mut Config)) -> (Arc<Fake>, Clock, Router) {
    let (fake, base) = start_fake().await;
    let mut config = Config::new(base, "rs", "secret");
    config.realm = "test".into();
    change(&mut config);
    let clock = config.clock.clone();
    let resource_server = ResourceServer::new(config).unwrap();
    (fake, clock, app(&resource_server))
}

#[tokio::test]
async fn a_valid_token_passes_and_is_cached_for_the_ttl() {
    let (fake, clock, app) = setup(|_| {}).await;
    fake.answer("good", active(&clock, "read write", 3600));
    let reply = call(&app, get_with("good")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "Some(\"alice\")")
    );
    assert_eq!(call(&app, get_with("good")).await.status, 200);
    assert_eq!(fake.asked(), 1, "the second request came from the cache");
    // Revoked at the server: still passes from the cache until the TTL.
    fake.answer("good", serde_json::json!({"active": false}));
    clock.advance(Duration::from_secs(29));
    assert_eq!(call(&app, get_with("good")).await.status, 200);
    clock.advance(Duration::from_secs(2));
    let reply = call(&app, get_with("good")).await;
    assert_eq!(reply.status, 401);
    assert!(
        reply.challenge.contains("error=\"invalid_token\""),
        "{}",
        reply.challenge
    );
    assert_eq!(fake.asked(), 2);
}

#[tokio::test]
async fn the_cache_never_outlives_the_tokens_exp() {
    let (fake, clock, app) = setup(|_| {}).await;
    fake.answer("short", active(&clock, "read", 10));
    assert_eq!(call(&app, get_with("short")).await.status, 200);
    clock.advance(Duration::from_secs(11));
    // Grantbox (the fake) still calls it active: our own clock says expired.
    let reply = call(&app, get_with("short")).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert!(reply.body.contains("expired"), "{}", reply.body);
    assert_eq!(fake.asked(), 2, "the expired entry was not used");
}

#[tokio::test]
async fn a_zero_ttl_asks_every_time() {
    let (fake, clock, app) = setup(|config| config.cache_ttl = Duration::ZERO).await;
    fake.answer("good", active(&clock, "read", 3600));
    for _ in 0..3 {
        assert_eq!(call(&app, get_with("good")).await.status, 200);
    }
    assert_eq!(fake.asked(), 3);
}

#[tokio::test]
async fn inactive_answers_are_cached_briefly() {
    let (fake, _clock, app) = setup(|_| {}).await;
    assert_eq!(call(&app, get_with("unknown")).await.status, 401);
    assert_eq!(call(&app, get_with("unknown")).await.status, 401);
    assert_eq!(fake.asked(), 1);
    _clock.advance(Duration::from_secs(6));
    assert_eq!(call(&app, get_with("unknown")).await.status, 401);
    assert_eq!(fake.asked(), 2);
}

#[tokio::test]
async fn refresh_tokens_other_audiences_and_missing_scopes_are_refused() {
    let (fake, clock, app) = setup(|config| config.audience = Some("orders".into())).await;
    let mut refresh = active(&clock, "read", 3600);
    refresh.as_object_mut().unwrap().remove("token_type");
    fake.answer("refresh", refresh);
    let mut billing = active(&clock, "read", 3600);
    billing["aud"] = serde_json::json!(["billing"]);
    fake.answer("billing", billing);
    let mut orders = active(&clock, "read", 3600);
    orders["aud"] = serde_json::json!(["billing", "orders"]);
    fake.answer("orders", orders);
    fake.answer("write-only", active(&clock, "write", 3600));

    for token in ["refresh", "billing"] {
        let reply = call(&app, get_with(token)).await;
        assert_eq!(reply.status, 401, "{token}");
        assert_eq!(
            reply.challenge.split(", error_description").next().unwrap(),
            r#"Bearer realm="test", error="invalid_token""#,
            "{token}"
        );
    }
    assert_eq!(call(&app, get_with("orders")).await.status, 200);
    let reply = call(&app, get_with("write-only")).await;
    assert_eq!(reply.status, 403);
    assert!(
        reply
            .challenge
            .starts_with(r#"Bearer realm="test", error="insufficient_scope""#)
            && reply.challenge.ends_with(r#"scope="read""#),
        "{}",
        reply.challenge
    );
}

#[tokio::test]
async fn a_dpop_bound_token_is_not_taken_as_a_bearer_token() {
    let (fake, clock, app) = setup(|_| {}).await;
    let mut bound = active(&clock, "read", 3600);
    bound["token_type"] = "DPoP".into();
    bound["cnf"] = serde_json::json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" });
    fake.answer("bound", bound);
    let reply = call(&app, get_with("bound")).await;
    assert_eq!(reply.status, 401);
    assert!(
        reply.challenge.starts_with("DPoP ")
            && reply.challenge.contains("error=\"invalid_token\"")
            && reply.challenge.contains("DPoP-bound"),
        "{}",
        reply.challenge
    );
}

/// RFC 9449 §7.1: a DPoP-bound token passes with the `DPoP` scheme and a
/// fresh proof of its key for this request, once; anything else is a
/// `DPoP` challenge naming the algorithms.
#[tokio::test]
async fn a_dpop_bound_token_passes_with_a_proof_of_its_key_for_this_request() {
    use crate::dpop::tests::{KEY_A, KEY_B, jkt, proof_for};
    let (fake, clock, app) = setup(|_| {}).await;
    let mut bound = active(&clock, "read", 3600);
    bound["token_type"] = "DPoP".into();
    bound["cnf"] = serde_json::json!({ "jkt": jkt(KEY_A) });
    fake.answer("bound", bound);
    fake.answer("plain", active(&clock, "read", 3600));
    let now = now_s(&clock);
    let request = |token: &str, proof: Option<String>| {
        let mut request = Request::get("/hello")
            .header("host", "api.test")
            .header("authorization", format!("DPoP {token}"));
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        request.body(Body::empty()).unwrap()
    };
    let url = "http://api.test/hello";
    let good = proof_for(KEY_A, "GET", url, "bound", now, "j-1");
    assert_eq!(
        call(&app, request("bound", Some(good.clone())))
            .await
            .status,
        200
    );
    let refused = |reply: Reply, error: &str| {
        assert_eq!(reply.status, 401);
        assert!(
            reply
                .challenge
                .starts_with(r#"DPoP realm="test", algs="ES256 RS256 PS256 EdDSA""#)
                && reply.challenge.contains(&format!("error=\"{error}\"")),
            "{}",
            reply.challenge
        );
    };
    // The same proof again, none, another key's, another URL's.
    refused(
        call(&app, request("bound", Some(good))).await,
        "invalid_dpop_proof",
    );
    refused(
        call(&app, request("bound", None)).await,
        "invalid_dpop_proof",
    );
    let other_key = proof_for(KEY_B, "GET", url, "bound", now, "j-2");
    refused(
        call(&app, request("bound", Some(other_key))).await,
        "invalid_dpop_proof",
    );
    let other_url = proof_for(KEY_A, "GET", "http://api.test/other", "bound", now, "j-3");
    refused(
        call(&app, request("bound", Some(other_url))).await,
        "invalid_dpop_proof",
    );
    // A bearer token sent with the DPoP scheme.
    let plain = proof_for(KEY_A, "GET", url, "plain", now, "j-4");
    refused(
        call(&app, request("plain", Some(plain))).await,
        "invalid_token",
    );
}

#[tokio::test]
async fn missing_malformed_and_doubled_tokens() {
    let (fake, clock, app) = setup(|_| {}).await;
    fake.answer("good", active(&clock, "read", 3600));
    let reply = call(&app, Request::get("/hello").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (reply.status, reply.challenge.as_str()),
        (401, r#"Bearer realm="test""#)
    );
    let reply = call(&app, get_with("not a token")).await;
    assert_eq!(reply.status, 401);
    assert!(reply.challenge.contains("invalid_token"));
    // The query method is off by default: a token there is not seen.
    let reply = call(
        &app,
        Request::get("/hello?access_token=good")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (reply.status, reply.challenge.as_str()),
        (401, r#"Bearer realm="test""#)
    );
    assert_eq!(fake.asked(), 0, "nothing was introspected");
}

#[tokio::test]
async fn form_body_and_query_when_enabled_and_never_two_at_once() {
    let (fake, clock, app) = setup(|config| {
        config.token_in_form_body = true;
        config.token_in_query = true;
        config.form_body_limit = 1024;
    })
    .await;
    fake.answer("good", active(&clock, "read", 3600));
    let form = |body: String| {
        Request::post("/echo")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let reply = call(&app, form("access_token=good&x=1".into())).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body, "access_token=good&x=1",
        "the handler still gets the body"
    );
    let reply = call(
        &app,
        Request::get("/hello?access_token=good")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = call(
        &app,
        Request::get("/hello?access_token=good")
            .header("authorization", "Bearer good")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(reply.challenge.contains("error=\"invalid_request\""));
    let reply = call(
        &app,
        form(format!("access_token=good&x={}", "y".repeat(2000))),
    )
    .await;
    assert_eq!(reply.status, 413);
}

#[tokio::test]
async fn an_unreachable_or_failing_grantbox_is_503_not_401() {
    let (fake, clock, app) = setup(|_| {}).await;
    fake.answer("good", active(&clock, "read", 3600));
    *fake.status.lock().unwrap() = Some(StatusCode::INTERNAL_SERVER_ERROR);
    let reply = call(&app, get_with("good")).await;
    assert_eq!(
        (reply.status, reply.retry_after.as_deref()),
        (503, Some("5"))
    );
    assert!(reply.challenge.is_empty());
    // It recovers (discovery again, then introspection).
    *fake.status.lock().unwrap() = None;
    assert_eq!(call(&app, get_with("good")).await.status, 200);

    // Nobody listening at all.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let resource_server = ResourceServer::new(Config::new(closed, "rs", "secret")).unwrap();
    let reply = call(&super::tests::app(&resource_server), get_with("good")).await;
    assert_eq!(
        (reply.status, reply.retry_after.as_deref()),
        (503, Some("5"))
    );
}

#[test]
fn configurations_that_cannot_work_are_refused() {
    let check = |issuer: &str, client_id: &str| {
        ResourceServer::new(Config::new(issuer, client_id, "s")).is_err()
    };
    assert!(check("not a url", "rs"));
    assert!(check("ftp://example.com", "rs"));
    assert!(check("https://example.com/?x=1", "rs"));
    assert!(check("https://example.com", ""));
    assert!(!check("https://example.com", "rs"));
    assert!(!check("http://127.0.0.1:8080", "rs"));
}

/// An https issuer is reached over TLS: a server that does not speak TLS
/// fails the handshake, which is Grantbox being unreachable (503), never a
/// plain-text request carrying the resource server's credentials.
#[tokio::test]
async fn an_https_issuer_is_reached_over_tls() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut first = [0u8; 5];
        use tokio::io::AsyncReadExt as _;
        let _ = socket.read(&mut first).await;
        first
    });
    let resource_server =
        ResourceServer::new(Config::new(format!("https://{address}"), "rs", "secret")).unwrap();
    let reply = call(&super::tests::app(&resource_server), get_with("good")).await;
    assert_eq!(reply.status, 503);
    // A TLS ClientHello starts with a handshake record (0x16, version 3.x).
    let first = received.await.unwrap();
    assert_eq!(&first[..2], &[0x16, 0x03], "{first:?}");
}
