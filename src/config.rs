//! The gateway's one typed configuration.
//!
//! Loaded from YAML (`--config`), then overridden by environment variables and CLI flags,
//! then validated. Every field has a default so `forge run --upstream …` works with no file.
//! The schema is documented in `docs/config.md`; keep the two in step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A configuration problem, naming the offending field (and its line when it came from a file).
#[derive(Debug, thiserror::Error)]
#[error("{location}`{field}`: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
    location: String,
}

impl ConfigError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        ConfigError { field: field.to_string(), message: message.into(), location: String::new() }
    }

    fn at_line(mut self, line: Option<usize>) -> Self {
        if let Some(line) = line {
            self.location = format!("line {line}: ");
        }
        self
    }
}

/// More serving threads than this is a typo, not a machine.
const MAX_WORKERS: usize = 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the MCP listener clients connect to.
    pub listen: SocketAddr,
    /// Address of the admin listener (`/healthz`, `/readyz`, `/metrics`).
    pub admin_listen: SocketAddr,
    /// Where the gateway keeps its files (dev certificate, later evidence and pins).
    pub state_dir: PathBuf,
    pub upstream: UpstreamConfig,
    pub tls: TlsConfig,
    pub limits: LimitsConfig,
    pub routes: RoutesConfig,
    pub log: LogConfig,
    /// Caller authentication (bearer JWTs); off by default.
    pub auth: crate::auth::AuthConfig,
    /// Rego policy; the default bundle in `policies/`, enforcing, unless configured.
    pub policy: crate::policy::PolicyConfig,
    /// Signed evidence of every decision: records, the tamper-evident log, response signatures.
    pub evidence: crate::evidence::EvidenceConfig,
    /// Where approvals, pins, rate limits and revocations live: embedded (default) or Redis.
    pub state: crate::state::StateConfig,
    /// Human approval of the calls policy marks `require_approval`.
    pub approvals: crate::approvals::ApprovalsConfig,
    /// OpenTelemetry traces over OTLP/HTTP; off by default.
    pub tracing: crate::telemetry::TracingConfig,
    /// Keys trusted to sign policy bundles and plugins; absent: development mode, unsigned loads.
    pub trust: Option<crate::provenance::TrustConfig>,
    /// Detector plugins (WebAssembly): `plugins.directory`, else the shipped detectors if built.
    pub plugins: crate::plugins::PluginsConfig,
    /// Tool-definition pinning (SHA-256 of each tool's canonical JSON).
    pub pins: crate::pins::PinsConfig,
    /// How long SIGTERM waits for in-flight requests and streams before exiting.
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
    /// Threads serving the MCP port, each with its own listener and upstream connections;
    /// `None`: one per available core (see [`Config::worker_count`]).
    pub workers: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:8443".parse().expect("static address"),
            admin_listen: "127.0.0.1:9090".parse().expect("static address"),
            state_dir: PathBuf::from("forge-state"),
            upstream: UpstreamConfig::default(),
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            routes: RoutesConfig::default(),
            log: LogConfig::default(),
            auth: Default::default(),
            policy: Default::default(),
            evidence: Default::default(),
            state: Default::default(),
            approvals: Default::default(),
            tracing: Default::default(),
            trust: None,
            plugins: Default::default(),
            pins: Default::default(),
            shutdown_grace: Duration::from_secs(30),
            workers: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// `http://127.0.0.1:PORT/mcp`, or `stdio:` followed by a command line.
    pub url: String,
    /// Longest wait for the upstream's response headers (or a stdio child's reply).
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Longest wait to establish a TCP connection to an HTTP upstream.
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Idle pooled connections kept per upstream host.
    pub pool_max_idle: usize,
    /// Environment variables set for a stdio child (added to the gateway's own).
    pub env: std::collections::BTreeMap<String, String>,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            url: String::new(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            pool_max_idle: 64,
            env: Default::default(),
        }
    }
}

/// The parsed form of `upstream.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    Http { uri: http::Uri },
    Stdio { program: String, args: Vec<String> },
}

