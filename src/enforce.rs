//! Asking policy about one message and carrying out the answer: refuse it, let it through,
//! or change it (hide tools from a list, redact, withhold a result).
//!
//! Every rewrite produces a new message that is evaluated again before it goes anywhere: a
//! stage never trusts its own output.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::Value;

use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::mcp::headers::{PROTOCOL_VERSION, SESSION_ID};
use crate::mcp::jsonrpc::{Id, Message, Outcome, Payload, Request, Response};
use crate::plugins::Scan;
use crate::policy::{Direction, Evaluation, Finding, PolicyInput, RequestView, SessionView};

/// Why the gateway refuses a message, as the caller will read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusal {
    /// Machine-readable (`denied`, `approval_required`, `policy_error`, or the policy's own).
    pub code: String,
    pub message: String,
    pub decision_id: Option<String>,
    /// Scopes the policy says would allow the call (its decision's `required_scopes`).
    pub required_scopes: Vec<String>,
}

/// What becomes of a message from the upstream.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Relay it as it came.
    Forward,
    /// Relay this message instead (already re-evaluated).
    Replace(Message),
    /// Relay nothing.
    Drop,
    /// A refused server→client request: relay nothing, and answer the upstream with this
    /// error, as the client would have, so the server does not wait for an answer forever.
    Answer(Response),
}

/// What a client message that policy let through must still pass before it is forwarded
/// (see `Gateway::admit`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Admission {
    /// A human must approve it first; the policy's reason.
    pub approval: Option<String>,
    pub rate_limit: Option<crate::policy::RateLimit>,
    /// The bundle revision that decided: an approval is bound to it.
    pub bundle_revision: String,
    /// The request detectors' findings, for the approver to see.
    pub findings: Vec<Finding>,
}

/// A client payload policy let through: what to forward, and each message's admission.
pub struct Evaluated {
    pub payload: Payload,
    pub bytes: Bytes,
    pub admissions: Vec<Admission>,
}

/// Everything policy needs to know besides the message itself.
pub struct Context<'a> {
    pub principal: &'a Principal,
    pub session: Option<SessionView>,
    pub request: RequestView,
    /// Where the evaluations are noted for this exchange's evidence record.
    pub evidence: &'a crate::evidence::Trail,
}

/// What identifies the client's session to the upstream, taken from the request whose
/// response stream may carry server requests: `Host`, `Mcp-Session-Id` and
/// `MCP-Protocol-Version`. (On the legacy transport the session is in the endpoint's query.)
#[derive(Debug, Clone, Default)]
pub struct SessionRoute {
    headers: HeaderMap,
}

impl SessionRoute {
    pub fn of(request: &HeaderMap) -> SessionRoute {
        let mut headers = HeaderMap::new();
        for name in [header::HOST, HeaderName::from_static(SESSION_ID), HeaderName::from_static(PROTOCOL_VERSION)] {
            if let Some(value) = request.get(&name) {
                headers.insert(name, value.clone());
            }
        }
        SessionRoute { headers }
    }
}

/// How many times a rewritten message may be rewritten again before the gateway gives up.
const MAX_REWRITES: usize = 3;

impl Gateway {
    /// Detectors, then policy, on a client→server message. `Ok((None, _))` lets it through
    /// as it came; `Ok((Some(m), _))` forwards `m` instead: the message as redacted by
    /// policy, which went through detectors and policy again. Either way it must still pass
    /// the admission the last evaluation attached (rate limits, approval).
    pub fn decide_client_message(
        &self,
        cx: &Context<'_>,
        message: &Message,
    ) -> Result<(Option<Message>, Admission), Refusal> {
        let Some(policy) = &self.policy else { return Ok((None, Admission::default())) };
        let tool = message.subject().filter(|_| message.method() == Some("tools/call")).unwrap_or_default();
        // Borrowed until policy rewrites it: most messages are never copied.
        let mut current = Cow::Borrowed(message);
        for rewrites in 0..=MAX_REWRITES {
            let (evaluation, findings) = self.tools.with_definition(tool, |definition| {
                let findings = self.detect(Scan::client(&current), definition)?;
                let input = PolicyInput::for_message(
                    cx.principal,
                    &current,
                    Direction::ClientToServer,
                    cx.session.clone(),
                    cx.request.clone(),
                    definition,
                )
                .with_findings(&findings)
                .with_pin_status(self.pins.status(tool));
                let outcome = policy.evaluate(&input);
                cx.evidence.note(&input, Direction::ClientToServer, &outcome);
                outcome.map(|e| (e, findings)).map_err(|e| self.policy_failed(&e))
            })?;
            if let Some(refusal) = refusal_of(&evaluation) {
                return Err(refusal);
            }
            let rewritten = evaluation.enforced.then(|| rewrite(&current, &evaluation, None)).flatten();
            match rewritten {
                Some(rewritten) => current = Cow::Owned(rewritten),
                None => return Ok(((rewrites > 0).then(|| current.into_owned()), admission_of(&evaluation, findings))),
            }
        }
        Err(Refusal {
            code: "policy_error".into(),
            message: "policy kept rewriting the message; it is refused".into(),
            ..Default::default()
        })
    }

