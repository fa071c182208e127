//! Micro-benchmarks of the plugin sandbox, with criterion:
//!
//! * `exchange/*`: the bundled client-credentials plugin's `exchange` through
//!   the host's public API, [`Plugin::exchange`], which makes a fresh wasmtime
//!   `Store` and instance for every call and writes the token to SQLite (in
//!   memory, or a file in WAL mode as `grantbox serve` uses).
//! * `sandbox/*`: the same wasm on an engine configured like the host's, driven
//!   directly with wasmtime because the public API has no way to keep an
//!   instance: a fresh instance per call vs one instance reused for every call,
//!   and instantiation alone. The `tokens.issue` import is a stub that mints
//!   the token like the host but stores nothing.
//! * `store/insert_access_token`: the SQLite write the stub leaves out.
//! * `plugin_load/*`: `Registry::load` of the bundled plugins without a cache,
//!   with an empty cache (compile and write it) and with a warm cache.
//! * `serve_startup/*`: the release `grantbox serve` from spawn to its
//!   `grantbox listening on` line, with an empty and with a filled cache.
//!
//! Every benchmark uses `iter_custom`, so the medians printed at the end (µs per
//! iteration, the median of criterion's samples) come from the same samples as
//! criterion's own report. `BENCH_RESULTS=/abs/file.md` also writes them to a
//! file. Run it pinned (`taskset -c 1 cargo bench -p grantbox-bench`), as the
//! server is pinned under load: see `bench/README.md` for why it matters here.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use grantbox::clock::Clock;
use grantbox::plugin::{
    ClientView, HostServices, PluginRef, Registry, Runtime, RuntimeConfig, TokenLifetimes,
    TokenRequest, bundled,
};
use grantbox::ratelimit::{LoginLimiter, LoginLimits};
use grantbox::registration::{self, ClientRegistration};
use grantbox::store::{GrantOrigin, NewToken, Store, TokenKind};
use tokio::runtime::Runtime as Tokio;

const CLIENT_ID: &str = "bench-client";
const CLIENT_SECRET: &str = "bench-secret-bench-secret-bench-secret";
const GRANT_TYPE: &str = "client_credentials";
const REDIRECT_URI: &str = "https://client.example/cb";
const USERNAME: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------
// Recording medians

/// One benchmark's samples: nanoseconds per iteration, one per routine call.
struct Recorded {
    id: String,
    sample_size: usize,
    per_iteration_ns: Vec<f64>,
}

static RECORDED: Mutex<Vec<Recorded>> = Mutex::new(Vec::new());

/// Registers `id` and runs `routine` (which times `iters` iterations itself) as
/// a criterion benchmark, keeping every sample for the summary.
fn bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    group_name: &str,
    name: &str,
    sample_size: usize,
    mut routine: impl FnMut(u64) -> Duration,
) {
    let id = format!("{group_name}/{name}");
    let index = {
        let mut recorded = RECORDED.lock().expect("not poisoned");
        recorded.push(Recorded {
            id,
            sample_size,
            per_iteration_ns: Vec::new(),
        });
        recorded.len() - 1
    };
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let elapsed = routine(iters);
            RECORDED.lock().expect("not poisoned")[index]
                .per_iteration_ns
                .push(elapsed.as_nanos() as f64 / iters as f64);
            elapsed
        })
    });
}

/// Criterion first warms up, then makes exactly `sample_size` measured calls:
/// the median of those is its median estimate.
fn medians() -> Vec<(String, f64, usize)> {
    RECORDED
        .lock()
        .expect("not poisoned")
        .iter()
        .filter(|r| r.per_iteration_ns.len() >= r.sample_size)
        .map(|r| {
            let mut samples =
                r.per_iteration_ns[r.per_iteration_ns.len() - r.sample_size..].to_vec();
            samples.sort_by(f64::total_cmp);
            let n = samples.len();
            let median = if n % 2 == 1 {
                samples[n / 2]
            } else {
                (samples[n / 2 - 1] + samples[n / 2]) / 2.0
            };
            (r.id.clone(), median / 1_000.0, n)
        })
        .collect()
}

fn summary_markdown(rows: &[(String, f64, usize)]) -> String {
    let mut text = String::from("| benchmark | median (µs) | samples |\n|---|---:|---:|\n");
    for (id, median_us, n) in rows {
        let shown = if *median_us >= 100.0 {
            thousands(*median_us)
        } else {
            format!("{median_us:.1}")
        };
        text.push_str(&format!("| `{id}` | {shown} | {n} |\n"));
    }
    text
}

