//! Distributed tracing: one OpenTelemetry span per MCP request, named and attributed per
//! the OpenTelemetry MCP semantic conventions (`mcp.method.name`, `gen_ai.tool.name`,
//! `mcp.session.id`, …), exported over OTLP/HTTP (protobuf) when `tracing.enabled`.
//!
//! The parent comes from the request's `params._meta.traceparent`/`tracestate` when the
//! client put it there (the conventions' per-message propagation), else from the HTTP
//! `traceparent`/`tracestate` headers. The upstream receives the gateway's span both ways:
//! in the HTTP headers, and in the request's `_meta`, which is rewritten right after
//! parsing — before detectors and policy — so the upstream still gets exactly the message
//! policy evaluated.
//!
//! Off by default, and then nothing here costs more than one atomic load per request and
//! bodies pass byte for byte.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde::Deserialize;
use serde_json::Value;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::mcp::jsonrpc::{Message, Payload};

/// The `tracing` target of request spans; only these reach the exporter.
pub const TARGET: &str = "forge::trace";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// `forge_trace_exports_total{result}`: OTLP exports by result (`ok`, `error`). Global
/// because the exporter is built before the gateway's registry; [`super::metrics::Metrics`]
/// registers it.
pub static EXPORTS: std::sync::LazyLock<prometheus::IntCounterVec> = std::sync::LazyLock::new(|| {
    let opts = prometheus::Opts::new("forge_trace_exports_total", "OTLP trace exports to the collector, by result");
    prometheus::IntCounterVec::new(opts, &["result"]).expect("valid metric")
});

/// Whether the last export failed: failures are logged when they start and when they end,
/// not once per export while a collector is down.
static FAILING: AtomicBool = AtomicBool::new(false);

fn record_export(result: &Result<http::Response<Bytes>, opentelemetry_http::HttpError>) {
    let failure = match result {
        Ok(response) if response.status().is_success() => None,
        Ok(response) => Some(format!("the collector answered {}", response.status())),
        Err(e) => Some(e.to_string()),
    };
    EXPORTS.with_label_values(&[if failure.is_some() { "error" } else { "ok" }]).inc();
    match failure {
        Some(error) if !FAILING.swap(true, Ordering::Relaxed) => {
            tracing::warn!(%error, "trace export failed; spans are dropped until the collector answers")
        }
        None if FAILING.swap(false, Ordering::Relaxed) => tracing::info!("trace export recovered"),
        _ => {}
    }
}

/// The `tracing:` section of the gateway's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    pub enabled: bool,
    /// The OTLP/HTTP traces endpoint of a collector, e.g. `http://otel-collector:4318/v1/traces`.
    pub endpoint: String,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// Fraction of new traces sampled (0.0–1.0); a sampled or unsampled parent decides for its children.
    pub sample_ratio: f64,
    /// Longest wait for the collector per export.
    #[serde(deserialize_with = "crate::config::duration")]
    pub timeout: Duration,
    /// How often batched spans are sent.
    #[serde(deserialize_with = "crate::config::duration")]
    pub export_interval: Duration,
    /// Extra headers on every export (a collector's API key, …).
    pub headers: BTreeMap<String, String>,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            enabled: false,
            endpoint: "http://127.0.0.1:4318/v1/traces".into(),
            service_name: "forge".into(),
            sample_ratio: 1.0,
            timeout: Duration::from_secs(5),
            export_interval: Duration::from_secs(5),
            headers: BTreeMap::new(),
        }
    }
}

/// A tracing setting that cannot work, naming the field under `tracing:`.
#[derive(Debug, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct TracingConfigError {
    pub field: &'static str,
    pub message: String,
}

impl TracingConfig {
    pub fn validate(&self) -> Result<(), TracingConfigError> {
        let error = |field, message: &str| Err(TracingConfigError { field, message: message.to_string() });
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return error("tracing.sample_ratio", "must be between 0.0 and 1.0");
        }
        match self.endpoint.parse::<http::Uri>() {
            Ok(uri) if uri.scheme_str() == Some("http") && uri.authority().is_some() => {}
            _ => return error("tracing.endpoint", "must be an http://HOST:PORT/PATH OTLP/HTTP endpoint"),
        }
        if self.service_name.trim().is_empty() {
            return error("tracing.service_name", "must not be empty");
        }
        for (name, value) in &self.headers {
            if http::HeaderName::try_from(name.as_str()).is_err()
                || http::HeaderValue::try_from(value.as_str()).is_err()
            {
                return error("tracing.headers", &format!("`{name}` is not a valid HTTP header"));
            }
        }
        Ok(())
    }
}

