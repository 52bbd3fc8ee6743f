//! Returns what a detector must not: chosen by config `mode` — `pointer` (a pointer to
//! nothing in the payload), `span` (a span past the end of its string), `error` (an `err`).

wit_bindgen::generate!({ path: "../../../wit", world: "detector" });

use forge::detector::types::{Category, Severity, Span};

struct Garbage;

impl Guest for Garbage {
    fn detect(_cx: Context, input: Payload, config: String) -> Result<Vec<Finding>, String> {
        let first = input.scalars.first().map(|s| (s.pointer.clone(), s.text.len() as u32));
        let (pointer, len) = first.unwrap_or_default();
        let finding = |pointer: String, span: Span| Finding {
            rule_id: "garbage.output".into(),
            category: Category::Custom,
            severity: Severity::Low,
            confidence: 0.5,
            pointer,
            span: Some(span),
            replacement: None,
            fingerprint: None,
            message: "garbage".into(),
        };
        if config.contains("\"pointer\"") {
            Ok(vec![finding("/no/such/value".into(), Span { start: 0, end: 1 })])
        } else if config.contains("\"span\"") {
            Ok(vec![finding(pointer, Span { start: 0, end: len + 10 })])
        } else {
            Err("this detector refuses to work".into())
        }
    }
}

export!(Garbage);
