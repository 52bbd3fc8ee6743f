//! Metrics, logs and traces.

pub mod metrics;
pub mod tracing_otel;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::config::{LogConfig, LogFormat};
pub use tracing_otel::{TracingConfig, TracingGuard};

/// Installs the global `tracing` subscriber on stderr: human-readable by default, JSON
/// lines with `log.format: json`. `RUST_LOG` overrides the configured level.
///
/// Lines are written by a background thread so request handling never waits on the
/// terminal or a log collector's pipe; when that thread falls behind, callers wait rather
/// than lines being dropped. Keep the returned guard alive: dropping it flushes the log.
pub fn init_logging(config: &LogConfig) -> tracing_appender::non_blocking::WorkerGuard {
    install(config, None::<tracing_subscriber::layer::Identity>)
}

/// [`init_logging`], plus OTLP export of request spans when `tracing.enabled`. Drop the
/// returned guards before `runtime`'s runtime: the tracing guard flushes through it.
pub fn init_logging_and_tracing(
    log: &LogConfig,
    tracing: &TracingConfig,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<(tracing_appender::non_blocking::WorkerGuard, Option<TracingGuard>)> {
    if !tracing.enabled {
        return Ok((init_logging(log), None));
    }
    let (layer, guard) = tracing_otel::layer(tracing, runtime)?;
    Ok((install(log, Some(layer)), Some(guard)))
}

fn install<L>(config: &LogConfig, otel: Option<L>) -> tracing_appender::non_blocking::WorkerGuard
where
    L: Layer<Registry> + Send + Sync,
{
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.level))
        // Request spans are for the exporter; log lines stay as they are.
        .add_directive(format!("{}=off", tracing_otel::TARGET).parse().expect("static directive"));
    let ansi = std::io::stderr().is_terminal();
    // The background thread drains every queued line into one buffer and flushes once per
    // batch: one write(2) per batch instead of one per line.
    let stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default().lossy(false).finish(stderr);
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi);
    let fmt = match config.format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    let result = tracing_subscriber::registry().with(otel).with(fmt.with_filter(filter)).try_init();
    if let Err(e) = result {
        eprintln!("forge: logging was already initialised: {e}");
    }
    guard
}
