//! Manifest sources and documents: reading files, folders and stdin, splitting YAML and JSON
//! streams into documents, and decoding each document into a typed object the way `kubectl
//! apply` and the API server would, with every problem reported at once.
//!
//! Two stages, as in kubectl:
//! 1. [`load`] turns paths into [`Document`]s: untyped JSON values with their source and
//!    position. Folders are read recursively (`.yaml`, `.yml`, `.json`, sorted by path), `-` is
//!    stdin, YAML streams are split on `---`, empty documents are skipped and `List` objects are
//!    expanded into their items.
//! 2. [`decode`] / [`decode_all`] turn each document into a [`DocumentReport`]: the typed
//!    [`Object`] if the document is valid, otherwise errors; plus warnings. Unknown and duplicate
//!    fields are handled as `kubectl apply --validate` does ([`FieldValidation`]); defaults and
//!    validation come from the kind's module (`model::pod`, `model::config`, `model::service`,
//!    `model::endpoints`, `model::namespace`); fields podvisor does not implement come from `model::unimplemented`.
//!
//! The API server decodes request bodies through the same code ([`decode_for_api`]), with the
//! problems sorted the way it answers them (400 BadRequest, 422 Invalid, warnings) and two more
//! kinds it serves but manifests do not create (`v1` Event, `coordination.k8s.io/v1` Lease).
//!
//! Pure apart from reading the files (and stdin) it is given: no tokio, no processes, no network.
//! It never applies anything; it only answers "what do these files ask for, and is it valid".

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, Namespace, Pod, ReplicationController, Secret, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::field::{FieldError, FieldPath};
use crate::model::{
    config, endpoints, event, lease, namespace, pod, service, unimplemented, workload,
};

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod tests;

/// The source name of documents read from standard input.
pub const STDIN_SOURCE: &str = "<stdin>";

/// The file extensions read from folders, as kubectl does.
pub const MANIFEST_EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// One object of a manifest source, before decoding.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// The path as given (or found in a given folder), or [`STDIN_SOURCE`].
    pub source: String,
    /// 0-based position of this object in its source, counting non-empty documents and the
    /// items of `List` documents one by one.
    pub index: usize,
    /// The object as parsed, with duplicate keys resolved as kubectl does (the last one wins).
    pub value: Value,
    /// Keys that appeared more than once in the same mapping, by path. Strict field validation
    /// rejects them; see [`FieldValidation`].
    pub duplicate_fields: Vec<FieldPath>,
}

/// Why a manifest source could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file (or stdin) could not be read.
    #[error("failed to read manifest `{path}`")]
    Read {
        /// The path as given, or [`STDIN_SOURCE`].
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A folder could not be listed.
    #[error("failed to read folder `{path}`")]
    ReadDir {
        /// The folder, as given or found below a given folder.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A folder holds no file with a manifest extension.
    #[error("no manifest files (*.yaml, *.yml, *.json) in folder `{path}`")]
    EmptyDir {
        /// The folder as given.
        path: String,
    },
    /// A source is not UTF-8.
    #[error("manifest `{path}` is not valid UTF-8")]
    NotUtf8 {
        /// The path as given, or [`STDIN_SOURCE`].
        path: String,
    },
    /// A source is not valid YAML or JSON.
    #[error("failed to parse `{path}`{}: {message}", render_position(*line, *column))]
    Parse {
        /// The path as given, or [`STDIN_SOURCE`].
        path: String,
        /// 1-based line of the problem, when the parser gives it.
        line: Option<u64>,
        /// 1-based column of the problem, when the parser gives it.
        column: Option<u64>,
        /// The parser's message, without the position.
        message: String,
    },
}

impl LoadError {
    /// The source this error is about: a path as given or found, or [`STDIN_SOURCE`].
    pub fn path(&self) -> &str {
        match self {
            LoadError::Read { path, .. }
            | LoadError::ReadDir { path, .. }
            | LoadError::EmptyDir { path }
            | LoadError::NotUtf8 { path }
            | LoadError::Parse { path, .. } => path,
        }
    }
}

fn render_position(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
        (Some(line), None) => format!(" at line {line}"),
        _ => String::new(),
    }
}

/// How unknown and duplicate fields are treated: kubectl's `--validate` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown and duplicate fields are errors (`--validate=strict`, also `true`; the default).
    #[default]
    Strict,
    /// Unknown and duplicate fields are warnings (`--validate=warn`).
    Warn,
    /// Unknown and duplicate fields are dropped silently (`--validate=ignore`, also `false`).
    Ignore,
}

/// A `--validate` value that is none of kubectl's.
#[derive(Debug, thiserror::Error)]
#[error("invalid --validate value {0:?}: must be one of strict, warn, ignore, true, false")]
pub struct ParseFieldValidationError(
    /// The value given.
    pub String,
);

impl FromStr for FieldValidation {
    type Err = ParseFieldValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" | "true" => Ok(FieldValidation::Strict),
            "warn" => Ok(FieldValidation::Warn),
            "ignore" | "false" => Ok(FieldValidation::Ignore),
            other => Err(ParseFieldValidationError(other.to_owned())),
        }
    }
}

impl fmt::Display for FieldValidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FieldValidation::Strict => "strict",
            FieldValidation::Warn => "warn",
            FieldValidation::Ignore => "ignore",
        })
    }
}

/// A typed object decoded from a document, one variant per served kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    /// A `v1` `Pod`, defaulted and valid.
    Pod(Box<Pod>),
    /// A `v1` `ConfigMap`, valid.
    ConfigMap(Box<ConfigMap>),
    /// A `v1` `Secret`, defaulted (`type`, `stringData` merged into `data`) and valid.
    Secret(Box<Secret>),
    /// A `v1` `Namespace`, defaulted (no `metadata.namespace`, the name label, the
    /// `kubernetes` finalizer, `phase: Active`) and valid.
    Namespace(Box<Namespace>),
    /// A `v1` `Service`, defaulted, with its IP family fields set, and valid; the store
    /// allocates its cluster IP and node ports.
    Service(Box<Service>),
    /// A `v1` `Endpoints` (the endpoints of a Service without selector), defaulted and valid.
    Endpoints(Box<Endpoints>),
    /// A `discovery.k8s.io/v1` `EndpointSlice`, defaulted and valid.
    EndpointSlice(Box<EndpointSlice>),
    /// An `apps/v1` `Deployment`, defaulted (strategy, limits, the template's pod spec) and
    /// valid, with an empty status on create.
    Deployment(Box<Deployment>),
    /// An `apps/v1` `ReplicaSet`, defaulted and valid, with an empty status on create.
    ReplicaSet(Box<ReplicaSet>),
    /// A `v1` `ReplicationController`, defaulted (selector from the template's labels) and
    /// valid, with an empty status on create.
    ReplicationController(Box<ReplicationController>),
}

