//! The authorization endpoint (RFC 6749 §3.1): decodes the request, looks the
//! client up, takes the parameters of a pushed request (RFC 9126 §4) when it
//! names one, lets `oauth::authorize` decide whether the request is valid, has
//! the grant plugin parse its own parameters, and keeps the transaction in the
//! session while the user signs in; `decision.rs` takes it from there. Also
//! how every authorization response leaves (redirect or form post).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::decision;
use super::page;
use super::token::client_view;
use super::transaction::{self, Transaction};
use crate::app::App;
use crate::oauth::authorize::{
    self, Arrival, RegisteredClient, Registration, Rejection, ResponseTypes,
};
use crate::oauth::redirect::{self, Delivery};
use crate::oauth::{ErrorCode, OAuthError, Params, dpop};
use crate::plugin::{AuthorizationRequest, CallError, PluginRef, Registry, ResponseMode};
use crate::secret;
use crate::store::Client;

/// How the response is sent: 302 from a GET, 303 after a form POST.
#[derive(Clone, Copy)]
pub(super) enum After {
    Get,
    Post,
}

impl Registration for Client {
    fn registration(&self) -> RegisteredClient<'_> {
        RegisteredClient {
            client_id: &self.client_id,
            redirect_uris: &self.redirect_uris,
            grant_types: &self.grant_types,
            scopes: &self.scopes,
            resources: &self.resources,
            profile: self.profile,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
        }
    }
}

/// The registry offers each response type a loaded plugin provides.
impl<'r> ResponseTypes for &'r Registry {
    type Grant = &'r PluginRef;
    fn find(&self, response_type: &str) -> Option<(&'r PluginRef, ResponseMode)> {
        self.for_response_type(response_type)
    }
}

pub async fn authorize_get(State(app): State<App>, session: Session, uri: Uri) -> Response {
    let params = match Params::parse(uri.query().unwrap_or("").as_bytes()) {
        Ok(params) => params,
        Err(error) => return bad_request(&app, &error),
    };
    authorize(app, session, params, After::Get).await
}

/// RFC 6749 §3.1: the endpoint may also accept POST; then every parameter is in the body.
pub async fn authorize_post(
    State(app): State<App>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    if uri.query().is_some_and(|q| !q.is_empty()) {
        return page::error(
            &app,
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "Send the parameters either in the query or in the body, not both.",
        );
    }
    if let Err(error) = super::check_form_content_type(&headers) {
        return bad_request(&app, &error);
    }
    let params = match Params::parse(&body) {
        Ok(params) => params,
        Err(error) => return bad_request(&app, &error),
    };
    authorize(app, session, params, After::Post).await
}

pub(super) fn bad_request(app: &App, error: &OAuthError) -> Response {
    page::error(
        app,
        StatusCode::BAD_REQUEST,
        "Invalid request",
        error
            .description
            .as_deref()
            .unwrap_or("The request is malformed."),
    )
}

async fn authorize(app: App, session: Session, params: Params, after: After) -> Response {
    let now = app.clock.now();
    let registry = app.registry();
    let Begun {
        transaction,
        client,
        params,
        pushed,
    } = match begin(&app, &registry, &params, now, after).await {
        Ok(begun) => begun,
        Err(response) => return response,
    };
    // Bounds what an unauthenticated request may store; an oversized state is
    // not sent back.
    if let Err(error) = transaction::check_size(&transaction) {
        let state = (transaction.state.as_ref())
            .filter(|state| state.len() <= transaction::MAX_STATE_BYTES)
            .cloned();
        let rejection = Rejection::Redirect {
            redirect_uri: transaction.redirect_uri,
            response_mode: transaction.response_mode,
            state,
            error,
        };
        return reject(&app, rejection, after);
    }
    let user = match super::login::signed_in_user(&app, &session).await {
        Ok(user) => user,
        Err(error) => return unavailable(&app, &error),
    };
    if transaction.sign_in.prompt_none {
        let party = (&client, user.as_ref());
        let hint = params.get("id_token_hint").ok().flatten();
        return decision::without_interaction(
            &app,
            &registry,
            &session,
            transaction,
            party,
            hint,
            after,
        )
        .await;
    }
    if let Err(error) = transaction::save(&session, transaction.clone(), now).await {
        return unavailable(&app, &error);
    }
    match user {
        // RFC 9126 §4: the request_uri is spent, so a page answered here
        // could not be reloaded; `/authorize/continue` shows it from the
        // transaction, as often as the user reloads it.
        Some(_) if pushed => see_other(
            &format!("/authorize/continue?transaction_id={}", transaction.id),
            after,
        ),
        Some(user) => {
            let party = (&client, &user);
            decision::proceed(&app, &registry, &session, transaction, party, after).await
        }
        None => see_other(&format!("/login?transaction_id={}", transaction.id), after),
    }
}

