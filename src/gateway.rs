//! The running gateway: its shared state, and start-up / shutdown.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::config::{Config, Upstream as UpstreamSpec};
use crate::mcp::jsonrpc::{Id, Request};
use crate::mcp::session::Sessions;
use crate::mcp::tools::ToolCatalog;
use crate::pins::Pins;
use crate::plugins::Plugins;
use crate::policy::PolicyStore;
use crate::provenance::Trust;
use crate::server::{admin, listener, tls, workers};
use crate::telemetry::metrics::Metrics;
use crate::upstream::{http::HttpUpstream, stdio::StdioUpstream, Upstream};

/// Legacy-transport requests remembered at most while their answers are outstanding.
const LEGACY_PENDING_LIMIT: usize = 10_000;

/// State shared by every connection.
pub struct Gateway {
    pub config: Config,
    pub mcp_path: String,
    pub metrics: Metrics,
    pub auth: Authenticator,
    /// `None` when `policy.enabled` is false.
    pub policy: Option<PolicyStore>,
    /// `None` when `evidence.enabled` is false.
    pub evidence: Option<Arc<crate::evidence::Evidence>>,
    /// Which signers policy bundles and plugins must come from (or development mode).
    pub trust: Arc<Trust>,
    /// Request headers copied into the policy input (lower-cased `policy.include_headers`).
    pub policy_headers: Vec<String>,
    pub upstream: Upstream,
    pub sessions: Sessions,
    pub tools: ToolCatalog,
    /// `None` when `plugins.enabled` is false.
    pub plugins: Option<Plugins>,
    pub pins: Pins,
    /// Message paths announced by legacy HTTP+SSE upstreams (`/messages`, …).
    pub legacy_endpoints: RwLock<HashSet<String>>,
    /// Requests POSTed to a legacy endpoint (path and query) whose answers will come on
    /// that session's SSE stream, so the stream's policy knows what each answer answers.
    pub legacy_pending: Mutex<HashMap<(String, Id), Request>>,
    pub draining: AtomicBool,
    /// Approvals, pins, rate limits and revocations (embedded or Redis).
    pub state: Arc<dyn crate::state::StateStore>,
    pub approvals: Arc<crate::approvals::Approvals>,
    pub rate_limiter: crate::ratelimit::RateLimiter,
    pub revocations: Arc<crate::state::revocations::Revocations>,
}

impl Gateway {
    /// `resource` is the gateway's public MCP URL as far as it can tell (`auth.resource`
    /// overrides it): the audience tokens must name.
    pub async fn new(config: Config, resource: &str) -> anyhow::Result<Gateway> {
        let metrics = Metrics::new();
        let auth = Authenticator::new(&config.auth, resource).await.context("loading the auth configuration")?;
        auth.register(metrics.registry())?;
        let trust = Arc::new(Trust::from_config(config.trust.as_ref())?);
        trust.log_mode();
        for collector in trust.collectors() {
            metrics.registry().register(collector)?;
        }
        let policy = match config.policy.enabled {
            true => {
                let bundle = &config.policy.bundle;
                let store = PolicyStore::load_with_trust(bundle, &config.policy, trust.clone())
                    .with_context(|| format!("loading the policy bundle {}", bundle.display()))?;
                for collector in store.collectors() {
                    metrics.registry().register(collector)?;
                }
                Some(store)
            }
            false => {
                tracing::warn!("policy is disabled (policy.enabled: false): every message is allowed");
                None
            }
        };
        let evidence =
            crate::evidence::Evidence::open(&config.evidence, &config.state_dir, metrics.registry())?.map(Arc::new);
        let plugins = match config.plugins.enabled {
            true => {
                let plugins = Plugins::load(&config.plugins, &config.state_dir, trust.clone())
                    .context("loading the detector plugins")?;
                for collector in plugins.collectors() {
                    metrics.registry().register(collector)?;
                }
                Some(plugins)
            }
            false => None,
        };
        let upstream = match config.upstream.parse()? {
            UpstreamSpec::Http { uri } => Upstream::Http(HttpUpstream::new(uri, &config.upstream)),
            UpstreamSpec::Stdio { program, args } => {
                Upstream::Stdio(StdioUpstream::new(program, args, &config, metrics.clone()))
            }
        };
        let state = crate::state::open(&config.state, &config.state_dir).await.context("opening the state store")?;
        let pins = Pins::open(&config.pins, &config.state_dir, state.clone()).await.context("loading the tool pins")?;
        let admin_url = format!("http://{}", config.admin_listen);
        let approvals = Arc::new(crate::approvals::Approvals::new(
            state.clone(),
            config.approvals.clone(),
            &admin_url,
            evidence.clone(),
        )?);
        let rate_limiter = crate::ratelimit::RateLimiter::new(state.clone())?;
        let revocations =
            crate::state::revocations::Revocations::start(state.clone(), config.state.revocations_max_staleness).await;
        approvals.register(metrics.registry())?;
        rate_limiter.register(metrics.registry())?;
        crate::state::register_health(state.clone(), metrics.registry())?;
        Ok(Gateway {
            state,
            approvals,
            rate_limiter,
            revocations,
            mcp_path: config.mcp_path(),
            sessions: Sessions::new(metrics.sessions_active.clone()),
            tools: ToolCatalog::default(),
            plugins,
            pins,
            legacy_endpoints: RwLock::new(HashSet::new()),
            legacy_pending: Mutex::new(HashMap::new()),
            draining: AtomicBool::new(false),
            upstream,
            auth,
            policy,
            evidence,
            trust,
            policy_headers: config.policy.header_names(),
            metrics,
            config,
        })
    }