/// `1234567.8` → `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------
// Shared set-up

fn tokio() -> Tokio {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ sits in the workspace")
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// A store with the bench client registered, as `grantbox client add` does.
async fn seeded_store(url: &str) -> Store {
    let store = Store::open(url).await.expect("the store opens");
    let (client, _) = registration::validate(
        ClientRegistration {
            client_id: CLIENT_ID.into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            grant_types: vec![
                GRANT_TYPE.into(),
                "authorization_code".into(),
                "refresh_token".into(),
                "password".into(),
            ],
            scopes: vec!["read".into(), "write".into()],
            secret: Some(CLIENT_SECRET.into()),
            ..ClientRegistration::default()
        },
        Clock::system().now(),
    )
    .expect("a valid registration");
    store.insert_client(&client).await.expect("client inserted");
    store
}

fn services(store: Store) -> HostServices {
    HostServices {
        login_limiter: Arc::new(LoginLimiter::new(LoginLimits::default(), store.clone())),
        store,
        clock: Clock::system(),
        lifetimes: TokenLifetimes::default(),
        passwords: grantbox::password::PasswordChecker::default(),
        keys: Arc::new(grantbox::keys::Keys::ephemeral(
            grantbox::keys::Alg::ES256,
            &[grantbox::keys::Alg::ES256],
            Clock::system().now(),
        )),
        issuer: "http://127.0.0.1".into(),
    }
}

/// The request the token endpoint hands the plugin for the load test's
/// `grant_type=client_credentials&scope=read write`.
fn token_request() -> TokenRequest {
    TokenRequest {
        grant_type: GRANT_TYPE.into(),
        client: ClientView {
            client_id: CLIENT_ID.into(),
            public: false,
            grant_types: vec![GRANT_TYPE.into()],
            scopes: vec!["read".into(), "write".into()],
            id_token_signed_response_alg: None,
        },
        scope: Some(vec!["read".into(), "write".into()]),
        params: Vec::new(),
    }
}

fn client_credentials_wasm() -> &'static [u8] {
    bundled::BUNDLED
        .iter()
        .find(|p| p.name == "grant-client-credentials")
        .expect("the client credentials plugin is bundled")
        .wasm
}

// ---------------------------------------------------------------------------
// (a) Plugin::exchange: a fresh instance per call, real store

fn exchange(c: &mut Criterion) {
    let mut group = c.benchmark_group("exchange");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let dir = tempfile::tempdir().expect("a temp dir");
    let cache = dir.path().join("cache");
    let file_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    for (name, url) in [
        ("fresh_instance/sqlite_memory", "sqlite::memory:"),
        ("fresh_instance/sqlite_file", file_url.as_str()),
    ] {
        let rt = tokio();
        let (runtime, plugin) = rt.block_on(async {
            let store = seeded_store(url).await;
            let runtime = Runtime::new(
                RuntimeConfig {
                    cache_dir: Some(cache.clone()),
                    ..RuntimeConfig::default()
                },
                Some(services(store)),
            )
            .expect("a runtime");
            let registry = Registry::load(&runtime, None).await.expect("plugins load");
            let plugin: PluginRef = registry
                .for_grant_type(GRANT_TYPE)
                .expect("client_credentials is bundled")
                .clone();
            (runtime, plugin)
        });
        let request = token_request();
        bench(&mut group, "exchange", name, 50, |iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let response = plugin.exchange(&request).await.expect("a token");
                    std::hint::black_box(response);
                }
                start.elapsed()
            })
        });
        drop(plugin);
        drop(runtime);
    }
    group.finish();
}