    /// [`Gateway::decide_client_message`] on every message of a payload: the payload and
    /// bytes to forward (re-serialized when policy rewrote a message) with each message's
    /// admission, or the refusal and the id to answer it with.
    pub fn decide_client_payload(
        &self,
        cx: &Context<'_>,
        payload: Payload,
        bytes: Bytes,
    ) -> Result<Evaluated, (Option<Id>, Refusal)> {
        let mut rewritten = Vec::new();
        let mut admissions = Vec::with_capacity(payload.messages().len());
        for (i, message) in payload.messages().iter().enumerate() {
            match self.decide_client_message(cx, message) {
                Ok((changed, admission)) => {
                    rewritten.extend(changed.map(|m| (i, m)));
                    admissions.push(admission);
                }
                Err(refusal) => return Err((payload.sole_request_id().cloned(), refusal)),
            }
        }
        if rewritten.is_empty() {
            return Ok(Evaluated { payload, bytes, admissions });
        }
        let payload = match payload {
            Payload::Single(_) => Payload::Single(rewritten.pop().expect("one message").1),
            Payload::Batch(mut messages) => {
                for (i, m) in rewritten {
                    messages[i] = m;
                }
                Payload::Batch(messages)
            }
        };
        let body = match &payload {
            Payload::Single(m) => m.to_value(),
            Payload::Batch(ms) => Value::Array(ms.iter().map(Message::to_value).collect()),
        };
        let bytes = Bytes::from(serde_json::to_vec(&body).expect("JSON serializes"));
        Ok(Evaluated { payload, bytes, admissions })
    }

    /// Detectors, then policy, on a server→client message: a response to `answered`, or a
    /// server request or notification (`answered` is `None`).
    pub fn decide_server_message(&self, cx: &Context<'_>, message: &Message, answered: Option<&Request>) -> Verdict {
        let Some(policy) = &self.policy else { return Verdict::Forward };
        let mut current = Cow::Borrowed(message);
        let tool = answered.filter(|r| r.method == "tools/call").and_then(Request::subject).unwrap_or_default();
        for rewrites in 0..=MAX_REWRITES {
            let evaluation = self.tools.with_definition(tool, |definition| {
                let mut findings = self.detect(Scan::server(&current, answered), definition)?;
                findings.extend(self.pin_findings(&current, answered));
                let mut input = PolicyInput::for_message(
                    cx.principal,
                    &current,
                    Direction::ServerToClient,
                    cx.session.clone(),
                    cx.request.clone(),
                    definition,
                )
                .with_findings(&findings)
                .with_pin_status(self.pins.status(tool));
                if let Some(request) = answered {
                    input = input.in_reply_to(request, definition);
                }
                let outcome = policy.evaluate(&input);
                cx.evidence.note(&input, Direction::ServerToClient, &outcome);
                outcome.map_err(|e| self.policy_failed(&e))
            });
            let evaluation = match evaluation {
                Ok(e) => e,
                Err(refusal) => return withhold(&current, refusal),
            };
            if let Some(refusal) = refusal_of(&evaluation).or_else(|| approval_not_possible(&evaluation)) {
                return withhold(&current, refusal);
            }
            if !evaluation.enforced {
                return if rewrites == 0 { Verdict::Forward } else { Verdict::Replace(current.into_owned()) };
            }
            match rewrite(&current, &evaluation, answered) {
                Some(rewritten) => current = Cow::Owned(rewritten),
                None if rewrites == 0 => return Verdict::Forward,
                None => return Verdict::Replace(current.into_owned()),
            }
        }
        let refusal = Refusal {
            code: "policy_error".into(),
            message: "policy kept rewriting the message; it is withheld".into(),
            ..Default::default()
        };
        withhold(&current, refusal)
    }

