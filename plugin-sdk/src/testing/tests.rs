//! Tests of the test host itself: each capability behaves as the WIT says.

use super::{Capability, TestHost, TokenKind};
use crate::host::{self, log::Level};
use crate::{
    Client, CodeGrant, Grant, HostError, OAuthError, PluginInfo, RedeemError, RefreshError,
    TokenGrant, TokenRequest, TokenResponse,
};

fn scope(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| word.to_string()).collect()
}

fn token_grant(words: &[&str], refresh_token: bool) -> TokenGrant {
    TokenGrant {
        subject: Some("alice".into()),
        scope: scope(words),
        refresh_token,
        grant_id: None,
    }
}

fn refresh_client() -> Client {
    Client::confidential("app")
        .with_scopes(&["read", "write"])
        .with_grant_types(&["authorization_code", "refresh_token"])
}

#[test]
fn capabilities_not_granted_are_denied() {
    let mut test_host = TestHost::new().grant_capabilities(&[Capability::Clock]);
    test_host.run(|| {
        assert!(host::clock::now().is_ok());
        let error = host::users::verify_password("x", "y").unwrap_err();
        assert_eq!(
            error,
            HostError::Denied("capability `users` is not granted to this plugin".into())
        );
        assert!(matches!(
            host::codes::redeem("c"),
            Err(RedeemError::Host(HostError::Denied(_)))
        ));
    });
}

#[test]
fn injected_failures_are_returned() {
    let mut test_host =
        TestHost::new().fail(Capability::Tokens, HostError::Unavailable("down".into()));
    let result = test_host.run(|| host::tokens::issue(&token_grant(&[], false)));
    assert_eq!(result.unwrap_err(), HostError::Unavailable("down".into()));
    test_host.set_failure(Capability::Tokens, None);
    assert!(
        test_host
            .run(|| host::tokens::issue(&token_grant(&[], false)))
            .is_ok()
    );
}

#[test]
fn tokens_are_issued_remembered_and_introspected() {
    let mut test_host = TestHost::new().client(refresh_client()).clock(100);
    let issued = test_host
        .run(|| host::tokens::issue(&token_grant(&["read"], true)))
        .unwrap();
    assert_eq!(issued.token_type, "Bearer");
    assert_eq!(issued.expires_in, 3600);
    assert_eq!(issued.access_token.len(), 32);
    assert_ne!(Some(&issued.access_token), issued.refresh_token.as_ref());
    assert_eq!(test_host.issued_tokens().len(), 2);
    let stored = test_host.token(&issued.access_token).unwrap();
    assert_eq!(stored.kind, TokenKind::Access);
    assert_eq!(stored.subject.as_deref(), Some("alice"));
    assert_eq!(stored.expires_at, 3700);

    let info = test_host
        .run(|| host::tokens::introspect(&issued.access_token))
        .unwrap()
        .unwrap();
    assert_eq!(info.client_id, "app");
    assert_eq!(info.token_type_hint, "access_token");
    assert_eq!(info.grant_id, issued.grant_id);

    test_host.advance(3600);
    let expired = test_host.run(|| host::tokens::introspect(&issued.access_token));
    assert_eq!(expired, Ok(None));
}

#[test]
fn refresh_tokens_need_the_registration_and_scopes_must_be_registered() {
    let mut test_host = TestHost::new().client(Client::confidential("app").with_scopes(&["read"]));
    let issued = test_host
        .run(|| host::tokens::issue(&token_grant(&["read"], true)))
        .unwrap();
    assert_eq!(issued.refresh_token, None);

    let error = test_host
        .run(|| host::tokens::issue(&token_grant(&["admin"], false)))
        .unwrap_err();
    assert!(matches!(error, HostError::InvalidArgument(_)), "{error:?}");
}

