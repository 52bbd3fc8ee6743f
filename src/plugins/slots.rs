//! Instance slots: how many plugin instances may be alive at once (`limits.max_concurrent`).
//!
//! The pooling allocator reserves exactly that many instances up front and refuses one
//! more outright. A burst of messages beyond it should not fail at once, nor queue without
//! end: a call waits up to `limits.max_wait` for a slot, and past that fails as `busy`,
//! which the plugin's fail mode then decides like any other failure.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub struct Slots {
    shared: Arc<Shared>,
}

struct Shared {
    free: Mutex<u32>,
    freed: Condvar,
}

/// One taken slot; dropping it frees the slot (it lives in the call's store).
pub struct Slot {
    shared: Arc<Shared>,
}

impl Slots {
    pub fn new(count: u32) -> Slots {
        Slots { shared: Arc::new(Shared { free: Mutex::new(count), freed: Condvar::new() }) }
    }

    /// A slot, waiting up to `wait` for one to be freed; `None` if none was.
    pub fn take(&self, wait: Duration) -> Option<Slot> {
        let free = self.shared.free.lock().unwrap_or_else(|e| e.into_inner());
        let (mut free, _) =
            self.shared.freed.wait_timeout_while(free, wait, |free| *free == 0).unwrap_or_else(|e| e.into_inner());
        if *free == 0 {
            return None;
        }
        *free -= 1;
        Some(Slot { shared: self.shared.clone() })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *self.shared.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.shared.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_given_back_when_dropped_and_none_is_given_beyond_the_count() {
        let slots = Slots::new(1);
        let first = slots.take(Duration::ZERO).expect("one slot");
        assert!(slots.take(Duration::from_millis(5)).is_none(), "the only slot is taken");
        drop(first);
        assert!(slots.take(Duration::ZERO).is_some(), "a freed slot is given again");
    }

    #[test]
    fn a_waiting_call_gets_the_slot_freed_while_it_waits() {
        let slots = Slots::new(1);
        let held = slots.take(Duration::ZERO).unwrap();
        let waiter = {
            let slots = slots.clone();
            std::thread::spawn(move || slots.take(Duration::from_secs(10)).is_some())
        };
        drop(held);
        assert!(waiter.join().unwrap());
    }
}
