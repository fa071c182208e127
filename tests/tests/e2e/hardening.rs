//! The outside security review's smaller findings, over the real binary or,
//! for a request matrix that needs no process, the router in process:
//! consent for public native clients (RFC 8252 §8.6), who may introspect
//! what (RFC 7662 §4), `/metrics` off the public listener, the issuer's
//! normal form and the `__Host-` cookie, one code per consent decision, one
//! `Authorization` header, loopback ports a socket can have, `plain` PKCE
//! opt-in and metadata that lists exactly what is allowed, and failed client
//! authentication that takes as long for an unknown client id as for a
//! known one.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{
    Browser, Call, InProcess, Options, Page, Server, alice_password_request, allow,
    assert_oauth_error, confidential_client, grantbox, http, introspect_token, redirect_params,
    server_with_alice, service_client, text, token_request, user_add, visit_as_alice, web_client,
};

const PASSWORD: &str = "correct horse battery staple";
const LOOPBACK: &str = "http://127.0.0.1:9999/cb";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn authorize_url(server: &Server, client_id: &str, redirect_uri: &str, extra: &str) -> String {
    server.url(&authorize_path(client_id, redirect_uri, extra))
}

fn authorize_path(client_id: &str, redirect_uri: &str, extra: &str) -> String {
    format!(
        "/authorize?response_type=code&client_id={client_id}&redirect_uri={redirect_uri}&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
    )
}

fn is_consent_page(page: &Page) -> bool {
    page.status == 200 && page.body.contains("name=\"transaction_id\"")
}

/// A redirect carrying a code: 302 from a GET, 303 after the consent form.
fn has_code(page: &Page) -> bool {
    matches!(page.status, 302 | 303)
        && redirect_params(&page.location(), false).contains_key("code")
}

#[test]
fn public_native_clients_are_asked_for_consent_every_time() {
    let server = server_with_alice();
    // A public native app (loopback and a private-use scheme), trusted even:
    // any app on the device could use its client id.
    server.client_add(&[
        "native",
        "--public",
        "--trusted",
        "--redirect-uri",
        LOOPBACK,
        "--redirect-uri",
        "com.example.app:/cb",
        "--grant-type",
        "authorization_code",
    ]);
    // A public browser app whose redirect URI only it can receive, and a
    // confidential web app: remembered consent still spares their users.
    server.client_add(&[
        "spa",
        "--public",
        "--redirect-uri",
        "https://spa.example/cb",
        "--grant-type",
        "authorization_code",
    ]);
    web_client(&server, LOOPBACK, &[]);
    let browser = Browser::new();

    let consent = visit_as_alice(
        &browser,
        &server,
        &authorize_url(&server, "native", LOOPBACK, ""),
    );
    assert!(
        is_consent_page(&consent),
        "trusted does not skip consent: {}",
        consent.body
    );
    assert!(has_code(&allow(&browser, &server, &consent)));
    for redirect_uri in [LOOPBACK, "http://127.0.0.1:41234/cb", "com.example.app:/cb"] {
        let again = browser.get(&authorize_url(&server, "native", redirect_uri, ""));
        assert!(
            is_consent_page(&again),
            "remembered consent does not answer for {redirect_uri}: {} {}",
            again.status,
            again.location()
        );
    }

    for client_id in ["spa", "web"] {
        let redirect_uri = if client_id == "spa" {
            "https://spa.example/cb"
        } else {
            LOOPBACK
        };
        let consent = browser.get(&authorize_url(&server, client_id, redirect_uri, ""));
        assert!(is_consent_page(&consent), "{client_id}: {}", consent.body);
        assert!(has_code(&allow(&browser, &server, &consent)));
        let again = browser.get(&authorize_url(&server, client_id, redirect_uri, ""));
        assert!(
            has_code(&again),
            "{client_id} remembered: {}",
            again.location()
        );
    }
}

