//! Evidence: a signed, tamper-evident record of every decision the gateway makes.
//!
//! For each exchange the pipeline collects the policy evaluations in a [`Trail`]; when the
//! answer is ready, [`Evidence::seal_json`] (a JSON body) or [`Evidence::seal_message`] (one
//! SSE message) turns them into a [`Record`], queues it for the [`log`], and signs what the
//! client receives:
//!
//! - a JSON response gets `Forge-Evidence` (record id, decision, request digest, policy),
//!   `Content-Digest` (RFC 9530) and an RFC 9421 signature (`Signature-Input`/`Signature`,
//!   label `forge`, `alg="ed25519"`) over `@status`, `content-digest` and `forge-evidence`;
//! - an SSE result gets the same, signed over `content-digest` and `forge-evidence`, in its
//!   `result._meta["io.forge/evidence"]`.
//!
//! The upstream never sees any of it. The formats are specified in docs/evidence.md.

pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod http_signature;
pub mod log;
pub mod merkle;
pub mod pack;
pub mod record;
pub mod replay;

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

pub use config::{EvidenceConfig, WhenFull};
pub use log::{AppendError, EvidenceLog, LogMetrics};
pub use record::{ApprovalBinding, ApprovalNote, DecisionEntry, GatewayIdentity, Masking, PrincipalRef, Record, Trail};

use crate::identity::Principal;
use crate::mcp::jsonrpc::{Message, Request};
use crate::policy::Direction;
use crate::signing::SigningKey;
use http_signature::{content_digest, SignatureParams, ALG_ED25519};

/// The response header naming the record (an RFC 8941 dictionary).
pub const EVIDENCE_HEADER: &str = "forge-evidence";
/// The signature label in `Signature-Input` and `Signature`.
pub const SIGNATURE_LABEL: &str = "forge";
/// The `_meta` key of an SSE result's evidence.
pub const META_KEY: &str = "io.forge/evidence";
/// The development key's file under the evidence directory.
pub const DEV_KEY_FILE: &str = "dev-signing-key.pem";

/// The gateway's evidence: its key, identity and log.
pub struct Evidence {
    key: Arc<SigningKey>,
    identity: GatewayIdentity,
    log: EvidenceLog,
    masking: Arc<Masking>,
    when_full: WhenFull,
    sse_meta: bool,
}

/// What the request side knows about one exchange, for its record.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub received: SystemTime,
    pub principal: Option<PrincipalRef>,
    pub session: Option<String>,
    pub method: String,
    pub name: Option<String>,
    pub request_id: Option<String>,
    /// SHA-256 (hex) of the body as forwarded.
    pub request_sha256: String,
    /// Bytes of a body that was not received whole.
    pub received_bytes: Option<u64>,
    /// The evaluations made before the request was forwarded.
    pub decisions: Vec<DecisionEntry>,
    /// The approval the call was held for, refused by or used.
    pub approval: Option<ApprovalNote>,
    /// Set when the gateway answered the call itself after policy allowed it (held for
    /// approval: `hold`; refused by an approver or a rate limit: `deny`).
    pub decision: Option<&'static str>,
}

/// Why the gateway answered a request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered<'a> {
    /// Refused before policy decided (authentication, limits, malformed JSON-RPC, header
    /// mismatch): the record's decision is `refused`.
    Refused(&'a str),
    /// The upstream failed (unreachable, timed out, an unreadable answer): `error`.
    Failed(&'a str),
}

impl<'a> Unanswered<'a> {
    fn decision(self) -> &'static str {
        match self {
            Unanswered::Refused(_) => "refused",
            Unanswered::Failed(_) => "error",
        }
    }

    fn reason(self) -> &'a str {
        match self {
            Unanswered::Refused(r) | Unanswered::Failed(r) => r,
        }
    }
}

/// One exchange's evidence in the making: what the request side knew, and the trail the
/// evaluations are noted in.
#[derive(Debug)]
pub struct Pending {
    exchange: Exchange,
    trail: Trail,
}

