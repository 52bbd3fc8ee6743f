//! The plugin host with real WebAssembly components (tests/plugins/): what a well-behaved
//! detector reports reaches policy re-rooted onto the message, and every way a plugin can
//! misbehave — an endless loop, a memory bomb, a trap, garbage output — ends that call
//! only, with its fail mode, while the next call works.

mod plugin_support;

use std::path::Path;
use std::sync::Arc;

use forge::mcp::jsonrpc::{parse, Message, Payload};
use forge::plugins::{CallError, Failure, Plugins, PluginsConfig, Scan};
use forge::policy::{FindingCategory, Span};
use forge::provenance::Trust;
use plugin_support::install;

fn message(text: &str) -> Message {
    match parse(text.as_bytes(), 64).unwrap() {
        Payload::Single(m) => m,
        Payload::Batch(_) => panic!("one message"),
    }
}

fn call(text: &str) -> Message {
    message(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "sh", "arguments": {"cmd": text}}}).to_string())
}

fn config(dir: &Path, settings: &str) -> PluginsConfig {
    let yaml = format!(
        "directory: {}\nlimits: {{memory: 8MiB, time: 50ms, prepare_time: 300ms, max_concurrent: 8}}\nreload: false\n{settings}",
        dir.display()
    );
    serde_yaml_ng::from_str(&yaml).unwrap()
}

/// Compiled components are cached in one state directory for all these tests (compiling
/// is most of their time); the cache itself is tested with its own.
fn load(dir: &Path, settings: &str) -> Result<Plugins, forge::plugins::PluginError> {
    Plugins::load(&config(dir, settings), Path::new(env!("CARGO_TARGET_TMPDIR")), development())
}

/// No trust policy: unsigned plugins load (the trust policy itself is tested below).
fn development() -> Arc<Trust> {
    Arc::new(Trust::development())
}

fn detect(plugins: &Plugins, message: &Message) -> Result<Vec<forge::policy::Finding>, Failure> {
    plugins.detect(&Scan::client(message).expect("a call has arguments"), None)
}

#[test]
fn findings_are_reported_onto_the_message() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "marker", "marker", "");
    let plugins = load(dir.path(), "").unwrap();
    let findings = detect(&plugins, &call("echo PII-MARKER and SECRET-MARKER")).unwrap();
    assert_eq!(findings.len(), 2, "{findings:?}");
    let secret = findings.iter().find(|f| f.category == FindingCategory::Secret).unwrap();
    assert_eq!(secret.pointer, "/params/arguments/cmd");
    assert_eq!(secret.span, Some(Span { start: 20, end: 33 }));
    assert_eq!(secret.rule_id, "marker.secret");
    assert_eq!(secret.plugin.as_deref(), Some("marker"));
    // The benign near miss.
    assert!(detect(&plugins, &call("echo PII MARKER")).unwrap().is_empty());
}

#[test]
fn operator_config_reaches_the_plugin_and_is_checked_against_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let schema = "config_schema: {type: object, properties: {markers: {type: object, additionalProperties: {type: string}}}, additionalProperties: false}\n";
    install(dir.path(), "marker", "marker", schema);
    let plugins = load(dir.path(), "settings:\n  marker:\n    config: {markers: {TOPSECRET: custom}}\n").unwrap();
    let findings = detect(&plugins, &call("TOPSECRET, not SECRET-MARKER")).unwrap();
    assert_eq!(findings.iter().map(|f| f.rule_id.as_str()).collect::<Vec<_>>(), ["marker.custom"]);

    let e = load(dir.path(), "settings:\n  marker:\n    config: {marker: {}}\n").err().unwrap().to_string();
    assert!(e.contains("config_schema"), "{e}");
}

/// Each bad plugin fails closed with its own outcome, and the good plugin after it works.
#[test]
fn a_misbehaving_plugin_fails_its_call_only() {
    let cases = [
        ("spin", "", "timeout"),
        ("memory-bomb", "", "out_of_memory"),
        ("trap", "", "trap"),
        ("garbage", "settings:\n  bad:\n    config: {mode: pointer}\n", "invalid_output"),
        ("garbage", "settings:\n  bad:\n    config: {mode: span}\n", "invalid_output"),
        ("garbage", "settings:\n  bad:\n    config: {mode: error}\n", "error"),
    ];
    for (krate, settings, outcome) in cases {
        let dir = tempfile::tempdir().unwrap();
        install(dir.path(), "bad", krate, "");
        install(dir.path(), "good", "marker", "");
        let bad_only = load(dir.path(), &format!("order: [bad]\n{settings}")).unwrap();
        let good = load(dir.path(), "order: [good]\n").unwrap();
        for attempt in 0..2 {
            let failure = detect(&bad_only, &call("SECRET-MARKER")).unwrap_err();
            assert_eq!(failure.plugin, "bad");
            assert_eq!(failure.error.label(), outcome, "{krate} attempt {attempt}: {}", failure.error);
            assert_eq!(detect(&good, &call("SECRET-MARKER")).unwrap().len(), 1, "the next call works");
        }
        if krate == "spin" {
            assert_eq!(failure_of(&bad_only), CallError::Timeout(std::time::Duration::from_millis(50)));
        }
    }
}

