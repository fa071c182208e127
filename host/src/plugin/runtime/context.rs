//! What one call's `Store` holds: the WASI context (empty), the memory
//! limit, the host-call budget, and what the host capabilities remember
//! during the call (the client, issued tokens, key-value writes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::CallShared;
use crate::clock::Clock;
use crate::oauth::OAuthError;
use crate::openid::Authentication;
use crate::plugin::{Capability, ClientView, HostServices, TokenTarget};
use crate::store::TokenRecord;

/// The data of one call's `Store`.
pub(in crate::plugin) struct CallCtx {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limits: MemoryLimit,
    pub(super) shared: Arc<CallShared>,
    /// The client the request came from, when there is one.
    pub(in crate::plugin) client: Option<ClientView>,
    /// Tokens and codes the host issued during this call; the plugin may
    /// only return these.
    pub(in crate::plugin) issued: Vec<String>,
    /// Token families this call learned from redeemed codes.
    pub(in crate::plugin) known_grants: Vec<String>,
    /// The families this call redeemed a code of or rotated a refresh token
    /// into, with the scope granted there: the only ones `openid.id-token`
    /// signs for.
    pub(in crate::plugin) id_token_grants: Vec<(String, Vec<String>)>,
    /// The resources each redeemed code's grant was authorized for (RFC
    /// 8707 §2.2), by grant id.
    pub(in crate::plugin) authorized_resources: Vec<(String, Vec<String>)>,
    /// The form and resources of the access tokens this call issues.
    pub(in crate::plugin) target: TokenTarget,
    /// Set when the host refused something of the call on its own account
    /// (an issue for its resources: `invalid_target`; a code or refresh
    /// token bound to another DPoP key): the endpoint then answers this,
    /// whatever the plugin made of the refusal.
    pub(in crate::plugin) host_refusal: Option<OAuthError>,
    /// The access tokens minted in this call bound to a DPoP key: the token
    /// endpoint answers `token_type: DPoP` for them.
    pub(in crate::plugin) dpop_bound: Vec<String>,
    /// Tokens `token-exchange.lookup` found in this call: their family and
    /// expiry. An exchange may join only these families and never outlives them.
    pub(in crate::plugin) looked_up: Vec<LookedUp>,
    /// The refresh token `refresh-tokens.find` last found active in this
    /// call (by hash), so that `rotate` need not read it again: what it
    /// takes from it (family, subject, scope) never changes, and whether it
    /// is still unrotated is decided by the rotation's own UPDATE.
    pub(in crate::plugin) found_refresh: Option<([u8; 32], TokenRecord)>,
    /// How the user who approved an authorization request signed in: set
    /// only for `authorize_response`, where `codes.issue` keeps it as the
    /// sign-in record of the code's grant when `openid` was granted.
    pub(in crate::plugin) authentication: Option<Authentication>,
    /// Where the token request's password checks come from (`users`).
    pub(in crate::plugin) sign_in_origin: Option<Arc<crate::ratelimit::SignInOrigin>>,
    /// Bytes of keys and values this call wrote to the key-value store.
    pub(in crate::plugin) key_value_written: u64,
    pub(super) started: Instant,
    /// The wall-clock backstop: the call is interrupted past it.
    pub(super) wall_deadline: Duration,
    /// Host calls made so far.
    pub(super) host_calls: u32,
    /// Time spent in host calls so far (the guest's fuel does not pay for it).
    pub(super) host_time: Duration,
    /// Time spent in host calls that failed in the store, which counts
    /// against neither the host-time budget nor the wall-clock backstop.
    pub(super) excused_time: Duration,
}

/// Which host budget of a call is spent: the call then ends as a deadline
/// fault, whatever the guest does next.
#[derive(Debug, Clone, Copy)]
pub(in crate::plugin) enum Spent {
    /// More host calls than this.
    HostCalls(u32),
    /// More time in host calls than this.
    HostTime(Duration),
}

impl std::fmt::Display for Spent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HostCalls(calls) => {
                write!(f, "host-call budget spent: more than {calls} host calls")
            }
            Self::HostTime(time) => write!(
                f,
                "host-time budget spent: more than {} ms in host calls",
                time.as_millis()
            ),
        }
    }
}

/// The key-value quota of one plugin (from its manifest, capped by the operator).
#[derive(Debug, Clone, Copy)]
pub(in crate::plugin) struct KeyValueQuota {
    /// Live keys of the namespace.
    pub(in crate::plugin) keys: u64,
    /// Bytes of live keys and values of the namespace.
    pub(in crate::plugin) bytes: u64,
    /// Bytes of keys and values one call may write.
    pub(in crate::plugin) write_bytes_per_call: u64,
}

/// How long a measurement of a plugin's key-value namespace stands in for
/// measuring it again (see [`KeyValueEstimate`]).
const KEY_VALUE_ESTIMATE_TTL: Duration = Duration::from_secs(1);

