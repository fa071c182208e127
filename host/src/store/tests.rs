//! The store conformance suite: every operation, single use of codes and refresh tokens
//! under concurrency, and durability across reopening, written once and run against
//! SQLite files in a temporary directory (`store::tests::sqlite::*`) and against
//! PostgreSQL (`store::tests::postgres::*`), each test on a fresh database.
//!
//! The PostgreSQL runs need `GRANTBOX_TEST_POSTGRES`, a URL of a server where the
//! user may create databases (`.ci/run` starts one and sets it). Unset, they print a
//! note and pass; set and unreachable, they fail.

use super::*;
use crate::secret::token_hash;
use tempfile::TempDir;

const NOW: i64 = 1_700_000_000;

/// The environment variable naming the PostgreSQL server of the tests.
const POSTGRES_ENV: &str = "GRANTBOX_TEST_POSTGRES";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database for one test: a SQLite file in a temporary
/// directory, or a new database on the PostgreSQL server.
struct TestDb {
    url: String,
    _dir: Option<TempDir>,
}

impl TestDb {
    async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("grantbox.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let server = std::env::var(POSTGRES_ENV).expect("GRANTBOX_TEST_POSTGRES is set");
                TestDb {
                    url: fresh_postgres_database(&server).await,
                    _dir: None,
                }
            }
        }
    }
}

/// Creates `t_<random>` on the server at `server` and returns its URL.
async fn fresh_postgres_database(server: &str) -> String {
    use sqlx::Connection as _;
    let name = format!("t_{}", hex::encode(rand::random::<[u8; 8]>()));
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV}={server}: cannot connect: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
    let _ = admin.close().await;
    let mut url = url::Url::parse(server).expect("GRANTBOX_TEST_POSTGRES is a url");
    url.set_path(&name);
    url.to_string()
}

/// Whether the PostgreSQL variant of a test runs; says why not when it doesn't.
fn postgres_configured(test: &str) -> bool {
    let set = std::env::var_os(POSTGRES_ENV).is_some_and(|v| !v.is_empty());
    if !set {
        eprintln!("{test}: {POSTGRES_ENV} is not set; the postgresql run is skipped");
    }
    set
}

async fn open_temp(backend: Backend) -> (TestDb, Store) {
    let db = TestDb::new(backend).await;
    let store = Store::open(&db.url).await.expect("open store");
    (db, store)
}

/// Runs raw SQL on the store's own pool (to damage rows on purpose).
async fn execute(store: &Store, sql: &str) {
    match store {
        Store::Sqlite(_) => {
            let pool = store.sqlite_pool().expect("sqlite pool");
            sqlx::query(sql).execute(pool).await.expect(sql);
        }
        Store::Postgres(_) => {
            let pool = store.postgres_pool().expect("postgres pool");
            sqlx::query(sql).execute(pool).await.expect(sql);
        }
    }
}

/// A client row as a build before the later migrations wrote it (only the
/// columns of migration 0001), read back through this build.
async fn client_row_written_before_the_migrations(store: &Store) -> Client {
    execute(
        store,
        "INSERT INTO clients (client_id, name, redirect_uris, grant_types, scopes, public, trusted, created_at) \
         VALUES ('old', NULL, '[]', '[\"client_credentials\"]', '[]', FALSE, FALSE, 1)",
    )
    .await;
    store
        .find_client("old")
        .await
        .unwrap()
        .expect("the old row")
}

/// For each conformance test `async fn name(backend: Backend)`, a test
/// `sqlite::name` and a test `postgres::name`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
                async fn $name() {
                    if super::postgres_configured(stringify!($name)) {
                        super::$name(super::Backend::Postgres).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    clients_insert_find_list_and_conflict,
    concurrent_client_registrations_one_conflict,
    users_insert_find_and_conflict,
    tokens_insert_find_expire_and_revoke,
    insert_tokens_is_all_or_nothing,
    concurrent_new_grants_commit_together_and_fail_alone,
    exchanged_tokens_keep_audience_and_actor,
    codes_redeem_once_and_replay_revokes_the_grant,
    fifty_concurrent_redemptions_one_winner,
    concurrent_redemptions_of_many_codes_each_get_their_outcome,
    refresh_rotation_and_reuse,
    concurrent_rotations_of_many_families_each_get_their_outcome,
    find_refresh_of_a_rotated_token_revokes_the_family,
    refresh_expiry,
    concurrent_rotations_one_winner_whose_family_survives,
    kv_get_set_insert_new_delete,
    kv_insert_new_is_atomic,
    kv_usage_counts_live_keys_and_bytes,
    purge_expired_deletes_only_expired_rows_in_batches,
    a_transaction_is_decided_once_under_concurrency,
    client_auth_round_trips_and_assertion_jtis_are_used_once,
    everything_survives_reopening,
    undecodable_rows_are_corrupt_and_closed_stores_unavailable,
    login_failures_count_start_again_clear_and_purge,
    concurrent_login_failures_from_two_stores_are_all_counted,
    signing_keys_insert_list_retire_and_conflict,
    a_signing_key_from_one_store_is_seen_by_another,
    two_instances_starting_at_once_create_one_first_key_per_algorithm,
    initial_access_tokens_allow_their_uses_until_they_expire,
    a_single_use_initial_access_token_registers_one_of_many_concurrent_clients,
    registered_clients_are_read_updated_and_deleted_with_their_tokens,
    kill_switches_revoke_the_families_a_client_or_user_holds,
    client_update_and_previous_secret_round_trip,
    users_list_disable_password_consents_and_remove,
    audit_records_append_and_filter,
    instances_register_heartbeat_deregister_and_purge,
    reload_outcomes_record_purge_and_requests_reach_listeners,
    post_logout_redirect_uris_are_kept_verbatim_and_default_to_none,
    sign_ins_are_found_until_they_expire_and_go_with_their_client,
    a_client_profile_round_trips_and_an_unknown_one_is_corrupt,
    pushed_requests_are_taken_once_by_their_client_until_they_expire,
    pushed_requests_are_taken_once_across_instances,
    require_pushed_authorization_requests_round_trips_and_defaults_to_false,
    dpop_proofs_are_used_once_and_bindings_round_trip,
);

fn signing_key_row(kid: &str, created_at: i64) -> crate::store::SigningKeyRow {
    crate::store::SigningKeyRow {
        kid: kid.into(),
        alg: "ES256".into(),
        public_jwk: format!(r#"{{"kid":"{kid}","kty":"EC"}}"#),
        // Every byte value, so a text column or an encoding would show.
        private_sealed: (0..=255u8).collect(),
        kek_check: "0123456789abcdef".into(),
        created_at,
        activates_at: created_at + 300,
        retired_at: None,
        published_until: None,
    }
}

async fn signing_keys_insert_list_retire_and_conflict(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    assert!(store.list_signing_keys().await.unwrap().is_empty());
    let first = signing_key_row("kid-1", NOW);
    let second = signing_key_row("kid-0", NOW + 1);
    store.insert_signing_key(&second).await.unwrap();
    store.insert_signing_key(&first).await.unwrap();
    // Oldest first, whatever the insertion order and the kids' order.
    assert_eq!(
        store.list_signing_keys().await.unwrap(),
        [first.clone(), second.clone()]
    );
    let error = store.insert_signing_key(&first).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Conflict);
    assert!(error.to_string().contains("signing key `kid-1`"), "{error}");

    // A scheduled retirement, then an earlier one; a later one is refused.
    assert!(
        store
            .retire_signing_key("kid-1", NOW + 100, NOW + 3700)
            .await
            .unwrap()
    );
    assert!(
        store
            .retire_signing_key("kid-1", NOW + 50, NOW + 3650)
            .await
            .unwrap()
    );
    assert!(
        !store
            .retire_signing_key("kid-1", NOW + 60, NOW + 3660)
            .await
            .unwrap()
    );
    assert!(
        !store
            .retire_signing_key("no-such-kid", NOW, NOW)
            .await
            .unwrap()
    );
    let listed = store.list_signing_keys().await.unwrap();
    assert_eq!(
        (listed[0].retired_at, listed[0].published_until),
        (Some(NOW + 50), Some(NOW + 3650))
    );
    assert_eq!(
        (listed[1].retired_at, listed[1].published_until),
        (None, None)
    );
}

async fn a_signing_key_from_one_store_is_seen_by_another(backend: Backend) {
    let db = TestDb::new(backend).await;
    let one = Store::open(&db.url).await.unwrap();
    let two = Store::open(&db.url).await.unwrap();
    let key = signing_key_row("kid-shared", NOW);
    one.insert_signing_key(&key).await.unwrap();
    assert_eq!(two.list_signing_keys().await.unwrap(), [key]);
    assert!(
        two.retire_signing_key("kid-shared", NOW, NOW + 1)
            .await
            .unwrap()
    );
    assert_eq!(
        one.list_signing_keys().await.unwrap()[0].retired_at,
        Some(NOW)
    );
}

async fn two_instances_starting_at_once_create_one_first_key_per_algorithm(backend: Backend) {
    use crate::config::KeysConfig;
    use crate::keys::{Alg, KeyEncryptionKey, persist};
    let db = TestDb::new(backend).await;
    let kek = KeyEncryptionKey::generate().encode();
    let config = KeysConfig {
        algorithms: vec![Alg::ES256, Alg::EdDSA],
        ..KeysConfig::default()
    };
    // Four instances on one database, each with its own pool.
    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(Store::open(&db.url).await.expect("open"));
    }
    // Several rounds: a race lost once in a while would still show.
    for round in 0..3 {
        if round > 0 {
            execute(&instances[0], "DELETE FROM signing_keys").await;
        }
        let starts: Vec<_> = instances
            .iter()
            .map(|store| {
                let (store, url, config) = (store.clone(), db.url.clone(), config.clone());
                let kek = kek.clone();
                tokio::spawn(async move {
                    let opened = persist::open(&store, &config, &url, Some(kek.as_str()), NOW)
                        .await
                        .expect("keys open");
                    (
                        opened.created.len(),
                        persist::signing_kids(&opened.keys.infos(), NOW),
                    )
                })
            })
            .collect();
        let mut created = 0;
        let mut signing = Vec::new();
        for start in starts {
            let (count, kids) = start.await.expect("task");
            created += count;
            signing.push(kids);
        }
        let rows = instances[0].list_signing_keys().await.expect("list");
        let algs: Vec<&str> = rows.iter().map(|row| row.alg.as_str()).collect();
        assert_eq!(
            rows.len(),
            2,
            "one key per algorithm, round {round}: {algs:?}"
        );
        assert!(
            algs.contains(&"ES256") && algs.contains(&"EdDSA"),
            "{algs:?}"
        );
        assert_eq!(created, 2, "the keys were created once between them");
        assert!(
            signing.windows(2).all(|pair| pair[0] == pair[1]),
            "every instance signs with the same keys: {signing:?}"
        );
    }
    // A retired key is no usable key: the next start creates one again.
    let store = &instances[1];
    let es256 = store
        .list_signing_keys()
        .await
        .expect("list")
        .into_iter()
        .find(|row| row.alg == "ES256")
        .expect("an ES256 key");
    store
        .retire_signing_key(&es256.kid, NOW, NOW + 60)
        .await
        .expect("retire");
    let mut replacement = es256.clone();
    replacement.kid = "replacement".into();
    assert!(
        store
            .insert_first_signing_key(&replacement)
            .await
            .expect("insert")
    );
    replacement.kid = "another".into();
    assert!(
        !store
            .insert_first_signing_key(&replacement)
            .await
            .expect("insert")
    );
}

