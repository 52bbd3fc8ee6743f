//! Detector plugins through the running gateway, with a real MCP SDK server upstream
//! (tests/peers/plugin-peer.mjs, TypeScript SDK v1) and the test detector of
//! tests/plugins/marker, under the default policy bundle unless a test says otherwise:
//! findings refuse calls before the upstream sees them, redact results and requests, hide
//! poisoned and rug-pulled tools, and a failing plugin takes its fail mode.

mod common;
mod plugin_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Gateway, ListeningServer};
use serde_json::{json, Value};

/// The test detector reports these words; `<IMPORTANT>` stands in for a poisoning detector.
const MARKERS: &str = "{markers: {SECRET-MARKER: secret, PII-MARKER: pii, <IMPORTANT>: poisoning}}";

struct Setup {
    _dir: tempfile::TempDir,
    record: PathBuf,
    _upstream: ListeningServer,
    gw: Gateway,
}

fn peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// The plugin peer, the gateway in front of it with the `plugins` directory holding the
/// given test plugins (name, crate), and `extra` config.
fn setup(plugins: &[(&str, &str)], extra: &str) -> Setup {
    assert!(
        peers().join("node_modules").is_dir(),
        "SDK peers not installed: run scripts/test.sh (or tests/peers/install.sh)"
    );
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("upstream.jsonl");
    let mut node = Command::new(std::env::var("NODE").unwrap_or_else(|_| "node".into()));
    node.arg(peers().join("plugin-peer.mjs")).arg("--record").arg(&record);
    let upstream = ListeningServer::start(node);
    let plugin_dir = dir.path().join("plugins");
    for (name, krate) in plugins {
        plugin_support::install(&plugin_dir, name, krate, "");
    }
    let config = common::write_config(
        dir.path(),
        &format!(
            // A generous time budget: debug builds run plugins many times slower. One
            // compiled-component cache for every gateway of the tests keeps start-up short.
            "plugins:\n  directory: {}\n  cache_dir: {}\n  limits: {{time: 500ms}}\n  settings:\n    marker:\n      config: {MARKERS}\n{extra}",
            plugin_dir.display(),
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugins-cache").display()
        ),
    );
    let gw = Gateway::start(&["--upstream", &upstream.url("/mcp"), "--config", config.to_str().unwrap()]);
    Setup { _dir: dir, record, _upstream: upstream, gw }
}

impl Setup {
    async fn rpc(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string();
        self.gw.client().post("/mcp", &body, &[]).await.json()
    }

    async fn call(&self, tool: &str, arguments: Value) -> Value {
        self.rpc("tools/call", json!({"name": tool, "arguments": arguments})).await
    }

    /// The `tools/call`s the upstream received, by tool name and arguments.
    fn upstream_calls(&self) -> Vec<(String, Value)> {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|m| m["method"] == "tools/call")
            .map(|m| (m["params"]["name"].as_str().unwrap().to_string(), m["params"]["arguments"].clone()))
            .collect()
    }

    async fn tool_names(&self) -> Vec<String> {
        let list = self.rpc("tools/list", json!({})).await;
        list["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
    }
}

#[tokio::test]
async fn a_secret_in_call_arguments_is_refused_before_the_upstream_sees_it() {
    let s = setup(&[("marker", "marker")], "");
    let refused = s.call("echo", json!({"text": "token SECRET-MARKER"})).await;
    assert_eq!(refused["error"]["code"], -32017, "{refused}");
    assert_eq!(refused["error"]["data"]["code"], "secret_detected");
    assert!(s.upstream_calls().is_empty(), "the upstream never saw the call");

    // The near miss goes through.
    let passed = s.call("echo", json!({"text": "token SECRET MARKER"})).await;
    assert_eq!(passed["result"]["content"][0]["text"], "token SECRET MARKER");
    assert_eq!(s.upstream_calls().len(), 1);
    assert!(s.gw.metric("forge_plugin_calls_total{outcome=\"ok\",plugin=\"marker\"}").await >= 2.0);
    assert_eq!(s.gw.metric("forge_plugin_findings_total{category=\"secret\",plugin=\"marker\"}").await, 1.0);
    let (_, ready) = s.gw.admin_get("/readyz").await;
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["plugins"]["active"], json!(["marker@0.1.0"]), "{ready}");
}

