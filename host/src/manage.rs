//! Every operator operation, in one place: clients, users, consents, the kill
//! switches and the audit trail. The CLI (on the database) and the admin API
//! (over HTTP) both call these functions and nothing else. Each takes the
//! store, who acts ([`Actor`]), its input and `now`, returns a serializable
//! result (no secret but the one a rotation returns once) or a
//! [`ManageError`] naming the thing, and writes one audit record per change.
//! No SQL and no HTTP here: the store does the first, `endpoint/` the second.

pub mod admin_token;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::cluster;
use crate::keys::{Alg, KeyEncryptionKey};
use crate::oauth::client_auth::AuthMethod;
use crate::plugin::LiveRegistry;
use crate::registration::{self, ClientRegistration, RegistrationError};
use crate::secret;
use crate::store::{
    AuditFilter, Client, NewAuditRecord, PreviousSecret, ReloadOutcome, Store, StoreError,
    StoreErrorKind, User,
};

/// The tracing target of the audit log lines, one per change.
pub const AUDIT_TARGET: &str = "grantbox::audit";

/// How long a rotated-out client secret stays valid when the operator names
/// no grace period: none, so a rotation after a leak locks the thief out at
/// once. A planned rotation passes `--grace` to give clients time to switch.
pub const DEFAULT_SECRET_GRACE_SECONDS: i64 = 0;

/// The longest grace period a rotated-out secret may have (30 days).
pub const MAX_SECRET_GRACE_SECONDS: i64 = 30 * 24 * 3600;

/// How long a cluster reload waits for the instances' outcomes unless told.
pub const DEFAULT_CLUSTER_RELOAD_TIMEOUT_SECONDS: u64 = 30;

/// The longest a cluster reload may wait for the instances' outcomes.
pub const MAX_CLUSTER_RELOAD_TIMEOUT_SECONDS: u64 = 300;

/// Who made a change, as the audit trail names them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// `grantbox …` on the database directly: whoever can read its URL.
    Cli,
    /// The admin API, with the admin token of this id.
    AdminToken { id: String },
    /// A client managing its own registration (RFC 7592).
    Registration { client_id: String },
}

/// Why an operation failed; each names the thing that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// No such client, user, consent, ….
    #[error("{what} {name:?} does not exist")]
    NotFound { what: &'static str, name: String },
    /// The input is invalid: `field` names the offending field.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The change conflicts with what is stored (a taken name, …).
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error("{0}")]
    Store(StoreError),
}

/// A client as operators see it: everything but its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub public: bool,
    pub trusted: bool,
    pub introspection: bool,
    pub created_at: i64,
    /// RFC 7591 `token_endpoint_auth_method`, when registered with one.
    pub token_endpoint_auth_method: Option<String>,
    /// Whether a JWK Set is registered (its keys are public, but long).
    pub jwks: bool,
    pub resources: Vec<String>,
    pub access_token_format: String,
    /// OpenID Connect RP-Initiated Logout 1.0: where `/end_session` may return.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Until when a rotated-out secret is still accepted, if one is.
    pub previous_secret_expires_at: Option<i64>,
    /// The JWS algorithm of its ID tokens, when registered with one (else RS256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    /// The profile the client is held to (`fapi2`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// RFC 9126 §6: its authorization requests must be pushed.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 §5.2: the client gets no token without a DPoP proof
    /// (written only when set, as the other optional registration fields).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens: bool,
}

/// A client just registered by [`client_add`]: its view, and the secret
/// generated for it, shown this once and never stored in the clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientAdded {
    #[serde(flatten)]
    pub client: ClientView,
    /// The generated secret; `None` for a public client, a client with keys
    /// (`private_key_jwt`), or a secret the operator gave.
    pub client_secret: Option<String>,
}

/// Which clients [`client_list`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientFilter {
    /// Clients registered for this grant type.
    pub grant_type: Option<String>,
    /// Public (`true`) or confidential (`false`) clients only.
    pub public: Option<bool>,
}

