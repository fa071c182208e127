//! OAuth 2.0 Token Exchange (RFC 8693) as a Grantbox extension plugin: a
//! client presents an access token of this server (`subject_token`) and gets
//! a new one for the same subject, narrowed in scope and restricted to the
//! audiences and resources it asked for. With an `actor_token` the new token
//! is a delegation: it carries the actor as `act` (RFC 8693 §4.1).
//!
//! Tokens are looked up and issued through the host's `token-exchange`
//! capability (interface 1.1.0); which `audience` and `resource` values each
//! client may ask for comes from the manifest's `[config]`. An exchanged
//! token joins the subject token's family, so revoking the subject's grant
//! revokes it too, and the host ends it no later than the tokens presented.
//!
//! The form of the new token is the calling client's registration's, not
//! the plugin's: for a client registered with `client add
//! --access-token-format jwt` the host mints it as a JWT access token (RFC
//! 9068, `act` included) signed with the key its JWKS publishes, and stores
//! it like any token, so introspection and revocation work for it too.

use std::collections::BTreeMap;

use grantbox_sdk::host::config::ConfigError;
use grantbox_sdk::{
    ExchangeGrant, ExchangedTokenInfo, Grant, OAuthError, PluginInfo, TokenRequest, TokenResponse,
    host, optional_param, param, repeated_param,
};
use serde::Deserialize;

/// The `grant_type` this plugin provides (RFC 8693 §2.1).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The token type identifier of an OAuth 2.0 access token (RFC 8693 §3): the
/// only type this plugin accepts and issues.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The most `audience` plus `resource` values one request may carry.
pub const MAX_TARGETS: usize = 16;

/// The token exchange grant.
pub struct TokenExchange;

impl Grant for TokenExchange {
    fn info() -> PluginInfo {
        PluginInfo::new().grant_type(GRANT_TYPE)
    }

    fn exchange(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        let params = &request.params;
        // RFC 8693 §2.1: both REQUIRED.
        let subject_token = param(params, "subject_token")?;
        let subject_token_type = param(params, "subject_token_type")?;
        check_token_type("subject_token_type", subject_token_type)?;
        let actor_token = optional_param(params, "actor_token")?;
        let actor_token_type = optional_param(params, "actor_token_type")?;
        match (actor_token, actor_token_type) {
            (Some(_), Some(token_type)) => check_token_type("actor_token_type", token_type)?,
            (Some(_), None) => {
                return Err(OAuthError::invalid_request(
                    "actor_token_type is required with actor_token",
                ));
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "actor_token_type must not be sent without actor_token",
                ));
            }
            (None, None) => {}
        }
        if let Some(requested) = optional_param(params, "requested_token_type")?
            && requested != ACCESS_TOKEN_TYPE
        {
            return Err(OAuthError::invalid_request(format!(
                "requested_token_type {requested} is not supported; this server issues {ACCESS_TOKEN_TYPE}"
            )));
        }

        let policy = Policy::load(&request.client.client_id)?;
        let audience = policy.targets(
            &repeated_param(params, "audience"),
            &repeated_param(params, "resource"),
        )?;

        let subject = lookup_access_token("subject_token", subject_token)?;
        // The host ends the new token no later than the tokens looked up.
        let actor = match actor_token {
            // A token of a client acting for itself has no subject: the
            // client is then the actor.
            Some(token) => {
                let actor = lookup_access_token("actor_token", token)?;
                Some(actor.token.subject.unwrap_or(actor.token.client_id))
            }
            // Exchanging a delegated token again keeps who acts.
            None => subject.actor.clone(),
        };
        let scope = narrow_scope(request.scope, &request.client.scopes, &subject)?;
        // Without `audience` or `resource` the new token keeps the subject
        // token's restriction: an exchange never widens where a token works.
        let audience = if audience.is_empty() {
            subject.audience.clone()
        } else {
            audience
        };

        // Opaque or an RFC 9068 JWT, as the client is registered: the host
        // decides, signs and stores it.
        let issued = host::token_exchange::issue(&ExchangeGrant {
            subject: subject.token.subject.clone(),
            scope,
            audience,
            actor,
            grant_id: Some(subject.token.grant_id.clone()),
        })?;
        // RFC 8693 §2.2.1: `issued_token_type` is REQUIRED; `token_type`
        // is `Bearer` as for any access token of this server.
        Ok(TokenResponse::from(issued).with_extra("issued_token_type", ACCESS_TOKEN_TYPE))
    }
}

grantbox_sdk::export!(TokenExchange);