    /// Sends `answer` — the error refusing a server's request — to the upstream on the
    /// session the request came on, as the client's own answer would have gone. It runs in
    /// the background: the stream it came on keeps flowing meanwhile.
    pub fn answer_upstream(self: &Arc<Self>, session: &SessionRoute, path: String, answer: Response) {
        let message = Message::Response(answer);
        let body = Bytes::from(serde_json::to_vec(&message.to_value()).expect("JSON serializes"));
        let mut headers = session.headers.clone();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
        let outbound = crate::upstream::Outbound {
            method: Method::POST,
            path_and_query: path,
            authority: None,
            headers,
            body,
            payload: Some(crate::mcp::jsonrpc::Payload::Single(message)),
        };
        let gw = self.clone();
        tokio::spawn(async move {
            match gw.upstream.send(outbound).await {
                Ok(response) if response.status().is_success() => {
                    tracing::info!("answered a refused server request to the upstream");
                }
                Ok(response) => {
                    tracing::warn!(
                        status = response.status().as_u16(),
                        "the upstream refused the answer to its refused request"
                    );
                }
                Err(e) => {
                    gw.metrics.upstream_errors.with_label_values(&[e.kind.label()]).inc();
                    tracing::warn!(error = %e, "could not answer a refused server request to the upstream");
                }
            }
        });
    }

    /// The detector plugins' findings on a scan; a plugin failing closed refuses the message.
    fn detect(&self, scan: Option<Scan<'_>>, definition: Option<&Value>) -> Result<Vec<Finding>, Refusal> {
        let (Some(plugins), Some(scan)) = (&self.plugins, scan) else { return Ok(Vec::new()) };
        plugins.detect(&scan, definition).map_err(|failure| Refusal {
            code: "plugin_error".into(),
            message: failure.to_string(),
            ..Default::default()
        })
    }

    /// A listing's tools whose definitions differ from their pins.
    fn pin_findings(&self, message: &Message, answered: Option<&Request>) -> Vec<Finding> {
        let lists = answered.is_some_and(|r| r.method == "tools/list" || r.method == "server/discover");
        let tools = match message {
            Message::Response(r) if lists => r.result().and_then(|r| r.get("tools")).and_then(Value::as_array),
            _ => None,
        };
        tools.map(|tools| self.pins.findings(tools)).unwrap_or_default()
    }

    fn policy_failed(&self, e: &crate::policy::PolicyError) -> Refusal {
        tracing::error!(error = %e, "policy evaluation failed; refusing the message");
        let reason = e.deny_reason();
        Refusal { code: reason.code, message: reason.message, ..Default::default() }
    }
}

fn refusal_of(evaluation: &Evaluation) -> Option<Refusal> {
    if evaluation.would_deny() && !evaluation.enforced {
        tracing::info!(decision_id = %evaluation.decision_id, code = %evaluation.decision.code, "audit mode: policy would refuse this message");
    }
    evaluation.deny_reason().map(|reason| Refusal {
        code: reason.code,
        message: reason.message,
        decision_id: Some(evaluation.decision_id.clone()),
        required_scopes: evaluation.decision.required_scopes.clone(),
    })
}

/// Only a client's call can wait for an approver: a server message policy wants approved
/// is withheld rather than let through unapproved.
fn approval_not_possible(evaluation: &Evaluation) -> Option<Refusal> {
    let approval = &evaluation.decision.obligations.require_approval;
    (approval.required && evaluation.enforced).then(|| Refusal {
        code: "approval_required".into(),
        message: format!("approval is required ({}), but only a client's call can wait for one", approval.reason),
        decision_id: Some(evaluation.decision_id.clone()),
        ..Default::default()
    })
}

