//! The admin API's OpenAPI 3 document, generated from [`OPERATIONS`], a table
//! in code beside the routes (`utoipa` is not available to this build, so
//! the document is built from the table rather than derived). Tests keep it
//! in step: every route of `api::routes` has an operation here and the
//! reverse, and `docs/admin-openapi.json` equals what [`document`] makes.

use serde_json::{Map, Value, json};

/// One operation of the admin API as documented.
pub struct Operation {
    /// Lowercase HTTP method, as in `api::routes`.
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Query parameters: name, JSON type, description.
    pub query: &'static [(&'static str, &'static str, &'static str)],
    /// The JSON request body's fields: name, JSON type, description.
    pub body: &'static [(&'static str, &'static str, &'static str)],
    /// What a success answers.
    pub response: &'static str,
}

const CLIENT_UPDATE: &[(&str, &str, &str)] = &[
    ("redirect_uris", "array", "replaces the redirection URIs"),
    ("grant_types", "array", "replaces the grant types"),
    ("scopes", "array", "replaces the scopes"),
    (
        "client_name",
        "string",
        "the name on the consent page (empty: none)",
    ),
    (
        "client_uri",
        "string",
        "the page about the client (empty: none)",
    ),
    ("trusted", "boolean", "skip the consent page"),
    (
        "introspection",
        "boolean",
        "may introspect other clients' tokens",
    ),
    ("resources", "array", "replaces the resources"),
    ("access_token_format", "string", "`opaque` or `jwt`"),
    (
        "token_endpoint_auth_method",
        "string",
        "RFC 7591 client authentication method",
    ),
    (
        "jwks",
        "string",
        "the JWK Set (JSON text) for private_key_jwt",
    ),
    (
        "post_logout_redirect_uris",
        "array",
        "replaces the post-logout redirect URIs (OpenID Connect RP-Initiated Logout)",
    ),
];

const CLIENT_ADD: &[(&str, &str, &str)] = &[
    ("client_id", "string", "the client identifier"),
    ("redirect_uris", "array", "the redirection URIs"),
    ("grant_types", "array", "RFC 7591 grant types"),
    ("scopes", "array", "the scopes the client may request"),
    (
        "public",
        "boolean",
        "a public client (no secret, PKCE required)",
    ),
    ("trusted", "boolean", "skip the consent page"),
    (
        "introspection",
        "boolean",
        "may introspect other clients' tokens",
    ),
    ("client_name", "string", "the name on the consent page"),
    (
        "client_secret",
        "string",
        "the operator's own secret (at least 32 characters) instead of a generated one",
    ),
    ("client_uri", "string", "the page about the client"),
    (
        "token_endpoint_auth_method",
        "string",
        "RFC 7591 client authentication method",
    ),
    (
        "jwks",
        "string",
        "the JWK Set (JSON text) for private_key_jwt",
    ),
    ("resources", "array", "RFC 8707 resources"),
    ("access_token_format", "string", "`opaque` or `jwt`"),
];

