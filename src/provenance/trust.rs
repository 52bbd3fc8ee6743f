//! The trust policy: which keys may sign bundles and plugins, or explicit development mode.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::metrics::ProvenanceMetrics;
use super::{ArtifactKind, Provenance, Rejection, VerifiedPlugin};
use crate::signing::PublicKey;

const DEVELOPMENT_WARNING: &str =
    "no trust policy (trust:) is configured: unsigned policy bundles and plugins load (development mode)";

/// The `trust:` section. Present, every bundle and plugin must be signed by one of the keys
/// listed for its kind; an empty list trusts nothing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    pub bundles: Signers,
    pub plugins: Signers,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Signers {
    /// Ed25519 public keys (SPKI PEM).
    pub keys: Vec<KeySource>,
}

/// One trusted key: `file:` (a PEM file, e.g. a mounted Secret) or `pem:` (the PEM text).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySource {
    pub file: Option<PathBuf>,
    pub pem: Option<String>,
}

impl KeySource {
    fn load(&self) -> anyhow::Result<PublicKey> {
        match (&self.file, &self.pem) {
            (Some(path), None) => PublicKey::load(path),
            (None, Some(text)) => PublicKey::from_pem(text).context("inline public key"),
            _ => anyhow::bail!("give exactly one of `file` or `pem`"),
        }
    }
}

impl TrustConfig {
    /// Loads every key; an error names the field (`trust.bundles.keys`) and the key's position.
    pub fn keys(&self) -> Result<(Vec<PublicKey>, Vec<PublicKey>), (String, String)> {
        let load = |section: &str, signers: &Signers| {
            signers
                .keys
                .iter()
                .enumerate()
                .map(|(i, source)| {
                    source.load().map_err(|e| (format!("trust.{section}.keys"), format!("key {}: {e:#}", i + 1)))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok((load("bundles", &self.bundles)?, load("plugins", &self.plugins)?))
    }
}

/// The gateway's trust decisions: shared by the policy store and the plugin host.
pub struct Trust {
    /// `None`: development mode.
    keys: Option<Keys>,
    metrics: ProvenanceMetrics,
    last_rejection: Mutex<Option<(Rejection, SystemTime)>>,
}

struct Keys {
    bundles: Vec<PublicKey>,
    plugins: Vec<PublicKey>,
}

/// What `/readyz` shows about provenance.
#[derive(Debug, Clone, Serialize)]
pub struct TrustStatus {
    /// `enforced` or `development`.
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<&'static str>,
    pub bundle_signers: Vec<String>,
    pub plugin_signers: Vec<String>,
    /// The most recent refusal of a bundle or plugin.
    pub last_rejection: Option<Rejection>,
    pub last_rejection_at: Option<String>,
}

impl Trust {
    /// Loads unsigned content: what a gateway without `trust:` runs.
    pub fn development() -> Trust {
        Trust { keys: None, metrics: ProvenanceMetrics::new(true), last_rejection: Mutex::new(None) }
    }

    pub fn from_config(config: Option<&TrustConfig>) -> anyhow::Result<Trust> {
        let Some(config) = config else { return Ok(Trust::development()) };
        let (bundles, plugins) = config.keys().map_err(|(field, e)| anyhow::anyhow!("`{field}`: {e}"))?;
        Ok(Trust::with_keys(bundles, plugins))
    }

    pub fn with_keys(bundles: Vec<PublicKey>, plugins: Vec<PublicKey>) -> Trust {
        Trust {
            keys: Some(Keys { bundles, plugins }),
            metrics: ProvenanceMetrics::new(false),
            last_rejection: Mutex::new(None),
        }
    }

    pub fn is_development(&self) -> bool {
        self.keys.is_none()
    }

    /// Says at start which mode the gateway runs in; development mode is a warning.
    pub fn log_mode(&self) {
        match &self.keys {
            None => tracing::warn!("{DEVELOPMENT_WARNING}"),
            Some(keys) => tracing::info!(
                bundle_signers = ?ids(&keys.bundles),
                plugin_signers = ?ids(&keys.plugins),
                "trust policy: only signed policy bundles and plugins load"
            ),
        }
    }

    /// Verifies a bundle directory and that `loaded` — the files a loader read from it, by
    /// relative path — are the signed bytes. `None` in development mode.
    pub fn verify_bundle<'a>(
        &self,
        dir: &Path,
        loaded: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Option<Provenance>, Rejection> {
        let Some(keys) = &self.keys else { return Ok(None) };
        super::verify_bundle(dir, &keys.bundles)
            .and_then(|provenance| super::check_loaded(&provenance, dir, loaded).map(|()| provenance))
            .map(Some)
            .map_err(|r| self.refused(r))
    }

    /// Verifies a plugin and returns the bytes to compile. In development mode it only reads them.
    pub fn verify_plugin(&self, wasm: &Path, manifest: &Path) -> Result<VerifiedPlugin, Rejection> {
        let Some(keys) = &self.keys else {
            let (wasm, manifest) = super::read_plugin(wasm, manifest)
                .map_err(super::rejection(ArtifactKind::Plugin, wasm))
                .map_err(|r| self.refused(r))?;
            return Ok(VerifiedPlugin { provenance: None, wasm, manifest });
        };
        super::verify_plugin(wasm, manifest, &keys.plugins).map_err(|r| self.refused(r))
    }

    fn refused(&self, rejection: Rejection) -> Rejection {
        self.metrics.rejected(&rejection);
        tracing::error!(
            kind = rejection.kind.as_str(),
            artifact = %rejection.artifact.display(),
            reason = rejection.reason.as_str(),
            detail = %rejection.detail,
            "refused by the trust policy"
        );
        *self.last_rejection.lock().unwrap_or_else(|e| e.into_inner()) = Some((rejection.clone(), SystemTime::now()));
        rejection
    }

    pub fn status(&self) -> TrustStatus {
        let last = self.last_rejection.lock().unwrap_or_else(|e| e.into_inner()).clone();
        TrustStatus {
            mode: if self.is_development() { "development" } else { "enforced" },
            warning: self.is_development().then_some(DEVELOPMENT_WARNING),
            bundle_signers: self.keys.as_ref().map(|k| ids(&k.bundles)).unwrap_or_default(),
            plugin_signers: self.keys.as_ref().map(|k| ids(&k.plugins)).unwrap_or_default(),
            last_rejection_at: last.as_ref().map(|(_, at)| crate::policy::rfc3339(*at)),
            last_rejection: last.map(|(rejection, _)| rejection),
        }
    }

    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        self.metrics.collectors()
    }
}

fn ids(keys: &[PublicKey]) -> Vec<String> {
    keys.iter().map(PublicKey::key_id).collect()
}
