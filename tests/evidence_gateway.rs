//! Evidence from the running gateway in front of a real MCP SDK server (TypeScript SDK v1):
//! signed JSON answers and SSE results that an independent implementation (PyPI
//! `http-message-signatures` + `cryptography`) verifies, the log exported, verified and
//! replayed through the CLI, and recovery after `kill -9`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{Gateway, ListeningServer, Reply, TlsClient};
use http::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const BUNDLE: &str = r#"package forge

import rego.v1

default decision := {"allow": true}

decision := {"allow": false, "code": "tool_forbidden", "reason": "the forbidden tool is never allowed"} if {
	input.message.direction == "client_to_server"
	input.message.tool.name == "forbidden"
}
"#;

/// Verifies a saved response (`response FILE`) or every SSE result's `_meta` evidence
/// (`sse FILE`) with the public key `KEY`, without any of Forge's code.
const VERIFIER: &str = r#"
import json, sys
from types import SimpleNamespace
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from http_message_signatures import HTTPMessageVerifier, HTTPSignatureKeyResolver, algorithms

mode, key_path, path = sys.argv[1:4]
key = load_pem_public_key(open(key_path, "rb").read())

class Keys(HTTPSignatureKeyResolver):
    def resolve_public_key(self, key_id):
        return key

verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=Keys())

def check(status, headers, body, required):
    message = SimpleNamespace(status_code=status, headers=headers, request=None)
    verifier.verify(message, require_components=required, body=body)

raw = open(path, "rb").read()
if mode == "response":
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    check(status, headers, body, ("@status", "content-digest", "forge-evidence"))
    print("ok 1")
else:
    count = 0
    for line in raw.decode().splitlines():
        if not line.startswith("data: "):
            continue
        message = json.loads(line[6:])
        meta = message.get("result", {}).get("_meta", {})
        entry = meta.pop("io.forge/evidence", None)
        if entry is None:
            continue
        if not meta:
            del message["result"]["_meta"]
        canonical = json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {k: entry[k] for k in ("content-digest", "forge-evidence", "signature-input", "signature")}
        check(200, headers, canonical, ("content-digest", "forge-evidence"))
        count += 1
    print(f"ok {count}")
"#;

fn peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

fn python() -> PathBuf {
    let python = peers().join(".venv/bin/python");
    assert!(python.exists(), "Python peers not installed: run scripts/test.sh (tests/peers/install.sh)");
    python
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    public_key: PathBuf,
    _server: ListeningServer,
    gw: Gateway,
}

/// A TS SDK v1 server (JSON answers with `json`), the gateway in front with a fixed key and
/// its evidence directory in `dir`, and `extra` added to the `evidence:` section.
fn setup(json_answers: bool, extra: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(bundle.join("decision.rego"), BUNDLE).unwrap();
    let key = forge::signing::SigningKey::generate().unwrap();
    let (private_key, public_key) = (dir.path().join("evidence-key.pem"), dir.path().join("evidence-key.pub.pem"));
    std::fs::write(&private_key, key.to_pem()).unwrap();
    std::fs::write(&public_key, key.public_key().to_pem()).unwrap();
    // The bundle is signed and only its signer trusted, so records name a verified bundle.
    let signed = forge(&["bundle", "sign", bundle.to_str().unwrap(), "--key", private_key.to_str().unwrap()]);
    assert!(signed.status.success(), "{}", text(&signed));
    let config = common::write_config(
        dir.path(),
        &format!(
            "policy:\n  bundle: {}\ntrust:\n  bundles:\n    keys: [{{file: {}}}]\n\
             evidence:\n  key: {}\n  dir: {}\n  gateway: {{name: gw-it}}\n{extra}",
            bundle.display(),
            public_key.display(),
            private_key.display(),
            dir.path().join("evidence").display()
        ),
    );
    let mut command = Command::new("node");
    command.arg(peers().join("ts-v1-server.mjs"));
    if json_answers {
        command.arg("--json");
    }
    let server = ListeningServer::start(command);
    let gw = start_gateway(&server, &config);
    Setup { dir, config, public_key, _server: server, gw }
}

fn start_gateway(server: &ListeningServer, config: &Path) -> Gateway {
    Gateway::start(&["--upstream", &server.url("/mcp"), "--config", config.to_str().unwrap()])
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"evidence-test","version":"1"}}}"#;

