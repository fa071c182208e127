//! Instantiation and calls: a fresh instance in a fresh `Store` for every
//! call, bounded by fuel, the host-call budget and the wall-clock backstop,
//! with the call's metrics and log line.

use std::sync::Arc;
use std::time::Duration;

use tracing::{Instrument, debug, warn};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};

use super::context::{MemoryLimit, sandbox_wasi};
use super::fault::{classify, record_fault};
use super::ticker::Ticking;
use super::{CallCtx, Plugin};
use crate::clock::Clock;
use crate::openid::Authentication;
use crate::plugin::bindings::exports::grantbox::plugin::grant;
use crate::plugin::bindings::exports::grantbox::plugin::{endpoint, user_step};
use crate::plugin::bindings::wit;
use crate::plugin::{
    AuthorizationApproval, AuthorizationRequest, CallError, ClientView, EndpointRequest,
    EndpointResponse, Fault, FaultKind, PendingAuthorization, PluginInfo, TokenRequest,
    TokenResponse, TokenTarget, UserCodeEntry, UserCodeOutcome,
};
use wasmtime::component::Instance;

/// The least deadline of the `info` call at load (see `Plugin::info`).
const LOAD_DEADLINE: Duration = Duration::from_secs(2);

/// Fuel (about one unit per wasm instruction) a guest gets per millisecond of
/// its `timeout_ms`: roughly what one core runs in a millisecond, so a spin
/// loop stops near its deadline (the calibration is in bench/README.md,
/// "Fuel"). Fuel counts the guest's own work, so a guest that waits for a
/// core (CPU starvation) spends none of it.
pub const FUEL_PER_MS: u64 = 4_000_000;

/// The wall-clock backstop of a call: this many times its guest deadline,
/// plus its host-time budget. It stops what fuel does not count (a guest
/// descheduled forever, work inside one instruction such as `memory.fill`)
/// and leaves room for a starved but healthy guest.
const WALL_CLOCK_FACTOR: u32 = 10;

/// A store and a fresh instance for one call.
struct Call {
    store: Store<CallCtx>,
    /// The instance's `grant` export.
    grant: grant::Guest,
    /// The instance, for the exports added after 1.0 (`endpoint`, `user-step`).
    instance: Instance,
    _ticking: Ticking,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    pub fn version(&self) -> &str {
        &self.manifest.version
    }

    /// Asks the plugin what it provides (done once at load).
    pub(super) async fn info(&self) -> Result<PluginInfo, Fault> {
        // Asked once, at load, with at least LOAD_DEADLINE of fuel: its
        // wall-clock backstop is ten times that, so a server starting on a
        // busy machine (or under `nice`) does not refuse a healthy plugin.
        // A plugin that spins here is still stopped.
        let mut call = self
            .begin(None, self.shared.timeout.max(LOAD_DEADLINE))
            .await?;
        let result = call.grant.call_info(&mut call.store).await;
        self.finish("info", call, result).map(PluginInfo::from)
    }

    /// Runs a token-endpoint exchange.
    pub async fn exchange(&self, request: &TokenRequest) -> Result<TokenResponse, CallError> {
        self.exchange_from(request, None, TokenTarget::default())
            .await
    }

