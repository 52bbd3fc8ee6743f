//! The single-replica store: a redb database under the state dir. Every write is one
//! fsynced transaction, so a `kill -9` loses nothing that was acknowledged. Rate-limit
//! counters stay in memory: they are worth nothing after a restart and would cost a disk
//! write per call.

use std::path::Path;
use std::sync::Arc;

use futures_util::future::{BoxFuture, FutureExt};
use redb::{Database, ReadableTable, TableDefinition};
use tokio::sync::broadcast;

use super::{
    event_channel, Approval, ApprovalRequest, ApprovalState, ApprovalStatus, Health, Rate, RateOutcome, Ruling,
    StateEvent, StateStore, StoreError, StoreResult,
};
use crate::ratelimit::LocalGcra;

/// Approval id → the JSON of [`Approval`].
const APPROVALS: TableDefinition<&str, &[u8]> = TableDefinition::new("approvals");
/// Binding → approval id of the newest request with that binding.
const BINDINGS: TableDefinition<&str, &str> = TableDefinition::new("approval_bindings");
const PINS: TableDefinition<&str, &str> = TableDefinition::new("pins");
/// Revoked subject → when (ms since the epoch).
const REVOCATIONS: TableDefinition<&str, u64> = TableDefinition::new("revocations");

pub struct EmbeddedStore {
    db: Arc<Database>,
    limiter: LocalGcra,
    events: broadcast::Sender<StateEvent>,
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

macro_rules! redb_errors {
    ($($t:ty),*) => { $(impl From<$t> for StoreError { fn from(e: $t) -> Self { StoreError::from(redb::Error::from(e)) } })* };
}
redb_errors!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

impl EmbeddedStore {
    pub fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        // redb checks and repairs the file after an unclean shutdown here.
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(APPROVALS)?;
        txn.open_table(BINDINGS)?;
        txn.open_table(PINS)?;
        txn.open_table(REVOCATIONS)?;
        txn.commit()?;
        Ok(EmbeddedStore { db: Arc::new(db), limiter: LocalGcra::default(), events: event_channel() })
    }

    /// Runs blocking database work off the async threads.
    fn blocking<T, F>(&self, work: F) -> BoxFuture<'static, StoreResult<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    {
        let db = self.db.clone();
        async move {
            tokio::task::spawn_blocking(move || work(&db))
                .await
                .map_err(|e| StoreError::Unavailable(format!("state store task failed: {e}")))?
        }
        .boxed()
    }

    /// Reads, changes and writes back one approval in a single transaction.
    fn update<F>(&self, id: &str, change: F) -> BoxFuture<'static, StoreResult<(Approval, bool)>>
    where
        F: FnOnce(&mut Approval) -> StoreResult<bool> + Send + 'static,
    {
        let id = id.to_string();
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            let outcome = {
                let mut table = txn.open_table(APPROVALS)?;
                let mut approval = match table.get(id.as_str())? {
                    Some(bytes) => decode(bytes.value())?,
                    None => return Err(StoreError::NotFound(id)),
                };
                let changed = change(&mut approval)?;
                if changed {
                    table.insert(id.as_str(), encode(&approval).as_slice())?;
                }
                (approval, changed)
            };
            txn.commit()?;
            Ok(outcome)
        })
    }
}

fn encode(approval: &Approval) -> Vec<u8> {
    serde_json::to_vec(approval).expect("approvals serialize")
}

fn decode(bytes: &[u8]) -> StoreResult<Approval> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("approval record: {e}")))
}

/// The record that answers `request`'s binding now, if one does.
fn current_for(db: &Database, request: &ApprovalRequest) -> StoreResult<Option<Approval>> {
    let txn = db.begin_read()?;
    let Some(id) = txn.open_table(BINDINGS)?.get(request.binding.as_str())?.map(|id| id.value().to_string()) else {
        return Ok(None);
    };
    let found = txn.open_table(APPROVALS)?.get(id.as_str())?.map(|b| decode(b.value())).transpose()?;
    Ok(found.filter(|a| a.answers_retries(request.created_at_ms)))
}

