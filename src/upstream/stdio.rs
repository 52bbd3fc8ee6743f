//! An MCP server run as a child process, spoken to in newline-delimited JSON-RPC on its
//! stdin/stdout, and exposed to clients as Streamable HTTP.
//!
//! * Each stateful session (2025-03-26 … 2025-11-25; opened by `initialize`) gets its own
//!   child, because a stdio server serves exactly one client. The gateway mints the
//!   `Mcp-Session-Id`; DELETE ends the session and the child.
//! * Stateless (2026-07-28) requests share one child. Request ids are remapped to ids unique
//!   per child so concurrent clients cannot collide, and restored on the way back.
//! * A request's response, and notifications carrying its progress token, go back on that
//!   POST's SSE stream. Other server messages (sampling, elicitation, roots, list changes)
//!   go on the newest open POST stream, else the session's GET stream, else wait (bounded)
//!   for a GET stream to open.
//! * The child's stderr goes to the log. If the child exits, every request waiting on it is
//!   answered with a JSON-RPC error and the child is restarted (with back-off); a stateful
//!   session's `initialize` is replayed so the session continues.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec};
use tokio_util::sync::CancellationToken;

use super::{Outbound, UpstreamError};
use crate::body::{self, Body, BoxError};
use crate::config::Config;
use crate::mcp::headers::{self, SESSION_ID};
use crate::mcp::jsonrpc::{self, code, Id, Message, Payload};
use crate::mcp::sse;
use crate::pipeline::jsonrpc_error;
use crate::telemetry::metrics::Metrics;

/// Server messages kept for a session with no stream open to take them.
const BACKLOG_LIMIT: usize = 256;
/// Messages buffered per client stream before the child's output is held back.
const STREAM_BUFFER: usize = 64;

pub struct StdioUpstream {
    spec: Arc<ChildSpec>,
    sessions: Mutex<HashMap<String, Arc<Child>>>,
    stateless: Mutex<Option<Arc<Child>>>,
    stop: CancellationToken,
}

struct ChildSpec {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    timeout: Duration,
    max_depth: usize,
    max_line_bytes: usize,
    metrics: Metrics,
    /// The gateway's main runtime. Children, their pipes and their supervisors live there,
    /// not on the serving worker whose request happened to start them: requests from every
    /// worker use a child, and a worker's runtime ends with its drain.
    runtime: tokio::runtime::Handle,
}

impl StdioUpstream {
    /// Called on the main runtime (see `ChildSpec::runtime`).
    pub fn new(program: String, args: Vec<String>, config: &Config, metrics: Metrics) -> Self {
        let spec = ChildSpec {
            program,
            args,
            env: config.upstream.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            timeout: config.upstream.timeout,
            max_depth: config.limits.max_json_depth,
            max_line_bytes: config.limits.max_upstream_message_bytes,
            metrics,
            runtime: tokio::runtime::Handle::current(),
        };
        StdioUpstream {
            spec: Arc::new(spec),
            sessions: Mutex::new(HashMap::new()),
            stateless: Mutex::new(None),
            stop: CancellationToken::new(),
        }
    }

    pub fn describe(&self) -> String {
        format!("stdio:{} {}", self.spec.program, self.spec.args.join(" "))
    }

    /// Ready when the command can be found; children start per session.
    pub fn ready(&self) -> Result<(), String> {
        let program = std::path::Path::new(&self.spec.program);
        let found = if program.components().count() > 1 {
            program.exists()
        } else {
            std::env::var_os("PATH")
                .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        };
        if found {
            Ok(())
        } else {
            Err(format!("stdio upstream command `{}` not found", self.spec.program))
        }
    }

