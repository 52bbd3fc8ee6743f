//! The generic heuristic: a random-looking value assigned to a credential-named key, in
//! structured arguments (`{"api_key": "…"}`) or in text (`DB_PASSWORD=…`).
//!
//! The name carries most of the evidence, so the value only has to look like a credential:
//! not a placeholder, not a word, path, URL or sentence, and not one of the random-looking
//! things that are not credentials (UUIDs, hex digests and git SHAs, base64 images).

use crate::checks::{is_placeholder, longest_run, shannon_entropy};
use forge_plugin_sdk::LazyRegex;

/// Credential words that end a key name (`db_password`, `GITHUB_TOKEN`); so `token_type`,
/// `max_tokens`, `author` and `bypass` do not count.
const LAST_WORDS: [&str; 9] =
    ["password", "passwd", "passphrase", "pass", "pwd", "secret", "token", "credential", "credentials"];
/// Two-word names whose last word alone says nothing (`api_key`, not `sort_key`).
const KEY_QUALIFIERS: [&str; 5] = ["api", "access", "secret", "private", "auth"];
/// The same names written as one word.
const ONE_WORD: [&str; 9] = [
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "accesstoken",
    "authtoken",
    "refreshtoken",
    "bearertoken",
    "clientsecret",
];
/// Words that make a credential-looking name hold something else.
const NOT_A_CREDENTIAL: [&str; 11] =
    ["page", "cursor", "next", "continuation", "sync", "csrf", "xsrf", "nonce", "count", "max", "limit"];
const NOT_A_CREDENTIAL_PART: [&str; 3] = ["usage", "public", "publishable"];

/// `NAME = value`, `NAME: value` and `"NAME": "value"` in text.
pub fn prepare() {
    ASSIGNMENT.compile_now();
}

static ASSIGNMENT: LazyRegex =
    LazyRegex::new(r#"([A-Za-z][A-Za-z0-9_.-]*)["'`]?[ \t]*(?:=|:|=>|:=)[ \t]*["'`]?([^\s"'`,;)\]}]{8,})"#);

const NAME_HINTS: [&str; 6] = ["pass", "pwd", "secret", "token", "key", "cred"];

/// Whether `name` names a credential.
pub fn is_credential_name(name: &str) -> bool {
    let name = snake_case(name);
    let words: Vec<&str> = name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let Some(&last) = words.last() else { return false };
    let before = words.len().checked_sub(2).map(|i| words[i]);
    let named = LAST_WORDS.contains(&last)
        || ONE_WORD.contains(&last)
        || (last == "key" && before.is_some_and(|w| KEY_QUALIFIERS.contains(&w)));
    named
        && !words.iter().any(|w| NOT_A_CREDENTIAL.contains(w))
        && !NOT_A_CREDENTIAL_PART.iter().any(|p| name.contains(p))
}

/// `dbPassword` → `db_password`, `API_KEY` → `api_key`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The value range of each credential assignment in `text`.
///
/// An assignment never spans a line (nothing in [`ASSIGNMENT`] matches a newline), and a
/// credential name contains one of [`NAME_HINTS`], so only lines with a hint are searched:
/// the same matches as searching the whole text, without running the regex over the rest.
pub fn assignments(text: &str) -> Vec<std::ops::Range<usize>> {
    let lower = text.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let (offset, lower_line) = (start, &lower[start..start + line.len()]);
        start += line.len();
        if !NAME_HINTS.iter().any(|h| lower_line.contains(h)) {
            continue;
        }
        found.extend(ASSIGNMENT.captures_iter(line).filter_map(|c| {
            let (name, value) = (c.get(1)?, c.get(2)?);
            (is_credential_name(name.as_str()) && looks_like_credential(name.as_str(), value.as_str()))
                .then(|| offset + value.start()..offset + value.end())
        }));
    }
    found
}

