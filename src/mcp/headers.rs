//! The 2026-07-28 request metadata headers (`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`,
//! `MCP-Protocol-Version`) checked against the body before anything else sees the request.
//!
//! A header that disagrees with the body is the classic parser-differential: a load balancer
//! or policy routing on the header while the server executes the body. Mismatches are answered
//! with HeaderMismatch (-32020) and never forwarded. The headers are checked whenever they are
//! present, whatever the protocol version; they are *required* from 2026-07-28 on.

use base64::Engine;
use http::HeaderMap;
use serde_json::Value;

use super::jsonrpc::{Message, Payload};
use super::tools::HeaderParam;

pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const METHOD: &str = "mcp-method";
pub const NAME: &str = "mcp-name";
pub const PARAM_PREFIX: &str = "mcp-param-";
pub const SESSION_ID: &str = "mcp-session-id";

/// The first revision whose requests must carry mirrored headers.
pub const FIRST_STATELESS_REVISION: &str = "2026-07-28";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("Header mismatch: {0}")]
pub struct HeaderMismatch(pub String);

/// Whether a protocol version (`YYYY-MM-DD`) is the stateless era or later.
pub fn is_stateless_revision(version: &str) -> bool {
    version >= FIRST_STATELESS_REVISION
}

/// The tool a single `tools/call` payload calls, whose `x-mcp-header` annotations apply.
pub fn called_tool(payload: &Payload) -> Option<&str> {
    match payload {
        Payload::Single(m) if m.method() == Some("tools/call") => m.subject(),
        _ => None,
    }
}

/// Checks the mirrored headers against the payload. `tool_params` are the `x-mcp-header`
/// annotations of the [`called_tool`], as seen in an earlier `tools/list`.
pub fn validate(
    headers: &HeaderMap,
    payload: &Payload,
    tool_params: Option<&[HeaderParam]>,
) -> Result<(), HeaderMismatch> {
    let version = header_text(headers, PROTOCOL_VERSION)?;
    let method_header = header_text(headers, METHOD)?;
    let name_header = header_text(headers, NAME)?.map(decode_sentinel).transpose()?;

    let message = match payload {
        Payload::Single(m) => m,
        Payload::Batch(_) => {
            if method_header.is_some() || name_header.is_some() {
                return Err(HeaderMismatch("Mcp-Method/Mcp-Name cannot describe a batch".into()));
            }
            return Ok(());
        }
    };
    let Some(method) = message.method() else {
        // A client's response to a server request carries no mirrored headers.
        return Ok(());
    };

    let body_version = message.meta_protocol_version();
    if let (Some(h), Some(b)) = (version, body_version) {
        if h != b {
            return Err(HeaderMismatch(format!(
                "MCP-Protocol-Version header value '{h}' does not match body value '{b}'"
            )));
        }
    }
    let stateless = version.or(body_version).is_some_and(is_stateless_revision);
    if stateless && version.is_none() {
        return Err(HeaderMismatch("required header MCP-Protocol-Version is missing".into()));
    }

    match method_header {
        Some(h) if h != method => {
            return Err(HeaderMismatch(format!("Mcp-Method header value '{h}' does not match body value '{method}'")))
        }
        None if stateless && matches!(message, Message::Request(_)) => {
            return Err(HeaderMismatch("required header Mcp-Method is missing".into()))
        }
        _ => {}
    }

    let subject = message.subject();
    let names_a_subject = matches!(method, "tools/call" | "resources/read" | "prompts/get");
    match (&name_header, subject) {
        (Some(h), Some(b)) if h != b => {
            return Err(HeaderMismatch(format!("Mcp-Name header value '{h}' does not match body value '{b}'")))
        }
        (Some(h), None) => {
            return Err(HeaderMismatch(format!("Mcp-Name header '{h}' given but the body names nothing")))
        }
        (None, _) if stateless && names_a_subject => {
            return Err(HeaderMismatch("required header Mcp-Name is missing".into()))
        }
        _ => {}
    }

    if let Some(params) = tool_params {
        let arguments = message.params().and_then(|p| p.get("arguments"));
        validate_params(headers, params, arguments)?;
    }
    Ok(())
}

fn validate_params(
    headers: &HeaderMap,
    params: &[HeaderParam],
    arguments: Option<&Value>,
) -> Result<(), HeaderMismatch> {
    for param in params {
        let header = header_text(headers, &param_header_name(param))?.map(decode_sentinel).transpose()?;
        let body = argument(param, arguments).filter(|v| !v.is_null());
        let shown = format!("Mcp-Param-{}", param.header);
        match (header, body) {
            (None, None) => {}
            (Some(h), Some(b)) if header_matches(&h, b) => {}
            (Some(h), Some(b)) => {
                return Err(HeaderMismatch(format!("{shown} header value '{h}' does not match body value {b}")))
            }
            (None, Some(_)) => return Err(HeaderMismatch(format!("required header {shown} is missing"))),
            (Some(_), None) => return Err(HeaderMismatch(format!("{shown} header given but the argument is absent"))),
        }
    }
    Ok(())
}

