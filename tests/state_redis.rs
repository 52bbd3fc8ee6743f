//! Two gateway replicas sharing a real `redis-server` (with a password), in front of one real
//! SDK v2 server: approvals granted on one replica release calls on the other, events reach
//! each replica exactly once across its restarts, an outage fails closed and heals, and the
//! shared rate limit holds across both.

mod approvals_support;
mod common;

use std::time::Duration;

use approvals_support::{api, approve, call, call_streaming, call_with, echoed, eventually, pending_id};
use approvals_support::{without_ca, Redis, Setup, ADD_LIMIT};
use common::Gateway;
use http::StatusCode;
use serde_json::json;

const DECIDED: &str = "forge_state_events_total{kind=\"approval_decided\"}";

async fn decided_events(gw: &Gateway) -> f64 {
    gw.metric(DECIDED).await
}

#[tokio::test]
async fn an_approval_on_one_replica_releases_the_call_on_the_other() {
    let Some(redis) = Redis::start() else { return };
    let setup = Setup::new();
    let ttl = "approvals:\n  approval_ttl: 2s\n";
    let a = setup.gateway("a", &format!("{}{ttl}", redis.state_yaml("a")));
    let b = setup.gateway("b", &format!("{}{ttl}", redis.state_yaml("b")));
    let alice = setup.alice();

    let id = pending_id(&call(&a, &alice, "echo", json!({"text": "shared"})).await);
    assert_eq!(
        pending_id(&call(&b, &alice, "echo", json!({"text": "shared"})).await),
        id,
        "one request for both replicas"
    );
    let (status, _) = approve(&b, &id, &setup.bob()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(5), || async { decided_events(&a).await == 1.0 }).await,
        "replica A applied B's decision"
    );
    assert_eq!(decided_events(&b).await, 1.0, "and so did B, once");

    assert_ne!(
        pending_id(&call(&a, &alice, "echo", json!({"text": "changed"})).await),
        id,
        "a changed argument does not match"
    );
    assert_eq!(echoed(&call(&a, &alice, "echo", json!({"text": "shared"})).await), "echo: shared");
    assert_ne!(
        pending_id(&call(&b, &alice, "echo", json!({"text": "shared"})).await),
        id,
        "used up on A, not usable on B"
    );
    assert_eq!(setup.calls("echo"), 1);

    // Expiry: an approval not used within approval_ttl releases nothing on either replica.
    let late = pending_id(&call(&a, &alice, "echo", json!({"text": "late"})).await);
    assert_eq!(approve(&b, &late, &setup.bob()).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_ne!(pending_id(&call(&a, &alice, "echo", json!({"text": "late"})).await), late);
    assert_eq!(setup.calls("echo"), 1);
}

