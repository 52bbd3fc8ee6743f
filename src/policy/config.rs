//! The `policy:` section of the gateway's configuration.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Policy settings. Every field has a default, so an empty `policy:` section runs the
/// default bundle in `policies/`, enforcing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Evaluate policy at all. When false no bundle is loaded and nothing is evaluated.
    pub enabled: bool,
    /// The bundle directory: `.rego` files, `data.json`/`data.yaml`, an optional `.manifest`.
    pub bundle: PathBuf,
    /// `enforce` answers with the decision; `audit` logs would-be denials and allows.
    pub mode: Mode,
    /// Wall-clock budget of one evaluation (`5ms`, `50ms`, `1s`); exceeding it denies.
    #[serde(deserialize_with = "duration")]
    pub eval_timeout: Duration,
    /// Instruction budget of one evaluation; a deterministic backstop to `eval_timeout`.
    pub max_instructions: usize,
    /// Request headers copied (lower-cased) into `input.request.headers`.
    pub include_headers: Vec<String>,
    pub decision_log: DecisionLogConfig,
}

/// Whether decisions are enforced or only recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Enforce,
    Audit,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        }
    }
}

/// One JSON line per decision, shaped like OPA's decision logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionLogConfig {
    pub enabled: bool,
    /// A file to append to; standard output when absent.
    pub path: Option<PathBuf>,
    /// JSON pointers into the input whose values are masked before logging.
    pub mask: Vec<String>,
    /// How a masked value is written.
    pub mask_style: MaskStyle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskStyle {
    /// The value becomes the string `***`.
    #[default]
    Redact,
    /// The value becomes `sha256:<hex>` of its JSON: equal values stay correlatable.
    Sha256,
}

/// Tool arguments, prompt arguments, raw params and results can carry anything a user or a
/// tool handled, so they stay out of logs unless an operator opts in.
pub const DEFAULT_MASK: &[&str] = &[
    "/message/params",
    "/message/tool/arguments",
    "/message/prompt/arguments",
    "/message/result",
    "/message/error/data",
    "/message/input_requests",
    "/message/input_responses",
];

/// Headers that carry credentials: copying them into policy input would put them in
/// decision logs and evidence.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "set-cookie"];

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            enabled: true,
            bundle: PathBuf::from("policies"),
            mode: Mode::Enforce,
            eval_timeout: Duration::from_millis(50),
            max_instructions: 1_000_000,
            include_headers: Vec::new(),
            decision_log: DecisionLogConfig::default(),
        }
    }
}

impl Default for DecisionLogConfig {
    fn default() -> Self {
        DecisionLogConfig {
            enabled: false,
            path: None,
            mask: DEFAULT_MASK.iter().map(|p| p.to_string()).collect(),
            mask_style: MaskStyle::Redact,
        }
    }
}

/// A policy setting that cannot work, naming the field as written under `policy:`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct PolicyConfigError {
    /// The dotted path of the field, e.g. `policy.eval_timeout`.
    pub field: String,
    pub message: String,
}

impl PolicyConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyConfigError { field: field.into(), message: message.into() }
    }
}

impl PolicyConfig {
    pub fn validate(&self) -> Result<(), PolicyConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.bundle.as_os_str().is_empty() {
            return Err(PolicyConfigError::new("policy.bundle", "must name the bundle directory"));
        }
        if self.eval_timeout.is_zero() {
            return Err(PolicyConfigError::new("policy.eval_timeout", "must be greater than zero"));
        }
        // Evaluation runs on request threads: a budget this large would stall them.
        if self.eval_timeout > Duration::from_secs(10) {
            return Err(PolicyConfigError::new("policy.eval_timeout", "must be at most 10s"));
        }
        if self.max_instructions == 0 {
            return Err(PolicyConfigError::new("policy.max_instructions", "must be greater than zero"));
        }
        for (i, name) in self.include_headers.iter().enumerate() {
            let field = format!("policy.include_headers[{i}]");
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(PolicyConfigError::new(field, format!("`{name}` is not a header name")));
            }
            if CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(PolicyConfigError::new(
                    field,
                    format!("`{name}` carries credentials and would reach decision logs; policy sees the verified principal instead"),
                ));
            }
        }
        for (i, pointer) in self.decision_log.mask.iter().enumerate() {
            if !pointer.starts_with('/') {
                return Err(PolicyConfigError::new(
                    format!("policy.decision_log.mask[{i}]"),
                    format!("`{pointer}` is not a JSON pointer into the input (like /message/tool/arguments)"),
                ));
            }
        }
        Ok(())
    }

    /// `include_headers`, lower-cased the way HTTP/2 and `http::HeaderMap` spell names.
    pub fn header_names(&self) -> Vec<String> {
        self.include_headers.iter().map(|h| h.to_ascii_lowercase()).collect()
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    crate::config::parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<PolicyConfig, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(yaml)
    }

    #[test]
    fn empty_section_is_the_default_bundle_enforcing() {
        let c = parse("{}").unwrap();
        assert!(c.enabled);
        assert_eq!(c.bundle, PathBuf::from("policies"));
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(c.eval_timeout, Duration::from_millis(50));
        assert!(!c.decision_log.enabled);
        assert!(c.decision_log.mask.contains(&"/message/tool/arguments".to_string()));
        c.validate().unwrap();
    }

    #[test]
    fn every_field_parses() {
        let c = parse(
            "bundle: /etc/forge/policy\nmode: audit\neval_timeout: 5ms\nmax_instructions: 5000\n\
             include_headers: [User-Agent]\ndecision_log: {enabled: true, path: /var/log/d.jsonl, mask: [/message], mask_style: sha256}\n",
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Audit);
        assert_eq!(c.eval_timeout, Duration::from_millis(5));
        assert_eq!(c.header_names(), vec!["user-agent"]);
        assert_eq!(c.decision_log.mask_style, MaskStyle::Sha256);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_fields_and_bad_values_are_rejected() {
        assert!(parse("mdoe: audit").unwrap_err().to_string().contains("unknown field"));
        assert!(parse("mode: permissive").is_err());
        assert!(parse("eval_timeout: soon").unwrap_err().to_string().contains("not a duration"));
    }

    #[test]
    fn validation_names_the_field() {
        let check = |yaml: &str| parse(yaml).unwrap().validate().unwrap_err();
        assert_eq!(check("eval_timeout: 0ms").field, "policy.eval_timeout");
        assert_eq!(check("eval_timeout: 1m").field, "policy.eval_timeout");
        assert_eq!(check("max_instructions: 0").field, "policy.max_instructions");
        assert_eq!(check("include_headers: [x-ok, 'bad header']").field, "policy.include_headers[1]");
        let e = check("include_headers: [Authorization]");
        assert!(e.message.contains("credentials"), "{e}");
        assert_eq!(check("decision_log: {mask: [message.result]}").field, "policy.decision_log.mask[0]");
        // A disabled section is not checked: nothing of it is used.
        parse("enabled: false\neval_timeout: 0ms").unwrap().validate().unwrap();
    }
}