    /// Ends every child.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        lock(&self.sessions).clear();
        lock(&self.stateless).take();
    }

    pub async fn send(&self, out: Outbound) -> Result<Response<Body>, UpstreamError> {
        let session_id = out.headers.get(SESSION_ID).and_then(|v| v.to_str().ok()).map(str::to_owned);
        match out.method {
            Method::POST => {}
            Method::GET => return Ok(self.open_server_stream(session_id.as_deref())),
            Method::DELETE => return Ok(self.end_session(session_id.as_deref())),
            _ => return Ok(status_only(StatusCode::METHOD_NOT_ALLOWED)),
        }
        let Some(payload) = out.payload else {
            return Ok(status_only(StatusCode::BAD_REQUEST));
        };
        let is_initialize = payload.requests().any(|r| r.method == "initialize");
        let (child, new_session) = match (&session_id, is_initialize) {
            (Some(id), _) => match lock(&self.sessions).get(id) {
                Some(child) => (child.clone(), None),
                None => return Ok(session_not_found(payload.sole_request_id())),
            },
            (None, true) => {
                let id = uuid::Uuid::new_v4().to_string();
                let child = Child::start(self.spec.clone(), Some(id.clone()), self.stop.child_token());
                lock(&self.sessions).insert(id.clone(), child.clone());
                (child, Some(id))
            }
            (None, false) if is_stateless(&out.headers, &payload) => (self.stateless_child(), None),
            (None, false) => {
                let message = "Bad Request: Mcp-Session-Id header is required (send initialize first)";
                return Ok(jsonrpc_error(
                    StatusCode::BAD_REQUEST,
                    payload.sole_request_id(),
                    code::INVALID_REQUEST,
                    message,
                ));
            }
        };
        let wants_sse = accepts(&out.headers, "text/event-stream");
        let mut response = child.submit(payload, wants_sse).await;
        if let Some(id) = new_session {
            response.headers_mut().insert(SESSION_ID, HeaderValue::from_str(&id).expect("uuid is a valid header"));
        }
        Ok(response)
    }

    fn stateless_child(&self) -> Arc<Child> {
        let mut shared = lock(&self.stateless);
        shared.get_or_insert_with(|| Child::start(self.spec.clone(), None, self.stop.child_token())).clone()
    }

    fn open_server_stream(&self, session_id: Option<&str>) -> Response<Body> {
        let Some(child) = session_id.and_then(|id| lock(&self.sessions).get(id).cloned()) else {
            return match session_id {
                Some(_) => session_not_found(None),
                None => status_only(StatusCode::METHOD_NOT_ALLOWED),
            };
        };
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        {
            let mut router = lock(&child.router);
            if router.server_stream.as_ref().is_some_and(|s| !s.is_closed()) {
                return status_only(StatusCode::CONFLICT);
            }
            while let Some(message) = router.backlog.pop_front() {
                let _ = tx.try_send(message);
            }
            router.server_stream = Some(tx);
        }
        sse_response(ChannelBody { rx, _guard: None })
    }

    fn end_session(&self, session_id: Option<&str>) -> Response<Body> {
        match session_id.and_then(|id| lock(&self.sessions).remove(id)) {
            Some(child) => {
                child.stop.cancel();
                status_only(StatusCode::OK)
            }
            None => session_not_found(None),
        }
    }
}

/// One child process and the routing state of the messages in flight to and from it.
struct Child {
    /// The session id, or "stateless" for the shared child; for logs.
    label: String,
    /// The shared child of stateless (2026-07-28) requests, which many clients use at once.
    stateless: bool,
    writer: mpsc::UnboundedSender<Vec<u8>>,
    router: Mutex<Router>,
    stop: CancellationToken,
    spec: Arc<ChildSpec>,
}

#[derive(Default)]
struct Router {
    next_id: u64,
    /// Child-side request id → who is waiting for the answer.
    pending: HashMap<u64, Pending>,
    /// Client request id → child-side id, to translate `notifications/cancelled` (stateful
    /// sessions only: on the shared child, ids of different clients collide).
    by_client_id: HashMap<Id, u64>,
    /// Streams of POSTs still waiting, newest last, for unrelated server messages.
    posts: Vec<(u64, mpsc::Sender<Bytes>)>,
    server_stream: Option<mpsc::Sender<Bytes>>,
    backlog: VecDeque<Bytes>,
    /// The session's `initialize` and whether it completed, to replay after a restart.
    initialize: Option<Value>,
    initialized: bool,
}

