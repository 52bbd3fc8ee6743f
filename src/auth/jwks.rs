//! An issuer's JWKS (from a URL or a file), kept fresh without letting tokens drive traffic to
//! the identity provider.
//!
//! - Reads never wait: the current keys sit behind an `ArcSwap`.
//! - Keys are refetched when their `Cache-Control: max-age` (or the configured default) runs
//!   out, in the background while the old keys keep serving, and when a token names a `kid`
//!   the set lacks (key rotation), inline: that token waits for the answer.
//! - Fetches never overlap: callers arriving while one is in flight wait for it and share its
//!   result.
//! - No fetch starts within the refresh floor of the previous one, so a flood of tokens with
//!   invented `kid`s costs the identity provider at most one request per floor.
//! - A failed fetch keeps the last good keys.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{header, HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use jsonwebtoken::Algorithm;
use prometheus::IntCounterVec;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::task::AbortOnDropHandle;

use super::keys::{self, KeySet};

/// Bounds an inline refresh, which a request waits for.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A key set is a few KiB; anything near this is not one.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Even a provider announcing a longer lifetime is asked again daily, so a key it withdrew
/// (say, after a compromise) stops verifying within a day.
const MAX_AGE_CAP: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("cannot read the JWKS file: {0}")]
    File(std::io::Error),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("the identity provider answered {0}")]
    Status(StatusCode),
    #[error("the response body failed: {0}")]
    Body(String),
    #[error("no answer within {FETCH_TIMEOUT:?}")]
    Timeout,
    #[error("not a JWKS: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("the JWKS has no key the gateway can use")]
    NoUsableKeys,
}

pub(crate) enum Source {
    Url { uri: Uri, tls: Option<TlsConnector> },
    File(PathBuf),
}

impl Source {
    pub fn url(url: &str, ca: Option<&Path>) -> anyhow::Result<Source> {
        let uri: Uri = url.parse()?;
        let tls = (uri.scheme_str() == Some("https")).then(|| tls_connector(ca)).transpose()?;
        Ok(Source::Url { uri, tls })
    }
}

/// The keys as of the last fetch, and until when they count as fresh.
pub(crate) struct Snapshot {
    pub keys: Arc<KeySet>,
    /// Grows by one whenever a fetch replaces the keys (verified tokens remembered with older
    /// keys are then forgotten).
    pub generation: u64,
    fresh_until: Instant,
}

pub(crate) struct JwksCache {
    issuer: String,
    source: Source,
    algorithms: Vec<Algorithm>,
    floor: Duration,
    default_max_age: Duration,
    snapshot: ArcSwap<Snapshot>,
    /// When the last fetch started. Holding the lock is being the one fetch in flight.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    background: AtomicBool,
    refreshes: IntCounterVec,
}

pub(crate) struct CacheSettings {
    pub algorithms: Vec<Algorithm>,
    pub floor: Duration,
    pub default_max_age: Duration,
    pub refreshes: IntCounterVec,
}

impl JwksCache {
    /// Loads the keys once. A file that cannot be read is a configuration error; an identity
    /// provider that does not answer is not (it may start after the gateway): its tokens are
    /// refused as `KeysUnavailable` until it does.
    pub async fn new(issuer: &str, source: Source, settings: CacheSettings) -> anyhow::Result<Arc<JwksCache>> {
        let cache = Arc::new(JwksCache {
            issuer: issuer.to_string(),
            source,
            algorithms: settings.algorithms,
            floor: settings.floor,
            default_max_age: settings.default_max_age,
            snapshot: ArcSwap::from_pointee(Snapshot {
                keys: Arc::default(),
                generation: 0,
                fresh_until: Instant::now(),
            }),
            last_fetch: tokio::sync::Mutex::new(None),
            background: AtomicBool::new(false),
            refreshes: settings.refreshes,
        });
        let loaded = cache.refresh().await;
        if let (true, Source::File(path)) = (loaded.keys.is_empty(), &cache.source) {
            anyhow::bail!("no usable keys could be read from the JWKS file {}", path.display());
        }
        Ok(cache)
    }

