//! `POST /introspect` (RFC 7662): a confidential client (typically a resource
//! server) asks whether a token is active and what it grants. Unknown,
//! expired, revoked and rotated tokens all answer `{"active":false}`, and so
//! does a token the caller may not see (RFC 7662 §4): another client's
//! refresh token, or another client's access token when the caller is not
//! registered as a resource server (`client add --introspection`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{authenticated_form, json_error, no_store};
use crate::app::App;
use crate::oauth::OAuthError;
use crate::secret;
use crate::store::{Client, Store, TokenKind, TokenRecord};

pub async fn introspect(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    match answer(&app, &headers, &body).await {
        Ok(body) => no_store((StatusCode::OK, axum::Json(body)).into_response()),
        Err(error) => json_error(&error),
    }
}

/// The RFC 7662 §2.2 response. Only `active` is sent for an inactive token,
/// so a caller learns nothing about tokens that do not work.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten)]
    pub details: Option<Details>,
}

/// What an active token grants.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Details {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub client_id: String,
    /// The user's stable subject; absent for tokens not issued to a user.
    /// `username` is never sent: tokens store the subject only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// `Bearer` for access tokens, `DPoP` for DPoP-bound ones (RFC 9449
    /// §6.2); absent for refresh tokens, which are not presented to
    /// resource servers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    /// Where the token may be used (RFC 7662 §2.2 `aud`): the resources of
    /// RFC 8707 (`resource`, or the client's registered ones) or the
    /// `audience` and `resource` values of a token exchange (RFC 8693 §2.1);
    /// absent when the token has no restriction.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aud: Vec<String>,
    /// The acting party of a delegation (RFC 8693 §4.1 `act`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The key a DPoP-bound token is bound to (RFC 9449 §6.2 `cnf.jkt`),
    /// which the resource server checks the proof's key against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` member (RFC 7800 §3.1) of a DPoP-bound token.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Confirmation {
    pub jkt: String,
}

/// The `act` claim: the subject of the party acting for the token's `sub`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Actor {
    pub sub: String,
}

