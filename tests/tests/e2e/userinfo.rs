//! UserInfo (`GET|POST /userinfo`, OpenID Connect Core §5.3) and discovery
//! (`/.well-known/openid-configuration`) over the real binary, on the
//! backend `GRANTBOX_E2E_BACKEND` names, against one shared server: the
//! token in the header (GET, POST) or the POST body, never both; RFC 6750
//! challenges for no token, an unknown, revoked or disabled user's token, a
//! token without a user or without `openid`; the claims each scope
//! releases; opaque and JWT access tokens alike. The consent page naming
//! the claims each scope reveals, in headless Chromium (screenshots
//! `consent-openid-{phone,desktop}.png`).

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::harness::{
    Browser, PASSWORD, Server, allow, grantbox, http, redirect_params, text, token_request,
    visit_as_alice,
};

const CALLBACK: &str = "http://127.0.0.1:9/cb";

/// The module's shared server, its users and clients, and their secrets.
struct World {
    server: Server,
    /// `rp`: the code flow, opaque access tokens.
    rp: String,
    /// `rpjwt`: the code flow, JWT access tokens (RFC 9068).
    rpjwt: String,
    /// `legacy`: the password grant, for users other than alice.
    legacy: String,
    /// `svc`: client credentials (a token without a user).
    svc: String,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let server = Server::start();
        for (user, claims) in [
            (
                "alice",
                &[
                    "name=Alice Liddell",
                    "given_name=Alice",
                    "email=alice@example.com",
                    "email_verified=true",
                    "phone_number=+44 20 7946 0000",
                    r#"address={"formatted":"1 Rabbit Hole","country":"UK"}"#,
                    "favourite_colour=blue",
                ][..],
            ),
            ("bob", &["name=Bob", "email=bob@example.com"][..]),
            ("carol", &["name=Carol"][..]),
        ] {
            let mut args = vec!["user", "add", user, "--password-stdin"];
            for claim in claims {
                args.extend(["--claim", claim]);
            }
            let output = grantbox(&server.db, &args, Some(PASSWORD));
            assert!(output.status.success(), "{}", text(&output.stderr));
        }
        let scopes = [
            "--scope", "openid", "--scope", "profile", "--scope", "email", "--scope", "address",
            "--scope", "phone", "--scope", "read",
        ];
        let code_client = |id: &str, extra: &[&str]| {
            let mut args = vec![
                id,
                "--redirect-uri",
                CALLBACK,
                "--grant-type",
                "authorization_code",
            ];
            args.extend_from_slice(&scopes);
            args.extend_from_slice(extra);
            server.client_add(&args).expect("a secret")
        };
        let rp = code_client("rp", &[]);
        let rpjwt = code_client(
            "rpjwt",
            &[
                "--access-token-format",
                "jwt",
                "--resource",
                "https://api.example",
            ],
        );
        // Only the browser test asks for this one, so its consent is never
        // remembered before it looks.
        code_client("rpui", &["--name", "Example RP"]);
        let mut legacy_args = vec!["legacy", "--grant-type", "password"];
        legacy_args.extend_from_slice(&scopes);
        let legacy = server.client_add(&legacy_args).expect("a secret");
        let svc = server
            .client_add(&[
                "svc",
                "--grant-type",
                "client_credentials",
                "--scope",
                "openid",
                "--scope",
                "read",
            ])
            .expect("a secret");
        World {
            server,
            rp,
            rpjwt,
            legacy,
            svc,
        }
    })
}

