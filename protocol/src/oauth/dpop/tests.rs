//! The proof rules of RFC 9449 §4.3, one table per step, and the RFC's own
//! examples for the thumbprint and `ath`.

use super::*;
use serde_json::json;

const NOW: i64 = 1_700_000_000;
const TOKEN_ENDPOINT: &str = "https://as.example/token";

/// The public key of RFC 9449 §4.2's example proof.
fn rfc_key() -> Value {
    json!({
        "kty": "EC",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        "crv": "P-256"
    })
}

fn segment(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A compact JWS of `header` and `claims` (the signature is not the rules' business).
fn proof(header: &Value, claims: &Value) -> String {
    format!("{}.{}.c2ln", segment(header), segment(claims))
}

fn header() -> Value {
    json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": rfc_key() })
}

fn claims() -> Value {
    json!({ "jti": "e1j3V_bKic8-LAEB", "htm": "POST", "htu": TOKEN_ENDPOINT, "iat": NOW })
}

fn expect(access_token: Option<&str>) -> Expectations<'_> {
    Expectations {
        method: "POST",
        target_uri: TOKEN_ENDPOINT,
        now: NOW,
        max_age_seconds: 60,
        access_token,
    }
}

fn with(base: Value, changes: Value) -> Value {
    let mut base = base;
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            base.as_object_mut().unwrap().remove(name);
        } else {
            base[name] = value.clone();
        }
    }
    base
}

#[track_caller]
fn check_header(header: Value, expect: Result<Alg, Rejection>) {
    let got = read_header(&proof(&header, &claims())).map(|h| h.alg);
    assert_eq!(got, expect, "header {header}");
}

#[test]
fn header_rules() {
    check_header(header(), Ok(Alg::Es256));
    check_header(
        with(header(), json!({ "typ": "JWT" })),
        Err(Rejection::Type),
    );
    check_header(with(header(), json!({ "typ": null })), Err(Rejection::Type));
    check_header(
        with(header(), json!({ "alg": "none" })),
        Err(Rejection::Unsigned),
    );
    for symmetric in ["HS256", "HS512", "ES512", "RS1"] {
        check_header(
            with(header(), json!({ "alg": symmetric })),
            Err(Rejection::UnsupportedAlg(symmetric.to_owned())),
        );
    }
    check_header(
        with(header(), json!({ "crit": ["b64"] })),
        Err(Rejection::Critical),
    );
    check_header(
        with(header(), json!({ "jwk": null })),
        Err(Rejection::MissingKey),
    );
    check_header(
        with(header(), json!({ "jwk": "key" })),
        Err(Rejection::MissingKey),
    );
    let private = with(rfc_key(), json!({ "d": "secret" }));
    check_header(
        with(header(), json!({ "jwk": private })),
        Err(Rejection::PrivateKey("d".to_owned())),
    );
    // The key must be of the algorithm's type: an EC key cannot sign RS256,
    // nor a P-384 key ES256.
    check_header(
        with(header(), json!({ "alg": "RS256" })),
        Err(Rejection::KeyType("RS256")),
    );
    let p384 = with(rfc_key(), json!({ "crv": "P-384" }));
    check_header(
        with(header(), json!({ "jwk": p384 })),
        Err(Rejection::KeyType("ES256")),
    );
    let rsa = json!({ "kty": "RSA", "n": "AQAB", "e": "AQAB" });
    check_header(
        json!({ "typ": "dpop+jwt", "alg": "PS256", "jwk": rsa }),
        Ok(Alg::Ps256),
    );
    let okp = json!({ "kty": "OKP", "crv": "Ed25519", "x": "AQAB" });
    check_header(
        json!({ "typ": "dpop+jwt", "alg": "EdDSA", "jwk": okp }),
        Ok(Alg::EdDsa),
    );
}

#[test]
fn malformed_and_oversized_proofs_are_refused() {
    for bad in ["", "a.b", "a.b.c.d", "!!.e30.c2ln", "e30.e30"] {
        assert_eq!(read_header(bad), Err(Rejection::Malformed), "{bad:?}");
    }
    let long = format!(
        "{}.{}.{}",
        segment(&header()),
        "A".repeat(MAX_PROOF_LEN),
        "c2ln"
    );
    assert_eq!(read_header(&long), Err(Rejection::TooLong));
}

