//! The operator commands (`client show|list|update|remove|rotate-secret`,
//! `user list|show|set-password|disable|enable|remove`, `consent`, `token
//! revoke`, `audit list`): arguments in, one `manage::` operation through an
//! [`Operator`], a table or `--json` out. A created secret goes alone on one
//! line of stdout, every other word of such a command to stderr.

use std::io::Read as _;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::keys::{Alg, KeyEncryptionKey};
use crate::manage::admin_token::{self, AdminTokenCreated, AdminTokenRequest, AdminTokenView};
use crate::manage::{
    self, Actor, AuditEntry, ClientAdded, ClientFilter, ClientRemoved, ClientUpdate, ClientView,
    ClusterReload, ConsentView, SecretRotated, TokensRevoked, UserAdd, UserView,
};
use crate::registration::ClientRegistration;
use crate::store::{AuditFilter, Store};
use reqwest::Method;

use super::admin::AdminClient;

/// Where the operations run: on the database directly, as the CLI
/// (`Actor::Cli`), or through a running server's admin API (`--admin URL`),
/// as the admin token of `GRANTBOX_ADMIN_TOKEN`; the commands are the same.
pub enum Operator {
    Database(Store),
    Admin(AdminClient),
}

/// The `client` subcommands that are operations (`client add` stays in `cli.rs`).
// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum ClientOperation {
    /// Show one client (never its secret).
    Show { id: String },
    /// List registered clients.
    List(ClientListArgs),
    /// Change a client's registration (the checks of `client add`).
    Update(ClientUpdateArgs),
    /// Remove a client and revoke every token and refresh family it holds.
    Remove { id: String },
    /// Give a confidential client a new secret, printed alone on stdout.
    RotateSecret {
        id: String,
        /// Seconds the previous secret stays valid (default 0: not at all).
        #[arg(long, default_value_t = manage::DEFAULT_SECRET_GRACE_SECONDS)]
        grace: i64,
    },
}

