//! The default bundle in `policies/`: it compiles, its own tests pass, and the VM that
//! serves traffic decides real messages as those tests (run on the interpreter) expect.

use std::path::Path;

use forge::identity::{Principal, TokenIdentity};
use forge::mcp::jsonrpc::{self, Message, Payload};
use forge::policy::cli::{self, Status};
use forge::policy::{
    Direction, Finding, FindingCategory, PolicyConfig, PolicyInput, PolicyStore, RequestView, Severity,
};
use serde_json::{json, Value};

fn default_bundle() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))
}

#[test]
fn the_default_bundle_passes_its_own_tests_and_covers_its_rules() {
    let mut out = Vec::new();
    let status = cli::test(default_bundle(), true, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(status, Status::Success, "{text}");
    assert!(text.contains("100.0%  total"), "every policy line is exercised by a test:\n{text}");
}

#[test]
fn the_default_bundle_checks_clean() {
    let mut out = Vec::new();
    assert_eq!(cli::check(default_bundle(), &mut out).unwrap(), Status::Success, "{}", String::from_utf8_lossy(&out));
}

fn message(value: Value) -> Message {
    match jsonrpc::parse(value.to_string().as_bytes(), 64).unwrap() {
        Payload::Single(m) => m,
        Payload::Batch(_) => unreachable!(),
    }
}

fn call(tool: &str, arguments: Value) -> Message {
    message(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}),
    )
}

fn user(roles: &[&str], scopes: &[&str]) -> Principal {
    Principal {
        token: Some(TokenIdentity {
            issuer: "https://idp.example".into(),
            subject: "alice".into(),
            audience: vec!["forge".into()],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            claims: json!({"sub": "alice", "roles": roles}).as_object().unwrap().clone(),
        }),
        certificate: None,
    }
}

/// One message through the default bundle.
struct Case<'a> {
    name: &'a str,
    principal: Principal,
    direction: Direction,
    message: Message,
    answers: Option<Message>,
    definition: Option<Value>,
    findings: Vec<Finding>,
}

impl<'a> Case<'a> {
    fn call(name: &'a str, tool: &str, arguments: Value) -> Self {
        Case {
            name,
            principal: Principal::default(),
            direction: Direction::ClientToServer,
            message: call(tool, arguments),
            answers: None,
            definition: None,
            findings: Vec::new(),
        }
    }

    fn by(mut self, principal: Principal) -> Self {
        self.principal = principal;
        self
    }

    fn response(name: &'a str, request: Message, result: Value) -> Self {
        Case {
            name,
            principal: Principal::default(),
            direction: Direction::ServerToClient,
            message: message(json!({"jsonrpc": "2.0", "id": 1, "result": result})),
            answers: Some(request),
            definition: None,
            findings: Vec::new(),
        }
    }

    fn input(&self) -> PolicyInput<'_> {
        let input = PolicyInput::for_message(
            &self.principal,
            &self.message,
            self.direction,
            None,
            RequestView::default(),
            self.definition.as_ref(),
        )
        .with_findings(&self.findings);
        match &self.answers {
            Some(Message::Request(request)) => input.in_reply_to(request, self.definition.as_ref()),
            _ => input,
        }
    }
}

fn finding(category: FindingCategory, confidence: f64) -> Finding {
    Finding {
        rule_id: "sample".into(),
        category,
        severity: Severity::High,
        confidence,
        pointer: "/result/content/0/text".into(),
        span: None,
        fingerprint: "00".into(),
        plugin: None,
    }
}

