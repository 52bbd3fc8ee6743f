//! Realistic payloads of a given size for benchmarks: mostly ordinary text with a few
//! findings in it, the way real traffic looks.

use serde_json::{json, Value};

const LINES: [&str; 8] = [
    "2026-11-30T10:22:04Z INFO api request GET /v2/invoices?limit=20 200 in 12ms",
    "Deployed billing-api v2.14.3 to eu-west-1; health checks passed on 3/3 pods.",
    "SELECT id, email FROM users WHERE created_at > now() - interval '7 days' returned 41 rows",
    "git log: 3f2a9c1 Fix rounding in invoice totals (Dana Kim, 2 days ago)",
    "Weather in Lisbon: 17°C, light rain, wind 12 km/h from the north-west.",
    "kubectl get pods -n billing: api-7d9f 1/1 Running, worker-5c2b 1/1 Running",
    "Build #8812 passed: 1,204 tests, 0 failures, coverage 87.4%",
    "Customer asked about order 4417-2231; refund approved by the support lead.",
];

/// Text of about `size` bytes: ordinary lines, one email address and one key.
pub fn text(size: usize) -> String {
    let mut out = String::from("Contact dana.kim@acme-corp.com about AKIAQ3EGT5LMZN4RWX7P.\n");
    let mut i = 0;
    while out.len() < size {
        out.push_str(LINES[i % LINES.len()]);
        out.push('\n');
        i += 1;
    }
    out.truncate(size);
    out
}

/// A `tools/call` request to a shell tool whose command and notes total about `size` bytes.
pub fn request(size: usize) -> Value {
    let body = text(size.saturating_sub(200));
    json!({
        "name": "run_command",
        "arguments": {"command": "ls -la /workspace && git status", "notes": body, "timeout": 30}
    })
}

/// A `tools/list` result of about `size` bytes of ordinary definitions.
pub fn tool_list(size: usize) -> Value {
    let mut tools = Vec::new();
    let mut total = 0;
    let mut i = 0;
    while total < size {
        let description = format!("{} Use the `limit` argument to page through results.", LINES[i % LINES.len()]);
        total += description.len() + 120;
        tools.push(json!({
            "name": format!("tool_{i}"),
            "description": description,
            "inputSchema": {"type": "object", "properties": {"limit": {"type": "integer", "description": "Maximum results."}}}
        }));
        i += 1;
    }
    json!({ "tools": tools })
}
