//! `forge policy test | eval | check`: the tools policy authors use. Each writes its report
//! to `out` and returns whether the command succeeded; problems with the bundle are part
//! of the report, while an `Err` means the command itself could not run.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde::Deserialize;

use super::bundle::{Bundle, Compiled, ENTRYPOINT};
use super::config::PolicyConfig;
use super::store::decision_from;
use super::testing::{self, TestOutcome, TEST_TIMEOUT};
use super::vm::{self, Executable, Limits};
use super::PolicyError;

/// Whether a command succeeded; the process exit status follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Failure,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> ExitCode {
        match status {
            Status::Success => ExitCode::SUCCESS,
            Status::Failure => ExitCode::FAILURE,
        }
    }
}

/// Values longer than this are shortened in `eval`'s explanation.
const PREVIEW_CHARS: usize = 160;

/// Runs the bundle's `test_*` rules: one line per test, then the counts. With `coverage`,
/// also which lines of each policy file the tests evaluated.
pub fn test(dir: &Path, coverage: bool, out: &mut impl Write) -> anyhow::Result<Status> {
    let Some((bundle, compiled)) = compile(dir, out)? else { return Ok(Status::Failure) };
    let report = match testing::run(&bundle, &compiled, coverage, TEST_TIMEOUT) {
        Ok(report) => report,
        Err(e) => {
            writeln!(out, "{e}")?;
            return Ok(Status::Failure);
        }
    };
    let mut file = None;
    for result in &report.results {
        if file != Some(&result.file) {
            writeln!(out, "{}:", result.file)?;
            file = Some(&result.file);
        }
        let (label, detail) = match &result.outcome {
            TestOutcome::Pass => ("PASS", None),
            TestOutcome::Fail(why) => ("FAIL", Some(why)),
            TestOutcome::Error(why) => ("ERROR", Some(why)),
        };
        writeln!(out, "  {label:<5} {} ({:.1?})", result.name, result.duration)?;
        if let Some(detail) = detail {
            writeln!(out, "        line {}: {}", result.line, detail.replace('\n', "\n        "))?;
            for line in &result.output {
                writeln!(out, "        print: {line}")?;
            }
        }
    }
    let total = report.results.len();
    if total == 0 {
        writeln!(out, "no test_ rules found in {}", dir.display())?;
    } else {
        writeln!(out, "{}", "-".repeat(60))?;
        writeln!(out, "PASS: {}/{total}", report.passed())?;
        if report.passed() < total {
            writeln!(out, "FAIL: {}/{total}", total - report.passed())?;
        }
    }
    if let Some(files) = &report.coverage {
        writeln!(out, "\nCoverage (lines of policy files the tests evaluated):")?;
        let (mut covered, mut coverable) = (0, 0);
        for file in files {
            let (c, n) = (file.covered.len(), file.covered.len() + file.not_covered.len());
            covered += c;
            coverable += n;
            if n == 0 {
                writeln!(out, "  {:>6}  {}  (no test reached it)", "-", file.file)?;
                continue;
            }
            write!(out, "  {:>5.1}%  {}", percent(c, n), file.file)?;
            if !file.not_covered.is_empty() {
                let lines: Vec<String> = file.not_covered.iter().map(u32::to_string).collect();
                write!(out, "  not covered: {}", lines.join(", "))?;
            }
            writeln!(out)?;
        }
        writeln!(out, "  {:>5.1}%  total", percent(covered, coverable))?;
    }
    Ok(if report.passed() == total { Status::Success } else { Status::Failure })
}

