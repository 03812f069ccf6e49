//! The node's service proxy (kube-proxy's role): Services and their EndpointSlices in the
//! store become gateway listeners and endpoint sets.
//!
//! `desired_listeners` is pure; `run_proxy` watches the store, recomputes the Services a
//! change touches and applies the difference to the gateway. A pod that gets a
//! `deletionTimestamp` touches the Services whose slices hold it: its endpoints are applied
//! as terminating and not ready at once, as the endpoints controller's slice will say. A
//! listener that cannot bind is a `Warning` event on its Service, retried when the Service
//! changes or every 10 s.
//!
//! Must not: write Services or EndpointSlices (the API and the endpoints controller do), or
//! hold anything across an await but its own state.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::controller::endpoints::LABEL_SERVICE_NAME;
use crate::controller::{key_of, service_reference};
use crate::gateway::{Endpoint, Gateway, ListenerSpec, Protocol};
use crate::store::events::{Source, object_event};
use crate::store::resources;
use crate::store::{Change, ChangeType, ObjectKey, Store};

/// One listener the gateway should have, with its endpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredListener {
    pub spec: ListenerSpec,
    pub endpoints: Vec<Endpoint>,
}

/// The L7 protocol a Service port asks for (DESIGN.md "Networking model"): appProtocol
/// `h2c`/`kubernetes.io/h2c` or a `grpc*` port name → h2c to backends; appProtocol `http` or
/// an `http*` port name → HTTP; anything else is L4 TCP.
pub fn port_protocol(port: &ServicePort) -> Protocol {
    let name = port.name.as_deref().unwrap_or("");
    match port.app_protocol.as_deref() {
        Some("h2c" | "kubernetes.io/h2c") => Protocol::H2c,
        Some("http") => Protocol::Http,
        _ if name.starts_with("grpc") => Protocol::H2c,
        _ if name.starts_with("http") => Protocol::Http,
        _ => Protocol::Tcp,
    }
}

fn service_key(service: &Service) -> String {
    format!(
        "{}/{}",
        service.metadata.namespace.as_deref().unwrap_or("default"),
        service.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The listeners of `service` given its slices: one per TCP port, on `VIP:port`, plus
/// `node:nodePort` for NodePort and LoadBalancer, plus `node:port` for LoadBalancer (k3s
/// ServiceLB style). Endpoints are read from every slice of the Service (any manager) whose
/// ports have the service port's name; nil conditions count as ready and serving, as the
/// API documents. Headless and ExternalName Services have no listener.
///
/// `terminating(uid)` says whether the pod an endpoint's `targetRef` names is being deleted:
/// such an endpoint is terminating and not ready (unless the Service publishes not-ready
/// addresses), whatever its slice says yet. That is the endpoints controller's own rule
/// (`podToEndpoint`), applied here from the pod's change without waiting for the slice the
/// controller writes from it: one store write and one task hop fewer between a pod's
/// deletion and the gateway's new endpoint set (BENCHMARKS.md "Propagation").
pub fn desired_listeners(
    service: &Service,
    slices: &[Arc<EndpointSlice>],
    node_address: Ipv4Addr,
    terminating: impl Fn(&str) -> bool,
) -> Vec<DesiredListener> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
    if type_ == "ExternalName" {
        return Vec::new();
    }
    let vip: Option<IpAddr> = spec
        .cluster_ip
        .as_deref()
        .filter(|ip| *ip != "None")
        .and_then(|ip| ip.parse().ok());
    if spec.cluster_ip.as_deref() == Some("None") {
        return Vec::new();
    }
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        let secs = spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .unwrap_or(10800);
        Duration::from_secs(u64::try_from(secs).unwrap_or(10800))
    });
    let mut listeners = Vec::new();
    for port in spec.ports.iter().flatten() {
        if port.protocol.as_deref().unwrap_or("TCP") != "TCP" {
            continue;
        }
        let Ok(number) = u16::try_from(port.port) else {
            continue;
        };
        let mut addrs = Vec::new();
        if let Some(vip) = vip {
            addrs.push(SocketAddr::new(vip, number));
        }
        if matches!(type_, "NodePort" | "LoadBalancer")
            && let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok())
        {
            addrs.push(SocketAddr::new(node_address.into(), node_port));
        }
        if type_ == "LoadBalancer" {
            addrs.push(SocketAddr::new(node_address.into(), number));
        }
        if addrs.is_empty() {
            continue;
        }
        let port_name = port.name.clone().unwrap_or_default();
        let mut endpoints: Vec<Endpoint> = Vec::new();
        for slice in slices {
            if slice.address_type != "IPv4" {
                continue;
            }
            let Some(target_port) = slice.ports.iter().flatten().find_map(|p| {
                let same_name = p.name.as_deref().unwrap_or("") == port_name;
                let tcp = p.protocol.as_deref().unwrap_or("TCP") == "TCP";
                (same_name && tcp)
                    .then_some(p.port)
                    .flatten()
                    .and_then(|n| u16::try_from(n).ok())
            }) else {
                continue;
            };
            for e in &slice.endpoints {
                let Some(ip) = e.addresses.first().and_then(|a| a.parse::<IpAddr>().ok()) else {
                    continue;
                };
                let addr = SocketAddr::new(ip, target_port);
                if endpoints.iter().any(|x| x.addr == addr) {
                    continue;
                }
                let c = e.conditions.as_ref();
                let ready = c.and_then(|c| c.ready).unwrap_or(true);
                let deleted = e
                    .target_ref
                    .as_ref()
                    .and_then(|r| r.uid.as_deref())
                    .is_some_and(&terminating);
                endpoints.push(Endpoint {
                    addr,
                    ready: ready && (!deleted || publish_not_ready),
                    serving: c.and_then(|c| c.serving).unwrap_or(ready),
                    terminating: deleted || c.and_then(|c| c.terminating).unwrap_or(false),
                    target: e.target_ref.as_ref().map(|r| {
                        format!(
                            "{}/{}",
                            r.namespace.as_deref().unwrap_or_default(),
                            r.name.as_deref().unwrap_or_default()
                        )
                    }),
                });
            }
        }
        endpoints.sort_by_key(|e| e.addr);
        listeners.push(DesiredListener {
            spec: ListenerSpec {
                service: service_key(service),
                port_name,
                addrs,
                protocol: port_protocol(port),
                client_ip_affinity: affinity,
            },
            endpoints,
        });
    }
    listeners
}

