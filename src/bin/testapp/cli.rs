//! The command line: every subcommand and flag, with the text `--help` prints.
//!
//! Parsing only; the subcommands live in their own modules. Values that need checking beyond
//! their type (durations, `--on-signal` rules) are parsed here so a bad value is a usage error
//! (exit code 2) before anything starts.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::signal::unix::SignalKind;

/// Describes the record file; shown at the end of `--help`. A macro so `concat!` can join it.
macro_rules! record_format {
    () => {
        "\
RECORD FORMAT:
  With --record FILE, every event is appended to FILE as one line, written with a single
  write(2) on a file opened with O_APPEND, so several processes can share one file and lines
  never interleave. Every line is also printed to stdout.

    <unix_time_nanos> <name> <event> [key=value ...]

  Values are written as-is except bytes outside printable ASCII, space and '%', which are
  percent-encoded (`msg=hello%20world`). Events:

    started pid=N pgid=N sid=N ppid=N    serve: handlers are installed, about to listen
    listening addr=IP:PORT               serve: the HTTP server accepts connections
    signal sig=SIGTERM mode=M pid=N      a handled signal arrived (M: exit, ignore, drain)
    draining secs=S                      serve: drain mode started, exiting after S seconds
    exiting code=N reason=R              serve: about to exit with N (R: signal, drain,
                                         exit-after, http, error)
    error msg=TEXT                       serve: a runtime error (e.g. the port is taken)
    http path=/echo msg=X                a request to /echo
    http path=/P method=M                any other request, with --record-requests
    hook name=X via=http                 a request to /hook/X
    hook name=X via=exec pid=N phase=start          the `hook` subcommand started
    hook name=X via=exec pid=N phase=end code=N     ... and is about to exit with code N
    grandchild pid=N sid=N               the setsid'd orphan made by --grandchild is running
    allocated mb=K                       every 16 MiB of --alloc-mb, and at the end
    logged lines=N                       all --log-lines were printed
    <EVENT> [k=v ...]                    written by the `record` subcommand

  Only `serve` writes `exiting`; it is missing only when the process died by a signal."
    };
}

/// The endpoints and signal modes of `serve`; shown in `--help`.
macro_rules! serve_details {
    () => {
        "\
ENDPOINTS (any method; every response carries `x-testapp-name: NAME`):
  /                 the name
  /hostname         the name
  /pid              the process id
  /healthz          200 `ok`; 500 after /fail-health was hit or once --healthy-for elapsed
  /readyz           503 until --ready-after elapsed, then 200; 503 again after /fail-ready,
                    or after a stop signal (exit or drain mode) with --unready-on-term
  /fail-health      make /healthz fail from now on
  /fail-ready       make /readyz fail from now on
  /echo?msg=X       X (percent-decoded); recorded as `http path=/echo msg=X`
  /hook/NAME        200; recorded as `hook name=NAME via=http`
  /sleep?ms=N       200 after N milliseconds
  /status/CODE      an empty response with status CODE (200-599)
  /exit?code=N      200, then a graceful exit with code N (default 0)
  /grpc.health.v1.Health/Check
                    the gRPC health service, as gRPC probes call it (HTTP/2 only: h2c with
                    prior knowledge, POST, content-type application/grpc): SERVING while
                    /healthz would answer 200, else NOT_SERVING, for the empty service and
                    for NAME; any other service fails with grpc-status 5 (NOT_FOUND)

SIGNAL MODES (--on-signal SIG=MODE):
  exit[:CODE]       record; stop accepting connections, finish in-flight requests (idle
                    keep-alive connections are closed, HTTP/2 gets GOAWAY), exit CODE (default 0)
  ignore            record and carry on
  drain:SECS[:CODE] record; keep serving normally (new connections and keep-alive too) for
                    SECS seconds, then exit gracefully as `exit:CODE`
  default           install no handler: the process dies by the signal and records nothing
  Every handled signal is recorded. During a drain, another drain signal does not move the
  deadline, while an exit signal (or /exit) exits at once; once exiting, signals change nothing."
    };
}

