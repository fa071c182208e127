//! Configuration: a TOML file read in two stages (raw with
//! `deny_unknown_fields`, then validated), overridden by flags and
//! `GRANTBOX_*` environment variables. Handlers only see [`ServeConfig`].

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::keys::Alg;
use crate::plugin::{Capability, LimitCaps, RuntimeConfig, TokenLifetimes};
use crate::ratelimit::LoginLimits;

/// The default database: a SQLite file in the working directory.
pub const DEFAULT_DB: &str = "sqlite://grantbox.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// An example admin listener address (loopback); there is no default: the
/// admin listener is off unless `admin_listen` is set.
pub const EXAMPLE_ADMIN_LISTEN: &str = "127.0.0.1:8181";

/// The issuer identifier in the one form the server compares and sends (RFC
/// 8414 §2): an https URL (http only on a loopback host, for development)
/// with no query, fragment or user info; scheme and host in lowercase, no
/// default port, no trailing slash. `HTTPS://Auth.Example/` becomes
/// `https://auth.example`, so every https issuer gets `Secure` cookies.
pub fn normalize_issuer(text: &str) -> Result<String, String> {
    let parsed = url::Url::parse(text).map_err(|e| format!("{text:?}: {e}"))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("{text:?} must have no query or fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{text:?} must have no user info"));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "{text:?} must be https: http is allowed only on a loopback host (127.0.0.1, [::1], localhost)"
            ));
        }
        _ => return Err(format!("{text:?} must be an https URL")),
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// The config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<String>,
    /// The admin listener's address; unset: no admin listener. A
    /// non-loopback address needs `admin_behind_tls_proxy = true`.
    pub admin_listen: Option<String>,
    /// The `Host` the admin API answers besides the loopback names (e.g.
    /// `admin.example.com`, as clients send it, with a port if not the
    /// default); required for a non-loopback `admin_listen`.
    pub admin_host: Option<String>,
    /// The admin listener is reached only through a TLS-terminating proxy:
    /// the one way to bind it to a non-loopback address (it has no TLS).
    pub admin_behind_tls_proxy: Option<bool>,
    /// Reload the plugins when a file in the plugin directory changes.
    pub watch_plugins: Option<bool>,
    pub db: Option<String>,
    pub plugins: Option<PathBuf>,
    pub issuer: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub body_limit_bytes: Option<usize>,
    /// A directory whose `*.html` and `grantbox.css` replace the built-in pages.
    pub templates: Option<PathBuf>,
    /// How long a user has to sign in and decide on an authorization request.
    pub transaction_lifetime_seconds: Option<i64>,
    /// Reverse proxies (by IP) whose `X-Forwarded-For` names the client
    /// address that login throttling counts; empty means the peer address.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// What each scope means, shown on the consent page (`read = "Read your profile"`).
    #[serde(default)]
    pub scopes: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub tokens: RawTokens,
    #[serde(default)]
    pub plugin_limits: RawPluginLimits,
    #[serde(default)]
    pub limits: RawLimits,
    /// Failed sign-in throttling of the login page and the password grant.
    #[serde(default)]
    pub login_throttle: RawLoginThrottle,
    /// The signing keys (`keys.rs`).
    #[serde(default)]
    pub keys: RawKeys,
    /// Dynamic client registration (RFC 7591); closed unless enabled.
    #[serde(default)]
    pub registration: RawRegistration,
    /// Pushed authorization requests (RFC 9126, `POST /par`).
    #[serde(default)]
    pub par: RawPar,
    /// DPoP proofs (RFC 9449).
    #[serde(default)]
    pub dpop: RawDpop,
}

/// `[par]` as written; see [`ParConfig`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPar {
    pub require_pushed_authorization_requests: Option<bool>,
    pub request_uri_lifetime_seconds: Option<i64>,
}

/// `[dpop]` as written; see [`DpopConfig`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDpop {
    pub proof_max_age_seconds: Option<i64>,
    pub require_nonce: Option<bool>,
}

/// `[dpop]`, validated: how DPoP proofs (RFC 9449) are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpopConfig {
    /// How far a proof's `iat` may be from now, either way (60 s by
    /// default); its `jti` is remembered that long.
    pub proof_max_age_seconds: i64,
    /// Whether proofs at the token endpoint must carry a current server
    /// nonce (RFC 9449 §8); false by default.
    pub require_nonce: bool,
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self {
            proof_max_age_seconds: 60,
            require_nonce: false,
        }
    }
}

/// Validates `[dpop]`; an error names the field (without the table).
fn dpop_config(raw: &RawDpop) -> Result<DpopConfig, (&'static str, String)> {
    let defaults = DpopConfig::default();
    let proof_max_age_seconds = match raw.proof_max_age_seconds {
        None => defaults.proof_max_age_seconds,
        Some(seconds) if (1..=3600).contains(&seconds) => seconds,
        Some(seconds) => {
            return Err((
                "proof_max_age_seconds",
                format!("{seconds} is outside 1..=3600 seconds"),
            ));
        }
    };
    Ok(DpopConfig {
        proof_max_age_seconds,
        require_nonce: raw.require_nonce.unwrap_or(defaults.require_nonce),
    })
}

