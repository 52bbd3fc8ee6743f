//! Cross-checks with an independent implementation (PyJWT on `cryptography`): its tokens verify
//! here, ours verify there, and both refuse the same expired token.

use forge::auth::AuthError;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

use super::*;

#[tokio::test]
async fn tokens_minted_by_pyjwt_verify_here() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let expired = json!({"iss": ISSUER, "sub": "bob", "aud": RESOURCE, "exp": now() - 3600});
    let minted = python(&json!({"op": "mint", "claims": claims(), "kid_prefix": "py"}));
    let stale = python(&json!({"op": "mint", "claims": expired, "kid_prefix": "py-expired"}));
    let mut keys = minted["jwks"]["keys"].as_array().unwrap().clone();
    keys.extend(stale["jwks"]["keys"].as_array().unwrap().iter().cloned());
    std::fs::write(&path, json!({ "keys": keys }).to_string()).unwrap();
    let auth =
        authenticator(&format!("mode: required\nissuers:\n  - issuer: {ISSUER}\n    jwks_file: {}\n", path.display()))
            .await;

    let tokens = minted["tokens"].as_object().unwrap();
    assert_eq!(tokens.len(), 5, "RS256, PS512, ES256, ES384 and EdDSA");
    for (alg, token) in tokens {
        let identity = verify(&auth, token.as_str().unwrap()).await.unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(identity.subject, "alice", "{alg}");
        assert_eq!(identity.scopes, ["files:read", "files:write"], "{alg}");
    }
    for (alg, token) in stale["tokens"].as_object().unwrap() {
        assert_eq!(verify(&auth, token.as_str().unwrap()).await, Err(AuthError::Expired), "{alg}");
    }
}

#[tokio::test]
async fn tokens_minted_here_verify_in_pyjwt() {
    // Built first so that minting happens under the gateway's crypto provider, as elsewhere.
    let _auth = authenticator("{}").await;
    let keys = [
        SigningKey::es256("es256"),
        SigningKey::es384("es384"),
        SigningKey::ed25519("eddsa"),
        SigningKey::rsa(0, "rs256", Algorithm::RS256),
        SigningKey::rsa(1, "ps256", Algorithm::PS256),
    ];
    let jwks: Vec<Value> = keys
        .iter()
        .map(|k| {
            let mut jwk = k.jwk.clone();
            // PyJWT picks the algorithm from the JWK.
            jwk["alg"] = json!(format!("{:?}", k.alg));
            jwk
        })
        .collect();
    let tokens: Vec<String> = keys.iter().map(|k| k.mint(&claims())).collect();
    let forged =
        keys[0].mint_as("es256", &json!({"iss": ISSUER, "sub": "x", "aud": "https://elsewhere", "exp": now() + 60}));
    let mut all = tokens.clone();
    all.push(forged);
    let results = python(&json!({
        "op": "verify", "jwks": { "keys": jwks }, "tokens": all, "issuer": ISSUER, "audience": RESOURCE,
    }));
    let results = results.as_array().unwrap();
    for (key, result) in keys.iter().zip(results) {
        assert_eq!(result["ok"], true, "{:?}: {result}", key.alg);
        assert_eq!(result["sub"], "alice");
    }
    assert_eq!(results[keys.len()]["ok"], false, "PyJWT refuses the wrong audience too");
}
