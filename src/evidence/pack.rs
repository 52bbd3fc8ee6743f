//! Evidence packs: a directory an auditor can verify offline (format: docs/evidence.md).
//!
//! ```text
//! PACK/manifest.json      what was exported, the query, the SHA-256 of every other file
//! PACK/manifest.sig       Ed25519 over manifest.json (base64), by the checkpoint's key
//! PACK/records.jsonl      the records, exactly as the log holds them
//! PACK/proofs.jsonl       per record, its inclusion proof in the checkpoint's tree
//! PACK/checkpoint.json    the signed checkpoint the proofs lead to
//! PACK/consistency.json   the previous export's tree and a consistency proof from it
//! PACK/keys.json          the gateway's public keys, with when each was in use
//! PACK/policy.json        the policy bundles (and plugins) that made the decisions
//! PACK/config.yaml        the gateway config the export ran with
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::checkpoint::{parse_hash, Checkpoint};
use super::log::{read_log, LogState, ReadMode};
use super::merkle::{self, Hash};
use super::record::{hex, parse_rfc3339, rfc3339, sha256_hex, Record};
use crate::signing::{PublicKey, SigningKey};

pub const FORMAT: &str = "forge-evidence-pack/1";
/// Where the log remembers the tree of the last export (for the next consistency proof).
pub const LAST_EXPORT: &str = "last-export.json";
/// The log's public keys, one JSON object per line, in the order they came into use.
pub const KEYS: &str = "keys.jsonl";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub created: String,
    pub query: Query,
    pub range: Range,
    /// SHA-256 (hex) of every file in the pack but the manifest and its signature.
    pub files: BTreeMap<String, String>,
    /// The key id of the key that signed the manifest (one of `keys.json`). Absent in packs
    /// from before key rotation was supported: then it is the checkpoint's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub since_ms: u64,
    pub until_ms: u64,
}

/// The records exported: every seq from `first` to `first + count - 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub first: u64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub key_id: String,
    /// SPKI PEM.
    pub public_key: String,
    pub not_before: String,
    /// When the next key took over; absent while this one is in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proof {
    pub seq: u64,
    pub path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeHead {
    pub size: u64,
    pub root: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consistency {
    /// The tree the previous export ended with; absent for the first export.
    pub from: Option<TreeHead>,
    pub to: TreeHead,
    pub proof: Vec<String>,
}

/// Remembers the key a log is signed with (appending it when it is new).
pub fn register_key(dir: &Path, key: &PublicKey) -> anyhow::Result<()> {
    let path = dir.join(KEYS);
    let keys = read_keys(&path)?;
    if keys.last().is_some_and(|k| k.key_id == key.key_id()) {
        return Ok(());
    }
    let info = KeyInfo {
        key_id: key.key_id(),
        public_key: key.to_pem(),
        not_before: rfc3339(std::time::SystemTime::now()),
        not_after: None,
    };
    let mut line = serde_json::to_vec(&info)?;
    line.push(b'\n');
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    file.write_all(&line)?;
    file.sync_data()?;
    Ok(())
}

/// The keys in a log's `keys.jsonl`, each valid until the next one's start.
fn read_keys(path: &Path) -> anyhow::Result<Vec<KeyInfo>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(Vec::new()) };
    let mut keys: Vec<KeyInfo> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("{}: a damaged key entry", path.display())))
        .collect::<anyhow::Result<_>>()?;
    for i in 1..keys.len() {
        keys[i - 1].not_after = Some(keys[i].not_before.clone());
    }
    Ok(keys)
}

/// What `export` wrote.
#[derive(Debug)]
pub struct Exported {
    pub records: u64,
    pub first: u64,
    /// Records in the range written after the last checkpoint: not exported yet.
    pub not_checkpointed: u64,
    pub tree_size: u64,
}

