//! Login throttling: failed password checks are counted per username and per
//! client address in a sliding window; past the limit, checks are refused
//! before any password is hashed. Shared by the login form and the password grant.

use std::collections::HashMap;
use std::sync::Mutex;

/// Limits on failed attempts within `window_seconds`.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub per_username: u32,
    pub per_address: u32,
    pub window_seconds: i64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_username: 5,
            per_address: 20,
            window_seconds: 15 * 60,
        }
    }
}

/// Failure counts in memory (per process).
#[derive(Debug, Default)]
pub struct LoginLimiter {
    limits: LoginLimits,
    failures: Mutex<HashMap<String, Vec<i64>>>,
}

/// Refused: too many recent failures; retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: i64,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> Self {
        Self {
            limits,
            failures: Mutex::default(),
        }
    }

    fn keys(username: &str, address: Option<&str>) -> [(String, bool); 2] {
        [
            (format!("user:{}", username.to_lowercase()), true),
            (format!("addr:{}", address.unwrap_or("")), address.is_some()),
        ]
    }

    /// Whether another attempt may be checked now.
    pub fn check(&self, username: &str, address: Option<&str>, now: i64) -> Result<(), Throttled> {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (key, used) in Self::keys(username, address) {
            if !used {
                continue;
            }
            let limit = if key.starts_with("user:") {
                self.limits.per_username
            } else {
                self.limits.per_address
            };
            if let Some(times) = failures.get_mut(&key) {
                times.retain(|t| now - t < self.limits.window_seconds);
                if times.len() >= limit as usize {
                    let oldest = times.first().copied().unwrap_or(now);
                    return Err(Throttled {
                        retry_after: (oldest + self.limits.window_seconds - now).max(1),
                    });
                }
            }
        }
        Ok(())
    }

    pub fn record_failure(&self, username: &str, address: Option<&str>, now: i64) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Bound memory: forget windows that have passed when the map grows.
        if failures.len() > 100_000 {
            failures.retain(|_, times| {
                times
                    .last()
                    .is_some_and(|t| now - t < self.limits.window_seconds)
            });
        }
        for (key, used) in Self::keys(username, address) {
            if used {
                failures.entry(key).or_default().push(now);
            }
        }
    }

    /// A successful login clears the username's failures (not the address's).
    pub fn record_success(&self, username: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(&format!("user:{}", username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_per_username_and_per_address() {
        let limiter = LoginLimiter::new(LoginLimits {
            per_username: 2,
            per_address: 3,
            window_seconds: 60,
        });
        limiter.record_failure("alice", Some("10.0.0.1"), 0);
        limiter.record_failure("alice", Some("10.0.0.1"), 1);
        assert_eq!(
            limiter.check("alice", Some("10.0.0.2"), 2),
            Err(Throttled { retry_after: 58 })
        );
        assert!(limiter.check("bob", Some("10.0.0.1"), 2).is_ok());
        limiter.record_failure("bob", Some("10.0.0.1"), 2);
        assert!(
            limiter.check("carol", Some("10.0.0.1"), 3).is_err(),
            "the address is throttled"
        );
        assert!(
            limiter.check("alice", None, 61).is_ok(),
            "the window passed"
        );
        limiter.record_success("bob");
        assert!(limiter.check("bob", None, 3).is_ok());
    }
}
