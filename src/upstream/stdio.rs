//! stub
use crate::body::Body;
use crate::config::Config;
use crate::telemetry::metrics::Metrics;
use super::{Outbound, UpstreamError, ErrorKind};
pub struct StdioUpstream { program: String, args: Vec<String> }
impl StdioUpstream {
    pub fn new(program: String, args: Vec<String>, _c: &Config, _m: Metrics) -> Self { StdioUpstream { program, args } }
    pub async fn send(&self, _out: Outbound) -> Result<http::Response<Body>, UpstreamError> { Err(UpstreamError::new(ErrorKind::ProcessExit, "todo")) }
    pub fn ready(&self) -> Result<(), String> { Ok(()) }
    pub fn describe(&self) -> String { format!("stdio:{} {}", self.program, self.args.join(" ")) }
    pub async fn shutdown(&self) {}
}
