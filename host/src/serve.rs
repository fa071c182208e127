//! `grantbox serve`: opens the store, loads the plugins, and runs the HTTP
//! server with its background housekeeping until SIGINT or SIGTERM; the
//! admin listener, SIGHUP and (with `--watch-plugins`) changes to the plugin
//! directory reload the plugins. The public listener is an accept loop of its
//! own: header- and body-read timeouts, a ceiling on open connections, and
//! accept errors (descriptors run out) logged and outlived.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::app::{self, AppState, HttpConfig};
use crate::clock::Clock;
use crate::cluster;
use crate::config::{ConnectionLimits, ServeConfig};
use crate::endpoint::admin::{AdminGuard, AdminState};
use crate::keys::{Keys, persist};
use crate::plugin::{HostServices, LiveRegistry, Registry, Runtime, live};
use crate::ratelimit::LoginLimiter;
use crate::registration::{self, ClientRegistration};
use crate::store::{
    Instance, ReloadOutcome, ReloadRequests, SessionBackend, Store, StoreErrorKind,
};
use crate::ui::Ui;

/// The signing keys from the store (`keys/persist.rs`), with one line
/// saying where the key-encryption key came from and what was created.
async fn open_keys(store: &Store, config: &ServeConfig, clock: &Clock) -> anyhow::Result<Keys> {
    let environment = std::env::var(persist::KEY_ENCRYPTION_KEY_ENV).ok();
    let opened = persist::open(
        store,
        &config.keys,
        &config.db,
        environment.as_deref(),
        clock.now(),
    )
    .await
    .context("signing keys")?;
    if opened.created_key_file {
        warn!(
            key_file = %opened.source,
            "created a key-encryption key file beside the database (mode 0600); keep it with the database's backups but apart from them, or set GRANTBOX_KEY_ENCRYPTION_KEY"
        );
    }
    for key in &opened.created {
        info!(kid = %key.kid, alg = %key.alg, "created a signing key");
    }
    let infos = opened.keys.infos();
    info!(
        keys = infos.len(),
        signing = %persist::signing_kids(&infos, clock.now()).join(","),
        key_encryption_key = %opened.source,
        "signing keys ready"
    );
    Ok(opened.keys)
}

/// Reloads the signing keys from the store every `interval`, so a rotation
/// made by `grantbox keys` or another instance reaches this one within it.
async fn reload_keys(store: Store, keys: Arc<Keys>, clock: Clock, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Err(error) = persist::reload(&store, &keys, clock.now()).await {
            warn!(error = %format!("{error:#}"), "signing keys not reloaded; the ones held are kept");
        }
    }
}

/// Logs go to stderr, filtered by `GRANTBOX_LOG` (as `DEBUG=oauth2orize`
/// does for OAuth2orize), e.g. `GRANTBOX_LOG=grantbox=debug`; default `info`.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_env("GRANTBOX_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// The system clock, shifted by `GRANTBOX_CLOCK_OFFSET` seconds if set (for
/// end-to-end tests of expiry and key rotation only).
pub fn clock_from_environment() -> anyhow::Result<Clock> {
    Ok(match std::env::var("GRANTBOX_CLOCK_OFFSET") {
        Ok(offset) => Clock::with_offset(
            offset
                .parse()
                .context("GRANTBOX_CLOCK_OFFSET must be seconds")?,
        ),
        Err(_) => Clock::system(),
    })
}

