//! The active set of plugins: loaded from the directory, asked about messages, swapped
//! whole on reload.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use notify::{EventKind, RecursiveMode, Watcher};
use serde::Serialize;

use super::config::{PluginSettings, PluginsConfig};
use super::host::{wit, CallError, Host, Loaded};
use super::manifest::Manifest;
use super::metrics::PluginMetrics;
use super::payload::{self, Part};
use super::{FailMode, Hook, PluginError, Scan};
use crate::policy::{Finding, FindingCategory, Severity};
use crate::provenance::Trust;

/// Editors and ConfigMap updates write several files in a burst; reload once it is quiet.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// The plugins of one gateway: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Plugins {
    shared: Arc<Shared>,
}

struct Shared {
    host: Host,
    trust: Arc<Trust>,
    config: PluginsConfig,
    dir: Option<PathBuf>,
    active: ArcSwap<PluginSet>,
    last_failure: Mutex<Option<String>>,
    reloading: Mutex<()>,
    metrics: PluginMetrics,
}

struct PluginSet {
    plugins: Vec<Plugin>,
}

struct Plugin {
    manifest: Manifest,
    settings: PluginSettings,
    /// The operator's config as the JSON text the plugin receives.
    config: String,
    loaded: Loaded,
}

/// A plugin failed on a message and its fail mode is `fail_closed`: the message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("detector `{plugin}` failed ({error}); the message is refused (fail_closed)")]
pub struct Failure {
    pub plugin: String,
    pub error: CallError,
}

/// What `/readyz` shows about plugins.
#[derive(Debug, Clone, Serialize)]
pub struct PluginsStatus {
    pub directory: Option<PathBuf>,
    /// Active plugins, in the order they run: `name@version`.
    pub active: Vec<String>,
    pub last_error: Option<String>,
}

/// Keeps the plugins directory watched; dropping it stops watching.
pub struct PluginWatcher {
    _watcher: notify::RecommendedWatcher,
}

impl Plugins {
    /// Loads every plugin of the configured directory; fails if any cannot be used. The
    /// state directory holds the compiled-component cache unless `cache_dir` says otherwise.
    ///
    /// With a trust policy, a plugin loads only if a trusted key signed its component and
    /// manifest (`forge plugin sign`); the bytes checked are the bytes compiled.
    pub fn load(config: &PluginsConfig, state_dir: &Path, trust: Arc<Trust>) -> Result<Plugins, PluginError> {
        config.validate().map_err(|(field, message)| PluginError::Directory(format!("`{field}`: {message}")))?;
        let cache = config.cache_dir.clone().unwrap_or_else(|| state_dir.join("plugins-cache"));
        let host = Host::new(config.limits, Some(cache))?;
        let dir = config.resolved_directory();
        let set = read_set(&host, &trust, config, dir.as_deref())?;
        match &dir {
            Some(dir) => tracing::info!(directory = %dir.display(), plugins = ?names(&set), "detector plugins loaded"),
            None => tracing::info!(
                shipped = super::config::SHIPPED_DIR,
                "no detector plugins run: plugins.directory is unset and the shipped detectors are not built (wasm-plugins/build.sh) or plugins.shipped is off"
            ),
        }
        let shared = Shared {
            host,
            trust,
            config: config.clone(),
            dir,
            active: ArcSwap::from_pointee(set),
            last_failure: Mutex::new(None),
            reloading: Mutex::new(()),
            metrics: PluginMetrics::new(),
        };
        Ok(Plugins { shared: Arc::new(shared) })
    }

    /// Runs the plugins subscribed to the scan's hook and method, in order, over its part. A plugin that fails adds a `forge.plugin_error` finding when it fails
    /// open, and ends the scan with a [`Failure`] when it fails closed.
    pub fn detect(
        &self,
        scan: &Scan<'_>,
        tool_definition: Option<&serde_json::Value>,
    ) -> Result<Vec<Finding>, Failure> {
        let set = self.shared.active.load();
        let mut wanted = set.plugins.iter().filter(|p| p.wants(scan.hook, scan.method)).peekable();
        if wanted.peek().is_none() {
            return Ok(Vec::new());
        }
        // Plugins without capabilities have nothing to block on (their only WASI is empty
        // stdio, whose failure fails the call like a trap), so they run in place: moving a
        // call off a serving worker starts a thread, which cost ~80 µs per message on the
        // full path (BENCHMARKS.md).
        if !wanted.any(|p| p.loaded.has_grants()) {
            return self.run(&set, scan, tool_definition);
        }
        off_the_runtime(|| self.run(&set, scan, tool_definition))
    }

