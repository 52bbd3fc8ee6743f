//! One evidence record: what the gateway saw, decided and relayed for one exchange.
//!
//! Records are written as JSON lines; the log fills in `seq` and `prev` when it appends,
//! so the chain is assigned in one place, in the order records reach the disk.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::identity::Principal;
use crate::policy::{Direction, Evaluation, MaskStyle, PolicyError, PolicyInput};

/// The record format; bumped when a field changes meaning.
pub const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub v: u32,
    /// Position in the log, from 0; the record's Merkle leaf index.
    pub seq: u64,
    /// SHA-256 (hex) of the previous record's line; 64 zeros for the first record.
    pub prev: String,
    pub id: String,
    /// When the gateway received the message and when it relayed the answer (RFC 3339).
    pub received: String,
    pub completed: String,
    /// `completed` as Unix milliseconds, for range queries.
    pub time_ms: u64,
    pub gateway: GatewayIdentity,
    pub direction: Direction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<PrincipalRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    pub method: String,
    /// The tool, resource or prompt addressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// SHA-256 (hex) of the message bytes as forwarded to the upstream (for a
    /// server→client request: as relayed to the client).
    pub request_sha256: String,
    /// For a request refused before its body was read whole (too large, too slow, aborted by
    /// the client): how many bytes of it had arrived. `request_sha256` is empty then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_bytes: Option<u64>,
    /// SHA-256 (hex) of the answer as relayed to the client; absent when there was none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_sha256: Option<String>,
    /// `allow`, `deny` (refused or withheld by policy), `modify` (relayed rewritten),
    /// `refused` (before policy) or `error` (the upstream failed).
    pub decision: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why a `refused` or `error` exchange was answered by the gateway itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every policy evaluation of this exchange, in order.
    pub decisions: Vec<DecisionEntry>,
    /// Detector plugins that ran, by digest, and their findings (fingerprints only).
    pub plugins: Vec<PluginRun>,
    pub pin_status: String,
    /// The human approval the record concerns, if one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalNote>,
}

/// A human approval (docs/approvals.md) in evidence. On a call's record: the approval it was
/// held for (`pending`), refused by (`denied`) or went through with (`used`). On an
/// approval's own record: what happened to it (`requested`, `approved`, `denied`, `used`,
/// `expired`) and the call it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalNote {
    pub id: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<ApprovalBinding>,
}

/// What an approval is bound to, and who decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalBinding {
    /// The caller's principal label (`subject@issuer`, or the certificate identity).
    pub caller: String,
    pub tool: String,
    pub arguments_sha256: String,
    pub bundle_revision: String,
    /// The policy's reason for asking.
    pub reason: String,
    pub expires_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The gateway that wrote a record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayIdentity {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// Who called: the verified token's issuer and subject, or the client certificate's
/// identity. Never a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

impl PrincipalRef {
    pub fn of(principal: &Principal) -> Option<PrincipalRef> {
        if principal.is_anonymous() {
            return None;
        }
        let token = principal.token.as_ref();
        Some(PrincipalRef {
            issuer: token.map(|t| t.issuer.clone()),
            subject: token.map(|t| t.subject.clone()),
            certificate: principal
                .certificate
                .as_ref()
                .map(|c| c.spiffe_id.clone().unwrap_or_else(|| c.subject.clone())),
        })
    }
}

/// One policy evaluation: the bundle that made it, what it decided, and the (masked) input
/// it decided on, so `forge evidence replay` can ask another bundle the same question.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionEntry {
    pub direction: Direction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_revision: Option<String>,
    /// The signature the bundle was verified against at load; absent in development mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_signature: Option<BundleSignature>,
    /// The decision document (allow, reason, code, obligations); absent when evaluation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub enforced: bool,
    /// The policy input (masked), as JSON text: written as it was noted, never rebuilt.
    pub input: Box<RawValue>,
    /// The input's masked paths (JSON pointers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked: Vec<String>,
}

/// Which trusted signature vouched for a bundle (see docs/provenance.md).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BundleSignature {
    /// The RFC 7638 key id of the trusted signer.
    pub signer: String,
    /// SHA-256 (hex) of the signed in-toto statement, which names every file's digest.
    pub statement_sha256: String,
    pub signed_at: String,
}

/// One detector plugin's run on a message. Filled in by the plugin host (issue 4); until it
/// lands the list is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginRun {
    pub digest: String,
    /// SHA-256 fingerprints of what the plugin matched: never the matched text.
    pub fingerprints: Vec<String>,
}

