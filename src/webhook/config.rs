//! The webhook's own configuration file (`forge webhook --config`): what every injected
//! sidecar gets. Keys are camelCase like the Kubernetes objects they end up in; the schema
//! is documented in docs/injection.md.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::config::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct WebhookConfig {
    /// The Forge sidecar image, e.g. `ghcr.io/forge/forge:0.1.0`.
    pub image: String,
    pub image_pull_policy: PullPolicy,
    /// The sidecar's resource requests and limits.
    pub resources: Resources,
    /// Where the sidecar's serving certificate comes from.
    pub tls: SidecarTls,
    /// The Secret holding the evidence signing key, mounted at /etc/forge/keys.
    pub signing_key: SigningKeyRef,
    /// The ConfigMap holding the policy bundle, mounted at /etc/forge/policies.
    pub policy: ConfigMapRef,
    /// Detector plugins from ConfigMaps, projected to /etc/forge/plugins; none: the image's.
    pub plugins: PluginConfigMaps,
    /// The volume source for /var/lib/forge (evidence, pins): `{emptyDir: {}}` by default.
    pub state_volume: serde_json::Map<String, Value>,
    /// The sidecar's admin port (probes, metrics).
    pub admin_port: u16,
    /// The port number the sidecar serves MCP on; moved up past any port the pod declares.
    pub listen_port: u16,
    /// What a pod with a bad `forge.dev/*` annotation gets.
    pub on_bad_annotation: OnBadAnnotation,
    /// The name of the MCP server's container port the sidecar takes over.
    pub port_name: String,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            image: String::new(),
            image_pull_policy: PullPolicy::IfNotPresent,
            resources: Resources::default(),
            tls: SidecarTls::default(),
            signing_key: SigningKeyRef::default(),
            policy: ConfigMapRef::default(),
            plugins: PluginConfigMaps::default(),
            state_volume: serde_json::Map::from_iter([("emptyDir".to_string(), Value::Object(Default::default()))]),
            admin_port: 9090,
            listen_port: 8443,
            on_bad_annotation: OnBadAnnotation::Reject,
            port_name: "mcp".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBadAnnotation {
    /// Refuse the pod; the message names the annotation and why.
    Reject,
    /// Admit the pod unchanged (no sidecar) with a warning.
    Warn,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
}

