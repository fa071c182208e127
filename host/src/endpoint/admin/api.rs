//! The admin API's operator routes (JSON under `/admin/`): each handler reads
//! its input, calls one `manage::` operation as `Actor::AdminToken { id }`
//! with the id the guard found, and answers its result or the
//! [`ManageError`] as a status with a body that names the thing. [`routes`]
//! is the one list the router is built from and the OpenAPI test reads.

use axum::Json;
use axum::extract::{Extension, FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::{AdminActor, AdminState};
use crate::manage::admin_token::{self, AdminTokenRequest};
use crate::manage::{self, Actor, ClientFilter, ClientUpdate, LocalInstance, ManageError, UserAdd};
use crate::registration::ClientRegistration;
use crate::store::AuditFilter;

/// Every route of the admin listener: method (lowercase), path, handler.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<AdminState>)> {
    vec![
        ("get", "/metrics", get(super::metrics)),
        ("get", "/admin/openapi.json", get(openapi)),
        ("get", "/admin/plugins", get(super::list)),
        ("post", "/admin/plugins/reload", post(super::reload)),
        ("post", "/admin/cluster/reload", post(cluster_reload)),
        ("get", "/admin/clients", get(client_list)),
        ("post", "/admin/clients", post(client_add)),
        ("get", "/admin/clients/{client_id}", get(client_show)),
        ("patch", "/admin/clients/{client_id}", patch(client_update)),
        (
            "delete",
            "/admin/clients/{client_id}",
            delete(client_remove),
        ),
        (
            "post",
            "/admin/clients/{client_id}/rotate-secret",
            post(client_rotate_secret),
        ),
        (
            "post",
            "/admin/clients/{client_id}/revoke-tokens",
            post(token_revoke_client),
        ),
        ("get", "/admin/users", get(user_list)),
        ("post", "/admin/users", post(user_add)),
        ("get", "/admin/users/{username}", get(user_show)),
        ("delete", "/admin/users/{username}", delete(user_remove)),
        (
            "put",
            "/admin/users/{username}/password",
            put(user_set_password),
        ),
        (
            "post",
            "/admin/users/{username}/disable",
            post(user_disable),
        ),
        ("post", "/admin/users/{username}/enable", post(user_enable)),
        (
            "post",
            "/admin/users/{username}/revoke-tokens",
            post(token_revoke_user),
        ),
        ("get", "/admin/users/{username}/consents", get(consent_list)),
        (
            "delete",
            "/admin/users/{username}/consents/{client_id}",
            delete(consent_revoke),
        ),
        ("get", "/admin/audit", get(audit_list)),
        ("get", "/admin/tokens", get(admin_token_list)),
        ("post", "/admin/tokens", post(admin_token_create)),
        ("delete", "/admin/tokens/{id}", delete(admin_token_revoke)),
    ]
}

/// The body of `POST /admin/clients/{client_id}/rotate-secret`.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// Seconds the previous secret stays valid (default 0: not at all).
    #[serde(default)]
    pub grace_seconds: i64,
}

/// The body of `PUT /admin/users/{username}/password`.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    pub password: String,
}

/// The query of `POST /admin/cluster/reload`.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClusterReloadQuery {
    /// Seconds to wait for every instance's outcome (default 30, at most 300).
    pub timeout_seconds: Option<u64>,
}

/// The query of `GET /admin/audit`.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Records at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Records before this time (Unix seconds).
    pub until: Option<i64>,
    /// Records by this actor (`cli`, `admin-token:ID`, `registration:CLIENT_ID`).
    pub actor: Option<String>,
    /// At most this many, the latest.
    pub limit: Option<i64>,
}

/// A [`ManageError`] as the admin API answers it: 404, 400 naming the
/// field, 409, or 500 whose cause is logged and not shown.
pub struct ApiError(ManageError);