async fn answer(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Introspection, OAuthError> {
    let (client, params) = authenticated_form(app, headers, body).await?;
    if client.public {
        // Introspection reveals what other clients' tokens grant; only
        // registered confidential clients (resource servers) may ask.
        tracing::info!(client_id = %client.client_id, "a public client tried to introspect a token");
        return Err(OAuthError::invalid_client(
            "public clients cannot introspect tokens",
        ));
    }
    let token = params.require("token")?;
    // `token_type_hint` (RFC 7662 §2.1) is allowed and ignored: one lookup by
    // hash finds either kind.
    params.get("token_type_hint")?;
    let record = find(&app.store, token, app.clock.now()).await?;
    let visible = record.filter(|record| may_see(&client, record));
    Ok(describe(visible.as_ref(), &app.issuer))
}

/// RFC 7662 §4: a client always sees its own tokens; a resource server
/// (registered with `introspection`) also sees other clients' access
/// tokens; a refresh token is never shown to anyone but its own client,
/// since only that client ever presents it.
pub fn may_see(caller: &Client, record: &TokenRecord) -> bool {
    record.client_id == caller.client_id
        || (caller.introspection && record.kind == TokenKind::Access)
}

/// Finds the active token by its hash (an opaque token's or a JWT access
/// token's whole text: the store keeps the SHA-256 of either); a store
/// failure becomes `temporarily_unavailable` and is logged, never sent.
/// UserInfo looks its access tokens up here too.
pub async fn find(store: &Store, token: &str, now: i64) -> Result<Option<TokenRecord>, OAuthError> {
    store
        .find_token(&secret::token_hash(token), now)
        .await
        .map_err(|error| {
            tracing::error!(%error, "store error while looking a token up");
            OAuthError::temporarily_unavailable()
        })
}

/// The response for an active token (as `Store::find_token` returns only
/// those), or for none.
pub fn describe(record: Option<&TokenRecord>, issuer: &str) -> Introspection {
    let Some(record) = record else {
        return Introspection {
            active: false,
            details: None,
        };
    };
    Introspection {
        active: true,
        details: Some(Details {
            scope: (!record.scope.is_empty()).then(|| record.scope.join(" ")),
            client_id: record.client_id.clone(),
            sub: record.subject.clone(),
            token_type: match (record.kind, &record.dpop_jkt) {
                (TokenKind::Access, None) => Some("Bearer"),
                (TokenKind::Access, Some(_)) => Some(crate::oauth::dpop::TOKEN_TYPE),
                (TokenKind::Refresh, _) => None,
            },
            exp: record.expires_at,
            iat: record.issued_at,
            iss: issuer.to_owned(),
            // A refresh token's `audience` column holds the resources its
            // grant may reach (RFC 8707 §2.2); it is used only here, at the
            // token endpoint, so it has no audience to show.
            aud: match record.kind {
                TokenKind::Access => record.audience.clone(),
                TokenKind::Refresh => Vec::new(),
            },
            act: record.actor.clone().map(|sub| Actor { sub }),
            cnf: (record.dpop_jkt.clone()).map(|jkt| Confirmation { jkt }),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A stored token of client `svc` for the endpoint tests.
    pub(crate) fn record(kind: TokenKind, subject: Option<&str>, scope: &[&str]) -> TokenRecord {
        TokenRecord {
            token_hash: [7; 32],
            kind,
            client_id: "svc".into(),
            subject: subject.map(str::to_owned),
            scope: scope.iter().map(|s| (*s).to_owned()).collect(),
            grant_id: "g".into(),
            issued_at: 100,
            expires_at: 3700,
            grant_expires_at: None,
            audience: Vec::new(),
            actor: None,
            revoked_at: None,
            rotated_at: None,
            dpop_jkt: None,
        }
    }

    fn json(value: &Introspection) -> serde_json::Value {
        serde_json::to_value(value).unwrap()
    }

    #[test]
    fn inactive_tokens_answer_only_active_false() {
        assert_eq!(
            json(&describe(None, "https://as")),
            serde_json::json!({"active": false})
        );
    }

    #[test]
    fn access_and_refresh_tokens_are_described() {
        let access = record(TokenKind::Access, None, &["read", "write"]);
        assert_eq!(
            json(&describe(Some(&access), "https://as")),
            serde_json::json!({
                "active": true, "scope": "read write", "client_id": "svc",
                "token_type": "Bearer", "exp": 3700, "iat": 100, "iss": "https://as"
            })
        );
        let refresh = record(TokenKind::Refresh, Some("sub-1"), &[]);
        assert_eq!(
            json(&describe(Some(&refresh), "https://as")),
            serde_json::json!({
                "active": true, "client_id": "svc", "sub": "sub-1",
                "exp": 3700, "iat": 100, "iss": "https://as"
            })
        );
    }

    #[test]
    fn dpop_bound_tokens_show_their_type_and_key() {
        let mut access = record(TokenKind::Access, None, &[]);
        access.dpop_jkt = Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into());
        assert_eq!(
            json(&describe(Some(&access), "https://as")),
            serde_json::json!({
                "active": true, "client_id": "svc", "token_type": "DPoP",
                "exp": 3700, "iat": 100, "iss": "https://as",
                "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
            })
        );
    }

    #[test]
    fn exchanged_tokens_show_audience_and_actor() {
        let mut exchanged = record(TokenKind::Access, Some("alice"), &["read"]);
        exchanged.audience = vec!["https://api.example".into(), "urn:backend".into()];
        exchanged.actor = Some("svc-b".into());
        assert_eq!(
            json(&describe(Some(&exchanged), "https://as")),
            serde_json::json!({
                "active": true, "scope": "read", "client_id": "svc", "sub": "alice",
                "token_type": "Bearer", "exp": 3700, "iat": 100, "iss": "https://as",
                "aud": ["https://api.example", "urn:backend"],
                "act": {"sub": "svc-b"}
            })
        );
    }

    #[test]
    fn refresh_tokens_only_to_their_client_access_tokens_to_resource_servers() {
        let caller = |client_id: &str, introspection: bool| Client {
            client_id: client_id.into(),
            secret_hash: Some(vec![0; 32]),
            name: None,
            client_uri: None,
            redirect_uris: Vec::new(),
            grant_types: Vec::new(),
            scopes: Vec::new(),
            public: false,
            trusted: false,
            introspection,
            created_at: 0,
            auth: Default::default(),
            resources: Vec::new(),
            id_token_signed_response_alg: None,
            profile: None,
            access_token_format: Default::default(),
            post_logout_redirect_uris: Vec::new(),
            require_pushed_authorization_requests: false,
            dpop_bound_access_tokens: false,
        };
        let access = record(TokenKind::Access, None, &[]);
        let refresh = record(TokenKind::Refresh, Some("sub-1"), &[]);
        for (who, token, expect) in [
            (caller("svc", false), &access, true),
            (caller("svc", false), &refresh, true),
            (caller("api", false), &access, false),
            (caller("api", false), &refresh, false),
            (caller("api", true), &access, true),
            (caller("api", true), &refresh, false),
        ] {
            assert_eq!(
                may_see(&who, token),
                expect,
                "{} (introspection {}) seeing a {:?} token",
                who.client_id,
                who.introspection,
                token.kind
            );
        }
    }

    #[tokio::test]
    async fn a_store_error_is_temporarily_unavailable() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        assert_eq!(find(&store, "t", 0).await.unwrap(), None);
        store.close().await;
        let error = find(&store, "t", 0).await.unwrap_err();
        assert_eq!(error, OAuthError::temporarily_unavailable());
        assert_eq!(error.code.token_endpoint_status(), 503);
    }
}
