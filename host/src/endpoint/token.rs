//! `POST /token` (RFC 6749 §3.2): authenticates the client, checks its DPoP
//! proof (RFC 9449), the grant type and scope against its registration, and
//! hands the request to the plugin that provides the `grant_type`; the
//! access tokens of a request with a proof are bound to the proof's key.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::dpop::{self as dpop_proof, ProofRequest};
use super::{authenticated_form_with_repeats, json_error, login, refuse_repeated};
use crate::app::App;
use crate::client_assertion;
use crate::oauth::client_assertion::{Accepted, Expectations};
use crate::oauth::client_auth::{self, AuthMethod, CREDENTIAL_PARAMS, Credentials};
use crate::oauth::profile::Profile;
use crate::oauth::{OAuthError, dpop, resource, scope};
use crate::plugin::{CallError, Capability, ClientView, TokenRequest, TokenResponse, TokenTarget};
use crate::ratelimit::{SignInOrigin, Throttled};
use crate::secret;
use crate::store::Client;

/// Where the endpoint answers (`token_endpoint`, and a DPoP proof's `htu`).
pub const TOKEN_PATH: &str = "/token";

pub async fn token(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = match exchange(&app, peer, &headers, &body).await {
        Ok(response) => token_response(&response),
        Err(Refused::OAuth(error)) => json_error(&error),
        // Answered as the login page answers, whatever the plugin made of it.
        Err(Refused::Throttled(throttled)) => login::too_many_attempts(throttled),
    };
    // RFC 9449 §8: with server nonces, every answer to a DPoP request
    // carries the current one, so the client's next proof can use it.
    if app.dpop.require_nonce && headers.contains_key(dpop_proof::PROOF_HEADER) {
        return dpop_proof::with_nonce(&app, response);
    }
    response
}

/// Why a token request got no tokens.
enum Refused {
    OAuth(OAuthError),
    /// A password check of the grant was throttled.
    Throttled(Throttled),
}

impl From<OAuthError> for Refused {
    fn from(error: OAuthError) -> Self {
        Self::OAuth(error)
    }
}

async fn exchange(
    app: &App,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, Refused> {
    let registry = app.registry();
    let (client, params) = authenticated_form_with_repeats(app, headers, body).await?;
    let proof = dpop_proof::check(
        app,
        headers,
        ProofRequest {
            method: "POST",
            path: TOKEN_PATH,
            access_token: None,
            require_nonce: app.dpop.require_nonce,
        },
    )
    .await
    .map_err(OAuthError::from)?;
    // RFC 9449 §5.2: a client registered with `dpop_bound_access_tokens`
    // never gets a bearer token.
    if client.dpop_bound_access_tokens && proof.is_none() {
        return Err(dpop::invalid_dpop_proof(
            "the client is registered for DPoP-bound access tokens: a DPoP proof is required",
        )
        .into());
    }
    let grant_type = params.require("grant_type")?;
    let Some(plugin) = registry.for_grant_type(grant_type) else {
        refuse_repeated(&params, &[] as &[&str])?;
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant type {grant_type} is not supported"
        ))
        .into());
    };
    // The plugin's manifest names the parameters of its grant that may repeat
    // (`provides.repeatable_parameters`); they reach it as repeated pairs.
    // With RFC 8707 `resource`, the list is made once, at load.
    refuse_repeated(&params, &plugin.token_repeatable_parameters)?;
    if !client.grant_types.iter().any(|g| g == grant_type) {
        return Err(OAuthError::unauthorized_client(format!(
            "the client is not registered for grant type {grant_type}"
        ))
        .into());
    }
    let scope = match params.get("scope")? {
        Some(value) => {
            let requested = scope::parse(value)?;
            scope::check_allowed(&requested, &client.scopes)?;
            Some(requested)
        }
        None => None,
    };
    let mut excluded = vec!["grant_type", "scope"];
    excluded.extend_from_slice(CREDENTIAL_PARAMS);
    // RFC 8707 §2: `resource` may repeat, and the host checks it against the
    // registration and binds it to the tokens; a grant that takes `resource`
    // as its own (RFC 8693, listed in its `repeatable_parameters`) decides it
    // itself.
    let host_resources = !(plugin.manifest.repeatable_parameters.iter()).any(|p| p == "resource");
    let requested = if host_resources {
        excluded.push("resource");
        let requested = resource::requested(&params);
        resource::audience(&requested, resource::Allowed::Registered(&client.resources))?;
        requested.into_iter().map(str::to_owned).collect()
    } else {
        Vec::new()
    };
    let mut target = TokenTarget::for_client(&client, requested);
    target.dpop_jkt = proof.map(|proof| proof.jkt);
    let request = TokenRequest {
        grant_type: grant_type.to_owned(),
        client: client_view(&client),
        scope,
        params: params.without(&excluded),
    };
    // Only a grant that checks passwords needs the caller's address: its
    // checks are throttled by it, as the login page's are.
    let origin = plugin
        .capabilities
        .contains(&Capability::Users)
        .then(|| Arc::new(SignInOrigin::new(login::client_address(app, peer, headers))));
    let outcome = plugin.exchange_from(&request, origin.clone(), target).await;
    let response = outcome.map_err(|error| {
        if let Some(throttled) = origin.and_then(|origin| origin.throttled()) {
            return Refused::Throttled(throttled);
        }
        match error {
            CallError::Refused(error) => error.into(),
            CallError::Fault(_) => OAuthError::server_error().into(),
        }
    })?;
    // Every access token the host mints for a request with a proof is
    // bound; one the plugin made otherwise (e.g. signed through `signing`)
    // is not, and a client that must use DPoP does not get it.
    if client.dpop_bound_access_tokens && response.token_type != dpop::TOKEN_TYPE {
        return Err(dpop::invalid_dpop_proof(
            "the grant issued no DPoP-bound access token for a client that requires one",
        )
        .into());
    }
    Ok(response)
}