    /// Not ready any more, and no new connections: `shutdown` tells every serving worker.
    pub fn begin_drain(&self, shutdown: &CancellationToken) {
        self.draining.store(true, Ordering::Relaxed);
        shutdown.cancel();
    }

    pub fn is_legacy_endpoint(&self, path: &str) -> bool {
        self.legacy_endpoints.read().unwrap_or_else(|e| e.into_inner()).contains(path)
    }

    /// Remembers requests sent to a legacy message endpoint until their answers arrive.
    pub fn expect_legacy_answers<'a>(&self, endpoint: &str, requests: impl Iterator<Item = &'a Request>) {
        let mut pending = self.legacy_pending.lock().unwrap_or_else(|e| e.into_inner());
        for request in requests {
            if pending.len() >= LEGACY_PENDING_LIMIT {
                // A client that never reads its stream must not grow this without bound.
                if let Some(stale) = pending.keys().next().cloned() {
                    pending.remove(&stale);
                }
            }
            pending.insert((endpoint.to_string(), request.id.clone()), request.clone());
        }
    }

    /// Learns from a `tools/list` or `server/discover` result: the tools' definitions and
    /// annotations, and their pins.
    pub fn learn_tools(&self, result: &serde_json::Value) {
        let Some(tools) = result.get("tools").and_then(serde_json::Value::as_array) else { return };
        self.tools.observe_list(result);
        self.pins.observe_list(tools);
    }

    /// The request a legacy stream's answer answers, if it was sent through the gateway.
    pub fn legacy_answer_to(&self, endpoint: &str, id: &Id) -> Option<Request> {
        self.legacy_pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&(endpoint.to_string(), id.clone()))
    }
}

/// Starts both listeners and serves until SIGTERM or SIGINT, then drains and returns.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    let tls = if config.tls.insecure_plaintext {
        tracing::warn!(
            "TLS IS OFF: serving plaintext HTTP because tls.insecure_plaintext is set. Never expose this port."
        );
        None
    } else {
        let paths = tls::cert_paths(&config.tls, &config.state_dir)?;
        if paths.generated {
            tracing::warn!(
                cert = %paths.cert.display(),
                "no TLS certificate configured: using a generated development certificate (trust it in clients with this file)"
            );
        }
        let server = tls::server_config(&paths, &config.tls)?;
        Some((tls::ReloadingConfig::new(server), paths))
    };

    let worker_count = config.worker_count();
    let mcp = workers::bind(config.listen, worker_count)?;
    let admin_listener = listener::bind(config.admin_listen).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mcp_addr = mcp[0].local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let resource = format!("{scheme}://localhost:{}{}", mcp_addr.port(), config.mcp_path());
    // The approval page is on the admin listener as bound (its port may have been 0).
    config.approvals.page_url.get_or_insert_with(|| format!("http://{admin_addr}"));
    let gw = Arc::new(Gateway::new(config, &resource).await?);

    // Keep the watcher alive for as long as the gateway runs.
    let _watcher = match (&tls, gw.config.tls.reload) {
        (Some((reloading, paths)), true) => Some(
            reloading
                .watch(paths.clone(), gw.config.tls.clone(), gw.metrics.tls_reloads.clone())
                .context("watching the TLS certificate for changes")?,
        ),
        _ => None,
    };

    tracing::info!(listen = %mcp_addr, workers = worker_count, admin = %admin_addr, upstream = %gw.upstream.describe(), mcp_path = %gw.mcp_path, "forge gateway started");
    // One machine-readable line on stdout, for scripts and tests that start the gateway on port 0.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "forge listening mcp={scheme}://{mcp_addr}{} admin=http://{admin_addr}", gw.mcp_path)?;
    stdout.flush()?;
    drop(stdout);

    let sweeper = tokio::spawn(gw.approvals.clone().sweep_expired());
    let _policy_watcher = match &gw.policy {
        Some(policy) => Some(policy.watch().context("watching the policy bundle")?),
        None => None,
    };
    let _plugin_watcher = match &gw.plugins {
        Some(plugins) => plugins.watch().context("watching the plugins directory")?,
        None => None,
    };

    let shutdown = CancellationToken::new();
    let admin_task = tokio::spawn(admin::serve(admin_listener, gw.clone()));
    let signal = shutdown_signal(gw.clone(), shutdown.clone());
    tokio::spawn(signal);
    let served = workers::serve(mcp, gw.clone(), tls.map(|(r, _)| r), shutdown).await;
    admin_task.abort();
    sweeper.abort();
    if let Upstream::Stdio(stdio) = &gw.upstream {
        stdio.shutdown().await;
    }
    if let Some(evidence) = &gw.evidence {
        evidence.log().close();
    }
    tracing::info!("forge gateway stopped");
    served
}

async fn shutdown_signal(gw: Arc<Gateway>, shutdown: CancellationToken) {
    let name = listener::shutdown_signal().await;
    tracing::info!(signal = name, "shutting down: no new connections; finishing in-flight requests");
    gw.begin_drain(&shutdown);
}
