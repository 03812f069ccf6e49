//! Controllers: loops that watch objects in the store and make something match them — the
//! EndpointSlice and Endpoints controllers of kube-controller-manager (`endpoints` decides,
//! `sync` writes), the registry's lease expiry (`lease`), and the service proxy (`proxy`,
//! kube-proxy's role), which turns Services and EndpointSlices into gateway listeners.
//! `deployment` and `replicaset` are the Deployment and ReplicaSet controllers' decisions as
//! pure functions (no loop wires them yet).
//!
//! Must not: touch processes or pod workers; only `proxy` calls the gateway, and it never
//! writes to the store except events.

pub mod apps;
pub mod deployment;
pub mod endpoints;
pub mod lease;
pub mod proxy;
pub mod replicaset;
pub mod sync;

use k8s_openapi::api::core::v1::ObjectReference;
use serde_json::Value;

use crate::store::ObjectKey;

/// The namespace and name of a stored object.
pub(crate) fn key_of(obj: &Value) -> ObjectKey {
    let s = |f: &str| {
        obj.get("metadata")
            .and_then(|m| m.get(f))
            .and_then(Value::as_str)
    };
    ObjectKey::new(s("namespace").unwrap_or("default"), s("name").unwrap_or(""))
}

/// What an event about a Service names as its object.
pub(crate) fn service_reference(key: &ObjectKey, uid: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("Service".to_owned()),
        name: Some(key.name.clone()),
        namespace: Some(key.namespace.clone()),
        uid,
        ..ObjectReference::default()
    }
}