/// `[registration]` as written; see [`RegistrationConfig`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistration {
    pub enabled: Option<bool>,
    pub initial_access_token_required: Option<bool>,
    pub scopes: Option<Vec<String>>,
}

/// `[keys]`: the signing keys and their key-encryption key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeys {
    /// A file holding the key-encryption key (32 bytes, base64url);
    /// `GRANTBOX_KEY_ENCRYPTION_KEY` wins over it.
    pub key_encryption_key_file: Option<PathBuf>,
    /// Seconds from a rotation until the new key signs; it is published at once.
    pub activation_delay_seconds: Option<i64>,
    /// The algorithm access tokens are signed with (`ES256`, `RS256`, `EdDSA`).
    pub default_algorithm: Option<String>,
    /// The algorithms the host keeps a key for; one is created at start for each that has none.
    pub algorithms: Option<Vec<String>>,
    /// Seconds between two reloads of the keys from the database.
    pub reload_interval_seconds: Option<u64>,
}

/// `[limits]`: what a slow or idle client may hold (nginx's
/// `client_header_timeout`, `client_body_timeout` and `worker_connections`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub header_read_timeout_seconds: Option<u64>,
    pub body_read_timeout_seconds: Option<u64>,
    pub max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokens {
    pub access_token_lifetime: Option<i64>,
    pub refresh_token_absolute_lifetime: Option<i64>,
    pub refresh_token_idle_lifetime: Option<i64>,
    pub authorization_code_max_lifetime: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPluginLimits {
    pub max_memory_mib: Option<usize>,
    pub max_timeout_ms: Option<u64>,
    pub max_concurrent_calls: Option<u32>,
    pub allowed_capabilities: Option<Vec<String>>,
    // Caps on the per-call host budget and the key-value quota a manifest's
    // `[limits]` may ask for (SECURITY.md, "Plugin quotas and budgets").
    pub max_host_calls: Option<u32>,
    pub max_host_time_ms: Option<u64>,
    pub max_key_value_keys: Option<u64>,
    pub max_key_value_mib: Option<u64>,
    pub max_key_value_write_kib: Option<u64>,
}

/// A config problem, naming the file (or flag) and the field.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {field}: {message}")]
pub struct ConfigError {
    pub source_name: String,
    pub field: String,
    pub message: String,
}

impl RawConfig {
    /// Reads the file, or the defaults when there is none.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: source_name.clone(),
            field: "(file)".into(),
            message: format!("cannot read: {e}"),
        })?;
        toml::from_str(&text).map_err(|e| ConfigError {
            field: e
                .span()
                .map(|span| format!("line {}", text[..span.start].lines().count().max(1)))
                .unwrap_or_else(|| "(toml)".into()),
            source_name,
            message: e.message().to_owned(),
        })
    }
}

/// Command-line values for `serve`; each also reads its `GRANTBOX_*` variable.
#[derive(Debug, Default, Clone)]
pub struct ServeFlags {
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    /// `--watch-plugins`: `true` when given; the file decides otherwise.
    pub watch_plugins: bool,
    pub db: Option<String>,
    pub plugins: Option<PathBuf>,
    pub issuer: Option<String>,
    pub cache_dir: Option<PathBuf>,
}

/// Everything `serve` needs, validated.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// The admin listener; `None`: off.
    pub admin: Option<AdminListen>,
    /// Reload the plugins when the plugin directory changes (needs `plugins`).
    pub watch_plugins: bool,
    pub db: String,
    pub plugins: Option<PathBuf>,
    /// The issuer identifier; `None` means `http://` + the bound address.
    pub issuer: Option<String>,
    pub body_limit_bytes: usize,
    pub templates: Option<PathBuf>,
    pub transaction_lifetime: i64,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub scope_descriptions: std::collections::BTreeMap<String, String>,
    pub lifetimes: TokenLifetimes,
    pub runtime: RuntimeConfig,
    pub connections: ConnectionLimits,
    pub login_limits: LoginLimits,
    pub keys: KeysConfig,
    pub registration: RegistrationConfig,
    pub par: ParConfig,
    pub dpop: DpopConfig,
}

/// `[par]`, validated: pushed authorization requests (RFC 9126).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParConfig {
    /// RFC 9126 §5: every client must push its authorization requests (a
    /// client can be held to it alone with `client add --require-par`);
    /// false by default.
    pub require_pushed_authorization_requests: bool,
    /// Seconds a `request_uri` can be used (RFC 9126 §2.2 `expires_in`); 60
    /// by default, at most 600 (§7.3: short-lived).
    pub request_uri_lifetime: i64,
}

impl Default for ParConfig {
    fn default() -> Self {
        Self {
            require_pushed_authorization_requests: false,
            request_uri_lifetime: 60,
        }
    }
}

/// Validates `[par]`; an error names the field (without the table).
fn par_config(raw: &RawPar) -> Result<ParConfig, (&'static str, String)> {
    let defaults = ParConfig::default();
    let request_uri_lifetime = match raw.request_uri_lifetime_seconds {
        None => defaults.request_uri_lifetime,
        Some(seconds) if (1..=600).contains(&seconds) => seconds,
        Some(seconds) => {
            return Err((
                "request_uri_lifetime_seconds",
                format!("{seconds} is outside 1..=600 seconds"),
            ));
        }
    };
    Ok(ParConfig {
        require_pushed_authorization_requests: raw
            .require_pushed_authorization_requests
            .unwrap_or(defaults.require_pushed_authorization_requests),
        request_uri_lifetime,
    })
}

