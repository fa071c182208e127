//! DPoP (RFC 9449): the rules of a proof's JOSE header and claims (§4.2,
//! §4.3), the JWK Thumbprint a token is bound to (RFC 7638, `jkt`), the
//! `ath` of a presented access token, and the target URI comparison (`htu`
//! without query and fragment). Takes the decoded proof, the request's
//! method and URI and `now`; knows no signature, no store and no clock.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::error::{ErrorCode, OAuthError};
use super::params::Params;

/// The `typ` header of a DPoP proof (RFC 9449 §4.2).
pub const PROOF_TYPE: &str = "dpop+jwt";

/// The token type of a DPoP-bound access token (RFC 9449 §5).
pub const TOKEN_TYPE: &str = "DPoP";

/// The longest proof accepted, in bytes: an RSA-4096 `jwk` with a long
/// `jti` fits well below it.
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// The longest `jti` accepted, in bytes, so that the replay table stays small.
pub const MAX_JTI_LEN: usize = 256;

/// The length of a SHA-256 JWK Thumbprint in base64url: a `dpop_jkt`.
pub const JKT_LEN: usize = 43;

/// RFC 9449 §5: the DPoP proof is invalid (malformed, wrongly signed,
/// replayed, or for another request), or missing where one is required.
pub fn invalid_dpop_proof(description: impl Into<String>) -> OAuthError {
    OAuthError::new(
        ErrorCode::Extension("invalid_dpop_proof".into()),
        description,
    )
}

/// RFC 9449 §8: the proof must carry the nonce of the `DPoP-Nonce`
/// response header, which the client is to repeat in a new proof.
pub fn use_dpop_nonce() -> OAuthError {
    OAuthError::new(
        ErrorCode::Extension("use_dpop_nonce".into()),
        "the DPoP proof must carry the nonce of the DPoP-Nonce header",
    )
}

/// The JWS algorithms a proof may be signed with: asymmetric only (RFC 9449
/// §4.2: never `none` or a MAC), each one the host verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// ECDSA with P-256 and SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// Ed25519 (RFC 8037).
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 4] = [Alg::Es256, Alg::Rs256, Alg::Ps256, Alg::EdDsa];

    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn parse(alg: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == alg)
    }

    /// The `kty` (and `crv`) of the keys this algorithm signs with.
    fn key_type(self) -> (&'static str, Option<&'static str>) {
        match self {
            Self::Es256 => ("EC", Some("P-256")),
            Self::Rs256 | Self::Ps256 => ("RSA", None),
            Self::EdDsa => ("OKP", Some("Ed25519")),
        }
    }
}

/// `dpop_signing_alg_values_supported` (RFC 9449 §5.1): exactly the
/// algorithms verified.
pub fn signing_alg_values_supported() -> Vec<&'static str> {
    Alg::ALL.iter().map(|a| a.as_str()).collect()
}

/// The JOSE header of a proof, as far as the rules need it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProofHeader {
    pub alg: Alg,
    /// The public key, as sent (checked to hold no private member and to fit `alg`).
    pub jwk: Map<String, Value>,
}

/// What the server expects of a proof for one request.
#[derive(Clone, Debug)]
pub struct Expectations<'a> {
    /// The request's method, e.g. `POST` (`htm`).
    pub method: &'a str,
    /// The request's URI as the server names it (`htu`); query and fragment
    /// are ignored on both sides.
    pub target_uri: &'a str,
    pub now: i64,
    /// How far `iat` may be from `now`, either way (`[dpop] proof_max_age_seconds`).
    pub max_age_seconds: i64,
    /// The access token presented with the proof, whose hash `ath` must be.
    pub access_token: Option<&'a str>,
}

/// A proof whose claims passed: its `jti` must now be used once, and
/// remembered until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub jti: String,
    /// The first second at which the proof's `iat` is out of the window.
    pub expires_at: i64,
    /// The `nonce` claim, for the host to check against its nonces.
    pub nonce: Option<String>,
}

/// Why a proof was refused; the text goes out as `error_description`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the DPoP proof is not a compact JWS with a JSON header and claims")]
    Malformed,
    #[error("the DPoP proof is longer than {MAX_PROOF_LEN} bytes")]
    TooLong,
    #[error("the DPoP proof's typ is not dpop+jwt")]
    Type,
    #[error("the DPoP proof is unsigned (alg none)")]
    Unsigned,
    #[error("the DPoP proof's alg {0:?} is not an asymmetric algorithm this server verifies")]
    UnsupportedAlg(String),
    #[error("the DPoP proof's header has a crit member")]
    Critical,
    #[error("the DPoP proof's header has no jwk object")]
    MissingKey,
    #[error("the DPoP proof's jwk has private member {0:?}")]
    PrivateKey(String),
    #[error("the DPoP proof's jwk is not a key of its alg {0}")]
    KeyType(&'static str),
    #[error("the DPoP proof's signature does not verify with its jwk")]
    Signature,
    #[error("the DPoP proof's jti is missing, empty or longer than {MAX_JTI_LEN} bytes")]
    Jti,
    #[error("the DPoP proof's htm is not the request's method")]
    Method,
    #[error("the DPoP proof's htu is not this endpoint's URI")]
    Uri,
    #[error("the DPoP proof has no numeric iat claim")]
    MissingIssuedAt,
    #[error("the DPoP proof was issued too long ago (iat)")]
    Stale,
    #[error("the DPoP proof was issued in the future (iat)")]
    IssuedInFuture,
    #[error("the DPoP proof's ath is not the hash of the presented access token")]
    AccessTokenHash,
    #[error("the DPoP proof's jti was used before")]
    Replayed,
}