/// A change to a client: each field present replaces what is registered,
/// through the same validation as a new registration. An empty name or
/// `client_uri` removes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientUpdate {
    pub redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub trusted: Option<bool>,
    pub introspection: Option<bool>,
    pub resources: Option<Vec<String>>,
    pub access_token_format: Option<String>,
    /// RFC 7591 `token_endpoint_auth_method`.
    pub token_endpoint_auth_method: Option<String>,
    /// The JWK Set (JSON text) for `private_key_jwt`.
    pub jwks: Option<String>,
    /// Replaces the post-logout redirect URIs (empty: none).
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// RFC 9126 §6: whether its authorization requests must be pushed.
    pub require_pushed_authorization_requests: Option<bool>,
    /// RFC 9449 §5.2 `dpop_bound_access_tokens`.
    pub dpop_bound_access_tokens: Option<bool>,
}

/// What removing a client did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientRemoved {
    pub client_id: String,
    /// Tokens that were still unrevoked.
    pub tokens_revoked: u64,
}

/// A rotated secret: shown once, never stored in the clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretRotated {
    pub client_id: String,
    pub client_secret: String,
    /// Until when the previous secret is still accepted; `None`: not at all.
    pub previous_secret_expires_at: Option<i64>,
}

/// A new user as [`user_add`] takes it. No `Debug`: it holds a password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserAdd {
    pub username: String,
    /// Stored only as its argon2id hash; never logged or audited.
    pub password: String,
    /// OpenID Connect claims, `name=value` each (as `user add --claim`).
    #[serde(default)]
    pub claims: Vec<String>,
}

/// A user as operators see it: everything but the password hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    pub username: String,
    pub subject: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    /// Its OpenID Connect claims by name.
    #[schema(value_type = Object)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// What disabling or removing a user, or revoking tokens, did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokensRevoked {
    /// The client id or username whose tokens were revoked.
    pub target: String,
    pub tokens_revoked: u64,
}

/// A remembered consent, by client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsentView {
    pub username: String,
    pub client_id: String,
    pub scope: Vec<String>,
    pub granted_at: i64,
}

/// An audit record as listed: `before` and `after` as JSON values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// The thing before the change (never a secret).
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The thing after the change (never a secret).
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

/// The server instance an operation runs in (the admin API's), with the
/// plugins it serves: on SQLite, where no channel reaches other processes, a
/// cluster reload is this instance's own.
pub struct LocalInstance<'a> {
    /// Its id in the instance registry.
    pub id: &'a str,
    pub plugins: &'a LiveRegistry,
}

/// What a cluster reload did: each live instance's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterReload {
    /// The id the request travelled under (and its outcomes are stored by).
    pub request_id: String,
    /// Whether every instance reloaded and now serves its new plugin set.
    pub reloaded: bool,
    /// The live instances, the oldest first.
    pub instances: Vec<InstanceReload>,
}

/// One instance's outcome of a cluster reload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceReload {
    pub instance_id: String,
    /// Its public listener's address.
    pub address: String,
    /// Whether it answered within the timeout.
    pub answered: bool,
    /// Whether its new plugin set loaded and now serves.
    pub ok: bool,
    /// The fingerprint of the plugin set it serves now (the previous one
    /// when its reload failed), when it answered.
    pub plugins: Option<String>,
    /// Why its reload failed (its previous set keeps serving).
    pub error: Option<String>,
}

impl Actor {
    /// The actor as the audit trail stores it: `cli`, `admin-token:ID`,
    /// `registration:CLIENT_ID`.
    pub fn audit_name(&self) -> String {
        match self {
            Actor::Cli => "cli".to_owned(),
            Actor::AdminToken { id } => format!("admin-token:{id}"),
            Actor::Registration { client_id } => format!("registration:{client_id}"),
        }
    }
}

impl From<StoreError> for ManageError {
    fn from(error: StoreError) -> Self {
        match error.kind() {
            StoreErrorKind::Conflict => ManageError::Conflict(error.to_string()),
            _ => ManageError::Store(error),
        }
    }
}

