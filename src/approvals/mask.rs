//! Arguments as an approver sees them, because the page and the API show them to people and
//! the store keeps them: first what the request detectors found is masked where they found it
//! (the finding's span of a string, else the whole value at its pointer), then, as a fallback
//! for what no detector knows, values that look like secrets by their name or shape.

use std::cmp::Reverse;

use serde_json::Value;

use crate::policy::Finding;

const MASK: &str = "***";

/// Parts of argument names that mark a secret (compared case-insensitively, ignoring `-`/`_`).
const SECRET_NAMES: &[&str] =
    &["password", "passwd", "secret", "token", "apikey", "authorization", "credential", "privatekey", "cookie"];

/// Prefixes of well-known credential formats found in any string value.
const SECRET_PREFIXES: &[&str] = &["eyJ", "sk-", "ghp_", "gho_", "github_pat_", "xoxb-", "xoxp-", "AKIA", "-----BEGIN"];

/// Where a call's arguments are in its message, which findings point into.
const ARGUMENTS: &str = "/params/arguments";

pub fn mask(arguments: &Value, findings: &[Finding]) -> Value {
    let mut masked = arguments.clone();
    let mut found: Vec<(&str, &Finding)> = findings
        .iter()
        .filter_map(|f| {
            let inside = f.pointer.strip_prefix(ARGUMENTS)?;
            (inside.is_empty() || inside.starts_with('/')).then_some((inside, f))
        })
        .collect();
    // Later spans first, so the offsets of earlier ones in the same string stay valid.
    found.sort_by_key(|(_, f)| Reverse(f.span.map_or(0, |s| s.start)));
    for (pointer, finding) in found {
        let Some(value) = masked.pointer_mut(pointer) else { continue };
        let spliced = match (&*value, finding.span) {
            (Value::String(text), Some(span))
                if span.start <= span.end
                    && span.end <= text.len()
                    && text.is_char_boundary(span.start)
                    && text.is_char_boundary(span.end) =>
            {
                Some(format!("{}{MASK}{}", &text[..span.start], &text[span.end..]))
            }
            _ => None,
        };
        *value = Value::String(spliced.unwrap_or_else(|| MASK.into()));
    }
    by_look(&masked)
}

fn by_look(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let masked = if secret_name(k) { Value::String(MASK.into()) } else { by_look(v) };
                    (k.clone(), masked)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(by_look).collect()),
        Value::String(s) if SECRET_PREFIXES.iter().any(|p| s.trim_start().starts_with(p)) => Value::String(MASK.into()),
        other => other.clone(),
    }
}

fn secret_name(name: &str) -> bool {
    let folded: String = name.chars().filter(|c| *c != '_' && *c != '-').collect::<String>().to_ascii_lowercase();
    SECRET_NAMES.iter().any(|s| folded.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{FindingCategory, Severity, Span};
    use serde_json::json;

    fn finding(pointer: &str, span: Option<(usize, usize)>) -> Finding {
        Finding {
            rule_id: "pii.email".into(),
            category: FindingCategory::Pii,
            severity: Severity::High,
            confidence: 0.9,
            pointer: pointer.into(),
            span: span.map(|(start, end)| Span { start, end }),
            fingerprint: "ab".into(),
            plugin: Some("pii".into()),
        }
    }

    #[test]
    fn what_detectors_found_is_masked_where_they_found_it() {
        let args = json!({"note": "mail bob@example.com and amy@example.com", "id": 42, "to": ["x@y.z"]});
        let findings = [
            finding("/params/arguments/note", Some((5, 20))),
            finding("/params/arguments/note", Some((25, 40))),
            finding("/params/arguments/id", None),
            finding("/params/arguments/to/0", Some((0, 99))),
        ];
        assert_eq!(
            mask(&args, &findings),
            json!({"note": "mail *** and ***", "id": "***", "to": ["***"]}),
            "spans in one string, a whole value, and a span that does not fit (the whole value)"
        );
    }

    #[test]
    fn findings_elsewhere_mask_no_argument_and_the_heuristic_still_applies() {
        let args = json!({"note": "mail bob@example.com", "api_key": "abc"});
        let elsewhere = [finding("/params/name", None), finding("/params/argumentsx/note", None)];
        assert_eq!(mask(&args, &elsewhere), json!({"note": "mail bob@example.com", "api_key": "***"}));
        let whole = [finding("/params/arguments", None)];
        assert_eq!(mask(&args, &whole), json!("***"), "a finding on the arguments as a whole masks them all");
    }

    #[test]
    fn secrets_are_masked_by_name_and_by_shape_at_any_depth() {
        let args = json!({
            "repo": "forge",
            "API_KEY": "abc",
            "nested": [{"db_password": "p"}, "ghp_0123456789", "plain text"],
            "header": "eyJhbGciOi.x.y",
            "count": 3
        });
        assert_eq!(
            mask(&args, &[]),
            json!({"repo": "forge", "API_KEY": "***", "nested": [{"db_password": "***"}, "***", "plain text"], "header": "***", "count": 3})
        );
    }

    #[test]
    fn near_misses_are_shown() {
        let args = json!({"tokenizer": "bpe"});
        assert_eq!(mask(&args, &[]), json!({"tokenizer": "***"}), "a name containing `token` is masked: better safe");
        let benign = json!({"keyboard": "us", "path": "/tmp/skill", "description": "sketch"});
        assert_eq!(mask(&benign, &[]), benign);
    }
}
