//! The merge schema of the kinds podvisor serves: for each (apiVersion, kind) a small table that
//! maps JSON paths to how the value there merges, both for strategic merge patch (upstream's
//! `patchStrategy`/`patchMergeKey` struct tags) and for server-side apply (the `+listType`,
//! `+listMapKey`, `+mapType` and `+structType` markers that become the OpenAPI extensions
//! structured-merge-diff reads).
//!
//! A path is a dotted list of field names; `[]` stands for "every item of this list", so
//! `spec.template.spec.containers[].ports` is the `ports` list of every container of a
//! Deployment. A path not in a table has the defaults of both mechanisms: a list is replaced
//! whole (SMP) and atomic (SSA), an object is merged key by key (both). Shared types (ObjectMeta,
//! PodSpec, Container, PodTemplateSpec) are tables of their own, mounted with [`Field::Type`], so
//! adding a kind is one table.
//!
//! Sources: `staging/src/k8s.io/api/core/v1/types.go`, `apps/v1/types.go`, `discovery/v1/types.go`,
//! `coordination/v1/types.go` and `apimachinery/pkg/apis/meta/v1/types.go` (Kubernetes 1.33).

/// One table: paths relative to where the table is mounted, and what is there. A path may have
/// several entries (a `Type` and a `Struct`, for example).
pub(crate) struct Table(pub &'static [(&'static str, Field)]);

/// What a table says about the value at one path.
pub(crate) enum Field {
    /// A list, and how both mechanisms merge it.
    List(List),
    /// An object that does not merge key by key in one of the mechanisms.
    Map(Map),
    /// The paths below are described by another table (a shared Go type such as `PodSpec`).
    Type(&'static Table),
    /// A non-pointer Go struct: present, as `{}`, in the zero value of the kind. Upstream compares
    /// an update against the typed zero object on create, so such objects are never "added"
    /// themselves; this is how [`zero_object`] knows them.
    Struct,
    /// A list field without `omitempty`: present, as `null`, in the zero value of the kind, so
    /// never "added" itself either (`PodSpec.containers`).
    NilList,
}

/// How a list merges.
pub(crate) struct List {
    /// Strategic merge patch: `patchStrategy`/`patchMergeKey`.
    pub smp: SmpList,
    /// Server-side apply: `+listType`/`+listMapKey`.
    pub ssa: SsaList,
}

/// Strategic merge patch strategy of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SmpList {
    /// No `patchStrategy`: the patch's list replaces the original's.
    Replace,
    /// `patchStrategy:"merge"` with `patchMergeKey`: a list of objects merged item by item.
    MergeByKey(&'static str),
    /// `patchStrategy:"merge"` on a list of scalars: merged as a set.
    MergeScalars,
}

/// Server-side apply type of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SsaList {
    /// `+listType=atomic` (the default): owned and replaced as a whole.
    Atomic,
    /// `+listType=set`: a set of scalars, each owned on its own (`v:"value"`).
    Set,
    /// `+listType=map` with its `+listMapKey`s: objects identified by their keys (`k:{…}`).
    Map(&'static [Key]),
}

/// One key field of an SSA associative list, with the default upstream's schema gives it (used
/// when an item omits it, as `protocol` of ports is omitted in most manifests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    pub name: &'static str,
    /// A string default, if the key has one.
    pub default: Option<&'static str>,
}

/// How an object merges, where it differs from the default (key by key in both mechanisms).
pub(crate) struct Map {
    pub smp: SmpMap,
    pub ssa: SsaMap,
}

/// Strategic merge patch strategy of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SmpMap {
    /// Merged key by key (the default).
    Merge,
    /// `patchStrategy:"retainKeys"`: merged, and a `$retainKeys` directive in the patch clears
    /// the keys it does not list. The directive is honoured wherever it appears (as upstream
    /// does when applying a patch); the tag only matters to clients computing patches.
    RetainKeys,
    /// `patchStrategy:"replace"`: the patch's object replaces the original's.
    Replace,
}

/// Server-side apply type of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SsaMap {
    /// Every field owned on its own (the default).
    Granular,
    /// `+structType=atomic` / `+mapType=atomic`: owned and replaced as a whole.
    Atomic,
}

/// A kind podvisor knows the schema of.
pub(crate) struct Kind {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub table: &'static Table,
    /// Whether the kind has a `status` subresource, so that writes to the main resource do not
    /// own (and, upstream, reset) `status`.
    pub status_subresource: bool,
}

/// The schema of a kind, if podvisor knows it.
pub(crate) fn for_kind(api_version: &str, kind: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.api_version == api_version && k.kind == kind)
}

