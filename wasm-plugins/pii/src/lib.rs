//! Forge's PII detector: email addresses, phone numbers, payment cards, US SSNs, IBANs, IP
//! addresses, and national identifiers (see [`national`] for how to add one).
//!
//! Structured identifiers are validated (Luhn and issuer ranges, mod-97 and country
//! lengths, SSN area rules, routable addresses) and, where a format alone is ambiguous (a
//! bare run of digits, a national phone format), must sit next to a word that says what it
//! is — the scalar's key (`card_number`) or the text just before it.

mod contact;
mod financial;
pub mod national;
mod network;
mod shapes;

use forge_plugin_sdk::{Category, Config, Context, Finding, Payload, Scalar, Severity};
use serde::Deserialize;
use std::ops::Range;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Options {
    /// Rule ids (`pii.…`) not to run.
    disabled_rules: Vec<String>,
    /// Email domains that are not personal data here (a company's own support addresses).
    email_allow_domains: Vec<String>,
}

/// One match of one rule, before it becomes a finding.
pub struct Hit {
    pub rule: &'static str,
    pub range: Range<usize>,
    pub confidence: f32,
    pub what: &'static str,
}

/// The text a scalar's context words are looked for in: its key and the text just before `at`.
pub struct Scope<'a> {
    pub scalar: &'a Scalar,
    field: String,
    lower: String,
    digits: usize,
    shapes: shapes::Shapes,
}

impl<'a> Scope<'a> {
    fn new(scalar: &'a Scalar) -> Self {
        Scope {
            scalar,
            field: scalar.field_name().to_ascii_lowercase(),
            lower: scalar.text.to_ascii_lowercase(),
            digits: scalar.text.bytes().filter(u8::is_ascii_digit).count(),
            shapes: shapes::Shapes::of(&scalar.text),
        }
    }

    pub fn text(&self) -> &'a str {
        &self.scalar.text
    }

    /// Whether one of `words` starts a word in the key or in the `window` bytes before `at`
    /// (`card` in `card_number` and `Card:`, not in `discard`).
    pub fn mentions(&self, at: usize, window: usize, words: &[&str]) -> bool {
        let mut from = at.saturating_sub(window);
        while !self.text().is_char_boundary(from) {
            from -= 1;
        }
        let before = self.text()[from..at].to_ascii_lowercase();
        words.iter().any(|w| starts_word(&self.field, w) || starts_word(&before, w))
    }

    /// Whether one of `words` starts a word in the key or anywhere in the text: a cheap
    /// test before running a rule that needs them near its match.
    pub fn mentions_anywhere(&self, words: &[&str]) -> bool {
        words.iter().any(|w| starts_word(&self.field, w) || starts_word(&self.lower, w))
    }

    /// How many ASCII digits the text has: rules for long numbers skip texts with fewer.
    pub fn digits(&self) -> usize {
        self.digits
    }

    /// Which structured formats could occur in the text: rules skip texts without theirs.
    pub fn shapes(&self) -> &shapes::Shapes {
        &self.shapes
    }
}

pub fn detect(_cx: &Context, payload: &Payload, config: &Config) -> Result<Vec<Finding>, String> {
    let options: Options = config.parse()?;
    let mut findings = Vec::new();
    for scalar in &payload.scalars {
        let scope = Scope::new(scalar);
        let mut hits = Vec::new();
        if !scalar.is_number {
            contact::emails(&scope, &options.email_allow_domains, &mut hits);
            contact::phones(&scope, &mut hits);
            network::ipv4(&scope, &mut hits);
            network::ipv6(&scope, &mut hits);
            financial::ibans(&scope, &mut hits);
            financial::ssns(&scope, &mut hits);
        }
        financial::cards(&scope, &mut hits);
        national::scan(&scope, &mut hits);
        hits.retain(|h| !options.disabled_rules.iter().any(|d| d == h.rule));
        findings.extend(resolve(hits).into_iter().map(|h| {
            Finding::new(h.rule, Category::Pii, Severity::Medium)
                .confidence(h.confidence)
                .at(scalar, h.range)
                .message(format!("{} in `{}`", h.what, scalar.field_name()))
        }));
    }
    Ok(findings)
}

/// Overlapping hits keep the longer one (a card number is not also a phone number).
fn resolve(mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_by_key(|h| (std::cmp::Reverse(h.range.len()), h.range.start));
    let mut kept: Vec<Hit> = Vec::new();
    for hit in hits {
        if !kept.iter().any(|k| k.range.start < hit.range.end && hit.range.start < k.range.end) {
            kept.push(hit);
        }
    }
    kept.sort_by_key(|h| h.range.start);
    kept
}

fn starts_word(haystack: &str, word: &str) -> bool {
    haystack.match_indices(word).any(|(i, _)| i == 0 || !haystack.as_bytes()[i - 1].is_ascii_alphanumeric())
}

/// Whether the bytes around `range` continue a longer token (so the match is only part of
/// an identifier, a version or a hash).
pub fn embedded(text: &str, range: &Range<usize>, also: &[u8]) -> bool {
    let bytes = text.as_bytes();
    let joins = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || also.contains(&b);
    (range.start > 0 && joins(bytes[range.start - 1])) || (range.end < bytes.len() && joins(bytes[range.end]))
}

/// Compiles every pattern and warms them on ordinary text, for the gateway's snapshot.
pub fn prepare() {
    contact::prepare();
    financial::prepare();
    network::prepare();
    national::IDS.iter().for_each(|id| id.regex.compile_now());
    let cx = Context::new(forge_plugin_sdk::Hook::Response, "tools/call");
    forge_plugin_sdk::rehearse(
        detect,
        &cx,
        &serde_json::json!({"content": [{"type": "text", "text": forge_plugin_sdk::ORDINARY_TEXT}]}),
    );
}

forge_plugin_sdk::export_detector!(detect, prepare);

#[cfg(test)]
mod tests {
    use super::*;
    use forge_plugin_sdk::Hook;

    pub fn ids(json: &str) -> Vec<String> {
        let cx = Context::new(Hook::Response, "tools/call");
        detect(&cx, &Payload::from_json(json).unwrap(), &Config::default())
            .unwrap()
            .into_iter()
            .map(|f| f.rule_id)
            .collect()
    }

    #[test]
    fn findings_point_at_the_span_for_redaction() {
        let cx = Context::new(Hook::Response, "tools/call");
        let p = Payload::from_json(r#"{"content":[{"type":"text","text":"Contact: dana.kim@acme-corp.com today"}]}"#)
            .unwrap();
        let f = detect(&cx, &p, &Config::default()).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].pointer, "/content/0/text");
        assert_eq!(f[0].range(), Some(9..31));
        assert_eq!(f[0].rule_id, "pii.email");
    }

    #[test]
    fn rules_can_be_disabled() {
        let cx = Context::new(Hook::Response, "tools/call");
        let p = Payload::from_json(r#"{"t":"dana.kim@acme-corp.com"}"#).unwrap();
        let c = Config::from_json(r#"{"disabled_rules":["pii.email"]}"#).unwrap();
        assert!(detect(&cx, &p, &c).unwrap().is_empty());
        let c = Config::from_json(r#"{"email_allow_domains":["acme-corp.com"]}"#).unwrap();
        assert!(detect(&cx, &p, &c).unwrap().is_empty());
        assert!(detect(&cx, &p, &Config::from_json(r#"{"disabled":1}"#).unwrap()).is_err());
    }
}
