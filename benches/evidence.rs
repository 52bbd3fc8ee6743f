//! Evidence per exchange, as the gateway does it for a JSON `tools/call` with a 1 KiB
//! result: note the two policy evaluations (input document masked), build the record, sign
//! the response (RFC 9421, Ed25519) and append it to the log — including the writer
//! thread's work (chain hash, Merkle leaf, write to the segment), but not fsync.
//! Target: p50 ≤ 40 µs per exchange. Run with `cargo bench --bench evidence`.
//!
//! Two measurements of the same loop: `…_wall` (elapsed time) and `…_cpu` (CPU time of
//! the whole process, the writer thread included, read from /proc: on a shared machine it
//! is the steadier number).

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use forge::evidence::config::EvidenceConfig;
use forge::evidence::{Evidence, Pending};
use forge::identity::Principal;
use forge::mcp::jsonrpc::{self, Message, Payload};
use forge::policy::{Direction, PolicyConfig, PolicyInput, PolicyStore, RequestView};
use http::{HeaderMap, StatusCode};
use serde_json::json;

fn message(text: &str) -> Message {
    match jsonrpc::parse(text.as_bytes(), 64).expect("valid JSON-RPC") {
        Payload::Single(m) => m,
        Payload::Batch(_) => panic!("one message"),
    }
}

fn exchange(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Checkpoints (and so fsync) only at the end: the target excludes fsync.
    let config = EvidenceConfig {
        dir: Some(dir.path().join("evidence")),
        checkpoint_interval: Duration::from_secs(3600),
        checkpoint_records: u64::MAX,
        queue: 200_000,
        ..Default::default()
    };
    let evidence = Evidence::open(&config, dir.path(), &prometheus::Registry::new())
        .expect("the log opens")
        .expect("evidence is on");
    let bundle = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"));
    let store = PolicyStore::load(bundle, &PolicyConfig::default()).expect("the default bundle loads");

    let call_text = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"get_weather","arguments":{"location":"Seattle, WA","units":"metric"}}}"#;
    let call = message(call_text);
    let Message::Request(request) = call.clone() else { unreachable!() };
    let result_text =
        json!({"jsonrpc": "2.0", "id": 42, "result": {"content": [{"type": "text", "text": "x".repeat(1024)}]}})
            .to_string();
    let result = message(&result_text);
    let principal = Principal::default();
    let view = RequestView::default();
    let asked = PolicyInput::for_message(&principal, &call, Direction::ClientToServer, None, view.clone(), None);
    let answered = PolicyInput::for_message(&principal, &result, Direction::ServerToClient, None, view, None)
        .in_reply_to(&request, None);
    let (asked_outcome, answered_outcome) = (store.evaluate(&asked), store.evaluate(&answered));

    let mut group = c.benchmark_group("evidence");
    for (name, clock) in
        [("json_exchange_record_sign_append_wall", Clock::Wall), ("json_exchange_record_sign_append_cpu", Clock::Cpu)]
    {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let written = evidence.log().metrics.records.get();
                let started = clock.now();
                for _ in 0..iters {
                    let body = call_text.as_bytes();
                    let pending =
                        Some(evidence.begin(&principal, None, "tools/call", Some("get_weather"), Some("42"), body));
                    let trail = Pending::trail(&pending);
                    trail.note(&asked, Direction::ClientToServer, &asked_outcome);
                    trail.note(&answered, Direction::ServerToClient, &answered_outcome);
                    let pending = pending.map(|p| p.forwarded(body)).expect("evidence is on");
                    let mut headers = HeaderMap::new();
                    evidence
                        .seal_json(&pending, Some(&request), StatusCode::OK, &mut headers, result_text.as_bytes())
                        .expect("queued");
                }
                // Until the writer thread has written every record of this sample.
                while evidence.log().metrics.records.get() < written + iters {
                    std::thread::yield_now();
                }
                clock.now() - started
            })
        });
    }
    group.finish();
    evidence.log().close();
}

#[derive(Clone, Copy)]
enum Clock {
    Wall,
    Cpu,
}

impl Clock {
    fn now(self) -> Duration {
        match self {
            Clock::Wall => EPOCH.with(|epoch| epoch.elapsed()),
            Clock::Cpu => process_cpu_time(),
        }
    }
}

thread_local! {
    static EPOCH: Instant = Instant::now();
}

/// CPU time of every thread of this process: the sum of the first field of each task's
/// `schedstat` (nanoseconds on CPU).
fn process_cpu_time() -> Duration {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    let nanos: u64 = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

criterion_group!(benches, exchange);
criterion_main!(benches);
