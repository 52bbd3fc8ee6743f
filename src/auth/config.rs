//! The `auth:` section of the configuration, and its validation.

use std::path::PathBuf;
use std::time::Duration;

use http::Uri;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

/// How the gateway treats callers' credentials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No authentication; `Authorization` headers pass through unread. The default, so that
    /// configurations written before authentication existed keep their behaviour.
    #[default]
    Off,
    /// A presented token must verify; a caller without one is anonymous.
    Optional,
    /// Every request needs a verified token, except those whose methods are all listed in
    /// `anonymous_methods`.
    Required,
}

/// The `auth:` section. Every field has a default; with none given, authentication is off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// Methods a caller without a token may call when `mode` is `required` (e.g. `ping`).
    pub anonymous_methods: Vec<String>,
    /// This gateway's public MCP URL: the RFC 8707 resource tokens must name in `aud`, and the
    /// `resource` of the RFC 9728 metadata. Default: derived by the caller from the listener.
    pub resource: Option<String>,
    /// A page describing this resource for developers (RFC 9728 `resource_documentation`).
    pub resource_documentation: Option<String>,
    /// Advertised in the resource metadata. Default: the issuers' identifiers, since an OAuth
    /// authorization server's issuer is its identifier (RFC 8414).
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub issuers: Vec<IssuerConfig>,
    /// Forward the caller's `Authorization` header to the upstream. Off by default: with
    /// authentication on, the token was meant for this gateway (its audience), and MCP
    /// forbids passing it through.
    pub forward_token: bool,
    /// The shortest time between two fetches of one JWKS, however many unknown `kid`s arrive.
    #[serde(deserialize_with = "crate::config::duration")]
    pub jwks_refresh_floor: Duration,
    /// How long fetched keys stay fresh when the response has no `Cache-Control: max-age`.
    #[serde(deserialize_with = "crate::config::duration")]
    pub jwks_default_max_age: Duration,
    pub token_cache: TokenCacheConfig,
}

/// Remembering verified tokens until shortly before they expire (docs/config.md explains the
/// trade-off).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenCacheConfig {
    pub enabled: bool,
    /// Tokens remembered at most, per issuer.
    pub max_entries: usize,
}

impl Default for TokenCacheConfig {
    fn default() -> Self {
        TokenCacheConfig { enabled: true, max_entries: 10_000 }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Off,
            anonymous_methods: Vec::new(),
            resource: None,
            resource_documentation: None,
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            issuers: Vec::new(),
            forward_token: false,
            jwks_refresh_floor: Duration::from_secs(30),
            jwks_default_max_age: Duration::from_secs(300),
            token_cache: TokenCacheConfig::default(),
        }
    }
}

/// One trusted token issuer and where its verification keys come from (exactly one of
/// `jwks_url`, `jwks_file` and `pem`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerConfig {
    /// Must equal the tokens' `iss` claim exactly.
    pub issuer: String,
    /// Accepted `aud` values. Default: the resource, as RFC 8707 binds tokens to it.
    pub audiences: Vec<String>,
    pub jwks_url: Option<String>,
    pub jwks_file: Option<PathBuf>,
    /// CA certificates (PEM) trusted for an `https` `jwks_url` instead of the system's.
    pub jwks_ca: Option<PathBuf>,
    /// A public key or certificate in PEM, inline or as a file path.
    pub pem: Option<String>,
    /// Algorithms accepted from this issuer. Default: every asymmetric one; each key is
    /// further limited to the algorithms its own type (and `alg`, when given) allows.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    #[serde(deserialize_with = "crate::config::duration")]
    pub leeway: Duration,
    /// Claims a token must carry beyond the always-required `iss`, `sub`, `aud` and `exp`.
    pub required_claims: Vec<String>,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        IssuerConfig {
            issuer: String::new(),
            audiences: Vec::new(),
            jwks_url: None,
            jwks_file: None,
            jwks_ca: None,
            pem: None,
            algorithms: Vec::new(),
            leeway: Duration::from_secs(60),
            required_claims: Vec::new(),
        }
    }
}

/// The asymmetric algorithms the gateway verifies. Symmetric (HS*) ones are absent on purpose:
/// a shared secret would let every holder mint tokens, and accepting HS* where RSA keys are
/// published is the classic algorithm-confusion attack.
pub(crate) const ASYMMETRIC_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Beyond this, a leeway stops bounding token lifetimes in any useful way.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// A problem in the `auth:` section: the dotted path of the field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct InvalidAuthConfig {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> InvalidAuthConfig {
    InvalidAuthConfig { field, message: message.into() }
}

