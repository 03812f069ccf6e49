//! Host processes for containers. The only module that spawns processes; see ARCHITECTURE.md
//! "runtime".
//!
//! A container is a process tree: its main process runs in a new session and process group,
//! inside the container's own cgroup (v2) when the machine allows it, so that `cgroup.kill`
//! reaches every process it ever forked. Without cgroups, podvisor becomes a child subreaper
//! and finds the container's processes through `/proc` (`tree`). When the main process exits
//! the container is over: whatever it left running is killed at once, as a container runtime
//! does, and only then is the exit reported. Exec hooks and probes run "inside" the container:
//! same environment, working directory, user and cgroup (a child cgroup of their own, so a
//! timed-out probe can be killed alone; reused by the container's next exec once empty).
//!
//! Must not: decide anything about the pod lifecycle (that is `lifecycle`, performed by
//! `node`), or wait for processes with `waitpid(-1)` (see `process`).

pub mod cgroup;
pub mod logs;
pub mod process;
pub mod signals;
mod sys;
pub mod tree;

#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::{broadcast, watch};
use tokio_util::task::TaskTracker;

use self::cgroup::{Cgroups, ContainerCgroup, ExecCgroup, ExecPool};
use self::logs::{LogLine, LogSource, LogWriter, Rotation};
use self::process::{ExitStatus, Output, Prepared, ProcessSpec, Spawned, Spawner};

/// Output of exec hooks and probes kept for messages (the kubelet's 10 KiB).
pub const MAX_EXEC_OUTPUT: usize = 10 * 1024;

/// How long the runtime waits for a killed container's processes to disappear.
const KILL_CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// Runtime errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the cgroup of container `{container}`")]
    Cgroup {
        container: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot open the log file of container `{container}`")]
    Log {
        container: String,
        #[source]
        source: io::Error,
    },
    #[error("the container is not running")]
    NotRunning,
    #[error("cannot start process")]
    Spawn(#[source] io::Error),
}

/// Whether to use cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CgroupMode {
    /// Use cgroup v2 where the machine allows it, else fall back to process groups.
    #[default]
    Auto,
    /// Never use cgroups (process groups and a child-subreaper sweep).
    Off,
}

/// Runtime settings.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Logs go to `<data_dir>/pods/…`.
    pub data_dir: PathBuf,
    /// Names the node's cgroup (`podvisor/<node_id>`); stable for a data dir.
    pub node_id: String,
    pub cgroups: CgroupMode,
    pub log_rotation: Rotation,
}

/// The node's process runtime.
pub struct Runtime {
    config: RuntimeConfig,
    /// None in fallback mode.
    cgroups: Option<Cgroups>,
    /// Why cgroups are not used, in fallback mode.
    fallback_reason: Option<String>,
    spawner: &'static Spawner,
    logs: broadcast::Sender<LogLine>,
    /// Waiters and log pumps; `shutdown` waits for them.
    tasks: TaskTracker,
    /// Numbers exec cgroups.
    exec_counter: AtomicU64,
    /// Stops the fallback orphan reaper at shutdown.
    stop: tokio_util::sync::CancellationToken,
}

/// What to start as a container.
#[derive(Clone, Debug)]
pub struct StartRequest {
    pub namespace: String,
    pub pod: String,
    pub pod_uid: String,
    pub container: String,
    pub restart_count: i32,
    pub process: ProcessSpec,
    /// `resources.limits.memory` in bytes.
    pub memory_limit: Option<u64>,
}

/// How a container instance ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    pub status: ExitStatus,
    /// The kernel OOM killer killed a process of the container during this run.
    pub oom_killed: bool,
    pub finished_at: Timestamp,
    pub finished_mono: Instant,
}

/// One running (or finished) container instance.
pub struct ContainerProcess {
    pub pid: i32,
    pub started_at: Timestamp,
    pub started_mono: Instant,
    pub log_path: PathBuf,
    /// What the main process was started with; exec hooks and probes inherit it.
    pub process: ProcessSpec,
    /// `process` as the child needs it, for exec hooks and probes (shared with their spawns,
    /// which run on the blocking pool).
    prepared: Arc<Prepared>,
    pidfd: Arc<OwnedFd>,
    cgroup: Option<ContainerCgroup>,
    /// The idle cgroups of its exec hooks and probes.
    exec_pool: Arc<ExecPool>,
    /// `PODVISOR_CONTAINER_ID` value in fallback mode.
    marker: String,
    exit: watch::Receiver<Option<ExitInfo>>,
}

