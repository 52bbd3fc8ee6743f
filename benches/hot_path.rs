//! Micro-benchmarks of the per-message work the gateway adds: strict parsing of a request,
//! parsing a tool result of 1 KiB and 16 KiB, SSE framing, and mirrored-header validation.
//! Run with `cargo bench`; results are summarised in BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use forge::mcp::{headers, jsonrpc, sse};
use std::hint::black_box;

const CALL: &str = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"get_weather","arguments":{"location":"Seattle, WA","units":"metric"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;

fn tool_result(size: usize) -> String {
    let text = "x".repeat(size.saturating_sub(96));
    format!(r#"{{"jsonrpc":"2.0","id":42,"result":{{"content":[{{"type":"text","text":"{text}"}}],"isError":false}}}}"#)
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(CALL.len() as u64));
    group.bench_function("tools_call_request", |b| b.iter(|| jsonrpc::parse(black_box(CALL.as_bytes()), 64).unwrap()));
    for size in [1024, 16 * 1024] {
        let body = tool_result(size);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("tool_result", size), &body, |b, body| {
            b.iter(|| jsonrpc::parse(black_box(body.as_bytes()), 64).unwrap())
        });
    }
    group.finish();
}

fn sse_framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse");
    for size in [1024, 16 * 1024] {
        let event = format!("event: message\nid: 1\ndata: {}\n\n", tool_result(size));
        group.throughput(Throughput::Bytes(event.len() as u64));
        group.bench_with_input(BenchmarkId::new("parse_event", size), &event, |b, event| {
            b.iter(|| {
                let mut parser = sse::Parser::new(usize::MAX);
                parser.feed(black_box(event.as_bytes())).unwrap()
            })
        });
    }
    group.finish();
}

fn header_validation(c: &mut Criterion) {
    let payload = jsonrpc::parse(CALL.as_bytes(), 64).unwrap();
    let mut map = http::HeaderMap::new();
    map.insert("mcp-protocol-version", "2026-07-28".parse().unwrap());
    map.insert("mcp-method", "tools/call".parse().unwrap());
    map.insert("mcp-name", "get_weather".parse().unwrap());
    c.bench_function("headers/validate_tools_call", |b| {
        b.iter(|| headers::validate(black_box(&map), black_box(&payload), None).unwrap())
    });
}

criterion_group!(benches, parse, sse_framing, header_validation);
criterion_main!(benches);
