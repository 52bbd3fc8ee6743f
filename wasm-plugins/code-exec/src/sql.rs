//! SQL that changes data or schema. Comments and string literals are blanked first, so a
//! `'drop table'` inside a value or `-- delete later` in a comment changes nothing.

use forge_plugin_sdk::Severity;
use std::ops::Range;

pub struct SqlHit {
    pub rule: &'static str,
    pub severity: Severity,
    pub what: &'static str,
    pub range: Range<usize>,
}

const SCHEMA: [&str; 7] = ["drop", "truncate", "alter", "create", "rename", "grant", "revoke"];
const DATA: [&str; 9] = ["insert", "update", "delete", "merge", "upsert", "replace", "copy", "call", "exec"];

/// Each statement that writes. On a tool that should only read, every write is high; on a
/// tool that may write, only the destructive ones are (`DROP`, `TRUNCATE`, and `DELETE` or
/// `UPDATE` without `WHERE`), and other schema changes are medium.
pub fn scan(sql: &str, read_only: bool) -> Vec<SqlHit> {
    let cleaned = blank_comments_and_strings(sql);
    let mut hits = Vec::new();
    let mut start = 0;
    for stmt in cleaned.split(';') {
        let range = start..start + stmt.len();
        start += stmt.len() + 1;
        let words: Vec<String> = stmt
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        let Some(first) = words.first() else { continue };
        let has = |w: &str| words.iter().any(|x| x == w);
        // A CTE or SELECT can hide a write: `WITH gone AS (DELETE …) SELECT …`, `SELECT … INTO`.
        let writes_data = DATA.contains(&first.as_str())
            || (first == "with" && DATA[..4].iter().any(|w| has(w)))
            || (first == "select" && has("into"));
        let trimmed = trim_range(sql, range);
        if SCHEMA.contains(&first.as_str()) {
            let destructive = first == "drop" || first == "truncate";
            let severity = if read_only || destructive { Severity::High } else { Severity::Medium };
            hits.push(SqlHit {
                rule: "code-exec.sql-schema-change",
                severity,
                what: if destructive { "SQL that drops or empties a table" } else { "SQL that changes the schema" },
                range: trimmed,
            });
        } else if writes_data {
            let unbounded = matches!(first.as_str(), "delete" | "update") && !has("where");
            if read_only || unbounded {
                hits.push(SqlHit {
                    rule: "code-exec.sql-data-modification",
                    severity: Severity::High,
                    what: if unbounded {
                        "SQL that changes every row"
                    } else {
                        "SQL that changes data on a read-only tool"
                    },
                    range: trimmed,
                });
            }
        }
    }
    hits
}

fn trim_range(text: &str, range: Range<usize>) -> Range<usize> {
    let s = &text[range.clone()];
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    range.start + lead..range.end - trail
}

/// Same length, same byte offsets: comments and quoted literals become spaces.
fn blank_comments_and_strings(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for b in &mut out[from..to] {
            if b.is_ascii() {
                *b = b' ';
            }
        }
    };
    while i < bytes.len() {
        let end = match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| i + p)
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => find(bytes, i + 2, b"*/").map_or(bytes.len(), |p| p + 2),
            q @ (b'\'' | b'"' | b'`') => bytes[i + 1..].iter().position(|&b| b == q).map_or(bytes.len(), |p| i + p + 2),
            _ => {
                i += 1;
                continue;
            }
        };
        blank(&mut out, i, end);
        i = end;
    }
    // Only ASCII bytes were replaced by ASCII, so this is still UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(sql: &str, read_only: bool) -> Vec<(&'static str, Severity)> {
        scan(sql, read_only).into_iter().map(|h| (h.rule, h.severity)).collect()
    }

    #[test]
    fn reads_are_fine_and_writes_are_not_on_a_read_only_tool() {
        assert!(rules("SELECT id, deleted_at FROM users WHERE updated_at > now()", true).is_empty());
        assert!(rules("select * from t where note = 'drop table x; delete from y' -- update later", true).is_empty());
        assert_eq!(
            rules("UPDATE users SET role='admin' WHERE id=1", true),
            [("code-exec.sql-data-modification", Severity::High)]
        );
        assert_eq!(rules("WITH x AS (DELETE FROM logs RETURNING *) SELECT count(*) FROM x", true).len(), 1);
    }

    #[test]
    fn a_write_tool_is_only_stopped_for_destructive_statements() {
        assert!(rules("INSERT INTO audit(msg) VALUES ('ok')", false).is_empty());
        assert!(rules("UPDATE users SET name='x' WHERE id=4", false).is_empty());
        assert_eq!(rules("DELETE FROM users", false), [("code-exec.sql-data-modification", Severity::High)]);
        assert_eq!(rules("drop table users", false), [("code-exec.sql-schema-change", Severity::High)]);
        assert_eq!(
            rules("ALTER TABLE users ADD COLUMN x int", false),
            [("code-exec.sql-schema-change", Severity::Medium)]
        );
    }

    #[test]
    fn spans_cover_the_statement() {
        let sql = "select 1;  DROP TABLE users ; select 2";
        let h = scan(sql, true);
        assert_eq!(&sql[h[0].range.clone()], "DROP TABLE users");
    }
}
