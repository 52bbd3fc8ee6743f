//! The plugins' Prometheus metrics, created unregistered; the gateway registers
//! [`PluginMetrics::collectors`] in its registry.

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

#[derive(Clone)]
pub(super) struct PluginMetrics {
    /// Calls by plugin and outcome (`ok`, `timeout`, `out_of_memory`, `trap`, `error`,
    /// `invalid_output`, `instantiate_error`, `busy`).
    pub calls: IntCounterVec,
    pub duration: HistogramVec,
    pub findings: IntCounterVec,
    /// Directory reloads by result (`ok`, `error`).
    pub reloads: IntCounterVec,
}

impl PluginMetrics {
    pub fn new() -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        PluginMetrics {
            calls: counter(
                "forge_plugin_calls_total",
                "Detector plugin calls, by plugin and outcome",
                &["plugin", "outcome"],
            ),
            duration: HistogramVec::new(
                HistogramOpts::new("forge_plugin_duration_seconds", "Time of one plugin call, instantiation included")
                    .buckets(vec![5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 2e-2, 0.1]),
                &["plugin"],
            )
            .expect("valid metric"),
            findings: counter(
                "forge_plugin_findings_total",
                "Findings reported by plugins, by plugin and category",
                &["plugin", "category"],
            ),
            reloads: counter("forge_plugin_reloads_total", "Plugins directory reloads, by result", &["result"]),
        }
    }

    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.calls.clone()),
            Box::new(self.duration.clone()),
            Box::new(self.findings.clone()),
            Box::new(self.reloads.clone()),
        ]
    }
}