impl From<RegistrationError> for ManageError {
    fn from(error: RegistrationError) -> Self {
        let field = match &error {
            RegistrationError::ClientId(_) => "client_id",
            RegistrationError::ClientName => "client_name",
            RegistrationError::RedirectUri { .. } | RegistrationError::RedirectUriRequired(_) => {
                "redirect_uris"
            }
            RegistrationError::PostLogoutRedirectUri { .. } => "post_logout_redirect_uris",
            RegistrationError::ClientUri(_) => "client_uri",
            RegistrationError::GrantType(_) | RegistrationError::PublicClientCredentials => {
                "grant_types"
            }
            RegistrationError::Scope(_) => "scopes",
            RegistrationError::PublicIntrospection => "introspection",
            RegistrationError::Resource { .. } | RegistrationError::TooManyResources => "resources",
            RegistrationError::AccessTokenFormat(_) | RegistrationError::JwtWithoutResource => {
                "access_token_format"
            }
            RegistrationError::Username(_) => "username",
            RegistrationError::PasswordTooShort | RegistrationError::HashPassword(_) => "password",
            RegistrationError::Jwks(_)
            | RegistrationError::JwksRequired
            | RegistrationError::JwksUnused => "jwks",
            RegistrationError::Claim(_) => "claims",
            RegistrationError::IdTokenSignedResponseAlg(_) => "id_token_signed_response_alg",
            RegistrationError::Profile(_) | RegistrationError::ProfileRule { .. } => "profile",
            _ => "token_endpoint_auth_method",
        };
        ManageError::Invalid {
            field,
            message: error.to_string(),
        }
    }
}

impl From<&Client> for ClientView {
    fn from(client: &Client) -> Self {
        ClientView {
            client_id: client.client_id.clone(),
            client_name: client.name.clone(),
            client_uri: client.client_uri.clone(),
            redirect_uris: client.redirect_uris.clone(),
            grant_types: client.grant_types.clone(),
            scopes: client.scopes.clone(),
            public: client.public,
            trusted: client.trusted,
            introspection: client.introspection,
            created_at: client.created_at,
            token_endpoint_auth_method: client.auth.method.map(|m| m.as_str().to_owned()),
            jwks: client.auth.jwks.is_some(),
            resources: client.resources.clone(),
            access_token_format: client.access_token_format.as_str().to_owned(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
            previous_secret_expires_at: client.auth.previous_secret.as_ref().map(|p| p.expires_at),
            id_token_signed_response_alg: client.id_token_signed_response_alg.clone(),
            profile: client.profile.map(|p| p.as_str().to_owned()),
            require_pushed_authorization_requests: client.require_pushed_authorization_requests,
            dpop_bound_access_tokens: client.dpop_bound_access_tokens,
        }
    }
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        UserView {
            username: user.username.clone(),
            subject: user.subject.clone(),
            created_at: user.created_at,
            disabled_at: user.disabled_at,
            claims: user.claims.clone(),
        }
    }
}

// Clients.

/// Registers a client through `registration.rs`'s rules. A generated
/// secret is returned once (only its SHA-256 is stored); a
/// `client_secret_jwt` client's secret is also sealed under `kek`, which
/// that method needs. An `id_token_signed_response_alg` must be one of
/// `signing_algorithms`, the algorithms the server keeps keys for.
pub async fn client_add(
    store: &Store,
    actor: &Actor,
    registration: ClientRegistration,
    kek: Option<&KeyEncryptionKey>,
    signing_algorithms: &[Alg],
    now: i64,
) -> Result<ClientAdded, ManageError> {
    // The ID token algorithm must be one the server keeps a key for.
    if let Some(alg) = (registration.id_token_signed_response_alg.as_deref()).and_then(Alg::parse)
        && !signing_algorithms.contains(&alg)
    {
        let kept: Vec<&str> = signing_algorithms.iter().map(|alg| alg.name()).collect();
        return Err(ManageError::Invalid {
            field: "id_token_signed_response_alg",
            message: format!(
                "the server keeps no {alg} key (keys.algorithms: {})",
                kept.join(", ")
            ),
        });
    }
    let (client, client_secret) = registration::validate_sealing(registration, now, kek)?;
    store.insert_client(&client).await?;
    let view = ClientView::from(&client);
    audit(
        store,
        actor,
        "client.add",
        &client.client_id,
        None,
        json(&view),
        now,
    )
    .await?;
    Ok(ClientAdded {
        client: view,
        client_secret,
    })
}

