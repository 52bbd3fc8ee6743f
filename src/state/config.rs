//! The `state:` section: which store keeps approvals, pins, rate limits and revocations.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    pub backend: StateBackend,
    /// The embedded database file. Default: `state_dir/state.redb`.
    pub path: Option<PathBuf>,
    pub redis: RedisConfig,
    /// How long into a store outage the revocations in memory are still trusted; then
    /// identified callers are refused until the store answers again.
    #[serde(deserialize_with = "crate::config::duration")]
    pub revocations_max_staleness: Duration,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            backend: StateBackend::default(),
            path: None,
            redis: RedisConfig::default(),
            revocations_max_staleness: Duration::from_secs(30),
        }
    }
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
    /// One Redis server: `redis://host:port/db`, or `rediss://…` for TLS. Credentials may be
    /// in the URL, but `username`/`password_file` keep them out of the config file. Default
    /// `redis://127.0.0.1:6379`; not with `sentinel`.
    pub url: Option<String>,
    /// The primary as Sentinel names it, instead of `url`: followed across failovers.
    pub sentinel: Option<SentinelConfig>,
    /// The data nodes' (the server's, or the primary's and its replicas') ACL user.
    pub username: Option<String>,
    /// A file holding the password (a Kubernetes secret mount); trailing newlines are ignored.
    pub password_file: Option<PathBuf>,
    /// PEM CA bundle trusted for the data nodes' TLS instead of the system roots.
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

/// Redis Sentinel: which sentinels to ask, for which primary, and how to reach both.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelConfig {
    /// The name the sentinels monitor the primary under (`sentinel monitor <name> …`).
    pub master_name: String,
    /// The sentinels, asked in order: `redis://HOST:PORT`, or `rediss://HOST:PORT` for TLS.
    pub urls: Vec<String>,
    /// The sentinels' own ACL user and password file (they may differ from the data nodes').
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// PEM CA bundle trusted for `rediss://` sentinels.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// The primary serves TLS (checked against `state.redis.ca`, else the system roots).
    #[serde(default)]
    pub primary_tls: bool,
}

/// The server used when neither `url` nor `sentinel` is set.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            sentinel: None,
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
        let redis = &self.redis;
        let data_tls = match (&redis.url, &redis.sentinel) {
            (Some(_), Some(_)) => {
                return Err(("state.redis.sentinel", "set either state.redis.url or state.redis.sentinel".into()))
            }
            (url, None) => {
                let url = url.as_deref().unwrap_or(DEFAULT_URL);
                if !is_redis_url(url) {
                    return Err(("state.redis.url", "must be redis://HOST:PORT or rediss://HOST:PORT".into()));
                }
                url.starts_with("rediss://")
            }
            (None, Some(sentinel)) => {
                sentinel.validate()?;
                sentinel.primary_tls
            }
        };
        if redis.ca.is_some() && !data_tls {
            return Err(("state.redis.ca", "a CA bundle needs TLS: a rediss:// URL or sentinel.primary_tls".into()));
        }
        if redis.timeout.is_zero() {
            return Err(("state.redis.timeout", "must be greater than zero".into()));
        }
        Ok(())
    }
}

impl SentinelConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.master_name.is_empty() {
            return Err(("state.redis.sentinel.master_name", "name the primary the sentinels monitor".into()));
        }
        if self.urls.is_empty() {
            return Err(("state.redis.sentinel.urls", "list at least one sentinel".into()));
        }
        for url in &self.urls {
            if !is_redis_url(url) {
                return Err((
                    "state.redis.sentinel.urls",
                    format!("{url}: must be redis://HOST:PORT or rediss://HOST:PORT"),
                ));
            }
            // The sentinel client takes addresses only: credentials in a URL would be dropped.
            if url.contains('@') {
                return Err(("state.redis.sentinel.urls", "put credentials in sentinel.username/password_file".into()));
            }
        }
        let tls = self.urls.iter().filter(|u| u.starts_with("rediss://")).count();
        if tls != 0 && tls != self.urls.len() {
            return Err(("state.redis.sentinel.urls", "either every sentinel uses TLS (rediss://) or none".into()));
        }
        if self.ca.is_some() && tls == 0 {
            return Err(("state.redis.sentinel.ca", "a CA bundle needs rediss:// sentinels".into()));
        }
        Ok(())
    }
}

fn is_redis_url(url: &str) -> bool {
    url.starts_with("redis://") || url.starts_with("rediss://")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(yaml: &str) -> Result<(), (&'static str, String)> {
        let config: StateConfig = serde_yaml_ng::from_str(&format!("backend: redis\nredis:\n{yaml}")).unwrap();
        config.validate()
    }

    #[test]
    fn sentinel_settings_are_checked() {
        let sentinel = "  sentinel:\n    master_name: forge\n    urls: [redis://127.0.0.1:26379]\n";
        assert_eq!(redis(sentinel), Ok(()));
        assert_eq!(redis("  url: redis://h:1\n").map_err(|e| e.0), Ok(()));
        let both = format!("  url: redis://h:1\n{sentinel}");
        assert_eq!(redis(&both).unwrap_err().0, "state.redis.sentinel");
        let nameless = "  sentinel:\n    master_name: ''\n    urls: [redis://h:1]\n";
        assert_eq!(redis(nameless).unwrap_err().0, "state.redis.sentinel.master_name");
        let secret = "  sentinel:\n    master_name: f\n    urls: [redis://:pw@h:1]\n";
        assert_eq!(redis(secret).unwrap_err().0, "state.redis.sentinel.urls");
        let mixed = "  sentinel:\n    master_name: f\n    urls: [redis://h:1, rediss://h:2]\n";
        assert_eq!(redis(mixed).unwrap_err().0, "state.redis.sentinel.urls");
        let plain_ca = format!("{sentinel}  ca: /ca.pem\n");
        assert_eq!(redis(&plain_ca).unwrap_err().0, "state.redis.ca", "the primary is not TLS");
        let tls_ca = format!("{sentinel}    primary_tls: true\n  ca: /ca.pem\n");
        assert_eq!(redis(&tls_ca), Ok(()));
    }
}