#[test]
fn revoking_a_grant_revokes_its_tokens() {
    let mut test_host = TestHost::new().client(refresh_client());
    test_host.run(|| {
        let first = host::tokens::issue(&token_grant(&["read"], true)).unwrap();
        let more = TokenGrant {
            grant_id: Some(first.grant_id.clone()),
            ..token_grant(&["read"], false)
        };
        let second = host::tokens::issue(&more).unwrap();
        assert_eq!(second.grant_id, first.grant_id);
        host::tokens::revoke_grant(&first.grant_id).unwrap();
        assert_eq!(host::tokens::introspect(&second.access_token), Ok(None));
        assert!(matches!(
            host::tokens::issue(&more),
            Err(HostError::InvalidArgument(_))
        ));
    });
    assert!(test_host.issued_tokens().iter().all(|token| token.revoked));
}

#[test]
fn codes_expire_and_are_single_use_with_replay_revocation() {
    let mut test_host = TestHost::new().client(refresh_client());
    let code_grant = CodeGrant {
        subject: "alice".into(),
        redirect_uri: "https://app.example/cb".into(),
        scope: scope(&["read"]),
        data: vec![("code_challenge".into(), "abc".into())],
    };
    let code = test_host
        .run(|| host::codes::issue(&code_grant, 60))
        .unwrap();
    let redeemed = test_host.run(|| host::codes::redeem(&code)).unwrap();
    assert_eq!(redeemed.subject, "alice");
    assert_eq!(redeemed.data, code_grant.data);
    let tokens = test_host
        .run(|| {
            host::tokens::issue(&TokenGrant {
                grant_id: Some(redeemed.grant_id.clone()),
                ..token_grant(&["read"], true)
            })
        })
        .unwrap();

    assert_eq!(
        test_host.run(|| host::codes::redeem(&code)),
        Err(RedeemError::Replayed)
    );
    assert!(test_host.token(&tokens.access_token).unwrap().revoked);

    let late = test_host
        .run(|| host::codes::issue(&code_grant, 60))
        .unwrap();
    test_host.advance(60);
    assert_eq!(
        test_host.run(|| host::codes::redeem(&late)),
        Err(RedeemError::Expired)
    );

    let other = test_host
        .run(|| host::codes::issue(&code_grant, 60))
        .unwrap();
    test_host.set_client(Client::confidential("intruder"));
    assert_eq!(
        test_host.run(|| host::codes::redeem(&other)),
        Err(RedeemError::Unknown)
    );
}

#[test]
fn refresh_rotation_detects_reuse() {
    let mut test_host = TestHost::new().client(refresh_client());
    let first = test_host
        .run(|| host::tokens::issue(&token_grant(&["read", "write"], true)))
        .unwrap();
    let old_refresh = first.refresh_token.unwrap();

    let found = test_host
        .run(|| host::refresh_tokens::find(&old_refresh))
        .unwrap()
        .unwrap();
    assert_eq!(found.scope, scope(&["read", "write"]));

    let rotated = test_host
        .run(|| host::refresh_tokens::rotate(&old_refresh, &scope(&["read"])))
        .unwrap();
    assert_eq!(rotated.scope, scope(&["read"]));
    assert_eq!(rotated.grant_id, first.grant_id);
    let new_refresh = rotated.refresh_token.unwrap();
    // RFC 6749 §6: the new refresh token keeps the original scope.
    assert_eq!(
        test_host.token(&new_refresh).unwrap().scope,
        scope(&["read", "write"])
    );
    assert_eq!(
        test_host.run(|| host::refresh_tokens::find(&old_refresh)),
        Ok(None)
    );

    assert_eq!(
        test_host.run(|| host::refresh_tokens::rotate(&old_refresh, &scope(&["read"]))),
        Err(RefreshError::Reused)
    );
    assert!(test_host.token(&new_refresh).unwrap().revoked);
    assert_eq!(
        test_host.run(|| host::refresh_tokens::rotate(&new_refresh, &scope(&["read"]))),
        Err(RefreshError::Unknown)
    );
}