struct Pending {
    client_id: Id,
    post: u64,
    progress_token: Option<Value>,
    /// `None` once the client stopped listening (stateful sessions reroute the answer).
    tx: Option<mpsc::Sender<Bytes>>,
}

impl Child {
    /// Starts the child for a stateful session, or the shared stateless child (`None`).
    fn start(spec: Arc<ChildSpec>, session: Option<String>, stop: CancellationToken) -> Arc<Child> {
        let (writer, rx) = mpsc::unbounded_channel();
        let stateless = session.is_none();
        let label = session.unwrap_or_else(|| "stateless".into());
        let child = Arc::new(Child { label, stateless, writer, router: Mutex::new(Router::default()), stop, spec });
        child.spec.runtime.spawn(supervise(
            Arc::downgrade(&child),
            child.spec.clone(),
            child.label.clone(),
            child.stop.clone(),
            rx,
        ));
        child
    }

    /// Sends a client payload to the child and answers the POST.
    async fn submit(self: &Arc<Child>, payload: Payload, wants_sse: bool) -> Response<Body> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let mut lines = Vec::new();
        let post;
        let mut waiting = 0;
        {
            let mut router = lock(&self.router);
            router.next_id += 1;
            post = router.next_id;
            for message in payload.messages() {
                lines.push(self.outbound_line(&mut router, message, post, &tx, &mut waiting));
            }
            if waiting > 0 && wants_sse {
                router.posts.push((post, tx.clone()));
            }
        }
        drop(tx);
        for line in lines {
            // The supervisor owns the receiver for the child's whole life.
            let _ = self.writer.send(line);
        }
        if waiting == 0 {
            return status_only(StatusCode::ACCEPTED);
        }
        let guard = PostGuard { child: Arc::downgrade(self), post };
        if wants_sse {
            return sse_response(ChannelBody { rx, _guard: Some(guard) });
        }
        self.collect_json(rx, waiting, guard).await
    }

    /// Serializes one client message for the child, registering requests as pending.
    fn outbound_line(
        &self,
        router: &mut Router,
        message: &Message,
        post: u64,
        tx: &mpsc::Sender<Bytes>,
        waiting: &mut usize,
    ) -> Vec<u8> {
        let mut value = message.to_value();
        match message {
            Message::Request(request) => {
                router.next_id += 1;
                let child_id = router.next_id;
                let progress_token =
                    request.params.as_ref().and_then(|p| p.get("_meta")?.get("progressToken")).cloned();
                router.pending.insert(
                    child_id,
                    Pending { client_id: request.id.clone(), post, progress_token, tx: Some(tx.clone()) },
                );
                if !self.stateless {
                    router.by_client_id.insert(request.id.clone(), child_id);
                }
                value["id"] = child_id.into();
                if request.method == "initialize" {
                    router.initialize = Some(value.clone());
                }
                *waiting += 1;
            }
            Message::Notification(n) if n.method == "notifications/cancelled" => {
                let target = n.params.as_ref().and_then(|p| p.get("requestId")).and_then(id_of);
                if let Some(child_id) = target.and_then(|id| router.by_client_id.get(&id)) {
                    value["params"]["requestId"] = (*child_id).into();
                }
            }
            Message::Notification(n) if n.method == "notifications/initialized" => router.initialized = true,
            _ => {}
        }
        line_of(&value)
    }

    /// For clients that accept only JSON: wait for every answer, then reply in one body.
    /// Notifications about the request (progress) have nowhere to go in a JSON reply and are
    /// dropped, as SDK servers in JSON mode do.
    async fn collect_json(&self, mut rx: mpsc::Receiver<Bytes>, waiting: usize, guard: PostGuard) -> Response<Body> {
        let mut values = Vec::with_capacity(waiting);
        let deadline = tokio::time::Instant::now() + self.spec.timeout;
        let is_response = |v: &Value| v.get("result").is_some() || v.get("error").is_some();
        while values.len() < waiting {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(event)) => values.extend(event_json(&event).filter(is_response)),
                Ok(None) => break,
                Err(_) => {
                    let expired = lock(&self.router).expire(guard.post, &self.spec);
                    values.extend(expired.iter().filter_map(event_json));
                    break;
                }
            }
        }
        drop(guard);
        let body = match <[Value; 1]>::try_from(values) {
            Ok([one]) => one,
            Err(many) => Value::Array(many),
        };
        let mut response = Response::new(body::full(serde_json::to_vec(&body).expect("JSON serializes")));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }

    /// Routes one message the child wrote.
    fn on_child_message(&self, message: Message) {
        let mut router = lock(&self.router);
        match message {
            Message::Response(mut response) => {
                let child_id = response.id.as_ref().and_then(|id| match id {
                    Id::Number(n) => n.as_u64(),
                    Id::String(_) => None,
                });
                let Some(pending) = child_id.and_then(|id| router.pending.remove(&id)) else {
                    tracing::debug!(child = %self.label, "response to no pending request (replayed initialize or expired)");
                    return;
                };
                router.by_client_id.remove(&pending.client_id);
                response.id = Some(pending.client_id.clone());
                let event = event_of(&Message::Response(response));
                match pending.tx {
                    Some(tx) => {
                        let _ = tx.try_send(event);
                    }
                    None => router.deliver_unrelated(event, &self.label),
                }
                router.forget_finished_posts();
            }
            Message::Notification(n) => {
                let token = n.params.as_ref().and_then(|p| p.get("progressToken"));
                let owner = token.and_then(|t| router.pending.values().find(|p| p.progress_token.as_ref() == Some(t)));
                let event = event_of(&Message::Notification(n.clone()));
                match owner.and_then(|p| p.tx.clone()) {
                    Some(tx) => {
                        let _ = tx.try_send(event);
                    }
                    None => router.deliver_unrelated(event, &self.label),
                }
            }
            request @ Message::Request(_) => {
                let event = event_of(&request);
                router.deliver_unrelated(event, &self.label);
            }
        }
    }

    /// The child died: answer everyone waiting with an error.
    fn fail_all(&self, reason: &str) {
        let mut router = lock(&self.router);
        for (_, pending) in router.pending.drain() {
            let error = jsonrpc::error_response(Some(&pending.client_id), code::UPSTREAM_UNAVAILABLE, reason);
            if let Some(tx) = pending.tx {
                let _ = tx.try_send(sse::Event::encode(None, None, &String::from_utf8_lossy(&error)));
            }
        }
        router.by_client_id.clear();
        router.posts.clear();
    }

    /// What to send a freshly restarted child so it continues the session.
    fn replay(&self) -> Vec<Vec<u8>> {
        let router = lock(&self.router);
        let Some(initialize) = &router.initialize else { return Vec::new() };
        let mut init = initialize.clone();
        // An id no pending request uses: the answer is dropped as unknown.
        init["id"] = json!(format!("forge-replay-{}", uuid::Uuid::new_v4()));
        let mut lines = vec![line_of(&init)];
        if router.initialized {
            lines.push(line_of(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})));
        }
        lines
    }
}

