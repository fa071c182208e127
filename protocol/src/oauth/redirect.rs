//! Redirection URIs: exact matching against the registration (RFC 6749
//! §3.1.2.3, RFC 9700 §4.1.3), where only the port of a loopback URI may vary
//! (RFC 8252 §7.3), and encoding of authorization responses (RFC 6749 §4.1.2,
//! §4.2.2, OAuth 2.0 Multiple Response Types §2, Form Post Response Mode).

use super::ResponseMode;

/// Finds the registered URI a requested one matches, by exact string
/// comparison; for `http` loopback IP literals the port is ignored.
pub fn find_registered<'a>(requested: &str, registered: &'a [String]) -> Option<&'a str> {
    if let Some(exact) = registered.iter().find(|r| r.as_str() == requested) {
        return Some(exact);
    }
    let requested_parts = loopback_without_port(requested)?;
    registered
        .iter()
        .find(|r| loopback_without_port(r).as_ref() == Some(&requested_parts))
        .map(String::as_str)
}

/// `http://127.0.0.1:PORT/rest` or `http://[::1]:PORT/rest` split into
/// (host, rest) with the port dropped; anything else is `None`. RFC 8252 §8.3
/// names `localhost` NOT RECOMMENDED, so it gets no port leeway.
fn loopback_without_port(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let (host, after_host) = if let Some(v6) = rest.strip_prefix("[::1]") {
        ("[::1]", v6)
    } else if let Some(v4) = rest.strip_prefix("127.0.0.1") {
        ("127.0.0.1", v4)
    } else {
        return None;
    };
    let path_start = after_host.find(['/', '?']).unwrap_or(after_host.len());
    let (port, path) = after_host.split_at(path_start);
    // A port a socket can listen on: 1 to 65535, in at most five digits.
    let valid_port = port.is_empty()
        || port.strip_prefix(':').is_some_and(|digits| {
            digits.len() <= 5
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse::<u16>().is_ok_and(|port| port != 0)
        });
    if !valid_port {
        return None;
    }
    Some((host, path))
}

/// Whether a redirect URI leads to a native app on the user's device (RFC
/// 8252 §7.1, §7.3): a private-use URI scheme, or `http` on a loopback
/// address or `localhost`. Any app on the device can receive such a
/// redirect, so it proves nothing about which app asked (RFC 8252 §8.6).
pub fn is_native_app_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    if scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return true;
    }
    let Some(authority) = rest.strip_prefix("//") else {
        return false;
    };
    let authority = &authority[..authority.find(['/', '?', '#']).unwrap_or(authority.len())];
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host == "::1" || host.eq_ignore_ascii_case("localhost") || host.starts_with("127.")
}

/// How to send an authorization response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A redirect to this URL.
    Redirect(String),
    /// An auto-submitting form posting `params` to `action` (form_post).
    FormPost {
        action: String,
        params: Vec<(String, String)>,
    },
}

/// Builds the response to `redirect_uri` carrying `params` in `mode`. Query
/// mode keeps the URI's own query parameters (RFC 6749 §3.1.2) and appends.
pub fn deliver(redirect_uri: &str, mode: ResponseMode, params: &[(String, String)]) -> Delivery {
    let encoded = encode(params);
    match mode {
        ResponseMode::Query => {
            let (base, fragment) = match redirect_uri.split_once('#') {
                Some((base, fragment)) => (base, Some(fragment)),
                None => (redirect_uri, None),
            };
            let separator = match base.split_once('?') {
                Some((_, query)) if query.is_empty() || query.ends_with('&') => "",
                Some(_) => "&",
                None => "?",
            };
            let mut url = format!("{base}{separator}{encoded}");
            if let Some(fragment) = fragment {
                url.push('#');
                url.push_str(fragment);
            }
            Delivery::Redirect(url)
        }
        ResponseMode::Fragment => {
            let base = redirect_uri
                .split_once('#')
                .map_or(redirect_uri, |(b, _)| b);
            Delivery::Redirect(format!("{base}#{encoded}"))
        }
        ResponseMode::FormPost => Delivery::FormPost {
            action: redirect_uri.to_owned(),
            params: params.to_vec(),
        },
    }
}

