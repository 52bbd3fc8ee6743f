//! Traces: the gateway, with `tracing.enabled`, exports one span per MCP request over
//! OTLP/HTTP (protobuf) to a collector — here a receiver in this test that decodes the
//! export requests with `opentelemetry-proto`. The upstream is the real TypeScript SDK
//! server, recording the headers and bodies it receives.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{Gateway, ListeningServer};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};

/// Received spans, and the content types the exports came with.
#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    service_names: Vec<String>,
    content_types: Vec<String>,
}

/// A minimal OTLP/HTTP traces receiver on a loopback port.
async fn collector() -> (String, Arc<Mutex<Received>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Received::default()));
    let store = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let store = store.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let store = store.clone();
                    async move {
                        let content_type = req.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let export = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                        let mut store = store.lock().unwrap();
                        store.content_types.extend(content_type);
                        for resource_spans in export.resource_spans {
                            let resource = resource_spans.resource.unwrap_or_default();
                            store.service_names.extend(
                                resource
                                    .attributes
                                    .iter()
                                    .filter(|a| a.key == "service.name")
                                    .filter_map(|a| string(a.value.as_ref()?.value.as_ref()?)),
                            );
                            for scope in resource_spans.scope_spans {
                                store.spans.extend(scope.spans);
                            }
                        }
                        let answer = ExportTraceServiceResponse::default().encode_to_vec();
                        let mut response = Response::new(Full::new(Bytes::from(answer)));
                        response.headers_mut().insert("content-type", "application/x-protobuf".parse().unwrap());
                        Ok::<_, Infallible>(response)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    (url, received)
}

fn string(value: &AnyValue) -> Option<String> {
    match value {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        _ => None,
    }
}

fn attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), string(kv.value.as_ref()?.value.as_ref()?)?)))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
const META_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const META_SPAN: &str = "b7ad6b7169203331";

/// What the upstream received, from its `--record` file: (message, HTTP headers).
fn upstream_saw(record: &Path, method: &str) -> (Value, Value) {
    let text = std::fs::read_to_string(record).unwrap();
    let entry: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["method"] == method)
        .unwrap_or_else(|| panic!("the upstream never saw {method}:\n{text}"));
    (entry.clone(), entry["http"]["headers"].clone())
}

