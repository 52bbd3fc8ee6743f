//! `forge bundle sign|verify` and `forge plugin sign|verify`. `verify` answers whether the
//! artifact is trusted; an error means it could not be checked (an unreadable key).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::Provenance;
use crate::signing::{PublicKey, SigningKey};

pub fn sign_bundle(
    dir: &Path,
    key: &Path,
    name: Option<String>,
    version: Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let key = SigningKey::load(key)?;
    let provenance = super::sign_bundle(dir, &key, name, version)?;
    report(out, "signed", &dir.join(super::BUNDLE_SIGNATURE), &provenance)
}

pub fn verify_bundle(dir: &Path, trusted: &[PathBuf], out: &mut dyn Write) -> anyhow::Result<bool> {
    let keys = load_keys(trusted)?;
    verdict(out, dir, super::verify_bundle(dir, &keys))
}

pub fn sign_plugin(wasm: &Path, manifest: Option<&Path>, key: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let key = SigningKey::load(key)?;
    let provenance = super::sign_plugin(wasm, &manifest_path(wasm, manifest), &key)?;
    report(out, "signed", &super::plugin_envelope_path(wasm), &provenance)
}

pub fn verify_plugin(
    wasm: &Path,
    manifest: Option<&Path>,
    trusted: &[PathBuf],
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let keys = load_keys(trusted)?;
    let verified = super::verify_plugin(wasm, &manifest_path(wasm, manifest), &keys);
    verdict(out, wasm, verified.map(|plugin| plugin.provenance.expect("verified with keys")))
}

/// A plugin's manifest is `manifest.yaml` beside its module unless given.
fn manifest_path(wasm: &Path, manifest: Option<&Path>) -> PathBuf {
    manifest.map(Path::to_path_buf).unwrap_or_else(|| wasm.with_file_name("manifest.yaml"))
}

fn load_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    paths.iter().map(|p| PublicKey::load(p).with_context(|| format!("--trusted {}", p.display()))).collect()
}

fn verdict(out: &mut dyn Write, artifact: &Path, result: Result<Provenance, super::Rejection>) -> anyhow::Result<bool> {
    match result {
        Ok(provenance) => {
            report(out, "verified", artifact, &provenance)?;
            Ok(true)
        }
        Err(rejection) => {
            writeln!(out, "{rejection}")?;
            Ok(false)
        }
    }
}

fn report(out: &mut dyn Write, what: &str, path: &Path, provenance: &Provenance) -> anyhow::Result<()> {
    let version = provenance.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
    writeln!(
        out,
        "{}: {what} {} {}{version}: {} files, statement sha256 {}, key {} at {}",
        path.display(),
        provenance.kind.as_str(),
        provenance.name,
        provenance.files.len(),
        provenance.statement_sha256,
        provenance.signer,
        provenance.signed_at,
    )?;
    Ok(())
}
