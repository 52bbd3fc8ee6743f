//! What `build.sh` wrote to `dist/`: each shipped detector as a WebAssembly component, with
//! a manifest that names it, asks for no capabilities and carries its sha256. Skipped, with
//! a note, when `dist/` has not been built; `test.sh` builds it before the tests run.

use sha2::{Digest, Sha256};
use std::path::Path;

const PLUGINS: [&str; 4] = ["pii", "secrets", "code-exec", "tool-poisoning"];

/// The value of a top-level `key: value` line.
fn field<'a>(manifest: &'a str, key: &str) -> Option<&'a str> {
    manifest.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(str::trim))
}

#[test]
fn built_components_match_their_manifests() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist");
    if !dist.exists() {
        eprintln!("skipped: {} not built (run wasm-plugins/build.sh)", dist.display());
        return;
    }
    for name in PLUGINS {
        let dir = dist.join(name);
        let manifest = std::fs::read_to_string(dir.join("manifest.yaml")).expect("manifest.yaml");
        let wasm = std::fs::read(dir.join(format!("{name}.wasm"))).expect("the .wasm");
        assert_eq!(field(&manifest, "name"), Some(name));
        assert_eq!(field(&manifest, "wasm"), Some(format!("{name}.wasm").as_str()));
        assert_eq!(field(&manifest, "wit"), Some("0.1.0"), "{name}: built against forge:detector@0.1.0");
        assert_eq!(field(&manifest, "capabilities"), Some("[]"), "{name}: detectors need no WASI capabilities");
        let digest: String = Sha256::digest(&wasm).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(field(&manifest, "sha256"), Some(digest.as_str()), "{name}: sha256 of the .wasm");
        // `\0asm`, then version 0x0d and layer 1: a component, not a core module.
        assert_eq!(&wasm[..8], b"\0asm\x0d\x00\x01\x00", "{name} is not a component");
    }
}
