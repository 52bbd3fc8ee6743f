//! Regexes compiled on first use.
//!
//! The gateway gives every call a fresh instance, so a plugin's statics start empty each
//! call: a detector with a hundred rules should compile only the ones whose cheap prefilter
//! (a keyword, a character) matched. `LazyRegex` makes that the easy way to write a rule.

use regex::Regex;
use std::sync::OnceLock;

pub struct LazyRegex {
    pattern: &'static str,
    cell: OnceLock<Regex>,
}

impl LazyRegex {
    pub const fn new(pattern: &'static str) -> Self {
        LazyRegex {
            pattern,
            cell: OnceLock::new(),
        }
    }

    /// The compiled regex. Patterns are part of the plugin, so an invalid one is a bug that
    /// the plugin's own tests catch (`LazyRegex::check` in a test).
    pub fn get(&self) -> &Regex {
        self.cell
            .get_or_init(|| Regex::new(self.pattern).unwrap_or_else(|e| panic!("invalid pattern {}: {e}", self.pattern)))
    }

    /// Compiles the pattern, for tests that every rule's regex is valid.
    pub fn check(&self) -> Result<(), regex::Error> {
        Regex::new(self.pattern).map(drop)
    }

    pub fn pattern(&self) -> &'static str {
        self.pattern
    }
}

impl std::ops::Deref for LazyRegex {
    type Target = Regex;
    fn deref(&self) -> &Regex {
        self.get()
    }
}
