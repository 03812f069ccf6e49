//! Watch streams (kubectl-api.md §5): newline-delimited `{"type":…,"object":…}` events;
//! synthetic ADDED events for the current objects when no resourceVersion (or `0`) is given,
//! a replay from history otherwise (an `ERROR` event with a 410 Status when it is too old);
//! label and field selectors; `timeoutSeconds`; Table-wrapped objects for `kubectl get -w`;
//! bookmarks when asked for (a minute apart, and 2 s before the timeout, as the watch cache
//! sends them); streaming lists (`sendInitialEvents`, the WatchList feature, on in 1.32) with
//! the `k8s.io/initial-events-end` bookmark; selector transitions as ADDED and DELETED.
//!
//! Deviation: bookmark objects carry `kind`, `apiVersion` and `metadata` only; upstream's are
//! the kind's whole zero value (`"spec":{"containers":null}` for a pod).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::objects::{RequestInfo, Selectors, include_object};
use super::options::ListOptions;
use super::query::Target;
use super::status::ApiError;
use super::{Ctx, stream};
use crate::model::table;
use crate::store::{Backend, Change, ChangeType};

/// How one event's object is rendered.
struct Render {
    table: bool,
    include: table::IncludeObject,
    /// Column definitions go in the first Table event only, as upstream does.
    first: bool,
}

impl Render {
    fn event(&mut self, kind: &str, change_type: &str, object: &Value) -> Bytes {
        let object = if self.table {
            let rv = object["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let mut t = table::table(
                kind,
                std::slice::from_ref(object),
                &rv,
                self.include,
                Timestamp::now(),
            );
            if !self.first {
                t["columnDefinitions"] = Value::Null;
            }
            self.first = false;
            t
        } else {
            object.clone()
        };
        let mut line = json!({"type": change_type, "object": object}).to_string();
        line.push('\n');
        Bytes::from(line)
    }
}

/// What a watch starts with.
struct Start {
    /// Events to send first (synthetic ADDED, or a replay from history).
    initial: Vec<(ChangeType, Arc<Value>)>,
    /// The resourceVersion the stream continues from.
    resource_version: u64,
    /// The receiver of later changes; None when the resourceVersion is too old (an ERROR
    /// event with this message is all the stream carries).
    rx: Result<broadcast::Receiver<Change>, String>,
    /// Send the `k8s.io/initial-events-end` bookmark after `initial` (streaming lists).
    initial_events_end: bool,
}

