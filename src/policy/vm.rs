//! Evaluation on per-thread RegoVMs.
//!
//! A `RegoVM` is cheap to run (~µs) but not shareable, and setting one up (loading the
//! program, attaching data) costs more than an evaluation. Each thread — on a tokio
//! multi-thread runtime, each worker — therefore keeps its own VM per store and reloads it
//! only when the store's active bundle changes. There is no lock on the hot path.

use std::cell::RefCell;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use regorus::rvm::program::Program;
use regorus::rvm::vm::{RegoVM, VmError};
use regorus::utils::limits::ExecutionTimerConfig;

use super::PolicyError;

/// What a VM needs of a compiled bundle. `id` is unique per compilation, so a VM knows when
/// its program is stale.
pub(crate) struct Executable {
    pub id: u64,
    pub program: Arc<Program>,
    pub data: regorus::Value,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub timeout: Duration,
    pub max_instructions: usize,
}

/// Stores a thread keeps VMs for. More only happen in tests and tools; the oldest goes.
const SLOTS_PER_THREAD: usize = 4;

/// Instructions between clock reads. A read costs about as much as a few instructions, and
/// 256 instructions take microseconds, far below any useful time limit.
const TIMER_CHECK_INTERVAL: NonZeroU32 = NonZeroU32::new(256).expect("non-zero");

struct Slot {
    store: u64,
    bundle: u64,
    vm: RegoVM,
}

thread_local! {
    static SLOTS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// A process-unique id for stores and compiled bundles.
pub(crate) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs the bundle's entrypoint on this thread's VM for `store`.
pub(crate) fn execute(
    store: u64,
    bundle: &Executable,
    limits: Limits,
    input: regorus::Value,
) -> Result<regorus::Value, PolicyError> {
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        let index = match slots.iter().position(|s| s.store == store) {
            Some(index) => index,
            None => {
                if slots.len() == SLOTS_PER_THREAD {
                    slots.remove(0);
                }
                slots.push(Slot { store, bundle: 0, vm: RegoVM::new() });
                slots.len() - 1
            }
        };
        let slot = &mut slots[index];
        if slot.bundle != bundle.id {
            load(&mut slot.vm, bundle, limits)?;
            slot.bundle = bundle.id;
        }
        slot.vm.set_input(input);
        let result = slot.vm.execute();
        // Drop the message now rather than holding it until this thread's next evaluation.
        slot.vm.set_input(regorus::Value::Null);
        result.map_err(|e| from_vm(e, limits))
    })
}

fn load(vm: &mut RegoVM, bundle: &Executable, limits: Limits) -> Result<(), PolicyError> {
    vm.load_program(bundle.program.clone());
    vm.set_data(bundle.data.clone()).map_err(|e| PolicyError::Runtime(format!("attaching data: {e}")))?;
    vm.set_execution_timer_config(Some(ExecutionTimerConfig {
        limit: limits.timeout,
        check_interval: TIMER_CHECK_INTERVAL,
    }));
    vm.set_max_instructions(limits.max_instructions);
    Ok(())
}

fn from_vm(e: VmError, limits: Limits) -> PolicyError {
    match e {
        VmError::TimeLimitExceeded { .. } => PolicyError::Timeout { limit: limits.timeout },
        VmError::InstructionLimitExceeded { limit, .. } => PolicyError::BudgetExceeded { limit },
        other => PolicyError::Runtime(other.to_string()),
    }
}
