//! JSON patch (RFC 6902) with JSON pointers (RFC 6901), as `application/json-patch+json`
//! (`kubectl rollout undo`, kubectl's managedFields migration).
//!
//! Follows the RFC where upstream's library (evanphx/json-patch v4) is laxer: `replace` and
//! `test` need an existing target, `add`/`replace`/`test` need a `value`, negative array indices
//! are refused, and `move` cannot move a value into itself. Error messages are the library's,
//! as the API server returns them.

use serde_json::Value;

use super::PatchError;
use super::value::json_eq;

/// Upstream's `maxJSONPatchOperations`.
const MAX_OPERATIONS: usize = 10_000;

/// Applies the operations `ops` (a JSON array) to `original`, in order; the first operation
/// that does not apply fails the whole patch.
pub(crate) fn apply(original: &Value, ops: &Value) -> Result<Value, PatchError> {
    if ops.is_null() {
        // Go decodes `null` into an empty patch.
        return Ok(original.clone());
    }
    let Value::Array(ops) = ops else {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            json_kind(ops)
        )));
    };
    if ops.len() > MAX_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_OPERATIONS,
            got: ops.len(),
        });
    }
    let mut doc = original.clone();
    for (index, op) in ops.iter().enumerate() {
        let Value::Object(fields) = op else {
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                json_kind(op)
            )));
        };
        let kind = fields
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let fail = |message: String| PatchError::OperationFailed {
            index,
            op: kind.to_owned(),
            message,
        };
        let path = || -> Result<&str, PatchError> {
            fields
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("operation missing path field: missing value".to_owned()))
        };
        let from = || -> Result<&str, PatchError> {
            fields
                .get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("operation, missing from field: missing value".to_owned()))
        };
        let value = || -> Result<&Value, PatchError> {
            fields
                .get("value")
                .ok_or_else(|| fail("operation, missing value field: missing value".to_owned()))
        };
        match kind {
            "add" => {
                let path = path()?;
                add(&mut doc, path, value()?.clone()).map_err(|e| fail(e.message("add", path)))?;
            }
            "remove" => {
                let path = path()?;
                remove(&mut doc, path).map_err(|e| fail(e.message("remove", path)))?;
            }
            "replace" => {
                let path = path()?;
                let value = value()?.clone();
                let target =
                    get_mut(&mut doc, path).map_err(|e| fail(e.message("replace", path)))?;
                *target = value;
            }
            "move" => {
                let (from, path) = (from()?, path()?);
                if path != from && path.starts_with(from) && path[from.len()..].starts_with('/') {
                    return Err(fail(format!(
                        "move operation does not apply: cannot move {from} into its own child {path}"
                    )));
                }
                let moved =
                    remove(&mut doc, from).map_err(|e| fail(e.source_message("move", from)))?;
                add(&mut doc, path, moved)
                    .map_err(|e| fail(e.destination_message("move", path)))?;
            }
            "copy" => {
                let (from, path) = (from()?, path()?);
                let copied = get(&doc, from)
                    .map_err(|e| fail(e.source_message("copy", from)))?
                    .clone();
                add(&mut doc, path, copied)
                    .map_err(|e| fail(e.destination_message("copy", path)))?;
            }
            "test" => {
                let (path, expected) = (path()?, value()?);
                let actual = get(&doc, path).map_err(|e| fail(e.message("test", path)))?;
                if !json_eq(actual, expected) {
                    return Err(fail(format!("testing value {path} failed: test failed")));
                }
            }
            other => return Err(fail(format!("Unexpected kind: {other}"))),
        }
    }
    Ok(doc)
}

/// Why a pointer does not resolve.
enum Miss {
    /// The pointer is not a JSON pointer.
    Syntax,
    /// A parent of the target is missing (or is not a container).
    Parent,
    /// The parent exists; the key is not in it.
    Key(String),
    /// The parent is an array; the index is out of range or not an index.
    Index(String),
    /// The pointer is the whole document, which cannot be removed.
    Root,
}

impl Miss {
    /// Upstream's message for a failed `op` on `path`.
    fn message(&self, op: &str, path: &str) -> String {
        match self {
            Miss::Syntax => {
                format!("{op} operation does not apply: invalid JSON pointer: \"{path}\"")
            }
            Miss::Parent => match op {
                "add" | "remove" => format!(
                    "{op} operation does not apply: doc is missing path: \"{path}\": missing value"
                ),
                "test" => {
                    format!("{op} operation does not apply: is missing path: {path}: missing value")
                }
                _ => format!(
                    "{op} operation does not apply: doc is missing path: {path}: missing value"
                ),
            },
            Miss::Key(key) => match op {
                "remove" => format!(
                    "error in remove for path: '{path}': Unable to remove nonexistent key: {key}: missing value"
                ),
                "test" => format!("testing value {path} failed: test failed"),
                _ => format!(
                    "{op} operation does not apply: doc is missing key: {path}: missing value"
                ),
            },
            Miss::Index(index) => format!(
                "error in {op} for path: '{path}': Unable to access invalid index: {index}: invalid index referenced"
            ),
            Miss::Root => format!("{op} operation does not apply: cannot {op} the whole document"),
        }
    }