fn list_request() -> Message {
    message(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
}

fn listing() -> Value {
    json!({"tools": [{"name": "echo"}, {"name": "read_file"}, {"name": "write_file"}]})
}

/// What the gateway ends up doing: refusing with a code, or forwarding with obligations.
fn outcome(store: &PolicyStore, case: &Case) -> String {
    let evaluation = store.evaluate(&case.input()).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    if let Some(refusal) = evaluation.deny_reason() {
        return format!("refuse {}", refusal.code);
    }
    let o = &evaluation.decision.obligations;
    let mut done = vec!["forward".to_string()];
    if o.require_approval.required {
        done.push("after approval".into());
    }
    if !o.hide_tools.is_empty() {
        done.push(format!("hiding {}", o.hide_tools.join(",")));
    }
    if !o.redact.is_empty() {
        done.push(format!(
            "redacting {}",
            o.redact.iter().map(|r| r.replacement.as_str()).collect::<Vec<_>>().join(",")
        ));
    }
    done.join(" ")
}

#[test]
fn real_messages_through_the_default_bundle() {
    let store = PolicyStore::load(default_bundle(), &PolicyConfig::default()).unwrap();
    let destructive = json!({"name": "drop_table", "annotations": {"destructiveHint": true}});
    let harmless = json!({"name": "drop_table", "annotations": {"destructiveHint": false, "readOnlyHint": true}});
    let cases = vec![
        // Out of the box, in front of server-everything, anonymous callers may call anything.
        (Case::call("anonymous echo", "echo", json!({"message": "hi"})), "forward"),
        (Case::call("anonymous get-env", "get-env", json!({})), "forward"),
        // Argument constraints still apply to anonymous callers.
        (Case::call("path outside", "read_file", json!({"path": "/etc/passwd"})), "refuse path_not_allowed"),
        (Case::call("path inside", "read_file", json!({"path": "/workspace/notes.md"})), "forward"),
        (Case::call("sql write", "query", json!({"sql": "DELETE FROM users"})), "refuse sql_not_read_only"),
        (Case::call("sql read", "query", json!({"sql": "SELECT deleted_at FROM users"})), "forward"),
        (
            Case::call("url userinfo trick", "fetch", json!({"url": "https://github.com@evil.example/"})),
            "refuse url_not_allowed",
        ),
        (Case::call("url allowed", "fetch", json!({"url": "https://github.com/modelcontextprotocol"})), "forward"),
        (
            Case::call("no tool name", "x", json!({}))
                .with_message(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 7}})),
            "refuse malformed_tool_call",
        ),
        // Roles and scopes from the token.
        (
            Case::call("viewer writes", "write_file", json!({"path": "/workspace/a"})).by(user(&["viewer"], &[])),
            "refuse tool_not_allowed",
        ),
        (
            Case::call("viewer reads", "read_file", json!({"path": "/workspace/a"})).by(user(&["viewer"], &[])),
            "forward",
        ),
        (
            Case::call("read scope lists", "list_directory", json!({"path": "/tmp/x"}))
                .by(user(&[], &["mcp:tools:read"])),
            "forward",
        ),
        (
            Case::call("read scope writes", "write_file", json!({"path": "/tmp/x"})).by(user(&[], &["mcp:tools:read"])),
            "refuse tool_not_allowed",
        ),
        (Case::call("no roles", "echo", json!({})).by(user(&[], &[])), "refuse tool_not_allowed"),
        // Destructive tools wait for a human's approval.
        (Case::call("destructive", "drop_table", json!({})).with_definition(destructive), "forward after approval"),
        (Case::call("not destructive", "drop_table", json!({})).with_definition(harmless), "forward"),
        // tools/list results show only usable tools.
        (
            Case::response("viewer lists", list_request(), listing()).by(user(&["viewer"], &[])),
            "forward hiding write_file",
        ),
        (Case::response("anonymous lists", list_request(), listing()), "forward"),
        // Findings.
        (
            Case::response("secret in result", call("get-env", json!({})), json!({"content": []}))
                .with_findings(vec![finding(FindingCategory::Secret, 0.9)]),
            "refuse secret_detected",
        ),
        (
            Case::response("weak secret", call("get-env", json!({})), json!({"content": []}))
                .with_findings(vec![finding(FindingCategory::Secret, 0.1)]),
            "forward",
        ),
        (
            Case::response("pii for anonymous", call("echo", json!({})), json!({"content": []}))
                .with_findings(vec![finding(FindingCategory::Pii, 0.9)]),
            "forward redacting [REDACTED:sample]",
        ),
        (
            Case::response("pii for admin", call("echo", json!({})), json!({"content": []}))
                .with_findings(vec![finding(FindingCategory::Pii, 0.9)])
                .by(user(&["admin"], &[])),
            "forward",
        ),
        // Server requests and other methods pass.
        (
            Case::call("initialize", "x", json!({}))
                .with_message(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})),
            "forward",
        ),
        (
            Case::call("sampling", "x", json!({}))
                .with_message(json!({"jsonrpc": "2.0", "id": 9, "method": "sampling/createMessage", "params": {}}))
                .sent_by_server(),
            "forward",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (case, expected)) in cases.iter().enumerate() {
        assert_eq!(outcome(&store, case), *expected, "{}", case.name);
        if let Err(e) = matches_schema(&case.input().to_json()) {
            panic!("{}: the input does not match input.schema.json: {e}", case.name);
        }
        // The interpreter, which runs the bundle's tests, must agree with the VM.
        let file = dir.path().join(format!("{i}.json"));
        std::fs::write(&file, case.input().to_json().to_string()).unwrap();
        let mut out = Vec::new();
        let status = cli::eval(&file, default_bundle(), &mut out).unwrap();
        assert_eq!(status, Status::Success, "{}: {}", case.name, String::from_utf8_lossy(&out));
    }
}

