//! Dynamic client registration: `POST /register` (RFC 7591) and the client
//! configuration endpoint `GET|PUT|DELETE /register/{client_id}` (RFC 7592).
//! Closed (404) unless `[registration] enabled`. Requests are checked with
//! the rules of `grantbox client add` (`registration.rs`); a registered
//! client is never trusted, never an introspection client, and has only the
//! scopes and grant types the operator offers.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{Bearer, bearer, no_store};
use crate::app::App;
use crate::manage::{self, Actor, ManageError};
use crate::oauth::client_auth::AuthMethod;
use crate::registration::{self, ClientRegistration, RegistrationError};
use crate::secret;
use crate::store::{Client, RegisterOutcome};

/// The path of the registration endpoint; a client's configuration endpoint
/// is this path, a slash and its id.
pub const REGISTRATION_PATH: &str = "/register";

/// Fields of a registration response the client may not send in an update
/// (RFC 7592 §2.2).
const SERVER_FIELDS: [&str; 4] = [
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

/// `POST /register` (RFC 7591 §3.1).
pub async fn register(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if !app.registration.enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    let now = app.clock.now();
    let initial_access_token = match bearer(&headers) {
        _ if !app.registration.initial_access_token_required => None,
        Bearer::Absent => {
            return unauthorized(false, "an initial access token is required");
        }
        Bearer::Malformed => return unauthorized(true, "the Authorization header is malformed"),
        Bearer::Token(token) => {
            let hash = secret::token_hash(&token);
            match app.store.initial_access_token_usable(&hash, now).await {
                Ok(true) => Some(hash),
                Ok(false) => return refused_initial_access_token(),
                Err(error) => return store_error(&error),
            }
        }
    };
    let metadata = match metadata_object(&headers, &body) {
        Ok(metadata) => metadata,
        Err(error) => return error.into_response(),
    };
    let (client, secret) = match validate(&app, &metadata, None, now) {
        Ok(validated) => validated,
        Err(error) => return error.into_response(),
    };
    let registration_token = secret::new_token();
    let outcome = app
        .store
        .register_client(
            &client,
            initial_access_token.as_ref(),
            &secret::token_hash(&registration_token),
            now,
        )
        .await;
    match outcome {
        Ok(RegisterOutcome::Registered) => {}
        // Used up or expired since it was checked, by a concurrent registration.
        Ok(RegisterOutcome::InitialAccessTokenRefused) => return refused_initial_access_token(),
        Err(error) => return store_error(&error),
    }
    // The audit trail of operator changes records registrations too; the
    // client exists whatever happens to its record, so a failure is logged
    // and the client still gets its credentials.
    let actor = Actor::Registration {
        client_id: client.client_id.clone(),
    };
    let view = serde_json::to_value(manage::ClientView::from(&client)).ok();
    if let Err(error) = manage::audit(
        &app.store,
        &actor,
        "client.register",
        &client.client_id,
        None,
        view,
        now,
    )
    .await
    {
        tracing::error!(%error, client_id = %client.client_id, "cannot write the audit record of a registration");
    }
    let mut document = client_information(&app, &client);
    if let Some(secret) = secret {
        document.insert("client_secret".into(), secret.into());
    }
    document.insert(
        "registration_access_token".into(),
        registration_token.into(),
    );
    json_response(StatusCode::CREATED, document)
}

/// `GET /register/{client_id}` (RFC 7592 §2.1).
pub async fn read(
    State(app): State<App>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let client = match authorize(&app, &client_id, &headers).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    json_response(StatusCode::OK, client_information(&app, &client))
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): the request replaces the
/// client's metadata, checked again like a registration. The client keeps
/// its id, its secret and its kind of credential.
pub async fn update(
    State(app): State<App>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let current = match authorize(&app, &client_id, &headers).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let metadata = match metadata_object(&headers, &body) {
        Ok(metadata) => metadata,
        Err(error) => return error.into_response(),
    };
    if metadata.get("client_id").and_then(Value::as_str) != Some(client_id.as_str()) {
        return invalid_client_metadata("client_id must be the client's own identifier")
            .into_response();
    }
    if let Some(field) = SERVER_FIELDS.iter().find(|f| metadata.contains_key(**f)) {
        return invalid_client_metadata(format!("{field} is set by the server, not the client"))
            .into_response();
    }
    if let Some(presented) = metadata.get("client_secret") {
        let matches = match (presented.as_str(), &current.secret_hash) {
            (Some(presented), Some(stored)) => secret::secret_matches(presented, stored),
            _ => false,
        };
        if !matches {
            return invalid_client_metadata("client_secret is not the client's current secret")
                .into_response();
        }
    }
    let now = app.clock.now();
    let (mut client, _) = match validate(&app, &metadata, Some(&current), now) {
        Ok(validated) => validated,
        Err(error) => return error.into_response(),
    };
    // A full replacement (RFC 7592 §2.2) through the operator's update, which
    // keeps the id, the secret (the client cannot choose it) and the
    // creation time, and writes the audit record.
    let update = manage::ClientUpdate {
        redirect_uris: Some(client.redirect_uris.clone()),
        grant_types: Some(client.grant_types.clone()),
        scopes: Some(client.scopes.clone()),
        // An empty name or URI removes it.
        client_name: Some(client.name.clone().unwrap_or_default()),
        client_uri: Some(client.client_uri.clone().unwrap_or_default()),
        trusted: Some(false),
        introspection: Some(false),
        resources: Some(Vec::new()),
        access_token_format: Some(client.access_token_format.as_str().to_owned()),
        token_endpoint_auth_method: client.auth.method.map(|m| m.as_str().to_owned()),
        jwks: client.auth.jwks.clone(),
        post_logout_redirect_uris: Some(client.post_logout_redirect_uris.clone()),
        require_pushed_authorization_requests: Some(client.require_pushed_authorization_requests),
        dpop_bound_access_tokens: Some(client.dpop_bound_access_tokens),
    };
    let actor = Actor::Registration {
        client_id: client_id.clone(),
    };
    match manage::client_update(&app.store, &actor, &client_id, update, now).await {
        Ok(_) => {}
        Err(ManageError::NotFound { .. }) => return invalid_registration_token(),
        Err(ManageError::Invalid { field, message }) => {
            let error = if field == "redirect_uris" || field == "post_logout_redirect_uris" {
                "invalid_redirect_uri"
            } else {
                "invalid_client_metadata"
            };
            return MetadataError {
                error,
                description: format!("{field}: {message}"),
            }
            .into_response();
        }
        Err(error) => return manage_error(&error),
    }
    app.clients.forget(&client_id);
    client.secret_hash = current.secret_hash.clone();
    client.created_at = current.created_at;
    json_response(StatusCode::OK, client_information(&app, &client))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): the client and every
/// token, code and consent of it are gone at once.
pub async fn delete(
    State(app): State<App>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = authorize(&app, &client_id, &headers).await {
        return response;
    }
    // The operator's removal: every token family of the client revoked, its
    // codes, consents and registration access token gone, an audit record.
    let actor = Actor::Registration {
        client_id: client_id.clone(),
    };
    match manage::client_remove(&app.store, &actor, &client_id, app.clock.now()).await {
        Ok(_) | Err(ManageError::NotFound { .. }) => {}
        Err(error) => return manage_error(&error),
    }
    app.clients.forget(&client_id);
    no_store(StatusCode::NO_CONTENT.into_response())
}

/// An RFC 7591 §3.2.2 error.
#[derive(Debug)]
struct MetadataError {
    error: &'static str,
    description: String,
}

impl IntoResponse for MetadataError {
    fn into_response(self) -> Response {
        error_response(StatusCode::BAD_REQUEST, self.error, &self.description)
    }
}

fn invalid_client_metadata(description: impl Into<String>) -> MetadataError {
    MetadataError {
        error: "invalid_client_metadata",
        description: description.into(),
    }
}

/// The client of `client_id` if `headers` carry its registration access
/// token; else the 401 of RFC 7592 §2, which does not say whether the
/// client exists.
async fn authorize(app: &App, client_id: &str, headers: &HeaderMap) -> Result<Client, Response> {
    if !app.registration.enabled {
        return Err(StatusCode::NOT_FOUND.into_response());
    }
    let token = match bearer(headers) {
        Bearer::Token(token) => token,
        Bearer::Absent => {
            return Err(unauthorized(
                false,
                "a registration access token is required",
            ));
        }
        Bearer::Malformed => {
            return Err(unauthorized(true, "the Authorization header is malformed"));
        }
    };
    match app
        .store
        .registration_token_matches(client_id, &secret::token_hash(&token))
        .await
    {
        Ok(true) => {}
        Ok(false) => return Err(invalid_registration_token()),
        Err(error) => return Err(store_error(&error)),
    }
    match app.store.find_client(client_id).await {
        Ok(Some(client)) => Ok(client),
        Ok(None) => Err(invalid_registration_token()),
        Err(error) => Err(store_error(&error)),
    }
}

/// The JSON object of a registration or update request.
fn metadata_object(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, MetadataError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(MetadataError {
            error: "invalid_request",
            description: "the request body must be application/json (rfc 7591 §3.1)".into(),
        });
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(metadata)) => Ok(metadata),
        Ok(_) => Err(invalid_client_metadata(
            "the client metadata must be a JSON object",
        )),
        Err(_) => Err(invalid_client_metadata(
            "the request body is not valid JSON",
        )),
    }
}

