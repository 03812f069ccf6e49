//! A container's environment, built like the kubelet's `makeEnvironmentVariables`
//! (`pkg/kubelet/kubelet_pods.go`, 1.33): `envFrom` first, then `env` in order with `$(VAR)`
//! expansion against what is defined so far and the service variables, then the service
//! variables that were not overridden.
//!
//! Where the kubelet asks the API server (ConfigMaps, Secrets) this module asks an
//! [`EnvSourceLookup`]; what the kubelet reads from the node (pod IPs, host IPs, allocatable
//! resources) comes in an [`EnvContext`]. Errors carry the kubelet's messages, which become the
//! `CreateContainerConfigError` message of the container.
//!
//! Upstream returns the variables in Go map order (random); here the order is deterministic:
//! every name at the position where it was first defined, then the remaining service variables.
//!
//! Pure: no IO, no tokio.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{
    Container, ObjectFieldSelector, Pod, ResourceFieldSelector, Service,
};

use super::expansion;
use super::quantity::Quantity;
use super::validation::{go_quote, is_qualified_name};

/// Where ConfigMaps and Secrets come from. `None` means "not found".
pub trait EnvSourceLookup {
    /// The `data` of a ConfigMap.
    fn config_map(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>>;
    /// The decoded `data` (and `stringData`) of a Secret.
    fn secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>>;
}

/// A lookup that finds nothing, for nodes without ConfigMaps and Secrets.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEnvSources;

impl EnvSourceLookup for NoEnvSources {
    fn config_map(&self, _namespace: &str, _name: &str) -> Option<BTreeMap<String, String>> {
        None
    }

    fn secret(&self, _namespace: &str, _name: &str) -> Option<BTreeMap<String, String>> {
        None
    }
}

/// What the kubelet knows about the node and the pod's sandbox when it builds an environment.
#[derive(Clone, Debug, Default)]
pub struct EnvContext {
    /// The pod's IPs, preferred family first; `status.podIP` is the first.
    pub pod_ips: Vec<String>,
    /// The node's IPs, preferred family first; `status.hostIP` is the first.
    pub host_ips: Vec<String>,
    /// The node's allocatable resources, used for `resourceFieldRef` limits the container
    /// does not set.
    pub node_allocatable: NodeAllocatable,
    /// The service variables (`{SVC}_SERVICE_HOST` …) the pod should see, already filtered by
    /// `enableServiceLinks` ([`service_env`]).
    pub service_env: Vec<(String, String)>,
}

/// The service variables a pod of `namespace` gets (the kubelet's `getServiceEnvVarMap`
/// with `envvars.FromServices`): with `enableServiceLinks`, every Service of the namespace
/// with a cluster IP gives `{NAME}_SERVICE_HOST`, `{NAME}_SERVICE_PORT`, one
/// `{NAME}_SERVICE_PORT_{PORT_NAME}` per named port, and Docker link variables
/// (`{NAME}_PORT`, `{NAME}_PORT_{port}_{PROTO}` and its `_PROTO`, `_PORT`, `_ADDR`). Headless
/// Services (`clusterIP: None`) give none. podvisor has no master `kubernetes` Service, so
/// there is nothing to add when `enableServiceLinks` is false.
pub fn service_env(
    services: &[Service],
    namespace: &str,
    enable_service_links: bool,
) -> Vec<(String, String)> {
    if !enable_service_links {
        return Vec::new();
    }
    let mut selected: Vec<&Service> = services
        .iter()
        .filter(|s| s.metadata.namespace.as_deref().unwrap_or("default") == namespace)
        .filter(|s| {
            let spec = s.spec.as_ref();
            let ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
            !ip.is_empty()
                && ip != "None"
                && spec.and_then(|s| s.type_.as_deref()) != Some("ExternalName")
        })
        .collect();
    selected.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let env_name = |s: &str| s.replace('-', "_").to_uppercase();
    let mut result = Vec::new();
    for service in selected {
        let Some(spec) = service.spec.as_ref() else {
            continue;
        };
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        let ports = spec.ports.as_deref().unwrap_or(&[]);
        let prefix = env_name(service.metadata.name.as_deref().unwrap_or_default());
        result.push((format!("{prefix}_SERVICE_HOST"), ip.clone()));
        let Some(first) = ports.first() else { continue };
        let port_var = format!("{prefix}_SERVICE_PORT");
        result.push((port_var.clone(), first.port.to_string()));
        for port in ports {
            if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
                result.push((
                    format!("{port_var}_{}", env_name(name)),
                    port.port.to_string(),
                ));
            }
        }
        for (i, port) in ports.iter().enumerate() {
            let protocol = port
                .protocol
                .as_deref()
                .filter(|p| !p.is_empty())
                .unwrap_or("TCP");
            let lower = protocol.to_lowercase();
            let host_port = format!("{ip}:{}", port.port);
            if i == 0 {
                result.push((format!("{prefix}_PORT"), format!("{lower}://{host_port}")));
            }
            let port_prefix = format!("{prefix}_PORT_{}_{}", port.port, protocol.to_uppercase());
            result.push((port_prefix.clone(), format!("{lower}://{host_port}")));
            result.push((format!("{port_prefix}_PROTO"), lower.clone()));
            result.push((format!("{port_prefix}_PORT"), port.port.to_string()));
            result.push((format!("{port_prefix}_ADDR"), ip.clone()));
        }
    }
    result
}

