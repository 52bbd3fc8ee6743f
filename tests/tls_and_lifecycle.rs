//! TLS termination (ALPN, hot reload, mTLS identities, the plaintext flag) and process
//! lifecycle (SIGTERM drain).

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::{ok_upstream, stand_in, Gateway, TlsClient, TOOLS_CALL};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A CA plus a leaf signed by it, written as PEM files in `dir` with the given prefix.
fn issue(
    dir: &Path,
    prefix: &str,
    sans: Vec<rcgen::SanType>,
    cn: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, format!("{prefix} test CA"));
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = sans;
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let (ca_path, cert_path, key_path) = (
        dir.join(format!("{prefix}-ca.pem")),
        dir.join(format!("{prefix}.pem")),
        dir.join(format!("{prefix}-key.pem")),
    );
    std::fs::write(&ca_path, ca.pem()).unwrap();
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (ca_path, cert_path, key_path)
}

fn server_sans() -> Vec<rcgen::SanType> {
    vec![rcgen::SanType::DnsName("localhost".try_into().unwrap())]
}

#[tokio::test]
async fn alpn_negotiates_http2_and_requests_work_over_it() {
    let upstream = stand_in(ok_upstream()).await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let client = TlsClient::with_alpn(&gw.ca_path(), gw.addr, vec![b"h2".to_vec(), b"http/1.1".to_vec()], None);
    let tls = client.connect().await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let version = tls.get_ref().1.protocol_version().unwrap();
    assert!(matches!(version, rustls::ProtocolVersion::TLSv1_3 | rustls::ProtocolVersion::TLSv1_2));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let request = http::Request::post(format!("https://localhost{}", "/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(Full::new(Bytes::from_static(TOOLS_CALL.as_bytes())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"jsonrpc":"2.0","id":42,"result":{}}"#);
}

#[tokio::test]
async fn tls_1_2_clients_are_served_too() {
    let upstream = stand_in(ok_upstream()).await;
    let gw = Gateway::start(&["--upstream", &upstream.url]);
    let client = TlsClient::tls12_only(&gw.ca_path(), gw.addr);
    let tls = client.connect().await.unwrap();
    assert_eq!(tls.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    assert_eq!(client.post("/mcp", TOOLS_CALL, &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn certificate_files_are_reloaded_without_restart() {
    let upstream = stand_in(ok_upstream()).await;
    let dir = tempfile::tempdir().unwrap();
    let (ca_a, cert_a, key_a) = issue(dir.path(), "a", server_sans(), "gateway-a");
    let live_cert = dir.path().join("tls.crt");
    let live_key = dir.path().join("tls.key");
    std::fs::copy(&cert_a, &live_cert).unwrap();
    std::fs::copy(&key_a, &live_key).unwrap();
    let gw = Gateway::start(&[
        "--upstream",
        &upstream.url,
        "--tls-cert",
        live_cert.to_str().unwrap(),
        "--tls-key",
        live_key.to_str().unwrap(),
    ]);
    assert!(TlsClient::new(&ca_a, gw.addr).connect().await.is_ok());

    // A broken pair is refused and the last good certificate stays in service.
    std::fs::write(&live_cert, "not a certificate").unwrap();
    let mut refused = 0.0;
    for _ in 0..100 {
        refused = gw.metric("forge_tls_reloads_total{result=\"error\"}").await;
        if refused >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused >= 1.0, "the broken pair was tried and refused");
    assert!(TlsClient::new(&ca_a, gw.addr).connect().await.is_ok(), "the last good certificate still serves");

    let (ca_b, cert_b, key_b) = issue(dir.path(), "b", server_sans(), "gateway-b");
    std::fs::copy(&key_b, &live_key).unwrap();
    std::fs::copy(&cert_b, &live_cert).unwrap();
    let client_b = TlsClient::new(&ca_b, gw.addr);
    let mut switched = false;
    for _ in 0..50 {
        if client_b.connect().await.is_ok() {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(switched, "the new certificate is served after the files change");
    assert!(TlsClient::new(&ca_a, gw.addr).connect().await.is_err(), "the old certificate is gone");

    // Reading the files (for reloads, handshakes or anyone else) never triggers another reload.
    let reloads = gw.metric("forge_tls_reloads_total{result=\"ok\"}").await;
    std::fs::write(dir.path().join("unrelated.txt"), "a neighbour changed").unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(gw.metric("forge_tls_reloads_total{result=\"ok\"}").await, reloads, "no reload without new contents");
}

#[tokio::test]
async fn required_client_certificates_become_the_principal() {
    let upstream = stand_in(ok_upstream()).await;
    let dir = tempfile::tempdir().unwrap();
    let spiffe = "spiffe://cluster.local/ns/agents/sa/planner";
    let (client_ca, client_cert, client_key) =
        issue(dir.path(), "client", vec![rcgen::SanType::URI(spiffe.try_into().unwrap())], "planner");
    let config = common::write_config(
        dir.path(),
        &format!("tls:\n  client_auth:\n    mode: required\n    ca: {}\n", client_ca.display()),
    );
    let gw = Gateway::start(&["--upstream", &upstream.url, "--config", config.to_str().unwrap()]);

    let anonymous = gw.client();
    let refused = match anonymous.connect().await {
        // TLS 1.3 reports the client-certificate refusal on the first read.
        Ok(tls) => common::send_http1_checked(tls).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a client without a certificate is refused");

    let alpn = vec![b"http/1.1".to_vec()];
    let with_cert = TlsClient::with_alpn(&gw.ca_path(), gw.addr, alpn, Some((client_cert, client_key)));
    let reply = with_cert.post("/mcp", TOOLS_CALL, &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(gw.log_containing(spiffe).contains(spiffe), "the access log names the SPIFFE identity");
    assert!(gw.metric("forge_tls_handshake_failures_total").await >= 1.0);
}

#[tokio::test]
async fn plaintext_needs_the_explicit_flag_and_says_so() {
    let upstream = stand_in(ok_upstream()).await;
    let gw = Gateway::start(&["--upstream", &upstream.url, "--insecure-plaintext"]);
    assert!(gw.mcp_url.starts_with("http://"));
    assert!(gw.log_containing("TLS IS OFF").contains("TLS IS OFF"));
    let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let request = http::Request::post("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(TOOLS_CALL.as_bytes())))
        .unwrap();
    let (status, _, _) = common::send_http1(stream, request).await;
    assert_eq!(status, StatusCode::OK);

    let tls_gw = Gateway::start(&["--upstream", &upstream.url]);
    assert!(tls_gw.mcp_url.starts_with("https://"), "TLS is the default");
    assert!(!tls_gw.log_containing("forge gateway started").contains("TLS IS OFF"));
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits_zero() {
    // The upstream answers after a delay, so the request is in flight when SIGTERM lands.
    let url = common::slow_upstream(Duration::from_millis(1500)).await;
    let mut gw = Gateway::start(&["--upstream", &url]);
    let client = gw.client();
    let in_flight = tokio::spawn(async move { client.post("/mcp", TOOLS_CALL, &[]).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    gw.signal("TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = gw.admin_get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "not ready while draining: {body}");
    assert!(tokio::net::TcpStream::connect(gw.addr).await.is_err(), "no new connections while draining");
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "the in-flight request completes");
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(0));
}
