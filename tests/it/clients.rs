//! The same flows with the real `kubectl` and with podvisor's own CLI, against a node (with
//! its API) running in the test: get (table, wide, yaml, name, selector, watch), describe,
//! delete with a grace period, apply, logs (and follow), events, a ConfigMap made by
//! `kubectl create --dry-run=client`, the error paths, and (kubectl only) `kubectl create
//! namespace|configmap|secret`, which send protobuf bodies.
//!
//! Services, Endpoints and EndpointSlices are listed and described (`describe svc` of a
//! Service whose EndpointSlice port has no name, which panics kubectl 1.32 when the server
//! leaves the name unset).
//!
//! Deployments, ReplicaSets and ReplicationControllers are applied, listed (kubectl's
//! columns) and, with kubectl, scaled through the `scale` subresource (no controller yet: the
//! object's `spec.replicas` is what changes).
//!
//! Each flow is one async function taking a [`Tool`]; `both!` makes a test per tool. The
//! kubectl variants print why they are skipped when `kubectl` is not on PATH.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::harness::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    Kubectl,
    Podvisor,
}

/// A node with its API, and how to run one tool against it.
struct Env {
    node: TestNode,
    tool: Tool,
    kubeconfig: PathBuf,
    /// A fresh HOME (kubectl's caches and config) inside the test's temp dir.
    home: PathBuf,
}

/// What a command printed and how it ended.
struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(&self) -> bool {
        self.status.success()
    }
}

fn kubectl_available() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("kubectl").is_file()))
}

impl Env {
    /// Starts a node with the API; None (with the reason printed) when the tool is missing.
    async fn start(tool: Tool) -> Option<Env> {
        if tool == Tool::Kubectl && !kubectl_available() {
            println!("skipped: kubectl is not on PATH");
            return None;
        }
        // No Deployment or ReplicaSet controller: these flows pin what the clients print for
        // the objects as written (the controllers' effects are `tests/it/deployments.rs`).
        let node = TestNode::start_with(NodeOptions {
            api: true,
            workload_controllers: false,
            ..Default::default()
        })
        .await;
        let kubeconfig = node.dir.path().join("data/kubeconfig");
        let home = node.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        Some(Env {
            node,
            tool,
            kubeconfig,
            home,
        })
    }

    /// The command line of `args` for this tool.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = match self.tool {
            Tool::Kubectl => {
                let mut c = tokio::process::Command::new("kubectl");
                c.arg("--kubeconfig")
                    .arg(&self.kubeconfig)
                    .arg("--cache-dir")
                    .arg(self.home.join(".kube/cache"))
                    .args(args);
                c
            }
            Tool::Podvisor => {
                let mut c = tokio::process::Command::new(PODVISOR);
                c.args(args).arg("--kubeconfig").arg(&self.kubeconfig);
                c
            }
        };
        cmd.env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .env_remove("PODVISOR_DATA_DIR")
            .kill_on_drop(true);
        cmd
    }

    async fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            use tokio::io::AsyncWriteExt;
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(text.as_bytes()).await.unwrap();
            drop(pipe);
        }
        let output = tokio::time::timeout(SECS(20), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{:?} {args:?} did not finish in 20 s", self.tool))
            .unwrap();
        Out {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    async fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, None).await
    }

    /// Runs and asserts success; returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.ok(),
            "{:?} {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            self.tool,
            out.status,
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// Starts a long-running command (a watch, a follow) whose stdout collects in a buffer.
    fn spawn(&self, args: &[&str]) -> Follower {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let pid = child.id().unwrap() as i32;
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        let mut stdout = child.stdout.take().unwrap();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            loop {
                match stdout.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => sink
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        });
        Follower {
            child,
            pid,
            text,
            reader,
        }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.node.dir.path().join(name);
        std::fs::write(&path, self.node.expand(text)).unwrap();
        path
    }

    async fn stop(self) {
        self.node.stop().await;
    }
}

