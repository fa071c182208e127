//! The router's fallback: requests to the paths plugins declare in their
//! manifests. A `POST` to a plugin endpoint gets what `POST /token` gets
//! (form media type, body limit, strict decoding, no repeated parameter but
//! the manifest's `repeatable_parameters`, client authentication unless the
//! manifest turns it off), then the plugin's answer as JSON that is never
//! cached. Which plugin serves a path is read from the request's registry
//! snapshot, so a reload swaps the routes with the plugins. `GET` and `POST`
//! to a user step go to `user_step.rs`. Every other path is 404, as without
//! the fallback.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::token::client_view;
use super::{
    authenticated_form_with_repeats, check_form_content_type, json_error, refuse_repeated,
};
use crate::app::App;
use crate::oauth::client_auth::CREDENTIAL_PARAMS;
use crate::oauth::{OAuthError, Params};
use crate::plugin::manifest::EndpointDecl;
use crate::plugin::{CallError, EndpointRequest, EndpointResponse, PluginRef, TokenTarget};

/// The fallback handler: a plugin endpoint, a user step, or 404.
pub async fn route(State(app): State<App>, request: Request) -> Response {
    let registry = app.registry();
    if let Some(plugin) = registry.user_step(request.uri().path()) {
        return super::user_step::handle(&app, plugin, request).await;
    }
    let Some((plugin, declared)) = registry.endpoint(request.uri().path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if request.method() != Method::POST {
        let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
        (response.headers_mut()).insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    // Client credentials and parameters travel only in the body, as at the
    // token endpoint (RFC 6749 §2.3.1, RFC 9700 §4.3).
    if let Err(error) = super::refuse_query(request.uri()) {
        return json_error(&error);
    }
    let headers = request.headers().clone();
    // Honours the server's body limit (413), as the token endpoint's `Bytes` does.
    let body = match Bytes::from_request(request, &app).await {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    match call(&app, plugin, declared, &headers, &body).await {
        Ok(response) => endpoint_response(response),
        Err(error) => json_error(&error),
    }
}

async fn call(
    app: &App,
    plugin: &PluginRef,
    declared: &EndpointDecl,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<EndpointResponse, OAuthError> {
    let (client, params) = if declared.authenticate_client {
        let (client, params) = authenticated_form_with_repeats(app, headers, body).await?;
        (Some(client), params)
    } else {
        check_form_content_type(headers)?;
        (None, Params::parse(body)?)
    };
    refuse_repeated(&params, &plugin.manifest.repeatable_parameters)?;
    let target = match &client {
        Some(client) => TokenTarget::for_client(client, Vec::new()),
        None => TokenTarget::default(),
    };
    let request = EndpointRequest {
        path: declared.path.clone(),
        client: client.as_deref().map(client_view),
        // Credentials are the host's business, whether it checked them or not.
        params: params.without(CREDENTIAL_PARAMS),
        issuer: app.issuer.clone(),
    };
    plugin
        .endpoint_from(&request, target)
        .await
        .map_err(|error| match error {
            CallError::Refused(error) => error,
            CallError::Fault(_) => OAuthError::server_error(),
        })
}

/// The plugin's status and JSON object (both checked by the runtime), never cached.
fn endpoint_response(response: EndpointResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let json = [(header::CONTENT_TYPE, "application/json")];
    super::no_store((status, json, response.body).into_response())
}

#[cfg(test)]
mod tests {
    use crate::plugin::manifest::is_host_path;

    /// A plugin path may not shadow a route of the server: every route
    /// `app.rs` declares must be one the manifest refuses.
    #[test]
    fn every_route_of_the_server_is_refused_to_plugins() {
        let source = include_str!("../app.rs");
        let routes: Vec<&str> = source
            .split(".route(\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        // The public listener's routes; the admin listener's are in
        // `endpoint/admin/api.rs`, on a listener plugins never reach.
        assert!(routes.len() >= 12, "{routes:?}");
        for route in routes {
            assert!(
                is_host_path(route),
                "{route} is routed by the server but a plugin may declare it (HOST_PATHS)"
            );
        }
    }
}