impl Object {
    /// The object's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Pod(_) => "Pod",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Secret(_) => "Secret",
            Object::Namespace(_) => "Namespace",
            Object::Service(_) => "Service",
            Object::Endpoints(_) => "Endpoints",
            Object::EndpointSlice(_) => "EndpointSlice",
            Object::Deployment(_) => "Deployment",
            Object::ReplicaSet(_) => "ReplicaSet",
            Object::ReplicationController(_) => "ReplicationController",
        }
    }

    /// The object's `apiVersion`.
    pub fn api_version(&self) -> &'static str {
        match self {
            Object::Pod(_)
            | Object::ConfigMap(_)
            | Object::Secret(_)
            | Object::Namespace(_)
            | Object::Service(_)
            | Object::Endpoints(_)
            | Object::ReplicationController(_) => "v1",
            Object::EndpointSlice(_) => "discovery.k8s.io/v1",
            Object::Deployment(_) | Object::ReplicaSet(_) => "apps/v1",
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Pod(pod) => &pod.metadata,
            Object::ConfigMap(config_map) => &config_map.metadata,
            Object::Secret(secret) => &secret.metadata,
            Object::Namespace(namespace) => &namespace.metadata,
            Object::Service(service) => &service.metadata,
            Object::Endpoints(endpoints) => &endpoints.metadata,
            Object::EndpointSlice(slice) => &slice.metadata,
            Object::Deployment(d) => &d.metadata,
            Object::ReplicaSet(rs) => &rs.metadata,
            Object::ReplicationController(rc) => &rc.metadata,
        }
    }

    /// The object as Kubernetes JSON, with `apiVersion` and `kind`.
    pub fn to_json(&self) -> Value {
        let value = match self {
            Object::Pod(pod) => serde_json::to_value(pod),
            Object::ConfigMap(config_map) => serde_json::to_value(config_map),
            Object::Secret(secret) => serde_json::to_value(secret),
            Object::Namespace(namespace) => serde_json::to_value(namespace),
            Object::Service(service) => serde_json::to_value(service),
            Object::Endpoints(endpoints) => serde_json::to_value(endpoints),
            Object::EndpointSlice(slice) => serde_json::to_value(slice),
            Object::Deployment(d) => serde_json::to_value(d),
            Object::ReplicaSet(rs) => serde_json::to_value(rs),
            Object::ReplicationController(rc) => serde_json::to_value(rc),
        };
        // Why no error: k8s-openapi types always serialize (string keys, finite numbers).
        value.unwrap_or(Value::Null)
    }
}

/// A kind podvisor serves: documents of other kinds are rejected with a clear error.
pub struct ServedKind {
    /// The `apiVersion` documents of this kind must have.
    pub api_version: &'static str,
    /// The `kind`.
    pub kind: &'static str,
    /// Whether objects of this kind live in a namespace.
    pub namespaced: bool,
    /// Decodes, defaults and validates one document of this kind.
    decode: fn(&Value, &mut Decoder) -> Option<Object>,
}

/// The kinds manifests may hold. Adding a kind: a row here, a variant of [`Object`], a decode
/// function like [`decode_pod`], and a table in `model::unimplemented`.
pub static SUPPORTED_KINDS: &[ServedKind] = &[
    ServedKind {
        api_version: "v1",
        kind: "Pod",
        namespaced: true,
        decode: decode_pod,
    },
    ServedKind {
        api_version: "v1",
        kind: "ConfigMap",
        namespaced: true,
        decode: decode_config_map,
    },
    ServedKind {
        api_version: "v1",
        kind: "Secret",
        namespaced: true,
        decode: decode_secret,
    },
    ServedKind {
        api_version: "v1",
        kind: "Namespace",
        namespaced: false,
        decode: decode_namespace,
    },
    ServedKind {
        api_version: "v1",
        kind: "Service",
        namespaced: true,
        decode: decode_service,
    },
    ServedKind {
        api_version: "v1",
        kind: "Endpoints",
        namespaced: true,
        decode: decode_endpoints,
    },
    ServedKind {
        api_version: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        namespaced: true,
        decode: decode_endpoint_slice,
    },
    ServedKind {
        api_version: "apps/v1",
        kind: "Deployment",
        namespaced: true,
        decode: decode_deployment,
    },
    ServedKind {
        api_version: "apps/v1",
        kind: "ReplicaSet",
        namespaced: true,
        decode: decode_replica_set,
    },
    ServedKind {
        api_version: "v1",
        kind: "ReplicationController",
        namespaced: true,
        decode: decode_replication_controller,
    },
];

/// `Pod (v1), …`: the served kinds, for messages.
pub fn supported_kinds_list() -> String {
    SUPPORTED_KINDS
        .iter()
        .map(|k| format!("{} ({})", k.kind, k.api_version))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The outcome of decoding one document: what it is, the object if it is valid, and every
/// problem found. Every error and warning line is fully prefixed with [`Self::display_name`],
/// so it can be printed alone.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentReport {
    /// The document's source, as in [`Document::source`].
    pub source: String,
    /// The document's index in its source, as in [`Document::index`].
    pub index: usize,
    /// The document's `apiVersion`, if it has one.
    pub api_version: Option<String>,
    /// The document's `kind`, if it has one.
    pub kind: Option<String>,
    /// The document's namespace: `metadata.namespace`, or `default` when missing; empty for
    /// a cluster-scoped kind (`Namespace`).
    pub namespace: String,
    /// The document's `metadata.name`, if it has one.
    pub name: Option<String>,
    /// The decoded, defaulted object: `Some` if and only if `errors` is empty.
    pub object: Option<Object>,
    /// The decoded, defaulted object even when validation found errors (None only when the
    /// document could not be typed), so later checks can still report every problem.
    pub decoded: Option<Object>,
    /// Errors, each a full line (`app.yaml: Pod "web": spec.containers[0].name: Required value`).
    pub errors: Vec<String>,
    /// Warnings, each a full line.
    pub warnings: Vec<String>,
}

impl DocumentReport {
    /// How messages name this document: `app.yaml: Pod "web"`, `app.yaml: Pod "prod/web"`
    /// outside the `default` namespace (`app.yaml: Namespace "prod"` for cluster-scoped kinds),
    /// `app.yaml: document 3: Pod` without a name (1-based), `app.yaml: document 3` without a
    /// kind.
    pub fn display_name(&self) -> String {
        display_name(
            &self.source,
            self.index,
            self.kind.as_deref(),
            &self.namespace,
            self.name.as_deref(),
        )
    }

