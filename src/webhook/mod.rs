//! `forge webhook`: a Kubernetes mutating admission webhook that adds the Forge sidecar to
//! pods that opt in. See docs/injection.md.
//!
//! - [`admission`]: AdmissionReview v1 → allowed/refused, with a JSON Patch
//! - [`annotations`]: the pod's `forge.dev/*` opt-in, opt-out and overrides, validated
//! - [`patch`]: the sidecar container, its volumes, and the port takeover
//! - [`config`]: the webhook's YAML configuration
//! - [`server`]: TLS listener at `/mutate` and the admin port

pub mod admission;
pub mod annotations;
pub mod config;
pub mod patch;
pub mod server;

pub use config::WebhookConfig;
