//! Server-side apply and field ownership: an approximation of the API server's field manager
//! (`k8s.io/apimachinery/pkg/util/managedfields` over sigs.k8s.io/structured-merge-diff) on
//! JSON values with the merge tables of [`super::schema`]. What it does and does not do is
//! listed in the documentation of [`super`].

use std::fmt;

use serde_json::{Map, Value};

use super::fieldpath::{Path, PathElement, Set, path_string};
use super::schema::{self, Node, SsaList, SsaMap, Table};
use super::value::{canonical, json_eq};

/// The annotation client-side apply keeps the last applied configuration in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager whose client-side apply history server-side apply takes over (upstream's
/// `lastAppliedManager` and `lastAppliedUpdater` act for this manager only).
const KUBECTL: &str = "kubectl";

/// The manager upstream records the fields of an object in, when the object is applied for the
/// first time and has no managedFields yet.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// What kind of write a managedFields entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// A server-side apply (`PATCH` with `application/apply-patch+yaml`).
    Apply,
    /// Any other write: create, update, JSON/merge/strategic patch.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// A field manager as the API server identifies it: its name and operation, for `Update` also
/// the apiVersion it wrote with, and the subresource (empty for the main resource).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldManager {
    /// The `fieldManager` of the request (`kubectl`, `kubectl-client-side-apply`, …).
    pub manager: String,
    /// Whether the manager applies or updates.
    pub operation: Operation,
    /// The apiVersion of the manager's last write (recorded for both operations, part of the
    /// identity of `Update` managers only).
    pub api_version: String,
    /// `status`, `scale`, or empty for the main resource.
    pub subresource: String,
}

impl FieldManager {
    /// Upstream's `BuildManagerIdentifier`: the JSON of the identifying fields, which is also
    /// the order conflicts are reported in.
    fn identity(&self) -> String {
        let mut text = String::from("{");
        text.push_str(&format!(
            "\"manager\":{},\"operation\":\"{}\"",
            Value::String(self.manager.clone()),
            self.operation.as_str()
        ));
        if self.operation == Operation::Update && !self.api_version.is_empty() {
            text.push_str(&format!(
                ",\"apiVersion\":{}",
                Value::String(self.api_version.clone())
            ));
        }
        if !self.subresource.is_empty() {
            text.push_str(&format!(
                ",\"subresource\":{}",
                Value::String(self.subresource.clone())
            ));
        }
        text.push('}');
        text
    }

    fn same_identity(&self, other: &FieldManager) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }
}

/// Upstream's `printManager`: `"kubectl"` for an applier,
/// `"kubectl-client-side-apply" using apps/v1` for an updater.
impl fmt::Display for FieldManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Value::String(self.manager.clone()))?;
        if !self.subresource.is_empty() {
            write!(
                f,
                " with subresource {}",
                Value::String(self.subresource.clone())
            )?;
        }
        if self.operation == Operation::Update {
            write!(f, " using {}", self.api_version)?;
        }
        Ok(())
    }
}

/// A field another manager owns and an apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The manager that owns the field.
    pub manager: FieldManager,
    /// The field as upstream prints it: `.spec.replicas`,
    /// `.spec.template.spec.containers[name="app"].image`.
    pub field: String,
}

/// One cause of a conflict Status (`details.causes[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConflictCause {
    /// Always `FieldManagerConflict`.
    pub reason: &'static str,
    /// `conflict with "kubectl-client-side-apply" using apps/v1`.
    pub message: String,
    /// `.spec.replicas`.
    pub field: String,
}

/// Why an apply was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change and `force` was not set. Upstream answers
    /// `409 Conflict` with [`conflict_message`] and the causes of [`conflict_causes`].
    #[error("{}", conflict_message(conflicts))]
    Conflict {
        /// Every conflicting field, grouped by manager in upstream's order.
        conflicts: Vec<Conflict>,
    },
    /// The request itself is wrong (`metadata.managedFields` set in the applied configuration,
    /// not an object). Upstream answers `400 BadRequest`.
    #[error("{0}")]
    BadRequest(String),
    /// The applied configuration does not fit the kind's schema (duplicate or missing keys in an
    /// associative list, an object where a set expects scalars). Upstream answers with an error
    /// that names the typed patch object; `422 Invalid` is the closest Status.
    #[error("{0}")]
    Invalid(String),
    /// The live object's managedFields cannot be decoded (upstream: `500 InternalError`).
    #[error("failed to decode managed fields: {0}")]
    BadManagedFields(String),
}