/// A plugin's key-value namespace as last measured, plus what writes since
/// may have added, each counted as a new key of its full size. While that
/// upper bound fits the quota, a write needs no measurement, which scans the
/// whole namespace; a write the bound does not admit, or any write once the
/// measurement is [`KEY_VALUE_ESTIMATE_TTL`] old, measures again. So a
/// namespace of many keys (e.g. many pending device flows) costs one scan a
/// second, not one per write, and the quota holds as before.
#[derive(Debug, Default)]
pub(in crate::plugin) struct KeyValueEstimate(std::sync::Mutex<Option<Measured>>);

#[derive(Debug)]
struct Measured {
    at: Instant,
    keys: u64,
    bytes: u64,
}

impl KeyValueEstimate {
    /// Admits a write of `size` bytes without measuring, when the bound
    /// leaves room for it under `quota`; counts it in the bound then.
    pub(in crate::plugin) fn admit(&self, quota: KeyValueQuota, size: u64) -> bool {
        let mut measured = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(m) = measured.as_mut() else {
            return false;
        };
        let fresh = m.at.elapsed() < KEY_VALUE_ESTIMATE_TTL;
        if fresh && m.keys < quota.keys && m.bytes.saturating_add(size) <= quota.bytes {
            m.keys += 1;
            m.bytes += size;
            return true;
        }
        false
    }

    /// Records a measurement: the namespace with the write it admitted.
    pub(in crate::plugin) fn record(&self, keys: u64, bytes: u64) {
        let mut measured = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *measured = Some(Measured {
            at: Clock::instant(),
            keys,
            bytes,
        });
    }
}

impl WasiView for CallCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl CallCtx {
    pub(in crate::plugin) fn plugin_name(&self) -> &str {
        &self.shared.name
    }

    pub(in crate::plugin) fn plugin_version(&self) -> &str {
        &self.shared.version
    }

    pub(in crate::plugin) fn granted(&self, capability: Capability) -> bool {
        self.shared.capabilities.contains(&capability)
    }

    pub(in crate::plugin) fn services(&self) -> Option<&HostServices> {
        self.shared.services.as_ref()
    }

    pub(in crate::plugin) fn config(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.shared.config
    }

    pub(in crate::plugin) fn config_json(&self) -> &str {
        &self.shared.config_json
    }

    pub(in crate::plugin) fn key_value_quota(&self) -> KeyValueQuota {
        self.shared.key_value
    }

    pub(in crate::plugin) fn key_value_estimate(&self) -> &KeyValueEstimate {
        &self.shared.key_value_estimate
    }

    /// Counts a host call against the call's budget; fails once the budget
    /// (count or time) is spent. The call then ends as a deadline fault.
    pub(in crate::plugin) fn spend_host_call(&mut self) -> Result<(), Spent> {
        self.host_calls = self.host_calls.saturating_add(1);
        self.spent().map_or(Ok(()), Err)
    }

    /// Adds the time of a host call that began at `since` to the call's
    /// host time. A host call that `failed` in the store (an outage, a
    /// statement timeout) is the server's trouble, not the plugin's: its time
    /// is excused from both the budget and the wall-clock backstop, so the
    /// plugin's answer (typically `temporarily_unavailable`) reaches the
    /// client instead of a fault.
    pub(in crate::plugin) fn add_host_time(&mut self, since: Instant, failed: bool) {
        if failed {
            self.excused_time += since.elapsed();
        } else {
            self.host_time += since.elapsed();
        }
    }

    /// The host budget this call has spent, if any.
    pub(super) fn spent(&self) -> Option<Spent> {
        if self.host_calls > self.shared.host_calls {
            Some(Spent::HostCalls(self.shared.host_calls))
        } else if self.host_time > self.shared.host_time {
            Some(Spent::HostTime(self.shared.host_time))
        } else {
            None
        }
    }
}

/// A token a `token-exchange` lookup found during a call.
pub(in crate::plugin) struct LookedUp {
    pub(in crate::plugin) grant_id: String,
    pub(in crate::plugin) expires_at: i64,
}

/// The per-call memory limit; remembers that it was hit so the fault is named.
pub(super) struct MemoryLimit {
    pub(super) bytes: usize,
    pub(super) hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.bytes {
            self.hit = true;
            wasmtime::bail!(
                "memory limit of {} bytes reached (asked for {desired})",
                self.bytes
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// WASI for std's own needs only: no files, environment, arguments or
/// sockets, output discarded, and clocks stuck at the epoch so time comes
/// only through the `clock` capability.
pub(super) fn sandbox_wasi() -> WasiCtx {
    WasiCtx::builder()
        .wall_clock(StoppedClock)
        .monotonic_clock(StoppedClock)
        .build()
}

struct StoppedClock;

impl wasmtime_wasi::HostWallClock for StoppedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for StoppedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}
