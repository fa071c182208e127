//! A user's claims (OpenID Connect Core 1.0 §5.1) as the operator gives them
//! (`grantbox user add … --claim name=value`), and which of them a scope
//! reveals (§5.4). Sans-IO: text in, a JSON object out.

use serde_json::{Map, Value};

/// OIDC Core §5.4: the claims each standard scope asks for.
pub const SCOPE_CLAIMS: [(&str, &[&str]); 4] = [
    (
        "profile",
        &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    ),
    ("email", &["email", "email_verified"]),
    ("address", &["address"]),
    ("phone", &["phone_number", "phone_number_verified"]),
];

/// What the consent page calls each §5.4 claim, for people: `name` is
/// "name", `email_verified` "whether your email address is verified".
pub fn label(claim: &str) -> &'static str {
    match claim {
        "name" => "name",
        "family_name" => "family name",
        "given_name" => "given name",
        "middle_name" => "middle name",
        "nickname" => "nickname",
        "preferred_username" => "preferred username",
        "profile" => "profile page",
        "picture" => "picture",
        "website" => "website",
        "gender" => "gender",
        "birthdate" => "birthday",
        "zoneinfo" => "time zone",
        "locale" => "language",
        "updated_at" => "when your profile last changed",
        "email" => "email address",
        "email_verified" => "whether your email address is verified",
        "address" => "postal address",
        "phone_number" => "phone number",
        "phone_number_verified" => "whether your phone number is verified",
        _ => "other details",
    }
}

/// The readable list of what `scope` reveals (`"name, family name, …"`),
/// or `None` for a scope outside §5.4.
pub fn scope_labels(scope: &str) -> Option<String> {
    let claims = claims_for_scopes([scope]);
    (!claims.is_empty()).then(|| claims.into_iter().map(label).collect::<Vec<_>>().join(", "))
}

/// Claims the server sets itself in an ID token or a UserInfo response
/// (OIDC Core §2, §5.1, §3.1.3.6, §3.3.2.11); an operator may not store them.
pub const RESERVED: [&str; 13] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
];

/// OIDC Core §5.1.1: the members of the `address` claim.
const ADDRESS_MEMBERS: [&str; 6] = [
    "formatted",
    "street_address",
    "locality",
    "region",
    "postal_code",
    "country",
];

/// The longest claim value the operator may give, in bytes.
pub const MAX_VALUE_LEN: usize = 2048;
/// The most claims one user may have.
pub const MAX_CLAIMS: usize = 64;

/// Why a claim was refused; the message names it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("claim {0:?} must be written name=value")]
    Syntax(String),
    #[error(
        "claim name {0:?} must be 1 to 64 characters of a-z, A-Z, 0-9 or _, starting with a letter"
    )]
    Name(String),
    #[error("claim {0:?} is set by the server itself (OpenID Connect Core §2, §5.1)")]
    Reserved(String),
    #[error("claim {name:?} {reason}")]
    Value { name: String, reason: &'static str },
    #[error("a user may have at most {MAX_CLAIMS} claims")]
    TooMany,
}

/// The claims a set of granted scopes reveals (OIDC Core §5.4), in the
/// order of [`SCOPE_CLAIMS`].
pub fn claims_for_scopes<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Vec<&'static str> {
    let scopes: Vec<&str> = scopes.into_iter().collect();
    SCOPE_CLAIMS
        .iter()
        .filter(|(scope, _)| scopes.contains(scope))
        .flat_map(|(_, claims)| claims.iter().copied())
        .collect()
}

/// The user's claims that `scopes` reveal: the standard claims of §5.4 by
/// scope; a claim outside every standard scope is never released by scope.
pub fn released(claims: &Map<String, Value>, scopes: &[&str]) -> Map<String, Value> {
    claims_for_scopes(scopes.iter().copied())
        .into_iter()
        .filter_map(|name| {
            claims
                .get(name)
                .map(|value| (name.to_owned(), value.clone()))
        })
        .collect()
}

/// Parses one `name=value` the operator gave into the claim's name and its
/// JSON value, typed as §5.1 says: booleans for `email_verified` and
/// `phone_number_verified`, a number for `updated_at`, a JSON object of the
/// §5.1.1 members for `address`, a string otherwise. An empty value means
/// "remove the claim" to [`apply`].
pub fn parse(assignment: &str) -> Result<(String, Option<Value>), ClaimError> {
    let (name, text) = assignment
        .split_once('=')
        .ok_or_else(|| ClaimError::Syntax(assignment.to_owned()))?;
    check_name(name)?;
    if text.is_empty() {
        return Ok((name.to_owned(), None));
    }
    let invalid = |reason| ClaimError::Value {
        name: name.to_owned(),
        reason,
    };
    if text.len() > MAX_VALUE_LEN || text.chars().any(char::is_control) {
        return Err(invalid(
            "must be at most 2048 bytes without control characters",
        ));
    }
    let value = match name {
        "email_verified" | "phone_number_verified" => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(invalid("must be true or false")),
        },
        "updated_at" => Value::from(
            text.parse::<u64>()
                .map_err(|_| invalid("must be seconds since the Unix epoch"))?,
        ),
        "address" => {
            let Ok(Value::Object(address)) = serde_json::from_str::<Value>(text) else {
                return Err(invalid(
                    "must be a JSON object, e.g. {\"formatted\":\"…\",\"country\":\"…\"}",
                ));
            };
            let well_formed = !address.is_empty()
                && address
                    .iter()
                    .all(|(k, v)| ADDRESS_MEMBERS.contains(&k.as_str()) && v.is_string());
            if !well_formed {
                return Err(invalid(
                    "may hold only the string members formatted, street_address, locality, region, postal_code and country",
                ));
            }
            Value::Object(address)
        }
        "email" if !text.contains('@') => return Err(invalid("must be an e-mail address")),
        _ => Value::String(text.to_owned()),
    };
    Ok((name.to_owned(), Some(value)))
}