// Multi-threaded: the collector must keep answering while the test thread waits for the gateway to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_follow_the_mcp_conventions_and_the_callers_trace() {
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    assert!(peers.join("node_modules/@modelcontextprotocol/sdk").exists(), "peers not installed: run scripts/test.sh");
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("upstream.jsonl");
    let mut node = Command::new("node");
    node.arg(peers.join("ts-v1-server.mjs")).arg("--json").arg("--record").arg(&record);
    let server = ListeningServer::start(node);

    let (endpoint, received) = collector().await;
    let config = common::write_config(
        dir.path(),
        &format!(
            "tracing:\n  enabled: true\n  endpoint: {endpoint}\n  service_name: forge-test\n  export_interval: 100ms\n\
             policy:\n  mode: audit\n"
        ),
    );
    let mut gw = Gateway::start(&["--upstream", &server.url("/mcp"), "--config", config.to_str().unwrap()]);
    let client = gw.client();

    // The caller's trace arrives in the HTTP header.
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let reply =
        client.post("/mcp", &init.to_string(), &[("traceparent", &traceparent), ("tracestate", "vendor=1")]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let session = reply.headers["mcp-session-id"].to_str().unwrap().to_string();
    let headers = [("mcp-session-id", session.as_str()), ("mcp-protocol-version", "2025-06-18")];
    client.post("/mcp", r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, &headers).await;

    // Per message, in `_meta`: it wins over a header naming another trace.
    let meta_parent = format!("00-{META_TRACE}-{META_SPAN}-01");
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "add", "arguments": {"a": 2, "b": 3}, "_meta": {"traceparent": meta_parent}}});
    let other = format!("00-{}-{CLIENT_SPAN}-01", "1".repeat(32));
    let with_header = [headers[0], headers[1], ("traceparent", other.as_str())];
    let answer = client.post("/mcp", &call.to_string(), &with_header).await.json();
    assert_eq!(answer["result"]["structuredContent"]["sum"], 5, "{answer}");

    // No context at all: a new trace.
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    assert_eq!(client.post("/mcp", &list.to_string(), &headers).await.status, StatusCode::OK);

    // A refused request is a span too, marked as an error.
    let bad = client.post("/mcp", "{not json", &headers).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // SIGTERM flushes what is still batched.
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(Duration::from_secs(15)), Some(0), "{}", gw.logs());
    let received = received.lock().unwrap();
    assert!(received.content_types.iter().all(|c| c == "application/x-protobuf"), "{:?}", received.content_types);
    assert!(received.service_names.iter().all(|s| s == "forge-test") && !received.service_names.is_empty());
    let by_name: HashMap<&str, &Span> = received.spans.iter().map(|s| (s.name.as_str(), s)).collect();
    let names: Vec<&str> = by_name.keys().copied().collect();

    let init_span = by_name.get("initialize").unwrap_or_else(|| panic!("no initialize span in {names:?}"));
    assert_eq!(init_span.kind, SpanKind::Server as i32);
    assert_eq!(hex(&init_span.trace_id), CLIENT_TRACE, "the caller's trace continues");
    assert_eq!(hex(&init_span.parent_span_id), CLIENT_SPAN);
    assert_eq!(init_span.trace_state, "vendor=1");
    let attrs = attributes(init_span);
    assert_eq!(attrs["mcp.method.name"], "initialize");
    assert_eq!(attrs["jsonrpc.request.id"], "1");
    assert_eq!(attrs["network.transport"], "tcp");
    assert_eq!(attrs["http.response.status_code"], "200");

    let call_span = by_name.get("tools/call add").unwrap_or_else(|| panic!("no tools/call span in {names:?}"));
    assert_eq!(hex(&call_span.trace_id), META_TRACE, "_meta.traceparent wins over the header");
    assert_eq!(hex(&call_span.parent_span_id), META_SPAN);
    let attrs = attributes(call_span);
    assert_eq!(attrs["mcp.method.name"], "tools/call");
    assert_eq!(attrs["gen_ai.tool.name"], "add");
    assert_eq!(attrs["gen_ai.operation.name"], "execute_tool");
    assert_eq!(attrs["mcp.session.id"], session);
    assert_eq!(attrs["mcp.protocol.version"], "2025-06-18");
    assert_eq!(attrs["jsonrpc.request.id"], "2");

    // The upstream sees the gateway's span as the parent both ways: in the HTTP header and
    // in the message's `_meta`, where it replaced the caller's; the rest of the message is
    // as the client sent it.
    let (message, upstream_headers) = upstream_saw(&record, "tools/call");
    let expected = format!("00-{META_TRACE}-{}-01", hex(&call_span.span_id));
    assert_eq!(upstream_headers["traceparent"], expected.as_str());
    assert_eq!(message["params"]["_meta"]["traceparent"], expected.as_str());
    assert_eq!(message["params"]["arguments"], json!({"a": 2, "b": 3}));
    // A request without params gets them, for its `_meta`; the caller's tracestate travels on.
    let (message, upstream_headers) = upstream_saw(&record, "initialize");
    let expected = format!("00-{CLIENT_TRACE}-{}-01", hex(&init_span.span_id));
    assert_eq!(message["params"]["_meta"]["traceparent"], expected.as_str());
    assert_eq!(message["params"]["_meta"]["tracestate"], "vendor=1");
    assert_eq!(upstream_headers["traceparent"], expected.as_str());
    let (message, _) = upstream_saw(&record, "tools/list");
    let list_span = by_name.get("tools/list").unwrap();
    assert_eq!(
        message["params"]["_meta"]["traceparent"],
        format!("00-{}-{}-01", hex(&list_span.trace_id), hex(&list_span.span_id))
    );

    let list_span = by_name.get("tools/list").unwrap_or_else(|| panic!("no tools/list span in {names:?}"));
    assert!(list_span.parent_span_id.is_empty(), "a request without context starts a trace");
    assert_ne!(hex(&list_span.trace_id), CLIENT_TRACE);

    let refused = received
        .spans
        .iter()
        .find(|s| attributes(s).get("http.response.status_code").map(String::as_str) == Some("400"));
    let refused = refused.unwrap_or_else(|| panic!("no span for the refused request in {names:?}"));
    assert_eq!(attributes(refused)["error.type"], "400");
    assert_eq!(refused.status.as_ref().map(|s| s.code), Some(2), "status ERROR");
}

