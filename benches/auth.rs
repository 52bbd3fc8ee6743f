//! Micro-benchmarks of bearer-token verification with the issuer's keys already cached (the
//! per-request cost once the JWKS is loaded): ES256, the common choice, and EdDSA for
//! comparison; each with the verified-token cache off (`…_cached_key`: the signature is
//! checked every time) and on (`…_remembered_token`: a caller presenting the same token
//! again). Run with `cargo bench --bench auth`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use forge::auth::{AuthConfig, Authenticator};
use http::{header, HeaderMap, Uri};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

// The allocator the gateway runs with (src/main.rs), so the numbers are the gateway's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ISSUER: &str = "https://idp.example";
const RESOURCE: &str = "https://gw.example/mcp";

struct Case {
    name: &'static str,
    alg: Algorithm,
    pair: rcgen::KeyPair,
    jwk: serde_json::Value,
}

fn case(name: &'static str, alg: Algorithm) -> Case {
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let (pair, jwk) = match alg {
        Algorithm::ES256 => {
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let raw = pair.public_key_raw();
            let jwk = json!({"kty": "EC", "crv": "P-256", "kid": name, "x": b64(&raw[1..33]), "y": b64(&raw[33..])});
            (pair, jwk)
        }
        _ => {
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": name, "x": b64(pair.public_key_raw())});
            (pair, jwk)
        }
    };
    Case { name, alg, pair, jwk }
}

fn verify_cached(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cases = [case("es256", Algorithm::ES256), case("eddsa", Algorithm::EdDSA)];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let keys: Vec<_> = cases.iter().map(|c| c.jwk.clone()).collect();
    std::fs::write(&path, json!({ "keys": keys }).to_string()).unwrap();
    let authenticator = |token_cache: bool| {
        let yaml = format!(
            "mode: required\ntoken_cache:\n  enabled: {token_cache}\nissuers:\n  - issuer: {ISSUER}\n    jwks_file: {}\n",
            path.display()
        );
        let config: AuthConfig = serde_yaml_ng::from_str(&yaml).unwrap();
        runtime.block_on(Authenticator::new(&config, RESOURCE)).unwrap()
    };
    // Built before any token is minted, so verification uses the gateway's own crypto provider.
    let (verifying, remembering) = (authenticator(false), authenticator(true));
    let uri: Uri = "/mcp".parse().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims =
        json!({"iss": ISSUER, "sub": "alice", "aud": RESOURCE, "iat": now, "exp": now + 3600, "scope": "files:read"});

    let mut group = c.benchmark_group("auth");
    for case in &cases {
        let mut header = Header::new(case.alg);
        header.kid = Some(case.name.into());
        let key = match case.alg {
            Algorithm::ES256 => EncodingKey::from_ec_der(case.pair.serialized_der()),
            _ => EncodingKey::from_ed_der(case.pair.serialized_der()),
        };
        let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        for (auth, what) in [(&verifying, "cached_key"), (&remembering, "remembered_token")] {
            runtime.block_on(auth.authenticate(&headers, &uri)).unwrap().expect("the token verifies");
            group.bench_function(format!("verify_{}_{what}", case.name), |b| {
                b.iter(|| runtime.block_on(auth.authenticate(black_box(&headers), &uri)).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, verify_cached);
criterion_main!(benches);
