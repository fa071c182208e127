//! The host's signing keys: generation (ES256, RS256, EdDSA with
//! jwt-simple), JWS signing with the key that is active now, the public
//! JWK Set, and sealing secrets at rest under the key-encryption key. This
//! file does no IO (`keys/persist.rs` loads and stores keys); private keys
//! never leave it except sealed.

mod kek;
pub mod persist;

use std::sync::Arc;

use arc_swap::ArcSwap;
use jwt_simple::algorithms::{
    ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair, Ed25519KeyPair, EdDSAKeyPairLike,
    EdDSAPublicKeyLike, RS256KeyPair, RSAKeyPairLike, RSAPublicKeyLike,
};
use jwt_simple::claims::JWTClaims;
use jwt_simple::common::{HeaderOptions, VerificationOptions};
use jwt_simple::token::Token;
use serde_json::{Map, Value};

pub use kek::{KEY_ENCRYPTION_KEY_BYTES, KeyEncryptionKey, KeyEncryptionKeyError, OpenError};

/// RSA modulus size for RS256 keys (NIST SP 800-57: 2048 bits until 2030).
pub const RSA_MODULUS_BITS: usize = 2048;

/// A JWS signing algorithm the host can hold keys for (RFC 7518 §3.1,
/// RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    /// ECDSA with P-256 and SHA-256: the default, small and fast.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256: what OpenID Connect requires for ID tokens.
    RS256,
    /// Ed25519 (RFC 8037), on request.
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::ES256, Alg::RS256, Alg::EdDSA];

    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::RS256 => "RS256",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn parse(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// OIDC Core §3.1.3.6 `at_hash`: the base64url of the left half of the
    /// hash of `token`'s ASCII octets, with the hash this algorithm signs
    /// with: SHA-256 for ES256 and RS256, SHA-512 for EdDSA over Ed25519
    /// (the hash of Ed25519, which is how the `openidconnect` crate checks it).
    pub fn left_half_hash(self, token: &str) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = match self {
            Alg::ES256 | Alg::RS256 => sha2::Sha256::digest(token.as_bytes()).to_vec(),
            Alg::EdDSA => sha2::Sha512::digest(token.as_bytes()).to_vec(),
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Alg {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Alg::parse(name).ok_or_else(|| format!("unknown algorithm {name:?} (ES256, RS256, EdDSA)"))
    }
}

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// No key of this algorithm is active now (none created, or all
    /// retired, or the newest one is still waiting for its activation time).
    #[error("no active {0} signing key")]
    NoActiveKey(Alg),
    /// The JOSE library refused (claims that do not serialize).
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Why a compact JWS was not accepted as signed by one of the host's keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a compact JWS whose header names an algorithm and a `kid`.
    #[error("not a signed JWT with a kid")]
    Malformed,
    /// No key published now has this `kid` (never ours, or expired).
    #[error("no published key has kid {0:?}")]
    UnknownKey(String),
    /// The header's `alg` is not the algorithm of the key it names
    /// (`none` included).
    #[error("alg {0:?} is not the algorithm of the named key")]
    WrongAlgorithm(String),
    /// The signature does not verify, or the payload is not a JSON object.
    #[error("the signature does not verify")]
    BadSignature,
}

/// A JWS the host signed, verified: its header's `typ` and its claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub kid: String,
    pub alg: Alg,
    /// The header's `typ`, if any.
    pub typ: Option<String>,
    pub claims: Map<String, Value>,
}

/// Where a key is in its life at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published in the JWKS, not yet signing: caches fetch it first.
    Pending,
    /// Published and signing (the newest activated key of its algorithm).
    Active,
    /// Published, no longer signing: a newer key of its algorithm took over.
    Superseded,
    /// Retired: published until every token it signed has expired.
    Retired,
    /// Retired and past its publication: gone from the JWKS.
    Expired,
}

impl KeyState {
    pub fn name(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Superseded => "superseded",
            KeyState::Retired => "retired",
            KeyState::Expired => "expired",
        }
    }
}

