//! Control groups: one cgroup v2 directory per container below the node's, for `cgroup.kill`
//! (nothing a container forks can escape it) and memory limits.
//!
//! Layout: `<cgroup2 mount>/podvisor/<node id>/<pod uid>/<container>/` and, for exec hooks,
//! `…/<container>/exec-<n>/` (kept by the container instance for its next exec once empty,
//! `ExecPool`). Memory limits use the v2 `memory` controller when the machine
//! has it; on hybrid hosts where `memory` is still bound to cgroup v1 (like this project's CI
//! machines) the same layout is mirrored in the v1 `memory` hierarchy
//! (`memory.limit_in_bytes`, `memory.oom_control`). Where no writable cgroup v2 hierarchy with
//! `cgroup.kill` exists, `Cgroups::detect` says why and the runtime falls back to process
//! groups and a child-subreaper sweep (see `tree`).
//!
//! Must not: spawn processes or know about pods beyond their uid.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The node's cgroup directories.
#[derive(Debug)]
pub struct Cgroups {
    /// `<cgroup2 mount>/podvisor/<node id>`.
    node_dir: PathBuf,
    memory: MemoryBackend,
}

/// Where memory limits are enforced.
#[derive(Debug, Clone)]
enum MemoryBackend {
    /// The v2 `memory` controller is enabled down to the pod directories.
    V2,
    /// The node's directory in the v1 `memory` hierarchy.
    V1(PathBuf),
    /// Memory limits cannot be enforced; the reason is shown at start-up.
    None(String),
}

/// The cgroup directories of one container (or of one exec process in it).
#[derive(Debug, Clone)]
pub struct ContainerCgroup {
    /// The v2 directory (membership and `cgroup.kill`).
    pub dir: PathBuf,
    /// The v1 memory directory, on hybrid hosts.
    pub v1_memory: Option<PathBuf>,
    /// Whether `dir` has `memory.max` (v2 memory controller).
    v2_memory: bool,
}

impl Cgroups {
    /// Finds a writable cgroup v2 hierarchy with `cgroup.kill` and creates the node's
    /// directory in it. `Err` carries the reason the runtime falls back to process groups.
    pub fn detect(node_id: &str) -> Result<Cgroups, String> {
        let mount = find_mount("cgroup2", None).ok_or("no cgroup2 file system is mounted")?;
        let parent = mount.join("podvisor");
        let node_dir = parent.join(node_id);
        // Another node may remove the shared parent as it stops: retry that race.
        let mut attempt = 0;
        while let Err(e) = fs::create_dir_all(&node_dir) {
            attempt += 1;
            if attempt == 5 || e.kind() != io::ErrorKind::NotFound {
                return Err(format!("cannot create {}: {e}", node_dir.display()));
            }
        }
        // The root cgroup never has `cgroup.kill`; a child has it from Linux 5.14 on.
        if !node_dir.join("cgroup.kill").exists() {
            let _ = fs::remove_dir(&node_dir);
            return Err(format!(
                "cgroup2 at {} has no cgroup.kill (Linux 5.14 or later is needed)",
                mount.display()
            ));
        }
        let memory = memory_backend(&mount, &parent, &node_dir, node_id);
        Ok(Cgroups { node_dir, memory })
    }

    /// A human-readable summary for the start-up banner.
    pub fn describe(&self) -> String {
        let memory = match &self.memory {
            MemoryBackend::V2 => "memory limits via cgroup v2".to_owned(),
            MemoryBackend::V1(p) => format!("memory limits via cgroup v1 at {}", p.display()),
            MemoryBackend::None(why) => format!("memory limits not enforced: {why}"),
        };
        format!("cgroup v2 at {} ({memory})", self.node_dir.display())
    }

    /// Why memory limits cannot be enforced, if they cannot.
    pub fn memory_unsupported(&self) -> Option<&str> {
        match &self.memory {
            MemoryBackend::None(why) => Some(why),
            _ => None,
        }
    }

    /// Processes left in the node's cgroup by an earlier run of this node that did not exit
    /// cleanly.
    pub fn stale_processes(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        collect_procs(&self.node_dir, &mut pids);
        pids
    }

