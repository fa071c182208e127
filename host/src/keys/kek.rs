//! The key-encryption key: 32 random bytes that seal private signing keys
//! and other secrets at rest with AES-256-GCM (a random 96-bit nonce per
//! message, the caller's associated data bound in). Its encoding is
//! base64url without padding; its check value lets the host tell a wrong
//! key from a damaged record without trying to open anything.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::Nonce;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// The key's length: AES-256.
pub const KEY_ENCRYPTION_KEY_BYTES: usize = 32;

/// The first byte of a sealed value: the format (AES-256-GCM, 12-byte nonce).
const SEALED_V1: u8 = 1;
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

/// The key-encryption key. Debug never shows it.
#[derive(Clone)]
pub struct KeyEncryptionKey {
    key: Zeroizing<[u8; KEY_ENCRYPTION_KEY_BYTES]>,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyEncryptionKey(check {})", self.check_value())
    }
}

/// Why a key-encryption key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyEncryptionKeyError {
    #[error("is not base64url")]
    Encoding,
    #[error("is {0} bytes long, not 32")]
    Length(usize),
}

/// Why a sealed value did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the sealed value does not open under this key-encryption key (wrong key, or altered)")]
    Refused,
}

impl KeyEncryptionKey {
    pub fn from_bytes(bytes: [u8; KEY_ENCRYPTION_KEY_BYTES]) -> Self {
        Self {
            key: Zeroizing::new(bytes),
        }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_ENCRYPTION_KEY_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// Parses the key as written in `GRANTBOX_KEY_ENCRYPTION_KEY` or the key
    /// file: 32 bytes, base64url (RFC 4648 §5), padding and surrounding
    /// whitespace allowed.
    pub fn parse(text: &str) -> Result<Self, KeyEncryptionKeyError> {
        let text = text.trim().trim_end_matches('=');
        let bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| KeyEncryptionKeyError::Encoding)?,
        );
        let key: [u8; KEY_ENCRYPTION_KEY_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyEncryptionKeyError::Length(bytes.len()))?;
        Ok(Self::from_bytes(key))
    }

    /// The encoding [`KeyEncryptionKey::parse`] reads, for writing a key file.
    pub fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE_NO_PAD.encode(self.key.as_slice()))
    }

    /// A value stored beside sealed keys that tells whether this is the key
    /// they were sealed under: SHA-256 of a fixed label and the key,
    /// hex, first 16 bytes. It reveals nothing usable of a 256-bit random key.
    pub fn check_value(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(b"grantbox key-encryption key check v1\0");
        hash.update(self.key.as_slice());
        hex::encode(&hash.finalize()[..16])
    }

    /// HMAC-SHA256 (RFC 2104) keyed with this key: a value every instance
    /// sharing the key computes alike and nobody else can, for
    /// `purpose` (a fixed label naming the use and its version) over `message`.
    pub fn mac(&self, purpose: &[u8], message: &[u8]) -> [u8; 32] {
        const BLOCK: usize = 64;
        let mut inner = Sha256::new();
        let mut outer = Sha256::new();
        let mut key = [0u8; BLOCK];
        key[..KEY_ENCRYPTION_KEY_BYTES].copy_from_slice(self.key.as_slice());
        let key = Zeroizing::new(key);
        inner.update(key.map(|b| b ^ 0x36));
        outer.update(key.map(|b| b ^ 0x5c));
        // The purpose is length-prefixed so that no two (purpose, message)
        // pairs feed the same bytes.
        inner.update((purpose.len() as u64).to_be_bytes());
        inner.update(purpose);
        inner.update(message);
        outer.update(inner.finalize());
        outer.finalize().into()
    }

    /// Seals `plaintext`, binding `associated_data` (which must be given
    /// again to open it).
    pub fn seal(&self, plaintext: &[u8], associated_data: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new_from_slice(self.key.as_slice()).expect("32-byte key");
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = cipher
            .encrypt(
                &Nonce::<Aes256Gcm>::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: associated_data,
                },
            )
            .expect("AES-GCM seals any length the host uses");
        let mut sealed = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
        sealed.push(SEALED_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Seals a `client_secret_jwt` client's secret, bound to its client id so
    /// that a sealed secret copied to another client's row does not open.
    pub fn seal_client_secret(&self, client_id: &str, secret: &str) -> Vec<u8> {
        self.seal(secret.as_bytes(), &client_secret_label(client_id))
    }

    /// Opens what [`KeyEncryptionKey::seal_client_secret`] sealed for `client_id`.
    pub fn open_client_secret(
        &self,
        client_id: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        self.open(sealed, &client_secret_label(client_id))
            .map(Zeroizing::new)
    }

    /// Opens what [`KeyEncryptionKey::seal`] sealed with the same associated data.
    pub fn open(&self, sealed: &[u8], associated_data: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] != SEALED_V1 {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().expect("split at the nonce length");
        let cipher = Aes256Gcm::new_from_slice(self.key.as_slice()).expect("32-byte key");
        cipher
            .decrypt(
                &Nonce::<Aes256Gcm>::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: associated_data,
                },
            )
            .map_err(|_| OpenError::Refused)
    }
}

/// The associated data of a sealed client secret.
fn client_secret_label(client_id: &str) -> Vec<u8> {
    let mut label = b"grantbox client_secret_jwt secret v1\0".to_vec();
    label.extend_from_slice(client_id.as_bytes());
    label
}