/// Checks the metadata as `grantbox client add` checks its arguments, plus
/// what only a registered client is held to; `current` is the client an
/// update replaces. Returns the client to store and, for a new confidential
/// client, its generated secret.
fn validate(
    app: &App,
    metadata: &Map<String, Value>,
    current: Option<&Client>,
    now: i64,
) -> Result<(Client, Option<String>), MetadataError> {
    if metadata.get("jwks_uri").is_some_and(|v| !v.is_null()) {
        return Err(invalid_client_metadata(
            "jwks_uri is not supported: register the keys themselves as jwks",
        ));
    }
    let redirect_uris = strings(metadata, "redirect_uris")?.unwrap_or_default();
    let auth_method = match string(metadata, "token_endpoint_auth_method")? {
        // RFC 7591 §2: the default.
        None => AuthMethod::ClientSecretBasic,
        Some(name) => AuthMethod::parse(&name).ok_or_else(|| {
            invalid_client_metadata(format!(
                "token_endpoint_auth_method {name:?} is not supported"
            ))
        })?,
    };
    let (grant_types, response_types) = grant_and_response_types(
        strings(metadata, "grant_types")?,
        strings(metadata, "response_types")?,
    )?;
    let offered = crate::endpoint::metadata::build(&app.issuer, &app.registry(), None, &[]);
    if let Some(grant_type) = grant_types.iter().find(|g| {
        // RFC 9700 §2.4: the password grant must not be used.
        *g == "password" || !offered.grant_types_supported.contains(g)
    }) {
        return Err(invalid_client_metadata(format!(
            "grant type {grant_type:?} is not offered to registered clients"
        )));
    }
    if let Some(response_type) = response_types
        .iter()
        .find(|r| !offered.response_types_supported.contains(r))
    {
        return Err(invalid_client_metadata(format!(
            "response type {response_type:?} is not supported"
        )));
    }
    let scopes: Vec<String> = string(metadata, "scope")?
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(scope) = scopes.iter().find(|s| !app.registration.scopes.contains(s)) {
        return Err(invalid_client_metadata(format!(
            "scope {scope:?} is not offered to registered clients"
        )));
    }
    let jwks = match metadata.get("jwks") {
        None | Some(Value::Null) => None,
        Some(jwks @ Value::Object(_)) => Some(jwks.to_string()),
        Some(_) => return Err(invalid_client_metadata("jwks must be a JSON object")),
    };
    if let Some(current) = current
        && credential_kind(current.public, current.auth.method)
            != credential_kind(auth_method == AuthMethod::None, Some(auth_method))
    {
        return Err(invalid_client_metadata(format!(
            "token_endpoint_auth_method cannot change from {} to {}: register a new client",
            current
                .auth
                .method
                .map_or("the default", AuthMethod::as_str),
            auth_method.as_str()
        )));
    }
    let registration = ClientRegistration {
        client_id: current.map_or_else(secret::new_token, |c| c.client_id.clone()),
        redirect_uris,
        grant_types,
        scopes,
        public: auth_method == AuthMethod::None,
        trusted: false,
        introspection: false,
        name: string(metadata, "client_name")?,
        // The server issues the secret; a client never chooses it.
        secret: None,
        client_uri: string(metadata, "client_uri")?,
        auth_method: Some(auth_method),
        jwks,
        resources: Vec::new(),
        access_token_format: String::new(),
        post_logout_redirect_uris: strings(metadata, "post_logout_redirect_uris")?
            .unwrap_or_default(),
        id_token_signed_response_alg: None,
        profile: None,
        // RFC 9126 §6: a client may hold itself to pushed requests.
        require_pushed_authorization_requests: boolean(
            metadata,
            "require_pushed_authorization_requests",
        )?
        .unwrap_or(false),
        dpop_bound_access_tokens: match metadata.get("dpop_bound_access_tokens") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(required)) => *required,
            Some(_) => {
                return Err(invalid_client_metadata(
                    "dpop_bound_access_tokens must be a boolean",
                ));
            }
        },
    };
    registration::validate(registration, now).map_err(metadata_error)
}

