//! Introspection answers kept by the SHA-256 of their token: bounded in
//! entries, each entry in time (the TTL, and for an active token never past
//! its `exp`). Knows nothing of HTTP; `now` is always an argument.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::Authorized;

/// The key of a token in the cache: its SHA-256, so the cache never holds a
/// token itself.
pub(crate) type TokenHash = [u8; 32];

pub(crate) fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// What the cache remembers of a token.
#[derive(Clone)]
pub(crate) enum Cached {
    Active(Authorized),
    /// Grantbox said `active: false` (or the token was one this crate refuses,
    /// e.g. a refresh token): an inactive token never becomes active again.
    Inactive,
}

struct Entry {
    value: Cached,
    /// Unix milliseconds after which the entry is not used.
    valid_until_ms: i64,
}

pub(crate) struct Cache {
    capacity: usize,
    entries: Mutex<HashMap<TokenHash, Entry>>,
}

impl Cache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The entry for `key` if it is still valid at `now_ms`; an expired one is
    /// removed.
    pub(crate) fn get(&self, key: &TokenHash, now_ms: i64) -> Option<Cached> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some(entry) if now_ms < entry.valid_until_ms => Some(entry.value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` until `valid_until_ms` (not at all if that is not in the
    /// future). When full, expired entries go first, then the entry that
    /// would expire soonest.
    pub(crate) fn insert(&self, key: TokenHash, value: Cached, now_ms: i64, valid_until_ms: i64) {
        if self.capacity == 0 || valid_until_ms <= now_ms {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, entry| now_ms < entry.valid_until_ms);
            if entries.len() >= self.capacity
                && let Some(soonest) = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.valid_until_ms)
                    .map(|(key, _)| *key)
            {
                entries.remove(&soonest);
            }
        }
        entries.insert(
            key,
            Entry {
                value,
                valid_until_ms,
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests;
