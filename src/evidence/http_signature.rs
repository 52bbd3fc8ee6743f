//! RFC 9421 HTTP Message Signatures (Ed25519 only) and RFC 9530 `Content-Digest` (sha-256).
//!
//! The gateway signs the responses it vouches for; `forge evidence verify-response` and
//! tests verify them. Only what those two need is here: covered components are derived
//! ones (`@status`, `@method`, `@path`, `@authority`) and plain header fields, and the
//! signature parameters are `created`, `keyid` and `alg`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::signing::{PublicKey, SigningKey};

/// The `alg` parameter for Ed25519 (RFC 9421 §6.2.2).
pub const ALG_ED25519: &str = "ed25519";

/// Why a signature or digest does not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Signature-Input member labelled `{0}`")]
    MissingInput(String),
    #[error("no Signature member labelled `{0}`")]
    MissingSignature(String),
    #[error("malformed {field}: {message}")]
    Malformed { field: &'static str, message: String },
    #[error("the covered component `{0}` is not in the message")]
    MissingComponent(String),
    #[error("signed with key `{found}`, expected `{expected}`")]
    WrongKey { found: String, expected: String },
    #[error("the algorithm `{0}` is not ed25519")]
    WrongAlgorithm(String),
    #[error("the signature does not verify with key `{0}`")]
    BadSignature(String),
    #[error("Content-Digest has no sha-256 member")]
    NoSha256Digest,
    #[error("the body does not match its Content-Digest")]
    DigestMismatch,
}

/// The signature parameters (the `@signature-params` component, without the label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    /// Component identifiers, lower-case, in signing order (`@status`, `content-digest`, …).
    pub components: Vec<String>,
    pub created: Option<u64>,
    pub keyid: Option<String>,
    pub alg: Option<String>,
}

impl SignatureParams {
    /// The serialized inner list: `("@status" "content-digest");created=…;keyid="…";alg="…"`.
    pub fn serialize(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(160);
        out.push('(');
        for (i, c) in self.components.iter().enumerate() {
            out.push_str(if i == 0 { "\"" } else { " \"" });
            out.push_str(c);
            out.push('"');
        }
        out.push(')');
        if let Some(created) = self.created {
            let _ = write!(out, ";created={created}");
        }
        for (name, value) in [("keyid", &self.keyid), ("alg", &self.alg)] {
            if let Some(value) = value {
                for part in [";", name, "=\"", value, "\""] {
                    out.push_str(part);
                }
            }
        }
        out
    }

    /// The signature base (RFC 9421 §2.5) over component values `value_of` resolves.
    pub fn signature_base(&self, value_of: impl Fn(&str) -> Option<String>) -> Result<String, SignatureError> {
        let mut base = String::with_capacity(512);
        for id in &self.components {
            let value = value_of(id).ok_or_else(|| SignatureError::MissingComponent(id.clone()))?;
            for part in ["\"", id, "\": ", &value, "\n"] {
                base.push_str(part);
            }
        }
        base.push_str("\"@signature-params\": ");
        base.push_str(&self.serialize());
        Ok(base)
    }
}

/// The two header values a signature adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    pub signature_input: String,
    pub signature: String,
}

/// Signs the components `value_of` resolves under `label`.
pub fn sign(
    key: &SigningKey,
    label: &str,
    params: &SignatureParams,
    value_of: impl Fn(&str) -> Option<String>,
) -> Result<SignatureHeaders, SignatureError> {
    let base = params.signature_base(value_of)?;
    let signature = key.sign(base.as_bytes());
    Ok(SignatureHeaders {
        signature_input: format!("{label}={}", params.serialize()),
        signature: format!("{label}=:{}:", STANDARD.encode(signature)),
    })
}

/// Verifies the signature labelled `label` with `key`; returns its parameters. The caller
/// decides which components it requires to be covered.
pub fn verify(
    key: &PublicKey,
    label: &str,
    signature_input: &str,
    signature: &str,
    value_of: impl Fn(&str) -> Option<String>,
) -> Result<SignatureParams, SignatureError> {
    let input = member(signature_input, label).ok_or_else(|| SignatureError::MissingInput(label.into()))?;
    let params = parse_params(input)?;
    let sig = member(signature, label).ok_or_else(|| SignatureError::MissingSignature(label.into()))?;
    let sig = byte_sequence(sig).ok_or_else(|| malformed("Signature", "not a byte sequence"))?;
    let expected = key.key_id();
    if let Some(found) = params.keyid.as_ref().filter(|k| **k != expected) {
        return Err(SignatureError::WrongKey { found: found.clone(), expected });
    }
    if let Some(alg) = params.alg.as_ref().filter(|a| *a != ALG_ED25519) {
        return Err(SignatureError::WrongAlgorithm(alg.clone()));
    }
    let base = params.signature_base(value_of)?;
    if !key.verify(base.as_bytes(), &sig) {
        return Err(SignatureError::BadSignature(expected));
    }
    Ok(params)
}

