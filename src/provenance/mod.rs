//! Provenance: only policy bundles and plugins signed by a trusted key load.
//!
//! A signature is a DSSE envelope (`dsse.rs`) around an in-toto Statement v1 (`statement.rs`)
//! whose subjects are every covered file with its SHA-256, so standard in-toto/DSSE tooling
//! can read and check it (docs/provenance.md). A bundle's envelope is `.signature.dsse.json`
//! in the bundle directory and covers every other file in it; a plugin's is
//! `<name>.wasm.dsse.json` beside the module and covers the module and its manifest.
//!
//! ```ignore
//! let trust = Trust::from_config(config.trust.as_ref())?;   // no `trust:`: development mode
//! let plugin = trust.verify_plugin(&wasm_path, &manifest_path)?;  // Err: a Rejection
//! compile(&plugin.wasm);                                      // exactly the verified bytes
//! ```
//!
//! The policy store verifies bundles itself, at load and at every reload
//! ([`crate::policy::PolicyStore::load_with_trust`]).

pub mod cli;
mod dsse;
mod files;
mod metrics;
mod statement;
mod trust;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context as _;
use serde::Serialize;

use crate::signing::{PublicKey, SigningKey};
pub use dsse::PAYLOAD_TYPE;
pub use files::BUNDLE_SIGNATURE;
pub use statement::{BUNDLE_PREDICATE, PLUGIN_PREDICATE, STATEMENT_TYPE};
pub use trust::{KeySource, Signers, Trust, TrustConfig, TrustStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    PolicyBundle,
    Plugin,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::PolicyBundle => "policy-bundle",
            ArtifactKind::Plugin => "plugin",
        }
    }
}

/// Why an artifact was refused; the `reason` label of `forge_provenance_rejections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// There is no signature file.
    Unsigned,
    /// The signature file is not a DSSE envelope (garbage, truncated, bad base64, no signatures).
    MalformedEnvelope,
    /// The envelope does not hold an in-toto Statement.
    WrongPayloadType,
    /// No signature is by a trusted key.
    UntrustedSigner,
    /// A signature names a trusted key but does not verify: the envelope was altered.
    BadSignature,
    /// The signed payload is not an in-toto Statement v1 as we write them.
    MalformedStatement,
    /// The statement is about another kind of artifact (a plugin's signature on a bundle).
    WrongPredicateType,
    FileChanged,
    FileAdded,
    FileRemoved,
    FileRenamed,
    /// A file could not be read: refused, since it cannot be checked.
    Unreadable,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unsigned => "unsigned",
            Reason::MalformedEnvelope => "malformed_envelope",
            Reason::WrongPayloadType => "wrong_payload_type",
            Reason::UntrustedSigner => "untrusted_signer",
            Reason::BadSignature => "bad_signature",
            Reason::MalformedStatement => "malformed_statement",
            Reason::WrongPredicateType => "wrong_predicate_type",
            Reason::FileChanged => "file_changed",
            Reason::FileAdded => "file_added",
            Reason::FileRemoved => "file_removed",
            Reason::FileRenamed => "file_renamed",
            Reason::Unreadable => "unreadable",
        }
    }
}

/// A bundle or plugin that may not load, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{} {} is refused ({}): {detail}", kind.as_str(), artifact.display(), reason.as_str())]
pub struct Rejection {
    pub kind: ArtifactKind,
    pub artifact: PathBuf,
    pub reason: Reason,
    pub detail: String,
}

/// What a verified signature vouches for: the record evidence cites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    pub kind: ArtifactKind,
    pub name: String,
    pub version: Option<String>,
    /// The RFC 7638 key id of the trusted key whose signature verified.
    pub signer: String,
    /// When the signer says it signed (RFC 3339).
    pub signed_at: String,
    /// SHA-256 (hex) of the signed statement: one digest naming every file's digest.
    pub statement_sha256: String,
    /// Every covered file, relative to the artifact's directory, with its SHA-256 (hex).
    pub files: BTreeMap<String, String>,
}

