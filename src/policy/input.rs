//! The input document a policy evaluates (version 1), built from one JSON-RPC message.
//!
//! The document's shape is the contract with policy authors: it is described in
//! `policies/README.md` and `policies/input.schema.json`; keep all three in step. Absent
//! parts are omitted rather than `null`, so a Rego rule that reads one is simply undefined.
//!
//! The document is built straight into regorus values, the form evaluation needs, on every
//! message; its JSON form (decision logs) is derived from that, so the two cannot differ.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::PolicyError;
use crate::identity::Principal;
use crate::mcp::jsonrpc::{Message, Outcome, Request};
use crate::mcp::session::SessionInfo;

/// Bumped when a field changes meaning or disappears; additions keep the version.
pub const INPUT_VERSION: u32 = 1;

/// Everything a policy sees about one message. Build it with [`PolicyInput::for_message`];
/// it serializes (serde) to the documented input document.
#[derive(Debug, Clone)]
pub struct PolicyInput<'a> {
    principal: &'a Principal,
    message: &'a Message,
    direction: Direction,
    session: Option<SessionView>,
    request: RequestView,
    /// The call a response answers, once [`PolicyInput::in_reply_to`] named it.
    answered: Option<&'a Request>,
    tool_definition: Option<&'a Value>,
    pin_status: PinStatus,
    findings: &'a [Finding],
    time: SystemTime,
}

/// Which way a message travels through the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

/// What the gateway knows of a tool definition's pin (SHA-256 of its canonical JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PinStatus {
    /// Not pinned yet, or pinning is not enabled.
    #[default]
    Unknown,
    /// The definition matches its pin.
    Pinned,
    /// The definition differs from what was pinned.
    Changed,
}

/// The session a message belongs to, when the gateway has seen it open.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_info: Option<Value>,
}

impl SessionView {
    pub fn from_info(id: &str, info: &SessionInfo) -> Self {
        SessionView {
            id: Some(id.to_string()),
            protocol_version: info.protocol_version.clone(),
            client_info: info.client_info.clone(),
        }
    }
}

/// The HTTP request a message arrived in: the client's IP and the headers the operator
/// chose to expose (`policy.include_headers`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_address: Option<IpAddr>,
    pub headers: BTreeMap<String, String>,
}

impl RequestView {
    /// Copies the named headers (lower-case names); repeated headers are joined with `, `
    /// as HTTP allows, and values that are not visible ASCII are left out.
    pub fn from_parts(source: Option<IpAddr>, headers: &http::HeaderMap, include: &[String]) -> Self {
        let mut copied = BTreeMap::new();
        for name in include {
            let values: Vec<&str> = headers.get_all(name.as_str()).iter().filter_map(|v| v.to_str().ok()).collect();
            if !values.is_empty() {
                copied.insert(name.clone(), values.join(", "));
            }
        }
        RequestView { source_address: source, headers: copied }
    }
}

