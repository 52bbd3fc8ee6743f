//! The test plugins of tests/plugins/, built for wasm32-wasip2 (scripts/test.sh builds
//! them; a test that finds them missing builds them once), and plugin directories made
//! from them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The component of one test plugin crate (`marker`, `spin`, `memory-bomb`, `trap`, `garbage`).
pub fn wasm(krate: &str) -> Vec<u8> {
    static BUILT: OnceLock<()> = OnceLock::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path =
        root.join("tests/plugins/target/wasm32-wasip2/release").join(format!("{}.wasm", krate.replace('-', "_")));
    if !path.is_file() {
        BUILT.get_or_init(|| {
            let status = std::process::Command::new(root.join("scripts/build-test-plugins.sh")).status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "building the test plugins failed (scripts/build-test-plugins.sh)"
            );
        });
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `dir/<name>/manifest.yaml` and `<name>.wasm` for test plugin `krate`, with the
/// right digest; `extra` is appended to the manifest.
pub fn install(dir: &Path, name: &str, krate: &str, extra: &str) -> PathBuf {
    let plugin = dir.join(name);
    std::fs::create_dir_all(&plugin).unwrap();
    let wasm = wasm(krate);
    std::fs::write(plugin.join(format!("{name}.wasm")), &wasm).unwrap();
    let manifest = format!(
        "name: {name}\nversion: 0.1.0\nwit: 0.1.0\ndescription: test plugin {krate}\nhooks: [request, response, tool-list]\nwasm: {name}.wasm\nsha256: {}\n{extra}",
        forge::plugins::manifest::sha256_hex(&wasm)
    );
    std::fs::write(plugin.join("manifest.yaml"), manifest).unwrap();
    plugin
}
