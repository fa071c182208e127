//! The authorization request's rules (RFC 6749 §3.1, §4.1.1, §4.2.1): which
//! redirect URI the response goes to, which errors are shown to the user and
//! which go back to the client, the response type, the response mode and the
//! scope. Pure functions of the decoded parameters, the client's registration
//! and the response types on offer; the store lookup, the plugin call and the
//! session stay with the endpoint.
//!
//! The checks run in stages, each a function of values: [`client_id`] names
//! the client the endpoint looks up, [`pushed_reference`] the pushed request
//! (RFC 9126 §4) whose parameters replace the request's own, then
//! [`validate`] decides the rest. A later rule is a row here and in the
//! table below, not a branch in the endpoint: a pushed request is the stage
//! that yields the parameters (and [`refuse_request_uri`] when it yields
//! none) plus one input of [`validate`] ([`Arrival`]); a sign-in prompt
//! (`prompt`, `max_age`) is one more input to [`validate`] (when the user
//! signed in) and one more field of [`Validated`] or one more
//! [`Rejection::Redirect`].

use super::profile::Profile;
use super::redirect;
use super::{ErrorCode, OAuthError, Params, ResponseMode, resource, scope};
use crate::openid::request::{self as openid_request, SignInRequest};

/// Why an authorization request stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Shown to the user, never redirected (RFC 6749 §4.1.2.1, §4.2.2.1): the
    /// client or its redirect URI cannot be trusted. The description is a
    /// sentence for the user; `invalid_client` means the client is unknown.
    Page(OAuthError),
    /// Sent back to the validated redirect URI in `response_mode`.
    Redirect {
        redirect_uri: String,
        response_mode: ResponseMode,
        state: Option<String>,
        error: OAuthError,
    },
}

/// The parts of a client's registration the authorization request is checked
/// against, borrowed from wherever the registration is kept.
#[derive(Debug, Clone, Copy)]
pub struct RegisteredClient<'a> {
    pub client_id: &'a str,
    /// Compared as exact strings ([`redirect::find_registered`]).
    pub redirect_uris: &'a [String],
    /// RFC 7591 `grant_types` words.
    pub grant_types: &'a [String],
    /// The scope the client may ask for, and the default when it asks for none.
    pub scopes: &'a [String],
    /// RFC 8707: the resources the client may ask for, and the default when
    /// it asks for none.
    pub resources: &'a [String],
    /// The profile the client is held to (`client add --profile`), whose
    /// rules [`Profile::check_authorization_request`] adds.
    pub profile: Option<Profile>,
    /// RFC 9126 §6: the client's authorization requests must be pushed.
    pub require_pushed_authorization_requests: bool,
}

/// A client as the endpoint found it: anything that can show its registration.
pub trait Registration {
    fn registration(&self) -> RegisteredClient<'_>;
}

impl Registration for RegisteredClient<'_> {
    fn registration(&self) -> RegisteredClient<'_> {
        *self
    }
}

/// The response types the server offers: each names the grant that answers it
/// and the response mode that grant uses by default.
pub trait ResponseTypes {
    /// What answers a response type (for the host, a plugin).
    type Grant;
    /// The grant for `response_type` (its words in any order) and its default mode.
    fn find(&self, response_type: &str) -> Option<(Self::Grant, ResponseMode)>;
}

/// RFC 9126 §2.2: how every `request_uri` the pushed authorization request
/// endpoint issues begins; the rest is the random reference.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// How the parameters [`validate`] checks reached the server (RFC 9126).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// In the authorization request itself (query or form).
    /// `pushed_required` is the server's `require_pushed_authorization_requests`
    /// (RFC 9126 §5): with it, or with the client's registration saying so
    /// (§6), such a request is refused.
    Direct { pushed_required: bool },
    /// Pushed by the authenticated client (RFC 9126 §2): checked at the
    /// pushed authorization request endpoint, and loaded again by the
    /// authorization endpoint from its `request_uri`.
    Pushed,
}

/// How the redirect URI of a valid request was chosen (RFC 6749 §3.1.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectUriChoice {
    /// `redirect_uri` was sent and is registered, compared as strings.
    Exact,
    /// `redirect_uri` was sent and is a registered loopback URI on another
    /// port (RFC 8252 §7.3).
    LoopbackPort,
    /// `redirect_uri` was not sent and the client registered exactly one.
    OnlyRegistered,
}

/// A valid authorization request: what the grant and the consent step need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated<C, G> {
    pub client: C,
    pub grant: G,
    /// The `response_type` words as sent.
    pub response_type: Vec<String>,
    pub redirect_uri: String,
    pub redirect_uri_choice: RedirectUriChoice,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
    pub scope: Vec<String>,
    /// RFC 8707: the resources the grant is authorized for (the requested
    /// ones, or every registered one).
    pub resources: Vec<String>,
    /// OIDC Core §3.1.2.1: what the request asks of the sign-in and consent
    /// (`prompt`, `max_age`, `login_hint`, `acr_values`).
    pub sign_in: SignInRequest,
}

impl<C, G> Validated<C, G> {
    /// The `redirect_uri` the client sent, which the token request must repeat
    /// (RFC 6749 §4.1.3); `None` when it was left out.
    pub fn sent_redirect_uri(&self) -> Option<&str> {
        match self.redirect_uri_choice {
            RedirectUriChoice::Exact | RedirectUriChoice::LoopbackPort => Some(&self.redirect_uri),
            RedirectUriChoice::OnlyRegistered => None,
        }
    }

    /// An error found after validation (by the grant, or a bound of the
    /// server's), sent back to the client like the request's own errors.
    pub fn reject(&self, error: OAuthError) -> Rejection {
        Rejection::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            response_mode: self.response_mode,
            state: self.state.clone(),
            error,
        }
    }
}

/// The `client_id` to look up. RFC 6749 §4.1.2.1: a missing or repeated one is
/// shown to the user, since no redirect URI can be trusted without a client.
pub fn client_id(params: &Params) -> Result<&str, Rejection> {
    params
        .get("client_id")
        .map_err(|_| page("The client_id parameter is repeated."))?
        .ok_or_else(|| page("The client_id parameter is missing."))
}

