//! The policy store: hot reload (a bad bundle never replaces a good one), audit mode,
//! failing closed, the decision log, and evaluation racing a reload.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use forge::identity::Principal;
use forge::mcp::jsonrpc::{self, Message, Payload};
use forge::policy::{
    DecisionLogConfig, Direction, Mode, PolicyConfig, PolicyError, PolicyInput, PolicyStore, ReloadOutcome, RequestView,
};
use serde_json::Value;

/// Allows a call unless its tool is listed in `data.forge.blocked`; tests included.
const POLICY: &str = r#"package forge
import rego.v1

default decision := {"allow": true, "code": "allowed"}

decision := {"allow": false, "code": "blocked", "reason": sprintf("%s is blocked", [input.message.tool.name])} if {
	input.message.tool.name in data.forge.blocked
}
"#;

const TESTS: &str = r#"package forge_test
import rego.v1

test_blocked_tools_are_refused if not data.forge.decision.allow with input.message.tool.name as "rm" with data.forge.blocked as ["rm"]
test_other_tools_are_allowed if data.forge.decision.allow with input.message.tool.name as "ls" with data.forge.blocked as ["rm"]
"#;

fn write(dir: &Path, name: &str, contents: &str) {
    std::fs::write(dir.join(name), contents).unwrap();
}

fn bundle(blocked: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "main.rego", POLICY);
    write(dir.path(), "main_test.rego", TESTS);
    set_blocked(dir.path(), blocked);
    dir
}

fn set_blocked(dir: &Path, blocked: &[&str]) {
    write(dir, "data.json", &serde_json::json!({"forge": {"blocked": blocked}}).to_string());
}

fn call(tool: &str) -> Message {
    let text = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {"secret": "hunter2"}}});
    match jsonrpc::parse(text.to_string().as_bytes(), 64).unwrap() {
        Payload::Single(m) => m,
        Payload::Batch(_) => unreachable!(),
    }
}

fn allows(store: &PolicyStore, tool: &str) -> bool {
    let principal = Principal::default();
    let message = call(tool);
    let input =
        PolicyInput::for_message(&principal, &message, Direction::ClientToServer, None, RequestView::default(), None);
    store.evaluate(&input).unwrap().deny_reason().is_none()
}

fn config() -> PolicyConfig {
    PolicyConfig::default()
}

#[test]
fn a_changed_bundle_is_used_by_the_next_evaluation() {
    let dir = bundle(&["rm"]);
    let store = PolicyStore::load(dir.path(), &config()).unwrap();
    assert!(allows(&store, "ls"));
    let before = store.status();
    assert_eq!(before.tests_passed, 2);

    set_blocked(dir.path(), &["rm", "ls"]);
    assert!(matches!(store.reload().unwrap(), ReloadOutcome::Activated { .. }));
    assert!(!allows(&store, "ls"));
    assert_ne!(store.status().digest, before.digest);
    assert_eq!(store.reload().unwrap(), ReloadOutcome::Unchanged);
}

#[test]
fn a_broken_file_keeps_the_last_good_bundle_and_says_why() {
    let dir = bundle(&["rm"]);
    let store = PolicyStore::load(dir.path(), &config()).unwrap();
    let good = store.status();

    write(dir.path(), "main.rego", "package forge\nimport rego.v1\n\ndecision := {\n");
    let error = store.reload().unwrap_err();
    assert!(matches!(error, PolicyError::Invalid { .. }), "{error}");
    let status = store.status();
    assert_eq!(status.digest, good.digest, "the last good bundle stays active");
    let message = status.last_error.expect("the failure is visible");
    assert!(message.contains("main.rego:5:1"), "{message}");
    assert!(status.last_error_at.is_some());
    assert!(!allows(&store, "rm"), "the last good policy still decides");

    write(dir.path(), "main.rego", POLICY);
    store.reload().unwrap();
    assert_eq!(store.status().last_error, None, "a good reload clears the failure");
}

#[test]
fn a_bundle_whose_tests_fail_is_rejected() {
    let dir = bundle(&["rm"]);
    let store = PolicyStore::load(dir.path(), &config()).unwrap();
    // A policy that reads the wrong list compiles, but test_blocked_tools_are_refused fails.
    write(dir.path(), "main.rego", &POLICY.replace("in data.forge.blocked", "in data.forge.never_blocked"));
    let error = store.reload().unwrap_err();
    assert!(matches!(&error, PolicyError::TestsFailed { failed, total: 2 } if failed.len() == 1), "{error}");
    assert!(store.status().last_error.unwrap().contains("test_blocked_tools_are_refused"));
    assert!(!allows(&store, "rm"), "the tested policy stays active");
}

