//! Validation of `coordination.k8s.io/v1` Leases, ported from Kubernetes 1.33
//! `pkg/apis/coordination/validation/validation.go` (`ValidateLease`). Leases have no
//! defaults.
//!
//! Pure: no IO, no tokio.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};

use crate::model::field::{FieldError, FieldPath};
use crate::model::validation::{
    is_qualified_name, name_is_dns_subdomain, validate_generic_object_meta,
};

#[cfg(test)]
mod tests;

/// Upstream `validLeaseStrategies`.
pub const LEASE_STRATEGIES: &[&str] = &["OldestEmulationVersion"];

/// Upstream `ValidateLease`: apimachinery's object metadata rules (namespaced, the name a DNS
/// subdomain), then `ValidateLeaseSpec`.
pub fn validate(lease: &Lease) -> Vec<FieldError> {
    let mut errs = validate_generic_object_meta(
        &lease.metadata,
        &FieldPath::new("metadata"),
        true,
        name_is_dns_subdomain,
    );
    if let Some(spec) = &lease.spec {
        errs.extend(validate_spec(spec, &FieldPath::new("spec")));
    }
    errs
}

/// Upstream `ValidateLeaseSpec`.
fn validate_spec(spec: &LeaseSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(seconds) = spec.lease_duration_seconds
        && seconds <= 0
    {
        errs.push(FieldError::invalid(
            &path.child("leaseDurationSeconds"),
            seconds,
            "must be greater than 0",
        ));
    }
    if let Some(transitions) = spec.lease_transitions
        && transitions < 0
    {
        errs.push(FieldError::invalid(
            &path.child("leaseTransitions"),
            transitions,
            "must be greater than or equal to 0",
        ));
    }
    let strategy = spec.strategy.as_deref();
    if let Some(strategy) = strategy {
        // Upstream's ValidateCoordinatedLeaseStrategy appends "strategy" to a path that already
        // ends in it; kept for identical messages.
        let p = path.child("strategy").child("strategy");
        if !strategy.contains('/') {
            if !LEASE_STRATEGIES.contains(&strategy) {
                errs.push(FieldError::not_supported(&p, strategy, LEASE_STRATEGIES));
            }
        } else {
            for msg in is_qualified_name(strategy) {
                errs.push(FieldError::invalid(&p, strategy, msg));
            }
        }
    }
    if spec
        .preferred_holder
        .as_deref()
        .is_some_and(|h| !h.is_empty())
        && strategy.is_none_or(str::is_empty)
    {
        errs.push(FieldError::forbidden(
            &path.child("preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}