/// A process started inside a container (exec hook or probe).
pub struct ExecHandle {
    pub pid: i32,
    cgroup: Option<ExecCgroup>,
    /// Where `cgroup` goes back once empty.
    pool: Arc<ExecPool>,
    marker: String,
    done: watch::Receiver<Option<ExecOutcome>>,
}

/// How an exec process ended, with its combined output (at most `MAX_EXEC_OUTPUT` bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutcome {
    pub status: ExitStatus,
    pub output: Vec<u8>,
}

impl Runtime {
    /// Sets up the runtime: cgroups (or the fallback), and cleans what an earlier run of the
    /// same node left behind.
    pub fn new(config: RuntimeConfig) -> Arc<Runtime> {
        let (cgroups, fallback_reason) = match config.cgroups {
            CgroupMode::Off => (None, Some("disabled with --cgroups=off".to_owned())),
            CgroupMode::Auto => match Cgroups::detect(&config.node_id) {
                Ok(c) => (Some(c), None),
                Err(why) => (None, Some(why)),
            },
        };
        // Processes an earlier run of this node left (it was killed): stop them with the
        // kubelet's orphan grace (1 s, floored at 2 s like every stop), then SIGKILL; the
        // node starts their pods again.
        let stale = match &cgroups {
            Some(cg) => cg.stale_processes(),
            None => tree::node_processes(&config.node_id),
        };
        if !stale.is_empty() {
            tracing::warn!(
                n = stale.len(),
                "stopping processes left by an earlier run of this node"
            );
            stop_stale(&stale, std::time::Duration::from_secs(2));
        }
        if let Some(cg) = &cgroups {
            cg.kill_all_and_clean();
        } else if let Err(error) =
            rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        {
            tracing::warn!(%error, "cannot become a child subreaper; orphans of containers go to init");
        }
        let (logs, _) = broadcast::channel(4096);
        let runtime = Arc::new(Runtime {
            config,
            cgroups,
            fallback_reason,
            spawner: Spawner::global(),
            logs,
            tasks: TaskTracker::new(),
            exec_counter: AtomicU64::new(0),
            stop: tokio_util::sync::CancellationToken::new(),
        });
        if runtime.cgroups.is_none() {
            runtime
                .tasks
                .spawn(reap_orphans_until(runtime.spawner, runtime.stop.clone()));
        }
        runtime
    }

    /// One line on how processes are contained, for the start-up banner.
    pub fn describe(&self) -> String {
        match (&self.cgroups, &self.fallback_reason) {
            (Some(c), _) => c.describe(),
            (None, Some(why)) => {
                format!("no cgroups ({why}); process groups and a child-subreaper sweep")
            }
            (None, None) => "no cgroups".to_owned(),
        }
    }

