//! The command line: `podvisor up` and `check`, and the kubectl-shaped client commands
//! (`apply`, `get`, `describe`, `delete`, `logs`, `events`) that talk to a running node only
//! through its HTTP API (`client`).
//!
//! Parsing (clap) and presentation only; the work is done by `model` (check), `daemon` (up)
//! and the node's API (the client commands). `anyhow` is allowed here and in `main`, nowhere
//! else.

mod apply;
mod check;
pub mod client;
mod delete;
mod describe;
mod events;
mod get;
mod logs;
mod output;
mod print;
mod register;
mod rollout;
mod scale;
mod up;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::manifest::FieldValidation;

/// Run Kubernetes Pod manifests on this machine as host processes, with the kubelet's lifecycle.
#[derive(Debug, Parser)]
#[command(name = "podvisor", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node in the foreground and apply manifests to it.
    ///
    /// Prints pod events, container state changes and container logs. Ctrl-C (SIGINT) or
    /// SIGTERM terminates every pod in order (preStop hooks, stop signal, SIGKILL at the end
    /// of the grace period) and exits 0; a second signal lowers every grace period to 1 s.
    Up(UpArgs),
    /// Load and validate manifests without running anything.
    ///
    /// Prints, per document, OK, warnings or errors; exits 1 if any document has an error.
    Check(CheckArgs),
    /// Apply manifests to the running node (server-side apply).
    ///
    /// Every document is loaded and validated first, as `check` does; if any is invalid,
    /// nothing is sent. Each object is then applied with server-side apply (field manager
    /// `podvisor`) and printed as `pod/web created`, `configured` or `unchanged`.
    Apply(apply::ApplyArgs),
    /// Display one or many resources, as `kubectl get`.
    ///
    /// TYPE is a plural, singular or short name (`pods`, `pod`, `po`), optionally with its
    /// group (`deployments.apps`), or a category (`all`); several types are separated by
    /// commas. Objects can also be named as TYPE/NAME.
    Get(get::GetArgs),
    /// Show details of a resource or group of resources, as `kubectl describe`.
    Describe(describe::DescribeArgs),
    /// Delete resources by name, by file, by label selector or all of a type, as
    /// `kubectl delete`; waits until they are gone (pods: terminated in order).
    Delete(delete::DeleteArgs),
    /// Print the logs of a container of a pod, as `kubectl logs`.
    Logs(logs::LogsArgs),
    /// List events, as `kubectl events`.
    Events(events::EventsArgs),
    /// Register an instance podvisor does not run as an endpoint of a Service without
    /// selector, held by a Lease renewed every third of --ttl; SIGTERM or SIGINT deregisters.
    ///
    /// If this process dies without deregistering, the endpoint is removed when the Lease
    /// expires (at most --ttl after the last renewal).
    Register(register::RegisterArgs),
    /// Set the number of replicas of a Deployment, ReplicaSet or ReplicationController, as
    /// `kubectl scale` (through the scale subresource).
    Scale(scale::ScaleArgs),
    /// Manage the rollout of a Deployment, as `kubectl rollout`: status, history, undo,
    /// restart, pause, resume.
    Rollout(rollout::RolloutArgs),
}

