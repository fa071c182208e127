//! `plugin.toml`, parsed in two stages: a raw serde layer that refuses unknown
//! keys, then a validated [`Manifest`]. Every error names the file and the field.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Capability;

/// The interface version this host implements (the WIT package of `plugin-sdk/wit`).
pub const HOST_INTERFACE: InterfaceVersion = InterfaceVersion {
    major: 1,
    minor: 4,
    patch: 0,
};
/// The WIT package name plugins are built against.
pub const INTERFACE_PACKAGE: &str = "grantbox:plugin";

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Where it came from: a file path, or `bundled:<name>` for embedded plugins.
    pub source: String,
    pub name: String,
    pub version: String,
    pub description: String,
    pub interface: InterfaceVersion,
    pub capabilities: BTreeSet<Capability>,
    pub wasm_file: String,
    /// Lowercase hex SHA-256 of the `.wasm`.
    pub wasm_sha256: String,
    /// Each `response_type` as its sorted, space-joined words.
    pub response_types: Vec<String>,
    pub grant_types: Vec<String>,
    /// Token-endpoint parameters of this plugin's grant types that may repeat
    /// (e.g. RFC 8693 `audience` and `resource`); every other one may not.
    pub repeatable_parameters: Vec<String>,
    /// The plugin's own `POST` endpoints (`[[provides.endpoints]]`, since 1.3.0).
    pub endpoints: Vec<EndpointDecl>,
    /// The plugin's user code steps (`[[provides.user_steps]]`, since 1.3.0).
    pub user_steps: Vec<UserStepDecl>,
    pub memory_bytes: usize,
    /// Guest work a call may do, in milliseconds of a reference core's time
    /// (counted in fuel, so waiting for a core does not count).
    pub timeout_ms: u64,
    /// Host calls (every capability function) one call may make.
    pub host_calls: u32,
    /// Wall-clock time one call may spend inside host calls.
    pub host_time_ms: u64,
    /// Live keys the plugin's key-value namespace may hold.
    pub key_value_keys: u64,
    /// Bytes of keys and values the plugin's key-value namespace may hold.
    pub key_value_bytes: u64,
    /// Bytes of keys and values one call may write to the key-value store.
    pub key_value_write_bytes: u64,
    /// The `[config]` table as JSON, handed to the plugin unchanged.
    pub config: serde_json::Map<String, serde_json::Value>,
}

/// A plugin endpoint: a `POST` path of the host the plugin answers (through
/// the WIT `endpoint` export), e.g. RFC 8628's device authorization endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointDecl {
    /// Starts with `/`, e.g. `/device_authorization`.
    pub path: String,
    /// Whether the host authenticates the client as at the token endpoint
    /// (default true); when false the plugin gets no client.
    pub authenticate_client: bool,
    /// The RFC 8414 metadata key that advertises the issuer followed by the path.
    pub metadata: Option<String>,
}

/// A user code step: a page of the host at `path` where a signed-in user
/// enters a code the plugin resolves (through the WIT `user-step` export).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserStepDecl {
    /// Starts with `/`, e.g. `/device`.
    pub path: String,
}

/// The interface that introduced plugin endpoints and user steps.
pub const ENDPOINTS_SINCE: InterfaceVersion = InterfaceVersion {
    major: 1,
    minor: 3,
    patch: 0,
};

/// Paths the host routes itself; a plugin path may not be one of them.
/// Entries ending in `/` are prefixes: the path itself without the slash and
/// everything below it.
pub const HOST_PATHS: [&str; 17] = [
    "/authorize/",
    "/token",
    "/introspect",
    "/revoke",
    "/login",
    "/logout",
    "/jwks",
    "/healthz",
    "/static/",
    "/favicon.ico",
    "/.well-known/",
    "/admin/",
    "/metrics",
    "/register/",
    "/userinfo",
    "/end_session/",
    "/par",
];

