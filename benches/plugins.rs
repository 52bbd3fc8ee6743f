//! One detector plugin through the host as the gateway runs it per message: build the
//! payload, instantiate the component in a fresh store, call `detect`, check and re-root
//! its findings. The plugin is tests/plugins/marker (built by scripts/build-test-plugins.sh)
//! on tool results of 1 KiB and 16 KiB, and on 1 KiB from a tokio runtime worker as the
//! gateway calls it. Run with `cargo bench --bench plugins`.

#[path = "../tests/plugin_support/mod.rs"]
mod plugin_support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use forge::mcp::jsonrpc::{self, Message, Payload, Request};
use forge::plugins::{Plugins, PluginsConfig, Scan};
use serde_json::json;

/// A `tools/call` result of about `size` bytes: text blocks of ordinary prose with one
/// marker the detector reports.
fn result(size: usize) -> Message {
    let sentence = "The quarterly report lists revenue by region and the open support tickets. ";
    let mut blocks = Vec::new();
    let mut total = 0;
    while total < size {
        let text = sentence.repeat(4);
        total += text.len() + 32;
        blocks.push(json!({"type": "text", "text": text}));
    }
    blocks.push(json!({"type": "text", "text": "contact: PII-MARKER"}));
    let text = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": blocks}}).to_string();
    match jsonrpc::parse(text.as_bytes(), 64).expect("valid JSON-RPC") {
        Payload::Single(m) => m,
        Payload::Batch(_) => unreachable!(),
    }
}

fn detect(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    plugin_support::install(dir.path(), "marker", "marker", "");
    let config: PluginsConfig =
        serde_yaml_ng::from_str(&format!("directory: {}\nreload: false\n", dir.path().display())).expect("config");
    let plugins =
        Plugins::load(&config, &dir.path().join("state"), std::sync::Arc::new(forge::provenance::Trust::development()))
            .expect("the plugin loads");
    let call = Request {
        id: jsonrpc::Id::Number(1.into()),
        method: "tools/call".into(),
        params: Some(json!({"name": "report"})),
    };

    let mut group = c.benchmark_group("plugin_detect");
    for size in [1024, 16 * 1024] {
        let message = result(size);
        group.throughput(Throughput::Bytes(message.to_value().to_string().len() as u64));
        group.bench_with_input(
            BenchmarkId::new("marker_tool_result", format!("{}KiB", size / 1024)),
            &message,
            |b, m| {
                b.iter(|| {
                    let scan = Scan::server(m, Some(&call)).expect("a result is scanned");
                    let findings = plugins.detect(&scan, None).expect("the plugin works");
                    assert_eq!(findings.len(), 1);
                    black_box(findings)
                })
            },
        );
    }
    // On a runtime worker, as in the gateway: each message's detection runs inside
    // `block_in_place` (see `Plugins::detect`).
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().expect("a runtime");
    let message = std::sync::Arc::new(result(1024));
    group.bench_function(BenchmarkId::new("marker_tool_result_on_a_runtime_worker", "1KiB"), |b| {
        b.iter_custom(|iters| {
            let (plugins, message, call) = (plugins.clone(), message.clone(), call.clone());
            runtime
                .block_on(runtime.spawn(async move {
                    let started = std::time::Instant::now();
                    for _ in 0..iters {
                        let scan = Scan::server(&message, Some(&call)).expect("a result is scanned");
                        black_box(plugins.detect(&scan, None).expect("the plugin works"));
                    }
                    started.elapsed()
                }))
                .expect("the task ran")
        })
    });
    group.finish();
}

criterion_group!(benches, detect);
criterion_main!(benches);