pub async fn client_show(store: &Store, client_id: &str) -> Result<ClientView, ManageError> {
    Ok(ClientView::from(&find_client(store, client_id).await?))
}

/// The clients the filter selects, ordered by client id.
pub async fn client_list(
    store: &Store,
    filter: &ClientFilter,
) -> Result<Vec<ClientView>, ManageError> {
    Ok(store
        .list_clients()
        .await?
        .iter()
        .filter(|c| filter.public.is_none_or(|public| c.public == public))
        .filter(|c| {
            filter
                .grant_type
                .as_ref()
                .is_none_or(|grant_type| c.grant_types.contains(grant_type))
        })
        .map(ClientView::from)
        .collect())
}

/// Changes a client's registration through the validation of `client add`.
/// Its id, type (public or confidential), secret and creation time stay.
pub async fn client_update(
    store: &Store,
    actor: &Actor,
    client_id: &str,
    update: ClientUpdate,
    now: i64,
) -> Result<ClientView, ManageError> {
    let before = find_client(store, client_id).await?;
    // What a profile switched on stays on while it holds.
    if let Some(profile) = before.profile {
        let lifted = |asked: Option<bool>, required: bool| required && asked == Some(false);
        if lifted(
            update.require_pushed_authorization_requests,
            profile.requires_pushed_authorization_requests(),
        ) || lifted(update.dpop_bound_access_tokens, profile.requires_dpop())
        {
            return Err(ManageError::Invalid {
                field: "profile",
                message: format!(
                    "a {} client pushes its authorization requests and holds DPoP-bound tokens: neither can be switched off while the profile holds",
                    profile.as_str()
                ),
            });
        }
    }
    let auth_method = match update.token_endpoint_auth_method.as_deref() {
        None => before.auth.method,
        Some("") => None,
        Some(name) => Some(AuthMethod::parse(name).ok_or_else(|| ManageError::Invalid {
            field: "token_endpoint_auth_method",
            message: format!("unknown method {name:?}"),
        })?),
    };
    let jwks = match (update.jwks, auth_method) {
        (Some(jwks), _) => Some(jwks),
        // Keys belong to private_key_jwt: leaving it drops them.
        (None, Some(AuthMethod::PrivateKeyJwt)) => before.auth.jwks.clone(),
        (None, _) => None,
    };
    // A client_secret_jwt client's secret is also kept sealed under the
    // key-encryption key, which operations do not hold: the sealed copy
    // stays as it is, so a client may keep that method but not switch to it.
    let keeps_sealed_secret = auth_method == Some(AuthMethod::ClientSecretJwt);
    if keeps_sealed_secret && before.auth.secret_sealed.is_none() {
        return Err(ManageError::Invalid {
            field: "token_endpoint_auth_method",
            message: format!(
                "client {client_id:?} cannot switch to client_secret_jwt: its secret was not kept sealed; add the client again with that method"
            ),
        });
    }
    let registration = ClientRegistration {
        client_id: before.client_id.clone(),
        redirect_uris: update
            .redirect_uris
            .unwrap_or_else(|| before.redirect_uris.clone()),
        grant_types: update
            .grant_types
            .unwrap_or_else(|| before.grant_types.clone()),
        scopes: update.scopes.unwrap_or_else(|| before.scopes.clone()),
        public: before.public,
        trusted: update.trusted.unwrap_or(before.trusted),
        introspection: update.introspection.unwrap_or(before.introspection),
        name: update.client_name.or_else(|| before.name.clone()),
        // The secret stays; validation would generate one, which is dropped.
        secret: None,
        client_uri: update.client_uri.or_else(|| before.client_uri.clone()),
        // Checked as the other secret method: the same rules but sealing.
        auth_method: if keeps_sealed_secret {
            Some(AuthMethod::ClientSecretPost)
        } else {
            auth_method
        },
        jwks,
        resources: update.resources.unwrap_or_else(|| before.resources.clone()),
        access_token_format: update
            .access_token_format
            .unwrap_or_else(|| before.access_token_format.as_str().to_owned()),
        post_logout_redirect_uris: update
            .post_logout_redirect_uris
            .unwrap_or_else(|| before.post_logout_redirect_uris.clone()),
        id_token_signed_response_alg: before.id_token_signed_response_alg.clone(),
        // A profile is chosen when the client is added and holds every update.
        profile: before.profile.map(|p| p.as_str().to_owned()),
        require_pushed_authorization_requests: update
            .require_pushed_authorization_requests
            .unwrap_or(before.require_pushed_authorization_requests),
        dpop_bound_access_tokens: update
            .dpop_bound_access_tokens
            .unwrap_or(before.dpop_bound_access_tokens),
    };
    let (mut after, _generated) = registration::validate(registration, now)?;
    after.created_at = before.created_at;
    if keeps_sealed_secret {
        after.auth.method = Some(AuthMethod::ClientSecretJwt);
        after.auth.secret_sealed = before.auth.secret_sealed.clone();
    }
    if after.secret_hash.is_some() {
        // A client that authenticates with a secret keeps its own. One that
        // had none (it used private_key_jwt) gets one by `rotate-secret`.
        after.secret_hash = before.secret_hash.clone();
        after.auth.previous_secret = before.auth.previous_secret.clone();
    }
    if !store.update_client(&after).await? {
        return Err(not_found("client", client_id));
    }
    let (before, after) = (ClientView::from(&before), ClientView::from(&after));
    audit(
        store,
        actor,
        "client.update",
        client_id,
        json(&before),
        json(&after),
        now,
    )
    .await?;
    Ok(after)
}

