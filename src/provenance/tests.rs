//! Every way a signed bundle or plugin can be tampered with is refused with its own reason;
//! the untouched artifact and its benign near misses verify.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::*;

const REGO: &str = "package forge\nimport rego.v1\ndecision := {\"allow\": true}\n";

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, contents) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
}

struct Signed {
    dir: tempfile::TempDir,
    key: SigningKey,
}

impl Signed {
    fn bundle() -> Signed {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[("main.rego", REGO), ("data.json", "{}"), ("lib/util.rego", REGO), ("README.md", "docs")]);
        let key = SigningKey::generate().unwrap();
        sign_bundle(dir.path(), &key, Some("test".into()), Some("1.0".into())).unwrap();
        Signed { dir, key }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn verify(&self) -> Result<Provenance, Rejection> {
        verify_bundle(self.path(), &[self.key.public_key().clone()])
    }

    fn reason(&self) -> Reason {
        self.verify().expect_err("the bundle must be refused").reason
    }

    fn envelope(&self) -> dsse::Envelope {
        serde_json::from_slice(&std::fs::read(self.path().join(BUNDLE_SIGNATURE)).unwrap()).unwrap()
    }

    fn set_envelope(&self, envelope: &dsse::Envelope) {
        std::fs::write(self.path().join(BUNDLE_SIGNATURE), serde_json::to_vec(envelope).unwrap()).unwrap();
    }
}

#[test]
fn a_signed_bundle_verifies_with_every_file_and_its_signer() {
    let signed = Signed::bundle();
    let provenance = signed.verify().unwrap();
    assert_eq!(provenance.signer, signed.key.key_id());
    assert_eq!((provenance.name.as_str(), provenance.version.as_deref()), ("test", Some("1.0")));
    let names: Vec<&str> = provenance.files.keys().map(String::as_str).collect();
    assert_eq!(names, ["README.md", "data.json", "lib/util.rego", "main.rego"]);
    assert_eq!(provenance.files["main.rego"], files::sha256_hex(REGO.as_bytes()));

    // Near misses: rewriting a file with the same bytes, a second trusted key, and the
    // ConfigMap bookkeeping entries change nothing.
    write(signed.path(), &[("main.rego", REGO), ("..2026_12_01/main.rego", "not covered")]);
    let other = SigningKey::generate().unwrap();
    assert!(verify_bundle(signed.path(), &[other.public_key().clone(), signed.key.public_key().clone()]).is_ok());
}

#[test]
fn the_statement_is_an_in_toto_statement_in_a_dsse_envelope() {
    let signed = Signed::bundle();
    let envelope = signed.envelope();
    assert_eq!(envelope.payload_type, "application/vnd.in-toto+json");
    assert_eq!(envelope.signatures[0].keyid, signed.key.key_id());
    let statement: serde_json::Value = serde_json::from_slice(&STANDARD.decode(&envelope.payload).unwrap()).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], BUNDLE_PREDICATE);
    assert_eq!(statement["predicate"]["kind"], "policy-bundle");
    assert!(statement["predicate"]["signedAt"].as_str().unwrap().ends_with('Z'));
    let subject = statement["subject"].as_array().unwrap().iter().find(|s| s["name"] == "main.rego").unwrap();
    assert_eq!(subject["digest"]["sha256"], files::sha256_hex(REGO.as_bytes()));
}

