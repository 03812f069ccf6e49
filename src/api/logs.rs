//! The pod `log` subresource (kubectl-api.md §8): a container's log file (CRI format) as
//! plain text, with `container`, `previous`, `tailLines`, `sinceSeconds`, `sinceTime`,
//! `timestamps`, `limitBytes`, and `follow` (streamed line by line until the container
//! stops). Errors are upstream's: `validateContainer` (which container), `ValidatePodLogOptions`
//! (422 on `PodLogOptions`), and the kubelet's `previous terminated container … not found` and
//! `… is waiting to start` (400).
//!
//! Deviation: a `sinceTime` that does not parse gets Go's wording only approximately.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use tokio::sync::mpsc;

use super::objects::RequestInfo;
use super::options;
use super::query::Target;
use super::status::ApiError;
use super::{Ctx, stream};
use crate::model::field::{FieldError, FieldPath};
use crate::runtime::logs::pod_log_dir;
use crate::store::{Backend, resources};

/// The options of a log request.
struct LogOptions {
    tail_lines: Option<usize>,
    since: Option<Timestamp>,
    timestamps: bool,
    limit_bytes: Option<usize>,
    follow: bool,
}

/// `GET /api/v1/namespaces/<ns>/pods/<name>/log`.
pub async fn get_pod_log(
    ctx: &Arc<Ctx>,
    target: &Target,
    request: &RequestInfo,
) -> Result<Response, ApiError> {
    let name = target.name.clone().unwrap_or_default();
    let namespace = target.namespace.clone().unwrap_or_default();
    let value = ctx
        .store
        .get(&resources::PODS, &namespace, &name)
        .ok_or_else(|| ApiError::not_found(&resources::PODS, &name))?;
    let pod: Pod = serde_json::from_value(Value::clone(&value)).unwrap_or_default();
    let q = &request.query;
    let container = container_name(&pod, &name, q.get("container"))?;
    let previous = options::bool_param(q, "previous")?.unwrap_or(false);
    let tail_lines = options::int(q, "tailLines")?;
    let since_seconds = options::int(q, "sinceSeconds")?;
    let limit_bytes = options::int(q, "limitBytes")?;
    let since_time = q.get("sinceTime").filter(|t| !t.is_empty());
    // `ValidatePodLogOptions`: 422 on the PodLogOptions.
    let mut errors = Vec::new();
    if let Some(n) = tail_lines.filter(|n| *n < 0) {
        errors.push(FieldError::invalid(
            &FieldPath::new("tailLines"),
            n,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(n) = limit_bytes.filter(|n| *n < 1) {
        errors.push(FieldError::invalid(
            &FieldPath::new("limitBytes"),
            n,
            "must be greater than 0",
        ));
    }
    if since_seconds.is_some() && since_time.is_some() {
        errors.push(FieldError::forbidden(
            &FieldPath::default(),
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        ));
    }
    if let Some(n) = since_seconds.filter(|n| *n < 1) {
        errors.push(FieldError::invalid(
            &FieldPath::new("sinceSeconds"),
            n,
            "must be greater than 0",
        ));
    }
    if !errors.is_empty() {
        let mut e = ApiError::invalid(&resources::PODS, &name, &errors);
        e.message = e.message.replacen("Pod ", "PodLogOptions ", 1);
        if let Some(d) = e.details.as_mut() {
            d["kind"] = serde_json::json!("PodLogOptions");
        }
        return Err(e);
    }
    let options = LogOptions {
        tail_lines: tail_lines.map(|n| n as usize),
        since: match (since_seconds, since_time) {
            (Some(s), _) => Some(Timestamp::now() - jiff::SignedDuration::from_secs(s)),
            (None, Some(t)) => Some(t.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "parsing time {} as \"2006-01-02T15:04:05Z07:00\": cannot parse {} as \"2006\"",
                    crate::model::validation::go_quote(t),
                    crate::model::validation::go_quote(t)
                ))
            })?),
            _ => None,
        },
        timestamps: options::bool_param(q, "timestamps")?.unwrap_or(false),
        limit_bytes: limit_bytes.map(|n| n as usize),
        follow: options::bool_param(q, "follow")?.unwrap_or(false) && !previous,
    };
    let status = pod.status.as_ref();
    let cs = status
        .into_iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        })
        .find(|c| c.name == container);
    let waiting = |reason: &str| {
        ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
        ))
    };
    let Some(cs) = cs else {
        return Err(waiting("ContainerCreating"));
    };
    let restart = if previous {
        let has_previous = cs
            .last_state
            .as_ref()
            .is_some_and(|s| s.terminated.is_some());
        if !has_previous || cs.restart_count == 0 {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        cs.restart_count - 1
    } else {
        if cs.container_id.is_none() {
            let reason = cs
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.clone())
                .unwrap_or_else(|| "ContainerCreating".to_owned());
            return Err(waiting(&reason));
        }
        cs.restart_count
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let dir = pod_log_dir(&ctx.data_dir, &namespace, &name, &uid).join(&container);
    let files = log_files(&dir, restart);
    let mut text = Vec::new();
    let mut limit = options.limit_bytes;
    let mut lines = Vec::new();
    for f in &files {
        lines.extend(read_records(&fs::read(f).unwrap_or_default()));
    }
    let lines: Vec<Record> = lines
        .into_iter()
        .filter(|r| options.since.is_none_or(|s| r.time >= s))
        .collect();
    let skip = options
        .tail_lines
        .map_or(0, |n| lines.len().saturating_sub(n));
    for r in &lines[skip..] {
        if !push_line(&mut text, r, options.timestamps, &mut limit) {
            break;
        }
    }
    if !options.follow || limit == Some(0) {
        let mut response = (StatusCode::OK, text).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return Ok(response);
    }
    let (tx, body) = mpsc::channel::<Bytes>(64);
    let current = dir.join(format!("{restart}.log"));
    let ctx = ctx.clone();
    tokio::spawn(async move {
        if !text.is_empty() && tx.send(Bytes::from(text)).await.is_err() {
            return;
        }
        follow(
            &ctx, &current, &namespace, &name, &container, restart, options, limit, tx,
        )
        .await;
    });
    Ok(stream("text/plain", body))
}

