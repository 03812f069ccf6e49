//! The one module of podvisor allowed to use `unsafe`.
//!
//! Why: a container's process must be in its own session (so that Ctrl-C on the terminal of
//! `podvisor up` reaches podvisor, not the containers, and so signals reach the container's
//! process group) and must be in its cgroup *before* it runs any code of its own (so that
//! nothing it forks can escape `cgroup.kill`). Both need code that runs in the child between
//! its creation and `exec`. `std::process::Command` can only do that with `pre_exec`, which
//! makes it `fork()`: the kernel then copies every page table of podvisor (hundreds of MiB of
//! mappings with 1,000 pods) for each process, only for `exec` to throw the copy away, and
//! exec probes spawn about a hundred processes a second. So `spawn` below does what glibc's
//! `posix_spawn` does: `clone(CLONE_VM | CLONE_VFORK)` on a small stack of its own, the child
//! sharing podvisor's memory (nothing is copied) while the calling thread is suspended until
//! the child has called `execve` or exited. The child then makes only system calls, on data
//! the parent prepared (it allocates nothing, takes no lock and cannot panic).
//!
//! The child also shares podvisor's descriptor table (`CLONE_FILES`) until it has done what
//! needs no private table, then keeps a private copy of only its lowest descriptors
//! (`close_range(.., CLOSE_RANGE_UNSHARE)`), where the parent has put its stdio
//! ([`StdioSlot`]). Copying the whole table instead (what `fork`, `posix_spawn` and a plain
//! `vfork` do) costs a reference per open descriptor of podvisor's, then a close of each at
//! `execve`: with 1,000 pods (7,000 descriptors: pipes, pidfds, `cgroup.procs` files) that
//! was about 3.6 ms of kernel time per spawned process, six times the node's own CPU under
//! a hundred exec probes a second.
//!
//! The second use is registering a pidfd with tokio's reactor: `AsyncFd::register` is an
//! `unsafe fn` because it trusts the descriptor to stay open; an `OwnedFd` guarantees that.
//!
//! The third use is turning a real-time signal number (`SIGRTMIN+3`, allowed as
//! `lifecycle.stopSignal`) into a `rustix` `Signal`, which rustix only offers unchecked.
//!
//! Must not: grow. Anything that can be done safely is done elsewhere (the `PATH` search, the
//! environment and every string are prepared by `process`).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustix::process::Signal;
use tokio::io::unix::AsyncFd;

/// The shell a program without `#!` is run with, as `execvp` does.
const SHELL: &CStr = c"/bin/sh";

/// What the child does between `clone` and `execve`, in this order: join a new session, join
/// the cgroups (write `0` to each `cgroup.procs`), leave podvisor's descriptor table for a
/// copy of its lowest descriptors, take `stdio` as descriptors 0, 1 and 2 (every other one
/// close-on-exec),
/// set the group (and drop supplementary groups) and user, change directory, reset signal
/// handlers and mask to the defaults (SIGPIPE included, which Rust ignores), then `execve`
/// each of `candidates` in turn, as `execvp` does.
pub(super) struct ExecPlan<'a> {
    /// The paths to try (execvp's search of `PATH`, done by the parent); the error is that of
    /// the last one, or `EACCES` if any was not executable, as in glibc's `execvp`.
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    /// `KEY=value` entries: the complete environment.
    pub envp: &'a [CString],
    pub stdio: [BorrowedFd<'a>; 3],
    /// Open (close-on-exec) `cgroup.procs` files.
    pub cgroup_procs: &'a [OwnedFd],
    pub cwd: Option<&'a CStr>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// What the child reads (through a pointer: it shares the parent's memory).
struct ChildArgs {
    candidates: *const *const c_char,
    n_candidates: usize,
    argv: *const *const c_char,
    /// `[SHELL, <candidate>, argv[1..], NULL]`; the child fills slot 1 before using it.
    script_argv: *mut *const c_char,
    envp: *const *const c_char,
    /// The stdio, in the spawn's [`StdioSlot`].
    stdio: [c_int; 3],
    /// The child's private table keeps the descriptors below this one (the slots among them).
    keep_below: c_int,
    cgroup_procs: *const c_int,
    n_cgroup_procs: usize,
    cwd: *const c_char,
    uid: Option<u32>,
    gid: Option<u32>,
    /// The errno of the step that failed; 0 while the child has not failed.
    error: AtomicI32,
}

/// A child's stack, used by one child at a time while it runs before `execve` (its parent
/// thread is suspended meanwhile), then back to `STACKS` for the next spawn; never freed.
/// One per spawn in flight: spawns on different threads run at once (a child's join of its
/// cgroups can wait milliseconds in the kernel; concurrent joins share that wait).
struct ChildStack {
    /// The highest address (stacks grow down), 16-byte aligned.
    top: usize,
}

