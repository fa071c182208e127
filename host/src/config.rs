//! Configuration: a TOML file read in two stages (raw with
//! `deny_unknown_fields`, then validated), overridden by flags and
//! `GRANTBOX_*` environment variables. Handlers only see [`ServeConfig`].

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::plugin::{Capability, LimitCaps, RuntimeConfig, TokenLifetimes};

/// The default database: a SQLite file in the working directory.
pub const DEFAULT_DB: &str = "sqlite://grantbox.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Where the admin endpoint (`POST /admin/plugins/reload`) listens: loopback only.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8181";

/// The config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<String>,
    /// The admin listener's address; it must be a loopback address.
    pub admin_listen: Option<String>,
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
    // `[limits]` may ask for (SECURITY.md, "Plugin quotas and deadlines").
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
    /// The admin listener, on loopback.
    pub admin_listen: SocketAddr,
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
        let admin_listen = admin_listen(flags.admin_listen.or(raw.admin_listen))
            .map_err(|message| error("admin_listen", message))?;
        let issuer = match flags.issuer.or(raw.issuer) {
            Some(issuer) => {
                let parsed = url::Url::parse(&issuer)
                    .map_err(|e| error("issuer", format!("{issuer:?}: {e}")))?;
                // RFC 8414 §2: a URL with no query or fragment (https, or http for development).
                if parsed.query().is_some()
                    || parsed.fragment().is_some()
                    || !matches!(parsed.scheme(), "https" | "http")
                {
                    return Err(error(
                        "issuer",
                        format!("{issuer:?} must be an http(s) URL without query or fragment"),
                    ));
                }
                Some(issuer.trim_end_matches('/').to_owned())
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
            admin_listen,
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
        })
    }
}

/// The admin listener's address, [`DEFAULT_ADMIN_LISTEN`] when unset. Only a
/// loopback address is accepted: the admin endpoint has no authentication,
/// so only processes on this machine may reach it.
pub fn admin_listen(text: Option<String>) -> Result<SocketAddr, String> {
    let text = text.unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.into());
    let address: SocketAddr = text
        .parse()
        .map_err(|_| format!("{text:?} is not an address like {DEFAULT_ADMIN_LISTEN}"))?;
    if !address.ip().is_loopback() {
        return Err(format!(
            "{text:?} is not a loopback address; the admin endpoint has no authentication and listens only on loopback (127.0.0.1 or [::1])"
        ));
    }
    Ok(address)
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
    fn defaults_and_overrides() {
        let config = resolve("").unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.admin_listen.to_string(), DEFAULT_ADMIN_LISTEN);
        assert_eq!(config.issuer, None);
        assert_eq!(config.lifetimes.access_token, 3600);
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
            "grantbox.toml: admin_listen: \"0.0.0.0:8181\" is not a loopback address; the admin endpoint has no authentication and listens only on loopback (127.0.0.1 or [::1])"
        );
        assert_eq!(
            resolve("admin_listen = \"[::1]:0\"").unwrap().admin_listen,
            "[::1]:0".parse().unwrap()
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
        assert!(
            resolve("[plugin_limits]\nallowed_capabilities = [\"net\"]\n")
                .unwrap_err()
                .contains("allowed_capabilities")
        );
    }
}