/// `[registration]`, validated: the policy of `POST /register` (RFC 7591).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// Whether `/register` answers at all and the metadata names it (false
    /// by default).
    pub enabled: bool,
    /// Whether a registration needs an initial access token (`grantbox
    /// registration token create`); true by default. False opens
    /// registration to anyone who can reach the server.
    pub initial_access_token_required: bool,
    /// The only scopes a registered client may have (none by default): a
    /// client cannot give itself a scope the operator did not offer.
    pub scopes: Vec<String>,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            initial_access_token_required: true,
            scopes: Vec::new(),
        }
    }
}

/// Validates `[registration]`; an error names the field (without the table).
fn registration_config(
    raw: &RawRegistration,
) -> Result<RegistrationConfig, (&'static str, String)> {
    let defaults = RegistrationConfig::default();
    let scopes = raw.scopes.clone().unwrap_or(defaults.scopes);
    // RFC 6749 §3.3 scope tokens: printable ASCII without space, `"` or `\`.
    if let Some(bad) = scopes.iter().find(|scope| {
        scope.is_empty()
            || !scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    }) {
        return Err((
            "scopes",
            format!("{bad:?} is not a scope token (rfc 6749 §3.3)"),
        ));
    }
    Ok(RegistrationConfig {
        enabled: raw.enabled.unwrap_or(defaults.enabled),
        initial_access_token_required: raw
            .initial_access_token_required
            .unwrap_or(defaults.initial_access_token_required),
        scopes,
    })
}

/// `[keys]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysConfig {
    pub key_encryption_key_file: Option<PathBuf>,
    /// Seconds from a rotation until the new key signs.
    pub activation_delay: i64,
    pub default_alg: Alg,
    /// Each has a key; the default algorithm is among them.
    pub algorithms: Vec<Alg>,
    /// How often every instance reloads the keys from the database: the
    /// bound on how long a rotation takes to reach all of them.
    pub reload_interval: std::time::Duration,
}

impl Default for KeysConfig {
    /// ES256 signs, RS256 is kept for OpenID Connect; a new key signs five
    /// minutes after it is published; keys reload every ten seconds.
    fn default() -> Self {
        Self {
            key_encryption_key_file: None,
            activation_delay: 300,
            default_alg: Alg::ES256,
            algorithms: vec![Alg::ES256, Alg::RS256],
            reload_interval: std::time::Duration::from_secs(10),
        }
    }
}

impl KeysConfig {
    /// The `max-age` of the JWKS: a cache that fetched it just before this
    /// instance loaded a new key still refreshes before that key signs
    /// (reload interval + max-age <= activation delay), and never more than
    /// five minutes.
    pub fn jwks_max_age(&self) -> u64 {
        let delay = u64::try_from(self.activation_delay).unwrap_or(0);
        delay
            .saturating_sub(self.reload_interval.as_secs())
            .min(300)
    }
}

/// Validates `[keys]`; an error names the field.
pub(crate) fn keys_config(raw: &RawKeys) -> Result<KeysConfig, (&'static str, String)> {
    let defaults = KeysConfig::default();
    let parse = |field: &'static str, name: &str| {
        Alg::parse(name).ok_or_else(|| {
            (
                field,
                format!("unknown algorithm {name:?} (ES256, RS256, EdDSA)"),
            )
        })
    };
    let activation_delay = match raw.activation_delay_seconds {
        None => defaults.activation_delay,
        Some(s) if (0..=7 * 86_400).contains(&s) => s,
        Some(s) => {
            return Err((
                "activation_delay_seconds",
                format!("{s} is outside 0..=604800 seconds"),
            ));
        }
    };
    let reload_interval = match raw.reload_interval_seconds {
        None => defaults.reload_interval,
        Some(s) if (1..=3600).contains(&s) => std::time::Duration::from_secs(s),
        Some(s) => {
            return Err((
                "reload_interval_seconds",
                format!("{s} is outside 1..=3600 seconds"),
            ));
        }
    };
    let default_alg = match &raw.default_algorithm {
        None => defaults.default_alg,
        Some(name) => parse("default_algorithm", name)?,
    };
    let algorithms = match &raw.algorithms {
        None => {
            let mut algorithms = defaults.algorithms;
            if !algorithms.contains(&default_alg) {
                algorithms.push(default_alg);
            }
            algorithms
        }
        Some(names) => {
            let mut algorithms = Vec::new();
            for name in names {
                let alg = parse("algorithms", name)?;
                if !algorithms.contains(&alg) {
                    algorithms.push(alg);
                }
            }
            if !algorithms.contains(&default_alg) {
                return Err((
                    "algorithms",
                    format!("must include the default_algorithm {default_alg}"),
                ));
            }
            // OIDC Core §15.1, Discovery §3: RS256 is always offered for ID
            // tokens, and a client that registers no algorithm gets it.
            if !algorithms.contains(&Alg::RS256) {
                return Err((
                    "algorithms",
                    "must include RS256, the algorithm OpenID Connect ID tokens are always offered in"
                        .to_owned(),
                ));
            }
            algorithms
        }
    };
    Ok(KeysConfig {
        key_encryption_key_file: raw.key_encryption_key_file.clone(),
        activation_delay,
        default_alg,
        algorithms,
        reload_interval,
    })
}

