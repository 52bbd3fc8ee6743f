//! Verification keys, each pinned to the algorithms it may verify.
//!
//! A key's type decides its algorithm family (RSA → RS*/PS*, P-256 → ES256, P-384 → ES384,
//! Ed25519 → EdDSA), a JWK's own `alg` narrows that to one, and the issuer's allow-list narrows
//! it further. A token is only ever checked with a key that permits the token's `alg`, which
//! is what defeats algorithm confusion.

use jsonwebtoken::crypto::rust_crypto;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

use super::AuthError;

/// RFC 7518 §3.3 asks for RSA keys of at least 2048 bits; ring refuses shorter ones too.
const MIN_RSA_MODULUS_BYTES: usize = 256;

#[derive(Debug)]
pub(crate) struct VerifyingKey {
    pub kid: Option<String>,
    pub algorithms: Vec<Algorithm>,
    pub key: DecodingKey,
}

#[derive(Default)]
pub(crate) struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    pub fn new(keys: Vec<VerifyingKey>) -> Self {
        KeySet { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key for a token's `kid` and `alg`. A key with the token's `kid` is the only
    /// candidate when there is one. Otherwise keys without a `kid` (PEM) may verify any token,
    /// and a token without a `kid` may use any key, provided exactly one permits its `alg`:
    /// guessing among several would multiply the work a forged token costs. `UnknownKid`
    /// (which makes a JWKS refresh) only when no key could be meant at all.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Result<&VerifyingKey, AuthError> {
        if let Some(kid) = kid {
            let mut named = self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).peekable();
            if named.peek().is_some() {
                return named.find(|k| k.algorithms.contains(&alg)).ok_or(AuthError::AlgorithmNotAllowed);
            }
        }
        let usable = self.keys.iter().filter(|k| kid.is_none() || k.kid.is_none());
        let mut permitted = usable.clone().filter(|k| k.algorithms.contains(&alg));
        match (permitted.next(), permitted.next()) {
            (Some(key), None) => Ok(key),
            (Some(_), Some(_)) => Err(AuthError::UnknownKid),
            (None, _) if usable.count() > 0 => Err(AuthError::AlgorithmNotAllowed),
            (None, _) => Err(AuthError::UnknownKid),
        }
    }
}

/// Why a key was left out of a set.
type Skipped = &'static str;

/// The usable keys of a JWKS document. Keys the gateway cannot or must not use (encryption
/// keys, symmetric keys, unknown types, short RSA) are skipped one by one, so one odd key does
/// not take its neighbours down with it.
pub(crate) fn from_jwks(body: &[u8], allowed: &[Algorithm], issuer: &str) -> Result<KeySet, serde_json::Error> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<Value>,
    }
    let document: Document = serde_json::from_slice(body)?;
    let keys = document
        .keys
        .into_iter()
        .filter_map(|value| {
            let kid = value.get("kid").and_then(Value::as_str).map(str::to_owned);
            from_jwk(value, allowed)
                .inspect_err(|why| tracing::debug!(issuer, kid = ?kid, why, "skipped a JWKS key"))
                .ok()
        })
        .collect();
    Ok(KeySet::new(keys))
}

fn from_jwk(value: Value, allowed: &[Algorithm]) -> Result<VerifyingKey, Skipped> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|_| "not a JWK the gateway can read")?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return Err("not a signature key (use)");
    }
    if matches!(jwk.common.key_operations, Some(ref ops) if !ops.contains(&KeyOperations::Verify)) {
        return Err("not a verification key (key_ops)");
    }
    let (family, key) = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let key = DecodingKey::from_rsa_components(&p.n, &p.e).map_err(|_| "bad RSA parameters")?;
            (rsa_algorithms(&key)?, key)
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let (alg, size) = match p.curve {
                EllipticCurve::P256 => (Algorithm::ES256, 32),
                EllipticCurve::P384 => (Algorithm::ES384, 48),
                _ => return Err("unsupported curve"),
            };
            let key = DecodingKey::from_ec_components(&p.x, &p.y).map_err(|_| "bad EC coordinates")?;
            (vec![alg], checked_len(key, 1 + 2 * size, "bad EC coordinates")?)
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            let key = DecodingKey::from_ed_components(&p.x).map_err(|_| "bad Ed25519 key")?;
            (vec![Algorithm::EdDSA], checked_len(key, 32, "bad Ed25519 key")?)
        }
        AlgorithmParameters::OctetKey(_) => return Err("symmetric keys are never accepted"),
        _ => return Err("unsupported key type"),
    };
    let declared = match jwk.common.key_algorithm {
        Some(alg) => Some(alg.to_string().parse::<Algorithm>().map_err(|_| "not a signature algorithm (alg)")?),
        None => None,
    };
    if declared.is_some_and(|alg| !family.contains(&alg)) {
        return Err("alg does not match the key type");
    }
    let algorithms = pin(family, declared, allowed);
    if algorithms.is_empty() {
        return Err("no algorithm allowed for this issuer");
    }
    Ok(VerifyingKey { kid: jwk.common.key_id, algorithms, key })
}

