//! A grant plugin that misbehaves on purpose, for the host's fault-isolation
//! tests: `[config] mode` picks what `exchange` does, and `[config]
//! grant_type` which grant type it claims, so one wasm serves many manifests.

use std::hint::black_box;

use grantbox_sdk::{
    Grant, HostError, OAuthError, PluginInfo, TokenGrant, TokenRequest, TokenResponse, host,
};

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
    /// Issues up to 300 tokens in one call; answers with the first refusal.
    IssueMany,
    /// Writes up to 512 values of 64 KiB (32 MiB) without a TTL; answers
    /// with the first refusal.
    KeyValueFlood,
    /// Makes 20,000 `key-value.get` calls, then issues a token.
    KeyValueGets,
    /// Checks the password of `[config] username` 300 times, then issues a token.
    PasswordChecks,
    /// Reports what WASI gives it (environment, arguments, files, clocks)
    /// and what the `clock` capability says, as a `server_error` description.
    Sandbox,
    /// Has the host sign an access-token-shaped claim set (`typ` `at+jwt`,
    /// `aud` `[config] audience`, a minute long) through `signing`, and
    /// answers with the JWT as its access token; a refusal as the others.
    Sign,
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
            "issue-many" => Mode::IssueMany,
            "key-value-flood" => Mode::KeyValueFlood,
            "key-value-gets" => Mode::KeyValueGets,
            "password-checks" => Mode::PasswordChecks,
            "sandbox" => Mode::Sandbox,
            "sign" => Mode::Sign,
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
            Mode::IssueMany => {
                let grant = token_grant(request);
                for issued in 0..300 {
                    if let Err(error) = host::tokens::issue(&grant) {
                        return Err(refused(issued, error));
                    }
                }
                Err(OAuthError::server_error(
                    "the host issued 300 tokens in one call",
                ))
            }
            Mode::KeyValueFlood => {
                // Keys of its own per request (`prefix` parameter), so that
                // calls add up rather than overwrite each other.
                let prefix = request
                    .params
                    .iter()
                    .find(|(name, _)| name == "prefix")
                    .map(|(_, value)| value.clone())
                    .unwrap_or_default();
                let value = vec![7u8; 64 * 1024];
                for written in 0..512 {
                    if let Err(error) =
                        host::key_value::set(&format!("{prefix}-{written}"), &value, None)
                    {
                        return Err(refused(written, error));
                    }
                }
                Err(OAuthError::server_error(
                    "the host stored 32 MiB in one call",
                ))
            }
            Mode::KeyValueGets => {
                for _ in 0..20_000 {
                    black_box(host::key_value::get("absent").map_err(|error| refused(0, error))?);
                }
                issue(request)
            }
            Mode::PasswordChecks => {
                let config = |key: &str| host::config::get(key).ok().flatten().unwrap_or_default();
                let (username, password) = (config("username"), config("password"));
                for _ in 0..300 {
                    black_box(
                        host::users::verify_password(&username, &password)
                            .map_err(|error| refused(0, error))?,
                    );
                }
                issue(request)
            }
            Mode::Sandbox => Err(OAuthError::server_error(sandbox_report())),
            Mode::Sign => sign(request).map_err(|error| refused(0, error)),
        }
    }
}

grantbox_sdk::export!(Fault);

/// Issues a token with the requested or the registered scope, with no
/// public-client check, so fault tests need no particular client.
fn issue(request: TokenRequest) -> Result<TokenResponse, OAuthError> {
    Ok(host::tokens::issue(&token_grant(request))?.into())
}

/// A token with the requested or the registered scope, no refresh token.
fn token_grant(request: TokenRequest) -> TokenGrant {
    TokenGrant {
        subject: None,
        scope: request.scope.unwrap_or(request.client.scopes),
        refresh_token: false,
        grant_id: None,
    }
}

/// A JWT the host signed for this call, as the access token.
fn sign(request: TokenRequest) -> Result<TokenResponse, HostError> {
    let now = host::clock::now()?;
    let audience = host::config::get("audience")?.unwrap_or_default();
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), request.client.client_id.clone().into());
    claims.insert("client_id".into(), request.client.client_id.into());
    claims.insert("aud".into(), audience.into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + 60).into());
    claims.insert("jti".into(), "fault-plugin-signed".into());
    let access_token = host::signing::sign("at+jwt", &claims)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: Some(60),
        refresh_token: None,
        scope: None,
        extra: Vec::new(),
    })
}

/// The plugin's answer when the host refused a call after `done` succeeded:
/// the refusal's kind and message, for the tests to check.
fn refused(done: usize, error: HostError) -> OAuthError {
    let kind = match &error {
        HostError::Denied(_) => "denied",
        HostError::InvalidArgument(_) => "invalid-argument",
        HostError::Unavailable(_) => "unavailable",
    };
    OAuthError::server_error(format!(
        "host refused after {done}: {kind}: {}",
        error.message()
    ))
}

/// What the plugin sees of its surroundings through WASI, one `name=value`
/// per item: how many environment variables and arguments, whether the root
/// folder, the working folder and `[config] probe_path` (a file the server
/// can read) can be read, the wall clock's seconds, how far the monotonic
/// clock moves over some work, and the `clock` capability's answer.
fn sandbox_report() -> String {
    use std::time::{Instant, SystemTime, UNIX_EPOCH};
    let readable = |result: std::io::Result<()>| match result {
        Ok(()) => "readable",
        Err(_) => "unreadable",
    };
    let probe_path = host::config::get("probe_path")
        .ok()
        .flatten()
        .unwrap_or_default();
    let root = readable(std::fs::read_dir("/").map(drop));
    let cwd = readable(std::fs::read_dir(".").map(drop));
    let probe = readable(std::fs::read(&probe_path).map(drop));
    let wall_clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or(u64::MAX);
    let started = Instant::now();
    let mut counter = 0u64;
    for _ in 0..1_000_000 {
        counter = black_box(counter.wrapping_add(1));
    }
    let monotonic = started.elapsed().as_nanos();
    let clock_capability = match host::clock::now() {
        Ok(seconds) => seconds.to_string(),
        Err(_) => "refused".to_string(),
    };
    format!(
        "environment={} arguments={} root={root} cwd={cwd} probe={probe} wall_clock={wall_clock} monotonic_ns={monotonic} clock_capability={clock_capability}",
        std::env::vars_os().count(),
        std::env::args_os().count(),
    )
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
