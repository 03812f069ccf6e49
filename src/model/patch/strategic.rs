//! Strategic merge patch as the API server applies it (`StrategicMergeMapPatch` in
//! apimachinery's `strategicpatch`): JSON merge patch, except that lists with a merge key merge
//! item by item, lists of scalars with the merge strategy merge as sets, and the directives
//! `$patch` (`replace`, `delete`, `merge`), `$retainKeys`, `$setElementOrder/<list>` and
//! `$deleteFromPrimitiveList/<list>` are honoured.
//!
//! The order of merged lists follows upstream exactly, including its quirk: when a
//! `$setElementOrder` list is applied together with a merged list, upstream orders the
//! server-only items by the list as it was after deletions and additions but before reordering
//! (it reads a Go slice that the merge modified in place). This module reproduces that, because
//! the order of `containers` and `env` is visible to users.
//!
//! Deviations, on purpose: a patch value for a field the original lacks is applied to an empty
//! value instead of being copied verbatim, so no directive and no `null` ever reaches the stored
//! object (upstream stores `{"$patch":"delete"}` in that case); `$patch: merge` is accepted as
//! an explicit "merge" (upstream rejects it on list items); `$deleteFromPrimitiveList` removes
//! values from any list (upstream treats a list of objects as a merge).

use serde_json::{Map, Value};

use super::PatchError;
use super::schema::{Node, SmpList, SmpMap};
use super::value::{go_fmt, go_type, json_eq, kind_of};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Applies the strategic merge patch `patch` to `original`, an object described by `node`.
pub(crate) fn apply(original: &Value, patch: &Value, node: &Node) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(bad_request("invalid JSON document"));
    };
    let original = match original {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        _ => return Err(bad_request("invalid JSON document")),
    };
    merge_map(original, patch.clone(), node)
}

fn bad_request(message: &str) -> PatchError {
    PatchError::BadRequest(message.to_owned())
}

fn unmergeable(message: String) -> PatchError {
    PatchError::Unmergeable(message)
}

/// Upstream's `ErrBadArgType`.
fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    unmergeable(format!(
        "expected a {expected}, but received a {}",
        go_type(actual)
    ))
}

/// Upstream's `ErrNoMergeKey`.
fn no_merge_key(item: &Value, key: &str) -> PatchError {
    unmergeable(format!(
        "map: {} does not contain declared merge key: {key}",
        go_fmt(item)
    ))
}

/// Upstream's `ErrBadPatchType`.
fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    unmergeable(format!(
        "unknown patch type: {} in map: {}",
        go_fmt(directive),
        go_fmt(&Value::Object(map.clone()))
    ))
}

/// Merges the object `patch` into the object `original`.
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    node: &Node,
) -> Result<Value, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE).cloned() {
        match directive.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                return merge_map(Map::new(), patch, node);
            }
            Some("delete") => return Ok(Value::Object(Map::new())),
            Some("merge") => {
                patch.remove(DIRECTIVE);
            }
            _ => return Err(bad_patch_type(&directive, &patch)),
        }
    }

    if let Some(retain) = patch.remove(RETAIN_KEYS) {
        let Value::Array(retain) = retain else {
            return Err(bad_request("invalid patch format of retainKeys"));
        };
        let retained = |key: &str| retain.iter().any(|k| k.as_str() == Some(key));
        for (key, value) in &patch {
            if value.is_null()
                || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
                || key.starts_with(SET_ELEMENT_ORDER)
            {
                continue;
            }
            if !retained(key) {
                return Err(bad_request("invalid patch format of retainKeys"));
            }
        }
        original.retain(|key, _| retained(key));
    }

    // $setElementOrder/<list> first: it consumes the list it orders.
    let order_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for order_key in order_keys {
        let Some(field) = order_key
            .strip_prefix(SET_ELEMENT_ORDER)
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            return Err(bad_request("invalid patch format of setElementOrder list"));
        };
        let order = patch.remove(&order_key).unwrap_or(Value::Null);
        set_element_order(&mut original, &mut patch, field, order, &node.field(field))?;
    }

    // Then the fields, and the deletions from primitive lists last.
    let (deletions, fields): (Vec<String>, Vec<String>) = patch
        .keys()
        .cloned()
        .partition(|k| k.starts_with(DELETE_FROM_PRIMITIVE_LIST));
    for key in fields {
        let value = patch.remove(&key).unwrap_or(Value::Null);
        merge_field(&mut original, &key, value, &node.field(&key))?;
    }
    for key in deletions {
        let Some(field) = key
            .strip_prefix(DELETE_FROM_PRIMITIVE_LIST)
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            return Err(bad_request("invalid patch format of primitive list"));
        };
        let values = patch.remove(&key).unwrap_or(Value::Null);
        match (original.get_mut(field), values) {
            (_, Value::Null) => {
                original.remove(field);
            }
            (None, _) => {}
            (Some(Value::Array(items)), Value::Array(values)) => {
                items.retain(|item| !values.iter().any(|v| json_eq(v, item)));
            }
            _ => return Err(bad_request("invalid patch format of primitive list")),
        }
    }
    Ok(Value::Object(original))
}