/// A key configured in PEM (a public key or a certificate; never a private key).
pub(crate) fn from_pem(pem: &str, allowed: &[Algorithm]) -> anyhow::Result<VerifyingKey> {
    if pem.contains("PRIVATE KEY-----") {
        anyhow::bail!("the PEM holds a private key; give the issuer's public key or certificate");
    }
    let bytes = pem.as_bytes();
    let (family, key) = if let Ok(key) = DecodingKey::from_rsa_pem(bytes) {
        // Normalised to modulus and exponent so that every RSA key is held the same way.
        let der = key.try_get_as_bytes()?;
        let (n, e) = (rust_crypto::DEFAULT_PROVIDER.key_utils.rsa_pub_components_from_public_key)(der)?;
        let key = DecodingKey::from_rsa_raw_components(&n, &e);
        (rsa_algorithms(&key).map_err(anyhow::Error::msg)?, key)
    } else if let Ok(key) = DecodingKey::from_ec_pem(bytes) {
        match key.try_get_as_bytes()?.len() {
            65 => (vec![Algorithm::ES256], key),
            97 => (vec![Algorithm::ES384], key),
            _ => anyhow::bail!("only uncompressed P-256 and P-384 EC keys are supported"),
        }
    } else if let Ok(key) = DecodingKey::from_ed_pem(bytes) {
        (vec![Algorithm::EdDSA], checked_len(key, 32, "bad Ed25519 key").map_err(anyhow::Error::msg)?)
    } else {
        anyhow::bail!("not an RSA, EC (P-256/P-384) or Ed25519 public key or certificate in PEM");
    };
    let algorithms = pin(family, None, allowed);
    anyhow::ensure!(!algorithms.is_empty(), "none of the issuer's algorithms can be verified with this key");
    Ok(VerifyingKey { kid: None, algorithms, key })
}

fn rsa_algorithms(key: &DecodingKey) -> Result<Vec<Algorithm>, Skipped> {
    let jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, .. } = key.kind() else {
        return Err("bad RSA parameters");
    };
    let significant = n.iter().skip_while(|b| **b == 0).count();
    if significant < MIN_RSA_MODULUS_BYTES {
        return Err("RSA key shorter than 2048 bits");
    }
    Ok(AlgorithmFamily::Rsa.algorithms().to_vec())
}

fn checked_len(key: DecodingKey, len: usize, why: Skipped) -> Result<DecodingKey, Skipped> {
    match key.try_get_as_bytes() {
        Ok(bytes) if bytes.len() == len => Ok(key),
        _ => Err(why),
    }
}