/// One detector finding. The schema is fixed now; detectors fill it in later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule_id: String,
    pub category: FindingCategory,
    pub severity: Severity,
    /// From 0.0 (a guess) to 1.0 (certain).
    pub confidence: f64,
    /// RFC 6901 pointer into the JSON-RPC message, e.g. `/result/content/0/text`.
    pub pointer: String,
    /// The matched bytes inside the string at `pointer`, when the finding is a substring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    /// SHA-256 (hex, possibly a prefix) of the matched text: correlates findings without
    /// storing them.
    pub fingerprint: String,
    /// The detector plugin that reported it (`forge` for the gateway's own findings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingCategory {
    Pii,
    Secret,
    CodeExec,
    Poisoning,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// UTF-8 byte offsets, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl<'a> PolicyInput<'a> {
    /// The input for one message. `tool_definition` is the tool object from `tools/list`
    /// for a `tools/call` (or its response), when the gateway has seen one.
    ///
    /// A response does not name its method; call [`PolicyInput::in_reply_to`] with the
    /// request it answers so policy knows what the result is a result of.
    pub fn for_message(
        principal: &'a Principal,
        message: &'a Message,
        direction: Direction,
        session: Option<SessionView>,
        request: RequestView,
        tool_definition: Option<&'a Value>,
    ) -> Self {
        PolicyInput {
            principal,
            message,
            direction,
            session,
            request,
            answered: None,
            tool_definition,
            pin_status: PinStatus::Unknown,
            findings: &[],
            time: SystemTime::now(),
        }
    }

    /// Names the request a response answers: its method, and the tool, resource or prompt
    /// it addressed. `tool_definition` replaces the one given to `for_message`.
    pub fn in_reply_to(mut self, request: &'a Request, tool_definition: Option<&'a Value>) -> Self {
        self.answered = Some(request);
        self.tool_definition = tool_definition;
        self
    }

    /// Detector findings about this message.
    pub fn with_findings(mut self, findings: &'a [Finding]) -> Self {
        self.findings = findings;
        self
    }

    /// The pin status of the called tool's definition (shown only when a tool is called).
    pub fn with_pin_status(mut self, status: PinStatus) -> Self {
        self.pin_status = status;
        self
    }

    /// Evaluates as of `time` instead of now (replaying a recorded decision, tests).
    pub fn at(mut self, time: SystemTime) -> Self {
        self.time = time;
        self
    }

    /// The document as JSON: what the policy sees, and what decision logs record.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("the input document only holds JSON values")
    }

    /// The document as the policy engine reads it.
    pub(crate) fn to_value(&self) -> Result<regorus::Value, PolicyError> {
        let mut doc = Obj::default();
        doc.put("version", u64::from(INPUT_VERSION));
        doc.put("principal", principal_value(self.principal)?);
        doc.put("message", self.message_value()?);
        if let Some(session) = &self.session {
            doc.put("session", json(session)?);
        }
        doc.put("findings", if self.findings.is_empty() { regorus::Value::new_array() } else { json(self.findings)? });
        let mut request = Obj::default();
        if let Some(ip) = self.request.source_address {
            request.put("source_address", ip.to_string());
        }
        let mut headers = Obj::default();
        for (name, value) in &self.request.headers {
            headers.put(name, value.as_str());
        }
        request.put("headers", headers.done());
        doc.put("request", request.done());
        let mut time = Obj::default();
        time.put("rfc3339", rfc3339(self.time));
        time.put("unix_ms", unix_ms(self.time));
        doc.put("time", time.done());
        Ok(doc.done())
    }

    fn message_value(&self) -> Result<regorus::Value, PolicyError> {
        let message = self.message;
        let mut m = Obj::default();
        m.put("direction", self.direction.as_str());
        let kind = match message {
            Message::Request(r) => {
                m.put("id", from_json(&r.id.to_value())?);
                "request"
            }
            Message::Notification(_) => "notification",
            Message::Response(r) => {
                if let Some(id) = &r.id {
                    m.put("id", from_json(&id.to_value())?);
                }
                "response"
            }
        };
        m.put("kind", kind);
        let params = message.params().map(from_json).transpose()?;
        if let Some(map) = message.input_responses() {
            m.put("input_responses", json(map)?);
        }
        // The call the message makes, or the one it answers.
        let (method, call_params) = match (message, self.answered) {
            (Message::Response(_), Some(request)) => (Some(request.method.as_str()), request.params.as_ref()),
            _ => (message.method(), message.params()),
        };
        if let Some(method) = method {
            m.put("method", method);
        }
        let own_params = self.answered.is_none().then_some(params.as_ref()).flatten();
        self.describe_call(&mut m, method, call_params, own_params)?;
        if let Some(params) = params {
            m.put("params", params);
        }
        if let Message::Response(response) = message {
            match &response.outcome {
                Outcome::Result(result) => m.put("result", from_json(result)?),
                Outcome::Error(e) => {
                    let mut error = Obj::default();
                    error.put("code", e.code);
                    error.put("message", e.message.as_str());
                    if let Some(data) = &e.data {
                        error.put("data", from_json(data)?);
                    }
                    m.put("error", error.done());
                }
            }
            if let Some(requests) = response.input_requests() {
                m.put("input_requests", json(requests)?);
            }
        }
        Ok(m.done())
    }

    /// The tool, prompt or resource view of a call. `converted` is the call's params already
    /// converted (when they are this message's own), so arguments are converted once.
    fn describe_call(
        &self,
        m: &mut Obj,
        method: Option<&str>,
        params: Option<&Value>,
        converted: Option<&regorus::Value>,
    ) -> Result<(), PolicyError> {
        let text = |key: &str| params.and_then(|p| p.get(key)).and_then(Value::as_str);
        let arguments = || -> Result<regorus::Value, PolicyError> {
            if let Some(converted) = converted {
                if let Ok(object) = converted.as_object() {
                    return Ok(object
                        .get(&regorus::Value::from("arguments"))
                        .cloned()
                        .unwrap_or_else(regorus::Value::new_object));
                }
            }
            match params.and_then(|p| p.get("arguments")) {
                Some(arguments) => from_json(arguments),
                None => Ok(regorus::Value::new_object()),
            }
        };
        match method {
            Some("tools/call") => {
                if let Some(name) = text("name") {
                    let mut tool = Obj::default();
                    tool.put("name", name);
                    tool.put("arguments", arguments()?);
                    if let Some(definition) = self.tool_definition {
                        tool.put("definition", definition_value(definition)?);
                    }
                    tool.put("pin_status", self.pin_status.as_str());
                    m.put("tool", tool.done());
                }
            }
            Some("prompts/get") => {
                if let Some(name) = text("name") {
                    let mut prompt = Obj::default();
                    prompt.put("name", name);
                    prompt.put("arguments", arguments()?);
                    m.put("prompt", prompt.done());
                }
            }
            Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => {
                if let Some(uri) = text("uri") {
                    let mut resource = Obj::default();
                    resource.put("uri", uri);
                    m.put("resource", resource.done());
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Serialize for PolicyInput<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().map_err(serde::ser::Error::custom)?.serialize(s)
    }
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client_to_server",
            Direction::ServerToClient => "server_to_client",
        }
    }
}