#[test]
fn a_prepared_plugin_starts_every_call_from_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "prepared", "prepared", "");
    // The second load reads the cached artifact: it must be the snapshot too.
    for _load in 0..2 {
        let plugins = load(dir.path(), "").unwrap();
        for _call in 0..3 {
            let ids: Vec<_> = detect(&plugins, &call("x")).unwrap().into_iter().map(|f| f.rule_id).collect();
            assert_eq!(ids, ["prepared.calls-1"], "prepare's state is in every instance, no earlier call's is");
        }
    }
}

#[test]
fn a_plugin_whose_prepare_does_not_finish_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "slow", "prepare-spin", "");
    let e = load(dir.path(), "").err().expect("refused").to_string();
    assert!(e.contains("`slow` could not be prepared") && e.contains("time budget of 300ms"), "{e}");
}

/// Two slow calls at once: with one instance slot the second waits `max_wait` and fails
/// as busy (and the fail mode refuses its message); with two, both run.
#[test]
fn a_call_beyond_max_concurrent_waits_briefly_then_fails_as_busy() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "spin", "spin", "");
    for (slots, expected) in [(1, ["busy", "timeout"]), (2, ["timeout", "timeout"])] {
        let yaml = format!(
            "directory: {}\nreload: false\nlimits: {{time: 600ms, max_concurrent: {slots}, max_wait: 20ms}}\n",
            dir.path().display()
        );
        let plugins = Plugins::load(
            &serde_yaml_ng::from_str(&yaml).unwrap(),
            Path::new(env!("CARGO_TARGET_TMPDIR")),
            development(),
        )
        .unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let (plugins, barrier) = (plugins.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    failure_of(&plugins).label()
                })
            })
            .collect();
        let mut outcomes: Vec<_> = calls.into_iter().map(|c| c.join().unwrap()).collect();
        outcomes.sort();
        assert_eq!(outcomes, expected, "with {slots} slot(s)");
    }
}

fn failure_of(plugins: &Plugins) -> CallError {
    detect(plugins, &call("x")).unwrap_err().error
}

#[test]
fn fail_open_lets_the_message_go_on_with_a_plugin_error_finding() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "a-trap", "trap", "");
    install(dir.path(), "marker", "marker", "");
    let plugins = load(dir.path(), "settings:\n  a-trap:\n    fail_mode: fail_open\n").unwrap();
    let findings = detect(&plugins, &call("SECRET-MARKER")).unwrap();
    let rules: Vec<(&str, Option<&str>)> = findings.iter().map(|f| (f.rule_id.as_str(), f.plugin.as_deref())).collect();
    assert_eq!(rules, [("forge.plugin_error", Some("a-trap")), ("marker.secret", Some("marker"))]);
    assert_eq!(findings[0].pointer, "/params");
}

#[test]
fn capabilities_need_the_operators_grant() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "marker", "marker", "capabilities: [clock]\n");
    let e = load(dir.path(), "").err().unwrap().to_string();
    assert!(e.contains("`Clock` capability") && e.contains("grants"), "{e}");
    assert!(load(dir.path(), "settings:\n  marker:\n    grants: [clock]\n").is_ok());
}

#[test]
fn a_plugin_whose_digest_differs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = install(dir.path(), "marker", "marker", "");
    let mut wasm = std::fs::read(plugin.join("marker.wasm")).unwrap();
    wasm.push(0);
    std::fs::write(plugin.join("marker.wasm"), wasm).unwrap();
    let e = load(dir.path(), "").err().unwrap().to_string();
    assert!(e.contains("sha256") && e.contains("refusing"), "{e}");
}

#[test]
fn a_component_that_is_not_a_detector_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = install(dir.path(), "marker", "marker", "");
    let junk = b"\0asm not really";
    std::fs::write(plugin.join("marker.wasm"), junk).unwrap();
    let manifest = std::fs::read_to_string(plugin.join("manifest.yaml")).unwrap();
    let digest = forge::plugins::manifest::sha256_hex(junk);
    let fixed: String = manifest
        .lines()
        .map(|l| if l.starts_with("sha256:") { format!("sha256: {digest}\n") } else { format!("{l}\n") })
        .collect();
    std::fs::write(plugin.join("manifest.yaml"), fixed).unwrap();
    let e = load(dir.path(), "").err().unwrap().to_string();
    assert!(e.contains("compiling"), "{e}");
}

