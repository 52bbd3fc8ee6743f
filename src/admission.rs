//! The pipeline stage after policy (`admit`): the rate limits and human approvals its decisions
//! attached. A message passes only if every limit admits it and every approval it needs
//! was given, for exactly this call, and is used up by it.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::approvals::{Call, Gate};
use crate::body::{Body, BoxError};
use crate::enforce::Admission;
use crate::evidence::{ApprovalNote, Pending};
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::mcp::jsonrpc::{code, Id, Message, Payload};
use crate::pipeline::AccessLog;
use crate::server::ConnInfo;
use crate::state::{Approval, Rate, RateOutcome};

/// What becomes of a client message policy let through.
pub enum Admitted {
    /// On to the upstream; the approval it used, if one.
    Forward(Option<ApprovalNote>),
    /// The gateway answers it itself.
    Answer(Held),
    /// Held open on a streaming answer until an approver decides ([`Gateway::hold`]).
    Wait(Wait),
    /// The client's answer to the gateway's own approval elicitation: acknowledged, not
    /// forwarded (the upstream never asked).
    Consumed,
}

/// A call waiting for approval `approval_id` on a streaming answer.
pub struct Wait {
    approval_id: String,
    request_id: Id,
    /// The call's `_meta.progressToken`: with one, the client hears progress notifications.
    progress_token: Option<Value>,
    /// A stateful session that declared URL elicitation is first sent this
    /// `elicitation/create` request pointing at the approval page.
    elicitation: Option<Value>,
}

/// The JSON-RPC id prefix of the gateway's own elicitation requests.
const ELICITATION_ID_PREFIX: &str = "forge-approval-";

/// Marks a request run again after its hold: it is not held twice.
#[derive(Clone, Copy)]
struct HeldBefore;

/// A call the gateway answers itself instead of forwarding: held for approval, refused by
/// an approver or a rate limit.
pub struct Held {
    reply: Value,
    outcome: &'static str,
    /// The evidence record's decision: `hold` (waiting for an approver) or `deny`.
    decision: &'static str,
    approval: Option<ApprovalNote>,
    retry_after_s: Option<u64>,
}

impl Held {
    fn deny(reply: Value, outcome: &'static str) -> Held {
        Held { reply, outcome, decision: "deny", approval: None, retry_after_s: None }
    }
}

