//! The node's objects: desired state and status of every pod, and the events about them, with
//! one global `resourceVersion` and a watch channel. The role of the API server and etcd in
//! Kubernetes, and the hub of podvisor: `up -f` creates pods here, the node's sync loop
//! watches here, pod workers write status here.
//!
//! This is the in-memory store of the node-core milestone; the API issue moves it behind a
//! trait with SQLite persistence without changing callers' verbs (create, get, list,
//! update status, delete, watch).
//!
//! Must not: know about processes, or block (every method is a short critical section).

pub mod events;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::sync::broadcast;

/// Store errors, named as the API server's status reasons.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("pods \"{0}\" already exists")]
    AlreadyExists(String),
    #[error("pods \"{0}\" not found")]
    NotFound(String),
    #[error("the object has been modified; uid precondition failed for pods \"{0}\"")]
    Conflict(String),
}

/// The namespace and name of an object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        ObjectKey {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    pub fn of_pod(pod: &Pod) -> Self {
        ObjectKey::new(
            pod.metadata.namespace.as_deref().unwrap_or("default"),
            pod.metadata.name.as_deref().unwrap_or_default(),
        )
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A stored object, shared read-only.
#[derive(Clone, Debug)]
pub enum Object {
    Pod(Arc<Pod>),
    Event(Arc<Event>),
}

/// `ADDED`, `MODIFIED`, `DELETED`, as in a Kubernetes watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// One change, in resourceVersion order.
#[derive(Clone, Debug)]
pub struct Change {
    pub change_type: ChangeType,
    pub object: Object,
}

/// What a delete request did.
#[derive(Clone, Debug, PartialEq)]
pub enum DeleteOutcome {
    /// The pod was removed from the store (grace 0, never scheduled, or already terminal).
    Removed(Arc<Pod>),
    /// The pod is now terminating with this grace; the node removes it when it is done.
    Terminating(Arc<Pod>),
}

struct State {
    resource_version: u64,
    pods: BTreeMap<ObjectKey, Arc<Pod>>,
    events: BTreeMap<ObjectKey, Arc<Event>>,
    /// Aggregation key (`events::aggregation_key`) to the event it was counted into.
    event_index: std::collections::HashMap<String, ObjectKey>,
}

