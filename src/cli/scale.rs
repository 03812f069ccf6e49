//! `podvisor scale`: kubectl's `scale` — sets `spec.replicas` through the `scale`
//! subresource of deployments, replicasets and replicationcontrollers, with an optional
//! `--current-replicas` precondition, and prints `deployment.apps/web scaled`.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use super::client::{self, JSON};
use super::{ClientArgs, Session};

#[derive(Debug, Args)]
pub struct ScaleArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// TYPE NAME or TYPE/NAME (deployment, replicaset, replicationcontroller).
    #[arg(required = true, num_args = 1..=2, value_name = "TYPE/NAME")]
    pub target: Vec<String>,
    /// The new number of replicas.
    #[arg(long, value_name = "N")]
    pub replicas: i32,
    /// Only scale if the current number of replicas is this (a precondition).
    #[arg(long, value_name = "N")]
    pub current_replicas: Option<i32>,
}

pub async fn run(args: ScaleArgs) -> anyhow::Result<ExitCode> {
    if args.replicas < 0 {
        bail!(
            "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0"
        );
    }
    let (word, name) = match args.target.as_slice() {
        [one] => one
            .split_once('/')
            .map(|(w, n)| (w.to_owned(), n.to_owned()))
            .context("one argument must be TYPE/NAME, such as deployment/web")?,
        [word, name] => (word.clone(), name.clone()),
        _ => bail!("expected TYPE NAME or TYPE/NAME"),
    };
    let session = Session::connect(&args.client)?;
    let discovery = session.client.discover().await?;
    let resource = discovery.resolve_one(&word)?;
    if !matches!(
        resource.plural.as_str(),
        "deployments" | "replicasets" | "replicationcontrollers"
    ) {
        bail!(
            "cannot scale {}: only deployments, replicasets and replicationcontrollers have a scale subresource",
            resource.qualified_plural()
        );
    }
    let namespace = session.namespace.as_str();
    let path = format!("{}/scale", resource.path(Some(namespace), Some(&name)));
    let mut patch = json!({"spec": {"replicas": args.replicas}});
    if let Some(current) = args.current_replicas {
        let scale = client::check(session.client.get(&path, JSON).await?)
            .map_err(|e| e.context(format!("{} \"{name}\"", resource.qualified_plural())))?
            .json()?;
        let now = scale.pointer("/spec/replicas").and_then(Value::as_i64);
        if now != Some(i64::from(current)) {
            bail!(
                "Expected replicas to be {current}, was {}",
                now.map_or("unset".to_owned(), |n| n.to_string())
            );
        }
        // The read's resourceVersion makes the write conditional, as kubectl's precondition.
        patch["metadata"] = json!({"resourceVersion": scale.pointer("/metadata/resourceVersion")});
    }
    let reply = session
        .client
        .call(
            "PATCH",
            &path,
            Some("application/merge-patch+json"),
            JSON,
            serde_json::to_vec(&patch)?,
        )
        .await?;
    client::check(reply)?;
    println!("{}/{name} scaled", resource.kind_prefix());
    Ok(ExitCode::SUCCESS)
}
