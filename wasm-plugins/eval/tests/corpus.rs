//! The detectors against the labelled corpus: fails below the targets of issue 4.
//! `cargo test -p detector-eval --test corpus -- --nocapture` prints the numbers that
//! DETECTORS.md reports.

use detector_eval::{load, score, Case, Detect, Score};

fn run(name: &str, detect: Detect, include: impl Fn(&Case) -> bool) -> Score {
    let cases = load(name);
    assert!(cases.len() >= 100, "{name}: the corpus has only {} cases", cases.len());
    let s = score(detect, &cases, include);
    println!(
        "{name}: {} cases, precision {:.3}, recall {:.3}, benign flagged {}/{} ({:.1}%)",
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
    let s = run("secrets", secrets::detect, |_| true);
    assert!(s.precision() >= 0.97 && s.recall() >= 0.95, "secrets below target: {s:?}");
}

#[test]
fn pii_meets_its_targets() {
    let s = run("pii", pii::detect, |_| true);
    assert!(s.precision() >= 0.97 && s.recall() >= 0.95, "pii below target: {s:?}");
}
