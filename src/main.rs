//! The `podvisor` binary: parse the command line, run it, report errors.

use std::process::ExitCode;

use clap::Parser;

/// jemalloc, not glibc's malloc: with its background thread and the decay settings in
/// `.cargo/config.toml` it returns freed pages to the kernel, where glibc kept them resident
/// (the node's RSS with 1,000 pods: BENCHMARKS.md "Node memory"). The binary only; the tests
/// run the node in-process with the system allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PODVISOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Usage errors exit 1, as kubectl's; `--help` and `--version` exit 0.
    let cli = match podvisor::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Why ignored: nothing is left to report to if stderr is closed.
            let _ = error.print();
            return ExitCode::from(u8::from(error.use_stderr()));
        }
    };
    match podvisor::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
