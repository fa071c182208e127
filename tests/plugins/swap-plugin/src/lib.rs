//! A grant plugin for the hot-swap tests: `[config] generation` comes back as
//! `plugin_generation` in every token and authorization response, so a test
//! sees which version of the plugin answered. `[config] grant_type` and
//! `response_type` pick what it claims, so one wasm can replace a bundled grant.
//! Its plugin endpoint (`/swap_echo` in its manifest) echoes the generation,
//! the client and the parameters, and misbehaves when a parameter asks it to.

use grantbox_sdk::{
    AuthorizationApproval, AuthorizationRequest, EndpointRequest, EndpointResponse, Grant,
    OAuthError, Params, PluginInfo, ResponseMode, TokenGrant, TokenRequest, TokenResponse, host,
};

/// The grant type claimed when the config names none.
pub const DEFAULT_GRANT_TYPE: &str = "urn:grantbox:test:swap";

/// The response parameter that carries `[config] generation`.
pub const GENERATION_PARAM: &str = "plugin_generation";

/// The transaction data key under which `authorize_request` keeps its generation.
pub const BEGAN_WITH: &str = "began_with_generation";

/// The grant whose responses name its configured generation.
pub struct Swap;

impl Grant for Swap {
    fn info() -> PluginInfo {
        // info() cannot fail, so any trouble reading the config falls back to the defaults.
        let config = |key: &str| host::config::get(key).ok().flatten();
        let grant_type = config("grant_type").unwrap_or_else(|| DEFAULT_GRANT_TYPE.to_string());
        let info = PluginInfo::new().grant_type(&grant_type);
        match config("response_type") {
            Some(response_type) => info.response_type(&[&response_type], ResponseMode::Fragment),
            None => info,
        }
    }

    fn authorize_request(_request: AuthorizationRequest) -> Result<Params, OAuthError> {
        Ok(vec![(BEGAN_WITH.to_string(), generation()?)])
    }

    fn authorize_response(approval: AuthorizationApproval) -> Result<Params, OAuthError> {
        let began_with = approval
            .data
            .iter()
            .find(|(key, _)| key == BEGAN_WITH)
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        Ok(vec![
            (GENERATION_PARAM.to_string(), generation()?),
            (BEGAN_WITH.to_string(), began_with),
        ])
    }

    fn exchange(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        let grant = TokenGrant {
            subject: None,
            scope: request.scope.unwrap_or(request.client.scopes),
            refresh_token: false,
            grant_id: None,
        };
        let response = TokenResponse::from(host::tokens::issue(&grant)?);
        Ok(response.with_extra(GENERATION_PARAM, &generation()?))
    }

    /// Answers `{"plugin_generation", "path", "client_id", "params"}`; the
    /// parameters `status` (the status to answer), `raw_body` (a body sent as
    /// it is) and `error` (an OAuth error code to answer with) make it
    /// misbehave on purpose.
    fn endpoint(request: EndpointRequest) -> Result<EndpointResponse, OAuthError> {
        let param = |name: &str| {
            (request.params.iter())
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        if let Some(code) = param("error") {
            return Err(OAuthError::new(code, "the request asked for this error"));
        }
        let status = param("status").and_then(|s| s.parse().ok()).unwrap_or(200);
        if let Some(raw) = param("raw_body") {
            return Ok(EndpointResponse {
                status,
                body: raw.to_string(),
            });
        }
        let client_id = match &request.client {
            Some(client) => json_string(&client.client_id),
            None => "null".to_string(),
        };
        let params: Vec<String> = (request.params.iter())
            .map(|(key, value)| format!("[{},{}]", json_string(key), json_string(value)))
            .collect();
        let body = format!(
            "{{\"{GENERATION_PARAM}\":{},\"path\":{},\"client_id\":{client_id},\"params\":[{}]}}",
            json_string(&generation()?),
            json_string(&request.path),
            params.join(",")
        );
        Ok(EndpointResponse { status, body })
    }
}

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    let mut json = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            c if u32::from(c) < 0x20 => json.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => json.push(c),
        }
    }
    json.push('"');
    json
}

grantbox_sdk::export!(Swap);

/// `[config] generation`, which every manifest of this plugin must set.
fn generation() -> Result<String, OAuthError> {
    host::config::get("generation")
        .map_err(|error| OAuthError::server_error(format!("config: {}", error.message())))?
        .ok_or_else(|| OAuthError::server_error("[config] generation is missing"))
}

#[cfg(test)]
mod tests;
