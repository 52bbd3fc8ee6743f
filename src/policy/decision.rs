//! The decision document a bundle's entrypoint (`data.forge.decision`) produces.
//!
//! ```json
//! {"allow": false, "reason": "tool `rm` is not allowed for role viewer", "code": "tool_not_allowed",
//!  "obligations": {"redact": [], "hide_tools": [], "require_approval": {"required": false, "reason": ""},
//!                  "rate_limit": {"key": "alice|search", "limit": 60, "period_seconds": 60},
//!                  "annotations": {}}}
//! ```
//!
//! Anything else — a missing `allow`, an unknown field (a misspelt obligation would
//! otherwise be silently ignored), a pointer that is not a JSON pointer — is malformed,
//! and a malformed decision denies. `policies/README.md` documents the document.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::input::Span;

/// What the policy decided about one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub allow: bool,
    /// Shown to the caller when the message is refused.
    #[serde(default)]
    pub reason: String,
    /// Machine-readable: metrics, logs and evidence group decisions by it.
    #[serde(default)]
    pub code: String,
    /// On a refusal: OAuth scopes that would allow the call. A caller with a token is then
    /// answered `403` with an RFC 6750 `insufficient_scope` challenge naming them, so its
    /// client can ask for a token with more scope (step-up) instead of giving up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_scopes: Vec<String>,
    #[serde(default)]
    pub obligations: Obligations,
}

/// What the gateway must do to a message it lets through.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Obligations {
    /// Parts of the message to replace before forwarding.
    pub redact: Vec<Redaction>,
    /// Tools to remove from a `tools/list` result.
    pub hide_tools: Vec<String>,
    pub require_approval: Approval,
    /// A GCRA limit on messages sharing `key` (optional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Free-form evidence: recorded with the decision, never acted on.
    pub annotations: Map<String, Value>,
}

/// Replace the string at `pointer` (or only its `span`) with `replacement`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    /// RFC 6901 pointer into the JSON-RPC message, e.g. `/result/content/0/text`.
    pub pointer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    pub replacement: String,
}

/// A human must approve the message before it is forwarded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Approval {
    pub required: bool,
    pub reason: String,
}

/// At most `limit` messages with this `key` per `period_seconds`, all of which may come in
/// one burst. The key is the policy's choice, e.g. caller and tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub key: String,
    pub limit: u64,
    pub period_seconds: u64,
}

/// Why a message is refused: what the caller is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyReason {
    pub code: String,
    pub message: String,
}

pub const CODE_DENIED: &str = "denied";

impl Decision {
    /// Reads the entrypoint's value, checking what serde alone cannot.
    pub fn from_json(value: Value) -> Result<Decision, String> {
        let decision: Decision = serde_json::from_value(value).map_err(|e| e.to_string())?;
        for redaction in &decision.obligations.redact {
            if !redaction.pointer.is_empty() && !redaction.pointer.starts_with('/') {
                return Err(format!("redact pointer `{}` is not a JSON pointer", redaction.pointer));
            }
            if let Some(span) = redaction.span {
                if span.start > span.end {
                    return Err(format!("redact span {}..{} ends before it starts", span.start, span.end));
                }
            }
        }
        if let Some(limit) = &decision.obligations.rate_limit {
            if limit.key.is_empty() || limit.limit == 0 || limit.period_seconds == 0 {
                return Err("rate_limit needs a non-empty key and a limit and period_seconds above zero".into());
            }
        }
        Ok(decision)
    }

    /// Why the message must be refused, if it must. A required approval is not a refusal:
    /// the gateway holds the message for an approver (src/admission.rs).
    pub fn deny_reason(&self) -> Option<DenyReason> {
        if self.allow {
            return None;
        }
        let code = if self.code.is_empty() { CODE_DENIED } else { &self.code };
        let message = if self.reason.is_empty() { "denied by policy" } else { &self.reason };
        Some(DenyReason { code: code.to_string(), message: message.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_minimal_allow_has_empty_obligations() {
        let d = Decision::from_json(json!({"allow": true})).unwrap();
        assert!(d.allow);
        assert_eq!(d.obligations, Obligations::default());
        assert_eq!(d.deny_reason(), None);
    }

    #[test]
    fn a_full_decision_round_trips() {
        let v = json!({
            "allow": true, "reason": "", "code": "allowed",
            "obligations": {
                "redact": [{"pointer": "/result/content/0/text", "span": {"start": 3, "end": 9}, "replacement": "[email]"}],
                "hide_tools": ["rm"],
                "require_approval": {"required": false, "reason": ""},
                "annotations": {"rules": ["a"]}
            }
        });
        let d = Decision::from_json(v.clone()).unwrap();
        assert_eq!(d.obligations.redact[0].span, Some(Span { start: 3, end: 9 }));
        assert_eq!(serde_json::to_value(&d).unwrap(), v);
    }

    #[test]
    fn deny_reason_uses_the_policy_text_or_a_default() {
        let d = Decision::from_json(json!({"allow": false, "reason": "no", "code": "tool_not_allowed"})).unwrap();
        assert_eq!(d.deny_reason(), Some(DenyReason { code: "tool_not_allowed".into(), message: "no".into() }));
        let bare = Decision::from_json(json!({"allow": false})).unwrap();
        assert_eq!(bare.deny_reason(), Some(DenyReason { code: "denied".into(), message: "denied by policy".into() }));
    }

    #[test]
    fn a_required_approval_is_an_obligation_not_a_refusal() {
        let d = Decision::from_json(
            json!({"allow": true, "obligations": {"require_approval": {"required": true, "reason": "deletes data"}}}),
        )
        .unwrap();
        assert_eq!(d.deny_reason(), None);
        assert!(d.obligations.require_approval.required);
    }

    #[test]
    fn a_rate_limit_is_read_and_checked() {
        let limit = json!({"key": "alice|search", "limit": 60, "period_seconds": 60});
        let d = Decision::from_json(json!({"allow": true, "obligations": {"rate_limit": limit}})).unwrap();
        assert_eq!(
            d.obligations.rate_limit,
            Some(RateLimit { key: "alice|search".into(), limit: 60, period_seconds: 60 })
        );
        for bad in [
            json!({"key": "", "limit": 1, "period_seconds": 1}),
            json!({"key": "k", "limit": 0, "period_seconds": 1}),
            json!({"key": "k", "limit": 1, "period_seconds": 0}),
            json!({"key": "k", "limit": 1, "period": "1m"}),
        ] {
            assert!(Decision::from_json(json!({"allow": true, "obligations": {"rate_limit": bad}})).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_documents_are_rejected() {
        for bad in [
            json!(true),
            json!({"reason": "missing allow"}),
            json!({"allow": "yes"}),
            json!({"allow": true, "obligation": {}}),
            json!({"allow": true, "obligations": {"hide_tool": ["x"]}}),
            json!({"allow": true, "obligations": {"redact": [{"pointer": "result.text", "replacement": "x"}]}}),
            json!({"allow": true, "obligations": {"redact": [{"pointer": "/a", "span": {"start": 5, "end": 1}, "replacement": "x"}]}}),
        ] {
            assert!(Decision::from_json(bad.clone()).is_err(), "{bad}");
        }
    }
}