/// The RFC 9530 `Content-Digest` value of a body whose SHA-256 is `sha256`: `sha-256=:<base64>:`.
pub fn content_digest(sha256: &[u8; 32]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(sha256))
}

/// Checks a `Content-Digest` header value's sha-256 member against `body`.
pub fn check_content_digest(header: &str, body: &[u8]) -> Result<(), SignatureError> {
    let value = member(header, "sha-256").ok_or(SignatureError::NoSha256Digest)?;
    let digest = byte_sequence(value).ok_or_else(|| malformed("Content-Digest", "not a byte sequence"))?;
    if digest.as_slice() != Sha256::digest(body).as_slice() {
        return Err(SignatureError::DigestMismatch);
    }
    Ok(())
}

fn malformed(field: &'static str, message: &str) -> SignatureError {
    SignatureError::Malformed { field, message: message.into() }
}

/// The value of one member of a structured-field dictionary (RFC 8941), as written.
/// Members are split on commas outside quoted strings and parentheses.
pub(crate) fn member<'a>(dictionary: &'a str, key: &str) -> Option<&'a str> {
    split_members(dictionary).into_iter().find_map(|m| {
        let (k, v) = m.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

fn split_members(text: &str) -> Vec<&str> {
    let (mut members, mut start, mut depth, mut quoted, mut escaped) = (Vec::new(), 0, 0usize, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                members.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    members.push(&text[start..]);
    members
}

/// `:base64:` → bytes.
pub(crate) fn byte_sequence(text: &str) -> Option<Vec<u8>> {
    let inner = text.trim().strip_prefix(':')?.strip_suffix(':')?;
    STANDARD.decode(inner).ok()
}

/// `("a" "b");created=1;keyid="k"` → parameters. Unknown parameters are refused: a
/// verifier that ignored `expires` or `nonce` would accept what the signer limited.
fn parse_params(text: &str) -> Result<SignatureParams, SignatureError> {
    let bad = |m: &str| malformed("Signature-Input", m);
    let rest = text.trim().strip_prefix('(').ok_or_else(|| bad("no inner list"))?;
    let close = rest.find(')').ok_or_else(|| bad("unterminated inner list"))?;
    let mut components = Vec::new();
    for item in rest[..close].split_whitespace() {
        let id = item
            .strip_prefix('"')
            .and_then(|i| i.strip_suffix('"'))
            .ok_or_else(|| bad("a component is not a string"))?;
        if id.contains(';') || id.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("component parameters and upper-case names are not supported"));
        }
        components.push(id.to_string());
    }
    let mut params = SignatureParams { components, created: None, keyid: None, alg: None };
    for param in rest[close + 1..].split(';').filter(|p| !p.trim().is_empty()) {
        let (name, value) = param.split_once('=').ok_or_else(|| bad("a parameter without a value"))?;
        let string = || value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).map(str::to_owned);
        match name.trim() {
            "created" => params.created = Some(value.parse().map_err(|_| bad("created is not an integer"))?),
            "keyid" => params.keyid = Some(string().ok_or_else(|| bad("keyid is not a string"))?),
            "alg" => params.alg = Some(string().ok_or_else(|| bad("alg is not a string"))?),
            other => return Err(bad(&format!("unsupported parameter `{other}`"))),
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9421 B.1.4, `test-key-ed25519`.
    const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n";

    /// The components of RFC 9421's `test-request` that B.2.6 covers.
    fn test_request(id: &str) -> Option<String> {
        Some(
            match id {
                "date" => "Tue, 20 Apr 2021 02:07:55 GMT",
                "@method" => "POST",
                "@path" => "/foo",
                "@authority" => "example.com",
                "content-type" => "application/json",
                "content-length" => "18",
                _ => return None,
            }
            .to_string(),
        )
    }

    fn b26_params() -> SignatureParams {
        SignatureParams {
            components: ["date", "@method", "@path", "@authority", "content-type", "content-length"]
                .map(String::from)
                .to_vec(),
            created: Some(1618884473),
            keyid: Some("test-key-ed25519".into()),
            alg: None,
        }
    }

    #[test]
    fn rfc_9421_b_2_6_ed25519_byte_for_byte() {
        let key = SigningKey::from_pem(TEST_KEY).unwrap();
        let params = b26_params();
        let base = params.signature_base(test_request).unwrap();
        assert_eq!(
            base,
            "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@method\": POST\n\"@path\": /foo\n\"@authority\": example.com\n\
             \"content-type\": application/json\n\"content-length\": 18\n\"@signature-params\": (\"date\" \"@method\" \
             \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\""
        );
        let headers = sign(&key, "sig-b26", &params, test_request).unwrap();
        assert_eq!(
            headers.signature_input,
            "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\""
        );
        assert_eq!(
            headers.signature,
            "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
        );
    }

    #[test]
    fn the_rfc_signature_verifies_and_a_changed_component_does_not() {
        let key = SigningKey::from_pem(TEST_KEY).unwrap();
        let public = key.public_key();
        let input = "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
        let sig = "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:";
        // The RFC's key id is a name, not our thumbprint: verify without the keyid check.
        let input = input.replace(";keyid=\"test-key-ed25519\"", "");
        let signed_without_keyid = sign(&key, "sig-b26", &parse_params(&input[8..]).unwrap(), test_request).unwrap();
        verify(public, "sig-b26", &input, &signed_without_keyid.signature, test_request).unwrap();
        let tampered = |id: &str| if id == "@path" { Some("/bar".into()) } else { test_request(id) };
        assert_eq!(
            verify(public, "sig-b26", &input, &signed_without_keyid.signature, tampered),
            Err(SignatureError::BadSignature(public.key_id()))
        );
        assert!(matches!(verify(public, "sig-b26", &input, sig, test_request), Err(SignatureError::BadSignature(_))));
    }

    #[test]
    fn verification_names_the_key_algorithm_and_missing_parts() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let params = SignatureParams {
            components: vec!["@status".into(), "content-digest".into()],
            created: Some(1),
            keyid: Some(key.key_id()),
            alg: Some(ALG_ED25519.into()),
        };
        let values =
            |id: &str| Some(if id == "@status" { "200".into() } else { content_digest(&Sha256::digest(b"{}").into()) });
        let h = sign(&key, "forge", &params, values).unwrap();
        assert_eq!(verify(key.public_key(), "forge", &h.signature_input, &h.signature, values).unwrap(), params);
        assert!(matches!(
            verify(other.public_key(), "forge", &h.signature_input, &h.signature, values),
            Err(SignatureError::WrongKey { .. })
        ));
        assert_eq!(
            verify(key.public_key(), "other", &h.signature_input, &h.signature, values),
            Err(SignatureError::MissingInput("other".into()))
        );
        let no_digest = |id: &str| (id == "@status").then(|| "200".to_string());
        assert_eq!(
            verify(key.public_key(), "forge", &h.signature_input, &h.signature, no_digest),
            Err(SignatureError::MissingComponent("content-digest".into()))
        );
        let rsa = h.signature_input.replace("ed25519", "rsa-v1_5-sha256");
        assert_eq!(
            verify(key.public_key(), "forge", &rsa, &h.signature, values),
            Err(SignatureError::WrongAlgorithm("rsa-v1_5-sha256".into()))
        );
        let expiring = format!("{};expires=2", h.signature_input);
        assert!(matches!(
            verify(key.public_key(), "forge", &expiring, &h.signature, values),
            Err(SignatureError::Malformed { .. })
        ));
    }

    #[test]
    fn content_digest_matches_rfc_9530_and_catches_a_changed_body() {
        // RFC 9530 §2: the sha-256 digest of `{"hello": "world"}`.
        let body = b"{\"hello\": \"world\"}";
        assert_eq!(
            content_digest(&Sha256::digest(body).into()),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
        let header = "sha-512=:abc=:, sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";
        check_content_digest(header, body).unwrap();
        assert_eq!(check_content_digest(header, b"{\"hello\": \"World\"}"), Err(SignatureError::DigestMismatch));
        assert_eq!(check_content_digest("sha-512=:abc=:", body), Err(SignatureError::NoSha256Digest));
    }
}
