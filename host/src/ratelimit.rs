//! Login throttling, shared by the login form and the password grant: failed
//! password checks are counted in the database per username and address
//! together, per address and per username, and a throttled attempt is refused
//! (before any password is hashed) until a wait that grows with each failure.
//! Nothing locks an account: the right password from another address still works.
//! The same counters, under names of their own, throttle wrong user codes at
//! a plugin's user step per session and per address (RFC 8628 §5.1).

use std::sync::Mutex;

use crate::store::{LoginFailures, Store, StoreError};

/// The throttle's policy: Keycloak's brute-force detection (a wait increment
/// per failure past a threshold, a maximum wait, a failure reset time), but
/// counted per username *and* address, so an attacker slows down only
/// themselves; plus brakes against spraying usernames from one address and
/// against one username from very many addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures for one username from one address before that pair waits
    /// (Keycloak's "max login failures").
    pub free_failures: u32,
    /// Each failure from then on adds this much to the pair's wait
    /// (Keycloak's "wait increment").
    pub wait_increment_seconds: i64,
    /// No wait is longer (Keycloak's "max wait").
    pub max_wait_seconds: i64,
    /// Failures from one address over all usernames before the address waits
    /// too, growing the same way: the brake on spraying.
    pub address_failures: u32,
    /// Failures for one username over all addresses before every address
    /// waits after its first failure for that username: the brake on a
    /// distributed attack. An address with no failure still signs in.
    pub username_failures: u32,
    /// A counter starts again after this long without a failure (Keycloak's
    /// "failure reset time"); housekeeping then deletes it.
    pub failure_reset_seconds: i64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            free_failures: 5,
            wait_increment_seconds: 60,
            max_wait_seconds: 15 * 60,
            address_failures: 20,
            username_failures: 100,
            failure_reset_seconds: 12 * 3600,
        }
    }
}

/// Refused: too many recent failures; retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: i64,
}

/// Why a password check may not go ahead.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("too many failed sign-ins; retry after {} seconds", .0.retry_after)]
    Throttled(Throttled),
    #[error("the failed sign-in counters cannot be read: {0}")]
    Store(#[from] StoreError),
}

/// Where a token request's password checks come from: the address they are
/// throttled by, and whether one was throttled, so the token endpoint can
/// answer 429 whatever the plugin made of the refusal.
#[derive(Debug)]
pub struct SignInOrigin {
    address: String,
    throttled: Mutex<Option<Throttled>>,
}

impl SignInOrigin {
    pub fn new(address: String) -> Self {
        Self {
            address,
            throttled: Mutex::new(None),
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The longest wait a password check of this request was refused for.
    pub fn throttled(&self) -> Option<Throttled> {
        *self
            .throttled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers that a password check of this request was throttled.
    pub fn note(&self, throttled: Throttled) {
        let mut noted = self
            .throttled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if noted.is_none_or(|earlier| earlier.retry_after < throttled.retry_after) {
            *noted = Some(throttled);
        }
    }
}

/// The counters of one attempt, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptFailures {
    /// This username from this address.
    pub pair: Failures,
    /// This username from every address.
    pub username: Failures,
    /// This address for every username.
    pub address: Failures,
}

/// One counter: failures since it started again, and when the last was.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    pub failures: i64,
    pub last_failure_at: i64,
}

/// The throttle over the store's counters. Every instance on one database
/// shares them.
#[derive(Debug, Clone)]
pub struct LoginLimiter {
    limits: LoginLimits,
    store: Store,
}

/// The address counted when a password check has none (a plugin call
/// outside a token request).
const UNKNOWN_ADDRESS: &str = "unknown";

impl LoginLimiter {
    pub fn new(limits: LoginLimits, store: Store) -> Self {
        Self { limits, store }
    }

    pub fn limits(&self) -> &LoginLimits {
        &self.limits
    }

    /// Whether a password check for `username` from `address` may go ahead now.
    pub async fn check(
        &self,
        username: &str,
        address: Option<&str>,
        now: i64,
    ) -> Result<(), Refusal> {
        let counters = Counters::new(username, address);
        let stored = self
            .store
            .find_login_failures(&counters.all(), self.reset_before(now))
            .await?;
        decide(&self.limits, &counters.attempt(&stored), now).map_err(Refusal::Throttled)
    }

    /// Counts a password check's outcome: a failure adds to all three
    /// counters; a success clears only this username and address, so an
    /// attacker's own account cannot wipe an address's or a username's record.
    pub async fn record(
        &self,
        username: &str,
        address: Option<&str>,
        verified: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let counters = Counters::new(username, address);
        if verified {
            return self.store.clear_login_failures(&counters.pair).await;
        }
        self.store
            .add_login_failure(&counters.all(), now, self.reset_before(now))
            .await
            .map(drop)
    }

    /// Deletes counters that have started again (housekeeping).
    pub async fn purge(&self, now: i64) -> Result<u64, StoreError> {
        self.store
            .purge_login_failures(self.reset_before(now))
            .await
    }

