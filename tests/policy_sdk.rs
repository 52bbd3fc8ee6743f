//! Identity and policy end to end, with real MCP SDK peers on both sides: SDK clients carry
//! bearer tokens signed in the test with a real ES256 key, the gateway requires them and
//! enforces the default bundle, and SDK servers record every message they receive, so that
//! "the upstream never saw it" is asserted on the upstream's side.
//!
//! Peers (tests/peers/): the TypeScript SDK v1 client and server (stateful Streamable HTTP,
//! SSE and JSON responses) and the Python `mcp` client and server (2026-07-28 stateless and
//! the 2025 stateful era). Needs `tests/peers/install.sh`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Gateway, ListeningServer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.test";
const RESOURCE: &str = "https://gw.test/mcp";

fn peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

fn node() -> Command {
    assert!(
        peers().join("node_modules/@modelcontextprotocol/sdk").exists(),
        "SDK peers not installed: run scripts/test.sh (or tests/peers/install.sh)"
    );
    Command::new("node")
}

fn python() -> Command {
    let python = peers().join(".venv/bin/python");
    assert!(python.exists(), "SDK peers not installed: run scripts/test.sh (or tests/peers/install.sh)");
    Command::new(python)
}

/// A gateway requiring ES256 tokens from one issuer, enforcing a copy of the default bundle
/// (with `blocked` as its `blocked_server_requests`), logging decisions to a file, in front
/// of an SDK server that records what it receives. The evaluation budget is wide: these
/// tests are about decisions, not budgets, and CI machines can be starved of CPU.
struct Deployment {
    dir: tempfile::TempDir,
    key: EncodingKey,
    _server: ListeningServer,
    gw: Gateway,
}

impl Deployment {
    fn start(mut server: Command, blocked: &[&str]) -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pem = dir.path().join("idp.pem");
        std::fs::write(&pem, pair.public_key_pem()).unwrap();
        let bundle = default_bundle_with(dir.path(), blocked);
        let yaml = format!(
            "auth:\n  mode: required\n  resource: {RESOURCE}\n  issuers:\n    - issuer: {ISSUER}\n      pem: {}\n\
             policy:\n  bundle: {}\n  eval_timeout: 5s\n  decision_log:\n    enabled: true\n    path: {}\n",
            pem.display(),
            bundle.display(),
            dir.path().join("decisions.jsonl").display(),
        );
        let config = common::write_config(dir.path(), &yaml);
        server.arg("--record").arg(dir.path().join("received.jsonl"));
        let server = ListeningServer::start(server);
        let gw = Gateway::start(&["--upstream", &server.url("/mcp"), "--config", config.to_str().unwrap()]);
        Deployment { dir, key: EncodingKey::from_ec_der(pair.serialized_der()), _server: server, gw }
    }

    /// A token for `subject` with these roles, valid for five minutes.
    fn token(&self, subject: &str, roles: &[&str]) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let claims =
            json!({"iss": ISSUER, "sub": subject, "aud": RESOURCE, "iat": now, "exp": now + 300, "roles": roles});
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.key).unwrap()
    }

    /// Runs a client's `policy` scenario through the gateway with `token` and returns its
    /// transcript's steps by name.
    fn run(&self, client: Command, token: &str) -> serde_json::Map<String, Value> {
        self.run_at("/mcp", client, token)
    }

    /// [`Deployment::run`] with the client pointed at `path` on the gateway.
    fn run_at(&self, path: &str, mut client: Command, token: &str) -> serde_json::Map<String, Value> {
        let url = format!("https://localhost:{}{path}", self.gw.addr.port());
        client.args(["--url", &url, "--scenario", "policy", "--bearer", token]).arg("--ca").arg(self.gw.ca_path());
        let output = bounded_output(client, Duration::from_secs(90));
        assert!(
            output.status.success(),
            "client failed:\n{}\n{}\n--- gateway log\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.gw.logs()
        );
        let transcript: Value = serde_json::from_slice(&output.stdout).expect("the transcript is JSON");
        let steps = transcript["steps"].as_array().expect("steps").iter();
        steps.map(|s| (s["step"].as_str().unwrap().to_string(), s.clone())).collect()
    }

    /// Every JSON-RPC message (or bare HTTP request) the upstream server received.
    fn received(&self) -> Vec<Value> {
        jsonl(&self.dir.path().join("received.jsonl"))
    }

    fn tool_calls_received(&self, tool: &str) -> usize {
        self.received().iter().filter(|m| m["method"] == "tools/call" && m["params"]["name"] == tool).count()
    }

    /// The decision log once it holds a line for `decision_id` (a background thread writes it).
    fn decision_log_with(&self, decision_id: &str) -> Vec<Value> {
        let path = self.dir.path().join("decisions.jsonl");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = jsonl(&path);
            if lines.iter().any(|l| l["decision_id"] == decision_id) || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The repository's default bundle, copied, with its `blocked_server_requests` set.
fn default_bundle_with(dir: &Path, blocked: &[&str]) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let bundle = dir.join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, bundle.join(path.file_name().unwrap())).unwrap();
    }
    let data = std::fs::read_to_string(bundle.join("data.yaml")).unwrap();
    let setting = "blocked_server_requests: []";
    assert!(data.contains(setting), "data.yaml still has {setting}");
    let data = data.replace(setting, &format!("blocked_server_requests: {}", json!(blocked)));
    std::fs::write(bundle.join("data.yaml"), data).unwrap();
    bundle
}