    fn run(
        &self,
        set: &PluginSet,
        scan: &Scan<'_>,
        tool_definition: Option<&serde_json::Value>,
    ) -> Result<Vec<Finding>, Failure> {
        let mut findings = Vec::new();
        // Built once for all the plugins that look at this part.
        let mut input = None;
        for plugin in set.plugins.iter().filter(|p| p.wants(scan.hook, scan.method)) {
            let (cx, payload) = input.get_or_insert_with(|| {
                let cx = wit::Context {
                    hook: wit_hook(scan.hook),
                    method: scan.method.to_string(),
                    tool_name: scan.tool.map(str::to_owned),
                    tool_definition: tool_definition.map(|d| d.to_string()),
                };
                (cx, payload::payload(scan.part.value))
            });
            match self.call(plugin, cx, payload, scan.part) {
                Ok(found) => findings.extend(found),
                Err(error) if plugin.settings.fail_mode == FailMode::FailOpen => {
                    tracing::warn!(plugin = %plugin.manifest.name, %error, method = scan.method, "detector failed; the message goes on (fail_open)");
                    findings.push(plugin_error(&plugin.manifest.name, &scan.part));
                }
                Err(error) => {
                    tracing::warn!(plugin = %plugin.manifest.name, %error, method = scan.method, "detector failed; refusing the message (fail_closed)");
                    return Err(Failure { plugin: plugin.manifest.name.clone(), error });
                }
            }
        }
        Ok(findings)
    }

    fn call(
        &self,
        plugin: &Plugin,
        cx: &wit::Context,
        payload: &wit::Payload,
        part: Part<'_>,
    ) -> Result<Vec<Finding>, CallError> {
        let name = plugin.manifest.name.as_str();
        let metrics = &self.shared.metrics;
        let started = Instant::now();
        let result = self.shared.host.call(&plugin.loaded, cx, payload, &plugin.config).and_then(|found| {
            found
                .into_iter()
                .map(|f| payload::read_finding(name, part, f))
                .collect::<Result<Vec<_>, _>>()
                .map_err(CallError::InvalidOutput)
        });
        metrics.duration.with_label_values(&[name]).observe(started.elapsed().as_secs_f64());
        let outcome = result.as_ref().map_or_else(CallError::label, |_| "ok");
        metrics.calls.with_label_values(&[name, outcome]).inc();
        for finding in result.iter().flatten() {
            metrics.findings.with_label_values(&[name, category_label(finding.category)]).inc();
        }
        result
    }

