//! Field selectors: `fields.ParseSelector`, value escaping, and the fields each kind can be
//! selected by (the registry's field label conversion functions and `GetAttrs`).

use std::fmt;

use serde_json::Value;

use super::SelectorError;

/// How a field selector term compares (upstream `hasTerm`, `notHasTerm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value` or `field==value`.
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One `field=value` or `field!=value` term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTerm {
    /// The field path, such as `metadata.name`; never escaped.
    pub field: String,
    /// How the field's value is compared.
    pub operator: FieldOperator,
    /// The value, unescaped.
    pub value: String,
}

/// A field selector: the AND of its terms. The empty selector matches everything.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FieldSelector {
    /// In the order upstream keeps them: sorted by the terms' text as written.
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// Parses a selector as `?fieldSelector=` carries it (upstream `fields.ParseSelector`):
    /// terms joined by `,`, each `field=value`, `field==value` or `field!=value`; in values,
    /// `\,`, `\=` and `\\` stand for `,`, `=` and `\`. Empty terms are skipped.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(SelectorError::FieldSyntax {
                    selector: selector.to_owned(),
                    term: part.to_owned(),
                });
            };
            let value = unescape_value(rhs)?;
            let operator = if op == "!=" {
                FieldOperator::NotEquals
            } else {
                FieldOperator::Equals
            };
            terms.push(FieldTerm {
                field: lhs.to_owned(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Whether the selector restricts nothing.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms, in upstream's order.
    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    /// The value an `=` term requires of `field`, if any (upstream `RequiresExactMatch`): lets
    /// a caller look `metadata.name` up directly instead of scanning.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.operator == FieldOperator::Equals)
            .map(|t| t.value.as_str())
    }

    /// The selector as the API server applies it to objects of `kind` (upstream `Transform`
    /// with the kind's field label conversion): an error names the first field the kind does
    /// not support; legacy names are renamed (`spec.host` of a Pod is `spec.nodeName`).
    ///
    /// Call this before listing, so a bad selector fails even when nothing would be compared.
    pub fn for_kind(&self, kind: &str) -> Result<FieldSelector, SelectorError> {
        let mut terms = Vec::with_capacity(self.terms.len());
        for term in &self.terms {
            let field = convert_field_label(kind, &term.field)?;
            terms.push(FieldTerm {
                field: field.to_owned(),
                operator: term.operator,
                value: term.value.clone(),
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Whether `object` (of `kind`, as JSON) matches: every term's field, read as upstream's
    /// `GetAttrs` reads it (a missing field is the empty string), compares as the term says.
    /// Fails like [`FieldSelector::for_kind`] on a field the kind does not support.
    pub fn matches(&self, kind: &str, object: &Value) -> Result<bool, SelectorError> {
        let converted = self.for_kind(kind)?;
        Ok(converted.terms.iter().all(|term| {
            let actual = field_value(kind, &term.field, object);
            match term.operator {
                FieldOperator::Equals => actual == term.value,
                FieldOperator::NotEquals => actual != term.value,
            }
        }))
    }
}

impl fmt::Display for FieldSelector {
    /// Upstream `String()`: `field=value` / `field!=value` with the value escaped, joined by `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match term.operator {
                FieldOperator::Equals => "=",
                FieldOperator::NotEquals => "!=",
            };
            write!(f, "{}{op}{}", term.field, escape_value(&term.value))?;
        }
        Ok(())
    }
}

/// Upstream `EscapeValue`: `\` → `\\`, `,` → `\,`, `=` → `\=`.
pub(super) fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Upstream `UnescapeValue`.
pub(super) fn unescape_value(value: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(value.len());
    let mut in_slash = false;
    for c in value.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => return Err(SelectorError::InvalidEscapeSequence(format!("\\{c}"))),
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::UnescapedCharacter(c)),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::InvalidEscapeSequence("\\".to_owned()));
    }
    Ok(out)
}

/// Upstream `splitTerms`: splits at commas not escaped by a backslash, keeping the escapes.
pub(super) fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Upstream `splitTerm`: the first `!=`, `==` or `=` splits the field from the raw value.
pub(super) fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], op, value));
            }
        }
    }
    None
}

/// Upstream's field label conversion function for `kind`: the field as the registry names it
/// (renamed for legacy names), or the error upstream returns for a field it does not support.
fn convert_field_label<'a>(kind: &str, field: &'a str) -> Result<&'a str, SelectorError> {
    let supported: &[&str] = match kind {
        "Pod" => {
            if field == "spec.host" {
                // Upstream keeps this for old v1 clients.
                return Ok("spec.nodeName");
            }
            &[
                "metadata.name",
                "metadata.namespace",
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
            ]
        }
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "metadata.namespace",
            "metadata.name",
        ],
        "Namespace" => &["status.phase", "metadata.name"],
        "Secret" => &["type", "metadata.namespace", "metadata.name"],
        "Service" => &[
            "metadata.namespace",
            "metadata.name",
            "spec.clusterIP",
            "spec.type",
        ],
        "Node" => &["metadata.name", "spec.unschedulable"],
        // ReplicaSet: upstream's registry exposes `status.replicas` but 1.32/1.33 register no
        // conversion for apps/v1 (kubernetes#135136), so the API server rejects it; the
        // documented behaviour is implemented here.
        "ReplicationController" | "ReplicaSet" => {
            &["metadata.name", "metadata.namespace", "status.replicas"]
        }
        _ => {
            return match field {
                "metadata.name" | "metadata.namespace" => Ok(field),
                _ => Err(SelectorError::UnknownField(field.to_owned())),
            };
        }
    };
    if supported.contains(&field) {
        Ok(field)
    } else {
        Err(SelectorError::FieldLabelNotSupported(field.to_owned()))
    }
}

/// The value of a converted field of an object, as the kind's `GetAttrs` computes it from the
/// internal object (a missing field reads as the empty string, like `fields.Set.Get`).
fn field_value(kind: &str, field: &str, object: &Value) -> String {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let flag = |pointer: &str| {
        let b = object
            .pointer(pointer)
            .and_then(Value::as_bool)
            .unwrap_or(false);
        b.to_string()
    };
    let integer = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string()
    };
    match (kind, field) {
        (_, "metadata.name") => text("/metadata/name"),
        (_, "metadata.namespace") => text("/metadata/namespace"),
        ("Pod", "spec.hostNetwork") => flag("/spec/hostNetwork"),
        ("Pod", "status.podIP") => {
            // The internal object's first `podIPs` entry; a v1 object may only have `podIP`
            // (conversion fills `podIPs` from it).
            let first = text("/status/podIPs/0/ip");
            if first.is_empty() {
                text("/status/podIP")
            } else {
                first
            }
        }
        // Accepted by the conversion but absent from the pod's field set: always empty.
        ("Pod", "status.podIPs") => String::new(),
        ("Event", "source") => {
            let component = text("/source/component");
            if component.is_empty() {
                text("/reportingComponent")
            } else {
                component
            }
        }
        ("Node", "spec.unschedulable") => flag("/spec/unschedulable"),
        ("ReplicationController" | "ReplicaSet", "status.replicas") => integer("/status/replicas"),
        (_, field) => {
            let pointer: String = field.split('.').map(|part| format!("/{part}")).collect();
            text(&pointer)
        }
    }
}