/// A plugin whose signature verified, with the very bytes that were checked: compile these,
/// not the files again, so nothing can change in between.
#[derive(Debug, Clone)]
pub struct VerifiedPlugin {
    /// `None` in development mode (no trust policy).
    pub provenance: Option<Provenance>,
    pub wasm: Vec<u8>,
    pub manifest: Vec<u8>,
}

/// Writes `DIR/.signature.dsse.json` over every file in the bundle directory.
pub fn sign_bundle(
    dir: &Path,
    key: &SigningKey,
    name: Option<String>,
    version: Option<String>,
) -> anyhow::Result<Provenance> {
    let files = files::bundle_files(dir).map_err(cannot_sign)?;
    let name = name.or_else(|| directory_name(dir)).context("name the bundle with --name")?;
    let version = version.or_else(|| manifest_revision(dir));
    let envelope_path = dir.join(BUNDLE_SIGNATURE);
    sign(ArtifactKind::PolicyBundle, files, name, version, key, &envelope_path)
}

/// Checks a bundle directory's signature against the trusted keys.
pub fn verify_bundle(dir: &Path, trusted: &[PublicKey]) -> Result<Provenance, Rejection> {
    let reject = rejection(ArtifactKind::PolicyBundle, dir);
    let envelope = read_envelope(&dir.join(BUNDLE_SIGNATURE)).map_err(&reject)?;
    let provenance = open(ArtifactKind::PolicyBundle, &envelope, trusted).map_err(&reject)?;
    let found = files::bundle_files(dir).map_err(&reject)?;
    statement::compare(&provenance.files, &found).map_err(&reject)?;
    Ok(provenance)
}

/// Writes `PLUGIN.wasm.dsse.json` over the module and its manifest.
pub fn sign_plugin(wasm: &Path, manifest: &Path, key: &SigningKey) -> anyhow::Result<Provenance> {
    let (wasm_bytes, manifest_bytes) = read_plugin(wasm, manifest).map_err(cannot_sign)?;
    let (name, version) = plugin_identity(wasm, &manifest_bytes);
    let files = plugin_files(wasm, &wasm_bytes, manifest, &manifest_bytes).map_err(cannot_sign)?;
    sign(ArtifactKind::Plugin, files, name, version, key, &plugin_envelope_path(wasm))
}

/// Checks a plugin's signature; on success returns the bytes it verified.
pub fn verify_plugin(wasm: &Path, manifest: &Path, trusted: &[PublicKey]) -> Result<VerifiedPlugin, Rejection> {
    let reject = rejection(ArtifactKind::Plugin, wasm);
    let envelope = read_envelope(&plugin_envelope_path(wasm)).map_err(&reject)?;
    let provenance = open(ArtifactKind::Plugin, &envelope, trusted).map_err(&reject)?;
    let (wasm_bytes, manifest_bytes) = read_plugin(wasm, manifest).map_err(&reject)?;
    let found = plugin_files(wasm, &wasm_bytes, manifest, &manifest_bytes).map_err(&reject)?;
    statement::compare(&provenance.files, &found).map_err(&reject)?;
    Ok(VerifiedPlugin { provenance: Some(provenance), wasm: wasm_bytes, manifest: manifest_bytes })
}

/// Checks that the bytes a loader read are the ones the verified signature covers, so a
/// file swapped between verification and loading is caught.
pub(crate) fn check_loaded<'a>(
    provenance: &Provenance,
    artifact: &Path,
    loaded: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<(), Rejection> {
    for (name, bytes) in loaded {
        let digest = files::sha256_hex(bytes);
        if provenance.files.get(name) != Some(&digest) {
            return Err(Rejection {
                kind: provenance.kind,
                artifact: artifact.to_path_buf(),
                reason: Reason::FileChanged,
                detail: format!("{name} changed while it was being loaded"),
            });
        }
    }
    Ok(())
}

pub fn plugin_envelope_path(wasm: &Path) -> PathBuf {
    let mut name = wasm.as_os_str().to_owned();
    name.push(".dsse.json");
    PathBuf::from(name)
}

