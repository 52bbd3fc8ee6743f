use forge_plugin_sdk::{Config, Context, Finding, Payload};
pub fn detect(_cx: &Context, _payload: &Payload, _config: &Config) -> Result<Vec<Finding>, String> {
    Ok(vec![])
}
forge_plugin_sdk::export_detector!(detect);