/// A key's public description and times (Unix seconds); what `keys list`
/// shows and the store keeps beside the sealed private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The RFC 7638 JWK thumbprint of the public key.
    pub kid: String,
    pub alg: Alg,
    pub created_at: i64,
    /// When it starts to sign; it is published from `created_at` on.
    pub activates_at: i64,
    pub retired_at: Option<i64>,
    /// When it leaves the JWKS; set on retirement.
    pub published_until: Option<i64>,
}

impl KeyInfo {
    /// Published in the JWKS at `now`.
    pub fn published(&self, now: i64) -> bool {
        self.published_until.is_none_or(|until| now < until)
    }

    /// May sign at `now` (if no newer key of its algorithm has activated).
    pub fn may_sign(&self, now: i64) -> bool {
        self.activates_at <= now && self.retired_at.is_none_or(|retired| now < retired)
    }
}

/// A private key in memory. Debug never shows key material.
pub struct KeyPair {
    inner: PairInner,
}

enum PairInner {
    Es256(ES256KeyPair),
    Rs256(RS256KeyPair),
    EdDsa(Ed25519KeyPair),
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({}, private)", self.alg())
    }
}

impl KeyPair {
    /// A fresh key; RS256 takes tens of milliseconds (a 2048-bit modulus).
    pub fn generate(alg: Alg) -> KeyPair {
        let inner = match alg {
            Alg::ES256 => PairInner::Es256(ES256KeyPair::generate()),
            Alg::RS256 => PairInner::Rs256(
                RS256KeyPair::generate(RSA_MODULUS_BITS).expect("RSA key generation"),
            ),
            Alg::EdDSA => PairInner::EdDsa(Ed25519KeyPair::generate()),
        };
        KeyPair { inner }
    }

    pub fn alg(&self) -> Alg {
        match self.inner {
            PairInner::Es256(_) => Alg::ES256,
            PairInner::Rs256(_) => Alg::RS256,
            PairInner::EdDsa(_) => Alg::EdDSA,
        }
    }

    /// The private key as PKCS#8 (or PKCS#1 for RSA) DER: only for sealing.
    fn to_der(&self) -> Vec<u8> {
        match &self.inner {
            PairInner::Es256(pair) => pair.to_der().expect("P-256 key encodes"),
            PairInner::Rs256(pair) => pair.to_der().expect("RSA key encodes"),
            PairInner::EdDsa(pair) => pair.to_der(),
        }
    }

    fn from_der(alg: Alg, der: &[u8]) -> Result<KeyPair, String> {
        let inner = match alg {
            Alg::ES256 => PairInner::Es256(ES256KeyPair::from_der(der).map_err(|e| e.to_string())?),
            Alg::RS256 => PairInner::Rs256(RS256KeyPair::from_der(der).map_err(|e| e.to_string())?),
            Alg::EdDSA => {
                PairInner::EdDsa(Ed25519KeyPair::from_der(der).map_err(|e| e.to_string())?)
            }
        };
        Ok(KeyPair { inner })
    }

    /// The same key, naming `kid` in the headers it signs.
    fn with_kid(self, kid: &str) -> KeyPair {
        let inner = match self.inner {
            PairInner::Es256(pair) => PairInner::Es256(pair.with_key_id(kid)),
            PairInner::Rs256(pair) => PairInner::Rs256(pair.with_key_id(kid)),
            PairInner::EdDsa(pair) => PairInner::EdDsa(pair.with_key_id(kid)),
        };
        KeyPair { inner }
    }

    /// The RFC 7638 thumbprint, used as the `kid`.
    pub fn thumbprint(&self) -> String {
        match &self.inner {
            PairInner::Es256(pair) => pair.public_key().jwk_thumbprint(),
            PairInner::Rs256(pair) => pair.public_key().jwk_thumbprint(),
            PairInner::EdDsa(pair) => pair.public_key().jwk_thumbprint(),
        }
    }

    /// The public JWK (`kty`, `crv`/`n`/`e`, `x`/`y`, `alg`, `use`, `kid`).
    pub fn public_jwk(&self, kid: &str) -> Value {
        let text = match &self.inner {
            PairInner::Es256(pair) => pair.public_key().with_key_id(kid).to_jwk(),
            PairInner::Rs256(pair) => pair.public_key().with_key_id(kid).to_jwk(),
            PairInner::EdDsa(pair) => pair.public_key().with_key_id(kid).to_jwk(),
        };
        serde_json::from_str(&text).expect("jwt-simple writes JSON")
    }