/// Removes a client: every token and refresh family it holds is revoked and
/// its codes and consents go with it, in one transaction.
pub async fn client_remove(
    store: &Store,
    actor: &Actor,
    client_id: &str,
    now: i64,
) -> Result<ClientRemoved, ManageError> {
    let before = ClientView::from(&find_client(store, client_id).await?);
    let tokens_revoked = store
        .delete_client(client_id, now)
        .await?
        .ok_or_else(|| not_found("client", client_id))?;
    let removed = ClientRemoved {
        client_id: client_id.to_owned(),
        tokens_revoked,
    };
    audit(
        store,
        actor,
        "client.remove",
        client_id,
        json(&before),
        json(&removed),
        now,
    )
    .await?;
    Ok(removed)
}

/// Gives a confidential client a new random secret (returned once, stored
/// as SHA-256). The old one stays valid for `grace_seconds` (0: not at all).
pub async fn client_rotate_secret(
    store: &Store,
    actor: &Actor,
    client_id: &str,
    grace_seconds: i64,
    now: i64,
) -> Result<SecretRotated, ManageError> {
    if !(0..=MAX_SECRET_GRACE_SECONDS).contains(&grace_seconds) {
        return Err(ManageError::Invalid {
            field: "grace",
            message: format!("must be 0 to {MAX_SECRET_GRACE_SECONDS} seconds"),
        });
    }
    let client = find_client(store, client_id).await?;
    if client.public {
        return Err(ManageError::Invalid {
            field: "client_id",
            message: format!("client {client_id:?} is public: it has no secret"),
        });
    }
    if client.auth.method == Some(AuthMethod::ClientSecretJwt) {
        return Err(ManageError::Invalid {
            field: "client_id",
            message: format!(
                "client {client_id:?} authenticates with client_secret_jwt, whose secret is also sealed under the key-encryption key: remove and add the client again to change it"
            ),
        });
    }
    if client.auth.method == Some(AuthMethod::PrivateKeyJwt) {
        return Err(ManageError::Invalid {
            field: "client_id",
            message: format!(
                "client {client_id:?} authenticates with private_key_jwt: it has no secret"
            ),
        });
    }
    let previous = match (&client.secret_hash, grace_seconds) {
        (Some(secret_hash), grace) if grace > 0 => Some(PreviousSecret {
            secret_hash: secret_hash.clone(),
            expires_at: now + grace,
        }),
        _ => None,
    };
    let client_secret = secret::new_token();
    let hash = secret::token_hash(&client_secret);
    if !store
        .set_client_secret(client_id, &hash, previous.as_ref())
        .await?
    {
        return Err(not_found("client", client_id));
    }
    let previous_secret_expires_at = previous.map(|p| p.expires_at);
    audit(
        store,
        actor,
        "client.rotate_secret",
        client_id,
        None,
        Some(serde_json::json!({
            "previous_secret_expires_at": previous_secret_expires_at,
        })),
        now,
    )
    .await?;
    Ok(SecretRotated {
        client_id: client_id.to_owned(),
        client_secret,
        previous_secret_expires_at,
    })
}

