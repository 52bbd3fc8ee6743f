//! The `state:` section: which store keeps approvals, pins, rate limits and revocations.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    pub backend: StateBackend,
    /// The embedded database file. Default: `state_dir/state.redb`.
    pub path: Option<PathBuf>,
    pub redis: RedisConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateBackend {
    /// One replica: a crash-safe database under the state dir.
    #[default]
    Embedded,
    /// Several replicas share one Redis.
    Redis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port/db`, or `rediss://…` for TLS. Credentials may be in the URL, but
    /// `username`/`password_file` keep them out of the config file.
    pub url: String,
    pub username: Option<String>,
    /// A file holding the password (a Kubernetes secret mount); trailing newlines are ignored.
    pub password_file: Option<PathBuf>,
    /// PEM CA bundle trusted for `rediss://` instead of the system roots.
    pub ca: Option<PathBuf>,
    /// Prefix of every key and stream, so several gateways can share one Redis.
    pub key_prefix: String,
    /// This replica's consumer name in the event stream's consumer groups. Default: a name
    /// generated once and kept in `state_dir/replica-id`, so a restart resumes where it was.
    pub replica_id: Option<String>,
    /// Longest wait for one Redis command; beyond it the store counts as unavailable.
    #[serde(deserialize_with = "crate::config::duration")]
    pub timeout: Duration,
    /// Events kept in the stream (approximate `MAXLEN`).
    pub stream_max_len: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            username: None,
            password_file: None,
            ca: None,
            key_prefix: "forge".into(),
            replica_id: None,
            timeout: Duration::from_millis(500),
            stream_max_len: 100_000,
        }
    }
}

impl StateConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.backend != StateBackend::Redis {
            return Ok(());
        }
        let url = &self.redis.url;
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(("state.redis.url", "must be redis://HOST:PORT or rediss://HOST:PORT".into()));
        }
        if self.redis.ca.is_some() && !url.starts_with("rediss://") {
            return Err(("state.redis.ca", "a CA bundle needs a rediss:// (TLS) URL".into()));
        }
        if self.redis.timeout.is_zero() {
            return Err(("state.redis.timeout", "must be greater than zero".into()));
        }
        Ok(())
    }
}