impl Default for Resources {
    fn default() -> Self {
        let map = |cpu: &str, memory: &str| {
            BTreeMap::from([("cpu".to_string(), cpu.to_string()), ("memory".to_string(), memory.to_string())])
        };
        Resources { requests: map("50m", "64Mi"), limits: map("1", "256Mi") }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct SidecarTls {
    /// A `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`) shared by every injected pod.
    pub secret_name: Option<String>,
    /// Or a per-pod certificate from cert-manager's CSI driver.
    pub cert_manager: Option<CertManager>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CertManager {
    pub issuer: String,
    /// `Issuer` or `ClusterIssuer`.
    #[serde(default = "default_issuer_kind")]
    pub issuer_kind: String,
}

fn default_issuer_kind() -> String {
    "Issuer".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct SigningKeyRef {
    pub secret_name: Option<String>,
    /// The Secret's key holding the PKCS#8 PEM; the sidecar's `FORGE_EVIDENCE_KEY` names it.
    pub key: String,
}

impl Default for SigningKeyRef {
    fn default() -> Self {
        SigningKeyRef { secret_name: None, key: "signing-key.pem".into() }
    }
}

/// One ConfigMap per plugin, by plugin name. A ConfigMap is flat, so each holds
/// `manifest.yaml` and `<name>.wasm` (binaryData) and the volume's `items` place them at
/// `<name>/manifest.yaml` and `<name>/<name>.wasm`, the layout the plugin loader reads. One
/// per plugin because a ConfigMap holds at most 1 MiB: a shipped detector is ~0.8 MiB.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct PluginConfigMaps {
    pub config_maps: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct ConfigMapRef {
    pub config_map: Option<String>,
}

impl WebhookConfig {
    pub fn from_file(path: &Path) -> anyhow::Result<WebhookConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read webhook config {}: {e}", path.display()))?;
        WebhookConfig::from_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn from_yaml(text: &str) -> Result<WebhookConfig, ConfigError> {
        crate::config::parse_yaml(text, WebhookConfig::validate)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.image.trim().is_empty() || self.image.contains(char::is_whitespace) {
            return Err(ConfigError::new("image", "must name the Forge sidecar image, e.g. ghcr.io/forge/forge:0.1.0"));
        }
        for (field, map) in
            [("resources.requests", &self.resources.requests), ("resources.limits", &self.resources.limits)]
        {
            for (resource, quantity) in map {
                if !["cpu", "memory", "ephemeral-storage"].contains(&resource.as_str()) {
                    let message = format!("`{resource}` is not cpu, memory or ephemeral-storage");
                    return Err(ConfigError::new(&format!("{field}.{resource}"), message));
                }
                if !is_quantity(quantity) {
                    let message = format!("`{quantity}` is not a Kubernetes quantity like 100m, 1, 64Mi or 1Gi");
                    return Err(ConfigError::new(&format!("{field}.{resource}"), message));
                }
            }
        }
        match (&self.tls.secret_name, &self.tls.cert_manager) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new("tls", "give tls.secretName or tls.certManager, not both"));
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "tls",
                    "the sidecar needs a certificate: set tls.secretName or tls.certManager.issuer",
                ))
            }
            (Some(name), None) => check_name("tls.secretName", name)?,
            (None, Some(cm)) => {
                check_name("tls.certManager.issuer", &cm.issuer)?;
                if !["Issuer", "ClusterIssuer"].contains(&cm.issuer_kind.as_str()) {
                    return Err(ConfigError::new("tls.certManager.issuerKind", "must be Issuer or ClusterIssuer"));
                }
            }
        }
        for (field, name) in
            [("signingKey.secretName", &self.signing_key.secret_name), ("policy.configMap", &self.policy.config_map)]
        {
            if let Some(name) = name {
                check_name(field, name)?;
            }
        }
        if !is_config_map_key(&self.signing_key.key) {
            let message = format!("`{}` is not a Secret key (letters, digits, `-`, `_`, `.`)", self.signing_key.key);
            return Err(ConfigError::new("signingKey.key", message));
        }
        for (plugin, config_map) in &self.plugins.config_maps {
            let field = format!("plugins.configMaps.{plugin}");
            check_plugin_name(plugin).map_err(|message| ConfigError::new(&field, message))?;
            check_name(&field, config_map)?;
        }
        if self.state_volume.len() != 1 || !self.state_volume.values().all(Value::is_object) {
            return Err(ConfigError::new(
                "stateVolume",
                "must be one Kubernetes volume source, e.g. `emptyDir: {}` or `persistentVolumeClaim: {claimName: x}`",
            ));
        }
        for (field, port) in [("adminPort", self.admin_port), ("listenPort", self.listen_port)] {
            if port == 0 {
                return Err(ConfigError::new(field, "must be a port number from 1 to 65535"));
            }
        }
        if !is_port_name(&self.port_name) {
            return Err(ConfigError::new(
                "portName",
                "must be a Kubernetes port name: at most 15 lowercase letters, digits and single hyphens, with a letter",
            ));
        }
        Ok(())
    }
}

fn check_name(field: &str, name: &str) -> Result<(), ConfigError> {
    if is_dns_subdomain(name) {
        Ok(())
    } else {
        Err(ConfigError::new(field, format!("`{name}` is not a Kubernetes object name (lowercase RFC 1123 subdomain)")))
    }
}

/// A plugin name as its manifest must have it, which is also its directory's name.
pub fn check_plugin_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("`{name}` is not a plugin name (at most 63 lower-case letters, digits and `-`)"))
    }
}

/// A ConfigMap or Secret data key.
fn is_config_map_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// An RFC 1123 subdomain, the rule for Secret and ConfigMap names.
pub fn is_dns_subdomain(name: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    name.len() <= 253 && name.split('.').all(label)
}

