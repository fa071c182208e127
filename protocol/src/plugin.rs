//! The plugin vocabulary: what a grant plugin declares in its manifest
//! ([`manifest`], [`Capability`]) and the plain values it exchanges with the
//! host (see `plugin-sdk/wit/plugin.wit`). The host converts these to and from
//! the generated WIT types; nothing here knows wasmtime.

pub mod manifest;
pub mod signing;

use crate::oauth::ResponseMode;

/// A host capability a manifest can ask for in `plugin.capabilities`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    Tokens,
    Codes,
    RefreshTokens,
    Users,
    KeyValue,
    Random,
    Clock,
    Log,
    Config,
    /// Since interface 1.1.0: RFC 8693 token exchange.
    TokenExchange,
    /// Since interface 1.2.0: JWTs signed with the host's key.
    Signing,
    /// Since interface 1.4.0: OpenID Connect ID tokens the host assembles and signs.
    Openid,
}

impl Capability {
    pub const ALL: [Capability; 12] = [
        Self::Tokens,
        Self::Codes,
        Self::RefreshTokens,
        Self::Users,
        Self::KeyValue,
        Self::Random,
        Self::Clock,
        Self::Log,
        Self::Config,
        Self::TokenExchange,
        Self::Signing,
        Self::Openid,
    ];
    pub const ALL_NAMES: [&'static str; 12] = [
        "tokens",
        "codes",
        "refresh-tokens",
        "users",
        "key-value",
        "random",
        "clock",
        "log",
        "config",
        "token-exchange",
        "signing",
        "openid",
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Self::ALL[i])
    }

    pub fn name(self) -> &'static str {
        Self::ALL_NAMES[self as usize]
    }

    /// The interface version that introduced the capability; a manifest must
    /// name at least this version to ask for it.
    pub fn since(self) -> manifest::InterfaceVersion {
        let minor = match self {
            Self::TokenExchange => 1,
            Self::Signing => 2,
            Self::Openid => 4,
            _ => 0,
        };
        manifest::InterfaceVersion {
            major: 1,
            minor,
            patch: 0,
        }
    }
}

/// How long what the host issues lives, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct TokenLifetimes {
    pub access_token: i64,
    pub refresh_token_absolute: i64,
    pub refresh_token_idle: i64,
    /// The ceiling on a code lifetime a plugin may ask for.
    pub authorization_code_max: i64,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            access_token: 3600,
            refresh_token_absolute: 30 * 24 * 3600,
            refresh_token_idle: 14 * 24 * 3600,
            authorization_code_max: 600,
        }
    }
}

/// The client as plugins see it.
#[derive(Debug, Clone)]
pub struct ClientView {
    pub client_id: String,
    pub public: bool,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    /// The JWS algorithm of the client's ID tokens (`None`: RS256). The host
    /// signs with it; the plugin is not shown it.
    pub id_token_signed_response_alg: Option<String>,
}

/// A token request after client authentication (see the WIT `token-request`).
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub grant_type: String,
    pub client: ClientView,
    pub scope: Option<Vec<String>>,
    pub params: Vec<(String, String)>,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<String>,
    pub scope: Option<Vec<String>>,
    pub extra: Vec<(String, String)>,
}

/// An authorization request the host validated (see the WIT `authorization-request`).
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub response_type: Vec<String>,
    pub client: ClientView,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub params: Vec<(String, String)>,
}

/// An approved transaction (see the WIT `authorization-approval`).
#[derive(Debug, Clone)]
pub struct AuthorizationApproval {
    pub response_type: Vec<String>,
    pub client: ClientView,
    pub redirect_uri: String,
    pub subject: String,
    pub scope: Vec<String>,
    pub data: Vec<(String, String)>,
}

/// What a plugin says it provides.
#[derive(Debug, Clone, Default)]
pub struct PluginInfo {
    pub response_types: Vec<(String, ResponseMode)>,
    pub grant_types: Vec<String>,
}

/// A request to a plugin endpoint after the host's checks (see the WIT
/// `endpoint-request`).
#[derive(Debug, Clone)]
pub struct EndpointRequest {
    /// The endpoint's path as the manifest declares it.
    pub path: String,
    /// The authenticated client; `None` when the endpoint does not
    /// authenticate clients.
    pub client: Option<ClientView>,
    /// The body parameters, client credentials removed.
    pub params: Vec<(String, String)>,
    /// The host's issuer identifier.
    pub issuer: String,
}

/// A plugin endpoint's successful answer: a 2xx status and a JSON object's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointResponse {
    pub status: u16,
    pub body: String,
}

/// A code a user entered at a user step (see the WIT `user-code-entry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCodeEntry {
    /// The user step's path as the manifest declares it.
    pub step: String,
    /// The code as the user typed it.
    pub user_code: String,
}

/// What a user code stands for (see the WIT `pending-authorization`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    pub client_id: String,
    pub scope: Vec<String>,
    /// Handed back with the outcome; never shown to the user.
    pub data: Vec<(String, String)>,
}

/// A signed-in user's decision on a pending authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserDecision {
    Approved { subject: String, scope: Vec<String> },
    Denied,
}

/// The outcome of a user step (see the WIT `user-code-outcome`).
#[derive(Debug, Clone)]
pub struct UserCodeOutcome {
    pub step: String,
    pub client: ClientView,
    /// What `find-user-code` returned with the authorization.
    pub data: Vec<(String, String)>,
    pub decision: UserDecision,
}