fn client(client_id: &str) -> Client {
    Client {
        client_id: client_id.into(),
        secret_hash: Some(token_hash("secret").to_vec()),
        name: Some("Example".into()),
        client_uri: Some("https://app.example/about".into()),
        redirect_uris: vec![
            "https://app.example/cb".into(),
            "http://127.0.0.1/cb".into(),
        ],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: vec!["read".into(), "write".into()],
        public: false,
        trusted: true,
        introspection: false,
        created_at: NOW,
        auth: ClientAuth::default(),
        resources: vec!["https://api.example/".into(), "urn:example:billing".into()],
        id_token_signed_response_alg: None,
        profile: None,
        access_token_format: AccessTokenFormat::Jwt,
        post_logout_redirect_uris: vec![
            "https://app.example/signed-out".into(),
            "com.example.app:/bye".into(),
        ],
        require_pushed_authorization_requests: false,
        dpop_bound_access_tokens: false,
    }
}

fn token(name: &str, kind: TokenKind, client_id: &str, grant_id: &str) -> NewToken {
    NewToken {
        token_hash: token_hash(name),
        kind,
        client_id: client_id.into(),
        subject: Some("sub-1".into()),
        scope: vec!["read".into(), "write".into()],
        grant_id: grant_id.into(),
        issued_at: NOW,
        expires_at: NOW + 3600,
        grant_expires_at: None,
        audience: Vec::new(),
        actor: None,
        dpop_jkt: None,
    }
}

fn pair(prefix: &str, client_id: &str, grant_id: &str) -> Vec<NewToken> {
    vec![
        token(
            &format!("{prefix}-access"),
            TokenKind::Access,
            client_id,
            grant_id,
        ),
        token(
            &format!("{prefix}-refresh"),
            TokenKind::Refresh,
            client_id,
            grant_id,
        ),
    ]
}

fn code(name: &str, client_id: &str, grant_id: &str) -> NewCode {
    NewCode {
        code_hash: token_hash(name),
        client_id: client_id.into(),
        subject: "sub-1".into(),
        redirect_uri: "https://app.example/cb".into(),
        scope: vec!["read".into()],
        data: vec![
            ("code_challenge".into(), "abc".into()),
            ("nonce".into(), "n-0".into()),
        ],
        grant_id: grant_id.into(),
        issued_at: NOW,
        expires_at: NOW + 60,
        resources: vec!["https://api.example/".into()],
        dpop_jkt: None,
    }
}

async fn active(store: &Store, name: &str, now: i64) -> bool {
    store
        .find_token(&token_hash(name), now)
        .await
        .expect("find token")
        .is_some()
}

/// With no commit checkpointing, the checkpointer alone copies committed
/// pages from the WAL into the database file, while the store serves.
#[tokio::test]
async fn the_checkpointer_copies_the_wal_into_the_database_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("checkpointed.db");
    let store = Store::open(path.to_str().expect("utf-8"))
        .await
        .expect("open");
    store.insert_client(&client("c1")).await.expect("client");
    // Past the first checkpoint: the migrations and the client are copied.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let before = std::fs::metadata(&path).expect("db file").len();
    for batch in 0..20 {
        let rows: Vec<NewToken> = (0..50)
            .flat_map(|i| pair(&format!("b{batch}-{i}"), "c1", &format!("g{batch}-{i}")))
            .collect();
        store
            .insert_tokens(&rows, GrantOrigin::New)
            .await
            .expect("insert");
    }
    let deadline = crate::clock::Clock::instant() + std::time::Duration::from_secs(10);
    loop {
        let after = std::fs::metadata(&path).expect("db file").len();
        if after > before {
            break;
        }
        assert!(
            crate::clock::Clock::instant() < deadline,
            "the database file stayed at {before} bytes: nothing checkpointed the WAL"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(active(&store, "b19-49-access", NOW).await);
    store.close().await;
}

#[tokio::test]
async fn open_accepts_urls_and_paths_and_sets_pragmas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().to_str().expect("utf-8 path");
    for url in [
        format!("{base}/plain.db"),
        format!("sqlite://{base}/double-slash.db"),
        format!("sqlite:{base}/single-colon.db"),
        format!("{base}/with?question-mark.db"),
    ] {
        let store = Store::open(&url).await.expect(&url);
        store.ping().await.expect("ping");
        let pool = store.sqlite_pool().expect("sqlite pool");
        let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .expect("journal_mode");
        assert_eq!(journal_mode, "wal", "{url}");
        let pragma = |name: &'static str| async move {
            sqlx::query_scalar::<_, i64>(&format!("PRAGMA {name}"))
                .fetch_one(pool)
                .await
                .expect(name)
        };
        // 1 = NORMAL.
        assert_eq!(pragma("synchronous").await, 1, "{url}");
        assert_eq!(pragma("foreign_keys").await, 1, "{url}");
        assert_eq!(pragma("busy_timeout").await, 5000, "{url}");
        // Commits never checkpoint: the checkpointer does (next test).
        assert_eq!(pragma("wal_autocheckpoint").await, 0, "{url}");
        store.close().await;
    }
    for name in [
        "plain.db",
        "double-slash.db",
        "single-colon.db",
        "with?question-mark.db",
    ] {
        assert!(dir.path().join(name).exists(), "{name} was not created");
    }

    let memory = Store::open("sqlite::memory:")
        .await
        .expect("in-memory store");
    memory.insert_client(&client("c")).await.expect("insert");
    assert!(memory.find_client("c").await.expect("find").is_some());

    for bad in ["", "postgres://127.0.0.1/grantbox?pool_size=0"] {
        let error = Store::open(bad).await.expect_err(bad);
        assert_eq!(error.kind(), StoreErrorKind::Other, "{bad}");
    }
    let missing_dir = format!("{base}/no/such/dir/x.db");
    let error = Store::open(&missing_dir)
        .await
        .expect_err("missing directory");
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error}");
}

async fn clients_insert_find_list_and_conflict(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let public = Client {
        secret_hash: None,
        public: true,
        trusted: false,
        introspection: false,
        name: None,
        redirect_uris: vec![],
        grant_types: vec!["urn:example:grant".into()],
        scopes: vec![],
        resources: vec![],
        access_token_format: AccessTokenFormat::Opaque,
        post_logout_redirect_uris: vec![],
        ..client("b-public")
    };
    store
        .insert_client(&client("a-conf"))
        .await
        .expect("insert");
    store.insert_client(&public).await.expect("insert public");
    let resource_server = Client {
        introspection: true,
        ..client("c-api")
    };
    store
        .insert_client(&resource_server)
        .await
        .expect("insert resource server");
    assert_eq!(
        store.find_client("c-api").await.expect("find"),
        Some(resource_server)
    );

    assert_eq!(
        store.find_client("a-conf").await.expect("find"),
        Some(client("a-conf"))
    );
    assert_eq!(
        store.find_client("b-public").await.expect("find"),
        Some(public.clone())
    );
    assert_eq!(store.find_client("nobody").await.expect("find"), None);
    let ids: Vec<String> = store
        .list_clients()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(ids, ["a-conf", "b-public", "c-api"]);

    let error = store
        .insert_client(&client("a-conf"))
        .await
        .expect_err("duplicate");
    assert_eq!(error.kind(), StoreErrorKind::Conflict);
    assert!(
        error.to_string().contains("`a-conf` already exists"),
        "{error}"
    );

    // A public client with a secret hash breaks the table's CHECK.
    let bad = Client {
        public: true,
        ..client("c-bad")
    };
    let error = store
        .insert_client(&bad)
        .await
        .expect_err("public with secret");
    assert_eq!(error.kind(), StoreErrorKind::Other, "{error}");
}

async fn concurrent_client_registrations_one_conflict(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    for round in 0..10 {
        let id = format!("same-{round}");
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                let client = client(&id);
                tokio::spawn(async move { store.insert_client(&client).await })
            })
            .collect();
        let mut inserted = 0;
        let mut conflicts = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(()) => inserted += 1,
                Err(error) => {
                    assert_eq!(error.kind(), StoreErrorKind::Conflict, "{error}");
                    assert!(
                        error
                            .to_string()
                            .contains(&format!("`{id}` already exists")),
                        "{error}"
                    );
                    conflicts += 1;
                }
            }
        }
        assert_eq!((inserted, conflicts), (1, 1), "round {round}");
    }
}

#[tokio::test]
async fn an_unreachable_postgresql_server_is_unavailable() {
    // Nothing listens on port 1; the pool retries until its acquire timeout.
    let error = Store::open("postgres://grantbox:secret-password@127.0.0.1:1/grantbox")
        .await
        .expect_err("no server");
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error}");
    assert!(!error.to_string().contains("secret-password"), "{error}");
}

