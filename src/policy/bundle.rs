//! A policy bundle on disk: reading it, its digest and revision, and compiling it.
//!
//! A bundle is a directory of `.rego` files (`*_test.rego` hold its tests), data files
//! (`data.json`, `data.yaml`; one in `a/b/` lands at `data.a.b`, as in OPA bundles) and an
//! optional `.manifest` (`{"revision": "…"}`). Other files (a README, schemas) are ignored.
//! Hidden entries are skipped, which also skips the `..data` directories Kubernetes
//! ConfigMap mounts add beside their symlinked files.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::vm::RegoVM;
use regorus::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::PolicyError;
use crate::hex::hex;

/// The rule every bundle must define; its value is the decision document.
pub const ENTRYPOINT: &str = "data.forge.decision";

/// Directories nest at most this deep: a symlink loop must not hang a reload.
const MAX_DEPTH: usize = 16;

/// A bundle file larger than this is refused, not read: a runaway data file must not
/// exhaust the gateway's memory on a reload.
const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// The files of a bundle as read at one moment.
#[derive(Debug, Clone)]
pub(crate) struct Bundle {
    dir: PathBuf,
    files: Vec<BundleFile>,
    digest: String,
}

#[derive(Debug, Clone)]
struct BundleFile {
    /// Relative to the bundle, `/`-separated: what the digest covers.
    relative: String,
    /// How errors and coverage name the file.
    display: String,
    contents: String,
    kind: FileKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Rego,
    Json,
    Yaml,
    Manifest,
}

/// One problem in a bundle, located as precisely as the parser allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{}:{line}:{column}: {}", self.file, self.message),
            (Some(line), None) => write!(f, "{}:{line}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl Diagnostic {
    fn new(file: &str, message: impl Into<String>) -> Self {
        Diagnostic { file: file.to_string(), line: None, column: None, message: message.into() }
    }

    /// regorus reports `--> file:line:col`, a source excerpt, then `error: message`.
    fn from_regorus(file: &str, error: &dyn fmt::Display) -> Self {
        let text = format!("{error:#}");
        let mut diagnostic = Diagnostic::new(file, text.trim());
        if let Some(location) = text.split("--> ").nth(1).and_then(|rest| rest.lines().next()) {
            let mut parts = location.trim().rsplitn(3, ':');
            let column = parts.next().and_then(|c| c.parse().ok());
            let line = parts.next().and_then(|l| l.parse().ok());
            if let (Some(line), Some(located)) = (line, parts.next()) {
                diagnostic.file = located.to_string();
                diagnostic.line = Some(line);
                diagnostic.column = column;
            }
            let message = text.lines().rev().find_map(|l| l.trim().strip_prefix("error: "));
            diagnostic.message = message.unwrap_or(text.trim()).to_string();
        }
        diagnostic
    }
}

/// A bundle compiled for evaluation, with the engine its tests run on.
#[derive(Debug)]
pub(crate) struct Compiled {
    /// Holds every module, tests included: the test runner and `policy eval` use it.
    pub engine: Engine,
    pub program: Arc<Program>,
    pub data: regorus::Value,
    pub revision: String,
}

impl Bundle {
    /// Reads every bundle file under `dir`.
    pub fn read(dir: &Path) -> Result<Bundle, PolicyError> {
        let metadata = std::fs::metadata(dir).map_err(|error| PolicyError::Io { path: dir.to_path_buf(), error })?;
        if !metadata.is_dir() {
            let message = "a policy bundle is a directory of .rego and data files".to_string();
            return Err(PolicyError::Invalid {
                diagnostics: vec![Diagnostic::new(&dir.display().to_string(), message)],
            });
        }
        let mut files = Vec::new();
        collect(dir, dir, 0, &mut files)?;
        files.sort_by(|a, b| a.relative.cmp(&b.relative));
        let digest = digest(&files);
        Ok(Bundle { dir: dir.to_path_buf(), files, digest })
    }