/// Upstream's conflict message:
/// `Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas`,
/// or for several, one `conflicts with <manager>:` block per manager with one `- <field>` line
/// per field.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [conflict] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflict.manager, conflict.field
        );
    }
    let mut managers: Vec<&FieldManager> = Vec::new();
    for conflict in conflicts {
        if !managers.iter().any(|m| m.same_identity(&conflict.manager)) {
            managers.push(&conflict.manager);
        }
    }
    managers.sort_by_key(|m| m.identity());
    let mut lines = Vec::new();
    for manager in managers {
        lines.push(format!("conflicts with {manager}:"));
        for conflict in conflicts {
            if conflict.manager.same_identity(manager) {
                lines.push(format!("- {}", conflict.field));
            }
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// The `details.causes` of a conflict Status, one per conflict.
pub fn conflict_causes(conflicts: &[Conflict]) -> Vec<ConflictCause> {
    conflicts
        .iter()
        .map(|c| ConflictCause {
            reason: "FieldManagerConflict",
            message: format!("conflict with {}", c.manager),
            field: c.field.clone(),
        })
        .collect()
}

/// One managedFields entry, decoded.
#[derive(Clone, Debug)]
struct Entry {
    manager: FieldManager,
    time: Option<String>,
    set: Set,
}

/// The managers of an object.
#[derive(Clone, Debug, Default)]
struct Managers(Vec<Entry>);

impl Managers {
    fn decode(object: &Value) -> Result<Managers, String> {
        let entries = match object.pointer("/metadata/managedFields") {
            None | Some(Value::Null) => return Ok(Managers::default()),
            Some(Value::Array(entries)) => entries,
            Some(_) => return Err("metadata.managedFields is not a list".to_owned()),
        };
        let mut managers = Managers::default();
        for entry in entries {
            let Value::Object(fields) = entry else {
                return Err("a managedFields entry is not an object".to_owned());
            };
            let text = |name: &str| fields.get(name).and_then(Value::as_str).unwrap_or("");
            let operation = match text("operation") {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                other => return Err(format!("invalid operation {other:?}")),
            };
            if text("fieldsType") != "FieldsV1" {
                return Err(format!("invalid fieldsType {:?}", text("fieldsType")));
            }
            let set = match fields.get("fieldsV1") {
                None | Some(Value::Null) => Set::new(),
                Some(fields_v1) => Set::from_fields_v1(fields_v1)?,
            };
            let manager = FieldManager {
                manager: text("manager").to_owned(),
                operation,
                api_version: text("apiVersion").to_owned(),
                subresource: text("subresource").to_owned(),
            };
            let time = fields
                .get("time")
                .and_then(Value::as_str)
                .map(str::to_owned);
            match managers.find_mut(&manager) {
                Some(existing) => existing.set = existing.set.union(&set),
                None => managers.0.push(Entry { manager, time, set }),
            }
        }
        Ok(managers)
    }

    fn find(&self, manager: &FieldManager) -> Option<&Entry> {
        self.0.iter().find(|e| e.manager.same_identity(manager))
    }

    fn find_mut(&mut self, manager: &FieldManager) -> Option<&mut Entry> {
        self.0.iter_mut().find(|e| e.manager.same_identity(manager))
    }

    /// Everything any manager owns.
    fn all(&self) -> Set {
        self.0.iter().fold(Set::new(), |all, e| all.union(&e.set))
    }

    /// The entries in upstream's order (operation, time, manager, apiVersion, subresource), as
    /// the `metadata.managedFields` list; `None` when no manager is left.
    fn encode(&self) -> Option<Value> {
        let mut entries: Vec<&Entry> = self.0.iter().filter(|e| !e.set.is_empty()).collect();
        if entries.is_empty() {
            return None;
        }
        entries.sort_by(|a, b| {
            (a.manager.operation.cmp(&b.manager.operation))
                .then_with(|| a.time.cmp(&b.time))
                .then_with(|| a.manager.manager.cmp(&b.manager.manager))
                .then_with(|| a.manager.api_version.cmp(&b.manager.api_version))
                .then_with(|| a.manager.subresource.cmp(&b.manager.subresource))
        });
        let list = entries
            .into_iter()
            .map(|e| {
                let mut fields = Map::new();
                fields.insert(
                    "manager".to_owned(),
                    Value::String(e.manager.manager.clone()),
                );
                fields.insert(
                    "operation".to_owned(),
                    Value::String(e.manager.operation.as_str().to_owned()),
                );
                if !e.manager.api_version.is_empty() {
                    fields.insert(
                        "apiVersion".to_owned(),
                        Value::String(e.manager.api_version.clone()),
                    );
                }
                if let Some(time) = &e.time {
                    fields.insert("time".to_owned(), Value::String(time.clone()));
                }
                fields.insert(
                    "fieldsType".to_owned(),
                    Value::String("FieldsV1".to_owned()),
                );
                fields.insert("fieldsV1".to_owned(), e.set.to_fields_v1());
                if !e.manager.subresource.is_empty() {
                    fields.insert(
                        "subresource".to_owned(),
                        Value::String(e.manager.subresource.clone()),
                    );
                }
                Value::Object(fields)
            })
            .collect();
        Some(Value::Array(list))
    }
}

/// What the schema of a kind gives the field manager.
struct Kind {
    root: Node,
    table: &'static Table,
    status_subresource: bool,
}

impl Kind {
    fn of(api_version: &str, kind: &str) -> Kind {
        match schema::for_kind(api_version, kind) {
            Some(known) => Kind {
                root: Node::root(known.table),
                table: known.table,
                status_subresource: known.status_subresource,
            },
            None => Kind {
                root: Node::root(&schema::UNKNOWN_KIND),
                table: &schema::UNKNOWN_KIND,
                status_subresource: false,
            },
        }
    }

    /// Upstream's comparison of two objects of this kind, as typed objects (see
    /// [`schema::with_structs`]).
    fn compare(&self, old: &Value, new: &Value) -> Comparison {
        compare(
            &schema::with_structs(old, self.table),
            &schema::with_structs(new, self.table),
            &self.root,
        )
    }

    /// Removes from `set` what a write to `subresource` does not own: upstream's stripped
    /// metadata, and the fields its strategy resets (`status` for the main resource of a kind
    /// with a status subresource; everything but `status` for the status subresource).
    fn filter(&self, set: &mut Set, subresource: &str) {
        for path in STRIPPED {
            let path: Path = path
                .iter()
                .map(|name| PathElement::Field((*name).to_owned()))
                .collect();
            set.remove(&path);
        }
        let status = PathElement::Field("status".to_owned());
        if subresource == "status" {
            set.retain_only(&status);
        } else if self.status_subresource {
            set.remove_subtree(&status);
        }
    }
}

/// Upstream's `stripMetaManager`: fields never owned by anyone.
const STRIPPED: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "creationTimestamp"],
    &["metadata", "selfLink"],
    &["metadata", "uid"],
    &["metadata", "clusterName"],
    &["metadata", "generation"],
    &["metadata", "managedFields"],
    &["metadata", "resourceVersion"],
];