#[tokio::test]
async fn postgresql_settings_come_from_the_url() {
    if !postgres_configured("postgresql_settings_come_from_the_url") {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let store = Store::open(&format!("{}?pool_size=3&statement_timeout=1500", db.url))
        .await
        .expect("open");
    assert_eq!(store.backend(), "postgresql");
    let pool = store.postgres_pool().expect("postgres pool");
    assert_eq!(pool.options().get_max_connections(), 3);
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(pool)
        .await
        .expect("show");
    assert_eq!(timeout, "1500ms");
    // A statement past the limit is cancelled and reported as unavailable.
    let error = sqlx::query("SELECT pg_sleep(3)")
        .execute(pool)
        .await
        .expect_err("cancelled");
    assert_eq!(
        error.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("57014")
    );
    // The store reads PostgreSQL's code as its portable kind.
    let error = sql::error("cannot sleep", error);
    assert_eq!(error.kind(), StoreErrorKind::Unavailable, "{error}");
    store.close().await;

    let store = Store::open(&db.url).await.expect("open");
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(store.postgres_pool().expect("postgres pool"))
        .await
        .expect("show");
    assert_eq!(timeout, "5s");
}

async fn users_insert_find_and_conflict(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let mut claims = serde_json::Map::new();
    claims.insert("name".into(), "Alice".into());
    claims.insert("email_verified".into(), true.into());
    let user = User {
        username: "alice".into(),
        subject: "s-alice".into(),
        password_hash: "$argon2id$...".into(),
        created_at: NOW,
        claims,
        disabled_at: None,
    };
    store.insert_user(&user).await.expect("insert");
    assert_eq!(
        store.find_user("alice").await.expect("find"),
        Some(user.clone())
    );
    assert_eq!(store.find_user("bob").await.expect("find"), None);

    let mut changed = user.claims.clone();
    changed.remove("name");
    changed.insert("email".into(), "alice@example.com".into());
    assert!(
        store
            .update_user_claims("alice", &changed)
            .await
            .expect("update")
    );
    assert!(
        !store
            .update_user_claims("bob", &changed)
            .await
            .expect("update")
    );
    let found = store
        .find_user("alice")
        .await
        .expect("find")
        .expect("alice");
    assert_eq!(found.claims, changed);
    assert_eq!(found.subject, user.subject);
    // UserInfo finds the user by the token's `sub`.
    assert_eq!(
        store
            .find_user_by_subject(&user.subject)
            .await
            .expect("find"),
        Some(found.clone())
    );
    assert_eq!(
        store.find_user_by_subject("alice").await.expect("find"),
        None
    );

    let error = store.insert_user(&user).await.expect_err("duplicate");
    assert_eq!(error.kind(), StoreErrorKind::Conflict);
    assert!(
        error.to_string().contains("`alice` already exists"),
        "{error}"
    );
}

async fn tokens_insert_find_expire_and_revoke(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    store.insert_client(&client("c2")).await.expect("client");
    store
        .insert_tokens(&pair("g1", "c1", "g1"), GrantOrigin::New)
        .await
        .expect("insert");
    store
        .insert_tokens(&pair("g2", "c1", "g2"), GrantOrigin::New)
        .await
        .expect("insert");
    store
        .insert_tokens(&[], GrantOrigin::New)
        .await
        .expect("insert nothing");

    let found = store
        .find_token(&token_hash("g1-access"), NOW)
        .await
        .expect("find")
        .expect("active");
    assert_eq!(
        found,
        TokenRecord {
            token_hash: token_hash("g1-access"),
            kind: TokenKind::Access,
            client_id: "c1".into(),
            subject: Some("sub-1".into()),
            scope: vec!["read".into(), "write".into()],
            grant_id: "g1".into(),
            issued_at: NOW,
            expires_at: NOW + 3600,
            grant_expires_at: None,
            audience: Vec::new(),
            actor: None,
            revoked_at: None,
            rotated_at: None,
            dpop_jkt: None,
        }
    );
    assert!(found.is_active(NOW));
    assert!(active(&store, "g1-access", NOW + 3599).await);
    assert!(
        !active(&store, "g1-access", NOW + 3600).await,
        "expired at expires_at"
    );
    assert!(!active(&store, "never-issued", NOW).await);

    // Revoking an access token leaves its refresh token alone.
    assert!(
        store
            .revoke_token(&token_hash("g1-access"), "c1", NOW)
            .await
            .expect("revoke")
    );
    assert!(!active(&store, "g1-access", NOW).await);
    assert!(active(&store, "g1-refresh", NOW).await);
    // Only the client's own tokens.
    assert!(
        !store
            .revoke_token(&token_hash("g2-access"), "c2", NOW)
            .await
            .expect("revoke")
    );
    assert!(active(&store, "g2-access", NOW).await);
    assert!(
        !store
            .revoke_token(&token_hash("nothing"), "c1", NOW)
            .await
            .expect("revoke")
    );
    // Revoking a refresh token revokes its family.
    assert!(
        store
            .revoke_token(&token_hash("g2-refresh"), "c1", NOW)
            .await
            .expect("revoke")
    );
    assert!(!active(&store, "g2-access", NOW).await);
    assert!(!active(&store, "g2-refresh", NOW).await);
    assert!(active(&store, "g1-refresh", NOW).await);

    assert_eq!(
        store.revoke_grant("g1", NOW).await.expect("revoke grant"),
        1
    );
    assert!(!active(&store, "g1-refresh", NOW).await);
    assert_eq!(
        store.revoke_grant("g1", NOW).await.expect("revoke again"),
        0
    );
}

/// Tokens of new grants from requests in flight share statements (group
/// commit): each request still gets its own outcome, and one bad request
/// neither fails nor drags in its neighbours.
async fn concurrent_new_grants_commit_together_and_fail_alone(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    store
        .insert_tokens(&pair("taken", "c1", "g-taken"), GrantOrigin::New)
        .await
        .expect("insert");
    let mut requests = Vec::new();
    for i in 0..60 {
        let store = store.clone();
        requests.push(tokio::spawn(async move {
            let rows = match i % 20 {
                7 => pair(&format!("orphan{i}"), "no-such-client", &format!("g{i}")),
                13 => vec![
                    token(
                        &format!("new{i}-access"),
                        TokenKind::Access,
                        "c1",
                        &format!("g{i}"),
                    ),
                    token("taken-refresh", TokenKind::Refresh, "c1", &format!("g{i}")),
                ],
                _ => pair(&format!("t{i}"), "c1", &format!("g{i}")),
            };
            store.insert_tokens(&rows, GrantOrigin::New).await
        }));
    }
    for (i, request) in requests.into_iter().enumerate() {
        let outcome = request.await.expect("task");
        match i % 20 {
            7 => {
                assert_eq!(
                    outcome.expect_err("unknown client").kind(),
                    StoreErrorKind::Other
                );
                assert!(!active(&store, &format!("orphan{i}-access"), NOW).await);
            }
            13 => {
                assert_eq!(
                    outcome.expect_err("duplicate").kind(),
                    StoreErrorKind::Conflict
                );
                assert!(!active(&store, &format!("new{i}-access"), NOW).await);
            }
            _ => {
                outcome.expect("committed");
                assert!(active(&store, &format!("t{i}-access"), NOW).await, "{i}");
                assert!(active(&store, &format!("t{i}-refresh"), NOW).await, "{i}");
            }
        }
    }
    assert!(active(&store, "taken-refresh", NOW).await);
}

async fn insert_tokens_is_all_or_nothing(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    store
        .insert_tokens(&pair("old", "c1", "g0"), GrantOrigin::New)
        .await
        .expect("insert");

    // The second token collides with a stored one: the first must not land either.
    let batch = vec![
        token("new-access", TokenKind::Access, "c1", "g1"),
        token("old-refresh", TokenKind::Refresh, "c1", "g1"),
    ];
    for origin in [GrantOrigin::New, GrantOrigin::Existing] {
        let error = store
            .insert_tokens(&batch, origin)
            .await
            .expect_err("duplicate");
        assert_eq!(error.kind(), StoreErrorKind::Conflict, "{origin:?}");
        assert!(!active(&store, "new-access", NOW).await, "{origin:?}");
    }

    let error = store
        .insert_tokens(&pair("orphan", "no-such-client", "g2"), GrantOrigin::New)
        .await
        .expect_err("unknown client");
    assert_eq!(error.kind(), StoreErrorKind::Other);
    assert!(error.to_string().contains("no such client"), "{error}");

    let mut spaced = token("spaced", TokenKind::Access, "c1", "g3");
    spaced.scope = vec!["two words".into()];
    let error = store
        .insert_tokens(&[spaced], GrantOrigin::New)
        .await
        .expect_err("bad scope");
    assert_eq!(error.kind(), StoreErrorKind::Other);

    let mut unscoped = token("unscoped", TokenKind::Access, "c1", "g4");
    unscoped.scope = vec![];
    unscoped.subject = None;
    store
        .insert_tokens(&[unscoped], GrantOrigin::New)
        .await
        .expect("insert");
    let found = store
        .find_token(&token_hash("unscoped"), NOW)
        .await
        .expect("find")
        .expect("active");
    assert_eq!((found.scope, found.subject), (vec![], None));
}

/// RFC 8693: an exchanged token keeps its audience (in order) and actor, and
/// joins the subject token's family, so revoking that grant revokes it too.
async fn exchanged_tokens_keep_audience_and_actor(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    store.insert_client(&client("c2")).await.expect("client");
    store
        .insert_tokens(&pair("subject", "c1", "g1"), GrantOrigin::New)
        .await
        .expect("insert");
    let mut exchanged = token("exchanged", TokenKind::Access, "c2", "g1");
    exchanged.audience = vec!["https://api.example/".into(), "urn:backend".into()];
    exchanged.actor = Some("svc-b".into());
    store
        .insert_tokens(&[exchanged], GrantOrigin::Existing)
        .await
        .expect("insert");

    let found = store
        .find_token(&token_hash("exchanged"), NOW)
        .await
        .expect("find")
        .expect("active");
    assert_eq!(
        found.audience,
        vec!["https://api.example/".to_owned(), "urn:backend".to_owned()]
    );
    assert_eq!(found.actor.as_deref(), Some("svc-b"));
    assert_eq!(found.client_id, "c2");
    let plain = store
        .find_token(&token_hash("subject-access"), NOW)
        .await
        .expect("find")
        .expect("active");
    assert_eq!((plain.audience, plain.actor), (vec![], None));

    assert_eq!(store.revoke_grant("g1", NOW).await.expect("revoke"), 3);
    assert!(!active(&store, "exchanged", NOW).await);
}

async fn codes_redeem_once_and_replay_revokes_the_grant(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    store.insert_client(&client("c2")).await.expect("client");
    store
        .insert_code(&code("code-1", "c1", "g1"))
        .await
        .expect("insert");
    assert_eq!(
        store
            .insert_code(&code("code-1", "c1", "g1"))
            .await
            .map_err(|e| e.kind()),
        Err(StoreErrorKind::Conflict)
    );

    // Another client cannot redeem it, and trying does not burn it.
    assert_eq!(
        store
            .redeem_code(&token_hash("code-1"), "c2", NOW)
            .await
            .expect("redeem"),
        RedeemOutcome::Unknown
    );
    let RedeemOutcome::Redeemed(record) = store
        .redeem_code(&token_hash("code-1"), "c1", NOW + 1)
        .await
        .expect("redeem")
    else {
        panic!("first redemption must succeed");
    };
    let expected = code("code-1", "c1", "g1");
    assert_eq!(
        record,
        CodeRecord {
            code_hash: expected.code_hash,
            client_id: expected.client_id,
            subject: expected.subject,
            redirect_uri: expected.redirect_uri,
            scope: expected.scope,
            data: expected.data,
            grant_id: expected.grant_id,
            issued_at: expected.issued_at,
            expires_at: expected.expires_at,
            redeemed_at: Some(NOW + 1),
            resources: expected.resources,
            dpop_jkt: None,
        }
    );

    store
        .insert_tokens(&pair("g1", "c1", "g1"), GrantOrigin::Existing)
        .await
        .expect("tokens");
    store
        .insert_tokens(&pair("other", "c1", "g-other"), GrantOrigin::New)
        .await
        .expect("tokens");
    assert_eq!(
        store
            .redeem_code(&token_hash("code-1"), "c1", NOW + 2)
            .await
            .expect("redeem"),
        RedeemOutcome::Replayed
    );
    assert!(!active(&store, "g1-access", NOW + 2).await);
    assert!(!active(&store, "g1-refresh", NOW + 2).await);
    assert!(active(&store, "other-access", NOW + 2).await);

    // Tokens of that grant inserted after the replay (the redeemer was
    // slower than the replayer) are born revoked.
    store
        .insert_tokens(&pair("late", "c1", "g1"), GrantOrigin::Existing)
        .await
        .expect("tokens");
    assert!(!active(&store, "late-access", NOW + 2).await);
    assert!(!active(&store, "late-refresh", NOW + 2).await);

    store
        .insert_code(&code("code-2", "c1", "g2"))
        .await
        .expect("insert");
    assert_eq!(
        store
            .redeem_code(&token_hash("code-2"), "c1", NOW + 60)
            .await
            .expect("redeem"),
        RedeemOutcome::Expired
    );
    assert_eq!(
        store
            .redeem_code(&token_hash("absent"), "c1", NOW)
            .await
            .expect("redeem"),
        RedeemOutcome::Unknown
    );
}

async fn fifty_concurrent_redemptions_one_winner(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    store
        .insert_code(&code("contested", "c1", "g1"))
        .await
        .expect("insert");

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .redeem_code(&token_hash("contested"), "c1", NOW + 1)
                    .await
                    .expect("redeem")
            })
        })
        .collect();
    let mut redeemed = 0;
    let mut replayed = 0;
    for task in tasks {
        match task.await.expect("task") {
            RedeemOutcome::Redeemed(_) => redeemed += 1,
            RedeemOutcome::Replayed => replayed += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((redeemed, replayed), (1, 49));
}

/// Rotations from requests in flight share a transaction (group commit):
/// each still gets its own outcome, and a refused one changes nothing of its
/// own nor of its neighbours.
async fn concurrent_rotations_of_many_families_each_get_their_outcome(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    for i in 0..40 {
        store
            .insert_tokens(
                &pair(&format!("t{i}"), "c1", &format!("g{i}")),
                GrantOrigin::New,
            )
            .await
            .expect("insert");
    }
    let mut requests = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        requests.push(tokio::spawn(async move {
            // Every tenth asks for new tokens of another family.
            let family = if i % 10 == 3 {
                "g-other".to_owned()
            } else {
                format!("g{i}")
            };
            let hash = token_hash(&format!("t{i}-refresh"));
            let new = pair(&format!("n{i}"), "c1", &family);
            store.rotate_refresh(&hash, "c1", NOW, &new).await
        }));
    }
    let unknown = store
        .rotate_refresh(&token_hash("nope"), "c1", NOW, &pair("u", "c1", "g0"))
        .await
        .expect("rotate");
    assert_eq!(unknown, RotateOutcome::Unknown);
    for (i, request) in requests.into_iter().enumerate() {
        let outcome = request.await.expect("task");
        if i % 10 == 3 {
            assert_eq!(
                outcome.expect_err("foreign family").kind(),
                StoreErrorKind::Other
            );
            assert!(!active(&store, &format!("n{i}-access"), NOW).await, "{i}");
            let old = token_hash(&format!("t{i}-refresh"));
            let still = store.find_refresh(&old, "c1", NOW).await.expect("find");
            assert!(
                still.is_some(),
                "{i}: a refused rotation leaves the old token"
            );
        } else {
            match outcome.expect("rotate") {
                RotateOutcome::Rotated(old) => assert_eq!(old.grant_id, format!("g{i}")),
                other => panic!("{i}: {other:?}"),
            }
            assert!(active(&store, &format!("n{i}-refresh"), NOW).await, "{i}");
        }
    }
    assert!(!active(&store, "u-access", NOW).await);
}

