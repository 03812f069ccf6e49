//! The fields podvisor implements, per served kind, in one table; everything else a manifest
//! sets is valid Kubernetes that podvisor ignores, and the user must be told.
//!
//! [`unimplemented_fields`] walks a document as the user wrote it (before defaults, without
//! unknown fields and `null`s) and returns the path of every set field the table does not
//! cover, collapsing a whole unimplemented subtree to its root (`spec.volumes`, not
//! `spec.volumes[0].name`). Empty values (`{}`, `[]`) are not "set".
//!
//! Pure: no IO. It decides nothing about validity; `model::manifest` turns its answer into one
//! warning per document.
//!
//! Extending the table: add [`Rule`]s to a section, or a [`Section`] that reuses a rule set
//! under another prefix (init containers reuse [`CONTAINER`], each probe [`PROBE`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde_json::Value;

use crate::model::field::FieldPath;

#[cfg(test)]
mod tests;

/// Which values of an implemented field are implemented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Any value, and everything below it.
    Any,
    /// Only this string (typically the default, which podvisor's behaviour matches).
    Str(&'static str),
    /// Only this boolean.
    Bool(bool),
}

impl Accept {
    fn matches(self, value: &Value) -> bool {
        match self {
            Accept::Any => true,
            Accept::Str(s) => value.as_str() == Some(s),
            Accept::Bool(b) => value.as_bool() == Some(b),
        }
    }
}

/// One implemented field, by path relative to its section: `name`, `env[*].value` (`[*]` is
/// every list element), `resources.limits[memory]` (`[key]` is one key of a map).
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// The path, relative to the section's prefix.
    pub path: &'static str,
    /// The values that are implemented.
    pub accept: Accept,
}

/// A set of rules placed under a path prefix (`spec.containers[*]`).
#[derive(Clone, Copy, Debug)]
pub struct Section {
    /// Where the rules apply; empty for the object root.
    pub prefix: &'static str,
    /// The rules, relative to `prefix`.
    pub rules: &'static [Rule],
}

/// The implemented fields of one kind.
#[derive(Clone, Copy, Debug)]
pub struct KindTable {
    /// The kind, as in `SUPPORTED_KINDS`.
    pub kind: &'static str,
    /// Its sections; together they list every implemented field.
    pub sections: &'static [Section],
}

const fn any(path: &'static str) -> Rule {
    Rule {
        path,
        accept: Accept::Any,
    }
}

const fn only_str(path: &'static str, value: &'static str) -> Rule {
    Rule {
        path,
        accept: Accept::Str(value),
    }
}

/// The implemented fields of every served kind.
pub static IMPLEMENTED: &[KindTable] = &[
    KindTable {
        kind: "Pod",
        sections: POD,
    },
    KindTable {
        kind: "ConfigMap",
        sections: &[
            Section {
                prefix: "",
                rules: OBJECT,
            },
            Section {
                prefix: "",
                rules: CONFIG_MAP,
            },
        ],
    },
    KindTable {
        kind: "Secret",
        sections: &[
            Section {
                prefix: "",
                rules: OBJECT,
            },
            Section {
                prefix: "",
                rules: SECRET,
            },
        ],
    },
    KindTable {
        kind: "Namespace",
        sections: &[
            Section {
                prefix: "",
                rules: OBJECT,
            },
            Section {
                prefix: "",
                rules: NAMESPACE,
            },
        ],
    },
    KindTable {
        kind: "Service",
        sections: &[
            Section {
                prefix: "",
                rules: OBJECT,
            },
            Section {
                prefix: "spec",
                rules: SERVICE_SPEC,
            },
            Section {
                prefix: "spec.ports[*]",
                rules: SERVICE_PORT,
            },
        ],
    },
    KindTable {
        kind: "Endpoints",
        sections: &[
            Section {
                prefix: "",
                rules: OBJECT,
            },
            Section {
                prefix: "subsets[*].addresses[*]",
                rules: ENDPOINT_ADDRESS,
            },
            Section {
                prefix: "subsets[*].notReadyAddresses[*]",
                rules: ENDPOINT_ADDRESS,
            },
            Section {
                prefix: "subsets[*].ports[*]",
                rules: ENDPOINT_PORT,
            },
        ],
    },
    KindTable {
        kind: "Deployment",
        sections: DEPLOYMENT,
    },
    KindTable {
        kind: "ReplicaSet",
        sections: REPLICA_SET,
    },
    KindTable {
        kind: "ReplicationController",
        sections: REPLICA_SET,
    },
    KindTable {
        kind: "EndpointSlice",
        sections: &[
            Section {
                prefix: "",
                rules: OBJECT,
            },
            Section {
                prefix: "",
                rules: ENDPOINT_SLICE,
            },
            Section {
                prefix: "endpoints[*]",
                rules: ENDPOINT,
            },
            Section {
                prefix: "ports[*]",
                rules: ENDPOINT_PORT,
            },
        ],
    },
];

