//! The detectors against the labelled corpus: fails below the targets of issue 4.
//! `cargo test -p detector-eval --test corpus -- --nocapture` prints the numbers that
//! DETECTORS.md reports. Each detector's `prepare` runs first, so the corpus is scored from
//! the state a gateway's snapshot starts every call with.

use detector_eval::{load, score, Case, Detect, Score};

fn run(label: &str, detect: Detect, include: impl Fn(&Case) -> bool) -> Score {
    let name = label.split(' ').next().unwrap_or(label);
    let cases = load(name);
    assert!(cases.len() >= 100, "{name}: the corpus has only {} cases", cases.len());
    let s = score(detect, &cases, include);
    println!(
        "{label}: {} cases, precision {:.3}, recall {:.3}, benign flagged {}/{} ({:.1}%)",
        s.cases,
        s.precision(),
        s.recall(),
        s.benign_flagged,
        s.benign_cases,
        100.0 * s.false_positive_rate()
    );
    for m in &s.mistakes {
        println!("  {m}");
    }
    s
}

#[test]
fn secrets_meets_its_targets() {
    secrets::prepare();
    let s = run("secrets", secrets::detect, |_| true);
    assert!(s.precision() >= 0.97 && s.recall() >= 0.95, "secrets below target: {s:?}");
}

#[test]
fn pii_meets_its_targets() {
    pii::prepare();
    let s = run("pii", pii::detect, |_| true);
    assert!(s.precision() >= 0.97 && s.recall() >= 0.95, "pii below target: {s:?}");
}

#[test]
fn code_exec_meets_its_targets() {
    code_exec::prepare();
    let all = run("code-exec", code_exec::detect, |_| true);
    let high = run("code-exec (high and critical)", code_exec::detect, |c| {
        c.min_severity.as_deref().is_some_and(|s| s == "high" || s == "critical")
    });
    assert!(high.recall() >= 0.95, "code-exec high-severity recall below target: {high:?}");
    assert!(all.false_positive_rate() <= 0.02, "code-exec flags ordinary code: {all:?}");
}

#[test]
fn tool_poisoning_meets_its_targets() {
    tool_poisoning::prepare();
    let s = run("tool-poisoning", tool_poisoning::detect, |_| true);
    assert!(s.recall() >= 0.9, "tool-poisoning recall below target: {s:?}");
    assert!(s.false_positive_rate() <= 0.02, "tool-poisoning flags ordinary descriptions: {s:?}");
}