/// Applies `applied` (the body of a server-side apply) to `live` (`None` to create) as
/// `manager`, and returns the object to store, with its `metadata.managedFields` updated.
///
/// The applied configuration is merged into the live object with the kind's merge keys; the
/// manager then owns exactly the fields it applied; fields it applied last time and omits now
/// are removed unless another manager owns them too; and a change to a field another manager
/// owns is a [`ApplyError::Conflict`], unless `force` moves the ownership. `now` (RFC 3339) is
/// the time recorded in the manager's entry when the object changes.
pub fn apply(
    api_version: &str,
    kind: &str,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    let schema = Kind::of(api_version, kind);
    let Value::Object(_) = applied else {
        return Err(ApplyError::BadRequest(
            "the applied configuration is not an object".to_owned(),
        ));
    };
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".to_owned(),
        ));
    }
    let mut config = without_nulls(applied);
    if schema.status_subresource
        && let Value::Object(fields) = &mut config
    {
        fields.remove("status");
    }

    let (live_object, mut managers) = match live {
        Some(live) => {
            let managers = Managers::decode(live).map_err(ApplyError::BadManagedFields)?;
            (without_managed_fields(live), managers)
        }
        None => (Value::Object(Map::new()), Managers::default()),
    };
    if live.is_some() && managers.0.is_empty() {
        // Upstream's skipNonAppliedManager: the fields already there belong to someone.
        let zero = schema::zero_object(schema.table);
        let cmp = schema.compare(&zero, &live_object);
        let mut set = cmp.added.union(&cmp.modified);
        schema.filter(&mut set, "");
        managers.0.push(Entry {
            manager: FieldManager {
                manager: BEFORE_FIRST_APPLY.to_owned(),
                operation: Operation::Update,
                api_version: api_version.to_owned(),
                subresource: String::new(),
            },
            time: Some(now.to_owned()),
            set,
        });
    }

    let mut applied_set = field_set(&config, &schema.root).map_err(ApplyError::Invalid)?;
    schema.filter(&mut applied_set, "");
    let id = FieldManager {
        manager: manager.to_owned(),
        operation: Operation::Apply,
        api_version: api_version.to_owned(),
        subresource: String::new(),
    };
    let last_set = managers.find(&id).map(|e| e.set.clone());
    let is_new = last_set.is_none();
    match managers.find_mut(&id) {
        Some(entry) => {
            entry.set = applied_set;
            entry.manager.api_version = api_version.to_owned();
        }
        None => managers.0.push(Entry {
            manager: id.clone(),
            time: None,
            set: applied_set,
        }),
    }

    let merged = merge(Some(&live_object), &config, &schema.root);
    let result = match &last_set {
        Some(last) => prune(merged, last, &managers, &schema.root),
        None => merged,
    };

    let mut cmp = schema.compare(&live_object, &result);
    schema.filter(&mut cmp.added, "");
    schema.filter(&mut cmp.modified, "");
    schema.filter(&mut cmp.removed, "");
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts = Vec::new();
    for entry in &managers.0 {
        if entry.manager.same_identity(&id) {
            continue;
        }
        for path in entry.set.intersection(&changed).paths() {
            conflicts.push((entry.manager.clone(), path));
        }
    }
    if !force && !conflicts.is_empty() {
        let allowed = if manager == KUBECTL {
            allowed_conflicts_from_last_applied(&live_object, &schema)
        } else {
            None
        };
        let remaining: Vec<(FieldManager, Path)> = conflicts
            .into_iter()
            .filter(|(_, path)| !allowed.as_ref().is_some_and(|a| a.has(path)))
            .collect();
        if !remaining.is_empty() {
            let mut conflicts: Vec<Conflict> = remaining
                .into_iter()
                .map(|(manager, path)| Conflict {
                    manager,
                    field: path_string(&path),
                })
                .collect();
            conflicts.sort_by_key(|c| c.manager.identity());
            return Err(ApplyError::Conflict { conflicts });
        }
    }
    for entry in &mut managers.0 {
        if !entry.manager.same_identity(&id) {
            entry.set = entry.set.difference(&changed).difference(&cmp.removed);
        }
    }
    let changed_object = !json_eq(&live_object, &result);
    if let Some(entry) = managers.find_mut(&id)
        && (is_new || changed_object || entry.time.is_none())
    {
        entry.time = Some(now.to_owned());
    }

    let mut result = result;
    if manager == KUBECTL {
        update_last_applied(&mut result, applied);
    }
    set_managed_fields(&mut result, managers.encode());
    Ok(result)
}

