//! Who is calling: a verified bearer token, a verified client certificate, both, or nobody.

use serde_json::{Map, Value};

use crate::server::tls::ClientIdentity;
use crate::server::ConnInfo;

/// The caller of one request, as far as the gateway could verify it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Principal {
    /// From a bearer JWT whose signature and claims were verified.
    pub token: Option<TokenIdentity>,
    /// From a client certificate rustls verified (mTLS).
    pub certificate: Option<ClientIdentity>,
}

/// The verified contents of a bearer JWT. The token itself is never kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenIdentity {
    pub issuer: String,
    pub subject: String,
    pub audience: Vec<String>,
    /// From the `scope` (space-separated) or `scp` (array) claim.
    pub scopes: Vec<String>,
    /// Every claim of the token, for policy.
    pub claims: Map<String, Value>,
}

impl Principal {
    /// The principal the connection alone establishes (its client certificate, if any).
    pub fn from_connection(conn: &ConnInfo) -> Principal {
        Principal { token: None, certificate: conn.client_identity.clone() }
    }

    pub fn is_anonymous(&self) -> bool {
        self.token.is_none() && self.certificate.is_none()
    }

    /// A short form for logs: never a credential.
    pub fn label(&self) -> String {
        if let Some(token) = &self.token {
            return format!("{}@{}", token.subject, token.issuer);
        }
        match &self.certificate {
            Some(id) => id.spiffe_id.clone().unwrap_or_else(|| id.subject.clone()),
            None => "anonymous".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_prefer_the_token_then_the_spiffe_id() {
        let cert = ClientIdentity { subject: "CN=svc".into(), sans: vec![], spiffe_id: Some("spiffe://td/svc".into()) };
        let token = TokenIdentity { issuer: "https://idp".into(), subject: "alice".into(), ..Default::default() };
        assert_eq!(Principal::default().label(), "anonymous");
        assert!(Principal::default().is_anonymous());
        assert_eq!(Principal { token: None, certificate: Some(cert.clone()) }.label(), "spiffe://td/svc");
        assert_eq!(Principal { token: Some(token), certificate: Some(cert) }.label(), "alice@https://idp");
    }
}
