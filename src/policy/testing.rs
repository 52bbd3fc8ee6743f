//! Runs a bundle's own tests, as `opa test` would: every rule named `test_*` is evaluated
//! on the interpreter and passes when its value is `true`.
//!
//! Tests run on the interpreter rather than the VM because tests need `with` (replacing
//! input and data), which only the interpreter provides; the VM is what serves traffic.

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::Engine;

use super::bundle::{Bundle, Compiled, ENTRYPOINT};
use super::PolicyError;

/// Each test's time limit: a test that loops forever must not stall a reload. Generous,
/// because it is wall-clock time: on a machine starved of CPU a test that needs a
/// millisecond can take seconds, and a bundle must not be refused for that.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct TestReport {
    /// In file, then line order.
    pub results: Vec<TestResult>,
    /// Present when asked for: line coverage of the bundle's non-test files.
    pub coverage: Option<Vec<FileCoverage>>,
}

#[derive(Debug)]
pub struct TestResult {
    /// The rule path, e.g. `data.forge.access_test.test_viewer_cannot_delete`.
    pub name: String,
    pub file: String,
    pub line: u32,
    pub outcome: TestOutcome,
    pub duration: Duration,
    /// What the test printed with `print()`.
    pub output: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TestOutcome {
    Pass,
    /// Undefined, false, or some other value.
    Fail(String),
    /// The evaluation itself failed (a runtime error, the time limit).
    Error(String),
}

#[derive(Debug)]
pub struct FileCoverage {
    pub file: String,
    pub covered: BTreeSet<u32>,
    pub not_covered: BTreeSet<u32>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.outcome == TestOutcome::Pass).count()
    }

    pub fn failures(&self) -> impl Iterator<Item = &TestResult> {
        self.results.iter().filter(|r| r.outcome != TestOutcome::Pass)
    }

    /// `Err(TestsFailed)` unless every test passed.
    pub fn check(&self) -> Result<(), PolicyError> {
        let failed: Vec<String> = self.failures().map(|r| r.name.clone()).collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(PolicyError::TestsFailed { failed, total: self.results.len() })
        }
    }
}

/// Runs every `test_*` rule of a compiled bundle, each within `timeout`.
pub(crate) fn run(
    bundle: &Bundle,
    compiled: &Compiled,
    coverage: bool,
    timeout: Duration,
) -> Result<TestReport, PolicyError> {
    let mut engine = compiled.engine.clone();
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: timeout,
        check_interval: NonZeroU32::new(64).expect("non-zero"),
    });
    engine.set_enable_coverage(coverage);
    let tests = discover(&mut engine)?;
    let mut results = Vec::with_capacity(tests.len());
    for (name, file, line) in tests {
        let started = Instant::now();
        let outcome = match engine.eval_rule(name.clone()) {
            Ok(regorus::Value::Bool(true)) => TestOutcome::Pass,
            Ok(regorus::Value::Undefined) => TestOutcome::Fail("undefined".into()),
            Ok(other) => TestOutcome::Fail(format!("evaluated to {other}, not true")),
            Err(e) => TestOutcome::Error(format!("{e:#}").trim().to_string()),
        };
        let duration = started.elapsed();
        let output = engine.take_prints().unwrap_or_default();
        results.push(TestResult { name, file, line, outcome, duration, output });
    }
    let coverage = coverage.then(|| file_coverage(bundle, &engine));
    Ok(TestReport { results, coverage })
}

/// Test rules in file, then line order.
fn discover(engine: &mut Engine) -> Result<Vec<(String, String, u32)>, PolicyError> {
    let compiled = engine
        .compile_with_entrypoint(&ENTRYPOINT.into())
        .map_err(|e| PolicyError::Runtime(format!("preparing tests: {e:#}")))?;
    let mut tests: Vec<(String, String, u32)> = compiled
        .get_rules()
        .iter()
        .filter(|(path, _)| path.rsplit('.').next().is_some_and(|name| name.starts_with("test_")))
        .filter_map(|(path, rules)| {
            let span = rules.first()?.span();
            Some((path.clone(), span.source.file().clone(), span.line))
        })
        .collect();
    tests.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
    Ok(tests)
}

