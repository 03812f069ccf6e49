//! Watch streams (kubectl-api.md §5): newline-delimited `{"type":…,"object":…}` events;
//! synthetic ADDED events for the current objects when no resourceVersion (or `0`) is given,
//! a replay from history otherwise (an `ERROR` event with a 410 Status when it is too old);
//! label and field selectors; `timeoutSeconds`; Table-wrapped objects for `kubectl get -w`;
//! bookmarks when asked for.

use std::time::Duration;

use axum::body::Bytes;
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::objects::{RequestInfo, Selectors};
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

/// `GET <collection>?watch=true`.
pub async fn watch_objects(
    ctx: &std::sync::Arc<Ctx>,
    target: &Target,
    request: &RequestInfo,
) -> Result<Response, ApiError> {
    let selectors = Selectors::parse(&request.query, target.resource)?;
    let include = table::IncludeObject::parse(request.query.get("includeObject").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let mut render = Render {
        table: request.accept.contains("as=Table"),
        include,
        first: true,
    };
    let timeout = request
        .query
        .int("timeoutSeconds")
        .map_err(ApiError::bad_request)?
        .map(|s| Duration::from_secs(s.max(0) as u64));
    let bookmarks = request.query.flag("allowWatchBookmarks");
    let resource = target.resource;
    let namespace = target.namespace.clone();
    let in_scope = move |c: &Change| {
        c.resource == resource
            && namespace
                .as_deref()
                .is_none_or(|ns| c.object["metadata"]["namespace"].as_str() == Some(ns))
    };
    let rv_param = request.query.get("resourceVersion").unwrap_or("");
    let (initial, rx, mut last_rv): (Vec<(ChangeType, std::sync::Arc<Value>)>, _, u64) =
        if rv_param.is_empty() || rv_param == "0" {
            let (objects, rv, rx) = ctx.store.snapshot();
            (
                objects
                    .into_iter()
                    .filter(|c| in_scope(c) && selectors.matches(&c.object))
                    .map(|c| (ChangeType::Added, c.object))
                    .collect(),
                Some(rx),
                rv,
            )
        } else {
            let rv: u64 = rv_param.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid resource version: {rv_param:?}"))
            })?;
            match ctx.store.watch_from(rv) {
                Ok((replay, rx)) => (
                    replay
                        .into_iter()
                        .filter(|c| in_scope(c) && selectors.matches(&c.object))
                        .map(|c| (c.change_type, c.object))
                        .collect(),
                    Some(rx),
                    rv,
                ),
                Err(error) => {
                    tracing::debug!(%error, "watch from an expired resourceVersion");
                    (Vec::new(), None, rv)
                }
            }
        };
    let (tx, body) = mpsc::channel::<Bytes>(64);
    let kind = resource.kind;
    let api_version = resource.api_version();
    let shutdown = ctx.shutdown.clone();
    let expired_message = match &rx {
        None => Some(format!("too old resource version: {rv_param}")),
        Some(_) => None,
    };
    tokio::spawn(async move {
        if let Some(message) = expired_message {
            let status = ApiError::expired(message).to_status();
            let mut line = json!({"type": "ERROR", "object": status}).to_string();
            line.push('\n');
            let _ = tx.send(Bytes::from(line)).await;
            return;
        }
        for (change_type, object) in initial {
            if tx
                .send(render.event(kind, change_type.as_str(), &object))
                .await
                .is_err()
            {
                return;
            }
        }
        let mut rx = rx.expect("checked above");
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut bookmark_tick = tokio::time::interval(Duration::from_secs(30));
        bookmark_tick.tick().await;
        loop {
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = until_deadline => return,
                () = tx.closed() => return,
                _ = bookmark_tick.tick(), if bookmarks => {
                    let object = json!({"kind": kind, "apiVersion": api_version,
                        "metadata": {"resourceVersion": last_rv.to_string()}});
                    let mut line = json!({"type": "BOOKMARK", "object": object}).to_string();
                    line.push('\n');
                    if tx.send(Bytes::from(line)).await.is_err() {
                        return;
                    }
                }
                change = rx.recv() => match change {
                    Ok(c) => {
                        last_rv = c.resource_version;
                        if !in_scope(&c) || !selectors.matches(&c.object) {
                            continue;
                        }
                        if tx.send(render.event(kind, c.change_type.as_str(), &c.object)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // The client fell behind the history: it must relist, as after a 410.
                        let status = ApiError::expired("the watch fell behind; relist and watch again").to_status();
                        let mut line = json!({"type": "ERROR", "object": status}).to_string();
                        line.push('\n');
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