/// The test application run by podvisor's tests, benchmarks and examples.
#[derive(Debug, Parser)]
#[command(
    name = "podvisor-testapp",
    version,
    about = "Test application for podvisor: an HTTP server and exec hook that record what happens to them",
    long_about = "Test application for podvisor, in the spirit of Kubernetes' agnhost.\n\n\
        It runs as a container process (`serve`, the default when no subcommand is given) or \
        as an exec hook (`hook`), and appends what happens to it (start, signals, requests, \
        exit) to a record file that tests read back.",
    after_long_help = concat!(serve_details!(), "\n\n", record_format!()),
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to run; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The `serve` flags, accepted without the subcommand name.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server and react to signals like a containerised app (the default).
    #[command(
        long_about = "Run the HTTP server (HTTP/1.1 and h2c on one port) and react to signals like a containerised app.",
        after_long_help = concat!(serve_details!(), "\n\n", record_format!())
    )]
    Serve(ServeArgs),

    /// Run as an exec hook: record start, sleep, record end, exit with a code.
    #[command(after_long_help = record_format!())]
    Hook(HookArgs),

    /// Append one record line and exit (for `sh -c` scripts).
    #[command(after_long_help = record_format!())]
    Record(RecordArgs),

    /// Internal (used by `serve --grandchild`): start `hold` in the background and exit at once,
    /// so that `hold` becomes an orphan.
    SpawnOrphan(CommonArgs),

    /// Internal (started by `spawn-orphan`): call setsid(2), record `grandchild`, ignore
    /// SIGTERM, SIGINT and SIGHUP, and sleep until killed.
    Hold(CommonArgs),
}

/// Flags shared by every subcommand: who is recording and where.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Name written in every record line and in the `x-testapp-name` header; printable ASCII
    /// without spaces [default: $HOSTNAME, else `testapp`].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Append one line per event to FILE (created if missing). If FILE cannot be opened for
    /// appending, the app exits with code 2 before doing anything else.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}

/// Flags of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Address to listen on [default: $POD_IP, else 0.0.0.0].
    #[arg(long, value_name = "IP")]
    pub addr: Option<IpAddr>,

    /// Port to listen on; 0 runs no HTTP server at all.
    #[arg(long, value_name = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// /readyz answers 503 until SECS (fractional) have passed since start.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "0")]
    pub ready_after: Duration,

    /// /healthz answers 500 once SECS (fractional) have passed since start.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub healthy_for: Option<Duration>,

    /// /readyz answers 503 once a signal handled in `exit` or `drain` mode arrived.
    #[arg(long)]
    pub unready_on_term: bool,

    /// How to react to a signal, as SIG=MODE (repeatable). SIG is one of TERM, INT, QUIT, HUP,
    /// USR1, USR2 (a `SIG` prefix and lowercase are accepted). MODE is `exit[:CODE]`, `ignore`,
    /// `drain:SECS[:CODE]` or `default` (see SIGNAL MODES below). TERM defaults to `exit`; signals not
    /// listed keep their default action.
    #[arg(long, value_name = "SIG=MODE", value_parser = parse_signal_rule)]
    pub on_signal: Vec<SignalRule>,

    /// Exit on its own after SECS (fractional), gracefully, with --exit-code.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub exit_after: Option<Duration>,

    /// Exit code used by --exit-after.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub exit_code: u8,

    /// At start, leave behind a grandchild in its own session that outlives this process
    /// (`spawn-orphan` then `hold`); it records `grandchild pid=N sid=N`.
    #[arg(long)]
    pub grandchild: bool,

    /// At start, allocate N MiB in 1 MiB chunks, touching every page, and keep it; records
    /// `allocated mb=K` every 16 MiB and at the end.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub alloc_mb: u64,

    /// Spread --alloc-mb over time at R MiB per second (fractional) instead of all at once.
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    pub alloc_mb_per_sec: Option<f64>,

    /// Print N numbered lines (`line 1`, `line 2`, ...): odd ones to stdout, even ones to
    /// stderr; then record `logged lines=N`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub log_lines: u64,

    /// Wait MS milliseconds between two --log-lines.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub log_interval_ms: u64,

    /// Pad every --log-lines line with `x` to BYTES bytes (newline not counted).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub log_line_bytes: usize,

    /// Record every HTTP request as `http path=/P method=M` (/echo is always recorded).
    #[arg(long)]
    pub record_requests: bool,
}

