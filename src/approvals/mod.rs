//! Human approval of calls the policy marks `require_approval`.
//!
//! A call that needs approval does not reach the upstream. It becomes an approval request
//! bound to exactly that call — caller, tool, SHA-256 of its RFC 8785 canonical arguments,
//! policy bundle revision — and the caller is told it is pending, with the request's id and
//! page. An approver decides on the admin listener ([`admin`]: page, JSON API, and the
//! `forge approvals` CLI on top of it). The identical call, retried within the approval's
//! validity, matches it, uses it up and goes through; a changed argument, another caller or
//! another bundle revision is a different binding and asks again.
//!
//! Every request, decision, use and expiry goes through [`Approvals::record`]: a log line
//! (`forge::approvals` target), a count, and an evidence record of its own; the record of
//! the call itself names the approval it waited for or used ([`Approvals::note`]).

pub mod admin;
pub mod cli;
pub mod config;
mod mask;
mod page;

use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounterVec, Opts, Registry};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use config::ApprovalsConfig;

use crate::evidence::{ApprovalBinding, ApprovalNote, Evidence};
use crate::hex::hex;
use crate::state::{now_ms, Approval, ApprovalRequest, ApprovalStatus, Ruling, StateEvent, StateStore, StoreError};

/// One call that policy says needs approval.
pub struct Call<'a> {
    pub caller: String,
    pub tool: &'a str,
    pub arguments: &'a Value,
    pub bundle_revision: &'a str,
    pub reason: &'a str,
    /// What the request detectors found (fingerprints and pointers, never the matched text).
    pub findings: &'a [crate::policy::Finding],
}

/// What the gate says about a call.
#[derive(Debug)]
pub enum Gate {
    /// Approved: the approval was used up by this call, which may go on.
    Release(Approval),
    /// Waiting for an approver.
    Pending(Approval),
    /// An approver said no.
    Denied(Approval),
    /// The store cannot answer: the call does not go on.
    Unavailable(String),
}

/// Something an auditor must be able to see afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Requested,
    Approved,
    Denied,
    Used,
    Expired,
}

impl Event {
    fn label(self) -> &'static str {
        match self {
            Event::Requested => "requested",
            Event::Approved => "approved",
            Event::Denied => "denied",
            Event::Used => "used",
            Event::Expired => "expired",
        }
    }
}

pub struct Approvals {
    pub store: Arc<dyn StateStore>,
    pub config: ApprovalsConfig,
    /// Where the page is: `<base>/approvals/<id>`.
    page_base: String,
    events: IntCounterVec,
    evidence: Option<Arc<Evidence>>,
}