/// Merges one field of a patch into `original`.
fn merge_field(
    original: &mut Map<String, Value>,
    key: &str,
    value: Value,
    node: &Node,
) -> Result<(), PatchError> {
    if value.is_null() {
        original.remove(key);
        return Ok(());
    }
    let merged = match original.remove(key) {
        None => clean(value, node)?,
        Some(Value::Object(current)) => match value {
            Value::Object(patch) if node.map().0 != SmpMap::Replace => {
                Some(merge_map(current, patch, node)?)
            }
            other => clean(other, node)?,
        },
        Some(Value::Array(current)) => match value {
            Value::Array(patch) => match node.list().0 {
                SmpList::Replace => Some(Value::Array(patch)),
                strategy => Some(Value::Array(
                    merge_list(&current, &patch, node, strategy)?.merged,
                )),
            },
            other => clean(other, node)?,
        },
        Some(_) => clean(value, node)?,
    };
    if let Some(merged) = merged {
        original.insert(key.to_owned(), merged);
    }
    Ok(())
}

/// A patch value applied to nothing: directives processed, `null`s dropped. `None` for an
/// object that deletes itself (`$patch: delete`).
fn clean(value: Value, node: &Node) -> Result<Option<Value>, PatchError> {
    match value {
        Value::Object(patch) => {
            if patch.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                return Ok(None);
            }
            merge_map(Map::new(), patch, node).map(Some)
        }
        Value::Array(items) => match node.list().0 {
            SmpList::Replace => Ok(Some(Value::Array(items))),
            strategy => Ok(Some(Value::Array(
                merge_list(&[], &items, node, strategy)?.merged,
            ))),
        },
        scalar => Ok(Some(scalar)),
    }
}

/// A merged list, and the list as upstream's merge leaves the original Go slice: after
/// deletions and additions, before reordering (see the module documentation).
struct MergedList {
    merged: Vec<Value>,
    in_place: Vec<Value>,
}

