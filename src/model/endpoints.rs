//! `v1` Endpoints and `discovery.k8s.io/v1` EndpointSlices: defaults and validation, ported
//! from Kubernetes 1.32/1.33 `pkg/apis/core/v1/defaults.go` (`SetDefaults_Endpoints`),
//! `pkg/apis/discovery/v1/defaults.go` (`SetDefaults_EndpointPort`),
//! `pkg/apis/core/validation` (`ValidateEndpoints`) and `pkg/apis/discovery/validation`
//! (`ValidateEndpointSlice`, `ValidateEndpointSliceUpdate`).
//!
//! Deviation: endpoint addresses may be loopback addresses (upstream's `ValidateNonSpecialIP`
//! refuses them), since every podvisor pod has one; see `validation::validate_non_special_ip`.
//! Endpoints subsets are stored as given (upstream's registry repacks them with
//! `RepackSubsets` after validation).
//!
//! Pure: no IO, no tokio.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort as CorePort, Endpoints};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};

use crate::model::field::{FieldError, FieldPath};
use crate::model::validation::{
    PORT_PROTOCOLS, is_dns1123_subdomain, is_valid_label_value, is_valid_port_num,
    name_is_dns_subdomain, validate_dns1123_label, validate_immutable_field, validate_ip,
    validate_ipv4_address, validate_labels, validate_non_special_ip, validate_object_meta,
    validate_qualified_name,
};

#[cfg(test)]
mod tests;

/// Upstream `supportedAddressTypes`, sorted.
pub const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
const MAX_TOPOLOGY_LABELS: usize = 16;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;
const MAX_ENDPOINTS: usize = 1000;
const MAX_ZONE_HINTS: usize = 8;
/// The zone label, which conversion moves out of `deprecatedTopology`.
const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";

type Errs = Vec<FieldError>;

// ---------------------------------------------------------------------------------------------
// Endpoints.
// ---------------------------------------------------------------------------------------------

/// Upstream `SetDefaults_Endpoints`: a port's protocol is TCP.
pub fn set_endpoints_defaults(endpoints: &mut Endpoints) {
    for subset in endpoints.subsets.iter_mut().flatten() {
        for port in subset.ports.iter_mut().flatten() {
            if port.protocol.as_deref().is_none_or(str::is_empty) {
                port.protocol = Some("TCP".to_owned());
            }
        }
    }
}

/// Upstream `ValidateEndpointsCreate` (`ValidateEndpoints`).
pub fn validate_endpoints(endpoints: &Endpoints) -> Vec<FieldError> {
    let mut errs = validate_object_meta(
        &endpoints.metadata,
        &FieldPath::new("metadata"),
        true,
        name_is_dns_subdomain,
    );
    let subsets_path = FieldPath::new("subsets");
    for (i, subset) in endpoints.subsets.iter().flatten().enumerate() {
        let path = subsets_path.index(i);
        let addresses = subset.addresses.as_deref().unwrap_or_default();
        let not_ready = subset.not_ready_addresses.as_deref().unwrap_or_default();
        if addresses.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                &path,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (j, address) in addresses.iter().enumerate() {
            errs.extend(validate_endpoint_address(
                address,
                &path.child("addresses").index(j),
            ));
        }
        for (j, address) in not_ready.iter().enumerate() {
            errs.extend(validate_endpoint_address(
                address,
                &path.child("notReadyAddresses").index(j),
            ));
        }
        let ports = subset.ports.as_deref().unwrap_or_default();
        for (j, port) in ports.iter().enumerate() {
            errs.extend(validate_core_endpoint_port(
                port,
                ports.len() > 1,
                &path.child("ports").index(j),
            ));
        }
    }
    errs
}

/// Upstream `validateEndpointAddress`.
fn validate_endpoint_address(address: &EndpointAddress, path: &FieldPath) -> Errs {
    let ip_path = path.child("ip");
    let mut errs = validate_ip(&address.ip, &ip_path);
    let hostname = address.hostname.as_deref().unwrap_or_default();
    if !hostname.is_empty() {
        errs.extend(validate_dns1123_label(hostname, &path.child("hostname")));
    }
    if let Some(node_name) = &address.node_name {
        for msg in is_dns1123_subdomain(node_name) {
            errs.push(FieldError::invalid(
                &path.child("nodeName"),
                node_name.as_str(),
                msg,
            ));
        }
    }
    errs.extend(validate_non_special_ip(&address.ip, &ip_path));
    errs
}

