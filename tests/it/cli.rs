//! The `podvisor` binary: `check` over invalid manifests, `up` refusing bad input before
//! starting anything, and `up` running the README example through Ctrl-C.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::{PODVISOR, TESTAPP, alive, test_cidr, test_service_cidr};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `# expect:` lines of an invalid manifest.
fn expected_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(str::to_owned)
        .collect()
}

/// Every manifest of `testdata/invalid` is rejected by `podvisor check` with exit 1 and
/// every expected field error, each naming the file and the object.
#[test]
fn check_rejects_every_invalid_manifest_with_its_field_paths() {
    let dir = repo().join("testdata/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "at least 20 invalid manifests");
    for file in files {
        let out = Command::new(PODVISOR)
            .args(["check", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{}: {stdout}", file.display());
        let expected = expected_lines(&file);
        assert!(
            !expected.is_empty(),
            "{} has no # expect: lines",
            file.display()
        );
        for line in expected {
            let found = stdout.lines().any(|l| {
                l.starts_with(&format!("error: {}: ", file.display())) && l.ends_with(&line)
            });
            assert!(found, "{}: missing {line:?} in:\n{stdout}", file.display());
        }
    }
}

/// `up` refuses each invalid manifest too: exit 1, every problem listed, nothing started.
#[test]
fn up_starts_nothing_for_any_invalid_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for entry in std::fs::read_dir(repo().join("testdata/invalid")).unwrap() {
        let file = entry.unwrap().path();
        let out = Command::new(PODVISOR)
            .arg("up")
            .arg("-f")
            .arg(&file)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{}: {stdout}", file.display());
        for line in expected_lines(&file) {
            assert!(
                stdout.contains(&line),
                "{}: missing {line:?}",
                file.display()
            );
        }
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("nothing was started"),
            "{}",
            file.display()
        );
        assert!(!data.exists(), "{}: a data dir was created", file.display());
    }
}

/// `check` accepts the example, reads stdin with `-f -`, and names unsupported kinds.
#[test]
fn check_ok_stdin_and_unsupported_kind() {
    let out = Command::new(PODVISOR)
        .args([
            "check",
            "-f",
            "examples/hello.yaml",
            "--image-map",
            "examples/image-map.yaml",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("examples/hello.yaml: Pod \"hello\": OK")
    );

    let mut child = Command::new(PODVISOR)
        .args(["check", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("<stdin>: StatefulSet \"web\""), "{stdout}");
    assert!(stdout.contains("supported kinds: Pod"), "{stdout}");
}

/// A bad manifest, image map or flag stops `up` before anything starts, listing every problem.
#[test]
fn up_refuses_bad_input_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let manifest = dir.path().join("bad.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad}\nspec:\n  containers:\n  - name: app\n    image: nginx:1.25\n",
    )
    .unwrap();
    let out = Command::new(PODVISOR)
        .arg("up")
        .arg("-f")
        .arg(&manifest)
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--pod-cidr",
            "10.0.0.0/16",
            "--service-cidr",
            "10.96.0.0/16",
            "--image-map",
            "/nonexistent/map.yaml",
        ])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("--pod-cidr 10.0.0.0/16: must be part of 127.0.0.0/8"),
        "{all}"
    );
    assert!(
        all.contains("--service-cidr 10.96.0.0/16: must be part of 127.0.0.0/8"),
        "{all}"
    );
    assert!(
        all.contains("failed to read image map `/nonexistent/map.yaml`"),
        "{all}"
    );
    assert!(
        all.contains("metadata.name: Invalid value: \"Bad\""),
        "{all}"
    );
    assert!(all.contains("image \"nginx:1.25\""), "{all}");
    assert!(all.contains("nothing was started"), "{all}");
    assert!(!data.exists(), "no data dir was created");
}