#[test]
fn loading_refuses_a_bundle_whose_tests_fail() {
    let dir = bundle(&["rm"]);
    write(dir.path(), "main_test.rego", &format!("{TESTS}test_wrong if data.forge.decision.allow with input.message.tool.name as \"rm\" with data.forge.blocked as [\"rm\"]\n"));
    let error = PolicyStore::load(dir.path(), &config()).err().unwrap();
    assert!(matches!(error, PolicyError::TestsFailed { .. }), "{error}");
}

#[test]
fn the_watcher_reloads_after_a_change_on_disk() {
    let dir = bundle(&["rm"]);
    let store = PolicyStore::load(dir.path(), &config()).unwrap();
    let _watcher = store.watch().unwrap();
    let before = store.status().digest;
    set_blocked(dir.path(), &["rm", "ls"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.status().digest == before {
        assert!(Instant::now() < deadline, "the change was not picked up");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!allows(&store, "ls"));
}

#[test]
fn evaluations_racing_reloads_see_one_whole_bundle() {
    let dir = bundle(&["rm"]);
    let store = PolicyStore::load(dir.path(), &config()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = 0;
                while !stop.load(Ordering::Relaxed) {
                    let principal = Principal::default();
                    let message = call("ls");
                    let input = PolicyInput::for_message(
                        &principal,
                        &message,
                        Direction::ClientToServer,
                        None,
                        RequestView::default(),
                        None,
                    );
                    let evaluation = store.evaluate(&input).expect("never a half-loaded bundle");
                    // The decision always matches the bundle that made it.
                    let blocked_ls = evaluation.decision.code == "blocked";
                    assert_eq!(blocked_ls, evaluation.bundle_revision.as_ref() == revision_blocking_ls());
                    seen += 1;
                }
                seen
            })
        })
        .collect();
    for round in 0..6 {
        set_blocked(dir.path(), if round % 2 == 0 { &["rm", "ls"] } else { &["rm"] });
        write_revision(dir.path(), round % 2 == 0);
        store.reload().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        assert!(worker.join().unwrap() > 0);
    }
}

fn revision_blocking_ls() -> &'static str {
    "blocks-ls"
}

fn write_revision(dir: &Path, blocks_ls: bool) {
    let revision = if blocks_ls { revision_blocking_ls() } else { "allows-ls" };
    write(dir, ".manifest", &serde_json::json!({ "revision": revision }).to_string());
}

#[test]
fn audit_mode_allows_and_says_it_would_have_denied() {
    let dir = bundle(&["rm"]);
    let store = PolicyStore::load(dir.path(), &PolicyConfig { mode: Mode::Audit, ..config() }).unwrap();
    let principal = Principal::default();
    let message = call("rm");
    let input =
        PolicyInput::for_message(&principal, &message, Direction::ClientToServer, None, RequestView::default(), None);
    let evaluation = store.evaluate(&input).unwrap();
    assert!(!evaluation.enforced);
    assert!(evaluation.would_deny());
    assert_eq!(evaluation.deny_reason(), None, "audit mode lets the message through");
    assert_eq!(evaluation.decision.code, "blocked", "the decision itself is unchanged");

    let enforcing = PolicyStore::load(dir.path(), &config()).unwrap();
    let evaluation = enforcing.evaluate(&input).unwrap();
    assert!(evaluation.enforced);
    assert_eq!(evaluation.deny_reason().unwrap().message, "rm is blocked");
}

/// A decision that takes a long time: about 10^8 loop iterations.
const EXPENSIVE: &str = r#"package forge
import rego.v1

decision := {"allow": count([1 | some i in numbers.range(1, 10000); some j in numbers.range(1, 10000)]) > 0}
"#;

#[test]
fn an_evaluation_over_its_time_limit_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "main.rego", EXPENSIVE);
    let limits = PolicyConfig { eval_timeout: Duration::from_millis(20), max_instructions: usize::MAX, ..config() };
    let store = PolicyStore::load(dir.path(), &limits).unwrap();
    let principal = Principal::default();
    let message = call("ls");
    let input =
        PolicyInput::for_message(&principal, &message, Direction::ClientToServer, None, RequestView::default(), None);
    let started = Instant::now();
    let error = store.evaluate(&input).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "stopped near its limit: {:?}", started.elapsed());
    assert!(matches!(error, PolicyError::Timeout { .. }), "{error}");
    let refusal = error.deny_reason();
    assert_eq!(refusal.code, "policy_error");
    assert!(!refusal.message.contains("numbers.range"), "policy internals stay in the log");
}