/// The other bundled exchanges through `Plugin::exchange` on a SQLite file,
/// each iteration with its own code or refresh token, stored before the timer
/// starts (a code and a refresh token can be used once).
fn other_exchanges(c: &mut Criterion) {
    let mut group = c.benchmark_group("exchange");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let rt = tokio();
    let (store, runtime, registry) = rt.block_on(async {
        let store = seeded_store(&url).await;
        store
            .insert_user(&grantbox::store::User {
                username: USERNAME.into(),
                subject: grantbox::secret::new_token(),
                password_hash: grantbox::secret::hash_password(PASSWORD).expect("a hash"),
                created_at: Clock::system().now(),
                claims: Default::default(),
                disabled_at: None,
            })
            .await
            .expect("user inserted");
        let runtime = Runtime::new(
            RuntimeConfig {
                cache_dir: Some(dir.path().join("cache")),
                ..RuntimeConfig::default()
            },
            Some(services(store.clone())),
        )
        .expect("a runtime");
        let registry = Registry::load(&runtime, None).await.expect("plugins load");
        (store, runtime, registry)
    });
    let request = |grant_type: &str, params: Vec<(String, String)>| {
        let mut request = TokenRequest {
            grant_type: grant_type.into(),
            params,
            ..token_request()
        };
        request.client.grant_types.push(grant_type.into());
        request
    };
    let plugin = |grant_type: &str| -> PluginRef {
        registry
            .for_grant_type(grant_type)
            .expect("the grant is bundled")
            .clone()
    };

    let code_plugin = plugin("authorization_code");
    bench(
        &mut group,
        "exchange",
        "authorization_code/sqlite_file",
        30,
        |iters| {
            rt.block_on(async {
                let now = Clock::system().now();
                let mut codes = Vec::new();
                for _ in 0..iters {
                    let code = grantbox::secret::new_token();
                    store
                        .insert_code(&grantbox::store::NewCode {
                            code_hash: grantbox::secret::token_hash(&code),
                            client_id: CLIENT_ID.into(),
                            subject: "alice-subject".into(),
                            redirect_uri: REDIRECT_URI.into(),
                            scope: vec!["read".into()],
                            data: Vec::new(),
                            grant_id: grantbox::secret::new_token(),
                            issued_at: now,
                            expires_at: now + 600,
                            resources: Vec::new(),
                            dpop_jkt: None,
                        })
                        .await
                        .expect("code inserted");
                    codes.push(code);
                }
                let start = Instant::now();
                for code in codes {
                    let params = vec![
                        ("code".into(), code),
                        ("redirect_uri".into(), REDIRECT_URI.into()),
                    ];
                    let response = code_plugin
                        .exchange(&request("authorization_code", params))
                        .await
                        .expect("a token");
                    std::hint::black_box(response);
                }
                start.elapsed()
            })
        },
    );

    let refresh_plugin = plugin("refresh_token");
    bench(
        &mut group,
        "exchange",
        "refresh_token/sqlite_file",
        30,
        |iters| {
            rt.block_on(async {
                let now = Clock::system().now();
                let mut tokens = Vec::new();
                for _ in 0..iters {
                    let token = grantbox::secret::new_token();
                    let row = NewToken {
                        token_hash: grantbox::secret::token_hash(&token),
                        kind: TokenKind::Refresh,
                        client_id: CLIENT_ID.into(),
                        subject: Some("alice-subject".into()),
                        scope: vec!["read".into(), "write".into()],
                        grant_id: grantbox::secret::new_token(),
                        issued_at: now,
                        expires_at: now + 14 * 86_400,
                        grant_expires_at: Some(now + 30 * 86_400),
                        audience: Vec::new(),
                        actor: None,
                        dpop_jkt: None,
                    };
                    store
                        .insert_tokens(&[row], GrantOrigin::New)
                        .await
                        .expect("refresh token inserted");
                    tokens.push(token);
                }
                let start = Instant::now();
                for token in tokens {
                    let params = vec![("refresh_token".into(), token)];
                    let response = refresh_plugin
                        .exchange(&request("refresh_token", params))
                        .await
                        .expect("a token");
                    std::hint::black_box(response);
                }
                start.elapsed()
            })
        },
    );

    // Dominated by the argon2 check (19 MiB, 2 passes), as it should be.
    let password_plugin = plugin("password");
    bench(
        &mut group,
        "exchange",
        "password/sqlite_file",
        30,
        |iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let params = vec![
                        ("username".into(), USERNAME.into()),
                        ("password".into(), PASSWORD.into()),
                    ];
                    let response = password_plugin
                        .exchange(&request("password", params))
                        .await
                        .expect("a token");
                    std::hint::black_box(response);
                }
                start.elapsed()
            })
        },
    );
    drop((code_plugin, refresh_plugin, password_plugin, registry));
    drop(runtime);
    group.finish();
}

