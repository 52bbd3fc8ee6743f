//! Signed checkpoints: the gateway's signed statement that its log held `size` records
//! whose Merkle tree root was `root`.
//!
//! The signed bytes are a short text anyone can rebuild (docs/evidence.md):
//!
//! ```text
//! forge-evidence-checkpoint/v1
//! <origin>
//! <size>
//! <root, lower-case hex>
//! <time, Unix milliseconds>
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::merkle::Hash;
use super::record::hex;
use crate::signing::{PublicKey, SigningKey};

const HEADER: &str = "forge-evidence-checkpoint/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The gateway whose log this is (its identity's name).
    pub origin: String,
    pub size: u64,
    /// The RFC 6962 tree root over the first `size` records, hex.
    pub root: String,
    pub time_ms: u64,
    pub key_id: String,
    /// Ed25519 over [`Checkpoint::signed_text`], base64.
    pub signature: String,
}

impl Checkpoint {
    pub fn sign(key: &SigningKey, origin: &str, size: u64, root: &Hash, time_ms: u64) -> Checkpoint {
        let root = hex(root);
        let text = signed_text(origin, size, &root, time_ms);
        Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            time_ms,
            key_id: key.key_id(),
            signature: STANDARD.encode(key.sign(text.as_bytes())),
        }
    }

    pub fn signed_text(&self) -> String {
        signed_text(&self.origin, self.size, &self.root, self.time_ms)
    }

    /// The signature checks with `key`, and `key` is the one the checkpoint names.
    pub fn verify(&self, key: &PublicKey) -> bool {
        let Ok(signature) = STANDARD.decode(&self.signature) else { return false };
        key.key_id() == self.key_id && key.verify(self.signed_text().as_bytes(), &signature)
    }

    pub fn root_hash(&self) -> Option<Hash> {
        parse_hash(&self.root)
    }
}

fn signed_text(origin: &str, size: u64, root: &str, time_ms: u64) -> String {
    format!("{HEADER}\n{origin}\n{size}\n{root}\n{time_ms}\n")
}

/// 64 hex digits → a hash.
pub fn parse_hash(text: &str) -> Option<Hash> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_only_unchanged_and_with_its_key() {
        let key = SigningKey::generate().unwrap();
        let cp = Checkpoint::sign(&key, "gw-0", 7, &[9u8; 32], 1_000);
        assert!(cp.verify(key.public_key()));
        assert_eq!(cp.root_hash(), Some([9u8; 32]));
        assert!(!Checkpoint { size: 8, ..cp.clone() }.verify(key.public_key()));
        assert!(!Checkpoint { origin: "gw-1".into(), ..cp.clone() }.verify(key.public_key()));
        assert!(!cp.verify(SigningKey::generate().unwrap().public_key()));
        assert_eq!(cp.signed_text(), format!("forge-evidence-checkpoint/v1\ngw-0\n7\n{}\n1000\n", "09".repeat(32)));
    }
}