/// Flushes and stops the exporter when dropped; keep it alive while the gateway runs, and
/// drop it before the runtime it was built with.
pub struct TracingGuard {
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("forge: flushing traces failed: {e}");
        }
    }
}

/// The layer that turns request spans into OpenTelemetry spans, and its guard.
pub fn layer<S>(
    config: &TracingConfig,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<(impl tracing_subscriber::Layer<S> + Send + Sync, TracingGuard)>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span> + Send + Sync,
{
    use opentelemetry::trace::TracerProvider;
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider};
    use tracing_subscriber::Layer;

    let client = ExportClient { runtime: runtime.clone(), timeout: config.timeout, client: http_client() };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(config.endpoint.clone())
        .with_timeout(config.timeout)
        .with_headers(config.headers.clone().into_iter().collect())
        .build()?;
    let batch = BatchConfigBuilder::default().with_scheduled_delay(config.export_interval).build();
    let processor = BatchSpanProcessor::builder(exporter).with_batch_config(batch).build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio))))
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(config.service_name.clone())
                .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                .build(),
        )
        .build();
    let tracer = provider.tracer("forge");
    // Spans start when their context is first needed, not when entered: the parent is only
    // known once the body (and its `_meta`) has been read.
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_context_activation(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|metadata| metadata.target() == TARGET));
    ENABLED.store(true, Ordering::Relaxed);
    Ok((layer, TracingGuard { provider }))
}

/// The span of one MCP request (POST), parented on the HTTP `traceparent` for now;
/// [`describe`] names it once the message is known. Disabled: [`tracing::Span::none`].
pub fn request_span(headers: &HeaderMap) -> tracing::Span {
    if !ENABLED.load(Ordering::Relaxed) {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        target: TARGET,
        "mcp.request",
        otel.name = "mcp",
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        "mcp.method.name" = tracing::field::Empty,
        "mcp.session.id" = tracing::field::Empty,
        "mcp.protocol.version" = tracing::field::Empty,
        "mcp.resource.uri" = tracing::field::Empty,
        "jsonrpc.request.id" = tracing::field::Empty,
        "gen_ai.tool.name" = tracing::field::Empty,
        "gen_ai.prompt.name" = tracing::field::Empty,
        "gen_ai.operation.name" = tracing::field::Empty,
        "network.transport" = "tcp",
        "network.protocol.name" = "http",
        "http.response.status_code" = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderCarrier(headers));
    let _ = span.set_parent(parent);
    span
}

/// Names the current request span for the parsed message and, when the message carries
/// `_meta.traceparent`, re-parents it there.
pub fn describe(payload: &Payload, headers: &HeaderMap, session: Option<&str>) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let span = tracing::Span::current();
    if let Some(session) = session {
        span.record("mcp.session.id", session);
    }
    let Payload::Single(message) = payload else {
        span.record("otel.name", "batch");
        return;
    };
    let Some(method) = message.method() else {
        span.record("otel.name", "response");
        return;
    };
    span.record("mcp.method.name", method);
    if let Message::Request(r) = message {
        span.record("jsonrpc.request.id", r.id.to_string());
    }
    // Stateful revisions carry the version in a header; 2026-07-28 in each request's `_meta`.
    let header_version = headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok());
    if let Some(version) = header_version.or_else(|| message.meta_protocol_version()) {
        span.record("mcp.protocol.version", version);
    }
    let target = message.subject();
    match (method, target) {
        ("tools/call", Some(tool)) => {
            span.record("gen_ai.tool.name", tool);
            span.record("gen_ai.operation.name", "execute_tool");
        }
        ("prompts/get", Some(prompt)) => {
            span.record("gen_ai.prompt.name", prompt);
        }
        (_, Some(uri)) if method.starts_with("resources/") => {
            span.record("mcp.resource.uri", uri);
        }
        _ => {}
    }
    // Tool and prompt names are low-cardinality; resource URIs are not, so they stay out
    // of the span name.
    let name = match (method, target) {
        ("tools/call" | "prompts/get", Some(target)) => format!("{method} {target}"),
        _ => method.to_string(),
    };
    span.record("otel.name", name.as_str());
    if let Some(meta) = message.params().and_then(|p| p.get("_meta")).and_then(Value::as_object) {
        if meta.contains_key("traceparent") {
            let _ = span.set_parent(TraceContextPropagator::new().extract(&MetaCarrier(meta)));
        }
    }
}

