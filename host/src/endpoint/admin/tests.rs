//! The admin guard's `Host` and `Origin` rules, without a listener.

use axum::http::{HeaderMap, HeaderValue, header};

use super::AdminGuard;
use crate::config::AdminListen;

fn guard(host: Option<&str>, behind_tls_proxy: bool) -> AdminGuard {
    let config = AdminListen {
        address: "127.0.0.1:0".parse().unwrap(),
        host: host.map(str::to_owned),
        behind_tls_proxy,
    };
    AdminGuard::new(&config, "127.0.0.1:8181".parse().unwrap())
}

fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(host) = host {
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
    }
    if let Some(origin) = origin {
        headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
    }
    headers
}

#[test]
fn loopback_names_with_the_bound_port_pass_and_other_hosts_do_not() {
    let guard = guard(None, false);
    for host in [
        "localhost:8181",
        "127.0.0.1:8181",
        "[::1]:8181",
        "LOCALHOST:8181",
    ] {
        assert_eq!(guard.refusal(&headers(Some(host), None)), None, "{host}");
    }
    for host in [
        None,
        Some("localhost"),
        Some("localhost:8182"),
        Some("evil.example:8181"),
        Some("127.0.0.2:8181"),
    ] {
        assert!(guard.refusal(&headers(host, None)).is_some(), "{host:?}");
    }
}

#[test]
fn only_the_admin_origin_passes() {
    let guard = guard(Some("admin.example.com"), true);
    let host = Some("admin.example.com");
    assert_eq!(guard.refusal(&headers(host, None)), None);
    assert_eq!(
        guard.refusal(&headers(host, Some("https://admin.example.com"))),
        None
    );
    assert_eq!(
        guard.refusal(&headers(
            Some("127.0.0.1:8181"),
            Some("http://127.0.0.1:8181")
        )),
        None
    );
    for origin in [
        "http://admin.example.com",
        "https://evil.example",
        "null",
        "https://admin.example.com.evil.example",
    ] {
        assert!(
            guard.refusal(&headers(host, Some(origin))).is_some(),
            "{origin}"
        );
    }
}