/// Accepts only access tokens of this server (RFC 8693 §3 identifiers).
fn check_token_type(name: &str, value: &str) -> Result<(), OAuthError> {
    if value == ACCESS_TOKEN_TYPE {
        return Ok(());
    }
    Err(OAuthError::invalid_request(format!(
        "{name} {value} is not supported; this server accepts {ACCESS_TOKEN_TYPE} only"
    )))
}

/// RFC 8693 §2.2.2: a token that is invalid or unacceptable is `invalid_request`.
fn lookup_access_token(name: &str, token: &str) -> Result<ExchangedTokenInfo, OAuthError> {
    let found = host::token_exchange::lookup(token)?;
    match found {
        Some(info) if info.token.token_type_hint == "access_token" => Ok(info),
        Some(_) => Err(OAuthError::invalid_request(format!(
            "{name} is not an access token"
        ))),
        None => Err(OAuthError::invalid_request(format!(
            "{name} is not an active access token of this server"
        ))),
    }
}

/// The scope of the new token: the requested one, which must lie within the
/// subject token's (RFC 8693 §2.1, §5: an exchange must not widen what the
/// subject token grants); without `scope`, the subject token's scope as far
/// as the calling client is registered for it.
fn narrow_scope(
    requested: Option<Vec<String>>,
    registered: &[String],
    subject: &ExchangedTokenInfo,
) -> Result<Vec<String>, OAuthError> {
    let granted = &subject.token.scope;
    match requested {
        Some(requested) => match requested.iter().find(|s| !granted.contains(s)) {
            Some(wider) => Err(OAuthError::invalid_scope(format!(
                "scope {wider} is not granted by the subject_token"
            ))),
            None => Ok(requested),
        },
        None => {
            let scope: Vec<String> = granted
                .iter()
                .filter(|s| registered.contains(s))
                .cloned()
                .collect();
            if scope.is_empty() && !granted.is_empty() {
                return Err(OAuthError::invalid_scope(
                    "none of the subject_token's scope is registered for this client",
                ));
            }
            Ok(scope)
        }
    }
}

/// The plugin's `[config]`: which clients may exchange tokens, and for what.
#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    clients: BTreeMap<String, Policy>,
}

/// What the calling client may ask for, from `[config.clients.<client_id>]`.
/// Unknown keys are errors: a `token_format` left from an older version
/// would otherwise be ignored in silence (the registration decides now).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Policy {
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
}

impl Policy {
    /// The calling client's policy; a client the table does not name may
    /// not exchange tokens. A `[config]` the operator got wrong answers
    /// `server_error` naming the key (nothing in it is secret).
    fn load(client_id: &str) -> Result<Policy, OAuthError> {
        let mut config: Config = host::config::decode().map_err(|error| match error {
            ConfigError::Host(error) => OAuthError::from(error),
            invalid => OAuthError::server_error(format!(
                "the token-exchange plugin is misconfigured: {invalid}"
            )),
        })?;
        config.clients.remove(client_id).ok_or_else(|| {
            OAuthError::unauthorized_client(format!("client {client_id} may not exchange tokens"))
        })
    }

    /// The requested `audience` and `resource` values as the token's
    /// audience, in request order without duplicates; each must be one the
    /// client may ask for (`invalid_target`, RFC 8693 §2.2.2).
    fn targets(&self, audiences: &[&str], resources: &[&str]) -> Result<Vec<String>, OAuthError> {
        if audiences.len() + resources.len() > MAX_TARGETS {
            return Err(OAuthError::invalid_request(format!(
                "at most {MAX_TARGETS} audience and resource values"
            )));
        }
        let mut targets: Vec<String> = Vec::new();
        for audience in audiences {
            if !self.audiences.iter().any(|a| a == audience) {
                return Err(OAuthError::invalid_target(format!(
                    "audience {audience} is not one this client may ask for"
                )));
            }
            if !targets.iter().any(|t| t == audience) {
                targets.push((*audience).to_owned());
            }
        }
        for resource in resources {
            // RFC 8693 §2.1: an absolute URI without a fragment.
            if !is_absolute_uri(resource) || resource.contains('#') {
                return Err(OAuthError::invalid_request(format!(
                    "resource {resource} is not an absolute URI without a fragment"
                )));
            }
            if !self.resources.iter().any(|r| r == resource) {
                return Err(OAuthError::invalid_target(format!(
                    "resource {resource} is not one this client may ask for"
                )));
            }
            if !targets.iter().any(|t| t == resource) {
                targets.push((*resource).to_owned());
            }
        }
        Ok(targets)
    }
}

/// RFC 3986 §4.3: a scheme (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`),
/// a colon and more, with no whitespace or control characters.
fn is_absolute_uri(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && value.chars().all(|c| c.is_ascii_graphic())
}

#[cfg(test)]
mod tests;
