//! The per-message decision path, top to bottom, in one place.
//!
//! Client → server (a POST to the MCP endpoint or a legacy message endpoint):
//!
//!   1. read the body within the size and time limits
//!   2. parse it strictly into the typed message model (single or batch)
//!   3. check the mirrored `Mcp-*` headers against the body (HeaderMismatch, -32020)
//!   4. identify the caller (a verified bearer JWT, an mTLS identity, or anonymous where
//!      configuration allows it), and refuse one whose access was revoked
//!   5. tool-pin status → request detectors → policy → enforce (a redacted message is
//!      detected and evaluated again), then the rate limits and human approvals the
//!      decisions attached (src/admission.rs)
//!   6. forward the message *as evaluated* to the upstream
//!
//! Server → client (the JSON body or every SSE event of the response, and GET streams):
//!
//!   7. parse every message; a message that cannot be read is not forwarded
//!   8. learn from results (sessions opened, tool definitions listed)
//!   9. pin findings and response / tool-list detectors → policy on results
//!  10. evidence: a record of the exchange for the log, and a signature on what the client
//!      receives (headers on a JSON body, `_meta` on each SSE result)
//!
//! Each stage only ever sees a message the stages before it accepted; a later stage that
//! rewrites a message must send it through the checks again, not trust it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::Value;

use crate::admission::Admitted;
use crate::body::{self, Body, ReadError};
use crate::enforce::{refusal_error, Context, Evaluated, Refusal, SessionRoute, Verdict};
use crate::evidence::{AppendError, Pending, Unanswered};
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::mcp::headers::{self, SESSION_ID};
use crate::mcp::jsonrpc::{self, code, Id, Message, Payload, Request as JsonRpcRequest};
use crate::mcp::session::SessionInfo;
use crate::mcp::sse;
use crate::policy::{RequestView, SessionView};
use crate::server::ConnInfo;
use crate::stream::InspectedSse;
use crate::upstream::{Outbound, UpstreamError};

/// Handles one JSON-RPC POST: to the MCP endpoint, or to a legacy HTTP+SSE message endpoint.
pub async fn mcp_post(gw: Arc<Gateway>, req: Request<Incoming>, conn: Arc<ConnInfo>) -> Response<Body> {
    let started = Instant::now();
    let (parts, incoming) = req.into_parts();
    let limits = gw.config.limits.clone();
    let log = AccessLog::new(&parts.headers, started);

    // 1. The body, within limits.
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes) {
        let too_large = body_too_large(limits.max_body_bytes);
        return gw.refuse_limit(&log, "body_size", 0, StatusCode::PAYLOAD_TOO_LARGE, too_large);
    }
    let bytes = match body::read_counted(body::boxed(incoming), limits.max_body_bytes, limits.body_read_timeout).await {
        Ok(b) => b,
        Err((ReadError::TooLarge(n), received)) => {
            return gw.refuse_limit(&log, "body_size", received, StatusCode::PAYLOAD_TOO_LARGE, body_too_large(n))
        }
        Err((ReadError::Timeout(t), received)) => {
            let message = format!("request body not received within {t:?}");
            let refusal = (code::REQUEST_TIMEOUT, message);
            return gw.refuse_limit(&log, "body_timeout", received, StatusCode::REQUEST_TIMEOUT, refusal);
        }
        Err((ReadError::Io(e), received)) => {
            // The client is most likely gone, but what it started is on record.
            tracing::debug!(error = %e, received, "client aborted the request body");
            let refusal = (code::INVALID_REQUEST, format!("request body aborted after {received} bytes"));
            return gw.refuse_limit(&log, "body_aborted", received, StatusCode::BAD_REQUEST, refusal);
        }
    };
    decide_and_forward(gw, parts, bytes, conn, log).await
}