/// Redemptions from requests in flight share a transaction (group commit):
/// each gets its own outcome, and the misses among them are diagnosed alone.
async fn concurrent_redemptions_of_many_codes_each_get_their_outcome(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    store.insert_client(&client("c2")).await.expect("client");
    for i in 0..40 {
        let mut new = code(&format!("code{i}"), "c1", &format!("g{i}"));
        if i % 10 == 5 {
            new.expires_at = NOW - 1;
        }
        store.insert_code(&new).await.expect("code");
    }
    let mut requests = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        requests.push(tokio::spawn(async move {
            // Every tenth is presented by the wrong client.
            let client = if i % 10 == 7 { "c2" } else { "c1" };
            let hash = token_hash(&format!("code{i}"));
            store.redeem_code(&hash, client, NOW).await
        }));
    }
    for (i, request) in requests.into_iter().enumerate() {
        let outcome = request.await.expect("task").expect("redeem");
        match i % 10 {
            5 => assert_eq!(outcome, RedeemOutcome::Expired, "{i}"),
            7 => assert_eq!(outcome, RedeemOutcome::Unknown, "{i}"),
            _ => match outcome {
                RedeemOutcome::Redeemed(code) => assert_eq!(code.grant_id, format!("g{i}")),
                other => panic!("{i}: {other:?}"),
            },
        }
    }
    // Each redeemed code is spent: presenting it again is a replay.
    let again = store
        .redeem_code(&token_hash("code0"), "c1", NOW)
        .await
        .expect("redeem");
    assert_eq!(again, RedeemOutcome::Replayed);
    // The wrong client's attempt did not spend the code.
    let late = store
        .redeem_code(&token_hash("code7"), "c1", NOW)
        .await
        .expect("redeem");
    assert!(matches!(late, RedeemOutcome::Redeemed(_)), "{late:?}");
}

async fn refresh_rotation_and_reuse(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    store.insert_client(&client("c2")).await.expect("client");
    store
        .insert_tokens(&pair("t0", "c1", "g1"), GrantOrigin::New)
        .await
        .expect("insert");
    let rt0 = token_hash("t0-refresh");

    let found = store
        .find_refresh(&rt0, "c1", NOW)
        .await
        .expect("find")
        .expect("active");
    assert_eq!(
        (found.kind, found.grant_id.as_str()),
        (TokenKind::Refresh, "g1")
    );
    assert_eq!(
        store.find_refresh(&rt0, "c2", NOW).await.expect("find"),
        None
    );
    let access = token_hash("t0-access");
    assert_eq!(
        store.find_refresh(&access, "c1", NOW).await.expect("find"),
        None
    );

    // A new pair for another family is refused and changes nothing.
    let error = store
        .rotate_refresh(&rt0, "c1", NOW, &pair("stray", "c1", "g-other"))
        .await
        .expect_err("foreign family");
    assert_eq!(error.kind(), StoreErrorKind::Other);
    assert!(
        store
            .find_refresh(&rt0, "c1", NOW)
            .await
            .expect("find")
            .is_some()
    );
    assert!(!active(&store, "stray-access", NOW).await);

    assert_eq!(
        store
            .rotate_refresh(&rt0, "c2", NOW, &pair("t1", "c2", "g1"))
            .await
            .expect("rotate"),
        RotateOutcome::Unknown
    );
    let RotateOutcome::Rotated(old) = store
        .rotate_refresh(&rt0, "c1", NOW + 5, &pair("t1", "c1", "g1"))
        .await
        .expect("rotate")
    else {
        panic!("rotation must succeed");
    };
    assert_eq!((old.token_hash, old.rotated_at), (rt0, Some(NOW + 5)));
    assert!(!active(&store, "t0-refresh", NOW + 5).await);
    // The old access token stays valid until it expires.
    assert!(active(&store, "t0-access", NOW + 5).await);
    assert!(active(&store, "t1-access", NOW + 5).await);
    assert!(active(&store, "t1-refresh", NOW + 5).await);

    // A rotation losing a race (within the window) gets nothing and revokes nothing.
    assert_eq!(
        store
            .rotate_refresh(
                &rt0,
                "c1",
                NOW + 5 + ROTATION_RACE_WINDOW,
                &pair("t2", "c1", "g1")
            )
            .await
            .expect("rotate"),
        RotateOutcome::Unknown
    );
    assert!(active(&store, "t1-refresh", NOW + 6).await);
    assert!(!active(&store, "t2-access", NOW + 6).await);

    // Later, presenting the rotated token again is reuse: the family dies.
    let later = NOW + 6 + ROTATION_RACE_WINDOW;
    assert_eq!(
        store
            .rotate_refresh(&rt0, "c1", later, &pair("t3", "c1", "g1"))
            .await
            .expect("rotate"),
        RotateOutcome::Reused
    );
    for name in ["t0-access", "t1-access", "t1-refresh", "t3-access"] {
        assert!(!active(&store, name, later).await, "{name}");
    }
    // Revoked now: rotating the newest token fails too.
    assert_eq!(
        store
            .rotate_refresh(
                &token_hash("t1-refresh"),
                "c1",
                later,
                &pair("t4", "c1", "g1")
            )
            .await
            .expect("rotate"),
        RotateOutcome::Unknown
    );
}

async fn find_refresh_of_a_rotated_token_revokes_the_family(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    store
        .insert_tokens(&pair("t0", "c1", "g1"), GrantOrigin::New)
        .await
        .expect("insert");
    store
        .insert_tokens(&pair("x0", "c1", "g2"), GrantOrigin::New)
        .await
        .expect("insert");
    let rt0 = token_hash("t0-refresh");
    let outcome = store
        .rotate_refresh(&rt0, "c1", NOW, &pair("t1", "c1", "g1"))
        .await
        .expect("rotate");
    assert!(matches!(outcome, RotateOutcome::Rotated(_)));

    // Immediately, in the same second: the caller looks the old token up again.
    assert_eq!(
        store.find_refresh(&rt0, "c1", NOW).await.expect("find"),
        None
    );
    assert!(!active(&store, "t1-access", NOW).await);
    assert!(!active(&store, "t1-refresh", NOW).await);
    assert!(
        active(&store, "x0-refresh", NOW).await,
        "other families live on"
    );
}

async fn refresh_expiry(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    store
        .insert_tokens(&pair("t0", "c1", "g1"), GrantOrigin::New)
        .await
        .expect("insert");
    let rt0 = token_hash("t0-refresh");
    let expiry = NOW + 3600;
    assert_eq!(
        store.find_refresh(&rt0, "c1", expiry).await.expect("find"),
        None
    );
    assert_eq!(
        store
            .rotate_refresh(&rt0, "c1", expiry, &pair("t1", "c1", "g1"))
            .await
            .expect("rotate"),
        RotateOutcome::Expired
    );
    assert!(!active(&store, "t1-access", NOW).await);
}

async fn concurrent_rotations_one_winner_whose_family_survives(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    store
        .insert_tokens(&pair("t0", "c1", "g1"), GrantOrigin::New)
        .await
        .expect("insert");

    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let new = pair(&format!("t1-{i}"), "c1", "g1");
                let outcome = store
                    .rotate_refresh(&token_hash("t0-refresh"), "c1", NOW, &new)
                    .await
                    .expect("rotate");
                (i, outcome)
            })
        })
        .collect();
    let mut winners = vec![];
    for task in tasks {
        match task.await.expect("task") {
            (i, RotateOutcome::Rotated(_)) => winners.push(i),
            (_, RotateOutcome::Unknown) => {}
            (_, other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = winners[0];
    for i in 0..50 {
        let expect = i == winner;
        assert_eq!(
            active(&store, &format!("t1-{i}-access"), NOW).await,
            expect,
            "{i}"
        );
        assert_eq!(
            active(&store, &format!("t1-{i}-refresh"), NOW).await,
            expect,
            "{i}"
        );
    }
}

async fn kv_get_set_insert_new_delete(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    assert_eq!(store.kv_get("p", "k", NOW).await.expect("get"), None);
    store.kv_set("p", "k", b"v1", None).await.expect("set");
    assert_eq!(
        store.kv_get("p", "k", NOW).await.expect("get"),
        Some(b"v1".to_vec())
    );
    assert_eq!(
        store.kv_get("other", "k", NOW).await.expect("get"),
        None,
        "namespaces are apart"
    );

    store
        .kv_set("p", "k", b"v2", Some(NOW + 10))
        .await
        .expect("overwrite");
    assert_eq!(
        store.kv_get("p", "k", NOW + 9).await.expect("get"),
        Some(b"v2".to_vec())
    );
    assert_eq!(
        store.kv_get("p", "k", NOW + 10).await.expect("get"),
        None,
        "expired"
    );

    assert!(
        !store
            .kv_insert_new("p", "k", b"v3", None, NOW + 9)
            .await
            .expect("insert")
    );
    assert_eq!(
        store.kv_get("p", "k", NOW + 9).await.expect("get"),
        Some(b"v2".to_vec())
    );
    assert!(
        store
            .kv_insert_new("p", "k", b"v3", None, NOW + 10)
            .await
            .expect("insert")
    );
    assert_eq!(
        store.kv_get("p", "k", NOW + 99).await.expect("get"),
        Some(b"v3".to_vec())
    );
    assert!(
        !store
            .kv_insert_new("p", "k", b"v4", None, NOW + 99)
            .await
            .expect("insert")
    );
    assert!(
        store
            .kv_insert_new("p", "fresh", b"", Some(NOW + 1), NOW)
            .await
            .expect("insert")
    );
    assert_eq!(
        store.kv_get("p", "fresh", NOW).await.expect("get"),
        Some(vec![])
    );

    assert!(store.kv_delete("p", "k").await.expect("delete"));
    assert!(!store.kv_delete("p", "k").await.expect("delete again"));
    assert_eq!(store.kv_get("p", "k", NOW).await.expect("get"), None);
}

async fn kv_usage_counts_live_keys_and_bytes(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let empty = store.kv_usage("p", "a", NOW).await.expect("usage");
    assert_eq!(empty, KvUsage::default());
    store.kv_set("p", "a", b"12345", None).await.expect("set");
    store
        .kv_set("p", "bb", b"1", Some(NOW + 10))
        .await
        .expect("set");
    store.kv_set("other", "a", b"123", None).await.expect("set");
    let usage = store.kv_usage("p", "a", NOW).await.expect("usage");
    assert_eq!(
        usage,
        KvUsage {
            keys: 2,
            bytes: 1 + 5 + 2 + 1,
            key_bytes: Some(6),
        }
    );
    // Expired entries count for nothing, and an absent key has no size.
    let later = store.kv_usage("p", "zz", NOW + 10).await.expect("usage");
    assert_eq!(
        later,
        KvUsage {
            keys: 1,
            bytes: 6,
            key_bytes: None,
        }
    );
}

async fn kv_insert_new_is_atomic(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let tasks: Vec<_> = (0..50u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .kv_insert_new("p", "lock", &[i], Some(NOW + 30), NOW)
                    .await
                    .expect("insert")
            })
        })
        .collect();
    let mut inserted = 0;
    for task in tasks {
        inserted += usize::from(task.await.expect("task"));
    }
    assert_eq!(inserted, 1);
}

