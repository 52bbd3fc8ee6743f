//! Each verification rule: the token it must refuse, with its distinct reason, and the near
//! miss it must accept.

use forge::auth::{AuthError, Authenticator};
use http::{StatusCode, Uri};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tempfile::TempDir;

use super::*;

/// An authenticator trusting `keys` (as a JWKS file) for [`ISSUER`]; `extra` adds issuer fields.
async fn trusting(keys: &[&SigningKey], extra: &str) -> (Authenticator, TempDir) {
    trusting_with(keys, "", extra).await
}

/// [`trusting`], with `top` adding fields of the `auth:` section itself.
async fn trusting_with(keys: &[&SigningKey], top: &str, extra: &str) -> (Authenticator, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(keys).to_string()).unwrap();
    let yaml =
        format!("mode: required\n{top}issuers:\n  - issuer: {ISSUER}\n    jwks_file: {}\n{extra}", path.display());
    (authenticator(&yaml).await, dir)
}

fn with(changes: Value) -> Value {
    let mut claims = claims();
    for (name, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => claims.as_object_mut().unwrap().remove(name),
            _ => claims.as_object_mut().unwrap().insert(name.clone(), value.clone()),
        };
    }
    claims
}

#[tokio::test]
async fn every_supported_algorithm_verifies() {
    let rsa = SigningKey::rsa(0, "rsa", Algorithm::RS256);
    let keys = [SigningKey::es256("p256"), SigningKey::es384("p384"), SigningKey::ed25519("ed")];
    let (auth, _dir) = trusting(&[&keys[0], &keys[1], &keys[2], &rsa], "").await;
    for key in &keys {
        let identity = verify(&auth, &key.mint(&claims())).await.unwrap();
        assert_eq!((identity.issuer.as_str(), identity.subject.as_str()), (ISSUER, "alice"), "{:?}", key.alg);
    }
    let mut rsa = rsa;
    for alg in
        [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512]
    {
        rsa = rsa.with_alg(alg);
        assert!(verify(&auth, &rsa.mint(&claims())).await.is_ok(), "{alg:?}");
    }
}

#[tokio::test]
async fn the_identity_carries_audience_scopes_and_claims() {
    let key = SigningKey::es256("k");
    let (auth, _dir) = trusting(&[&key], "").await;
    let identity = verify(&auth, &key.mint(&with(json!({"tenant": "acme"})))).await.unwrap();
    assert_eq!(identity.audience, [RESOURCE]);
    assert_eq!(identity.scopes, ["files:read", "files:write"]);
    assert_eq!(identity.claims["tenant"], "acme");
    let scp = with(json!({"scope": null, "scp": ["a", "b"], "aud": [RESOURCE, "other"]}));
    let identity = verify(&auth, &key.mint(&scp)).await.unwrap();
    assert_eq!(
        (identity.scopes, identity.audience),
        (vec!["a".into(), "b".into()], vec![RESOURCE.into(), "other".into()])
    );
}

fn unsigned(claims: &Value) -> String {
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", part(json!({"alg": "none", "typ": "JWT"})), part(claims.clone()))
}

#[tokio::test]
async fn alg_none_is_refused() {
    let key = SigningKey::es256("k");
    let (auth, _dir) = trusting(&[&key], "").await;
    assert_eq!(verify(&auth, &unsigned(&claims())).await, Err(AuthError::AlgNone));
    assert!(verify(&auth, &key.mint(&claims())).await.is_ok());
}

#[tokio::test]
async fn an_hmac_token_made_with_the_public_rsa_key_is_refused() {
    let rsa = SigningKey::rsa(0, "rsa", Algorithm::RS256);
    let (auth, _dir) = trusting(&[&rsa], "").await;
    // The classic confusion: the published key used as an HMAC secret, in its common encodings.
    let n = URL_SAFE_NO_PAD.decode(rsa.jwk["n"].as_str().unwrap()).unwrap();
    for secret in [rsa.jwk.to_string().into_bytes(), n] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa".into());
        let forged = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(verify(&auth, &forged).await, Err(AuthError::AlgorithmNotAllowed));
    }
    assert!(verify(&auth, &rsa.mint(&claims())).await.is_ok());
}

