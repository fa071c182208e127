//! The authorization endpoint (RFC 6749 §3.1) and the decision endpoint: the
//! host validates client, redirect URI, response type and scope, the grant
//! plugin parses its own parameters, the transaction waits in the session
//! while the user signs in and consents, then the plugin issues the response.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;
use tower_sessions::Session;

use super::page;
use super::token::client_view;
use super::transaction::{self, SessionUser, Transaction};
use crate::app::App;
use crate::oauth::redirect::{self, Delivery};
use crate::oauth::{ErrorCode, OAuthError, Params, scope};
use crate::plugin::{
    AuthorizationApproval, AuthorizationRequest, CallError, Registry, ResponseMode,
    TransactionPluginError,
};
use crate::secret;
use crate::store::Client;

/// Why an authorization request stopped.
enum Rejection {
    /// Shown as a page: the client or its redirect URI cannot be trusted.
    Page(StatusCode, &'static str, String),
    /// Sent back to the validated redirect URI.
    Redirect {
        redirect_uri: String,
        mode: ResponseMode,
        state: Option<String>,
        error: OAuthError,
    },
}

/// How the response is sent: 302 from a GET, 303 after a form POST.
#[derive(Clone, Copy)]
enum After {
    Get,
    Post,
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

fn bad_request(app: &App, error: &OAuthError) -> Response {
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
    let (transaction, client) = match validate(&app, &registry, &params, now).await {
        Ok(validated) => validated,
        Err(rejection) => return reject(&app, rejection, after),
    };
    // Bounds what an unauthenticated request may store; an oversized state is
    // not sent back.
    if let Err(error) = transaction::check_size(&transaction) {
        let state = (transaction.state.as_ref())
            .filter(|state| state.len() <= transaction::MAX_STATE_BYTES)
            .cloned();
        let (redirect_uri, mode) = (transaction.redirect_uri, transaction.response_mode);
        let rejection = Rejection::Redirect {
            redirect_uri,
            mode,
            state,
            error,
        };
        return reject(&app, rejection, after);
    }
    let user = match transaction::user(&session).await {
        Ok(user) => user,
        Err(error) => return unavailable(&app, &error),
    };
    if let Err(error) = transaction::save(&session, transaction.clone(), now).await {
        return unavailable(&app, &error);
    }
    match user {
        Some(user) => {
            let party = (&client, &user);
            proceed(&app, &registry, &session, transaction, party, after).await
        }
        None => see_other(&format!("/login?transaction_id={}", transaction.id), after),
    }
}

/// Checks the request in the order RFC 6749 §4.1.2.1 requires: nothing is
/// redirected until the client and its redirect URI are known good.
async fn validate(
    app: &App,
    registry: &Registry,
    params: &Params,
    now: i64,
) -> Result<(Transaction, Client), Rejection> {
    let page = |message: &str| {
        Rejection::Page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            message.to_owned(),
        )
    };
    let client_id = params
        .get("client_id")
        .map_err(|_| page("The client_id parameter is repeated."))?
        .ok_or_else(|| page("The client_id parameter is missing."))?;
    let client = app.store.find_client(client_id).await.map_err(|error| {
        tracing::error!(%error, "store error at the authorization endpoint");
        Rejection::Page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "The server cannot handle the request right now; try again later.".into(),
        )
    })?;
    let Some(client) = client else {
        return Err(Rejection::Page(
            StatusCode::BAD_REQUEST,
            "Unknown client",
            "The application that sent you here is not registered.".into(),
        ));
    };
    let sent_redirect_uri = params
        .get("redirect_uri")
        .map_err(|_| page("The redirect_uri parameter is repeated."))?;
    let redirect_uri = match sent_redirect_uri {
        Some(requested) => match redirect::find_registered(requested, &client.redirect_uris) {
            Some(_) => requested.to_owned(),
            None => {
                return Err(page(
                    "The redirect_uri is not registered for this application.",
                ));
            }
        },
        // RFC 6749 §3.1.2.3: without redirect_uri, only a single registered one is unambiguous.
        None => match client.redirect_uris.as_slice() {
            [only] => only.clone(),
            [] => return Err(page("The application has no registered redirect URI.")),
            _ => return Err(page("The redirect_uri parameter is missing.")),
        },
    };

