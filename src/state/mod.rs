//! Shared state: approvals, tool pins, rate-limit counters and revocations.
//!
//! One replica keeps them in an embedded, crash-safe database under its state dir
//! ([`embedded`], the default). Several replicas share them through Redis ([`redis`]):
//! state in hashes and sorted sets, change events on a Redis Stream read through one
//! consumer group per replica, so every replica applies every approval decision and
//! revocation exactly once, across its own restarts too.
//!
//! Security checks fail closed: when the store cannot answer, no approval is granted or
//! matched. Rate limits are the exception — they fall back to local counters (see
//! [`crate::ratelimit`]) because refusing all traffic would be worse than counting alone.

pub mod config;
pub mod embedded;
pub mod redis;
pub mod revocations;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

pub use config::{StateBackend, StateConfig};

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or failed; callers fail closed.
    #[error("the state store is unavailable: {0}")]
    Unavailable(String),
    #[error("no approval request {0}")]
    NotFound(String),
    /// The approval is no longer pending (already decided, used or expired).
    #[error("approval {id} is {status}, not pending")]
    NotPending { id: String, status: ApprovalStatus },
    #[error("stored state is corrupt: {0}")]
    Corrupt(String),
}

/// Where an approval request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    /// Approved, and the call it approved has been forwarded: it cannot match again.
    Used,
    /// Not decided (or not used) before its expiry.
    Expired,
}

impl std::fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Used => "used",
            ApprovalStatus::Expired => "expired",
        };
        f.write_str(s)
    }
}

/// What was asked: set once, when the call first needed approval. Everything an approver
/// sees; the arguments are already masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: String,
    /// SHA-256 over caller, tool, argument digest and bundle revision: what a retry must match.
    pub binding: String,
    pub caller: String,
    pub tool: String,
    /// SHA-256 (hex) of the RFC 8785 canonical form of the call's arguments.
    pub arguments_sha256: String,
    pub arguments_masked: Value,
    pub bundle_revision: String,
    /// The policy's reason for asking.
    pub reason: String,
    pub findings: Value,
    pub created_at_ms: u64,
}

/// What has happened to it since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalState {
    pub status: ApprovalStatus,
    /// Until then a pending request may be decided, and an approved one used.
    pub expires_at_ms: u64,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub decided_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub request: ApprovalRequest,
    pub state: ApprovalState,
}

impl Approval {
    /// The status as of `now`: a pending or approved record past its expiry is expired.
    pub fn status_at(&self, now_ms: u64) -> ApprovalStatus {
        match self.state.status {
            ApprovalStatus::Pending | ApprovalStatus::Approved if now_ms >= self.state.expires_at_ms => {
                ApprovalStatus::Expired
            }
            status => status,
        }
    }

    /// Nothing can happen to it any more.
    pub fn is_final(&self, now_ms: u64) -> bool {
        !self.answers_retries(now_ms) && self.status_at(now_ms) != ApprovalStatus::Pending
    }

    /// Whether a new call with the same binding is answered by this record: while it waits,
    /// while its approval is unused, and, so a denial is not simply asked again, while a
    /// denied request would still have been waiting.
    pub fn answers_retries(&self, now_ms: u64) -> bool {
        let open =
            matches!(self.state.status, ApprovalStatus::Pending | ApprovalStatus::Approved | ApprovalStatus::Denied);
        open && now_ms < self.state.expires_at_ms
    }
}

/// An approver's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ruling {
    pub approve: bool,
    pub approver: String,
    pub comment: String,
    /// How long an approval stays usable once given.
    #[serde(skip)]
    pub valid_for: Duration,
}

/// A change every replica must apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateEvent {
    /// An approval was granted or denied: calls held for it can go on.
    ApprovalDecided { id: String },
    /// A credential or subject was revoked.
    Revoked { subject: String },
    /// A tool definition was pinned for the first time.
    Pinned { key: String, digest: String },
}

/// GCRA parameters: `limit` calls per `period`, all of which may come in one burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    pub limit: u64,
    pub period_ms: u64,
}

/// What the limiter said about one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateOutcome {
    Allowed,
    /// Over the limit; the next call can succeed after this long.
    Limited {
        retry_after_ms: u64,
    },
}

