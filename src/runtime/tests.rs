//! Real processes: exit codes, signals, tree kills, logs, exec, memory limits; each in both
//! the cgroup mode (where the machine allows it) and the fallback mode.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::process::ProcessSpec;
use super::*;

struct Env {
    runtime: Arc<Runtime>,
    _dir: tempfile::TempDir,
}

fn runtime(mode: CgroupMode, name: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        data_dir: dir.path().to_owned(),
        node_id: format!("test-{}-{name}", std::process::id()),
        cgroups: mode,
        log_rotation: Rotation::default(),
    });
    Env { runtime, _dir: dir }
}

fn sh(script: &str) -> ProcessSpec {
    ProcessSpec {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
        working_dir: Some("/".into()),
        uid: None,
        gid: None,
    }
}

/// The spawn error `start_container` answers for `request`, as text.
fn spawn_error(runtime: &Runtime, request: StartRequest) -> String {
    match runtime.start_container(request) {
        Err(Error::Spawn(e)) => e.to_string(),
        Err(other) => panic!("not a spawn error: {other}"),
        Ok(_) => panic!("started"),
    }
}

fn request(name: &str, process: ProcessSpec) -> StartRequest {
    StartRequest {
        namespace: "default".into(),
        pod: "pod".into(),
        // Unique per test: fallback mode finds a container's processes by a marker built
        // from the pod uid, and tests share one process.
        pod_uid: uuid::Uuid::new_v4().to_string(),
        container: name.into(),
        restart_count: 0,
        process,
        memory_limit: None,
    }
}

fn alive(pid: i32) -> bool {
    match tree::stat(pid) {
        Some(s) => s.state != 'Z',
        None => false,
    }
}

async fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads a pid the script wrote to a file.
async fn read_pid(path: &std::path::Path) -> i32 {
    let mut pid = 0;
    eventually("pid file", Duration::from_secs(5), || {
        pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        pid > 0
    })
    .await;
    pid
}

async fn exit_codes_and_logs(mode: CgroupMode) {
    let env = runtime(mode, "exit");
    let c = env
        .runtime
        .start_container(request("app", sh("echo out; echo err >&2; exit 3")))
        .unwrap();
    let exit = c.wait().await;
    assert_eq!(exit.status.code, 3);
    assert_eq!(exit.status.signal, None);
    let log = std::fs::read_to_string(&c.log_path).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    for line in &lines {
        let mut parts = line.splitn(4, ' ');
        let ts = parts.next().unwrap();
        assert_eq!(ts.len(), "2026-11-28T10:00:00.123456789Z".len(), "{line}");
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{ts}");
    }
    assert!(log.contains(" stdout F out\n"), "{log}");
    assert!(log.contains(" stderr F err\n"), "{log}");
    env.runtime.shutdown().await;
}

#[tokio::test]
async fn exit_codes_and_logs_cgroup() {
    exit_codes_and_logs(CgroupMode::Auto).await;
}

#[tokio::test]
async fn exit_codes_and_logs_fallback() {
    exit_codes_and_logs(CgroupMode::Off).await;
}

async fn stop_signal_and_kill(mode: CgroupMode) {
    let env = runtime(mode, "signal");
    // Dies of SIGTERM: 143.
    let c = env
        .runtime
        .start_container(request("term", sh("exec sleep 100")))
        .unwrap();
    c.signal(15).unwrap();
    let exit = c.wait().await;
    assert_eq!((exit.status.code, exit.status.signal), (143, Some(15)));

    // Ignores SIGTERM: still alive, then SIGKILL of the whole tree: 137.
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = format!(
        "trap '' TERM; echo $$ > {}; while true; do sleep 1; done",
        ready.display()
    );
    let c = env
        .runtime
        .start_container(request("ignore", sh(&script)))
        .unwrap();
    read_pid(&ready).await;
    c.signal(15).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await; // give a wrong implementation time to die
    assert!(c.exit_info().is_none(), "SIGTERM was ignored");
    c.kill_all();
    let exit = c.wait().await;
    assert_eq!((exit.status.code, exit.status.signal), (137, Some(9)));
    env.runtime.shutdown().await;
}

