//! The pipeline stage after policy (`admit`): the rate limits and human approvals its decisions
//! attached. A message passes only if every limit admits it and every approval it needs
//! was given, for exactly this call, and is used up by it.

use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};

use crate::approvals::{Call, Gate};
use crate::body::Body;
use crate::enforce::Admission;
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::mcp::jsonrpc::{code, Id, Message, Payload};
use crate::pipeline::AccessLog;
use crate::state::{Approval, Rate, RateOutcome};

impl Gateway {
    /// `Err` is the answer to send instead of forwarding.
    pub async fn admit(
        &self,
        log: &AccessLog,
        principal: &Principal,
        payload: &Payload,
        admissions: &[Admission],
        accepts_stream: bool,
    ) -> Result<(), http::Response<Body>> {
        let id = payload.sole_request_id();
        for limit in admissions.iter().filter_map(|a| a.rate_limit.as_ref()) {
            let rate = Rate { limit: limit.limit, period_ms: limit.period_seconds.saturating_mul(1000) };
            if let RateOutcome::Limited { retry_after_ms } = self.rate_limiter.check(&limit.key, rate).await {
                tracing::warn!(key = %limit.key, limit = limit.limit, period_s = limit.period_seconds, principal = %log.principal, "rate limit exceeded");
                let data = json!({"code": "rate_limited", "retry_after_ms": retry_after_ms});
                let message = format!("Rate limit exceeded; retry after {retry_after_ms} ms");
                let mut response = self.reply(log, id, error(code::RATE_LIMITED, &message, data), "rate_limited");
                let seconds = retry_after_ms.div_ceil(1000).max(1);
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                return Err(response);
            }
        }
        for (message, admission) in payload.messages().iter().zip(admissions) {
            let Some(reason) = &admission.approval else { continue };
            let refuse = |code_name: &str, text: &str| {
                let data = json!({"code": code_name});
                self.reply(log, id, error(code::POLICY_DENIED, text, data), "denied")
            };
            if matches!(payload, Payload::Batch(_)) {
                return Err(refuse(
                    "approval_not_batchable",
                    "a call that needs approval must be sent alone, not in a batch",
                ));
            }
            if principal.is_anonymous() {
                return Err(refuse(
                    "approval_needs_identity",
                    "a call that needs approval needs an authenticated caller",
                ));
            }
            let Message::Request(request) = message else {
                return Err(refuse("approval_required", "a notification cannot wait for approval; it is refused"));
            };
            let empty = Value::Object(Default::default());
            let call = Call {
                caller: principal.label(),
                tool: request.subject().unwrap_or(&request.method),
                arguments: request.params.as_ref().and_then(|p| p.get("arguments")).unwrap_or(&empty),
                bundle_revision: &admission.bundle_revision,
                reason,
            };
            match self.approval_for(&call, request, accepts_stream).await {
                Gate::Release(approval) => {
                    tracing::info!(approval_id = %approval.request.id, approver = approval.state.decided_by.as_deref(), "approved call released");
                }
                Gate::Pending(approval) => return Err(self.pending(log, id, &approval, elicits_by_url(request))),
                Gate::Denied(approval) => {
                    let comment = approval.state.comment.clone().unwrap_or_default();
                    let text = format!("an approver denied this call: {comment}");
                    let data =
                        json!({"code": "approval_denied", "approval_id": approval.request.id, "comment": comment});
                    return Err(self.reply(log, id, error(code::POLICY_DENIED, &text, data), "denied"));
                }
                Gate::Unavailable(_) => {
                    let text = "approval cannot be checked right now (the state store is unavailable); retry later";
                    return Err(refuse("approval_unavailable", text));
                }
            }
        }
        Ok(())
    }

    /// The call's approval. A client that can open the page itself is sent there (URL
    /// elicitation); one that reads a streaming answer waits here, held, for the decision
    /// (from any replica); anyone else is told to retry.
    async fn approval_for(
        &self,
        call: &Call<'_>,
        request: &crate::mcp::jsonrpc::Request,
        accepts_stream: bool,
    ) -> Gate {
        let gate = self.approvals.check(call).await;
        let hold = self.approvals.config.hold_timeout;
        let Gate::Pending(approval) = &gate else { return gate };
        if !accepts_stream || hold.is_zero() || elicits_by_url(request) {
            return gate;
        }
        tracing::info!(approval_id = %approval.request.id, timeout = ?hold, "holding the call until an approver decides");
        match self.approvals.wait_for_decision(&approval.request.id, hold).await {
            Some(_) => self.approvals.check(call).await,
            None => gate,
        }
    }

    /// The caller is told the call is pending: as an `input_required` result pointing at the
    /// page for a 2026-07-28 client that handles URL elicitation (it retries the same call
    /// once the user is done there), as a `-32018` error for everyone else.
    fn pending(&self, log: &AccessLog, id: Option<&Id>, approval: &Approval, by_url: bool) -> http::Response<Body> {
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
        self.reply(log, id, reply, "approval_pending")
    }

    /// Answers the request itself with `reply` (`{"error": …}` or `{"result": …}`).
    fn reply(&self, log: &AccessLog, id: Option<&Id>, mut reply: Value, outcome: &str) -> http::Response<Body> {
        self.finish(log, StatusCode::OK, outcome);
        reply["jsonrpc"] = json!("2.0");
        reply["id"] = id.map_or(Value::Null, Id::to_value);
        let mut response = http::Response::new(crate::body::full(reply.to_string()));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
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
