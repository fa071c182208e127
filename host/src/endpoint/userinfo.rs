//! `GET|POST /userinfo` (OpenID Connect Core 1.0 §5.3): the signed-in
//! user's claims for a Bearer access token (RFC 6750 §2.1 header, or §2.2
//! form body on POST) that carries `openid`: `sub` (the user's stable
//! `users.subject`, as in the ID token and the access token) and the stored
//! claims the token's scope releases (§5.4, `openid::claims::released`).
//! A DPoP-bound token (RFC 9449 §7) comes as `Authorization: DPoP` with a
//! proof of its key for this request (`htm`, `htu`, `ath`), never as a
//! bearer token. Errors are RFC 6750 §3 challenges, RFC 9449 §7.1 `DPoP`
//! ones for DPoP. No CORS headers, as at `/token`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::dpop::{self as dpop_proof, ProofError, ProofRequest};
use super::{AccessToken, access_token, check_form_content_type, no_store};
use crate::app::App;
use crate::oauth::{Params, dpop};
use crate::openid::{OPENID_SCOPE, claims};
use crate::store::{TokenKind, TokenRecord};

/// An RFC 6750 §3.1 error and what the challenge says about it.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// No token at all: a bare challenge, no error code (§3.1).
    NoToken,
    /// `invalid_request`, 400.
    InvalidRequest(&'static str),
    /// `invalid_token`, 401.
    InvalidToken(&'static str),
    /// `insufficient_scope`, 403, with the scope needed.
    InsufficientScope(&'static str),
    /// RFC 9449 §7.1 `invalid_dpop_proof`, 401, with a `DPoP` challenge.
    InvalidDpopProof(String),
    /// `invalid_token` with a `DPoP` challenge, 401: a DPoP-bound token
    /// presented as a bearer token, or a bearer token with the DPoP scheme.
    DpopMismatch(&'static str),
    /// The store failed: 503, logged, nothing said.
    Unavailable,
}

/// `GET /userinfo`: the token in the `Authorization` header only.
pub async fn userinfo_get(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    respond(answer(&app, &Method::GET, &uri, &headers, &[]).await)
}

/// `POST /userinfo`: the token in the header or as the form parameter
/// `access_token` (RFC 6750 §2.2), never both.
pub async fn userinfo_post(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(answer(&app, &Method::POST, &uri, &headers, &body).await)
}

fn respond(outcome: Result<Map<String, Value>, Refusal>) -> Response {
    match outcome {
        Ok(claims) => no_store((StatusCode::OK, axum::Json(Value::Object(claims))).into_response()),
        Err(refusal) => refused(&refusal),
    }
}

async fn answer(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Map<String, Value>, Refusal> {
    let (token, with_dpop) = presented_token(method, uri, headers, body)?;
    // RFC 9449 §7: the proof is of this request and of this token (`ath`).
    let proof_jkt = if with_dpop {
        let request = ProofRequest {
            method: method.as_str(),
            path: super::metadata::USERINFO_PATH,
            access_token: Some(&token),
            require_nonce: false,
        };
        match dpop_proof::check(app, headers, request).await {
            Ok(Some(proof)) => Some(proof.jkt),
            Ok(None) => {
                return Err(Refusal::InvalidDpopProof(
                    "a DPoP-bound access token needs a DPoP proof".into(),
                ));
            }
            Err(ProofError::Invalid(reason)) => return Err(Refusal::InvalidDpopProof(reason)),
            Err(ProofError::NonceRequired) => {
                return Err(Refusal::InvalidDpopProof("a nonce is required".into()));
            }
            Err(ProofError::Unavailable) => return Err(Refusal::Unavailable),
        }
    } else {
        None
    };
    let now = app.clock.now();
    let record = super::introspect::find(&app.store, &token, now)
        .await
        .map_err(|_| Refusal::Unavailable)?
        .filter(|record| record.kind == TokenKind::Access)
        .ok_or(Refusal::InvalidToken(
            "the access token is unknown, expired or revoked",
        ))?;
    check_binding(&record, proof_jkt.as_deref())?;
    let subject = authorized_subject(&record)?;
    let user = match app.store.find_user_by_subject(subject).await {
        Ok(user) => user,
        Err(error) => {
            tracing::error!(%error, "store error while reading a user for UserInfo");
            return Err(Refusal::Unavailable);
        }
    };
    // A removed or disabled user's tokens no longer speak for them.
    let user = user
        .filter(|user| user.disabled_at.is_none())
        .ok_or(Refusal::InvalidToken(
            "the access token's user no longer signs in",
        ))?;
    let scopes: Vec<&str> = record.scope.iter().map(String::as_str).collect();
    Ok(body_for(&user.subject, &user.claims, &scopes))
}

/// RFC 9449 §7.1, §7.2: a DPoP-bound token only with a proof of its key,
/// a bearer token only as one. `proof_jkt` is the key of the request's
/// proof, when it was presented with the DPoP scheme.
fn check_binding(record: &TokenRecord, proof_jkt: Option<&str>) -> Result<(), Refusal> {
    match (record.dpop_jkt.as_deref(), proof_jkt) {
        (None, None) => Ok(()),
        (Some(bound), Some(proved)) if bound == proved => Ok(()),
        (Some(_), Some(_)) => Err(Refusal::InvalidDpopProof(
            "the DPoP proof is not by the key the access token is bound to".into(),
        )),
        (Some(_), None) => Err(Refusal::DpopMismatch(
            "the access token is DPoP-bound: present it with the DPoP scheme and a proof",
        )),
        (None, Some(_)) => Err(Refusal::DpopMismatch(
            "the access token is not DPoP-bound: present it as a Bearer token",
        )),
    }
}

/// The token of RFC 6750 §2.1 or (POST only) §2.2, or RFC 9449 §7.1's
/// `DPoP` scheme (then `true`); a token in the URL (§2.3) is refused, since
/// URLs end up in logs and histories.
fn presented_token(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, bool), Refusal> {
    if let Some(query) = uri.query() {
        let params = Params::parse(query.as_bytes())
            .map_err(|_| Refusal::InvalidRequest("the query string is malformed"))?;
        if !matches!(params.get("access_token"), Ok(None)) {
            return Err(Refusal::InvalidRequest(
                "the access token belongs in the Authorization header, not in the URL",
            ));
        }
    }
    let in_header = match access_token(headers) {
        AccessToken::Absent => None,
        AccessToken::Malformed => {
            return Err(Refusal::InvalidRequest(
                "the Authorization header must be one Bearer or DPoP token",
            ));
        }
        AccessToken::Bearer(token) => Some((token, false)),
        AccessToken::Dpop(token) => Some((token, true)),
    };
    let in_body = if *method == Method::POST && !body.is_empty() {
        check_form_content_type(headers).map_err(|_| {
            Refusal::InvalidRequest("the request body must be application/x-www-form-urlencoded")
        })?;
        let params = Params::parse(body)
            .map_err(|_| Refusal::InvalidRequest("the request body is malformed"))?;
        params
            .get("access_token")
            .map_err(|_| Refusal::InvalidRequest("parameter access_token is repeated"))?
            .map(str::to_owned)
    } else {
        None
    };
    match (in_header, in_body) {
        (Some(_), Some(_)) => Err(Refusal::InvalidRequest(
            "the access token is sent twice (header and body); RFC 6750 section 2 allows one method",
        )),
        (Some(token), None) => Ok(token),
        (None, Some(token)) => Ok((token, false)),
        (None, None) => Err(Refusal::NoToken),
    }
}

/// The token's user, when it has one and `openid` was granted.
fn authorized_subject(record: &TokenRecord) -> Result<&str, Refusal> {
    if !record.scope.iter().any(|scope| scope == OPENID_SCOPE) {
        return Err(Refusal::InsufficientScope(
            "the access token was not granted the openid scope",
        ));
    }
    record.subject.as_deref().ok_or(Refusal::InsufficientScope(
        "the access token was not issued for a user",
    ))
}

/// `sub` and the stored claims the scopes release (OIDC Core §5.3.2).
fn body_for(subject: &str, stored: &Map<String, Value>, scopes: &[&str]) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("sub".into(), Value::String(subject.to_owned()));
    body.extend(claims::released(stored, scopes));
    body
}

/// The RFC 6750 §3 answer: the challenge, and the same error as JSON.
fn refused(refusal: &Refusal) -> Response {
    let (status, error, description) = match refusal {
        Refusal::NoToken => (
            StatusCode::UNAUTHORIZED,
            None,
            "an access token is required",
        ),
        Refusal::InvalidRequest(why) => (StatusCode::BAD_REQUEST, Some("invalid_request"), *why),
        Refusal::InvalidToken(why) => (StatusCode::UNAUTHORIZED, Some("invalid_token"), *why),
        Refusal::InsufficientScope(why) => {
            (StatusCode::FORBIDDEN, Some("insufficient_scope"), *why)
        }
        Refusal::InvalidDpopProof(why) => (
            StatusCode::UNAUTHORIZED,
            Some("invalid_dpop_proof"),
            why.as_str(),
        ),
        Refusal::DpopMismatch(why) => (StatusCode::UNAUTHORIZED, Some("invalid_token"), *why),
        Refusal::Unavailable => {
            let body = json!({"error": "temporarily_unavailable"});
            return no_store((StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response());
        }
    };
    let challenge = challenge(error, description, refusal);
    let body = match error {
        Some(error) => json!({"error": error, "error_description": description}),
        None => json!({}),
    };
    let mut response = no_store((status, axum::Json(body)).into_response());
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// `Bearer realm="grantbox"`, then `error`, `error_description` and, for
/// `insufficient_scope`, the `scope` needed (RFC 6750 §3). A description
/// character outside §3's set (%x20-21 / %x23-5B / %x5D-7E) becomes `?`.
fn challenge(error: Option<&str>, description: &str, refusal: &Refusal) -> String {
    let dpop = matches!(
        refusal,
        Refusal::InvalidDpopProof(_) | Refusal::DpopMismatch(_)
    );
    // RFC 9449 §7.1: a `DPoP` challenge names the algorithms of the proofs
    // the resource accepts.
    let mut challenge = if dpop {
        format!(
            "DPoP algs=\"{}\"",
            dpop::signing_alg_values_supported().join(" ")
        )
    } else {
        String::from("Bearer realm=\"grantbox\"")
    };
    if let Some(error) = error {
        let description: String = description
            .chars()
            .map(|c| match c {
                ' ' | '!' | '#'..='[' | ']'..='~' => c,
                _ => '?',
            })
            .collect();
        challenge.push_str(&format!(
            ", error=\"{error}\", error_description=\"{description}\""
        ));
    }
    if matches!(refusal, Refusal::InsufficientScope(_)) {
        challenge.push_str(&format!(", scope=\"{OPENID_SCOPE}\""));
    }
    challenge
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(subject: Option<&str>, scope: &[&str]) -> TokenRecord {
        crate::endpoint::introspect::tests::record(TokenKind::Access, subject, scope)
    }

    fn headers(authorization: &[&str], form: bool) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in authorization {
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        if form {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        }
        headers
    }

    #[test]
    fn the_token_comes_from_the_header_or_a_post_body_never_both() {
        let uri: Uri = "/userinfo".parse().unwrap();
        let read = |method: Method, auth: &[&str], form: bool, body: &str| {
            presented_token(&method, &uri, &headers(auth, form), body.as_bytes())
        };
        assert_eq!(
            read(Method::GET, &["Bearer t1"], false, ""),
            Ok(("t1".into(), false))
        );
        assert_eq!(
            read(Method::POST, &["Bearer t1"], false, ""),
            Ok(("t1".into(), false))
        );
        assert_eq!(
            read(Method::POST, &[], true, "access_token=t2"),
            Ok(("t2".into(), false))
        );
        assert_eq!(
            read(Method::GET, &["DPoP t4"], false, ""),
            Ok(("t4".into(), true))
        );
        assert_eq!(read(Method::GET, &[], false, ""), Err(Refusal::NoToken));
        assert_eq!(
            read(Method::POST, &[], true, "other=x"),
            Err(Refusal::NoToken)
        );
        assert!(matches!(
            read(Method::POST, &["Bearer t1"], true, "access_token=t2"),
            Err(Refusal::InvalidRequest(_))
        ));
        assert!(matches!(
            read(Method::POST, &[], false, "access_token=t2"),
            Err(Refusal::InvalidRequest(_))
        ));
        assert!(matches!(
            read(Method::POST, &[], true, "access_token=a&access_token=b"),
            Err(Refusal::InvalidRequest(_))
        ));
        assert!(matches!(
            read(Method::GET, &["Basic dXNlcjpwdw=="], false, ""),
            Err(Refusal::InvalidRequest(_))
        ));
        let in_url: Uri = "/userinfo?access_token=t3".parse().unwrap();
        assert!(matches!(
            presented_token(&Method::GET, &in_url, &HeaderMap::new(), b""),
            Err(Refusal::InvalidRequest(_))
        ));
    }

    #[test]
    fn a_dpop_bound_token_needs_a_proof_of_its_key_and_a_bearer_token_none() {
        let mut bound = token(Some("sub-1"), &["openid"]);
        bound.dpop_jkt = Some("key-a".into());
        let bearer = token(Some("sub-1"), &["openid"]);
        assert_eq!(check_binding(&bound, Some("key-a")), Ok(()));
        assert_eq!(check_binding(&bearer, None), Ok(()));
        assert!(matches!(
            check_binding(&bound, Some("key-b")),
            Err(Refusal::InvalidDpopProof(_))
        ));
        assert!(matches!(
            check_binding(&bound, None),
            Err(Refusal::DpopMismatch(_))
        ));
        assert!(matches!(
            check_binding(&bearer, Some("key-a")),
            Err(Refusal::DpopMismatch(_))
        ));
    }

    #[test]
    fn only_a_users_token_with_openid_is_answered() {
        assert_eq!(
            authorized_subject(&token(Some("sub-1"), &["openid", "email"])),
            Ok("sub-1")
        );
        assert!(matches!(
            authorized_subject(&token(Some("sub-1"), &["email"])),
            Err(Refusal::InsufficientScope(_))
        ));
        assert!(matches!(
            authorized_subject(&token(None, &["openid"])),
            Err(Refusal::InsufficientScope(_))
        ));
    }

    #[test]
    fn the_body_is_sub_and_the_claims_the_scope_releases() {
        let stored = json!({
            "name": "Alice", "email": "a@example.com", "email_verified": true,
            "phone_number": "+44 20 7946 0000", "favourite_colour": "blue"
        });
        let stored = stored.as_object().unwrap();
        assert_eq!(
            Value::Object(body_for("sub-1", stored, &["openid", "email"])),
            json!({"sub": "sub-1", "email": "a@example.com", "email_verified": true})
        );
        assert_eq!(
            Value::Object(body_for("sub-1", stored, &["openid"])),
            json!({"sub": "sub-1"})
        );
    }

    /// RFC 6750 §3: `error_description` is printable ASCII without `"` or `\`.
    #[test]
    fn a_description_outside_the_challenge_charset_is_made_safe() {
        let response = refused(&Refusal::InvalidToken("sect. §3 \"quoted\" back\\slash"));
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .expect("ASCII");
        assert!(
            challenge.ends_with("error_description=\"sect. ?3 ?quoted? back?slash\""),
            "{challenge}"
        );
    }

    #[test]
    fn challenges_follow_rfc_6750_section_3() {
        let header_of = |refusal: Refusal| {
            let response = refused(&refusal);
            (
                response.status().as_u16(),
                response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        };
        assert_eq!(
            header_of(Refusal::NoToken),
            (401, Some("Bearer realm=\"grantbox\"".into()))
        );
        assert_eq!(
            header_of(Refusal::InvalidToken("gone")),
            (
                401,
                Some(
                    "Bearer realm=\"grantbox\", error=\"invalid_token\", error_description=\"gone\""
                        .into()
                )
            )
        );
        assert_eq!(
            header_of(Refusal::InsufficientScope("no openid")),
            (
                403,
                Some(
                    "Bearer realm=\"grantbox\", error=\"insufficient_scope\", error_description=\"no openid\", scope=\"openid\""
                        .into()
                )
            )
        );
        assert_eq!(
            header_of(Refusal::InvalidDpopProof("stale".into())),
            (
                401,
                Some(
                    "DPoP algs=\"ES256 RS256 PS256 EdDSA\", error=\"invalid_dpop_proof\", error_description=\"stale\""
                        .into()
                )
            )
        );
        assert_eq!(
            header_of(Refusal::DpopMismatch("bound")).1,
            Some(
                "DPoP algs=\"ES256 RS256 PS256 EdDSA\", error=\"invalid_token\", error_description=\"bound\""
                    .into()
            )
        );
        assert_eq!(header_of(Refusal::InvalidRequest("bad")).0, 400);
        assert_eq!(header_of(Refusal::Unavailable), (503, None));
    }
}