// Users.

/// Adds a user through `registration.rs`'s rules: a fresh random subject,
/// the password stored only as its argon2id hash, the claims checked.
pub async fn user_add(
    store: &Store,
    actor: &Actor,
    input: UserAdd,
    now: i64,
) -> Result<UserView, ManageError> {
    let user = registration::validate_user(&input.username, &input.password, &input.claims, now)?;
    store.insert_user(&user).await?;
    let view = UserView::from(&user);
    audit(
        store,
        actor,
        "user.add",
        &user.username,
        None,
        json(&view),
        now,
    )
    .await?;
    Ok(view)
}

pub async fn user_list(store: &Store) -> Result<Vec<UserView>, ManageError> {
    Ok(store
        .list_users()
        .await?
        .iter()
        .map(UserView::from)
        .collect())
}

pub async fn user_show(store: &Store, username: &str) -> Result<UserView, ManageError> {
    Ok(UserView::from(&find_user(store, username).await?))
}

/// Sets a user's password (the rules of `user add`). Their tokens and
/// sessions stay: disable the user to end them.
pub async fn user_set_password(
    store: &Store,
    actor: &Actor,
    username: &str,
    password: &str,
    now: i64,
) -> Result<UserView, ManageError> {
    let user = find_user(store, username).await?;
    let password_hash = registration::validate_password(password)?;
    if !store.set_user_password(username, &password_hash).await? {
        return Err(not_found("user", username));
    }
    let view = UserView::from(&user);
    audit(store, actor, "user.set_password", username, None, None, now).await?;
    Ok(view)
}

/// Disables a user: they cannot sign in, every token they hold is revoked,
/// and their login sessions end when next used on any instance.
pub async fn user_disable(
    store: &Store,
    actor: &Actor,
    username: &str,
    now: i64,
) -> Result<TokensRevoked, ManageError> {
    let user = find_user(store, username).await?;
    let disabled_at = user.disabled_at.unwrap_or(now);
    if !store.set_user_disabled(username, Some(disabled_at)).await? {
        return Err(not_found("user", username));
    }
    let tokens_revoked = store.revoke_subject_tokens(&user.subject, now).await?;
    let before = UserView::from(&user);
    let after = UserView {
        disabled_at: Some(disabled_at),
        ..before.clone()
    };
    audit(
        store,
        actor,
        "user.disable",
        username,
        json(&before),
        json(&after),
        now,
    )
    .await?;
    Ok(TokensRevoked {
        target: username.to_owned(),
        tokens_revoked,
    })
}

/// Lets a disabled user sign in again (their revoked tokens stay revoked).
pub async fn user_enable(
    store: &Store,
    actor: &Actor,
    username: &str,
    now: i64,
) -> Result<UserView, ManageError> {
    let user = find_user(store, username).await?;
    if !store.set_user_disabled(username, None).await? {
        return Err(not_found("user", username));
    }
    let before = UserView::from(&user);
    let after = UserView {
        disabled_at: None,
        ..before.clone()
    };
    audit(
        store,
        actor,
        "user.enable",
        username,
        json(&before),
        json(&after),
        now,
    )
    .await?;
    Ok(after)
}

/// Removes a user with their consents; every token they hold is revoked.
/// Their subject is never given to anyone else.
pub async fn user_remove(
    store: &Store,
    actor: &Actor,
    username: &str,
    now: i64,
) -> Result<TokensRevoked, ManageError> {
    let user = find_user(store, username).await?;
    let tokens_revoked = store
        .delete_user(username, now)
        .await?
        .ok_or_else(|| not_found("user", username))?;
    let removed = TokensRevoked {
        target: username.to_owned(),
        tokens_revoked,
    };
    audit(
        store,
        actor,
        "user.remove",
        username,
        json(&UserView::from(&user)),
        json(&removed),
        now,
    )
    .await?;
    Ok(removed)
}

