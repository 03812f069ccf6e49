//! `podvisor logs`: a container's log through the pod `log` subresource, with kubectl's rules
//! for the default container; `-f` streams until the container stops or the user interrupts.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

use super::client::{self, JSON, encode};
use super::{ClientArgs, Session};

/// The annotation naming the container `logs` (and `exec`) default to.
const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The pod: NAME or pod/NAME.
    #[arg(value_name = "POD")]
    pub pod: String,
    #[command(flatten)]
    pub client: ClientArgs,
    /// The container. Default: the only one, else the one the
    /// kubectl.kubernetes.io/default-container annotation names, else the first.
    #[arg(short = 'c', long, value_name = "NAME")]
    pub container: Option<String>,
    /// Stream the log until the container stops (or Ctrl-C).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines (-1: all).
    #[arg(long, value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Prefix each line with its RFC 3339 timestamp.
    #[arg(long)]
    pub timestamps: bool,
    /// The log of the previous instance of the container (before its last restart).
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Only lines newer than this (a duration such as 5s, 2m or 3h).
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub since: Option<std::time::Duration>,
    /// Only lines after this time (RFC 3339).
    #[arg(long, value_name = "TIME", conflicts_with = "since")]
    pub since_time: Option<String>,
    /// At most this many bytes.
    #[arg(long, value_name = "N")]
    pub limit_bytes: Option<u64>,
}

pub async fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let session = Session::connect(&args.client)?;
    let name = match args.pod.split_once('/') {
        Some(("pod" | "pods" | "po", name)) => name.to_owned(),
        Some((kind, _)) => bail!("cannot get the logs of a {kind}: name a pod (NAME or pod/NAME)"),
        None => args.pod.clone(),
    };
    if let Some(t) = &args.since_time {
        t.parse::<jiff::Timestamp>().with_context(|| {
            format!("invalid --since-time {t:?}: use RFC 3339, such as 2026-01-02T15:04:05Z")
        })?;
    }
    let pod_path = format!(
        "/api/v1/namespaces/{}/pods/{}",
        encode(&session.namespace),
        encode(&name)
    );
    let pod = client::check(session.client.get(&pod_path, JSON).await?)?.json()?;
    let container = pick_container(&pod, args.container.as_deref())?;
    let mut query = format!("container={}", encode(&container));
    if args.follow {
        query.push_str("&follow=true");
    }
    if args.previous {
        query.push_str("&previous=true");
    }
    if args.tail >= 0 {
        query.push_str(&format!("&tailLines={}", args.tail));
    }
    if args.timestamps {
        query.push_str("&timestamps=true");
    }
    if let Some(since) = args.since {
        // kubectl rounds up to whole seconds.
        query.push_str(&format!(
            "&sinceSeconds={}",
            since.as_secs_f64().ceil() as u64
        ));
    }
    if let Some(t) = &args.since_time {
        query.push_str(&format!("&sinceTime={}", encode(t)));
    }
    if let Some(n) = args.limit_bytes {
        query.push_str(&format!("&limitBytes={n}"));
    }
    let path = format!("{pod_path}/log?{query}");
    let stream = session.client.stream(&path, "*/*", |chunk| {
        let mut out = std::io::stdout().lock();
        // A closed stdout (`| head`) ends the stream.
        Ok(out.write_all(chunk).and_then(|()| out.flush()).is_ok())
    });
    tokio::select! {
        result = stream => result?,
        () = super::interrupted() => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// kubectl's `FindOrDefaultContainerByName`: the named container (among every kind of
/// container), else the annotation's, else the first, with a note on stderr when there was a
/// choice.
fn pick_container(pod: &Value, wanted: Option<&str>) -> anyhow::Result<String> {
    let names = |list: &str| -> Vec<String> {
        pod["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect()
    };
    let containers = names("containers");
    let init = names("initContainers");
    let ephemeral = names("ephemeralContainers");
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    if let Some(w) = wanted {
        if containers
            .iter()
            .chain(&init)
            .chain(&ephemeral)
            .any(|c| c == w)
        {
            return Ok(w.to_owned());
        }
        bail!("container {w} is not valid for pod {pod_name}");
    }
    let Some(first) = containers.first() else {
        bail!(
            "pod {}/{pod_name} does not have any containers",
            pod["metadata"]["namespace"].as_str().unwrap_or_default()
        );
    };
    if let Some(d) = pod["metadata"]["annotations"][DEFAULT_CONTAINER_ANNOTATION].as_str()
        && containers
            .iter()
            .chain(&init)
            .chain(&ephemeral)
            .any(|c| c == d)
    {
        return Ok(d.to_owned());
    }
    if containers.len() > 1 || !init.is_empty() || !ephemeral.is_empty() {
        let all: Vec<String> = containers
            .iter()
            .cloned()
            .chain(ephemeral.iter().map(|c| format!("{c} (ephem)")))
            .chain(init.iter().map(|c| format!("{c} (init)")))
            .collect();
        eprintln!("Defaulted container {first:?} out of: {}", all.join(", "));
    }
    Ok(first.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_container_rules() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "app"}, {"name": "side"}]}});
        assert_eq!(pick_container(&pod, None).unwrap(), "app");
        assert_eq!(pick_container(&pod, Some("side")).unwrap(), "side");
        assert_eq!(
            pick_container(&pod, Some("nope")).unwrap_err().to_string(),
            "container nope is not valid for pod web"
        );
        let pod = json!({"metadata": {"name": "web", "annotations": {DEFAULT_CONTAINER_ANNOTATION: "side"}},
            "spec": {"containers": [{"name": "app"}, {"name": "side"}]}});
        assert_eq!(pick_container(&pod, None).unwrap(), "side");
    }
}