/// Whether the backend can currently be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub backend: &'static str,
    pub up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The operations every backend provides. Each write is atomic on its own.
pub trait StateStore: Send + Sync {
    /// The live approval with `request.binding`, or `request` stored as a new pending one
    /// that expires at `expires_at_ms`.
    fn request_approval(&self, request: ApprovalRequest, expires_at_ms: u64) -> BoxFuture<'_, StoreResult<Approval>>;
    fn approval<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<Option<Approval>>>;
    /// Every approval still stored, newest first.
    fn approvals(&self) -> BoxFuture<'_, StoreResult<Vec<Approval>>>;
    /// Approves or denies a pending, unexpired request and announces it to every replica.
    fn decide<'a>(&'a self, id: &'a str, ruling: Ruling, now_ms: u64) -> BoxFuture<'a, StoreResult<Approval>>;
    /// Marks an approved, unexpired approval used. `true` exactly once per approval.
    fn consume<'a>(&'a self, id: &'a str, now_ms: u64) -> BoxFuture<'a, StoreResult<bool>>;
    /// Records a request or approval as expired; `true` if this call changed it.
    fn expire<'a>(&'a self, id: &'a str, now_ms: u64) -> BoxFuture<'a, StoreResult<bool>>;
    /// Deletes approvals created before `created_before_ms` that can no longer change (denied,
    /// used, expired); returns how many.
    fn prune(&self, created_before_ms: u64, now_ms: u64) -> BoxFuture<'_, StoreResult<usize>>;
    /// Every tool pin: key → digest.
    fn pins(&self) -> BoxFuture<'_, StoreResult<Vec<(String, String)>>>;
    /// Pins `key` to `digest` unless it is pinned already, and announces a new pin to every
    /// replica; returns the pin in force (the first one wins).
    fn pin_first<'a>(&'a self, key: &'a str, digest: &'a str) -> BoxFuture<'a, StoreResult<String>>;
    fn revoke<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, StoreResult<()>>;
    /// Every revoked subject.
    fn revocations(&self) -> BoxFuture<'_, StoreResult<Vec<String>>>;
    /// One GCRA step for `key`.
    fn rate_limit<'a>(&'a self, key: &'a str, rate: Rate) -> BoxFuture<'a, StoreResult<RateOutcome>>;
    /// Events from every replica (this one included), each delivered once.
    fn events(&self) -> broadcast::Receiver<StateEvent>;
    fn health(&self) -> Health;
    /// The backend's own metrics.
    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        Vec::new()
    }
}

/// Opens the configured backend.
pub async fn open(config: &StateConfig, state_dir: &std::path::Path) -> anyhow::Result<Arc<dyn StateStore>> {
    use anyhow::Context;
    Ok(match config.backend {
        StateBackend::Embedded => {
            let path = config.path.clone().unwrap_or_else(|| state_dir.join("state.redb"));
            let store = embedded::EmbeddedStore::open(&path)
                .with_context(|| format!("opening the embedded state store {}", path.display()))?;
            Arc::new(store)
        }
        StateBackend::Redis => Arc::new(redis::RedisStore::connect(&config.redis, state_dir).await?),
    })
}

/// `forge_state_store_up{backend}`: 1 while the store answers, read at each scrape.
struct HealthGauge {
    store: Arc<dyn StateStore>,
    gauge: prometheus::IntGaugeVec,
}

impl prometheus::core::Collector for HealthGauge {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let health = self.store.health();
        self.gauge.with_label_values(&[health.backend]).set(i64::from(health.up));
        self.gauge.collect()
    }
}

pub fn register_health(store: Arc<dyn StateStore>, registry: &prometheus::Registry) -> prometheus::Result<()> {
    let gauge = prometheus::IntGaugeVec::new(
        prometheus::Opts::new("forge_state_store_up", "Whether the state store answers (1) or not (0), by backend"),
        &["backend"],
    )?;
    for collector in store.collectors() {
        registry.register(collector)?;
    }
    registry.register(Box::new(HealthGauge { store, gauge }))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The events channel a backend publishes applied changes on.
fn event_channel() -> broadcast::Sender<StateEvent> {
    broadcast::channel(1024).0
}
