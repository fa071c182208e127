//! The only place that reads the wall clock. Everything else takes time as a
//! value from a [`Clock`], so tests can run on a fixed or shifted clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, from the system or from a test.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Added to the system time; set by tests (and by `GRANTBOX_CLOCK_OFFSET`
    /// in end-to-end tests of expiry) to move time forward.
    offset: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    pub fn with_offset(seconds: i64) -> Self {
        Self {
            offset: Arc::new(AtomicI64::new(seconds)),
        }
    }

    /// Unix seconds.
    #[allow(
        clippy::disallowed_methods,
        reason = "this is the one place that reads the wall clock"
    )]
    pub fn now(&self) -> i64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        system + self.offset.load(Ordering::Relaxed)
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }

    /// A monotonic instant, for durations only.
    #[allow(
        clippy::disallowed_methods,
        reason = "this is the one place that reads the wall clock"
    )]
    pub fn instant() -> Instant {
        Instant::now()
    }
}
