//! `--grandchild`: a process that escapes its parent, as daemonising apps do.
//!
//! `serve` runs `spawn-orphan` and waits for it; `spawn-orphan` starts `hold` and exits at
//! once, so `hold` is re-parented to the nearest child subreaper (podvisor) or to init. `hold`
//! then calls setsid(2), leaving the app's session and process group, and ignores the usual
//! stop signals: only SIGKILL of that very process ends it. Its stdout and stderr are the
//! app's, so a log pipe stays open while it lives, as with real daemons.

use std::io;
use std::process::{Command, Stdio};
use std::sync::Arc;

use tokio::signal::unix::signal;
use tokio::task::JoinSet;

use crate::cli::{CommonArgs, StopSignal};
use crate::record::{Echo, Recorder};

/// Called by `serve`: runs `spawn-orphan` and waits for it to exit.
pub fn leave_grandchild(recorder: &Recorder, common: &CommonArgs) -> io::Result<()> {
    let status = Command::new(std::env::current_exe()?)
        .arg("spawn-orphan")
        .args(recorder.child_args(common))
        .stdin(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("spawn-orphan failed: {status}")))
    }
}

/// `spawn-orphan`: starts `hold` without waiting for it. Returns the exit code.
pub fn spawn_orphan(common: &CommonArgs) -> u8 {
    let recorder = match Recorder::open(common) {
        Ok(recorder) => recorder,
        Err(error) => return crate::usage_error(&error),
    };
    let spawned = std::env::current_exe().and_then(|exe| {
        Command::new(exe)
            .arg("hold")
            .args(recorder.child_args(common))
            .stdin(Stdio::null())
            .spawn()
    });
    match spawned {
        // Dropping the `Child` neither waits for nor kills it: it becomes an orphan when
        // this process exits.
        Ok(_child) => 0,
        Err(error) => crate::runtime_error(&error),
    }
}

/// `hold`: leaves the session, records `grandchild`, ignores SIGTERM, SIGINT and SIGHUP
/// (recording each), and never returns unless setup fails.
pub fn hold(common: &CommonArgs) -> u8 {
    // First, so that the process is never in the app's session once it has recorded itself.
    let sid = match rustix::process::setsid() {
        Ok(sid) => sid.as_raw_pid(),
        Err(error) => return crate::runtime_error(&io::Error::from(error)),
    };
    let recorder = match Recorder::open(common) {
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
    runtime.block_on(async {
        let mut streams = Vec::new();
        for sig in [StopSignal::Term, StopSignal::Int, StopSignal::Hup] {
            match signal(sig.kind()) {
                Ok(stream) => streams.push((sig, stream)),
                Err(error) => return crate::runtime_error(&error),
            }
        }
        let pid = std::process::id();
        recorder.record("grandchild", &[("pid", &pid), ("sid", &sid)]);
        let recorder = Arc::new(recorder);
        let mut tasks = JoinSet::new();
        for (sig, mut stream) in streams {
            let recorder = recorder.clone();
            tasks.spawn(async move {
                while stream.recv().await.is_some() {
                    recorder.emit(
                        "signal",
                        &[("sig", &sig), ("mode", &"ignore"), ("pid", &pid)],
                        Echo::StdoutAndStderr,
                    );
                }
            });
        }
        std::future::pending::<u8>().await
    })
}
