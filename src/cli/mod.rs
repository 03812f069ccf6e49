//! The command line: `podvisor up`, `podvisor check`, `podvisor version`.
//!
//! Parsing (clap) and presentation only; the work is done by `model` (check) and `daemon`
//! (up). `anyhow` is allowed here and in `main`, nowhere else.

mod check;
pub mod client;
mod output;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

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
    /// The node's name (`spec.nodeName`). Default: the host name.
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// The API's port on 127.0.0.1 (0 picks a free port; the kubeconfig in the data dir says
    /// which).
    #[arg(long, value_name = "PORT", default_value_t = 6443)]
    pub api_port: u16,
    /// The node's address (`status.hostIP`).
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
    }
}