/// A running command whose output is read as it comes.
struct Follower {
    child: tokio::process::Child,
    pid: i32,
    text: Arc<Mutex<String>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Follower {
    fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Waits until the output satisfies `pred`, or panics with what it printed.
    async fn wait_for(&self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        while !pred(&self.text()) {
            assert!(
                Instant::now() < deadline,
                "no {what} after {timeout:?}; output:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the command by its pid and waits for it.
    async fn kill(mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid) {
            // Why ignored: it may have ended by itself.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let ended = tokio::time::timeout(SECS(5), self.child.wait()).await;
        if ended.is_err() {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
        self.reader.abort();
        assert!(!alive(self.pid), "the follower {} survived", self.pid);
    }
}

/// A pod running the test app; `args` are added to its command.
fn app_pod(name: &str, labels: &str, grace: i64, args: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{{labels}}}
spec:
  terminationGracePeriodSeconds: {grace}
  containers:
  - name: app
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "{name}", "--record", "$RECORD", "--port", "0"{args}]
"#
    )
}

/// Makes a test per tool from an async flow `fn(Env)`.
macro_rules! both {
    ($flow:ident) => {
        mod $flow {
            use super::*;

            #[tokio::test]
            async fn kubectl() {
                if let Some(env) = Env::start(Tool::Kubectl).await {
                    super::$flow(env).await;
                }
            }

            #[tokio::test]
            async fn podvisor() {
                if let Some(env) = Env::start(Tool::Podvisor).await {
                    super::$flow(env).await;
                }
            }
        }
    };
}

both!(get_pods);
both!(describe_pod);
both!(delete_waits_for_grace);
both!(apply_twice);
both!(logs_and_follow);
both!(events_of_a_pod);
both!(configmap_from_kubectl_create);
both!(error_paths);
both!(services_endpoints_and_slices);
both!(deployments_and_replica_sets);

/// The header and a row of a `get` table.
fn row<'a>(table: &'a str, name: &str) -> Option<&'a str> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
}

/// Flow 1: `get pods` as a table, `-o yaml`, `-o wide`, `-o name`, `-l`, and `-w` seeing a
/// pod go away.
async fn get_pods(env: Env) {
    env.node.apply(&app_pod("web", "app: web", 30, ""));
    env.node.apply(&app_pod("other", "app: other", 30, ""));
    env.node.wait_running("web", SECS(10)).await;
    env.node.wait_running("other", SECS(10)).await;

    let table = env.ok(&["get", "pods"]).await;
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("READY") && header.contains("STATUS"),
        "{table}"
    );
    let web = row(&table, "web").unwrap_or_else(|| panic!("no web row:\n{table}"));
    assert!(web.contains("1/1") && web.contains("Running"), "{table}");

    let yaml = env.ok(&["get", "pod", "web", "-o", "yaml"]).await;
    let pod: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(pod["kind"], "Pod", "{yaml}");
    assert_eq!(pod["metadata"]["name"], "web");
    assert_eq!(pod["status"]["phase"], "Running", "{yaml}");
    let ip = pod["status"]["podIP"].as_str().unwrap().to_owned();

    let wide = env.ok(&["get", "pods", "-o", "wide"]).await;
    assert!(wide.lines().next().unwrap().contains("IP"), "{wide}");
    assert!(wide.lines().next().unwrap().contains("NODE"), "{wide}");
    assert!(row(&wide, "web").unwrap().contains(&ip), "{wide}");

    let names = env.ok(&["get", "pods", "-o", "name"]).await;
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["pod/other", "pod/web"]);

    let selected = env.ok(&["get", "pods", "-l", "app=web"]).await;
    assert!(row(&selected, "web").is_some(), "{selected}");
    assert!(row(&selected, "other").is_none(), "{selected}");

    let watcher = env.spawn(&["get", "pods", "-w"]);
    watcher
        .wait_for(SECS(10), "rows for both pods", |t| {
            row(t, "web").is_some() && row(t, "other").is_some()
        })
        .await;
    env.node.delete("other", Some(1));
    watcher
        .wait_for(SECS(10), "the deletion of other", |t| {
            t.lines()
                .filter(|l| l.split_whitespace().next() == Some("other"))
                .any(|l| !l.contains("Running"))
        })
        .await;
    env.node.wait_gone("other", SECS(10)).await;
    watcher.kill().await;
    env.stop().await;
}

