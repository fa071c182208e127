//! Reading a `scope` parameter (RFC 6749 §3.3) the way the host reads it at
//! `/token`, for plugin endpoints, whose parameters the host passes through
//! unparsed: space-delimited, case-sensitive tokens, each one the calling
//! client registered.

use crate::types::{Client, OAuthError, Params};

/// The most scope tokens one request may carry, as at the host's `/token`.
pub const MAX_SCOPE_TOKENS: usize = 100;

/// The `scope` parameter of a plugin endpoint request, split into its tokens
/// and checked against `client.scopes`; `None` when the request has no
/// `scope` (an empty value counts as absent, RFC 6749 §3.1).
///
/// Fails with `invalid_request` when `scope` is repeated, and with
/// `invalid_scope` when it is malformed (characters outside RFC 6749 §3.3's
/// `%x21 / %x23-5B / %x5D-7E`, doubled spaces, more than
/// [`MAX_SCOPE_TOKENS`] tokens) or names a scope the client did not
/// register. A token repeated in the value is kept once.
pub fn requested_scope(
    params: &Params,
    client: &Client,
) -> Result<Option<Vec<String>>, OAuthError> {
    let Some(value) = crate::optional_param(params, "scope")? else {
        return Ok(None);
    };
    let scope = parse_scope(value)?;
    check_scope(&scope, &client.scopes)?;
    Ok(Some(scope))
}

/// Splits a `scope` value into its tokens (see [`requested_scope`]).
pub fn parse_scope(value: &str) -> Result<Vec<String>, OAuthError> {
    let mut scope: Vec<String> = Vec::new();
    for (index, token) in value.split(' ').enumerate() {
        if index == MAX_SCOPE_TOKENS {
            return Err(OAuthError::invalid_scope(format!(
                "the scope has more than {MAX_SCOPE_TOKENS} scope tokens"
            )));
        }
        if token.is_empty() || !token.bytes().all(is_scope_char) {
            return Err(OAuthError::invalid_scope("the scope is malformed"));
        }
        if !scope.iter().any(|seen| seen == token) {
            scope.push(token.to_string());
        }
    }
    Ok(scope)
}

/// Refuses with `invalid_scope` the first token of `requested` that is not in
/// `allowed` (e.g. the client's registered scopes, or the scope a user was
/// asked for).
pub fn check_scope(requested: &[String], allowed: &[String]) -> Result<(), OAuthError> {
    match requested.iter().find(|token| !allowed.contains(token)) {
        Some(unknown) => Err(OAuthError::invalid_scope(format!(
            "scope {unknown} is not allowed for this client"
        ))),
        None => Ok(()),
    }
}

fn is_scope_char(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests;
