//! The in-toto Statement v1 inside every envelope: which files, by SHA-256, and what they are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ArtifactKind, Reason};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// Our predicate types. They identify the predicate's schema (docs/provenance.md); nothing
/// is fetched from them.
pub const BUNDLE_PREDICATE: &str = "https://forge-gateway.dev/attestation/policy-bundle/v1";
pub const PLUGIN_PREDICATE: &str = "https://forge-gateway.dev/attestation/plugin/v1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Predicate,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subject {
    /// The file's path relative to the bundle (or plugin) directory, `/`-separated.
    pub name: String,
    /// `{"sha256": "<hex>"}`; other algorithms may appear and are not relied on.
    pub digest: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Predicate {
    /// `policy-bundle` or `plugin`; must agree with the predicate type.
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// RFC 3339, UTC: when the signer made the statement (the signer's claim).
    pub signed_at: String,
}

pub fn predicate_type(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::PolicyBundle => BUNDLE_PREDICATE,
        ArtifactKind::Plugin => PLUGIN_PREDICATE,
    }
}

impl Statement {
    pub fn new(kind: ArtifactKind, files: &BTreeMap<String, String>, predicate: Predicate) -> Statement {
        Statement {
            statement_type: STATEMENT_TYPE.to_string(),
            subject: files
                .iter()
                .map(|(name, sha256)| Subject {
                    name: name.clone(),
                    digest: BTreeMap::from([("sha256".to_string(), sha256.clone())]),
                })
                .collect(),
            predicate_type: predicate_type(kind).to_string(),
            predicate,
        }
    }

    /// Reads an authenticated payload as a statement about an artifact of `kind`.
    pub fn parse(payload: &[u8], kind: ArtifactKind) -> Result<Statement, (Reason, String)> {
        let malformed = |detail: String| (Reason::MalformedStatement, detail);
        let statement: Statement =
            serde_json::from_slice(payload).map_err(|e| malformed(format!("not an in-toto Statement: {e}")))?;
        if statement.statement_type != STATEMENT_TYPE {
            return Err(malformed(format!("_type is {:?}, expected {STATEMENT_TYPE:?}", statement.statement_type)));
        }
        let expected = predicate_type(kind);
        if statement.predicate_type != expected || statement.predicate.kind != kind.as_str() {
            return Err((
                Reason::WrongPredicateType,
                format!("the signature is for a {:?}, not a {}", statement.predicate_type, kind.as_str()),
            ));
        }
        Ok(statement)
    }

    /// The signed files: name → SHA-256 hex. A name listed twice, or without a SHA-256, is malformed.
    pub fn files(&self) -> Result<BTreeMap<String, String>, (Reason, String)> {
        let mut files = BTreeMap::new();
        for subject in &self.subject {
            let Some(sha256) = subject.digest.get("sha256") else {
                return Err((Reason::MalformedStatement, format!("subject {:?} has no sha256 digest", subject.name)));
            };
            if files.insert(subject.name.clone(), sha256.to_ascii_lowercase()).is_some() {
                return Err((Reason::MalformedStatement, format!("subject {:?} is listed twice", subject.name)));
            }
        }
        Ok(files)
    }
}

/// Compares the signed files with those found; the first difference is the reason.
pub fn compare(signed: &BTreeMap<String, String>, found: &BTreeMap<String, String>) -> Result<(), (Reason, String)> {
    for (name, digest) in found {
        if let Some(expected) = signed.get(name).filter(|expected| *expected != digest) {
            return Err((Reason::FileChanged, format!("{name}: sha256 {digest} is not the signed {expected}")));
        }
    }
    let added: Vec<&String> = found.keys().filter(|name| !signed.contains_key(*name)).collect();
    let removed: Vec<&String> = signed.keys().filter(|name| !found.contains_key(*name)).collect();
    for new in &added {
        if let Some(old) = removed.iter().find(|old| signed[**old] == found[*new]) {
            return Err((Reason::FileRenamed, format!("{old} was renamed to {new}")));
        }
    }
    if let Some(name) = added.first() {
        return Err((Reason::FileAdded, format!("{name} is not covered by the signature")));
    }
    if let Some(name) = removed.first() {
        return Err((Reason::FileRemoved, format!("{name} is signed but missing")));
    }
    Ok(())
}
