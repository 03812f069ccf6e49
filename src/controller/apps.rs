//! The ReplicaSet (and ReplicationController) and Deployment controllers' loop: a cache of
//! Deployments, ReplicaSets, ReplicationControllers and pods fed by the store's watch; the
//! objects a change touches are marked dirty and synced with the pure decisions of
//! `controller::replicaset` and `controller::deployment`, whose plans this loop writes.
//!
//! A ReplicationController is handled as the ReplicaSet it is equivalent to (its map selector
//! as `matchLabels`). podvisor has no garbage collector, so this loop also cascades deletes:
//! a deleted Deployment's ReplicaSets, and a deleted ReplicaSet's pods, are deleted here
//! (pods gracefully, so they terminate in order).
//!
//! Must not: touch processes or the gateway; every write goes through the store.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::controller::deployment::{
    self, DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
};
use crate::controller::key_of;
use crate::controller::replicaset::{self, Claim, PodsDiff};
use crate::store::resources::{self, Resource};
use crate::store::{Backend, Change, ChangeType, ObjectKey, Part, Store};

/// Which kind a replica controller is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    ReplicaSet,
    ReplicationController,
}

impl Kind {
    fn resource(self) -> &'static Resource {
        match self {
            Kind::ReplicaSet => &resources::REPLICA_SETS,
            Kind::ReplicationController => &resources::REPLICATION_CONTROLLERS,
        }
    }
}

#[derive(Default)]
struct Cache {
    deployments: HashMap<ObjectKey, Arc<Deployment>>,
    /// ReplicaSets and ReplicationControllers (as ReplicaSets), with their kind.
    sets: HashMap<(Kind, ObjectKey), Arc<ReplicaSet>>,
    pods: HashMap<ObjectKey, Arc<Pod>>,
}

#[derive(Default)]
struct Dirty {
    deployments: BTreeSet<ObjectKey>,
    sets: BTreeSet<(Kind, ObjectKey)>,
}

/// A ReplicationController as the ReplicaSet it is equivalent to.
fn rc_as_replica_set(rc: &Value) -> Option<ReplicaSet> {
    let mut v = rc.clone();
    let selector = v.pointer("/spec/selector").cloned().unwrap_or(json!({}));
    v["spec"]["selector"] = json!({"matchLabels": selector});
    v["apiVersion"] = json!("apps/v1");
    v["kind"] = json!("ReplicaSet");
    serde_json::from_value(v).ok()
}

fn owner_uid(refs: &Option<Vec<OwnerReference>>, kind: &str) -> Option<String> {
    replicaset::controller_of(refs)
        .filter(|r| r.kind == kind)
        .map(|r| r.uid.clone())
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::ReplicaSet => "ReplicaSet",
        Kind::ReplicationController => "ReplicationController",
    }
}

