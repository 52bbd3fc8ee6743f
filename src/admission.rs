//! The pipeline stage after policy (`admit`): the rate limits and human approvals its decisions
//! attached. A message passes only if every limit admits it and every approval it needs
//! was given, for exactly this call, and is used up by it. A call that waits for approval
//! on a streaming answer is held open ([`hold`]).

use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};

mod hold;

use hold::ELICITATION_ID_PREFIX;
pub use hold::{is_release, Wait};

use crate::approvals::{Call, Gate};
use crate::body::Body;
use crate::enforce::Admission;
use crate::evidence::{ApprovalNote, Pending};
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::mcp::jsonrpc::{code, Id, Message, Payload};
use crate::pipeline::AccessLog;
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

    /// The caller is told the call is pending: as an `input_required` result pointing at the
    /// page for a 2026-07-28 client that handles URL elicitation (it retries the same call
    /// once the user is done there), as a `-32018` error for everyone else.
    fn pending(&self, approval: &Approval, by_url: bool) -> Held {
        let request = &approval.request;
        let url = self.approvals.page_url(&request.id);
        let reply = if by_url {
            let elicitation = json!({"method": "elicitation/create", "params": {"mode": "url", "message": ask(approval), "url": url}});
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

/// What a client that can open the approval page shows its user.
fn ask(approval: &Approval) -> String {
    let request = &approval.request;
    format!("Approval required: {}. Ask an approver to approve request {}.", request.reason, request.id)
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
