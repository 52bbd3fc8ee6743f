//! Arguments as an approver sees them: values that look like secrets are masked, because the
//! page and the API show them to people and the store keeps them.

use serde_json::Value;

const MASK: &str = "***";

/// Parts of argument names that mark a secret (compared case-insensitively, ignoring `-`/`_`).
const SECRET_NAMES: &[&str] =
    &["password", "passwd", "secret", "token", "apikey", "authorization", "credential", "privatekey", "cookie"];

/// Prefixes of well-known credential formats found in any string value.
const SECRET_PREFIXES: &[&str] = &["eyJ", "sk-", "ghp_", "gho_", "github_pat_", "xoxb-", "xoxp-", "AKIA", "-----BEGIN"];

pub fn mask(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let masked = if secret_name(k) { Value::String(MASK.into()) } else { mask(v) };
                    (k.clone(), masked)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        Value::String(s) if SECRET_PREFIXES.iter().any(|p| s.trim_start().starts_with(p)) => Value::String(MASK.into()),
        other => other.clone(),
    }
}

fn secret_name(name: &str) -> bool {
    let folded: String = name.chars().filter(|c| *c != '_' && *c != '-').collect::<String>().to_ascii_lowercase();
    SECRET_NAMES.iter().any(|s| folded.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked_by_name_and_by_shape_at_any_depth() {
        let args = json!({
            "repo": "forge",
            "API_KEY": "abc",
            "nested": [{"db_password": "p"}, "ghp_0123456789", "plain text"],
            "header": "eyJhbGciOi.x.y",
            "count": 3
        });
        assert_eq!(
            mask(&args),
            json!({"repo": "forge", "API_KEY": "***", "nested": [{"db_password": "***"}, "***", "plain text"], "header": "***", "count": 3})
        );
    }

    #[test]
    fn near_misses_are_shown() {
        let args = json!({"tokenizer": "bpe"});
        assert_eq!(mask(&args), json!({"tokenizer": "***"}), "a name containing `token` is masked: better safe");
        let benign = json!({"keyboard": "us", "path": "/tmp/skill", "description": "sketch"});
        assert_eq!(mask(&benign), benign);
    }
}