    fn sign(&self, typ: &str, claims: &Map<String, Value>) -> Result<String, SignError> {
        // Every claim comes from the caller: none of jwt-simple's own
        // (it would read the wall clock for `iat` and `exp`).
        let claims = JWTClaims {
            issued_at: None,
            expires_at: None,
            invalid_before: None,
            issuer: None,
            subject: None,
            audiences: None,
            jwt_id: None,
            nonce: None,
            custom: claims.clone(),
        };
        let options = HeaderOptions {
            signature_type: Some(typ.to_string()),
            ..HeaderOptions::default()
        };
        let signed = match &self.inner {
            PairInner::Es256(pair) => pair.sign_with_options(claims, &options),
            PairInner::Rs256(pair) => pair.sign_with_options(claims, &options),
            PairInner::EdDsa(pair) => pair.sign_with_options(claims, &options),
        };
        signed.map_err(|e| SignError::Sign(e.to_string()))
    }

    /// Checks the signature of `token` and returns its claims. Times in the
    /// claims are not judged here: the caller decides what `exp` means.
    fn verify(&self, token: &str, now: i64) -> Result<Map<String, Value>, VerifyError> {
        let now = jwt_simple::prelude::Duration::from_secs(u64::try_from(now).unwrap_or(0));
        // jwt-simple would refuse an expired token; a tolerance as long as
        // the time since the epoch (at an explicit `now`, not the wall
        // clock) turns its time checks off.
        let options = Some(VerificationOptions {
            accept_future: true,
            time_tolerance: Some(now),
            artificial_time: Some(now),
            ..VerificationOptions::default()
        });
        let verified = match &self.inner {
            PairInner::Es256(pair) => pair
                .public_key()
                .verify_token::<Map<String, Value>>(token, options),
            PairInner::Rs256(pair) => pair
                .public_key()
                .verify_token::<Map<String, Value>>(token, options),
            PairInner::EdDsa(pair) => pair
                .public_key()
                .verify_token::<Map<String, Value>>(token, options),
        };
        let verified = verified.map_err(|_| VerifyError::BadSignature)?;
        // jwt-simple took the registered claims out of the map; put back
        // those it parsed so the caller sees the payload as it was.
        let mut claims = verified.custom;
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                claims.insert(name.to_string(), value);
            }
        };
        put("iss", verified.issuer.map(Value::from));
        put("sub", verified.subject.map(Value::from));
        put("jti", verified.jwt_id.map(Value::from));
        put("nonce", verified.nonce.map(Value::from));
        put("iat", verified.issued_at.map(|t| Value::from(t.as_secs())));
        put("exp", verified.expires_at.map(|t| Value::from(t.as_secs())));
        put(
            "nbf",
            verified.invalid_before.map(|t| Value::from(t.as_secs())),
        );
        put(
            "aud",
            verified.audiences.map(|audiences| match audiences {
                jwt_simple::claims::Audiences::AsString(one) => Value::from(one),
                jwt_simple::claims::Audiences::AsSet(set) => {
                    let mut all: Vec<String> = set.into_iter().collect();
                    all.sort();
                    Value::from(all)
                }
            }),
        );
        Ok(claims)
    }
}

/// A key with its description: what [`Keys`] holds.
#[derive(Debug)]
pub struct SigningKey {
    pub info: KeyInfo,
    pub public_jwk: Value,
    pair: Arc<KeyPair>,
}

impl SigningKey {
    /// A new key of `alg`, published from `now`, signing from `activates_at`.
    pub fn generate(alg: Alg, now: i64, activates_at: i64) -> SigningKey {
        SigningKey::from_pair(KeyPair::generate(alg), now, activates_at)
    }

    pub fn from_pair(pair: KeyPair, now: i64, activates_at: i64) -> SigningKey {
        let kid = pair.thumbprint();
        SigningKey {
            public_jwk: pair.public_jwk(&kid),
            info: KeyInfo {
                kid: kid.clone(),
                alg: pair.alg(),
                created_at: now,
                activates_at,
                retired_at: None,
                published_until: None,
            },
            pair: Arc::new(pair.with_kid(&kid)),
        }
    }

