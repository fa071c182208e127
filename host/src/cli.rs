//! The command line (README.md, "Command line"): `serve`, `client
//! add|show|list|update|remove|rotate-secret`, `user
//! add|update|list|show|set-password|disable|enable|remove`, `consent`,
//! `token revoke`, `audit list`, `keys list|rotate|retire`, `registration token
//! create` and `plugins list|check|export|new|build|reload`. Every `serve` flag also reads a
//! `GRANTBOX_*` variable; the operator commands are in `cli/manage.rs`.

mod admin;
mod manage;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};

use crate::author::{builder, scaffold};
use crate::config::{DEFAULT_DB, RawConfig, ServeConfig, ServeFlags};
use crate::keys::{Alg, key_state, persist};
use crate::oauth::client_auth::AuthMethod;
use crate::plugin::{Registry, Runtime, RuntimeConfig, bundled, registry};
use crate::registration::ClientRegistration;
use crate::store::Store;
use admin::{AdminClient, AdminCommand};
use manage::{AuditCommand, ConsentCommand, Operator, TokenCommand};

#[derive(Debug, Parser)]
#[command(
    name = "grantbox",
    version,
    about = "An OAuth 2.0 authorization server whose grant types are WebAssembly plugins"
)]
pub struct Cli {
    /// Database URL: a SQLite file (`sqlite://grantbox.db`, the default) or `postgres://…`.
    #[arg(long, global = true, env = "GRANTBOX_DB")]
    pub db: Option<String>,
    /// A TOML config file; flags and environment variables win over it.
    #[arg(long, global = true, env = "GRANTBOX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print results as JSON (for scripts) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Run operator commands through a running server's admin API at this
    /// URL (token from GRANTBOX_ADMIN_TOKEN) instead of on the database.
    #[arg(long, global = true, env = "GRANTBOX_ADMIN")]
    pub admin: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the authorization server.
    Serve(ServeArgs),
    /// Manage registered clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage resource owners for the built-in login.
    #[command(subcommand)]
    User(UserCommand),
    /// List and withdraw the consents users gave clients.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// Kill switches: revoke every token a client or a user holds.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Read the audit trail of operator changes.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Admin tokens for the admin API.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// List, rotate and retire the signing keys (never shows a private key).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List the server instances sharing the database: addresses, version,
    /// plugin set fingerprint, last heartbeat, and whether they are stale.
    Instances,
    /// Show, validate, export, scaffold and build plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Dynamic client registration (RFC 7591): initial access tokens.
    #[command(subcommand)]
    Registration(RegistrationCommand),
}

