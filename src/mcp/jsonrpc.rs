//! The one typed model of JSON-RPC messages every later stage uses, and its strict parser.
//!
//! Strictness is a security property: the gateway must read a message exactly as the
//! upstream will. Input that two JSON parsers could read differently — duplicate object
//! keys, lone surrogate escapes, excessive nesting — is rejected here instead of guessed at.
//! Method names that differ from a known MCP method only by case or surrounding whitespace
//! are rejected too: a lenient upstream might route them where policy never looked.

use std::fmt;

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// JSON-RPC and MCP error codes the gateway itself emits.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// MCP 2026-07-28: HTTP headers disagree with the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// Gateway-defined (the implementation-defined range -32000..=-32019).
    pub const UPSTREAM_UNAVAILABLE: i64 = -32010;
    pub const UPSTREAM_TIMEOUT: i64 = -32011;
    pub const UPSTREAM_INVALID_RESPONSE: i64 = -32012;
    pub const REQUEST_TOO_LARGE: i64 = -32013;
    pub const REQUEST_TIMEOUT: i64 = -32014;
    pub const SESSION_NOT_FOUND: i64 = -32015;
    pub const UNAUTHORIZED: i64 = -32016;
    pub const POLICY_DENIED: i64 = -32017;
    /// The call waits for a human approver (see docs/approvals.md).
    pub const APPROVAL_PENDING: i64 = -32018;
    /// A policy rate limit refused the call; `data.retry_after_ms` says when to retry.
    pub const RATE_LIMITED: i64 = -32019;
}

/// A request id. MCP forbids `null` ids on requests; a response may carry `null` when the
/// request could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    Number(serde_json::Number),
    String(String),
}

impl Id {
    pub fn to_value(&self) -> Value {
        match self {
            Id::Number(n) => Value::Number(n.clone()),
            Id::String(s) => Value::String(s.clone()),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::String(s) => write!(f, "{s:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: Id,
    pub method: String,
    pub params: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub method: String,
    pub params: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: Option<Id>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Result(Value),
    Error(ErrorObject),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

/// What one HTTP body or SSE event carried: one message, or a batch (2025-03-26 only).
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Single(Message),
    Batch(Vec<Message>),
}

impl Payload {
    pub fn messages(&self) -> &[Message] {
        match self {
            Payload::Single(m) => std::slice::from_ref(m),
            Payload::Batch(ms) => ms,
        }
    }

    /// Requests in the payload (those that expect a response).
    pub fn requests(&self) -> impl Iterator<Item = &Request> {
        self.messages().iter().filter_map(|m| match m {
            Message::Request(r) => Some(r),
            _ => None,
        })
    }

    /// The single request id to answer a transport-level failure with, if there is exactly one.
    pub fn sole_request_id(&self) -> Option<&Id> {
        let mut requests = self.requests();
        let first = requests.next()?;
        requests.next().is_none().then_some(&first.id)
    }

    pub fn has_requests(&self) -> bool {
        self.requests().next().is_some()
    }
}

impl Message {
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request(r) => Some(&r.method),
            Message::Notification(n) => Some(&n.method),
            Message::Response(_) => None,
        }
    }

    pub fn params(&self) -> Option<&Value> {
        match self {
            Message::Request(r) => r.params.as_ref(),
            Message::Notification(n) => n.params.as_ref(),
            Message::Response(_) => None,
        }
    }

    /// The subject of the call that `Mcp-Name` mirrors: the tool or prompt name, or the
    /// resource URI.
    pub fn subject(&self) -> Option<&str> {
        call_subject(self.method()?, self.params())
    }

    /// The `inputResponses` a client returns when it retries a multi round-trip request
    /// (2026-07-28), keyed like the server's `inputRequests`.
    pub fn input_responses(&self) -> Option<&Map<String, Value>> {
        self.params()?.get("inputResponses")?.as_object()
    }

    /// `_meta` protocol version carried by a 2026-07-28 (stateless) request.
    pub fn meta_protocol_version(&self) -> Option<&str> {
        self.params()?.get("_meta")?.get(META_PROTOCOL_VERSION)?.as_str()
    }
}

impl Message {
    /// The message as JSON, for the rare places the gateway must re-serialize (id remapping
    /// on a shared stdio child). The result is what the gateway parsed, so nothing can differ.
    pub fn to_value(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("jsonrpc".into(), "2.0".into());
        let (method, params) = match self {
            Message::Request(r) => {
                obj.insert("id".into(), r.id.to_value());
                (Some(&r.method), r.params.as_ref())
            }
            Message::Notification(n) => (Some(&n.method), n.params.as_ref()),
            Message::Response(r) => {
                obj.insert("id".into(), r.id.as_ref().map_or(Value::Null, Id::to_value));
                match &r.outcome {
                    Outcome::Result(v) => obj.insert("result".into(), v.clone()),
                    Outcome::Error(e) => obj.insert("error".into(), e.to_value()),
                };
                (None, None)
            }
        };
        if let Some(method) = method {
            obj.insert("method".into(), method.clone().into());
        }
        if let Some(params) = params {
            obj.insert("params".into(), params.clone());
        }
        Value::Object(obj)
    }
}

impl ErrorObject {
    pub fn to_value(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("code".into(), self.code.into());
        obj.insert("message".into(), self.message.clone().into());
        if let Some(data) = &self.data {
            obj.insert("data".into(), data.clone());
        }
        Value::Object(obj)
    }
}

impl Request {
    /// See [`Message::subject`].
    pub fn subject(&self) -> Option<&str> {
        call_subject(&self.method, self.params.as_ref())
    }
}

fn call_subject<'a>(method: &str, params: Option<&'a Value>) -> Option<&'a str> {
    let key = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => "uri",
        _ => return None,
    };
    params?.get(key)?.as_str()
}

