//! Authentication through the running gateway: bearer tokens signed with real keys,
//! 401/403 challenges pointing at the RFC 9728 metadata the gateway serves, anonymous
//! methods, and the caller's token never reaching the upstream unless configured.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{ok_upstream, stand_in, Behaviour, Gateway, StandIn, TOOLS_CALL};
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const ISSUER: &str = "https://idp.test";
const RESOURCE: &str = "https://gw.test/mcp";

struct Idp {
    key: EncodingKey,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

impl Idp {
    /// An ES256 issuer whose public key the gateway reads from a PEM file.
    fn new(extra: &str) -> Idp {
        let dir = tempfile::tempdir().unwrap();
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pem = dir.path().join("idp.pem");
        std::fs::write(&pem, pair.public_key_pem()).unwrap();
        let yaml = format!(
            "auth:\n  mode: required\n  resource: {RESOURCE}\n  anonymous_methods: [ping]\n{extra}  issuers:\n    - issuer: {ISSUER}\n      pem: {}\n",
            pem.display()
        );
        let config = common::write_config(dir.path(), &yaml);
        Idp { key: EncodingKey::from_ec_der(pair.serialized_der()), dir, config }
    }

    fn token(&self, exp_offset: i64) -> String {
        self.token_with_scope(exp_offset, "mcp:tools")
    }

    fn token_with_scope(&self, exp_offset: i64, scope: &str) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let claims = json!({"iss": ISSUER, "sub": "alice", "aud": RESOURCE, "iat": now, "exp": now + exp_offset, "scope": scope});
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.key).unwrap()
    }

    fn gateway(&self, upstream: &StandIn) -> Gateway {
        Gateway::start(&["--upstream", &upstream.url, "--config", self.config.to_str().unwrap()])
    }
}