/// A client reading a streaming answer is held on replica A while an approver approves on
/// replica B, and gets its result without retrying; unapproved, the hold ends at its timeout.
#[tokio::test]
async fn a_call_held_on_one_replica_completes_when_the_other_approves() {
    let Some(redis) = Redis::start() else { return };
    let setup = Setup::new();
    let hold = "approvals:\n  hold_timeout: 20s\n";
    let a = setup.gateway("a", &format!("{}{hold}", redis.state_yaml("a")));
    let b = setup.gateway("b", &redis.state_yaml("b"));
    let alice = setup.alice();
    let held = {
        let (a, alice) = (std::sync::Arc::new(a), alice.clone());
        let task = tokio::spawn({
            let a = a.clone();
            async move { call_streaming(&a, &alice, "echo", json!({"text": "held"})).await }
        });
        (a, task)
    };
    let bob = setup.bob();
    let mut id = None;
    for _ in 0..200 {
        let (_, list) = api(&b, "GET", "/api/approvals", Some(&bob), "").await;
        id = list["approvals"][0]["request"]["id"].as_str().map(str::to_owned);
        if id.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = id.expect("the held call's request is visible on B");
    assert!(!held.1.is_finished(), "the call is held, not answered");
    assert_eq!(approve(&b, &id, &bob).await.0, StatusCode::OK);
    let answer = tokio::time::timeout(Duration::from_secs(10), held.1).await.expect("released").unwrap();
    assert_eq!(echoed(&answer), "echo: held", "{answer}");
    assert_eq!(setup.calls("echo"), 1);

    let short = setup.gateway("c", &format!("{}approvals:\n  hold_timeout: 1s\n", redis.state_yaml("c")));
    let started = std::time::Instant::now();
    let answer = call_streaming(&short, &alice, "echo", json!({"text": "nobody looks"})).await;
    pending_id(&answer);
    assert!(started.elapsed() >= Duration::from_secs(1), "held for the hold timeout first");
    assert_eq!(setup.calls("echo"), 1);
}

/// A replica killed with `kill -9` misses a decision while it is down; restarted under the
/// same replica id it applies that decision once, and after another restart not again.
#[tokio::test]
async fn a_killed_replica_gets_each_event_exactly_once_and_loses_no_record() {
    let Some(redis) = Redis::start() else { return };
    let setup = Setup::new();
    let config_a = setup.config("a", &redis.state_yaml("a"));
    let a = setup.start(&config_a);
    let b = setup.gateway("b", &redis.state_yaml("b"));
    let alice = setup.alice();
    let approved = pending_id(&call(&a, &alice, "echo", json!({"text": "one"})).await);
    let waiting = pending_id(&call(&a, &alice, "echo", json!({"text": "two"})).await);
    // Let A's consumer group exist before it dies (it is created on start).
    assert!(
        eventually(Duration::from_secs(5), || async {
            a.metric("forge_state_store_up{backend=\"redis\"}").await == 1.0
        })
        .await
    );
    a.signal("KILL");
    drop(a);

    assert_eq!(approve(&b, &approved, &setup.bob()).await.0, StatusCode::OK);
    let a = setup.start(&config_a);
    assert!(
        eventually(Duration::from_secs(5), || async { decided_events(&a).await == 1.0 }).await,
        "the decision made while A was down reached A after its restart"
    );
    let (_, shown) = api(&a, "GET", &format!("/api/approvals/{waiting}"), Some(&setup.bob()), "").await;
    assert_eq!(shown["status"], "pending", "{shown}");
    assert_eq!(echoed(&call(&a, &alice, "echo", json!({"text": "one"})).await), "echo: one");

    a.signal("KILL");
    drop(a);
    let a = setup.start(&config_a);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(decided_events(&a).await, 0.0, "an acknowledged event is not applied again");
    assert_eq!(pending_id(&call(&a, &alice, "echo", json!({"text": "two"})).await), waiting);
}

#[tokio::test]
async fn a_redis_outage_fails_closed_and_heals_by_itself() {
    let Some(mut redis) = Redis::start() else { return };
    let setup = Setup::new();
    let a = setup.gateway("a", &redis.state_yaml("a"));
    let alice = setup.alice();
    let id = pending_id(&call(&a, &alice, "echo", json!({"text": "before"})).await);

    redis.stop();
    let answer = call(&a, &alice, "echo", json!({"text": "before"})).await;
    assert_eq!(answer["error"]["data"]["code"], "approval_unavailable", "fail closed: {answer}");
    let (status, _) = approve(&a, &id, &setup.bob()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "no approval can be granted without the store");
    let added = call(&a, &alice, "add", json!({"a": 1, "b": 2})).await;
    assert!(added.get("result").is_some(), "rate-limited tools are served on local counters: {added}");
    assert!(a.metric("forge_rate_limit_fallbacks_total").await >= 1.0);
    let (status, ready) = a.admin_get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "degraded, still serving: {ready}");
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["state"]["up"], false, "{ready}");
    assert_eq!(a.metric("forge_state_store_up{backend=\"redis\"}").await, 0.0);
    assert_eq!(setup.calls("echo"), 0);

    redis.resume();
    assert!(
        eventually(Duration::from_secs(10), || async {
            a.metric("forge_state_store_up{backend=\"redis\"}").await == 1.0
        })
        .await,
        "recovered without a restart"
    );
    assert_eq!(approve(&a, &id, &setup.bob()).await.0, StatusCode::OK, "the pending request outlived the outage");
    assert_eq!(echoed(&call(&a, &alice, "echo", json!({"text": "before"})).await), "echo: before");
}