/// How policy inputs are masked before they are recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masking {
    pub pointers: Vec<String>,
    pub style: MaskStyle,
}

/// Collects the policy evaluations of one exchange as the pipeline makes them. A trail that
/// is off (evidence disabled) records nothing and costs nothing.
#[derive(Debug)]
pub struct Trail {
    /// Shared by every exchange's trail: one per gateway.
    masking: Option<Arc<Masking>>,
    entries: Mutex<Vec<DecisionEntry>>,
}

impl Trail {
    pub fn new(masking: Option<Arc<Masking>>) -> Trail {
        Trail { masking, entries: Mutex::new(Vec::new()) }
    }

    /// A trail that records nothing.
    pub const fn off() -> Trail {
        Trail { masking: None, entries: Mutex::new(Vec::new()) }
    }

    /// Records one evaluation and the input it was made on. The input is the document the
    /// engine already built (an [`Evaluation`] carries it), masked where it must be and
    /// serialized once, here: the record holds it as JSON text, not as a tree to copy.
    pub fn note(&self, input: &PolicyInput<'_>, direction: Direction, outcome: &Result<Evaluation, PolicyError>) {
        let Some(masking) = &self.masking else { return };
        let document = match outcome {
            Ok(e) => Ok(e.input.clone()),
            Err(_) => input.to_value(),
        };
        let (input, masked) = match document {
            Ok(mut document) => {
                let masked = mask_document(&mut document, &masking.pointers, masking.style);
                (serde_json::value::to_raw_value(&document), masked)
            }
            // The input could not even be built (the evaluation failed on it): say so.
            Err(e) => (serde_json::value::to_raw_value(&format!("the input could not be built: {e}")), Vec::new()),
        };
        let input = input.expect("a policy input serializes");
        let entry = match outcome {
            Ok(e) => DecisionEntry {
                direction,
                decision_id: Some(e.decision_id.clone()),
                bundle_digest: Some(e.bundle_digest.to_string()),
                bundle_revision: Some(e.bundle_revision.to_string()),
                bundle_signature: e.provenance.as_ref().map(|p| BundleSignature {
                    signer: p.signer.clone(),
                    statement_sha256: p.statement_sha256.clone(),
                    signed_at: p.signed_at.clone(),
                }),
                result: serde_json::to_value(&e.decision).ok(),
                error: None,
                enforced: e.enforced,
                input,
                masked,
            },
            Err(error) => DecisionEntry {
                direction,
                decision_id: None,
                bundle_digest: None,
                bundle_revision: None,
                bundle_signature: None,
                result: None,
                error: Some(error.to_string()),
                enforced: true,
                input,
                masked,
            },
        };
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
    }

