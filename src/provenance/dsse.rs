//! DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse v1.0).
//!
//! The signature covers the pre-authentication encoding of the payload type and the payload
//! bytes, so a verifier never parses JSON it has not authenticated, and a signature made for
//! one payload type cannot be replayed as another.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::Reason;
use crate::signing::{PublicKey, SigningKey};

/// The payload type of an in-toto Statement, as in-toto attestations declare it.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The envelope as written to disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<Signature>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signature {
    /// Optional in DSSE; we always write the signer's RFC 7638 key id.
    #[serde(default)]
    pub keyid: String,
    pub sig: String,
}

/// The payload of an envelope whose signature a trusted key verified.
#[derive(Debug)]
pub struct Opened {
    pub payload: Vec<u8>,
    pub signer: String,
}

/// `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

pub fn sign(payload_type: &str, payload: &[u8], key: &SigningKey) -> Envelope {
    let sig = key.sign(&pae(payload_type, payload));
    Envelope {
        payload: STANDARD.encode(payload),
        payload_type: payload_type.to_string(),
        signatures: vec![Signature { keyid: key.key_id(), sig: STANDARD.encode(sig) }],
    }
}

/// Checks that one of `trusted` signed the envelope and returns its payload.
pub fn open(envelope: &[u8], payload_type: &str, trusted: &[PublicKey]) -> Result<Opened, (Reason, String)> {
    let malformed = |detail: String| (Reason::MalformedEnvelope, detail);
    let envelope: Envelope =
        serde_json::from_slice(envelope).map_err(|e| malformed(format!("not a DSSE envelope: {e}")))?;
    if envelope.payload_type != payload_type {
        return Err((
            Reason::WrongPayloadType,
            format!("payloadType is {:?}, expected {payload_type:?}", envelope.payload_type),
        ));
    }
    let payload = decode(&envelope.payload).ok_or_else(|| malformed("the payload is not base64".into()))?;
    if envelope.signatures.is_empty() {
        return Err(malformed("the envelope holds no signatures".into()));
    }
    let message = pae(payload_type, &payload);
    // DSSE's keyid is an unauthenticated hint, and other tools compute it their own way:
    // every trusted key is tried, and the keyid only tells a forgery from a stranger.
    for signature in &envelope.signatures {
        let sig = decode(&signature.sig).ok_or_else(|| malformed("a signature is not base64".into()))?;
        if let Some(key) = trusted.iter().find(|key| key.verify(&message, &sig)) {
            return Ok(Opened { payload, signer: key.key_id() });
        }
    }
    let trusted_ids: Vec<String> = trusted.iter().map(PublicKey::key_id).collect();
    let signers: Vec<&str> = envelope.signatures.iter().map(|s| s.keyid.as_str()).collect();
    if signers.iter().any(|id| trusted_ids.iter().any(|t| t == id)) {
        Err((Reason::BadSignature, format!("the signature of trusted key {} does not verify", signers.join(", "))))
    } else if trusted.is_empty() {
        Err((Reason::UntrustedSigner, "no key is trusted for this kind of artifact".into()))
    } else {
        Err((Reason::UntrustedSigner, format!("signed by key {:?}, which is not trusted", signers.join(", "))))
    }
}

/// DSSE allows standard and URL-safe base64; padding is optional in practice.
fn decode(text: &str) -> Option<Vec<u8>> {
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    [GeneralPurpose::new(&alphabet::STANDARD, config), GeneralPurpose::new(&alphabet::URL_SAFE, config)]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_specification_example() {
        // The worked example in the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn an_envelope_opens_only_for_a_trusted_key_and_its_own_bytes() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let envelope = serde_json::to_vec(&sign(PAYLOAD_TYPE, b"{}", &key)).unwrap();
        let opened = open(&envelope, PAYLOAD_TYPE, &[other.public_key().clone(), key.public_key().clone()]).unwrap();
        assert_eq!((opened.payload.as_slice(), opened.signer), (&b"{}"[..], key.key_id()));

        let reason = |bytes: &[u8], keys: &[PublicKey]| open(bytes, PAYLOAD_TYPE, keys).unwrap_err().0;
        assert_eq!(reason(&envelope, &[other.public_key().clone()]), Reason::UntrustedSigner);
        assert_eq!(reason(&envelope, &[]), Reason::UntrustedSigner);
        let mut forged = sign(PAYLOAD_TYPE, b"{}", &key);
        forged.payload = STANDARD.encode(b"{ }");
        assert_eq!(reason(&serde_json::to_vec(&forged).unwrap(), &[key.public_key().clone()]), Reason::BadSignature);
        assert_eq!(reason(&envelope[..envelope.len() / 2], &[key.public_key().clone()]), Reason::MalformedEnvelope);
        let other_type = serde_json::to_vec(&sign("application/json", b"{}", &key)).unwrap();
        assert_eq!(reason(&other_type, &[key.public_key().clone()]), Reason::WrongPayloadType);
    }
}