/// A node's allocatable resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeAllocatable {
    /// Cpu, in millicores.
    pub cpu_millis: i64,
    /// Memory, in bytes.
    pub memory_bytes: i64,
    /// Ephemeral storage, in bytes.
    pub ephemeral_storage_bytes: i64,
}

/// Why an environment cannot be built; the messages are the kubelet's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// `spec.enableServiceLinks` was not defaulted.
    #[error("nil pod.spec.enableServiceLinks encountered, cannot construct envvars")]
    NoEnableServiceLinks,
    /// A ConfigMap that is not optional does not exist.
    #[error("configmap {} not found", go_quote(name))]
    ConfigMapNotFound {
        /// The ConfigMap's name.
        name: String,
    },
    /// A Secret that is not optional does not exist.
    #[error("secret {} not found", go_quote(name))]
    SecretNotFound {
        /// The Secret's name.
        name: String,
    },
    /// A key that is not optional is missing from a ConfigMap.
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyNotFound {
        /// The missing key.
        key: String,
        /// The pod's namespace.
        namespace: String,
        /// The ConfigMap's name.
        name: String,
    },
    /// A key that is not optional is missing from a Secret.
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyNotFound {
        /// The missing key.
        key: String,
        /// The pod's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
    /// A `fieldRef` that cannot be resolved (rejected by validation, so rare).
    #[error("{0}")]
    FieldRef(String),
    /// A `resourceFieldRef` that cannot be resolved.
    #[error("{0}")]
    ResourceFieldRef(String),
}