/// Flow 2: `describe pod`.
async fn describe_pod(env: Env) {
    env.node.apply(&app_pod("web", "app: web", 30, ""));
    env.node.wait_running("web", SECS(10)).await;
    env.node.wait_event("web", "Started", "", SECS(10)).await;
    let text = env.ok(&["describe", "pod", "web"]).await;
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} line:\n{text}"))
            .to_owned()
    };
    assert!(line("Name:").ends_with(" web"), "{text}");
    assert!(line("Namespace:").ends_with(" default"), "{text}");
    assert!(line("Status:").ends_with(" Running"), "{text}");
    assert!(line("Labels:").ends_with(" app=web"), "{text}");
    assert!(text.lines().any(|l| l == "Containers:"), "{text}");
    assert!(text.lines().any(|l| l == "  app:"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("    State:") && l.ends_with(" Running")),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "Events:"), "{text}");
    let events = text.split("\nEvents:\n").nth(1).unwrap();
    assert!(
        events
            .lines()
            .any(|l| l.contains("Started") && l.contains("kubelet")),
        "{text}"
    );
    env.stop().await;
}

/// Flow 3: `delete pod --grace-period=3` of a pod that ignores SIGTERM returns only once
/// its process is gone, after the grace period.
async fn delete_waits_for_grace(env: Env) {
    env.node.apply(&app_pod(
        "stubborn",
        "app: stubborn",
        30,
        r#", "--on-signal", "TERM=ignore""#,
    ));
    env.node.wait_running("stubborn", SECS(10)).await;
    let started = env
        .node
        .wait_record(SECS(10), "app started", |r| r.is("stubborn", "started"))
        .await;
    let pid = pid_of(&started);
    let t0 = Instant::now();
    let out = env
        .ok(&["delete", "pod", "stubborn", "--grace-period=3"])
        .await;
    let took = t0.elapsed();
    assert!(!alive(pid), "delete returned while the process {pid} lives");
    assert_eq!(out.trim(), r#"pod "stubborn" deleted"#);
    assert!(
        took >= Duration::from_millis(2900) && took < SECS(15),
        "delete took {took:?}, want about 3 s"
    );
    assert!(env.node.pod("stubborn").is_none());
    env.stop().await;
}

const SETTINGS: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: NAME
data:
  mode: MODE
";

fn settings(name: &str, mode: &str) -> String {
    SETTINGS.replace("NAME", name).replace("MODE", mode)
}

async fn config_value(env: &Env, name: &str, key: &str) -> Value {
    let json = env.ok(&["get", "configmap", name, "-o", "json"]).await;
    let cm: Value = serde_json::from_str(&json).unwrap();
    cm["data"][key].clone()
}

/// Flow 4: apply, then apply a change. kubectl: client-side apply (create, then change), then
/// server-side apply of a further change to the same object; podvisor: apply twice (created,
/// unchanged), then a change (configured).
async fn apply_twice(env: Env) {
    let v1 = env.file("v1.yaml", &settings("settings", "one"));
    let v2 = env.file("v2.yaml", &settings("settings", "two"));
    let v1 = v1.to_str().unwrap();
    let v2 = v2.to_str().unwrap();
    match env.tool {
        Tool::Kubectl => {
            let out = env.ok(&["apply", "-f", v1]).await;
            assert_eq!(out.trim(), "configmap/settings created");
            let out = env.ok(&["apply", "-f", v2]).await;
            assert_eq!(out.trim(), "configmap/settings configured");
            assert_eq!(config_value(&env, "settings", "mode").await, "two");
            // Then server-side apply of the same object: kubectl migrates the client-side
            // apply's ownership (csaupgrade), and the new value and the annotation stay.
            let v3 = env.file("v3.yaml", &settings("settings", "three"));
            let out = env
                .ok(&["apply", "--server-side", "-f", v3.to_str().unwrap()])
                .await;
            assert_eq!(out.trim(), "configmap/settings serverside-applied");
            assert_eq!(config_value(&env, "settings", "mode").await, "three");
            let json = env
                .ok(&["get", "configmap", "settings", "-o", "json"])
                .await;
            let cm: Value = serde_json::from_str(&json).unwrap();
            assert!(
                cm["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                    .is_string(),
                "{cm}"
            );
            // An identical server-side apply writes nothing.
            let rv = cm["metadata"]["resourceVersion"].clone();
            env.ok(&["apply", "--server-side", "-f", v3.to_str().unwrap()])
                .await;
            let json = env
                .ok(&["get", "configmap", "settings", "-o", "json"])
                .await;
            let again: Value = serde_json::from_str(&json).unwrap();
            assert_eq!(again["metadata"]["resourceVersion"], rv);
        }
        Tool::Podvisor => {
            let out = env.ok(&["apply", "-f", v1]).await;
            assert_eq!(out.trim(), "configmap/settings created");
            let out = env.ok(&["apply", "-f", v1]).await;
            assert_eq!(out.trim(), "configmap/settings unchanged");
            let out = env.ok(&["apply", "-f", v2]).await;
            assert_eq!(out.trim(), "configmap/settings configured");
            assert_eq!(config_value(&env, "settings", "mode").await, "two");
            // A pod too, and a dry run that changes nothing.
            let pod = env.file("pod.yaml", &app_pod("applied", "app: applied", 30, ""));
            let pod = pod.to_str().unwrap();
            let out = env.ok(&["apply", "-f", pod]).await;
            assert_eq!(out.trim(), "pod/applied created");
            env.node.wait_running("applied", SECS(10)).await;
            let v3 = env.file("v3.yaml", &settings("settings", "three"));
            let out = env
                .ok(&["apply", "-f", v3.to_str().unwrap(), "--dry-run=server"])
                .await;
            assert_eq!(out.trim(), "configmap/settings configured (server dry run)");
            assert_eq!(config_value(&env, "settings", "mode").await, "two");
        }
    }
    env.stop().await;
}

/// Flow 5: `logs` and `logs -f`, whose output grows while the container writes.
async fn logs_and_follow(env: Env) {
    env.node.apply(&app_pod(
        "talker",
        "app: talker",
        30,
        r#", "--log-lines", "100000", "--log-interval-ms", "100""#,
    ));
    env.node.wait_running("talker", SECS(10)).await;
    env.node
        .wait_record(SECS(10), "app started", |r| r.is("talker", "started"))
        .await;
    let deadline = Instant::now() + SECS(10);
    loop {
        let out = env.run(&["logs", "talker"]).await;
        if out.ok() && out.stdout.lines().any(|l| l == "line 3") {
            assert!(out.stdout.lines().any(|l| l == "line 1"), "{}", out.stdout);
            break;
        }
        assert!(Instant::now() < deadline, "no log lines: {}", out.stderr);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tail = env.ok(&["logs", "talker", "--tail", "1"]).await;
    assert_eq!(tail.lines().count(), 1, "{tail}");

    let follower = env.spawn(&["logs", "-f", "talker"]);
    follower
        .wait_for(SECS(10), "followed lines", |t| {
            t.lines().filter(|l| l.starts_with("line ")).count() >= 3
        })
        .await;
    let seen = follower.text().lines().count();
    follower
        .wait_for(SECS(10), "more lines", |t| t.lines().count() >= seen + 5)
        .await;
    follower.kill().await;
    env.stop().await;
}

/// Flow 6: `get events` (kubectl) / `events` (podvisor) show the pod's Scheduled and Started
/// events.
async fn events_of_a_pod(env: Env) {
    env.node.apply(&app_pod("web", "app: web", 30, ""));
    env.node.wait_running("web", SECS(10)).await;
    env.node.wait_event("web", "Started", "", SECS(10)).await;
    let args: &[&str] = match env.tool {
        Tool::Kubectl => &["get", "events"],
        Tool::Podvisor => &["events"],
    };
    let text = env.ok(args).await;
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{text}"
    );
    let about_web = |reason: &str| {
        text.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.get(2) == Some(&reason)
                && cells
                    .get(3)
                    .is_some_and(|o| o.eq_ignore_ascii_case("pod/web"))
        })
    };
    assert!(about_web("Scheduled"), "{text}");
    assert!(about_web("Started"), "{text}");
    // Oldest first: Scheduled before Started.
    let pos = |reason: &str| text.find(&format!(" {reason} ")).unwrap();
    assert!(pos("Scheduled") < pos("Started"), "{text}");
    env.stop().await;
}