/// RFC 8414 §2 and OpenID Connect Discovery 1.0 §3 metadata keys the host
/// writes itself (`endpoint/metadata.rs` checks this list against its
/// document); a plugin endpoint may not claim one.
pub const HOST_METADATA_KEYS: [&str; 36] = [
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "introspection_endpoint",
    "revocation_endpoint",
    "jwks_uri",
    "grant_types_supported",
    "response_types_supported",
    "response_modes_supported",
    "code_challenge_methods_supported",
    "token_endpoint_auth_methods_supported",
    "introspection_endpoint_auth_methods_supported",
    "revocation_endpoint_auth_methods_supported",
    "token_endpoint_auth_signing_alg_values_supported",
    "introspection_endpoint_auth_signing_alg_values_supported",
    "revocation_endpoint_auth_signing_alg_values_supported",
    "scopes_supported",
    "authorization_response_iss_parameter_supported",
    "registration_endpoint",
    "userinfo_endpoint",
    "end_session_endpoint",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "claims_supported",
    "acr_values_supported",
    "prompt_values_supported",
    "claims_parameter_supported",
    "request_parameter_supported",
    "request_uri_parameter_supported",
    "pushed_authorization_request_endpoint",
    "require_pushed_authorization_requests",
    // Discovery §3 keys this server does not write, refused all the same:
    // a plugin saying the server signs UserInfo or supports request
    // objects would be believed by relying parties.
    "userinfo_signing_alg_values_supported",
    "request_object_signing_alg_values_supported",
    "claim_types_supported",
    "id_token_encryption_alg_values_supported",
    "dpop_signing_alg_values_supported",
];

/// Whether a plugin path is one the host routes itself (see [`HOST_PATHS`]).
pub fn is_host_path(path: &str) -> bool {
    HOST_PATHS.iter().any(|host| match host.strip_suffix('/') {
        Some(prefix) => path == prefix || path.starts_with(host),
        None => path == *host,
    })
}

/// Whether `path` is a plugin path: `/`, then segments of `[a-z0-9_-]`
/// separated by single slashes, no trailing slash.
pub fn is_plugin_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    !rest.is_empty()
        && rest.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
}

/// `major.minor.patch` of the `grantbox:plugin` WIT package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct InterfaceVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl InterfaceVersion {
    /// Reads `grantbox:plugin@1.0.0` (the package prefix is optional).
    pub fn parse(text: &str) -> Option<Self> {
        let version = match text.split_once('@') {
            Some((package, version)) if package == INTERFACE_PACKAGE => version,
            Some(_) => return None,
            None => text,
        };
        let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next().unwrap_or(Some(0))?;
        let patch = parts.next().unwrap_or(Some(0))?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            major,
            minor,
            patch,
        })
    }

    /// A plugin built against `self` links on a host that implements `host`
    /// when the majors agree and the host is at least as new (minors only add).
    pub fn runs_on(self, host: InterfaceVersion) -> bool {
        self.major == host.major && (self.minor, self.patch) <= (host.minor, host.patch)
    }
}

impl fmt::Display for InterfaceVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{INTERFACE_PACKAGE}@{}.{}.{}",
            self.major, self.minor, self.patch
        )
    }
}

/// A manifest that could not be read; names the file and the field.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {field}: {message}")]
pub struct ManifestError {
    pub source_name: String,
    pub field: String,
    pub message: String,
}

/// Host-side ceilings on what a manifest may ask for.
#[derive(Debug, Clone, Copy)]
pub struct LimitCaps {
    pub max_memory_bytes: usize,
    pub max_timeout_ms: u64,
    pub max_host_calls: u32,
    pub max_host_time_ms: u64,
    pub max_key_value_keys: u64,
    pub max_key_value_bytes: u64,
    pub max_key_value_write_bytes: u64,
}

