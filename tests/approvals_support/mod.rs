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

/// `echo` waits for a human; `add` is rate-limited; `era`'s result asks for an approval no
/// response can wait for; `fetch` is refused once its definition changed since it was
/// pinned; everything else passes.
const BUNDLE: &str = r#"package forge

import rego.v1

default decision := {"allow": true}

decision := {"allow": true, "obligations": {"require_approval": {"required": true, "reason": "echo needs a human"}}} if {
	input.message.direction == "client_to_server"
	input.message.tool.name == "echo"
}

decision := {"allow": true, "obligations": {"require_approval": {"required": true, "reason": "era results need a human"}}} if {
	input.message.direction == "server_to_client"
	input.message.tool.name == "era"
}

decision := {"allow": false, "code": "tool_definition_changed", "reason": "fetch changed since it was pinned"} if {
	input.message.direction == "client_to_server"
	input.message.tool.name == "fetch"
	input.message.tool.pin_status == "changed"
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
    /// In front of the SDK v2 server (stateless 2026-07-28).
    pub fn new() -> Setup {
        Setup::with_upstream("ts-v2-server.mjs")
    }

    /// In front of another peer server of tests/peers, with its arguments
    /// (`ts-v1-server.mjs`: stateful sessions; `ts-v1-server.mjs --json`: JSON answers).
    pub fn with_upstream(script: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pem = dir.path().join("idp.pem");
        std::fs::write(&pem, pair.public_key_pem()).unwrap();
        let bundle = dir.path().join("bundle");
        std::fs::create_dir(&bundle).unwrap();
        std::fs::write(bundle.join("decision.rego"), BUNDLE).unwrap();
        let record = dir.path().join("upstream.jsonl");
        let server = upstream(script, &record);
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

/// A real SDK server of tests/peers, recording what it receives.
fn upstream(script: &str, record: &Path) -> ListeningServer {
    assert!(
        peers().join("node_modules/@modelcontextprotocol/server").exists(),
        "SDK peers not installed: run scripts/test.sh"
    );
    let mut words = script.split_whitespace();
    let mut command = Command::new("node");
    command.arg(peers().join(words.next().expect("a script"))).args(words).arg("--record").arg(record);
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
    /// A replica of the server on this port.
    replica_of: Option<u16>,
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

    /// A replica of `primary` (same password), started and waiting for its primary.
    pub fn start_replica_of(primary: &Redis) -> Redis {
        let mut replica = Self::launch(false).expect("redis-server is installed");
        replica.stop();
        replica.replica_of = Some(primary.port);
        replica.resume();
        replica
    }

    fn launch(tls: bool) -> Option<Redis> {
        if !redis_installed() {
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
        let mut redis = Redis { child: None, port, dir, password_file, tls_cert, replica_of: None };
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
        if let Some(primary) = self.replica_of {
            command.args(["--replicaof", "127.0.0.1", &primary.to_string(), "--masterauth", REDIS_PASSWORD]);
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

    /// Kills the server with SIGKILL and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A plain connection to this server, for the test to look at what is stored.
    pub fn connection(&self) -> redis::Connection {
        let url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}", self.port);
        let client = redis::Client::open(url).unwrap();
        client.get_connection_with_timeout(Duration::from_secs(5)).unwrap()
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
        self.kill();
    }
}

fn redis_installed() -> bool {
    let installed = Command::new("redis-server").arg("--version").output().is_ok();
    if !installed {
        eprintln!("SKIPPED: redis-server is not installed (scripts/test.sh installs it)");
    }
    installed
}

pub const SENTINEL_PASSWORD: &str = "sentinel-password-1";

/// One real Redis Sentinel (`redis-server --sentinel`) on a loopback port, with a password
/// of its own, monitoring `primary` as `forge` with a quorum of one. It declares a primary
/// down after 1 s without an answer, so a failover takes a few seconds.
pub struct Sentinel {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    /// With TLS: the sentinel's self-signed certificate, which clients trust.
    tls_cert: Option<PathBuf>,
}

impl Sentinel {
    pub fn start(primary: &Redis) -> Option<Sentinel> {
        Self::launch(primary, false)
    }

    /// The same, answering clients only over TLS (the primary stays plain TCP).
    pub fn start_tls(primary: &Redis) -> Option<Sentinel> {
        Self::launch(primary, true)
    }

    fn launch(primary: &Redis, tls: bool) -> Option<Sentinel> {
        if !redis_installed() {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("password"), format!("{SENTINEL_PASSWORD}\n")).unwrap();
        let (listen, tls_cert) = match tls {
            false => (format!("port {port}\n"), None),
            true => {
                let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
                let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
                std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
                std::fs::write(&cert, certified.cert.pem()).unwrap();
                let listen = format!(
                    "port 0\ntls-port {port}\ntls-auth-clients no\ntls-cert-file {c}\ntls-key-file {k}\ntls-ca-cert-file {c}\n",
                    c = cert.display(),
                    k = key.display()
                );
                (listen, Some(cert))
            }
        };
        // Sentinel rewrites its configuration file, so it gets one of its own.
        let conf = dir.path().join("sentinel.conf");
        let text = format!(
            "{listen}bind 127.0.0.1\ndir {dir}\nrequirepass {SENTINEL_PASSWORD}\n\
             sentinel monitor forge 127.0.0.1 {primary} 1\n\
             sentinel auth-pass forge {REDIS_PASSWORD}\n\
             sentinel down-after-milliseconds forge 1000\n\
             sentinel failover-timeout forge 5000\n",
            dir = dir.path().display(),
            primary = primary.port,
        );
        std::fs::write(&conf, text).unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the sentinel did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Sentinel { child, port, dir, tls_cert })
    }

    fn command(&self, args: &[&str]) -> redis::Value {
        let url = format!("redis://:{SENTINEL_PASSWORD}@127.0.0.1:{}", self.port);
        let mut conn = redis::Client::open(url).unwrap().get_connection_with_timeout(Duration::from_secs(5)).unwrap();
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query(&mut conn).unwrap()
    }

    /// The port of the server the sentinel currently names primary.
    pub fn primary_port(&self) -> u16 {
        let redis::Value::Array(addr) = self.command(&["SENTINEL", "get-master-addr-by-name", "forge"]) else {
            panic!("the sentinel names no primary")
        };
        let port: String = redis::from_redis_value(addr[1].clone()).unwrap();
        port.parse().unwrap()
    }

    /// Waits until the sentinel has seen `count` replicas of the primary, the precondition
    /// of a failover.
    pub fn wait_for_replicas(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let redis::Value::Array(replicas) = self.command(&["SENTINEL", "replicas", "forge"]) else { panic!() };
            if replicas.len() >= count {
                return;
            }
            assert!(Instant::now() < deadline, "the sentinel never saw the replica");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `state:` section that points a replica at the primary through this sentinel.
    pub fn state_yaml(&self, primary: &Redis, replica: &str) -> String {
        let (url, ca) = match &self.tls_cert {
            Some(cert) => (format!("rediss://localhost:{}", self.port), format!("      ca: {}\n", cert.display())),
            None => (format!("redis://127.0.0.1:{}", self.port), String::new()),
        };
        format!(
            "state:\n  backend: redis\n  redis:\n    sentinel:\n      master_name: forge\n      urls: [{url}]\n{ca}      password_file: {}\n    password_file: {}\n    replica_id: {replica}\n",
            self.dir.path().join("password").display(),
            primary.password_file.display()
        )
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `state:` section with its `ca:` lines left out: a replica that trusts no private CA.
pub fn without_ca(yaml: &str) -> String {
    yaml.lines().filter(|l| !l.trim_start().starts_with("ca:")).map(|l| format!("{l}\n")).collect()
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

/// The gateway's evidence records so far, in log order (the log's writer thread appends
/// them shortly after each answer, so callers wait with [`eventually`]).
pub fn evidence(gw: &Gateway) -> Vec<Value> {
    let dir = gw.state.path().join("evidence");
    let mut segments: Vec<PathBuf> =
        std::fs::read_dir(&dir).map(|entries| entries.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    segments.retain(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("segment-")));
    segments.sort();
    let text: String = segments.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The records about approval `id`: the call's own and the approval's, as (event, decision).
pub fn approval_trail(gw: &Gateway, id: &str) -> Vec<(String, String)> {
    let records = evidence(gw);
    let about = records.iter().filter(|r| r["approval"]["id"] == id);
    about
        .map(|r| (r["approval"]["event"].as_str().unwrap().to_string(), r["decision"].as_str().unwrap().to_string()))
        .collect()
}

/// The SDK v1 peer making one call with a progress token (tests/peers/approval-client.mjs);
/// resolves to what it printed.
pub fn approval_client(
    gw: &Gateway,
    token: &str,
    tool: &str,
    arguments: Value,
    timeout_ms: u64,
    extra: &[&str],
) -> tokio::task::JoinHandle<Value> {
    let mut command = tokio::process::Command::new("node");
    command
        .arg(peers().join("approval-client.mjs"))
        .args(["--url", &gw.mcp_url, "--token", token, "--tool", tool])
        .args(["--arguments", &arguments.to_string(), "--timeout", &timeout_ms.to_string()])
        .arg("--ca")
        .arg(gw.ca_path())
        .args(extra)
        .kill_on_drop(true)
        .stdout(Stdio::piped());
    tokio::spawn(async move {
        let out = command.output().await.expect("node runs");
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.trim()).unwrap_or_else(|_| panic!("the client printed no result: {text}"))
    })
}

/// The id of the one pending approval request, once there is one.
pub async fn pending_request(gw: &Gateway, approver: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let (_, listed) = api(gw, "GET", "/api/approvals", Some(approver), "").await;
        let pending = listed["approvals"].as_array().into_iter().flatten().find(|a| a["status"] == "pending");
        if let Some(id) = pending.and_then(|a| a["request"]["id"].as_str()) {
            return id.to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no approval request became pending")
}
