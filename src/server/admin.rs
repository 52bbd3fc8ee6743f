//! The admin port: `/healthz` (the process is alive), `/readyz` (ready for traffic: config
//! loaded, upstream reachable, not draining; a JSON body says why not) and `/metrics`.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::body::{self, Body};
use crate::gateway::Gateway;
use crate::pipeline;

/// What an admin port reports: the gateway's, or the webhook's.
pub trait Probes: Send + Sync + 'static {
    /// `/readyz`: 200 when ready for traffic, 503 with a JSON body saying why not.
    fn readiness(&self) -> impl std::future::Future<Output = Response<Body>> + Send;
    /// `/metrics`: the Prometheus text exposition.
    fn metrics(&self) -> String;
    /// Every other path: not found, unless the port serves more (the gateway's approvals).
    fn other(&self, req: Request<Incoming>) -> impl std::future::Future<Output = Response<Body>> + Send {
        drop(req);
        async { pipeline::plain(StatusCode::NOT_FOUND, "not found: try /healthz, /readyz or /metrics") }
    }
}

impl Probes for Gateway {
    async fn readiness(&self) -> Response<Body> {
        readiness(self).await
    }

    fn metrics(&self) -> String {
        self.metrics.render()
    }

    async fn other(&self, req: Request<Incoming>) -> Response<Body> {
        if crate::approvals::admin::serves(req.uri().path()) {
            return crate::approvals::admin::handle(self, req).await;
        }
        pipeline::plain(StatusCode::NOT_FOUND, "not found: try /healthz, /readyz, /metrics or /approvals")
    }
}

/// Serves until the task is aborted; it stays up while the MCP port drains so probes can
/// see `/readyz` turn unready.
pub async fn serve<P: Probes>(listener: TcpListener, probes: Arc<P>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let probes = probes.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let probes = probes.clone();
                async move { Ok::<_, Infallible>(handle(&*probes, req).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn handle<P: Probes>(probes: &P, req: Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/healthz" => pipeline::plain(StatusCode::OK, "ok"),
        "/readyz" => probes.readiness().await,
        "/metrics" => {
            let mut r = Response::new(body::full(probes.metrics()));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            r
        }
        _ => probes.other(req).await,
    }
}

async fn readiness(gw: &Gateway) -> Response<Body> {
    let mut problems = Vec::new();
    if gw.draining.load(Ordering::Relaxed) {
        problems.push("draining: shutting down".to_string());
    }
    if let Err(e) = gw.upstream.ready().await {
        problems.push(e);
    }
    if gw.evidence.as_ref().is_some_and(|e| !e.log().is_healthy()) {
        problems.push("the evidence log cannot write (see the gateway's log)".to_string());
    }
    // A store that cannot be reached degrades the gateway (approvals fail closed) without
    // making it unready: taking every replica out of service would be worse.
    let state = gw.state.health();
    let ready = problems.is_empty();
    // A bundle that failed to reload shows here; the last good one keeps serving, so it
    // does not make the gateway unready.
    let body = serde_json::json!({
        "ready": ready,
        "upstream": gw.upstream.describe(),
        "problems": problems,
        "policy": gw.policy.as_ref().map(|p| p.status()),
        "evidence": gw.evidence.as_ref().map(|e| serde_json::json!({"key_id": e.key_id(), "healthy": e.log().is_healthy()})),
        "plugins": gw.plugins.as_ref().map(|p| p.status()),
        "state": state,
        "trust": gw.trust.status(),
    });
    readiness_response(ready, &body)
}

/// A `/readyz` answer: 200 or 503, with `body` as JSON.
pub fn readiness_response(ready: bool, body: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(body::full(body.to_string()));
    *r.status_mut() = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
