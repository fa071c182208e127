//! Fault classification: what stopped a call (deadline, memory, stack,
//! panic, out-of-bounds access, another trap, instantiation), with its
//! metric and log line.

use tracing::debug;
use wasmtime::Trap;

use super::{CallCtx, CallShared};
use crate::plugin::{Fault, FaultKind};

pub(super) fn classify(error: &wasmtime::Error, ctx: &CallCtx) -> Fault {
    if let Some(spent) = ctx.spent() {
        debug!(error = ?error, "plugin fault details");
        return Fault {
            kind: FaultKind::Deadline,
            detail: spent.to_string(),
        };
    }
    let kind = if ctx.limits.hit {
        FaultKind::Memory
    } else {
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt | Trap::OutOfFuel) => FaultKind::Deadline,
            Some(Trap::StackOverflow) => FaultKind::StackOverflow,
            Some(Trap::UnreachableCodeReached) => FaultKind::Panic,
            Some(Trap::MemoryOutOfBounds) => FaultKind::OutOfBounds,
            Some(_) => FaultKind::Trap,
            None if error.to_string().contains("instance") => FaultKind::Instantiate,
            None => FaultKind::Trap,
        }
    };
    // The wasm backtrace goes to the debug log; the fault line keeps the cause.
    debug!(error = ?error, "plugin fault details");
    let detail = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    Fault { kind, detail }
}

pub(super) fn record_fault(shared: &CallShared, fault: &Fault) {
    metrics::counter!("grantbox_plugin_faults_total", "plugin" => shared.name.clone(), "kind" => fault.kind.as_str()).increment(1);
    tracing::error!(plugin = %shared.name, version = %shared.version, kind = %fault.kind, detail = %fault.detail, "plugin fault");
}
