//! A plugin's `manifest.yaml`: what it is, what it wants, and the digest its `.wasm` must have.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Capability, Hook, PluginError};

/// The WIT package version this host implements (`wit/detector.wit`).
pub const WIT_VERSION: semver::Version = semver::Version::new(0, 1, 0);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: semver::Version,
    /// The WIT package version the plugin was built against.
    pub wit: semver::Version,
    #[serde(default)]
    pub description: String,
    pub hooks: Vec<Hook>,
    /// MCP methods the plugin wants; empty means every method of its hooks.
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// JSON Schema of the plugin's own config; the operator's config must satisfy it.
    #[serde(default)]
    pub config_schema: Option<Value>,
    /// The component, relative to the manifest.
    pub wasm: PathBuf,
    /// Hex SHA-256 of the component.
    pub sha256: String,
}

impl Manifest {
    /// Reads and checks `dir/manifest.yaml`.
    pub fn read(dir: &Path) -> Result<Manifest, PluginError> {
        let path = dir.join("manifest.yaml");
        let bytes = std::fs::read(&path).map_err(|e| PluginError::io(&path, e))?;
        Manifest::parse(&path, &bytes)
    }

    /// Checks a manifest's text; `path` names it in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest, PluginError> {
        let error = |message: String| PluginError::Manifest { path: path.to_path_buf(), message };
        let manifest: Manifest = serde_yaml_ng::from_slice(bytes).map_err(|e| error(e.to_string()))?;
        manifest.check().map_err(error)?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(format!("`name`: `{}` must be lower-case letters, digits and `-`", self.name));
        }
        // Minor versions only add what old plugins can ignore (wit/detector.wit), so a
        // plugin built for this major.minor or an older minor works.
        let compatible = self.wit.major == WIT_VERSION.major
            && if WIT_VERSION.major == 0 {
                self.wit.minor == WIT_VERSION.minor
            } else {
                self.wit.minor <= WIT_VERSION.minor
            };
        if !compatible {
            return Err(format!("`wit`: the plugin targets WIT {}, this gateway implements {WIT_VERSION}", self.wit));
        }
        if self.hooks.is_empty() {
            return Err("`hooks`: a plugin must subscribe to at least one hook".into());
        }
        if self.wasm.is_absolute() || self.wasm.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err("`wasm`: must be a path inside the plugin's directory".into());
        }
        let hex_ok = self.sha256.len() == 64 && self.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex_ok {
            return Err("`sha256`: must be 64 hex digits".into());
        }
        if let Some(schema) = &self.config_schema {
            jsonschema::validator_for(schema).map_err(|e| format!("`config_schema`: not a valid JSON Schema: {e}"))?;
        }
        Ok(())
    }

    /// Checks the component's bytes (read from `path`) against the manifest's digest.
    pub fn check_wasm(&self, path: &Path, bytes: &[u8]) -> Result<(), PluginError> {
        let actual = sha256_hex(bytes);
        if !actual.eq_ignore_ascii_case(&self.sha256) {
            return Err(PluginError::Digest { path: path.to_path_buf(), expected: self.sha256.clone(), actual });
        }
        Ok(())
    }

    /// Checks the operator's config for this plugin against its schema.
    pub fn check_config(&self, config: &Value) -> Result<(), String> {
        let Some(schema) = &self.config_schema else { return Ok(()) };
        let validator = jsonschema::validator_for(schema).map_err(|e| e.to_string())?;
        let problems: Vec<String> =
            validator.iter_errors(config).map(|e| format!("{} at `{}`", e, e.instance_path())).collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

pub use crate::hex::sha256_hex;

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(yaml: &str) -> Result<Manifest, String> {
        let m: Manifest = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        m.check().map(|_| m)
    }

    const GOOD: &str =
        "name: secrets\nversion: 0.1.0\nwit: 0.1.0\nhooks: [request, tool-list]\nwasm: secrets.wasm\nsha256: ";

    fn good() -> String {
        format!("{GOOD}{}\n", "a".repeat(64))
    }

    #[test]
    fn a_complete_manifest_reads() {
        let m = manifest(&format!("{}capabilities: [clock]\nconfig_schema: {{type: object}}\n", good())).unwrap();
        assert_eq!(m.hooks, vec![Hook::Request, Hook::ToolList]);
        assert_eq!(m.capabilities, vec![Capability::Clock]);
        assert!(m.check_config(&serde_json::json!({})).is_ok());
        assert!(m.check_config(&serde_json::json!([1])).unwrap_err().contains("object"));
    }

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        let cases = [
            (good().replace("name: secrets", "name: Secrets"), "`name`"),
            (good().replace("wit: 0.1.0", "wit: 0.2.0"), "`wit`"),
            (good().replace("wit: 0.1.0", "wit: 1.1.0"), "`wit`"),
            (good().replace("[request, tool-list]", "[]"), "`hooks`"),
            (good().replace("[request, tool-list]", "[requests]"), "unknown variant"),
            (good().replace("secrets.wasm", "../x.wasm"), "`wasm`"),
            (good().replace(&"a".repeat(64), "abc"), "`sha256`"),
            (format!("{}capabilities: [sockets]\n", good()), "unknown variant"),
            (format!("{}config_schema: {{type: 7}}\n", good()), "`config_schema`"),
            (format!("{}extra: 1\n", good()), "unknown field"),
        ];
        for (yaml, expected) in cases {
            let e = manifest(&yaml).unwrap_err();
            assert!(e.contains(expected), "{yaml}: {e}");
        }
    }
}
