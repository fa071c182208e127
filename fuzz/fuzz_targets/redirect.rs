//! `redirect::find_registered` on arbitrary strings. Input: UTF-8 text, the
//! first line the requested URI, every further line a registered one.
//! Oracle: a match is one of the registered URIs and either equals the
//! request or both are `http` loopback IP literals (`127.0.0.1`, `[::1]`)
//! that differ in nothing but the port; an exact registration always
//! matches. `redirect::deliver` on the result never panics and keeps the
//! registered URI as its prefix.

#![no_main]

use grantbox_protocol::oauth::ResponseMode;
use grantbox_protocol::oauth::redirect::{Delivery, deliver, find_registered};
use libfuzzer_sys::fuzz_target;

/// `uri` with the port of an `http` loopback IP literal removed, written
/// independently of the code under test; `None` when `uri` is not one.
fn without_loopback_port(uri: &str) -> Option<String> {
    for prefix in ["http://127.0.0.1", "http://[::1]"] {
        let Some(rest) = uri.strip_prefix(prefix) else {
            continue;
        };
        let rest = match rest.strip_prefix(':') {
            Some(port) => {
                let digits = port.bytes().take_while(u8::is_ascii_digit).count();
                // Only a port a socket can have (1..=65535, at most five
                // digits) gets the loopback leeway.
                let valid = (1..=5).contains(&digits)
                    && port[..digits].parse::<u16>().is_ok_and(|port| port != 0);
                if !valid {
                    return None;
                }
                &port[digits..]
            }
            None => rest,
        };
        if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
            return None;
        }
        return Some(format!("{prefix}{rest}"));
    }
    None
}

/// The semantic view of the same oracle: parsed with a URL library, the two
/// are the same loopback URL but for the port.
fn same_but_port(a: &str, b: &str) -> bool {
    let (Ok(mut a), Ok(mut b)) = (url::Url::parse(a), url::Url::parse(b)) else {
        // At least one is not a URL the library accepts (e.g. port > 65535);
        // the string oracle alone decides.
        return true;
    };
    let loopback = |u: &url::Url| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    if a.scheme() != "http" || !loopback(&a) || !loopback(&b) {
        return false;
    }
    a.set_port(None).unwrap();
    b.set_port(None).unwrap();
    a == b && a.username().is_empty() && a.password().is_none()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let requested = lines.next().unwrap_or_default();
    let registered: Vec<String> = lines.map(str::to_owned).collect();

    match find_registered(requested, &registered) {
        Some(found) => {
            assert!(registered.iter().any(|r| r == found));
            if found != requested {
                let (Some(a), Some(b)) = (
                    without_loopback_port(requested),
                    without_loopback_port(found),
                ) else {
                    panic!("{requested:?} matched non-loopback {found:?}");
                };
                assert_eq!(a, b, "{requested:?} matched {found:?}");
                assert!(
                    same_but_port(requested, found),
                    "{requested:?} matched {found:?}, which differs in more than the port"
                );
            }
            for mode in [
                ResponseMode::Query,
                ResponseMode::Fragment,
                ResponseMode::FormPost,
            ] {
                let params = vec![("code".to_owned(), requested.to_owned())];
                match deliver(requested, mode, &params) {
                    Delivery::Redirect(url) => {
                        let base = requested.split('#').next().unwrap_or_default();
                        assert!(
                            url.starts_with(base),
                            "{url:?} does not start with {base:?}"
                        );
                    }
                    Delivery::FormPost { action, params: p } => {
                        assert_eq!(action, requested);
                        assert_eq!(p, params);
                    }
                }
            }
        }
        None => {
            assert!(
                !registered.iter().any(|r| r == requested),
                "{requested:?} is registered but did not match"
            );
            // A loopback request differing from a registration only in the
            // port must match (RFC 8252 §7.3).
            if let Some(a) = without_loopback_port(requested) {
                assert!(
                    !registered
                        .iter()
                        .any(|r| without_loopback_port(r).as_ref() == Some(&a)),
                    "{requested:?} should match a loopback registration"
                );
            }
        }
    }
});