#[tokio::test]
async fn a_key_only_verifies_its_own_algorithms() {
    let p256 = SigningKey::es256("p256");
    let p384 = SigningKey::es384("p384");
    let (auth, _dir) = trusting(&[&p256], "").await;
    // An ES384 token naming the P-256 key's kid: the key is pinned to ES256.
    assert_eq!(verify(&auth, &p384.mint_as("p256", &claims())).await, Err(AuthError::AlgorithmNotAllowed));
    assert!(verify(&auth, &p256.mint(&claims())).await.is_ok());

    let rsa = SigningKey::rsa(0, "rsa", Algorithm::PS256);
    let (auth, _dir) = trusting(&[&rsa], "    algorithms: [RS256]\n").await;
    assert_eq!(verify(&auth, &rsa.mint(&claims())).await, Err(AuthError::AlgorithmNotAllowed));
    assert!(verify(&auth, &rsa.with_alg(Algorithm::RS256).mint(&claims())).await.is_ok());
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let key = SigningKey::es256("known");
    let stranger = SigningKey::es256("stranger");
    let (auth, _dir) = trusting(&[&key], "").await;
    assert_eq!(verify(&auth, &stranger.mint(&claims())).await, Err(AuthError::UnknownKid));
    assert!(verify(&auth, &key.mint(&claims())).await.is_ok());
}

#[tokio::test]
async fn a_bad_signature_is_refused() {
    let key = SigningKey::es256("known");
    let impostor = SigningKey::es256("impostor");
    let (auth, _dir) = trusting(&[&key], "").await;
    assert_eq!(verify(&auth, &impostor.mint_as("known", &claims())).await, Err(AuthError::BadSignature));
    // A genuine signature over other claims.
    let genuine = key.mint(&claims());
    let forged_claims = URL_SAFE_NO_PAD.encode(with(json!({"sub": "root"})).to_string());
    let parts: Vec<&str> = genuine.split('.').collect();
    let spliced = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
    assert_eq!(verify(&auth, &spliced).await, Err(AuthError::BadSignature));
    assert!(verify(&auth, &genuine).await.is_ok());
}

#[tokio::test]
async fn time_claims_are_checked_with_leeway() {
    let key = SigningKey::ed25519("k");
    let (auth, _dir) = trusting(&[&key], "    leeway: 60s\n").await;
    let now = now();
    let cases = [
        (json!({"exp": now - 120}), Err(AuthError::Expired)),
        (json!({"exp": now - 30}), Ok(())),
        (json!({"nbf": now + 120}), Err(AuthError::NotYetValid)),
        (json!({"nbf": now + 30}), Ok(())),
        (json!({"iat": now + 120}), Err(AuthError::IssuedInFuture)),
        (json!({"iat": now + 30}), Ok(())),
        (json!({"iat": "yesterday"}), Err(AuthError::InvalidClaim("iat".into()))),
    ];
    for (change, expected) in cases {
        let result = verify(&auth, &key.mint(&with(change.clone()))).await.map(|_| ());
        assert_eq!(result, expected, "{change}");
    }
}

#[tokio::test]
async fn the_audience_must_be_this_resource() {
    let key = SigningKey::es256("k");
    let (auth, _dir) = trusting(&[&key], "").await;
    let other = with(json!({"aud": "https://other.example/mcp"}));
    assert_eq!(verify(&auth, &key.mint(&other)).await, Err(AuthError::WrongAudience));
    let slash = with(json!({"aud": format!("{RESOURCE}/")}));
    assert_eq!(verify(&auth, &key.mint(&slash)).await, Err(AuthError::WrongAudience));
    assert_eq!(verify(&auth, &key.mint(&with(json!({"aud": null})))).await, Err(AuthError::MissingClaim("aud".into())));
    assert!(verify(&auth, &key.mint(&with(json!({"aud": ["https://other.example", RESOURCE]})))).await.is_ok());

    let (auth, _dir) = trusting(&[&key], "    audiences: [api://forge]\n").await;
    assert_eq!(verify(&auth, &key.mint(&claims())).await, Err(AuthError::WrongAudience));
    assert!(verify(&auth, &key.mint(&with(json!({"aud": "api://forge"})))).await.is_ok());
}

#[tokio::test]
async fn required_claims_must_be_present() {
    let key = SigningKey::es256("k");
    let (auth, _dir) = trusting(&[&key], "    required_claims: [client_id]\n").await;
    assert_eq!(verify(&auth, &key.mint(&claims())).await, Err(AuthError::MissingClaim("client_id".into())));
    let null = with(json!({"client_id": Value::Null}));
    assert_eq!(verify(&auth, &key.mint(&null)).await, Err(AuthError::MissingClaim("client_id".into())));
    for always in ["exp", "sub", "iss"] {
        let without = with(json!({ always: Value::Null, "client_id": "app" }));
        assert_eq!(verify(&auth, &key.mint(&without)).await, Err(AuthError::MissingClaim(always.into())));
    }
    assert!(verify(&auth, &key.mint(&with(json!({"client_id": "app"})))).await.is_ok());
}