/// Every operation of the admin listener, in the order of `api::routes`.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/metrics",
        summary: "The Prometheus metrics (text)",
        query: &[],
        body: &[],
        response: "Prometheus text exposition format",
    },
    Operation {
        method: "get",
        path: "/admin/openapi.json",
        summary: "This document",
        query: &[],
        body: &[],
        response: "the OpenAPI 3 document",
    },
    Operation {
        method: "get",
        path: "/admin/plugins",
        summary: "The plugins serving now",
        query: &[],
        body: &[],
        response: "{plugins: [{name, version, sha256, source, grant_types, response_types, endpoints, user_steps}]}",
    },
    Operation {
        method: "post",
        path: "/admin/plugins/reload",
        summary: "Load the plugin directory again; 422 with the reason when the new set is refused (the old set keeps serving)",
        query: &[],
        body: &[],
        response: "{reloaded: true, plugins: [...]}",
    },
    Operation {
        method: "post",
        path: "/admin/cluster/reload",
        summary: "Ask every live instance on the database to reload its own plugin directory and report each outcome (on SQLite: this instance)",
        query: &[(
            "timeout_seconds",
            "integer",
            "seconds to wait for every instance's outcome (default 30, at most 300)",
        )],
        body: &[],
        response: "{request_id, reloaded, instances: [{instance_id, address, answered, ok, plugins, error}]}",
    },
    Operation {
        method: "get",
        path: "/admin/clients",
        summary: "List clients (never a secret)",
        query: &[
            (
                "grant_type",
                "string",
                "only clients registered for this grant type",
            ),
            (
                "public",
                "boolean",
                "only public (true) or confidential (false) clients",
            ),
        ],
        body: &[],
        response: "an array of clients",
    },
    Operation {
        method: "post",
        path: "/admin/clients",
        summary: "Register a client (the checks of client add); a generated secret is returned once",
        query: &[],
        body: CLIENT_ADD,
        response: "the client, with client_secret when one was generated",
    },
    Operation {
        method: "get",
        path: "/admin/clients/{client_id}",
        summary: "Show one client (never its secret)",
        query: &[],
        body: &[],
        response: "a client",
    },
    Operation {
        method: "patch",
        path: "/admin/clients/{client_id}",
        summary: "Change a client's registration (the checks of client add); each field present replaces what is registered",
        query: &[],
        body: CLIENT_UPDATE,
        response: "the client as it now is",
    },
    Operation {
        method: "delete",
        path: "/admin/clients/{client_id}",
        summary: "Remove a client and revoke every token and refresh family it holds",
        query: &[],
        body: &[],
        response: "{client_id, tokens_revoked}",
    },
    Operation {
        method: "post",
        path: "/admin/clients/{client_id}/rotate-secret",
        summary: "Give a confidential client a new secret, returned once",
        query: &[],
        body: &[(
            "grace_seconds",
            "integer",
            "seconds the previous secret stays valid (default 0)",
        )],
        response: "{client_id, client_secret, previous_secret_expires_at}",
    },
    Operation {
        method: "post",
        path: "/admin/clients/{client_id}/revoke-tokens",
        summary: "Kill switch: revoke every token and refresh family the client holds",
        query: &[],
        body: &[],
        response: "{target, tokens_revoked}",
    },
    Operation {
        method: "get",
        path: "/admin/users",
        summary: "List users (never a password hash)",
        query: &[],
        body: &[],
        response: "an array of users",
    },
    Operation {
        method: "post",
        path: "/admin/users",
        summary: "Add a user (the rules of user add); the password is stored only as its hash, never logged or audited",
        query: &[],
        body: &[
            ("username", "string", "1 to 128 characters"),
            ("password", "string", "at least 8 characters"),
            (
                "claims",
                "array",
                "OpenID Connect claims, `name=value` each",
            ),
        ],
        response: "the user",
    },
    Operation {
        method: "get",
        path: "/admin/users/{username}",
        summary: "Show one user",
        query: &[],
        body: &[],
        response: "a user",
    },
    Operation {
        method: "delete",
        path: "/admin/users/{username}",
        summary: "Remove a user and their consents, revoking every token they hold",
        query: &[],
        body: &[],
        response: "{target, tokens_revoked}",
    },
    Operation {
        method: "put",
        path: "/admin/users/{username}/password",
        summary: "Set a user's password (the rules of user add)",
        query: &[],
        body: &[("password", "string", "the new password")],
        response: "the user",
    },
    Operation {
        method: "post",
        path: "/admin/users/{username}/disable",
        summary: "Disable a user: no sign-in, every token revoked, sessions ended",
        query: &[],
        body: &[],
        response: "{target, tokens_revoked}",
    },
    Operation {
        method: "post",
        path: "/admin/users/{username}/enable",
        summary: "Let a disabled user sign in again",
        query: &[],
        body: &[],
        response: "the user",
    },
    Operation {
        method: "post",
        path: "/admin/users/{username}/revoke-tokens",
        summary: "Kill switch: revoke every token and refresh family the user holds",
        query: &[],
        body: &[],
        response: "{target, tokens_revoked}",
    },
    Operation {
        method: "get",
        path: "/admin/users/{username}/consents",
        summary: "The clients a user approved, with the scope of each",
        query: &[],
        body: &[],
        response: "an array of consents",
    },
    Operation {
        method: "delete",
        path: "/admin/users/{username}/consents/{client_id}",
        summary: "Forget a user's consent for a client",
        query: &[],
        body: &[],
        response: "the consent that was removed",
    },
    Operation {
        method: "get",
        path: "/admin/audit",
        summary: "The audit trail of operator changes, oldest first",
        query: &[
            (
                "since",
                "integer",
                "records at or after this time (Unix seconds)",
            ),
            (
                "until",
                "integer",
                "records before this time (Unix seconds)",
            ),
            (
                "actor",
                "string",
                "records by this actor (cli, admin-token:ID, registration:CLIENT_ID)",
            ),
            ("limit", "integer", "at most this many, the latest"),
        ],
        body: &[],
        response: "an array of audit records",
    },
    Operation {
        method: "get",
        path: "/admin/tokens",
        summary: "List admin tokens (never a token or its hash)",
        query: &[],
        body: &[],
        response: "an array of admin tokens",
    },
    Operation {
        method: "post",
        path: "/admin/tokens",
        summary: "Create an admin token, returned once",
        query: &[],
        body: &[
            ("name", "string", "who holds the token, what for"),
            (
                "expires_in",
                "integer",
                "seconds until it expires (default: never)",
            ),
        ],
        response: "{id, name, token, expires_at}",
    },
    Operation {
        method: "delete",
        path: "/admin/tokens/{id}",
        summary: "Revoke an admin token",
        query: &[],
        body: &[],
        response: "the admin token, revoked",
    },
];