    /// Whether memory limits are enforced.
    pub fn memory_limits_supported(&self) -> bool {
        self.cgroups
            .as_ref()
            .is_some_and(|c| c.memory_unsupported().is_none())
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// Every line of container output, as it is written.
    pub fn subscribe_logs(&self) -> broadcast::Receiver<LogLine> {
        self.logs.subscribe()
    }

    /// Starts a container's main process. `Err` is the kubelet's `StartError`: the message
    /// is the OS error (`exec: "x": executable file not found in $PATH`).
    pub fn start_container(&self, req: StartRequest) -> Result<Arc<ContainerProcess>, Error> {
        let cgroup = match &self.cgroups {
            Some(c) => Some(
                c.container(&req.pod_uid, &req.container, req.memory_limit)
                    .map_err(|source| Error::Cgroup {
                        container: req.container.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        let log_dir = logs::pod_log_dir(
            &self.config.data_dir,
            &req.namespace,
            &req.pod,
            &req.pod_uid,
        )
        .join(&req.container);
        let writer = LogWriter::open(&log_dir, req.restart_count, self.config.log_rotation)
            .map_err(|source| Error::Log {
                container: req.container.clone(),
                source,
            })?;
        let marker = format!(
            "{}/{}/{}/{}",
            self.config.node_id, req.pod_uid, req.container, req.restart_count
        );
        let mut process = req.process.clone();
        if cgroup.is_none() {
            process
                .env
                .push((tree::MARKER_VAR.to_owned(), marker.clone()));
        }
        let procs = match &cgroup {
            Some(cg) => cg.procs_files().map_err(|source| Error::Cgroup {
                container: req.container.clone(),
                source,
            })?,
            None => Vec::new(),
        };
        let oom_baseline = cgroup.as_ref().map_or(0, |c| c.oom_kills());
        let spawn_error =
            |e| Error::Spawn(exec_error(&process.argv, process.working_dir.as_deref(), e));
        let prepared = Prepared::new(&process).map_err(spawn_error)?;
        let spawned = self
            .spawner
            .spawn(&prepared, &process.argv, &procs, Output::Separate)
            .map_err(spawn_error)?;
        let started_at = Timestamp::now();
        let started_mono = Instant::now();
        let (exit_tx, exit_rx) = watch::channel(None);
        let source = Arc::new(LogSource {
            namespace: req.namespace.clone(),
            pod: req.pod.clone(),
            container: req.container.clone(),
        });
        let log_path = writer.path().to_owned();
        let stdout = spawned.stdout.map(pipe::Receiver::from_owned_fd);
        let stderr = spawned.stderr.map(pipe::Receiver::from_owned_fd);
        let pump = match (stdout, stderr) {
            (Some(Ok(out)), Some(Ok(err))) => {
                Some(
                    self.tasks
                        .spawn(logs::pump(out, err, writer, source, self.logs.clone())),
                )
            }
            _ => {
                tracing::warn!(container = %req.container, "cannot read the container's output");
                None
            }
        };
        let container = Arc::new(ContainerProcess {
            pid: spawned.pid,
            started_at,
            started_mono,
            log_path,
            process,
            prepared: Arc::new(prepared),
            pidfd: spawned.pidfd.clone(),
            cgroup: cgroup.clone(),
            exec_pool: Arc::default(),
            marker: marker.clone(),
            exit: exit_rx,
        });
        let spawner = self.spawner;
        let pid = spawned.pid;
        let pidfd = spawned.pidfd;
        self.tasks.spawn(async move {
            let status = match spawner.wait(pid, pidfd).await {
                Ok(s) => s,
                Err(error) => {
                    tracing::error!(pid, %error, "cannot wait for container process");
                    ExitStatus {
                        code: 128,
                        signal: None,
                    }
                }
            };
            let finished_at = Timestamp::now();
            let finished_mono = Instant::now();
            // The container ends with its main process: kill what it left behind.
            kill_tree(cgroup.as_ref(), pid, &marker);
            confirm_gone(cgroup.as_ref(), pid, &marker).await;
            if let Some(pump) = pump {
                // Every writer of the pipes is dead now; the pump drains and ends.
                let _ = tokio::time::timeout(Duration::from_secs(2), pump).await;
            }
            let oom_killed = cgroup
                .as_ref()
                .is_some_and(|c| c.oom_kills() > oom_baseline);
            let _ = exit_tx.send(Some(ExitInfo {
                status,
                oom_killed,
                finished_at,
                finished_mono,
            }));
        });
        Ok(container)
    }

    /// Runs `argv` inside `container` (exec hook or probe), with the container's environment,
    /// working directory, user and cgroup.
    pub async fn exec(
        &self,
        container: &ContainerProcess,
        argv: &[String],
    ) -> Result<ExecHandle, Error> {
        if container.exit_info().is_some() {
            return Err(Error::NotRunning);
        }
        let n = self.exec_counter.fetch_add(1, Ordering::Relaxed);
        let pool = container.exec_pool.clone();
        let cgroup = match &container.cgroup {
            Some(cg) => Some(pool.take(cg, n).map_err(|_| Error::NotRunning)?),
            None => None,
        };
        // The spawn blocks its thread until the child has joined its cgroups and called
        // `execve`: milliseconds, tens of them on a loaded machine (the kernel's cgroup
        // migration waits for an RCU grace period). On an async worker thread that held up
        // the API and every other pod's worker (BENCHMARKS.md "Lifecycle precision"); in
        // `block_in_place` each exec handed the worker's queue to another thread, which cost
        // more CPU and threads (BENCHMARKS.md "Scale"). So it runs on the blocking pool, whose
        // threads stay for the next spawns; spawns there run at once.
        //
        // The handle is made on the blocking thread too: if this future is dropped while the
        // spawn runs (an aborted probe worker), the handle is dropped there, which kills the
        // process, and its waiter reaps it; nothing is left running or unreaped.
        let spawner = self.spawner;
        let tasks = self.tasks.clone();
        let prepared = container.prepared.clone();
        let marker = format!("{}-exec", container.marker);
        let args = argv.to_vec();
        tokio::task::spawn_blocking(move || {
            let procs = cgroup.as_ref().map_or(&[][..], |e| &e.procs[..]);
            match spawner.spawn(&prepared, &args, procs, Output::Combined) {
                Ok(spawned) => Ok(watch_exec(&tasks, spawner, spawned, cgroup, pool, marker)),
                Err(e) => {
                    // Nothing ran in it.
                    if let Some(e) = cgroup {
                        pool.put(e);
                    }
                    Err(e)
                }
            }
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        .map_err(|e| {
            let working_dir = container.process.working_dir.as_deref();
            Error::Spawn(exec_error(argv, working_dir, e))
        })
    }

    /// Removes a pod's cgroups once every container of it is gone.
    pub fn remove_pod(&self, pod_uid: &str) {
        if let Some(c) = &self.cgroups {
            c.remove_pod(pod_uid);
        }
    }

    /// Waits for every waiter and log pump (call after every container was stopped), then
    /// removes the node's cgroups.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        if let Some(c) = &self.cgroups {
            c.kill_all_and_clean();
            c.remove_node();
        }
    }
}

impl ContainerProcess {
    /// Sends `signo` to the main process only (the stop signal goes to the container's init).
    pub fn signal(&self, signo: i32) -> io::Result<()> {
        process::signal_pidfd(&self.pidfd, signo)
    }

    /// SIGKILLs every process of the container: main process, children, setsid'd
    /// grandchildren, running exec hooks and probes.
    pub fn kill_all(&self) {
        kill_tree(self.cgroup.as_ref(), self.pid, &self.marker);
    }

    /// The exit, once the main process exited and nothing of the container remains.
    pub fn exit_info(&self) -> Option<ExitInfo> {
        *self.exit.borrow()
    }

    /// Waits for `exit_info`.
    pub async fn wait(&self) -> ExitInfo {
        let mut rx = self.exit.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.expect("checked by wait_for"),
            // The waiter task is gone only at runtime shutdown; report a kill.
            Err(_) => ExitInfo {
                status: ExitStatus {
                    code: 137,
                    signal: Some(9),
                },
                oom_killed: false,
                finished_at: Timestamp::now(),
                finished_mono: Instant::now(),
            },
        }
    }

    /// The pids of every live process of this container (for tests and diagnostics).
    pub fn processes(&self) -> Vec<i32> {
        match &self.cgroup {
            Some(cg) => {
                let mut pids = Vec::new();
                collect_cgroup_procs(&cg.dir, &mut pids);
                pids
            }
            None => tree::container_processes(self.pid, &self.marker),
        }
    }
}

impl ExecHandle {
    /// Waits for the exec process to exit.
    pub async fn wait(&self) -> ExecOutcome {
        let mut rx = self.done.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().expect("checked by wait_for"),
            Err(_) => ExecOutcome {
                status: ExitStatus {
                    code: 137,
                    signal: Some(9),
                },
                output: Vec::new(),
            },
        }
    }

    /// Whether it finished.
    pub fn finished(&self) -> bool {
        self.done.borrow().is_some()
    }

    /// SIGKILLs the exec process and everything it started.
    pub fn kill(&self) {
        match &self.cgroup {
            Some(e) => {
                // Why ignored: the cgroup is gone when the container already died.
                let _ = e.cgroup.kill();
            }
            None => {
                tree::kill_container_processes(self.pid, &self.marker);
            }
        }
    }
}

/// Starts the waiter of a spawned exec (its output read while it runs, its exit reaped) and
/// returns its handle. Sync, so that `Runtime::exec` can make it on the spawn's thread.
fn watch_exec(
    tasks: &TaskTracker,
    spawner: &'static Spawner,
    spawned: Spawned,
    cgroup: Option<ExecCgroup>,
    pool: Arc<ExecPool>,
    marker: String,
) -> ExecHandle {
    let (done_tx, done_rx) = watch::channel(None);
    let output = spawned.stdout.map(pipe::Receiver::from_owned_fd);
    let pid = spawned.pid;
    let pidfd = spawned.pidfd;
    tasks.spawn(async move {
        let buf = std::sync::Mutex::new(Vec::new());
        let read_output = async {
            if let Some(Ok(mut pipe)) = output {
                let mut chunk = [0u8; 4096];
                loop {
                    match pipe.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut buf = buf.lock().unwrap_or_else(|e| e.into_inner());
                            let room = MAX_EXEC_OUTPUT.saturating_sub(buf.len());
                            buf.extend_from_slice(&chunk[..n.min(room)]);
                        }
                    }
                }
            }
        };
        let wait = spawner.wait(pid, pidfd);
        tokio::pin!(read_output);
        tokio::pin!(wait);
        // Read while waiting, or a chatty process would block on a full pipe.
        let (status, output_done) = tokio::select! {
            s = &mut wait => (s, false),
            () = &mut read_output => (wait.await, true),
        };
        if !output_done {
            // A background child may hold the pipe open: take what is there, briefly.
            let _ = tokio::time::timeout(Duration::from_millis(100), read_output).await;
        }
        let status = status.unwrap_or(ExitStatus {
            code: 128,
            signal: None,
        });
        let _ = done_tx.send(Some(ExecOutcome {
            status,
            output: std::mem::take(&mut *buf.lock().unwrap_or_else(|e| e.into_inner())),
        }));
    });
    ExecHandle {
        pid,
        cgroup,
        pool,
        marker,
        done: done_rx,
    }
}

impl Drop for ExecHandle {
    /// An abandoned exec (cancelled hook, timed-out probe) must not keep running. An empty
    /// cgroup is reused by the container's next exec, or removed if it was killed.
    fn drop(&mut self) {
        let finished = self.finished();
        if !finished {
            self.kill();
        }
        if let Some(e) = self.cgroup.take()
            && !e.populated()
        {
            if finished {
                self.pool.put(e);
            } else {
                e.cgroup.remove();
            }
        }
    }
}

fn kill_tree(cgroup: Option<&ContainerCgroup>, pid: i32, marker: &str) {
    match cgroup {
        Some(cg) => {
            if let Err(error) = cg.kill() {
                tracing::warn!(%error, dir = %cg.dir.display(), "cgroup.kill failed");
            }
        }
        None => {
            tree::kill_container_processes(pid, marker);
        }
    }
}

/// Waits until no process of the container is left, re-killing stragglers (fallback mode
/// races with forks). Logs an error if some survive `KILL_CONFIRM_TIMEOUT`.
async fn confirm_gone(cgroup: Option<&ContainerCgroup>, pid: i32, marker: &str) {
    let deadline = Instant::now() + KILL_CONFIRM_TIMEOUT;
    let mut pause = Duration::from_micros(500);
    loop {
        let left = match cgroup {
            Some(cg) => cg.populated(),
            None => !tree::container_processes(pid, marker).is_empty(),
        };
        if !left {
            return;
        }
        if Instant::now() >= deadline {
            tracing::error!(pid, "processes of a killed container are still alive");
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
        kill_tree(cgroup, pid, marker);
    }
}

fn collect_cgroup_procs(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_cgroup_procs(&entry.path(), out);
        }
    }
}