/// Upstream core `validateEndpointPort`.
fn validate_core_endpoint_port(port: &CorePort, require_name: bool, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    let name = port.name.as_deref().unwrap_or_default();
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(validate_dns1123_label(name, &path.child("name")));
    }
    for msg in is_valid_port_num(i64::from(port.port)) {
        errs.push(FieldError::invalid(&path.child("port"), port.port, msg));
    }
    errs.extend(validate_protocol(
        port.protocol.as_deref(),
        &path.child("protocol"),
    ));
    if let Some(app_protocol) = &port.app_protocol {
        errs.extend(validate_qualified_name(
            app_protocol,
            &path.child("appProtocol"),
        ));
    }
    errs
}

fn validate_protocol(protocol: Option<&str>, path: &FieldPath) -> Errs {
    match protocol {
        None | Some("") => vec![FieldError::required(path, "")],
        Some(p) if PORT_PROTOCOLS.contains(&p) => Errs::new(),
        Some(other) => vec![FieldError::not_supported(path, other, PORT_PROTOCOLS)],
    }
}

// ---------------------------------------------------------------------------------------------
// EndpointSlices.
// ---------------------------------------------------------------------------------------------

/// Upstream `SetDefaults_EndpointPort`: a port without a name gets `""` (kubectl's `describe
/// svc` dereferences it) and one without a protocol TCP.
pub fn set_endpoint_slice_defaults(slice: &mut EndpointSlice) {
    for port in slice.ports.iter_mut().flatten() {
        if port.name.is_none() {
            port.name = Some(String::new());
        }
        if port.protocol.is_none() {
            port.protocol = Some("TCP".to_owned());
        }
    }
}

/// Upstream `ValidateEndpointSliceCreate`, or `ValidateEndpointSliceUpdate` with `old`:
/// unchanged endpoints are not validated again, and `addressType` is immutable.
pub fn validate_endpoint_slice(
    slice: &EndpointSlice,
    old: Option<&EndpointSlice>,
) -> Vec<FieldError> {
    let mut errs = validate_object_meta(
        &slice.metadata,
        &FieldPath::new("metadata"),
        true,
        name_is_dns_subdomain,
    );
    let type_path = FieldPath::new("addressType");
    if slice.address_type.is_empty() {
        errs.push(FieldError::required(&type_path, ""));
    } else if !ADDRESS_TYPES.contains(&slice.address_type.as_str()) {
        errs.push(FieldError::not_supported(
            &type_path,
            slice.address_type.as_str(),
            ADDRESS_TYPES,
        ));
    }
    errs.extend(validate_slice_ports(
        slice.ports.as_deref().unwrap_or_default(),
        &FieldPath::new("ports"),
    ));
    if old.is_none_or(|o| o.endpoints != slice.endpoints) {
        errs.extend(validate_slice_endpoints(
            &slice.endpoints,
            &slice.address_type,
            &FieldPath::new("endpoints"),
        ));
    }
    if let Some(old) = old {
        errs.extend(validate_immutable_field(
            &slice.address_type.as_str().into(),
            &old.address_type.as_str().into(),
            &type_path,
        ));
    }
    errs
}

