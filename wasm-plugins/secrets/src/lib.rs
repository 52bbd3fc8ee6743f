//! Forge's secrets detector: provider-specific credential formats (see [`rules`]), plus a
//! generic heuristic for random-looking values under credential names (see [`generic`]).
//!
//! Findings carry the span and a fingerprint, never the secret. Nothing is ever checked
//! against a live provider: a match is a finding on its format, checksum and context alone.

mod checks;
pub mod generic;
pub mod rules;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use forge_plugin_sdk::{Category, Config, Context, Finding, Payload, Scalar, Severity};
use rules::{Rule, RULES};
use serde::Deserialize;
use std::ops::Range;
use std::sync::LazyLock;

pub use checks::{base62_6, crc32};

const GENERIC_RULE: &str = "secrets.generic-credential";

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Options {
    /// Rule ids (`secrets.…`) not to run.
    disabled_rules: Vec<String>,
    /// Whether the generic credential-assignment heuristic runs.
    generic: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { disabled_rules: Vec::new(), generic: true }
    }
}

/// All rules' keywords in one automaton, and which rule each keyword belongs to. Built once
/// in `prepare` (the gateway snapshots it), so the contiguous NFA: faster to search than the
/// non-contiguous one, slower to build.
static KEYWORDS: LazyLock<(AhoCorasick, Vec<usize>)> = LazyLock::new(|| {
    let (words, owners): (Vec<_>, Vec<_>) =
        RULES.iter().enumerate().flat_map(|(i, r)| r.keywords.iter().map(move |k| (*k, i))).unzip();
    let automaton = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .build(words)
        .expect("keywords build");
    (automaton, owners)
});

pub fn detect(_cx: &Context, payload: &Payload, config: &Config) -> Result<Vec<Finding>, String> {
    let options: Options = config.parse()?;
    let enabled = |id: &str| !options.disabled_rules.iter().any(|d| d == id);
    let mut findings = Vec::new();
    for scalar in payload.strings() {
        let mut candidates: Vec<(Range<usize>, Finding)> = Vec::new();
        for rule in candidate_rules(&scalar.text) {
            let id = format!("secrets.{}", rule.id);
            if enabled(&id) {
                candidates.extend(matches(rule, &id, scalar));
            }
        }
        if options.generic && enabled(GENERIC_RULE) {
            candidates.extend(generic_findings(scalar));
        }
        findings.extend(without_overlaps(candidates));
    }
    if enabled("secrets.gcp-service-account") {
        findings.extend(structured_service_accounts(payload));
    }
    Ok(findings)
}

/// The rules whose keywords occur in `text`, each once, in table order.
fn candidate_rules(text: &str) -> impl Iterator<Item = &'static Rule> {
    let (automaton, owners) = &*KEYWORDS;
    let mut hit = vec![false; RULES.len()];
    for m in automaton.find_overlapping_iter(text) {
        hit[owners[m.pattern().as_usize()]] = true;
    }
    RULES.iter().zip(hit).filter(|(_, h)| *h).map(|(r, _)| r)
}

fn matches<'a>(
    rule: &'static Rule,
    id: &'a str,
    scalar: &'a Scalar,
) -> impl Iterator<Item = (Range<usize>, Finding)> + 'a {
    rule.regex.captures_iter(&scalar.text).filter_map(move |caps| {
        let secret = caps.get(1)?;
        if !rule.check.passes(&caps, &scalar.text) {
            return None;
        }
        let finding = Finding::new(id, Category::Secret, rule.severity)
            .confidence(rule.confidence)
            .at(scalar, secret.range())
            .message(format!("{} in {}", rule.what, where_(scalar)));
        Some((secret.range(), finding))
    })
}

fn generic_findings(scalar: &Scalar) -> Vec<(Range<usize>, Finding)> {
    let finding = |range: Range<usize>| {
        Finding::new(GENERIC_RULE, Category::Secret, Severity::Medium)
            .confidence(0.6)
            .at(scalar, range)
            .message(format!("random-looking value assigned to a credential name in {}", where_(scalar)))
    };
    let name = scalar.field_name();
    if generic::is_credential_name(&name) && generic::looks_like_credential(&name, scalar.text.trim()) {
        let whole = 0..scalar.text.len();
        return vec![(whole.clone(), finding(whole))];
    }
    generic::assignments(&scalar.text).into_iter().map(|r| (r.clone(), finding(r))).collect()
}

/// One finding per stretch of text: where matches overlap, the provider-specific rule beats
/// the generic one, and the longer match beats the shorter.
fn without_overlaps(mut candidates: Vec<(Range<usize>, Finding)>) -> Vec<Finding> {
    candidates.sort_by_key(|(r, f)| (f.rule_id == GENERIC_RULE, std::cmp::Reverse(r.len()), r.start));
    let mut kept: Vec<(Range<usize>, Finding)> = Vec::new();
    for (range, finding) in candidates {
        if !kept.iter().any(|(k, _)| k.start < range.end && range.start < k.end) {
            kept.push((range, finding));
        }
    }
    kept.sort_by_key(|(r, _)| r.start);
    kept.into_iter().map(|(_, f)| f).collect()
}