impl PinStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PinStatus::Unknown => "unknown",
            PinStatus::Pinned => "pinned",
            PinStatus::Changed => "changed",
        }
    }
}

/// The principal's part of the input. A request and its result, and the requests of one
/// session, are asked about for the same caller, so each thread keeps the last caller it
/// converted and reuses that value while the caller is equal (a comparison, no allocation).
fn principal_value(principal: &Principal) -> Result<regorus::Value, PolicyError> {
    LAST_PRINCIPAL.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((seen, value)) = last.as_ref() {
            if seen == principal {
                return Ok(value.clone());
            }
        }
        let value = convert_principal(principal)?;
        *last = Some((principal.clone(), value.clone()));
        Ok(value)
    })
}

fn convert_principal(principal: &Principal) -> Result<regorus::Value, PolicyError> {
    let mut p = Obj::default();
    p.put("authenticated", !principal.is_anonymous());
    p.put("anonymous", principal.is_anonymous());
    // Policies iterate these; present and empty keeps such rules false, not undefined.
    let (audience, scopes) = match &principal.token {
        Some(t) => (strings(&t.audience), strings(&t.scopes)),
        None => (regorus::Value::new_array(), regorus::Value::new_array()),
    };
    p.put("audience", audience);
    p.put("scopes", scopes);
    match &principal.token {
        Some(token) => {
            p.put("issuer", token.issuer.as_str());
            p.put("subject", token.subject.as_str());
            p.put("claims", claims_value(&token.claims)?);
        }
        None => p.put("claims", regorus::Value::new_object()),
    }
    if let Some(cert) = &principal.certificate {
        let mut mtls = Obj::default();
        mtls.put("subject", cert.subject.as_str());
        mtls.put("sans", strings(&cert.sans));
        if let Some(spiffe_id) = &cert.spiffe_id {
            mtls.put("spiffe_id", spiffe_id.as_str());
        }
        p.put("mtls", mtls.done());
    }
    Ok(p.done())
}

