//! A native test host: an in-memory, thread-local implementation of every
//! host capability, so a plugin's logic runs under plain `cargo test`.
//! It mirrors the contract in `wit/plugin.wit`; it is not the real host and
//! is not compiled for `wasm32`.
//!
//! ```
//! use grantbox_sdk::testing::{Capability, TestHost};
//! use grantbox_sdk::{Client, HostError, host};
//!
//! let mut test_host = TestHost::new()
//!     .client(Client::confidential("app"))
//!     .grant_capabilities(&[Capability::KeyValue, Capability::Clock])
//!     .clock(1_000);
//! test_host.run(|| {
//!     assert!(host::key_value::insert_new("jti:1", b"seen", Some(60)).unwrap());
//!     assert!(!host::key_value::insert_new("jti:1", b"seen", Some(60)).unwrap());
//!     assert!(matches!(host::users::verify_password("u", "p"), Err(HostError::Denied(_))));
//! });
//! test_host.advance(61);
//! assert_eq!(test_host.key_value("jti:1"), None);
//! ```

pub(crate) mod backend;
mod endpoints;
mod fixtures;
mod signing;
#[cfg(test)]
mod tests;

pub use fixtures::{assert_error, params, strings};
pub use signing::SIGNING_KEY_ID;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use crate::host::log::Level;
use crate::{
    AuthorizationApproval, AuthorizationRequest, Client, CodeGrant, Grant, HostError, OAuthError,
    Params, PluginInfo, TokenRequest, TokenResponse,
};

/// A host capability, named as in the manifest's `capabilities`.
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
    /// Since interface 1.1.0.
    TokenExchange,
    /// Since interface 1.2.0.
    Signing,
    /// Since interface 1.4.0.
    Openid,
}

impl Capability {
    /// Every capability of interface 1.4.
    pub const ALL: [Capability; 12] = [
        Capability::Tokens,
        Capability::Codes,
        Capability::RefreshTokens,
        Capability::Users,
        Capability::KeyValue,
        Capability::Random,
        Capability::Clock,
        Capability::Log,
        Capability::Config,
        Capability::TokenExchange,
        Capability::Signing,
        Capability::Openid,
    ];

    /// The WIT interface name, as a manifest lists it (e.g. `key-value`).
    pub fn name(self) -> &'static str {
        match self {
            Capability::Tokens => "tokens",
            Capability::Codes => "codes",
            Capability::RefreshTokens => "refresh-tokens",
            Capability::Users => "users",
            Capability::KeyValue => "key-value",
            Capability::Random => "random",
            Capability::Clock => "clock",
            Capability::Log => "log",
            Capability::Config => "config",
            Capability::TokenExchange => "token-exchange",
            Capability::Signing => "signing",
            Capability::Openid => "openid",
        }
    }
}

/// Whether a stored token is an access token or a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// A token the test host issued, as it remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    pub kind: TokenKind,
    pub client_id: String,
    pub subject: Option<String>,
    pub scope: Vec<String>,
    /// The token family (authorization grant).
    pub grant_id: String,
    pub issued_at: u64,
    pub expires_at: u64,
    /// Revoked with its family (`revoke-grant`, code replay, refresh reuse).
    pub revoked: bool,
    /// A refresh token retired by rotation.
    pub rotated: bool,
    /// Where the token may be used (`token-exchange`); empty for anywhere.
    pub audience: Vec<String>,
    /// The acting party of a delegation (`token-exchange`).
    pub actor: Option<String>,
}

/// A line the plugin logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub message: String,
}

/// The in-memory host. Configure it with the builder methods, call the
/// plugin with [`TestHost::exchange`], [`TestHost::authorize_request`],
/// [`TestHost::endpoint`], [`TestHost::find_user_code`] or
/// [`TestHost::complete_user_code`] (or any code with [`TestHost::run`]),
/// then inspect what the plugin left behind.
///
/// Rules it enforces, as the real host does: capabilities not granted
/// return [`HostError::Denied`]; issued scopes must be among the calling
/// client's registered scopes; a refresh token is issued only when the
/// client's registration lists `refresh_token`; codes are single-use, and a
/// replay revokes their family; a rotated refresh token presented again
/// revokes its family; TTLs and expiry follow the fixed clock. Tokens and
/// random bytes come from a seeded generator, so runs are reproducible
/// (and nothing here is cryptographically secure).
#[derive(Debug)]
pub struct TestHost {
    state: State,
}