fn encode(params: &[(String, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// Reads `response_mode`.
pub fn parse_mode(value: &str) -> Option<ResponseMode> {
    match value {
        "query" => Some(ResponseMode::Query),
        "fragment" => Some(ResponseMode::Fragment),
        "form_post" => Some(ResponseMode::FormPost),
        _ => None,
    }
}

pub fn mode_name(mode: ResponseMode) -> &'static str {
    match mode {
        ResponseMode::Query => "query",
        ResponseMode::Fragment => "fragment",
        ResponseMode::FormPost => "form_post",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered() -> Vec<String> {
        [
            "https://app.example/cb",
            "http://127.0.0.1:8000/cb",
            "http://[::1]/cb",
            "http://localhost:3000/cb",
            "com.example.app:/cb",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }

    fn check(requested: &str, expect: Option<&str>) {
        assert_eq!(
            find_registered(requested, &registered()),
            expect,
            "{requested}"
        );
    }

    #[test]
    fn matching_is_exact_except_the_loopback_port() {
        check("https://app.example/cb", Some("https://app.example/cb"));
        check("https://app.example/cb/", None);
        check("https://app.example/cb?x=1", None);
        check("https://APP.example/cb", None);
        check("https://app.example/cb#f", None);
        check("https://app.example:443/cb", None);
        check("https://x@app.example/cb", None);
        check(
            "http://127.0.0.1:51234/cb",
            Some("http://127.0.0.1:8000/cb"),
        );
        check("http://127.0.0.1/cb", Some("http://127.0.0.1:8000/cb"));
        check("http://127.0.0.1:51234/cb/other", None);
        check("http://x@127.0.0.1:8000/cb", None);
        check("http://[::1]:4000/cb", Some("http://[::1]/cb"));
        check("http://localhost:3001/cb", None);
        check("http://127.0.0.1:80a/cb", None);
        check("com.example.app:/cb", Some("com.example.app:/cb"));
    }

    #[test]
    fn a_loopback_port_must_be_one_a_socket_can_have() {
        check(
            "http://127.0.0.1:65535/cb",
            Some("http://127.0.0.1:8000/cb"),
        );
        check("http://127.0.0.1:1/cb", Some("http://127.0.0.1:8000/cb"));
        check("http://127.0.0.1:65536/cb", None);
        check("http://127.0.0.1:99999/cb", None);
        check("http://127.0.0.1:0/cb", None);
        check("http://127.0.0.1:/cb", None);
        check("http://127.0.0.1:008000/cb", None);
        check("http://[::1]:4294967297/cb", None);
    }

    #[test]
    fn native_app_uris_are_loopback_or_private_use_schemes() {
        for (uri, native) in [
            ("http://127.0.0.1:8000/cb", true),
            ("http://127.0.0.1/cb", true),
            ("http://127.1.2.3:9/cb", true),
            ("http://[::1]:4000/cb", true),
            ("http://localhost:3000/cb", true),
            ("http://LOCALHOST/cb", true),
            ("com.example.app:/cb", true),
            ("com.example.app://cb", true),
            ("https://app.example/cb", false),
            ("https://127.0.0.1/cb", false),
            ("http://app.example/cb", false),
            ("http://localhost.example/cb", false),
            ("no-scheme", false),
        ] {
            assert_eq!(is_native_app_uri(uri), native, "{uri}");
        }
    }

    #[test]
    fn query_mode_keeps_existing_parameters_and_fragment() {
        let params = vec![
            ("code".to_owned(), "a b".to_owned()),
            ("state".to_owned(), "s&t".to_owned()),
        ];
        assert_eq!(
            deliver(
                "https://a.example/cb?x=1#keep",
                ResponseMode::Query,
                &params
            ),
            Delivery::Redirect("https://a.example/cb?x=1&code=a+b&state=s%26t#keep".into())
        );
        assert_eq!(
            deliver("https://a.example/cb", ResponseMode::Fragment, &params),
            Delivery::Redirect("https://a.example/cb#code=a+b&state=s%26t".into())
        );
        assert!(matches!(
            deliver("https://a.example/cb", ResponseMode::FormPost, &params),
            Delivery::FormPost { .. }
        ));
    }
}
