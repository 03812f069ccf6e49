//! Query parameters as the API server decodes and validates them into its options kinds
//! (`ListOptions`, `CreateOptions`, `UpdateOptions`, `PatchOptions`, `DeleteOptions`): Go's
//! `strconv` errors for numbers and booleans (400), the `Validate*Options` rules (422 on
//! `<Kind>.meta.k8s.io ""`), and the storage layer's resourceVersion parsing (a 500 without a
//! reason, as upstream answers it; kubernetes#101350).

use super::query::Query;
use super::status::ApiError;
use crate::model::field::{ErrorType, FieldError, FieldPath};
use crate::model::manifest::FieldValidation;
use crate::model::validation::go_quote;

/// The options kind a request's parameters decode into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionsKind {
    Create,
    Update,
    Patch,
    Delete,
}

impl OptionsKind {
    fn name(self) -> &'static str {
        match self {
            OptionsKind::Create => "CreateOptions",
            OptionsKind::Update => "UpdateOptions",
            OptionsKind::Patch => "PatchOptions",
            OptionsKind::Delete => "DeleteOptions",
        }
    }
}

/// An integer parameter, as `strconv.ParseInt` reads it (400 with its error otherwise).
pub fn int(query: &Query, key: &str) -> Result<Option<i64>, ApiError> {
    match query.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse_int(v).map(Some),
    }
}

/// `strconv.ParseInt(v, 10, 64)` with Go's error text.
pub fn parse_int(v: &str) -> Result<i64, ApiError> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "strconv.ParseInt: parsing {}: invalid syntax",
            go_quote(v)
        )));
    }
    v.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "strconv.ParseInt: parsing {}: value out of range",
            go_quote(v)
        ))
    })
}

/// A boolean parameter, as `strconv.ParseBool` reads it; absent is None.
pub fn bool_param(query: &Query, key: &str) -> Result<Option<bool>, ApiError> {
    match query.get(key) {
        None => Ok(None),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(Some(true)),
        Some("" | "0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(Some(false)),
        Some(v) => Err(ApiError::bad_request(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            go_quote(v)
        ))),
    }
}

/// `fieldValidation`: upstream's default is `Warn`; anything but the three values (or empty)
/// is a 422 on the options kind.
pub fn field_validation(query: &Query, kind: OptionsKind) -> Result<FieldValidation, ApiError> {
    match query.get("fieldValidation") {
        None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some(other) => Err(ApiError::invalid_options(
            kind.name(),
            &[FieldError::not_supported(
                &FieldPath::new("fieldValidation"),
                other,
                &["", "Ignore", "Strict", "Warn"],
            )],
        )),
    }
}

/// `dryRun`: `All`, or nothing; anything else is a 422 on the options kind (`ValidateDryRun`
/// prints the value as Go's `%#v` of a `[]string`).
pub fn dry_run(query: &Query, kind: OptionsKind) -> Result<bool, ApiError> {
    match query.get("dryRun") {
        None => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::invalid_options(
            kind.name(),
            &[dry_run_error(other)],
        )),
    }
}

/// `dryRun` of a DeleteOptions body, checked as [`dry_run`].
pub fn dry_run_values(values: &[String]) -> Result<bool, ApiError> {
    match values {
        [] => Ok(false),
        all if all.iter().all(|v| v == "All") => Ok(true),
        other => Err(ApiError::invalid_options(
            OptionsKind::Delete.name(),
            &[dry_run_error(&other.join("\", \""))],
        )),
    }
}

fn dry_run_error(values: &str) -> FieldError {
    let mut e = FieldError::invalid_raw(
        &FieldPath::new("dryRun"),
        &format!("[]string{{{}}}", go_quote(values)),
        "supported values: \"All\"",
    );
    e.kind = ErrorType::NotSupported;
    e
}

/// What a list or watch asks for, checked as `ValidateListOptions` (WatchList on, as in 1.32).
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub watch: bool,
    /// The `resourceVersion` parameter, parsed; None when empty.
    pub resource_version: Option<u64>,
    pub send_initial_events: Option<bool>,
    pub allow_watch_bookmarks: bool,
    pub timeout_seconds: Option<i64>,
}