impl Default for TestHost {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHost {
    /// A host with every capability granted, an empty config, the calling
    /// client `test-client` (confidential, no scopes), the clock at
    /// 1 700 000 000, and tokens living 3600 s (access) and 30 days (refresh).
    pub fn new() -> Self {
        Self {
            state: State::new(),
        }
    }

    /// Sets the client the host authenticated: the one tokens and codes are issued to.
    pub fn client(mut self, client: Client) -> Self {
        self.state.client = client;
        self
    }

    /// Grants exactly `capabilities` (pass the manifest's list); calls to
    /// any other return [`HostError::Denied`].
    pub fn grant_capabilities(mut self, capabilities: &[Capability]) -> Self {
        self.state.granted = capabilities.iter().copied().collect();
        self
    }

    /// Sets the string `[config]` key `key`.
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.state
            .config
            .insert(key.to_string(), ConfigValue::String(value.to_string()));
        self
    }

    /// Sets `[config]` key `key` to a non-string value written as JSON
    /// (`5`, `true`, `{"a": 1}`); `config::get` returns the text as it is.
    pub fn config_raw(mut self, key: &str, json: &str) -> Self {
        self.state
            .config
            .insert(key.to_string(), ConfigValue::Json(json.to_string()));
        self
    }

    /// Adds a resource owner whose `password` verifies to `subject`.
    pub fn user(mut self, username: &str, password: &str, subject: &str) -> Self {
        self.state.users.insert(
            username.to_string(),
            User {
                password: password.to_string(),
                subject: subject.to_string(),
            },
        );
        self
    }

    /// Sets the fixed clock, in seconds since the Unix epoch.
    pub fn clock(mut self, now: u64) -> Self {
        self.state.now = now;
        self
    }

