//! Characters a reader does not see: they hide instructions from the human reviewing a tool
//! definition while the model still reads them.

use crate::finding;
use forge_plugin_sdk::{Finding, Scalar, Severity};

/// What kind of hidden character `c` is, if it is one.
fn classify(c: char) -> Option<(&'static str, Severity, &'static str)> {
    match c as u32 {
        // Unicode tag characters mirror ASCII invisibly ("ASCII smuggling").
        0xE0000..=0xE007F => Some(("tool-poisoning.invisible-unicode", Severity::High, "invisible tag characters")),
        // Bidirectional overrides and isolates reorder what is displayed.
        0x202A..=0x202E | 0x2066..=0x2069 | 0x200E | 0x200F | 0x061C => {
            Some(("tool-poisoning.bidi-unicode", Severity::High, "bidirectional control characters"))
        }
        // Zero-width and invisible formatting. U+200D (joiner) and U+FE0F (emoji
        // presentation) are left out: emoji sequences use them.
        0x200B | 0x200C | 0x2060..=0x2064 | 0xFEFF | 0x00AD | 0x180E | 0x115F | 0x1160 | 0x3164 | 0xFFA0 => {
            Some(("tool-poisoning.invisible-unicode", Severity::Medium, "zero-width or invisible characters"))
        }
        _ => None,
    }
}

/// One finding per kind per scalar, spanning from the first such character to the last.
pub fn scan(scalar: &Scalar) -> Vec<Finding> {
    // Every hidden character is outside ASCII, and most definitions are ASCII throughout:
    // one vectorised check instead of decoding each character.
    if scalar.text.is_ascii() {
        return Vec::new();
    }
    let mut spans: Vec<(&'static str, Severity, &'static str, usize, usize)> = Vec::new();
    for (i, c) in scalar.text.char_indices() {
        if i == 0 && c == '\u{FEFF}' {
            continue;
        }
        let Some((id, severity, what)) = classify(c) else { continue };
        let end = i + c.len_utf8();
        match spans.iter_mut().find(|s| s.0 == id) {
            Some(s) => {
                s.1 = s.1.max(severity);
                s.4 = end;
            }
            None => spans.push((id, severity, what, i, end)),
        }
    }
    spans.into_iter().map(|(id, severity, what, start, end)| finding(id, severity, scalar, start..end, what)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<(&'static str, Severity)> {
        let s = Scalar { pointer: "/tools/0/description".into(), text: text.into(), is_number: false };
        scan(&s)
            .into_iter()
            .map(|f| (if f.rule_id.ends_with("bidi-unicode") { "bidi" } else { "invisible" }, f.severity))
            .collect()
    }

    #[test]
    fn hidden_characters_are_found_and_emoji_are_not() {
        let smuggled: String = "hi".chars().map(|c| char::from_u32(0xE0000 + c as u32).unwrap()).collect();
        assert_eq!(ids(&format!("Adds numbers.{smuggled}")), [("invisible", Severity::High)]);
        assert_eq!(ids("Safe\u{202E}txt.exe"), [("bidi", Severity::High)]);
        assert_eq!(ids("zero\u{200B}width"), [("invisible", Severity::Medium)]);
        assert!(ids("Family: 👨\u{200D}👩\u{200D}👧 ❤\u{FE0F}").is_empty());
        assert!(ids("\u{FEFF}A BOM at the start is harmless").is_empty());
    }
}