/// Steps 2–10 on a POST whose body was read; a call held for approval runs them again
/// once it is decided (src/admission.rs).
pub(crate) async fn decide_and_forward(
    gw: Arc<Gateway>,
    mut parts: http::request::Parts,
    bytes: Bytes,
    conn: Arc<ConnInfo>,
    mut log: AccessLog,
) -> Response<Body> {
    let limits = gw.config.limits.clone();

    // 2. Strict parse into the typed model.
    let payload = match jsonrpc::parse(&bytes, limits.max_json_depth) {
        Ok(p) => p,
        Err(e) => {
            let reason = if e.code == code::PARSE_ERROR { "parse_error" } else { "invalid_request" };
            if e.depth_exceeded {
                gw.metrics.limit_rejections.with_label_values(&["json_depth"]).inc();
            }
            return gw.refuse(&log, &bytes, reason, StatusCode::BAD_REQUEST, e.id.as_ref(), e.code, &e.message);
        }
    };
    log.describe(&payload);
    crate::telemetry::tracing_otel::describe(&payload, &parts.headers, log.session.as_deref());
    // The gateway's span goes into `_meta` before any check, so what is checked is what goes on.
    let (payload, bytes) = crate::telemetry::tracing_otel::inject_meta(payload, bytes);

    // 3. Mirrored headers agree with the body.
    if let Err(mismatch) = gw.check_headers(&parts.headers, &payload) {
        let id = payload.sole_request_id().cloned();
        return gw.refuse(
            &log,
            &bytes,
            "header_mismatch",
            StatusCode::BAD_REQUEST,
            id.as_ref(),
            code::HEADER_MISMATCH,
            &mismatch.to_string(),
        );
    }

    // 4. Who is calling.
    let methods_called: Vec<&str> = payload.messages().iter().filter_map(Message::method).collect();
    let principal = match gw.identify(&parts, &conn, &methods_called).await {
        Ok(p) => p,
        Err(e) => return gw.unauthenticated(&log, &bytes, payload.sole_request_id(), e),
    };
    log.principal = principal.label();
    // 4b. Not a caller whose access was revoked (src/state/revocations.rs).
    if let Err(refused) = gw.revocations.admit(&principal) {
        return gw.refuse_revoked(&log, &bytes, payload.sole_request_id(), &refused);
    }

    for message in payload.messages() {
        gw.metrics.messages.with_label_values(&["client_to_server", kind(message)]).inc();
    }

    // 5. Tool pin status and request detectors, then policy, on every message. A batch is
    // refused whole if any of its messages is; a message policy redacted is what goes on.
    // Evaluations are noted for the exchange's evidence record.
    let evidence = gw.evidence.as_ref().map(|e| {
        e.begin(&principal, log.session.as_deref(), &log.method, log.subject.as_deref(), log.id.as_deref(), &bytes)
    });
    let cx = Context {
        principal: &principal,
        session: gw.session_view(log.session.as_deref()),
        request: RequestView::from_parts(Some(conn.remote.ip()), &parts.headers, &gw.policy_headers),
        evidence: Pending::trail(&evidence),
    };
    let received = bytes.clone();
    let Evaluated { payload, bytes, admissions } = match gw.decide_client_payload(&cx, payload, bytes) {
        Ok(evaluated) => evaluated,
        Err((id, refusal)) => return gw.refuse_by_policy(&log, &principal, id.as_ref(), &refusal, evidence.as_ref()),
    };
    if bytes != received {
        gw.mirror_param_headers(&mut parts.headers, &payload);
    }

    // 5b. The rate limits and human approvals those decisions attached.
    // A client reading a streaming answer may be held open until a human decides.
    let may_hold = gw.may_hold(&parts);
    let released = crate::admission::is_release(&parts);
    let approval = match gw.admit(&log, &principal, &payload, &admissions, may_hold).await {
        Admitted::Forward(approval) => approval,
        Admitted::Answer(held) => return gw.answer_held(&log, payload.sole_request_id(), held, evidence),
        Admitted::Wait(wait) => return gw.hold(wait, &log, parts, bytes, conn),
        // The client's answer to the gateway's own approval elicitation goes no further.
        Admitted::Consumed => return gw.accepted(&log),
    };

    // 6. Forward what was evaluated.
    let requests: HashMap<Id, JsonRpcRequest> = payload.requests().map(|r| (r.id.clone(), r.clone())).collect();
    let initialize = payload.requests().find(|r| r.method == "initialize").cloned();
    let reply_id = payload.sole_request_id().cloned();
    let route = SessionRoute::of(&parts.headers);
    gw.auth.strip_credentials(&mut parts.headers);
    crate::telemetry::tracing_otel::inject_headers(&mut parts.headers);
    // On the legacy transport the answers come on the session's SSE stream, not here.
    if parts.uri.path() != gw.mcp_path {
        gw.expect_legacy_answers(&path_and_query(&parts.uri), payload.requests());
    }
    // Bytes are shared, not copied: the evidence digests what the upstream received.
    let forwarded = bytes.clone();
    let outbound = Outbound {
        method: Method::POST,
        path_and_query: path_and_query(&parts.uri),
        authority: parts.uri.authority().map(|a| a.to_string()),
        headers: parts.headers,
        body: bytes,
        payload: Some(payload),
    };
    let response = match gw.upstream.send(outbound).await {
        Ok(r) => r,
        Err(e) => return gw.upstream_failed(&log, evidence.as_ref(), reply_id.as_ref(), e),
    };

    // 7–9. The response, message by message.
    let (mut head, upstream_body) = response.into_parts();
    let session = head.headers.get(SESSION_ID).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let (Some(init), Some(id)) = (&initialize, &session) {
        let params = init.params.as_ref();
        gw.sessions.open(
            id,
            SessionInfo {
                protocol_version: params.and_then(|p| p.get("protocolVersion")?.as_str().map(str::to_owned)),
                client_info: params.and_then(|p| p.get("clientInfo").cloned()),
                url_elicitation: params
                    .and_then(|p| p.pointer("/capabilities/elicitation/url"))
                    .is_some_and(Value::is_object),
                started: Instant::now(),
            },
        );
    }
    if head.status == StatusCode::NOT_FOUND {
        if let Some(id) = log.session.as_deref() {
            gw.sessions.close(id);
        }
    }
    let session = session.or_else(|| log.session.clone());
    let context = ResponseContext {
        gw: gw.clone(),
        requests,
        cx: cx.into_owned(&gw, session.as_deref()),
        session,
        route,
        legacy_endpoint: Default::default(),
        evidence: evidence.map(|e| e.forwarded(&forwarded).admitted(None, approval)),
    };
    let response = match content_type(&head.headers) {
        ContentType::EventStream => {
            gw.relay_sse(head, upstream_body, Box::new(move |event: sse::Event| context.on_event(event)))
        }
        ContentType::Json => {
            let read =
                body::read_limited(upstream_body, limits.max_upstream_message_bytes, gw.config.upstream.timeout).await;
            let bytes = match read {
                Ok(b) => b,
                Err(e) => {
                    return gw.upstream_failed(&log, context.evidence.as_ref(), reply_id.as_ref(), read_failure(e))
                }
            };
            let bytes = match context.on_json(bytes) {
                Ok(bytes) => bytes,
                Err(e) => {
                    let e = UpstreamError::new(crate::upstream::ErrorKind::InvalidResponse, e.message);
                    return gw.upstream_failed(&log, context.evidence.as_ref(), reply_id.as_ref(), e);
                }
            };
            // 10. Evidence for the body as relayed. A released call's client is reading an
            // event stream (src/admission/hold.rs): the answer goes to it as one event whose
            // result carries its evidence in `_meta`, as every SSE result does.
            // (A withheld, empty answer goes the JSON way: the hold turns it into an error.)
            let relayed = released.then(|| jsonrpc::parse(&bytes, limits.max_json_depth).ok()).flatten();
            if let Some(payload) = relayed {
                return match context.released_event(&payload, &bytes) {
                    Ok(event) => {
                        gw.finish(&log, head.status, outcome_of(head.status));
                        event
                    }
                    Err(e) => gw.evidence_failed(&log, reply_id.as_ref(), e),
                };
            }
            head.headers.insert(header::CONTENT_LENGTH, bytes.len().into());
            let answered = reply_id.as_ref().and_then(|id| context.requests.get(id));
            if let Err(e) = context.seal_json(&mut head, answered, &bytes) {
                return gw.evidence_failed(&log, reply_id.as_ref(), e);
            }
            Response::from_parts(head, body::full(bytes))
        }
        // A success carrying something other than JSON-RPC cannot be inspected, so it is
        // not relayed. The upstream's own error pages (4xx/5xx), empty bodies, and 202s (the
        // legacy transport's "Accepted": its answer comes on the SSE stream) pass.
        ContentType::Other if head.status.is_success() && head.status != StatusCode::ACCEPTED => {
            let read =
                body::read_limited(upstream_body, limits.max_upstream_message_bytes, gw.config.upstream.timeout).await;
            match read {
                Ok(bytes) if bytes.is_empty() => Response::from_parts(head, body::empty()),
                Ok(_) => {
                    let message = "a success response that is neither JSON nor an event stream";
                    let e = UpstreamError::new(crate::upstream::ErrorKind::InvalidResponse, message);
                    return gw.upstream_failed(&log, context.evidence.as_ref(), reply_id.as_ref(), e);
                }
                Err(e) => {
                    return gw.upstream_failed(&log, context.evidence.as_ref(), reply_id.as_ref(), read_failure(e))
                }
            }
        }
        ContentType::Other => Response::from_parts(head, upstream_body),
    };
    gw.finish(&log, response.status(), outcome_of(response.status()));
    response
}