// Consents.

/// The clients a user approved, with the scope each.
pub async fn consent_list(store: &Store, username: &str) -> Result<Vec<ConsentView>, ManageError> {
    let user = find_user(store, username).await?;
    Ok(store
        .list_consents(&user.subject)
        .await?
        .into_iter()
        .map(|consent| ConsentView {
            username: username.to_owned(),
            client_id: consent.client_id,
            scope: consent.scope,
            granted_at: consent.granted_at,
        })
        .collect())
}

/// Forgets a user's consent for a client: the next authorization asks
/// again. The tokens already issued stay (`token revoke` ends them).
pub async fn consent_revoke(
    store: &Store,
    actor: &Actor,
    username: &str,
    client_id: &str,
    now: i64,
) -> Result<ConsentView, ManageError> {
    let user = find_user(store, username).await?;
    let consent = store
        .list_consents(&user.subject)
        .await?
        .into_iter()
        .find(|c| c.client_id == client_id)
        .ok_or_else(|| not_found("consent of client", client_id))?;
    if !store.delete_consent(&user.subject, client_id).await? {
        return Err(not_found("consent of client", client_id));
    }
    let view = ConsentView {
        username: username.to_owned(),
        client_id: consent.client_id,
        scope: consent.scope,
        granted_at: consent.granted_at,
    };
    audit(
        store,
        actor,
        "consent.revoke",
        &format!("{username}/{client_id}"),
        json(&view),
        None,
        now,
    )
    .await?;
    Ok(view)
}

// Kill switches.

/// Revokes every token and refresh family the client holds; the client stays.
pub async fn token_revoke_client(
    store: &Store,
    actor: &Actor,
    client_id: &str,
    now: i64,
) -> Result<TokensRevoked, ManageError> {
    find_client(store, client_id).await?;
    let tokens_revoked = store.revoke_client_tokens(client_id, now).await?;
    let revoked = TokensRevoked {
        target: client_id.to_owned(),
        tokens_revoked,
    };
    audit(
        store,
        actor,
        "token.revoke_client",
        client_id,
        None,
        json(&revoked),
        now,
    )
    .await?;
    Ok(revoked)
}

/// Revokes every token and refresh family issued to the user.
pub async fn token_revoke_user(
    store: &Store,
    actor: &Actor,
    username: &str,
    now: i64,
) -> Result<TokensRevoked, ManageError> {
    let user = find_user(store, username).await?;
    let tokens_revoked = store.revoke_subject_tokens(&user.subject, now).await?;
    let revoked = TokensRevoked {
        target: username.to_owned(),
        tokens_revoked,
    };
    audit(
        store,
        actor,
        "token.revoke_user",
        username,
        None,
        json(&revoked),
        now,
    )
    .await?;
    Ok(revoked)
}

// Plugins.