/// Records an `Update` by `manager`: a write that is not an apply (create with `old` `None`,
/// update, JSON/merge/strategic patch) and replaced `old` with `new`. Returns `new` with its
/// `metadata.managedFields` updated: the manager owns every field it added or changed, and no
/// other manager owns those any more (nor the fields it removed), so that a later apply by
/// another manager conflicts with it.
///
/// As upstream: managedFields the client set in `new` (kubectl's client-side to server-side
/// apply migration) are taken over instead of the old ones; `[{}]` clears them; and an object
/// that exists without managedFields is not tracked until it is applied.
pub fn record_update(
    api_version: &str,
    kind: &str,
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    now: &str,
) -> Value {
    record_subresource_update(api_version, kind, old, new, manager, "", now)
}

/// [`record_update`] for a write to a subresource (`status`): the manager is recorded with its
/// subresource and owns only what that subresource can change (`status`).
pub fn record_subresource_update(
    api_version: &str,
    kind: &str,
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    subresource: &str,
    now: &str,
) -> Value {
    let schema = Kind::of(api_version, kind);
    let mut result = new.clone();
    let sent = new.pointer("/metadata/managedFields");
    if let Some(Value::Array(entries)) = sent
        && let [Value::Object(only)] = entries.as_slice()
        && only.is_empty()
    {
        set_managed_fields(&mut result, None);
        return result;
    }
    let from_new = match Managers::decode(new) {
        Ok(managers) if !managers.0.is_empty() && subresource.is_empty() => Some(managers),
        _ => None,
    };
    let mut managers = match from_new {
        Some(managers) => managers,
        None => match old.map(Managers::decode).transpose() {
            Ok(managers) => managers.unwrap_or_default(),
            Err(_) => {
                // Upstream's UpdateNoErrors: managedFields it cannot read are dropped.
                set_managed_fields(&mut result, None);
                return result;
            }
        },
    };
    if old.is_some() && managers.0.is_empty() {
        set_managed_fields(&mut result, None);
        return result;
    }

    let old_object = match old {
        Some(old) => without_managed_fields(old),
        None => schema::zero_object(schema.table),
    };
    let new_object = without_managed_fields(new);
    let mut cmp = schema.compare(&old_object, &new_object);
    schema.filter(&mut cmp.added, subresource);
    schema.filter(&mut cmp.modified, subresource);
    schema.filter(&mut cmp.removed, subresource);
    let changed = cmp.modified.union(&cmp.added);

    let id = FieldManager {
        manager: manager.to_owned(),
        operation: Operation::Update,
        api_version: api_version.to_owned(),
        subresource: subresource.to_owned(),
    };
    for entry in &mut managers.0 {
        if !entry.manager.same_identity(&id) {
            entry.set = entry.set.difference(&changed).difference(&cmp.removed);
        }
    }
    match managers.find_mut(&id) {
        Some(entry) => {
            entry.set = entry.set.difference(&cmp.removed).union(&changed);
            if !changed.is_empty() {
                entry.time = Some(now.to_owned());
            }
        }
        None if !changed.is_empty() => managers.0.push(Entry {
            manager: id,
            time: Some(now.to_owned()),
            set: changed,
        }),
        None => {}
    }
    set_managed_fields(&mut result, managers.encode());
    result
}