impl ListOptions {
    pub fn parse(query: &Query) -> Result<ListOptions, ApiError> {
        let watch = bool_param(query, "watch")?.unwrap_or(false);
        let send_initial_events = bool_param(query, "sendInitialEvents")?;
        let allow_watch_bookmarks = bool_param(query, "allowWatchBookmarks")?.unwrap_or(false);
        let timeout_seconds = int(query, "timeoutSeconds")?;
        let rv = query.get("resourceVersion").unwrap_or("");
        let rv_match = query.get("resourceVersionMatch").unwrap_or("");
        let continue_ = query.get("continue").unwrap_or("");
        let m = FieldPath::new("resourceVersionMatch");
        let mut errors = Vec::new();
        if watch {
            if send_initial_events.is_some() && rv_match != "NotOlderThan" {
                errors.push(FieldError::forbidden(
                    &m,
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !rv_match.is_empty() {
                if send_initial_events.is_none() {
                    errors.push(FieldError::forbidden(
                        &m,
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                    ));
                }
                if rv_match != "NotOlderThan" {
                    errors.push(FieldError::not_supported(&m, rv_match, &["NotOlderThan"]));
                }
                if !continue_.is_empty() {
                    errors.push(FieldError::forbidden(
                        &m,
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
            }
        } else {
            if !rv_match.is_empty() {
                if rv.is_empty() {
                    errors.push(FieldError::forbidden(
                        &m,
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    ));
                }
                if !continue_.is_empty() {
                    errors.push(FieldError::forbidden(
                        &m,
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
                if rv_match != "Exact" && rv_match != "NotOlderThan" {
                    errors.push(FieldError::not_supported(
                        &m,
                        rv_match,
                        &["Exact", "NotOlderThan", ""],
                    ));
                }
                if rv_match == "Exact" && rv == "0" {
                    errors.push(FieldError::forbidden(
                        &m,
                        "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                    ));
                }
            }
            if send_initial_events.is_some() {
                errors.push(FieldError::forbidden(
                    &FieldPath::new("sendInitialEvents"),
                    "sendInitialEvents is forbidden for list",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid_options("ListOptions", &errors));
        }
        Ok(ListOptions {
            watch,
            resource_version: parse_resource_version(rv)?,
            send_initial_events,
            allow_watch_bookmarks,
            timeout_seconds,
        })
    }
}

/// A `resourceVersion` as the storage layer parses it (`APIObjectVersioner`): empty and `0`
/// are "any"; anything that is not a uint64 is an `InvalidError` the handlers return as a
/// 500 without a reason.
pub fn parse_resource_version(rv: &str) -> Result<Option<u64>, ApiError> {
    if rv.is_empty() {
        return Ok(None);
    }
    rv.parse::<u64>().map(Some).map_err(|_| {
        let why = if !rv.is_empty() && rv.bytes().all(|b| b.is_ascii_digit()) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        ApiError::unknown(
            500,
            format!(
                "resourceVersion: Invalid value: {q}: strconv.ParseUint: parsing {q}: {why}",
                q = go_quote(rv)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_number_errors() {
        assert_eq!(parse_int("12").unwrap(), 12);
        assert_eq!(parse_int("-3").unwrap(), -3);
        assert_eq!(
            parse_int("0.1s").unwrap_err().message,
            "strconv.ParseInt: parsing \"0.1s\": invalid syntax"
        );
        assert_eq!(
            parse_int("99999999999999999999").unwrap_err().message,
            "strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
        );
        let e = parse_resource_version("abc").unwrap_err();
        assert_eq!((e.code, e.reason), (500, ""));
        assert_eq!(parse_resource_version("0").unwrap(), Some(0));
        assert_eq!(parse_resource_version("").unwrap(), None);
    }

    #[test]
    fn list_option_rules() {
        let q = |s: &str| Query::parse(Some(s));
        assert!(
            ListOptions::parse(&q(
                "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
            ))
            .is_ok()
        );
        let e = ListOptions::parse(&q(
            "watch=1&sendInitialEvents=true&resourceVersionMatch=Exact",
        ))
        .unwrap_err();
        assert_eq!(
            e.message,
            "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan, resourceVersionMatch: Unsupported value: \"Exact\": supported values: \"NotOlderThan\"]"
        );
        let e = dry_run(&q("dryRun=x"), OptionsKind::Update).unwrap_err();
        assert_eq!(
            e.message,
            "UpdateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"x\"}: supported values: \"All\""
        );
    }
}
