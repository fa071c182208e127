//! Grant plugins: the wasmtime sandbox, the host capabilities and the
//! registry from `response_type` / `grant_type` to plugin. Only this module
//! knows wasmtime; the rest of the host uses the plain types of
//! `grantbox_protocol::plugin` (manifests, capabilities, requests and
//! responses), re-exported here under their old paths.

mod bindings;
pub mod bundled;
mod capability;
pub mod live;
pub mod registry;
mod runtime;

use std::sync::Arc;

pub use grantbox_protocol::oauth::ResponseMode;
pub use grantbox_protocol::plugin::{
    AuthorizationApproval, AuthorizationRequest, Capability, ClientView, EndpointRequest,
    EndpointResponse, PendingAuthorization, PluginInfo, TokenLifetimes, TokenRequest,
    TokenResponse, UserCodeEntry, UserCodeOutcome, UserDecision, manifest,
};
pub use live::LiveRegistry;
pub use manifest::{LimitCaps, Manifest, ManifestError};
pub use registry::{LoadError, Registry, TransactionPluginError};
pub use runtime::{Plugin, Runtime, RuntimeConfig, build_engine};

use crate::clock::Clock;
use crate::oauth::OAuthError;
use crate::store::{AccessTokenFormat, Store};

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
    /// The host's signing keys: capabilities sign through it and never see a key.
    pub keys: Arc<crate::keys::Keys>,
    /// The issuer identifier: the `iss` of what the host signs for a plugin.
    pub issuer: String,
}

/// What the host binds to the access tokens a call issues, never the plugin:
/// their form (RFC 9068) and their resources (RFC 8707); and the bounds of
/// the client's profile on what it issues (a code's lifetime).
#[derive(Debug, Clone, Default)]
pub struct TokenTarget {
    /// How the client's access tokens look (their `iss` is
    /// [`HostServices::issuer`]).
    pub format: AccessTokenFormat,
    /// The resources registered for the client.
    pub registered: Vec<String>,
    /// The resources asked for: a token request's `resource` values (already
    /// checked against `registered`), or the resources an authorization
    /// request was validated for. Empty asks for the default: every resource
    /// the client registered or the grant authorized.
    pub requested: Vec<String>,
    /// The client's profile (`client add --profile`), whose bounds hold
    /// whatever the plugin asks.
    pub profile: Option<crate::oauth::profile::Profile>,
    /// The JWK Thumbprint of the token request's DPoP proof (RFC 9449): the
    /// access tokens the call mints are bound to it (and a public client's
    /// refresh tokens); a code or refresh token bound to a key is redeemed
    /// only with a proof of that key.
    pub dpop_jkt: Option<String>,
    /// The `dpop_jkt` of the authorization request (RFC 9449 §10): the codes
    /// the call issues carry it.
    pub code_dpop_jkt: Option<String>,
}

impl TokenTarget {
    /// What a client's tokens are bound to when it asks for `requested`.
    pub fn for_client(client: &crate::store::Client, requested: Vec<String>) -> Self {
        Self {
            format: client.access_token_format,
            registered: client.resources.clone(),
            requested,
            profile: client.profile,
            dpop_jkt: None,
            code_dpop_jkt: None,
        }
    }
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