/// Streams what is appended to `path` until the container instance stops.
#[allow(clippy::too_many_arguments)]
async fn follow(
    ctx: &Ctx,
    path: &Path,
    namespace: &str,
    name: &str,
    container: &str,
    restart: i32,
    options: LogOptions,
    mut limit: Option<usize>,
    tx: mpsc::Sender<Bytes>,
) {
    let mut offset = fs::metadata(path).map_or(0, |m| m.len());
    let mut pending = Vec::new();
    loop {
        let running = instance_running(ctx, namespace, name, container, restart);
        // A rotation renames the file: whatever is left in the old one was read; start over.
        let len = fs::metadata(path).map_or(0, |m| m.len());
        if len < offset {
            offset = 0;
        }
        if len > offset
            && let Ok(mut f) = fs::File::open(path)
            && f.seek(SeekFrom::Start(offset)).is_ok()
        {
            let mut chunk = Vec::new();
            if f.take(len - offset).read_to_end(&mut chunk).is_ok() {
                offset += chunk.len() as u64;
                pending.extend_from_slice(&chunk);
                let complete = pending
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |i| i + 1);
                let records = read_records(&pending[..complete]);
                pending.drain(..complete);
                let mut out = Vec::new();
                for r in &records {
                    if !push_line(&mut out, r, options.timestamps, &mut limit) {
                        break;
                    }
                }
                if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                    return;
                }
                if limit == Some(0) {
                    return;
                }
            }
        }
        if !running {
            return;
        }
        tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            () = tx.closed() => return,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// Whether the container instance still runs (its log may still grow).
fn instance_running(ctx: &Ctx, namespace: &str, name: &str, container: &str, restart: i32) -> bool {
    let Some(value) = ctx.store.get(&resources::PODS, namespace, name) else {
        return false;
    };
    let pod: Pod = serde_json::from_value(Value::clone(&value)).unwrap_or_default();
    pod.status
        .iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        })
        .find(|c| c.name == container)
        .is_some_and(|c| {
            c.restart_count == restart && c.state.as_ref().is_some_and(|s| s.terminated.is_none())
        })
}

/// The container to read: the `container` parameter, or the only one (upstream's
/// `validateContainer` and its messages; the `default-container` annotation is kubectl's,
/// not the server's).
fn container_name(pod: &Pod, pod_name: &str, requested: Option<&str>) -> Result<String, ApiError> {
    let spec = pod.spec.clone().unwrap_or_default();
    // `VisitContainers` order: init containers, containers, ephemeral containers.
    let all: Vec<String> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| c.name.clone())
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| c.name.clone()),
        )
        .collect();
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if all.iter().any(|n| n == c) => Ok(c.to_owned()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
        None if spec.containers.len() == 1 => Ok(spec.containers[0].name.clone()),
        None if spec.containers.is_empty() => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}"
        ))),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            all.join(" ")
        ))),
    }
}

/// The files of one container instance, oldest first: rotated ones, then the current one.
fn log_files(dir: &Path, restart: i32) -> Vec<PathBuf> {
    let base = format!("{restart}.log");
    let mut rotated: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{base}.")))
        })
        .collect();
    rotated.sort();
    rotated.push(dir.join(base));
    rotated
}

/// One line of output: its time and its text (partial records joined).
struct Record {
    time: Timestamp,
    raw_time: String,
    text: Vec<u8>,
}

/// Parses CRI log records, joining `P` (partial) records into the `F` that ends them.
fn read_records(bytes: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut partial: Option<Record> = None;
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let mut parts = line.splitn(4, |b| *b == b' ');
        let (Some(ts), Some(_stream), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let text = parts.next().unwrap_or_default();
        let raw_time = String::from_utf8_lossy(ts).into_owned();
        let Ok(time) = raw_time.parse::<Timestamp>() else {
            continue;
        };
        let record = partial.get_or_insert_with(|| Record {
            time,
            raw_time,
            text: Vec::new(),
        });
        record.text.extend_from_slice(text);
        if tag != b"P" {
            out.extend(partial.take());
        }
    }
    out.extend(partial);
    out
}

/// Appends a line, honouring `limitBytes`; false once the limit is reached.
fn push_line(out: &mut Vec<u8>, r: &Record, timestamps: bool, limit: &mut Option<usize>) -> bool {
    let mut line = Vec::with_capacity(r.text.len() + 40);
    if timestamps {
        line.extend_from_slice(r.raw_time.as_bytes());
        line.push(b' ');
    }
    line.extend_from_slice(&r.text);
    line.push(b'\n');
    match limit {
        Some(left) => {
            let n = line.len().min(*left);
            out.extend_from_slice(&line[..n]);
            *left -= n;
            *left > 0
        }
        None => {
            out.extend_from_slice(&line);
            true
        }
    }
}
