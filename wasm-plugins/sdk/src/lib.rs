//! Write a Forge detector plugin as a plain Rust function.
//!
//! ```
//! use forge_plugin_sdk::{Category, Config, Context, Finding, Hook, LazyRegex, Payload, Severity};
//!
//! /// Internal ticket links are fine in results, but not in what an agent sends out.
//! static TICKET: LazyRegex = LazyRegex::new(r"\bINC-[0-9]{6}\b");
//!
//! pub fn detect(_cx: &Context, payload: &Payload, _config: &Config) -> Result<Vec<Finding>, String> {
//!     let mut findings = Vec::new();
//!     for scalar in payload.strings() {
//!         for m in TICKET.find_iter(&scalar.text) {
//!             findings.push(
//!                 Finding::new("tickets.internal-id", Category::Custom, Severity::Low)
//!                     .confidence(0.9)
//!                     .at(scalar, m.range())
//!                     .message(format!("internal ticket id in `{}`", scalar.field_name())),
//!             );
//!         }
//!     }
//!     Ok(findings)
//! }
//!
//! forge_plugin_sdk::export_detector!(detect);
//!
//! let cx = Context::new(Hook::Request, "tools/call");
//! let p = Payload::from_json(r#"{"arguments":{"body":"see INC-004417"}}"#).unwrap();
//! let f = detect(&cx, &p, &Config::default()).unwrap();
//! assert_eq!((f[0].pointer.as_str(), f[0].range()), ("/arguments/body", Some(4..14)));
//! assert_eq!(f[0].fingerprint.as_deref(), Some(forge_plugin_sdk::fingerprint("INC-004417").as_str()));
//! ```
//!
//! Everything here except [`export_detector!`]'s component glue is plain Rust, so a detector's
//! logic is unit-tested natively with `cargo test`; the glue exists only on `wasm32`.

mod config;
mod finding;
mod lazy;
mod payload;
mod rule;

pub use config::Config;
pub use finding::{fingerprint, Category, Finding, Severity, Span};
pub use lazy::{Captures, LazyRegex, Match};
pub use payload::{escape_pointer_token, Context, Hook, Payload, Scalar};
pub use rule::{Keywords, Rule};

/// A detector's entry point, as [`export_detector!`] exports it.
pub type Detect = fn(&Context, &Payload, &Config) -> Result<Vec<Finding>, String>;

/// Ordinary tool-result text (logs, prose, a query, a listing) for [`rehearse`].
pub const ORDINARY_TEXT: &str = "2026-11-30T10:22:04Z INFO api request GET /v2/invoices?limit=20 200 in 12ms\n\
Deployed billing-api v2.14.3 to eu-west-1; health checks passed on 3/3 pods.\n\
SELECT id, email FROM users WHERE created_at > now() - interval '7 days' returned 41 rows.\n\
The quarterly report lists revenue by region and the open support tickets (see page 4).\n\
drwxr-xr-x  5 dana staff  160 Nov 30 10:21 src; total 48, Build #8812 passed: 1,204 tests.";

/// Runs `detect` once on `json` and drops what it finds: for a `prepare` that lets the
/// regexes' lazy DFAs build the states ordinary text needs before the gateway snapshots
/// them (each call's fresh instance then starts with those states).
pub fn rehearse(detect: Detect, cx: &Context, json: &serde_json::Value) {
    if let Ok(payload) = Payload::from_json(&json.to_string()) {
        let _ = detect(cx, &payload, &Config::default());
    }
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod glue;

/// Exports `detect` as the component's `detect` function. `detect` has the signature
/// `fn(&Context, &Payload, &Config) -> Result<Vec<Finding>, String>`.
///
/// The optional second argument, a `fn()`, is exported as `prepare`: the gateway runs it once
/// when it loads the plugin and snapshots the result, so every call's fresh instance starts
/// with what it built. Compile the plugin's patterns there ([`LazyRegex::compile_now`], and
/// [`rehearse`] the detector on ordinary text), and a call pays only for searching. Without
/// it, `prepare` does nothing and each call compiles what it uses.
///
/// On targets other than `wasm32` it only checks the signatures, so the same crate builds
/// natively for its tests and benchmarks.
#[macro_export]
macro_rules! export_detector {
    ($detect:path) => {
        $crate::export_detector!($detect, $crate::prepare_nothing);
    };
    ($detect:path, $prepare:path) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Detector;
            impl $crate::glue::bindings::Guest for Detector {
                fn detect(
                    cx: $crate::glue::bindings::forge::detector::types::Context,
                    input: $crate::glue::bindings::forge::detector::types::Payload,
                    config: ::std::string::String,
                ) -> ::std::result::Result<
                    ::std::vec::Vec<$crate::glue::bindings::forge::detector::types::Finding>,
                    ::std::string::String,
                > {
                    $crate::glue::call($detect, cx, input, &config)
                }

                fn prepare() {
                    $prepare()
                }
            }
    $crate::glue::bindings::export!(Detector with_types_in $crate::glue::bindings);
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: ($crate::Detect, fn()) = ($detect, $prepare);
    };
}

/// The `prepare` of a detector that has nothing to prepare.
#[doc(hidden)]
pub fn prepare_nothing() {}