    /// Sets the issuer identifier the host writes as `iss` into what
    /// `signing::sign` signs (default `https://grantbox.test`).
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.state.issuer = issuer.to_string();
        self
    }

    /// Seeds the generator of tokens, codes and random bytes.
    pub fn seed(mut self, seed: u64) -> Self {
        self.state.rng = seed;
        self
    }

    /// Sets how long issued access and refresh tokens live, in seconds.
    pub fn token_lifetimes(mut self, access_seconds: u64, refresh_seconds: u64) -> Self {
        self.state.access_token_lifetime = access_seconds;
        self.state.refresh_token_lifetime = refresh_seconds;
        self
    }

    /// Makes every call of `capability` fail with `error` (e.g.
    /// [`HostError::Unavailable`]), as a store outage would.
    pub fn fail(mut self, capability: Capability, error: HostError) -> Self {
        self.state.failures.insert(capability, error);
        self
    }

    /// Sets or clears the failure of `capability` between calls.
    pub fn set_failure(&mut self, capability: Capability, error: Option<HostError>) {
        match error {
            Some(error) => self.state.failures.insert(capability, error),
            None => self.state.failures.remove(&capability),
        };
    }

    /// Changes the calling client between calls.
    pub fn set_client(&mut self, client: Client) {
        self.state.client = client;
    }

    /// Sets the fixed clock between calls.
    pub fn set_clock(&mut self, now: u64) {
        self.state.now = now;
    }

    /// Moves the fixed clock forward by `seconds`.
    pub fn advance(&mut self, seconds: u64) {
        self.state.now += seconds;
    }

    /// Runs `f` with this host installed for the current thread, so the
    /// functions of [`crate::host`] reach it. Panics in `f` propagate; the
    /// state is kept either way.
    pub fn run<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let mut state = std::mem::replace(&mut self.state, State::new());
        // As on the real host, a family learned by a lookup serves only the call that looked.
        state.looked_up.clear();
        // Likewise, `openid::id_token` serves only families this call
        // redeemed a code of or rotated a refresh token into.
        state.id_token_grants.clear();
        CURRENT.with(|current| {
            let mut current = current.borrow_mut();
            assert!(current.is_none(), "TestHost::run cannot be nested");
            *current = Some(state);
        });
        let _restore = Restore(&mut self.state);
        f()
    }

    /// Calls `G::info()` with this host installed.
    pub fn info<G: Grant>(&mut self) -> PluginInfo {
        self.run(G::info)
    }

    /// Calls `G::exchange(request)` with this host installed.
    ///
    /// Panics when a successful response carries a token the host did not
    /// issue during this call: the real host refuses such a response.
    pub fn exchange<G: Grant>(
        &mut self,
        request: TokenRequest,
    ) -> Result<TokenResponse, OAuthError> {
        let before = self.state.tokens.len();
        let signed_before = self.state.signed.len();
        let result = self.run(|| G::exchange(request));
        if let Ok(response) = &result {
            let fresh = &self.state.tokens[before..];
            let signed = &self.state.signed[signed_before..];
            let issued_now = |token: &str| {
                fresh.iter().any(|issued| issued.token == token)
                    || signed.iter().any(|jwt| jwt == token)
            };
            assert!(
                issued_now(&response.access_token),
                "the plugin answered with an access token the host did not issue during this call"
            );
            if let Some(refresh_token) = &response.refresh_token {
                assert!(
                    issued_now(refresh_token),
                    "the plugin answered with a refresh token the host did not issue during this call"
                );
            }
        }
        result
    }

    /// Calls `G::authorize_request(request)` with this host installed.
    pub fn authorize_request<G: Grant>(
        &mut self,
        request: AuthorizationRequest,
    ) -> Result<Params, OAuthError> {
        self.run(|| G::authorize_request(request))
    }

    /// Calls `G::authorize_response(approval)` with this host installed.
    pub fn authorize_response<G: Grant>(
        &mut self,
        approval: AuthorizationApproval,
    ) -> Result<Params, OAuthError> {
        self.run(|| G::authorize_response(approval))
    }

    /// A token request from the calling client, as the host would pass it:
    /// `scope` is the requested scope (`None` when absent), `params` the
    /// other body parameters.
    pub fn token_request(
        &self,
        grant_type: &str,
        scope: Option<&[&str]>,
        params: &[(&str, &str)],
    ) -> TokenRequest {
        TokenRequest {
            grant_type: grant_type.to_string(),
            client: self.state.client.clone(),
            scope: scope.map(strings),
            params: params
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        }
    }

    /// Stores an access token this server issued earlier to `client_id`
    /// (any client, not only the calling one) in a family of its own, and
    /// returns it: the subject or actor token of a token exchange.
    pub fn existing_token(
        &mut self,
        client_id: &str,
        subject: Option<&str>,
        scope: &[&str],
    ) -> String {
        let calling = std::mem::replace(&mut self.state.client, Client::confidential(client_id));
        let grant_id = self.state.new_family();
        let token = self.state.store_token(
            TokenKind::Access,
            subject.map(str::to_string),
            strings(scope),
            &grant_id,
        );
        self.state.client = calling;
        token
    }

    /// The calling client.
    pub fn calling_client(&self) -> &Client {
        &self.state.client
    }

    /// The fixed clock, in seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        self.state.now
    }

    /// Every token issued so far, oldest first (access and refresh).
    pub fn issued_tokens(&self) -> &[IssuedToken] {
        &self.state.tokens
    }

    /// The issued token `token`, if the host issued it.
    pub fn token(&self, token: &str) -> Option<&IssuedToken> {
        self.state
            .tokens
            .iter()
            .find(|issued| issued.token == token)
    }

    /// Every JWT `signing::sign` returned so far, oldest first.
    pub fn signed_tokens(&self) -> &[String] {
        &self.state.signed
    }

    /// Every ID token `openid::id_token` returned so far, oldest first.
    pub fn id_tokens(&self) -> &[String] {
        &self.state.id_tokens
    }

    /// The claims of a JWT this host signed (an ID token or what
    /// `signing::sign` returned), decoded without verifying it.
    pub fn jwt_claims(jwt: &str) -> serde_json::Map<String, serde_json::Value> {
        signing::claims_of(jwt)
    }

    /// Stores a refresh token issued to the calling client in a family of
    /// its own whose user (`subject`) signed in at `auth_time`, as after an
    /// authorization code flow with `openid` granted, and returns it.
    pub fn signed_in_refresh_token(
        &mut self,
        subject: &str,
        scope: &[&str],
        auth_time: u64,
    ) -> String {
        let grant_id = self.state.new_family();
        (self.state.sign_ins).insert(grant_id.clone(), (subject.to_string(), auth_time));
        self.state.store_token(
            TokenKind::Refresh,
            Some(subject.to_string()),
            strings(scope),
            &grant_id,
        )
    }

    /// The issuer identifier written as `iss` into signed JWTs.
    pub fn issuer_identifier(&self) -> &str {
        &self.state.issuer
    }

    /// The public key (PEM, SubjectPublicKeyInfo) of the fixed ES256 test key
    /// that `signing::sign` signs with, for verifying what the plugin signed
    /// with a JOSE library of the test's own choice.
    pub fn signing_public_key_pem() -> String {
        signing::public_key_pem()
    }

    /// Every line logged so far, oldest first.
    pub fn logs(&self) -> &[LogLine] {
        &self.state.logs
    }

    /// The live (unexpired) value of `key` in the plugin's key-value namespace.
    pub fn key_value(&self, key: &str) -> Option<&[u8]> {
        self.state
            .live_entry(key)
            .map(|entry| entry.value.as_slice())
    }
}

