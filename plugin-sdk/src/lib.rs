//! Write Grantbox grant plugins in Rust: implement [`Grant`], call
//! [`export!`], and test the logic natively with [`testing::TestHost`].
//!
//! A plugin is a WebAssembly component exporting the `grant`, `endpoint` and
//! `user-step` interfaces of `grantbox:plugin@1.4.0` (`wit/plugin.wit` in this
//! crate; [`Grant`]'s defaults fill what a plugin does not serve). The host
//! authenticates the client, checks the scope against the registration and
//! then calls the plugin; the plugin reaches the host only through the
//! capability functions in [`host`], each allowed only when its manifest asks
//! for the capability.
//!
//! # A complete plugin
//!
//! ```
//! use grantbox_sdk::{Grant, OAuthError, PluginInfo, TokenGrant, TokenRequest, TokenResponse};
//! use grantbox_sdk::{host, param};
//!
//! /// Issues a token to any confidential client that says `name=world`.
//! struct Hello;
//!
//! impl Grant for Hello {
//!     fn info() -> PluginInfo {
//!         PluginInfo::new().grant_type("urn:example:hello")
//!     }
//!
//!     fn exchange(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
//!         if param(&request.params, "name")? != "world" {
//!             return Err(OAuthError::invalid_grant("only the world may say hello"));
//!         }
//!         let scope = request.scope.unwrap_or(request.client.scopes);
//!         let grant = TokenGrant { subject: None, scope, refresh_token: false, grant_id: None };
//!         // A host error becomes `server_error` or `temporarily_unavailable`.
//!         let issued = host::tokens::issue(&grant)?;
//!         Ok(TokenResponse::from(issued))
//!     }
//! }
//!
//! grantbox_sdk::export!(Hello);
//!
//! # fn main() {
//! // The same code runs natively against an in-memory host.
//! use grantbox_sdk::Client;
//! use grantbox_sdk::testing::{Capability, TestHost};
//!
//! let mut test_host = TestHost::new()
//!     .client(Client::confidential("app").with_scopes(&["read", "write"]))
//!     .grant_capabilities(&[Capability::Tokens]);
//!
//! let request = test_host.token_request("urn:example:hello", Some(&["read"]), &[("name", "world")]);
//! let response = test_host.exchange::<Hello>(request).unwrap();
//! assert_eq!(response.token_type, "Bearer");
//! assert_eq!(response.scope, Some(vec!["read".to_string()]));
//! assert_eq!(test_host.issued_tokens()[0].token, response.access_token);
//!
//! let request = test_host.token_request("urn:example:hello", None, &[]);
//! let error = test_host.exchange::<Hello>(request).unwrap_err();
//! assert_eq!(error.error, "invalid_request");
//! # }
//! ```
//!
//! Built with `cargo build --target wasm32-wasip2`, the crate (a `cdylib`)
//! is the component the manifest's `[wasm] file` names.
//!
//! # Two failure channels
//!
//! - **An OAuth error the plugin chooses.** `Err(OAuthError)` from a [`Grant`]
//!   method is an expected protocol outcome: the host sends it to the client
//!   as the RFC 6749 error response (§5.2 at the token endpoint, §4.1.2.1 by
//!   redirect at the authorization endpoint). Host capability calls fail the
//!   same way, as values ([`HostError`], [`RedeemError`], [`RefreshError`]):
//!   the plugin decides what the client sees.
//! - **A fault the host catches.** A panic (plugins are built with
//!   `panic = "abort"`, so it traps), running past the manifest's
//!   `timeout_ms`, growing memory past `memory_mib`, or overflowing the stack
//!   ends the call. The host throws the instance away, logs the fault with the
//!   plugin's name and version, counts it, answers `server_error`, and keeps
//!   serving. Never panic for a bad request: return the OAuth error instead.

extern crate self as grantbox_sdk;

#[doc(hidden)]
pub mod bindings;
mod config_error;
pub mod host;
mod oauth_error;
mod params;
mod scope;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod types;

pub use params::{optional_param, param, repeated_param};
pub use scope::{MAX_SCOPE_TOKENS, check_scope, parse_scope, requested_scope};
/// The JSON library [`EndpointResponse::json`] takes its values from, so a
/// plugin can build a response body with `grantbox_sdk::serde_json::json!`.
pub use serde_json;
pub use types::{
    Approval, AuthorizationApproval, AuthorizationCode, AuthorizationRequest, Client, CodeGrant,
    EndpointRequest, EndpointResponse, ExchangeGrant, ExchangedTokenInfo, HostError,
    IdTokenRequest, IssuedTokens, OAuthError, Params, PendingAuthorization, PluginInfo,
    RedeemError, RefreshError, ResponseMode, ResponseTypeInfo, TokenGrant, TokenInfo, TokenRequest,
    TokenResponse, UserCodeEntry, UserCodeOutcome, UserDecision,
};

