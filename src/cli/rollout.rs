//! `podvisor rollout status|history|undo|restart|pause|resume`: kubectl's `rollout` commands
//! for Deployments, with kubectl's wording (`pkg/polymorphichelpers`: the status viewer, the
//! history viewer, the rollbacker, the restarter, the pauser and resumer).
//!
//! Must not: decide rollout state itself (the status words are
//! `model::workload::rollout_status`, the new ReplicaSet is `controller::deployment`'s), or poll:
//! `status` follows a watch.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{ArgAction, Args, Subcommand};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{Value, json};

use super::client::{self, ApiResource, JSON, encode};
use super::{ClientArgs, Session};
use crate::model::workload::{RolloutStatus, rollout_status};

const REVISION: &str = "deployment.kubernetes.io/revision";
const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
const HASH_LABEL: &str = "pod-template-hash";
/// Annotations a rollback does not copy from the ReplicaSet (kubectl's
/// `annotationsToSkip`).
const SKIPPED_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

#[derive(Debug, Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub command: RolloutCommand,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Show the status of the rollout, following it until it is done (kubectl's words).
    Status(StatusArgs),
    /// The revisions of a Deployment (REVISION, CHANGE-CAUSE), or one revision's template.
    History(HistoryArgs),
    /// Roll back to the previous revision, or to --to-revision.
    Undo(UndoArgs),
    /// Restart every pod through a new rollout (the template's restartedAt annotation).
    Restart(Target),
    /// Pause the rollout: template changes make no new ReplicaSet until resumed.
    Pause(Target),
    /// Resume a paused rollout.
    Resume(Target),
}

/// TYPE NAME or TYPE/NAME, and how to reach the node.
#[derive(Debug, Args)]
pub struct Target {
    #[command(flatten)]
    pub client: ClientArgs,
    /// deployment/NAME, or deployment NAME.
    #[arg(required = true, num_args = 1..=2, value_name = "TYPE/NAME")]
    pub target: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: Target,
    /// Follow the rollout until it is done (--watch=false: print the status once).
    #[arg(short = 'w', long, action = ArgAction::Set, default_value_t = true, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub watch: bool,
    /// Give up after this long (0: never); a Go duration such as 30s or 5m.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = super::parse_duration)]
    pub timeout: Duration,
    /// Only 0 (the latest revision) is supported for Deployments here.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub revision: i64,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub target: Target,
    /// Print the pod template of this revision.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub revision: i64,
}

#[derive(Debug, Args)]
pub struct UndoArgs {
    #[command(flatten)]
    pub target: Target,
    /// The revision to roll back to (0: the previous one).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub to_revision: i64,
}

pub async fn run(args: RolloutArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        RolloutCommand::Status(a) => status(a).await,
        RolloutCommand::History(a) => history(a).await,
        RolloutCommand::Undo(a) => undo(a).await,
        RolloutCommand::Restart(t) => restart(t).await,
        RolloutCommand::Pause(t) => set_paused(t, true).await,
        RolloutCommand::Resume(t) => set_paused(t, false).await,
    }
}

/// A Deployment named on the command line: the session, its path and name.
struct Resolved {
    session: Session,
    resource: ApiResource,
    name: String,
    path: String,
}

async fn resolve(target: &Target) -> anyhow::Result<Resolved> {
    let (word, name) = match target.target.as_slice() {
        [one] => one
            .split_once('/')
            .map(|(w, n)| (w.to_owned(), n.to_owned()))
            .context("one argument must be TYPE/NAME, such as deployment/web")?,
        [word, name] => (word.clone(), name.clone()),
        _ => bail!("expected TYPE NAME or TYPE/NAME"),
    };
    let session = Session::connect(&target.client)?;
    let discovery = session.client.discover().await?;
    let resource = discovery.resolve_one(&word)?;
    if resource.plural != "deployments" || resource.group != "apps" {
        bail!(
            "no rollout support for {}: podvisor rolls out deployments (deployment.apps)",
            resource.qualified_plural()
        );
    }
    let path = resource.path(Some(&session.namespace), Some(&name));
    Ok(Resolved {
        session,
        resource,
        name,
        path,
    })
}

impl Resolved {
    async fn get(&self) -> anyhow::Result<Value> {
        client::check(self.session.client.get(&self.path, JSON).await?)
            .map_err(|e| {
                e.context(format!(
                    "{} {:?}",
                    self.resource.qualified_plural(),
                    self.name
                ))
            })?
            .json()
    }

