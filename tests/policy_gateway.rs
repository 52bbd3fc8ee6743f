//! Policy enforced by the running gateway: refused calls never reach the upstream, results
//! can be withheld, lists are filtered per caller, audit mode only records, and an edited
//! bundle takes effect without a restart. A small bundle written here drives the mechanism;
//! the default bundle's own rules are tested by its `*_test.rego` files.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{stand_in, Behaviour, Gateway, StandIn};
use http::StatusCode;
use serde_json::json;

const BUNDLE: &str = r#"package forge

import rego.v1

default decision := {"allow": true}

decision := {"allow": false, "code": "tool_forbidden", "reason": "the rm tool is never allowed"} if {
	input.message.direction == "client_to_server"
	input.message.method == "tools/call"
	input.message.tool.name == "rm"
}

decision := {"allow": false, "code": "withheld", "reason": "results of leaky are withheld"} if {
	input.message.direction == "server_to_client"
	input.message.tool.name == "leaky"
}

decision := {"allow": true, "obligations": {"hide_tools": ["secret_tool"]}} if {
	input.message.direction == "server_to_client"
	input.message.method == "tools/list"
}
"#;

const TOOLS: &str = r#"{"jsonrpc":"2.0","id":42,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"secret_tool","inputSchema":{"type":"object"}}],"ttlMs":1000,"cacheScope":"public"}}"#;

struct Setup {
    dir: tempfile::TempDir,
    upstream: StandIn,
    gw: Gateway,
}

async fn setup(upstream_body: &str, mode: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(bundle.join("decision.rego"), BUNDLE).unwrap();
    let config =
        common::write_config(dir.path(), &format!("policy:\n  bundle: {}\n  mode: {mode}\n", bundle.display()));
    let upstream =
        stand_in(Behaviour::Respond { content_type: "application/json", body: upstream_body.to_string() }).await;
    let gw = Gateway::start(&["--upstream", &upstream.url, "--config", config.to_str().unwrap()]);
    Setup { dir, upstream, gw }
}

fn call(tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": {"name": tool, "arguments": {}}}).to_string()
}

const OK: &str = r#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"fine"}]}}"#;

#[tokio::test]
async fn a_refused_call_never_reaches_the_upstream() {
    let s = setup(OK, "enforce").await;
    let reply = s.gw.client().post("/mcp", &call("rm"), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let v = reply.json();
    assert_eq!(v["id"], 42);
    assert_eq!(v["error"]["code"], -32017);
    assert!(v["error"]["message"].as_str().unwrap().contains("the rm tool is never allowed"));
    assert_eq!(v["error"]["data"]["code"], "tool_forbidden");
    assert_eq!(s.upstream.requests.load(Ordering::SeqCst), 0);

    // The near miss: another tool passes.
    let reply = s.gw.client().post("/mcp", &call("rmdir_preview"), &[]).await;
    assert_eq!(reply.json()["result"]["content"][0]["text"], "fine");
    assert_eq!(s.upstream.requests.load(Ordering::SeqCst), 1);
}

/// Spellings two JSON readers could disagree on: escapes decode before policy sees the name
/// (so a forbidden tool is refused however it is spelt), and what cannot be read one way only
/// (case games, duplicate keys) is refused before policy and upstream alike.
#[tokio::test]
async fn a_forbidden_call_is_refused_however_it_is_spelt() {
    let s = setup(OK, "enforce").await;
    let client = s.gw.client();
    let refused_by_policy = [
        r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"r\u006d","arguments":{}}}"#,
        r#"{"jsonrpc":"2.0","id":42,"method":"tools\u002fcall","params":{"name":"rm","arguments":{}}}"#,
        r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"\u006eame":"rm","arguments":{}}}"#,
    ];
    for body in refused_by_policy {
        let v = client.post("/mcp", body, &[]).await.json();
        assert_eq!(v["error"]["code"], -32017, "{body}: {v}");
        assert_eq!(v["error"]["data"]["code"], "tool_forbidden", "{body}");
    }
    let unreadable = [
        r#"{"jsonrpc":"2.0","id":42,"method":"Tools/Call","params":{"name":"rm","arguments":{}}}"#,
        r#"{"jsonrpc":"2.0","id":42,"method":"tools/call ","params":{"name":"rm","arguments":{}}}"#,
        r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","name":"rm","arguments":{}}}"#,
        r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","\u006eame":"rm"}}"#,
    ];
    for body in unreadable {
        let reply = client.post("/mcp", body, &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.json()["error"]["code"], -32600, "{body}");
    }
    assert_eq!(s.upstream.requests.load(Ordering::SeqCst), 0, "none of them reached the upstream");

    // The near miss: an allowed tool spelt with escapes passes, byte for byte as sent.
    let escaped = r#"{"jsonrpc":"2.0","id":42,"method":"tools\/call","params":{"name":"ech\u006f","arguments":{}}}"#;
    assert_eq!(client.post("/mcp", escaped, &[]).await.json()["result"]["content"][0]["text"], "fine");
    assert_eq!(s.upstream.bodies.lock().unwrap().as_slice(), [escaped]);
}