thread_local! {
    static LAST_PRINCIPAL: RefCell<Option<(Principal, regorus::Value)>> = const { RefCell::new(None) };
}

/// Claims straight from the verified map, without first copying it into a JSON value.
fn claims_value(claims: &serde_json::Map<String, Value>) -> Result<regorus::Value, PolicyError> {
    use serde::de::IntoDeserializer;
    regorus::Value::deserialize(claims.into_deserializer())
        .map_err(|e| PolicyError::Runtime(format!("building the input: {e}")))
}

/// A regorus object under construction.
#[derive(Default)]
struct Obj(BTreeMap<regorus::Value, regorus::Value>);

impl Obj {
    fn put(&mut self, key: &str, value: impl Into<regorus::Value>) {
        self.0.insert(regorus::Value::from(key), value.into());
    }

    fn done(self) -> regorus::Value {
        regorus::Value::from(self.0)
    }
}

fn strings(items: &[String]) -> regorus::Value {
    regorus::Value::from(items.iter().map(|s| regorus::Value::from(s.as_str())).collect::<Vec<_>>())
}

/// Embedded JSON: arguments, claims, results.
fn json<T: Serialize + ?Sized>(value: &T) -> Result<regorus::Value, PolicyError> {
    let json = serde_json::to_value(value).map_err(|e| PolicyError::Runtime(format!("building the input: {e}")))?;
    from_json(&json)
}

/// Distinct tool definitions each thread keeps converted, before it starts over.
const DEFINITIONS_PER_THREAD: usize = 256;

thread_local! {
    /// Where a definition lives → a copy of it and its converted value.
    static DEFINITIONS: RefCell<HashMap<usize, (Value, regorus::Value)>> = RefCell::default();
}

/// A tool's definition comes with every call of the tool and carries its schemas, so
/// converting it can cost more than the rest of the input. The gateway's tool catalog keeps
/// definitions in place, so each thread converts a definition once and finds it again by
/// its address; the copy kept beside it must still be equal, so a definition replaced at
/// the same address is never confused with the old one.
fn definition_value(definition: &Value) -> Result<regorus::Value, PolicyError> {
    let address = definition as *const Value as usize;
    DEFINITIONS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((json, value)) = cache.get(&address) {
            if json == definition {
                return Ok(value.clone());
            }
        }
        let value = from_json(definition)?;
        if cache.len() == DEFINITIONS_PER_THREAD {
            cache.clear();
        }
        cache.insert(address, (definition.clone(), value.clone()));
        Ok(value)
    })
}

fn from_json(value: &Value) -> Result<regorus::Value, PolicyError> {
    regorus::Value::deserialize(value).map_err(|e| PolicyError::Runtime(format!("building the input: {e}")))
}

pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `2026-01-31T12:00:00.123Z`: UTC with milliseconds, as RFC 3339 allows.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let ms = unix_ms(time);
    let (days, rem) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (the well-known era arithmetic:
/// 400-year eras of 146 097 days, years starting in March so leap days fall last).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::TokenIdentity;
    use crate::mcp::jsonrpc::{parse, Payload};
    use crate::server::tls::ClientIdentity;
    use serde_json::json;
    use std::time::Duration;

    fn message(text: &str) -> Message {
        match parse(text.as_bytes(), 64).unwrap() {
            Payload::Single(m) => m,
            Payload::Batch(_) => unreachable!(),
        }
    }

    fn input_json(principal: &Principal, m: &Message, definition: Option<&Value>) -> Value {
        PolicyInput::for_message(principal, m, Direction::ClientToServer, None, RequestView::default(), definition)
            .at(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123))
            .to_json()
    }

    #[test]
    fn a_tool_call_from_an_anonymous_caller() {
        let m = message(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#,
        );
        let definition = json!({"name": "echo", "annotations": {"readOnlyHint": true}});
        let v = input_json(&Principal::default(), &m, Some(&definition));
        assert_eq!(v["version"], 1);
        assert_eq!(
            v["principal"],
            json!({"authenticated": false, "anonymous": true, "audience": [], "scopes": [], "claims": {}})
        );
        assert_eq!(
            v["message"],
            json!({
                "direction": "client_to_server", "kind": "request", "method": "tools/call", "id": 7,
                "params": {"name": "echo", "arguments": {"message": "hi"}},
                "tool": {"name": "echo", "arguments": {"message": "hi"}, "definition": definition, "pin_status": "unknown"},
            })
        );
        assert_eq!(v["findings"], json!([]));
        assert_eq!(v["request"], json!({"headers": {}}));
        assert_eq!(v["time"], json!({"rfc3339": "2023-11-14T22:13:20.123Z", "unix_ms": 1_700_000_000_123u64}));
        assert!(v.get("session").is_none());
    }

    #[test]
    fn a_verified_principal_shows_token_and_certificate() {
        let principal = Principal {
            token: Some(TokenIdentity {
                issuer: "https://idp".into(),
                subject: "alice".into(),
                audience: vec!["forge".into()],
                scopes: vec!["mcp:tools".into()],
                claims: json!({"roles": ["admin"]}).as_object().unwrap().clone(),
            }),
            certificate: Some(ClientIdentity {
                subject: "CN=agent".into(),
                sans: vec!["spiffe://td/agent".into()],
                spiffe_id: Some("spiffe://td/agent".into()),
            }),
        };
        let m = message(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        let v = input_json(&principal, &m, None);
        assert_eq!(v["principal"]["authenticated"], true);
        assert_eq!(v["principal"]["subject"], "alice");
        assert_eq!(v["principal"]["claims"]["roles"][0], "admin");
        assert_eq!(v["principal"]["mtls"]["spiffe_id"], "spiffe://td/agent");
        assert_eq!(v["message"]["kind"], "notification");
        assert!(v["message"].get("id").is_none());
    }

    #[test]
    fn a_response_names_the_call_it_answers() {
        let call = message(
            r#"{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"lookup","arguments":{"q":"x"}}}"#,
        );
        let Message::Request(request) = &call else { unreachable!() };
        let reply = message(r#"{"jsonrpc":"2.0","id":"c1","result":{"content":[{"type":"text","text":"t"}]}}"#);
        let principal = Principal::default();
        let v =
            PolicyInput::for_message(&principal, &reply, Direction::ServerToClient, None, RequestView::default(), None)
                .in_reply_to(request, None)
                .with_pin_status(PinStatus::Changed)
                .to_json();
        assert_eq!(v["message"]["kind"], "response");
        assert_eq!(v["message"]["method"], "tools/call");
        assert_eq!(v["message"]["tool"]["name"], "lookup");
        assert_eq!(v["message"]["tool"]["pin_status"], "changed");
        assert_eq!(v["message"]["result"]["content"][0]["text"], "t");
        assert!(v["message"].get("params").is_none(), "a response has no params of its own");
    }

    #[test]
    fn errors_resources_prompts_and_mrtr_are_visible() {
        let principal = Principal::default();
        let error = message(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad","data":{"k":1}}}"#);
        let v = input_json(&principal, &error, None);
        assert_eq!(v["message"]["error"], json!({"code": -32602, "message": "bad", "data": {"k": 1}}));
        let read = message(r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a"}}"#);
        assert_eq!(input_json(&principal, &read, None)["message"]["resource"]["uri"], "file:///a");
        let prompt = message(r#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"p"}}"#);
        assert_eq!(input_json(&principal, &prompt, None)["message"]["prompt"], json!({"name": "p", "arguments": {}}));
        let interim = message(
            r#"{"jsonrpc":"2.0","id":4,"result":{"resultType":"input_required","inputRequests":{"k":{"method":"elicitation/create"}}}}"#,
        );
        assert_eq!(
            input_json(&principal, &interim, None)["message"]["input_requests"]["k"]["method"],
            "elicitation/create"
        );
        let retry = message(
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"t","inputResponses":{"k":{"action":"accept"}}}}"#,
        );
        assert_eq!(input_json(&principal, &retry, None)["message"]["input_responses"]["k"]["action"], "accept");
    }

    #[test]
    fn findings_session_and_request_parts() {
        let m = message(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
        let findings = [Finding {
            rule_id: "pii.email".into(),
            category: FindingCategory::Pii,
            severity: Severity::Medium,
            confidence: 0.9,
            pointer: "/params/x".into(),
            span: Some(Span { start: 1, end: 4 }),
            fingerprint: "ab".into(),
            plugin: None,
        }];
        let mut headers = http::HeaderMap::new();
        headers.append("user-agent", "a".parse().unwrap());
        headers.append("x-tenant", "t1".parse().unwrap());
        headers.append("x-tenant", "t2".parse().unwrap());
        headers.append("authorization", "Bearer secret".parse().unwrap());
        let include = ["x-tenant".to_string(), "x-absent".to_string()];
        let request = RequestView::from_parts(Some("10.0.0.9".parse().unwrap()), &headers, &include);
        let session =
            SessionView { id: Some("s1".into()), protocol_version: Some("2025-11-25".into()), client_info: None };
        let principal = Principal::default();
        let v = PolicyInput::for_message(&principal, &m, Direction::ClientToServer, Some(session), request, None)
            .with_findings(&findings)
            .to_json();
        assert_eq!(v["findings"][0]["category"], "pii");
        assert_eq!(v["findings"][0]["span"], json!({"start": 1, "end": 4}));
        assert_eq!(v["session"], json!({"id": "s1", "protocol_version": "2025-11-25"}));
        assert_eq!(v["request"], json!({"source_address": "10.0.0.9", "headers": {"x-tenant": "t1, t2"}}));
    }

    #[test]
    fn converted_definitions_are_reused_only_while_unchanged() {
        let mut definition = json!({"name": "t", "annotations": {"destructiveHint": false}});
        assert_eq!(definition_value(&definition).unwrap(), from_json(&definition).unwrap());
        assert_eq!(definition_value(&definition).unwrap(), from_json(&definition).unwrap());
        // Replaced in place, as a catalog refresh might: the old conversion must not be used.
        definition["annotations"]["destructiveHint"] = json!(true);
        assert_eq!(definition_value(&definition).unwrap(), from_json(&definition).unwrap());
        let others: Vec<Value> = (0..=DEFINITIONS_PER_THREAD).map(|i| json!({"name": format!("t{i}")})).collect();
        for other in &others {
            assert_eq!(definition_value(other).unwrap(), from_json(other).unwrap());
        }
        assert!(DEFINITIONS.with(|c| c.borrow().len()) <= DEFINITIONS_PER_THREAD, "the cache stays bounded");
    }

    #[test]
    fn a_reused_principal_value_is_never_another_callers() {
        let caller = |roles: Value| Principal {
            token: Some(TokenIdentity {
                issuer: "https://idp".into(),
                subject: "alice".into(),
                claims: json!({ "roles": roles }).as_object().unwrap().clone(),
                ..Default::default()
            }),
            certificate: None,
        };
        let m = message(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
        let (viewer, admin) = (caller(json!(["viewer"])), caller(json!(["admin"])));
        for principal in [&viewer, &viewer, &admin, &viewer, &Principal::default()] {
            let expected = serde_json::to_value(convert_principal(principal).unwrap()).unwrap();
            assert_eq!(input_json(principal, &m, None)["principal"], expected);
        }
        assert_eq!(input_json(&admin, &m, None)["principal"]["claims"]["roles"], json!(["admin"]));
    }

    #[test]
    fn rfc3339_handles_leap_years_and_the_epoch() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_millis(4_102_444_799_999)), "2099-12-31T23:59:59.999Z");
    }
}
