//! The approval page in a real headless browser (Debian chromium driven by playwright-core,
//! JavaScript disabled): a call waiting on replica A is approved through replica B's page,
//! both sharing a real redis-server, and the identical retry completes on A.

mod approvals_support;
mod common;

use std::path::Path;
use std::process::Command;

use approvals_support::{call, echoed, pending_id, Redis, Setup};
use serde_json::{json, Value};

fn browser_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Why the browser cannot run here, if it cannot.
fn browser_missing() -> Option<&'static str> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("Debian chromium is not installed (scripts/test.sh installs it)");
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        return Some("playwright-core is not installed (tests/browser/install.sh)");
    }
    None
}

fn run_page(admin_url: &str, token: &str, id: &str, decision: &str, comment: &str) -> Value {
    let out = Command::new("timeout")
        .args(["60", "node"])
        .arg(browser_dir().join("approve-page.mjs"))
        .args(["--url", admin_url, "--token", token, "--id", id, "--decision", decision, "--comment", comment])
        .output()
        .expect("node runs");
    assert!(out.status.success(), "browser script failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test]
async fn a_call_waiting_on_one_replica_is_approved_on_the_others_page() {
    if let Some(why) = browser_missing() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let Some(redis) = Redis::start() else { return };
    let setup = Setup::new();
    let a = setup.gateway("a", &redis.state_yaml("a"));
    let b = setup.gateway("b", &redis.state_yaml("b"));
    let alice = setup.alice();
    let id = pending_id(&call(&a, &alice, "echo", json!({"text": "via the page", "api_token": "sk-live-123"})).await);

    let bob = setup.bob();
    let seen = run_page(&b.admin_url, &bob, &id, "approve", "checked by a human");
    assert_eq!(seen["unauthenticatedStatus"], 401, "{seen}");
    assert_eq!(seen["loginShown"], true);
    assert_eq!(seen["listed"], true);
    assert_eq!(seen["statusBefore"], "pending");
    assert_eq!(seen["caller"], "alice@https://idp.test");
    assert_eq!(seen["tool"], "echo");
    assert_eq!(seen["arguments"], json!({"text": "via the page", "api_token": "***"}), "secrets are masked");
    assert_eq!(seen["statusAfter"], "approved");
    assert_eq!(seen["decidedBy"], "bob@https://idp.test");
    assert_eq!(seen["externalRequests"], json!([]), "the page loads nothing from elsewhere");

    let done = call(&a, &alice, "echo", json!({"text": "via the page", "api_token": "sk-live-123"})).await;
    assert_eq!(echoed(&done), "echo: via the page");
    assert_eq!(setup.calls("echo"), 1);
}

/// Form posts of the page without a browser: a non-approver's sign-in sets no cookie, and a
/// decision posted from another origin is refused even with a valid approver's cookie.
#[tokio::test]
async fn sign_in_and_cross_origin_forms_are_checked() {
    let setup = Setup::new();
    let gw = setup.gateway("a", "");
    let id = pending_id(&call(&gw, &setup.alice(), "echo", json!({"text": "x"})).await);

    let (status, headers, page) = form(&gw, "/approvals/login", &format!("token={}", setup.carol()), &[]).await;
    assert_eq!(status, 403, "{page}");
    assert!(!headers.contains_key("set-cookie"));
    assert!(page.contains("neither the `forge:approve` scope"), "{page}");

    let (status, headers, _) = form(&gw, "/approvals/login", &format!("token={}", setup.bob()), &[]).await;
    assert_eq!(status, 303);
    let cookie = headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let decide = format!("/approvals/{id}");
    let evil = [("cookie", cookie.as_str()), ("origin", "http://evil.example")];
    let (status, _, _) = form(&gw, &decide, "decision=approve&comment=", &evil).await;
    assert_eq!(status, 403, "a cross-origin form is refused");
    let (_, shown) = approvals_support::api(&gw, "GET", &format!("/api/approvals/{id}"), Some(&setup.bob()), "").await;
    assert_eq!(shown["status"], "pending");

    let (status, headers, _) = form(&gw, &decide, "decision=deny&comment=no", &[("cookie", cookie.as_str())]).await;
    assert_eq!(status, 303, "the same form from the page itself works");
    assert_eq!(headers["location"], decide.as_str());
    let (_, shown) = approvals_support::api(&gw, "GET", &format!("/api/approvals/{id}"), Some(&setup.bob()), "").await;
    assert_eq!(shown["status"], "denied");
}

async fn form(gw: &common::Gateway, path: &str, body: &str, extra: &[(&str, &str)]) -> (u16, http::HeaderMap, String) {
    let addr: std::net::SocketAddr = gw.admin_url.trim_start_matches("http://").parse().unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = http::Request::post(path)
        .header("host", addr.to_string())
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    let request = request.body(http_body_util::Full::new(bytes::Bytes::from(body.to_string()))).unwrap();
    let (status, headers, bytes) = common::send_http1(stream, request).await;
    (status.as_u16(), headers, String::from_utf8_lossy(&bytes).into_owned())
}
