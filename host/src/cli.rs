//! The command line (README.md, "Command line"): `serve`, `client
//! add|show|list|update|remove|rotate-secret`, `user
//! add|update|list|show|set-password|disable|enable|remove`, `consent`,
//! `token revoke`, `audit list`, `keys list|rotate|retire` and `plugins
//! list|check|export|new|build|reload`. Every `serve` flag also reads a
//! `GRANTBOX_*` variable; the operator commands are in `cli/manage.rs`.

mod admin;
mod manage;

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};

use crate::author::{builder, scaffold};
use crate::clock::Clock;
use crate::config::{DEFAULT_DB, RawConfig, ServeConfig, ServeFlags};
use crate::keys::{Alg, key_state, persist};
use crate::oauth::client_auth::AuthMethod;
use crate::plugin::{Registry, Runtime, RuntimeConfig, bundled, registry};
use crate::registration::{self, ClientRegistration, RegistrationError};
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
    /// Show, validate, export, scaffold and build plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

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
    Add(ClientAddArgs),
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
    #[arg(long, value_parser = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"])]
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
    Retire { kid: String },
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
    /// Make a running server load its plugin directory again (through its admin endpoint).
    /// With `--admin URL` (default http:// + the config's `admin_listen`)
    /// and the token of GRANTBOX_ADMIN_TOKEN; SIGHUP does the same without it.
    Reload,
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
        Command::Client(ClientCommand::Add(_)) => Some("client add"),
        Command::User(UserCommand::Add { .. }) => Some("user add"),
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
            let store = open_store(cli.db, &raw).await?;
            client_add(&store, args).await
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
            let store = open_store(cli.db, &raw).await?;
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\n', '\r']);
            let now = Clock::system().now();
            let user = registration::validate_user(&username, password, &claims, now)?;
            store.insert_user(&user).await?;
            println!("user {username} added");
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
        Command::Plugins(command) => plugins(command, cli.admin, raw, &config_name).await,
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
        }
    }
}

async fn client_add(store: &Store, args: ClientAddArgs) -> anyhow::Result<()> {
    // The JWK Set is read here: the conversion does no IO.
    let jwks = match &args.jwks {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the JWK Set {}", path.display()))?,
        ),
        None => None,
    };
    let jwks_file = args.jwks.clone();
    let registration = ClientRegistration {
        jwks,
        ..ClientRegistration::from(args)
    };
    let (client, secret) = match registration::validate(registration, Clock::system().now()) {
        Err(RegistrationError::Jwks(error)) => {
            let file = jwks_file.as_deref().unwrap_or(Path::new("--jwks"));
            bail!("{}: {error}", file.display())
        }
        validated => validated?,
    };
    store.insert_client(&client).await?;
    println!("client_id: {}", client.client_id);
    match (client.public, secret) {
        (true, _) => println!("public client: no secret; PKCE is required"),
        (false, Some(secret)) => {
            println!("client_secret: {secret}\n(the secret is shown only now; store it safely)")
        }
        (false, None) if client.auth.jwks.is_some() => {
            println!("private_key_jwt client: no secret; it signs assertions with its own keys")
        }
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
        PluginsCommand::Reload => {
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