    fn prefix(&self) -> String {
        format!("{}/{}", self.resource.kind_prefix(), self.name)
    }

    async fn patch(&self, content_type: &str, body: &Value) -> anyhow::Result<Value> {
        let reply = self
            .session
            .client
            .call(
                "PATCH",
                &self.path,
                Some(content_type),
                JSON,
                serde_json::to_vec(body)?,
            )
            .await?;
        client::check(reply)?.json()
    }

    /// The ReplicaSets this Deployment controls (by its selector and controller reference).
    async fn replica_sets(&self, d: &Value) -> anyhow::Result<Vec<ReplicaSet>> {
        let selector = crate::model::workload::selector_string(d.pointer("/spec/selector"), false);
        let path = format!(
            "/apis/apps/v1/namespaces/{}/replicasets?labelSelector={}",
            encode(&self.session.namespace),
            encode(&selector)
        );
        let list = client::check(self.session.client.get(&path, JSON).await?)?.json()?;
        let uid = d["metadata"]["uid"].as_str().unwrap_or_default();
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|rs| {
                rs["metadata"]["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|o| o["controller"] == true && o["uid"] == uid)
            })
            .filter_map(|rs| serde_json::from_value(rs.clone()).ok())
            .collect())
    }
}

/// `rollout status`: the status line whenever it changes, until done; a progress deadline
/// exceeded is an error.
async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    if args.revision < 0 {
        bail!("--revision must be a positive integer: {}", args.revision);
    }
    if args.revision > 0 {
        bail!("--revision is not supported by podvisor rollout status (0 follows the latest)");
    }
    let r = resolve(&args.target).await?;
    let follow = async {
        let mut last = String::new();
        loop {
            let d = r.get().await?;
            let rv = d["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("0")
                .to_owned();
            if let Some(done) = show_status(&d, &mut last, args.watch)? {
                return Ok(done);
            }
            let path = format!(
                "{}?watch=true&resourceVersion={}&fieldSelector={}&timeoutSeconds=300",
                r.resource.path(Some(&r.session.namespace), None),
                encode(&rv),
                encode(&format!("metadata.name={}", r.name))
            );
            let mut outcome: Option<anyhow::Result<ExitCode>> = None;
            r.session
                .client
                .watch(&path, JSON, |event| match event["type"].as_str() {
                    Some("ADDED" | "MODIFIED") => {
                        match show_status(&event["object"], &mut last, true) {
                            Ok(Some(code)) => {
                                outcome = Some(Ok(code));
                                Ok(false)
                            }
                            Ok(None) => Ok(true),
                            Err(e) => {
                                outcome = Some(Err(e));
                                Ok(false)
                            }
                        }
                    }
                    Some("DELETED") => {
                        outcome = Some(Err(anyhow::anyhow!("object has been deleted")));
                        Ok(false)
                    }
                    // Expired or bookmark: start over with a fresh GET.
                    Some("ERROR") => Ok(false),
                    _ => Ok(true),
                })
                .await?;
            if let Some(outcome) = outcome {
                return outcome;
            }
        }
    };
    if args.timeout.is_zero() {
        follow.await
    } else {
        tokio::time::timeout(args.timeout, follow)
            .await
            .map_err(|_| anyhow::anyhow!("timed out waiting for the condition"))?
    }
}

/// Prints the status if it changed; `Some` when the command is over (done, or not watching).
fn show_status(d: &Value, last: &mut String, watch: bool) -> anyhow::Result<Option<ExitCode>> {
    let step = status_step(d, last, watch)?;
    if let Some(line) = step.print {
        println!("{line}");
        *last = line;
    }
    Ok(step.over.then_some(ExitCode::SUCCESS))
}

/// What one observed Deployment means for `rollout status`.
#[derive(Debug, PartialEq)]
struct StatusStep {
    /// The line to print: the status, when it differs from the `last` line printed.
    print: Option<String>,
    /// The command is over (the rollout is done, or not watching).
    over: bool,
}

/// `rollout status`'s step over one observed Deployment (pure): an error once the progress
/// deadline is exceeded.
fn status_step(d: &Value, last: &str, watch: bool) -> anyhow::Result<StatusStep> {
    let status = rollout_status(d);
    if let RolloutStatus::Failed(message) = &status {
        bail!("{message}");
    }
    let message = status.message();
    Ok(StatusStep {
        print: (message != last).then(|| message.to_owned()),
        over: matches!(status, RolloutStatus::Done(_)) || !watch,
    })
}

fn revision_of(rs: &ReplicaSet) -> Option<i64> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(REVISION)?
        .parse()
        .ok()
}

