//! `forge keys …` and `forge evidence …`.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context as _};

use super::http_signature::{self, SignatureError};
use super::{pack, replay, EVIDENCE_HEADER, SIGNATURE_LABEL};
use crate::config::Config;
use crate::policy::DocumentEvaluator;
use crate::signing::{PublicKey, SigningKey};

/// `forge keys generate`: a new Ed25519 key, written to `out` (or printed), and its public
/// key and key id printed.
pub fn keys_generate(out: Option<&Path>, stdout: &mut impl Write) -> anyhow::Result<()> {
    let key = SigningKey::generate()?;
    match out {
        Some(path) => {
            super::write_private(path, key.to_pem().as_bytes())?;
            writeln!(stdout, "private key written to {} (mode 0600)", path.display())?;
        }
        None => write!(stdout, "{}", key.to_pem())?,
    }
    write!(stdout, "{}", key.public_key().to_pem())?;
    writeln!(stdout, "key id: {}", key.key_id())?;
    Ok(())
}

/// `forge evidence export`.
pub fn export(
    config_path: Option<&Path>,
    state_dir: Option<&Path>,
    since: &str,
    until: Option<&str>,
    out: &Path,
    stdout: &mut impl Write,
) -> anyhow::Result<()> {
    let (mut config, text) = match config_path {
        Some(path) => (Config::from_file(path)?, std::fs::read_to_string(path)?),
        None => (Config::default(), "# no config file: the gateway's defaults\n".to_string()),
    };
    if let Some(dir) = state_dir {
        config.state_dir = dir.to_path_buf();
    }
    let since_ms = time_arg(since).with_context(|| format!("--since {since}"))?;
    let until_ms = match until {
        Some(u) => time_arg(u).with_context(|| format!("--until {u}"))?,
        None => u64::MAX,
    };
    let key = super::load_key(&config.evidence, &config.state_dir)?;
    let dir = config.evidence.dir(&config.state_dir);
    let exported = pack::export(&dir, since_ms, until_ms, out, &key, &text)?;
    writeln!(
        stdout,
        "exported {} records (seq {}..) to {}; checkpoint tree size {}",
        exported.records,
        exported.first,
        out.display(),
        exported.tree_size
    )?;
    if exported.not_checkpointed > 0 {
        writeln!(
            stdout,
            "note: {} later records in the range are not checkpointed yet and were left out",
            exported.not_checkpointed
        )?;
    }
    Ok(())
}

/// A time: RFC 3339 in UTC (`2026-12-01T21:00:00Z`), or a duration ago (`2h`).
fn time_arg(text: &str) -> anyhow::Result<u64> {
    if let Some(ms) = super::record::parse_rfc3339(text) {
        return Ok(ms);
    }
    let ago = crate::config::parse_duration(text).map_err(|e| anyhow::anyhow!("{e}, or an RFC 3339 UTC time"))?;
    let now = super::record::unix_ms(std::time::SystemTime::now());
    Ok(now.saturating_sub(ago.as_millis() as u64))
}

/// `forge evidence verify`.
pub fn verify(
    pack_dir: &Path,
    key: Option<&Path>,
    previous: Option<&Path>,
    stdout: &mut impl Write,
) -> anyhow::Result<()> {
    let trusted = key.map(PublicKey::load).transpose()?;
    let verified = pack::verify(pack_dir, trusted.as_ref(), previous)?;
    writeln!(
        stdout,
        "{}: ok: {} records, chain and inclusion proofs verify against checkpoint of size {} signed by key {}; pack signed by key {}{}",
        pack_dir.display(),
        verified.records.len(),
        verified.checkpoint.size,
        verified.checkpoint_key_id,
        verified.key_id,
        if trusted.is_none() { " (the pack's own key: compare its id with one you trust, or pass --key)" } else { "" }
    )?;
    Ok(())
}

/// `forge evidence replay`: exits non-zero when some decision would change.
pub fn replay(pack_dir: &Path, bundle: &Path, key: Option<&Path>, stdout: &mut impl Write) -> anyhow::Result<bool> {
    let trusted = key.map(PublicKey::load).transpose()?;
    let verified = pack::verify(pack_dir, trusted.as_ref(), None).context("the pack does not verify")?;
    let evaluator =
        DocumentEvaluator::load(bundle).with_context(|| format!("loading the bundle {}", bundle.display()))?;
    let report = replay::replay(&verified.records, &evaluator);
    for c in &report.changes {
        let name = c.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
        writeln!(stdout, "seq {} record {} {}{name}: {} -> {}", c.seq, c.record, c.method, c.was, c.now)?;
    }
    if !report.masked.is_empty() {
        writeln!(
            stdout,
            "note: recorded inputs were masked at {}; rules reading them saw the mask",
            report.masked.join(", ")
        )?;
    }
    writeln!(
        stdout,
        "{} decisions in {} records replayed against bundle {} (revision {}): {} would change",
        report.evaluated,
        verified.records.len(),
        evaluator.digest,
        evaluator.revision,
        report.changes.len()
    )?;
    Ok(report.changes.is_empty())
}

/// `forge evidence verify-response`: a saved HTTP response (status line, headers, blank
/// line, body — what `curl -i` writes).
pub fn verify_response(key: &Path, file: &Path, stdout: &mut impl Write) -> anyhow::Result<()> {
    let key = PublicKey::load(key)?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let saved =
        SavedResponse::parse(&bytes).with_context(|| format!("{} is not a saved HTTP response", file.display()))?;
    let header = |name: &str| saved.header(name).with_context(|| format!("the response has no {name} header"));
    let digest = header("content-digest")?;
    http_signature::check_content_digest(&digest, &saved.body)?;
    let evidence = header(EVIDENCE_HEADER)?;
    let params = http_signature::verify(
        &key,
        SIGNATURE_LABEL,
        &header("signature-input")?,
        &header("signature")?,
        |id| match id {
            "@status" => Some(saved.status.to_string()),
            id if id.starts_with('@') => None,
            id => saved.header(id),
        },
    )?;
    for required in ["@status", "content-digest", EVIDENCE_HEADER] {
        if !params.components.iter().any(|c| c == required) {
            bail!(SignatureError::MissingComponent(format!("{required} (not covered by the signature)")));
        }
    }
    writeln!(stdout, "ok: status {} and body signed by key {}; evidence: {evidence}", saved.status, key.key_id())?;
    Ok(())
}

struct SavedResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl SavedResponse {
    fn parse(bytes: &[u8]) -> anyhow::Result<SavedResponse> {
        let (head, body) = match find(bytes, b"\r\n\r\n") {
            Some(i) => (&bytes[..i], &bytes[i + 4..]),
            None => match find(bytes, b"\n\n") {
                Some(i) => (&bytes[..i], &bytes[i + 2..]),
                None => bail!("no blank line after the headers"),
            },
        };
        let head = std::str::from_utf8(head).context("the headers are not text")?;
        let mut lines = head.lines();
        let status_line = lines.next().context("empty")?;
        let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no status line")?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Ok(SavedResponse { status, headers, body: body.to_vec() })
    }

    /// A header's value; repeated fields joined with `, ` as RFC 9421 §2.1 says.
    fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
