//! National identifiers, one table entry each.
//!
//! To add one: write its shape as a regex, a `valid` function for what the regex cannot say
//! (check digits, reserved prefixes), and the words that must be near it (a bare run of
//! letters and digits is rarely an ID on its own); then add an entry to `IDS`, positives and
//! near-misses to `tests/corpus/pii/`, and a line to DETECTORS.md. The rule id is
//! `pii.<country>-<id>` (ISO 3166 alpha-2 country code).

use crate::{embedded, Hit, Scope};
use forge_plugin_sdk::LazyRegex;

pub struct NationalId {
    pub rule: &'static str,
    pub what: &'static str,
    pub regex: LazyRegex,
    pub valid: fn(&str) -> bool,
    pub words: &'static [&'static str],
}

pub static IDS: [NationalId; 1] = [NationalId {
    rule: "pii.uk-nino",
    what: "UK National Insurance number",
    regex: LazyRegex::new(r"(?i)[A-CEGHJ-PR-TW-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]"),
    valid: uk_nino_valid,
    words: &["national insurance", "nino", "ni number", "ni no", "nin"],
}];

/// HMRC never allocates these prefixes (and `O` never appears as the second letter).
fn uk_nino_valid(s: &str) -> bool {
    let prefix = s[..2].to_ascii_uppercase();
    !["BG", "GB", "NK", "KN", "TN", "NT", "ZZ"].contains(&prefix.as_str()) && &prefix[1..] != "O"
}

pub fn scan(scope: &Scope, hits: &mut Vec<Hit>) {
    if scope.scalar.is_number {
        return;
    }
    let text = scope.text();
    for id in IDS.iter().filter(|id| scope.mentions_anywhere(id.words)) {
        for m in id.regex.find_iter(text) {
            if embedded(text, &m.range(), b"") || !(id.valid)(m.as_str()) || !scope.mentions(m.start(), 40, id.words) {
                continue;
            }
            hits.push(Hit { rule: id.rule, range: m.range(), confidence: 0.85, what: id.what });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::ids;

    #[test]
    fn a_nino_needs_its_words_and_an_allocated_prefix() {
        assert_eq!(ids(r#"{"t":"National Insurance number: JG 10 32 85 A"}"#), ["pii.uk-nino"]);
        assert!(ids(r#"{"t":"National Insurance number: QQ 12 34 56 C"}"#).is_empty());
        assert_eq!(ids(r#"{"nino":"AB123456C"}"#), ["pii.uk-nino"]);
        assert!(ids(r#"{"t":"part AB123456C"}"#).is_empty());
        assert!(ids(r#"{"nino":"GB123456C"}"#).is_empty());
    }
}