/// 300 calls, alternating between the replicas, against a limit of 200 per hour.
#[tokio::test]
async fn the_shared_rate_limit_holds_across_both_replicas() {
    let Some(redis) = Redis::start() else { return };
    let setup = Setup::new();
    let a = setup.gateway("a", &redis.state_yaml("a"));
    let b = setup.gateway("b", &redis.state_yaml("b"));
    let alice = setup.alice();
    let mut allowed = 0u64;
    let mut limited = 0u64;
    for i in 0..300 {
        let replica = if i % 2 == 0 { &a } else { &b };
        let reply = call_with(replica, &alice, "add", json!({"a": i, "b": 1})).await;
        let answer = reply.json();
        if answer.get("result").is_some() {
            allowed += 1;
        } else {
            assert_eq!(answer["error"]["code"], -32019, "{answer}");
            assert!(answer["error"]["data"]["retry_after_ms"].as_u64().unwrap() > 0);
            assert!(reply.headers.contains_key("retry-after"));
            limited += 1;
        }
    }
    eprintln!("shared rate limit: {allowed} of 300 calls admitted against a limit of {ADD_LIMIT}");
    let tolerance = ADD_LIMIT / 100;
    assert!(allowed.abs_diff(ADD_LIMIT) <= tolerance, "allowed {allowed} of 300 against a limit of {ADD_LIMIT}");
    assert_eq!(allowed + limited, 300);
    assert_eq!(setup.calls("add") as u64, allowed, "limited calls never reached the upstream");
    let counted = a.metric("forge_rate_limit_decisions_total{outcome=\"limited\"}").await
        + b.metric("forge_rate_limit_decisions_total{outcome=\"limited\"}").await;
    assert_eq!(counted as u64, limited);
    // The near miss: a tool without the obligation is not limited.
    assert!(call(&a, &alice, "echo", json!({"text": "x"})).await["error"]["code"] == -32018);
}

/// Finished requests leave Redis after `approvals.retention`; pending ones stay.
#[tokio::test]
async fn finished_requests_are_pruned_after_retention() {
    let Some(redis) = Redis::start() else { return };
    let setup = Setup::new();
    let short = "approvals:\n  pending_ttl: 1s\n  retention: 1s\n";
    let a = setup.gateway("a", &format!("{}{short}", redis.state_yaml("a")));
    let long = "approvals:\n  retention: 1s\n";
    let b = setup.gateway("b", &format!("{}{long}", redis.state_yaml("b")));
    let lapsing = pending_id(&call(&a, &setup.alice(), "echo", json!({"text": "lapses"})).await);
    let waiting = pending_id(&call(&b, &setup.alice(), "echo", json!({"text": "waits"})).await);
    let bob = setup.bob();
    let gone = eventually(Duration::from_secs(6), || async {
        api(&a, "GET", &format!("/api/approvals/{lapsing}"), Some(&bob), "").await.0 == StatusCode::NOT_FOUND
    })
    .await;
    assert!(gone, "the expired request was deleted");
    let (status, shown) = api(&a, "GET", &format!("/api/approvals/{waiting}"), Some(&bob), "").await;
    assert_eq!((status, shown["status"].as_str()), (StatusCode::OK, Some("pending")), "a pending request is kept");
}

/// The same approval flow over TLS (`rediss://`, the server's certificate trusted through
/// `state.redis.ca`), with a password.
#[tokio::test]
async fn replicas_share_approvals_over_tls() {
    let Some(redis) = Redis::start_tls() else { return };
    let setup = Setup::new();
    let a = setup.gateway("a", &redis.state_yaml("a"));
    let b = setup.gateway("b", &redis.state_yaml("b"));
    assert!(
        eventually(Duration::from_secs(5), || async {
            a.metric("forge_state_store_up{backend=\"redis\"}").await == 1.0
        })
        .await,
        "connected over TLS: {}",
        a.logs()
    );
    let id = pending_id(&call(&a, &setup.alice(), "echo", json!({"text": "tls"})).await);
    assert_eq!(approve(&b, &id, &setup.bob()).await.0, StatusCode::OK);
    assert_eq!(echoed(&call(&a, &setup.alice(), "echo", json!({"text": "tls"})).await), "echo: tls");

    // The near miss: a replica that does not trust the certificate never talks to Redis.
    let c = setup.gateway("c", &without_ca(&redis.state_yaml("c")));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(c.metric("forge_state_store_up{backend=\"redis\"}").await, 0.0);
    // It never read the revocations, so it vouches for no identified caller.
    let refused = call_with(&c, &setup.alice(), "echo", json!({"text": "tls"})).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", refused.json());
    assert!(refused.json()["error"]["message"].as_str().unwrap().contains("revocations cannot be checked"));
}

