//! The sidecar the webhook injects actually runs: its container spec (command, args, env,
//! volume mounts) is taken from the patch and started as the real `forge` binary, with each
//! mount path mapped to a temporary directory laid out the way the kubelet lays it out, in
//! front of a real MCP server (the TypeScript SDK v1 server in tests/peers). A tool called
//! through it answers, its probes are green, its answers are signed with the key from the
//! mounted Secret, and the detectors from the plugin ConfigMaps refuse a leaked credential.

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

/// The patched pod's sidecar container and the pod's volumes, as the webhook returns them.
fn injected_sidecar(server_port: u16) -> (Value, Vec<Value>) {
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
    let sidecar = containers.iter().find(|c| c["name"] == "forge").unwrap().clone();
    (sidecar, pod["spec"]["volumes"].as_array().unwrap().clone())
}

/// The Secrets and ConfigMaps of namespace team-a the fixture config names, key → content:
/// the TLS Secret, the evidence key, the default policy bundle and one ConfigMap per
/// plugin holding the shipped detector's `manifest.yaml` and `<name>.wasm`.
struct Namespace {
    signing_key: forge::signing::SigningKey,
    tls: rcgen::CertifiedKey<rcgen::KeyPair>,
}

impl Namespace {
    fn new() -> Self {
        let tls = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        Namespace { signing_key: forge::signing::SigningKey::generate().unwrap(), tls }
    }

    fn object(&self, kind: &str, name: &str) -> Vec<(String, Vec<u8>)> {
        let files = |dir: PathBuf| -> Vec<(String, Vec<u8>)> {
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .map(|p| (p.file_name().unwrap().to_str().unwrap().to_string(), std::fs::read(&p).unwrap()))
                .collect();
            files.sort();
            files
        };
        match (kind, name) {
            ("secret", "forge-sidecar-tls") => vec![
                ("tls.crt".into(), self.tls.cert.pem().into_bytes()),
                ("tls.key".into(), self.tls.signing_key.serialize_pem().into_bytes()),
            ],
            ("secret", "forge-signing-key") => vec![("signing-key.pem".into(), self.signing_key.to_pem().into_bytes())],
            ("configMap", "forge-policy") => files(repo().join("policies")),
            ("configMap", plugin) if plugin.starts_with("forge-plugin-") => {
                files(shipped_detectors().join(plugin.trim_start_matches("forge-plugin-")))
            }
            _ => panic!("namespace team-a has no {kind} {name}"),
        }
    }

    /// Lays out `volume` in `dir` as the kubelet does for Secret, ConfigMap and projected
    /// volumes: each file (at its `items` path, if any) lives in a timestamped directory
    /// that `..data` links to, and each top-level name is a link through `..data` (so an
    /// update swaps atomically).
    fn populate(&self, volume: &Value, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        let sources: Vec<(&str, &Value)> = if let Some(projected) = volume["projected"]["sources"].as_array() {
            projected.iter().flat_map(|s| s.as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v))).collect()
        } else {
            ["secret", "configMap"].iter().filter(|k| volume.get(**k).is_some()).map(|k| (*k, &volume[*k])).collect()
        };
        let stamp = dir.join("..2026_12_01_00_00_00.000000001");
        for (kind, source) in sources {
            let name = source["secretName"].as_str().or(source["name"].as_str()).unwrap();
            let data = self.object(kind, name);
            let items: Vec<(String, String)> = match source["items"].as_array() {
                Some(items) => items
                    .iter()
                    .map(|i| (i["key"].as_str().unwrap().to_string(), i["path"].as_str().unwrap().to_string()))
                    .collect(),
                None => data.iter().map(|(k, _)| (k.clone(), k.clone())).collect(),
            };
            for (key, path) in items {
                let (_, content) =
                    data.iter().find(|(k, _)| *k == key).unwrap_or_else(|| panic!("{name} has no {key}"));
                let file = stamp.join(&path);
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, content).unwrap();
                let top = Path::new(&path).components().next().unwrap().as_os_str().to_owned();
                if dir.join(&top).symlink_metadata().is_err() {
                    std::os::unix::fs::symlink(Path::new("..data").join(&top), dir.join(&top)).unwrap();
                }
            }
        }
        if stamp.exists() {
            std::os::unix::fs::symlink(stamp.file_name().unwrap(), dir.join("..data")).unwrap();
        }
    }
}

