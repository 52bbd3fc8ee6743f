//! `forge webhook`: AdmissionReview over TLS at `/mutate`, and the admin port.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use tokio_util::sync::CancellationToken;

use super::admission;
use super::config::WebhookConfig;
use crate::body::{self, Body};
use crate::config::TlsConfig;
use crate::pipeline::plain;
use crate::server::{admin, listener, tls};

/// The API server sends AdmissionReviews of at most a few MiB (its own request limit is 3 MiB).
const MAX_REVIEW_BYTES: usize = 8 * 1024 * 1024;
/// The API server gives a webhook 10 s by default; a slower client is cut off well before.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Where the webhook listens, and its serving certificate.
pub struct Options {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
}

struct Webhook {
    config: WebhookConfig,
    metrics: Metrics,
    draining: AtomicBool,
}

#[derive(Clone)]
struct Metrics {
    registry: Registry,
    /// Reviews by outcome (`injected`, `skipped`, `rejected`, `warned`, `invalid`).
    admissions: IntCounterVec,
    duration: HistogramVec,
    tls_reloads: IntCounterVec,
}

impl Metrics {
    fn new() -> anyhow::Result<Metrics> {
        let registry = Registry::new();
        let admissions = IntCounterVec::new(
            Opts::new("forge_webhook_admissions_total", "AdmissionReviews answered, by outcome"),
            &["outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("forge_webhook_admission_duration_seconds", "Time to answer one AdmissionReview")
                .buckets(vec![0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0]),
            &["outcome"],
        )?;
        let tls_reloads = IntCounterVec::new(
            Opts::new("forge_tls_reloads_total", "TLS certificate reloads, by result"),
            &["result"],
        )?;
        for collector in [admissions.clone(), tls_reloads.clone()] {
            registry.register(Box::new(collector))?;
        }
        registry.register(Box::new(duration.clone()))?;
        Ok(Metrics { registry, admissions, duration, tls_reloads })
    }
}

impl admin::Probes for Webhook {
    async fn readiness(&self) -> Response<Body> {
        let draining = self.draining.load(Ordering::Relaxed);
        let problems: Vec<&str> = if draining { vec!["draining: shutting down"] } else { vec![] };
        admin::readiness_response(!draining, &serde_json::json!({"ready": !draining, "problems": problems}))
    }

    fn metrics(&self) -> String {
        use prometheus::Encoder;
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&self.metrics.registry.gather(), &mut out).expect("text encoding");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

/// Serves until SIGTERM or SIGINT, then drains in-flight reviews and returns.
pub async fn run(config: WebhookConfig, options: Options) -> anyhow::Result<()> {
    let tls_config =
        TlsConfig { cert: Some(options.tls_cert.clone()), key: Some(options.tls_key.clone()), ..Default::default() };
    let paths = tls::CertPaths { cert: options.tls_cert, key: options.tls_key, generated: false };
    let reloading = tls::ReloadingConfig::new(tls::server_config(&paths, &tls_config)?);
    let webhook = Arc::new(Webhook { config, metrics: Metrics::new()?, draining: AtomicBool::new(false) });
    let _watcher = reloading
        .watch(paths, tls_config, webhook.metrics.tls_reloads.clone())
        .context("watching the webhook's TLS certificate for changes")?;

    let mutate = listener::bind(options.listen).await?;
    let admin_listener = listener::bind(options.admin_listen).await?;
    let (addr, admin_addr) = (mutate.local_addr()?, admin_listener.local_addr()?);
    tracing::info!(listen = %addr, admin = %admin_addr, image = %webhook.config.image, "forge webhook started");
    // One machine-readable line on stdout, for scripts and tests that start it on port 0.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "forge webhook listening mutate=https://{addr}/mutate admin=http://{admin_addr}")?;
    stdout.flush()?;
    drop(stdout);

    let shutdown = CancellationToken::new();
    let admin_task = tokio::spawn(admin::serve(admin_listener, webhook.clone()));
    tokio::spawn(on_signal(webhook.clone(), shutdown.clone()));
    serve(mutate, reloading, webhook, shutdown).await;
    admin_task.abort();
    tracing::info!("forge webhook stopped");
    Ok(())
}

async fn on_signal(webhook: Arc<Webhook>, shutdown: CancellationToken) {
    let signal = listener::shutdown_signal().await;
    tracing::info!(signal, "shutting down: no new connections; finishing in-flight reviews");
    webhook.draining.store(true, Ordering::Relaxed);
    shutdown.cancel();
}

async fn serve(
    listener: tokio::net::TcpListener,
    tls: tls::ReloadingConfig,
    webhook: Arc<Webhook>,
    shutdown: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    while let Some((stream, remote)) = listener::accept(&listener, &shutdown).await {
        let (webhook, acceptor, watcher) =
            (webhook.clone(), tokio_rustls::TlsAcceptor::from(tls.current()), graceful.watcher());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(READ_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%remote, "TLS handshake timed out"),
            };
            let service = service_fn(move |req| {
                let webhook = webhook.clone();
                async move { Ok::<_, Infallible>(handle(&webhook, req).await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(READ_TIMEOUT);
            if let Err(e) = watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("grace period over; closing the remaining connections");
    }
}

async fn handle(webhook: &Webhook, req: Request<Incoming>) -> Response<Body> {
    if req.uri().path() != "/mutate" {
        return plain(StatusCode::NOT_FOUND, "not found: AdmissionReviews go to POST /mutate");
    }
    if req.method() != Method::POST {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "AdmissionReviews are POSTed");
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let started = Instant::now();
    let bytes = match body::read_limited(body::boxed(req.into_body()), MAX_REVIEW_BYTES, READ_TIMEOUT).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let status = match e {
                body::ReadError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            return invalid(webhook, started, status, &format!("reading the review: {e}"));
        }
    };
    match admission::review(&webhook.config, &bytes) {
        Ok(reviewed) => {
            let outcome = reviewed.outcome.label();
            webhook.metrics.admissions.with_label_values(&[outcome]).inc();
            webhook.metrics.duration.with_label_values(&[outcome]).observe(started.elapsed().as_secs_f64());
            let mut r = Response::new(body::full(reviewed.body.to_string()));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => invalid(webhook, started, StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// A request that is not a review: the API server applies the failure policy.
fn invalid(webhook: &Webhook, started: Instant, status: StatusCode, message: &str) -> Response<Body> {
    tracing::warn!(message, "refused a request that is not an AdmissionReview");
    webhook.metrics.admissions.with_label_values(&["invalid"]).inc();
    webhook.metrics.duration.with_label_values(&["invalid"]).observe(started.elapsed().as_secs_f64());
    plain(status, message)
}