/// The environment of `container` in `pod`, in the kubelet's order of precedence.
///
/// The pod is expected to be defaulted ([`super::pod::set_defaults`]) and valid.
pub fn container_env(
    pod: &Pod,
    container: &Container,
    ctx: &EnvContext,
    lookup: &dyn EnvSourceLookup,
) -> Result<Vec<(String, String)>, EnvError> {
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.enable_service_links).is_none() {
        return Err(EnvError::NoEnableServiceLinks);
    }
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let service_env: HashMap<String, String> = ctx.service_env.iter().cloned().collect();

    let mut config_maps: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    let mut secrets: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    let mut env = OrderedEnv::default();

    // EnvFrom first; Env then overrides it.
    for env_from in container.env_from.iter().flatten() {
        let prefix = env_from.prefix.as_deref().unwrap_or_default();
        if let Some(cm) = &env_from.config_map_ref {
            let optional = cm.optional.unwrap_or(false);
            let data = match config_maps.get(&cm.name) {
                Some(data) => data.clone(),
                None => match lookup.config_map(namespace, &cm.name) {
                    Some(data) => {
                        config_maps.insert(cm.name.clone(), data.clone());
                        data
                    }
                    None if optional => continue,
                    None => {
                        return Err(EnvError::ConfigMapNotFound {
                            name: cm.name.clone(),
                        });
                    }
                },
            };
            for (k, v) in data {
                env.set(format!("{prefix}{k}"), v);
            }
        } else if let Some(s) = &env_from.secret_ref {
            let optional = s.optional.unwrap_or(false);
            let data = match secrets.get(&s.name) {
                Some(data) => data.clone(),
                None => match lookup.secret(namespace, &s.name) {
                    Some(data) => {
                        secrets.insert(s.name.clone(), data.clone());
                        data
                    }
                    None if optional => continue,
                    None => {
                        return Err(EnvError::SecretNotFound {
                            name: s.name.clone(),
                        });
                    }
                },
            };
            for (k, v) in data {
                env.set(format!("{prefix}{k}"), v);
            }
        }
    }

    for var in container.env.iter().flatten() {
        let literal = var.value.as_deref().unwrap_or_default();
        let runtime_value = if !literal.is_empty() {
            let defined = env.as_map();
            let contexts = [&defined, &service_env];
            expansion::expand(literal, expansion::mapping_for(&contexts))
        } else if let Some(source) = &var.value_from {
            if let Some(field_ref) = &source.field_ref {
                pod_field_selector_value(field_ref, pod, ctx)?
            } else if let Some(resource_ref) = &source.resource_field_ref {
                container_resource_value(resource_ref, pod, container, ctx)?
            } else if let Some(cm) = &source.config_map_key_ref {
                let optional = cm.optional.unwrap_or(false);
                let data = match config_maps.get(&cm.name) {
                    Some(data) => data.clone(),
                    None => match lookup.config_map(namespace, &cm.name) {
                        Some(data) => {
                            config_maps.insert(cm.name.clone(), data.clone());
                            data
                        }
                        None if optional => continue,
                        None => {
                            return Err(EnvError::ConfigMapNotFound {
                                name: cm.name.clone(),
                            });
                        }
                    },
                };
                match data.get(&cm.key) {
                    Some(v) => v.clone(),
                    None if optional => continue,
                    None => {
                        return Err(EnvError::ConfigMapKeyNotFound {
                            key: cm.key.clone(),
                            namespace: namespace.to_owned(),
                            name: cm.name.clone(),
                        });
                    }
                }
            } else if let Some(s) = &source.secret_key_ref {
                let optional = s.optional.unwrap_or(false);
                let data = match secrets.get(&s.name) {
                    Some(data) => data.clone(),
                    None => match lookup.secret(namespace, &s.name) {
                        Some(data) => {
                            secrets.insert(s.name.clone(), data.clone());
                            data
                        }
                        None if optional => continue,
                        None => {
                            return Err(EnvError::SecretNotFound {
                                name: s.name.clone(),
                            });
                        }
                    },
                };
                match data.get(&s.key) {
                    Some(v) => v.clone(),
                    None if optional => continue,
                    None => {
                        return Err(EnvError::SecretKeyNotFound {
                            key: s.key.clone(),
                            namespace: namespace.to_owned(),
                            name: s.name.clone(),
                        });
                    }
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.set(var.name.clone(), runtime_value);
    }

    let mut result = env.into_vec();
    let defined: std::collections::HashSet<String> =
        result.iter().map(|(k, _)| k.clone()).collect();
    let mut appended = std::collections::HashSet::new();
    // Remaining service variables; like upstream's map, a later duplicate wins.
    for (k, _) in &ctx.service_env {
        if !defined.contains(k) && appended.insert(k.clone()) {
            result.push((k.clone(), service_env[k].clone()));
        }
    }
    Ok(result)
}

/// Variables in the order they were first defined; a redefinition replaces the value in place.
#[derive(Default)]
struct OrderedEnv {
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl OrderedEnv {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.entries.len());
                self.entries.push((name, value));
            }
        }
    }

    fn as_map(&self) -> HashMap<String, String> {
        self.entries.iter().cloned().collect()
    }

    fn into_vec(self) -> Vec<(String, String)> {
        self.entries
    }
}