impl LimitCaps {
    /// The caps of a server whose operator set none (`[plugin_limits]`).
    pub const DEFAULT: LimitCaps = LimitCaps {
        max_memory_bytes: 64 << 20,
        max_timeout_ms: 5_000,
        max_host_calls: 1_024,
        max_host_time_ms: 10_000,
        max_key_value_keys: 100_000,
        max_key_value_bytes: 64 << 20,
        max_key_value_write_bytes: 1 << 20,
    };
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    plugin: RawPlugin,
    wasm: RawWasm,
    provides: RawProvides,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    config: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: String,
    version: String,
    #[serde(default)]
    description: String,
    interface: String,
    #[serde(default)]
    capabilities: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWasm {
    file: String,
    sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvides {
    #[serde(default)]
    response_types: Vec<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    repeatable_parameters: Vec<String>,
    #[serde(default)]
    endpoints: Vec<RawEndpoint>,
    #[serde(default)]
    user_steps: Vec<RawUserStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    path: String,
    #[serde(default = "default_true")]
    authenticate_client: bool,
    metadata: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUserStep {
    path: String,
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory_mib: Option<u64>,
    timeout_ms: Option<u64>,
    host_calls: Option<u32>,
    host_time_ms: Option<u64>,
    key_value_keys: Option<u64>,
    key_value_kib: Option<u64>,
    key_value_write_kib: Option<u64>,
}

/// Token-endpoint parameters the host itself reads (RFC 6749 §3.2, §2.3.1);
/// they never repeat, whatever a manifest says.
const HOST_READ_PARAMETERS: [&str; 4] = ["grant_type", "scope", "client_id", "client_secret"];

const DEFAULT_MEMORY_MIB: u64 = 16;
const DEFAULT_TIMEOUT_MS: u64 = 100;
/// Defaults of the limits added after 1.0: generous for every bundled grant
/// (which makes at most a handful of host calls and no key-value writes),
/// and lowered to the operator's cap when that is lower, so that a manifest
/// without them always loads.
const DEFAULT_HOST_CALLS: u32 = 64;
const DEFAULT_HOST_TIME_MS: u64 = 1_000;
const DEFAULT_KEY_VALUE_KEYS: u64 = 1_000;
const DEFAULT_KEY_VALUE_KIB: u64 = 1_024;
const DEFAULT_KEY_VALUE_WRITE_KIB: u64 = 256;

impl Manifest {
    /// Reads `plugin.toml` from a file.
    pub fn load(path: &Path, caps: LimitCaps) -> Result<Self, ManifestError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
            source_name: source.clone(),
            field: "(file)".into(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &source, caps)
    }

    /// Parses and validates manifest text; `source` names it in errors.
    pub fn parse(text: &str, source: &str, caps: LimitCaps) -> Result<Self, ManifestError> {
        let error = |field: &str, message: String| ManifestError {
            source_name: source.to_owned(),
            field: field.to_owned(),
            message,
        };
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start].lines().count().max(1))
                .map(|line| format!("line {line}"))
                .unwrap_or_else(|| "(toml)".into());
            error(&line, e.message().to_owned())
        })?;

        let name = raw.plugin.name;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(error(
                "plugin.name",
                format!("{name:?} must be lowercase letters, digits, - or _"),
            ));
        }
        let interface = InterfaceVersion::parse(&raw.plugin.interface).ok_or_else(|| {
            error(
                "plugin.interface",
                format!(
                    "{:?} is not of the form {INTERFACE_PACKAGE}@MAJOR.MINOR.PATCH",
                    raw.plugin.interface
                ),
            )
        })?;
        if !interface.runs_on(HOST_INTERFACE) {
            return Err(error(
                "plugin.interface",
                format!("the plugin needs {interface} but this host implements {HOST_INTERFACE}"),
            ));
        }
        let mut capabilities = BTreeSet::new();
        for name in &raw.plugin.capabilities {
            let capability = Capability::parse(name).ok_or_else(|| {
                error(
                    "plugin.capabilities",
                    format!(
                        "unknown capability {name:?} (known: {})",
                        Capability::ALL_NAMES.join(", ")
                    ),
                )
            })?;
            if !capability.since().runs_on(interface) {
                return Err(error(
                    "plugin.capabilities",
                    format!(
                        "capability {name:?} needs {} but the manifest names {interface}",
                        capability.since()
                    ),
                ));
            }
            capabilities.insert(capability);
        }
        if !is_plain_file_name(&raw.wasm.file) {
            return Err(error(
                "wasm.file",
                format!("{:?} must be a file name beside plugin.toml", raw.wasm.file),
            ));
        }
        let wasm_sha256 = raw
            .wasm
            .sha256
            .ok_or_else(|| error("wasm.sha256", "is missing".into()))?
            .to_ascii_lowercase();
        if wasm_sha256.len() != 64 || !wasm_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(error("wasm.sha256", "must be 64 hex digits".into()));
        }
        let mut response_types = Vec::new();
        for response_type in &raw.provides.response_types {
            let normalized = normalize_response_type(response_type).ok_or_else(|| {
                error(
                    "provides.response_types",
                    format!("{response_type:?} is not a response type"),
                )
            })?;
            response_types.push(normalized);
        }
        for grant_type in &raw.provides.grant_types {
            if grant_type.is_empty() || grant_type.contains(char::is_whitespace) {
                return Err(error(
                    "provides.grant_types",
                    format!("{grant_type:?} is not a grant type"),
                ));
            }
        }
        for parameter in &raw.provides.repeatable_parameters {
            if HOST_READ_PARAMETERS.contains(&parameter.as_str()) {
                return Err(error(
                    "provides.repeatable_parameters",
                    format!("{parameter:?} is read by the host and must not repeat"),
                ));
            }
            if parameter.is_empty() {
                return Err(error(
                    "provides.repeatable_parameters",
                    "an empty name is not a parameter".into(),
                ));
            }
        }
        if !raw.provides.repeatable_parameters.is_empty() && raw.provides.grant_types.is_empty() {
            return Err(error(
                "provides.repeatable_parameters",
                "only token-endpoint grant types take repeatable parameters".into(),
            ));
        }
        if response_types.is_empty() && raw.provides.grant_types.is_empty() {
            return Err(error(
                "provides",
                "the plugin provides neither a response type nor a grant type".into(),
            ));
        }
        let (endpoints, user_steps) = validate_paths(&raw.provides, interface, &error)?;
        let memory_mib = raw.limits.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB);
        let memory_bytes =
            usize::try_from(memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        if memory_mib == 0 || memory_bytes > caps.max_memory_bytes {
            return Err(error(
                "limits.memory_mib",
                format!(
                    "{memory_mib} is outside 1..={} (the host's cap)",
                    caps.max_memory_bytes >> 20
                ),
            ));
        }
        let timeout_ms = raw.limits.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if timeout_ms == 0 || timeout_ms > caps.max_timeout_ms {
            return Err(error(
                "limits.timeout_ms",
                format!(
                    "{timeout_ms} is outside 1..={} (the host's cap)",
                    caps.max_timeout_ms
                ),
            ));
        }
        // A limit the manifest sets must lie in 1..=cap; an absent one is the
        // default, lowered to the cap. Returns it times `unit`.
        let bounded =
            |field: &str, asked: Option<u64>, default: u64, cap: u64, unit: u64| match asked {
                None => Ok(default.min(cap).max(1).saturating_mul(unit)),
                Some(value) if (1..=cap).contains(&value) => Ok(value.saturating_mul(unit)),
                Some(value) => Err(error(
                    field,
                    format!("{value} is outside 1..={cap} (the host's cap)"),
                )),
            };
        let host_calls = bounded(
            "limits.host_calls",
            raw.limits.host_calls.map(u64::from),
            u64::from(DEFAULT_HOST_CALLS),
            u64::from(caps.max_host_calls),
            1,
        )? as u32;
        let host_time_ms = bounded(
            "limits.host_time_ms",
            raw.limits.host_time_ms,
            DEFAULT_HOST_TIME_MS,
            caps.max_host_time_ms,
            1,
        )?;
        let key_value_keys = bounded(
            "limits.key_value_keys",
            raw.limits.key_value_keys,
            DEFAULT_KEY_VALUE_KEYS,
            caps.max_key_value_keys,
            1,
        )?;
        let key_value_bytes = bounded(
            "limits.key_value_kib",
            raw.limits.key_value_kib,
            DEFAULT_KEY_VALUE_KIB,
            caps.max_key_value_bytes >> 10,
            1 << 10,
        )?;
        let key_value_write_bytes = bounded(
            "limits.key_value_write_kib",
            raw.limits.key_value_write_kib,
            DEFAULT_KEY_VALUE_WRITE_KIB,
            caps.max_key_value_write_bytes >> 10,
            1 << 10,
        )?;
        let config = serde_json::to_value(&raw.config)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .ok_or_else(|| error("config", "cannot be represented as JSON".into()))?;

        Ok(Self {
            source: source.to_owned(),
            name,
            version: raw.plugin.version,
            description: raw.plugin.description,
            interface,
            capabilities,
            wasm_file: raw.wasm.file,
            wasm_sha256,
            response_types,
            grant_types: raw.provides.grant_types,
            repeatable_parameters: raw.provides.repeatable_parameters,
            endpoints,
            user_steps,
            memory_bytes,
            timeout_ms,
            host_calls,
            host_time_ms,
            key_value_keys,
            key_value_bytes,
            key_value_write_bytes,
            config,
        })
    }

    /// The manifest's directory for a file source, where the `.wasm` lives.
    pub fn wasm_path(&self, manifest_path: &Path) -> PathBuf {
        manifest_path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(&self.wasm_file)
    }
}

