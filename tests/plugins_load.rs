//! The plugin host on a busy machine: more calls at once than instance slots, and more than
//! cores. A busy host makes calls slower; it must not refuse benign ones (the time budget
//! counts the CPU time a call uses, not the time it waits for a core or a slot), while a
//! plugin that never returns is still stopped and its message still refused.

mod plugin_support;

use std::path::Path;
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use forge::mcp::jsonrpc::{parse, Message, Payload};
use forge::plugins::{CallError, Failure, Plugins, PluginsConfig, Scan};
use forge::provenance::Trust;
use plugin_support::install;

/// Concurrent calls: many more than the 2 cores of the machines this runs on.
const CALLERS: usize = 16;

fn call() -> Message {
    let text = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sh","arguments":{"cmd":"ls"}}}"#;
    match parse(text.as_bytes(), 64).unwrap() {
        Payload::Single(m) => m,
        Payload::Batch(_) => unreachable!(),
    }
}

fn load(dir: &Path, limits: &str, settings: &str) -> Plugins {
    let yaml = format!("directory: {}\nreload: false\nlimits: {limits}\n{settings}", dir.display());
    let config: PluginsConfig = serde_yaml_ng::from_str(&yaml).unwrap();
    Plugins::load(&config, Path::new(env!("CARGO_TARGET_TMPDIR")), Arc::new(Trust::development())).unwrap()
}

/// Runs `calls` detections on each of [`CALLERS`] threads started together, and returns
/// every outcome; fails the test, rather than hanging it, if they take over a minute.
fn concurrently(plugins: &Plugins, calls: usize) -> Vec<Result<usize, Failure>> {
    let barrier = Arc::new(Barrier::new(CALLERS));
    let (tx, rx) = mpsc::channel();
    for _ in 0..CALLERS {
        let (plugins, barrier, tx) = (plugins.clone(), barrier.clone(), tx.clone());
        std::thread::spawn(move || {
            let message = call();
            barrier.wait();
            for _ in 0..calls {
                let scan = Scan::client(&message).expect("a call is scanned");
                let _ = tx.send(plugins.detect(&scan, None).map(|f| f.len()));
            }
        });
    }
    (0..CALLERS * calls).map(|_| rx.recv_timeout(Duration::from_secs(60)).expect("every call ends")).collect()
}

/// Each call needs about 10 ms of CPU (50 million rounds) and has a 40 ms budget; 16 at
/// once on 2 cores take well over 40 ms of wall time each, and 12 slots make 4 of them
/// wait for an instance. With a wall-clock budget most of these timed out.
#[test]
fn concurrent_benign_calls_beyond_the_slots_and_the_cores_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "work", "work", "");
    let plugins =
        load(dir.path(), "{time: 40ms, max_concurrent: 12, max_wait: 30s}", "settings: {work: {config: {rounds: 5}}}");
    let outcomes = concurrently(&plugins, 2);
    let failed: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} of {} calls failed: {failed:?}", failed.len(), outcomes.len());
}

/// The same crowd of callers with a plugin that never returns: every call is stopped at its
/// budget, each message is refused (fail_closed), and nothing hangs.
#[test]
fn an_exhausted_budget_still_fails_closed_under_load() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "spin", "spin", "");
    let plugins = load(dir.path(), "{time: 20ms, max_concurrent: 16, max_wait: 30s}", "");
    for outcome in concurrently(&plugins, 1) {
        let failure = outcome.expect_err("an endless plugin refuses its message");
        assert_eq!(failure.error, CallError::Timeout(Duration::from_millis(20)));
    }
}

/// A benign call over its budget is refused too: the budget is a limit, not a hint.
#[test]
fn a_benign_call_that_needs_more_than_its_budget_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "work", "work", "");
    let plugins = load(dir.path(), "{time: 2ms}", "settings: {work: {config: {rounds: 500}}}");
    let scan_of = call();
    let failure = plugins.detect(&Scan::client(&scan_of).unwrap(), None).expect_err("over budget");
    assert_eq!(failure.error, CallError::Timeout(Duration::from_millis(2)));
}
