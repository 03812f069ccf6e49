//! The node's objects: every served resource as its Kubernetes JSON, with one global
//! `resourceVersion`, the API server's metadata rules (uid, generation, creationTimestamp,
//! `generateName`, preconditions), a bounded change history for watches (410 Expired past
//! it), and persistence in SQLite (`sqlite`). The role of the API server's storage layer and
//! etcd in Kubernetes, and the hub of podvisor: `up -f`, the API and the CLI write here, the
//! node's sync loop watches here, pod workers write status here.
//!
//! Reads are served from memory; every write is applied in memory, published to watchers, and
//! queued to the database, whose group commit advances `durable()`. Callers that acknowledge a
//! write to a client await `wait_durable` first.
//!
//! The generic operations are the `Backend` trait, so another backend (etcd) can replace the
//! local one without touching callers; the typed helpers (`create_pod`, `delete_pod` …) are
//! built on it.
//!
//! Must not: know about processes, or hold its lock across an await.

pub mod events;
pub mod resources;
pub mod services;
pub mod sqlite;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, Pod, PodStatus, Service};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use self::resources::Resource;
use self::services::{AllocError, ServiceIndex, ServiceNetwork};
use crate::model::field::FieldError;

/// Store errors, named as the API server's status reasons; messages are the API server's.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: String, name: String },
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: String, name: String },
    #[error(
        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict { resource: String, name: String },
    #[error("Precondition failed: UID in precondition: {expected}, UID in object meta: {actual}")]
    UidPrecondition { expected: String, actual: String },
    #[error("too old resource version: {requested} ({oldest})")]
    Expired { requested: u64, oldest: u64 },
    #[error("invalid object: {0}")]
    Invalid(String),
    /// What the store checks itself refused (a Service's cluster IP or node port is taken,
    /// its update changes what may not change): upstream's 422 Invalid.
    #[error("{kind} \"{name}\" is invalid: {}", render_field_errors(errors))]
    InvalidFields {
        kind: &'static str,
        name: String,
        errors: Vec<FieldError>,
    },
    /// Nothing left to allocate (`failed to allocate a serviceIP: range is full`): upstream's
    /// 500 InternalError.
    #[error("Internal error occurred: {0}")]
    Internal(String),
}

/// Field errors as the API server joins them in a message: one alone, else `[a, b]`.
fn render_field_errors(errors: &[FieldError]) -> String {
    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
    if list.len() == 1 {
        list[0].clone()
    } else {
        format!("[{}]", list.join(", "))
    }
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

/// `ADDED`, `MODIFIED`, `DELETED`, as in a Kubernetes watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One change, in resourceVersion order.
#[derive(Clone, Debug)]
pub struct Change {
    pub change_type: ChangeType,
    pub resource_version: u64,
    pub resource: &'static Resource,
    /// The object after the change (for DELETED: its last state, with the deletion's RV).
    pub object: Arc<Value>,
    /// The object before the change (None for ADDED), so that a watch with a selector can
    /// tell an object entering the selection from one leaving it, as the watch cache does.
    pub previous: Option<Arc<Value>>,
    /// The object as a Pod, decoded once for every receiver of the change (`pod`): the node,
    /// the controllers and `up` share one typed copy per version, and so do snapshots of the
    /// stored version (`Stored::typed_pod`).
    typed_pod: TypedPod,
}

/// A pod version decoded once, on first use, for everyone who holds that version.
type TypedPod = Arc<OnceLock<Option<Arc<Pod>>>>;

/// A stored object: its resource, its JSON, and the typed pod shared by the changes that carry
/// this version. Without the last, every watcher that started from a snapshot (the node and
/// the controllers, which start after `up` applies its pods) decoded and kept a typed copy of
/// its own: ~5 KB per pod each (BENCHMARKS.md "Node memory").
#[derive(Clone)]
struct Stored {
    resource: &'static Resource,
    /// The object (`Kept::Live`), or for the kinds `kept_as_json` says, its JSON text.
    object: Kept,
    typed_pod: TypedPod,
}

/// Whether the store keeps a kind's objects as JSON text, parsed on each read, rather than as
/// `Value`s: events, which are written far more often than read, and which as `Value`s (small
/// B-tree maps) took ~4.4 KB each against ~0.7 KB as text; 1,000 pods leave 3,000 of them
/// (BENCHMARKS.md "Node memory").
fn kept_as_json(resource: &Resource) -> bool {
    resource == &resources::EVENTS
}

impl Change {
    /// The object as a Pod, if this is a pod change.
    pub fn pod(&self) -> Option<Arc<Pod>> {
        (self.resource == &resources::PODS)
            .then(|| {
                self.typed_pod
                    .get_or_init(|| Pod::deserialize(&*self.object).ok().map(Arc::new))
                    .clone()
            })
            .flatten()
    }

    /// The object as an Event, if this is an event change.
    pub fn event(&self) -> Option<Event> {
        (self.resource == &resources::EVENTS)
            .then(|| Event::deserialize(&*self.object).ok())
            .flatten()
    }
}

/// What a pod delete request did.
#[derive(Clone, Debug, PartialEq)]
pub enum DeleteOutcome {
    /// The object was removed (grace 0, never scheduled, already terminal, or not a pod).
    Removed(Arc<Pod>),
    /// The pod is now terminating with this grace; the node removes it when it is done.
    Terminating(Arc<Pod>),
}

/// Which part of an object an update replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Everything but `status` (kept from the stored object when the kind has a status).
    Main,
    /// Only `status`.
    Status,
}

