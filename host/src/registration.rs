//! Validation of client and user registrations (`grantbox client add`, `grantbox user add`):
//! raw operator input in, a storable [`Client`] or [`User`] out. Does no IO; the caller stores
//! the result.

use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::client_assertion::{self, JwksError};
use crate::keys::KeyEncryptionKey;
use crate::oauth::client_auth::AuthMethod;
use crate::oauth::profile::Profile;
use crate::oauth::resource::{self, MAX_RESOURCES};
use crate::openid::claims::{self, ClaimError};
use crate::secret;
use crate::store::{AccessTokenFormat, Client, ClientAuth, User};

/// A client as the operator describes it, before validation: `client add`'s
/// flags, or the JSON body of the admin API's `POST /admin/clients` (under
/// the RFC 7591 names where they differ; a field left out keeps its default).
#[derive(
    Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(default, deny_unknown_fields)]
pub struct ClientRegistration {
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    /// RFC 7591 `grant_types`; empty means the default for the client type.
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub public: bool,
    pub trusted: bool,
    /// A resource server that may introspect other clients' access tokens.
    pub introspection: bool,
    #[serde(rename = "client_name")]
    pub name: Option<String>,
    /// The operator's own secret for a confidential client; generated when `None`.
    #[serde(rename = "client_secret")]
    pub secret: Option<String>,
    /// RFC 7591 `client_uri`: https (or http on loopback), shown on the consent page.
    pub client_uri: Option<String>,
    /// RFC 7591 `token_endpoint_auth_method`; `None` keeps the default: a
    /// secret by Basic or in the body, `none` for a public client.
    #[serde(rename = "token_endpoint_auth_method", with = "auth_method_name")]
    #[schema(value_type = Option<String>, default = json!(null))]
    pub auth_method: Option<AuthMethod>,
    /// `private_key_jwt`: the client's JWK Set of public keys (the text of
    /// the `--jwks` file).
    pub jwks: Option<String>,
    /// RFC 8707 resources the client may ask tokens for.
    pub resources: Vec<String>,
    /// `opaque` or `jwt`; empty means `opaque`.
    pub access_token_format: String,
    /// OpenID Connect RP-Initiated Logout 1.0 `post_logout_redirect_uris`,
    /// held to the rules of redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// OpenID Connect Registration §2 `id_token_signed_response_alg`: `ES256`,
    /// `RS256` or `EdDSA`; `None` means RS256. Whether the host has a key
    /// for it is checked where the keys are known (`client add`).
    pub id_token_signed_response_alg: Option<String>,
    /// A profile whose rules the client is held to beyond the server's
    /// (`fapi2`: the FAPI 2.0 Security Profile); `None`: none.
    pub profile: Option<String>,
    /// RFC 9126 §6 `require_pushed_authorization_requests`: the client's
    /// authorization requests must be pushed (`client add --require-par`).
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 §5.2 `dpop_bound_access_tokens` (`--require-dpop`): the client
    /// always presents a DPoP proof at the token endpoint, and is refused
    /// without one.
    pub dpop_bound_access_tokens: bool,
}

/// A [`ClientRegistration`]'s `auth_method` as its RFC 7591 name.
mod auth_method_name {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::oauth::client_auth::AuthMethod;