#[test]
fn each_file_tamper_is_refused_with_its_own_reason() {
    let changed = Signed::bundle();
    write(changed.path(), &[("lib/util.rego", &REGO.replace("true", "false"))]);
    assert_eq!(changed.reason(), Reason::FileChanged);

    let one_byte = Signed::bundle();
    let mut bytes = std::fs::read(one_byte.path().join("data.json")).unwrap();
    bytes[0] ^= 1;
    std::fs::write(one_byte.path().join("data.json"), bytes).unwrap();
    assert_eq!(one_byte.reason(), Reason::FileChanged);

    let added = Signed::bundle();
    write(added.path(), &[("extra.rego", REGO.replace("allow\": true", "allow\": false").as_str())]);
    let rejection = added.verify().unwrap_err();
    assert_eq!(rejection.reason, Reason::FileAdded);
    assert!(rejection.to_string().contains("extra.rego"), "{rejection}");

    // Files the policy loader ignores count too: the signer approved the directory.
    let hidden = Signed::bundle();
    write(hidden.path(), &[(".hidden/x.rego", REGO)]);
    assert_eq!(hidden.reason(), Reason::FileAdded);

    let removed = Signed::bundle();
    std::fs::remove_file(removed.path().join("README.md")).unwrap();
    assert_eq!(removed.reason(), Reason::FileRemoved);

    let renamed = Signed::bundle();
    std::fs::rename(renamed.path().join("lib/util.rego"), renamed.path().join("lib/other.rego")).unwrap();
    let rejection = renamed.verify().unwrap_err();
    assert_eq!(rejection.reason, Reason::FileRenamed);
    assert!(rejection.detail.contains("lib/util.rego was renamed to lib/other.rego"), "{rejection}");
}

#[test]
fn each_signature_tamper_is_refused_with_its_own_reason() {
    let unsigned = Signed::bundle();
    std::fs::remove_file(unsigned.path().join(BUNDLE_SIGNATURE)).unwrap();
    assert_eq!(unsigned.reason(), Reason::Unsigned);

    let untrusted = Signed::bundle();
    let stranger = SigningKey::generate().unwrap();
    sign_bundle(untrusted.path(), &stranger, None, None).unwrap();
    assert_eq!(untrusted.reason(), Reason::UntrustedSigner);

    // The signature of another statement by the same trusted key, swapped in.
    let swapped = Signed::bundle();
    let other = tempfile::tempdir().unwrap();
    write(other.path(), &[("main.rego", REGO)]);
    sign_bundle(other.path(), &swapped.key, None, None).unwrap();
    let theirs: dsse::Envelope =
        serde_json::from_slice(&std::fs::read(other.path().join(BUNDLE_SIGNATURE)).unwrap()).unwrap();
    let mut envelope = swapped.envelope();
    envelope.signatures = theirs.signatures.clone();
    swapped.set_envelope(&envelope);
    assert_eq!(swapped.reason(), Reason::BadSignature);

    // Another bundle's whole, valid envelope: the signature holds, the files do not match.
    let transplanted = Signed::bundle();
    transplanted.set_envelope(&theirs);
    let rejection = verify_bundle(transplanted.path(), &[swapped.key.public_key().clone()]).unwrap_err();
    assert_eq!(rejection.reason, Reason::FileAdded);

    let edited_payload = Signed::bundle();
    let mut envelope = edited_payload.envelope();
    let statement = String::from_utf8(STANDARD.decode(&envelope.payload).unwrap()).unwrap();
    envelope.payload = STANDARD.encode(statement.replace("\"1.0\"", "\"2.0\""));
    edited_payload.set_envelope(&envelope);
    assert_eq!(edited_payload.reason(), Reason::BadSignature);

    let truncated = Signed::bundle();
    let bytes = std::fs::read(truncated.path().join(BUNDLE_SIGNATURE)).unwrap();
    std::fs::write(truncated.path().join(BUNDLE_SIGNATURE), &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(truncated.reason(), Reason::MalformedEnvelope);

    let garbage = Signed::bundle();
    std::fs::write(garbage.path().join(BUNDLE_SIGNATURE), b"\x00\xffnot json").unwrap();
    assert_eq!(garbage.reason(), Reason::MalformedEnvelope);

    let payload_type = Signed::bundle();
    let mut envelope = payload_type.envelope();
    let payload = STANDARD.decode(&envelope.payload).unwrap();
    envelope = dsse::sign("application/json", &payload, &payload_type.key);
    payload_type.set_envelope(&envelope);
    assert_eq!(payload_type.reason(), Reason::WrongPayloadType);
}

#[test]
fn a_signed_payload_that_is_not_our_statement_is_refused() {
    let signed = Signed::bundle();
    let resign = |payload: &str| {
        signed.set_envelope(&dsse::sign(PAYLOAD_TYPE, payload.as_bytes(), &signed.key));
        signed.reason()
    };
    assert_eq!(resign("[]"), Reason::MalformedStatement);
    let plugin_statement = serde_json::json!({
        "_type": STATEMENT_TYPE, "subject": [], "predicateType": PLUGIN_PREDICATE,
        "predicate": {"kind": "plugin", "name": "x", "signedAt": "2026-01-01T00:00:00Z"}
    });
    assert_eq!(resign(&plugin_statement.to_string()), Reason::WrongPredicateType);
    let old_statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v0.1", "subject": [], "predicateType": BUNDLE_PREDICATE,
        "predicate": {"kind": "policy-bundle", "name": "x", "signedAt": "2026-01-01T00:00:00Z"}
    });
    assert_eq!(resign(&old_statement.to_string()), Reason::MalformedStatement);
}

