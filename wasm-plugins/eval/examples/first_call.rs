//! The first call of a detector in a fresh process, then a second one: the difference is
//! what a fresh wasm instance pays on every call to compile the rules the payload needs
//! (plugins keep no state between calls). Natively, so without instantiation.
//!
//! `cargo run --release -p detector-eval --example first_call -- secrets 4096`
//! (detector: pii, secrets, code-exec, tool-poisoning or all; size in bytes).

use detector_eval::payloads::{request, tool_list};
use detector_eval::DETECTORS;
use forge_plugin_sdk::{Config, Context, Hook, Payload};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "all".into());
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(4096);
    let config = Config::default();
    let message = Payload::from_value(&request(size));
    let listing = Payload::from_value(&tool_list(size));
    let run = || {
        for (name, detect) in DETECTORS.iter().filter(|(n, _)| which == "all" || *n == which) {
            let (cx, payload) = match *name {
                "tool-poisoning" => (Context::new(Hook::ToolList, "tools/list"), &listing),
                "pii" => (Context::new(Hook::Response, "tools/call").with_tool("run_command", None), &message),
                _ => (Context::new(Hook::Request, "tools/call").with_tool("run_command", None), &message),
            };
            if let Err(e) = detect(&cx, payload, &config) {
                eprintln!("{name}: {e}");
            }
        }
    };
    for round in ["first call", "second call"] {
        let start = Instant::now();
        run();
        println!("{which} on {size} bytes, {round}: {:?}", start.elapsed());
    }
}
