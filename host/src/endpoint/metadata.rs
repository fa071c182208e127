//! `GET /.well-known/oauth-authorization-server` (RFC 8414) and
//! `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0):
//! the server's metadata, built from the issuer, the loaded plugins (with
//! the metadata keys of their endpoints), the registered clients' scopes,
//! the signing keys and, when dynamic client registration is open, its
//! endpoint. One builder, one document served at both addresses (RFC 8414
//! §2 allows the OpenID Connect fields in it), so the two never disagree.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app::App;
use crate::keys::Alg;
use crate::oauth::client_assertion;
use crate::openid::claims::SCOPE_CLAIMS;
use crate::plugin::Registry;

/// Where UserInfo answers (OIDC Core §5.3).
pub const USERINFO_PATH: &str = "/userinfo";

/// The scopes of OpenID Connect this server understands, listed whatever
/// the clients registered (OIDC Core §3.1.2.1, §5.4, §11).
const OPENID_SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// The claims the server sets itself in ID tokens and UserInfo answers,
/// listed in `claims_supported` beside the §5.4 claims of the scopes.
const SERVER_CLAIMS: [&str; 11] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
];

/// OIDC Core §3.1.2.1 `prompt` values the authorization endpoint honours.
const PROMPT_VALUES: [&str; 3] = ["none", "login", "consent"];

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

/// The RFC 8414 §2 document with the OpenID Connect Discovery 1.0 §3
/// fields.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// OIDC Core §5.3 (`/userinfo`).
    pub userinfo_endpoint: String,
    /// RP-Initiated Logout 1.0 §2.1 (`/end_session`).
    pub end_session_endpoint: String,
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
    /// The OpenID Connect scopes and every scope a client registered;
    /// omitted when the store cannot list the clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// Discovery §3: `sub` is the same for every client (no pairwise
    /// subjects).
    pub subject_types_supported: [&'static str; 1],
    /// RS256 always (Discovery §3, OIDC Core §15.1), then every other
    /// algorithm the host has a signing key for, which a client may ask for
    /// with `id_token_signed_response_alg`.
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    /// The §5.4 claims of the standard scopes and the claims the server
    /// sets itself.
    pub claims_supported: Vec<&'static str>,
    /// The one Authentication Context Class Reference this server signs
    /// users in with (`grantbox_protocol::openid::ACR_PASSWORD`).
    pub acr_values_supported: [&'static str; 1],
    pub prompt_values_supported: [&'static str; 3],
    /// OIDC Core §5.5, §6: neither the `claims` nor the `request` and
    /// `request_uri` parameters are supported (the last defaults to true,
    /// so all three are written). A `request_uri` from the pushed
    /// authorization request endpoint is not OIDC Core §6.2's (a URL the
    /// server fetches a request object from), so the last stays false.
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
    /// RFC 9207: authorization responses carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 7591 `POST /register`: only while `[registration] enabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// RFC 9126 §5: `POST /par`.
    pub pushed_authorization_request_endpoint: String,
    /// RFC 9126 §5: whether every client must push its authorization
    /// requests (`[par] require_pushed_authorization_requests`); a client
    /// may be held to it alone (its registration's field of that name).
    pub require_pushed_authorization_requests: bool,
    /// Plugin endpoints by the metadata key their manifest names: the issuer
    /// followed by the path. The manifest refuses the keys above, so none is
    /// written twice.
    #[serde(flatten)]
    pub plugin_endpoints: BTreeMap<String, String>,
    /// RFC 9449 §5.1: the algorithms of the DPoP proofs the server verifies.
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
}

/// Both `/.well-known/oauth-authorization-server` and
/// `/.well-known/openid-configuration`: the same document, the same caching.
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
    let id_token_algs = app.keys.algs(app.clock.now());
    let mut document = build(&app.issuer, &registry, scopes, &id_token_algs);
    document.require_pushed_authorization_requests = app.par.require_pushed_authorization_requests;
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

/// The document for an issuer (without trailing slash), a plugin set, the
/// clients' scopes (`None` when unknown) and the algorithms the host has
/// signing keys for.
pub fn build(
    issuer: &str,
    registry: &Registry,
    scopes: Option<Vec<String>>,
    key_algs: &[Alg],
) -> Metadata {
    let response_types = offered_response_types(registry.response_types());
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
        userinfo_endpoint: format!("{issuer}{USERINFO_PATH}"),
        end_session_endpoint: format!("{issuer}{}", super::end_session::END_SESSION_PATH),
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
        scopes_supported: scopes.map(|scopes| {
            (OPENID_SCOPES.iter().map(|s| s.to_string()))
                .chain(scopes)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        }),
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: id_token_algs(key_algs),
        claims_supported: claims_supported(),
        acr_values_supported: [crate::openid::ACR_PASSWORD],
        prompt_values_supported: PROMPT_VALUES,
        claims_parameter_supported: false,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        authorization_response_iss_parameter_supported: true,
        registration_endpoint: None,
        pushed_authorization_request_endpoint: format!("{issuer}{}", super::par::PAR_PATH),
        require_pushed_authorization_requests: false,
        plugin_endpoints: registry
            .endpoint_metadata()
            .map(|(key, path)| (key.to_owned(), format!("{issuer}{path}")))
            .collect(),
        dpop_signing_alg_values_supported: crate::oauth::dpop::signing_alg_values_supported(),
    }
}

/// The plugins' response types but those that return an ID token from the
/// authorization endpoint (hybrid, implicit `id_token`): ID tokens come only
/// from the token endpoint (the code flow), whatever plugin claims one.
fn offered_response_types<'a>(types: impl Iterator<Item = &'a str>) -> Vec<String> {
    types
        .filter(|t| !t.split(' ').any(|word| word == "id_token"))
        .map(str::to_owned)
        .collect()
}