impl Cache {
    fn apply(&mut self, change: &Change, dirty: &mut Dirty, store: &Store) {
        let key = key_of(&change.object);
        let deleted = change.change_type == ChangeType::Deleted;
        if change.resource == &resources::DEPLOYMENTS {
            if deleted {
                if let Some(d) = self.deployments.remove(&key) {
                    cascade(
                        store,
                        &self.sets,
                        Kind::ReplicaSet,
                        "Deployment",
                        &d.metadata.uid,
                    );
                }
            } else if let Ok(d) = serde_json::from_value::<Deployment>(Value::clone(&change.object))
            {
                self.deployments.insert(key.clone(), Arc::new(d));
                dirty.deployments.insert(key);
            }
        } else if change.resource == &resources::REPLICA_SETS
            || change.resource == &resources::REPLICATION_CONTROLLERS
        {
            let kind = if change.resource == &resources::REPLICA_SETS {
                Kind::ReplicaSet
            } else {
                Kind::ReplicationController
            };
            let parsed = match kind {
                Kind::ReplicaSet => {
                    serde_json::from_value::<ReplicaSet>(Value::clone(&change.object)).ok()
                }
                Kind::ReplicationController => rc_as_replica_set(&change.object),
            };
            if deleted {
                if let Some(rs) = self.sets.remove(&(kind, key.clone())) {
                    delete_owned_pods(store, &self.pods, kind_name(kind), &rs.metadata.uid);
                }
            } else if let Some(rs) = parsed {
                if let Some(uid) = owner_uid(&rs.metadata.owner_references, "Deployment") {
                    self.mark_deployment_by_uid(&key.namespace, &uid, dirty);
                }
                self.sets.insert((kind, key.clone()), Arc::new(rs));
                dirty.sets.insert((kind, key));
            }
            // Deployments that may adopt or own it.
            for (k, _) in self
                .deployments
                .iter()
                .filter(|(k, _)| k.namespace == key_of(&change.object).namespace)
            {
                dirty.deployments.insert(k.clone());
            }
        } else if change.resource == &resources::PODS {
            // The typed pod is the change's, shared with the node and the other controllers.
            let pod = change.pod();
            if deleted {
                self.pods.remove(&key);
            } else if let Some(p) = &pod {
                self.pods.insert(key.clone(), p.clone());
            }
            let Some(pod) = pod else { return };
            for ((kind, k), rs) in &self.sets {
                let owned = replicaset::controller_of(&pod.metadata.owner_references)
                    .is_some_and(|r| Some(&r.uid) == rs.metadata.uid.as_ref());
                if owned
                    || (k.namespace == key.namespace
                        && replicaset::claim(rs, &pod) != Claim::Ignore)
                {
                    dirty.sets.insert((*kind, k.clone()));
                }
            }
            // Deployments (Recreate waits for old pods; status counts).
            for k in self
                .deployments
                .keys()
                .filter(|k| k.namespace == key.namespace)
            {
                dirty.deployments.insert(k.clone());
            }
        }
    }

    fn mark_deployment_by_uid(&self, namespace: &str, uid: &str, dirty: &mut Dirty) {
        for (k, d) in &self.deployments {
            if k.namespace == namespace && d.metadata.uid.as_deref() == Some(uid) {
                dirty.deployments.insert(k.clone());
            }
        }
    }
}

/// Deletes the ReplicaSets a deleted owner controlled (podvisor's garbage collection).
fn cascade(
    store: &Store,
    sets: &HashMap<(Kind, ObjectKey), Arc<ReplicaSet>>,
    kind: Kind,
    owner_kind: &str,
    owner_uid: &Option<String>,
) {
    let Some(uid) = owner_uid else { return };
    for ((k, key), rs) in sets {
        if *k == kind && owner_uid_matches(&rs.metadata.owner_references, owner_kind, uid) {
            let _ = store.remove(
                kind.resource(),
                &key.namespace,
                &key.name,
                rs.metadata.uid.as_deref(),
            );
        }
    }
}

fn owner_uid_matches(refs: &Option<Vec<OwnerReference>>, kind: &str, uid: &str) -> bool {
    owner_uid(refs, kind).as_deref() == Some(uid)
}

/// Deletes, gracefully, the pods a deleted ReplicaSet controlled.
fn delete_owned_pods(
    store: &Store,
    pods: &HashMap<ObjectKey, Arc<Pod>>,
    owner_kind: &str,
    owner_uid: &Option<String>,
) {
    let Some(uid) = owner_uid else { return };
    for (key, pod) in pods {
        if owner_uid_matches(&pod.metadata.owner_references, owner_kind, uid)
            && pod.metadata.deletion_timestamp.is_none()
        {
            let _ = store.delete_pod(key, None);
        }
    }
}

