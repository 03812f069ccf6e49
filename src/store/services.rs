//! What Services hold on the node: cluster IPs from the service CIDR, node ports from
//! 30000–32767, and the node-address ports of LoadBalancer Services (podvisor is its own load
//! balancer and listens on the node address at the service port, as k3s's ServiceLB does).
//! The allocators of the API server's service registry (`pkg/registry/core/service/storage/
//! alloc.go`, `ipallocator`, `portallocator`), with their messages.
//!
//! The index is derived from the stored Services: the store updates it on every committed
//! change of a Service and rebuilds it when it opens, so allocations survive restarts and
//! deletes release them, with no state of their own to keep consistent. [`allocate`] runs
//! under the store's lock, between the checks of a create or update and its commit, so a
//! write either stores a Service with everything it holds or nothing at all.
//!
//! Must not: do IO or await (it runs inside the store's critical section).

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, Service, ServiceSpec};

use crate::model::cidr::Cidr;
use crate::model::field::{FieldError, FieldPath};
use crate::model::service::{
    CLUSTER_IP_NONE, is_headless, needs_health_check, needs_node_ports, should_allocate_node_ports,
};
use crate::model::validation::{go_string_slice, parse_ip_sloppy};

/// The node ports a NodePort or LoadBalancer Service may get (kube-apiserver's default
/// `--service-node-port-range`).
pub const NODE_PORT_MIN: i32 = 30000;
/// See [`NODE_PORT_MIN`].
pub const NODE_PORT_MAX: i32 = 32767;

/// Where Services get their addresses: the node's `--service-cidr` and `--node-address`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceNetwork {
    /// Cluster IPs come from here (network and broadcast addresses excluded).
    pub cidr: Cidr,
    /// NodePort and LoadBalancer Services listen here; it is the LoadBalancer ingress IP.
    pub node_address: Ipv4Addr,
}

impl Default for ServiceNetwork {
    fn default() -> Self {
        ServiceNetwork {
            cidr: Cidr {
                network: Ipv4Addr::new(127, 20, 0, 0),
                prefix: 16,
            },
            node_address: Ipv4Addr::LOCALHOST,
        }
    }
}

/// Why a Service could not get what it asks for, as the registry answers.
#[derive(Clone, Debug, PartialEq)]
pub enum AllocError {
    /// A requested value is taken or out of range: 422 Invalid with these causes.
    Invalid(Vec<FieldError>),
    /// Nothing is left to allocate (`range is full`): upstream's 500 InternalError.
    Internal(String),
}

/// What listens on one port of the node address.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Listener {
    /// The node port of a NodePort or LoadBalancer Service.
    NodePort,
    /// The service port of a LoadBalancer Service.
    LoadBalancer,
}

/// What one stored Service holds.
#[derive(Clone, Debug, Default)]
struct Holdings {
    ips: Vec<Ipv4Addr>,
    node_ports: Vec<i32>,
    listeners: Vec<(i32, String)>,
}

/// Everything the stored Services hold, by owner (`namespace/name`).
#[derive(Clone, Debug, Default)]
pub struct ServiceIndex {
    /// What each Service holds, to release it when the Service changes or goes.
    holdings: HashMap<String, Holdings>,
    /// Cluster IP to owner.
    ips: HashMap<Ipv4Addr, String>,
    /// Node port (any protocol: the port allocator is per number) to owner.
    node_ports: HashMap<i32, String>,
    /// (port, protocol) on the node address to owner and why.
    listeners: HashMap<(i32, String), (String, Listener)>,
    /// Offset in the service CIDR where the next search for a free cluster IP starts, so a
    /// released address is not handed out again at once.
    ip_cursor: u32,
    /// Where the next search for a free node port starts.
    port_cursor: i32,
}

/// `namespace/name` of a Service.
pub fn owner_of(svc: &Service) -> String {
    format!(
        "{}/{}",
        svc.metadata.namespace.as_deref().unwrap_or("default"),
        svc.metadata.name.as_deref().unwrap_or_default()
    )
}

fn protocol(port: &k8s_openapi::api::core::v1::ServicePort) -> String {
    port.protocol.clone().unwrap_or_else(|| "TCP".to_owned())
}

