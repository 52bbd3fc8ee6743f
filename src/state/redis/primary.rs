//! Which Redis server the store talks to: the one `state.redis.url` names, or the primary
//! that Sentinel names. With Sentinel, the primary is asked again whenever a command fails
//! or the server stops saying it is a primary (the probe checks `ROLE` each second), and
//! the store's connections move to the new one: a failover is followed without a restart.
//!
//! Redis Cluster is not supported: the approval scripts touch several keys
//! (`approval:<id>`, `approval-bindings`, `approvals`, `events`) that would all have to share
//! one hash slot, which leaves one shard doing all the work — the same as one primary with
//! Sentinel, with more to operate.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{IntoConnectionInfo, RedisError};

use super::super::config::{RedisConfig, SentinelConfig, DEFAULT_URL};

/// The connections to one server: commands, and blocking stream reads on their own
/// connection so they never delay commands.
pub(super) struct Link {
    pub commands: ConnectionManager,
    pub reader: ConnectionManager,
    /// `host:port`, for logs.
    pub address: String,
}

/// The current server's connections; none while Sentinel has not named a primary yet.
pub(super) struct Primary {
    link: ArcSwapOption<Link>,
    manager: ConnectionManagerConfig,
    reader: ConnectionManagerConfig,
    /// Longest wait for a whole Sentinel lookup.
    lookup_timeout: Duration,
}

/// How the server is found.
pub(super) enum Discovery {
    Fixed,
    Sentinel(Box<SentinelClient>),
}

impl Primary {
    /// Connects lazily: nothing is contacted here, so a gateway starts (degraded) while
    /// Redis or every sentinel is down.
    pub fn connect(config: &RedisConfig, block: Duration) -> anyhow::Result<(Arc<Primary>, Discovery)> {
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let reader = manager.clone().set_response_timeout(Some(config.timeout + block));
        let primary = Primary { link: ArcSwapOption::empty(), manager, reader, lookup_timeout: config.timeout * 4 };
        let discovery = match &config.sentinel {
            None => {
                let url = config.url.as_deref().unwrap_or(DEFAULT_URL);
                primary.link.store(Some(Arc::new(primary.link_to(&fixed_client(config, url)?)?)));
                Discovery::Fixed
            }
            Some(sentinel) => Discovery::Sentinel(Box::new(sentinel_client(config, sentinel)?)),
        };
        Ok((Arc::new(primary), discovery))
    }

    pub fn current(&self) -> Option<Arc<Link>> {
        self.link.load_full()
    }

    fn link_to(&self, client: &redis::Client) -> anyhow::Result<Link> {
        Ok(Link {
            commands: client.get_connection_manager_lazy(self.manager.clone()).context("the Redis state store")?,
            reader: client.get_connection_manager_lazy(self.reader.clone()).context("the Redis event reader")?,
            address: client.get_connection_info().addr().to_string(),
        })
    }

    /// Asks the sentinels for the primary and moves to it if it is another server.
    pub async fn rediscover(&self, sentinel: &mut SentinelClient) -> Result<(), RedisError> {
        let found = tokio::time::timeout(self.lookup_timeout, sentinel.async_get_client()).await;
        let client = found.unwrap_or_else(|_| Err(no_primary("the sentinels did not answer in time")))?;
        let address = client.get_connection_info().addr().to_string();
        let previous = self.current().map(|link| link.address.clone());
        if previous.as_deref() == Some(address.as_str()) {
            return Ok(());
        }
        let link = self.link_to(&client).map_err(|e| no_primary_owned(format!("{e:#}")))?;
        tracing::warn!(primary = %address, previous = previous.as_deref(), "Redis state store: Sentinel names a new primary; moving to it");
        self.link.store(Some(Arc::new(link)));
        Ok(())
    }
}

pub(super) fn no_primary(why: &'static str) -> RedisError {
    RedisError::from((redis::ErrorKind::MasterNameNotFoundBySentinel, why))
}

fn no_primary_owned(why: String) -> RedisError {
    RedisError::from((redis::ErrorKind::MasterNameNotFoundBySentinel, "no usable primary", why))
}

fn read_password(file: &std::path::Path, field: &str) -> anyhow::Result<String> {
    let password = std::fs::read_to_string(file).with_context(|| format!("{field} {}", file.display()))?;
    Ok(password.trim_end_matches(['\r', '\n']).to_string())
}

fn certificates(ca: &std::path::Path, field: &str) -> anyhow::Result<redis::TlsCertificates> {
    let root_cert = std::fs::read(ca).with_context(|| format!("{field} {}", ca.display()))?;
    Ok(redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) })
}

fn fixed_client(config: &RedisConfig, url: &str) -> anyhow::Result<redis::Client> {
    let mut info = url.into_connection_info().context("state.redis.url")?;
    let mut settings = info.redis_settings().clone();
    if let Some(user) = &config.username {
        settings = settings.set_username(user);
    }
    if let Some(file) = &config.password_file {
        settings = settings.set_password(read_password(file, "state.redis.password_file")?);
    }
    info = info.set_redis_settings(settings);
    match &config.ca {
        Some(ca) => Ok(redis::Client::build_with_tls(info, certificates(ca, "state.redis.ca")?)?),
        None => Ok(redis::Client::open(info)?),
    }
}

fn sentinel_client(config: &RedisConfig, sentinel: &SentinelConfig) -> anyhow::Result<SentinelClient> {
    let addresses = sentinel
        .urls
        .iter()
        .map(|url| {
            let info =
                url.as_str().into_connection_info().with_context(|| format!("state.redis.sentinel.urls: {url}"))?;
            Ok(info.addr().clone())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut builder = SentinelClientBuilder::new(addresses, &sentinel.master_name, SentinelServerType::Master)?;
    if let Some(user) = &sentinel.username {
        builder = builder.set_client_to_sentinel_username(user);
    }
    if let Some(file) = &sentinel.password_file {
        builder = builder.set_client_to_sentinel_password(read_password(file, "state.redis.sentinel.password_file")?);
    }
    if let Some(ca) = &sentinel.ca {
        builder = builder.set_client_to_sentinel_certificates(certificates(ca, "state.redis.sentinel.ca")?);
    }
    if let Some(user) = &config.username {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(file) = &config.password_file {
        builder = builder.set_client_to_redis_password(read_password(file, "state.redis.password_file")?);
    }
    if sentinel.primary_tls {
        builder = builder.set_client_to_redis_tls_mode(redis::TlsMode::Secure);
        if let Some(ca) = &config.ca {
            builder = builder.set_client_to_redis_certificates(certificates(ca, "state.redis.ca")?);
        }
    }
    builder.build().context("state.redis.sentinel")
}
