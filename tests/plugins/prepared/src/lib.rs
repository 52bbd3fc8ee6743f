//! Prepares itself: `prepare` records that it ran, and every call counts itself. Each
//! finding's rule id says what the call's instance saw (`prepared.calls-1` when `prepare`'s
//! state is there and no earlier call's is), so tests can tell a snapshot that carries
//! `prepare`'s work from one that leaks state between calls.

wit_bindgen::generate!({ path: "../../../wit", world: "prepared-detector" });

use forge::detector::types::{Category, Severity};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

static PREPARED: AtomicBool = AtomicBool::new(false);
static CALLS: AtomicU32 = AtomicU32::new(0);

struct Prepared;

impl Guest for Prepared {
    fn prepare() {
        PREPARED.store(true, Ordering::Relaxed);
    }

    fn detect(_cx: Context, input: Payload, _config: String) -> Result<Vec<Finding>, String> {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let seen = if PREPARED.load(Ordering::Relaxed) { format!("calls-{calls}") } else { "unprepared".into() };
        let pointer = input.scalars.first().map(|s| s.pointer.clone()).unwrap_or_default();
        Ok(vec![Finding {
            rule_id: format!("prepared.{seen}"),
            category: Category::Custom,
            severity: Severity::Info,
            confidence: 1.0,
            pointer,
            span: None,
            replacement: None,
            fingerprint: None,
            message: String::new(),
        }])
    }
}

export!(Prepared);
