//! Client authentication at the token endpoint (RFC 6749 §2.3): reads the
//! credentials from HTTP Basic (`client_secret_basic`), the body
//! (`client_secret_post`) or a bare `client_id` (`none`, public clients).

use base64::Engine as _;

use super::{OAuthError, Params};

/// The credentials a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `client_secret_basic`: the Authorization header.
    Basic { client_id: String, secret: String },
    /// `client_secret_post`: `client_id` and `client_secret` in the body.
    Post { client_id: String, secret: String },
    /// `none`: a public client identifies itself with `client_id` only.
    None { client_id: String },
}

impl Credentials {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { client_id, .. } | Self::Post { client_id, .. } => client_id,
            Self::None { client_id } => client_id,
        }
    }

    /// The presented secret, if the method carries one.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Self::Basic { secret, .. } | Self::Post { secret, .. } => Some(secret),
            Self::None { .. } => None,
        }
    }

    /// The method's name in RFC 7591 §2 `token_endpoint_auth_method` terms.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Basic { .. } => "client_secret_basic",
            Self::Post { .. } => "client_secret_post",
            Self::None { .. } => "none",
        }
    }
}

/// The parameters that carry client credentials and never reach a plugin.
pub const CREDENTIAL_PARAMS: &[&str] = &["client_id", "client_secret"];

/// Reads the credentials of a request. RFC 6749 §2.3: a client must not use
/// more than one authentication method in a request.
pub fn extract(authorization: Option<&[u8]>, params: &Params) -> Result<Credentials, OAuthError> {
    let body_id = params.get("client_id")?;
    let body_secret = params.get("client_secret")?;
    if let Some(header) = authorization {
        let (client_id, secret) = parse_basic(header)?;
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "the client used more than one authentication method",
            ));
        }
        if body_id.is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the authenticated client",
            ));
        }
        return Ok(Credentials::Basic { client_id, secret });
    }
    match (body_id, body_secret) {
        (Some(client_id), Some(secret)) => Ok(Credentials::Post {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
        }),
        (Some(client_id), None) => Ok(Credentials::None {
            client_id: client_id.to_owned(),
        }),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "client_secret was sent without client_id",
        )),
        (None, None) => Err(OAuthError::invalid_client(
            "client authentication is required",
        )),
    }
}

/// Decodes `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(header: &[u8]) -> Result<(String, String), OAuthError> {
    let malformed = || OAuthError::invalid_client("the Authorization header is malformed");
    let text = std::str::from_utf8(header).map_err(|_| malformed())?;
    let (scheme, encoded) = text.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "the Authorization header uses an unsupported scheme",
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let (id, secret) = decoded
        .iter()
        .position(|&b| b == b':')
        .map(|i| (&decoded[..i], &decoded[i + 1..]))
        .ok_or_else(malformed)?;
    let id = form_decode(id).ok_or_else(malformed)?;
    let secret = form_decode(secret).ok_or_else(malformed)?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok((id, secret))
}

fn form_decode(raw: &[u8]) -> Option<String> {
    let mut input = b"v=".to_vec();
    input.extend_from_slice(raw);
    let params = Params::parse(&input).ok()?;
    Some(
        params
            .iter()
            .next()
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> Vec<u8> {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {token}").into_bytes()
    }

    fn params(body: &str) -> Params {
        Params::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn reads_each_method() {
        let creds = extract(Some(&basic("c1", "s%3Acret")), &params("")).unwrap();
        assert_eq!(
            creds,
            Credentials::Basic {
                client_id: "c1".into(),
                secret: "s:cret".into()
            }
        );
        let creds = extract(None, &params("client_id=c1&client_secret=s")).unwrap();
        assert_eq!(creds.method(), "client_secret_post");
        let creds = extract(None, &params("client_id=c1")).unwrap();
        assert_eq!(
            creds,
            Credentials::None {
                client_id: "c1".into()
            }
        );
    }

    #[test]
    fn refuses_ambiguous_or_missing_credentials() {
        let both = extract(Some(&basic("c1", "s")), &params("client_secret=s"));
        assert_eq!(both.unwrap_err().code.as_str(), "invalid_request");
        let none = extract(None, &params("grant_type=x")).unwrap_err();
        assert_eq!(none.code.as_str(), "invalid_client");
        let bad = extract(Some(b"Basic !!!"), &params("")).unwrap_err();
        assert_eq!(bad.code.as_str(), "invalid_client");
        let bearer = extract(Some(b"Bearer abc"), &params("")).unwrap_err();
        assert_eq!(bearer.code.as_str(), "invalid_client");
        let mismatch = extract(Some(&basic("c1", "s")), &params("client_id=c2")).unwrap_err();
        assert_eq!(mismatch.code.as_str(), "invalid_request");
    }
}