/// The decision rules every backend applies (the Redis store in Lua, the same way).
pub(super) fn apply_verdict(approval: &mut Approval, ruling: &Ruling, now_ms: u64) -> StoreResult<()> {
    let status = approval.status_at(now_ms);
    if status != ApprovalStatus::Pending {
        return Err(StoreError::NotPending { id: approval.request.id.clone(), status });
    }
    approval.state = ApprovalState {
        status: if ruling.approve { ApprovalStatus::Approved } else { ApprovalStatus::Denied },
        expires_at_ms: if ruling.approve {
            now_ms + ruling.valid_for.as_millis() as u64
        } else {
            approval.state.expires_at_ms
        },
        decided_by: Some(ruling.approver.clone()),
        comment: Some(ruling.comment.clone()),
        decided_at_ms: Some(now_ms),
    };
    Ok(())
}

impl StateStore for EmbeddedStore {
    fn request_approval(&self, request: ApprovalRequest, expires_at_ms: u64) -> BoxFuture<'_, StoreResult<Approval>> {
        self.blocking(move |db| {
            // Most checks find the request already open: a read, without a write's fsync.
            if let Some(current) = current_for(db, &request)? {
                return Ok(current);
            }
            let txn = db.begin_write()?;
            let approval = {
                let mut approvals = txn.open_table(APPROVALS)?;
                let mut bindings = txn.open_table(BINDINGS)?;
                let existing = match bindings.get(request.binding.as_str())? {
                    Some(id) => approvals.get(id.value())?.map(|b| decode(b.value())).transpose()?,
                    None => None,
                };
                match existing {
                    Some(current) if current.answers_retries(request.created_at_ms) => current,
                    _ => {
                        let fresh = Approval {
                            state: ApprovalState {
                                status: ApprovalStatus::Pending,
                                expires_at_ms,
                                decided_by: None,
                                comment: None,
                                decided_at_ms: None,
                            },
                            request,
                        };
                        approvals.insert(fresh.request.id.as_str(), encode(&fresh).as_slice())?;
                        bindings.insert(fresh.request.binding.as_str(), fresh.request.id.as_str())?;
                        fresh
                    }
                }
            };
            txn.commit()?;
            Ok(approval)
        })
    }

    fn approval<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<Option<Approval>>> {
        let id = id.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(APPROVALS)?;
            let found = table.get(id.as_str())?;
            found.map(|b| decode(b.value())).transpose()
        })
    }

    fn approvals(&self) -> BoxFuture<'_, StoreResult<Vec<Approval>>> {
        self.blocking(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(APPROVALS)?;
            let mut all = Vec::new();
            for entry in table.iter()? {
                let (_, value) = entry?;
                all.push(decode(value.value())?);
            }
            all.sort_by_key(|a| std::cmp::Reverse(a.request.created_at_ms));
            Ok(all)
        })
    }

    fn decide<'a>(&'a self, id: &'a str, ruling: Ruling, now_ms: u64) -> BoxFuture<'a, StoreResult<Approval>> {
        let events = self.events.clone();
        let update = self.update(id, move |approval| apply_verdict(approval, &ruling, now_ms).map(|()| true));
        async move {
            let (approval, _) = update.await?;
            let _ = events.send(StateEvent::ApprovalDecided { id: approval.request.id.clone() });
            Ok(approval)
        }
        .boxed()
    }

    fn consume<'a>(&'a self, id: &'a str, now_ms: u64) -> BoxFuture<'a, StoreResult<bool>> {
        let update = self.update(id, move |approval| {
            let usable = approval.status_at(now_ms) == ApprovalStatus::Approved;
            if usable {
                approval.state.status = ApprovalStatus::Used;
            }
            Ok(usable)
        });
        async move { Ok(update.await?.1) }.boxed()
    }

    fn expire<'a>(&'a self, id: &'a str, now_ms: u64) -> BoxFuture<'a, StoreResult<bool>> {
        let update = self.update(id, move |approval| {
            let lapsed = approval.status_at(now_ms) == ApprovalStatus::Expired
                && approval.state.status != ApprovalStatus::Expired;
            if lapsed {
                approval.state.status = ApprovalStatus::Expired;
            }
            Ok(lapsed)
        });
        async move { Ok(update.await?.1) }.boxed()
    }

    fn prune(&self, created_before_ms: u64, now_ms: u64) -> BoxFuture<'_, StoreResult<usize>> {
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            let pruned = {
                let mut approvals = txn.open_table(APPROVALS)?;
                let mut bindings = txn.open_table(BINDINGS)?;
                let mut old = Vec::new();
                for entry in approvals.iter()? {
                    let approval = decode(entry?.1.value())?;
                    if approval.request.created_at_ms < created_before_ms && approval.is_final(now_ms) {
                        old.push(approval.request);
                    }
                }
                for request in &old {
                    approvals.remove(request.id.as_str())?;
                    let current = bindings.get(request.binding.as_str())?.map(|id| id.value() == request.id);
                    if current == Some(true) {
                        bindings.remove(request.binding.as_str())?;
                    }
                }
                old.len()
            };
            txn.commit()?;
            Ok(pruned)
        })
    }

    fn pins(&self) -> BoxFuture<'_, StoreResult<Vec<(String, String)>>> {
        self.blocking(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(PINS)?;
            let mut all = Vec::new();
            for entry in table.iter()? {
                let (key, digest) = entry?;
                all.push((key.value().to_string(), digest.value().to_string()));
            }
            Ok(all)
        })
    }

    fn pin_first<'a>(&'a self, key: &'a str, digest: &'a str) -> BoxFuture<'a, StoreResult<String>> {
        let (key, digest) = (key.to_string(), digest.to_string());
        let events = self.events.clone();
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            let existing = txn.open_table(PINS)?.get(key.as_str())?.map(|d| d.value().to_string());
            if let Some(pinned) = existing {
                return Ok(pinned);
            }
            txn.open_table(PINS)?.insert(key.as_str(), digest.as_str())?;
            txn.commit()?;
            let _ = events.send(StateEvent::Pinned { key, digest: digest.clone() });
            Ok(digest)
        })
    }

    fn revoke<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        let subject = subject.to_string();
        let events = self.events.clone();
        let write = self.blocking({
            let subject = subject.clone();
            move |db| {
                let txn = db.begin_write()?;
                txn.open_table(REVOCATIONS)?.insert(subject.as_str(), super::now_ms())?;
                txn.commit()?;
                Ok(())
            }
        });
        async move {
            write.await?;
            let _ = events.send(StateEvent::Revoked { subject });
            Ok(())
        }
        .boxed()
    }

    fn revocations(&self) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        self.blocking(|db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(REVOCATIONS)?;
            let mut all = Vec::new();
            for entry in table.iter()? {
                all.push(entry?.0.value().to_string());
            }
            Ok(all)
        })
    }

    fn rate_limit<'a>(&'a self, key: &'a str, rate: Rate) -> BoxFuture<'a, StoreResult<RateOutcome>> {
        let outcome = self.limiter.check(key, rate);
        async move { Ok(outcome) }.boxed()
    }

    fn events(&self) -> broadcast::Receiver<StateEvent> {
        self.events.subscribe()
    }

    fn health(&self) -> Health {
        Health { backend: "embedded", up: true, problem: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    pub(crate) fn request(id: &str, binding: &str, now: u64) -> ApprovalRequest {
        ApprovalRequest {
            id: id.into(),
            binding: binding.into(),
            caller: "alice@https://idp".into(),
            tool: "delete_repo".into(),
            arguments_sha256: "00".into(),
            arguments_masked: serde_json::json!({"repo": "x"}),
            bundle_revision: "r1".into(),
            reason: "destructive".into(),
            findings: serde_json::json!([]),
            created_at_ms: now,
        }
    }

    fn ruling(approve: bool) -> Ruling {
        Ruling { approve, approver: "bob".into(), comment: "ok".into(), valid_for: Duration::from_secs(60) }
    }

    #[tokio::test]
    async fn an_approval_is_requested_once_decided_once_and_used_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        let mut events = store.events();
        let first = store.request_approval(request("a1", "b1", 1000), 10_000).await.unwrap();
        let again = store.request_approval(request("a2", "b1", 2000), 20_000).await.unwrap();
        assert_eq!(again.request.id, "a1", "the same binding finds the live request");
        assert_eq!(first.state.status, ApprovalStatus::Pending);
        assert!(!store.consume("a1", 3000).await.unwrap(), "a pending request releases nothing");

        let approved = store.decide("a1", ruling(true), 3000).await.unwrap();
        assert_eq!(approved.state.status, ApprovalStatus::Approved);
        assert_eq!(approved.state.expires_at_ms, 63_000);
        assert_eq!(events.recv().await.unwrap(), StateEvent::ApprovalDecided { id: "a1".into() });
        assert!(matches!(store.decide("a1", ruling(false), 3500).await, Err(StoreError::NotPending { .. })));

        assert!(store.consume("a1", 4000).await.unwrap());
        assert!(!store.consume("a1", 4001).await.unwrap(), "single use");
        let next = store.request_approval(request("a3", "b1", 5000), 50_000).await.unwrap();
        assert_eq!(next.request.id, "a3", "a used approval makes the next identical call ask again");
    }

    #[tokio::test]
    async fn expired_requests_cannot_be_decided_or_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        store.request_approval(request("a1", "b1", 0), 1000).await.unwrap();
        assert!(matches!(
            store.decide("a1", ruling(true), 1000).await,
            Err(StoreError::NotPending { status: ApprovalStatus::Expired, .. })
        ));
        assert!(store.expire("a1", 1000).await.unwrap());
        assert!(!store.expire("a1", 1001).await.unwrap(), "expired once");

        store.request_approval(request("a2", "b2", 0), 1000).await.unwrap();
        store.decide("a2", ruling(true), 500).await.unwrap();
        assert!(!store.consume("a2", 500 + 60_000).await.unwrap(), "an approval past its validity is not used");
        assert!(matches!(store.decide("missing", ruling(true), 0).await, Err(StoreError::NotFound(_))));
    }

    #[tokio::test]
    async fn pruning_removes_only_old_records_that_cannot_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        store.request_approval(request("done", "b1", 0), 1000).await.unwrap();
        store.decide("done", ruling(false), 10).await.unwrap();
        store.request_approval(request("waiting", "b2", 0), 1_000_000).await.unwrap();
        store.request_approval(request("recent", "b3", 5000), 6000).await.unwrap();
        assert_eq!(store.prune(4000, 7000).await.unwrap(), 1, "only the old, denied and lapsed one");
        assert!(store.approval("done").await.unwrap().is_none());
        assert!(store.approval("waiting").await.unwrap().is_some(), "still pending: kept");
        assert!(store.approval("recent").await.unwrap().is_some(), "expired but recent: kept");
        let again = store.request_approval(request("new", "b1", 8000), 9000).await.unwrap();
        assert_eq!(again.request.id, "new");
    }

    #[tokio::test]
    async fn state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let store = EmbeddedStore::open(&path).unwrap();
            store.request_approval(request("a1", "b1", 0), u64::MAX).await.unwrap();
            assert_eq!(store.pin_first("tool:x", "abc").await.unwrap(), "abc");
            assert_eq!(store.pin_first("tool:x", "def").await.unwrap(), "abc", "the first pin wins");
            store.revoke("jti:1").await.unwrap();
        }
        let store = EmbeddedStore::open(&path).unwrap();
        assert_eq!(store.approval("a1").await.unwrap().unwrap().request.tool, "delete_repo");
        assert_eq!(store.pins().await.unwrap(), [("tool:x".to_string(), "abc".to_string())]);
        assert_eq!(store.revocations().await.unwrap(), ["jti:1"]);
        assert_eq!(store.approvals().await.unwrap().len(), 1);
    }
}