#[derive(Debug, Subcommand)]
pub enum RegistrationCommand {
    /// Initial access tokens, which a client presents to `POST /register`.
    #[command(subcommand)]
    Token(RegistrationTokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum RegistrationTokenCommand {
    /// Create an initial access token; it is printed once, alone on standard
    /// output, and only its SHA-256 is stored.
    Create {
        /// How many registrations it allows (default 1).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..), conflicts_with = "multi_use")]
        uses: Option<i64>,
        /// Allow any number of registrations until it expires.
        #[arg(long)]
        multi_use: bool,
        /// Seconds until it expires (default 86400, a day).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..), default_value_t = DEFAULT_INITIAL_ACCESS_TOKEN_LIFETIME)]
        expires_in: i64,
    },
}

/// Seconds an initial access token is valid unless `--expires-in` says otherwise.
pub const DEFAULT_INITIAL_ACCESS_TOKEN_LIFETIME: i64 = 86_400;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GRANTBOX_LISTEN")]
    pub listen: Option<String>,
    /// Address of the admin API (off unless set; loopback, e.g. 127.0.0.1:8181).
    #[arg(long, env = "GRANTBOX_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// Reload the plugins when a file in the plugin directory changes.
    #[arg(long, env = "GRANTBOX_WATCH_PLUGINS")]
    pub watch_plugins: bool,
    /// A directory of plugins (each `<dir>/*/plugin.toml`); they add to and replace bundled ones.
    #[arg(long, env = "GRANTBOX_PLUGINS")]
    pub plugins: Option<PathBuf>,
    /// The issuer identifier (RFC 8414), e.g. https://auth.example.com.
    #[arg(long, env = "GRANTBOX_ISSUER")]
    pub issuer: Option<String>,
    /// Where compiled plugins are cached (default ~/.cache/grantbox).
    #[arg(long, env = "GRANTBOX_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Register a demo client and user on first start and print their credentials.
    #[arg(long, env = "GRANTBOX_DEMO")]
    pub demo: bool,
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; a generated secret is printed once.
    Add(Box<ClientAddArgs>),
    #[command(flatten)]
    Operation(manage::ClientOperation),
}

#[derive(Debug, Args)]
pub struct ClientAddArgs {
    /// The client identifier.
    pub id: String,
    /// A redirection URI; repeat for several.
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// An RFC 7591 grant type; repeat for several.
    #[arg(long = "grant-type")]
    pub grant_types: Vec<String>,
    /// A scope the client may request; repeat for several.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// A public client (no secret, PKCE required).
    #[arg(long)]
    pub public: bool,
    /// Skip the consent page for this client (never for a public client
    /// redirecting to loopback or a private-use scheme, RFC 8252 §8.6).
    #[arg(long)]
    pub trusted: bool,
    /// A resource server: may introspect other clients' access tokens
    /// (RFC 7662 §4); every confidential client may introspect its own.
    #[arg(long)]
    pub introspection: bool,
    /// A human-readable name shown on the consent page.
    #[arg(long)]
    pub name: Option<String>,
    /// A page about the client (RFC 7591 `client_uri`), linked on the consent page.
    #[arg(long)]
    pub client_uri: Option<String>,
    /// Use this secret (at least 32 characters) instead of a generated one.
    #[arg(long, env = "GRANTBOX_CLIENT_SECRET")]
    pub secret: Option<String>,
    /// How the client authenticates at the token, introspection and
    /// revocation endpoints (RFC 7591 `token_endpoint_auth_method`); any
    /// other method is refused. Without it, a confidential client may use
    /// client_secret_basic or client_secret_post, a public client none.
    /// client_secret_jwt keeps the secret sealed under the key-encryption
    /// key (as `serve` finds it), since it is the key of the client's HMACs.
    #[arg(long, value_parser = ["client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt", "none"])]
    pub auth_method: Option<String>,
    /// A JSON file with the client's JWK Set of public keys, for
    /// private_key_jwt (EC P-256, RSA of 2048 bits or more, OKP Ed25519).
    #[arg(long)]
    pub jwks: Option<std::path::PathBuf>,
    /// A resource (RFC 8707: an absolute URI without fragment) the client may
    /// ask tokens for with `resource`; repeat for several. Its tokens are for
    /// all of them when it names none.
    #[arg(long = "resource")]
    pub resources: Vec<String>,
    /// `opaque` (the default) or `jwt` (RFC 9068 JWT access tokens, which
    /// need at least one --resource for their `aud`).
    #[arg(long, default_value = "opaque")]
    pub access_token_format: String,
    /// Where `/end_session` may send the browser after signing the user out
    /// (OpenID Connect RP-Initiated Logout: matched exactly, the rules of
    /// --redirect-uri); repeat for several.
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// The JWS algorithm of the client's OpenID Connect ID tokens (`ES256`,
    /// `RS256` or `EdDSA`, one the server keeps a key for: `keys.algorithms`);
    /// RS256 when absent.
    #[arg(long, value_name = "ALG")]
    pub id_token_signed_response_alg: Option<String>,
    /// Hold the client to a profile's rules beyond the server's: `fapi2`,
    /// the FAPI 2.0 Security Profile (confidential, private_key_jwt, https
    /// redirect URIs, no implicit or password grant; at run time pushed
    /// requests, PKCE S256, DPoP-bound tokens, 60 s codes).
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// The client must push its authorization requests (RFC 9126 §6
    /// `require_pushed_authorization_requests`): `/authorize` takes only a
    /// `request_uri` from `POST /par` from it.
    #[arg(long)]
    pub require_par: bool,
    /// Refuse the client's token requests without a DPoP proof (RFC 9449
    /// `dpop_bound_access_tokens`): it never gets a bearer token.
    #[arg(long)]
    pub require_dpop: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        username: String,
        /// Read the password from standard input (required: never a flag).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// An OpenID Connect claim, `name=value` (e.g. `name=Alice`,
        /// `email=alice@example.com`, `email_verified=true`); repeatable.
        #[arg(long = "claim", value_name = "NAME=VALUE")]
        claims: Vec<String>,
    },
    /// Change a user's OpenID Connect claims: `--claim name=value` sets one,
    /// `--claim name=` removes it.
    Update {
        username: String,
        #[arg(long = "claim", value_name = "NAME=VALUE", required = true)]
        claims: Vec<String>,
    },
    #[command(flatten)]
    Operation(manage::UserOperation),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Each key's kid, algorithm, state and times (public facts only).
    List,
    /// Create a key, published at once, signing after `[keys]
    /// activation_delay_seconds`; the key it replaces stops signing then and
    /// stays published until the tokens it signed have expired.
    Rotate {
        /// The algorithm: ES256, RS256 or EdDSA (default: `[keys] default_algorithm`).
        #[arg(long)]
        alg: Option<Alg>,
    },
    /// Stop a key signing now; it leaves the JWKS once every token it signed has expired.
    Retire {
        /// The key's `kid` (an RFC 7638 thumbprint, base64url: it may begin
        /// with `-`, taken as the id and not as a flag).
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List the plugins `serve` would load.
    List {
        #[arg(long, env = "GRANTBOX_PLUGINS")]
        plugins: Option<PathBuf>,
    },
    /// Validate a plugin directory as `serve` would, without starting.
    Check { dir: PathBuf },
    /// Write the bundled plugins (manifest and wasm) into a directory.
    Export { dir: PathBuf },
    /// Create a plugin crate with a working extension grant, outside any workspace.
    New {
        /// The plugin's name: its folder, package and `[plugin] name` (e.g. grant-hello).
        name: String,
        /// The folder to create it in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The `plugin-sdk` folder of a Grantbox checkout (default: the one this binary was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a plugin crate for wasm32-wasip2, fill in its manifest's sha256, then check it.
    Build { dir: PathBuf },
    /// Make a running server load its plugin directory again (through its
    /// admin API: `--admin URL`, default http:// + the config's
    /// `admin_listen`, with the token of GRANTBOX_ADMIN_TOKEN; SIGHUP does the
    /// same without it), or with `--cluster` every instance on the database.
    Reload {
        /// Ask every live instance sharing the database (`--db`, or the
        /// admin API's with `--admin`) to reload from its own plugin
        /// directory, and report what each now serves.
        #[arg(long)]
        cluster: bool,
        /// With `--cluster`: how long to wait for every instance's outcome.
        #[arg(long, default_value_t = 30, requires = "cluster")]
        timeout_seconds: u64,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let raw = RawConfig::load(cli.config.as_deref())?;
    let config_name = cli
        .config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(defaults)".into());
    // Commands without an admin API route run on the database only: say
    // so rather than quietly ignoring `--admin`.
    let database_only = match &cli.command {
        Command::User(UserCommand::Update { .. }) => Some("user update"),
        Command::Keys(_) => Some("keys"),
        _ => None,
    };
    if let (Some(command), Some(admin)) = (database_only, &cli.admin) {
        bail!(
            "{command} runs on the database only, not through the admin API ({admin}): drop --admin (or GRANTBOX_ADMIN)"
        );
    }
    match cli.command {
        Command::Serve(args) => {
            let flags = ServeFlags {
                listen: args.listen,
                admin_listen: args.admin_listen,
                watch_plugins: args.watch_plugins,
                db: cli.db,
                plugins: args.plugins,
                issuer: args.issuer,
                cache_dir: args.cache_dir,
            };
            let config = ServeConfig::resolve(flags, raw, &config_name)?;
            crate::serve::serve(config, args.demo).await
        }
        Command::Client(ClientCommand::Add(args)) => {
            let args = *args;
            // On the database, a client_secret_jwt client's secret is sealed
            // under the key-encryption key, found as `serve` finds it;
            // through the admin API, the server seals it.
            let sealing = args.auth_method.as_deref() == Some("client_secret_jwt");
            let keys = raw.keys.clone();
            let on_database = cli.admin.is_none();
            if sealing && on_database {
                let flags = ServeFlags {
                    db: cli.db,
                    ..ServeFlags::default()
                };
                let config = ServeConfig::resolve(flags, raw, &config_name)?;
                let store = Store::open(&config.db)
                    .await
                    .with_context(|| format!("opening the database {}", config.db))?;
                let kek = key_encryption_key(&store, &config).await?;
                client_add(
                    &Operator::Database(store),
                    args,
                    Some(&kek),
                    Some(&keys),
                    cli.json,
                )
                .await
            } else {
                let operator = operator(cli.admin, cli.db, &raw).await?;
                client_add(
                    &operator,
                    args,
                    None,
                    on_database.then_some(&keys),
                    cli.json,
                )
                .await
            }
        }
        Command::Client(ClientCommand::Operation(operation)) => {
            let operator = operator(cli.admin, cli.db, &raw).await?;
            manage::client(&operator, operation, cli.json).await
        }
        Command::User(UserCommand::Operation(operation)) => {
            let operator = operator(cli.admin, cli.db, &raw).await?;
            manage::user(&operator, operation, cli.json).await
        }
        Command::Consent(command) => {
            let operator = operator(cli.admin, cli.db, &raw).await?;
            manage::consent(&operator, command, cli.json).await
        }
        Command::Token(command) => {
            let operator = operator(cli.admin, cli.db, &raw).await?;
            manage::token(&operator, command, cli.json).await
        }
        Command::Audit(command) => {
            let operator = operator(cli.admin, cli.db, &raw).await?;
            manage::audit(&operator, command, cli.json).await
        }
        Command::Admin(command) => {
            let operator = operator(cli.admin, cli.db, &raw).await?;
            admin::admin(&operator, command, cli.json).await
        }
        Command::User(UserCommand::Add {
            username, claims, ..
        }) => {
            let operator = operator(cli.admin, cli.db, &raw).await?;
            let password = manage::read_password()?;
            let user = operator
                .user_add(crate::manage::UserAdd {
                    username,
                    password,
                    claims,
                })
                .await?;
            if cli.json {
                return manage::print_json(&user);
            }
            println!("user {} added", user.username);
            Ok(())
        }
        Command::User(UserCommand::Update { username, claims }) => {
            let store = open_store(cli.db, &raw).await?;
            let user = store
                .find_user(&username)
                .await?
                .with_context(|| format!("user {username:?} does not exist"))?;
            let mut user_claims = user.claims;
            crate::openid::claims::apply(&mut user_claims, &claims)?;
            if !store.update_user_claims(&username, &user_claims).await? {
                bail!("user {username:?} does not exist");
            }
            println!("user {username} updated");
            Ok(())
        }
        Command::Instances => {
            let store = open_store(cli.db, &raw).await?;
            let now = crate::serve::clock_from_environment()?.now();
            instances(&store, now, cli.json).await
        }
        Command::Plugins(PluginsCommand::Reload {
            cluster: true,
            timeout_seconds,
            ..
        }) => {
            let operator = operator(cli.admin, cli.db, &raw).await?;
            reload_cluster(&operator, timeout_seconds, cli.json).await
        }
        Command::Plugins(command) => plugins(command, cli.admin, raw, &config_name).await,
        Command::Registration(RegistrationCommand::Token(RegistrationTokenCommand::Create {
            uses,
            multi_use,
            expires_in,
        })) => {
            let store = open_store(cli.db, &raw).await?;
            let uses_left = if multi_use {
                None
            } else {
                Some(uses.unwrap_or(1))
            };
            registration_token_create(&store, uses_left, expires_in).await
        }
        Command::Keys(command) => {
            let flags = ServeFlags {
                db: cli.db,
                ..ServeFlags::default()
            };
            let config = ServeConfig::resolve(flags, raw, &config_name)?;
            keys(command, &config).await
        }
    }
}

/// An instance as `grantbox instances --json` shows it.
#[derive(serde::Serialize)]
struct InstanceView {
    #[serde(flatten)]
    instance: crate::store::Instance,
    /// No heartbeat for more than `STALE_AFTER_INTERVALS` intervals.
    stale: bool,
}

/// `grantbox instances`: the instance registry, the oldest first.
async fn instances(store: &Store, now: i64, json: bool) -> anyhow::Result<()> {
    let views: Vec<InstanceView> = store
        .list_instances()
        .await?
        .into_iter()
        .map(|instance| InstanceView {
            stale: crate::cluster::is_stale(instance.heartbeat_at, now),
            instance,
        })
        .collect();
    if json {
        return manage::print_json(&views);
    }
    let rows = views
        .iter()
        .map(|view| {
            let i = &view.instance;
            vec![
                i.id.clone(),
                i.address.clone(),
                i.admin_address.clone().unwrap_or_else(|| "-".into()),
                i.version.clone(),
                i.plugins.clone(),
                i.started_at.to_string(),
                i.heartbeat_at.to_string(),
                if view.stale { "stale" } else { "live" }.to_owned(),
            ]
        })
        .collect::<Vec<_>>();
    manage::print_table(
        &[
            "ID",
            "ADDRESS",
            "ADMIN",
            "VERSION",
            "PLUGINS",
            "STARTED",
            "HEARTBEAT",
            "STATE",
        ],
        &rows,
    );
    Ok(())
}

/// `grantbox plugins reload --cluster`: every live instance on the database
/// (or, with `--admin`, on the admin API's) reloads from its own plugin
/// directory; prints which serve which plugin set and which failed or did
/// not answer, failing when any did.
async fn reload_cluster(
    operator: &Operator,
    timeout_seconds: u64,
    json: bool,
) -> anyhow::Result<()> {
    let reload = operator.plugins_reload_cluster(timeout_seconds).await?;
    let result = |i: &crate::manage::InstanceReload| match (i.answered, i.ok) {
        (true, true) => "ok",
        (true, false) => "failed",
        (false, _) => "no answer",
    };
    if json {
        manage::print_json(&reload)?;
    } else {
        let rows = (reload.instances.iter())
            .map(|i| {
                vec![
                    i.instance_id.clone(),
                    i.address.clone(),
                    result(i).to_owned(),
                    i.plugins.clone().unwrap_or_else(|| "-".into()),
                    i.error.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect::<Vec<_>>();
        manage::print_table(&["ID", "ADDRESS", "RESULT", "PLUGINS", "ERROR"], &rows);
    }
    let failed: Vec<String> = (reload.instances.iter())
        .filter(|i| !i.ok)
        .map(|i| format!("{} ({}, {})", i.instance_id, i.address, result(i)))
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} instance(s) failed or did not answer within {timeout_seconds} s: {}; a failed instance keeps serving its previous plugins",
            failed.len(),
            reload.instances.len(),
            failed.join(", ")
        );
    }
    eprintln!("plugins reloaded on {} instance(s)", reload.instances.len());
    Ok(())
}

/// `grantbox keys …`, on the times of `GRANTBOX_CLOCK_OFFSET` like `serve`.
async fn keys(command: KeysCommand, config: &ServeConfig) -> anyhow::Result<()> {
    let store = Store::open(&config.db)
        .await
        .with_context(|| format!("opening the database {}", config.db))?;
    let now = crate::serve::clock_from_environment()?.now();
    // Every token a key signed has expired this long after it stops signing.
    let longest_lifetime = config.lifetimes.access_token;
    match command {
        KeysCommand::List => {
            let infos = persist::list(&store).await?;
            let signing = persist::signing_kids(&infos, now);
            println!("kid\talg\tstate\tcreated_at\tactivates_at\tretired_at\tpublished_until");
            let time = |t: Option<i64>| t.map_or("-".to_owned(), |t| t.to_string());
            for info in &infos {
                let signs = signing.iter().find(|kid| **kid == info.kid);
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    info.kid,
                    info.alg,
                    key_state(info, now, signs.map(String::as_str)).name(),
                    info.created_at,
                    info.activates_at,
                    time(info.retired_at),
                    time(info.published_until),
                );
            }
            Ok(())
        }
        KeysCommand::Rotate { alg } => {
            let environment = std::env::var(persist::KEY_ENCRYPTION_KEY_ENV).ok();
            let Some((kek, source)) =
                persist::find_key_encryption_key(&config.keys, &config.db, environment.as_deref())?
            else {
                bail!(
                    "no key-encryption key: set {} or [keys] key_encryption_key_file (a SQLite database's key file is created by the first `grantbox serve`)",
                    persist::KEY_ENCRYPTION_KEY_ENV
                );
            };
            let alg = alg.unwrap_or(config.keys.default_alg);
            let (key, retired) = persist::rotate(
                &store,
                &kek,
                &source,
                alg,
                config.keys.activation_delay,
                longest_lifetime,
                now,
            )
            .await?;
            println!("kid: {}", key.kid);
            println!("alg: {}", key.alg);
            println!("published from: {}", key.created_at);
            println!("signs from: {}", key.activates_at);
            for kid in retired {
                println!(
                    "replaces: {kid} (stops signing at {}, published until {})",
                    key.activates_at,
                    key.activates_at + longest_lifetime
                );
            }
            Ok(())
        }
        KeysCommand::Retire { kid } => {
            let key = persist::retire(&store, &kid, longest_lifetime, now).await?;
            println!(
                "retired: {} ({}), published until {}",
                key.kid,
                key.alg,
                key.published_until.unwrap_or(now)
            );
            Ok(())
        }
    }
}

/// `grantbox registration token create`, on the times of
/// `GRANTBOX_CLOCK_OFFSET` like `serve`: the token alone on stdout, what it
/// allows on stderr.
async fn registration_token_create(
    store: &Store,
    uses_left: Option<i64>,
    expires_in: i64,
) -> anyhow::Result<()> {
    let now = crate::serve::clock_from_environment()?.now();
    let actor = crate::manage::Actor::Cli;
    let token = create_initial_access_token(store, &actor, uses_left, expires_in, now).await?;
    let expires_at = now.saturating_add(expires_in);
    println!("{token}");
    let uses = match uses_left {
        None => "any number of registrations".to_owned(),
        Some(1) => "one registration".to_owned(),
        Some(n) => format!("{n} registrations"),
    };
    eprintln!(
        "initial access token created: {uses} until {expires_at} (unix time); it is shown only now"
    );
    Ok(())
}

/// Creates an initial access token for `POST /register` at `now`: stores
/// only its SHA-256, writes the audit record of `actor` (named by the hash's
/// first bytes, never by the token) and returns the token, to be shown once.
/// `uses_left` `None`: any number of registrations until it expires. Shaped
/// like the operations of `manage.rs`, so the admin API can call it too.
pub async fn create_initial_access_token(
    store: &Store,
    actor: &crate::manage::Actor,
    uses_left: Option<i64>,
    expires_in: i64,
    now: i64,
) -> anyhow::Result<String> {
    let token = crate::secret::new_token();
    let token_hash = crate::secret::token_hash(&token);
    let expires_at = now.saturating_add(expires_in);
    store
        .insert_initial_access_token(&crate::store::InitialAccessToken {
            token_hash,
            uses_left,
            created_at: now,
            expires_at: Some(expires_at),
        })
        .await?;
    let after = serde_json::json!({ "uses_left": uses_left, "expires_at": expires_at });
    crate::manage::audit(
        store,
        actor,
        "registration_token.create",
        &format!("initial access token {}", hex::encode(&token_hash[..6])),
        None,
        Some(after),
        now,
    )
    .await?;
    Ok(token)
}

/// Where operator commands run: the admin API with `--admin URL`, else the database.
async fn operator(
    admin: Option<String>,
    db: Option<String>,
    raw: &RawConfig,
) -> anyhow::Result<Operator> {
    Ok(match admin {
        Some(url) => Operator::Admin(AdminClient::from_environment(&url)?),
        None => Operator::Database(open_store(db, raw).await?),
    })
}

async fn open_store(db: Option<String>, raw: &RawConfig) -> anyhow::Result<Store> {
    let url = db
        .or_else(|| raw.db.clone())
        .unwrap_or_else(|| DEFAULT_DB.into());
    Store::open(&url)
        .await
        .with_context(|| format!("opening the database {url}"))
}

/// `client add`'s arguments are a registration as they stand (the
/// in-process tests register clients with the same grammar).
impl From<ClientAddArgs> for ClientRegistration {
    fn from(args: ClientAddArgs) -> Self {
        ClientRegistration {
            client_id: args.id,
            redirect_uris: args.redirect_uris,
            grant_types: args.grant_types,
            scopes: args.scopes,
            public: args.public,
            trusted: args.trusted,
            introspection: args.introspection,
            name: args.name,
            secret: args.secret,
            client_uri: args.client_uri,
            auth_method: args.auth_method.as_deref().and_then(AuthMethod::parse),
            // Read from the file by `client add`.
            jwks: None,
            resources: args.resources,
            access_token_format: args.access_token_format,
            post_logout_redirect_uris: args.post_logout_redirect_uris,
            id_token_signed_response_alg: args.id_token_signed_response_alg,
            profile: args.profile,
            require_pushed_authorization_requests: args.require_par,
            dpop_bound_access_tokens: args.require_dpop,
        }
    }
}

/// The key-encryption key that seals a `client_secret_jwt` client's secret
/// on the database (created beside a SQLite database when missing).
async fn key_encryption_key(
    store: &Store,
    config: &ServeConfig,
) -> anyhow::Result<crate::keys::KeyEncryptionKey> {
    let environment = std::env::var(persist::KEY_ENCRYPTION_KEY_ENV).ok();
    let (kek, source, created) =
        persist::open_key_encryption_key(store, &config.keys, &config.db, environment.as_deref())
            .await
            .context("the key-encryption key that seals the client secret")?;
    if created {
        eprintln!(
            "created the key-encryption key file: {source} (mode 0600; keep it with the database)"
        );
    }
    Ok(kek)
}

/// `client add`, through `manage::client_add` on the database or the admin
/// API: the generated secret is shown this once (in the JSON with `--json`).
async fn client_add(
    operator: &Operator,
    args: ClientAddArgs,
    kek: Option<&crate::keys::KeyEncryptionKey>,
    raw_keys: Option<&crate::config::RawKeys>,
    json: bool,
) -> anyhow::Result<()> {
    // The JWK Set is read here: the conversion does no IO.
    let jwks = match &args.jwks {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the JWK Set {}", path.display()))?,
        ),
        None => None,
    };
    let jwks_file = args.jwks.clone();
    // The algorithms the server keeps keys for, from the config on the
    // database (through the admin API the server checks its own).
    let signing_algorithms = match raw_keys {
        Some(raw_keys) => {
            crate::config::keys_config(raw_keys)
                .map_err(|(field, message)| anyhow::anyhow!("keys.{field}: {message}"))?
                .algorithms
        }
        None => Vec::new(),
    };
    let registration = ClientRegistration {
        jwks,
        ..ClientRegistration::from(args)
    };
    let added = match operator
        .client_add(registration, kek, &signing_algorithms)
        .await
    {
        Ok(added) => added,
        Err(error) => match error.downcast_ref::<crate::manage::ManageError>() {
            Some(crate::manage::ManageError::Invalid {
                field: "jwks",
                message,
            }) if jwks_file.is_some() => {
                let file = jwks_file.as_deref().unwrap_or(Path::new("--jwks"));
                bail!("{}: {message}", file.display())
            }
            _ => return Err(error),
        },
    };
    if json {
        return manage::print_json(&added);
    }
    let client = &added.client;
    println!("client_id: {}", client.client_id);
    let method = client.token_endpoint_auth_method.as_deref();
    match (client.public, added.client_secret) {
        (true, _) => println!("public client: no secret; PKCE is required"),
        (false, Some(secret)) => {
            println!("client_secret: {secret}\n(the secret is shown only now; store it safely)")
        }
        (false, None) if client.jwks => {
            println!("private_key_jwt client: no secret; it signs assertions with its own keys")
        }
        (false, None) if method == Some("client_secret_jwt") => println!(
            "client_secret: the one given with --secret (kept sealed under the key-encryption key, as the key of its assertions)"
        ),
        (false, None) => {
            println!("client_secret: the one given with --secret (only its hash is stored)")
        }
    }
    Ok(())
}

async fn plugins(
    command: PluginsCommand,
    admin: Option<String>,
    raw: RawConfig,
    config_name: &str,
) -> anyhow::Result<()> {
    match command {
        PluginsCommand::List { plugins } => {
            let dir = plugins.or(raw.plugins.clone());
            let registry = load_registry(raw, config_name, dir.as_deref()).await?;
            for plugin in registry.plugins() {
                let manifest = &plugin.manifest;
                println!(
                    "{} {}\t{}\tresponse_types={:?}\tgrant_types={:?}\tcapabilities={:?}",
                    manifest.name,
                    manifest.version,
                    manifest.source,
                    manifest.response_types,
                    manifest.grant_types,
                    plugin
                        .capabilities
                        .iter()
                        .map(|c| c.name())
                        .collect::<Vec<_>>(),
                );
                print_paths(plugin);
            }
            Ok(())
        }
        PluginsCommand::Check { dir } => check(&dir, raw, config_name).await,
        PluginsCommand::Export { dir } => export(&dir),
        PluginsCommand::New { name, dir, sdk } => {
            let made = scaffold::create(&scaffold::ScaffoldRequest {
                name,
                parent: dir,
                sdk,
            })?;
            for file in &made.files {
                println!("{}", made.dir.join(file).display());
            }
            println!("grant_type: {}", made.grant_type);
            println!(
                "next: cd {} && cargo test && grantbox plugins build .",
                made.dir.display()
            );
            Ok(())
        }
        PluginsCommand::Build { dir } => {
            let built = builder::build(&dir)?;
            println!(
                "{}: {} bytes, sha256 {}",
                built.wasm.display(),
                std::fs::metadata(&built.wasm).map(|m| m.len()).unwrap_or(0),
                built.sha256
            );
            println!("{}: wasm.sha256 filled in", built.manifest.display());
            check(&dir, raw, config_name).await
        }
        PluginsCommand::Reload { .. } => {
            let admin = match admin {
                Some(admin) => admin,
                None => {
                    let address = crate::config::admin_listen(raw.admin_listen)
                        .map_err(|message| anyhow::anyhow!("{config_name}: admin_listen: {message}"))?
                        .with_context(|| format!("no admin API to reach: pass --admin URL or set admin_listen in {config_name}; or send the server SIGHUP"))?;
                    format!("http://{address}")
                }
            };
            reload(&AdminClient::from_environment(&admin)?).await
        }
    }
}

/// Validates a plugin directory as `serve` would load it, bundled plugins included.
async fn check(dir: &Path, raw: RawConfig, config_name: &str) -> anyhow::Result<()> {
    // Fail early on an empty or unreadable directory with its own message.
    registry::manifest_paths(dir)?;
    let registry = load_registry(raw, config_name, Some(dir)).await?;
    let from_dir = registry
        .plugins()
        .iter()
        .filter(|p| !p.manifest.source.starts_with("bundled:"))
        .count();
    for plugin in registry.plugins() {
        if !plugin.manifest.source.starts_with("bundled:") {
            print_paths(plugin);
        }
    }
    println!("{}: {from_dir} plugin(s) valid", dir.display());
    Ok(())
}

/// A plugin's endpoints and user steps, one line each, under its own line.
fn print_paths(plugin: &crate::plugin::Plugin) {
    for endpoint in &plugin.manifest.endpoints {
        let client = if endpoint.authenticate_client {
            "client authenticated"
        } else {
            "no client authentication"
        };
        let metadata = endpoint
            .metadata
            .as_deref()
            .map_or(String::new(), |key| format!(", metadata {key}"));
        println!(
            "  {}: endpoint POST {} ({client}{metadata})",
            plugin.manifest.name, endpoint.path
        );
    }
    for step in &plugin.manifest.user_steps {
        println!("  {}: user step {}", plugin.manifest.name, step.path);
    }
}

/// `POST /admin/plugins/reload` on a running server; prints what it loaded,
/// or fails with the server's reason (which names the file and field).
async fn reload(admin: &AdminClient) -> anyhow::Result<()> {
    let (status, body) = admin
        .send_raw(reqwest::Method::POST, &["plugins", "reload"])
        .await?;
    if !status.is_success() {
        let reason = (body["error_description"].as_str())
            .or(body["error"].as_str())
            .unwrap_or("no reason given");
        bail!("plugin reload refused ({status}); the previous plugins keep serving: {reason}");
    }
    for plugin in body["plugins"].as_array().into_iter().flatten() {
        let field = |name: &str| plugin[name].as_str().unwrap_or_default().to_owned();
        println!(
            "{} {}\tsha256={}\t{}",
            field("name"),
            field("version"),
            field("sha256"),
            field("source")
        );
    }
    println!("plugins reloaded");
    Ok(())
}

async fn load_registry(
    raw: RawConfig,
    config_name: &str,
    dir: Option<&Path>,
) -> anyhow::Result<Registry> {
    let config = ServeConfig::resolve(ServeFlags::default(), raw, config_name)?;
    let runtime = Runtime::new(
        RuntimeConfig {
            cache_dir: config.runtime.cache_dir.clone(),
            ..config.runtime
        },
        None,
    )?;
    Ok(Registry::load(&runtime, dir).await?)
}

fn export(dir: &Path) -> anyhow::Result<()> {
    for plugin in bundled::BUNDLED {
        let target = dir.join(plugin.name);
        std::fs::create_dir_all(&target)
            .with_context(|| format!("creating {}", target.display()))?;
        let wasm_name = format!("{}.wasm", plugin.name.replace('-', "_"));
        std::fs::write(target.join(&wasm_name), plugin.wasm)?;
        std::fs::write(target.join("plugin.toml"), plugin.manifest)?;
        println!("{}", target.display());
    }
    if bundled::BUNDLED.is_empty() {
        bail!("this build has no bundled plugins");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command, KeysCommand};

    /// A `kid` is base64url and may begin with `-`: it is still the id.
    #[test]
    fn keys_retire_takes_a_kid_that_begins_with_a_hyphen() {
        let cli = Cli::try_parse_from(["grantbox", "keys", "retire", "-Dq3x"]).unwrap();
        let Command::Keys(KeysCommand::Retire { kid }) = cli.command else {
            panic!("parsed as keys retire");
        };
        assert_eq!(kid, "-Dq3x");
    }
}
