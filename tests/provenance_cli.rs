//! `forge bundle|plugin sign|verify` as a CI pipeline runs them, and the envelopes checked by
//! an independent DSSE implementation (securesystemslib, cryptography, hashlib) both ways.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use forge::signing::SigningKey;
use serde_json::Value;

fn forge(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_forge")).args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs tests/fixtures/provenance/dsse_peer.py; `None` if it refused the bundle.
fn python(op: &str, dir: &Path, key: &Path) -> Option<Value> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("tests/peers/.venv/bin/python");
    assert!(python.exists(), "the Python test peers are not installed: run tests/peers/install.sh");
    let output = Command::new(python)
        .arg(root.join("tests/fixtures/provenance/dsse_peer.py"))
        .args([op.as_ref(), dir.as_os_str(), key.as_os_str()])
        .output()
        .unwrap();
    output.status.success().then(|| serde_json::from_slice(&output.stdout).unwrap())
}

struct Keys {
    dir: tempfile::TempDir,
    key: SigningKey,
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        std::fs::write(dir.path().join("key.pem"), key.to_pem()).unwrap();
        std::fs::write(dir.path().join("pub.pem"), key.public_key().to_pem()).unwrap();
        let stranger = SigningKey::generate().unwrap();
        std::fs::write(dir.path().join("stranger.pub.pem"), stranger.public_key().to_pem()).unwrap();
        Keys { dir, key }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn bundle() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir(dir.path().join("tenants")).unwrap();
    std::fs::write(dir.path().join("tenants/data.json"), r#"{"acme": {"limit": 3}}"#).unwrap();
    dir
}

#[test]
fn a_bundle_signed_by_forge_verifies_in_forge_and_in_securesystemslib() {
    let (keys, bundle) = (Keys::new(), bundle());
    let signed = forge(&["bundle".as_ref(), "sign".as_ref(), bundle.path(), "--key".as_ref(), &keys.path("key.pem")]);
    assert!(signed.status.success(), "{}", String::from_utf8_lossy(&signed.stderr));
    assert!(stdout(&signed).contains("signed policy-bundle"), "{}", stdout(&signed));

    let verify =
        |trusted: &Path| forge(&["bundle".as_ref(), "verify".as_ref(), bundle.path(), "--trusted".as_ref(), trusted]);
    let verified = verify(&keys.path("pub.pem"));
    assert!(verified.status.success(), "{}", stdout(&verified));
    assert!(stdout(&verified).contains(&keys.key.key_id()));

    let files = walkdir_count(bundle.path());
    let peer =
        python("verify", bundle.path(), &keys.path("pub.pem")).expect("securesystemslib verifies forge's envelope");
    assert_eq!(peer["subjects"], files);
    assert_eq!(peer["keyid"], keys.key.key_id());

    let stranger = verify(&keys.path("stranger.pub.pem"));
    assert_eq!(stranger.status.code(), Some(1));
    assert!(stdout(&stranger).contains("(untrusted_signer)"), "{}", stdout(&stranger));

    // The same tamper is refused by both implementations.
    std::fs::write(bundle.path().join("tenants/extra.json"), "{}").unwrap();
    let tampered = verify(&keys.path("pub.pem"));
    assert_eq!(tampered.status.code(), Some(1));
    assert!(stdout(&tampered).contains("(file_added): tenants/extra.json"), "{}", stdout(&tampered));
    assert!(python("verify", bundle.path(), &keys.path("pub.pem")).is_none());
}

#[test]
fn a_bundle_signed_by_securesystemslib_verifies_in_forge() {
    let (keys, bundle) = (Keys::new(), bundle());
    let peer = python("sign", bundle.path(), &keys.path("python.pub.pem")).expect("the peer signs");
    let verified = forge(&[
        "bundle".as_ref(),
        "verify".as_ref(),
        bundle.path(),
        "--trusted".as_ref(),
        &keys.path("python.pub.pem"),
    ]);
    assert!(verified.status.success(), "{}", stdout(&verified));
    assert!(stdout(&verified).contains("signed-in-python"), "{}", stdout(&verified));
    assert_ne!(peer["keyid"], "", "securesystemslib names the key its own way; forge only hints with it");

    let untrusted =
        forge(&["bundle".as_ref(), "verify".as_ref(), bundle.path(), "--trusted".as_ref(), &keys.path("pub.pem")]);
    assert_eq!(untrusted.status.code(), Some(1));
}

#[test]
fn a_plugin_is_signed_with_its_manifest_and_a_changed_manifest_is_refused() {
    let keys = Keys::new();
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("pii.wasm");
    std::fs::write(&wasm, b"\0asm\x0d\0\x01\0").unwrap();
    std::fs::write(dir.path().join("manifest.yaml"), "name: pii\nversion: 1.2.0\n").unwrap();
    let signed = forge(&["plugin".as_ref(), "sign".as_ref(), &wasm, "--key".as_ref(), &keys.path("key.pem")]);
    assert!(signed.status.success(), "{}", String::from_utf8_lossy(&signed.stderr));
    assert!(dir.path().join("pii.wasm.dsse.json").is_file());
    assert!(stdout(&signed).contains("plugin pii 1.2.0: 2 files"), "{}", stdout(&signed));

    let verify = || forge(&["plugin".as_ref(), "verify".as_ref(), &wasm, "--trusted".as_ref(), &keys.path("pub.pem")]);
    assert!(verify().status.success(), "{}", stdout(&verify()));
    std::fs::write(dir.path().join("manifest.yaml"), "name: pii\nversion: 1.2.0\nwasi: [network]\n").unwrap();
    let refused = verify();
    assert_eq!(refused.status.code(), Some(1));
    assert!(stdout(&refused).contains("(file_changed): manifest.yaml"), "{}", stdout(&refused));
}

#[test]
fn a_key_that_cannot_be_read_is_an_error_not_a_verdict() {
    let bundle = bundle();
    let missing = Path::new("/nonexistent/pub.pem");
    let output = forge(&["bundle".as_ref(), "verify".as_ref(), bundle.path(), "--trusted".as_ref(), missing]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--trusted /nonexistent/pub.pem"));
    assert_eq!(stdout(&output), "", "no verdict: nothing was checked");
    let output = forge(&["bundle".as_ref(), "sign".as_ref(), bundle.path(), "--key".as_ref(), missing]);
    assert_eq!(output.status.code(), Some(1));
    assert!(!bundle.path().join(".signature.dsse.json").exists());
}

fn walkdir_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != ".signature.dsse.json")
        .map(|p| if p.is_dir() { walkdir_count(&p) } else { 1 })
        .sum()
}

#[test]
fn config_check_names_a_trusted_key_that_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("forge.yaml");
    std::fs::write(&config, "trust:\n  bundles:\n    keys:\n      - pem: not a key\n").unwrap();
    let output = forge(&["config".as_ref(), "check".as_ref(), &config]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 3: `trust.bundles.keys`: key 1: inline public key"), "{stderr}");

    std::fs::write(
        &config,
        format!("trust:\n  bundles:\n    keys:\n      - file: {}\n", dir.path().join("pub.pem").display()),
    )
    .unwrap();
    std::fs::write(dir.path().join("pub.pem"), SigningKey::generate().unwrap().public_key().to_pem()).unwrap();
    let output = forge(&["config".as_ref(), "check".as_ref(), &config]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