/// Upstream `podFieldSelectorRuntimeValue` and `fieldpath.ExtractFieldPathAsString`.
fn pod_field_selector_value(
    selector: &ObjectFieldSelector,
    pod: &Pod,
    ctx: &EnvContext,
) -> Result<String, EnvError> {
    let api_version = selector.api_version.as_deref().unwrap_or_default();
    let path = convert_downward_api_field_label(api_version, &selector.field_path)
        .map_err(EnvError::FieldRef)?;
    let spec = pod.spec.as_ref();
    let meta = &pod.metadata;
    let value = match path.as_str() {
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => ctx.host_ips.first().cloned().unwrap_or_default(),
        "status.hostIPs" => ctx.host_ips.join(","),
        "status.podIP" => ctx.pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => ctx.pod_ips.join(","),
        _ => {
            if let Some((base, subscript)) = split_maybe_subscripted_path(&path) {
                match base {
                    "metadata.annotations" => {
                        let errs = is_qualified_name(&subscript.to_lowercase());
                        if !errs.is_empty() {
                            return Err(EnvError::FieldRef(format!(
                                "invalid key subscript in {path}: {}",
                                errs.join(";")
                            )));
                        }
                        map_value(meta.annotations.as_ref(), subscript)
                    }
                    "metadata.labels" => {
                        let errs = is_qualified_name(subscript);
                        if !errs.is_empty() {
                            return Err(EnvError::FieldRef(format!(
                                "invalid key subscript in {path}: {}",
                                errs.join(";")
                            )));
                        }
                        map_value(meta.labels.as_ref(), subscript)
                    }
                    _ => {
                        return Err(EnvError::FieldRef(format!(
                            "fieldPath {} does not support subscript",
                            go_quote(&path)
                        )));
                    }
                }
            } else {
                match path.as_str() {
                    "metadata.annotations" => format_map(meta.annotations.as_ref()),
                    "metadata.labels" => format_map(meta.labels.as_ref()),
                    "metadata.name" => meta.name.clone().unwrap_or_default(),
                    "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
                    "metadata.uid" => meta.uid.clone().unwrap_or_default(),
                    _ => return Err(EnvError::FieldRef(format!("unsupported fieldPath: {path}"))),
                }
            }
        }
    };
    Ok(value)
}

fn map_value(map: Option<&BTreeMap<String, String>>, key: &str) -> String {
    map.and_then(|m| m.get(key)).cloned().unwrap_or_default()
}

