//! The admin API's OpenAPI 3 document, derived from the code: each handler's
//! `#[utoipa::path]` (method, path, parameters, request and response types)
//! and each request and response type's `ToSchema`, gathered by [`AdminApi`];
//! what every operation shares (the admin bearer token, the error body and
//! its statuses) is added by [`SharedResponses`]. Tests keep it in step: every
//! route of `api::routes` is an operation here and the reverse, and
//! `docs/admin-openapi.json` equals what [`document`] makes.

use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::api;

/// The body of every refusal: `error`, its description, and the field at
/// fault when the input was invalid.
#[derive(serde::Serialize, ToSchema)]
pub struct ApiErrorBody {
    pub error: String,
    pub error_description: String,
    /// The invalid field (400 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Grantbox admin API",
        description = "The operator operations of grantbox over HTTP, on the admin listener (admin_listen). Every request needs an admin bearer token (grantbox admin token create); a Host other than admin_host or a loopback name, and an Origin other than the admin origin, are refused.",
    ),
    paths(
        super::metrics,
        api::openapi,
        super::list,
        super::reload,
        api::cluster_reload,
        api::client_list,
        api::client_add,
        api::client_show,
        api::client_update,
        api::client_remove,
        api::client_rotate_secret,
        api::token_revoke_client,
        api::user_list,
        api::user_add,
        api::user_show,
        api::user_remove,
        api::user_set_password,
        api::user_disable,
        api::user_enable,
        api::token_revoke_user,
        api::consent_list,
        api::consent_revoke,
        api::audit_list,
        api::admin_token_list,
        api::admin_token_create,
        api::admin_token_revoke,
    ),
    components(schemas(ApiErrorBody)),
    modifiers(&SharedResponses),
    security(("adminToken" = [])),
)]
pub struct AdminApi;

/// Adds what every operation shares: the admin token's security scheme,
/// and the refusals the guard and [`api::ApiError`] answer.
pub struct SharedResponses;

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "adminToken",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("ApiErrorBody"))),
                    )
                    .build(),
            )
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let takes_input = path.contains('{');
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let responses = &mut operation.responses.responses;
                let has_input = takes_input
                    || operation.request_body.is_some()
                    || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                if has_input {
                    responses.insert(
                        "400".to_owned(),
                        error("The input is invalid; `field` names it"),
                    );
                }
                responses.insert(
                    "401".to_owned(),
                    error("No admin token, or an unknown, revoked or expired one"),
                );
                responses.insert("403".to_owned(), error("A foreign Host or Origin"));
                if takes_input {
                    responses.insert(
                        "404".to_owned(),
                        error("No such client, user, consent or admin token"),
                    );
                }
            }
        }
    }
}

/// The OpenAPI 3 document of the admin listener.
pub fn document() -> Value {
    serde_json::to_value(AdminApi::openapi()).expect("the OpenAPI document serializes")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_route_of_the_admin_router_is_documented_and_every_documented_one_routed() {
        let routed: BTreeSet<(&str, &str)> = super::super::api::routes()
            .iter()
            .map(|(method, path, _)| (*method, *path))
            .collect();
        let document = document();
        let documented: BTreeSet<(String, String)> = document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                (item.as_object().unwrap().keys()).map(|method| (method.clone(), path.clone()))
            })
            .collect();
        assert_eq!(
            routed.len(),
            super::super::api::routes().len(),
            "a route twice"
        );
        let routed: BTreeSet<(String, String)> = (routed.into_iter())
            .map(|(method, path)| (method.to_owned(), path.to_owned()))
            .collect();
        assert_eq!(routed, documented);
    }

    /// `docs/admin-openapi.json` is what the code generates; `BLESS=1`
    /// rewrites it.
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/admin-openapi.json");
        let generated = format!("{}\n", serde_json::to_string_pretty(&document()).unwrap());
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} differs from the generated document; run BLESS=1 cargo test --workspace --lib -- the_committed_document_is_the_generated_one",
            path.display()
        );
    }
}
