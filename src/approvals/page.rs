//! The approval page: plain HTML forms, no scripts, no external assets.

use crate::state::{now_ms, Approval, ApprovalStatus};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}\
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}\
pre{background:#f4f4f4;padding:.5rem;overflow:auto}.error{color:#a00}textarea{width:100%}";

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1>{body}</body></html>",
        escape(title),
        escape(title)
    )
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn login(problem: Option<&str>) -> String {
    let problem = problem.map(|p| format!("<p class=\"error\" id=\"problem\">{}</p>", escape(p))).unwrap_or_default();
    layout(
        "Forge approvals: sign in",
        &format!(
            "{problem}<p>Paste an approver access token (a JWT from a trusted issuer with the approver scope or role).</p>\
             <form method=\"post\" action=\"/approvals/login\"><label for=\"token\">Token</label>\
             <textarea id=\"token\" name=\"token\" rows=\"4\" required></textarea>\
             <p><button type=\"submit\">Sign in</button></p></form>"
        ),
    )
}

pub fn list(approver: &str, approvals: &[Approval]) -> String {
    let now = now_ms();
    let rows: String = approvals
        .iter()
        .map(|a| {
            let r = &a.request;
            format!(
                "<tr data-status=\"{status}\"><td><a href=\"/approvals/{id}\">{id}</a></td><td>{status}</td><td>{caller}</td><td>{tool}</td><td>{reason}</td></tr>",
                id = escape(&r.id),
                status = a.status_at(now),
                caller = escape(&r.caller),
                tool = escape(&r.tool),
                reason = escape(&r.reason)
            )
        })
        .collect();
    let table = if rows.is_empty() {
        "<p id=\"empty\">No approval requests.</p>".to_string()
    } else {
        format!("<table id=\"approvals\"><tr><th>Request</th><th>Status</th><th>Caller</th><th>Tool</th><th>Reason</th></tr>{rows}</table>")
    };
    layout("Forge approvals", &format!("<p>Signed in as <b>{}</b>.</p>{table}", escape(approver)))
}

pub fn show(approver: &str, approval: &Approval, problem: Option<&str>) -> String {
    let r = &approval.request;
    let status = approval.status_at(now_ms());
    let pretty = |v: &serde_json::Value| escape(&serde_json::to_string_pretty(v).unwrap_or_default());
    let decided = match (&approval.state.decided_by, &approval.state.comment) {
        (Some(by), comment) => format!(
            "<tr><th>Decided by</th><td id=\"decided-by\">{}</td></tr><tr><th>Comment</th><td>{}</td></tr>",
            escape(by),
            escape(comment.as_deref().unwrap_or_default())
        ),
        _ => String::new(),
    };
    let form = if status == ApprovalStatus::Pending {
        format!(
            "<form method=\"post\" action=\"/approvals/{}\"><label for=\"comment\">Comment</label>\
             <textarea id=\"comment\" name=\"comment\" rows=\"3\"></textarea>\
             <p><button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button> \
             <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></p></form>",
            escape(&r.id)
        )
    } else {
        String::new()
    };
    let problem = problem.map(|p| format!("<p class=\"error\" id=\"problem\">{}</p>", escape(p))).unwrap_or_default();
    let body = format!(
        "<p>Signed in as <b>{approver}</b>. <a href=\"/approvals\">All requests</a></p>{problem}<table>\
         <tr><th>Request</th><td>{id}</td></tr><tr><th>Status</th><td id=\"status\">{status}</td></tr>\
         <tr><th>Caller</th><td id=\"caller\">{caller}</td></tr><tr><th>Tool</th><td id=\"tool\">{tool}</td></tr>\
         <tr><th>Policy's reason</th><td>{reason}</td></tr><tr><th>Bundle revision</th><td>{revision}</td></tr>\
         <tr><th>Arguments (secrets masked)</th><td><pre id=\"arguments\">{arguments}</pre></td></tr>\
         <tr><th>Arguments SHA-256</th><td><code>{digest}</code></td></tr>\
         <tr><th>Detector findings</th><td><pre>{findings}</pre></td></tr>{decided}</table>{form}",
        approver = escape(approver),
        id = escape(&r.id),
        caller = escape(&r.caller),
        tool = escape(&r.tool),
        reason = escape(&r.reason),
        revision = escape(&r.bundle_revision),
        arguments = pretty(&r.arguments_masked),
        digest = escape(&r.arguments_sha256),
        findings = pretty(&r.findings),
    );
    layout(&format!("Approval request {}", r.id), &body)
}

pub fn message(title: &str, text: &str) -> String {
    layout(title, &format!("<p id=\"problem\">{}</p><p><a href=\"/approvals\">All requests</a></p>", escape(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_shown_is_escaped() {
        assert_eq!(escape("<script>\"x\"&'y'</script>"), "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;");
        let page = login(Some("<b>bad</b>"));
        assert!(page.contains("&lt;b&gt;bad&lt;/b&gt;") && !page.contains("<b>bad"));
        assert!(!page.contains("<script") && !page.contains("http"), "no scripts, no external assets");
    }
}
