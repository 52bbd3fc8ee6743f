//! The shared store: Redis. Every change that must be atomic is one Lua script, so two
//! replicas deciding or using the same approval at once cannot both win.
//!
//! Keys (under `key_prefix`, default `forge`):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `forge:approval:<id>` | hash | `request` (JSON), `status`, `expires_at_ms`, `decided_by`, `comment`, `decided_at_ms` |
//! | `forge:approval-bindings` | hash | binding → newest approval id |
//! | `forge:approvals` | sorted set | approval ids by creation time |
//! | `forge:pins`, `forge:revocations` | hash | tool pins; revoked subjects → when |
//! | `forge:rate:<key>` | string | a GCRA arrival time (µs), expiring when at rest |
//! | `forge:events` | stream | `approval_decided`, `revoked` and `pinned` events |
//!
//! Each replica reads `forge:events` through its own consumer group (`forge:replica:<id>`)
//! under a stable consumer name, and acknowledges an event only after applying it: after a
//! crash it first re-reads what it had been given but not acknowledged, then continues
//! where its group left off. So each replica applies each event once, restarts included.
//!
//! Any error marks the store down (`/readyz`, `forge_state_store_up`); a probe every second
//! notices when Redis is back, and the connection manager reconnects by itself. With
//! Sentinel the probe also checks that the server is still the primary, and an error or a
//! demotion sends it to the sentinels for the new one ([`primary`]).

mod primary;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures_util::future::{BoxFuture, FutureExt};
use redis::aio::ConnectionManager;
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, Script};
use tokio::sync::broadcast;

use super::config::{RedisConfig, DEFAULT_URL};
use super::{
    event_channel, Approval, ApprovalRequest, ApprovalState, ApprovalStatus, Health, Rate, RateOutcome, Ruling,
    StateEvent, StateStore, StoreError, StoreResult,
};
use primary::{Discovery, Primary};

/// How long one blocking read of the event stream waits before looping.
const EVENT_BLOCK_MS: usize = 1000;

const REQUEST_SCRIPT: &str = r#"
local existing = redis.call('HGET', KEYS[1], ARGV[2])
if existing then
  local st = redis.call('HMGET', ARGV[1] .. ':approval:' .. existing, 'status', 'expires_at_ms')
  if (st[1] == 'pending' or st[1] == 'approved' or st[1] == 'denied') and tonumber(st[2]) > tonumber(ARGV[5]) then
    return existing
  end
end
redis.call('HSET', ARGV[1] .. ':approval:' .. ARGV[3], 'request', ARGV[4], 'status', 'pending', 'expires_at_ms', ARGV[6])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[3])
return ARGV[3]
"#;

/// Returns `ok`, or the status that prevented the decision.
const DECIDE_SCRIPT: &str = r#"
local st = redis.call('HMGET', KEYS[1], 'status', 'expires_at_ms')
if not st[1] then return 'not_found' end
if (st[1] == 'pending' or st[1] == 'approved') and tonumber(st[2]) <= tonumber(ARGV[2]) then return 'expired' end
if st[1] ~= 'pending' then return st[1] end
local expires = ARGV[3]
if ARGV[1] == 'denied' then expires = st[2] end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'expires_at_ms', expires, 'decided_by', ARGV[4], 'comment', ARGV[5], 'decided_at_ms', ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'kind', 'approval_decided', 'id', ARGV[7])
return 'ok'
"#;

/// Moves `from` → `to` if the record is in `from` and (un)expired as `ARGV[3]` says.
const TRANSITION_SCRIPT: &str = r#"
local st = redis.call('HMGET', KEYS[1], 'status', 'expires_at_ms')
if not st[1] then return 0 end
local expired = tonumber(st[2]) <= tonumber(ARGV[4])
local wanted = ARGV[3] == 'expired'
if string.find(ARGV[1], st[1], 1, true) and expired == wanted then
  redis.call('HSET', KEYS[1], 'status', ARGV[2])
  return 1
end
return 0
"#;

/// The first pin of a tool wins; a new one is announced. Returns the pin in force.
const PIN_SCRIPT: &str = r#"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'kind', 'pinned', 'key', ARGV[1], 'digest', ARGV[2])
  return ARGV[2]
end
return redis.call('HGET', KEYS[1], ARGV[1])
"#;

/// GCRA with Redis's own clock, so replicas agree on time. Returns -1 when allowed, else
/// the microseconds until a call would be.
const GCRA_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = math.max(tonumber(ARGV[1]), 1)
local period = math.max(tonumber(ARGV[2]) * 1000, 1)
local interval = math.max(math.floor(period / limit), 1)
local tolerance = period - interval
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then return tat - now - tolerance end
local next = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.ceil((next - now) / 1000) + 1)
return -1
"#;

