//! Holding a call that waits for approval on its streaming answer: progress while it waits
//! (and, for a stateful session that can open a page, an elicitation pointing at it), then
//! the call run again through the pipeline, whose answer ends the stream.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{accepts_event_stream, ask, error};
use crate::body::{Body, BoxError};
use crate::gateway::Gateway;
use crate::mcp::jsonrpc::{code, Id};
use crate::pipeline::AccessLog;
use crate::server::ConnInfo;
use crate::state::Approval;

/// A call waiting for approval `approval_id` on a streaming answer.
pub struct Wait {
    pub(super) approval_id: String,
    pub(super) request_id: Id,
    /// The call's `_meta.progressToken`: with one, the client hears progress notifications.
    pub(super) progress_token: Option<Value>,
    /// A stateful session that declared URL elicitation is first sent this
    /// `elicitation/create` request pointing at the approval page.
    pub(super) elicitation: Option<Value>,
}

/// The JSON-RPC id prefix of the gateway's own elicitation requests.
pub(super) const ELICITATION_ID_PREFIX: &str = "forge-approval-";

/// Marks a request run again after its hold: it is not held twice.
#[derive(Clone, Copy)]
struct HeldBefore;

/// Whether this run of a request is the release of a held call, whose answer goes to a
/// client already reading an event stream.
pub fn is_release(parts: &http::request::Parts) -> bool {
    parts.extensions.get::<HeldBefore>().is_some()
}

impl Gateway {
    /// Whether a pending call of this request may be held open: its client reads streaming
    /// answers on the MCP endpoint (the legacy transport answers on another stream), and it
    /// is not already the run after a hold.
    pub fn may_hold(&self, parts: &http::request::Parts) -> bool {
        accepts_event_stream(&parts.headers) && parts.uri.path() == self.mcp_path && !is_release(parts)
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
        // The request is counted and logged once, when its outcome is known, with the hold
        // in its duration.
        let log = log.clone();
        tokio::spawn(async move {
            if !gw.wait_for(&wait, &tx).await {
                tracing::info!(approval_id = %wait.approval_id, "the client left while its call was held; nothing is forwarded");
                gw.finish(&log, StatusCode::OK, "client_left");
                return;
            }
            let answer = crate::pipeline::decide_and_forward(gw.clone(), again, bytes, conn, log).await;
            gw.relay_as_events(answer, &wait.request_id, &tx).await;
        });
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
    pub(super) fn session_elicits_by_url(&self, log: &AccessLog) -> bool {
        log.session.as_deref().and_then(|id| self.sessions.get(id)).is_some_and(|info| info.url_elicitation)
    }

    /// The `elicitation/create` request (URL mode) sending the user to the approval page.
    pub(super) fn elicitation(&self, approval: &Approval) -> Value {
        let request = &approval.request;
        json!({"jsonrpc": "2.0", "id": format!("{ELICITATION_ID_PREFIX}{}", request.id), "method": "elicitation/create", "params": {
            "mode": "url",
            "elicitationId": request.id,
            "url": self.approvals.page_url(&request.id),
            "message": ask(approval),
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
        let present = self.keep_waiting(wait, tx).await;
        if present && wait.elicitation.is_some() {
            let complete = json!({"jsonrpc": "2.0", "method": "notifications/elicitation/complete", "params": {"elicitationId": wait.approval_id}});
            return tx.send(event(&complete)).await.is_ok();
        }
        present
    }

    /// Until the decision or the hold timeout, tells the client every `progress_interval`
    /// that its call still waits; `false` when the client left.
    async fn keep_waiting(&self, wait: &Wait, tx: &mpsc::Sender<Bytes>) -> bool {
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
}

/// One SSE event carrying a JSON-RPC message (serialized on one line).
fn event(message: &Value) -> Bytes {
    Bytes::from(format!("data: {message}\n\n"))
}