/// The YAML `kubectl create configmap cfg --from-literal=a=b --dry-run=client -o yaml`
/// prints (kubectl 1.32), for when kubectl is not installed.
const CREATED_CONFIGMAP: &str = "apiVersion: v1
data:
  a: b
kind: ConfigMap
metadata:
  creationTimestamp: null
  name: cfg
";

/// Flow 7: the YAML of `kubectl create configmap --dry-run=client -o yaml` piped into
/// `apply -f -`.
async fn configmap_from_kubectl_create(env: Env) {
    let yaml = if kubectl_available() {
        let out = tokio::process::Command::new("kubectl")
            .args([
                "create",
                "configmap",
                "cfg",
                "--from-literal=a=b",
                "--dry-run=client",
                "-o",
                "yaml",
            ])
            .env("HOME", &env.home)
            .env_remove("KUBECONFIG")
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    } else {
        CREATED_CONFIGMAP.to_owned()
    };
    let out = env.run_with(&["apply", "-f", "-"], Some(&yaml)).await;
    assert!(out.ok(), "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout.trim(), "configmap/cfg created");
    assert_eq!(config_value(&env, "cfg", "a").await, "b");
    env.stop().await;
}

/// `kubectl create namespace|configmap|secret generic`, which send protobuf bodies
/// (kubectl-api.md §7.3), then `kubectl get` of what they made. kubectl only: podvisor's CLI
/// has no `create`.
#[tokio::test]
async fn kubectl_create_sends_protobuf() {
    let Some(env) = Env::start(Tool::Kubectl).await else {
        return;
    };
    let get = |args: &'static [&'static str]| {
        let env = &env;
        async move {
            let mut all = vec!["get"];
            all.extend_from_slice(args);
            all.extend(["-o", "json"]);
            serde_json::from_str::<Value>(&env.ok(&all).await).unwrap()
        }
    };

    let out = env.ok(&["create", "namespace", "demo"]).await;
    assert_eq!(out.trim(), "namespace/demo created");
    let ns = get(&["namespace", "demo"]).await;
    assert_eq!(ns["metadata"]["name"], "demo");
    assert_eq!(ns["status"]["phase"], "Active", "{ns}");

    let out = env
        .ok(&[
            "create",
            "configmap",
            "cfg",
            "-n",
            "demo",
            "--from-literal=a=b",
            "--from-literal=greeting=hello world",
        ])
        .await;
    assert_eq!(out.trim(), "configmap/cfg created");
    // A file that is not UTF-8 goes to binaryData, as bytes.
    let blob = env.node.dir.path().join("blob");
    std::fs::write(&blob, [0u8, 1, 0xff, 0xfe]).unwrap();
    let from_file = format!("--from-file=blob={}", blob.display());
    let out = env
        .ok(&["create", "configmap", "bin", "-n", "demo", &from_file])
        .await;
    assert_eq!(out.trim(), "configmap/bin created");

    let out = env
        .ok(&[
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            "demo",
            "--from-literal=user=admin",
            "--from-literal=pass=s3cr3t",
        ])
        .await;
    assert_eq!(out.trim(), "secret/creds created");

    let cm = get(&["configmap", "cfg", "-n", "demo"]).await;
    assert_eq!(
        cm["data"],
        serde_json::json!({"a": "b", "greeting": "hello world"}),
        "{cm}"
    );
    assert_eq!(cm["metadata"]["namespace"], "demo");
    let bin = get(&["configmap", "bin", "-n", "demo"]).await;
    assert_eq!(
        bin["binaryData"],
        serde_json::json!({"blob": "AAH//g=="}),
        "{bin}"
    );
    let secret = get(&["secret", "creds", "-n", "demo", "--show-managed-fields"]).await;
    assert_eq!(secret["type"], "Opaque", "{secret}");
    // base64 of "admin" and "s3cr3t", as the JSON API serves Secret data.
    assert_eq!(
        secret["data"],
        serde_json::json!({"user": "YWRtaW4=", "pass": "czNjcjN0"}),
        "{secret}"
    );
    // The field manager is kubectl-create, as for upstream.
    assert_eq!(
        secret["metadata"]["managedFields"][0]["manager"], "kubectl-create",
        "{secret}"
    );

    // A second create is upstream's AlreadyExists; a namespace that does not exist, NotFound.
    let out = env
        .run(&[
            "create",
            "configmap",
            "cfg",
            "-n",
            "demo",
            "--from-literal=a=c",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        r#"error: failed to create configmap: configmaps "cfg" already exists"#
    );
    let out = env
        .run(&[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "nowhere",
            "--from-literal=a=b",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(r#"namespaces "nowhere" not found"#),
        "{}",
        out.stderr
    );

    // `kubectl create service` (protobuf too): a NodePort Service gets its node port.
    let out = env
        .ok(&[
            "create",
            "service",
            "nodeport",
            "web",
            "--tcp=80:8080",
            "--node-port=30080",
        ])
        .await;
    assert_eq!(out.trim(), "service/web created");
    let svc = get(&["service", "web"]).await;
    assert_eq!(
        svc["spec"]["ports"],
        serde_json::json!([{"name": "80-8080", "port": 80, "protocol": "TCP",
            "targetPort": 8080, "nodePort": 30080}]),
        "{svc}"
    );
    assert_eq!(svc["spec"]["selector"], serde_json::json!({"app": "web"}));
    let out = env
        .run(&[
            "create",
            "service",
            "nodeport",
            "other",
            "--tcp=81",
            "--node-port=30080",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        "error: failed to create NodePort service: Service \"other\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
    );
    env.stop().await;
}

/// Flow 8: a missing pod, and an invalid manifest (nothing of it is created).
async fn error_paths(env: Env) {
    let out = env.run(&["get", "pod", "nope"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        r#"Error from server (NotFound): pods "nope" not found"#
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    let bad = env.file(
        "bad.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: bad
spec:
  containers:
  - name: app
    image: podvisor/testapp
    command: [\"true\"]
    bogus: 1
",
    );
    let out = env.run(&["apply", "-f", bad.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("bad.yaml") && out.stderr.contains("bogus"),
        "the error names the file and the field: {}",
        out.stderr
    );
    let out = env.run(&["get", "pod", "bad"]).await;
    assert_eq!(out.status.code(), Some(1), "the invalid pod was created");

    if env.tool == Tool::Podvisor {
        // Nothing is half-applied: a valid object next to an invalid one is not sent either.
        let good = env.file("good.yaml", &settings("good", "one"));
        let out = env
            .run(&[
                "apply",
                "-f",
                good.to_str().unwrap(),
                "-f",
                bad.to_str().unwrap(),
            ])
            .await;
        assert_eq!(out.status.code(), Some(1));
        assert!(
            out.stderr
                .contains(r#"bad.yaml: Pod "bad": unknown field "spec.containers[0].bogus""#),
            "{}",
            out.stderr
        );
        let out = env.run(&["get", "configmap", "good"]).await;
        assert_eq!(
            out.status.code(),
            Some(1),
            "good was applied: {}",
            out.stdout
        );
    }
    env.stop().await;
}

/// podvisor finds the node through `--data-dir` (and says what to do without one).
#[tokio::test]
async fn podvisor_finds_the_node_by_data_dir() {
    let env = Env::start(Tool::Podvisor).await.unwrap();
    env.node.apply(&app_pod("web", "app: web", 30, ""));
    env.node.wait_running("web", SECS(10)).await;
    let data = env.node.dir.path().join("data");
    let out = with_data_dir(&env, &["get", "pods"], &data).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        row(&stdout, "web").is_some_and(|r| r.contains("Running")),
        "{stdout}"
    );

    let missing = env.node.dir.path().join("nowhere");
    let out = with_data_dir(&env, &["get", "pods"], &missing).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("podvisor up") && stderr.contains("--kubeconfig"),
        "{stderr}"
    );
    env.stop().await;
}

async fn with_data_dir(env: &Env, args: &[&str], data: &Path) -> std::process::Output {
    tokio::process::Command::new(PODVISOR)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("HOME", &env.home)
        .env_remove("KUBECONFIG")
        .env_remove("PODVISOR_DATA_DIR")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

/// Flow: Services from `up -f` and from `apply -f`, then `get svc,endpoints,endpointslices`
/// (kubectl's columns), `get svc -o wide`, and `describe svc` of a Service without selector
/// whose EndpointSlice port has no name, and of one without endpoints.
async fn services_endpoints_and_slices(env: Env) {
    env.node.apply(
        r#"apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: np}
spec:
  type: NodePort
  ports:
  - {port: 81, nodePort: 30081}
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  selector: {app: lb}
  ports:
  - {port: 8081, nodePort: 30082}
"#,
    );
    let file = env.file(
        "ext.yaml",
        r#"apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  ports:
  - {port: 9000}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ext-1
  labels: {kubernetes.io/service-name: ext}
addressType: IPv4
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
ports:
- port: 9000
---
apiVersion: v1
kind: Endpoints
metadata: {name: ext}
subsets:
- addresses: [{ip: 127.0.0.1}]
  ports: [{port: 9000}]
"#,
    );
    env.ok(&["apply", "-f", file.to_str().unwrap()]).await;
    use podvisor::store::Backend;
    let ip = |name: &str| {
        env.node
            .store
            .get(&podvisor::store::resources::SERVICES, "default", name)
            .unwrap()["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let all = env.ok(&["get", "svc,endpoints,endpointslices"]).await;
    let cells = |name: &str| -> Vec<String> {
        row(&all, name)
            .unwrap_or_else(|| panic!("no {name} row:\n{all}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        all.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ],
        "{all}"
    );
    assert_eq!(
        cells("service/web")[..5],
        ["service/web", "ClusterIP", &ip("web"), "<none>", "80/TCP"],
        "{all}"
    );
    assert_eq!(
        cells("service/np")[..5],
        [
            "service/np",
            "NodePort",
            &ip("np"),
            "<none>",
            "81:30081/TCP"
        ],
        "{all}"
    );
    assert_eq!(
        cells("service/lb")[..5],
        [
            "service/lb",
            "LoadBalancer",
            &ip("lb"),
            &test_node_address().to_string(),
            "8081:30082/TCP"
        ],
        "{all}"
    );
    assert_eq!(
        cells("endpoints/ext")[..2],
        ["endpoints/ext", "127.0.0.1:9000"],
        "{all}"
    );
    assert!(
        all.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]),
        "{all}"
    );
    assert_eq!(
        cells("endpointslice.discovery.k8s.io/ext-1")[..4],
        [
            "endpointslice.discovery.k8s.io/ext-1",
            "IPv4",
            "9000",
            "127.0.0.1"
        ],
        "{all}"
    );

    let wide = env.ok(&["get", "svc", "-o", "wide"]).await;
    assert!(wide.lines().next().unwrap().ends_with("SELECTOR"), "{wide}");
    assert!(row(&wide, "web").unwrap().ends_with("app=web"), "{wide}");
    assert!(row(&wide, "ext").unwrap().ends_with("<none>"), "{wide}");

    let ext = ip("ext");
    let text = env.ok(&["describe", "svc", "ext"]).await;
    assert_eq!(
        text,
        format!(
            "Name:                     ext
Namespace:                default
Labels:                   <none>
Annotations:              <none>
Selector:                 <none>
Type:                     ClusterIP
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       {ext}
IPs:                      {ext}
Port:                     <unset>  9000/TCP
TargetPort:               9000/TCP
Endpoints:                127.0.0.1:9000
Session Affinity:         None
Internal Traffic Policy:  Cluster
Events:                   <none>
"
        )
    );
    let text = env.ok(&["describe", "svc", "lb"]).await;
    let lb_lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let ingress = format!("LoadBalancer Ingress:     {} (VIP)", test_node_address());
    for expected in [
        "Selector:                 app=lb",
        "Type:                     LoadBalancer",
        &ingress,
        "Port:                     <unset>  8081/TCP",
        "NodePort:                 <unset>  30082/TCP",
        // No pod matches: the controller's placeholder slice, which kubectl shows as empty.
        "Endpoints:",
        "External Traffic Policy:  Cluster",
    ] {
        assert!(lb_lines.contains(&expected), "no {expected:?} in:\n{text}");
    }
    env.stop().await;
}

/// Flow: `apply` a Deployment, a ReplicaSet and a ReplicationController, `get` them with
/// kubectl's columns, and (kubectl) `scale deployment web --replicas=3`.
async fn deployments_and_replica_sets(env: Env) {
    let file = env.file(
        "workloads.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: web:1}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: cache}
spec:
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}}
    spec:
      containers: [{name: app, image: cache:1}]
---
apiVersion: v1
kind: ReplicationController
metadata: {name: old}
spec:
  replicas: 0
  template:
    metadata: {labels: {app: old}}
    spec:
      containers: [{name: app, image: old:1}]
"#,
    );
    env.ok(&["apply", "-f", file.to_str().unwrap()]).await;
    let header = |table: &str| -> Vec<String> {
        table
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let cells = |table: &str, name: &str| -> Vec<String> {
        row(table, name)
            .unwrap_or_else(|| panic!("no {name} row:\n{table}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let deploy = env.ok(&["get", "deploy"]).await;
    assert_eq!(
        header(&deploy),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(cells(&deploy, "web")[..4], ["web", "0/2", "0", "0"]);
    let wide = env.ok(&["get", "deployments", "-o", "wide"]).await;
    assert_eq!(
        header(&wide),
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(cells(&wide, "web")[5..], ["app", "web:1", "app=web"]);
    let rs = env.ok(&["get", "rs"]).await;
    assert_eq!(header(&rs), ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert_eq!(cells(&rs, "cache")[..4], ["cache", "1", "0", "0"]);
    let rc = env.ok(&["get", "rc", "-o", "wide"]).await;
    assert_eq!(
        header(&rc),
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(cells(&rc, "old")[5..], ["app", "old:1", "app=old"]);
    let both = env.ok(&["get", "deploy,rs"]).await;
    assert!(both.contains("web") && both.contains("cache"), "{both}");

    if env.tool == Tool::Kubectl {
        env.ok(&["scale", "deployment", "web", "--replicas=3"])
            .await;
        use podvisor::store::Backend;
        let d = env
            .node
            .store
            .get(&podvisor::store::resources::DEPLOYMENTS, "default", "web")
            .unwrap();
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(d["metadata"]["generation"], 2);
        let deploy = env.ok(&["get", "deploy", "web"]).await;
        assert_eq!(cells(&deploy, "web")[1], "0/3");
    }
    env.stop().await;
}
