//! Shared harness for the integration tests: start the real `forge` binary, talk to it over
//! real TLS, and stand up upstreams that misbehave on purpose.
//!
//! The misbehaving upstreams below are raw TCP stand-ins: no real MCP server can be made to
//! send garbage or reset a connection on cue. Everything that tests MCP behaviour itself
//! uses the real SDK peers in `tests/peers/` instead.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A peer server (SDK server, conformance upstream) that prints `LISTENING <port>` once ready.
pub struct ListeningServer {
    child: Child,
    pub port: u16,
}

impl ListeningServer {
    /// Starts `command --port 0` and waits for its port.
    pub fn start(mut command: Command) -> ListeningServer {
        let mut child = command.args(["--port", "0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port =
            line.trim().strip_prefix("LISTENING ").unwrap_or_else(|| panic!("server said {line:?}")).parse().unwrap();
        ListeningServer { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for ListeningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running gateway process.
pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    pub mcp_url: String,
    pub admin_url: String,
    pub state: tempfile::TempDir,
    pub stderr_path: PathBuf,
}

impl Gateway {
    /// Starts `forge run` with the given extra arguments on loopback ports chosen by the OS.
    pub fn start(args: &[&str]) -> Gateway {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Gateway {
        let state = tempfile::tempdir().unwrap();
        let stderr_path = state.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_forge"));
        command
            .arg("run")
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .arg("--state-dir")
            .arg(state.path())
            .args(args)
            .env_remove("FORGE_UPSTREAM")
            .env_remove("FORGE_LISTEN")
            .env("RUST_LOG", "info")
            // The repository's built detectors are the default plugins; a test that wants
            // detectors names its directory (tests/plugins_detectors.rs).
            .env("FORGE_PLUGINS_SHIPPED", "false")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("forge binary runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("gateway did not start: {}", std::fs::read_to_string(&stderr_path).unwrap_or_default());
            }
        };
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
                .to_string()
        };
        let mcp_url = field("mcp");
        let admin_url = field("admin");
        let authority = mcp_url.split("://").nth(1).unwrap().split('/').next().unwrap();
        let addr = authority.parse().unwrap();
        Gateway { child, addr, mcp_url, admin_url, state, stderr_path }
    }

    pub fn ca_path(&self) -> PathBuf {
        self.state.path().join("tls/dev-cert.pem")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The log once it contains `needle` (lines are written by a background thread), or
    /// the log as it is after five seconds.
    pub fn log_containing(&self, needle: &str) -> String {
        for _ in 0..100 {
            let logs = self.logs();
            if logs.contains(needle) {
                return logs;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.logs()
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args(["-s", signal, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// A TLS client that trusts this gateway's development certificate.
    pub fn client(&self) -> TlsClient {
        TlsClient::new(&self.ca_path(), self.addr)
    }

    /// GETs a path on the admin port.
    pub async fn admin_get(&self, path: &str) -> (StatusCode, String) {
        let addr: SocketAddr = self.admin_url.trim_start_matches("http://").parse().unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let (status, _, body) =
            send_http1(stream, Request::get(path).header("host", "admin").body(Full::new(Bytes::new())).unwrap()).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// `forge_connections_accepted_total` of each serving worker, by worker index.
    pub async fn accepted_by_worker(&self) -> Vec<u64> {
        let (_, text) = self.admin_get("/metrics").await;
        let mut counts = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("forge_connections_accepted_total{worker=\"") else { continue };
            let (index, value) = rest.split_once("\"} ").unwrap_or_else(|| panic!("odd sample {line}"));
            let index: usize = index.parse().unwrap();
            counts.resize(counts.len().max(index + 1), 0);
            counts[index] = value.parse().unwrap();
        }
        counts
    }

    /// The value of a metric sample (a line starting with `series`), or 0.
    pub async fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.admin_get("/metrics").await;
        text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

impl TlsClient {
    pub fn new(ca: &Path, addr: SocketAddr) -> TlsClient {
        Self::with_alpn(ca, addr, vec![b"http/1.1".to_vec()], None)
    }

    pub fn with_alpn(
        ca: &Path,
        addr: SocketAddr,
        alpn: Vec<Vec<u8>>,
        client_cert: Option<(PathBuf, PathBuf)>,
    ) -> TlsClient {
        Self::build(ca, addr, alpn, client_cert, rustls::DEFAULT_VERSIONS)
    }

    /// A client that offers only TLS 1.2.
    pub fn tls12_only(ca: &Path, addr: SocketAddr) -> TlsClient {
        Self::build(ca, addr, vec![b"http/1.1".to_vec()], None, &[&rustls::version::TLS12])
    }

    fn build(
        ca: &Path,
        addr: SocketAddr,
        alpn: Vec<Vec<u8>>,
        client_cert: Option<(PathBuf, PathBuf)>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> TlsClient {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(ca).unwrap();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match client_cert {
            Some((cert, key)) => {
                let certs =
                    rustls_pemfile::certs(&mut std::fs::read(cert).unwrap().as_slice()).map(Result::unwrap).collect();
                let key = rustls_pemfile::private_key(&mut std::fs::read(key).unwrap().as_slice()).unwrap().unwrap();
                builder.with_client_auth_cert(certs, key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn;
        TlsClient { config: Arc::new(config), addr }
    }

    pub async fn connect(&self) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        tokio_rustls::TlsConnector::from(self.config.clone()).connect(name, tcp).await
    }

    /// POSTs a JSON-RPC body to `path` with MCP's usual headers plus `extra`.
    pub async fn post(&self, path: &str, body: &str, extra: &[(&str, &str)]) -> Reply {
        let mut request = Request::post(path).header("host", "localhost").header("content-type", "application/json");
        if !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("accept")) {
            request = request.header("accept", "application/json, text/event-stream");
        }
        for (k, v) in extra {
            request = request.header(*k, *v);
        }
        self.send(request.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await
    }

    pub async fn send(&self, request: Request<Full<Bytes>>) -> Reply {
        let stream = self.connect().await.expect("TLS connection");
        let (status, headers, body) = send_http1(stream, request).await;
        Reply { status, headers, body }
    }
}

/// Sends one request over an established stream with HTTP/1.1 and reads the whole response.
pub async fn send_http1<S>(stream: S, request: Request<Full<Bytes>>) -> (StatusCode, HeaderMap, Bytes)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    (parts.status, parts.headers, body)
}

/// How a stand-in upstream answers each connection.
#[derive(Clone)]
pub enum Behaviour {
    /// A well-formed HTTP response with this content type and body.
    Respond { content_type: &'static str, body: String },
    /// Bytes that are not HTTP.
    Garbage,
    /// Close the connection as soon as the request arrived.
    Reset,
    /// Never answer.
    Hang,
    /// An SSE stream that sends a JSON-RPC notification every 50 ms until the peer is gone.
    EndlessSse,
}

/// A stand-in upstream on a loopback port; `requests` counts requests that reached it and
/// `closed` fires when an `EndlessSse` peer goes away.
pub struct StandIn {
    pub url: String,
    pub requests: Arc<std::sync::atomic::AtomicUsize>,
    pub closed: Arc<tokio::sync::Notify>,
    pub bodies: Arc<std::sync::Mutex<Vec<String>>>,
    /// The request heads (request line and headers, lower-cased) in arrival order.
    pub heads: Arc<std::sync::Mutex<Vec<String>>>,
}

pub async fn stand_in(behaviour: Behaviour) -> StandIn {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let closed = Arc::new(tokio::sync::Notify::new());
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (r, c, b, h) = (requests.clone(), closed.clone(), bodies.clone(), heads.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let (behaviour, r, c, b, h) = (behaviour.clone(), r.clone(), c.clone(), b.clone(), h.clone());
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut stream).await else { return };
                r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                b.lock().unwrap().push(body);
                h.lock().unwrap().push(head);
                match behaviour {
                    Behaviour::Respond { content_type, body } => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(head.as_bytes()).await;
                        let _ = stream.write_all(body.as_bytes()).await;
                    }
                    Behaviour::Garbage => {
                        let _ = stream.write_all(b"THIS IS NOT HTTP\r\n\r\n").await;
                    }
                    Behaviour::Reset => drop(stream),
                    Behaviour::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
                    Behaviour::EndlessSse => {
                        let head =
                            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                        let _ = stream.write_all(head.as_bytes()).await;
                        let event = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"tick\"}}\n\n";
                        let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                        loop {
                            if stream.write_all(chunk.as_bytes()).await.is_err() {
                                c.notify_one();
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
    });
    StandIn { url, requests, closed, bodies, heads }
}

/// Reads one HTTP/1.1 request (headers + content-length body); returns its head
/// (lower-cased) and body.
async fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + length {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        return Some((head, String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned()));
    }
}

/// An upstream answering every request with `{"id":42,"result":{}}` as JSON.
pub fn ok_upstream() -> Behaviour {
    Behaviour::Respond { content_type: "application/json", body: r#"{"jsonrpc":"2.0","id":42,"result":{}}"#.into() }
}

/// How many serving workers accepted at least one connection (of [`Gateway::accepted_by_worker`]).
pub fn busy_workers(counts: &[u64]) -> usize {
    counts.iter().filter(|&&n| n > 0).count()
}

/// An upstream that reads a request and answers it (`{"id":42,"result":{}}`) only after
/// `delay`, so requests are in flight when a test acts. Returns its `/mcp` URL.
pub async fn slow_upstream(delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let body = r#"{"jsonrpc":"2.0","id":42,"result":{}}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
            });
        }
    });
    url
}

/// A free loopback port with nothing listening on it.
pub fn dead_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/mcp")
}

pub const TOOLS_CALL: &str =
    r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#;

/// Writes a YAML config into the directory and returns its path.
pub fn write_config(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("forge.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Sends a trivial request on an established TLS stream; errors if the server refuses it.
pub async fn send_http1_checked(
    stream: tokio_rustls::client::TlsStream<TcpStream>,
) -> Result<StatusCode, hyper::Error> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = Request::get("/healthz").header("host", "localhost").body(Full::new(Bytes::new())).unwrap();
    Ok(sender.send_request(request).await?.status())
}

/// Waits (up to 30 s) for the one line a `forge` process prints on stdout once it listens
/// (`… mcp=https://ADDR/mcp admin=http://ADDR`) and returns the address of each named URL.
/// Panics with the process's stderr log when the line does not come.
pub fn announced_addrs<const N: usize>(child: &mut Child, names: [&str; N], stderr_log: &Path) -> [SocketAddr; N] {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    let addr = |name: &str| -> SocketAddr {
        let url = line.split_whitespace().find_map(|w| w.strip_prefix(&format!("{name}="))).unwrap_or_else(|| {
            panic!("forge did not start ({line:?}):\n{}", std::fs::read_to_string(stderr_log).unwrap_or_default())
        });
        url.split("://").nth(1).unwrap().split('/').next().unwrap().parse().unwrap()
    };
    names.map(addr)
}
