//! The patch and apply engine of the API server: what a `PATCH` request does to an object, as
//! pure functions on `serde_json::Value`.
//!
//! - [`json_merge`]: JSON merge patch (RFC 7386), `application/merge-patch+json`.
//! - [`json_patch`]: JSON patch (RFC 6902), `application/json-patch+json`.
//! - [`strategic_merge`]: strategic merge patch, `application/strategic-merge-patch+json`, with
//!   the merge keys and strategies of the kinds podvisor serves (`schema`).
//! - [`apply`]: server-side apply, `application/apply-patch+yaml`, with field ownership in
//!   `metadata.managedFields`; [`record_update`] records the ownership of every other write.
//!
//! Pure: no IO, no tokio, no clock (the time to record comes in as an argument), and nothing of
//! HTTP: errors say which upstream Status reason they correspond to, and the API layer turns
//! them into Status objects.
//!
//! # Strategic merge patch
//!
//! Implemented as upstream applies it server-side (`StrategicMergeMapPatch`): `null` deletes;
//! lists with a `patchMergeKey` merge item by item; lists of scalars with the merge strategy
//! merge as sets; `$patch: replace | delete | merge` on objects and list items; `$retainKeys`;
//! `$setElementOrder/<list>` (with upstream's exact ordering of server-only items);
//! `$deleteFromPrimitiveList/<list>`. The deviations are listed in `strategic`: directives in a
//! value for a field the original lacks are applied rather than stored; `$patch: merge` is
//! accepted on list items. Kinds without a table are refused, as upstream refuses strategic
//! merge patches for custom resources.
//!
//! # Server-side apply: what is implemented
//!
//! - Ownership per manager in `metadata.managedFields`, in upstream's format (`FieldsV1` with
//!   `f:`, `k:{…}`, `v:…` and `"."`), decoded from and encoded back into the object; entries
//!   sorted as upstream sorts them. Managers are identified as upstream identifies them: name,
//!   operation, the apiVersion for updaters, the subresource.
//! - An apply merges the configuration into the live object with the kind's SSA list types
//!   (`+listType=map` keys, with key defaults such as `protocol: TCP`; sets; atomic lists;
//!   atomic structs and maps such as label selectors and `nodeSelector`); the applier then owns
//!   exactly what it applied (upstream's `ToFieldSet`).
//! - Fields the applier owned last time and omits now are removed, unless a manager (the
//!   applier's new configuration included) still owns them or something inside them; objects
//!   and lists emptied that way go too (upstream's prune, with its add-back steps). So after
//!   kubectl's client-side to server-side apply migration, where kubectl's Apply entry owns
//!   `data` and `metadata.annotations` themselves, the next apply keeps both as long as its
//!   configuration sets something in `data` and `kubectl-last-applied` owns the annotation.
//! - A change to a field another manager owns is a conflict, unless `force`, which moves the
//!   ownership; the same value applied by two managers is shared ownership. Conflict messages
//!   and causes are upstream's.
//! - An update ([`record_update`]) owns what it added or changed and takes it from the others;
//!   removed fields leave every manager. Fields upstream never tracks (`apiVersion`, `kind`,
//!   `metadata.name`, `uid`, `resourceVersion`, …) are not tracked; for kinds with a status
//!   subresource, writes to the main resource do not own `status` (and an apply ignores a
//!   `status` in its configuration), writes to `status` own only `status`.
//! - Upstream's special cases: managedFields sent by the client in an update replace the stored
//!   ones (kubectl's client-side to server-side apply migration), `[{}]` clears them; an object
//!   that exists without managedFields is not tracked by updates, and its first apply records
//!   its fields for `before-first-apply`; an apply by `kubectl` may take over, without conflict,
//!   the fields whose live value is still the one in the client-side apply annotation, and then
//!   rewrites that annotation to the applied configuration.
//! - An apply records its time only when it changed the object, as upstream: re-applying the
//!   same configuration returns the live object exactly (times included), and a new applier
//!   whose apply changed nothing gets an entry without a time. A no-op apply may still change
//!   managedFields (a new applier, a smaller set); it is the API layer's business not to bump
//!   the resourceVersion when the result equals the live object.
//!
//! # Server-side apply: approximations and what is missing
//!
//! - The schema is the merge table of `schema`, not the OpenAPI schema: paths it does not name
//!   are granular objects and atomic lists. No unions (`+unionDiscriminator`), no validation of
//!   the applied configuration against the kind's schema (unknown fields are merged and owned
//!   like any other), no conversion between API versions (managers' sets are used as recorded).
//! - An empty object in an applied configuration is owned as a leaf (upstream owns nothing for
//!   it), but prune, like upstream, never removes an empty object for that ownership alone;
//!   `null` fields of an applied configuration are ignored.
//! - Prune treats every object field as upstream treats the fields of structs
//!   (`EnsureNamedFieldsAreMembers`): a field the applier had something in, and in which nobody
//!   owns anything now, goes whole, unowned fields inside it included. Upstream does not do so
//!   for the keys of maps; this differs only for maps of objects, which the kinds podvisor
//!   serves do not have (custom resources without a schema would).
//! - In a live list with a key repeated (which only a non-apply write can create), the repeats
//!   are kept as they are but neither merged nor tracked (upstream tracks them atomically).
//! - Update managers are not capped (upstream merges the oldest beyond ten into
//!   `ancient-changes`).
//! - No subresource other than `status` is modelled: upstream records writes to `/scale` as
//!   ownership of `.spec.replicas` by a `scale` subresource manager; here the API layer records
//!   them with [`record_update`] on the main object.