/// An access token for alice by the code flow (sign-in and consent in a
/// fresh browser) of `client_id` for `scope`.
fn alice_code_token(client_id: &str, secret: &str, scope: &str) -> String {
    let server = &world().server;
    let browser = Browser::new();
    let url = format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={CALLBACK}&scope={}&state=s",
        server.base,
        scope.replace(' ', "%20"),
    );
    let page = visit_as_alice(&browser, server, &url);
    // Consent is remembered after the first time: then the redirect comes at once.
    let done = if page.status == 200 {
        allow(&browser, server, &page)
    } else {
        page
    };
    assert!(
        done.location().starts_with(CALLBACK),
        "{}: {}",
        done.status,
        done.body
    );
    let code = redirect_params(&done.location(), false)["code"].clone();
    let (status, body, _) = token_request(
        server,
        client_id,
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ],
    );
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// An access token for `username` by the password grant of `legacy`.
fn password_token(username: &str, scope: &str) -> String {
    let world = world();
    let (status, body, _) = token_request(
        &world.server,
        "legacy",
        &world.legacy,
        &[
            ("grant_type", "password"),
            ("username", username),
            ("password", PASSWORD),
            ("scope", scope),
        ],
    );
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// What `/userinfo` answered: status, `WWW-Authenticate`, body.
struct Answer {
    status: u16,
    challenge: Option<String>,
    body: Value,
    cache_control: Option<String>,
    content_type: Option<String>,
}

fn send(request: reqwest::blocking::RequestBuilder) -> Answer {
    let response = request.send().expect("/userinfo answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Answer {
        status: response.status().as_u16(),
        challenge: header("www-authenticate"),
        cache_control: header("cache-control"),
        content_type: header("content-type"),
        body: response.json().unwrap_or(Value::Null),
    }
}

fn get_with(token: &str) -> Answer {
    send(
        http()
            .get(world().server.url("/userinfo"))
            .bearer_auth(token),
    )
}

fn subject_of(username: &str) -> String {
    let output = grantbox(
        &world().server.db,
        &["user", "show", username, "--json"],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let user: Value = serde_json::from_str(&text(&output.stdout)).unwrap();
    user["subject"].as_str().expect("a subject").to_owned()
}

/// Asserts an RFC 6750 §3 refusal: status, the error in the challenge and
/// in the body.
fn assert_refused(answer: &Answer, status: u16, error: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    let challenge = answer.challenge.as_deref().expect("a challenge");
    assert!(
        challenge.starts_with("Bearer realm=\"grantbox\", ")
            && challenge.contains(&format!("error=\"{error}\""))
            && challenge.contains("error_description=\""),
        "{challenge}"
    );
    assert_eq!(answer.body["error"], error, "{}", answer.body);
}

#[test]
fn userinfo_answers_sub_and_the_claims_of_the_granted_scope() {
    let world = world();
    let token = alice_code_token("rp", &world.rp, "openid profile email address phone");
    let answer = get_with(&token);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
    assert!(
        answer
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(
        answer.body,
        json!({
            "sub": subject_of("alice"),
            "name": "Alice Liddell",
            "given_name": "Alice",
            "email": "alice@example.com",
            "email_verified": true,
            "phone_number": "+44 20 7946 0000",
            "address": {"formatted": "1 Rabbit Hole", "country": "UK"},
        }),
        "every standard claim the scopes reveal, never favourite_colour"
    );

    // Fewer scopes, fewer claims; `openid` alone is `sub` alone.
    let email_only = alice_code_token("rp", &world.rp, "openid email");
    assert_eq!(
        get_with(&email_only).body,
        json!({"sub": subject_of("alice"), "email": "alice@example.com", "email_verified": true})
    );
    let bare = password_token("bob", "openid");
    assert_eq!(get_with(&bare).body, json!({"sub": subject_of("bob")}));
}

#[test]
fn userinfo_takes_the_token_by_get_post_header_or_post_body_but_not_both() {
    let world = world();
    let server = &world.server;
    let token = password_token("bob", "openid profile");
    let expected = json!({"sub": subject_of("bob"), "name": "Bob"});

    let by_get = get_with(&token);
    assert_eq!((by_get.status, &by_get.body), (200, &expected));
    let by_post_header = send(http().post(server.url("/userinfo")).bearer_auth(&token));
    assert_eq!(
        (by_post_header.status, &by_post_header.body),
        (200, &expected)
    );
    let by_post_body = send(
        http()
            .post(server.url("/userinfo"))
            .form(&[("access_token", token.as_str())]),
    );
    assert_eq!((by_post_body.status, &by_post_body.body), (200, &expected));

    let both = send(
        http()
            .post(server.url("/userinfo"))
            .bearer_auth(&token)
            .form(&[("access_token", token.as_str())]),
    );
    assert_refused(&both, 400, "invalid_request");
    let in_url = send(
        http()
            .get(server.url(&format!("/userinfo?access_token={token}")))
            .bearer_auth(&token),
    );
    assert_refused(&in_url, 400, "invalid_request");
    let not_bearer = send(
        http()
            .get(server.url("/userinfo"))
            .basic_auth("bob", Some(PASSWORD)),
    );
    assert_refused(&not_bearer, 400, "invalid_request");
}

#[test]
fn userinfo_without_a_token_is_a_bare_challenge() {
    let server = &world().server;
    for request in [
        http().get(server.url("/userinfo")),
        http().post(server.url("/userinfo")),
    ] {
        let answer = send(request);
        assert_eq!(answer.status, 401);
        assert_eq!(
            answer.challenge.as_deref(),
            Some("Bearer realm=\"grantbox\""),
            "RFC 6750 §3.1: no error code when no token was sent"
        );
    }
}

#[test]
fn userinfo_refuses_unknown_revoked_and_refresh_tokens_as_invalid_token() {
    let world = world();
    let server = &world.server;
    assert_refused(&get_with("not-a-token"), 401, "invalid_token");

    let token = password_token("bob", "openid");
    assert_eq!(get_with(&token).status, 200);
    let revoked = http()
        .post(server.url("/revoke"))
        .basic_auth("legacy", Some(&world.legacy))
        .form(&[("token", token.as_str())])
        .send()
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_refused(&get_with(&token), 401, "invalid_token");
}

#[test]
fn userinfo_refuses_tokens_without_a_user_or_without_openid() {
    let world = world();
    let server = &world.server;
    let (status, body, _) = token_request(
        server,
        "svc",
        &world.svc,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "openid read"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let service = get_with(body["access_token"].as_str().unwrap());
    assert_refused(&service, 403, "insufficient_scope");
    assert!(
        service.challenge.unwrap().contains("scope=\"openid\""),
        "RFC 6750 §3: the scope needed"
    );

    let without_openid = password_token("bob", "profile email read");
    assert_refused(&get_with(&without_openid), 403, "insufficient_scope");
}

#[test]
fn userinfo_stops_answering_for_a_disabled_or_removed_user() {
    let world = world();
    let db = &world.server.db;
    let token = password_token("carol", "openid profile");
    assert_eq!(
        get_with(&token).body,
        json!({"sub": subject_of("carol"), "name": "Carol"})
    );
    let run = |args: &[&str]| {
        let output = grantbox(db, args, None);
        assert!(output.status.success(), "{}", text(&output.stderr));
    };
    run(&["user", "disable", "carol"]);
    assert_refused(&get_with(&token), 401, "invalid_token");
    run(&["user", "enable", "carol"]);
    let again = password_token("carol", "openid");
    assert_eq!(get_with(&again).status, 200);
    run(&["user", "remove", "carol"]);
    assert_refused(&get_with(&again), 401, "invalid_token");
}

#[test]
fn userinfo_answers_jwt_access_tokens_like_opaque_ones() {
    let world = world();
    let token = alice_code_token("rpjwt", &world.rpjwt, "openid email");
    assert_eq!(token.split('.').count(), 3, "a JWT access token: {token}");
    let answer = get_with(&token);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body,
        json!({"sub": subject_of("alice"), "email": "alice@example.com", "email_verified": true})
    );
    // The JWT's `sub` is UserInfo's.
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], answer.body["sub"]);
}

#[test]
fn discovery_is_the_rfc_8414_document_with_the_openid_fields() {
    let server = &world().server;
    let fetch = |path: &str| {
        let response = http().get(server.url(path)).send().unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["cache-control"], "max-age=300", "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        response.json::<Value>().unwrap()
    };
    let openid = fetch("/.well-known/openid-configuration");
    let oauth = fetch("/.well-known/oauth-authorization-server");
    // Every key the two share has the same value (here: all of them).
    for (key, value) in openid.as_object().unwrap() {
        if let Some(other) = oauth.get(key) {
            assert_eq!(value, other, "{key} differs between the two documents");
        }
    }
    let base = server.base.as_str();
    assert_eq!(openid["issuer"], base);
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("end_session_endpoint", "/end_session"),
        // The bundled device-code plugin's endpoint.
        ("device_authorization_endpoint", "/device_authorization"),
    ] {
        assert_eq!(openid[field], format!("{base}{path}"), "{field}");
    }
    assert!(
        openid.get("registration_endpoint").is_none(),
        "registration is closed by default"
    );
    let scopes = openid["scopes_supported"].as_array().unwrap();
    for scope in [
        "openid",
        "profile",
        "email",
        "address",
        "phone",
        "offline_access",
        "read",
    ] {
        assert!(scopes.contains(&json!(scope)), "{scope} in {scopes:?}");
    }
    assert_eq!(openid["response_types_supported"], json!(["code", "token"]));
    assert_eq!(openid["subject_types_supported"], json!(["public"]));
    let algs = openid["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert_eq!(algs[0], "RS256", "{algs:?}");
    assert!(algs.contains(&json!("ES256")), "the default key: {algs:?}");
    assert_eq!(
        openid["acr_values_supported"],
        json!(["urn:grantbox:acr:password"])
    );
    assert_eq!(
        openid["prompt_values_supported"],
        json!(["none", "login", "consent"])
    );
    for claim in [
        "sub",
        "auth_time",
        "nonce",
        "at_hash",
        "name",
        "email",
        "phone_number",
    ] {
        assert!(
            openid["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(claim)),
            "{claim}"
        );
    }
    for field in [
        "claims_parameter_supported",
        "request_parameter_supported",
        "request_uri_parameter_supported",
    ] {
        assert_eq!(openid[field], false, "{field}");
    }
    assert_eq!(
        openid["authorization_response_iss_parameter_supported"],
        true
    );
    assert_eq!(openid["code_challenge_methods_supported"], json!(["S256"]));
    assert!(
        openid["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("client_secret_basic"))
    );
    assert!(
        openid["token_endpoint_auth_signing_alg_values_supported"]
            .as_array()
            .is_some_and(|algs| !algs.is_empty())
    );
    assert!(
        openid["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("authorization_code"))
    );
    assert_eq!(
        openid["response_modes_supported"],
        json!(["query", "fragment", "form_post"])
    );
}

#[test]
fn the_consent_page_names_the_claims_each_scope_reveals() {
    use crate::harness::webdriver::{
        Driver, assert_clean_console, runtime, screenshots, sign_in, text, wait_heading,
    };
    let Some(driver) = Driver::start("the_consent_page_names_the_claims_each_scope_reveals") else {
        return;
    };
    let server = &world().server;
    let url = format!(
        "{}/authorize?response_type=code&client_id=rpui&redirect_uri={CALLBACK}&scope=openid%20profile%20email%20read&state=s",
        server.base
    );
    runtime().block_on(async {
        let browser = driver.session().await;
        browser
            .goto(&url)
            .await
            .expect("the authorization URL opens");
        wait_heading(&browser, "Sign in").await;
        sign_in(&browser, "alice", PASSWORD).await;
        wait_heading(&browser, "Authorize Example RP").await;
        let shown = text(&browser).await;
        for expected in [
            "Your name, family name, given name",
            "Your email address, whether your email address is verified",
        ] {
            assert!(shown.contains(expected), "{expected:?} not in {shown}");
        }
        // `openid` and `read` reveal no claim.
        assert_eq!(shown.matches("Your ").count(), 2, "{shown}");
        assert_clean_console(&browser, "consent page", &[]).await;
        screenshots(&browser, "consent-openid").await;
        browser.close().await.expect("the session closes");
    });
}