/// The schema used for a kind podvisor does not know: only `metadata` is described, every other
/// list is atomic, as upstream's "deduced" schema for objects without one.
pub(crate) static UNKNOWN_KIND: Table = Table(&[("metadata", Field::Type(&OBJECT_META))]);

// Shorthands for the tables below.

pub(crate) const fn merge_by(key: &'static str, ssa_keys: &'static [Key]) -> Field {
    Field::List(List {
        smp: SmpList::MergeByKey(key),
        ssa: SsaList::Map(ssa_keys),
    })
}

pub(crate) const fn key(name: &'static str) -> Key {
    Key {
        name,
        default: None,
    }
}

pub(crate) const fn key_or(name: &'static str, default: &'static str) -> Key {
    Key {
        name,
        default: Some(default),
    }
}

pub(crate) const NAME: &[Key] = &[key("name")];
const TYPE: &[Key] = &[key("type")];
const IP: &[Key] = &[key("ip")];

/// `+structType=atomic` or `+mapType=atomic` (SSA); merged key by key by SMP, which has no
/// such notion.
pub(crate) const ATOMIC_MAP: Field = Field::Map(Map {
    smp: SmpMap::Merge,
    ssa: SsaMap::Atomic,
});

pub(crate) const RETAIN_KEYS: Field = Field::Map(Map {
    smp: SmpMap::RetainKeys,
    ssa: SsaMap::Granular,
});

/// `metav1.ObjectMeta`.
pub(crate) static OBJECT_META: Table = Table(&[
    // +patchMergeKey=uid +patchStrategy=merge +listType=map +listMapKey=uid
    ("ownerReferences", merge_by("uid", &[key("uid")])),
    // OwnerReference is +structType=atomic.
    ("ownerReferences[]", ATOMIC_MAP),
    // patchStrategy:"merge" +listType=set
    (
        "finalizers",
        Field::List(List {
            smp: SmpList::MergeScalars,
            ssa: SsaList::Set,
        }),
    ),
]);

// `metav1.LabelSelector` is +structType=atomic: where it appears it is an `ATOMIC_MAP`.

/// `core/v1.Container` (also `EphemeralContainer`, which has the same fields).
static CONTAINER: Table = Table(&[
    // +patchMergeKey=containerPort +patchStrategy=merge
    // +listType=map +listMapKey=containerPort +listMapKey=protocol (protocol defaults to TCP)
    (
        "ports",
        merge_by(
            "containerPort",
            &[key("containerPort"), key_or("protocol", "TCP")],
        ),
    ),
    // +patchMergeKey=name +patchStrategy=merge +listType=map +listMapKey=name
    ("env", merge_by("name", NAME)),
    // The selectors of valueFrom are +structType=atomic.
    ("env[].valueFrom.configMapKeyRef", ATOMIC_MAP),
    ("env[].valueFrom.secretKeyRef", ATOMIC_MAP),
    ("env[].valueFrom.fieldRef", ATOMIC_MAP),
    ("env[].valueFrom.resourceFieldRef", ATOMIC_MAP),
    // +patchMergeKey=mountPath +patchStrategy=merge +listType=map +listMapKey=mountPath
    ("volumeMounts", merge_by("mountPath", &[key("mountPath")])),
    // +patchMergeKey=devicePath +patchStrategy=merge +listType=map +listMapKey=devicePath
    (
        "volumeDevices",
        merge_by("devicePath", &[key("devicePath")]),
    ),
    // ResourceRequirements.Claims: +listType=map +listMapKey=name, no patch strategy.
    (
        "resources.claims",
        Field::List(List {
            smp: SmpList::Replace,
            ssa: SsaList::Map(NAME),
        }),
    ),
]);