#[tokio::test]
async fn stop_signal_and_kill_cgroup() {
    stop_signal_and_kill(CgroupMode::Auto).await;
}

#[tokio::test]
async fn stop_signal_and_kill_fallback() {
    stop_signal_and_kill(CgroupMode::Off).await;
}

async fn tree_kill(mode: CgroupMode) {
    let env = runtime(mode, "tree");
    let dir = tempfile::tempdir().unwrap();
    let gc = dir.path().join("grandchild");
    // A setsid'd grandchild in its own session, and a plain child.
    let script = format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 1000' & sleep 1000 & wait",
        gc.display()
    );
    let c = env
        .runtime
        .start_container(request("tree", sh(&script)))
        .unwrap();
    let grandchild = read_pid(&gc).await;
    assert_ne!(
        tree::stat(grandchild).unwrap().session,
        c.pid,
        "grandchild has its own session"
    );
    let mut all = Vec::new();
    eventually("three processes", Duration::from_secs(5), || {
        all = c.processes();
        all.len() >= 3
    })
    .await;
    assert!(all.contains(&grandchild), "{all:?} {grandchild}");
    c.kill_all();
    c.wait().await;
    for pid in all {
        assert!(!alive(pid), "process {pid} survived the tree kill");
    }
    env.runtime.shutdown().await;
}

#[tokio::test]
async fn tree_kill_cgroup() {
    tree_kill(CgroupMode::Auto).await;
}

#[tokio::test]
async fn tree_kill_fallback() {
    tree_kill(CgroupMode::Off).await;
}

async fn main_exit_kills_leftovers(mode: CgroupMode) {
    let env = runtime(mode, "leftover");
    let dir = tempfile::tempdir().unwrap();
    let gc = dir.path().join("grandchild");
    let script = format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 1000' & while [ ! -s {} ]; do sleep 0.01; done; exit 0",
        gc.display(),
        gc.display()
    );
    let c = env
        .runtime
        .start_container(request("leftover", sh(&script)))
        .unwrap();
    let exit = c.wait().await;
    assert_eq!(exit.status.code, 0);
    let grandchild = read_pid(&gc).await;
    assert!(!alive(grandchild), "the orphan outlived its container");
    env.runtime.shutdown().await;
}

#[tokio::test]
async fn main_exit_kills_leftovers_cgroup() {
    main_exit_kills_leftovers(CgroupMode::Auto).await;
}

#[tokio::test]
async fn main_exit_kills_leftovers_fallback() {
    main_exit_kills_leftovers(CgroupMode::Off).await;
}