impl From<ManageError> for ApiError {
    fn from(error: ManageError) -> Self {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self.0 {
            ManageError::NotFound { .. } => (
                StatusCode::NOT_FOUND,
                serde_json::json!({ "error": "not_found", "error_description": self.0.to_string() }),
            ),
            ManageError::Invalid { field, .. } => (
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "error": "invalid_request", "field": field, "error_description": self.0.to_string() }),
            ),
            ManageError::Conflict(_) => (
                StatusCode::CONFLICT,
                serde_json::json!({ "error": "conflict", "error_description": self.0.to_string() }),
            ),
            ManageError::Store(error) => {
                tracing::warn!(%error, "an admin API operation failed in the store");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({ "error": "server_error", "error_description": "the store failed; see the server log" }),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// A JSON request body whose refusal is the admin API's 400 naming the
/// field that did not decode (axum's own `Json` answers 422 with text).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<serde_json::Value>::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = match rejection.status() {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    _ => StatusCode::BAD_REQUEST,
                };
                invalid_body(status, None, rejection.body_text())
            })?;
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|error| {
                let path = error.path().to_string();
                let field = (path != ".").then_some(path);
                invalid_body(StatusCode::BAD_REQUEST, field, error.inner().to_string())
            })
    }
}

fn invalid_body(status: StatusCode, field: Option<String>, description: String) -> Response {
    let description = match &field {
        Some(field) => format!("{field}: {description}"),
        None => description,
    };
    let body = serde_json::json!({ "error": "invalid_request", "field": field, "error_description": description });
    (status, Json(body)).into_response()
}

fn actor(Extension(AdminActor(id)): Extension<AdminActor>) -> Actor {
    Actor::AdminToken { id }
}

#[utoipa::path(
    get,
    tag = "server",
    path = "/admin/openapi.json",
    summary = "This document",
    responses((status = 200, description = "The OpenAPI 3 document", body = Object)),
)]
pub(super) async fn openapi() -> Json<serde_json::Value> {
    Json(super::openapi::document())
}

#[utoipa::path(
    post,
    tag = "plugins",
    path = "/admin/cluster/reload",
    summary = "Reload the plugins of every instance",
    description = "Asks every live instance on the database to reload its own plugin directory and report its outcome (on SQLite: this instance).",
    params(ClusterReloadQuery),
    responses((status = 200, description = "Each live instance's outcome", body = manage::ClusterReload)),
)]
/// Runs in a task of its own: a caller that hangs up does not cancel a
/// reload halfway, nor the recording of its outcome.
pub(super) async fn cluster_reload(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    Query(query): Query<ClusterReloadQuery>,
) -> Response {
    let actor = actor(who);
    let timeout = Duration::from_secs(
        query
            .timeout_seconds
            .unwrap_or(manage::DEFAULT_CLUSTER_RELOAD_TIMEOUT_SECONDS),
    );
    let now = state.clock.now();
    let reload = tokio::spawn(async move {
        let local = LocalInstance {
            id: &state.instance_id,
            plugins: &state.plugins,
        };
        manage::plugins_reload_cluster(&state.store, &actor, Some(local), timeout, now).await
    });
    match reload.await {
        Ok(Ok(reload)) => Json(reload).into_response(),
        Ok(Err(error)) => ApiError(error).into_response(),
        Err(join_error) => {
            tracing::warn!(%join_error, "a cluster reload failed");
            let body = serde_json::json!({ "error": "server_error", "error_description": "the cluster reload failed; see the server log" });
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
    }
}

#[utoipa::path(
    get,
    tag = "clients",
    path = "/admin/clients",
    summary = "List clients (never a secret)",
    params(ClientFilter),
    responses((status = 200, description = "The clients, by client id", body = [manage::ClientView])),
)]
pub(super) async fn client_list(
    State(state): State<AdminState>,
    Query(filter): Query<ClientFilter>,
) -> ApiResult<Vec<manage::ClientView>> {
    Ok(Json(manage::client_list(&state.store, &filter).await?))
}

