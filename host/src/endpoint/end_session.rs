//! OpenID Connect RP-Initiated Logout 1.0: `GET|POST /end_session`, where a
//! relying party sends the browser to end the user's session here, and
//! `POST /end_session/confirm`, the confirmation page's form. The session
//! ends at once only when the request is clearly from the signed-in user's
//! relying party (a valid `id_token_hint` for the signed-in subject); else
//! the user is asked. The browser goes back only to a
//! `post_logout_redirect_uri` registered for the client, matched exactly.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use minijinja::context;
use tower_sessions::Session;

use super::authorize::{After, see_other};
use super::login::{self, signed_in_user};
use super::page;
use super::transaction::{self, MAX_STATE_BYTES};
use crate::app::App;
use crate::oauth::redirect::{self, Delivery};
use crate::oauth::{OAuthError, Params};
use crate::plugin::ResponseMode;
use crate::store::Client;

/// The path of the endpoint (`end_session_endpoint` in discovery).
pub const END_SESSION_PATH: &str = "/end_session";
/// Where the confirmation page's form posts.
pub const CONFIRM_PATH: &str = "/end_session/confirm";

/// What a verified `id_token_hint` tells this endpoint: whom the ID token
/// was issued for, and to which clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    pub subject: String,
    pub audiences: Vec<String>,
    /// The authorized party, naming the client among several audiences.
    pub azp: Option<String>,
}

/// A logout request whose client and return were checked against the
/// registration: the client (if one is named), where to go afterwards (a
/// registered `post_logout_redirect_uri`), and the `state` to carry there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logout {
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

/// Why a logout request is refused: shown on an error page, never
/// redirected (the return address is not trusted until it matched).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogoutError {
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    InvalidHint(String),
    #[error("the id_token_hint was not issued to client {0:?}")]
    HintForAnotherClient(String),
    #[error("the id_token_hint names several clients; send client_id too")]
    HintAudienceUnclear,
    #[error("client {0:?} is not registered")]
    UnknownClient(String),
    #[error("post_logout_redirect_uri needs the client: send client_id or id_token_hint")]
    RedirectWithoutClient,
    #[error("post_logout_redirect_uri is not registered for client {0:?}")]
    UnregisteredRedirect(String),
    #[error("state is longer than {MAX_STATE_BYTES} bytes")]
    StateTooLong,
}

/// The client a logout request names (RP-Initiated Logout 1.0 §2): the
/// `aud` of the hint and/or `client_id`, which must agree. `None` when
/// neither is given.
pub fn requested_client(
    client_id: Option<&str>,
    hint: Option<&Hint>,
) -> Result<Option<String>, LogoutError> {
    match (client_id, hint) {
        (None, None) => Ok(None),
        (Some(client_id), None) => Ok(Some(client_id.to_owned())),
        (Some(client_id), Some(hint)) => {
            if hint.audiences.iter().any(|aud| aud == client_id) {
                Ok(Some(client_id.to_owned()))
            } else {
                Err(LogoutError::HintForAnotherClient(client_id.to_owned()))
            }
        }
        (None, Some(hint)) => match (hint.audiences.as_slice(), &hint.azp) {
            ([only], _) => Ok(Some(only.clone())),
            (many, Some(azp)) if many.contains(azp) => Ok(Some(azp.clone())),
            _ => Err(LogoutError::HintAudienceUnclear),
        },
    }
}

/// Checks the return address against the client's registration: an exact
/// string match with one of its `post_logout_redirect_uris`, and only with
/// a known client. `client` is the registration of the requested client.
pub fn checked_logout(
    client: Option<&Client>,
    post_logout_redirect_uri: Option<&str>,
    state: Option<&str>,
) -> Result<Logout, LogoutError> {
    if state.is_some_and(|state| state.len() > MAX_STATE_BYTES) {
        return Err(LogoutError::StateTooLong);
    }
    let post_logout_redirect_uri = match (post_logout_redirect_uri, client) {
        (None, _) => None,
        (Some(_), None) => return Err(LogoutError::RedirectWithoutClient),
        (Some(uri), Some(client)) => {
            if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return Err(LogoutError::UnregisteredRedirect(client.client_id.clone()));
            }
            Some(uri.to_owned())
        }
    };
    Ok(Logout {
        client_id: client.map(|c| c.client_id.clone()),
        post_logout_redirect_uri,
        state: state.map(str::to_owned),
    })
}