/// Runs the controllers until `stop` turns true or the store closes.
pub async fn run_apps(store: Arc<Store>, node_name: String, mut stop: watch::Receiver<bool>) {
    let (snapshot, mut changes) = store.watch();
    let mut cache = Cache::default();
    let mut dirty = Dirty::default();
    for change in &snapshot {
        cache.apply(change, &mut dirty, &store);
    }
    // The earliest time a sync asked to be looked at again (minReadySeconds, progress
    // deadlines). Kept across iterations: a later sync of something else must not lose it.
    let mut wake: Option<Timestamp> = None;
    loop {
        let now = Timestamp::now();
        for set in std::mem::take(&mut dirty.sets) {
            if let Some(at) = sync_set(&store, &cache, &set, &node_name, now) {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        for key in std::mem::take(&mut dirty.deployments) {
            if let Some(at) = sync_deployment(&store, &cache, &key, now) {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        let sleep = async {
            match wake {
                Some(at) => {
                    let wait = at.duration_since(Timestamp::now());
                    let wait = std::time::Duration::try_from(wait).unwrap_or_default();
                    tokio::time::sleep_until(Instant::now() + wait).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            change = changes.recv() => match change {
                Ok(change) => {
                    cache.apply(&change, &mut dirty, &store);
                    while let Ok(change) = changes.try_recv() {
                        cache.apply(&change, &mut dirty, &store);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "apps controllers lagged; resyncing");
                    let (snapshot, rx) = store.watch();
                    changes = rx;
                    cache = Cache::default();
                    for change in &snapshot {
                        cache.apply(change, &mut dirty, &store);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = sleep => {
                // Availability (minReadySeconds) and progress deadlines: sync everything.
                wake = None;
                dirty.sets.extend(cache.sets.keys().cloned());
                dirty.deployments.extend(cache.deployments.keys().cloned());
            }
            _ = stop.changed() => return,
        }
    }
}

/// One ReplicaSet sync: claim pods, create or delete pods, write the status. Returns when it
/// wants to be synced again (minReadySeconds).
fn sync_set(
    store: &Store,
    cache: &Cache,
    set: &(Kind, ObjectKey),
    node_name: &str,
    now: Timestamp,
) -> Option<Timestamp> {
    let (kind, key) = set;
    let rs = cache.sets.get(set)?;
    if rs.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let rs_uid = rs.metadata.uid.clone()?;
    let mut owned: Vec<Pod> = Vec::new();
    for (pod_key, pod) in cache
        .pods
        .iter()
        .filter(|(k, _)| k.namespace == key.namespace)
    {
        match replicaset::claim(rs, pod) {
            Claim::Keep
                if owner_uid_matches(&pod.metadata.owner_references, kind_name(*kind), &rs_uid) =>
            {
                owned.push(Pod::clone(pod));
            }
            Claim::Adopt => {
                let mut p = Pod::clone(pod);
                p.metadata
                    .owner_references
                    .get_or_insert_with(Vec::new)
                    .push(owner_ref(*kind, rs));
                if write_pod_meta(store, pod_key, &p) {
                    owned.push(p);
                }
            }
            Claim::Release => {
                let mut p = Pod::clone(pod);
                if let Some(refs) = p.metadata.owner_references.as_mut() {
                    refs.retain(|r| r.uid != rs_uid);
                }
                write_pod_meta(store, pod_key, &p);
            }
            _ => {}
        }
    }
    match replicaset::pods_to_create_or_delete(rs, &owned) {
        PodsDiff::None => {}
        PodsDiff::Create(n) => {
            for _ in 0..n {
                if let Some(pod) = pod_from_template(*kind, rs)
                    && let Err(error) = store.create_pod(pod, node_name)
                {
                    tracing::warn!(%error, set = %key, "cannot create a pod");
                    break;
                }
            }
        }
        PodsDiff::Delete(names) => {
            for name in names {
                let _ = store.delete_pod(&ObjectKey::new(&key.namespace, &name), None);
            }
        }
    }
    let status = replicaset::calculate_status(rs, &owned, now);
    if rs.status.as_ref() != Some(&status) {
        write_status(
            store,
            kind.resource(),
            key,
            serde_json::to_value(&status).ok()?,
        );
    }
    replicaset::next_availability_check(rs, &owned, now)
}

fn owner_ref(kind: Kind, rs: &ReplicaSet) -> OwnerReference {
    OwnerReference {
        api_version: match kind {
            Kind::ReplicaSet => "apps/v1".to_owned(),
            Kind::ReplicationController => "v1".to_owned(),
        },
        kind: kind_name(kind).to_owned(),
        name: rs.metadata.name.clone().unwrap_or_default(),
        uid: rs.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A new pod of `rs`: its template, `generateName: <rs>-`, owned by it, with pod defaults.
fn pod_from_template(kind: Kind, rs: &ReplicaSet) -> Option<Pod> {
    let template = rs.spec.as_ref()?.template.clone()?;
    let mut metadata = template.metadata.unwrap_or_default();
    metadata.name = None;
    metadata.generate_name = Some(format!("{}-", rs.metadata.name.as_deref()?));
    metadata.namespace = rs.metadata.namespace.clone();
    metadata.owner_references = Some(vec![owner_ref(kind, rs)]);
    let mut pod = Pod {
        metadata,
        spec: template.spec,
        status: None,
    };
    crate::model::pod::set_defaults(&mut pod);
    Some(pod)
}

/// Writes a pod's ownerReferences (an update of its main part).
fn write_pod_meta(store: &Store, key: &ObjectKey, pod: &Pod) -> bool {
    let Some(current) = store.get(&resources::PODS, &key.namespace, &key.name) else {
        return false;
    };
    let mut v = Value::clone(&current);
    v["metadata"]["ownerReferences"] =
        serde_json::to_value(&pod.metadata.owner_references).unwrap_or(Value::Null);
    store.update(&resources::PODS, v, Part::Main).is_ok()
}

fn write_status(store: &Store, resource: &'static Resource, key: &ObjectKey, status: Value) {
    let Some(current) = store.get(resource, &key.namespace, &key.name) else {
        return;
    };
    let mut v = Value::clone(&current);
    if let Some(meta) = v["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    v["status"] = status;
    if let Err(error) = store.update(resource, v, Part::Status) {
        tracing::debug!(%error, %key, "status write failed; the next sync retries");
    }
}

/// One Deployment sync: adopt orphaned ReplicaSets, run the pure sync, write its plan.
fn sync_deployment(
    store: &Store,
    cache: &Cache,
    key: &ObjectKey,
    now: Timestamp,
) -> Option<Timestamp> {
    let d = cache.deployments.get(key)?;
    if d.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let d_uid = d.metadata.uid.clone()?;
    let selector = d.spec.as_ref().map(|s| &s.selector);
    let mut rss: Vec<ReplicaSet> = Vec::new();
    for ((kind, rs_key), rs) in &cache.sets {
        if *kind != Kind::ReplicaSet || rs_key.namespace != key.namespace {
            continue;
        }
        let controller = replicaset::controller_of(&rs.metadata.owner_references);
        match controller {
            Some(r) if r.uid == d_uid => rss.push(ReplicaSet::clone(rs)),
            None if replicaset::selector_matches(
                selector,
                rs.spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .and_then(|t| t.metadata.as_ref())
                    .and_then(|m| m.labels.as_ref()),
            ) && rs.metadata.deletion_timestamp.is_none() =>
            {
                // Adopt the orphan, as upstream's ClaimReplicaSets.
                let stored =
                    store.get(&resources::REPLICA_SETS, &rs_key.namespace, &rs_key.name)?;
                let mut v = Value::clone(&stored);
                let owner = OwnerReference {
                    api_version: "apps/v1".to_owned(),
                    kind: "Deployment".to_owned(),
                    name: d.metadata.name.clone().unwrap_or_default(),
                    uid: d_uid.clone(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                };
                let refs = v["metadata"]["ownerReferences"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let mut refs = refs;
                refs.push(serde_json::to_value(&owner).ok()?);
                v["metadata"]["ownerReferences"] = Value::Array(refs);
                if store
                    .update(&resources::REPLICA_SETS, v, Part::Main)
                    .is_ok()
                {
                    rss.push(ReplicaSet::clone(rs));
                }
            }
            _ => {}
        }
    }
    let rs_uids: BTreeSet<String> = rss.iter().filter_map(|r| r.metadata.uid.clone()).collect();
    let pods: Vec<Pod> = cache
        .pods
        .iter()
        .filter(|(k, p)| {
            k.namespace == key.namespace
                && replicaset::controller_of(&p.metadata.owner_references)
                    .is_some_and(|r| rs_uids.contains(&r.uid))
        })
        .map(|(_, p)| Pod::clone(p))
        .collect();
    let plan = match deployment::sync_deployment(d, &rss, &pods, now) {
        Ok(plan) => plan,
        Err(error) => {
            tracing::warn!(deployment = %key, ?error, "cannot sync");
            return None;
        }
    };
    let (desired, max) = deployment::replicas_annotations(d);
    if let Some(new_rs) = &plan.create {
        match serde_json::to_value(new_rs) {
            Ok(v) => {
                if let Err(error) = store.create(&resources::REPLICA_SETS, v) {
                    tracing::warn!(deployment = %key, %error, "cannot create the new ReplicaSet");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot encode a ReplicaSet"),
        }
    }
    if let Some((name, revision)) = &plan.set_revision {
        update_rs(store, &key.namespace, name, |v| {
            let old = v
                .pointer(&format!(
                    "/metadata/annotations/{}",
                    REVISION_ANNOTATION.replace('/', "~1")
                ))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let annotations = &mut v["metadata"]["annotations"];
            if !annotations.is_object() {
                *annotations = json!({});
            }
            if let Some(old) = old {
                let history = annotations[REVISION_HISTORY_ANNOTATION]
                    .as_str()
                    .map(str::to_owned);
                annotations[REVISION_HISTORY_ANNOTATION] = json!(match history {
                    Some(h) if !h.is_empty() => format!("{h},{old}"),
                    _ => old,
                });
            }
            annotations[REVISION_ANNOTATION] = json!(revision);
        });
    }
    for scale in &plan.scale {
        update_rs(store, &key.namespace, &scale.name, |v| {
            v["spec"]["replicas"] = json!(scale.replicas);
            let annotations = &mut v["metadata"]["annotations"];
            if !annotations.is_object() {
                *annotations = json!({});
            }
            annotations[DESIRED_REPLICAS_ANNOTATION] = json!(desired.to_string());
            annotations[MAX_REPLICAS_ANNOTATION] = json!(max.to_string());
        });
    }
    for name in &plan.delete {
        if let Some(rs) = store.get(&resources::REPLICA_SETS, &key.namespace, name) {
            let uid = rs
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let _ = store.remove(
                &resources::REPLICA_SETS,
                &key.namespace,
                name,
                uid.as_deref(),
            );
        }
    }
    // The revision annotation goes with the status, as upstream's controller writes it
    // (through the status subresource: no generation bump).
    let current_revision = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION));
    let revision_changed = plan
        .revision
        .as_ref()
        .is_some_and(|r| current_revision != Some(r));
    if (revision_changed || d.status.as_ref() != Some(&plan.status))
        && let Some(stored) = store.get(&resources::DEPLOYMENTS, &key.namespace, &key.name)
    {
        let mut v = Value::clone(&stored);
        if let Some(meta) = v["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
        }
        if let Some(revision) = &plan.revision {
            if !v["metadata"]["annotations"].is_object() {
                v["metadata"]["annotations"] = json!({});
            }
            v["metadata"]["annotations"][REVISION_ANNOTATION] = json!(revision);
        }
        v["status"] = serde_json::to_value(&plan.status).ok()?;
        if let Err(error) = store.update(&resources::DEPLOYMENTS, v, Part::Status) {
            tracing::debug!(%error, deployment = %key, "status write failed; the next sync retries");
        }
    }
    deployment::progress_deadline_at(d, &plan.status)
}

/// Reads, changes and writes one ReplicaSet (last writer wins on its spec and annotations).
fn update_rs(store: &Store, namespace: &str, name: &str, change: impl FnOnce(&mut Value)) {
    let Some(current) = store.get(&resources::REPLICA_SETS, namespace, name) else {
        return;
    };
    let mut v = Value::clone(&current);
    if let Some(meta) = v["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    change(&mut v);
    if let Err(error) = store.update(&resources::REPLICA_SETS, v, Part::Main) {
        tracing::warn!(%error, namespace, name, "cannot update a ReplicaSet");
    }
}
