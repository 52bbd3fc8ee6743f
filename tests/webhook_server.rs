//! `forge webhook` as the API server sees it: AdmissionReviews POSTed over real TLS to
//! `/mutate`, the admin port's probes and metrics, certificate rotation, and shutdown.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::TlsClient;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::Value;

struct Webhook {
    child: Child,
    mutate: SocketAddr,
    admin: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    (cert_path, key_path)
}

fn start() -> Webhook {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_cert(dir.path());
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhook/config.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_forge"))
        .arg("webhook")
        .arg("--config")
        .arg(config)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let [mutate, admin] = common::announced_addrs(&mut child, ["mutate", "admin"], &dir.path().join("stderr.log"));
    Webhook { child, mutate, admin, dir }
}

impl Webhook {
    fn client(&self) -> TlsClient {
        TlsClient::new(&self.dir.path().join("tls.crt"), self.mutate)
    }

    async fn admin_get(&self, path: &str) -> (StatusCode, String) {
        let stream = tokio::net::TcpStream::connect(self.admin).await.unwrap();
        let request = Request::get(path).header("host", "admin").body(Full::new(Bytes::new())).unwrap();
        let (status, _, body) = common::send_http1(stream, request).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.admin_get("/metrics").await;
        text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
    }
}

fn fixture(case: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/webhook/{case}.json"));
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test]
async fn reviews_over_tls_probes_metrics_and_shutdown() {
    let mut webhook = start();
    let client = webhook.client();
    let accept = [("accept", "application/json")];

    let reply = client.post("/mutate", &fixture("typical"), &accept).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/json");
    let review: Value = reply.json();
    let sent: Value = serde_json::from_str(&fixture("typical")).unwrap();
    assert_eq!(review["response"]["uid"], sent["request"]["uid"]);
    assert_eq!(review["response"]["allowed"], true);
    assert_eq!(review["response"]["patchType"], "JSONPatch");

    let review: Value = client.post("/mutate", &fixture("bad_annotations"), &accept).await.json();
    assert_eq!(review["response"]["allowed"], false);
    assert!(review["response"]["status"]["message"].as_str().unwrap().contains("forge.dev/mode"));

    // Not a review: 400, so the API server applies the webhook's failure policy.
    let reply = client.post("/mutate", r#"{"apiVersion":"v1","kind":"Pod"}"#, &accept).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&reply.body).contains("not an AdmissionReview v1 request"));
    let reply = client.post("/mutate", "{ not json", &accept).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let get = Request::get("/mutate").header("host", "localhost").body(Full::new(Bytes::new())).unwrap();
    assert_eq!(client.send(get).await.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(client.post("/other", "{}", &accept).await.status, StatusCode::NOT_FOUND);

    assert_eq!(webhook.admin_get("/healthz").await.0, StatusCode::OK);
    assert_eq!(webhook.admin_get("/readyz").await.0, StatusCode::OK);
    assert_eq!(webhook.metric("forge_webhook_admissions_total{outcome=\"injected\"}").await, 1.0);
    assert_eq!(webhook.metric("forge_webhook_admissions_total{outcome=\"rejected\"}").await, 1.0);
    assert_eq!(webhook.metric("forge_webhook_admissions_total{outcome=\"invalid\"}").await, 2.0);
    assert!(webhook.metric("forge_webhook_admission_duration_seconds_count{outcome=\"injected\"}").await >= 1.0);

    // cert-manager rotates the Secret: new connections get the new certificate.
    let old_ca = webhook.dir.path().join("old.crt");
    std::fs::copy(webhook.dir.path().join("tls.crt"), &old_ca).unwrap();
    write_cert(webhook.dir.path());
    let rotated = tokio::time::timeout(Duration::from_secs(10), async {
        while webhook.metric("forge_tls_reloads_total{result=\"ok\"}").await < 1.0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(rotated.is_ok(), "the certificate was not reloaded");
    assert!(TlsClient::new(&old_ca, webhook.mutate).connect().await.is_err(), "the old certificate is gone");
    assert_eq!(webhook.client().post("/mutate", &fixture("opted_out"), &accept).await.status, StatusCode::OK);

    let status = Command::new("kill").args(["-s", "TERM", &webhook.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exited = (0..100).find_map(|_| {
        std::thread::sleep(Duration::from_millis(50));
        webhook.child.try_wait().unwrap()
    });
    assert_eq!(exited.and_then(|s| s.code()), Some(0), "SIGTERM stops the webhook cleanly");
}

#[test]
fn a_bad_config_is_refused_at_start_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_cert(dir.path());
    let config = dir.path().join("webhook.yaml");
    std::fs::write(&config, "image: forge:1\ntls:\n  secretName: forge-tls\nonBadAnnotation: shrug\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_forge"))
        .arg("webhook")
        .arg("--config")
        .arg(&config)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 4") && stderr.contains("shrug"), "{stderr}");
}
