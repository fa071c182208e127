//! Table tests of [`param`] and [`optional_param`].

use crate::{optional_param, param};

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn one_parameter() {
    let check = |pairs: &[(&str, &str)], expect: Result<Option<&str>, &str>| {
        let params = params(pairs);
        let got = optional_param(&params, "code").map_err(|error| error.error);
        assert_eq!(got, expect.map_err(str::to_string), "{pairs:?}");
    };
    check(&[("code", "abc")], Ok(Some("abc")));
    check(&[("state", "x"), ("code", "abc")], Ok(Some("abc")));
    check(&[], Ok(None));
    check(&[("code", "")], Ok(None));
    check(&[("code", ""), ("code", "abc")], Ok(Some("abc")));
    check(&[("code", "abc"), ("code", "abc")], Err("invalid_request"));
    check(&[("code", "abc"), ("code", "def")], Err("invalid_request"));
}

#[test]
fn required_parameter() {
    let present = params(&[("code", "abc")]);
    assert_eq!(param(&present, "code").unwrap(), "abc");

    let error = param(&params(&[]), "code").unwrap_err();
    assert_eq!(error.error, "invalid_request");
    assert_eq!(
        error.error_description.as_deref(),
        Some("missing parameter `code`")
    );
}