/// After the gateway rewrote a call's arguments (a redaction), makes each `Mcp-Param-*` header
/// the client sent mirror the forwarded body again, so a value redacted from the body is not
/// still forwarded in a header, and the upstream's own header check still agrees. Headers the
/// client did not send are not added.
pub fn mirror_params(headers: &mut HeaderMap, params: &[HeaderParam], arguments: Option<&Value>) {
    for param in params {
        let Ok(name) = http::HeaderName::from_bytes(param_header_name(param).as_bytes()) else {
            continue;
        };
        if !headers.contains_key(&name) {
            continue;
        }
        match argument(param, arguments).and_then(header_value) {
            Some(value) => {
                headers.insert(name, value);
            }
            None => {
                headers.remove(&name);
            }
        }
    }
}

/// The (lower-case) header that mirrors an annotated parameter.
fn param_header_name(param: &HeaderParam) -> String {
    format!("{PARAM_PREFIX}{}", param.header.to_ascii_lowercase())
}

/// The argument an annotation points at, if the call has it.
fn argument<'a>(param: &HeaderParam, arguments: Option<&'a Value>) -> Option<&'a Value> {
    arguments.and_then(|a| param.path.iter().try_fold(a, |v, key| v.get(key)))
}

/// How a client mirrors a primitive argument: visible ASCII as it is, anything else in the
/// base64 sentinel form. Objects, arrays and null are never mirrored.
fn header_value(body: &Value) -> Option<http::HeaderValue> {
    let text = match body {
        Value::String(s) => {
            let plain = s.bytes().all(|b| (0x20..0x7f).contains(&b)) && s.trim() == s && !s.starts_with("=?base64?");
            if plain {
                s.clone()
            } else {
                format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(s))
            }
        }
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    http::HeaderValue::from_str(&text).ok()
}

fn header_matches(header: &str, body: &Value) -> bool {
    match body {
        Value::String(s) => header == s,
        Value::Bool(b) => header == if *b { "true" } else { "false" },
        Value::Number(n) => match (header.parse::<f64>(), n.as_f64()) {
            (Ok(h), Some(b)) => h == b,
            _ => false,
        },
        _ => false,
    }
}

/// The header's value as text; characters outside visible ASCII, space and tab are a mismatch.
fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, HeaderMismatch> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(HeaderMismatch(format!("header {name} is repeated")));
    }
    let text = value
        .to_str()
        .ok()
        .filter(|t| t.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)))
        .ok_or_else(|| HeaderMismatch(format!("header {name} contains invalid characters")))?;
    Ok(Some(text))
}

