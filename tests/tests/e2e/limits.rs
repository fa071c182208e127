//! What one client may cost the server: bounded, linear
//! work per request; little stored for an anonymous authorization request;
//! no connection held by a client that sends slowly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{
    Browser, Options, Server, http, query_integer, redirect_params, server_with_alice,
    service_client, web_client,
};

const REDIRECT_URI: &str = "https://app.example/cb";

/// A server started with `config` as its TOML config file.
fn server_with_config(config: &str) -> Server {
    let dir = Arc::new(tempfile::tempdir().expect("a temporary directory"));
    let path = dir.path().join("grantbox.toml");
    std::fs::write(&path, config).expect("the config is written");
    Server::start_with(Options {
        env: vec![("GRANTBOX_CONFIG".into(), path.display().to_string())],
        dir: Some(dir),
        ..Default::default()
    })
}

/// A form of `size` bytes: an authorization request for client `web`
/// followed by `filler(i)` pairs, each name distinct, so that no early
/// repeat cuts a quadratic search short.
fn padded_form(size: usize, filler: impl Fn(usize) -> String) -> String {
    let mut form = format!("client_id=web&redirect_uri={REDIRECT_URI}&response_type=code");
    let mut i = 0;
    while form.len() < size {
        form.push('&');
        form.push_str(&filler(i));
        i += 1;
    }
    form
}