/// The sections `$extra` followed by those of a pod spec at `$spec` (`"spec"` in a Pod,
/// `"spec.template.spec"` in a workload's template).
macro_rules! with_pod_spec {
    ($spec:literal; $($extra:expr),* $(,)?) => {
        &[
            $($extra,)*
            Section {
                prefix: concat!($spec, ""),
                rules: POD_SPEC,
            },
            Section {
                prefix: concat!($spec, ".containers[*]"),
                rules: CONTAINER,
            },
            Section {
                prefix: concat!($spec, ".containers[*].lifecycle.postStart"),
                rules: LIFECYCLE_HANDLER,
            },
            Section {
                prefix: concat!($spec, ".containers[*].lifecycle.preStop"),
                rules: LIFECYCLE_HANDLER,
            },
            Section {
                prefix: concat!($spec, ".containers[*].startupProbe"),
                rules: PROBE,
            },
            Section {
                prefix: concat!($spec, ".containers[*].readinessProbe"),
                rules: PROBE,
            },
            Section {
                prefix: concat!($spec, ".containers[*].livenessProbe"),
                rules: PROBE,
            },
            Section {
                prefix: concat!($spec, ".initContainers[*]"),
                rules: CONTAINER,
            },
            Section {
                prefix: concat!($spec, ".initContainers[*].lifecycle.postStart"),
                rules: LIFECYCLE_HANDLER,
            },
            Section {
                prefix: concat!($spec, ".initContainers[*].lifecycle.preStop"),
                rules: LIFECYCLE_HANDLER,
            },
            Section {
                prefix: concat!($spec, ".initContainers[*].startupProbe"),
                rules: PROBE,
            },
            Section {
                prefix: concat!($spec, ".initContainers[*].readinessProbe"),
                rules: PROBE,
            },
            Section {
                prefix: concat!($spec, ".initContainers[*].livenessProbe"),
                rules: PROBE,
            },
        ]
    };
}

const POD: &[Section] = with_pod_spec!("spec"; Section {
    prefix: "",
    rules: OBJECT,
});

/// The sections of a Deployment, ReplicaSet or ReplicationController (`spec` is the kind's).
macro_rules! workload_sections {
    ($spec:expr) => {
        with_pod_spec!(
            "spec.template.spec";
            Section {
                prefix: "",
                rules: OBJECT,
            },
            Section {
                prefix: "spec",
                rules: $spec,
            },
            Section {
                prefix: "spec.template",
                rules: TEMPLATE_METADATA,
            },
        )
    };
}

const DEPLOYMENT: &[Section] = workload_sections!(DEPLOYMENT_SPEC);
const REPLICA_SET: &[Section] = workload_sections!(REPLICA_SET_SPEC);

/// A Deployment's own spec fields: all of them, implemented by the deployment controller.
pub const DEPLOYMENT_SPEC: &[Rule] = &[
    any("replicas"),
    any("selector"),
    any("strategy"),
    any("minReadySeconds"),
    any("revisionHistoryLimit"),
    any("progressDeadlineSeconds"),
    any("paused"),
];

/// A ReplicaSet's or ReplicationController's own spec fields.
pub const REPLICA_SET_SPEC: &[Rule] = &[any("replicas"), any("selector"), any("minReadySeconds")];

/// The metadata of a pod template that pods get.
pub const TEMPLATE_METADATA: &[Rule] = &[any("metadata.labels"), any("metadata.annotations")];

/// Type and object metadata, shared by every kind.
pub const OBJECT: &[Rule] = &[
    any("apiVersion"),
    any("kind"),
    any("metadata.name"),
    any("metadata.generateName"),
    any("metadata.namespace"),
    any("metadata.labels"),
    any("metadata.annotations"),
    // Set by the server: accepted and overwritten, as the API server does.
    any("metadata.uid"),
    any("metadata.resourceVersion"),
    any("metadata.creationTimestamp"),
    any("metadata.generation"),
    any("metadata.managedFields"),
    any("metadata.selfLink"),
    // Ignored on create by the API server too; podvisor reports its own status.
    any("status"),
];

/// The pod-level fields of a Pod spec.
pub const POD_SPEC: &[Rule] = &[
    any("restartPolicy"),
    any("terminationGracePeriodSeconds"),
    any("nodeName"),
    any("serviceAccountName"),
    any("serviceAccount"),
    any("os.name"),
    any("securityContext.runAsUser"),
    any("securityContext.runAsGroup"),
    any("priority"),
    any("enableServiceLinks"),
    // Harmless at their defaults only: podvisor behaves as these values say.
    only_str("dnsPolicy", "ClusterFirst"),
    only_str("schedulerName", "default-scheduler"),
];

