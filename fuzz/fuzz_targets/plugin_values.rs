//! Values that cross the plugin boundary, and the other header and
//! parameter values that reach the same sanitizers. Input: the first byte
//! is a separator, the rest splits on it into up to six fields:
//! `code`, `error_description`, `error_uri`, `scope`, an `Authorization`
//! header (raw bytes) and a form body. A missing field is `None`.
//!
//! Checks: `OAuthError::from_plugin` (what `From<wit::OauthError>` in
//! `plugin/bindings.rs` calls) and `ErrorCode::parse` never yield text
//! outside RFC 6749 §5.2's character sets, so the JSON body is plain
//! printable ASCII with no escapes, and valid values are kept;
//! `scope::parse` returns well-formed, unique tokens exactly when every
//! token is well formed; `client_auth::extract` never panics, only fails
//! with `invalid_request` / `invalid_client`, and reads back any
//! credentials encoded per RFC 6749 §2.3.1.

#![no_main]

use base64::Engine as _;
use grantbox_protocol::oauth::client_auth::{Credentials, extract};
use grantbox_protocol::oauth::{ErrorCode, OAuthError, Params, scope};
use libfuzzer_sys::fuzz_target;

/// `error` and `error_description`: %x20-21 / %x23-5B / %x5D-7E.
fn error_text_char(b: u8) -> bool {
    matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// `error_uri`: %x21 / %x23-5B / %x5D-7E (no space).
fn error_uri_char(b: u8) -> bool {
    b != b' ' && error_text_char(b)
}

fuzz_target!(|data: &[u8]| {
    let Some((&separator, rest)) = data.split_first() else {
        return;
    };
    let fields: Vec<&[u8]> = rest.split(|&b| b == separator).collect();
    let field = |i: usize| fields.get(i).copied();
    let text = |i: usize| field(i).map(|f| String::from_utf8_lossy(f).into_owned());

    // The error a plugin returns; WIT strings are UTF-8, hence lossy.
    let code = text(0).unwrap_or_default();
    let description = text(1);
    let uri = text(2);

    let parsed = ErrorCode::parse(&code);
    let name = parsed.as_str();
    assert!(!name.is_empty() && name.bytes().all(|b| b != b' ' && error_text_char(b)));
    if code.bytes().all(|b| b != b' ' && error_text_char(b)) && !code.is_empty() {
        assert_eq!(name, code, "a well-formed code was replaced");
    } else {
        assert_eq!(parsed, ErrorCode::ServerError);
    }

    let error = OAuthError::from_plugin(&code, description.as_deref(), uri.as_deref());
    assert_eq!(error.code, parsed);
    if let Some(d) = &error.description {
        assert!(!d.is_empty() && d.len() <= 1024 && d.bytes().all(error_text_char));
    }
    if let Some(d) = &description {
        if !d.is_empty() && d.len() <= 1024 && d.bytes().all(error_text_char) {
            assert_eq!(
                error.description.as_ref(),
                Some(d),
                "a valid description was dropped"
            );
        }
    }
    if let Some(u) = &error.uri {
        assert!(
            u.bytes().all(error_uri_char),
            "error_uri {u:?} has characters RFC 6749 forbids"
        );
        assert!(url::Url::parse(u).is_ok());
    }
    let json = serde_json::to_string(&error.to_json()).unwrap();
    assert!(
        json.bytes()
            .all(|b| (0x20..=0x7E).contains(&b) && b != b'\\'),
        "{json}"
    );
    let _ = error.to_string();
    let _ = parsed.token_endpoint_status();

    // A scope value, as a client or a plugin sends it.
    if let Some(value) = text(3) {
        let well_formed = value
            .split(' ')
            .all(|t| !t.is_empty() && t.bytes().all(scope::is_scope_char));
        match scope::parse(&value) {
            Ok(tokens) => {
                assert!(well_formed, "{value:?} accepted");
                assert!(!tokens.is_empty());
                for (i, t) in tokens.iter().enumerate() {
                    assert!(!t.is_empty() && t.bytes().all(scope::is_scope_char));
                    assert!(!tokens[..i].contains(t), "{t:?} repeated");
                }
                assert_eq!(scope::parse(&tokens.join(" ")).unwrap(), tokens);
                assert!(scope::check_allowed(&tokens, &tokens).is_ok());
            }
            Err(e) => {
                assert!(!well_formed, "{value:?} refused");
                assert_eq!(e.code.as_str(), "invalid_scope");
            }
        }
    }

    // Client authentication with an arbitrary Authorization header and body.
    let body = field(5).unwrap_or_default();
    let params = Params::parse(body).unwrap_or_default();
    let expect_error = |e: OAuthError| {
        assert!(
            matches!(e.code.as_str(), "invalid_request" | "invalid_client"),
            "{e}"
        );
    };
    match extract(field(4), &params) {
        Ok(credentials) => {
            assert!(!credentials.client_id().is_empty());
            if field(4).is_some() {
                assert_eq!(credentials.method(), "client_secret_basic");
            }
        }
        Err(e) => expect_error(e),
    }

    // Credentials encoded as RFC 6749 §2.3.1 says are read back unchanged.
    if let (Some(id), Some(secret)) = (description.as_deref(), uri.as_deref()) {
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(id),
            encode(secret)
        ));
        let header = format!("Basic {token}");
        match extract(Some(header.as_bytes()), &Params::default()) {
            Ok(credentials) => assert_eq!(
                credentials,
                Credentials::Basic {
                    client_id: id.to_owned(),
                    secret: secret.to_owned()
                }
            ),
            Err(e) => {
                assert!(id.is_empty(), "{id:?}:{secret:?} refused: {e}");
                expect_error(e);
            }
        }
    }
});
