//! Spawning one process and waiting for it through a pidfd.
//!
//! Every child is spawned while holding `Spawner::lock` for reading and registered in
//! `tracked` before the lock is released; the fallback orphan reaper takes the same lock for
//! writing, so it can never reap a child that has a waiter (or that `sys::spawn` is itself
//! reaping after a failed `exec`). Spawns on different threads run at once: a child joining
//! its cgroups can wait in the kernel for milliseconds (an RCU grace period, more on a loaded
//! machine), and queueing spawns behind each other made a batch of preStop hooks start tens of
//! milliseconds late (BENCHMARKS.md "Lifecycle precision").
//! Exits are collected with `waitid(P_PIDFD)`, never `waitpid(-1)`.
//!
//! Spawning is `sys::spawn` (a `posix_spawn`-like `clone(CLONE_VM | CLONE_VFORK)`, not
//! `fork`: see there why); this module prepares what it needs, doing here what `Command` and
//! `execvp` would do in the child: the `PATH` search, the environment, the strings.

use std::collections::{BTreeMap, HashSet};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rustix::process::{WaitId, WaitIdOptions};

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
    /// A pidfd, for signalling and for the waiter (one descriptor: each process the node
    /// holds costs every later spawn a copy of the descriptor table).
    pub pidfd: Arc<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Keeps spawns and the fallback reaper apart and remembers which children have waiters.
/// There is one per process (`Spawner::global`): reaping is a process-wide affair.
#[derive(Default)]
pub struct Spawner {
    /// Read by every spawn until its child is in `tracked`; written by the orphan reaper.
    lock: RwLock<()>,
    /// Pids of children whose waiter has not reaped them yet.
    tracked: Mutex<HashSet<i32>>,
}

impl Spawner {
    /// The process-wide spawner. The first call reserves the stdio slots of `sys::spawn` low
    /// in the descriptor table: make it before opening many descriptors.
    pub fn global() -> &'static Spawner {
        static SPAWNER: std::sync::OnceLock<Spawner> = std::sync::OnceLock::new();
        SPAWNER.get_or_init(|| {
            sys::reserve_stdio_slots();
            Spawner::default()
        })
    }

    /// Spawns `argv` with `prepared` in a new session, joining the cgroups whose
    /// `cgroup.procs` are given.
    pub fn spawn(
        &self,
        prepared: &Prepared,
        argv: &[String],
        cgroup_procs: &[OwnedFd],
        output: Output,
    ) -> io::Result<Spawned> {
        let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let (err_r, err_w) = match output {
            Output::Separate => {
                let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                (Some(r), Some(w))
            }
            // Both descriptors 1 and 2 are the one pipe.
            Output::Combined => (None, None),
        };
        let plan = sys::ExecPlan {
            stdio: [
                dev_null()?,
                out_w.as_fd(),
                err_w.as_ref().map_or(out_w.as_fd(), AsFd::as_fd),
            ],
            cgroup_procs,
            ..prepared.plan(argv)?
        };

        let spawning = self.lock.read().unwrap_or_else(|e| e.into_inner());
        let (pid, pidfd) = sys::spawn(&plan)?;
        self.tracked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid);
        drop(spawning);
        // The write ends are the child's now: EOF arrives when its side closes.
        drop(plan);
        drop((out_w, err_w));
        Ok(Spawned {
            pid,
            pidfd: Arc::new(pidfd),
            stdout: Some(out_r),
            stderr: err_r,
        })
    }

    /// Waits for the child behind `pidfd` to exit and reaps it.
    pub async fn wait(&self, pid: i32, pidfd: Arc<OwnedFd>) -> io::Result<ExitStatus> {
        let fd = sys::async_fd(pidfd)?;
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
        self.tracked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
    }

    /// Reaps zombie children that have no waiter (fallback mode, as a child subreaper).
    pub fn reap_orphans(&self) -> usize {
        let _no_spawn = self.lock.write().unwrap_or_else(|e| e.into_inner());
        let tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        super::tree::reap_orphans(&tracked)
    }
}

/// What every process of a container starts with, as the C strings the child needs: the
/// environment (sorted by name, the last value of a name wins, as with `Command::envs`), the
/// `PATH` to search, the working directory and the user. Built once per container instance;
/// its exec hooks and probes reuse it.
pub struct Prepared {
    envp: Vec<CString>,
    /// The `PATH` of the environment, or glibc's default `/bin:/usr/bin` without one.
    path: String,
    cwd: Option<CString>,
    uid: Option<u32>,
    gid: Option<u32>,
}

fn nul_error<E>(_: E) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "nul byte found in provided data",
    )
}

impl Prepared {
    pub fn new(spec: &ProcessSpec) -> io::Result<Prepared> {
        let env: BTreeMap<&str, &str> = spec
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Ok(Prepared {
            envp: env
                .iter()
                .map(|(k, v)| CString::new(format!("{k}={v}")).map_err(nul_error))
                .collect::<io::Result<_>>()?,
            path: env
                .get("PATH")
                .copied()
                .unwrap_or("/bin:/usr/bin")
                .to_owned(),
            cwd: match &spec.working_dir {
                Some(dir) => Some(CString::new(dir.as_os_str().as_bytes()).map_err(nul_error)?),
                None => None,
            },
            uid: spec.uid,
            gid: spec.gid,
        })
    }

    /// `argv` with everything but the descriptors: the paths `execvp` would try for
    /// `argv[0]`, searched in `path` (an empty entry is the working directory).
    fn plan(&self, argv: &[String]) -> io::Result<sys::ExecPlan<'_>> {
        let cstring = |s: &str| CString::new(s).map_err(nul_error);
        let Some(program) = argv.first() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no command to run",
            ));
        };
        let candidates = if program.is_empty() {
            return Err(io::Error::from_raw_os_error(
                rustix::io::Errno::NOENT.raw_os_error(),
            ));
        } else if program.contains('/') {
            vec![cstring(program)?]
        } else if program.len() > NAME_MAX {
            return Err(io::Error::from_raw_os_error(
                rustix::io::Errno::NAMETOOLONG.raw_os_error(),
            ));
        } else {
            // Built byte by byte, each path in one allocation with room for its NUL: on every
            // exec probe's path, `format!` and `CString::new`'s growth cost ~5 % of the
            // node's CPU with 100 probes/s (BENCHMARKS.md "Scale").
            self.path
                .split(':')
                .map(|dir| {
                    let mut path = Vec::with_capacity(dir.len() + program.len() + 2);
                    if !dir.is_empty() {
                        path.extend_from_slice(dir.as_bytes());
                        path.push(b'/');
                    }
                    path.extend_from_slice(program.as_bytes());
                    CString::new(path).map_err(nul_error)
                })
                .collect::<io::Result<_>>()?
        };
        Ok(sys::ExecPlan {
            candidates,
            argv: argv.iter().map(|a| cstring(a)).collect::<io::Result<_>>()?,
            envp: &self.envp,
            stdio: [dev_null()?; 3],
            cgroup_procs: &[],
            cwd: self.cwd.as_deref(),
            uid: self.uid,
            gid: self.gid,
        })
    }
}

/// The longest file name `execvp` searches `PATH` for.
const NAME_MAX: usize = 255;

/// `/dev/null`, opened once, the standard input of every child.
fn dev_null() -> io::Result<BorrowedFd<'static>> {
    static DEV_NULL: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = DEV_NULL.get() {
        return Ok(fd.as_fd());
    }
    let fd = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    Ok(DEV_NULL.get_or_init(|| fd).as_fd())
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