/// Turns a spawn error into runc's wording where it has one.
/// What runc would say when `argv` could not start in `working_dir`.
fn exec_error(argv: &[String], working_dir: Option<&Path>, e: io::Error) -> io::Error {
    let program = argv.first().map(String::as_str).unwrap_or_default();
    let message = match e.kind() {
        io::ErrorKind::NotFound if !program.contains('/') => {
            format!("exec: \"{program}\": executable file not found in $PATH")
        }
        io::ErrorKind::NotFound => {
            if let Some(dir) = working_dir.filter(|d| !d.is_dir()) {
                format!(
                    "chdir to cwd (\"{}\") set in config.json failed: no such file or directory",
                    dir.display()
                )
            } else {
                format!("exec: \"{program}\": stat {program}: no such file or directory")
            }
        }
        io::ErrorKind::PermissionDenied => format!("exec: \"{program}\": permission denied"),
        _ => format!("exec: \"{program}\": {e}"),
    };
    io::Error::new(e.kind(), message)
}

/// SIGTERM to every stale process, SIGKILL to those alive after `grace`.
fn stop_stale(pids: &[i32], grace: Duration) {
    let send = |sig| {
        for pid in pids {
            if let Some(pid) = rustix::process::Pid::from_raw(*pid) {
                // Why ignored: a process may exit between the scan and the signal.
                let _ = rustix::process::kill_process(pid, sig);
            }
        }
    };
    send(rustix::process::Signal::TERM);
    let deadline = Instant::now() + grace;
    let alive = || {
        pids.iter()
            .any(|p| tree::stat(*p).is_some_and(|s| s.state != 'Z'))
    };
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    send(rustix::process::Signal::KILL);
}

/// Fallback mode: reaps re-parented orphans on every SIGCHLD until `stop`.
async fn reap_orphans_until(spawner: &'static Spawner, stop: tokio_util::sync::CancellationToken) {
    let Ok(mut sigchld) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
    else {
        return;
    };
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            s = sigchld.recv() => if s.is_none() { break },
        }
        spawner.reap_orphans();
    }
    spawner.reap_orphans();
}