/// Writes the pack for records with `since_ms <= time_ms <= until_ms` that the latest
/// checkpoint covers. `key` signs the manifest; `config` is the config file's text.
pub fn export(
    log_dir: &Path,
    since_ms: u64,
    until_ms: u64,
    out: &Path,
    key: &SigningKey,
    config: &str,
) -> anyhow::Result<Exported> {
    let state = read_log(log_dir, ReadMode::Inspect)
        .with_context(|| format!("reading the evidence log in {}", log_dir.display()))?;
    let checkpoint = state.checkpoints.last().cloned().context("the log has no checkpoint yet")?;
    // Across a key rotation the checkpoint may be the old key's: the pack carries every key
    // with its validity, and the manifest, signed with the current key, vouches for them.
    let keys = read_keys(&log_dir.join(KEYS))?;
    for (id, role) in [(key.key_id(), "the configured key"), (checkpoint.key_id.clone(), "the checkpoint's key")] {
        if !keys.iter().any(|k| k.key_id == id) {
            bail!("{role} {id} is not in the log's {KEYS}: not a key this log was signed with");
        }
    }
    let size = checkpoint.size;
    let leaves = &state.leaves[..size as usize];
    let selected = select(&state, since_ms, until_ms)?;
    let not_checkpointed = selected.iter().filter(|(seq, _)| *seq >= size).count() as u64;
    let selected: Vec<(u64, &Vec<u8>)> = selected.into_iter().filter(|(seq, _)| *seq < size).collect();
    std::fs::create_dir(out).with_context(|| format!("creating the pack directory {}", out.display()))?;

    let mut files = BTreeMap::new();
    let mut write = |name: &str, bytes: Vec<u8>| -> anyhow::Result<()> {
        files.insert(name.to_string(), sha256_hex(&bytes));
        std::fs::write(out.join(name), bytes).with_context(|| format!("writing {name}"))
    };
    let mut records = Vec::new();
    let mut proofs = Vec::new();
    for (seq, line) in &selected {
        records.extend_from_slice(line);
        records.push(b'\n');
        let path = merkle::inclusion_proof(*seq as usize, leaves).iter().map(|h| hex(h)).collect();
        proofs.extend(serde_json::to_vec(&Proof { seq: *seq, path })?);
        proofs.push(b'\n');
    }
    write("records.jsonl", records)?;
    write("proofs.jsonl", proofs)?;
    write("checkpoint.json", serde_json::to_vec_pretty(&checkpoint)?)?;

    let previous: Option<TreeHead> =
        std::fs::read(log_dir.join(LAST_EXPORT)).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let previous = previous.filter(|p| p.size <= size);
    let consistency = Consistency {
        proof: previous.as_ref().map_or_else(Vec::new, |p| {
            merkle::consistency_proof(p.size as usize, leaves).iter().map(|h| hex(h)).collect()
        }),
        from: previous,
        to: TreeHead { size, root: checkpoint.root.clone() },
    };
    write("consistency.json", serde_json::to_vec_pretty(&consistency)?)?;
    write("keys.json", serde_json::to_vec_pretty(&keys)?)?;
    write("policy.json", serde_json::to_vec_pretty(&in_force(&selected))?)?;
    write("config.yaml", config.as_bytes().to_vec())?;

    let first = selected.first().map_or(0, |(seq, _)| *seq);
    let manifest = Manifest {
        format: FORMAT.into(),
        created: rfc3339(std::time::SystemTime::now()),
        query: Query { since_ms, until_ms },
        range: Range { first, count: selected.len() as u64 },
        files,
        signer: Some(key.key_id()),
    };
    let manifest = serde_json::to_vec_pretty(&manifest)?;
    std::fs::write(out.join("manifest.sig"), STANDARD.encode(key.sign(&manifest)))?;
    std::fs::write(out.join("manifest.json"), manifest)?;
    std::fs::write(log_dir.join(LAST_EXPORT), serde_json::to_vec(&consistency.to)?)?;
    Ok(Exported { records: selected.len() as u64, first, not_checkpointed, tree_size: size })
}

/// The contiguous run of retained records from the first at or after `since_ms` to the last
/// at or before `until_ms` (records are appended in time order, give or take a clock step,
/// so everything between the two is exported: a range has no holes).
fn select(state: &LogState, since_ms: u64, until_ms: u64) -> anyhow::Result<Vec<(u64, &Vec<u8>)>> {
    let times: Vec<u64> = state
        .lines
        .iter()
        .map(|l| serde_json::from_slice::<Record>(l).map(|r| r.time_ms))
        .collect::<Result<_, _>>()
        .context("reading a record")?;
    let first = times.iter().position(|t| *t >= since_ms);
    let last = times.iter().rposition(|t| *t <= until_ms);
    Ok(match (first, last) {
        (Some(a), Some(b)) if a <= b => (a..=b).map(|i| (state.first_retained + i as u64, &state.lines[i])).collect(),
        _ => Vec::new(),
    })
}