fn sign(
    kind: ArtifactKind,
    files: BTreeMap<String, String>,
    name: String,
    version: Option<String>,
    key: &SigningKey,
    envelope_path: &Path,
) -> anyhow::Result<Provenance> {
    let signed_at = crate::policy::rfc3339(SystemTime::now());
    let predicate = statement::Predicate { kind: kind.as_str().to_string(), name, version, signed_at };
    let payload = serde_json::to_vec(&statement::Statement::new(kind, &files, predicate.clone()))?;
    let envelope = dsse::sign(PAYLOAD_TYPE, &payload, key);
    let mut text = serde_json::to_string_pretty(&envelope)?;
    text.push('\n');
    std::fs::write(envelope_path, text).with_context(|| format!("writing {}", envelope_path.display()))?;
    Ok(Provenance {
        kind,
        name: predicate.name,
        version: predicate.version,
        signer: key.key_id(),
        signed_at: predicate.signed_at,
        statement_sha256: files::sha256_hex(&payload),
        files,
    })
}

type Failure = (Reason, String);

fn cannot_sign((_, detail): Failure) -> anyhow::Error {
    anyhow::anyhow!(detail)
}

fn rejection(kind: ArtifactKind, artifact: &Path) -> impl Fn(Failure) -> Rejection + '_ {
    move |(reason, detail)| Rejection { kind, artifact: artifact.to_path_buf(), reason, detail }
}

fn read_envelope(path: &Path) -> Result<Vec<u8>, Failure> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err((Reason::Unsigned, format!("there is no signature {}", path.display())))
        }
        result => result.map_err(files::unreadable(path)),
    }
}

fn open(kind: ArtifactKind, envelope: &[u8], trusted: &[PublicKey]) -> Result<Provenance, Failure> {
    let opened = dsse::open(envelope, PAYLOAD_TYPE, trusted)?;
    let statement = statement::Statement::parse(&opened.payload, kind)?;
    Ok(Provenance {
        kind,
        files: statement.files()?,
        name: statement.predicate.name,
        version: statement.predicate.version,
        signer: opened.signer,
        signed_at: statement.predicate.signed_at,
        statement_sha256: files::sha256_hex(&opened.payload),
    })
}

fn read_plugin(wasm: &Path, manifest: &Path) -> Result<(Vec<u8>, Vec<u8>), Failure> {
    let wasm_bytes = std::fs::read(wasm).map_err(files::unreadable(wasm))?;
    let manifest_bytes = std::fs::read(manifest).map_err(files::unreadable(manifest))?;
    Ok((wasm_bytes, manifest_bytes))
}

/// A plugin's subjects are named by file name: the module and its manifest sit side by side.
fn plugin_files(
    wasm: &Path,
    wasm_bytes: &[u8],
    manifest: &Path,
    manifest_bytes: &[u8],
) -> Result<BTreeMap<String, String>, Failure> {
    let name = |path: &Path| {
        path.file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| (Reason::Unreadable, format!("{}: no UTF-8 file name", path.display())))
    };
    Ok(BTreeMap::from([
        (name(wasm)?, files::sha256_hex(wasm_bytes)),
        (name(manifest)?, files::sha256_hex(manifest_bytes)),
    ]))
}

/// The manifest's `name` and `version` when it states them; the module's file stem otherwise.
fn plugin_identity(wasm: &Path, manifest: &[u8]) -> (String, Option<String>) {
    let manifest: serde_yaml_ng::Value = serde_yaml_ng::from_slice(manifest).unwrap_or_default();
    let field = |key: &str| match manifest.get(key)? {
        serde_yaml_ng::Value::String(text) => Some(text.clone()),
        serde_yaml_ng::Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    let stem = wasm.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    (field("name").unwrap_or(stem), field("version"))
}

fn directory_name(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    Some(dir.file_name()?.to_string_lossy().into_owned())
}

/// The bundle's `.manifest` revision, as the policy loader reads it.
fn manifest_revision(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(".manifest")).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    manifest.get("revision")?.as_str().filter(|r| !r.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests;