/// The `user` subcommands that are operations (`user add|update` stay in `cli.rs`).
#[derive(Debug, Subcommand)]
pub enum UserOperation {
    /// List users (never their password hashes).
    List,
    /// Show one user.
    Show { username: String },
    /// Set a user's password, read from standard input.
    SetPassword {
        username: String,
        /// Read the password from standard input (required: never a flag).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable a user: no sign-in, every token revoked, sessions ended.
    Disable { username: String },
    /// Let a disabled user sign in again.
    Enable { username: String },
    /// Remove a user, their consents, and revoke every token they hold.
    Remove { username: String },
}

#[derive(Debug, Args)]
pub struct ClientListArgs {
    /// Only clients registered for this grant type.
    #[arg(long)]
    pub grant_type: Option<String>,
    /// Only public clients.
    #[arg(long, conflicts_with = "confidential")]
    pub public: bool,
    /// Only confidential clients.
    #[arg(long)]
    pub confidential: bool,
}

#[derive(Debug, Args)]
pub struct ClientUpdateArgs {
    /// The client identifier.
    pub id: String,
    /// Replace the redirection URIs (repeat for several).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Replace the grant types (repeat for several).
    #[arg(long = "grant-type")]
    pub grant_types: Vec<String>,
    /// Replace the scopes (repeat for several).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Replace the resources (repeat for several).
    #[arg(long = "resource")]
    pub resources: Vec<String>,
    /// Remove every resource.
    #[arg(long, conflicts_with = "resources")]
    pub no_resources: bool,
    /// Replace the post-logout redirect URIs (repeat for several).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Remove every post-logout redirect URI.
    #[arg(long, conflicts_with = "post_logout_redirect_uris")]
    pub no_post_logout_redirect_uris: bool,
    /// The name shown on the consent page (empty: none).
    #[arg(long)]
    pub name: Option<String>,
    /// The page about the client (empty: none).
    #[arg(long)]
    pub client_uri: Option<String>,
    /// Skip the consent page (`true`) or not (`false`).
    #[arg(long)]
    pub trusted: Option<bool>,
    /// May introspect other clients' access tokens (`true`) or not (`false`).
    #[arg(long)]
    pub introspection: Option<bool>,
    /// `opaque` or `jwt`.
    #[arg(long)]
    pub access_token_format: Option<String>,
    /// How the client authenticates (as `client add --auth-method`).
    #[arg(long, value_parser = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"])]
    pub auth_method: Option<String>,
    /// A JSON file with the client's JWK Set, for private_key_jwt.
    #[arg(long)]
    pub jwks: Option<std::path::PathBuf>,
    /// Its authorization requests must be pushed (RFC 9126 §6): `true`
    /// (also `--require-par` alone) or `false`.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub require_par: Option<bool>,
    /// Refuse the client's token requests without a DPoP proof (RFC 9449
    /// `dpop_bound_access_tokens`): `--require-dpop` or `--require-dpop
    /// true`; `--require-dpop false` lifts it.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub require_dpop: Option<bool>,
}

#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// The clients a user approved, with the scope of each.
    List {
        #[arg(long)]
        user: String,
    },
    /// Forget a user's consent for a client: the next authorization asks again.
    Revoke {
        #[arg(long)]
        user: String,
        #[arg(long)]
        client: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Revoke every token and refresh family a client or a user holds.
    Revoke {
        #[arg(long, required_unless_present = "user", conflicts_with = "user")]
        client: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The audit records, oldest first.
    List {
        /// Records at or after this time (Unix seconds).
        #[arg(long)]
        since: Option<i64>,
        /// Records before this time (Unix seconds).
        #[arg(long)]
        until: Option<i64>,
        /// Records by this actor (`cli`, `admin-token:ID`, `registration:CLIENT_ID`).
        #[arg(long)]
        actor: Option<String>,
        /// At most this many, the latest.
        #[arg(long)]
        limit: Option<i64>,
    },
}

impl Operator {
    fn actor(&self) -> Actor {
        // Through the admin API the server names the actor (the admin
        // token); this one is used on the database only.
        Actor::Cli
    }

    fn now() -> anyhow::Result<i64> {
        Ok(crate::serve::clock_from_environment()?.now())
    }

    /// `client add`: `kek` seals a `client_secret_jwt` client's secret on
    /// the database, and `signing_algorithms` are the ones its config keeps
    /// keys for; through the admin API the server's own do.
    pub async fn client_add(
        &self,
        registration: ClientRegistration,
        kek: Option<&KeyEncryptionKey>,
        signing_algorithms: &[Alg],
    ) -> anyhow::Result<ClientAdded> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store) => {
                Ok(
                    manage::client_add(store, &actor, registration, kek, signing_algorithms, now)
                        .await?,
                )
            }
            Operator::Admin(api) => {
                let body = serde_json::to_value(&registration)?;
                api.send(Method::POST, &["clients"], &[], Some(body)).await
            }
        }
    }

    pub async fn user_add(&self, user: UserAdd) -> anyhow::Result<UserView> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store) => Ok(manage::user_add(store, &actor, user, now).await?),
            Operator::Admin(api) => {
                let body = serde_json::to_value(&user)?;
                api.send(Method::POST, &["users"], &[], Some(body)).await
            }
        }
    }

    pub async fn client_show(&self, client_id: &str) -> anyhow::Result<ClientView> {
        match self {
            Operator::Database(store) => Ok(manage::client_show(store, client_id).await?),
            Operator::Admin(api) => {
                api.send(Method::GET, &["clients", client_id], &[], None)
                    .await
            }
        }
    }

    pub async fn client_list(&self, filter: &ClientFilter) -> anyhow::Result<Vec<ClientView>> {
        match self {
            Operator::Database(store) => Ok(manage::client_list(store, filter).await?),
            Operator::Admin(api) => {
                let mut query = Vec::new();
                if let Some(grant_type) = &filter.grant_type {
                    query.push(("grant_type", grant_type.clone()));
                }
                if let Some(public) = filter.public {
                    query.push(("public", public.to_string()));
                }
                api.send(Method::GET, &["clients"], &query, None).await
            }
        }
    }

    pub async fn client_update(
        &self,
        client_id: &str,
        update: ClientUpdate,
    ) -> anyhow::Result<ClientView> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store) => {
                Ok(manage::client_update(store, &actor, client_id, update, now).await?)
            }
            Operator::Admin(api) => {
                let body = serde_json::to_value(&update)?;
                api.send(Method::PATCH, &["clients", client_id], &[], Some(body))
                    .await
            }
        }
    }

    pub async fn client_remove(&self, client_id: &str) -> anyhow::Result<ClientRemoved> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store) => {
                Ok(manage::client_remove(store, &actor, client_id, now).await?)
            }
            Operator::Admin(api) => {
                api.send(Method::DELETE, &["clients", client_id], &[], None)
                    .await
            }
        }
    }

    pub async fn client_rotate_secret(
        &self,
        client_id: &str,
        grace_seconds: i64,
    ) -> anyhow::Result<SecretRotated> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store) => {
                Ok(
                    manage::client_rotate_secret(store, &actor, client_id, grace_seconds, now)
                        .await?,
                )
            }
            Operator::Admin(api) => {
                let body = serde_json::json!({ "grace_seconds": grace_seconds });
                api.send(
                    Method::POST,
                    &["clients", client_id, "rotate-secret"],
                    &[],
                    Some(body),
                )
                .await
            }
        }
    }

    pub async fn user_list(&self) -> anyhow::Result<Vec<UserView>> {
        match self {
            Operator::Database(store) => Ok(manage::user_list(store).await?),
            Operator::Admin(api) => api.send(Method::GET, &["users"], &[], None).await,
        }
    }

    pub async fn user_show(&self, username: &str) -> anyhow::Result<UserView> {
        match self {
            Operator::Database(store) => Ok(manage::user_show(store, username).await?),
            Operator::Admin(api) => api.send(Method::GET, &["users", username], &[], None).await,
        }
    }

    pub async fn user_set_password(
        &self,
        username: &str,
        password: &str,
    ) -> anyhow::Result<UserView> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store) => {
                Ok(manage::user_set_password(store, &actor, username, password, now).await?)
            }
            Operator::Admin(api) => {
                let body = serde_json::json!({ "password": password });
                api.send(
                    Method::PUT,
                    &["users", username, "password"],
                    &[],
                    Some(body),
                )
                .await
            }
        }
    }

    pub async fn user_disable(&self, username: &str) -> anyhow::Result<TokensRevoked> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store) => {
                Ok(manage::user_disable(store, &actor, username, now).await?)
            }
            Operator::Admin(api) => {
                api.send(Method::POST, &["users", username, "disable"], &[], None)
                    .await
            }
        }
    }

    pub async fn user_enable(&self, username: &str) -> anyhow::Result<UserView> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store) => {
                Ok(manage::user_enable(store, &actor, username, now).await?)
            }
            Operator::Admin(api) => {
                api.send(Method::POST, &["users", username, "enable"], &[], None)
                    .await
            }
        }
    }

    pub async fn user_remove(&self, username: &str) -> anyhow::Result<TokensRevoked> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store) => {
                Ok(manage::user_remove(store, &actor, username, now).await?)
            }
            Operator::Admin(api) => {
                api.send(Method::DELETE, &["users", username], &[], None)
                    .await
            }
        }
    }

    pub async fn consent_list(&self, username: &str) -> anyhow::Result<Vec<ConsentView>> {
        match self {
            Operator::Database(store) => Ok(manage::consent_list(store, username).await?),
            Operator::Admin(api) => {
                api.send(Method::GET, &["users", username, "consents"], &[], None)
                    .await
            }
        }
    }

    pub async fn consent_revoke(
        &self,
        username: &str,
        client_id: &str,
    ) -> anyhow::Result<ConsentView> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store) => {
                Ok(manage::consent_revoke(store, &actor, username, client_id, now).await?)
            }
            Operator::Admin(api) => {
                api.send(
                    Method::DELETE,
                    &["users", username, "consents", client_id],
                    &[],
                    None,
                )
                .await
            }
        }
    }

    pub async fn token_revoke_client(&self, client_id: &str) -> anyhow::Result<TokensRevoked> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store) => {
                Ok(manage::token_revoke_client(store, &actor, client_id, now).await?)
            }
            Operator::Admin(api) => {
                api.send(
                    Method::POST,
                    &["clients", client_id, "revoke-tokens"],
                    &[],
                    None,
                )
                .await
            }
        }
    }

    pub async fn token_revoke_user(&self, username: &str) -> anyhow::Result<TokensRevoked> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store) => {
                Ok(manage::token_revoke_user(store, &actor, username, now).await?)
            }
            Operator::Admin(api) => {
                api.send(
                    Method::POST,
                    &["users", username, "revoke-tokens"],
                    &[],
                    None,
                )
                .await
            }
        }
    }

    pub async fn audit_list(&self, filter: &AuditFilter) -> anyhow::Result<Vec<AuditEntry>> {
        match self {
            Operator::Database(store) => Ok(manage::audit_list(store, filter).await?),
            Operator::Admin(api) => {
                let mut query = Vec::new();
                for (name, value) in [
                    ("since", filter.since),
                    ("until", filter.until),
                    ("limit", filter.limit),
                ] {
                    if let Some(value) = value {
                        query.push((name, value.to_string()));
                    }
                }
                if let Some(actor) = &filter.actor {
                    query.push(("actor", actor.clone()));
                }
                api.send(Method::GET, &["audit"], &query, None).await
            }
        }
    }

    pub async fn admin_token_create(
        &self,
        request: AdminTokenRequest,
    ) -> anyhow::Result<AdminTokenCreated> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store) => {
                Ok(admin_token::admin_token_create(store, &actor, request, now).await?)
            }
            Operator::Admin(api) => {
                let body = serde_json::to_value(&request)?;
                api.send(Method::POST, &["tokens"], &[], Some(body)).await
            }
        }
    }

    /// `plugins reload --cluster`: `manage::plugins_reload_cluster` on
    /// PostgreSQL, or the same operation through the admin API. On SQLite,
    /// where no channel reaches the server, through each live instance's
    /// admin listener (with the token of `GRANTBOX_ADMIN_TOKEN`).
    pub async fn plugins_reload_cluster(
        &self,
        timeout_seconds: u64,
    ) -> anyhow::Result<ClusterReload> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store @ Store::Sqlite(_)) => {
                let live: Vec<_> = (store.list_instances().await?.into_iter())
                    .filter(|i| !crate::cluster::is_stale(i.heartbeat_at, now))
                    .collect();
                if live.is_empty() {
                    anyhow::bail!(
                        "no live instance is registered in this database (see `grantbox instances`); nothing reloaded"
                    );
                }
                let mut reload: Option<ClusterReload> = None;
                for instance in live {
                    let Some(admin) = &instance.admin_address else {
                        anyhow::bail!(
                            "SQLite: instance {} ({}) has no admin listener to reload through; send it SIGHUP",
                            instance.id,
                            instance.address
                        );
                    };
                    eprintln!(
                        "SQLite: instance {} is the one on this database; reloading it through its admin listener {admin}",
                        instance.id
                    );
                    let api = AdminClient::from_environment(&format!("http://{admin}"))?;
                    let answer = cluster_reload_through(&api, timeout_seconds).await?;
                    reload = Some(match reload {
                        None => answer,
                        Some(mut so_far) => {
                            so_far.reloaded &= answer.reloaded;
                            so_far.instances.extend(answer.instances);
                            so_far
                        }
                    });
                }
                reload.context("no instance answered")
            }
            Operator::Database(store) => {
                let timeout = std::time::Duration::from_secs(timeout_seconds);
                Ok(manage::plugins_reload_cluster(store, &actor, None, timeout, now).await?)
            }
            Operator::Admin(api) => cluster_reload_through(api, timeout_seconds).await,
        }
    }

    pub async fn admin_token_list(&self) -> anyhow::Result<Vec<AdminTokenView>> {
        match self {
            Operator::Database(store) => Ok(admin_token::admin_token_list(store).await?),
            Operator::Admin(api) => api.send(Method::GET, &["tokens"], &[], None).await,
        }
    }

    pub async fn admin_token_revoke(&self, id: &str) -> anyhow::Result<AdminTokenView> {
        let (actor, now) = (self.actor(), Self::now()?);
        match self {
            Operator::Database(store) => {
                Ok(admin_token::admin_token_revoke(store, &actor, id, now).await?)
            }
            Operator::Admin(api) => api.send(Method::DELETE, &["tokens", id], &[], None).await,
        }
    }
}