/// RS256 first and always, then the other algorithms with a key.
fn id_token_algs(key_algs: &[Alg]) -> Vec<&'static str> {
    let mut algs = vec![Alg::RS256.name()];
    for alg in Alg::ALL {
        if alg != Alg::RS256 && key_algs.contains(&alg) {
            algs.push(alg.name());
        }
    }
    algs
}

/// The server's own claims, then the §5.4 claims in the table's order.
fn claims_supported() -> Vec<&'static str> {
    let by_scope = SCOPE_CLAIMS.iter().flat_map(|(_, claims)| claims.iter());
    SERVER_CLAIMS.iter().chain(by_scope).copied().collect()
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
    use serde_json::json;

    #[test]
    fn optional_fields_are_omitted_when_unknown() {
        let document = build("https://as.example", &Registry::default(), None, &[]);
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
        // RFC 9126 §5: the endpoint always; pushing is optional by default.
        assert_eq!(
            json["pushed_authorization_request_endpoint"],
            "https://as.example/par"
        );
        assert_eq!(json["require_pushed_authorization_requests"], false);
    }

    /// OpenID Connect Discovery 1.0 §3: the REQUIRED fields and the
    /// RECOMMENDED and OPTIONAL ones this server has an answer for.
    #[test]
    fn the_openid_connect_fields_describe_this_server() {
        let document = build(
            "https://as.example",
            &Registry::default(),
            Some(vec!["read".into(), "email".into()]),
            &[Alg::ES256, Alg::RS256],
        );
        let json = serde_json::to_value(&document).unwrap();
        assert_eq!(json["userinfo_endpoint"], "https://as.example/userinfo");
        assert_eq!(
            json["end_session_endpoint"],
            "https://as.example/end_session"
        );
        assert_eq!(
            json["scopes_supported"],
            json!([
                "address",
                "email",
                "offline_access",
                "openid",
                "phone",
                "profile",
                "read"
            ])
        );
        assert_eq!(json["subject_types_supported"], json!(["public"]));
        assert_eq!(
            json["id_token_signing_alg_values_supported"],
            json!(["RS256", "ES256"])
        );
        assert_eq!(
            json["acr_values_supported"],
            json!(["urn:grantbox:acr:password"])
        );
        assert_eq!(
            json["prompt_values_supported"],
            json!(["none", "login", "consent"])
        );
        for key in [
            "claims_parameter_supported",
            "request_parameter_supported",
            "request_uri_parameter_supported",
        ] {
            assert_eq!(json[key], false, "{key}");
        }
        let claims: Vec<&str> = json["claims_supported"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        for claim in SERVER_CLAIMS
            .iter()
            .chain(["name", "email", "email_verified", "address", "phone_number"].iter())
        {
            assert!(claims.contains(claim), "{claim} missing from {claims:?}");
        }
        let total: usize = SCOPE_CLAIMS.iter().map(|(_, c)| c.len()).sum();
        assert_eq!(claims.len(), SERVER_CLAIMS.len() + total, "no duplicates");
    }

    /// RS256 is offered for ID tokens even before an RS256 key exists
    /// (Discovery §3), and only once; others only with a key.
    #[test]
    fn rs256_is_always_offered_for_id_tokens() {
        assert_eq!(id_token_algs(&[]), ["RS256"]);
        assert_eq!(id_token_algs(&[Alg::RS256]), ["RS256"]);
        assert_eq!(
            id_token_algs(&[Alg::EdDSA, Alg::ES256]),
            ["RS256", "ES256", "EdDSA"]
        );
    }

    #[test]
    fn no_response_type_returning_an_id_token_is_offered() {
        let types = [
            "code",
            "code id_token",
            "id_token",
            "id_token token",
            "token",
        ];
        assert_eq!(offered_response_types(types.into_iter()), ["code", "token"]);
    }

    /// A plugin endpoint may not claim a key of this document: the manifest
    /// refuses the keys the host writes, so that list must hold every one.
    #[test]
    fn every_key_the_host_writes_is_reserved_from_plugins() {
        let mut document = build(
            "https://as.example",
            &Registry::default(),
            Some(vec!["read".into()]),
            &Alg::ALL,
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