    /// Reads the directory again and swaps the new set in if every plugin of it loads;
    /// otherwise the current set stays and the failure is recorded.
    pub fn reload(&self) -> Result<(), PluginError> {
        let shared = &*self.shared;
        let _one_at_a_time = shared.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let result = read_set(&shared.host, &shared.trust, &shared.config, shared.dir.as_deref());
        let mut last_failure = shared.last_failure.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(set) => {
                tracing::info!(plugins = ?names(&set), "detector plugins reloaded");
                shared.active.store(Arc::new(set));
                shared.metrics.reloads.with_label_values(&["ok"]).inc();
                *last_failure = None;
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "plugins directory rejected; the previous plugins stay active");
                shared.metrics.reloads.with_label_values(&["error"]).inc();
                *last_failure = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Watches the directory and reloads shortly after it changes. `None` when there is
    /// no directory to watch or reloading is off.
    pub fn watch(&self) -> Result<Option<PluginWatcher>, PluginError> {
        let Some(dir) = self.shared.dir.clone().filter(|_| self.shared.config.reload) else { return Ok(None) };
        let (tx, rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if !matches!(&event, Ok(e) if matches!(e.kind, EventKind::Access(_))) {
                let _ = tx.send(());
            }
        })
        .map_err(|e| PluginError::Watch(e.to_string()))?;
        watcher
            .watch(&dir, RecursiveMode::Recursive)
            .map_err(|e| PluginError::Watch(format!("{}: {e}", dir.display())))?;
        let plugins = self.clone();
        std::thread::Builder::new()
            .name("forge-plugin-watch".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    while rx.recv_timeout(DEBOUNCE).is_ok() {}
                    // Failures are recorded by reload itself.
                    let _ = plugins.reload();
                }
            })
            .map_err(|e| PluginError::Watch(format!("starting the watch thread: {e}")))?;
        Ok(Some(PluginWatcher { _watcher: watcher }))
    }

    pub fn status(&self) -> PluginsStatus {
        let set = self.shared.active.load();
        let failure = self.shared.last_failure.lock().unwrap_or_else(|e| e.into_inner()).clone();
        PluginsStatus {
            directory: self.shared.dir.clone(),
            active: set.plugins.iter().map(|p| format!("{}@{}", p.manifest.name, p.manifest.version)).collect(),
            last_error: failure,
        }
    }

    /// True when no plugin is active: callers can skip building scans.
    pub fn is_empty(&self) -> bool {
        self.shared.active.load().plugins.is_empty()
    }

    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        self.shared.metrics.collectors()
    }
}

/// WASI's synchronous host calls (a plugin writing to its stderr, reading a granted file)
/// block on the ambient tokio runtime, which a thread driving a runtime must not do.
/// On a multi-thread runtime `block_in_place` hands the thread's other tasks to another
/// thread for the duration. A serving worker's current-thread runtime cannot do that: the
/// call runs on a scoped thread outside any runtime (WASI then blocks on its own), and the
/// worker waits for it as it would for the call itself. Outside a runtime the call runs as
/// is. Should a thread not start, it runs in place, where a blocking host call fails like a
/// trap (see `Host::call`).
fn off_the_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => {
            let call = Mutex::new(Some(f));
            let run = || {
                let f = call.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
                f.map(|f| f())
            };
            std::thread::scope(|scope| {
                let ran = match std::thread::Builder::new().name("forge-plugin-call".into()).spawn_scoped(scope, run) {
                    Ok(thread) => thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    Err(_) => None,
                };
                ran.or_else(run).expect("the call is taken exactly once")
            })
        }
        Err(_) => f(),
    }
}

impl Plugin {
    fn wants(&self, hook: Hook, method: &str) -> bool {
        let methods = if self.settings.methods.is_empty() { &self.manifest.methods } else { &self.settings.methods };
        self.manifest.hooks.contains(&hook) && (methods.is_empty() || methods.iter().any(|m| m == method))
    }
}

/// The finding a failed plugin leaves when it fails open: policy sees that a detector
/// did not look at this part.
fn plugin_error(plugin: &str, part: &Part<'_>) -> Finding {
    Finding {
        rule_id: "forge.plugin_error".into(),
        category: FindingCategory::Custom,
        severity: Severity::High,
        confidence: 1.0,
        pointer: part.at.to_string(),
        span: None,
        fingerprint: String::new(),
        plugin: Some(plugin.to_string()),
    }
}

fn category_label(category: FindingCategory) -> &'static str {
    match category {
        FindingCategory::Pii => "pii",
        FindingCategory::Secret => "secret",
        FindingCategory::CodeExec => "code-exec",
        FindingCategory::Poisoning => "poisoning",
        FindingCategory::Custom => "custom",
    }
}

fn wit_hook(hook: Hook) -> wit::Hook {
    match hook {
        Hook::Request => wit::Hook::Request,
        Hook::Response => wit::Hook::Response,
        Hook::ToolList => wit::Hook::ToolList,
    }
}

fn names(set: &PluginSet) -> Vec<&str> {
    set.plugins.iter().map(|p| p.manifest.name.as_str()).collect()
}

