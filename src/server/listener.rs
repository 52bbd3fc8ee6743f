//! The accept loop of one serving worker (see `workers.rs`): connection limit, TLS
//! handshake (bounded in time), HTTP/1.1 or HTTP/2 by ALPN, and graceful drain on shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::tls::ClientIdentity;
use super::workers::Worker;
use super::{route, ConnInfo};
use crate::body::Body;
use crate::gateway::Gateway;
use crate::pipeline;
use futures_util::FutureExt;

/// Serves a worker's listener until its shutdown fires, then waits up to the grace period
/// for in-flight requests and streams. Connections and their tasks run on the calling
/// (current-thread) runtime.
pub async fn serve(listener: TcpListener, worker: Worker) {
    let Worker { index, gw, tls, permits, shutdown } = worker;
    let graceful = GracefulShutdown::new();
    let accepted = gw.metrics.connections_accepted.with_label_values(&[index.to_string()]);
    while let Some((stream, remote)) = accept(&listener, &shutdown).await {
        accepted.inc();
        let _ = stream.set_nodelay(true);
        let permit = permits.clone().try_acquire_owned().ok();
        if permit.is_none() {
            gw.metrics.limit_rejections.with_label_values(&["connections"]).inc();
            tracing::warn!(%remote, worker = index, "connection limit reached; answering 503");
        }
        let gw = gw.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit.as_ref();
            let over_limit = permit.is_none();
            gw.metrics.connections_active.inc();
            match tls {
                Some(tls) => {
                    let handshake = tokio_rustls::TlsAcceptor::from(tls.current()).accept(stream);
                    match tokio::time::timeout(gw.config.limits.header_read_timeout, handshake).await {
                        Ok(Ok(stream)) => {
                            let identity = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|certs| certs.first())
                                .and_then(|leaf| ClientIdentity::from_certificate(leaf));
                            let conn = ConnInfo { remote, tls: true, client_identity: identity };
                            serve_connection(TokioIo::new(stream), conn, gw.clone(), watcher, over_limit).await;
                        }
                        Ok(Err(e)) => {
                            gw.metrics.tls_handshake_failures.inc();
                            tracing::debug!(%remote, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            gw.metrics.tls_handshake_failures.inc();
                            tracing::debug!(%remote, "TLS handshake timed out");
                        }
                    }
                }
                None => {
                    let conn = ConnInfo { remote, tls: false, client_identity: None };
                    serve_connection(TokioIo::new(stream), conn, gw.clone(), watcher, over_limit).await;
                }
            }
            gw.metrics.connections_active.dec();
        });
    }
    drop(listener);
    let grace = gw.config.shutdown_grace;
    tracing::info!(worker = index, connections = graceful.count(), ?grace, "draining connections");
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!(worker = index, "all connections drained"),
        Err(_) => tracing::warn!(worker = index, "grace period over; closing the remaining connections"),
    }
}

async fn serve_connection<I>(
    io: TokioIo<I>,
    conn: ConnInfo,
    gw: Arc<Gateway>,
    watcher: hyper_util::server::graceful::Watcher,
    over_limit: bool,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = &gw.config.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(!over_limit);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(limits.idle_timeout)
        .keep_alive_timeout(limits.idle_timeout);
    let remote = conn.remote;
    let conn = Arc::new(conn);
    let service = service_fn(move |req| -> ResponseFuture {
        if over_limit {
            return Box::pin(std::future::ready(Ok(too_many_connections())));
        }
        Box::pin(route(gw.clone(), req, conn.clone()).map(Ok))
    });
    let connection = builder.serve_connection(io, service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(%remote, error = %e, "connection ended with an error");
    }
}

/// Boxed so the compiler checks `Send` on a concrete, `'static` future.
type ResponseFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<Body>, Infallible>> + Send>>;

fn too_many_connections() -> Response<Body> {
    let mut r = pipeline::plain(StatusCode::SERVICE_UNAVAILABLE, "too many connections; retry shortly");
    r.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    r.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// The next connection, or `None` once `shutdown` fires.
pub async fn accept(listener: &TcpListener, shutdown: &CancellationToken) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            accepted = listener.accept() => match accepted {
                Ok(a) => return Some(a),
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Waits for SIGTERM or SIGINT and returns its name; never returns if the handlers
/// cannot be installed (logged).
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Binds a listener, naming the address in the error.
pub async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))
}