/// The approval and rate limit a decision attached; in audit mode they are only logged.
fn admission_of(evaluation: &Evaluation, findings: Vec<Finding>) -> Admission {
    let obligations = &evaluation.decision.obligations;
    let approval = obligations.require_approval.required.then(|| obligations.require_approval.reason.clone());
    if !evaluation.enforced {
        if approval.is_some() || obligations.rate_limit.is_some() {
            tracing::info!(decision_id = %evaluation.decision_id, "audit mode: policy would require approval or a rate limit");
        }
        return Admission::default();
    }
    Admission {
        approval,
        rate_limit: obligations.rate_limit.clone(),
        bundle_revision: evaluation.bundle_revision.to_string(),
        findings,
    }
}

/// A refused response becomes an error answering the same request; a refused server request
/// is answered to the upstream with that error instead; a refused notification is not relayed.
fn withhold(message: &Message, refusal: Refusal) -> Verdict {
    tracing::warn!(code = %refusal.code, reason = %refusal.message, "policy withheld a message from the upstream");
    let error = |id: Option<Id>| Response { id, outcome: Outcome::Error(refusal_error(&refusal)) };
    match message {
        Message::Response(response) => Verdict::Replace(Message::Response(error(response.id.clone()))),
        Message::Request(request) => Verdict::Answer(error(Some(request.id.clone()))),
        Message::Notification(_) => Verdict::Drop,
    }
}

/// The JSON-RPC error a refusal is reported as.
pub fn refusal_error(refusal: &Refusal) -> crate::mcp::jsonrpc::ErrorObject {
    crate::mcp::jsonrpc::ErrorObject {
        code: crate::mcp::jsonrpc::code::POLICY_DENIED,
        message: format!("Refused by policy: {}", refusal.message),
        data: Some(serde_json::json!({ "code": refusal.code, "decision_id": refusal.decision_id })),
    }
}

/// Applies the decision's obligations: hidden tools leave a listing, redacted strings are
/// replaced (in a response, or in a client's request before it is forwarded). `None` when
/// there is nothing to change.
fn rewrite(message: &Message, evaluation: &Evaluation, answered: Option<&Request>) -> Option<Message> {
    let obligations = &evaluation.decision.obligations;
    if let Message::Response(Response { outcome: Outcome::Error(_), .. }) = message {
        return None;
    }
    let lists_tools = answered.is_some_and(|r| r.method == "tools/list" || r.method == "server/discover");
    // Most decisions oblige nothing: skip copying the message into a JSON tree for them.
    if obligations.redact.is_empty() && (!lists_tools || obligations.hide_tools.is_empty()) {
        return None;
    }
    let mut value = message.to_value();
    let mut changed = false;
    if lists_tools && !obligations.hide_tools.is_empty() {
        if let Some(tools) = value.pointer_mut("/result/tools").and_then(Value::as_array_mut) {
            let before = tools.len();
            tools.retain(|t| !t["name"].as_str().is_some_and(|n| obligations.hide_tools.iter().any(|h| h == n)));
            if tools.len() != before {
                changed = true;
                // A list filtered for this caller must never be cached for others.
                if let Some(scope) = value.pointer_mut("/result/cacheScope") {
                    *scope = Value::String("private".into());
                }
            }
        }
    }
    // Later spans first, so the offsets of earlier ones in the same string stay valid.
    let mut redactions: Vec<_> = obligations.redact.iter().collect();
    redactions.sort_by_key(|r| std::cmp::Reverse(r.span.map_or(0, |s| s.start)));
    for redaction in redactions {
        let Some(Value::String(text)) = value.pointer_mut(&redaction.pointer) else { continue };
        let replaced = match redaction.span {
            Some(span)
                if span.end <= text.len() && text.is_char_boundary(span.start) && text.is_char_boundary(span.end) =>
            {
                format!("{}{}{}", &text[..span.start], redaction.replacement, &text[span.end..])
            }
            // No span, or one that does not fit the string: replace the whole value.
            _ => redaction.replacement.clone(),
        };
        if *text != replaced {
            *text = replaced;
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    let bytes = serde_json::to_vec(&value).ok()?;
    match crate::mcp::jsonrpc::parse(&bytes, usize::MAX / 2) {
        Ok(crate::mcp::jsonrpc::Payload::Single(m)) => Some(m),
        _ => None,
    }
}
