//! The trust policy in the running gateway: an unsigned bundle stops it at start, a
//! tampered or untrusted hot reload leaves the last good bundle in force (and says why in
//! the log, the metrics and /readyz), a properly signed one takes effect, and without a
//! trust policy the gateway says it is in development mode.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{stand_in, Behaviour, Gateway, StandIn};
use forge::signing::SigningKey;
use serde_json::{json, Value};

const DENY_RM: &str = r#"package forge

import rego.v1

default decision := {"allow": true}

decision := {"allow": false, "code": "tool_forbidden", "reason": "rm is never allowed"} if {
	input.message.method == "tools/call"
	input.message.tool.name == "rm"
}
"#;

const ALLOW_ALL: &str = "package forge\n\nimport rego.v1\n\ndecision := {\"allow\": true}\n";

const OK: &str = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"fine"}]}}"#;

struct Setup {
    dir: tempfile::TempDir,
    key: SigningKey,
    config: PathBuf,
}

impl Setup {
    /// A bundle denying `rm`, and a config trusting `key` for bundles when `trusted`.
    fn new(trusted: bool) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        std::fs::create_dir(dir.path().join("bundle")).unwrap();
        std::fs::write(dir.path().join("bundle/decision.rego"), DENY_RM).unwrap();
        std::fs::write(dir.path().join("bundles.pub.pem"), key.public_key().to_pem()).unwrap();
        let mut yaml = format!("policy:\n  bundle: {}\n", dir.path().join("bundle").display());
        if trusted {
            yaml += &format!(
                "trust:\n  bundles:\n    keys:\n      - file: {}\n",
                dir.path().join("bundles.pub.pem").display()
            );
        }
        let config = common::write_config(dir.path(), &yaml);
        Setup { dir, key, config }
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn sign(&self, key: &SigningKey) {
        forge::provenance::sign_bundle(&self.bundle(), key, None, None).unwrap();
    }

    async fn start(&self) -> (Gateway, StandIn) {
        let upstream = stand_in(Behaviour::Respond { content_type: "application/json", body: OK.into() }).await;
        let gw = Gateway::start(&["--upstream", &upstream.url, "--config", self.config.to_str().unwrap()]);
        (gw, upstream)
    }
}

fn call(tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": {}}}).to_string()
}

async fn readyz(gw: &Gateway) -> Value {
    serde_json::from_str(&gw.admin_get("/readyz").await.1).unwrap()
}

/// /readyz once `check` holds for it, or a failure naming what it showed after ten seconds.
async fn readyz_until(gw: &Gateway, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = readyz(gw).await;
        if check(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: /readyz shows {status:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn last_error(status: &Value) -> &str {
    status["policy"]["last_error"].as_str().unwrap_or("")
}

async fn is_refused(gw: &Gateway, tool: &str) -> bool {
    gw.client().post("/mcp", &call(tool), &[]).await.json()["error"]["code"] == -32017
}

#[test]
fn with_a_trust_policy_an_unsigned_bundle_stops_the_gateway_at_start() {
    let setup = Setup::new(true);
    let mut child = Command::new(env!("CARGO_BIN_EXE_forge"))
        .env("FORGE_PLUGINS_SHIPPED", "false")
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9/mcp",
        ])
        .arg("--config")
        .arg(&setup.config)
        .arg("--state-dir")
        .arg(setup.dir.path().join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the gateway kept running with an unsigned bundle");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("loading the policy bundle"), "{stderr}");
    assert!(stderr.contains("is refused (unsigned): there is no signature"), "{stderr}");
}

#[tokio::test]
async fn a_tampered_reload_keeps_the_last_good_bundle_and_a_signed_one_takes_over() {
    let setup = Setup::new(true);
    setup.sign(&setup.key);
    let (gw, upstream) = setup.start().await;
    let status = readyz(&gw).await;
    assert_eq!(status["trust"]["mode"], "enforced");
    assert_eq!(status["trust"]["bundle_signers"], json!([setup.key.key_id()]));
    assert_eq!(status["policy"]["provenance"]["signer"], setup.key.key_id());
    let first_statement = status["policy"]["provenance"]["statement_sha256"].clone();
    assert!(is_refused(&gw, "rm").await);

    // An edit nobody signed: refused, and `rm` stays refused.
    std::fs::write(setup.bundle().join("decision.rego"), ALLOW_ALL).unwrap();
    let status = readyz_until(&gw, "the edit is refused", |s| last_error(s).contains("(file_changed)")).await;
    assert_eq!(status["ready"], true, "the last good bundle still serves");
    assert_eq!(status["trust"]["last_rejection"]["reason"], "file_changed");
    assert_eq!(status["policy"]["provenance"]["statement_sha256"], first_statement);
    assert!(is_refused(&gw, "rm").await);
    assert!(gw.log_containing("refused by the trust policy").contains("file_changed"));
    let series = r#"forge_provenance_rejections_total{kind="policy-bundle",reason="file_changed"}"#;
    assert!(gw.metric(series).await >= 1.0);

    // Signed, but by a key the trust policy does not name.
    setup.sign(&SigningKey::generate().unwrap());
    readyz_until(&gw, "the stranger's signature is refused", |s| last_error(s).contains("(untrusted_signer)")).await;
    assert!(is_refused(&gw, "rm").await);

    // The same edit signed by the trusted key takes effect.
    setup.sign(&setup.key);
    let status = readyz_until(&gw, "the signed bundle loads", |s| s["policy"]["last_error"].is_null()).await;
    assert_ne!(status["policy"]["provenance"]["statement_sha256"], first_statement);
    assert!(!is_refused(&gw, "rm").await);
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 1);

    // A file the policy loader ignores still breaks the signature.
    std::fs::write(setup.bundle().join("README.md"), "added later").unwrap();
    readyz_until(&gw, "the added file is refused", |s| last_error(s).contains("(file_added)")).await;
    assert!(!is_refused(&gw, "rm").await, "the last good bundle stays in force");
}

#[tokio::test]
async fn without_a_trust_policy_the_gateway_warns_that_unsigned_content_loads() {
    let setup = Setup::new(false);
    let (gw, _upstream) = setup.start().await;
    assert!(gw.log_containing("development mode").contains("unsigned policy bundles and plugins load"));
    let status = readyz(&gw).await;
    assert_eq!(status["trust"]["mode"], "development");
    assert!(status["trust"]["warning"].as_str().unwrap().contains("development mode"));
    assert!(status["policy"]["provenance"].is_null());
    assert_eq!(gw.metric("forge_provenance_development_mode").await, 1.0);
    assert!(is_refused(&gw, "rm").await, "the unsigned bundle is in force");
}

#[tokio::test]
async fn with_a_trust_policy_a_signed_bundle_starts_and_says_so() {
    let setup = Setup::new(true);
    setup.sign(&setup.key);
    let (gw, _upstream) = setup.start().await;
    let logs = gw.log_containing("trust policy");
    assert!(logs.contains("only signed policy bundles and plugins load"), "{logs}");
    assert!(!logs.contains("development mode"), "{logs}");
    assert_eq!(gw.metric("forge_provenance_development_mode").await, 0.0);
}
