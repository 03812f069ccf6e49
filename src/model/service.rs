//! `v1` Services: defaults, the API server's preparation of creates and updates, and
//! validation, ported from Kubernetes 1.32/1.33:
//! - `pkg/apis/core/v1/defaults.go` `SetDefaults_Service` ([`set_defaults`]);
//! - `pkg/registry/core/service/storage/storage.go` `normalizeClusterIPs` and
//!   `patchAllocatedValues`, `strategy.go` `dropTypeDependentFields` ([`prepare_update`]);
//! - `storage/alloc.go` `initIPFamilyFields` for a single-stack IPv4 node
//!   ([`init_ip_family_fields`]);
//! - `pkg/apis/core/validation` `ValidateService` ([`validate`]) and `ValidateServiceUpdate`
//!   ([`validate_update`]).
//!
//! podvisor serves ClusterIP, NodePort and LoadBalancer Services; `type: ExternalName` is
//! refused (podvisor has no cluster DNS to answer the CNAME). Allocating cluster IPs, node
//! ports and LoadBalancer ports is the store's job (`store::services`), done atomically with
//! the write; validation here runs before it, so a `healthCheckNodePort` the store will
//! allocate is not required yet.
//!
//! Pure: no IO, no tokio.

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec, SessionAffinityConfig};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::model::field::{ErrorType, FieldError, FieldPath};
use crate::model::validation::{
    PORT_PROTOCOLS, go_string_slice, is_valid_port_num, name_is_dns1035_label, parse_ip_sloppy,
    validate_dns1123_label, validate_ip, validate_labels, validate_non_special_ip,
    validate_object_meta, validate_port_num_or_name, validate_qualified_name,
};

#[cfg(test)]
mod tests;

/// The Service types podvisor serves (upstream also has `ExternalName`), sorted like
/// upstream's `sets.List`.
pub const TYPES: &[&str] = &["ClusterIP", "LoadBalancer", "NodePort"];
/// Upstream `DefaultClientIPServiceAffinitySeconds`.
pub const DEFAULT_CLIENT_IP_AFFINITY_SECONDS: i32 = 10800;
/// Upstream `MaxClientIPServiceAffinitySeconds`.
pub const MAX_CLIENT_IP_AFFINITY_SECONDS: i32 = 86400;
/// The `clusterIP` of a headless Service.
pub const CLUSTER_IP_NONE: &str = "None";
/// The only IP family of a podvisor node.
pub const IPV4: &str = "IPv4";

const SESSION_AFFINITIES: &[&str] = &["ClientIP", "None"];
const TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];
const IP_FAMILIES: &[&str] = &["IPv4", "IPv6"];
const IP_FAMILY_POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
const TRAFFIC_DISTRIBUTIONS: &[&str] = &["PreferClose"];
const ANNOTATION_TOPOLOGY_MODE: &str = "service.kubernetes.io/topology-mode";
const ANNOTATION_TOPOLOGY_HINTS: &str = "service.kubernetes.io/topology-aware-hints";
const ANNOTATION_LB_SOURCE_RANGES: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";

type Errs = Vec<FieldError>;

// ---------------------------------------------------------------------------------------------
// What a Service needs, as upstream's helpers say it.
// ---------------------------------------------------------------------------------------------

fn type_of(spec: &ServiceSpec) -> &str {
    spec.type_.as_deref().unwrap_or_default()
}

fn ports_of(spec: &ServiceSpec) -> &[ServicePort] {
    spec.ports.as_deref().unwrap_or_default()
}

/// Upstream `isHeadlessService`: `clusterIPs` is exactly `["None"]`.
pub fn is_headless(spec: &ServiceSpec) -> bool {
    spec.cluster_ips
        .as_deref()
        .is_some_and(|ips| ips.len() == 1 && ips[0] == CLUSTER_IP_NONE)
}

/// Upstream `needsNodePort`: NodePort and LoadBalancer Services have node ports.
pub fn needs_node_ports(spec: &ServiceSpec) -> bool {
    matches!(type_of(spec), "NodePort" | "LoadBalancer")
}

/// Upstream `shouldAllocateNodePorts`: a NodePort Service, or a LoadBalancer one unless
/// `allocateLoadBalancerNodePorts` is false.
pub fn should_allocate_node_ports(spec: &ServiceSpec) -> bool {
    match type_of(spec) {
        "NodePort" => true,
        "LoadBalancer" => spec.allocate_load_balancer_node_ports.unwrap_or(true),
        _ => false,
    }
}

