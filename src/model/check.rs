//! The engine behind `podvisor check -f PATH…`, and the validation `up` runs before it starts
//! anything: read every source, decode every document, check that every container has
//! something to run, and report each document and a summary.
//!
//! A source that cannot be read or parsed is reported as an error for that source; the other
//! sources are still checked. Pure apart from reading the manifest files: no tokio, no
//! processes. Printing and the exit status are the CLI's business.

use std::error::Error as _;
use std::fmt;
use std::io::{self, Read};

use crate::model::image_map::{self, ImageMap};
use crate::model::manifest::{self, Document, DocumentReport, FieldValidation, LoadError, Object};

#[cfg(test)]
mod tests;

/// What `check` checks and how strictly.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// How unknown and duplicate fields are treated (`--validate`).
    pub validation: FieldValidation,
    /// The image map (`--image-map`), if given.
    pub image_map: Option<ImageMap>,
    /// Whether a container with nothing to run (no `command`, no image map entry) is an error.
    /// `check` leaves it a warning, since the manifest is valid Kubernetes; `up` cannot run such
    /// a container and sets this (see [`CheckOptions::for_up`]).
    pub missing_image_is_error: bool,
}

impl CheckOptions {
    /// These options as `up` needs them: containers with nothing to run are errors.
    pub fn for_up(mut self) -> Self {
        self.missing_image_is_error = true;
        self
    }
}

/// One line group of a report: a document, or a source that could not be loaded.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckEntry {
    /// A document, decoded and checked.
    Document(DocumentReport),
    /// A source that could not be read or parsed.
    LoadFailed {
        /// The source: a path, or `<stdin>`.
        source: String,
        /// The error with its causes (`failed to read manifest `x.yaml`: No such file …`).
        error: String,
    },
}

/// The outcome of a check, in the order of the sources.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckReport {
    /// Every document and every source that failed to load, in input order.
    pub entries: Vec<CheckEntry>,
}

/// Counts for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckSummary {
    /// Documents checked.
    pub documents: usize,
    /// Documents with neither errors nor warnings.
    pub ok: usize,
    /// Documents with warnings and no errors.
    pub with_warnings: usize,
    /// Documents with errors.
    pub with_errors: usize,
    /// Sources that could not be read or parsed.
    pub failed_sources: usize,
}

/// Checks the manifests at `paths` (files, folders, `-` for stdin).
pub fn check(paths: &[String], options: &CheckOptions) -> CheckReport {
    check_from(paths, io::stdin().lock(), options)
}

/// [`check`] with `stdin` standing for `-`.
pub fn check_from(paths: &[String], stdin: impl Read, options: &CheckOptions) -> CheckReport {
    check_loaded(manifest::load_each(paths, stdin), options)
}

/// Checks already loaded sources (the output of [`manifest::load_each`]).
pub fn check_loaded(
    loaded: Vec<Result<Vec<Document>, LoadError>>,
    options: &CheckOptions,
) -> CheckReport {
    let documents: Vec<Document> = loaded
        .iter()
        .filter_map(|l| l.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    let mut reports = manifest::decode_all(&documents, options.validation).into_iter();
    let mut entries = Vec::new();
    for source in loaded {
        match source {
            Ok(documents) => {
                for _ in 0..documents.len() {
                    let Some(mut report) = reports.next() else {
                        unreachable!("decode_all returns one report per document")
                    };
                    check_images(&mut report, options);
                    entries.push(CheckEntry::Document(report));
                }
            }
            Err(error) => entries.push(CheckEntry::LoadFailed {
                source: error.path().to_owned(),
                error: error_chain(&error),
            }),
        }
    }
    CheckReport { entries }
}

fn check_images(report: &mut DocumentReport, options: &CheckOptions) {
    let problems = match &report.decoded {
        Some(Object::Pod(pod)) => image_map::check_pod(pod, options.image_map.as_ref()),
        // Only pods run anything.
        Some(
            Object::ConfigMap(_)
            | Object::Secret(_)
            | Object::Namespace(_)
            | Object::Service(_)
            | Object::Endpoints(_)
            | Object::EndpointSlice(_)
            | Object::Deployment(_)
            | Object::ReplicaSet(_)
            | Object::ReplicationController(_),
        )
        | None => return,
    };
    for problem in problems {
        if options.missing_image_is_error {
            report.push_error(problem);
        } else {
            report.push_warning(problem);
        }
    }
}

/// `error: cause: cause`, as anyhow's `{:#}` renders it.
fn error_chain(error: &LoadError) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

impl CheckReport {
    /// Whether any document has errors or any source failed to load: `check` exits non-zero.
    pub fn has_errors(&self) -> bool {
        self.entries.iter().any(|entry| match entry {
            CheckEntry::Document(report) => !report.errors.is_empty(),
            CheckEntry::LoadFailed { .. } => true,
        })
    }

    /// The documents, in input order.
    pub fn documents(&self) -> impl Iterator<Item = &DocumentReport> {
        self.entries.iter().filter_map(|entry| match entry {
            CheckEntry::Document(report) => Some(report),
            CheckEntry::LoadFailed { .. } => None,
        })
    }

    /// The valid objects, in input order.
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.documents().filter_map(|report| report.object.as_ref())
    }

    /// The counts of the summary line.
    pub fn summary(&self) -> CheckSummary {
        let mut summary = CheckSummary::default();
        for entry in &self.entries {
            match entry {
                CheckEntry::Document(report) => {
                    summary.documents += 1;
                    if !report.errors.is_empty() {
                        summary.with_errors += 1;
                    } else if !report.warnings.is_empty() {
                        summary.with_warnings += 1;
                    } else {
                        summary.ok += 1;
                    }
                }
                CheckEntry::LoadFailed { .. } => summary.failed_sources += 1,
            }
        }
        summary
    }
}

impl fmt::Display for CheckSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} OK, {} with warnings, {} with errors",
            plural(self.documents, "document"),
            self.ok,
            self.with_warnings,
            self.with_errors
        )?;
        if self.failed_sources > 0 {
            write!(
                f,
                "; {} could not be loaded",
                plural(self.failed_sources, "source")
            )?;
        }
        Ok(())
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// One line per OK document (`app.yaml: Pod "web": OK`), one per warning (`warning: …`) and
/// error (`error: …`), then the summary line.
impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in &self.entries {
            match entry {
                CheckEntry::Document(report) => {
                    if report.is_ok() {
                        writeln!(f, "{}: OK", report.display_name())?;
                    }
                    for warning in &report.warnings {
                        writeln!(f, "warning: {warning}")?;
                    }
                    for error in &report.errors {
                        writeln!(f, "error: {error}")?;
                    }
                }
                CheckEntry::LoadFailed { error, .. } => writeln!(f, "error: {error}")?,
            }
        }
        writeln!(f, "{}", self.summary())
    }
}