/// Compiles the mounted plugins into the state volume's component cache, as a restarted pod
/// with a persistent state volume would have it: a debug build of the gateway compiles a
/// detector more slowly than the start-up wait allows on a busy machine. The sidecar still
/// reads and checks every mounted file itself (the cache is keyed by the component's digest).
fn warm_plugin_cache(mounts: &[(String, PathBuf)]) {
    let dir = |path: &str| mounts.iter().find(|(m, _)| m == path).map(|(_, d)| d.clone());
    let (Some(plugins), Some(state)) = (dir("/etc/forge/plugins"), dir("/var/lib/forge")) else { return };
    let yaml = format!("directory: {}\nreload: false\n", plugins.display());
    let config: forge::plugins::PluginsConfig = serde_yaml_ng::from_str(&yaml).unwrap();
    let trust = std::sync::Arc::new(forge::provenance::Trust::development());
    forge::plugins::Plugins::load(&config, &state, trust).expect("the mounted plugins load");
}

/// The shipped detectors, as wasm-plugins/build.sh builds them (once, if they are not).
fn shipped_detectors() -> PathBuf {
    let dist = repo().join("wasm-plugins/dist");
    if !dist.join("secrets/manifest.yaml").is_file() {
        let status = Command::new(repo().join("wasm-plugins/build.sh")).status();
        assert!(status.is_ok_and(|s| s.success()), "wasm-plugins/build.sh failed");
    }
    dist
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
fn start(container: &Value, volumes: &[Value], namespace: &Namespace) -> Sidecar {
    let dirs = tempfile::tempdir().unwrap();
    let mounts: Vec<(String, PathBuf)> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let name = m["name"].as_str().unwrap();
            let dir = dirs.path().join(name);
            let volume = volumes.iter().find(|v| v["name"] == name).expect("every mount has its volume");
            namespace.populate(volume, &dir);
            (m["mountPath"].as_str().unwrap().to_string(), dir)
        })
        .collect();
    warm_plugin_cache(&mounts);
    let command = container["command"].as_array().unwrap();
    assert_eq!(command, &[json!("/usr/local/bin/forge")], "the image's binary");
    let mut process = Command::new(env!("CARGO_BIN_EXE_forge"));
    process.env_clear();
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
    let record = tempfile::NamedTempFile::new().unwrap();
    let mut node = Command::new("node");
    node.arg(peers.join("ts-v1-server.mjs")).arg("--json").arg("--record").arg(record.path());
    let server = ListeningServer::start(node);

    let namespace = Namespace::new();
    let (container, volumes) = injected_sidecar(server.port);
    let sidecar = start(&container, &volumes, &namespace);
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
    let reply = client.post("/mcp", &call.to_string(), &headers).await;
    let answer = reply.json();
    assert_eq!(answer["result"]["structuredContent"]["sum"], 5, "{answer}");

    // Evidence is signed with the namespace's key from the mounted Secret, not a development key.
    let input = reply.headers.get("signature-input").expect("the answer is signed").to_str().unwrap();
    assert!(input.contains(&format!(";keyid=\"{}\"", namespace.signing_key.key_id())), "{input}");

    // The detectors from the plugin ConfigMaps ran: a credential in the arguments is refused
    // before the server sees it; the same call without one goes through.
    let leak = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo",
        "arguments": {"text": "APP_ENV=production\nAWS_ACCESS_KEY_ID=AKIAKVQZ5GX4BRTL3CZV\n"}}});
    let refused = client.post("/mcp", &leak.to_string(), &headers).await.json();
    assert_eq!(refused["error"]["data"]["code"], "secret_detected", "{refused}");
    let benign = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "echo",
        "arguments": {"text": "APP_ENV=production\nAWS_REGION=eu-west-1\n"}}});
    let echoed = client.post("/mcp", &benign.to_string(), &headers).await.json();
    assert_eq!(echoed["result"]["content"][0]["text"], "echo: APP_ENV=production\nAWS_REGION=eu-west-1\n", "{echoed}");
    let seen = std::fs::read_to_string(record.path()).unwrap();
    assert!(!seen.contains("AKIAKVQZ5GX4BRTL3CZV") && seen.contains("eu-west-1"), "{seen}");

    // The policy bundle came from the ConfigMap-shaped mount, not from the working directory.
    let (_, ready) = admin_get(sidecar.admin, "/readyz").await;
    assert!(ready.contains("forge-policy"), "policy status names the mounted bundle: {ready}");
    let (_, metrics) = admin_get(sidecar.admin, "/metrics").await;
    assert!(metrics.contains("plugin=\"secrets\""), "the secrets detector was called: {metrics}");
}