thread_local! {
    static CURRENT: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Puts the state back into its [`TestHost`] when `run` ends, even by panic.
struct Restore<'a>(&'a mut State);

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        if let Some(state) = CURRENT.with(|current| current.borrow_mut().take()) {
            *self.0 = state;
        }
    }
}

/// Runs `f` on the installed state; used by [`backend`].
pub(crate) fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        let state = current.as_mut().expect(
            "a grantbox_sdk::host function was called outside TestHost::run; \
             call the plugin through a TestHost",
        );
        f(state)
    })
}

#[derive(Debug)]
enum ConfigValue {
    String(String),
    Json(String),
}

#[derive(Debug)]
struct User {
    password: String,
    subject: String,
}

#[derive(Debug)]
struct Family {
    client_id: String,
    revoked: bool,
}

#[derive(Debug)]
struct Code {
    client_id: String,
    grant: CodeGrant,
    grant_id: String,
    expires_at: u64,
    redeemed: bool,
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires_at: Option<u64>,
}

/// Everything the test host remembers.
#[derive(Debug)]
pub(crate) struct State {
    client: Client,
    granted: BTreeSet<Capability>,
    failures: BTreeMap<Capability, HostError>,
    config: BTreeMap<String, ConfigValue>,
    users: BTreeMap<String, User>,
    now: u64,
    rng: u64,
    access_token_lifetime: u64,
    refresh_token_lifetime: u64,
    tokens: Vec<IssuedToken>,
    families: BTreeMap<String, Family>,
    /// Family and expiry of each token `token-exchange.lookup` returned
    /// during the current call.
    looked_up: Vec<(String, u64)>,
    codes: BTreeMap<String, Code>,
    key_value: BTreeMap<String, Entry>,
    logs: Vec<LogLine>,
    /// `iss` of signed JWTs.
    issuer: String,
    /// JWTs `signing::sign` returned.
    signed: Vec<String>,
    /// How each family's user signed in (subject, `auth_time`): recorded
    /// by `codes::issue` for a code with `openid` in its scope.
    sign_ins: BTreeMap<String, (String, u64)>,
    /// Family and scope of each code redeemed and refresh token rotated
    /// during the current call.
    id_token_grants: Vec<(String, Vec<String>)>,
    /// ID tokens `openid::id_token` returned.
    id_tokens: Vec<String>,
}

