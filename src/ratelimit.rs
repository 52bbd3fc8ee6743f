//! Rate limits that policy attaches to a decision, enforced with GCRA (the generic cell rate
//! algorithm): per key one "theoretical arrival time", so a limit costs one number of state
//! and one atomic step — in memory here, or one Lua script round trip in Redis.
//!
//! A limit of `limit` calls per `period` admits a burst of `limit` and then one call every
//! `period / limit`. When the shared store is unavailable the limiter counts locally (each
//! replica on its own) and says so in `forge_rate_limit_fallbacks_total`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use crate::state::{Rate, RateOutcome, StateStore, StoreError};

/// Keys tracked in memory before idle ones are forgotten.
const LOCAL_KEY_LIMIT: usize = 100_000;

/// GCRA in one step, in microseconds: returns the new arrival time to store, or how long
/// until a call would be admitted.
pub fn gcra_step(tat_us: Option<u64>, now_us: u64, rate: Rate) -> Result<u64, u64> {
    let limit = rate.limit.max(1);
    let period_us = rate.period_ms.saturating_mul(1000).max(1);
    let interval = (period_us / limit).max(1);
    let tolerance = period_us.saturating_sub(interval);
    let tat = tat_us.unwrap_or(now_us).max(now_us);
    let ahead = tat - now_us;
    if ahead > tolerance {
        return Err(ahead - tolerance);
    }
    Ok(tat + interval)
}

/// Per-process GCRA state: the embedded store's limiter, and the Redis store's fallback.
#[derive(Default)]
pub struct LocalGcra {
    arrivals: Mutex<HashMap<String, u64>>,
}

impl LocalGcra {
    pub fn check(&self, key: &str, rate: Rate) -> RateOutcome {
        let now = now_us();
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        if arrivals.len() >= LOCAL_KEY_LIMIT && !arrivals.contains_key(key) {
            // A key whose arrival time has passed is at rest: forgetting it changes nothing.
            arrivals.retain(|_, tat| *tat > now);
        }
        match gcra_step(arrivals.get(key).copied(), now, rate) {
            Ok(tat) => {
                arrivals.insert(key.to_string(), tat);
                RateOutcome::Allowed
            }
            Err(wait_us) => RateOutcome::Limited { retry_after_ms: wait_us.div_ceil(1000) },
        }
    }
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The gateway's limiter: the state store's, falling back to local counters.
pub struct RateLimiter {
    store: Arc<dyn StateStore>,
    fallback: LocalGcra,
    decisions: IntCounterVec,
    fallbacks: IntCounter,
    last_warning: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(store: Arc<dyn StateStore>) -> prometheus::Result<RateLimiter> {
        Ok(RateLimiter {
            store,
            fallback: LocalGcra::default(),
            decisions: IntCounterVec::new(
                Opts::new("forge_rate_limit_decisions_total", "Calls checked against a policy rate limit, by outcome"),
                &["outcome"],
            )?,
            fallbacks: IntCounter::new(
                "forge_rate_limit_fallbacks_total",
                "Rate-limit checks counted locally because the shared state store was unavailable",
            )?,
            last_warning: Mutex::new(None),
        })
    }

    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.decisions.clone()))?;
        registry.register(Box::new(self.fallbacks.clone()))
    }

    pub async fn check(&self, key: &str, rate: Rate) -> RateOutcome {
        let outcome = match self.store.rate_limit(key, rate).await {
            Ok(outcome) => outcome,
            Err(e) => {
                self.warn_fallback(&e);
                self.fallbacks.inc();
                self.fallback.check(key, rate)
            }
        };
        let label = if outcome == RateOutcome::Allowed { "allowed" } else { "limited" };
        self.decisions.with_label_values(&[label]).inc();
        outcome
    }

    /// One warning a second at most: an outage would otherwise log every call.
    fn warn_fallback(&self, e: &StoreError) {
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed().as_secs() >= 1) {
            tracing::warn!(error = %e, "rate limits are counted locally until the state store is back");
            *last = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_PER_SECOND: Rate = Rate { limit: 10, period_ms: 1000 };

    #[test]
    fn a_full_burst_passes_and_the_next_call_waits_one_interval() {
        let mut tat = None;
        for _ in 0..10 {
            tat = Some(gcra_step(tat, 5_000_000, TEN_PER_SECOND).expect("within the burst"));
        }
        assert_eq!(gcra_step(tat, 5_000_000, TEN_PER_SECOND), Err(100_000), "one interval (100ms) to wait");
        assert!(gcra_step(tat, 5_100_000, TEN_PER_SECOND).is_ok(), "admitted once the interval has passed");
    }

    #[test]
    fn a_key_at_rest_starts_a_fresh_burst() {
        let tat = gcra_step(None, 0, TEN_PER_SECOND).unwrap();
        assert!(gcra_step(Some(tat), 60_000_000, TEN_PER_SECOND).is_ok());
    }

    #[test]
    fn local_limits_are_per_key() {
        let local = LocalGcra::default();
        let rate = Rate { limit: 2, period_ms: 60_000 };
        assert_eq!(local.check("a", rate), RateOutcome::Allowed);
        assert_eq!(local.check("a", rate), RateOutcome::Allowed);
        assert!(matches!(local.check("a", rate), RateOutcome::Limited { retry_after_ms } if retry_after_ms > 29_000));
        assert_eq!(local.check("b", rate), RateOutcome::Allowed, "another key has its own budget");
    }
}
