//! `GET /.well-known/oauth-authorization-server` (RFC 8414): the server's
//! metadata, built from the issuer, the loaded plugins (with the metadata
//! keys of their endpoints), the registered clients' scopes and, when
//! dynamic client registration is open, its endpoint.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app::App;
use crate::oauth::client_assertion;
use crate::plugin::Registry;

/// Client authentication methods of the token and revocation endpoints;
/// `none` is a public client's bare `client_id`.
const AUTH_METHODS: [&str; 5] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "client_secret_jwt",
    "none",
];

/// Introspection refuses public clients, so `none` is not offered there.
const INTROSPECTION_AUTH_METHODS: [&str; 4] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "client_secret_jwt",
];

/// The RFC 8414 §2 document.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    /// The JWK Set of the keys that sign JWTs (`/jwks`).
    pub jwks_uri: String,
    pub grant_types_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub response_modes_supported: [&'static str; 3],
    /// Only when a plugin issues authorization codes (RFC 7636); `plain`
    /// only when that plugin's `[config] allow_plain` is true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<&'static str>>,
    pub token_endpoint_auth_methods_supported: [&'static str; 5],
    pub introspection_endpoint_auth_methods_supported: [&'static str; 4],
    pub revocation_endpoint_auth_methods_supported: [&'static str; 5],
    /// The JWS algorithms verified in `private_key_jwt` assertions (RFC 8414
    /// §2), the same at all three endpoints.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// Omitted when the store cannot list the clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// RFC 9207: authorization responses carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 7591 `POST /register`: only while `[registration] enabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// Plugin endpoints by the metadata key their manifest names: the issuer
    /// followed by the path. The manifest refuses the keys above, so none is
    /// written twice.
    #[serde(flatten)]
    pub plugin_endpoints: BTreeMap<String, String>,
}

pub async fn metadata(State(app): State<App>) -> Response {
    let registry = app.registry();
    let scopes = match app.store.list_clients().await {
        Ok(clients) => Some(
            clients
                .iter()
                .flat_map(|client| client.scopes.iter().cloned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        ),
        Err(error) => {
            tracing::error!(%error, "store error while listing scopes for the metadata document");
            None
        }
    };
    let mut document = build(&app.issuer, &registry, scopes);
    if app.registration.enabled {
        document.registration_endpoint = Some(format!(
            "{}{}",
            app.issuer,
            crate::endpoint::registration::REGISTRATION_PATH
        ));
    }
    let mut response = (StatusCode::OK, axum::Json(document)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    response
}

/// The document for an issuer (without trailing slash) and a plugin set.
pub fn build(issuer: &str, registry: &Registry, scopes: Option<Vec<String>>) -> Metadata {
    let response_types: Vec<String> = registry.response_types().map(str::to_owned).collect();
    // Any response type that returns a code (`code`, `code id_token`, ...)
    // takes PKCE at the token endpoint.
    let issues_codes = response_types
        .iter()
        .any(|t| t.split(' ').any(|word| word == "code"));
    // RFC 8414 §2 takes RFC 7591's grant type values, and RFC 7591 §2 pairs
    // the `token` response type with the `implicit` grant type, which no
    // plugin provides at the token endpoint.
    let mut grant_types: BTreeSet<String> = registry.grant_types().map(str::to_owned).collect();
    if response_types
        .iter()
        .any(|t| t.split(' ').any(|word| word == "token"))
    {
        grant_types.insert("implicit".to_owned());
    }
    let code_challenge_methods = issues_codes.then(|| {
        let mut methods = vec!["S256"];
        if plain_pkce_allowed(registry) {
            methods.push("plain");
        }
        methods
    });
    Metadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: format!("{issuer}/authorize"),
        token_endpoint: format!("{issuer}/token"),
        introspection_endpoint: format!("{issuer}/introspect"),
        revocation_endpoint: format!("{issuer}/revoke"),
        jwks_uri: format!("{issuer}/jwks"),
        grant_types_supported: grant_types.into_iter().collect(),
        response_types_supported: response_types,
        response_modes_supported: ["query", "fragment", "form_post"],
        code_challenge_methods_supported: code_challenge_methods,
        token_endpoint_auth_methods_supported: AUTH_METHODS,
        introspection_endpoint_auth_methods_supported: INTROSPECTION_AUTH_METHODS,
        revocation_endpoint_auth_methods_supported: AUTH_METHODS,
        token_endpoint_auth_signing_alg_values_supported:
            client_assertion::signing_alg_values_supported(),
        introspection_endpoint_auth_signing_alg_values_supported:
            client_assertion::signing_alg_values_supported(),
        revocation_endpoint_auth_signing_alg_values_supported:
            client_assertion::signing_alg_values_supported(),
        scopes_supported: scopes,
        authorization_response_iss_parameter_supported: true,
        registration_endpoint: None,
        plugin_endpoints: registry
            .endpoint_metadata()
            .map(|(key, path)| (key.to_owned(), format!("{issuer}{path}")))
            .collect(),
    }
}

/// Whether the plugin answering `response_type=code` accepts the `plain`
/// PKCE method: its `[config] allow_plain`, which the bundled
/// authorization-code plugin reads (default false, RFC 9700 §2.1.1); a
/// replacement that accepts `plain` says so with the same key.
fn plain_pkce_allowed(registry: &Registry) -> bool {
    registry
        .for_response_type("code")
        .and_then(|(plugin, _)| plugin.manifest.config.get("allow_plain"))
        .is_some_and(|value| match value {
            serde_json::Value::Bool(allowed) => *allowed,
            serde_json::Value::String(text) => text == "true",
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_are_omitted_when_unknown() {
        let document = build("https://as.example", &Registry::default(), None);
        let json = serde_json::to_value(&document).unwrap();
        assert_eq!(json["issuer"], "https://as.example");
        assert_eq!(json["token_endpoint"], "https://as.example/token");
        assert_eq!(json["jwks_uri"], "https://as.example/jwks");
        assert_eq!(json["response_types_supported"], serde_json::json!([]));
        assert!(json.get("scopes_supported").is_none(), "{json}");
        assert!(json.get("code_challenge_methods_supported").is_none());
        assert!(
            json.get("registration_endpoint").is_none(),
            "closed by default"
        );
        assert_eq!(json["authorization_response_iss_parameter_supported"], true);
    }

    /// A plugin endpoint may not claim a key of this document: the manifest
    /// refuses the keys the host writes, so that list must hold every one.
    #[test]
    fn every_key_the_host_writes_is_reserved_from_plugins() {
        let mut document = build(
            "https://as.example",
            &Registry::default(),
            Some(vec!["read".into()]),
        );
        document.code_challenge_methods_supported = Some(vec!["S256"]);
        document.registration_endpoint = Some("https://as.example/register".into());
        let json = serde_json::to_value(&document).unwrap();
        for key in json.as_object().unwrap().keys() {
            assert!(
                crate::plugin::manifest::HOST_METADATA_KEYS.contains(&key.as_str()),
                "{key} is written by the host but a plugin endpoint may claim it"
            );
        }
    }
}