/// `none`, a secret, or keys: what an update may not change.
fn credential_kind(public: bool, method: Option<AuthMethod>) -> Credential {
    match (public, method) {
        (true, _) => Credential::None,
        (false, Some(AuthMethod::PrivateKeyJwt)) => Credential::Keys,
        (false, _) => Credential::Secret,
    }
}

/// What a client authenticates with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Credential {
    None,
    Secret,
    Keys,
}

/// RFC 7591 §2.1: `authorization_code` goes with `code`, `implicit` with
/// `token`. An omitted list follows from the other; both omitted is the
/// RFC's default, `authorization_code` and `code`.
fn grant_and_response_types(
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
) -> Result<(Vec<String>, Vec<String>), MetadataError> {
    const PAIRS: [(&str, &str); 2] = [("authorization_code", "code"), ("implicit", "token")];
    let grant_types = match (grant_types, &response_types) {
        (Some(grant_types), _) => grant_types,
        (None, Some(response_types)) => PAIRS
            .iter()
            .filter(|(_, r)| response_types.iter().any(|t| t == r))
            .map(|(g, _)| (*g).to_owned())
            .collect(),
        (None, None) => vec!["authorization_code".to_owned()],
    };
    let response_types = response_types.unwrap_or_else(|| {
        PAIRS
            .iter()
            .filter(|(g, _)| grant_types.iter().any(|t| t == g))
            .map(|(_, r)| (*r).to_owned())
            .collect()
    });
    for (grant_type, response_type) in PAIRS {
        let has_grant = grant_types.iter().any(|g| g == grant_type);
        let has_response = response_types.iter().any(|r| r == response_type);
        if has_grant != has_response {
            return Err(invalid_client_metadata(format!(
                "grant type {grant_type:?} and response type {response_type:?} go together (rfc 7591 §2.1)"
            )));
        }
    }
    if let Some(other) = response_types
        .iter()
        .find(|r| !PAIRS.iter().any(|(_, known)| known == r))
    {
        return Err(invalid_client_metadata(format!(
            "response type {other:?} is not supported"
        )));
    }
    let distinct: BTreeSet<&String> = response_types.iter().collect();
    let response_types = distinct.into_iter().cloned().collect();
    Ok((grant_types, response_types))
}

