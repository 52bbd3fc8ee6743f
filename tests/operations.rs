//! What operators rely on: the CLI and config checking, environment overrides, metrics by
//! method and outcome, one structured log line per request, and no credentials in logs.

mod common;

use std::process::Command;

use common::{ok_upstream, stand_in, Behaviour, Gateway, TOOLS_CALL};
use http::StatusCode;

fn forge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_forge")).args(args).output().unwrap()
}

#[test]
fn config_check_names_the_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = common::write_config(
        dir.path(),
        "upstream:\n  url: http://127.0.0.1:3000/mcp\nlimits:\n  max_body_bytes: 1MiB\n",
    );
    let out = forge(&["config", "check", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "listen: 127.0.0.1:1\nlimits:\n  max_body_bytes: lots\n").unwrap();
    let out = forge(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("lots"), "{err}");

    std::fs::write(&bad, "tls:\n  cert: /etc/cert.pem\n").unwrap();
    let err = String::from_utf8_lossy(&forge(&["config", "check", bad.to_str().unwrap()]).stderr).into_owned();
    assert!(err.contains("`tls.cert`") && err.contains("line 2"), "{err}");
}

#[test]
fn help_explains_the_commands() {
    let out = forge(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("run") && text.contains("config"), "{text}");
    let out = forge(&["run", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--upstream", "--listen", "--config", "--tls-cert", "--insecure-plaintext", "FORGE_UPSTREAM"] {
        assert!(text.contains(flag), "run --help mentions {flag}");
    }
}

#[test]
fn run_without_an_upstream_says_how_to_give_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_forge")).arg("run").env_remove("FORGE_UPSTREAM").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--upstream"));
}

#[tokio::test]
async fn environment_variables_configure_the_upstream() {
    let upstream = stand_in(ok_upstream()).await;
    let gw = Gateway::start_with_env(&[], &[("FORGE_UPSTREAM", &upstream.url)]);
    assert_eq!(gw.client().post("/mcp", TOOLS_CALL, &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_by_method_and_outcome() {
    let upstream = stand_in(ok_upstream()).await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let client = gw.client();
    client.post("/mcp", TOOLS_CALL, &[]).await;
    client.post("/mcp", TOOLS_CALL, &[]).await;
    client.post("/mcp", r#"{"jsonrpc":"2.0","id":1,"method":"x-unheard-of/method"}"#, &[]).await;
    client.post("/mcp", "{", &[]).await;
    assert_eq!(gw.metric("forge_mcp_requests_total{method=\"tools/call\",outcome=\"ok\"}").await, 2.0);
    assert_eq!(
        gw.metric("forge_mcp_requests_total{method=\"other\",outcome=\"ok\"}").await,
        1.0,
        "unknown methods share one label"
    );
    assert_eq!(gw.metric("forge_mcp_requests_total{method=\"unknown\",outcome=\"rejected\"}").await, 1.0);
    assert_eq!(gw.metric("forge_mcp_request_duration_seconds_count{method=\"tools/call\",outcome=\"ok\"}").await, 2.0);
    assert_eq!(gw.metric("forge_mcp_messages_total{direction=\"server_to_client\",kind=\"response\"}").await, 3.0);
    let (status, text) = gw.admin_get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for name in ["forge_sessions_active", "forge_streams_active", "forge_connections_active", "forge_build_info"] {
        assert!(text.contains(name), "{name} is exported");
    }
    assert_eq!(gw.admin_get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn tool_calls_are_counted_by_tool_only_for_tools_the_upstream_listed() {
    let tools = r#"{"jsonrpc":"2.0","id":42,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}}"#;
    let upstream = stand_in(Behaviour::Respond { content_type: "application/json", body: tools.into() }).await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let client = gw.client();
    client.post("/mcp", TOOLS_CALL, &[]).await;
    client.post("/mcp", r#"{"jsonrpc":"2.0","id":42,"method":"tools/list"}"#, &[]).await;
    client.post("/mcp", TOOLS_CALL, &[]).await;
    let made_up = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"x-7f3a9","arguments":{}}}"#;
    client.post("/mcp", made_up, &[]).await;
    assert_eq!(gw.metric("forge_mcp_tool_calls_total{outcome=\"ok\",tool=\"echo\"}").await, 1.0, "after the list");
    assert_eq!(
        gw.metric("forge_mcp_tool_calls_total{outcome=\"ok\",tool=\"unlisted\"}").await,
        2.0,
        "echo before the list and a name the upstream never listed share one label"
    );
    let (_, text) = gw.admin_get("/metrics").await;
    assert!(!text.contains("x-7f3a9"), "a caller's tool name never becomes a label");
}

#[tokio::test]
async fn json_logs_have_one_line_per_request_and_never_the_token() {
    let upstream = stand_in(ok_upstream()).await;
    let gw = Gateway::start(&["--upstream", &upstream.url, "--log-format", "json"]);
    let secret = "eyJhbGciOiJub25lIn0.c2VjcmV0LXRva2Vu.sig";
    let reply = gw.client().post("/mcp", TOOLS_CALL, &[("authorization", &format!("Bearer {secret}"))]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let logs = gw.log_containing("forge::access");
    let access: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "forge::access")
        .collect();
    assert_eq!(access.len(), 1, "{logs}");
    assert_eq!(access[0]["method"], "tools/call");
    assert_eq!(access[0]["name"], "echo");
    assert_eq!(access[0]["status"], 200);
    assert!(access[0]["duration_ms"].is_number());
    assert!(!logs.contains(secret), "the bearer token never reaches the log");
}

#[test]
fn policy_commands_test_and_check_a_bundle() {
    let out = forge(&["policy", "test", "policies"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("PASS"));
    assert!(forge(&["policy", "check", "policies"]).status.success());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("decision.rego"), "package forge\n\ndefault decision := {\"allow\": true}\n")
        .unwrap();
    std::fs::write(
        dir.path().join("bad_test.rego"),
        "package forge.bad_test\n\nimport rego.v1\n\ntest_fails if {\n\t1 == 2\n}\n",
    )
    .unwrap();
    let out = forge(&["policy", "test", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "a failing test fails the command");
    assert!(String::from_utf8_lossy(&out.stdout).contains("test_fails"));

    std::fs::write(dir.path().join("broken.rego"), "package forge.broken\n\nrule := {\n").unwrap();
    let out = forge(&["policy", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("broken.rego"), "the error names the file: {text}");
}
