//! The evidence log on disk and the packs exported from it: recovery from a torn write,
//! refusal of a damaged log, rotation and retention that keep every proof valid, and a
//! tamper test for each way a pack can be changed.

use base64::Engine as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use forge::evidence::config::{EvidenceConfig, Fsync};
use forge::evidence::log::{read_log, EvidenceLog, LogMetrics, ReadMode};
use forge::evidence::pack;
use forge::evidence::record::{GatewayIdentity, Record};
use forge::policy::Direction;
use forge::signing::SigningKey;

fn record(i: u64) -> Record {
    Record {
        v: 1,
        seq: 0,
        prev: String::new(),
        id: format!("00000000-0000-4000-8000-{i:012}"),
        received: "2026-12-01T21:00:00.000Z".into(),
        completed: "2026-12-01T21:00:00.001Z".into(),
        time_ms: 1_796_158_800_000 + i * 1000,
        gateway: GatewayIdentity { name: "gw-test".into(), namespace: None, node: None },
        direction: Direction::ClientToServer,
        principal: None,
        session: None,
        method: "tools/call".into(),
        name: Some("echo".into()),
        request_id: Some(i.to_string()),
        request_sha256: "ab".repeat(32),
        received_bytes: None,
        response_sha256: Some("cd".repeat(32)),
        decision: "allow".into(),
        status: Some(200),
        reason: None,
        decisions: Vec::new(),
        plugins: Vec::new(),
        pin_status: "unknown".into(),
        approval: None,
    }
}

fn config() -> EvidenceConfig {
    EvidenceConfig { fsync: Fsync::Record, checkpoint_records: 1_000_000, ..Default::default() }
}

/// Appends `n` records (numbered from `from`), checkpoints and closes.
fn write(dir: &Path, key: &Arc<SigningKey>, config: &EvidenceConfig, from: u64, n: u64) {
    let (log, _) = EvidenceLog::open(dir, config, key.clone(), "gw-test".into(), LogMetrics::new()).unwrap();
    pack::register_key(dir, key.public_key()).unwrap();
    for i in from..from + n {
        log.append(record(i)).unwrap();
    }
    assert!(log.checkpoint(Duration::from_secs(10)));
    log.close();
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut s: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("segment-"))
        .collect();
    s.sort();
    s
}

#[test]
fn a_torn_last_record_is_cut_off_and_everything_before_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate().unwrap());
    write(dir.path(), &key, &config(), 0, 5);
    let last = segments(dir.path()).pop().unwrap();
    let mut text = std::fs::read(&last).unwrap();
    let intact = text.len();
    text.extend_from_slice(br#"{"v":1,"seq":5,"prev":"half a rec"#);
    std::fs::write(&last, &text).unwrap();
    // An export while the gateway is still writing ignores the torn tail and changes nothing.
    let exported = pack::export(dir.path(), 0, u64::MAX, &dir.path().join("pack"), &key, "").unwrap();
    assert_eq!(exported.records, 5);
    assert_eq!(std::fs::read(&last).unwrap(), text);

    let (log, recovery) =
        EvidenceLog::open(dir.path(), &config(), key.clone(), "gw-test".into(), LogMetrics::new()).unwrap();
    assert_eq!((recovery.records, recovery.truncated_bytes), (5, (text.len() - intact) as u64));
    assert_eq!(std::fs::metadata(&last).unwrap().len(), intact as u64);
    // The chain goes on from the last complete record.
    log.append(record(5)).unwrap();
    assert!(log.checkpoint(Duration::from_secs(10)));
    log.close();
    let state = read_log(dir.path(), ReadMode::Inspect).unwrap();
    assert_eq!(state.lines.len(), 6);
    assert_eq!(state.checkpoints.last().unwrap().size, 6);
}

#[test]
fn damage_before_the_last_record_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate().unwrap());
    write(dir.path(), &key, &config(), 0, 4);
    let last = segments(dir.path()).pop().unwrap();
    let text = std::fs::read_to_string(&last).unwrap();
    let changed = text.replacen("\"decision\":\"allow\"", "\"decision\":\"deny\"", 1);
    std::fs::write(&last, changed).unwrap();
    let e = EvidenceLog::open(dir.path(), &config(), key.clone(), "gw-test".into(), LogMetrics::new()).err().unwrap();
    assert!(format!("{e:#}").contains("does not chain"), "{e:#}");

    // A complete line that is not a record is damage too, even at the end: not a torn write.
    std::fs::write(&last, format!("{text}{{\"not\": \"a record\"}}\n")).unwrap();
    let e = EvidenceLog::open(dir.path(), &config(), key.clone(), "gw-test".into(), LogMetrics::new()).err().unwrap();
    assert!(format!("{e:#}").contains("line 5: not a complete evidence record"), "{e:#}");

    // The benign near miss: the same log, unchanged, opens.
    std::fs::write(&last, text).unwrap();
    EvidenceLog::open(dir.path(), &config(), key, "gw-test".into(), LogMetrics::new()).unwrap();
}

