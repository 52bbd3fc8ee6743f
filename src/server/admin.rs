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
use tokio_util::sync::CancellationToken;

use crate::body::{self, Body};
use crate::gateway::Gateway;
use crate::pipeline;

pub async fn serve(listener: TcpListener, gw: Arc<Gateway>, shutdown: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    continue;
                }
            },
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
        _ => pipeline::plain(StatusCode::NOT_FOUND, "not found: try /healthz, /readyz or /metrics"),
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
    let ready = problems.is_empty();
    let body = serde_json::json!({
        "ready": ready,
        "upstream": gw.upstream.describe(),
        "problems": problems,
    });
    let mut r = Response::new(body::full(body.to_string()));
    *r.status_mut() = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