    // From here on, errors go back to the client.
    let state = params.get("state").ok().flatten().map(str::to_owned);
    let fail = |mode: ResponseMode, error: OAuthError| Rejection::Redirect {
        redirect_uri: redirect_uri.clone(),
        mode,
        state: state.clone(),
        error,
    };
    let requested_mode = params
        .get("response_mode")
        .ok()
        .flatten()
        .map(|m| redirect::parse_mode(m).ok_or(m));
    let fallback_mode = match requested_mode {
        Some(Ok(mode)) => mode,
        _ => ResponseMode::Query,
    };
    let response_type = match params.get("response_type") {
        Ok(Some(value)) => value,
        Ok(None) => {
            return Err(fail(
                fallback_mode,
                OAuthError::invalid_request("response_type is missing"),
            ));
        }
        Err(error) => return Err(fail(fallback_mode, error)),
    };
    let Some((plugin, default_mode)) = registry.for_response_type(response_type) else {
        return Err(fail(
            fallback_mode,
            OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                format!("response type {response_type} is not supported"),
            ),
        ));
    };
    let words: Vec<String> = response_type.split(' ').map(str::to_owned).collect();
    let mode = match requested_mode {
        None => default_mode,
        Some(Ok(mode)) => mode,
        Some(Err(unknown)) => {
            return Err(fail(
                default_mode,
                OAuthError::invalid_request(format!("response_mode {unknown} is not supported")),
            ));
        }
    };
    if let Some(name) = params.first_repeated() {
        return Err(fail(
            mode,
            OAuthError::invalid_request(format!("parameter {name} is repeated")),
        ));
    }
    // Multiple Response Types §2.1: tokens never travel in a query string.
    if mode == ResponseMode::Query && words.iter().any(|w| w == "token") {
        return Err(fail(
            default_mode,
            OAuthError::invalid_request("response_mode query cannot carry tokens"),
        ));
    }
    for (word, grant_type) in [("code", "authorization_code"), ("token", "implicit")] {
        if words.iter().any(|w| w == word) && !client.grant_types.iter().any(|g| g == grant_type) {
            return Err(fail(
                mode,
                OAuthError::unauthorized_client(format!(
                    "the client is not registered for {grant_type}"
                )),
            ));
        }
    }
    let scope = match params.get("scope").map_err(|e| fail(mode, e))? {
        Some(value) => {
            let requested = scope::parse(value).map_err(|e| fail(mode, e))?;
            scope::check_allowed(&requested, &client.scopes).map_err(|e| fail(mode, e))?;
            requested
        }
        // RFC 6749 §3.3: a missing scope means the pre-defined default, every registered scope.
        None => client.scopes.clone(),
    };
    let request = AuthorizationRequest {
        response_type: words.clone(),
        client: client_view(&client),
        redirect_uri: redirect_uri.clone(),
        scope: scope.clone(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    };
    let data = plugin
        .authorize_request(&request)
        .await
        .map_err(|error| match error {
            CallError::Refused(error) => fail(mode, error),
            CallError::Fault(_) => fail(mode, OAuthError::server_error()),
        })?;
    let transaction = Transaction {
        id: secret::new_token(),
        csrf_token: secret::new_token(),
        expires_at: now + app.transaction_lifetime,
        client_id: client.client_id.clone(),
        redirect_uri,
        sent_redirect_uri: sent_redirect_uri.map(str::to_owned),
        response_type: words,
        response_mode: mode,
        scope,
        state,
        data,
        plugin: Some(plugin.fingerprint.clone()),
    };
    Ok((transaction, client))
}

fn reject(app: &App, rejection: Rejection, after: After) -> Response {
    match rejection {
        Rejection::Page(status, title, message) => page::error(app, status, title, &message),
        Rejection::Redirect {
            redirect_uri,
            mode,
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
            finish(app, &redirect_uri, mode, state.as_deref(), params, after)
        }
    }
}

