//! Caller authentication: bearer JWTs verified against each trusted issuer's keys (a JWKS URL,
//! a JWKS file or a PEM key), and the MCP authorization spec's resource-server side (RFC 9728
//! metadata, RFC 6750 challenges).
//!
//! The pipeline calls [`Authenticator::authenticate`] for every request; a request without a
//! token then goes through [`Authenticator::admit_anonymous`], which applies `auth.mode`.
//! Every refusal is counted in `forge_auth_failures_total{reason}` and logged with its reason,
//! the token's issuer, `kid` and `alg`, never the token.

mod config;
mod crypto;
mod jwks;
mod jwt;
mod keys;
mod resource_metadata;
mod token_cache;

use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use prometheus::{IntCounterVec, Opts, Registry};

pub use config::{AuthConfig, AuthMode, InvalidAuthConfig, IssuerConfig, TokenCacheConfig};

use crate::identity::TokenIdentity;
use jwks::{CacheSettings, JwksCache, Source};
use jwt::{Issuer, Keys, Token};
use resource_metadata::ResourceMetadata;

/// Why a request's credentials were refused. `Display` is safe to show the client: it never
/// contains anything from the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no access token was presented")]
    Missing,
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    #[error("access tokens are not accepted in the query string")]
    TokenInQuery,
    #[error("unsigned tokens (alg none) are not accepted")]
    AlgNone,
    #[error("the token's algorithm is not accepted for its issuer and key")]
    AlgorithmNotAllowed,
    #[error("the token's key is not one of its issuer's keys")]
    UnknownKid,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token claims to be issued in the future")]
    IssuedInFuture,
    #[error("the token was not issued for this resource")]
    WrongAudience,
    #[error("the token's issuer is not trusted here")]
    UnknownIssuer,
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(String),
    #[error("the token's `{0}` claim has the wrong type")]
    InvalidClaim(String),
    #[error("the issuer's keys are not available; try again later")]
    KeysUnavailable,
    #[error("the token lacks the scopes this request needs: {}", required.join(" "))]
    InsufficientScope { required: Vec<String> },
    /// An anonymous caller asked for something policy grants only to tokens with these scopes.
    #[error("this request needs an access token with the scopes: {}", required.join(" "))]
    ScopeRequired { required: Vec<String> },
}

impl AuthError {
    /// The `reason` label of `forge_auth_failures_total` and of the log line.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed(_) => "malformed",
            AuthError::TokenInQuery => "token_in_query",
            AuthError::AlgNone => "alg_none",
            AuthError::AlgorithmNotAllowed => "algorithm_not_allowed",
            AuthError::UnknownKid => "unknown_kid",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::IssuedInFuture => "issued_in_future",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::UnknownIssuer => "unknown_issuer",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::InvalidClaim(_) => "invalid_claim",
            AuthError::KeysUnavailable => "keys_unavailable",
            AuthError::InsufficientScope { .. } => "insufficient_scope",
            AuthError::ScopeRequired { .. } => "scope_required",
        }
    }

    /// 401 for absent or refused tokens, 403 for missing scopes (RFC 6750 §3.1), 400 for a
    /// token sent the way MCP forbids, and 503 when the issuer's keys could not be loaded: that
    /// is the gateway's problem, and a 401 would send clients to re-authenticate in a loop.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::TokenInQuery => StatusCode::BAD_REQUEST,
            AuthError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            AuthError::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// Verifies callers' bearer tokens for one gateway.
pub struct Authenticator {
    mode: AuthMode,
    forward_token: bool,
    anonymous_methods: Vec<String>,
    issuers: Vec<Issuer>,
    metadata: ResourceMetadata,
    failures: IntCounterVec,
    refreshes: IntCounterVec,
}

impl Authenticator {
    /// Builds the issuers and loads their keys. `default_resource` is this gateway's public MCP
    /// URL as derived from its listener; `auth.resource` overrides it. With `mode: off` nothing
    /// is loaded and every request passes as anonymous.
    pub async fn new(config: &AuthConfig, default_resource: &str) -> anyhow::Result<Authenticator> {
        crypto::install();
        config.validate()?;
        let resource = config.resource.as_deref().unwrap_or(default_resource);
        let metadata = ResourceMetadata::new(config, resource)?;
        let failures = IntCounterVec::new(
            Opts::new("forge_auth_failures_total", "Requests whose credentials were refused, by reason"),
            &["reason"],
        )?;
        let refreshes = IntCounterVec::new(
            Opts::new("forge_jwks_refreshes_total", "Fetches of issuers' JWKS, by result (ok, error)"),
            &["result"],
        )?;
        let mut issuers = Vec::new();
        if config.mode != AuthMode::Off {
            for issuer in &config.issuers {
                let keys = load_keys(config, issuer, &refreshes)
                    .await
                    .map_err(|e| e.context(format!("auth issuer {}", issuer.issuer)))?;
                let audiences =
                    if issuer.audiences.is_empty() { vec![resource.to_string()] } else { issuer.audiences.clone() };
                let leeway = issuer.leeway.as_secs();
                let mut verifier = Issuer::new(&issuer.issuer, &audiences, leeway, &issuer.required_claims, keys);
                if config.token_cache.enabled {
                    verifier = verifier.with_token_cache(config.token_cache.max_entries);
                }
                issuers.push(verifier);
            }
        }
        Ok(Authenticator {
            mode: config.mode,
            forward_token: config.forward_token,
            anonymous_methods: config.anonymous_methods.clone(),
            issuers,
            metadata,
            failures,
            refreshes,
        })
    }

