//! The wasmtime side: one engine for every plugin, components compiled once (and cached on
//! disk), and a fresh, limited store for every call.
//!
//! The engine uses the pooling allocator (instance slots are reserved up front, so a call
//! allocates nothing from the OS) and epoch interruption (one ticker thread advances the
//! epoch while calls are in flight, see [`super::epoch`]; a call's deadline is a number of
//! ticks), as the architecture guide measured.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmtime::component::{Component, Instance, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, StoreLimits,
    StoreLimitsBuilder,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::config::PluginLimits;
use super::epoch::{InFlight, Ticker, TICK};
use super::slots::{Slot, Slots};
use super::{Capability, PluginError};

wasmtime::component::bindgen!({ path: "wit", world: "detector" });

pub use forge::detector::types as wit;

/// The engine shared by every plugin of a gateway.
#[derive(Clone)]
pub struct Host {
    engine: Engine,
    linker: std::sync::Arc<Linker<CallState>>,
    limits: PluginLimits,
    /// Where compiled components are cached; `None` compiles every time.
    cache_dir: Option<PathBuf>,
    slots: Slots,
    ticker: std::sync::Arc<Ticker>,
}

/// A plugin ready to be called: its component linked, and the capabilities it was granted.
#[derive(Clone)]
pub struct Loaded {
    pre: DetectorPre<CallState>,
    grants: std::sync::Arc<Grants>,
}

impl Loaded {
    /// Whether the operator granted it any WASI capability: only then can a call make a
    /// blocking host call (a granted file, the clock, the network) that must succeed.
    pub fn has_grants(&self) -> bool {
        !self.grants.granted.is_empty()
    }
}

/// What a plugin's WASI context is built from.
#[derive(Default)]
struct Grants {
    granted: Vec<Capability>,
    fs_root: Option<PathBuf>,
}

/// Why a call produced no findings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("exceeded its time budget of {0:?}")]
    Timeout(Duration),
    #[error("ran out of memory (limit {0} bytes)")]
    OutOfMemory(usize),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("returned an error: {0}")]
    Failed(String),
    #[error("could not be started: {0}")]
    Instantiate(String),
    #[error("returned an unusable finding: {0}")]
    InvalidOutput(String),
    #[error("had no free instance within {0:?} (plugins.limits.max_concurrent are busy)")]
    Busy(Duration),
}

impl CallError {
    /// The `outcome` label of `forge_plugin_calls_total`.
    pub fn label(&self) -> &'static str {
        match self {
            CallError::Timeout(_) => "timeout",
            CallError::OutOfMemory(_) => "out_of_memory",
            CallError::Trap(_) => "trap",
            CallError::Failed(_) => "error",
            CallError::Instantiate(_) => "instantiate_error",
            CallError::InvalidOutput(_) => "invalid_output",
            CallError::Busy(_) => "busy",
        }
    }
}

/// What one call's store holds.
pub struct CallState {
    limits: StoreLimits,
    /// Set when the memory cap refused a growth: the trap that follows is an out-of-memory.
    refused_memory: bool,
    /// Built on the call's first WASI import, from `grants`: most detector calls make none,
    /// and a context costs two seeded RNGs and a dozen boxes (its builder builds it twice).
    wasi: Option<WasiCtx>,
    grants: std::sync::Arc<Grants>,
    table: ResourceTable,
}

/// A call's store, the instance slot it occupies, and its mark on the epoch ticker. Fields
/// drop in order, so the slot is freed only after the store: the pooling allocator takes the
/// instance back when the store is dropped, and a slot freed before that (it used to live in
/// the store's data, which drops first) let a waiting call instantiate into a full pool and
/// fail.
pub struct CallStore {
    store: Store<CallState>,
    _slot: Slot,
    _in_flight: InFlight,
}

impl std::ops::Deref for CallStore {
    type Target = Store<CallState>;
    fn deref(&self) -> &Store<CallState> {
        &self.store
    }
}

impl std::ops::DerefMut for CallStore {
    fn deref_mut(&mut self) -> &mut Store<CallState> {
        &mut self.store
    }
}

impl wasmtime::AsContext for CallStore {
    type Data = CallState;
    fn as_context(&self) -> wasmtime::StoreContext<'_, CallState> {
        self.store.as_context()
    }
}

impl wasmtime::AsContextMut for CallStore {
    fn as_context_mut(&mut self) -> wasmtime::StoreContextMut<'_, CallState> {
        self.store.as_context_mut()
    }
}

impl CallState {
    pub(super) fn refused_memory(&self) -> bool {
        self.refused_memory
    }
}

