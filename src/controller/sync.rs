//! The EndpointSlice and Endpoints controllers' loop: a cache of Services and pods fed by the
//! store's watch, the Services a change touches marked dirty, and each dirty Service's
//! slices and Endpoints written to match `endpoints::desired_*`.
//!
//! Changes that arrive together are coalesced before anything is written, so a burst of pod
//! status updates costs one write per Service. Upstream leaves deleted Services' slices to the
//! garbage collector (owner references); podvisor has none, so this loop deletes them.
//!
//! Must not: block on anything but the watch; every store call is a short critical section.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::controller::endpoints::{
    self, CONTROLLER_NAME, LABEL_MANAGED_BY, LABEL_SERVICE_NAME, desired_endpoints, desired_slices,
};
use crate::controller::{key_of, service_reference};
use crate::store::events::{Source, object_event};
use crate::store::resources::{self, Resource};
use crate::store::{Backend, Change, ChangeType, ObjectKey, Part, Store};

/// What the loop knows: every Service and pod, decoded once per change.
#[derive(Default)]
struct Cache {
    services: HashMap<ObjectKey, Arc<Service>>,
    pods: HashMap<ObjectKey, Arc<Pod>>,
}

impl Cache {
    /// Applies a change and adds the Services whose endpoints it may change to `dirty`.
    fn apply(&mut self, change: &Change, dirty: &mut BTreeSet<ObjectKey>) {
        let key = key_of(&change.object);
        if change.resource == &resources::SERVICES {
            if change.change_type == ChangeType::Deleted {
                self.services.remove(&key);
            } else if let Ok(svc) = serde_json::from_value::<Service>(Value::clone(&change.object))
            {
                self.services.insert(key.clone(), Arc::new(svc));
            }
            dirty.insert(key);
        } else if change.resource == &resources::PODS {
            // The previous version is decoded only when a Service may select it.
            let previous = change
                .previous
                .as_ref()
                .filter(|_| !self.services.is_empty())
                .and_then(|p| Pod::deserialize(&**p).ok());
            let current = if change.change_type == ChangeType::Deleted {
                self.pods.remove(&key);
                None
            } else {
                change.pod()
            };
            for (svc_key, svc) in &self.services {
                let selected = |p: &Pod| endpoints::selects(svc, p);
                if previous.as_ref().is_some_and(selected)
                    || current.as_deref().is_some_and(selected)
                {
                    dirty.insert(svc_key.clone());
                }
            }
            if let Some(pod) = current {
                self.pods.insert(key, pod);
            }
        } else if change.resource == &resources::ENDPOINT_SLICES
            || change.resource == &resources::ENDPOINTS
        {
            // Someone else changed what we own: put it back.
            let owner = if change.resource == &resources::ENDPOINTS {
                Some(key.clone())
            } else {
                change
                    .object
                    .pointer("/metadata/labels")
                    .filter(|l| {
                        l.get(LABEL_MANAGED_BY).and_then(Value::as_str) == Some(CONTROLLER_NAME)
                    })
                    .and_then(|l| l.get(LABEL_SERVICE_NAME))
                    .and_then(Value::as_str)
                    .map(|name| ObjectKey::new(&key.namespace, name))
            };
            if let Some(owner) = owner.filter(|o| self.services.contains_key(o)) {
                dirty.insert(owner);
            }
        }
    }

