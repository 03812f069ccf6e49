//! JSON merge patch (RFC 7386), as `application/merge-patch+json` (`kubectl scale`, `label`,
//! `annotate`): objects merge key by key, `null` deletes, anything else replaces.

use serde_json::{Map, Value};

/// Applies `patch` to `original` (RFC 7386 section 2, `MergePatch(Target, Patch)`).
pub(crate) fn apply(original: &Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch.clone();
    };
    let mut target = match original {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            let merged = apply(target.get(key).unwrap_or(&Value::Null), value);
            target.insert(key.clone(), merged);
        }
    }
    Value::Object(target)
}