#[utoipa::path(
    post,
    tag = "clients",
    path = "/admin/clients",
    summary = "Register a client",
    description = "The checks of `client add`.",
    request_body = ClientRegistration,
    responses((status = 200, description = "The client, with `client_secret` when one was generated (shown this once)", body = manage::ClientAdded)),
)]
pub(super) async fn client_add(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    ApiJson(registration): ApiJson<ClientRegistration>,
) -> ApiResult<manage::ClientAdded> {
    let now = state.clock.now();
    let kek = state.keys.key_encryption_key();
    let signing_algorithms = state.keys.algs(now);
    Ok(Json(
        manage::client_add(
            &state.store,
            &actor(who),
            registration,
            Some(kek),
            &signing_algorithms,
            now,
        )
        .await?,
    ))
}

#[utoipa::path(
    get,
    tag = "clients",
    path = "/admin/clients/{client_id}",
    summary = "Show one client (never its secret)",
    params(("client_id" = String, Path)),
    responses((status = 200, description = "The client", body = manage::ClientView)),
)]
pub(super) async fn client_show(
    State(state): State<AdminState>,
    Path(client_id): Path<String>,
) -> ApiResult<manage::ClientView> {
    Ok(Json(manage::client_show(&state.store, &client_id).await?))
}

#[utoipa::path(
    patch,
    tag = "clients",
    path = "/admin/clients/{client_id}",
    summary = "Change a client's registration",
    description = "Each field present replaces what is registered, through the checks of `client add`.",
    params(("client_id" = String, Path)),
    request_body = ClientUpdate,
    responses((status = 200, description = "The client as it now is", body = manage::ClientView)),
)]
pub(super) async fn client_update(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    Path(client_id): Path<String>,
    ApiJson(update): ApiJson<ClientUpdate>,
) -> ApiResult<manage::ClientView> {
    let now = state.clock.now();
    Ok(Json(
        manage::client_update(&state.store, &actor(who), &client_id, update, now).await?,
    ))
}

#[utoipa::path(
    delete,
    tag = "clients",
    path = "/admin/clients/{client_id}",
    summary = "Remove a client",
    description = "Revokes every token and refresh family the client holds.",
    params(("client_id" = String, Path)),
    responses((status = 200, description = "What was removed", body = manage::ClientRemoved)),
)]
pub(super) async fn client_remove(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    Path(client_id): Path<String>,
) -> ApiResult<manage::ClientRemoved> {
    let now = state.clock.now();
    Ok(Json(
        manage::client_remove(&state.store, &actor(who), &client_id, now).await?,
    ))
}

#[utoipa::path(
    post,
    tag = "clients",
    path = "/admin/clients/{client_id}/rotate-secret",
    summary = "Give a confidential client a new secret",
    params(("client_id" = String, Path)),
    request_body = RotateSecretRequest,
    responses((status = 200, description = "The new secret, shown this once", body = manage::SecretRotated)),
)]
pub(super) async fn client_rotate_secret(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    Path(client_id): Path<String>,
    ApiJson(request): ApiJson<RotateSecretRequest>,
) -> ApiResult<manage::SecretRotated> {
    let now = state.clock.now();
    Ok(Json(
        manage::client_rotate_secret(
            &state.store,
            &actor(who),
            &client_id,
            request.grace_seconds,
            now,
        )
        .await?,
    ))
}

#[utoipa::path(
    post,
    tag = "clients",
    path = "/admin/clients/{client_id}/revoke-tokens",
    summary = "Revoke every token of a client",
    description = "The kill switch: every token and refresh family the client holds.",
    params(("client_id" = String, Path)),
    responses((status = 200, description = "How many tokens were revoked", body = manage::TokensRevoked)),
)]
pub(super) async fn token_revoke_client(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    Path(client_id): Path<String>,
) -> ApiResult<manage::TokensRevoked> {
    let now = state.clock.now();
    Ok(Json(
        manage::token_revoke_client(&state.store, &actor(who), &client_id, now).await?,
    ))
}