/// The trail of a gateway without evidence.
static OFF: Trail = Trail::off();

impl Pending {
    /// Where the pipeline notes evaluations (nowhere, without evidence).
    pub fn trail(pending: &Option<Pending>) -> &Trail {
        pending.as_ref().map_or(&OFF, |p| &p.trail)
    }

    /// The request body was not received whole (too large, too slow, aborted) after
    /// `received` bytes: there is nothing to digest, so the record's `request_sha256` is empty.
    pub fn unread(mut self, received: usize) -> Pending {
        self.exchange.request_sha256.clear();
        self.exchange.received_bytes = Some(received as u64);
        self
    }

    /// The request was forwarded as `body` (policy may have redacted it): its digest and
    /// its evaluations belong to every answer to it.
    pub fn forwarded(mut self, body: &[u8]) -> Pending {
        self.exchange.request_sha256 = record::sha256_hex(body);
        self.exchange.decisions = self.trail.take();
        self
    }

    /// What the admission stage (rate limits, approvals) did to the call: `decision` when
    /// it answered the call itself, and the approval concerned.
    pub fn admitted(mut self, decision: Option<&'static str>, approval: Option<ApprovalNote>) -> Pending {
        self.exchange.decision = decision;
        self.exchange.approval = approval;
        self
    }
}

impl Exchange {
    /// The exchange as it concerns one answered request of it, with the evaluations of the
    /// answer (noted in `trail`) after the request's.
    fn answering(&self, request: Option<&Request>, trail: &Trail) -> Exchange {
        let mut exchange = self.clone();
        exchange.decisions.extend(trail.take());
        if let Some(request) = request {
            exchange.method = request.method.clone();
            exchange.name = request.subject().map(str::to_owned);
            exchange.request_id = Some(request.id.to_string());
        }
        exchange
    }
}

/// Loads the configured key, or the development key (generated on first use).
pub fn load_key(config: &EvidenceConfig, state_dir: &Path) -> anyhow::Result<SigningKey> {
    if let Some(path) = &config.key {
        return SigningKey::load(path);
    }
    let path = config.dir(state_dir).join(DEV_KEY_FILE);
    if path.exists() {
        let key = SigningKey::load(&path)?;
        tracing::warn!(key = %path.display(), key_id = %key.key_id(), "no evidence key configured: signing with the development key");
        return Ok(key);
    }
    let key = SigningKey::generate()?;
    std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
    write_private(&path, key.to_pem().as_bytes())?;
    tracing::warn!(key = %path.display(), key_id = %key.key_id(), "no evidence key configured: generated a development signing key (set evidence.key in production)");
    Ok(key)
}

/// Writes a private key readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes).with_context(|| format!("writing {}", path.display()))
}