    pub fn serialize<S: Serializer>(
        method: &Option<AuthMethod>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match method {
            Some(method) => serializer.serialize_some(method.as_str()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<AuthMethod>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(name) => AuthMethod::parse(&name).map(Some).ok_or_else(|| {
                D::Error::custom(format!("unknown token_endpoint_auth_method {name:?}"))
            }),
        }
    }
}

/// Why a registration was refused. Messages name the offending value, never a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("client id {0:?} must be 1 to 255 printable ascii characters")]
    ClientId(String),
    #[error("client name must be at most 255 characters without control characters")]
    ClientName,
    #[error("redirect uri {uri:?} {reason}")]
    RedirectUri { uri: String, reason: &'static str },
    #[error("post-logout redirect uri {uri:?} {reason}")]
    PostLogoutRedirectUri { uri: String, reason: &'static str },
    #[error("client_uri {0:?} must be an https URL (or http on loopback)")]
    ClientUri(String),
    #[error("grant type {0:?} is neither a known grant type nor an absolute uri")]
    GrantType(String),
    #[error(
        "grant type `client_credentials` needs a confidential client: a public client cannot authenticate (rfc 6749 §4.4)"
    )]
    PublicClientCredentials,
    #[error("grant type `{0}` needs at least one redirect uri")]
    RedirectUriRequired(String),
    #[error("scope {0:?} is not a valid scope token (rfc 6749 §3.3)")]
    Scope(String),
    #[error(
        "a public client cannot introspect tokens: introspection needs a confidential client (rfc 7662 §2.1)"
    )]
    PublicIntrospection,
    #[error("a public client cannot have a client secret")]
    PublicSecret,
    #[error("client secret must be at least {MIN_SECRET_LEN} characters")]
    SecretTooShort,
    #[error("client secret must be printable ascii characters")]
    SecretCharacters,
    #[error("resource {uri:?} {reason} (rfc 8707 §2)")]
    Resource { uri: String, reason: &'static str },
    #[error("at most {MAX_RESOURCES} resources per client")]
    TooManyResources,
    #[error(
        "id_token_signed_response_alg {0:?} must be ES256, RS256 or EdDSA (openid connect registration §2)"
    )]
    IdTokenSignedResponseAlg(String),
    #[error("access token format {0:?} is neither `opaque` nor `jwt`")]
    AccessTokenFormat(String),
    #[error(
        "access token format `jwt` needs at least one --resource: a jwt access token must name its audience (rfc 9068 §3)"
    )]
    JwtWithoutResource,
    #[error(
        "username {0:?} must be 1 to 128 characters, none a control character, without leading or trailing whitespace"
    )]
    Username(String),
    #[error("password must be at least {MIN_PASSWORD_LEN} characters")]
    PasswordTooShort,
    #[error("cannot hash password: {0}")]
    HashPassword(String),
    #[error("a public client authenticates with `none` only, not {0}")]
    PublicAuthMethod(&'static str),
    #[error("token_endpoint_auth_method `none` is for public clients (--public)")]
    ConfidentialNone,
    #[error("token_endpoint_auth_method private_key_jwt needs the client's public keys (--jwks)")]
    JwksRequired,
    #[error("--jwks is only for token_endpoint_auth_method private_key_jwt")]
    JwksUnused,
    #[error("a private_key_jwt client has no secret: it signs with its own keys (--jwks)")]
    PrivateKeyJwtSecret,
    #[error(
        "a client_secret_jwt client's secret is kept sealed under the key-encryption key, and none was given"
    )]
    KeyEncryptionKeyRequired,
    #[error("{0}")]
    Jwks(#[from] JwksError),
    #[error("{0}")]
    Claim(#[from] ClaimError),
    #[error("profile {0:?} is unknown (fapi2)")]
    Profile(String),
    #[error("a {profile} client {rule}")]
    ProfileRule {
        profile: &'static str,
        rule: &'static str,
    },
}

/// Shortest operator-supplied client secret, in characters.
pub const MIN_SECRET_LEN: usize = 32;

/// Shortest user password, in characters.
pub const MIN_PASSWORD_LEN: usize = 8;

/// The RFC 7591 `grant_types` words Grantbox knows; anything else must be an
/// absolute URI (an extension grant, RFC 6749 §4.5).
pub const KNOWN_GRANT_TYPES: [&str; 5] = [
    "authorization_code",
    "implicit",
    "password",
    "client_credentials",
    "refresh_token",
];

/// Validates a client registration into a storable [`Client`] created at `now`.
///
/// Also returns the plaintext secret when one was generated, to show the
/// operator once; an operator-supplied secret is not echoed back. Only the
/// secret's SHA-256 is stored. Redirect URIs are stored exactly as given.
pub fn validate(
    reg: ClientRegistration,
    now: i64,
) -> Result<(Client, Option<String>), RegistrationError> {
    validate_sealing(reg, now, None)
}

/// As [`validate`]; a `client_secret_jwt` client's secret is also kept
/// sealed under `kek` (the server needs the secret itself as the HMAC key
/// of the client's assertions), so that method needs it.
pub fn validate_sealing(
    reg: ClientRegistration,
    now: i64,
    kek: Option<&KeyEncryptionKey>,
) -> Result<(Client, Option<String>), RegistrationError> {
    if reg.client_id.is_empty()
        || reg.client_id.len() > 255
        || !reg.client_id.bytes().all(is_vschar)
    {
        return Err(RegistrationError::ClientId(reg.client_id));
    }

    let name = match reg.name {
        Some(name) if name.is_empty() => None,
        Some(name) if name.chars().count() > 255 || name.chars().any(char::is_control) => {
            return Err(RegistrationError::ClientName);
        }
        name => name,
    };

    let client_uri = match reg.client_uri {
        Some(uri) if uri.is_empty() => None,
        Some(uri) => match url::Url::parse(&uri) {
            Ok(url)
                if url.scheme() == "https"
                    || (url.scheme() == "http"
                        && matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))) =>
            {
                Some(uri)
            }
            _ => return Err(RegistrationError::ClientUri(uri)),
        },
        None => None,
    };

    let mut redirect_uris = Vec::with_capacity(reg.redirect_uris.len());
    for uri in reg.redirect_uris {
        if let Err(reason) = check_redirect_uri(&uri) {
            return Err(RegistrationError::RedirectUri { uri, reason });
        }
        if !redirect_uris.contains(&uri) {
            redirect_uris.push(uri);
        }
    }

    // Where the browser goes after signing out: the same rules as a redirect
    // URI, since `/end_session` redirects there as `/authorize` does.
    let mut post_logout_redirect_uris = Vec::with_capacity(reg.post_logout_redirect_uris.len());
    for uri in reg.post_logout_redirect_uris {
        if let Err(reason) = check_redirect_uri(&uri) {
            return Err(RegistrationError::PostLogoutRedirectUri { uri, reason });
        }
        if !post_logout_redirect_uris.contains(&uri) {
            post_logout_redirect_uris.push(uri);
        }
    }

    let mut grant_types = Vec::with_capacity(reg.grant_types.len().max(1));
    for grant_type in reg.grant_types {
        if !is_grant_type(&grant_type) {
            return Err(RegistrationError::GrantType(grant_type));
        }
        if !grant_types.contains(&grant_type) {
            grant_types.push(grant_type);
        }
    }
    if grant_types.is_empty() {
        let default = if reg.public {
            "authorization_code"
        } else {
            "client_credentials"
        };
        grant_types.push(default.to_owned());
    }
    if reg.public && grant_types.iter().any(|g| g == "client_credentials") {
        return Err(RegistrationError::PublicClientCredentials);
    }
    if redirect_uris.is_empty()
        && let Some(needs) = grant_types
            .iter()
            .find(|g| *g == "authorization_code" || *g == "implicit")
    {
        return Err(RegistrationError::RedirectUriRequired(needs.clone()));
    }

    let mut scopes = Vec::with_capacity(reg.scopes.len());
    for scope in reg.scopes {
        if scope.is_empty() || !scope.bytes().all(is_scope_char) {
            return Err(RegistrationError::Scope(scope));
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }

    let jwks = match (reg.auth_method, reg.jwks) {
        (Some(AuthMethod::PrivateKeyJwt), Some(jwks)) => Some(client_assertion::parse_jwks(&jwks)?),
        (Some(AuthMethod::PrivateKeyJwt), None) => return Err(RegistrationError::JwksRequired),
        (_, Some(_)) => return Err(RegistrationError::JwksUnused),
        (_, None) => None,
    };
    match reg.auth_method {
        Some(AuthMethod::None) if !reg.public => return Err(RegistrationError::ConfidentialNone),
        Some(method) if reg.public && method != AuthMethod::None => {
            return Err(RegistrationError::PublicAuthMethod(method.as_str()));
        }
        Some(AuthMethod::PrivateKeyJwt) if reg.secret.is_some() => {
            return Err(RegistrationError::PrivateKeyJwtSecret);
        }
        _ => {}
    }

    let mut resources = Vec::with_capacity(reg.resources.len());
    for uri in reg.resources {
        if let Some(reason) = resource::malformed(&uri) {
            return Err(RegistrationError::Resource { uri, reason });
        }
        if !resources.contains(&uri) {
            resources.push(uri);
        }
    }
    if resources.len() > MAX_RESOURCES {
        return Err(RegistrationError::TooManyResources);
    }
    let access_token_format = match reg.access_token_format.as_str() {
        "" => AccessTokenFormat::Opaque,
        word => AccessTokenFormat::parse(word)
            .ok_or_else(|| RegistrationError::AccessTokenFormat(word.to_owned()))?,
    };
    if access_token_format == AccessTokenFormat::Jwt && resources.is_empty() {
        return Err(RegistrationError::JwtWithoutResource);
    }

    let sealing_kek = match reg.auth_method {
        Some(AuthMethod::ClientSecretJwt) => {
            Some(kek.ok_or(RegistrationError::KeyEncryptionKeyRequired)?)
        }
        _ => None,
    };
    let mut secret_sealed = None;
    let mut seal = |secret: &str| {
        if let Some(kek) = sealing_kek {
            secret_sealed = Some(kek.seal_client_secret(&reg.client_id, secret));
        }
    };
    let (secret_hash, generated) = match (reg.public, reg.secret) {
        (true, _) if reg.introspection => return Err(RegistrationError::PublicIntrospection),
        // Its keys are its credential: no secret exists to leak.
        (false, _) if jwks.is_some() => (None, None),
        (true, Some(_)) => return Err(RegistrationError::PublicSecret),
        (true, None) => (None, None),
        (false, Some(secret)) => {
            if !secret.bytes().all(is_vschar) {
                return Err(RegistrationError::SecretCharacters);
            }
            if secret.len() < MIN_SECRET_LEN {
                return Err(RegistrationError::SecretTooShort);
            }
            seal(&secret);
            (Some(secret::token_hash(&secret).to_vec()), None)
        }
        (false, None) => {
            let secret = secret::new_token();
            seal(&secret);
            (Some(secret::token_hash(&secret).to_vec()), Some(secret))
        }
    };

    let profile = match reg.profile.as_deref() {
        None | Some("") => None,
        Some(name) => {
            Some(Profile::parse(name).ok_or_else(|| RegistrationError::Profile(name.to_owned()))?)
        }
    };
    let id_token_signed_response_alg = match reg.id_token_signed_response_alg {
        None => None,
        Some(name) => match crate::keys::Alg::parse(&name) {
            Some(alg) => Some(alg.name().to_owned()),
            None => return Err(RegistrationError::IdTokenSignedResponseAlg(name)),
        },
    };
    let mut client = Client {
        client_id: reg.client_id,
        secret_hash,
        name,
        client_uri,
        redirect_uris,
        grant_types,
        scopes,
        public: reg.public,
        trusted: reg.trusted,
        introspection: reg.introspection,
        created_at: now,
        auth: ClientAuth {
            method: reg.auth_method,
            jwks,
            secret_sealed,
            previous_secret: None,
        },
        resources,
        access_token_format,
        post_logout_redirect_uris,
        id_token_signed_response_alg,
        profile,
        require_pushed_authorization_requests: reg.require_pushed_authorization_requests,
        dpop_bound_access_tokens: reg.dpop_bound_access_tokens,
    };
    if let Some(profile) = profile {
        // What the profile requires of every request is switched on for the
        // client, and stays on while the profile holds.
        client.require_pushed_authorization_requests |=
            profile.requires_pushed_authorization_requests();
        client.dpop_bound_access_tokens |= profile.requires_dpop();
        check_profile(profile, &client)?;
    }
    Ok((client, generated))
}

