//! The active bundle, evaluation against it, and hot reload.
//!
//! A bundle becomes active only after it compiled *and* its own tests passed; it is then
//! swapped in whole (an `ArcSwap`), so an evaluation sees either the old bundle or the new
//! one, never a mixture. A bundle that fails either step is rejected: the last good one
//! stays active and the failure shows in the log, the metrics and [`PolicyStore::status`].

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use notify::{EventKind, RecursiveMode, Watcher};
use serde::{Serialize, Serializer};

use super::bundle::Bundle;
use super::config::{Mode, PolicyConfig};
use super::decision::{Decision, DenyReason};
use super::decision_log::{DecisionLog, Entry};
use super::input::{rfc3339, PolicyInput};
use super::metrics::PolicyMetrics;
use super::testing::{self, TEST_TIMEOUT};
use super::vm::{self, Executable, Limits};
use super::PolicyError;
use crate::provenance::{Provenance, Trust};

/// Editors and ConfigMap updates write several files in a burst; reload once it is quiet.
const DEBOUNCE: Duration = Duration::from_millis(150);
/// A bundle that never stops changing still gets reloaded this often.
const MAX_DEBOUNCE: Duration = Duration::from_secs(2);

/// The policy engine of one gateway: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct PolicyStore {
    shared: Arc<Shared>,
}

struct Shared {
    id: u64,
    dir: PathBuf,
    mode: Mode,
    limits: Limits,
    active: ArcSwap<ActiveBundle>,
    last_failure: Mutex<Option<(String, SystemTime)>>,
    /// One reload at a time: the watcher and an operator's request may race.
    reloading: Mutex<()>,
    metrics: PolicyMetrics,
    log: Option<DecisionLog>,
    trust: Arc<Trust>,
}

struct ActiveBundle {
    executable: Executable,
    digest: Arc<str>,
    revision: Arc<str>,
    loaded_at: SystemTime,
    tests_passed: usize,
    /// The verified signature; `None` in development mode.
    provenance: Option<Arc<Provenance>>,
}

/// The outcome of evaluating one message.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub decision: Decision,
    /// False in audit mode: the decision was recorded, not applied.
    pub enforced: bool,
    pub bundle_digest: Arc<str>,
    pub bundle_revision: Arc<str>,
    /// Time in the policy engine itself (the decision log's `timer_rego_eval_ns`).
    pub eval_time: Duration,
    /// The decision log's id for this decision.
    pub decision_id: String,
    /// The signature the bundle that decided was verified against; `None` in development mode.
    pub provenance: Option<Arc<Provenance>>,
    /// The input document as the engine read it. Values are reference-counted, so evidence
    /// records it without building it again.
    pub input: regorus::Value,
}

impl Evaluation {
    /// Why the message must be refused, if it must. Always `None` in audit mode.
    pub fn deny_reason(&self) -> Option<DenyReason> {
        self.enforced.then(|| self.decision.deny_reason()).flatten()
    }

    /// The decision would refuse the message, whether or not it is enforced.
    pub fn would_deny(&self) -> bool {
        self.decision.deny_reason().is_some()
    }
}

/// What `/readyz` shows about policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyStatus {
    pub bundle: PathBuf,
    pub mode: Mode,
    pub digest: String,
    pub revision: String,
    #[serde(serialize_with = "time")]
    pub loaded_at: SystemTime,
    /// The active bundle's tests, all of which passed before it was activated.
    pub tests_passed: usize,
    /// The active bundle's verified signature; `None` in development mode.
    pub provenance: Option<Provenance>,
    /// The most recent reload failure, cleared by the next successful reload.
    pub last_error: Option<String>,
    #[serde(serialize_with = "optional_time")]
    pub last_error_at: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new bundle is active.
    Activated { digest: String, revision: String },
    /// The files are those of the active bundle; nothing was done.
    Unchanged,
}

/// Keeps the bundle directory watched; dropping it stops watching.
pub struct PolicyWatcher {
    _watcher: notify::RecommendedWatcher,
}

impl PolicyStore {
    /// Loads, compiles and tests the bundle in `dir`; fails unless all of that succeeds.
    /// Unsigned bundles load: this is [`Self::load_with_trust`] in development mode.
    pub fn load(dir: &Path, config: &PolicyConfig) -> Result<PolicyStore, PolicyError> {
        Self::load_with_trust(dir, config, Arc::new(Trust::development()))
    }

