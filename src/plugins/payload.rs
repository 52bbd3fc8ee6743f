//! What a plugin is shown of a message, and how its findings are read back.
//!
//! A plugin sees one part of a message (a request's params, a response's result) as its
//! payload, with pointers relative to that part. Its findings are checked against the
//! payload — a pointer must name a string or number, a span must lie on character
//! boundaries inside it — and re-rooted onto the whole message (`/params/arguments/…`),
//! which is what policy and redaction work with.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::host::wit;
use crate::policy::{Finding, FindingCategory, Severity, Span};

/// The part of a message one hook looks at: where it sits in the message, and its value.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    /// JSON Pointer of the part inside the message: `/params` or `/result`.
    pub at: &'static str,
    pub value: &'a Value,
}

/// The payload record for a part: its JSON text and every scalar with its pointer.
pub fn payload(value: &Value) -> wit::Payload {
    let mut scalars = Vec::new();
    collect(value, &mut String::new(), &mut scalars);
    wit::Payload { json: value.to_string(), scalars }
}

fn collect(value: &Value, pointer: &mut String, out: &mut Vec<wit::Scalar>) {
    let len = pointer.len();
    match value {
        Value::String(text) => out.push(wit::Scalar { pointer: pointer.clone(), text: text.clone(), is_number: false }),
        Value::Number(n) => out.push(wit::Scalar { pointer: pointer.clone(), text: n.to_string(), is_number: true }),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointer.push('/');
                pointer.push_str(&i.to_string());
                collect(item, pointer, out);
                pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                collect(item, pointer, out);
                pointer.truncate(len);
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// Checks one finding against the part it is about and turns it into the policy's
/// finding. `Err` says what is wrong with it: such output counts as the plugin failing.
pub fn read_finding(plugin: &str, part: Part<'_>, finding: wit::Finding) -> Result<Finding, String> {
    let text = match part.value.pointer(&finding.pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(format!("`{}` does not name a string or number", finding.pointer)),
        None => return Err(format!("`{}` names nothing in the payload", finding.pointer)),
    };
    let span = match finding.span {
        Some(wit::Span { start, end }) => {
            let (start, end) = (start as usize, end as usize);
            if start > end || end > text.len() || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
                return Err(format!(
                    "span {start}..{end} does not fit the {}-byte value at `{}`",
                    text.len(),
                    finding.pointer
                ));
            }
            Some(Span { start, end })
        }
        None => None,
    };
    if !(0.0..=1.0).contains(&finding.confidence) {
        return Err(format!("confidence {} is outside 0..1", finding.confidence));
    }
    let matched = span.map_or(text.as_str(), |s| &text[s.start..s.end]);
    let fingerprint = finding.fingerprint.unwrap_or_else(|| fingerprint(matched));
    Ok(Finding {
        rule_id: finding.rule_id,
        category: category(finding.category),
        severity: severity(finding.severity),
        // Through its shortest decimal form, so 0.9 stays 0.9 and not 0.8999999761581421.
        confidence: finding.confidence.to_string().parse().unwrap_or(0.0),
        pointer: format!("{}{}", part.at, finding.pointer),
        span,
        fingerprint,
        plugin: Some(plugin.to_string()),
    })
}

/// Correlates equal matches without keeping them: a SHA-256 prefix of the matched text.
pub fn fingerprint(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn category(c: wit::Category) -> FindingCategory {
    match c {
        wit::Category::Pii => FindingCategory::Pii,
        wit::Category::Secret => FindingCategory::Secret,
        wit::Category::CodeExec => FindingCategory::CodeExec,
        wit::Category::Poisoning => FindingCategory::Poisoning,
        wit::Category::Custom => FindingCategory::Custom,
    }
}

fn severity(s: wit::Severity) -> Severity {
    match s {
        wit::Severity::Info => Severity::Info,
        wit::Severity::Low => Severity::Low,
        wit::Severity::Medium => Severity::Medium,
        wit::Severity::High => Severity::High,
        wit::Severity::Critical => Severity::Critical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn finding(pointer: &str, span: Option<(u32, u32)>) -> wit::Finding {
        wit::Finding {
            rule_id: "r".into(),
            category: wit::Category::Secret,
            severity: wit::Severity::High,
            confidence: 0.9,
            pointer: pointer.into(),
            span: span.map(|(start, end)| wit::Span { start, end }),
            replacement: None,
            fingerprint: None,
            message: String::new(),
        }
    }

    #[test]
    fn scalars_carry_escaped_pointers_in_document_order() {
        let value = json!({"a/b": ["x", 7, true, null], "c~": {"d": "y"}});
        let p = payload(&value);
        let got: Vec<(&str, &str, bool)> =
            p.scalars.iter().map(|s| (s.pointer.as_str(), s.text.as_str(), s.is_number)).collect();
        assert_eq!(got, vec![("/a~1b/0", "x", false), ("/a~1b/1", "7", true), ("/c~0/d", "y", false)]);
        assert_eq!(serde_json::from_str::<Value>(&p.json).unwrap(), value);
    }

    #[test]
    fn findings_are_rerooted_onto_the_message() {
        let value = json!({"q": "key=héllo"});
        let part = Part { at: "/params/arguments", value: &value };
        let f = read_finding("p", part, finding("/q", Some((4, 10)))).unwrap();
        assert_eq!(f.pointer, "/params/arguments/q");
        assert_eq!(f.span, Some(Span { start: 4, end: 10 }));
        assert_eq!(f.fingerprint, fingerprint("héllo"));
        assert_eq!(f.plugin.as_deref(), Some("p"));
    }

    #[test]
    fn findings_that_do_not_fit_the_payload_are_refused() {
        let value = json!({"q": "héllo", "o": {}});
        let part = Part { at: "", value: &value };
        for (pointer, span) in
            [("/nope", None), ("/o", None), ("/q", Some((0, 99))), ("/q", Some((2, 3))), ("/q", Some((3, 1)))]
        {
            assert!(read_finding("p", part, finding(pointer, span)).is_err(), "{pointer} {span:?}");
        }
        let mut bad_confidence = finding("/q", None);
        bad_confidence.confidence = f32::NAN;
        assert!(read_finding("p", part, bad_confidence).is_err());
    }
}
