//! HTML responses: every page carries anti-framing, no-referrer and a strict
//! Content-Security-Policy; the form_post page also allows its one script and
//! a form action to the client's origin.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use crate::app::App;

/// Headers every HTML page carries (RFC 9700 §4.16, §4.2.4).
fn secure(mut response: Response, csp: &str) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Renders a template into a page with the standard headers.
pub fn render(
    app: &App,
    status: StatusCode,
    template: &str,
    context: minijinja::Value,
) -> Response {
    render_with_csp(app, status, template, context, CSP)
}

/// A page whose form may end in a redirect to the client (consent, and login
/// within a transaction): browsers check `form-action` against every
/// redirect that follows the submit, so the client's redirect URI is allowed too.
pub fn render_towards(
    app: &App,
    status: StatusCode,
    template: &str,
    context: minijinja::Value,
    redirect_uri: &str,
) -> Response {
    let csp = CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {}", form_action_source(redirect_uri)),
    );
    render_with_csp(app, status, template, context, &csp)
}

/// The CSP source that allows a redirect URI: its origin for http(s), its
/// scheme for a native app's private-use scheme (RFC 8252 §7.1).
fn form_action_source(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url.origin().ascii_serialization(),
        Ok(url) => format!("{}:", url.scheme()),
        Err(_) => "'none'".to_owned(),
    }
}

fn render_with_csp(
    app: &App,
    status: StatusCode,
    template: &str,
    context: minijinja::Value,
    csp: &str,
) -> Response {
    match app.ui.render(template, context) {
        Ok(html) => secure((status, html).into_response(), csp),
        Err(error) => {
            tracing::error!(%error, "cannot render a page");
            secure(
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
                CSP,
            )
        }
    }
}

/// The error page for what must not be redirected (unknown client, bad
/// redirect URI, lost transaction).
pub fn error(app: &App, status: StatusCode, title: &str, message: &str) -> Response {
    render(app, status, "error.html", context! { title, message })
}

/// The auto-submitting form of the form_post response mode.
pub fn form_post(app: &App, action: &str, params: &[(String, String)]) -> Response {
    let csp = format!(
        "default-src 'none'; style-src 'self'; script-src {}; form-action {}; frame-ancestors 'none'; base-uri 'none'",
        app.ui.form_post_script_hash,
        form_action_source(action),
    );
    render_with_csp(
        app,
        StatusCode::OK,
        "form_post.html",
        context! { action, params },
        &csp,
    )
}

/// `GET /static/grantbox.css`.
pub async fn stylesheet(axum::extract::State(app): axum::extract::State<App>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        app.ui.css.clone(),
    )
        .into_response()
}