impl ServiceIndex {
    /// Records what a stored Service holds (replacing what it held before).
    pub fn insert(&mut self, svc: &Service) {
        let owner = owner_of(svc);
        self.remove(&owner);
        let Some(spec) = &svc.spec else { return };
        let mut holdings = Holdings::default();
        for ip in spec.cluster_ips.iter().flatten() {
            if let Some(std::net::IpAddr::V4(v4)) = parse_ip_sloppy(ip) {
                holdings.ips.push(v4);
                self.ips.insert(v4, owner.clone());
            }
        }
        let is_lb = spec.type_.as_deref() == Some("LoadBalancer");
        for port in spec.ports.iter().flatten() {
            let node_port = port.node_port.unwrap_or(0);
            if node_port != 0 {
                holdings.node_ports.push(node_port);
                self.node_ports.insert(node_port, owner.clone());
                if needs_node_ports(spec) {
                    let key = (node_port, protocol(port));
                    holdings.listeners.push(key.clone());
                    self.listeners
                        .insert(key, (owner.clone(), Listener::NodePort));
                }
            }
            if is_lb {
                let key = (port.port, protocol(port));
                holdings.listeners.push(key.clone());
                self.listeners
                    .insert(key, (owner.clone(), Listener::LoadBalancer));
            }
        }
        if let Some(hc) = spec.health_check_node_port.filter(|p| *p != 0) {
            holdings.node_ports.push(hc);
            self.node_ports.insert(hc, owner.clone());
        }
        self.holdings.insert(owner, holdings);
    }

    /// Releases what `owner` held.
    pub fn remove(&mut self, owner: &str) {
        let Some(held) = self.holdings.remove(owner) else {
            return;
        };
        for ip in held.ips {
            if self.ips.get(&ip).is_some_and(|o| o == owner) {
                self.ips.remove(&ip);
            }
        }
        for port in held.node_ports {
            if self.node_ports.get(&port).is_some_and(|o| o == owner) {
                self.node_ports.remove(&port);
            }
        }
        for key in held.listeners {
            if self.listeners.get(&key).is_some_and(|(o, _)| o == owner) {
                self.listeners.remove(&key);
            }
        }
    }

    /// Whether `ip` is held by a Service other than `owner`.
    fn ip_taken(&self, ip: Ipv4Addr, owner: &str) -> bool {
        self.ips.get(&ip).is_some_and(|o| o != owner)
    }

    fn ip_held_by(&self, ip: Ipv4Addr, owner: &str) -> bool {
        self.ips.get(&ip).is_some_and(|o| o == owner)
    }

    /// Who else listens on the node address at `port` with `protocol`, and why.
    fn listener(&self, port: i32, protocol: &str, owner: &str) -> Option<&(String, Listener)> {
        self.listeners
            .get(&(port, protocol.to_owned()))
            .filter(|(o, _)| o != owner)
    }

    /// Whether `port` may not be handed out as a node port for `owner`.
    fn node_port_taken(&self, port: i32, owner: &str) -> bool {
        self.node_ports.get(&port).is_some_and(|o| o != owner)
            || self
                .listeners
                .iter()
                .any(|((p, _), (o, _))| *p == port && o != owner)
    }

    fn node_port_held_by(&self, port: i32, owner: &str) -> bool {
        self.node_ports.get(&port).is_some_and(|o| o == owner)
    }

    /// A free cluster IP, round robin from the cursor.
    fn next_ip(&mut self, cidr: &Cidr, owner: &str) -> Option<Ipv4Addr> {
        let size = cidr.size();
        for _ in 0..size {
            let offset = self.ip_cursor.max(1);
            self.ip_cursor = if offset + 1 >= size - 1 {
                1
            } else {
                offset + 1
            };
            let ip = cidr.at(offset);
            if cidr.contains_host(ip) && !self.ip_taken(ip, owner) && !self.ip_held_by(ip, owner) {
                return Some(ip);
            }
        }
        None
    }

    /// A free node port not in `also_used`, round robin from the cursor.
    fn next_node_port(&mut self, owner: &str, also_used: &[i32]) -> Option<i32> {
        // Every number held by anyone (this Service's own too: a new port needs a new one)
        // or listened on by another Service, collected once.
        let blocked: HashSet<i32> = self
            .node_ports
            .keys()
            .copied()
            .chain(
                self.listeners
                    .iter()
                    .filter(|(_, (o, _))| o != owner)
                    .map(|((p, _), _)| *p),
            )
            .chain(also_used.iter().copied())
            .collect();
        let count = NODE_PORT_MAX - NODE_PORT_MIN + 1;
        for _ in 0..count {
            let port = self.port_cursor.clamp(NODE_PORT_MIN, NODE_PORT_MAX);
            self.port_cursor = if port >= NODE_PORT_MAX {
                NODE_PORT_MIN
            } else {
                port + 1
            };
            if !blocked.contains(&port) {
                return Some(port);
            }
        }
        None
    }
}