/// A service-account key passed as structured JSON: `type` is `service_account` and a
/// sibling `private_key` is there.
fn structured_service_accounts(payload: &Payload) -> Vec<Finding> {
    payload
        .strings()
        .filter(|s| s.key() == "type" && s.text == "service_account")
        .filter(|s| {
            let parent = &s.pointer[..s.pointer.len() - "/type".len()];
            let key = format!("{parent}/private_key");
            payload.strings().any(|k| k.pointer == key && k.text.contains("PRIVATE KEY"))
        })
        .map(|s| {
            Finding::new("secrets.gcp-service-account", Category::Secret, Severity::Critical)
                .confidence(0.95)
                .on(s)
                .message("Google Cloud service-account key in a JSON object")
        })
        .collect()
}

fn where_(scalar: &Scalar) -> String {
    match scalar.field_name() {
        name if name.is_empty() => "the payload".to_owned(),
        name => format!("`{name}`"),
    }
}

/// Compiles every rule and the keyword automaton, and warms them on ordinary text with a
/// credential assignment, for the gateway's snapshot.
pub fn prepare() {
    LazyLock::force(&KEYWORDS);
    RULES.iter().for_each(|rule| rule.regex.compile_now());
    generic::prepare();
    let cx = Context::new(forge_plugin_sdk::Hook::Request, "tools/call");
    let text =
        format!("{}\nexport API_TOKEN=$API_TOKEN; password: hunter2-but-longer", forge_plugin_sdk::ORDINARY_TEXT);
    forge_plugin_sdk::rehearse(detect, &cx, &serde_json::json!({"arguments": {"notes": text}}));
}

forge_plugin_sdk::export_detector!(detect, prepare);

#[cfg(test)]
mod tests {
    use super::*;
    use forge_plugin_sdk::Hook;

    fn scan(json: &str) -> Vec<Finding> {
        let cx = Context::new(Hook::Request, "tools/call");
        detect(&cx, &Payload::from_json(json).unwrap(), &Config::default()).unwrap()
    }

    fn github_token(prefix: &str) -> String {
        let random = "Nq3xV8mLz0Pw5tRb2KcY7dHf4JsA9e";
        format!("{prefix}{random}{}", base62_6(crc32(random.as_bytes())))
    }

    #[test]
    fn a_github_token_is_found_with_its_span_and_without_its_text() {
        let token = github_token("ghp_");
        let json = format!(r#"{{"arguments":{{"note":"use {token} for the push"}}}}"#);
        let f = scan(&json);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rule_id, "secrets.github-pat");
        assert_eq!(f[0].pointer, "/arguments/note");
        assert_eq!(f[0].range(), Some(4..4 + token.len()));
        assert!(!format!("{f:?}").contains(&token));
    }

    #[test]
    fn a_github_token_with_a_bad_checksum_is_not_a_finding() {
        let mut token = github_token("ghp_");
        token.replace_range(10..11, if &token[10..11] == "A" { "B" } else { "A" });
        assert!(scan(&format!(r#"{{"t":"{token}"}}"#)).is_empty());
    }

    #[test]
    fn a_provider_match_wins_over_the_generic_heuristic() {
        let f = scan(&format!(r#"{{"env":"GITHUB_TOKEN={}"}}"#, github_token("ghs_")));
        assert_eq!(f.iter().map(|f| f.rule_id.as_str()).collect::<Vec<_>>(), ["secrets.github-server-to-server-token"]);
    }

    #[test]
    fn the_aws_documentation_key_is_a_placeholder() {
        assert!(scan(r#"{"cmd":"aws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE"}"#).is_empty());
        assert_eq!(scan(r#"{"cmd":"aws configure set aws_access_key_id AKIAQ3EGT5LMZN4RWX7P"}"#).len(), 1);
    }

    #[test]
    fn rules_can_be_disabled_and_bad_config_is_an_error() {
        let cx = Context::new(Hook::Request, "tools/call");
        let p = Payload::from_json(r#"{"k":"AKIAQ3EGT5LMZN4RWX7P"}"#).unwrap();
        let off = Config::from_json(r#"{"disabled_rules":["secrets.aws-access-key-id"]}"#).unwrap();
        assert!(detect(&cx, &p, &off).unwrap().is_empty());
        let bad = Config::from_json(r#"{"generic":"yes"}"#).unwrap();
        assert!(detect(&cx, &p, &bad).unwrap_err().contains("invalid plugin config"));
    }

    #[test]
    fn a_structured_service_account_key_is_found() {
        let json = r#"{"credentials":{"type":"service_account","project_id":"p","private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R4\n-----END PRIVATE KEY-----\n"}}"#;
        let ids: Vec<_> = scan(json).into_iter().map(|f| f.rule_id).collect();
        assert!(ids.contains(&"secrets.gcp-service-account".to_owned()), "{ids:?}");
        assert!(ids.contains(&"secrets.private-key".to_owned()), "{ids:?}");
    }
}