/// Checks `[[provides.endpoints]]` and `[[provides.user_steps]]`: the
/// interface that has them, path syntax, no host path, no path twice, and
/// metadata keys of RFC 8414's form that the host does not write itself.
fn validate_paths(
    provides: &RawProvides,
    interface: InterfaceVersion,
    error: &dyn Fn(&str, String) -> ManifestError,
) -> Result<(Vec<EndpointDecl>, Vec<UserStepDecl>), ManifestError> {
    let declared = [
        ("provides.endpoints", !provides.endpoints.is_empty()),
        ("provides.user_steps", !provides.user_steps.is_empty()),
    ];
    for (field, present) in declared {
        if present && !ENDPOINTS_SINCE.runs_on(interface) {
            return Err(error(
                field,
                format!("needs {ENDPOINTS_SINCE} but the manifest names {interface}"),
            ));
        }
    }
    let paths = provides
        .endpoints
        .iter()
        .map(|e| ("provides.endpoints", &e.path))
        .chain(
            provides
                .user_steps
                .iter()
                .map(|s| ("provides.user_steps", &s.path)),
        );
    let mut seen = BTreeSet::new();
    for (field, path) in paths {
        if !is_plugin_path(path) {
            return Err(error(
                field,
                format!(
                    "path {path:?} must be \"/\" and segments of a-z, 0-9, _ or - separated by \"/\""
                ),
            ));
        }
        if is_host_path(path) {
            return Err(error(
                field,
                format!("path {path:?} is a path the host routes itself"),
            ));
        }
        if !seen.insert(path.as_str()) {
            return Err(error(field, format!("path {path:?} is declared twice")));
        }
    }
    let mut keys = BTreeSet::new();
    for endpoint in &provides.endpoints {
        let Some(key) = &endpoint.metadata else {
            continue;
        };
        let well_formed = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_formed {
            return Err(error(
                "provides.endpoints",
                format!("metadata {key:?} must be lowercase letters, digits or _"),
            ));
        }
        if HOST_METADATA_KEYS.contains(&key.as_str()) {
            return Err(error(
                "provides.endpoints",
                format!("metadata {key:?} is a key the host writes itself"),
            ));
        }
        if !keys.insert(key.as_str()) {
            return Err(error(
                "provides.endpoints",
                format!("metadata {key:?} is declared twice"),
            ));
        }
    }
    let endpoints = provides
        .endpoints
        .iter()
        .map(|e| EndpointDecl {
            path: e.path.clone(),
            authenticate_client: e.authenticate_client,
            metadata: e.metadata.clone(),
        })
        .collect();
    let user_steps = provides
        .user_steps
        .iter()
        .map(|s| UserStepDecl {
            path: s.path.clone(),
        })
        .collect();
    Ok((endpoints, user_steps))
}