pub struct RedisStore {
    primary: Arc<Primary>,
    keys: Keys,
    stream_max_len: usize,
    events: broadcast::Sender<StateEvent>,
    health: Arc<Liveness>,
    scripts: Scripts,
    applied: prometheus::IntCounterVec,
}

struct Scripts {
    request: Script,
    decide: Script,
    transition: Script,
    gcra: Script,
    pin: Script,
}

#[derive(Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn approval(&self, id: &str) -> String {
        format!("{}:approval:{id}", self.prefix)
    }
    fn named(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }
}

/// Whether Redis answered the last command.
struct Liveness {
    up: AtomicBool,
    problem: Mutex<Option<String>>,
    /// Woken by every failure, so the probe looks (and with Sentinel, looks for the
    /// primary) at once rather than at its next tick.
    recheck: tokio::sync::Notify,
}

impl Liveness {
    fn observe<T>(&self, result: redis::RedisResult<T>) -> StoreResult<T> {
        match result {
            Ok(v) => {
                self.mark_up();
                Ok(v)
            }
            Err(e) => {
                let was_up = self.up.swap(false, Ordering::Relaxed);
                if was_up {
                    tracing::error!(error = %e, "Redis state store unavailable: approvals fail closed, rate limits count locally");
                }
                *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                self.recheck.notify_one();
                Err(StoreError::Unavailable(e.to_string()))
            }
        }
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            tracing::info!("Redis state store reachable");
            *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}

impl RedisStore {
    /// Connects lazily: a gateway starts, degraded, even while Redis is down.
    pub async fn connect(config: &RedisConfig, state_dir: &Path) -> anyhow::Result<RedisStore> {
        let (primary, discovery) = Primary::connect(config, Duration::from_millis(EVENT_BLOCK_MS as u64))?;
        let replica = replica_id(config, state_dir)?;
        let keys = Keys { prefix: config.key_prefix.clone() };
        let health = Arc::new(Liveness {
            up: AtomicBool::new(false),
            problem: Mutex::new(Some("not connected yet".into())),
            recheck: tokio::sync::Notify::new(),
        });
        let events = event_channel();
        let applied = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "forge_state_events_total",
                "Events from the shared stream applied by this replica, by kind",
            ),
            &["kind"],
        )?;
        let store = RedisStore {
            applied: applied.clone(),
            primary: primary.clone(),
            keys: keys.clone(),
            stream_max_len: config.stream_max_len,
            events: events.clone(),
            health: health.clone(),
            scripts: Scripts {
                request: Script::new(REQUEST_SCRIPT),
                decide: Script::new(DECIDE_SCRIPT),
                transition: Script::new(TRANSITION_SCRIPT),
                gcra: Script::new(GCRA_SCRIPT),
                pin: Script::new(PIN_SCRIPT),
            },
        };
        tokio::spawn(probe(primary.clone(), discovery, health.clone()));
        tokio::spawn(follow_events(primary, keys, replica.clone(), events, health, applied));
        match &config.sentinel {
            Some(s) => {
                tracing::info!(master = %s.master_name, sentinels = ?s.urls, replica = %replica, "state store: Redis through Sentinel")
            }
            None => {
                let url = redacted(config.url.as_deref().unwrap_or(DEFAULT_URL));
                tracing::info!(url = %url, replica = %replica, "state store: Redis");
            }
        }
        Ok(store)
    }

    /// The connection for commands to the current server.
    fn conn(&self) -> StoreResult<ConnectionManager> {
        match self.primary.current() {
            Some(link) => Ok(link.commands.clone()),
            // Only an answer from Redis marks the store up, so only the failure is observed.
            None => self.health.observe(Err(primary::no_primary("Sentinel has not named a primary yet"))),
        }
    }

    async fn load(&self, id: &str) -> StoreResult<Option<Approval>> {
        let mut conn = self.conn()?;
        let fields: HashMap<String, String> = self.health.observe(conn.hgetall(self.keys.approval(id)).await)?;
        if fields.is_empty() {
            return Ok(None);
        }
        from_fields(&fields).map(Some)
    }

    async fn transition(&self, id: &str, from: &str, to: ApprovalStatus, now_ms: u64) -> StoreResult<bool> {
        let mut conn = self.conn()?;
        let changed: i64 = self.health.observe(
            self.scripts
                .transition
                .key(self.keys.approval(id))
                .arg(from)
                .arg(to.to_string())
                .arg(if to == ApprovalStatus::Expired { "expired" } else { "live" })
                .arg(now_ms)
                .invoke_async(&mut conn)
                .await,
        )?;
        Ok(changed == 1)
    }
}

