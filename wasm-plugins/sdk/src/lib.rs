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
pub use rule::Rule;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod glue;

/// Exports `detect` as the component's `detect` function. `detect` has the signature
/// `fn(&Context, &Payload, &Config) -> Result<Vec<Finding>, String>`.
///
/// On targets other than `wasm32` it only checks that signature, so the same crate builds
/// natively for its tests and benchmarks.
#[macro_export]
macro_rules! export_detector {
    ($detect:path) => {
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
            }
    $crate::glue::bindings::export!(Detector with_types_in $crate::glue::bindings);
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn(
            &$crate::Context,
            &$crate::Payload,
            &$crate::Config,
        ) -> ::std::result::Result<::std::vec::Vec<$crate::Finding>, ::std::string::String> = $detect;
    };
}
