// PLACEHOLDER: replaced by the validation branch
//! Pod defaults and validation. This placeholder only exists so that `model::manifest` compiles
//! in the `model` branch; the validation branch owns the real implementation.

use k8s_openapi::api::core::v1::Pod;

use crate::model::field::FieldError;

/// Sets the defaults the API server sets on create. Placeholder: sets nothing.
pub fn set_defaults(_pod: &mut Pod) {}

/// Validates a Pod as the API server does on create. Placeholder: finds nothing.
pub fn validate(_pod: &Pod) -> Vec<FieldError> {
    Vec::new()
}