/// Upstream `ExternallyAccessible`.
pub fn externally_accessible(spec: &ServiceSpec) -> bool {
    matches!(type_of(spec), "NodePort" | "LoadBalancer")
        || (type_of(spec) == "ClusterIP"
            && spec.external_ips.as_ref().is_some_and(|e| !e.is_empty()))
}

/// Upstream `NeedsHealthCheck`: a LoadBalancer Service with `externalTrafficPolicy: Local`.
pub fn needs_health_check(spec: &ServiceSpec) -> bool {
    type_of(spec) == "LoadBalancer" && spec.external_traffic_policy.as_deref() == Some("Local")
}

// ---------------------------------------------------------------------------------------------
// Defaults and preparation.
// ---------------------------------------------------------------------------------------------

/// Upstream `SetDefaults_Service` (the spec is a struct upstream, so it always exists).
pub fn set_defaults(svc: &mut Service) {
    let spec = svc.spec.get_or_insert_with(ServiceSpec::default);
    if spec.session_affinity.as_deref().is_none_or(str::is_empty) {
        spec.session_affinity = Some("None".to_owned());
    }
    match spec.session_affinity.as_deref() {
        Some("None") => spec.session_affinity_config = None,
        Some("ClientIP") => {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .is_some_and(|c| c.timeout_seconds.is_some());
            if !has_timeout {
                spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: Some(k8s_openapi::api::core::v1::ClientIPConfig {
                        timeout_seconds: Some(DEFAULT_CLIENT_IP_AFFINITY_SECONDS),
                    }),
                });
            }
        }
        _ => {}
    }
    if spec.type_.as_deref().is_none_or(str::is_empty) {
        spec.type_ = Some("ClusterIP".to_owned());
    }
    for port in spec.ports.iter_mut().flatten() {
        if port.protocol.as_deref().is_none_or(str::is_empty) {
            port.protocol = Some("TCP".to_owned());
        }
        let unset = match &port.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    if externally_accessible(spec)
        && spec
            .external_traffic_policy
            .as_deref()
            .is_none_or(str::is_empty)
    {
        spec.external_traffic_policy = Some("Cluster".to_owned());
    }
    if spec.internal_traffic_policy.is_none()
        && matches!(type_of(spec), "NodePort" | "LoadBalancer" | "ClusterIP")
    {
        spec.internal_traffic_policy = Some("Cluster".to_owned());
    }
    if type_of(spec) == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        spec.allocate_load_balancer_node_ports = Some(true);
    }
    // LoadBalancerIPMode (beta, on): an ingress IP without a mode is a VIP.
    if type_of(spec) == "LoadBalancer"
        && let Some(ingress) = svc
            .status
            .as_mut()
            .and_then(|s| s.load_balancer.as_mut())
            .and_then(|lb| lb.ingress.as_mut())
    {
        for i in ingress {
            if i.ip.as_deref().is_some_and(|ip| !ip.is_empty()) && i.ip_mode.is_none() {
                i.ip_mode = Some("VIP".to_owned());
            }
        }
    }
}

fn cluster_ip(spec: &ServiceSpec) -> &str {
    spec.cluster_ip.as_deref().unwrap_or_default()
}

fn cluster_ips(spec: &ServiceSpec) -> &[String] {
    spec.cluster_ips.as_deref().unwrap_or_default()
}

/// Upstream `sameClusterIPs`.
fn same_cluster_ips(old: &ServiceSpec, new: &ServiceSpec) -> bool {
    cluster_ips(old) == cluster_ips(new)
}

/// Upstream `normalizeClusterIPs`: keeps `clusterIP` and `clusterIPs` in step when a client
/// set only one of them (`old` is None on create).
pub fn normalize_cluster_ips(new: &mut ServiceSpec, old: Option<&ServiceSpec>) {
    let Some(old) = old else {
        // A create: an old client set the singular field only.
        if !cluster_ip(new).is_empty() && cluster_ips(new).is_empty() {
            new.cluster_ips = Some(vec![cluster_ip(new).to_owned()]);
        }
        return;
    };
    // An old client patching something else left `clusterIPs` out.
    if !cluster_ips(old).is_empty()
        && cluster_ips(new).is_empty()
        && cluster_ip(old) == cluster_ip(new)
    {
        new.cluster_ips = old.cluster_ips.clone();
    }
    if cluster_ip(old) != cluster_ip(new) {
        if !cluster_ip(old).is_empty() && cluster_ip(new).is_empty() {
            // Clearing it: clear the plural on the client's behalf if it was left as it was.
            if same_cluster_ips(old, new) {
                new.cluster_ips = None;
            }
        } else if same_cluster_ips(old, new) {
            new.cluster_ips = Some(vec![cluster_ip(new).to_owned()]);
        }
    }
}