/// The URL for logs: without a password.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &url[..scheme + 3], &url[at..]),
        _ => url.to_string(),
    }
}

/// The configured replica id, or one generated once and kept in the state dir.
fn replica_id(config: &RedisConfig, state_dir: &Path) -> anyhow::Result<String> {
    if let Some(id) = &config.replica_id {
        return Ok(id.clone());
    }
    let path = state_dir.join("replica-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        if !id.trim().is_empty() {
            return Ok(id.trim().to_string());
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    std::fs::create_dir_all(state_dir).with_context(|| format!("creating {}", state_dir.display()))?;
    std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

fn from_fields(fields: &HashMap<String, String>) -> StoreResult<Approval> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("approval hash: {what}"));
    let request: ApprovalRequest = serde_json::from_str(fields.get("request").ok_or_else(|| corrupt("no request"))?)
        .map_err(|e| corrupt(&e.to_string()))?;
    let status = fields.get("status").ok_or_else(|| corrupt("no status"))?;
    let status: ApprovalStatus =
        serde_json::from_value(serde_json::Value::String(status.clone())).map_err(|e| corrupt(&e.to_string()))?;
    let number = |name: &str| fields.get(name).and_then(|v| v.parse::<u64>().ok());
    Ok(Approval {
        request,
        state: ApprovalState {
            status,
            expires_at_ms: number("expires_at_ms").ok_or_else(|| corrupt("no expiry"))?,
            decided_by: fields.get("decided_by").cloned(),
            comment: fields.get("comment").cloned(),
            decided_at_ms: number("decided_at_ms"),
        },
    })
}

