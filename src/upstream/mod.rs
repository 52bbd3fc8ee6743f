//! The MCP server behind the gateway: an HTTP server on localhost, or a stdio child process
//! the gateway runs and exposes as Streamable HTTP.

pub mod http;
pub mod stdio;

use ::http::{HeaderMap, Method};
use bytes::Bytes;

use crate::body::Body;
use crate::mcp::jsonrpc::Payload;

/// A request as the gateway forwards it, after every check has passed.
#[derive(Debug)]
pub struct Outbound {
    pub method: Method,
    /// Path and query as the client sent them.
    pub path_and_query: String,
    pub headers: HeaderMap,
    /// The authority the client addressed (HTTP/2 `:authority`), used when `Host` is absent.
    pub authority: Option<String>,
    pub body: Bytes,
    /// The parsed body, for upstreams that route by message (stdio).
    pub payload: Option<Payload>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Connect,
    Timeout,
    Reset,
    InvalidResponse,
    ProcessExit,
}

impl ErrorKind {
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::ProcessExit => "process_exit",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("upstream {}: {message}", kind.label())]
pub struct UpstreamError {
    pub kind: ErrorKind,
    pub message: String,
}

impl UpstreamError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        UpstreamError { kind, message: message.into() }
    }
}

// One value per gateway, so the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Upstream {
    Http(http::HttpUpstream),
    Stdio(stdio::StdioUpstream),
}

impl Upstream {
    /// Sends a request and returns the upstream's response head with a streaming body.
    pub async fn send(&self, out: Outbound) -> Result<::http::Response<Body>, UpstreamError> {
        match self {
            Upstream::Http(h) => h.send(out).await,
            Upstream::Stdio(s) => s.send(out).await,
        }
    }

    /// Whether the upstream can take requests now (for `/readyz`).
    pub async fn ready(&self) -> Result<(), String> {
        match self {
            Upstream::Http(h) => h.ready().await,
            Upstream::Stdio(s) => s.ready(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Upstream::Http(h) => h.base().to_string(),
            Upstream::Stdio(s) => s.describe(),
        }
    }
}