/// Handles the streams that are not a JSON-RPC POST: the stateful GET stream, DELETE of a
/// session, and the legacy 2024-11-05 `GET /sse` stream.
pub async fn mcp_stream(gw: Arc<Gateway>, req: Request<Incoming>, conn: Arc<ConnInfo>) -> Response<Body> {
    let mut log = AccessLog::new(req.headers(), Instant::now());
    log.method = format!("{} {}", req.method(), req.uri().path());
    let (mut parts, _) = req.into_parts();
    let principal = match gw.identify(&parts, &conn, &[]).await {
        Ok(principal) => principal,
        Err(e) => return gw.unauthenticated(&log, b"", None, e),
    };
    log.principal = principal.label();
    if let Err(refused) = gw.revocations.admit(&principal) {
        return gw.refuse_revoked(&log, b"", None, &refused);
    }
    let request_view = RequestView::from_parts(Some(conn.remote.ip()), &parts.headers, &gw.policy_headers);
    gw.auth.strip_credentials(&mut parts.headers);
    let req = Request::from_parts(parts, ());
    let legacy = req.method() == Method::GET && req.uri().path() == gw.config.routes.legacy_sse_path;
    let outbound = Outbound {
        method: req.method().clone(),
        path_and_query: path_and_query(req.uri()),
        authority: req.uri().authority().map(|a| a.to_string()),
        headers: req.headers().clone(),
        body: Bytes::new(),
        payload: None,
    };
    let deleting = req.method() == Method::DELETE;
    let response = match gw.upstream.send(outbound).await {
        Ok(r) => r,
        Err(e) => return gw.upstream_failed(&log, None, None, e),
    };
    if deleting && (response.status().is_success() || response.status() == StatusCode::NOT_FOUND) {
        if let Some(id) = log.session.as_deref() {
            gw.sessions.close(id);
        }
    }
    let (head, upstream_body) = response.into_parts();
    let response = if content_type(&head.headers) == ContentType::EventStream {
        let evidence =
            gw.evidence.as_ref().map(|e| e.begin(&principal, log.session.as_deref(), &log.method, None, None, b""));
        let cx = OwnedContext { principal, session: gw.session_view(log.session.as_deref()), request: request_view };
        let context = ResponseContext {
            gw: gw.clone(),
            requests: HashMap::new(),
            cx,
            session: log.session.clone(),
            route: SessionRoute::of(req.headers()),
            legacy_endpoint: Default::default(),
            evidence,
        };
        let on_event: crate::stream::OnEvent = if legacy {
            Box::new(move |event| context.on_legacy_event(event))
        } else {
            Box::new(move |event| context.on_event(event))
        };
        gw.relay_sse(head, upstream_body, on_event)
    } else {
        Response::from_parts(head, upstream_body)
    };
    gw.finish(&log, response.status(), outcome_of(response.status()));
    response
}

