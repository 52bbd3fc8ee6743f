//! Evidence per exchange, as the gateway does it for a JSON `tools/call` with a 1 KiB
//! result: note the two policy evaluations (input document masked), build the record, sign
//! the response (RFC 9421, Ed25519) and append it to the log — including the writer
//! thread's work (chain hash, Merkle leaf, write to the segment), but not fsync.
//! Target: p50 ≤ 40 µs per exchange. Run with `cargo bench --bench evidence`.

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
    group.bench_function("json_exchange_record_sign_append", |b| {
        b.iter_custom(|iters| {
            let written = evidence.log().metrics.records.get();
            let started = Instant::now();
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
            started.elapsed()
        })
    });
    group.finish();
    evidence.log().close();
}

criterion_group!(benches, exchange);
criterion_main!(benches);