#[tokio::test]
async fn a_call_hidden_in_a_batch_refuses_the_batch() {
    let s = setup(OK, "enforce").await;
    let batch = format!(r#"[{{"jsonrpc":"2.0","id":1,"method":"ping"}},{}]"#, call("rm"));
    let reply = s.gw.client().post("/mcp", &batch, &[]).await;
    assert_eq!(reply.json()["error"]["code"], -32017);
    assert_eq!(s.upstream.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn requests_sharing_an_id_in_a_batch_are_refused() {
    // Otherwise the answer to `leaky` could be judged as the answer to `echo`.
    let s = setup(OK, "enforce").await;
    let batch = format!("[{},{}]", call("leaky"), call("echo"));
    let reply = s.gw.client().post("/mcp", &batch, &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["code"], -32600);
    assert_eq!(s.upstream.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_result_can_be_withheld() {
    let s = setup(OK, "enforce").await;
    let reply = s.gw.client().post("/mcp", &call("leaky"), &[]).await;
    let v = reply.json();
    assert_eq!(v["id"], 42, "the error answers the same request");
    assert_eq!(v["error"]["code"], -32017);
    assert!(!String::from_utf8_lossy(&reply.body).contains("fine"), "the result does not leak");
    assert_eq!(s.upstream.requests.load(Ordering::SeqCst), 1, "the call itself was allowed");
}

#[tokio::test]
async fn tools_lists_are_filtered_and_never_cached_publicly() {
    let s = setup(TOOLS, "enforce").await;
    let list = r#"{"jsonrpc":"2.0","id":42,"method":"tools/list"}"#;
    let v = s.gw.client().post("/mcp", list, &[]).await.json();
    let names: Vec<&str> =
        v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["echo"]);
    assert_eq!(v["result"]["cacheScope"], "private");
    assert_eq!(v["result"]["ttlMs"], 1000);
}

#[tokio::test]
async fn audit_mode_records_but_does_not_refuse() {
    let s = setup(OK, "audit").await;
    let reply = s.gw.client().post("/mcp", &call("rm"), &[]).await;
    assert_eq!(reply.json()["result"]["content"][0]["text"], "fine");
    assert_eq!(s.upstream.requests.load(Ordering::SeqCst), 1);
    assert!(s.gw.log_containing("audit mode").contains("would refuse"));
}

#[tokio::test]
async fn an_edited_bundle_applies_to_the_next_message_and_a_broken_one_is_refused() {
    let s = setup(OK, "enforce").await;
    let client = s.gw.client();
    assert_eq!(client.post("/mcp", &call("cat"), &[]).await.json()["result"]["content"][0]["text"], "fine");

    let bundle = s.dir.path().join("bundle/decision.rego");
    std::fs::write(&bundle, BUNDLE.replace("\"rm\"", "\"cat\"")).unwrap();
    let mut refused = false;
    for _ in 0..100 {
        if client.post("/mcp", &call("cat"), &[]).await.json()["error"]["code"] == -32017 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "the new policy refuses cat");

    std::fs::write(&bundle, "package forge\n\ndecision := {").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        client.post("/mcp", &call("cat"), &[]).await.json()["error"]["code"],
        -32017,
        "the last good bundle stays"
    );
    let (status, body) = s.gw.admin_get("/readyz").await;
    assert!(body.contains("decision.rego"), "readyz names the failure: {status} {body}");
}

/// Reads a legacy SSE stream until a message with `id` arrives; returns its JSON.
async fn next_answer<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, seen: &mut String, id: u64) -> serde_json::Value {
    use tokio::io::AsyncReadExt;
    loop {
        for line in seen.lines() {
            if let Some(data) = line.strip_prefix("data: ") {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(data) {
                    if v["id"] == id {
                        return v;
                    }
                }
            }
        }
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "stream ended before the answer to {id}: {seen}");
        seen.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
}

/// Answers on the legacy 2024-11-05 transport arrive on the SSE stream, not the POST; policy
/// on them still knows which call they answer (a real TS SDK v1 server behind the gateway).
#[tokio::test]
async fn legacy_sse_answers_are_judged_as_answers_to_their_calls() {
    use tokio::io::AsyncWriteExt;
    let peers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    assert!(
        peers.join("node_modules/@modelcontextprotocol/sdk").exists(),
        "SDK peers not installed: run scripts/test.sh"
    );
    let mut command = std::process::Command::new("node");
    command.arg(peers.join("ts-v1-server.mjs"));
    let server = common::ListeningServer::start(command);

    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(bundle.join("decision.rego"), BUNDLE.replace("== \"leaky\"", "== \"echo\"")).unwrap();
    let config = common::write_config(dir.path(), &format!("policy:\n  bundle: {}\n", bundle.display()));
    let gw = Gateway::start(&["--upstream", &server.url("/mcp"), "--config", config.to_str().unwrap()]);
    let client = gw.client();

    let mut stream = client.connect().await.unwrap();
    stream.write_all(b"GET /sse HTTP/1.1\r\nhost: localhost\r\naccept: text/event-stream\r\n\r\n").await.unwrap();
    let mut seen = String::new();
    let endpoint = loop {
        use tokio::io::AsyncReadExt;
        if let Some(at) = seen.find("event: endpoint") {
            if let Some(line) = seen[at..].lines().find_map(|l| l.strip_prefix("data: ")) {
                break line.trim().to_string();
            }
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        seen.push_str(&String::from_utf8_lossy(&chunk[..n]));
    };
    assert!(endpoint.starts_with("/messages"), "the endpoint points at the gateway: {endpoint}");

    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    assert_eq!(client.post(&endpoint, &init.to_string(), &[]).await.status, StatusCode::ACCEPTED);
    next_answer(&mut stream, &mut seen, 1).await;
    client.post(&endpoint, r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, &[]).await;

    let echo = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "classified"}}});
    client.post(&endpoint, &echo.to_string(), &[]).await;
    let answer = next_answer(&mut stream, &mut seen, 2).await;
    assert_eq!(answer["error"]["code"], -32017, "{answer}");
    assert!(!seen.contains("echo: classified"), "the withheld result never reaches the client");

    let add = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 2, "b": 3}}});
    client.post(&endpoint, &add.to_string(), &[]).await;
    let answer = next_answer(&mut stream, &mut seen, 3).await;
    assert_eq!(answer["result"]["structuredContent"]["sum"], 5, "the near miss passes: {answer}");
}
