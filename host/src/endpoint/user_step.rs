//! A plugin's user step (`GET`/`POST` at a path its manifest declares under
//! `[[provides.user_steps]]`): a person enters a short code, the plugin
//! says what it stands for, the person signs in if needed and consents,
//! and the plugin hears the outcome. The host renders every page, checks the
//! CSRF tokens, throttles wrong codes per session and address (RFC 8628
//! §5.1) and always asks for consent; it knows nothing of what the code is for.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use tower_sessions::Session;

use super::authorize::{After, see_other};
use super::decision::{consent_page, lost_transaction, signed_in_party};
use super::login::{client_address, session_form, unavailable_page, with_retry_after};
use super::page;
use super::token::client_view;
use super::transaction::{self, UserStepTransaction};
use crate::app::App;
use crate::oauth::{OAuthError, Params, scope};
use crate::plugin::{CallError, PluginRef, Registry, UserCodeEntry, UserCodeOutcome, UserDecision};
use crate::ratelimit::{Refusal, USER_CODE_LIMITS, UserCodeLimiter};
use crate::secret;
use crate::store::Client;

/// The longest user code the host passes on, in bytes; a longer entry is
/// refused before the plugin sees it (and not counted as a guess).
pub const MAX_USER_CODE_BYTES: usize = 64;

/// One request to a user step, taken apart.
struct UserStepRequest<'a> {
    /// The user step's path, as the manifest declares it.
    step: &'a str,
    /// The query string, without the `?`.
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    peer: SocketAddr,
    body: &'a [u8],
}