impl Router {
    fn deliver_unrelated(&mut self, event: Bytes, label: &str) {
        self.posts.retain(|(_, tx)| !tx.is_closed());
        if let Some((_, tx)) = self.posts.last() {
            if tx.try_send(event.clone()).is_ok() {
                return;
            }
        }
        if let Some(tx) = &self.server_stream {
            if tx.try_send(event.clone()).is_ok() {
                return;
            }
        }
        if self.backlog.len() >= BACKLOG_LIMIT {
            tracing::warn!(child = label, "no client stream is open; dropping the oldest queued server message");
            self.backlog.pop_front();
        }
        self.backlog.push_back(event);
    }

    /// Drops the stream handles of POSTs whose every request has been answered, so their
    /// SSE responses end.
    fn forget_finished_posts(&mut self) {
        let pending = &self.pending;
        self.posts.retain(|(post, _)| pending.values().any(|p| p.post == *post));
    }

    /// Answers a POST's unanswered requests with a timeout error.
    fn expire(&mut self, post: u64, spec: &ChildSpec) -> Vec<Bytes> {
        let expired: Vec<u64> = self.pending.iter().filter(|(_, p)| p.post == post).map(|(id, _)| *id).collect();
        let mut events = Vec::new();
        for child_id in expired {
            if let Some(p) = self.pending.remove(&child_id) {
                self.by_client_id.remove(&p.client_id);
                spec.metrics.upstream_errors.with_label_values(&["timeout"]).inc();
                let message = format!("The MCP server did not answer within {:?}", spec.timeout);
                let error = jsonrpc::error_response(Some(&p.client_id), code::UPSTREAM_TIMEOUT, &message);
                events.push(sse::Event::encode(None, None, &String::from_utf8_lossy(&error)));
            }
        }
        self.forget_finished_posts();
        events
    }
}