/// Whether `[wasm] file` names a file beside `plugin.toml`: no directory,
/// no leading dot.
pub fn is_plain_file_name(file: &str) -> bool {
    !file.is_empty() && !file.contains(['/', '\\']) && !file.starts_with('.')
}

/// A `response_type` as a set of words (OAuth 2.0 Multiple Response Types §3):
/// sorted and joined by one space so `"token code"` equals `"code token"`.
pub fn normalize_response_type(value: &str) -> Option<String> {
    let mut words: Vec<&str> = value.split(' ').collect();
    if words
        .iter()
        .any(|w| w.is_empty() || !w.bytes().all(|b| b.is_ascii_graphic()))
    {
        return None;
    }
    words.sort_unstable();
    words.dedup();
    Some(words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: LimitCaps = LimitCaps {
        max_memory_bytes: 64 << 20,
        max_timeout_ms: 1000,
        ..LimitCaps::DEFAULT
    };

    fn manifest(extra: &str) -> String {
        format!(
            r#"
[plugin]
name = "grant-x"
version = "0.1.0"
interface = "grantbox:plugin@1.0.0"
capabilities = ["tokens"]
{extra}
[wasm]
file = "grant_x.wasm"
sha256 = "{}"

[provides]
grant_types = ["urn:x"]
"#,
            "a".repeat(64)
        )
    }

    fn error_of(text: &str) -> String {
        Manifest::parse(text, "dir/plugin.toml", CAPS)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_a_valid_manifest() {
        let m = Manifest::parse(&manifest(""), "p", CAPS).unwrap();
        assert_eq!(m.name, "grant-x");
        assert_eq!(m.grant_types, vec!["urn:x"]);
        assert_eq!(m.memory_bytes, 16 << 20);
        assert!(m.capabilities.contains(&Capability::Tokens));
    }

    #[test]
    fn errors_name_file_and_field() {
        let unknown = error_of(&manifest("colour = \"red\""));
        assert!(unknown.starts_with("dir/plugin.toml: line "), "{unknown}");
        assert!(unknown.contains("unknown field `colour`"), "{unknown}");

        let newer = error_of(&manifest("").replace("@1.0.0", "@1.5.0"));
        assert!(newer.contains("plugin.interface"), "{newer}");
        assert!(
            newer.contains("grantbox:plugin@1.5.0") && newer.contains(&HOST_INTERFACE.to_string()),
            "{newer}"
        );

        let major = error_of(&manifest("").replace("@1.0.0", "@2.0.0"));
        assert!(major.contains("plugin.interface"), "{major}");

        let capability = error_of(&manifest("").replace("[\"tokens\"]", "[\"network\"]"));
        assert!(capability.contains("plugin.capabilities"), "{capability}");

        let hash = error_of(&manifest("").replace(&"a".repeat(64), "abc"));
        assert!(hash.contains("wasm.sha256"), "{hash}");

        let memory = error_of(&format!("{}\n[limits]\nmemory_mib = 4096\n", manifest("")));
        assert!(memory.contains("limits.memory_mib"), "{memory}");
    }

    #[test]
    fn budgets_and_quotas_default_and_stay_under_the_caps() {
        let m = Manifest::parse(&manifest(""), "p", CAPS).unwrap();
        assert_eq!(
            (
                m.host_calls,
                m.host_time_ms,
                m.key_value_keys,
                m.key_value_bytes,
                m.key_value_write_bytes
            ),
            (64, 1000, 1000, 1 << 20, 256 << 10)
        );
        let limits = "\n[limits]\nhost_calls = 8\nhost_time_ms = 50\nkey_value_keys = 10\nkey_value_kib = 4\nkey_value_write_kib = 2\n";
        let m = Manifest::parse(&format!("{}{limits}", manifest("")), "p", CAPS).unwrap();
        assert_eq!(
            (
                m.host_calls,
                m.host_time_ms,
                m.key_value_keys,
                m.key_value_bytes,
                m.key_value_write_bytes
            ),
            (8, 50, 10, 4 << 10, 2 << 10)
        );
        // Over the operator's cap: refused, naming the field.
        let over = error_of(&format!("{}\n[limits]\nhost_calls = 2000\n", manifest("")));
        assert!(over.contains("limits.host_calls"), "{over}");
        let over = error_of(&format!("{}\n[limits]\nkey_value_kib = 0\n", manifest("")));
        assert!(over.contains("limits.key_value_kib"), "{over}");
        // A default above a lowered cap is lowered, so old manifests load.
        let low = LimitCaps {
            max_host_calls: 4,
            max_key_value_write_bytes: 1 << 10,
            ..CAPS
        };
        let m = Manifest::parse(&manifest(""), "p", low).unwrap();
        assert_eq!((m.host_calls, m.key_value_write_bytes), (4, 1 << 10));
    }

    #[test]
    fn a_capability_needs_the_interface_that_introduced_it() {
        let old = error_of(&manifest("").replace("[\"tokens\"]", "[\"token-exchange\"]"));
        assert!(old.contains("plugin.capabilities"), "{old}");
        assert!(
            old.contains("grantbox:plugin@1.1.0") && old.contains("grantbox:plugin@1.0.0"),
            "{old}"
        );
        let text = manifest("")
            .replace("@1.0.0", "@1.1.0")
            .replace("[\"tokens\"]", "[\"token-exchange\"]");
        let m = Manifest::parse(&text, "p", CAPS).unwrap();
        assert!(m.capabilities.contains(&Capability::TokenExchange));

        let older = error_of(
            &manifest("")
                .replace("@1.0.0", "@1.1.0")
                .replace("[\"tokens\"]", "[\"signing\"]"),
        );
        assert!(older.contains("plugin.capabilities"), "{older}");
        assert!(
            older.contains("grantbox:plugin@1.2.0") && older.contains("grantbox:plugin@1.1.0"),
            "{older}"
        );
        let text = manifest("")
            .replace("@1.0.0", "@1.2.0")
            .replace("[\"tokens\"]", "[\"signing\"]");
        let m = Manifest::parse(&text, "p", CAPS).unwrap();
        assert!(m.capabilities.contains(&Capability::Signing));

        let before_openid = error_of(
            &manifest("")
                .replace("@1.0.0", "@1.3.0")
                .replace("[\"tokens\"]", "[\"openid\"]"),
        );
        assert!(
            before_openid.contains("plugin.capabilities")
                && before_openid.contains("grantbox:plugin@1.4.0"),
            "{before_openid}"
        );
        let text = manifest("")
            .replace("@1.0.0", "@1.4.0")
            .replace("[\"tokens\"]", "[\"openid\"]");
        let m = Manifest::parse(&text, "p", CAPS).unwrap();
        assert!(m.capabilities.contains(&Capability::Openid));
    }

    #[test]
    fn repeatable_parameters_are_the_plugins_own() {
        let with = |list: &str| format!("{}repeatable_parameters = [{list}]\n", manifest(""));
        let m = Manifest::parse(&with("\"audience\", \"resource\""), "p", CAPS).unwrap();
        assert_eq!(m.repeatable_parameters, vec!["audience", "resource"]);
        assert!(
            Manifest::parse(&manifest(""), "p", CAPS)
                .unwrap()
                .repeatable_parameters
                .is_empty()
        );
        for host_read in ["grant_type", "scope", "client_id", "client_secret"] {
            let error = error_of(&with(&format!("\"{host_read}\"")));
            assert!(error.contains("provides.repeatable_parameters"), "{error}");
            assert!(error.contains(host_read), "{error}");
        }
    }

    fn with_paths(interface: &str, tables: &str) -> String {
        format!("{}{tables}", manifest("").replace("@1.0.0", interface))
    }

    #[test]
    fn endpoints_and_user_steps_are_read() {
        let text = with_paths(
            "@1.3.0",
            r#"
[[provides.endpoints]]
path = "/device_authorization"
metadata = "device_authorization_endpoint"

[[provides.endpoints]]
path = "/x/open-door"
authenticate_client = false

[[provides.user_steps]]
path = "/device"
"#,
        );
        let m = Manifest::parse(&text, "p", CAPS).unwrap();
        assert_eq!(
            m.endpoints,
            vec![
                EndpointDecl {
                    path: "/device_authorization".into(),
                    authenticate_client: true,
                    metadata: Some("device_authorization_endpoint".into()),
                },
                EndpointDecl {
                    path: "/x/open-door".into(),
                    authenticate_client: false,
                    metadata: None,
                },
            ]
        );
        assert_eq!(
            m.user_steps,
            vec![UserStepDecl {
                path: "/device".into()
            }]
        );
        let plain = Manifest::parse(&manifest(""), "p", CAPS).unwrap();
        assert!(plain.endpoints.is_empty() && plain.user_steps.is_empty());
    }

    #[test]
    fn endpoints_and_user_steps_are_checked() {
        let endpoint = |path: &str, extra: &str| {
            with_paths(
                "@1.3.0",
                &format!("\n[[provides.endpoints]]\npath = \"{path}\"\n{extra}\n"),
            )
        };
        let step = |path: &str| {
            with_paths(
                "@1.3.0",
                &format!("\n[[provides.user_steps]]\npath = \"{path}\"\n"),
            )
        };
        // (manifest, field, words the message must hold)
        let cases = [
            (
                with_paths("@1.2.0", "\n[[provides.endpoints]]\npath = \"/e\"\n"),
                "provides.endpoints",
                "grantbox:plugin@1.3.0",
            ),
            (
                with_paths("@1.2.0", "\n[[provides.user_steps]]\npath = \"/s\"\n"),
                "provides.user_steps",
                "grantbox:plugin@1.2.0",
            ),
            (endpoint("device", ""), "provides.endpoints", "\"device\""),
            (endpoint("/", ""), "provides.endpoints", "\"/\""),
            (endpoint("/a//b", ""), "provides.endpoints", "/a//b"),
            (endpoint("/a/", ""), "provides.endpoints", "/a/"),
            (endpoint("/Device", ""), "provides.endpoints", "/Device"),
            (endpoint("/a/../b", ""), "provides.endpoints", "/a/../b"),
            (endpoint("/a?b", ""), "provides.endpoints", "/a?b"),
            (step("/x y"), "provides.user_steps", "/x y"),
            (endpoint("/token", ""), "provides.endpoints", "host routes"),
            (step("/login"), "provides.user_steps", "host routes"),
            (
                endpoint("/authorize", ""),
                "provides.endpoints",
                "host routes",
            ),
            (
                endpoint("/authorize/device", ""),
                "provides.endpoints",
                "host routes",
            ),
            (step("/admin/plugins"), "provides.user_steps", "host routes"),
            (
                endpoint("/metrics", ""),
                "provides.endpoints",
                "host routes",
            ),
            (
                endpoint("/static/x", ""),
                "provides.endpoints",
                "host routes",
            ),
            (
                endpoint("/e", "metadata = \"Bad-Key\""),
                "provides.endpoints",
                "Bad-Key",
            ),
            (
                endpoint("/e", "metadata = \"\""),
                "provides.endpoints",
                "metadata",
            ),
            (
                endpoint("/e", "metadata = \"token_endpoint\""),
                "provides.endpoints",
                "host writes itself",
            ),
            (
                endpoint("/e", "method = \"GET\""),
                "line",
                "unknown field `method`",
            ),
            (
                with_paths(
                    "@1.3.0",
                    "\n[[provides.endpoints]]\npath = \"/e\"\n[[provides.user_steps]]\npath = \"/e\"\n",
                ),
                "provides.user_steps",
                "declared twice",
            ),
            (
                with_paths(
                    "@1.3.0",
                    "\n[[provides.endpoints]]\npath = \"/e\"\nmetadata = \"k\"\n[[provides.endpoints]]\npath = \"/f\"\nmetadata = \"k\"\n",
                ),
                "provides.endpoints",
                "declared twice",
            ),
        ];
        for (text, field, words) in cases {
            let error = error_of(&text);
            assert!(
                error.starts_with("dir/plugin.toml: ") && error.contains(field),
                "{error}"
            );
            assert!(error.contains(words), "{words}: {error}");
        }
        // A path that merely begins like a host path is the plugin's.
        for path in [
            "/tokens",
            "/authorized",
            "/device_authorization",
            "/a-b/c_d/9",
        ] {
            Manifest::parse(&endpoint(path, ""), "p", CAPS).unwrap();
        }
    }

    #[test]
    fn older_minor_interfaces_run_on_this_host() {
        let v = |s| InterfaceVersion::parse(s).unwrap();
        assert!(v("1.0.0").runs_on(v("1.2.0")));
        assert!(!v("1.3.0").runs_on(v("1.2.0")));
        assert!(!v("2.0.0").runs_on(v("1.2.0")));
        assert!(InterfaceVersion::parse("other:pkg@1.0.0").is_none());
    }

    #[test]
    fn response_types_are_sets_of_words() {
        assert_eq!(
            normalize_response_type("token code").as_deref(),
            Some("code token")
        );
        assert_eq!(normalize_response_type("code  token"), None);
    }
}