fn set_managed_fields(object: &mut Value, managed_fields: Option<Value>) {
    let Value::Object(fields) = object else {
        return;
    };
    match managed_fields {
        Some(list) => {
            let metadata = fields
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(metadata) = metadata {
                metadata.insert("managedFields".to_owned(), list);
            }
        }
        None => {
            if let Some(Value::Object(metadata)) = fields.get_mut("metadata") {
                metadata.remove("managedFields");
            }
        }
    }
}

fn without_managed_fields(object: &Value) -> Value {
    let mut object = object.clone();
    set_managed_fields(&mut object, None);
    object
}

/// The value with every `null` field of every object removed: in an applied configuration a
/// `null` claims nothing and sets nothing.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        scalar => scalar.clone(),
    }
}

/// The path element of an item of an associative list: its key fields (with their defaults).
fn item_key(item: &Value, keys: &[schema::Key]) -> Result<PathElement, String> {
    let Value::Object(fields) = item else {
        return Err("associative list with keys has an element that is not a map".to_owned());
    };
    let mut key_fields: Vec<(String, Value)> = Vec::with_capacity(keys.len());
    for key in keys {
        match (fields.get(key.name), key.default) {
            (Some(value), _) if !value.is_null() => {
                key_fields.push((key.name.to_owned(), value.clone()));
            }
            (_, Some(default)) => {
                key_fields.push((key.name.to_owned(), Value::String(default.to_owned())));
            }
            _ => {
                return Err(format!(
                    "associative list with keys has an element that omits key field {:?} (and doesn't have default value)",
                    key.name
                ));
            }
        }
    }
    Ok(PathElement::key(key_fields.iter().map(|(k, v)| (k, v))))
}

/// The path element of a list item, if the list is not atomic.
fn item_element(item: &Value, list: SsaList) -> Result<PathElement, String> {
    match list {
        SsaList::Map(keys) => item_key(item, keys),
        SsaList::Set if !item.is_object() && !item.is_array() => {
            Ok(PathElement::Value(canonical(item)))
        }
        SsaList::Set => Err("a set has an element that is not a scalar".to_owned()),
        SsaList::Atomic => Err("an atomic list has no item paths".to_owned()),
    }
}

/// Upstream's `ToFieldSet` of an applied configuration: every leaf, every item of a set or
/// associative list, every atomic list or object. Empty objects are owned as leaves.
fn field_set(config: &Value, root: &Node) -> Result<Set, String> {
    let mut set = Set::new();
    collect_fields(config, root, &mut Vec::new(), &mut set)?;
    Ok(set)
}

