//! JWT client authentication (`private_key_jwt` and `client_secret_jwt`: RFC 7523 §2.2, §3;
//! RFC 7521 §4.2; OpenID Connect Core §9): the rules
//! an assertion's header and claims must meet, once its signature has been
//! verified elsewhere. Takes the decoded JOSE header, the claims and `now`;
//! knows no key, no store and no clock.

use serde_json::{Map, Value};

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest lifetime accepted: `exp - iat`, or `exp - now` without `iat`.
/// An assertion is made for one request, so five minutes covers a slow
/// client; a longer-lived one is a bearer credential worth stealing.
pub const MAX_LIFETIME_SECONDS: i64 = 300;

/// The clock difference tolerated between the client and the server for
/// `exp`, `nbf` and `iat`.
pub const CLOCK_SKEW_SECONDS: i64 = 30;

/// The longest `jti` accepted, in bytes, so that the replay table stays small.
pub const MAX_JTI_LEN: usize = 256;

/// The JWS algorithms Grantbox verifies in client assertions (RFC 7518 §3.1
/// names; `EdDSA` from RFC 8037 with Ed25519 keys). Public-key ones serve
/// `private_key_jwt` only and HMAC ones `client_secret_jwt` only, so an HMAC
/// keyed with a client's public key never verifies (algorithm confusion).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// ECDSA with P-256 and SHA-256: `private_key_jwt`.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256: `private_key_jwt`.
    Rs256,
    /// Ed25519: `private_key_jwt`.
    EdDsa,
    /// HMAC with SHA-256 keyed with the client secret: `client_secret_jwt`.
    Hs256,
    /// HMAC with SHA-384: `client_secret_jwt`.
    Hs384,
    /// HMAC with SHA-512: `client_secret_jwt`.
    Hs512,
}

impl Alg {
    /// Every algorithm.
    pub const ALL: [Alg; 6] = [
        Alg::Es256,
        Alg::Rs256,
        Alg::EdDsa,
        Alg::Hs256,
        Alg::Hs384,
        Alg::Hs512,
    ];

    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
        }
    }

    /// A MAC keyed with the client secret (`client_secret_jwt`), not a
    /// signature by a registered public key (`private_key_jwt`).
    pub fn is_hmac(self) -> bool {
        matches!(self, Self::Hs256 | Self::Hs384 | Self::Hs512)
    }

    /// Reads an `alg` header value; `none` and anything unlisted is `None`.
    pub fn parse(alg: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == alg)
    }
}

/// The `..._endpoint_auth_signing_alg_values_supported` list (RFC 8414 §2):
/// exactly the algorithms verified, for either method.
pub fn signing_alg_values_supported() -> Vec<&'static str> {
    Alg::ALL.iter().map(|a| a.as_str()).collect()
}

/// What the server expects of an assertion.
#[derive(Clone, Debug)]
pub struct Expectations<'a> {
    /// The client the assertion must be about and come from (`sub`, `iss`).
    pub client_id: &'a str,
    /// Accepted `aud` values: the token endpoint URL and the issuer.
    pub audiences: &'a [&'a str],
    /// `aud` must be one of them as a string, not a list naming one (FAPI
    /// 2.0 Security Profile §5.3.2.1 item 8).
    pub audience_string_only: bool,
    pub now: i64,
}

/// The JOSE header of an assertion, as far as the rules need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub alg: Alg,
    pub kid: Option<String>,
}

/// An assertion whose claims passed: its `jti` must now be used once, and
/// remembered until `expires_at` (RFC 7523 §3 item 7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub jti: String,
    /// `exp` plus the clock skew: until then the assertion could still pass.
    pub expires_at: i64,
}