    /// SHA-256 (hex) over every bundle file's relative path and contents, in path order.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What was read: each file's relative path and bytes, for the provenance check.
    pub fn sources(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|f| (f.relative.as_str(), f.contents.as_bytes()))
    }

    /// The `.rego` files, by display name, with whether each holds tests.
    pub fn rego_files(&self) -> impl Iterator<Item = (&str, bool)> {
        self.files
            .iter()
            .filter(|f| f.kind == FileKind::Rego)
            .map(|f| (f.display.as_str(), f.relative.ends_with("_test.rego")))
    }

    /// Parses and compiles the whole bundle, reporting every file that fails to parse.
    pub(crate) fn compile(&self) -> Result<Compiled, PolicyError> {
        let mut diagnostics = Vec::new();
        let mut engine = Engine::new();
        // print() output goes into the test report, not the gateway's stderr.
        engine.set_gather_prints(true);
        let mut policies = 0;
        for file in self.files.iter().filter(|f| f.kind == FileKind::Rego) {
            policies += 1;
            if let Err(e) = engine.add_policy(file.display.clone(), file.contents.clone()) {
                diagnostics.push(Diagnostic::from_regorus(&file.display, &e));
            }
        }
        if policies == 0 {
            diagnostics.push(Diagnostic::new(&self.dir.display().to_string(), "the bundle has no .rego files"));
        }
        let data = self.data(&mut diagnostics);
        let manifest_revision = self.manifest_revision(&mut diagnostics);
        if !diagnostics.is_empty() {
            return Err(PolicyError::Invalid { diagnostics });
        }
        let bundle_name = self.dir.display().to_string();
        let invalid =
            |message: String| PolicyError::Invalid { diagnostics: vec![Diagnostic::new(&bundle_name, message)] };
        let data_value = regorus::Value::deserialize(&data).map_err(|e| invalid(format!("data: {e}")))?;
        engine.add_data(data_value.clone()).map_err(|e| invalid(format!("data: {e:#}")))?;

        let compiled = engine.compile_with_entrypoint(&ENTRYPOINT.into()).map_err(|e| {
            if format!("{e}").contains("not a valid rule path") {
                invalid(format!("the bundle defines no `{ENTRYPOINT}` (package forge, rule decision)"))
            } else {
                located(&bundle_name, &e)
            }
        })?;
        let program = Compiler::compile_from_policy(&compiled, &[ENTRYPOINT]).map_err(|e| located(&bundle_name, &e))?;
        // A rule and a data document at the same path only clash when data is attached to a
        // VM; attach it once here so such a bundle is refused before it can be activated.
        let mut probe = RegoVM::new();
        probe.load_program(program.clone());
        probe.set_data(data_value.clone()).map_err(|e| invalid(format!("{e:#}")))?;

        let revision = manifest_revision
            .or_else(|| data.pointer("/forge/revision").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| self.digest.clone());
        Ok(Compiled { engine, program, data: data_value, revision })
    }

    /// Every data file merged into one document; a key defined twice is an error.
    fn data(&self, diagnostics: &mut Vec<Diagnostic>) -> Value {
        let mut root = Value::Object(Map::new());
        for file in &self.files {
            let parsed = match file.kind {
                FileKind::Json => serde_json::from_str::<Value>(&file.contents).map_err(|e| Diagnostic {
                    line: Some(e.line() as u32),
                    column: Some(e.column() as u32),
                    ..Diagnostic::new(&file.display, e.to_string())
                }),
                FileKind::Yaml => serde_yaml_ng::from_str::<Value>(&file.contents).map_err(|e| Diagnostic {
                    line: e.location().map(|l| l.line() as u32),
                    column: e.location().map(|l| l.column() as u32),
                    ..Diagnostic::new(&file.display, e.to_string())
                }),
                FileKind::Rego | FileKind::Manifest => continue,
            };
            let map = match parsed {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    diagnostics.push(Diagnostic::new(&file.display, "a data file must hold an object"));
                    continue;
                }
                Err(d) => {
                    diagnostics.push(d);
                    continue;
                }
            };
            // `a/b/data.json` lands at data.a.b.
            let mut nested = Value::Object(map);
            let mut segments: Vec<&str> = file.relative.split('/').collect();
            segments.pop();
            for segment in segments.iter().rev() {
                nested = Value::Object(Map::from_iter([(segment.to_string(), nested)]));
            }
            if let Err(path) = merge(&mut root, nested, &mut Vec::new()) {
                diagnostics
                    .push(Diagnostic::new(&file.display, format!("data.{path} is defined by another data file too")));
            }
        }
        root
    }

    fn manifest_revision(&self, diagnostics: &mut Vec<Diagnostic>) -> Option<String> {
        #[derive(Deserialize)]
        struct Manifest {
            revision: Option<String>,
        }
        let file = self.files.iter().find(|f| f.kind == FileKind::Manifest)?;
        match serde_json::from_str::<Manifest>(&file.contents) {
            Ok(manifest) => manifest.revision.filter(|r| !r.is_empty()),
            Err(e) => {
                diagnostics.push(Diagnostic {
                    line: Some(e.line() as u32),
                    column: Some(e.column() as u32),
                    ..Diagnostic::new(&file.display, e.to_string())
                });
                None
            }
        }
    }
}

fn located(fallback_file: &str, error: &dyn fmt::Display) -> PolicyError {
    PolicyError::Invalid { diagnostics: vec![Diagnostic::from_regorus(fallback_file, error)] }
}