    /// Like [`Self::load`], and the bundle — at load and at every reload — must also pass the
    /// trust policy: signed by a trusted key, every file as signed.
    pub fn load_with_trust(dir: &Path, config: &PolicyConfig, trust: Arc<Trust>) -> Result<PolicyStore, PolicyError> {
        let bundle = Bundle::read(dir)?;
        let provenance = verify(&trust, &bundle)?;
        let active = prepare(&bundle, provenance)?;
        let metrics = PolicyMetrics::new();
        metrics.set_bundle(&active.digest, &active.revision);
        tracing::info!(
            bundle = %dir.display(),
            digest = %active.digest,
            revision = %active.revision,
            tests = active.tests_passed,
            mode = config.mode.as_str(),
            "policy bundle loaded"
        );
        let shared = Shared {
            id: vm::next_id(),
            dir: dir.to_path_buf(),
            mode: config.mode,
            limits: Limits { timeout: config.eval_timeout, max_instructions: config.max_instructions },
            active: ArcSwap::from_pointee(active),
            last_failure: Mutex::new(None),
            reloading: Mutex::new(()),
            metrics,
            log: DecisionLog::open(&config.decision_log)?,
            trust,
        };
        Ok(PolicyStore { shared: Arc::new(shared) })
    }

    /// Evaluates `input` against the active bundle. An error — the time or instruction
    /// budget exceeded, a runtime error, a malformed decision — means the message must be
    /// refused ([`PolicyError::deny_reason`]), in audit mode too: audit relaxes decisions,
    /// not failures to decide.
    pub fn evaluate(&self, input: &PolicyInput<'_>) -> Result<Evaluation, PolicyError> {
        let shared = &*self.shared;
        let started = Instant::now();
        let bundle = shared.active.load();
        let value = input.to_value();
        // Values are reference-counted: keeping one for the log and the evidence costs no copy.
        let document = value.as_ref().ok().cloned();
        let logged = shared.log.as_ref().and(document.clone());
        let input_time = started.elapsed();
        let outcome = value
            .and_then(|value| vm::execute(shared.id, &bundle.executable, shared.limits, value))
            .and_then(decision_from);
        let eval_time = started.elapsed().saturating_sub(input_time);
        shared.metrics.evaluation_seconds.observe((input_time + eval_time).as_secs_f64());

        // Counted here; the caller, who knows what becomes of the message, logs it.
        let enforced = shared.mode == Mode::Enforce;
        let outcomes = &shared.metrics.outcomes;
        match &outcome {
            Ok(d) if d.deny_reason().is_none() => outcomes.allow.inc(),
            Ok(_) if enforced => outcomes.deny.inc(),
            Ok(_) => outcomes.audit_deny.inc(),
            Err(_) => outcomes.error.inc(),
        }
        let decision_id = uuid::Uuid::new_v4().to_string();
        if let Some(log) = &shared.log {
            log.record(Entry {
                decision_id: &decision_id,
                input: logged.and_then(|v| serde_json::to_value(&v).ok()).unwrap_or_default(),
                outcome: outcome.as_ref(),
                revision: &bundle.revision,
                digest: &bundle.digest,
                mode: shared.mode,
                enforced,
                timestamp: SystemTime::now(),
                input_time,
                eval_time,
            });
        }
        Ok(Evaluation {
            decision: outcome?,
            enforced,
            bundle_digest: bundle.digest.clone(),
            bundle_revision: bundle.revision.clone(),
            eval_time,
            decision_id,
            provenance: bundle.provenance.clone(),
            // Without a document there was no decision either: `outcome?` returned above.
            input: document.unwrap_or(regorus::Value::Null),
        })
    }

