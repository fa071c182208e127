//! Grant plugins: manifests, the wasmtime sandbox, the host capabilities and
//! the registry from `response_type` / `grant_type` to plugin. Only this module
//! knows wasmtime; the rest of the host uses the plain types below.

mod bindings;
pub mod builder;
pub mod bundled;
mod capability;
pub mod live;
pub mod manifest;
pub mod manifest_edit;
pub mod registry;
mod runtime;
pub mod scaffold;

use std::sync::Arc;

pub use live::LiveRegistry;
pub use manifest::{LimitCaps, Manifest, ManifestError};
pub use registry::{LoadError, Registry, TransactionPluginError};
pub use runtime::{Plugin, Runtime, RuntimeConfig, build_engine};

use crate::clock::Clock;
use crate::oauth::OAuthError;
use crate::store::Store;

/// A capability a manifest can ask for (DESIGN §2).
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
}

impl Capability {
    pub const ALL: [Capability; 10] = [
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
    ];
    pub const ALL_NAMES: [&'static str; 10] = [
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

/// What host capabilities work with: shared by every call.
#[derive(Debug, Clone)]
pub struct HostServices {
    pub store: Store,
    pub clock: Clock,
    pub lifetimes: TokenLifetimes,
    /// Failed password checks, shared with the login form.
    pub login_limiter: Arc<crate::ratelimit::LoginLimiter>,
    /// argon2 checks with bounded concurrency, shared with the login form.
    pub passwords: crate::password::PasswordChecker,
}

/// The client as plugins see it.
#[derive(Debug, Clone)]
pub struct ClientView {
    pub client_id: String,
    pub public: bool,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
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

/// How a response travels back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// What a plugin says it provides.
#[derive(Debug, Clone, Default)]
pub struct PluginInfo {
    pub response_types: Vec<(String, ResponseMode)>,
    pub grant_types: Vec<String>,
}

/// A call's outcome when it did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin answered with an OAuth error: part of the protocol.
    #[error("{0}")]
    Refused(OAuthError),
    /// The plugin trapped, ran out of time or memory, or broke the contract.
    #[error("plugin fault: {0}")]
    Fault(#[from] Fault),
}

/// A plugin fault the host caught; answered as `server_error`.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct Fault {
    pub kind: FaultKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The epoch deadline passed.
    Deadline,
    /// The plugin tried to grow memory past its limit.
    Memory,
    StackOverflow,
    /// A Rust panic: `unreachable` in wasm (plugins build with panic=abort).
    Panic,
    /// A load or store outside linear memory, e.g. a guest's shadow stack overflowing.
    OutOfBounds,
    /// Any other trap.
    Trap,
    /// The plugin could not be instantiated (e.g. the instance pool is exhausted).
    Instantiate,
    /// The plugin returned something the contract forbids, e.g. a token the host did not issue.
    Contract,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deadline => "deadline",
            Self::Memory => "memory",
            Self::StackOverflow => "stack_overflow",
            Self::Panic => "panic",
            Self::OutOfBounds => "out_of_bounds",
            Self::Trap => "trap",
            Self::Instantiate => "instantiate",
            Self::Contract => "contract",
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A shared handle on a loaded plugin.
pub type PluginRef = Arc<Plugin>;
