//! The registry's lease controller: an EndpointSlice owned by a `coordination.k8s.io/v1`
//! Lease (what `podvisor register` creates) lives as long as the Lease is renewed. When
//! `renewTime + leaseDurationSeconds` passes, the slices go, then the Lease, and an event on
//! the Service says so; when a Lease is deleted, the slices it owns go at once (the garbage
//! collector's part, which podvisor has no general version of).
//!
//! Must not: touch Leases that own nothing (they are someone else's locks or heartbeats).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::controller::{key_of, service_reference};
use crate::store::events::{Source, object_event};
use crate::store::resources;
use crate::store::{Backend, Change, ChangeType, ObjectKey, Store};

/// A Lease as this controller sees it.
#[derive(Clone, Debug)]
struct LeaseState {
    uid: String,
    holder: String,
    /// When it expires, on the wall clock (renewTime, else acquireTime, else creation, plus
    /// leaseDurationSeconds); None without a duration (never expires).
    expires: Option<Timestamp>,
    duration_secs: i64,
}

fn lease_state(lease: &Value) -> Option<LeaseState> {
    let uid = lease.pointer("/metadata/uid")?.as_str()?.to_owned();
    let spec = lease.get("spec");
    let time = |f: &str| {
        spec.and_then(|s| s.get(f))
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Timestamp>().ok())
    };
    let since = time("renewTime")
        .or_else(|| time("acquireTime"))
        .or_else(|| {
            lease
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .and_then(|t| t.parse().ok())
        });
    let duration_secs = spec
        .and_then(|s| s.get("leaseDurationSeconds"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let expires = match (since, duration_secs) {
        (Some(since), d) if d > 0 => since.checked_add(jiff::SignedDuration::from_secs(d)).ok(),
        _ => None,
    };
    Some(LeaseState {
        uid,
        holder: spec
            .and_then(|s| s.get("holderIdentity"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        expires,
        duration_secs,
    })
}

/// The uid of the Lease that owns `slice`, if one does.
fn owning_lease(slice: &Value) -> Option<&str> {
    slice
        .pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|o| {
            o.get("kind").and_then(Value::as_str) == Some("Lease")
                && o.get("apiVersion").and_then(Value::as_str) == Some("coordination.k8s.io/v1")
        })?
        .get("uid")?
        .as_str()
}

/// Runs until `stop` turns true or the store closes.
pub async fn run_leases(store: Arc<Store>, node_name: String, mut stop: watch::Receiver<bool>) {
    let source = Source {
        component: "podvisor-registry".to_owned(),
        host: Some(node_name),
    };
    let (snapshot, mut changes) = store.watch();
    let mut leases: HashMap<ObjectKey, LeaseState> = HashMap::new();
    for change in &snapshot {
        if change.resource == &resources::LEASES
            && let Some(state) = lease_state(&change.object)
        {
            leases.insert(key_of(&change.object), state);
        }
    }
    // Slices whose Lease went while the node was down.
    collect_orphans(&store, &leases);
    loop {
        expire(&store, &source, &mut leases);
        let next = leases.values().filter_map(|l| l.expires).min().map(|t| {
            let wait = t.duration_since(Timestamp::now());
            Instant::now() + Duration::try_from(wait).unwrap_or(Duration::ZERO)
        });
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            change = changes.recv() => match change {
                Ok(change) => on_change(&store, &mut leases, &change),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let (snapshot, rx) = store.watch();
                    changes = rx;
                    leases.clear();
                    for change in &snapshot {
                        if change.resource == &resources::LEASES
                            && let Some(state) = lease_state(&change.object)
                        {
                            leases.insert(key_of(&change.object), state);
                        }
                    }
                    collect_orphans(&store, &leases);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = sleep => {}
            _ = stop.changed() => return,
        }
    }
}

fn on_change(store: &Store, leases: &mut HashMap<ObjectKey, LeaseState>, change: &Change) {
    if change.resource != &resources::LEASES {
        return;
    }
    let key = key_of(&change.object);
    if change.change_type == ChangeType::Deleted {
        if let Some(state) = leases.remove(&key) {
            remove_owned_slices(store, &key.namespace, &state.uid);
        }
    } else if let Some(state) = lease_state(&change.object) {
        leases.insert(key, state);
    }
}

/// Removes the slices of every expired Lease, then the Lease, with an event.
fn expire(store: &Store, source: &Source, leases: &mut HashMap<ObjectKey, LeaseState>) {
    let now = Timestamp::now();
    let expired: Vec<(ObjectKey, LeaseState)> = leases
        .iter()
        .filter(|(_, l)| l.expires.is_some_and(|t| t <= now))
        .map(|(k, l)| (k.clone(), l.clone()))
        .collect();
    for (key, lease) in expired {
        leases.remove(&key);
        let removed = remove_owned_slices(store, &key.namespace, &lease.uid);
        if removed.is_empty() {
            // Not a registration: leave it to whoever holds it.
            continue;
        }
        if let Err(error) = store.remove(
            &resources::LEASES,
            &key.namespace,
            &key.name,
            Some(&lease.uid),
        ) {
            tracing::debug!(%error, "expired lease already gone");
        }
        for (service, addresses) in removed {
            let message = format!(
                "Lease {} (holder {}) was not renewed within {}s: removed endpoint{} {} of service {}",
                key.name,
                if lease.holder.is_empty() {
                    "<none>"
                } else {
                    &lease.holder
                },
                lease.duration_secs,
                if addresses.len() == 1 { "" } else { "s" },
                addresses.join(", "),
                service
            );
            tracing::info!(lease = %key, "{message}");
            let uid = store
                .get(&resources::SERVICES, &key.namespace, &service)
                .and_then(|s| s.pointer("/metadata/uid")?.as_str().map(str::to_owned));
            let involved = service_reference(&ObjectKey::new(&key.namespace, &service), uid);
            store.record_event(object_event(
                involved,
                "Warning",
                "RegistrationExpired",
                &message,
                source,
            ));
        }
    }
}

/// Deletes the slices owned by the Lease `uid`; returns, per service, the addresses removed.
fn remove_owned_slices(store: &Store, namespace: &str, uid: &str) -> Vec<(String, Vec<String>)> {
    let mut removed = Vec::new();
    for slice in store.list(&resources::ENDPOINT_SLICES, Some(namespace)).0 {
        if owning_lease(&slice) != Some(uid) {
            continue;
        }
        let key = key_of(&slice);
        let slice_uid = slice.pointer("/metadata/uid").and_then(Value::as_str);
        if store
            .remove(
                &resources::ENDPOINT_SLICES,
                &key.namespace,
                &key.name,
                slice_uid,
            )
            .is_err()
        {
            continue;
        }
        let service = slice
            .pointer("/metadata/labels/kubernetes.io~1service-name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let port = slice
            .pointer("/ports/0/port")
            .and_then(Value::as_i64)
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        let addresses = slice
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|e| {
                e.get("addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .filter_map(Value::as_str)
            .map(|a| format!("{a}{port}"))
            .collect();
        removed.push((service, addresses));
    }
    removed
}

/// Deletes slices owned by a Lease that no longer exists.
fn collect_orphans(store: &Store, leases: &HashMap<ObjectKey, LeaseState>) {
    for slice in store.list(&resources::ENDPOINT_SLICES, None).0 {
        let Some(uid) = owning_lease(&slice) else {
            continue;
        };
        if leases.values().any(|l| l.uid == uid) {
            continue;
        }
        let key = key_of(&slice);
        remove_owned_slices(store, &key.namespace, uid);
    }
}
