//! `forge plugin test` and `forge plugin inspect`: a plugin author's tools.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::config::PluginLimits;
use super::host::{wit, Host};
use super::manifest::{sha256_hex, Manifest};
use super::payload::{self, Part};
use super::Hook;

/// What `forge plugin test` runs.
pub struct TestRun<'a> {
    pub wasm: &'a Path,
    /// A JSON file: the payload the plugin sees (a request's params or a response's result).
    pub input: &'a Path,
    pub hook: Hook,
    pub method: &'a str,
    pub tool: Option<&'a str>,
    /// The plugin's config: inline JSON, or a file holding it.
    pub config: Option<&'a str>,
    pub limits: PluginLimits,
}

/// Runs a plugin once on a payload and prints its findings and how long it took. Returns
/// false when the plugin failed.
pub fn test(run: &TestRun<'_>, out: &mut impl Write) -> anyhow::Result<bool> {
    let wasm = std::fs::read(run.wasm).with_context(|| format!("reading {}", run.wasm.display()))?;
    let text = std::fs::read_to_string(run.input).with_context(|| format!("reading {}", run.input.display()))?;
    let input: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", run.input.display()))?;
    let config = match run.config {
        None => "{}".to_string(),
        Some(c) if Path::new(c).is_file() => std::fs::read_to_string(c).with_context(|| format!("reading {c}"))?,
        Some(c) => c.to_string(),
    };
    serde_json::from_str::<Value>(&config).context("--config is neither JSON nor a file of JSON")?;
    let host = Host::new(run.limits, None)?;
    let compiling = Instant::now();
    let name = run.wasm.file_stem().and_then(|s| s.to_str()).unwrap_or("plugin");
    let loaded = host.load(name, &wasm, &[], None)?;
    let compile_time = compiling.elapsed();
    let cx = wit::Context {
        hook: match run.hook {
            Hook::Request => wit::Hook::Request,
            Hook::Response => wit::Hook::Response,
            Hook::ToolList => wit::Hook::ToolList,
        },
        method: run.method.to_string(),
        tool_name: run.tool.map(str::to_owned),
        tool_definition: None,
    };
    let part = Part { at: "", value: &input };
    let calling = Instant::now();
    let result = host.call(&loaded, &cx, &payload::payload(&input), &config);
    let call_time = calling.elapsed();
    let (ok, report) = match result {
        Ok(found) => {
            let findings: Vec<Value> = found
                .into_iter()
                .map(|f| {
                    let message = f.message.clone();
                    match payload::read_finding(name, part, f) {
                        Ok(finding) => json!({"finding": finding, "message": message}),
                        Err(problem) => json!({"invalid": problem, "message": message}),
                    }
                })
                .collect();
            let ok = findings.iter().all(|f| f.get("invalid").is_none());
            (ok, json!({"findings": findings}))
        }
        Err(e) => (false, json!({"error": e.to_string(), "outcome": e.label()})),
    };
    let mut report = report;
    report["timing"] = json!({
        "compile_ms": compile_time.as_secs_f64() * 1e3,
        "instantiate_and_call_us": call_time.as_secs_f64() * 1e6,
    });
    writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    Ok(ok)
}

/// Prints a plugin's manifest (when there is one), its component's exports and imports,
/// and its digest. `target` is a `.wasm` file or a plugin directory.
pub fn inspect(target: &Path, out: &mut impl Write) -> anyhow::Result<bool> {
    let (manifest, wasm_path): (Option<Manifest>, PathBuf) = if target.is_dir() {
        let manifest = Manifest::read(target)?;
        let wasm = target.join(&manifest.wasm);
        (Some(manifest), wasm)
    } else {
        let beside = target.parent().map(|d| d.join("manifest.yaml")).filter(|m| m.is_file());
        let manifest = beside.and_then(|m| Manifest::read(m.parent()?).ok());
        (manifest, target.to_path_buf())
    };
    let wasm = std::fs::read(&wasm_path).with_context(|| format!("reading {}", wasm_path.display()))?;
    let digest = sha256_hex(&wasm);
    let host = Host::new(PluginLimits::default(), None)?;
    let (exports, imports) = host.describe(&wasm)?;
    let matches = manifest.as_ref().map(|m| m.sha256.eq_ignore_ascii_case(&digest));
    let report = json!({
        "wasm": wasm_path,
        "sha256": digest,
        "manifest_sha256_matches": matches,
        "manifest": manifest,
        "exports": exports,
        "imports": imports,
    });
    writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    Ok(matches != Some(false))
}