#[utoipa::path(
    get,
    tag = "users",
    path = "/admin/users",
    summary = "List users (never a password hash)",
    responses((status = 200, description = "The users", body = [manage::UserView])),
)]
pub(super) async fn user_list(State(state): State<AdminState>) -> ApiResult<Vec<manage::UserView>> {
    Ok(Json(manage::user_list(&state.store).await?))
}

#[utoipa::path(
    post,
    tag = "users",
    path = "/admin/users",
    summary = "Add a user",
    description = "The rules of `user add`; the password is stored only as its hash, never logged or audited.",
    request_body = UserAdd,
    responses((status = 200, description = "The user", body = manage::UserView)),
)]
pub(super) async fn user_add(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    ApiJson(user): ApiJson<UserAdd>,
) -> ApiResult<manage::UserView> {
    let now = state.clock.now();
    Ok(Json(
        manage::user_add(&state.store, &actor(who), user, now).await?,
    ))
}

#[utoipa::path(
    get,
    tag = "users",
    path = "/admin/users/{username}",
    summary = "Show one user",
    params(("username" = String, Path)),
    responses((status = 200, description = "The user", body = manage::UserView)),
)]
pub(super) async fn user_show(
    State(state): State<AdminState>,
    Path(username): Path<String>,
) -> ApiResult<manage::UserView> {
    Ok(Json(manage::user_show(&state.store, &username).await?))
}

#[utoipa::path(
    delete,
    tag = "users",
    path = "/admin/users/{username}",
    summary = "Remove a user",
    description = "Removes the user and their consents, revoking every token they hold.",
    params(("username" = String, Path)),
    responses((status = 200, description = "How many tokens were revoked", body = manage::TokensRevoked)),
)]
pub(super) async fn user_remove(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    Path(username): Path<String>,
) -> ApiResult<manage::TokensRevoked> {
    let now = state.clock.now();
    Ok(Json(
        manage::user_remove(&state.store, &actor(who), &username, now).await?,
    ))
}

#[utoipa::path(
    put,
    tag = "users",
    path = "/admin/users/{username}/password",
    summary = "Set a user's password",
    params(("username" = String, Path)),
    request_body = SetPasswordRequest,
    responses((status = 200, description = "The user", body = manage::UserView)),
)]
pub(super) async fn user_set_password(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    Path(username): Path<String>,
    ApiJson(request): ApiJson<SetPasswordRequest>,
) -> ApiResult<manage::UserView> {
    let now = state.clock.now();
    Ok(Json(
        manage::user_set_password(&state.store, &actor(who), &username, &request.password, now)
            .await?,
    ))
}

#[utoipa::path(
    post,
    tag = "users",
    path = "/admin/users/{username}/disable",
    summary = "Disable a user",
    description = "No sign-in, every token revoked, sessions ended on every instance.",
    params(("username" = String, Path)),
    responses((status = 200, description = "How many tokens were revoked", body = manage::TokensRevoked)),
)]
pub(super) async fn user_disable(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    Path(username): Path<String>,
) -> ApiResult<manage::TokensRevoked> {
    let now = state.clock.now();
    Ok(Json(
        manage::user_disable(&state.store, &actor(who), &username, now).await?,
    ))
}

#[utoipa::path(
    post,
    tag = "users",
    path = "/admin/users/{username}/enable",
    summary = "Let a disabled user sign in again",
    params(("username" = String, Path)),
    responses((status = 200, description = "The user", body = manage::UserView)),
)]
pub(super) async fn user_enable(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    Path(username): Path<String>,
) -> ApiResult<manage::UserView> {
    let now = state.clock.now();
    Ok(Json(
        manage::user_enable(&state.store, &actor(who), &username, now).await?,
    ))
}

