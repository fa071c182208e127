//! Plugin endpoints over the real binary: the swap test plugin declares
//! `POST /swap_echo` (metadata key `swap_echo_endpoint`), which echoes its
//! `[config] generation`, the client and the parameters. The host applies
//! what `/token` applies (media type, body limit, strict decoding, repeated
//! parameters, client authentication), writes the plugin's JSON uncached,
//! turns a broken answer into a counted fault, routes by the current plugin
//! set across a hot swap, and refuses two plugins on one path, while a 1.0
//! plugin still loads beside them.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use serde_json::{Value, json};

use crate::harness::{
    Options, Server, confidential_client, grantbox, http, install_plugin, test_plugin_wasm, text,
    token_request,
};

const SWAP_GRANT_TYPE: &str = "urn:grantbox:test:swap";
const INTERFACE_1_0_GRANT_TYPE: &str = "urn:grantbox:test:interface-1-0";

/// The swap plugin's checked-in manifest, ready for `install_plugin`, with
/// `[config] generation` and the plugin's name changed when asked.
fn swap_manifest(generation: &str, name: Option<&str>) -> String {
    let checked_in = std::fs::read_to_string(
        crate::harness::workspace().join("tests/plugins/swap-plugin/plugin.toml"),
    )
    .expect("the swap plugin's manifest");
    let mut manifest = checked_in
        .replace(
            "file = \"swap_plugin.wasm\"",
            "file = \"{wasm}\"\nsha256 = \"{sha256}\"",
        )
        .replace(
            "generation = \"1\"",
            &format!("generation = \"{generation}\""),
        );
    assert!(manifest.contains("{sha256}") && manifest.contains("path = \"/swap_echo\""));
    if let Some(name) = name {
        // Another plugin, on another grant type, claiming the same path.
        manifest = manifest
            .replace("name = \"swap-plugin\"", &format!("name = \"{name}\""))
            .replace(
                &format!("grant_types = [\"{SWAP_GRANT_TYPE}\"]"),
                &format!("grant_types = [\"urn:grantbox:test:{name}\"]"),
            )
            .replace(
                "\n[config]\n",
                &format!("\n[config]\ngrant_type = \"urn:grantbox:test:{name}\"\n"),
            );
    }
    manifest
}

fn install_swap(plugins: &Path, folder: &str, generation: &str, name: Option<&str>) {
    install_plugin(
        plugins,
        folder,
        &test_plugin_wasm("swap-plugin"),
        &swap_manifest(generation, name),
    );
}

/// The interface-1-0 fixture with its checked-in manifest.
fn install_interface_1_0(plugins: &Path) {
    let manifest = std::fs::read_to_string(
        crate::harness::workspace().join("tests/plugins/interface-1-0-plugin/plugin.toml"),
    )
    .expect("the 1.0 plugin's manifest")
    .replace(
        "file = \"interface_1_0_plugin.wasm\"",
        "file = \"{wasm}\"\nsha256 = \"{sha256}\"",
    );
    install_plugin(
        plugins,
        "interface-1-0",
        &test_plugin_wasm("interface-1-0-plugin"),
        &manifest,
    );
}

/// A response as the tests look at it.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

fn send(request: reqwest::blocking::RequestBuilder) -> Answer {
    let response = request.send().expect("the server answers");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().unwrap_or_default(),
    }
}

/// `POST /swap_echo` with HTTP Basic authentication and a raw form body.
fn echo(server: &Server, client_id: &str, secret: &str, body: &str) -> Answer {
    send(
        http()
            .post(server.url("/swap_echo"))
            .basic_auth(client_id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned()),
    )
}

/// An RFC 7523 client assertion of `client_id` for `aud`, signed with an
/// Ed25519 `key` (kid `ed`) by ed25519-dalek, not the host's JWT library.
fn eddsa_assertion(key: &ed25519_dalek::SigningKey, client_id: &str, aud: &str) -> String {
    use base64::Engine;
    use ed25519_dalek::Signer;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"alg": "EdDSA", "kid": "ed", "typ": "JWT"});
    let claims = json!({
        "iss": client_id, "sub": client_id, "aud": aud,
        "iat": now, "exp": now + 60, "jti": format!("jti-{now}"),
    });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = key.sign(input.as_bytes()).to_bytes();
    format!("{input}.{}", b64(&signature))
}