/// The router's fallback hands over a request to the path of `plugin`'s
/// user step. `GET <step>`: the code entry form (pre-filled by
/// `?user_code=`, RFC 8628 §5.4 `verification_uri_complete`, never acted
/// on), or with `?transaction_id=` the consent page of a code already
/// entered. `POST <step>`: the code entry form's submission.
pub async fn handle(app: &App, plugin: &PluginRef, request: Request) -> Response {
    let (Some(session), Some(ConnectInfo(peer))) = (
        request.extensions().get::<Session>().cloned(),
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .copied(),
    ) else {
        tracing::error!("a user step was routed outside the session layer");
        return unavailable_page(app);
    };
    let method = request.method().clone();
    let uri = request.uri().clone();
    let headers = request.headers().clone();
    // Honours the server's body limit (413), as the login form's `Bytes` does.
    let body = match Bytes::from_request(request, app).await {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    let request = UserStepRequest {
        step: uri.path(),
        query: uri.query(),
        headers: &headers,
        peer,
        body: &body,
    };
    match method {
        Method::GET => show(app, &session, &request).await,
        Method::POST => enter_code(app, &session, plugin, &request).await,
        _ => {
            let mut response = page::error(
                app,
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "This page answers GET and POST only.",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            response
        }
    }
}

/// The user's decision on the consent page of a user step, which posts to
/// `/authorize/decision` like every consent page (fields `transaction_id`,
/// `csrf_token`, and `allow` or `cancel`): the plugin version that knew the
/// code hears it once, and the user sees the done page.
pub async fn decide(
    app: &App,
    registry: &Registry,
    session: &Session,
    step: UserStepTransaction,
    form: &Params,
) -> Response {
    if !transaction::tokens_match(&step.csrf_token, form.get("csrf_token").ok().flatten()) {
        return page::error(
            app,
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form was not sent by this server's consent page.",
        );
    }
    let (user, client) =
        match signed_in_party(app, session, &step.id, &step.client_id, After::Post).await {
            Ok(party) => party,
            Err(response) => return response,
        };
    // Two posts of one consent form racing each other decide it once.
    if let Err(error) = transaction::remove(session, &step.id).await {
        tracing::error!(%error, "session store error at a user step");
        return unavailable_page(app);
    }
    match app
        .store
        .claim_decision(&secret::token_hash(&step.id), step.expires_at)
        .await
    {
        Ok(true) => {}
        Ok(false) => return lost_transaction(app),
        Err(error) => {
            tracing::error!(%error, "store error at a user step");
            return unavailable_page(app);
        }
    }
    // The plugin version that knew the code hears the outcome, even after a
    // reload replaced it.
    let Some(plugin) = registry.by_fingerprint(&step.plugin) else {
        tracing::warn!(plugin = %step.plugin_name, step = %step.step, "the plugin of a pending user step was replaced");
        return page::error(
            app,
            StatusCode::CONFLICT,
            "Request expired",
            "The server was updated while you decided. Start again where you were shown the code.",
        );
    };
    // OAuth2orize's rule: any `cancel` field denies.
    let approved = !form.contains("cancel");
    let decision = if approved {
        UserDecision::Approved {
            subject: user.subject.clone(),
            scope: step.scope.clone(),
        }
    } else {
        UserDecision::Denied
    };
    let outcome = UserCodeOutcome {
        step: step.step.clone(),
        client: client_view(&client),
        data: step.data.clone(),
        decision,
    };
    match plugin.complete_user_code(&outcome).await {
        Ok(()) => {}
        Err(CallError::Refused(error)) => {
            return page::error(
                app,
                StatusCode::BAD_REQUEST,
                "Not completed",
                &described(&error),
            );
        }
        Err(CallError::Fault(_)) => return unavailable_page(app),
    }
    tracing::info!(client_id = %client.client_id, step = %step.step, approved, "user step decided");
    page::render(
        app,
        StatusCode::OK,
        "user_code_done.html",
        context! { approved, client_name => client_name(&client) },
    )
}

/// `GET <step>`: the consent page of an entered code, or the entry form.
async fn show(app: &App, session: &Session, request: &UserStepRequest<'_>) -> Response {
    let query = match Params::parse(request.query.unwrap_or("").as_bytes()) {
        Ok(query) => query,
        Err(_) => {
            return page::error(
                app,
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "The address is malformed.",
            );
        }
    };
    if let Ok(Some(id)) = query.get("transaction_id") {
        return consent(app, session, id).await;
    }
    // A pre-filled code is only shown: the user still submits it.
    let user_code = match query.get("user_code") {
        Ok(Some(code)) if code.len() <= MAX_USER_CODE_BYTES => code,
        _ => "",
    };
    entry_page(app, session, request.step, StatusCode::OK, user_code, None).await
}

/// The consent page of an entered code, once a user is signed in.
async fn consent(app: &App, session: &Session, id: &str) -> Response {
    let step = match transaction::find_user_step(session, id, app.clock.now()).await {
        Ok(Some(step)) => step,
        Ok(None) => return lost_transaction(app),
        Err(error) => {
            tracing::error!(%error, "session store error at a user step");
            return unavailable_page(app);
        }
    };
    let (user, client) =
        match signed_in_party(app, session, &step.id, &step.client_id, After::Get).await {
            Ok(party) => party,
            Err(response) => return response,
        };
    // No remembered consent and no trusted-client skip: a code can be
    // phished (RFC 8628 §5.4), so the user always sees who asks for what.
    consent_page(
        app,
        (&client, &user),
        &step.scope,
        (&step.id, &step.csrf_token),
        None,
    )
}

/// `POST <step>`: checks the form and the throttle, asks the plugin what the
/// code stands for, keeps the answer as a transaction and sends the user on
/// to the consent page (through the login form when nobody is signed in).
async fn enter_code(
    app: &App,
    session: &Session,
    plugin: &PluginRef,
    request: &UserStepRequest<'_>,
) -> Response {
    let now = app.clock.now();
    let form = match session_form(app, session, request.headers, request.body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let user_code = match form.get("user_code") {
        Ok(Some(code)) => code.trim(),
        _ => "",
    };
    let step = request.step;
    if user_code.is_empty() || user_code.len() > MAX_USER_CODE_BYTES {
        let error = "Enter the code you were shown.";
        return entry_page(app, session, step, StatusCode::BAD_REQUEST, "", Some(error)).await;
    }
    let address = client_address(app, request.peer, request.headers);
    let throttle_key = match transaction::throttle_key(session).await {
        Ok(key) => key,
        Err(error) => {
            tracing::error!(%error, "session store error at a user step");
            return unavailable_page(app);
        }
    };
    let limiter = UserCodeLimiter::new(USER_CODE_LIMITS, app.store.clone());
    match limiter.check(&throttle_key, &address, now).await {
        Ok(()) => {}
        Err(Refusal::Throttled(throttled)) => {
            tracing::warn!(%address, %step, "user code entry throttled");
            let error = "Too many wrong codes. Wait a few minutes and try again.";
            let response = entry_page(
                app,
                session,
                step,
                StatusCode::TOO_MANY_REQUESTS,
                user_code,
                Some(error),
            )
            .await;
            return with_retry_after(response, throttled);
        }
        Err(Refusal::Store(error)) => {
            tracing::error!(%error, "store error at a user step");
            return unavailable_page(app);
        }
    }
    let entry = UserCodeEntry {
        step: step.to_owned(),
        user_code: user_code.to_owned(),
    };
    let pending = match plugin.find_user_code(&entry).await {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            if let Err(error) = limiter.record_failure(&throttle_key, &address, now).await {
                tracing::error!(%error, "store error while counting a wrong user code");
                return unavailable_page(app);
            }
            tracing::info!(%address, %step, "wrong user code");
            let error = "That code is not valid. Check it and try again.";
            let status = StatusCode::BAD_REQUEST;
            return entry_page(app, session, step, status, user_code, Some(error)).await;
        }
        Err(CallError::Refused(error)) => {
            let status = StatusCode::BAD_REQUEST;
            let error = described(&error);
            return entry_page(app, session, step, status, user_code, Some(&error)).await;
        }
        Err(CallError::Fault(_)) => return unavailable_page(app),
    };
    let client = match app.store.find_client(&pending.client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            tracing::warn!(plugin = %plugin.name(), client_id = %pending.client_id, "a user code stands for an unknown client");
            return page::error(
                app,
                StatusCode::BAD_REQUEST,
                "Unknown application",
                "The application this code is for is not registered here.",
            );
        }
        Err(error) => {
            tracing::error!(%error, "store error at a user step");
            return unavailable_page(app);
        }
    };
    if let Err(error) = scope::check_allowed(&pending.scope, &client.scopes) {
        tracing::warn!(plugin = %plugin.name(), client_id = %client.client_id, %error, "a user code asks for a scope outside the registration");
        return page::error(
            app,
            StatusCode::BAD_REQUEST,
            "Invalid request",
            &described(&error),
        );
    }
    let transaction = UserStepTransaction {
        id: secret::new_token(),
        csrf_token: secret::new_token(),
        expires_at: now + app.transaction_lifetime,
        step: step.to_owned(),
        plugin_name: plugin.name().to_owned(),
        plugin: plugin.fingerprint.clone(),
        client_id: client.client_id,
        scope: pending.scope,
        data: pending.data,
    };
    if let Err(error) = transaction::check_user_step_size(&transaction) {
        plugin.contract_fault(&error.to_string());
        return unavailable_page(app);
    }
    let id = transaction.id.clone();
    if let Err(error) = transaction::save(session, transaction, now).await {
        tracing::error!(%error, "session store error at a user step");
        return unavailable_page(app);
    }
    see_other(&format!("{step}?transaction_id={id}"), After::Post)
}

/// The code entry form, with its CSRF token bound to the session.
async fn entry_page(
    app: &App,
    session: &Session,
    step: &str,
    status: StatusCode,
    user_code: &str,
    error: Option<&str>,
) -> Response {
    let csrf_token = match transaction::csrf_token(session).await {
        Ok(token) => token,
        Err(error) => {
            tracing::error!(%error, "session store error at a user step");
            return unavailable_page(app);
        }
    };
    page::render(
        app,
        status,
        "user_code.html",
        context! { action => step, csrf_token, user_code, error },
    )
}

fn client_name(client: &Client) -> String {
    client
        .name
        .clone()
        .unwrap_or_else(|| client.client_id.clone())
}

/// What the user reads of an OAuth error: its description, else its code.
fn described(error: &OAuthError) -> String {
    error
        .description
        .clone()
        .unwrap_or_else(|| error.code.as_str().to_owned())
}