impl StateStore for RedisStore {
    fn request_approval(&self, request: ApprovalRequest, expires_at_ms: u64) -> BoxFuture<'_, StoreResult<Approval>> {
        async move {
            let mut conn = self.conn()?;
            let json = serde_json::to_string(&request).expect("requests serialize");
            let id: String = self.health.observe(
                self.scripts
                    .request
                    .key(self.keys.named("approval-bindings"))
                    .key(self.keys.named("approvals"))
                    .arg(&self.keys.prefix)
                    .arg(&request.binding)
                    .arg(&request.id)
                    .arg(json)
                    .arg(request.created_at_ms)
                    .arg(expires_at_ms)
                    .invoke_async(&mut conn)
                    .await,
            )?;
            self.load(&id).await?.ok_or(StoreError::NotFound(id))
        }
        .boxed()
    }

    fn approval<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<Option<Approval>>> {
        self.load(id).boxed()
    }

    fn approvals(&self) -> BoxFuture<'_, StoreResult<Vec<Approval>>> {
        async move {
            let mut conn = self.conn()?;
            let ids: Vec<String> = self.health.observe(conn.zrevrange(self.keys.named("approvals"), 0, 999).await)?;
            let mut all = Vec::with_capacity(ids.len());
            for id in ids {
                all.extend(self.load(&id).await?);
            }
            Ok(all)
        }
        .boxed()
    }

    fn decide<'a>(&'a self, id: &'a str, ruling: Ruling, now_ms: u64) -> BoxFuture<'a, StoreResult<Approval>> {
        async move {
            let mut conn = self.conn()?;
            let status = if ruling.approve { ApprovalStatus::Approved } else { ApprovalStatus::Denied };
            let outcome: String = self.health.observe(
                self.scripts
                    .decide
                    .key(self.keys.approval(id))
                    .key(self.keys.named("events"))
                    .arg(status.to_string())
                    .arg(now_ms)
                    .arg(now_ms + ruling.valid_for.as_millis() as u64)
                    .arg(&ruling.approver)
                    .arg(&ruling.comment)
                    .arg(self.stream_max_len)
                    .arg(id)
                    .invoke_async(&mut conn)
                    .await,
            )?;
            match outcome.as_str() {
                "ok" => {}
                "not_found" => return Err(StoreError::NotFound(id.to_string())),
                other => {
                    let status = serde_json::from_value(serde_json::Value::String(other.to_string()))
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    return Err(StoreError::NotPending { id: id.to_string(), status });
                }
            }
            self.load(id).await?.ok_or_else(|| StoreError::NotFound(id.to_string()))
        }
        .boxed()
    }

    fn consume<'a>(&'a self, id: &'a str, now_ms: u64) -> BoxFuture<'a, StoreResult<bool>> {
        self.transition(id, "approved", ApprovalStatus::Used, now_ms).boxed()
    }

    fn expire<'a>(&'a self, id: &'a str, now_ms: u64) -> BoxFuture<'a, StoreResult<bool>> {
        self.transition(id, "pending approved", ApprovalStatus::Expired, now_ms).boxed()
    }

    fn prune(&self, created_before_ms: u64, now_ms: u64) -> BoxFuture<'_, StoreResult<usize>> {
        async move {
            let mut conn = self.conn()?;
            let index = self.keys.named("approvals");
            let ids: Vec<String> = self
                .health
                .observe(conn.zrangebyscore_limit(&index, 0, created_before_ms.saturating_sub(1), 0, 1000).await)?;
            let mut pruned = 0;
            for id in ids {
                let Some(approval) = self.load(&id).await? else { continue };
                if !approval.is_final(now_ms) {
                    continue;
                }
                let mut pipe = redis::pipe();
                pipe.atomic().del(self.keys.approval(&id)).ignore().zrem(&index, &id).ignore();
                let bindings = self.keys.named("approval-bindings");
                let current: Option<String> =
                    self.health.observe(conn.hget(&bindings, &approval.request.binding).await)?;
                if current.as_deref() == Some(id.as_str()) {
                    pipe.hdel(&bindings, &approval.request.binding).ignore();
                }
                self.health.observe(pipe.query_async::<()>(&mut conn).await)?;
                pruned += 1;
            }
            Ok(pruned)
        }
        .boxed()
    }

    fn pins(&self) -> BoxFuture<'_, StoreResult<Vec<(String, String)>>> {
        async move {
            let mut conn = self.conn()?;
            let all: HashMap<String, String> = self.health.observe(conn.hgetall(self.keys.named("pins")).await)?;
            Ok(all.into_iter().collect())
        }
        .boxed()
    }

    fn pin_first<'a>(&'a self, key: &'a str, digest: &'a str) -> BoxFuture<'a, StoreResult<String>> {
        async move {
            let mut conn = self.conn()?;
            self.health.observe(
                self.scripts
                    .pin
                    .key(self.keys.named("pins"))
                    .key(self.keys.named("events"))
                    .arg(key)
                    .arg(digest)
                    .arg(self.stream_max_len)
                    .invoke_async(&mut conn)
                    .await,
            )
        }
        .boxed()
    }

    fn revoke<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        async move {
            let mut conn = self.conn()?;
            let mut pipe = redis::pipe();
            pipe.atomic()
                .hset(self.keys.named("revocations"), subject, super::now_ms())
                .ignore()
                .cmd("XADD")
                .arg(self.keys.named("events"))
                .arg("MAXLEN")
                .arg("~")
                .arg(self.stream_max_len)
                .arg("*")
                .arg("kind")
                .arg("revoked")
                .arg("subject")
                .arg(subject)
                .ignore();
            self.health.observe(pipe.query_async(&mut conn).await)
        }
        .boxed()
    }

    fn revocations(&self) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        async move {
            let mut conn = self.conn()?;
            self.health.observe(conn.hkeys(self.keys.named("revocations")).await)
        }
        .boxed()
    }

    fn rate_limit<'a>(&'a self, key: &'a str, rate: Rate) -> BoxFuture<'a, StoreResult<RateOutcome>> {
        async move {
            let mut conn = self.conn()?;
            let wait_us: i64 = self.health.observe(
                self.scripts
                    .gcra
                    .key(self.keys.named(&format!("rate:{key}")))
                    .arg(rate.limit)
                    .arg(rate.period_ms)
                    .invoke_async(&mut conn)
                    .await,
            )?;
            Ok(match wait_us {
                w if w < 0 => RateOutcome::Allowed,
                w => RateOutcome::Limited { retry_after_ms: (w as u64).div_ceil(1000) },
            })
        }
        .boxed()
    }

    fn events(&self) -> broadcast::Receiver<StateEvent> {
        self.events.subscribe()
    }

    fn health(&self) -> Health {
        let up = self.health.up.load(Ordering::Relaxed);
        let problem = if up { None } else { self.health.problem.lock().unwrap_or_else(|e| e.into_inner()).clone() };
        Health { backend: "redis", up, problem }
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![Box::new(self.applied.clone())]
    }
}

