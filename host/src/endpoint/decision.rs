//! After the authorization request is valid and the user is signed in: the
//! consent page (which a plugin's user step shows too), the decision
//! endpoint (`POST /authorize/decision`, handing a user step's decision to
//! `user_step`), the return from the login form (`GET /authorize/continue`),
//! and the grant plugin's response once the request is approved.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;
use tower_sessions::Session;

use super::authorize::{After, bad_request, finish, redirect_error, see_other, unavailable};
use super::page;
use super::token::client_view;
use super::transaction::{self, SessionUser, Stored, Transaction};
use crate::app::App;
use crate::oauth::redirect;
use crate::oauth::{ErrorCode, OAuthError, Params};
use crate::openid::claims;
use crate::openid::request::{
    asks_offline_access, consent_required, interaction_required, login_required,
};
use crate::openid_hint::verify_id_token_hint;
use crate::plugin::{
    AuthorizationApproval, CallError, Registry, TokenTarget, TransactionPluginError,
};
use crate::secret;
use crate::store::Client;

/// What the signed-in user must still do before a request is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interaction {
    /// Sign in again: `prompt=login`, or a sign-in older than `max_age`.
    SignIn,
    /// Consent: not remembered for this scope and the client not trusted,
    /// `prompt=consent`, or `offline_access` in an `openid` request.
    Consent,
    /// Confirm on the consent page although consent is remembered: a public
    /// client's native-app redirect URI (RFC 8252 §8.6).
    Confirmation,
}

/// Whether `user` may approve the transaction without a page, or which
/// page is needed first.
async fn interaction_needed(
    app: &App,
    transaction: &Transaction,
    (client, user): (&Client, &SessionUser),
) -> Result<Option<Interaction>, Response> {
    if !transaction.sign_in_is_fresh(user) {
        return Ok(Some(Interaction::SignIn));
    }
    let remembered = match app
        .store
        .find_consent(&user.subject, &client.client_id)
        .await
    {
        Ok(consent) => {
            consent.is_some_and(|granted| transaction.scope.iter().all(|s| granted.contains(s)))
        }
        Err(error) => return Err(unavailable(app, &error)),
    };
    // OIDC Core §11: a refresh token for use while the user is away needs
    // the user's consent each time it is asked for, whatever was remembered;
    // a trusted client (the operator vouched for it) is the "other
    // condition" §11 allows.
    let remembered = remembered && !asks_offline_access(&transaction.scope);
    let prompt_consent = transaction.sign_in.prompt_consent;
    if prompt_consent || !(client.trusted || remembered) {
        return Ok(Some(Interaction::Consent));
    }
    // RFC 8252 §8.6: any app on the device can receive a redirect to
    // loopback or a private-use scheme and use a public client's id, so
    // neither the trusted flag nor a remembered consent answers for the
    // user there (node-oidc-provider's `native_client_prompt`).
    if client.public && redirect::is_native_app_uri(&transaction.redirect_uri) {
        return Ok(Some(Interaction::Confirmation));
    }
    Ok(None)
}

/// With a signed-in user: approve at once when the client is trusted or the
/// user already consented to this scope, else ask; a sign-in too old for
/// the request (`prompt=login`, `max_age`) goes back to the sign-in page.
pub(super) async fn proceed(
    app: &App,
    registry: &Registry,
    session: &Session,
    transaction: Transaction,
    (client, user): (&Client, &SessionUser),
    after: After,
) -> Response {
    match interaction_needed(app, &transaction, (client, user)).await {
        Err(response) => response,
        Ok(None) => approve(app, registry, session, transaction, (client, user), after).await,
        Ok(Some(Interaction::SignIn)) => {
            see_other(&format!("/login?transaction_id={}", transaction.id), after)
        }
        Ok(Some(Interaction::Consent | Interaction::Confirmation)) => consent_page(
            app,
            (client, user),
            &transaction.scope,
            (&transaction.id, &transaction.csrf_token),
            Some(&transaction.redirect_uri),
        ),
    }
}

