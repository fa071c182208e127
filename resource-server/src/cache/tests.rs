//! The cache's bounds: time per entry, and entries when full.

use super::*;

fn key(n: u8) -> TokenHash {
    token_hash(&format!("token-{n}"))
}

#[test]
fn an_entry_is_used_until_its_bound_and_then_dropped() {
    let cache = Cache::new(10);
    cache.insert(key(1), Cached::Inactive, 1_000, 2_000);
    assert!(cache.get(&key(1), 1_999).is_some());
    assert!(cache.get(&key(1), 2_000).is_none());
    assert_eq!(cache.len(), 0, "the expired entry was removed");
}

#[test]
fn nothing_is_kept_with_a_bound_in_the_past_or_capacity_zero() {
    let cache = Cache::new(10);
    cache.insert(key(1), Cached::Inactive, 1_000, 1_000);
    assert_eq!(cache.len(), 0);
    let none = Cache::new(0);
    none.insert(key(1), Cached::Inactive, 1_000, 5_000);
    assert_eq!(none.len(), 0);
}

#[test]
fn a_full_cache_drops_expired_entries_then_the_soonest_to_expire() {
    let cache = Cache::new(3);
    cache.insert(key(1), Cached::Inactive, 0, 100);
    cache.insert(key(2), Cached::Inactive, 0, 900);
    cache.insert(key(3), Cached::Inactive, 0, 500);
    // At 200, key 1 has expired: it makes room.
    cache.insert(key(4), Cached::Inactive, 200, 1_000);
    assert_eq!(cache.len(), 3);
    assert!(cache.get(&key(2), 200).is_some());
    // None expired now: key 3 (until 500) is the soonest and goes.
    cache.insert(key(5), Cached::Inactive, 200, 1_000);
    assert_eq!(cache.len(), 3);
    assert!(cache.get(&key(3), 200).is_none());
    assert!(cache.get(&key(2), 200).is_some());
    assert!(cache.get(&key(5), 200).is_some());
}
