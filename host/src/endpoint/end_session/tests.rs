//! The rules of a logout request as tables: which client it names, which
//! return address it may have, and when the session ends without asking.

use super::*;
use crate::registration::{ClientRegistration, validate};

fn hint(subject: &str, audiences: &[&str], azp: Option<&str>) -> Hint {
    Hint {
        subject: subject.to_owned(),
        audiences: audiences.iter().map(|a| a.to_string()).collect(),
        azp: azp.map(str::to_owned),
    }
}

fn client(client_id: &str, post_logout: &[&str]) -> Client {
    let registration = ClientRegistration {
        client_id: client_id.to_owned(),
        redirect_uris: vec!["https://rp.example/cb".into()],
        public: true,
        post_logout_redirect_uris: post_logout.iter().map(|u| u.to_string()).collect(),
        ..ClientRegistration::default()
    };
    validate(registration, 0).expect("a valid client").0
}

/// `client_id`, the hint, and the client the request names.
type Case<'a> = (
    Option<&'a str>,
    Option<&'a Hint>,
    Result<Option<&'a str>, LogoutError>,
);

#[test]
fn the_client_is_the_hints_audience_and_or_client_id() {
    let rp = hint("alice-sub", &["rp"], None);
    let two = hint("alice-sub", &["rp", "api"], None);
    let two_azp = hint("alice-sub", &["rp", "api"], Some("rp"));
    let cases: [Case; 8] = [
        (None, None, Ok(None)),
        (Some("rp"), None, Ok(Some("rp"))),
        (None, Some(&rp), Ok(Some("rp"))),
        (Some("rp"), Some(&rp), Ok(Some("rp"))),
        (
            Some("other"),
            Some(&rp),
            Err(LogoutError::HintForAnotherClient("other".into())),
        ),
        (None, Some(&two), Err(LogoutError::HintAudienceUnclear)),
        (None, Some(&two_azp), Ok(Some("rp"))),
        (Some("api"), Some(&two), Ok(Some("api"))),
    ];
    for (client_id, hint, expect) in cases {
        assert_eq!(
            requested_client(client_id, hint),
            expect.map(|c| c.map(str::to_owned)),
            "client_id {client_id:?}, hint {hint:?}"
        );
    }
}

#[test]
fn the_return_address_must_match_a_registered_one_exactly() {
    let rp = client(
        "rp",
        &["https://rp.example/bye", "http://127.0.0.1:4000/bye"],
    );
    let check = |client: Option<&Client>, uri: Option<&str>| {
        checked_logout(client, uri, Some("s")).map(|logout| logout.post_logout_redirect_uri)
    };
    assert_eq!(
        check(Some(&rp), Some("https://rp.example/bye")),
        Ok(Some("https://rp.example/bye".into()))
    );
    assert_eq!(check(Some(&rp), None), Ok(None));
    assert_eq!(check(None, None), Ok(None));
    for wrong in [
        "https://rp.example/bye/",
        "https://rp.example/bye?x=1",
        "https://RP.example/bye",
        "https://rp.example/bye#f",
        // Unlike a redirect URI at /authorize, the loopback port must match too.
        "http://127.0.0.1:4001/bye",
        "https://evil.example/bye",
    ] {
        assert_eq!(
            check(Some(&rp), Some(wrong)),
            Err(LogoutError::UnregisteredRedirect("rp".into())),
            "{wrong}"
        );
    }
    assert_eq!(
        check(None, Some("https://rp.example/bye")),
        Err(LogoutError::RedirectWithoutClient)
    );
    let long = "s".repeat(MAX_STATE_BYTES + 1);
    assert_eq!(
        checked_logout(Some(&rp), None, Some(&long)),
        Err(LogoutError::StateTooLong)
    );
}

#[test]
fn only_a_hint_for_the_signed_in_subject_ends_the_session_unasked() {
    let logout = |client_id: Option<&str>| Logout {
        client_id: client_id.map(str::to_owned),
        post_logout_redirect_uri: None,
        state: None,
    };
    let alice = hint("alice-sub", &["rp"], None);
    let cases = [
        (Some(&alice), Some("alice-sub"), Some("rp"), true),
        // No hint, another user's hint, no session, another client.
        (None, Some("alice-sub"), Some("rp"), false),
        (Some(&alice), Some("bob-sub"), Some("rp"), false),
        (Some(&alice), None, Some("rp"), false),
        (Some(&alice), Some("alice-sub"), Some("other"), false),
        (Some(&alice), Some("alice-sub"), None, false),
    ];
    for (hint, subject, client_id, expect) in cases {
        assert_eq!(
            clearly_from_the_relying_party(hint, subject, &logout(client_id)),
            expect,
            "{hint:?} {subject:?} {client_id:?}"
        );
    }
}
