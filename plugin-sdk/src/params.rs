//! Reading request parameters the way RFC 6749 §3.1 asks: an empty value
//! counts as absent, and a parameter must not be repeated.

use crate::types::{OAuthError, Params};

/// The value of the required parameter `name`.
///
/// Fails with `invalid_request` when it is missing (or empty, RFC 6749 §3.1:
/// "parameters sent without a value MUST be treated as if they were omitted")
/// or included more than once.
pub fn param<'a>(params: &'a Params, name: &str) -> Result<&'a str, OAuthError> {
    optional_param(params, name)?
        .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter `{name}`")))
}

/// The value of the optional parameter `name`, `None` when it is missing or
/// empty; fails with `invalid_request` when it is included more than once.
pub fn optional_param<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, OAuthError> {
    let mut values = params
        .iter()
        .filter(|(key, value)| key == name && !value.is_empty())
        .map(|(_, value)| value.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(OAuthError::invalid_request(format!(
            "parameter `{name}` is included more than once"
        )));
    }
    Ok(first)
}

/// Every non-empty value of `name`, in request order: for parameters an
/// extension grant defines as repeatable (e.g. RFC 8693 `audience` and
/// `resource`), which the manifest lists in `provides.repeatable_parameters`.
pub fn repeated_param<'a>(params: &'a Params, name: &str) -> Vec<&'a str> {
    params
        .iter()
        .filter(|(key, value)| key == name && !value.is_empty())
        .map(|(_, value)| value.as_str())
        .collect()
}

#[cfg(test)]
mod tests;