/// RFC 9126 §4: the reference (the random part of a `request_uri` this
/// server issued) whose pushed parameters replace every parameter of the
/// request but `client_id`, for the client found for [`client_id`]; `None`
/// when the request carries no `request_uri` and so its own parameters. The
/// caller loads the pushed parameters by the reference and the client
/// (once: RFC 9126 §4 makes a `request_uri` one-time use), and answers
/// [`refuse_request_uri`] when there are none.
pub fn pushed_reference<'p, C: Registration>(
    params: &'p Params,
    client: Option<&C>,
) -> Result<Option<&'p str>, Rejection> {
    if !params.contains("request_uri") {
        return Ok(None);
    }
    let Some(client) = client else {
        return Err(unknown_client());
    };
    let reference = match params.get("request_uri") {
        Ok(Some(uri)) => uri.strip_prefix(REQUEST_URI_PREFIX),
        Ok(None) => return Ok(None),
        Err(_) => return Err(refuse_request_uri(client, "request_uri is repeated")),
    };
    match reference {
        Some(reference) if !reference.is_empty() => Ok(Some(reference)),
        _ => Err(refuse_request_uri(
            client,
            "request_uri is not one this server issued",
        )),
    }
}

/// RFC 9126 §4, RFC 9101 §7.1: a `request_uri` that names no pushed request
/// of the client (unknown, used, expired, another client's, malformed) is
/// `invalid_request_uri`. The request's other parameters are ignored (RFC
/// 9126 §4), so its `redirect_uri`, `state` and `response_mode` are not
/// used: the error goes to the redirect URI the registration alone makes
/// unambiguous (the client's only one, RFC 6749 §3.1.2.3), in the query,
/// and is otherwise shown to the user.
pub fn refuse_request_uri<C: Registration>(client: &C, description: &str) -> Rejection {
    let error = OAuthError::new(ErrorCode::InvalidRequestUri, description);
    match choose_redirect_uri(&Params::default(), &client.registration()) {
        Ok((redirect_uri, _)) => Rejection::Redirect {
            redirect_uri,
            response_mode: ResponseMode::Query,
            state: None,
            error,
        },
        Err(_) => Rejection::Page(OAuthError {
            description: Some(
                "The request_uri is unknown, expired, already used or another application's."
                    .to_owned(),
            ),
            ..error
        }),
    }
}

/// Checks the request of the client found for [`client_id`] (`None`: no such
/// client), in the order RFC 6749 §4.1.2.1 requires: nothing is redirected
/// until the client and its redirect URI are known good. `arrival` says
/// whether the parameters were pushed (RFC 9126).
pub fn validate<C: Registration, R: ResponseTypes>(
    params: &Params,
    client: Option<C>,
    response_types: &R,
    arrival: Arrival,
) -> Result<Validated<C, R::Grant>, Rejection> {
    let Some(client) = client else {
        return Err(unknown_client());
    };
    let registration = client.registration();
    let (redirect_uri, redirect_uri_choice) = choose_redirect_uri(params, &registration)?;

    // From here on, errors go back to the client.
    let state = params.get("state").ok().flatten().map(str::to_owned);
    let fail = |response_mode: ResponseMode, error: OAuthError| Rejection::Redirect {
        redirect_uri: redirect_uri.clone(),
        response_mode,
        state: state.clone(),
        error,
    };
    let requested_mode = params
        .get("response_mode")
        .ok()
        .flatten()
        .map(|m| redirect::parse_mode(m).ok_or(m));
    // Before the response type is known, an error travels in the mode asked
    // for when that is one the server knows, else in the query.
    let fallback_mode = match requested_mode {
        Some(Ok(mode)) => mode,
        _ => ResponseMode::Query,
    };
    match arrival {
        // RFC 9126 §5, §6: a client that must push (by the server's
        // setting or its own, which its profile switches on: FAPI 2.0 SP
        // §5.3.2.2 item 3) may not send its parameters to the authorization
        // endpoint directly.
        Arrival::Direct { pushed_required }
            if pushed_required || registration.require_pushed_authorization_requests =>
        {
            return Err(fail(
                fallback_mode,
                OAuthError::invalid_request(
                    "pushed authorization requests (RFC 9126) are required: \
                     push the parameters to the pushed authorization request endpoint",
                ),
            ));
        }
        // RFC 9126 §2.1: a pushed request may not refer to another one.
        Arrival::Pushed if params.contains("request_uri") => {
            return Err(fail(
                fallback_mode,
                OAuthError::invalid_request("request_uri cannot be pushed"),
            ));
        }
        Arrival::Direct { .. } | Arrival::Pushed => {}
    }
    let response_type = match params.get("response_type") {
        Ok(Some(value)) => value,
        Ok(None) => {
            return Err(fail(
                fallback_mode,
                OAuthError::invalid_request("response_type is missing"),
            ));
        }
        Err(error) => return Err(fail(fallback_mode, error)),
    };
    let Some((grant, default_mode)) = response_types.find(response_type) else {
        return Err(fail(
            fallback_mode,
            OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                format!("response type {response_type} is not supported"),
            ),
        ));
    };
    let words: Vec<String> = response_type.split(' ').map(str::to_owned).collect();
    let response_mode = match requested_mode {
        None => default_mode,
        Some(Ok(mode)) => mode,
        Some(Err(unknown)) => {
            return Err(fail(
                default_mode,
                OAuthError::invalid_request(format!("response_mode {unknown} is not supported")),
            ));
        }
    };
    // RFC 8707 §2: `resource` may repeat; nothing else may.
    if let Some(name) = params.first_repeated_except(&["resource"]) {
        return Err(fail(
            response_mode,
            OAuthError::invalid_request(format!("parameter {name} is repeated")),
        ));
    }
    // Multiple Response Types §2.1: tokens never travel in a query string.
    if response_mode == ResponseMode::Query && words.iter().any(|w| w == "token") {
        return Err(fail(
            default_mode,
            OAuthError::invalid_request("response_mode query cannot carry tokens"),
        ));
    }
    for (word, grant_type) in [("code", "authorization_code"), ("token", "implicit")] {
        let registered = || registration.grant_types.iter().any(|g| g == grant_type);
        if words.iter().any(|w| w == word) && !registered() {
            return Err(fail(
                response_mode,
                OAuthError::unauthorized_client(format!(
                    "the client is not registered for {grant_type}"
                )),
            ));
        }
    }
    // A client profile's rules (FAPI 2.0: `code` only, in the query, PKCE
    // with S256, `redirect_uri` sent).
    if let Some(profile) = registration.profile {
        profile
            .check_authorization_request(params, &words, response_mode)
            .map_err(|e| fail(response_mode, e))?;
    }
    // Repeated parameters were refused above, so `scope` reads as one value.
    let scope = match params.get("scope").ok().flatten() {
        Some(value) => {
            let requested = scope::parse(value).map_err(|e| fail(response_mode, e))?;
            scope::check_allowed(&requested, registration.scopes)
                .map_err(|e| fail(response_mode, e))?;
            requested
        }
        // RFC 6749 §3.3: a missing scope means the pre-defined default, every registered scope.
        None => registration.scopes.to_vec(),
    };
    let resources = resource::audience(
        &resource::requested(params),
        resource::Allowed::Registered(registration.resources),
    )
    .map_err(|e| fail(response_mode, e))?;
    // OIDC Core §3.1.2.1: the sign-in parameters are read on every request
    // (signing in is the host's, whatever the scope).
    let sign_in = openid_request::parse(params).map_err(|e| fail(response_mode, e))?;
    Ok(Validated {
        client,
        grant,
        response_type: words,
        redirect_uri,
        redirect_uri_choice,
        response_mode,
        state,
        scope,
        resources,
        sign_in,
    })
}