impl AuthConfig {
    pub fn validate(&self) -> Result<(), InvalidAuthConfig> {
        if self.mode != AuthMode::Off && self.issuers.is_empty() {
            return Err(invalid(
                "auth.issuers",
                "at least one issuer is needed when auth.mode is optional or required",
            ));
        }
        if let Some(resource) = &self.resource {
            check_resource(resource).map_err(|m| invalid("auth.resource", m))?;
        }
        if let Some(url) = &self.resource_documentation {
            absolute_url(url).map_err(|m| invalid("auth.resource_documentation", m))?;
        }
        for url in &self.authorization_servers {
            absolute_url(url).map_err(|m| invalid("auth.authorization_servers", m))?;
        }
        if let Some(bad) = self.scopes_supported.iter().find(|s| !is_scope_token(s)) {
            return Err(invalid("auth.scopes_supported", format!("`{bad}` is not an OAuth scope token")));
        }
        if self.anonymous_methods.iter().any(String::is_empty) {
            return Err(invalid("auth.anonymous_methods", "method names cannot be empty"));
        }
        if self.jwks_refresh_floor.is_zero() {
            return Err(invalid(
                "auth.jwks_refresh_floor",
                "must be greater than zero, or bad tokens drive JWKS fetches",
            ));
        }
        if self.token_cache.enabled && self.token_cache.max_entries == 0 {
            return Err(invalid(
                "auth.token_cache.max_entries",
                "must be greater than zero (set auth.token_cache.enabled: false to turn the cache off)",
            ));
        }
        if self.jwks_default_max_age < self.jwks_refresh_floor {
            return Err(invalid("auth.jwks_default_max_age", "must be at least auth.jwks_refresh_floor"));
        }
        for (index, issuer) in self.issuers.iter().enumerate() {
            issuer.validate().map_err(|(field, m)| invalid(field, format!("issuer {}: {m}", index + 1)))?;
            if self.issuers[..index].iter().any(|other| other.issuer == issuer.issuer) {
                return Err(invalid("auth.issuers.issuer", format!("`{}` is listed twice", issuer.issuer)));
            }
        }
        Ok(())
    }
}

impl IssuerConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.issuer.is_empty() {
            return Err(("auth.issuers.issuer", "cannot be empty".into()));
        }
        let sources = [self.jwks_url.is_some(), self.jwks_file.is_some(), self.pem.is_some()];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(("auth.issuers.jwks_url", "give exactly one of jwks_url, jwks_file and pem".into()));
        }
        if let Some(url) = &self.jwks_url {
            let uri = absolute_url(url).map_err(|m| ("auth.issuers.jwks_url", m))?;
            // Keys fetched in the clear from another host could be replaced on the way, and
            // whoever replaces them can mint tokens.
            if uri.scheme_str() == Some("http") && !is_loopback(uri.host().unwrap_or_default()) {
                return Err(("auth.issuers.jwks_url", "must use https (plain http only to a loopback address)".into()));
            }
            if self.jwks_ca.is_some() && uri.scheme_str() != Some("https") {
                return Err(("auth.issuers.jwks_ca", "only applies to an https jwks_url".into()));
            }
        } else if self.jwks_ca.is_some() {
            return Err(("auth.issuers.jwks_ca", "only applies to an https jwks_url".into()));
        }
        if let Some(bad) = self.algorithms.iter().find(|a| !ASYMMETRIC_ALGORITHMS.contains(a)) {
            return Err((
                "auth.issuers.algorithms",
                format!("{bad:?} is symmetric; only asymmetric algorithms are accepted"),
            ));
        }
        if self.audiences.iter().any(String::is_empty) {
            return Err(("auth.issuers.audiences", "audiences cannot be empty".into()));
        }
        if self.leeway > MAX_LEEWAY {
            return Err(("auth.issuers.leeway", format!("must be at most {}s", MAX_LEEWAY.as_secs())));
        }
        if self.required_claims.iter().any(String::is_empty) {
            return Err(("auth.issuers.required_claims", "claim names cannot be empty".into()));
        }
        Ok(())
    }
}

/// RFC 8707 §2: an absolute URI without a fragment. A query is refused too, so that the RFC 9728
/// metadata URL derived from the resource is unambiguous.
fn check_resource(resource: &str) -> Result<(), String> {
    absolute_url(resource)?;
    if resource.contains('#') || resource.contains('?') {
        return Err("must not have a query or a fragment".into());
    }
    Ok(())
}

fn absolute_url(text: &str) -> Result<Uri, String> {
    let uri: Uri = text.parse().map_err(|_| format!("`{text}` is not a URL"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("https" | "http"), Some(host)) if !host.is_empty() => Ok(uri),
        _ => Err(format!("`{text}` is not an absolute http(s) URL")),
    }
}

pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty() && scope.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> AuthConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn with_issuer(extra: &str) -> AuthConfig {
        parse(&format!("mode: required\nissuers:\n  - issuer: https://idp.example\n{extra}"))
    }

    fn field_of(config: &AuthConfig) -> &'static str {
        config.validate().unwrap_err().field
    }

    #[test]
    fn defaults_leave_authentication_off() {
        let config = parse("{}");
        assert_eq!(config.mode, AuthMode::Off);
        assert_eq!(config.jwks_refresh_floor, Duration::from_secs(30));
        assert_eq!(config.jwks_default_max_age, Duration::from_secs(300));
        config.validate().unwrap();
        assert_eq!(parse("mode: off").mode, AuthMode::Off);
    }

    #[test]
    fn a_full_section_parses() {
        let config = with_issuer(
            "    jwks_url: https://idp.example/jwks\n    algorithms: [ES256, RS256]\n    leeway: 30s\n    \
             required_claims: [client_id]\n",
        );
        config.validate().unwrap();
        let issuer = &config.issuers[0];
        assert_eq!(issuer.algorithms, [Algorithm::ES256, Algorithm::RS256]);
        assert_eq!(issuer.leeway, Duration::from_secs(30));
        assert!(serde_yaml_ng::from_str::<AuthConfig>("moode: off").is_err(), "unknown fields are refused");
    }

    #[test]
    fn enabling_auth_needs_an_issuer() {
        assert_eq!(field_of(&parse("mode: required")), "auth.issuers");
        assert_eq!(field_of(&parse("mode: optional")), "auth.issuers");
    }

    #[test]
    fn each_issuer_has_exactly_one_key_source() {
        assert_eq!(field_of(&with_issuer("")), "auth.issuers.jwks_url");
        let both = with_issuer("    jwks_url: https://idp.example/jwks\n    jwks_file: /etc/jwks.json\n");
        assert_eq!(field_of(&both), "auth.issuers.jwks_url");
        with_issuer("    jwks_file: /etc/jwks.json\n").validate().unwrap();
    }

    #[test]
    fn jwks_over_plain_http_only_from_loopback() {
        let remote = with_issuer("    jwks_url: http://idp.example/jwks\n");
        assert_eq!(field_of(&remote), "auth.issuers.jwks_url");
        with_issuer("    jwks_url: http://127.0.0.1:8080/jwks\n").validate().unwrap();
        with_issuer("    jwks_url: http://[::1]:8080/jwks\n").validate().unwrap();
    }

    #[test]
    fn symmetric_algorithms_are_refused() {
        let hs = with_issuer("    pem: /k.pem\n    algorithms: [HS256]\n");
        assert_eq!(field_of(&hs), "auth.issuers.algorithms");
        with_issuer("    pem: /k.pem\n    algorithms: [PS256]\n").validate().unwrap();
    }

    #[test]
    fn leeway_is_bounded() {
        assert_eq!(field_of(&with_issuer("    pem: /k.pem\n    leeway: 10m\n")), "auth.issuers.leeway");
        with_issuer("    pem: /k.pem\n    leeway: 5m\n").validate().unwrap();
    }

    #[test]
    fn issuers_are_unique() {
        let twice = parse(
            "mode: required\nissuers:\n  - {issuer: https://a, pem: /k.pem}\n  - {issuer: https://a, pem: /j.pem}\n",
        );
        assert_eq!(field_of(&twice), "auth.issuers.issuer");
    }

    #[test]
    fn the_resource_is_an_absolute_url_without_fragment() {
        let mut config = with_issuer("    pem: /k.pem\n");
        config.resource = Some("https://gw.example/mcp#x".into());
        assert_eq!(field_of(&config), "auth.resource");
        config.resource = Some("/mcp".into());
        assert_eq!(field_of(&config), "auth.resource");
        config.resource = Some("https://gw.example/mcp".into());
        config.validate().unwrap();
    }

    #[test]
    fn the_refresh_floor_cannot_be_zero() {
        let mut config = with_issuer("    pem: /k.pem\n");
        config.jwks_refresh_floor = Duration::ZERO;
        assert_eq!(field_of(&config), "auth.jwks_refresh_floor");
        config.jwks_refresh_floor = Duration::from_secs(600);
        assert_eq!(field_of(&config), "auth.jwks_default_max_age");
    }

    #[test]
    fn scopes_are_scope_tokens() {
        let mut config = with_issuer("    pem: /k.pem\n");
        config.scopes_supported = vec!["files:read files:write".into()];
        assert_eq!(field_of(&config), "auth.scopes_supported");
        config.scopes_supported = vec!["files:read".into(), "files:write".into()];
        config.validate().unwrap();
    }
}