    /// The evaluations noted so far, leaving the trail empty for the next message.
    pub fn take(&self) -> Vec<DecisionEntry> {
        std::mem::take(&mut *self.entries.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Masks the values at `pointers` (JSON pointers) in a policy input document, as
/// [`crate::policy::mask`] does in a JSON tree; returns the masked paths. Only the objects on
/// a masked path are copied: the rest of the document stays shared with the engine's.
fn mask_document(document: &mut regorus::Value, pointers: &[String], style: MaskStyle) -> Vec<String> {
    let mut masked = Vec::new();
    for pointer in pointers {
        // Look before touching: a mutable walk would copy shared objects on the way.
        if locate(document, pointer).is_none() {
            continue;
        }
        let Some(value) = locate_mut(document, pointer) else { continue };
        let replacement = match style {
            MaskStyle::Redact => "***".to_string(),
            MaskStyle::Sha256 => {
                let mut hasher = Sha256::new();
                serde_json::to_writer(&mut hasher, &*value).expect("a policy input serializes");
                format!("sha256:{}", hex(&hasher.finalize()))
            }
        };
        *value = regorus::Value::from(replacement);
        masked.push(format!("/input{pointer}"));
    }
    masked
}

/// The reference tokens of a JSON pointer (RFC 6901), unescaped.
fn tokens(pointer: &str) -> impl Iterator<Item = Cow<'_, str>> + '_ {
    pointer.split('/').skip(1).map(|t| match t.contains('~') {
        true => Cow::Owned(t.replace("~1", "/").replace("~0", "~")),
        false => Cow::Borrowed(t),
    })
}

fn locate<'v>(mut value: &'v regorus::Value, pointer: &str) -> Option<&'v regorus::Value> {
    if !pointer.starts_with('/') {
        return None;
    }
    for token in tokens(pointer) {
        value = match value {
            regorus::Value::Object(fields) => fields.get(&regorus::Value::from(token.as_ref()))?,
            regorus::Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

fn locate_mut<'v>(mut value: &'v mut regorus::Value, pointer: &str) -> Option<&'v mut regorus::Value> {
    for token in tokens(pointer) {
        value = match value {
            regorus::Value::Object(_) => value.as_object_mut().ok()?.get_mut(&regorus::Value::from(token.as_ref()))?,
            regorus::Value::Array(_) => value.as_array_mut().ok()?.get_mut(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

pub use crate::hex::{hex, sha256_hex};

/// `2026-01-31T12:00:00.123Z`.
pub fn rfc3339(time: SystemTime) -> String {
    crate::policy::rfc3339(time)
}

pub fn unix_ms(time: SystemTime) -> u64 {
    crate::policy::unix_ms(time)
}

/// Reads `2026-01-31T12:00:00Z` (optionally with `.123` milliseconds; UTC only) as Unix ms.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let t = text.trim().strip_suffix('Z').or_else(|| text.trim().strip_suffix('z'))?;
    let (date, time) = t.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut h = hms.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let millis: u64 = format!("{frac:0<3}")[..3].parse().ok()?;
    // Days from the civil date (the inverse of the era arithmetic rfc3339() uses).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days).ok().map(|d| ((d * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_reads_back_what_it_writes() {
        for ms in [0u64, 951_782_400_000, 4_102_444_799_999, 1_796_160_000_123] {
            let text = rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
            assert_eq!(parse_rfc3339(&text), Some(ms), "{text}");
        }
        assert_eq!(parse_rfc3339("2026-12-01T21:00:00Z"), parse_rfc3339("2026-12-01T21:00:00.000Z"));
        assert_eq!(parse_rfc3339("2026-13-01T21:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-12-01T21:00:00+01:00"), None, "only UTC");
    }

    #[test]
    fn masking_the_engine_document_matches_masking_its_json() {
        let text = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"q":["a",{"k":"secret"}]}}}"#;
        let Ok(crate::mcp::jsonrpc::Payload::Single(message)) = crate::mcp::jsonrpc::parse(text.as_bytes(), 64) else {
            panic!("one message")
        };
        let principal = Principal::default();
        let input =
            PolicyInput::for_message(&principal, &message, Direction::ClientToServer, None, Default::default(), None);
        let pointers: Vec<String> =
            ["/message/tool/arguments/q/1", "/message/params", "/message/absent", "/message/tool/name/x", "nopointer"]
                .map(String::from)
                .to_vec();
        for style in [MaskStyle::Sha256, MaskStyle::Redact] {
            let mut tree = input.to_json();
            let expected = crate::policy::mask(&mut tree, &pointers, style);
            let mut document = input.to_value().unwrap();
            let engine_copy = document.clone();
            let masked = mask_document(&mut document, &pointers, style);
            assert_eq!(masked, expected);
            assert_eq!(masked, ["/input/message/tool/arguments/q/1", "/input/message/params"]);
            assert_eq!(serde_json::to_value(&document).unwrap(), tree, "{style:?}");
            assert_eq!(engine_copy, input.to_value().unwrap(), "the engine's document is not changed");
        }
    }

    #[test]
    fn a_trail_records_masked_inputs_and_an_off_trail_nothing() {
        let text = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"q":"secret"}}}"#;
        let Ok(crate::mcp::jsonrpc::Payload::Single(message)) = crate::mcp::jsonrpc::parse(text.as_bytes(), 64) else {
            panic!("one message")
        };
        let principal = Principal::default();
        let input =
            PolicyInput::for_message(&principal, &message, Direction::ClientToServer, None, Default::default(), None);
        let failed = Err(PolicyError::Runtime("boom".into()));
        let masking = Masking { pointers: vec!["/message/tool/arguments".into()], style: MaskStyle::Redact };
        let on = Trail::new(Some(Arc::new(masking)));
        on.note(&input, Direction::ClientToServer, &failed);
        let entries = on.take();
        assert_eq!(entries.len(), 1);
        let recorded: Value = serde_json::from_str(entries[0].input.get()).unwrap();
        assert_eq!(recorded["message"]["tool"]["arguments"], "***");
        assert_eq!(recorded["message"]["tool"]["name"], "t");
        assert_eq!(entries[0].masked, ["/input/message/tool/arguments"]);
        assert!(entries[0].error.as_deref().unwrap().contains("boom") && entries[0].enforced);
        assert!(on.take().is_empty(), "taken once");

        let off = Trail::off();
        off.note(&input, Direction::ClientToServer, &failed);
        assert!(off.take().is_empty());
    }
}