#[test]
fn finding_a_rotated_refresh_token_revokes_its_family() {
    let mut test_host = TestHost::new().client(refresh_client());
    let first = test_host
        .run(|| host::tokens::issue(&token_grant(&["read"], true)))
        .unwrap();
    let old_refresh = first.refresh_token.unwrap();
    let rotated = test_host
        .run(|| host::refresh_tokens::rotate(&old_refresh, &scope(&["read"])))
        .unwrap();

    assert_eq!(
        test_host.run(|| host::refresh_tokens::find(&old_refresh)),
        Ok(None)
    );
    assert!(test_host.token(&rotated.access_token).unwrap().revoked);
    assert!(
        test_host
            .token(rotated.refresh_token.as_deref().unwrap())
            .unwrap()
            .revoked
    );
}

#[test]
fn refresh_rotation_refuses_wider_scope_and_expired_tokens() {
    let mut test_host = TestHost::new()
        .client(refresh_client())
        .token_lifetimes(60, 120);
    let issued = test_host
        .run(|| host::tokens::issue(&token_grant(&["read"], true)))
        .unwrap();
    let refresh = issued.refresh_token.unwrap();
    assert!(matches!(
        test_host.run(|| host::refresh_tokens::rotate(&refresh, &scope(&["write"]))),
        Err(RefreshError::Host(HostError::InvalidArgument(_)))
    ));
    test_host.advance(120);
    assert_eq!(
        test_host.run(|| host::refresh_tokens::rotate(&refresh, &scope(&["read"]))),
        Err(RefreshError::Expired)
    );
}

#[test]
fn users_verify_passwords() {
    let mut test_host = TestHost::new().user("alice", "wonderland", "sub-alice");
    test_host.run(|| {
        assert_eq!(
            host::users::verify_password("alice", "wonderland"),
            Ok(Some("sub-alice".into()))
        );
        assert_eq!(host::users::verify_password("alice", "guess"), Ok(None));
        assert_eq!(host::users::verify_password("bob", "wonderland"), Ok(None));
    });
}

#[test]
fn key_value_honours_ttl_and_insert_new() {
    let mut test_host = TestHost::new();
    test_host.run(|| {
        host::key_value::set("a", b"1", Some(10)).unwrap();
        host::key_value::set("b", b"2", None).unwrap();
        assert_eq!(host::key_value::insert_new("a", b"x", None), Ok(false));
        assert_eq!(host::key_value::get("a"), Ok(Some(b"1".to_vec())));
    });
    test_host.advance(10);
    test_host.run(|| {
        assert_eq!(host::key_value::get("a"), Ok(None));
        assert_eq!(host::key_value::insert_new("a", b"x", None), Ok(true));
        assert_eq!(host::key_value::delete("b"), Ok(true));
        assert_eq!(host::key_value::delete("b"), Ok(false));
    });
    assert_eq!(test_host.key_value("a"), Some(&b"x"[..]));
}

#[test]
fn random_clock_log_and_config() {
    let mut test_host = TestHost::new()
        .clock(42)
        .config("mode", "ok")
        .config("quote", "a \"b\"\n")
        .config_raw("max", "5")
        .config_raw("keys", "{\"a\":[1,2]}");
    test_host.run(|| {
        assert_eq!(host::random::bytes(16).unwrap().len(), 16);
        assert!(matches!(
            host::random::bytes(1025),
            Err(HostError::InvalidArgument(_))
        ));
        assert_eq!(host::clock::now(), Ok(42));
        host::log::info("hello");
        assert!(host::log::log(Level::Warn, &"x".repeat(4097)).is_err());
        assert_eq!(host::config::get("mode"), Ok(Some("ok".into())));
        assert_eq!(host::config::get("max"), Ok(Some("5".into())));
        assert_eq!(host::config::get("missing"), Ok(None));
        assert_eq!(
            host::config::json(),
            Ok(r#"{"keys":{"a":[1,2]},"max":5,"mode":"ok","quote":"a \"b\"\n"}"#.into())
        );
    });
    assert_eq!(test_host.logs().len(), 1);
    assert_eq!(test_host.logs()[0].level, Level::Info);
    assert_eq!(test_host.logs()[0].message, "hello");
}

#[test]
fn the_same_seed_gives_the_same_tokens() {
    let issue = |seed| {
        TestHost::new()
            .seed(seed)
            .run(|| host::tokens::issue(&token_grant(&[], false)))
            .unwrap()
            .access_token
    };
    assert_eq!(issue(1), issue(1));
    assert_ne!(issue(1), issue(2));
}

#[test]
#[should_panic(expected = "outside TestHost::run")]
fn host_calls_outside_run_panic() {
    let _ = host::clock::now();
}

#[test]
fn state_survives_a_panicking_run() {
    let mut test_host = TestHost::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        test_host.run(|| {
            host::log::info("before the panic");
            panic!("plugin bug");
        })
    }));
    assert!(outcome.is_err());
    assert_eq!(test_host.logs()[0].message, "before the panic");
    assert!(test_host.run(host::clock::now).is_ok());
}

