//! `forge evidence replay`: the recorded policy inputs of a verified pack, asked again of
//! another bundle; every decision that would change is reported.

use serde_json::Value;

use super::record::{DecisionEntry, Record};
use crate::policy::DocumentEvaluator;

/// One decision that would come out differently.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub seq: u64,
    pub record: String,
    pub method: String,
    pub name: Option<String>,
    pub was: String,
    pub now: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub evaluated: usize,
    pub changes: Vec<Change>,
    /// Input paths that were masked when recorded: rules reading them saw the mask.
    pub masked: Vec<String>,
}

/// Re-evaluates every recorded decision of `records` with `bundle`.
pub fn replay(records: &[Record], bundle: &DocumentEvaluator) -> Report {
    let mut report = Report::default();
    for record in records {
        for entry in &record.decisions {
            report.evaluated += 1;
            for m in &entry.masked {
                if !report.masked.contains(m) {
                    report.masked.push(m.clone());
                }
            }
            let was = outcome(entry);
            let input = serde_json::from_str::<Value>(entry.input.get()).unwrap_or_default();
            let now = match bundle.evaluate(&input) {
                Ok(decision) => summary(&serde_json::to_value(&decision).unwrap_or_default()),
                Err(e) => format!("error ({})", e.deny_reason().message),
            };
            if was != now {
                report.changes.push(Change {
                    seq: record.seq,
                    record: record.id.clone(),
                    method: record.method.clone(),
                    name: record.name.clone(),
                    was,
                    now,
                });
            }
        }
    }
    report
}

fn outcome(entry: &DecisionEntry) -> String {
    match (&entry.result, &entry.error) {
        (Some(result), _) => summary(result),
        (None, Some(_)) => "error (policy evaluation failed; the message is refused)".into(),
        (None, None) => "unknown".into(),
    }
}

/// A decision in one comparable line: allowed or refused with its code, and obligations.
fn summary(decision: &Value) -> String {
    let verdict = match decision["allow"].as_bool() {
        Some(true) => "allow".to_string(),
        _ => format!("deny ({})", decision["code"].as_str().unwrap_or("denied")),
    };
    let obligations = &decision["obligations"];
    let mut parts = vec![verdict];
    for key in ["redact", "hide_tools"] {
        if let Some(list) = obligations[key].as_array().filter(|a| !a.is_empty()) {
            parts.push(format!("{key}={}", Value::Array(list.clone())));
        }
    }
    if obligations["require_approval"]["required"] == Value::Bool(true) {
        parts.push("require_approval".into());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summaries_tell_verdicts_and_obligations_apart() {
        assert_eq!(summary(&json!({"allow": true, "obligations": {"redact": [], "hide_tools": []}})), "allow");
        assert_eq!(summary(&json!({"allow": false, "code": "tool_blocked"})), "deny (tool_blocked)");
        assert_eq!(
            summary(
                &json!({"allow": true, "obligations": {"hide_tools": ["rm"], "require_approval": {"required": true}}})
            ),
            "allow hide_tools=[\"rm\"] require_approval"
        );
    }
}
