//! The epoch ticker: advances the engine's epoch every [`TICK`] while a plugin call (or a
//! load's `prepare`) is in flight, and sleeps on a condition variable otherwise. A gateway
//! with plugins enabled but idle (or with none loaded) then wakes up for nothing, instead
//! of a thousand times a second.
//!
//! The time budget stays exact: a call's deadline is counted in ticks from the epoch when
//! its store was made, and the ticker runs for the whole life of that store. The epoch does
//! not move while no store is alive, and no deadline is pending then.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wasmtime::Engine;

/// How often the epoch advances: the resolution of the time budget.
pub const TICK: Duration = Duration::from_millis(1);

/// Owns the ticker thread; dropping the last clone of the host drops it and ends the thread
/// once no call is in flight.
pub struct Ticker {
    shared: Arc<Shared>,
}

struct Shared {
    in_flight: AtomicUsize,
    /// The lock the ticker waits under.
    state: Mutex<State>,
    woken: Condvar,
}

#[derive(Default)]
struct State {
    /// The ticker was dropped: the thread ends once nothing is in flight.
    stopped: bool,
    /// The thread is waiting for a call (what the tests observe).
    parked: bool,
}

/// A call in flight: the epoch advances while one exists.
pub struct InFlight {
    shared: Arc<Shared>,
}

impl Ticker {
    pub fn start(engine: &Engine) -> std::io::Result<Ticker> {
        let shared = Arc::new(Shared {
            in_flight: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
            woken: Condvar::new(),
        });
        let weak = engine.weak();
        let ticking = shared.clone();
        std::thread::Builder::new().name("forge-plugin-epoch".into()).spawn(move || {
            while ticking.wait_for_a_call() {
                let Some(engine) = weak.upgrade() else { return };
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })?;
        Ok(Ticker { shared })
    }

    /// Marks a call in flight until the returned guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        if self.shared.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            // Taking the lock orders this after the ticker's check of `in_flight` (made
            // under the lock), so the wake-up cannot be lost between its check and its wait.
            let _state = self.shared.lock();
            self.shared.woken.notify_one();
        }
        InFlight { shared: self.shared.clone() }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns at once while calls are in flight; otherwise waits for one. False when the
    /// ticker was dropped and nothing is in flight: the thread ends.
    fn wait_for_a_call(&self) -> bool {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return true;
        }
        let mut state = self.lock();
        while self.in_flight.load(Ordering::SeqCst) == 0 {
            if state.stopped {
                return false;
            }
            state.parked = true;
            state = self.woken.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.parked = false;
        true
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.woken.notify_one();
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(module (func (export "f") (loop br 0)))`, encoded (the engine has no text parser).
    const ENDLESS_LOOP: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: func() -> ()
        0x03, 0x02, 0x01, 0x00, // function 0 has type 0
        0x07, 0x05, 0x01, 0x01, b'f', 0x00, 0x00, // export "f" = function 0
        0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop br 0 end end
    ];

    fn engine() -> Engine {
        Engine::new(wasmtime::Config::new().epoch_interruption(true)).unwrap()
    }

    /// Polls `done` for up to 10 s (no timing is asserted: only that it happens at all).
    fn eventually(done: impl Fn() -> bool) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !done() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        done()
    }

    #[test]
    fn an_endless_loop_is_interrupted_while_its_call_is_in_flight() {
        let engine = engine();
        let ticker = Ticker::start(&engine).unwrap();
        let _call = ticker.in_flight();
        let mut store = wasmtime::Store::new(&engine, ());
        store.set_epoch_deadline(2);
        let module = wasmtime::Module::new(&engine, ENDLESS_LOOP).unwrap();
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance.get_typed_func::<(), ()>(&mut store, "f").unwrap();
        let trap = f.call(&mut store, ()).unwrap_err();
        assert_eq!(trap.downcast_ref::<wasmtime::Trap>(), Some(&wasmtime::Trap::Interrupt));
    }

    #[test]
    fn the_ticker_parks_while_nothing_is_in_flight_and_ends_when_dropped() {
        let engine = engine();
        let ticker = Ticker::start(&engine).unwrap();
        let shared = ticker.shared.clone();
        assert!(eventually(|| shared.lock().parked), "parked before any call");
        let call = ticker.in_flight();
        assert!(eventually(|| !shared.lock().parked), "ticking during a call");
        drop(call);
        assert!(eventually(|| shared.lock().parked), "parked again after it");
        drop(ticker);
        assert!(eventually(|| Arc::strong_count(&shared) == 1), "the thread ended");
    }
}