/// What the response side needs to know about the request it answers.
struct ResponseContext {
    gw: Arc<Gateway>,
    /// The requests this response answers, by id.
    requests: HashMap<Id, JsonRpcRequest>,
    cx: OwnedContext,
    session: Option<String>,
    /// Where to answer the server's requests that policy refuses.
    route: SessionRoute,
    /// A legacy stream's message endpoint (path and query), once announced.
    legacy_endpoint: std::sync::Mutex<Option<String>>,
    /// `None` when evidence is off.
    evidence: Option<Pending>,
}

/// [`Context`] with owned parts, to live as long as a response stream.
struct OwnedContext {
    principal: Principal,
    session: Option<SessionView>,
    request: RequestView,
}

impl Context<'_> {
    fn into_owned(self, gw: &Gateway, session: Option<&str>) -> OwnedContext {
        // The upstream may have just opened the session this response belongs to.
        let session = self.session.or_else(|| gw.session_view(session));
        OwnedContext { principal: self.principal.clone(), session, request: self.request }
    }
}

impl ResponseContext {
    /// A JSON response body: every message must parse, or none of it is forwarded. Returns
    /// the body to relay (rewritten if policy changed any message).
    fn on_json(&self, bytes: Bytes) -> Result<Bytes, jsonrpc::ParseError> {
        if bytes.is_empty() {
            return Ok(bytes);
        }
        let payload = jsonrpc::parse(&bytes, self.gw.config.limits.max_json_depth)?;
        Ok(self.review(&payload).unwrap_or(bytes))
    }

    /// One SSE event: messages are inspected; one that cannot be read is dropped, not relayed.
    fn on_event(&self, event: sse::Event) -> Option<Bytes> {
        if !event.is_message() {
            return Some(event.raw);
        }
        let data = event.data.as_deref().unwrap_or_default();
        if data.is_empty() {
            // Priming events (an id and empty data) carry no message.
            return Some(event.raw);
        }
        match jsonrpc::parse(data.as_bytes(), self.gw.config.limits.max_json_depth) {
            Ok(payload) => {
                let relayed = match self.review(&payload) {
                    None => None,
                    Some(rewritten) if rewritten.is_empty() => return None,
                    Some(rewritten) => Some(rewritten),
                };
                // 10. Evidence for the message(s) as relayed.
                let sealed = match &relayed {
                    None => self.seal_event(&payload, data.as_bytes()),
                    Some(rewritten) => match jsonrpc::parse(rewritten, usize::MAX / 2) {
                        Ok(rewritten_payload) => self.seal_event(&rewritten_payload, rewritten),
                        Err(_) => Ok(None),
                    },
                };
                let sealed = match sealed {
                    Ok(sealed) => sealed.map(Bytes::from).or(relayed),
                    // No evidence, no message: the client sees the stream go quiet for it.
                    Err(_) => return None,
                };
                match sealed {
                    None => Some(event.raw),
                    Some(bytes) => {
                        let data = String::from_utf8_lossy(&bytes);
                        Some(sse::Event::encode(event.event.as_deref(), event.id.as_deref(), &data))
                    }
                }
            }
            Err(e) => {
                self.gw.metrics.upstream_errors.with_label_values(&["invalid_response"]).inc();
                tracing::warn!(error = %e, session = self.session.as_deref(), "dropped an unreadable message from the upstream");
                None
            }
        }
    }

    /// The legacy transport announces where to POST messages; the gateway learns the path
    /// and makes sure the client is sent to the gateway, never around it.
    fn on_legacy_event(&self, event: sse::Event) -> Option<Bytes> {
        if event.event.as_deref() != Some("endpoint") {
            return self.on_event(event);
        }
        let announced = event.data.as_deref().unwrap_or_default();
        let Some(relative) = relative_endpoint(announced) else {
            tracing::warn!(endpoint = announced, "legacy SSE endpoint is not a URL; closing the stream's announcement");
            return None;
        };
        let path = relative.split('?').next().unwrap_or_default().to_string();
        self.gw.legacy_endpoints.write().unwrap_or_else(|e| e.into_inner()).insert(path);
        *self.legacy_endpoint.lock().unwrap_or_else(|e| e.into_inner()) = Some(relative.clone());
        Some(sse::Event::encode(Some("endpoint"), event.id.as_deref(), &relative))
    }