impl Approvals {
    pub fn new(
        store: Arc<dyn StateStore>,
        config: ApprovalsConfig,
        admin_url: &str,
        evidence: Option<Arc<Evidence>>,
    ) -> prometheus::Result<Self> {
        let page_base = config.page_url.clone().unwrap_or_else(|| admin_url.to_string());
        Ok(Approvals {
            store,
            config,
            page_base: page_base.trim_end_matches('/').to_string(),
            events: IntCounterVec::new(
                Opts::new("forge_approvals_total", "Approval requests and what became of them, by event"),
                &["event"],
            )?,
            evidence,
        })
    }

    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.events.clone()))
    }

    pub fn page_url(&self, id: &str) -> String {
        format!("{}/approvals/{id}", self.page_base)
    }

    /// Finds or opens the approval request for `call`, and uses it up if it was approved.
    pub async fn check(&self, call: &Call<'_>) -> Gate {
        match self.try_check(call).await {
            Ok(gate) => gate,
            Err(e) => {
                tracing::error!(error = %e, tool = call.tool, caller = %call.caller, "approval cannot be checked; the call is refused");
                Gate::Unavailable(e.to_string())
            }
        }
    }

    async fn try_check(&self, call: &Call<'_>) -> Result<Gate, StoreError> {
        let arguments_sha256 = arguments_digest(call.arguments);
        let binding = binding(&call.caller, call.tool, &arguments_sha256, call.bundle_revision);
        // Twice at most: once more if another replica used the approval between our reads.
        for _ in 0..2 {
            let now = now_ms();
            let candidate = ApprovalRequest {
                id: uuid::Uuid::new_v4().to_string(),
                binding: binding.clone(),
                caller: call.caller.clone(),
                tool: call.tool.to_string(),
                arguments_sha256: arguments_sha256.clone(),
                arguments_masked: mask::mask(call.arguments, call.findings),
                bundle_revision: call.bundle_revision.to_string(),
                reason: call.reason.to_string(),
                findings: serde_json::to_value(call.findings).expect("findings serialize"),
                created_at_ms: now,
            };
            let fresh_id = candidate.id.clone();
            let expires = now + self.config.pending_ttl.as_millis() as u64;
            let approval = self.store.request_approval(candidate, expires).await?;
            if approval.request.id == fresh_id {
                self.record(Event::Requested, &approval);
            }
            match approval.status_at(now) {
                ApprovalStatus::Pending => return Ok(Gate::Pending(approval)),
                ApprovalStatus::Denied => return Ok(Gate::Denied(approval)),
                ApprovalStatus::Approved => {
                    if self.store.consume(&approval.request.id, now_ms()).await? {
                        self.record(Event::Used, &approval);
                        return Ok(Gate::Release(approval));
                    }
                }
                ApprovalStatus::Used | ApprovalStatus::Expired => {}
            }
        }
        Err(StoreError::Unavailable("the approval changed while it was being checked".into()))
    }

    /// Approves or denies through the store, which tells every replica.
    pub async fn decide(&self, id: &str, approve: bool, approver: &str, comment: &str) -> Result<Approval, StoreError> {
        let ruling = Ruling {
            approve,
            approver: approver.to_string(),
            comment: comment.to_string(),
            valid_for: self.config.approval_ttl,
        };
        let now = now_ms();
        let result = self.store.decide(id, ruling, now).await;
        if let Err(StoreError::NotPending { status: ApprovalStatus::Expired, .. }) = &result {
            self.expire(id, now).await;
        }
        let approval = result?;
        self.record(if approve { Event::Approved } else { Event::Denied }, &approval);
        Ok(approval)
    }

    /// Every stored approval, with lapsed ones recorded as expired on the way.
    pub async fn list(&self) -> Result<Vec<Approval>, StoreError> {
        let now = now_ms();
        let mut all = self.store.approvals().await?;
        for approval in &mut all {
            if approval.status_at(now) == ApprovalStatus::Expired && approval.state.status != ApprovalStatus::Expired {
                self.expire(&approval.request.id, now).await;
                approval.state.status = ApprovalStatus::Expired;
            }
        }
        Ok(all)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        self.store.approval(id).await
    }

    async fn expire(&self, id: &str, now: u64) {
        if let Ok(true) = self.store.expire(id, now).await {
            if let Ok(Some(approval)) = self.store.approval(id).await {
                self.record(Event::Expired, &approval);
            }
        }
    }

    /// Records lapsed requests and approvals as expired, forever, often enough that an
    /// expiry is on record within half a TTL of happening (each replica sweeps; the store
    /// lets one of them record each expiry), and deletes finished ones past retention.
    pub async fn sweep_expired(self: std::sync::Arc<Self>) {
        let shortest = self.config.pending_ttl.min(self.config.approval_ttl) / 2;
        let every = shortest.clamp(Duration::from_millis(100), Duration::from_secs(30));
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.list().await {
                tracing::debug!(error = %e, "expiry sweep skipped: the state store is unavailable");
                continue;
            }
            let now = now_ms();
            let cutoff = now.saturating_sub(self.config.retention.as_millis() as u64);
            match self.store.prune(cutoff, now).await {
                Ok(0) | Err(_) => {}
                Ok(n) => tracing::info!(pruned = n, "deleted finished approval requests past approvals.retention"),
            }
        }
    }

    /// Waits until `id` is decided or `timeout` passes; the decision can come from any
    /// replica. `None` on timeout or when the store cannot say.
    pub async fn wait_for_decision(&self, id: &str, timeout: Duration) -> Option<Approval> {
        let mut events = self.store.events();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.store.approval(id).await {
                Ok(Some(a)) if a.status_at(now_ms()) != ApprovalStatus::Pending => return Some(a),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
            // Events wake the wait early; the periodic re-read covers events lost in an outage.
            let wake = async {
                loop {
                    match events.recv().await {
                        Ok(StateEvent::ApprovalDecided { id: decided }) if decided == id => return,
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
                    }
                }
            };
            let recheck = tokio::time::sleep(Duration::from_secs(2));
            tokio::select! {
                _ = wake => {}
                _ = recheck => {}
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    /// The seam for evidence: every request, decision, use and expiry passes here.
    pub fn record(&self, event: Event, approval: &Approval) {
        self.events.with_label_values(&[event.label()]).inc();
        let request = &approval.request;
        tracing::info!(
            target: "forge::approvals",
            event = event.label(),
            approval_id = %request.id,
            caller = %request.caller,
            tool = %request.tool,
            arguments_sha256 = %request.arguments_sha256,
            bundle_revision = %request.bundle_revision,
            decided_by = approval.state.decided_by.as_deref(),
            comment = approval.state.comment.as_deref(),
            "approval {}", event.label()
        );
        if let Some(evidence) = &self.evidence {
            let binding = ApprovalBinding {
                caller: request.caller.clone(),
                tool: request.tool.clone(),
                arguments_sha256: request.arguments_sha256.clone(),
                bundle_revision: request.bundle_revision.clone(),
                reason: request.reason.clone(),
                expires_at_ms: approval.state.expires_at_ms,
                decided_by: approval.state.decided_by.clone(),
                comment: approval.state.comment.clone(),
            };
            let note = ApprovalNote { id: request.id.clone(), event: event.label().into(), binding: Some(binding) };
            evidence.record_approval(note);
        }
    }
}

/// SHA-256 (hex) of the RFC 8785 canonical JSON of the arguments.
pub fn arguments_digest(arguments: &Value) -> String {
    let canonical = serde_json_canonicalizer::to_vec(arguments).expect("JSON values canonicalize");
    hex(&Sha256::digest(canonical))
}

/// What a retry must match. Fields are length-prefixed so no two tuples collide.
fn binding(caller: &str, tool: &str, arguments_sha256: &str, revision: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [caller, tool, arguments_sha256, revision] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::embedded::EmbeddedStore;
    use serde_json::json;

    fn approvals(dir: &tempfile::TempDir, ttl: Duration) -> Approvals {
        let store = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
        let config = ApprovalsConfig { approval_ttl: ttl, ..Default::default() };
        Approvals::new(store, config, "http://127.0.0.1:9090", None).unwrap()
    }

    fn call<'a>(caller: &str, arguments: &'a Value, revision: &'a str) -> Call<'a> {
        Call {
            caller: caller.into(),
            tool: "delete_repo",
            arguments,
            bundle_revision: revision,
            reason: "destructive",
            findings: &[],
        }
    }

    #[test]
    fn the_digest_is_of_the_canonical_form() {
        let a = arguments_digest(&json!({"b": 1, "a": [1.0, "x"]}));
        let b = arguments_digest(&serde_json::from_str(r#"{ "a":[1,"x"],"b":1 }"#).unwrap());
        assert_eq!(a, b, "key order, whitespace and 1.0 vs 1 do not matter");
        assert_ne!(a, arguments_digest(&json!({"b": 2, "a": [1, "x"]})));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn bindings_do_not_collide_across_field_boundaries() {
        assert_ne!(binding("ab", "c", "d", "e"), binding("a", "bc", "d", "e"));
    }

    #[tokio::test]
    async fn only_the_identical_call_uses_the_approval_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let approvals = approvals(&dir, Duration::from_secs(60));
        let args = json!({"repo": "forge", "token": "s3cret"});
        let Gate::Pending(pending) = approvals.check(&call("alice", &args, "r1")).await else { panic!("pending") };
        assert_eq!(pending.request.arguments_masked, json!({"repo": "forge", "token": "***"}));
        assert_eq!(
            approvals.page_url(&pending.request.id),
            format!("http://127.0.0.1:9090/approvals/{}", pending.request.id)
        );
        approvals.decide(&pending.request.id, true, "bob", "fine").await.unwrap();

        let changed = json!({"repo": "other", "token": "s3cret"});
        assert!(matches!(approvals.check(&call("alice", &changed, "r1")).await, Gate::Pending(_)), "changed argument");
        assert!(matches!(approvals.check(&call("mallory", &args, "r1")).await, Gate::Pending(_)), "another caller");
        assert!(matches!(approvals.check(&call("alice", &args, "r2")).await, Gate::Pending(_)), "another revision");

        let Gate::Release(used) = approvals.check(&call("alice", &args, "r1")).await else { panic!("released") };
        assert_eq!(used.request.id, pending.request.id);
        let Gate::Pending(again) = approvals.check(&call("alice", &args, "r1")).await else { panic!("single use") };
        assert_ne!(again.request.id, pending.request.id);
    }

    #[tokio::test]
    async fn a_denial_answers_retries_and_an_expired_approval_releases_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let approvals = approvals(&dir, Duration::from_millis(50));
        let args = json!({"repo": "forge"});
        let Gate::Pending(p) = approvals.check(&call("alice", &args, "r1")).await else { panic!() };
        approvals.decide(&p.request.id, false, "bob", "no way").await.unwrap();
        let Gate::Denied(d) = approvals.check(&call("alice", &args, "r1")).await else { panic!("denied") };
        assert_eq!(d.state.comment.as_deref(), Some("no way"));

        let other = json!({"repo": "x"});
        let Gate::Pending(p) = approvals.check(&call("alice", &other, "r1")).await else { panic!() };
        approvals.decide(&p.request.id, true, "bob", "").await.unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        let Gate::Pending(fresh) = approvals.check(&call("alice", &other, "r1")).await else { panic!("expired") };
        assert_ne!(fresh.request.id, p.request.id);
        let listed = approvals.list().await.unwrap();
        let old = listed.iter().find(|a| a.request.id == p.request.id).unwrap();
        assert_eq!(old.state.status, ApprovalStatus::Expired);
    }

    #[tokio::test]
    async fn a_waiting_call_wakes_on_the_decision() {
        let dir = tempfile::tempdir().unwrap();
        let approvals = Arc::new(approvals(&dir, Duration::from_secs(60)));
        let args = json!({});
        let Gate::Pending(p) = approvals.check(&call("alice", &args, "r1")).await else { panic!() };
        let id = p.request.id.clone();
        let waiter = {
            let approvals = approvals.clone();
            let id = id.clone();
            tokio::spawn(async move { approvals.wait_for_decision(&id, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        approvals.decide(&id, true, "bob", "").await.unwrap();
        let decided = tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("woken by the event").unwrap();
        assert_eq!(decided.unwrap().state.status, ApprovalStatus::Approved);
        assert!(approvals.wait_for_decision("missing", Duration::from_millis(10)).await.is_none());
    }
}