#[tokio::test]
async fn several_issuers_each_with_their_own_keys() {
    let a = SigningKey::es256("a");
    let b = SigningKey::ed25519("b");
    let dir = tempfile::tempdir().unwrap();
    let (jwks_path, pem_path) = (dir.path().join("jwks.json"), dir.path().join("b.pem"));
    std::fs::write(&jwks_path, jwks(&[&a]).to_string()).unwrap();
    std::fs::write(&pem_path, &b.public_pem).unwrap();
    let yaml = format!(
        "mode: required\nissuers:\n  - issuer: {ISSUER}\n    jwks_file: {}\n  - issuer: https://other-idp.example\n    pem: {}\n",
        jwks_path.display(),
        pem_path.display()
    );
    let auth = authenticator(&yaml).await;
    assert!(verify(&auth, &a.mint(&claims())).await.is_ok());
    let from_b = with(json!({"iss": "https://other-idp.example"}));
    assert_eq!(verify(&auth, &b.mint(&from_b)).await.unwrap().issuer, "https://other-idp.example");
    // Each issuer's keys vouch only for that issuer.
    assert_eq!(verify(&auth, &b.mint(&claims())).await, Err(AuthError::UnknownKid));
    assert_eq!(verify(&auth, &a.mint(&from_b)).await, Err(AuthError::AlgorithmNotAllowed));
    let stranger = with(json!({"iss": "https://idp.example/"}));
    assert_eq!(verify(&auth, &a.mint(&stranger)).await, Err(AuthError::UnknownIssuer));
}

#[tokio::test]
async fn a_token_in_the_query_string_is_refused_even_beside_a_good_header() {
    let key = SigningKey::es256("k");
    let (auth, _dir) = trusting(&[&key], "").await;
    let token = key.mint(&claims());
    let in_query: Uri = format!("/mcp?access_token={token}").parse().unwrap();
    let error = auth.authenticate(&bearer(&token), &in_query).await.unwrap_err();
    assert_eq!((error.clone(), error.status()), (AuthError::TokenInQuery, StatusCode::BAD_REQUEST));
    let benign: Uri = "/mcp?session=abc&token_hint=1".parse().unwrap();
    assert!(auth.authenticate(&bearer(&token), &benign).await.unwrap().is_some());
}

#[tokio::test]
async fn no_token_is_none_and_the_mode_decides() {
    let key = SigningKey::es256("k");
    let (auth, _dir) = trusting(&[&key], "").await;
    let uri: Uri = "/mcp".parse().unwrap();
    assert_eq!(auth.authenticate(&http::HeaderMap::new(), &uri).await, Ok(None));
    assert_eq!(auth.admit_anonymous(&["tools/call"]), Err(AuthError::Missing));
    let mut basic = http::HeaderMap::new();
    basic.insert(http::header::AUTHORIZATION, "Basic YTpi".parse().unwrap());
    assert!(matches!(auth.authenticate(&basic, &uri).await, Err(AuthError::Malformed(_))));
}

#[tokio::test]
async fn refusals_are_counted_by_reason() {
    let key = SigningKey::es256("k");
    let (auth, _dir) = trusting(&[&key], "").await;
    let registry = prometheus::Registry::new();
    auth.register(&registry).unwrap();
    let _ = verify(&auth, &key.mint(&with(json!({"exp": now() - 3600})))).await;
    let _ = verify(&auth, &key.mint(&with(json!({"exp": now() - 3600})))).await;
    let _ = verify(&auth, &unsigned(&claims())).await;
    verify(&auth, &key.mint(&claims())).await.unwrap();
    assert_eq!(metric(&registry, "forge_auth_failures_total", "reason", "expired"), 2);
    assert_eq!(metric(&registry, "forge_auth_failures_total", "reason", "alg_none"), 1);
    assert_eq!(metric(&registry, "forge_jwks_refreshes_total", "result", "ok"), 1);
}

