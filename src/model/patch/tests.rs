//! Tests of the patch engines, one file per engine, and the helpers they share.

mod apply;
mod apply_prune;
mod json_merge;
mod json_patch;
mod strategic;

use serde_json::Value;

/// A JSON value from YAML (or JSON) text.
fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("invalid YAML: {e}\n{text}"))
}