/// A container port name (IANA service name): 1–15 of `[a-z0-9-]`, a letter somewhere, no
/// hyphen at either end or twice in a row.
pub fn is_port_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// A Kubernetes resource quantity: a decimal number with an optional SI or binary suffix.
fn is_quantity(text: &str) -> bool {
    const SUFFIXES: &[&str] = &["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E", ""];
    let Some(number) = SUFFIXES.iter().find_map(|s| text.strip_suffix(s).filter(|n| !n.is_empty())) else {
        return false;
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "image: forge:1\ntls:\n  secretName: forge-tls\n";

    #[test]
    fn minimal_config_takes_the_defaults() {
        let c = WebhookConfig::from_yaml(MINIMAL).unwrap();
        assert_eq!(c.port_name, "mcp");
        assert_eq!(c.admin_port, 9090);
        assert_eq!(c.on_bad_annotation, OnBadAnnotation::Reject);
        assert!(c.state_volume.contains_key("emptyDir"));
    }

    #[test]
    fn errors_name_the_field_and_line() {
        let err = WebhookConfig::from_yaml("tls:\n  secretName: forge-tls\n").unwrap_err();
        assert_eq!(err.field, "image");
        let err = WebhookConfig::from_yaml(&format!("{MINIMAL}resources:\n  limits:\n    memory: lots\n")).unwrap_err();
        assert_eq!(err.field, "resources.limits.memory");
        assert!(err.to_string().starts_with("line 6:"), "{err}");
        let err = WebhookConfig::from_yaml(&format!("{MINIMAL}portName: MCP_Port\n")).unwrap_err();
        assert_eq!(err.field, "portName");
        let err = WebhookConfig::from_yaml(&format!("{MINIMAL}onBadAnnotation: ignore\n")).unwrap_err();
        assert!(err.to_string().contains("line 4"), "{err}");
        let err = WebhookConfig::from_yaml("image: forge:1\n").unwrap_err();
        assert_eq!(err.field, "tls");
        let both = "image: f\ntls:\n  secretName: a\n  certManager:\n    issuer: b\n";
        assert_eq!(WebhookConfig::from_yaml(both).unwrap_err().field, "tls");
        let err = WebhookConfig::from_yaml(&format!("{MINIMAL}policy:\n  configMap: Bad_Name\n")).unwrap_err();
        assert_eq!(err.field, "policy.configMap");
        let err = WebhookConfig::from_yaml(&format!("{MINIMAL}plugins:\n  configMaps: {{Secrets: forge-secrets}}\n"))
            .unwrap_err();
        assert_eq!(err.field, "plugins.configMaps.Secrets");
        let err =
            WebhookConfig::from_yaml(&format!("{MINIMAL}plugins:\n  configMaps: {{secrets: Forge}}\n")).unwrap_err();
        assert_eq!(err.field, "plugins.configMaps.secrets");
        let err = WebhookConfig::from_yaml(&format!("{MINIMAL}plugins:\n  configMap: forge-plugins\n")).unwrap_err();
        assert!(err.to_string().contains("configMap"), "the old single-ConfigMap key is refused: {err}");
        let err = WebhookConfig::from_yaml(&format!("{MINIMAL}signingKey:\n  key: ../key.pem\n")).unwrap_err();
        assert_eq!(err.field, "signingKey.key");
        let err = WebhookConfig::from_yaml(&format!("{MINIMAL}stateVolume:\n  emptyDir: {{}}\n  hostPath: {{}}\n"))
            .unwrap_err();
        assert_eq!(err.field, "stateVolume");
        assert!(WebhookConfig::from_yaml(&format!("{MINIMAL}imagePullPolicy: Sometimes\n")).is_err());
    }

    #[test]
    fn names_and_quantities() {
        for ok in ["mcp", "mcp-upstream", "http2", "a-b-c-d-e-f-g-h"] {
            assert!(is_port_name(ok), "{ok}");
        }
        for bad in ["", "MCP", "8080", "-mcp", "mcp-", "m--cp", "a-very-long-port-name"] {
            assert!(!is_port_name(bad), "{bad}");
        }
        for ok in ["1", "100m", "0.5", "64Mi", "1Gi", ".5", "2k"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Mi", "lots", "1.2.3", "-1", "1 Gi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
        assert!(is_dns_subdomain("forge-policy.v2"));
        assert!(!is_dns_subdomain("Forge"));
        assert!(!is_dns_subdomain("a..b"));
    }
}
