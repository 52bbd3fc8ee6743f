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
    /// The plugins directory (`<name>/manifest.yaml` beside `<name>.wasm`). Unset: none
    /// (the shipped detectors are in `wasm-plugins/dist` once built).
    pub directory: Option<PathBuf>,
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
    /// Wall-clock budget of one call, enforced by epoch interruption (`20ms`).
    #[serde(deserialize_with = "duration")]
    pub time: Duration,
    /// Wall-clock budget of a plugin's one-off `prepare` at load (`2s`): compiling all its
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
    /// The directory to load: only a configured one. The shipped detectors are not loaded
    /// implicitly: compiling them is seconds at every start of a debug build, which every
    /// gateway the test suite starts would pay; the log points at [`SHIPPED_DIR`] instead.
    pub fn resolved_directory(&self) -> Option<PathBuf> {
        self.directory.clone()
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