    /// The current keys. Loads them first if there are none yet; starts a background refresh
    /// if they are stale.
    pub async fn current(self: &Arc<Self>) -> Arc<Snapshot> {
        let snapshot = self.snapshot.load_full();
        if snapshot.keys.is_empty() {
            return self.refresh().await;
        }
        if Instant::now() >= snapshot.fresh_until && !self.background.swap(true, Ordering::AcqRel) {
            let cache = Arc::clone(self);
            tokio::spawn(async move {
                cache.refresh().await;
                cache.background.store(false, Ordering::Release);
            });
        }
        snapshot
    }

    /// Fetches the keys again, unless a fetch answered while this caller waited for the one in
    /// flight, or the last one started less than the floor ago. Returns the keys as they then are.
    pub async fn refresh(&self) -> Arc<Snapshot> {
        let seen = self.snapshot.load_full();
        let mut last_fetch = self.last_fetch.lock().await;
        let current = self.snapshot.load_full();
        if !Arc::ptr_eq(&seen, &current) || last_fetch.is_some_and(|at| at.elapsed() < self.floor) {
            return current;
        }
        let started = Instant::now();
        *last_fetch = Some(started);
        let next = match self.fetch().await {
            Ok((keys, max_age)) => {
                self.refreshes.with_label_values(&["ok"]).inc();
                let max_age = max_age.unwrap_or(self.default_max_age).max(self.floor).min(MAX_AGE_CAP);
                tracing::info!(issuer = %self.issuer, keys = keys.len(), max_age_s = max_age.as_secs(), "loaded the issuer's keys");
                Snapshot { keys: Arc::new(keys), generation: current.generation + 1, fresh_until: started + max_age }
            }
            Err(e) => {
                self.refreshes.with_label_values(&["error"]).inc();
                tracing::warn!(issuer = %self.issuer, error = %e, keys_kept = current.keys.len(), "JWKS refresh failed");
                // Stale again after the floor, so the next attempt waits at least that long.
                Snapshot {
                    keys: Arc::clone(&current.keys),
                    generation: current.generation,
                    fresh_until: started + self.floor,
                }
            }
        };
        let next = Arc::new(next);
        self.snapshot.store(Arc::clone(&next));
        next
    }

    async fn fetch(&self) -> Result<(KeySet, Option<Duration>), FetchError> {
        let (body, max_age) = match &self.source {
            Source::File(path) => (tokio::fs::read(path).await.map_err(FetchError::File)?.into(), None),
            Source::Url { uri, tls } => {
                tokio::time::timeout(FETCH_TIMEOUT, get(uri, tls.as_ref())).await.map_err(|_| FetchError::Timeout)??
            }
        };
        let keys = keys::from_jwks(&body, &self.algorithms, &self.issuer)?;
        if keys.is_empty() {
            return Err(FetchError::NoUsableKeys);
        }
        Ok((keys, max_age))
    }
}

/// One GET on a fresh connection: fetches are minutes apart, so pooling would buy nothing.
/// Redirects are not followed: the configured URL is the one trusted.
async fn get(uri: &Uri, tls: Option<&TlsConnector>) -> Result<(Bytes, Option<Duration>), FetchError> {
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(if tls.is_some() { 443 } else { 80 });
    let request = Request::get(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header(header::HOST, authority)
        .header(header::ACCEPT, "application/jwk-set+json, application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| FetchError::Body(e.to_string()))?;
    let tcp = TcpStream::connect((host.as_str(), port)).await.map_err(FetchError::Connect)?;
    match tls {
        Some(tls) => {
            let name = ServerName::try_from(host)
                .map_err(|e| FetchError::Connect(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
            let stream = tls.connect(name, tcp).await.map_err(FetchError::Connect)?;
            send(stream, request).await
        }
        None => send(tcp, request).await,
    }
}

async fn send<T>(io: T, request: Request<Empty<Bytes>>) -> Result<(Bytes, Option<Duration>), FetchError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    // Aborted when this function returns or is dropped (the timeout), closing the connection.
    let _connection = AbortOnDropHandle::new(tokio::spawn(connection));
    let response = sender.send_request(request).await?;
    if response.status() != StatusCode::OK {
        return Err(FetchError::Status(response.status()));
    }
    let max_age = max_age(response.headers());
    let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|e| FetchError::Body(e.to_string()))?
        .to_bytes();
    Ok((body, max_age))
}

/// `Cache-Control: max-age=N` as a duration; `no-cache`/`no-store` as zero (the floor then
/// applies).
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let directives = headers.get_all(header::CACHE_CONTROL).iter().filter_map(|v| v.to_str().ok());
    let mut found = None;
    for directive in directives.flat_map(|v| v.split(',')).map(str::trim) {
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            found = value.trim_matches('"').parse().ok().map(Duration::from_secs);
        }
    }
    found
}