fn jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

/// Runs a command to completion, killing it if it outlives `limit`.
fn bounded_output(mut command: Command, limit: Duration) -> std::process::Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("client did not finish within {limit:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn ts_v1_server(extra: &[&str]) -> Command {
    let mut c = node();
    c.arg(peers().join("ts-v1-server.mjs")).args(extra);
    c
}

fn ts_v1_client() -> Command {
    let mut c = node();
    c.arg(peers().join("ts-v1-client.mjs"));
    c
}

fn py_server() -> Command {
    let mut c = python();
    c.arg(peers().join("py-server.py"));
    c
}

fn py_client() -> Command {
    let mut c = python();
    c.arg(peers().join("py-client.py"));
    c
}

/// The refusal the gateway documents: -32017 with the policy's code and the decision's id.
/// Returns the decision id.
fn assert_refused(step: &Value, code: &str) -> String {
    assert_eq!(step["ok"], false, "refused: {step}");
    let error = &step["error"];
    assert_eq!(error["code"], -32017, "{step}");
    assert!(error["message"].as_str().unwrap().contains("Refused by policy"), "{step}");
    assert_eq!(error["data"]["code"], code, "{step}");
    let id = error["data"]["decision_id"].as_str().unwrap_or_else(|| panic!("a decision id: {step}"));
    assert!(!id.is_empty());
    id.to_string()
}

fn text_of(result: &Value) -> String {
    result["content"]
        .as_array()
        .map_or_else(String::new, |c| c.iter().filter_map(|c| c["text"].as_str()).collect::<Vec<_>>().join("\n"))
}

fn assert_no_credentials_reached(d: &Deployment) {
    let received = d.received();
    assert!(!received.is_empty(), "the upstream recorded what it received");
    for message in &received {
        assert!(message["http"]["headers"].get("authorization").is_none(), "a token reached the upstream: {message}");
    }
}