pub async fn serve(config: ServeConfig, demo: bool) -> anyhow::Result<()> {
    let clock = clock_from_environment()?;
    let connection_limits = raise_open_files_limit(config.connections);
    let store = Store::open(&config.db)
        .await
        .with_context(|| format!("opening the database {}", config.db))?;
    let ui = Ui::load(config.templates.as_deref())?;
    let keys = Arc::new(open_keys(&store, &config, &clock).await?);
    // Bound before the plugins load, so the issuer (which may name the bound
    // address) is known to the capabilities that sign; connections wait in
    // the backlog until the server accepts them.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen: cannot bind {}", config.listen))?;
    let address = listener.local_addr()?;
    // No admin listener unless configured: two servers with default
    // settings on one host do not compete for its port.
    let admin_listener = match &config.admin {
        Some(admin) => {
            let listener = tokio::net::TcpListener::bind(admin.address)
                .await
                .with_context(|| format!("admin_listen: cannot bind {}", admin.address))?;
            let bound = listener.local_addr()?;
            Some((listener, bound, AdminGuard::new(admin, bound)))
        }
        None => None,
    };
    let issuer = config
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let services = HostServices {
        store: store.clone(),
        clock: clock.clone(),
        lifetimes: config.lifetimes,
        login_limiter: Arc::new(LoginLimiter::new(config.login_limits, store.clone())),
        passwords: crate::password::PasswordChecker::default(),
        keys: keys.clone(),
        issuer: issuer.clone(),
    };
    let runtime = Runtime::new(config.runtime.clone(), Some(services.clone()))?;
    let started = Clock::instant();
    let registry = Registry::load(&runtime, config.plugins.as_deref()).await?;
    live::log_loaded(&registry);
    info!(
        plugins = registry.plugins().len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "plugins ready"
    );
    let plugins = Arc::new(LiveRegistry::new(
        runtime,
        config.plugins.clone(),
        registry,
        clock.clone(),
        config.transaction_lifetime,
    ));
    // Installed before the listening line, so a SIGHUP sent once the server
    // is up reloads instead of ending the process.
    #[cfg(unix)]
    reload_on_hangup(plugins.clone())?;
    // Kept alive as long as the server runs: dropping it stops the watch.
    let _watch = match (&config.plugins, config.watch_plugins) {
        (Some(dir), true) => Some(live::watch(plugins.clone(), dir)?),
        _ => None,
    };
    if demo {
        seed_demo(&store, &clock).await?;
    }
    warn_about_legacy_grants(&store).await;

    let metrics = PrometheusBuilder::new()
        .set_buckets(&[
            0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
            0.25, 1.0,
        ])?
        .install_recorder()
        .map_err(|e| warn!(error = %e, "metrics recorder not installed"))
        .ok();
    if let Some(handle) = metrics.clone() {
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(5));
            loop {
                interval.tick().await;
                handle.run_upkeep();
            }
        });
    }
    tokio::spawn(reload_keys(
        store.clone(),
        keys.clone(),
        clock.clone(),
        config.keys.reload_interval,
    ));
    // Listening before registering, so a `plugins reload --cluster` that
    // sees this instance listed reaches it.
    let reload_requests = store
        .reload_requests()
        .await
        .context("listening for cluster plugin reload requests")?;
    let admin_address = admin_listener.as_ref().map(|(_, address, _)| *address);
    let instance = register_instance(&store, &plugins, &clock, address, admin_address).await?;
    if let Some(requests) = reload_requests {
        tokio::spawn(answer_reload_requests(
            requests,
            store.clone(),
            plugins.clone(),
            instance.id.clone(),
            clock.clone(),
        ));
    }
    tokio::spawn(housekeeping(
        store.clone(),
        services.login_limiter.clone(),
        clock.clone(),
        instance.clone(),
        plugins.clone(),
    ));

    let registry_store = store.clone();
    let admin_store = store.clone();
    let admin_clock = clock.clone();
    let app = Arc::new(AppState {
        store,
        plugins: plugins.clone(),
        clock,
        issuer: issuer.clone(),
        ui,
        services,
        transaction_lifetime: config.transaction_lifetime,
        trusted_proxies: config.trusted_proxies.clone(),
        scope_descriptions: config.scope_descriptions.clone(),
        clients: Default::default(),
        keys: keys.clone(),
        jwks_max_age: config.keys.jwks_max_age(),
        registration: config.registration.clone(),
        par: config.par,
        dpop: config.dpop,
    });
    let session_store = session_store(&app.store).await?;
    let sessions = app::session_layer(session_store, &issuer);
    let router = app::router(
        app,
        HttpConfig {
            body_limit_bytes: config.body_limit_bytes,
        },
        sessions,
    );
    if let Some((admin_listener, admin_address, guard)) = admin_listener {
        let state = AdminState {
            store: admin_store,
            clock: admin_clock,
            plugins,
            metrics,
            guard: Arc::new(guard),
            instance_id: instance.id.as_str().into(),
            keys: keys.clone(),
        };
        tokio::spawn(async move {
            if let Err(error) = axum::serve(admin_listener, app::admin_router(state)).await {
                warn!(%error, "the admin listener stopped");
            }
        });
        info!(address = %admin_address, "admin API listening");
        println!("grantbox admin listening on http://{admin_address}");
    }
    info!(%address, %issuer, "grantbox listening");
    println!("grantbox listening on http://{address} (issuer {issuer})");
    listen(listener, router, connection_limits, shutdown_signal()).await;
    // A clean shutdown leaves the instance registry; a crash leaves a row
    // that turns stale and is purged.
    match registry_store.deregister_instance(&instance.id).await {
        Ok(_) => info!(instance = %instance.id, "deregistered from the instance registry"),
        Err(error) => warn!(%error, instance = %instance.id, "cannot deregister this instance"),
    }
    Ok(())
}

