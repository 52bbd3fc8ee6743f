//! The component glue: WIT types in, SDK types out and back. Only built for `wasm32`.

use crate::{Category, Config, Context, Finding, Hook, Payload, Scalar, Severity};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "detector",
        pub_export_macro: true,
        default_bindings_module: "forge_plugin_sdk::glue::bindings",
    });
}

use bindings::forge::detector::types as wit;

type Detect = fn(&Context, &Payload, &Config) -> Result<Vec<Finding>, String>;

/// Calls a detector with the host's arguments and converts its answer.
pub fn call(detect: Detect, cx: wit::Context, input: wit::Payload, config: &str) -> Result<Vec<wit::Finding>, String> {
    let cx = Context {
        hook: match cx.hook {
            wit::Hook::Request => Hook::Request,
            wit::Hook::Response => Hook::Response,
            wit::Hook::ToolList => Hook::ToolList,
        },
        method: cx.method,
        tool_name: cx.tool_name,
        tool_definition: cx.tool_definition,
    };
    let payload = Payload {
        json: input.json,
        scalars: input
            .scalars
            .into_iter()
            .map(|s| Scalar {
                pointer: s.pointer,
                text: s.text,
                is_number: s.is_number,
            })
            .collect(),
    };
    let config = Config::from_json(config)?;
    let findings = detect(&cx, &payload, &config)?;
    Ok(findings.into_iter().map(to_wit).collect())
}

fn to_wit(f: Finding) -> wit::Finding {
    wit::Finding {
        rule_id: f.rule_id,
        category: match f.category {
            Category::Pii => wit::Category::Pii,
            Category::Secret => wit::Category::Secret,
            Category::CodeExec => wit::Category::CodeExec,
            Category::Poisoning => wit::Category::Poisoning,
            Category::Custom => wit::Category::Custom,
        },
        severity: match f.severity {
            Severity::Info => wit::Severity::Info,
            Severity::Low => wit::Severity::Low,
            Severity::Medium => wit::Severity::Medium,
            Severity::High => wit::Severity::High,
            Severity::Critical => wit::Severity::Critical,
        },
        confidence: f.confidence,
        pointer: f.pointer,
        span: f.span.map(|s| wit::Span { start: s.start, end: s.end }),
        replacement: f.replacement,
        fingerprint: f.fingerprint,
        message: f.message,
    }
}
