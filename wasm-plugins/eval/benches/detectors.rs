//! Native timings of each shipped detector, and of all four, on 1 KiB and 16 KiB payloads.
//! Warm: the rules a payload needs are compiled on the first iteration and reused after it,
//! so these numbers leave out the per-call instantiation and first-use compilation that a
//! fresh wasm instance pays; the gateway's host benchmarks measure that through wasmtime.
//! Run: `cargo bench -p detector-eval` (in wasm-plugins/).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use detector_eval::payloads::{request, tool_list};
use forge_plugin_sdk::{Config, Context, Hook, Payload};
use std::hint::black_box;

fn detectors(c: &mut Criterion) {
    let config = Config::default();
    let call = Context::new(Hook::Request, "tools/call").with_tool("run_command", None);
    let result = Context::new(Hook::Response, "tools/call").with_tool("run_command", None);
    let list = Context::new(Hook::ToolList, "tools/list");
    for size in [1024, 16 * 1024] {
        let args = Payload::from_value(&request(size));
        let tools = Payload::from_value(&tool_list(size));
        let mut group = c.benchmark_group(format!("detect/{}KiB", size / 1024));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter("pii"), |b| {
            b.iter(|| pii::detect(&result, black_box(&args), &config))
        });
        group.bench_function(BenchmarkId::from_parameter("secrets"), |b| {
            b.iter(|| secrets::detect(&call, black_box(&args), &config))
        });
        group.bench_function(BenchmarkId::from_parameter("code-exec"), |b| {
            b.iter(|| code_exec::detect(&call, black_box(&args), &config))
        });
        group.bench_function(BenchmarkId::from_parameter("tool-poisoning"), |b| {
            b.iter(|| tool_poisoning::detect(&list, black_box(&tools), &config))
        });
        // What one message costs when every detector that applies to it runs: a request
        // with code and a result go through pii, secrets and code-exec, a listing of the
        // same size through tool-poisoning.
        group.bench_function(BenchmarkId::from_parameter("all-four"), |b| {
            b.iter(|| {
                let mut n = pii::detect(&result, black_box(&args), &config).map_or(0, |f| f.len());
                n += secrets::detect(&call, black_box(&args), &config).map_or(0, |f| f.len());
                n += code_exec::detect(&call, black_box(&args), &config).map_or(0, |f| f.len());
                n + tool_poisoning::detect(&list, black_box(&tools), &config).map_or(0, |f| f.len())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, detectors);
criterion_main!(benches);
