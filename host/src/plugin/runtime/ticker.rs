//! The epoch ticker: the thread that advances the engine's epoch while a
//! call is in flight, so deadlines and host budgets are checked at each tick.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tracing::warn;
use wasmtime::Engine;

/// How often the epoch advances; the wall-clock backstop and the host
/// budget are checked at each tick.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Advances the engine's epoch on its own OS thread: a tokio task would never
/// run while a guest spins on the same worker. It ticks only while a call is
/// in flight and parks otherwise, so an idle server does not wake a thousand
/// times a second.
pub(super) struct EpochTicker {
    pub(super) state: Arc<TickerState>,
}

/// What the ticker thread and the calls share.
pub(super) struct TickerState {
    stop: AtomicBool,
    /// Calls in flight (each holds a [`Ticking`]).
    in_flight: AtomicUsize,
    /// The ticker thread, to unpark; unset if it could not start.
    thread: OnceLock<std::thread::Thread>,
}

impl EpochTicker {
    pub(super) fn start(engine: Engine) -> Self {
        let state = Arc::new(TickerState {
            stop: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            thread: OnceLock::new(),
        });
        let shared = state.clone();
        let spawned = std::thread::Builder::new()
            .name("grantbox-epoch".into())
            .spawn(move || {
                while !shared.stop.load(Ordering::Acquire) {
                    if shared.in_flight.load(Ordering::Acquire) == 0 {
                        // Woken by the next call's `enter` (an unpark that
                        // comes first makes this return at once) or by drop.
                        std::thread::park();
                        continue;
                    }
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            });
        match spawned {
            Ok(handle) => {
                let _ = state.thread.set(handle.thread().clone());
            }
            Err(e) => warn!(error = %e, "cannot start the epoch ticker; plugin deadlines are off"),
        }
        Self { state }
    }
}

impl TickerState {
    /// Marks a call in flight until the returned guard drops, waking the
    /// ticker if it was parked.
    pub(super) fn enter(self: &Arc<Self>) -> Ticking {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) == 0
            && let Some(thread) = self.thread.get()
        {
            thread.unpark();
        }
        Ticking(self.clone())
    }
}

/// A call in flight, as far as the epoch ticker is concerned.
pub(super) struct Ticking(Arc<TickerState>);

impl Drop for Ticking {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(thread) = self.state.thread.get() {
            thread.unpark();
        }
    }
}
