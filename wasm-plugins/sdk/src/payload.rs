//! What a detector looks at: the call's context and the payload's scalars.

use serde_json::Value;

/// Where in the exchange the payload comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Client → server params (`tools/call`, `prompts/get` arguments, `inputResponses`).
    Request,
    /// Server → client: tool results, resource contents, prompt messages, sampling and
    /// elicitation requests.
    Response,
    /// Tool definitions from `tools/list` and `server/discover`.
    ToolList,
}

/// The message a payload belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub hook: Hook,
    /// The MCP method, e.g. `tools/call`.
    pub method: String,
    /// The tool being called or answered, when there is one.
    pub tool_name: Option<String>,
    /// That tool's definition as last listed by the server, as JSON text.
    pub tool_definition: Option<String>,
}

impl Context {
    /// A context for `hook` and `method` with no tool (handy in tests).
    pub fn new(hook: Hook, method: &str) -> Self {
        Context { hook, method: method.to_owned(), tool_name: None, tool_definition: None }
    }

    /// The same context, naming the tool.
    pub fn with_tool(mut self, name: &str, definition: Option<&Value>) -> Self {
        self.tool_name = Some(name.to_owned());
        self.tool_definition = definition.map(Value::to_string);
        self
    }

    /// The tool definition parsed, if there is one and it is valid JSON.
    pub fn tool_definition_value(&self) -> Option<Value> {
        serde_json::from_str(self.tool_definition.as_deref()?).ok()
    }
}

/// One string or number of the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    /// RFC 6901 JSON Pointer to the value, relative to the payload's root.
    pub pointer: String,
    /// A string's value, or a number's JSON text.
    pub text: String,
    /// True for JSON numbers.
    pub is_number: bool,
}

impl Scalar {
    /// The last token of the pointer, unescaped: the object key (argument name) or array
    /// index that holds this value. Empty for the root.
    pub fn key(&self) -> String {
        let last = self.pointer.rsplit('/').next().unwrap_or("");
        last.replace("~1", "/").replace("~0", "~")
    }

    /// The nearest enclosing object key that is not an array index (`["a","b"]` under
    /// `paths` answers `paths`).
    pub fn field_name(&self) -> String {
        self.pointer
            .rsplit('/')
            .find(|t| !t.is_empty() && !t.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or("")
            .replace("~1", "/")
            .replace("~0", "~")
    }
}

/// The payload: its JSON text and its scalars in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload {
    pub json: String,
    pub scalars: Vec<Scalar>,
}

impl Payload {
    /// Builds a payload from JSON text the way the gateway does: every string and number,
    /// with its pointer, in document order. Object keys are not scalars.
    pub fn from_json(json: &str) -> Result<Payload, String> {
        let value: Value = serde_json::from_str(json).map_err(|e| format!("payload is not JSON: {e}"))?;
        Ok(Payload::from_value(&value))
    }

    /// Like [`Payload::from_json`], from a parsed value.
    pub fn from_value(value: &Value) -> Payload {
        let mut scalars = Vec::new();
        collect(value, &mut String::new(), &mut scalars);
        Payload { json: value.to_string(), scalars }
    }

    /// The string scalars (numbers left out).
    pub fn strings(&self) -> impl Iterator<Item = &Scalar> {
        self.scalars.iter().filter(|s| !s.is_number)
    }

    /// The payload parsed, when a detector needs its structure.
    pub fn value(&self) -> Result<Value, String> {
        serde_json::from_str(&self.json).map_err(|e| format!("payload is not JSON: {e}"))
    }
}

/// Escapes one reference token for an RFC 6901 pointer (`~` → `~0`, `/` → `~1`).
pub fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn collect(value: &Value, pointer: &mut String, out: &mut Vec<Scalar>) {
    let scalar = |text: String, is_number: bool| Scalar { pointer: pointer.clone(), text, is_number };
    match value {
        Value::String(s) => out.push(scalar(s.clone(), false)),
        Value::Number(n) => out.push(scalar(n.to_string(), true)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                collect(item, pointer, out);
                pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&escape_pointer_token(key));
                collect(item, pointer, out);
                pointer.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_carry_rfc6901_pointers_in_document_order() {
        let p = Payload::from_json(r#"{"a/b":{"c~d":["x",7,true,null]},"e":"y"}"#).unwrap();
        let got: Vec<_> = p.scalars.iter().map(|s| (s.pointer.as_str(), s.text.as_str(), s.is_number)).collect();
        assert_eq!(got, [("/a~1b/c~0d/0", "x", false), ("/a~1b/c~0d/1", "7", true), ("/e", "y", false)]);
        assert_eq!(p.scalars[0].field_name(), "c~d");
        assert_eq!(p.scalars[0].key(), "0");
        assert_eq!(p.scalars[2].key(), "e");
    }

    #[test]
    fn a_bare_string_payload_is_one_scalar_at_the_root() {
        let p = Payload::from_json(r#""hello""#).unwrap();
        assert_eq!(p.scalars.len(), 1);
        assert_eq!(p.scalars[0].pointer, "");
        assert_eq!(p.scalars[0].field_name(), "");
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        assert!(Payload::from_json("{\"a\":").unwrap_err().contains("not JSON"));
    }
}