impl Gateway {
    /// Whether every rate limit admits the payload and every approval it needs was given.
    /// `may_hold`: the client reads a streaming answer, so a pending call may wait on it.
    pub async fn admit(
        &self,
        log: &AccessLog,
        principal: &Principal,
        payload: &Payload,
        admissions: &[Admission],
        may_hold: bool,
    ) -> Admitted {
        for limit in admissions.iter().filter_map(|a| a.rate_limit.as_ref()) {
            let rate = Rate { limit: limit.limit, period_ms: limit.period_seconds.saturating_mul(1000) };
            if let RateOutcome::Limited { retry_after_ms } = self.rate_limiter.check(&limit.key, rate).await {
                tracing::warn!(key = %limit.key, limit = limit.limit, period_s = limit.period_seconds, principal = %log.principal, "rate limit exceeded");
                let data = json!({"code": "rate_limited", "retry_after_ms": retry_after_ms});
                let message = format!("Rate limit exceeded; retry after {retry_after_ms} ms");
                let held = Held::deny(error(code::RATE_LIMITED, &message, data), "rate_limited");
                return Admitted::Answer(Held { retry_after_s: Some(retry_after_ms.div_ceil(1000).max(1)), ..held });
            }
        }
        if let Payload::Single(Message::Response(answer)) = payload {
            if let Some(Id::String(id)) = &answer.id {
                if let Some(approval_id) = id.strip_prefix(ELICITATION_ID_PREFIX) {
                    let action = answer.result().and_then(|r| r.get("action")).and_then(Value::as_str);
                    tracing::info!(approval_id, action, "the client answered the approval elicitation");
                    return Admitted::Consumed;
                }
            }
        }
        let mut used = None;
        for (message, admission) in payload.messages().iter().zip(admissions) {
            let Some(reason) = &admission.approval else { continue };
            let refuse = |code_name: &str, text: &str| {
                Held::deny(error(code::POLICY_DENIED, text, json!({"code": code_name})), "denied")
            };
            if matches!(payload, Payload::Batch(_)) {
                return Admitted::Answer(refuse(
                    "approval_not_batchable",
                    "a call that needs approval must be sent alone, not in a batch",
                ));
            }
            if principal.is_anonymous() {
                return Admitted::Answer(refuse(
                    "approval_needs_identity",
                    "a call that needs approval needs an authenticated caller",
                ));
            }
            let Message::Request(request) = message else {
                return Admitted::Answer(refuse(
                    "approval_required",
                    "a notification cannot wait for approval; it is refused",
                ));
            };
            let empty = Value::Object(Default::default());
            let call = Call {
                caller: principal.label(),
                tool: request.subject().unwrap_or(&request.method),
                arguments: request.params.as_ref().and_then(|p| p.get("arguments")).unwrap_or(&empty),
                bundle_revision: &admission.bundle_revision,
                reason,
                findings: &admission.findings,
            };
            match self.approvals.check(&call).await {
                Gate::Release(approval) => {
                    tracing::info!(approval_id = %approval.request.id, approver = approval.state.decided_by.as_deref(), "approved call released");
                    used = Some(note(&approval, "used"));
                }
                Gate::Pending(approval)
                    if may_hold && !self.approvals.config.hold_timeout.is_zero() && !elicits_by_url(request) =>
                {
                    let progress_token =
                        request.params.as_ref().and_then(|p| p.pointer("/_meta/progressToken")).cloned();
                    let elicitation = self.session_elicits_by_url(log).then(|| self.elicitation(&approval));
                    let wait = Wait {
                        approval_id: approval.request.id,
                        request_id: request.id.clone(),
                        progress_token,
                        elicitation,
                    };
                    return Admitted::Wait(wait);
                }
                Gate::Pending(approval) => return Admitted::Answer(self.pending(&approval, elicits_by_url(request))),
                Gate::Denied(approval) => {
                    let comment = approval.state.comment.clone().unwrap_or_default();
                    let text = format!("an approver denied this call: {comment}");
                    let data =
                        json!({"code": "approval_denied", "approval_id": approval.request.id, "comment": comment});
                    let held = Held::deny(error(code::POLICY_DENIED, &text, data), "denied");
                    return Admitted::Answer(Held { approval: Some(note(&approval, "denied")), ..held });
                }
                Gate::Unavailable(_) => {
                    let text = "approval cannot be checked right now (the state store is unavailable); retry later";
                    return Admitted::Answer(refuse("approval_unavailable", text));
                }
            }
        }
        Admitted::Forward(used)
    }

    /// Whether a pending call of this request may be held open: its client reads streaming
    /// answers on the MCP endpoint (the legacy transport answers on another stream), and it
    /// is not already the run after a hold.
    pub fn may_hold(&self, parts: &http::request::Parts) -> bool {
        accepts_event_stream(&parts.headers)
            && parts.uri.path() == self.mcp_path
            && parts.extensions.get::<HeldBefore>().is_none()
    }

