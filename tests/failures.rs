//! Upstream trouble and request limits: every failure has a defined answer (a JSON-RPC error
//! with the request's id, or an HTTP status), a metric, and never a hang or a forward of
//! something the gateway refused.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{stand_in, write_config, Behaviour, Gateway, TOOLS_CALL};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A stand-in that answers every request with a small, valid JSON-RPC result.
fn ok_upstream() -> Behaviour {
    Behaviour::Respond { content_type: "application/json", body: r#"{"jsonrpc":"2.0","id":1,"result":{}}"#.into() }
}

fn error_of(reply: &common::Reply) -> (serde_json::Value, i64) {
    let v = reply.json();
    let code = v["error"]["code"].as_i64().unwrap_or_else(|| panic!("no error code in {v}"));
    (v["id"].clone(), code)
}

#[tokio::test]
async fn refused_upstream_answers_with_the_request_id() {
    let gw = Gateway::start(&["--upstream", &common::dead_port_url()]);
    let reply = gw.client().post("/mcp", TOOLS_CALL, &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(error_of(&reply), (serde_json::json!(42), -32010));
    assert_eq!(gw.metric("forge_upstream_errors_total{kind=\"connect\"}").await, 1.0);
    let (status, body) = gw.admin_get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("unreachable"), "{body}");
}

#[tokio::test]
async fn hanging_upstream_times_out() {
    let upstream = stand_in(Behaviour::Hang).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "upstream:\n  timeout: 300ms\n");
    let gw = Gateway::start(&["--upstream", &upstream.url, "--config", config.to_str().unwrap()]);
    let reply = gw.client().post("/mcp", TOOLS_CALL, &[]).await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(error_of(&reply), (serde_json::json!(42), -32011));
}

#[tokio::test]
async fn garbage_from_upstream_is_a_bad_gateway() {
    let upstream = stand_in(Behaviour::Garbage).await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let reply = gw.client().post("/mcp", TOOLS_CALL, &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(error_of(&reply), (serde_json::json!(42), -32012));
}

#[tokio::test]
async fn reset_by_upstream_is_a_bad_gateway() {
    let upstream = stand_in(Behaviour::Reset).await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let reply = gw.client().post("/mcp", TOOLS_CALL, &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(error_of(&reply), (serde_json::json!(42), -32010));
}

#[tokio::test]
async fn unreadable_json_from_upstream_is_not_relayed() {
    let upstream =
        stand_in(Behaviour::Respond { content_type: "application/json", body: "{\"jsonrpc\":\"2.0\",".into() }).await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let reply = gw.client().post("/mcp", TOOLS_CALL, &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(error_of(&reply), (serde_json::json!(42), -32012));
}

#[tokio::test]
async fn a_success_that_is_not_json_rpc_is_not_relayed() {
    let upstream = stand_in(Behaviour::Respond { content_type: "text/html", body: "<h1>hello</h1>".into() }).await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let reply = gw.client().post("/mcp", TOOLS_CALL, &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(error_of(&reply), (serde_json::json!(42), -32012));
    assert!(!String::from_utf8_lossy(&reply.body).contains("hello"));
}

#[tokio::test]
async fn well_formed_upstream_json_passes_unchanged() {
    let body = r#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"hi"}]}}"#;
    let upstream = stand_in(Behaviour::Respond { content_type: "application/json", body: body.into() }).await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let reply = gw.client().post("/mcp", TOOLS_CALL, &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(&reply.body[..], body.as_bytes());
    assert_eq!(upstream.bodies.lock().unwrap()[0], TOOLS_CALL, "the upstream receives the bytes the client sent");
}

#[tokio::test]
async fn client_leaving_mid_stream_closes_the_upstream_stream() {
    let upstream = stand_in(Behaviour::EndlessSse).await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let client = gw.client();
    let mut tls = client.connect().await.unwrap();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\naccept: text/event-stream\r\ncontent-length: {}\r\n\r\n{TOOLS_CALL}",
        TOOLS_CALL.len()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("tick") {
        let mut chunk = [0u8; 1024];
        let n = tls.read(&mut chunk).await.unwrap();
        assert!(n > 0, "stream ended early");
        seen.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(gw.metric("forge_streams_active").await, 1.0);
    drop(tls);
    tokio::time::timeout(Duration::from_secs(10), upstream.closed.notified())
        .await
        .expect("the upstream sees its stream closed when the client leaves");
    let mut active = 1.0;
    for _ in 0..50 {
        active = gw.metric("forge_streams_active").await;
        if active == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(active, 0.0, "no stream is left behind");
}

#[tokio::test]
async fn oversized_body_is_refused_before_the_upstream() {
    let upstream = stand_in(ok_upstream()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "limits:\n  max_body_bytes: 1KiB\n");
    let gw = Gateway::start(&["--upstream", &upstream.url, "--config", config.to_str().unwrap()]);
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"x","arguments":{{"t":"{}"}}}}}}"#,
        "a".repeat(2000)
    );
    let reply = gw.client().post("/mcp", &big, &[]).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_of(&reply).1, -32013);
    // Just under the limit passes.
    let small = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"x","arguments":{{"t":"{}"}}}}}}"#,
        "a".repeat(900)
    );
    let reply = gw.client().post("/mcp", &small, &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 1);
    assert_eq!(gw.metric("forge_limit_rejections_total{limit=\"body_size\"}").await, 1.0);
}