fn tls_connector(ca: Option<&Path>) -> anyhow::Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let certs = rustls_pemfile::certs(&mut pem.as_slice()).collect::<Result<Vec<_>, _>>()?;
            roots.add_parsable_certificates(certs);
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    anyhow::ensure!(!roots.is_empty(), "no trusted CA certificates to verify the JWKS URL with");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use prometheus::Opts;
    use serde_json::json;

    use super::*;

    fn cache_control(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, value.parse().unwrap());
        headers
    }

    #[test]
    fn max_age_comes_from_cache_control() {
        assert_eq!(max_age(&cache_control("public, max-age=600")), Some(Duration::from_secs(600)));
        assert_eq!(max_age(&cache_control("Max-Age=60, must-revalidate")), Some(Duration::from_secs(60)));
        assert_eq!(max_age(&cache_control("no-store")), Some(Duration::ZERO));
        assert_eq!(max_age(&cache_control("max-age=600, no-cache")), Some(Duration::ZERO));
        assert_eq!(max_age(&cache_control("public")), None);
        assert_eq!(max_age(&HeaderMap::new()), None);
    }

    fn jwks(kids: &[&str]) -> String {
        let keys: Vec<_> = kids
            .iter()
            .map(|kid| {
                let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": URL_SAFE_NO_PAD.encode(pair.public_key_raw())})
            })
            .collect();
        json!({ "keys": keys }).to_string()
    }

    fn settings(floor: Duration) -> CacheSettings {
        let refreshes = IntCounterVec::new(Opts::new("r", "r"), &["result"]).unwrap();
        CacheSettings { algorithms: vec![], floor, default_max_age: Duration::from_secs(60), refreshes }
    }

    fn has(snapshot: Arc<Snapshot>, kid: &str) -> bool {
        snapshot.keys.find(Some(kid), Algorithm::EdDSA).is_ok()
    }

    #[tokio::test]
    async fn a_file_is_reread_on_refresh_and_a_bad_one_keeps_the_last_good_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks(&["one"])).unwrap();
        let cache =
            JwksCache::new("file", Source::File(path.clone()), settings(Duration::from_millis(1))).await.unwrap();
        assert!(has(cache.current().await, "one"));

        std::fs::write(&path, jwks(&["two"])).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let snapshot = cache.refresh().await;
        assert!(has(snapshot.clone(), "two") && !has(snapshot, "one"));

        std::fs::write(&path, "{\"keys\": [{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}]}").unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(has(cache.refresh().await, "two"), "a set with no usable key is a failed refresh");
        assert_eq!(cache.refreshes.with_label_values(&["error"]).get(), 1);
    }

    #[tokio::test]
    async fn no_refresh_within_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks(&["one"])).unwrap();
        let cache =
            JwksCache::new("file", Source::File(path.clone()), settings(Duration::from_secs(60))).await.unwrap();
        std::fs::write(&path, jwks(&["two"])).unwrap();
        assert!(has(cache.refresh().await, "one"));
        assert_eq!(cache.refreshes.with_label_values(&["ok"]).get(), 1);
    }

    #[tokio::test]
    async fn an_unreadable_file_at_start_is_an_error() {
        let missing = PathBuf::from("/nonexistent/jwks.json");
        assert!(JwksCache::new("file", Source::File(missing), settings(Duration::from_secs(1))).await.is_err());
    }
}