fn faults(server: &Server) -> u64 {
    server
        .metrics()
        .lines()
        .find(|line| {
            line.starts_with("grantbox_plugin_faults_total")
                && line.contains("plugin=\"swap-plugin\"")
                && line.contains("kind=\"contract\"")
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_plugin_endpoint_gets_what_the_token_endpoint_applies() {
    let plugins = tempfile::tempdir().unwrap();
    install_swap(plugins.path(), "swap-plugin", "1", None);
    install_interface_1_0(plugins.path());
    let server = Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    });
    let secret = confidential_client(&server, "echo", &[SWAP_GRANT_TYPE], &["read"]);
    server.client_add(&["device", "--public", "--grant-type", SWAP_GRANT_TYPE]);

    // The metadata document advertises it.
    let metadata = server.metadata();
    assert_eq!(
        metadata["swap_echo_endpoint"],
        server.url("/swap_echo"),
        "{metadata}"
    );

    // An authenticated call: the plugin's JSON, uncached; credentials removed.
    let answer = echo(&server, "echo", &secret, "a=1&swap_repeat=x&swap_repeat=y");
    assert_eq!(answer.status, 200, "{}\n{}", answer.text, server.logs());
    assert_eq!(
        answer.json(),
        json!({
            "plugin_generation": "1",
            "path": "/swap_echo",
            "client_id": "echo",
            "params": [["a", "1"], ["swap_repeat", "x"], ["swap_repeat", "y"]],
        })
    );
    assert_eq!(answer.header("content-type"), "application/json");
    assert_eq!(answer.header("cache-control"), "no-store");
    let posted = send(http().post(server.url("/swap_echo")).form(&[
        ("client_id", "echo"),
        ("client_secret", secret.as_str()),
        ("b", "2"),
    ]));
    assert_eq!(posted.status, 200, "{}", posted.text);
    assert_eq!(posted.json()["params"], json!([["b", "2"]]));
    // A public client is identified by its client_id alone.
    let public = send(
        http()
            .post(server.url("/swap_echo"))
            .form(&[("client_id", "device")]),
    );
    assert_eq!(public.status, 200, "{}", public.text);
    assert_eq!(public.json()["client_id"], "device");
    assert_eq!(public.json()["params"], json!([]));

    // private_key_jwt, once per assertion, as at /token.
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let jwks = server.dir.path().join("keyed.jwks");
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed",
        "x": base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, key.verifying_key().to_bytes())});
    std::fs::write(&jwks, json!({ "keys": [jwk] }).to_string()).unwrap();
    server.client_add(&[
        "keyed",
        "--grant-type",
        SWAP_GRANT_TYPE,
        "--auth-method",
        "private_key_jwt",
        "--jwks",
        &jwks.display().to_string(),
    ]);
    let issuer = metadata["issuer"].as_str().unwrap();
    let assertion = eddsa_assertion(&key, "keyed", issuer);
    let form = [
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
        ("c", "3"),
    ];
    let keyed = send(http().post(server.url("/swap_echo")).form(&form));
    assert_eq!(keyed.status, 200, "{}\n{}", keyed.text, server.logs());
    assert_eq!(keyed.json()["client_id"], "keyed");
    assert_eq!(keyed.json()["params"], json!([["c", "3"]]));
    let replayed = send(http().post(server.url("/swap_echo")).form(&form));
    assert_eq!(replayed.status, 401, "{}", replayed.text);

    // What /token refuses, refused the same way. (case, answer, status, error)
    let oauth_errors = [
        (
            "wrong secret",
            echo(&server, "echo", "wrong", "a=1"),
            401,
            "invalid_client",
        ),
        (
            "unknown client",
            echo(&server, "nobody", &secret, "a=1"),
            401,
            "invalid_client",
        ),
        (
            "no credentials",
            send(http().post(server.url("/swap_echo")).form(&[("a", "1")])),
            401,
            "invalid_client",
        ),
        (
            "repeated parameter",
            echo(&server, "echo", &secret, "a=1&a=2"),
            400,
            "invalid_request",
        ),
        (
            "malformed escape",
            echo(&server, "echo", &secret, "a=%zz"),
            400,
            "invalid_request",
        ),
        (
            "JSON body",
            send(
                http()
                    .post(server.url("/swap_echo"))
                    .basic_auth("echo", Some(&secret))
                    .json(&json!({ "a": "1" })),
            ),
            400,
            "invalid_request",
        ),
        (
            "query string",
            send(
                http()
                    .post(server.url("/swap_echo?a=1"))
                    .basic_auth("echo", Some(&secret))
                    .form(&[("b", "2")]),
            ),
            400,
            "invalid_request",
        ),
        // The plugin's own OAuth error, rendered as RFC 6749 §5.2 says.
        (
            "plugin's error",
            echo(&server, "echo", &secret, "error=slow_down"),
            400,
            "slow_down",
        ),
        (
            "plugin's invalid_client",
            echo(&server, "echo", &secret, "error=invalid_client"),
            401,
            "invalid_client",
        ),
    ];
    for (case, answer, status, error) in oauth_errors {
        assert_eq!(answer.status, status, "{case}: {}", answer.text);
        assert_eq!(answer.json()["error"], error, "{case}: {}", answer.text);
        assert_eq!(answer.header("cache-control"), "no-store", "{case}");
        if status == 401 {
            assert!(
                answer.header("www-authenticate").starts_with("Basic"),
                "{case}"
            );
        }
    }

    // Another 2xx status passes; a broken answer is a counted contract fault.
    let created = echo(&server, "echo", &secret, "status=201");
    assert_eq!(created.status, 201, "{}", created.text);
    let before = faults(&server);
    for broken in [
        "raw_body=not+json",
        "raw_body=%5B1%5D",
        "status=302",
        "status=404",
    ] {
        let answer = echo(&server, "echo", &secret, broken);
        assert_eq!(answer.status, 500, "{broken}: {}", answer.text);
        assert_eq!(answer.json()["error"], "server_error", "{broken}");
    }
    assert_eq!(faults(&server), before + 4, "{}", server.metrics());
    assert!(
        server.logs().contains("not a JSON object"),
        "{}",
        server.logs()
    );

    // Other methods: 405 naming POST. Other paths: 404 as before.
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let answer = send(http().request(method.clone(), server.url("/swap_echo")));
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.header("allow"), "POST", "{method}");
    }
    for path in ["/swap_echo/more", "/swap", "/nothing_here"] {
        let missing = send(http().post(server.url(path)).form(&[("a", "1")]));
        assert_eq!(missing.status, 404, "{path}");
    }

    // The server's body limit holds here too.
    let big = format!("a={}", "x".repeat(70 * 1024));
    assert_eq!(echo(&server, "echo", &secret, &big).status, 413);

    // The 1.0 plugin beside it still serves tokens.
    let old_secret = confidential_client(&server, "old", &[INTERFACE_1_0_GRANT_TYPE], &["read"]);
    let (status, body, _) = token_request(
        &server,
        "old",
        &old_secret,
        &[("grant_type", INTERFACE_1_0_GRANT_TYPE)],
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_hot_swap_changes_the_answer_with_no_failed_request() {
    let plugins = tempfile::tempdir().unwrap();
    install_swap(plugins.path(), "swap-plugin", "1", None);
    let server = Arc::new(Server::start_with(Options {
        plugins: Some(plugins.path().to_owned()),
        ..Default::default()
    }));
    let secret = confidential_client(&*server, "echo", &[SWAP_GRANT_TYPE], &["read"]);
    let listed = send(server.admin_request(reqwest::Method::GET, "/admin/plugins")).json();
    let swap = (listed["plugins"].as_array().unwrap().iter())
        .find(|p| p["name"] == "swap-plugin")
        .cloned()
        .unwrap_or_default();
    assert_eq!(swap["endpoints"], json!(["/swap_echo"]), "{listed}");
    assert_eq!(swap["user_steps"], json!([]), "{listed}");

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (server, secret, stop) = (server.clone(), secret.clone(), stop.clone());
            thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let answer = echo(&server, "echo", &secret, "a=1");
                    let generation = answer.json()["plugin_generation"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    seen.push((answer.status, generation));
                }
                seen
            })
        })
        .collect();
    thread::sleep(std::time::Duration::from_millis(300));
    install_swap(plugins.path(), "swap-plugin", "2", None);
    let reload = server.reload_plugins();
    assert!(reload.status.success(), "{}", text(&reload.stderr));
    let after = echo(&server, "echo", &secret, "a=1");
    assert_eq!(after.json()["plugin_generation"], "2", "{}", after.text);
    thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let seen: Vec<(u16, String)> = workers
        .into_iter()
        .flat_map(|worker| worker.join().unwrap())
        .collect();
    assert!(seen.iter().all(|(status, _)| *status == 200), "{seen:?}");
    assert!(seen.iter().any(|(_, g)| g == "1") && seen.iter().any(|(_, g)| g == "2"));

    // A set without the endpoint: the route goes with it.
    std::fs::remove_dir_all(plugins.path().join("swap-plugin")).unwrap();
    install_interface_1_0(plugins.path());
    let reload = server.reload_plugins();
    assert!(reload.status.success(), "{}", text(&reload.stderr));
    assert_eq!(echo(&server, "echo", &secret, "a=1").status, 404);
    assert!(server.metadata().get("swap_echo_endpoint").is_none());
}

#[test]
fn plugins_check_lists_endpoints_and_refuses_two_plugins_on_one_path() {
    let check = |dir: &Path| {
        let output = grantbox(
            "sqlite::memory:",
            &["plugins", "check", &dir.display().to_string()],
            None,
        );
        (
            output.status.success(),
            format!("{}{}", text(&output.stdout), text(&output.stderr)),
        )
    };
    let plugins = tempfile::tempdir().unwrap();
    install_swap(plugins.path(), "swap-plugin", "1", None);
    let (ok, output) = check(plugins.path());
    assert!(ok, "{output}");
    assert!(
        output.contains("swap-plugin: endpoint POST /swap_echo (client authenticated, metadata swap_echo_endpoint)"),
        "{output}"
    );

    install_swap(plugins.path(), "swap-copy", "1", Some("swap-copy"));
    let (ok, output) = check(plugins.path());
    assert!(!ok, "{output}");
    let first = plugins.path().join("swap-copy").join("plugin.toml");
    let second = plugins.path().join("swap-plugin").join("plugin.toml");
    assert!(
        output.contains(&format!(
            "{}: provides.endpoints: path \"/swap_echo\" is also provided by {}",
            second.display(),
            first.display()
        )),
        "{output}"
    );
}
