//! What the EndpointSlice and Endpoints controllers want to exist for one Service: pure
//! functions ported from upstream (`k8s.io/endpointslice` `podToEndpoint`, the reconciler's
//! port grouping, `pkg/controller/endpoint` and `RepackSubsets`).
//!
//! Must not: read the store or the clock; the controller loop (`controller::run_endpoints`)
//! feeds it the Service and the pods of its namespace and writes the result.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort as CoreEndpointPort, EndpointSubset, Endpoints, ObjectReference,
    Pod, Service, ServicePort,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `endpointslice.kubernetes.io/managed-by` of the slices this controller owns.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";

/// Whether the controllers manage endpoints for `service`: only for a selector (a
/// selector-less Service's endpoints are the user's, as upstream).
pub fn has_selector(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|s| !s.is_empty())
}

/// Whether `pod` carries every label of the Service's selector.
pub fn selects(service: &Service, pod: &Pod) -> bool {
    let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    if selector.is_empty() || pod.metadata.namespace != service.metadata.namespace {
        return false;
    }
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// `IsPodReady`: the pod's `Ready` condition is True.
fn is_pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// `ShouldPodBeInEndpoints`: not terminal, has an IP, and not terminating unless wanted.
fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    !is_terminal(pod)
        && pod_ip(pod).is_some()
        && (include_terminating || pod.metadata.deletion_timestamp.is_none())
}

/// `podutil.FindPort`: the container port a Service port reaches on `pod` (a name is looked
/// up among the ports of regular containers and sidecars with the same protocol).
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
        Some(IntOrString::Int(n)) if *n != 0 => Some(*n),
        _ => Some(port.port),
    }
}

fn service_ports(service: &Service) -> &[ServicePort] {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or(&[])
}

