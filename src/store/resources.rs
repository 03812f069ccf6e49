//! The resource types podvisor serves: one table, read by the store (keys), the API (routes,
//! discovery, OpenAPI) and the CLI (names, short names).

/// One served resource type.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Resource {
    /// API group; "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    /// Plural, lower case: `pods`.
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// `categories: ["all"]` makes `kubectl get all` list it.
    pub in_all: bool,
    /// Subresources other than `status` (which every kind with a status has).
    pub subresources: &'static [Subresource],
    /// Whether objects have a `status` (served as the `status` subresource).
    pub has_status: bool,
}

/// A subresource such as `pods/log` or `deployments/scale`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Subresource {
    pub name: &'static str,
    /// The kind it returns, as `(group, version, kind)`.
    pub kind: (&'static str, &'static str, &'static str),
    pub verbs: &'static [&'static str],
}

impl Resource {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, or `deployments.apps` as the API server names a grouped resource in messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `PodList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The URL prefix of this resource's group-version: `/api/v1` or `/apis/apps/v1`.
    pub fn group_version_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Verbs of a served collection.
pub fn verbs() -> &'static [&'static str] {
    ALL_VERBS
}

pub static NAMESPACES: Resource = Resource {
    group: "",
    version: "v1",
    plural: "namespaces",
    singular: "namespace",
    kind: "Namespace",
    namespaced: false,
    short_names: &["ns"],
    in_all: false,
    subresources: &[],
    has_status: true,
};

pub static PODS: Resource = Resource {
    group: "",
    version: "v1",
    plural: "pods",
    singular: "pod",
    kind: "Pod",
    namespaced: true,
    short_names: &["po"],
    in_all: true,
    subresources: &[Subresource {
        name: "log",
        kind: ("", "v1", "Pod"),
        verbs: &["get"],
    }],
    has_status: true,
};

pub static CONFIG_MAPS: Resource = Resource {
    group: "",
    version: "v1",
    plural: "configmaps",
    singular: "configmap",
    kind: "ConfigMap",
    namespaced: true,
    short_names: &["cm"],
    in_all: false,
    subresources: &[],
    has_status: false,
};

pub static SECRETS: Resource = Resource {
    group: "",
    version: "v1",
    plural: "secrets",
    singular: "secret",
    kind: "Secret",
    namespaced: true,
    short_names: &[],
    in_all: false,
    subresources: &[],
    has_status: false,
};

pub static SERVICES: Resource = Resource {
    group: "",
    version: "v1",
    plural: "services",
    singular: "service",
    kind: "Service",
    namespaced: true,
    short_names: &["svc"],
    in_all: true,
    subresources: &[],
    has_status: true,
};

pub static ENDPOINTS: Resource = Resource {
    group: "",
    version: "v1",
    plural: "endpoints",
    singular: "endpoints",
    kind: "Endpoints",
    namespaced: true,
    short_names: &["ep"],
    in_all: false,
    subresources: &[],
    has_status: false,
};

pub static ENDPOINT_SLICES: Resource = Resource {
    group: "discovery.k8s.io",
    version: "v1",
    plural: "endpointslices",
    singular: "endpointslice",
    kind: "EndpointSlice",
    namespaced: true,
    short_names: &[],
    in_all: false,
    subresources: &[],
    has_status: false,
};

pub static EVENTS: Resource = Resource {
    group: "",
    version: "v1",
    plural: "events",
    singular: "event",
    kind: "Event",
    namespaced: true,
    short_names: &["ev"],
    in_all: false,
    subresources: &[],
    has_status: false,
};

pub static LEASES: Resource = Resource {
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    singular: "lease",
    kind: "Lease",
    namespaced: true,
    short_names: &[],
    in_all: false,
    subresources: &[],
    has_status: false,
};

/// The `scale` subresource of the workload kinds: an `autoscaling/v1` `Scale`.
const SCALE: &[Subresource] = &[Subresource {
    name: "scale",
    kind: ("autoscaling", "v1", "Scale"),
    verbs: &["get", "patch", "update"],
}];

pub static REPLICATION_CONTROLLERS: Resource = Resource {
    group: "",
    version: "v1",
    plural: "replicationcontrollers",
    singular: "replicationcontroller",
    kind: "ReplicationController",
    namespaced: true,
    short_names: &["rc"],
    in_all: true,
    subresources: SCALE,
    has_status: true,
};

pub static DEPLOYMENTS: Resource = Resource {
    group: "apps",
    version: "v1",
    plural: "deployments",
    singular: "deployment",
    kind: "Deployment",
    namespaced: true,
    short_names: &["deploy"],
    in_all: true,
    subresources: SCALE,
    has_status: true,
};

pub static REPLICA_SETS: Resource = Resource {
    group: "apps",
    version: "v1",
    plural: "replicasets",
    singular: "replicaset",
    kind: "ReplicaSet",
    namespaced: true,
    short_names: &["rs"],
    in_all: true,
    subresources: SCALE,
    has_status: true,
};

/// Every served resource, in discovery order.
pub static ALL: &[&Resource] = &[
    &NAMESPACES,
    &PODS,
    &CONFIG_MAPS,
    &SECRETS,
    &SERVICES,
    &ENDPOINTS,
    &EVENTS,
    &REPLICATION_CONTROLLERS,
    &LEASES,
    &ENDPOINT_SLICES,
    &DEPLOYMENTS,
    &REPLICA_SETS,
];

/// Whether a resource has the `scale` subresource.
pub fn has_scale(resource: &Resource) -> bool {
    resource.subresources.iter().any(|s| s.name == "scale")
}

/// The served resource of a group and plural.
pub fn by_plural(group: &str, plural: &str) -> Option<&'static Resource> {
    ALL.iter()
        .copied()
        .find(|r| r.group == group && r.plural == plural)
}

/// The served resource of an apiVersion and kind.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    ALL.iter()
        .copied()
        .find(|r| r.api_version() == api_version && r.kind == kind)
}

/// The resource a user names on the command line: plural, singular, short name or kind, with
/// an optional `.group` suffix (`deployments.apps`).
pub fn by_name(name: &str) -> Option<&'static Resource> {
    let lower = name.to_ascii_lowercase();
    let (base, group) = match lower.split_once('.') {
        Some((b, g)) => (b.to_owned(), Some(g.to_owned())),
        None => (lower.clone(), None),
    };
    ALL.iter().copied().find(|r| {
        group.as_deref().is_none_or(|g| g == r.group)
            && (r.plural == base
                || r.singular == base
                || r.kind.eq_ignore_ascii_case(&base)
                || r.short_names.contains(&base.as_str()))
    })
}
