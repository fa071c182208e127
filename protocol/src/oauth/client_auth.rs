//! Client authentication at the token endpoint (RFC 6749 §2.3): reads the
//! credentials from HTTP Basic (`client_secret_basic`), the body
//! (`client_secret_post`), a JWT client assertion (`private_key_jwt` or
//! `client_secret_jwt`, RFC 7523 §2.2) or a bare `client_id` (`none`, public
//! clients), and says which registered method a presentation fits.

use base64::Engine as _;

use super::client_assertion::{self, JWT_BEARER};
use super::{OAuthError, Params};

/// A client's registered `token_endpoint_auth_method` (RFC 7591 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 §2.2 signed with a key whose public part the client registered.
    PrivateKeyJwt,
    /// RFC 7523 §2.2 with an HMAC keyed with the client secret (OpenID
    /// Connect Core §9): the secret never travels.
    ClientSecretJwt,
    /// A public client: `client_id` only.
    None,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 5] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::ClientSecretJwt,
        Self::None,
    ];

    /// The RFC 7591 / OpenID Connect Core §9 name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::None => "none",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// Whether `credentials` use a method the client may use. `registered` is
/// the client's `token_endpoint_auth_method`; a client registered without
/// one keeps the behaviour before the column existed: a public client
/// presents `none`, a confidential one Basic or the body. A client
/// registered for one method fails with any other (RFC 7591 §2). A client
/// assertion fits either JWT method here; its `alg` tells them apart once
/// the registration is known (an HMAC for `client_secret_jwt`, a signature
/// for `private_key_jwt`).
pub fn method_allowed(
    registered: Option<AuthMethod>,
    public: bool,
    credentials: &Credentials,
) -> bool {
    let presented = credentials.method();
    match registered {
        Some(AuthMethod::PrivateKeyJwt | AuthMethod::ClientSecretJwt) => {
            matches!(credentials, Credentials::Assertion { .. })
        }
        Some(method) => presented == method.as_str(),
        None if public => presented == "none",
        None => matches!(
            credentials,
            Credentials::Basic { .. } | Credentials::Post { .. }
        ),
    }
}

/// The credentials a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `client_secret_basic`: the Authorization header.
    Basic { client_id: String, secret: String },
    /// `client_secret_post`: `client_id` and `client_secret` in the body.
    Post { client_id: String, secret: String },
    /// `none`: a public client identifies itself with `client_id` only.
    None { client_id: String },
    /// `private_key_jwt` or `client_secret_jwt`: `client_assertion`, whose
    /// unverified `sub` names the client (RFC 7523 §3 item 2).
    Assertion {
        client_id: String,
        assertion: String,
    },
}

impl Credentials {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { client_id, .. } | Self::Post { client_id, .. } => client_id,
            Self::None { client_id } | Self::Assertion { client_id, .. } => client_id,
        }
    }

    /// The presented secret, if the method carries one.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Self::Basic { secret, .. } | Self::Post { secret, .. } => Some(secret),
            Self::None { .. } | Self::Assertion { .. } => None,
        }
    }

    /// The method's name in RFC 7591 §2 `token_endpoint_auth_method` terms;
    /// `client_assertion` for either JWT method (which one depends on the
    /// client's registration and the assertion's `alg`).
    pub fn method(&self) -> &'static str {
        match self {
            Self::Basic { .. } => "client_secret_basic",
            Self::Post { .. } => "client_secret_post",
            Self::None { .. } => "none",
            Self::Assertion { .. } => "client_assertion",
        }
    }
}

/// The parameters that carry client credentials and never reach a plugin.
pub const CREDENTIAL_PARAMS: &[&str] = &[
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
];

/// Reads the credentials of a request. RFC 6749 §2.3: a client must not use
/// more than one authentication method in a request.
pub fn extract(authorization: Option<&[u8]>, params: &Params) -> Result<Credentials, OAuthError> {
    let body_id = params.get("client_id")?;
    let body_secret = params.get("client_secret")?;
    let assertion_type = params.get("client_assertion_type")?;
    let assertion = params.get("client_assertion")?;
    if assertion_type.is_some() || assertion.is_some() {
        if authorization.is_some() || body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "the client used more than one authentication method",
            ));
        }
        return read_assertion(assertion_type, assertion, body_id);
    }
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

