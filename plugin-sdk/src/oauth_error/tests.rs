//! Tests of the [`OAuthError`] constructors and conversions.

use crate::{HostError, OAuthError, RedeemError, RefreshError};

#[test]
fn constructors_carry_the_rfc_code_and_description() {
    let error = OAuthError::invalid_grant("code expired");
    assert_eq!(error.error, "invalid_grant");
    assert_eq!(error.error_description.as_deref(), Some("code expired"));
    assert_eq!(error.error_uri, None);

    let error = OAuthError::slow_down("poll less").with_uri("https://example.com/e");
    assert_eq!(error.error, "slow_down");
    assert_eq!(error.error_uri.as_deref(), Some("https://example.com/e"));
}

#[test]
fn host_errors_become_server_side_errors() {
    let check = |host_error: HostError, code: &str| {
        let error = OAuthError::from(host_error);
        assert_eq!(error.error, code);
        // The host's own text stays out of the response.
        assert!(!error.error_description.unwrap().contains("internal"));
    };
    check(
        HostError::Unavailable("internal".into()),
        "temporarily_unavailable",
    );
    check(HostError::Denied("internal".into()), "server_error");
    check(
        HostError::InvalidArgument("internal".into()),
        "server_error",
    );
}

#[test]
fn code_and_refresh_failures_are_invalid_grant() {
    for error in [
        RedeemError::Unknown,
        RedeemError::Expired,
        RedeemError::Replayed,
    ] {
        assert_eq!(OAuthError::from(error).error, "invalid_grant");
    }
    for error in [
        RefreshError::Unknown,
        RefreshError::Expired,
        RefreshError::Reused,
    ] {
        assert_eq!(OAuthError::from(error).error, "invalid_grant");
    }
    let error = OAuthError::from(RefreshError::Host(HostError::Unavailable("db".into())));
    assert_eq!(error.error, "temporarily_unavailable");
}
