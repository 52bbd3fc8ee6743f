//! Real MCP SDK clients against real MCP SDK servers, once directly and once through the
//! gateway over TLS: every feature the SDKs exercise must behave exactly as it does without
//! the gateway (the clients print a normalized transcript; the two must be equal).
//!
//! Peers (tests/peers/): TypeScript SDK v1 (2025-era: stateful Streamable HTTP with JSON and
//! SSE responses and resumption, legacy HTTP+SSE), TypeScript SDK v2 (2026-07-28 stateless,
//! multi round-trip requests, subscriptions/listen), Python `mcp` 2.x (both eras), and the
//! reference server-everything over stdio. Needs `tests/peers/install.sh`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Gateway, ListeningServer};
use serde_json::Value;

/// Policy in audit mode: evaluated on every message, changing nothing.
const AUDIT_POLICY: &str = "tests/fixtures/audit-policy.yaml";

fn peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

fn python() -> PathBuf {
    let python = peers().join(".venv/bin/python");
    assert!(python.exists(), "SDK peers not installed: run scripts/test.sh (or tests/peers/install.sh)");
    python
}

fn node() -> Command {
    assert!(
        peers().join("node_modules/@modelcontextprotocol/sdk").exists(),
        "SDK peers not installed: run scripts/test.sh"
    );
    Command::new("node")
}

/// Runs a client scenario and returns its transcript.
fn transcript(mut client: Command, url: &str, ca: Option<&Path>) -> Value {
    client.args(["--url", url]);
    if let Some(ca) = ca {
        client.arg("--ca").arg(ca);
    }
    let output = client.output().unwrap();
    assert!(
        output.status.success(),
        "client failed against {url}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("transcript is not JSON ({e})"))
}

/// The same scenario directly and through a gateway fronting `upstream`, compared.
fn assert_transparent(client: impl Fn() -> Command, direct_url: &str, upstream: &str, gateway_path: &str) {
    let direct = transcript(client(), direct_url, None);
    let gw = Gateway::start(&["--upstream", upstream, "--config", AUDIT_POLICY]);
    let url = format!("https://localhost:{}{gateway_path}", gw.addr.port());
    let through = transcript(client(), &url, Some(&gw.ca_path()));
    if direct != through {
        let d = serde_json::to_string_pretty(&direct).unwrap();
        let t = serde_json::to_string_pretty(&through).unwrap();
        let first = d.lines().zip(t.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "the transcript through the gateway differs from the direct one near line {first}:\n--- direct\n{}\n--- gateway\n{}\n--- gateway log\n{}",
            d.lines().skip(first.saturating_sub(5)).take(20).collect::<Vec<_>>().join("\n"),
            t.lines().skip(first.saturating_sub(5)).take(20).collect::<Vec<_>>().join("\n"),
            gw.logs()
        );
    }
    let steps =
        direct.as_array().map_or_else(|| direct.get("steps").and_then(Value::as_array).map_or(0, Vec::len), Vec::len);
    assert!(steps > 10, "the scenario ran only {steps} steps");
}

fn ts_v1_client(extra: &'static [&'static str]) -> impl Fn() -> Command {
    move || {
        let mut c = node();
        c.arg(peers().join("ts-v1-client.mjs")).args(extra);
        c
    }
}

#[test]
fn ts_sdk_v1_streamable_http_with_sse_responses_and_resumption() {
    let mut server = node();
    server.arg(peers().join("ts-v1-server.mjs"));
    let server = ListeningServer::start(server);
    assert_transparent(ts_v1_client(&["--resume"]), &server.url("/mcp"), &server.url("/mcp"), "/mcp");
}

#[test]
fn ts_sdk_v1_streamable_http_with_json_responses() {
    let mut server = node();
    server.arg(peers().join("ts-v1-server.mjs")).arg("--json");
    let server = ListeningServer::start(server);
    assert_transparent(ts_v1_client(&[]), &server.url("/mcp"), &server.url("/mcp"), "/mcp");
}

#[test]
fn ts_sdk_v1_legacy_http_sse_transport() {
    let mut server = node();
    server.arg(peers().join("ts-v1-server.mjs"));
    let server = ListeningServer::start(server);
    assert_transparent(ts_v1_client(&["--transport", "sse"]), &server.url("/sse"), &server.url("/mcp"), "/sse");
}

#[test]
fn ts_sdk_v2_stateless_2026_07_28() {
    let mut server = node();
    server.arg(peers().join("ts-v2-server.mjs"));
    let server = ListeningServer::start(server);
    let client = || {
        let mut c = node();
        c.arg(peers().join("ts-v2-client.mjs"));
        c
    };
    assert_transparent(client, &server.url("/mcp"), &server.url("/mcp"), "/mcp");
}

#[test]
fn python_sdk_both_eras() {
    let mut server = Command::new(python());
    server.arg(peers().join("py-server.py"));
    let server = ListeningServer::start(server);
    let client = || {
        let mut c = Command::new(python());
        c.arg(peers().join("py-client.py"));
        c
    };
    assert_transparent(client, &server.url("/mcp"), &server.url("/mcp"), "/mcp");
}

#[test]
fn reference_server_over_stdio_matches_its_http_mode() {
    let everything = peers().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    // Direct: the same server in its own Streamable HTTP mode.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut http = node()
        .arg(&everything)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let direct_url = format!("http://127.0.0.1:{port}/mcp");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let client = || {
        let mut c = node();
        c.arg(peers().join("everything-client.mjs"));
        c
    };
    let upstream = format!("stdio:node {} stdio", everything.display());
    assert_transparent(client, &direct_url, &upstream, "/mcp");
    let _ = http.kill();
    let _ = http.wait();
}