/// RFC 6749 §3.1.2.3: a sent `redirect_uri` must match a registered one
/// (exactly, or a loopback one on any port per RFC 8252 §7.3); without it,
/// only a single registered one is unambiguous. Every failure is a page.
fn choose_redirect_uri(
    params: &Params,
    client: &RegisteredClient<'_>,
) -> Result<(String, RedirectUriChoice), Rejection> {
    let sent = params
        .get("redirect_uri")
        .map_err(|_| page("The redirect_uri parameter is repeated."))?;
    match sent {
        Some(requested) => match redirect::find_registered(requested, client.redirect_uris) {
            Some(registered) if registered == requested => {
                Ok((requested.to_owned(), RedirectUriChoice::Exact))
            }
            Some(_) => Ok((requested.to_owned(), RedirectUriChoice::LoopbackPort)),
            None => Err(page(
                "The redirect_uri is not registered for this application.",
            )),
        },
        None => match client.redirect_uris {
            [only] => Ok((only.clone(), RedirectUriChoice::OnlyRegistered)),
            [] => Err(page("The application has no registered redirect URI.")),
            _ => Err(page("The redirect_uri parameter is missing.")),
        },
    }
}

fn unknown_client() -> Rejection {
    Rejection::Page(OAuthError::invalid_client(
        "The application that sent you here is not registered.",
    ))
}