/// Adds `state` and `iss` (RFC 9207) and sends the response in its mode.
fn finish(
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
fn see_other(location: &str, after: After) -> Response {
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

fn unavailable(app: &App, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "session store error");
    page::error(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "The server cannot handle the request right now; try again later.",
    )
}

fn lost_transaction(app: &App) -> Response {
    page::error(
        app,
        StatusCode::FORBIDDEN,
        "Request expired",
        "This authorization request has expired or was already answered. Go back to the application and start again.",
    )
}

/// With a signed-in user: approve at once when the client is trusted or the
/// user already consented to this scope, else ask.
async fn proceed(
    app: &App,
    registry: &Registry,
    session: &Session,
    transaction: Transaction,
    (client, user): (&Client, &SessionUser),
    after: After,
) -> Response {
    let remembered = match app
        .store
        .find_consent(&user.subject, &client.client_id)
        .await
    {
        Ok(consent) => {
            consent.is_some_and(|granted| transaction.scope.iter().all(|s| granted.contains(s)))
        }
        Err(error) => return unavailable(app, &error),
    };
    // RFC 8252 §8.6: any app on the device can receive a redirect to
    // loopback or a private-use scheme and use a public client's id, so
    // neither the trusted flag nor a remembered consent answers for the
    // user there (node-oidc-provider's `native_client_prompt`).
    let may_skip_consent =
        !(client.public && redirect::is_native_app_uri(&transaction.redirect_uri));
    if may_skip_consent && (client.trusted || remembered) {
        return approve(app, registry, session, transaction, (client, user), after).await;
    }
    let redirect_host = url::Url::parse(&transaction.redirect_uri)
        .ok()
        .map(|u| {
            u.host_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}:", u.scheme()))
        })
        .unwrap_or_default();
    page::render_towards(
        app,
        StatusCode::OK,
        "consent.html",
        context! {
            client_name => client.name.clone().unwrap_or_else(|| client.client_id.clone()),
            client_id => client.client_id,
            client_uri => client.client_uri,
            username => user.username,
            scopes => transaction
                .scope
                .iter()
                .map(|scope| (scope.clone(), app.scope_descriptions.get(scope).cloned()))
                .collect::<Vec<_>>(),
            redirect_host,
            transaction_id => transaction.id,
            csrf_token => transaction.csrf_token,
        },
        &transaction.redirect_uri,
    )
}

/// Takes the transaction out of the session and claims its decision in the
/// store, so that two posts of one consent form racing each other (each
/// request reads the session on its own) decide it once: `false` for the
/// one that lost.
async fn decide_once(
    app: &App,
    session: &Session,
    transaction: &Transaction,
) -> Result<bool, Response> {
    if let Err(error) = transaction::remove(session, &transaction.id).await {
        return Err(unavailable(app, &error));
    }
    app.store
        .claim_decision(&secret::token_hash(&transaction.id), transaction.expires_at)
        .await
        .map_err(|error| unavailable(app, &error))
}

/// The user approved: the plugin issues the response parameters.
async fn approve(
    app: &App,
    registry: &Registry,
    session: &Session,
    transaction: Transaction,
    (client, user): (&Client, &SessionUser),
    after: After,
) -> Response {
    match decide_once(app, session, &transaction).await {
        Ok(true) => {}
        Ok(false) => return lost_transaction(app),
        Err(response) => return response,
    }
    let mode = transaction.response_mode;
    let state = transaction.state.as_deref();
    let fail = |error: OAuthError| {
        let params = vec![
            ("error".to_owned(), error.code.as_str().to_owned()),
            (
                "error_description".to_owned(),
                error.description.unwrap_or_default(),
            ),
        ];
        finish(app, &transaction.redirect_uri, mode, state, params, after)
    };
    // The plugin version that began the transaction decides it, even after
    // a reload replaced it; a grant that is gone fails as an OAuth error.
    let response_type = transaction.response_type.join(" ");
    let plugin = match registry.for_transaction(&response_type, transaction.plugin.as_deref()) {
        Ok(plugin) => plugin,
        Err(error @ TransactionPluginError::Vanished(_)) => {
            return fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                error.to_string(),
            ));
        }
        Err(error @ TransactionPluginError::Replaced) => {
            tracing::warn!(client_id = %client.client_id, %response_type, "{error}");
            return fail(OAuthError::new(ErrorCode::ServerError, error.to_string()));
        }
    };
    let approval = AuthorizationApproval {
        response_type: transaction.response_type.clone(),
        client: client_view(client),
        redirect_uri: transaction.sent_redirect_uri.clone().unwrap_or_default(),
        subject: user.subject.clone(),
        scope: transaction.scope.clone(),
        data: transaction.data.clone(),
    };
    let (params, issued) = match plugin.authorize_response(&approval).await {
        Ok(result) => result,
        Err(CallError::Refused(error)) => return fail(error),
        Err(CallError::Fault(_)) => return fail(OAuthError::server_error()),
    };
    // Codes and tokens must be ones the host issued in this call; the host owns state, iss and error.
    const ISSUED: [&str; 3] = ["code", "access_token", "refresh_token"];
    if params
        .iter()
        .any(|(name, value)| ISSUED.contains(&name.as_str()) && !issued.contains(value))
    {
        plugin.contract_fault("authorize_response returned a code or token the host did not issue");
        return fail(OAuthError::server_error());
    }
    let params = params
        .into_iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "state" | "iss" | "error" | "error_description"
            )
        })
        .collect();
    finish(app, &transaction.redirect_uri, mode, state, params, after)
}

