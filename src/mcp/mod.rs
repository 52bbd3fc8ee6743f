//! The Model Context Protocol as the gateway understands it: the message model, SSE framing,
//! the mirrored request headers, sessions and tool definitions.

pub mod headers;
pub mod jsonrpc;
pub mod session;
pub mod sse;
pub mod tools;