/// `GET <collection>?watch=true`.
pub async fn watch_objects(
    ctx: &Arc<Ctx>,
    target: &Target,
    request: &RequestInfo,
    options: &ListOptions,
) -> Result<Response, ApiError> {
    let selectors = Selectors::parse(&request.query, target.resource)?;
    let table = request.accept.contains("as=Table");
    let include = if table {
        include_object(&request.query)?
    } else {
        table::IncludeObject::default()
    };
    let mut render = Render {
        table,
        include,
        first: true,
    };
    let timeout = options
        .timeout_seconds
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s as u64));
    let bookmarks = options.allow_watch_bookmarks;
    let resource = target.resource;
    let namespace = target.namespace.clone();
    let in_scope = move |c: &Change| {
        c.resource == resource
            && namespace
                .as_deref()
                .is_none_or(|ns| c.object["metadata"]["namespace"].as_str() == Some(ns))
    };
    let snapshot = |ctx: &Ctx| {
        let (objects, rv, rx) = ctx.store.snapshot();
        let initial = objects
            .into_iter()
            .filter(|c| in_scope(c) && selectors.matches(&c.object))
            .map(|c| (ChangeType::Added, c.object))
            .collect();
        (initial, rv, rx)
    };
    let start = match (options.send_initial_events, options.resource_version) {
        // A streaming list: the current state, then the end-of-initial-events bookmark.
        (Some(true), _) => {
            let (initial, rv, rx) = snapshot(ctx);
            Start {
                initial,
                resource_version: rv,
                rx: Ok(rx),
                initial_events_end: bookmarks,
            }
        }
        // Unset or 0 (without sendInitialEvents): synthetic ADDED events for what exists.
        (None, None | Some(0)) => {
            let (initial, rv, rx) = snapshot(ctx);
            Start {
                initial,
                resource_version: rv,
                rx: Ok(rx),
                initial_events_end: false,
            }
        }
        // sendInitialEvents=false from "any" version: changes from now on.
        (Some(false), None | Some(0)) => {
            let (_, rv, rx) = ctx.store.snapshot();
            Start {
                initial: Vec::new(),
                resource_version: rv,
                rx: Ok(rx),
                initial_events_end: false,
            }
        }
        // From a resourceVersion: a replay of the history after it.
        (_, Some(rv)) => match ctx.store.watch_from(rv) {
            Ok((replay, rx)) => Start {
                initial: replay
                    .into_iter()
                    .filter_map(|c| selected(&c, &in_scope, &selectors))
                    .collect(),
                resource_version: rv,
                rx: Ok(rx),
                initial_events_end: false,
            },
            Err(error) => Start {
                initial: Vec::new(),
                resource_version: rv,
                rx: Err(error.to_string()),
                initial_events_end: false,
            },
        },
    };
    let (tx, body) = mpsc::channel::<Bytes>(64);
    let kind = resource.kind;
    let api_version = resource.api_version();
    let shutdown = ctx.shutdown.clone();
    let bookmark = move |rv: u64, initial_end: bool| {
        let mut metadata = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": kind, "apiVersion": api_version, "metadata": metadata});
        let mut line = json!({"type": "BOOKMARK", "object": object}).to_string();
        line.push('\n');
        Bytes::from(line)
    };
    tokio::spawn(async move {
        let mut rx = match start.rx {
            Ok(rx) => rx,
            Err(message) => {
                // The watch cache answers an expired resourceVersion with one ERROR event.
                let status = ApiError::expired(message).to_status();
                let mut line = json!({"type": "ERROR", "object": status}).to_string();
                line.push('\n');
                // Why ignored: a client that left needs no error.
                let _ = tx.send(Bytes::from(line)).await;
                return;
            }
        };
        let mut last_rv = start.resource_version;
        for (change_type, object) in start.initial {
            if tx
                .send(render.event(kind, change_type.as_str(), &object))
                .await
                .is_err()
            {
                return;
            }
        }
        if start.initial_events_end && tx.send(bookmark(last_rv, true)).await.is_err() {
            return;
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut next_bookmark = next_bookmark_time(tokio::time::Instant::now(), deadline);
        loop {
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let until_bookmark = async {
                match next_bookmark {
                    Some(t) if bookmarks => tokio::time::sleep_until(t).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = until_deadline => return,
                () = tx.closed() => return,
                () = until_bookmark => {
                    if tx.send(bookmark(last_rv, false)).await.is_err() {
                        return;
                    }
                    next_bookmark = next_bookmark_time(tokio::time::Instant::now(), deadline);
                }
                change = rx.recv() => match change {
                    Ok(c) => {
                        last_rv = c.resource_version;
                        let Some((change_type, object)) = selected(&c, &in_scope, &selectors) else {
                            continue;
                        };
                        if tx.send(render.event(kind, change_type.as_str(), &object)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // The client fell behind the history: it must relist, as after a 410.
                        let status = ApiError::expired("the watch fell behind; relist and watch again").to_status();
                        let mut line = json!({"type": "ERROR", "object": status}).to_string();
                        line.push('\n');
                        // Why ignored: the stream ends either way.
                        let _ = tx.send(Bytes::from(line)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    Ok(stream("application/json", body))
}

/// What a watcher with selectors sees of a change (the cacher's `convertToWatchEvent`): an
/// object entering the selection is ADDED, one leaving it is DELETED (with its previous
/// content and the change's resourceVersion), one staying in it is MODIFIED.
fn selected(
    c: &Change,
    in_scope: &impl Fn(&Change) -> bool,
    selectors: &Selectors,
) -> Option<(ChangeType, Arc<Value>)> {
    if !in_scope(c) {
        return None;
    }
    let now = c.change_type != ChangeType::Deleted && selectors.matches(&c.object);
    let before = match (c.change_type, &c.previous) {
        (ChangeType::Deleted, _) => selectors.matches(&c.object),
        (_, Some(previous)) => selectors.matches(previous),
        (_, None) => false,
    };
    match (now, before) {
        (true, false) => Some((ChangeType::Added, c.object.clone())),
        (true, true) => Some((ChangeType::Modified, c.object.clone())),
        (false, true) if c.change_type == ChangeType::Deleted => {
            Some((ChangeType::Deleted, c.object.clone()))
        }
        (false, true) => {
            let mut old = Value::clone(c.previous.as_deref()?);
            old["metadata"]["resourceVersion"] = json!(c.resource_version.to_string());
            Some((ChangeType::Deleted, Arc::new(old)))
        }
        (false, false) => None,
    }
}

/// When the next bookmark is due (the cacher's `nextBookmarkTime`): a minute from now, or 2 s
/// before the watch's deadline if that is sooner; none once that moment has passed.
fn next_bookmark_time(
    now: tokio::time::Instant,
    deadline: Option<tokio::time::Instant>,
) -> Option<tokio::time::Instant> {
    let mut at = now + BOOKMARK_FREQUENCY;
    if let Some(d) = deadline {
        let pre_timeout = d.checked_sub(Duration::from_secs(2))?;
        at = at.min(pre_timeout);
    }
    (at >= now).then_some(at)
}

/// How often a watch that allows bookmarks gets one (upstream's `bookmarkFrequency`).
const BOOKMARK_FREQUENCY: Duration = Duration::from_secs(60);