impl Response {
    pub fn result(&self) -> Option<&Value> {
        match &self.outcome {
            Outcome::Result(v) => Some(v),
            Outcome::Error(_) => None,
        }
    }

    /// The `inputRequests` of a 2026-07-28 multi round-trip interim result.
    pub fn input_requests(&self) -> Option<&Map<String, Value>> {
        let result = self.result()?;
        if result.get("resultType")?.as_str()? != "input_required" {
            return None;
        }
        result.get("inputRequests")?.as_object()
    }
}

pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// Every method name defined by any MCP revision from 2024-11-05 to 2026-07-28.
pub const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "subscriptions/listen",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "sampling/createMessage",
    "elicitation/create",
    "roots/list",
    "tasks/get",
    "tasks/result",
    "tasks/list",
    "tasks/cancel",
    "tasks/update",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/message",
    "notifications/resources/updated",
    "notifications/resources/list_changed",
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "notifications/roots/list_changed",
    "notifications/elicitation/complete",
    "notifications/subscriptions/acknowledged",
    "notifications/tasks/status",
];

/// Why a body is not an acceptable JSON-RPC payload. `code` is the JSON-RPC error to answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub code: i64,
    pub message: String,
    /// The request id, when the body was readable enough to find one.
    pub id: Option<Id>,
    /// The message nests deeper than the limit (a limit, rather than a malformed message).
    pub depth_exceeded: bool,
}

impl ParseError {
    fn invalid(message: impl Into<String>) -> Self {
        ParseError { code: code::INVALID_REQUEST, message: message.into(), id: None, depth_exceeded: false }
    }
}

/// Parses one HTTP body or SSE event payload strictly.
pub fn parse(bytes: &[u8], max_depth: usize) -> Result<Payload, ParseError> {
    let value = parse_value(bytes, max_depth)?;
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ParseError::invalid("empty batch"));
            }
            let messages: Vec<Message> = items.into_iter().map(message_from_value).collect::<Result<_, _>>()?;
            // Two requests with one id make their answers ambiguous: a response could be
            // judged as the answer to the other call.
            let mut ids = std::collections::HashSet::new();
            if let Some(dup) = messages
                .iter()
                .filter_map(|m| match m {
                    Message::Request(r) => Some(&r.id),
                    _ => None,
                })
                .find(|id| !ids.insert(*id))
            {
                return Err(ParseError {
                    id: Some(dup.clone()),
                    ..ParseError::invalid(format!("duplicate request id {dup} in a batch"))
                });
            }
            Ok(Payload::Batch(messages))
        }
        other => message_from_value(other).map(Payload::Single),
    }
}