/// Whether the session may end without asking: the request carries a valid
/// hint for the signed-in subject, issued to the client it names.
pub fn clearly_from_the_relying_party(
    hint: Option<&Hint>,
    signed_in_subject: Option<&str>,
    logout: &Logout,
) -> bool {
    match (hint, signed_in_subject, &logout.client_id) {
        (Some(hint), Some(subject), Some(client_id)) => {
            hint.subject == subject && hint.audiences.iter().any(|aud| aud == client_id)
        }
        _ => false,
    }
}

/// `GET /end_session`: the parameters in the query.
pub async fn end_session_get(State(app): State<App>, session: Session, uri: Uri) -> Response {
    match Params::parse(uri.query().unwrap_or("").as_bytes()) {
        Ok(params) => end_session(app, session, params, After::Get).await,
        Err(error) => refused(&app, &LogoutError::Malformed(describe(&error))),
    }
}

/// `POST /end_session`: the parameters in a form body, none in the query.
pub async fn end_session_post(
    State(app): State<App>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    if uri.query().is_some_and(|q| !q.is_empty()) {
        return refused(
            &app,
            &LogoutError::Malformed(
                "Send the parameters either in the query or in the body, not both.".into(),
            ),
        );
    }
    let params = super::check_form_content_type(&headers).and_then(|()| Params::parse(&body));
    match params {
        Ok(params) => end_session(app, session, params, After::Post).await,
        Err(error) => refused(&app, &LogoutError::Malformed(describe(&error))),
    }
}

/// `POST /end_session/confirm`: the confirmation page's answer. Its fields
/// are checked again as a new request (the client and the exact return
/// address), behind the session's CSRF token.
pub async fn confirm(
    State(app): State<App>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match login::session_form(&app, &session, &headers, &body).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    if let Some(name) = form.first_repeated() {
        return refused(
            &app,
            &LogoutError::Malformed(format!("parameter {name} is repeated")),
        );
    }
    let field = |name: &str| form.get(name).ok().flatten();
    let client = match find_client(&app, field("client_id").map(str::to_owned)).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let logout = match checked_logout(
        client.as_ref(),
        field("post_logout_redirect_uri"),
        field("state"),
    ) {
        Ok(logout) => logout,
        Err(error) => return refused(&app, &error),
    };
    if field("sign_out").is_some() {
        return sign_out_and_leave(&app, &session, &logout, After::Post).await;
    }
    // "Stay signed in": back to the relying party as asked, or to the page
    // of the signed-in user, with the session as it was.
    match &logout.post_logout_redirect_uri {
        Some(_) => back_to_relying_party(&logout, After::Post),
        None => see_other("/login", After::Post),
    }
}

