//! Who is calling. Today: an mTLS client certificate or nobody; bearer JWTs join here.

use crate::server::tls::ClientIdentity;
use crate::server::ConnInfo;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    /// A client that presented a certificate the gateway verified.
    Certificate(ClientIdentity),
}

impl Principal {
    pub fn from_connection(conn: &ConnInfo) -> Principal {
        match &conn.client_identity {
            Some(identity) => Principal::Certificate(identity.clone()),
            None => Principal::Anonymous,
        }
    }

    /// A short form for logs: never a credential.
    pub fn label(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".into(),
            Principal::Certificate(id) => match &id.spiffe_id {
                Some(spiffe) => spiffe.clone(),
                None => id.subject.clone(),
            },
        }
    }
}