/// Puts the current request span into a single request's `params._meta.traceparent` (and
/// `tracestate`), replacing the caller's, and re-serializes the body. Batches, responses,
/// notifications and params that are not an object pass unchanged, as does everything
/// when tracing is off.
pub fn inject_meta(payload: Payload, bytes: Bytes) -> (Payload, Bytes) {
    if !ENABLED.load(Ordering::Relaxed) {
        return (payload, bytes);
    }
    let Payload::Single(Message::Request(mut request)) = payload else { return (payload, bytes) };
    let mut fields = HashMap::new();
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut fields);
    let writable = match &request.params {
        None => true,
        Some(Value::Object(params)) => params.get("_meta").is_none_or(Value::is_object),
        Some(_) => false,
    };
    if fields.is_empty() || !writable {
        return (Payload::Single(Message::Request(request)), bytes);
    }
    let params = request.params.get_or_insert_with(|| Value::Object(Default::default()));
    let meta = &mut params["_meta"];
    if meta.is_null() {
        *meta = Value::Object(Default::default());
    }
    let meta = meta.as_object_mut().expect("checked: an object");
    meta.remove("tracestate");
    meta.extend(fields.into_iter().map(|(k, v)| (k, Value::String(v))));
    let message = Message::Request(request);
    let body = Bytes::from(serde_json::to_vec(&message.to_value()).expect("JSON serializes"));
    (Payload::Single(message), body)
}

/// Puts the current request span into the upstream request's `traceparent`/`tracestate`.
pub fn inject_headers(headers: &mut HeaderMap) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderCarrierMut(headers));
}

/// Records how the request ended.
pub fn finish(span: &tracing::Span, status: http::StatusCode) {
    if span.is_none() {
        return;
    }
    span.record("http.response.status_code", status.as_u16());
    if status.is_client_error() || status.is_server_error() {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", status.as_str());
    }
}

struct HeaderCarrier<'a>(&'a HeaderMap);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderCarrierMut<'a>(&'a mut HeaderMap);

impl Injector for HeaderCarrierMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (http::HeaderName::try_from(key), http::HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }
}

struct MetaCarrier<'a>(&'a serde_json::Map<String, Value>);

impl Extractor for MetaCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

type HyperClient =
    hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, http_body_util::Full<Bytes>>;

fn http_client() -> HyperClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build_http()
}

/// The exporter's HTTP client. The SDK exports from its own thread, outside any runtime,
/// so each request is spawned onto the gateway's runtime and awaited from there.
#[derive(Debug)]
struct ExportClient {
    runtime: tokio::runtime::Handle,
    timeout: Duration,
    client: HyperClient,
}

/// A collector's answer is small; anything bigger is not one.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let (client, timeout) = (self.client.clone(), self.timeout);
        let request = request.map(http_body_util::Full::new);
        let exchange = async move {
            let response = client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = crate::body::read_limited(crate::body::boxed(body), MAX_RESPONSE_BYTES, timeout).await?;
            Ok::<_, opentelemetry_http::HttpError>(http::Response::from_parts(parts, body))
        };
        let bounded = async move {
            tokio::time::timeout(timeout, exchange).await.map_err(|_| format!("no answer within {timeout:?}"))?
        };
        let result = self.runtime.spawn(bounded).await.unwrap_or_else(|e| Err(e.into()));
        record_export(&result);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated() {
        assert!(TracingConfig::default().validate().is_ok());
        let bad = |edit: fn(&mut TracingConfig)| {
            let mut c = TracingConfig::default();
            edit(&mut c);
            c.validate().unwrap_err().field
        };
        assert_eq!(bad(|c| c.sample_ratio = 1.5), "tracing.sample_ratio");
        assert_eq!(bad(|c| c.endpoint = "https://collector/v1/traces".into()), "tracing.endpoint");
        assert_eq!(bad(|c| c.endpoint = "collector:4318".into()), "tracing.endpoint");
        assert_eq!(bad(|c| c.service_name = " ".into()), "tracing.service_name");
        assert_eq!(bad(|c| drop(c.headers.insert("bad header".into(), "x".into()))), "tracing.headers");
    }

    #[test]
    fn disabled_tracing_creates_no_span() {
        assert!(request_span(&HeaderMap::new()).is_none());
    }
}