    /// Runs a token-endpoint exchange whose password checks are throttled by
    /// `origin`'s address and whose access tokens are bound to `target`.
    pub async fn exchange_from(
        &self,
        request: &TokenRequest,
        origin: Option<Arc<crate::ratelimit::SignInOrigin>>,
        target: TokenTarget,
    ) -> Result<TokenResponse, CallError> {
        let span = self.call_span("exchange");
        async {
            let mut call = self
                .begin(Some(request.client.clone()), self.shared.timeout)
                .await?;
            call.store.data_mut().sign_in_origin = origin;
            call.store.data_mut().target = target;
            let wit_request = wit::TokenRequest::from(request);
            let result = call
                .grant
                .call_exchange(&mut call.store, &wit_request)
                .await;
            let issued = std::mem::take(&mut call.store.data_mut().issued);
            let dpop_bound = std::mem::take(&mut call.store.data_mut().dpop_bound);
            let host_refusal = call.store.data_mut().host_refusal.take();
            let finished = self.finish("exchange", call, result);
            // The host refused a resource or a DPoP key: that is the answer,
            // whatever the plugin made of the refusal.
            if let Some(error) = host_refusal {
                return Err(CallError::Refused(error));
            }
            let mut response: TokenResponse = match finished? {
                Ok(response) => response.into(),
                Err(error) => return Err(CallError::Refused(error.into())),
            };
            // RFC 9449 §5: the host knows which of its tokens it bound, so
            // it names their type, whatever the plugin wrote.
            if dpop_bound.contains(&response.access_token) {
                response.token_type = grantbox_protocol::oauth::dpop::TOKEN_TYPE.to_owned();
            }
            let forged = std::iter::once(&response.access_token)
                .chain(response.refresh_token.as_ref())
                .any(|token| !issued.contains(token));
            if forged {
                return Err(self
                    .contract_fault("exchange returned a token the host did not issue")
                    .into());
            }
            Ok(response)
        }
        .instrument(span)
        .await
    }

