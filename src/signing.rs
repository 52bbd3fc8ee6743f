//! Ed25519 signing keys: the gateway's evidence key and the keys that sign policy bundles and
//! plugins.
//!
//! On disk a private key is PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, what `openssl genpkey
//! -algorithm ed25519` writes) and a public key is SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
//! A key's id is its RFC 7638 JWK thumbprint (SHA-256, base64url), so the same id names the
//! key in evidence, in signatures and in a published JWKS.

use std::path::Path;

use anyhow::{bail, Context as _};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow it.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// A private Ed25519 key that can sign.
///
/// ring checks the PKCS#8 document; signing is ed25519-dalek's, which takes ~16 µs where
/// ring takes ~23 µs on this project's CPUs (one signature per exchange, so it counts).
/// Ed25519 is deterministic: both produce the same signature, byte for byte.
pub struct SigningKey {
    pair: ed25519_dalek::SigningKey,
    pkcs8: Vec<u8>,
    public: PublicKey,
    /// Every signature names it: computed once.
    key_id: String,
}

/// A public Ed25519 key that can verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    bytes: [u8; 32],
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> anyhow::Result<Self> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// Reads a PKCS#8 PEM private key (a file, or a mounted Kubernetes secret).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading signing key {}", path.display()))?;
        Self::from_pem(&text).with_context(|| format!("signing key {}", path.display()))
    }

    pub fn from_pem(text: &str) -> anyhow::Result<Self> {
        Self::from_pkcs8(&pem_block(text, "PRIVATE KEY")?)
    }

    fn from_pkcs8(der: &[u8]) -> anyhow::Result<Self> {
        // OpenSSL writes PKCS#8 v1 (no embedded public key); ring's own keys are v2.
        let pair = Ed25519KeyPair::from_pkcs8(der)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(der))
            .map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 private key: {e}"))?;
        let bytes: [u8; 32] = pair.public_key().as_ref().try_into().context("Ed25519 public key length")?;
        let public = PublicKey { bytes };
        let seed = pkcs8_seed(der).context("no Ed25519 seed where PKCS#8 puts it")?;
        let pair = ed25519_dalek::SigningKey::from_bytes(&seed);
        if pair.verifying_key().to_bytes() != bytes {
            bail!("the PKCS#8 document's public key does not belong to its private key");
        }
        Ok(SigningKey { pair, pkcs8: der.to_vec(), key_id: public.key_id(), public })
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.pair.sign(message).to_bytes()
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn key_id(&self) -> String {
        self.key_id.clone()
    }

    pub fn to_pem(&self) -> String {
        pem_encode("PRIVATE KEY", &self.pkcs8)
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("key_id", &self.key_id()).finish_non_exhaustive()
    }
}

impl PublicKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey { bytes }
    }

    /// Reads an SPKI PEM public key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading public key {}", path.display()))?;
        Self::from_pem(&text).with_context(|| format!("public key {}", path.display()))
    }

    pub fn from_pem(text: &str) -> anyhow::Result<Self> {
        let der = pem_block(text, "PUBLIC KEY")?;
        match der.strip_prefix(&SPKI_PREFIX[..]) {
            Some(key) if key.len() == 32 => Ok(PublicKey { bytes: key.try_into().expect("32 bytes") }),
            _ => bail!("not an Ed25519 public key (SubjectPublicKeyInfo)"),
        }
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.bytes).verify(message, signature).is_ok()
    }

    /// The RFC 7638 thumbprint of the key's JWK (`{"crv","kty","x"}` in that order).
    pub fn key_id(&self) -> String {
        let jwk = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(self.bytes));
        URL_SAFE_NO_PAD.encode(Sha256::digest(jwk.as_bytes()))
    }

    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.bytes);
        pem_encode("PUBLIC KEY", &der)
    }
}

/// The 32-byte private key (seed) of an Ed25519 PKCS#8 document ring has accepted, v1 or
/// v2: after the SEQUENCE header, the version, the algorithm identifier and an OCTET STRING
/// wrapping the seed's OCTET STRING (RFC 8410 §7).
fn pkcs8_seed(der: &[u8]) -> Option<[u8; 32]> {
    let version = *der.get(4)?;
    let header = [0x02, 0x01, version, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    if version > 1 || der.get(2..16)? != header {
        return None;
    }
    der.get(16..48)?.try_into().ok()
}

fn pem_block(text: &str, label: &str) -> anyhow::Result<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).with_context(|| format!("no {begin} block"))? + begin.len();
    let stop = text[start..].find(&end).with_context(|| format!("no {end} line"))? + start;
    let body: String = text[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(body).context("the PEM body is not base64")
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_key_and_its_id() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(again.key_id(), key.key_id());
        let public = PublicKey::from_pem(&key.public_key().to_pem()).unwrap();
        assert_eq!(&public, key.public_key());
    }

    #[test]
    fn signatures_verify_only_for_their_message_and_key() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let sig = key.sign(b"decision");
        assert!(key.public_key().verify(b"decision", &sig));
        assert!(!key.public_key().verify(b"decisioN", &sig));
        assert!(!other.public_key().verify(b"decision", &sig));
    }

    #[test]
    fn reads_the_rfc_8032_test_key_as_openssl_writes_it() {
        // RFC 9421 B.1.4 (test-key-ed25519), PKCS#8 v1 as OpenSSL writes it.
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n";
        let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n-----END PUBLIC KEY-----\n";
        let key = SigningKey::from_pem(pem).unwrap();
        assert_eq!(key.public_key(), &PublicKey::from_pem(public).unwrap());
    }

    #[test]
    fn refuses_what_is_not_an_ed25519_key() {
        assert!(SigningKey::from_pem("no pem here").is_err());
        let rsa_spki = "-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAL\n-----END PUBLIC KEY-----\n";
        assert!(PublicKey::from_pem(rsa_spki).is_err());
    }
}