/// `prompt=none` (OIDC Core §3.1.2.1): approve at once or answer the
/// client with `login_required`, `consent_required` or
/// `interaction_required`; never a page. An `id_token_hint` must be an ID
/// token this server issued to the client for the signed-in user.
pub(super) async fn without_interaction(
    app: &App,
    registry: &Registry,
    session: &Session,
    transaction: Transaction,
    (client, user): (&Client, Option<&SessionUser>),
    id_token_hint: Option<&str>,
    after: After,
) -> Response {
    let refuse = |error| redirect_error(app, &transaction, error, after);
    let Some(user) = user else {
        return refuse(login_required("no user is signed in"));
    };
    if let Some(hint) = id_token_hint {
        let now = app.clock.now();
        let matches = match verify_id_token_hint(&app.keys, &app.issuer, hint, now) {
            Ok(hint) => hint.issued_to(&client.client_id) && hint.sub == user.subject,
            Err(error) => {
                tracing::info!(client_id = %client.client_id, %error, "id_token_hint refused");
                false
            }
        };
        if !matches {
            return refuse(login_required(
                "the id_token_hint does not name the signed-in user",
            ));
        }
    }
    match interaction_needed(app, &transaction, (client, user)).await {
        Err(response) => response,
        Ok(None) => approve(app, registry, session, transaction, (client, user), after).await,
        Ok(Some(Interaction::SignIn)) => {
            refuse(login_required("the request asks for a more recent sign-in"))
        }
        Ok(Some(Interaction::Consent)) => refuse(consent_required(
            "the user has not consented to this request",
        )),
        Ok(Some(Interaction::Confirmation)) => refuse(interaction_required(
            "the user confirms every request of this native application",
        )),
    }
}

/// The consent page (client name, scopes, the signed-in user) whose form
/// posts to `/authorize/decision` with the transaction's id and CSRF token.
/// `redirect_uri` is where an authorization request's answer goes; a user
/// step has none, and its page then allows no form action but this server.
pub(super) fn consent_page(
    app: &App,
    (client, user): (&Client, &SessionUser),
    scope: &[String],
    (transaction_id, csrf_token): (&str, &str),
    redirect_uri: Option<&str>,
) -> Response {
    let redirect_host = redirect_uri
        .and_then(|uri| url::Url::parse(uri).ok())
        .map(|u| {
            u.host_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}:", u.scheme()))
        })
        .unwrap_or_default();
    let context = context! {
        client_name => client.name.clone().unwrap_or_else(|| client.client_id.clone()),
        client_id => client.client_id,
        client_uri => client.client_uri,
        username => user.username,
        scopes => scope
            .iter()
            .map(|scope| {
                (
                    scope.clone(),
                    app.scope_descriptions.get(scope).cloned(),
                    // What an OpenID Connect scope reveals (OIDC Core §5.4).
                    claims::scope_labels(scope),
                )
            })
            .collect::<Vec<_>>(),
        redirect_host,
        transaction_id,
        csrf_token,
    };
    match redirect_uri {
        Some(redirect_uri) => {
            page::render_towards(app, StatusCode::OK, "consent.html", context, redirect_uri)
        }
        None => page::render(app, StatusCode::OK, "consent.html", context),
    }
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
    let mut target = TokenTarget::for_client(client, transaction.resources.clone());
    target.code_dpop_jkt = transaction.dpop_jkt.clone();
    let authentication = transaction.authentication(user);
    let (params, issued) = match plugin
        .authorize_response(&approval, target, Some(&authentication))
        .await
    {
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
    match signed_in_party(
        &app,
        &session,
        &transaction.id,
        &transaction.client_id,
        After::Get,
    )
    .await
    {
        Ok((user, client)) => {
            let party = (&client, &user);
            proceed(&app, &registry, &session, transaction, party, After::Get).await
        }
        Err(response) => response,
    }
}

/// The signed-in user and the client of transaction `transaction_id` (an
/// authorization request or a user step), or the response to send instead:
/// the login page when nobody is signed in (it comes back to the
/// transaction), an error page when the client is gone.
pub(super) async fn signed_in_party(
    app: &App,
    session: &Session,
    transaction_id: &str,
    client_id: &str,
    after: After,
) -> Result<(SessionUser, Client), Response> {
    let user = match super::login::signed_in_user(app, session).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return Err(see_other(
                &format!("/login?transaction_id={transaction_id}"),
                after,
            ));
        }
        Err(error) => return Err(unavailable(app, &error)),
    };
    match app.store.find_client(client_id).await {
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
    // The consent page of a user step posts here too, so that an operator's
    // consent template serves both.
    let transaction = match transaction::find_any(&session, id, now).await {
        Ok(Some(Stored::Authorization(transaction))) => transaction,
        Ok(Some(Stored::UserStep(step))) => {
            return super::user_step::decide(&app, &registry, &session, step, &form).await;
        }
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
    let (user, client) = match signed_in_party(
        &app,
        &session,
        &transaction.id,
        &transaction.client_id,
        After::Post,
    )
    .await
    {
        Ok(party) => party,
        Err(response) => return response,
    };
    // The consent page is shown only after a fresh enough sign-in; a form
    // posted without one (another user signed in since) signs in first.
    if !transaction.sign_in_is_fresh(&user) && !form.contains("cancel") {
        return see_other(
            &format!("/login?transaction_id={}", transaction.id),
            After::Post,
        );
    }
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

pub(super) fn lost_transaction(app: &App) -> Response {
    page::error(
        app,
        StatusCode::FORBIDDEN,
        "Request expired",
        "This authorization request has expired or was already answered. Go back to the application and start again.",
    )
}