/// How long a client may take to send a request, and how many connections
/// the server keeps open at once (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From the first wait for a request head (a new connection, or an idle
    /// kept-alive one) until the whole head has arrived.
    pub header_read_timeout: std::time::Duration,
    /// The longest wait for the next piece of a request body.
    pub body_read_timeout: std::time::Duration,
    /// Connections open at once; past it the server stops accepting until
    /// one closes.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    /// nginx's defaults for both timeouts (60 s); 4096 connections.
    fn default() -> Self {
        Self {
            header_read_timeout: std::time::Duration::from_secs(60),
            body_read_timeout: std::time::Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

impl ServeConfig {
    /// Flags win over the file, the file over the defaults.
    pub fn resolve(flags: ServeFlags, raw: RawConfig, source: &str) -> Result<Self, ConfigError> {
        let error = |field: &str, message: String| ConfigError {
            source_name: source.to_owned(),
            field: field.to_owned(),
            message,
        };
        let listen_text = flags
            .listen
            .or(raw.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            error(
                "listen",
                format!("{listen_text:?} is not an address like 127.0.0.1:8080"),
            )
        })?;
        let admin = admin_config(
            flags.admin_listen.or(raw.admin_listen),
            raw.admin_host,
            raw.admin_behind_tls_proxy.unwrap_or(false),
        )
        .map_err(|(field, message)| error(field, message))?;
        let issuer = match flags.issuer.or(raw.issuer) {
            Some(issuer) => {
                Some(normalize_issuer(&issuer).map_err(|message| error("issuer", message))?)
            }
            None => None,
        };

        let defaults = TokenLifetimes::default();
        let positive = |field: &str, value: Option<i64>, default: i64| match value {
            Some(v) if v <= 0 => Err(error(
                field,
                format!("{v} must be a positive number of seconds"),
            )),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let lifetimes = TokenLifetimes {
            access_token: positive(
                "tokens.access_token_lifetime",
                raw.tokens.access_token_lifetime,
                defaults.access_token,
            )?,
            refresh_token_absolute: positive(
                "tokens.refresh_token_absolute_lifetime",
                raw.tokens.refresh_token_absolute_lifetime,
                defaults.refresh_token_absolute,
            )?,
            refresh_token_idle: positive(
                "tokens.refresh_token_idle_lifetime",
                raw.tokens.refresh_token_idle_lifetime,
                defaults.refresh_token_idle,
            )?,
            authorization_code_max: positive(
                "tokens.authorization_code_max_lifetime",
                raw.tokens.authorization_code_max_lifetime,
                defaults.authorization_code_max,
            )?,
        };

        let mut runtime = RuntimeConfig::default();
        let limits = raw.plugin_limits;
        if let Some(mib) = limits.max_memory_mib {
            if !(1..=4096).contains(&mib) {
                return Err(error(
                    "plugin_limits.max_memory_mib",
                    format!("{mib} is outside 1..=4096"),
                ));
            }
            runtime.caps = LimitCaps {
                max_memory_bytes: mib << 20,
                ..runtime.caps
            };
        }
        if let Some(ms) = limits.max_timeout_ms {
            if !(1..=60_000).contains(&ms) {
                return Err(error(
                    "plugin_limits.max_timeout_ms",
                    format!("{ms} is outside 1..=60000"),
                ));
            }
            runtime.caps.max_timeout_ms = ms;
        }
        if let Some(calls) = limits.max_concurrent_calls {
            if !(1..=10_000).contains(&calls) {
                return Err(error(
                    "plugin_limits.max_concurrent_calls",
                    format!("{calls} is outside 1..=10000"),
                ));
            }
            runtime.max_concurrent_calls = calls;
        }
        if let Some(names) = limits.allowed_capabilities {
            let mut allowed = BTreeSet::new();
            for name in names {
                allowed.insert(Capability::parse(&name).ok_or_else(|| {
                    error(
                        "plugin_limits.allowed_capabilities",
                        format!("unknown capability {name:?}"),
                    )
                })?);
            }
            runtime.allowed_capabilities = allowed;
        }
        // Caps on the per-call host budget and the key-value quota.
        let cap = |field: &str, value: u64, range: std::ops::RangeInclusive<u64>| {
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(error(
                    field,
                    format!("{value} is outside {}..={}", range.start(), range.end()),
                ))
            }
        };
        if let Some(calls) = limits.max_host_calls {
            runtime.caps.max_host_calls = cap(
                "plugin_limits.max_host_calls",
                u64::from(calls),
                1..=1_000_000,
            )? as u32;
        }
        if let Some(ms) = limits.max_host_time_ms {
            runtime.caps.max_host_time_ms = cap("plugin_limits.max_host_time_ms", ms, 1..=600_000)?;
        }
        if let Some(keys) = limits.max_key_value_keys {
            runtime.caps.max_key_value_keys =
                cap("plugin_limits.max_key_value_keys", keys, 1..=100_000_000)?;
        }
        if let Some(mib) = limits.max_key_value_mib {
            runtime.caps.max_key_value_bytes =
                cap("plugin_limits.max_key_value_mib", mib, 1..=1 << 20)? << 20;
        }
        if let Some(kib) = limits.max_key_value_write_kib {
            runtime.caps.max_key_value_write_bytes =
                cap("plugin_limits.max_key_value_write_kib", kib, 1..=1 << 20)? << 10;
        }
        runtime.cache_dir = flags.cache_dir.or(raw.cache_dir).or_else(default_cache_dir);

        let connections = connection_limits(&raw.limits)
            .map_err(|(field, message)| error(&format!("limits.{field}"), message))?;

        let body_limit_bytes = raw.body_limit_bytes.unwrap_or(64 * 1024);
        if !(1024..=16 << 20).contains(&body_limit_bytes) {
            return Err(error(
                "body_limit_bytes",
                format!("{body_limit_bytes} is outside 1024..=16777216"),
            ));
        }
        let plugins = flags.plugins.or(raw.plugins);
        let watch_plugins = flags.watch_plugins || raw.watch_plugins.unwrap_or(false);
        if watch_plugins && plugins.is_none() {
            return Err(error(
                "watch_plugins",
                "there is no plugin directory to watch; set plugins (or --plugins)".into(),
            ));
        }
        Ok(Self {
            listen,
            admin,
            watch_plugins,
            db: flags.db.or(raw.db).unwrap_or_else(|| DEFAULT_DB.into()),
            plugins,
            issuer,
            body_limit_bytes,
            templates: raw.templates,
            scope_descriptions: raw.scopes.clone(),
            trusted_proxies: raw
                .trusted_proxies
                .iter()
                .map(|ip| {
                    ip.parse().map_err(|_| {
                        error("trusted_proxies", format!("{ip:?} is not an IP address"))
                    })
                })
                .collect::<Result<_, _>>()?,
            transaction_lifetime: positive(
                "transaction_lifetime_seconds",
                raw.transaction_lifetime_seconds,
                600,
            )?,
            lifetimes,
            runtime,
            connections,
            login_limits: login_limits(&raw.login_throttle)
                .map_err(|(field, message)| error(&format!("login_throttle.{field}"), message))?,
            keys: keys_config(&raw.keys)
                .map_err(|(field, message)| error(&format!("keys.{field}"), message))?,
            registration: registration_config(&raw.registration)
                .map_err(|(field, message)| error(&format!("registration.{field}"), message))?,
            par: par_config(&raw.par)
                .map_err(|(field, message)| error(&format!("par.{field}"), message))?,
            dpop: dpop_config(&raw.dpop)
                .map_err(|(field, message)| error(&format!("dpop.{field}"), message))?,
        })
    }
}

/// Validates `[limits]`: timeouts of 1 to 3600 seconds, 1 to 1,000,000
/// connections. An error names the field.
fn connection_limits(raw: &RawLimits) -> Result<ConnectionLimits, (&'static str, String)> {
    let defaults = ConnectionLimits::default();
    let seconds =
        |field: &'static str, value: Option<u64>, default: std::time::Duration| match value {
            None => Ok(default),
            Some(s) if (1..=3600).contains(&s) => Ok(std::time::Duration::from_secs(s)),
            Some(s) => Err((field, format!("{s} is outside 1..=3600 seconds"))),
        };
    Ok(ConnectionLimits {
        header_read_timeout: seconds(
            "header_read_timeout_seconds",
            raw.header_read_timeout_seconds,
            defaults.header_read_timeout,
        )?,
        body_read_timeout: seconds(
            "body_read_timeout_seconds",
            raw.body_read_timeout_seconds,
            defaults.body_read_timeout,
        )?,
        max_connections: match raw.max_connections {
            None => defaults.max_connections,
            Some(n) if (1..=1_000_000).contains(&n) => n,
            Some(n) => return Err(("max_connections", format!("{n} is outside 1..=1000000"))),
        },
    })
}