/// The policy bundles (and plugins) that decided on the exported records.
fn in_force(selected: &[(u64, &Vec<u8>)]) -> serde_json::Value {
    type Bundle = (String, String, Option<super::record::BundleSignature>);
    let mut bundles: BTreeMap<Bundle, (u64, u64)> = BTreeMap::new();
    let mut plugins: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (seq, line) in selected {
        let Ok(record) = serde_json::from_slice::<Record>(line) else { continue };
        for d in &record.decisions {
            if let (Some(digest), Some(revision)) = (&d.bundle_digest, &d.bundle_revision) {
                let bundle = (digest.clone(), revision.clone(), d.bundle_signature.clone());
                let span = bundles.entry(bundle).or_insert((*seq, *seq));
                span.1 = *seq;
            }
        }
        for p in &record.plugins {
            plugins.entry(p.digest.clone()).or_insert((*seq, *seq)).1 = *seq;
        }
    }
    let bundles: Vec<_> = bundles
        .into_iter()
        .map(|((digest, revision, signature), (a, b))| {
            json!({"digest": digest, "revision": revision, "signature": signature, "first_seq": a, "last_seq": b})
        })
        .collect();
    let plugins: Vec<_> = plugins
        .into_iter()
        .map(|(digest, (a, b))| serde_json::json!({"digest": digest, "first_seq": a, "last_seq": b}))
        .collect();
    serde_json::json!({ "bundles": bundles, "plugins": plugins })
}

/// What a verified pack holds.
#[derive(Debug)]
pub struct Verified {
    pub records: Vec<Record>,
    pub checkpoint: Checkpoint,
    /// The key that signed the manifest (and so vouches for the pack).
    pub key_id: String,
    /// The key that signed the checkpoint: another one of `keys.json` across a rotation.
    pub checkpoint_key_id: String,
}