const STACK_SIZE: usize = 256 * 1024;

/// The stacks no spawn is using.
static STACKS: Mutex<Vec<ChildStack>> = Mutex::new(Vec::new());

impl ChildStack {
    /// Maps `STACK_SIZE` bytes plus a guard page below them.
    fn new() -> io::Result<ChildStack> {
        // SAFETY: `sysconf` reads a constant. `mmap` makes a new anonymous private mapping at an address the kernel chooses; nothing
        // else refers to it. The lowest page is made inaccessible as a guard.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
            let base = libc::mmap(
                ptr::null_mut(),
                STACK_SIZE + page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            if libc::mprotect(base, page, libc::PROT_NONE) != 0 {
                return Err(io::Error::last_os_error());
            }
            let top = (base as usize + page + STACK_SIZE) & !15;
            Ok(ChildStack { top })
        }
    }
}

/// Three descriptors low in podvisor's table through which one spawn at a time hands its
/// stdio to its child: the parent points them at the stdio (close-on-exec duplicates) before
/// `clone`, the child copies only the descriptors up to the slot's highest into its private
/// table and duplicates them to 0, 1 and 2, and the parent points them back at `/dev/null`
/// after (so that no pipe end stays open in podvisor through a slot). A spawn takes the
/// lowest free slot: [`reserve_stdio_slots`] makes a few while the table is still short (a
/// slot made later, when spawns outnumber them, sits higher and its children copy more).
/// Never freed, like the stacks.
#[derive(Clone, Copy)]
struct StdioSlot {
    fds: [c_int; 3],
}

/// The slots no spawn is using.
static SLOTS: Mutex<Vec<StdioSlot>> = Mutex::new(Vec::new());

/// How many slots [`reserve_stdio_slots`] makes: spawns at once before one waits for none
/// but copies more of the table.
const RESERVED_SLOTS: usize = 8;

/// Makes the first stdio slots, low in the descriptor table: call before opening many
/// descriptors (`Spawner::global` does, and the node's runtime makes it before any pod).
pub(super) fn reserve_stdio_slots() {
    let mut made = Vec::new();
    for _ in 0..RESERVED_SLOTS {
        match StdioSlot::new() {
            Ok(slot) => made.push(slot),
            // Why ignored: spawns make their slot when they need one (and fail then).
            Err(_) => break,
        }
    }
    SLOTS.lock().unwrap_or_else(|e| e.into_inner()).extend(made);
}

/// `/dev/null`, opened once: what a free slot's descriptors point at.
fn dev_null() -> io::Result<BorrowedFd<'static>> {
    static DEV_NULL: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = DEV_NULL.get() {
        return Ok(fd.as_fd());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    Ok(DEV_NULL.get_or_init(|| file.into()).as_fd())
}

impl StdioSlot {
    /// The slot's highest descriptor, plus one: what its child's private table keeps.
    fn end(&self) -> c_int {
        self.fds.iter().max().map_or(3, |fd| fd + 1)
    }

    /// Three new descriptors, the lowest free ones, pointing at `/dev/null`.
    fn new() -> io::Result<StdioSlot> {
        let null = dev_null()?.as_raw_fd();
        let mut fds = [-1; 3];
        for fd in &mut fds {
            // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` makes a new descriptor, the lowest free one
            // from 3, owned by the slot from here on (never closed: slots live for ever).
            *fd = unsafe { libc::fcntl(null, libc::F_DUPFD_CLOEXEC, 3) };
            if *fd < 0 {
                let error = io::Error::last_os_error();
                for &taken in fds.iter().filter(|&&f| f >= 0) {
                    // SAFETY: closes a descriptor made just above, which nothing else uses.
                    unsafe { libc::close(taken) };
                }
                return Err(error);
            }
        }
        Ok(StdioSlot { fds })
    }
}

/// A slot taken for one spawn; back to `SLOTS`, pointing at `/dev/null`, when dropped.
struct TakenSlot(StdioSlot);

impl TakenSlot {
    /// The lowest free slot, or a new one.
    fn take() -> io::Result<TakenSlot> {
        let mut free = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        let lowest = (0..free.len()).min_by_key(|&i| free[i].end());
        let slot = match lowest {
            Some(i) => free.swap_remove(i),
            None => {
                drop(free);
                StdioSlot::new()?
            }
        };
        Ok(TakenSlot(slot))
    }