fn collect_fields(
    value: &Value,
    node: &Node,
    path: &mut Path,
    set: &mut Set,
) -> Result<(), String> {
    match value {
        Value::Object(fields) => {
            if node.map().1 == SsaMap::Atomic || fields.is_empty() {
                set.insert(path);
                return Ok(());
            }
            for (name, child) in fields {
                path.push(PathElement::Field(name.clone()));
                collect_fields(child, &node.field(name), path, set)?;
                path.pop();
            }
        }
        Value::Array(items) => {
            let list = node.list().1;
            if list == SsaList::Atomic {
                set.insert(path);
                return Ok(());
            }
            let item_node = node.item();
            let mut seen: Vec<PathElement> = Vec::with_capacity(items.len());
            for item in items {
                let element =
                    item_element(item, list).map_err(|e| format!("{}: {e}", path_string(path)))?;
                if seen.contains(&element) {
                    return Err(format!(
                        "{}: duplicate entries for key {element}",
                        path_string(path)
                    ));
                }
                seen.push(element.clone());
                path.push(element);
                set.insert(path);
                if item.is_object() {
                    collect_fields(item, &item_node, path, set)?;
                }
                path.pop();
            }
        }
        _ => set.insert(path),
    }
    Ok(())
}

/// Upstream's `Comparison` of two objects.
#[derive(Default)]
struct Comparison {
    added: Set,
    modified: Set,
    removed: Set,
}

/// structured-merge-diff's `Compare`: leaves added, removed and changed; an object, list or
/// list item that appears or disappears is itself added or removed; atomic values are leaves;
/// an empty or absent container on both sides is a leaf.
fn compare(old: &Value, new: &Value, root: &Node) -> Comparison {
    let mut cmp = Comparison::default();
    compare_values(Some(old), Some(new), root, &mut Vec::new(), &mut cmp);
    cmp
}

fn compare_values(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    node: &Node,
    path: &mut Path,
    cmp: &mut Comparison,
) {
    let lhs = lhs.filter(|v| !v.is_null());
    let rhs = rhs.filter(|v| !v.is_null());
    if lhs.is_none() && rhs.is_none() {
        return;
    }
    let leaf = |cmp: &mut Comparison, path: &Path| match (lhs, rhs) {
        (None, _) => cmp.added.insert(path),
        (_, None) => cmp.removed.insert(path),
        (Some(l), Some(r)) if !json_eq(l, r) => cmp.modified.insert(path),
        _ => {}
    };
    let is_object = |v: Option<&Value>| v.is_none_or(Value::is_object);
    let is_array = |v: Option<&Value>| v.is_none_or(Value::is_array);
    let empty = |v: Option<&Value>| match v {
        None => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    };

    if is_object(lhs) && is_object(rhs) {
        if node.map().1 == SsaMap::Atomic || (empty(lhs) && empty(rhs)) {
            leaf(cmp, path);
            return;
        }
        compare_children(lhs, rhs, node, path, cmp);
    } else if is_array(lhs) && is_array(rhs) {
        if node.list().1 == SsaList::Atomic || (empty(lhs) && empty(rhs)) {
            leaf(cmp, path);
            return;
        }
        compare_children(lhs, rhs, node, path, cmp);
    } else if lhs.is_none_or(is_scalar) && rhs.is_none_or(is_scalar) {
        leaf(cmp, path);
        return;
    } else {
        // A value changed type: the path is modified, the children of either side are added
        // or removed.
        cmp.modified.insert(path);
        compare_children(lhs.filter(|v| !is_scalar(v)), None, node, path, cmp);
        compare_children(None, rhs.filter(|v| !is_scalar(v)), node, path, cmp);
        return;
    }
    match (lhs, rhs) {
        (None, _) => cmp.added.insert(path),
        (_, None) => cmp.removed.insert(path),
        _ => {}
    }
}

fn is_scalar(value: &Value) -> bool {
    !value.is_object() && !value.is_array()
}