/// Verifies a pack offline. `trusted`: the key the pack (its manifest) must be signed with
/// (else the pack's own signer is used, and the caller should compare its id with a known
/// one); the checkpoint's key, if another, is the one `keys.json` names.
/// `previous`: the pack exported before this one, whose tree this one must extend.
pub fn verify(pack: &Path, trusted: Option<&PublicKey>, previous: Option<&Path>) -> anyhow::Result<Verified> {
    let read = |name: &str| std::fs::read(pack.join(name)).with_context(|| format!("{name} is missing from the pack"));
    let manifest_bytes = read("manifest.json")?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes).context("manifest.json is not a manifest")?;
    if manifest.format != FORMAT {
        bail!("manifest.json: format `{}`, expected `{FORMAT}`", manifest.format);
    }
    let checkpoint: Checkpoint =
        serde_json::from_slice(&read("checkpoint.json")?).context("checkpoint.json is damaged")?;
    // Trust flows from the manifest's signer: its signature covers the digest of keys.json,
    // and keys.json names the key (and its validity) that signed the checkpoint.
    let signer_id = manifest.signer.clone().unwrap_or_else(|| checkpoint.key_id.clone());
    let keys_bytes = read("keys.json")?;
    let keys: Vec<KeyInfo> = serde_json::from_slice(&keys_bytes).context("keys.json is damaged")?;
    let key_of = |id: &str| -> anyhow::Result<(PublicKey, &KeyInfo)> {
        let info = keys.iter().find(|k| k.key_id == id).with_context(|| format!("keys.json does not hold key {id}"))?;
        let key = PublicKey::from_pem(&info.public_key).with_context(|| format!("keys.json: key {id}"))?;
        if key.key_id() != info.key_id {
            bail!("keys.json: key {} is not the key it names", info.key_id);
        }
        Ok((key, info))
    };
    let signer = match trusted {
        Some(t) if t.key_id() == signer_id => t.clone(),
        Some(t) => bail!("the pack is signed by key {signer_id}, not by the trusted key {}", t.key_id()),
        None => key_of(&signer_id)?.0,
    };
    let signature = STANDARD.decode(read("manifest.sig")?.trim_ascii()).context("manifest.sig is not base64")?;
    if !signer.verify(&manifest_bytes, &signature) {
        bail!("manifest.json: the signature does not verify with key {}", signer.key_id());
    }
    if manifest.files.get("keys.json") != Some(&sha256_hex(&keys_bytes)) {
        bail!("keys.json: changed (its SHA-256 is not the manifest's)");
    }
    let (key, listed) = key_of(&checkpoint.key_id)?;
    if !checkpoint.verify(&key) {
        bail!("checkpoint.json: the signature does not verify with key {}", key.key_id());
    }
    let from = parse_rfc3339(&listed.not_before).unwrap_or(u64::MAX);
    let until = listed.not_after.as_deref().map_or(Some(u64::MAX), parse_rfc3339).unwrap_or(0);
    if !(from..=until).contains(&checkpoint.time_ms) {
        bail!(
            "checkpoint.json: signed at {} ms, outside the validity keys.json gives key {}",
            checkpoint.time_ms,
            listed.key_id
        );
    }
    let root = checkpoint.root_hash().context("checkpoint.json: the root is not a hash")?;

    let records = std::fs::read(pack.join("records.jsonl")).context("records.jsonl is missing from the pack")?;
    let proofs = std::fs::read(pack.join("proofs.jsonl")).context("proofs.jsonl is missing from the pack")?;
    let proofs: Vec<&[u8]> = proofs.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let lines: Vec<&[u8]> = records.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut verified = Vec::with_capacity(lines.len());
    let mut prev: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        let expected = manifest.range.first + i as u64;
        let bad =
            |why: String| anyhow::anyhow!("first bad record: line {} of records.jsonl (seq {expected}): {why}", i + 1);
        let record: Record = serde_json::from_slice(line).map_err(|e| bad(format!("not a record ({e})")))?;
        let name = format!("record {}", record.id);
        if record.seq != expected {
            return Err(bad(format!("{name} has seq {}: a record was removed, inserted or moved here", record.seq)));
        }
        if i as u64 >= manifest.range.count {
            return Err(bad(format!("{name} is beyond the exported range (an inserted record)")));
        }
        if prev.as_ref().is_some_and(|p| *p != record.prev) {
            return Err(bad(format!("{name} does not chain to the record before it")));
        }
        let proof: Proof = proofs
            .get(i)
            .and_then(|p| serde_json::from_slice(p).ok())
            .ok_or_else(|| bad(format!("{name} has no inclusion proof")))?;
        let path: Option<Vec<Hash>> = proof.path.iter().map(|h| parse_hash(h)).collect();
        let included = proof.seq == expected
            && path.is_some_and(|p| {
                merkle::verify_inclusion(expected, checkpoint.size, &merkle::leaf_hash(line), &p, &root)
            });
        if !included {
            return Err(bad(format!(
                "{name} is not the record the signed checkpoint holds at seq {expected} (changed)"
            )));
        }
        prev = Some(sha256_hex(line));
        verified.push(record);
    }
    if (lines.len() as u64) < manifest.range.count {
        let missing = manifest.range.first + lines.len() as u64;
        bail!(
            "first bad record: seq {missing} is missing (the pack holds {} of {} records)",
            lines.len(),
            manifest.range.count
        );
    }
    if proofs.len() != lines.len() {
        bail!("proofs.jsonl holds {} proofs for {} records", proofs.len(), lines.len());
    }

    let consistency: Consistency =
        serde_json::from_slice(&read("consistency.json")?).context("consistency.json is damaged")?;
    if consistency.to != (TreeHead { size: checkpoint.size, root: checkpoint.root.clone() }) {
        bail!("consistency.json: its tree is not the checkpoint's");
    }
    if let Some(from) = &consistency.from {
        let from_root = parse_hash(&from.root).context("consistency.json: the previous root is not a hash")?;
        let proof: Option<Vec<Hash>> = consistency.proof.iter().map(|h| parse_hash(h)).collect();
        let ok = proof.is_some_and(|p| merkle::verify_consistency(from.size, checkpoint.size, &from_root, &root, &p));
        if !ok {
            bail!("consistency.json: the log of size {} is not an extension of the previous export's (size {}): history was rewritten", checkpoint.size, from.size);
        }
    }
    if let Some(previous) = previous {
        let before: Checkpoint = serde_json::from_slice(&std::fs::read(previous.join("checkpoint.json"))?)
            .context("the previous pack's checkpoint.json")?;
        let claimed = consistency.from.as_ref().map(|f| (f.size, f.root.as_str()));
        if claimed != Some((before.size, before.root.as_str())) {
            bail!("consistency.json does not start from the previous pack's checkpoint (size {})", before.size);
        }
    }

    for (name, digest) in &manifest.files {
        let bytes = read(name)?;
        if sha256_hex(&bytes) != *digest {
            bail!("{name}: changed (its SHA-256 is not the manifest's)");
        }
    }
    for entry in std::fs::read_dir(pack)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name != "manifest.json" && name != "manifest.sig" && !manifest.files.contains_key(&name) {
            bail!("{name}: a file the manifest does not list");
        }
    }
    Ok(Verified { records: verified, checkpoint, key_id: signer.key_id(), checkpoint_key_id: key.key_id() })
}
