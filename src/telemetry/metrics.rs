//! Prometheus metrics, named per Prometheus conventions (`forge_` prefix, base units,
//! `_total` for counters). Every metric is registered once here; handlers get a clone.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// MCP requests by method and outcome (`ok`, `error`, `rejected`, `upstream_error`).
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    /// `tools/call` requests by outcome and tool. Only tools the upstream listed get their
    /// own label (`unlisted` for the rest): callers choose tool names, the upstream's
    /// catalogue bounds them.
    pub tool_calls: IntCounterVec,
    /// Every JSON-RPC message inspected, by direction and kind.
    pub messages: IntCounterVec,
    pub sessions_active: IntGauge,
    pub streams_active: IntGauge,
    pub connections_active: IntGauge,
    /// Client connections accepted, by the serving worker that accepted them (`0`…`N-1`).
    pub connections_accepted: IntCounterVec,
    /// Upstream failures by kind (`connect`, `timeout`, `reset`, `invalid_response`, `process_exit`).
    pub upstream_errors: IntCounterVec,
    pub tls_handshake_failures: IntCounter,
    /// Certificate reloads by result (`ok`, `error`).
    pub tls_reloads: IntCounterVec,
    /// Requests refused by a limit, by limit name.
    pub limit_rejections: IntCounterVec,
    /// Messages refused before forwarding, by reason (`parse_error`, `invalid_request`, `header_mismatch`).
    pub protocol_rejections: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("metric registered once");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry.register(Box::new(g.clone())).expect("metric registered once");
            g
        };
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "forge_mcp_request_duration_seconds",
                "Time from request received to response headers sent",
            )
            .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["method", "outcome"],
        )
        .expect("valid metric");
        registry.register(Box::new(request_duration.clone())).expect("metric registered once");
        let tls_handshake_failures =
            IntCounter::new("forge_tls_handshake_failures_total", "TLS handshakes that failed").expect("valid metric");
        registry.register(Box::new(tls_handshake_failures.clone())).expect("metric registered once");
        let build_info =
            IntGaugeVec::new(Opts::new("forge_build_info", "Build information"), &["version"]).expect("valid metric");
        registry.register(Box::new(build_info.clone())).expect("metric registered once");
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry.register(Box::new(super::tracing_otel::EXPORTS.clone())).expect("metric registered once");

        Metrics {
            requests: counter(
                "forge_mcp_requests_total",
                "MCP requests handled, by method and outcome",
                &["method", "outcome"],
            ),
            request_duration,
            tool_calls: counter(
                "forge_mcp_tool_calls_total",
                "tools/call requests handled, by outcome and tool (unlisted: a tool the upstream never listed)",
                &["outcome", "tool"],
            ),
            messages: counter(
                "forge_mcp_messages_total",
                "JSON-RPC messages inspected, by direction and kind",
                &["direction", "kind"],
            ),
            sessions_active: gauge("forge_sessions_active", "MCP sessions currently open"),
            streams_active: gauge("forge_streams_active", "SSE streams currently open"),
            connections_active: gauge("forge_connections_active", "Client connections currently open"),
            connections_accepted: counter(
                "forge_connections_accepted_total",
                "Client connections accepted, by serving worker thread",
                &["worker"],
            ),
            upstream_errors: counter("forge_upstream_errors_total", "Upstream failures, by kind", &["kind"]),
            tls_handshake_failures,
            tls_reloads: counter("forge_tls_reloads_total", "TLS certificate reloads, by result", &["result"]),
            limit_rejections: counter("forge_limit_rejections_total", "Requests refused by a limit", &["limit"]),
            protocol_rejections: counter(
                "forge_protocol_rejections_total",
                "Messages refused before forwarding, by reason",
                &["reason"],
            ),
            registry,
        }
    }

    /// The registry, for components that own their metrics (auth, policy).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding cannot fail");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