    /// Whether the document has neither errors nor warnings.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty() && self.warnings.is_empty()
    }

    /// Adds an error line (prefixed with the display name) and drops the object, keeping
    /// "`object` is `Some` iff there are no errors" true.
    pub fn push_error(&mut self, message: impl fmt::Display) {
        self.errors
            .push(format!("{}: {message}", self.display_name()));
        self.object = None;
    }

    /// Adds a warning line, prefixed with the display name.
    pub fn push_warning(&mut self, message: impl fmt::Display) {
        self.warnings
            .push(format!("{}: {message}", self.display_name()));
    }
}

fn display_name(
    source: &str,
    index: usize,
    kind: Option<&str>,
    namespace: &str,
    name: Option<&str>,
) -> String {
    match (kind, name) {
        (Some(kind), Some(name)) if namespace == DEFAULT_NAMESPACE || namespace.is_empty() => {
            format!("{source}: {kind} {name:?}")
        }
        (Some(kind), Some(name)) => format!("{source}: {kind} \"{namespace}/{name}\""),
        (Some(kind), None) => format!("{source}: document {}: {kind}", index + 1),
        (None, _) => format!("{source}: document {}", index + 1),
    }
}

/// The namespace of objects that do not name one.
pub const DEFAULT_NAMESPACE: &str = "default";

// ---------------------------------------------------------------------------------------------
// Loading.
// ---------------------------------------------------------------------------------------------

/// Reads every path (file, folder, or `-` for stdin) and returns all documents in order, or
/// the first error. For `up`, where nothing may be half-applied.
pub fn load(paths: &[String]) -> Result<Vec<Document>, LoadError> {
    load_from(paths, io::stdin().lock())
}

/// [`load`] with `stdin` standing for `-`.
pub fn load_from(paths: &[String], stdin: impl Read) -> Result<Vec<Document>, LoadError> {
    let mut documents = Vec::new();
    for loaded in load_each(paths, stdin) {
        documents.extend(loaded?);
    }
    Ok(documents)
}

/// Reads every path and returns one result per source, in order: one per file (folders are
/// expanded into their files, sorted by path), one for stdin, and one error for a folder that
/// cannot be listed or holds no manifest. For `check`, which reports every source.
pub fn load_each(paths: &[String], mut stdin: impl Read) -> Vec<Result<Vec<Document>, LoadError>> {
    let mut results = Vec::new();
    for path in paths {
        if path == "-" {
            let mut bytes = Vec::new();
            results.push(match stdin.read_to_end(&mut bytes) {
                Ok(_) => parse(STDIN_SOURCE, &bytes),
                Err(source) => Err(LoadError::Read {
                    path: STDIN_SOURCE.to_owned(),
                    source,
                }),
            });
            continue;
        }
        let is_dir = match fs::metadata(path) {
            Ok(metadata) => metadata.is_dir(),
            Err(source) => {
                results.push(Err(LoadError::Read {
                    path: path.clone(),
                    source,
                }));
                continue;
            }
        };
        if !is_dir {
            results.push(read_file(path));
            continue;
        }
        let mut files = Vec::new();
        if let Err(error) = find_manifest_files(Path::new(path), &mut files) {
            results.push(Err(error));
            continue;
        }
        if files.is_empty() {
            results.push(Err(LoadError::EmptyDir { path: path.clone() }));
            continue;
        }
        files.sort();
        for file in files {
            results.push(read_file(&file.to_string_lossy()));
        }
    }
    results
}

fn read_file(path: &str) -> Result<Vec<Document>, LoadError> {
    let bytes = fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &bytes)
}

/// Collects the manifest files below `dir`, recursively. Like kubectl (`filepath.Walk`),
/// symbolic links to folders are not followed; symbolic links to files are read.
fn find_manifest_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let read_dir_error = |source| LoadError::ReadDir {
        path: dir.to_string_lossy().into_owned(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(read_dir_error)? {
        let entry = entry.map_err(read_dir_error)?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(read_dir_error)?;
        if file_type.is_dir() {
            find_manifest_files(&path, files)?;
        } else if has_manifest_extension(&path) {
            files.push(path);
        }
    }
    Ok(())
}

fn has_manifest_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MANIFEST_EXTENSIONS.contains(&e))
}

/// Splits the bytes of one source into documents. Like kubectl, the content decides the
/// format, not the file name: a source whose first non-blank character is `{` is a stream of
/// JSON objects (or, outside `.json` files and failing that, YAML); anything else is a stream
/// of YAML documents. Empty and `null` documents are skipped; `List` documents are replaced by
/// their items.
pub fn parse(source: &str, bytes: &[u8]) -> Result<Vec<Document>, LoadError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 {
        path: source.to_owned(),
    })?;
    let raws = if text.trim_start().starts_with('{') {
        // kubectl stops at the JSON error; but a YAML flow mapping also starts with `{`, so
        // outside `.json` files YAML is tried before giving up.
        match parse_json_stream(source, text) {
            Ok(raws) => raws,
            Err(json_error) if source.ends_with(".json") => return Err(json_error),
            Err(json_error) => parse_yaml_stream(source, text).map_err(|_| json_error)?,
        }
    } else {
        parse_yaml_stream(source, text)?
    };
    let mut documents = Vec::new();
    for raw in raws {
        push_documents(source, raw.value, raw.duplicates, &mut documents);
    }
    Ok(documents)
}

fn parse_json_stream(source: &str, text: &str) -> Result<Vec<Raw>, LoadError> {
    let mut raws = Vec::new();
    for raw in serde_json::Deserializer::from_str(text).into_iter::<Raw>() {
        let raw = raw.map_err(|e| LoadError::Parse {
            path: source.to_owned(),
            line: Some(e.line() as u64),
            column: Some(e.column() as u64),
            message: json_message(&e),
        })?;
        raws.push(raw);
    }
    Ok(raws)
}

/// YAML as kubectl reads it (go-yaml v2, YAML 1.1): `yes`/`on` are booleans and `0644` is octal.
fn parse_yaml_stream(source: &str, text: &str) -> Result<Vec<Raw>, LoadError> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options.legacy_octal_numbers = true;
    // Duplicate keys reach `RawVisitor`, which records them; the last one wins as in kubectl.
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    serde_saphyr::from_str_multiple_with_options::<Raw, Vec<Raw>>(text, options).map_err(|e| {
        let location = e.location();
        let line = location.map(|l| l.line());
        let column = location.map(|l| l.column());
        let mut message = e.to_string();
        if let (Some(line), Some(column)) = (line, column) {
            let suffix = format!(" at line {line}, column {column}");
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_owned();
            }
        }
        LoadError::Parse {
            path: source.to_owned(),
            line,
            column,
            message,
        }
    })
}

/// A serde_json error message without its ` at line L column C` suffix.
fn json_message(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&suffix) {
        Some(stripped) => stripped.to_owned(),
        None => message,
    }
}

