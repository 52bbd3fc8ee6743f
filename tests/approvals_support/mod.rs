//! What the approval and state tests share: a real ES256 issuer for callers' and approvers'
//! tokens, a small policy bundle that asks for approval and attaches a rate limit, the real
//! SDK v2 server as the upstream, and a real `redis-server` on a loopback port.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::common::{self, Gateway, ListeningServer, Reply};

pub const ISSUER: &str = "https://idp.test";
pub const RESOURCE: &str = "https://gw.test/mcp";
/// The configured rate limit on `add`: a whole burst, and nothing more for an hour.
pub const ADD_LIMIT: u64 = 200;

/// `echo` waits for a human; `add` is rate-limited; everything else passes.
const BUNDLE: &str = r#"package forge

import rego.v1

default decision := {"allow": true}

decision := {"allow": true, "obligations": {"require_approval": {"required": true, "reason": "echo needs a human"}}} if {
	input.message.direction == "client_to_server"
	input.message.tool.name == "echo"
}

decision := {"allow": true, "obligations": {"rate_limit": {"key": "add", "limit": 200, "period_seconds": 3600}}} if {
	input.message.direction == "client_to_server"
	input.message.tool.name == "add"
}
"#;

/// An issuer, a bundle, the upstream, and gateways configured with them.
pub struct Setup {
    pub dir: tempfile::TempDir,
    key: EncodingKey,
    pem: PathBuf,
    bundle: PathBuf,
    record: PathBuf,
    server: ListeningServer,
}

impl Setup {
    pub fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pem = dir.path().join("idp.pem");
        std::fs::write(&pem, pair.public_key_pem()).unwrap();
        let bundle = dir.path().join("bundle");
        std::fs::create_dir(&bundle).unwrap();
        std::fs::write(bundle.join("decision.rego"), BUNDLE).unwrap();
        let record = dir.path().join("upstream.jsonl");
        let server = upstream(&record);
        Setup { key: EncodingKey::from_ec_der(pair.serialized_der()), dir, pem, bundle, record, server }
    }

    /// A gateway in front of the upstream with `config(name, extra)`.
    pub fn gateway(&self, name: &str, extra: &str) -> Gateway {
        self.start(&self.config(name, extra))
    }

    pub fn start(&self, config: &Path) -> Gateway {
        Gateway::start(&["--upstream", &self.server.url("/mcp"), "--config", config.to_str().unwrap()])
    }

    /// How many `tools/call` requests for `tool` the upstream has received.
    pub fn calls(&self, tool: &str) -> usize {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["method"] == "tools/call" && v["params"]["name"] == tool)
            .count()
    }

    /// A config file for one replica; `extra` is appended as YAML (a `state:` section, …).
    pub fn config(&self, name: &str, extra: &str) -> PathBuf {
        let yaml = format!(
            "auth:\n  mode: optional\n  resource: {RESOURCE}\n  issuers:\n    - issuer: {ISSUER}\n      pem: {}\npolicy:\n  bundle: {}\n{extra}",
            self.pem.display(),
            self.bundle.display()
        );
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        common::write_config(&dir, &yaml)
    }

    pub fn token(&self, subject: &str, scope: &str) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let claims =
            json!({"iss": ISSUER, "sub": subject, "aud": RESOURCE, "iat": now, "exp": now + 600, "scope": scope});
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.key).unwrap()
    }

    /// alice calls tools; bob approves; carol is signed in but no approver.
    pub fn alice(&self) -> String {
        self.token("alice", "mcp:tools")
    }
    pub fn bob(&self) -> String {
        self.token("bob", "forge:approve")
    }
    pub fn carol(&self) -> String {
        self.token("carol", "mcp:tools forge:approver")
    }
}

fn peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// The real TypeScript SDK v2 server (stateless 2026-07-28), recording what it receives.
fn upstream(record: &Path) -> ListeningServer {
    assert!(
        peers().join("node_modules/@modelcontextprotocol/server").exists(),
        "SDK peers not installed: run scripts/test.sh"
    );
    let mut command = Command::new("node");
    command.arg(peers().join("ts-v2-server.mjs")).arg("--record").arg(record);
    ListeningServer::start(command)
}

/// A stateless 2026-07-28 `tools/call`.
pub async fn call(gw: &Gateway, token: &str, tool: &str, arguments: Value) -> Value {
    call_with(gw, token, tool, arguments).await.json()
}

pub async fn call_with(gw: &Gateway, token: &str, tool: &str, arguments: Value) -> Reply {
    post_call(gw, token, tool, arguments, "application/json").await
}