/// Finds the client and checks its credentials (RFC 6749 §2.3). Every
/// failure looks the same to the caller, and takes the same work: a check
/// that fails against the cached registration reads it again from the store
/// (so a secret changed elsewhere takes effect at once), which is what an
/// unknown `client_id` costs, so the time of a failure does not tell a
/// registered client id from an unknown one.
pub async fn authenticate_client(
    app: &App,
    credentials: &Credentials,
) -> Result<Arc<Client>, OAuthError> {
    let failed = || OAuthError::invalid_client("client authentication failed");
    let client_id = credentials.client_id();
    let now = app.clock.now();
    if let Err(error) = app.clients.follow_changes(&app.store, now).await {
        // The cache stays as it is (entries still expire after their TTL).
        tracing::warn!(%error, "cannot read the clients' change counter");
    }
    if let Some(cached) = app.clients.cached(client_id, now)
        && let Ok(accepted) = check_credentials(app, &cached, credentials, now)
    {
        return use_assertion_once(app, cached, accepted, now).await;
    }
    let client = app
        .clients
        .refresh(&app.store, &app.clock, client_id)
        .await
        .map_err(|error| {
            tracing::error!(%error, "store error while authenticating a client");
            OAuthError::temporarily_unavailable()
        })?;
    let checked = match &client {
        Some(client) => check_credentials(app, client, credentials, now),
        None => {
            // Spend the same hashing or verifying work as for a known client.
            if let Credentials::Assertion { assertion, .. } = credentials {
                // An assertion naming no registered client is verified
                // against dummy keys of its `alg` (refused whatever the result).
                let _ = with_expectations(app, client_id, None, now, |expect| {
                    client_assertion::verify_for_unknown_client(assertion, expect)
                });
            } else {
                let _ = secret::secret_matches(credentials.secret().unwrap_or(""), &[0; 32]);
            }
            Err("unknown client".to_owned())
        }
    };
    match (client, checked) {
        (Some(client), Ok(accepted)) => use_assertion_once(app, client, accepted, now).await,
        (_, checked) => {
            let reason = checked.err().unwrap_or_default();
            // The same line either way; the id as sent, escaped. The reason
            // only at debug: it tells which check failed.
            tracing::info!(client_id = ?client_id, method = credentials.method(), "client authentication failed");
            tracing::debug!(client_id = ?client_id, %reason, "why client authentication failed");
            Err(failed())
        }
    }
}

/// Checks the credentials against the client's registration: its method
/// (RFC 7591 §2: one per client), then the secret or the assertion. An
/// accepted assertion is returned, to be used once.
fn check_credentials(
    app: &App,
    client: &Client,
    credentials: &Credentials,
    now: i64,
) -> Result<Option<Accepted>, String> {
    if !client_auth::method_allowed(client.auth.method, client.public, credentials) {
        return Err(format!(
            "the client is registered for {}, not {}",
            client.auth.method.map_or("a client secret", |m| m.as_str()),
            credentials.method()
        ));
    }
    match credentials {
        Credentials::Assertion { assertion, .. } => {
            with_expectations(app, &client.client_id, client.profile, now, |expect| {
                let verified = if client.auth.method == Some(AuthMethod::ClientSecretJwt) {
                    let sealed = client.auth.secret_sealed.as_deref().unwrap_or_default();
                    let secret = app
                    .keys
                    .key_encryption_key()
                    .open_client_secret(&client.client_id, sealed)
                    .map_err(|error| {
                        // The operator's to fix (an altered row): not the client's doing.
                        tracing::error!(client_id = ?client.client_id, %error, "a client_secret_jwt client's sealed secret does not open");
                        format!("the client's sealed secret: {error}")
                    })?;
                    client_assertion::verify_hmac(&secret, assertion, expect)
                } else {
                    let jwks = client.auth.jwks.as_deref().unwrap_or_default();
                    client_assertion::verify(jwks, assertion, expect)
                };
                verified.map(Some).map_err(|error| error.to_string())
            })
        }
        _ if presents_its_credentials(client, credentials, now) => Ok(None),
        _ => Err("the secret does not match".to_owned()),
    }
}