/// Evaluates the bundle for the input document in `input` (JSON) and prints the decision,
/// then the rules that produced a value, as a short explanation of why.
pub fn eval(input: &Path, dir: &Path, out: &mut impl Write) -> anyhow::Result<Status> {
    let text = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not a JSON document", input.display()))?;
    let value = regorus::Value::deserialize(&json).with_context(|| format!("reading {}", input.display()))?;
    let Some((_, compiled)) = compile(dir, out)? else { return Ok(Status::Failure) };

    // The decision comes from the VM with the gateway's default limits, exactly as served.
    let defaults = PolicyConfig::default();
    let executable = Executable { id: vm::next_id(), program: compiled.program.clone(), data: compiled.data.clone() };
    let limits = Limits { timeout: defaults.eval_timeout, max_instructions: defaults.max_instructions };
    let decision = vm::execute(vm::next_id(), &executable, limits, value.clone()).and_then(decision_from);
    let decision = match decision {
        Ok(d) => d,
        Err(e) => {
            writeln!(out, "{e}\n{}", e.deny_reason().message)?;
            return Ok(Status::Failure);
        }
    };
    writeln!(out, "{}", serde_json::to_string_pretty(&decision)?)?;
    match decision.deny_reason() {
        Some(refusal) => writeln!(out, "\nrefused ({}): {}", refusal.code, refusal.message)?,
        None => writeln!(out, "\nallowed")?,
    }
    let mut engine = compiled.engine.clone();
    engine.set_input(value);
    writeln!(out, "\nRules that produced a value:")?;
    for (rule, value) in fired_rules(&mut engine)? {
        writeln!(out, "  {rule} = {value}")?;
    }
    // The bundle's tests run on regorus' interpreter, traffic on its VM: a policy the two
    // read differently would pass its tests and still misbehave.
    let interpreted = engine.eval_rule(ENTRYPOINT.to_string()).map_err(|e| PolicyError::Runtime(format!("{e:#}")));
    match interpreted.and_then(decision_from) {
        Ok(same) if same == decision => Ok(Status::Success),
        other => {
            let other = match other {
                Ok(d) => serde_json::to_string(&d)?,
                Err(e) => e.to_string(),
            };
            writeln!(out, "\nwarning: the interpreter, which runs the bundle's tests, decides differently: {other}")?;
            Ok(Status::Failure)
        }
    }
}

/// Compiles the bundle and reports every error with its file and line.
pub fn check(dir: &Path, out: &mut impl Write) -> anyhow::Result<Status> {
    let Some((bundle, compiled)) = compile(dir, out)? else { return Ok(Status::Failure) };
    let (tests, policies): (Vec<_>, Vec<_>) = bundle.rego_files().partition(|(_, is_test)| *is_test);
    writeln!(
        out,
        "{}: OK ({} policy files, {} test files; revision {}, digest {})",
        dir.display(),
        policies.len(),
        tests.len(),
        compiled.revision,
        bundle.digest()
    )?;
    Ok(Status::Success)
}

/// The bundle compiled, or `None` after printing why it does not compile.
fn compile(dir: &Path, out: &mut impl Write) -> anyhow::Result<Option<(Bundle, Compiled)>> {
    match Bundle::read(dir).and_then(|bundle| bundle.compile().map(|compiled| (bundle, compiled))) {
        Ok(compiled) => Ok(Some(compiled)),
        Err(PolicyError::Invalid { diagnostics }) => {
            for d in &diagnostics {
                writeln!(out, "{d}")?;
            }
            writeln!(out, "{}: {} error(s)", dir.display(), diagnostics.len())?;
            Ok(None)
        }
        Err(e) => {
            writeln!(out, "{e}")?;
            Ok(None)
        }
    }
}

/// Every non-test rule whose value for the engine's input is defined and not false or empty.
fn fired_rules(engine: &mut regorus::Engine) -> anyhow::Result<Vec<(String, String)>> {
    let mut rules: Vec<String> = engine
        .compile_with_entrypoint(&ENTRYPOINT.into())
        .map_err(|e| anyhow::anyhow!("{e:#}"))?
        .get_rules()
        .keys()
        .filter(|path| *path != ENTRYPOINT && !path.split('.').any(|c| c.ends_with("_test") || c.starts_with("test_")))
        .cloned()
        .collect();
    rules.sort();
    let mut fired = Vec::new();
    for rule in rules {
        let Ok(value) = engine.eval_rule(rule.clone()) else { continue };
        let empty = match &value {
            regorus::Value::Undefined | regorus::Value::Bool(false) | regorus::Value::Null => true,
            regorus::Value::Array(a) => a.is_empty(),
            regorus::Value::Set(s) => s.is_empty(),
            regorus::Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            fired.push((rule, preview(&value.to_string())));
        }
    }
    Ok(fired)
}