    /// Parses the grant's own authorization request parameters.
    pub async fn authorize_request(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Vec<(String, String)>, CallError> {
        let span = self.call_span("authorize_request");
        async {
            let mut call = self
                .begin(Some(request.client.clone()), self.shared.timeout)
                .await?;
            let wit_request = wit::AuthorizationRequest::from(request);
            let result = call
                .grant
                .call_authorize_request(&mut call.store, &wit_request)
                .await;
            self.finish("authorize_request", call, result)?
                .map_err(|error| CallError::Refused(error.into()))
        }
        .instrument(span)
        .await
    }

    /// Issues the response parameters of an approved transaction. Returns the
    /// parameters and what the host issued during the call.
    /// `target` binds the resources of the transaction to what it issues;
    /// `authentication` is how the approving user signed in, which the host
    /// keeps with the grant of a code issued for `openid`.
    pub async fn authorize_response(
        &self,
        approval: &AuthorizationApproval,
        target: TokenTarget,
        authentication: Option<&Authentication>,
    ) -> Result<(Vec<(String, String)>, Vec<String>), CallError> {
        let span = self.call_span("authorize_response");
        async {
            let mut call = self
                .begin(Some(approval.client.clone()), self.shared.timeout)
                .await?;
            call.store.data_mut().target = target;
            call.store.data_mut().authentication = authentication.cloned();
            let wit_approval = wit::AuthorizationApproval::from(approval);
            let result = call
                .grant
                .call_authorize_response(&mut call.store, &wit_approval)
                .await;
            let issued = std::mem::take(&mut call.store.data_mut().issued);
            let host_refusal = call.store.data_mut().host_refusal.take();
            let finished = self.finish("authorize_response", call, result);
            if let Some(error) = host_refusal {
                return Err(CallError::Refused(error));
            }
            let params = finished?.map_err(|error| CallError::Refused(error.into()))?;
            Ok((params, issued))
        }
        .instrument(span)
        .await
    }

    /// Answers a request to one of the plugin's endpoints.
    pub async fn endpoint(&self, request: &EndpointRequest) -> Result<EndpointResponse, CallError> {
        self.endpoint_from(request, TokenTarget::default()).await
    }

    /// Answers a request to one of the plugin's endpoints; access tokens the
    /// call issues are bound to `target`. A status outside 2xx or a body that
    /// is not a JSON object breaks the contract: a fault.
    pub async fn endpoint_from(
        &self,
        request: &EndpointRequest,
        target: TokenTarget,
    ) -> Result<EndpointResponse, CallError> {
        let span = self.call_span("endpoint");
        async {
            let mut call = self
                .begin(request.client.clone(), self.shared.timeout)
                .await?;
            call.store.data_mut().target = target;
            let guest = (self.exports)
                .endpoint(&mut call.store, &call.instance)
                .map_err(|e| self.missing_export(&e))?;
            let wit_request = endpoint::EndpointRequest::from(request);
            let result = guest.call_handle(&mut call.store, &wit_request).await;
            let host_refusal = call.store.data_mut().host_refusal.take();
            let finished = self.finish("endpoint", call, result);
            if let Some(error) = host_refusal {
                return Err(CallError::Refused(error));
            }
            let response: EndpointResponse = match finished? {
                Ok(response) => response.into(),
                Err(error) => return Err(CallError::Refused(error.into())),
            };
            if !(200..300).contains(&response.status) {
                return Err(self
                    .contract_fault(&format!(
                        "endpoint {} answered status {}, not 2xx",
                        request.path, response.status
                    ))
                    .into());
            }
            let is_object = serde_json::from_str::<serde_json::Value>(&response.body)
                .is_ok_and(|body| body.is_object());
            if !is_object {
                return Err(self
                    .contract_fault(&format!(
                        "endpoint {} answered a body that is not a JSON object",
                        request.path
                    ))
                    .into());
            }
            Ok(response)
        }
        .instrument(span)
        .await
    }

    /// What a code entered at a user step stands for; `None` for a wrong,
    /// expired or used one. The call has no client.
    pub async fn find_user_code(
        &self,
        entry: &UserCodeEntry,
    ) -> Result<Option<PendingAuthorization>, CallError> {
        let span = self.call_span("find_user_code");
        async {
            let mut call = self.begin(None, self.shared.timeout).await?;
            let guest = (self.exports)
                .user_step(&mut call.store, &call.instance)
                .map_err(|e| self.missing_export(&e))?;
            let wit_entry = user_step::UserCodeEntry::from(entry);
            let result = guest.call_find_user_code(&mut call.store, &wit_entry).await;
            match self.finish("find_user_code", call, result)? {
                Ok(pending) => Ok(pending.map(PendingAuthorization::from)),
                Err(error) => Err(CallError::Refused(error.into())),
            }
        }
        .instrument(span)
        .await
    }

    /// Tells the plugin the user's decision at a user step; the call's client
    /// is the one the pending authorization named.
    pub async fn complete_user_code(&self, outcome: &UserCodeOutcome) -> Result<(), CallError> {
        let span = self.call_span("complete_user_code");
        async {
            let mut call = self
                .begin(Some(outcome.client.clone()), self.shared.timeout)
                .await?;
            let guest = (self.exports)
                .user_step(&mut call.store, &call.instance)
                .map_err(|e| self.missing_export(&e))?;
            let wit_outcome = user_step::UserCodeOutcome::from(outcome);
            let result = guest
                .call_complete_user_code(&mut call.store, &wit_outcome)
                .await;
            self.finish("complete_user_code", call, result)?
                .map_err(|error| CallError::Refused(error.into()))
        }
        .instrument(span)
        .await
    }

    /// Whether the component exports `endpoint` (checked at load against
    /// `[[provides.endpoints]]`).
    pub fn has_endpoint_export(&self) -> bool {
        self.exports.has_endpoint()
    }

    /// Whether the component exports `user-step` (checked at load against
    /// `[[provides.user_steps]]`).
    pub fn has_user_step_export(&self) -> bool {
        self.exports.has_user_step()
    }

    /// A component lacking an export the manifest declares is refused at
    /// load, so a missing one here breaks the contract.
    fn missing_export(&self, error: &wasmtime::Error) -> Fault {
        self.contract_fault(&format!("{error:#}"))
    }

    /// A fault for a response that broke the contract; counted like a trap.
    pub fn contract_fault(&self, detail: &str) -> Fault {
        let fault = Fault {
            kind: FaultKind::Contract,
            detail: detail.to_owned(),
        };
        record_fault(&self.shared, &fault);
        fault
    }

    async fn begin(&self, client: Option<ClientView>, deadline: Duration) -> Result<Call, Fault> {
        let permit = self
            .shared
            .calls
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Fault {
                kind: FaultKind::Instantiate,
                detail: "the runtime is shutting down".into(),
            })?;
        // Before instantiation, which may already run guest code.
        let ticking = self.shared.ticker.enter();
        let ctx = CallCtx {
            wasi: sandbox_wasi(),
            table: ResourceTable::new(),
            limits: MemoryLimit {
                bytes: self.shared.memory_bytes,
                hit: false,
            },
            shared: self.shared.clone(),
            client,
            issued: Vec::new(),
            known_grants: Vec::new(),
            id_token_grants: Vec::new(),
            authorized_resources: Vec::new(),
            target: TokenTarget::default(),
            host_refusal: None,
            dpop_bound: Vec::new(),
            looked_up: Vec::new(),
            found_refresh: None,
            authentication: None,
            sign_in_origin: None,
            key_value_written: 0,
            started: Clock::instant(),
            wall_deadline: deadline * WALL_CLOCK_FACTOR + self.shared.host_time,
            host_calls: 0,
            host_time: Duration::ZERO,
            excused_time: Duration::ZERO,
        };
        let mut store = Store::new(self.pre.engine(), ctx);
        store.limiter(|ctx| &mut ctx.limits);
        let fuel = u64::try_from(deadline.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(FUEL_PER_MS);
        if let Err(e) = store.set_fuel(fuel) {
            warn!(error = %e, "cannot set the plugin's fuel");
        }
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|store| {
            let ctx = store.data();
            let elapsed = ctx.started.elapsed().saturating_sub(ctx.excused_time);
            if ctx.spent().is_some() || elapsed >= ctx.wall_deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Let other requests on this worker run while a slow guest computes.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let loaded = match self.pre.instantiate_async(&mut store).await {
            Ok(instance) => {
                (self.exports.grant(&mut store, &instance)).map(|grant| (instance, grant))
            }
            Err(e) => Err(e),
        };
        let (instance, grant) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                let fault = classify(&e, store.data());
                record_fault(&self.shared, &fault);
                return Err(fault);
            }
        };
        Ok(Call {
            store,
            grant,
            instance,
            _ticking: ticking,
            _permit: permit,
        })
    }