async fn purge_expired_deletes_only_expired_rows_in_batches(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    // More kv rows than one purge batch.
    for i in 0..1200 {
        store
            .kv_set("p", &format!("old-{i}"), b"x", Some(NOW))
            .await
            .expect("set");
    }
    store.kv_set("p", "forever", b"x", None).await.expect("set");
    store
        .kv_set("p", "later", b"x", Some(NOW + 1))
        .await
        .expect("set");

    let mut expired = token("expired", TokenKind::Access, "c1", "g1");
    expired.expires_at = NOW;
    store
        .insert_tokens(&[expired], GrantOrigin::New)
        .await
        .expect("tokens");
    store
        .insert_tokens(&pair("live", "c1", "g2"), GrantOrigin::New)
        .await
        .expect("tokens");
    store
        .insert_tokens(&pair("revoked", "c1", "g3"), GrantOrigin::New)
        .await
        .expect("tokens");
    store.revoke_grant("g3", NOW - 10).await.expect("revoke");

    let mut old_code = code("old-code", "c1", "g4");
    old_code.expires_at = NOW;
    store.insert_code(&old_code).await.expect("code");
    store
        .insert_code(&code("redeemed-code", "c1", "g5"))
        .await
        .expect("code");
    store
        .redeem_code(&token_hash("redeemed-code"), "c1", NOW - 1)
        .await
        .expect("redeem");

    assert_eq!(store.purge_expired(NOW).await.expect("purge"), 1200 + 1 + 1);
    assert_eq!(store.purge_expired(NOW).await.expect("purge again"), 0);

    assert!(
        store
            .kv_get("p", "forever", NOW)
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        store
            .kv_get("p", "later", NOW)
            .await
            .expect("get")
            .is_some()
    );
    assert!(active(&store, "live-refresh", NOW).await);
    // A redeemed code stays until it expires, so a replay is still caught.
    assert_eq!(
        store
            .redeem_code(&token_hash("redeemed-code"), "c1", NOW)
            .await
            .expect("redeem"),
        RedeemOutcome::Replayed
    );
    assert_eq!(
        store
            .redeem_code(&token_hash("old-code"), "c1", NOW)
            .await
            .expect("redeem"),
        RedeemOutcome::Unknown
    );

    // Revoked tokens go once their expiry passes, with everything else.
    assert_eq!(
        store.purge_expired(NOW + 3600).await.expect("purge"),
        2 + 2 + 1 + 1
    );
}

async fn a_transaction_is_decided_once_under_concurrency(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let decisions: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_decision(&token_hash("transaction-1"), NOW + 600)
                    .await
                    .expect("claim")
            })
        })
        .collect();
    let mut won = 0;
    for decision in decisions {
        won += usize::from(decision.await.expect("task"));
    }
    assert_eq!(won, 1, "one decision wins");
    assert!(
        store
            .claim_decision(&token_hash("transaction-2"), NOW + 600)
            .await
            .expect("claim")
    );
    // Purged once the transaction itself would have expired.
    assert_eq!(store.purge_expired(NOW + 599).await.expect("purge"), 0);
    assert_eq!(store.purge_expired(NOW + 600).await.expect("purge"), 2);
}

async fn client_auth_round_trips_and_assertion_jtis_are_used_once(backend: Backend) {
    use crate::oauth::client_auth::AuthMethod;
    let (_db, store) = open_temp(backend).await;
    let keyed = Client {
        secret_hash: None,
        auth: ClientAuth {
            method: Some(AuthMethod::PrivateKeyJwt),
            jwks: Some(r#"{"keys":[]}"#.into()),
            secret_sealed: None,
            previous_secret: None,
        },
        ..client("keyed")
    };
    let hmac = Client {
        auth: ClientAuth {
            method: Some(AuthMethod::ClientSecretJwt),
            jwks: None,
            secret_sealed: Some(vec![1, 0, 255, 7]),
            previous_secret: None,
        },
        ..client("hmac")
    };
    for c in [&keyed, &hmac] {
        store.insert_client(c).await.expect("insert");
        assert_eq!(
            store
                .find_client(&c.client_id)
                .await
                .expect("find")
                .as_ref(),
            Some(c)
        );
    }

    // Once per client and jti until it expires, across concurrent requests.
    let uses: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .use_client_assertion("keyed", "j1", NOW + 60, NOW)
                    .await
                    .expect("use")
            })
        })
        .collect();
    let mut accepted = 0;
    for used in uses {
        accepted += usize::from(used.await.expect("task"));
    }
    assert_eq!(accepted, 1, "one use of a jti wins");
    // Another client may use the same jti.
    assert!(
        store
            .use_client_assertion("hmac", "j1", NOW + 60, NOW)
            .await
            .expect("use")
    );
    assert!(
        !store
            .use_client_assertion("keyed", "j1", NOW + 90, NOW + 59)
            .await
            .expect("use")
    );
    // Expired but not purged yet: the jti may come back.
    assert!(
        store
            .use_client_assertion("keyed", "j1", NOW + 120, NOW + 60)
            .await
            .expect("use")
    );
    assert!(
        store
            .use_client_assertion("keyed", "j2", NOW + 60, NOW)
            .await
            .expect("use")
    );
    // Purged once expired: j2 and hmac's j1 at NOW + 60, keyed's j1 at NOW + 120.
    assert_eq!(store.purge_expired(NOW + 59).await.expect("purge"), 0);
    assert_eq!(store.purge_expired(NOW + 60).await.expect("purge"), 2);
    assert_eq!(store.purge_expired(NOW + 120).await.expect("purge"), 1);
}

async fn dpop_proofs_are_used_once_and_bindings_round_trip(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    // A jti once per key until its proof leaves the window, across
    // concurrent requests.
    let uses: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .use_dpop_proof("jkt-a", "j1", NOW + 61, NOW)
                    .await
                    .expect("use")
            })
        })
        .collect();
    let mut accepted = 0;
    for used in uses {
        accepted += usize::from(used.await.expect("task"));
    }
    assert_eq!(accepted, 1, "one use of a jti wins");
    // Another key may use the same jti; the same key not until it expired.
    assert!(
        store
            .use_dpop_proof("jkt-b", "j1", NOW + 61, NOW)
            .await
            .expect("use")
    );
    assert!(
        !store
            .use_dpop_proof("jkt-a", "j1", NOW + 70, NOW + 60)
            .await
            .expect("use")
    );
    assert!(
        store
            .use_dpop_proof("jkt-a", "j1", NOW + 122, NOW + 61)
            .await
            .expect("use")
    );
    assert_eq!(store.purge_expired(NOW + 60).await.expect("purge"), 0);
    assert_eq!(store.purge_expired(NOW + 61).await.expect("purge"), 1);
    assert_eq!(store.purge_expired(NOW + 122).await.expect("purge"), 1);

    // The client's requirement, a code's dpop_jkt and a token's binding
    // come back as stored.
    let required = Client {
        dpop_bound_access_tokens: true,
        ..client("dpop")
    };
    store.insert_client(&required).await.expect("client");
    let found = store.find_client("dpop").await.expect("find");
    assert_eq!(found.as_ref(), Some(&required));
    let bound_code = NewCode {
        dpop_jkt: Some("jkt-a".into()),
        ..code("bound-code", "dpop", "g-dpop")
    };
    store.insert_code(&bound_code).await.expect("code");
    let RedeemOutcome::Redeemed(record) = store
        .redeem_code(&token_hash("bound-code"), "dpop", NOW + 1)
        .await
        .expect("redeem")
    else {
        panic!("the code redeems");
    };
    assert_eq!(record.dpop_jkt.as_deref(), Some("jkt-a"));
    let tokens: Vec<NewToken> = pair("bound", "dpop", "g-dpop")
        .into_iter()
        .map(|t| NewToken {
            dpop_jkt: Some("jkt-a".into()),
            ..t
        })
        .collect();
    store
        .insert_tokens(&tokens, GrantOrigin::Existing)
        .await
        .expect("tokens");
    let access = store
        .find_token(&token_hash("bound-access"), NOW + 1)
        .await
        .expect("find")
        .expect("active");
    assert_eq!(access.dpop_jkt.as_deref(), Some("jkt-a"));
    // A rotation hands the old refresh token's binding back to the caller.
    let RotateOutcome::Rotated(old) = store
        .rotate_refresh(
            &token_hash("bound-refresh"),
            "dpop",
            NOW + 2,
            &pair("bound-2", "dpop", "g-dpop"),
        )
        .await
        .expect("rotate")
    else {
        panic!("the refresh token rotates");
    };
    assert_eq!(old.dpop_jkt.as_deref(), Some("jkt-a"));
}

async fn everything_survives_reopening(backend: Backend) {
    let db = TestDb::new(backend).await;
    let url = db.url.clone();
    {
        let store = Store::open(&url).await.expect("open");
        store.insert_client(&client("c1")).await.expect("client");
        store
            .insert_user(&User {
                username: "alice".into(),
                subject: "s-alice".into(),
                password_hash: "phc".into(),
                created_at: NOW,
                claims: serde_json::Map::new(),
                disabled_at: None,
            })
            .await
            .expect("user");
        store
            .insert_tokens(&pair("t0", "c1", "g1"), GrantOrigin::New)
            .await
            .expect("tokens");
        store
            .insert_code(&code("code-1", "c1", "g2"))
            .await
            .expect("code");
        store.kv_set("p", "k", b"v", None).await.expect("kv");
        // No close(): the pool is simply dropped, as on a crash.
    }
    let store = Store::open(&url).await.expect("reopen");
    assert_eq!(
        store.find_client("c1").await.expect("client"),
        Some(client("c1"))
    );
    assert_eq!(
        store
            .find_user("alice")
            .await
            .expect("user")
            .map(|u| u.subject),
        Some("s-alice".into())
    );
    assert!(active(&store, "t0-access", NOW).await);
    assert!(
        store
            .find_refresh(&token_hash("t0-refresh"), "c1", NOW)
            .await
            .expect("find")
            .is_some()
    );
    assert!(matches!(
        store
            .redeem_code(&token_hash("code-1"), "c1", NOW)
            .await
            .expect("redeem"),
        RedeemOutcome::Redeemed(_)
    ));
    assert_eq!(
        store.kv_get("p", "k", NOW).await.expect("kv"),
        Some(b"v".to_vec())
    );
    store.close().await;

    // Migrations already applied are not applied again, and the redemption stuck.
    let store = Store::open(&url).await.expect("reopen again");
    assert_eq!(
        store
            .redeem_code(&token_hash("code-1"), "c1", NOW)
            .await
            .expect("redeem"),
        RedeemOutcome::Replayed
    );
}