/// Looks at the server once a second (and right after any failure), so the store's state is
/// known even without traffic. With Sentinel the server must still be the primary, and when
/// it is not, or cannot be reached, the sentinels are asked for the one that is.
async fn probe(primary: Arc<Primary>, mut discovery: Discovery, health: Arc<Liveness>) {
    loop {
        let checked = match primary.current() {
            None => Err(primary::no_primary("Sentinel has not named a primary yet")),
            Some(link) => check(&link.commands, &discovery).await,
        };
        if health.observe(checked).is_err() {
            if let Discovery::Sentinel(sentinel) = &mut discovery {
                let _ = health.observe(primary.rediscover(sentinel).await);
            }
        }
        // A floor between looks, so a lasting outage does not become a busy loop.
        tokio::time::sleep(Duration::from_millis(200)).await;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(800)) => {}
            _ = health.recheck.notified() => {}
        }
    }
}

/// `PING`, or with Sentinel `ROLE`, which must say primary (a demoted one still answers).
async fn check(conn: &ConnectionManager, discovery: &Discovery) -> redis::RedisResult<()> {
    let mut conn = conn.clone();
    match discovery {
        Discovery::Fixed => redis::cmd("PING").query_async::<String>(&mut conn).await.map(drop),
        Discovery::Sentinel(_) => match redis::cmd("ROLE").query_async::<redis::Role>(&mut conn).await? {
            redis::Role::Primary { .. } => Ok(()),
            _ => Err(primary::no_primary("the server Sentinel named is no longer the primary")),
        },
    }
}

/// Reads the event stream for this replica and republishes each event locally, forever.
async fn follow_events(
    primary: Arc<Primary>,
    keys: Keys,
    replica: String,
    events: broadcast::Sender<StateEvent>,
    health: Arc<Liveness>,
    applied: prometheus::IntCounterVec,
) {
    let stream = keys.named("events");
    let group = keys.named(&format!("replica:{replica}"));
    // Entries handed to this consumer before a crash but never acknowledged come first.
    let mut backlog = true;
    loop {
        // The reader of the current server: after a failover, of the new primary.
        let Some(mut conn) = primary.current().map(|link| link.reader.clone()) else {
            let _ = health.observe(Err::<(), _>(primary::no_primary("Sentinel has not named a primary yet")));
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let created: redis::RedisResult<()> = conn.xgroup_create_mkstream(&stream, &group, "$").await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => {
                let _ = health.observe(Err::<(), _>(e));
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            _ => {}
        }
        loop {
            let options = StreamReadOptions::default().group(&group, &replica).count(100);
            let (options, from) = if backlog { (options, "0") } else { (options.block(EVENT_BLOCK_MS), ">") };
            let read: redis::RedisResult<Option<StreamReadReply>> =
                conn.xread_options(&[&stream], &[from], &options).await;
            let reply = match read {
                Ok(reply) => reply,
                Err(e) => {
                    let _ = health.observe(Err::<(), _>(e));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    // Start over: on the current server (another one after a failover), with
                    // the group made again if Redis lost it (restarted without persistence),
                    // and what was delivered but not acknowledged read first.
                    backlog = true;
                    break;
                }
            };
            let entries: Vec<_> = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
            if backlog && entries.is_empty() {
                backlog = false;
                continue;
            }
            for entry in entries {
                if let Some(event) = parse_event(&entry.map) {
                    // Applying is publishing to this process's waiters; then it is done.
                    let kind = match &event {
                        StateEvent::ApprovalDecided { .. } => "approval_decided",
                        StateEvent::Revoked { .. } => "revoked",
                        StateEvent::Pinned { .. } => "pinned",
                    };
                    applied.with_label_values(&[kind]).inc();
                    let _ = events.send(event);
                }
                let acked: redis::RedisResult<i64> = conn.xack(&stream, &group, &[&entry.id]).await;
                if health.observe(acked).is_err() {
                    // Unacknowledged: it comes back from the backlog once Redis is.
                    backlog = true;
                    break;
                }
            }
        }
    }
}

fn parse_event(fields: &HashMap<String, redis::Value>) -> Option<StateEvent> {
    let text = |name: &str| match fields.get(name)? {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    match text("kind")?.as_str() {
        "approval_decided" => Some(StateEvent::ApprovalDecided { id: text("id")? }),
        "revoked" => Some(StateEvent::Revoked { subject: text("subject")? }),
        "pinned" => Some(StateEvent::Pinned { key: text("key")?, digest: text("digest")? }),
        other => {
            tracing::warn!(kind = other, "ignored an unknown state event");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_urls_hide_the_password() {
        assert_eq!(redacted("redis://:s3cret@127.0.0.1:6379"), "redis://***@127.0.0.1:6379");
        assert_eq!(redacted("rediss://u:p@h:1/0"), "rediss://***@h:1/0");
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
