//! Rego policy, evaluated in-process by regorus.
//!
//! A bundle (a directory: `.rego` files, data files, their `*_test.rego` tests) is compiled
//! once, off the request path, into a program for regorus' VM. Each message is then
//! evaluated on a per-thread VM against a versioned input document, and the bundle's
//! entrypoint `data.forge.decision` answers with a decision document:
//!
//! ```ignore
//! let store = PolicyStore::load(&config.bundle, &config)?;
//! let _watcher = store.watch()?;                       // hot reload: compile, test, swap
//! let input = PolicyInput::for_message(&principal, &message, Direction::ClientToServer,
//!                                      session, request, tool_definition);
//! match store.evaluate(&input) {
//!     Ok(evaluation) => match evaluation.deny_reason() { Some(refusal) => …, None => … },
//!     Err(error) => /* fail closed */ error.deny_reason(),
//! }
//! ```
//!
//! The input and decision documents are specified in `policies/README.md`.

mod bundle;
pub mod cli;
mod config;
mod decision;
mod decision_log;
mod document;
mod input;
mod metrics;
mod store;
mod testing;
mod vm;

use std::path::PathBuf;
use std::time::Duration;

pub use bundle::{Diagnostic, ENTRYPOINT};
pub use config::{DecisionLogConfig, MaskStyle, Mode, PolicyConfig, PolicyConfigError, DEFAULT_MASK};
pub use decision::{Approval, Decision, DenyReason, Obligations, RateLimit, Redaction};
pub use decision_log::mask;
pub use document::DocumentEvaluator;
pub(crate) use input::{rfc3339, unix_ms};
pub use input::{
    Direction, Finding, FindingCategory, PinStatus, PolicyInput, RequestView, SessionView, Severity, Span,
    INPUT_VERSION,
};
pub use store::{Evaluation, PolicyStatus, PolicyStore, PolicyWatcher, ReloadOutcome};

/// Everything that can go wrong loading a bundle or evaluating a message.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("reading {}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{}", list(diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
    #[error("{} of {total} bundle tests failed: {}", failed.len(), failed.join(", "))]
    TestsFailed { failed: Vec<String>, total: usize },
    /// The trust policy refused the bundle's signature (see `crate::provenance`).
    #[error(transparent)]
    Untrusted(#[from] crate::provenance::Rejection),
    #[error("watching the bundle: {0}")]
    Watch(String),
    #[error("policy evaluation exceeded its time limit of {limit:?}")]
    Timeout { limit: Duration },
    #[error("policy evaluation exceeded its budget of {limit} instructions")]
    BudgetExceeded { limit: usize },
    #[error("policy evaluation failed: {0}")]
    Runtime(String),
    #[error("the policy's decision document is malformed: {0}")]
    MalformedDecision(String),
}

/// The code a refusal carries when policy could not decide.
pub const CODE_POLICY_ERROR: &str = "policy_error";

impl PolicyError {
    /// What to tell a caller whose message is refused because evaluation failed. The
    /// details stay in the gateway's log: they describe the policy, not the caller's call.
    pub fn deny_reason(&self) -> DenyReason {
        let message = match self {
            PolicyError::Timeout { .. } | PolicyError::BudgetExceeded { .. } => {
                "policy evaluation took too long; the message is refused"
            }
            _ => "policy evaluation failed; the message is refused",
        };
        DenyReason { code: CODE_POLICY_ERROR.to_string(), message: message.to_string() }
    }
}

fn list(diagnostics: &[Diagnostic]) -> String {
    let all: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    format!("the bundle is invalid: {}", all.join("; "))
}
