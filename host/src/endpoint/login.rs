//! The built-in login (`GET/POST /login`, `POST /logout`): argon2 password
//! check off the async workers, a new session id on success, 303 after the
//! POST, CSRF tokens, and throttling per username and client address.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;
use tower_sessions::Session;

use super::page;
use super::transaction::{self, SessionUser, Stored};
use crate::app::App;
use crate::oauth::{ErrorCode, OAuthError, Params};
use crate::ratelimit::{Refusal, Throttled};

/// Why the signed-in user could not be read: the session or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum SignedInError {
    #[error("{0}")]
    Session(#[from] transaction::SessionError),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
}

/// The session's signed-in user, if they may still act. The user is read
/// from the store on every use, so that a user disabled or removed
/// (`grantbox user disable|remove`, on any instance sharing the database)
/// loses every session at its next request, with no list of sessions to
/// find; such a session is ended here. A user removed and added again under
/// the same name has a new subject, so the old session ends too.
pub async fn signed_in_user(
    app: &App,
    session: &Session,
) -> Result<Option<SessionUser>, SignedInError> {
    let Some(signed_in) = transaction::user(session).await? else {
        return Ok(None);
    };
    let user = app.store.find_user(&signed_in.username).await?;
    match user {
        Some(user) if user.subject == signed_in.subject && user.disabled_at.is_none() => {
            Ok(Some(signed_in))
        }
        _ => {
            tracing::info!(username = ?signed_in.username, "session of a disabled or removed user ended");
            transaction::sign_out(session).await?;
            Ok(None)
        }
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    transaction_id: Option<String>,
}

/// Where to go after signing in: back to the transaction (the authorization
/// request, or the user step it began at), never to a URL the request names
/// (no open redirect: a user step's path is one a manifest declared).
async fn next_location(app: &App, session: &Session, transaction_id: Option<&str>) -> String {
    let Some(id) = transaction_id.filter(|id| {
        !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) else {
        return "/login".to_owned();
    };
    match transaction::find_user_step(session, id, app.clock.now()).await {
        Ok(Some(step)) => format!("{}?transaction_id={id}", step.step),
        _ => format!("/authorize/continue?transaction_id={id}"),
    }
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The name of the client a transaction is for, and where it will redirect
/// (`None` for a user step: nothing is redirected to the client).
async fn transaction_client(
    app: &App,
    session: &Session,
    transaction_id: Option<&str>,
) -> Option<(String, Option<String>)> {
    let (client_id, redirect_uri) =
        match transaction::find_any(session, transaction_id?, app.clock.now())
            .await
            .ok()??
        {
            Stored::Authorization(t) => (t.client_id, Some(t.redirect_uri)),
            Stored::UserStep(t) => (t.client_id, None),
        };
    let client = app.store.find_client(&client_id).await.ok()??;
    Some((client.name.unwrap_or(client.client_id), redirect_uri))
}

/// The authorization transaction `transaction_id` names, if open.
async fn authorization(
    app: &App,
    session: &Session,
    transaction_id: Option<&str>,
) -> Option<transaction::Transaction> {
    transaction::find(session, transaction_id?, app.clock.now())
        .await
        .ok()?
}

async fn login_page(
    app: &App,
    session: &Session,
    status: StatusCode,
    transaction_id: Option<&str>,
    username: &str,
    error: Option<&str>,
) -> Response {
    let csrf_token = match transaction::csrf_token(session).await {
        Ok(token) => token,
        Err(e) => {
            tracing::error!(error = %e, "session store error");
            return page::error(
                app,
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Try again later.",
            );
        }
    };
    match transaction_client(app, session, transaction_id).await {
        // Signing in may lead straight on to the client (trusted, or consented before).
        Some((client_name, Some(redirect_uri))) => page::render_towards(
            app,
            status,
            "login.html",
            context! { csrf_token, transaction_id, username, error, client_name },
            &redirect_uri,
        ),
        Some((client_name, None)) => page::render(
            app,
            status,
            "login.html",
            context! { csrf_token, transaction_id, username, error, client_name },
        ),
        None => page::render(
            app,
            status,
            "login.html",
            context! { csrf_token, transaction_id, username, error },
        ),
    }
}

pub async fn login_form(
    State(app): State<App>,
    session: Session,
    Query(query): Query<LoginQuery>,
) -> Response {
    let transaction_id = query.transaction_id.as_deref();
    let request = authorization(&app, &session, transaction_id).await;
    // OIDC Core §3.1.2.1: `login_hint` pre-fills the username.
    let hint = request
        .as_ref()
        .and_then(|t| t.sign_in.login_hint.clone())
        .unwrap_or_default();
    match signed_in_user(&app, &session).await {
        // `prompt=login` or `max_age`: the signed-in user signs in again.
        Ok(Some(user)) if request.as_ref().is_some_and(|t| !t.sign_in_is_fresh(&user)) => {
            let username = if hint.is_empty() { user.username } else { hint };
            login_page(
                &app,
                &session,
                StatusCode::OK,
                transaction_id,
                &username,
                None,
            )
            .await
        }
        Ok(Some(_)) if transaction_id.is_some() => {
            see_other(&next_location(&app, &session, transaction_id).await)
        }
        Ok(Some(user)) => {
            let csrf_token = transaction::csrf_token(&session).await.unwrap_or_default();
            page::render(
                &app,
                StatusCode::OK,
                "signed_in.html",
                context! { username => user.username, csrf_token },
            )
        }
        _ => login_page(&app, &session, StatusCode::OK, transaction_id, &hint, None).await,
    }
}

pub async fn login(
    State(app): State<App>,
    session: Session,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = app.clock.now();
    let form = match session_form(&app, &session, &headers, &body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let field = |name: &str| form.get(name).ok().flatten().map(str::to_owned);
    let transaction_id = field("transaction_id");
    let username = field("username").unwrap_or_default();
    let password = field("password").unwrap_or_default();
    if username.is_empty() || password.is_empty() || username.len() > 255 || password.len() > 1024 {
        return login_page(
            &app,
            &session,
            StatusCode::BAD_REQUEST,
            transaction_id.as_deref(),
            &username,
            Some("Enter your username and password."),
        )
        .await;
    }
    let address = client_address(&app, peer, &headers);
    let limiter = &app.services.login_limiter;
    match limiter.check(&username, Some(&address), now).await {
        Ok(()) => {}
        Err(Refusal::Throttled(throttled)) => {
            tracing::warn!(%address, "login throttled");
            let response = login_page(
                &app,
                &session,
                StatusCode::TOO_MANY_REQUESTS,
                transaction_id.as_deref(),
                &username,
                Some("Too many failed attempts. Wait a few minutes and try again."),
            )
            .await;
            return with_retry_after(response, throttled);
        }
        Err(Refusal::Store(error)) => {
            tracing::error!(%error, "store error at login");
            return unavailable_page(&app);
        }
    }
    let user = match app.store.find_user(&username).await {
        Ok(user) => user,
        Err(error) => {
            tracing::error!(%error, "store error at login");
            return unavailable_page(&app);
        }
    };
    let checked = app.services.passwords.verify(user, password).await;
    if let Err(error) = limiter
        .record(&username, Some(&address), checked.is_some(), now)
        .await
    {
        tracing::error!(%error, "store error while counting a sign-in");
        return unavailable_page(&app);
    }
    let Some(user) = checked else {
        tracing::info!(%address, "login failed");
        return login_page(
            &app,
            &session,
            StatusCode::UNAUTHORIZED,
            transaction_id.as_deref(),
            &username,
            Some("The username or password is wrong."),
        )
        .await;
    };
    let signed_in = SessionUser {
        subject: user.subject,
        username: user.username,
        auth_time: now,
    };
    let signed_in = match transaction_id.as_deref() {
        Some(id) => match transaction::sign_in(&session, signed_in).await {
            Ok(()) => transaction::signed_in_for(&session, id).await,
            Err(error) => Err(error),
        },
        None => transaction::sign_in(&session, signed_in).await,
    };
    if let Err(error) = signed_in {
        tracing::error!(%error, "session store error at login");
        return page::error(
            &app,
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "Try again later.",
        );
    }
    see_other(&next_location(&app, &session, transaction_id.as_deref()).await)
}

pub async fn logout(
    State(app): State<App>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = session_form(&app, &session, &headers, &body).await {
        return response;
    }
    if let Err(error) = transaction::sign_out(&session).await {
        tracing::error!(%error, "session store error at logout");
    }
    see_other("/login")
}

pub(super) fn unavailable_page(app: &App) -> Response {
    page::error(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Try again later.",
    )
}

/// RFC 6585 §4: a throttled attempt is told when to come back.
pub(super) fn with_retry_after(mut response: Response, throttled: Throttled) -> Response {
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(throttled.retry_after.max(1) as u64),
    );
    response
}

/// The token endpoint's answer to a password check the throttle refused,
/// as the login page answers (429 and `Retry-After`), with an RFC 6749 §5.2
/// body. RFC 6749 has no code for throttling; `temporarily_unavailable` is
/// the nearest and what the password grant itself answers.
pub fn too_many_attempts(throttled: Throttled) -> Response {
    let error = OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        "too many failed sign-ins for this username from this address; retry later",
    );
    let mut response = super::json_error(&error);
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    with_retry_after(response, throttled)
}

/// The client's address for throttling: the peer, or behind a trusted proxy
/// the last `X-Forwarded-For` entry (the one that proxy appended). The token
/// endpoint counts the password grant's checks by the same address.
pub fn client_address(app: &App, peer: SocketAddr, headers: &HeaderMap) -> String {
    if app.trusted_proxies.contains(&peer.ip()) {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| v.parse::<std::net::IpAddr>().is_ok());
        if let Some(address) = forwarded {
            return address.to_owned();
        }
    }
    peer.ip().to_string()
}

/// A form of this server's own pages bound to the session: the login and
/// logout forms, and a user step's code entry. Malformed → 400 page; a
/// missing or wrong CSRF token → 403 page.
pub(super) async fn session_form(
    app: &App,
    session: &Session,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Params, Response> {
    let form = super::check_form_content_type(headers)
        .and_then(|()| Params::parse(body))
        .map_err(|_| {
            page::error(
                app,
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "The form is malformed.",
            )
        })?;
    let expected = transaction::csrf_token(session).await.unwrap_or_default();
    if !transaction::tokens_match(&expected, form.get("csrf_token").ok().flatten()) {
        return Err(page::error(
            app,
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form was not sent by this server's page. Reload it and try again.",
        ));
    }
    Ok(form)
}