fn collect(root: &Path, dir: &Path, depth: usize, files: &mut Vec<BundleFile>) -> Result<(), PolicyError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| PolicyError::Io { path, error }
    };
    if depth > MAX_DEPTH {
        let message = format!("directories nest deeper than {MAX_DEPTH} levels (a symlink loop?)");
        return Err(PolicyError::Invalid { diagnostics: vec![Diagnostic::new(&dir.display().to_string(), message)] });
    }
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let at_root = depth == 0;
        if name.starts_with('.') && !(at_root && name == ".manifest") {
            continue;
        }
        // Follows symlinks: ConfigMap mounts present every file as one.
        let metadata = std::fs::metadata(&path).map_err(io(&path))?;
        if metadata.is_dir() {
            collect(root, &path, depth + 1, files)?;
            continue;
        }
        let kind = match name.as_str() {
            ".manifest" => FileKind::Manifest,
            "data.json" => FileKind::Json,
            "data.yaml" | "data.yml" => FileKind::Yaml,
            _ if name.ends_with(".rego") => FileKind::Rego,
            _ => continue,
        };
        let contents = read_bounded(&path, &metadata)?;
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let relative = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        files.push(BundleFile { relative, display: path.display().to_string(), contents, kind });
    }
    Ok(())
}

/// Reads a bundle file that is a regular file of bounded size. A FIFO or a device (say, a
/// symlink to /dev/zero named `x.rego`) is refused before it is opened: reading it would
/// block the load or never end.
fn read_bounded(path: &Path, metadata: &std::fs::Metadata) -> Result<String, PolicyError> {
    let refuse = |message: String| PolicyError::Invalid {
        diagnostics: vec![Diagnostic::new(&path.display().to_string(), message)],
    };
    if !metadata.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    let too_large = || refuse(format!("larger than {} MiB", MAX_FILE_BYTES >> 20));
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let io = |error| PolicyError::Io { path: path.to_path_buf(), error };
    let mut contents = String::new();
    // The file may grow between the stat and the read.
    std::fs::File::open(path).and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_string(&mut contents)).map_err(io)?;
    if contents.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(contents)
}

/// Each file is framed by its path, a NUL and its length, so no two bundles share a digest
/// by moving bytes between a name and a body.
fn digest(files: &[BundleFile]) -> String {
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(file.relative.as_bytes());
        hasher.update([0]);
        hasher.update((file.contents.len() as u64).to_be_bytes());
        hasher.update(file.contents.as_bytes());
    }
    hex(&hasher.finalize())
}

