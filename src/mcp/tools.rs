//! What the gateway remembers about tool definitions it saw in `tools/list` results.
//!
//! For now: the `x-mcp-header` annotations, so `Mcp-Param-*` headers on a later
//! `tools/call` can be checked against the body. Pinning (issue: plugins) lands here too.

use std::collections::HashMap;
use std::sync::RwLock;

use serde_json::Value;

/// One `x-mcp-header` annotation: the header name part and the property path it mirrors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderParam {
    pub header: String,
    pub path: Vec<String>,
}

/// What the gateway learned about each tool from `tools/list` results: its definition (for
/// policy) and its header annotations.
#[derive(Debug, Default)]
pub struct ToolCatalog {
    header_params: RwLock<HashMap<String, Vec<HeaderParam>>>,
    definitions: RwLock<HashMap<String, Value>>,
}

impl ToolCatalog {
    /// Records the tools of a `tools/list` (or `server/discover`) result.
    pub fn observe_list(&self, result: &Value) {
        let Some(tools) = result.get("tools").and_then(Value::as_array) else { return };
        let mut map = self.header_params.write().unwrap_or_else(|e| e.into_inner());
        let mut definitions = self.definitions.write().unwrap_or_else(|e| e.into_inner());
        for tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str) else { continue };
            definitions.insert(name.to_string(), tool.clone());
            let mut params = Vec::new();
            if let Some(schema) = tool.get("inputSchema") {
                collect(schema, &mut Vec::new(), &mut params);
            }
            if params.is_empty() {
                map.remove(name);
            } else {
                map.insert(name.to_string(), params);
            }
        }
    }

    /// Runs `f` with the last definition of `tool` seen in a list, if any.
    pub fn with_definition<R>(&self, tool: &str, f: impl FnOnce(Option<&Value>) -> R) -> R {
        let definitions = self.definitions.read().unwrap_or_else(|e| e.into_inner());
        f(definitions.get(tool))
    }

    /// Runs `f` with the annotations of `tool`, if any are known.
    pub fn with_params<R>(&self, tool: &str, f: impl FnOnce(Option<&[HeaderParam]>) -> R) -> R {
        let map = self.header_params.read().unwrap_or_else(|e| e.into_inner());
        f(map.get(tool).map(Vec::as_slice))
    }
}

/// Walks `properties` chains only: the spec allows annotations nowhere else.
fn collect(schema: &Value, path: &mut Vec<String>, out: &mut Vec<HeaderParam>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else { return };
    for (key, prop) in props {
        path.push(key.clone());
        if let Some(header) = prop.get("x-mcp-header").and_then(Value::as_str) {
            out.push(HeaderParam { header: header.to_string(), path: path.clone() });
        }
        collect(prop, path, out);
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn learns_nested_annotations_and_forgets_removed_ones() {
        let catalog = ToolCatalog::default();
        catalog.observe_list(&json!({"tools": [{
            "name": "sql",
            "inputSchema": {"type": "object", "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "opts": {"type": "object", "properties": {"tenant": {"type": "string", "x-mcp-header": "Tenant"}}},
                "query": {"type": "string"}
            }}
        }]}));
        catalog.with_params("sql", |p| {
            let p = p.unwrap();
            assert_eq!(p.len(), 2);
            assert!(p.contains(&HeaderParam { header: "Tenant".into(), path: vec!["opts".into(), "tenant".into()] }));
        });
        catalog.observe_list(&json!({"tools": [{"name": "sql", "inputSchema": {"type": "object"}}]}));
        catalog.with_params("sql", |p| assert!(p.is_none()));
        catalog.with_definition("sql", |d| assert_eq!(d.unwrap()["inputSchema"]["type"], "object"));
        catalog.with_definition("unknown", |d| assert!(d.is_none()));
    }
}