#[tokio::test]
async fn personal_data_in_a_result_is_redacted_for_an_ordinary_caller() {
    let s = setup(&[("marker", "marker")], "");
    let answer = s.call("echo", json!({"text": "mail PII-MARKER today"})).await;
    assert_eq!(answer["result"]["content"][0]["text"], "mail [REDACTED:marker.pii] today", "{answer}");
    // The default policy leaves personal data in requests alone.
    assert_eq!(s.upstream_calls()[0].1["text"], "mail PII-MARKER today");
}

#[tokio::test]
async fn poisoned_and_rug_pulled_tools_are_hidden_and_a_changed_tool_cannot_be_called() {
    let s = setup(&[("marker", "marker")], "");
    assert_eq!(s.tool_names().await, ["echo", "fetch", "rug-pull"], "weather's description is poisoned");
    assert_eq!(
        s.call("fetch", json!({"url": "https://github.com/a"})).await["result"]["content"][0]["text"],
        "fetched https://github.com/a"
    );

    assert_eq!(s.call("rug-pull", json!({})).await["result"]["content"][0]["text"], "pulled");
    assert_eq!(s.tool_names().await, ["echo", "rug-pull"], "fetch's definition changed since it was pinned");
    let refused = s.call("fetch", json!({"url": "https://github.com/b"})).await;
    assert_eq!(refused["error"]["data"]["code"], "tool_definition_changed", "{refused}");
    let called: Vec<String> = s.upstream_calls().into_iter().map(|(name, _)| name).collect();
    assert_eq!(called, ["fetch", "rug-pull"], "the call to the changed tool never reached the upstream");
    // Unchanged tools still work.
    assert_eq!(s.call("echo", json!({"text": "hi"})).await["result"]["content"][0]["text"], "hi");
}

#[tokio::test]
async fn a_failing_plugin_refuses_the_message_when_it_fails_closed() {
    let s = setup(&[("crash", "trap")], "");
    let refused = s.call("echo", json!({"text": "hi"})).await;
    assert_eq!(refused["error"]["data"]["code"], "plugin_error", "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("detector `crash` failed"));
    assert!(s.upstream_calls().is_empty());
    assert_eq!(s.gw.metric("forge_plugin_calls_total{outcome=\"trap\",plugin=\"crash\"}").await, 1.0);
    // Messages no detector looks at are not affected.
    assert!(s.rpc("ping", json!({})).await.get("error").is_none());
}

#[tokio::test]
async fn a_failing_plugin_lets_the_message_pass_when_it_fails_open() {
    let s = setup(&[("crash", "spin")], "    crash:\n      fail_mode: fail_open\n");
    let answer = s.call("echo", json!({"text": "hi"})).await;
    assert_eq!(answer["result"]["content"][0]["text"], "hi", "{answer}");
    assert_eq!(s.upstream_calls().len(), 1);
    assert!(
        s.gw.metric("forge_plugin_calls_total{outcome=\"timeout\",plugin=\"crash\"}").await >= 2.0,
        "the request and its result"
    );
    assert!(s.gw.log_containing("fail_open").contains("crash"));
}

/// A policy that redacts personal data from requests: the upstream gets the redacted call.
#[tokio::test]
async fn a_redacted_request_is_what_the_upstream_receives() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("decision.rego"),
        r#"package forge

import rego.v1

default decision := {"allow": true}

decision := {"allow": true, "obligations": {"redact": [r | some f in input.findings; f.category == "pii"; r := {"pointer": f.pointer, "span": f.span, "replacement": "[PII]"}]}} if {
	input.message.direction == "client_to_server"
}
"#,
    )
    .unwrap();
    let s = setup(&[("marker", "marker")], &format!("policy:\n  bundle: {}\n", dir.path().display()));
    let answer = s.call("echo", json!({"text": "mail PII-MARKER and PII-MARKER"})).await;
    assert_eq!(s.upstream_calls()[0].1["text"], "mail [PII] and [PII]");
    assert_eq!(answer["result"]["content"][0]["text"], "mail [PII] and [PII]");
}
