//! Human approval through one running gateway with the embedded store, in front of the real
//! SDK v2 server: a call that needs approval never reaches the upstream until an approver
//! approves exactly that call; the identical retry then goes through once.

mod approvals_support;
mod common;

use std::time::Duration;

use approvals_support::{api, approve, call, echoed, pending_id, Setup};
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn an_approved_call_goes_through_once_and_only_as_approved() {
    let setup = Setup::new();
    let gw = setup.gateway("a", "");
    let (alice, bob) = (setup.alice(), setup.bob());

    let answer = call(&gw, &alice, "echo", json!({"text": "drop it"})).await;
    let id = pending_id(&answer);
    let url = answer["error"]["data"]["url"].as_str().unwrap();
    assert_eq!(url, format!("{}/approvals/{id}", gw.admin_url), "the page is on the admin listener");
    assert!(answer["error"]["message"].as_str().unwrap().contains("echo needs a human"), "{answer}");
    assert_eq!(
        pending_id(&call(&gw, &alice, "echo", json!({"text": "drop it"})).await),
        id,
        "a retry waits for the same request"
    );
    assert_eq!(setup.calls("echo"), 0, "nothing reached the upstream");

    let (status, shown) = api(&gw, "GET", &format!("/api/approvals/{id}"), Some(&bob), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["request"]["caller"], "alice@https://idp.test");
    assert_eq!(shown["request"]["tool"], "echo");
    assert_eq!(shown["request"]["arguments_masked"], json!({"text": "drop it"}));
    assert_eq!(shown["status"], "pending");

    let (status, decided) = approve(&gw, &id, &bob).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["state"]["decided_by"], "bob@https://idp.test");

    // Near misses first: none of them matches the approval.
    let changed = call(&gw, &alice, "echo", json!({"text": "drop it all"})).await;
    assert_ne!(pending_id(&changed), id, "a changed argument is another request");
    let mallory = setup.token("mallory", "mcp:tools");
    assert_ne!(pending_id(&call(&gw, &mallory, "echo", json!({"text": "drop it"})).await), id, "another caller");
    assert_eq!(setup.calls("echo"), 0);

    let done = call(&gw, &alice, "echo", json!({"text": "drop it"})).await;
    assert_eq!(echoed(&done), "echo: drop it", "{done}");
    assert_eq!(setup.calls("echo"), 1);

    let again = call(&gw, &alice, "echo", json!({"text": "drop it"})).await;
    assert_ne!(pending_id(&again), id, "single use: the next identical call asks again");
    assert_eq!(setup.calls("echo"), 1);
    assert_eq!(gw.metric("forge_approvals_total{event=\"used\"}").await, 1.0);
}