impl Evidence {
    /// Opens the log (recovering it) and loads the key; `None` when evidence is off.
    pub fn open(
        config: &EvidenceConfig,
        state_dir: &Path,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Option<Evidence>> {
        if !config.enabled {
            tracing::warn!("evidence is disabled (evidence.enabled: false): decisions are neither recorded nor signed");
            return Ok(None);
        }
        let key = Arc::new(load_key(config, state_dir).context("loading the evidence signing key")?);
        let identity = config.identity(|name| std::env::var(name).ok());
        let metrics = LogMetrics::new();
        for collector in metrics.collectors() {
            registry.register(collector)?;
        }
        let dir = config.dir(state_dir);
        let (log, recovery) = EvidenceLog::open(&dir, config, key.clone(), identity.name.clone(), metrics)
            .with_context(|| format!("opening the evidence log in {}", dir.display()))?;
        pack::register_key(&dir, key.public_key()).context("recording the evidence key in the log")?;
        tracing::info!(dir = %dir.display(), records = recovery.records, key_id = %key.key_id(), gateway = %identity.name, "evidence log open");
        Ok(Some(Evidence {
            key,
            identity,
            log,
            masking: Arc::new(config.masking()),
            when_full: config.when_full,
            sse_meta: config.sse_meta,
        }))
    }

    /// Starts the evidence of an exchange; `body` is the request as it will be forwarded.
    pub fn begin(
        &self,
        principal: &Principal,
        session: Option<&str>,
        method: &str,
        name: Option<&str>,
        request_id: Option<&str>,
        body: &[u8],
    ) -> Pending {
        let exchange = Exchange {
            received: SystemTime::now(),
            principal: PrincipalRef::of(principal),
            session: session.map(str::to_owned),
            method: method.to_string(),
            name: name.map(str::to_owned),
            request_id: request_id.map(str::to_owned),
            request_sha256: record::sha256_hex(body),
            received_bytes: None,
            decisions: Vec::new(),
            approval: None,
            decision: None,
        };
        Pending { exchange, trail: Trail::new(Some(self.masking.clone())) }
    }

    pub fn key_id(&self) -> String {
        self.key.key_id()
    }

    pub fn log(&self) -> &EvidenceLog {
        &self.log
    }

    /// Records a JSON exchange and signs the response headers. `Err` means the answer must
    /// not go out without its evidence (`when_full: fail_closed`, or a broken log).
    pub fn seal_json(
        &self,
        pending: &Pending,
        answered: Option<&Request>,
        status: StatusCode,
        headers: &mut HeaderMap,
        body: &[u8],
    ) -> Result<(), AppendError> {
        self.seal(pending, answered, None, status, headers, body)
    }

    /// Records an error the gateway answered itself — a request refused before policy, or
    /// an upstream that failed — and signs it like any JSON answer.
    pub fn seal_unanswered(
        &self,
        pending: &Pending,
        why: Unanswered<'_>,
        status: StatusCode,
        headers: &mut HeaderMap,
        body: &[u8],
    ) -> Result<(), AppendError> {
        self.seal(pending, None, Some(why), status, headers, body)
    }

    fn seal(
        &self,
        pending: &Pending,
        answered: Option<&Request>,
        why: Option<Unanswered<'_>>,
        status: StatusCode,
        headers: &mut HeaderMap,
        body: &[u8],
    ) -> Result<(), AppendError> {
        let exchange = pending.exchange.answering(answered, &pending.trail);
        // One hash of the body for the record and the Content-Digest.
        let sha256: [u8; 32] = Sha256::digest(body).into();
        let mut record = self.record(exchange, Direction::ClientToServer, Some(&sha256), Some(status));
        if let Some(why) = why {
            record.decision = why.decision().into();
            record.reason = Some(why.reason().into());
        }
        let evidence = evidence_header(&record);
        self.append(record)?;
        let digest = content_digest(&sha256);
        let status = status.as_u16().to_string();
        let signed = self.sign(&["@status", "content-digest", EVIDENCE_HEADER], |id| match id {
            "@status" => Some(status.clone()),
            "content-digest" => Some(digest.clone()),
            EVIDENCE_HEADER => Some(evidence.clone()),
            _ => None,
        });
        for (name, value) in [
            ("content-digest", digest),
            (EVIDENCE_HEADER, evidence),
            ("signature-input", signed.signature_input),
            ("signature", signed.signature),
        ] {
            headers.insert(name, HeaderValue::from_str(&value).expect("evidence headers are visible ASCII"));
        }
        Ok(())
    }

    /// Records one message relayed on an SSE stream (`data`: the message as relayed): a
    /// response (to `answered`) or a server→client request; notifications are not
    /// recorded. Returns the bytes to relay instead when a result gets its evidence in `_meta`.
    pub fn seal_message(
        &self,
        pending: &Pending,
        answered: Option<&Request>,
        message: &Message,
        data: &[u8],
    ) -> Result<Option<Vec<u8>>, AppendError> {
        if let Message::Notification(_) = message {
            // Progress and log notifications are not decisions worth a record each.
            pending.trail.take();
            return Ok(None);
        }
        let Message::Response(response) = message else {
            // A server→client request (sampling, elicitation…): it is what was relayed.
            let request = Exchange {
                method: message.method().unwrap_or_default().to_string(),
                name: message.subject().map(str::to_owned),
                request_id: None,
                request_sha256: record::sha256_hex(data),
                received_bytes: None,
                decisions: pending.trail.take(),
                approval: None,
                decision: None,
                ..pending.exchange.clone()
            };
            let record = self.record(request, Direction::ServerToClient, None, None);
            return self.append(record).map(|()| None);
        };
        let mut value = match self.sse_meta && response.result().is_some() {
            true => serde_json::from_slice::<Value>(data).ok().filter(|v| v["result"].is_object()),
            false => None,
        };
        // The digest is over the message as the client reads it, without the entry: with
        // `_meta` added, that is the message re-serialized with sorted keys (docs/evidence.md).
        let canonical = match &value {
            Some(v) => serde_json::to_vec(v).expect("JSON serializes"),
            None => data.to_vec(),
        };
        let exchange = pending.exchange.answering(answered, &pending.trail);
        let sha256: [u8; 32] = Sha256::digest(&canonical).into();
        let record = self.record(exchange, Direction::ClientToServer, Some(&sha256), None);
        let evidence = evidence_header(&record);
        self.append(record)?;
        let Some(value) = value.as_mut() else { return Ok(None) };
        let digest = content_digest(&sha256);
        let signed = self.sign(&["content-digest", EVIDENCE_HEADER], |id| match id {
            "content-digest" => Some(digest.clone()),
            EVIDENCE_HEADER => Some(evidence.clone()),
            _ => None,
        });
        let entry = json!({
            "content-digest": digest,
            "forge-evidence": evidence,
            "signature-input": signed.signature_input,
            "signature": signed.signature,
        });
        let result = value.get_mut("result").and_then(Value::as_object_mut).expect("a result object");
        let meta = result.entry("_meta").or_insert_with(|| json!({}));
        match meta.as_object_mut() {
            Some(meta) => {
                meta.insert(META_KEY.to_string(), entry);
            }
            // A `_meta` that is not an object is the server's business: leave it alone.
            None => return Ok(None),
        }
        Ok(Some(serde_json::to_vec(value).expect("JSON serializes")))
    }

    fn sign(&self, components: &[&str], value_of: impl Fn(&str) -> Option<String>) -> http_signature::SignatureHeaders {
        let params = SignatureParams {
            components: components.iter().map(|c| c.to_string()).collect(),
            created: Some(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())),
            keyid: Some(self.key.key_id()),
            alg: Some(ALG_ED25519.into()),
        };
        http_signature::sign(&self.key, SIGNATURE_LABEL, &params, value_of).expect("every covered component is given")
    }