async fn exec_in_container(mode: CgroupMode) {
    let env = runtime(mode, "exec");
    let mut spec = sh("exec sleep 100");
    spec.env.push(("GREETING".into(), "hello".into()));
    let c = env.runtime.start_container(request("app", spec)).unwrap();
    let argv: Vec<String> = ["sh", "-c", "echo $GREETING; echo oops >&2; exit 7"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let exec = env.runtime.exec(&c, &argv).await.unwrap();
    let outcome = exec.wait().await;
    assert_eq!(outcome.status.code, 7);
    assert_eq!(String::from_utf8_lossy(&outcome.output), "hello\noops\n");

    // A hanging exec is killed when its handle is dropped (a cancelled hook).
    let hang: Vec<String> = ["sleep", "1000"].iter().map(|s| s.to_string()).collect();
    let exec = env.runtime.exec(&c, &hang).await.unwrap();
    let pid = exec.pid;
    assert!(alive(pid));
    drop(exec);
    eventually("exec killed", Duration::from_secs(5), || !alive(pid)).await;
    assert!(c.exit_info().is_none(), "the container survives its exec");

    // An exec whose caller goes away while it spawns (an aborted probe worker: the future is
    // dropped after its first poll) is killed and reaped as well: no child of this test is
    // left but the container (a zombie would count too).
    let me = std::process::id() as i32;
    let others = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&p| p != c.pid && tree::stat(p).is_some_and(|s| s.ppid == me))
            .count()
    };
    let mut abandoned = Box::pin(env.runtime.exec(&c, &hang));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(
        abandoned.as_mut().poll(&mut cx).is_pending(),
        "the spawn is under way after the first poll"
    );
    drop(abandoned);
    // The blocking pool takes spawns in order: once a later exec has run, that spawn is done.
    let argv = vec!["true".to_owned()];
    assert_eq!(
        env.runtime
            .exec(&c, &argv)
            .await
            .unwrap()
            .wait()
            .await
            .status
            .code,
        0
    );
    eventually(
        "the abandoned exec killed and reaped",
        Duration::from_secs(5),
        || others() == 0,
    )
    .await;

    // Killing the container kills a running exec too.
    let exec = env.runtime.exec(&c, &hang).await.unwrap();
    c.kill_all();
    c.wait().await;
    assert_eq!(exec.wait().await.status.code, 137);
    assert!(matches!(
        env.runtime.exec(&c, &hang).await,
        Err(Error::NotRunning)
    ));
    env.runtime.shutdown().await;
}

#[tokio::test]
async fn exec_in_container_cgroup() {
    exec_in_container(CgroupMode::Auto).await;
}

#[tokio::test]
async fn exec_in_container_fallback() {
    exec_in_container(CgroupMode::Off).await;
}