/// Compares the fields or items of two containers of the same type (either may be absent).
fn compare_children(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    node: &Node,
    path: &mut Path,
    cmp: &mut Comparison,
) {
    match (lhs, rhs) {
        (Some(Value::Array(_)), _) | (_, Some(Value::Array(_))) => {
            let list = node.list().1;
            let item_node = node.item();
            let left = keyed_items(lhs, list);
            let right = keyed_items(rhs, list);
            let mut elements: Vec<&PathElement> = left.iter().map(|(e, _)| e).collect();
            for (element, _) in &right {
                if !elements.contains(&element) {
                    elements.push(element);
                }
            }
            for element in elements {
                let l = left.iter().find(|(e, _)| e == element).map(|(_, v)| *v);
                let r = right.iter().find(|(e, _)| e == element).map(|(_, v)| *v);
                path.push(element.clone());
                compare_values(l, r, &item_node, path, cmp);
                path.pop();
            }
        }
        _ => {
            let empty = Map::new();
            let l = lhs.and_then(Value::as_object).unwrap_or(&empty);
            let r = rhs.and_then(Value::as_object).unwrap_or(&empty);
            let mut names: Vec<&String> = l.keys().collect();
            for name in r.keys() {
                if !l.contains_key(name) {
                    names.push(name);
                }
            }
            for name in names {
                path.push(PathElement::Field(name.clone()));
                compare_values(l.get(name), r.get(name), &node.field(name), path, cmp);
                path.pop();
            }
        }
    }
}

/// The items of a list with their path elements; items without a valid key and repeated keys
/// are ignored, as upstream ignores them when comparing.
fn keyed_items(list: Option<&Value>, ssa: SsaList) -> Vec<(PathElement, &Value)> {
    let Some(Value::Array(items)) = list else {
        return Vec::new();
    };
    let mut out: Vec<(PathElement, &Value)> = Vec::with_capacity(items.len());
    for item in items {
        if let Ok(element) = item_element(item, ssa)
            && !out.iter().any(|(e, _)| *e == element)
        {
            out.push((element, item));
        }
    }
    out
}

/// structured-merge-diff's `Merge` of an applied configuration into a live object: objects
/// merge field by field, sets and associative lists item by item (the applied order wins for
/// the items it has, live-only items keep their place), anything atomic is replaced.
fn merge(lhs: Option<&Value>, rhs: &Value, node: &Node) -> Value {
    match (lhs, rhs) {
        (Some(Value::Object(live)), Value::Object(config)) if node.map().1 == SsaMap::Granular => {
            let mut out = live.clone();
            for (name, value) in config {
                let merged = merge(live.get(name), value, &node.field(name));
                out.insert(name.clone(), merged);
            }
            Value::Object(out)
        }
        (Some(Value::Array(live)), Value::Array(config)) if node.list().1 != SsaList::Atomic => {
            Value::Array(merge_items(live, config, node))
        }
        _ => rhs.clone(),
    }
}

/// The order structured-merge-diff gives a merged list: walking both lists, items in both are
/// emitted in the applied order, live-only items where they were, applied-only items where the
/// applied list has them.
fn merge_items(live: &[Value], config: &[Value], node: &Node) -> Vec<Value> {
    let list = node.list().1;
    let item_node = node.item();
    // Live items without a valid key, and repeats of a key, stay in place as live-only items.
    let mut lhs: Vec<(Option<PathElement>, &Value)> = Vec::with_capacity(live.len());
    for item in live {
        match item_element(item, list) {
            Ok(element) if !lhs.iter().any(|(e, _)| e.as_ref() == Some(&element)) => {
                lhs.push((Some(element), item));
            }
            _ => lhs.push((None, item)),
        }
    }
    let mut rhs: Vec<(PathElement, &Value)> = Vec::with_capacity(config.len());
    for item in config {
        if let Ok(element) = item_element(item, list)
            && !rhs.iter().any(|(e, _)| *e == element)
        {
            rhs.push((element, item));
        }
    }
    let in_rhs =
        |e: &Option<PathElement>| e.as_ref().is_some_and(|e| rhs.iter().any(|(r, _)| r == e));
    let live_item = |e: &PathElement| {
        lhs.iter()
            .find(|(l, _)| l.as_ref() == Some(e))
            .map(|(_, v)| *v)
    };
    let mut shared = rhs
        .iter()
        .filter(|(e, _)| live_item(e).is_some())
        .map(|(e, _)| e.clone());
    let mut next_shared = shared.next();

    let mut out = Vec::with_capacity(live.len() + config.len());
    let (mut l, mut r) = (0, 0);
    while l < lhs.len() || r < rhs.len() {
        if l < lhs.len() && r < rhs.len() {
            if lhs[l].0.as_ref() == Some(&rhs[r].0) {
                out.push(merge(Some(lhs[l].1), rhs[r].1, &item_node));
                l += 1;
                r += 1;
                next_shared = shared.next();
                continue;
            }
            if in_rhs(&lhs[l].0)
                && next_shared.as_ref() != lhs[l].0.as_ref()
                && next_shared.is_some()
            {
                // A shared item the applied list has later: emitted when reached there.
                l += 1;
                continue;
            }
        }
        if l < lhs.len() {
            if !in_rhs(&lhs[l].0) {
                out.push(lhs[l].1.clone());
                l += 1;
                continue;
            }
            if r >= rhs.len() {
                // Already emitted with the applied items.
                l += 1;
                continue;
            }
        }
        if r < rhs.len() {
            let (element, item) = &rhs[r];
            out.push(merge(live_item(element), item, &item_node));
            if next_shared.as_ref() == Some(element) {
                next_shared = shared.next();
            }
            r += 1;
        }
    }
    out
}

