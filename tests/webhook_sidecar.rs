//! The sidecar the webhook injects actually runs: its container spec (command, args, env,
//! volume mounts) is taken from the patch and started as the real `forge` binary, with each
//! mount path mapped to a temporary directory laid out the way the kubelet lays it out, in
//! front of a real MCP server (the TypeScript SDK v1 server in tests/peers). A tool called
//! through it answers, and its probes are green.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use common::{ListeningServer, TlsClient};
use forge::webhook::WebhookConfig;
use http::StatusCode;
use serde_json::{json, Value};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The pod a team would deploy: an MCP server on its named port, with a probe on it.
fn pod(server_port: u16) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "mcp", "namespace": "team-a", "labels": {"forge.dev/inject": "true"}},
        "spec": {"containers": [{
            "name": "server", "image": "ghcr.io/example/mcp-server:1",
            "ports": [{"name": "mcp", "containerPort": server_port}],
            "readinessProbe": {"tcpSocket": {"port": "mcp"}},
        }]},
    })
}

/// The patched pod's sidecar container, as the webhook returns it.
fn injected_sidecar(server_port: u16) -> Value {
    let config = WebhookConfig::from_file(&repo().join("tests/fixtures/webhook/config.yaml")).unwrap();
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "run-1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "namespace": "team-a", "object": pod(server_port)}});
    let reviewed = forge::webhook::admission::review(&config, &serde_json::to_vec(&review).unwrap()).unwrap();
    let encoded = reviewed.body["response"]["patch"].as_str().expect("the pod is injected");
    let patch = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    let mut pod = pod(server_port);
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    json_patch::patch(&mut pod, &patch).unwrap();
    let containers = pod["spec"]["containers"].as_array().unwrap();
    containers.iter().find(|c| c["name"] == "forge").unwrap().clone()
}

/// Lays out one volume in `dir` as the kubelet would for this sidecar.
fn populate(volume: &str, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    match volume {
        "forge-tls" => {
            let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
            std::fs::write(dir.join("tls.crt"), cert.cert.pem()).unwrap();
            std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).unwrap();
        }
        // A ConfigMap volume: files are symlinks into `..data`, itself a symlink to a
        // timestamped directory (so updates swap atomically).
        "forge-policy" => {
            let stamp = dir.join("..2026_12_01_00_00_00.000000001");
            std::fs::create_dir(&stamp).unwrap();
            for entry in std::fs::read_dir(repo().join("policies")).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap();
                std::fs::copy(&path, stamp.join(name)).unwrap();
                std::os::unix::fs::symlink(Path::new("..data").join(name), dir.join(name)).unwrap();
            }
            std::os::unix::fs::symlink(stamp.file_name().unwrap(), dir.join("..data")).unwrap();
        }
        _ => {}
    }
}

/// Rewrites a path under one of the sidecar's mounts to its temporary directory, and a
/// listen address on every interface to a free loopback port.
fn localize(value: &str, mounts: &[(String, PathBuf)]) -> String {
    if value.starts_with("0.0.0.0:") {
        return "127.0.0.1:0".into();
    }
    for (mount, dir) in mounts {
        if let Some(rest) = value.strip_prefix(mount.as_str()) {
            return format!("{}{rest}", dir.display());
        }
    }
    value.to_string()
}

struct Sidecar {
    child: Child,
    mcp: SocketAddr,
    admin: SocketAddr,
    ca: PathBuf,
    _dirs: tempfile::TempDir,
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the container spec with exactly its command, args and env (nothing inherited).
fn start(container: &Value) -> Sidecar {
    let dirs = tempfile::tempdir().unwrap();
    let mounts: Vec<(String, PathBuf)> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let name = m["name"].as_str().unwrap();
            let dir = dirs.path().join(name);
            populate(name, &dir);
            (m["mountPath"].as_str().unwrap().to_string(), dir)
        })
        .collect();
    let command = container["command"].as_array().unwrap();
    assert_eq!(command, &[json!("/usr/local/bin/forge")], "the image's binary");
    let mut process = Command::new(env!("CARGO_BIN_EXE_forge"));
    process.env_clear();
    // Not the repository's built detectors: the image has none.
    process.env("FORGE_PLUGINS_SHIPPED", "false");
    for arg in container["args"].as_array().unwrap() {
        process.arg(localize(arg.as_str().unwrap(), &mounts));
    }
    for var in container["env"].as_array().unwrap() {
        process.env(var["name"].as_str().unwrap(), localize(var["value"].as_str().unwrap(), &mounts));
    }
    let log = std::fs::File::create(dirs.path().join("stderr.log")).unwrap();
    let mut child = process.stdout(Stdio::piped()).stderr(log).spawn().unwrap();
    let [mcp, admin] = common::announced_addrs(&mut child, ["mcp", "admin"], &dirs.path().join("stderr.log"));
    let ca = mounts.iter().find(|(m, _)| m == "/etc/forge/tls").unwrap().1.join("tls.crt");
    Sidecar { child, mcp, admin, ca, _dirs: dirs }
}

async fn admin_get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    use bytes::Bytes;
    use http_body_util::Full;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = http::Request::get(path).header("host", "pod").body(Full::new(Bytes::new())).unwrap();
    let (status, _, body) = common::send_http1(stream, request).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn the_injected_sidecar_serves_a_real_mcp_server() {
    let peers = repo().join("tests/peers");
    assert!(peers.join("node_modules/@modelcontextprotocol/sdk").exists(), "peers not installed: run scripts/test.sh");
    let mut node = Command::new("node");
    node.arg(peers.join("ts-v1-server.mjs")).arg("--json");
    let server = ListeningServer::start(node);

    let sidecar = start(&injected_sidecar(server.port));
    // The kubelet's probes: live, and ready because the server behind it answers.
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let (status, body) = admin_get(sidecar.admin, "/readyz").await;
            if status == StatusCode::OK {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("/readyz turns ready");
    assert!(ready.contains("\"ready\":true"), "{ready}");
    assert_eq!(admin_get(sidecar.admin, "/healthz").await.0, StatusCode::OK);

    let client = TlsClient::new(&sidecar.ca, sidecar.mcp);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "kubelet-less", "version": "1"}}});
    let reply = client.post("/mcp", &init.to_string(), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let session = reply.headers["mcp-session-id"].to_str().unwrap().to_string();
    let headers = [("mcp-session-id", session.as_str()), ("mcp-protocol-version", "2025-06-18")];
    client.post("/mcp", r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, &headers).await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 2, "b": 3}}});
    let answer = client.post("/mcp", &call.to_string(), &headers).await.json();
    assert_eq!(answer["result"]["structuredContent"]["sum"], 5, "{answer}");

    // The policy bundle came from the ConfigMap-shaped mount, not from the working directory.
    let (_, ready) = admin_get(sidecar.admin, "/readyz").await;
    assert!(ready.contains("forge-policy"), "policy status names the mounted bundle: {ready}");
}