/// RFC 7521 §4.2: `client_assertion_type` and `client_assertion` together;
/// RFC 7523 §3: the `sub` is the client, and a `client_id` sent beside it
/// must name the same client.
fn read_assertion(
    assertion_type: Option<&str>,
    assertion: Option<&str>,
    body_id: Option<&str>,
) -> Result<Credentials, OAuthError> {
    let (Some(assertion_type), Some(assertion)) = (assertion_type, assertion) else {
        return Err(OAuthError::invalid_request(
            "client_assertion and client_assertion_type must be sent together",
        ));
    };
    if assertion_type != JWT_BEARER {
        return Err(OAuthError::invalid_client(
            "client_assertion_type is not supported",
        ));
    }
    let Some(client_id) = client_assertion::unverified_subject(assertion) else {
        return Err(OAuthError::invalid_client("client authentication failed"));
    };
    if body_id.is_some_and(|id| id != client_id) {
        return Err(OAuthError::invalid_client("client authentication failed"));
    }
    Ok(Credentials::Assertion {
        client_id,
        assertion: assertion.to_owned(),
    })
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

    /// A compact JWS whose claims are `{"sub": sub}` (signature not checked here).
    fn assertion(sub: &str) -> String {
        let encode = |v: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.c2ln",
            encode(r#"{"alg":"ES256"}"#.into()),
            encode(format!(r#"{{"sub":"{sub}"}}"#))
        )
    }

    #[test]
    fn reads_a_client_assertion() {
        let body = |extra: &str| {
            params(&format!(
                "client_assertion_type={}&client_assertion={}{extra}",
                JWT_BEARER,
                assertion("c1")
            ))
        };
        let creds = extract(None, &body("")).unwrap();
        assert_eq!(creds.client_id(), "c1");
        assert_eq!(creds.secret(), None);
        assert!(matches!(creds, Credentials::Assertion { .. }));
        assert_eq!(
            extract(None, &body("&client_id=c1")).unwrap().client_id(),
            "c1"
        );
        let cases = [
            (extract(None, &body("&client_id=c2")), "invalid_client"),
            (extract(None, &body("&client_secret=s")), "invalid_request"),
            (
                extract(Some(&basic("c1", "s")), &body("")),
                "invalid_request",
            ),
            (
                extract(
                    None,
                    &params(&format!("client_assertion={}", assertion("c1"))),
                ),
                "invalid_request",
            ),
            (
                extract(
                    None,
                    &params(&format!("client_assertion_type={JWT_BEARER}")),
                ),
                "invalid_request",
            ),
            (
                extract(
                    None,
                    &params(&format!(
                        "client_assertion_type=urn:x&client_assertion={}",
                        assertion("c1")
                    )),
                ),
                "invalid_client",
            ),
            (
                extract(
                    None,
                    &params(&format!(
                        "client_assertion_type={JWT_BEARER}&client_assertion=x.y.z"
                    )),
                ),
                "invalid_client",
            ),
        ];
        for (got, code) in cases {
            assert_eq!(got.unwrap_err().code.as_str(), code);
        }
    }

    #[test]
    fn a_client_uses_its_registered_method_only() {
        let basic = Credentials::Basic {
            client_id: "c".into(),
            secret: "s".into(),
        };
        let post = Credentials::Post {
            client_id: "c".into(),
            secret: "s".into(),
        };
        let none = Credentials::None {
            client_id: "c".into(),
        };
        let jwt = Credentials::Assertion {
            client_id: "c".into(),
            assertion: "a.b.c".into(),
        };
        use AuthMethod::{ClientSecretBasic, ClientSecretJwt, ClientSecretPost, PrivateKeyJwt};
        let rows: [(Option<AuthMethod>, bool, [bool; 4]); 7] = [
            // registered, public: allowed for [basic, post, none, assertion]
            (None, false, [true, true, false, false]),
            (None, true, [false, false, true, false]),
            (Some(ClientSecretBasic), false, [true, false, false, false]),
            (Some(ClientSecretPost), false, [false, true, false, false]),
            (Some(PrivateKeyJwt), false, [false, false, false, true]),
            (Some(ClientSecretJwt), false, [false, false, false, true]),
            (Some(AuthMethod::None), true, [false, false, true, false]),
        ];
        for (registered, public, expect) in rows {
            let got = [&basic, &post, &none, &jwt].map(|c| method_allowed(registered, public, c));
            assert_eq!(got, expect, "{registered:?}");
        }
        for method in AuthMethod::ALL {
            assert_eq!(AuthMethod::parse(method.as_str()), Some(method));
        }
    }
}