async fn end_session(app: App, session: Session, params: Params, after: After) -> Response {
    // RFC 6749 §3.1's rule for the authorization endpoint holds here too:
    // a repeated parameter is ambiguous, so it is refused.
    if let Some(name) = params.first_repeated() {
        return refused(
            &app,
            &LogoutError::Malformed(format!("parameter {name} is repeated")),
        );
    }
    let field = |name: &str| params.get(name).ok().flatten();
    // `logout_hint` and `ui_locales` (§2) are accepted and not used.
    let hint = match field("id_token_hint") {
        None => None,
        Some(token) => match verify_hint(&app, token) {
            Ok(hint) => Some(hint),
            Err(error) => return refused(&app, &error),
        },
    };
    let client_id = match requested_client(field("client_id"), hint.as_ref()) {
        Ok(client_id) => client_id,
        Err(error) => return refused(&app, &error),
    };
    let client = match find_client(&app, client_id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let logout = match checked_logout(
        client.as_ref(),
        field("post_logout_redirect_uri"),
        field("state"),
    ) {
        Ok(logout) => logout,
        Err(error) => return refused(&app, &error),
    };
    let user = match signed_in_user(&app, &session).await {
        Ok(user) => user,
        Err(error) => return super::authorize::unavailable(&app, &error),
    };
    let subject = user.as_ref().map(|user| user.subject.as_str());
    if clearly_from_the_relying_party(hint.as_ref(), subject, &logout) {
        return sign_out_and_leave(&app, &session, &logout, after).await;
    }
    let csrf_token = match transaction::csrf_token(&session).await {
        Ok(token) => token,
        Err(error) => return super::authorize::unavailable(&app, &error),
    };
    let client_name = client
        .as_ref()
        .map(|c| c.name.clone().unwrap_or_else(|| c.client_id.clone()));
    let context = context! {
        issuer => app.issuer.as_str(),
        client_name,
        username => user.map(|user| user.username),
        csrf_token,
        client_id => logout.client_id,
        post_logout_redirect_uri => logout.post_logout_redirect_uri,
        state => logout.state,
        action => CONFIRM_PATH,
    };
    match &logout.post_logout_redirect_uri {
        // Either button may end in the redirect: the form may go there.
        Some(uri) => page::render_towards(&app, StatusCode::OK, "end_session.html", context, uri),
        None => page::render(&app, StatusCode::OK, "end_session.html", context),
    }
}

/// Ends the session as `POST /logout` does (`transaction::sign_out`: the
/// signed-in user and the open transactions gone, the session id with
/// them), then goes back to the relying party or shows the signed-out page.
async fn sign_out_and_leave(
    app: &App,
    session: &Session,
    logout: &Logout,
    after: After,
) -> Response {
    if let Err(error) = transaction::sign_out(session).await {
        return super::authorize::unavailable(app, &error);
    }
    tracing::info!(client_id = ?logout.client_id, "session ended at the end_session endpoint");
    match &logout.post_logout_redirect_uri {
        Some(_) => back_to_relying_party(logout, after),
        None => page::render(
            app,
            StatusCode::OK,
            "signed_out.html",
            context! { issuer => app.issuer.as_str() },
        ),
    }
}

/// The redirect to the registered `post_logout_redirect_uri`, with `state`
/// when the relying party sent one (§3).
fn back_to_relying_party(logout: &Logout, after: After) -> Response {
    let Some(uri) = &logout.post_logout_redirect_uri else {
        return see_other("/login", after);
    };
    let params: Vec<(String, String)> = (logout.state.iter())
        .map(|state| ("state".to_owned(), state.clone()))
        .collect();
    match redirect::deliver(uri, ResponseMode::Query, &params) {
        Delivery::Redirect(location) => see_other(&location, after),
        Delivery::FormPost { .. } => see_other(uri, after),
    }
}

/// The registration of the named client; an unknown one is an error page.
async fn find_client(app: &App, client_id: Option<String>) -> Result<Option<Client>, Response> {
    let Some(client_id) = client_id else {
        return Ok(None);
    };
    match app.store.find_client(&client_id).await {
        Ok(Some(client)) => Ok(Some(client)),
        Ok(None) => Err(refused(app, &LogoutError::UnknownClient(client_id))),
        Err(error) => Err(super::authorize::unavailable(app, &error)),
    }
}

/// Checks an `id_token_hint` (`openid_hint`: signed by one of this server's
/// published keys, its issuer; an expired one taken, RP-Initiated Logout §2).
fn verify_hint(app: &App, token: &str) -> Result<Hint, LogoutError> {
    let hint =
        crate::openid_hint::verify_id_token_hint(&app.keys, &app.issuer, token, app.clock.now())
            .map_err(|error| LogoutError::InvalidHint(error.to_string()))?;
    Ok(Hint {
        subject: hint.sub,
        audiences: hint.aud,
        azp: hint.azp,
    })
}

fn describe(error: &OAuthError) -> String {
    error
        .description
        .clone()
        .unwrap_or_else(|| "The request is malformed.".to_owned())
}

/// The error page of a refused logout request: 400, never a redirect.
fn refused(app: &App, error: &LogoutError) -> Response {
    page::error(
        app,
        StatusCode::BAD_REQUEST,
        "Cannot sign out",
        &error.to_string(),
    )
}

#[cfg(test)]
mod tests;
