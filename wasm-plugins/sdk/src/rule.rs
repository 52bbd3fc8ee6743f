//! A pattern rule behind a keyword prefilter: a regex that runs (and so is compiled) only
//! on text that contains one of its keywords, with an optional check of the match in its
//! surroundings for what a regex cannot say.

use crate::{LazyRegex, Severity};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
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
        self.search(text)
    }

    /// The first match in `text` that passes the check, keywords or not: for callers that
    /// asked [`Keywords`] already.
    pub fn search(&self, text: &str) -> Option<Range<usize>> {
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

/// The keywords of a table of rules in one automaton: which rules' keywords occur in a text,
/// in one pass over it rather than one substring search per keyword. Building it is paid
/// once in a detector's `prepare` (keep it in a `LazyLock` and force it there).
pub struct Keywords {
    automaton: AhoCorasick,
    /// The rule (its index in the table) each keyword belongs to.
    owners: Vec<usize>,
    rules: usize,
}

impl Keywords {
    pub fn new(rules: &[Rule]) -> Keywords {
        let (words, owners): (Vec<_>, Vec<_>) =
            rules.iter().enumerate().flat_map(|(i, r)| r.keywords.iter().map(move |k| (*k, i))).unzip();
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(words)
            .expect("keywords are plain strings");
        Keywords { automaton, owners, rules: rules.len() }
    }

    /// For each rule of the table, whether one of its keywords occurs in `text` (ASCII
    /// case-insensitively, as [`Rule::first_match`] tests them).
    pub fn present(&self, text: &str) -> Vec<bool> {
        let mut present = vec![false; self.rules];
        for m in self.automaton.find_overlapping_iter(text) {
            present[self.owners[m.pattern().as_usize()]] = true;
        }
        present
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

    #[test]
    fn keywords_say_which_rules_may_match_in_one_pass() {
        static RULES: [Rule; 3] = [
            Rule::new("x.eval", Severity::Medium, "eval", &["eval"], r"eval"),
            Rule::new("x.curl", Severity::High, "curl", &["curl", "wget"], r"curl|wget"),
            Rule::new("x.rm", Severity::High, "rm", &["rm -"], r"rm -rf"),
        ];
        let keywords = Keywords::new(&RULES);
        assert_eq!(keywords.present("WGET http://x; Eval(y)"), [true, true, false]);
        // Substrings, as `first_match` tests them: `rm -` occurs in `term -x`.
        assert_eq!(keywords.present("term -x"), [false, false, true]);
        assert_eq!(keywords.present(""), [false, false, false]);
    }
}
