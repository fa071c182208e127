//! [`ConfigError`]: why the manifest's `[config]` does not decode into the
//! plugin's type, naming the key, and what the client is told about it.

use std::fmt;

use crate::{HostError, OAuthError};

/// The `[config]` table could not be read, or does not fit the plugin's
/// type. The operator wrote it, so the [`OAuthError`] it becomes tells the
/// client only `server_error`; the detail (which may quote a configured
/// value) goes to the plugin's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// `config.json` failed (e.g. the `config` capability is not granted).
    Host(HostError),
    /// The table does not fit: `key` is the path to the value at fault
    /// (`clients.app.keys[0].alg`), empty when the fault is the table as
    /// a whole (a missing key is named in `message`).
    Invalid { key: String, message: String },
}

impl ConfigError {
    /// Decodes the table's JSON text into `T`, keeping the path of a value
    /// that does not fit.
    pub(crate) fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, ConfigError> {
        let deserializer = &mut serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let key = error.path().to_string();
            ConfigError::Invalid {
                // serde_path_to_error writes the root as ".".
                key: if key == "." { String::new() } else { key },
                message: error.into_inner().to_string(),
            }
        })
    }

    /// The key at fault, when one is.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } if !key.is_empty() => Some(key),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Host(error) => write!(f, "[config] cannot be read: {}", error.message()),
            ConfigError::Invalid { key, message } if key.is_empty() => {
                write!(f, "[config]: {message}")
            }
            ConfigError::Invalid { key, message } => write!(f, "[config] {key}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// What the client is told: for an invalid table, `server_error` with
    /// `description`, which should name nothing of the configuration (the
    /// detail is logged when the plugin holds the `log` capability); for a
    /// failed host call, what [`HostError`] becomes.
    pub fn into_oauth_error(self, description: &str) -> OAuthError {
        match self {
            ConfigError::Host(error) => error.into(),
            ConfigError::Invalid { .. } => {
                crate::host::log::warn(&self.to_string());
                OAuthError::server_error(description)
            }
        }
    }
}

impl From<ConfigError> for OAuthError {
    /// [`ConfigError::into_oauth_error`] with a generic description.
    fn from(error: ConfigError) -> Self {
        error.into_oauth_error("the grant plugin's [config] is invalid")
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::ConfigError;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Config {
        #[serde(default)]
        lifetime: u32,
        clients: std::collections::BTreeMap<String, Client>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Client {
        keys: Vec<Key>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Key {
        alg: String,
    }

    fn invalid(json: &str) -> (String, String) {
        match ConfigError::decode::<Config>(json) {
            Err(ConfigError::Invalid { key, message }) => (key, message),
            other => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn a_table_that_fits_decodes() {
        let config: Config = ConfigError::decode(
            r#"{"clients": {"app": {"keys": [{"alg": "ES256"}]}}, "extra": 1}"#,
        )
        .unwrap();
        assert_eq!(config.lifetime, 0);
        assert_eq!(config.clients["app"].keys[0].alg, "ES256");
    }

    #[test]
    fn the_error_names_the_key_at_fault() {
        let (key, message) =
            invalid(r#"{"clients": {"app": {"keys": [{"alg": "ES256"}, {"alg": 5}]}}}"#);
        assert_eq!(key, "clients.app.keys[1].alg");
        assert!(message.contains("expected a string"), "{message}");

        let (key, _) = invalid(r#"{"lifetime": "soon", "clients": {}}"#);
        assert_eq!(key, "lifetime");

        let (key, message) = invalid(r#"{"lifetime": 5}"#);
        assert_eq!(key, "");
        assert!(message.contains("missing field `clients`"), "{message}");
    }

    #[test]
    fn the_client_learns_nothing_of_the_configuration_and_the_log_names_the_key() {
        let mut test_host = crate::testing::TestHost::new();
        let oauth = test_host.run(|| {
            let error =
                ConfigError::decode::<Config>(r#"{"lifetime": "secret-value", "clients": {}}"#)
                    .unwrap_err();
            crate::OAuthError::from(error)
        });
        assert_eq!(oauth.error, "server_error");
        let description = oauth.error_description.unwrap_or_default();
        assert!(!description.contains("secret-value"), "{description}");
        assert!(!description.contains("lifetime"), "{description}");
        let logged: Vec<&str> = test_host
            .logs()
            .iter()
            .map(|line| line.message.as_str())
            .collect();
        assert!(
            logged
                .iter()
                .any(|line| line.starts_with("[config] lifetime: ")),
            "{logged:?}"
        );
    }
}