#[utoipa::path(
    post,
    tag = "users",
    path = "/admin/users/{username}/revoke-tokens",
    summary = "Revoke every token of a user",
    description = "The kill switch: every token and refresh family the user holds.",
    params(("username" = String, Path)),
    responses((status = 200, description = "How many tokens were revoked", body = manage::TokensRevoked)),
)]
pub(super) async fn token_revoke_user(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    Path(username): Path<String>,
) -> ApiResult<manage::TokensRevoked> {
    let now = state.clock.now();
    Ok(Json(
        manage::token_revoke_user(&state.store, &actor(who), &username, now).await?,
    ))
}

#[utoipa::path(
    get,
    tag = "users",
    path = "/admin/users/{username}/consents",
    summary = "The clients a user approved",
    params(("username" = String, Path)),
    responses((status = 200, description = "The consents, with the scope of each", body = [manage::ConsentView])),
)]
pub(super) async fn consent_list(
    State(state): State<AdminState>,
    Path(username): Path<String>,
) -> ApiResult<Vec<manage::ConsentView>> {
    Ok(Json(manage::consent_list(&state.store, &username).await?))
}

#[utoipa::path(
    delete,
    tag = "users",
    path = "/admin/users/{username}/consents/{client_id}",
    summary = "Forget a user's consent for a client",
    params(("username" = String, Path), ("client_id" = String, Path)),
    responses((status = 200, description = "The consent that was removed", body = manage::ConsentView)),
)]
pub(super) async fn consent_revoke(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    Path((username, client_id)): Path<(String, String)>,
) -> ApiResult<manage::ConsentView> {
    let now = state.clock.now();
    Ok(Json(
        manage::consent_revoke(&state.store, &actor(who), &username, &client_id, now).await?,
    ))
}

#[utoipa::path(
    get,
    tag = "audit",
    path = "/admin/audit",
    summary = "The audit trail of operator changes",
    params(AuditQuery),
    responses((status = 200, description = "The records, oldest first", body = [manage::AuditEntry])),
)]
pub(super) async fn audit_list(
    State(state): State<AdminState>,
    Query(query): Query<AuditQuery>,
) -> ApiResult<Vec<manage::AuditEntry>> {
    let filter = AuditFilter {
        since: query.since,
        until: query.until,
        actor: query.actor,
        limit: query.limit,
    };
    Ok(Json(manage::audit_list(&state.store, &filter).await?))
}

#[utoipa::path(
    get,
    tag = "admin tokens",
    path = "/admin/tokens",
    summary = "List admin tokens (never a token or its hash)",
    responses((status = 200, description = "The admin tokens", body = [admin_token::AdminTokenView])),
)]
pub(super) async fn admin_token_list(
    State(state): State<AdminState>,
) -> ApiResult<Vec<admin_token::AdminTokenView>> {
    Ok(Json(admin_token::admin_token_list(&state.store).await?))
}

#[utoipa::path(
    post,
    tag = "admin tokens",
    path = "/admin/tokens",
    summary = "Create an admin token",
    request_body = AdminTokenRequest,
    responses((status = 200, description = "The token, shown this once", body = admin_token::AdminTokenCreated)),
)]
pub(super) async fn admin_token_create(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    ApiJson(request): ApiJson<AdminTokenRequest>,
) -> ApiResult<admin_token::AdminTokenCreated> {
    let now = state.clock.now();
    Ok(Json(
        admin_token::admin_token_create(&state.store, &actor(who), request, now).await?,
    ))
}

#[utoipa::path(
    delete,
    tag = "admin tokens",
    path = "/admin/tokens/{id}",
    summary = "Revoke an admin token",
    params(("id" = String, Path)),
    responses((status = 200, description = "The admin token, revoked", body = admin_token::AdminTokenView)),
)]
pub(super) async fn admin_token_revoke(
    State(state): State<AdminState>,
    who: Extension<AdminActor>,
    Path(id): Path<String>,
) -> ApiResult<admin_token::AdminTokenView> {
    let now = state.clock.now();
    Ok(Json(
        admin_token::admin_token_revoke(&state.store, &actor(who), &id, now).await?,
    ))
}