// ---------------------------------------------------------------------------
// (b) The same wasm driven directly: fresh vs reused instance

mod sandbox {
    //! Bindings of the plugin world for the benchmark's own host, which
    //! implements only `tokens.issue`; every other import traps.

    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "plugin",
        imports: { default: async },
        exports: { default: async },
    });
}

use sandbox::grantbox::plugin::{tokens, types};

/// A call's store data, as the host's `CallCtx` without what the stub needs not.
struct StubCtx {
    wasi: wasmtime_wasi::WasiCtx,
    table: wasmtime::component::ResourceTable,
    issued: Vec<String>,
}

impl wasmtime_wasi::WasiView for StubCtx {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for StubCtx {}

impl tokens::Host for StubCtx {
    /// Mints like the host (32 random bytes, base64url, SHA-256 of it) but
    /// stores nothing.
    async fn issue(
        &mut self,
        grant: tokens::TokenGrant,
    ) -> Result<tokens::IssuedTokens, types::HostError> {
        let access_token = grantbox::secret::new_token();
        std::hint::black_box(grantbox::secret::token_hash(&access_token));
        self.issued.push(access_token.clone());
        Ok(tokens::IssuedTokens {
            access_token,
            token_type: "Bearer".into(),
            expires_in: 3600,
            refresh_token: None,
            scope: grant.scope,
            grant_id: grantbox::secret::new_token(),
        })
    }

    async fn introspect(
        &mut self,
        _token: String,
    ) -> Result<Option<tokens::TokenInfo>, types::HostError> {
        Err(types::HostError::Denied("not in the benchmark".into()))
    }

    async fn revoke_grant(&mut self, _grant_id: String) -> Result<(), types::HostError> {
        Err(types::HostError::Denied("not in the benchmark".into()))
    }
}

/// WASI for std's needs only, as the host's `sandbox_wasi` (clocks aside).
fn stub_ctx() -> StubCtx {
    StubCtx {
        wasi: wasmtime_wasi::WasiCtx::builder().build(),
        table: wasmtime::component::ResourceTable::new(),
        issued: Vec::new(),
    }
}

/// The host's engine settings (`runtime.rs` `build_engine`) with the default
/// 256 slots and 64 MiB memories.
fn host_like_engine() -> wasmtime::Engine {
    grantbox::plugin::build_engine(&grantbox::plugin::RuntimeConfig::default()).expect("an engine")
}

fn new_store(engine: &wasmtime::Engine) -> wasmtime::Store<StubCtx> {
    let mut store = wasmtime::Store::new(engine, stub_ctx());
    // Nothing advances the epoch here: a deadline that never comes. The
    // engine counts fuel (as the host does, which sets it per call).
    store.set_epoch_deadline(u64::MAX / 2);
    store.set_fuel(u64::MAX).expect("the engine consumes fuel");
    store
}

fn sandbox_calls(c: &mut Criterion) {
    let mut group = c.benchmark_group("sandbox");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let engine = host_like_engine();
    let component = wasmtime::component::Component::new(&engine, client_credentials_wasm())
        .expect("the bundled wasm compiles");
    let mut linker = wasmtime::component::Linker::<StubCtx>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("WASI links");
    types::add_to_linker::<StubCtx, wasmtime::component::HasSelf<StubCtx>>(&mut linker, |c| c)
        .expect("types link");
    tokens::add_to_linker::<StubCtx, wasmtime::component::HasSelf<StubCtx>>(&mut linker, |c| c)
        .expect("tokens link");
    linker
        .define_unknown_imports_as_traps(&component)
        .expect("the other imports trap");
    let pre = sandbox::PluginPre::new(linker.instantiate_pre(&component).expect("it links"))
        .expect("it exports grant");
    let request = sandbox::grantbox::plugin::types::TokenRequest {
        grant_type: GRANT_TYPE.into(),
        client: types::Client {
            client_id: CLIENT_ID.into(),
            public: false,
            grant_types: vec![GRANT_TYPE.into()],
            scopes: vec!["read".into(), "write".into()],
        },
        scope: Some(vec!["read".into(), "write".into()]),
        params: Vec::new(),
    };
    let rt = tokio();

    bench(&mut group, "sandbox", "instantiate_only", 50, |iters| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                let mut store = new_store(&engine);
                let instance = pre.instantiate_async(&mut store).await.expect("instance");
                std::hint::black_box(instance);
            }
            start.elapsed()
        })
    });
    bench(&mut group, "sandbox", "fresh_instance_call", 50, |iters| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                let mut store = new_store(&engine);
                let instance = pre.instantiate_async(&mut store).await.expect("instance");
                let response = instance
                    .grantbox_plugin_grant()
                    .call_exchange(&mut store, &request)
                    .await
                    .expect("no trap")
                    .expect("a token");
                std::hint::black_box(response);
            }
            start.elapsed()
        })
    });
    let (mut store, instance) = rt.block_on(async {
        let mut store = new_store(&engine);
        let instance = pre.instantiate_async(&mut store).await.expect("instance");
        (store, instance)
    });
    bench(&mut group, "sandbox", "reused_instance_call", 50, |iters| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                let response = instance
                    .grantbox_plugin_grant()
                    .call_exchange(&mut store, &request)
                    .await
                    .expect("no trap")
                    .expect("a token");
                std::hint::black_box(response);
            }
            // What the host keeps per call; the reused store must not grow.
            store.data_mut().issued.clear();
            start.elapsed()
        })
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// The store write that `tokens.issue` does