/// Appends one parsed document, expanding lists (`kind: List`, and typed lists such as
/// `PodList`, whose items get the list's apiVersion and the item kind when they have none, as
/// apimachinery does).
fn push_documents(
    source: &str,
    value: Value,
    duplicates: Vec<Vec<Seg>>,
    documents: &mut Vec<Document>,
) {
    if value.is_null() {
        return;
    }
    if let Some(list_kind) = list_kind(&value) {
        let list_api_version = value.get("apiVersion").cloned();
        let item_kind = list_kind
            .strip_suffix("List")
            .unwrap_or_default()
            .to_owned();
        let Value::Object(mut list) = value else {
            unreachable!("list_kind only matches objects")
        };
        let Some(Value::Array(items)) = list.remove("items") else {
            unreachable!("list_kind only matches objects with an items list")
        };
        for (i, mut item) in items.into_iter().enumerate() {
            let item_duplicates = duplicates
                .iter()
                .filter_map(|path| match path.as_slice() {
                    [Seg::Key(items), Seg::Index(j), rest @ ..] if items == "items" && *j == i => {
                        Some(rest.to_vec())
                    }
                    _ => None,
                })
                .collect();
            if let Value::Object(fields) = &mut item
                && !item_kind.is_empty()
                && !fields.contains_key("kind")
            {
                fields.insert("kind".to_owned(), Value::String(item_kind.clone()));
                if let Some(api_version) = &list_api_version {
                    fields
                        .entry("apiVersion")
                        .or_insert_with(|| api_version.clone());
                }
            }
            push_documents(source, item, item_duplicates, documents);
        }
        return;
    }
    documents.push(Document {
        source: source.to_owned(),
        index: documents.len(),
        value,
        duplicate_fields: duplicates.iter().map(|p| render_path(p)).collect(),
    });
}

/// The kind of a list document: `List` (v1) or any `…List` kind with an `items` array.
fn list_kind(value: &Value) -> Option<&str> {
    let kind = value.get("kind")?.as_str()?;
    (kind.ends_with("List") && value.get("items").is_some_and(Value::is_array)).then_some(kind)
}

