//! The per-request cost of tracing on the gateway's hot path: the request span, its MCP
//! attributes, the parent from the HTTP header, the `traceparent` injected into the
//! upstream request's headers and into the message's `_meta` (re-serializing the body), and
//! the hand-off of the finished span to the batch exporter (which
//! sends to a local collector that answers 200 in the background). With tracing off the
//! same calls are one atomic load each. Run with `cargo bench --bench tracing`.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use forge::telemetry::tracing_otel::{self, TracingConfig};
use http::{HeaderMap, HeaderValue, StatusCode};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const CALL: &[u8] =
    br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"q":"forge"}}}"#;

/// A collector that accepts every export.
async fn collector() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(Bytes::new())))
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    url
}

fn one_request(headers: &HeaderMap) {
    let body = Bytes::from_static(CALL);
    let payload = forge::mcp::jsonrpc::parse(&body, 64).unwrap();
    let span = tracing_otel::request_span(headers);
    let entered = span.enter();
    tracing_otel::describe(&payload, headers, Some("3b0e4a6c-session"));
    let forwarded = tracing_otel::inject_meta(payload, body);
    let mut upstream = HeaderMap::new();
    tracing_otel::inject_headers(&mut upstream);
    drop(entered);
    tracing_otel::finish(&span, StatusCode::OK);
    black_box((upstream, forwarded));
}

fn request_span(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    // Each iteration parses the message too (the gateway does anyway), so that `_meta` can
    // be rewritten in an owned payload; the difference between off and on is tracing's.
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));

    c.bench_function("tracing/off", |b| b.iter(|| one_request(&headers)));

    let config = TracingConfig {
        enabled: true,
        endpoint: runtime.block_on(collector()),
        export_interval: Duration::from_millis(200),
        ..Default::default()
    };
    let (layer, _guard) =
        runtime.block_on(async { tracing_otel::layer(&config, &tokio::runtime::Handle::current()) }).unwrap();
    tracing_subscriber::registry().with(layer).init();
    c.bench_function("tracing/on", |b| b.iter(|| one_request(&headers)));
}

criterion_group!(benches, request_span);
criterion_main!(benches);