/// An object in a namespace that neither exists nor comes in the same manifests is refused
/// (kubectl: `namespaces "shop" not found`) and nothing of the batch is stored; with the
/// Namespace in the batch, in any order, it runs.
#[test]
fn up_refuses_objects_in_a_missing_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pod = dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: shop}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers:\n  - {name: app, image: busybox, command: [sleep, '600']}\n",
    )
    .unwrap();
    let out = Command::new(PODVISOR)
        .args([
            "up",
            "--api-port",
            "0",
            "--color",
            "never",
            "--pod-cidr",
            &test_cidr(),
        ])
        .arg("-f")
        .arg(&pod)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(r#"error: cannot create configmap "cfg": namespaces "shop" not found"#),
        "{stdout}"
    );
    assert!(!stdout.contains("Started"), "{stdout}");

    let namespace = dir.path().join("ns.yaml");
    std::fs::write(
        &namespace,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
    )
    .unwrap();
    let mut up = Up::start(
        &[
            "-f",
            &pod.to_string_lossy(),
            "-f",
            &namespace.to_string_lossy(),
        ],
        dir.path(),
    );
    up.wait_line("shop/web/app = Running", Duration::from_secs(20));
    up.signal(rustix::process::Signal::INT);
    let (code, lines) = up.finish(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
}

