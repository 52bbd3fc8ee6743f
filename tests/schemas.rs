//! The message model checked against the official MCP JSON schemas and the 2026-07-28
//! example messages in `../shared/mcp-schema/` (present in CI; a fresh clone without it
//! skips these tests and says so).

use std::path::PathBuf;

use forge::mcp::jsonrpc::{self, Message, Payload, KNOWN_METHODS};
use serde_json::Value;

fn schemas() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/mcp-schema");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} is not present (it ships beside the repository in CI)", dir.display());
        None
    }
}

/// Every `method` constant a schema defines.
fn methods_in(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(obj) => {
            if let Some(m) = obj.get("properties").and_then(|p| p.get("method")).and_then(|m| m.get("const")) {
                out.push(m.as_str().unwrap().to_string());
            }
            obj.values().for_each(|v| methods_in(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| methods_in(v, out)),
        _ => {}
    }
}

#[test]
fn every_method_of_every_revision_is_known() {
    let Some(dir) = schemas() else { return };
    let mut revisions = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path().join("schema.json");
        if !path.exists() {
            continue;
        }
        revisions += 1;
        let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut methods = Vec::new();
        methods_in(&schema, &mut methods);
        assert!(methods.len() > 10, "{} defines methods", path.display());
        for method in methods {
            assert!(KNOWN_METHODS.contains(&method.as_str()), "{method} from {} is not a known method", path.display());
        }
    }
    assert_eq!(revisions, 5, "2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25 and 2026-07-28");
}

#[test]
fn every_2026_example_parses_strictly_and_classifies() {
    let Some(dir) = schemas() else { return };
    let mut messages = 0;
    let mut values = 0;
    for kind in std::fs::read_dir(dir.join("2026-07-28/examples")).unwrap() {
        for file in std::fs::read_dir(kind.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let raw: Value = serde_json::from_slice(&bytes).unwrap();
            if raw.get("jsonrpc").is_none() {
                // A fragment (params, a result, a content block): strict JSON is enough.
                jsonrpc::parse_value(&bytes, 64).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                values += 1;
                continue;
            }
            let payload = jsonrpc::parse(&bytes, 64).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let Payload::Single(message) = payload else { panic!("{}: not a single message", path.display()) };
            assert_eq!(message.method(), raw.get("method").and_then(Value::as_str), "{}", path.display());
            if let Some(name) = raw["params"].get("name").or(raw["params"].get("uri")).and_then(Value::as_str) {
                if matches!(message.method(), Some("tools/call" | "prompts/get" | "resources/read")) {
                    assert_eq!(message.subject(), Some(name), "{}", path.display());
                }
            }
            if let Message::Response(response) = &message {
                let input_required = raw["result"]["resultType"] == "input_required";
                assert_eq!(response.input_requests().is_some(), input_required, "{}", path.display());
            }
            // Re-serializing the model loses nothing.
            assert_eq!(message.to_value(), raw, "{}", path.display());
            messages += 1;
        }
    }
    assert!(messages >= 20 && values >= 20, "{messages} messages and {values} fragments checked");
}