/// Execs started at once from tasks on several threads (each spawn blocks a thread of the
/// blocking pool, spawns run concurrently on child stacks of their own): every one runs its
/// own command with its own output.
async fn concurrent_execs(mode: CgroupMode) {
    let env = runtime(mode, "concurrent");
    let c = env
        .runtime
        .start_container(request("app", sh("exec sleep 100")))
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let runtime = env.runtime.clone();
        let c = c.clone();
        tasks.spawn(async move {
            let argv = vec!["sh".to_owned(), "-c".to_owned(), format!("echo exec-{i}")];
            let exec = runtime.exec(&c, &argv).await.unwrap();
            (i, exec.wait().await)
        });
    }
    let mut seen = 0;
    while let Some(done) = tasks.join_next().await {
        let (i, outcome) = done.unwrap();
        assert_eq!(outcome.status.code, 0);
        assert_eq!(
            String::from_utf8_lossy(&outcome.output),
            format!("exec-{i}\n")
        );
        seen += 1;
    }
    assert_eq!(seen, 16);
    c.kill_all();
    c.wait().await;
    env.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_execs_cgroup() {
    concurrent_execs(CgroupMode::Auto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_execs_fallback() {
    concurrent_execs(CgroupMode::Off).await;
}

/// What a child is given before its program runs (`sys::spawn`): its own session and process
/// group, its cgroup, no blocked signal and SIGPIPE not ignored, `/dev/null` as stdin and no
/// other descriptor of podvisor's (not even one left without close-on-exec), the
/// environment as given (the last value of a name wins), the working directory, the user;
/// `PATH` searched as `execvp` does (a file that is not executable is skipped, one without
/// `#!` runs with `/bin/sh`).
async fn child_setup(mode: CgroupMode) {
    let env = runtime(mode, "setup");
    let dir = tempfile::tempdir().unwrap();
    let (bin1, bin2) = (dir.path().join("bin1"), dir.path().join("bin2"));
    std::fs::create_dir(&bin1).unwrap();
    std::fs::create_dir(&bin2).unwrap();
    std::fs::write(bin1.join("tool"), "echo not executable\n").unwrap();
    std::fs::write(bin2.join("tool"), "echo found in bin2 $A\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin2.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = rustix::process::getuid().is_root();
    let mut spec = sh("exec sleep 100");
    spec.working_dir = Some(dir.path().to_owned());
    spec.env.push(("A".into(), "1".into()));
    spec.env.push(("A".into(), "2".into()));
    if root {
        (spec.uid, spec.gid) = (Some(65534), Some(65534));
    }
    let c = env.runtime.start_container(request("app", spec)).unwrap();
    let run = async |argv: &[&str]| {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let outcome = env.runtime.exec(&c, &argv).await.unwrap().wait().await;
        let output = String::from_utf8_lossy(&outcome.output).into_owned();
        assert_eq!(outcome.status.code, 0, "{argv:?}: {output}");
        output
    };

    let stat = run(&["cat", "/proc/self/stat"]).await;
    let fields: Vec<&str> = stat.split_whitespace().collect();
    assert_eq!(fields[0], fields[4], "own process group: {stat}");
    assert_eq!(fields[0], fields[5], "own session: {stat}");
    let status = run(&["cat", "/proc/self/status"]).await;
    let mask = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(mask("SigBlk:"), 0, "{status}");
    assert_eq!(
        mask("SigIgn:") & (1 << (13 - 1)),
        0,
        "SIGPIPE ignored: {status}"
    );
    assert_eq!(run(&["readlink", "/proc/self/fd/0"]).await, "/dev/null\n");
    // A descriptor high in podvisor's table, not close-on-exec: the child's table is a copy of
    // the lowest descriptors only. (`ls` itself has 3, the directory it lists.)
    let leaky =
        rustix::io::fcntl_dupfd_cloexec(std::fs::File::open("/dev/null").unwrap(), 1000).unwrap();
    rustix::io::fcntl_setfd(&leaky, rustix::io::FdFlags::empty()).unwrap();
    assert_eq!(run(&["ls", "/proc/self/fd"]).await, "0\n1\n2\n3\n");
    drop(leaky);
    assert_eq!(
        run(&["pwd"]).await.trim(),
        dir.path().canonicalize().unwrap().to_str().unwrap()
    );
    let printed = run(&["env"]).await;
    assert!(printed.lines().any(|l| l == "A=2"), "{printed}");
    assert!(!printed.lines().any(|l| l == "A=1"), "{printed}");
    if let Some(cg) = &c.cgroup {
        let own = run(&["cat", "/proc/self/cgroup"]).await;
        let container = cg.dir.to_str().unwrap().split_once("/podvisor/").unwrap().1;
        assert!(
            own.lines().any(
                |l| l.starts_with("0::") && l.contains(&format!("/podvisor/{container}/exec-"))
            ),
            "{own}"
        );
        if let Some(v1) = &cg.v1_memory {
            let container = v1.to_str().unwrap().split_once("/podvisor/").unwrap().1;
            assert!(
                own.lines()
                    .any(|l| l.contains(":memory:") && l.ends_with(container)),
                "{own}"
            );
        }
    }
    if root {
        assert_eq!(
            run(&["sh", "-c", "id -u; id -g; id -G"]).await,
            "65534\n65534\n65534\n"
        );
    }
    c.kill_all();
    c.wait().await;

    // PATH: bin1's tool is not executable (skipped), bin2's has no `#!` (runs with sh).
    let mut spec = sh("exec sleep 100");
    spec.env = vec![(
        "PATH".into(),
        format!("{}:{}", bin1.display(), bin2.display()),
    )];
    spec.env.push(("A".into(), "x".into()));
    assert_eq!(
        spawn_error(&env.runtime, request("path", spec.clone())),
        "exec: \"sh\": executable file not found in $PATH"
    );
    spec.argv = vec!["tool".into()];
    let c = env
        .runtime
        .start_container(request("path", spec.clone()))
        .unwrap();
    assert_eq!(c.wait().await.status.code, 0);
    let log = std::fs::read_to_string(&c.log_path).unwrap();
    assert!(log.contains("found in bin2 x"), "{log}");
    spec.env[0].1 = bin1.display().to_string();
    assert_eq!(
        spawn_error(&env.runtime, request("path", spec.clone())),
        "exec: \"tool\": permission denied"
    );
    spec.argv = vec![bin2.join("tool").display().to_string()];
    spec.working_dir = Some(dir.path().join("missing"));
    assert_eq!(
        spawn_error(&env.runtime, request("path", spec)),
        format!(
            "chdir to cwd (\"{}\") set in config.json failed: no such file or directory",
            dir.path().join("missing").display()
        )
    );
    env.runtime.shutdown().await;
}

#[tokio::test]
async fn child_setup_cgroup() {
    child_setup(CgroupMode::Auto).await;
}

#[tokio::test]
async fn child_setup_fallback() {
    child_setup(CgroupMode::Off).await;
}

/// An exec's cgroup is reused by the container's next exec once it is empty, never while a
/// process the exec left in the background is still in it.
#[tokio::test]
async fn exec_cgroup_reused_once_empty() {
    let env = runtime(CgroupMode::Auto, "reuse");
    let c = env
        .runtime
        .start_container(request("app", sh("exec sleep 100")))
        .unwrap();
    if c.cgroup.is_none() {
        eprintln!("no cgroups on this machine: nothing to check here");
    } else {
        let run = async |script: &str| {
            let argv: Vec<String> = ["sh", "-c", script].iter().map(|s| s.to_string()).collect();
            let outcome = env.runtime.exec(&c, &argv).await.unwrap().wait().await;
            String::from_utf8_lossy(&outcome.output).into_owned()
        };
        let own = "grep ^0:: /proc/self/cgroup";
        let first = run(own).await;
        assert!(first.contains("/exec-"), "{first}");
        assert_eq!(run(own).await, first);
        let background = run(&format!("{own}; sleep 100 >/dev/null 2>&1 &")).await;
        assert_eq!(background, first);
        let after = run(own).await;
        assert!(after.contains("/exec-"), "{after}");
        assert_ne!(after, first, "a cgroup with a process left is not reused");
    }
    c.kill_all();
    c.wait().await;
    env.runtime.shutdown().await;
}

#[tokio::test]
async fn start_error_names_the_missing_command() {
    let env = runtime(CgroupMode::Auto, "starterror");
    let mut spec = sh("");
    spec.argv = vec!["podvisor-no-such-command".into()];
    assert_eq!(
        spawn_error(&env.runtime, request("app", spec.clone())),
        "exec: \"podvisor-no-such-command\": executable file not found in $PATH"
    );
    spec.argv = vec!["/nonexistent/bin/app".into()];
    assert_eq!(
        spawn_error(&env.runtime, request("app", spec)),
        "exec: \"/nonexistent/bin/app\": stat /nonexistent/bin/app: no such file or directory"
    );
    env.runtime.shutdown().await;
}

#[tokio::test]
async fn memory_limit_oom_kill() {
    let env = runtime(CgroupMode::Auto, "oom");
    if !env.runtime.memory_limits_supported() {
        // Not a silent pass: say why on the test output.
        eprintln!("memory limits unsupported here: {}", env.runtime.describe());
        return;
    }
    let mut req = request(
        "hog",
        sh("python3 -c 'b = bytearray(256 * 1024 * 1024); import time; time.sleep(5)'"),
    );
    req.memory_limit = Some(64 * 1024 * 1024);
    let c = env.runtime.start_container(req).unwrap();
    let exit = c.wait().await;
    assert!(exit.oom_killed, "{exit:?}");
    assert_eq!(exit.status.code, 137);
    env.runtime.shutdown().await;
}

#[tokio::test]
async fn log_rotation_keeps_max_files() {
    let dir = tempfile::tempdir().unwrap();
    let rotation = Rotation {
        max_bytes: 200,
        max_files: 3,
    };
    let mut w = LogWriter::open(dir.path(), 0, rotation).unwrap();
    for i in 0..100 {
        w.write_record(
            jiff::Timestamp::now(),
            logs::Stream::Stdout,
            false,
            format!("line {i}").as_bytes(),
        )
        .unwrap();
    }
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(dir.path().join("0.log").exists());
}