/// Why an assertion was refused. Logged at debug level only: the client is
/// told `invalid_client` without the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the assertion is not a compact JWS with a JSON header and claims")]
    Malformed,
    #[error("the assertion is unsigned (alg none)")]
    Unsigned,
    #[error("the assertion's alg {0:?} is not supported")]
    UnsupportedAlg(String),
    #[error("the assertion's header has a crit member")]
    Critical,
    #[error("the assertion's {0} claim is not the client id")]
    NotTheClient(&'static str),
    #[error("the assertion's aud claim names neither the token endpoint nor the issuer")]
    Audience,
    #[error("the assertion has no numeric {0} claim")]
    Missing(&'static str),
    #[error("the assertion expired")]
    Expired,
    #[error("the assertion is not valid yet (nbf)")]
    NotYetValid,
    #[error("the assertion was issued in the future (iat)")]
    IssuedInFuture,
    #[error("the assertion lives longer than {MAX_LIFETIME_SECONDS} seconds")]
    TooLongLived,
    #[error("the assertion's jti is missing, empty or longer than {MAX_JTI_LEN} bytes")]
    Jti,
}

/// Reads the JOSE header of a compact JWS (before the signature is checked).
/// Refuses `alg: none`, unknown algorithms and any `crit` extension.
pub fn read_header(assertion: &str) -> Result<Header, Rejection> {
    let header = decode_segment(assertion, 0)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(Rejection::Malformed)?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(Rejection::Unsigned);
    }
    let alg = Alg::parse(alg).ok_or_else(|| Rejection::UnsupportedAlg(alg.to_owned()))?;
    if header.contains_key("crit") {
        return Err(Rejection::Critical);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(Rejection::Malformed),
    };
    Ok(Header { alg, kid })
}

/// The claims of a compact JWS, decoded but not verified.
pub fn read_claims(assertion: &str) -> Result<Map<String, Value>, Rejection> {
    decode_segment(assertion, 1)
}

/// The `sub` of an assertion, read without verifying anything: only to find
/// the client whose keys then verify it (RFC 7523 §3 item 2). An empty
/// `sub` names no client.
pub fn unverified_subject(assertion: &str) -> Option<String> {
    read_claims(assertion)
        .ok()?
        .get("sub")?
        .as_str()
        .filter(|sub| !sub.is_empty())
        .map(str::to_owned)
}

/// RFC 7523 §3: the claim rules, for an assertion whose signature verified.
pub fn check_claims(
    claims: &Map<String, Value>,
    expect: &Expectations<'_>,
) -> Result<Accepted, Rejection> {
    for name in ["iss", "sub"] {
        if claims.get(name).and_then(Value::as_str) != Some(expect.client_id) {
            return Err(Rejection::NotTheClient(name));
        }
    }
    let audience_matches = |value: &Value| {
        value
            .as_str()
            .is_some_and(|aud| expect.audiences.contains(&aud))
    };
    let audience_ok = match claims.get("aud") {
        Some(Value::Array(list)) => {
            !expect.audience_string_only && list.iter().any(audience_matches)
        }
        Some(value) => audience_matches(value),
        None => false,
    };
    if !audience_ok {
        return Err(Rejection::Audience);
    }
    let now = expect.now;
    let exp = numeric_date(claims, "exp")?.ok_or(Rejection::Missing("exp"))?;
    if now > exp + CLOCK_SKEW_SECONDS {
        return Err(Rejection::Expired);
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && nbf > now + CLOCK_SKEW_SECONDS
    {
        return Err(Rejection::NotYetValid);
    }
    let issued_at = match numeric_date(claims, "iat")? {
        Some(iat) if iat > now + CLOCK_SKEW_SECONDS => return Err(Rejection::IssuedInFuture),
        Some(iat) => iat,
        None => now,
    };
    if exp - issued_at > MAX_LIFETIME_SECONDS {
        return Err(Rejection::TooLongLived);
    }
    let jti = match claims.get("jti") {
        Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => jti.clone(),
        _ => return Err(Rejection::Jti),
    };
    Ok(Accepted {
        jti,
        expires_at: exp + CLOCK_SKEW_SECONDS,
    })
}

/// A NumericDate claim (RFC 7519 §2): absent is `None`; present but not a
/// number is malformed. Fractions are dropped.
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, Rejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_i64()
            .or_else(|| {
                value
                    .as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 1e15)
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or(Rejection::Missing(name)),
    }
}

