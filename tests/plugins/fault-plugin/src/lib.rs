//! A grant plugin that misbehaves on purpose, for the host's fault-isolation
//! tests: `[config] mode` picks what `exchange` does, and `[config]
//! grant_type` which grant type it claims, so one wasm serves many manifests.

use std::hint::black_box;

use grantbox_sdk::{Grant, OAuthError, PluginInfo, TokenGrant, TokenRequest, TokenResponse, host};

/// The grant type claimed when the config names none.
pub const DEFAULT_GRANT_TYPE: &str = "urn:grantbox:test:fault";

/// What `exchange` does, from `[config] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Issues a token like the client credentials grant.
    Ok,
    /// Panics, which traps (plugins are built with `panic = "abort"`).
    Panic,
    /// Spins until the host's deadline stops it.
    Loop,
    /// Allocates until the host's memory limit stops it.
    Memory,
    /// Recurses until the stack overflows.
    Recursion,
    /// Calls `users`, which its manifest does not grant, and reports the refusal.
    Capability,
}

impl Mode {
    /// The mode named `name`, as written in the manifest.
    pub fn parse(name: &str) -> Option<Mode> {
        Some(match name {
            "ok" => Mode::Ok,
            "panic" => Mode::Panic,
            "loop" => Mode::Loop,
            "memory" => Mode::Memory,
            "recursion" => Mode::Recursion,
            "capability" => Mode::Capability,
            _ => return None,
        })
    }
}

/// The misbehaving grant.
pub struct Fault;

impl Grant for Fault {
    fn info() -> PluginInfo {
        // info() cannot fail, so any trouble reading the config falls back to the default.
        let grant_type = host::config::get("grant_type")
            .ok()
            .flatten()
            .unwrap_or_else(|| DEFAULT_GRANT_TYPE.to_string());
        PluginInfo::new().grant_type(&grant_type)
    }

    fn exchange(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        let name = host::config::get("mode")
            .map_err(|error| OAuthError::server_error(format!("config: {}", error.message())))?
            .unwrap_or_else(|| "ok".to_string());
        let mode = Mode::parse(&name)
            .ok_or_else(|| OAuthError::server_error(format!("unknown fault mode `{name}`")))?;
        match mode {
            Mode::Ok => issue(request),
            Mode::Panic => panic!("fault-plugin: panic mode"),
            Mode::Loop => spin(),
            Mode::Memory => hoard(),
            Mode::Recursion => {
                let depth = recurse(0);
                Err(OAuthError::server_error(format!(
                    "recursion ended at depth {depth}"
                )))
            }
            Mode::Capability => match host::users::verify_password("x", "y") {
                Err(error) => Err(OAuthError::server_error(format!(
                    "host refused: {}",
                    error.message()
                ))),
                Ok(_) => Err(OAuthError::server_error(
                    "host allowed `users`, which the manifest does not ask for",
                )),
            },
        }
    }
}

grantbox_sdk::export!(Fault);

/// Issues a token with the requested or the registered scope, with no
/// public-client check, so fault tests need no particular client.
fn issue(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
    let grant = TokenGrant {
        subject: None,
        scope: request.scope.unwrap_or(request.client.scopes),
        refresh_token: false,
        grant_id: None,
    };
    Ok(host::tokens::issue(&grant)?.into())
}

/// Never returns; `black_box` keeps the optimizer from proving the loop empty.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Never returns; every MiB is written (`vec!` fills it) and kept alive.
fn hoard() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(black_box(vec![1u8; 1 << 20]));
        black_box(&mut hoard);
    }
}

/// Recurses until the stack overflows: the result is used after the call, so
/// it is not a tail call, and `black_box` hides the exit condition.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(black_box(frame)[31])
}

#[cfg(test)]
mod tests;