fn preview(text: &str) -> String {
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in files {
            std::fs::write(dir.path().join(name), contents).unwrap();
        }
        dir
    }

    const POLICY: &str = "package forge\nimport rego.v1\n\n\
        decision := {\"allow\": count(deny) == 0, \"reason\": concat(\"; \", deny)}\n\n\
        deny contains \"no deletes\" if input.message.tool.name == \"delete\"\n\n\
        unused if input.never\n";
    const TESTS: &str = "package forge_test\nimport rego.v1\n\n\
        test_delete_denied if not data.forge.decision.allow with input as {\"message\": {\"tool\": {\"name\": \"delete\"}}}\n\
        test_read_allowed if data.forge.decision.allow with input as {\"message\": {\"tool\": {\"name\": \"read\"}}}\n";

    fn run(f: impl FnOnce(&mut Vec<u8>) -> anyhow::Result<Status>) -> (Status, String) {
        let mut out = Vec::new();
        let status = f(&mut out).unwrap();
        (status, String::from_utf8(out).unwrap())
    }

    #[test]
    fn test_prints_a_line_per_test_and_counts() {
        let dir = bundle(&[("main.rego", POLICY), ("main_test.rego", TESTS)]);
        let (status, text) = run(|out| test(dir.path(), true, out));
        assert_eq!(status, Status::Success, "{text}");
        assert!(text.contains("PASS  data.forge_test.test_delete_denied"), "{text}");
        assert!(text.contains("PASS: 2/2"), "{text}");
        assert!(text.contains("not covered: 8"), "coverage names the unreached line: {text}");
    }

    #[test]
    fn a_failing_test_fails_the_command() {
        let failing = format!("{TESTS}test_wrong if data.forge.decision.allow with input as {{\"message\": {{\"tool\": {{\"name\": \"delete\"}}}}}}\n");
        let dir = bundle(&[("main.rego", POLICY), ("main_test.rego", &failing)]);
        let (status, text) = run(|out| test(dir.path(), false, out));
        assert_eq!(status, Status::Failure);
        assert!(text.contains("FAIL  data.forge_test.test_wrong"), "{text}");
        assert!(text.contains("line 6: undefined"), "{text}");
        assert!(text.contains("FAIL: 1/3"), "{text}");
    }

    #[test]
    fn eval_prints_the_decision_and_the_rules_that_fired() {
        let dir = bundle(&[("main.rego", POLICY)]);
        let input = dir.path().join("input.json");
        std::fs::write(&input, r#"{"message": {"tool": {"name": "delete"}}}"#).unwrap();
        let (status, text) = run(|out| eval(&input, dir.path(), out));
        assert_eq!(status, Status::Success, "{text}");
        assert!(text.contains("\"allow\": false"), "{text}");
        assert!(text.contains("refused (denied): no deletes"), "{text}");
        assert!(text.contains("data.forge.deny = [\"no deletes\"]"), "{text}");
        assert!(!text.contains("data.forge.unused"), "{text}");
    }

    #[test]
    fn eval_fails_when_the_vm_and_the_interpreter_disagree() {
        // regorus 0.14's VM does not fail a body on an unused binding of an undefined value
        // (`x := input.missing`); its interpreter does. Such a policy must not pass silently.
        let policy = "package forge\nimport rego.v1\n\ndefault decision := {\"allow\": false}\n\n\
            decision := {\"allow\": true} if { x := input.missing }\n";
        let dir = bundle(&[("main.rego", policy)]);
        let input = dir.path().join("input.json");
        std::fs::write(&input, "{}").unwrap();
        let (status, text) = run(|out| eval(&input, dir.path(), out));
        assert_eq!(status, Status::Failure, "{text}");
        assert!(text.contains("decides differently"), "{text}");
    }

    #[test]
    fn eval_of_a_missing_input_file_is_an_error() {
        let dir = bundle(&[("main.rego", POLICY)]);
        let mut out = Vec::new();
        let e = eval(&dir.path().join("absent.json"), dir.path(), &mut out).unwrap_err();
        assert!(format!("{e:#}").contains("absent.json"));
    }

    #[test]
    fn check_names_file_and_line_of_each_error() {
        let dir = bundle(&[("main.rego", POLICY), ("broken.rego", "package forge.b\nimport rego.v1\n\nx if {\n")]);
        let (status, text) = run(|out| check(dir.path(), out));
        assert_eq!(status, Status::Failure);
        assert!(text.contains("broken.rego:5:"), "{text}");
        assert!(text.contains("1 error(s)"), "{text}");
        std::fs::remove_file(dir.path().join("broken.rego")).unwrap();
        let (status, text) = run(|out| check(dir.path(), out));
        assert_eq!(status, Status::Success, "{text}");
        assert!(text.contains("OK (1 policy files, 0 test files"), "{text}");
    }
}
