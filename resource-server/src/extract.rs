//! Where the bearer token is read from (RFC 6750 §2): the `Authorization`
//! header, and only when enabled the form body (§2.2) and the query (§2.3).
//! Pure functions over headers, query and body bytes; no IO.

use axum::http::{HeaderMap, header};

use crate::Rejection;

/// The token of the `Authorization: Bearer` header (§2.1). `Ok(None)` when
/// there is no such header or it names another scheme.
pub(crate) fn from_header(headers: &HeaderMap) -> Result<Option<String>, Rejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Rejection::InvalidRequest {
            description: "more than one Authorization header",
        });
    }
    let Ok(value) = value.to_str() else {
        return Err(Rejection::InvalidToken {
            description: "the Authorization header is not visible ASCII",
        });
    };
    token_of_scheme(value, "bearer", "the bearer token is malformed")
}

/// The token of an `Authorization: DPoP` header (RFC 9449 §7.1). `Ok(None)`
/// when there is no such header or it names another scheme; the header's
/// other faults are [`from_header`]'s to find.
pub(crate) fn from_dpop_header(headers: &HeaderMap) -> Result<Option<String>, Rejection> {
    match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
        Some(Ok(value)) => token_of_scheme(value, "dpop", "the DPoP-bound token is malformed"),
        _ => Ok(None),
    }
}

/// The `b64token` of an `Authorization` value when its scheme is `scheme`
/// (compared without case).
fn token_of_scheme(
    value: &str,
    scheme: &str,
    malformed: &'static str,
) -> Result<Option<String>, Rejection> {
    let (named, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !named.eq_ignore_ascii_case(scheme) {
        return Ok(None);
    }
    let token = rest.trim_start_matches(' ');
    if is_b64token(token) {
        Ok(Some(token.to_owned()))
    } else {
        Err(Rejection::InvalidToken {
            description: malformed,
        })
    }
}

/// The one `DPoP` header of a request (RFC 9449 §4.3: exactly one).
pub(crate) fn dpop_proof(headers: &HeaderMap) -> Result<String, Rejection> {
    let mut values = headers.get_all("dpop").iter();
    match (values.next(), values.next()) {
        (Some(value), None) => {
            value
                .to_str()
                .map(str::to_owned)
                .map_err(|_| Rejection::InvalidDpopProof {
                    description: "the DPoP header is not visible ASCII",
                })
        }
        (None, _) => Err(Rejection::InvalidDpopProof {
            description: "a DPoP-bound token needs a DPoP proof header",
        }),
        (Some(_), Some(_)) => Err(Rejection::InvalidDpopProof {
            description: "more than one DPoP header",
        }),
    }
}

/// The `access_token` parameter of a query string or form body. `Ok(None)`
/// when absent; a repeated or empty parameter is `invalid_request`.
pub(crate) fn from_urlencoded(encoded: &[u8]) -> Result<Option<String>, Rejection> {
    let mut found = None;
    for (name, value) in form_urlencoded::parse(encoded) {
        if name != "access_token" {
            continue;
        }
        if found.is_some() {
            return Err(Rejection::InvalidRequest {
                description: "access_token is repeated",
            });
        }
        if !is_b64token(&value) {
            return Err(Rejection::InvalidToken {
                description: "the bearer token is malformed",
            });
        }
        found = Some(value.into_owned());
    }
    Ok(found)
}

/// At most one of the methods may carry a token (§2: "Clients MUST NOT use
/// more than one method to transmit the token in each request").
pub(crate) fn only_one(found: [Option<String>; 3]) -> Result<Option<String>, Rejection> {
    let mut tokens = found.into_iter().flatten();
    let first = tokens.next();
    if tokens.next().is_some() {
        return Err(Rejection::InvalidRequest {
            description: "the token is sent by more than one method",
        });
    }
    Ok(first)
}

/// Whether the request is one whose body §2.2 allows to carry the token: a
/// single-part `application/x-www-form-urlencoded` body, not a GET.
pub(crate) fn is_form_post(method: &axum::http::Method, headers: &HeaderMap) -> bool {
    if method == axum::http::Method::GET {
        return false;
    }
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+"
/// / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

#[cfg(test)]
mod tests;
