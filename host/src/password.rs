//! Resource-owner password checks: argon2 runs on the blocking pool, at most
//! one check per core at a time, so a burst of logins or password grants
//! cannot spend unbounded memory (argon2 takes ~19 MiB a check) or starve
//! the async workers.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::secret;
use crate::store::User;

/// Verifies passwords with bounded concurrency.
#[derive(Debug, Clone)]
pub struct PasswordChecker {
    permits: Arc<Semaphore>,
}

impl Default for PasswordChecker {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new(cores)),
        }
    }
}

impl PasswordChecker {
    /// The user when the password matches and the user is not disabled. An
    /// unknown or disabled user costs the same argon2 work as a wrong
    /// password, so timing tells nothing.
    pub async fn verify(&self, user: Option<User>, password: String) -> Option<User> {
        let _permit = self.permits.acquire().await.ok()?;
        tokio::task::spawn_blocking(move || match user {
            Some(user) if user.disabled_at.is_none() => {
                secret::verify_password(&password, &user.password_hash).then_some(user)
            }
            _ => {
                secret::dummy_verify(&password);
                None
            }
        })
        .await
        .ok()
        .flatten()
    }
}