/// The WIT package and version this SDK is built against. A manifest's
/// `interface` names the lowest version the plugin needs: `@1.0.0` unless it
/// uses something added later (e.g. [`host::token_exchange`], since 1.1.0,
/// [`host::signing`], since 1.2.0, plugin endpoints and user steps, since
/// 1.3.0, or [`host::openid`], since 1.4.0).
pub const INTERFACE: &str = "grantbox:plugin@1.4.0";

/// A grant plugin: the `grant` interface of the WIT, with defaults for the
/// endpoints a plugin does not serve.
///
/// The methods are associated functions: the host makes a fresh instance for
/// every call, so a plugin keeps no state between calls (use
/// [`host::key_value`] for that).
pub trait Grant {
    /// The response types and grant types this plugin provides. The host
    /// checks them against the manifest's `[provides]` at load.
    fn info() -> PluginInfo;

    /// Parses the grant's own authorization request parameters (e.g. PKCE's
    /// `code_challenge`) into data the host keeps with the transaction.
    ///
    /// The default refuses with `unsupported_response_type`.
    fn authorize_request(request: AuthorizationRequest) -> Result<Params, OAuthError> {
        Err(OAuthError::unsupported_response_type(format!(
            "response type `{}` is not supported by this plugin",
            request.response_type.join(" ")
        )))
    }

    /// Issues the authorization response parameters (e.g. `code`) for a
    /// transaction the user approved.
    ///
    /// The default answers `server_error`: the host calls it only after
    /// [`Grant::authorize_request`] succeeded, so a plugin that provides a
    /// response type must implement both.
    fn authorize_response(approval: AuthorizationApproval) -> Result<Params, OAuthError> {
        Err(OAuthError::server_error(format!(
            "response type `{}` has no authorization response in this plugin",
            approval.response_type.join(" ")
        )))
    }

    /// Turns an authenticated token request into a token response.
    ///
    /// The default refuses with `unsupported_grant_type`.
    fn exchange(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        Err(OAuthError::unsupported_grant_type(format!(
            "grant type `{}` is not supported by this plugin",
            request.grant_type
        )))
    }

    /// Answers a request to one of the endpoints the manifest declares in
    /// `[[provides.endpoints]]` (since 1.3.0).
    ///
    /// The default answers `server_error`: the host calls it only for a path
    /// the manifest declares, so a plugin that declares one must implement it.
    fn endpoint(request: EndpointRequest) -> Result<EndpointResponse, OAuthError> {
        Err(OAuthError::server_error(format!(
            "endpoint `{}` is not implemented by this plugin",
            request.path
        )))
    }

    /// Says what a user code entered at one of the manifest's
    /// `[[provides.user-steps]]` stands for (since 1.3.0); `None` for a code
    /// that is wrong, expired or used.
    ///
    /// The default knows no code.
    fn find_user_code(entry: UserCodeEntry) -> Result<Option<PendingAuthorization>, OAuthError> {
        let _ = entry;
        Ok(None)
    }

    /// Records a signed-in user's decision on what a user code stood for
    /// (since 1.3.0).
    ///
    /// The default answers `server_error`: the host calls it only after
    /// [`Grant::find_user_code`] found the code.
    fn complete_user_code(outcome: UserCodeOutcome) -> Result<(), OAuthError> {
        Err(OAuthError::server_error(format!(
            "user step `{}` is not implemented by this plugin",
            outcome.step
        )))
    }
}

impl<G: Grant> bindings::exports::grantbox::plugin::grant::Guest for G {
    fn info() -> PluginInfo {
        G::info()
    }

    fn authorize_request(request: AuthorizationRequest) -> Result<Params, OAuthError> {
        G::authorize_request(request)
    }

    fn authorize_response(approval: AuthorizationApproval) -> Result<Params, OAuthError> {
        G::authorize_response(approval)
    }

    fn exchange(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        G::exchange(request)
    }
}

impl<G: Grant> bindings::exports::grantbox::plugin::endpoint::Guest for G {
    fn handle(request: EndpointRequest) -> Result<EndpointResponse, OAuthError> {
        G::endpoint(request)
    }
}

impl<G: Grant> bindings::exports::grantbox::plugin::user_step::Guest for G {
    fn find_user_code(entry: UserCodeEntry) -> Result<Option<PendingAuthorization>, OAuthError> {
        G::find_user_code(entry)
    }

    fn complete_user_code(outcome: UserCodeOutcome) -> Result<(), OAuthError> {
        G::complete_user_code(outcome)
    }
}

/// Exports a [`Grant`] implementation as the plugin's `grant` interface.
///
/// Invoke it once, at the plugin crate's top level, with the type's name:
/// `grantbox_sdk::export!(MyGrant);`. On `wasm32` it emits the component's
/// exports; on other targets it only checks that the type implements
/// [`Grant`], so the crate also builds for native tests.
#[macro_export]
macro_rules! export {
    ($grant:ident) => {
        const _: () = {
            fn assert_grant<G: $crate::Grant>() {}
            let _ = assert_grant::<$grant>;
        };
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_grant_bindings!($grant with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}