/// The key family's algorithms, narrowed to the key's declared `alg` and the issuer's allow-list.
fn pin(family: Vec<Algorithm>, declared: Option<Algorithm>, allowed: &[Algorithm]) -> Vec<Algorithm> {
    family
        .into_iter()
        .filter(|alg| declared.is_none_or(|d| d == *alg))
        .filter(|alg| allowed.is_empty() || allowed.contains(alg))
        .collect()
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;

    use super::*;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn ec_jwk(kid: &str) -> Value {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = pair.public_key_raw();
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&raw[1..33]), "y": b64(&raw[33..])})
    }

    /// An RSA public key of `bits` bits (the modulus need not be a real product of primes to
    /// exercise size checks and pinning).
    fn rsa_jwk(kid: &str, bits: usize) -> Value {
        let mut n = vec![0xC5u8; bits / 8];
        n[bits / 8 - 1] = 0x01;
        json!({"kty": "RSA", "kid": kid, "n": b64(&n), "e": b64(&[1, 0, 1])})
    }

    fn set(keys: Vec<Value>, allowed: &[Algorithm]) -> KeySet {
        from_jwks(json!({ "keys": keys }).to_string().as_bytes(), allowed, "test").unwrap()
    }

    #[test]
    fn key_type_decides_the_algorithms() {
        let keys = set(vec![ec_jwk("ec"), rsa_jwk("rsa", 2048)], &[]);
        assert_eq!(keys.find(Some("ec"), Algorithm::ES256).unwrap().algorithms, [Algorithm::ES256]);
        assert_eq!(keys.find(Some("ec"), Algorithm::ES384).err(), Some(AuthError::AlgorithmNotAllowed));
        assert_eq!(keys.find(Some("ec"), Algorithm::RS256).err(), Some(AuthError::AlgorithmNotAllowed));
        assert_eq!(keys.find(Some("rsa"), Algorithm::PS512).unwrap().algorithms.len(), 6);
        assert_eq!(keys.find(Some("rsa"), Algorithm::ES256).err(), Some(AuthError::AlgorithmNotAllowed));
    }

    #[test]
    fn a_declared_alg_pins_the_key_to_it() {
        let mut jwk = rsa_jwk("rsa", 2048);
        jwk["alg"] = json!("RS256");
        let keys = set(vec![jwk], &[]);
        assert_eq!(keys.find(Some("rsa"), Algorithm::PS256).err(), Some(AuthError::AlgorithmNotAllowed));
        assert!(keys.find(Some("rsa"), Algorithm::RS256).is_ok());
    }

    #[test]
    fn the_issuer_allow_list_narrows_every_key() {
        let keys = set(vec![rsa_jwk("rsa", 2048)], &[Algorithm::PS256]);
        assert_eq!(keys.find(Some("rsa"), Algorithm::RS256).err(), Some(AuthError::AlgorithmNotAllowed));
        assert!(keys.find(Some("rsa"), Algorithm::PS256).is_ok());
    }

    #[test]
    fn unusable_keys_are_skipped_and_their_neighbours_kept() {
        let mut enc = ec_jwk("enc");
        enc["use"] = json!("enc");
        let mut sig = ec_jwk("sig");
        sig["use"] = json!("sig");
        let oct = json!({"kty": "oct", "kid": "oct", "k": "c2VjcmV0"});
        let mut declared_hs = rsa_jwk("hs", 2048);
        declared_hs["alg"] = json!("HS256");
        let weird = json!({"kty": "XYZ", "kid": "weird"});
        let keys = set(vec![enc, oct, declared_hs, weird, rsa_jwk("short", 1024), sig], &[]);
        assert_eq!(keys.len(), 1);
        assert!(keys.find(Some("sig"), Algorithm::ES256).is_ok());
        assert_eq!(keys.find(Some("oct"), Algorithm::HS256).err(), Some(AuthError::UnknownKid));
    }

    #[test]
    fn rsa_keys_need_2048_bits() {
        assert_eq!(set(vec![rsa_jwk("r", 2040)], &[]).len(), 0);
        assert_eq!(set(vec![rsa_jwk("r", 2048)], &[]).len(), 1);
    }

    #[test]
    fn tokens_without_kid_need_exactly_one_candidate() {
        let one = set(vec![ec_jwk("a"), rsa_jwk("b", 2048)], &[]);
        assert!(one.find(None, Algorithm::ES256).is_ok());
        let two = set(vec![ec_jwk("a"), ec_jwk("b")], &[]);
        assert_eq!(two.find(None, Algorithm::ES256).err(), Some(AuthError::UnknownKid));
        assert_eq!(two.find(None, Algorithm::EdDSA).err(), Some(AuthError::AlgorithmNotAllowed));
        assert_eq!(two.find(Some("c"), Algorithm::ES256).err(), Some(AuthError::UnknownKid));
    }

    #[test]
    fn pem_keys_match_any_kid() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let key = from_pem(&pair.public_key_pem(), &[]).unwrap();
        assert_eq!(key.algorithms, [Algorithm::ES384]);
        let keys = KeySet::new(vec![key]);
        assert!(keys.find(Some("whatever"), Algorithm::ES384).is_ok());
        assert!(keys.find(None, Algorithm::ES384).is_ok());
        assert_eq!(keys.find(None, Algorithm::ES256).err(), Some(AuthError::AlgorithmNotAllowed));
    }

    #[test]
    fn pem_private_keys_are_refused() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        assert!(from_pem(&pair.serialize_pem(), &[]).unwrap_err().to_string().contains("private key"));
        assert_eq!(from_pem(&pair.public_key_pem(), &[]).unwrap().algorithms, [Algorithm::EdDSA]);
    }
}