impl UpstreamConfig {
    pub fn parse(&self) -> Result<Upstream, ConfigError> {
        let url = self.url.trim();
        if url.is_empty() {
            return Err(ConfigError::new(
                "upstream.url",
                "no upstream given: set --upstream, FORGE_UPSTREAM or upstream.url",
            ));
        }
        if let Some(command) = url.strip_prefix("stdio:") {
            let mut words = split_command_line(command).map_err(|e| ConfigError::new("upstream.url", e))?.into_iter();
            let program = words.next().ok_or_else(|| ConfigError::new("upstream.url", "`stdio:` needs a command"))?;
            return Ok(Upstream::Stdio { program, args: words.collect() });
        }
        let uri: http::Uri = url.parse().map_err(|e| ConfigError::new("upstream.url", format!("not a URL: {e}")))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(ConfigError::new(
                "upstream.url",
                "must be http://HOST:PORT/PATH (the upstream is local, beside the gateway) or stdio:COMMAND",
            ));
        }
        Ok(Upstream::Http { uri })
    }
}

/// Splits a command line into words, honouring single and double quotes (no shell features).
fn split_command_line(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quote.is_some() {
        return Err("unbalanced quote in stdio command".into());
    }
    words.extend(word);
    Ok(words)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain. Empty: generate a development certificate under `state_dir/tls/`.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Serve plaintext HTTP instead of TLS. Only for local development behind another TLS hop.
    pub insecure_plaintext: bool,
    /// Reload the certificate and key when their files change (cert-manager rotation).
    pub reload: bool,
    pub client_auth: ClientAuthConfig,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig { cert: None, key: None, insecure_plaintext: false, reload: true, client_auth: Default::default() }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientAuthConfig {
    pub mode: ClientAuthMode,
    /// PEM bundle of CAs that client certificates must chain to.
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMode {
    #[default]
    None,
    /// Verify a certificate if the client presents one.
    Optional,
    /// Refuse the handshake without a valid client certificate.
    Required,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body accepted (413 beyond it).
    #[serde(deserialize_with = "byte_size")]
    pub max_body_bytes: usize,
    /// Largest request head (request line + headers) accepted (431 beyond it).
    #[serde(deserialize_with = "byte_size")]
    pub max_header_bytes: usize,
    /// Deepest JSON nesting accepted in any message, either direction.
    pub max_json_depth: usize,
    /// Largest single JSON-RPC message accepted from the upstream (JSON body or one SSE event).
    #[serde(deserialize_with = "byte_size")]
    pub max_upstream_message_bytes: usize,
    /// Time allowed for the TLS handshake and for a request's headers (slowloris guard).
    /// On HTTP/1.1 it also bounds how long a keep-alive connection may sit idle.
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// Time allowed to receive a whole request body.
    #[serde(deserialize_with = "duration")]
    pub body_read_timeout: Duration,
    /// HTTP/2 connections are pinged after this long without traffic and closed if the
    /// ping goes unanswered for as long again.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Client connections served at once; more are refused at accept.
    pub max_connections: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 4 * 1024 * 1024,
            max_header_bytes: 32 * 1024,
            max_json_depth: 64,
            max_upstream_message_bytes: 16 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_connections: 4096,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutesConfig {
    /// The MCP endpoint path clients use. Empty: the upstream URL's path (or `/mcp` for stdio).
    pub mcp_path: String,
    /// GET path of the legacy 2024-11-05 HTTP+SSE transport.
    pub legacy_sse_path: String,
    /// Path prefixes forwarded to the upstream untouched (no MCP inspection).
    pub passthrough_prefixes: Vec<String>,
}

impl Default for RoutesConfig {
    fn default() -> Self {
        RoutesConfig {
            mcp_path: String::new(),
            legacy_sse_path: "/sse".into(),
            passthrough_prefixes: vec!["/.well-known/".into()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `forge=debug,info`. `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::Text, level: "info".into() }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Config {
    /// Reads and validates a YAML file; errors name the field and, where known, its line.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        Config::from_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        parse_yaml(text, Config::validate)
    }

    /// Applies the environment variables Kubernetes users expect to set.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("FORGE_LISTEN") {
            self.listen = v.parse().map_err(|e| ConfigError::new("FORGE_LISTEN", format!("{e}")))?;
        }
        if let Some(v) = env("FORGE_ADMIN_LISTEN") {
            self.admin_listen = v.parse().map_err(|e| ConfigError::new("FORGE_ADMIN_LISTEN", format!("{e}")))?;
        }
        if let Some(v) = env("FORGE_UPSTREAM") {
            self.upstream.url = v;
        }
        if let Some(v) = env("FORGE_STATE_DIR") {
            self.state_dir = v.into();
        }
        if let Some(v) = env("FORGE_WORKERS") {
            let n = v.parse().map_err(|_| ConfigError::new("FORGE_WORKERS", format!("`{v}` is not a number")))?;
            self.workers = Some(n);
        }
        if let Some(v) = env("FORGE_PLUGINS_SHIPPED") {
            self.plugins.shipped = match v.as_str() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(ConfigError::new("FORGE_PLUGINS_SHIPPED", format!("`{other}` is not true or false")))
                }
            };
        }
        if let Some(v) = env("FORGE_POLICY_BUNDLE") {
            self.policy.bundle = v.into();
        }
        if let Some(v) = env("FORGE_PLUGINS_DIR") {
            self.plugins.directory = Some(v.into());
        }
        if let Some(v) = env("FORGE_EVIDENCE_KEY") {
            self.evidence.key = Some(v.into());
        }
        if let Some(v) = env("FORGE_POLICY_MODE") {
            self.policy.mode = match v.as_str() {
                "enforce" => crate::policy::Mode::Enforce,
                "audit" => crate::policy::Mode::Audit,
                other => {
                    return Err(ConfigError::new("FORGE_POLICY_MODE", format!("`{other}` is not enforce or audit")))
                }
            };
        }
        if let Some(v) = env("FORGE_LOG_FORMAT") {
            self.log.format = match v.as_str() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                other => return Err(ConfigError::new("FORGE_LOG_FORMAT", format!("`{other}` is not text or json"))),
            };
        }
        Ok(())
    }

    /// Checks what the types alone cannot. The upstream is checked separately because a
    /// config file may leave it to the environment.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.upstream.url.is_empty() {
            self.upstream.parse()?;
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::new("tls.cert", "tls.cert and tls.key must be given together"));
        }
        if self.tls.client_auth.mode != ClientAuthMode::None && self.tls.client_auth.ca.is_none() {
            return Err(ConfigError::new("tls.client_auth.ca", "client certificate verification needs a CA bundle"));
        }
        if self.tls.insecure_plaintext && self.tls.client_auth.mode != ClientAuthMode::None {
            return Err(ConfigError::new("tls.client_auth.mode", "mTLS needs TLS; insecure_plaintext is set"));
        }
        let limits = &self.limits;
        for (field, value) in [
            ("limits.max_body_bytes", limits.max_body_bytes),
            ("limits.max_header_bytes", limits.max_header_bytes),
            ("limits.max_json_depth", limits.max_json_depth),
            ("limits.max_upstream_message_bytes", limits.max_upstream_message_bytes),
            ("limits.max_connections", limits.max_connections),
        ] {
            if value == 0 {
                return Err(ConfigError::new(field, "must be greater than zero"));
            }
        }
        if let Some(n) = self.workers.filter(|n| !(1..=MAX_WORKERS).contains(n)) {
            return Err(ConfigError::new("workers", format!("must be between 1 and {MAX_WORKERS} (got {n})")));
        }
        if limits.max_json_depth > 128 {
            return Err(ConfigError::new("limits.max_json_depth", "must be at most 128 (the JSON parser's own bound)"));
        }
        if limits.max_header_bytes < 8192 {
            return Err(ConfigError::new("limits.max_header_bytes", "must be at least 8KiB (hyper's minimum)"));
        }
        let path = &self.routes.mcp_path;
        if !path.is_empty() && !path.starts_with('/') {
            return Err(ConfigError::new("routes.mcp_path", "must start with `/`"));
        }
        if !self.routes.legacy_sse_path.starts_with('/') {
            return Err(ConfigError::new("routes.legacy_sse_path", "must start with `/`"));
        }
        if let Err(e) = self.auth.validate() {
            return Err(ConfigError::new(e.field, e.message));
        }
        if let Err(e) = self.policy.validate() {
            return Err(ConfigError::new(&e.field, e.message));
        }
        if let Some((field, message)) = self.evidence.problems().into_iter().next() {
            return Err(ConfigError::new(field, message));
        }
        if let Err((field, message)) = self.state.validate().and_then(|()| self.approvals.validate()) {
            return Err(ConfigError::new(field, message));
        }
        if let Err(e) = self.tracing.validate() {
            return Err(ConfigError::new(e.field, e.message));
        }
        if let Some(Err((field, message))) = self.trust.as_ref().map(|t| t.keys()) {
            return Err(ConfigError::new(&field, message));
        }
        if let Err((field, message)) = self.plugins.validate() {
            return Err(ConfigError::new(&field, message));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(ConfigError::new("log.level", format!("not a valid filter: {e}")));
        }
        Ok(())
    }

    /// How many threads serve the MCP port: `workers`, else one per core the process may use.
    pub fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// The MCP endpoint path clients use.
    pub fn mcp_path(&self) -> String {
        if !self.routes.mcp_path.is_empty() {
            return self.routes.mcp_path.clone();
        }
        match self.upstream.parse() {
            Ok(Upstream::Http { uri }) if uri.path() != "/" => uri.path().to_string(),
            _ => "/mcp".to_string(),
        }
    }
}

/// Parses a YAML config document (empty: all defaults) and validates it; errors name the
/// field and, where known, its line. Shared by every configuration file Forge reads.
pub fn parse_yaml<T: serde::de::DeserializeOwned + Default>(
    text: &str,
    validate: impl FnOnce(&T) -> Result<(), ConfigError>,
) -> Result<T, ConfigError> {
    let config: T = if text.trim().is_empty() {
        T::default()
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| {
            let line = e.location().map(|l| l.line());
            ConfigError::new("config", yaml_message(&e)).at_line(line)
        })?
    };
    validate(&config).map_err(|e| {
        let line = line_of(text, &e.field);
        e.at_line(line)
    })?;
    Ok(config)
}

/// serde_yaml_ng appends "at line N column M"; the line goes in front instead.
fn yaml_message(e: &serde_yaml_ng::Error) -> String {
    let text = e.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Finds the line of a dotted field path in YAML text by following the nesting of its keys.
fn line_of(text: &str, field: &str) -> Option<usize> {
    let mut from = 0;
    let mut min_indent = 0;
    let mut found = None;
    for key in field.split('.') {
        let (index, indent) = text.lines().enumerate().skip(from).find_map(|(i, line)| {
            let indent = line.len() - line.trim_start().len();
            let rest = line.trim_start().strip_prefix(key)?;
            (indent >= min_indent && rest.trim_start().starts_with(':')).then_some((i, indent))
        })?;
        found = Some(index + 1);
        from = index + 1;
        min_indent = indent + 1;
    }
    found
}

/// `#[serde(deserialize_with = "…")]` for durations written like `30s` (every config section).
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// `#[serde(deserialize_with = "…")]` for sizes written like `64KiB` or as a number.
pub fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(usize),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Number(n) => Ok(n),
        Size::Text(t) => parse_byte_size(&t).map_err(serde::de::Error::custom),
    }
}

/// `250ms`, `30s`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 500ms, 30s, 5m or 1h"))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("`{text}` is not a duration like 500ms, 30s, 5m or 1h")),
    }
}

/// `1024`, `64KiB`, `4MiB`, `1GiB`.
pub fn parse_byte_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: usize = number.parse().map_err(|_| format!("`{text}` is not a size like 512KiB or 4MiB"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        "GiB" => 1024 * 1024 * 1024,
        _ => return Err(format!("`{text}` is not a size like 512KiB or 4MiB")),
    };
    n.checked_mul(factor).ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::from_yaml("").unwrap();
        assert_eq!(c.limits.max_body_bytes, 4 * 1024 * 1024);
        assert_eq!(c.listen.port(), 8443);
    }

    #[test]
    fn unknown_field_is_named_with_its_line() {
        let err = Config::from_yaml("listen: 127.0.0.1:1\nlimits:\n  max_body: 3\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 3"), "{text}");
        assert!(text.contains("max_body"), "{text}");
    }

    #[test]
    fn semantic_error_names_field_and_line() {
        let err = Config::from_yaml("upstream:\n  timeout: 5s\n  url: ftp://x/\n").unwrap_err();
        assert_eq!(err.field, "upstream.url");
        assert!(err.to_string().starts_with("line 3: `upstream.url`"), "{err}");
    }

    #[test]
    fn sizes_and_durations_parse() {
        let c = Config::from_yaml("limits:\n  max_body_bytes: 64KiB\n  idle_timeout: 250ms\n").unwrap();
        assert_eq!(c.limits.max_body_bytes, 65536);
        assert_eq!(c.limits.idle_timeout, Duration::from_millis(250));
        assert!(Config::from_yaml("limits:\n  idle_timeout: soon\n").is_err());
        assert!(Config::from_yaml("limits:\n  max_body_bytes: 0\n").is_err());
        assert!(Config::from_yaml("limits:\n  max_json_depth: 200\n").is_err());
    }

    #[test]
    fn upstream_forms() {
        let mut u = UpstreamConfig { url: "http://127.0.0.1:3000/mcp".into(), ..Default::default() };
        assert!(matches!(u.parse().unwrap(), Upstream::Http { .. }));
        u.url = "stdio: npx -y '@scope/server' \"a b\"".into();
        assert_eq!(
            u.parse().unwrap(),
            Upstream::Stdio { program: "npx".into(), args: vec!["-y".into(), "@scope/server".into(), "a b".into()] }
        );
        u.url = "https://remote.example/mcp".into();
        assert!(u.parse().is_err());
        u.url = "stdio: 'unterminated".into();
        assert!(u.parse().is_err());
    }

    #[test]
    fn env_overrides_file() {
        let mut c = Config::default();
        c.apply_env(|k| match k {
            "FORGE_LISTEN" => Some("127.0.0.1:7000".into()),
            "FORGE_UPSTREAM" => Some("http://127.0.0.1:1/mcp".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.mcp_path(), "/mcp");
        assert!(c.apply_env(|k| (k == "FORGE_LISTEN").then(|| "nope".into())).is_err());
        c.apply_env(|k| match k {
            "FORGE_POLICY_BUNDLE" => Some("/etc/forge/policies".into()),
            "FORGE_POLICY_MODE" => Some("audit".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.policy.bundle, PathBuf::from("/etc/forge/policies"));
        assert_eq!(c.policy.mode, crate::policy::Mode::Audit);
        assert!(c.apply_env(|k| (k == "FORGE_POLICY_MODE").then(|| "off".into())).is_err());
        // What an injected sidecar is told about its mounts.
        assert_eq!((c.plugins.directory.as_ref(), c.evidence.key.as_ref()), (None, None));
        c.apply_env(|k| match k {
            "FORGE_PLUGINS_DIR" => Some("/etc/forge/plugins".into()),
            "FORGE_EVIDENCE_KEY" => Some("/etc/forge/keys/signing-key.pem".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.plugins.directory, Some(PathBuf::from("/etc/forge/plugins")));
        assert_eq!(c.evidence.key, Some(PathBuf::from("/etc/forge/keys/signing-key.pem")));
    }

    #[test]
    fn workers_default_to_the_cores_and_are_bounded() {
        let c = Config::from_yaml("").unwrap();
        assert_eq!(c.worker_count(), std::thread::available_parallelism().unwrap().get());
        assert_eq!(Config::from_yaml("workers: 3\n").unwrap().worker_count(), 3);
        assert_eq!(Config::from_yaml("workers: 0\n").unwrap_err().field, "workers");
        assert!(Config::from_yaml("workers: 5000\n").is_err());
        let mut c = Config::default();
        c.apply_env(|k| (k == "FORGE_WORKERS").then(|| "1".into())).unwrap();
        assert_eq!(c.worker_count(), 1);
        assert!(c.apply_env(|k| (k == "FORGE_WORKERS").then(|| "many".into())).is_err());
    }

    #[test]
    fn mtls_needs_a_ca() {
        let err = Config::from_yaml("tls:\n  client_auth:\n    mode: required\n").unwrap_err();
        assert_eq!(err.field, "tls.client_auth.ca");
    }
}