async fn undecodable_rows_are_corrupt_and_closed_stores_unavailable(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    execute(
        &store,
        "UPDATE clients SET scopes = 'not json' WHERE client_id = 'c1'",
    )
    .await;
    let error = store.find_client("c1").await.expect_err("corrupt");
    assert_eq!(error.kind(), StoreErrorKind::Corrupt);
    assert!(
        error.to_string().contains("scopes of client `c1`"),
        "{error}"
    );

    // A code whose data cannot be decoded is reported, and stays unredeemed.
    store
        .insert_code(&code("code-1", "c1", "g1"))
        .await
        .expect("code");
    execute(&store, "UPDATE codes SET data = '[[\"only-a-name\"]]'").await;
    let error = store
        .redeem_code(&token_hash("code-1"), "c1", NOW)
        .await
        .expect_err("corrupt");
    assert_eq!(error.kind(), StoreErrorKind::Corrupt, "{error}");
    let redeemed_at: Option<i64> = match &store {
        Store::Sqlite(_) => {
            let pool = store.sqlite_pool().expect("sqlite pool");
            sqlx::query_scalar("SELECT redeemed_at FROM codes")
                .fetch_one(pool)
                .await
                .expect("read")
        }
        Store::Postgres(_) => {
            let pool = store.postgres_pool().expect("postgres pool");
            sqlx::query_scalar("SELECT redeemed_at FROM codes")
                .fetch_one(pool)
                .await
                .expect("read")
        }
    };
    assert_eq!(redeemed_at, None);

    store.close().await;
    let error = store.ping().await.expect_err("closed");
    assert_eq!(error.kind(), StoreErrorKind::Unavailable);
}

fn names(counters: &[&str]) -> Vec<String> {
    counters.iter().map(|c| (*c).to_owned()).collect()
}

fn counts(rows: &[LoginFailures]) -> Vec<(String, i64, i64)> {
    let mut counts: Vec<_> = rows
        .iter()
        .map(|row| (row.counter.clone(), row.failures, row.last_failure_at))
        .collect();
    counts.sort();
    counts
}

async fn login_failures_count_start_again_clear_and_purge(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let both = names(&["pair:192.0.2.1 alice", "username:alice"]);
    assert!(
        store
            .find_login_failures(&both, NOW - 100)
            .await
            .expect("find")
            .is_empty()
    );
    for at in [NOW - 20, NOW - 10] {
        store
            .add_login_failure(&both, at, at - 100)
            .await
            .expect("add");
    }
    // A counter named twice counts once.
    let added = store
        .add_login_failure(
            &names(&["pair:192.0.2.1 alice", "username:alice", "username:alice"]),
            NOW,
            NOW - 100,
        )
        .await
        .expect("add");
    let expected = vec![
        ("pair:192.0.2.1 alice".to_owned(), 3, NOW),
        ("username:alice".to_owned(), 3, NOW),
    ];
    assert_eq!(counts(&added), expected);
    let found = store
        .find_login_failures(
            &names(&["username:alice", "pair:192.0.2.1 alice", "username:bob"]),
            NOW - 100,
        )
        .await
        .expect("find");
    assert_eq!(counts(&found), expected);
    // Past the reset time a counter counts as zero, and starts again from one.
    assert!(
        store
            .find_login_failures(&both, NOW)
            .await
            .expect("find")
            .is_empty()
    );
    let again = store
        .add_login_failure(&names(&["username:alice"]), NOW + 500, NOW + 400)
        .await
        .expect("add");
    assert_eq!(
        counts(&again),
        vec![("username:alice".to_owned(), 1, NOW + 500)]
    );
    // A late failure never moves the last failure back.
    let late = store
        .add_login_failure(&names(&["username:alice"]), NOW + 490, NOW + 400)
        .await
        .expect("add");
    assert_eq!(
        counts(&late),
        vec![("username:alice".to_owned(), 2, NOW + 500)]
    );

    store
        .clear_login_failures("pair:192.0.2.1 alice")
        .await
        .expect("clear");
    assert_eq!(
        counts(
            &store
                .find_login_failures(&both, NOW - 100)
                .await
                .expect("find")
        ),
        vec![("username:alice".to_owned(), 2, NOW + 500)]
    );

    // More old counters than one purge batch; the recent one stays.
    let old: Vec<String> = (0..1200)
        .map(|i| format!("address:10.0.{}.{}", i / 256, i % 256))
        .collect();
    store
        .add_login_failure(&old, NOW, NOW - 100)
        .await
        .expect("add many");
    assert_eq!(store.purge_login_failures(NOW).await.expect("purge"), 1200);
    assert_eq!(
        store.purge_login_failures(NOW).await.expect("purge again"),
        0
    );
    assert_eq!(
        store
            .find_login_failures(&names(&["username:alice"]), NOW)
            .await
            .expect("find")
            .len(),
        1
    );
}

/// Two stores on one database stand for two instances: no failure is lost
/// when both count at once.
async fn concurrent_login_failures_from_two_stores_are_all_counted(backend: Backend) {
    let (db, first) = open_temp(backend).await;
    let second = Store::open(&db.url).await.expect("a second store");
    let counters = names(&[
        "pair:192.0.2.1 alice",
        "username:alice",
        "address:192.0.2.1",
    ]);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let counters = counters.clone();
        tasks.push(tokio::spawn(async move {
            store
                .add_login_failure(&counters, NOW, NOW - 100)
                .await
                .expect("add")
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let found = second
        .find_login_failures(&counters, NOW - 100)
        .await
        .expect("find");
    assert_eq!(found.len(), 3);
    assert!(found.iter().all(|row| row.failures == 40), "{found:?}");
}

fn initial_access_token(
    name: &str,
    uses_left: Option<i64>,
    expires_at: Option<i64>,
) -> InitialAccessToken {
    InitialAccessToken {
        token_hash: token_hash(name),
        uses_left,
        created_at: NOW,
        expires_at,
    }
}

async fn initial_access_tokens_allow_their_uses_until_they_expire(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let twice = initial_access_token("twice", Some(2), Some(NOW + 60));
    let forever = initial_access_token("forever", None, None);
    store.insert_initial_access_token(&twice).await.unwrap();
    store.insert_initial_access_token(&forever).await.unwrap();
    let error = store.insert_initial_access_token(&twice).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Conflict);
    assert!(!error.to_string().contains("twice"), "{error}");

    let usable = |name: &'static str, now: i64| {
        let store = store.clone();
        async move {
            store
                .initial_access_token_usable(&token_hash(name), now)
                .await
                .unwrap()
        }
    };
    assert!(usable("twice", NOW).await);
    assert!(!usable("twice", NOW + 60).await, "expired at expires_at");
    assert!(!usable("unknown", NOW).await);
    assert!(usable("forever", NOW + 100_000_000).await);

    let register = |client_id: &'static str, initial: &'static str, now: i64| {
        let store = store.clone();
        async move {
            store
                .register_client(
                    &client(client_id),
                    Some(&token_hash(initial)),
                    &token_hash(&format!("rat-{client_id}")),
                    now,
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(
        register("c1", "twice", NOW).await,
        RegisterOutcome::Registered
    );
    assert_eq!(
        register("c2", "twice", NOW + 60).await,
        RegisterOutcome::InitialAccessTokenRefused,
        "expired"
    );
    assert_eq!(
        store.find_client("c2").await.unwrap(),
        None,
        "nothing stored"
    );
    assert_eq!(
        register("c2", "twice", NOW).await,
        RegisterOutcome::Registered
    );
    assert!(!usable("twice", NOW).await, "used up");
    assert_eq!(
        register("c3", "twice", NOW).await,
        RegisterOutcome::InitialAccessTokenRefused
    );
    assert_eq!(
        register("c3", "unknown", NOW).await,
        RegisterOutcome::InitialAccessTokenRefused
    );
    for client_id in ["c3", "c4", "c5"] {
        assert_eq!(
            register(client_id, "forever", NOW).await,
            RegisterOutcome::Registered
        );
    }
    assert!(
        usable("forever", NOW).await,
        "a multi-use token stays usable"
    );

    // A taken client id stores nothing and spends no use.
    let once = initial_access_token("once", Some(1), None);
    store.insert_initial_access_token(&once).await.unwrap();
    let error = store
        .register_client(
            &client("c1"),
            Some(&token_hash("once")),
            &token_hash("other"),
            NOW,
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Conflict);
    assert!(
        usable("once", NOW).await,
        "the failed registration spent no use"
    );
    // Registration without an initial access token (open registration).
    assert_eq!(
        store
            .register_client(&client("open"), None, &token_hash("rat-open"), NOW)
            .await
            .unwrap(),
        RegisterOutcome::Registered
    );
    assert!(
        store
            .registration_token_matches("open", &token_hash("rat-open"))
            .await
            .unwrap()
    );
}

async fn a_single_use_initial_access_token_registers_one_of_many_concurrent_clients(
    backend: Backend,
) {
    let (_db, store) = open_temp(backend).await;
    store
        .insert_initial_access_token(&initial_access_token("once", Some(1), None))
        .await
        .unwrap();
    let attempts = (0..16).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .register_client(
                    &client(&format!("racer-{i}")),
                    Some(&token_hash("once")),
                    &token_hash(&format!("rat-{i}")),
                    NOW,
                )
                .await
                .unwrap()
        })
    });
    let mut registered = 0;
    for attempt in attempts {
        if attempt.await.unwrap() == RegisterOutcome::Registered {
            registered += 1;
        }
    }
    assert_eq!(registered, 1);
    assert_eq!(store.list_clients().await.unwrap().len(), 1);
}

async fn registered_clients_are_read_updated_and_deleted_with_their_tokens(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let registered = client("dyn");
    store
        .register_client(&registered, None, &token_hash("rat"), NOW)
        .await
        .unwrap();
    store.insert_client(&client("operator")).await.unwrap();
    let matches = |client_id: &'static str, token: &'static str| {
        let store = store.clone();
        async move {
            store
                .registration_token_matches(client_id, &token_hash(token))
                .await
                .unwrap()
        }
    };
    assert!(matches("dyn", "rat").await);
    assert!(!matches("dyn", "wrong").await);
    assert!(!matches("operator", "rat").await, "bound to its client");
    assert!(
        !matches("operator", "").await,
        "an operator's client has none"
    );
    assert_eq!(
        store.find_client("dyn").await.unwrap(),
        Some(registered.clone())
    );

    // An update (the operator's operation) keeps the registration access token.
    let updated = Client {
        name: None,
        redirect_uris: vec!["https://new.example/cb".into()],
        scopes: vec!["read".into()],
        ..registered.clone()
    };
    assert!(store.update_client(&updated).await.unwrap());
    assert_eq!(store.find_client("dyn").await.unwrap(), Some(updated));
    assert!(matches("dyn", "rat").await);

    // A deletion takes the registration access token with the client.
    store
        .insert_tokens(&pair("dyn", "dyn", "grant-dyn"), GrantOrigin::New)
        .await
        .unwrap();
    assert_eq!(store.delete_client("dyn", NOW).await.unwrap(), Some(2));
    assert_eq!(store.find_client("dyn").await.unwrap(), None);
    assert!(
        !matches("dyn", "rat").await,
        "its registration token is gone"
    );
    assert_eq!(
        store
            .find_token(&token_hash("dyn-access"), NOW)
            .await
            .unwrap(),
        None
    );
    // The id is free again, for a fresh registration with a new token.
    store
        .register_client(&registered, None, &token_hash("rat-2"), NOW)
        .await
        .unwrap();
    assert!(matches("dyn", "rat-2").await);
    assert!(!matches("dyn", "rat").await);
}