/// Runs the child process, restarting it when it exits, until `stop` fires or the
/// session is gone.
async fn supervise(
    child: Weak<Child>,
    spec: Arc<ChildSpec>,
    label: String,
    stop: CancellationToken,
    mut input: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut restarts: VecDeque<Instant> = VecDeque::new();
    let mut replay: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut process = match tokio::process::Command::new(&spec.program)
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(child = %label, program = %spec.program, error = %e, "cannot start the stdio MCP server");
                spec.metrics.upstream_errors.with_label_values(&["connect"]).inc();
                let Some(c) = child.upgrade() else { return };
                c.fail_all(&format!("The MCP server process could not be started: {e}"));
                drop(c);
                if !backoff(&mut restarts, &stop).await {
                    return;
                }
                continue;
            }
        };
        let pid = process.id();
        tracing::info!(child = %label, pid, "started stdio MCP server");
        let mut stdin = process.stdin.take().expect("stdin is piped");
        let stdout = process.stdout.take().expect("stdout is piped");
        let stderr = process.stderr.take().expect("stderr is piped");
        tokio::spawn(log_stderr(stderr, label.clone(), pid));
        let mut lines = FramedRead::new(stdout, LinesCodec::new_with_max_length(spec.max_line_bytes));
        for line in replay.drain(..) {
            let _ = write_line(&mut stdin, &line).await;
        }

        let reason = loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    let _ = process.kill().await;
                    return;
                }
                line = lines.next() => match line {
                    Some(Ok(line)) => {
                        let Some(c) = child.upgrade() else { return };
                        handle_child_line(&c, &line);
                    }
                    Some(Err(e)) => tracing::warn!(child = %label, error = %e, "unreadable output from the stdio MCP server"),
                    None => break "closed its stdout".to_string(),
                },
                next = input.recv() => match next {
                    Some(bytes) => {
                        if let Err(e) = write_line(&mut stdin, &bytes).await {
                            break format!("stdin write failed: {e}");
                        }
                    }
                    None => return,
                },
                status = process.wait() => break match status {
                    Ok(s) => format!("exited ({s})"),
                    Err(e) => format!("could not be waited on: {e}"),
                },
            }
        };
        let _ = process.kill().await;
        spec.metrics.upstream_errors.with_label_values(&["process_exit"]).inc();
        tracing::error!(child = %label, pid, reason = %reason, "stdio MCP server stopped; restarting it");
        let Some(c) = child.upgrade() else { return };
        c.fail_all(&format!("The MCP server process {reason}; it is being restarted. Retry the request."));
        replay = c.replay();
        drop(c);
        if !backoff(&mut restarts, &stop).await {
            return;
        }
    }
}

fn handle_child_line(child: &Child, line: &str) {
    if line.trim().is_empty() {
        return;
    }
    match jsonrpc::parse(line.as_bytes(), child.spec.max_depth) {
        Ok(payload) => {
            let messages = match payload {
                Payload::Single(m) => vec![m],
                Payload::Batch(ms) => ms,
            };
            for message in messages {
                child.on_child_message(message);
            }
        }
        Err(e) => {
            child.spec.metrics.upstream_errors.with_label_values(&["invalid_response"]).inc();
            tracing::warn!(child = %child.label, error = %e, "dropped a line from the stdio MCP server that is not JSON-RPC");
        }
    }
}

