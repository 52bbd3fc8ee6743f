//! Pre-initialization: a component that exports `prepare` (the `prepared-detector` world of
//! `wit/detector.wit`) is run once at load, and the state `prepare` leaves — compiled
//! patterns, built tables — is written back into the component (Wizer's snapshot). Every
//! call's fresh instance then starts from that state, mapped copy-on-write from the
//! compiled image, instead of building it again: calls stay isolated from each other and
//! stop paying for set-up.
//!
//! The snapshot is a new component; the host compiles and caches it in place of the
//! original (the cache is keyed by the original's digest), so this runs once per plugin
//! version and engine, not once per start.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use wasmtime::component::{Component, ComponentExportIndex, ComponentType, Instance, Lift, WasmList};
use wasmtime::Store;
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use super::host::{CallState, CallStore, Host};

/// The export a component prepares itself with.
pub const EXPORT: &str = "prepare";

/// Whether the component exports a top-level `prepare` function. Read from the binary, so
/// a component without it costs no compilation here.
pub fn exports_prepare(wasm: &[u8]) -> bool {
    use wasmparser::{ComponentExternalKind, Parser, Payload};
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::ModuleSection { .. } | Payload::ComponentSection { .. }) => depth += 1,
            Ok(Payload::End(_)) => depth = depth.saturating_sub(1),
            Ok(Payload::ComponentExportSection(exports)) if depth == 0 => {
                let found = exports
                    .into_iter()
                    .flatten()
                    .any(|e| e.name.name == EXPORT && e.kind == ComponentExternalKind::Func);
                if found {
                    return true;
                }
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// Runs `prepare` in an instrumented copy of the component, under the host's limits, and
/// returns the snapshot component. The error says what went wrong, for the load error.
pub fn snapshot(host: &Host, wasm: &[u8]) -> Result<Vec<u8>, String> {
    let mut wizer = Wizer::new();
    // Wizer would drop `prepare` from the core module but not from the component's lifts,
    // leaving an invalid component; keeping it costs nothing (the host never calls it).
    wizer.init_func(EXPORT).keep_init_func(true);
    let (cx, instrumented) = wizer.instrument_component(wasm).map_err(|e| format!("instrumenting it: {e:#}"))?;
    let component =
        Component::new(host.engine(), &instrumented).map_err(|e| format!("compiling it for `prepare`: {e:#}"))?;
    let (mut store, instance) =
        host.start(&component, host.limits().prepare_time).map_err(|e| format!("{EXPORT}: {e}"))?;
    let prepare = instance
        .get_typed_func::<(), ()>(&mut store, EXPORT)
        .map_err(|e| format!("its `{EXPORT}` export is not `func()`: {e:#}"))?;
    if let Err(e) = prepare.call(&mut store, ()) {
        return Err(format!(
            "`{EXPORT}` failed: {}",
            host.classify(&e, store.data().refused_memory(), host.limits().prepare_time)
        ));
    }
    let mut state = Snapshotted { store, instance };
    let snapshot = finish_now(wizer.snapshot_component(&cx, &mut state))
        .ok_or("the snapshot did not complete")?
        .map_err(|e| format!("snapshotting it: {e:#}"))?;
    Ok(snapshot)
}

/// The instrumented instance after `prepare`, read by Wizer through the accessor functions
/// instrumentation exported (one per global and memory).
struct Snapshotted {
    store: CallStore,
    instance: Instance,
}

impl Snapshotted {
    /// Calls an accessor. Instrumentation generated them, so a missing or mistyped one is a
    /// bug in Wizer, not something a plugin can cause: it panics, and the load that asked
    /// for the snapshot reports it (see `Host::component`).
    fn call<R: ComponentType + Lift + Send + Sync + 'static, T>(
        &mut self,
        instance: &str,
        func: &str,
        read: impl FnOnce(&Store<CallState>, R) -> T,
    ) -> T {
        let index = self.export(None, instance);
        let index = self.export(Some(&index), func);
        let func = self.instance.get_typed_func::<(), (R,)>(&mut self.store, index).expect("an accessor's type");
        let (value,) = func.call(&mut self.store, ()).expect("an accessor returns");
        read(&self.store, value)
    }

    fn export(&mut self, within: Option<&ComponentExportIndex>, name: &str) -> ComponentExportIndex {
        self.instance.get_export_index(&mut self.store, within, name).unwrap_or_else(|| panic!("no accessor `{name}`"))
    }
}

impl ComponentInstanceState for Snapshotted {
    fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) -> impl Future<Output = ()> + Send {
        self.call(instance, func, |store, list: WasmList<u8>| contents(list.as_le_slice(store)));
        std::future::ready(())
    }

    fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> impl Future<Output = i32> + Send {
        std::future::ready(self.call(instance, func, |_, v: i32| v))
    }

    fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> impl Future<Output = i64> + Send {
        std::future::ready(self.call(instance, func, |_, v: i64| v))
    }

    fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> impl Future<Output = u32> + Send {
        std::future::ready(self.call(instance, func, |_, v: f32| v.to_bits()))
    }

    fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> impl Future<Output = u64> + Send {
        std::future::ready(self.call(instance, func, |_, v: f64| v.to_bits()))
    }
}

/// Wizer's snapshot API is async for hosts whose calls are; every call here completes at
/// once, so one poll finishes it.
fn finish_now<F: Future>(future: F) -> Option<F::Output> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}