    /// Registers `forge_auth_failures_total` and `forge_jwks_refreshes_total`. They count
    /// whether or not they are registered, so tests can read them without a registry.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.failures.clone()))?;
        registry.register(Box::new(self.refreshes.clone()))
    }

    /// The verified identity of the request's bearer token; `Ok(None)` when it presents none
    /// (then see [`Authenticator::admit_anonymous`]). A token that is presented but does not
    /// verify is an error in every mode but `off`: a bad token never degrades to anonymous.
    pub async fn authenticate(&self, headers: &HeaderMap, uri: &Uri) -> Result<Option<TokenIdentity>, AuthError> {
        if self.mode == AuthMode::Off {
            return Ok(None);
        }
        let raw = match jwt::bearer_token(headers, uri) {
            Ok(Some(raw)) => raw,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.refuse(e, None)),
        };
        let token = Token::parse(raw).map_err(|e| self.refuse(e, None))?;
        self.verify(&token).await.map(Some).map_err(|e| self.refuse(e, Some(&token)))
    }

    async fn verify(&self, token: &Token<'_>) -> Result<TokenIdentity, AuthError> {
        let alg = token.algorithm()?;
        let iss = token.iss.as_deref().ok_or_else(|| AuthError::MissingClaim("iss".into()))?;
        let issuer = self.issuers.iter().find(|i| i.name == iss).ok_or(AuthError::UnknownIssuer)?;
        issuer.verify(token, alg).await
    }

    /// Whether a request without a token may proceed, given the JSON-RPC methods it carries:
    /// always with `off` and `optional`; with `required`, only if it carries at least one
    /// method and all are in `anonymous_methods`. (A GET stream or a DELETE carries none, so
    /// it needs a token.) A refusal is `AuthError::Missing`, counted and logged.
    pub fn admit_anonymous(&self, methods: &[&str]) -> Result<(), AuthError> {
        let allowed = match self.mode {
            AuthMode::Off | AuthMode::Optional => true,
            AuthMode::Required => {
                !methods.is_empty() && methods.iter().all(|m| self.anonymous_methods.iter().any(|a| a == m))
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(self.refuse(AuthError::Missing, None))
        }
    }

    /// Whether authentication is on (and so whether the gateway serves resource metadata).
    pub fn enabled(&self) -> bool {
        self.mode != AuthMode::Off
    }

    /// Removes the caller's credentials before a request goes upstream, unless configured
    /// to forward them. With authentication off the gateway leaves them alone: they are the
    /// upstream's business then.
    pub fn strip_credentials(&self, headers: &mut HeaderMap) {
        if self.enabled() && !self.forward_token {
            headers.remove(http::header::AUTHORIZATION);
        }
    }

    /// The RFC 9728 protected resource metadata document.
    pub fn resource_metadata(&self) -> serde_json::Value {
        self.metadata.document()
    }

    /// The path to serve [`Authenticator::resource_metadata`] at: the well-known prefix followed
    /// by the resource's path (RFC 9728 §3.1), e.g. `/.well-known/oauth-protected-resource/mcp`.
    pub fn metadata_path(&self) -> &str {
        &self.metadata.path
    }

    /// The `WWW-Authenticate` value to send with `error.status()`.
    pub fn challenge(&self, error: &AuthError) -> HeaderValue {
        self.metadata.challenge(error)
    }

    fn refuse(&self, error: AuthError, token: Option<&Token<'_>>) -> AuthError {
        self.failures.with_label_values(&[error.reason()]).inc();
        // What the token says of itself is unverified and attacker-chosen: logged with Debug
        // formatting (escaped) and truncated.
        let field = |value: Option<&str>| value.map(|v| v.chars().take(128).collect::<String>());
        let (issuer, kid, alg) = (
            field(token.and_then(|t| t.iss.as_deref())),
            field(token.and_then(|t| t.kid.as_deref())),
            field(token.map(|t| t.alg.as_str())),
        );
        // A request without a token is how every OAuth flow starts (the 401 leads the client to
        // the metadata); anything else is worth an operator's attention.
        if error == AuthError::Missing {
            tracing::info!(target: "forge::auth", reason = error.reason(), "refused credentials: {error}");
        } else {
            tracing::warn!(target: "forge::auth", reason = error.reason(), ?issuer, ?kid, ?alg, "refused credentials: {error}");
        }
        error
    }
}