/// Whether `value`, held by a credential-named key, looks like the credential itself.
pub fn looks_like_credential(name: &str, value: &str) -> bool {
    let password = name.to_ascii_lowercase().contains("pass") || name.eq_ignore_ascii_case("pwd");
    let min_len = if password { 8 } else { 16 };
    if value.len() < min_len
        || value.len() > 200
        || value.contains(char::is_whitespace)
        || is_placeholder(value)
        || longest_run(value) >= 6
    {
        return false;
    }
    if is_uuid(value) || is_hex_digest(value) || is_reference(value) || value.contains("://") {
        return false;
    }
    let classes = [
        value.bytes().any(|b| b.is_ascii_lowercase()),
        value.bytes().any(|b| b.is_ascii_uppercase()),
        value.bytes().any(|b| b.is_ascii_digit()),
        value.bytes().any(|b| !b.is_ascii_alphanumeric()),
    ];
    let classes = classes.iter().filter(|&&c| c).count();
    if password {
        classes >= 2
    } else {
        classes >= 2 && value.bytes().any(|b| b.is_ascii_digit()) && shannon_entropy(value) >= 3.5
    }
}

fn is_uuid(value: &str) -> bool {
    let parts: Vec<_> = value.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Hashes and git SHAs: all hex, a digest's length (short SHAs from 7).
fn is_hex_digest(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_hexdigit()) && matches!(value.len(), 7..=12 | 32 | 40 | 56 | 64 | 96 | 128)
}

/// A pointer to a secret rather than the secret: paths, environment and vault references,
/// data URIs, lowercase identifiers.
fn is_reference(value: &str) -> bool {
    value.starts_with(['/', '~', '$', '%', '@'])
        || value.starts_with("./")
        || value.starts_with("data:")
        || value.starts_with("env:")
        || value.starts_with("vault:")
        || value.starts_with("arn:")
        || value.starts_with("sha256:")
        || value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_./-".contains(&b))
        || value.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names_end_in_a_credential_word() {
        for n in [
            "password",
            "DB_PASSWORD",
            "api_key",
            "apiKey",
            "client_secret",
            "GITHUB_TOKEN",
            "x-api-key",
            "dbPassword",
            "clientSecret",
        ] {
            assert!(is_credential_name(n), "{n}");
        }
        for n in [
            "token_type",
            "max_tokens",
            "author",
            "next_page_token",
            "keyboard",
            "publishable_key",
            "monkey",
            "bypass",
            "compass",
        ] {
            assert!(!is_credential_name(n), "{n}");
        }
    }

    #[test]
    fn random_values_count_and_lookalikes_do_not() {
        assert!(looks_like_credential("api_key", "Zx81Qp0LmWv2Rt7KsYc4"));
        assert!(looks_like_credential("password", "Tr0ub4dor&3"));
        for v in [
            "123e4567-e89b-12d3-a456-426614174000",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "/etc/secrets/api.key",
            "${API_KEY}",
            "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg",
            "MY_SECRET_NAME",
            "projects/demo/secrets/db/versions/latest",
        ] {
            assert!(!looks_like_credential("api_key", v), "{v}");
        }
        assert!(!looks_like_credential("password", "hunter2"));
    }

    #[test]
    fn assignments_in_text_point_at_the_value() {
        let text = "export DB_PASSWORD=Xk9#mQ2vLp8w\nexport LOG_LEVEL=debug";
        let found = assignments(text);
        assert_eq!(found.len(), 1);
        assert_eq!(&text[found[0].clone()], "Xk9#mQ2vLp8w");
        // On a later line, after lines without a credential word: the range is still the
        // text's, not the line's.
        let text = "health checks passed\nLOG_LEVEL=debug\r\n  \"apiToken\": \"Zq8vT3mK9pLx2Rw7Yb4N\",";
        let found = assignments(text);
        assert_eq!(found.iter().map(|r| &text[r.clone()]).collect::<Vec<_>>(), ["Zq8vT3mK9pLx2Rw7Yb4N"]);
    }
}