/// Runs `verify` with what RFC 7523 §3 expects of an assertion from
/// `client_id` at `now`: `aud` the token endpoint or the issuer, or (RFC
/// 9126 §2, for the same assertions at either endpoint) the pushed
/// authorization request endpoint; for a client whose profile says so
/// (FAPI 2.0), the issuer alone, as a string.
fn with_expectations<R>(
    app: &App,
    client_id: &str,
    profile: Option<Profile>,
    now: i64,
    verify: impl FnOnce(&Expectations) -> R,
) -> R {
    let token_endpoint = format!("{}{TOKEN_PATH}", app.issuer);
    let par_endpoint = format!("{}{}", app.issuer, super::par::PAR_PATH);
    let issuer_only = profile.is_some_and(Profile::assertion_audience_is_issuer_only);
    let audiences = if issuer_only {
        vec![app.issuer.as_str()]
    } else {
        vec![
            token_endpoint.as_str(),
            app.issuer.as_str(),
            par_endpoint.as_str(),
        ]
    };
    verify(&Expectations {
        client_id,
        audiences: &audiences,
        audience_string_only: issuer_only,
        now,
    })
}

/// RFC 7523 §3 item 7: an assertion's `jti` is used once, until it expires,
/// across every instance on the database.
async fn use_assertion_once(
    app: &App,
    client: Arc<Client>,
    accepted: Option<Accepted>,
    now: i64,
) -> Result<Arc<Client>, OAuthError> {
    let Some(accepted) = accepted else {
        return Ok(client);
    };
    let first_use = app
        .store
        .use_client_assertion(&client.client_id, &accepted.jti, accepted.expires_at, now)
        .await
        .map_err(|error| {
            tracing::error!(%error, "store error while recording a client assertion");
            OAuthError::temporarily_unavailable()
        })?;
    if first_use {
        return Ok(client);
    }
    tracing::info!(client_id = ?client.client_id, method = "client_assertion", "client authentication failed");
    tracing::debug!(client_id = ?client.client_id, jti = ?accepted.jti, "why client authentication failed: the assertion's jti was used before");
    Err(OAuthError::invalid_client("client authentication failed"))
}

/// A public client presents no secret; a confidential one its own.
/// The client's secret, or during a rotation's grace period the one it
/// replaced (checked against `now`, so a cached client loses it on time).
fn presents_its_credentials(client: &Client, credentials: &Credentials, now: i64) -> bool {
    match (&client.secret_hash, credentials.secret()) {
        (None, None) => client.public,
        (Some(hash), Some(presented)) if !client.public => {
            let current = secret::secret_matches(presented, hash);
            let previous = client
                .auth
                .previous_secret
                .as_ref()
                .filter(|previous| previous.expires_at > now)
                .is_some_and(|previous| secret::secret_matches(presented, &previous.secret_hash));
            current | previous
        }
        _ => false,
    }
}

pub fn client_view(client: &Client) -> ClientView {
    ClientView {
        client_id: client.client_id.clone(),
        public: client.public,
        grant_types: client.grant_types.clone(),
        scopes: client.scopes.clone(),
        id_token_signed_response_alg: client.id_token_signed_response_alg.clone(),
    }
}

/// The parameters RFC 6749 §5.1 defines; an extension parameter may not repeat them.
const STANDARD_FIELDS: [&str; 5] = [
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "scope",
];

#[derive(Serialize)]
struct TokenBody<'a> {
    access_token: &'a str,
    token_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(flatten)]
    extra: std::collections::BTreeMap<&'a str, &'a str>,
}

fn token_response(response: &TokenResponse) -> Response {
    let body = TokenBody {
        access_token: &response.access_token,
        token_type: &response.token_type,
        expires_in: response.expires_in,
        refresh_token: response.refresh_token.as_deref(),
        scope: response.scope.as_ref().map(|s| s.join(" ")),
        extra: response
            .extra
            .iter()
            .filter(|(name, _)| !STANDARD_FIELDS.contains(&name.as_str()))
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect(),
    };
    super::no_store((StatusCode::OK, axum::Json(body)).into_response())
}