    fn reset_before(&self, now: i64) -> i64 {
        now - self.limits.failure_reset_seconds
    }
}

/// The policy, without IO: whether an attempt with these counters may go
/// ahead at `now`, or how long it must wait.
pub fn decide(limits: &LoginLimits, attempt: &AttemptFailures, now: i64) -> Result<(), Throttled> {
    // Past the username brake each address gets one failure, not the usual
    // allowance, before it waits.
    let free_pair = if attempt.username.failures >= i64::from(limits.username_failures) {
        1
    } else {
        i64::from(limits.free_failures.max(1))
    };
    let waits = [
        (attempt.pair, free_pair),
        (attempt.address, i64::from(limits.address_failures.max(1))),
    ];
    let retry_after = waits
        .iter()
        .filter(|(counter, free)| counter.failures >= *free)
        .map(|(counter, free)| {
            let wait = (limits.wait_increment_seconds * (counter.failures - free + 1))
                .min(limits.max_wait_seconds);
            counter.last_failure_at + wait - now
        })
        .max()
        .unwrap_or(0);
    if retry_after > 0 {
        return Err(Throttled { retry_after });
    }
    Ok(())
}

/// The names of an attempt's counters in the store. Usernames compare
/// without case, as the user store does not; a counter shared by "Alice"
/// and "alice" costs nothing. An address never contains a space, so the
/// pair's name is unambiguous.
struct Counters {
    pair: String,
    username: String,
    address: String,
}

impl Counters {
    fn new(username: &str, address: Option<&str>) -> Self {
        let username = username.to_lowercase();
        let address = address.unwrap_or(UNKNOWN_ADDRESS);
        Self {
            pair: format!("pair:{address} {username}"),
            username: format!("username:{username}"),
            address: format!("address:{address}"),
        }
    }

    fn all(&self) -> [String; 3] {
        [
            self.pair.clone(),
            self.username.clone(),
            self.address.clone(),
        ]
    }

    fn attempt(&self, stored: &[LoginFailures]) -> AttemptFailures {
        let find = |name: &str| stored_failures(stored, name);
        AttemptFailures {
            pair: find(&self.pair),
            username: find(&self.username),
            address: find(&self.address),
        }
    }
}

/// The failures stored under the counter `name` (none when it has no row).
fn stored_failures(stored: &[LoginFailures], name: &str) -> Failures {
    stored
        .iter()
        .find(|row| row.counter == name)
        .map(|row| Failures {
            failures: row.failures,
            last_failure_at: row.last_failure_at,
        })
        .unwrap_or_default()
}

/// The user-code throttle's policy (RFC 8628 §5.1): the login throttle's
/// shape, counted per session instead of per username. A session may get a
/// few codes wrong (a typo, a code read off a screen) before it waits; an
/// address that opens session after session meets the address brake. A
/// right code clears nothing: anyone can get valid codes of their own, so a
/// valid code must not buy more guesses.
pub const USER_CODE_LIMITS: LoginLimits = LoginLimits {
    free_failures: 5,
    wait_increment_seconds: 60,
    max_wait_seconds: 15 * 60,
    address_failures: 20,
    // Not used: user codes have no username counter.
    username_failures: u32::MAX,
    // A user code lives minutes; a guesser's record need not outlive it by much.
    failure_reset_seconds: 3600,
};

/// The throttle of wrong user codes at a user step, over the same stored
/// counters as sign-ins (every instance shares them), named apart from them.
#[derive(Debug, Clone)]
pub struct UserCodeLimiter {
    limits: LoginLimits,
    store: Store,
}

impl UserCodeLimiter {
    pub fn new(limits: LoginLimits, store: Store) -> Self {
        Self { limits, store }
    }

    pub fn limits(&self) -> &LoginLimits {
        &self.limits
    }

    /// Whether `session` (the session's throttle key) from `address` may
    /// try a user code now.
    pub async fn check(&self, session: &str, address: &str, now: i64) -> Result<(), Refusal> {
        let counters = UserCodeCounters::new(session, address);
        let stored = self
            .store
            .find_login_failures(&counters.all(), self.reset_before(now))
            .await?;
        decide(&self.limits, &counters.attempt(&stored), now).map_err(Refusal::Throttled)
    }

    /// Counts a wrong user code against the session and the address.
    pub async fn record_failure(
        &self,
        session: &str,
        address: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let counters = UserCodeCounters::new(session, address);
        self.store
            .add_login_failure(&counters.all(), now, self.reset_before(now))
            .await
            .map(drop)
    }

    fn reset_before(&self, now: i64) -> i64 {
        now - self.limits.failure_reset_seconds
    }
}

/// The names of a user-code attempt's counters: prefixed `user_code:` so
/// that they never meet a sign-in counter (`pair:`, `username:`, `address:`).
struct UserCodeCounters {
    session: String,
    address: String,
}

impl UserCodeCounters {
    fn new(session: &str, address: &str) -> Self {
        Self {
            session: format!("user_code:session:{session}"),
            address: format!("user_code:address:{address}"),
        }
    }

    fn all(&self) -> [String; 2] {
        [self.session.clone(), self.address.clone()]
    }

    /// The session counter takes the place of the pair, the address stays
    /// the address; there is no username.
    fn attempt(&self, stored: &[LoginFailures]) -> AttemptFailures {
        let find = |name: &str| stored_failures(stored, name);
        AttemptFailures {
            pair: find(&self.session),
            username: Failures::default(),
            address: find(&self.address),
        }
    }
}

#[cfg(test)]
mod tests;
