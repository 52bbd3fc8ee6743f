//! Detector plugins: WebAssembly components (`wit/detector.wit`) that look at messages and
//! report findings for policy.
//!
//! [`Plugins`] is the whole API the gateway uses: load a directory ([`Plugins::load`]),
//! ask it about a message ([`Plugins::detect`] with a [`Scan`]), reload it when it changes
//! ([`Plugins::watch`]). A plugin that fails — traps, runs out of time or memory, returns
//! an error or findings that do not fit the payload — never takes the gateway with it: the
//! call ends, the failure is counted, and the plugin's fail mode decides the message.

pub mod cli;
pub mod config;
mod epoch;
pub mod host;
pub mod manifest;
mod metrics;
pub mod payload;
mod prepare;
mod scan;
mod set;
mod slots;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use config::{PluginLimits, PluginSettings, PluginsConfig};
pub use host::{CallError, Host};
pub use scan::Scan;
pub use set::{Failure, PluginWatcher, Plugins, PluginsStatus};

/// Where in the exchange a payload comes from (the WIT `hook`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Hook {
    Request,
    Response,
    ToolList,
}

/// What a plugin may reach outside its sandbox; nothing unless granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Clock,
    Random,
    Env,
    Fs,
    Network,
}

/// What happens to a message when a plugin fails on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// The message is refused.
    #[default]
    FailClosed,
    /// The message goes on, with a `forge.plugin_error` finding policy can see.
    FailOpen,
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("{path}: sha256 is {actual}, the manifest says {expected}: refusing the plugin")]
    Digest { path: PathBuf, expected: String, actual: String },
    #[error("plugin `{plugin}` asks for the `{capability:?}` capability, which plugins.settings.{plugin}.grants does not grant{via}")]
    NotGranted { plugin: String, capability: Capability, via: String },
    #[error("plugin `{plugin}`: its config does not match its config_schema: {message}")]
    Config { plugin: String, message: String },
    #[error("plugin `{plugin}`: {message}")]
    Link { plugin: String, message: String },
    #[error("plugin `{plugin}` could not be prepared: {message}")]
    Prepare { plugin: String, message: String },
    #[error("compiling a plugin: {0}")]
    Compile(String),
    #[error("the plugin engine: {0}")]
    Engine(String),
    #[error("{0}")]
    Directory(String),
    #[error("watching the plugins directory: {0}")]
    Watch(String),
    #[error(transparent)]
    Untrusted(#[from] crate::provenance::Rejection),
}

impl PluginError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        PluginError::Io { path: path.to_path_buf(), source }
    }
}