#[test]
fn introspection_shows_others_access_tokens_to_resource_servers_only() {
    let server = Server::start();
    let app = confidential_client(
        &server,
        "app",
        &["client_credentials", "password", "refresh_token"],
        &["read"],
    );
    let other = confidential_client(&server, "other", &["client_credentials"], &[]);
    let api = server
        .client_add(&[
            "api",
            "--introspection",
            "--grant-type",
            "client_credentials",
        ])
        .unwrap();
    user_add(&server, "alice", PASSWORD);
    let (status, tokens, _) = alice_password_request(&server, "app", &app, Some("read"));
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let introspect = |client_id: &str, secret: &str, token: &str| -> Value {
        introspect_token(&server, client_id, secret, token)
    };
    let active = |answer: Value| answer["active"] == json!(true);
    // Its own tokens, both kinds.
    assert!(active(introspect("app", &app, access)));
    assert!(active(introspect("app", &app, refresh)));
    // Another confidential client learns nothing.
    assert_eq!(
        introspect("other", &other, access),
        json!({"active": false})
    );
    assert_eq!(
        introspect("other", &other, refresh),
        json!({"active": false})
    );
    // A resource server sees access tokens, never another client's refresh token.
    let seen = introspect("api", &api, access);
    assert!(active(seen.clone()), "{seen}");
    assert_eq!(seen["client_id"], "app");
    assert_eq!(introspect("api", &api, refresh), json!({"active": false}));

    // A public client cannot be a resource server.
    let refused = grantbox(
        &server.db,
        &[
            "client",
            "add",
            "pub",
            "--public",
            "--introspection",
            "--redirect-uri",
            LOOPBACK,
        ],
        None,
    );
    assert!(!refused.status.success());
    // The reason, not the flag's name (which an unknown-argument error
    // would echo as well).
    assert!(
        text(&refused.stderr).contains("a public client cannot introspect tokens"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn metrics_are_served_on_the_admin_listener_only() {
    let server = Server::start();
    let public = http().get(server.url("/metrics")).send().unwrap();
    assert_eq!(public.status(), 404);
    let admin = server
        .admin_request(reqwest::Method::GET, "/metrics")
        .send()
        .unwrap();
    assert_eq!(admin.status(), 200);
    assert!(
        admin.text().unwrap().contains("grantbox_"),
        "the Prometheus text names the server's metrics"
    );
}

#[test]
fn the_issuer_is_normalised_and_https_gets_a_host_prefixed_secure_cookie() {
    let server = Server::start_with(Options {
        extra_args: vec!["--issuer".into(), "HTTPS://Auth.Example:443/".into()],
        ..Default::default()
    });
    let metadata: Value = server.metadata();
    assert_eq!(metadata["issuer"], "https://auth.example");
    assert_eq!(metadata["token_endpoint"], "https://auth.example/token");
    let login = http().get(server.url("/login")).send().unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("__Host-grantbox_session=")
            && cookie.contains("Secure")
            && cookie.contains("Path=/")
            && !cookie.contains("Domain"),
        "{cookie}"
    );

    // Plain http off loopback, or a query, is refused at start, naming the field.
    for issuer in ["http://auth.example", "https://auth.example/?tenant=1"] {
        let output = grantbox(
            &server.db,
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--issuer",
                issuer,
            ],
            None,
        );
        assert!(!output.status.success(), "{issuer} was accepted");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("issuer") && stderr.contains(issuer),
            "{stderr}"
        );
    }
}

#[test]
fn concurrent_posts_of_one_consent_decision_issue_one_code() {
    let server = server_with_alice();
    web_client(&server, LOOPBACK, &[]);
    let browser = Browser::new();
    let consent = visit_as_alice(
        &browser,
        &server,
        &authorize_url(&server, "web", LOOPBACK, ""),
    );
    assert!(is_consent_page(&consent), "{}", consent.body);
    let outcomes: Vec<Page> = std::thread::scope(|scope| {
        let posts: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| allow(&browser, &server, &consent)))
            .collect();
        posts.into_iter().map(|post| post.join().unwrap()).collect()
    });
    let codes = outcomes
        .iter()
        .filter(|page| page.status == 303 && page.location().contains("code="))
        .count();
    assert_eq!(
        codes,
        1,
        "statuses: {:?}",
        outcomes.iter().map(|p| p.status).collect::<Vec<_>>()
    );
    assert!(
        outcomes
            .iter()
            .all(|page| page.status == 303 || page.status == 403),
        "the others find the request already answered"
    );
}

