//! A pattern rule behind a keyword prefilter: a regex that runs (and so is compiled) only
//! on text that contains one of its keywords, with an optional check of the match in its
//! surroundings for what a regex cannot say.

use crate::{LazyRegex, Severity};
use std::ops::Range;

pub struct Rule {
    /// The full rule id, e.g. `code-exec.reverse-shell`.
    pub id: &'static str,
    pub severity: Severity,
    /// What a match is, for the finding's message.
    pub what: &'static str,
    /// Lowercase words one of which the text must contain for the regex to run.
    pub keywords: &'static [&'static str],
    pub regex: LazyRegex,
    /// Called with the whole text and the match; false drops the match.
    pub check: Option<fn(&str, Range<usize>) -> bool>,
}

impl Rule {
    pub const fn new(
        id: &'static str,
        severity: Severity,
        what: &'static str,
        keywords: &'static [&'static str],
        pattern: &'static str,
    ) -> Rule {
        Rule { id, severity, what, keywords, regex: LazyRegex::new(pattern), check: None }
    }

    pub const fn checked(mut self, check: fn(&str, Range<usize>) -> bool) -> Rule {
        self.check = Some(check);
        self
    }

    /// The first match in `text` that passes the check. `lower` is `text` in ASCII
    /// lowercase, computed once for all rules.
    pub fn first_match(&self, text: &str, lower: &str) -> Option<Range<usize>> {
        if !self.keywords.iter().any(|k| lower.contains(k)) {
            return None;
        }
        self.regex.find_iter(text).map(|m| m.range()).find(|r| self.check.is_none_or(|check| check(text, r.clone())))
    }

    /// For tests: the pattern compiles and the keywords are lowercase.
    pub fn validate(&self) -> Result<(), String> {
        self.regex.check().map_err(|e| format!("{}: {e}", self.id))?;
        match self.keywords.iter().find(|k| **k != k.to_ascii_lowercase()) {
            Some(k) => Err(format!("{}: keyword {k:?} is not lowercase", self.id)),
            None if self.keywords.is_empty() => Err(format!("{}: no keywords", self.id)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_after_dot(text: &str, m: Range<usize>) -> bool {
        !text[..m.start].ends_with('.')
    }

    static EVAL: Rule = Rule::new("x.eval", Severity::Medium, "eval", &["eval"], r"\beval\(").checked(not_after_dot);

    #[test]
    fn keywords_gate_and_checks_filter() {
        assert_eq!(EVAL.first_match("model.eval(); eval(x)", "model.eval(); eval(x)"), Some(14..19));
        assert_eq!(EVAL.first_match("model.eval()", "model.eval()"), None);
        assert_eq!(EVAL.first_match("EVAL(x)", "nothing"), None);
        assert!(EVAL.validate().is_ok());
        assert!(Rule::new("x.y", Severity::Low, "", &["Up"], "a").validate().is_err());
    }
}
