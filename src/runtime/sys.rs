//! The one module of podvisor allowed to use `unsafe`.
//!
//! Why: a container's process must be in its own session (so that Ctrl-C on the terminal of
//! `podvisor up` reaches podvisor, not the containers, and so signals reach the container's
//! process group) and must be in its cgroup *before* it runs any code of its own (so that
//! nothing it forks can escape `cgroup.kill`). Both need code that runs in the child between
//! `fork` and `exec`, which is `CommandExt::pre_exec`, an `unsafe fn`. The closure below only
//! makes raw, async-signal-safe system calls (`setsid`, `write` on already-open descriptors)
//! and allocates nothing, as `pre_exec` requires.
//!
//! The second use is registering a pidfd with tokio's reactor: `AsyncFd::register` is an
//! `unsafe fn` because it trusts the descriptor to stay open; an `OwnedFd` guarantees that.
//!
//! The third use is turning a real-time signal number (`SIGRTMIN+3`, allowed as
//! `lifecycle.stopSignal`) into a `rustix` `Signal`, which rustix only offers unchecked.
//!
//! Must not: grow. Anything that can be done safely is done elsewhere.
#![allow(unsafe_code)]

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::process::Signal;
use tokio::io::unix::AsyncFd;

/// Makes the child call `setsid()` and then write `0` to each `cgroup.procs` descriptor,
/// which moves the writing process into that cgroup, before `exec`.
///
/// The descriptors are opened by the parent with `O_CLOEXEC`, so the program never sees them.
pub(super) fn set_session_and_cgroups(cmd: &mut Command, cgroup_procs: Vec<OwnedFd>) {
    // SAFETY: the closure runs in the forked child of a multi-threaded parent. It calls only
    // `setsid(2)` and `write(2)` through rustix's raw syscall layer, which neither allocates
    // nor takes locks, on descriptors that stay valid (owned by the closure, which lives in
    // the `Command` until `spawn` returns).
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::setsid()?;
            for fd in &cgroup_procs {
                rustix::io::write(fd, b"0")?;
            }
            Ok(())
        });
    }
}

/// The `Signal` for a raw Linux signal number from 1 to 64, real-time signals included.
pub fn signal_from_raw(signo: i32) -> Option<Signal> {
    if !(1..=64).contains(&signo) {
        return None;
    }
    if let Some(s) = Signal::from_named_raw(signo) {
        return Some(s);
    }
    // SAFETY: `signo` is a valid, non-zero Linux signal number (checked above). podvisor only
    // sends it to another process; it never installs a handler for it or blocks it, which is
    // what the rustix docs reserve for libc's own real-time signals.
    Some(unsafe { Signal::from_raw_unchecked(signo) })
}

/// Registers an owned descriptor (a pidfd) with tokio's reactor.
pub(super) fn async_fd(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: `OwnedFd` owns the descriptor: it stays open and is the same descriptor for as
    // long as the `AsyncFd` owns it, which is what `register` requires.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into())
}
