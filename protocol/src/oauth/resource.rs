//! RFC 8707 resource indicators: which `resource` values a request may carry
//! and which resources its access token is then for (its audience). Pure
//! functions of the request's values and the client's registration or the
//! grant's authorization; the endpoints and the host's token minting feed them.

use super::{OAuthError, Params};

/// The most `resource` values one request may carry.
pub const MAX_RESOURCES: usize = 16;

/// What a requested resource is checked against.
#[derive(Debug, Clone, Copy)]
pub enum Allowed<'a> {
    /// The resources registered for the client (`client add --resource`): an
    /// authorization request, or a token request that starts a grant.
    Registered(&'a [String]),
    /// The resources the grant was authorized for (RFC 8707 §2.2): a code's
    /// or a refresh token's.
    Authorized(&'a [String]),
}

impl Allowed<'_> {
    fn resources(&self) -> &[String] {
        match self {
            Self::Registered(resources) | Self::Authorized(resources) => resources,
        }
    }
}

/// Why `value` is not a resource indicator, or `None` when it is one: RFC 8707
/// §2 requires an absolute URI (RFC 3986 §4.3) without a fragment.
pub fn malformed(value: &str) -> Option<&'static str> {
    if value.contains('#') {
        return Some("must not contain a fragment");
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Some("must be printable ascii without spaces");
    }
    match url::Url::parse(value) {
        Ok(_) => None,
        Err(_) => Some("is not an absolute uri"),
    }
}

/// The `resource` values of a request in the order sent, each once; a value
/// sent empty is omitted (RFC 6749 §3.1). RFC 8707 §2 lets the parameter
/// repeat, so this never refuses a repetition.
pub fn requested(params: &Params) -> Vec<&str> {
    let mut values: Vec<&str> = Vec::new();
    for (name, value) in params.iter() {
        if name == "resource" && !value.is_empty() && !values.contains(&value) {
            values.push(value);
        }
    }
    values
}

/// The resources a token is for: every requested one, each well formed and
/// allowed, or all the allowed ones when none was requested (the default
/// resource of RFC 8707 §2 and RFC 9068 §3). Any other request is
/// `invalid_target`.
pub fn audience(requested: &[&str], allowed: Allowed<'_>) -> Result<Vec<String>, OAuthError> {
    if requested.len() > MAX_RESOURCES {
        return Err(OAuthError::invalid_target(format!(
            "at most {MAX_RESOURCES} resource values"
        )));
    }
    for resource in requested {
        if let Some(reason) = malformed(resource) {
            return Err(OAuthError::invalid_target(format!(
                "resource {resource} {reason}"
            )));
        }
        if !allowed.resources().iter().any(|r| r == resource) {
            let why = match allowed {
                Allowed::Registered(_) => "is not registered for the client",
                Allowed::Authorized(_) => "was not authorized for this grant",
            };
            return Err(OAuthError::invalid_target(format!(
                "resource {resource} {why}"
            )));
        }
    }
    if requested.is_empty() {
        return Ok(allowed.resources().to_vec());
    }
    Ok(requested.iter().map(|r| (*r).to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    /// `aud a b` for an accepted request, `<error>: <description>` otherwise.
    fn outcome(query: &str, allowed: Allowed<'_>) -> String {
        let params = Params::parse(query.as_bytes()).expect(query);
        match audience(&requested(&params), allowed) {
            Ok(audience) => format!("aud {}", audience.join(" ")),
            Err(error) => format!("{}: {}", error.code, error.description.unwrap_or_default()),
        }
    }

    #[test]
    fn resources_are_registered_absolute_uris_without_fragment() {
        let registered = strings(&["https://api.example/", "https://billing.example/v1"]);
        let authorized = strings(&["https://api.example/"]);
        let check = |query: &str, allowed, expect: &str| {
            assert_eq!(outcome(query, allowed), expect, "{query}");
        };
        let registered_ = Allowed::Registered(&registered);
        let authorized_ = Allowed::Authorized(&authorized);
        // RFC 8707 §2: one requested resource becomes the audience.
        check(
            "resource=https://api.example/",
            registered_,
            "aud https://api.example/",
        );
        // RFC 8707 §2: several resources may be requested; all are the audience.
        check(
            "resource=https://api.example/&resource=https://billing.example/v1",
            registered_,
            "aud https://api.example/ https://billing.example/v1",
        );
        // A value repeated is the same resource once.
        check(
            "resource=https://api.example/&resource=https://api.example/",
            registered_,
            "aud https://api.example/",
        );
        // RFC 9068 §3: without resource, the default: every allowed resource.
        check(
            "scope=read",
            registered_,
            "aud https://api.example/ https://billing.example/v1",
        );
        // RFC 6749 §3.1: a parameter sent empty is omitted.
        check("resource=", authorized_, "aud https://api.example/");
        // RFC 8707 §2: an absolute URI is required.
        check(
            "resource=api",
            registered_,
            "invalid_target: resource api is not an absolute uri",
        );
        // RFC 8707 §2: a fragment is not allowed.
        check(
            "resource=https://api.example/%23x",
            registered_,
            "invalid_target: resource https://api.example/#x must not contain a fragment",
        );
        // RFC 8707 §2: a resource the server does not let the client use is invalid_target.
        check(
            "resource=https://evil.example/",
            registered_,
            "invalid_target: resource https://evil.example/ is not registered for the client",
        );
        // URIs compare as strings: a trailing slash is another resource.
        check(
            "resource=https://billing.example/v1/",
            registered_,
            "invalid_target: resource https://billing.example/v1/ is not registered for the client",
        );
        // RFC 8707 §2.2: a code or refresh token only reaches what the grant authorized.
        check(
            "resource=https://billing.example/v1",
            authorized_,
            "invalid_target: resource https://billing.example/v1 was not authorized for this grant",
        );
        // Without any registered resource the audience stays empty (no restriction).
        check("scope=read", Allowed::Registered(&[]), "aud ");
        let many: Vec<String> = (0..=MAX_RESOURCES)
            .map(|i| format!("resource=https://r{i}.example/"))
            .collect();
        check(
            &many.join("&"),
            registered_,
            "invalid_target: at most 16 resource values",
        );
    }
}
