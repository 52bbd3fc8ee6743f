//! The gateway as an OAuth protected resource: its RFC 9728 metadata document, where that
//! document lives, and the `WWW-Authenticate` challenges (RFC 6750 §3) that point to it.

use http::{HeaderValue, Uri};
use serde_json::{json, Value};

use super::{AuthConfig, AuthError};

const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

pub(crate) struct ResourceMetadata {
    document: Value,
    /// Where the document is served, as a URL (for challenges) and as a path (for routing).
    url: String,
    pub path: String,
    scopes_supported: Vec<String>,
}

impl ResourceMetadata {
    pub fn new(config: &AuthConfig, resource: &str) -> anyhow::Result<ResourceMetadata> {
        let uri: Uri = resource.parse()?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            anyhow::bail!("the resource `{resource}` is not an absolute URL");
        };
        // RFC 9728 §3.1: the well-known segment goes between the host and the resource's path.
        let path = format!("{WELL_KNOWN}{}", uri.path().trim_end_matches('/'));
        let url = format!("{scheme}://{authority}{path}");

        let mut servers: Vec<String> = config.authorization_servers.clone();
        if servers.is_empty() {
            for issuer in &config.issuers {
                if !servers.contains(&issuer.issuer) {
                    servers.push(issuer.issuer.clone());
                }
            }
        }
        let mut document = json!({
            "resource": resource,
            "authorization_servers": servers,
            "bearer_methods_supported": ["header"],
        });
        if !config.scopes_supported.is_empty() {
            document["scopes_supported"] = json!(config.scopes_supported);
        }
        if let Some(docs) = &config.resource_documentation {
            document["resource_documentation"] = json!(docs);
        }
        Ok(ResourceMetadata { document, url, path, scopes_supported: config.scopes_supported.clone() })
    }

    pub fn document(&self) -> Value {
        self.document.clone()
    }

    /// The `WWW-Authenticate` value answering `error`. A request without credentials gets no
    /// error code (RFC 6750 §3.1); a refused token gets `invalid_token` and what was wrong;
    /// missing scopes get `insufficient_scope` with the scopes needed. Every challenge points
    /// to the metadata, which is how MCP clients find the authorization server.
    pub fn challenge(&self, error: &AuthError) -> HeaderValue {
        let mut params = Vec::new();
        let code = match error {
            AuthError::Missing | AuthError::ScopeRequired { .. } | AuthError::KeysUnavailable => None,
            AuthError::TokenInQuery => Some("invalid_request"),
            AuthError::InsufficientScope { .. } => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        };
        if let Some(code) = code {
            params.push(format!("error=\"{code}\""));
            params.push(format!("error_description={}", quoted(&error.to_string())));
        }
        let scope = match error {
            AuthError::InsufficientScope { required } | AuthError::ScopeRequired { required } => required.join(" "),
            _ => self.scopes_supported.join(" "),
        };
        if !scope.is_empty() {
            params.push(format!("scope={}", quoted(&scope)));
        }
        params.push(format!("resource_metadata={}", quoted(&self.url)));
        HeaderValue::from_str(&format!("Bearer {}", params.join(", "))).expect("quoted() leaves only visible ASCII")
    }
}

/// An RFC 9110 quoted-string. Anything but visible ASCII becomes `?`, so the result is always a
/// valid header value whatever a configured claim or scope name contains.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::IssuerConfig;

    fn metadata(resource: &str) -> ResourceMetadata {
        let config = AuthConfig {
            issuers: vec![
                IssuerConfig { issuer: "https://idp.example".into(), ..Default::default() },
                IssuerConfig { issuer: "https://idp.example".into(), ..Default::default() },
            ],
            ..Default::default()
        };
        ResourceMetadata::new(&config, resource).unwrap()
    }

    #[test]
    fn the_document_lives_under_the_resource_path() {
        let m = metadata("https://gw.example:8443/mcp");
        assert_eq!(m.path, "/.well-known/oauth-protected-resource/mcp");
        assert_eq!(m.url, "https://gw.example:8443/.well-known/oauth-protected-resource/mcp");
        assert_eq!(metadata("https://gw.example/").path, "/.well-known/oauth-protected-resource");
        assert_eq!(metadata("https://gw.example").path, "/.well-known/oauth-protected-resource");
    }

    #[test]
    fn the_document_names_resource_servers_and_header_only() {
        let doc = metadata("https://gw.example/mcp").document();
        assert_eq!(
            doc,
            json!({
                "resource": "https://gw.example/mcp",
                "authorization_servers": ["https://idp.example"],
                "bearer_methods_supported": ["header"],
            })
        );
        let config = AuthConfig {
            authorization_servers: vec!["https://as.example".into()],
            scopes_supported: vec!["mcp:tools".into()],
            resource_documentation: Some("https://docs.example/mcp".into()),
            ..Default::default()
        };
        let doc = ResourceMetadata::new(&config, "https://gw.example/mcp").unwrap().document();
        assert_eq!(doc["authorization_servers"], json!(["https://as.example"]));
        assert_eq!(doc["scopes_supported"], json!(["mcp:tools"]));
        assert_eq!(doc["resource_documentation"], "https://docs.example/mcp");
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        let m = metadata("https://gw.example/mcp");
        let meta = "resource_metadata=\"https://gw.example/.well-known/oauth-protected-resource/mcp\"";
        assert_eq!(m.challenge(&AuthError::Missing), format!("Bearer {meta}").as_str());
        assert_eq!(
            m.challenge(&AuthError::Expired),
            format!("Bearer error=\"invalid_token\", error_description=\"the token has expired\", {meta}").as_str()
        );
        let scope = AuthError::InsufficientScope { required: vec!["files:read".into(), "files:write".into()] };
        let value = m.challenge(&scope);
        let value = value.to_str().unwrap();
        assert!(value.starts_with("Bearer error=\"insufficient_scope\", "), "{value}");
        assert!(value.contains(", scope=\"files:read files:write\", "), "{value}");
        assert!(m.challenge(&AuthError::TokenInQuery).to_str().unwrap().contains("error=\"invalid_request\""));
        // No token at all: no error code (nothing was wrong with a token), but the scopes to ask for.
        let anonymous = AuthError::ScopeRequired { required: vec!["files:write".into()] };
        assert_eq!(m.challenge(&anonymous), format!("Bearer scope=\"files:write\", {meta}").as_str());
        assert_eq!(anonymous.status(), http::StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn challenge_parameters_are_always_valid_quoted_strings() {
        let m = metadata("https://gw.example/mcp");
        let odd = AuthError::MissingClaim("we\"ird\\näme\n".into());
        let value = m.challenge(&odd);
        assert!(value.to_str().unwrap().contains(r#"lacks the `we\"ird\\n?me?` claim"#), "{value:?}");
    }
}