/// Upstream `fieldpath.FormatMap`: `key="value"` lines, keys sorted.
fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Upstream `fieldpath.SplitMaybeSubscriptedPath`: `metadata.labels['key']` → (`metadata.labels`,
/// `key`).
pub(crate) fn split_maybe_subscripted_path(path: &str) -> Option<(&str, &str)> {
    let inner = path.strip_suffix("']")?;
    let (base, subscript) = inner.split_once("['")?;
    if base.is_empty() {
        return None;
    }
    Some((base, subscript))
}

/// Upstream `ConvertDownwardAPIFieldLabel` (`pkg/apis/core/pods/helpers.go`): the internal field
/// path of a `fieldRef`, or upstream's error text.
pub(crate) fn convert_downward_api_field_label(
    version: &str,
    label: &str,
) -> Result<String, String> {
    if version != "v1" {
        return Err(format!("unsupported pod version: {version}"));
    }
    if let Some((base, _)) = split_maybe_subscripted_path(label) {
        return match base {
            "metadata.annotations" | "metadata.labels" => Ok(label.to_owned()),
            _ => Err(format!("field label does not support subscript: {label}")),
        };
    }
    match label {
        "metadata.annotations"
        | "metadata.labels"
        | "metadata.name"
        | "metadata.namespace"
        | "metadata.uid"
        | "spec.nodeName"
        | "spec.restartPolicy"
        | "spec.serviceAccountName"
        | "spec.schedulerName"
        | "status.phase"
        | "status.hostIP"
        | "status.hostIPs"
        | "status.podIP"
        | "status.podIPs" => Ok(label.to_owned()),
        // Backwards compatibility with old v1 clients.
        "spec.host" => Ok("spec.nodeName".to_owned()),
        _ => Err(format!("field label not supported: {label}")),
    }
}

/// Upstream `containerResourceRuntimeValue` with `defaultPodLimitsForDownwardAPI`: limits the
/// container does not set fall back to the node's allocatable resources.
fn container_resource_value(
    selector: &ResourceFieldSelector,
    pod: &Pod,
    container: &Container,
    ctx: &EnvContext,
) -> Result<String, EnvError> {
    let target = match selector.container_name.as_deref() {
        None | Some("") => container,
        Some(name) => pod
            .spec
            .iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .find(|c| c.name == name)
            .ok_or_else(|| EnvError::ResourceFieldRef(format!("container {name} not found")))?,
    };
    extract_container_resource_value(selector, target, &ctx.node_allocatable)
}

/// Upstream `ExtractContainerResourceValue` after `MergeContainerResourceLimits`.
fn extract_container_resource_value(
    selector: &ResourceFieldSelector,
    container: &Container,
    allocatable: &NodeAllocatable,
) -> Result<String, EnvError> {
    let divisor = match selector.divisor.as_ref().map(|d| Quantity::parse(&d.0)) {
        None => Quantity::from_i64(1, super::quantity::Format::DecimalSI),
        Some(Ok(d)) if d.is_zero() => Quantity::from_i64(1, super::quantity::Format::DecimalSI),
        Some(Ok(d)) => d,
        Some(Err(e)) => return Err(EnvError::ResourceFieldRef(e.to_string())),
    };
    let resources = container.resources.as_ref();
    let lookup = |list: Option<
        &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
                  name: &str|
     -> Quantity {
        list.and_then(|l| l.get(name))
            .and_then(|q| Quantity::parse(&q.0).ok())
            .unwrap_or_else(|| Quantity::from_i64(0, super::quantity::Format::DecimalSI))
    };
    let limits = resources.and_then(|r| r.limits.as_ref());
    let requests = resources.and_then(|r| r.requests.as_ref());
    // MergeContainerResourceLimits: an unset or zero limit takes the node's allocatable.
    let limit = |name: &str| -> Quantity {
        let q = lookup(limits, name);
        if !q.is_zero() {
            return q;
        }
        match name {
            "cpu" => {
                Quantity::from_millis(allocatable.cpu_millis, super::quantity::Format::DecimalSI)
            }
            "memory" => {
                Quantity::from_i64(allocatable.memory_bytes, super::quantity::Format::BinarySI)
            }
            "ephemeral-storage" => Quantity::from_i64(
                allocatable.ephemeral_storage_bytes,
                super::quantity::Format::BinarySI,
            ),
            _ => q,
        }
    };
    let value = match selector.resource.as_str() {
        "limits.cpu" => convert_cpu(&limit("cpu"), &divisor),
        "limits.memory" => convert_bytes(&limit("memory"), &divisor),
        "limits.ephemeral-storage" => convert_bytes(&limit("ephemeral-storage"), &divisor),
        "requests.cpu" => convert_cpu(&lookup(requests, "cpu"), &divisor),
        "requests.memory" => convert_bytes(&lookup(requests, "memory"), &divisor),
        "requests.ephemeral-storage" => {
            convert_bytes(&lookup(requests, "ephemeral-storage"), &divisor)
        }
        other => {
            if let Some(name) = other
                .strip_prefix("requests.")
                .filter(|n| n.starts_with("hugepages-"))
            {
                convert_bytes(&lookup(requests, name), &divisor)
            } else if let Some(name) = other
                .strip_prefix("limits.")
                .filter(|n| n.starts_with("hugepages-"))
            {
                convert_bytes(&lookup(limits, name), &divisor)
            } else {
                return Err(EnvError::ResourceFieldRef(format!(
                    "unsupported container resource : {other}"
                )));
            }
        }
    };
    Ok(value.to_string())
}

/// Upstream `convertResourceCPUToString`: `ceil(millis / divisor millis)`, in float64 as upstream.
fn convert_cpu(cpu: &Quantity, divisor: &Quantity) -> i64 {
    (cpu.milli_value() as f64 / divisor.milli_value() as f64).ceil() as i64
}

/// Upstream `convertResourceMemoryToString` (also used for storage and hugepages).
fn convert_bytes(bytes: &Quantity, divisor: &Quantity) -> i64 {
    (bytes.value() as f64 / divisor.value() as f64).ceil() as i64
}

#[cfg(test)]
mod tests;