/// What the proxy knows and has applied.
#[derive(Default)]
struct State {
    services: HashMap<ObjectKey, Arc<Service>>,
    /// Slices by their own key, with the service they belong to.
    slices: HashMap<ObjectKey, (String, Arc<EndpointSlice>)>,
    /// What the gateway has, per service: listener spec and endpoints per port name.
    applied: HashMap<ObjectKey, HashMap<String, DesiredListener>>,
    /// Listeners that failed to bind, retried later.
    failed: BTreeSet<ObjectKey>,
    /// Further Services the last `apply` touched (a slice that changed services, the
    /// Services whose slices hold a pod that is being deleted).
    pending_extra: Vec<ObjectKey>,
    /// Uids of pods being deleted (`deletionTimestamp` set), whose endpoints take no new
    /// traffic from the moment the proxy sees the pod's change (see `desired_listeners`);
    /// `true` once the pod is gone from the store, until no slice names it any more.
    terminating: HashMap<String, bool>,
}

impl State {
    /// Applies a change; returns the Service it concerns, if any.
    fn apply(&mut self, change: &Change) -> Option<ObjectKey> {
        let key = key_of(&change.object);
        if change.resource == &resources::SERVICES {
            if change.change_type == ChangeType::Deleted {
                self.services.remove(&key);
            } else if let Ok(svc) = serde_json::from_value(Value::clone(&change.object)) {
                self.services.insert(key.clone(), Arc::new(svc));
            }
            Some(key)
        } else if change.resource == &resources::ENDPOINT_SLICES {
            let service = change
                .object
                .pointer("/metadata/labels")
                .and_then(|l| l.get(LABEL_SERVICE_NAME))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let previous = self.slices.remove(&key).map(|(s, _)| s);
            if change.change_type != ChangeType::Deleted
                && let Some(service) = &service
                && let Ok(slice) = serde_json::from_value(Value::clone(&change.object))
            {
                self.slices
                    .insert(key.clone(), (service.clone(), Arc::new(slice)));
            }
            // A slice that moved between services touches both.
            if let Some(previous) = previous.filter(|p| Some(p) != service.as_ref()) {
                self.pending_extra
                    .push(ObjectKey::new(&key.namespace, &previous));
            }
            // Pods gone from the store are forgotten once their endpoints are.
            if self.terminating.values().any(|gone| *gone) {
                let slices = &self.slices;
                self.terminating
                    .retain(|uid, gone| !*gone || slices_name(slices, uid).next().is_some());
            }
            service.map(|s| ObjectKey::new(&key.namespace, &s))
        } else if change.resource == &resources::PODS {
            self.apply_pod(change);
            None
        } else {
            None
        }
    }

    /// Applies a snapshot, pods last (a pod being deleted counts once its slices are known).
    fn apply_snapshot(&mut self, snapshot: &[Change], dirty: &mut BTreeSet<ObjectKey>) {
        let (pods, others): (Vec<&Change>, Vec<&Change>) = snapshot
            .iter()
            .partition(|c| c.resource == &resources::PODS);
        for change in others.into_iter().chain(pods) {
            dirty.extend(self.apply(change));
            dirty.extend(self.pending_extra.drain(..));
        }
    }