/// Merges the list `patch` into the list `original` with the merge strategy `strategy`.
fn merge_list(
    original: &[Value],
    patch: &[Value],
    node: &Node,
    strategy: SmpList,
) -> Result<MergedList, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(MergedList {
            merged: Vec::new(),
            in_place: Vec::new(),
        });
    }
    check_element_types(original, patch)?;
    let of_maps = original.iter().chain(patch).any(Value::is_object);

    if !of_maps {
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for item in original.iter().chain(patch) {
            if !merged.iter().any(|m| json_eq(m, item)) {
                merged.push(item.clone());
            }
        }
        let (from_patch, server_only) = partition(&merged, patch, None);
        let merged = normalize(from_patch, server_only, patch, original, None);
        return Ok(MergedList {
            merged,
            in_place: original.to_vec(),
        });
    }

    let SmpList::MergeByKey(key) = strategy else {
        return Err(unmergeable(
            "cannot merge lists without merge key for type map".to_owned(),
        ));
    };
    let item_node = node.item();

    // Items with a directive first: deletions, a replacement of the whole list.
    let mut current: Vec<Value> = original.to_vec();
    let mut plain: Vec<Value> = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(fields) = item else {
            return Err(bad_arg_type("map[string]interface {}", item));
        };
        let Some(directive) = fields.get(DIRECTIVE) else {
            plain.push(item.clone());
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let Some(wanted) = fields.get(key) else {
                    return Err(no_merge_key(item, key));
                };
                for existing in &current {
                    if !existing.is_object() {
                        return Err(bad_arg_type("map[string]interface {}", existing));
                    }
                }
                current.retain(|existing| !existing.get(key).is_some_and(|v| json_eq(v, wanted)));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                let mut fields = fields.clone();
                fields.remove(DIRECTIVE);
                if fields.contains_key(key) {
                    plain.push(Value::Object(fields));
                }
            }
            _ => return Err(bad_patch_type(directive, fields)),
        }
    }
    if replace {
        let mut merged = Vec::with_capacity(plain.len());
        for item in plain {
            if let Some(item) = clean(item, &item_node)? {
                merged.push(item);
            }
        }
        return Ok(MergedList {
            in_place: merged.clone(),
            merged,
        });
    }

    let server_order = current.clone();
    for item in &plain {
        let Some(wanted) = item.get(key) else {
            return Err(no_merge_key(item, key));
        };
        let mut found = None;
        for (i, existing) in current.iter().enumerate() {
            let Value::Object(existing) = existing else {
                return Err(unmergeable(format!("value for key {i} is not a map.")));
            };
            if existing.get(key).is_some_and(|v| json_eq(v, wanted)) {
                found = Some(i);
                break;
            }
        }
        let Value::Object(fields) = item.clone() else {
            unreachable!("items without directives were checked to be objects")
        };
        match found {
            Some(i) => {
                let Value::Object(existing) = std::mem::take(&mut current[i]) else {
                    unreachable!("checked above")
                };
                current[i] = merge_map(existing, fields, &item_node)?;
            }
            None => current.push(merge_map(Map::new(), fields, &item_node)?),
        }
    }
    let (from_patch, server_only) = partition(&current, &plain, Some(key));
    let merged = normalize(from_patch, server_only, &plain, &server_order, Some(key));
    Ok(MergedList {
        merged,
        in_place: current,
    })
}