    /// Answers with an event stream at once and keeps it open until an approver decides
    /// (on any replica) or `approvals.hold_timeout` passes, telling the client it still
    /// waits every `progress_interval`. Then the request runs through the pipeline again,
    /// from parsing on — identity, policy and the approval are checked anew — and its
    /// answer ends the stream: the upstream's result once approved, else the refusal or
    /// the "pending" error. A client that leaves meanwhile is not forwarded anything.
    pub fn hold(
        self: &Arc<Self>,
        wait: Wait,
        log: &AccessLog,
        parts: http::request::Parts,
        bytes: Bytes,
        conn: Arc<ConnInfo>,
    ) -> http::Response<Body> {
        tracing::info!(approval_id = %wait.approval_id, timeout = ?self.approvals.config.hold_timeout, "holding the call until an approver decides");
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let mut again = http::Request::new(());
        *again.method_mut() = parts.method;
        *again.uri_mut() = parts.uri;
        *again.version_mut() = parts.version;
        *again.headers_mut() = parts.headers;
        again.extensions_mut().insert(HeldBefore);
        let (again, ()) = again.into_parts();
        let gw = self.clone();
        tokio::spawn(async move {
            if !gw.wait_for(&wait, &tx).await {
                tracing::info!(approval_id = %wait.approval_id, "the client left while its call was held; nothing is forwarded");
                return;
            }
            let log = AccessLog::new(&again.headers, Instant::now());
            let answer = crate::pipeline::decide_and_forward(gw.clone(), again, bytes, conn, log).await;
            gw.relay_as_events(answer, &wait.request_id, &tx).await;
        });
        self.finish(log, StatusCode::OK, "approval_held");
        let events = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|data| (Ok::<_, BoxError>(Frame::data(data)), rx))
        });
        let mut response = http::Response::new(crate::body::boxed(StreamBody::new(events)));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }

    /// Whether the call's stateful session declared URL-mode elicitation at initialize.
    fn session_elicits_by_url(&self, log: &AccessLog) -> bool {
        log.session.as_deref().and_then(|id| self.sessions.get(id)).is_some_and(|info| info.url_elicitation)
    }

    /// The `elicitation/create` request (URL mode) sending the user to the approval page.
    fn elicitation(&self, approval: &Approval) -> Value {
        let request = &approval.request;
        json!({"jsonrpc": "2.0", "id": format!("{ELICITATION_ID_PREFIX}{}", request.id), "method": "elicitation/create", "params": {
            "mode": "url",
            "elicitationId": request.id,
            "url": self.approvals.page_url(&request.id),
            "message": format!("Approval required: {}. Ask an approver to approve request {}.", request.reason, request.id),
        }})
    }

    /// Waits for the decision or the hold timeout, the client first sent to the page if it
    /// can open one (and told when that is over); `false` when the client left first.
    async fn wait_for(&self, wait: &Wait, tx: &mpsc::Sender<Bytes>) -> bool {
        if let Some(elicitation) = &wait.elicitation {
            if tx.send(event(elicitation)).await.is_err() {
                return false;
            }
        }
        let present = self.wait_for_decision(wait, tx).await;
        if present && wait.elicitation.is_some() {
            let complete = json!({"jsonrpc": "2.0", "method": "notifications/elicitation/complete", "params": {"elicitationId": wait.approval_id}});
            return tx.send(event(&complete)).await.is_ok();
        }
        present
    }

    async fn wait_for_decision(&self, wait: &Wait, tx: &mpsc::Sender<Bytes>) -> bool {
        let config = &self.approvals.config;
        let deadline = Instant::now() + config.hold_timeout;
        for progress in 1u64.. {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let step = config.progress_interval.min(left);
            if self.approvals.wait_for_decision(&wait.approval_id, step).await.is_some() {
                break;
            }
            let still = match &wait.progress_token {
                Some(token) => event(&json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {
                    "progressToken": token,
                    "progress": progress,
                    "message": format!("waiting for an approver to decide approval request {}", wait.approval_id),
                }})),
                // A comment keeps the stream alive and tells a client that left from one that waits.
                None => Bytes::from_static(b": waiting for an approver\n\n"),
            };
            if tx.send(still).await.is_err() {
                return false;
            }
        }
        true
    }

    /// The answer of the run after the hold, as the held stream's last events: an event
    /// stream is relayed as it comes; a JSON body becomes one event.
    async fn relay_as_events(&self, answer: http::Response<Body>, id: &Id, tx: &mpsc::Sender<Bytes>) {
        let streaming =
            answer.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let status = answer.status();
        let mut body = answer.into_body();
        if streaming {
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    if tx.send(data).await.is_err() {
                        return;
                    }
                }
            }
            return;
        }
        let limit = self.config.limits.max_upstream_message_bytes;
        let message = match crate::body::read_limited(body, limit, self.config.upstream.timeout).await {
            Ok(bytes) => serde_json::from_slice::<Value>(&bytes).ok(),
            Err(_) => None,
        };
        let message = message.unwrap_or_else(|| {
            let text = format!("the call was released but its answer was not a JSON-RPC message (HTTP {status})");
            let mut reply = error(code::INTERNAL_ERROR, &text, json!({"code": "upstream_failed"}));
            reply["jsonrpc"] = json!("2.0");
            reply["id"] = id.to_value();
            reply
        });
        let _ = tx.send(event(&message)).await;
    }

    /// The caller is told the call is pending: as an `input_required` result pointing at the
    /// page for a 2026-07-28 client that handles URL elicitation (it retries the same call
    /// once the user is done there), as a `-32018` error for everyone else.
    fn pending(&self, approval: &Approval, by_url: bool) -> Held {
        let request = &approval.request;
        let url = self.approvals.page_url(&request.id);
        let reply = if by_url {
            let message =
                format!("Approval required: {}. Ask an approver to approve request {}.", request.reason, request.id);
            let elicitation =
                json!({"method": "elicitation/create", "params": {"mode": "url", "message": message, "url": url}});
            json!({"result": {"resultType": "input_required", "inputRequests": {ELICITATION_KEY: elicitation}}})
        } else {
            let message = format!(
                "Approval required: {}. Approval request {} is pending at {url}; retry this identical call once it is approved",
                request.reason, request.id
            );
            let data = json!({"code": "approval_pending", "approval_id": request.id, "url": url, "expires_at_ms": approval.state.expires_at_ms});
            error(code::APPROVAL_PENDING, &message, data)
        };
        Held {
            reply,
            outcome: "approval_pending",
            decision: "hold",
            approval: Some(note(approval, "pending")),
            retry_after_s: None,
        }
    }

    /// `202 Accepted` for a client message that goes no further.
    pub fn accepted(&self, log: &AccessLog) -> http::Response<Body> {
        self.finish(log, StatusCode::ACCEPTED, "accepted");
        let mut response = http::Response::new(crate::body::empty());
        *response.status_mut() = StatusCode::ACCEPTED;
        response
    }

    /// Answers the request itself with what [`Gateway::admit`] decided, with its evidence.
    pub fn answer_held(
        &self,
        log: &AccessLog,
        id: Option<&Id>,
        held: Held,
        evidence: Option<Pending>,
    ) -> http::Response<Body> {
        let mut reply = held.reply;
        reply["jsonrpc"] = json!("2.0");
        reply["id"] = id.map_or(Value::Null, Id::to_value);
        let evidence = evidence.map(|e| e.admitted(Some(held.decision), held.approval));
        let mut response = self.answer_json(log, id, &reply, held.outcome, evidence.as_ref());
        if let Some(seconds) = held.retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// How a call's evidence record names its approval.
fn note(approval: &Approval, event: &str) -> ApprovalNote {
    ApprovalNote { id: approval.request.id.clone(), event: event.to_string(), binding: None }
}

/// One SSE event carrying a JSON-RPC message (serialized on one line).
fn event(message: &Value) -> Bytes {
    Bytes::from(format!("data: {message}\n\n"))
}

fn error(code: i64, message: &str, data: Value) -> Value {
    json!({"error": {"code": code, "message": message, "data": data}})
}

/// The `inputRequests` key of the approval elicitation.
const ELICITATION_KEY: &str = "forge_approval";

/// A 2026-07-28 request from a client that declared URL elicitation, which has not already
/// declined or cancelled the gateway's elicitation (then it gets the plain pending error,
/// so it does not loop).
fn elicits_by_url(request: &crate::mcp::jsonrpc::Request) -> bool {
    let Some(meta) = request.params.as_ref().and_then(|p| p.get("_meta")) else { return false };
    let revision = meta.get(crate::mcp::jsonrpc::META_PROTOCOL_VERSION).and_then(Value::as_str);
    let capable =
        meta.pointer("/io.modelcontextprotocol~1clientCapabilities/elicitation/url").is_some_and(Value::is_object);
    let declined = request
        .params
        .as_ref()
        .and_then(|p| p.pointer(&format!("/inputResponses/{ELICITATION_KEY}/action")))
        .and_then(Value::as_str)
        .is_some_and(|action| action != "accept");
    revision == Some("2026-07-28") && capable && !declined
}

/// Whether the client reads streaming answers (`Accept` names `text/event-stream`).
pub fn accepts_event_stream(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| range.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_clients_are_recognized_by_their_accept_header() {
        let mut h = http::HeaderMap::new();
        assert!(!accepts_event_stream(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json, Text/Event-Stream;q=0.9"));
        assert!(accepts_event_stream(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json, text/event-streamx"));
        assert!(!accepts_event_stream(&h), "a near miss is not a stream");
    }
}
