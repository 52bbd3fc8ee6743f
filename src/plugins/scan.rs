//! What each hook shows a detector: a request's `params` or a response's `result`, whole,
//! so pointers in findings are relative to that (`/arguments/query`, `/content/0/text`,
//! `/tools/3/description`).

use serde_json::Value;

use super::payload::Part;
use super::Hook;
use crate::mcp::jsonrpc::{Message, Request};

/// One message as the detectors of one hook see it.
#[derive(Debug, Clone, Copy)]
pub struct Scan<'a> {
    pub hook: Hook,
    /// The MCP method of the message, or of the request a response answers.
    pub method: &'a str,
    pub tool: Option<&'a str>,
    /// The request's params or the response's result: a detector's payload.
    pub part: Part<'a>,
}

impl<'a> Scan<'a> {
    /// A client's request whose params a detector must see: `tools/call` and `prompts/get`
    /// (their arguments), and any retried multi round-trip request (its `inputResponses`).
    pub fn client(message: &'a Message) -> Option<Scan<'a>> {
        let Message::Request(request) = message else { return None };
        let params = request.params.as_ref()?;
        let inspected =
            matches!(request.method.as_str(), "tools/call" | "prompts/get") || params.get("inputResponses").is_some();
        let tool = (request.method == "tools/call").then(|| message.subject()).flatten();
        inspected.then_some(Scan {
            hook: Hook::Request,
            method: &request.method,
            tool,
            part: Part { at: "/params", value: params },
        })
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
                let hook = match request.method.as_str() {
                    "tools/call" | "resources/read" | "prompts/get" => Hook::Response,
                    "tools/list" | "server/discover" => Hook::ToolList,
                    _ => return None,
                };
                Some(Scan { hook, method: &request.method, tool, part: Part { at: "/result", value: result } })
            }
            Message::Request(request)
                if matches!(request.method.as_str(), "sampling/createMessage" | "elicitation/create") =>
            {
                let params: &Value = request.params.as_ref()?;
                Some(Scan {
                    hook: Hook::Response,
                    method: &request.method,
                    tool: None,
                    part: Part { at: "/params", value: params },
                })
            }
            _ => None,
        }
    }
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

    fn at(scan: Option<Scan<'_>>) -> Option<(Hook, &'static str, Option<String>)> {
        scan.map(|s| (s.hook, s.part.at, s.tool.map(str::to_owned)))
    }

    #[test]
    fn client_messages_show_their_arguments_and_input_responses() {
        let call = message(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sh","arguments":{"c":"ls"},"inputResponses":{"k":{}}}}"#,
        );
        assert_eq!(at(Scan::client(&call)), Some((Hook::Request, "/params", Some("sh".into()))));
        let prompt =
            message(r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"a":"b"}}}"#);
        assert_eq!(at(Scan::client(&prompt)), Some((Hook::Request, "/params", None)));
        let retry = message(
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"u","inputResponses":{"k":{}}}}"#,
        );
        assert_eq!(at(Scan::client(&retry)), Some((Hook::Request, "/params", None)));
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
        assert_eq!(at(Scan::server(&result, Some(&call))), Some((Hook::Response, "/result", Some("t".into()))));
        let list = request("tools/list");
        assert_eq!(at(Scan::server(&result, Some(&list))), Some((Hook::ToolList, "/result", None)));
        assert!(Scan::server(&result, Some(&request("ping"))).is_none());
        assert!(Scan::server(&result, None).is_none());
        let sampling =
            message(r#"{"jsonrpc":"2.0","id":"s","method":"sampling/createMessage","params":{"messages":[]}}"#);
        assert_eq!(at(Scan::server(&sampling, None)), Some((Hook::Response, "/params", None)));
    }
}