/// `client add`'s refusals as RFC 7591 §3.2.2 errors.
fn metadata_error(error: RegistrationError) -> MetadataError {
    match error {
        // A post-logout redirect URI is a redirection URI too (RP-Initiated
        // Logout 1.0 §3.1 registers it beside `redirect_uris`).
        RegistrationError::RedirectUri { .. }
        | RegistrationError::PostLogoutRedirectUri { .. }
        | RegistrationError::RedirectUriRequired(_) => MetadataError {
            error: "invalid_redirect_uri",
            description: error.to_string(),
        },
        // The command line's words for these name its flags.
        RegistrationError::JwksRequired => {
            invalid_client_metadata("token_endpoint_auth_method private_key_jwt needs jwks")
        }
        RegistrationError::JwksUnused => {
            invalid_client_metadata("jwks is only for token_endpoint_auth_method private_key_jwt")
        }
        error => invalid_client_metadata(error.to_string()),
    }
}

/// An optional string field; `null` counts as absent.
fn string(metadata: &Map<String, Value>, field: &str) -> Result<Option<String>, MetadataError> {
    match metadata.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(invalid_client_metadata(format!("{field} must be a string"))),
    }
}

/// An optional boolean; `null` counts as absent.
fn boolean(metadata: &Map<String, Value>, field: &str) -> Result<Option<bool>, MetadataError> {
    match metadata.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(_) => Err(invalid_client_metadata(format!(
            "{field} must be a boolean"
        ))),
    }
}