/// The admin listener, validated: where it binds and which `Host` it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminListen {
    pub address: SocketAddr,
    /// `admin_host`, lowercase: answered besides the loopback names.
    pub host: Option<String>,
    /// `admin_behind_tls_proxy`: the admin origin is `https://` + the host.
    pub behind_tls_proxy: bool,
}

/// The admin listener's address; `Ok(None)` when unset (no admin listener).
pub fn admin_listen(text: Option<String>) -> Result<Option<SocketAddr>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    text.parse()
        .map(Some)
        .map_err(|_| format!("{text:?} is not an address like {EXAMPLE_ADMIN_LISTEN}"))
}

/// The admin listener from its three keys; the error names the field. The
/// admin API has no built-in TLS, so an address other than loopback is
/// accepted only with `admin_behind_tls_proxy = true` and an `admin_host`.
fn admin_config(
    listen: Option<String>,
    host: Option<String>,
    behind_tls_proxy: bool,
) -> Result<Option<AdminListen>, (&'static str, String)> {
    let host = match host {
        Some(host)
            if host.is_empty()
                || !host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c)) =>
        {
            return Err((
                "admin_host",
                format!(
                    "{host:?} is not a host name like admin.example.com or admin.example.com:8443"
                ),
            ));
        }
        host => host.map(|host| host.to_ascii_lowercase()),
    };
    let Some(address) = admin_listen(listen).map_err(|message| ("admin_listen", message))? else {
        return Ok(None);
    };
    if !address.ip().is_loopback() {
        if !behind_tls_proxy {
            return Err((
                "admin_listen",
                format!(
                    "\"{address}\" is not a loopback address; the admin API has no built-in TLS, so set admin_behind_tls_proxy = true when a TLS proxy is the only way to reach it, or listen on loopback (127.0.0.1 or [::1])"
                ),
            ));
        }
        if host.is_none() {
            return Err((
                "admin_host",
                format!(
                    "required when admin_listen (\"{address}\") is not a loopback address: the Host the TLS proxy forwards"
                ),
            ));
        }
    }
    Ok(Some(AdminListen {
        address,
        host,
        behind_tls_proxy,
    }))
}

