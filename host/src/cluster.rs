//! The instances that share one database act as one cluster: each
//! `grantbox serve` registers itself in the store's instance registry at
//! start, heartbeats from its housekeeping task, and deregisters on a clean
//! shutdown (`serve.rs`); `grantbox instances` lists them. This module holds
//! what needs neither SQL nor HTTP: the plugin set fingerprint, the heartbeat
//! period and when an instance counts as stale or is purged.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::plugin::Registry;

/// How often a running instance records its heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(60);

/// Missed heartbeats after which an instance is shown as stale.
pub const STALE_AFTER_INTERVALS: u64 = 3;

/// How long after its last heartbeat a stale instance's row is deleted.
pub const PURGE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The fingerprint of the plugin set a registry serves: the first 16 hex
/// digits of SHA-256 over its plugins' fingerprints (which cover manifest,
/// configuration and module), sorted; two instances with the same
/// fingerprint serve the same plugins.
pub fn plugin_set_fingerprint(registry: &Registry) -> String {
    let mut fingerprints: Vec<&str> = registry
        .plugins()
        .iter()
        .map(|plugin| plugin.fingerprint.as_str())
        .collect();
    fingerprints.sort_unstable();
    let mut hash = Sha256::new();
    for fingerprint in fingerprints {
        hash.update(fingerprint.as_bytes());
        hash.update(b"\n");
    }
    hex::encode(hash.finalize())[..16].to_owned()
}

/// Whether an instance whose last heartbeat was at `heartbeat_at` is stale at `now`.
pub fn is_stale(heartbeat_at: i64, now: i64) -> bool {
    let limit = (HEARTBEAT_INTERVAL.as_secs() * STALE_AFTER_INTERVALS) as i64;
    now - heartbeat_at > limit
}

/// The heartbeat time before which an instance's row is purged at `now`.
pub fn purge_before(now: i64) -> i64 {
    now - PURGE_AFTER.as_secs() as i64
}

/// A new instance id: 16 random base64url characters.
pub fn new_instance_id() -> String {
    crate::secret::new_token().chars().take(16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_is_stale_after_three_missed_heartbeats() {
        assert!(!is_stale(1000, 1000 + 180));
        assert!(is_stale(1000, 1000 + 181));
        assert_eq!(purge_before(100_000), 100_000 - 86_400);
    }
}