/// Upstream `validateEndpoints` (of a slice).
fn validate_slice_endpoints(endpoints: &[Endpoint], address_type: &str, path: &FieldPath) -> Errs {
    if endpoints.len() > MAX_ENDPOINTS {
        return vec![too_many(path, endpoints.len(), MAX_ENDPOINTS)];
    }
    let mut errs = Errs::new();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let idx = path.index(i);
        let addresses_path = idx.child("addresses");
        if endpoint.addresses.is_empty() {
            errs.push(FieldError::required(
                &addresses_path,
                "must contain at least 1 address",
            ));
        } else if endpoint.addresses.len() > MAX_ADDRESSES {
            errs.push(too_many(
                &addresses_path,
                endpoint.addresses.len(),
                MAX_ADDRESSES,
            ));
        }
        for (j, address) in endpoint.addresses.iter().enumerate() {
            let p = addresses_path.index(j);
            match address_type {
                "IPv4" => {
                    errs.extend(validate_ipv4_address(address, &p));
                    errs.extend(validate_non_special_ip(address, &p));
                }
                "IPv6" => {
                    if !address.contains(':') || !validate_ip(address, &p).is_empty() {
                        errs.push(FieldError::invalid(
                            &p,
                            address.as_str(),
                            "must be a valid IPv6 address",
                        ));
                    }
                    errs.extend(validate_non_special_ip(address, &p));
                }
                "FQDN" => errs.extend(validate_fqdn(address, &p)),
                _ => {}
            }
        }
        if let Some(node_name) = &endpoint.node_name {
            for msg in is_dns1123_subdomain(node_name) {
                errs.push(FieldError::invalid(
                    &idx.child("nodeName"),
                    node_name.as_str(),
                    msg,
                ));
            }
        }
        let topology_path = idx.child("deprecatedTopology");
        if let Some(topology) = &endpoint.deprecated_topology {
            if topology.len() > MAX_TOPOLOGY_LABELS {
                errs.push(too_many(
                    &topology_path,
                    topology.len(),
                    MAX_TOPOLOGY_LABELS,
                ));
            }
            errs.extend(validate_labels(topology, &topology_path));
            if topology.contains_key(LABEL_TOPOLOGY_ZONE) {
                errs.push(FieldError::internal(
                    &topology_path.key(LABEL_TOPOLOGY_ZONE),
                    "reserved key was not removed in conversion",
                ));
            }
        }
        if let Some(hostname) = &endpoint.hostname {
            errs.extend(validate_dns1123_label(hostname, &idx.child("hostname")));
        }
        if let Some(zones) = endpoint.hints.as_ref().and_then(|h| h.for_zones.as_ref()) {
            let zones_path = idx.child("hints").child("forZones");
            if zones.len() > MAX_ZONE_HINTS {
                errs.push(too_many(&zones_path, zones.len(), MAX_ZONE_HINTS));
                continue;
            }
            let mut names = HashSet::new();
            for (j, zone) in zones.iter().enumerate() {
                let p = zones_path.index(j).child("name");
                if !names.insert(zone.name.as_str()) {
                    errs.push(FieldError::duplicate(&p, zone.name.as_str()));
                }
                for msg in is_valid_label_value(&zone.name) {
                    errs.push(FieldError::invalid(&p, zone.name.as_str(), msg));
                }
            }
        }
    }
    errs
}

/// Upstream `validatePorts` (of a slice).
fn validate_slice_ports(ports: &[EndpointPort], path: &FieldPath) -> Errs {
    if ports.len() > MAX_PORTS {
        return vec![too_many(path, ports.len(), MAX_PORTS)];
    }
    let mut errs = Errs::new();
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let idx = path.index(i);
        let name = port.name.as_deref().unwrap_or_default();
        if !name.is_empty() {
            errs.extend(validate_dns1123_label(name, &idx.child("name")));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(&idx.child("name"), name));
        }
        match port.protocol.as_deref() {
            None => errs.push(FieldError::required(&idx.child("protocol"), "")),
            Some(p) if PORT_PROTOCOLS.contains(&p) => {}
            Some(other) => errs.push(FieldError::not_supported(
                &idx.child("protocol"),
                other,
                PORT_PROTOCOLS,
            )),
        }
        if let Some(app_protocol) = &port.app_protocol {
            errs.extend(validate_qualified_name(
                app_protocol,
                &idx.child("appProtocol"),
            ));
        }
    }
    errs
}

/// Upstream `IsFullyQualifiedDomainName`.
fn validate_fqdn(value: &str, path: &FieldPath) -> Errs {
    let name = value.strip_suffix('.').unwrap_or(value);
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs: Errs = is_dns1123_subdomain(name)
        .into_iter()
        .map(|msg| FieldError::invalid(path, value, msg))
        .collect();
    if name.split('.').count() < 2 {
        errs.push(FieldError::invalid(
            path,
            value,
            "should be a domain with at least two segments separated by dots",
        ));
    }
    errs
}

/// Upstream `field.TooMany(path, actual, max)`.
fn too_many(path: &FieldPath, actual: usize, max: usize) -> FieldError {
    let mut e = FieldError::invalid(path, actual, format!("must have at most {max} items"));
    e.kind = crate::model::field::ErrorType::TooMany;
    e
}