#[test]
fn an_evaluation_over_its_instruction_budget_fails_closed_and_the_next_one_works() {
    let dir = tempfile::tempdir().unwrap();
    let policy = r#"package forge
import rego.v1

decision := {"allow": true} if input.message.tool.name == "cheap"

decision := {"allow": count([1 | some i in numbers.range(1, 10000); some j in numbers.range(1, 10000)]) > 0} if {
	input.message.tool.name != "cheap"
}
"#;
    write(dir.path(), "main.rego", policy);
    let store = PolicyStore::load(dir.path(), &PolicyConfig { max_instructions: 10_000, ..config() }).unwrap();
    let principal = Principal::default();
    let (expensive, cheap) = (call("ls"), call("cheap"));
    let input =
        |m| PolicyInput::for_message(&principal, m, Direction::ClientToServer, None, RequestView::default(), None);
    let error = store.evaluate(&input(&expensive)).unwrap_err();
    assert!(matches!(error, PolicyError::BudgetExceeded { limit: 10_000 }), "{error}");
    assert!(store.evaluate(&input(&cheap)).unwrap().decision.allow, "the thread's VM recovers");
}

#[test]
fn a_malformed_decision_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "main.rego", "package forge\nimport rego.v1\n\ndecision := {\"allow\": \"yes\"}\n");
    let store = PolicyStore::load(dir.path(), &config()).unwrap();
    let principal = Principal::default();
    let message = call("ls");
    let input =
        PolicyInput::for_message(&principal, &message, Direction::ClientToServer, None, RequestView::default(), None);
    let error = store.evaluate(&input).unwrap_err();
    assert!(matches!(error, PolicyError::MalformedDecision(_)), "{error}");
    assert_eq!(error.deny_reason().code, "policy_error");
}

#[test]
fn the_decision_log_writes_one_masked_line_per_decision() {
    let dir = bundle(&["rm"]);
    let log = tempfile::NamedTempFile::new().unwrap();
    let config = PolicyConfig {
        decision_log: DecisionLogConfig { enabled: true, path: Some(log.path().to_path_buf()), ..Default::default() },
        ..config()
    };
    let store = PolicyStore::load(dir.path(), &config).unwrap();
    let principal = Principal::default();
    let (allowed, refused) = (call("ls"), call("rm"));
    let input =
        |m| PolicyInput::for_message(&principal, m, Direction::ClientToServer, None, RequestView::default(), None);
    let first = store.evaluate(&input(&allowed)).unwrap();
    store.evaluate(&input(&refused)).unwrap();
    let status = store.status();
    drop(store); // flushes the background writer

    let text = std::fs::read_to_string(log.path()).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    let line = &lines[0];
    assert_eq!(line["decision_id"], first.decision_id.as_str());
    assert_eq!(line["path"], "forge/decision");
    assert_eq!(line["input"]["message"]["tool"]["name"], "ls");
    assert_eq!(line["input"]["message"]["tool"]["arguments"], "***");
    assert_eq!(line["input"]["message"]["params"], "***");
    assert!(!text.contains("hunter2"), "arguments never reach the log");
    assert_eq!(line["result"]["allow"], true);
    assert_eq!(line["bundle"]["digest"], status.digest.as_str());
    assert_eq!(line["bundle"]["revision"], status.revision.as_str());
    assert!(line["metrics"]["timer_rego_eval_ns"].as_u64().unwrap() > 0);
    assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lines[1]["result"]["code"], "blocked");
    assert_ne!(lines[0]["decision_id"], lines[1]["decision_id"]);
}

#[test]
fn metrics_report_reloads_and_the_active_bundle() {
    let dir = bundle(&["rm"]);
    let store = PolicyStore::load(dir.path(), &config()).unwrap();
    let registry = prometheus::Registry::new();
    for collector in store.collectors() {
        registry.register(collector).unwrap();
    }
    write(dir.path(), "main.rego", "not rego");
    store.reload().unwrap_err();
    allows(&store, "ls");
    let text = {
        let mut out = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &registry.gather(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    assert!(text.contains("forge_policy_reloads_total{result=\"error\"} 1"), "{text}");
    let digest = store.status().digest;
    assert!(
        text.contains(&format!("forge_policy_bundle_info{{digest=\"{digest}\",revision=\"{digest}\"}} 1")),
        "{text}"
    );
    assert!(text.contains("forge_policy_decisions_total{outcome=\"allow\"} 1"), "{text}");
}