/// How client commands find the node, and the namespace (kubectl's global flags).
#[derive(Clone, Debug, Args)]
pub struct ClientArgs {
    /// The kubeconfig to use. Default: DATA_DIR/kubeconfig of the local node, else the file
    /// $KUBECONFIG names.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The data dir of the node to talk to (its kubeconfig is DATA_DIR/kubeconfig). Default:
    /// $PODVISOR_DATA_DIR, else the default of `podvisor up`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The namespace. Default: the kubeconfig context's namespace, else `default`.
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

/// Options shared by commands that read manifests.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// A manifest file, a folder (searched recursively for .yaml, .yml and .json files) or
    /// `-` for standard input. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub filenames: Vec<String>,
    /// Maps image names to host commands (see README "Image map").
    #[arg(long, value_name = "FILE")]
    pub image_map: Option<PathBuf>,
    /// How unknown or duplicate fields are treated, as `kubectl apply --validate`.
    #[arg(long, value_name = "MODE", default_value = "strict", value_parser = parse_validation)]
    pub validate: FieldValidation,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub manifests: ManifestArgs,
    /// Where the node keeps its state and logs. Default: $PODVISOR_DATA_DIR, else
    /// /var/lib/podvisor for root, else $XDG_DATA_HOME/podvisor or ~/.local/share/podvisor.
    #[arg(long, value_name = "DIR", env = "PODVISOR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The range pod IPs come from; it must be part of 127.0.0.0/8.
    #[arg(long, value_name = "CIDR", default_value = "127.10.0.0/16")]
    pub pod_cidr: String,
    /// The range Service cluster IPs come from; it must be part of 127.0.0.0/8 and must not
    /// overlap --pod-cidr.
    #[arg(long, value_name = "CIDR", default_value = "127.20.0.0/16")]
    pub service_cidr: String,
    /// The node's name (`spec.nodeName`). Default: the host name.
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// The API's port on 127.0.0.1 (0 picks a free port; the kubeconfig in the data dir says
    /// which).
    #[arg(long, value_name = "PORT", default_value_t = 6443)]
    pub api_port: u16,
    /// The node's address (`status.hostIP`); NodePort and LoadBalancer Services listen on
    /// it, and it is the LoadBalancer ingress IP.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub node_address: std::net::Ipv4Addr,
    /// Whether containers get their own cgroup: `auto` where the machine allows it, `off` for
    /// process groups and a child-subreaper sweep only.
    #[arg(long, value_enum, default_value = "auto")]
    pub cgroups: CgroupsArg,
    /// The longest CrashLoopBackOff delay, in seconds (1 to 300; the kubelet's
    /// crashLoopBackOff.maxContainerRestartPeriod).
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub max_container_backoff: u64,
    /// How long, in milliseconds, a deleted pod waits for every gateway listener to stop
    /// sending it new traffic before its preStop hooks and stop signal (1 to 60000).
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=60000))]
    pub endpoint_barrier_timeout_ms: u64,
    /// Do not wait for the gateway before stopping a deleted pod: upstream Kubernetes' race
    /// between endpoint removal and the stop signal, for side-by-side comparisons.
    #[arg(long)]
    pub unordered_termination: bool,
    /// Rotate a container's log file when it reaches this size (a Kubernetes quantity).
    #[arg(long, value_name = "SIZE", default_value = "10Mi")]
    pub container_log_max_size: String,
    /// Log files kept per container instance, the current one included (at least 2).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u64).range(2..))]
    pub container_log_max_files: u64,
    /// Colour the output: `auto` on a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CgroupsArg {
    Auto,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

fn parse_validation(s: &str) -> Result<FieldValidation, String> {
    s.parse::<FieldValidation>().map_err(|e| e.to_string())
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Up(args) => up::run(args),
        Command::Apply(args) => client_command(apply::run(args)),
        Command::Get(args) => client_command(get::run(args)),
        Command::Describe(args) => client_command(describe::run(args)),
        Command::Delete(args) => client_command(delete::run(args)),
        Command::Logs(args) => client_command(logs::run(args)),
        Command::Events(args) => client_command(events::run(args)),
        Command::Register(args) => client_command(register::run(args)),
        Command::Scale(args) => client_command(scale::run(args)),
        Command::Rollout(args) => client_command(rollout::run(args)),
    }
}

/// Runs a client command on a single-threaded runtime and reports its error as kubectl does:
/// a server's Status as `Error from server (Reason): message`, anything else as `error: …`.
fn client_command(
    command: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match runtime.block_on(command) {
        Ok(code) => Ok(code),
        Err(error) => {
            report(&error);
            Ok(ExitCode::from(1))
        }
    }
}

