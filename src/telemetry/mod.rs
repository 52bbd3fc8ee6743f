//! Metrics and logs.

pub mod metrics;

use crate::config::{LogConfig, LogFormat};

/// Installs the global `tracing` subscriber on stderr: human-readable by default, JSON
/// lines with `log.format: json`. `RUST_LOG` overrides the configured level.
///
/// Lines are written by a background thread so request handling never waits on the
/// terminal or a log collector's pipe; when that thread falls behind, callers wait rather
/// than lines being dropped. Keep the returned guard alive: dropping it flushes the log.
pub fn init_logging(config: &LogConfig) -> tracing_appender::non_blocking::WorkerGuard {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.level));
    let ansi = std::io::stderr().is_terminal();
    // The background thread drains every queued line into one buffer and flushes once per
    // batch: one write(2) per batch instead of one per line.
    let stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default().lossy(false).finish(stderr);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let result = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Err(e) = result {
        eprintln!("forge: logging was already initialised: {e}");
    }
    guard
}
