//! stdio upstreams: a real Python SDK server run as a child process, exposed as Streamable
//! HTTP; crashes are reported to clients and the child restarts with its session intact.
//! Needs the Python peers (`tests/peers/install.sh`, run by `scripts/test.sh`).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Gateway, Reply};
use http::StatusCode;
use serde_json::{json, Value};

fn crashing_server() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("tests/peers/.venv/bin/python");
    assert!(python.exists(), "Python peers not installed: run scripts/test.sh (or tests/peers/install.sh)");
    format!("stdio:{} {}", python.display(), root.join("tests/fixtures/crashing_stdio_server.py").display())
}

const JSON_ONLY: (&str, &str) = ("accept", "application/json");

fn call(id: u64, tool: &str, arguments: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
        .to_string()
}

fn text_of(reply: &Reply) -> String {
    let v = reply.json();
    v["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text result in {v}")).to_string()
}

async fn open_session(gw: &Gateway) -> String {
    let client = gw.client();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "forge-test", "version": "1"}}});
    let reply = client.post("/mcp", &init.to_string(), &[JSON_ONLY]).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.json()["result"]["serverInfo"]["name"], "crashing-stdio-server");
    let session = reply.headers["mcp-session-id"].to_str().unwrap().to_string();
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let reply = client.post("/mcp", initialized, &[JSON_ONLY, ("mcp-session-id", &session)]).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    session
}

#[tokio::test]
async fn a_crashed_child_is_reported_and_restarted_with_its_session() {
    let gw = Gateway::start(&["--upstream", &crashing_server()]);
    let session = open_session(&gw).await;
    let client = gw.client();
    let headers = [JSON_ONLY, ("mcp-session-id", session.as_str())];

    let first_pid = text_of(&client.post("/mcp", &call(2, "pid", json!({})), &headers).await);

    let reply = client.post("/mcp", &call(3, "crash", json!({})), &headers).await;
    let error = reply.json();
    assert_eq!(error["id"], 3, "the error answers the request that was in flight");
    assert_eq!(error["error"]["code"], -32010);
    assert!(error["error"]["message"].as_str().unwrap().contains("restarted"));

    // The same session keeps working against a new process (initialize was replayed).
    let mut second_pid = String::new();
    for _ in 0..50 {
        let reply = client.post("/mcp", &call(4, "pid", json!({})), &headers).await;
        if reply.status == StatusCode::OK && reply.json().get("result").is_some() {
            second_pid = text_of(&reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!second_pid.is_empty(), "the restarted child answers");
    assert_ne!(first_pid, second_pid);
    assert_eq!(gw.metric("forge_upstream_errors_total{kind=\"process_exit\"}").await, 1.0);
    let logs = gw.log_containing(&format!("crashing-stdio-server started pid={second_pid}"));
    assert!(logs.contains("crashing on request"), "the child's stderr reaches the gateway's log");
    assert!(logs.contains(&format!("crashing-stdio-server started pid={second_pid}")));
}

#[tokio::test]
async fn sessions_are_isolated_and_unknown_sessions_are_404() {
    let gw = Gateway::start(&["--upstream", &crashing_server()]);
    let a = open_session(&gw).await;
    let b = open_session(&gw).await;
    assert_ne!(a, b);
    let client = gw.client();
    let pid_a = text_of(&client.post("/mcp", &call(2, "pid", json!({})), &[JSON_ONLY, ("mcp-session-id", &a)]).await);
    let pid_b = text_of(&client.post("/mcp", &call(2, "pid", json!({})), &[JSON_ONLY, ("mcp-session-id", &b)]).await);
    assert_ne!(pid_a, pid_b, "each session has its own child process");

    let delete = http::Request::delete("/mcp")
        .header("host", "localhost")
        .header("mcp-session-id", &a)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(client.send(delete).await.status, StatusCode::OK);
    let reply = client.post("/mcp", &call(3, "pid", json!({})), &[JSON_ONLY, ("mcp-session-id", &a)]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"]["code"], -32015);

    let reply = client.post("/mcp", &call(3, "pid", json!({})), &[JSON_ONLY]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "a 2025 request without a session is refused");
}

#[tokio::test]
async fn concurrent_stateless_clients_with_the_same_ids_get_their_own_answers() {
    let gw = Gateway::start(&["--upstream", &crashing_server()]);
    let stateless = |text: &str| {
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "echo", "arguments": {"text": text},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
        .to_string()
    };
    let headers =
        [JSON_ONLY, ("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "echo")];
    let mut tasks = Vec::new();
    for i in 0..8 {
        let client = gw.client();
        let body = stateless(&format!("client-{i}"));
        tasks.push(tokio::spawn(async move { client.post("/mcp", &body, &headers).await }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let reply = task.await.unwrap();
        assert_eq!(reply.json()["id"], 7, "the client's own id comes back");
        assert_eq!(text_of(&reply), format!("client-{i}"));
    }
}

#[tokio::test]
async fn sse_responses_carry_the_answer_for_streaming_clients() {
    let gw = Gateway::start(&["--upstream", &crashing_server()]);
    let session = open_session(&gw).await;
    let reply =
        gw.client().post("/mcp", &call(9, "echo", json!({"text": "streamed"})), &[("mcp-session-id", &session)]).await;
    assert_eq!(reply.headers["content-type"], "text/event-stream");
    let text = String::from_utf8_lossy(&reply.body);
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).expect("an SSE event");
    let message: Value = serde_json::from_str(data).unwrap();
    assert_eq!(message["id"], 9);
    assert_eq!(message["result"]["content"][0]["text"], "streamed");
}

/// The child of a session started by a request on one serving worker answers the session's
/// requests whichever worker accepts them; the gateway still drains and exits cleanly.
#[tokio::test]
async fn a_sessions_child_serves_requests_arriving_on_every_worker() {
    let mut gw = Gateway::start_with_env(&["--upstream", &crashing_server()], &[("FORGE_WORKERS", "4")]);
    let session = open_session(&gw).await;
    let client = gw.client();
    let headers = [JSON_ONLY, ("mcp-session-id", session.as_str())];
    let mut pids = std::collections::HashSet::new();
    // Each request is a new connection, so the kernel spreads them over the workers.
    for id in 2..18 {
        pids.insert(text_of(&client.post("/mcp", &call(id, "pid", json!({})), &headers).await));
    }
    assert_eq!(pids.len(), 1, "one child for the session: {pids:?}");
    let counts = gw.accepted_by_worker().await;
    assert!(common::busy_workers(&counts) > 1, "requests arrived on several workers: {counts:?}");
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(0));
}
