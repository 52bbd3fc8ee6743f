//! One JSON line per decision, shaped like OPA's decision logs so existing log pipelines
//! read it: `decision_id`, `path`, `input` (masked), `result` or `error`, `bundle`,
//! `timestamp`, `metrics`.
//!
//! Lines are handed to a background writer, so a slow disk never stalls a request; the
//! writer blocks rather than drops when it falls behind, because an audit trail with gaps
//! is worse than a slow one.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};

use super::config::{DecisionLogConfig, MaskStyle, Mode};
use super::decision::Decision;
use super::input::rfc3339;
use super::PolicyError;
use crate::hex::hex;

/// The decision's path in OPA's notation (`data.forge.decision`).
const PATH: &str = "forge/decision";

pub(crate) struct DecisionLog {
    sink: Mutex<Box<dyn Write + Send>>,
    // Flushes queued lines when the log is dropped.
    _guard: Option<WorkerGuard>,
    mask: Vec<String>,
    style: MaskStyle,
}

/// One decision, as the store hands it over.
pub(crate) struct Entry<'a> {
    pub decision_id: &'a str,
    pub input: Value,
    pub outcome: Result<&'a Decision, &'a PolicyError>,
    pub revision: &'a str,
    pub digest: &'a str,
    pub mode: Mode,
    pub enforced: bool,
    pub timestamp: SystemTime,
    pub input_time: Duration,
    pub eval_time: Duration,
}

#[derive(Serialize)]
struct Line<'a> {
    decision_id: &'a str,
    path: &'static str,
    labels: Labels,
    input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    masked: Vec<String>,
    bundle: BundleRef<'a>,
    mode: &'static str,
    enforced: bool,
    timestamp: String,
    metrics: Metrics,
}

#[derive(Serialize)]
struct Labels {
    app: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct BundleRef<'a> {
    revision: &'a str,
    digest: &'a str,
}

#[derive(Serialize)]
struct Metrics {
    timer_rego_input_parse_ns: u128,
    timer_rego_eval_ns: u128,
}

impl DecisionLog {
    /// The configured log, or `None` when decision logging is off.
    pub fn open(config: &DecisionLogConfig) -> Result<Option<DecisionLog>, PolicyError> {
        if !config.enabled {
            return Ok(None);
        }
        let builder = || NonBlockingBuilder::default().lossy(false).thread_name("forge-decision-log");
        let (writer, guard) = match &config.path {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|error| PolicyError::Io { path: path.clone(), error })?;
                builder().finish(file)
            }
            None => builder().finish(std::io::stdout()),
        };
        Ok(Some(DecisionLog::new(Box::new(writer), Some(guard), config)))
    }

    fn new(sink: Box<dyn Write + Send>, guard: Option<WorkerGuard>, config: &DecisionLogConfig) -> Self {
        DecisionLog { sink: Mutex::new(sink), _guard: guard, mask: config.mask.clone(), style: config.mask_style }
    }

    pub fn record(&self, entry: Entry<'_>) {
        let Entry { decision_id, mut input, outcome, revision, digest, mode, enforced, timestamp, .. } = entry;
        let masked = self.mask(&mut input);
        let line = Line {
            decision_id,
            path: PATH,
            labels: Labels { app: "forge", version: env!("CARGO_PKG_VERSION") },
            input,
            result: outcome.ok(),
            error: outcome.err().map(ToString::to_string),
            masked,
            bundle: BundleRef { revision, digest },
            mode: mode.as_str(),
            enforced,
            timestamp: rfc3339(timestamp),
            metrics: Metrics {
                timer_rego_input_parse_ns: entry.input_time.as_nanos(),
                timer_rego_eval_ns: entry.eval_time.as_nanos(),
            },
        };
        let mut bytes = serde_json::to_vec(&line).expect("a decision log line is plain JSON");
        bytes.push(b'\n');
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = sink.write_all(&bytes) {
            tracing::warn!(error = %e, "could not write a policy decision log line");
        }
    }

    fn mask(&self, input: &mut Value) -> Vec<String> {
        mask(input, &self.mask, self.style)
    }
}

/// Replaces the value at each of `pointers` in a policy input; returns the masked paths in
/// OPA's `/input/…` notation. Decision logs and evidence records mask alike.
pub fn mask(input: &mut Value, pointers: &[String], style: MaskStyle) -> Vec<String> {
    let mut masked = Vec::new();
    for pointer in pointers {
        if let Some(value) = input.pointer_mut(pointer) {
            *value = match style {
                MaskStyle::Redact => Value::String("***".into()),
                MaskStyle::Sha256 => {
                    let json = serde_json::to_vec(value).expect("a JSON value serializes");
                    Value::String(format!("sha256:{}", hex(&Sha256::digest(json))))
                }
            };
            masked.push(format!("/input{pointer}"));
        }
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log_one(config: &DecisionLogConfig, outcome: Result<&Decision, &PolicyError>) -> Value {
        let sink = Shared::default();
        let log = DecisionLog::new(Box::new(sink.clone()), None, config);
        log.record(Entry {
            decision_id: "d-1",
            input: json!({"message": {"method": "tools/call", "tool": {"name": "t", "arguments": {"q": "secret"}}}}),
            outcome,
            revision: "r1",
            digest: "abc",
            mode: Mode::Audit,
            enforced: false,
            timestamp: SystemTime::UNIX_EPOCH,
            input_time: Duration::from_nanos(300),
            eval_time: Duration::from_nanos(1500),
        });
        let bytes = sink.0.lock().unwrap().clone();
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1, "exactly one line");
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_line_has_the_opa_shape_with_arguments_masked() {
        let decision = Decision::from_json(json!({"allow": false, "reason": "no", "code": "x"})).unwrap();
        let line = log_one(&DecisionLogConfig::default(), Ok(&decision));
        assert_eq!(line["decision_id"], "d-1");
        assert_eq!(line["path"], "forge/decision");
        assert_eq!(line["input"]["message"]["tool"]["arguments"], "***");
        assert_eq!(line["input"]["message"]["tool"]["name"], "t", "only the configured parts are masked");
        assert_eq!(line["masked"], json!(["/input/message/tool/arguments"]));
        assert_eq!(line["result"]["allow"], false);
        assert!(line.get("error").is_none());
        assert_eq!(line["bundle"], json!({"revision": "r1", "digest": "abc"}));
        assert_eq!((line["mode"].as_str(), line["enforced"].as_bool()), (Some("audit"), Some(false)));
        assert_eq!(line["timestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(line["metrics"], json!({"timer_rego_input_parse_ns": 300, "timer_rego_eval_ns": 1500}));
    }

    #[test]
    fn digest_masking_keeps_equal_values_correlatable() {
        let config = DecisionLogConfig { mask_style: MaskStyle::Sha256, ..Default::default() };
        let decision = Decision::from_json(json!({"allow": true})).unwrap();
        let masked = log_one(&config, Ok(&decision))["input"]["message"]["tool"]["arguments"].clone();
        let expected = format!("sha256:{}", hex(&Sha256::digest(br#"{"q":"secret"}"#)));
        assert_eq!(masked, expected);
    }

    #[test]
    fn errors_are_logged_instead_of_a_result() {
        let error = PolicyError::Timeout { limit: Duration::from_millis(5) };
        let line = log_one(&DecisionLogConfig::default(), Err(&error));
        assert!(line.get("result").is_none());
        assert!(line["error"].as_str().unwrap().contains("time limit"));
    }
}