#[derive(Deserialize)]
pub struct ResumeQuery {
    transaction_id: Option<String>,
}

/// `GET /authorize/continue`: where the login form sends the user back.
pub async fn resume(
    State(app): State<App>,
    session: Session,
    Query(query): Query<ResumeQuery>,
) -> Response {
    let now = app.clock.now();
    let registry = app.registry();
    let Some(id) = query.transaction_id else {
        return lost_transaction(&app);
    };
    let transaction = match transaction::find(&session, &id, now).await {
        Ok(Some(transaction)) => transaction,
        Ok(None) => return lost_transaction(&app),
        Err(error) => return unavailable(&app, &error),
    };
    match signed_in_party(&app, &session, &transaction, After::Get).await {
        Ok((user, client)) => {
            let party = (&client, &user);
            proceed(&app, &registry, &session, transaction, party, After::Get).await
        }
        Err(response) => response,
    }
}

/// The signed-in user and the transaction's client, or the response to send
/// instead: the login page when nobody is signed in, an error page when the
/// client is gone.
async fn signed_in_party(
    app: &App,
    session: &Session,
    transaction: &Transaction,
    after: After,
) -> Result<(SessionUser, Client), Response> {
    let user = match transaction::user(session).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return Err(see_other(
                &format!("/login?transaction_id={}", transaction.id),
                after,
            ));
        }
        Err(error) => return Err(unavailable(app, &error)),
    };
    match app.store.find_client(&transaction.client_id).await {
        Ok(Some(client)) => Ok((user, client)),
        Ok(None) => Err(lost_transaction(app)),
        Err(error) => Err(unavailable(app, &error)),
    }
}

/// `POST /authorize/decision`: the consent form (fields `transaction_id`,
/// `csrf_token`, and `allow` or `cancel`).
pub async fn decision(
    State(app): State<App>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = app.clock.now();
    let registry = app.registry();
    if let Err(error) = super::check_form_content_type(&headers) {
        return bad_request(&app, &error);
    }
    let form = match Params::parse(&body) {
        Ok(form) => form,
        Err(error) => return bad_request(&app, &error),
    };
    let Ok(Some(id)) = form.get("transaction_id") else {
        return page::error(
            &app,
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The transaction_id parameter is missing.",
        );
    };
    let transaction = match transaction::find(&session, id, now).await {
        Ok(Some(transaction)) => transaction,
        Ok(None) => return lost_transaction(&app),
        Err(error) => return unavailable(&app, &error),
    };
    if !transaction::tokens_match(
        &transaction.csrf_token,
        form.get("csrf_token").ok().flatten(),
    ) {
        return page::error(
            &app,
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form was not sent by this server's consent page.",
        );
    }
    let (user, client) = match signed_in_party(&app, &session, &transaction, After::Post).await {
        Ok(party) => party,
        Err(response) => return response,
    };
    // OAuth2orize's rule: any `cancel` field denies.
    if form.contains("cancel") {
        match decide_once(&app, &session, &transaction).await {
            Ok(true) => {}
            Ok(false) => return lost_transaction(&app),
            Err(response) => return response,
        }
        let params = vec![
            ("error".to_owned(), "access_denied".to_owned()),
            (
                "error_description".to_owned(),
                "the resource owner denied the request".to_owned(),
            ),
        ];
        return finish(
            &app,
            &transaction.redirect_uri,
            transaction.response_mode,
            transaction.state.as_deref(),
            params,
            After::Post,
        );
    }
    // Remembered consent grows: what was approved before stays approved.
    let mut consented = match app
        .store
        .find_consent(&user.subject, &client.client_id)
        .await
    {
        Ok(consent) => consent.unwrap_or_default(),
        Err(error) => return unavailable(&app, &error),
    };
    for scope in &transaction.scope {
        if !consented.contains(scope) {
            consented.push(scope.clone());
        }
    }
    if let Err(error) = app
        .store
        .save_consent(&user.subject, &client.client_id, &consented, now)
        .await
    {
        return unavailable(&app, &error);
    }
    let party = (&client, &user);
    approve(&app, &registry, &session, transaction, party, After::Post).await
}