struct Nothing;

impl Grant for Nothing {
    fn info() -> PluginInfo {
        PluginInfo::new()
    }
}

struct Forger;

impl Grant for Forger {
    fn info() -> PluginInfo {
        PluginInfo::new().grant_type("urn:test:forger")
    }

    fn exchange(_request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        Ok(TokenResponse {
            access_token: "made-up".into(),
            token_type: "Bearer".into(),
            expires_in: None,
            refresh_token: None,
            scope: None,
            extra: Vec::new(),
        })
    }
}

#[test]
fn grant_defaults_refuse() {
    let mut test_host = TestHost::new();
    let request = test_host.token_request("urn:test:x", None, &[]);
    let error = test_host.exchange::<Nothing>(request).unwrap_err();
    assert_eq!(error.error, "unsupported_grant_type");
    assert_eq!(test_host.info::<Nothing>(), PluginInfo::new());
}

#[test]
#[should_panic(expected = "did not issue during this call")]
fn responses_with_forged_tokens_are_refused() {
    let mut test_host = TestHost::new();
    let request = test_host.token_request("urn:test:forger", None, &[]);
    let _ = test_host.exchange::<Forger>(request);
}

#[test]
fn token_exchange_looks_up_any_clients_token_and_issues_with_audience_and_actor() {
    use crate::ExchangeGrant;
    let mut test_host = TestHost::new()
        .client(Client::confidential("api").with_scopes(&["read"]))
        .grant_capabilities(&[Capability::TokenExchange]);
    let subject_token = test_host.existing_token("web", Some("alice"), &["read", "write"]);
    let grant = |grant_id: Option<String>| ExchangeGrant {
        subject: Some("alice".into()),
        scope: scope(&["read"]),
        audience: scope(&["billing", "https://billing.example/"]),
        actor: Some("api".into()),
        grant_id,
    };

    // A family is usable only in the call that looked it up.
    let family = test_host.run(|| {
        let found = host::token_exchange::lookup(&subject_token)
            .unwrap()
            .expect("active");
        assert_eq!(found.token.client_id, "web");
        assert_eq!(found.token.subject.as_deref(), Some("alice"));
        assert!(found.audience.is_empty() && found.actor.is_none());
        found.token.grant_id
    });
    let refused = test_host.run(|| host::token_exchange::issue(&grant(Some(family.clone()))));
    assert!(
        matches!(refused, Err(HostError::InvalidArgument(_))),
        "{refused:?}"
    );

    let issued = test_host
        .run(|| {
            host::token_exchange::lookup(&subject_token).unwrap();
            host::token_exchange::issue(&grant(Some(family.clone())))
        })
        .unwrap();
    assert_eq!(issued.refresh_token, None);
    let stored = test_host.token(&issued.access_token).unwrap().clone();
    assert_eq!(stored.client_id, "api");
    assert_eq!(stored.grant_id, family);
    assert_eq!(
        stored.audience,
        scope(&["billing", "https://billing.example/"])
    );
    assert_eq!(stored.actor.as_deref(), Some("api"));
    let found = test_host
        .run(|| host::token_exchange::lookup(&issued.access_token))
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.audience, found.actor),
        (stored.audience, stored.actor)
    );

    // An exchanged token never outlives a token looked up in the same call.
    test_host.advance(600);
    let later = test_host
        .run(|| {
            host::token_exchange::lookup(&subject_token).unwrap();
            host::token_exchange::issue(&grant(None))
        })
        .unwrap();
    assert_eq!(later.expires_in, 3000);
    assert_eq!(
        test_host.token(&later.access_token).unwrap().expires_at,
        test_host.token(&subject_token).unwrap().expires_at
    );

    // Scope stays within the calling client's registration; the capability is asked for.
    let mut wide = grant(None);
    wide.scope = scope(&["write"]);
    assert!(matches!(
        test_host.run(|| host::token_exchange::issue(&wide)),
        Err(HostError::InvalidArgument(_))
    ));
    let mut without = TestHost::new().grant_capabilities(&[Capability::Tokens]);
    assert_eq!(
        without
            .run(|| host::token_exchange::lookup("t"))
            .unwrap_err(),
        HostError::Denied("capability `token-exchange` is not granted to this plugin".into())
    );
}