/// Reads, checks and links every plugin the configuration selects.
fn read_set(host: &Host, trust: &Trust, config: &PluginsConfig, dir: Option<&Path>) -> Result<PluginSet, PluginError> {
    let Some(dir) = dir else { return Ok(PluginSet { plugins: Vec::new() }) };
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| PluginError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| PluginError::io(dir, e))?.path();
        if path.join("manifest.yaml").is_file() {
            found.push(path);
        }
    }
    found.sort();
    let mut manifests = Vec::new();
    for plugin_dir in found {
        let manifest = Manifest::read(&plugin_dir)?;
        if plugin_dir.file_name().and_then(|n| n.to_str()) != Some(manifest.name.as_str()) {
            return Err(PluginError::Manifest {
                path: plugin_dir.join("manifest.yaml"),
                message: format!("`name`: `{}` must be the name of its directory", manifest.name),
            });
        }
        manifests.push((manifest, plugin_dir));
    }
    for name in config.settings.keys().filter(|n| !manifests.iter().any(|(m, _)| &m.name == *n)) {
        tracing::warn!(plugin = %name, directory = %dir.display(), "plugins.settings names a plugin the directory does not hold");
    }
    let selected: Vec<(Manifest, PathBuf)> = match &config.order {
        Some(order) => order
            .iter()
            .map(|name| {
                let i = manifests.iter().position(|(m, _)| &m.name == name).ok_or_else(|| {
                    PluginError::Directory(format!("plugins.order names `{name}`, which is not in {}", dir.display()))
                })?;
                Ok(manifests[i].clone())
            })
            .collect::<Result<_, PluginError>>()?,
        None => manifests,
    };
    let mut plugins = Vec::new();
    for (manifest, plugin_dir) in selected {
        let settings = config.settings_for(&manifest.name);
        if settings.enabled {
            plugins.push(prepare(host, trust, manifest, settings, &plugin_dir)?);
        }
    }
    Ok(PluginSet { plugins })
}

fn prepare(
    host: &Host,
    trust: &Trust,
    manifest: Manifest,
    settings: PluginSettings,
    dir: &Path,
) -> Result<Plugin, PluginError> {
    // The manifest and component as the trust policy checked them (read once, so what was
    // verified is what is compiled).
    let manifest_path = dir.join("manifest.yaml");
    let wasm_path = dir.join(&manifest.wasm);
    let verified = trust.verify_plugin(&wasm_path, &manifest_path)?;
    let manifest = Manifest::parse(&manifest_path, &verified.manifest)?;
    let wasm = verified.wasm;
    manifest.check_wasm(&wasm_path, &wasm)?;
    let name = manifest.name.clone();
    if let Some(capability) = manifest.capabilities.iter().find(|c| !settings.grants.contains(c)) {
        return Err(PluginError::NotGranted { plugin: name, capability: *capability, via: String::new() });
    }
    manifest.check_config(&settings.config).map_err(|message| PluginError::Config { plugin: name.clone(), message })?;
    let loaded = host.load(&name, &wasm, &manifest.capabilities, settings.fs_root.as_deref())?;
    let config = settings.config.to_string();
    Ok(Plugin { manifest, settings, config, loaded })
}

#[cfg(test)]
mod tests {
    use super::off_the_runtime;
    use tokio::runtime::Handle;

    /// WASI's blocking host calls work wherever the call runs outside a runtime's context
    /// or inside `block_in_place`; a current-thread runtime (a serving worker) has neither.
    #[tokio::test(flavor = "current_thread")]
    async fn on_a_current_thread_runtime_the_call_runs_outside_it() {
        let here = std::thread::current().id();
        let (outside, thread) = off_the_runtime(|| (Handle::try_current().is_err(), std::thread::current().id()));
        assert!(outside, "no runtime context for WASI to block on");
        assert_ne!(thread, here);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn on_a_multi_thread_runtime_it_runs_in_place() {
        let here = std::thread::current().id();
        assert_eq!(off_the_runtime(|| std::thread::current().id()), here);
    }

    #[test]
    fn outside_a_runtime_it_runs_in_place() {
        let here = std::thread::current().id();
        assert_eq!(off_the_runtime(|| std::thread::current().id()), here);
    }
}