/// The fields of one container.
pub const CONTAINER: &[Rule] = &[
    any("name"),
    any("image"),
    any("imagePullPolicy"),
    any("command"),
    any("args"),
    any("workingDir"),
    any("env[*].name"),
    any("env[*].value"),
    any("env[*].valueFrom.fieldRef.apiVersion"),
    any("env[*].valueFrom.fieldRef.fieldPath"),
    any("env[*].valueFrom.resourceFieldRef.containerName"),
    any("env[*].valueFrom.resourceFieldRef.resource"),
    any("env[*].valueFrom.resourceFieldRef.divisor"),
    any("env[*].valueFrom.configMapKeyRef.name"),
    any("env[*].valueFrom.configMapKeyRef.key"),
    any("env[*].valueFrom.configMapKeyRef.optional"),
    any("env[*].valueFrom.secretKeyRef.name"),
    any("env[*].valueFrom.secretKeyRef.key"),
    any("env[*].valueFrom.secretKeyRef.optional"),
    any("envFrom[*].prefix"),
    any("envFrom[*].configMapRef.name"),
    any("envFrom[*].configMapRef.optional"),
    any("envFrom[*].secretRef.name"),
    any("envFrom[*].secretRef.optional"),
    any("ports[*].name"),
    any("ports[*].containerPort"),
    any("ports[*].protocol"),
    any("resources.limits[memory]"),
    any("lifecycle.stopSignal"),
    any("securityContext.runAsUser"),
    any("securityContext.runAsGroup"),
    // Init containers only (validation rejects it elsewhere): native sidecars.
    only_str("restartPolicy", "Always"),
    only_str("terminationMessagePath", "/dev/termination-log"),
    only_str("terminationMessagePolicy", "File"),
];

/// The fields of a postStart or preStop handler.
pub const LIFECYCLE_HANDLER: &[Rule] = &[
    any("exec.command"),
    any("httpGet.host"),
    any("httpGet.port"),
    any("httpGet.path"),
    any("httpGet.scheme"),
    any("httpGet.httpHeaders[*].name"),
    any("httpGet.httpHeaders[*].value"),
    any("sleep.seconds"),
    any("tcpSocket.host"),
    any("tcpSocket.port"),
];

/// The fields of a startup, readiness or liveness probe.
pub const PROBE: &[Rule] = &[
    any("exec.command"),
    any("httpGet.host"),
    any("httpGet.port"),
    any("httpGet.path"),
    any("httpGet.scheme"),
    any("httpGet.httpHeaders[*].name"),
    any("httpGet.httpHeaders[*].value"),
    any("tcpSocket.host"),
    any("tcpSocket.port"),
    any("grpc.port"),
    any("grpc.service"),
    any("initialDelaySeconds"),
    any("periodSeconds"),
    any("timeoutSeconds"),
    any("successThreshold"),
    any("failureThreshold"),
    any("terminationGracePeriodSeconds"),
];

/// The fields of a ConfigMap: all of them. `immutable` is enforced by the API on update.
pub const CONFIG_MAP: &[Rule] = &[any("data"), any("binaryData"), any("immutable")];

/// The fields of a Secret: all of them (`stringData` is merged into `data` on decoding).
/// `immutable` is enforced by the API on update.
pub const SECRET: &[Rule] = &[
    any("type"),
    any("data"),
    any("stringData"),
    any("immutable"),
];

/// The fields of a Namespace: all of them (`status` is in [`OBJECT`]).
pub const NAMESPACE: &[Rule] = &[any("spec.finalizers")];

/// The fields of a Service spec. `externalTrafficPolicy: Local` would keep the client's
/// address, which a proxying gateway cannot; DNS-only, cloud-only and multi-node fields are
/// not implemented.
pub const SERVICE_SPEC: &[Rule] = &[
    // ClusterIP, NodePort, LoadBalancer (ExternalName is refused by validation).
    any("type"),
    any("selector"),
    any("clusterIP"),
    any("clusterIPs"),
    any("ipFamilies"),
    any("ipFamilyPolicy"),
    any("sessionAffinity"),
    any("sessionAffinityConfig.clientIP.timeoutSeconds"),
    any("publishNotReadyAddresses"),
    // One node: every endpoint is node-local, so both values behave alike.
    any("internalTrafficPolicy"),
    only_str("externalTrafficPolicy", "Cluster"),
    any("allocateLoadBalancerNodePorts"),
    any("healthCheckNodePort"),
];

