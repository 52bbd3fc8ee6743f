//! Detector plugins through the host as the gateway runs them per message: build the
//! payload, instantiate the component in a fresh store, call `detect`, check and re-root
//! its findings.
//!
//! - `plugin_detect`: tests/plugins/marker (built by scripts/build-test-plugins.sh), the
//!   host's own cost, on tool results of 1 KiB and 16 KiB, and on 1 KiB from a tokio
//!   runtime worker as the gateway calls it; `marker_16_at_once` is 16 such calls at once
//!   from runtime tasks (`block_in_place`) or from plain threads, per iteration.
//! - `shipped_detect/<size>`: the four shipped detectors (wasm-plugins/dist, built by
//!   wasm-plugins/build.sh; skipped without it), prepared and snapshotted at load as the
//!   gateway does, each on the payload it reads and all four together, on 1, 4 and 16 KiB.
//!   `all-four-cpu` is `all-four` in CPU time of the calling thread rather than wall time.
//!
//! Run with `cargo bench --bench plugins`.

#[path = "../tests/plugin_support/mod.rs"]
mod plugin_support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use forge::mcp::jsonrpc::{self, Message, Payload, Request};
use forge::plugins::{Plugins, PluginsConfig, Scan};
use serde_json::json;

fn message(value: serde_json::Value) -> Message {
    match jsonrpc::parse(value.to_string().as_bytes(), 64).expect("valid JSON-RPC") {
        Payload::Single(m) => m,
        Payload::Batch(_) => unreachable!(),
    }
}

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
    message(json!({"jsonrpc": "2.0", "id": 1, "result": {"content": blocks}}))
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
    // Under load: 16 detections at once, from 16 tasks of a 2-worker runtime (each inside
    // `block_in_place`, as the gateway runs them) and from 16 plain threads (no runtime).
    // The difference is what `block_in_place` costs when every worker is busy detecting.
    const CONCURRENT: usize = 16;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("a runtime");
    group.bench_function(BenchmarkId::new("marker_16_at_once", "runtime_tasks"), |b| {
        b.iter_custom(|iters| {
            let started = std::time::Instant::now();
            runtime.block_on(async {
                let tasks: Vec<_> = (0..CONCURRENT)
                    .map(|_| {
                        let (plugins, message, call) = (plugins.clone(), message.clone(), call.clone());
                        tokio::spawn(async move {
                            for _ in 0..iters {
                                let scan = Scan::server(&message, Some(&call)).expect("a result is scanned");
                                black_box(plugins.detect(&scan, None).expect("the plugin works"));
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("the task ran");
                }
            });
            started.elapsed()
        })
    });
    group.bench_function(BenchmarkId::new("marker_16_at_once", "threads"), |b| {
        b.iter_custom(|iters| {
            let started = std::time::Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..CONCURRENT {
                    scope.spawn(|| {
                        for _ in 0..iters {
                            let scan = Scan::server(&message, Some(&call)).expect("a result is scanned");
                            black_box(plugins.detect(&scan, None).expect("the plugin works"));
                        }
                    });
                }
            });
            started.elapsed()
        })
    });
    group.finish();
}

/// Ordinary tool output of about `size` bytes (log lines, a query, a listing) with one
/// email address and one AWS key id in it, the way real traffic looks.
fn ordinary_text(size: usize) -> String {
    const LINES: [&str; 6] = [
        "2026-11-30T10:22:04Z INFO api request GET /v2/invoices?limit=20 200 in 12ms",
        "Deployed billing-api v2.14.3 to eu-west-1; health checks passed on 3/3 pods.",
        "SELECT id, total FROM invoices WHERE created_at > now() - interval '7 days' returned 41 rows",
        "git log: 3f2a9c1 Fix rounding in invoice totals (2 days ago)",
        "kubectl get pods -n billing: api-7d9f 1/1 Running, worker-5c2b 1/1 Running",
        "Customer asked about order 4417-2231; refund approved by the support lead.",
    ];
    let mut text = String::from("Contact dana.kim@acme-corp.com about AKIAQ3EGT5LMZN4RWX7P.\n");
    for line in LINES.iter().cycle() {
        if text.len() >= size {
            break;
        }
        text.push_str(line);
        text.push('\n');
    }
    text.truncate(size);
    text
}

/// What each shipped detector reads, about `size` bytes of it: a tool result (pii,
/// secrets), a shell tool's call with notes (code-exec, and pii and secrets too), and a
/// tool listing (tool-poisoning).
struct Shipped {
    result: Message,
    call: Message,
    listing: Message,
}

impl Shipped {
    fn new(size: usize) -> Shipped {
        let content = json!([{"type": "text", "text": ordinary_text(size)}]);
        let notes = ordinary_text(size.saturating_sub(100));
        let arguments = json!({"command": "ls -la /workspace && git status", "notes": notes, "timeout": 30});
        let mut tools = Vec::new();
        while json!(tools).to_string().len() < size {
            let i = tools.len();
            tools.push(json!({
                "name": format!("search_{i}"),
                "description": "Searches the invoices by customer, date or amount. Use the `limit` argument to page through results.",
                "inputSchema": {"type": "object", "properties": {"limit": {"type": "integer", "description": "Maximum results."}}}
            }));
        }
        Shipped {
            result: message(json!({"jsonrpc": "2.0", "id": 1, "result": {"content": content}})),
            call: message(
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "run_command", "arguments": arguments}}),
            ),
            listing: message(json!({"jsonrpc": "2.0", "id": 2, "result": {"tools": tools}})),
        }
    }
}