    /// Learns from and asks policy about every message of a payload. `None`: relay it as it
    /// came; `Some(bytes)`: relay these instead (empty: nothing).
    fn review(&self, payload: &Payload) -> Option<Bytes> {
        let cx = Context {
            principal: &self.cx.principal,
            session: self.cx.session.clone(),
            request: self.cx.request.clone(),
            evidence: Pending::trail(&self.evidence),
        };
        let verdicts: Vec<Verdict> = payload
            .messages()
            .iter()
            .map(|message| {
                let answered = match message {
                    Message::Response(r) => r.id.as_ref().and_then(|id| self.answered(id)),
                    _ => None,
                };
                self.observe(message, answered.as_deref());
                self.gw.decide_server_message(&cx, message, answered.as_deref())
            })
            .collect();
        if verdicts.iter().all(|v| *v == Verdict::Forward) {
            return None;
        }
        let kept: Vec<Value> = payload
            .messages()
            .iter()
            .zip(verdicts)
            .filter_map(|(message, verdict)| match verdict {
                Verdict::Forward => Some(message.to_value()),
                Verdict::Replace(replacement) => Some(replacement.to_value()),
                Verdict::Drop => None,
                Verdict::Answer(answer) => {
                    self.answer_upstream(answer);
                    None
                }
            })
            .collect();
        let body = match (payload, kept.len()) {
            (_, 0) => return Some(Bytes::new()),
            (Payload::Single(_), _) => kept.into_iter().next().expect("one message"),
            (Payload::Batch(_), _) => Value::Array(kept),
        };
        Some(Bytes::from(serde_json::to_vec(&body).expect("JSON serializes")))
    }

    /// Answers a refused server request upstream: on the legacy transport at the stream's
    /// message endpoint, otherwise at the MCP endpoint on the request's session.
    fn answer_upstream(&self, answer: jsonrpc::Response) {
        let legacy = self.legacy_endpoint.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let path = legacy.unwrap_or_else(|| self.gw.mcp_path.clone());
        self.gw.answer_upstream(&self.route, path, answer);
    }

    /// Records a JSON body and signs the headers relayed with it.
    fn seal_json(
        &self,
        head: &mut http::response::Parts,
        answered: Option<&JsonRpcRequest>,
        body: &[u8],
    ) -> Result<(), AppendError> {
        let (Some(evidence), Some(pending)) = (&self.gw.evidence, &self.evidence) else { return Ok(()) };
        evidence.seal_json(pending, answered, head.status, &mut head.headers, body)
    }

    /// A released call's JSON answer (`bytes`, as relayed) as one SSE event, recorded and
    /// sealed like any event on a stream.
    fn released_event(&self, payload: &Payload, bytes: &Bytes) -> Result<Response<Body>, AppendError> {
        let data = self.seal_event(payload, bytes)?.map(Bytes::from).unwrap_or_else(|| bytes.clone());
        let mut response = Response::new(body::full(sse::Event::encode(None, None, &String::from_utf8_lossy(&data))));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        Ok(response)
    }

    /// Records the message(s) of one SSE event as relayed (`payload`, read from `data`);
    /// returns the event's new data when a result carries its evidence in `_meta`.
    fn seal_event(&self, payload: &Payload, data: &[u8]) -> Result<Option<Vec<u8>>, AppendError> {
        let (Some(evidence), Some(pending)) = (&self.gw.evidence, &self.evidence) else { return Ok(None) };
        let answered = |message: &Message| match message {
            Message::Response(r) => r.id.as_ref().and_then(|id| self.answered(id)),
            _ => None,
        };
        match payload {
            Payload::Single(message) => evidence.seal_message(pending, answered(message).as_deref(), message, data),
            Payload::Batch(messages) => {
                for message in messages {
                    let bytes = serde_json::to_vec(&message.to_value()).expect("JSON serializes");
                    evidence.seal_message(pending, answered(message).as_deref(), message, &bytes)?;
                }
                Ok(None)
            }
        }
    }

    /// The request an answer answers: one of this exchange's, or on a legacy stream, one
    /// POSTed to its message endpoint.
    fn answered(&self, id: &Id) -> Option<std::borrow::Cow<'_, JsonRpcRequest>> {
        if let Some(request) = self.requests.get(id) {
            return Some(std::borrow::Cow::Borrowed(request));
        }
        let endpoint = self.legacy_endpoint.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        self.gw.legacy_answer_to(&endpoint, id).map(std::borrow::Cow::Owned)
    }

    fn observe(&self, message: &Message, answered: Option<&JsonRpcRequest>) {
        let metrics = &self.gw.metrics;
        metrics.messages.with_label_values(&["server_to_client", kind(message)]).inc();
        let Message::Response(response) = message else { return };
        let Some(result) = response.result() else { return };
        let method = answered.map(|r| r.method.as_str());
        match method {
            Some("tools/list" | "server/discover") => self.gw.learn_tools(result),
            Some("initialize") => {
                if let (Some(id), Some(mut info)) =
                    (&self.session, self.session.as_deref().and_then(|s| self.gw.sessions.get(s)))
                {
                    info.protocol_version = result.get("protocolVersion").and_then(Value::as_str).map(str::to_owned);
                    self.gw.sessions.open(id, info);
                }
            }
            _ => {}
        }
    }
}