/// Reloads the plugins from this instance's own plugin directory on every
/// cluster reload request (`grantbox plugins reload --cluster`), and records
/// the outcome for the command to collect: the fingerprint of the set now
/// serving, and the error of a refused set (the old set keeps serving). A
/// lost LISTEN connection is opened again.
async fn answer_reload_requests(
    mut requests: ReloadRequests,
    store: Store,
    plugins: Arc<LiveRegistry>,
    instance_id: String,
    clock: Clock,
) {
    loop {
        let request_id = match requests.next().await {
            Ok(request_id) => request_id,
            Err(error) => {
                warn!(%error, "cluster reload requests: listening again shortly");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        info!(request = %request_id, "cluster reload request: reloading the plugins");
        let reloaded = plugins.reload().await;
        let outcome = ReloadOutcome {
            request_id,
            instance_id: instance_id.clone(),
            ok: reloaded.is_ok(),
            plugins: cluster::plugin_set_fingerprint(&plugins.snapshot()),
            error: reloaded.err().map(|error| error.to_string()),
            at: clock.now(),
        };
        if let Err(error) = store.record_reload_outcome(&outcome).await {
            warn!(%error, request = %outcome.request_id, "cannot record the outcome of a cluster reload");
        }
    }
}

/// Registers this process in the store's instance registry (`grantbox
/// instances`) under a new random id, with its addresses, version and the
/// fingerprint of the plugin set it serves.
async fn register_instance(
    store: &Store,
    plugins: &LiveRegistry,
    clock: &Clock,
    address: std::net::SocketAddr,
    admin_address: Option<std::net::SocketAddr>,
) -> anyhow::Result<Instance> {
    let now = clock.now();
    let instance = Instance {
        id: cluster::new_instance_id(),
        address: address.to_string(),
        admin_address: admin_address.map(|a| a.to_string()),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        plugins: cluster::plugin_set_fingerprint(&plugins.snapshot()),
        started_at: now,
        heartbeat_at: now,
    };
    store
        .register_instance(&instance)
        .await
        .context("registering this instance")?;
    info!(instance = %instance.id, plugins = %instance.plugins, "registered in the instance registry");
    Ok(instance)
}

/// Descriptors kept for everything but client connections: the database
/// pool, the plugin cache, the admin listener, logs.
const RESERVED_DESCRIPTORS: u64 = 256;

/// Raises the soft open-files limit to the hard limit where the system allows
/// it, and lowers `max_connections` to what the descriptors can hold, so the
/// connection ceiling is reached before the descriptors run out.
fn raise_open_files_limit(limits: ConnectionLimits) -> ConnectionLimits {
    let available = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => soft,
        Err(error) => {
            warn!(%error, "cannot raise the open files limit");
            match rlimit::getrlimit(rlimit::Resource::NOFILE) {
                Ok((soft, _)) => soft,
                Err(_) => return limits,
            }
        }
    };
    let fits = available.saturating_sub(RESERVED_DESCRIPTORS).max(1);
    if (limits.max_connections as u64) <= fits {
        return limits;
    }
    warn!(
        max_connections = limits.max_connections,
        open_files_limit = available,
        lowered_to = fits,
        "limits.max_connections is more than the open files limit allows; lowered"
    );
    ConnectionLimits {
        max_connections: fits as usize,
        ..limits
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then waits for
/// the open connections to finish. A connection holds one of
/// `max_connections` permits from accept to close; with none left the loop
/// stops accepting (the kernel's backlog holds newcomers). hyper closes a
/// connection whose request head is not complete `header_read_timeout` after
/// it began waiting for one (which also ends idle kept-alive connections);
/// the body-read timeout ends a request whose body stalls.
async fn listen(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let body_timeout = tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    outlive_accept_error(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // What `into_make_service_with_connect_info` gives axum::serve: the
        // peer address for login throttling.
        let service = tower::ServiceBuilder::new()
            .map_request(
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(remote));
                    request
                },
            )
            .layer(body_timeout.clone())
            .service(router.clone());
        let connection = http.serve_connection(
            TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// An accept error is logged and the loop goes on: a peer that gave up
/// before accept at once, anything else (descriptors exhausted: `EMFILE`,
/// `ENFILE`) after a pause that lets connections close.
async fn outlive_accept_error(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    warn!(%error, "accept failed; accepting again shortly");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Once a minute, off the request path: records this instance's heartbeat
/// and the plugin set it now serves (registering it again if its row was
/// purged while the database was away), purges instances stale for a day,
/// expired codes, tokens, key-value entries and decided transactions, and
/// failed sign-in counters past their reset time.
async fn housekeeping(
    store: Store,
    login_limiter: Arc<LoginLimiter>,
    clock: Clock,
    mut instance: Instance,
    plugins: Arc<LiveRegistry>,
) {
    let mut interval = tokio::time::interval(cluster::HEARTBEAT_INTERVAL);
    loop {
        interval.tick().await;
        let now = clock.now();
        instance.plugins = cluster::plugin_set_fingerprint(&plugins.snapshot());
        instance.heartbeat_at = now;
        match store
            .heartbeat_instance(&instance.id, &instance.plugins, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                if let Err(error) = store.register_instance(&instance).await {
                    warn!(%error, "cannot register this instance again");
                }
            }
            Err(error) => warn!(%error, "cannot record this instance's heartbeat"),
        }
        match store.purge_instances(cluster::purge_before(now)).await {
            Ok(0) => {}
            Ok(purged) => info!(purged, "housekeeping purged stale instances"),
            Err(error) => warn!(%error, "housekeeping of stale instances failed"),
        }
        match store.purge_expired(now).await {
            Ok(0) => {}
            Ok(purged) => info!(purged, "housekeeping purged expired rows"),
            Err(error) => warn!(%error, "housekeeping failed"),
        }
        match login_limiter.purge(now).await {
            Ok(0) => {}
            Ok(purged) => info!(purged, "housekeeping forgot old failed sign-in counters"),
            Err(error) => warn!(%error, "housekeeping of failed sign-in counters failed"),
        }
    }
}

/// Every SIGHUP reloads the plugins, as `POST /admin/plugins/reload` does;
/// a refused set is logged and counted by the reload itself.
#[cfg(unix)]
fn reload_on_hangup(plugins: Arc<LiveRegistry>) -> anyhow::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            info!("SIGHUP: reloading the plugins");
            let _ = plugins.reload().await;
        }
    });
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    info!("shutting down");
}