/// Parses JSON, rejecting duplicate keys and nesting deeper than `max_depth`.
pub fn parse_value(bytes: &[u8], max_depth: usize) -> Result<Value, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue { depth_left: max_depth }.deserialize(&mut de).and_then(|v| de.end().map(|_| v));
    value.map_err(|e| {
        let depth_exceeded = e.to_string().starts_with(NESTING_LIMIT);
        let code = match e.classify() {
            serde_json::error::Category::Data => code::INVALID_REQUEST,
            _ => code::PARSE_ERROR,
        };
        let message = match code {
            code::PARSE_ERROR => format!("Parse error: {e}"),
            _ => format!("Invalid Request: {e}"),
        };
        ParseError { code, message, id: None, depth_exceeded }
    })
}

fn message_from_value(value: Value) -> Result<Message, ParseError> {
    let Value::Object(mut obj) = value else {
        return Err(ParseError::invalid("a JSON-RPC message must be an object"));
    };
    let id = match obj.remove("id") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Number(n)) => Some(Some(Id::Number(n))),
        Some(Value::String(s)) => Some(Some(Id::String(s))),
        Some(_) => return Err(ParseError::invalid("`id` must be a string or a number")),
    };
    let known_id = id.clone().flatten();
    let fail = |message: &str| ParseError { id: known_id.clone(), ..ParseError::invalid(message) };
    if obj.remove("jsonrpc") != Some(Value::String("2.0".into())) {
        return Err(fail("`jsonrpc` must be \"2.0\""));
    }
    let method = obj.remove("method");
    let params = obj.remove("params");
    let result = obj.remove("result");
    let error = obj.remove("error");
    if let Some(extra) = obj.keys().next() {
        return Err(fail(&format!("unexpected member `{extra}`")));
    }
    if let Some(p) = &params {
        if !p.is_object() && !p.is_array() {
            return Err(fail("`params` must be an object or an array"));
        }
    }
    match (method, result, error) {
        (Some(Value::String(method)), None, None) => {
            check_method_name(&method).map_err(|m| fail(&m))?;
            match id {
                None => Ok(Message::Notification(Notification { method, params })),
                Some(None) => Err(fail("a request's `id` must not be null")),
                Some(Some(id)) => Ok(Message::Request(Request { id, method, params })),
            }
        }
        (Some(_), None, None) => Err(fail("`method` must be a string")),
        (None, Some(result), None) if params.is_none() => {
            let Some(id) = id else { return Err(fail("a response needs an `id`")) };
            Ok(Message::Response(Response { id, outcome: Outcome::Result(result) }))
        }
        (None, None, Some(error)) if params.is_none() => {
            let Some(id) = id else { return Err(fail("a response needs an `id`")) };
            let error = error_object(error).map_err(|m| fail(&m))?;
            Ok(Message::Response(Response { id, outcome: Outcome::Error(error) }))
        }
        _ => Err(fail("a message has exactly one of `method`, `result` or `error`")),
    }
}

fn error_object(value: Value) -> Result<ErrorObject, String> {
    let Value::Object(mut obj) = value else { return Err("`error` must be an object".into()) };
    let code = obj.remove("code").and_then(|c| c.as_i64()).ok_or("`error.code` must be an integer")?;
    let message = match obj.remove("message") {
        Some(Value::String(s)) => s,
        _ => return Err("`error.message` must be a string".into()),
    };
    Ok(ErrorObject { code, message, data: obj.remove("data") })
}

