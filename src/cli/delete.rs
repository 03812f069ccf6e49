//! `podvisor delete`: kubectl's `delete` (by name, `-f`, `-l`, `--all`) with its grace-period
//! rules, then, by default, a wait until every deleted object is gone (a watch from the
//! object's resourceVersion with a `metadata.name` field selector, as kubectl's informer).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{ArgAction, Args};
use serde_json::json;

use super::client::{self, ApiResource, Discovery, JSON, encode};
use super::get::{requests, selectors};
use super::{ClientArgs, Session, report};
use crate::model::manifest;

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// TYPE NAME..., TYPE/NAME..., or TYPE with -l or --all.
    #[arg(value_name = "TYPE [NAME...]")]
    pub resources: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Delete the objects of these manifests (files, folders, `-` for stdin).
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub filenames: Vec<String>,
    /// Read folders given with -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Delete the objects of TYPE that match this label selector.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Delete the objects of TYPE that match this field selector.
    #[arg(long, value_name = "SELECTOR")]
    pub field_selector: Option<String>,
    /// Delete every object of TYPE in the namespace.
    #[arg(long)]
    pub all: bool,
    /// With --all or -l: in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Seconds the object gets to terminate; -1 uses its own (a pod's
    /// terminationGracePeriodSeconds). 0 means 1 unless --force.
    #[arg(long, value_name = "SECONDS", default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Grace period 1: signal the pod to stop now.
    #[arg(long)]
    pub now: bool,
    /// With --grace-period=0 (the default with --force): remove the objects at once, without
    /// waiting for their processes to stop.
    #[arg(long)]
    pub force: bool,
    /// Wait until the objects are gone before returning (--wait=false not to).
    #[arg(long, action = ArgAction::Set, default_value_t = true, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub wait: bool,
    /// How long to wait (0: a week); a Go duration such as 30s or 5m.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = super::parse_duration)]
    pub timeout: Duration,
    /// Succeed when an object does not exist (the default with --all and -l).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub ignore_not_found: Option<bool>,
    /// `-o name`: print TYPE/NAME of each deleted object.
    #[arg(short = 'o', long, value_name = "FORMAT", value_parser = ["name"])]
    pub output: Option<String>,
}

/// One object to delete.
struct Target {
    resource: ApiResource,
    namespace: Option<String>,
    name: String,
    /// The manifest it came from, for messages.
    source: Option<String>,
}