/// Decodes the `=?base64?…?=` sentinel form used for values that are not plain ASCII.
pub fn decode_sentinel(value: &str) -> Result<String, HeaderMismatch> {
    let Some(encoded) = value.strip_prefix("=?base64?").and_then(|v| v.strip_suffix("?=")) else {
        return Ok(value.to_string());
    };
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| HeaderMismatch(format!("header value '{value}' is not valid base64 UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc::parse;
    use serde_json::json;

    fn check(headers: &[(&str, &str)], body: &str) -> Result<(), HeaderMismatch> {
        check_with(headers, body, &[])
    }

    fn check_with(headers: &[(&str, &str)], body: &str, params: &[HeaderParam]) -> Result<(), HeaderMismatch> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        let payload = parse(body.as_bytes(), 64).unwrap();
        let tool_params = (called_tool(&payload) == Some("sql")).then_some(params);
        validate(&map, &payload, tool_params)
    }

    fn mirrored(headers: &[(&str, &str)], arguments: Value) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        let params = [
            HeaderParam { header: "Region".into(), path: vec!["region".into()] },
            HeaderParam { header: "Account".into(), path: vec!["account".into()] },
        ];
        mirror_params(&mut map, &params, Some(&arguments));
        map
    }

    #[test]
    fn a_redacted_argument_is_not_left_in_its_header() {
        let map = mirrored(&[("Mcp-Param-Account", "4111111111111111")], json!({"account": "[REDACTED]"}));
        assert_eq!(map["mcp-param-account"], "[REDACTED]");
        let map = mirrored(&[("Mcp-Param-Account", "4111111111111111")], json!({}));
        assert!(map.get("mcp-param-account").is_none());
    }

    #[test]
    fn mirrored_headers_stay_as_the_client_sent_them_when_nothing_changed() {
        let map = mirrored(&[("Mcp-Param-Region", "us-west1")], json!({"region": "us-west1", "account": "x"}));
        assert_eq!(map["mcp-param-region"], "us-west1");
        assert!(map.get("mcp-param-account").is_none(), "a header the client did not send is not added");
    }

    #[test]
    fn rewritten_headers_pass_the_gateways_own_check() {
        let arguments = json!({"region": "Zürich ", "account": 42});
        let map = mirrored(&[("Mcp-Param-Region", "x"), ("Mcp-Param-Account", "1")], arguments.clone());
        let params = [
            HeaderParam { header: "Region".into(), path: vec!["region".into()] },
            HeaderParam { header: "Account".into(), path: vec!["account".into()] },
        ];
        assert_eq!(map["mcp-param-region"], "=?base64?WsO8cmljaCA=?=");
        validate_params(&map, &params, Some(&arguments)).unwrap();
    }

    const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    const V: (&str, &str) = ("MCP-Protocol-Version", "2026-07-28");

    #[test]
    fn matching_headers_pass() {
        check(&[V, ("Mcp-Method", "tools/call"), ("Mcp-Name", "get_weather")], CALL).unwrap();
    }

    #[test]
    fn mismatched_method_or_name_is_rejected() {
        let e = check(&[V, ("Mcp-Method", "tools/list"), ("Mcp-Name", "get_weather")], CALL).unwrap_err();
        assert!(e.0.contains("Mcp-Method"), "{e}");
        let e = check(&[V, ("Mcp-Method", "tools/call"), ("Mcp-Name", "Get_Weather")], CALL).unwrap_err();
        assert!(e.0.contains("Mcp-Name"), "{e}");
    }

    #[test]
    fn stateless_requests_must_carry_the_headers() {
        assert!(check(&[V, ("Mcp-Name", "get_weather")], CALL).unwrap_err().0.contains("Mcp-Method is missing"));
        assert!(check(&[V, ("Mcp-Method", "tools/call")], CALL).unwrap_err().0.contains("Mcp-Name is missing"));
        assert!(check(&[("Mcp-Method", "tools/call"), ("Mcp-Name", "get_weather")], CALL)
            .unwrap_err()
            .0
            .contains("MCP-Protocol-Version is missing"));
    }

    #[test]
    fn version_header_must_match_meta() {
        let e = check(&[("MCP-Protocol-Version", "2025-11-25"), ("Mcp-Method", "tools/call")], CALL).unwrap_err();
        assert!(e.0.contains("MCP-Protocol-Version"));
    }

    #[test]
    fn older_revisions_need_no_headers_but_present_ones_must_match() {
        let old = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
        check(&[("MCP-Protocol-Version", "2025-06-18")], old).unwrap();
        check(&[], old).unwrap();
        assert!(check(&[("Mcp-Name", "other")], old).is_err());
        assert!(check(&[("Mcp-Name", "echo")], r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).is_err());
    }

    #[test]
    fn base64_sentinel_names_are_decoded_before_comparing() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"Hello, 世界"}}"#;
        check(&[("Mcp-Name", "=?base64?SGVsbG8sIOS4lueVjA==?=")], body).unwrap();
        assert!(check(&[("Mcp-Name", "=?base64?SGVsbG8=?=")], body).is_err());
        assert!(check(&[("Mcp-Name", "=?base64?***?=")], body).is_err());
    }

    #[test]
    fn batches_cannot_carry_mirrored_headers() {
        let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rm"}}]"#;
        check(&[], batch).unwrap();
        assert!(check(&[("Mcp-Method", "ping")], batch).is_err());
    }

    #[test]
    fn repeated_header_is_rejected() {
        assert!(check(
            &[V, ("Mcp-Method", "tools/call"), ("Mcp-Method", "tools/call"), ("Mcp-Name", "get_weather")],
            CALL
        )
        .unwrap_err()
        .0
        .contains("repeated"));
    }

    #[test]
    fn param_headers_follow_the_tool_annotations() {
        let params = [HeaderParam { header: "Region".into(), path: vec!["region".into()] }];
        let call = |args: &str| {
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"sql","arguments":{args}}}}}"#)
        };
        check_with(&[("Mcp-Param-Region", "us-west1")], &call(r#"{"region":"us-west1"}"#), &params).unwrap();
        assert!(check_with(&[("Mcp-Param-Region", "eu")], &call(r#"{"region":"us-west1"}"#), &params).is_err());
        assert!(check_with(&[], &call(r#"{"region":"us-west1"}"#), &params).is_err());
        check_with(&[], &call(r#"{"region":null}"#), &params).unwrap();
        assert!(check_with(&[("Mcp-Param-Region", "x")], &call("{}"), &params).is_err());
        let n = [HeaderParam { header: "N".into(), path: vec!["n".into()] }];
        check_with(&[("Mcp-Param-N", "42")], &call(r#"{"n":42.0}"#), &n).unwrap();
    }
}
