//! Field paths and sets of field paths, as sigs.k8s.io/structured-merge-diff's `fieldpath`
//! package has them, and their `FieldsV1` encoding in `metadata.managedFields`:
//!
//! ```text
//! {"f:spec":{"f:replicas":{},"f:template":{"f:spec":{"f:containers":{
//!     "k:{\"name\":\"app\"}":{".":{},"f:image":{},"f:name":{}}}}}}}
//! ```
//!
//! `f:<name>` is a field, `k:<json object>` an item of an associative list by its keys (sorted
//! by name), `v:<json>` an item of a set, `i:<n>` an item of an atomic-by-position list, and
//! `"."` inside a child marks that the child itself is a member, not only its descendants.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

use super::value::canonical;

/// One step of a path. The variant order is structured-merge-diff's order: fields, keys,
/// values, indices.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum PathElement {
    /// A field of an object.
    Field(String),
    /// An item of an associative list: its key fields, sorted by name, each with the canonical
    /// JSON of its value.
    Key(Vec<(String, String)>),
    /// An item of a set: the canonical JSON of the value.
    Value(String),
    /// An item of a list by position (not produced by podvisor's schemas, accepted on decode).
    Index(usize),
}

impl PathElement {
    /// The `FieldsV1` form: `f:name`, `k:{"name":"app"}`, `v:"x"`, `i:0`.
    fn encode(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(name, value)| format!("{}:{value}", Value::String(name.clone())))
                    .collect();
                format!("k:{{{}}}", fields.join(","))
            }
            PathElement::Value(value) => format!("v:{value}"),
            PathElement::Index(index) => format!("i:{index}"),
        }
    }

    fn decode(text: &str) -> Result<PathElement, String> {
        let invalid = || format!("invalid path element {text:?}");
        let (prefix, rest) = text.split_once(':').ok_or_else(invalid)?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_owned())),
            "k" => {
                let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(rest) else {
                    return Err(invalid());
                };
                Ok(PathElement::key(fields.iter()))
            }
            "v" => {
                let value: Value = serde_json::from_str(rest).map_err(|_| invalid())?;
                Ok(PathElement::Value(canonical(&value)))
            }
            "i" => rest.parse().map(PathElement::Index).map_err(|_| invalid()),
            _ => Err(invalid()),
        }
    }

    /// The key element of an associative list item from its key fields.
    pub(crate) fn key<'a>(fields: impl Iterator<Item = (&'a String, &'a Value)>) -> PathElement {
        let mut fields: Vec<(String, String)> =
            fields.map(|(k, v)| (k.clone(), canonical(v))).collect();
        fields.sort();
        PathElement::Key(fields)
    }
}

/// structured-merge-diff's `PathElement.String()`: `.name`, `[name="app"]`, `[="x"]`, `[0]`.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                write!(f, "[{}]", fields.join(","))
            }
            PathElement::Value(value) => write!(f, "[={value}]"),
            PathElement::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// A path from the root of an object.
pub(crate) type Path = Vec<PathElement>;

/// A path as upstream prints it in conflicts: `.spec.template.spec.containers[name="app"].image`.
pub(crate) fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A set of paths, stored as a tree: `members` are the paths that end here, `children` the
/// subtrees. As upstream, a child is never empty and the empty path is never a member (the
/// object as a whole is not owned).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Set {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, Set>,
}

impl Set {
    pub(crate) fn new() -> Set {
        Set::default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    pub(crate) fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether `path` is a member.
    pub(crate) fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// Removes `path` if it is a member (not its descendants).
    pub(crate) fn remove(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.remove(last);
            }
            [first, rest @ ..] => {
                if let Some(child) = self.children.get_mut(first) {
                    child.remove(rest);
                    if child.is_empty() {
                        self.children.remove(first);
                    }
                }
            }
        }
    }

    /// Removes the top-level `element` and everything below it (upstream's
    /// `RecursiveDifference` with one path).
    pub(crate) fn remove_subtree(&mut self, element: &PathElement) {
        self.members.remove(element);
        self.children.remove(element);
    }

    /// Keeps only the top-level `element` and everything below it.
    pub(crate) fn retain_only(&mut self, element: &PathElement) {
        self.members.retain(|m| m == element);
        self.children.retain(|e, _| e == element);
    }

    /// The subtree below `element`, if any.
    pub(crate) fn child(&self, element: &PathElement) -> Option<&Set> {
        self.children.get(element)
    }

    pub(crate) fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (element, child) in &other.children {
            let merged = match out.children.get(element) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(element.clone(), merged);
        }
        out
    }

    /// The members of `self` that are not members of `other` (descendants of a member of
    /// `other` stay, as upstream's non-recursive `Difference`).
    pub(crate) fn difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (element, child) in &self.children {
            let child = match other.children.get(element) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !child.is_empty() {
                children.insert(element.clone(), child);
            }
        }
        Set { members, children }
    }

    pub(crate) fn intersection(&self, other: &Set) -> Set {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (element, child) in &self.children {
            if let Some(theirs) = other.children.get(element) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    children.insert(element.clone(), both);
                }
            }
        }
        Set { members, children }
    }

    /// Upstream's `EnsureNamedFieldsAreMembers`: the set with every field that has members
    /// below it made a member too. Upstream does this for the fields of structs only, not for
    /// the keys of maps; podvisor's schemas do not tell structs from maps, so every field counts
    /// (see `apply::prune` for what that changes).
    pub(crate) fn with_field_parents(&self) -> Set {
        let mut members = self.members.clone();
        let mut children = BTreeMap::new();
        for (element, child) in &self.children {
            if matches!(element, PathElement::Field(_)) {
                members.insert(element.clone());
            }
            children.insert(element.clone(), child.with_field_parents());
        }
        Set { members, children }
    }

    /// Every member path, in order (a node before its descendants).
    pub(crate) fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        // Members and children interleaved in element order, a member before its subtree.
        let elements: BTreeSet<&PathElement> =
            self.members.iter().chain(self.children.keys()).collect();
        for element in elements {
            prefix.push(element.clone());
            if self.members.contains(element) {
                out.push(prefix.clone());
            }
            if let Some(child) = self.children.get(element) {
                child.collect(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The `fieldsV1` object of a managedFields entry.
    pub(crate) fn to_fields_v1(&self) -> Value {
        Value::Object(self.encode(false))
    }

    fn encode(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self && !self.is_empty() {
            out.insert(".".to_owned(), Value::Object(Map::new()));
        }
        for member in &self.members {
            if !self.children.contains_key(member) {
                out.insert(member.encode(), Value::Object(Map::new()));
            }
        }
        for (element, child) in &self.children {
            let is_member = self.members.contains(element);
            out.insert(element.encode(), Value::Object(child.encode(is_member)));
        }
        out
    }

    /// Decodes the `fieldsV1` object of a managedFields entry.
    pub(crate) fn from_fields_v1(value: &Value) -> Result<Set, String> {
        let Value::Object(map) = value else {
            return Err("fieldsV1 is not an object".to_owned());
        };
        let mut set = Set::new();
        for (key, child) in map {
            if key == "." {
                continue;
            }
            let element = PathElement::decode(key)?;
            let Value::Object(fields) = child else {
                return Err(format!("the value of {key:?} is not an object"));
            };
            if fields.is_empty() || fields.contains_key(".") {
                set.members.insert(element.clone());
            }
            let decoded = Set::from_fields_v1(child)?;
            if !decoded.is_empty() {
                set.children.insert(element, decoded);
            }
        }
        Ok(set)
    }
}
