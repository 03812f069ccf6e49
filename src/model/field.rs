//! Field paths and field errors, in the vocabulary of apimachinery's `field` package.
//!
//! Validation returns every problem at once as a `Vec<FieldError>`; each one renders exactly
//! like the Kubernetes API server renders it, e.g.
//! `spec.containers[0].name: Required value` or
//! `spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"`.
//!
//! Pure: no IO.

use std::fmt;

use serde_json::Value;

/// A path to a field of an object, such as `spec.containers[0].lifecycle.preStop`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(String);

impl FieldPath {
    /// The path of a top-level field.
    pub fn new(name: &str) -> Self {
        FieldPath(name.to_owned())
    }

    /// The path of the field `name` below this one.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            FieldPath(name.to_owned())
        } else {
            FieldPath(format!("{}.{name}", self.0))
        }
    }

    /// The path of element `index` of this list.
    pub fn index(&self, index: usize) -> Self {
        FieldPath(format!("{}[{index}]", self.0))
    }

    /// The path of entry `key` of this map, rendered as upstream does: `metadata.labels[app]`.
    pub fn key(&self, key: &str) -> Self {
        FieldPath(format!("{}[{key}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of field errors; the strings are upstream's `ErrorType.String()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Internal => "Internal error",
        }
    }

    /// The `reason` of a `StatusCause` in an API `Invalid` status (`FieldValueInvalid` …).
    pub fn cause_reason(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Internal => "InternalError",
        }
    }
}

/// One problem with one field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub kind: ErrorType,
    pub field: FieldPath,
    /// The offending value, shown for `Invalid`, `Duplicate`, `NotSupported` and `NotFound`.
    pub bad_value: Option<Value>,
    /// What is allowed, in upstream's words.
    pub detail: String,
}

impl FieldError {
    pub fn required(field: &FieldPath, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, None, detail)
    }

    pub fn invalid(field: &FieldPath, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, field, Some(value.into()), detail)
    }

    pub fn duplicate(field: &FieldPath, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::Duplicate, field, Some(value.into()), "")
    }

    pub fn not_found(field: &FieldPath, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::NotFound, field, Some(value.into()), "")
    }

    pub fn forbidden(field: &FieldPath, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, field, None, detail)
    }

    pub fn too_long(field: &FieldPath, max_bytes: usize) -> Self {
        Self::new(
            ErrorType::TooLong,
            field,
            None,
            format!("may not be more than {max_bytes} bytes"),
        )
    }

    /// `supported` is rendered as upstream does: quoted and comma separated.
    pub fn not_supported(field: &FieldPath, value: impl Into<Value>, supported: &[&str]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorType::NotSupported, field, Some(value.into()), detail)
    }

    /// An `Invalid` error whose bad value is printed as it is, unquoted: upstream prints a value
    /// that implements `fmt.Stringer` (a `Quantity`) that way, and a struct with `%#v`.
    pub fn invalid_raw(field: &FieldPath, raw: &str, detail: impl Into<String>) -> Self {
        let mut value = serde_json::Map::new();
        value.insert(RAW_VALUE_KEY.to_owned(), Value::String(raw.to_owned()));
        Self::new(
            ErrorType::Invalid,
            field,
            Some(Value::Object(value)),
            detail,
        )
    }

    pub fn internal(field: &FieldPath, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Internal, field, None, detail)
    }

    fn new(
        kind: ErrorType,
        field: &FieldPath,
        bad_value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            kind,
            field: field.clone(),
            bad_value,
            detail: detail.into(),
        }
    }

    /// The message without the field path, as upstream's `ErrorBody()`.
    pub fn body(&self) -> String {
        let mut s = match (self.kind, &self.bad_value) {
            (
                ErrorType::Required
                | ErrorType::Forbidden
                | ErrorType::TooLong
                | ErrorType::Internal,
                _,
            )
            | (_, None) => self.kind.as_str().to_owned(),
            (_, Some(value)) => format!("{}: {}", self.kind.as_str(), render_value(value)),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// The key of the one-entry object that marks a bad value to print unquoted
/// ([`FieldError::invalid_raw`]).
const RAW_VALUE_KEY: &str = "$podvisor-raw-value";

/// Renders a bad value like Go's `%q` for strings and `%v` for numbers and booleans.
fn render_value(value: &Value) -> String {
    if let Value::Object(map) = value
        && map.len() == 1
        && let Some(Value::String(raw)) = map.get(RAW_VALUE_KEY)
    {
        return raw.clone();
    }
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_apimachinery() {
        let path = FieldPath::new("spec")
            .child("containers")
            .index(0)
            .child("lifecycle")
            .child("preStop")
            .child("sleep")
            .child("seconds");
        let e = FieldError::invalid(
            &path,
            40,
            "must be non-negative and less than terminationGracePeriodSeconds (30)",
        );
        assert_eq!(
            e.to_string(),
            "spec.containers[0].lifecycle.preStop.sleep.seconds: Invalid value: 40: \
             must be non-negative and less than terminationGracePeriodSeconds (30)"
        );
        let e = FieldError::required(&FieldPath::new("spec").child("containers"), "");
        assert_eq!(e.to_string(), "spec.containers: Required value");
        let e = FieldError::not_supported(
            &FieldPath::new("spec").child("restartPolicy"),
            "Sometimes",
            &["Always", "OnFailure", "Never"],
        );
        assert_eq!(
            e.to_string(),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
        );
        let e = FieldError::duplicate(
            &FieldPath::new("spec")
                .child("containers")
                .index(1)
                .child("name"),
            "app",
        );
        assert_eq!(
            e.to_string(),
            "spec.containers[1].name: Duplicate value: \"app\""
        );
        let labels = FieldPath::new("metadata").child("labels").key("app");
        assert_eq!(labels.as_str(), "metadata.labels[app]");
    }
}