/// Flags of `hook`.
#[derive(Debug, Clone, Args)]
pub struct HookArgs {
    /// Hook name, written as `hook name=HOOK`.
    #[arg(value_name = "HOOK")]
    pub hook: String,

    #[command(flatten)]
    pub common: CommonArgs,

    /// Sleep SECS (fractional) between the `start` and `end` records.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "0")]
    pub sleep: Duration,

    /// Exit with code N.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub exit_code: u8,

    /// Record SIGTERM and keep going; without this flag SIGTERM kills the hook.
    #[arg(long)]
    pub ignore_term: bool,
}

/// Flags of `record`.
#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// The event word of the line.
    #[arg(value_name = "EVENT", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub event: String,

    /// Fields appended after the event, each KEY=VALUE.
    #[arg(value_name = "KEY=VALUE", value_parser = parse_field)]
    pub fields: Vec<(String, String)>,

    #[command(flatten)]
    pub common: CommonArgs,

    /// Append N lines instead of one, each with an extra field `seq=I` (I from 1 to N).
    #[arg(long, value_name = "N")]
    pub repeat: Option<u64>,
}

/// One `--on-signal` rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalRule {
    pub signal: StopSignal,
    pub mode: SignalMode,
}

/// The signals `serve` can be told to handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopSignal {
    Term,
    Int,
    Quit,
    Hup,
    Usr1,
    Usr2,
}

/// What `serve` does when a signal arrives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SignalMode {
    /// Graceful exit with this code.
    Exit { code: u8 },
    /// Record and carry on.
    Ignore,
    /// Serve normally for `period`, then a graceful exit with `code`.
    Drain { period: Duration, code: u8 },
    /// No handler: the default action (for these signals, death).
    Default,
}

impl StopSignal {
    /// Every signal, in the order of the help text.
    pub const ALL: [StopSignal; 6] = [
        StopSignal::Term,
        StopSignal::Int,
        StopSignal::Quit,
        StopSignal::Hup,
        StopSignal::Usr1,
        StopSignal::Usr2,
    ];

    /// The tokio signal kind to listen for.
    pub fn kind(self) -> SignalKind {
        match self {
            StopSignal::Term => SignalKind::terminate(),
            StopSignal::Int => SignalKind::interrupt(),
            StopSignal::Quit => SignalKind::quit(),
            StopSignal::Hup => SignalKind::hangup(),
            StopSignal::Usr1 => SignalKind::user_defined1(),
            StopSignal::Usr2 => SignalKind::user_defined2(),
        }
    }

    /// The conventional name, e.g. `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Term => "SIGTERM",
            StopSignal::Int => "SIGINT",
            StopSignal::Quit => "SIGQUIT",
            StopSignal::Hup => "SIGHUP",
            StopSignal::Usr1 => "SIGUSR1",
            StopSignal::Usr2 => "SIGUSR2",
        }
    }
}

impl SignalMode {
    /// The mode's word in records: `exit`, `ignore`, `drain` or `default`.
    pub fn word(self) -> &'static str {
        match self {
            SignalMode::Exit { .. } => "exit",
            SignalMode::Ignore => "ignore",
            SignalMode::Drain { .. } => "drain",
            SignalMode::Default => "default",
        }
    }
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl ServeArgs {
    /// The mode for every signal: the `--on-signal` rules over the default `TERM=exit`; the
    /// last rule for a signal wins.
    pub fn signal_modes(&self) -> Vec<(StopSignal, SignalMode)> {
        StopSignal::ALL
            .iter()
            .map(|&signal| {
                let default = match signal {
                    StopSignal::Term => SignalMode::Exit { code: 0 },
                    _ => SignalMode::Default,
                };
                let mode = self
                    .on_signal
                    .iter()
                    .rev()
                    .find(|rule| rule.signal == signal)
                    .map_or(default, |rule| rule.mode);
                (signal, mode)
            })
            .collect()
    }
}

/// Parses fractional seconds (`1`, `0.25`) into a duration.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("`{s}` is not a non-negative number of seconds"))
}

