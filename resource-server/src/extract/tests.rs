//! Reading the token: the header's syntax, query and form parameters, one method only.

use axum::http::HeaderValue;

use super::*;

fn header(values: &[&str]) -> Result<Option<String>, Rejection> {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
    }
    from_header(&headers)
}

fn code(result: Result<Option<String>, Rejection>) -> Result<Option<String>, &'static str> {
    result.map_err(|rejection| rejection.error_code().unwrap_or("none"))
}

#[test]
fn the_authorization_header() {
    let check = |values: &[&str], expect: Result<Option<&str>, &str>| {
        assert_eq!(
            code(header(values)),
            expect.map(|token| token.map(str::to_owned)),
            "{values:?}"
        );
    };
    check(&[], Ok(None));
    check(&["Bearer abc-._~+/=="], Ok(Some("abc-._~+/==")));
    check(&["bearer abc"], Ok(Some("abc")));
    check(&["Bearer   abc"], Ok(Some("abc")));
    check(&["Basic dXNlcjpwYXNz"], Ok(None));
    check(&["Bearer"], Err("invalid_token"));
    check(&["Bearer a b"], Err("invalid_token"));
    check(&["Bearer ===="], Err("invalid_token"));
    check(&["Bearer a,b"], Err("invalid_token"));
    check(&["Bearer a", "Bearer b"], Err("invalid_request"));
}

#[test]
fn query_and_form_parameters() {
    let check = |encoded: &str, expect: Result<Option<&str>, &str>| {
        assert_eq!(
            code(from_urlencoded(encoded.as_bytes())),
            expect.map(|token| token.map(str::to_owned)),
            "{encoded}"
        );
    };
    check("", Ok(None));
    check("x=1", Ok(None));
    check("x=1&access_token=abc", Ok(Some("abc")));
    check("access_token=a%2Bb", Ok(Some("a+b")));
    check("access_token=a&access_token=a", Err("invalid_request"));
    check("access_token=", Err("invalid_token"));
    check("access_token=a%20b", Err("invalid_token"));
}

#[test]
fn only_one_method() {
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(only_one([None, None, None]), Ok(None));
    assert_eq!(only_one([None, some("a"), None]), Ok(some("a")));
    assert_eq!(
        only_one([some("a"), None, some("a")])
            .unwrap_err()
            .error_code(),
        Some("invalid_request")
    );
}

#[test]
fn form_posts() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    assert!(is_form_post(&axum::http::Method::POST, &headers));
    assert!(!is_form_post(&axum::http::Method::GET, &headers));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    assert!(!is_form_post(&axum::http::Method::POST, &headers));
}