/// Gives a Service what it needs on create or update, as the registry's `allocateCreate` /
/// `allocateUpdate` do: its cluster IP (the requested one if it is free and in the range),
/// its node ports and health check node port, and checks its LoadBalancer ports are free on
/// the node address; then sets `status.loadBalancer` (the node address for a LoadBalancer
/// Service, empty otherwise). What the Service already holds (an update) stays its own. The
/// Service is defaulted, prepared and valid (`model::service`); `index` is not changed
/// beyond its cursors: the store records the Service when it commits it.
pub fn allocate(
    index: &mut ServiceIndex,
    network: &ServiceNetwork,
    svc: &mut Service,
) -> Result<(), AllocError> {
    let owner = owner_of(svc);
    let spec = svc.spec.get_or_insert_with(ServiceSpec::default);
    allocate_cluster_ip(index, network, &owner, spec)?;
    allocate_node_ports(index, network, &owner, spec)?;
    check_load_balancer_ports(index, network, &owner, spec)?;
    let is_lb = spec.type_.as_deref() == Some("LoadBalancer");
    let status = svc.status.get_or_insert_with(Default::default);
    status.load_balancer = Some(if is_lb {
        LoadBalancerStatus {
            ingress: Some(vec![LoadBalancerIngress {
                ip: Some(network.node_address.to_string()),
                ip_mode: Some("VIP".to_owned()),
                ..LoadBalancerIngress::default()
            }]),
        }
    } else {
        LoadBalancerStatus::default()
    });
    Ok(())
}

fn invalid(path: FieldPath, value: impl Into<serde_json::Value>, detail: String) -> AllocError {
    AllocError::Invalid(vec![FieldError::invalid(&path, value, detail)])
}

/// `allocClusterIPs` for the one (IPv4) family.
fn allocate_cluster_ip(
    index: &mut ServiceIndex,
    network: &ServiceNetwork,
    owner: &str,
    spec: &mut ServiceSpec,
) -> Result<(), AllocError> {
    if is_headless(spec) {
        return Ok(());
    }
    let requested = spec
        .cluster_ips
        .as_ref()
        .and_then(|ips| ips.first())
        .filter(|ip| !ip.is_empty() && *ip != CLUSTER_IP_NONE)
        .cloned();
    let Some(requested) = requested else {
        let ip = index.next_ip(&network.cidr, owner).ok_or_else(|| {
            AllocError::Internal("failed to allocate a serviceIP: range is full".to_owned())
        })?;
        spec.cluster_ip = Some(ip.to_string());
        spec.cluster_ips = Some(vec![ip.to_string()]);
        return Ok(());
    };
    let ips = spec.cluster_ips.clone().unwrap_or_default();
    let fail = |why: String| {
        AllocError::Invalid(vec![FieldError::invalid_raw(
            &FieldPath::new("spec").child("clusterIPs"),
            &go_string_slice(&ips),
            format!("failed to allocate IP {requested}: {why}"),
        )])
    };
    let Some(std::net::IpAddr::V4(ip)) = parse_ip_sloppy(&requested) else {
        // Validation refused anything else; an IPv6 family is refused before allocation.
        return Err(fail(format!(
            "the provided IP ({requested}) is not in the valid range. The range of valid IPs is {}",
            network.cidr
        )));
    };
    if index.ip_held_by(ip, owner) {
        return Ok(());
    }
    if !network.cidr.contains_host(ip) {
        return Err(fail(format!(
            "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
            network.cidr
        )));
    }
    if index.ip_taken(ip, owner) {
        return Err(fail("provided IP is already allocated".to_owned()));
    }
    Ok(())
}