/// `core/v1.PodSpec`.
static POD_SPEC: Table = Table(&[
    // `json:"containers"`, without omitempty.
    ("containers", Field::NilList),
    // +patchMergeKey=name +patchStrategy=merge,retainKeys +listType=map +listMapKey=name
    ("volumes", merge_by("name", NAME)),
    ("volumes[]", RETAIN_KEYS),
    // +patchMergeKey=name +patchStrategy=merge +listType=map +listMapKey=name
    ("initContainers", merge_by("name", NAME)),
    ("initContainers[]", Field::Type(&CONTAINER)),
    ("containers", merge_by("name", NAME)),
    ("containers[]", Field::Type(&CONTAINER)),
    ("ephemeralContainers", merge_by("name", NAME)),
    ("ephemeralContainers[]", Field::Type(&CONTAINER)),
    // +mapType=atomic
    ("nodeSelector", ATOMIC_MAP),
    // +patchMergeKey=name +patchStrategy=merge +listType=map +listMapKey=name
    ("imagePullSecrets", merge_by("name", NAME)),
    // LocalObjectReference is +structType=atomic.
    ("imagePullSecrets[]", ATOMIC_MAP),
    // +patchMergeKey=ip +patchStrategy=merge +listType=map +listMapKey=ip
    ("hostAliases", merge_by("ip", IP)),
    // +patchMergeKey=topologyKey +patchStrategy=merge
    // +listType=map +listMapKey=topologyKey +listMapKey=whenUnsatisfiable
    (
        "topologySpreadConstraints",
        merge_by(
            "topologyKey",
            &[key("topologyKey"), key("whenUnsatisfiable")],
        ),
    ),
    ("topologySpreadConstraints[].labelSelector", ATOMIC_MAP),
    // +patchMergeKey=name +patchStrategy=merge +listType=map +listMapKey=name
    ("schedulingGates", merge_by("name", NAME)),
    // +patchMergeKey=name +patchStrategy=merge,retainKeys +listType=map +listMapKey=name
    ("resourceClaims", merge_by("name", NAME)),
    ("resourceClaims[]", RETAIN_KEYS),
]);

/// `core/v1.PodStatus`.
static POD_STATUS: Table = Table(&[
    // +patchMergeKey=type +patchStrategy=merge +listType=map +listMapKey=type
    ("conditions", merge_by("type", TYPE)),
    // +patchMergeKey=ip +patchStrategy=merge +listType=map +listMapKey=ip
    ("podIPs", merge_by("ip", IP)),
    ("hostIPs", merge_by("ip", IP)),
    // +patchMergeKey=name +patchStrategy=merge,retainKeys +listType=map +listMapKey=name
    ("resourceClaimStatuses", merge_by("name", NAME)),
    ("resourceClaimStatuses[]", RETAIN_KEYS),
]);

/// `core/v1.PodTemplateSpec`.
static POD_TEMPLATE_SPEC: Table = Table(&[
    ("metadata", Field::Struct),
    ("metadata", Field::Type(&OBJECT_META)),
    ("spec", Field::Struct),
    ("spec", Field::Type(&POD_SPEC)),
]);

static POD: Table = Table(&[
    ("metadata", Field::Struct),
    ("metadata", Field::Type(&OBJECT_META)),
    ("spec", Field::Struct),
    ("spec", Field::Type(&POD_SPEC)),
    ("status", Field::Struct),
    ("status", Field::Type(&POD_STATUS)),
]);

/// Kinds whose only schema is their metadata (ConfigMap, Secret: `data` is a plain map).
static META_ONLY: Table = Table(&[
    ("metadata", Field::Struct),
    ("metadata", Field::Type(&OBJECT_META)),
]);

static NAMESPACE: Table = Table(&[
    ("metadata", Field::Struct),
    ("metadata", Field::Type(&OBJECT_META)),
    ("spec", Field::Struct),
    ("status", Field::Struct),
    // +patchMergeKey=type +patchStrategy=merge +listType=map +listMapKey=type
    ("status.conditions", merge_by("type", TYPE)),
]);

static EVENT: Table = Table(&[
    ("metadata", Field::Struct),
    ("metadata", Field::Type(&OBJECT_META)),
    // ObjectReference is +structType=atomic.
    ("involvedObject", Field::Struct),
    ("involvedObject", ATOMIC_MAP),
    ("related", ATOMIC_MAP),
    ("source", Field::Struct),
]);

static SERVICE: Table = Table(&[
    ("metadata", Field::Struct),
    ("metadata", Field::Type(&OBJECT_META)),
    ("spec", Field::Struct),
    // +patchMergeKey=port +patchStrategy=merge
    // +listType=map +listMapKey=port +listMapKey=protocol (protocol defaults to TCP)
    (
        "spec.ports",
        merge_by("port", &[key("port"), key_or("protocol", "TCP")]),
    ),
    // +mapType=atomic
    ("spec.selector", ATOMIC_MAP),
    ("status", Field::Struct),
    ("status.loadBalancer", Field::Struct),
    // metav1.Condition list: +patchMergeKey=type +patchStrategy=merge +listType=map +listMapKey=type
    ("status.conditions", merge_by("type", TYPE)),
]);

/// `core/v1.Endpoints`: `subsets` and everything in it are atomic lists (the defaults).
static ENDPOINTS: Table = Table(&[
    ("metadata", Field::Struct),
    ("metadata", Field::Type(&OBJECT_META)),
]);