    /// Kills everything left in the node's cgroup and removes the pod directories.
    pub fn kill_all_and_clean(&self) {
        let _ = fs::write(self.node_dir.join("cgroup.kill"), "1");
        wait_unpopulated(&self.node_dir, Duration::from_secs(5));
        for entry in fs::read_dir(&self.node_dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                remove_tree(&entry.path());
            }
        }
        if let MemoryBackend::V1(dir) = &self.memory {
            for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.path().is_dir() {
                    remove_tree(&entry.path());
                }
            }
        }
    }

    /// Removes the node's own directories (at node shutdown, once every pod is gone).
    pub fn remove_node(&self) {
        remove_tree(&self.node_dir);
        if let MemoryBackend::V1(dir) = &self.memory {
            remove_tree(dir);
            // The shared `podvisor` folder goes when no other node uses it.
            if let Some(parent) = dir.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
        if let Some(parent) = self.node_dir.parent() {
            let _ = fs::remove_dir(parent);
        }
    }

    /// Creates (or reuses, once empty) the cgroup of a container, with its memory limit.
    pub fn container(
        &self,
        pod_uid: &str,
        container: &str,
        memory_limit: Option<u64>,
    ) -> io::Result<ContainerCgroup> {
        let pod_dir = self.node_dir.join(pod_uid);
        if !pod_dir.exists() {
            fs::create_dir_all(&pod_dir)?;
            if matches!(self.memory, MemoryBackend::V2) {
                fs::write(pod_dir.join("cgroup.subtree_control"), "+memory")?;
            }
        }
        let dir = pod_dir.join(container);
        create_fresh(&dir)?;
        let v2_memory = matches!(self.memory, MemoryBackend::V2);
        let v1_memory = match &self.memory {
            MemoryBackend::V1(root) => {
                let d = root.join(pod_uid).join(container);
                fs::create_dir_all(&d)?;
                Some(d)
            }
            _ => None,
        };
        let cg = ContainerCgroup {
            dir,
            v1_memory,
            v2_memory,
        };
        cg.set_memory_limit(memory_limit)?;
        Ok(cg)
    }

    /// Removes a pod's directories after every container of it is gone.
    pub fn remove_pod(&self, pod_uid: &str) {
        remove_tree(&self.node_dir.join(pod_uid));
        if let MemoryBackend::V1(root) = &self.memory {
            remove_tree(&root.join(pod_uid));
        }
    }
}

impl ContainerCgroup {
    fn set_memory_limit(&self, limit: Option<u64>) -> io::Result<()> {
        if self.v2_memory {
            let value = limit.map_or("max".to_owned(), |l| l.to_string());
            fs::write(self.dir.join("memory.max"), value)?;
            if limit.is_some() {
                // Like a container runtime: no swap beyond the limit.
                let _ = fs::write(self.dir.join("memory.swap.max"), "0");
            }
        }
        if let Some(v1) = &self.v1_memory {
            let value = limit.map_or("-1".to_owned(), |l| l.to_string());
            fs::write(v1.join("memory.limit_in_bytes"), value)?;
        }
        Ok(())
    }

    /// The `cgroup.procs` files to join, opened for writing (close-on-exec).
    pub fn procs_files(&self) -> io::Result<Vec<OwnedFd>> {
        let mut fds = Vec::new();
        let open = |p: PathBuf| -> io::Result<OwnedFd> {
            Ok(fs::OpenOptions::new().write(true).open(p)?.into())
        };
        fds.push(open(self.dir.join("cgroup.procs"))?);
        if let Some(v1) = &self.v1_memory {
            fds.push(open(v1.join("cgroup.procs"))?);
        }
        Ok(fds)
    }

    /// A child cgroup for one exec hook or probe, so it can be killed on its own.
    pub fn exec_child(&self, n: u64) -> io::Result<ContainerCgroup> {
        let dir = self.dir.join(format!("exec-{n}"));
        create_fresh(&dir)?;
        Ok(ContainerCgroup {
            dir,
            v1_memory: self.v1_memory.clone(),
            v2_memory: false,
        })
    }

    /// SIGKILLs every process in the cgroup and its children.
    pub fn kill(&self) -> io::Result<()> {
        fs::write(self.dir.join("cgroup.kill"), "1")
    }

    /// Whether any process is left in the cgroup or its children.
    pub fn populated(&self) -> bool {
        is_populated(&self.dir)
    }

    /// The number of OOM kills recorded for this cgroup.
    pub fn oom_kills(&self) -> u64 {
        if self.v2_memory
            && let Some(n) = read_key(&self.dir.join("memory.events"), "oom_kill")
        {
            return n;
        }
        if let Some(v1) = &self.v1_memory {
            return read_key(&v1.join("memory.oom_control"), "oom_kill").unwrap_or(0);
        }
        0
    }

    /// Removes the directory (and exec children) once empty; errors are ignored because a
    /// busy directory is retried when the pod is removed.
    pub fn remove(&self) {
        remove_tree(&self.dir);
    }
}

/// The cgroup of one exec hook or probe, with the files the runtime uses open. An empty one
/// goes back to its container's `ExecPool` for the next exec: creating and removing a cgroup
/// (and opening its files) for every exec was a third of the node's CPU with 100 exec
/// probes a second.
#[derive(Debug)]
pub struct ExecCgroup {
    pub cgroup: ContainerCgroup,
    /// Its `cgroup.procs` files (`procs_files`), to join.
    pub procs: Vec<OwnedFd>,
    /// Its `cgroup.events`, read again for `populated`.
    events: OwnedFd,
}