    fn append(&self, record: Record) -> Result<(), AppendError> {
        match self.log.append(record) {
            Ok(()) => Ok(()),
            Err(e) if self.when_full == WhenFull::Drop => {
                self.log.metrics.dropped.with_label_values(&[reason(e)]).inc();
                tracing::error!(error = %e, "evidence record dropped (evidence.when_full: drop)");
                Ok(())
            }
            Err(e) => {
                self.log.metrics.dropped.with_label_values(&[reason(e)]).inc();
                tracing::error!(error = %e, "no evidence record could be queued: the answer is refused (evidence.when_full: fail_closed)");
                Err(e)
            }
        }
    }

    fn record(
        &self,
        exchange: Exchange,
        direction: Direction,
        response_sha256: Option<&[u8; 32]>,
        status: Option<StatusCode>,
    ) -> Record {
        let now = SystemTime::now();
        Record {
            v: record::RECORD_VERSION,
            seq: 0,
            prev: String::new(),
            id: uuid::Uuid::new_v4().to_string(),
            received: record::rfc3339(exchange.received),
            completed: record::rfc3339(now),
            time_ms: record::unix_ms(now),
            gateway: self.identity.clone(),
            direction,
            principal: exchange.principal,
            session: exchange.session,
            method: exchange.method,
            name: exchange.name,
            request_id: exchange.request_id,
            request_sha256: exchange.request_sha256,
            received_bytes: exchange.received_bytes,
            response_sha256: response_sha256.map(|d| record::hex(d)),
            decision: exchange.decision.unwrap_or_else(|| verdict(&exchange.decisions)).to_string(),
            status: status.map(|s| s.as_u16()),
            reason: None,
            decisions: exchange.decisions,
            // The plugin host (issue 4) adds its runs and findings here.
            plugins: Vec::new(),
            pin_status: "unknown".into(),
            approval: exchange.approval,
        }
    }