    fn pods_in(&self, namespace: &str) -> Vec<Arc<Pod>> {
        self.pods
            .iter()
            .filter(|(k, _)| k.namespace == namespace)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

/// Runs the controllers until `stop` turns true or the store closes.
pub async fn run_endpoints(store: Arc<Store>, mut stop: watch::Receiver<bool>) {
    let (snapshot, mut changes) = store.watch();
    let mut cache = Cache::default();
    let mut dirty = BTreeSet::new();
    // (service, pod uid, port) already reported as unresolvable.
    let mut warned: HashSet<(ObjectKey, String, String)> = HashSet::new();
    for change in &snapshot {
        cache.apply(change, &mut dirty);
    }
    // Slices of Services deleted while the node was down.
    for slice in store.list(&resources::ENDPOINT_SLICES, None).0 {
        if let Some(name) = managed_service_name(&slice) {
            dirty.insert(ObjectKey::new(&key_of(&slice).namespace, name));
        }
    }
    loop {
        for key in std::mem::take(&mut dirty) {
            sync_service(&store, &cache, &key);
            tracing::debug!(target: "podvisor::latency", step = "ep-synced", service = %key.name);
            warn_unresolved_ports(&store, &cache, &key, &mut warned);
        }
        tokio::select! {
            change = changes.recv() => match change {
                Ok(change) => {
                    tracing::debug!(target: "podvisor::latency", step = "ep-wake", rv = change.resource_version, kind = change.resource.plural);
                    cache.apply(&change, &mut dirty);
                    // Coalesce whatever else is already queued.
                    loop {
                        match changes.try_recv() {
                            Ok(change) => cache.apply(&change, &mut dirty),
                            Err(broadcast::error::TryRecvError::Lagged(_)) => {
                                resync(&store, &mut cache, &mut changes, &mut dirty);
                            }
                            Err(_) => break,
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "endpoints controller lagged; resyncing");
                    resync(&store, &mut cache, &mut changes, &mut dirty);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = stop.changed() => return,
        }
    }
}

/// Starts over from a fresh snapshot; every Service is synced again.
fn resync(
    store: &Store,
    cache: &mut Cache,
    changes: &mut broadcast::Receiver<Change>,
    dirty: &mut BTreeSet<ObjectKey>,
) {
    let (snapshot, rx) = store.watch();
    *changes = rx;
    let old_services: Vec<ObjectKey> = cache.services.keys().cloned().collect();
    *cache = Cache::default();
    for change in &snapshot {
        cache.apply(change, dirty);
    }
    dirty.extend(old_services);
}

fn managed_service_name(slice: &Value) -> Option<&str> {
    let labels = slice.pointer("/metadata/labels")?;
    (labels.get(LABEL_MANAGED_BY)?.as_str()? == CONTROLLER_NAME)
        .then(|| labels.get(LABEL_SERVICE_NAME)?.as_str())
        .flatten()
}

/// A Warning event on the Service, once per pod and port, when a selected pod has no
/// container port of a named `targetPort`: the pod is left out of that port's endpoints (as
/// upstream, which says nothing about it).
fn warn_unresolved_ports(
    store: &Store,
    cache: &Cache,
    key: &ObjectKey,
    warned: &mut HashSet<(ObjectKey, String, String)>,
) {
    let Some(service) = cache
        .services
        .get(key)
        .filter(|s| endpoints::has_selector(s))
    else {
        warned.retain(|(k, _, _)| k != key);
        return;
    };
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or(&[]);
    for pod in cache.pods_in(&key.namespace) {
        if !endpoints::selects(service, &pod) {
            continue;
        }
        for port in ports {
            let Some(IntOrString::String(target)) = &port.target_port else {
                continue;
            };
            if endpoints::find_port(&pod, port).is_some() {
                continue;
            }
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if !warned.insert((key.clone(), uid, target.clone())) {
                continue;
            }
            let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
            let message = format!(
                "pod {pod_name} has no container port named {target:?} (targetPort of service port {:?}); it gets no endpoint for that port",
                port.name.as_deref().unwrap_or("")
            );
            store.record_event(object_event(
                service_reference(key, service.metadata.uid.clone()),
                "Warning",
                "FailedToResolvePort",
                &message,
                &Source {
                    component: "endpointslice-controller".to_owned(),
                    host: None,
                },
            ));
        }
    }
}

/// Makes the slices and Endpoints of one Service what they should be.
fn sync_service(store: &Store, cache: &Cache, key: &ObjectKey) {
    let existing: Vec<Arc<Value>> = store
        .list(&resources::ENDPOINT_SLICES, Some(&key.namespace))
        .0
        .into_iter()
        .filter(|s| managed_service_name(s) == Some(key.name.as_str()))
        .collect();
    let service = cache
        .services
        .get(key)
        .filter(|s| endpoints::has_selector(s));
    let Some(service) = service else {
        for slice in existing {
            remove(store, &resources::ENDPOINT_SLICES, &slice);
        }
        if !cache.services.contains_key(key)
            && let Some(ep) = store.get(&resources::ENDPOINTS, &key.namespace, &key.name)
        {
            remove(store, &resources::ENDPOINTS, &ep);
        }
        return;
    };
    let pods = cache.pods_in(&key.namespace);
    let mut kept = BTreeSet::new();
    for slice in desired_slices(service, &pods) {
        let Ok(desired) = serde_json::to_value(&slice) else {
            continue;
        };
        let name = slice.metadata.name.clone().unwrap_or_default();
        let current = existing
            .iter()
            .find(|s| key_of(s).name == name)
            .map(|s| s.as_ref());
        write(
            store,
            &resources::ENDPOINT_SLICES,
            current,
            desired,
            &["endpoints", "ports", "addressType"],
        );
        kept.insert(name);
    }
    for slice in existing.iter().filter(|s| !kept.contains(&key_of(s).name)) {
        remove(store, &resources::ENDPOINT_SLICES, slice);
    }
    let Ok(desired) = serde_json::to_value(desired_endpoints(service, &pods)) else {
        return;
    };
    let current = store.get(&resources::ENDPOINTS, &key.namespace, &key.name);
    write(
        store,
        &resources::ENDPOINTS,
        current.as_deref(),
        desired,
        &["subsets"],
    );
}

/// Creates `desired`, or updates `current` when one of `fields` or the labels or owners
/// differ. Failures are logged: the next change of the Service or its pods retries.
fn write(
    store: &Store,
    resource: &'static Resource,
    current: Option<&Value>,
    desired: Value,
    fields: &[&str],
) {
    let result = match current {
        None => store.create(resource, desired).map(drop),
        Some(current) => {
            let same = |v: &Value, f: &str| {
                let norm = |x: Option<&Value>| x.filter(|x| !x.is_null()).cloned();
                norm(v.get(f)) == norm(desired.get(f))
            };
            let meta_same = ["labels", "ownerReferences"].iter().all(|f| {
                current.pointer(&format!("/metadata/{f}"))
                    == desired.pointer(&format!("/metadata/{f}"))
            });
            if meta_same && fields.iter().all(|f| same(current, f)) {
                return;
            }
            let mut updated = current.clone();
            // Last writer wins: these objects are this controller's, and a conflict would
            // otherwise wait for the next change of the Service or its pods.
            if let Some(meta) = updated["metadata"].as_object_mut() {
                meta.remove("resourceVersion");
            }
            for f in fields {
                match desired.get(*f) {
                    Some(v) if !v.is_null() => updated[*f] = v.clone(),
                    _ => {
                        if let Some(obj) = updated.as_object_mut() {
                            obj.remove(*f);
                        }
                    }
                }
            }
            for f in ["labels", "ownerReferences"] {
                match desired.pointer(&format!("/metadata/{f}")) {
                    Some(v) => updated["metadata"][f] = v.clone(),
                    None => {
                        if let Some(meta) = updated["metadata"].as_object_mut() {
                            meta.remove(f);
                        }
                    }
                }
            }
            store.update(resource, updated, Part::Main).map(drop)
        }
    };
    if let Err(error) = result {
        tracing::warn!(%error, resource = resource.plural, "endpoints controller write failed");
    }
}

fn remove(store: &Store, resource: &'static Resource, obj: &Value) {
    let key = key_of(obj);
    let uid = obj.pointer("/metadata/uid").and_then(Value::as_str);
    if let Err(error) = store.remove(resource, &key.namespace, &key.name, uid) {
        tracing::debug!(%error, resource = resource.plural, "already removed");
    }
}