/// An optional array of strings; `null` counts as absent.
fn strings(
    metadata: &Map<String, Value>,
    field: &str,
) -> Result<Option<Vec<String>>, MetadataError> {
    let wrong = || invalid_client_metadata(format!("{field} must be an array of strings"));
    match metadata.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(wrong))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(wrong()),
    }
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3) without
/// the secrets, which only the registration's own answer carries.
fn client_information(app: &App, client: &Client) -> Map<String, Value> {
    let auth_method = client.auth.method.unwrap_or(if client.public {
        AuthMethod::None
    } else {
        AuthMethod::ClientSecretBasic
    });
    let response_types: Vec<&str> = [("authorization_code", "code"), ("implicit", "token")]
        .into_iter()
        .filter(|(g, _)| client.grant_types.iter().any(|t| t == g))
        .map(|(_, r)| r)
        .collect();
    let mut document = Map::new();
    document.insert("client_id".into(), client.client_id.clone().into());
    document.insert("client_id_issued_at".into(), client.created_at.into());
    if client.secret_hash.is_some() {
        // Secrets do not expire.
        document.insert("client_secret_expires_at".into(), 0.into());
    }
    document.insert(
        "registration_client_uri".into(),
        format!("{}{REGISTRATION_PATH}/{}", app.issuer, client.client_id).into(),
    );
    document.insert("redirect_uris".into(), json!(client.redirect_uris));
    if !client.post_logout_redirect_uris.is_empty() {
        document.insert(
            "post_logout_redirect_uris".into(),
            json!(client.post_logout_redirect_uris),
        );
    }
    document.insert(
        "token_endpoint_auth_method".into(),
        auth_method.as_str().into(),
    );
    document.insert("grant_types".into(), json!(client.grant_types));
    document.insert("response_types".into(), json!(response_types));
    if let Some(name) = &client.name {
        document.insert("client_name".into(), name.clone().into());
    }
    if let Some(uri) = &client.client_uri {
        document.insert("client_uri".into(), uri.clone().into());
    }
    if !client.scopes.is_empty() {
        document.insert("scope".into(), client.scopes.join(" ").into());
    }
    if let Some(jwks) = &client.auth.jwks
        && let Ok(jwks) = serde_json::from_str::<Value>(jwks)
    {
        document.insert("jwks".into(), jwks);
    }
    if client.require_pushed_authorization_requests {
        document.insert("require_pushed_authorization_requests".into(), true.into());
    }
    if client.dpop_bound_access_tokens {
        document.insert("dpop_bound_access_tokens".into(), true.into());
    }
    document
}

fn json_response(status: StatusCode, document: Map<String, Value>) -> Response {
    no_store((status, axum::Json(Value::Object(document))).into_response())
}

fn error_response(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    no_store((status, axum::Json(body)).into_response())
}

/// RFC 6750 §3: 401 with a `Bearer` challenge, which names the error only
/// when a token was presented (§3.1).
fn unauthorized(presented: bool, description: &str) -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, "invalid_token", description);
    let challenge = if presented {
        "Bearer realm=\"grantbox\", error=\"invalid_token\""
    } else {
        "Bearer realm=\"grantbox\""
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

fn refused_initial_access_token() -> Response {
    unauthorized(
        true,
        "the initial access token is unknown, expired or used up",
    )
}

fn invalid_registration_token() -> Response {
    unauthorized(
        true,
        "the registration access token is not valid for this client",
    )
}

fn manage_error(error: &ManageError) -> Response {
    tracing::error!(%error, "operation failed at the client configuration endpoint");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "the server cannot complete the request now",
    )
}

fn store_error(error: &crate::store::StoreError) -> Response {
    tracing::error!(%error, "store error at the registration endpoint");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "the server cannot complete the registration now",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(
        grant: Option<&[&str]>,
        response: Option<&[&str]>,
    ) -> Result<(Vec<String>, Vec<String>), String> {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        grant_and_response_types(grant.map(owned), response.map(owned))
            .map_err(|error| error.description)
    }

    #[test]
    fn grant_types_go_with_response_types() {
        let pair = |g: &[&str], r: &[&str]| {
            Ok((
                g.iter().map(|s| s.to_string()).collect(),
                r.iter().map(|s| s.to_string()).collect(),
            ))
        };
        assert_eq!(types(None, None), pair(&["authorization_code"], &["code"]));
        assert_eq!(
            types(Some(&["client_credentials"]), None),
            pair(&["client_credentials"], &[])
        );
        assert_eq!(
            types(None, Some(&["token"])),
            pair(&["implicit"], &["token"])
        );
        assert_eq!(
            types(
                Some(&["authorization_code", "refresh_token"]),
                Some(&["code", "code"])
            ),
            pair(&["authorization_code", "refresh_token"], &["code"])
        );
        assert!(types(Some(&["authorization_code"]), Some(&["token"])).is_err());
        assert!(types(Some(&["client_credentials"]), Some(&["code"])).is_err());
        assert!(types(Some(&["implicit"]), Some(&[])).is_err());
        assert_eq!(
            types(None, Some(&["code", "id_token"])),
            Err("response type \"id_token\" is not supported".into())
        );
    }
}