/// The generic object operations; implemented by the local (memory + SQLite) store.
pub trait Backend: Send + Sync {
    /// Creates an object, setting the server fields. `obj` must carry its name (or
    /// `generateName`) and, for namespaced kinds, its namespace.
    fn create(&self, resource: &'static Resource, obj: Value) -> Result<Arc<Value>, Error>;
    fn get(&self, resource: &'static Resource, namespace: &str, name: &str) -> Option<Arc<Value>>;
    /// Every object of the resource (in `namespace`, or all), and the current RV.
    fn list(&self, resource: &'static Resource, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64);
    /// Replaces an object. A `metadata.resourceVersion` in `obj` is a precondition (409 if
    /// stale); an unchanged object is not written.
    fn update(
        &self,
        resource: &'static Resource,
        obj: Value,
        part: Part,
    ) -> Result<Arc<Value>, Error>;
    /// Removes an object, if its uid matches `uid` when given.
    fn remove(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
    ) -> Result<Arc<Value>, Error>;
    /// Changes after `resource_version` (replayed from history) and a receiver of later ones;
    /// `Expired` when the history no longer reaches back that far.
    fn watch_from(
        &self,
        resource_version: u64,
    ) -> Result<(Vec<Change>, broadcast::Receiver<Change>), Error>;
    /// Every object and a receiver of every later change, atomically.
    fn snapshot(&self) -> (Vec<Change>, u64, broadcast::Receiver<Change>);
    /// The last resourceVersion on disk.
    fn durable(&self) -> watch::Receiver<u64>;
}

struct State {
    resource_version: u64,
    objects: BTreeMap<String, Stored>,
    history: VecDeque<HistoryEntry>,
    /// The oldest resourceVersion a watch may resume after (history covers everything newer).
    history_floor: u64,
    /// Event aggregation key (`events::aggregation_key`) to the stored event's key.
    event_index: HashMap<String, String>,
    /// Stored event keys in creation order, for trimming.
    event_order: VecDeque<String>,
    /// What the stored Services hold (cluster IPs, node ports, LoadBalancer ports), kept in
    /// step with them by `commit`.
    services: ServiceIndex,
    /// Where Services get their addresses.
    service_network: ServiceNetwork,
}

/// A change kept for watch replay (`watch_from`). The newest version of an object shares the
/// stored `Arc<Value>`; once it is superseded or deleted only its JSON text is kept, parsed
/// again when a watch replays it. A pod as a `Value` is ~15 KB of small maps and its JSON ~2
/// KB: 1,000 starting pods leave ~3,000 superseded versions in the history, which held 45 MB
/// as `Value`s (BENCHMARKS.md "Scale").
#[derive(Clone)]
struct HistoryEntry {
    change_type: ChangeType,
    resource_version: u64,
    resource: &'static Resource,
    object: Kept,
    previous: Option<Kept>,
}

/// One version of an object, in the history or in the store.
#[derive(Clone)]
enum Kept {
    /// The stored object (still current).
    Live(Arc<Value>),
    /// A superseded or deleted version, or the stored version of a kind `kept_as_json`, as
    /// JSON (the store and the history share the text of the latter).
    Json(Arc<str>),
}

impl Kept {
    fn json(value: &Value) -> Kept {
        Kept::Json(value.to_string().into())
    }

    fn value(&self) -> Arc<Value> {
        match self {
            Kept::Live(v) => v.clone(),
            // Why `Null` can't happen: the text was written by `Value::to_string`.
            Kept::Json(text) => Arc::new(serde_json::from_str(text).unwrap_or(Value::Null)),
        }
    }
}

impl HistoryEntry {
    fn change(&self) -> Change {
        Change {
            change_type: self.change_type,
            resource_version: self.resource_version,
            resource: self.resource,
            object: self.object.value(),
            previous: self.previous.as_ref().map(Kept::value),
            typed_pod: Arc::default(),
        }
    }
}

impl State {
    /// `previous` (the stored version of an object that a commit replaces or deletes) as JSON,
    /// and its history entry's copy turned into that same JSON, so the history stops holding
    /// the `Value`.
    fn supersede(&mut self, previous: &Arc<Value>) -> Kept {
        let rv = meta_str(previous, "resourceVersion").and_then(|s| s.parse::<u64>().ok());
        let entry = rv.and_then(|rv| {
            let i = self
                .history
                .binary_search_by_key(&rv, |e| e.resource_version)
                .ok()?;
            self.history.get_mut(i)
        });
        match entry {
            Some(entry) if matches!(&entry.object, Kept::Live(v) if Arc::ptr_eq(v, previous)) => {
                let kept = Kept::json(previous);
                entry.object = kept.clone();
                kept
            }
            _ => Kept::json(previous),
        }
    }
}

/// The local store: memory, watch history, optional SQLite persistence.
pub struct Store {
    state: Mutex<State>,
    changes: broadcast::Sender<Change>,
    persistence: Option<Mutex<sqlite::Persistence>>,
    /// For the in-memory store: durable as soon as written.
    memory_durable: watch::Sender<u64>,
    max_events: usize,
    max_history: usize,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

fn key(resource: &Resource, namespace: &str, name: &str) -> String {
    format!("{}/{}/{namespace}/{name}", resource.group, resource.plural)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

impl Store {
    /// An in-memory store (tests, `--data-dir`-less tools).
    pub fn new() -> Self {
        let (changes, _) = broadcast::channel(16 * 1024);
        Store {
            state: Mutex::new(State {
                resource_version: 0,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                history_floor: 0,
                event_index: HashMap::new(),
                event_order: VecDeque::new(),
                services: ServiceIndex::default(),
                service_network: ServiceNetwork::default(),
            }),
            changes,
            persistence: None,
            memory_durable: watch::channel(0).0,
            max_events: 10_000,
            max_history: 20_000,
        }
    }

    /// The store persisted at `path` (created if missing), with everything it holds loaded.
    pub fn open(path: &Path) -> Result<Self, sqlite::Error> {
        let (persistence, loaded) = sqlite::open(path)?;
        let mut store = Store::new();
        {
            let state = store.state.get_mut().unwrap_or_else(|e| e.into_inner());
            state.resource_version = loaded.resource_version;
            state.history_floor = loaded.resource_version;
            for (k, json) in loaded.objects {
                let mut parts = k.splitn(3, '/');
                let (Some(group), Some(plural)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let (Some(resource), Ok(value)) = (
                    resources::by_plural(group, plural),
                    serde_json::from_str::<Value>(&json),
                ) else {
                    tracing::warn!(key = k, "skipping an unreadable stored object");
                    continue;
                };
                if resource == &resources::EVENTS {
                    if let Ok(e) = serde_json::from_value::<Event>(value.clone()) {
                        state
                            .event_index
                            .insert(events::aggregation_key(&e), k.clone());
                    }
                    state.event_order.push_back(k.clone());
                }
                if resource == &resources::SERVICES
                    && let Ok(svc) = serde_json::from_value::<Service>(value.clone())
                {
                    state.services.insert(&svc);
                }
                let object = if kept_as_json(resource) {
                    Kept::Json(json.into())
                } else {
                    Kept::Live(Arc::new(value))
                };
                state.objects.insert(
                    k,
                    Stored {
                        resource,
                        object,
                        typed_pod: TypedPod::default(),
                    },
                );
            }
        }
        store.memory_durable.send_replace(loaded.resource_version);
        store.persistence = Some(Mutex::new(persistence));
        Ok(store)
    }

    /// Sets where Services get their cluster IPs and the node address LoadBalancer and
    /// NodePort Services listen on (`--service-cidr`, `--node-address`); before the node
    /// serves. Services already stored keep what they hold.
    pub fn set_service_network(&self, network: ServiceNetwork) {
        self.lock().service_network = network;
    }

    /// Where Services get their addresses.
    pub fn service_network(&self) -> ServiceNetwork {
        self.lock().service_network
    }

    /// A Service as a create or update would store it (cluster IP and node ports allocated,
    /// update rules checked), without storing it: a dry run. `obj` is decoded and valid.
    pub fn preview_service(&self, obj: Value) -> Result<Value, Error> {
        let state = self.lock();
        let (k, _) = service_key(&obj);
        let current = state.objects.get(&k).map(|s| s.object.value());
        let mut index = state.services.clone();
        let network = state.service_network;
        drop(state);
        let mut obj = obj;
        admit_service(&mut index, &network, &mut obj, current.as_deref())?;
        Ok(obj)
    }

    /// Checks that a batch of Services (decoded and valid) can be stored one after the other,
    /// each created or replacing the stored one of its name, without storing any: the first
    /// that cannot, by its position in `objects`, and why. For `up -f`, where nothing may be
    /// half-applied.
    pub fn check_services(&self, objects: &[Value]) -> Result<(), (usize, Error)> {
        let state = self.lock();
        let mut index = state.services.clone();
        for (i, obj) in objects.iter().enumerate() {
            let (k, _) = service_key(obj);
            let current = state.objects.get(&k).map(|s| s.object.value());
            let mut obj = obj.clone();
            admit_service(
                &mut index,
                &state.service_network,
                &mut obj,
                current.as_deref(),
            )
            .map_err(|e| (i, e))?;
            if let Ok(svc) = serde_json::from_value::<Service>(obj) {
                index.insert(&svc);
            }
        }
        Ok(())
    }

    /// Flushes and closes the database (at node shutdown).
    pub fn close(&self) {
        if let Some(p) = &self.persistence {
            p.lock().unwrap_or_else(|e| e.into_inner()).close();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every stored object (as ADDED changes) and a receiver of every later change.
    pub fn watch(&self) -> (Vec<Change>, broadcast::Receiver<Change>) {
        let (objects, _, rx) = self.snapshot();
        (objects, rx)
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version
    }

    /// Waits until every write up to `resource_version` is on disk.
    pub async fn wait_durable(&self, resource_version: u64) {
        let mut rx = self.durable();
        // Why ignored: a closed channel means the store is closing; nothing more to wait for.
        let _ = rx.wait_for(|d| *d >= resource_version).await;
    }

    /// Records a change: new RV, memory, history, watchers, disk. Called with the lock held.
    fn commit(
        &self,
        state: &mut State,
        change_type: ChangeType,
        resource: &'static Resource,
        k: String,
        object: Value,
    ) -> Arc<Value> {
        self.commit_change(state, change_type, resource, k, object)
            .object
    }

    /// `commit`, answering the change as watchers receive it.
    fn commit_change(
        &self,
        state: &mut State,
        change_type: ChangeType,
        resource: &'static Resource,
        k: String,
        mut object: Value,
    ) -> Change {
        state.resource_version += 1;
        let rv = state.resource_version;
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".to_owned(), Value::String(rv.to_string()));
        }
        let object = Arc::new(object);
        let typed_pod = TypedPod::default();
        let previous_kept = state.objects.get(&k).map(|s| s.object.clone());
        let previous = previous_kept.as_ref().map(Kept::value);
        // The object as JSON text: for the database, and as the stored form of the kinds kept
        // as text (one serialisation for both).
        let json: Option<Arc<str>> = (self.persistence.is_some()
            || (kept_as_json(resource) && change_type != ChangeType::Deleted))
            .then(|| object.to_string().into());
        let kept = match &json {
            Some(text) if kept_as_json(resource) => Kept::Json(text.clone()),
            _ => Kept::Live(object.clone()),
        };
        if resource == &resources::SERVICES {
            match change_type {
                ChangeType::Deleted => state.services.remove(&owner_of_value(&object)),
                _ => {
                    if let Ok(svc) = serde_json::from_value::<Service>(Value::clone(&object)) {
                        state.services.insert(&svc);
                    }
                }
            }
        }
        match change_type {
            ChangeType::Deleted => {
                state.objects.remove(&k);
            }
            _ => {
                state.objects.insert(
                    k.clone(),
                    Stored {
                        resource,
                        object: kept.clone(),
                        typed_pod: typed_pod.clone(),
                    },
                );
            }
        }
        if let Some(p) = &self.persistence {
            let op = match change_type {
                ChangeType::Deleted => sqlite::Op::Delete { key: k, rv },
                _ => sqlite::Op::Put {
                    key: k,
                    rv,
                    json: json.unwrap_or_else(|| object.to_string().into()),
                },
            };
            p.lock().unwrap_or_else(|e| e.into_inner()).write(op);
        } else {
            self.memory_durable.send_replace(rv);
        }
        let entry = HistoryEntry {
            change_type,
            resource_version: rv,
            resource,
            object: match change_type {
                ChangeType::Deleted => Kept::json(&object),
                _ => kept,
            },
            previous: previous_kept.map(|p| match p {
                Kept::Live(v) => state.supersede(&v),
                text @ Kept::Json(_) => text,
            }),
        };
        let change = Change {
            change_type,
            resource_version: rv,
            resource,
            object: object.clone(),
            previous,
            typed_pod,
        };
        state.history.push_back(entry);
        while state.history.len() > self.max_history {
            if let Some(old) = state.history.pop_front() {
                state.history_floor = old.resource_version;
            }
        }
        // Why ignored: no watcher is not an error.
        let _ = self.changes.send(change.clone());
        change
    }

    fn not_found(resource: &Resource, name: &str) -> Error {
        Error::NotFound {
            resource: resource.qualified_plural(),
            name: name.to_owned(),
        }
    }

    // --- Typed helpers --------------------------------------------------------------------

    /// Creates a pod as the API server and scheduler do: server fields, and `spec.nodeName`
    /// (the node "schedules" it), `status.phase: Pending`.
    pub fn create_pod(&self, pod: Pod, node_name: &str) -> Result<Arc<Pod>, Error> {
        let mut value = serde_json::to_value(&pod).map_err(|e| Error::Invalid(e.to_string()))?;
        bind_pod(&mut value, node_name);
        let stored = self.create(&resources::PODS, value)?;
        Ok(Arc::new(to_pod(&stored)))
    }

    pub fn get_pod(&self, key: &ObjectKey) -> Option<Arc<Pod>> {
        self.get(&resources::PODS, &key.namespace, &key.name)
            .map(|v| Arc::new(to_pod(&v)))
    }

    pub fn list_pods(&self) -> Vec<Arc<Pod>> {
        self.list(&resources::PODS, None)
            .0
            .iter()
            .map(|v| Arc::new(to_pod(v)))
            .collect()
    }

    /// Replaces the status of the pod with uid `uid`, if it still exists and changed.
    pub fn update_pod_status(
        &self,
        key: &ObjectKey,
        uid: &str,
        status: PodStatus,
    ) -> Result<Arc<Pod>, Error> {
        let mut state = self.lock();
        let k = self::key(&resources::PODS, &key.namespace, &key.name);
        let Some(current) = state.objects.get(&k).map(|s| s.object.value()) else {
            return Err(Self::not_found(&resources::PODS, &key.name));
        };
        if meta_str(&current, "uid") != Some(uid) {
            return Err(Error::Conflict {
                resource: "pods".to_owned(),
                name: key.name.clone(),
            });
        }
        let status = serde_json::to_value(&status).map_err(|e| Error::Invalid(e.to_string()))?;
        if current.get("status") == Some(&status) {
            return Ok(Arc::new(to_pod(&current)));
        }
        // Everything but the old status (cloning it only to overwrite it was most of the
        // cost of a status write).
        let mut next: serde_json::Map<String, Value> = current
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(field, _)| *field != "status")
            .map(|(field, v)| (field.clone(), v.clone()))
            .collect();
        next.insert("status".to_owned(), status);
        let change = self.commit_change(
            &mut state,
            ChangeType::Modified,
            &resources::PODS,
            k,
            Value::Object(next),
        );
        drop(state);
        // The typed pod the watchers (the node, which hands it back to the pod's worker) get.
        Ok(change.pod().unwrap_or_default())
    }

    /// A pod delete with the API server's grace resolution (spec §1.1): `grace` is
    /// `DeleteOptions.gracePeriodSeconds`. `uid` is a precondition.
    pub fn delete_pod(&self, key: &ObjectKey, grace: Option<i64>) -> Result<DeleteOutcome, Error> {
        self.delete_pod_if(key, grace, None)
    }

    /// `delete_pod` with a uid precondition.
    pub fn delete_pod_if(
        &self,
        key: &ObjectKey,
        grace: Option<i64>,
        uid: Option<&str>,
    ) -> Result<DeleteOutcome, Error> {
        self.delete_pod_with(key, grace, uid, false)
    }

    /// `delete_pod_if`, or with `dry_run` what it would do, without writing anything.
    ///
    /// A delete that ends with grace 0 first writes the deletion fields and then removes the
    /// object, so watchers see MODIFIED then DELETED, as upstream's
    /// `updateForGracefulDeletionAndFinalizers` does; an object already being deleted with
    /// grace 0 goes without the update.
    pub fn delete_pod_with(
        &self,
        key: &ObjectKey,
        grace: Option<i64>,
        uid: Option<&str>,
        dry_run: bool,
    ) -> Result<DeleteOutcome, Error> {
        let mut state = self.lock();
        let k = self::key(&resources::PODS, &key.namespace, &key.name);
        let Some(current) = state.objects.get(&k).map(|s| s.object.value()) else {
            return Err(Self::not_found(&resources::PODS, &key.name));
        };
        if let Some(expected) = uid {
            let actual = meta_str(&current, "uid").unwrap_or_default();
            if actual != expected {
                return Err(Error::UidPrecondition {
                    expected: expected.to_owned(),
                    actual: actual.to_owned(),
                });
            }
        }
        let pod = to_pod(&current);
        let now = Timestamp::now();
        // Negative values are treated as 1 (`BeforeDelete`).
        let grace = grace.map(|g| if g < 0 { 1 } else { g });
        // `marked`: the object with the deletion fields to write first, if any.
        let remove = |s: &mut State, marked: Option<Value>| {
            let last = match marked {
                Some(m) if dry_run => m,
                Some(m) => {
                    let written =
                        self.commit(s, ChangeType::Modified, &resources::PODS, k.clone(), m);
                    Value::clone(&written)
                }
                None => Value::clone(&current),
            };
            if dry_run {
                return DeleteOutcome::Removed(Arc::new(to_pod(&last)));
            }
            let removed = self.commit(s, ChangeType::Deleted, &resources::PODS, k.clone(), last);
            DeleteOutcome::Removed(Arc::new(to_pod(&removed)))
        };
        if let Some(deletion) = &pod.metadata.deletion_timestamp {
            let old = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
            if old == 0 {
                return Ok(remove(&mut state, None));
            }
            let Some(new) = grace.filter(|g| *g < old) else {
                // Longer, equal or no grace: "graceful deletion pending", nothing changes.
                return Ok(DeleteOutcome::Terminating(Arc::new(pod)));
            };
            let start = deletion.0 - jiff::SignedDuration::from_secs(old);
            let deadline = start + jiff::SignedDuration::from_secs(new);
            if new == 0 {
                let marked = with_deletion(&current, deadline, 0, false);
                return Ok(remove(&mut state, Some(marked)));
            }
            let next = with_deletion(&current, deadline.max(now), new, false);
            return Ok(DeleteOutcome::Terminating(
                self.write_terminating(&mut state, k, next, dry_run),
            ));
        }
        let spec = pod.spec.as_ref();
        let mut period = grace
            .or_else(|| spec.and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(0);
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
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
        let deadline = now + jiff::SignedDuration::from_secs(period);
        let next = with_deletion(&current, deadline, period, true);
        if period == 0 {
            return Ok(remove(&mut state, Some(next)));
        }
        Ok(DeleteOutcome::Terminating(
            self.write_terminating(&mut state, k, next, dry_run),
        ))
    }

    fn write_terminating(
        &self,
        state: &mut State,
        k: String,
        next: Value,
        dry_run: bool,
    ) -> Arc<Pod> {
        if dry_run {
            return Arc::new(to_pod(&next));
        }
        let stored = self.commit(state, ChangeType::Modified, &resources::PODS, k, next);
        Arc::new(to_pod(&stored))
    }

    /// The first step of a namespace deletion (the namespace registry's `Delete`): a
    /// `deletionTimestamp` (kept if already set) and `status.phase: Terminating`.
    pub fn mark_namespace_terminating(&self, name: &str) -> Result<Arc<Value>, Error> {
        let mut state = self.lock();
        let k = self::key(&resources::NAMESPACES, "", name);
        let Some(current) = state.objects.get(&k).map(|s| s.object.value()) else {
            return Err(Self::not_found(&resources::NAMESPACES, name));
        };
        let mut next = Value::clone(&current);
        if next["metadata"].get("deletionTimestamp").is_none() {
            next["metadata"]["deletionTimestamp"] =
                json!(Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        next["status"]["phase"] = json!("Terminating");
        if next == *current {
            return Ok(current);
        }
        Ok(self.commit(
            &mut state,
            ChangeType::Modified,
            &resources::NAMESPACES,
            k,
            next,
        ))
    }

    /// The node's final delete of a pod it finished terminating (the kubelet's status manager
    /// deletes with grace 0 and a uid precondition).
    pub fn remove_pod(&self, key: &ObjectKey, uid: &str) -> Result<Arc<Pod>, Error> {
        self.remove(&resources::PODS, &key.namespace, &key.name, Some(uid))
            .map(|v| Arc::new(to_pod(&v)))
    }

    /// Stores an event, or bumps the count of an identical earlier one (client-go's
    /// EventCorrelator aggregation). Keeps at most `max_events` events (the oldest go, as
    /// the API server's event TTL does).
    pub fn record_event(&self, event: Event) -> Arc<Value> {
        let mut state = self.lock();
        let aggregation = events::aggregation_key(&event);
        if let Some(k) = state.event_index.get(&aggregation).cloned()
            && let Some(existing) = state.objects.get(&k).map(|s| s.object.value())
        {
            let mut next = Value::clone(&existing);
            let count = next.get("count").and_then(Value::as_i64).unwrap_or(1);
            next["count"] = json!(count + 1);
            next["lastTimestamp"] =
                serde_json::to_value(&event.last_timestamp).unwrap_or(Value::Null);
            return self.commit(
                &mut state,
                ChangeType::Modified,
                &resources::EVENTS,
                k,
                next,
            );
        }
        let mut value = serde_json::to_value(&event).unwrap_or(Value::Null);
        let namespace = event
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let name = event.metadata.name.clone().unwrap_or_default();
        set_server_fields(&mut value, &resources::EVENTS, &namespace);
        let k = self::key(&resources::EVENTS, &namespace, &name);
        state.event_index.insert(aggregation, k.clone());
        state.event_order.push_back(k.clone());
        let stored = self.commit(&mut state, ChangeType::Added, &resources::EVENTS, k, value);
        while state.event_order.len() > self.max_events {
            let Some(old) = state.event_order.pop_front() else {
                break;
            };
            if let Some(e) = state.objects.get(&old).map(|s| s.object.value()) {
                if let Ok(ev) = serde_json::from_value::<Event>(Value::clone(&e)) {
                    state.event_index.remove(&events::aggregation_key(&ev));
                }
                self.commit(
                    &mut state,
                    ChangeType::Deleted,
                    &resources::EVENTS,
                    old,
                    Value::clone(&e),
                );
            }
        }
        stored
    }

    /// Every event, oldest first.
    pub fn list_events(&self) -> Vec<Event> {
        let (mut items, _) = self.list(&resources::EVENTS, None);
        items.sort_by_key(|v| {
            meta_str(v, "resourceVersion")
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
        });
        items
            .iter()
            .filter_map(|v| serde_json::from_value(Value::clone(v)).ok())
            .collect()
    }

    /// Makes sure the `default` namespace exists (the API server creates it at start).
    pub fn ensure_default_namespace(&self) {
        if self.get(&resources::NAMESPACES, "", "default").is_none() {
            let ns = json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "default"}, "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}});
            // Why ignored: only a concurrent creation can fail, which is the goal.
            let _ = self.create(&resources::NAMESPACES, ns);
        }
    }
}

impl Backend for Store {
    fn create(&self, resource: &'static Resource, mut obj: Value) -> Result<Arc<Value>, Error> {
        let mut state = self.lock();
        let namespace = if resource.namespaced {
            meta_str(&obj, "namespace").unwrap_or("default").to_owned()
        } else {
            String::new()
        };
        let name_missing = meta_str(&obj, "name").unwrap_or_default().is_empty();
        if name_missing {
            let Some(prefix) = meta_str(&obj, "generateName").map(str::to_owned) else {
                return Err(Error::Invalid("metadata.name: Required value".to_owned()));
            };
            // Retry on the (unlikely) clash, as the API server does.
            loop {
                let candidate = format!("{prefix}{}", random_suffix());
                if !state
                    .objects
                    .contains_key(&key(resource, &namespace, &candidate))
                {
                    obj["metadata"]["name"] = json!(candidate);
                    break;
                }
            }
        }
        let name = meta_str(&obj, "name").unwrap_or_default().to_owned();
        let k = key(resource, &namespace, &name);
        if state.objects.contains_key(&k) {
            return Err(Error::AlreadyExists {
                resource: resource.qualified_plural(),
                name,
            });
        }
        set_server_fields(&mut obj, resource, &namespace);
        if resource == &resources::SERVICES {
            let st = &mut *state;
            admit_service(&mut st.services, &st.service_network, &mut obj, None)?;
        }
        Ok(self.commit(&mut state, ChangeType::Added, resource, k, obj))
    }

    fn get(&self, resource: &'static Resource, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let ns = if resource.namespaced { namespace } else { "" };
        let kept = self
            .lock()
            .objects
            .get(&key(resource, ns, name))
            .map(|s| s.object.clone());
        kept.as_ref().map(Kept::value)
    }

    fn list(&self, resource: &'static Resource, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let state = self.lock();
        let prefix = match namespace.filter(|_| resource.namespaced) {
            Some(ns) => format!("{}/{}/{ns}/", resource.group, resource.plural),
            None => format!("{}/{}/", resource.group, resource.plural),
        };
        let kept: Vec<Kept> = state
            .objects
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, s)| s.object.clone())
            .collect();
        let rv = state.resource_version;
        drop(state);
        // Objects kept as text are parsed outside the lock.
        (kept.iter().map(Kept::value).collect(), rv)
    }

    fn update(
        &self,
        resource: &'static Resource,
        mut obj: Value,
        part: Part,
    ) -> Result<Arc<Value>, Error> {
        let mut state = self.lock();
        let namespace = if resource.namespaced {
            meta_str(&obj, "namespace").unwrap_or("default").to_owned()
        } else {
            String::new()
        };
        let name = meta_str(&obj, "name").unwrap_or_default().to_owned();
        let k = key(resource, &namespace, &name);
        let Some(current) = state.objects.get(&k).map(|s| s.object.value()) else {
            return Err(Self::not_found(resource, &name));
        };
        let conflict = || Error::Conflict {
            resource: resource.qualified_plural(),
            name: name.clone(),
        };
        if let Some(rv) = meta_str(&obj, "resourceVersion").filter(|s| !s.is_empty())
            && Some(rv) != meta_str(&current, "resourceVersion")
        {
            return Err(conflict());
        }
        if let Some(uid) = meta_str(&obj, "uid").filter(|s| !s.is_empty())
            && Some(uid) != meta_str(&current, "uid")
        {
            return Err(Error::UidPrecondition {
                expected: uid.to_owned(),
                actual: meta_str(&current, "uid").unwrap_or_default().to_owned(),
            });
        }
        let next = match part {
            Part::Status => {
                let mut next = Value::clone(&current);
                next["status"] = obj.get("status").cloned().unwrap_or(Value::Null);
                // Upstream's status strategies of apps/v1 keep only spec and labels from the
                // stored object: the controllers write annotations (a Deployment's revision)
                // with the status, without bumping the generation.
                if resource.group == "apps"
                    && let Some(annotations) = obj.pointer("/metadata/annotations")
                {
                    next["metadata"]["annotations"] = annotations.clone();
                }
                next
            }
            Part::Main => {
                // Server-owned metadata stays; status is the status subresource's.
                let meta = obj["metadata"]
                    .as_object_mut()
                    .ok_or_else(|| Error::Invalid("metadata: Required value".to_owned()))?;
                for field in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "resourceVersion",
                ] {
                    match current["metadata"].get(field) {
                        Some(v) => {
                            meta.insert(field.to_owned(), v.clone());
                        }
                        None => {
                            meta.remove(field);
                        }
                    }
                }
                if meta.contains_key("namespace") || resource.namespaced {
                    meta.insert("namespace".to_owned(), json!(namespace));
                }
                if resource.has_status {
                    match current.get("status") {
                        Some(s) => obj["status"] = s.clone(),
                        None => {
                            if let Some(o) = obj.as_object_mut() {
                                o.remove("status");
                            }
                        }
                    }
                }
                obj["apiVersion"] = json!(resource.api_version());
                obj["kind"] = json!(resource.kind);
                // `generation` moves with every change of the spec (of anything but metadata
                // and status for kinds without a spec).
                let changed = |v: &Value| {
                    let mut v = v.clone();
                    if let Some(o) = v.as_object_mut() {
                        o.remove("metadata");
                        o.remove("status");
                    }
                    v
                };
                // A Deployment's annotations count too: they are copied to its ReplicaSets
                // (upstream `deploymentStrategy.PrepareForUpdate`).
                let annotations_changed = resource == &resources::DEPLOYMENTS
                    && obj["metadata"].get("annotations") != current["metadata"].get("annotations");
                if (changed(&obj) != changed(&current) || annotations_changed)
                    && let Some(g) = current["metadata"]
                        .get("generation")
                        .and_then(Value::as_i64)
                {
                    obj["metadata"]["generation"] = json!(g + 1);
                }
                obj
            }
        };
        let mut next = next;
        if resource == &resources::SERVICES && part == Part::Main {
            let st = &mut *state;
            admit_service(
                &mut st.services,
                &st.service_network,
                &mut next,
                Some(&current),
            )?;
        }
        let mut unchanged = next.clone();
        unchanged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        if unchanged == *current {
            return Ok(current);
        }
        Ok(self.commit(&mut state, ChangeType::Modified, resource, k, next))
    }

    fn remove(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
    ) -> Result<Arc<Value>, Error> {
        let mut state = self.lock();
        let ns = if resource.namespaced { namespace } else { "" };
        let k = key(resource, ns, name);
        let Some(current) = state.objects.get(&k).map(|s| s.object.value()) else {
            return Err(Self::not_found(resource, name));
        };
        if let Some(expected) = uid {
            let actual = meta_str(&current, "uid").unwrap_or_default();
            if actual != expected {
                return Err(Error::UidPrecondition {
                    expected: expected.to_owned(),
                    actual: actual.to_owned(),
                });
            }
        }
        if resource == &resources::EVENTS {
            if let Ok(e) = serde_json::from_value::<Event>(Value::clone(&current)) {
                state.event_index.remove(&events::aggregation_key(&e));
            }
            state.event_order.retain(|x| x != &k);
        }
        Ok(self.commit(
            &mut state,
            ChangeType::Deleted,
            resource,
            k,
            Value::clone(&current),
        ))
    }

    fn watch_from(
        &self,
        resource_version: u64,
    ) -> Result<(Vec<Change>, broadcast::Receiver<Change>), Error> {
        let state = self.lock();
        if resource_version < state.history_floor {
            return Err(Error::Expired {
                requested: resource_version,
                oldest: state.history_floor,
            });
        }
        let rx = self.changes.subscribe();
        let start = state
            .history
            .partition_point(|e| e.resource_version <= resource_version);
        let entries: Vec<HistoryEntry> = state.history.range(start..).cloned().collect();
        drop(state);
        // Superseded versions are parsed outside the lock.
        Ok((entries.iter().map(HistoryEntry::change).collect(), rx))
    }

    fn snapshot(&self) -> (Vec<Change>, u64, broadcast::Receiver<Change>) {
        let state = self.lock();
        let rx = self.changes.subscribe();
        let stored: Vec<Stored> = state.objects.values().cloned().collect();
        let rv = state.resource_version;
        drop(state);
        // Objects kept as text are parsed outside the lock.
        let objects = stored
            .into_iter()
            .map(|stored| {
                let object = stored.object.value();
                Change {
                    change_type: ChangeType::Added,
                    resource_version: meta_str(&object, "resourceVersion")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    resource: stored.resource,
                    object,
                    previous: None,
                    // The decode of this version that its change's receivers share: a watcher
                    // that starts from a snapshot holds the same typed pod as the others.
                    typed_pod: stored.typed_pod,
                }
            })
            .collect();
        (objects, rv, rx)
    }

    fn durable(&self) -> watch::Receiver<u64> {
        match &self.persistence {
            Some(p) => p.lock().unwrap_or_else(|e| e.into_inner()).durable(),
            None => self.memory_durable.subscribe(),
        }
    }
}

/// The store key and `namespace/name` of a Service given as JSON.
fn service_key(obj: &Value) -> (String, String) {
    let namespace = meta_str(obj, "namespace").unwrap_or("default");
    let name = meta_str(obj, "name").unwrap_or_default();
    (
        key(&resources::SERVICES, namespace, name),
        format!("{namespace}/{name}"),
    )
}

fn owner_of_value(obj: &Value) -> String {
    service_key(obj).1
}

/// The service registry's part of a Service write, inside the critical section: on update,
/// the stored Service's allocated values kept and the update rules checked (as the API did;
/// again here for writers that do not go through the API, `up -f`); on create, the status is
/// the registry's. Then [`services::allocate`]. `obj` becomes what will be stored.
fn admit_service(
    index: &mut ServiceIndex,
    network: &ServiceNetwork,
    obj: &mut Value,
    current: Option<&Value>,
) -> Result<(), Error> {
    let name = meta_str(obj, "name").unwrap_or_default().to_owned();
    let mut svc: Service =
        serde_json::from_value(obj.clone()).map_err(|e| Error::Invalid(e.to_string()))?;
    match current {
        Some(current) => {
            let old: Service = serde_json::from_value(current.clone())
                .map_err(|e| Error::Invalid(e.to_string()))?;
            crate::model::service::prepare_update(&mut svc, &old);
            let errors = crate::model::service::validate_update(&svc, &old);
            if !errors.is_empty() {
                return Err(Error::InvalidFields {
                    kind: "Service",
                    name,
                    errors,
                });
            }
        }
        None => svc.status = None,
    }
    services::allocate(index, network, &mut svc).map_err(|e| match e {
        AllocError::Invalid(errors) => Error::InvalidFields {
            kind: "Service",
            name,
            errors,
        },
        AllocError::Internal(message) => Error::Internal(message),
    })?;
    *obj = serde_json::to_value(&svc).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(())
}

/// `current` with `deletionTimestamp` and `deletionGracePeriodSeconds` (`rest.BeforeDelete`);
/// the first graceful delete also bumps a generation that is set.
fn with_deletion(current: &Value, deadline: Timestamp, grace: i64, first: bool) -> Value {
    let mut next = current.clone();
    let meta = &mut next["metadata"];
    meta["deletionTimestamp"] = json!(deadline.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    meta["deletionGracePeriodSeconds"] = json!(grace);
    if first && let Some(generation) = meta.get("generation").and_then(Value::as_i64) {
        meta["generation"] = json!(generation + 1);
    }
    next
}

/// Sets what the API server sets on create.
fn set_server_fields(obj: &mut Value, resource: &Resource, namespace: &str) {
    obj["apiVersion"] = json!(resource.api_version());
    obj["kind"] = json!(resource.kind);
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    // Pods carry a generation since 1.33 (set on create, bumped by spec changes and by the
    // graceful delete), EndpointSlices too (bumped when anything but metadata changes); the
    // other kinds served here have none (their strategies set none).
    // Deployments, ReplicaSets and ReplicationControllers have one as upstream (the
    // controllers' `observedGeneration` follows it).
    let has_generation = resource == &resources::PODS
        || resource == &resources::ENDPOINT_SLICES
        || resources::has_scale(resource);
    let meta = obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object");
    if resource.namespaced {
        meta.insert("namespace".to_owned(), json!(namespace));
    } else {
        meta.remove("namespace");
    }
    meta.insert("uid".to_owned(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert(
        "creationTimestamp".to_owned(),
        json!(Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
    );
    if has_generation {
        meta.insert("generation".to_owned(), json!(1));
    } else {
        meta.remove("generation");
    }
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
}

/// The object as a create would store it, without storing it (a dry run): uid,
/// creationTimestamp, generation, namespace set; no resourceVersion, as upstream's dry-run
/// storage leaves it.
pub fn preview_create(resource: &Resource, mut obj: Value) -> Value {
    let namespace = if resource.namespaced {
        meta_str(&obj, "namespace").unwrap_or("default").to_owned()
    } else {
        String::new()
    };
    if meta_str(&obj, "name").unwrap_or_default().is_empty()
        && let Some(prefix) = meta_str(&obj, "generateName").map(str::to_owned)
    {
        obj["metadata"]["name"] = json!(format!("{prefix}{}", random_suffix()));
    }
    set_server_fields(&mut obj, resource, &namespace);
    obj
}

/// Binds a new pod to the node: `spec.nodeName`, `status.phase: Pending`.
fn bind_pod(value: &mut Value, node_name: &str) {
    if value["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
        && value.get("spec").is_some()
    {
        value["spec"]["nodeName"] = json!(node_name);
    }
    value["status"] = json!({"phase": "Pending"});
}

/// Binds a pod created through the API (the node is its scheduler).
pub fn bind_new_pod(value: &mut Value, node_name: &str) {
    bind_pod(value, node_name);
}

fn to_pod(value: &Value) -> Pod {
    Pod::deserialize(value).unwrap_or_default()
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