async fn load_keys(config: &AuthConfig, issuer: &IssuerConfig, refreshes: &IntCounterVec) -> anyhow::Result<Keys> {
    let settings = || CacheSettings {
        algorithms: issuer.algorithms.clone(),
        floor: config.jwks_refresh_floor,
        default_max_age: config.jwks_default_max_age,
        refreshes: refreshes.clone(),
    };
    if let Some(pem) = &issuer.pem {
        let text = if pem.contains("-----BEGIN") { pem.clone() } else { std::fs::read_to_string(pem)? };
        return Ok(Keys::Static(keys::KeySet::new(vec![keys::from_pem(&text, &issuer.algorithms)?])));
    }
    let source = match (&issuer.jwks_url, &issuer.jwks_file) {
        (Some(url), _) => Source::url(url, issuer.jwks_ca.as_deref())?,
        (None, Some(path)) => Source::File(path.clone()),
        (None, None) => anyhow::bail!("no key source"),
    };
    Ok(Keys::Jwks(JwksCache::new(&issuer.issuer, source, settings()).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator(mode: AuthMode, anonymous: &[&str]) -> Authenticator {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let config = AuthConfig {
            mode,
            anonymous_methods: anonymous.iter().map(|m| m.to_string()).collect(),
            issuers: vec![IssuerConfig {
                issuer: "https://idp.example".into(),
                pem: Some(pair.public_key_pem()),
                ..Default::default()
            }],
            ..Default::default()
        };
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(Authenticator::new(&config, "https://gw.example/mcp"))
            .unwrap()
    }

    #[test]
    fn required_mode_admits_only_listed_methods_without_a_token() {
        let auth = authenticator(AuthMode::Required, &["ping"]);
        assert_eq!(auth.admit_anonymous(&["ping"]), Ok(()));
        assert_eq!(auth.admit_anonymous(&["ping", "tools/call"]), Err(AuthError::Missing));
        assert_eq!(auth.admit_anonymous(&["tools/call"]), Err(AuthError::Missing));
        assert_eq!(auth.admit_anonymous(&[]), Err(AuthError::Missing), "streams without a method need a token");
        assert_eq!(auth.failures.with_label_values(&["missing"]).get(), 3);
    }

    #[test]
    fn optional_and_off_admit_anyone_without_a_token() {
        assert_eq!(authenticator(AuthMode::Optional, &[]).admit_anonymous(&["tools/call"]), Ok(()));
        assert_eq!(authenticator(AuthMode::Off, &[]).admit_anonymous(&[]), Ok(()));
    }

    #[test]
    fn off_mode_does_not_look_at_credentials() {
        let auth = authenticator(AuthMode::Off, &[]);
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, "Bearer not-a-jwt".parse().unwrap());
        let uri = "/mcp?access_token=x".parse().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(runtime.block_on(auth.authenticate(&headers, &uri)), Ok(None));
    }

    #[test]
    fn the_authenticator_can_be_shared_across_tasks() {
        fn shareable<T: Send + Sync>(_: &T) {}
        fn sendable<T: Send>(_: T) {}
        let auth = authenticator(AuthMode::Required, &[]);
        shareable(&auth);
        let (headers, uri) = (HeaderMap::new(), Uri::from_static("/mcp"));
        sendable(auth.authenticate(&headers, &uri));
    }

    #[test]
    fn every_reason_is_distinct_and_every_status_is_an_auth_status() {
        let all = [
            AuthError::Missing,
            AuthError::Malformed("x"),
            AuthError::TokenInQuery,
            AuthError::AlgNone,
            AuthError::AlgorithmNotAllowed,
            AuthError::UnknownKid,
            AuthError::BadSignature,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::IssuedInFuture,
            AuthError::WrongAudience,
            AuthError::UnknownIssuer,
            AuthError::MissingClaim("x".into()),
            AuthError::InvalidClaim("x".into()),
            AuthError::KeysUnavailable,
            AuthError::InsufficientScope { required: vec![] },
        ];
        let reasons: std::collections::HashSet<_> = all.iter().map(AuthError::reason).collect();
        assert_eq!(reasons.len(), all.len());
        assert_eq!(AuthError::InsufficientScope { required: vec![] }.status(), StatusCode::FORBIDDEN);
        assert_eq!(AuthError::Expired.status(), StatusCode::UNAUTHORIZED);
    }
}