    /// An approval's own record: requested, decided, used or expired. Its `request_sha256`
    /// is the bound arguments' digest.
    pub fn record_approval(&self, note: ApprovalNote) {
        let Some(binding) = &note.binding else { return };
        let decision = match note.event.as_str() {
            "requested" => "hold",
            "approved" | "used" => "allow",
            _ => "deny",
        };
        let exchange = Exchange {
            received: SystemTime::now(),
            principal: None,
            session: None,
            method: "tools/call".into(),
            name: Some(binding.tool.clone()),
            request_id: None,
            request_sha256: binding.arguments_sha256.clone(),
            received_bytes: None,
            decisions: Vec::new(),
            decision: Some(decision),
            approval: Some(note),
        };
        let record = self.record(exchange, Direction::ClientToServer, None, None);
        // A failure is counted and logged by append; there is no answer to withhold.
        let _ = self.append(record);
    }
}

fn reason(e: AppendError) -> &'static str {
    match e {
        AppendError::Full => "queue_full",
        AppendError::Unavailable => "write_error",
    }
}

/// `deny` if any enforced evaluation refused or failed, `modify` if one asked for a
/// rewrite (redactions, hidden tools), else `allow`.
fn verdict(decisions: &[DecisionEntry]) -> &'static str {
    let refused = |d: &&DecisionEntry| {
        d.enforced && (d.error.is_some() || d.result.as_ref().is_some_and(|r| r["allow"] == Value::Bool(false)))
    };
    let rewrites = |d: &&DecisionEntry| {
        d.enforced
            && d.result.as_ref().is_some_and(|r| {
                ["redact", "hide_tools"].iter().any(|k| r["obligations"][k].as_array().is_some_and(|a| !a.is_empty()))
            })
    };
    if decisions.iter().any(|d| refused(&d)) {
        "deny"
    } else if decisions.iter().any(|d| rewrites(&d)) {
        "modify"
    } else {
        "allow"
    }
}

/// The `Forge-Evidence` value: an RFC 8941 dictionary naming the record.
fn evidence_header(record: &Record) -> String {
    let request = crate::evidence::checkpoint::parse_hash(&record.request_sha256).unwrap_or_default();
    let mut value = format!(
        "record=\"{}\", decision=\"{}\", request=:{}:, gateway=\"{}\"",
        record.id,
        record.decision,
        STANDARD.encode(request),
        sf_string(&record.gateway.name)
    );
    if let Some(bundle) = record.decisions.iter().rev().find_map(|d| d.bundle_digest.as_deref()) {
        value.push_str(&format!(", policy=\"{}\"", sf_string(bundle)));
    }
    value
}