#[test]
fn compiled_components_are_cached_under_the_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "marker", "marker", "");
    let state = dir.path().join("state");
    Plugins::load(&config(dir.path(), ""), &state, development()).unwrap();
    let cached: Vec<_> =
        std::fs::read_dir(dir.path().join("state/plugins-cache")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    // A corrupt artifact is compiled again, not trusted.
    std::fs::write(&cached[0], b"garbage").unwrap();
    let plugins = Plugins::load(&config(dir.path(), ""), &state, development()).unwrap();
    assert_eq!(detect(&plugins, &call("SECRET-MARKER")).unwrap().len(), 1);
}

#[test]
fn a_bad_reload_keeps_the_last_good_set() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "marker", "marker", "");
    let plugins = load(dir.path(), "").unwrap();
    assert_eq!(plugins.status().active, ["marker@0.1.0"]);

    std::fs::write(dir.path().join("marker/marker.wasm"), b"tampered").unwrap();
    assert!(plugins.reload().is_err());
    let status = plugins.status();
    assert_eq!(status.active, ["marker@0.1.0"]);
    assert!(status.last_error.as_deref().unwrap().contains("sha256"), "{status:?}");
    assert_eq!(detect(&plugins, &call("SECRET-MARKER")).unwrap().len(), 1, "the last good plugin still runs");

    install(dir.path(), "marker", "marker", "");
    install(dir.path(), "second", "marker", "");
    plugins.reload().unwrap();
    let status = plugins.status();
    assert_eq!((status.active.len(), status.last_error), (2, None));
}

#[test]
fn plugins_run_only_on_their_hooks_and_methods() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = install(dir.path(), "marker", "marker", "methods: [prompts/get]\n");
    let plugins = load(dir.path(), "").unwrap();
    assert!(detect(&plugins, &call("SECRET-MARKER")).unwrap().is_empty(), "tools/call is not among its methods");
    let prompt = message(
        r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"a":"SECRET-MARKER"}}}"#,
    );
    assert_eq!(detect(&plugins, &prompt).unwrap().len(), 1);

    let manifest = std::fs::read_to_string(plugin.join("manifest.yaml")).unwrap();
    std::fs::write(
        plugin.join("manifest.yaml"),
        manifest.replace("[request, response, tool-list]", "[tool-list]").replace("methods: [prompts/get]\n", ""),
    )
    .unwrap();
    let plugins = load(dir.path(), "").unwrap();
    assert!(detect(&plugins, &call("SECRET-MARKER")).unwrap().is_empty(), "request is not among its hooks");
}

/// WASI's synchronous host calls block on the ambient tokio runtime; on the gateway's
/// runtime workers that must neither panic the task nor poison the next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_plugin_that_writes_to_stderr_inside_the_runtime_fails_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "bad", "trap", "");
    install(dir.path(), "good", "marker", "");
    let bad = load(dir.path(), "order: [bad]\n").unwrap();
    let good = load(dir.path(), "order: [good]\n").unwrap();
    // The trap plugin prints its panic message to stderr before it traps.
    assert_eq!(detect(&bad, &call("x")).unwrap_err().error.label(), "trap");
    assert_eq!(detect(&good, &call("SECRET-MARKER")).unwrap().len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn on_a_current_thread_runtime_too() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "bad", "trap", "");
    let bad = load(dir.path(), "").unwrap();
    assert_eq!(detect(&bad, &call("x")).unwrap_err().error.label(), "trap");
    assert_eq!(detect(&bad, &call("x")).unwrap_err().error.label(), "trap", "and again");
}

#[test]
fn the_watched_directory_reloads_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "marker", "marker", "");
    let mut config = config(dir.path(), "");
    config.reload = true;
    let plugins = Plugins::load(&config, Path::new(env!("CARGO_TARGET_TMPDIR")), development()).unwrap();
    let _watcher = plugins.watch().unwrap().expect("a directory to watch");
    let until = |what: &str, done: &dyn Fn(&forge::plugins::PluginsStatus) -> bool| {
        for _ in 0..200 {
            if done(&plugins.status()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{what}: {:?}", plugins.status());
    };
    install(dir.path(), "second", "marker", "");
    until("the new plugin is active", &|s| s.active.len() == 2);
    std::fs::write(dir.path().join("second/manifest.yaml"), "name: [").unwrap();
    until("the broken plugin is reported", &|s| s.last_error.is_some());
    assert_eq!(plugins.status().active.len(), 2, "the last good set stays");
}

#[test]
fn with_a_trust_policy_only_signed_plugins_load() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "marker", "marker", "");
    let nobody = Arc::new(Trust::with_keys(Vec::new(), Vec::new()));
    let e = Plugins::load(&config(dir.path(), ""), Path::new(env!("CARGO_TARGET_TMPDIR")), nobody).err().unwrap();
    assert!(matches!(e, forge::plugins::PluginError::Untrusted(_)), "{e}");
}
