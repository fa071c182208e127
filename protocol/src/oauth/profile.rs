//! Client profiles: a named set of rules a client is held to beyond the
//! server's defaults, chosen at registration (`client add --profile`). One
//! profile today, [`Profile::Fapi2`], the FAPI 2.0 Security Profile (final,
//! 2025): its authorization-request rules and bounds live here as pure
//! functions; the registration rules are `registration.rs`'s, which also
//! switches on the client settings the profile requires (pushed requests,
//! DPoP-bound tokens) and keeps them on.

use super::redirect::mode_name;
use super::{OAuthError, Params, ResponseMode};

/// A client's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// FAPI 2.0 Security Profile.
    Fapi2,
}

impl Profile {
    /// Every profile, in the order `client add --help` lists them.
    pub const ALL: [Profile; 1] = [Profile::Fapi2];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Fapi2 => "fapi2",
        }
    }

    pub fn parse(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The longest an authorization code may live (FAPI 2.0 SP §5.3.2.2
    /// item 12: at most 60 seconds).
    pub fn code_max_lifetime(self) -> i64 {
        match self {
            Profile::Fapi2 => 60,
        }
    }

    /// Whether the client must push its authorization requests (FAPI 2.0 SP
    /// §5.3.2.2 item 3).
    pub fn requires_pushed_authorization_requests(self) -> bool {
        match self {
            Profile::Fapi2 => true,
        }
    }

    /// Whether every access token must be sender-constrained (FAPI 2.0 SP
    /// §5.3.2.1 items 4 and 5; Grantbox constrains with DPoP).
    pub fn requires_dpop(self) -> bool {
        match self {
            Profile::Fapi2 => true,
        }
    }

    /// Whether a client assertion's `aud` must be the issuer alone, as a
    /// string (FAPI 2.0 SP §5.3.2.1 item 8), rather than the token endpoint
    /// or a list naming either.
    pub fn assertion_audience_is_issuer_only(self) -> bool {
        match self {
            Profile::Fapi2 => true,
        }
    }

    /// The rules an authorization request of a client with this profile
    /// must meet on top of the server's (run after the response type and
    /// mode are known, so a refusal goes back to the client):
    /// - `response_type=code` only: no implicit and no hybrid (§5.3.2.1
    ///   item 2, §5.3.2.2 item 1);
    /// - the response in the query, the default of `code` (the security
    ///   analysis behind the profile assumes it; fragment and form_post
    ///   are refused);
    /// - PKCE with `S256` (§5.3.2.2 item 5): a `code_challenge` and
    ///   `code_challenge_method=S256`, the method sent explicitly;
    /// - `redirect_uri` sent (§5.3.2.2 item 6: a pushed request must carry it).
    pub fn check_authorization_request(
        self,
        params: &Params,
        response_type: &[String],
        response_mode: ResponseMode,
    ) -> Result<(), OAuthError> {
        let name = self.as_str();
        if response_type != ["code"] {
            return Err(OAuthError::unauthorized_client(format!(
                "a {name} client may only use response_type=code"
            )));
        }
        if response_mode != ResponseMode::Query {
            return Err(OAuthError::invalid_request(format!(
                "a {name} client receives its authorization response in the query; response_mode {} is not allowed",
                mode_name(response_mode)
            )));
        }
        let sent = |name: &str| {
            params
                .get(name)
                .ok()
                .flatten()
                .is_some_and(|v| !v.is_empty())
        };
        if !sent("code_challenge") {
            return Err(OAuthError::invalid_request(format!(
                "a {name} client must send a PKCE code_challenge"
            )));
        }
        if params.get("code_challenge_method").ok().flatten() != Some("S256") {
            return Err(OAuthError::invalid_request(format!(
                "a {name} client must send code_challenge_method=S256"
            )));
        }
        if !sent("redirect_uri") {
            return Err(OAuthError::invalid_request(format!(
                "a {name} client must send redirect_uri"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ErrorCode;

    fn params(pairs: &[(&str, &str)]) -> Params {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        Params::parse(body.as_bytes()).unwrap()
    }

    const GOOD: &[(&str, &str)] = &[
        ("response_type", "code"),
        ("redirect_uri", "https://app.example/cb"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ];

    fn without(name: &str) -> Vec<(&'static str, &'static str)> {
        GOOD.iter().copied().filter(|(n, _)| *n != name).collect()
    }

    fn with(name: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut pairs = without(name);
        pairs.push((name, value));
        pairs
    }

    #[test]
    fn names_round_trip() {
        for profile in Profile::ALL {
            assert_eq!(Profile::parse(profile.as_str()), Some(profile));
        }
        assert_eq!(Profile::parse("FAPI2"), None);
        assert_eq!(Profile::parse("fapi1"), None);
    }

    #[test]
    fn fapi2_authorization_requests() {
        let code = vec!["code".to_owned()];
        let check = |pairs: &[(&str, &str)], words: &[String], mode| {
            Profile::Fapi2
                .check_authorization_request(&params(pairs), words, mode)
                .map_err(|e| (e.code, e.description.unwrap_or_default()))
        };
        assert_eq!(check(GOOD, &code, ResponseMode::Query), Ok(()));
        let refused = |result: Result<(), (ErrorCode, String)>, code: ErrorCode, says: &str| {
            let (got, description) = result.unwrap_err();
            assert_eq!(got, code, "{description}");
            assert!(description.contains(says), "{description}");
        };
        // No implicit, no hybrid.
        for words in [
            vec!["token"],
            vec!["code", "id_token"],
            vec!["code", "token"],
        ] {
            let words: Vec<String> = words.into_iter().map(str::to_owned).collect();
            refused(
                check(GOOD, &words, ResponseMode::Fragment),
                ErrorCode::UnauthorizedClient,
                "response_type=code",
            );
        }
        for mode in [ResponseMode::Fragment, ResponseMode::FormPost] {
            refused(
                check(GOOD, &code, mode),
                ErrorCode::InvalidRequest,
                "response_mode",
            );
        }
        refused(
            check(&without("code_challenge"), &code, ResponseMode::Query),
            ErrorCode::InvalidRequest,
            "code_challenge",
        );
        refused(
            check(&with("code_challenge", ""), &code, ResponseMode::Query),
            ErrorCode::InvalidRequest,
            "code_challenge",
        );
        // plain, and the method left to its default (plain), are refused.
        refused(
            check(
                &with("code_challenge_method", "plain"),
                &code,
                ResponseMode::Query,
            ),
            ErrorCode::InvalidRequest,
            "S256",
        );
        refused(
            check(
                &without("code_challenge_method"),
                &code,
                ResponseMode::Query,
            ),
            ErrorCode::InvalidRequest,
            "S256",
        );
        refused(
            check(&without("redirect_uri"), &code, ResponseMode::Query),
            ErrorCode::InvalidRequest,
            "redirect_uri",
        );
    }

    #[test]
    fn fapi2_bounds() {
        assert_eq!(Profile::Fapi2.code_max_lifetime(), 60);
        assert!(Profile::Fapi2.requires_pushed_authorization_requests());
        assert!(Profile::Fapi2.requires_dpop());
        assert!(Profile::Fapi2.assertion_audience_is_issuer_only());
    }
}