/// Segment `index` of a three-segment compact JWS, as a JSON object.
fn decode_segment(assertion: &str, index: usize) -> Result<Map<String, Value>, Rejection> {
    super::jws::segment(assertion, index).ok_or(Rejection::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const TOKEN_ENDPOINT: &str = "https://as.example/token";
    const ISSUER: &str = "https://as.example";

    fn valid() -> Value {
        json!({
            "iss": "c1", "sub": "c1", "aud": TOKEN_ENDPOINT,
            "exp": NOW + 60, "iat": NOW, "jti": "j1",
        })
    }

    /// `valid()` with `changes` applied; a `null` removes the claim.
    fn with(changes: Value) -> Value {
        let mut claims = valid();
        let map = claims.as_object_mut().unwrap();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                map.remove(name);
            } else {
                map.insert(name.clone(), value.clone());
            }
        }
        claims
    }

    #[track_caller]
    fn check(claims: Value, expect: Result<i64, Rejection>) {
        let expectations = Expectations {
            client_id: "c1",
            audiences: &[TOKEN_ENDPOINT, ISSUER],
            audience_string_only: false,
            now: NOW,
        };
        let got = check_claims(claims.as_object().unwrap(), &expectations);
        assert_eq!(got.map(|a| a.expires_at), expect, "{claims}");
    }

    #[test]
    fn a_string_only_audience_refuses_a_list() {
        let expectations = Expectations {
            client_id: "c1",
            audiences: &[ISSUER],
            audience_string_only: true,
            now: NOW,
        };
        let check =
            |claims: Value| check_claims(claims.as_object().unwrap(), &expectations).map(|_| ());
        assert_eq!(check(with(json!({"aud": ISSUER}))), Ok(()));
        assert_eq!(
            check(with(json!({"aud": [ISSUER]}))),
            Err(Rejection::Audience)
        );
        assert_eq!(
            check(with(json!({"aud": TOKEN_ENDPOINT}))),
            Err(Rejection::Audience)
        );
    }

    #[test]
    fn claim_rules() {
        let ok = |exp: i64| Ok(exp + CLOCK_SKEW_SECONDS);
        let rows: Vec<(Value, Result<i64, Rejection>)> = vec![
            (valid(), ok(NOW + 60)),
            // aud: the token endpoint, the issuer, or a list naming one of them.
            (with(json!({"aud": ISSUER})), ok(NOW + 60)),
            (
                with(json!({"aud": ["https://rs.example", ISSUER]})),
                ok(NOW + 60),
            ),
            (
                with(json!({"aud": "https://as.example/introspect"})),
                Err(Rejection::Audience),
            ),
            (
                with(json!({"aud": "https://as.example/"})),
                Err(Rejection::Audience),
            ),
            (with(json!({"aud": []})), Err(Rejection::Audience)),
            (with(json!({"aud": [1]})), Err(Rejection::Audience)),
            (with(json!({"aud": null})), Err(Rejection::Audience)),
            // iss and sub are the client id.
            (
                with(json!({"iss": "c2"})),
                Err(Rejection::NotTheClient("iss")),
            ),
            (
                with(json!({"sub": "c2"})),
                Err(Rejection::NotTheClient("sub")),
            ),
            (
                with(json!({"iss": null})),
                Err(Rejection::NotTheClient("iss")),
            ),
            (
                with(json!({"sub": ["c1"]})),
                Err(Rejection::NotTheClient("sub")),
            ),
            // exp: required, not passed beyond the skew.
            (with(json!({"exp": null})), Err(Rejection::Missing("exp"))),
            (with(json!({"exp": "soon"})), Err(Rejection::Missing("exp"))),
            (
                with(json!({"exp": NOW - CLOCK_SKEW_SECONDS, "iat": NOW - 60})),
                ok(NOW - CLOCK_SKEW_SECONDS),
            ),
            (
                with(json!({"exp": NOW - CLOCK_SKEW_SECONDS - 1, "iat": NOW - 60})),
                Err(Rejection::Expired),
            ),
            (with(json!({"exp": (NOW + 60) as f64 + 0.5})), ok(NOW + 60)),
            // Lifetime: exp - iat, or exp - now without iat.
            (
                with(json!({"exp": NOW + MAX_LIFETIME_SECONDS})),
                ok(NOW + MAX_LIFETIME_SECONDS),
            ),
            (
                with(json!({"exp": NOW + MAX_LIFETIME_SECONDS + 1})),
                Err(Rejection::TooLongLived),
            ),
            (
                with(json!({"iat": NOW - 200, "exp": NOW + 200})),
                Err(Rejection::TooLongLived),
            ),
            (
                with(json!({"iat": null, "exp": NOW + MAX_LIFETIME_SECONDS})),
                ok(NOW + MAX_LIFETIME_SECONDS),
            ),
            (
                with(json!({"iat": null, "exp": NOW + MAX_LIFETIME_SECONDS + 1})),
                Err(Rejection::TooLongLived),
            ),
            // iat in the future, beyond the skew.
            (with(json!({"iat": NOW + CLOCK_SKEW_SECONDS})), ok(NOW + 60)),
            (
                with(json!({"iat": NOW + CLOCK_SKEW_SECONDS + 1})),
                Err(Rejection::IssuedInFuture),
            ),
            (with(json!({"iat": "now"})), Err(Rejection::Missing("iat"))),
            // nbf honoured, with the skew.
            (with(json!({"nbf": NOW + CLOCK_SKEW_SECONDS})), ok(NOW + 60)),
            (
                with(json!({"nbf": NOW + CLOCK_SKEW_SECONDS + 1})),
                Err(Rejection::NotYetValid),
            ),
            (with(json!({"nbf": true})), Err(Rejection::Missing("nbf"))),
            // jti: required, a bounded non-empty string.
            (with(json!({"jti": null})), Err(Rejection::Jti)),
            (with(json!({"jti": ""})), Err(Rejection::Jti)),
            (with(json!({"jti": 7})), Err(Rejection::Jti)),
            (with(json!({"jti": "j".repeat(MAX_JTI_LEN)})), ok(NOW + 60)),
            (
                with(json!({"jti": "j".repeat(MAX_JTI_LEN + 1)})),
                Err(Rejection::Jti),
            ),
        ];
        for (claims, expect) in rows {
            check(claims, expect);
        }
    }

    fn compact(header: Value, claims: Value) -> String {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", encode(&header), encode(&claims))
    }

    #[test]
    fn header_rules() {
        let rows: Vec<(Value, Result<Header, Rejection>)> = vec![
            (
                json!({"alg": "ES256"}),
                Ok(Header {
                    alg: Alg::Es256,
                    kid: None,
                }),
            ),
            (
                json!({"alg": "RS256", "kid": "k1"}),
                Ok(Header {
                    alg: Alg::Rs256,
                    kid: Some("k1".into()),
                }),
            ),
            (
                json!({"alg": "EdDSA", "typ": "JWT"}),
                Ok(Header {
                    alg: Alg::EdDsa,
                    kid: None,
                }),
            ),
            (
                json!({"alg": "HS256"}),
                Ok(Header {
                    alg: Alg::Hs256,
                    kid: None,
                }),
            ),
            (json!({"alg": "none"}), Err(Rejection::Unsigned)),
            (json!({"alg": "None"}), Err(Rejection::Unsigned)),
            (
                json!({"alg": "HS512"}),
                Ok(Header {
                    alg: Alg::Hs512,
                    kid: None,
                }),
            ),
            (
                json!({"alg": "HS1"}),
                Err(Rejection::UnsupportedAlg("HS1".into())),
            ),
            (
                json!({"alg": "es256"}),
                Err(Rejection::UnsupportedAlg("es256".into())),
            ),
            (json!({}), Err(Rejection::Malformed)),
            (json!({"alg": "ES256", "kid": 1}), Err(Rejection::Malformed)),
            (
                json!({"alg": "ES256", "crit": ["exp"]}),
                Err(Rejection::Critical),
            ),
        ];
        for (header, expect) in rows {
            assert_eq!(
                read_header(&compact(header.clone(), valid())),
                expect,
                "{header}"
            );
        }
        for malformed in ["", "a.b", "a.b.c.d", "!!.e30.", "e30", "W10.e30.x"] {
            assert_eq!(
                read_header(malformed),
                Err(Rejection::Malformed),
                "{malformed}"
            );
        }
    }

    #[test]
    fn subject_is_read_unverified_only_to_find_the_client() {
        let assertion = compact(json!({"alg": "ES256"}), valid());
        assert_eq!(unverified_subject(&assertion).as_deref(), Some("c1"));
        let no_sub = compact(json!({"alg": "ES256"}), with(json!({"sub": null})));
        assert_eq!(unverified_subject(&no_sub), None);
        let empty_sub = compact(json!({"alg": "ES256"}), with(json!({"sub": ""})));
        assert_eq!(unverified_subject(&empty_sub), None);
        assert_eq!(unverified_subject("x.y.z"), None);
    }

    #[test]
    fn advertised_algorithms_are_those_parsed() {
        let listed = signing_alg_values_supported();
        assert_eq!(
            listed,
            ["ES256", "RS256", "EdDSA", "HS256", "HS384", "HS512"]
        );
        for alg in listed {
            let parsed = Alg::parse(alg).expect("listed algorithms parse");
            assert_eq!(parsed.as_str(), alg);
            assert_eq!(parsed.is_hmac(), alg.starts_with("HS"), "{alg}");
        }
        assert_eq!(Alg::parse("none"), None);
    }
}