/// `[login_throttle]` as written; see [`LoginLimits`] for what each means.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoginThrottle {
    pub free_failures: Option<u32>,
    pub wait_increment_seconds: Option<i64>,
    pub max_wait_seconds: Option<i64>,
    pub address_failures: Option<u32>,
    pub username_failures: Option<u32>,
    pub failure_reset_seconds: Option<i64>,
}

/// Validates `[login_throttle]`; an error names the field (without the table).
fn login_limits(raw: &RawLoginThrottle) -> Result<LoginLimits, (&'static str, String)> {
    let defaults = LoginLimits::default();
    let count = |field: &'static str, value: Option<u32>, default: u32| match value {
        Some(0) => Err((field, "0 must be at least 1".to_owned())),
        value => Ok(value.unwrap_or(default)),
    };
    let seconds = |field: &'static str, value: Option<i64>, default: i64| match value {
        Some(v) if !(1..=30 * 24 * 3600).contains(&v) => {
            Err((field, format!("{v} is outside 1..=2592000 seconds")))
        }
        value => Ok(value.unwrap_or(default)),
    };
    let limits = LoginLimits {
        free_failures: count("free_failures", raw.free_failures, defaults.free_failures)?,
        wait_increment_seconds: seconds(
            "wait_increment_seconds",
            raw.wait_increment_seconds,
            defaults.wait_increment_seconds,
        )?,
        max_wait_seconds: seconds(
            "max_wait_seconds",
            raw.max_wait_seconds,
            defaults.max_wait_seconds,
        )?,
        address_failures: count(
            "address_failures",
            raw.address_failures,
            defaults.address_failures,
        )?,
        username_failures: count(
            "username_failures",
            raw.username_failures,
            defaults.username_failures,
        )?,
        failure_reset_seconds: seconds(
            "failure_reset_seconds",
            raw.failure_reset_seconds,
            defaults.failure_reset_seconds,
        )?,
    };
    if limits.max_wait_seconds < limits.wait_increment_seconds {
        return Err((
            "max_wait_seconds",
            format!(
                "{} is less than wait_increment_seconds ({})",
                limits.max_wait_seconds, limits.wait_increment_seconds
            ),
        ));
    }
    // A counter forgotten before its wait is over would let the wait be skipped.
    if limits.failure_reset_seconds < limits.max_wait_seconds {
        return Err((
            "failure_reset_seconds",
            format!(
                "{} is less than max_wait_seconds ({})",
                limits.failure_reset_seconds, limits.max_wait_seconds
            ),
        ));
    }
    Ok(limits)
}

