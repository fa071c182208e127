//! Registered clients kept in memory for client authentication (RFC 6749 §2.3),
//! so that a token, introspection or revocation request does not read the
//! `clients` table each time.
//!
//! Only clients that exist are cached: a client registered while the server
//! runs (`grantbox client add`, from another process or instance) is read from
//! the store on its first request and is usable at once. A change to a
//! registration (`client update|remove|rotate-secret`, on any instance or the
//! CLI) bumps a counter in the database; every instance reads that counter at
//! most once a second ([`ClientCache::follow_changes`]) and forgets every
//! entry when it moved, so a removed or rotated client stops working on every
//! instance within about a second; the instance that served an RFC 7592
//! change forgets the entry at once ([`ClientCache::forget`]). An entry is
//! still dropped after [`TTL_SECONDS`] so that a row changed by hand in the
//! database takes effect within that time. Client authentication reads the store again when a check
//! fails against a cached entry ([`ClientCache::refresh`]), which is what an
//! unknown client id costs too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use crate::clock::Clock;
use crate::store::{Client, Store, StoreError};

/// How long a cached client is trusted before the store is read again.
pub const TTL_SECONDS: i64 = 60;

/// At most this many clients are kept; when full, the cache starts over.
const CAPACITY: usize = 10_000;

#[derive(Debug)]
pub struct ClientCache {
    entries: RwLock<HashMap<String, Entry>>,
    /// The clients' change counter when last read ([`Store::clients_generation`]).
    generation: AtomicI64,
    /// When the counter was last read (Unix seconds).
    generation_read_at: AtomicI64,
}

impl Default for ClientCache {
    fn default() -> Self {
        ClientCache {
            entries: RwLock::default(),
            // No count yet: the first read sets it.
            generation: AtomicI64::new(i64::MIN),
            generation_read_at: AtomicI64::new(i64::MIN),
        }
    }
}

#[derive(Debug)]
struct Entry {
    client: Arc<Client>,
    read_at: i64,
}

impl ClientCache {
    /// The cached client with this id, if it was read less than
    /// [`TTL_SECONDS`] before `now`.
    pub fn cached(&self, client_id: &str, now: i64) -> Option<Arc<Client>> {
        self.read()
            .get(client_id)
            .filter(|entry| now - entry.read_at < TTL_SECONDS)
            .map(|entry| entry.client.clone())
    }

    /// Forgets every entry when a client was changed or removed since the
    /// last look, reading the change counter at most once a second (one
    /// caller reads it; the others go on with the cache meanwhile).
    pub async fn follow_changes(&self, store: &Store, now: i64) -> Result<(), StoreError> {
        let read_at = self.generation_read_at.load(Ordering::Acquire);
        if now <= read_at
            || self
                .generation_read_at
                .compare_exchange(read_at, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return Ok(());
        }
        let generation = store.clients_generation().await?;
        if self.generation.swap(generation, Ordering::AcqRel) != generation {
            self.write().clear();
        }
        Ok(())
    }