/// The least-privilege ACL user docs/approvals.md documents (only the `forge:` keys; no
/// admin, dangerous or pub/sub commands) is all a replica needs: the approval flow runs
/// through it and what it stores is under the prefix. The near miss: the same user with a
/// wrong password never gets in, and the replica fails closed.
#[tokio::test]
async fn replicas_work_as_a_least_privilege_acl_user() {
    let Some(redis) = Redis::start() else { return };
    let mut admin = redis.connection();
    let created: String = redis::cmd("ACL")
        .arg(&["SETUSER", "forge-gw", "reset", "on", ">acl-password-1", "~forge:*", "resetchannels"])
        .arg(&["-@all", "+@read", "+@write", "+@stream", "+@scripting", "+@connection", "-@dangerous"])
        .query(&mut admin)
        .unwrap();
    assert_eq!(created, "OK");
    let setup = Setup::new();
    let as_user = |replica: &str, password: &str| {
        let file = redis.dir.path().join(format!("acl-password-{replica}"));
        std::fs::write(&file, format!("{password}\n")).unwrap();
        format!(
            "state:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:{}\n    username: forge-gw\n    password_file: {}\n    replica_id: {replica}\n",
            redis.port,
            file.display()
        )
    };
    let a = setup.gateway("a", &as_user("a", "acl-password-1"));
    let b = setup.gateway("b", &as_user("b", "acl-password-1"));
    for gw in [&a, &b] {
        let up = eventually(Duration::from_secs(5), || async {
            gw.metric("forge_state_store_up{backend=\"redis\"}").await == 1.0
        });
        assert!(up.await, "connected as the ACL user: {}", gw.logs());
    }
    let id = pending_id(&call(&a, &setup.alice(), "echo", json!({"text": "acl"})).await);
    assert_eq!(approve(&b, &id, &setup.bob()).await.0, StatusCode::OK);
    assert_eq!(echoed(&call(&a, &setup.alice(), "echo", json!({"text": "acl"})).await), "echo: acl");
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut admin).unwrap();
    assert!(keys.iter().any(|k| k == &format!("forge:approval:{id}")), "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("forge:")), "nothing outside the prefix: {keys:?}");

    let c = setup.gateway("c", &as_user("c", "not-the-password"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(c.metric("forge_state_store_up{backend=\"redis\"}").await, 0.0);
    let refused = call_with(&c, &setup.alice(), "echo", json!({"text": "acl"})).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", refused.json());
}

/// A replica starts, degraded, while Redis is down (refusing identified callers: it has no
/// revocations to check them against), and connects and serves once Redis is up.
#[tokio::test]
async fn a_replica_starts_while_redis_is_down() {
    let Some(mut redis) = Redis::start() else { return };
    redis.stop();
    let setup = Setup::new();
    let a = setup.gateway("a", &redis.state_yaml("a"));
    // Revocations were never read: identified callers are refused (fail closed).
    let refused = call_with(&a, &setup.alice(), "echo", json!({"text": "early"})).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", refused.json());
    assert_eq!(refused.json()["error"]["code"], -32603);
    redis.resume();
    let up = eventually(Duration::from_secs(10), || async {
        a.metric("forge_state_store_up{backend=\"redis\"}").await == 1.0
    });
    assert!(up.await, "connected without a restart");
    let serving = eventually(Duration::from_secs(5), || async {
        call(&a, &setup.alice(), "echo", json!({"text": "early"})).await["error"]["code"] == -32018
    });
    assert!(serving.await, "the revocations were read once Redis answered: calls go on (here: to approval)");
}

/// A caller revoked through replica A is refused on replica B (the change stream carries
/// it; B checks its set in memory); another caller is not. While Redis is away longer than
/// `state.revocations_max_staleness`, identified callers are refused (fail closed), and
/// served again once it is back.
#[tokio::test]
async fn a_revocation_on_one_replica_holds_on_the_other() {
    let Some(mut redis) = Redis::start() else { return };
    let setup = Setup::new();
    let staleness = "  revocations_max_staleness: 1s\n";
    let a = setup.gateway("a", &format!("{}{staleness}", redis.state_yaml("a")));
    let b = setup.gateway("b", &format!("{}{staleness}", redis.state_yaml("b")));
    let (alice, carol) = (setup.alice(), setup.carol());
    assert!(call(&b, &alice, "add", json!({"a": 1, "b": 1})).await.get("result").is_some(), "not revoked yet");

    let body = json!({"subject": "principal:alice@https://idp.test"}).to_string();
    let (status, revoked) = api(&a, "POST", "/api/revocations", Some(&setup.bob()), &body).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    let (status, _) = api(&a, "POST", "/api/revocations", Some(&carol), &body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only approvers revoke");
    let bad = json!({"subject": "alice"}).to_string();
    assert_eq!(api(&a, "POST", "/api/revocations", Some(&setup.bob()), &bad).await.0, StatusCode::BAD_REQUEST);

    let refused_on_b = eventually(Duration::from_secs(5), || async {
        let reply = call_with(&b, &alice, "add", json!({"a": 2, "b": 2})).await;
        reply.status == StatusCode::FORBIDDEN && reply.json()["error"]["code"] == -32016
    });
    assert!(refused_on_b.await, "B applied A's revocation");
    let answer = call(&a, &alice, "add", json!({"a": 3, "b": 3})).await;
    assert!(answer["error"]["message"].as_str().unwrap().contains("revoked"), "{answer}");
    assert!(call(&b, &carol, "add", json!({"a": 4, "b": 4})).await.get("result").is_some(), "others pass");

    redis.stop();
    let unknown = eventually(Duration::from_secs(5), || async {
        let reply = call_with(&b, &carol, "add", json!({"a": 5, "b": 5})).await;
        reply.status == StatusCode::SERVICE_UNAVAILABLE
    });
    assert!(unknown.await, "past the staleness bound, revocations cannot be vouched for: refused");
    redis.resume();
    let served = eventually(Duration::from_secs(10), || async {
        call(&b, &carol, "add", json!({"a": 6, "b": 6})).await.get("result").is_some()
    });
    assert!(served.await, "served again once Redis answers");
    assert_eq!(call_with(&b, &alice, "add", json!({"a": 7, "b": 7})).await.status, StatusCode::FORBIDDEN);
}

/// A plain JSON-RPC request as alice (the plugin peer speaks SDK v1's stateless JSON).
async fn rpc(gw: &Gateway, token: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string();
    let auth = format!("Bearer {token}");
    gw.client().post("/mcp", &body, &[("authorization", auth.as_str())]).await.json()
}

/// A tool pinned through replica A is pinned on replica B too: after a rug pull, B sees the
/// changed definition (real SDK v1 peer, tests/peers/plugin-peer.mjs) and refuses the call.
#[tokio::test]
async fn a_tool_pinned_through_one_replica_catches_a_rug_pull_on_the_other() {
    let Some(redis) = Redis::start() else { return };
    let setup = Setup::with_upstream("plugin-peer.mjs");
    let a = setup.gateway("a", &redis.state_yaml("a"));
    let b = setup.gateway("b", &redis.state_yaml("b"));
    let up = "forge_state_store_up{backend=\"redis\"}";
    assert!(
        eventually(Duration::from_secs(10), || async { a.metric(up).await == 1.0 && b.metric(up).await == 1.0 }).await
    );
    let alice = setup.alice();

    let listed = rpc(&a, &alice, "tools/list", json!({})).await;
    assert!(listed["result"]["tools"].as_array().unwrap().iter().any(|t| t["name"] == "fetch"), "{listed}");
    let pinned = eventually(Duration::from_secs(5), || async {
        let pin: Option<String> =
            redis::cmd("HGET").arg("forge:pins").arg("tool:fetch").query(&mut redis.connection()).unwrap();
        pin.is_some()
    });
    assert!(pinned.await, "A's pin is in Redis");
    let fetched = rpc(&b, &alice, "tools/call", json!({"name": "fetch", "arguments": {"url": "https://a"}})).await;
    assert_eq!(fetched["result"]["content"][0]["text"], "fetched https://a", "unchanged: served on B: {fetched}");

    let pulled = rpc(&b, &alice, "tools/call", json!({"name": "rug-pull", "arguments": {}})).await;
    assert_eq!(pulled["result"]["content"][0]["text"], "pulled");
    rpc(&b, &alice, "tools/list", json!({})).await;
    let refused = rpc(&b, &alice, "tools/call", json!({"name": "fetch", "arguments": {"url": "https://b"}})).await;
    assert_eq!(refused["error"]["data"]["code"], "tool_definition_changed", "B knew A's pin: {refused}");
    let echoed = rpc(&b, &alice, "tools/call", json!({"name": "weather", "arguments": {}})).await;
    assert_eq!(echoed["result"]["content"][0]["text"], "sunny", "an unchanged tool still passes: {echoed}");
}