#[test]
fn thumbprint_is_rfc_7638_over_the_required_members() {
    // RFC 9449 §6.1 names this key's thumbprint in its `cnf` example.
    let key = rfc_key();
    let expected = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    assert_eq!(thumbprint(key.as_object().unwrap()).unwrap(), expected);
    // Other members (kid, alg, use) do not change it; order does not either.
    let decorated = with(
        key.clone(),
        json!({ "kid": "k1", "alg": "ES256", "use": "sig" }),
    );
    assert_eq!(
        thumbprint(decorated.as_object().unwrap()).unwrap(),
        expected
    );
    let missing_y = with(key, json!({ "y": null }));
    assert!(thumbprint(missing_y.as_object().unwrap()).is_err());
    assert!(is_thumbprint(expected));
    assert!(!is_thumbprint("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4"));
    assert!(!is_thumbprint(
        "0ZcOCORZNYy+DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    ));
}

#[test]
fn ath_is_the_rfc_example() {
    // RFC 9449 §7.1's access token and its `ath`.
    let token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
    assert_eq!(
        access_token_hash(token),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}

#[track_caller]
fn check_claims_of(claims: Value, expect: &Expectations<'_>, want: Result<(), Rejection>) {
    let got = check_claims(claims.as_object().unwrap(), expect).map(|_| ());
    assert_eq!(got, want, "claims {claims}");
}

#[test]
fn claim_rules() {
    let base = expect(None);
    check_claims_of(claims(), &base, Ok(()));
    check_claims_of(
        with(claims(), json!({ "jti": null })),
        &base,
        Err(Rejection::Jti),
    );
    check_claims_of(
        with(claims(), json!({ "jti": "" })),
        &base,
        Err(Rejection::Jti),
    );
    check_claims_of(
        with(claims(), json!({ "jti": 7 })),
        &base,
        Err(Rejection::Jti),
    );
    let long = "j".repeat(MAX_JTI_LEN + 1);
    check_claims_of(
        with(claims(), json!({ "jti": long })),
        &base,
        Err(Rejection::Jti),
    );
    // htm: the method exactly.
    check_claims_of(
        with(claims(), json!({ "htm": "GET" })),
        &base,
        Err(Rejection::Method),
    );
    check_claims_of(
        with(claims(), json!({ "htm": "post" })),
        &base,
        Err(Rejection::Method),
    );
    check_claims_of(
        with(claims(), json!({ "htm": null })),
        &base,
        Err(Rejection::Method),
    );
    // htu: the endpoint, whatever the query and fragment, normalised.
    for same in [
        "https://as.example/token?x=1",
        "https://as.example/token#f",
        "HTTPS://AS.example:443/token",
    ] {
        check_claims_of(with(claims(), json!({ "htu": same })), &base, Ok(()));
    }
    for other in [
        "https://as.example/token/",
        "https://as.example/authorize",
        "https://as.example:8443/token",
        "http://as.example/token",
        "https://evil.example/token",
        "/token",
    ] {
        check_claims_of(
            with(claims(), json!({ "htu": other })),
            &base,
            Err(Rejection::Uri),
        );
    }
    check_claims_of(
        with(claims(), json!({ "htu": null })),
        &base,
        Err(Rejection::Uri),
    );
    // iat: within the window, both ways.
    for fresh in [NOW - 60, NOW + 60, NOW - 1] {
        check_claims_of(with(claims(), json!({ "iat": fresh })), &base, Ok(()));
    }
    check_claims_of(
        with(claims(), json!({ "iat": NOW - 61 })),
        &base,
        Err(Rejection::Stale),
    );
    check_claims_of(
        with(claims(), json!({ "iat": NOW + 61 })),
        &base,
        Err(Rejection::IssuedInFuture),
    );
    check_claims_of(
        with(claims(), json!({ "iat": "now" })),
        &base,
        Err(Rejection::MissingIssuedAt),
    );
}

#[test]
fn ath_must_hash_the_presented_token() {
    let token = "an-access-token";
    let presented = expect(Some(token));
    let ath = access_token_hash(token);
    check_claims_of(with(claims(), json!({ "ath": ath })), &presented, Ok(()));
    check_claims_of(claims(), &presented, Err(Rejection::AccessTokenHash));
    let other = access_token_hash("another-token");
    check_claims_of(
        with(claims(), json!({ "ath": other })),
        &presented,
        Err(Rejection::AccessTokenHash),
    );
}

#[test]
fn accepted_proof_is_remembered_until_it_leaves_the_window() {
    let accepted = check_claims(
        with(claims(), json!({ "iat": NOW - 10, "nonce": "n-1" }))
            .as_object()
            .unwrap(),
        &expect(None),
    )
    .unwrap();
    assert_eq!(accepted.jti, "e1j3V_bKic8-LAEB");
    assert_eq!(accepted.expires_at, NOW - 10 + 61);
    assert_eq!(accepted.nonce.as_deref(), Some("n-1"));
}

#[test]
fn algorithms_listed_are_the_asymmetric_ones() {
    assert_eq!(
        signing_alg_values_supported(),
        ["ES256", "RS256", "PS256", "EdDSA"]
    );
}

#[test]
fn dpop_jkt_is_read_once_and_in_its_shape() {
    let params = |query: &str| Params::parse(query.as_bytes()).unwrap();
    let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    assert_eq!(requested_jkt(&params("client_id=a")), Ok(None));
    assert_eq!(
        requested_jkt(&params(&format!("dpop_jkt={jkt}"))),
        Ok(Some(jkt.to_owned()))
    );
    for bad in ["dpop_jkt=short", &format!("dpop_jkt={jkt}&dpop_jkt={jkt}")] {
        let error = requested_jkt(&params(bad)).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest, "{bad}");
    }
}