/// The resolved ports of `pod` for every Service port it serves.
fn endpoint_ports(service: &Service, pod: &Pod) -> Vec<EndpointPort> {
    service_ports(service)
        .iter()
        .filter_map(|sp| {
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(find_port(pod, sp)?),
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".to_owned())),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// `podToEndpoint`.
fn pod_to_endpoint(service: &Service, pod: &Pod, ip: &str) -> Endpoint {
    let serving = is_pod_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let publish_not_ready = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    // "ready" is never true for a terminating pod unless publishNotReadyAddresses is set.
    let ready = publish_not_ready || (serving && !terminating);
    Endpoint {
        addresses: vec![ip.to_owned()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        target_ref: Some(pod_reference(pod)),
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        ..Endpoint::default()
    }
}

fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".to_owned()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

fn owner_reference(service: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Service".to_owned(),
        name: service.metadata.name.clone().unwrap_or_default(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn is_headless(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| ip == "None")
}

/// The slice labels: the Service's own (except reserved keys), the headless marker, the
/// service name and the manager, as upstream's `setEndpointSliceLabels`.
fn slice_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                LABEL_SERVICE_NAME | LABEL_MANAGED_BY | LABEL_HEADLESS
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if is_headless(service) {
        labels.insert(LABEL_HEADLESS.to_owned(), String::new());
    }
    labels.insert(
        LABEL_SERVICE_NAME.to_owned(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(LABEL_MANAGED_BY.to_owned(), CONTROLLER_NAME.to_owned());
    labels
}

/// A short stable hash of a port set, for slice names (FNV-1a; names must not change
/// between runs, so no randomized hasher).
fn port_hash(ports: &[EndpointPort]) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for p in ports {
        let text = format!(
            "{}/{}/{}/{};",
            p.name.as_deref().unwrap_or(""),
            p.port.unwrap_or(0),
            p.protocol.as_deref().unwrap_or(""),
            p.app_protocol.as_deref().unwrap_or("")
        );
        for b in text.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u32) as usize] as char)
        .collect()
}

/// The name of the slice of `service` for a port set: `<service>-<hash>`, the service name
/// cut so the whole fits in 63 characters.
fn slice_name(service: &Service, ports: &[EndpointPort]) -> String {
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let prefix: String = name.chars().take(57).collect();
    format!("{prefix}-{}", port_hash(ports))
}

/// The EndpointSlices `service` should have, given every pod of its namespace: one per
/// distinct set of resolved ports (pods whose named ports resolve differently land in
/// different slices), endpoints sorted by address. With no endpoint at all, one empty
/// placeholder slice, as upstream keeps.
pub fn desired_slices(service: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSlice> {
    type PortKey = Vec<(String, i32, String, String)>;
    let mut groups: BTreeMap<PortKey, (Vec<EndpointPort>, Vec<Endpoint>)> = BTreeMap::new();
    for pod in pods.iter().filter(|p| selects(service, p)) {
        if !should_pod_be_in_endpoints(pod, true) {
            continue;
        }
        let Some(ip) = pod_ip(pod) else { continue };
        let ports = endpoint_ports(service, pod);
        if ports.is_empty() && !service_ports(service).is_empty() {
            continue;
        }
        let key = ports
            .iter()
            .map(|p| {
                (
                    p.name.clone().unwrap_or_default(),
                    p.port.unwrap_or(0),
                    p.protocol.clone().unwrap_or_default(),
                    p.app_protocol.clone().unwrap_or_default(),
                )
            })
            .collect();
        let entry = groups.entry(key).or_insert_with(|| (ports, Vec::new()));
        entry.1.push(pod_to_endpoint(service, pod, ip));
    }
    let meta = |name: String| ObjectMeta {
        name: Some(name),
        namespace: service.metadata.namespace.clone(),
        labels: Some(slice_labels(service)),
        owner_references: Some(vec![owner_reference(service)]),
        ..ObjectMeta::default()
    };
    if groups.is_empty() {
        return vec![EndpointSlice {
            metadata: meta(slice_name(service, &[])),
            address_type: "IPv4".to_owned(),
            endpoints: Vec::new(),
            ports: None,
        }];
    }
    groups
        .into_values()
        .map(|(ports, mut endpoints)| {
            endpoints.sort_by(|a, b| a.addresses.cmp(&b.addresses));
            EndpointSlice {
                metadata: meta(slice_name(service, &ports)),
                address_type: "IPv4".to_owned(),
                endpoints,
                ports: Some(ports),
            }
        })
        .collect()
}

/// The legacy `v1` Endpoints of `service` (same name): ready pods in `addresses`, others in
/// `notReadyAddresses` (every pod in `addresses` with publishNotReadyAddresses); terminating
/// pods left out unless publishNotReadyAddresses; subsets grouped by port set as
/// `RepackSubsets` does.
pub fn desired_endpoints(service: &Service, pods: &[Arc<Pod>]) -> Endpoints {
    let publish_not_ready = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    type Group = (
        Vec<CoreEndpointPort>,
        Vec<EndpointAddress>,
        Vec<EndpointAddress>,
    );
    let mut groups: BTreeMap<Vec<(String, i32, String)>, Group> = BTreeMap::new();
    for pod in pods.iter().filter(|p| selects(service, p)) {
        if !should_pod_be_in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let Some(ip) = pod_ip(pod) else { continue };
        let ports: Vec<CoreEndpointPort> = endpoint_ports(service, pod)
            .into_iter()
            .map(|p| CoreEndpointPort {
                name: p.name.filter(|n| !n.is_empty()),
                port: p.port.unwrap_or(0),
                protocol: p.protocol,
                app_protocol: p.app_protocol,
            })
            .collect();
        if ports.is_empty() && !service_ports(service).is_empty() {
            continue;
        }
        let key = ports
            .iter()
            .map(|p| {
                (
                    p.name.clone().unwrap_or_default(),
                    p.port,
                    p.protocol.clone().unwrap_or_default(),
                )
            })
            .collect();
        let address = EndpointAddress {
            ip: ip.to_owned(),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_reference(pod)),
            ..EndpointAddress::default()
        };
        let entry = groups
            .entry(key)
            .or_insert_with(|| (ports, Vec::new(), Vec::new()));
        if publish_not_ready || is_pod_ready(pod) {
            entry.1.push(address);
        } else {
            entry.2.push(address);
        }
    }
    let subsets = groups
        .into_values()
        .map(|(ports, mut ready, mut not_ready)| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect();
    let mut labels: BTreeMap<String, String> = service.metadata.labels.clone().unwrap_or_default();
    if is_headless(service) {
        labels.insert(LABEL_HEADLESS.to_owned(), String::new());
    } else {
        labels.remove(LABEL_HEADLESS);
    }
    Endpoints {
        metadata: ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            labels: (!labels.is_empty()).then_some(labels),
            ..ObjectMeta::default()
        },
        subsets: Some(subsets),
    }
}

#[cfg(test)]
mod tests;