/// The fields of a Service port. The gateway proxies TCP only.
pub const SERVICE_PORT: &[Rule] = &[
    any("name"),
    any("port"),
    any("targetPort"),
    any("nodePort"),
    any("appProtocol"),
    only_str("protocol", "TCP"),
];

/// The fields of an address of an Endpoints subset (no cluster DNS: no hostname).
pub const ENDPOINT_ADDRESS: &[Rule] = &[any("ip"), any("nodeName"), any("targetRef")];

/// The fields of a port of an Endpoints subset or an EndpointSlice.
pub const ENDPOINT_PORT: &[Rule] = &[
    any("name"),
    any("port"),
    any("appProtocol"),
    only_str("protocol", "TCP"),
];

/// The fields of an EndpointSlice besides its endpoints and ports: IPv4 addresses only (the
/// gateway connects to addresses; FQDN and IPv6 slices route nothing).
pub const ENDPOINT_SLICE: &[Rule] = &[only_str("addressType", "IPv4")];

/// The fields of an endpoint of an EndpointSlice (one node: no zones or hints; no cluster
/// DNS: no hostname).
pub const ENDPOINT: &[Rule] = &[
    any("addresses"),
    any("conditions.ready"),
    any("conditions.serving"),
    any("conditions.terminating"),
    any("nodeName"),
    any("targetRef"),
];

/// The paths of the fields set in `value` (an object of `kind`) that podvisor does not
/// implement, in document order with keys sorted. Empty for a kind without a table.
pub fn unimplemented_fields(kind: &str, value: &Value) -> Vec<FieldPath> {
    let mut out = Vec::new();
    if let Some(root) = tries().get(kind) {
        walk(value, root, &FieldPath::default(), &mut out);
    }
    out
}

/// The rules of one kind as a tree of path steps.
#[derive(Debug, Default)]
struct Node {
    /// Set on a rule's last step: the field and its subtree are implemented for these values.
    accept: Option<Accept>,
    /// Struct fields below this one.
    fields: BTreeMap<&'static str, Node>,
    /// Map keys below this one (`limits[memory]`).
    keys: BTreeMap<&'static str, Node>,
    /// Every element of this list (`env[*]`).
    items: Option<Box<Node>>,
}

fn tries() -> &'static HashMap<&'static str, Node> {
    static TRIES: OnceLock<HashMap<&'static str, Node>> = OnceLock::new();
    TRIES.get_or_init(|| {
        IMPLEMENTED
            .iter()
            .map(|table| {
                let mut root = Node::default();
                for section in table.sections {
                    for rule in section.rules {
                        let node = insert(&mut root, section.prefix);
                        let node = insert(node, rule.path);
                        node.accept = Some(rule.accept);
                    }
                }
                (table.kind, root)
            })
            .collect()
    })
}

/// Walks (creating) the nodes of `path` below `node`.
fn insert<'a>(mut node: &'a mut Node, path: &'static str) -> &'a mut Node {
    if path.is_empty() {
        return node;
    }
    for part in path.split('.') {
        let (name, brackets) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            node = node.fields.entry(name).or_default();
        }
        for bracket in brackets.split_inclusive(']') {
            let inner = bracket
                .strip_prefix('[')
                .and_then(|b| b.strip_suffix(']'))
                .unwrap_or_else(|| panic!("bad implemented-field path {path:?}"));
            node = if inner == "*" {
                node.items.get_or_insert_with(Box::default)
            } else {
                node.keys.entry(inner).or_default()
            };
        }
    }
    node
}

fn walk(value: &Value, node: &Node, path: &FieldPath, out: &mut Vec<FieldPath>) {
    if is_empty(value) {
        return;
    }
    if let Some(accept) = node.accept {
        if !accept.matches(value) {
            out.push(path.clone());
        }
        return;
    }
    match value {
        Value::Object(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            for key in keys {
                let child = &fields[key];
                if is_empty(child) {
                    continue;
                }
                if let Some(next) = node.fields.get(key.as_str()) {
                    walk(child, next, &path.child(key), out);
                } else if let Some(next) = node.keys.get(key.as_str()) {
                    walk(child, next, &path.key(key), out);
                } else if node.keys.is_empty() {
                    out.push(path.child(key));
                } else {
                    out.push(path.key(key));
                }
            }
        }
        Value::Array(items) => match &node.items {
            Some(next) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, next, &path.index(i), out);
                }
            }
            None => out.push(path.clone()),
        },
        _ => out.push(path.clone()),
    }
}

/// `null`, `{}`, `[]`, or containers holding only those: nothing is set.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(fields) => fields.values().all(is_empty),
        Value::Array(items) => items.iter().all(is_empty),
        _ => false,
    }
}