    /// Points the slot at `stdio` (close-on-exec duplicates).
    fn point_at(&self, stdio: &[BorrowedFd<'_>; 3]) -> io::Result<()> {
        for (slot, fd) in self.0.fds.into_iter().zip(stdio) {
            // SAFETY: `dup3` replaces the slot's descriptor (the slot's own, unused by anyone
            // else while taken) with a duplicate of a descriptor the caller keeps open.
            if unsafe { libc::dup3(fd.as_raw_fd(), slot, libc::O_CLOEXEC) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

impl Drop for TakenSlot {
    fn drop(&mut self) {
        let Ok(null) = dev_null() else { return };
        for fd in self.0.fds {
            // SAFETY: as in `point_at`; `/dev/null` stays open for ever.
            if unsafe { libc::dup3(null.as_raw_fd(), fd, libc::O_CLOEXEC) } < 0 {
                // A slot that may still hold a child's pipe end is not used again (the
                // descriptor stays, pointing where it did).
                return;
            }
        }
        SLOTS.lock().unwrap_or_else(|e| e.into_inner()).push(self.0);
    }
}

/// Starts `plan` as a new process. Returns its pid and a pidfd for it (close-on-exec), once
/// the child has called `execve` successfully; a failure of any step before that is returned
/// as the OS error of that step, and that child is already reaped.
///
/// The caller must hold (for reading) the lock that keeps the fallback orphan reaper away
/// (see `process`):
/// a failed child is reaped here, by its pidfd.
pub(super) fn spawn(plan: &ExecPlan<'_>) -> io::Result<(i32, OwnedFd)> {
    let pointers = |v: &[CString]| -> Vec<*const c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect()
    };
    let candidates: Vec<*const c_char> = plan.candidates.iter().map(|c| c.as_ptr()).collect();
    let argv = pointers(&plan.argv);
    let envp = pointers(plan.envp);
    let mut script_argv: Vec<*const c_char> = vec![SHELL.as_ptr(), ptr::null()];
    // `argv` ends with its NULL; without arguments, `[sh, path, NULL]`.
    script_argv.extend(argv.iter().skip(1).copied());
    if script_argv.len() == 2 {
        script_argv.push(ptr::null());
    }
    let cgroup_procs: Vec<c_int> = plan.cgroup_procs.iter().map(|f| f.as_raw_fd()).collect();
    let slot = TakenSlot::take()?;
    slot.point_at(&plan.stdio)?;
    let args = ChildArgs {
        candidates: candidates.as_ptr(),
        n_candidates: candidates.len(),
        argv: argv.as_ptr(),
        script_argv: script_argv.as_mut_ptr(),
        envp: envp.as_ptr(),
        stdio: slot.0.fds,
        keep_below: slot.0.end(),
        cgroup_procs: cgroup_procs.as_ptr(),
        n_cgroup_procs: cgroup_procs.len(),
        cwd: plan.cwd.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
        uid: plan.uid,
        gid: plan.gid,
        error: AtomicI32::new(0),
    };

    let free = STACKS.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let stack = match free {
        Some(s) => s,
        None => ChildStack::new()?,
    };
    let top = stack.top;
    let mut pidfd: c_int = -1;
    // SAFETY: `clone` runs `child` on the stack above, in this process's memory (CLONE_VM),
    // and CLONE_VFORK suspends this thread until the child has called `execve` or exited, so
    // `args`, the vectors it points into and the stack (taken from `STACKS`, so no other
    // spawn uses it until it goes back there after this call) outlive
    // every use the child makes of them. All signals are blocked in this thread around the
    // call so that no handler of podvisor's can run in the child before it has reset them
    // (the child starts with this thread's mask). `pidfd` receives the pidfd (CLONE_PIDFD).
    // The child shares the descriptor table (CLONE_FILES) until it makes its own copy; before
    // that it only writes to descriptors the parent keeps open (`plan.cgroup_procs`).
    let (pid, clone_error) = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child,
            top as *mut c_void,
            libc::CLONE_VM
                | libc::CLONE_VFORK
                | libc::CLONE_FILES
                | libc::CLONE_PIDFD
                | libc::SIGCHLD,
            &args as *const ChildArgs as *mut c_void,
            &mut pidfd as *mut c_int,
        );
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut());
        (pid, clone_error)
    };
    STACKS.lock().unwrap_or_else(|e| e.into_inner()).push(stack);
    // The child has its own table (or has exited): the slot lets go of its stdio.
    drop(slot);
    if pid < 0 {
        return Err(clone_error);
    }
    // SAFETY: CLONE_PIDFD stored a new descriptor, owned by nobody else, in `pidfd`.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let error = args.error.load(Ordering::Acquire);
    if error != 0 {
        // The child exited with 127 without running the program; nobody else knows it.
        let _ = rustix::process::waitid(
            rustix::process::WaitId::PidFd(std::os::fd::AsFd::as_fd(&pidfd)),
            rustix::process::WaitIdOptions::EXITED,
        );
        return Err(io::Error::from_raw_os_error(error));
    }
    Ok((pid, pidfd))
}

/// The child, until `execve`. Runs on the child stack, sharing the parent's memory while the
/// parent waits: only system calls (glibc's thin wrappers, raw `syscall` for the credential
/// calls, whose glibc wrappers would signal the parent's threads), no allocation, no lock, no
/// panic. Returns only if a step failed, after storing its errno in `args.error`.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive while the parent is suspended; every
    // pointer in it was built by `spawn` from vectors that outlive the call.
    let args = unsafe { &*(arg as *const ChildArgs) };
    let error = unsafe { child_exec(args) };
    args.error.store(
        if error == 0 { libc::EINVAL } else { error },
        Ordering::Release,
    );
    127
}