/// The OpenAPI 3 document of the admin listener.
pub fn document() -> Value {
    let mut paths = Map::new();
    for operation in OPERATIONS {
        let mut parameters: Vec<Value> = path_parameters(operation.path)
            .map(|name| {
                json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } })
            })
            .collect();
        parameters.extend(operation.query.iter().map(|(name, kind, description)| {
            json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": kind } })
        }));
        let mut entry = json!({
            "summary": operation.summary,
            "operationId": operation_id(operation),
            "parameters": parameters,
            "responses": {
                "200": { "description": operation.response },
                "400": { "$ref": "#/components/responses/Invalid" },
                "401": { "$ref": "#/components/responses/Unauthorized" },
                "403": { "$ref": "#/components/responses/Forbidden" },
                "404": { "$ref": "#/components/responses/NotFound" },
            },
        });
        if !operation.body.is_empty() {
            let properties: Map<String, Value> = (operation.body.iter())
                .map(|(name, kind, description)| {
                    let mut schema = json!({ "type": kind, "description": description });
                    if *kind == "array" {
                        schema["items"] = json!({ "type": "string" });
                    }
                    (name.to_string(), schema)
                })
                .collect();
            entry["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "properties": properties,
                } } },
            });
        }
        let item = paths
            .entry(operation.path.to_owned())
            .or_insert_with(|| json!({}));
        item[operation.method] = entry;
    }
    let error = json!({ "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let with = |description: &str| {
        let mut response = error.clone();
        response["description"] = json!(description);
        response
    };
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Grantbox admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The operator operations of grantbox over HTTP, on the admin listener (admin_listen). Every request needs an admin bearer token (grantbox admin token create); a Host other than admin_host or a loopback name, and an Origin other than the admin origin, are refused.",
        },
        "security": [{ "adminToken": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "adminToken": { "type": "http", "scheme": "bearer" } },
            "schemas": { "Error": {
                "type": "object",
                "properties": {
                    "error": { "type": "string" },
                    "error_description": { "type": "string" },
                    "field": { "type": "string", "description": "the invalid field (400 only)" },
                },
                "required": ["error", "error_description"],
            } },
            "responses": {
                "Invalid": with("the input is invalid; `field` names it"),
                "Unauthorized": with("no admin token, or an unknown, revoked or expired one"),
                "Forbidden": with("a foreign Host or Origin"),
                "NotFound": with("no such client, user, consent or admin token"),
            },
        },
    })
}

/// `{name}` segments of a route path, in order.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

/// `get /admin/users/{username}/consents` → `get_admin_users_username_consents`.
fn operation_id(operation: &Operation) -> String {
    let words: Vec<String> = operation
        .path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect();
    format!("{}_{}", operation.method, words.join("_"))
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
        let documented: BTreeSet<(&str, &str)> = OPERATIONS
            .iter()
            .map(|operation| (operation.method, operation.path))
            .collect();
        assert_eq!(
            routed.len(),
            super::super::api::routes().len(),
            "a route twice"
        );
        assert_eq!(documented.len(), OPERATIONS.len(), "an operation twice");
        assert_eq!(routed, documented);
        let document = document();
        for (method, path) in routed {
            assert!(
                document["paths"][path][method].is_object(),
                "{method} {path} is missing from the document"
            );
        }
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