#[test]
fn a_bundle_mounted_as_a_configmap_verifies_and_so_does_its_atomic_update() {
    // What the kubelet writes: the files in a timestamped directory, `..data` pointing at
    // it, and one symlink per file (the signature too) through `..data`.
    let source = Signed::bundle();
    let mount = tempfile::tempdir().unwrap();
    let publish = |stamp: &str| {
        let version = mount.path().join(stamp);
        for name in ["main.rego", "data.json", "README.md", BUNDLE_SIGNATURE] {
            write(&version, &[(name, &std::fs::read_to_string(source.path().join(name)).unwrap())]);
        }
        write(&version, &[("lib/util.rego", &std::fs::read_to_string(source.path().join("lib/util.rego")).unwrap())]);
        let staged = mount.path().join("..data_tmp");
        std::os::unix::fs::symlink(stamp, &staged).unwrap();
        std::fs::rename(&staged, mount.path().join("..data")).unwrap();
    };
    publish("..2026_12_01_10_00_00.1");
    for name in ["main.rego", "data.json", "README.md", "lib", BUNDLE_SIGNATURE] {
        std::os::unix::fs::symlink(format!("..data/{name}"), mount.path().join(name)).unwrap();
    }
    let trusted = [source.key.public_key().clone()];
    let first = verify_bundle(mount.path(), &trusted).unwrap();
    assert_eq!(first.files.len(), 4);

    write(source.path(), &[("main.rego", &REGO.replace("true", "false"))]);
    sign_bundle(source.path(), &source.key, None, None).unwrap();
    publish("..2026_12_01_10_05_00.2");
    let second = verify_bundle(mount.path(), &trusted).unwrap();
    assert_ne!(first.files["main.rego"], second.files["main.rego"]);
}

#[test]
fn a_device_or_fifo_in_a_bundle_is_refused_not_read() {
    let signed = Signed::bundle();
    std::os::unix::fs::symlink("/dev/zero", signed.path().join("zero.rego")).unwrap();
    let rejection = signed.verify().unwrap_err();
    assert_eq!(rejection.reason, Reason::Unreadable);
    assert!(rejection.detail.contains("not a regular file"), "{rejection}");
}

#[test]
fn bytes_that_differ_from_the_verified_files_are_refused() {
    let signed = Signed::bundle();
    let provenance = signed.verify().unwrap();
    assert!(check_loaded(&provenance, signed.path(), [("main.rego", REGO.as_bytes())]).is_ok());
    let swapped = check_loaded(&provenance, signed.path(), [("main.rego", &b"package forge"[..])]).unwrap_err();
    assert_eq!(swapped.reason, Reason::FileChanged);
    let unlisted = check_loaded(&provenance, signed.path(), [("new.rego", REGO.as_bytes())]).unwrap_err();
    assert_eq!(unlisted.reason, Reason::FileChanged);
}

struct Plugin {
    dir: tempfile::TempDir,
    key: SigningKey,
}

impl Plugin {
    fn signed() -> Plugin {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pii")).unwrap();
        std::fs::write(dir.path().join("pii/pii.wasm"), b"\0asm\x0d\0\x01\0component bytes").unwrap();
        std::fs::write(dir.path().join("pii/manifest.yaml"), "name: pii\nversion: 0.3.1\n").unwrap();
        let key = SigningKey::generate().unwrap();
        let plugin = Plugin { dir, key };
        sign_plugin(&plugin.wasm(), &plugin.manifest(), &plugin.key).unwrap();
        plugin
    }