/// Merges `from` into `into`; returns the dotted path of the first key both define.
fn merge(into: &mut Value, from: Value, path: &mut Vec<String>) -> Result<(), String> {
    let (Value::Object(into), Value::Object(from)) = (into, from) else {
        return Err(path.join("."));
    };
    for (key, value) in from {
        path.push(key.clone());
        match into.get_mut(&key) {
            Some(existing) if existing.is_object() && value.is_object() => merge(existing, value, path)?,
            Some(_) => return Err(path.join(".")),
            None => {
                into.insert(key, value);
            }
        }
        path.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, contents) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
    }

    const DECISION: &str = "package forge\nimport rego.v1\ndecision := {\"allow\": true}\n";

    fn diagnostics(e: PolicyError) -> Vec<Diagnostic> {
        match e {
            PolicyError::Invalid { diagnostics } => diagnostics,
            other => panic!("expected an invalid bundle, got {other}"),
        }
    }

    #[test]
    fn reads_policy_and_data_files_and_ignores_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("main.rego", DECISION),
                ("main_test.rego", "package forge_test\nimport rego.v1\ntest_x if true\n"),
                ("data.yaml", "forge:\n  revision: r7\n"),
                ("tenants/acme/data.json", r#"{"limit": 3}"#),
                ("README.md", "docs"),
                (".hidden/x.rego", "not rego"),
                ("..2024_01/main.rego", "not rego"),
            ],
        );
        let bundle = Bundle::read(dir.path()).unwrap();
        let rego: Vec<bool> = bundle.rego_files().map(|(_, test)| test).collect();
        assert_eq!(rego, vec![false, true]);
        let compiled = bundle.compile().unwrap();
        assert_eq!(compiled.revision, "r7");
        assert_eq!(compiled.data["tenants"]["acme"]["limit"].as_u64().unwrap(), 3);
    }

    #[test]
    fn the_digest_covers_paths_and_contents_only() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write(a.path(), &[("main.rego", DECISION), ("README.md", "one")]);
        write(b.path(), &[("main.rego", DECISION), ("README.md", "two")]);
        let digest = Bundle::read(a.path()).unwrap().digest().to_string();
        assert_eq!(digest.len(), 64);
        assert_eq!(digest, Bundle::read(b.path()).unwrap().digest(), "non-bundle files do not count");
        write(b.path(), &[("main.rego", &format!("{DECISION}# edited\n"))]);
        assert_ne!(digest, Bundle::read(b.path()).unwrap().digest());
        std::fs::rename(b.path().join("main.rego"), b.path().join("other.rego")).unwrap();
        write(b.path(), &[("other.rego", DECISION)]);
        assert_ne!(digest, Bundle::read(b.path()).unwrap().digest(), "a rename changes the digest");
    }

    #[test]
    fn revision_prefers_the_manifest_then_data_then_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[("main.rego", DECISION)]);
        let bundle = Bundle::read(dir.path()).unwrap();
        assert_eq!(bundle.compile().unwrap().revision, bundle.digest());
        write(dir.path(), &[("data.json", r#"{"forge": {"revision": "from-data"}}"#)]);
        assert_eq!(Bundle::read(dir.path()).unwrap().compile().unwrap().revision, "from-data");
        write(dir.path(), &[(".manifest", r#"{"revision": "from-manifest", "roots": ["forge"]}"#)]);
        assert_eq!(Bundle::read(dir.path()).unwrap().compile().unwrap().revision, "from-manifest");
    }

    #[test]
    fn every_broken_file_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("main.rego", DECISION),
                ("a.rego", "package forge.a\nimport rego.v1\n\nx if {\n  input.a ==\n}\n"),
                ("b.rego", "package forge.b\nimport rego.v1\ny := [\n"),
                ("data.json", "{\"forge\": {\n  \"k\": 1,\n}\n}"),
                ("sub/data.yaml", "k: [1\n"),
            ],
        );
        let found = diagnostics(Bundle::read(dir.path()).unwrap().compile().unwrap_err());
        let named =
            |suffix: &str| found.iter().find(|d| d.file.ends_with(suffix)).unwrap_or_else(|| panic!("{found:?}"));
        assert_eq!(named("a.rego").line, Some(6));
        assert!(named("a.rego").to_string().contains("a.rego:6:"), "{}", named("a.rego"));
        assert!(named("b.rego").line.is_some());
        assert_eq!(named("data.json").line, Some(3));
        assert!(named("data.yaml").line.is_some());
        assert_eq!(found.len(), 4, "{found:?}");
    }

    #[test]
    fn compile_errors_are_located() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[("main.rego", "package forge\nimport rego.v1\n\ndecision := {\"allow\": nope(1)}\n")]);
        let found = diagnostics(Bundle::read(dir.path()).unwrap().compile().unwrap_err());
        assert_eq!(found[0].line, Some(4), "{found:?}");
        assert!(found[0].message.contains("nope"), "{found:?}");
    }

    #[test]
    fn a_bundle_without_the_entrypoint_or_with_clashing_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[("main.rego", "package forge\nimport rego.v1\nallow := true\n")]);
        let found = diagnostics(Bundle::read(dir.path()).unwrap().compile().unwrap_err());
        assert!(found[0].message.contains("data.forge.decision"), "{found:?}");

        write(dir.path(), &[("main.rego", DECISION), ("data.json", r#"{"forge": {"decision": 1}}"#)]);
        let found = diagnostics(Bundle::read(dir.path()).unwrap().compile().unwrap_err());
        assert!(found[0].message.contains("conflict"), "{found:?}");

        write(dir.path(), &[("data.json", r#"{"x": {"k": 1}}"#), ("data.yaml", "x:\n  k: 2\n")]);
        let found = diagnostics(Bundle::read(dir.path()).unwrap().compile().unwrap_err());
        assert!(found[0].message.contains("data.x.k"), "{found:?}");
    }

    #[test]
    fn a_device_or_fifo_named_like_a_policy_is_refused_without_being_read() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[("main.rego", DECISION)]);
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.rego")).unwrap();
        let found = diagnostics(Bundle::read(dir.path()).unwrap_err());
        assert!(found[0].file.ends_with("zero.rego") && found[0].message.contains("not a regular file"), "{found:?}");

        // The near miss: a symlink to a regular file (how ConfigMaps are mounted) is read.
        std::fs::remove_file(dir.path().join("zero.rego")).unwrap();
        write(dir.path(), &[("elsewhere/real.rego.txt", "package forge.extra\nimport rego.v1\nx := 1\n")]);
        std::os::unix::fs::symlink(dir.path().join("elsewhere/real.rego.txt"), dir.path().join("extra.rego")).unwrap();
        assert!(Bundle::read(dir.path()).unwrap().rego_files().count() == 2);
    }

    #[test]
    fn missing_and_empty_directories_are_errors() {
        assert!(matches!(Bundle::read(Path::new("/nonexistent/forge-bundle")), Err(PolicyError::Io { .. })));
        let dir = tempfile::tempdir().unwrap();
        let found = diagnostics(Bundle::read(dir.path()).unwrap().compile().unwrap_err());
        assert!(found[0].message.contains("no .rego files"));
    }
}
