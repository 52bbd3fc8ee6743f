//! The `approvals:` section.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    /// How long a request waits for a decision before it expires.
    #[serde(deserialize_with = "crate::config::duration")]
    pub pending_ttl: Duration,
    /// How long an approval stays usable once given: the caller must retry within it.
    #[serde(deserialize_with = "crate::config::duration")]
    pub approval_ttl: Duration,
    /// A token whose `scope`/`scp` holds this scope may approve.
    pub approver_scope: String,
    /// A token whose `roles` claim holds this role may approve.
    pub approver_role: String,
    /// The approval page's public base URL, as approvers reach the admin listener. Default:
    /// `http://<admin_listen>`.
    pub page_url: Option<String>,
    /// How long a call from a client that accepts a streaming (SSE) answer is held open
    /// waiting for the decision, before it is answered "pending" like any other. 0: never.
    #[serde(deserialize_with = "crate::config::duration")]
    pub hold_timeout: Duration,
    /// How long finished requests (denied, used, expired) stay listed before they are deleted.
    #[serde(deserialize_with = "crate::config::duration")]
    pub retention: Duration,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            pending_ttl: Duration::from_secs(3600),
            approval_ttl: Duration::from_secs(600),
            approver_scope: "forge:approve".into(),
            approver_role: "approver".into(),
            page_url: None,
            hold_timeout: Duration::from_secs(25),
            retention: Duration::from_secs(24 * 3600),
        }
    }
}

impl ApprovalsConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.pending_ttl.is_zero() {
            return Err(("approvals.pending_ttl", "must be greater than zero".into()));
        }
        if self.approval_ttl.is_zero() {
            return Err(("approvals.approval_ttl", "must be greater than zero".into()));
        }
        if self.approver_scope.is_empty() && self.approver_role.is_empty() {
            return Err((
                "approvals.approver_scope",
                "set approver_scope or approver_role: nobody could approve".into(),
            ));
        }
        if let Some(url) = &self.page_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(("approvals.page_url", "must be an http:// or https:// URL".into()));
            }
        }
        Ok(())
    }
}
