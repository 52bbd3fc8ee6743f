//! Revocations: callers the security team has cut off, on every replica.
//!
//! A revocation names one of
//!
//! - `principal:<caller>`: every call of that caller, as approvals and logs name it
//!   (`sub@iss` for a token, else the client certificate's SPIFFE id or subject);
//! - `jti:<id>`: the one token with that `jti` claim.
//!
//! It is written to the state store and announced on its change stream; each replica keeps
//! the whole (small) set in memory, loaded at start and extended by the stream's `revoked`
//! events, so the check on the hot path is a hash lookup, never a store round trip.
//!
//! When the store cannot be reached, a revocation made on another replica might not have
//! arrived: the set in memory is trusted for `state.revocations_max_staleness` after the
//! store last answered, then identified callers are refused until it answers again (fail
//! closed). Before the set was first loaded, nothing is trusted.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::broadcast::error::RecvError;

use super::{now_ms, StateEvent, StateStore, StoreError};
use crate::identity::Principal;

/// Why a caller is not admitted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the caller's access was revoked ({0})")]
    Revoked(String),
    #[error("revocations cannot be checked right now (the state store is unavailable); retry later")]
    Unknown,
}

pub struct Revocations {
    store: Arc<dyn StateStore>,
    revoked: ArcSwap<HashSet<String>>,
    loaded: AtomicBool,
    /// When the store last answered (ms since the epoch).
    confirmed_ms: AtomicU64,
    max_staleness: Duration,
}

/// What a revocation names: `principal:<caller>` or `jti:<id>`.
pub fn validate(subject: &str) -> Result<(), String> {
    match subject.split_once(':') {
        Some(("principal" | "jti", rest)) if !rest.is_empty() => Ok(()),
        _ => Err(format!("`{subject}`: a revocation names principal:<caller> or jti:<token id>")),
    }
}

impl Revocations {
    /// Reads the set from the store (once more in the background until that works) and
    /// keeps it current from then on.
    pub async fn start(store: Arc<dyn StateStore>, max_staleness: Duration) -> Arc<Revocations> {
        // Subscribed before the first read, so nothing revoked in between is missed.
        let events = store.events();
        let revocations = Arc::new(Revocations {
            store,
            revoked: ArcSwap::default(),
            loaded: AtomicBool::new(false),
            confirmed_ms: AtomicU64::new(0),
            max_staleness,
        });
        if let Err(e) = revocations.reload().await {
            tracing::warn!(error = %e, "revocations not loaded yet: identified callers are refused until they are");
        }
        tokio::spawn(revocations.clone().follow(events));
        revocations
    }

    /// Whether `principal` may go on. Anonymous callers have nothing to revoke.
    pub fn admit(&self, principal: &Principal) -> Result<(), Refused> {
        if principal.is_anonymous() {
            return Ok(());
        }
        let now = now_ms();
        if self.store.health().up && self.loaded.load(Ordering::Relaxed) {
            self.confirmed_ms.store(now, Ordering::Relaxed);
        } else if now.saturating_sub(self.confirmed_ms.load(Ordering::Relaxed)) > self.max_staleness.as_millis() as u64
        {
            return Err(Refused::Unknown);
        }
        let revoked = self.revoked.load();
        if revoked.is_empty() {
            return Ok(());
        }
        let caller = format!("principal:{}", principal.label());
        let jti = principal.token.as_ref().and_then(|t| t.claims.get("jti")?.as_str()).map(|jti| format!("jti:{jti}"));
        match [Some(caller), jti].into_iter().flatten().find(|s| revoked.contains(s)) {
            Some(subject) => Err(Refused::Revoked(subject)),
            None => Ok(()),
        }
    }

    /// Revokes `subject` on every replica.
    pub async fn revoke(&self, subject: &str) -> Result<(), StoreError> {
        self.store.revoke(subject).await?;
        self.add(subject);
        Ok(())
    }

    fn add(&self, subject: &str) {
        if !self.revoked.load().contains(subject) {
            self.revoked.rcu(|set| {
                let mut set = HashSet::clone(set);
                set.insert(subject.to_string());
                set
            });
        }
    }

    async fn reload(&self) -> Result<(), StoreError> {
        let all = self.store.revocations().await?;
        self.revoked.rcu(|set| set.iter().cloned().chain(all.iter().cloned()).collect::<HashSet<_>>());
        self.loaded.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Loads the set (again, until it succeeds), then applies every `revoked` event; a
    /// stream it fell behind on is read whole again.
    async fn follow(self: Arc<Self>, mut events: tokio::sync::broadcast::Receiver<StateEvent>) {
        loop {
            if !self.loaded.load(Ordering::Relaxed) {
                if let Err(e) = self.reload().await {
                    tracing::debug!(error = %e, "revocations not loaded yet: identified callers are refused");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
            match events.recv().await {
                Ok(StateEvent::Revoked { subject }) => {
                    tracing::warn!(subject = %subject, "revocation applied");
                    self.add(&subject);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => self.loaded.store(false, Ordering::Relaxed),
                Err(RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::TokenIdentity;
    use crate::state::embedded::EmbeddedStore;

    fn caller(subject: &str, jti: &str) -> Principal {
        let mut token = TokenIdentity { issuer: "https://idp".into(), subject: subject.into(), ..Default::default() };
        token.claims.insert("jti".into(), jti.into());
        Principal { token: Some(token), certificate: None }
    }

    #[tokio::test]
    async fn a_revoked_principal_or_token_is_refused_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn StateStore> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
        store.revoke("jti:t-1").await.unwrap();
        let revocations = Revocations::start(store.clone(), Duration::from_secs(30)).await;
        assert!(revocations.loaded.load(Ordering::Relaxed), "read before the gateway serves");
        assert_eq!(revocations.admit(&caller("alice", "t-1")), Err(Refused::Revoked("jti:t-1".into())), "loaded");
        assert_eq!(revocations.admit(&caller("alice", "t-2")), Ok(()), "another token of the same caller");

        revocations.revoke("principal:bob@https://idp").await.unwrap();
        assert!(matches!(revocations.admit(&caller("bob", "t-3")), Err(Refused::Revoked(_))));
        assert_eq!(revocations.admit(&caller("bobby", "t-4")), Ok(()), "a near-miss name");
        assert_eq!(revocations.admit(&Principal::default()), Ok(()), "anonymous: nothing to revoke");

        // Another process's revocation reaches this one through the store's events.
        store.revoke("principal:carol@https://idp").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(revocations.admit(&caller("carol", "t-5")), Err(Refused::Revoked(_))));
    }

    #[test]
    fn subjects_name_a_principal_or_a_token() {
        assert!(validate("principal:alice@https://idp").is_ok() && validate("jti:abc").is_ok());
        assert!(validate("alice").is_err() && validate("jti:").is_err() && validate("role:admin").is_err());
    }
}
