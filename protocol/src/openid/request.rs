//! The OpenID Connect parameters of an authorization request about signing
//! in and consent (OpenID Connect Core 1.0 §3.1.2.1, §11): `prompt`,
//! `max_age`, `login_hint`, `id_token_hint`, `acr_values`, and what
//! `offline_access` asks of consent. Sans-IO: parameters in, a validated
//! value or an `invalid_request` out; the endpoint holds the session.

use serde::{Deserialize, Serialize};

use crate::oauth::{ErrorCode, OAuthError, Params};

/// The longest `login_hint` kept to pre-fill the sign-in page, in bytes (the
/// longest username the login form takes). A longer hint is dropped: it is
/// only a hint.
pub const MAX_LOGIN_HINT_BYTES: usize = 255;

/// The longest `id_token_hint` read, in bytes; a longer one is refused.
pub const MAX_ID_TOKEN_HINT_BYTES: usize = 8192;

/// What an authorization request asks of the sign-in and the consent step.
/// Kept in the transaction (serde defaults, so a transaction saved before
/// these existed still reads as a request that asked nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SignInRequest {
    /// `prompt=none`: no page may be shown; an answer or an error at once.
    pub prompt_none: bool,
    /// `prompt=login`: the user signs in again even with a live session.
    pub prompt_login: bool,
    /// `prompt=consent`: the consent page is shown even when remembered.
    pub prompt_consent: bool,
    /// `max_age`: the longest time since the last sign-in, in seconds.
    pub max_age: Option<i64>,
    /// `login_hint`, to pre-fill the username (at most
    /// [`MAX_LOGIN_HINT_BYTES`]).
    pub login_hint: Option<String>,
    /// `acr_values` was sent: the ID token then states the `acr` the
    /// sign-in satisfied.
    pub acr_requested: bool,
}

impl SignInRequest {
    /// The earliest sign-in time that satisfies the request made at
    /// `requested_at`: with `prompt=login`, a sign-in after the request;
    /// with `max_age`, one at most `max_age` seconds before it (so
    /// `max_age=0` is `prompt=login`). `None`: any sign-in will do.
    pub fn signed_in_since(&self, requested_at: i64) -> Option<i64> {
        let by_prompt = self.prompt_login.then_some(requested_at);
        let by_max_age = self
            .max_age
            .map(|max_age| requested_at.saturating_sub(max_age));
        by_prompt.into_iter().chain(by_max_age).max()
    }
}

/// OIDC Core §3.1.2.6 `login_required`: the server requires the user to
/// sign in, and `prompt=none` forbids showing the sign-in page.
pub fn login_required(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::Extension("login_required".into()), description)
}

/// OIDC Core §3.1.2.6 `consent_required`: the server requires the user's
/// consent, and `prompt=none` forbids showing the consent page.
pub fn consent_required(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::Extension("consent_required".into()), description)
}

/// OIDC Core §3.1.2.6 `interaction_required`: the server requires the user
/// to interact in some other way, and `prompt=none` forbids a page.
pub fn interaction_required(description: impl Into<String>) -> OAuthError {
    OAuthError::new(
        ErrorCode::Extension("interaction_required".into()),
        description,
    )
}

/// Whether the scope asks for a refresh token usable while the user is
/// away (OIDC Core §11): `offline_access` in an `openid` request. Without
/// `openid` it is an ordinary scope.
pub fn asks_offline_access(scope: &[String]) -> bool {
    scope.iter().any(|s| s == super::OPENID_SCOPE) && scope.iter().any(|s| s == "offline_access")
}

/// Reads the parameters (each already known not to repeat). `prompt` is a
/// space-separated list in which `none` stands alone; values other than
/// `none`, `login` and `consent` (such as `select_account`: a session here
/// holds one account) are ignored, as Core §3.1.2.1 allows. `max_age` is a
/// non-negative integer.
pub fn parse(params: &Params) -> Result<SignInRequest, OAuthError> {
    let value = |name: &str| params.get(name).ok().flatten();
    let mut request = SignInRequest::default();
    if let Some(prompt) = value("prompt") {
        let words: Vec<&str> = prompt.split(' ').collect();
        if words.iter().any(|word| word.is_empty()) {
            return Err(OAuthError::invalid_request("prompt is malformed"));
        }
        request.prompt_none = words.contains(&"none");
        request.prompt_login = words.contains(&"login");
        request.prompt_consent = words.contains(&"consent");
        if request.prompt_none && words.len() > 1 {
            return Err(OAuthError::invalid_request(
                "prompt none cannot be combined with another value",
            ));
        }
    }
    if let Some(max_age) = value("max_age") {
        let parsed = (max_age.bytes().all(|b| b.is_ascii_digit()))
            .then(|| max_age.parse::<i64>().ok())
            .flatten();
        match parsed {
            Some(seconds) => request.max_age = Some(seconds),
            None => {
                return Err(OAuthError::invalid_request(
                    "max_age is not a non-negative integer",
                ));
            }
        }
    }
    request.login_hint = value("login_hint")
        .filter(|hint| hint.len() <= MAX_LOGIN_HINT_BYTES)
        .map(str::to_owned);
    request.acr_requested = value("acr_values").is_some();
    if value("id_token_hint").is_some_and(|hint| hint.len() > MAX_ID_TOKEN_HINT_BYTES) {
        return Err(OAuthError::invalid_request("id_token_hint is too long"));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn the_earliest_acceptable_sign_in_is_the_stricter_rule() {
        let request = |prompt_login, max_age| SignInRequest {
            prompt_login,
            max_age,
            ..SignInRequest::default()
        };
        assert_eq!(request(false, None).signed_in_since(1000), None);
        assert_eq!(request(true, None).signed_in_since(1000), Some(1000));
        assert_eq!(request(false, Some(0)).signed_in_since(1000), Some(1000));
        assert_eq!(request(false, Some(300)).signed_in_since(1000), Some(700));
        assert_eq!(request(true, Some(300)).signed_in_since(1000), Some(1000));
        assert_eq!(
            request(false, Some(i64::MAX)).signed_in_since(1000),
            Some(1000 - i64::MAX)
        );
    }

    #[test]
    fn offline_access_is_special_only_in_an_openid_request() {
        assert!(asks_offline_access(&strings(&["openid", "offline_access"])));
        assert!(!asks_offline_access(&strings(&["offline_access"])));
        assert!(!asks_offline_access(&strings(&["openid", "profile"])));
    }

    #[test]
    fn a_transaction_saved_before_these_parameters_reads_as_asking_nothing() {
        let read: SignInRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(read, SignInRequest::default());
    }
}