/// A token of `subject` (the fixtures' tokens are all `sub-1`'s).
fn pair_of(prefix: &str, client_id: &str, grant_id: &str, subject: &str) -> Vec<NewToken> {
    pair(prefix, client_id, grant_id)
        .into_iter()
        .map(|t| NewToken {
            subject: Some(subject.into()),
            ..t
        })
        .collect()
}

async fn kill_switches_revoke_the_families_a_client_or_user_holds(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    for id in ["c1", "c2"] {
        store.insert_client(&client(id)).await.expect("client");
    }
    store
        .insert_tokens(&pair_of("a", "c1", "g1", "alice"), GrantOrigin::New)
        .await
        .expect("tokens");
    store
        .insert_tokens(&pair_of("b", "c2", "g2", "alice"), GrantOrigin::New)
        .await
        .expect("tokens");
    store
        .insert_tokens(&pair_of("c", "c2", "g3", "bob"), GrantOrigin::New)
        .await
        .expect("tokens");
    // A code of c1 not redeemed yet: redeemed after the switch, it is a replay.
    store
        .insert_code(&code("code-1", "c1", "g4"))
        .await
        .expect("code");

    assert_eq!(store.revoke_client_tokens("c1", NOW + 5).await.unwrap(), 2);
    assert!(
        !active(&store, "a-access", NOW + 10).await && !active(&store, "a-refresh", NOW + 10).await
    );
    assert!(
        active(&store, "b-access", NOW + 10).await,
        "another client's tokens stay"
    );
    assert_eq!(
        store
            .redeem_code(&token_hash("code-1"), "c1", NOW + 6)
            .await
            .unwrap(),
        RedeemOutcome::Replayed
    );
    // Tokens a late insert adds to a revoked family are born revoked.
    store
        .insert_tokens(&pair_of("late", "c1", "g4", "alice"), GrantOrigin::Existing)
        .await
        .expect("late tokens");
    assert!(!active(&store, "late-access", NOW + 10).await);

    assert_eq!(
        store.revoke_subject_tokens("alice", NOW + 7).await.unwrap(),
        2
    );
    assert!(!active(&store, "b-refresh", NOW + 10).await);
    assert!(
        active(&store, "c-access", NOW + 10).await,
        "another user's tokens stay"
    );
    assert_eq!(
        store.revoke_subject_tokens("alice", NOW + 8).await.unwrap(),
        0
    );

    assert_eq!(store.delete_client("c2", NOW + 9).await.unwrap(), Some(2));
    assert!(!active(&store, "c-refresh", NOW + 10).await);
    assert_eq!(store.find_client("c2").await.unwrap(), None);
    assert_eq!(store.delete_client("c2", NOW + 9).await.unwrap(), None);
    assert!(store.find_client("c1").await.unwrap().is_some());
}

async fn client_update_and_previous_secret_round_trip(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let original = client("c1");
    store.insert_client(&original).await.expect("client");
    let changed = Client {
        name: None,
        redirect_uris: vec!["https://new.example/cb".into()],
        scopes: vec!["read".into()],
        trusted: !original.trusted,
        resources: vec!["https://api.example/".into()],
        access_token_format: AccessTokenFormat::Jwt,
        post_logout_redirect_uris: vec!["https://new.example/bye".into()],
        ..original.clone()
    };
    let generation = store.clients_generation().await.unwrap();
    assert!(store.update_client(&changed).await.unwrap());
    assert_eq!(
        store.find_client("c1").await.unwrap(),
        Some(changed.clone())
    );
    let updated = store.clients_generation().await.unwrap();
    assert!(updated > generation, "an update counts as a change");
    assert!(!store.update_client(&client("missing")).await.unwrap());

    let previous = PreviousSecret {
        secret_hash: original.secret_hash.clone().expect("a secret"),
        expires_at: NOW + 60,
    };
    let new_hash = token_hash("new secret");
    assert!(
        store
            .set_client_secret("c1", &new_hash, Some(&previous))
            .await
            .unwrap()
    );
    let found = store.find_client("c1").await.unwrap().expect("client");
    assert!(
        store.clients_generation().await.unwrap() > updated,
        "so does a new secret"
    );
    assert_eq!(found.secret_hash.as_deref(), Some(&new_hash[..]));
    assert_eq!(found.auth.previous_secret, Some(previous));
    assert!(
        store
            .set_client_secret("c1", &new_hash, None)
            .await
            .unwrap()
    );
    let found = store.find_client("c1").await.unwrap().expect("client");
    assert_eq!(found.auth.previous_secret, None);
    assert!(
        !store
            .set_client_secret("missing", &new_hash, None)
            .await
            .unwrap()
    );
}

async fn users_list_disable_password_consents_and_remove(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    store.insert_client(&client("c2")).await.expect("client");
    let user = |name: &str| User {
        username: name.into(),
        subject: format!("s-{name}"),
        password_hash: "phc".into(),
        created_at: NOW,
        claims: serde_json::Map::new(),
        disabled_at: None,
    };
    for name in ["bob", "alice"] {
        store.insert_user(&user(name)).await.expect("user");
    }
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["alice", "bob"]);

    assert!(
        store
            .set_user_disabled("alice", Some(NOW + 1))
            .await
            .unwrap()
    );
    let alice = store.find_user("alice").await.unwrap().expect("alice");
    assert_eq!(alice.disabled_at, Some(NOW + 1));
    assert!(store.set_user_disabled("alice", None).await.unwrap());
    assert_eq!(
        store.find_user("alice").await.unwrap().unwrap().disabled_at,
        None
    );
    assert!(!store.set_user_disabled("carol", Some(NOW)).await.unwrap());

    assert!(store.set_user_password("alice", "phc-2").await.unwrap());
    assert_eq!(
        store
            .find_user("alice")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "phc-2"
    );
    assert!(!store.set_user_password("carol", "phc-2").await.unwrap());

    for client_id in ["c2", "c1"] {
        store
            .save_consent("s-alice", client_id, &["read".into()], NOW)
            .await
            .expect("consent");
    }
    store
        .save_consent("s-bob", "c1", &["read".into()], NOW)
        .await
        .expect("consent");
    let consents = store.list_consents("s-alice").await.unwrap();
    assert_eq!(
        consents
            .iter()
            .map(|c| c.client_id.as_str())
            .collect::<Vec<_>>(),
        ["c1", "c2"]
    );
    assert_eq!(consents[0].scope, vec!["read".to_string()]);
    assert!(store.delete_consent("s-alice", "c2").await.unwrap());
    assert!(!store.delete_consent("s-alice", "c2").await.unwrap());

    store
        .insert_tokens(&pair_of("a", "c1", "g1", "s-alice"), GrantOrigin::New)
        .await
        .expect("tokens");
    assert_eq!(store.delete_user("alice", NOW + 2).await.unwrap(), Some(2));
    assert!(!active(&store, "a-access", NOW + 10).await);
    assert_eq!(store.find_user("alice").await.unwrap(), None);
    assert!(store.list_consents("s-alice").await.unwrap().is_empty());
    assert_eq!(store.list_consents("s-bob").await.unwrap().len(), 1);
    assert_eq!(store.delete_user("alice", NOW + 2).await.unwrap(), None);
}