/// `client show|list|update|remove|rotate-secret`.
pub async fn client(
    operator: &Operator,
    operation: ClientOperation,
    json: bool,
) -> anyhow::Result<()> {
    match operation {
        ClientOperation::Show { id } => client_show(operator, &id, json).await,
        ClientOperation::List(args) => client_list(operator, args, json).await,
        ClientOperation::Update(args) => client_update(operator, args, json).await,
        ClientOperation::Remove { id } => client_remove(operator, &id, json).await,
        ClientOperation::RotateSecret { id, grace } => {
            client_rotate_secret(operator, &id, grace, json).await
        }
    }
}

/// `user list|show|set-password|disable|enable|remove`.
pub async fn user(operator: &Operator, operation: UserOperation, json: bool) -> anyhow::Result<()> {
    match operation {
        UserOperation::List => user_list(operator, json).await,
        UserOperation::Show { username } => user_show(operator, &username, json).await,
        UserOperation::SetPassword { username, .. } => {
            user_set_password(operator, &username, json).await
        }
        UserOperation::Disable { username } => user_disable(operator, &username, json).await,
        UserOperation::Enable { username } => user_enable(operator, &username, json).await,
        UserOperation::Remove { username } => user_remove(operator, &username, json).await,
    }
}

async fn client_show(operator: &Operator, id: &str, json: bool) -> anyhow::Result<()> {
    let client = operator.client_show(id).await?;
    print_clients(std::slice::from_ref(&client), json, false)
}