    fn wasm(&self) -> PathBuf {
        self.dir.path().join("pii/pii.wasm")
    }

    fn manifest(&self) -> PathBuf {
        self.dir.path().join("pii/manifest.yaml")
    }

    fn trust(&self) -> Trust {
        Trust::with_keys(Vec::new(), vec![self.key.public_key().clone()])
    }

    fn reason(&self) -> Reason {
        self.trust().verify_plugin(&self.wasm(), &self.manifest()).expect_err("the plugin must be refused").reason
    }
}

#[test]
fn a_signed_plugin_verifies_and_hands_over_the_verified_bytes() {
    let plugin = Plugin::signed();
    let verified = plugin.trust().verify_plugin(&plugin.wasm(), &plugin.manifest()).unwrap();
    let provenance = verified.provenance.unwrap();
    assert_eq!((provenance.name.as_str(), provenance.version.as_deref()), ("pii", Some("0.3.1")));
    assert_eq!(provenance.files["pii.wasm"], files::sha256_hex(&verified.wasm));
    assert_eq!(provenance.files["manifest.yaml"], files::sha256_hex(&verified.manifest));
    assert!(plugin.dir.path().join("pii/pii.wasm.dsse.json").is_file());
    // Files beside the plugin are not the plugin's: only the module and manifest are covered.
    std::fs::write(plugin.dir.path().join("pii/NOTES.md"), "notes").unwrap();
    assert!(plugin.trust().verify_plugin(&plugin.wasm(), &plugin.manifest()).is_ok());
}

#[test]
fn each_plugin_tamper_is_refused_with_its_own_reason() {
    let changed = Plugin::signed();
    let mut wasm = std::fs::read(changed.wasm()).unwrap();
    *wasm.last_mut().unwrap() ^= 1;
    std::fs::write(changed.wasm(), wasm).unwrap();
    assert_eq!(changed.reason(), Reason::FileChanged);

    let manifest = Plugin::signed();
    std::fs::write(manifest.manifest(), "name: pii\nversion: 0.3.1\nwasi: [network]\n").unwrap();
    assert_eq!(manifest.reason(), Reason::FileChanged);

    let renamed = Plugin::signed();
    let to = renamed.dir.path().join("pii/secrets.wasm");
    std::fs::rename(renamed.wasm(), &to).unwrap();
    std::fs::rename(plugin_envelope_path(&renamed.wasm()), plugin_envelope_path(&to)).unwrap();
    let rejection = renamed.trust().verify_plugin(&to, &renamed.manifest()).unwrap_err();
    assert_eq!(rejection.reason, Reason::FileRenamed);

    let unsigned = Plugin::signed();
    std::fs::remove_file(plugin_envelope_path(&unsigned.wasm())).unwrap();
    assert_eq!(unsigned.reason(), Reason::Unsigned);

    let untrusted = Plugin::signed();
    sign_plugin(&untrusted.wasm(), &untrusted.manifest(), &SigningKey::generate().unwrap()).unwrap();
    assert_eq!(untrusted.reason(), Reason::UntrustedSigner);

    let garbage = Plugin::signed();
    std::fs::write(plugin_envelope_path(&garbage.wasm()), "{\"payload\":").unwrap();
    assert_eq!(garbage.reason(), Reason::MalformedEnvelope);

    let missing = Plugin::signed();
    std::fs::remove_file(missing.manifest()).unwrap();
    assert_eq!(missing.reason(), Reason::Unreadable);
}

#[test]
fn keys_trusted_for_one_kind_do_not_sign_the_other() {
    let plugin = Plugin::signed();
    let bundle_keys_only = Trust::with_keys(vec![plugin.key.public_key().clone()], Vec::new());
    let rejection = bundle_keys_only.verify_plugin(&plugin.wasm(), &plugin.manifest()).unwrap_err();
    assert_eq!(rejection.reason, Reason::UntrustedSigner);

    // A plugin envelope presented as a bundle's signature names the wrong predicate.
    let signed = Signed::bundle();
    std::fs::copy(plugin_envelope_path(&plugin.wasm()), signed.path().join(BUNDLE_SIGNATURE)).unwrap();
    let rejection = verify_bundle(signed.path(), &[plugin.key.public_key().clone()]).unwrap_err();
    assert_eq!(rejection.reason, Reason::WrongPredicateType);
}

