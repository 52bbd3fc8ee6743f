//! Provenance metrics, created unregistered; the gateway registers [`ProvenanceMetrics::collectors`].

use prometheus::core::Collector;
use prometheus::{IntCounterVec, IntGauge, Opts};

use super::Rejection;

#[derive(Clone)]
pub(crate) struct ProvenanceMetrics {
    rejections: IntCounterVec,
    development_mode: IntGauge,
}

impl ProvenanceMetrics {
    pub fn new(development: bool) -> Self {
        let rejections = IntCounterVec::new(
            Opts::new("forge_provenance_rejections_total", "Policy bundles and plugins refused for their signature"),
            &["kind", "reason"],
        )
        .expect("valid metric");
        let development_mode = IntGauge::new(
            "forge_provenance_development_mode",
            "1 when no trust policy is configured and unsigned bundles and plugins load",
        )
        .expect("valid metric");
        development_mode.set(development.into());
        ProvenanceMetrics { rejections, development_mode }
    }

    pub fn rejected(&self, rejection: &Rejection) {
        self.rejections.with_label_values(&[rejection.kind.as_str(), rejection.reason.as_str()]).inc();
    }

    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![Box::new(self.rejections.clone()), Box::new(self.development_mode.clone())]
    }
}