/// What the registry does to an update before validating it: upstream `patchAllocatedValues`
/// (values allocated on the client's behalf and left out of the update are kept), then
/// `normalizeClusterIPs`, then `dropTypeDependentFields` (fields that no longer apply after a
/// type change, and that the client did not change, are cleared).
pub fn prepare_update(new: &mut Service, old: &Service) {
    let default_spec = ServiceSpec::default();
    let old_spec = old.spec.as_ref().unwrap_or(&default_spec);
    let spec = new.spec.get_or_insert_with(ServiceSpec::default);
    patch_allocated_values(spec, old_spec);
    normalize_cluster_ips(spec, Some(old_spec));
    drop_type_dependent_fields(spec, old_spec);
}

/// Upstream `patchAllocatedValues` (every podvisor Service needs a cluster IP: there is no
/// ExternalName).
fn patch_allocated_values(new: &mut ServiceSpec, old: &ServiceSpec) {
    if cluster_ip(new).is_empty() {
        new.cluster_ip = old.cluster_ip.clone();
    }
    if cluster_ips(new).is_empty() && !cluster_ips(old).is_empty() {
        new.cluster_ips = old.cluster_ips.clone();
    }
    if needs_node_ports(old) && needs_node_ports(new) {
        let used = |spec: &ServiceSpec| -> HashSet<i32> {
            ports_of(spec)
                .iter()
                .filter_map(|p| p.node_port.filter(|n| *n != 0))
                .collect()
        };
        let in_both: HashSet<i32> = used(old).intersection(&used(new)).copied().collect();
        // By name: the client may have changed other properties of the port.
        let by_name: HashMap<&str, i32> = ports_of(old)
            .iter()
            .map(|p| {
                (
                    p.name.as_deref().unwrap_or_default(),
                    p.node_port.unwrap_or(0),
                )
            })
            .collect();
        for port in new.ports.iter_mut().flatten() {
            if port.node_port.unwrap_or(0) == 0 {
                let old_value = by_name
                    .get(port.name.as_deref().unwrap_or_default())
                    .copied()
                    .unwrap_or(0);
                if !in_both.contains(&old_value) && old_value != 0 {
                    port.node_port = Some(old_value);
                }
            }
        }
    }
    if needs_health_check(old)
        && needs_health_check(new)
        && new.health_check_node_port.unwrap_or(0) == 0
    {
        new.health_check_node_port = old.health_check_node_port;
    }
}

/// Upstream `dropTypeDependentFields`, for the types podvisor serves (every one needs a
/// cluster IP). The load-balancer status is the store's (it sets and clears it).
fn drop_type_dependent_fields(new: &mut ServiceSpec, old: &ServiceSpec) {
    let same_node_ports = ports_of(old).len() == ports_of(new).len()
        && ports_of(old)
            .iter()
            .zip(ports_of(new))
            .all(|(o, n)| o.node_port == n.node_port);
    if needs_node_ports(old) && !needs_node_ports(new) && same_node_ports {
        for port in new.ports.iter_mut().flatten() {
            port.node_port = None;
        }
    }
    if needs_health_check(old)
        && !needs_health_check(new)
        && old.health_check_node_port == new.health_check_node_port
    {
        new.health_check_node_port = None;
    }
    if type_of(old) == "LoadBalancer" && type_of(new) != "LoadBalancer" {
        if new.allocate_load_balancer_node_ports.is_some()
            && old.allocate_load_balancer_node_ports == new.allocate_load_balancer_node_ports
        {
            new.allocate_load_balancer_node_ports = None;
        }
        if old.load_balancer_class == new.load_balancer_class {
            new.load_balancer_class = None;
        }
    }
    if externally_accessible(old)
        && !externally_accessible(new)
        && old.external_traffic_policy == new.external_traffic_policy
    {
        new.external_traffic_policy = None;
    }
}