/// The call as a client that reads streaming answers sends it; the answer to it, from a
/// JSON body or from the SSE event that carries it.
pub async fn call_streaming(gw: &Gateway, token: &str, tool: &str, arguments: Value) -> Value {
    let reply = post_call(gw, token, tool, arguments, "application/json, text/event-stream").await;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    if !text.starts_with('{') {
        let data = text.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim);
        let answer = data.filter_map(|d| serde_json::from_str::<Value>(d).ok()).find(|v| v["id"] == 7);
        return answer.unwrap_or_else(|| panic!("no answer in the stream: {text}"));
    }
    reply.json()
}

async fn post_call(gw: &Gateway, token: &str, tool: &str, arguments: Value, accept: &str) -> Reply {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": tool, "arguments": arguments,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let auth = format!("Bearer {token}");
    let headers = [
        ("accept", accept),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", tool),
        ("authorization", auth.as_str()),
    ];
    gw.client().post("/mcp", &body.to_string(), &headers).await
}

/// The approval id of a pending answer (asserting it is one).
pub fn pending_id(answer: &Value) -> String {
    assert_eq!(answer["error"]["code"], -32018, "expected a pending approval: {answer}");
    assert_eq!(answer["error"]["data"]["code"], "approval_pending");
    answer["error"]["data"]["approval_id"].as_str().unwrap().to_string()
}

pub fn echoed(answer: &Value) -> String {
    answer["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no result: {answer}")).to_string()
}

/// One call of the approvals JSON API on the admin listener.
pub async fn api(gw: &Gateway, method: &str, path: &str, token: Option<&str>, body: &str) -> (http::StatusCode, Value) {
    use bytes::Bytes;
    use http_body_util::Full;
    let addr: std::net::SocketAddr = gw.admin_url.trim_start_matches("http://").parse().unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = http::Request::builder().method(method).uri(path).header("host", "admin");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let (status, _, bytes) = common::send_http1(stream, request).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

pub async fn approve(gw: &Gateway, id: &str, approver: &str) -> (http::StatusCode, Value) {
    api(gw, "POST", &format!("/api/approvals/{id}/approve"), Some(approver), r#"{"comment":"looks fine"}"#).await
}

/// A real `redis-server` on a free loopback port, with a password and an append-only file
/// in its own directory, so it can be stopped and started again with its data.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub password_file: PathBuf,
    /// With TLS: the server's self-signed certificate, which clients trust.
    tls_cert: Option<PathBuf>,
}

pub const REDIS_PASSWORD: &str = "test-password-1";

impl Redis {
    /// `None` (the test then skips) when redis-server is not installed.
    pub fn start() -> Option<Redis> {
        Self::launch(false)
    }

    /// The same, serving only TLS with a certificate for `localhost` made here.
    pub fn start_tls() -> Option<Redis> {
        Self::launch(true)
    }

    fn launch(tls: bool) -> Option<Redis> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            eprintln!("SKIPPED: redis-server is not installed (scripts/test.sh installs it)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, format!("{REDIS_PASSWORD}\n")).unwrap();
        let tls_cert = tls.then(|| {
            let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
            std::fs::write(dir.path().join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
            let cert = dir.path().join("cert.pem");
            std::fs::write(&cert, certified.cert.pem()).unwrap();
            cert
        });
        let mut redis = Redis { child: None, port, dir, password_file, tls_cert };
        redis.resume();
        Some(redis)
    }

    /// (Re)starts the server on the same port and data directory, and waits for it.
    pub fn resume(&mut self) {
        let mut command = Command::new("redis-server");
        match &self.tls_cert {
            Some(cert) => {
                let key = self.dir.path().join("key.pem");
                command.args(["--port", "0", "--tls-port", &self.port.to_string(), "--tls-auth-clients", "no"]);
                command
                    .arg("--tls-cert-file")
                    .arg(cert)
                    .arg("--tls-key-file")
                    .arg(key)
                    .arg("--tls-ca-cert-file")
                    .arg(cert);
            }
            None => {
                command.args(["--port", &self.port.to_string()]);
            }
        }
        let child = command
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--requirepass", REDIS_PASSWORD])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM: it finishes its append-only file) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }

    /// The `state:` section that points a replica at this server.
    pub fn state_yaml(&self, replica: &str) -> String {
        let (url, ca) = match &self.tls_cert {
            Some(cert) => (format!("rediss://localhost:{}", self.port), format!("    ca: {}\n", cert.display())),
            None => (format!("redis://127.0.0.1:{}", self.port), String::new()),
        };
        format!(
            "state:\n  backend: redis\n  redis:\n    url: {url}\n{ca}    password_file: {}\n    replica_id: {replica}\n",
            self.password_file.display()
        )
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` every 50 ms for up to `within`.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
