//! Evaluating recorded input documents (JSON) against a bundle: `forge evidence replay`
//! asks another bundle the questions past traffic asked, on the VM that serves traffic.

use std::path::Path;

use serde::Deserialize;

use super::bundle::Bundle;
use super::store::decision_from;
use super::vm::{self, Executable, Limits};
use super::{Decision, PolicyConfig, PolicyError};

/// A compiled bundle that decides on input documents.
pub struct DocumentEvaluator {
    executable: Executable,
    limits: Limits,
    pub digest: String,
    pub revision: String,
}

impl DocumentEvaluator {
    /// Reads and compiles the bundle in `dir` (its tests are not run: a bundle under
    /// evaluation may be the one being fixed).
    pub fn load(dir: &Path) -> Result<DocumentEvaluator, PolicyError> {
        let bundle = Bundle::read(dir)?;
        let compiled = bundle.compile()?;
        let defaults = PolicyConfig::default();
        Ok(DocumentEvaluator {
            executable: Executable { id: vm::next_id(), program: compiled.program, data: compiled.data },
            limits: Limits { timeout: defaults.eval_timeout, max_instructions: defaults.max_instructions },
            digest: bundle.digest().to_string(),
            revision: compiled.revision,
        })
    }

    /// The bundle's decision for one input document, with the gateway's default limits.
    pub fn evaluate(&self, input: &serde_json::Value) -> Result<Decision, PolicyError> {
        let value = regorus::Value::deserialize(input).map_err(|e| PolicyError::Runtime(format!("{e:#}")))?;
        vm::execute(self.executable.id, &self.executable, self.limits, value).and_then(decision_from)
    }
}