    /// Reads the bundle again and activates it if it changed, compiles and passes its tests.
    pub fn reload(&self) -> Result<ReloadOutcome, PolicyError> {
        let shared = &*self.shared;
        let _one_at_a_time = shared.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let result = Bundle::read(&shared.dir).and_then(|bundle| {
            // Before the unchanged check: a file the loader ignores, or the signature itself,
            // may be what changed.
            let provenance = verify(&shared.trust, &bundle)?;
            let current = shared.active.load();
            if *bundle.digest() == *current.digest && provenance == current.provenance {
                return Ok(ReloadOutcome::Unchanged);
            }
            let active = prepare(&bundle, provenance)?;
            let outcome = ReloadOutcome::Activated { digest: active.digest.to_string(), revision: active.revision.to_string() };
            shared.metrics.set_bundle(&active.digest, &active.revision);
            tracing::info!(digest = %active.digest, revision = %active.revision, tests = active.tests_passed, "policy bundle reloaded");
            shared.active.store(Arc::new(active));
            Ok(outcome)
        });
        let mut last_failure = shared.last_failure.lock().unwrap_or_else(|e| e.into_inner());
        match &result {
            Ok(outcome) => {
                if *outcome != ReloadOutcome::Unchanged {
                    shared.metrics.reloads.with_label_values(&["ok"]).inc();
                }
                *last_failure = None;
            }
            Err(e) => {
                shared.metrics.reloads.with_label_values(&["error"]).inc();
                tracing::error!(bundle = %shared.dir.display(), error = %e, "policy bundle rejected; the previous bundle stays active");
                *last_failure = Some((e.to_string(), SystemTime::now()));
            }
        }
        result
    }

    /// Watches the bundle directory and reloads shortly after it changes. Changes inside
    /// the directory are seen however they are made (edits, renames, ConfigMap symlink
    /// swaps); the directory itself must stay in place.
    pub fn watch(&self) -> Result<PolicyWatcher, PolicyError> {
        let (tx, rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Reads change nothing; everything else (or an error: events may be lost) might.
            if !matches!(&event, Ok(e) if matches!(e.kind, EventKind::Access(_))) {
                let _ = tx.send(());
            }
        })
        .map_err(|e| PolicyError::Watch(e.to_string()))?;
        watcher
            .watch(&self.shared.dir, RecursiveMode::Recursive)
            .map_err(|e| PolicyError::Watch(format!("{}: {e}", self.shared.dir.display())))?;
        let store = self.clone();
        std::thread::Builder::new()
            .name("forge-policy-watch".into())
            .spawn(move || {
                // Ends when the watcher, and with it the sender, is dropped.
                while rx.recv().is_ok() {
                    let burst_started = Instant::now();
                    while burst_started.elapsed() < MAX_DEBOUNCE && rx.recv_timeout(DEBOUNCE).is_ok() {}
                    // Failures are recorded by reload itself.
                    let _ = store.reload();
                }
            })
            .map_err(|e| PolicyError::Watch(format!("starting the watch thread: {e}")))?;
        Ok(PolicyWatcher { _watcher: watcher })
    }

    pub fn status(&self) -> PolicyStatus {
        let active = self.shared.active.load();
        let failure = self.shared.last_failure.lock().unwrap_or_else(|e| e.into_inner()).clone();
        PolicyStatus {
            bundle: self.shared.dir.clone(),
            mode: self.shared.mode,
            digest: active.digest.to_string(),
            revision: active.revision.to_string(),
            loaded_at: active.loaded_at,
            tests_passed: active.tests_passed,
            provenance: active.provenance.as_deref().cloned(),
            last_error_at: failure.as_ref().map(|(_, at)| *at),
            last_error: failure.map(|(error, _)| error),
        }
    }

    /// The store's metrics, for the gateway to register in its Prometheus registry.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        self.shared.metrics.collectors()
    }
}

/// The provenance hook: the trust policy's verdict on exactly the files that were read.
fn verify(trust: &Trust, bundle: &Bundle) -> Result<Option<Arc<Provenance>>, PolicyError> {
    Ok(trust.verify_bundle(bundle.dir(), bundle.sources())?.map(Arc::new))
}

/// Compiles a bundle and runs its tests: the gate every bundle passes before activation.
fn prepare(bundle: &Bundle, provenance: Option<Arc<Provenance>>) -> Result<ActiveBundle, PolicyError> {
    let compiled = bundle.compile()?;
    let report = testing::run(bundle, &compiled, false, TEST_TIMEOUT)?;
    report.check()?;
    let digest: Arc<str> = bundle.digest().into();
    Ok(ActiveBundle {
        executable: Executable { id: vm::next_id(), program: compiled.program, data: compiled.data },
        digest,
        revision: compiled.revision.into(),
        loaded_at: SystemTime::now(),
        tests_passed: report.passed(),
        provenance,
    })
}