fn page(message: &str) -> Rejection {
    Rejection::Page(OAuthError::invalid_request(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    /// A client's registration as the store would keep it.
    struct Client {
        client_id: &'static str,
        redirect_uris: Vec<String>,
        grant_types: Vec<String>,
        scopes: Vec<String>,
        resources: Vec<String>,
        profile: Option<Profile>,
        require_pushed_authorization_requests: bool,
    }

    /// The registered clients, each named for what sets it apart.
    fn clients() -> Vec<Client> {
        let client = |client_id, redirect_uris: &[&str], grant_types: &[&str]| Client {
            client_id,
            redirect_uris: strings(redirect_uris),
            grant_types: strings(grant_types),
            scopes: strings(&["read", "write"]),
            resources: Vec::new(),
            profile: None,
            require_pushed_authorization_requests: false,
        };
        vec![
            client(
                "web",
                &["https://web.example/cb"],
                &["authorization_code", "implicit"],
            ),
            client(
                "native",
                &["http://127.0.0.1:8000/cb", "com.example.app:/cb"],
                &["authorization_code"],
            ),
            client(
                "two_uris",
                &["https://a.example/cb", "https://b.example/cb"],
                &["authorization_code"],
            ),
            client("no_uri", &[], &["authorization_code"]),
            client("implicit_only", &["https://spa.example/cb"], &["implicit"]),
            Client {
                resources: strings(&["https://api.example/", "https://billing.example/v1"]),
                ..client(
                    "with_resources",
                    &["https://rs.example/cb"],
                    &["authorization_code"],
                )
            },
            // Registered as `registration.rs` stores a fapi2 client: the
            // profile switches pushing on.
            Client {
                profile: Some(Profile::Fapi2),
                require_pushed_authorization_requests: true,
                ..client(
                    "fapi",
                    &["https://bank.example/cb"],
                    &["authorization_code"],
                )
            },
            Client {
                require_pushed_authorization_requests: true,
                ..client(
                    "must_push",
                    &["https://push.example/cb"],
                    &["authorization_code"],
                )
            },
        ]
    }

    fn find<'a>(clients: &'a [Client], client_id: &str) -> Option<RegisteredClient<'a>> {
        let client = clients.iter().find(|c| c.client_id == client_id)?;
        Some(RegisteredClient {
            client_id: client.client_id,
            redirect_uris: &client.redirect_uris,
            grant_types: &client.grant_types,
            scopes: &client.scopes,
            resources: &client.resources,
            profile: client.profile,
            require_pushed_authorization_requests: client.require_pushed_authorization_requests,
        })
    }

    /// The pushed requests the tests' store holds: the reference of the
    /// `request_uri`, the client that pushed it, its parameters.
    const PUSHED: [(&str, &str, &str); 4] = [
        ("r1", "web", "response_type=code&scope=read&state=pushed"),
        (
            "r2",
            "native",
            "response_type=code&redirect_uri=http://127.0.0.1:8000/cb&response_mode=form_post",
        ),
        ("r3", "must_push", "response_type=code&state=p"),
        (
            "nested",
            "web",
            "response_type=code&request_uri=urn:ietf:params:oauth:request_uri:r1",
        ),
    ];

    /// The response types on offer, each answered by the grant of that name.
    struct Offered(&'static [(&'static str, ResponseMode)]);

    impl ResponseTypes for Offered {
        type Grant = &'static str;
        fn find(&self, response_type: &str) -> Option<(&'static str, ResponseMode)> {
            self.0
                .iter()
                .find(|(offered, _)| *offered == response_type)
                .copied()
        }
    }

    const OFFERED: Offered = Offered(&[
        ("code", ResponseMode::Query),
        ("token", ResponseMode::Fragment),
        ("code token", ResponseMode::Fragment),
    ]);

    /// One line for an outcome, every field in it, so a row reads as prose:
    /// `page <error>: <description>`, `redirect <error> to <uri> in <mode>
    /// [state <state>]: <description>`, or `accept <grant> for <client> to
    /// <uri> (<choice>) in <mode> [state <state>] scope <scope> [resource
    /// <resources>]`.
    fn summary(outcome: Result<Validated<RegisteredClient<'_>, &str>, Rejection>) -> String {
        let state = |state: &Option<String>| match state {
            Some(state) => format!(" state {state}"),
            None => String::new(),
        };
        match outcome {
            Err(Rejection::Page(error)) => format!(
                "page {}: {}",
                error.code,
                error.description.unwrap_or_default()
            ),
            Err(Rejection::Redirect {
                redirect_uri,
                response_mode,
                state: sent_state,
                error,
            }) => format!(
                "redirect {} to {redirect_uri} in {}{}: {}",
                error.code,
                redirect::mode_name(response_mode),
                state(&sent_state),
                error.description.unwrap_or_default()
            ),
            Ok(request) => {
                let resources = match request.resources.as_slice() {
                    [] => String::new(),
                    resources => format!(" resource {}", resources.join(" ")),
                };
                let choice = match request.redirect_uri_choice {
                    RedirectUriChoice::Exact => "exact",
                    RedirectUriChoice::LoopbackPort => "loopback port",
                    RedirectUriChoice::OnlyRegistered => "only registered",
                };
                format!(
                    "accept {} for {} to {} ({choice}) in {}{} scope {}{resources}{}",
                    request.response_type.join("+"),
                    request.client.client_id,
                    request.redirect_uri,
                    redirect::mode_name(request.response_mode),
                    state(&request.state),
                    request.scope.join(" "),
                    sign_in_summary(&request.sign_in),
                )
            }
        }
    }

    /// What a request asks of the sign-in, when it asks anything:
    /// ` prompt <words> [max_age <n>] [login_hint <hint>] [acr]`.
    fn sign_in_summary(sign_in: &SignInRequest) -> String {
        let prompt: Vec<&str> = [
            (sign_in.prompt_none, "none"),
            (sign_in.prompt_login, "login"),
            (sign_in.prompt_consent, "consent"),
        ]
        .into_iter()
        .filter_map(|(asked, word)| asked.then_some(word))
        .collect();
        let mut out = String::new();
        if !prompt.is_empty() {
            out.push_str(&format!(" prompt {}", prompt.join(" ")));
        }
        if let Some(max_age) = sign_in.max_age {
            out.push_str(&format!(" max_age {max_age}"));
        }
        if let Some(hint) = &sign_in.login_hint {
            out.push_str(&format!(" login_hint {hint}"));
        }
        if sign_in.acr_requested {
            out.push_str(" acr");
        }
        out
    }

    /// Runs the stages the endpoint runs: `client_id`, the lookup, the
    /// pushed request (taken from [`PUSHED`] when the reference and the
    /// client match), `validate`.
    fn outcome(query: &str) -> String {
        let clients = clients();
        let params = Params::parse(query.as_bytes()).expect(query);
        let found = match client_id(&params) {
            Ok(client_id) => find(&clients, client_id),
            Err(rejection) => return summary(Err(rejection)),
        };
        let reference = match pushed_reference(&params, found.as_ref()) {
            Err(rejection) => return summary(Err(rejection)),
            Ok(reference) => reference.map(str::to_owned),
        };
        let (params, arrival) = match reference {
            None => (
                params,
                Arrival::Direct {
                    pushed_required: false,
                },
            ),
            Some(reference) => {
                let client = found.as_ref().expect("a reference only for a known client");
                let pushed = PUSHED.iter().find(|(pushed_as, pushed_by, _)| {
                    *pushed_as == reference && *pushed_by == client.client_id
                });
                let Some((_, _, pushed)) = pushed else {
                    let description = "request_uri is unknown, used or expired";
                    return summary(Err(refuse_request_uri(client, description)));
                };
                (Params::parse(pushed.as_bytes()).unwrap(), Arrival::Pushed)
            }
        };
        let validated = validate(&params, found, &OFFERED, arrival);
        if let Ok(request) = &validated {
            // The grant is the one offered for the response type as sent.
            assert_eq!(request.grant, request.response_type.join(" "), "{query}");
        }
        summary(validated)
    }

    fn check(query: &str, expect: &str) {
        assert_eq!(outcome(query), expect, "{query}");
    }

    #[test]
    fn the_client_is_known_before_anything_is_redirected() {
        // RFC 6749 §4.1.2.1: a missing client identifier is shown to the user.
        check(
            "response_type=code",
            "page invalid_request: The client_id parameter is missing.",
        );
        // RFC 6749 §3.1: a parameter sent without a value is omitted.
        check(
            "client_id=&response_type=code",
            "page invalid_request: The client_id parameter is missing.",
        );
        // RFC 6749 §3.1: parameters must not be repeated; the client is then unknown.
        check(
            "client_id=web&client_id=native&response_type=code",
            "page invalid_request: The client_id parameter is repeated.",
        );
        // RFC 6749 §4.1.2.1: an invalid client identifier is shown to the user.
        check(
            "client_id=stranger&response_type=code&redirect_uri=https://web.example/cb",
            "page invalid_client: The application that sent you here is not registered.",
        );
    }

    #[test]
    fn the_redirect_uri_is_a_registered_one() {
        // RFC 6749 §3.1.2.3: a sent redirect_uri is compared with the registered ones as strings.
        check(
            "client_id=web&response_type=code&redirect_uri=https://web.example/cb",
            "accept code for web to https://web.example/cb (exact) in query scope read write",
        );
        // RFC 6749 §3.1.2.4, §4.1.2.1, RFC 9700 §4.1.3: a mismatching redirect_uri is shown, never followed.
        check(
            "client_id=web&response_type=code&redirect_uri=https://web.example/cb/other",
            "page invalid_request: The redirect_uri is not registered for this application.",
        );
        // RFC 8252 §7.3: a loopback redirect URI may use any port.
        check(
            "client_id=native&response_type=code&redirect_uri=http://127.0.0.1:51234/cb",
            "accept code for native to http://127.0.0.1:51234/cb (loopback port) in query scope read write",
        );
        // RFC 8252 §7.1: a private-use scheme is compared exactly like any other URI.
        check(
            "client_id=native&response_type=code&redirect_uri=com.example.app:/cb",
            "accept code for native to com.example.app:/cb (exact) in query scope read write",
        );
        // RFC 6749 §3.1.2.3: without redirect_uri, a single registered one is used.
        check(
            "client_id=web&response_type=code",
            "accept code for web to https://web.example/cb (only registered) in query scope read write",
        );
        // RFC 6749 §3.1.2.3: with several registered, redirect_uri is required.
        check(
            "client_id=two_uris&response_type=code",
            "page invalid_request: The redirect_uri parameter is missing.",
        );
        // RFC 6749 §3.1.2.2, §3.1.2.4: with no registered redirect URI there is nowhere safe to send a response.
        check(
            "client_id=no_uri&response_type=code",
            "page invalid_request: The application has no registered redirect URI.",
        );
        // RFC 6749 §3.1: a repeated redirect_uri cannot be trusted, so it is shown.
        check(
            "client_id=two_uris&response_type=code&redirect_uri=https://a.example/cb&redirect_uri=https://b.example/cb",
            "page invalid_request: The redirect_uri parameter is repeated.",
        );
    }

    #[test]
    fn the_response_type_names_an_offered_grant_the_client_registered() {
        // RFC 6749 §4.1.2.1: once the redirect URI is good, errors go back to the client with state.
        check(
            "client_id=web&state=xyz",
            "redirect invalid_request to https://web.example/cb in query state xyz: response_type is missing",
        );
        // RFC 6749 §3.1: a parameter sent without a value is omitted.
        check(
            "client_id=web&response_type=",
            "redirect invalid_request to https://web.example/cb in query: response_type is missing",
        );
        // RFC 6749 §3.1: parameters must not be repeated.
        check(
            "client_id=web&response_type=code&response_type=token",
            "redirect invalid_request to https://web.example/cb in query: parameter response_type is repeated",
        );
        // RFC 6749 §3.1.1, §4.1.2.1: a response type no grant offers is unsupported_response_type.
        check(
            "client_id=web&response_type=id_token&state=xyz",
            "redirect unsupported_response_type to https://web.example/cb in query state xyz: response type id_token is not supported",
        );
        // Multiple Response Types §2.1: before the grant is known, a known requested mode carries the error.
        check(
            "client_id=web&response_type=id_token&response_mode=form_post",
            "redirect unsupported_response_type to https://web.example/cb in form_post: response type id_token is not supported",
        );
        // RFC 6749 §4.2.1: the implicit grant's token goes in the fragment.
        check(
            "client_id=web&response_type=token",
            "accept token for web to https://web.example/cb (only registered) in fragment scope read write",
        );
        // Multiple Response Types §3, §5: several words name one combined response type, default fragment.
        check(
            "client_id=web&response_type=code%20token",
            "accept code+token for web to https://web.example/cb (only registered) in fragment scope read write",
        );
        // RFC 6749 §4.1.2.1, RFC 7591 §2.1: code needs the client registered for authorization_code.
        check(
            "client_id=implicit_only&response_type=code&state=xyz",
            "redirect unauthorized_client to https://spa.example/cb in query state xyz: the client is not registered for authorization_code",
        );
        // RFC 6749 §4.2.2.1, RFC 7591 §2.1: token needs the client registered for implicit.
        check(
            "client_id=native&response_type=token&redirect_uri=com.example.app:/cb",
            "redirect unauthorized_client to com.example.app:/cb in fragment: the client is not registered for implicit",
        );
        // Multiple Response Types §3, RFC 7591 §2.1: every word's grant type must be registered.
        check(
            "client_id=implicit_only&response_type=code%20token",
            "redirect unauthorized_client to https://spa.example/cb in fragment: the client is not registered for authorization_code",
        );
    }

    #[test]
    fn the_response_mode_never_puts_tokens_in_a_query() {
        // Multiple Response Types §2.1: response_mode overrides the response type's default.
        check(
            "client_id=web&response_type=code&response_mode=fragment",
            "accept code for web to https://web.example/cb (only registered) in fragment scope read write",
        );
        // Form Post Response Mode §2: form_post is a response mode.
        check(
            "client_id=web&response_type=token&response_mode=form_post",
            "accept token for web to https://web.example/cb (only registered) in form_post scope read write",
        );
        // Multiple Response Types §2.1: an unknown response_mode is refused in the default mode.
        check(
            "client_id=web&response_type=token&response_mode=bogus&state=xyz",
            "redirect invalid_request to https://web.example/cb in fragment state xyz: response_mode bogus is not supported",
        );
        // Multiple Response Types §2.1: an unknown mode is not used before the grant is known either.
        check(
            "client_id=web&response_type=id_token&response_mode=bogus",
            "redirect unsupported_response_type to https://web.example/cb in query: response type id_token is not supported",
        );
        // Multiple Response Types §2.1: the query mode must not carry an access token.
        check(
            "client_id=web&response_type=token&response_mode=query&state=xyz",
            "redirect invalid_request to https://web.example/cb in fragment state xyz: response_mode query cannot carry tokens",
        );
        // Multiple Response Types §2.1: nor may a combined response type that issues one.
        check(
            "client_id=web&response_type=code%20token&response_mode=query",
            "redirect invalid_request to https://web.example/cb in fragment: response_mode query cannot carry tokens",
        );
    }

    #[test]
    fn no_parameter_repeats() {
        // RFC 6749 §3.1: a repeated parameter is refused in the mode the request settled on.
        check(
            "client_id=web&response_type=token&foo=1&foo=2",
            "redirect invalid_request to https://web.example/cb in fragment: parameter foo is repeated",
        );
        // RFC 6749 §3.1: a repeated response_mode is not used; the default carries the error.
        check(
            "client_id=web&response_type=code&response_mode=fragment&response_mode=form_post",
            "redirect invalid_request to https://web.example/cb in query: parameter response_mode is repeated",
        );
        // RFC 6749 §3.1: a repeated state is not sent back.
        check(
            "client_id=web&response_type=code&state=a&state=b",
            "redirect invalid_request to https://web.example/cb in query: parameter state is repeated",
        );
        // RFC 6749 §3.1: a repeated scope is refused like any other.
        check(
            "client_id=web&response_type=code&scope=read&scope=write",
            "redirect invalid_request to https://web.example/cb in query: parameter scope is repeated",
        );
    }

    #[test]
    fn the_scope_is_registered_or_the_default() {
        // RFC 6749 §3.3: the client may ask for part of what it registered.
        check(
            "client_id=web&response_type=code&scope=write&state=xyz",
            "accept code for web to https://web.example/cb (only registered) in query state xyz scope write",
        );
        // RFC 6749 §3.3: without scope, the pre-defined default (every registered scope).
        check(
            "client_id=web&response_type=code",
            "accept code for web to https://web.example/cb (only registered) in query scope read write",
        );
        // RFC 6749 §3.3: scope tokens are separated by single spaces.
        check(
            "client_id=web&response_type=code&scope=read%20%20write",
            "redirect invalid_scope to https://web.example/cb in query: the scope is malformed",
        );
        // RFC 6749 §4.1.2.1: a scope beyond the registration is invalid_scope.
        check(
            "client_id=web&response_type=token&scope=read%20admin&state=xyz",
            "redirect invalid_scope to https://web.example/cb in fragment state xyz: scope admin is not allowed for this client",
        );
    }

    #[test]
    fn the_resources_are_registered_ones() {
        // RFC 8707 §2: a registered resource is authorized for the grant.
        check(
            "client_id=with_resources&response_type=code&resource=https://api.example/",
            "accept code for with_resources to https://rs.example/cb (only registered) in query scope read write resource https://api.example/",
        );
        // RFC 8707 §2: resource may repeat at the authorization endpoint.
        check(
            "client_id=with_resources&response_type=code&resource=https://api.example/&resource=https://billing.example/v1",
            "accept code for with_resources to https://rs.example/cb (only registered) in query scope read write resource https://api.example/ https://billing.example/v1",
        );
        // RFC 9068 §3: without resource, the grant covers every registered resource.
        check(
            "client_id=with_resources&response_type=code",
            "accept code for with_resources to https://rs.example/cb (only registered) in query scope read write resource https://api.example/ https://billing.example/v1",
        );
        // RFC 8707 §2: an unregistered resource is invalid_target, sent back to the client.
        check(
            "client_id=with_resources&response_type=code&resource=https://evil.example/&state=xyz",
            "redirect invalid_target to https://rs.example/cb in query state xyz: resource https://evil.example/ is not registered for the client",
        );
        // RFC 8707 §2: a resource that is not an absolute URI is invalid_target.
        check(
            "client_id=with_resources&response_type=code&resource=api",
            "redirect invalid_target to https://rs.example/cb in query: resource api is not an absolute uri",
        );
        // RFC 8707 §2: a resource with a fragment is invalid_target.
        check(
            "client_id=with_resources&response_type=code&resource=https://api.example/%23top",
            "redirect invalid_target to https://rs.example/cb in query: resource https://api.example/#top must not contain a fragment",
        );
        // A client that registered no resource may not name one.
        check(
            "client_id=web&response_type=token&resource=https://api.example/",
            "redirect invalid_target to https://web.example/cb in fragment: resource https://api.example/ is not registered for the client",
        );
        // RFC 6749 §3.1: only resource may repeat; another repeated parameter still fails.
        check(
            "client_id=with_resources&response_type=code&resource=https://api.example/&state=a&state=b",
            "redirect invalid_request to https://rs.example/cb in query: parameter state is repeated",
        );
    }

    #[test]
    fn the_openid_sign_in_parameters_are_read() {
        // OIDC Core §3.1.2.1: prompt is a space-separated list.
        check(
            "client_id=web&response_type=code&scope=read&prompt=login%20consent",
            "accept code for web to https://web.example/cb (only registered) in query scope read prompt login consent",
        );
        check(
            "client_id=web&response_type=code&scope=read&prompt=none&state=s",
            "accept code for web to https://web.example/cb (only registered) in query state s scope read prompt none",
        );
        // OIDC Core §3.1.2.1: none with any other value is an error.
        check(
            "client_id=web&response_type=code&prompt=none%20login&state=s",
            "redirect invalid_request to https://web.example/cb in query state s: prompt none cannot be combined with another value",
        );
        check(
            "client_id=web&response_type=code&prompt=select_account%20none",
            "redirect invalid_request to https://web.example/cb in query: prompt none cannot be combined with another value",
        );
        // OIDC Core §3.1.2.1 lets the server ignore a value it does not
        // offer: select_account (a session holds one account) is ignored.
        check(
            "client_id=web&response_type=code&scope=read&prompt=select_account",
            "accept code for web to https://web.example/cb (only registered) in query scope read",
        );
        check(
            "client_id=web&response_type=code&scope=read&prompt=select_account%20login",
            "accept code for web to https://web.example/cb (only registered) in query scope read prompt login",
        );
        // A list with an empty value is malformed.
        check(
            "client_id=web&response_type=code&prompt=login%20%20consent",
            "redirect invalid_request to https://web.example/cb in query: prompt is malformed",
        );
        // RFC 6749 §3.1: prompt may not repeat.
        check(
            "client_id=web&response_type=code&prompt=login&prompt=consent",
            "redirect invalid_request to https://web.example/cb in query: parameter prompt is repeated",
        );
        // OIDC Core §3.1.2.1: max_age is a non-negative integer of seconds.
        check(
            "client_id=web&response_type=code&scope=read&max_age=0",
            "accept code for web to https://web.example/cb (only registered) in query scope read max_age 0",
        );
        check(
            "client_id=web&response_type=code&scope=read&max_age=3600",
            "accept code for web to https://web.example/cb (only registered) in query scope read max_age 3600",
        );
        for bad in ["-1", "1.5", "abc", "%2B5", "99999999999999999999"] {
            check(
                &format!("client_id=web&response_type=code&max_age={bad}&state=s"),
                "redirect invalid_request to https://web.example/cb in query state s: max_age is not a non-negative integer",
            );
        }
        // OIDC Core §3.1.2.1: login_hint pre-fills the sign-in; a hint
        // longer than a username is dropped.
        check(
            "client_id=web&response_type=code&scope=read&login_hint=alice%40example.org",
            "accept code for web to https://web.example/cb (only registered) in query scope read login_hint alice@example.org",
        );
        check(
            &format!(
                "client_id=web&response_type=code&scope=read&login_hint={}",
                "a".repeat(256)
            ),
            "accept code for web to https://web.example/cb (only registered) in query scope read",
        );
        // OIDC Core §3.1.2.1: acr_values asks that the ID token state acr.
        check(
            "client_id=web&response_type=code&scope=read&acr_values=urn:grantbox:acr:password",
            "accept code for web to https://web.example/cb (only registered) in query scope read acr",
        );
        // An oversized id_token_hint is refused before it is verified.
        check(
            &format!(
                "client_id=web&response_type=code&id_token_hint={}",
                "a".repeat(8193)
            ),
            "redirect invalid_request to https://web.example/cb in query: id_token_hint is too long",
        );
        // OIDC Core §3.1.2.1 on the code flow: the ID-token response types
        // this server does not offer are unsupported_response_type.
        for response_type in ["id_token", "code%20id_token", "id_token%20token"] {
            check(
                &format!("client_id=web&response_type={response_type}&scope=read&state=s"),
                &format!(
                    "redirect unsupported_response_type to https://web.example/cb in query state s: response type {} is not supported",
                    response_type.replace("%20", " ")
                ),
            );
        }
    }

    #[test]
    fn a_pushed_request_replaces_the_parameters_once_found() {
        let uri = |reference: &str| format!("request_uri={REQUEST_URI_PREFIX}{reference}");
        // RFC 9126 §4: the pushed parameters are the request.
        check(
            &format!("client_id=web&{}", uri("r1")),
            "accept code for web to https://web.example/cb (only registered) in query state pushed scope read",
        );
        // RFC 9126 §4: every other parameter of the request is ignored.
        check(
            &format!(
                "client_id=web&{}&response_type=token&scope=write&state=mine&redirect_uri=https://evil.example/",
                uri("r1")
            ),
            "accept code for web to https://web.example/cb (only registered) in query state pushed scope read",
        );
        // The pushed redirect_uri and response_mode are those of the request.
        check(
            &format!("client_id=native&{}", uri("r2")),
            "accept code for native to http://127.0.0.1:8000/cb (exact) in form_post scope read write",
        );
        // RFC 9126 §6: a client that must push may use its pushed request.
        check(
            &format!("client_id=must_push&{}", uri("r3")),
            "accept code for must_push to https://push.example/cb (only registered) in query state p scope read write",
        );
        // RFC 9126 §2.1: a pushed request may not carry a request_uri itself
        // (the endpoint refuses it when pushed; this row is the same rule).
        check(
            &format!("client_id=web&{}", uri("nested")),
            "redirect invalid_request to https://web.example/cb in query: request_uri cannot be pushed",
        );
    }

    #[test]
    fn a_request_uri_naming_no_pushed_request_is_invalid_request_uri() {
        let uri = |reference: &str| format!("request_uri={REQUEST_URI_PREFIX}{reference}");
        // RFC 9126 §4, RFC 9101 §7.1: unknown, used or expired; the request's
        // state is one of the ignored parameters.
        check(
            &format!("client_id=web&{}&state=s", uri("unknown")),
            "redirect invalid_request_uri to https://web.example/cb in query: request_uri is unknown, used or expired",
        );
        // RFC 9126 §4: a request_uri is bound to the client that pushed it.
        check(
            &format!("client_id=implicit_only&{}", uri("r1")),
            "redirect invalid_request_uri to https://spa.example/cb in query: request_uri is unknown, used or expired",
        );
        // RFC 9126 §2.2: this server's request_uri values are its URNs.
        check(
            "client_id=web&request_uri=https://rp.example/request.jwt",
            "redirect invalid_request_uri to https://web.example/cb in query: request_uri is not one this server issued",
        );
        check(
            &format!("client_id=web&{}", uri("")),
            "redirect invalid_request_uri to https://web.example/cb in query: request_uri is not one this server issued",
        );
        // RFC 6749 §3.1: parameters must not repeat.
        check(
            &format!("client_id=web&{}&{}", uri("r1"), uri("r1")),
            "redirect invalid_request_uri to https://web.example/cb in query: request_uri is repeated",
        );
        // RFC 6749 §4.1.2.1: without one registered redirect URI, nothing
        // names where the error may go (the request's own is ignored).
        check(
            &format!(
                "client_id=two_uris&{}&redirect_uri=https://a.example/cb",
                uri("r1")
            ),
            "page invalid_request_uri: The request_uri is unknown, expired, already used or another application's.",
        );
        // The client is known before anything else, a pushed request or not.
        check(
            &format!("client_id=stranger&{}", uri("r1")),
            "page invalid_client: The application that sent you here is not registered.",
        );
        check(
            &uri("r1"),
            "page invalid_request: The client_id parameter is missing.",
        );
    }

    #[test]
    fn a_client_that_must_push_cannot_send_its_parameters_directly() {
        // RFC 9126 §6: the client's registration requires pushed requests;
        // the redirect URI is known good, so the error goes back with state.
        check(
            "client_id=must_push&response_type=code&state=s",
            "redirect invalid_request to https://push.example/cb in query state s: pushed authorization requests (RFC 9126) are required: push the parameters to the pushed authorization request endpoint",
        );
        // RFC 6749 §4.1.2.1: an untrusted redirect URI is still a page first.
        check(
            "client_id=must_push&response_type=code&redirect_uri=https://evil.example/cb",
            "page invalid_request: The redirect_uri is not registered for this application.",
        );
        // RFC 9126 §5: the server's require_pushed_authorization_requests
        // holds every client to it.
        let clients = clients();
        let params = Params::parse(b"client_id=web&response_type=code&state=s").unwrap();
        let required = Arrival::Direct {
            pushed_required: true,
        };
        assert_eq!(
            summary(validate(&params, find(&clients, "web"), &OFFERED, required)),
            "redirect invalid_request to https://web.example/cb in query state s: pushed authorization requests (RFC 9126) are required: push the parameters to the pushed authorization request endpoint",
        );
        assert_eq!(
            summary(validate(
                &params,
                find(&clients, "web"),
                &OFFERED,
                Arrival::Pushed
            )),
            "accept code for web to https://web.example/cb (only registered) in query state s scope read write",
        );
    }

    #[test]
    fn a_later_refusal_goes_where_the_request_said() {
        let clients = clients();
        let params = Params::parse(
            b"client_id=native&response_type=code&redirect_uri=http://127.0.0.1:9/cb&response_mode=form_post&state=s",
        )
        .unwrap();
        let direct = Arrival::Direct {
            pushed_required: false,
        };
        let request = validate(&params, find(&clients, "native"), &OFFERED, direct).unwrap();
        // RFC 6749 §4.1.3: the token request repeats the redirect_uri that was sent.
        assert_eq!(request.sent_redirect_uri(), Some("http://127.0.0.1:9/cb"));
        // RFC 6749 §4.1.2.1: an error the grant finds goes back like the request's own.
        assert_eq!(
            request.reject(OAuthError::server_error()),
            Rejection::Redirect {
                redirect_uri: "http://127.0.0.1:9/cb".into(),
                response_mode: ResponseMode::FormPost,
                state: Some("s".into()),
                error: OAuthError::server_error(),
            }
        );
        let params = Params::parse(b"client_id=web&response_type=code").unwrap();
        let request = validate(&params, find(&clients, "web"), &OFFERED, direct).unwrap();
        // RFC 6749 §4.1.3: a redirect_uri left out is left out of the token request too.
        assert_eq!(request.sent_redirect_uri(), None);
        assert_eq!(request.redirect_uri, "https://web.example/cb");
    }

    #[test]
    fn a_fapi2_client_asks_for_a_code_in_the_query_with_pkce_s256() {
        const PKCE: &str =
            "code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
        const CB: &str = "redirect_uri=https://bank.example/cb";
        // The parameters as if pushed (the request_uri stage is the other test's).
        let clients = clients();
        let check = |query: &str, expect: &str| {
            let params = Params::parse(query.as_bytes()).expect(query);
            let found = find(&clients, "fapi");
            let outcome = summary(validate(&params, found, &OFFERED, Arrival::Pushed));
            assert_eq!(outcome, expect, "{query}");
        };
        // FAPI 2.0 SP §5.3.2.2 item 3: not pushed, it is refused.
        assert_eq!(
            outcome(&format!(
                "client_id=fapi&response_type=code&{CB}&{PKCE}&state=s"
            )),
            "redirect invalid_request to https://bank.example/cb in query state s: pushed authorization requests (RFC 9126) are required: push the parameters to the pushed authorization request endpoint"
        );
        // FAPI 2.0 SP §5.3.2.2: all of it sent, the request is accepted.
        check(
            &format!("client_id=fapi&response_type=code&{CB}&{PKCE}&state=s"),
            "accept code for fapi to https://bank.example/cb (exact) in query state s scope read write",
        );
        // Item 5: PKCE with S256; left out, or plain, goes back to the client.
        check(
            &format!("client_id=fapi&response_type=code&{CB}&state=s"),
            "redirect invalid_request to https://bank.example/cb in query state s: a fapi2 client must send a PKCE code_challenge",
        );
        check(
            &format!(
                "client_id=fapi&response_type=code&{CB}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain"
            ),
            "redirect invalid_request to https://bank.example/cb in query: a fapi2 client must send code_challenge_method=S256",
        );
        // Item 6: redirect_uri sent, even when only one is registered.
        check(
            &format!("client_id=fapi&response_type=code&{PKCE}"),
            "redirect invalid_request to https://bank.example/cb in query: a fapi2 client must send redirect_uri",
        );
        // The response in the query only.
        check(
            &format!("client_id=fapi&response_type=code&{CB}&{PKCE}&response_mode=form_post"),
            "redirect invalid_request to https://bank.example/cb in form_post: a fapi2 client receives its authorization response in the query; response_mode form_post is not allowed",
        );
        // §5.3.2.1 item 2: no implicit (the registration has none either).
        check(
            &format!("client_id=fapi&response_type=token&{CB}&{PKCE}"),
            "redirect unauthorized_client to https://bank.example/cb in fragment: the client is not registered for implicit",
        );
    }
}