async fn client_list(operator: &Operator, args: ClientListArgs, json: bool) -> anyhow::Result<()> {
    let public = match (args.public, args.confidential) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let filter = ClientFilter {
        grant_type: args.grant_type,
        public,
    };
    let clients = operator.client_list(&filter).await?;
    print_clients(&clients, json, true)
}

async fn client_update(
    operator: &Operator,
    args: ClientUpdateArgs,
    json: bool,
) -> anyhow::Result<()> {
    let jwks = match &args.jwks {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the JWK Set {}", path.display()))?,
        ),
        None => None,
    };
    let list = |values: Vec<String>| (!values.is_empty()).then_some(values);
    let update = ClientUpdate {
        redirect_uris: list(args.redirect_uris),
        grant_types: list(args.grant_types),
        scopes: list(args.scopes),
        client_name: args.name,
        client_uri: args.client_uri,
        trusted: args.trusted,
        introspection: args.introspection,
        resources: if args.no_resources {
            Some(Vec::new())
        } else {
            list(args.resources)
        },
        access_token_format: args.access_token_format,
        token_endpoint_auth_method: args.auth_method,
        jwks,
        post_logout_redirect_uris: if args.no_post_logout_redirect_uris {
            Some(Vec::new())
        } else {
            list(args.post_logout_redirect_uris)
        },
        require_pushed_authorization_requests: args.require_par,
        dpop_bound_access_tokens: args.require_dpop,
    };
    if update == ClientUpdate::default() {
        anyhow::bail!("client update {}: nothing to change (see --help)", args.id);
    }
    let client = operator.client_update(&args.id, update).await?;
    print_clients(std::slice::from_ref(&client), json, false)
}