#[tokio::test]
async fn only_an_authorized_approver_other_than_the_caller_decides() {
    let setup = Setup::new();
    let gw = setup.gateway("a", "");
    let id = pending_id(&call(&gw, &setup.alice(), "echo", json!({"text": "x"})).await);
    let path = format!("/api/approvals/{id}/approve");

    let (status, body) = api(&gw, "POST", &path, None, "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = api(&gw, "POST", &path, Some(&setup.carol()), "{}").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a near-miss scope is no approver: {body}");
    let (status, _) = api(&gw, "GET", "/api/approvals", Some(&setup.carol()), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "non-approvers do not even see the list");
    let (status, body) = api(&gw, "POST", &path, Some("not.a.jwt"), "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let self_approver = setup.token("alice", "mcp:tools forge:approve");
    let (status, body) = api(&gw, "POST", &path, Some(&self_approver), "{}").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "nobody approves their own call: {body}");

    let (status, listed) = api(&gw, "GET", "/api/approvals", Some(&setup.bob()), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["approvals"][0]["request"]["id"], id.as_str());
    let (status, denied) =
        api(&gw, "POST", &format!("/api/approvals/{id}/deny"), Some(&setup.bob()), r#"{"comment":"not today"}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(denied["status"], "denied");
    let (status, _) = approve(&gw, &id, &setup.bob()).await;
    assert_eq!(status, StatusCode::CONFLICT, "a decision is final");

    let answer = call(&gw, &setup.alice(), "echo", json!({"text": "x"})).await;
    assert_eq!(answer["error"]["code"], -32017, "{answer}");
    assert_eq!(answer["error"]["data"]["code"], "approval_denied");
    assert_eq!(answer["error"]["data"]["comment"], "not today");
    assert_eq!(setup.calls("echo"), 0);
}

#[tokio::test]
async fn anonymous_callers_cannot_wait_for_approval_and_other_tools_pass() {
    let setup = Setup::new();
    let gw = setup.gateway("a", "");
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let headers = [
        ("accept", "application/json"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
    ];
    let anonymous = gw.client().post("/mcp", &body.to_string(), &headers).await.json();
    assert_eq!(anonymous["error"]["data"]["code"], "approval_needs_identity", "{anonymous}");

    let added = call(&gw, &setup.alice(), "add", json!({"a": 1, "b": 2})).await;
    assert!(added.get("result").is_some(), "a tool without the obligation passes: {added}");
}

#[tokio::test]
async fn an_approval_expires_unused() {
    let setup = Setup::new();
    let gw = setup.gateway("a", "approvals:\n  approval_ttl: 1s\n");
    let id = pending_id(&call(&gw, &setup.alice(), "echo", json!({"text": "late"})).await);
    assert_eq!(approve(&gw, &id, &setup.bob()).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        approvals_support::eventually(Duration::from_secs(3), || async {
            gw.metric("forge_approvals_total{event=\"expired\"}").await == 1.0
        })
        .await,
        "the expiry is on record without anyone looking"
    );
    let answer = call(&gw, &setup.alice(), "echo", json!({"text": "late"})).await;
    assert_ne!(pending_id(&answer), id, "the lapsed approval released nothing");
    assert_eq!(setup.calls("echo"), 0);
    let (_, shown) = api(&gw, "GET", &format!("/api/approvals/{id}"), Some(&setup.bob()), "").await;
    assert_eq!(shown["status"], "expired");
}

/// `kill -9` of the real process, then a new process on the same embedded database.
#[tokio::test]
async fn a_killed_gateway_loses_no_approval_or_pending_request() {
    let setup = Setup::new();
    let db = setup.dir.path().join("state.redb");
    let config = setup.config("a", &format!("state:\n  path: {}\n", db.display()));
    let gw = setup.start(&config);
    let approved = pending_id(&call(&gw, &setup.alice(), "echo", json!({"text": "one"})).await);
    let pending = pending_id(&call(&gw, &setup.alice(), "echo", json!({"text": "two"})).await);
    assert_eq!(approve(&gw, &approved, &setup.bob()).await.0, StatusCode::OK);
    gw.signal("KILL");
    drop(gw);

    let gw = setup.start(&config);
    let (_, shown) = api(&gw, "GET", &format!("/api/approvals/{pending}"), Some(&setup.bob()), "").await;
    assert_eq!(shown["status"], "pending", "the pending request survived: {shown}");
    let done = call(&gw, &setup.alice(), "echo", json!({"text": "one"})).await;
    assert_eq!(echoed(&done), "echo: one", "the approval survived: {done}");
    assert_eq!(pending_id(&call(&gw, &setup.alice(), "echo", json!({"text": "two"})).await), pending);
}

#[tokio::test]
async fn the_cli_lists_shows_and_approves() {
    let setup = Setup::new();
    let gw = setup.gateway("a", "");
    let id = pending_id(&call(&gw, &setup.alice(), "echo", json!({"text": "cli"})).await);
    let forge = |args: &[&str], token: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_forge"))
            .arg("approvals")
            .args(args)
            .args(["--admin", &gw.admin_url])
            .env("FORGE_APPROVER_TOKEN", token)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = forge(&["list"], &setup.bob());
    assert!(ok, "{err}");
    assert!(out.starts_with(&format!("{id}\tpending\talice@https://idp.test\techo\techo needs a human")), "{out}");
    let (ok, out, _) = forge(&["show", &id], &setup.bob());
    assert!(ok && out.contains("\"arguments_sha256\""), "{out}");
    let (ok, _, err) = forge(&["approve", &id, "--comment", "ok"], &setup.carol());
    assert!(!ok && err.contains("403"), "a non-approver is refused: {err}");
    let (ok, out, err) = forge(&["approve", &id, "--comment", "ok"], &setup.bob());
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("{id}\tapproved"));
    let (ok, out, _) = forge(&["list"], &setup.bob());
    assert!(ok && out.is_empty(), "nothing pending any more: {out}");
    assert_eq!(echoed(&call(&gw, &setup.alice(), "echo", json!({"text": "cli"})).await), "echo: cli");
}

/// A 2026-07-28 client that declared URL elicitation gets an `input_required` result
/// pointing at the page, and its retry with the elicitation's response goes through once
/// approved; a client without the capability gets the pending error.
#[tokio::test]
async fn url_elicitation_capable_clients_are_sent_to_the_page() {
    let setup = Setup::new();
    let gw = setup.gateway("a", "");
    let auth = format!("Bearer {}", setup.alice());
    let headers = [
        ("accept", "application/json"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
        ("authorization", auth.as_str()),
    ];
    let body = |responses: serde_json::Value| {
        let mut params = json!({"name": "echo", "arguments": {"text": "elicited"}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"url": {}}}}});
        if !responses.is_null() {
            params["inputResponses"] = responses;
        }
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}).to_string()
    };
    let first = gw.client().post("/mcp", &body(serde_json::Value::Null), &headers).await.json();
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let elicitation = &first["result"]["inputRequests"]["forge_approval"];
    assert_eq!(elicitation["method"], "elicitation/create");
    assert_eq!(elicitation["params"]["mode"], "url");
    let url = elicitation["params"]["url"].as_str().unwrap();
    let id = url.rsplit('/').next().unwrap();
    assert_eq!(url, format!("{}/approvals/{id}", gw.admin_url));

    let declined =
        gw.client().post("/mcp", &body(json!({"forge_approval": {"action": "decline"}})), &headers).await.json();
    assert_eq!(
        pending_id(&declined),
        id,
        "a declined elicitation gets the plain pending error, not another elicitation"
    );
    assert_eq!(
        pending_id(&call(&gw, &setup.alice(), "echo", json!({"text": "elicited"})).await),
        id,
        "without the capability"
    );
    assert_eq!(setup.calls("echo"), 0);

    assert_eq!(approve(&gw, id, &setup.bob()).await.0, StatusCode::OK);
    let done = gw.client().post("/mcp", &body(json!({"forge_approval": {"action": "accept"}})), &headers).await.json();
    assert_eq!(echoed(&done), "echo: elicited", "{done}");
    assert_eq!(setup.calls("echo"), 1);
}