/// Removes from the merged object the fields the applier owned last time and no manager (the
/// applier's new configuration included) owns now; containers emptied by that go too. A map
/// or list item the applier owned as a whole (`"."`) stays while a manager still owns
/// something below it, as upstream adds owned items back after removing (`addBackOwnedItems`).
fn prune(merged: Value, last: &Set, managers: &Managers, root: &Node) -> Value {
    let owned = managers.all();
    let mut remove = Set::new();
    for path in last.paths() {
        if !owned.has(&path) && !owns_below(&owned, &path) {
            remove.insert(&path);
        }
    }
    if remove.is_empty() {
        return merged;
    }
    let mut merged = merged;
    remove_paths(&mut merged, &remove, root);
    merged
}

/// Whether `owned` has a member below `path`.
fn owns_below(owned: &Set, path: &[PathElement]) -> bool {
    let mut set = owned;
    for element in path {
        match set.child(element) {
            Some(child) => set = child,
            None => return false,
        }
    }
    !set.is_empty()
}

/// structured-merge-diff's `RemoveItems`: removes the members of `set` from `value`; objects
/// and lists emptied on the way are removed too.
fn remove_paths(value: &mut Value, set: &Set, node: &Node) {
    match value {
        Value::Object(fields) => {
            let names: Vec<String> = fields.keys().cloned().collect();
            for name in names {
                let element = PathElement::Field(name.clone());
                if set.has(std::slice::from_ref(&element)) {
                    fields.remove(&name);
                } else if let Some(child) = set.child(&element)
                    && let Some(field) = fields.get_mut(&name)
                {
                    remove_paths(field, child, &node.field(&name));
                    if is_empty_container(field) {
                        fields.remove(&name);
                    }
                }
            }
        }
        Value::Array(items) => {
            let list = node.list().1;
            if list == SsaList::Atomic {
                return;
            }
            let item_node = node.item();
            items.retain_mut(|item| {
                let Ok(element) = item_element(item, list) else {
                    return true;
                };
                if set.has(std::slice::from_ref(&element)) {
                    return false;
                }
                if let Some(child) = set.child(&element) {
                    remove_paths(item, child, &item_node);
                    return !is_empty_container(item);
                }
                true
            });
        }
        _ => {}
    }
}

fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(fields) => fields.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Upstream's `lastAppliedManager`: the fields of the client-side apply annotation whose live
/// value is still the one last applied. An apply by `kubectl` may take those over without a
/// conflict (the move from client-side to server-side apply).
fn allowed_conflicts_from_last_applied(live: &Value, schema: &Kind) -> Option<Set> {
    let text = live
        .pointer("/metadata/annotations")?
        .get(LAST_APPLIED)?
        .as_str()?;
    let last_applied: Value = serde_json::from_str(text).ok()?;
    let last_set = field_set(&last_applied, &schema.root).ok()?;
    let cmp = schema.compare(&last_applied, live);
    let differs = cmp.modified.union(&cmp.added).union(&cmp.removed);
    Some(last_set.difference(&differs))
}

/// Upstream's `lastAppliedUpdater`: after an apply by `kubectl`, a client-side apply annotation
/// on the object is replaced by the applied configuration (without the annotation), so that a
/// later client-side apply starts from it.
fn update_last_applied(object: &mut Value, applied: &Value) {
    let Some(Value::Object(annotations)) = object.pointer_mut("/metadata/annotations") else {
        return;
    };
    if !annotations.contains_key(LAST_APPLIED) {
        return;
    }
    let mut config = applied.clone();
    if let Some(Value::Object(applied_annotations)) = config.pointer_mut("/metadata/annotations") {
        applied_annotations.remove(LAST_APPLIED);
    }
    let mut text = canonical(&config);
    text.push('\n');
    annotations.insert(LAST_APPLIED.to_owned(), Value::String(text));
}
