//! Server-side printing: the `meta.k8s.io/v1` `Table` the API server answers to
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` (spec `kubectl-api.md` §4), so the real
//! `kubectl get` prints the usual columns.
//!
//! A port of kubernetes `pkg/printers/internalversion/printers.go` as of 1.32 (column
//! definitions and row functions for Pod, Namespace, ConfigMap, Secret, Event, Lease, Service,
//! Endpoints, EndpointSlice, Deployment, ReplicaSet and ReplicationController), of `pkg/printers/storage` and
//! `tablegenerator.go` (the server always prints the wide columns; `kubectl` hides priority-1
//! columns without `-o wide`), of the apiserver's `asTable` (`includeObject`), of
//! `DefaultTableConvertor` (any other kind) and of apimachinery's `duration.HumanDuration`.
//!
//! Objects come in as JSON in their v1 form, as the store keeps them; where upstream prints a
//! field of the internal object that the v1 → internal conversion or the API defaults fill, the
//! row functions read the v1 equivalent (`status.podIP` when `status.podIPs` is missing,
//! `spec.clusterIP` when `spec.clusterIPs` is, `spec.replicas` defaulting to 1, a Service's
//! `type` to `ClusterIP` and a port's `protocol` to `TCP`, a Secret's `stringData` counted with
//! its `data`).
//!
//! Column descriptions are upstream's `SwaggerDoc()` texts; where upstream quotes a group
//! version this crate's `k8s-openapi` does not carry (`extensions/v1beta1` for Deployment and
//! ReplicaSet, `discovery/v1beta1` for EndpointSlice), the `apps/v1` and `discovery/v1` texts
//! of 1.33 stand in. kubectl never reads descriptions.
//!
//! Pure: no IO, no clock reads (`now` comes in as an argument), no tokio.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::{Map, Value, json};

use crate::model::selector::{LabelSelector, format_label_selector, format_labels};

/// What each row's `object` holds (the `includeObject` query parameter of a Table request).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// `object` is `null` (upstream's empty `RawExtension` marshals as `null`).
    None,
    /// `object` is a `PartialObjectMetadata` with the object's `metadata` (upstream's default;
    /// kubectl reads it for `-A`, `--show-labels` and `-L`).
    #[default]
    Metadata,
    /// `object` is the whole object (kubectl asks for it with `--sort-by`).
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter; the empty string is the default. The error
    /// is upstream's message for a `400 BadRequest`.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "Object" => Ok(IncludeObject::Object),
            "None" => Ok(IncludeObject::None),
            other => Err(format!(
                "unrecognized includeObject value: {}",
                crate::model::validation::go_quote(other)
            )),
        }
    }
}

/// The `Table` of `objects` of one `kind` (`Pod`, `Deployment` …), as of `now`.
///
/// `list_resource_version` goes to `metadata.resourceVersion`: the list's resource version, or
/// the object's for a single-object GET (as upstream's `GenerateTable` does). Every column is
/// included, wide ones with `priority: 1`. For watch events after the first, upstream sends the
/// same Table with `columnDefinitions` set to `null`; callers do that themselves.
pub fn table<T: std::borrow::Borrow<Value>>(
    kind: &str,
    objects: &[T],
    list_resource_version: &str,
    include: IncludeObject,
    now: Timestamp,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let object = object.borrow();
            let printed = print_row(kind, object, now);
            let mut row = Map::new();
            row.insert("cells".to_owned(), Value::Array(printed.cells));
            if !printed.conditions.is_empty() {
                row.insert("conditions".to_owned(), Value::Array(printed.conditions));
            }
            row.insert("object".to_owned(), row_object(kind, object, include));
            Value::Object(row)
        })
        .collect();
    let mut metadata = Map::new();
    if !list_resource_version.is_empty() {
        metadata.insert(
            "resourceVersion".to_owned(),
            Value::String(list_resource_version.to_owned()),
        );
    }
    // Upstream's default convertor starts from a nil slice (`null` when there is no row);
    // the typed printers from an empty one.
    let rows = if rows.is_empty() && columns(kind).is_none() {
        Value::Null
    } else {
        Value::Array(rows)
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(kind),
        "rows": rows,
    })
}

/// The `columnDefinitions` of a kind's Table; an unknown kind gets upstream's default `Name`
/// and `Created At` columns.
pub fn column_definitions(kind: &str) -> Value {
    let columns = columns(kind).unwrap_or(DEFAULT_COLUMNS);
    Value::Array(
        columns
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": c.type_,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                })
            })
            .collect(),
    )
}

/// Upstream `duration.HumanDuration`: about two significant figures (`5s`, `119s`, `2m3s`,
/// `10m`, `179m`, `3h4m`, `8h`, `47h`, `2d1h`, `8d`, `729d`, `2y1d`, `8y`); `0s` for a
/// slightly negative duration (clock skew up to 2 s), `<invalid>` below that.
pub fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_owned();
    } else if seconds < 0 {
        return "0s".to_owned();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        format!("{hours}h{m}m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        format!("{}d{h}h", hours / 24)
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        format!("{}y{dy}d", hours / 24 / 365)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// One column definition (upstream `metav1.TableColumnDefinition`).
struct Column {
    name: &'static str,
    type_: &'static str,
    format: &'static str,
    description: &'static str,
    /// 0: always shown; 1: shown by `kubectl get -o wide` only.
    priority: i32,
}

const fn col(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_: "string",
        format: "",
        description,
        priority: 1,
    }
}

const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: NAME_DESC,
    priority: 0,
};
const AGE: Column = col("Age", "string", AGE_DESC);

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";

const POD_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide(
        "IP",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    ),
    wide(
        "Node",
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
    ),
    wide(
        "Nominated Node",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
    ),
    wide(
        "Readiness Gates",
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
    ),
];

const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

const CONFIG_MAP_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Data",
        "string",
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
    ),
    AGE,
];

const SECRET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
    ),
    col(
        "Data",
        "string",
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
    ),
    AGE,
];

const EVENT_COLUMNS: &[Column] = &[
    col(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    col(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    col(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    col("Object", "string", "The object that this event is about."),
    wide(
        "Subobject",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
    ),
    wide(
        "Source",
        "The component reporting this event. Should be a short machine understandable string.",
    ),
    col(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    wide(
        "First Seen",
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    ),
    wide("Count", "The number of times this event has occurred."),
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        description: NAME_DESC,
        priority: 1,
    },
];

const LEASE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
    ),
    AGE,
];

const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types",
    ),
    col(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    col(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
    ),
    col(
        "Port(s)",
        "string",
        "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
    ),
    AGE,
    wide(
        "Selector",
        "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/",
    ),
];

const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
    ),
    AGE,
];

const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, and kube-proxy only processes, slices of addressType \"IPv4\" and \"IPv6\". No semantics are defined for the \"FQDN\" type.",
    ),
    col(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. Each slice may include a maximum of 100 ports. Services always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller will likewise always have at least 1 port. EndpointSlices used for other purposes may have an empty ports list.",
    ),
    col(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.",
    ),
    AGE,
];

const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "string",
        "Total number of non-terminating pods targeted by this deployment that have the desired template spec.",
    ),
    col(
        "Available",
        "string",
        "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    wide("Containers", CONTAINERS_DESC),
    wide("Images", IMAGES_DESC),
    wide(
        "Selector",
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.",
    ),
];

const REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
    ),
    col(
        "Ready",
        "integer",
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
    ),
    AGE,
    wide("Containers", CONTAINERS_DESC),
    wide("Images", IMAGES_DESC),
    wide(
        "Selector",
        "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

/// Upstream `DefaultTableConvertor`'s columns, for kinds without a printer.
const DEFAULT_COLUMNS: &[Column] = &[NAME, col("Created At", "date", AGE_DESC)];

/// The columns of a kind with a printer; `None` for the default convertor.
fn columns(kind: &str) -> Option<&'static [Column]> {
    Some(match kind {
        "Pod" => POD_COLUMNS,
        "Namespace" => NAMESPACE_COLUMNS,
        "ConfigMap" => CONFIG_MAP_COLUMNS,
        "Secret" => SECRET_COLUMNS,
        "Event" => EVENT_COLUMNS,
        "Lease" => LEASE_COLUMNS,
        "Service" => SERVICE_COLUMNS,
        "Endpoints" => ENDPOINTS_COLUMNS,
        "EndpointSlice" => ENDPOINT_SLICE_COLUMNS,
        "Deployment" => DEPLOYMENT_COLUMNS,
        "ReplicaSet" => REPLICA_SET_COLUMNS,
        // Upstream's columns for ReplicationControllers are the same, with descriptions that
        // name the kind; kubectl never reads descriptions.
        "ReplicationController" => REPLICA_SET_COLUMNS,
        _ => return None,
    })
}

/// The `apiVersion` of the kinds with a printer, to complete an object given without one.
fn api_version(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Pod"
        | "Namespace"
        | "ConfigMap"
        | "Secret"
        | "Event"
        | "Service"
        | "Endpoints"
        | "ReplicationController" => "v1",
        "Lease" => "coordination.k8s.io/v1",
        "EndpointSlice" => "discovery.k8s.io/v1",
        "Deployment" | "ReplicaSet" => "apps/v1",
        _ => return None,
    })
}

/// The cells and row conditions of one object.
struct PrintedRow {
    cells: Vec<Value>,
    /// `rows[].conditions` (upstream sets them for finished pods only).
    conditions: Vec<Value>,
}

fn print_row(kind: &str, object: &Value, now: Timestamp) -> PrintedRow {
    let cells = match kind {
        "Pod" => return print_pod(object, now),
        "Namespace" => print_namespace(object, now),
        "ConfigMap" => print_config_map(object, now),
        "Secret" => print_secret(object, now),
        "Event" => print_event(object, now),
        "Lease" => print_lease(object, now),
        "Service" => print_service(object, now),
        "Endpoints" => print_endpoints(object, now),
        "EndpointSlice" => print_endpoint_slice(object, now),
        "Deployment" => print_deployment(object, now),
        "ReplicaSet" => print_replica_set(object, now),
        "ReplicationController" => print_replication_controller(object, now),
        _ => print_default(object),
    };
    PrintedRow {
        cells,
        conditions: Vec::new(),
    }
}

/// A row's `object`, as upstream's `asTable` fills it for `includeObject`.
fn row_object(kind: &str, object: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
        IncludeObject::Object => {
            let mut object = object.clone();
            // Upstream converts the object to the request's version, which sets both.
            if let Value::Object(map) = &mut object {
                map.entry("kind")
                    .or_insert_with(|| Value::String(kind.to_owned()));
                if let Some(version) = api_version(kind) {
                    map.entry("apiVersion")
                        .or_insert_with(|| Value::String(version.to_owned()));
                }
            }
            object
        }
    }
}

// Row functions, one per kind, in upstream's order of cells (wide cells last).

/// Upstream `printPod`, with its sidecar (restartable init container) handling.
fn print_pod(pod: &Value, now: Timestamp) -> PrintedRow {
    let phase = text(pod, "/status/phase");
    let mut reason = phase.to_owned();
    let status_reason = text(pod, "/status/reason");
    if !status_reason.is_empty() {
        reason = status_reason.to_owned();
    }
    let conditions = list(pod, "/status/conditions");
    // A pod carrying {type: PodScheduled, reason: SchedulingGated} shows SchedulingGated.
    for condition in conditions {
        if text(condition, "/type") == "PodScheduled"
            && text(condition, "/reason") == "SchedulingGated"
        {
            reason = "SchedulingGated".to_owned();
        }
    }
    let row_conditions = match phase {
        "Succeeded" => vec![json!({
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        })],
        "Failed" => vec![json!({
            "type": "Completed",
            "status": "True",
            "reason": "Failed",
            "message": "The pod failed.",
        })],
        _ => Vec::new(),
    };

    let init_specs = list(pod, "/spec/initContainers");
    let mut restartable: BTreeMap<&str, bool> = BTreeMap::new();
    let mut total_containers = list(pod, "/spec/containers").len();
    for init in init_specs {
        let sidecar = text(init, "/restartPolicy") == "Always";
        restartable.insert(text(init, "/name"), sidecar);
        if sidecar {
            total_containers += 1;
        }
    }
    let is_sidecar = |status: &Value| {
        restartable
            .get(text(status, "/name"))
            .copied()
            .unwrap_or(false)
    };

    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut ready_containers = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;
    let mut initializing = false;
    for (i, status) in list(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        let restart_count = integer(status, "/restartCount");
        restarts += restart_count;
        let last_finished = last_termination(status);
        later(&mut last_restart, last_finished);
        let sidecar = is_sidecar(status);
        if sidecar {
            sidecar_restarts += restart_count;
            later(&mut last_sidecar_restart, last_finished);
        }
        let terminated = state(status, "terminated");
        let waiting = state(status, "waiting");
        if terminated.is_some_and(|t| integer(t, "/exitCode") == 0) {
            continue;
        }
        if sidecar && status.get("started").and_then(Value::as_bool) == Some(true) {
            if flag(status, "/ready") {
                ready_containers += 1;
            }
            continue;
        }
        if let Some(terminated) = terminated {
            // Initialization failed.
            let terminated_reason = text(terminated, "/reason");
            reason = if !terminated_reason.is_empty() {
                format!("Init:{terminated_reason}")
            } else if integer(terminated, "/signal") != 0 {
                format!("Init:Signal:{}", integer(terminated, "/signal"))
            } else {
                format!("Init:ExitCode:{}", integer(terminated, "/exitCode"))
            };
        } else if let Some(waiting_reason) = waiting
            .map(|w| text(w, "/reason"))
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_is_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in list(pod, "/status/containerStatuses").iter().rev() {
            restarts += integer(status, "/restartCount");
            later(&mut last_restart, last_termination(status));
            let waiting_reason = state(status, "waiting").map(|w| text(w, "/reason"));
            let terminated = state(status, "terminated");
            if let Some(waiting_reason) = waiting_reason.filter(|r| !r.is_empty()) {
                reason = waiting_reason.to_owned();
            } else if let Some(terminated) = terminated {
                let terminated_reason = text(terminated, "/reason");
                reason = if !terminated_reason.is_empty() {
                    terminated_reason.to_owned()
                } else if integer(terminated, "/signal") != 0 {
                    format!("Signal:{}", integer(terminated, "/signal"))
                } else {
                    format!("ExitCode:{}", integer(terminated, "/exitCode"))
                };
            } else if flag(status, "/ready") && state(status, "running").is_some() {
                has_running = true;
                ready_containers += 1;
            }
        }
        // Back to "Running" if a container still runs.
        if reason == "Completed" && has_running {
            reason = if ready_condition_true(conditions) {
                "Running".to_owned()
            } else {
                "NotReady".to_owned()
            };
        }
    }

    let deleting = !pod
        .pointer("/metadata/deletionTimestamp")
        .unwrap_or(&Value::Null)
        .is_null();
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".to_owned();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_owned();
    }

    let restarts_cell = match last_restart {
        Some(at) if restarts != 0 => format!("{restarts} ({} ago)", age(Some(at), now)),
        _ => restarts.to_string(),
    };

    let mut pod_ip = text(pod, "/status/podIPs/0/ip");
    if pod_ip.is_empty() {
        pod_ip = text(pod, "/status/podIP");
    }
    let gates = list(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let true_conditions = gates
            .iter()
            .filter(|gate| {
                let wanted = text(gate, "/conditionType");
                conditions
                    .iter()
                    .find(|c| text(c, "/type") == wanted)
                    .is_some_and(|c| text(c, "/status") == "True")
            })
            .count();
        format!("{true_conditions}/{}", gates.len())
    };

    PrintedRow {
        cells: vec![
            json!(text(pod, "/metadata/name")),
            json!(format!("{ready_containers}/{total_containers}")),
            json!(reason),
            json!(restarts_cell),
            json!(creation_age(pod, now)),
            json!(or_none(pod_ip)),
            json!(or_none(text(pod, "/spec/nodeName"))),
            json!(or_none(text(pod, "/status/nominatedNodeName"))),
            json!(readiness_gates),
        ],
        conditions: row_conditions,
    }
}

fn print_namespace(ns: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(text(ns, "/metadata/name")),
        json!(text(ns, "/status/phase")),
        json!(creation_age(ns, now)),
    ]
}

fn print_config_map(cm: &Value, now: Timestamp) -> Vec<Value> {
    let n = map_len(cm, "/data") + map_len(cm, "/binaryData");
    vec![
        json!(text(cm, "/metadata/name")),
        json!(n),
        json!(creation_age(cm, now)),
    ]
}

fn print_secret(secret: &Value, now: Timestamp) -> Vec<Value> {
    // The internal object's `data` holds `stringData` merged in by the v1 conversion.
    let keys: BTreeSet<&String> = ["/data", "/stringData"]
        .iter()
        .filter_map(|p| secret.pointer(p).and_then(Value::as_object))
        .flat_map(Map::keys)
        .collect();
    vec![
        json!(text(secret, "/metadata/name")),
        json!(text(secret, "/type")),
        json!(keys.len()),
        json!(creation_age(secret, now)),
    ]
}

/// Upstream `printEvent` (the `kubectl get events` columns).
fn print_event(event: &Value, now: Timestamp) -> Vec<Value> {
    let first_timestamp = match timestamp(event, "/firstTimestamp") {
        Some(t) => age(Some(t), now),
        None => age(timestamp(event, "/eventTime"), now),
    };
    let mut last_timestamp = match timestamp(event, "/lastTimestamp") {
        Some(t) => age(Some(t), now),
        None => first_timestamp.clone(),
    };
    let mut count = integer(event, "/count");
    if event.get("series").is_some_and(Value::is_object) {
        last_timestamp = age(timestamp(event, "/series/lastObservedTime"), now);
        count = integer(event, "/series/count");
    } else if count == 0 {
        // Singleton events of the new API have no count.
        count = 1;
    }
    let kind = text(event, "/involvedObject/kind").to_lowercase();
    let name = text(event, "/involvedObject/name");
    let target = if name.is_empty() {
        kind
    } else {
        format!("{kind}/{name}")
    };
    let component = first_non_empty(
        text(event, "/source/component"),
        text(event, "/reportingComponent"),
    );
    let instance = first_non_empty(
        text(event, "/source/host"),
        text(event, "/reportingInstance"),
    );
    let source = if instance.is_empty() {
        component.to_owned()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last_timestamp),
        json!(text(event, "/type")),
        json!(text(event, "/reason")),
        json!(target),
        json!(text(event, "/involvedObject/fieldPath")),
        json!(source),
        json!(text(event, "/message").trim()),
        json!(first_timestamp),
        json!(count),
        json!(text(event, "/metadata/name")),
    ]
}

fn print_lease(lease: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        json!(text(lease, "/metadata/name")),
        json!(text(lease, "/spec/holderIdentity")),
        json!(creation_age(lease, now)),
    ]
}

/// Upstream `printService`, wide (the load balancer column is not clipped).
fn print_service(svc: &Value, now: Timestamp) -> Vec<Value> {
    let svc_type = match text(svc, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    };
    let mut cluster_ip = text(svc, "/spec/clusterIPs/0");
    if cluster_ip.is_empty() {
        cluster_ip = text(svc, "/spec/clusterIP");
    }
    let external_ips: Vec<&str> = strings(svc, "/spec/externalIPs");
    let external_ip = match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_owned()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let ingress: BTreeSet<&str> = list(svc, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| first_non_empty(text(i, "/ip"), text(i, "/hostname")))
                .filter(|s| !s.is_empty())
                .collect();
            let mut all: Vec<&str> = ingress.into_iter().collect();
            all.extend(external_ips);
            if all.is_empty() {
                "<pending>".to_owned()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => text(svc, "/spec/externalName").to_owned(),
        _ => "<unknown>".to_owned(),
    };
    let ports: Vec<String> = list(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let protocol = match text(p, "/protocol") {
                "" => "TCP",
                proto => proto,
            };
            let port = integer(p, "/port");
            match integer(p, "/nodePort") {
                node_port if node_port > 0 => format!("{port}:{node_port}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_owned()
    } else {
        ports.join(",")
    };
    vec![
        json!(text(svc, "/metadata/name")),
        json!(svc_type),
        json!(or_none(cluster_ip)),
        json!(external_ip),
        json!(ports),
        json!(creation_age(svc, now)),
        json!(format_labels(&string_map(svc, "/spec/selector"))),
    ]
}

/// Upstream `formatEndpoints` with all ports: at most 3 `ip:port`, then `+ N more...`.
fn print_endpoints(ep: &Value, now: Timestamp) -> Vec<Value> {
    const MAX: usize = 3;
    let subsets = list(ep, "/subsets");
    let formatted = if subsets.is_empty() {
        "<none>".to_owned()
    } else {
        let mut shown: Vec<String> = Vec::new();
        let mut more = false;
        let mut count = 0;
        for subset in subsets {
            let addresses = list(subset, "/addresses");
            let ports = list(subset, "/ports");
            if ports.is_empty() {
                // Headless services may have no ports.
                count += addresses.len();
                for address in addresses {
                    if shown.len() == MAX {
                        more = true;
                        break;
                    }
                    shown.push(text(address, "/ip").to_owned());
                }
                continue;
            }
            for port in ports {
                count += addresses.len();
                for address in addresses {
                    if shown.len() == MAX {
                        more = true;
                        break;
                    }
                    shown.push(join_host_port(text(address, "/ip"), integer(port, "/port")));
                }
            }
        }
        let joined = shown.join(",");
        if more {
            format!("{joined} + {} more...", count - MAX)
        } else {
            joined
        }
    };
    vec![
        json!(text(ep, "/metadata/name")),
        json!(formatted),
        json!(creation_age(ep, now)),
    ]
}

fn print_endpoint_slice(slice: &Value, now: Timestamp) -> Vec<Value> {
    const MAX: usize = 3;
    let mut ports: Vec<String> = Vec::new();
    let mut more_ports = false;
    let port_list = list(slice, "/ports");
    for port in port_list {
        if ports.len() < MAX {
            let number = port.get("port").and_then(Value::as_i64);
            let name = port.get("name").and_then(Value::as_str);
            ports.push(match (number, name) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_owned(),
                (None, None) => "*".to_owned(),
            });
        } else if ports.len() == MAX {
            more_ports = true;
        }
    }
    let mut addresses: Vec<String> = Vec::new();
    let mut more_addresses = false;
    let mut address_count = 0;
    for endpoint in list(slice, "/endpoints") {
        for address in strings(endpoint, "/addresses") {
            if addresses.len() < MAX {
                addresses.push(address.to_owned());
            } else if addresses.len() == MAX {
                more_addresses = true;
            }
            address_count += 1;
        }
    }
    vec![
        json!(text(slice, "/metadata/name")),
        json!(text(slice, "/addressType")),
        json!(list_with_more(&ports, more_ports, port_list.len(), MAX)),
        json!(list_with_more(
            &addresses,
            more_addresses,
            address_count,
            MAX
        )),
        json!(creation_age(slice, now)),
    ]
}

fn print_deployment(deploy: &Value, now: Timestamp) -> Vec<Value> {
    let desired = deploy
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let ready = integer(deploy, "/status/readyReplicas");
    let (containers, images) = layout_containers(deploy);
    // Upstream `LabelSelectorAsSelector(...).String()`: a missing selector prints as "".
    let selector = match label_selector(deploy) {
        Ok(selector) => match LabelSelector::from_optional_label_selector(selector.as_ref()) {
            Ok(selector) => selector.to_string(),
            Err(_) => "<invalid>".to_owned(),
        },
        Err(()) => "<invalid>".to_owned(),
    };
    vec![
        json!(text(deploy, "/metadata/name")),
        json!(format!("{ready}/{desired}")),
        json!(integer(deploy, "/status/updatedReplicas")),
        json!(integer(deploy, "/status/availableReplicas")),
        json!(creation_age(deploy, now)),
        json!(containers),
        json!(images),
        json!(selector),
    ]
}

fn print_replica_set(rs: &Value, now: Timestamp) -> Vec<Value> {
    let desired = rs
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let (containers, images) = layout_containers(rs);
    let selector = match label_selector(rs) {
        Ok(selector) => format_label_selector(selector.as_ref()),
        Err(()) => "<error>".to_owned(),
    };
    vec![
        json!(text(rs, "/metadata/name")),
        json!(desired),
        json!(integer(rs, "/status/replicas")),
        json!(integer(rs, "/status/readyReplicas")),
        json!(creation_age(rs, now)),
        json!(containers),
        json!(images),
        json!(selector),
    ]
}

/// Upstream `printReplicationController`: a ReplicaSet's row with the selector map printed by
/// `labels.FormatLabels`.
fn print_replication_controller(rc: &Value, now: Timestamp) -> Vec<Value> {
    let desired = rc
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let (containers, images) = layout_containers(rc);
    vec![
        json!(text(rc, "/metadata/name")),
        json!(desired),
        json!(integer(rc, "/status/replicas")),
        json!(integer(rc, "/status/readyReplicas")),
        json!(creation_age(rc, now)),
        json!(containers),
        json!(images),
        json!(format_labels(&string_map(rc, "/spec/selector"))),
    ]
}

/// `DefaultTableConvertor`: the name and the creation time in RFC 3339, in UTC, to the second.
fn print_default(object: &Value) -> Vec<Value> {
    let created = timestamp(object, "/metadata/creationTimestamp")
        .and_then(|t| Timestamp::from_second(t.as_second()).ok())
        .map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), |t| t.to_string());
    vec![json!(text(object, "/metadata/name")), json!(created)]
}

// Helpers reading v1 JSON the way Go reads zero values: a missing field is "", 0, false or
// empty.

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn integer(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn flag(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn strings<'a>(v: &'a Value, pointer: &str) -> Vec<&'a str> {
    list(v, pointer).iter().filter_map(Value::as_str).collect()
}

fn map_len(v: &Value, pointer: &str) -> usize {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .map_or(0, Map::len)
}

fn string_map(v: &Value, pointer: &str) -> BTreeMap<String, String> {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// A `metav1.Time` or `MicroTime`; `None` when missing, unreadable, or Go's zero time.
fn timestamp(v: &Value, pointer: &str) -> Option<Timestamp> {
    let t: Timestamp = v.pointer(pointer)?.as_str()?.parse().ok()?;
    let go_zero = Timestamp::from_second(-62_135_596_800).ok()?;
    (t != go_zero).then_some(t)
}

/// Upstream `translateTimestampSince`: `<unknown>` for a zero time.
fn age(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_owned(),
    }
}

fn creation_age(v: &Value, now: Timestamp) -> String {
    age(timestamp(v, "/metadata/creationTimestamp"), now)
}

/// `state.<which>` of a container status, when set.
fn state<'a>(status: &'a Value, which: &str) -> Option<&'a Value> {
    status
        .get("state")
        .and_then(|s| s.get(which))
        .filter(|v| v.is_object())
}

/// `lastState.terminated.finishedAt`, when the container terminated before.
fn last_termination(status: &Value) -> Option<Timestamp> {
    let terminated = status
        .get("lastState")
        .and_then(|s| s.get("terminated"))
        .filter(|v| v.is_object())?;
    timestamp(terminated, "/finishedAt")
}

/// Keeps the later of two times (upstream `if last.Before(&t) { last = t }`).
fn later(last: &mut Option<Timestamp>, t: Option<Timestamp>) {
    if let Some(t) = t
        && last.is_none_or(|l| l < t)
    {
        *last = Some(t);
    }
}

/// Upstream `isPodInitializedConditionTrue` (the first condition of the type decides).
fn condition_is_true(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| text(c, "/type") == type_)
        .is_some_and(|c| text(c, "/status") == "True")
}

/// Upstream `hasPodReadyCondition` (any Ready condition that is True).
fn ready_condition_true(conditions: &[Value]) -> bool {
    conditions
        .iter()
        .any(|c| text(c, "/type") == "Ready" && text(c, "/status") == "True")
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

/// Go's `net.JoinHostPort`: IPv6 addresses in brackets.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Upstream `listWithMoreString`.
fn list_with_more(shown: &[String], more: bool, count: usize, max: usize) -> String {
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", count - max)
    } else if joined.is_empty() {
        "<unset>".to_owned()
    } else {
        joined
    }
}

/// Upstream `layoutContainerCells` of `spec.template.spec.containers`.
fn layout_containers(object: &Value) -> (String, String) {
    let containers = list(object, "/spec/template/spec/containers");
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `spec.selector` as a `LabelSelector` object: `Ok(None)` when missing, `Err` when malformed.
fn label_selector(object: &Value) -> Result<Option<metav1::LabelSelector>, ()> {
    match object.pointer("/spec/selector") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|_| ()),
    }
}

#[cfg(test)]
mod tests;
