//! Short-lived subcommands meant for exec hooks and scripts: `hook` and `record`.
//!
//! Neither writes an `exiting` record: they usually share the app's name, and tests read
//! `<name> exiting` as "the app exited". `hook` puts its exit code in its `phase=end` line.

use std::fmt::Display;
use std::io::Write;

use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{HookArgs, RecordArgs};
use crate::record::{Echo, Recorder};

/// `hook`: records start, prints to stdout and stderr, sleeps, records end, exits with the
/// requested code.
pub fn hook(args: HookArgs) -> u8 {
    let recorder = match Recorder::open(&args.common) {
        Ok(recorder) => recorder,
        Err(error) => return crate::usage_error(&error),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return crate::runtime_error(&error),
    };
    let pid = std::process::id();
    runtime.block_on(async {
        // Without `--ignore-term` no handler is installed, so SIGTERM kills the hook.
        let mut term = if args.ignore_term {
            match signal(SignalKind::terminate()) {
                Ok(stream) => Some(stream),
                Err(error) => return crate::runtime_error(&error),
            }
        } else {
            None
        };
        recorder.record(
            "hook",
            &[
                ("name", &args.hook),
                ("via", &"exec"),
                ("pid", &pid),
                ("phase", &"start"),
            ],
        );
        // Why errors are ignored: a hook whose output is not captured must still run.
        let _ = writeln!(std::io::stdout(), "hook {} stdout", args.hook);
        let _ = writeln!(std::io::stderr(), "hook {} stderr", args.hook);

        let sleep = tokio::time::sleep(args.sleep);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                Some(()) = recv(&mut term) => recorder.emit(
                    "signal",
                    &[("sig", &"SIGTERM"), ("mode", &"ignore"), ("pid", &pid)],
                    Echo::StdoutAndStderr,
                ),
            }
        }
        recorder.record(
            "hook",
            &[
                ("name", &args.hook),
                ("via", &"exec"),
                ("pid", &pid),
                ("phase", &"end"),
                ("code", &args.exit_code),
            ],
        );
        args.exit_code
    })
}

/// `record`: appends one line (or `--repeat` lines) and exits.
pub fn record(args: RecordArgs) -> u8 {
    let recorder = match Recorder::open(&args.common) {
        Ok(recorder) => recorder,
        Err(error) => return crate::usage_error(&error),
    };
    let fields: Vec<(&str, &dyn Display)> = args
        .fields
        .iter()
        .map(|(key, value)| (key.as_str(), value as &dyn Display))
        .collect();
    match args.repeat {
        None => recorder.record(&args.event, &fields),
        Some(count) => {
            for seq in 1..=count {
                let mut numbered = fields.clone();
                numbered.push(("seq", &seq));
                recorder.record(&args.event, &numbered);
            }
        }
    }
    0
}

/// The next signal of an optional stream; never ready without a stream.
async fn recv(stream: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match stream {
        Some(stream) => stream.recv().await,
        None => std::future::pending().await,
    }
}