async fn audit_records_append_and_filter(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let record = |at: i64, actor: &str, action: &str| NewAuditRecord {
        at,
        actor: actor.into(),
        action: action.into(),
        target: "c1".into(),
        before: Some(r#"{"a":1}"#.into()),
        after: None,
    };
    let first = store
        .insert_audit(&record(NOW, "cli", "client.update"))
        .await
        .unwrap();
    let second = store
        .insert_audit(&record(NOW + 10, "admin-token:t1", "client.remove"))
        .await
        .unwrap();
    let third = store
        .insert_audit(&record(NOW + 20, "cli", "user.disable"))
        .await
        .unwrap();
    assert!(first < second && second < third);
    let ids = |records: Vec<AuditRecord>| records.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(all[0].before.as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(all[0].after, None);
    assert_eq!(all[1].actor, "admin-token:t1");
    assert_eq!(ids(all), [first, second, third]);
    let filter = |since, until, actor: Option<&str>, limit| AuditFilter {
        since,
        until,
        actor: actor.map(str::to_owned),
        limit,
    };
    let by_cli = store
        .list_audit(&filter(None, None, Some("cli"), None))
        .await
        .unwrap();
    assert_eq!(ids(by_cli), [first, third]);
    let window = store
        .list_audit(&filter(Some(NOW + 10), Some(NOW + 20), None, None))
        .await
        .unwrap();
    assert_eq!(ids(window), [second]);
    let latest = store
        .list_audit(&filter(None, None, None, Some(2)))
        .await
        .unwrap();
    assert_eq!(ids(latest), [second, third]);
}

async fn instances_register_heartbeat_deregister_and_purge(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let instance = |id: &str, started_at: i64| Instance {
        id: id.into(),
        address: "127.0.0.1:8080".into(),
        admin_address: Some("127.0.0.1:8181".into()),
        version: "0.1.0".into(),
        plugins: "set-1".into(),
        started_at,
        heartbeat_at: started_at,
    };
    store
        .register_instance(&instance("b", NOW + 1))
        .await
        .unwrap();
    store.register_instance(&instance("a", NOW)).await.unwrap();
    // A second start under the same id rewrites the row.
    let mut again = instance("b", NOW + 2);
    again.admin_address = None;
    store.register_instance(&again).await.unwrap();
    assert_eq!(
        store.list_instances().await.unwrap(),
        [instance("a", NOW), again.clone()]
    );
    assert!(
        store
            .heartbeat_instance("a", "set-2", NOW + 60)
            .await
            .unwrap()
    );
    assert!(
        !store
            .heartbeat_instance("gone", "set-2", NOW + 60)
            .await
            .unwrap()
    );
    let listed = store.list_instances().await.unwrap();
    assert_eq!(
        (listed[0].heartbeat_at, listed[0].plugins.as_str()),
        (NOW + 60, "set-2")
    );
    assert_eq!(listed[0].started_at, NOW);
    // Only b's heartbeat (NOW + 2) is before NOW + 30.
    assert_eq!(store.purge_instances(NOW + 30).await.unwrap(), 1);
    assert_eq!(store.list_instances().await.unwrap().len(), 1);
    assert!(store.deregister_instance("a").await.unwrap());
    assert!(!store.deregister_instance("a").await.unwrap());
    assert!(store.list_instances().await.unwrap().is_empty());
}

async fn reload_outcomes_record_purge_and_requests_reach_listeners(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let outcome = |instance: &str, ok: bool, at: i64| ReloadOutcome {
        request_id: "r1".into(),
        instance_id: instance.into(),
        ok,
        plugins: if ok { "new-set" } else { "old-set" }.into(),
        error: (!ok).then(|| "swap-plugin/plugin.toml: wasm.sha256 does not match".into()),
        at,
    };
    store
        .record_reload_outcome(&outcome("b", false, NOW))
        .await
        .unwrap();
    store
        .record_reload_outcome(&outcome("a", true, NOW))
        .await
        .unwrap();
    assert_eq!(
        store.reload_outcomes("r1").await.unwrap(),
        [outcome("a", true, NOW), outcome("b", false, NOW)]
    );
    // A second answer of the same instance replaces its first.
    store
        .record_reload_outcome(&outcome("b", true, NOW + 5))
        .await
        .unwrap();
    assert_eq!(
        store.reload_outcomes("r1").await.unwrap()[1],
        outcome("b", true, NOW + 5)
    );
    assert!(store.reload_outcomes("r2").await.unwrap().is_empty());
    // Purged with the stale instances: only a's outcome is older.
    store.purge_instances(NOW + 1).await.unwrap();
    assert_eq!(
        store.reload_outcomes("r1").await.unwrap(),
        [outcome("b", true, NOW + 5)]
    );

    match backend {
        Backend::Sqlite => {
            assert!(store.reload_requests().await.unwrap().is_none());
            assert!(!store.request_reload("r3").await.unwrap());
        }
        Backend::Postgres => {
            let mut first = store.reload_requests().await.unwrap().expect("a listener");
            let mut second = store.reload_requests().await.unwrap().expect("a listener");
            assert!(store.request_reload("r3").await.unwrap());
            for requests in [&mut first, &mut second] {
                let received =
                    tokio::time::timeout(std::time::Duration::from_secs(10), requests.next())
                        .await
                        .expect("the request arrives")
                        .unwrap();
                assert_eq!(received, "r3");
            }
        }
    }
}

/// Migration 0018: a client's post-logout redirect URIs round-trip exactly
/// (no normalisation: `/end_session` matches them as strings), can be
/// emptied, and a row written without the column reads as none.
async fn post_logout_redirect_uris_are_kept_verbatim_and_default_to_none(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let uris = vec![
        "https://App.example:443/bye?x=1".to_owned(),
        "http://127.0.0.1:9000/bye".to_owned(),
    ];
    let rp = Client {
        post_logout_redirect_uris: uris.clone(),
        ..client("rp")
    };
    store.insert_client(&rp).await.expect("insert");
    let found = store.find_client("rp").await.unwrap().expect("the client");
    assert_eq!(found.post_logout_redirect_uris, uris);
    let emptied = Client {
        post_logout_redirect_uris: Vec::new(),
        ..rp
    };
    assert!(store.update_client(&emptied).await.unwrap());
    let found = store.find_client("rp").await.unwrap().expect("the client");
    assert!(found.post_logout_redirect_uris.is_empty(), "{found:?}");

    let old = client_row_written_before_the_migrations(&store).await;
    assert!(old.post_logout_redirect_uris.is_empty(), "{old:?}");
}

/// Migration 0021: a client's profile is stored by name and read back; a
/// name this build does not know is a corrupt row, never a client without
/// its profile's rules.
async fn a_client_profile_round_trips_and_an_unknown_one_is_corrupt(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let bank = Client {
        profile: Some(crate::oauth::profile::Profile::Fapi2),
        ..client("bank")
    };
    store.insert_client(&bank).await.expect("insert");
    let found = store
        .find_client("bank")
        .await
        .unwrap()
        .expect("the client");
    assert_eq!(found.profile, Some(crate::oauth::profile::Profile::Fapi2));
    store.insert_client(&client("plain")).await.expect("insert");
    let found = store
        .find_client("plain")
        .await
        .unwrap()
        .expect("the client");
    assert_eq!(found.profile, None);
    execute(
        &store,
        "UPDATE clients SET profile = 'fapi9' WHERE client_id = 'bank'",
    )
    .await;
    let error = store.find_client("bank").await.unwrap_err();
    assert!(error.to_string().contains("fapi9"), "{error}");
}

fn sign_in(grant_id: &str, subject: &str, client_id: &str, expires_at: i64) -> SignIn {
    SignIn {
        grant_id: grant_id.into(),
        subject: subject.into(),
        client_id: client_id.into(),
        auth_time: NOW - 30,
        amr: vec!["pwd".into()],
        acr: Some(crate::openid::ACR_PASSWORD.into()),
        expires_at,
    }
}

async fn sign_ins_are_found_until_they_expire_and_go_with_their_client(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("c1")).await.expect("client");
    store.insert_client(&client("c2")).await.expect("client");
    let mut claims = serde_json::Map::new();
    claims.insert("name".into(), "Alice".into());
    let alice = User {
        username: "alice".into(),
        subject: "s-alice".into(),
        password_hash: "$argon2id$...".into(),
        created_at: NOW,
        claims: claims.clone(),
        disabled_at: None,
    };
    store.insert_user(&alice).await.expect("user");

    let record = sign_in("g1", "s-alice", "c1", NOW + 100);
    store.insert_sign_in(&record).await.expect("insert");
    let found = store.find_sign_in("g1", NOW).await.expect("find");
    assert_eq!(
        found,
        Some(FoundSignIn {
            sign_in: record.clone(),
            claims: Some(claims.clone()),
        })
    );
    let error = store.insert_sign_in(&record).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Conflict);
    assert_eq!(store.find_sign_in("g9", NOW).await.expect("find"), None);

    // Without acr, and for a user who is gone: the record, no claims.
    let mut gone = sign_in("g2", "s-gone", "c1", NOW + 200);
    gone.acr = None;
    store.insert_sign_in(&gone).await.expect("insert");
    let found = store
        .find_sign_in("g2", NOW)
        .await
        .expect("find")
        .expect("g2");
    assert_eq!((found.sign_in, found.claims), (gone, None));

    // A disabled user's claims are not released.
    store
        .set_user_disabled("alice", Some(NOW))
        .await
        .expect("disable");
    let found = store
        .find_sign_in("g1", NOW)
        .await
        .expect("find")
        .expect("g1");
    assert_eq!(found.claims, None);

    // Expired: not found, and housekeeping deletes it.
    assert_eq!(
        store.find_sign_in("g1", NOW + 100).await.expect("find"),
        None
    );
    store
        .insert_sign_in(&sign_in("g3", "s-alice", "c2", NOW + 300))
        .await
        .expect("insert");
    assert_eq!(store.purge_expired(NOW + 100).await.expect("purge"), 1);
    assert!(store.find_sign_in("g2", NOW).await.expect("find").is_some());

    // It goes with its client; another client's stays.
    store.delete_client("c1", NOW).await.expect("delete");
    assert_eq!(store.find_sign_in("g2", NOW).await.expect("find"), None);
    assert!(store.find_sign_in("g3", NOW).await.expect("find").is_some());
}

fn pushed_request(reference: &str, client_id: &str, expires_at: i64) -> PushedRequest {
    let pairs = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("resource", "https://api.example/"),
        ("resource", "urn:example:billing"),
        ("state", "a b&c=d"),
    ];
    PushedRequest {
        request_uri_hash: token_hash(reference),
        client_id: client_id.into(),
        parameters: pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        expires_at,
    }
}

/// Migration 0019, RFC 9126 §4: a pushed request comes back as pushed
/// (order and repeated parameters kept), once, only to the client that
/// pushed it (another client's attempt leaves it), only before it expires;
/// housekeeping deletes the expired ones, and a request goes with its client.
async fn pushed_requests_are_taken_once_by_their_client_until_they_expire(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    store.insert_client(&client("a")).await.expect("client");
    store.insert_client(&client("b")).await.expect("client");
    let request = pushed_request("r1", "a", NOW + 60);
    store.insert_pushed_request(&request).await.expect("insert");
    let error = store.insert_pushed_request(&request).await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Conflict);

    let take = |reference: &str, client_id: &str, now: i64| {
        let store = store.clone();
        let (reference, client_id) = (reference.to_owned(), client_id.to_owned());
        async move {
            store
                .take_pushed_request(&token_hash(&reference), &client_id, now)
                .await
                .expect("take")
        }
    };
    assert_eq!(take("r1", "b", NOW).await, None, "another client's");
    assert_eq!(take("r1", "a", NOW + 60).await, None, "expired");
    assert_eq!(take("r9", "a", NOW).await, None, "unknown");
    assert_eq!(
        take("r1", "a", NOW + 59).await,
        Some(request.parameters.clone())
    );
    assert_eq!(take("r1", "a", NOW).await, None, "used");

    // Housekeeping deletes the expired rows only.
    (store.insert_pushed_request(&pushed_request("r2", "a", NOW + 10)))
        .await
        .expect("insert");
    (store.insert_pushed_request(&pushed_request("r3", "a", NOW + 100)))
        .await
        .expect("insert");
    (store.insert_pushed_request(&pushed_request("r4", "b", NOW + 100)))
        .await
        .expect("insert");
    assert_eq!(store.purge_expired(NOW + 10).await.expect("purge"), 1);
    assert_eq!(take("r2", "a", NOW).await, None, "purged");

    // It goes with its client; another client's stays.
    store.delete_client("a", NOW).await.expect("delete");
    assert_eq!(take("r3", "a", NOW).await, None);
    assert!(take("r4", "b", NOW).await.is_some());
}

/// RFC 9126 §4 one-time use across instances: two stores on one database
/// (two servers) presented the same request_uri at once; one gets it.
async fn pushed_requests_are_taken_once_across_instances(backend: Backend) {
    let db = TestDb::new(backend).await;
    let one = Store::open(&db.url).await.unwrap();
    let two = Store::open(&db.url).await.unwrap();
    one.insert_client(&client("a")).await.expect("client");
    for round in 0..20 {
        let reference = format!("race-{round}");
        let request = pushed_request(&reference, "a", NOW + 60);
        one.insert_pushed_request(&request).await.expect("insert");
        let hash = token_hash(&reference);
        let (first, second) = tokio::join!(
            one.take_pushed_request(&hash, "a", NOW),
            two.take_pushed_request(&hash, "a", NOW),
        );
        let taken = [first.expect("take"), second.expect("take")];
        assert_eq!(
            taken.iter().filter(|t| t.is_some()).count(),
            1,
            "round {round}: {taken:?}"
        );
    }
}

/// Migration 0019, RFC 9126 §6: the client's flag round-trips through
/// insert and update, and a row written without the column reads as false.
async fn require_pushed_authorization_requests_round_trips_and_defaults_to_false(backend: Backend) {
    let (_db, store) = open_temp(backend).await;
    let pushing = Client {
        require_pushed_authorization_requests: true,
        ..client("pushing")
    };
    store.insert_client(&pushing).await.expect("insert");
    let found = store.find_client("pushing").await.unwrap().expect("found");
    assert!(found.require_pushed_authorization_requests, "{found:?}");
    let relaxed = Client {
        require_pushed_authorization_requests: false,
        ..pushing
    };
    assert!(store.update_client(&relaxed).await.unwrap());
    let found = store.find_client("pushing").await.unwrap().expect("found");
    assert!(!found.require_pushed_authorization_requests, "{found:?}");

    let old = client_row_written_before_the_migrations(&store).await;
    assert!(!old.require_pushed_authorization_requests, "{old:?}");
}