    /// The private key sealed under `kek`, bound to this key's `kid`.
    pub fn seal_private(&self, kek: &KeyEncryptionKey) -> Vec<u8> {
        let der = zeroize::Zeroizing::new(self.pair.to_der());
        kek.seal(&der, self.info.kid.as_bytes())
    }

    /// A stored key back in memory: opens the sealed private key and checks
    /// that it matches the stored `kid`.
    pub fn unseal(
        info: KeyInfo,
        sealed_private: &[u8],
        kek: &KeyEncryptionKey,
    ) -> Result<SigningKey, String> {
        let der = kek
            .open(sealed_private, info.kid.as_bytes())
            .map_err(|e| format!("key {}: {e}", info.kid))?;
        let der = zeroize::Zeroizing::new(der);
        let pair = KeyPair::from_der(info.alg, &der)
            .map_err(|e| format!("key {}: the private key does not decode: {e}", info.kid))?;
        if pair.thumbprint() != info.kid {
            return Err(format!(
                "key {}: the private key does not match its kid",
                info.kid
            ));
        }
        Ok(SigningKey {
            public_jwk: pair.public_jwk(&info.kid),
            pair: Arc::new(pair.with_kid(&info.kid)),
            info,
        })
    }

    /// The same key with new times (a reload that saw it retired): the
    /// private key is shared, not opened again.
    pub fn with_info(&self, info: KeyInfo) -> SigningKey {
        SigningKey {
            info,
            public_jwk: self.public_jwk.clone(),
            pair: self.pair.clone(),
        }
    }

    pub fn state(&self, now: i64, newest_active: Option<&str>) -> KeyState {
        key_state(&self.info, now, newest_active)
    }
}

/// The state of `info` at `now`, given the kid signing for its algorithm.
pub fn key_state(info: &KeyInfo, now: i64, signing_kid: Option<&str>) -> KeyState {
    if !info.published(now) {
        KeyState::Expired
    } else if info.retired_at.is_some_and(|retired| retired <= now) {
        KeyState::Retired
    } else if info.activates_at > now {
        KeyState::Pending
    } else if signing_kid == Some(info.kid.as_str()) {
        KeyState::Active
    } else {
        KeyState::Superseded
    }
}

/// The key among `infos` that signs for `alg` at `now`: the one activated
/// last (then created last) among those that may sign.
pub fn signing_key<'a>(
    infos: impl IntoIterator<Item = &'a KeyInfo>,
    alg: Alg,
    now: i64,
) -> Option<&'a KeyInfo> {
    infos
        .into_iter()
        .filter(|info| info.alg == alg && info.may_sign(now))
        .max_by_key(|info| (info.activates_at, info.created_at, info.kid.clone()))
}

/// The host's signing keys and key-encryption key, shared as `Arc<Keys>`.
/// The key set is swapped whole when it is reloaded from the store, so a
/// signature never sees half a reload.
pub struct Keys {
    kek: KeyEncryptionKey,
    default_alg: Alg,
    keys: ArcSwap<Vec<Arc<SigningKey>>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("default_alg", &self.default_alg)
            .field("kids", &self.infos())
            .finish_non_exhaustive()
    }
}

impl Keys {
    pub fn new(kek: KeyEncryptionKey, default_alg: Alg, keys: Vec<SigningKey>) -> Keys {
        Keys {
            kek,
            default_alg,
            keys: ArcSwap::from_pointee(keys.into_iter().map(Arc::new).collect()),
        }
    }

    /// Keys that live in memory only, one per algorithm in `algs`, active
    /// from `now`, under a fresh key-encryption key: for tests and tools.
    pub fn ephemeral(default_alg: Alg, algs: &[Alg], now: i64) -> Keys {
        let keys = algs
            .iter()
            .map(|alg| SigningKey::generate(*alg, now, now))
            .collect();
        Keys::new(KeyEncryptionKey::generate(), default_alg, keys)
    }

    pub fn default_alg(&self) -> Alg {
        self.default_alg
    }

    pub fn key_encryption_key(&self) -> &KeyEncryptionKey {
        &self.kek
    }