/// The registration rules of a profile, on the client as it would be stored.
fn check_profile(profile: Profile, client: &Client) -> Result<(), RegistrationError> {
    let refuse = |rule| {
        Err(RegistrationError::ProfileRule {
            profile: profile.as_str(),
            rule,
        })
    };
    match profile {
        Profile::Fapi2 => {
            if client.public {
                return refuse("must be confidential (FAPI 2.0 Security Profile §5.3.2.1)");
            }
            if client.auth.method != Some(AuthMethod::PrivateKeyJwt) {
                return refuse(
                    "authenticates with private_key_jwt (FAPI 2.0 Security Profile §5.3.2.1; mTLS is not offered)",
                );
            }
            if (client.grant_types.iter()).any(|g| g == "implicit" || g == "password") {
                return refuse(
                    "may use neither the implicit nor the password grant (FAPI 2.0 Security Profile §5.3.2.1)",
                );
            }
            if (client.redirect_uris.iter()).any(|uri| !uri.starts_with("https://")) {
                return refuse(
                    "has https redirect URIs only: no authorization response over an unencrypted connection (FAPI 2.0 Security Profile §5.3.2.2)",
                );
            }
        }
    }
    Ok(())
}

/// Checks a new password (`user add`, `user set-password`) and returns its
/// argon2id hash.
pub fn validate_password(password: &str) -> Result<String, RegistrationError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(RegistrationError::PasswordTooShort);
    }
    secret::hash_password(password).map_err(|e| RegistrationError::HashPassword(e.to_string()))
}