/// Rejects method names crafted to look like an MCP method to one reader and not another.
fn check_method_name(method: &str) -> Result<(), String> {
    if method.is_empty() {
        return Err("`method` is empty".into());
    }
    if method.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`method` {method:?} contains whitespace or control characters"));
    }
    if !KNOWN_METHODS.contains(&method) {
        if let Some(known) = KNOWN_METHODS.iter().find(|k| k.eq_ignore_ascii_case(method)) {
            return Err(format!("`method` {method:?} differs from MCP method {known:?} only by case"));
        }
    }
    Ok(())
}

const NESTING_LIMIT: &str = "JSON nesting exceeds the gateway's limit";

/// Builds a `Value` like serde_json does, but refuses duplicate keys and deep nesting.
struct StrictValue {
    depth_left: usize,
}

impl StrictValue {
    fn nested<E: serde::de::Error>(&self) -> Result<StrictValue, E> {
        match self.depth_left.checked_sub(1) {
            Some(depth_left) => Ok(StrictValue { depth_left }),
            None => Err(E::custom(NESTING_LIMIT)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.nested()?)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut obj = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.nested()?)?;
            if obj.insert(key.clone(), value).is_some() {
                return Err(A::Error::custom(format!("duplicate key `{key}`")));
            }
        }
        Ok(Value::Object(obj))
    }
}