/// A valid authorization request, ready to be kept: its transaction, the
/// client, the parameters it was decided on (the pushed ones for a
/// `request_uri`), and whether they were pushed.
struct Begun {
    transaction: Transaction,
    client: Client,
    params: Params,
    pushed: bool,
}

/// Looks the client up, takes the pushed parameters a `request_uri` names
/// (RFC 9126 §4: once, and only them), and has [`prepare`] check them.
async fn begin(
    app: &App,
    registry: &Registry,
    params: &Params,
    now: i64,
    after: After,
) -> Result<Begun, Response> {
    let client_id = authorize::client_id(params).map_err(|r| reject(app, r, after))?;
    let client = app.store.find_client(client_id).await.map_err(|error| {
        tracing::error!(%error, "store error at the authorization endpoint");
        store_unavailable(app)
    })?;
    let reference =
        authorize::pushed_reference(params, client.as_ref()).map_err(|r| reject(app, r, after))?;
    let (params, arrival) = match (reference, &client) {
        (Some(reference), Some(found)) => {
            let pushed = take_pushed(app, found, reference, now, after).await?;
            (pushed, Arrival::Pushed)
        }
        // `pushed_reference` names a reference only for a known client.
        _ => {
            let pushed_required = app.par.require_pushed_authorization_requests;
            (params.clone(), Arrival::Direct { pushed_required })
        }
    };
    let (transaction, client) = prepare(app, registry, &params, client, arrival, now)
        .await
        .map_err(|r| reject(app, r, after))?;
    Ok(Begun {
        transaction,
        client,
        params,
        pushed: arrival == Arrival::Pushed,
    })
}

/// The parameters `client` pushed under `reference`, deleted as they are
/// read; `invalid_request_uri` when there are none (unknown, used, expired,
/// or another client's).
async fn take_pushed(
    app: &App,
    client: &Client,
    reference: &str,
    now: i64,
    after: After,
) -> Result<Params, Response> {
    let request_uri_hash = secret::token_hash(reference);
    match (app.store)
        .take_pushed_request(&request_uri_hash, &client.client_id, now)
        .await
    {
        Ok(Some(pairs)) => Ok(Params::from_pairs(pairs)),
        Ok(None) => {
            tracing::info!(client_id = ?client.client_id, "request_uri refused: unknown, used, expired or another client's");
            let description = "request_uri is unknown, expired, used or another client's";
            let rejection = authorize::refuse_request_uri(client, description);
            Err(reject(app, rejection, after))
        }
        Err(error) => {
            tracing::error!(%error, "store error while taking a pushed authorization request");
            Err(store_unavailable(app))
        }
    }
}