    /// The span of one call of `function`, at debug level: the `plugin call`
    /// event (also debug) takes the plugin, its version and the function
    /// from it; a fault is logged with the plugin named in the event itself.
    fn call_span(&self, function: &'static str) -> tracing::Span {
        tracing::debug_span!("plugin", plugin = %self.name(), version = %self.version(), function)
    }

    /// Turns a call's wasmtime result into the value or a fault, with metrics
    /// and a log line either way. The store (and instance) drop here.
    fn finish<R>(
        &self,
        function: &'static str,
        call: Call,
        result: wasmtime::Result<R>,
    ) -> Result<R, Fault> {
        let ctx = call.store.data();
        let elapsed = ctx.started.elapsed();
        let labels = [
            ("plugin", self.shared.name.clone()),
            ("function", function.to_owned()),
        ];
        metrics::histogram!("grantbox_plugin_call_duration_seconds", &labels)
            .record(elapsed.as_secs_f64());
        // A guest that goes on after its budget ran out (it saw the host's
        // refusals) still ends as a deadline fault.
        let result = match (result, ctx.spent()) {
            (Ok(_), Some(spent)) => Err(wasmtime::Error::msg(spent.to_string())),
            (result, _) => result,
        };
        match result {
            Ok(value) => {
                metrics::counter!("grantbox_plugin_calls_total", "plugin" => self.shared.name.clone(), "function" => function, "outcome" => "ok").increment(1);
                debug!(
                    duration_us = elapsed.as_micros() as u64,
                    outcome = "ok",
                    "plugin call"
                );
                Ok(value)
            }
            Err(e) => {
                metrics::counter!("grantbox_plugin_calls_total", "plugin" => self.shared.name.clone(), "function" => function, "outcome" => "fault").increment(1);
                let fault = classify(&e, ctx);
                record_fault(&self.shared, &fault);
                Err(fault)
            }
        }
    }
}