/// The shipped detectors, `order` of them, loaded with a cache in `state`.
fn shipped(dist: &std::path::Path, state: &std::path::Path, order: &[&str]) -> Plugins {
    let yaml = format!("directory: {}\nreload: false\norder: {order:?}\n", dist.display());
    let config: PluginsConfig = serde_yaml_ng::from_str(&yaml).expect("config");
    Plugins::load(&config, state, std::sync::Arc::new(forge::provenance::Trust::development()))
        .expect("the shipped detectors load")
}

/// CPU time the calling thread has used (Linux's scheduler statistics, in nanoseconds).
fn thread_cpu_time() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let ns = stat.split_whitespace().next().and_then(|n| n.parse().ok()).expect("on-CPU nanoseconds");
    std::time::Duration::from_nanos(ns)
}

fn detect_shipped(c: &mut Criterion) {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(forge::plugins::config::SHIPPED_DIR);
    if !dist.join("secrets/manifest.yaml").is_file() {
        eprintln!("shipped_detect skipped: {} not built (run wasm-plugins/build.sh)", dist.display());
        return;
    }
    let state = tempfile::tempdir().expect("a temporary directory");
    let all = shipped(&dist, state.path(), &["pii", "secrets", "code-exec", "tool-poisoning"]);
    let one = |name: &str| shipped(&dist, state.path(), &[name]);
    let (pii, secrets, code_exec, poisoning) = (one("pii"), one("secrets"), one("code-exec"), one("tool-poisoning"));
    let list = Request { id: jsonrpc::Id::Number(2.into()), method: "tools/list".into(), params: None };
    let tool_call = Request {
        id: jsonrpc::Id::Number(1.into()),
        method: "tools/call".into(),
        params: Some(json!({"name": "run_command"})),
    };
    let run = |plugins: &Plugins, scan: Scan<'_>| black_box(plugins.detect(&scan, None).expect("the detectors work"));
    for size in [1024, 4 * 1024, 16 * 1024] {
        let m = Shipped::new(size);
        let result = || Scan::server(&m.result, Some(&tool_call)).expect("a result is scanned");
        let call = || Scan::client(&m.call).expect("a call is scanned");
        let listing = || Scan::server(&m.listing, Some(&list)).expect("a listing is scanned");
        assert!(!run(&pii, result()).is_empty() && !run(&secrets, result()).is_empty(), "the payload has findings");
        let mut group = c.benchmark_group(format!("shipped_detect/{}KiB", size / 1024));
        group.bench_function("pii", |b| b.iter(|| run(&pii, result())));
        group.bench_function("secrets", |b| b.iter(|| run(&secrets, result())));
        group.bench_function("code-exec", |b| b.iter(|| run(&code_exec, call())));
        group.bench_function("tool-poisoning", |b| b.iter(|| run(&poisoning, listing())));
        // A tool result goes through the two detectors that read results.
        group.bench_function("tool-result", |b| b.iter(|| run(&all, result())));
        // Every detector once on what it reads: the call through pii, secrets and
        // code-exec, the listing through tool-poisoning.
        let all_four = || (run(&all, call()), run(&all, listing()));
        group.bench_function("all-four", |b| b.iter(all_four));
        group.bench_function("all-four-cpu", |b| {
            b.iter_custom(|iters| {
                let started = thread_cpu_time();
                for _ in 0..iters {
                    all_four();
                }
                thread_cpu_time() - started
            })
        });
        group.finish();
    }
}

criterion_group!(benches, detect, detect_shipped);
criterion_main!(benches);