fn store_write(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let dir = tempfile::tempdir().expect("a temp dir");
    let file_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    for (name, url) in [
        ("insert_access_token/sqlite_memory", "sqlite::memory:"),
        ("insert_access_token/sqlite_file", file_url.as_str()),
    ] {
        let rt = tokio();
        let store = rt.block_on(seeded_store(url));
        let clock = Clock::system();
        bench(&mut group, "store", name, 50, |iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let token = grantbox::secret::new_token();
                    let now = clock.now();
                    let row = NewToken {
                        token_hash: grantbox::secret::token_hash(&token),
                        kind: TokenKind::Access,
                        client_id: CLIENT_ID.into(),
                        subject: None,
                        scope: vec!["read".into(), "write".into()],
                        grant_id: grantbox::secret::new_token(),
                        issued_at: now,
                        expires_at: now + 3600,
                        grant_expires_at: None,
                        audience: Vec::new(),
                        actor: None,
                        dpop_jkt: None,
                    };
                    store
                        .insert_tokens(&[row], GrantOrigin::New)
                        .await
                        .expect("inserted");
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// (c) Compiling the bundled plugins vs loading them from the cache

fn plugin_load(c: &mut Criterion) {
    let mut group = c.benchmark_group("plugin_load");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let rt = tokio();
    let runtime = |cache_dir: Option<PathBuf>| {
        Runtime::new(
            RuntimeConfig {
                cache_dir,
                ..RuntimeConfig::default()
            },
            None,
        )
        .expect("a runtime")
    };
    let load = |runtime: &Runtime| {
        rt.block_on(async {
            let start = Instant::now();
            let registry = Registry::load(runtime, None).await.expect("plugins load");
            let elapsed = start.elapsed();
            drop(registry);
            elapsed
        })
    };

    bench(&mut group, "plugin_load", "runtime_new", 10, |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            drop(std::hint::black_box(runtime(None)));
        }
        start.elapsed()
    });
    // A new runtime per iteration (untimed) so nothing carries over.
    bench(
        &mut group,
        "plugin_load",
        "registry_load/no_cache",
        10,
        |iters| (0..iters).map(|_| load(&runtime(None))).sum(),
    );
    bench(
        &mut group,
        "plugin_load",
        "registry_load/empty_cache",
        10,
        |iters| {
            (0..iters)
                .map(|_| {
                    let dir = tempfile::tempdir().expect("a temp dir");
                    load(&runtime(Some(dir.path().to_owned())))
                })
                .sum()
        },
    );
    let warm = tempfile::tempdir().expect("a temp dir");
    load(&runtime(Some(warm.path().to_owned())));
    bench(
        &mut group,
        "plugin_load",
        "registry_load/warm_cache",
        10,
        |iters| {
            (0..iters)
                .map(|_| load(&runtime(Some(warm.path().to_owned()))))
                .sum()
        },
    );
    group.finish();
}

// ---------------------------------------------------------------------------
// (d) Start-up of the release binary

/// `GRANTBOX_BIN`, else `target/release/grantbox` after a (usually no-op)
/// `cargo build --release -p grantbox`.
fn release_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("GRANTBOX_BIN") {
        return Some(PathBuf::from(path));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace())
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "grantbox",
            "--bin",
            "grantbox",
        ])
        .status();
    let binary = target_dir().join("release").join("grantbox");
    match status {
        Ok(status) if status.success() && binary.is_file() => Some(binary),
        _ => None,
    }
}