#[test]
fn an_authorization_request_carries_what_the_host_validated() {
    let test_host = TestHost::new().client(Client::public("spa"));
    let request = test_host.authorization_request(
        "code",
        "https://spa.example/cb",
        &["read", "write"],
        &[("code_challenge", "abc")],
    );
    assert_eq!(request.response_type, scope(&["code"]));
    assert_eq!(request.client.client_id, "spa");
    assert_eq!(request.redirect_uri, "https://spa.example/cb");
    assert_eq!(request.scope, scope(&["read", "write"]));
    assert_eq!(
        request.params,
        super::params(&[
            ("response_type", "code"),
            ("client_id", "spa"),
            ("redirect_uri", "https://spa.example/cb"),
            ("scope", "read write"),
            ("state", "xyz"),
            ("code_challenge", "abc"),
        ])
    );
    let approval = test_host.approval(
        "code",
        "https://spa.example/cb",
        "alice",
        &["read"],
        super::params(&[("k", "v")]),
    );
    assert_eq!(
        (
            approval.client.client_id.as_str(),
            approval.subject.as_str()
        ),
        ("spa", "alice")
    );
    assert_eq!(approval.scope, scope(&["read"]));
    assert_eq!(approval.data, super::params(&[("k", "v")]));
}

#[test]
fn assert_error_checks_the_code_and_the_description() {
    let refused: Result<(), OAuthError> = Err(OAuthError::invalid_grant("expired"));
    super::assert_error(refused, "invalid_grant", "expired");
    let wrong = std::panic::catch_unwind(|| {
        super::assert_error(
            Err::<(), _>(OAuthError::invalid_grant("expired")),
            "invalid_grant",
            "unknown",
        )
    });
    assert!(wrong.is_err(), "another description fails the assertion");
    let ok = std::panic::catch_unwind(|| {
        super::assert_error(Ok::<(), OAuthError>(()), "invalid_grant", "expired")
    });
    assert!(ok.is_err(), "a success fails the assertion");
}

mod endpoints;

#[test]
fn the_capabilities_are_the_imports_of_the_wit_world() {
    // The host keeps its own list (it does not depend on the SDK); both are
    // the `import`s of the one WIT world, which this test reads.
    let wit = include_str!("../../wit/plugin.wit");
    let world = wit
        .split("world plugin {")
        .nth(1)
        .expect("the WIT has the plugin world");
    let imports: Vec<&str> = world
        .lines()
        .filter_map(|line| line.trim().strip_prefix("import "))
        .map(|name| name.trim_end_matches(';'))
        .collect();
    let names: Vec<&str> = Capability::ALL
        .iter()
        .map(|capability| capability.name())
        .collect();
    assert_eq!(names, imports);
}