/// Validates a user registration into a storable [`User`] created at `now`,
/// with a fresh random subject, an argon2id password hash and the OpenID
/// Connect claims of `claims` (`name=value` each, see [`claims::parse`]).
pub fn validate_user(
    username: &str,
    password: &str,
    claims: &[String],
    now: i64,
) -> Result<User, RegistrationError> {
    let length = username.chars().count();
    if !(1..=128).contains(&length)
        || username.chars().any(char::is_control)
        || username.trim() != username
    {
        return Err(RegistrationError::Username(username.to_owned()));
    }
    let mut user_claims = serde_json::Map::new();
    claims::apply(&mut user_claims, claims)?;
    let password_hash = validate_password(password)?;
    Ok(User {
        username: username.to_owned(),
        subject: secret::new_token(),
        password_hash,
        created_at: now,
        claims: user_claims,
        disabled_at: None,
    })
}

/// Why `uri` cannot be a redirect URI, as the end of a sentence starting with the URI.
fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    // The url crate silently strips surrounding whitespace and inner tabs and
    // newlines; since URIs are matched as exact strings later, refuse them.
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters");
    }
    if uri.contains('#') {
        return Err("must not have a fragment (rfc 6749 §3.1.2)");
    }
    let Ok(url) = Url::parse(uri) else {
        return Err("is not an absolute uri");
    };
    match url.scheme() {
        // The url crate refuses an https URL without a host.
        "https" => Ok(()),
        "http" => match url.host() {
            Some(Host::Domain("localhost")) => Ok(()),
            Some(Host::Ipv4(ip)) if ip == Ipv4Addr::LOCALHOST => Ok(()),
            Some(Host::Ipv6(ip)) if ip == Ipv6Addr::LOCALHOST => Ok(()),
            _ => {
                Err("uses http for a host other than 127.0.0.1, [::1] or localhost (rfc 9700 §2.1)")
            }
        },
        // A native app's private-use scheme is a reverse domain name, so it
        // has a dot (RFC 8252 §7.1); this also keeps out javascript:, data:, file:.
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(
            "must use https, http on a loopback host, or a reverse-domain private-use scheme such as com.example.app (rfc 8252 §7)",
        ),
    }
}

fn is_grant_type(grant_type: &str) -> bool {
    KNOWN_GRANT_TYPES.contains(&grant_type)
        || (grant_type.contains(':')
            && !grant_type
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
            && Url::parse(grant_type).is_ok())
}

/// RFC 6749 Appendix A: VSCHAR = %x20-7E.
fn is_vschar(byte: u8) -> bool {
    (0x20..=0x7e).contains(&byte)
}

/// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
fn is_scope_char(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x5b | 0x5d..=0x7e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_32: &str = "0123456789abcdef0123456789abcdef";

    fn confidential() -> ClientRegistration {
        ClientRegistration {
            client_id: "app".into(),
            ..ClientRegistration::default()
        }
    }

    fn public() -> ClientRegistration {
        ClientRegistration {
            client_id: "spa".into(),
            redirect_uris: vec!["https://spa.example/cb".into()],
            public: true,
            ..ClientRegistration::default()
        }
    }

    #[test]
    fn an_id_token_algorithm_is_a_known_jws_algorithm() {
        let with = |alg: &str| {
            validate(
                ClientRegistration {
                    id_token_signed_response_alg: Some(alg.into()),
                    ..confidential()
                },
                0,
            )
        };
        let (client, _) = with("ES256").unwrap();
        assert_eq!(
            client.id_token_signed_response_alg.as_deref(),
            Some("ES256")
        );
        assert_eq!(
            with("HS256").unwrap_err(),
            RegistrationError::IdTokenSignedResponseAlg("HS256".into())
        );
        assert_eq!(
            with("none").unwrap_err(),
            RegistrationError::IdTokenSignedResponseAlg("none".into())
        );
        let (client, _) = validate(confidential(), 0).unwrap();
        assert_eq!(
            client.id_token_signed_response_alg, None,
            "RS256 by default"
        );
    }

    #[test]
    fn a_fapi2_client_is_confidential_keyed_https_and_without_implicit_or_password() {
        let es = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        let fapi = || ClientRegistration {
            redirect_uris: vec!["https://bank.example/cb".into()],
            grant_types: strings(&["authorization_code", "refresh_token"]),
            auth_method: Some(AuthMethod::PrivateKeyJwt),
            jwks: Some(es.into()),
            profile: Some("fapi2".into()),
            ..confidential()
        };
        let (client, generated) = validate(fapi(), 0).expect("a fapi2 client");
        assert_eq!((client.profile, generated), (Some(Profile::Fapi2), None));
        // Pushed requests and DPoP-bound tokens come with the profile.
        assert!(client.require_pushed_authorization_requests && client.dpop_bound_access_tokens);
        let (client, _) = validate(
            ClientRegistration {
                profile: None,
                ..fapi()
            },
            0,
        )
        .unwrap();
        assert_eq!(client.profile, None);
        let rule = |registration: ClientRegistration, says: &str| match validate(registration, 0)
            .unwrap_err()
        {
            RegistrationError::ProfileRule {
                profile: "fapi2",
                rule,
            } => {
                assert!(rule.contains(says), "{rule}")
            }
            other => panic!("{other:?}"),
        };
        rule(
            ClientRegistration {
                auth_method: None,
                jwks: None,
                ..fapi()
            },
            "private_key_jwt",
        );
        rule(
            ClientRegistration {
                auth_method: Some(AuthMethod::ClientSecretBasic),
                jwks: None,
                ..fapi()
            },
            "private_key_jwt",
        );
        for grant in ["implicit", "password"] {
            rule(
                ClientRegistration {
                    grant_types: strings(&["authorization_code", grant]),
                    ..fapi()
                },
                "implicit nor the password",
            );
        }
        for uri in ["http://127.0.0.1:8080/cb", "com.example.bank:/cb"] {
            rule(
                ClientRegistration {
                    redirect_uris: vec![uri.into()],
                    ..fapi()
                },
                "https",
            );
        }
        // A public client fails on its method first or on being public.
        assert!(matches!(
            validate(
                ClientRegistration {
                    public: true,
                    auth_method: None,
                    jwks: None,
                    ..fapi()
                },
                0
            ),
            Err(RegistrationError::ProfileRule { .. })
        ));
        assert_eq!(
            validate(
                ClientRegistration {
                    profile: Some("fapi1".into()),
                    ..fapi()
                },
                0
            )
            .unwrap_err(),
            RegistrationError::Profile("fapi1".into())
        );
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// What a successful validation must produce.
    struct Expect<'a> {
        grant_types: &'a [&'a str],
        scopes: &'a [&'a str],
        /// Whether a secret was generated (and so returned).
        generated_secret: bool,
    }

    #[track_caller]
    fn check(reg: ClientRegistration, expect: Result<Expect, RegistrationError>) {
        let operator_secret = reg.secret.clone();
        let got = validate(reg.clone(), 1_700_000_000);
        match (got, expect) {
            (Ok((client, generated)), Ok(expect)) => {
                assert_eq!(client.client_id, reg.client_id);
                assert_eq!(client.grant_types, strings(expect.grant_types));
                assert_eq!(client.scopes, strings(expect.scopes));
                assert_eq!(client.public, reg.public);
                assert_eq!(client.trusted, reg.trusted);
                assert_eq!(client.created_at, 1_700_000_000);
                assert_eq!(generated.is_some(), expect.generated_secret);
                match (client.public, generated, operator_secret) {
                    (true, _, _) => assert_eq!(client.secret_hash, None),
                    (false, Some(secret), _) | (false, None, Some(secret)) => {
                        let stored = client.secret_hash.expect("confidential client has a hash");
                        assert!(secret::secret_matches(&secret, &stored));
                    }
                    (false, None, None) => panic!("confidential client without any secret"),
                }
            }
            (got, expect) => assert_eq!(got.map(|_| ()), expect.map(|_| ())),
        }
    }

    #[test]
    fn client_registrations() {
        let ok = |grant_types, scopes, generated_secret| {
            Ok(Expect {
                grant_types,
                scopes,
                generated_secret,
            })
        };
        check(confidential(), ok(&["client_credentials"], &[], true));
        check(public(), ok(&["authorization_code"], &[], false));
        check(
            ClientRegistration {
                secret: Some(SECRET_32.into()),
                ..confidential()
            },
            ok(&["client_credentials"], &[], false),
        );
        check(
            ClientRegistration {
                secret: Some(SECRET_32[1..].into()),
                ..confidential()
            },
            Err(RegistrationError::SecretTooShort),
        );
        check(
            ClientRegistration {
                secret: Some(format!("{SECRET_32}\n")),
                ..confidential()
            },
            Err(RegistrationError::SecretCharacters),
        );
        check(
            ClientRegistration {
                secret: Some(SECRET_32.into()),
                ..public()
            },
            Err(RegistrationError::PublicSecret),
        );
        check(
            ClientRegistration {
                grant_types: strings(&["client_credentials"]),
                ..public()
            },
            Err(RegistrationError::PublicClientCredentials),
        );
        check(
            ClientRegistration {
                grant_types: strings(&["password", "refresh_token", "implicit"]),
                ..public()
            },
            ok(&["password", "refresh_token", "implicit"], &[], false),
        );
        check(
            ClientRegistration {
                grant_types: strings(&["authorization_code"]),
                ..confidential()
            },
            Err(RegistrationError::RedirectUriRequired(
                "authorization_code".into(),
            )),
        );
        check(
            ClientRegistration {
                grant_types: strings(&["refresh_token", "implicit"]),
                ..confidential()
            },
            Err(RegistrationError::RedirectUriRequired("implicit".into())),
        );
        check(
            ClientRegistration {
                redirect_uris: vec![],
                ..public()
            },
            Err(RegistrationError::RedirectUriRequired(
                "authorization_code".into(),
            )),
        );
        check(
            ClientRegistration {
                grant_types: strings(&[
                    "urn:ietf:params:oauth:grant-type:device_code",
                    "client_credentials",
                    "client_credentials",
                ]),
                ..confidential()
            },
            ok(
                &[
                    "urn:ietf:params:oauth:grant-type:device_code",
                    "client_credentials",
                ],
                &[],
                true,
            ),
        );
        for bad in ["Authorization_Code", "code", "", "urn: x", "token exchange"] {
            check(
                ClientRegistration {
                    grant_types: strings(&[bad]),
                    ..confidential()
                },
                Err(RegistrationError::GrantType(bad.into())),
            );
        }
        check(
            ClientRegistration {
                scopes: strings(&["read", "write", "read", "a!#[]~", "urn:x:y"]),
                ..confidential()
            },
            ok(
                &["client_credentials"],
                &["read", "write", "a!#[]~", "urn:x:y"],
                true,
            ),
        );
        for bad in ["", "two words", "quote\"", "back\\slash", "tab\t", "é"] {
            check(
                ClientRegistration {
                    scopes: strings(&["read", bad]),
                    ..confidential()
                },
                Err(RegistrationError::Scope(bad.into())),
            );
        }
        let long_id = "x".repeat(256);
        for bad in ["", "new\nline", "é", long_id.as_str()] {
            check(
                ClientRegistration {
                    client_id: bad.into(),
                    ..confidential()
                },
                Err(RegistrationError::ClientId(bad.into())),
            );
        }
        check(
            ClientRegistration {
                client_id: "x".repeat(255),
                trusted: true,
                ..confidential()
            },
            ok(&["client_credentials"], &[], true),
        );
        check(
            ClientRegistration {
                name: Some("bad\u{7}name".into()),
                ..confidential()
            },
            Err(RegistrationError::ClientName),
        );
    }

    #[test]
    fn auth_methods_and_jwks() {
        let es = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        let with = |auth_method, jwks: Option<&str>, secret: Option<&str>| ClientRegistration {
            auth_method,
            jwks: jwks.map(str::to_owned),
            secret: secret.map(str::to_owned),
            ..confidential()
        };
        let (client, generated) =
            validate(with(Some(AuthMethod::PrivateKeyJwt), Some(es), None), 0).expect("keyed");
        assert_eq!((client.secret_hash, generated), (None, None), "no secret");
        assert_eq!(client.auth.method, Some(AuthMethod::PrivateKeyJwt));
        assert!(client.auth.jwks.is_some_and(|jwks| jwks.contains("P-256")));
        let (client, generated) =
            validate(with(Some(AuthMethod::ClientSecretPost), None, None), 0).expect("post");
        assert!(client.secret_hash.is_some() && generated.is_some());
        assert_eq!(
            client.auth.secret_sealed, None,
            "only client_secret_jwt keeps a copy"
        );
        // client_secret_jwt: the secret, generated or given, is also sealed
        // under the key-encryption key, bound to the client id.
        let kek = KeyEncryptionKey::generate();
        let hmac = |secret| with(Some(AuthMethod::ClientSecretJwt), None, secret);
        let (client, generated) =
            validate_sealing(hmac(None), 0, Some(&kek)).expect("client_secret_jwt");
        let generated = generated.expect("a generated secret is shown once");
        let sealed = client.auth.secret_sealed.expect("sealed");
        let opened = kek
            .open_client_secret(&client.client_id, &sealed)
            .expect("opens");
        assert_eq!(opened.as_slice(), generated.as_bytes());
        assert!(kek.open_client_secret("another", &sealed).is_err());
        assert_eq!(
            client.secret_hash,
            Some(secret::token_hash(&generated).to_vec())
        );
        let (client, generated) =
            validate_sealing(hmac(Some(SECRET_32)), 0, Some(&kek)).expect("given secret");
        assert_eq!(generated, None, "an operator's secret is not echoed");
        let opened = kek
            .open_client_secret(&client.client_id, &client.auth.secret_sealed.unwrap())
            .unwrap();
        assert_eq!(opened.as_slice(), SECRET_32.as_bytes());
        let refused = [
            (
                with(Some(AuthMethod::PrivateKeyJwt), None, None),
                RegistrationError::JwksRequired,
            ),
            (with(None, Some(es), None), RegistrationError::JwksUnused),
            (
                with(Some(AuthMethod::ClientSecretBasic), Some(es), None),
                RegistrationError::JwksUnused,
            ),
            (
                with(Some(AuthMethod::PrivateKeyJwt), Some(es), Some(SECRET_32)),
                RegistrationError::PrivateKeyJwtSecret,
            ),
            (
                with(Some(AuthMethod::None), None, None),
                RegistrationError::ConfidentialNone,
            ),
            (
                with(Some(AuthMethod::ClientSecretJwt), None, None),
                RegistrationError::KeyEncryptionKeyRequired,
            ),
            (
                with(Some(AuthMethod::ClientSecretJwt), Some(es), None),
                RegistrationError::JwksUnused,
            ),
            (
                ClientRegistration {
                    auth_method: Some(AuthMethod::ClientSecretBasic),
                    ..public()
                },
                RegistrationError::PublicAuthMethod("client_secret_basic"),
            ),
            (
                with(
                    Some(AuthMethod::PrivateKeyJwt),
                    Some(r#"{"keys":[]}"#),
                    None,
                ),
                RegistrationError::Jwks(JwksError::Shape),
            ),
        ];
        for (registration, error) in refused {
            assert_eq!(validate(registration, 0).map(|_| ()), Err(error));
        }
    }

    #[test]
    fn resources_and_access_token_formats() {
        let register = |resources: &[&str], format: &str| {
            validate(
                ClientRegistration {
                    resources: strings(resources),
                    access_token_format: format.into(),
                    ..confidential()
                },
                0,
            )
            .map(|(client, _)| (client.resources, client.access_token_format))
        };
        // RFC 8707 §2: absolute URIs, kept as given, each once; opaque by default.
        assert_eq!(
            register(
                &[
                    "https://api.example/",
                    "urn:example:billing",
                    "https://api.example/"
                ],
                ""
            ),
            Ok((
                strings(&["https://api.example/", "urn:example:billing"]),
                AccessTokenFormat::Opaque
            ))
        );
        assert_eq!(
            register(&["https://api.example/"], "jwt"),
            Ok((strings(&["https://api.example/"]), AccessTokenFormat::Jwt))
        );
        assert_eq!(
            register(&[], "opaque"),
            Ok((Vec::new(), AccessTokenFormat::Opaque))
        );
        // RFC 8707 §2: no fragment, and absolute.
        assert_eq!(
            register(&["https://api.example/#x"], ""),
            Err(RegistrationError::Resource {
                uri: "https://api.example/#x".into(),
                reason: "must not contain a fragment"
            })
        );
        assert_eq!(
            register(&["/api"], ""),
            Err(RegistrationError::Resource {
                uri: "/api".into(),
                reason: "is not an absolute uri"
            })
        );
        // RFC 9068 §3: a JWT access token needs an audience to default to.
        assert_eq!(
            register(&[], "jwt"),
            Err(RegistrationError::JwtWithoutResource)
        );
        assert_eq!(
            register(&["https://api.example/"], "JWT"),
            Err(RegistrationError::AccessTokenFormat("JWT".into()))
        );
        let many: Vec<String> = (0..=MAX_RESOURCES)
            .map(|i| format!("https://r{i}.example/"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            register(&many, ""),
            Err(RegistrationError::TooManyResources)
        );
    }

    #[track_caller]
    fn check_redirect(uri: &str, expect: Result<(), &str>) {
        let reg = ClientRegistration {
            redirect_uris: vec![uri.to_owned()],
            ..public()
        };
        match (validate(reg, 0), expect) {
            (Ok((client, _)), Ok(())) => assert_eq!(client.redirect_uris, [uri]),
            (Err(RegistrationError::RedirectUri { uri: got, reason }), Err(part)) => {
                assert_eq!(got, uri);
                assert!(reason.contains(part), "{uri:?}: {reason:?} lacks {part:?}");
            }
            (got, expect) => panic!("{uri:?}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn redirect_uris() {
        check_redirect("https://app.example/cb", Ok(()));
        check_redirect("https://app.example:8443/cb?x=1", Ok(()));
        check_redirect("HTTPS://App.Example/cb", Ok(()));
        check_redirect("http://127.0.0.1/cb", Ok(()));
        check_redirect("http://127.0.0.1:51004/cb", Ok(()));
        check_redirect("http://[::1]:8080/cb", Ok(()));
        check_redirect("http://localhost:3000/cb", Ok(()));
        check_redirect("com.example.app:/oauth2redirect", Ok(()));
        check_redirect("com.example.app:/cb", Ok(()));

        check_redirect("https://app.example/cb#frag", Err("fragment"));
        check_redirect("https://app.example/cb#", Err("fragment"));
        check_redirect("http://app.example/cb", Err("http"));
        check_redirect("http://127.0.0.2/cb", Err("http"));
        check_redirect("http://localhost.evil.example/cb", Err("http"));
        check_redirect("/cb", Err("absolute"));
        check_redirect("app.example/cb", Err("absolute"));
        check_redirect("", Err("absolute"));
        check_redirect("https://", Err("absolute"));
        check_redirect(" https://app.example/cb", Err("whitespace"));
        check_redirect("https://app.example/c\tb", Err("whitespace"));
        check_redirect("javascript:alert(1)", Err("scheme"));
        check_redirect("data:text/html,hi", Err("scheme"));
        check_redirect("file:///etc/passwd", Err("scheme"));
        check_redirect("myapp:/cb", Err("scheme"));
    }

    #[test]
    fn post_logout_redirect_uris_follow_the_redirect_uri_rules() {
        let register = |uris: &[&str]| {
            validate(
                ClientRegistration {
                    post_logout_redirect_uris: strings(uris),
                    ..public()
                },
                0,
            )
            .map(|(client, _)| client.post_logout_redirect_uris)
        };
        assert_eq!(
            register(&[
                "https://app.example/bye",
                "http://127.0.0.1:8080/bye",
                "com.example.app:/bye",
                "https://app.example/bye",
            ]),
            Ok(strings(&[
                "https://app.example/bye",
                "http://127.0.0.1:8080/bye",
                "com.example.app:/bye"
            ]))
        );
        assert_eq!(register(&[]), Ok(Vec::new()));
        for (uri, part) in [
            ("https://app.example/bye#x", "fragment"),
            ("http://app.example/bye", "http"),
            ("/bye", "absolute"),
            ("javascript:alert(1)", "scheme"),
        ] {
            match register(&[uri]) {
                Err(RegistrationError::PostLogoutRedirectUri { uri: got, reason }) => {
                    assert_eq!(got, uri);
                    assert!(reason.contains(part), "{uri:?}: {reason:?} lacks {part:?}");
                }
                got => panic!("{uri:?}: got {got:?}"),
            }
        }
    }

    #[test]
    fn redirect_uris_are_kept_verbatim_and_deduplicated() {
        let uris = strings(&[
            "https://a.example/cb",
            "https://a.example/cb/",
            "https://a.example/cb",
        ]);
        let reg = ClientRegistration {
            redirect_uris: uris,
            ..public()
        };
        let (client, _) = validate(reg, 0).expect("valid");
        assert_eq!(
            client.redirect_uris,
            ["https://a.example/cb", "https://a.example/cb/"]
        );
    }

    #[track_caller]
    fn check_user(username: &str, password: &str, expect: Result<(), RegistrationError>) {
        match (validate_user(username, password, &[], 42), expect) {
            (Ok(user), Ok(())) => {
                assert_eq!(user.username, username);
                assert_eq!(user.created_at, 42);
                assert_eq!(user.subject.len(), secret::TOKEN_LEN);
                assert!(secret::verify_password(password, &user.password_hash));
            }
            (got, expect) => assert_eq!(got.map(|_| ()), expect),
        }
    }

    #[test]
    fn user_registrations() {
        check_user("alice", "password", Ok(()));
        check_user("Zoë Smith", "pässwörd", Ok(()));
        check_user(&"u".repeat(128), "12345678", Ok(()));

        let long = "u".repeat(129);
        for bad in ["", " alice", "alice ", "al\nice", "\u{0}", long.as_str()] {
            check_user(
                bad,
                "password",
                Err(RegistrationError::Username(bad.into())),
            );
        }
        check_user("alice", "passwor", Err(RegistrationError::PasswordTooShort));
        check_user("alice", "", Err(RegistrationError::PasswordTooShort));
    }

    #[test]
    fn users_get_distinct_subjects() {
        let a = validate_user("alice", "password", &[], 0).expect("valid");
        let b = validate_user("alice", "password", &[], 0).expect("valid");
        assert_ne!(a.subject, b.subject);
    }

    #[test]
    fn client_uri_is_https_or_loopback() {
        let with = |uri: &str| ClientRegistration {
            client_uri: Some(uri.to_owned()),
            ..confidential()
        };
        let (client, _) = validate(with("https://app.example/about"), 0).expect("https");
        assert_eq!(
            client.client_uri.as_deref(),
            Some("https://app.example/about")
        );
        assert!(validate(with("http://127.0.0.1:3000/"), 0).is_ok());
        assert_eq!(
            validate(with("http://app.example/"), 0).unwrap_err(),
            RegistrationError::ClientUri("http://app.example/".into())
        );
        assert!(validate(with("javascript:alert(1)"), 0).is_err());
    }
}