    /// Notes a pod that is being deleted (or is gone) and marks the Services whose slices
    /// hold it, so that its endpoints stop taking new traffic before the endpoints controller
    /// has written the slices that say so.
    fn apply_pod(&mut self, change: &Change) {
        let Some(uid) = change
            .object
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
        else {
            return;
        };
        let gone = change.change_type == ChangeType::Deleted;
        if !gone
            && change
                .object
                .pointer("/metadata/deletionTimestamp")
                .is_none()
        {
            return;
        }
        let touched: Vec<ObjectKey> = slices_name(&self.slices, uid).collect();
        if touched.is_empty() {
            // No endpoint of it anywhere: nothing to hold back (a slice written later from
            // the terminating pod already says so).
            self.terminating.remove(uid);
            return;
        }
        if self.terminating.insert(uid.to_owned(), gone).is_none() {
            self.pending_extra.extend(touched);
        }
    }
}

/// The Services (namespace and name) whose slices hold an endpoint of the pod `uid`.
fn slices_name<'a>(
    slices: &'a HashMap<ObjectKey, (String, Arc<EndpointSlice>)>,
    uid: &'a str,
) -> impl Iterator<Item = ObjectKey> + 'a {
    slices
        .iter()
        .filter(move |(_, (_, slice))| {
            slice
                .endpoints
                .iter()
                .any(|e| e.target_ref.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid))
        })
        .map(|(key, (service, _))| ObjectKey::new(&key.namespace, service))
}

/// Runs the proxy until `stop` turns true or the store closes.
pub async fn run_proxy(
    store: Arc<Store>,
    gateway: Gateway,
    node_address: Ipv4Addr,
    node_name: String,
    mut stop: watch::Receiver<bool>,
) {
    let source = Source {
        component: "podvisor-proxy".to_owned(),
        host: Some(node_name),
    };
    let (snapshot, mut changes) = store.watch();
    let mut state = State::default();
    let mut dirty = BTreeSet::new();
    state.apply_snapshot(&snapshot, &mut dirty);
    let mut retry = tokio::time::interval(Duration::from_secs(10));
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        for key in std::mem::take(&mut dirty) {
            sync(&store, &gateway, &source, &mut state, &key, node_address).await;
        }
        tokio::select! {
            change = changes.recv() => match change {
                Ok(change) => {
                    tracing::debug!(target: "podvisor::latency", step = "proxy-wake", rv = change.resource_version, kind = change.resource.plural);
                    dirty.extend(state.apply(&change));
                    dirty.extend(state.pending_extra.drain(..));
                    while let Ok(change) = changes.try_recv() {
                        dirty.extend(state.apply(&change));
                        dirty.extend(state.pending_extra.drain(..));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "proxy lagged; resyncing");
                    let (snapshot, rx) = store.watch();
                    changes = rx;
                    let applied = std::mem::take(&mut state.applied);
                    dirty.extend(applied.keys().cloned());
                    state = State { applied, ..State::default() };
                    state.apply_snapshot(&snapshot, &mut dirty);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = retry.tick() => dirty.extend(state.failed.iter().cloned()),
            _ = stop.changed() => break,
        }
    }
}

/// Brings the gateway's listeners of one Service to what the store says.
async fn sync(
    store: &Store,
    gateway: &Gateway,
    source: &Source,
    state: &mut State,
    key: &ObjectKey,
    node_address: Ipv4Addr,
) {
    let desired: Vec<DesiredListener> = match state.services.get(key) {
        Some(service) => {
            let slices: Vec<Arc<EndpointSlice>> = state
                .slices
                .iter()
                .filter(|(k, (s, _))| k.namespace == key.namespace && *s == key.name)
                .map(|(_, (_, slice))| slice.clone())
                .collect();
            desired_listeners(service, &slices, node_address, |uid| {
                state.terminating.contains_key(uid)
            })
        }
        None => Vec::new(),
    };
    let service_name = format!("{}/{}", key.namespace, key.name);
    let applied = state.applied.entry(key.clone()).or_default();
    let wanted: BTreeSet<String> = desired.iter().map(|d| d.spec.port_name.clone()).collect();
    for port in applied.keys().cloned().collect::<Vec<_>>() {
        if !wanted.contains(&port) {
            gateway.remove_listener(&service_name, &port);
            applied.remove(&port);
        }
    }
    let mut failed = false;
    for d in desired {
        let port = d.spec.port_name.clone();
        let current = applied.get(&port);
        if current.map(|c| &c.spec) != Some(&d.spec)
            && let Err(error) = gateway.set_listener(d.spec.clone()).await
        {
            failed = true;
            tracing::warn!(service = %service_name, %error, "cannot open the listener");
            let uid = state.services.get(key).and_then(|s| s.metadata.uid.clone());
            store.record_event(object_event(
                service_reference(key, uid),
                "Warning",
                "FailedToListen",
                &error.to_string(),
                source,
            ));
            continue;
        }
        if current.map(|c| &c.endpoints) != Some(&d.endpoints) {
            gateway.set_endpoints(&service_name, &port, d.endpoints.clone());
            tracing::debug!(target: "podvisor::latency", step = "proxy-applied", service = %service_name);
        }
        applied.insert(port, d);
    }
    if applied.is_empty() {
        state.applied.remove(key);
    }
    if failed {
        state.failed.insert(key.clone());
    } else {
        state.failed.remove(key);
    }
}

#[cfg(test)]
mod tests;
