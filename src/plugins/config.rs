//! The `plugins:` section of the gateway's configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{Capability, FailMode};
use crate::config::{byte_size, duration};

/// Where the detectors shipped with Forge are built to (`wasm-plugins/build.sh`).
pub const SHIPPED_DIR: &str = "wasm-plugins/dist";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Run detector plugins at all.
    pub enabled: bool,
    /// The plugins directory (`<name>/manifest.yaml` beside `<name>.wasm`). Unset: the
    /// shipped detectors (see [`PluginsConfig::resolved_directory`]).
    pub directory: Option<PathBuf>,
    /// With `directory` unset, load the detectors shipped in [`SHIPPED_DIR`] when they are
    /// built there.
    pub shipped: bool,
    /// Only these plugins run, in this order; unset: every plugin of the directory, by name.
    pub order: Option<Vec<String>>,
    /// Per-plugin settings, by plugin name.
    pub settings: BTreeMap<String, PluginSettings>,
    pub limits: PluginLimits,
    /// Watch the directory and reload it when it changes.
    pub reload: bool,
    /// Where compiled components are cached; unset: `state_dir/plugins-cache`.
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginSettings {
    pub enabled: bool,
    /// Narrows the manifest's methods (empty: the manifest's).
    pub methods: Vec<String>,
    /// The plugin's own config, checked against its manifest's `config_schema`.
    pub config: Value,
    pub fail_mode: FailMode,
    /// Capabilities the operator grants; a plugin whose manifest asks for one not granted
    /// here is refused.
    pub grants: Vec<Capability>,
    /// With the `fs` grant: the host directory the plugin sees (read-only) as `/`.
    pub fs_root: Option<PathBuf>,
}

/// Limits of one plugin call.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginLimits {
    /// Linear memory one instance may grow to (`16MiB`).
    #[serde(deserialize_with = "byte_size")]
    pub memory: usize,
    /// CPU-time budget of one call (`20ms`): CPU time of the thread running it, so waiting
    /// for a core on a busy host does not count. Enforced by epoch interruption.
    #[serde(deserialize_with = "duration")]
    pub time: Duration,
    /// CPU-time budget of a plugin's one-off `prepare` at load (`2s`): compiling all its
    /// patterns takes longer than a call.
    #[serde(deserialize_with = "duration")]
    pub prepare_time: Duration,
    /// Plugin instances alive at once across all calls (`64`); instance slots are
    /// reserved for them up front.
    pub max_concurrent: u32,
    /// How long a call beyond `max_concurrent` waits for an instance to be freed (`10ms`)
    /// before it fails as `busy` and takes the plugin's fail mode.
    #[serde(deserialize_with = "duration")]
    pub max_wait: Duration,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            enabled: true,
            directory: None,
            shipped: true,
            order: None,
            settings: BTreeMap::new(),
            limits: PluginLimits::default(),
            reload: true,
            cache_dir: None,
        }
    }
}

impl Default for PluginSettings {
    fn default() -> Self {
        PluginSettings {
            enabled: true,
            methods: Vec::new(),
            config: Value::Object(Default::default()),
            fail_mode: FailMode::FailClosed,
            grants: Vec::new(),
            fs_root: None,
        }
    }
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory: 16 << 20,
            time: Duration::from_millis(20),
            prepare_time: Duration::from_secs(2),
            max_concurrent: 64,
            max_wait: Duration::from_millis(10),
        }
    }
}

impl PluginsConfig {
    /// The directory to load: `directory` if set; else, with `shipped` on, [`SHIPPED_DIR`]
    /// (relative to the working directory, like the default policy bundle) if a detector
    /// is built there; else none.
    pub fn resolved_directory(&self) -> Option<PathBuf> {
        if self.directory.is_some() {
            return self.directory.clone();
        }
        let shipped = std::path::Path::new(SHIPPED_DIR);
        let built = std::fs::read_dir(shipped)
            .map(|entries| entries.flatten().any(|e| e.path().join("manifest.yaml").is_file()))
            .unwrap_or(false);
        (self.shipped && built).then(|| shipped.to_path_buf())
    }

    pub fn settings_for(&self, name: &str) -> PluginSettings {
        self.settings.get(name).cloned().unwrap_or_default()
    }

    /// Problems a config can have before any plugin is read: the field and what is wrong.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let problem = |field: &str, message: &str| Err((format!("plugins.{field}"), message.to_string()));
        if self.limits.memory < 1 << 20 {
            return problem("limits.memory", "must be at least 1MiB");
        }
        if self.limits.time.is_zero() {
            return problem("limits.time", "must be more than 0");
        }
        if self.limits.max_concurrent == 0 {
            return problem("limits.max_concurrent", "must be at least 1");
        }
        for (name, settings) in &self.settings {
            if settings.grants.contains(&Capability::Fs) != settings.fs_root.is_some() {
                return problem(&format!("settings.{name}.fs_root"), "the `fs` grant and `fs_root` go together");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_directory_wins_and_shipped_off_loads_none() {
        let configured = PluginsConfig { directory: Some("elsewhere".into()), ..Default::default() };
        assert_eq!(configured.resolved_directory(), Some(PathBuf::from("elsewhere")));
        let off = PluginsConfig { shipped: false, ..Default::default() };
        assert_eq!(off.resolved_directory(), None);
    }
}