/// Applies `assignments` (`name=value` sets, `name=` removes) to `claims`.
pub fn apply(claims: &mut Map<String, Value>, assignments: &[String]) -> Result<(), ClaimError> {
    for assignment in assignments {
        match parse(assignment)? {
            (name, Some(value)) => claims.insert(name, value),
            (name, None) => claims.remove(&name),
        };
    }
    if claims.len() > MAX_CLAIMS {
        return Err(ClaimError::TooMany);
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), ClaimError> {
    let well_formed = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Err(ClaimError::Name(name.to_owned()));
    }
    if RESERVED.contains(&name) {
        return Err(ClaimError::Reserved(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(assignments: &[&str]) -> Result<Map<String, Value>, ClaimError> {
        let mut claims = Map::new();
        let assignments: Vec<String> = assignments.iter().map(|a| a.to_string()).collect();
        apply(&mut claims, &assignments).map(|()| claims)
    }

    #[test]
    fn values_are_typed_as_the_standard_says() {
        let got = claims(&[
            "name=Alice Liddell",
            "email=alice@example.com",
            "email_verified=true",
            "phone_number_verified=false",
            "updated_at=1700000000",
            r#"address={"formatted":"1 Rabbit Hole","country":"UK"}"#,
            "favourite_colour=blue",
        ])
        .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({
                "name": "Alice Liddell",
                "email": "alice@example.com",
                "email_verified": true,
                "phone_number_verified": false,
                "updated_at": 1700000000,
                "address": {"formatted": "1 Rabbit Hole", "country": "UK"},
                "favourite_colour": "blue",
            })
        );
    }

    #[test]
    fn an_empty_value_removes_a_claim() {
        let mut got = claims(&["name=Alice", "email=a@example.com"]).unwrap();
        apply(&mut got, &["name=".to_owned()]).unwrap();
        assert_eq!(Value::Object(got), json!({"email": "a@example.com"}));
    }

    #[test]
    fn malformed_or_reserved_claims_are_refused_by_name() {
        let refused = |assignment: &str| claims(&[assignment]).unwrap_err();
        assert_eq!(refused("name"), ClaimError::Syntax("name".into()));
        assert_eq!(refused("=x"), ClaimError::Name("".into()));
        assert_eq!(refused("1st=x"), ClaimError::Name("1st".into()));
        assert_eq!(
            refused("given-name=x"),
            ClaimError::Name("given-name".into())
        );
        for reserved in ["sub", "iss", "aud", "exp", "auth_time", "nonce", "at_hash"] {
            assert_eq!(
                refused(&format!("{reserved}=x")),
                ClaimError::Reserved(reserved.into())
            );
        }
        for bad in [
            "email_verified=yes",
            "updated_at=yesterday",
            "updated_at=-1",
            "address=Rabbit Hole",
            r#"address={"planet":"Earth"}"#,
            r#"address={"country":1}"#,
            "address={}",
            "email=alice",
            "name=a\u{7}b",
        ] {
            assert!(
                matches!(refused(bad), ClaimError::Value { .. }),
                "{bad} was accepted"
            );
        }
        assert!(matches!(
            refused(&format!("name={}", "x".repeat(MAX_VALUE_LEN + 1))),
            ClaimError::Value { .. }
        ));
        let many: Vec<String> = (0..=MAX_CLAIMS).map(|i| format!("c{i}=x")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(claims(&many).unwrap_err(), ClaimError::TooMany);
    }

    #[test]
    fn every_claim_a_scope_reveals_has_its_own_label() {
        let mut seen = std::collections::BTreeSet::new();
        for (_, claims) in SCOPE_CLAIMS {
            for claim in claims {
                assert_ne!(label(claim), "other details", "{claim}");
                assert!(seen.insert(label(claim)), "{claim}: label used twice");
            }
        }
        assert_eq!(
            scope_labels("email").as_deref(),
            Some("email address, whether your email address is verified")
        );
        assert!(
            scope_labels("profile")
                .unwrap()
                .starts_with("name, family name, given name")
        );
        assert_eq!(scope_labels("openid"), None);
        assert_eq!(scope_labels("read"), None);
    }

    #[test]
    fn scopes_reveal_the_claims_of_section_5_4() {
        assert_eq!(
            claims_for_scopes(["openid", "email"]),
            ["email", "email_verified"]
        );
        assert!(claims_for_scopes(["openid", "read"]).is_empty());
        assert_eq!(claims_for_scopes(["phone", "address"]).len(), 3);
        let user = claims(&[
            "name=Alice",
            "email=a@example.com",
            "email_verified=true",
            "phone_number=+44 20 7946 0000",
            "favourite_colour=blue",
        ])
        .unwrap();
        assert_eq!(
            Value::Object(released(&user, &["openid", "email"])),
            json!({"email": "a@example.com", "email_verified": true})
        );
        assert_eq!(
            Value::Object(released(&user, &["profile"])),
            json!({"name": "Alice"})
        );
        assert!(released(&user, &["openid"]).is_empty());
    }
}