#[tokio::test]
async fn a_request_without_a_token_is_challenged_and_never_forwarded() {
    let idp = Idp::new("");
    let upstream = stand_in(ok_upstream()).await;
    let gw = idp.gateway(&upstream);
    let reply = gw.client().post("/mcp", TOOLS_CALL, &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["id"], 42);
    assert_eq!(reply.json()["error"]["code"], -32016);
    let challenge = reply.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains("resource_metadata=\"https://gw.test/.well-known/oauth-protected-resource/mcp\""),
        "{challenge}"
    );
    assert_eq!(upstream.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(gw.metric("forge_auth_failures_total{reason=\"missing\"}").await, 1.0);

    // The near miss: a method configured as anonymous passes without a token.
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    assert_eq!(gw.client().post("/mcp", ping, &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_gateway_serves_its_protected_resource_metadata() {
    let idp = Idp::new("");
    let upstream = stand_in(ok_upstream()).await;
    let gw = idp.gateway(&upstream);
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let get = http::Request::get(path)
            .header("host", "localhost")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let reply = gw.client().send(get).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let doc = reply.json();
        assert_eq!(doc["resource"], RESOURCE);
        assert_eq!(doc["authorization_servers"], json!([ISSUER]));
    }
    assert_eq!(upstream.requests.load(std::sync::atomic::Ordering::SeqCst), 0, "answered by the gateway");
}

#[tokio::test]
async fn a_valid_token_passes_and_is_stripped_before_the_upstream() {
    let idp = Idp::new("");
    let upstream = stand_in(ok_upstream()).await;
    let gw = idp.gateway(&upstream);
    let token = idp.token(300);
    let reply = gw.client().post("/mcp", TOOLS_CALL, &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.json().get("result").is_some(),
        "the default policy lets the mcp:tools scope call tools: {:?}",
        reply.json()
    );
    let head = upstream.heads.lock().unwrap()[0].clone();
    assert!(!head.contains("authorization"), "the upstream never sees the caller's token: {head}");
    let logs = gw.log_containing("alice@https://idp.test");
    assert!(logs.contains("alice@https://idp.test"), "the access log names the verified caller");
    assert!(!logs.contains(&token), "the token is never logged");
}

#[tokio::test]
async fn forwarding_the_token_is_an_explicit_choice() {
    let idp = Idp::new("  forward_token: true\n");
    let upstream = stand_in(ok_upstream()).await;
    let gw = idp.gateway(&upstream);
    let token = idp.token(300);
    let reply = gw.client().post("/mcp", TOOLS_CALL, &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(upstream.heads.lock().unwrap()[0].contains("authorization: bearer"));
}

#[tokio::test]
async fn bad_tokens_are_refused_with_their_reason() {
    let idp = Idp::new("");
    let upstream = stand_in(ok_upstream()).await;
    let gw = idp.gateway(&upstream);
    let client = gw.client();
    let expired = idp.token(-600);
    let reply = client.post("/mcp", TOOLS_CALL, &[("authorization", &format!("Bearer {expired}"))]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.headers["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    assert_eq!(gw.metric("forge_auth_failures_total{reason=\"expired\"}").await, 1.0);

    let other = Idp::new("");
    let forged = other.token(300);
    let reply = client.post("/mcp", TOOLS_CALL, &[("authorization", &format!("Bearer {forged}"))]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "a token signed by another key");

    let good = idp.token(300);
    let reply = client.post(&format!("/mcp?access_token={good}"), TOOLS_CALL, &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "tokens in the query string are refused");
    assert_eq!(upstream.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn streams_need_a_token_too() {
    let idp = Idp::new("");
    let upstream = stand_in(ok_upstream()).await;
    let gw = idp.gateway(&upstream);
    let get = http::Request::get("/mcp")
        .header("host", "localhost")
        .header("accept", "text/event-stream")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(gw.client().send(get).await.status, StatusCode::UNAUTHORIZED);
}

/// The default bundle with a verified caller: a tool hidden from the caller's list cannot be
/// called by name either, while the tools the caller's role allows pass.
#[tokio::test]
async fn a_tool_hidden_from_the_callers_list_cannot_be_called() {
    let idp = Idp::new("");
    let tools = r#"{"jsonrpc":"2.0","id":42,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"delete_repo","inputSchema":{"type":"object"}}]}}"#;
    let upstream = stand_in(Behaviour::Respond { content_type: "application/json", body: tools.into() }).await;
    let gw = idp.gateway(&upstream);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims =
        json!({"iss": ISSUER, "sub": "vera", "aud": RESOURCE, "iat": now, "exp": now + 300, "roles": ["viewer"]});
    let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &idp.key).unwrap();
    let auth = format!("Bearer {token}");
    let client = gw.client();

    let list =
        client.post("/mcp", r#"{"jsonrpc":"2.0","id":42,"method":"tools/list"}"#, &[("authorization", &auth)]).await;
    let names: Vec<String> = list.json()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["echo"], "a viewer does not see delete_repo");

    let call = |tool: &str| {
        json!({"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
            .to_string()
    };
    let before = upstream.requests.load(std::sync::atomic::Ordering::SeqCst);
    let refused = client.post("/mcp", &call("delete_repo"), &[("authorization", &auth)]).await.json();
    assert_eq!(refused["error"]["code"], -32017, "{refused}");
    assert_eq!(
        upstream.requests.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "the call never reached the upstream"
    );
    let allowed = client.post("/mcp", &call("echo"), &[("authorization", &auth)]).await.json();
    assert!(allowed.get("result").is_some(), "the near miss passes: {allowed}");
}

const STEP_UP_BUNDLE: &str = r#"package forge

import rego.v1

default decision := {"allow": true}

decision := {"allow": false, "code": "insufficient_scope", "reason": "writing needs files:write", "required_scopes": ["files:write"]} if {
	input.message.tool.name == "write_file"
	not "files:write" in input.principal.scopes
}
"#;

/// A refusal naming the scopes that would allow the call (the decision's `required_scopes`)
/// is answered as RFC 6750 and the MCP authorization spec describe: 403 with an
/// `insufficient_scope` challenge, so the client can ask for more scope (step-up); and, for
/// an anonymous caller (`auth.mode: optional`), 401 with the scopes to ask for.
#[tokio::test]
async fn a_token_lacking_the_scope_for_a_tool_gets_403_naming_the_scope() {
    let idp = Idp::new("");
    let bundle = idp.dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(bundle.join("decision.rego"), STEP_UP_BUNDLE).unwrap();
    let yaml = std::fs::read_to_string(&idp.config).unwrap().replace("mode: required", "mode: optional");
    std::fs::write(&idp.config, format!("{yaml}policy:\n  bundle: {}\n", bundle.display())).unwrap();
    let upstream = stand_in(ok_upstream()).await;
    let gw = idp.gateway(&upstream);
    let call =
        json!({"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": {"name": "write_file", "arguments": {}}})
            .to_string();
    let bearer = format!("Bearer {}", idp.token_with_scope(300, "mcp:tools"));
    let reply = gw.client().post("/mcp", &call, &[("authorization", &bearer)]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let v = reply.json();
    assert_eq!(v["id"], 42);
    assert_eq!(v["error"]["code"], -32017);
    assert_eq!(v["error"]["data"]["code"], "insufficient_scope");
    let challenge = reply.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer error=\"insufficient_scope\", "), "{challenge}");
    assert!(challenge.contains("scope=\"files:write\""), "{challenge}");
    assert!(challenge.contains("resource_metadata=\"https://gw.test/.well-known/oauth-protected-resource/mcp\""));
    // The refusal is evidence like any other decision: signed over its 403 status.
    let signed = reply.headers["signature-input"].to_str().unwrap();
    assert!(signed.contains("\"@status\""), "{signed}");
    assert_eq!(upstream.requests.load(std::sync::atomic::Ordering::SeqCst), 0);

    // Anonymous: 401, pointing at the metadata and naming the scope, with no error code.
    let reply = gw.client().post("/mcp", &call, &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"]["data"]["code"], "insufficient_scope");
    let challenge = reply.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer scope=\"files:write\", resource_metadata="), "{challenge}");
    assert_eq!(upstream.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
    // The anonymous near miss: a call policy allows anyone passes without a challenge.
    let echo = call.replace("write_file", "echo");
    let reply = gw.client().post("/mcp", &echo, &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.headers.contains_key("www-authenticate"));
    assert_eq!(upstream.requests.load(std::sync::atomic::Ordering::SeqCst), 1);

    // The near miss: a token with the scope passes.
    let bearer = format!("Bearer {}", idp.token_with_scope(300, "mcp:tools files:write"));
    let reply = gw.client().post("/mcp", &call, &[("authorization", &bearer)]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.json().get("result").is_some(), "{:?}", reply.json());
    assert_eq!(upstream.requests.load(std::sync::atomic::Ordering::SeqCst), 2);
}