    fn source_message(&self, op: &str, from: &str) -> String {
        match self {
            Miss::Parent | Miss::Key(_) => format!(
                "{op} operation does not apply: doc is missing from path: {from}: missing value"
            ),
            other => other.message(op, from),
        }
    }

    fn destination_message(&self, op: &str, path: &str) -> String {
        match self {
            Miss::Parent => format!(
                "{op} operation does not apply: doc is missing destination path: {path}: missing value"
            ),
            other => other.message(op, path),
        }
    }
}

/// The reference tokens of a JSON pointer (RFC 6901): `""` is the whole document, `/a~1b/0` is
/// `["a/b", "0"]`.
fn tokens(pointer: &str) -> Result<Vec<String>, Miss> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(Miss::Syntax);
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(Miss::Syntax),
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

/// An array index token: digits without leading zeros.
fn index(token: &str) -> Option<usize> {
    if token.is_empty()
        || !token.bytes().all(|b| b.is_ascii_digit())
        || (token.len() > 1 && token.starts_with('0'))
    {
        return None;
    }
    token.parse().ok()
}

fn get<'a>(doc: &'a Value, pointer: &str) -> Result<&'a Value, Miss> {
    let tokens = tokens(pointer)?;
    let mut current = doc;
    for (i, token) in tokens.iter().enumerate() {
        let last = i + 1 == tokens.len();
        current = match current {
            Value::Object(map) => match map.get(token) {
                Some(next) => next,
                None if last => return Err(Miss::Key(token.clone())),
                None => return Err(Miss::Parent),
            },
            Value::Array(items) => match index(token).and_then(|i| items.get(i)) {
                Some(next) => next,
                None if last => return Err(Miss::Index(token.clone())),
                None => return Err(Miss::Parent),
            },
            _ => return Err(Miss::Parent),
        };
    }
    Ok(current)
}

fn get_mut<'a>(doc: &'a mut Value, pointer: &str) -> Result<&'a mut Value, Miss> {
    let tokens = tokens(pointer)?;
    let count = tokens.len();
    let mut current = doc;
    for (i, token) in tokens.into_iter().enumerate() {
        let last = i + 1 == count;
        current = match current {
            Value::Object(map) => match map.get_mut(&token) {
                Some(next) => next,
                None if last => return Err(Miss::Key(token)),
                None => return Err(Miss::Parent),
            },
            Value::Array(items) => {
                let len = items.len();
                match index(&token).filter(|i| *i < len) {
                    Some(i) => &mut items[i],
                    None if last => return Err(Miss::Index(token)),
                    None => return Err(Miss::Parent),
                }
            }
            _ => return Err(Miss::Parent),
        };
    }
    Ok(current)
}

/// The container holding the target of `pointer`, and the last token.
fn parent_mut<'a>(doc: &'a mut Value, pointer: &str) -> Result<(&'a mut Value, String), Miss> {
    let mut tokens = tokens(pointer)?;
    let Some(last) = tokens.pop() else {
        return Err(Miss::Root);
    };
    let mut current = doc;
    for token in tokens {
        current = match current {
            Value::Object(map) => map.get_mut(&token).ok_or(Miss::Parent)?,
            Value::Array(items) => {
                let len = items.len();
                let i = index(&token).filter(|i| *i < len).ok_or(Miss::Parent)?;
                &mut items[i]
            }
            _ => return Err(Miss::Parent),
        };
    }
    Ok((current, last))
}

fn add(doc: &mut Value, pointer: &str, value: Value) -> Result<(), Miss> {
    if pointer.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = parent_mut(doc, pointer)?;
    match parent {
        Value::Object(map) => {
            map.insert(last, value);
            Ok(())
        }
        Value::Array(items) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            match index(&last).filter(|i| *i <= items.len()) {
                Some(i) => {
                    items.insert(i, value);
                    Ok(())
                }
                None => Err(Miss::Index(last)),
            }
        }
        _ => Err(Miss::Parent),
    }
}

fn remove(doc: &mut Value, pointer: &str) -> Result<Value, Miss> {
    let (parent, last) = parent_mut(doc, pointer)?;
    match parent {
        Value::Object(map) => map.remove(&last).ok_or(Miss::Key(last)),
        Value::Array(items) => match index(&last).filter(|i| *i < items.len()) {
            Some(i) => Ok(items.remove(i)),
            None => Err(Miss::Index(last)),
        },
        _ => Err(Miss::Parent),
    }
}

/// How Go's decoder names a JSON value it could not decode into a struct.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