/// Opens a session; returns its id.
async fn initialize(client: &TlsClient) -> String {
    let reply = client.post("/mcp", INITIALIZE, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
    let session = reply.headers.get("mcp-session-id").expect("a session").to_str().unwrap().to_string();
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let reply = client.post("/mcp", initialized, &session_headers(&session)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert!(reply.headers.get("forge-evidence").is_none(), "a notification has no answer to sign");
    session
}

fn session_headers(session: &str) -> Vec<(&'static str, &str)> {
    vec![("mcp-session-id", session), ("mcp-protocol-version", "2025-06-18")]
}

fn call(id: u64, tool: &str, text: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {"text": text}}})
        .to_string()
}

/// The reply as `curl -i` would save it.
fn save(dir: &Path, name: &str, reply: &Reply) -> PathBuf {
    let mut text = format!("HTTP/1.1 {}\r\n", reply.status).into_bytes();
    for (name, value) in &reply.headers {
        text.extend_from_slice(format!("{name}: {}\r\n", value.to_str().unwrap()).as_bytes());
    }
    text.extend_from_slice(b"\r\n");
    text.extend_from_slice(&reply.body);
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn python_verifies(mode: &str, key: &Path, file: &Path) -> Result<String, String> {
    let out = Command::new(python()).arg("-c").arg(VERIFIER).arg(mode).arg(key).arg(file).output().unwrap();
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

fn forge(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forge"));
    command.args(args).env_remove("FORGE_STATE_DIR");
    let mut child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // Bounded: the CLI reads files and exits.
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("forge {args:?} did not finish within 30 s");
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn rewrite(path: &Path, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {text}");
    let changed = path.with_extension("tampered");
    std::fs::write(&changed, text.replacen(from, to, 1)).unwrap();
    changed
}

#[tokio::test]
async fn json_answers_are_signed_and_an_independent_implementation_verifies_them() {
    let s = setup(true, "");
    let client = s.gw.client();
    let session = initialize(&client).await;
    let public = forge::signing::PublicKey::load(&s.public_key).unwrap();
    let (status, ready) = s.gw.admin_get("/readyz").await;
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!((status, &ready["evidence"]), (StatusCode::OK, &json!({"key_id": public.key_id(), "healthy": true})));

    let reply = client.post("/mcp", &call(2, "echo", "hello"), &session_headers(&session)).await;
    assert_eq!(reply.json()["result"]["content"][0]["text"], "echo: hello");
    let evidence = reply.headers.get("forge-evidence").unwrap().to_str().unwrap();
    assert!(evidence.contains("decision=\"allow\"") && evidence.contains("gateway=\"gw-it\""), "{evidence}");
    let input = reply.headers.get("signature-input").unwrap().to_str().unwrap();
    assert!(input.starts_with("forge=(\"@status\" \"content-digest\" \"forge-evidence\");created="), "{input}");
    assert!(input.ends_with(";alg=\"ed25519\""), "{input}");
    assert!(input.contains(&format!(";keyid=\"{}\"", public.key_id())), "{input}");
    let saved = save(s.dir.path(), "echo.http", &reply);
    assert_eq!(python_verifies("response", &s.public_key, &saved), Ok("ok 1".into()));
    let key = s.public_key.to_str().unwrap();
    let out = forge(&["evidence", "verify-response", "--key", key, saved.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    // A changed body or status is caught by both implementations.
    let body = rewrite(&saved, "echo: hello", "echo: HELLO");
    assert!(python_verifies("response", &s.public_key, &body).unwrap_err().contains("Content-Digest"));
    let out = forge(&["evidence", "verify-response", "--key", key, body.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out).contains("does not match its Content-Digest"), "{}", text(&out));
    let status = rewrite(&saved, "HTTP/1.1 200 OK", "HTTP/1.1 201 Created");
    assert!(python_verifies("response", &s.public_key, &status).is_err());
    let out = forge(&["evidence", "verify-response", "--key", key, status.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out).contains("does not verify"), "{}", text(&out));

    // A refusal is evidence too, signed the same way.
    let reply = client.post("/mcp", &call(3, "forbidden", "x"), &session_headers(&session)).await;
    assert_eq!(reply.json()["error"]["data"]["code"], "tool_forbidden");
    let evidence = reply.headers.get("forge-evidence").unwrap().to_str().unwrap();
    assert!(evidence.contains("decision=\"deny\""), "{evidence}");
    let saved = save(s.dir.path(), "forbidden.http", &reply);
    assert_eq!(python_verifies("response", &s.public_key, &saved), Ok("ok 1".into()));
}

#[tokio::test]
async fn sse_results_carry_signed_evidence_in_meta_unless_switched_off() {
    let s = setup(false, "");
    let client = s.gw.client();
    let session = initialize(&client).await;
    let reply = client.post("/mcp", &call(2, "echo", "über streams"), &session_headers(&session)).await;
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(body.contains("\"io.forge/evidence\""), "{body}");
    let saved = s.dir.path().join("echo.sse");
    std::fs::write(&saved, &body).unwrap();
    assert_eq!(python_verifies("sse", &s.public_key, &saved), Ok("ok 1".into()));
    let tampered = rewrite(&saved, "über streams", "unter streams");
    assert!(python_verifies("sse", &s.public_key, &tampered).is_err());

    let off = setup(false, "  sse_meta: false\n");
    let client = off.gw.client();
    let session = initialize(&client).await;
    let reply = client.post("/mcp", &call(2, "echo", "plain"), &session_headers(&session)).await;
    let body = String::from_utf8_lossy(&reply.body);
    assert!(body.contains("echo: plain") && !body.contains("io.forge/evidence"), "{body}");
}

fn stop(gw: &mut Gateway) {
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(Duration::from_secs(15)), Some(0), "{}", gw.logs());
}

fn records(pack: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(pack.join("records.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn the_log_is_exported_verified_and_replayed_through_the_cli() {
    let mut s = setup(true, "");
    let client = s.gw.client();
    let session = initialize(&client).await;
    let echo = call(2, "echo", "audit me");
    client.post("/mcp", &echo, &session_headers(&session)).await;
    client.post("/mcp", &call(3, "forbidden", "x"), &session_headers(&session)).await;
    stop(&mut s.gw);

    let pack = s.dir.path().join("pack");
    let config = s.config.to_str().unwrap();
    let out = forge(&["evidence", "export", "--config", config, "--since", "1h", "-o", pack.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("exported 3 records"), "{}", text(&out));
    let key = s.public_key.to_str().unwrap();
    let out = forge(&["evidence", "verify", pack.to_str().unwrap(), "--key", key]);
    assert!(out.status.success(), "{}", text(&out));

    let records = records(&pack);
    let methods: Vec<&str> = records.iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["initialize", "tools/call", "tools/call"]);
    let (allowed, refused) = (&records[1], &records[2]);
    assert_eq!((allowed["name"].as_str(), allowed["decision"].as_str()), (Some("echo"), Some("allow")));
    // The digest of the request is of the bytes as forwarded: here, as sent.
    assert_eq!(allowed["request_sha256"], forge::evidence::record::hex(&Sha256::digest(echo.as_bytes())));
    assert_eq!(allowed["gateway"]["name"], "gw-it");
    assert_eq!(allowed["decisions"].as_array().unwrap().len(), 2, "the call and its result");
    let public = forge::signing::PublicKey::load(&s.public_key).unwrap();
    assert_eq!(allowed["decisions"][0]["bundle_signature"]["signer"], public.key_id().as_str());
    assert_eq!(refused["decision"], "deny");
    assert_eq!(refused["decisions"][0]["result"]["code"], "tool_forbidden");
    let arguments = refused["decisions"][0]["input"]["message"]["tool"]["arguments"].as_str().unwrap();
    assert!(arguments.starts_with("sha256:"), "arguments are masked by default: {arguments}");
    assert!(refused.get("response_sha256").is_some() && refused["prev"].as_str().unwrap().len() == 64);

    // The same bundle decides the same; one that forbids echo changes exactly that call.
    let bundle = s.dir.path().join("bundle");
    let out = forge(&["evidence", "replay", pack.to_str().unwrap(), "--bundle", bundle.to_str().unwrap()]);
    assert!(out.status.success() && text(&out).contains(": 0 would change"), "{}", text(&out));
    let stricter = s.dir.path().join("stricter");
    std::fs::create_dir(&stricter).unwrap();
    std::fs::write(stricter.join("decision.rego"), BUNDLE.replace("== \"forbidden\"", "in {\"forbidden\", \"echo\"}"))
        .unwrap();
    let out = forge(&["evidence", "replay", pack.to_str().unwrap(), "--bundle", stricter.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("tools/call echo: allow -> deny (tool_forbidden)"), "{report}");
    assert!(report.contains(": 1 would change"), "{report}");
}

#[tokio::test]
async fn kill_9_while_writing_loses_no_complete_record() {
    let mut s = setup(true, "  fsync: record\n");
    let client = s.gw.client();
    let session = initialize(&client).await;
    let load = {
        let client = s.gw.client();
        let session = session.clone();
        tokio::spawn(async move {
            // Until the gateway is gone (a failed connection ends the task).
            for i in 0..10_000u64 {
                if client.connect().await.is_err() {
                    break;
                }
                let (headers, body) = (session_headers(&session), call(100 + i, "echo", "load"));
                if tokio::time::timeout(Duration::from_secs(2), client.post("/mcp", &body, &headers)).await.is_err() {
                    break;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.gw.signal("KILL");
    assert!(s.gw.wait_exit(Duration::from_secs(5)).is_none(), "killed: no exit code");
    // The load task ends (or panics on a refused connection) once the gateway is gone.
    let _ = tokio::time::timeout(Duration::from_secs(10), load).await.expect("the load stops with the gateway");

    // A kill rarely lands inside the one write() of a batch, so the torn tail it could
    // leave is also written here: recovery must cut it off and keep every earlier record.
    let log = s.dir.path().join("evidence");
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("segment-"))
        .collect();
    segments.sort();
    let last = segments.pop().unwrap();
    let before = std::fs::read(&last).unwrap();
    let complete = before.iter().filter(|b| **b == b'\n').count();
    assert!(complete > 3, "the load wrote records before the kill ({complete})");
    let mut torn = before[..before.iter().rposition(|b| *b == b'\n').unwrap() + 1].to_vec();
    torn.extend_from_slice(br#"{"v":1,"seq":99999,"prev":"0123"#);
    std::fs::write(&last, &torn).unwrap();

    let server = ListeningServer::start({
        let mut c = Command::new("node");
        c.arg(peers().join("ts-v1-server.mjs")).arg("--json");
        c
    });
    let mut gw = start_gateway(&server, &s.config);
    let logs = gw.log_containing("EVIDENCE LOG RECOVERED");
    assert!(logs.contains("EVIDENCE LOG RECOVERED"), "{logs}");
    let session = initialize(&gw.client()).await;
    gw.client().post("/mcp", &call(2, "echo", "after"), &session_headers(&session)).await;
    stop(&mut gw);

    let pack = s.dir.path().join("pack");
    let out = forge(&[
        "evidence",
        "export",
        "--config",
        s.config.to_str().unwrap(),
        "--since",
        "1h",
        "-o",
        pack.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = forge(&["evidence", "verify", pack.to_str().unwrap(), "--key", s.public_key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let exported = records(&pack);
    let earlier: usize =
        segments.iter().map(|p| std::fs::read(p).unwrap().iter().filter(|b| **b == b'\n').count()).sum();
    assert_eq!(exported.len(), earlier + complete + 2, "every complete record before the kill, and the two after");
    assert_eq!(exported.last().unwrap()["method"], "tools/call");
}

/// Reads a raw HTTP/1.1 stream until `needle` appears; returns everything read.
async fn read_until(stream: &mut (impl tokio::io::AsyncRead + Unpin), seen: &mut String, needle: &str) {
    use tokio::io::AsyncReadExt;
    let read = async {
        while !seen.contains(needle) {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the stream ended before {needle:?}: {seen}");
            seen.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.unwrap_or_else(|_| panic!("no {needle:?} in {seen}"));
}

#[tokio::test]
async fn a_server_request_on_a_stream_is_recorded_and_the_result_signed() {
    use tokio::io::AsyncWriteExt;
    let mut s = setup(false, "");
    let client = s.gw.client();
    let init = INITIALIZE.replace("\"capabilities\":{}", "\"capabilities\":{\"sampling\":{}}");
    let reply = client.post("/mcp", &init, &[]).await;
    let session = reply.headers.get("mcp-session-id").unwrap().to_str().unwrap().to_string();
    client.post("/mcp", r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, &session_headers(&session)).await;

    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "sample", "arguments": {"prompt": "hi"}}}).to_string();
    let mut stream = client.connect().await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         mcp-session-id: {session}\r\nmcp-protocol-version: 2025-06-18\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "sampling/createMessage").await;
    let line = seen.lines().find(|l| l.contains("sampling/createMessage")).unwrap();
    let asked: Value = serde_json::from_str(line.trim_start_matches("data: ")).unwrap();
    let answer = json!({"jsonrpc": "2.0", "id": asked["id"], "result": {
        "model": "test-model", "role": "assistant", "content": {"type": "text", "text": "sampled"}, "stopReason": "endTurn"}});
    let posted = client.post("/mcp", &answer.to_string(), &session_headers(&session)).await;
    assert_eq!(posted.status, StatusCode::ACCEPTED);
    read_until(&mut stream, &mut seen, "io.forge/evidence").await;
    assert!(seen.contains("test-model"), "{seen}");
    drop(stream);
    // Notifications on a stream are relayed but not recorded.
    let logged = client.post("/mcp", &call(8, "log", "x"), &session_headers(&session)).await;
    assert!(String::from_utf8_lossy(&logged.body).contains("notifications/message"), "the tool logged");
    stop(&mut s.gw);

    let log = s.dir.path().join("evidence");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(&log).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_str().unwrap().starts_with("segment-") {
            lines.extend(
                std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str::<Value>(l).unwrap()),
            );
        }
    }
    let asked_record = lines.iter().find(|r| r["method"] == "sampling/createMessage").expect("the server's request");
    assert_eq!(asked_record["direction"], "server_to_client");
    assert_eq!(asked_record["decisions"][0]["direction"], "server_to_client", "policy judged it");
    assert!(!lines.iter().any(|r| r["method"].as_str().unwrap().starts_with("notifications/")));
    assert!(lines.iter().any(|r| r["name"] == "log"), "the logging call itself is recorded");
    let answered = lines.iter().find(|r| r["name"] == "sample").expect("the call's record");
    assert_eq!((answered["method"].as_str(), answered["decision"].as_str()), (Some("tools/call"), Some("allow")));
}

#[tokio::test]
async fn without_a_configured_key_a_development_key_is_generated_and_logged() {
    let upstream = common::stand_in(common::Behaviour::Respond {
        content_type: "application/json",
        body: r#"{"jsonrpc":"2.0","id":42,"result":{}}"#.into(),
    })
    .await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let logs = gw.log_containing("generated a development signing key");
    assert!(logs.contains("generated a development signing key"), "{logs}");
    let key = gw.state.path().join("evidence/dev-signing-key.pem");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let key = forge::signing::SigningKey::load(&key).unwrap();
    let reply = gw.client().post("/mcp", common::TOOLS_CALL, &[]).await;
    let input = reply.headers.get("signature-input").unwrap().to_str().unwrap();
    assert!(input.contains(&key.key_id()), "{input}");
}

#[test]
fn keys_generate_writes_a_private_key_and_prints_its_public_key_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    let out = forge(&["keys", "generate", "-o", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let key = forge::signing::SigningKey::load(&path).unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(printed.contains(&key.public_key().to_pem()), "{printed}");
    assert!(printed.contains(&format!("key id: {}", key.key_id())), "{printed}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    // An existing key is never overwritten.
    let again = forge(&["keys", "generate", "-o", path.to_str().unwrap()]);
    assert!(!again.status.success() && text(&again).contains("creating"), "{}", text(&again));
    assert_eq!(forge::signing::SigningKey::load(&path).unwrap().key_id(), key.key_id());
}

/// The records in a stopped gateway's log, in order.
fn logged(dir: &Path) -> Vec<Value> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir.join("evidence"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("segment-"))
        .collect();
    segments.sort();
    segments
        .iter()
        .flat_map(|p| std::fs::read_to_string(p).unwrap().lines().map(str::to_owned).collect::<Vec<_>>())
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect()
}

#[tokio::test]
async fn refusals_before_policy_and_upstream_failures_are_recorded_and_signed() {
    // Authentication is required for everything but the methods below, so a tools/list
    // without a token is refused (401); the issuer's key never signs anything here.
    let idp = tempfile::tempdir().unwrap();
    let pem = idp.path().join("idp.pem");
    std::fs::write(&pem, rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap().public_key_pem())
        .unwrap();
    let extra = format!(
        "limits:\n  max_body_bytes: 4KiB\nauth:\n  mode: required\n  resource: https://forge.test/mcp\n  \
         anonymous_methods: [initialize, notifications/initialized, tools/call]\n  issuers:\n    \
         - issuer: https://idp.test\n      pem: {}\n",
        pem.display()
    );
    let mut s = setup(true, &extra);
    let client = s.gw.client();
    let session = initialize(&client).await;
    let headers = session_headers(&session);

    // A client that sends 40 of the 100 bytes it announced, then hangs up.
    {
        use tokio::io::AsyncWriteExt;
        let mut stream = client.connect().await.expect("a TLS connection");
        let head = "POST /mcp HTTP/1.1\r\nhost: forge.test\r\ncontent-type: application/json\r\n\
                    accept: application/json, text/event-stream\r\ncontent-length: 100\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&call(6, "echo", "cut").as_bytes()[..40]).await.unwrap();
        stream.flush().await.unwrap();
        stream.shutdown().await.unwrap();
    }
    let malformed = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":"#;
    assert_eq!(client.post("/mcp", malformed, &headers).await.status, StatusCode::BAD_REQUEST);
    let mismatched = call(8, "echo", "hi");
    let mut lying = headers.clone();
    lying.push(("mcp-method", "tools/list"));
    assert_eq!(client.post("/mcp", &mismatched, &lying).await.status, StatusCode::BAD_REQUEST);
    let huge = call(9, "echo", &"x".repeat(8192));
    assert_eq!(client.post("/mcp", &huge, &headers).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    let list = r#"{"jsonrpc":"2.0","id":10,"method":"tools/list"}"#;
    assert_eq!(client.post("/mcp", list, &headers).await.status, StatusCode::UNAUTHORIZED);
    // The benign near-miss: the same gateway answers and records a permitted call as allowed.
    let echo = call(11, "echo", "fine");
    assert_eq!(client.post("/mcp", &echo, &headers).await.status, StatusCode::OK);
    // The upstream goes away: the gateway's own 502 is recorded, and signed like any answer.
    drop(s._server);
    let failing = call(12, "echo", "anyone there?");
    let reply = client.post("/mcp", &failing, &headers).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", String::from_utf8_lossy(&reply.body));
    let saved = save(s.dir.path(), "502.http", &reply);
    let out = forge(&["evidence", "verify-response", "--key", s.public_key.to_str().unwrap(), saved.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    stop(&mut s.gw);

    let records = logged(s.dir.path());
    let digest = |body: &str| forge::evidence::record::hex(&Sha256::digest(body.as_bytes()));
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r["request_id"] == id)
            .unwrap_or_else(|| panic!("no record of request {id}: {records:?}"))
    };
    let summary = |r: &Value| {
        (r["decision"].as_str().unwrap().to_string(), r["reason"].as_str().map(str::to_owned), r["status"].as_u64())
    };
    // A body that does not parse has no id the gateway could read: it is the one without.
    let parse_error = records.iter().find(|r| r["reason"] == "parse_error").expect("the malformed request");
    assert_eq!(summary(parse_error), ("refused".into(), Some("parse_error".into()), Some(400)));
    assert_eq!(parse_error["request_sha256"], digest(malformed), "the digest of what was received");
    assert_eq!(summary(by_id("8")), ("refused".into(), Some("header_mismatch".into()), Some(400)));
    assert_eq!(by_id("8")["request_sha256"], digest(&mismatched));
    let too_large = records.iter().find(|r| r["reason"] == "body_size").expect("the oversized request");
    assert_eq!(summary(too_large), ("refused".into(), Some("body_size".into()), Some(413)));
    assert_eq!(too_large["request_sha256"], "", "the body was never read whole");
    assert_eq!(too_large["received_bytes"], 0, "refused on its Content-Length, before reading");
    let aborted = records.iter().find(|r| r["reason"] == "body_aborted").expect("the aborted upload");
    assert_eq!(summary(aborted), ("refused".into(), Some("body_aborted".into()), Some(400)));
    assert_eq!((aborted["request_sha256"].as_str(), aborted["received_bytes"].as_u64()), (Some(""), Some(40)));
    assert!(parse_error.get("received_bytes").is_none(), "a body read whole is digested, not counted");
    assert_eq!(summary(by_id("10")), ("refused".into(), Some("unauthenticated".into()), Some(401)));
    assert!(by_id("10").get("principal").is_none(), "nobody was identified");
    assert_eq!(summary(by_id("11")), ("allow".into(), None, Some(200)));
    let failed = by_id("12");
    assert_eq!((failed["decision"].as_str(), failed["status"].as_u64()), (Some("error"), Some(502)));
    assert!(failed["reason"].as_str().is_some_and(|r| !r.is_empty()), "{failed}");
    assert_eq!(failed["decisions"].as_array().unwrap().len(), 1, "policy allowed the call before the upstream failed");
    assert_eq!(failed["response_sha256"], forge::evidence::record::hex(&Sha256::digest(&reply.body)));
}
