//! Request parameters of an `application/x-www-form-urlencoded` body or query
//! string, decoded strictly: malformed escapes and non-UTF-8 are errors, and a
//! repeated parameter is detected rather than silently picked (RFC 6749 §3.1).
//! Decoding and repeat detection take time linear in the input, and a request
//! carries at most [`MAX_PARAMETERS`] parameters.

use std::collections::HashSet;

use super::OAuthError;

/// The most parameters one request may carry. Every OAuth request this server
/// knows needs fewer than twenty; the cap bounds what one unauthenticated
/// request makes the server decode, store and look through.
pub const MAX_PARAMETERS: usize = 100;

/// Decoded parameters in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes a form body or query string; more than [`MAX_PARAMETERS`]
    /// parameters are an `invalid_request`, found before the excess is decoded.
    pub fn parse(input: &[u8]) -> Result<Self, OAuthError> {
        let mut pairs = Vec::new();
        for part in input.split(|&b| b == b'&') {
            if part.is_empty() {
                continue;
            }
            if pairs.len() == MAX_PARAMETERS {
                return Err(OAuthError::invalid_request(format!(
                    "the request has more than {MAX_PARAMETERS} parameters"
                )));
            }
            let (name, value) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Self { pairs })
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// The single value of `name`. RFC 6749 §3.1: a parameter sent without a
    /// value is treated as omitted, and parameters must not repeat.
    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut found = None;
        for (key, value) in &self.pairs {
            if key == name {
                if found.is_some() {
                    return Err(OAuthError::invalid_request(format!(
                        "parameter {name} is repeated"
                    )));
                }
                found = Some(value.as_str());
            }
        }
        Ok(found.filter(|value| !value.is_empty()))
    }

    /// Like [`Params::get`], but absence is an `invalid_request` too.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)?.ok_or_else(|| {
            OAuthError::invalid_request(format!("missing required parameter {name}"))
        })
    }

    /// Whether any parameter appears more than once.
    pub fn first_repeated(&self) -> Option<&str> {
        self.first_repeated_except::<&str>(&[])
    }

    /// Whether any parameter outside `repeatable` appears more than once
    /// (an extension grant may define parameters that repeat, e.g. RFC 8693
    /// `audience` and `resource`). One pass with a set of the names seen.
    pub fn first_repeated_except<S: AsRef<str>>(&self, repeatable: &[S]) -> Option<&str> {
        let mut seen = HashSet::with_capacity(self.pairs.len());
        self.pairs.iter().find_map(|(name, _)| {
            let repeats = !seen.insert(name.as_str());
            let allowed = || repeatable.iter().any(|r| r.as_ref() == name);
            (repeats && !allowed()).then_some(name.as_str())
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.pairs.iter().any(|(key, _)| key == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every pair except those named in `excluded`.
    pub fn without(&self, excluded: &[&str]) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter(|(name, _)| !excluded.contains(&name.as_str()))
            .cloned()
            .collect()
    }
}

/// Percent-decodes one name or value, `+` meaning space.
fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or_else(malformed_escape)?;
                let text = std::str::from_utf8(hex).map_err(|_| malformed_escape())?;
                bytes.push(u8::from_str_radix(text, 16).map_err(|_| malformed_escape())?);
                i += 2;
            }
            byte => bytes.push(byte),
        }
        i += 1;
    }
    String::from_utf8(bytes)
        .map_err(|_| OAuthError::invalid_request("request parameters are not valid UTF-8"))
}

fn malformed_escape() -> OAuthError {
    OAuthError::invalid_request("malformed percent-encoding in request parameters")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: Result<&[(&str, &str)], &str>) {
        let got = Params::parse(input.as_bytes());
        match expect {
            Ok(pairs) => {
                let got = got.unwrap_or_else(|e| panic!("{input}: {e}"));
                let got: Vec<_> = got.iter().collect();
                assert_eq!(got, pairs, "{input}");
            }
            Err(description) => {
                let error = got.expect_err(input);
                assert_eq!(error.description.as_deref(), Some(description), "{input}");
            }
        }
    }

    #[test]
    fn decodes_forms() {
        check("a=1&b=two+words", Ok(&[("a", "1"), ("b", "two words")]));
        check("scope=read%20write", Ok(&[("scope", "read write")]));
        check("a=&b", Ok(&[("a", ""), ("b", "")]));
        check("&&a=1&", Ok(&[("a", "1")]));
        check("x=%C3%A9", Ok(&[("x", "é")]));
        check("x=a=b", Ok(&[("x", "a=b")]));
        check(
            "x=%4",
            Err("malformed percent-encoding in request parameters"),
        );
        check(
            "x=%zz",
            Err("malformed percent-encoding in request parameters"),
        );
        check(
            "x=%",
            Err("malformed percent-encoding in request parameters"),
        );
        check("x=%FF", Err("request parameters are not valid UTF-8"));
        let at_cap = "a=1&".repeat(MAX_PARAMETERS);
        assert_eq!(
            Params::parse(at_cap.as_bytes()).unwrap().iter().count(),
            100
        );
        check(
            &format!("{at_cap}b=2"),
            Err("the request has more than 100 parameters"),
        );
        // Empty parts are not parameters and do not count.
        check(&format!("{at_cap}&&&"), Ok(&[("a", "1"); MAX_PARAMETERS]));
    }

    #[test]
    fn repeated_and_empty_parameters() {
        let params = Params::parse(b"a=1&a=2&b=&c=3").unwrap();
        assert!(params.get("a").is_err());
        assert_eq!(params.get("b").unwrap(), None);
        assert_eq!(params.get("c").unwrap(), Some("3"));
        assert_eq!(params.first_repeated(), Some("a"));
        assert_eq!(params.first_repeated_except(&["a"]), None);
        let twice = Params::parse(b"a=1&a=2&b=1&b=2").unwrap();
        assert_eq!(twice.first_repeated_except(&["a"]), Some("b"));
        assert!(params.require("b").is_err());
        assert_eq!(params.without(&["a", "b"]), vec![("c".into(), "3".into())]);
    }
}