/// Parses a positive rate.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

/// Parses `KEY=VALUE`.
fn parse_field(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

/// Parses `SIG=MODE`, e.g. `TERM=drain:5:0`.
fn parse_signal_rule(s: &str) -> Result<SignalRule, String> {
    let (sig, mode) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not SIG=MODE"))?;
    let upper = sig.to_ascii_uppercase();
    let signal = match upper.strip_prefix("SIG").unwrap_or(&upper) {
        "TERM" => StopSignal::Term,
        "INT" => StopSignal::Int,
        "QUIT" => StopSignal::Quit,
        "HUP" => StopSignal::Hup,
        "USR1" => StopSignal::Usr1,
        "USR2" => StopSignal::Usr2,
        _ => {
            return Err(format!(
                "unknown signal `{sig}`: expected one of TERM, INT, QUIT, HUP, USR1, USR2"
            ));
        }
    };
    Ok(SignalRule {
        signal,
        mode: parse_signal_mode(mode)?,
    })
}

/// Parses `exit[:CODE]`, `ignore`, `drain:SECS[:CODE]` or `default`.
fn parse_signal_mode(s: &str) -> Result<SignalMode, String> {
    let parse_code = |code: &str| {
        code.parse::<u8>()
            .map_err(|_| format!("`{code}` is not an exit code (0-255)"))
    };
    let mut parts = s.split(':');
    let mode = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("exit"), None, None, None) => SignalMode::Exit { code: 0 },
        (Some("exit"), Some(code), None, None) => SignalMode::Exit {
            code: parse_code(code)?,
        },
        (Some("ignore"), None, None, None) => SignalMode::Ignore,
        (Some("default"), None, None, None) => SignalMode::Default,
        (Some("drain"), Some(secs), code, None) => SignalMode::Drain {
            period: parse_secs(secs)?,
            code: code.map_or(Ok(0), parse_code)?,
        },
        _ => {
            return Err(format!(
                "unknown signal mode `{s}`: expected exit[:CODE], ignore, drain:SECS[:CODE] or default"
            ));
        }
    };
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_rules_parse() {
        let rule = |signal, mode| SignalRule { signal, mode };
        assert_eq!(
            parse_signal_rule("TERM=exit"),
            Ok(rule(StopSignal::Term, SignalMode::Exit { code: 0 }))
        );
        assert_eq!(
            parse_signal_rule("sigint=exit:3"),
            Ok(rule(StopSignal::Int, SignalMode::Exit { code: 3 }))
        );
        assert_eq!(
            parse_signal_rule("HUP=ignore"),
            Ok(rule(StopSignal::Hup, SignalMode::Ignore))
        );
        assert_eq!(
            parse_signal_rule("USR1=drain:1.5"),
            Ok(rule(
                StopSignal::Usr1,
                SignalMode::Drain {
                    period: Duration::from_millis(1500),
                    code: 0
                }
            ))
        );
        assert_eq!(
            parse_signal_rule("SIGUSR2=drain:2:7"),
            Ok(rule(
                StopSignal::Usr2,
                SignalMode::Drain {
                    period: Duration::from_secs(2),
                    code: 7
                }
            ))
        );
        assert_eq!(
            parse_signal_rule("QUIT=default"),
            Ok(rule(StopSignal::Quit, SignalMode::Default))
        );
        for bad in [
            "TERM",
            "KILL=exit",
            "TERM=exit:256",
            "TERM=drain",
            "TERM=drain:-1",
            "TERM=ignore:1",
            "TERM=drain:1:2:3",
        ] {
            assert!(parse_signal_rule(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn term_defaults_to_exit_and_last_rule_wins() {
        let cli = Cli::try_parse_from([
            "podvisor-testapp",
            "serve",
            "--on-signal",
            "TERM=ignore",
            "--on-signal",
            "TERM=exit:4",
        ])
        .unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("expected serve");
        };
        let modes = args.signal_modes();
        assert_eq!(modes[0], (StopSignal::Term, SignalMode::Exit { code: 4 }));
        assert_eq!(modes[1], (StopSignal::Int, SignalMode::Default));
    }

    #[test]
    fn command_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
