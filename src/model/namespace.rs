//! Defaults and validation of Namespaces, ported from Kubernetes 1.33:
//! `pkg/apis/core/v1/defaults.go` (`SetDefaults_Namespace`, `SetDefaults_NamespaceStatus`), the
//! registry strategy's `PrepareForCreate` (`pkg/registry/core/namespace`) and
//! `pkg/apis/core/validation/validation.go` (`ValidateNamespace`).
//!
//! Namespaces are cluster-scoped: like the API server, [`set_defaults`] clears a
//! `metadata.namespace` instead of rejecting it.
//!
//! Pure: no IO, no tokio.

use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec, NamespaceStatus};

use crate::model::field::{FieldError, FieldPath};
use crate::model::validation::{name_is_dns_label, validate_finalizer_name, validate_object_meta};

#[cfg(test)]
mod tests;

/// The label every namespace carries, set to its name (upstream `LabelMetadataName`).
pub const LABEL_METADATA_NAME: &str = "kubernetes.io/metadata.name";

/// The finalizer every new namespace gets (upstream `FinalizerKubernetes`).
pub const FINALIZER_KUBERNETES: &str = "kubernetes";

/// The phase of a namespace that is not being deleted (upstream `NamespaceActive`).
pub const PHASE_ACTIVE: &str = "Active";

/// What the API server does to a new namespace before validating it: the request's
/// `metadata.namespace` is cleared (the kind is cluster-scoped), the
/// `kubernetes.io/metadata.name` label is set to the name, the `kubernetes` finalizer is added
/// to `spec.finalizers`, and the status becomes `phase: Active` (whatever was sent).
pub fn set_defaults(namespace: &mut Namespace) {
    namespace.metadata.namespace = None;
    // SetDefaults_Namespace: only with a name (a generated one gets it when it is generated).
    if let Some(name) = namespace.metadata.name.clone().filter(|n| !n.is_empty()) {
        namespace
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(LABEL_METADATA_NAME.to_owned(), name);
    }
    // PrepareForCreate.
    let spec = namespace.spec.get_or_insert_with(NamespaceSpec::default);
    let finalizers = spec.finalizers.get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == FINALIZER_KUBERNETES) {
        finalizers.push(FINALIZER_KUBERNETES.to_owned());
    }
    namespace.status = Some(NamespaceStatus {
        phase: Some(PHASE_ACTIVE.to_owned()),
        conditions: None,
    });
}

/// Upstream `ValidateNamespace` on a defaulted namespace ([`set_defaults`]): the name is a DNS
/// label, and every `spec.finalizers` entry is a qualified name and, without a `/`, a standard
/// one. Like upstream, finalizer errors are reported on `spec.finalizers` without an index.
pub fn validate(namespace: &Namespace) -> Vec<FieldError> {
    let mut errs = validate_object_meta(
        &namespace.metadata,
        &FieldPath::new("metadata"),
        false,
        name_is_dns_label,
    );
    let path = FieldPath::new("spec").child("finalizers");
    for finalizer in namespace
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .into_iter()
        .flatten()
    {
        errs.extend(validate_finalizer_name(finalizer, &path));
    }
    errs
}
