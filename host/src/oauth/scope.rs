//! Scopes (RFC 6749 §3.3): space-delimited, case-sensitive scope tokens.

use super::OAuthError;

/// Splits a `scope` value into its tokens, refusing characters outside
/// %x21 / %x23-5B / %x5D-7E and empty tokens from doubled spaces.
pub fn parse(value: &str) -> Result<Vec<String>, OAuthError> {
    let mut scope: Vec<String> = Vec::new();
    for token in value.split(' ') {
        if token.is_empty() || !token.bytes().all(is_scope_char) {
            return Err(OAuthError::invalid_scope("the scope is malformed"));
        }
        if !scope.iter().any(|s| s == token) {
            scope.push(token.to_owned());
        }
    }
    Ok(scope)
}

/// Checks that every requested scope token is one the client registered.
pub fn check_allowed(requested: &[String], allowed: &[String]) -> Result<(), OAuthError> {
    match requested.iter().find(|s| !allowed.contains(s)) {
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
    }

    #[test]
    fn checks_against_registration() {
        let allowed = vec!["read".to_owned(), "write".to_owned()];
        assert!(check_allowed(&["read".into()], &allowed).is_ok());
        let error = check_allowed(&["admin".into()], &allowed).unwrap_err();
        assert_eq!(error.code.as_str(), "invalid_scope");
    }
}