/// `discovery/v1.EndpointSlice`: `endpoints` and `ports` are +listType=atomic (the default).
static ENDPOINT_SLICE: Table = Table(&[
    ("metadata", Field::Struct),
    ("metadata", Field::Type(&OBJECT_META)),
]);

static LEASE: Table = Table(&[
    ("metadata", Field::Struct),
    ("metadata", Field::Type(&OBJECT_META)),
    ("spec", Field::Struct),
]);

static DEPLOYMENT: Table = Table(&[
    ("metadata", Field::Struct),
    ("metadata", Field::Type(&OBJECT_META)),
    ("spec", Field::Struct),
    ("spec.selector", ATOMIC_MAP),
    ("spec.template", Field::Struct),
    ("spec.template", Field::Type(&POD_TEMPLATE_SPEC)),
    // patchStrategy:"retainKeys"
    ("spec.strategy", Field::Struct),
    ("spec.strategy", RETAIN_KEYS),
    ("status", Field::Struct),
    // +patchMergeKey=type +patchStrategy=merge +listType=map +listMapKey=type
    ("status.conditions", merge_by("type", TYPE)),
]);

/// `core/v1.ReplicationController`: `spec.selector` is a plain map (merged key by key).
static REPLICATION_CONTROLLER: Table = Table(&[
    ("metadata", Field::Struct),
    ("metadata", Field::Type(&OBJECT_META)),
    ("spec", Field::Struct),
    ("spec.template", Field::Type(&POD_TEMPLATE_SPEC)),
    ("status", Field::Struct),
    // +patchMergeKey=type +patchStrategy=merge
    ("status.conditions", merge_by("type", TYPE)),
]);

static REPLICA_SET: Table = Table(&[
    ("metadata", Field::Struct),
    ("metadata", Field::Type(&OBJECT_META)),
    ("spec", Field::Struct),
    ("spec.selector", ATOMIC_MAP),
    ("spec.template", Field::Struct),
    ("spec.template", Field::Type(&POD_TEMPLATE_SPEC)),
    ("status", Field::Struct),
    // +patchMergeKey=type +patchStrategy=merge +listType=map +listMapKey=type
    ("status.conditions", merge_by("type", TYPE)),
]);

static KINDS: &[Kind] = &[
    Kind {
        api_version: "v1",
        kind: "Pod",
        table: &POD,
        status_subresource: true,
    },
    Kind {
        api_version: "v1",
        kind: "ConfigMap",
        table: &META_ONLY,
        status_subresource: false,
    },
    Kind {
        api_version: "v1",
        kind: "Secret",
        table: &META_ONLY,
        status_subresource: false,
    },
    Kind {
        api_version: "v1",
        kind: "Namespace",
        table: &NAMESPACE,
        status_subresource: true,
    },
    Kind {
        api_version: "v1",
        kind: "Event",
        table: &EVENT,
        status_subresource: false,
    },
    Kind {
        api_version: "v1",
        kind: "Service",
        table: &SERVICE,
        status_subresource: true,
    },
    Kind {
        api_version: "v1",
        kind: "Endpoints",
        table: &ENDPOINTS,
        status_subresource: false,
    },
    Kind {
        api_version: "apps/v1",
        kind: "Deployment",
        table: &DEPLOYMENT,
        status_subresource: true,
    },
    Kind {
        api_version: "apps/v1",
        kind: "ReplicaSet",
        table: &REPLICA_SET,
        status_subresource: true,
    },
    Kind {
        api_version: "v1",
        kind: "ReplicationController",
        table: &REPLICATION_CONTROLLER,
        status_subresource: true,
    },
    Kind {
        api_version: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        table: &ENDPOINT_SLICE,
        status_subresource: false,
    },
    Kind {
        api_version: "coordination.k8s.io/v1",
        kind: "Lease",
        table: &LEASE,
        status_subresource: false,
    },
];

/// A position in an object, as seen by the tables: the tables (and the paths in them) that
/// describe the value there. Built by descending from the root with [`Node::field`] and
/// [`Node::item`]; cheap enough for objects of a few hundred fields.
#[derive(Clone, Default)]
pub(crate) struct Node {
    frames: Vec<Frame>,
}

#[derive(Clone)]
struct Frame {
    table: &'static Table,
    /// The path of this position relative to where `table` is mounted.
    path: String,
}

impl Node {
    /// The root of an object described by `table`.
    pub(crate) fn root(table: &'static Table) -> Node {
        Node {
            frames: vec![Frame {
                table,
                path: String::new(),
            }],
        }
    }