/// One step of a path inside a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// Renders a path as upstream's strict decoding does (`spec.containers[0].name`); map keys
/// that are not plain words are bracketed (`metadata.labels[app.kubernetes.io/name]`) so the
/// path stays unambiguous.
pub(crate) fn render_path(path: &[Seg]) -> FieldPath {
    let mut out = FieldPath::default();
    for seg in path {
        out = match seg {
            Seg::Key(key) if is_plain_key(key) => out.child(key),
            Seg::Key(key) => out.key(key),
            Seg::Index(i) => out.index(*i),
        };
    }
    out
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A parsed document: its value plus the paths of keys that appeared more than once.
struct Raw {
    value: Value,
    duplicates: Vec<Vec<Seg>>,
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

/// Builds a JSON value like `serde_json::Value`'s own visitor, but records duplicate keys.
struct RawVisitor;

impl RawVisitor {
    fn scalar(value: Value) -> Raw {
        Raw {
            value,
            duplicates: Vec::new(),
        }
    }
}

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        Ok(Self::scalar(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Self::scalar(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(Self::scalar(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        serde_json::Number::from_f64(v)
            .map(|n| Self::scalar(Value::Number(n)))
            .ok_or_else(|| E::custom(format!("number {v} is not finite")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        Ok(Self::scalar(Value::String(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Raw, E> {
        Ok(Self::scalar(Value::String(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Self::scalar(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Self::scalar(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
        Raw::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
        Raw::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut values = Vec::new();
        let mut duplicates = Vec::new();
        while let Some(item) = seq.next_element::<Raw>()? {
            let index = values.len();
            duplicates.extend(item.duplicates.into_iter().map(|mut path| {
                path.insert(0, Seg::Index(index));
                path
            }));
            values.push(item.value);
        }
        Ok(Raw {
            value: Value::Array(values),
            duplicates,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut fields = Map::new();
        let mut duplicates = Vec::new();
        while let Some(key) = map.next_key::<Raw>()? {
            // Like sigs.k8s.io/yaml, scalar keys become strings; others cannot be JSON.
            let key = match key.value {
                Value::String(s) => s,
                Value::Null => "null".to_owned(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                other => {
                    return Err(de::Error::custom(format!(
                        "a mapping key must be a string, not {}",
                        json_type_name(&other)
                    )));
                }
            };
            let item: Raw = map.next_value()?;
            if fields.contains_key(&key) {
                // The nested duplicates of the earlier value are gone with it.
                duplicates.retain(|path: &Vec<Seg>| path.first() != Some(&Seg::Key(key.clone())));
                duplicates.push(vec![Seg::Key(key.clone())]);
            }
            duplicates.extend(item.duplicates.into_iter().map(|mut path| {
                path.insert(0, Seg::Key(key.clone()));
                path
            }));
            fields.insert(key, item.value);
        }
        Ok(Raw {
            value: Value::Object(fields),
            duplicates,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding.
// ---------------------------------------------------------------------------------------------

/// Decodes every document and adds cross-document checks: two documents with the same kind,
/// namespace and name are an error on the second, naming the first's source.
pub fn decode_all(documents: &[Document], validation: FieldValidation) -> Vec<DocumentReport> {
    let mut reports = Vec::with_capacity(documents.len());
    let mut seen: HashMap<(String, String, String), (String, usize)> = HashMap::new();
    for document in documents {
        let mut report = decode(document, validation);
        let served = |kind: &str| SUPPORTED_KINDS.iter().any(|k| k.kind == kind);
        if let (Some(kind), Some(name)) = (&report.kind, &report.name)
            && served(kind)
        {
            let key = (kind.clone(), report.namespace.clone(), name.clone());
            match seen.get(&key) {
                Some((source, index)) => {
                    let first = if *source == report.source {
                        format!("document {} of the same source", index + 1)
                    } else {
                        format!("`{source}`")
                    };
                    report.push_error(format!(
                        "{kind} {:?} is defined twice: already defined in {first}",
                        key.2
                    ));
                }
                None => {
                    seen.insert(key, (report.source.clone(), report.index));
                }
            }
        }
        reports.push(report);
    }
    reports
}

/// Decodes one document into a report: checks `apiVersion` and `kind` against
/// [`SUPPORTED_KINDS`], decodes strictly, lists unimplemented fields, sets defaults and
/// validates.
pub fn decode(document: &Document, validation: FieldValidation) -> DocumentReport {
    let value = &document.value;
    let string_at = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let mut report = DocumentReport {
        source: document.source.clone(),
        index: document.index,
        api_version: string_at("/apiVersion"),
        kind: string_at("/kind"),
        namespace: string_at("/metadata/namespace").unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
        name: string_at("/metadata/name"),
        object: None,
        decoded: None,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    if !value.is_object() {
        report.push_error(format!(
            "a manifest document must be an object, not {}",
            json_type_name(value)
        ));
        return report;
    }
    let (api_version, kind) = match (report.api_version.clone(), report.kind.clone()) {
        (Some(api_version), Some(kind)) => (api_version, kind),
        (api_version, kind) => {
            if api_version.is_none() {
                report.push_error(FieldError::required(&FieldPath::new("apiVersion"), ""));
            }
            if kind.is_none() {
                report.push_error(FieldError::required(&FieldPath::new("kind"), ""));
            }
            return report;
        }
    };
    let Some(served) = SUPPORTED_KINDS.iter().find(|k| k.kind == kind) else {
        report.push_error(format!(
            "kind {kind} ({api_version}) is not supported by podvisor yet; supported kinds: {}",
            supported_kinds_list()
        ));
        return report;
    };
    if !served.namespaced {
        // The API server ignores a namespace on a cluster-scoped object; so do messages.
        report.namespace = String::new();
    }
    if served.api_version != api_version {
        report.push_error(FieldError::not_supported(
            &FieldPath::new("apiVersion"),
            api_version,
            &[served.api_version],
        ));
        return report;
    }

    let mut decoder = Decoder::new(validation, true);
    decoder.duplicate_fields(&document.duplicate_fields);
    let object = (served.decode)(value, &mut decoder);
    for warning in decoder.warnings {
        report.push_warning(warning);
    }
    for problem in &decoder.problems {
        report.push_error(problem);
    }
    if decoder.problems.is_empty() {
        report.object = object.clone();
    }
    report.decoded = object;
    report
}

// ---------------------------------------------------------------------------------------------
// Decoding request bodies for the API.
// ---------------------------------------------------------------------------------------------

/// A request body decoded for the API server, with its problems sorted by the answer they call
/// for. The caller answers 400 if `bad_request` is not empty, else 422 if `invalid` is not
/// empty, else stores `object` (sending `warnings` as `Warning:` headers either way).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiDecoded {
    /// The decoded, defaulted object as JSON (`apiVersion` and `kind` set), when it decoded at
    /// all: `None` when a value had the wrong type. Unknown fields are not in it. It may be
    /// invalid (see `invalid`).
    pub object: Option<Value>,
    /// Strict-decoding problems, for HTTP 400 BadRequest: `unknown field "spec.foo"` and
    /// `duplicate field "x"` (under [`FieldValidation::Strict`]), type errors such as
    /// `json: cannot unmarshal string into Go struct field Pod.spec.terminationGracePeriodSeconds of type int64`,
    /// and a body that is not an object of the expected kind.
    pub bad_request: Vec<String>,
    /// Validation problems, for HTTP 422 Invalid with one cause each.
    pub invalid: Vec<FieldError>,
    /// Unknown and duplicate fields under [`FieldValidation::Warn`], and nothing else.
    pub warnings: Vec<String>,
}

/// A kind the API decodes that manifests do not create: decoded to JSON directly.
struct ApiOnlyKind {
    api_version: &'static str,
    kind: &'static str,
    decode: fn(&Value, &mut Decoder) -> Option<Value>,
}

/// The kinds the API decodes beyond [`SUPPORTED_KINDS`].
static API_ONLY_KINDS: &[ApiOnlyKind] = &[
    ApiOnlyKind {
        api_version: "v1",
        kind: "Event",
        decode: decode_event,
    },
    ApiOnlyKind {
        api_version: "coordination.k8s.io/v1",
        kind: "Lease",
        decode: decode_lease,
    },
];

/// Decodes a request body (`value`) for the API server as an object of `api_version` and
/// `kind`: strictly typed, defaulted and validated exactly as [`decode`] does for manifests
/// (same code), without the manifest-only checks (unimplemented fields, image map). Serves
/// Pod, ConfigMap, Secret, Namespace, Service, Endpoints (`v1`), EndpointSlice
/// (`discovery.k8s.io/v1`), Event (`v1`) and Lease
/// (`coordination.k8s.io/v1`); any other combination is a `bad_request` line.
///
/// A body without `apiVersion` or `kind` gets the expected ones, as the API server's decoder
/// does; different ones are a `bad_request`. Namespaced kinds: the caller sets
/// `metadata.namespace` from the request path first (a missing one becomes `default`); a
/// Namespace's `metadata.namespace` is dropped. Duplicate keys cannot be seen in a `Value`:
/// use [`decode_body_for_api`] on the raw body to report them.
pub fn decode_for_api(
    api_version: &str,
    kind: &str,
    value: &Value,
    validation: FieldValidation,
) -> ApiDecoded {
    decode_api(api_version, kind, value, &[], validation, None)
}

/// [`decode_for_api`] for an update of the stored object `old`: kinds whose registry
/// prepares updates from the stored object do so (a Service keeps the cluster IP and node
/// ports allocated for it when the body leaves them out) and their update rules are
/// checked (a Service's `clusterIPs` and an EndpointSlice's `addressType` are immutable).
pub fn decode_update_for_api(
    api_version: &str,
    kind: &str,
    value: &Value,
    old: &Value,
    validation: FieldValidation,
) -> ApiDecoded {
    decode_api(api_version, kind, value, &[], validation, Some(old))
}

/// [`decode_for_api`] on a raw JSON body, which also finds duplicate keys (`duplicate field
/// "metadata.name"`, per `validation`). A body that is not JSON is a `bad_request`.
pub fn decode_body_for_api(
    api_version: &str,
    kind: &str,
    body: &[u8],
    validation: FieldValidation,
) -> ApiDecoded {
    match serde_json::from_slice::<Raw>(body) {
        Ok(raw) => {
            let duplicates: Vec<FieldPath> =
                raw.duplicates.iter().map(|p| render_path(p)).collect();
            decode_api(api_version, kind, &raw.value, &duplicates, validation, None)
        }
        Err(error) => ApiDecoded {
            bad_request: vec![format!("json parse error: {}", json_message(&error))],
            ..ApiDecoded::default()
        },
    }
}

fn decode_api(
    api_version: &str,
    kind: &str,
    value: &Value,
    duplicate_fields: &[FieldPath],
    validation: FieldValidation,
    old: Option<&Value>,
) -> ApiDecoded {
    let mut out = ApiDecoded::default();
    let Value::Object(fields) = value else {
        out.bad_request.push(format!(
            "the body must be a {kind} object, not {}",
            json_type_name(value)
        ));
        return out;
    };
    let manifest_kind = SUPPORTED_KINDS
        .iter()
        .find(|k| k.api_version == api_version && k.kind == kind);
    let api_only_kind = API_ONLY_KINDS
        .iter()
        .find(|k| k.api_version == api_version && k.kind == kind);
    if manifest_kind.is_none() && api_only_kind.is_none() {
        out.bad_request.push(format!(
            "no kind {kind:?} is registered for version {api_version:?}"
        ));
        return out;
    }
    // The API server's decoder takes the endpoint's apiVersion and kind for missing ones.
    let mut fields = fields.clone();
    for (key, expected, noun) in [
        ("apiVersion", api_version, "API version"),
        ("kind", kind, "kind"),
    ] {
        match fields
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            None => {
                fields.insert(key.to_owned(), Value::String(expected.to_owned()));
            }
            Some(given) if given != expected => out.bad_request.push(format!(
                "the {noun} in the data ({given}) does not match the expected {noun} ({expected})"
            )),
            Some(_) => {}
        }
    }
    if !out.bad_request.is_empty() {
        return out;
    }
    let value = Value::Object(fields);

    let mut decoder = Decoder::new(validation, false);
    decoder.old = old.cloned();
    decoder.duplicate_fields(duplicate_fields);
    out.object = match (manifest_kind, api_only_kind) {
        (Some(served), _) => (served.decode)(&value, &mut decoder).map(|o| o.to_json()),
        (None, Some(served)) => (served.decode)(&value, &mut decoder),
        (None, None) => None,
    };
    for problem in decoder.problems {
        match problem {
            Problem::Type(error) => {
                out.object = None;
                out.bad_request.push(go_type_error(kind, &error));
            }
            Problem::Field(message) => out.bad_request.push(message),
            Problem::Invalid(error) => out.invalid.push(error),
        }
    }
    out.warnings = decoder.warnings;
    out
}

/// A type error worded like Go's `json.UnmarshalTypeError` (what the API server answers):
/// `json: cannot unmarshal string into Go struct field Pod.spec.terminationGracePeriodSeconds
/// of type int64`. Go names the innermost struct type, which is not known here: the kind
/// stands in for it. Errors that are not plain type mismatches keep serde's wording after
/// the path.
fn go_type_error(kind: &str, error: &TypeError) -> String {
    let go = error
        .message
        .strip_prefix("invalid type: ")
        .or_else(|| error.message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.rsplit_once(", expected "))
        .and_then(|(got, expected)| Some((go_json_value(got)?, go_type(expected)?)));
    match go {
        Some((got, expected)) if !error.field.as_str().is_empty() => format!(
            "json: cannot unmarshal {got} into Go struct field {kind}.{} of type {expected}",
            error.field
        ),
        _ => error.to_string(),
    }
}

/// Go's name for a JSON value in an `UnmarshalTypeError`, from serde's `Unexpected` wording.
fn go_json_value(serde: &str) -> Option<String> {
    let literal = |s: &str| s.trim_matches('`').to_owned();
    if serde.starts_with("string ") {
        Some("string".to_owned())
    } else if let Some(n) = serde
        .strip_prefix("integer ")
        .or_else(|| serde.strip_prefix("floating point "))
    {
        Some(format!("number {}", literal(n)))
    } else if serde.starts_with("boolean ") {
        Some("bool".to_owned())
    } else if serde == "map" {
        Some("object".to_owned())
    } else if serde == "sequence" {
        Some("array".to_owned())
    } else {
        None
    }
}

/// Go's name for a field type, from serde's `expected` wording, for the simple types.
fn go_type(serde: &str) -> Option<&'static str> {
    Some(match serde {
        "a string" => "string",
        "a boolean" => "bool",
        "i32" => "int32",
        "i64" => "int64",
        "u16" => "uint16",
        "u32" => "uint32",
        "u64" => "uint64",
        "f64" => "float64",
        _ => return None,
    })
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------------------------
// The decoder shared by manifests and the API.
// ---------------------------------------------------------------------------------------------

/// One problem that makes a document unusable.
enum Problem {
    /// A value of the wrong type (the field was left out of the typed object).
    Type(TypeError),
    /// An unknown or duplicate field under strict validation: `unknown field "spec.foo"`.
    Field(String),
    /// A validation error of the decoded, defaulted object.
    Invalid(FieldError),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Type(error) => error.fmt(f),
            Problem::Field(message) => f.write_str(message),
            Problem::Invalid(error) => error.fmt(f),
        }
    }
}

/// Collects the problems of one document while it is decoded; messages are not yet prefixed.
struct Decoder {
    /// How unknown and duplicate fields are treated.
    validation: FieldValidation,
    /// Whether set fields podvisor does not implement make a warning (manifests; not the API,
    /// which stores them as given).
    unimplemented_warning: bool,
    /// Problems, in the order found: type errors, unknown fields, then validation errors.
    problems: Vec<Problem>,
    /// Warning messages, without the document prefix.
    warnings: Vec<String>,
    /// Fields that had type errors: they were left out of the typed object, so validation
    /// must not also call them missing.
    type_error_paths: Vec<FieldPath>,
    /// The stored object an API update replaces (None for creates and manifests): kinds with
    /// update rules (Service, EndpointSlice) prepare and validate against it.
    old: Option<Value>,
}

impl Decoder {
    fn new(validation: FieldValidation, unimplemented_warning: bool) -> Self {
        Decoder {
            validation,
            unimplemented_warning,
            problems: Vec::new(),
            warnings: Vec::new(),
            type_error_paths: Vec::new(),
            old: None,
        }
    }

    /// The object an update replaces, typed; None on create or when it does not decode.
    fn old<T: DeserializeOwned>(&self) -> Option<T> {
        self.old
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    fn field_problem(&mut self, message: String) {
        match self.validation {
            FieldValidation::Strict => self.problems.push(Problem::Field(message)),
            FieldValidation::Warn => self.warnings.push(message),
            FieldValidation::Ignore => {}
        }
    }

    fn duplicate_fields(&mut self, paths: &[FieldPath]) {
        for path in paths {
            self.field_problem(format!("duplicate field \"{path}\""));
        }
    }

    /// Decodes `value` into `T` strictly: type errors are errors (all of them, with paths),
    /// unknown fields are handled per [`FieldValidation`], fields not implemented for `kind`
    /// make one warning (if asked for). `None` when the value does not decode.
    fn typed<T: DeserializeOwned + Serialize>(&mut self, kind: &str, value: &Value) -> Option<T> {
        let decoded = decode_strict::<T>(value);
        for error in decoded.type_errors {
            self.type_error_paths.push(error.field.clone());
            self.problems.push(Problem::Type(error));
        }
        for path in &decoded.unknown_fields {
            self.field_problem(format!("unknown field \"{path}\""));
        }
        if self.unimplemented_warning
            && let Some(known) = &decoded.known_input
        {
            let fields = unimplemented::unimplemented_fields(kind, known);
            if !fields.is_empty() {
                let list: Vec<&str> = fields.iter().map(FieldPath::as_str).collect();
                self.warnings.push(format!(
                    "fields not implemented by podvisor (ignored): {}",
                    list.join(", ")
                ));
            }
        }
        decoded.object
    }

    /// Records validation errors, except those about fields that had type errors (they are
    /// already reported, and validation saw them missing).
    fn invalid(&mut self, errors: Vec<FieldError>) {
        for error in errors {
            let field = error.field.as_str();
            let shadowed = self.type_error_paths.iter().any(|p| {
                let p = p.as_str();
                field == p
                    || field.starts_with(&format!("{p}."))
                    || field.starts_with(&format!("{p}["))
            });
            if !shadowed {
                self.problems.push(Problem::Invalid(error));
            }
        }
    }
}

fn decode_pod(value: &Value, decoder: &mut Decoder) -> Option<Object> {
    let mut pod: Pod = decoder.typed("Pod", value)?;
    default_namespace(&mut pod.metadata);
    pod::set_defaults(&mut pod);
    decoder.invalid(pod::validate(&pod));
    Some(Object::Pod(Box::new(pod)))
}

fn decode_config_map(value: &Value, decoder: &mut Decoder) -> Option<Object> {
    let mut config_map: ConfigMap = decoder.typed("ConfigMap", value)?;
    default_namespace(&mut config_map.metadata);
    decoder.invalid(config::validate_config_map(&config_map));
    Some(Object::ConfigMap(Box::new(config_map)))
}

fn decode_secret(value: &Value, decoder: &mut Decoder) -> Option<Object> {
    let mut secret: Secret = decoder.typed("Secret", value)?;
    default_namespace(&mut secret.metadata);
    config::set_secret_defaults(&mut secret);
    decoder.invalid(config::validate_secret(&secret));
    Some(Object::Secret(Box::new(secret)))
}

fn decode_namespace(value: &Value, decoder: &mut Decoder) -> Option<Object> {
    let mut ns: Namespace = decoder.typed("Namespace", value)?;
    namespace::set_defaults(&mut ns);
    decoder.invalid(namespace::validate(&ns));
    Some(Object::Namespace(Box::new(ns)))
}

/// A Service as the API server prepares it: defaults, then (on update) the allocated values
/// kept from the stored Service, `clusterIP`/`clusterIPs` in step, the IP family fields, and
/// validation. The errors of the IP family step come alone, as upstream returns them before
/// validating.
fn decode_service(value: &Value, decoder: &mut Decoder) -> Option<Object> {
    let mut svc: Service = decoder.typed("Service", value)?;
    default_namespace(&mut svc.metadata);
    service::set_defaults(&mut svc);
    let old: Option<Service> = decoder.old();
    match &old {
        Some(old) => service::prepare_update(&mut svc, old),
        None => service::normalize_cluster_ips(svc.spec.get_or_insert_default(), None),
    }
    let family_errors = service::init_ip_family_fields(
        svc.spec.get_or_insert_default(),
        old.as_ref().and_then(|o| o.spec.as_ref()),
    );
    if !family_errors.is_empty() {
        decoder.invalid(family_errors);
        return Some(Object::Service(Box::new(svc)));
    }
    if let Some(old) = &old {
        decoder.invalid(service::validate_update(&svc, old));
    }
    decoder.invalid(service::validate(&svc));
    Some(Object::Service(Box::new(svc)))
}

fn decode_endpoints(value: &Value, decoder: &mut Decoder) -> Option<Object> {
    let mut ep: Endpoints = decoder.typed("Endpoints", value)?;
    default_namespace(&mut ep.metadata);
    endpoints::set_endpoints_defaults(&mut ep);
    decoder.invalid(endpoints::validate_endpoints(&ep));
    Some(Object::Endpoints(Box::new(ep)))
}

fn decode_endpoint_slice(value: &Value, decoder: &mut Decoder) -> Option<Object> {
    let mut slice: EndpointSlice = decoder.typed("EndpointSlice", value)?;
    default_namespace(&mut slice.metadata);
    endpoints::set_endpoint_slice_defaults(&mut slice);
    let old: Option<EndpointSlice> = decoder.old();
    decoder.invalid(endpoints::validate_endpoint_slice(&slice, old.as_ref()));
    Some(Object::EndpointSlice(Box::new(slice)))
}

/// Whether a workload body has a `spec.selector` (the typed object defaults a missing one).
fn has_selector(value: &Value) -> bool {
    value
        .pointer("/spec/selector")
        .is_some_and(|s| !s.is_null())
}

/// A Deployment as the API server prepares it: defaults, an empty status on create, then
/// validation (on update, against the stored Deployment: the selector is immutable).
fn decode_deployment(value: &Value, decoder: &mut Decoder) -> Option<Object> {
    let mut d: Deployment = decoder.typed("Deployment", value)?;
    default_namespace(&mut d.metadata);
    workload::set_deployment_defaults(&mut d);
    let old: Option<Deployment> = decoder.old();
    if decoder.old.is_none() {
        workload::clear_deployment_status(&mut d);
    }
    decoder.invalid(workload::validate_deployment(
        &d,
        has_selector(value),
        old.as_ref(),
    ));
    Some(Object::Deployment(Box::new(d)))
}

/// A ReplicaSet, as [`decode_deployment`].
fn decode_replica_set(value: &Value, decoder: &mut Decoder) -> Option<Object> {
    let mut rs: ReplicaSet = decoder.typed("ReplicaSet", value)?;
    default_namespace(&mut rs.metadata);
    workload::set_replica_set_defaults(&mut rs);
    let old: Option<ReplicaSet> = decoder.old();
    if decoder.old.is_none() {
        workload::clear_replica_set_status(&mut rs);
    }
    decoder.invalid(workload::validate_replica_set(
        &rs,
        has_selector(value),
        old.as_ref(),
    ));
    Some(Object::ReplicaSet(Box::new(rs)))
}

/// A ReplicationController: defaults (the selector from the template's labels), an empty
/// status on create, validation (its selector may change).
fn decode_replication_controller(value: &Value, decoder: &mut Decoder) -> Option<Object> {
    let mut rc: ReplicationController = decoder.typed("ReplicationController", value)?;
    default_namespace(&mut rc.metadata);
    workload::set_replication_controller_defaults(&mut rc);
    if decoder.old.is_none() {
        workload::clear_replication_controller_status(&mut rc);
    }
    decoder.invalid(workload::validate_replication_controller(&rc));
    Some(Object::ReplicationController(Box::new(rc)))
}

fn decode_event(value: &Value, decoder: &mut Decoder) -> Option<Value> {
    let mut e: Event = decoder.typed("Event", value)?;
    default_namespace(&mut e.metadata);
    decoder.invalid(event::validate(&e));
    serde_json::to_value(e).ok()
}

fn decode_lease(value: &Value, decoder: &mut Decoder) -> Option<Value> {
    let mut l: Lease = decoder.typed("Lease", value)?;
    default_namespace(&mut l.metadata);
    decoder.invalid(lease::validate(&l));
    serde_json::to_value(l).ok()
}

fn default_namespace(metadata: &mut ObjectMeta) {
    if metadata.namespace.as_deref().is_none_or(str::is_empty) {
        metadata.namespace = Some(DEFAULT_NAMESPACE.to_owned());
    }
}

/// A value that does not have the type its field needs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TypeError {
    /// Where, as far as it could be located (the document root otherwise).
    pub field: FieldPath,
    /// serde's message, e.g. `invalid type: string "80", expected i32`.
    pub message: String,
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.as_str().is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// The result of [`decode_strict`].
pub(crate) struct StrictDecoded<T> {
    /// The typed value, decoded from the input without the fields that had type errors.
    pub object: Option<T>,
    /// Every type error, in document order as far as serde reports them.
    pub type_errors: Vec<TypeError>,
    /// Fields of the input that `T` does not have (keys with `null` values are not counted).
    pub unknown_fields: Vec<FieldPath>,
    /// The input restricted to the fields `T` has, without `null`s and without fields that had
    /// type errors; `None` when nothing decoded.
    pub known_input: Option<Value>,
}

/// How many type errors one document may report before decoding gives up.
const MAX_TYPE_ERRORS: usize = 50;

/// Decodes `value` into `T` and finds what plain serde would hide: every type error with its
/// path, and every unknown field (k8s-openapi ignores them; detected by comparing the input
/// with the decoded value serialized back).
///
/// Type errors are located by decoding from JSON text written one field per line, whose line
/// numbers map back to paths; the offending field is then removed and decoding retried, so all
/// type errors are reported, not only the first.
pub(crate) fn decode_strict<T: DeserializeOwned + Serialize>(value: &Value) -> StrictDecoded<T> {
    let mut work = value.clone();
    let mut type_errors = Vec::new();
    let object = loop {
        let mut lines = LineMap::default();
        lines.write(&work, &mut Vec::new(), None, false);
        match serde_json::from_str::<T>(&lines.text) {
            Ok(object) => break Some(object),
            Err(error) => {
                let path = error
                    .line()
                    .checked_sub(1)
                    .and_then(|line| lines.paths.get(line))
                    .cloned()
                    .unwrap_or_default();
                type_errors.push(TypeError {
                    field: render_path(&path),
                    message: json_message(&error),
                });
                if type_errors.len() >= MAX_TYPE_ERRORS || !remove_path(&mut work, &path) {
                    break None;
                }
            }
        }
    };
    let Some(object) = object else {
        return StrictDecoded {
            object: None,
            type_errors,
            unknown_fields: Vec::new(),
            known_input: None,
        };
    };
    let round_trip = serde_json::to_value(&object).unwrap_or(Value::Null);
    let mut unknown_fields = Vec::new();
    let known_input = known_fields(&work, &round_trip, &mut Vec::new(), &mut unknown_fields);
    StrictDecoded {
        object: Some(object),
        type_errors,
        unknown_fields,
        known_input: Some(known_input),
    }
}

/// Removes the field at `path` from `value`. When the path ends in a list element, the whole
/// list goes, since removing one element would shift the paths of the others. `false` if
/// nothing was removed.
fn remove_path(value: &mut Value, path: &[Seg]) -> bool {
    let cut = match path.iter().rposition(|s| matches!(s, Seg::Key(_))) {
        Some(last_key) => last_key,
        None => return false,
    };
    let (parent, last) = (&path[..cut], &path[cut]);
    let mut current = value;
    for seg in parent {
        current = match (seg, current) {
            (Seg::Key(k), Value::Object(map)) => match map.get_mut(k) {
                Some(v) => v,
                None => return false,
            },
            (Seg::Index(i), Value::Array(items)) => match items.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, current) {
        (Seg::Key(k), Value::Object(map)) => map.remove(k).is_some(),
        _ => false,
    }
}

/// Walks the input alongside its round trip: keys missing from the round trip are unknown;
/// the result is the input without them and without `null`s. Keys are visited in sorted order
/// so reports do not depend on map ordering.
fn known_fields(
    input: &Value,
    round_trip: &Value,
    path: &mut Vec<Seg>,
    unknown: &mut Vec<FieldPath>,
) -> Value {
    match (input, round_trip) {
        (Value::Object(fields), Value::Object(known)) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for key in keys {
                let value = &fields[key];
                if value.is_null() {
                    continue;
                }
                path.push(Seg::Key(key.clone()));
                match known.get(key) {
                    Some(known_value) => {
                        let kept = known_fields(value, known_value, path, unknown);
                        out.insert(key.clone(), kept);
                    }
                    None => unknown.push(render_path(path)),
                }
                path.pop();
            }
            Value::Object(out)
        }
        (Value::Array(items), Value::Array(known)) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    path.push(Seg::Index(i));
                    let kept = match known.get(i) {
                        Some(known_item) => known_fields(item, known_item, path, unknown),
                        None => item.clone(),
                    };
                    path.pop();
                    kept
                })
                .collect(),
        ),
        // A scalar, or a shape the round trip changed (e.g. a quantity): keep it as given.
        _ => input.clone(),
    }
}

/// JSON text written one value per line, with the path of every line, so that serde_json's
/// error line locates the field.
#[derive(Default)]
struct LineMap {
    /// The JSON text.
    text: String,
    /// The path of each line (0-based line number).
    paths: Vec<Vec<Seg>>,
}

impl LineMap {
    fn line(&mut self, path: &[Seg], text: &str) {
        self.text.push_str(text);
        self.text.push('\n');
        self.paths.push(path.to_vec());
    }

    fn write(&mut self, value: &Value, path: &mut Vec<Seg>, key: Option<&str>, comma: bool) {
        let prefix = match key {
            Some(key) => format!("{}: ", Value::String(key.to_owned())),
            None => String::new(),
        };
        let end = if comma { "," } else { "" };
        match value {
            Value::Object(fields) if !fields.is_empty() => {
                self.line(path, &format!("{prefix}{{"));
                let n = fields.len();
                for (i, (k, v)) in fields.iter().enumerate() {
                    path.push(Seg::Key(k.clone()));
                    self.write(v, path, Some(k), i + 1 < n);
                    path.pop();
                }
                self.line(path, &format!("}}{end}"));
            }
            Value::Array(items) if !items.is_empty() => {
                self.line(path, &format!("{prefix}["));
                let n = items.len();
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    self.write(item, path, None, i + 1 < n);
                    path.pop();
                }
                self.line(path, &format!("]{end}"));
            }
            scalar => self.line(path, &format!("{prefix}{scalar}{end}")),
        }
    }
}
