//! Findings, and the fingerprint that stands in for the matched text.

use crate::Scalar;
use sha2::{Digest, Sha256};
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Pii,
    Secret,
    CodeExec,
    Poisoning,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// UTF-8 byte offsets `[start, end)` inside one scalar's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

/// One thing a detector found. Build it with [`Finding::new`] and [`Finding::at`]: `at`
/// records where and fingerprints the match, so the matched text itself never leaves the
/// plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule_id: String,
    pub category: Category,
    pub severity: Severity,
    pub confidence: f32,
    pub pointer: String,
    pub span: Option<Span>,
    pub replacement: Option<String>,
    pub fingerprint: Option<String>,
    pub message: String,
}

impl Finding {
    /// A finding of `rule_id` with confidence 1.0 and no location yet.
    pub fn new(rule_id: impl Into<String>, category: Category, severity: Severity) -> Self {
        Finding {
            rule_id: rule_id.into(),
            category,
            severity,
            confidence: 1.0,
            pointer: String::new(),
            span: None,
            replacement: None,
            fingerprint: None,
            message: String::new(),
        }
    }

    /// Places the finding on `range` of `scalar`'s text and fingerprints that text.
    /// A range past the text, or not on character boundaries, is clamped to the whole value.
    pub fn at(mut self, scalar: &Scalar, range: Range<usize>) -> Self {
        self.pointer = scalar.pointer.clone();
        match scalar.text.get(range.clone()) {
            Some(matched) => {
                self.fingerprint = Some(fingerprint(matched));
                self.span = Some(Span { start: range.start as u32, end: range.end as u32 });
            }
            None => return self.on(scalar),
        }
        self
    }

    /// Places the finding on the whole of `scalar`.
    pub fn on(mut self, scalar: &Scalar) -> Self {
        self.pointer = scalar.pointer.clone();
        self.span = None;
        self.fingerprint = Some(fingerprint(&scalar.text));
        self
    }

    /// Places the finding on a pointer that is not a scalar (an object or array), with
    /// `fingerprinted` the text it stands for.
    pub fn at_pointer(mut self, pointer: &str, fingerprinted: &str) -> Self {
        self.pointer = pointer.to_owned();
        self.span = None;
        self.fingerprint = Some(fingerprint(fingerprinted));
        self
    }

    pub fn confidence(mut self, confidence: f32) -> Self {
        self.confidence = confidence.clamp(0.0, 1.0);
        self
    }

    /// A human-readable explanation. It must not contain the matched text.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    pub fn replacement(mut self, replacement: impl Into<String>) -> Self {
        self.replacement = Some(replacement.into());
        self
    }

    /// The span as a byte range, when there is one.
    pub fn range(&self) -> Option<Range<usize>> {
        self.span.map(|s| s.start as usize..s.end as usize)
    }
}

/// The first 12 hex digits of the SHA-256 of `text`: enough to correlate findings across
/// messages and logs, far too little to recover a secret.
pub fn fingerprint(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> Scalar {
        Scalar { pointer: "/arguments/token".into(), text: text.into(), is_number: false }
    }

    #[test]
    fn at_fingerprints_the_span_and_never_stores_the_text() {
        let s = scalar("key=hunter2!");
        let f = Finding::new("x.y", Category::Secret, Severity::High).at(&s, 4..11);
        assert_eq!(f.span, Some(Span { start: 4, end: 11 }));
        assert_eq!(f.fingerprint.as_deref(), Some(fingerprint("hunter2").as_str()));
        assert_eq!(f.fingerprint.as_ref().unwrap().len(), 12);
        assert!(!format!("{f:?}").contains("hunter2"));
    }

    #[test]
    fn a_range_off_char_boundaries_falls_back_to_the_whole_value() {
        let s = scalar("é1");
        let f = Finding::new("x.y", Category::Pii, Severity::Low).at(&s, 1..3);
        assert_eq!(f.span, None);
        assert_eq!(f.fingerprint, Some(fingerprint("é1")));
    }

    #[test]
    fn fingerprint_is_sha256_prefix() {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223…
        assert_eq!(fingerprint("abc"), "ba7816bf8f01");
    }
}
