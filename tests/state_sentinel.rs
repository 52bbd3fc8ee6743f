//! Redis Sentinel with real processes: a primary, its replica and one sentinel (each with a
//! password) on loopback ports, two gateway replicas configured through the sentinel. The
//! primary is killed with `kill -9`; while the sentinel fails over, approvals fail closed and
//! rate limits count locally; after it, both gateways work against the promoted replica
//! without a restart: a request made before the failover is approved and released, and the
//! shared rate-limit counter lives on the new primary.

mod approvals_support;
mod common;

use std::time::Duration;

use approvals_support::{approve, call, call_with, echoed, eventually, pending_id, without_ca, Redis, Sentinel, Setup};
use common::Gateway;
use http::StatusCode;
use serde_json::json;

const UP: &str = "forge_state_store_up{backend=\"redis\"}";

async fn up(gw: &Gateway) -> bool {
    gw.metric(UP).await == 1.0
}

#[tokio::test]
async fn a_sentinel_failover_is_followed_without_a_restart() {
    let Some(mut primary) = Redis::start() else { return };
    let replica = Redis::start_replica_of(&primary);
    let Some(sentinel) = Sentinel::start(&primary) else { return };
    sentinel.wait_for_replicas(1);
    assert_eq!(sentinel.primary_port(), primary.port);

    let setup = Setup::new();
    let a = setup.gateway("a", &sentinel.state_yaml(&primary, "a"));
    let b = setup.gateway("b", &sentinel.state_yaml(&primary, "b"));
    assert!(eventually(Duration::from_secs(10), || async { up(&a).await && up(&b).await }).await, "{}", a.logs());
    let alice = setup.alice();
    // Serving once each has read the revocations through the primary Sentinel named.
    for gw in [&a, &b] {
        let serving = eventually(Duration::from_secs(5), || async {
            call(gw, &alice, "add", json!({"a": 0, "b": 0})).await.get("result").is_some()
        });
        assert!(serving.await, "{}", gw.logs());
    }

    // Before: a shared approval, and a rate-limited call counted in Redis.
    let before = pending_id(&call(&a, &alice, "echo", json!({"text": "before"})).await);
    assert!(call(&a, &alice, "add", json!({"a": 1, "b": 2})).await.get("result").is_some());
    // What the replica has not received yet would be lost with its primary: let it catch up.
    let synced: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut primary.connection()).unwrap();
    assert_eq!(synced, 1, "the replica acknowledged the writes");

    primary.kill();

    // During the failover: no approval is matched or granted; rate limits count locally.
    let refused = call(&a, &alice, "echo", json!({"text": "before"})).await;
    assert_eq!(refused["error"]["data"]["code"], "approval_unavailable", "fail closed: {refused}");
    assert_eq!(approve(&b, &before, &setup.bob()).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert!(call(&b, &alice, "add", json!({"a": 2, "b": 2})).await.get("result").is_some());
    assert!(b.metric("forge_rate_limit_fallbacks_total").await >= 1.0);

    // The sentinel promotes the replica; both gateways find it by themselves.
    let promoted = eventually(Duration::from_secs(30), || async {
        sentinel.primary_port() == replica.port && up(&a).await && up(&b).await
    });
    assert!(promoted.await, "the gateways follow the promoted replica: {}", a.logs());
    assert!(a.logs().contains("Sentinel names a new primary"), "{}", a.logs());

    // After: the request made before the failover is approved on B and released on A.
    assert_eq!(approve(&b, &before, &setup.bob()).await.0, StatusCode::OK);
    let decided = "forge_state_events_total{kind=\"approval_decided\"}";
    assert!(
        eventually(Duration::from_secs(10), || async { a.metric(decided).await == 1.0 }).await,
        "A reads the event stream on the new primary"
    );
    assert_eq!(echoed(&call(&a, &alice, "echo", json!({"text": "before"})).await), "echo: before");
    assert_eq!(setup.calls("echo"), 1);

    // The shared rate limit is counted on the new primary again, not locally.
    let fallbacks = a.metric("forge_rate_limit_fallbacks_total").await;
    assert!(call(&a, &alice, "add", json!({"a": 3, "b": 2})).await.get("result").is_some());
    assert_eq!(a.metric("forge_rate_limit_fallbacks_total").await, fallbacks);
    let counter: Option<String> = redis::cmd("GET").arg("forge:rate:add").query(&mut replica.connection()).unwrap();
    assert!(counter.is_some(), "the GCRA state is on the promoted replica");
}

/// The near miss: a master name the sentinel does not monitor leaves the store down (fail
/// closed), rather than talking to some other server.
#[tokio::test]
async fn an_unknown_master_name_fails_closed() {
    let Some(primary) = Redis::start() else { return };
    let Some(sentinel) = Sentinel::start(&primary) else { return };
    let setup = Setup::new();
    let yaml = sentinel.state_yaml(&primary, "a").replace("master_name: forge", "master_name: other");
    let a = setup.gateway("a", &yaml);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!up(&a).await);
    // Nothing read through it, not even the revocations: identified callers are refused.
    let refused = call_with(&a, &setup.alice(), "echo", json!({"text": "x"})).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", refused.json());
    assert_eq!(refused.json()["error"]["code"], -32603);
}

/// The sentinel answering only over TLS (`rediss://` sentinel URLs, its certificate trusted
/// through `sentinel.ca`): the gateway finds the primary through it and serves. The near
/// miss: without the CA it never trusts the sentinel, so it has no primary and fails closed.
#[tokio::test]
async fn the_sentinel_is_reached_over_tls() {
    let Some(primary) = Redis::start() else { return };
    let Some(sentinel) = Sentinel::start_tls(&primary) else { return };
    let setup = Setup::new();
    let a = setup.gateway("a", &sentinel.state_yaml(&primary, "a"));
    assert!(eventually(Duration::from_secs(10), || async { up(&a).await }).await, "{}", a.logs());
    // Serving once it has read the revocations through the primary the sentinel named.
    let serving = eventually(Duration::from_secs(5), || async {
        call(&a, &setup.alice(), "echo", json!({"text": "tls"})).await["error"]["code"] == -32018
    });
    assert!(serving.await, "{}", a.logs());
    let id = pending_id(&call(&a, &setup.alice(), "echo", json!({"text": "tls"})).await);
    assert_eq!(approve(&a, &id, &setup.bob()).await.0, StatusCode::OK);
    assert_eq!(echoed(&call(&a, &setup.alice(), "echo", json!({"text": "tls"})).await), "echo: tls");

    let b = setup.gateway("b", &without_ca(&sentinel.state_yaml(&primary, "b")));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!up(&b).await);
    let refused = call_with(&b, &setup.alice(), "echo", json!({"text": "tls"})).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", refused.json());
}