#[test]
fn records_missing_under_a_checkpoint_refuse_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate().unwrap());
    write(dir.path(), &key, &config(), 0, 4);
    let last = segments(dir.path()).pop().unwrap();
    let text = std::fs::read_to_string(&last).unwrap();
    let kept: Vec<&str> = text.lines().take(3).collect();
    std::fs::write(&last, kept.join("\n") + "\n").unwrap();
    let e = EvidenceLog::open(dir.path(), &config(), key, "gw-test".into(), LogMetrics::new()).err().unwrap();
    assert!(format!("{e:#}").contains("covers 4 records but the log holds 3"), "{e:#}");
}

#[test]
fn rotation_and_retention_keep_every_later_proof_valid() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate().unwrap());
    let mut config = config();
    config.rotate.max_bytes = 4096;
    config.retention.max_segments = Some(2);
    config.checkpoint_records = 5;
    write(dir.path(), &key, &config, 0, 60);
    let segs = segments(dir.path());
    assert!(segs.len() <= 3, "retention keeps two closed segments and the current one: {segs:?}");
    let state = read_log(dir.path(), ReadMode::Inspect).unwrap();
    assert_eq!(state.leaves.len(), 60, "pruned records keep their leaves");
    assert!(state.first_retained > 0, "some segments were deleted");

    let out = dir.path().join("pack");
    let exported = pack::export(dir.path(), 0, u64::MAX, &out, &key, "").unwrap();
    assert_eq!(exported.records, 60 - state.first_retained);
    let verified = pack::verify(&out, Some(key.public_key()), None).unwrap();
    assert_eq!(verified.records.first().unwrap().seq, state.first_retained);
}

/// A log of ten records and its pack.
fn exported() -> (tempfile::TempDir, Arc<SigningKey>) {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate().unwrap());
    write(&dir.path().join("log"), &key, &config(), 0, 10);
    pack::export(&dir.path().join("log"), 0, u64::MAX, &dir.path().join("pack"), &key, "evidence: {}\n").unwrap();
    (dir, key)
}

