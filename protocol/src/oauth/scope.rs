//! Scopes (RFC 6749 §3.3): space-delimited, case-sensitive scope tokens, at
//! most [`MAX_SCOPE_TOKENS`] of them, parsed and checked in linear time.

use std::collections::HashSet;

use super::OAuthError;

/// The most scope tokens one request may carry (repeats included); a client
/// registers a handful, so anything past this is an attack or a mistake.
pub const MAX_SCOPE_TOKENS: usize = 100;

/// Splits a `scope` value into its tokens, refusing characters outside
/// %x21 / %x23-5B / %x5D-7E, empty tokens from doubled spaces and more than
/// [`MAX_SCOPE_TOKENS`] tokens; a repeated token is kept once.
pub fn parse(value: &str) -> Result<Vec<String>, OAuthError> {
    let mut scope: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for (index, token) in value.split(' ').enumerate() {
        if index == MAX_SCOPE_TOKENS {
            return Err(OAuthError::invalid_scope(format!(
                "the scope has more than {MAX_SCOPE_TOKENS} scope tokens"
            )));
        }
        if token.is_empty() || !token.bytes().all(is_scope_char) {
            return Err(OAuthError::invalid_scope("the scope is malformed"));
        }
        if seen.insert(token) {
            scope.push(token.to_owned());
        }
    }
    Ok(scope)
}

/// Checks that every requested scope token is one the client registered.
pub fn check_allowed(requested: &[String], allowed: &[String]) -> Result<(), OAuthError> {
    let allowed: HashSet<&str> = allowed.iter().map(String::as_str).collect();
    match requested.iter().find(|s| !allowed.contains(s.as_str())) {
        Some(unknown) => Err(OAuthError::invalid_scope(format!(
            "scope {unknown} is not allowed for this client"
        ))),
        None => Ok(()),
    }
}

pub fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scope_tokens() {
        assert_eq!(parse("read write read").unwrap(), vec!["read", "write"]);
        assert!(parse("read  write").is_err());
        assert!(parse("read\"").is_err());
        assert!(parse(" read").is_err());
        let at_cap = vec!["read"; MAX_SCOPE_TOKENS].join(" ");
        assert_eq!(parse(&at_cap).unwrap(), vec!["read"]);
        let error = parse(&format!("{at_cap} write")).unwrap_err();
        assert_eq!(error.code.as_str(), "invalid_scope");
        assert_eq!(
            error.description.as_deref(),
            Some("the scope has more than 100 scope tokens")
        );
    }

    #[test]
    fn checks_against_registration() {
        let allowed = vec!["read".to_owned(), "write".to_owned()];
        assert!(check_allowed(&["read".into()], &allowed).is_ok());
        let error = check_allowed(&["admin".into()], &allowed).unwrap_err();
        assert_eq!(error.code.as_str(), "invalid_scope");
    }
}
