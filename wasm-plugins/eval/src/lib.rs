//! Runs the shipped detectors over the labelled corpus in `tests/corpus/<detector>/` and
//! scores them: precision and recall over the expected rule ids of each case, and how many
//! benign cases drew any finding at all.

pub mod payloads;

use forge_plugin_sdk::{Config, Context, Finding, Hook, Payload, Severity};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub type Detect = fn(&Context, &Payload, &Config) -> Result<Vec<Finding>, String>;

/// The shipped detectors by corpus name.
pub const DETECTORS: &[(&str, Detect)] = &[
    ("code-exec", code_exec::detect),
    ("pii", pii::detect),
    ("secrets", secrets::detect),
    ("tool-poisoning", tool_poisoning::detect),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    pub hook: String,
    pub method: String,
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default)]
    pub tool_definition: Option<Value>,
    pub payload: Value,
    /// The rule ids a correct detector reports; empty for a benign case.
    pub expect: Vec<String>,
    /// For code-exec: the least severity the worst expected finding must carry.
    #[serde(default)]
    pub min_severity: Option<String>,
    #[serde(default)]
    pub config: Option<Value>,
}

impl Case {
    pub fn context(&self) -> Context {
        let hook = match self.hook.as_str() {
            "request" => Hook::Request,
            "response" => Hook::Response,
            "tool-list" => Hook::ToolList,
            other => panic!("case {}: unknown hook {other}", self.id),
        };
        let cx = Context::new(hook, &self.method);
        match &self.tool {
            Some(tool) => cx.with_tool(tool, self.tool_definition.as_ref()),
            None => cx,
        }
    }

    pub fn min_severity(&self) -> Option<Severity> {
        self.min_severity.as_deref().map(|s| match s {
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            other => panic!("case {}: unknown severity {other}", self.id),
        })
    }
}

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus")
}

/// Every case of one detector's corpus (all `*.jsonl` files in its directory).
pub fn load(detector: &str) -> Vec<Case> {
    let dir = corpus_dir().join(detector);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let case = serde_json::from_str(line).unwrap_or_else(|e| panic!("{}:{}: {e}", file.display(), n + 1));
            cases.push(case);
        }
    }
    cases
}

#[derive(Debug, Default, Clone)]
pub struct Score {
    pub cases: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    /// Cases whose findings were all milder than the case's `min_severity`.
    pub too_mild: usize,
    pub benign_cases: usize,
    pub benign_flagged: usize,
    /// One line per wrong answer, for the test's failure message.
    pub mistakes: Vec<String>,
}

impl Score {
    pub fn precision(&self) -> f64 {
        ratio(self.true_positives, self.true_positives + self.false_positives)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.true_positives, self.true_positives + self.false_negatives + self.too_mild)
    }

    /// Share of benign cases that drew any finding.
    pub fn false_positive_rate(&self) -> f64 {
        if self.benign_cases == 0 {
            0.0
        } else {
            self.benign_flagged as f64 / self.benign_cases as f64
        }
    }
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 {
        1.0
    } else {
        n as f64 / d as f64
    }
}

/// Scores `detect` on `cases`. `include` picks the cases that count (all, or a subset such
/// as the high-severity positives).
pub fn score(detect: Detect, cases: &[Case], include: impl Fn(&Case) -> bool) -> Score {
    let mut s = Score::default();
    for case in cases.iter().filter(|c| include(c)) {
        s.cases += 1;
        let payload = Payload::from_value(&case.payload);
        let config = Config::from_json(&case.config.as_ref().map_or("{}".to_owned(), Value::to_string))
            .expect("case config is JSON");
        let findings = match detect(&case.context(), &payload, &config) {
            Ok(f) => f,
            Err(e) => {
                s.mistakes.push(format!("{}: detector error {e}", case.id));
                Vec::new()
            }
        };
        let found: BTreeSet<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
        let expected: BTreeSet<&str> = case.expect.iter().map(String::as_str).collect();
        if expected.is_empty() {
            s.benign_cases += 1;
            if !found.is_empty() {
                s.benign_flagged += 1;
            }
        }
        s.true_positives += expected.intersection(&found).count();
        // A case with a least severity is missed if its worst expected finding is milder.
        if let Some(min) = case.min_severity() {
            let worst = findings.iter().filter(|f| expected.contains(f.rule_id.as_str())).map(|f| f.severity).max();
            if worst.is_some_and(|w| w < min) {
                s.too_mild += 1;
                s.mistakes.push(format!("{}: reported as {worst:?}, expected at least {min:?}", case.id));
            }
        }
        for id in found.difference(&expected) {
            s.false_positives += 1;
            s.mistakes.push(format!("{}: unexpected {id}", case.id));
        }
        for id in expected.difference(&found) {
            s.false_negatives += 1;
            s.mistakes.push(format!("{}: missed {id}", case.id));
        }
    }
    s
}