    /// Replaces the key set (a reload from the store).
    pub fn replace(&self, keys: Vec<SigningKey>) {
        self.keys
            .store(Arc::new(keys.into_iter().map(Arc::new).collect()));
    }

    /// Adds one key to the set (a key just created by this process).
    pub fn insert(&self, key: SigningKey) {
        let key = Arc::new(key);
        self.keys.rcu(|keys| {
            let mut keys: Vec<Arc<SigningKey>> = keys
                .iter()
                .filter(|k| k.info.kid != key.info.kid)
                .cloned()
                .collect();
            keys.push(key.clone());
            keys
        });
    }

    /// The descriptions of every key held.
    pub fn infos(&self) -> Vec<KeyInfo> {
        self.keys.load().iter().map(|k| k.info.clone()).collect()
    }

    /// The key that signs for `alg` at `now`.
    pub fn active(&self, alg: Alg, now: i64) -> Option<Arc<SigningKey>> {
        let keys = self.keys.load();
        let kid = signing_key(keys.iter().map(|k| &k.info), alg, now)?
            .kid
            .clone();
        keys.iter().find(|k| k.info.kid == kid).cloned()
    }

    /// The algorithms that have a key able to sign at `now`.
    pub fn algs(&self, now: i64) -> Vec<Alg> {
        Alg::ALL
            .into_iter()
            .filter(|alg| self.active(*alg, now).is_some())
            .collect()
    }

    /// Signs `claims` as a compact JWS with the key active now for the
    /// default algorithm; the header carries `alg`, `kid` and `typ`.
    pub fn sign(
        &self,
        typ: &str,
        claims: &Map<String, Value>,
        now: i64,
    ) -> Result<String, SignError> {
        self.sign_with(self.default_alg, typ, claims, now)
    }

    /// As [`Keys::sign`], with the key active now for `alg`.
    pub fn sign_with(
        &self,
        alg: Alg,
        typ: &str,
        claims: &Map<String, Value>,
        now: i64,
    ) -> Result<String, SignError> {
        let key = self.active(alg, now).ok_or(SignError::NoActiveKey(alg))?;
        key.pair.sign(typ, claims)
    }

    /// Verifies a compact JWS against the key its header's `kid` names,
    /// among the keys published at `now` (retired keys still published
    /// included), with that key's own algorithm: `alg: none`, an unknown
    /// `kid` and a foreign signature are refused. Time claims are the
    /// caller's to judge.
    pub fn verify(&self, token: &str, now: i64) -> Result<Verified, VerifyError> {
        let metadata = Token::decode_metadata(token).map_err(|_| VerifyError::Malformed)?;
        let kid = metadata.key_id().ok_or(VerifyError::Malformed)?.to_string();
        let keys = self.keys.load();
        let key = keys
            .iter()
            .find(|k| k.info.kid == kid && k.info.published(now))
            .ok_or_else(|| VerifyError::UnknownKey(kid.clone()))?;
        if metadata.algorithm() != key.info.alg.name() {
            return Err(VerifyError::WrongAlgorithm(
                metadata.algorithm().to_string(),
            ));
        }
        let claims = key.pair.verify(token, now)?;
        Ok(Verified {
            kid,
            alg: key.info.alg,
            typ: metadata.signature_type().map(str::to_string),
            claims,
        })
    }

    /// The JWK Set (RFC 7517 §5) of every key published at `now`: public
    /// parameters only, in a stable order (algorithm, then creation).
    pub fn jwks(&self, now: i64) -> Value {
        let keys = self.keys.load();
        let mut published: Vec<&Arc<SigningKey>> =
            keys.iter().filter(|k| k.info.published(now)).collect();
        published.sort_by_key(|k| (k.info.alg, k.info.created_at, k.info.kid.clone()));
        let keys: Vec<Value> = published.iter().map(|k| k.public_jwk.clone()).collect();
        serde_json::json!({ "keys": keys })
    }

    /// Seals a secret at rest (AES-256-GCM under the key-encryption key).
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        self.kek.seal(plaintext, b"")
    }

    /// Opens what [`Keys::seal`] sealed; refused if it was sealed under
    /// another key or altered.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.kek.open(sealed, b"")
    }
}

#[cfg(test)]
mod tests;