/// The steps of `ExecPlan`; returns the errno of the one that failed.
///
/// # Safety
/// Only in the child of `spawn`, with `args` as `spawn` built it.
unsafe fn child_exec(args: &ChildArgs) -> c_int {
    // SAFETY: see `child`; every call below is a system call on descriptors and strings the
    // parent keeps alive.
    unsafe {
        let errno = || *libc::__errno_location();
        // Signal handlers of podvisor's would run here, in its memory: back to the defaults
        // (those set to be ignored stay ignored, except SIGPIPE, as std does).
        for signo in 1..=64 {
            if signo == libc::SIGKILL || signo == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signo, ptr::null(), &mut old) != 0 {
                continue;
            }
            if signo == libc::SIGPIPE
                || (old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN)
            {
                let mut new: libc::sigaction = std::mem::zeroed();
                new.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signo, &new, ptr::null_mut());
            }
        }
        if libc::setsid() < 0 {
            return errno();
        }
        for i in 0..args.n_cgroup_procs {
            let fd = *args.cgroup_procs.add(i);
            if libc::write(fd, b"0".as_ptr().cast(), 1) < 0 {
                return errno();
            }
        }
        // A private table with podvisor's descriptors below `keep_below` (0, 1, 2, the slots
        // and a few opened early; all but 0, 1 and 2 close-on-exec), not the thousands above.
        if libc::syscall(
            libc::SYS_close_range,
            args.keep_below as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_UNSHARE,
        ) < 0
        {
            // Before Linux 5.9: a copy of the whole table, closed at `execve` as ever.
            if libc::unshare(libc::CLONE_FILES) < 0 {
                return errno();
            }
        }
        for (target, fd) in (0..).zip(args.stdio) {
            // Slot descriptors are 3 or above: never `target` itself.
            if libc::dup2(fd, target) < 0 {
                return errno();
            }
        }
        // Only 0, 1 and 2 reach the program, as with runc: descriptors podvisor was started
        // with (or opened without close-on-exec) close at `execve` too. Cheap on the small
        // table; before Linux 5.11 they stay open (not an error).
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if let Some(gid) = args.gid
            && libc::syscall(libc::SYS_setgid, gid as libc::c_long) < 0
        {
            return errno();
        }
        if let Some(uid) = args.uid {
            // Drop supplementary groups when allowed, as std does before `setuid`.
            if libc::syscall(
                libc::SYS_setgroups,
                0 as libc::c_long,
                ptr::null::<c_void>(),
            ) < 0
                && errno() != libc::EPERM
            {
                return errno();
            }
            if libc::syscall(libc::SYS_setuid, uid as libc::c_long) < 0 {
                return errno();
            }
        }
        if !args.cwd.is_null() && libc::chdir(args.cwd) < 0 {
            return errno();
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, ptr::null_mut());

        // glibc's `execvp`: try each candidate; a file without `#!` runs with the shell.
        let mut got_eacces = false;
        let mut last = libc::ENOENT;
        for i in 0..args.n_candidates {
            let path = *args.candidates.add(i);
            libc::execve(path, args.argv, args.envp);
            let mut e = errno();
            if e == libc::ENOEXEC {
                *args.script_argv.add(1) = path;
                libc::execve(SHELL.as_ptr(), args.script_argv.cast_const(), args.envp);
                e = errno();
            }
            match e {
                libc::EACCES => got_eacces = true,
                libc::ENOENT | libc::ESTALE | libc::ENOTDIR | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => return e,
            }
            last = e;
        }
        if got_eacces { libc::EACCES } else { last }
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
pub(super) fn async_fd(fd: Arc<OwnedFd>) -> std::io::Result<AsyncFd<Arc<OwnedFd>>> {
    // SAFETY: the `Arc` owns the descriptor: it stays open and is the same descriptor for as
    // long as the `AsyncFd` holds a reference, which is what `register` requires.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into())
}