/// Asks every live instance sharing the database to reload the plugins from
/// its own plugin directory, and waits up to `timeout` for each outcome. On
/// PostgreSQL the request travels by the store's reload channel (each
/// instance's listener reloads and records its outcome, `serve.rs`); on
/// SQLite, where one server uses the database, `local` (the server this runs
/// in) reloads and is the one outcome. Without `local` on SQLite nothing can
/// reach the server: the caller goes through its admin listener instead.
pub async fn plugins_reload_cluster(
    store: &Store,
    actor: &Actor,
    local: Option<LocalInstance<'_>>,
    timeout: Duration,
    now: i64,
) -> Result<ClusterReload, ManageError> {
    if timeout.is_zero() || timeout.as_secs() > MAX_CLUSTER_RELOAD_TIMEOUT_SECONDS {
        return Err(ManageError::Invalid {
            field: "timeout_seconds",
            message: format!("must be 1 to {MAX_CLUSTER_RELOAD_TIMEOUT_SECONDS} seconds"),
        });
    }
    let instances = store.list_instances().await?;
    let request_id = cluster::new_instance_id();
    let (live, outcomes) = if store.request_reload(&request_id).await? {
        let live: Vec<_> = (instances.into_iter())
            .filter(|i| !cluster::is_stale(i.heartbeat_at, now))
            .collect();
        if live.is_empty() {
            return Err(ManageError::Conflict(
                "no live instance is registered in this database (see `grantbox instances`); nothing reloaded".to_owned(),
            ));
        }
        let started = Clock::instant();
        let outcomes = loop {
            let outcomes = store.reload_outcomes(&request_id).await?;
            let answered = (live.iter()).all(|i| outcomes.iter().any(|o| o.instance_id == i.id));
            if answered || started.elapsed() >= timeout {
                break outcomes;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        (live, outcomes)
    } else {
        let Some(local) = local else {
            return Err(ManageError::Conflict(
                "SQLite has no channel to the server: reload it through its admin listener (or send it SIGHUP)".to_owned(),
            ));
        };
        let this = (instances.into_iter())
            .find(|i| i.id == local.id)
            .ok_or_else(|| not_found("instance", local.id))?;
        let reloaded = local.plugins.reload().await;
        let outcome = ReloadOutcome {
            request_id: request_id.clone(),
            instance_id: this.id.clone(),
            ok: reloaded.is_ok(),
            plugins: cluster::plugin_set_fingerprint(&local.plugins.snapshot()),
            error: reloaded.err().map(|error| error.to_string()),
            at: now,
        };
        store.record_reload_outcome(&outcome).await?;
        (vec![this], vec![outcome])
    };
    let instances: Vec<InstanceReload> = live
        .into_iter()
        .map(|instance| {
            let outcome = outcomes.iter().find(|o| o.instance_id == instance.id);
            InstanceReload {
                instance_id: instance.id,
                address: instance.address,
                answered: outcome.is_some(),
                ok: outcome.is_some_and(|o| o.ok),
                plugins: outcome.map(|o| o.plugins.clone()),
                error: outcome.and_then(|o| o.error.clone()),
            }
        })
        .collect();
    let reload = ClusterReload {
        reloaded: instances.iter().all(|i| i.ok),
        request_id,
        instances,
    };
    audit(
        store,
        actor,
        "plugins.reload_cluster",
        &reload.request_id,
        None,
        json(&reload),
        now,
    )
    .await?;
    Ok(reload)
}

// The audit trail.

/// The audit records the filter selects, oldest first.
pub async fn audit_list(
    store: &Store,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, ManageError> {
    let parse = |text: Option<String>| {
        text.map(|text| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    };
    Ok(store
        .list_audit(filter)
        .await?
        .into_iter()
        .map(|record| AuditEntry {
            id: record.id,
            at: record.at,
            actor: record.actor,
            action: record.action,
            target: record.target,
            before: parse(record.before),
            after: parse(record.after),
        })
        .collect())
}

/// Writes the audit record of one change and logs it under [`AUDIT_TARGET`].
/// Callers pass views that hold no secret.
pub async fn audit(
    store: &Store,
    actor: &Actor,
    action: &str,
    target: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    now: i64,
) -> Result<(), ManageError> {
    let before = before.map(|value| value.to_string());
    let after = after.map(|value| value.to_string());
    let record = NewAuditRecord {
        at: now,
        actor: actor.audit_name(),
        action: action.to_owned(),
        target: target.to_owned(),
        before,
        after,
    };
    let id = store.insert_audit(&record).await?;
    tracing::info!(
        target: "grantbox::audit",
        id,
        actor = %record.actor,
        action = %record.action,
        target_name = ?record.target,
        before = record.before.as_deref().unwrap_or("null"),
        after = record.after.as_deref().unwrap_or("null"),
        "operator change"
    );
    Ok(())
}

async fn find_client(store: &Store, client_id: &str) -> Result<Client, ManageError> {
    store
        .find_client(client_id)
        .await?
        .ok_or_else(|| not_found("client", client_id))
}

async fn find_user(store: &Store, username: &str) -> Result<User, ManageError> {
    store
        .find_user(username)
        .await?
        .ok_or_else(|| not_found("user", username))
}

/// A view as the audit trail keeps it.
fn json(view: &impl Serialize) -> Option<serde_json::Value> {
    serde_json::to_value(view).ok()
}

fn not_found(what: &'static str, name: &str) -> ManageError {
    ManageError::NotFound {
        what,
        name: name.to_owned(),
    }
}

#[cfg(test)]
mod tests;