pub async fn run(mut args: DeleteArgs) -> anyhow::Result<ExitCode> {
    if args.now {
        if args.grace_period != -1 {
            bail!("--now and --grace-period cannot be specified together");
        }
        args.grace_period = 1;
    }
    if args.grace_period == 0 && !args.force {
        // kubectl keeps --grace-period=0 from deleting by accident: it means 1 without --force.
        args.grace_period = 1;
    }
    if args.force && args.grace_period < 0 {
        args.grace_period = 0;
    }
    if args.all && args.selector.is_some() {
        bail!("cannot set --all and --selector at the same time");
    }
    if args.all && args.field_selector.is_some() {
        bail!("cannot set --all and --field-selector at the same time");
    }
    if args.force && args.grace_period > 0 {
        bail!("--force and --grace-period greater than 0 cannot be specified together");
    }
    if args.force && args.grace_period == 0 {
        eprintln!(
            "Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely."
        );
    }
    let selecting = args.all || args.selector.is_some() || args.field_selector.is_some();
    let ignore_not_found = args.ignore_not_found.unwrap_or(selecting);
    let session = Session::connect(&args.client)?;
    let discovery = session.client.discover().await?;
    let mut failed = false;
    let targets = targets(&session, &discovery, &args).await?;
    if targets.is_empty() {
        super::print::out("No resources found\n");
        return Ok(ExitCode::SUCCESS);
    }
    let mut deleted: Vec<(Target, String)> = Vec::new();
    let mut body = json!({"propagationPolicy": "Background"});
    if args.grace_period >= 0 {
        body["gracePeriodSeconds"] = json!(args.grace_period);
    }
    for target in targets {
        let path = target
            .resource
            .path(target.namespace.as_deref(), Some(&target.name));
        let reply = session
            .client
            .call(
                "DELETE",
                &path,
                Some(JSON),
                JSON,
                body.to_string().into_bytes(),
            )
            .await?;
        if !reply.ok() {
            let error = reply.server_error(target.source.as_deref().map(|s| ("deleting", s)));
            if ignore_not_found && client::is_not_found(&error) {
                continue;
            }
            report(&error);
            failed = true;
            continue;
        }
        let answer = reply.json()?;
        // The uid tells our object from a new one of the same name (kubectl's UIDMap).
        let uid = answer["details"]["uid"]
            .as_str()
            .or(answer["metadata"]["uid"].as_str())
            .unwrap_or_default()
            .to_owned();
        let kind = target.resource.kind_prefix();
        if args.output.is_some() {
            super::print::out(&format!("{kind}/{}\n", target.name));
        } else if args.grace_period == 0 {
            super::print::out(&format!("{kind} \"{}\" force deleted\n", target.name));
        } else {
            super::print::out(&format!("{kind} \"{}\" deleted\n", target.name));
        }
        deleted.push((target, uid));
    }
    if args.wait && !deleted.is_empty() {
        let timeout = if args.timeout.is_zero() {
            Duration::from_secs(7 * 24 * 3600)
        } else {
            args.timeout
        };
        let deadline = tokio::time::Instant::now() + timeout;
        for (target, uid) in &deleted {
            let wait = wait_deleted(&session, target, uid);
            match tokio::time::timeout_at(deadline, wait).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    report(&e);
                    failed = true;
                }
                Err(_) => {
                    eprintln!(
                        "error: timed out waiting for the condition on {}/{}",
                        target.resource.qualified_plural(),
                        target.name
                    );
                    failed = true;
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What the arguments name: objects of manifests, named objects, or the objects a selector
/// (or `--all`) picks from a list.
async fn targets(
    session: &Session,
    discovery: &Discovery,
    args: &DeleteArgs,
) -> anyhow::Result<Vec<Target>> {
    let mut out = Vec::new();
    if !args.filenames.is_empty() {
        if !args.resources.is_empty() {
            bail!("resource names cannot be given with -f; the manifests name the objects");
        }
        let paths = super::apply::expand_paths(&args.filenames, args.recursive)?;
        let documents = manifest::load(&paths)?;
        for d in documents {
            let api_version = d.value["apiVersion"].as_str().unwrap_or_default();
            let kind = d.value["kind"].as_str().unwrap_or_default();
            let name = d.value["metadata"]["name"].as_str().unwrap_or_default();
            let Some(resource) = discovery.by_kind(api_version, kind) else {
                bail!(
                    "resource mapping not found for name: {name:?} from {:?}: no matches for kind {kind:?} in version {api_version:?}",
                    d.source
                );
            };
            if name.is_empty() {
                bail!(
                    "{}: document {}: metadata.name is required",
                    d.source,
                    d.index + 1
                );
            }
            let namespace = d.value["metadata"]["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(&session.namespace)
                .to_owned();
            out.push(Target {
                resource: resource.clone(),
                namespace: resource.namespaced.then_some(namespace),
                name: name.to_owned(),
                source: Some(d.source.clone()),
            });
        }
        return Ok(out);
    }
    if args.resources.is_empty() {
        bail!(
            "you must provide one or more resources by argument or filename (-f); example resource types: pods, configmaps, secrets, namespaces"
        );
    }
    let selecting = args.all || args.selector.is_some() || args.field_selector.is_some();
    let requests = requests(discovery, &args.resources)?;
    if !selecting && requests.iter().any(|r| r.name.is_none()) {
        bail!(
            "resource(s) were provided, but no name was specified; name objects, or use --all or -l"
        );
    }
    let query = selectors(args.selector.as_deref(), args.field_selector.as_deref());
    for r in requests {
        match r.name {
            Some(name) => out.push(Target {
                namespace: r.resource.namespaced.then(|| session.namespace.clone()),
                resource: r.resource,
                name,
                source: None,
            }),
            None => {
                let namespace = (!args.all_namespaces).then_some(session.namespace.as_str());
                let path = format!("{}?limit=500{query}", r.resource.path(namespace, None));
                let list = client::check(session.client.get(&path, JSON).await?)?.json()?;
                for item in list["items"].as_array().into_iter().flatten() {
                    out.push(Target {
                        resource: r.resource.clone(),
                        namespace: item["metadata"]["namespace"].as_str().map(str::to_owned),
                        name: item["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        source: None,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Waits until the object with `uid` is gone: a GET (gone, or replaced by another uid, ends
/// the wait), then a watch from that version with a `metadata.name` field selector until its
/// DELETED event; an expired watch starts over.
async fn wait_deleted(session: &Session, target: &Target, uid: &str) -> anyhow::Result<()> {
    let r = &target.resource;
    let ns = target.namespace.as_deref();
    loop {
        let reply = session
            .client
            .get(&r.path(ns, Some(&target.name)), JSON)
            .await?;
        if reply.status == 404 {
            return Ok(());
        }
        let current = client::check(reply)?.json()?;
        if !uid.is_empty() && current["metadata"]["uid"].as_str() != Some(uid) {
            return Ok(());
        }
        let rv = current["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_owned();
        let path = format!(
            "{}?watch=true&allowWatchBookmarks=true&resourceVersion={}&fieldSelector={}&timeoutSeconds=300",
            r.path(ns, None),
            encode(&rv),
            encode(&format!("metadata.name={}", target.name))
        );
        let mut gone = false;
        session
            .client
            .watch(&path, JSON, |event| {
                let object = &event["object"];
                gone = match event["type"].as_str() {
                    Some("DELETED") => {
                        uid.is_empty() || object["metadata"]["uid"].as_str() == Some(uid)
                    }
                    // Expired: start over with a fresh GET.
                    Some("ERROR") => return Ok(false),
                    _ => false,
                };
                Ok(!gone)
            })
            .await?;
        if gone {
            return Ok(());
        }
    }
}