/// Serializes a JSON-RPC error response, e.g. for a failure the gateway answers itself.
pub fn error_response(id: Option<&Id>, code: i64, message: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id.map_or(Value::Null, Id::to_value),
        "error": { "code": code, "message": message },
    });
    serde_json::to_vec(&body).expect("a JSON value always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Message {
        match parse(text.as_bytes(), 64).unwrap() {
            Payload::Single(m) => m,
            Payload::Batch(_) => panic!("expected one message"),
        }
    }

    fn err(text: &str) -> ParseError {
        parse(text.as_bytes(), 64).unwrap_err()
    }

    #[test]
    fn classifies_the_three_kinds() {
        let r = one(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}"#);
        assert_eq!(r.method(), Some("tools/call"));
        assert_eq!(r.subject(), Some("echo"));
        assert!(matches!(r, Message::Request(Request { id: Id::Number(_), .. })));
        assert!(matches!(one(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#), Message::Notification(_)));
        assert!(matches!(one(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#), Message::Response(_)));
        let e = one(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#);
        assert!(matches!(e, Message::Response(Response { id: None, outcome: Outcome::Error(_) })));
    }

    #[test]
    fn duplicate_keys_are_rejected_at_any_depth() {
        let e = err(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping"}"#);
        assert_eq!(e.code, code::INVALID_REQUEST);
        assert!(e.message.contains("duplicate key `method`"), "{}", e.message);
        let e = err(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#);
        assert!(e.message.contains("duplicate key `name`"));
        // The same key in sibling objects is fine.
        one(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"a":{"x":1},"b":{"x":2}}}"#);
    }

    #[test]
    fn escaped_spelling_of_a_duplicate_is_still_a_duplicate() {
        let e = err(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","\u006dethod":"ping"}"#);
        assert!(e.message.contains("duplicate key"));
    }

    #[test]
    fn unicode_escapes_decode_before_classification() {
        let m = one(r#"{"jsonrpc":"2.0","id":1,"method":"tools\u002fcall","params":{"name":"ech\u006f"}}"#);
        assert_eq!(m.method(), Some("tools/call"));
        assert_eq!(m.subject(), Some("echo"));
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":1,"method":"\ud800"}"#).code, code::PARSE_ERROR);
    }

    #[test]
    fn case_and_whitespace_games_on_methods_are_rejected() {
        for m in ["Tools/Call", "TOOLS/CALL", " tools/call", "tools/call\n", "tools/call\u{0}"] {
            let text = serde_json::json!({"jsonrpc":"2.0","id":1,"method":m}).to_string();
            assert_eq!(err(&text).code, code::INVALID_REQUEST, "{m:?}");
            assert_eq!(err(&text).id, Some(Id::Number(1.into())));
        }
        // Custom methods that are not case variants of MCP's pass.
        assert_eq!(one(r#"{"jsonrpc":"2.0","id":1,"method":"x-vendor/do"}"#).method(), Some("x-vendor/do"));
    }

    #[test]
    fn depth_limit_is_enforced() {
        let deep = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{}{}}}"#, "[".repeat(10), "]".repeat(10));
        assert!(parse(deep.as_bytes(), 12).is_ok());
        let e = parse(deep.as_bytes(), 8).unwrap_err();
        assert_eq!(e.code, code::INVALID_REQUEST);
        assert!(e.depth_exceeded);
        assert!(!err(r#"{"a":1,"a":2}"#).depth_exceeded);
        assert!(e.message.contains("nesting"));
    }

    #[test]
    fn malformed_structure_is_rejected_with_the_id_when_known() {
        assert_eq!(err("{").code, code::PARSE_ERROR);
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":1,"method":"x"} trailing"#).code, code::PARSE_ERROR);
        assert_eq!(err(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#).id, Some(Id::Number(1.into())));
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#).code, code::INVALID_REQUEST);
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#).code, code::INVALID_REQUEST);
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":1,"method":"x","result":{}}"#).code, code::INVALID_REQUEST);
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":"s"}"#).code, code::INVALID_REQUEST);
        assert_eq!(err(r#"{"jsonrpc":"2.0","id":1,"method":"x","extra":1}"#).code, code::INVALID_REQUEST);
        assert_eq!(err("[]").code, code::INVALID_REQUEST);
        assert_eq!(err("42").code, code::INVALID_REQUEST);
    }

    #[test]
    fn batches_expose_every_message() {
        let p = parse(
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rm"}}]"#,
            64,
        )
        .unwrap();
        assert_eq!(p.messages().len(), 2);
        assert_eq!(p.messages()[1].subject(), Some("rm"));
        assert_eq!(p.sole_request_id(), None);
        // Requests sharing an id in one batch are refused: their answers would be ambiguous.
        let dup =
            parse(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":1,"method":"tools/call"}]"#, 64);
        assert!(dup.unwrap_err().message.contains("duplicate request id"));
        // The near miss: a notification and a response may share nothing with requests' ids.
        assert!(
            parse(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":1,"result":{}}]"#, 64).is_ok()
        );
        // One bad member rejects the whole batch: nothing in it is forwarded unevaluated.
        assert!(parse(
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"Tools/call"}]"#,
            64
        )
        .is_err());
    }

    #[test]
    fn input_required_results_expose_their_requests() {
        let m = one(
            r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required","inputRequests":{"k":{"method":"elicitation/create","params":{}}},"requestState":"s"}}"#,
        );
        let Message::Response(r) = m else { panic!() };
        assert!(r.input_requests().unwrap().contains_key("k"));
        let retry = one(
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t","inputResponses":{"k":{"action":"accept"}},"requestState":"s"}}"#,
        );
        assert_eq!(retry.input_responses().unwrap()["k"]["action"], "accept");
        let complete = one(r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","inputRequests":{}}}"#);
        let Message::Response(r) = complete else { panic!() };
        assert!(r.input_requests().is_none(), "only input_required results carry input requests");
    }

    #[test]
    fn to_value_round_trips_every_kind() {
        for text in [
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}"#,
            r#"{"jsonrpc":"2.0","id":"a","result":{"x":[1,2]}}"#,
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no","data":{"k":1}}}"#,
        ] {
            let m = one(text);
            let again = serde_json::to_vec(&m.to_value()).unwrap();
            assert_eq!(parse(&again, 64).unwrap(), Payload::Single(m));
        }
    }

    #[test]
    fn error_response_echoes_the_id() {
        let body = error_response(Some(&Id::String("x".into())), code::UPSTREAM_TIMEOUT, "slow");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["id"], "x");
        assert_eq!(v["error"]["code"], code::UPSTREAM_TIMEOUT);
    }
}
