//! Which parts of a message each hook looks at.

use serde_json::Value;

use super::payload::Part;
use super::Hook;
use crate::mcp::jsonrpc::{Message, Request};

/// One message as the detectors of one hook see it.
#[derive(Debug, Clone)]
pub struct Scan<'a> {
    pub hook: Hook,
    /// The MCP method of the message, or of the request a response answers.
    pub method: &'a str,
    pub tool: Option<&'a str>,
    pub parts: Vec<Part<'a>>,
}

impl<'a> Scan<'a> {
    /// A client's message: the arguments of `tools/call` and `prompts/get`, and the
    /// `inputResponses` of a retried multi round-trip request.
    pub fn client(message: &'a Message) -> Option<Scan<'a>> {
        let Message::Request(request) = message else { return None };
        let params = request.params.as_ref()?;
        let mut parts = Vec::new();
        if matches!(request.method.as_str(), "tools/call" | "prompts/get") {
            if let Some(arguments) = params.get("arguments") {
                parts.push(Part { at: "/params/arguments", value: arguments });
            }
        }
        if let Some(responses) = params.get("inputResponses") {
            parts.push(Part { at: "/params/inputResponses", value: responses });
        }
        let tool = (request.method == "tools/call").then(|| message.subject()).flatten();
        non_empty(Scan { hook: Hook::Request, method: &request.method, tool, parts })
    }

    /// A server's message: results of tool calls, resource reads and prompts (response
    /// hook), tool lists (tool-list hook), and the params of sampling and elicitation
    /// requests (response hook). `answered` is the request a response answers.
    pub fn server(message: &'a Message, answered: Option<&'a Request>) -> Option<Scan<'a>> {
        match message {
            Message::Response(response) => {
                let request = answered?;
                let result = response.result()?;
                let tool = (request.method == "tools/call").then(|| request.subject()).flatten();
                let (hook, part) = match request.method.as_str() {
                    "tools/call" | "resources/read" | "prompts/get" => {
                        (Hook::Response, Part { at: "/result", value: result })
                    }
                    "tools/list" | "server/discover" => {
                        (Hook::ToolList, Part { at: "/result/tools", value: result.get("tools")? })
                    }
                    _ => return None,
                };
                non_empty(Scan { hook, method: &request.method, tool, parts: vec![part] })
            }
            Message::Request(request)
                if matches!(request.method.as_str(), "sampling/createMessage" | "elicitation/create") =>
            {
                let params: &Value = request.params.as_ref()?;
                non_empty(Scan {
                    hook: Hook::Response,
                    method: &request.method,
                    tool: None,
                    parts: vec![Part { at: "/params", value: params }],
                })
            }
            _ => None,
        }
    }
}

fn non_empty(scan: Scan<'_>) -> Option<Scan<'_>> {
    (!scan.parts.is_empty()).then_some(scan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc::{parse, Payload};

    fn message(text: &str) -> Message {
        match parse(text.as_bytes(), 64).unwrap() {
            Payload::Single(m) => m,
            Payload::Batch(_) => panic!("one message"),
        }
    }

    fn at(scan: Option<Scan<'_>>) -> Option<(Hook, Vec<&'static str>, Option<String>)> {
        scan.map(|s| (s.hook, s.parts.iter().map(|p| p.at).collect(), s.tool.map(str::to_owned)))
    }

    #[test]
    fn client_messages_show_their_arguments_and_input_responses() {
        let call = message(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sh","arguments":{"c":"ls"},"inputResponses":{"k":{}}}}"#,
        );
        assert_eq!(
            at(Scan::client(&call)),
            Some((Hook::Request, vec!["/params/arguments", "/params/inputResponses"], Some("sh".into())))
        );
        let prompt =
            message(r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"a":"b"}}}"#);
        assert_eq!(at(Scan::client(&prompt)), Some((Hook::Request, vec!["/params/arguments"], None)));
        let list = message(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#);
        assert!(Scan::client(&list).is_none());
    }

    #[test]
    fn server_messages_by_what_they_answer() {
        let result = message(r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"tools":[]}}"#);
        let request = |method: &str| match message(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{"name":"t"}}}}"#
        )) {
            Message::Request(r) => r,
            _ => unreachable!(),
        };
        let call = request("tools/call");
        assert_eq!(at(Scan::server(&result, Some(&call))), Some((Hook::Response, vec!["/result"], Some("t".into()))));
        let list = request("tools/list");
        assert_eq!(at(Scan::server(&result, Some(&list))), Some((Hook::ToolList, vec!["/result/tools"], None)));
        assert!(Scan::server(&result, Some(&request("ping"))).is_none());
        assert!(Scan::server(&result, None).is_none());
        let sampling =
            message(r#"{"jsonrpc":"2.0","id":"s","method":"sampling/createMessage","params":{"messages":[]}}"#);
        assert_eq!(at(Scan::server(&sampling, None)), Some((Hook::Response, vec!["/params"], None)));
    }
}