/// The object store.
pub struct Store {
    state: Mutex<State>,
    changes: broadcast::Sender<Change>,
    /// Bounds the number of stored events (oldest dropped first), like the API server's TTL.
    max_events: usize,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Self {
        let (changes, _) = broadcast::channel(16 * 1024);
        Store {
            state: Mutex::new(State {
                resource_version: 0,
                pods: BTreeMap::new(),
                events: BTreeMap::new(),
                event_index: std::collections::HashMap::new(),
            }),
            changes,
            max_events: 10_000,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every stored object, and a receiver of every later change (no change is missed
    /// between the two). A receiver that lags gets `RecvError::Lagged` and must watch again.
    pub fn watch(&self) -> (Vec<Object>, broadcast::Receiver<Change>) {
        let state = self.lock();
        let rx = self.changes.subscribe();
        let mut objects: Vec<Object> = state.pods.values().cloned().map(Object::Pod).collect();
        objects.extend(state.events.values().cloned().map(Object::Event));
        (objects, rx)
    }

    /// Creates a pod as the API server does: uid, resourceVersion, creationTimestamp,
    /// a generated name for `generateName`, and `spec.nodeName` (the node "schedules" it).
    pub fn create_pod(&self, mut pod: Pod, node_name: &str) -> Result<Arc<Pod>, Error> {
        let mut state = self.lock();
        let meta = &mut pod.metadata;
        if meta.name.as_deref().unwrap_or_default().is_empty()
            && let Some(prefix) = &meta.generate_name
        {
            meta.name = Some(format!("{prefix}{}", random_suffix()));
        }
        let key = ObjectKey::of_pod(&pod);
        if state.pods.contains_key(&key) {
            return Err(Error::AlreadyExists(key.name));
        }
        state.resource_version += 1;
        let meta = &mut pod.metadata;
        meta.namespace = Some(key.namespace.clone());
        meta.uid = Some(uuid::Uuid::new_v4().to_string());
        meta.resource_version = Some(state.resource_version.to_string());
        meta.creation_timestamp = Some(Time(Timestamp::now()));
        meta.generation = Some(1);
        meta.deletion_timestamp = None;
        meta.deletion_grace_period_seconds = None;
        if let Some(spec) = pod.spec.as_mut()
            && spec.node_name.as_deref().unwrap_or_default().is_empty()
        {
            spec.node_name = Some(node_name.to_owned());
        }
        pod.status = Some(PodStatus {
            phase: Some("Pending".to_owned()),
            ..PodStatus::default()
        });
        let pod = Arc::new(pod);
        state.pods.insert(key, pod.clone());
        self.publish(ChangeType::Added, Object::Pod(pod.clone()));
        Ok(pod)
    }

    pub fn get_pod(&self, key: &ObjectKey) -> Option<Arc<Pod>> {
        self.lock().pods.get(key).cloned()
    }

    pub fn list_pods(&self) -> Vec<Arc<Pod>> {
        self.lock().pods.values().cloned().collect()
    }

    /// Replaces the status of the pod with uid `uid`, if it still exists and changed.
    pub fn update_pod_status(
        &self,
        key: &ObjectKey,
        uid: &str,
        status: PodStatus,
    ) -> Result<Arc<Pod>, Error> {
        let mut state = self.lock();
        let Some(current) = state.pods.get(key) else {
            return Err(Error::NotFound(key.name.clone()));
        };
        if current.metadata.uid.as_deref() != Some(uid) {
            return Err(Error::Conflict(key.name.clone()));
        }
        if current.status.as_ref() == Some(&status) {
            return Ok(current.clone());
        }
        let mut pod = (**current).clone();
        pod.status = Some(status);
        state.resource_version += 1;
        pod.metadata.resource_version = Some(state.resource_version.to_string());
        let pod = Arc::new(pod);
        state.pods.insert(key.clone(), pod.clone());
        self.publish(ChangeType::Modified, Object::Pod(pod.clone()));
        Ok(pod)
    }

    /// A graceful delete, with the API server's grace resolution (spec §1.1):
    /// `grace` is `DeleteOptions.gracePeriodSeconds`.
    pub fn delete_pod(&self, key: &ObjectKey, grace: Option<i64>) -> Result<DeleteOutcome, Error> {
        let mut state = self.lock();
        let Some(current) = state.pods.get(key).cloned() else {
            return Err(Error::NotFound(key.name.clone()));
        };
        let now = Timestamp::now();
        // Negative values are treated as 1 (`BeforeDelete`).
        let grace = grace.map(|g| if g < 0 { 1 } else { g });
        let meta = &current.metadata;
        if let Some(deletion) = &meta.deletion_timestamp {
            let old = meta.deletion_grace_period_seconds.unwrap_or(0);
            if old == 0 {
                return Ok(self.remove_locked(&mut state, key));
            }
            let Some(new) = grace.filter(|g| *g < old) else {
                // Longer, equal or no grace: "graceful deletion pending", nothing changes.
                return Ok(DeleteOutcome::Terminating(current));
            };
            if new == 0 {
                return Ok(self.remove_locked(&mut state, key));
            }
            let start = deletion.0 - jiff::SignedDuration::from_secs(old);
            let mut deadline = start + jiff::SignedDuration::from_secs(new);
            if deadline < now {
                deadline = now;
            }
            return Ok(DeleteOutcome::Terminating(
                self.mark_terminating(&mut state, key, &current, deadline, new),
            ));
        }
        let spec = current.spec.as_ref();
        let mut period = grace
            .or_else(|| spec.and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(0);
        let phase = current.status.as_ref().and_then(|s| s.phase.as_deref());
        let unscheduled = spec
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default()
            .is_empty();
        if unscheduled || matches!(phase, Some("Succeeded" | "Failed")) {
            period = 0;
        }
        if period < 0 {
            period = 1;
        }
        if period == 0 {
            return Ok(self.remove_locked(&mut state, key));
        }
        let deadline = now + jiff::SignedDuration::from_secs(period);
        Ok(DeleteOutcome::Terminating(self.mark_terminating(
            &mut state, key, &current, deadline, period,
        )))
    }

    fn mark_terminating(
        &self,
        state: &mut State,
        key: &ObjectKey,
        current: &Pod,
        deadline: Timestamp,
        grace: i64,
    ) -> Arc<Pod> {
        let mut pod = current.clone();
        pod.metadata.deletion_timestamp = Some(Time(deadline));
        pod.metadata.deletion_grace_period_seconds = Some(grace);
        pod.metadata.generation = Some(pod.metadata.generation.unwrap_or(0) + 1);
        state.resource_version += 1;
        pod.metadata.resource_version = Some(state.resource_version.to_string());
        let pod = Arc::new(pod);
        state.pods.insert(key.clone(), pod.clone());
        self.publish(ChangeType::Modified, Object::Pod(pod.clone()));
        pod
    }

    fn remove_locked(&self, state: &mut State, key: &ObjectKey) -> DeleteOutcome {
        let pod = state.pods.remove(key).expect("caller checked the key");
        state.resource_version += 1;
        let mut gone = (*pod).clone();
        gone.metadata.resource_version = Some(state.resource_version.to_string());
        let gone = Arc::new(gone);
        self.publish(ChangeType::Deleted, Object::Pod(gone.clone()));
        DeleteOutcome::Removed(gone)
    }

    /// The node's final delete of a pod it finished terminating (the kubelet's status manager
    /// deletes with grace 0 and a uid precondition).
    pub fn remove_pod(&self, key: &ObjectKey, uid: &str) -> Result<Arc<Pod>, Error> {
        let mut state = self.lock();
        match state.pods.get(key) {
            None => Err(Error::NotFound(key.name.clone())),
            Some(p) if p.metadata.uid.as_deref() != Some(uid) => {
                Err(Error::Conflict(key.name.clone()))
            }
            Some(_) => match self.remove_locked(&mut state, key) {
                DeleteOutcome::Removed(p) => Ok(p),
                DeleteOutcome::Terminating(p) => Ok(p),
            },
        }
    }

    /// Stores an event, or bumps the count of an identical earlier one (client-go's
    /// EventCorrelator aggregation: same object, reason, message, type and source).
    pub fn record_event(&self, mut event: Event) -> Arc<Event> {
        let mut state = self.lock();
        state.resource_version += 1;
        let rv = state.resource_version.to_string();
        let aggregation = events::aggregation_key(&event);
        let same = state
            .event_index
            .get(&aggregation)
            .and_then(|k| state.events.get(k).map(|e| (k.clone(), e.clone())));
        if let Some((key, existing)) = same {
            let mut updated = (*existing).clone();
            updated.count = Some(updated.count.unwrap_or(1) + 1);
            updated.last_timestamp = event.last_timestamp.clone();
            updated.metadata.resource_version = Some(rv);
            let updated = Arc::new(updated);
            state.events.insert(key, updated.clone());
            self.publish(ChangeType::Modified, Object::Event(updated.clone()));
            return updated;
        }
        event.metadata.resource_version = Some(rv);
        event.metadata.uid = Some(uuid::Uuid::new_v4().to_string());
        event.metadata.creation_timestamp = Some(Time(Timestamp::now()));
        let key = ObjectKey::new(
            event.metadata.namespace.as_deref().unwrap_or("default"),
            event.metadata.name.as_deref().unwrap_or_default(),
        );
        let event = Arc::new(event);
        state.event_index.insert(aggregation, key.clone());
        state.events.insert(key, event.clone());
        while state.events.len() > self.max_events {
            let oldest = state
                .events
                .iter()
                .min_by_key(|(_, e)| {
                    e.metadata
                        .resource_version
                        .as_deref()
                        .and_then(|v| v.parse::<u64>().ok())
                })
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    if let Some(e) = state.events.remove(&k) {
                        state.event_index.remove(&events::aggregation_key(&e));
                    }
                }
                None => break,
            }
        }
        self.publish(ChangeType::Added, Object::Event(event.clone()));
        event
    }

    pub fn list_events(&self) -> Vec<Arc<Event>> {
        let mut events: Vec<Arc<Event>> = self.lock().events.values().cloned().collect();
        events.sort_by_key(|e| {
            e.metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok())
        });
        events
    }

    fn publish(&self, change_type: ChangeType, object: Object) {
        // Why ignored: no watcher is not an error.
        let _ = self.changes.send(Change {
            change_type,
            object,
        });
    }
}

/// Five lowercase alphanumerics, as the API server appends for `generateName`.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}