/// Services whose node ports clash, with each other or with a stored one, are refused before
/// anything of the batch is stored; a service-cidr that overlaps the pod-cidr is refused.
#[test]
fn up_refuses_services_whose_ports_clash() {
    let dir = tempfile::tempdir().unwrap();
    let services = dir.path().join("services.yaml");
    let service = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  type: NodePort\n  ports: [{{port: 80, nodePort: 30100}}]\n"
        )
    };
    std::fs::write(&services, format!("{}---\n{}", service("a"), service("b"))).unwrap();
    let up = |extra: &[&str]| {
        Command::new(PODVISOR)
            .args(["up", "--api-port", "0", "--color", "never"])
            .args(["--pod-cidr", &test_cidr()])
            .args(extra)
            .arg("-f")
            .arg(&services)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .output()
            .unwrap()
    };
    let out = up(&["--service-cidr", &test_cidr()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("overlaps --pod-cidr") && stderr.contains("nothing was started"),
        "{stderr}"
    );
    let out = up(&["--service-cidr", &test_service_cidr()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            r#"error: cannot create service "b": Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 30100: provided port is already allocated"#
        ),
        "{stdout}"
    );
    // Nothing of the batch was stored: `a` alone is created afresh, not found unchanged.
    std::fs::write(&services, service("a")).unwrap();
    let mut up = Up::start(&["-f", &services.to_string_lossy()], dir.path());
    up.wait_line("podvisor: API at", Duration::from_secs(20));
    up.signal(rustix::process::Signal::INT);
    let (code, lines) = up.finish(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    assert!(
        !lines.iter().any(|l| l.contains("service/a unchanged")),
        "{}",
        lines.join("\n")
    );
    // Applied again, `a` keeps its node port and is unchanged.
    let mut up = Up::start(&["-f", &services.to_string_lossy()], dir.path());
    up.wait_line("service/a unchanged", Duration::from_secs(20));
    up.signal(rustix::process::Signal::INT);
    let (code, lines) = up.finish(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
}

/// Runs `podvisor up` with piped output; lines arrive on a channel.
struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Up {
    fn start(args: &[&str], dir: &Path) -> Up {
        let mut child = Command::new(PODVISOR)
            .arg("up")
            .args(args)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args([
                "--pod-cidr",
                &test_cidr(),
                "--service-cidr",
                &test_service_cidr(),
                "--color",
                "never",
                "--api-port",
                "0",
            ])
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut s);
            for line in s.lines() {
                let _ = tx2.send(format!("stderr: {line}"));
            }
        });
        Up {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`.
    fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} after {timeout:?}; output:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, sig).unwrap();
    }

    /// Waits for exit; returns the code and every line.
    fn finish(mut self, timeout: Duration) -> (Option<i32>, Vec<String>) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return (status.code(), std::mem::take(&mut self.seen));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "podvisor up did not exit; output:\n{}",
                    self.seen.join("\n")
                );
            }
            while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(20)) {
                self.seen.push(line);
            }
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn index_of(lines: &[String], needle: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{}", lines.join("\n")))
}

/// The README example: `up` runs it, and Ctrl-C shows the preStop hook, the signal, and the
/// exit code in that order, then exits 0 with no process left.
#[test]
fn up_runs_the_example_and_stops_in_order_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("map.yaml");
    // The README builds the release binary; tests use this build's test app instead.
    std::fs::write(
        &map,
        format!("images:\n  podvisor/testapp:\n    command: [\"{TESTAPP}\"]\n"),
    )
    .unwrap();
    let mut up = Up::start(
        &[
            "-f",
            "examples/hello.yaml",
            "--image-map",
            map.to_str().unwrap(),
        ],
        dir.path(),
    );
    up.wait_line("hello/app = Running", Duration::from_secs(20));
    let started = up.wait_line("hello started pid=", Duration::from_secs(10));
    let pid: i32 = started
        .split("pid=")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    up.wait_line("listening", Duration::from_secs(10));
    up.signal(rustix::process::Signal::INT);
    let (code, lines) = up.finish(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    let stopping = index_of(&lines, "podvisor: stopping 1 pod");
    let killing = index_of(&lines, "hello/app * Killing: Stopping container app");
    let hook = index_of(&lines, "hook name=preStop via=http");
    let signal = index_of(&lines, "signal sig=SIGTERM");
    let exited = index_of(&lines, "hello/app = Terminated: exit code 0 (Completed)");
    let stopped = index_of(&lines, "podvisor: node stopped");
    assert!(
        stopping < killing
            && killing < hook
            && hook < signal
            && signal < exited
            && exited < stopped,
        "out of order:\n{}",
        lines.join("\n")
    );
    assert!(!alive(pid), "the app survived podvisor");
}

/// A second Ctrl-C lowers every grace to 1 s: an app that ignores SIGTERM with a 60 s grace
/// is killed about 2 s later (grace 1, then the 2 s floor).
#[test]
fn up_second_signal_forces() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("stubborn.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: stubborn}}\nspec:\n  terminationGracePeriodSeconds: 60\n  containers:\n  - name: app\n    image: podvisor/testapp\n    command: [\"{TESTAPP}\", \"serve\", \"--name\", \"stubborn\", \"--port\", \"0\", \"--on-signal\", \"TERM=ignore\"]\n"
        ),
    )
    .unwrap();
    let mut up = Up::start(&["-f", manifest.to_str().unwrap()], dir.path());
    up.wait_line("stubborn started pid=", Duration::from_secs(20));
    up.signal(rustix::process::Signal::INT);
    up.wait_line("signal sig=SIGTERM", Duration::from_secs(10));
    let t = Instant::now();
    up.signal(rustix::process::Signal::INT);
    let (code, lines) = up.finish(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    index_of(&lines, "forcing: every grace period is now 1s");
    index_of(
        &lines,
        "stubborn/app = Terminated: exit code 137 (Error, SIGKILL)",
    );
    let took = t.elapsed();
    assert!(took < Duration::from_secs(5), "forced stop took {took:?}");
}

/// `up` prints a Deployment's rollout as `kubectl rollout status` words it, a line each time
/// the status changes, ending with "successfully rolled out".
#[test]
fn up_shows_a_progress_line_per_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("web.yaml");
    std::fs::write(
        &manifest,
        format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: app
        image: podvisor/testapp
        command: ["{TESTAPP}", "serve", "--port", "0"]
"#
        ),
    )
    .unwrap();
    let mut up = Up::start(&["-f", manifest.to_str().unwrap()], dir.path());
    up.wait_line(
        r#"= deployment "web" successfully rolled out"#,
        Duration::from_secs(30),
    );
    up.signal(rustix::process::Signal::INT);
    let (code, lines) = up.finish(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    let waiting = index_of(&lines, r#"= Waiting for deployment "web" rollout"#);
    let done = index_of(&lines, r#"= deployment "web" successfully rolled out"#);
    assert!(waiting < done, "{}", lines.join("\n"));
    assert!(
        lines[waiting].starts_with("deployment/web ") && lines[done].starts_with("deployment/web "),
        "{}",
        lines.join("\n")
    );
    let rolled: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("successfully rolled out"))
        .collect();
    assert_eq!(rolled.len(), 1, "printed once: {}", lines.join("\n"));
}
