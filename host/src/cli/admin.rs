//! The CLI's admin side: `admin token create|list|revoke`, and the client of
//! the admin API that `--admin URL` (token from `GRANTBOX_ADMIN_TOKEN`) puts
//! under every operator command: one JSON request per operation, path
//! segments percent-encoded, the server's refusal turned into an error that
//! keeps its description (which names the thing).

use anyhow::{Context as _, bail};
use clap::Subcommand;
use reqwest::Method;
use serde::de::DeserializeOwned;

use super::manage::{Operator, print_json, print_table};
use crate::manage::admin_token::AdminTokenRequest;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Admin tokens, the bearer tokens of the admin API.
    #[command(subcommand)]
    Token(AdminTokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create an admin token, printed once, alone on stdout (only its SHA-256 is stored).
    Create {
        /// Who holds the token, what for.
        #[arg(long)]
        name: Option<String>,
        /// Seconds until it expires (default: never).
        #[arg(long)]
        expires_in: Option<i64>,
    },
    /// List admin tokens (never a token).
    List,
    /// Revoke an admin token by its id: it is refused from the next request on.
    Revoke { id: String },
}

/// `admin token create|list|revoke`.
pub async fn admin(operator: &Operator, command: AdminCommand, json: bool) -> anyhow::Result<()> {
    let AdminCommand::Token(command) = command;
    match command {
        AdminTokenCommand::Create { name, expires_in } => {
            let created = operator
                .admin_token_create(AdminTokenRequest { name, expires_in })
                .await?;
            if json {
                return print_json(&created);
            }
            println!("{}", created.token);
            let expiry = created
                .expires_at
                .map_or("never expires".to_owned(), |at| format!("expires at {at}"));
            eprintln!(
                "admin token {}: above (shown only now); {expiry}; send it as Authorization: Bearer, or set {ADMIN_TOKEN_ENV} for --admin",
                created.id
            );
            Ok(())
        }
        AdminTokenCommand::List => {
            let tokens = operator.admin_token_list().await?;
            if json {
                return print_json(&tokens);
            }
            let time = |t: Option<i64>| t.map_or("-".to_owned(), |t| t.to_string());
            let rows = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.id.clone(),
                        t.name.clone().unwrap_or_else(|| "-".into()),
                        t.created_at.to_string(),
                        time(t.expires_at),
                        time(t.revoked_at),
                    ]
                })
                .collect::<Vec<_>>();
            print_table(
                &["ID", "NAME", "CREATED_AT", "EXPIRES_AT", "REVOKED_AT"],
                &rows,
            );
            Ok(())
        }
        AdminTokenCommand::Revoke { id } => {
            let revoked = operator.admin_token_revoke(&id).await?;
            if json {
                return print_json(&revoked);
            }
            println!("admin token {} revoked", revoked.id);
            Ok(())
        }
    }
}

/// The environment variable the CLI reads the admin token from (never a flag,
/// so that it stays out of shell history and process lists).
pub const ADMIN_TOKEN_ENV: &str = "GRANTBOX_ADMIN_TOKEN";

/// A running server's admin API.
pub struct AdminClient {
    base: url::Url,
    token: String,
    http: reqwest::Client,
}

impl AdminClient {
    /// The admin API at `base` (e.g. `http://127.0.0.1:8181`) with the token
    /// of [`ADMIN_TOKEN_ENV`].
    pub fn from_environment(base: &str) -> anyhow::Result<Self> {
        let token = std::env::var(ADMIN_TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            bail!(
                "{ADMIN_TOKEN_ENV} is not set: the admin API at {base} needs an admin token (grantbox admin token create)"
            );
        };
        let base = url::Url::parse(base)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .with_context(|| {
                format!("--admin: {base:?} is not a URL like http://127.0.0.1:8181")
            })?;
        Ok(AdminClient {
            base,
            token,
            http: reqwest::Client::new(),
        })
    }

    /// `method` on `/admin/` + `segments` (each percent-encoded) with `query`
    /// and an optional JSON body; the JSON answer, or an error with the
    /// server's description.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<T> {
        let url = self.url(segments, query)?;
        let (status, text) = self.exchange(method.clone(), &url, body).await?;
        if !status.is_success() {
            let description = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|body| body["error_description"].as_str().map(str::to_owned))
                .unwrap_or(text);
            bail!(
                "{description} (admin API: {method} {} answered {status})",
                url.path()
            );
        }
        serde_json::from_str(&text).with_context(|| {
            format!(
                "admin API: {method} {} answered {status} without the expected JSON",
                url.path()
            )
        })
    }

    /// `method` on `/admin/` + `segments` without a body: the status and the
    /// JSON answer, whatever the status (for answers that carry a reason).
    pub async fn send_raw(
        &self,
        method: Method,
        segments: &[&str],
    ) -> anyhow::Result<(reqwest::StatusCode, serde_json::Value)> {
        let url = self.url(segments, &[])?;
        let (status, text) = self.exchange(method.clone(), &url, None).await?;
        let body = serde_json::from_str(&text).with_context(|| {
            format!(
                "admin API: {method} {} answered {status} without a JSON body",
                url.path()
            )
        })?;
        Ok((status, body))
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> anyhow::Result<url::Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("--admin: {} cannot take a path", self.base))?
            .pop_if_empty()
            .push("admin")
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    async fn exchange(
        &self,
        method: Method,
        url: &url::Url,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, String)> {
        let mut request = self
            .http
            .request(method, url.clone())
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| {
            format!("cannot reach the admin API at {url} (is `grantbox serve` running with admin_listen?)")
        })?;
        let status = response.status();
        Ok((status, response.text().await.unwrap_or_default()))
    }
}
