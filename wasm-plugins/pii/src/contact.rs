//! Email addresses and phone numbers.

use crate::{embedded, Hit, Scope};
use forge_plugin_sdk::LazyRegex;

pub fn prepare() {
    for regex in [&EMAIL, &E164, &NATIONAL] {
        regex.compile_now();
    }
}

static EMAIL: LazyRegex =
    LazyRegex::new(r"(?i)[a-z0-9][a-z0-9._%+-]*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+([a-z]{2,24})");

/// Domains reserved for documentation and testing (RFC 2606, RFC 6761).
const RESERVED_DOMAINS: [&str; 4] = ["example.com", "example.org", "example.net", "example.edu"];
const RESERVED_TLDS: [&str; 5] = ["example", "test", "invalid", "localhost", "local"];
/// `logo@2x.png` and friends: an asset name, not an address.
const FILE_EXTENSIONS: [&str; 10] = ["png", "jpg", "jpeg", "gif", "svg", "webp", "js", "css", "ts", "map"];

pub fn emails(scope: &Scope, allowed: &[String], hits: &mut Vec<Hit>) {
    let text = scope.text();
    if !text.contains('@') {
        return;
    }
    for caps in EMAIL.captures_iter(text) {
        let m = caps.get(0).expect("match");
        let address = m.as_str().to_ascii_lowercase();
        let domain = address.rsplit('@').next().unwrap_or("");
        let tld = caps[1].to_ascii_lowercase();
        let reserved = RESERVED_DOMAINS.iter().any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
            || RESERVED_TLDS.contains(&tld.as_str())
            || FILE_EXTENSIONS.contains(&tld.as_str());
        let allowed = allowed.iter().any(|d| domain.eq_ignore_ascii_case(d));
        if reserved || allowed || address.starts_with("git@") || embedded(text, &m.range(), b"@") {
            continue;
        }
        hits.push(Hit { rule: "pii.email", range: m.range(), confidence: 0.95, what: "email address" });
    }
}

/// International numbers: `+` and a country code, 8 to 15 digits in all, with the usual
/// separators.
static E164: LazyRegex = LazyRegex::new(r"\+[1-9](?:[ .-]?\(?[0-9]{1,4}\)?){2,6}");
/// National formats: North American `(415) 555-0132` / `415-555-0132`, UK `020 7946 0958`
/// and `07700 900123`, French `06 12 34 56 78`, German `030 1234567`.
static NATIONAL: LazyRegex = LazyRegex::new(
    r"\([2-9][0-9]{2}\)[ ]?[2-9][0-9]{2}[ .-][0-9]{4}|[2-9][0-9]{2}[.-][2-9][0-9]{2}[.-][0-9]{4}|0[1-9][0-9]{1,3} [0-9]{3,4} [0-9]{3,4}|0[1-9](?: [0-9]{2}){4}|0[1-9][0-9]{1,4}[ /][0-9]{5,8}",
);

const PHONE_WORDS: [&str; 10] = ["phone", "tel", "mobile", "cell", "call", "fax", "contact", "sms", "whatsapp", "ph:"];

pub fn phones(scope: &Scope, hits: &mut Vec<Hit>) {
    let text = scope.text();
    if scope.digits() < 7 {
        return;
    }
    if text.contains('+') {
        for m in E164.find_iter(text) {
            let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
            if (8..=15).contains(&digits) && !embedded(text, &m.range(), b".+") {
                hits.push(Hit { rule: "pii.phone", range: m.range(), confidence: 0.9, what: "phone number" });
            }
        }
    }
    // A bracketed area code is a phone on its own; the bare national formats also fit ids
    // and references, so they need a phone word nearby.
    if !text.contains('(') && !scope.mentions_anywhere(&PHONE_WORDS) {
        return;
    }
    for m in NATIONAL.find_iter(text) {
        if embedded(text, &m.range(), b".-/+") {
            continue;
        }
        let confidence = if scope.mentions(m.start(), 40, &PHONE_WORDS) {
            0.85
        } else if m.as_str().starts_with('(') {
            0.7
        } else {
            continue;
        };
        hits.push(Hit { rule: "pii.phone", range: m.range(), confidence, what: "phone number" });
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::ids;

    #[test]
    fn emails_are_found_and_reserved_or_asset_names_are_not() {
        assert_eq!(ids(r#"{"t":"write to maria.lopez+billing@contoso.co.uk"}"#), ["pii.email"]);
        for t in
            ["user@example.com", "logo@2x.png", "git@github.com:acme/app.git", "@types/node@18.2.0", "ops@host.local"]
        {
            assert!(ids(&format!(r#"{{"t":"{t}"}}"#)).is_empty(), "{t}");
        }
    }

    #[test]
    fn phones_need_their_format_or_a_phone_word() {
        for t in
            ["+44 20 7946 0958", "call me on 415-555-0132", "(415) 555-0132", "Mobile: 06 12 34 56 78", "+14155550132"]
        {
            assert_eq!(ids(&format!(r#"{{"t":"{t}"}}"#)), ["pii.phone"], "{t}");
        }
        for t in ["order 415-555-0132", "version 2.10.3-1", "at 2026-11-30 10:22:04", "+1", "build 0612 3456 7890"] {
            assert!(ids(&format!(r#"{{"t":"{t}"}}"#)).is_empty(), "{t}");
        }
    }
}
