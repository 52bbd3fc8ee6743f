//! What a match must also satisfy to count: checksums, structure, and "not a placeholder".

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use forge_plugin_sdk::Captures;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The format says it all; only placeholders are rejected.
    Format,
    /// Like `Format`, and a long value must look random (rejects `sk_live_aaaa…`).
    Random,
    /// GitHub's CRC32 checksum in the token's last six base62 characters.
    GithubChecksum,
    /// A JWT whose header decodes to a JSON object naming its `alg`.
    Jwt,
    /// A service-account JSON document that carries its private key.
    ServiceAccount,
    /// Group 2 is the password of a URL or connection string; it must not be a placeholder.
    UrlPassword,
}

impl Check {
    pub fn passes(self, caps: &Captures, text: &str) -> bool {
        let secret = caps.get(1).map_or("", |m| m.as_str());
        match self {
            Check::Format => !is_placeholder(secret),
            Check::Random => {
                !is_placeholder(secret)
                    && longest_run(secret) < 8
                    && (secret.len() < 20 || shannon_entropy(secret) >= 3.0)
            }
            Check::GithubChecksum => github_checksum_ok(secret),
            Check::Jwt => jwt_header_ok(secret),
            Check::ServiceAccount => text.contains("\"private_key\"") && text.contains("PRIVATE KEY"),
            Check::UrlPassword => caps.get(2).is_some_and(|p| !is_placeholder_password(p.as_str())),
        }
    }
}

/// Documentation and templates write tokens like `AKIAIOSFODNN7EXAMPLE`, `sk_live_xxxx…` or
/// `<your-token>`; none of those is a leak.
pub fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    const MARKERS: [&str; 12] =
        ["example", "xxxx", "your", "<", ">", "${", "{{", "...", "****", "placeholder", "redacted", "dummy"];
    MARKERS.iter().any(|m| lower.contains(m))
}

fn is_placeholder_password(password: &str) -> bool {
    const WORDS: [&str; 14] = [
        "password",
        "passwd",
        "pass",
        "pwd",
        "secret",
        "changeme",
        "change_me",
        "user",
        "username",
        "admin",
        "root",
        "test",
        "pw",
        "mypassword",
    ];
    let lower = password.to_ascii_lowercase();
    is_placeholder(password)
        || WORDS.contains(&lower.as_str())
        || longest_run(password) >= 8
        || password.starts_with(['$', '%', '{', '<', '['])
        || password.chars().all(|c| c == '*' || c == 'x' || c == 'X')
}

pub fn longest_run(value: &str) -> usize {
    let (mut best, mut run, mut last) = (0, 0, None);
    for c in value.chars() {
        run = if Some(c) == last { run + 1 } else { 1 };
        last = Some(c);
        best = best.max(run);
    }
    best
}

/// Bits per character of the value's own character distribution.
pub fn shannon_entropy(value: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in value.bytes() {
        counts[b as usize] += 1;
    }
    let len = value.len() as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| (c as f64 / len) * -(c as f64 / len).log2()).sum()
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// GitHub tokens are `pre_` + 30 random base62 characters + the CRC32 of those 30, in six
/// base62 digits (zero-padded).
pub fn github_checksum_ok(token: &str) -> bool {
    let Some(body) = token.get(4..) else { return false };
    if body.len() != 36 {
        return false;
    }
    let (random, checksum) = body.split_at(30);
    base62_6(crc32(random.as_bytes())) == checksum
}

pub fn base62_6(mut n: u32) -> String {
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

/// CRC-32 (IEEE, reflected), bit by bit: tokens are short, a table would be wasted startup.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn jwt_header_ok(token: &str) -> bool {
    let Some(header) = token.split('.').next() else { return false };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')) else { return false };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("alg").and_then(|a| a.as_str()).map(|alg| !alg.eq_ignore_ascii_case("none")))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn github_checksum_accepts_a_valid_token_and_rejects_one_flipped_character() {
        let random = "zQWBuTSOoRi4A9spHcVY5ncnsDkxkJ";
        let token = format!("ghp_{random}{}", base62_6(crc32(random.as_bytes())));
        assert!(github_checksum_ok(&token));
        let flipped = token.replacen('z', "y", 1);
        assert!(!github_checksum_ok(&flipped));
    }

    #[test]
    fn placeholders_are_not_secrets() {
        for p in ["AKIAIOSFODNN7EXAMPLE", "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx", "<your-token>", "${TOKEN}"] {
            assert!(is_placeholder(p), "{p}");
        }
        assert!(!is_placeholder("q8Xz2LmP0vTn4RbK7sWc"));
    }

    #[test]
    fn entropy_separates_random_from_repetitive() {
        assert!(shannon_entropy("q8Xz2LmP0vTn4RbK7sWc9dYe") > 4.0);
        assert!(shannon_entropy("abababababababababab") < 1.5);
    }
}
