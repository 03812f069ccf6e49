//! `podvisor-testapp`: the application podvisor's integration tests, benchmarks and examples
//! run as a container process and as exec hooks (the role of upstream Kubernetes' `agnhost`).
//!
//! It records what happens to it (start, signals, requests, hooks, exit) as lines appended to a
//! shared file, so tests can assert on the order and timing of lifecycle events. See `--help`
//! for the flags and the record format.
//!
//! Deliberately independent of the `podvisor` library, so the library can change freely.
//! Light by design: one thread (`current_thread` runtime), no polling loops; a benchmark runs a
//! thousand copies.
//!
//! Modules:
//! - `cli`: flags, help text, parsing of `--on-signal` rules and durations.
//! - `record`: the record file and line format.
//! - `serve`: the long-running app and its exit decisions.
//! - `http`: the HTTP/1.1 + h2c server and its endpoints.
//! - `grpc`: the gRPC health service on the same port.
//! - `background`: `--alloc-mb` and `--log-lines`.
//! - `orphan`: `--grandchild` (`spawn-orphan`, `hold`).
//! - `exec`: `hook` and `record`.

mod background;
mod cli;
mod exec;
mod grpc;
mod http;
mod orphan;
mod record;
mod serve;

use std::fmt::Display;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    // Bad flags exit with code 2 here (clap's usage-error code).
    let cli = Cli::parse();
    let code = match cli.command {
        None => serve::run(cli.serve),
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::Hook(args)) => exec::hook(args),
        Some(Command::Record(args)) => exec::record(args),
        Some(Command::SpawnOrphan(common)) => orphan::spawn_orphan(&common),
        Some(Command::Hold(common)) => orphan::hold(&common),
    };
    ExitCode::from(code)
}

/// Reports an error in how the app was invoked (flags, record file); returns exit code 2.
fn usage_error(error: &dyn Display) -> u8 {
    eprintln!("podvisor-testapp: error: {error}");
    2
}

/// Reports an error from the operating system before anything was recorded; returns 1.
fn runtime_error(error: &dyn Display) -> u8 {
    eprintln!("podvisor-testapp: error: {error}");
    1
}