#[test]
fn development_mode_loads_unsigned_content_and_enforced_mode_counts_refusals() {
    let plugin = Plugin::signed();
    std::fs::remove_file(plugin_envelope_path(&plugin.wasm())).unwrap();
    let development = Trust::development();
    let loaded = development.verify_plugin(&plugin.wasm(), &plugin.manifest()).unwrap();
    assert!(loaded.provenance.is_none());
    assert_eq!(development.status().mode, "development");
    assert!(development.status().warning.unwrap().contains("unsigned"));
    assert_eq!(development.verify_bundle(plugin.dir.path(), []).unwrap(), None);

    let trust = plugin.trust();
    assert!(trust.verify_plugin(&plugin.wasm(), &plugin.manifest()).is_err());
    let status = trust.status();
    assert_eq!((status.mode, status.warning), ("enforced", None));
    assert_eq!(status.last_rejection.unwrap().reason, Reason::Unsigned);
    let registry = prometheus::Registry::new();
    for collector in trust.collectors() {
        registry.register(collector).unwrap();
    }
    let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap();
    assert!(text.contains(r#"forge_provenance_rejections_total{kind="plugin",reason="unsigned"} 1"#), "{text}");
    assert!(text.contains("forge_provenance_development_mode 0"), "{text}");
}

#[test]
fn trust_config_names_the_key_that_does_not_load() {
    let key = SigningKey::generate().unwrap();
    let yaml = format!(
        "bundles:\n  keys:\n    - pem: |\n{}\nplugins:\n  keys:\n    - file: /nonexistent/key.pem\n",
        key.public_key().to_pem().lines().map(|l| format!("        {l}")).collect::<Vec<_>>().join("\n")
    );
    let config: TrustConfig = serde_yaml_ng::from_str(&yaml).unwrap();
    let (field, message) = config.keys().unwrap_err();
    assert_eq!(field, "trust.plugins.keys");
    assert!(message.contains("key 1") && message.contains("/nonexistent/key.pem"), "{message}");
    let config = TrustConfig { plugins: Signers::default(), ..config };
    let (bundles, plugins) = config.keys().unwrap();
    assert_eq!((bundles, plugins.len()), (vec![key.public_key().clone()], 0));
}

#[test]
fn a_key_is_a_file_or_inline_pem_never_both_or_neither() {
    let key = SigningKey::generate().unwrap();
    let both = KeySource { file: Some("/k.pem".into()), pem: Some(key.public_key().to_pem()) };
    for source in [both, KeySource::default()] {
        let config = TrustConfig { bundles: Signers { keys: vec![source] }, ..Default::default() };
        assert!(config.keys().unwrap_err().1.contains("exactly one of `file` or `pem`"));
    }
}

#[test]
fn no_single_byte_change_to_an_envelope_verifies_except_in_the_keyid_hint() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("main.rego", REGO)]);
    let key = SigningKey::generate().unwrap();
    sign_bundle(dir.path(), &key, None, None).unwrap();
    let path = dir.path().join(BUNDLE_SIGNATURE);
    let original = std::fs::read(&path).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    // The `"keyid": "…"` member, name and value.
    let hint = text.find("\"keyid\"").unwrap()..text.find(&key.key_id()).unwrap() + key.key_id().len();
    let trusted = [key.public_key().clone()];
    for i in 0..original.len() {
        let mut changed = original.clone();
        changed[i] ^= 0x01;
        std::fs::write(&path, &changed).unwrap();
        match verify_bundle(dir.path(), &trusted) {
            // DSSE's keyid is unauthenticated: changing it changes nothing that was signed.
            Ok(provenance) => assert!(hint.contains(&i), "byte {i} changed and still verified: {provenance:?}"),
            Err(rejection) => assert_ne!(rejection.reason, Reason::Unreadable, "byte {i}"),
        }
    }
}