/// Turns an announced endpoint (relative, or absolute at the upstream) into a path+query.
fn relative_endpoint(announced: &str) -> Option<String> {
    if announced.starts_with('/') {
        return Some(announced.to_string());
    }
    let uri: http::Uri = announced.parse().ok()?;
    uri.path_and_query().map(|pq| pq.as_str().to_string())
}

#[derive(Debug, PartialEq, Eq)]
enum ContentType {
    Json,
    EventStream,
    Other,
}

fn content_type(headers: &HeaderMap) -> ContentType {
    let value = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => ContentType::Json,
        "text/event-stream" => ContentType::EventStream,
        _ => ContentType::Other,
    }
}

fn kind(message: &Message) -> &'static str {
    match message {
        Message::Request(_) => "request",
        Message::Notification(_) => "notification",
        Message::Response(_) => "response",
    }
}

fn path_and_query(uri: &http::Uri) -> String {
    uri.path_and_query().map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string())
}

fn body_too_large(limit: usize) -> (i64, String) {
    (code::REQUEST_TOO_LARGE, format!("request body exceeds the gateway's limit of {limit} bytes"))
}

fn read_failure(e: ReadError) -> UpstreamError {
    use crate::upstream::ErrorKind;
    match e {
        ReadError::TooLarge(n) => UpstreamError::new(ErrorKind::InvalidResponse, format!("response exceeds {n} bytes")),
        ReadError::Timeout(t) => {
            UpstreamError::new(ErrorKind::Timeout, format!("response body not received within {t:?}"))
        }
        ReadError::Io(e) => UpstreamError::new(ErrorKind::Reset, format!("response body: {e}")),
    }
}

fn outcome_of(status: StatusCode) -> &'static str {
    if status.is_success() {
        "ok"
    } else {
        "error"
    }
}

/// What a request the gateway refuses itself had delivered of its body.
#[derive(Clone, Copy)]
enum Received<'a> {
    Whole(&'a [u8]),
    /// This many bytes of a body that was not read whole.
    Partial(usize),
}

/// The answer withheld because its evidence could not be recorded.
fn withheld(id: Option<&Id>, e: AppendError) -> Response<Body> {
    let message = format!("The gateway could not record evidence for this answer, so it is withheld: {e}");
    jsonrpc_error(StatusCode::SERVICE_UNAVAILABLE, id, code::INTERNAL_ERROR, &message)
}