/// Printable ASCII with `"` and `\` escaped, as an RFC 8941 string needs.
fn sf_string(text: &str) -> String {
    text.chars()
        .filter(|c| (' '..='~').contains(c))
        .flat_map(|c| if c == '"' || c == '\\' { vec!['\\', c] } else { vec![c] })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(dir: &Path, when_full: WhenFull) -> Evidence {
        with_log(EvidenceLog::failing(dir), when_full)
    }

    fn with_log(log: EvidenceLog, when_full: WhenFull) -> Evidence {
        Evidence {
            key: Arc::new(SigningKey::generate().unwrap()),
            identity: GatewayIdentity { name: "test".into(), ..Default::default() },
            log,
            masking: Arc::new(EvidenceConfig::default().masking()),
            when_full,
            sse_meta: true,
        }
    }

    /// An exchange sealed while the writer's one-record queue is already full.
    fn seal_when_full(when_full: WhenFull) -> (Evidence, Result<(), AppendError>, HeaderMap) {
        let (log, rx) = EvidenceLog::stalled(1, std::time::Duration::from_millis(20));
        let e = with_log(log, when_full);
        let pending = e.begin(&Principal::default(), None, "ping", None, Some("1"), b"{}");
        e.seal_json(&pending, None, StatusCode::OK, &mut HeaderMap::new(), b"{}").expect("the first fits");
        let mut headers = HeaderMap::new();
        let result = e.seal_json(&pending, None, StatusCode::OK, &mut headers, b"{}");
        assert_eq!(rx.len(), 1, "only the first record is queued");
        (e, result, headers)
    }

    #[test]
    fn a_full_queue_withholds_the_answer_when_failing_closed_and_counts_it() {
        let (e, result, headers) = seal_when_full(WhenFull::FailClosed);
        assert_eq!(result, Err(AppendError::Full));
        assert!(headers.is_empty(), "nothing is signed for a record that was not kept");
        assert_eq!(e.log.metrics.dropped.with_label_values(&["queue_full"]).get(), 1);
    }

    #[test]
    fn a_full_queue_with_drop_relays_the_signed_answer_and_counts_the_loss() {
        let (e, result, headers) = seal_when_full(WhenFull::Drop);
        assert_eq!(result, Ok(()));
        assert!(headers.contains_key("signature"));
        assert_eq!(e.log.metrics.dropped.with_label_values(&["queue_full"]).get(), 1);
    }

    /// Seals one exchange on a log that can no longer write.
    fn seal_after_failure(e: &Evidence) -> (Result<(), AppendError>, HeaderMap) {
        let pending = e.begin(&Principal::default(), None, "ping", None, Some("1"), b"{}");
        let mut headers = HeaderMap::new();
        let result = e.seal_json(&pending, None, StatusCode::OK, &mut headers, b"{}");
        (result, headers)
    }

    #[test]
    fn without_a_record_the_answer_is_refused_when_failing_closed() {
        let dir = tempfile::tempdir().unwrap();
        let e = evidence(dir.path(), WhenFull::FailClosed);
        let (result, headers) = seal_after_failure(&e);
        assert_eq!(result, Err(AppendError::Unavailable));
        assert!(headers.is_empty(), "nothing is signed for a record that was not kept");
        assert_eq!(e.log.metrics.dropped.with_label_values(&["write_error"]).get(), 1);
    }

    #[test]
    fn with_drop_the_answer_goes_out_signed_and_the_loss_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let e = evidence(dir.path(), WhenFull::Drop);
        let (result, headers) = seal_after_failure(&e);
        assert_eq!(result, Ok(()));
        assert!(headers.contains_key("signature"));
        assert_eq!(e.log.metrics.dropped.with_label_values(&["write_error"]).get(), 1);
    }

    #[test]
    fn the_verdict_reads_refusals_and_rewrites() {
        let entry = |result: Value, enforced: bool| DecisionEntry {
            direction: Direction::ClientToServer,
            decision_id: None,
            bundle_digest: None,
            bundle_revision: None,
            bundle_signature: None,
            result: Some(result),
            error: None,
            enforced,
            input: serde_json::value::to_raw_value(&()).unwrap(),
            masked: Vec::new(),
        };
        assert_eq!(verdict(&[]), "allow");
        assert_eq!(verdict(&[entry(json!({"allow": true, "obligations": {"redact": []}}), true)]), "allow");
        assert_eq!(verdict(&[entry(json!({"allow": false}), true)]), "deny");
        assert_eq!(verdict(&[entry(json!({"allow": false}), false)]), "allow", "audit mode applies nothing");
        let hide = json!({"allow": true, "obligations": {"hide_tools": ["rm"]}});
        assert_eq!(verdict(&[entry(hide, true), entry(json!({"allow": true}), true)]), "modify");
    }
}
