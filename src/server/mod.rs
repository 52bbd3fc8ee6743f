//! The listeners: the MCP port (TLS, routing to the pipeline; served by one worker thread
//! per core) and the admin port.

pub mod admin;
pub mod listener;
pub mod tls;
pub mod workers;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::body::{self, Body};
use crate::gateway::Gateway;
use crate::pipeline;
use crate::upstream::{Outbound, Upstream};

/// What the gateway knows about the connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pub tls: bool,
    /// Set when the client presented a verified certificate.
    pub client_identity: Option<tls::ClientIdentity>,
}

/// Where a request on the MCP port goes (documented in docs/routes.md).
enum Route {
    McpPost,
    McpStream,
    ResourceMetadata,
    Passthrough,
    MethodNotAllowed,
    NotFound,
}

fn classify(gw: &Gateway, req: &Request<Incoming>) -> Route {
    let path = req.uri().path();
    let method = req.method();
    if path == gw.mcp_path {
        return match *method {
            Method::POST => Route::McpPost,
            Method::GET | Method::DELETE => Route::McpStream,
            _ => Route::MethodNotAllowed,
        };
    }
    if path == gw.config.routes.legacy_sse_path && method == Method::GET {
        return Route::McpStream;
    }
    if method == Method::POST && gw.is_legacy_endpoint(path) {
        return Route::McpPost;
    }
    // RFC 9728 metadata at the resource's own well-known path, and at the root one that
    // MCP clients fall back to.
    let metadata_paths = [gw.auth.metadata_path(), "/.well-known/oauth-protected-resource"];
    if gw.auth.enabled() && method == Method::GET && metadata_paths.contains(&path) {
        return Route::ResourceMetadata;
    }
    if gw.config.routes.passthrough_prefixes.iter().any(|p| path.starts_with(p.as_str())) {
        return Route::Passthrough;
    }
    Route::NotFound
}

pub async fn route(gw: Arc<Gateway>, req: Request<Incoming>, conn: Arc<ConnInfo>) -> Response<Body> {
    match classify(&gw, &req) {
        Route::McpPost => {
            use tracing::Instrument;
            let span = crate::telemetry::tracing_otel::request_span(req.headers());
            let response = pipeline::mcp_post(gw, req, conn).instrument(span.clone()).await;
            crate::telemetry::tracing_otel::finish(&span, response.status());
            response
        }
        Route::McpStream => pipeline::mcp_stream(gw, req, conn).await,
        Route::ResourceMetadata => resource_metadata(&gw),
        Route::Passthrough => passthrough(gw, req).await,
        Route::MethodNotAllowed => method_not_allowed(),
        Route::NotFound => {
            pipeline::plain(StatusCode::NOT_FOUND, "not found: this gateway serves MCP at its MCP endpoint")
        }
    }
}

fn method_not_allowed() -> Response<Body> {
    let mut r = pipeline::plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static("GET, POST, DELETE"));
    r
}

fn resource_metadata(gw: &Gateway) -> Response<Body> {
    let mut r = Response::new(body::full(gw.auth.resource_metadata().to_string()));
    let headers = r.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    // Browser-based MCP clients read this before they have any credentials.
    headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, http::HeaderValue::from_static("*"));
    r
}

/// Forwards a non-MCP request (e.g. `/.well-known/…`) to an HTTP upstream untouched.
async fn passthrough(gw: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    if !matches!(gw.upstream, Upstream::Http(_)) {
        return pipeline::plain(StatusCode::NOT_FOUND, "not found");
    }
    let (mut parts, incoming) = req.into_parts();
    gw.auth.strip_credentials(&mut parts.headers);
    let (limit, timeout) = (gw.config.limits.max_body_bytes, gw.config.limits.body_read_timeout);
    let bytes = match body::read_limited(body::boxed(incoming), limit, timeout).await {
        Ok(b) => b,
        Err(e) => return pipeline::plain(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let outbound = Outbound {
        method: parts.method,
        path_and_query: parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
        authority: parts.uri.authority().map(|a| a.to_string()),
        headers: parts.headers,
        body: bytes,
        payload: None,
    };
    match gw.upstream.send(outbound).await {
        Ok(response) => response,
        Err(e) => {
            gw.metrics.upstream_errors.with_label_values(&[e.kind.label()]).inc();
            tracing::error!(error = %e, "upstream failed on a passthrough path");
            pipeline::plain(StatusCode::BAD_GATEWAY, "the upstream server failed")
        }
    }
}
