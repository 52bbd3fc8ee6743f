//! Thread-per-core serving: the kernel spreads connections over the serving workers, and
//! what must hold across them does: one connection limit, one drain. One worker works too.

mod common;

use std::time::Duration;

use common::{busy_workers, ok_upstream, stand_in, write_config, Gateway, TOOLS_CALL};
use http::StatusCode;

#[tokio::test]
async fn connections_are_spread_over_the_workers() {
    let upstream = stand_in(ok_upstream()).await;
    let gw = Gateway::start_with_env(&["--upstream", &upstream.url], &[("FORGE_WORKERS", "4")]);
    let client = gw.client();
    // Each request is a new connection (a new client port for the kernel to hash).
    for _ in 0..32 {
        assert_eq!(client.post("/mcp", TOOLS_CALL, &[]).await.status, StatusCode::OK);
    }
    let counts = gw.accepted_by_worker().await;
    assert_eq!(counts.len(), 4, "one series per worker: {counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), 32, "{counts:?}");
    assert!(busy_workers(&counts) > 1, "more than one worker served: {counts:?}");
    assert!(gw.log_containing("forge gateway started").contains("workers=4"));
}

#[tokio::test]
async fn the_connection_limit_counts_across_workers() {
    let upstream = stand_in(ok_upstream()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "workers: 4\nlimits:\n  max_connections: 3\n");
    let gw = Gateway::start(&["--upstream", &upstream.url, "--config", config.to_str().unwrap()]);
    let client = gw.client();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(client.connect().await.unwrap());
    }
    // Whichever worker accepts it, every further connection is over the one limit.
    for _ in 0..12 {
        let reply = client.post("/mcp", TOOLS_CALL, &[]).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.headers["retry-after"], "1");
    }
    assert_eq!(gw.metric("forge_limit_rejections_total{limit=\"connections\"}").await, 12.0);
    let counts = gw.accepted_by_worker().await;
    assert_eq!(counts.iter().sum::<u64>(), 15, "{counts:?}");
    assert!(busy_workers(&counts) > 1, "the held and refused connections were not all on one worker: {counts:?}");

    drop(held);
    for _ in 0..100 {
        if gw.metric("forge_connections_active").await == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(client.post("/mcp", TOOLS_CALL, &[]).await.status, StatusCode::OK, "room again once they closed");
}

#[tokio::test]
async fn sigterm_drains_every_worker_then_exits_zero() {
    let url = common::slow_upstream(Duration::from_millis(1500)).await;
    let mut gw = Gateway::start_with_env(&["--upstream", &url], &[("FORGE_WORKERS", "3")]);
    let in_flight: Vec<_> = (0..12)
        .map(|_| {
            let client = gw.client();
            tokio::spawn(async move { client.post("/mcp", TOOLS_CALL, &[]).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let counts = gw.accepted_by_worker().await;
    assert_eq!(counts.iter().sum::<u64>(), 12, "all in flight: {counts:?}");
    assert!(busy_workers(&counts) > 1, "in flight on several workers: {counts:?}");
    gw.signal("TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = gw.admin_get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "not ready while draining: {body}");
    for _ in 0..6 {
        assert!(tokio::net::TcpStream::connect(gw.addr).await.is_err(), "no worker takes new connections");
    }
    for request in in_flight {
        assert_eq!(request.await.unwrap().status, StatusCode::OK, "every in-flight request completes");
    }
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(0));
    assert_eq!(gw.logs().matches("all connections drained").count(), 3, "each worker drained");
}

#[tokio::test]
async fn one_worker_serves_everything() {
    let upstream = stand_in(ok_upstream()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "workers: 1\n");
    let mut gw = Gateway::start(&["--upstream", &upstream.url, "--config", config.to_str().unwrap()]);
    let client = gw.client();
    for _ in 0..8 {
        assert_eq!(client.post("/mcp", TOOLS_CALL, &[]).await.status, StatusCode::OK);
    }
    assert_eq!(gw.accepted_by_worker().await, [8]);
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn an_invalid_worker_count_is_refused_at_start() {
    let state = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_forge"))
        .args(["run", "--upstream", "http://127.0.0.1:9/mcp", "--listen", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(state.path())
        .env("FORGE_WORKERS", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`workers`: must be between 1 and 1024 (got 0)"), "{stderr}");
}