    /// The field `name` of the object at this position.
    pub(crate) fn field(&self, name: &str) -> Node {
        self.descend(|path| {
            if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            }
        })
    }

    /// Any item of the list at this position.
    pub(crate) fn item(&self) -> Node {
        self.descend(|path| format!("{path}[]"))
    }

    fn descend(&self, child: impl Fn(&str) -> String) -> Node {
        let mut frames = Vec::new();
        for frame in &self.frames {
            let path = child(&frame.path);
            let mut deeper = false;
            for (p, field) in frame.table.0 {
                if *p == path {
                    if let Field::Type(table) = field {
                        frames.push(Frame {
                            table,
                            path: String::new(),
                        });
                    }
                } else if p.len() > path.len()
                    && p.starts_with(path.as_str())
                    && matches!(p.as_bytes()[path.len()], b'.' | b'[')
                {
                    deeper = true;
                }
            }
            if deeper || frame.table.0.iter().any(|(p, _)| *p == path) {
                frames.push(Frame {
                    table: frame.table,
                    path,
                });
            }
        }
        Node { frames }
    }

    fn fields(&self) -> impl Iterator<Item = &'static Field> + '_ {
        self.frames.iter().flat_map(|frame| {
            frame
                .table
                .0
                .iter()
                .filter(move |(p, _)| *p == frame.path)
                .map(|(_, field)| field)
        })
    }

    /// How the list at this position merges (the defaults if no table says).
    pub(crate) fn list(&self) -> (SmpList, SsaList) {
        self.fields()
            .find_map(|field| match field {
                Field::List(list) => Some((list.smp, list.ssa)),
                _ => None,
            })
            .unwrap_or((SmpList::Replace, SsaList::Atomic))
    }

    /// How the object at this position merges (the defaults if no table says).
    pub(crate) fn map(&self) -> (SmpMap, SsaMap) {
        self.fields()
            .find_map(|field| match field {
                Field::Map(map) => Some((map.smp, map.ssa)),
                _ => None,
            })
            .unwrap_or((SmpMap::Merge, SsaMap::Granular))
    }
}

/// The zero value of a kind as upstream's typed objects serialize it: `{}` for every non-pointer
/// struct outside lists (`metadata`, `spec`, `status`, a Deployment's `spec.template.spec`, …),
/// and an empty list for the lists upstream serializes as `null` there.
pub(crate) fn zero_object(table: &'static Table) -> serde_json::Value {
    with_structs(&serde_json::Value::Object(serde_json::Map::new()), table)
}

/// An object as upstream's typed decoding sees it: with `{}` for the non-pointer structs it
/// lacks (and `[]` for its [`Field::NilList`]s). Upstream compares typed objects, so a missing
/// `status` is never "added".
pub(crate) fn with_structs(object: &serde_json::Value, table: &'static Table) -> serde_json::Value {
    let mut object = object.clone();
    if let serde_json::Value::Object(fields) = &mut object {
        fill_structs(table, fields);
    }
    object
}

fn fill_structs(table: &'static Table, object: &mut serde_json::Map<String, serde_json::Value>) {
    for (path, field) in table.0 {
        if path.contains('[') {
            continue;
        }
        match field {
            Field::Struct => ensure_object(object, path),
            Field::NilList => {
                let (container, name) = match path.rsplit_once('.') {
                    None => (Some(&mut *object), *path),
                    Some((parent, name)) => (
                        get_mut(object, parent).and_then(serde_json::Value::as_object_mut),
                        name,
                    ),
                };
                if let Some(container) = container {
                    container
                        .entry(name.to_owned())
                        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                }
            }
            _ => {}
        }
    }
    for (path, field) in table.0 {
        if let Field::Type(inner) = field
            && !path.contains('[')
            && let Some(serde_json::Value::Object(nested)) = get_mut(object, path)
        {
            fill_structs(inner, nested);
        }
    }
}

fn ensure_object(object: &mut serde_json::Map<String, serde_json::Value>, path: &str) {
    let mut current = object;
    for segment in path.split('.') {
        let entry = current
            .entry(segment.to_owned())
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        match entry {
            serde_json::Value::Object(next) => current = next,
            _ => return,
        }
    }
}

fn get_mut<'a>(
    object: &'a mut serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Option<&'a mut serde_json::Value> {
    let mut segments = path.split('.');
    let mut current = object.get_mut(segments.next()?)?;
    for segment in segments {
        current = current.as_object_mut()?.get_mut(segment)?;
    }
    Some(current)
}
