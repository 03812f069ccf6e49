//! Label selectors and field selectors, as the API server parses and applies them to
//! `?labelSelector=` and `?fieldSelector=` (and as controllers apply a `LabelSelector` object).
//!
//! Ported from apimachinery as of Kubernetes 1.33: `pkg/labels/selector.go` (`Parse`, matching,
//! `String`), `pkg/apis/meta/v1/helpers.go` (`LabelSelectorAsSelector`, `FormatLabelSelector`),
//! `pkg/fields/selector.go` (`ParseSelector`, escaping), and the per-kind field label conversion
//! functions and `GetAttrs` of the registry (`pkg/apis/core/v1/conversion.go`,
//! `pkg/registry/*/strategy.go`). Every error message is upstream's.
//!
//! [`LabelSelector`] matches a label map; [`FieldSelector`] matches an object given as JSON, by
//! the field paths its kind supports. A field an object's kind does not support is an error,
//! which the API turns into `400 BadRequest` as upstream does.
//!
//! Pure: no IO, no clock, no tokio.

mod field;
mod label;

pub use field::{FieldOperator, FieldSelector, FieldTerm};
pub use label::{LabelSelector, Operator, Requirement, format_label_selector, format_labels};

/// Why a selector is rejected; the messages are upstream's, word for word.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector string that does not parse (`labels.Parse`), or a requirement it
    /// contains that is invalid (`labels.NewRequirement`): the whole upstream message, e.g.
    /// `unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt`.
    #[error("{0}")]
    Label(String),
    /// A `matchExpressions[].operator` that is not `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[error("{} is not a valid label selector operator", crate::model::validation::go_quote(.0))]
    InvalidOperator(String),
    /// A field selector term without `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldSyntax {
        /// The whole selector as given.
        selector: String,
        /// The term that has no operator.
        term: String,
    },
    /// A backslash in a field selector value not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscapeSequence(String),
    /// An unescaped `,` or `=` in a field selector value. Upstream prints the character with
    /// Go's `%v` of a rune, that is its code point in decimal (`61` for `=`).
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedCharacter(char),
    /// A field the kind does not support, for kinds with their own field label conversion
    /// (Pod, Event, Namespace, Secret, Service, Node, ReplicationController, ReplicaSet).
    #[error("field label not supported: {0}")]
    FieldLabelNotSupported(String),
    /// A field other than `metadata.name`/`metadata.namespace` for any other kind (upstream
    /// `DefaultMetaV1FieldSelectorConversion`).
    #[error(
        "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
        crate::model::validation::go_quote(.0)
    )]
    UnknownField(String),
}

#[cfg(test)]
mod tests;