async fn client_remove(operator: &Operator, id: &str, json: bool) -> anyhow::Result<()> {
    let removed = operator.client_remove(id).await?;
    if json {
        return print_json(&removed);
    }
    println!(
        "client {} removed; {} token(s) revoked",
        removed.client_id, removed.tokens_revoked
    );
    Ok(())
}

/// The new secret alone on stdout; what else there is to say on stderr (or
/// the whole result as JSON on stdout with `--json`).
async fn client_rotate_secret(
    operator: &Operator,
    id: &str,
    grace_seconds: i64,
    json: bool,
) -> anyhow::Result<()> {
    let rotated = operator.client_rotate_secret(id, grace_seconds).await?;
    if json {
        return print_json(&rotated);
    }
    println!("{}", rotated.client_secret);
    match rotated.previous_secret_expires_at {
        Some(until) => eprintln!(
            "client {}: new secret above (shown only now); the previous one is accepted until {until}",
            rotated.client_id
        ),
        None => eprintln!(
            "client {}: new secret above (shown only now); the previous one no longer works",
            rotated.client_id
        ),
    }
    Ok(())
}

async fn user_list(operator: &Operator, json: bool) -> anyhow::Result<()> {
    let users = operator.user_list().await?;
    print_users(&users, json, true)
}