impl ExecCgroup {
    /// Whether any process is left in it. A removed cgroup holds none.
    pub fn populated(&self) -> bool {
        let mut buf = [0u8; 128];
        match rustix::io::pread(&self.events, &mut buf, 0) {
            Ok(n) => {
                key_in(&String::from_utf8_lossy(&buf[..n]), "populated").is_some_and(|n| n != 0)
            }
            Err(_) => false,
        }
    }
}

/// The idle exec cgroups of one container instance (at most `MAX_IDLE_EXEC`, which is more
/// than the probes and hooks of a container run at once).
#[derive(Debug, Default)]
pub struct ExecPool {
    idle: std::sync::Mutex<Vec<ExecCgroup>>,
}

const MAX_IDLE_EXEC: usize = 4;

impl ExecPool {
    /// An idle exec cgroup of `container`, or a new one named `exec-<n>`.
    pub fn take(&self, container: &ContainerCgroup, n: u64) -> io::Result<ExecCgroup> {
        if let Some(e) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(e);
        }
        let cgroup = container.exec_child(n)?;
        let procs = cgroup.procs_files()?;
        let events = fs::File::open(cgroup.dir.join("cgroup.events"))?.into();
        Ok(ExecCgroup {
            cgroup,
            procs,
            events,
        })
    }

    /// Takes back an exec cgroup whose processes are all gone (the caller checked
    /// `populated`); removes it when the pool is full.
    pub fn put(&self, e: ExecCgroup) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_EXEC {
            idle.push(e);
        } else {
            drop(idle);
            e.cgroup.remove();
        }
    }
}

/// Polls `cgroup.events` until the cgroup is empty or `timeout` passes. Returns emptiness.
pub fn wait_unpopulated(dir: &Path, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        if !is_populated(dir) {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn is_populated(dir: &Path) -> bool {
    match read_key(&dir.join("cgroup.events"), "populated") {
        Some(n) => n != 0,
        // A missing directory holds no process.
        None => false,
    }
}

fn read_key(file: &Path, key: &str) -> Option<u64> {
    key_in(&fs::read_to_string(file).ok()?, key)
}

/// The value of `key` in a flat-keyed cgroup file (`key value` lines).
fn key_in(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Creates `dir`, or empties a leftover one (its children first).
fn create_fresh(dir: &Path) -> io::Result<()> {
    if dir.exists() {
        remove_tree(dir);
    }
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes a cgroup directory and its child cgroups, deepest first (cgroup directories are
/// removed with rmdir, never with their control files).
fn remove_tree(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&p);
        }
    }
    // Why ignored: a cgroup that still holds a process cannot be removed; the caller kills
    // first and the pod directory is retried at pod removal and node shutdown.
    let _ = fs::remove_dir(dir);
}

fn collect_procs(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_procs(&entry.path(), out);
        }
    }
}

fn memory_backend(mount: &Path, parent: &Path, node_dir: &Path, node_id: &str) -> MemoryBackend {
    let controllers = fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
    if controllers.split_whitespace().any(|c| c == "memory") {
        let enable = |d: &Path| fs::write(d.join("cgroup.subtree_control"), "+memory");
        return match enable(mount)
            .and_then(|()| enable(parent))
            .and_then(|()| enable(node_dir))
        {
            Ok(()) => MemoryBackend::V2,
            Err(e) => MemoryBackend::None(format!("cannot enable the memory controller: {e}")),
        };
    }
    match find_mount("cgroup", Some("memory")) {
        Some(v1) => {
            let dir = v1.join("podvisor").join(node_id);
            match fs::create_dir_all(&dir) {
                Ok(()) if dir.join("memory.limit_in_bytes").exists() => MemoryBackend::V1(dir),
                Ok(()) => {
                    MemoryBackend::None(format!("{} has no memory.limit_in_bytes", dir.display()))
                }
                Err(e) => MemoryBackend::None(format!("cannot create {}: {e}", dir.display())),
            }
        }
        None => MemoryBackend::None(
            "the memory controller is in neither cgroup v2 nor a cgroup v1 hierarchy".to_owned(),
        ),
    }
}

/// The mount point of a file system of type `fstype` (with super option `option`, for v1).
fn find_mount(fstype: &str, option: Option<&str>) -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    for line in text.lines() {
        // "<id> <parent> <maj:min> <root> <mount point> <opts> [optional…] - <fstype> <src> <super opts>"
        let (left, right) = line.split_once(" - ")?;
        let mut right = right.split_whitespace();
        if right.next() != Some(fstype) {
            continue;
        }
        let super_opts = right.nth(1).unwrap_or_default();
        if let Some(o) = option
            && !super_opts.split(',').any(|s| s == o)
        {
            continue;
        }
        let mount_point = left.split_whitespace().nth(4)?;
        return Some(PathBuf::from(mount_point));
    }
    None
}
