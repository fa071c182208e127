//! The axum handlers: the only code that knows HTTP. Each endpoint turns a
//! request into values for `oauth/`, the store and the plugins, and turns
//! their answers into a response.

pub mod admin;
pub mod authorize;
pub mod decision;
pub mod dpop;
pub mod end_session;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod login;
pub mod metadata;
pub mod page;
pub mod par;
pub mod plugin_route;
pub mod registration;
pub mod revoke;
pub mod token;
pub mod transaction;
pub mod user_step;
pub mod userinfo;

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::oauth::client_auth;
use crate::oauth::{OAuthError, Params};
use crate::store::Client;

/// An OAuth error as the token, introspection and revocation endpoints send
/// it: JSON, never cached, 401 with a challenge for `invalid_client`.
pub fn json_error(error: &OAuthError) -> Response {
    let status =
        StatusCode::from_u16(error.code.token_endpoint_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = no_store((status, axum::Json(error.to_json())).into_response());
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"grantbox\", charset=\"UTF-8\""),
        );
    }
    response
}

/// A response with credentials or tokens in it: never cached (RFC 6749
/// §5.1, RFC 7591 §3.2.1), `Pragma` for HTTP/1.0 caches.
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Endpoints whose parameters belong in the body (the token, introspection,
/// revocation and plugin endpoints) refuse any query string.
pub fn refuse_query(uri: &axum::http::Uri) -> Result<(), OAuthError> {
    match uri.query() {
        Some(_) => Err(OAuthError::invalid_request(
            "parameters belong in the request body, not in the URL",
        )),
        None => Ok(()),
    }
}

/// RFC 6749 §3.2, RFC 7662 §2.1, RFC 7009 §2.1: the body is
/// `application/x-www-form-urlencoded`.
pub fn check_form_content_type(headers: &HeaderMap) -> Result<(), OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "the request body must be application/x-www-form-urlencoded",
        ))
    }
}

/// The start every client-authenticated form endpoint shares (introspection,
/// revocation): checks the media type, decodes the body, authenticates the
/// client like the token endpoint does and refuses repeated parameters.
pub async fn authenticated_form(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Arc<Client>, Params), OAuthError> {
    let (client, params) = authenticated_form_with_repeats(app, headers, body).await?;
    refuse_repeated(&params, &[] as &[&str])?;
    Ok((client, params))
}

/// RFC 6749 §3.1: request parameters must not repeat, except those in
/// `repeatable`, which an extension grant defines as repeatable.
pub fn refuse_repeated<S: AsRef<str>>(params: &Params, repeatable: &[S]) -> Result<(), OAuthError> {
    match params.first_repeated_except(repeatable) {
        Some(name) => Err(OAuthError::invalid_request(format!(
            "parameter {name} is repeated"
        ))),
        None => Ok(()),
    }
}

/// [`authenticated_form`] that leaves repeated parameters to the caller: the
/// token endpoint knows which may repeat only once it knows the grant type.
pub async fn authenticated_form_with_repeats(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Arc<Client>, Params), OAuthError> {
    check_form_content_type(headers)?;
    let params = Params::parse(body)?;
    // Two Authorization headers are two credentials, or one hidden behind
    // another a proxy may read differently (RFC 6749 §2.3: one method only).
    let mut authorization = headers.get_all(header::AUTHORIZATION).iter();
    let first = authorization.next();
    if authorization.next().is_some() {
        return Err(OAuthError::invalid_request(
            "the Authorization header is repeated",
        ));
    }
    let credentials = client_auth::extract(first.map(HeaderValue::as_bytes), &params)?;
    let client = token::authenticate_client(app, &credentials).await?;
    Ok((client, params))
}

/// What the one `Authorization` header holds, for the endpoints that take
/// an RFC 6750 bearer token (registration, UserInfo).
pub enum Bearer {
    Absent,
    Malformed,
    Token(String),
}

/// The RFC 6750 §2.1 bearer token of the one `Authorization` header.
pub fn bearer(headers: &HeaderMap) -> Bearer {
    match access_token(headers) {
        AccessToken::Absent => Bearer::Absent,
        AccessToken::Bearer(token) => Bearer::Token(token),
        AccessToken::Malformed | AccessToken::Dpop(_) => Bearer::Malformed,
    }
}

/// What the one `Authorization` header holds at a resource that also takes
/// DPoP-bound tokens (UserInfo).
#[derive(Debug, PartialEq, Eq)]
pub enum AccessToken {
    Absent,
    Malformed,
    /// RFC 6750 §2.1 `Bearer`.
    Bearer(String),
    /// RFC 9449 §7.1 `DPoP`: the token comes with a proof.
    Dpop(String),
}

/// The access token of the one `Authorization` header, by its scheme.
pub fn access_token(headers: &HeaderMap) -> AccessToken {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return if headers.contains_key(header::AUTHORIZATION) {
            AccessToken::Malformed
        } else {
            AccessToken::Absent
        };
    };
    let Some((scheme, token)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
        return AccessToken::Malformed;
    };
    let token = token.trim();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return AccessToken::Malformed;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        AccessToken::Bearer(token.to_owned())
    } else if scheme.eq_ignore_ascii_case(crate::oauth::dpop::TOKEN_TYPE) {
        AccessToken::Dpop(token.to_owned())
    } else {
        AccessToken::Malformed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_one_authorization_header() {
        let with = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            }
            match bearer(&headers) {
                Bearer::Absent => "absent".to_owned(),
                Bearer::Malformed => "malformed".to_owned(),
                Bearer::Token(token) => token,
            }
        };
        assert_eq!(with(&[]), "absent");
        assert_eq!(with(&["Bearer abc"]), "abc");
        assert_eq!(with(&["bearer abc"]), "abc");
        assert_eq!(with(&["Basic abc"]), "malformed");
        assert_eq!(with(&["Bearer "]), "malformed");
        assert_eq!(with(&["Bearer"]), "malformed");
        assert_eq!(with(&["Bearer abc", "Bearer def"]), "malformed");
        assert_eq!(with(&["DPoP abc"]), "malformed");
    }

    #[test]
    fn a_resource_reads_bearer_and_dpop_tokens() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            access_token(&headers)
        };
        assert_eq!(with("DPoP abc"), AccessToken::Dpop("abc".into()));
        assert_eq!(with("dpop abc"), AccessToken::Dpop("abc".into()));
        assert_eq!(with("Bearer abc"), AccessToken::Bearer("abc".into()));
        assert_eq!(with("DPoP "), AccessToken::Malformed);
        assert_eq!(with("MAC abc"), AccessToken::Malformed);
        assert_eq!(access_token(&HeaderMap::new()), AccessToken::Absent);
    }
}