async fn user_show(operator: &Operator, username: &str, json: bool) -> anyhow::Result<()> {
    let user = operator.user_show(username).await?;
    print_users(std::slice::from_ref(&user), json, false)
}

async fn user_set_password(operator: &Operator, username: &str, json: bool) -> anyhow::Result<()> {
    let password = read_password()?;
    let user = operator.user_set_password(username, &password).await?;
    if json {
        return print_json(&user);
    }
    println!("user {} password set", user.username);
    Ok(())
}

async fn user_disable(operator: &Operator, username: &str, json: bool) -> anyhow::Result<()> {
    let disabled = operator.user_disable(username).await?;
    if json {
        return print_json(&disabled);
    }
    println!(
        "user {} disabled; {} token(s) revoked; their sessions end at their next request",
        disabled.target, disabled.tokens_revoked
    );
    Ok(())
}

async fn user_enable(operator: &Operator, username: &str, json: bool) -> anyhow::Result<()> {
    let user = operator.user_enable(username).await?;
    if json {
        return print_json(&user);
    }
    println!("user {} enabled", user.username);
    Ok(())
}

async fn user_remove(operator: &Operator, username: &str, json: bool) -> anyhow::Result<()> {
    let removed = operator.user_remove(username).await?;
    if json {
        return print_json(&removed);
    }
    println!(
        "user {} removed; {} token(s) revoked",
        removed.target, removed.tokens_revoked
    );
    Ok(())
}

/// `consent list|revoke`.
pub async fn consent(
    operator: &Operator,
    command: ConsentCommand,
    json: bool,
) -> anyhow::Result<()> {
    match command {
        ConsentCommand::List { user } => {
            let consents = operator.consent_list(&user).await?;
            if json {
                return print_json(&consents);
            }
            let rows = consents
                .iter()
                .map(|c| {
                    vec![
                        c.client_id.clone(),
                        c.scope.join(" "),
                        c.granted_at.to_string(),
                    ]
                })
                .collect::<Vec<_>>();
            print_table(&["CLIENT_ID", "SCOPE", "GRANTED_AT"], &rows);
            Ok(())
        }
        ConsentCommand::Revoke { user, client } => {
            let revoked = operator.consent_revoke(&user, &client).await?;
            if json {
                return print_json(&revoked);
            }
            println!("consent of user {user} for client {client} revoked");
            Ok(())
        }
    }
}