fn post_authorize(server: &Server, form: String) -> reqwest::blocking::Response {
    http()
        .post(server.url("/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .expect("the authorization endpoint answers")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Item 2: 60 KB unauthenticated bodies of distinct parameters or distinct
/// scope tokens are refused past the caps, and four connections sending them
/// back to back do not hold up a client's token requests.
#[test]
fn oversized_requests_cost_little_beside_healthy_ones() {
    let server = Server::start();
    web_client(&server, REDIRECT_URI, &["--scope", "read"]);
    let secret = service_client(&server, &["read"]);
    let many_parameters = padded_form(60_000, |i| format!("p{i}="));
    let many_scopes = {
        let tokens: Vec<String> = (0..8_000).map(|i| format!("s{i}")).collect();
        let form = format!(
            "client_id=web&redirect_uri={REDIRECT_URI}&response_type=code&scope={}",
            tokens.join("+")
        );
        assert!(form.len() > 40_000);
        form
    };

    let response = post_authorize(&server, many_parameters.clone());
    assert_eq!(response.status(), 400);
    let page = response.text().unwrap_or_default();
    assert!(
        page.contains("the request has more than 100 parameters"),
        "{page}"
    );
    let response = post_authorize(&server, many_scopes.clone());
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let error = redirect_params(&location, false);
    assert_eq!(error["error"], "invalid_scope", "{location}");
    assert_eq!(
        error["error_description"], "the scope has more than 100 scope tokens",
        "{location}"
    );

    let healthy = |samples: usize| -> Vec<Duration> {
        (0..samples)
            .map(|_| {
                let started = Instant::now();
                let response = http()
                    .post(server.url("/token"))
                    .basic_auth("svc", Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .expect("the token endpoint answers");
                assert_eq!(response.status(), 200);
                started.elapsed()
            })
            .collect()
    };
    let quiet = median(healthy(10));

    let stop = Arc::new(AtomicBool::new(false));
    let attackers: Vec<_> = (0..4)
        .map(|n| {
            let stop = stop.clone();
            let url = server.url("/authorize");
            let body = if n % 2 == 0 {
                many_parameters.clone()
            } else {
                many_scopes.clone()
            };
            std::thread::spawn(move || {
                let client = http();
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) {
                    let response = client
                        .post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone())
                        .send();
                    if response.is_ok() {
                        sent += 1;
                    }
                }
                sent
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let under_attack = median(healthy(20));
    stop.store(true, Ordering::Relaxed);
    let sent: u32 = attackers.into_iter().map(|a| a.join().unwrap()).sum();
    assert!(sent > 0, "the attack sent nothing");
    // Generous: a debug build on a shared machine; the quadratic search took
    // seconds per request here.
    assert!(
        under_attack < quiet + Duration::from_millis(250),
        "a token request took {under_attack:?} (median) beside {sent} oversized requests, {quiet:?} without"
    );
}

/// Item 3: an unauthenticated authorization request stores a few KB at most,
/// in a session that lives only as long as the transaction, and an
/// oversized one is refused by a redirect without storing anything.
#[test]
fn anonymous_authorization_requests_store_little() {
    let server = server_with_alice();
    let long_redirect_uri = format!("https://app.example/{}", "l".repeat(2_500));
    server.client_add(&[
        "web",
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        REDIRECT_URI,
        "--redirect-uri",
        &long_redirect_uri,
    ]);
    let request = |redirect_uri: &str, state: &str| {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("client_id", "web"),
                ("redirect_uri", redirect_uri),
                ("response_type", "code"),
                ("state", state),
            ])
            .finish();
        post_authorize(&server, form)
    };

    // The review's request: ~60 KB of state, no cookie.
    for _ in 0..20 {
        let response = request(REDIRECT_URI, &"s".repeat(60_000));
        assert_eq!(response.status(), 303);
        assert!(response.headers().get("set-cookie").is_none());
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(REDIRECT_URI), "{location}");
        let error = redirect_params(&location, false);
        assert_eq!(error["error"], "invalid_request");
        assert_eq!(
            error["error_description"],
            "state is longer than 2048 bytes"
        );
        assert!(
            !error.contains_key("state"),
            "an oversized state is not sent back"
        );
    }
    // A state within its cap, but a transaction over its own.
    let response = request(&long_redirect_uri, &"s".repeat(2_000));
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&long_redirect_uri), "{location}");
    let error = redirect_params(&location, false);
    assert_eq!(
        error["error_description"],
        "the authorization request is larger than 4096 bytes"
    );
    assert_eq!(error["state"], "s".repeat(2_000));
    assert_eq!(session_bytes(&server), (0, 0), "nothing was stored");

    // Within the caps: stored, in a session that lives as long as the
    // transaction (600 s by default), not the 8 hours of a signed-in user.
    let browser = Browser::new();
    let started = browser.post(
        &server.url("/authorize"),
        &[
            ("client_id", "web"),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("state", &"s".repeat(2_048)),
        ],
    );
    assert!(
        started.location().starts_with("/login"),
        "{}",
        started.location()
    );
    assert_eq!(cookie_max_age(&started), Some(600));
    let (sessions, bytes) = session_bytes(&server);
    assert_eq!(sessions, 1);
    assert!(
        bytes <= 6 * 1024,
        "an anonymous session holds {bytes} bytes"
    );
    let login = browser.get(&server.url(&started.location()));
    assert_eq!(
        cookie_max_age(&login),
        Some(600),
        "the login form keeps it short"
    );
    let signed_in = browser.sign_in(
        &server,
        &started.location(),
        "alice",
        "correct horse battery staple",
    );
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(cookie_max_age(&signed_in), Some(8 * 3600));
}

/// The `Max-Age` of the session cookie a response sets.
fn cookie_max_age(page: &crate::harness::Page) -> Option<i64> {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter(|cookie| cookie.starts_with("grantbox_session="))
        .find_map(|cookie| {
            cookie
                .split(';')
                .find_map(|attribute| attribute.trim().strip_prefix("Max-Age="))
                .and_then(|age| age.parse().ok())
        })
}

/// How many sessions the server stored, and their bytes.
fn session_bytes(server: &Server) -> (i64, i64) {
    let table = if server.db.starts_with("postgres") {
        "tower_sessions.session"
    } else {
        "tower_sessions"
    };
    (
        query_integer(server, &format!("SELECT COUNT(*) FROM {table}")),
        query_integer(
            server,
            &format!("SELECT CAST(COALESCE(SUM(LENGTH(data)), 0) AS BIGINT) FROM {table}"),
        ),
    )
}

/// Item 4: connections that send their head or body too slowly are closed
/// after the configured timeouts, a ceiling on connections keeps the server
/// within its descriptors, and a healthy client is served all along.
#[test]
fn slow_clients_cannot_hold_connections() {
    let server = server_with_config(
        "[limits]\nheader_read_timeout_seconds = 2\nbody_read_timeout_seconds = 2\nmax_connections = 64\n",
    );
    let address = server.base.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    // More half-sent request heads than the server takes connections.
    let mut slow: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut stream = TcpStream::connect(&address).expect("the server accepts");
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: grantbox\r\nX-Slow: 1")
                .expect("the server reads");
            stream
        })
        .collect();
    // A body that stops after a few bytes.
    let mut stalled_body = TcpStream::connect(&address).expect("the server accepts");
    stalled_body
        .write_all(
            b"POST /token HTTP/1.1\r\nHost: grantbox\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=",
        )
        .expect("the server reads");

    let healthy = http()
        .get(server.url("/healthz"))
        .send()
        .expect("a healthy client is served");
    assert_eq!(healthy.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a healthy client waited {:?}",
        started.elapsed()
    );

    // Every slow connection is closed by the server, none is answered.
    for stream in slow.iter_mut().chain(std::iter::once(&mut stalled_body)) {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
    }
    for (n, stream) in slow.iter_mut().enumerate() {
        let mut received = Vec::new();
        match stream.read_to_end(&mut received) {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(error) => panic!("slow connection {n} is still open: {error}"),
        }
    }
    let mut received = Vec::new();
    match stalled_body.read_to_end(&mut received) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(error) => panic!("the stalled body's connection is still open: {error}"),
    }
    let answer = String::from_utf8_lossy(&received);
    assert!(
        answer.is_empty() || !answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "closing the slow connections took {:?}",
        started.elapsed()
    );
    let after = http().get(server.url("/healthz")).send().unwrap();
    assert_eq!(after.status(), 200, "still serving");
}

/// The real listener (not the router alone): a 128 KiB header over TCP is
/// refused with 431 or a closed connection, and the server keeps serving.
#[test]
fn a_huge_header_over_tcp_is_refused_and_the_server_keeps_serving() {
    let server = Server::start();
    let huge_header = "h".repeat(128 * 1024);
    let response = http()
        .get(server.url("/healthz"))
        .header("x-huge", huge_header)
        .send();
    match response {
        Ok(response) => assert!(
            matches!(response.status().as_u16(), 431 | 400),
            "{}",
            response.status()
        ),
        Err(error) => assert!(
            error.is_request() || error.is_connect() || error.is_body(),
            "{error}"
        ),
    }
    let healthy = http().get(server.url("/healthz")).send().unwrap();
    assert_eq!(healthy.status(), 200, "still serving");
}
