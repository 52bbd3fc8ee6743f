//! The `evidence:` section of the gateway config (docs/config.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::record::{GatewayIdentity, Masking};
use crate::config::duration;
use crate::policy::{MaskStyle, DEFAULT_MASK};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceConfig {
    pub enabled: bool,
    /// PKCS#8 PEM Ed25519 key (a file or a mounted secret). Unset: a development key is
    /// generated under `<state_dir>/evidence/` and its key id logged.
    pub key: Option<PathBuf>,
    /// The gateway's identity in records; unset parts come from `POD_NAME`,
    /// `POD_NAMESPACE` and `NODE_NAME`, and the name last from the host name.
    pub gateway: IdentityConfig,
    /// Where segments and checkpoints live; default `<state_dir>/evidence`.
    pub dir: Option<PathBuf>,
    pub fsync: Fsync,
    /// With `fsync: interval`, how often.
    #[serde(deserialize_with = "duration")]
    pub fsync_interval: Duration,
    /// A signed checkpoint after this long with new records…
    #[serde(deserialize_with = "duration")]
    pub checkpoint_interval: Duration,
    /// …or after this many new records, whichever comes first.
    pub checkpoint_records: u64,
    pub rotate: RotateConfig,
    pub retention: RetentionConfig,
    /// Records waiting for the writer thread, at most.
    pub queue: usize,
    /// How long a request waits for room in a full queue before `when_full` applies.
    #[serde(deserialize_with = "duration")]
    pub queue_wait: Duration,
    pub when_full: WhenFull,
    /// Put each SSE result's signed evidence in its `_meta` under `io.forge/evidence`.
    pub sse_meta: bool,
    /// Also write every record to `stdout` or a file, for log shippers.
    pub stream: Option<String>,
    /// JSON pointers into recorded policy inputs whose values are masked.
    pub mask: Vec<String>,
    pub mask_style: MaskStyle,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub node: Option<String>,
}

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    /// After every batch of records the writer takes from its queue.
    Record,
    /// Before every checkpoint (a checkpoint never covers records not on disk).
    Checkpoint,
    /// Every `fsync_interval`, and before every checkpoint.
    Interval,
}

/// What a response does when the writer's queue stayed full for `queue_wait` (or the log
/// cannot write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// The client gets an error instead of an answer without evidence (HTTP 503).
    FailClosed,
    /// The answer goes out; the record is dropped, logged and counted.
    Drop,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RotateConfig {
    /// A new segment once the current one holds this many bytes…
    #[serde(deserialize_with = "crate::config::byte_size")]
    pub max_bytes: usize,
    /// …or is this old.
    #[serde(deserialize_with = "duration")]
    pub max_age: Duration,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Closed segments whose newest record is older than this are deleted (their leaf
    /// hashes are kept, so later proofs still verify). Unset: kept forever.
    #[serde(default, deserialize_with = "optional_duration")]
    pub max_age: Option<Duration>,
    /// At most this many closed segments are kept. Unset: no limit.
    pub max_segments: Option<usize>,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        EvidenceConfig {
            enabled: true,
            key: None,
            gateway: IdentityConfig::default(),
            dir: None,
            fsync: Fsync::Checkpoint,
            fsync_interval: Duration::from_secs(1),
            checkpoint_interval: Duration::from_secs(10),
            checkpoint_records: 1000,
            rotate: RotateConfig::default(),
            retention: RetentionConfig::default(),
            queue: 4096,
            queue_wait: Duration::from_millis(5),
            when_full: WhenFull::FailClosed,
            sse_meta: true,
            stream: None,
            mask: DEFAULT_MASK.iter().map(|p| p.to_string()).collect(),
            mask_style: MaskStyle::Sha256,
        }
    }
}

impl Default for RotateConfig {
    fn default() -> Self {
        RotateConfig { max_bytes: 64 << 20, max_age: Duration::from_secs(24 * 3600) }
    }
}

impl EvidenceConfig {
    pub fn dir(&self, state_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| state_dir.join("evidence"))
    }

    pub fn masking(&self) -> Masking {
        Masking { pointers: self.mask.clone(), style: self.mask_style }
    }

    /// The identity from config, then the pod's environment, then the host name.
    pub fn identity(&self, env: impl Fn(&str) -> Option<String>) -> GatewayIdentity {
        let name = self.gateway.name.clone().or_else(|| env("POD_NAME")).unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname").map_or_else(|_| "forge".into(), |h| h.trim().into())
        });
        GatewayIdentity {
            name,
            namespace: self.gateway.namespace.clone().or_else(|| env("POD_NAMESPACE")),
            node: self.gateway.node.clone().or_else(|| env("NODE_NAME")),
        }
    }

    /// Problems `config check` and start-up report, naming the field.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.queue == 0 {
            problems.push(("evidence.queue", "must be at least 1".to_string()));
        }
        if self.checkpoint_records == 0 {
            problems.push(("evidence.checkpoint_records", "must be at least 1".to_string()));
        }
        if self.rotate.max_bytes < 4096 {
            problems.push(("evidence.rotate.max_bytes", "must be at least 4KiB".to_string()));
        }
        for (i, p) in self.mask.iter().enumerate() {
            if !p.starts_with('/') {
                problems.push(("evidence.mask", format!("entry {i} `{p}` is not a JSON pointer (starts with /)")));
            }
        }
        problems
    }
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_prefers_config_then_the_pod_environment() {
        let env = |k: &str| match k {
            "POD_NAME" => Some("forge-7d9f".to_string()),
            "POD_NAMESPACE" => Some("payments".to_string()),
            _ => None,
        };
        let config = EvidenceConfig::default();
        let id = config.identity(env);
        assert_eq!(
            (id.name.as_str(), id.namespace.as_deref(), id.node.as_deref()),
            ("forge-7d9f", Some("payments"), None)
        );
        let named = EvidenceConfig {
            gateway: IdentityConfig { name: Some("edge".into()), ..Default::default() },
            ..Default::default()
        };
        assert_eq!(named.identity(env).name, "edge");
    }

    #[test]
    fn yaml_reads_every_knob_and_problems_name_the_field() {
        let c: EvidenceConfig = serde_yaml_ng::from_str(
            "fsync: interval\nfsync_interval: 200ms\ncheckpoint_interval: 5s\nrotate: {max_bytes: 1MiB, max_age: 1h}\n\
             retention: {max_age: 720h, max_segments: 10}\nqueue_wait: 20ms\nwhen_full: drop\nsse_meta: false\nstream: stdout\nqueue: 0\n",
        )
        .unwrap();
        assert_eq!(
            (c.fsync, c.fsync_interval, c.when_full),
            (Fsync::Interval, Duration::from_millis(200), WhenFull::Drop)
        );
        assert_eq!((c.rotate.max_bytes, c.retention.max_segments), (1 << 20, Some(10)));
        assert_eq!(c.retention.max_age, Some(Duration::from_secs(720 * 3600)));
        assert!(!c.sse_meta);
        assert_eq!(c.queue_wait, Duration::from_millis(20));
        assert_eq!(c.problems(), vec![("evidence.queue", "must be at least 1".to_string())]);
        assert!(serde_yaml_ng::from_str::<EvidenceConfig>("fsync: sometimes").is_err());
    }
}
