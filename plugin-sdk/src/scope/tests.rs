//! Table tests of [`requested_scope`], [`parse_scope`] and [`check_scope`].

use crate::testing::{params, strings};
use crate::{Client, check_scope, parse_scope, requested_scope};

#[test]
fn a_scope_value_is_split_checked_and_deduplicated() {
    let client = Client::public("tv").with_scopes(&["read", "write", "a:b"]);
    let check = |pairs: &[(&str, &str)], expect: Result<Option<Vec<&str>>, (&str, &str)>| {
        let got = requested_scope(&params(pairs), &client)
            .map_err(|error| (error.error, error.error_description.unwrap_or_default()));
        let expect = expect
            .map(|scope| scope.map(|words| strings(&words)))
            .map_err(|(code, description)| (code.to_string(), description.to_string()));
        assert_eq!(got, expect, "{pairs:?}");
    };
    check(&[], Ok(None));
    check(&[("scope", "")], Ok(None));
    check(&[("scope", "read")], Ok(Some(vec!["read"])));
    check(
        &[("scope", "write read write")],
        Ok(Some(vec!["write", "read"])),
    );
    check(&[("scope", "a:b")], Ok(Some(vec!["a:b"])));
    check(
        &[("scope", "read admin")],
        Err((
            "invalid_scope",
            "scope admin is not allowed for this client",
        )),
    );
    check(
        &[("scope", "read  write")],
        Err(("invalid_scope", "the scope is malformed")),
    );
    check(
        &[("scope", " read")],
        Err(("invalid_scope", "the scope is malformed")),
    );
    check(
        &[("scope", "re\"ad")],
        Err(("invalid_scope", "the scope is malformed")),
    );
    check(
        &[("scope", "réad")],
        Err(("invalid_scope", "the scope is malformed")),
    );
    check(
        &[("scope", "read"), ("scope", "write")],
        Err((
            "invalid_request",
            "parameter `scope` is included more than once",
        )),
    );
}

#[test]
fn a_scope_has_at_most_a_hundred_tokens() {
    let hundred = vec!["read"; 100].join(" ");
    assert_eq!(parse_scope(&hundred).unwrap(), strings(&["read"]));
    let error = parse_scope(&format!("{hundred} read")).unwrap_err();
    assert_eq!(error.error, "invalid_scope");
}

#[test]
fn check_scope_names_the_first_token_outside() {
    assert!(check_scope(&strings(&["read"]), &strings(&["read", "write"])).is_ok());
    assert!(check_scope(&[], &[]).is_ok());
    let error = check_scope(&strings(&["read", "x", "y"]), &strings(&["read"])).unwrap_err();
    assert_eq!(
        error.error_description.as_deref(),
        Some("scope x is not allowed for this client")
    );
}