/// `initNodePorts` / `updateNodePorts` and the health check node port.
fn allocate_node_ports(
    index: &mut ServiceIndex,
    network: &ServiceNetwork,
    owner: &str,
    spec: &mut ServiceSpec,
) -> Result<(), AllocError> {
    let ports_path = FieldPath::new("spec").child("ports");
    let is_lb = spec.type_.as_deref() == Some("LoadBalancer");
    let allocate_new = should_allocate_node_ports(spec);
    // The node-address ports this Service listens on as a LoadBalancer: its own node ports
    // must not be among them.
    let lb_ports: Vec<(i32, String)> = if is_lb {
        spec.ports
            .iter()
            .flatten()
            .map(|p| (p.port, protocol(p)))
            .collect()
    } else {
        Vec::new()
    };
    if needs_node_ports(spec) {
        let ports = spec.ports.clone().unwrap_or_default();
        let mut by_service_port: HashMap<i32, i32> = HashMap::new();
        let mut used: Vec<i32> = lb_ports.iter().map(|(p, _)| *p).collect();
        for (i, port) in ports.iter().enumerate() {
            let path = ports_path.index(i).child("nodePort");
            let mut node_port = port.node_port.unwrap_or(0);
            if node_port == 0 && !allocate_new {
                continue;
            }
            if node_port == 0 {
                // The same service port (another protocol) shares its node port; a later
                // entry's request for this service port is honoured (`findRequestedNodePort`).
                node_port = match by_service_port.get(&port.port) {
                    Some(n) => *n,
                    None => ports
                        .iter()
                        .skip(i + 1)
                        .find(|p| p.port == port.port && p.node_port.unwrap_or(0) != 0)
                        .and_then(|p| p.node_port)
                        .unwrap_or(0),
                };
            } else if !index.node_port_held_by(node_port, owner) {
                if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&node_port) {
                    return Err(invalid(
                        path,
                        node_port,
                        format!(
                            "provided port is not in the valid range. The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}"
                        ),
                    ));
                }
                if index.node_port_taken(node_port, owner) {
                    let mut detail = "provided port is already allocated".to_owned();
                    if let Some((other, Listener::LoadBalancer)) =
                        index.listener(node_port, &protocol(port), owner)
                    {
                        detail.push_str(&format!(
                            " (LoadBalancer service {other} listens on {}:{node_port})",
                            network.node_address
                        ));
                    }
                    return Err(invalid(path, node_port, detail));
                }
            }
            let own_lb_clash = lb_ports
                .iter()
                .enumerate()
                .any(|(j, (p, proto))| j != i && *p == node_port && *proto == protocol(port));
            if node_port != 0 && own_lb_clash {
                return Err(invalid(
                    path,
                    node_port,
                    format!(
                        "provided port is already allocated (it is a LoadBalancer port of this service on {})",
                        network.node_address
                    ),
                ));
            }
            if node_port == 0 {
                node_port = index.next_node_port(owner, &used).ok_or_else(|| {
                    AllocError::Internal("failed to allocate a nodePort: range is full".to_owned())
                })?;
            }
            used.push(node_port);
            by_service_port.insert(port.port, node_port);
            if let Some(p) = spec.ports.as_mut().and_then(|ps| ps.get_mut(i)) {
                p.node_port = Some(node_port);
            }
        }
    }
    if needs_health_check(spec) {
        let used: Vec<i32> = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.node_port)
            .chain(lb_ports.iter().map(|(p, _)| *p))
            .collect();
        match spec.health_check_node_port.unwrap_or(0) {
            0 => {
                let port = index.next_node_port(owner, &used).ok_or_else(|| {
                    AllocError::Internal(
                        "failed to allocate a HealthCheck NodePort 0: range is full".to_owned(),
                    )
                })?;
                spec.health_check_node_port = Some(port);
            }
            port if index.node_port_held_by(port, owner) => {}
            port => {
                let why = if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&port) {
                    format!(
                        "provided port is not in the valid range. The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}"
                    )
                } else if index.node_port_taken(port, owner) || used.contains(&port) {
                    "provided port is already allocated".to_owned()
                } else {
                    return Ok(());
                };
                return Err(AllocError::Internal(format!(
                    "failed to allocate requested HealthCheck NodePort {port}: {why}"
                )));
            }
        }
    }
    Ok(())
}

/// A LoadBalancer Service listens on the node address at each of its ports: another
/// Service's LoadBalancer port or node port there is a conflict.
fn check_load_balancer_ports(
    index: &ServiceIndex,
    network: &ServiceNetwork,
    owner: &str,
    spec: &ServiceSpec,
) -> Result<(), AllocError> {
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return Ok(());
    }
    let ports_path = FieldPath::new("spec").child("ports");
    for (i, port) in spec.ports.iter().flatten().enumerate() {
        let proto = protocol(port);
        if let Some((other, why)) = index.listener(port.port, &proto, owner) {
            let what = match why {
                Listener::LoadBalancer => format!("LoadBalancer service {other}"),
                Listener::NodePort => format!("a node port of service {other}"),
            };
            return Err(invalid(
                ports_path.index(i).child("port"),
                port.port,
                format!(
                    "port {}/{proto} of the node address {} is already used by {what}; podvisor serves LoadBalancer services on the node address at their own port, so two of them cannot share a port and protocol",
                    port.port, network.node_address
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