// Multi-threaded: the collector must keep answering while the test thread waits for the gateway to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsampled_caller_is_not_exported_and_tracing_is_off_by_default() {
    let (endpoint, received) = collector().await;
    let upstream = common::stand_in(common::Behaviour::Respond {
        content_type: "application/json",
        body: r#"{"jsonrpc":"2.0","id":42,"result":{"content":[]}}"#.into(),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let enabled = common::write_config(
        dir.path(),
        &format!(
            "tracing:\n  enabled: true\n  endpoint: {endpoint}\n  export_interval: 100ms\npolicy:\n  mode: audit\n"
        ),
    );
    let mut gw = Gateway::start(&["--upstream", &upstream.url, "--config", enabled.to_str().unwrap()]);
    let unsampled = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-00");
    let reply = gw.client().post("/mcp", common::TOOLS_CALL, &[("traceparent", &unsampled)]).await;
    assert_eq!(reply.status, StatusCode::OK);
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(received.lock().unwrap().spans.is_empty(), "the caller decided not to sample");
    // The decision travels on: the upstream is told not to sample either.
    let head = upstream.heads.lock().unwrap()[0].clone();
    assert!(head.contains(&format!("traceparent: 00-{CLIENT_TRACE}-")) && head.contains("-00\r\n"), "{head}");

    // The body too carries the caller's decision, in `_meta`.
    let body = upstream.bodies.lock().unwrap()[0].clone();
    let forwarded: Value = serde_json::from_str(&body).unwrap();
    let meta = forwarded["params"]["_meta"]["traceparent"].as_str().unwrap();
    assert!(meta.starts_with(&format!("00-{CLIENT_TRACE}-")) && meta.ends_with("-00"), "{meta}");

    // Without a `tracing:` section nothing is exported, the caller's header passes as it
    // came, and the body is forwarded byte for byte.
    let mut gw = Gateway::start(&["--upstream", &upstream.url, "--config", "tests/fixtures/audit-policy.yaml"]);
    let sampled = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    gw.client().post("/mcp", common::TOOLS_CALL, &[("traceparent", &sampled)]).await;
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(received.lock().unwrap().spans.is_empty());
    let head = upstream.heads.lock().unwrap()[1].clone();
    assert!(head.contains(&format!("traceparent: {sampled}")), "{head}");
    assert_eq!(upstream.bodies.lock().unwrap()[1], common::TOOLS_CALL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_costs_spans_not_requests() {
    let upstream = common::stand_in(common::Behaviour::Respond {
        content_type: "application/json",
        body: r#"{"jsonrpc":"2.0","id":42,"result":{"content":[]}}"#.into(),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("{}/v1/traces", common::dead_port_url().trim_end_matches("/mcp"));
    let config = common::write_config(
        dir.path(),
        &format!("tracing:\n  enabled: true\n  endpoint: {dead}\n  export_interval: 100ms\n  timeout: 1s\npolicy:\n  enabled: false\n"),
    );
    let gw = Gateway::start(&["--upstream", &upstream.url, "--config", config.to_str().unwrap()]);
    // Requests spread over several export intervals, so several exports fail.
    let failed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            assert_eq!(gw.client().post("/mcp", common::TOOLS_CALL, &[]).await.status, StatusCode::OK);
            let failures = gw.metric("forge_trace_exports_total{result=\"error\"}").await;
            if failures >= 2.0 {
                return failures;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(failed.is_ok(), "exports to a dead collector are counted as errors");
    let logs = gw.log_containing("trace export failed");
    assert_eq!(logs.matches("trace export failed").count(), 1, "logged once while it lasts: {logs}");
}
