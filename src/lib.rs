//! Forge: a sidecar policy gateway for MCP servers.
//!
//! The per-message path lives in [`pipeline`]; read it first.

pub mod admission;
pub mod approvals;
pub mod auth;
pub mod body;
pub mod config;
pub mod enforce;
pub mod evidence;
pub mod gateway;
pub mod hex;
pub mod identity;
pub mod mcp;
pub mod pins;
pub mod pipeline;
pub mod plugins;
pub mod policy;
pub mod provenance;
pub mod ratelimit;
pub mod server;
pub mod signing;
pub mod state;
pub mod stream;
pub mod telemetry;
pub mod upstream;
pub mod webhook;