/// regorus reports only files at least one test reached; the others are wholly uncovered.
fn file_coverage(bundle: &Bundle, engine: &Engine) -> Vec<FileCoverage> {
    let report = engine.get_coverage_report().unwrap_or_default();
    bundle
        .rego_files()
        .filter(|(_, is_test)| !is_test)
        .map(|(file, _)| match report.files.iter().find(|f| f.path == file) {
            Some(f) => {
                FileCoverage { file: file.to_string(), covered: f.covered.clone(), not_covered: f.not_covered.clone() }
            }
            None => FileCoverage { file: file.to_string(), covered: BTreeSet::new(), not_covered: BTreeSet::new() },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(files: &[(&str, &str)]) -> (tempfile::TempDir, Bundle) {
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in files {
            std::fs::write(dir.path().join(name), contents).unwrap();
        }
        let bundle = Bundle::read(dir.path()).unwrap();
        (dir, bundle)
    }

    const POLICY: &str = "package forge\nimport rego.v1\n\ndecision := {\"allow\": allow}\n\ndefault allow := false\n\nallow if input.user == \"admin\"\n\nunused if input.never\n";

    #[test]
    fn passing_failing_and_erroring_tests_are_told_apart() {
        let tests = "package forge_test\nimport rego.v1\n\n\
            test_admin_allowed if data.forge.allow with input as {\"user\": \"admin\"}\n\
            test_guest_allowed if data.forge.allow with input as {\"user\": \"guest\"}\n\
            test_divides if { print(\"dividing\"); 1 / 0 == 1 }\n\
            test_not_bool := 3\n";
        let (_dir, b) = bundle(&[("main.rego", POLICY), ("main_test.rego", tests)]);
        let report = run(&b, &b.compile().unwrap(), false, TEST_TIMEOUT).unwrap();
        let outcome = |name: &str| &report.results.iter().find(|r| r.name.ends_with(name)).unwrap().outcome;
        assert_eq!(outcome("test_admin_allowed"), &TestOutcome::Pass);
        assert_eq!(outcome("test_guest_allowed"), &TestOutcome::Fail("undefined".into()));
        assert!(matches!(outcome("test_divides"), TestOutcome::Error(e) if e.contains("divide")));
        assert!(matches!(outcome("test_not_bool"), TestOutcome::Fail(e) if e.contains("3")));
        assert_eq!(report.passed(), 1);
        let lines: Vec<u32> = report.results.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 7], "in source order");
        assert!(report.results[0].file.ends_with("main_test.rego"));
        assert_eq!(report.results[2].output.len(), 1, "print output is captured");
        match report.check() {
            Err(PolicyError::TestsFailed { failed, total }) => assert_eq!((failed.len(), total), (3, 4)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn coverage_lists_reached_and_unreached_lines_of_policy_files() {
        let tests = "package forge_test\nimport rego.v1\n\ntest_admin if data.forge.decision.allow with input as {\"user\": \"admin\"}\n";
        let other = "package forge.other\nimport rego.v1\n\nx if input.y\n";
        let (_dir, b) = bundle(&[("main.rego", POLICY), ("other.rego", other), ("main_test.rego", tests)]);
        let report = run(&b, &b.compile().unwrap(), true, TEST_TIMEOUT).unwrap();
        report.check().unwrap();
        let coverage = report.coverage.unwrap();
        assert_eq!(coverage.len(), 2, "test files are not measured");
        let main = coverage.iter().find(|f| f.file.ends_with("main.rego")).unwrap();
        assert!(main.covered.contains(&8), "{main:?}");
        assert!(main.not_covered.contains(&10), "{main:?}");
        let other = coverage.iter().find(|f| f.file.ends_with("other.rego")).unwrap();
        assert!(other.covered.is_empty());
    }

    #[test]
    fn a_test_that_never_ends_is_stopped() {
        let tests = "package forge_test\nimport rego.v1\n\n\
            test_forever if { count([1 | some i in numbers.range(1, 100000); some j in numbers.range(1, 100000)]) > 0 }\n";
        let (_dir, b) = bundle(&[("main.rego", POLICY), ("main_test.rego", tests)]);
        let started = Instant::now();
        let report = run(&b, &b.compile().unwrap(), false, Duration::from_millis(100)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(matches!(&report.results[0].outcome, TestOutcome::Error(e) if e.contains("time limit")), "{report:?}");
    }
}
