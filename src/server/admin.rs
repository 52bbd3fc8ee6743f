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

/// Serves until the task is aborted; it stays up while the MCP port drains so probes can
/// see `/readyz` turn unready.
pub async fn serve(listener: TcpListener, gw: Arc<Gateway>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let gw = gw.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let gw = gw.clone();
                async move { Ok::<_, Infallible>(handle(&gw, req).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn handle(gw: &Gateway, req: Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/healthz" => pipeline::plain(StatusCode::OK, "ok"),
        "/readyz" => readiness(gw).await,
        "/metrics" => {
            let mut r = Response::new(body::full(gw.metrics.render()));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            r
        }
        path if crate::approvals::admin::serves(path) => crate::approvals::admin::handle(gw, req).await,
        _ => pipeline::plain(StatusCode::NOT_FOUND, "not found: try /healthz, /readyz, /metrics or /approvals"),
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
        "state": state,
        "trust": gw.trust.status(),
    });
    let mut r = Response::new(body::full(body.to_string()));
    *r.status_mut() = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