mod apply;
mod fieldpath;
mod json_patch;
mod merge_patch;
mod schema;
mod strategic;
mod value;

#[cfg(test)]
mod tests;

use serde_json::Value;

pub use apply::{
    ApplyError, Conflict, ConflictCause, FieldManager, Operation, apply, conflict_causes,
    conflict_message, record_subresource_update, record_update,
};

/// Why a patch could not be applied. Each variant names the Status upstream answers with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document is malformed: not an object (not an array for a JSON patch), a
    /// directive of the wrong shape (`$retainKeys`, `$setElementOrder`,
    /// `$deleteFromPrimitiveList`). Upstream: `400 BadRequest`.
    #[error("{0}")]
    BadRequest(String),
    /// A JSON patch operation does not apply to the object (a failed `test`, a missing path).
    /// Upstream: `422 Invalid`, with this message.
    #[error("{message}")]
    OperationFailed {
        /// The position of the operation in the patch, from 0.
        index: usize,
        /// The operation: `add`, `remove`, `replace`, `move`, `copy`, `test`.
        op: String,
        /// Upstream's message (`testing value /spec/replicas failed: test failed`).
        message: String,
    },
    /// A JSON patch with more operations than upstream accepts. Upstream:
    /// `413 RequestEntityTooLarge`.
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations {
        /// Upstream's limit, 10000.
        max: usize,
        /// The number of operations in the patch.
        got: usize,
    },
    /// A strategic merge patch upstream declares invalid for the object (lists of lists).
    /// Upstream: `422 Invalid`.
    #[error("{0}")]
    Invalid(String),
    /// A strategic merge patch that does not fit the object (an item without its merge key,
    /// list items of different types, an unknown `$patch`). Upstream returns the message as a
    /// `500 InternalError`.
    #[error("{0}")]
    Unmergeable(String),
    /// A strategic merge patch for a kind podvisor has no merge table for. Upstream answers
    /// custom resources `415 UnsupportedMediaType` with this message.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )]
    Unsupported,
}

/// Applies a JSON merge patch (RFC 7386) to `original`.
pub fn json_merge(original: &Value, patch: &Value) -> Value {
    merge_patch::apply(original, patch)
}

/// Applies a JSON patch (RFC 6902), the array of operations `ops`, to `original`.
pub fn json_patch(original: &Value, ops: &Value) -> Result<Value, PatchError> {
    json_patch::apply(original, ops)
}

/// Applies a strategic merge patch to `original`, an object of the given apiVersion and kind.
pub fn strategic_merge(
    api_version: &str,
    kind: &str,
    original: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    let known = schema::for_kind(api_version, kind).ok_or(PatchError::Unsupported)?;
    strategic::apply(original, patch, &schema::Node::root(known.table))
}

/// Whether podvisor has the merge table of a kind, so that [`strategic_merge`] accepts it.
pub fn supports_strategic_merge(api_version: &str, kind: &str) -> bool {
    schema::for_kind(api_version, kind).is_some()
}
