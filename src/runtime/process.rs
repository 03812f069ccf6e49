//! Spawning one process and waiting for it through a pidfd.
//!
//! Every child is spawned while holding `Spawner::lock` and registered in `tracked` before the
//! lock is released; the fallback orphan reaper takes the same lock, so it can never reap a
//! child that has a waiter (or that `Command::spawn` is itself waiting for after a failed
//! `exec`). Exits are collected with `waitid(P_PIDFD)`, never `waitpid(-1)`.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use rustix::process::{Pid, PidfdFlags, WaitId, WaitIdOptions};

use super::sys;

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code, or 128 + the signal number for a death by signal (as containerd reports).
    pub code: i32,
    /// The terminating signal, if any.
    pub signal: Option<i32>,
}

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct ProcessSpec {
    /// The program and its arguments; `argv[0]` is looked up in the `PATH` of `env`.
    pub argv: Vec<String>,
    /// The complete environment (nothing is inherited from podvisor).
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Where the child's standard output and error go.
pub enum Output {
    /// Two pipes, returned as `(stdout, stderr)` read ends.
    Separate,
    /// One pipe for both (exec hooks and probes).
    Combined,
}

/// A spawned child.
pub struct Spawned {
    pub pid: i32,
    /// A pidfd for signalling.
    pub pidfd: OwnedFd,
    /// A second pidfd for the waiter.
    pub wait_fd: OwnedFd,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Serialises spawns against the fallback reaper and remembers which children have waiters.
/// There is one per process (`Spawner::global`): reaping is a process-wide affair.
#[derive(Default)]
pub struct Spawner {
    /// Pids of children whose waiter has not reaped them yet.
    lock: Mutex<HashSet<i32>>,
}

impl Spawner {
    /// The process-wide spawner.
    pub fn global() -> &'static Spawner {
        static SPAWNER: std::sync::OnceLock<Spawner> = std::sync::OnceLock::new();
        SPAWNER.get_or_init(Spawner::default)
    }

    /// Spawns `spec` in a new session, joining the cgroups whose `cgroup.procs` are given.
    pub fn spawn(
        &self,
        spec: &ProcessSpec,
        cgroup_procs: Vec<OwnedFd>,
        output: Output,
    ) -> io::Result<Spawned> {
        let Some((program, args)) = spec.argv.split_first() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no command to run",
            ));
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(
                spec.env
                    .iter()
                    .map(|(k, v)| (OsString::from(k), OsString::from(v))),
            )
            .stdin(Stdio::null());
        if let Some(dir) = &spec.working_dir {
            cmd.current_dir(dir);
        }
        if let Some(uid) = spec.uid {
            cmd.uid(uid);
        }
        if let Some(gid) = spec.gid {
            cmd.gid(gid);
        }
        let (stdout_r, stderr_r) = match output {
            Output::Separate => {
                let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                cmd.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
                (Some(out_r), Some(err_r))
            }
            Output::Combined => {
                let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                let w2 = w.try_clone()?;
                cmd.stdout(Stdio::from(w)).stderr(Stdio::from(w2));
                (Some(r), None)
            }
        };
        sys::set_session_and_cgroups(&mut cmd, cgroup_procs);

        let mut tracked = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let child = cmd.spawn()?;
        // The write ends live in `cmd`; drop it so EOF arrives when the child's side closes.
        drop(cmd);
        let pid = child.id() as i32;
        let raw = Pid::from_raw(pid).ok_or_else(|| io::Error::other("spawn returned pid 0"))?;
        // The child cannot have been reaped: only our waiter (not yet started) reaps it.
        let pidfd = rustix::process::pidfd_open(raw, PidfdFlags::empty())?;
        let wait_fd = pidfd.try_clone()?;
        tracked.insert(pid);
        drop(tracked);
        // `child` is dropped without waiting: its exit is collected through `wait_fd`.
        drop(child);
        Ok(Spawned {
            pid,
            pidfd,
            wait_fd,
            stdout: stdout_r,
            stderr: stderr_r,
        })
    }

    /// Waits for the child behind `wait_fd` to exit and reaps it.
    pub async fn wait(&self, pid: i32, wait_fd: OwnedFd) -> io::Result<ExitStatus> {
        let fd = sys::async_fd(wait_fd)?;
        loop {
            let mut guard = fd.readable().await?;
            match rustix::process::waitid(
                WaitId::PidFd(fd.get_ref().as_fd()),
                WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
            ) {
                Ok(Some(status)) => {
                    self.untrack(pid);
                    let signal = status.terminating_signal();
                    let code = match (status.exit_status(), signal) {
                        (_, Some(sig)) => 128 + sig,
                        (Some(code), None) => code,
                        (None, None) => 128,
                    };
                    return Ok(ExitStatus { code, signal });
                }
                Ok(None) => guard.clear_ready(),
                Err(e) => {
                    self.untrack(pid);
                    return Err(e.into());
                }
            }
        }
    }

    fn untrack(&self, pid: i32) {
        self.lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
    }

    /// Reaps zombie children that have no waiter (fallback mode, as a child subreaper).
    pub fn reap_orphans(&self) -> usize {
        let tracked = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        super::tree::reap_orphans(&tracked)
    }
}

/// Sends `signo` to the process behind `pidfd`; a process that already exited is not an error.
pub fn signal_pidfd(pidfd: &OwnedFd, signo: i32) -> io::Result<()> {
    let sig = sys::signal_from_raw(signo)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "invalid signal"))?;
    match rustix::process::pidfd_send_signal(pidfd, sig) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
