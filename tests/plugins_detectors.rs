//! The four shipped detectors (wasm-plugins/dist, built by wasm-plugins/build.sh) through
//! the running gateway under the default policy bundle, with a real MCP SDK server upstream
//! (tests/peers/plugin-peer.mjs, TypeScript SDK v1) and bearer tokens signed here.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{Gateway, ListeningServer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.test";
const RESOURCE: &str = "https://gw.test/mcp";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped detectors' directory, built once if it is not.
fn dist() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let dist = root().join("wasm-plugins/dist");
    if !dist.join("secrets/manifest.yaml").is_file() {
        BUILT.get_or_init(|| {
            let status = Command::new(root().join("wasm-plugins/build.sh")).status();
            assert!(status.is_ok_and(|s| s.success()), "wasm-plugins/build.sh failed");
        });
    }
    dist
}

/// Compiles the detectors into the component cache the gateways of these tests share, once,
/// before any gateway starts: a debug build compiles them far slower than a gateway may take
/// to start, and then every gateway only loads them.
fn warm_cache() -> PathBuf {
    static WARM: OnceLock<PathBuf> = OnceLock::new();
    WARM.get_or_init(|| {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugins-cache");
        let yaml = format!("directory: {}\ncache_dir: {}\nreload: false\n", dist().display(), cache.display());
        let config: forge::plugins::PluginsConfig = serde_yaml_ng::from_str(&yaml).unwrap();
        let trust = std::sync::Arc::new(forge::provenance::Trust::development());
        forge::plugins::Plugins::load(&config, &cache, trust).expect("the shipped detectors load");
        cache
    })
    .clone()
}

struct Setup {
    _dir: tempfile::TempDir,
    record: PathBuf,
    key: EncodingKey,
    _upstream: ListeningServer,
    gw: Gateway,
}

fn setup() -> Setup {
    let peers = root().join("tests/peers");
    assert!(
        peers.join("node_modules").is_dir(),
        "SDK peers not installed: run scripts/test.sh (or tests/peers/install.sh)"
    );
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("upstream.jsonl");
    let mut node = Command::new(std::env::var("NODE").unwrap_or_else(|_| "node".into()));
    node.arg(peers.join("plugin-peer.mjs")).arg("--record").arg(&record);
    let upstream = ListeningServer::start(node);
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let pem = dir.path().join("idp.pem");
    std::fs::write(&pem, pair.public_key_pem()).unwrap();
    let cache = warm_cache();
    let config = common::write_config(
        dir.path(),
        &format!(
            "auth:\n  mode: optional\n  resource: {RESOURCE}\n  issuers:\n    - issuer: {ISSUER}\n      pem: {}\n\
             plugins:\n  directory: {}\n  cache_dir: {}\n  limits: {{time: 500ms}}\n",
            pem.display(),
            dist().display(),
            cache.display()
        ),
    );
    let gw = Gateway::start(&["--upstream", &upstream.url("/mcp"), "--config", config.to_str().unwrap()]);
    Setup { _dir: dir, record, key: EncodingKey::from_ec_der(pair.serialized_der()), _upstream: upstream, gw }
}

impl Setup {
    /// A bearer token for `sam` with these roles.
    fn token(&self, roles: &[&str]) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let claims =
            json!({"iss": ISSUER, "sub": "sam", "aud": RESOURCE, "iat": now, "exp": now + 600, "roles": roles});
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.key).unwrap()
    }

    async fn rpc(&self, method: &str, params: Value, token: Option<&str>) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string();
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", b.as_str())).collect();
        self.gw.client().post("/mcp", &body, &headers).await.json()
    }

    async fn call(&self, tool: &str, arguments: Value, token: Option<&str>) -> Value {
        self.rpc("tools/call", json!({"name": tool, "arguments": arguments}), token).await
    }

    fn upstream_calls(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|m| m["method"] == "tools/call")
            .map(|m| m["params"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    async fn tool_names(&self) -> Vec<String> {
        let list = self.rpc("tools/list", json!({}), None).await;
        list["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
    }
}

#[tokio::test]
async fn a_secret_in_call_arguments_is_refused_before_the_upstream_sees_it() {
    let s = setup();
    let refused =
        s.call("echo", json!({"text": "APP_ENV=production\nAWS_ACCESS_KEY_ID=AKIAKVQZ5GX4BRTL3CZV\n"}), None).await;
    assert_eq!(refused["error"]["data"]["code"], "secret_detected", "{refused}");
    assert!(s.upstream_calls().is_empty());
    // The benign near miss: a placeholder, not a key.
    let passed = s.call("echo", json!({"text": "APP_ENV=production\nAWS_ACCESS_KEY_ID=<your key id>\n"}), None).await;
    assert!(passed.get("result").is_some(), "{passed}");
    assert_eq!(s.upstream_calls(), ["echo"]);
}

#[tokio::test]
async fn personal_data_in_a_result_is_redacted_for_an_ordinary_caller_and_not_for_a_privileged_one() {
    let s = setup();
    let text = "Found 1 contact:\nHannah Haddad <olu_adeyemi16@contoso.co.uk>, Account Manager, EMEA";
    let ordinary = s.call("echo", json!({"text": text}), Some(&s.token(&["developer"]))).await;
    let shown = ordinary["result"]["content"][0]["text"].as_str().unwrap_or_default().to_string();
    assert!(!shown.contains("olu_adeyemi16@contoso.co.uk") && shown.contains("[REDACTED:pii.email]"), "{ordinary}");
    let anonymous = s.call("echo", json!({"text": text}), None).await;
    assert_eq!(anonymous["result"]["content"][0]["text"], shown.as_str(), "anonymous callers are ordinary too");

    let privileged = s.call("echo", json!({"text": text}), Some(&s.token(&["admin"]))).await;
    assert_eq!(privileged["result"]["content"][0]["text"], text, "{privileged}");
}

#[tokio::test]
async fn a_poisoned_tool_is_hidden_and_a_rug_pulled_one_is_blocked() {
    let s = setup();
    assert_eq!(s.tool_names().await, ["echo", "fetch", "rug-pull"], "weather's description is poisoned");
    let fetched = s.call("fetch", json!({"url": "https://github.com/a"}), None).await;
    assert_eq!(fetched["result"]["content"][0]["text"], "fetched https://github.com/a", "{fetched}");

    s.call("rug-pull", json!({}), None).await;
    assert_eq!(s.tool_names().await, ["echo", "rug-pull"]);
    let refused = s.call("fetch", json!({"url": "https://github.com/b"}), None).await;
    assert_eq!(refused["error"]["data"]["code"], "tool_definition_changed", "{refused}");
    assert_eq!(s.upstream_calls(), ["fetch", "rug-pull"]);
}