/// `token revoke --client C | --user U`.
pub async fn token(operator: &Operator, command: TokenCommand, json: bool) -> anyhow::Result<()> {
    let TokenCommand::Revoke { client, user } = command;
    let (revoked, what) = match (client, user) {
        (Some(client_id), _) => (operator.token_revoke_client(&client_id).await?, "client"),
        (None, Some(username)) => (operator.token_revoke_user(&username).await?, "user"),
        (None, None) => anyhow::bail!("token revoke: name --client or --user"),
    };
    if json {
        return print_json(&revoked);
    }
    println!(
        "{what} {}: {} token(s) revoked",
        revoked.target, revoked.tokens_revoked
    );
    Ok(())
}

/// `audit list`.
pub async fn audit(operator: &Operator, command: AuditCommand, json: bool) -> anyhow::Result<()> {
    let AuditCommand::List {
        since,
        until,
        actor,
        limit,
    } = command;
    let filter = AuditFilter {
        since,
        until,
        actor,
        limit,
    };
    let entries = operator.audit_list(&filter).await?;
    if json {
        return print_json(&entries);
    }
    let text = |value: &Option<serde_json::Value>| {
        value.as_ref().map_or("-".to_owned(), |v| v.to_string())
    };
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.at.to_string(),
                e.actor.clone(),
                e.action.clone(),
                e.target.clone(),
                text(&e.before),
                text(&e.after),
            ]
        })
        .collect::<Vec<_>>();
    print_table(
        &["ID", "AT", "ACTOR", "ACTION", "TARGET", "BEFORE", "AFTER"],
        &rows,
    );
    Ok(())
}

/// `POST /admin/cluster/reload` on `api`.
async fn cluster_reload_through(
    api: &AdminClient,
    timeout_seconds: u64,
) -> anyhow::Result<ClusterReload> {
    let query = [("timeout_seconds", timeout_seconds.to_string())];
    api.send(Method::POST, &["cluster", "reload"], &query, None)
        .await
}

/// Reads a password from standard input, without its final line break.
pub fn read_password() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("reading the password from standard input")?;
    Ok(password.trim_end_matches(['\n', '\r']).to_owned())
}

fn print_clients(clients: &[ClientView], json: bool, many: bool) -> anyhow::Result<()> {
    if json {
        return match clients {
            [one] if !many => print_json(one),
            _ => print_json(clients),
        };
    }
    let rows = clients
        .iter()
        .map(|c| {
            vec![
                c.client_id.clone(),
                if c.public { "public" } else { "confidential" }.to_owned(),
                c.grant_types.join(","),
                c.scopes.join(","),
                c.redirect_uris.join(","),
                c.post_logout_redirect_uris.join(","),
                c.resources.join(","),
                c.access_token_format.clone(),
                c.trusted.to_string(),
                c.client_name.clone().unwrap_or_default(),
            ]
        })
        .collect::<Vec<_>>();
    print_table(
        &[
            "CLIENT_ID",
            "TYPE",
            "GRANT_TYPES",
            "SCOPES",
            "REDIRECT_URIS",
            "POST_LOGOUT_REDIRECT_URIS",
            "RESOURCES",
            "ACCESS_TOKEN_FORMAT",
            "TRUSTED",
            "NAME",
        ],
        &rows,
    );
    Ok(())
}

fn print_users(users: &[UserView], json: bool, many: bool) -> anyhow::Result<()> {
    if json {
        return match users {
            [one] if !many => print_json(one),
            _ => print_json(users),
        };
    }
    let rows = users
        .iter()
        .map(|u| {
            vec![
                u.username.clone(),
                u.subject.clone(),
                u.created_at.to_string(),
                u.disabled_at
                    .map_or("-".to_owned(), |at| format!("disabled at {at}")),
                serde_json::Value::Object(u.claims.clone()).to_string(),
            ]
        })
        .collect::<Vec<_>>();
    print_table(
        &["USERNAME", "SUBJECT", "CREATED_AT", "STATE", "CLAIMS"],
        &rows,
    );
    Ok(())
}

pub(super) fn print_json(value: &(impl Serialize + ?Sized)) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Columns padded to their widest cell, two spaces apart.
pub(super) fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", text.trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
