//! The fallback without cgroups: finding and killing a container's processes through `/proc`.
//!
//! Every process of a container carries the environment variable `PODVISOR_CONTAINER_ID`
//! (set by the runtime in this mode only), starts in the container's session and process
//! group, and is a descendant of the main process. A setsid'd grandchild whose parent exited
//! keeps the variable and is re-parented to podvisor, which is a child subreaper in this mode;
//! so the union of "same session", "same process group", "descendant of those" and "carries
//! the marker" finds every process, and `reap_orphans` collects the re-parented ones.
//!
//! Must not: be used when cgroups are available (`cgroup.kill` is atomic, this is not).

use std::collections::{HashMap, HashSet};
use std::fs;

use rustix::process::{Pid, Signal};

/// The variable that marks a container's processes in fallback mode.
pub const MARKER_VAR: &str = "PODVISOR_CONTAINER_ID";

/// One line of `/proc/<pid>/stat`, the fields podvisor needs.
#[derive(Clone, Copy, Debug)]
pub struct ProcStat {
    pub pid: i32,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
}

/// Parses `/proc/<pid>/stat` (the command name may contain spaces and parentheses).
pub fn stat(pid: i32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some(ProcStat {
        pid,
        state,
        ppid,
        pgrp,
        session,
    })
}

/// Every live process on the machine.
pub fn all_processes() -> Vec<ProcStat> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

fn has_marker(pid: i32, marker: &str) -> bool {
    let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let needle = format!("{MARKER_VAR}={marker}");
    env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes())
}

/// The live (non-zombie) processes of the container whose main process is `main_pid`
/// (possibly already exited) and whose marker is `marker`.
pub fn container_processes(main_pid: i32, marker: &str) -> Vec<i32> {
    let procs = all_processes();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for p in &procs {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut found: HashSet<i32> = HashSet::new();
    let mut queue: Vec<i32> = Vec::new();
    for p in &procs {
        if p.state == 'Z' {
            continue;
        }
        if p.pid == main_pid
            || p.session == main_pid
            || p.pgrp == main_pid
            || has_marker(p.pid, marker)
        {
            queue.push(p.pid);
        }
    }
    while let Some(pid) = queue.pop() {
        if found.insert(pid) {
            queue.extend(children.get(&pid).into_iter().flatten().copied());
        }
    }
    let me = rustix::process::getpid().as_raw_nonzero().get();
    found.remove(&me);
    let mut v: Vec<i32> = found.into_iter().collect();
    v.sort_unstable();
    v
}

/// Every live process whose marker says it belongs to node `node_id` (fallback mode's
/// equivalent of the node's cgroup), for cleaning up after a node that was killed.
pub fn node_processes(node_id: &str) -> Vec<i32> {
    let prefix = format!("{MARKER_VAR}={node_id}/");
    all_processes()
        .into_iter()
        .filter(|p| p.state != 'Z')
        .filter(|p| {
            fs::read(format!("/proc/{}/environ", p.pid)).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|kv| kv.starts_with(prefix.as_bytes()))
            })
        })
        .map(|p| p.pid)
        .collect()
}

/// SIGKILLs every process of the container. Returns how many were signalled.
pub fn kill_container_processes(main_pid: i32, marker: &str) -> usize {
    let pids = container_processes(main_pid, marker);
    for pid in &pids {
        if let Some(pid) = Pid::from_raw(*pid) {
            // Why ignored: the process may have exited since the scan.
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
    }
    pids.len()
}

/// Reaps zombie children of podvisor that nobody waits for: processes re-parented to us as
/// a child subreaper. `tracked` are the pids whose own waiter will reap them.
pub fn reap_orphans(tracked: &HashSet<i32>) -> usize {
    let me = rustix::process::getpid().as_raw_nonzero().get();
    let mut n = 0;
    for p in all_processes() {
        if p.ppid == me
            && p.state == 'Z'
            && !tracked.contains(&p.pid)
            && let Some(pid) = Pid::from_raw(p.pid)
        {
            // Why ignored: another waiter may have reaped it between the scan and here.
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
            n += 1;
        }
    }
    n
}
