//! Policy evaluation on the default bundle (`policies/`), as the gateway runs it per
//! message: build the input document, evaluate on this thread's VM, read the decision.
//! Target: p50 ≤ 10 µs for a typical `tools/call`. Run with `cargo bench --bench policy`.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use forge::identity::{Principal, TokenIdentity};
use forge::mcp::jsonrpc::{self, Message, Payload};
use forge::policy::{Direction, PolicyConfig, PolicyInput, PolicyStore, RequestView};
use serde_json::{json, Value};

// The allocator the gateway runs with (src/main.rs), so the numbers are the gateway's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn message(text: &str) -> Message {
    match jsonrpc::parse(text.as_bytes(), 64).expect("valid JSON-RPC") {
        Payload::Single(m) => m,
        Payload::Batch(_) => panic!("one message"),
    }
}

fn developer() -> Principal {
    Principal {
        token: Some(TokenIdentity {
            issuer: "https://idp.example".into(),
            subject: "alice".into(),
            audience: vec!["forge".into()],
            scopes: vec!["openid".into()],
            claims: json!({"sub": "alice", "roles": ["developer"], "email": "alice@example.com"})
                .as_object()
                .expect("an object")
                .clone(),
        }),
        certificate: None,
    }
}

fn evaluate(c: &mut Criterion) {
    let bundle = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"));
    // The evaluation time limit is wall-clock: on a shared, overloaded machine a preempted
    // iteration can pass the default 50 ms, which would abort the bench, not measure it.
    let config = PolicyConfig { eval_timeout: std::time::Duration::from_secs(5), ..PolicyConfig::default() };
    let store = PolicyStore::load(bundle, &config).expect("the default bundle loads");
    let request = RequestView { source_address: Some("10.1.2.3".parse().expect("an IP")), ..Default::default() };
    let mut group = c.benchmark_group("policy");

    let anonymous = Principal::default();
    let call = message(
        r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"get_weather","arguments":{"location":"Seattle, WA","units":"metric"}}}"#,
    );
    let definition =
        json!({"name": "get_weather", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}});
    group.bench_function("tools_call_anonymous", |b| {
        b.iter(|| {
            let input = PolicyInput::for_message(
                &anonymous,
                black_box(&call),
                Direction::ClientToServer,
                None,
                request.clone(),
                Some(&definition),
            );
            let evaluation = store.evaluate(&input).expect("evaluates");
            assert!(evaluation.decision.allow);
        })
    });

    let principal = developer();
    let read = message(
        r#"{"jsonrpc":"2.0","id":43,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/workspace/src/main.rs"}}}"#,
    );
    group.bench_function("tools_call_jwt_path_checked", |b| {
        b.iter(|| {
            let input = PolicyInput::for_message(
                &principal,
                black_box(&read),
                Direction::ClientToServer,
                None,
                request.clone(),
                None,
            );
            assert!(store.evaluate(&input).expect("evaluates").decision.allow);
        })
    });

    // What the load harness's path (d) asks per request: a developer calling `echo`, then
    // the 1 KiB result of that call on its way back.
    let echo =
        message(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#);
    let Message::Request(echo_request) = echo.clone() else { unreachable!() };
    group.bench_function("tools_call_jwt_echo", |b| {
        b.iter(|| {
            let input = PolicyInput::for_message(
                &principal,
                black_box(&echo),
                Direction::ClientToServer,
                None,
                request.clone(),
                None,
            );
            assert!(store.evaluate(&input).expect("evaluates").decision.allow);
        })
    });
    let text = "x".repeat(1024 - 89); // a 1,024-byte body, as the harness's canned upstream sends
    let result = message(
        &json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}], "isError": false}})
            .to_string(),
    );
    group.bench_function("tools_call_result_1k_jwt", |b| {
        b.iter(|| {
            let input = PolicyInput::for_message(
                &principal,
                black_box(&result),
                Direction::ServerToClient,
                None,
                request.clone(),
                None,
            )
            .in_reply_to(&echo_request, None);
            assert!(store.evaluate(&input).expect("evaluates").decision.allow);
        })
    });

    let tools: Vec<Value> =
        (0..20).map(|i| json!({"name": format!("tool_{i}"), "inputSchema": {"type": "object"}})).collect();
    let list = message(&json!({"jsonrpc": "2.0", "id": 44, "result": {"tools": tools}}).to_string());
    let Message::Request(list_request) = message(r#"{"jsonrpc":"2.0","id":44,"method":"tools/list"}"#) else {
        unreachable!()
    };
    group.bench_function("tools_list_result_20_tools", |b| {
        b.iter(|| {
            let input = PolicyInput::for_message(
                &principal,
                black_box(&list),
                Direction::ServerToClient,
                None,
                request.clone(),
                None,
            )
            .in_reply_to(&list_request, None);
            assert!(store.evaluate(&input).expect("evaluates").decision.allow);
        })
    });

    group.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