/// Reads the entrypoint's value as a decision document.
pub(crate) fn decision_from(value: regorus::Value) -> Result<Decision, PolicyError> {
    if value == regorus::Value::Undefined {
        return Err(PolicyError::MalformedDecision("data.forge.decision is undefined for this input".into()));
    }
    if let Some(decision) = plain_allow(&value) {
        return Ok(decision);
    }
    let json = serde_json::to_value(&value).map_err(|e| PolicyError::MalformedDecision(e.to_string()))?;
    Decision::from_json(json).map_err(PolicyError::MalformedDecision)
}

/// Most messages are allowed with nothing to do. Recognizing that shape directly spares
/// every such message a round trip through JSON; anything else takes the checked path.
fn plain_allow(value: &regorus::Value) -> Option<Decision> {
    let mut plain = Decision {
        allow: true,
        reason: String::new(),
        code: String::new(),
        required_scopes: Vec::new(),
        obligations: Default::default(),
    };
    let mut allowed = false;
    for (key, field) in value.as_object().ok()?.iter() {
        match key.as_string().ok()?.as_ref() {
            "allow" => allowed = *field == regorus::Value::Bool(true),
            "code" => plain.code = field.as_string().ok()?.to_string(),
            "reason" => plain.reason = field.as_string().ok()?.to_string(),
            "obligations" if no_obligations(field) => {}
            _ => return None,
        }
    }
    allowed.then_some(plain)
}

fn no_obligations(value: &regorus::Value) -> bool {
    let is = |v: &regorus::Value, expected: regorus::Value| *v == expected;
    let Ok(obligations) = value.as_object() else { return false };
    obligations.iter().all(|(key, v)| match key.as_string().map(|k| k.as_ref()) {
        Ok("redact" | "hide_tools") => v.as_array().is_ok_and(|a| a.is_empty()),
        Ok("annotations") => v.as_object().is_ok_and(|o| o.is_empty()),
        Ok("require_approval") => v.as_object().is_ok_and(|approval| {
            approval.iter().all(|(k, v)| match k.as_string().map(|k| k.as_ref()) {
                Ok("required") => is(v, regorus::Value::Bool(false)),
                Ok("reason") => is(v, regorus::Value::from("")),
                _ => false,
            })
        }),
        _ => false,
    })
}

fn time<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*time))
}

fn optional_time<S: Serializer>(time: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match time {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    fn regorus(value: serde_json::Value) -> regorus::Value {
        regorus::Value::deserialize(&value).unwrap()
    }

    #[test]
    fn the_plain_allow_shortcut_reads_what_the_checked_path_reads() {
        let empty = json!({"redact": [], "hide_tools": [], "require_approval": {"required": false, "reason": ""}, "annotations": {}});
        for plain in [
            json!({"allow": true}),
            json!({"allow": true, "code": "allowed", "reason": "", "obligations": empty}),
            json!({"allow": true, "code": "ok", "obligations": {"redact": []}}),
        ] {
            assert_eq!(plain_allow(&regorus(plain.clone())), Some(Decision::from_json(plain).unwrap()));
        }
        for other in [
            json!({"allow": false, "reason": "no"}),
            json!({"code": "allowed"}),
            json!({"allow": true, "obligations": {"hide_tools": ["x"]}}),
            json!({"allow": true, "obligations": {"require_approval": {"required": true, "reason": ""}}}),
            json!({"allow": true, "obligations": {"annotations": {"k": 1}}}),
            json!({"allow": true, "obligation": {}}),
            json!({"allow": true, "code": 7}),
        ] {
            assert_eq!(plain_allow(&regorus(other.clone())), None, "{other}");
        }
    }

    #[test]
    fn an_undefined_or_malformed_entrypoint_is_an_error() {
        assert!(matches!(decision_from(regorus::Value::Undefined), Err(PolicyError::MalformedDecision(_))));
        assert!(matches!(decision_from(regorus(json!({"allow": "yes"}))), Err(PolicyError::MalformedDecision(_))));
        let full = json!({"allow": true, "obligations": {"hide_tools": ["rm"]}});
        assert_eq!(decision_from(regorus(full)).unwrap().obligations.hide_tools, vec!["rm"]);
    }
}