/// A ReplicaSet's template without the `pod-template-hash` label (what the Deployment had).
fn template_without_hash(rs: &ReplicaSet) -> Option<PodTemplateSpec> {
    let mut template = rs.spec.as_ref()?.template.clone()?;
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
    }
    Some(template)
}

/// `rollout history`: `REVISION  CHANGE-CAUSE` rows, or one revision's pod template.
async fn history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    if args.revision < 0 {
        bail!("--revision must be a positive integer: {}", args.revision);
    }
    let r = resolve(&args.target).await?;
    let d = r.get().await?;
    let mut by_revision: Vec<(i64, ReplicaSet)> = r
        .replica_sets(&d)
        .await?
        .into_iter()
        .filter_map(|rs| revision_of(&rs).map(|n| (n, rs)))
        .collect();
    by_revision.sort_by_key(|(n, _)| *n);
    if args.revision > 0 {
        let Some((_, rs)) = by_revision.iter().find(|(n, _)| *n == args.revision) else {
            bail!("unable to find the specified revision");
        };
        // kubectl's history viewer: the ReplicaSet's template as it is (hash label included),
        // with the change cause as a template annotation.
        let mut template = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .unwrap_or_default();
        if let Some(cause) = rs
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CHANGE_CAUSE))
        {
            template
                .metadata
                .get_or_insert_with(Default::default)
                .annotations
                .get_or_insert_with(Default::default)
                .insert(CHANGE_CAUSE.to_owned(), cause.clone());
        }
        println!("{} with revision #{}", r.prefix(), args.revision);
        println!(
            "{}",
            super::describe::pod_template_untabbed(&serde_json::to_value(&template)?)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = super::print::TabWriter::for_describe();
    out.write("REVISION\tCHANGE-CAUSE\n");
    for (n, rs) in &by_revision {
        let cause = rs
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CHANGE_CAUSE))
            .map_or("<none>", String::as_str);
        out.write(&format!("{n}\t{cause}\n"));
    }
    out.flush();
    // kubectl's name printer with no operation leaves a space before the newline.
    println!("{} ", r.prefix());
    println!("{}", out.take());
    Ok(ExitCode::SUCCESS)
}

/// `rollout undo`: the Deployment's template (and annotations) back to a revision's.
async fn undo(args: UndoArgs) -> anyhow::Result<ExitCode> {
    if args.to_revision < 0 {
        bail!(
            "--to-revision must be a non-negative integer: {}",
            args.to_revision
        );
    }
    let r = resolve(&args.target).await?;
    let d = r.get().await?;
    let rss = r.replica_sets(&d).await?;
    let target = rollback_target(&rss, args.to_revision).map_err(|e| match e {
        RollbackError::NoHistory => {
            anyhow::anyhow!("no rollout history found for deployment {:?}", r.name)
        }
        RollbackError::NoRevision(n) => {
            anyhow::anyhow!("unable to find specified revision {n} in history")
        }
    })?;
    // kubectl's order: the revision is looked up first, then a paused Deployment refused.
    if d["spec"]["paused"] == true {
        bail!(
            "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again"
        );
    }
    let template = template_without_hash(target).context("the ReplicaSet has no template")?;
    let deployment: Deployment = serde_json::from_value(d.clone())?;
    if deployment
        .spec
        .as_ref()
        .is_some_and(|s| crate::controller::deployment::equal_ignore_hash(&s.template, &template))
    {
        println!(
            "{} skipped rollback (current template already matches revision {})",
            r.prefix(),
            revision_of(target).unwrap_or(0)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut annotations = d["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in target.metadata.annotations.iter().flatten() {
        if !SKIPPED_ANNOTATIONS.contains(&k.as_str()) {
            annotations.insert(k.clone(), json!(v));
        }
    }
    let patch = json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": d["metadata"]["resourceVersion"]},
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]);
    r.patch("application/json-patch+json", &patch).await?;
    println!("{} rolled back", r.prefix());
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, PartialEq)]
enum RollbackError {
    NoHistory,
    NoRevision(i64),
}

/// kubectl's `findRevision`/`getDeploymentPatch` choice: revision `to` (0: the one before the
/// latest).
fn rollback_target(rss: &[ReplicaSet], to: i64) -> Result<&ReplicaSet, RollbackError> {
    let mut revisions: Vec<(i64, &ReplicaSet)> = rss
        .iter()
        .filter_map(|rs| revision_of(rs).map(|n| (n, rs)))
        .collect();
    revisions.sort_by_key(|(n, _)| *n);
    if to > 0 {
        return revisions
            .iter()
            .find(|(n, _)| *n == to)
            .map(|(_, rs)| *rs)
            .ok_or(RollbackError::NoRevision(to));
    }
    if revisions.len() < 2 {
        return Err(RollbackError::NoHistory);
    }
    Ok(revisions[revisions.len() - 2].1)
}

