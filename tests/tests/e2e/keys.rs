//! The host's signing keys over the real binary: the first start creates
//! them (and on SQLite a 0600 key-encryption key file), `/jwks` publishes
//! their public parts (checked with `jsonwebtoken`, not the host's JOSE
//! library), `grantbox keys rotate|retire|list` move them through their
//! life on the test clock, a missing or wrong key-encryption key stops
//! `serve`, and two instances on one PostgreSQL database see a rotation
//! within the reload interval.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use grantbox::config::KeysConfig;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

use crate::harness::{
    Options, Server, binary, fresh_postgres_db, grantbox_with, http, key_encryption_key_for,
    postgres_server, query_integer, text,
};

/// A config file that makes rotation observable in seconds.
fn config_file(dir: &std::path::Path, activation_delay: i64, reload_interval: u64) -> String {
    let path = dir.join("keys.toml");
    std::fs::write(
        &path,
        format!(
            "[tokens]\naccess_token_lifetime = 120\n[keys]\nactivation_delay_seconds = {activation_delay}\nreload_interval_seconds = {reload_interval}\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn jwks(server: &Server) -> (Value, reqwest::header::HeaderMap) {
    let response = http().get(server.url("/jwks")).send().unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (response.json().unwrap(), headers)
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// `grantbox keys …` on the server's database with its config and a clock offset.
fn keys_command(server: &Server, config: &str, offset: i64, args: &[&str]) -> (bool, String) {
    let mut full = vec!["keys"];
    full.extend_from_slice(args);
    let offset = offset.to_string();
    let output = grantbox_with(
        &server.db,
        &full,
        None,
        &[
            ("GRANTBOX_CONFIG", config),
            ("GRANTBOX_CLOCK_OFFSET", &offset),
        ],
    );
    let out = format!("{}{}", text(&output.stdout), text(&output.stderr));
    (output.status.success(), out)
}

/// `keys list` rows as (kid, alg, state); other lines (its header, log
/// lines on stderr) are skipped.
fn listed(output: &str) -> Vec<(String, String, String)> {
    output
        .lines()
        .map(|line| line.split('\t').collect::<Vec<&str>>())
        .filter(|fields| fields.len() == 7 && fields[0] != "kid")
        .map(|fields| (fields[0].into(), fields[1].into(), fields[2].into()))
        .collect()
}

/// The keys as the host holds them, opened from the server's database with
/// its key-encryption key, signing at `now`: how the tests get tokens the
/// host signed.
fn host_keys(server: &Server) -> grantbox::keys::Keys {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = grantbox::store::Store::open(&server.db).await.unwrap();
        let opened = grantbox::keys::persist::open(
            &store,
            &KeysConfig::default(),
            &server.db,
            key_encryption_key_for(&server.db),
            0,
        )
        .await
        .unwrap();
        assert!(opened.created.is_empty(), "the server created the keys");
        store.close().await;
        opened.keys
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Verifies `token` with `jsonwebtoken` against the server's JWKS; the kid of
/// the key that verified it.
fn verify(server: &Server, token: &str) -> Result<String, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let set: JwkSet = serde_json::from_value(jwks(server).0).map_err(|e| e.to_string())?;
    let jwk = set.find(&kid).ok_or(format!("kid {kid} not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&["https://api.example"]);
    validation.set_required_spec_claims(&["exp", "aud"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| e.to_string())?;
    Ok(kid)
}

fn claims(now: i64) -> serde_json::Map<String, Value> {
    json!({"iss": "https://as.example", "aud": "https://api.example", "sub": "alice", "iat": now, "exp": now + 60})
        .as_object()
        .unwrap()
        .clone()
}

/// Runs `grantbox serve` expecting it to stop on its own; its stderr.
fn serve_fails(db: &str, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(binary());
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env("GRANTBOX_DB", db)
        .env("GRANTBOX_CACHE_DIR", crate::harness::shared_cache_dir())
        .env_remove("GRANTBOX_CONFIG")
        .env_remove("GRANTBOX_KEY_ENCRYPTION_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("serve did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    text(&output.stderr)
}

#[test]
fn first_start_creates_keys_that_the_jwks_publishes_and_a_second_start_keeps() {
    let server = Server::start();
    let sqlite = server.db.starts_with("sqlite");
    let key_file = server.dir.path().join("grantbox.db.key-encryption-key");
    if sqlite {
        let logs = server.logs_once(|l| l.contains("signing keys ready"));
        assert_eq!(
            logs.matches("created a key-encryption key file").count(),
            1,
            "{logs}"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key_file).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        // The key never reaches the log.
        let key = std::fs::read_to_string(&key_file).unwrap();
        assert_eq!(key.trim().len(), 43);
        assert!(!logs.contains(key.trim()));
    } else {
        let logs = server.logs_once(|l| l.contains("signing keys ready"));
        assert!(logs.contains("GRANTBOX_KEY_ENCRYPTION_KEY"), "{logs}");
        assert!(!key_file.exists());
    }

    let (document, headers) = jwks(&server);
    assert_eq!(headers["cache-control"], "public, max-age=290");
    assert_eq!(headers["content-type"], "application/jwk-set+json");
    let set: JwkSet = serde_json::from_value(document.clone()).unwrap();
    let mut algs: Vec<String> = set
        .keys
        .iter()
        .map(|jwk| {
            assert_eq!(
                jwk.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Signature)
            );
            match &jwk.algorithm {
                AlgorithmParameters::EllipticCurve(ec) => {
                    assert_eq!(ec.curve, jsonwebtoken::jwk::EllipticCurve::P256)
                }
                AlgorithmParameters::RSA(rsa) => assert_eq!(rsa.e, "AQAB"),
                other => panic!("unexpected key {other:?}"),
            }
            format!("{:?}", jwk.common.key_algorithm.unwrap())
        })
        .collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "RS256"]);
    for jwk in document["keys"].as_array().unwrap() {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(jwk.get(private).is_none(), "{private} in {jwk}");
        }
    }
    assert_eq!(server.metadata()["jwks_uri"], server.url("/jwks"));

    // What the host signs with each key verifies against the JWKS.
    let keys = host_keys(&server);
    for alg in [grantbox::keys::Alg::ES256, grantbox::keys::Alg::RS256] {
        let token = keys
            .sign_with(alg, "at+jwt", &claims(now()), now())
            .unwrap();
        let kid = verify(&server, &token).unwrap();
        assert!(kids(&document).contains(&kid));
    }
    // A token signed by a key the host never published does not.
    let stranger = grantbox::keys::Keys::ephemeral(
        grantbox::keys::Alg::ES256,
        &[grantbox::keys::Alg::ES256],
        now(),
    );
    let forged = stranger.sign("at+jwt", &claims(now()), now()).unwrap();
    assert!(
        verify(&server, &forged)
            .unwrap_err()
            .contains("not in the JWKS")
    );

    // A restart keeps the keys; it creates neither keys nor a key file.
    let before = kids(&document);
    let dir = server.kill();
    let again = Server::start_with(Options {
        dir: Some(dir),
        ..Options::default()
    });
    let logs = again.logs_once(|l| l.contains("signing keys ready"));
    assert!(!logs.contains("created"), "{logs}");
    assert_eq!(kids(&jwks(&again).0), before);
}

#[test]
fn rotation_publishes_at_once_signs_after_the_delay_and_the_old_key_leaves_after_its_tokens() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let config = config_file(dir.path(), 60, 1);
    let options = |offset: i64| Options {
        dir: Some(dir.clone()),
        env: vec![
            ("GRANTBOX_CONFIG".into(), config.clone()),
            ("GRANTBOX_CLOCK_OFFSET".into(), offset.to_string()),
        ],
        ..Options::default()
    };
    let server = Server::start_with(options(0));
    let (document, headers) = jwks(&server);
    // max-age: the delay less the reload interval.
    assert_eq!(headers["cache-control"], "public, max-age=59");
    let (ok, out) = keys_command(&server, &config, 0, &["list"]);
    assert!(ok, "{out}");
    let old = listed(&out)
        .into_iter()
        .find(|(_, alg, _)| alg == "ES256")
        .unwrap();
    assert_eq!(old.2, "active");

    let (ok, out) = keys_command(&server, &config, 0, &["rotate", "--alg", "ES256"]);
    assert!(ok, "{out}");
    let new = out
        .lines()
        .find_map(|l| l.strip_prefix("kid: "))
        .unwrap()
        .to_owned();
    assert!(out.contains(&format!("replaces: {}", old.0)), "{out}");
    assert!(!out.contains("\"d\""), "{out}");

    // Published at once (within the reload interval), beside the old key.
    let started = Instant::now();
    while !kids(&jwks(&server).0).contains(&new) {
        assert!(started.elapsed() < Duration::from_secs(5), "not published");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(kids(&jwks(&server).0).contains(&old.0));
    assert_eq!(kids(&jwks(&server).0).len(), kids(&document).len() + 1);

    // Pending until the delay has passed, then it signs and the old one is retired.
    let state = |server: &Server, offset: i64, kid: &str| {
        let (ok, out) = keys_command(server, &config, offset, &["list"]);
        assert!(ok, "{out}");
        listed(&out).into_iter().find(|k| k.0 == kid).unwrap().2
    };
    assert_eq!(state(&server, 0, &new), "pending");
    assert_eq!(state(&server, 0, &old.0), "active");
    assert_eq!(state(&server, 61, &new), "active");
    assert_eq!(state(&server, 61, &old.0), "retired");
    let keys = host_keys(&server);
    let t = now();
    let before = keys.sign("at+jwt", &claims(t), t).unwrap();
    assert_eq!(verify(&server, &before).unwrap(), old.0);
    let after = keys.sign("at+jwt", &claims(t + 61), t + 61).unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid.unwrap(),
        new
    );

    // The old key is published until the longest access token it signed
    // (120 s) has expired after its retirement at +60, then gone.
    let dir_kept = server.kill();
    assert!(std::sync::Arc::ptr_eq(&dir_kept, &dir));
    // (Seconds pass between the rotation and these starts: a margin.)
    let late = Server::start_with(options(60 + 100));
    assert!(kids(&jwks(&late).0).contains(&old.0));
    drop(late);
    let later = Server::start_with(options(60 + 121));
    let published = kids(&jwks(&later).0);
    assert!(!published.contains(&old.0), "{published:?}");
    assert!(published.contains(&new));
    assert_eq!(state(&later, 181, &old.0), "expired");

    // Retiring: unknown kids and the last key of an algorithm are refused.
    let (ok, out) = keys_command(&later, &config, 181, &["retire", "no-such-kid"]);
    assert!(
        !ok && out.contains("no signing key \"no-such-kid\""),
        "{out}"
    );
    let (ok, out) = keys_command(&later, &config, 181, &["retire", &new]);
    assert!(!ok && out.contains("is the last ES256 key"), "{out}");
    let (ok, out) = keys_command(&later, &config, 181, &["rotate"]);
    assert!(ok, "{out}");
    let (ok, out) = keys_command(&later, &config, 181, &["retire", &new]);
    assert!(ok && out.contains(&format!("retired: {new}")), "{out}");
    assert_eq!(state(&later, 181, &new), "retired");
}

#[test]
fn a_missing_or_wrong_key_encryption_key_stops_serve_and_creates_no_key() {
    let server = Server::start();
    let db = server.db.clone();
    let key_file = server.dir.path().join("grantbox.db.key-encryption-key");
    let _dir = server.kill();
    let stored = |db: &str| {
        let probe = Server::start_with(Options {
            db: Some(db.into()),
            ..Options::default()
        });
        let count = query_integer(&probe, "SELECT COUNT(*) FROM signing_keys");
        drop(probe);
        count
    };

    // Missing.
    let hidden = key_file.with_extension("hidden");
    if db.starts_with("sqlite") {
        std::fs::rename(&key_file, &hidden).unwrap();
    }
    let stderr = serve_fails(&db, &[]);
    assert!(
        stderr.contains("signing keys but no key-encryption key was given"),
        "{stderr}"
    );
    if db.starts_with("sqlite") {
        assert!(stderr.contains("is missing"), "{stderr}");
        assert!(!key_file.exists(), "no new key file");
        std::fs::rename(&hidden, &key_file).unwrap();
    }

    // Wrong.
    let other = "b3RoZXIta2V5LWVuY3J5cHRpb24ta2V5LTMyLWJ5dGU";
    let stderr = serve_fails(&db, &[("GRANTBOX_KEY_ENCRYPTION_KEY", other)]);
    assert!(
        stderr.contains(
            "the key-encryption key from GRANTBOX_KEY_ENCRYPTION_KEY is not the one signing key"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains(other), "the key is not shown");

    // Malformed.
    let stderr = serve_fails(&db, &[("GRANTBOX_KEY_ENCRYPTION_KEY", "c2hvcnQ")]);
    assert!(
        stderr.contains("GRANTBOX_KEY_ENCRYPTION_KEY is 5 bytes long, not 32"),
        "{stderr}"
    );

    // Nothing was created in their place, and the right key still serves.
    assert_eq!(stored(&db), 2);
}

#[test]
fn postgres_without_a_key_encryption_key_refuses_to_create_keys() {
    let Some(postgres) = postgres_server("postgres_without_a_key_encryption_key") else {
        return;
    };
    let db = fresh_postgres_db(&postgres);
    let stderr = serve_fails(&db, &[]);
    assert!(
        stderr.contains("no key-encryption key: on PostgreSQL set GRANTBOX_KEY_ENCRYPTION_KEY"),
        "{stderr}"
    );
}

#[test]
fn two_instances_on_one_postgresql_see_a_rotation_within_the_reload_interval() {
    let Some(postgres) = postgres_server("two_instances_see_a_rotation") else {
        return;
    };
    let db = fresh_postgres_db(&postgres);
    let dir = tempfile::tempdir().unwrap();
    let reload_interval = 2;
    let config = config_file(dir.path(), 30, reload_interval);
    let options = || Options {
        db: Some(db.clone()),
        env: vec![("GRANTBOX_CONFIG".into(), config.clone())],
        ..Options::default()
    };
    let one = Server::start_with(options());
    let two = Server::start_with(options());
    assert_eq!(kids(&jwks(&one).0), kids(&jwks(&two).0));
    let (ok, out) = keys_command(&one, &config, 0, &["rotate", "--alg", "RS256"]);
    assert!(ok, "{out}");
    let new = out
        .lines()
        .find_map(|l| l.strip_prefix("kid: "))
        .unwrap()
        .to_owned();
    let rotated = Instant::now();
    for server in [&one, &two] {
        while !kids(&jwks(server).0).contains(&new) {
            // The stated bound, plus a second for the requests themselves.
            assert!(
                rotated.elapsed() < Duration::from_secs(reload_interval + 1),
                "{} did not publish {new} within {reload_interval} s",
                server.base
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(kids(&jwks(&one).0), kids(&jwks(&two).0));
}