    /// Reads the client from the store and caches what it found.
    pub async fn refresh(
        &self,
        store: &Store,
        clock: &Clock,
        client_id: &str,
    ) -> Result<Option<Arc<Client>>, StoreError> {
        let now = clock.now();
        let found = store.find_client(client_id).await?;
        tracing::debug!(client_id = ?client_id, found = found.is_some(), "client registration read from the store");
        let Some(client) = found else {
            self.write().remove(client_id);
            return Ok(None);
        };
        let client = Arc::new(client);
        let mut entries = self.write();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            client_id.to_owned(),
            Entry {
                client: client.clone(),
                read_at: now,
            },
        );
        Ok(Some(client))
    }

    /// Drops the entry of a client changed or deleted through this instance
    /// (RFC 7592), so that its next request reads the store.
    pub fn forget(&self, client_id: &str) {
        self.write().remove(client_id);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave the map half-updated
        // (every update is one insert, remove or clear), so poisoning is ignored.
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: &str, scopes: &[&str]) -> Client {
        Client {
            client_id: id.into(),
            secret_hash: Some(vec![7; 32]),
            name: None,
            redirect_uris: vec![],
            grant_types: vec!["client_credentials".into()],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            public: false,
            trusted: false,
            introspection: false,
            created_at: 0,
            client_uri: None,
            auth: Default::default(),
            resources: Vec::new(),
            id_token_signed_response_alg: None,
            profile: None,
            access_token_format: Default::default(),
            post_logout_redirect_uris: Vec::new(),
            require_pushed_authorization_requests: false,
            dpop_bound_access_tokens: false,
        }
    }

    /// The lookup of client authentication: the cache while fresh, else the store.
    async fn find(
        cache: &ClientCache,
        store: &Store,
        clock: &Clock,
        client_id: &str,
    ) -> Result<Option<Arc<Client>>, StoreError> {
        match cache.cached(client_id, clock.now()) {
            Some(client) => Ok(Some(client)),
            None => cache.refresh(store, clock, client_id).await,
        }
    }

    #[tokio::test]
    async fn a_client_registered_after_a_miss_is_found_at_once() {
        let store = Store::open(":memory:").await.expect("store");
        let cache = ClientCache::default();
        let clock = Clock::system();
        assert!(
            find(&cache, &store, &clock, "late")
                .await
                .expect("find")
                .is_none()
        );
        store
            .insert_client(&client("late", &["read"]))
            .await
            .expect("insert");
        let found = find(&cache, &store, &clock, "late").await.expect("find");
        assert_eq!(found.map(|c| c.scopes.clone()), Some(vec!["read".into()]));
    }

    #[tokio::test]
    async fn a_client_changed_through_the_store_is_forgotten_within_a_second() {
        let store = Store::open(":memory:").await.expect("store");
        store
            .insert_client(&client("c1", &["read"]))
            .await
            .expect("insert");
        let cache = ClientCache::default();
        let clock = Clock::system();
        cache
            .follow_changes(&store, clock.now())
            .await
            .expect("counter");
        find(&cache, &store, &clock, "c1")
            .await
            .expect("find")
            .expect("client");
        assert!(cache.cached("c1", clock.now()).is_some());
        assert!(
            store
                .delete_client("c1", clock.now())
                .await
                .expect("delete")
                .is_some()
        );
        // Within the same second the counter is not read again.
        cache
            .follow_changes(&store, clock.now())
            .await
            .expect("counter");
        assert!(cache.cached("c1", clock.now()).is_some());
        clock.advance(1);
        cache
            .follow_changes(&store, clock.now())
            .await
            .expect("counter");
        assert!(cache.cached("c1", clock.now()).is_none(), "forgotten");
        assert!(
            find(&cache, &store, &clock, "c1")
                .await
                .expect("find")
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_cached_client_is_read_again_after_the_ttl() {
        let store = Store::open(":memory:").await.expect("store");
        store
            .insert_client(&client("c1", &["read"]))
            .await
            .expect("insert");
        let cache = ClientCache::default();
        let clock = Clock::system();
        let first = find(&cache, &store, &clock, "c1")
            .await
            .expect("find")
            .expect("client");
        // Changed behind Grantbox's back, as only a hand edit could.
        if let Some(pool) = store.sqlite_pool() {
            sqlx::query("UPDATE clients SET scopes = '[\"write\"]' WHERE client_id = 'c1'")
                .execute(pool)
                .await
                .expect("update");
        }
        clock.advance(TTL_SECONDS / 2);
        let within = find(&cache, &store, &clock, "c1")
            .await
            .expect("find")
            .expect("client");
        assert!(Arc::ptr_eq(&first, &within), "served from the cache");
        clock.advance(TTL_SECONDS);
        let after = find(&cache, &store, &clock, "c1")
            .await
            .expect("find")
            .expect("client");
        assert_eq!(after.scopes, vec!["write".to_string()]);
    }
}