/// `rollout restart`: a new template annotation makes a new ReplicaSet.
async fn restart(target: Target) -> anyhow::Result<ExitCode> {
    let r = resolve(&target).await?;
    let d = r.get().await?;
    if d["spec"]["paused"] == true {
        // kubectl names the object before the restarter's error.
        bail!(
            "{} {:?} can't restart paused deployment (run rollout resume first)",
            r.resource.qualified_plural(),
            r.name
        );
    }
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}});
    r.patch("application/strategic-merge-patch+json", &patch)
        .await?;
    println!("{} restarted", r.prefix());
    Ok(ExitCode::SUCCESS)
}

/// `rollout pause` / `resume`.
async fn set_paused(target: Target, paused: bool) -> anyhow::Result<ExitCode> {
    let r = resolve(&target).await?;
    let d = r.get().await?;
    let now = d["spec"]["paused"] == true;
    if now == paused {
        bail!(
            "{} {:?} is {}",
            r.resource.qualified_plural(),
            r.name,
            if paused {
                "already paused"
            } else {
                "not paused"
            }
        );
    }
    r.patch(
        "application/merge-patch+json",
        &json!({"spec": {"paused": paused}}),
    )
    .await?;
    println!(
        "{} {}",
        r.prefix(),
        if paused { "paused" } else { "resumed" }
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(name: &str, revision: Option<&str>) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": revision.map(|r| json!({REVISION: r})).unwrap_or(json!({}))},
        }))
        .unwrap()
    }

    fn deployment(generation: i64, observed: i64, updated: i64, available: i64) -> Value {
        json!({
            "metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": 3},
            "status": {"observedGeneration": observed, "replicas": 3,
                "updatedReplicas": updated, "availableReplicas": available},
        })
    }

    #[test]
    fn status_step_prints_a_line_only_when_it_changes_and_stops_when_done() {
        let waiting = "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...";
        let d = deployment(2, 2, 1, 1);
        assert_eq!(
            status_step(&d, "", true).unwrap(),
            StatusStep {
                print: Some(waiting.to_owned()),
                over: false
            }
        );
        assert_eq!(
            status_step(&d, waiting, true).unwrap(),
            StatusStep {
                print: None,
                over: false
            }
        );
        // --watch=false: one line, then over (exit 0) whatever the state.
        assert_eq!(
            status_step(&d, "", false).unwrap(),
            StatusStep {
                print: Some(waiting.to_owned()),
                over: true
            }
        );
        assert_eq!(
            status_step(&deployment(3, 2, 3, 3), "", true).unwrap(),
            StatusStep {
                print: Some("Waiting for deployment spec update to be observed...".to_owned()),
                over: false
            }
        );
        assert_eq!(
            status_step(&deployment(2, 2, 3, 3), waiting, true).unwrap(),
            StatusStep {
                print: Some("deployment \"web\" successfully rolled out".to_owned()),
                over: true
            }
        );
        let mut stuck = deployment(2, 2, 1, 1);
        stuck["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]);
        assert_eq!(
            status_step(&stuck, waiting, true).unwrap_err().to_string(),
            "deployment \"web\" exceeded its progress deadline"
        );
        // A deadline on an older generation is not this rollout's: still waiting.
        stuck["metadata"]["generation"] = 3.into();
        assert!(!status_step(&stuck, "", true).unwrap().over);
    }

    #[test]
    fn rollback_goes_to_the_previous_revision_or_the_one_asked() {
        let rss = [
            rs("a", Some("1")),
            rs("c", Some("3")),
            rs("b", Some("2")),
            rs("x", None),
        ];
        assert_eq!(
            rollback_target(&rss, 0).unwrap().metadata.name.as_deref(),
            Some("b")
        );
        assert_eq!(
            rollback_target(&rss, 1).unwrap().metadata.name.as_deref(),
            Some("a")
        );
        assert_eq!(
            rollback_target(&rss, 7).unwrap_err(),
            RollbackError::NoRevision(7)
        );
        assert_eq!(
            rollback_target(&rss[..1], 0).unwrap_err(),
            RollbackError::NoHistory
        );
    }
}