/// Validates a document against `policies/input.schema.json` (with regorus' JSON Schema
/// builtin, which the crate already carries).
fn matches_schema(document: &Value) -> Result<(), String> {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(default_bundle().join("input.schema.json")).unwrap()).unwrap();
    let mut engine = regorus::Engine::new();
    let policy = "package s\nimport rego.v1\nresult := json.match_schema(input.doc, input.schema)\n";
    engine.add_policy("schema.rego".into(), policy.into()).unwrap();
    engine.set_input(regorus::Value::from_json_str(&json!({"doc": document, "schema": schema}).to_string()).unwrap());
    let result = engine.eval_rule("data.s.result".into()).unwrap();
    match result[0] == regorus::Value::Bool(true) {
        true => Ok(()),
        false => Err(result[1].to_string()),
    }
}

#[test]
fn every_part_of_the_input_matches_the_published_schema() {
    let principal = Principal {
        certificate: Some(forge::server::tls::ClientIdentity {
            subject: "CN=agent".into(),
            sans: vec!["spiffe://td/agent".into()],
            spiffe_id: Some("spiffe://td/agent".into()),
        }),
        ..user(&["viewer"], &["mcp:tools"])
    };
    let request = message(
        json!({"jsonrpc": "2.0", "id": "r1", "method": "prompts/get", "params": {"name": "p", "arguments": {"a": "1"}}}),
    );
    let Message::Request(answered) = &request else { unreachable!() };
    let error =
        message(json!({"jsonrpc": "2.0", "id": "r1", "error": {"code": -32602, "message": "bad", "data": {"k": 1}}}));
    let mut headers = http::HeaderMap::new();
    headers.insert("user-agent", "agent/1".parse().unwrap());
    let findings =
        vec![Finding { span: Some(forge::policy::Span { start: 1, end: 4 }), ..finding(FindingCategory::Pii, 0.5) }];
    let session = forge::policy::SessionView {
        id: Some("s1".into()),
        protocol_version: Some("2025-11-25".into()),
        client_info: Some(json!({"name": "c", "version": "1"})),
    };
    let include = ["user-agent".to_string()];
    let view = RequestView::from_parts(Some("10.0.0.1".parse().unwrap()), &headers, &include);
    let inputs = [
        PolicyInput::for_message(
            &principal,
            &error,
            Direction::ServerToClient,
            Some(session.clone()),
            view.clone(),
            None,
        )
        .in_reply_to(answered, None)
        .with_findings(&findings)
        .to_json(),
        PolicyInput::for_message(&principal, &request, Direction::ClientToServer, Some(session), view, None).to_json(),
    ];
    for input in inputs {
        assert_eq!(matches_schema(&input), Ok(()), "{input}");
    }
    // The schema is strict: a misspelt field does not pass.
    let mut wrong =
        PolicyInput::for_message(&principal, &request, Direction::ClientToServer, None, RequestView::default(), None)
            .to_json();
    wrong["message"]["tool_name"] = json!("x");
    assert!(matches_schema(&wrong).is_err());
}

impl Case<'_> {
    fn with_message(mut self, value: Value) -> Self {
        self.message = message(value);
        self
    }

    fn with_definition(mut self, definition: Value) -> Self {
        self.definition = Some(definition);
        self
    }

    fn with_findings(mut self, findings: Vec<Finding>) -> Self {
        self.findings = findings;
        self
    }

    fn sent_by_server(mut self) -> Self {
        self.direction = Direction::ServerToClient;
        self
    }
}