#[tokio::test]
async fn the_resource_is_described_and_challenges_point_to_it() {
    let key = SigningKey::es256("k");
    let (auth, _dir) = trusting(&[&key], "").await;
    assert_eq!(auth.metadata_path(), "/.well-known/oauth-protected-resource/mcp");
    let metadata = auth.resource_metadata();
    assert_eq!(metadata["resource"], RESOURCE);
    assert_eq!(metadata["authorization_servers"], json!([ISSUER]));
    assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
    let challenge = auth.challenge(&AuthError::Expired);
    let challenge = challenge.to_str().unwrap();
    assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.ends_with("resource_metadata=\"https://gw.example/.well-known/oauth-protected-resource/mcp\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn an_rsa_public_key_in_pem_verifies_rsa_tokens_only() {
    let rsa = SigningKey::rsa(1, "any-kid", Algorithm::RS256);
    let yaml = format!("mode: required\nissuers:\n  - issuer: {ISSUER}\n    pem: |\n{}", indent(&rsa.public_pem, 6));
    let auth = authenticator(&yaml).await;
    assert!(verify(&auth, &rsa.mint(&claims())).await.is_ok());
    assert!(verify(&auth, &rsa.with_alg(Algorithm::PS384).mint(&claims())).await.is_ok());
    let ec = SigningKey::es256("any-kid");
    assert_eq!(verify(&auth, &ec.mint(&claims())).await, Err(AuthError::AlgorithmNotAllowed));
}

fn indent(text: &str, spaces: usize) -> String {
    text.lines().map(|line| format!("{}{line}\n", " ".repeat(spaces))).collect()
}

#[tokio::test]
async fn a_configured_resource_overrides_the_derived_one() {
    let key = SigningKey::es256("k");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(&[&key]).to_string()).unwrap();
    let public = "https://public.example/tools/mcp";
    let yaml = format!(
        "mode: required\nresource: {public}\nissuers:\n  - issuer: {ISSUER}\n    jwks_file: {}\n",
        path.display()
    );
    let auth = authenticator(&yaml).await;
    assert_eq!(auth.metadata_path(), "/.well-known/oauth-protected-resource/tools/mcp");
    assert_eq!(auth.resource_metadata()["resource"], public);
    assert_eq!(verify(&auth, &key.mint(&claims())).await, Err(AuthError::WrongAudience));
    assert!(verify(&auth, &key.mint(&with(json!({"aud": public})))).await.is_ok());
}

/// Verified tokens are remembered (auth.token_cache), never past the point where verification
/// itself would refuse them.
#[tokio::test]
async fn a_remembered_token_is_refused_once_it_expires() {
    let key = SigningKey::ed25519("k");
    let (auth, _dir) = trusting(&[&key], "    leeway: 0s\n").await;
    let exp = now() + 2;
    let token = key.mint(&with(json!({ "exp": exp })));
    assert!(verify(&auth, &token).await.is_ok());
    assert!(verify(&auth, &token).await.is_ok(), "again, from the cache");
    while now() <= exp {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(verify(&auth, &token).await, Err(AuthError::Expired));
}

#[tokio::test]
async fn a_remembered_token_changed_in_any_byte_is_verified_afresh() {
    let key = SigningKey::es256("k");
    let (auth, _dir) = trusting(&[&key], "").await;
    let token = key.mint(&claims());
    assert!(verify(&auth, &token).await.is_ok());
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{signed}.{flipped}{}", &signature[1..]);
    assert_eq!(verify(&auth, &tampered).await, Err(AuthError::BadSignature));
}

/// The cache changes nothing but cost, so what can be checked from outside is its settings.
#[tokio::test]
async fn token_cache_settings_are_read_and_checked() {
    let key = SigningKey::es256("k");
    let (auth, _dir) = trusting_with(&[&key], "token_cache:\n  enabled: false\n", "").await;
    let token = key.mint(&claims());
    assert!(verify(&auth, &token).await.is_ok());
    assert!(verify(&auth, &token).await.is_ok());
    let config: AuthConfig = serde_yaml_ng::from_str("token_cache:\n  max_entries: 0\n").unwrap();
    let error = config.validate().unwrap_err();
    assert_eq!(error.field, "auth.token_cache.max_entries", "{error}");
    let off: AuthConfig = serde_yaml_ng::from_str("token_cache:\n  enabled: false\n  max_entries: 0\n").unwrap();
    assert_eq!(off.validate(), Ok(()), "no bound is needed for a cache that is off");
    assert!(serde_yaml_ng::from_str::<AuthConfig>("token_cache:\n  max_entry: 5\n").is_err(), "a misspelt field");
}
