//! Metrics and logs.

pub mod metrics;

use crate::config::{LogConfig, LogFormat};

/// Installs the global `tracing` subscriber: human-readable by default, JSON lines with
/// `log.format: json`. `RUST_LOG` overrides the configured level.
pub fn init_logging(config: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (in tests) keeps the first subscriber.
    let _ = result;
}
