//! Signature verification for jsonwebtoken, done by ring.
//!
//! jsonwebtoken's RustCrypto backend verifies an ES256 token in about 240 µs on the 2-core
//! machines Forge is tested on; ring, already linked for rustls, takes about 75 µs. Every
//! authenticated request pays this, so the gateway installs a provider whose verifiers are
//! ring's. Signing and key utilities stay RustCrypto's (the gateway never signs; tests do).
//! jsonwebtoken's providers are process-wide: if something used jsonwebtoken before the
//! gateway installed this one, tokens still verify, with RustCrypto.

use std::sync::LazyLock;

use jsonwebtoken::crypto::{rust_crypto, CryptoProvider, JwtVerifier};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use ring::signature::{self as ring_signature, RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey};

static PROVIDER: LazyLock<CryptoProvider> =
    LazyLock::new(|| CryptoProvider { verifier_factory: verifier, ..rust_crypto::DEFAULT_PROVIDER.clone() });

pub(crate) fn install() {
    let ours: &'static CryptoProvider = &PROVIDER;
    if let Err(existing) = ours.install_default() {
        if !std::ptr::eq(existing, ours) {
            tracing::debug!("jsonwebtoken already had a crypto provider; tokens are verified with it");
        }
    }
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    if alg.family() == AlgorithmFamily::Hmac {
        return (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(alg, key);
    }
    if alg.family() != key.family() {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(RingVerifier { alg: *alg, key: key.kind().clone() }))
}

struct RingVerifier {
    alg: Algorithm,
    key: DecodingKeyKind,
}

impl RingVerifier {
    fn rsa_parameters(&self) -> Option<&'static RsaParameters> {
        Some(match self.alg {
            Algorithm::RS256 => &ring_signature::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::RS384 => &ring_signature::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::RS512 => &ring_signature::RSA_PKCS1_2048_8192_SHA512,
            Algorithm::PS256 => &ring_signature::RSA_PSS_2048_8192_SHA256,
            Algorithm::PS384 => &ring_signature::RSA_PSS_2048_8192_SHA384,
            Algorithm::PS512 => &ring_signature::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let verified = match (&self.key, self.rsa_parameters()) {
            (DecodingKeyKind::RsaModulusExponent { n, e }, Some(params)) => {
                RsaPublicKeyComponents { n, e }.verify(params, message, signature)
            }
            (DecodingKeyKind::SecretOrDer(der), Some(params)) => {
                UnparsedPublicKey::new(params, der).verify(message, signature)
            }
            (DecodingKeyKind::SecretOrDer(point), None) => {
                let algorithm: &'static dyn ring_signature::VerificationAlgorithm = match self.alg {
                    Algorithm::ES256 => &ring_signature::ECDSA_P256_SHA256_FIXED,
                    Algorithm::ES384 => &ring_signature::ECDSA_P384_SHA384_FIXED,
                    Algorithm::EdDSA => &ring_signature::ED25519,
                    _ => return Err(signature::Error::new()),
                };
                UnparsedPublicKey::new(algorithm, point).verify(message, signature)
            }
            (DecodingKeyKind::RsaModulusExponent { .. }, None) => return Err(signature::Error::new()),
        };
        verified.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::EncodingKey;

    use super::*;

    /// Signs with RustCrypto, verifies with ring: two implementations must agree.
    fn round_trip(alg: Algorithm, pair: &rcgen::KeyPair, decoding: DecodingKey) {
        let signing = match alg {
            Algorithm::EdDSA => EncodingKey::from_ed_der(pair.serialized_der()),
            _ => EncodingKey::from_ec_der(pair.serialized_der()),
        };
        let message = b"header.claims";
        let signature = (rust_crypto::DEFAULT_PROVIDER.signer_factory)(&alg, &signing).unwrap().sign(message);
        let verifier = verifier(&alg, &decoding).unwrap();
        assert!(verifier.verify(message, &signature).is_ok(), "{alg:?}");
        assert!(verifier.verify(b"header.claimz", &signature).is_err(), "{alg:?} tampered message");
        let mut bad = signature.clone();
        bad[5] ^= 1;
        assert!(verifier.verify(message, &bad).is_err(), "{alg:?} tampered signature");
    }

    #[test]
    fn ring_verifies_what_rust_crypto_signs() {
        let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        round_trip(Algorithm::ES256, &p256, DecodingKey::from_ec_der(p256.public_key_raw()));
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        round_trip(Algorithm::ES384, &p384, DecodingKey::from_ec_der(p384.public_key_raw()));
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        round_trip(Algorithm::EdDSA, &ed, DecodingKey::from_ed_der(ed.public_key_raw()));
    }

    /// A 2048-bit RSA public key and an RS256 and a PS256 signature by its private key (made
    /// once with Python's `cryptography`; the private key was not kept).
    const RSA_N: &str = include_str!("testdata/rsa_n.txt");
    const RS256_SIGNATURE: &str = include_str!("testdata/rs256_signature.txt");
    const PS256_SIGNATURE: &str = include_str!("testdata/ps256_signature.txt");
    const SIGNED_MESSAGE: &[u8] = b"forge rsa test vector";

    #[test]
    fn ring_verifies_rsa_pkcs1_and_pss() {
        let key = DecodingKey::from_rsa_components(RSA_N.trim(), "AQAB").unwrap();
        for (alg, signature) in [(Algorithm::RS256, RS256_SIGNATURE), (Algorithm::PS256, PS256_SIGNATURE)] {
            let signature = URL_SAFE_NO_PAD.decode(signature.trim()).unwrap();
            let verifier = verifier(&alg, &key).unwrap();
            assert!(verifier.verify(SIGNED_MESSAGE, &signature).is_ok(), "{alg:?}");
            assert!(verifier.verify(b"another message", &signature).is_err(), "{alg:?}");
        }
        let pss_as_pkcs1 = URL_SAFE_NO_PAD.decode(PS256_SIGNATURE.trim()).unwrap();
        assert!(verifier(&Algorithm::RS256, &key).unwrap().verify(SIGNED_MESSAGE, &pss_as_pkcs1).is_err());
    }

    #[test]
    fn a_key_of_another_family_is_refused() {
        let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let ec = DecodingKey::from_ec_der(p256.public_key_raw());
        assert!(verifier(&Algorithm::RS256, &ec).is_err());
        assert!(verifier(&Algorithm::ES256, &ec).is_ok());
    }
}