/// Waits before a restart: immediately at first, then doubling up to 10 s while the child
/// keeps dying. Returns false when the gateway is stopping.
async fn backoff(restarts: &mut VecDeque<Instant>, stop: &CancellationToken) -> bool {
    let now = Instant::now();
    restarts.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
    restarts.push_back(now);
    let exponent = u32::try_from(restarts.len().saturating_sub(1)).unwrap_or(u32::MAX).min(7);
    let delay = Duration::from_millis(100 * (1u64 << exponent)).min(Duration::from_secs(10));
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

async fn write_line(stdin: &mut tokio::process::ChildStdin, line: &[u8]) -> std::io::Result<()> {
    stdin.write_all(line).await?;
    stdin.write_all(b"\n").await?;
    stdin.flush().await
}

async fn log_stderr(stderr: tokio::process::ChildStderr, label: String, pid: Option<u32>) {
    let mut lines = FramedRead::new(stderr, LinesCodec::new_with_max_length(16 * 1024));
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) => tracing::info!(target: "forge::upstream::stdio", child = %label, pid, "{line}"),
            Err(_) => {
                tracing::info!(target: "forge::upstream::stdio", child = %label, pid, "(overlong stderr line skipped)")
            }
        }
    }
}

/// The SSE body of one client stream, fed by the router.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
    /// Held for its `Drop`: tells the router when the client stops listening.
    _guard: Option<PostGuard>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx).map(|event| event.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// When a POST's stream goes away with requests still unanswered: a stateless request is
/// cancelled (2026-07-28: closing the stream *is* cancellation); a stateful one keeps
/// running and its answer is rerouted like any server message.
struct PostGuard {
    child: Weak<Child>,
    post: u64,
}

impl Drop for PostGuard {
    fn drop(&mut self) {
        let Some(child) = self.child.upgrade() else { return };
        let stateless = child.stateless;
        let mut router = lock(&child.router);
        let orphaned: Vec<u64> =
            router.pending.iter().filter(|(_, p)| p.post == self.post).map(|(id, _)| *id).collect();
        for child_id in orphaned {
            if stateless {
                if let Some(p) = router.pending.remove(&child_id) {
                    router.by_client_id.remove(&p.client_id);
                }
                let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                    "params": {"requestId": child_id, "reason": "client disconnected"}});
                let _ = child.writer.send(line_of(&cancel));
            } else if let Some(p) = router.pending.get_mut(&child_id) {
                p.tx = None;
            }
        }
        router.forget_finished_posts();
    }
}

fn sse_response(body: ChannelBody) -> Response<Body> {
    let mut response = Response::new(body.boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn status_only(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = status;
    response
}

fn session_not_found(id: Option<&Id>) -> Response<Body> {
    let message = "Session not found: it ended or never existed; start a new session with initialize";
    jsonrpc_error(StatusCode::NOT_FOUND, id, code::SESSION_NOT_FOUND, message)
}

fn is_stateless(headers: &HeaderMap, payload: &Payload) -> bool {
    let header = headers.get(headers::PROTOCOL_VERSION).and_then(|v| v.to_str().ok());
    let meta = payload.messages().first().and_then(Message::meta_protocol_version);
    header.or(meta).is_some_and(headers::is_stateless_revision)
}

fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|v| v.contains(media))
}

fn id_of(value: &Value) -> Option<Id> {
    match value {
        Value::Number(n) => Some(Id::Number(n.clone())),
        Value::String(s) => Some(Id::String(s.clone())),
        _ => None,
    }
}

fn line_of(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON serializes")
}

fn event_of(message: &Message) -> Bytes {
    let json = serde_json::to_string(&message.to_value()).expect("JSON serializes");
    sse::Event::encode(None, None, &json)
}

fn event_json(event: &Bytes) -> Option<Value> {
    let mut parser = sse::Parser::new(usize::MAX);
    let data = parser.feed(event).ok()?.pop()?.data?;
    serde_json::from_str(&data).ok()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