/// A copy of the pack with `records.jsonl` rewritten by `edit`, and the verdict on it.
fn tampered(dir: &Path, key: &SigningKey, edit: impl FnOnce(&mut Vec<String>)) -> String {
    let copy = dir.join(format!("copy-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(dir.join("pack")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let text = std::fs::read_to_string(copy.join("records.jsonl")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    edit(&mut lines);
    std::fs::write(copy.join("records.jsonl"), lines.join("\n") + "\n").unwrap();
    match pack::verify(&copy, Some(key.public_key()), None) {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn an_untouched_pack_verifies() {
    let (dir, key) = exported();
    assert_eq!(tampered(dir.path(), &key, |_| {}), "ok");
    let verified = pack::verify(&dir.path().join("pack"), None, None).unwrap();
    assert_eq!(verified.records.len(), 10);
}

#[test]
fn a_changed_record_is_named() {
    let (dir, key) = exported();
    let e = tampered(dir.path(), &key, |l| l[3] = l[3].replace("\"decision\":\"allow\"", "\"decision\":\"deny\""));
    assert!(e.starts_with("first bad record: line 4 of records.jsonl (seq 3)") && e.contains("changed"), "{e}");
}

#[test]
fn a_removed_record_is_named() {
    let (dir, key) = exported();
    let e = tampered(dir.path(), &key, |l| {
        l.remove(3);
    });
    assert!(e.starts_with("first bad record: line 4 of records.jsonl (seq 3)") && e.contains("has seq 4"), "{e}");
    let e = tampered(dir.path(), &key, |l| {
        l.pop();
    });
    assert!(e.starts_with("first bad record: seq 9 is missing"), "{e}");
}

#[test]
fn reordered_records_are_named() {
    let (dir, key) = exported();
    let e = tampered(dir.path(), &key, |l| l.swap(5, 6));
    assert!(e.starts_with("first bad record: line 6 of records.jsonl (seq 5)") && e.contains("has seq 6"), "{e}");
}

#[test]
fn an_inserted_record_is_named() {
    let (dir, key) = exported();
    // A forged record that claims the seq and chain position of a real one.
    let e = tampered(dir.path(), &key, |l| {
        let forged = l[2].replace("\"name\":\"echo\"", "\"name\":\"rm\"");
        l.insert(2, forged);
    });
    assert!(e.starts_with("first bad record: line 3 of records.jsonl (seq 2)") && e.contains("changed"), "{e}");
    let e = tampered(dir.path(), &key, |l| l.push(l[9].clone()));
    assert!(e.starts_with("first bad record: line 11 of records.jsonl (seq 10)"), "{e}");
}

#[test]
fn a_touched_or_added_file_fails() {
    let (dir, key) = exported();
    let pack = dir.path().join("pack");
    let original = std::fs::read(pack.join("policy.json")).unwrap();
    std::fs::write(pack.join("policy.json"), b"{\"bundles\": [], \"plugins\": []}").unwrap();
    let e = format!("{:#}", pack::verify(&pack, Some(key.public_key()), None).unwrap_err());
    assert_eq!(e, "policy.json: changed (its SHA-256 is not the manifest's)");
    std::fs::write(pack.join("policy.json"), original).unwrap();

    std::fs::write(pack.join("extra.txt"), b"hello").unwrap();
    let e = format!("{:#}", pack::verify(&pack, Some(key.public_key()), None).unwrap_err());
    assert_eq!(e, "extra.txt: a file the manifest does not list");
    std::fs::remove_file(pack.join("extra.txt")).unwrap();

    let manifest = std::fs::read_to_string(pack.join("manifest.json")).unwrap();
    std::fs::write(pack.join("manifest.json"), manifest.replace("\"count\": 10", "\"count\": 9")).unwrap();
    // The manifest's signature is checked before anything it vouches for is believed.
    let e = format!("{:#}", pack::verify(&pack, Some(key.public_key()), None).unwrap_err());
    assert!(e.contains("manifest.json: the signature does not verify"), "{e}");
    std::fs::write(pack.join("manifest.json"), manifest.replace("\"since_ms\": 0", "\"since_ms\": 1")).unwrap();
    let e = format!("{:#}", pack::verify(&pack, Some(key.public_key()), None).unwrap_err());
    assert!(e.contains("manifest.json: the signature does not verify"), "{e}");
    std::fs::write(pack.join("manifest.json"), manifest).unwrap();
    pack::verify(&pack, Some(key.public_key()), None).unwrap();
}

#[test]
fn a_checkpoint_outside_its_key_validity_fails() {
    let (dir, key) = exported();
    let pack = dir.path().join("pack");
    let mut keys: serde_json::Value = serde_json::from_slice(&std::fs::read(pack.join("keys.json")).unwrap()).unwrap();
    keys[0]["not_before"] = "2099-01-01T00:00:00.000Z".into();
    let keys = serde_json::to_vec(&keys).unwrap();
    std::fs::write(pack.join("keys.json"), &keys).unwrap();
    let unsigned = format!("{:#}", pack::verify(&pack, Some(key.public_key()), None).unwrap_err());
    assert!(unsigned.contains("keys.json: changed"), "{unsigned}");
    // Even when the signer vouches for the changed validity, the checkpoint falls outside it.
    let mut manifest: pack::Manifest =
        serde_json::from_slice(&std::fs::read(pack.join("manifest.json")).unwrap()).unwrap();
    manifest.files.insert("keys.json".into(), forge::evidence::record::sha256_hex(&keys));
    let manifest = serde_json::to_vec_pretty(&manifest).unwrap();
    std::fs::write(pack.join("manifest.sig"), base64::engine::general_purpose::STANDARD.encode(key.sign(&manifest)))
        .unwrap();
    std::fs::write(pack.join("manifest.json"), manifest).unwrap();
    let e = format!("{:#}", pack::verify(&pack, Some(key.public_key()), None).unwrap_err());
    assert!(e.contains("outside the validity keys.json gives key"), "{e}");
}

#[test]
fn a_pack_signed_by_another_key_fails_against_the_trusted_one() {
    let (dir, _) = exported();
    let other = SigningKey::generate().unwrap();
    let e = format!("{:#}", pack::verify(&dir.path().join("pack"), Some(other.public_key()), None).unwrap_err());
    assert!(e.contains(&format!("not by the trusted key {}", other.key_id())), "{e}");
    // A manifest that names the trusted key but was signed by another does not verify.
    let pack = dir.path().join("pack");
    let manifest = std::fs::read_to_string(pack.join("manifest.json")).unwrap();
    let (_, signer) = manifest.split_once("\"signer\": \"").unwrap();
    let signer = &signer[..signer.find('"').unwrap()];
    std::fs::write(pack.join("manifest.json"), manifest.replace(signer, &other.key_id())).unwrap();
    let e = format!("{:#}", pack::verify(&pack, Some(other.public_key()), None).unwrap_err());
    assert!(e.contains("manifest.json: the signature does not verify"), "{e}");
}

#[test]
fn a_pack_spanning_a_key_rotation_carries_every_key_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let (a, b) = (Arc::new(SigningKey::generate().unwrap()), Arc::new(SigningKey::generate().unwrap()));
    write(&log, &a, &config(), 0, 10);
    // Rotated to B (the gateway registers its key at start), before B has signed anything:
    // the latest checkpoint is still A's.
    pack::register_key(&log, b.public_key()).unwrap();
    let first = dir.path().join("first");
    pack::export(&log, 0, u64::MAX, &first, &b, "").unwrap();
    let verified = pack::verify(&first, Some(b.public_key()), None).unwrap();
    assert_eq!((verified.key_id, verified.checkpoint_key_id), (b.key_id(), a.key_id()));

    write(&log, &b, &config(), 10, 5);
    let second = dir.path().join("second");
    pack::export(&log, 0, u64::MAX, &second, &b, "").unwrap();
    let verified = pack::verify(&second, Some(b.public_key()), Some(&first)).unwrap();
    assert_eq!((verified.records.len(), verified.checkpoint_key_id), (15, b.key_id()));
    let keys: Vec<pack::KeyInfo> = serde_json::from_slice(&std::fs::read(second.join("keys.json")).unwrap()).unwrap();
    let ids: Vec<&str> = keys.iter().map(|k| k.key_id.as_str()).collect();
    assert_eq!(ids, [a.key_id(), b.key_id()]);
    assert_eq!(keys[0].not_after.as_ref(), Some(&keys[1].not_before), "A's validity ends where B's begins");
    assert_eq!(keys[1].not_after, None);

    // The old key does not vouch for what the new one signed, and a record of A's era
    // changed afterwards is named.
    let e = format!("{:#}", pack::verify(&second, Some(a.public_key()), None).unwrap_err());
    assert!(e.contains("not by the trusted key"), "{e}");
    let records = std::fs::read_to_string(second.join("records.jsonl")).unwrap();
    let changed = records.replacen("\"decision\":\"allow\"", "\"decision\":\"deny\"", 3);
    std::fs::write(second.join("records.jsonl"), changed).unwrap();
    let e = format!("{:#}", pack::verify(&second, Some(b.public_key()), None).unwrap_err());
    assert!(e.starts_with("first bad record: line 1 of records.jsonl (seq 0)"), "{e}");

    // A key no one registered cannot export: the pack would name a signer it does not carry.
    let stranger = SigningKey::generate().unwrap();
    let e = format!("{:#}", pack::export(&log, 0, u64::MAX, &dir.path().join("third"), &stranger, "").unwrap_err());
    assert!(e.contains("is not in the log's keys.jsonl"), "{e}");
}

#[test]
fn the_next_export_proves_it_extends_the_previous_one() {
    let (dir, key) = exported();
    let log = dir.path().join("log");
    write(&log, &key, &config(), 10, 5);
    let second = dir.path().join("second");
    pack::export(&log, 0, u64::MAX, &second, &key, "").unwrap();
    let verified = pack::verify(&second, Some(key.public_key()), Some(&dir.path().join("pack"))).unwrap();
    assert_eq!((verified.records.len(), verified.checkpoint.size), (15, 15));

    // A consistency proof that does not hold: the previous tree's root is not the one proven.
    let path = second.join("consistency.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["from"]["root"] = serde_json::Value::String("00".repeat(32));
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let e = format!("{:#}", pack::verify(&second, Some(key.public_key()), None).unwrap_err());
    assert!(e.contains("history was rewritten"), "{e}");
}

#[test]
fn segments_rotate_by_age_and_old_ones_are_deleted_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate().unwrap());
    let mut config = config();
    config.rotate.max_age = Duration::ZERO;
    write(dir.path(), &key, &config, 0, 4);
    assert_eq!(segments(dir.path()).len(), 4, "a segment per record when every segment is too old");

    // Records dated 2026-12-01 are older than an hour: retention deletes every closed segment.
    config.retention.max_age = Some(Duration::from_secs(3600));
    write(dir.path(), &key, &config, 4, 2);
    let state = read_log(dir.path(), ReadMode::Inspect).unwrap();
    assert_eq!((segments(dir.path()).len(), state.leaves.len()), (1, 6));
    assert_eq!(state.first_retained, 5);
}

#[test]
fn records_are_also_streamed_as_the_log_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate().unwrap());
    let stream = dir.path().join("stream.jsonl");
    let config = EvidenceConfig { stream: Some(stream.to_str().unwrap().into()), ..config() };
    write(&dir.path().join("log"), &key, &config, 0, 3);
    let segment = segments(&dir.path().join("log")).pop().unwrap();
    assert_eq!(std::fs::read(stream).unwrap(), std::fs::read(segment).unwrap());
}