/// A viewer may call `echo` and nothing else: through the TypeScript SDK client the allowed
/// call succeeds, the others are refused with the documented error and never reach the
/// server, the list shows only `echo`, and each decision is in the decision log.
#[test]
fn a_viewer_through_the_ts_sdk_client_sees_and_calls_only_its_tools() {
    let d = Deployment::start(ts_v1_server(&[]), &[]);
    let token = d.token("vera", &["viewer"]);
    let steps = d.run(ts_v1_client(), &token);

    assert_eq!(steps["connect"]["ok"], true, "{:?}", steps["connect"]);
    assert_eq!(steps["tools/list"]["result"], json!(["echo"]), "the list hides the viewer's other tools");
    assert_eq!(text_of(&steps["tools/call echo"]["result"]), "echo: hello forge");
    let refused = assert_refused(&steps["tools/call add"], "tool_not_allowed");
    assert_refused(&steps["sampling via tool"], "tool_not_allowed");

    assert_eq!(d.tool_calls_received("echo"), 1);
    assert_eq!(d.tool_calls_received("add"), 0, "a refused call never reaches the upstream");
    assert_eq!(d.tool_calls_received("sample"), 0);
    assert!(d.received().iter().any(|m| m["method"] == "tools/list"), "the list itself was asked upstream");
    assert_no_credentials_reached(&d);

    // The decision log: one OPA-shaped line per decision, arguments masked.
    let lines = d.decision_log_with(&refused);
    let line = lines.iter().find(|l| l["decision_id"] == refused.as_str()).expect("the refusal is logged");
    assert_eq!(line["path"], "forge/decision");
    assert_eq!(line["result"]["allow"], false);
    assert_eq!(line["result"]["code"], "tool_not_allowed");
    assert_eq!(line["input"]["principal"]["subject"], "vera");
    assert_eq!(line["input"]["message"]["tool"]["name"], "add");
    assert_eq!(line["input"]["message"]["tool"]["arguments"], "***", "arguments are masked");
    assert_eq!(line["input"]["message"]["params"], "***");
    assert!(line["masked"].as_array().unwrap().contains(&json!("/input/message/tool/arguments")));
    assert_eq!(line["bundle"]["revision"], "forge-default-1");
    let digest = line["bundle"]["digest"].as_str().unwrap();
    assert!(digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()), "a SHA-256 digest: {digest}");
    assert_eq!(line["mode"], "enforce");
    assert_eq!(line["enforced"], true);
    assert!(line["metrics"]["timer_rego_eval_ns"].as_u64().unwrap() > 0, "{line}");
    assert!(line["metrics"]["timer_rego_input_parse_ns"].as_u64().is_some(), "{line}");
    assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));

    let allowed = lines
        .iter()
        .find(|l| l["input"]["message"]["tool"]["name"] == "echo" && l["input"]["message"]["kind"] == "request")
        .expect("the allowed call is logged too");
    assert_eq!(allowed["result"]["allow"], true);
    let ids: std::collections::HashSet<&str> = lines.iter().map(|l| l["decision_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), lines.len(), "every decision has its own id");
    let raw = std::fs::read_to_string(d.dir.path().join("decisions.jsonl")).unwrap();
    assert!(!raw.contains("hello forge"), "neither arguments nor results are logged in the clear");
    assert!(!raw.contains(&token), "the token is never logged");
}

/// The same rules through the Python SDK client, in both eras: 2026-07-28 (stateless) and
/// the 2025 stateful session.
#[test]
fn a_viewer_through_the_python_sdk_client_sees_and_calls_only_its_tools() {
    let d = Deployment::start(py_server(), &[]);
    let steps = d.run(py_client(), &d.token("vera", &["viewer"]));
    for era in ["auto", "legacy"] {
        let step = |name: &str| &steps[&format!("{era}: {name}")];
        // The viewer role's patterns include `list_*`.
        assert_eq!(step("tools/list")["result"], json!(["echo", "list_roots"]), "{era}");
        assert_eq!(text_of(&step("tools/call echo")["result"]), "echo: hello forge", "{era}");
        assert_refused(step("tools/call add"), "tool_not_allowed");
        assert_refused(step("elicitation via tool"), "tool_not_allowed");
    }
    assert_eq!(d.tool_calls_received("echo"), 2);
    assert_eq!(d.tool_calls_received("add"), 0, "a refused call never reaches the upstream");
    assert_eq!(d.tool_calls_received("elicit"), 0);
    assert_no_credentials_reached(&d);
}

/// The error answers the upstream received for its own requests.
fn refusals_answered_upstream(d: &Deployment) -> Vec<Value> {
    d.received().into_iter().filter(|m| m["kind"] == "response" && m["error"]["code"] == -32017).collect()
}

/// A sampling request the policy refuses in a stateful session never reaches the client, and
/// the server gets an error answer in its place instead of waiting forever: the tool call
/// that asked ends, as a tool error. With SSE responses the request travels on the call's
/// stream; with JSON responses, on the session's GET stream; on the legacy HTTP+SSE
/// transport, on its one stream, and the answer goes to its message endpoint.
#[test]
fn a_refused_sampling_request_is_answered_to_the_ts_sdk_server() {
    let cases: [(&[&str], &str, &[&str]); 3] =
        [(&[], "/mcp", &[]), (&["--json"], "/mcp", &[]), (&[], "/sse", &["--transport", "sse"])];
    for (mode, path, transport) in cases {
        let d = Deployment::start(ts_v1_server(mode), &["sampling/createMessage"]);
        let mut client = ts_v1_client();
        client.args(transport);
        let steps = d.run_at(path, client, &d.token("dana", &["developer"]));
        let sampling = &steps["sampling via tool"];
        assert_eq!(sampling["ok"], true, "{mode:?}: the call ends: {sampling}");
        assert_eq!(sampling["result"]["samplingRequestsSeenByClient"], 0, "{mode:?}");
        assert_eq!(sampling["result"]["result"]["isError"], true, "{mode:?}: {sampling}");
        assert!(text_of(&sampling["result"]["result"]).contains("Refused by policy"), "{mode:?}: {sampling}");
        let answers = refusals_answered_upstream(&d);
        assert_eq!(answers.len(), 1, "{mode:?}: one error answered upstream: {answers:?}");
        assert_eq!(answers[0]["error"]["data"]["code"], "server_request_blocked");

        // The near miss: the developer's own calls pass.
        assert_eq!(text_of(&steps["tools/call add"]["result"]), "42", "{mode:?}");
    }
}

/// Elicitation blocked, sampling not. In a 2025 stateful session a refused elicitation
/// request is answered to the server with an error (which this server passes on as its
/// call's error); in 2026-07-28 an `input_required` result asking for one is withheld, and
/// the client's call gets the refusal (the stateless server waits for nothing).
#[test]
fn a_refused_elicitation_is_answered_or_withheld_in_both_python_eras() {
    let d = Deployment::start(py_server(), &["elicitation/create"]);
    let steps = d.run(py_client(), &d.token("dana", &["developer"]));

    let modern = &steps["auto: elicitation via tool"];
    assert_refused(modern, "server_request_blocked");

    assert_refused(&steps["legacy: elicitation via tool"], "server_request_blocked");
    let answers = refusals_answered_upstream(&d);
    assert_eq!(answers.len(), 1, "only the stateful session's request is answered upstream: {answers:?}");

    // The near miss: sampling is not blocked, in either era.
    for era in ["auto", "legacy"] {
        let sampling = &steps[&format!("{era}: sampling via tool")];
        assert_eq!(sampling["ok"], true, "{era}: {sampling}");
        assert_eq!(sampling["result"]["samplingRequestsSeenByClient"], 1, "{era}: {sampling}");
    }
}