/// Upstream `initIPFamilyFields` for a node whose only service IP family is IPv4: infers
/// `ipFamilyPolicy` (the old one on update; `RequireDualStack` for a headless Service
/// without selector, as upstream; else `SingleStack`) and `ipFamilies`, and refuses what
/// asks for IPv6. Errors are returned alone, as upstream returns them before validating.
pub fn init_ip_family_fields(new: &mut ServiceSpec, old: Option<&ServiceSpec>) -> Errs {
    let headless_selectorless =
        cluster_ip(new) == CLUSTER_IP_NONE && new.selector.as_ref().is_none_or(BTreeMap::is_empty);
    if new.ip_family_policy.is_none() {
        new.ip_family_policy = Some(match old.and_then(|o| o.ip_family_policy.clone()) {
            Some(policy) => policy,
            None if headless_selectorless => "RequireDualStack".to_owned(),
            None => "SingleStack".to_owned(),
        });
    }
    let loose = validate_cluster_ips_related_fields(new);
    if !loose.is_empty() {
        return loose;
    }
    let spec_path = FieldPath::new("spec");
    let policy_path = spec_path.child("ipFamilyPolicy");
    let policy = new.ip_family_policy.clone().unwrap_or_default();
    let mut errs = Errs::new();
    if old.is_some() && policy == "SingleStack" {
        // Keeping clusterIPs[0] and ipFamilies[0] is clear intent; the rest goes.
        if let Some(old) = old {
            if same_cluster_ips(old, new) && cluster_ips(new).len() > 1 {
                new.cluster_ips.as_mut().expect("checked").truncate(1);
            }
            if old.ip_families == new.ip_families
                && new.ip_families.as_ref().is_some_and(|f| f.len() > 1)
            {
                new.ip_families.as_mut().expect("checked").truncate(1);
            }
        }
    }
    if policy == "SingleStack" {
        if cluster_ips(new).len() == 2 {
            errs.push(FieldError::invalid(
                &policy_path,
                policy.as_str(),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if new.ip_families.as_ref().is_some_and(|f| f.len() == 2) {
            errs.push(FieldError::invalid(
                &policy_path,
                policy.as_str(),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }
    // Infer ipFamilies from clusterIPs.
    let ips = cluster_ips(new).to_vec();
    for (i, ip) in ips.iter().enumerate() {
        if ip == CLUSTER_IP_NONE {
            break;
        }
        let family = match parse_ip_sloppy(ip) {
            Some(std::net::IpAddr::V6(_)) => "IPv6",
            _ => IPV4,
        };
        let families = new.ip_families.get_or_insert_with(Vec::new);
        if i >= families.len() {
            if family == IPV4 {
                families.push(IPV4.to_owned());
            } else {
                errs.push(FieldError::invalid_raw(
                    &spec_path.child("clusterIPs").index(i),
                    &go_string_slice(&ips),
                    format!("{family} is not configured on this cluster"),
                ));
            }
        }
    }
    if new.ip_families.as_ref().is_some_and(Vec::is_empty) {
        new.ip_families = None;
    }
    if !errs.is_empty() {
        return errs;
    }
    if headless_selectorless {
        let families = new.ip_families.get_or_insert_with(Vec::new);
        if families.is_empty() {
            families.push(IPV4.to_owned());
        }
        if families.len() < 2 && policy != "SingleStack" {
            let other = if families[0] == IPV4 { "IPv6" } else { IPV4 };
            families.push(other.to_owned());
        }
        return errs;
    }
    if policy == "RequireDualStack" {
        errs.push(FieldError::invalid(
            &policy_path,
            policy.as_str(),
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, family) in new.ip_families.iter().flatten().enumerate() {
        if family != IPV4 {
            errs.push(FieldError::invalid(
                &spec_path.child("ipFamilies").index(i),
                family.as_str(),
                "not configured on this cluster",
            ));
        }
    }
    if !errs.is_empty() {
        return errs;
    }
    if new.ip_families.is_none() {
        new.ip_families = Some(vec![IPV4.to_owned()]);
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Validation.
// ---------------------------------------------------------------------------------------------

/// Upstream `ValidateService` on a defaulted, prepared Service, with podvisor's refusal of
/// `type: ExternalName`. A `healthCheckNodePort` of 0 is not an error: the store allocates it.
pub fn validate(svc: &Service) -> Vec<FieldError> {
    let meta_path = FieldPath::new("metadata");
    let mut errs = validate_object_meta(&svc.metadata, &meta_path, true, name_is_dns1035_label);
    let annotations = svc.metadata.annotations.clone().unwrap_or_default();
    if let (Some(mode), Some(hints)) = (
        annotations.get(ANNOTATION_TOPOLOGY_MODE),
        annotations.get(ANNOTATION_TOPOLOGY_HINTS),
    ) && mode != hints
    {
        errs.push(FieldError::invalid(
            &meta_path.child("annotations").key(ANNOTATION_TOPOLOGY_MODE),
            mode.as_str(),
            format!("must match annotations[{ANNOTATION_TOPOLOGY_HINTS}] when both are specified"),
        ));
    }
    let default_spec = ServiceSpec::default();
    let spec = svc.spec.as_ref().unwrap_or(&default_spec);
    let spec_path = FieldPath::new("spec");
    let ports_path = spec_path.child("ports");
    let headless = is_headless(spec);
    let type_ = type_of(spec);

    if ports_of(spec).is_empty() && !headless && type_ != "ExternalName" {
        errs.push(FieldError::required(&ports_path, ""));
    }
    if headless && matches!(type_, "LoadBalancer" | "NodePort") {
        errs.push(FieldError::invalid(
            &spec_path.child("clusterIPs").index(0),
            CLUSTER_IP_NONE,
            format!("may not be set to 'None' for {type_} services"),
        ));
    }

    let mut names = HashSet::new();
    let require_name = ports_of(spec).len() > 1;
    for (i, port) in ports_of(spec).iter().enumerate() {
        errs.extend(validate_service_port(
            port,
            require_name,
            &mut names,
            &ports_path.index(i),
        ));
    }

    if let Some(selector) = &spec.selector {
        errs.extend(validate_labels(selector, &spec_path.child("selector")));
    }

    let affinity_path = spec_path.child("sessionAffinity");
    match spec.session_affinity.as_deref().unwrap_or_default() {
        "" => errs.push(FieldError::required(&affinity_path, "")),
        "ClientIP" => errs.extend(validate_client_ip_affinity_config(
            spec.session_affinity_config.as_ref(),
            &spec_path.child("sessionAffinityConfig"),
        )),
        "None" => {
            if spec.session_affinity_config.is_some() {
                errs.push(FieldError::forbidden(
                    &spec_path.child("sessionAffinityConfig"),
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &affinity_path,
            other,
            SESSION_AFFINITIES,
        )),
    }

    errs.extend(validate_cluster_ips_related_fields(spec));

    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        let path = spec_path.child("externalIPs").index(i);
        let invalid = validate_ip(ip, &path);
        if invalid.is_empty() {
            errs.extend(validate_non_special_ip(ip, &path));
        } else {
            errs.extend(invalid);
        }
    }

    let type_path = spec_path.child("type");
    match type_ {
        "" => errs.push(FieldError::required(&type_path, "")),
        "ClusterIP" | "NodePort" | "LoadBalancer" => {}
        "ExternalName" => {
            let mut e = FieldError::not_supported(&type_path, type_, TYPES);
            e.detail.push_str(
                " (podvisor has no cluster DNS to answer an ExternalName; use a Service without selector and an EndpointSlice with the address instead)",
            );
            errs.push(e);
        }
        other => errs.push(FieldError::not_supported(&type_path, other, TYPES)),
    }

    if type_ == "ClusterIP" {
        for (i, port) in ports_of(spec).iter().enumerate() {
            if port.node_port.unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    &ports_path.index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }

    // Duplicate node ports and ports, by (protocol, number).
    let mut node_ports = HashSet::new();
    for (i, port) in ports_of(spec).iter().enumerate() {
        let node_port = port.node_port.unwrap_or(0);
        if node_port == 0 {
            continue;
        }
        if !node_ports.insert((port.protocol.clone(), node_port)) {
            errs.push(FieldError::duplicate(
                &ports_path.index(i).child("nodePort"),
                node_port,
            ));
        }
    }
    let mut seen_ports = HashSet::new();
    for (i, port) in ports_of(spec).iter().enumerate() {
        let protocol = port.protocol.clone().unwrap_or_default();
        if !seen_ports.insert((protocol.clone(), port.port)) {
            // Upstream quotes the internal ServicePort key with %#v.
            let mut e = FieldError::invalid_raw(
                &ports_path.index(i),
                &format!(
                    "core.ServicePort{{Name:\"\", Protocol:\"{protocol}\", AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                    port.port
                ),
                "",
            );
            e.kind = ErrorType::Duplicate;
            errs.push(e);
        }
    }

    let ranges = spec
        .load_balancer_source_ranges
        .as_deref()
        .unwrap_or_default();
    if !ranges.is_empty() {
        // Upstream's path is capitalised.
        let path = spec_path.child("LoadBalancerSourceRanges");
        if type_ != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &path,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, range) in ranges.iter().enumerate() {
            errs.extend(validate_cidr(range.trim(), &path.index(i)));
        }
    } else if let Some(value) = annotations.get(ANNOTATION_LB_SOURCE_RANGES) {
        let path = meta_path
            .child("annotations")
            .key(ANNOTATION_LB_SOURCE_RANGES);
        if type_ != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &path,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let value = value.trim();
        if !value.is_empty() {
            for range in value.split(',') {
                errs.extend(validate_cidr(range.trim(), &path));
            }
        }
    }

    if spec.allocate_load_balancer_node_ports.is_some() && type_ != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            &spec_path.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if type_ == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        // Upstream's path has no `spec.`.
        errs.push(FieldError::required(
            &FieldPath::new("allocateLoadBalancerNodePorts"),
            "",
        ));
    }

    errs.extend(validate_load_balancer_class(None, spec));
    errs.extend(validate_external_traffic_policy(spec));

    let itp_path = spec_path.child("internalTrafficPolicy");
    match spec.internal_traffic_policy.as_deref() {
        None if matches!(type_, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required(&itp_path, ""));
        }
        Some(policy) if !TRAFFIC_POLICIES.contains(&policy) => {
            errs.push(FieldError::not_supported(
                &itp_path,
                policy,
                TRAFFIC_POLICIES,
            ));
        }
        _ => {}
    }
    if let Some(distribution) = spec.traffic_distribution.as_deref()
        && !TRAFFIC_DISTRIBUTIONS.contains(&distribution)
    {
        errs.push(FieldError::not_supported(
            &spec_path.child("trafficDistribution"),
            distribution,
            TRAFFIC_DISTRIBUTIONS,
        ));
    }
    errs
}

/// Upstream `validateServicePort`.
fn validate_service_port<'a>(
    port: &'a ServicePort,
    require_name: bool,
    names: &mut HashSet<&'a str>,
    path: &FieldPath,
) -> Errs {
    let mut errs = Errs::new();
    let name = port.name.as_deref().unwrap_or_default();
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(validate_dns1123_label(name, &path.child("name")));
        if !names.insert(name) {
            errs.push(FieldError::duplicate(&path.child("name"), name));
        }
    }
    for msg in is_valid_port_num(i64::from(port.port)) {
        errs.push(FieldError::invalid(&path.child("port"), port.port, msg));
    }
    match port.protocol.as_deref().unwrap_or_default() {
        "" => errs.push(FieldError::required(&path.child("protocol"), "")),
        p if PORT_PROTOCOLS.contains(&p) => {}
        other => errs.push(FieldError::not_supported(
            &path.child("protocol"),
            other,
            PORT_PROTOCOLS,
        )),
    }
    if let Some(target) = &port.target_port {
        errs.extend(validate_port_num_or_name(target, &path.child("targetPort")));
    }
    if let Some(app_protocol) = &port.app_protocol {
        errs.extend(validate_qualified_name(
            app_protocol,
            &path.child("appProtocol"),
        ));
    }
    errs
}

/// Upstream `validateClientIPAffinityConfig`.
fn validate_client_ip_affinity_config(
    config: Option<&SessionAffinityConfig>,
    path: &FieldPath,
) -> Errs {
    let when = "when session affinity type is ClientIP";
    let Some(config) = config else {
        return vec![FieldError::required(path, when)];
    };
    let Some(client_ip) = &config.client_ip else {
        return vec![FieldError::required(&path.child("clientIP"), when)];
    };
    let timeout_path = path.child("clientIP").child("timeoutSeconds");
    let Some(timeout) = client_ip.timeout_seconds else {
        return vec![FieldError::required(&timeout_path, when)];
    };
    if timeout <= 0 || timeout > MAX_CLIENT_IP_AFFINITY_SECONDS {
        return vec![FieldError::invalid(
            &timeout_path,
            timeout,
            format!("must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}"),
        )];
    }
    Vec::new()
}

/// Upstream `ValidateServiceClusterIPsRelatedFields`.
fn validate_cluster_ips_related_fields(spec: &ServiceSpec) -> Errs {
    if type_of(spec) == "ExternalName" {
        return Errs::new();
    }
    let mut errs = Errs::new();
    let spec_path = FieldPath::new("spec");
    let ips_path = spec_path.child("clusterIPs");
    let families_path = spec_path.child("ipFamilies");
    let ips = cluster_ips(spec);
    let ips_raw = go_string_slice(ips);
    if !cluster_ip(spec).is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(&ips_path, ""));
        } else if ips[0] != cluster_ip(spec) {
            errs.push(FieldError::invalid_raw(
                &ips_path,
                &ips_raw,
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid_raw(
            &ips_path,
            &ips_raw,
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = HashSet::new();
    for (i, family) in spec.ip_families.iter().flatten().enumerate() {
        if !IP_FAMILIES.contains(&family.as_str()) {
            errs.push(FieldError::not_supported(
                &families_path.index(i),
                family.as_str(),
                IP_FAMILIES,
            ));
        }
        if !seen.insert(family) {
            errs.push(FieldError::duplicate(
                &families_path.index(i),
                family.as_str(),
            ));
        }
    }
    if let Some(policy) = spec.ip_family_policy.as_deref()
        && !IP_FAMILY_POLICIES.contains(&policy)
    {
        errs.push(FieldError::not_supported(
            &spec_path.child("ipFamilyPolicy"),
            policy,
            IP_FAMILY_POLICIES,
        ));
    }
    let mut invalid_ips = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == CLUSTER_IP_NONE {
            if ips.len() > 1 {
                invalid_ips = true;
                errs.push(FieldError::invalid_raw(
                    &ips_path,
                    &ips_raw,
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let e = validate_ip(ip, &ips_path.index(i));
        invalid_ips |= !e.is_empty();
        errs.extend(e);
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid_raw(
            &ips_path,
            &ips_raw,
            "may only hold up to 2 values",
        ));
    }
    if invalid_ips {
        return errs;
    }
    if ips.len() > 1 {
        let v6 = |ip: &String| matches!(parse_ip_sloppy(ip), Some(std::net::IpAddr::V6(_)));
        let dual = ips.len() == 2 && v6(&ips[0]) != v6(&ips[1]);
        if !dual {
            errs.push(FieldError::invalid_raw(
                &ips_path,
                &ips_raw,
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if !is_headless(spec) {
        for (i, (ip, family)) in ips
            .iter()
            .zip(spec.ip_families.iter().flatten())
            .enumerate()
        {
            let is_v6 = matches!(parse_ip_sloppy(ip), Some(std::net::IpAddr::V6(_)));
            if family == IPV4 && is_v6 {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.as_str(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if family == "IPv6" && !is_v6 {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.as_str(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

/// Upstream `validateLoadBalancerClassField`.
fn validate_load_balancer_class(old: Option<&ServiceSpec>, spec: &ServiceSpec) -> Errs {
    let mut errs = Errs::new();
    let path = FieldPath::new("spec").child("loadBalancerClass");
    if let Some(old) = old
        && type_of(old) == "LoadBalancer"
        && type_of(spec) == "LoadBalancer"
        && old.load_balancer_class != spec.load_balancer_class
    {
        let value = spec
            .load_balancer_class
            .clone()
            .map_or(serde_json::Value::Null, Into::into);
        errs.push(FieldError::invalid(&path, value, "may not change once set"));
    }
    match (&spec.load_balancer_class, type_of(spec) == "LoadBalancer") {
        (Some(class), true) => errs.extend(validate_qualified_name(class, &path)),
        (Some(_), false) => errs.push(FieldError::forbidden(
            &path,
            "may only be used when `type` is 'LoadBalancer'",
        )),
        (None, _) => {}
    }
    errs
}

/// Upstream `validateServiceExternalTrafficPolicy`.
fn validate_external_traffic_policy(spec: &ServiceSpec) -> Errs {
    let mut errs = Errs::new();
    let spec_path = FieldPath::new("spec");
    let etp_path = spec_path.child("externalTrafficPolicy");
    let etp = spec.external_traffic_policy.as_deref().unwrap_or_default();
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                &etp_path,
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required(&etp_path, ""));
    } else if !TRAFFIC_POLICIES.contains(&etp) {
        errs.push(FieldError::not_supported(&etp_path, etp, TRAFFIC_POLICIES));
    }
    let hc_path = spec_path.child("healthCheckNodePort");
    let hc = spec.health_check_node_port.unwrap_or(0);
    if !needs_health_check(spec) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                &hc_path,
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc != 0 {
        for msg in is_valid_port_num(i64::from(hc)) {
            errs.push(FieldError::invalid(&hc_path, hc, msg));
        }
    }
    errs
}

/// Upstream `IsValidCIDR`.
fn validate_cidr(value: &str, path: &FieldPath) -> Errs {
    let valid = value.split_once('/').is_some_and(|(ip, prefix)| {
        let max = match parse_ip_sloppy(ip) {
            Some(std::net::IpAddr::V4(_)) => 32,
            Some(std::net::IpAddr::V6(_)) => 128,
            None => return false,
        };
        !prefix.is_empty()
            && prefix.bytes().all(|c| c.is_ascii_digit())
            && prefix.parse::<u32>().is_ok_and(|p| p <= max)
    });
    if valid {
        Errs::new()
    } else {
        vec![FieldError::invalid(
            path,
            value,
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        )]
    }
}

/// Upstream `ValidateServiceUpdate` without `ValidateService` (call [`validate`] too, after
/// these): cluster IPs and IP families that changed, the load balancer class, the health
/// check node port. Both Services are defaulted and `new` is prepared ([`prepare_update`]).
pub fn validate_update(new: &Service, old: &Service) -> Vec<FieldError> {
    let default_spec = ServiceSpec::default();
    let spec = new.spec.as_ref().unwrap_or(&default_spec);
    let old_spec = old.spec.as_ref().unwrap_or(&default_spec);
    let mut errs = validate_upgrade_downgrade_cluster_ips(old_spec, spec);
    errs.extend(validate_upgrade_downgrade_ip_families(old_spec, spec));
    errs.extend(validate_load_balancer_class(Some(old_spec), spec));
    if needs_health_check(old_spec)
        && needs_health_check(spec)
        && old_spec.health_check_node_port != spec.health_check_node_port
    {
        errs.push(FieldError::forbidden(
            &FieldPath::new("spec").child("healthCheckNodePort"),
            "field is immutable",
        ));
    }
    errs
}

/// Upstream `validateUpgradeDowngradeClusterIPs`.
fn validate_upgrade_downgrade_cluster_ips(old: &ServiceSpec, new: &ServiceSpec) -> Errs {
    let mut errs = Errs::new();
    if is_headless(old) && is_headless(new) {
        return errs;
    }
    let path = FieldPath::new("spec").child("clusterIPs");
    let (old_ips, new_ips) = (cluster_ips(old), cluster_ips(new));
    let raw = go_string_slice(new_ips);
    let changed = |errs: &mut Errs, i: usize| {
        errs.push(FieldError::invalid_raw(
            &path.index(i),
            &raw,
            "may not change once set",
        ));
    };
    if old_ips.len() == new_ips.len() {
        for (i, ip) in old_ips.iter().enumerate() {
            if *ip != new_ips[i] {
                changed(&mut errs, i);
            }
        }
    } else if old_ips.len() > new_ips.len() {
        if new_ips.is_empty() {
            errs.push(FieldError::invalid_raw(
                &path.index(0),
                &raw,
                "primary clusterIP can not be unset",
            ));
        }
        if !old_ips.is_empty() && !new_ips.is_empty() && new_ips[0] != old_ips[0] {
            changed(&mut errs, 0);
        }
        if new_ips.len() == 1 && new.ip_family_policy.as_deref() != Some("SingleStack") {
            errs.push(ip_family_policy_error(
                new,
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
        changed(&mut errs, 0);
    }
    errs
}

/// Upstream `validateUpgradeDowngradeIPFamilies`.
fn validate_upgrade_downgrade_ip_families(old: &ServiceSpec, new: &ServiceSpec) -> Errs {
    let mut errs = Errs::new();
    if is_headless(old) || is_headless(new) {
        return errs;
    }
    let path = FieldPath::new("spec").child("ipFamilies").index(0);
    let old_families = old.ip_families.as_deref().unwrap_or_default();
    let families = new.ip_families.as_deref().unwrap_or_default();
    let families_raw = format!(
        "[]core.IPFamily{{{}}}",
        families
            .iter()
            .map(|f| format!("{f:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let ips_raw = go_string_slice(cluster_ips(new));
    if old_families.len() == families.len() {
        for (i, family) in old_families.iter().enumerate() {
            if *family != families[i] {
                errs.push(FieldError::invalid_raw(
                    &path,
                    &families_raw,
                    "may not change once set",
                ));
            }
        }
    } else if old_families.len() > families.len() {
        if cluster_ips(new).is_empty() {
            errs.push(FieldError::invalid_raw(
                &path,
                &families_raw,
                "primary ipFamily can not be unset",
            ));
        }
        if !families.is_empty() && families[0] != old_families[0] {
            errs.push(FieldError::invalid_raw(
                &path,
                &ips_raw,
                "may not change once set",
            ));
        }
        if families.len() == 1 && new.ip_family_policy.as_deref() != Some("SingleStack") {
            errs.push(ip_family_policy_error(
                new,
                "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if !old_families.is_empty() && !families.is_empty() && families[0] != old_families[0] {
        errs.push(FieldError::invalid_raw(
            &path,
            &ips_raw,
            "may not change once set",
        ));
    }
    errs
}

fn ip_family_policy_error(spec: &ServiceSpec, detail: &str) -> FieldError {
    let value = spec
        .ip_family_policy
        .clone()
        .map_or(serde_json::Value::Null, Into::into);
    FieldError::invalid(
        &FieldPath::new("spec").child("ipFamilyPolicy"),
        value,
        detail,
    )
}