/// Prints an error the way kubectl does (see [`client_command`]).
pub(crate) fn report(error: &anyhow::Error) {
    match error.downcast_ref::<client::ServerError>() {
        Some(e) => eprintln!("{e}"),
        None => eprintln!("error: {error:#}"),
    }
}

/// A connection to the node with the namespace commands default to.
pub(crate) struct Session {
    pub client: client::Client,
    /// `-n`, else the kubeconfig context's namespace, else `default`.
    pub namespace: String,
    /// Whether `-n` was given (apply refuses objects of another namespace then).
    pub explicit_namespace: bool,
}

impl Session {
    /// Finds the node: `--kubeconfig`, else the kubeconfig of `--data-dir`, else of
    /// `$PODVISOR_DATA_DIR`, else of `up`'s default data dir if it exists, else `$KUBECONFIG`.
    pub fn connect(args: &ClientArgs) -> anyhow::Result<Session> {
        let path = kubeconfig_path(args)?;
        let client = client::Client::from_config(Some(&path), Path::new(""))?;
        let namespace = args
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| client.namespace.clone());
        Ok(Session {
            client,
            namespace,
            explicit_namespace: args.namespace.is_some(),
        })
    }
}

fn kubeconfig_path(args: &ClientArgs) -> anyhow::Result<PathBuf> {
    if let Some(k) = &args.kubeconfig {
        return Ok(k.clone());
    }
    let env_dir = std::env::var_os("PODVISOR_DATA_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let data_dir = match (&args.data_dir, env_dir) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(d)) => Some(d),
        (None, None) => None,
    };
    if let Some(dir) = data_dir {
        let path = dir.join("kubeconfig");
        if !path.is_file() {
            bail!(
                "no node found: {} does not exist; start one with `podvisor up --data-dir {}`, or pass --kubeconfig",
                path.display(),
                dir.display()
            );
        }
        return Ok(path);
    }
    let default_dir = default_data_dir().ok();
    if let Some(dir) = &default_dir
        && dir.join("kubeconfig").is_file()
    {
        return Ok(dir.join("kubeconfig"));
    }
    if let Some(k) = std::env::var_os("KUBECONFIG")
        .and_then(|v| std::env::split_paths(&v).next())
        .filter(|p| p.is_file())
    {
        return Ok(k);
    }
    bail!(
        "no node found: {} does not exist; start one with `podvisor up`, or pass --data-dir or --kubeconfig",
        default_dir
            .map(|d| d.join("kubeconfig").display().to_string())
            .unwrap_or_else(|| "DATA_DIR/kubeconfig".to_owned())
    )
}

/// The data dir `up` uses without `--data-dir` and `$PODVISOR_DATA_DIR`: `/var/lib/podvisor`
/// for root, else `$XDG_DATA_HOME/podvisor` or `~/.local/share/podvisor`.
pub(crate) fn default_data_dir() -> anyhow::Result<PathBuf> {
    if rustix::process::geteuid().is_root() {
        return Ok(PathBuf::from("/var/lib/podvisor"));
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("podvisor"));
    }
    let home = std::env::var_os("HOME").context("no --data-dir, PODVISOR_DATA_DIR or HOME")?;
    Ok(PathBuf::from(home).join(".local/share/podvisor"))
}

/// Resolves when the user interrupts (Ctrl-C) or the process is asked to stop (SIGTERM):
/// watches and follows then end cleanly.
pub(crate) async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    tokio::select! {
        _ = async { match &mut term { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
        _ = async { match &mut int { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// Parses a Go duration (`30s`, `1m30s`, `1.5h`, `200ms`, `0`), as kubectl's flags take them.
pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad =
        || format!("invalid duration {s:?}: use a number and a unit, such as 30s, 5m or 1h30m");
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[u..];
        total += value * unit;
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_duration("30s"),
            Ok(std::time::Duration::from_secs(30))
        );
        assert_eq!(
            parse_duration("1m30s"),
            Ok(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("200ms"),
            Ok(std::time::Duration::from_millis(200))
        );
        assert_eq!(parse_duration("0"), Ok(std::time::Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
    }
}
