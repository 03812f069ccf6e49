//! Presentation: check reports, and the compose-style stream of `up` (logs, events, state
//! changes), coloured on a terminal.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};

use crate::model::check::{CheckEntry, CheckReport};
use crate::runtime::logs::LogLine;
use crate::runtime::signals::signal_name;

/// Prints a check report: every document's status, then a summary line.
pub fn print_report(report: &CheckReport, with_ok: bool) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for entry in &report.entries {
        match entry {
            CheckEntry::Document(doc) => {
                for e in &doc.errors {
                    let _ = writeln!(out, "error: {e}");
                }
                for w in &doc.warnings {
                    let _ = writeln!(out, "warning: {w}");
                }
                if with_ok && doc.errors.is_empty() && doc.warnings.is_empty() {
                    let _ = writeln!(out, "{}: OK", doc.display_name());
                }
            }
            CheckEntry::LoadFailed { error, .. } => {
                let _ = writeln!(out, "error: {error}");
            }
        }
    }
    if with_ok {
        let s = report.summary();
        let mut line = format!(
            "{} document{}: {} OK, {} with warnings, {} with errors",
            s.documents,
            if s.documents == 1 { "" } else { "s" },
            s.ok,
            s.with_warnings,
            s.with_errors
        );
        if s.failed_sources > 0 {
            let _ = write!(line, "; {} unreadable source(s)", s.failed_sources);
        }
        let _ = writeln!(out, "{line}");
    }
}

/// An error and its causes on one line, as anyhow's `{:#}`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut s = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