/// A short plain-text answer for failures that are not JSON-RPC.
pub fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(body::full(format!("{text}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// A JSON-RPC error answered by the gateway itself.
pub fn jsonrpc_error(status: StatusCode, id: Option<&Id>, code: i64, message: &str) -> Response<Body> {
    let mut response = Response::new(body::full(jsonrpc::error_response(id, code, message)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The one access-log line (and metrics sample) written per MCP request.
#[derive(Clone)]
pub struct AccessLog {
    started: Instant,
    pub method: String,
    pub subject: Option<String>,
    pub id: Option<String>,
    pub session: Option<String>,
    pub principal: String,
}

impl AccessLog {
    pub(crate) fn new(headers: &HeaderMap, started: Instant) -> Self {
        AccessLog {
            started,
            method: "unknown".into(),
            subject: None,
            id: None,
            session: headers.get(SESSION_ID).and_then(|v| v.to_str().ok()).map(str::to_owned),
            principal: "anonymous".into(),
        }
    }

    fn describe(&mut self, payload: &Payload) {
        match payload {
            Payload::Single(m) => {
                self.method = m.method().unwrap_or("response").to_string();
                self.subject = m.subject().map(str::to_owned);
                self.id = match m {
                    Message::Request(r) => Some(r.id.to_string()),
                    Message::Response(r) => r.id.as_ref().map(Id::to_string),
                    Message::Notification(_) => None,
                };
            }
            Payload::Batch(ms) => self.method = format!("batch[{}]", ms.len()),
        }
    }

    /// The method as a metric label: bounded to MCP's own method names.
    pub fn method_label(&self) -> &str {
        let m = self.method.as_str();
        if jsonrpc::KNOWN_METHODS.contains(&m) || m == "response" || m == "unknown" {
            m
        } else if m.starts_with("batch[") {
            "batch"
        } else if m.contains(' ') {
            "stream"
        } else {
            "other"
        }
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

impl Gateway {
    fn session_view(&self, session: Option<&str>) -> Option<SessionView> {
        let id = session?;
        self.sessions.get(id).map(|info| SessionView::from_info(id, &info))
    }

    /// A policy refusal. When the policy named scopes that would allow the call and the caller
    /// came with a token, the answer is `403` with an `insufficient_scope` challenge (RFC 6750
    /// §3.1, the MCP authorization spec's step-up) so the client can get a token with them.
    fn refuse_by_policy(
        &self,
        log: &AccessLog,
        principal: &Principal,
        id: Option<&Id>,
        refusal: &Refusal,
        evidence: Option<&Pending>,
    ) -> Response<Body> {
        tracing::warn!(code = %refusal.code, reason = %refusal.message, method = %log.method, name = log.subject.as_deref(), principal = %log.principal, "policy refused a client message");
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": id.map_or(Value::Null, Id::to_value),
            "error": refusal_error(refusal).to_value(),
        });
        if refusal.required_scopes.is_empty() {
            return self.answer_json(log, id, &body, "denied", evidence);
        }
        // With a token: 403, ask for more scope (step-up). Without one: 401, naming the scopes
        // to ask for when authorizing (MCP authorization, scope selection).
        let required = refusal.required_scopes.clone();
        let e = match principal.token {
            Some(_) => crate::auth::AuthError::InsufficientScope { required },
            None => crate::auth::AuthError::ScopeRequired { required },
        };
        let mut response = self.answer_json_with_status(log, id, &body, e.status(), "denied", evidence);
        response.headers_mut().insert(header::WWW_AUTHENTICATE, self.auth.challenge(&e));
        response
    }

    /// The gateway's own JSON answer to a request it does not forward, signed and recorded.
    pub(crate) fn answer_json(
        &self,
        log: &AccessLog,
        id: Option<&Id>,
        body: &Value,
        outcome: &str,
        evidence: Option<&Pending>,
    ) -> Response<Body> {
        self.answer_json_with_status(log, id, body, StatusCode::OK, outcome, evidence)
    }

    fn answer_json_with_status(
        &self,
        log: &AccessLog,
        id: Option<&Id>,
        body: &Value,
        status: StatusCode,
        outcome: &str,
        evidence: Option<&Pending>,
    ) -> Response<Body> {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("JSON serializes"));
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let (Some(e), Some(pending)) = (&self.evidence, evidence) {
            if let Err(error) = e.seal_json(pending, None, status, &mut headers, &bytes) {
                return self.evidence_failed(log, id, error);
            }
        }
        self.finish(log, status, outcome);
        let mut response = Response::new(body::full(bytes));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }

    /// The answer cannot go out without its evidence record (`evidence.when_full:
    /// fail_closed`, or a log that cannot write).
    fn evidence_failed(&self, log: &AccessLog, id: Option<&Id>, e: AppendError) -> Response<Body> {
        self.finish(log, StatusCode::SERVICE_UNAVAILABLE, "evidence_error");
        withheld(id, e)
    }

    /// A JSON-RPC error the gateway answers itself, recorded and signed like any answer.
    /// `pending` is the exchange's evidence once policy saw it; before that, a record is
    /// begun from the access log with what was `received` and no principal (nobody was
    /// identified yet).
    #[allow(clippy::too_many_arguments)]
    fn answer_error(
        &self,
        log: &AccessLog,
        pending: Option<&Pending>,
        received: Received<'_>,
        why: Unanswered<'_>,
        status: StatusCode,
        id: Option<&Id>,
        code: i64,
        message: &str,
    ) -> Response<Body> {
        let Some(evidence) = &self.evidence else { return jsonrpc_error(status, id, code, message) };
        let begun;
        let pending = match pending {
            Some(pending) => pending,
            None => {
                let (session, name, request_id) = (log.session.as_deref(), log.subject.as_deref(), log.id.as_deref());
                let whole = match received {
                    Received::Whole(bytes) => bytes,
                    Received::Partial(_) => b"",
                };
                let p = evidence.begin(&Principal::default(), session, &log.method, name, request_id, whole);
                begun = match received {
                    Received::Whole(_) => p,
                    Received::Partial(count) => p.unread(count),
                };
                &begun
            }
        };
        let body = jsonrpc::error_response(id, code, message);
        let mut response = jsonrpc_error(status, id, code, message);
        if let Err(e) = evidence.seal_unanswered(pending, why, status, response.headers_mut(), &body) {
            return withheld(id, e);
        }
        response
    }

    /// The caller: a verified bearer token and/or client certificate. A request without a
    /// token is admitted as the connection's principal only if `auth.mode` allows it for
    /// `methods` (none, for streams).
    async fn identify(
        &self,
        parts: &http::request::Parts,
        conn: &ConnInfo,
        methods: &[&str],
    ) -> Result<Principal, crate::auth::AuthError> {
        let mut principal = Principal::from_connection(conn);
        match self.auth.authenticate(&parts.headers, &parts.uri).await? {
            Some(token) => principal.token = Some(token),
            None => self.auth.admit_anonymous(methods)?,
        }
        Ok(principal)
    }

    fn unauthenticated(
        &self,
        log: &AccessLog,
        received: &[u8],
        id: Option<&Id>,
        e: crate::auth::AuthError,
    ) -> Response<Body> {
        let why = Unanswered::Refused("unauthenticated");
        let message = format!("Unauthorized: {e}");
        let mut response =
            self.answer_error(log, None, Received::Whole(received), why, e.status(), id, code::UNAUTHORIZED, &message);
        self.finish(log, response.status(), "unauthenticated");
        response.headers_mut().insert(header::WWW_AUTHENTICATE, self.auth.challenge(&e));
        response
    }

    fn refuse_revoked(
        &self,
        log: &AccessLog,
        received: &[u8],
        id: Option<&Id>,
        refused: &crate::state::revocations::Refused,
    ) -> Response<Body> {
        use crate::state::revocations::Refused;
        let (reason, status, code) = match refused {
            Refused::Revoked(_) => ("revoked", StatusCode::FORBIDDEN, code::UNAUTHORIZED),
            Refused::Unknown => ("revocation_unavailable", StatusCode::SERVICE_UNAVAILABLE, code::INTERNAL_ERROR),
        };
        self.refuse(log, received, reason, status, id, code, &refused.to_string())
    }

    /// Relays an upstream SSE body event by event through `on_event`.
    fn relay_sse(
        &self,
        mut head: http::response::Parts,
        upstream: Body,
        on_event: crate::stream::OnEvent,
    ) -> Response<Body> {
        // Events may be dropped or rewritten, so the relayed length is not the upstream's.
        head.headers.remove(header::CONTENT_LENGTH);
        let limit = self.config.limits.max_upstream_message_bytes;
        let body = InspectedSse::wrap(upstream, limit, self.metrics.streams_active.clone(), on_event);
        Response::from_parts(head, body)
    }

    fn check_headers(&self, headers: &HeaderMap, payload: &Payload) -> Result<(), headers::HeaderMismatch> {
        let tool = headers::called_tool(payload).unwrap_or_default();
        self.tools.with_params(tool, |params| headers::validate(headers, payload, params))
    }

    /// A redaction rewrote the arguments: the `Mcp-Param-*` headers must not still carry
    /// what was redacted.
    fn mirror_param_headers(&self, headers: &mut HeaderMap, payload: &Payload) {
        let Some(tool) = headers::called_tool(payload) else { return };
        let arguments = payload.messages().first().and_then(|m| m.params()).and_then(|p| p.get("arguments"));
        self.tools.with_params(tool, |params| {
            if let Some(params) = params {
                headers::mirror_params(headers, params, arguments);
            }
        });
    }

    /// Records the outcome of an exchange: one log line, one counter, one latency sample.
    pub(crate) fn finish(&self, log: &AccessLog, status: StatusCode, outcome: &str) {
        let elapsed = log.elapsed();
        let method = log.method_label();
        self.metrics.requests.with_label_values(&[method, outcome]).inc();
        self.metrics.request_duration.with_label_values(&[method, outcome]).observe(elapsed.as_secs_f64());
        if method == "tools/call" {
            let listed = log.subject.as_deref().filter(|tool| self.tools.with_definition(tool, |d| d.is_some()));
            self.metrics.tool_calls.with_label_values(&[outcome, listed.unwrap_or("unlisted")]).inc();
        }
        tracing::info!(
            target: "forge::access",
            method = %log.method,
            name = log.subject.as_deref(),
            id = log.id.as_deref(),
            session = log.session.as_deref(),
            principal = %log.principal,
            status = status.as_u16(),
            outcome,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "mcp request"
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn refuse(
        &self,
        log: &AccessLog,
        received: &[u8],
        reason: &str,
        status: StatusCode,
        id: Option<&Id>,
        code: i64,
        message: &str,
    ) -> Response<Body> {
        self.metrics.protocol_rejections.with_label_values(&[reason]).inc();
        tracing::warn!(reason, code, message, session = log.session.as_deref(), "refused a client message");
        let response = self.answer_error(
            log,
            None,
            Received::Whole(received),
            Unanswered::Refused(reason),
            status,
            id,
            code,
            message,
        );
        self.finish(log, response.status(), "rejected");
        response
    }

    /// A request whose body was not read whole (`received` bytes of it arrived): too large,
    /// too slow, or aborted by the client.
    fn refuse_limit(
        &self,
        log: &AccessLog,
        limit: &str,
        received: usize,
        status: StatusCode,
        (code, message): (i64, String),
    ) -> Response<Body> {
        self.metrics.limit_rejections.with_label_values(&[limit]).inc();
        tracing::warn!(limit, message, "request refused by a limit");
        let why = Unanswered::Refused(limit);
        let response = self.answer_error(log, None, Received::Partial(received), why, status, None, code, &message);
        self.finish(log, response.status(), "rejected");
        response
    }

    fn upstream_failed(
        &self,
        log: &AccessLog,
        pending: Option<&Pending>,
        id: Option<&Id>,
        e: UpstreamError,
    ) -> Response<Body> {
        use crate::upstream::ErrorKind;
        self.metrics.upstream_errors.with_label_values(&[e.kind.label()]).inc();
        tracing::error!(error = %e, method = %log.method, session = log.session.as_deref(), "upstream failed");
        let (status, code) = match e.kind {
            ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, code::UPSTREAM_TIMEOUT),
            ErrorKind::InvalidResponse => (StatusCode::BAD_GATEWAY, code::UPSTREAM_INVALID_RESPONSE),
            _ => (StatusCode::BAD_GATEWAY, code::UPSTREAM_UNAVAILABLE),
        };
        let message = format!("The MCP server behind this gateway failed: {e}");
        let why = Unanswered::Failed(e.kind.label());
        let response = self.answer_error(log, pending, Received::Whole(b""), why, status, id, code, &message);
        self.finish(log, response.status(), "upstream_error");
        response
    }
}