impl ResourceLimiter for CallState {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        self.refused_memory |= !allowed;
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refused_memory = true;
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let grants = &self.grants;
        let ctx = self.wasi.get_or_insert_with(|| wasi_context(&grants.granted, grants.fs_root.as_deref()));
        WasiCtxView { ctx, table: &mut self.table }
    }
}

impl Host {
    /// Builds the engine and starts its epoch ticker (which ends when the last clone of the
    /// host is dropped).
    pub fn new(limits: PluginLimits, cache_dir: Option<PathBuf>) -> Result<Host, PluginError> {
        let engine = Engine::new(&engine_config(&limits)).map_err(|e| PluginError::Engine(e.to_string()))?;
        let ticker =
            Ticker::start(&engine).map_err(|e| PluginError::Engine(format!("starting the epoch ticker: {e}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| PluginError::Engine(e.to_string()))?;
        let slots = Slots::new(limits.max_concurrent);
        Ok(Host { engine, linker: std::sync::Arc::new(linker), limits, cache_dir, slots, ticker: ticker.into() })
    }

    pub fn limits(&self) -> PluginLimits {
        self.limits
    }

    pub(super) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles (or reads from the cache) and links a component. `name` only names it in
    /// errors and cache files.
    pub fn load(
        &self,
        name: &str,
        wasm: &[u8],
        granted: &[Capability],
        fs_root: Option<&Path>,
    ) -> Result<Loaded, PluginError> {
        let component = self.component(name, wasm)?;
        check_imports(name, &self.engine, &component, granted)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::Link { plugin: name.to_string(), message: format!("{e:#}") })?;
        let pre = DetectorPre::new(pre).map_err(|e| PluginError::Link {
            plugin: name.to_string(),
            message: format!("it does not export the `detector` world: {e:#}"),
        })?;
        let grants = Grants { granted: granted.to_vec(), fs_root: fs_root.map(Path::to_path_buf) };
        Ok(Loaded { pre, grants: grants.into() })
    }

    /// The exports and imports of a component, for `forge plugin inspect`.
    pub fn describe(&self, wasm: &[u8]) -> Result<(Vec<String>, Vec<String>), PluginError> {
        let component = Component::new(&self.engine, wasm).map_err(|e| PluginError::Compile(format!("{e:#}")))?;
        let ty = component.component_type();
        let exports = ty.exports(&self.engine).map(|(name, _)| name.to_string()).collect();
        let imports = ty.imports(&self.engine).map(|(name, _)| name.to_string()).collect();
        Ok((exports, imports))
    }

    fn component(&self, name: &str, wasm: &[u8]) -> Result<Component, PluginError> {
        let Some(dir) = &self.cache_dir else { return self.compile(name, wasm) };
        // `p`: the artifact is of the prepared snapshot when the component has `prepare`.
        let path =
            dir.join(format!("{name}-{}-{}p.cwasm", &super::manifest::sha256_hex(wasm)[..16], self.engine_key()));
        if path.is_file() {
            // SAFETY: the file is one this gateway wrote into its own state directory,
            // under a name that binds the source digest and the engine's compatibility
            // hash; wasmtime still checks the header and refuses an incompatible artifact.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unusable compiled plugin in the cache; compiling again")
                }
            }
        }
        let compiled = self
            .engine
            .precompile_component(&self.source(name, wasm)?)
            .map_err(|e| PluginError::Compile(format!("{name}: {e:#}")))?;
        if let Err(e) = write_atomically(&path, &compiled) {
            tracing::warn!(path = %path.display(), error = %e, "cannot cache a compiled plugin; it will be compiled again next start");
        }
        // SAFETY: the bytes were produced by this engine a moment ago.
        unsafe { Component::deserialize(&self.engine, &compiled) }
            .map_err(|e| PluginError::Compile(format!("{name}: {e:#}")))
    }

    fn compile(&self, name: &str, wasm: &[u8]) -> Result<Component, PluginError> {
        Component::new(&self.engine, &self.source(name, wasm)?)
            .map_err(|e| PluginError::Compile(format!("{name}: {e:#}")))
    }

