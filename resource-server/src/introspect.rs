//! The client of Grantbox's `/introspect` (RFC 7662): finds the endpoint by
//! RFC 8414 discovery from the issuer (again after any failure, not only at
//! start), authenticates with HTTP Basic as the registered resource-server
//! client, and turns the answer into [`Answer`]. Knows nothing of the cache.

use std::sync::RwLock;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

/// What Grantbox said about a token.
#[derive(Debug)]
pub(crate) enum Answer {
    Active(Introspection),
    Inactive,
}

/// The RFC 7662 §2.2 members this crate reads.
#[derive(Debug, Deserialize)]
pub(crate) struct Introspection {
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub aud: Option<Audience>,
    /// RFC 9449 §6.2: the thumbprint of the key a DPoP-bound token is bound to.
    #[serde(default)]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` member of an introspection answer (RFC 7800, RFC 9449 §6.2).
#[derive(Debug, Deserialize)]
pub(crate) struct Confirmation {
    #[serde(default)]
    pub jkt: Option<String>,
}

/// `aud` is a string or an array of strings (RFC 7662 §2.2, RFC 7519 §4.1.3).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

#[derive(Deserialize)]
struct RawAnswer {
    active: bool,
    #[serde(flatten)]
    details: Introspection,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    introspection_endpoint: Option<String>,
}

/// Why Grantbox could not be asked; logged, never shown to the client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unavailable {
    #[error("discovery at {url}: {source}")]
    Discovery { url: Url, source: reqwest::Error },
    #[error("discovery at {url}: {reason}")]
    Metadata { url: Url, reason: String },
    #[error("introspection at {url}: {source}")]
    Request { url: Url, source: reqwest::Error },
    #[error("introspection at {url}: status {status}")]
    Status { url: Url, status: u16 },
}

pub(crate) struct Introspector {
    http: reqwest::Client,
    issuer: Url,
    client_id: String,
    client_secret: String,
    /// The endpoint found by discovery; cleared when a request to it fails,
    /// so the next request discovers again.
    endpoint: RwLock<Option<Url>>,
}

impl Introspector {
    pub(crate) fn new(
        issuer: Url,
        client_id: String,
        client_secret: String,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            issuer,
            client_id,
            client_secret,
            endpoint: RwLock::new(None),
        })
    }

    /// Asks Grantbox about `token`.
    pub(crate) async fn introspect(&self, token: &str) -> Result<Answer, Unavailable> {
        let endpoint = self.endpoint().await?;
        let result = self.ask(&endpoint, token).await;
        if result.is_err() {
            *self.endpoint.write().unwrap_or_else(|e| e.into_inner()) = None;
        }
        result
    }

    async fn ask(&self, endpoint: &Url, token: &str) -> Result<Answer, Unavailable> {
        let request_error = |source| Unavailable::Request {
            url: endpoint.clone(),
            source,
        };
        let response = self
            .http
            .post(endpoint.clone())
            .basic_auth(
                form_urlencoded::byte_serialize(self.client_id.as_bytes()).collect::<String>(),
                Some(
                    form_urlencoded::byte_serialize(self.client_secret.as_bytes())
                        .collect::<String>(),
                ),
            )
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(Unavailable::Status {
                url: endpoint.clone(),
                status: status.as_u16(),
            });
        }
        let answer: RawAnswer = response.json().await.map_err(request_error)?;
        Ok(if answer.active {
            Answer::Active(answer.details)
        } else {
            Answer::Inactive
        })
    }

    async fn endpoint(&self) -> Result<Url, Unavailable> {
        if let Some(url) = self
            .endpoint
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(url);
        }
        let url = metadata_url(&self.issuer);
        let metadata_error = |reason: String| Unavailable::Metadata {
            url: url.clone(),
            reason,
        };
        let response =
            self.http
                .get(url.clone())
                .send()
                .await
                .map_err(|source| Unavailable::Discovery {
                    url: url.clone(),
                    source,
                })?;
        if !response.status().is_success() {
            return Err(metadata_error(format!("status {}", response.status())));
        }
        let metadata: Metadata =
            response
                .json()
                .await
                .map_err(|source| Unavailable::Discovery {
                    url: url.clone(),
                    source,
                })?;
        // RFC 8414 §3.3: the metadata must name the issuer it was fetched for.
        if metadata.issuer.trim_end_matches('/') != self.issuer.as_str().trim_end_matches('/') {
            return Err(metadata_error(format!(
                "issuer is {}, expected {}",
                metadata.issuer, self.issuer
            )));
        }
        let endpoint = metadata
            .introspection_endpoint
            .ok_or_else(|| metadata_error("no introspection_endpoint".into()))
            .and_then(|endpoint| {
                Url::parse(&endpoint)
                    .map_err(|e| metadata_error(format!("introspection_endpoint: {e}")))
            })?;
        *self.endpoint.write().unwrap_or_else(|e| e.into_inner()) = Some(endpoint.clone());
        Ok(endpoint)
    }
}

/// RFC 8414 §3.1: the well-known suffix goes between the host and the
/// issuer's path.
pub(crate) fn metadata_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = issuer.path().trim_end_matches('/');
    url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    url.set_query(None);
    url.set_fragment(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_puts_the_well_known_suffix_before_the_path() {
        let check = |issuer: &str, expect: &str| {
            assert_eq!(metadata_url(&Url::parse(issuer).unwrap()).as_str(), expect);
        };
        check(
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/.well-known/oauth-authorization-server",
        );
        check(
            "https://auth.example.com/tenant/",
            "https://auth.example.com/.well-known/oauth-authorization-server/tenant",
        );
    }

    #[test]
    fn aud_is_a_string_or_an_array() {
        let one: Introspection = serde_json::from_str(r#"{"aud":"a"}"#).unwrap();
        assert_eq!(one.aud.unwrap().into_vec(), ["a"]);
        let many: Introspection = serde_json::from_str(r#"{"aud":["a","b"]}"#).unwrap();
        assert_eq!(many.aud.unwrap().into_vec(), ["a", "b"]);
    }
}
