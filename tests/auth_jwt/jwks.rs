//! The JWKS cache against a live endpoint (a hyper server on 127.0.0.1) whose keys rotate,
//! that fails, and that announces cache lifetimes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use forge::auth::AuthError;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::AbortOnDropHandle;

use super::*;

/// What the endpoint answers, and how often it was asked.
struct Served {
    body: String,
    status: StatusCode,
    cache_control: Option<String>,
    delay: Duration,
    hits: usize,
}

struct JwksServer {
    url: String,
    served: Arc<Mutex<Served>>,
    _task: AbortOnDropHandle<()>,
}

impl JwksServer {
    async fn start(keys: &[&SigningKey]) -> JwksServer {
        JwksServer::start_with(keys, None).await
    }

    async fn start_with(keys: &[&SigningKey], tls: Option<TlsAcceptor>) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}/jwks", listener.local_addr().unwrap());
        let served = Arc::new(Mutex::new(Served {
            body: jwks(keys).to_string(),
            status: StatusCode::OK,
            cache_control: None,
            delay: Duration::ZERO,
            hits: 0,
        }));
        let state = served.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (state, tls) = (state.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |_request| answer(state.clone()));
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        Some(tls) => match tls.accept(tcp).await {
                            Ok(stream) => http.serve_connection(TokioIo::new(stream), service).await,
                            Err(_) => return,
                        },
                        None => http.serve_connection(TokioIo::new(tcp), service).await,
                    };
                });
            }
        });
        JwksServer { url, served, _task: AbortOnDropHandle::new(task) }
    }

    fn serve(&self, keys: &[&SigningKey]) {
        let mut served = self.served.lock().unwrap();
        served.body = jwks(keys).to_string();
        served.status = StatusCode::OK;
    }

    fn fail(&self, status: StatusCode) {
        self.served.lock().unwrap().status = status;
    }

    fn cache_control(&self, value: &str) {
        self.served.lock().unwrap().cache_control = Some(value.into());
    }

    fn delay(&self, delay: Duration) {
        self.served.lock().unwrap().delay = delay;
    }

    fn hits(&self) -> usize {
        self.served.lock().unwrap().hits
    }

    /// Waits (up to 2 s) for the endpoint to have been asked `n` times.
    async fn wait_for_hits(&self, n: usize) {
        for _ in 0..200 {
            if self.hits() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the JWKS endpoint was asked {} times, not {n}", self.hits());
    }
}

async fn answer(state: Arc<Mutex<Served>>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (body, status, cache_control, delay) = {
        let mut served = state.lock().unwrap();
        served.hits += 1;
        (served.body.clone(), served.status, served.cache_control.clone(), served.delay)
    };
    tokio::time::sleep(delay).await;
    let mut response = Response::builder().status(status).header("content-type", "application/json");
    if let Some(value) = cache_control {
        response = response.header("cache-control", value);
    }
    Ok(response.body(Full::new(Bytes::from(body))).unwrap())
}

fn config(url: &str, floor: &str, default_max_age: &str) -> String {
    format!(
        "mode: required\njwks_refresh_floor: {floor}\njwks_default_max_age: {default_max_age}\nissuers:\n  - issuer: {ISSUER}\n    jwks_url: {url}\n"
    )
}

#[tokio::test]
async fn rotated_keys_are_fetched_when_a_token_names_a_new_kid() {
    let (old, new) = (SigningKey::es256("2024"), SigningKey::es256("2025"));
    let server = JwksServer::start(&[&old]).await;
    let auth = authenticator(&config(&server.url, "50ms", "5m")).await;
    assert_eq!(server.hits(), 1, "keys are loaded at start");
    assert!(verify(&auth, &old.mint(&claims())).await.is_ok());
    assert_eq!(server.hits(), 1, "known keys are served from the cache");

    server.serve(&[&new]);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(verify(&auth, &new.mint(&claims())).await.is_ok());
    assert_eq!(server.hits(), 2);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(verify(&auth, &old.mint(&claims())).await, Err(AuthError::UnknownKid), "the retired key is gone");
}

/// A token verified (and remembered) with a key that is then retired is refused: new keys
/// drop every remembered token.
#[tokio::test]
async fn a_remembered_token_is_forgotten_when_its_key_is_retired() {
    let (old, new) = (SigningKey::es256("2024"), SigningKey::es256("2025"));
    let server = JwksServer::start(&[&old]).await;
    let auth = authenticator(&config(&server.url, "50ms", "5m")).await;
    let token = old.mint(&claims());
    assert!(verify(&auth, &token).await.is_ok());
    assert!(verify(&auth, &token).await.is_ok());

    server.serve(&[&new]);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(verify(&auth, &new.mint(&claims())).await.is_ok(), "the new key set is loaded");
    assert_eq!(verify(&auth, &token).await, Err(AuthError::UnknownKid), "the very same token, now refused");
}

/// Retiring a key needs no new token to be noticed: the scheduled refresh at the keys' max-age
/// drops remembered tokens too, while one signed with a key that stays is verified afresh.
#[tokio::test]
async fn a_remembered_token_is_forgotten_when_a_scheduled_refresh_retires_its_key() {
    let (retired, kept) = (SigningKey::es256("2024"), SigningKey::es256("2025"));
    let server = JwksServer::start(&[&retired, &kept]).await;
    let auth = authenticator(&config(&server.url, "50ms", "300ms")).await;
    let (doomed, survivor) = (retired.mint(&claims()), kept.mint(&claims()));
    for token in [&doomed, &survivor, &doomed, &survivor] {
        assert!(verify(&auth, token).await.is_ok());
    }

    server.serve(&[&kept]);
    tokio::time::sleep(Duration::from_millis(350)).await;
    // Stale keys serve the request that notices them stale, as they would without the cache.
    assert!(verify(&auth, &survivor).await.is_ok());
    server.wait_for_hits(2).await;
    assert_eq!(verify(&auth, &doomed).await, Err(AuthError::UnknownKid), "the remembered token is refused now");
    assert!(verify(&auth, &survivor).await.is_ok(), "a token whose key stayed still verifies");
}

