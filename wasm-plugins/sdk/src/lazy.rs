//! Regexes compiled on first use, ASCII-only.
//!
//! The gateway gives every call a fresh instance, so a plugin's statics start empty each
//! call: a detector with a hundred rules should compile only the ones whose cheap prefilter
//! (a keyword, a character) matched. `LazyRegex` makes that the easy way to write a rule.
//!
//! A detector without `prepare` pays compilation on every call, so it is kept cheap:
//! - Patterns are compiled without Unicode: `\w`, `\d`, `\s`, `\b` and `(?i)` are ASCII.
//!   Credential formats, card numbers and English instructions are ASCII, and Unicode
//!   classes make compilation tens of times slower, automata larger, and push the fast DFA
//!   engines aside on any non-ASCII text.
//! - The engine (regex-automata's meta regex, which the `regex` crate wraps) is built
//!   with literal prefilters: a pattern with a literal in it (`@` of an email, `AKIA` of a
//!   key id) skips to where that literal occurs instead of running the DFA over all the
//!   text. They cost compile time, which a prepared detector pays once at load (see
//!   [`export_detector!`](crate::export_detector)), not per call. The lazy DFA builds its
//!   states during the search.
//!
//! Matches are reported as byte ranges of the `&str` searched; a negated class (`[^\n]`)
//! can stop inside a multi-byte character, which [`Match::as_str`] answers with an empty
//! string.

use regex_automata::meta::{self, Regex};
use regex_automata::util::syntax;
use std::ops::Range;
use std::sync::OnceLock;

pub struct LazyRegex {
    pattern: &'static str,
    cell: OnceLock<Regex>,
}

impl LazyRegex {
    pub const fn new(pattern: &'static str) -> Self {
        LazyRegex { pattern, cell: OnceLock::new() }
    }

    /// The compiled regex. Patterns are part of the plugin, so an invalid one is a bug that
    /// the plugin's own tests catch (with [`LazyRegex::check`]).
    fn get(&self) -> &Regex {
        self.cell
            .get_or_init(|| compile(self.pattern).unwrap_or_else(|e| panic!("invalid pattern {}: {e}", self.pattern)))
    }

    /// Compiles the pattern now rather than at its first search: for a detector's `prepare`,
    /// whose work the gateway snapshots (see [`export_detector!`](crate::export_detector)).
    pub fn compile_now(&self) {
        self.get();
    }

    /// Compiles the pattern, for tests that every rule's regex is valid.
    pub fn check(&self) -> Result<(), String> {
        compile(self.pattern).map(drop)
    }

    pub fn pattern(&self) -> &'static str {
        self.pattern
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.get().is_match(text.as_bytes())
    }

    pub fn find_iter<'t>(&self, text: &'t str) -> impl Iterator<Item = Match<'t>> + use<'_, 't> {
        self.get().find_iter(text.as_bytes()).map(move |m| Match { text, range: m.range() })
    }

    pub fn captures_iter<'t>(&self, text: &'t str) -> impl Iterator<Item = Captures<'t>> + use<'_, 't> {
        self.get()
            .captures_iter(text.as_bytes())
            .map(move |c| Captures { text, groups: c.iter().map(|g| g.map(|m| m.range())).collect() })
    }

    /// Groups including the whole match (group 0).
    pub fn captures_len(&self) -> usize {
        self.get().captures_len()
    }
}

fn compile(pattern: &str) -> Result<Regex, String> {
    meta::Builder::new()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(Regex::config().utf8_empty(false))
        .build(pattern)
        .map_err(|e| e.to_string())
}

/// A match in a `&str`, as a byte range.
#[derive(Debug, Clone)]
pub struct Match<'t> {
    text: &'t str,
    range: Range<usize>,
}

impl<'t> Match<'t> {
    pub fn start(&self) -> usize {
        self.range.start
    }

    pub fn end(&self) -> usize {
        self.range.end
    }

    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }

    /// The matched text; empty if the match does not start and end on character boundaries.
    pub fn as_str(&self) -> &'t str {
        self.text.get(self.range.clone()).unwrap_or("")
    }
}

/// The groups of one match; `caps[i]` is group `i`'s text (empty if it did not take part).
pub struct Captures<'t> {
    text: &'t str,
    groups: Vec<Option<Range<usize>>>,
}

impl<'t> Captures<'t> {
    pub fn get(&self, i: usize) -> Option<Match<'t>> {
        let range = self.groups.get(i)?.clone()?;
        Some(Match { text: self.text, range })
    }
}

impl std::ops::Index<usize> for Captures<'_> {
    type Output = str;
    fn index(&self, i: usize) -> &str {
        self.get(i).map_or("", |m| m.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_ascii_and_ranges_are_bytes() {
        static WORD: LazyRegex = LazyRegex::new(r"\w+");
        let found: Vec<_> = WORD.find_iter("café au lait").map(|m| m.as_str()).collect();
        assert_eq!(found, ["caf", "au", "lait"]);
        static ANY: LazyRegex = LazyRegex::new(r"f[^ ]");
        // `[^ ]` takes one byte of the two-byte `é`: the range is reported, the text is not.
        let m = ANY.find_iter("café").next().unwrap();
        assert_eq!((m.range(), m.as_str()), (2..4, ""));
    }

    #[test]
    fn captures_index_by_group() {
        static KV: LazyRegex = LazyRegex::new(r"(\w+)=(\w+)?");
        let c = KV.captures_iter("a=1 b=").collect::<Vec<_>>();
        assert_eq!((&c[0][1], &c[0][2]), ("a", "1"));
        assert_eq!(&c[1][2], "");
        assert!(c[1].get(2).is_none());
        assert!(LazyRegex::new("(").check().is_err());
    }
}