const PALETTE: &[&str] = &["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];
const RESET: &str = "\x1b[0m";

/// The `up` printer: one line per log line, event and state change, each prefixed with
/// `pod/container` padded to a common width.
pub struct Printer {
    color: bool,
    width: usize,
    colors: HashMap<String, &'static str>,
    /// Last printed summary per pod uid: phase and container states.
    seen: HashMap<String, PodSummary>,
    /// Last printed rollout status per Deployment uid.
    rollouts: HashMap<String, String>,
}

#[derive(Default)]
struct PodSummary {
    phase: String,
    containers: HashMap<String, String>,
}

impl Printer {
    pub fn new(color: bool, width: usize) -> Self {
        Printer {
            color,
            width,
            colors: HashMap::new(),
            seen: HashMap::new(),
            rollouts: HashMap::new(),
        }
    }

    fn prefix(&mut self, namespace: &str, pod: &str, container: Option<&str>) -> String {
        let mut name = if namespace == "default" {
            pod.to_owned()
        } else {
            format!("{namespace}/{pod}")
        };
        if let Some(c) = container {
            name.push('/');
            name.push_str(c);
        }
        self.width = self.width.max(name.len());
        let padded = format!("{name:<width$}", width = self.width);
        if !self.color {
            return padded;
        }
        let n = self.colors.len();
        let color = *self
            .colors
            .entry(name)
            .or_insert(PALETTE[n % PALETTE.len()]);
        format!("\x1b[{color}m{padded}{RESET}")
    }

    fn emit(&self, line: &str) {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let _ = writeln!(out, "{line}");
    }

    /// A line of container output: `web/app | text`.
    pub fn log(&mut self, line: &LogLine) {
        let s = &line.source;
        let prefix = self.prefix(&s.namespace, &s.pod, Some(&s.container));
        self.emit(&format!("{prefix} | {}", line.text));
    }

    /// An event: `web/app * Killing: Stopping container app` (`!` for warnings).
    pub fn event(&mut self, event: &Event) {
        let o = &event.involved_object;
        let container = o
            .field_path
            .as_deref()
            .and_then(|p| p.split_once('{'))
            .map(|(_, rest)| rest.trim_end_matches('}').to_owned());
        let prefix = self.prefix(
            o.namespace.as_deref().unwrap_or("default"),
            o.name.as_deref().unwrap_or_default(),
            container.as_deref(),
        );
        let warning = event.type_.as_deref() == Some("Warning");
        let mark = if warning { "!" } else { "*" };
        let text = format!(
            "{}: {}",
            event.reason.as_deref().unwrap_or_default(),
            event.message.as_deref().unwrap_or_default()
        );
        let text = if warning && self.color {
            format!("\x1b[31m{text}{RESET}")
        } else {
            text
        };
        self.emit(&format!("{prefix} {mark} {text}"));
    }

    /// Phase and container state changes: `web = Running`, `web/app = Terminated: exit code
    /// 143 (Error, SIGTERM)`.
    pub fn pod(&mut self, pod: &Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(status) = &pod.status else {
            return;
        };
        let mut lines = Vec::new();
        let summary = self.seen.entry(uid).or_default();
        let statuses = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for cs in statuses {
            let Some(text) = container_state(cs) else {
                continue;
            };
            if summary.containers.get(&cs.name) != Some(&text) {
                summary.containers.insert(cs.name.clone(), text.clone());
                lines.push((Some(cs.name.clone()), text));
            }
        }
        let mut phase = status.phase.clone().unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some()
            && !matches!(phase.as_str(), "Succeeded" | "Failed")
        {
            phase = format!(
                "Terminating (grace {}s)",
                pod.metadata.deletion_grace_period_seconds.unwrap_or(0)
            );
        }
        if summary.phase != phase {
            summary.phase = phase.clone();
            lines.push((None, phase));
        }
        for (container, text) in lines {
            let prefix = self.prefix(&namespace, &name, container.as_deref());
            self.emit(&format!("{prefix} = {text}"));
        }
    }

    /// A Deployment changed: its rollout status in kubectl's words, when it is new
    /// (`deployment/web = Waiting for deployment "web" rollout to finish: 1 out of 3 new
    /// replicas have been updated...`); `gone` when the object was deleted.
    pub fn deployment(&mut self, d: &serde_json::Value, gone: bool) {
        let uid = d["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
        if gone {
            self.rollouts.remove(&uid);
            return;
        }
        let status = crate::model::workload::rollout_status(d);
        let message = status.message();
        if self.rollouts.get(&uid).map(String::as_str) == Some(message) {
            return;
        }
        self.rollouts.insert(uid, message.to_owned());
        let namespace = d["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = format!(
            "deployment/{}",
            d["metadata"]["name"].as_str().unwrap_or_default()
        );
        let prefix = self.prefix(namespace, &name, None);
        let mark = match status {
            crate::model::workload::RolloutStatus::Failed(_) => "!",
            _ => "=",
        };
        self.emit(&format!("{prefix} {mark} {message}"));
    }

    /// The pod object is gone.
    pub fn deleted(&mut self, pod: &Pod) {
        let prefix = self.prefix(
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default(),
            None,
        );
        if let Some(uid) = &pod.metadata.uid {
            self.seen.remove(uid);
        }
        self.emit(&format!("{prefix} = deleted"));
    }

    /// A line from podvisor itself.
    pub fn note(&self, text: &str) {
        if self.color {
            self.emit(&format!("\x1b[1mpodvisor:{RESET} {text}"));
        } else {
            self.emit(&format!("podvisor: {text}"));
        }
    }
}

/// A one-line summary of a container's state; None for the uninteresting initial waiting.
fn container_state(cs: &ContainerStatus) -> Option<String> {
    let state = cs.state.as_ref()?;
    if let Some(w) = &state.waiting {
        let reason = w.reason.clone().unwrap_or_default();
        if matches!(reason.as_str(), "ContainerCreating" | "PodInitializing") {
            return None;
        }
        return Some(match &w.message {
            Some(m) if !m.is_empty() => format!("Waiting: {reason} ({m})"),
            _ => format!("Waiting: {reason}"),
        });
    }
    if state.running.is_some() {
        return Some(format!("Running (restarts: {})", cs.restart_count));
    }
    if let Some(t) = &state.terminated {
        let reason = t.reason.clone().unwrap_or_default();
        let mut detail = reason;
        if t.exit_code > 128 && t.exit_code <= 128 + 64 {
            detail.push_str(", ");
            detail.push_str(&signal_name(t.exit_code - 128));
        }
        let mut s = format!("Terminated: exit code {} ({detail})", t.exit_code);
        if let Some(m) = t.message.as_deref().filter(|m| !m.is_empty()) {
            s.push_str(": ");
            s.push_str(m);
        }
        return Some(s);
    }
    None
}