#[test]
fn two_authorization_headers_are_an_invalid_request() {
    let app = InProcess::start();
    let secret = service_client(&app, &[]);
    let basic = |id: &str, secret: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    for endpoint in ["/token", "/introspect", "/revoke"] {
        let response = app.send(
            Call::form(
                endpoint,
                &[("grant_type", "client_credentials"), ("token", "x")],
            )
            .append_header("authorization", &basic("svc", &secret))
            .append_header("authorization", &basic("other", "whatever-secret")),
        );
        assert_eq!(response.status, 400, "{endpoint}");
        let body: Value = response.json();
        assert_eq!(body["error"], "invalid_request", "{endpoint}: {body}");
    }
    // One header is fine (positive control).
    let (status, body, _) =
        app.token_request("svc", &secret, &[("grant_type", "client_credentials")]);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_loopback_redirect_uri_with_an_impossible_port_gets_a_page() {
    let app = InProcess::start();
    app.client_add(&[
        "native",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1:8000/cb",
        "--grant-type",
        "authorization_code",
    ]);
    for port in ["70000", "65536", "0", "4294967297"] {
        let url = authorize_path("native", &format!("http://127.0.0.1:{port}/cb"), "");
        let page = app.send(Call::get(&url));
        assert_eq!(page.status, 400, "port {port} is refused with a page");
        assert!(
            page.headers.get("location").is_none(),
            "port {port}: no redirect"
        );
    }
    // Any real port may vary (RFC 8252 §7.3).
    let url = authorize_path("native", "http://127.0.0.1:65535/cb", "");
    let page = app.send(Call::get(&url));
    assert_eq!(page.status, 302, "to the login page");
}

#[test]
fn plain_pkce_is_opt_in_and_the_metadata_says_what_is_allowed() {
    let server = server_with_alice();
    server.client_add(&[
        "native",
        "--public",
        "--redirect-uri",
        LOOPBACK,
        "--grant-type",
        "authorization_code",
    ]);
    let metadata = |server: &Server| -> Value { server.metadata() };
    let document = metadata(&server);
    assert_eq!(
        document["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert!(
        document["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("implicit")),
        "the token response type is offered, so implicit is listed: {document}"
    );
    let plain = format!(
        "/authorize?response_type=code&client_id=native&redirect_uri={LOOPBACK}&state=s&code_challenge={VERIFIER}&code_challenge_method=plain"
    );
    let browser = Browser::new();
    let refused = visit_as_alice(&browser, &server, &server.url(&plain));
    assert_eq!(refused.status, 302, "{}", refused.body);
    let params = redirect_params(&refused.location(), false);
    assert_eq!(params["error"], "invalid_request", "{params:?}");

    // An operator re-enables plain in the exported plugin's [config].
    let plugins = server.dir.path().join("plugins");
    let exported = grantbox(
        &server.db,
        &["plugins", "export", plugins.to_str().unwrap()],
        None,
    );
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let manifest = plugins.join("grant-authorization-code").join("plugin.toml");
    let original = std::fs::read_to_string(&manifest).unwrap();
    assert!(original.contains("allow_plain = false"), "{original}");
    std::fs::write(
        &manifest,
        original.replace("allow_plain = false", "allow_plain = true"),
    )
    .unwrap();
    let relaxed = Server::start_with(Options {
        plugins: Some(plugins),
        db: Some(server.db.clone()),
        ..Default::default()
    });
    assert_eq!(
        metadata(&relaxed)["code_challenge_methods_supported"],
        json!(["S256", "plain"])
    );
    let browser = Browser::new();
    let consent = visit_as_alice(&browser, &relaxed, &relaxed.url(&plain));
    assert!(is_consent_page(&consent), "{}", consent.body);
}

/// Store reads of client registrations the server logged (at debug level).
fn registration_reads(server: &Server) -> usize {
    server
        .logs()
        .matches("client registration read from the store")
        .count()
}

#[test]
fn a_failed_client_authentication_costs_a_known_client_id_what_it_costs_an_unknown_one() {
    let server = Server::start_with(Options {
        env: vec![(
            "GRANTBOX_LOG".into(),
            "info,grantbox::client_cache=debug".into(),
        )],
        ..Default::default()
    });
    let secret = service_client(&server, &[]);
    let form = [("grant_type", "client_credentials")];
    // The client is in use: its registration is read once, then cached.
    for _ in 0..3 {
        let (status, _, _) = token_request(&server, "svc", &secret, &form);
        assert_eq!(status, 200);
    }
    let wait_for_log = || std::thread::sleep(Duration::from_millis(200));
    wait_for_log();
    assert_eq!(registration_reads(&server), 1, "{}", server.logs());

    // A wrong secret for the cached client and an unknown client id each
    // cost one store read: the time of a failure tells them apart no more.
    let reads = |client_id: &str| {
        let before = registration_reads(&server);
        let (status, body, _) = token_request(
            &server,
            client_id,
            "not-the-secret-of-anyone-at-all-000",
            &form,
        );
        assert_oauth_error((status, &body), 401, "invalid_client");
        wait_for_log();
        registration_reads(&server) - before
    };
    for _ in 0..3 {
        assert_eq!(reads("svc"), 1, "a wrong secret for a known client");
        assert_eq!(reads("ghost"), 1, "an unknown client id");
    }
    // Both failures log the same line.
    let logs = server.logs();
    let failures = |id: &str| {
        logs.lines()
            .filter(|line| {
                line.contains("client authentication failed")
                    && line.contains(&format!("client_id=\"{id}\""))
            })
            .count()
    };
    assert_eq!((failures("svc"), failures("ghost")), (3, 3), "{logs}");
}