    /// What is compiled for a component: its snapshot after `prepare` if it exports one
    /// (see [`super::prepare`]), else the component itself.
    fn source<'a>(&self, name: &str, wasm: &'a [u8]) -> Result<Cow<'a, [u8]>, PluginError> {
        if !super::prepare::exports_prepare(wasm) {
            return Ok(Cow::Borrowed(wasm));
        }
        let started = std::time::Instant::now();
        let snapshot = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| super::prepare::snapshot(self, wasm)))
            .unwrap_or_else(|_| Err("snapshotting it panicked".to_string()))
            .map_err(|message| PluginError::Prepare { plugin: name.to_string(), message })?;
        tracing::info!(
            plugin = name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            bytes = snapshot.len(),
            "plugin prepared and snapshotted"
        );
        Ok(Cow::Owned(snapshot))
    }

    /// Identifies the engine's compiled-code format: artifacts of another build or
    /// configuration get another name and are never tried.
    fn engine_key(&self) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }

    /// One call with a fresh instance: its own memory (capped), its own deadline.
    pub fn call(
        &self,
        plugin: &Loaded,
        cx: &wit::Context,
        payload: &wit::Payload,
        config: &str,
    ) -> Result<Vec<wit::Finding>, CallError> {
        // A panic in a host function the plugin called (WASI refusing to block, say) ends
        // this call, not the gateway's task; the store and instance are dropped with it.
        let call = std::panic::AssertUnwindSafe(|| {
            let mut store = self.store(&plugin.grants, self.limits.max_wait, self.limits.time)?;
            let instance = plugin.pre.instantiate(&mut store).map_err(|e| self.instantiate_error(&store, e))?;
            match instance.call_detect(&mut store, cx, payload, config) {
                Ok(Ok(findings)) => Ok(findings),
                Ok(Err(message)) => Err(CallError::Failed(message)),
                Err(e) => Err(self.classify(&e, store.data().refused_memory, self.limits.time)),
            }
        });
        std::panic::catch_unwind(call).unwrap_or_else(|panic| {
            let why =
                panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
            Err(CallError::Trap(format!("a host call failed: {}", why.unwrap_or_default())))
        })
    }

    /// A store with the call limits: an instance slot (waited for up to `wait`), memory
    /// capped, a deadline `budget` from now, and only the granted capabilities in its WASI
    /// context.
    fn store(&self, grants: &std::sync::Arc<Grants>, wait: Duration, budget: Duration) -> Result<CallStore, CallError> {
        let slot = self.slots.take(wait).ok_or(CallError::Busy(wait))?;
        // Before the deadline is set: the epoch it counts from is moving from now on.
        let in_flight = self.ticker.in_flight();
        let state = CallState {
            limits: StoreLimitsBuilder::new().memory_size(self.limits.memory).build(),
            refused_memory: false,
            wasi: None,
            grants: grants.clone(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| state);
        store.set_epoch_deadline(ticks(budget));
        store.epoch_deadline_callback(cpu_budget(budget));
        Ok(CallStore { store, _slot: slot, _in_flight: in_flight })
    }

    /// Instantiates a component that is not linked yet (for `prepare`), in a store with
    /// the call limits, no capabilities and a deadline `budget` from now (a load waits as
    /// long for an instance slot: it is no message's latency).
    pub(super) fn start(&self, component: &Component, budget: Duration) -> Result<(CallStore, Instance), CallError> {
        let mut store = self.store(&Default::default(), budget, budget)?;
        let instance = self.linker.instantiate(&mut store, component).map_err(|e| self.instantiate_error(&store, e))?;
        Ok((store, instance))
    }

    fn instantiate_error(&self, store: &CallStore, e: wasmtime::Error) -> CallError {
        match store.data().refused_memory {
            true => CallError::OutOfMemory(self.limits.memory),
            false => CallError::Instantiate(format!("{e:#}")),
        }
    }

    pub(super) fn classify(&self, e: &wasmtime::Error, refused_memory: bool, budget: Duration) -> CallError {
        match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => CallError::Timeout(budget),
            // A guest's allocator aborts (`unreachable`) when the cap refuses it memory.
            _ if refused_memory => CallError::OutOfMemory(self.limits.memory),
            Some(trap) => CallError::Trap(trap.to_string()),
            None => CallError::Trap(format!("{e:#}")),
        }
    }
}

/// Epoch ticks for `budget`; the current tick may be nearly over, hence one more.
fn ticks(budget: Duration) -> u64 {
    budget.as_nanos().div_ceil(TICK.as_nanos()) as u64 + 1
}