impl State {
    fn new() -> Self {
        Self {
            client: Client::confidential("test-client"),
            granted: Capability::ALL.into_iter().collect(),
            failures: BTreeMap::new(),
            config: BTreeMap::new(),
            users: BTreeMap::new(),
            now: 1_700_000_000,
            rng: 0x6772_616e_7462_6f78,
            access_token_lifetime: 3600,
            refresh_token_lifetime: 30 * 24 * 3600,
            tokens: Vec::new(),
            families: BTreeMap::new(),
            looked_up: Vec::new(),
            codes: BTreeMap::new(),
            key_value: BTreeMap::new(),
            logs: Vec::new(),
            issuer: "https://grantbox.test".to_string(),
            signed: Vec::new(),
            sign_ins: BTreeMap::new(),
            id_token_grants: Vec::new(),
            id_tokens: Vec::new(),
        }
    }

    /// Refuses a capability that is not granted or set to fail.
    fn check(&self, capability: Capability) -> Result<(), HostError> {
        if !self.granted.contains(&capability) {
            return Err(HostError::Denied(format!(
                "capability `{}` is not granted to this plugin",
                capability.name()
            )));
        }
        match self.failures.get(&capability) {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// splitmix64: reproducible, random-looking, not secure.
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(len + 8);
        while bytes.len() < len {
            bytes.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        bytes.truncate(len);
        bytes
    }

    /// 32 base64url characters from 24 random bytes.
    fn random_token(&mut self) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        self.random_bytes(24)
            .chunks(3)
            .flat_map(|chunk| {
                let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
                [18, 12, 6, 0].map(|shift| char::from(ALPHABET[(n >> shift) as usize & 63]))
            })
            .collect()
    }

    fn new_family(&mut self) -> String {
        let grant_id = format!("grant-{:016x}", self.next_u64());
        self.families.insert(
            grant_id.clone(),
            Family {
                client_id: self.client.client_id.clone(),
                revoked: false,
            },
        );
        grant_id
    }

    fn revoke_family(&mut self, grant_id: &str) {
        if let Some(family) = self.families.get_mut(grant_id) {
            family.revoked = true;
        }
        for token in self
            .tokens
            .iter_mut()
            .filter(|token| token.grant_id == grant_id)
        {
            token.revoked = true;
        }
    }

    fn check_registered_scope(&self, scope: &[String]) -> Result<(), HostError> {
        match scope.iter().find(|word| !self.client.scopes.contains(word)) {
            Some(word) => Err(HostError::InvalidArgument(format!(
                "scope `{word}` is not registered for client `{}`",
                self.client.client_id
            ))),
            None => Ok(()),
        }
    }

    fn store_token(
        &mut self,
        kind: TokenKind,
        subject: Option<String>,
        scope: Vec<String>,
        grant_id: &str,
    ) -> String {
        let token = self.random_token();
        let lifetime = match kind {
            TokenKind::Access => self.access_token_lifetime,
            TokenKind::Refresh => self.refresh_token_lifetime,
        };
        self.tokens.push(IssuedToken {
            token: token.clone(),
            kind,
            client_id: self.client.client_id.clone(),
            subject,
            scope,
            grant_id: grant_id.to_string(),
            issued_at: self.now,
            expires_at: self.now + lifetime,
            revoked: false,
            rotated: false,
            audience: Vec::new(),
            actor: None,
        });
        token
    }

    fn is_active(&self, token: &IssuedToken) -> bool {
        !token.revoked && !token.rotated && self.now < token.expires_at
    }

    fn live_entry(&self, key: &str) -> Option<&Entry> {
        self.key_value.get(key).filter(|entry| {
            entry
                .expires_at
                .is_none_or(|expires_at| self.now < expires_at)
        })
    }

    fn expiry(&self, ttl_seconds: Option<u32>) -> Option<u64> {
        ttl_seconds.map(|ttl| self.now + u64::from(ttl))
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
