//! Defaults and validation of Pods, ported from Kubernetes 1.33: `pkg/apis/core/v1/defaults.go`
//! (plus what the API server's admission and registry strategy add on create) and
//! `pkg/apis/core/validation/validation.go` (`ValidatePodCreate`).
//!
//! A manifest goes through [`set_defaults`] and then [`validate`], like a `kubectl create`
//! through the API server: [`validate`] reports every problem at once, each rendered exactly as
//! the API server renders it (`spec.containers[0].name: Required value`).
//!
//! Feature gates are taken as in a default 1.33 API server, except `ContainerStopSignals`
//! (alpha in 1.33), which podvisor treats as enabled because it implements `stopSignal`.
//!
//! Pure: no IO, no tokio; this module does not read manifests (that is the decoder's job) and
//! does not decide what a pod does at run time.

mod defaults;
mod image;
mod validate;
mod volumes;

pub use defaults::{set_defaults, set_pod_spec_defaults};
pub use image::default_image_pull_policy;
pub use validate::{STOP_SIGNALS_LINUX, validate, validate_pod_template_spec};

#[cfg(test)]
mod tests;