/// The time budget counts CPU time of the thread running the call, not wall time: on a
/// busy host (more runnable threads than cores) a call that needs 1 ms of CPU can take
/// 20 ms of wall time, and a wall-clock budget refused benign messages under load. The
/// epoch deadline still fires by wall time, which on one thread is never earlier than the
/// CPU time spent; at each deadline this stops the call if its CPU time is used up and
/// otherwise moves the deadline by what is left. A plugin in a loop uses CPU, so it is
/// still stopped after `budget` of it.
fn cpu_budget(
    budget: Duration,
) -> impl FnMut(wasmtime::StoreContextMut<'_, CallState>) -> wasmtime::Result<wasmtime::UpdateDeadline> {
    let started = thread_cpu_time();
    move |_| {
        let used = thread_cpu_time().saturating_sub(started);
        Ok(match budget.checked_sub(used) {
            Some(left) if !left.is_zero() => wasmtime::UpdateDeadline::Continue(ticks(left)),
            _ => wasmtime::UpdateDeadline::Interrupt,
        })
    }
}

/// CPU time the calling thread has used. Without a thread clock (never on Linux) it
/// answers the wall clock, which keeps the budget a wall-clock one rather than none.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec; the call only writes it.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        return START.get_or_init(std::time::Instant::now).elapsed();
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Bytes of each instance slot's memory and tables kept resident between calls. With the
/// default (none), every call's memory went back to the kernel and the next call faulted the
/// prepared snapshot's heap in again, page by page: ~170 µs of a shipped detector's ~210 µs
/// per call. Kept-resident memory is still reset before the slot is reused (wasmtime
/// restores the initial image), so calls stay isolated; the `prepared` test plugin checks it.
const KEEP_RESIDENT: usize = 4 << 20;

fn engine_config(limits: &PluginLimits) -> Config {
    let n = limits.max_concurrent;
    let mut pool = PoolingAllocationConfig::default();
    // A component built by the usual toolchains holds a few core instances (the module and
    // its adapter shims), one memory and a few tables.
    pool.total_component_instances(n)
        .total_core_instances(n * 16)
        .total_memories(n * 2)
        .total_tables(n * 8)
        .max_memory_size(limits.memory)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        // Resets only the pages a call dirtied instead of all kept-resident memory
        // (Linux 6.7+; elsewhere wasmtime resets it all, as before).
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Interfaces a plugin may import only with a capability. The rest of WASI carries nothing
/// in or out of the sandbox unless granted: stdio is empty, the environment has no
/// variables and randomness is deterministic (see [`wasi_context`]); every Rust component
/// imports `wasi:cli/environment`, so that one is governed by the context, not refused.
fn capability_of(import: &str) -> Option<Capability> {
    let interface = import.split('@').next().unwrap_or(import);
    match interface {
        i if i.starts_with("wasi:sockets/") => Some(Capability::Network),
        i if i.starts_with("wasi:filesystem/") => Some(Capability::Fs),
        "wasi:clocks/monotonic-clock" | "wasi:clocks/wall-clock" => Some(Capability::Clock),
        _ => None,
    }
}

/// Refuses a component that imports an interface of a capability it was not granted,
/// whatever its manifest says.
fn check_imports(
    name: &str,
    engine: &Engine,
    component: &Component,
    granted: &[Capability],
) -> Result<(), PluginError> {
    let ty = component.component_type();
    for (import, _) in ty.imports(engine) {
        if let Some(capability) = capability_of(import) {
            if !granted.contains(&capability) {
                return Err(PluginError::NotGranted {
                    plugin: name.to_string(),
                    capability,
                    via: format!(" (it imports `{import}`)"),
                });
            }
        }
    }
    Ok(())
}

/// The WASI a call sees: empty stdio, no arguments, and only what was granted.
fn wasi_context(granted: &[Capability], fs_root: Option<&Path>) -> WasiCtx {
    let mut wasi = WasiCtxBuilder::new();
    if !granted.contains(&Capability::Random) {
        // Deterministic bytes: hash-map seeding works, and nothing unpredictable gets in.
        wasi.secure_random(wasmtime_wasi::Deterministic::new(vec![0x5a; 32]));
        wasi.insecure_random(wasmtime_wasi::Deterministic::new(vec![0xa5; 32]));
        wasi.insecure_random_seed(0);
    }
    if granted.contains(&Capability::Env) {
        wasi.inherit_env();
    }
    if granted.contains(&Capability::Network) {
        wasi.inherit_network().allow_ip_name_lookup(true);
    }
    if let (true, Some(root)) = (granted.contains(&Capability::Fs), fs_root) {
        if let Err(e) = wasi.preopened_dir(root, "/", wasmtime_wasi::FsPerms::ReadOnly) {
            tracing::warn!(root = %root.display(), error = %e, "cannot open a plugin's granted directory");
        }
    }
    wasi.build()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}