/// Spawns `grantbox serve` and times it until it prints its listening line.
fn start_once(binary: &Path, db: &str, cache_dir: &Path) -> Duration {
    let start = Instant::now();
    let mut child = Command::new(binary)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--cache-dir",
        ])
        .arg(cache_dir)
        .env("GRANTBOX_DB", db)
        .env_remove("GRANTBOX_CONFIG")
        .env_remove("GRANTBOX_PLUGINS")
        .env_remove("GRANTBOX_ISSUER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("grantbox starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut ready = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout is readable");
        if line.starts_with("grantbox listening on") {
            ready = Some(start.elapsed());
            break;
        }
    }
    // Our own child, by its handle.
    let _ = child.kill();
    let _ = child.wait();
    ready.expect("grantbox printed `grantbox listening on`")
}

fn serve_startup(c: &mut Criterion) {
    let Some(binary) = release_binary() else {
        eprintln!(
            "serve_startup: skipped: no release binary (set GRANTBOX_BIN or run `cargo build --release -p grantbox`)"
        );
        return;
    };
    let mut group = c.benchmark_group("serve_startup");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let dir = tempfile::tempdir().expect("a temp dir");
    // The database exists and is migrated in both cases, as at a restart:
    // the only difference is the plugin cache.
    let db = format!("sqlite://{}", dir.path().join("grantbox.db").display());
    let warm = dir.path().join("warm-cache");
    start_once(&binary, &db, &warm);
    bench(&mut group, "serve_startup", "cold_cache", 10, |iters| {
        (0..iters)
            .map(|_| {
                let empty = tempfile::tempdir().expect("a temp dir");
                start_once(&binary, &db, empty.path())
            })
            .sum()
    });
    bench(&mut group, "serve_startup", "warm_cache", 10, |iters| {
        (0..iters).map(|_| start_once(&binary, &db, &warm)).sum()
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// What signing a JWT access token costs per request, per algorithm: the RFC
// 9068 claim set of a client-credentials token, signed by the host's `Keys`
// (in-memory keys, as the server holds them once loaded).

fn sign(c: &mut Criterion) {
    use grantbox::keys::{Alg, Keys};
    use grantbox::oauth::access_token::{self, AccessToken};
    let mut group = c.benchmark_group("sign");
    let now = Clock::system().now();
    let audience = vec!["https://api.example/".to_owned()];
    let scope = vec!["read".to_owned(), "write".to_owned()];
    let claims = access_token::claims(&AccessToken {
        issuer: "http://127.0.0.1:8080",
        client_id: CLIENT_ID,
        subject: None,
        audience: &audience,
        scope: &scope,
        issued_at: now,
        expires_at: now + 3600,
        jti: &grantbox::secret::new_token(),
        actor: None,
        confirmation: None,
    });
    for (name, alg) in [
        ("es256", Alg::ES256),
        ("rs256", Alg::RS256),
        ("eddsa", Alg::EdDSA),
    ] {
        let keys = Keys::ephemeral(alg, &[alg], now);
        bench(&mut group, "sign", name, 100, |iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let jwt = keys
                    .sign(access_token::JWT_TYPE, &claims, now)
                    .expect("signed");
                std::hint::black_box(jwt);
            }
            start.elapsed()
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    exchange(&mut criterion);
    other_exchanges(&mut criterion);
    sandbox_calls(&mut criterion);
    store_write(&mut criterion);
    plugin_load(&mut criterion);
    serve_startup(&mut criterion);
    sign(&mut criterion);
    criterion.final_summary();

    let rows = medians();
    if rows.is_empty() {
        return;
    }
    let table = summary_markdown(&rows);
    println!("\nMedians (µs per iteration):\n\n{table}");
    if let Some(path) = std::env::var_os("BENCH_RESULTS") {
        match std::fs::write(&path, &table) {
            Ok(()) => println!("written to {}", Path::new(&path).display()),
            Err(e) => eprintln!("cannot write {}: {e}", Path::new(&path).display()),
        }
    }
}