/// Member names that carry private key material (RFC 7518 §6.2.2, §6.3.2,
/// §6.4.1; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Reads the JOSE header of a proof (RFC 9449 §4.3 items 2 to 6, before the
/// signature): `typ` `dpop+jwt`, an asymmetric `alg` of the list, no `crit`,
/// and a `jwk` that is a public key of that algorithm's type.
pub fn read_header(proof: &str) -> Result<ProofHeader, Rejection> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(Rejection::TooLong);
    }
    let mut header = decode_segment(proof, 0)?;
    if header.get("typ").and_then(Value::as_str) != Some(PROOF_TYPE) {
        return Err(Rejection::Type);
    }
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
    let Some(Value::Object(jwk)) = header.remove("jwk") else {
        return Err(Rejection::MissingKey);
    };
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(Rejection::PrivateKey((*member).to_owned()));
    }
    let (kty, crv) = alg.key_type();
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    if text("kty") != Some(kty) || text("crv") != crv {
        return Err(Rejection::KeyType(alg.as_str()));
    }
    Ok(ProofHeader { alg, jwk })
}

/// The claims of a proof, decoded but not verified.
pub fn read_claims(proof: &str) -> Result<Map<String, Value>, Rejection> {
    decode_segment(proof, 1)
}

/// The JWK SHA-256 Thumbprint of a public key (RFC 7638 §3): the required
/// members of its `kty`, in lexicographic order, without whitespace,
/// hashed, base64url. This is the `jkt` a token is bound to.
pub fn thumbprint(jwk: &Map<String, Value>) -> Result<String, Rejection> {
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
    let required: &[&str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return Err(Rejection::KeyType("a supported key type")),
    };
    let mut canonical = Map::new();
    for name in required {
        let value = jwk.get(*name).and_then(Value::as_str);
        let value = value.ok_or(Rejection::KeyType("a complete key"))?;
        canonical.insert((*name).to_owned(), Value::String(value.to_owned()));
    }
    // serde_json's map is ordered by key: the members come out sorted.
    let text = Value::Object(canonical).to_string();
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes())))
}

/// `ath` (RFC 9449 §4.2): base64url of the SHA-256 of the access token's
/// ASCII text.
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// Whether `value` has the shape of a SHA-256 JWK Thumbprint (`dpop_jkt`,
/// RFC 9449 §10): 43 base64url characters.
pub fn is_thumbprint(value: &str) -> bool {
    value.len() == JKT_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `dpop_jkt` of an authorization request (RFC 9449 §10): the
/// thumbprint of the key the code's token request will prove, once, in its
/// shape. The one place the parameter is read, for `/authorize` and any
/// other way authorization parameters arrive.
pub fn requested_jkt(params: &Params) -> Result<Option<String>, OAuthError> {
    match params.get("dpop_jkt")? {
        None => Ok(None),
        Some(jkt) if is_thumbprint(jkt) => Ok(Some(jkt.to_owned())),
        Some(_) => Err(OAuthError::invalid_request(
            "dpop_jkt must be a base64url SHA-256 JWK Thumbprint (RFC 7638)",
        )),
    }
}

/// A URI as `htu` compares (RFC 9449 §4.3 item 9): without query and
/// fragment, and with RFC 3986 §6.2.2/§6.2.3 normalisation (lowercase
/// scheme and host, no default port, an empty path as `/`). `None` for what
/// is not an absolute URI.
pub fn normalize_uri(uri: &str) -> Option<String> {
    let mut parsed = url::Url::parse(uri).ok()?;
    if parsed.cannot_be_a_base() {
        return None;
    }
    parsed.set_query(None);
    parsed.set_fragment(None);
    Some(parsed.into())
}

/// RFC 9449 §4.3 items 7 to 12: the claim rules, for a proof whose
/// signature verified with its `jwk`. The `nonce` is returned for the host
/// to judge; the `jti` for it to use once.
pub fn check_claims(
    claims: &Map<String, Value>,
    expect: &Expectations<'_>,
) -> Result<Accepted, Rejection> {
    let jti = match claims.get("jti") {
        Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => jti.clone(),
        _ => return Err(Rejection::Jti),
    };
    if claims.get("htm").and_then(Value::as_str) != Some(expect.method) {
        return Err(Rejection::Method);
    }
    let htu = claims.get("htu").and_then(Value::as_str);
    let htu = htu.and_then(normalize_uri).ok_or(Rejection::Uri)?;
    if Some(htu) != normalize_uri(expect.target_uri) {
        return Err(Rejection::Uri);
    }
    let issued_at = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(Rejection::MissingIssuedAt)?;
    if issued_at < expect.now - expect.max_age_seconds {
        return Err(Rejection::Stale);
    }
    if issued_at > expect.now + expect.max_age_seconds {
        return Err(Rejection::IssuedInFuture);
    }
    if let Some(access_token) = expect.access_token {
        let expected = access_token_hash(access_token);
        if claims.get("ath").and_then(Value::as_str) != Some(expected.as_str()) {
            return Err(Rejection::AccessTokenHash);
        }
    }
    let nonce = claims
        .get("nonce")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Accepted {
        jti,
        expires_at: issued_at + expect.max_age_seconds + 1,
        nonce,
    })
}

fn decode_segment(proof: &str, index: usize) -> Result<Map<String, Value>, Rejection> {
    super::jws::segment(proof, index).ok_or(Rejection::Malformed)
}

#[cfg(test)]
mod tests;