/// `$XDG_CACHE_HOME/grantbox`, else `~/.cache/grantbox`.
fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|dir| dir.join("grantbox"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<ServeConfig, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        ServeConfig::resolve(ServeFlags::default(), raw, "grantbox.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn dpop_keys_have_defaults_and_bounds() {
        assert_eq!(resolve("").unwrap().dpop, DpopConfig::default());
        assert_eq!(
            resolve("[dpop]\nproof_max_age_seconds = 120\nrequire_nonce = true\n")
                .unwrap()
                .dpop,
            DpopConfig {
                proof_max_age_seconds: 120,
                require_nonce: true
            }
        );
        assert_eq!(
            resolve("[dpop]\nproof_max_age_seconds = 0\n").unwrap_err(),
            "grantbox.toml: dpop.proof_max_age_seconds: 0 is outside 1..=3600 seconds"
        );
        assert!(resolve("[dpop]\nnonce = true\n").is_err());
    }

    #[test]
    fn registration_is_closed_by_default_and_needs_initial_access_tokens() {
        assert_eq!(
            resolve("").unwrap().registration,
            RegistrationConfig {
                enabled: false,
                initial_access_token_required: true,
                scopes: vec![],
            }
        );
        assert_eq!(
            resolve("[registration]\nenabled = true\ninitial_access_token_required = false\nscopes = [\"read\", \"urn:x\"]\n")
                .unwrap()
                .registration,
            RegistrationConfig {
                enabled: true,
                initial_access_token_required: false,
                scopes: vec!["read".into(), "urn:x".into()],
            }
        );
        assert_eq!(
            resolve("[registration]\nscopes = [\"two words\"]\n").unwrap_err(),
            "grantbox.toml: registration.scopes: \"two words\" is not a scope token (rfc 6749 §3.3)"
        );
        assert!(resolve("[registration]\nopen = true\n").is_err());
    }

    #[test]
    fn pushed_authorization_requests_are_optional_and_short_lived_by_default() {
        assert_eq!(
            resolve("").unwrap().par,
            ParConfig {
                require_pushed_authorization_requests: false,
                request_uri_lifetime: 60,
            }
        );
        assert_eq!(
            resolve("[par]\nrequire_pushed_authorization_requests = true\nrequest_uri_lifetime_seconds = 5\n")
                .unwrap()
                .par,
            ParConfig {
                require_pushed_authorization_requests: true,
                request_uri_lifetime: 5,
            }
        );
        for bad in ["0", "-1", "601"] {
            assert_eq!(
                resolve(&format!("[par]\nrequest_uri_lifetime_seconds = {bad}\n")).unwrap_err(),
                format!(
                    "grantbox.toml: par.request_uri_lifetime_seconds: {bad} is outside 1..=600 seconds"
                )
            );
        }
        assert!(resolve("[par]\nrequired = true\n").is_err());
    }

    #[test]
    fn defaults_and_overrides() {
        let config = resolve("").unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.admin, None, "no admin listener unless configured");
        assert_eq!(config.issuer, None);
        assert_eq!(config.lifetimes.access_token, 3600);
        assert_eq!(config.connections, ConnectionLimits::default());
        let config = resolve(
            "[limits]\nheader_read_timeout_seconds = 5\nbody_read_timeout_seconds = 7\nmax_connections = 64\n",
        )
        .unwrap();
        assert_eq!(
            config.connections,
            ConnectionLimits {
                header_read_timeout: std::time::Duration::from_secs(5),
                body_read_timeout: std::time::Duration::from_secs(7),
                max_connections: 64,
            }
        );
        let config = resolve("[tokens]\naccess_token_lifetime = 60\n").unwrap();
        assert_eq!(config.lifetimes.access_token, 60);
        let flags = ServeFlags {
            listen: Some("127.0.0.1:9999".into()),
            ..ServeFlags::default()
        };
        let raw: RawConfig = toml::from_str("listen = \"127.0.0.1:1\"").unwrap();
        assert_eq!(
            ServeConfig::resolve(flags, raw, "f").unwrap().listen.port(),
            9999
        );
    }

    #[test]
    fn the_issuer_is_normalised_and_https_off_loopback() {
        for (given, expect) in [
            ("https://auth.example", Ok("https://auth.example")),
            ("HTTPS://Auth.Example/", Ok("https://auth.example")),
            ("https://auth.example:443/", Ok("https://auth.example")),
            (
                "https://auth.example:8443/tenant/",
                Ok("https://auth.example:8443/tenant"),
            ),
            ("http://127.0.0.1:8080", Ok("http://127.0.0.1:8080")),
            ("HTTP://LOCALHOST:8080/", Ok("http://localhost:8080")),
            ("http://[::1]:8080", Ok("http://[::1]:8080")),
            ("http://auth.example", Err("must be https")),
            ("http://127.0.0.1.example", Err("must be https")),
            ("https://auth.example/?", Err("no query or fragment")),
            ("https://auth.example/?q=1", Err("no query or fragment")),
            ("https://auth.example/#", Err("no query or fragment")),
            ("https://user:pw@auth.example", Err("no user info")),
            ("ftp://auth.example", Err("must be an https URL")),
            ("auth.example", Err("relative URL")),
        ] {
            match (normalize_issuer(given), expect) {
                (Ok(normal), Ok(expect)) => assert_eq!(normal, expect, "{given}"),
                (Err(message), Err(part)) => {
                    assert!(message.contains(part), "{given}: {message}")
                }
                (got, expect) => panic!("{given}: {got:?}, expected {expect:?}"),
            }
        }
    }

    #[test]
    fn keys_defaults_overrides_and_errors_naming_the_field() {
        let keys = resolve("").unwrap().keys;
        assert_eq!(keys, KeysConfig::default());
        assert_eq!((keys.activation_delay, keys.jwks_max_age()), (300, 290));
        let keys = resolve(
            "[keys]\nactivation_delay_seconds = 0\ndefault_algorithm = \"EdDSA\"\nreload_interval_seconds = 2\nkey_encryption_key_file = \"/k\"\n",
        )
        .unwrap()
        .keys;
        assert_eq!(keys.activation_delay, 0);
        assert_eq!(keys.jwks_max_age(), 0);
        assert_eq!(keys.default_alg, Alg::EdDSA);
        assert_eq!(keys.algorithms, [Alg::ES256, Alg::RS256, Alg::EdDSA]);
        assert_eq!(keys.reload_interval, std::time::Duration::from_secs(2));
        assert_eq!(keys.key_encryption_key_file, Some(PathBuf::from("/k")));
        let long = resolve("[keys]\nactivation_delay_seconds = 86400\n")
            .unwrap()
            .keys;
        assert_eq!(long.jwks_max_age(), 300);
        for (text, expect) in [
            (
                "[keys]\nactivation_delay_seconds = -1\n",
                "grantbox.toml: keys.activation_delay_seconds: -1 is outside 0..=604800 seconds",
            ),
            (
                "[keys]\nreload_interval_seconds = 0\n",
                "grantbox.toml: keys.reload_interval_seconds: 0 is outside 1..=3600 seconds",
            ),
            (
                "[keys]\ndefault_algorithm = \"HS256\"\n",
                "grantbox.toml: keys.default_algorithm: unknown algorithm \"HS256\" (ES256, RS256, EdDSA)",
            ),
            (
                "[keys]\nalgorithms = [\"RS256\"]\n",
                "grantbox.toml: keys.algorithms: must include the default_algorithm ES256",
            ),
            (
                "[keys]\nalgorithms = [\"ES256\", \"EdDSA\"]\n",
                "grantbox.toml: keys.algorithms: must include RS256, the algorithm OpenID Connect ID tokens are always offered in",
            ),
        ] {
            assert_eq!(resolve(text).unwrap_err(), expect);
        }
        assert!(
            resolve("[keys]\nrotation = 1\n")
                .unwrap_err()
                .contains("unknown field `rotation`")
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert!(
            resolve("colour = 1")
                .unwrap_err()
                .contains("unknown field `colour`")
        );
        assert_eq!(
            resolve("[tokens]\naccess_token_lifetime = 0\n").unwrap_err(),
            "grantbox.toml: tokens.access_token_lifetime: 0 must be a positive number of seconds"
        );
        assert!(
            resolve("issuer = \"https://a/?q\"")
                .unwrap_err()
                .contains("issuer")
        );
        assert_eq!(
            resolve("admin_listen = \"0.0.0.0:8181\"").unwrap_err(),
            "grantbox.toml: admin_listen: \"0.0.0.0:8181\" is not a loopback address; the admin API has no built-in TLS, so set admin_behind_tls_proxy = true when a TLS proxy is the only way to reach it, or listen on loopback (127.0.0.1 or [::1])"
        );
        assert_eq!(
            resolve("admin_listen = \"0.0.0.0:8181\"\nadmin_behind_tls_proxy = true").unwrap_err(),
            "grantbox.toml: admin_host: required when admin_listen (\"0.0.0.0:8181\") is not a loopback address: the Host the TLS proxy forwards"
        );
        assert_eq!(
            resolve("admin_listen = \"0.0.0.0:8181\"\nadmin_behind_tls_proxy = true\nadmin_host = \"Admin.Example.com\"")
                .unwrap()
                .admin,
            Some(AdminListen {
                address: "0.0.0.0:8181".parse().unwrap(),
                host: Some("admin.example.com".into()),
                behind_tls_proxy: true,
            })
        );
        assert!(
            resolve("admin_host = \"evil.example/x\"")
                .unwrap_err()
                .contains("admin_host")
        );
        assert_eq!(
            resolve("admin_listen = \"[::1]:0\"")
                .unwrap()
                .admin
                .map(|a| a.address),
            Some("[::1]:0".parse().unwrap())
        );
        assert_eq!(
            resolve("watch_plugins = true").unwrap_err(),
            "grantbox.toml: watch_plugins: there is no plugin directory to watch; set plugins (or --plugins)"
        );
        assert!(
            resolve("watch_plugins = true\nplugins = \"/p\"")
                .unwrap()
                .watch_plugins
        );
        assert_eq!(
            resolve("[limits]\nheader_read_timeout_seconds = 0\n").unwrap_err(),
            "grantbox.toml: limits.header_read_timeout_seconds: 0 is outside 1..=3600 seconds"
        );
        assert_eq!(
            resolve("[limits]\nmax_connections = 0\n").unwrap_err(),
            "grantbox.toml: limits.max_connections: 0 is outside 1..=1000000"
        );
        assert!(
            resolve("[plugin_limits]\nallowed_capabilities = [\"net\"]\n")
                .unwrap_err()
                .contains("allowed_capabilities")
        );
    }

    #[test]
    fn login_throttle_is_checked() {
        assert_eq!(resolve("").unwrap().login_limits, LoginLimits::default());
        let config =
            resolve("[login_throttle]\nfree_failures = 3\nwait_increment_seconds = 2\n").unwrap();
        assert_eq!(config.login_limits.free_failures, 3);
        assert_eq!(config.login_limits.wait_increment_seconds, 2);
        assert_eq!(
            resolve("[login_throttle]\naddress_failures = 0\n").unwrap_err(),
            "grantbox.toml: login_throttle.address_failures: 0 must be at least 1"
        );
        assert_eq!(
            resolve("[login_throttle]\nmax_wait_seconds = 30\nwait_increment_seconds = 60\n")
                .unwrap_err(),
            "grantbox.toml: login_throttle.max_wait_seconds: 30 is less than wait_increment_seconds (60)"
        );
        assert_eq!(
            resolve("[login_throttle]\nfailure_reset_seconds = 60\n").unwrap_err(),
            "grantbox.toml: login_throttle.failure_reset_seconds: 60 is less than max_wait_seconds (900)"
        );
        assert!(
            resolve("[login_throttle]\nlockout = true\n")
                .unwrap_err()
                .contains("lockout")
        );
    }
}