/// Registers `demo-client` and user `demo` when absent and prints their credentials.
async fn seed_demo(store: &Store, clock: &Clock) -> anyhow::Result<()> {
    let registration = ClientRegistration {
        client_id: "demo-client".into(),
        redirect_uris: vec!["http://127.0.0.1:9999/callback".into()],
        grant_types: vec![
            "client_credentials".into(),
            "authorization_code".into(),
            "refresh_token".into(),
        ],
        scopes: vec!["read".into(), "write".into()],
        public: false,
        trusted: false,
        introspection: false,
        name: Some("Demo client".into()),
        secret: None,
        client_uri: None,
        ..ClientRegistration::default()
    };
    let (client, secret) = registration::validate(registration, clock.now())?;
    match store.insert_client(&client).await {
        Ok(()) => println!(
            "demo client: client_id=demo-client client_secret={} (printed once)",
            secret.unwrap_or_default()
        ),
        Err(e) if e.kind() == StoreErrorKind::Conflict => {
            println!("demo client: demo-client exists (its secret was printed when it was created)")
        }
        Err(e) => return Err(e.into()),
    }
    let password = crate::secret::new_token();
    let claims = ["name=Demo User".to_owned()];
    let user = registration::validate_user("demo", &password, &claims, clock.now())?;
    match store.insert_user(&user).await {
        Ok(()) => println!("demo user: username=demo password={password} (printed once)"),
        Err(e) if e.kind() == StoreErrorKind::Conflict => println!("demo user: demo exists"),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// The login and transaction sessions live in the same database as the
/// rest of the state, so a restart keeps them and every instance sharing a
/// PostgreSQL database sees them; expired ones are deleted.
async fn session_store(store: &Store) -> anyhow::Result<SessionBackend> {
    let sessions = SessionBackend::open(store).await?;
    let sweeper = sessions.clone();
    tokio::spawn(async move {
        use tower_sessions::session_store::ExpiredDeletion as _;
        // Not `continuously_delete_expired`, which stops at the first error:
        // the sweep must outlive a database outage.
        let mut interval = tokio::time::interval(Duration::from_secs(60));
        loop {
            interval.tick().await;
            if let Err(error) = sweeper.delete_expired().await {
                warn!(%error, "deleting expired sessions failed");
            }
        }
    });
    Ok(sessions)
}

/// RFC 9700 §2.4 and §2.1.2: the password and implicit grants must not be
/// used; say so at every start while any client is registered for them.
async fn warn_about_legacy_grants(store: &Store) {
    let Ok(clients) = store.list_clients().await else {
        return;
    };
    for legacy in ["password", "implicit"] {
        let users: Vec<&str> = clients
            .iter()
            .filter(|c| c.grant_types.iter().any(|g| g == legacy))
            .map(|c| c.client_id.as_str())
            .collect();
        if !users.is_empty() {
            warn!(grant_type = legacy, clients = ?users, "clients use a legacy grant that RFC 9700 says must not be used; migrate them to authorization_code with PKCE");
        }
    }
}
