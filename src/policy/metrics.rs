//! The policy's Prometheus metrics. They are created unregistered; the gateway registers
//! [`PolicyMetrics::collectors`] in its registry.

use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts};

#[derive(Clone)]
pub(crate) struct PolicyMetrics {
    /// Bundle reloads by result (`ok`, `error`).
    pub reloads: IntCounterVec,
    /// 1 for the active bundle, labelled with its digest and revision.
    pub bundle_info: IntGaugeVec,
    /// Evaluations by outcome (`allow`, `deny`, `audit_deny`, `error`).
    decisions: IntCounterVec,
    /// The `decisions` children, resolved once: evaluation is too hot for a label lookup.
    pub outcomes: Outcomes,
    pub evaluation_seconds: Histogram,
}

#[derive(Clone)]
pub(crate) struct Outcomes {
    pub allow: IntCounter,
    pub deny: IntCounter,
    pub audit_deny: IntCounter,
    pub error: IntCounter,
}

impl PolicyMetrics {
    pub fn new() -> Self {
        let counter = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric")
        };
        let decisions = counter("forge_policy_decisions_total", "Policy evaluations, by outcome", "outcome");
        let outcomes = Outcomes {
            allow: decisions.with_label_values(&["allow"]),
            deny: decisions.with_label_values(&["deny"]),
            audit_deny: decisions.with_label_values(&["audit_deny"]),
            error: decisions.with_label_values(&["error"]),
        };
        PolicyMetrics {
            reloads: counter("forge_policy_reloads_total", "Policy bundle reloads, by result", "result"),
            bundle_info: IntGaugeVec::new(
                Opts::new("forge_policy_bundle_info", "The active policy bundle"),
                &["digest", "revision"],
            )
            .expect("valid metric"),
            decisions,
            outcomes,
            evaluation_seconds: Histogram::with_opts(
                HistogramOpts::new("forge_policy_evaluation_duration_seconds", "Time to evaluate one message")
                    .buckets(vec![2e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, 0.1]),
            )
            .expect("valid metric"),
        }
    }

    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.reloads.clone()),
            Box::new(self.bundle_info.clone()),
            Box::new(self.decisions.clone()),
            Box::new(self.evaluation_seconds.clone()),
        ]
    }

    pub fn set_bundle(&self, digest: &str, revision: &str) {
        self.bundle_info.reset();
        self.bundle_info.with_label_values(&[digest, revision]).set(1);
    }
}
