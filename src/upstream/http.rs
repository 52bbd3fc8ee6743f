//! An MCP server reached over HTTP on localhost, through a pooled hyper client.

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName};
use http::{Request, Response, Uri, Version};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use thread_local::ThreadLocal;

use super::{ErrorKind, Outbound, UpstreamError};
use crate::body::{self, Body};
use crate::config::UpstreamConfig;

pub struct HttpUpstream {
    /// One connection pool per thread. A pooled connection is driven by a task on the
    /// runtime that opened it; a serving worker that only uses its own never waits on, or
    /// wakes, another thread (see `server/workers.rs`).
    clients: ThreadLocal<Client<HttpConnector, Body>>,
    base: Uri,
    timeout: Duration,
    connect_timeout: Duration,
    pool_max_idle: usize,
}

impl HttpUpstream {
    pub fn new(base: Uri, config: &UpstreamConfig) -> Self {
        HttpUpstream {
            clients: ThreadLocal::new(),
            base,
            timeout: config.timeout,
            connect_timeout: config.connect_timeout,
            pool_max_idle: config.pool_max_idle,
        }
    }

    /// This thread's client, built on first use.
    fn client(&self) -> &Client<HttpConnector, Body> {
        self.clients.get_or(|| {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(self.connect_timeout));
            Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(self.pool_max_idle)
                .pool_idle_timeout(Duration::from_secs(60))
                .build(connector)
        })
    }

    pub fn base(&self) -> &Uri {
        &self.base
    }

    pub async fn send(&self, out: Outbound) -> Result<Response<Body>, UpstreamError> {
        let uri = Uri::builder()
            .scheme("http")
            .authority(self.base.authority().expect("validated at config load").clone())
            .path_and_query(out.path_and_query.as_str())
            .build()
            .map_err(|e| UpstreamError::new(ErrorKind::InvalidResponse, format!("bad upstream URI: {e}")))?;
        let mut request = Request::builder().method(out.method).uri(uri).version(Version::HTTP_11);
        let headers = request.headers_mut().expect("builder is valid");
        *headers = out.headers;
        strip_hop_by_hop(headers);
        // The client's Host (HTTP/2: :authority) is kept, as a transparent proxy must, so the
        // upstream's own DNS-rebinding checks see what they would see without the gateway.
        if let Some(authority) = out.authority.filter(|_| !headers.contains_key(header::HOST)) {
            if let Ok(host) = header::HeaderValue::from_str(&authority) {
                headers.insert(header::HOST, host);
            }
        }
        headers.insert(header::CONTENT_LENGTH, out.body.len().into());
        let request = request.body(body::full(out.body)).expect("request parts are valid");

        let response = tokio::time::timeout(self.timeout, self.client().request(request))
            .await
            .map_err(|_| UpstreamError::new(ErrorKind::Timeout, format!("no response within {:?}", self.timeout)))?
            .map_err(classify)?;
        let (mut parts, incoming) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, body::boxed(incoming)))
    }

    /// Ready when a TCP connection to the upstream can be opened.
    pub async fn ready(&self) -> Result<(), String> {
        let authority = self.base.authority().expect("validated at config load");
        let port = authority.port_u16().unwrap_or(80);
        let connect = tokio::net::TcpStream::connect((authority.host(), port));
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("upstream {authority} unreachable: {e}")),
            Err(_) => Err(format!("upstream {authority} did not accept a connection in time")),
        }
    }
}

fn classify(e: hyper_util::client::legacy::Error) -> UpstreamError {
    use std::error::Error;
    let message = match e.source() {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    };
    if e.is_connect() {
        return UpstreamError::new(ErrorKind::Connect, message);
    }
    let hyper_error = e.source().and_then(|s| s.downcast_ref::<hyper::Error>());
    let kind = match hyper_error {
        Some(h) if h.is_parse() || h.is_parse_status() => ErrorKind::InvalidResponse,
        _ => ErrorKind::Reset,
    };
    UpstreamError::new(kind, message)
}

/// Removes headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1),
/// including any named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive, x-secret-hop".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert("mcp-session-id", "abc".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("mcp-session-id"));
    }
}
