//! The well-behaved test detector: reports every occurrence of a marker word (config
//! `markers`, word → category) with its exact span as rule `marker.<category>`, so tests
//! know what to expect.

wit_bindgen::generate!({ path: "../../../wit", world: "detector" });

use forge::detector::types::{Category, Severity, Span};

struct Marker;

impl Guest for Marker {
    fn detect(_cx: Context, input: Payload, config: String) -> Result<Vec<Finding>, String> {
        let markers = markers(&config);
        let mut findings = Vec::new();
        for scalar in &input.scalars {
            for (word, category) in &markers {
                for (start, _) in scalar.text.match_indices(word.as_str()) {
                    findings.push(Finding {
                        rule_id: format!("marker.{}", category_name(*category)),
                        category: *category,
                        severity: Severity::High,
                        confidence: 0.9,
                        pointer: scalar.pointer.clone(),
                        span: Some(Span { start: start as u32, end: (start + word.len()) as u32 }),
                        replacement: None,
                        fingerprint: None,
                        message: format!("marker {word}"),
                    });
                }
            }
        }
        Ok(findings)
    }
}

/// The config is tiny and fixed-shape, so it is read without a JSON library: each
/// `"WORD":"category"` pair of the flat `markers` object.
fn markers(config: &str) -> Vec<(String, Category)> {
    let defaults = || vec![("SECRET-MARKER".to_string(), Category::Secret), ("PII-MARKER".to_string(), Category::Pii)];
    let Some(body) = config.split("\"markers\"").nth(1).and_then(|rest| rest.split('{').nth(1)?.split('}').next())
    else {
        return defaults();
    };
    let quoted: Vec<&str> = body.split('"').skip(1).step_by(2).collect();
    quoted
        .chunks(2)
        .filter_map(|pair| {
            let category = match *pair.get(1)? {
                "pii" => Category::Pii,
                "secret" => Category::Secret,
                "code-exec" => Category::CodeExec,
                "poisoning" => Category::Poisoning,
                _ => Category::Custom,
            };
            Some((pair[0].to_string(), category))
        })
        .collect()
}

fn category_name(category: Category) -> &'static str {
    match category {
        Category::Pii => "pii",
        Category::Secret => "secret",
        Category::CodeExec => "code-exec",
        Category::Poisoning => "poisoning",
        Category::Custom => "custom",
    }
}

export!(Marker);