/// The checks every authorization request gets, at `/authorize` and when
/// pushed (`endpoint/par.rs`): `oauth::authorize::validate` of the
/// parameters against the client found (`None`: unknown), then the grant
/// plugin's `authorize_request`, whose data the transaction keeps.
pub(super) async fn prepare(
    app: &App,
    registry: &Registry,
    params: &Params,
    client: Option<Client>,
    arrival: Arrival,
    now: i64,
) -> Result<(Transaction, Client), Rejection> {
    let request = authorize::validate(params, client, &registry, arrival)?;
    let dpop_jkt = dpop::requested_jkt(params).map_err(|error| request.reject(error))?;
    // RFC 9449 §5.2: a client that must use DPoP gets no bearer token, and
    // an access token from this endpoint (implicit) could only be one.
    if request.client.dpop_bound_access_tokens && request.response_type.iter().any(|t| t == "token")
    {
        let error = OAuthError::unauthorized_client(
            "a client registered for DPoP-bound access tokens gets them from the token endpoint only",
        );
        return Err(request.reject(error));
    }
    let plugin_request = AuthorizationRequest {
        response_type: request.response_type.clone(),
        client: client_view(&request.client),
        redirect_uri: request.redirect_uri.clone(),
        scope: request.scope.clone(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    };
    let data = match request.grant.authorize_request(&plugin_request).await {
        Ok(data) => data,
        Err(CallError::Refused(error)) => return Err(request.reject(error)),
        Err(CallError::Fault(_)) => return Err(request.reject(OAuthError::server_error())),
    };
    let transaction = Transaction {
        id: secret::new_token(),
        csrf_token: secret::new_token(),
        expires_at: now + app.transaction_lifetime,
        client_id: request.client.client_id.clone(),
        sent_redirect_uri: request.sent_redirect_uri().map(str::to_owned),
        redirect_uri: request.redirect_uri,
        response_type: request.response_type,
        response_mode: request.response_mode,
        scope: request.scope,
        resources: request.resources,
        state: request.state,
        data,
        plugin: Some(request.grant.fingerprint.clone()),
        requested_at: now,
        sign_in: request.sign_in,
        signed_in_for_it: false,
        dpop_jkt,
    };
    Ok((transaction, request.client))
}

fn store_unavailable(app: &App) -> Response {
    page::error(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "The server cannot handle the request right now; try again later.",
    )
}

/// An error sent to the client's redirect URI for a transaction: `error`,
/// `error_description`, `state` and `iss`.
pub(super) fn redirect_error(
    app: &App,
    transaction: &Transaction,
    error: OAuthError,
    after: After,
) -> Response {
    let rejection = Rejection::Redirect {
        redirect_uri: transaction.redirect_uri.clone(),
        response_mode: transaction.response_mode,
        state: transaction.state.clone(),
        error,
    };
    reject(app, rejection, after)
}

/// A rejection as the user sees it: a page, or an error response sent to the
/// client's redirect URI.
fn reject(app: &App, rejection: Rejection, after: After) -> Response {
    match rejection {
        Rejection::Page(error) => {
            let title = match error.code {
                ErrorCode::InvalidClient => "Unknown client",
                _ => "Invalid request",
            };
            let message = (error.description.as_deref()).unwrap_or("The request is malformed.");
            page::error(app, StatusCode::BAD_REQUEST, title, message)
        }
        Rejection::Redirect {
            redirect_uri,
            response_mode,
            state,
            error,
        } => {
            let mut params = vec![("error".to_owned(), error.code.as_str().to_owned())];
            if let Some(description) = error.description {
                params.push(("error_description".into(), description));
            }
            if let Some(uri) = error.uri {
                params.push(("error_uri".into(), uri));
            }
            finish(
                app,
                &redirect_uri,
                response_mode,
                state.as_deref(),
                params,
                after,
            )
        }
    }
}

/// Adds `state` and `iss` (RFC 9207) and sends the response in its mode.
pub(super) fn finish(
    app: &App,
    redirect_uri: &str,
    mode: ResponseMode,
    state: Option<&str>,
    mut params: Vec<(String, String)>,
    after: After,
) -> Response {
    if let Some(state) = state {
        params.push(("state".into(), state.to_owned()));
    }
    params.push(("iss".into(), app.issuer.clone()));
    match redirect::deliver(redirect_uri, mode, &params) {
        Delivery::Redirect(location) => see_other(&location, after),
        Delivery::FormPost { action, params } => page::form_post(app, &action, &params),
    }
}

/// A redirect that never re-sends a body (RFC 9700 §4.12: no 307).
pub(super) fn see_other(location: &str, after: After) -> Response {
    let status = match after {
        After::Get => StatusCode::FOUND,
        After::Post => StatusCode::SEE_OTHER,
    };
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

pub(super) fn unavailable(app: &App, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "session store error");
    page::error(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "The server cannot handle the request right now; try again later.",
    )
}
