//! Validation of `v1` Events written through the API, ported from Kubernetes 1.33
//! `pkg/apis/core/validation/events.go` (`ValidateEventCreate` for the `v1` group-version,
//! which is `legacyValidateEvent`), plus object metadata validation.
//!
//! Field paths are upstream's, which name the internal fields: `reportingController` is the
//! `reportingComponent` of `v1`.
//!
//! Pure: no IO, no tokio. The store's own events (`store::events`) do not come through here.

use k8s_openapi::api::core::v1::Event;

use crate::model::field::{FieldError, FieldPath};
use crate::model::validation::{
    is_dns1123_subdomain, is_qualified_name, name_is_dns_subdomain, validate_object_meta,
};

#[cfg(test)]
mod tests;

/// Upstream `ReportingInstanceLengthLimit`.
pub const REPORTING_INSTANCE_LENGTH_LIMIT: usize = 128;
/// Upstream `ActionLengthLimit`.
pub const ACTION_LENGTH_LIMIT: usize = 128;
/// Upstream `ReasonLengthLimit`.
pub const REASON_LENGTH_LIMIT: usize = 128;
/// Upstream `NoteLengthLimit` (the message).
pub const NOTE_LENGTH_LIMIT: usize = 1024;

/// Validates a new `v1` Event: its metadata (namespaced, the name a DNS subdomain), then
/// upstream's `legacyValidateEvent`: the involved object's namespace agrees with the event's;
/// a new-style event (with `eventTime`) names its reporting controller, instance, action and
/// reason within upstream's length limits; the namespace is a DNS subdomain.
pub fn validate(event: &Event) -> Vec<FieldError> {
    let mut errs = validate_object_meta(
        &event.metadata,
        &FieldPath::new("metadata"),
        true,
        name_is_dns_subdomain,
    );
    let namespace = event.metadata.namespace.as_deref().unwrap_or_default();
    let involved_namespace = event
        .involved_object
        .namespace
        .as_deref()
        .unwrap_or_default();
    let involved_path = FieldPath::new("involvedObject").child("namespace");
    let mismatch = || {
        FieldError::invalid(
            &involved_path,
            involved_namespace,
            "does not match event.namespace",
        )
    };
    if event.event_time.is_none() {
        // An old-style event: the namespaces agree ("default" is allowed for old clients).
        if involved_namespace.is_empty() {
            if !namespace.is_empty() && namespace != "default" {
                errs.push(mismatch());
            }
        } else if namespace != involved_namespace {
            errs.push(mismatch());
        }
    } else {
        if involved_namespace.is_empty() && namespace != "default" && namespace != "kube-system" {
            errs.push(mismatch());
        }
        let controller = event.reporting_component.as_deref().unwrap_or_default();
        let controller_path = FieldPath::new("reportingController");
        if controller.is_empty() {
            errs.push(FieldError::required(&controller_path, ""));
        }
        for msg in is_qualified_name(controller) {
            errs.push(FieldError::invalid(&controller_path, controller, msg));
        }
        for (name, value, limit, required) in [
            (
                "reportingInstance",
                &event.reporting_instance,
                REPORTING_INSTANCE_LENGTH_LIMIT,
                true,
            ),
            ("action", &event.action, ACTION_LENGTH_LIMIT, true),
            ("reason", &event.reason, REASON_LENGTH_LIMIT, true),
            ("message", &event.message, NOTE_LENGTH_LIMIT, false),
        ] {
            let value = value.as_deref().unwrap_or_default();
            let path = FieldPath::new(name);
            if required && value.is_empty() {
                errs.push(FieldError::required(&path, ""));
            }
            if value.len() > limit {
                errs.push(FieldError::invalid(
                    &path,
                    "",
                    format!("can have at most {limit} characters"),
                ));
            }
        }
    }
    for msg in is_dns1123_subdomain(namespace) {
        errs.push(FieldError::invalid(
            &FieldPath::new("namespace"),
            namespace,
            msg,
        ));
    }
    errs
}