/// Upstream's `sliceElementType`: every item of both lists has the same JSON type, and none is
/// a list.
fn check_element_types(original: &[Value], patch: &[Value]) -> Result<(), PatchError> {
    let mut kind = None;
    for item in original.iter().chain(patch) {
        if item.is_array() {
            return Err(PatchError::Invalid(
                "lists of lists are not supported".to_owned(),
            ));
        }
        match kind {
            None => kind = Some(kind_of(item)),
            Some(k) if k != kind_of(item) => {
                let both = Value::Array(vec![
                    Value::Array(original.to_vec()),
                    Value::Array(patch.to_vec()),
                ]);
                return Err(unmergeable(format!(
                    "list element types are not identical: {}",
                    go_fmt(&both)
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Whether two list items are the same item: by merge key for lists of objects, by value for
/// lists of scalars.
fn same_item(a: &Value, b: &Value, key: Option<&str>) -> bool {
    match key {
        Some(key) => match (a.get(key), b.get(key)) {
            (Some(a), Some(b)) => json_eq(a, b),
            (None, None) => true,
            _ => false,
        },
        None => json_eq(a, b),
    }
}

fn position(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    list.iter().position(|x| same_item(x, item, key))
}

/// Splits `items` into those present in `by` and the others, keeping their order.
fn partition(items: &[Value], by: &[Value], key: Option<&str>) -> (Vec<Value>, Vec<Value>) {
    items
        .iter()
        .cloned()
        .partition(|item| position(by, item, key).is_some())
}

/// Upstream's `normalizeElementOrder`: the items from the patch sorted by `patch_order`, the
/// server-only items sorted by `server_order`, then interleaved: a server-only item goes before
/// a patch item only if both are in `server_order` and it comes first there.
fn normalize(
    mut from_patch: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    from_patch.sort_by_key(|item| position(patch_order, item, key).unwrap_or(usize::MAX));
    server_only.sort_by_key(|item| position(server_order, item, key).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(from_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = from_patch.into_iter().peekable();
    loop {
        match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => out.extend(left.next()),
            (None, Some(_)) => out.extend(right.next()),
            (Some(l), Some(r)) => {
                let before = matches!(
                    (position(server_order, l, key), position(server_order, r, key)),
                    (Some(l), Some(r)) if l < r
                );
                if before {
                    out.extend(left.next());
                } else {
                    out.extend(right.next());
                }
            }
        }
    }
    out
}

/// Applies `$setElementOrder/<field>`: merges `patch[field]` (if any) into `original[field]`,
/// then orders the result as `order` says, server-only items where they were.
fn set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    field: &str,
    order: Value,
    node: &Node,
) -> Result<(), PatchError> {
    let Value::Array(order) = order else {
        return Err(bad_arg_type("[]interface {}", &order));
    };
    let current = match original.get(field) {
        None => None,
        Some(Value::Array(items)) => Some(items.clone()),
        Some(other) => return Err(bad_arg_type("[]interface {}", other)),
    };
    let patch_list = match patch.get(field) {
        None => None,
        Some(Value::Array(items)) => Some(items.clone()),
        Some(other) => return Err(bad_arg_type("[]interface {}", other)),
    };
    let strategy = node.list().0;
    let key = match strategy {
        SmpList::MergeByKey(key) => Some(key),
        _ => None,
    };
    validate_order(patch_list.as_deref().unwrap_or(&[]), &order, key)?;

    let (merged, in_place) = match (current, patch_list) {
        (None, None) => return Ok(()),
        (Some(current), None) => (current.clone(), current),
        (None, Some(patch_list)) => {
            let merged = match strategy {
                SmpList::Replace => patch_list,
                strategy => merge_list(&[], &patch_list, node, strategy)?.merged,
            };
            (merged, Vec::new())
        }
        (Some(current), Some(patch_list)) => match strategy {
            SmpList::Replace => (patch_list, current),
            strategy => {
                let result = merge_list(&current, &patch_list, node, strategy)?;
                // Upstream reads the original slice after the merge modified it in place:
                // its first len(original) items.
                let mut in_place = result.in_place;
                if in_place.iter().any(Value::is_object) {
                    in_place.truncate(current.len());
                } else {
                    in_place = current;
                }
                (result.merged, in_place)
            }
        },
    };
    patch.remove(field);

    let by_key = key.filter(|_| merged.iter().any(Value::is_object));
    if let Some(key) = by_key {
        for item in &order {
            if !item.is_object() {
                return Err(bad_arg_type("map[string]interface {}", item));
            }
            if item.get(key).is_none() {
                return Err(no_merge_key(item, key));
            }
        }
    }
    let (from_patch, server_only) = partition(&merged, &order, by_key);
    let ordered = normalize(from_patch, server_only, &order, &in_place, by_key);
    original.insert(field.to_owned(), Value::Array(ordered));
    Ok(())
}

/// Upstream's `validatePatchWithSetOrderList`: the items of the patch list appear in the
/// `$setElementOrder` list, in the same relative order (deletions aside).
fn validate_order(patch: &[Value], order: &[Value], key: Option<&str>) -> Result<(), PatchError> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let mut items: Vec<&Value> = Vec::with_capacity(patch.len());
    for item in patch {
        if key.is_some() {
            let Value::Object(fields) = item else {
                return Err(bad_arg_type("map[string]interface {}", item));
            };
            if fields.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                continue;
            }
        }
        items.push(item);
    }
    let equal = |a: &Value, b: &Value| -> Result<bool, PatchError> {
        let Some(key) = key else {
            return Ok(json_eq(a, b));
        };
        for item in [a, b] {
            if !item.is_object() {
                return Err(bad_arg_type("map[string]interface {}", item));
            }
            if item.get(key).is_none() {
                return Err(no_merge_key(item, key));
            }
        }
        Ok(json_eq(&a[key], &b[key]))
    };
    let (mut p, mut o) = (0, 0);
    while p < items.len() && o < order.len() {
        if items[p].get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if equal(items[p], &order[o])? {
            p += 1;
        }
        o += 1;
    }
    if p < items.len() && o >= order.len() {
        return Err(unmergeable(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            go_fmt(&Value::Array(patch.to_vec())),
            go_fmt(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}