#[tokio::test]
async fn concurrent_tokens_with_a_new_kid_share_one_fetch() {
    let (old, new) = (SigningKey::es256("old"), SigningKey::ed25519("new"));
    let server = JwksServer::start(&[&old]).await;
    let auth = authenticator(&config(&server.url, "50ms", "5m")).await;
    server.serve(&[&old, &new]);
    server.delay(Duration::from_millis(200));
    tokio::time::sleep(Duration::from_millis(60)).await;

    let token = new.mint(&claims());
    let results = futures_util::future::join_all((0..20).map(|_| verify(&auth, &token))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(server.hits(), 2, "one fetch for all twenty");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_cannot_hammer_the_identity_provider() {
    let key = SigningKey::es256("real");
    let forger = SigningKey::es256("forger");
    let server = JwksServer::start(&[&key]).await;
    let auth = authenticator(&config(&server.url, "30s", "5m")).await;
    let registry = prometheus::Registry::new();
    auth.register(&registry).unwrap();

    let forged: Vec<String> = (0..50).map(|i| forger.mint_as(&format!("kid-{i}"), &claims())).collect();
    let results = futures_util::future::join_all(forged.iter().map(|t| verify(&auth, t))).await;
    assert!(results.iter().all(|r| *r == Err(AuthError::UnknownKid)));
    assert_eq!(server.hits(), 1, "no fetch within the floor");
    assert_eq!(metric(&registry, "forge_auth_failures_total", "reason", "unknown_kid"), 50);
    assert!(verify(&auth, &key.mint(&claims())).await.is_ok(), "real tokens still pass");
}

#[tokio::test]
async fn keys_are_refetched_after_their_max_age() {
    let key = SigningKey::es256("k");
    let server = JwksServer::start(&[&key]).await;
    // No Cache-Control on the first answer: the configured default (300ms) applies.
    let auth = authenticator(&config(&server.url, "50ms", "300ms")).await;
    server.cache_control("public, max-age=60");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(verify(&auth, &key.mint(&claims())).await.is_ok(), "stale keys keep serving while they refresh");
    server.wait_for_hits(2).await;

    // The second answer said max-age=60: no fetch after the default's 300ms.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(verify(&auth, &key.mint(&claims())).await.is_ok());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_good_keys() {
    let (key, next) = (SigningKey::es256("k"), SigningKey::es256("next"));
    let server = JwksServer::start(&[&key]).await;
    // A failed fetch leaves the keys stale for one floor; 200ms keeps that longer than each step.
    let auth = authenticator(&config(&server.url, "200ms", "5m")).await;
    let registry = prometheus::Registry::new();
    auth.register(&registry).unwrap();

    server.fail(StatusCode::INTERNAL_SERVER_ERROR);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(verify(&auth, &next.mint(&claims())).await, Err(AuthError::UnknownKid));
    assert_eq!(server.hits(), 2);
    assert!(verify(&auth, &key.mint(&claims())).await.is_ok());

    server.serve(&[]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(verify(&auth, &next.mint(&claims())).await, Err(AuthError::UnknownKid));
    assert!(verify(&auth, &key.mint(&claims())).await.is_ok(), "an empty key set does not replace good keys");
    assert_eq!(metric(&registry, "forge_jwks_refreshes_total", "result", "error"), 2);
}

#[tokio::test]
async fn an_identity_provider_down_at_start_is_waited_for() {
    let key = SigningKey::es256("k");
    let server = JwksServer::start(&[&key]).await;
    server.fail(StatusCode::SERVICE_UNAVAILABLE);
    let auth = authenticator(&config(&server.url, "50ms", "5m")).await;
    let error = verify(&auth, &key.mint(&claims())).await.unwrap_err();
    assert_eq!((error.clone(), error.status()), (AuthError::KeysUnavailable, StatusCode::SERVICE_UNAVAILABLE));

    server.serve(&[&key]);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(verify(&auth, &key.mint(&claims())).await.is_ok());
}

/// A TLS JWKS endpoint whose self-signed certificate is only trusted when configured.
async fn tls_server(key: &SigningKey, dir: &std::path::Path) -> (JwksServer, std::path::PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let ca = dir.join("idp-ca.pem");
    std::fs::write(&ca, certified.cert.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], private)
        .unwrap();
    (JwksServer::start_with(&[key], Some(TlsAcceptor::from(Arc::new(config)))).await, ca)
}

#[tokio::test]
async fn https_endpoints_must_present_a_trusted_certificate() {
    let key = SigningKey::es256("k");
    let dir = tempfile::tempdir().unwrap();
    let (server, ca) = tls_server(&key, dir.path()).await;

    let untrusted = authenticator(&config(&server.url, "50ms", "5m")).await;
    assert_eq!(verify(&untrusted, &key.mint(&claims())).await, Err(AuthError::KeysUnavailable));

    let trusted = authenticator(&format!("{}    jwks_ca: {}\n", config(&server.url, "50ms", "5m"), ca.display())).await;
    assert!(verify(&trusted, &key.mint(&claims())).await.is_ok());
}
