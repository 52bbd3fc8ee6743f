//! Tokens already verified, remembered so that a caller presenting the same token again skips
//! signature verification (about 40 µs for ES256 here, most of a request's authentication).
//!
//! An entry is keyed by SHA-256 of the whole token, so any change to any byte misses. It is
//! valid until the token's `exp` minus the issuer's leeway — earlier than verification itself
//! would refuse it — and only for the key set it was verified with: when the issuer's keys
//! change, every entry is dropped. The claims that depend on time only get better as time
//! passes (`nbf`, `iat` were in the past when it was verified), except `exp`, which each use
//! checks. The cache is bounded; when full, an arbitrary entry makes room.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::identity::TokenIdentity;

pub(crate) type Key = [u8; 32];

pub(crate) struct TokenCache {
    max_entries: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The key-set generation every entry was verified with.
    generation: u64,
    entries: HashMap<Key, Entry>,
}

struct Entry {
    identity: TokenIdentity,
    /// Unix seconds; the entry serves while `now < until`.
    until: u64,
}

impl TokenCache {
    pub fn new(max_entries: usize) -> TokenCache {
        TokenCache { max_entries, inner: Mutex::default() }
    }

    pub fn key(token: &str) -> Key {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The identity verified earlier for this token with key-set `generation`, if it is still
    /// valid at `now` (Unix seconds).
    pub fn get(&self, key: &Key, generation: u64, now: u64) -> Option<TokenIdentity> {
        let mut inner = self.lock();
        if inner.generation != generation {
            inner.entries.clear();
            inner.generation = generation;
            return None;
        }
        match inner.entries.get(key) {
            Some(entry) if now < entry.until => Some(entry.identity.clone()),
            Some(_) => {
                inner.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers a token verified with key-set `generation` until `until` (Unix seconds).
    pub fn insert(&self, key: Key, generation: u64, identity: &TokenIdentity, until: u64, now: u64) {
        if until <= now || self.max_entries == 0 {
            return;
        }
        let mut inner = self.lock();
        if inner.generation != generation {
            inner.entries.clear();
            inner.generation = generation;
        }
        if inner.entries.len() >= self.max_entries && !inner.entries.contains_key(&key) {
            if let Some(evicted) = inner.entries.keys().next().copied() {
                inner.entries.remove(&evicted);
            }
        }
        inner.entries.insert(key, Entry { identity: identity.clone(), until });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> TokenIdentity {
        TokenIdentity { issuer: "https://idp".into(), subject: "alice".into(), ..Default::default() }
    }

    #[test]
    fn a_token_is_served_until_its_validity_ends() {
        let cache = TokenCache::new(10);
        let key = TokenCache::key("header.claims.signature");
        assert_eq!(cache.get(&key, 1, 100), None);
        cache.insert(key, 1, &alice(), 160, 100);
        assert_eq!(cache.get(&key, 1, 159), Some(alice()));
        assert_eq!(cache.get(&key, 1, 160), None, "not at or after `until`");
        assert_eq!(cache.len(), 0, "the stale entry is gone");
    }

    #[test]
    fn any_other_token_misses() {
        let cache = TokenCache::new(10);
        cache.insert(TokenCache::key("a.b.c"), 1, &alice(), 160, 100);
        assert_eq!(cache.get(&TokenCache::key("a.b.d"), 1, 100), None);
    }

    #[test]
    fn a_new_key_set_drops_every_entry() {
        let cache = TokenCache::new(10);
        let key = TokenCache::key("a.b.c");
        cache.insert(key, 1, &alice(), 160, 100);
        assert_eq!(cache.get(&key, 2, 101), None);
        assert_eq!(cache.get(&key, 1, 101), None, "dropped, not merely hidden");
    }

    #[test]
    fn a_token_too_close_to_expiry_is_not_remembered() {
        let cache = TokenCache::new(10);
        let key = TokenCache::key("a.b.c");
        cache.insert(key, 1, &alice(), 100, 100);
        assert_eq!(cache.get(&key, 1, 100), None);
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let cache = TokenCache::new(3);
        for i in 0..10 {
            cache.insert(TokenCache::key(&format!("token-{i}")), 1, &alice(), 160, 100);
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&TokenCache::key("token-9"), 1, 100).is_some(), "the newest entry is kept");
    }

    #[test]
    fn a_zero_bound_remembers_nothing() {
        let cache = TokenCache::new(0);
        let key = TokenCache::key("a.b.c");
        cache.insert(key, 1, &alice(), 160, 100);
        assert_eq!(cache.get(&key, 1, 100), None);
    }
}
