//! Human approval through one running gateway with the embedded store, in front of the real
//! SDK v2 server: a call that needs approval never reaches the upstream until an approver
//! approves exactly that call; the identical retry then goes through once.

mod approvals_support;
mod common;
mod plugin_support;

use std::time::Duration;

use approvals_support::{api, approval_trail, approve, call, echoed, eventually, evidence, pending_id, Setup};
use http::StatusCode;
use serde_json::json;
use sha2::Digest;

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

/// Each step of an approval is an evidence record of its own, and the records of the calls
/// name the approval they waited for, were refused by, or went through with.
#[tokio::test]
async fn approvals_and_the_calls_they_release_are_in_evidence() {
    let setup = Setup::new();
    let gw = setup.gateway("a", "");
    let (alice, bob) = (setup.alice(), setup.bob());
    let id = pending_id(&call(&gw, &alice, "echo", json!({"text": "audit me"})).await);
    assert_eq!(approve(&gw, &id, &bob).await.0, StatusCode::OK);
    assert_eq!(echoed(&call(&gw, &alice, "echo", json!({"text": "audit me"})).await), "echo: audit me");

    let expected: Vec<(String, String)> = [
        ("requested", "hold"), // the approval's own records …
        ("pending", "hold"),   // … and the first call's: held, not forwarded
        ("approved", "allow"),
        ("used", "allow"),
        ("used", "allow"), // the retried call's record, which reached the upstream
    ]
    .iter()
    .map(|(e, d)| (e.to_string(), d.to_string()))
    .collect();
    let complete = eventually(Duration::from_secs(5), || async { approval_trail(&gw, &id).len() >= expected.len() });
    assert!(complete.await, "{:?}", approval_trail(&gw, &id));
    assert_eq!(approval_trail(&gw, &id), expected);

    let records = evidence(&gw);
    let approved = records.iter().find(|r| r["approval"]["id"] == id.as_str() && r["approval"]["event"] == "approved");
    let binding = &approved.unwrap()["approval"]["binding"];
    assert_eq!(binding["caller"], "alice@https://idp.test");
    assert_eq!(binding["tool"], "echo");
    assert_eq!(binding["decided_by"], "bob@https://idp.test");
    assert_eq!(binding["comment"], "looks fine");
    // SHA-256 of the arguments' RFC 8785 form, written out by hand.
    let digest = forge::evidence::record::hex(&sha2::Sha256::digest(br#"{"text":"audit me"}"#));
    assert_eq!(binding["arguments_sha256"], digest.as_str());
    let released = records.iter().rev().find(|r| r["approval"]["id"] == id.as_str()).unwrap();
    assert_eq!(released["method"], "tools/call");
    assert!(released["response_sha256"].is_string(), "the released call's record is of its answer: {released}");
    assert!(released["approval"]["binding"].is_null(), "the call's record names the approval, no more");

    // A denial: the approver's record and the refused retry's.
    let denied = pending_id(&call(&gw, &alice, "echo", json!({"text": "no"})).await);
    let path = format!("/api/approvals/{denied}/deny");
    assert_eq!(api(&gw, "POST", &path, Some(&bob), r#"{"comment":"not today"}"#).await.0, StatusCode::OK);
    let refused = call(&gw, &alice, "echo", json!({"text": "no"})).await;
    assert_eq!(refused["error"]["data"]["code"], "approval_denied", "{refused}");
    let expected = [("requested", "hold"), ("pending", "hold"), ("denied", "deny"), ("denied", "deny")];
    let expected: Vec<(String, String)> = expected.iter().map(|(e, d)| (e.to_string(), d.to_string())).collect();
    let complete = eventually(Duration::from_secs(5), || async { approval_trail(&gw, &denied).len() >= 4 });
    assert!(complete.await, "{:?}", approval_trail(&gw, &denied));
    assert_eq!(approval_trail(&gw, &denied), expected);
    assert_eq!(setup.calls("echo"), 1, "only the approved call reached the upstream");

    // A call that needs no approval names none.
    let plain = call(&gw, &alice, "add", json!({"a": 1, "b": 2})).await;
    assert!(plain["result"].is_object(), "{plain}");
    let named = eventually(Duration::from_secs(5), || async {
        evidence(&gw).iter().any(|r| r["name"] == "add" && r["approval"].is_null() && r["decision"] == "allow")
    });
    assert!(named.await, "the plain call's record has no approval");
}

/// Policy asking for approval of what the server sends cannot be met (nothing can hold a
/// result for an approver): the result is withheld, not relayed unapproved.
#[tokio::test]
async fn a_result_that_needs_approval_is_withheld() {
    let setup = Setup::new();
    let gw = setup.gateway("a", "");
    let answer = call(&gw, &setup.alice(), "era", json!({})).await;
    assert_eq!(answer["error"]["code"], -32017, "{answer}");
    assert_eq!(answer["error"]["data"]["code"], "approval_required", "{answer}");
    assert_eq!(setup.calls("era"), 1, "the call itself needed no approval");
    let plain = call(&gw, &setup.alice(), "add", json!({"a": 1, "b": 2})).await;
    assert!(plain["result"].is_object(), "another tool's result passes: {plain}");
}

/// A real SDK client (TypeScript v1) that asked for progress is held on its streaming answer:
/// it hears progress notifications — each resetting its 1 s request timeout — while a human
/// takes longer than that to approve, and then gets the upstream's result on the same stream.
#[tokio::test]
async fn a_held_sdk_client_hears_progress_and_then_gets_its_result() {
    let setup = Setup::new();
    let gw = setup.gateway("a", "approvals:\n  hold_timeout: 20s\n  progress_interval: 200ms\n");
    let client =
        approvals_support::approval_client(&gw, &setup.alice(), "echo", json!({"text": "wait for me"}), 1000, &[]);
    let bob = setup.bob();
    let id = approvals_support::pending_request(&gw, &bob).await;
    // Longer than the client's own timeout: only the progress keeps it waiting.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(setup.calls("echo"), 0, "held, not forwarded");
    assert_eq!(approve(&gw, &id, &bob).await.0, StatusCode::OK);

    let out = tokio::time::timeout(Duration::from_secs(20), client).await.expect("the client finishes").unwrap();
    assert_eq!(out["result"]["content"][0]["text"], "echo: wait for me", "{out}");
    // Released on the stream it waited on, the result carries its signed evidence as every
    // SSE result does.
    let evidence = &out["result"]["_meta"]["io.forge/evidence"];
    assert!(evidence["signature"].is_string(), "{out}");
    let progress = out["progress"].as_array().unwrap();
    assert!(progress.len() >= 5, "progress every 200 ms while held: {out}");
    let counts: Vec<u64> = progress.iter().map(|p| p["progress"].as_u64().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] < w[1]), "progress only grows: {counts:?}");
    assert!(progress[0]["message"].as_str().unwrap().contains(&id), "{out}");
    assert_eq!(out["elicitations"], json!([]), "a client without URL elicitation is not sent to the page");
    assert_eq!(setup.calls("echo"), 1);
    let (_, metrics) = gw.admin_get("/metrics").await;
    let counted: Vec<&str> =
        metrics.lines().filter(|l| l.starts_with("forge_mcp_requests_total{method=\"tools/call\"")).collect();
    assert_eq!(counted, ["forge_mcp_requests_total{method=\"tools/call\",outcome=\"ok\"} 1"], "counted once");
    let used = eventually(Duration::from_secs(5), || async {
        approval_trail(&gw, &id).last() == Some(&("used".to_string(), "allow".to_string()))
    });
    assert!(used.await, "the released call's record names the approval: {:?}", approval_trail(&gw, &id));

    // Denied while held: the refusal ends the stream, and nothing is forwarded.
    let client = approvals_support::approval_client(&gw, &setup.alice(), "echo", json!({"text": "no"}), 1000, &[]);
    let id = approvals_support::pending_request(&gw, &bob).await;
    let path = format!("/api/approvals/{id}/deny");
    assert_eq!(api(&gw, "POST", &path, Some(&bob), r#"{"comment":"nope"}"#).await.0, StatusCode::OK);
    let out = tokio::time::timeout(Duration::from_secs(20), client).await.expect("the client finishes").unwrap();
    assert_eq!(out["error"]["data"]["code"], "approval_denied", "{out}");
    assert_eq!(setup.calls("echo"), 1);
}

/// An upstream answering JSON rather than an event stream: the held client still gets the
/// result on its stream, as one event whose result carries its signed evidence in `_meta`
/// (the JSON answer's evidence headers cannot follow it there).
#[tokio::test]
async fn a_released_json_answer_reaches_the_held_stream_with_its_evidence() {
    let setup = Setup::with_upstream("ts-v1-server.mjs --json");
    let gw = setup.gateway("a", "approvals:\n  hold_timeout: 20s\n  progress_interval: 200ms\n");
    let client = approvals_support::approval_client(&gw, &setup.alice(), "echo", json!({"text": "json"}), 5000, &[]);
    let bob = setup.bob();
    let id = approvals_support::pending_request(&gw, &bob).await;
    assert_eq!(approve(&gw, &id, &bob).await.0, StatusCode::OK);
    let out = tokio::time::timeout(Duration::from_secs(20), client).await.expect("the client finishes").unwrap();
    assert_eq!(out["result"]["content"][0]["text"], "echo: json", "{out}");
    let evidence = &out["result"]["_meta"]["io.forge/evidence"];
    assert!(evidence["signature"].is_string(), "{out}");
    assert!(evidence["forge-evidence"].is_string(), "{out}");
    assert_eq!(setup.calls("echo"), 1);
}

/// A stateful (2025-11-25) session whose client declared URL-mode elicitation: the held call
/// first sends it an `elicitation/create` request (mode url) pointing at the approval page;
/// its answer stays with the gateway; once approved the client hears the elicitation is
/// complete and gets the result. Real TS SDK v1 client and server.
#[tokio::test]
async fn a_stateful_client_with_url_elicitation_is_sent_to_the_page() {
    let setup = Setup::with_upstream("ts-v1-server.mjs");
    let gw = setup.gateway("a", "approvals:\n  hold_timeout: 20s\n  progress_interval: 200ms\n");
    let client = approvals_support::approval_client(
        &gw,
        &setup.alice(),
        "echo",
        json!({"text": "by url"}),
        5000,
        &["--url-elicitation"],
    );
    let bob = setup.bob();
    let id = approvals_support::pending_request(&gw, &bob).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(approve(&gw, &id, &bob).await.0, StatusCode::OK);

    let out = tokio::time::timeout(Duration::from_secs(20), client).await.expect("the client finishes").unwrap();
    assert_eq!(out["result"]["content"][0]["text"], "echo: by url", "{out}");
    let elicitation = &out["elicitations"][0];
    assert_eq!(elicitation["mode"], "url", "{out}");
    assert_eq!(elicitation["url"], format!("{}/approvals/{id}", gw.admin_url), "{out}");
    assert_eq!(elicitation["elicitationId"], id.as_str());
    assert_eq!(out["elicitations"].as_array().unwrap().len(), 1, "asked once: {out}");
    assert_eq!(out["completed"], json!([id]), "told the elicitation is over: {out}");
    assert_eq!(setup.calls("echo"), 1);
    let text = std::fs::read_to_string(setup.dir.path().join("upstream.jsonl")).unwrap();
    let answer = format!("\"forge-approval-{id}\"");
    assert!(!text.contains(&answer), "the elicitation's answer never reached the upstream: {text}");
    let log = std::fs::read_to_string(&gw.stderr_path).unwrap();
    assert!(log.contains("the client answered the approval elicitation"), "the gateway took the answer: {log}");
}

/// The approver sees what the request detectors found (the real test detector plugin,
/// tests/plugins/marker): rule, category and where, never the matched text.
#[tokio::test]
async fn the_approver_sees_the_detectors_findings() {
    let setup = Setup::new();
    let plugins = setup.dir.path().join("plugins");
    plugin_support::install(&plugins, "marker", "marker", "");
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugins-cache");
    let extra = format!(
        "plugins:\n  directory: {}\n  cache_dir: {}\n  limits: {{time: 500ms}}\n  settings:\n    marker:\n      config: {{markers: {{PII-MARKER: pii}}}}\n",
        plugins.display(),
        cache.display()
    );
    let gw = setup.gateway("a", &extra);
    let (alice, bob) = (setup.alice(), setup.bob());
    let flagged = pending_id(&call(&gw, &alice, "echo", json!({"text": "mail PII-MARKER please"})).await);
    let (_, shown) = api(&gw, "GET", &format!("/api/approvals/{flagged}"), Some(&bob), "").await;
    let findings = shown["request"]["findings"].as_array().unwrap_or_else(|| panic!("{shown}"));
    assert_eq!(findings.len(), 1, "{shown}");
    assert_eq!(findings[0]["category"], "pii", "{shown}");
    assert_eq!(findings[0]["pointer"], "/params/arguments/text", "{shown}");
    assert!(!shown["request"]["findings"].to_string().contains("PII-MARKER"), "no matched text: {shown}");
    assert_eq!(shown["request"]["arguments_masked"], json!({"text": "mail *** please"}), "masked where found");

    let clean = pending_id(&call(&gw, &alice, "echo", json!({"text": "mail it please"})).await);
    let (_, shown) = api(&gw, "GET", &format!("/api/approvals/{clean}"), Some(&bob), "").await;
    assert_eq!(shown["request"]["findings"], json!([]), "nothing found, nothing shown: {shown}");
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
    let expired = eventually(Duration::from_secs(5), || async {
        approval_trail(&gw, &id).contains(&("expired".to_string(), "deny".to_string()))
    });
    assert!(expired.await, "the expiry is an evidence record: {:?}", approval_trail(&gw, &id));
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