#[tokio::test]
async fn slow_body_times_out() {
    let upstream = stand_in(ok_upstream()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "limits:\n  body_read_timeout: 300ms\n");
    let gw = Gateway::start(&["--upstream", &upstream.url, "--config", config.to_str().unwrap()]);
    let mut tls = gw.client().connect().await.unwrap();
    tls.write_all(b"POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"jsonrpc\"")
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut response)).await.unwrap().ok();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("-32014"), "{text}");
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let upstream = stand_in(ok_upstream()).await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let huge = "x".repeat(40 * 1024);
    let reply = gw.client().post("/mcp", TOOLS_CALL, &[("x-padding", &huge)]).await;
    assert_eq!(reply.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn slowloris_headers_are_cut_off() {
    let upstream = stand_in(ok_upstream()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "limits:\n  header_read_timeout: 500ms\n");
    let gw = Gateway::start(&["--upstream", &upstream.url, "--config", config.to_str().unwrap()]);
    let mut tls = gw.client().connect().await.unwrap();
    tls.write_all(b"POST /mcp HTTP/1.1\r\nhost: local").await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the gateway closes a connection whose headers never finish");
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn json_nesting_beyond_the_limit_is_refused() {
    let upstream = stand_in(ok_upstream()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "limits:\n  max_json_depth: 16\n");
    let gw = Gateway::start(&["--upstream", &upstream.url, "--config", config.to_str().unwrap()]);
    let nested = |n: usize| {
        format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"x","arguments":{{"a":{}1{}}}}}}}"#,
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    let reply = gw.client().post("/mcp", &nested(40), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&reply).1, -32600);
    assert_eq!(gw.metric("forge_limit_rejections_total{limit=\"json_depth\"}").await, 1.0);
    let reply = gw.client().post("/mcp", &nested(5), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn connections_beyond_the_limit_get_503() {
    let upstream = stand_in(ok_upstream()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "limits:\n  max_connections: 1\n");
    let gw = Gateway::start(&["--upstream", &upstream.url, "--config", config.to_str().unwrap()]);
    let client = gw.client();
    let _held = client.connect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reply = client.post("/mcp", TOOLS_CALL, &[]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.headers["retry-after"], "1");
    drop(_held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.post("/mcp", TOOLS_CALL, &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn parser_differentials_never_reach_the_upstream() {
    let upstream = stand_in(ok_upstream()).await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let client = gw.client();
    let cases = [
        (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","name":"rm_rf"}}"#, -32600),
        (r#"{"jsonrpc":"2.0","id":1,"method":"TOOLS/CALL","params":{"name":"x"}}"#, -32600),
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call ","params":{}}]"#,
            -32600,
        ),
        (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\udc00"}}"#, -32700),
        ("not json", -32700),
    ];
    for (body, code) in cases {
        let reply = client.post("/mcp", body, &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_of(&reply).1, code, "{body}");
    }
    // The near-miss: the same call spelled plainly, and with harmless escapes, is forwarded.
    let escaped = r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"ech\u006f"}}"#;
    assert_eq!(client.post("/mcp", escaped, &[]).await.status, StatusCode::OK);
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 1);
    assert_eq!(upstream.bodies.lock().unwrap()[0], escaped);
}

#[tokio::test]
async fn mirrored_header_mismatch_is_refused_before_the_upstream() {
    let upstream = stand_in(ok_upstream()).await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let client = gw.client();
    let call = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"get_weather","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    let v = ("mcp-protocol-version", "2026-07-28");
    let reply = client.post("/mcp", call, &[v, ("mcp-method", "tools/call"), ("mcp-name", "delete_everything")]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&reply), (serde_json::json!(9), -32020));
    let reply = client.post("/mcp", call, &[v, ("mcp-name", "get_weather")]).await;
    assert_eq!(error_of(&reply).1, -32020, "a stateless request without Mcp-Method");
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 0);
    let reply = client.post("/mcp", call, &[v, ("mcp-method", "tools/call"), ("mcp-name", "get_weather")]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 1);
    assert_eq!(gw.metric("forge_protocol_rejections_total{reason=\"header_mismatch\"}").await, 2.0);
}

#[tokio::test]
async fn other_paths_are_answered_by_rule() {
    let upstream =
        stand_in(Behaviour::Respond { content_type: "application/json", body: "{\"resource\":\"x\"}".into() }).await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let client = gw.client();
    let get = |path: &str| {
        http::Request::get(path)
            .header("host", "localhost")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let reply = client.send(get("/.well-known/oauth-protected-resource")).await;
    assert_eq!(reply.status, StatusCode::OK, "well-known paths are forwarded");
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 1);
    assert_eq!(client.send(get("/admin/secret")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 1, "unknown paths are not forwarded");
    let put = http::Request::put("/mcp")
        .header("host", "localhost")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(client.send(put).await.status, StatusCode::METHOD_NOT_ALLOWED);
}
