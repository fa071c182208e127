//! `Manifest::parse` on arbitrary text: never panics; every error names the
//! source and a field (or, for TOML syntax and unknown keys, a line that
//! exists); every accepted manifest satisfies the checks the parser
//! promises. `InterfaceVersion::parse` and `normalize_response_type` run on
//! the same text.

#![no_main]

use grantbox_protocol::plugin::manifest::{
    ENDPOINTS_SINCE, HOST_INTERFACE, HOST_METADATA_KEYS, InterfaceVersion, LimitCaps, Manifest,
    is_host_path, is_plugin_path, normalize_response_type,
};
use libfuzzer_sys::fuzz_target;

const SOURCE: &str = "fuzz/plugin.toml";
const CAPS: LimitCaps = LimitCaps {
    max_memory_bytes: 64 << 20,
    max_timeout_ms: 5000,
    ..LimitCaps::DEFAULT
};
const FIELDS: &[&str] = &[
    "plugin.name",
    "plugin.interface",
    "plugin.capabilities",
    "wasm.file",
    "wasm.sha256",
    "provides",
    "provides.response_types",
    "provides.grant_types",
    "provides.repeatable_parameters",
    "provides.endpoints",
    "provides.user_steps",
    "limits.memory_mib",
    "limits.timeout_ms",
    "config",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Manifest::parse(text, SOURCE, CAPS) {
        Err(error) => {
            assert_eq!(error.source_name, SOURCE);
            assert!(!error.message.is_empty(), "{error}");
            let field = error.field.as_str();
            let named = FIELDS.contains(&field)
                || field == "(toml)"
                || field.strip_prefix("line ").is_some_and(|n| {
                    n.parse::<usize>()
                        .is_ok_and(|n| n >= 1 && n <= text.lines().count().max(1))
                });
            assert!(named, "error names no field: {error}");
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("{SOURCE}: {field}: "))
            );
        }
        Ok(m) => {
            assert!(!m.name.is_empty());
            assert!(
                m.name.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'_')
            );
            assert!(m.interface.runs_on(HOST_INTERFACE));
            assert!(!m.wasm_file.is_empty() && !m.wasm_file.contains(['/', '\\']));
            assert!(!m.wasm_file.starts_with('.'));
            assert_eq!(m.wasm_sha256.len(), 64);
            assert!(
                m.wasm_sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            );
            assert!(!m.response_types.is_empty() || !m.grant_types.is_empty());
            for r in &m.response_types {
                assert_eq!(normalize_response_type(r).as_deref(), Some(r.as_str()));
            }
            assert!(
                m.grant_types
                    .iter()
                    .all(|g| !g.is_empty() && !g.contains(char::is_whitespace))
            );
            assert!(m.repeatable_parameters.iter().all(|p| {
                !p.is_empty()
                    && !["grant_type", "scope", "client_id", "client_secret"].contains(&p.as_str())
            }));
            assert!(m.repeatable_parameters.is_empty() || !m.grant_types.is_empty());
            let paths: Vec<&str> = (m.endpoints.iter().map(|e| e.path.as_str()))
                .chain(m.user_steps.iter().map(|s| s.path.as_str()))
                .collect();
            assert!(paths.is_empty() || ENDPOINTS_SINCE.runs_on(m.interface));
            for (i, path) in paths.iter().enumerate() {
                assert!(is_plugin_path(path) && !is_host_path(path), "{path}");
                assert!(!paths[..i].contains(path), "{path} twice");
            }
            for key in m.endpoints.iter().filter_map(|e| e.metadata.as_deref()) {
                assert!(!key.is_empty() && !HOST_METADATA_KEYS.contains(&key));
            }
            assert!(
                m.capabilities
                    .iter()
                    .all(|c| c.since().runs_on(m.interface))
            );
            assert!(m.memory_bytes >= 1 << 20 && m.memory_bytes <= CAPS.max_memory_bytes);
            assert!(m.timeout_ms >= 1 && m.timeout_ms <= CAPS.max_timeout_ms);
        }
    }

    for line in text.lines() {
        if let Some(v) = InterfaceVersion::parse(line) {
            assert_eq!(InterfaceVersion::parse(&v.to_string()), Some(v));
        }
        if let Some(n) = normalize_response_type(line) {
            assert_eq!(normalize_response_type(&n).as_deref(), Some(n.as_str()));
            assert!(
                n.split(' ')
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_graphic()))
            );
        }
    }
});
