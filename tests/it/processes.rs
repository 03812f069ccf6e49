//! The runtime seen through pods: tree kills (cgroup and fallback modes), start errors,
//! OOM kills, the environment, users, working directories and log files.

use std::time::Duration;

use podvisor::runtime::CgroupMode;

use crate::harness::*;

fn tree_pod() -> &'static str {
    r#"
apiVersion: v1
kind: Pod
metadata: {name: tree}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "app", "--record", "$RECORD", "--port", "0", "--grandchild", "--on-signal", "TERM=ignore"]
    lifecycle:
      preStop:
        exec:
          command: ["$TESTAPP", "hook", "prestop", "--name", "app", "--record", "$RECORD", "--sleep", "1000", "--ignore-term"]
"#
}

/// SIGKILL at the deadline reaches every process of the container: the main process, a
/// setsid'd grandchild in its own session, and a still-running preStop hook.
async fn tree_kill(mode: CgroupMode) {
    let node = TestNode::start_with(NodeOptions {
        cgroups: mode,
        ..NodeOptions::default()
    })
    .await;
    node.apply(tree_pod());
    node.wait_running("tree", SECS(10)).await;
    let grandchild = node
        .wait_record(SECS(10), "grandchild", |r| r.is("app", "grandchild"))
        .await;
    let app = node
        .wait_record(SECS(5), "app", |r| r.is("app", "started"))
        .await;
    assert_ne!(grandchild.get("sid"), app.get("sid"), "own session");
    node.delete("tree", None);
    let hook = node
        .wait_record(SECS(5), "hook", |r| r.is("app", "hook"))
        .await;
    node.wait_gone("tree", SECS(10)).await;
    for r in [&grandchild, &app, &hook] {
        let pid: i32 = r.get("pid").unwrap().parse().unwrap();
        assert!(!alive(pid), "{} (pid {pid}) survived", r.line);
    }
    node.stop().await;
}

#[tokio::test]
async fn tree_kill_with_cgroups() {
    tree_kill(CgroupMode::Auto).await;
}

#[tokio::test]
async fn tree_kill_without_cgroups() {
    tree_kill(CgroupMode::Off).await;
}

/// A command that does not exist: `StartError`, exit code 128, the OS error as message,
/// restarts with back-off; the node keeps running other pods.
#[tokio::test]
async fn start_error_backs_off_and_node_survives() {
    let node = TestNode::start_with(NodeOptions {
        max_backoff: SECS(1),
        ..NodeOptions::default()
    })
    .await;
    node.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: broken}
spec:
  containers:
  - name: app
    image: busybox
    command: ["podvisor-no-such-command"]
"#,
    );
    let p = node
        .wait_pod("broken", SECS(15), "restarted twice", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| cs[0].restart_count >= 2)
        })
        .await;
    let cs = container_status(&p, "app");
    let last = cs
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .or_else(|| cs.state.as_ref().and_then(|s| s.terminated.as_ref()))
        .expect("a terminated instance");
    assert_eq!(last.exit_code, 128);
    assert_eq!(last.reason.as_deref(), Some("StartError"));
    assert_eq!(
        last.message.as_deref(),
        Some("exec: \"podvisor-no-such-command\": executable file not found in $PATH")
    );
    assert!(node.has_event("broken", "Failed", "executable file not found"));
    // The node still runs other pods.
    node.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: fine}
spec:
  containers:
  - name: app
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "fine", "--record", "$RECORD", "--port", "0"]
"#,
    );
    node.wait_running("fine", SECS(10)).await;
    node.stop().await;
}

/// A memory limit is enforced and an OOM kill is reported as `OOMKilled` (where the machine
/// has a memory controller; the test says so on its output otherwise).
#[tokio::test]
async fn memory_limit_oom_killed() {
    let node = TestNode::start().await;
    node.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "app", "--record", "$RECORD", "--port", "0", "--alloc-mb", "256"]
    resources:
      limits: {memory: 64Mi}
"#,
    );
    let p = node
        .wait_pod("hog", SECS(20), "finished", |p| {
            matches!(phase_of(p), "Failed" | "Succeeded")
        })
        .await;
    if node.has_event("hog", "NotEnforced", "memory") {
        eprintln!("memory limits are not enforced on this machine; OOM test not applicable");
    } else {
        assert_eq!(terminated(&p, "app"), Some((137, "OOMKilled".to_owned())));
    }
    node.stop().await;
}

fn log_of(node: &TestNode, pod: &str, container: &str, restart: i32) -> String {
    let p = node.pod(pod).unwrap();
    let uid = p.metadata.uid.as_deref().unwrap();
    let path = node
        .dir
        .path()
        .join("data/pods")
        .join(format!("default_{pod}_{uid}"))
        .join(container)
        .join(format!("{restart}.log"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    // Strip the CRI prefix: "<time> <stream> <tag> ".
    text.lines()
        .map(|l| l.splitn(4, ' ').nth(3).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn wait_log(
    node: &TestNode,
    pod: &str,
    container: &str,
    restart: i32,
    needle: &str,
) -> String {
    let deadline = std::time::Instant::now() + SECS(10);
    loop {
        let log = log_of(node, pod, container, restart);
        if log.contains(needle) {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "log never contained {needle:?}: {log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The downward API (`fieldRef`, `resourceFieldRef`), `$(VAR)` expansion in env and args,
/// `workingDir`, and the base variables a container runtime sets.
#[tokio::test]
async fn environment_expansion_and_working_dir() {
    let node = TestNode::start().await;
    node.apply(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: env
  labels: {app: demo}
  annotations: {note: hi}
spec:
  restartPolicy: Never
  serviceAccountName: builder
  containers:
  - name: app
    image: busybox
    workingDir: /tmp
    command: ["sh", "-c"]
    args: ["echo name=$POD_NAME ns=$POD_NS uid=$POD_UID label=$LABEL note=$NOTE node=$NODE sa=$SA ip=$POD_IP host=$HOST_IP mem=$MEM greeting=$(GREETING) composed=$COMPOSED escaped='$$(GREETING)' pwd=$(pwd) hostname=$HOSTNAME"]
    resources:
      limits: {memory: 128Mi}
    env:
    - {name: GREETING, value: hello}
    - {name: COMPOSED, value: "$(GREETING)-world"}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: POD_UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}
    - {name: LABEL, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: NOTE, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['note']"}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: SA, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: HOST_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
"#,
    );
    let p = node.wait_phase("env", "Succeeded", SECS(10)).await;
    let uid = p.metadata.uid.clone().unwrap();
    let ip = p.status.as_ref().unwrap().pod_ip.clone().unwrap();
    assert!(ip.starts_with("127."), "pod IP {ip}");
    let host = node.node_address();
    let log = wait_log(&node, "env", "app", 0, "name=").await;
    assert_eq!(
        log,
        format!(
            "name=env ns=default uid={uid} label=demo note=hi node=test-node sa=builder ip={ip} host={host} mem=128 greeting=hello composed=hello-world escaped=$(GREETING) pwd=/tmp hostname=env"
        )
    );
    node.stop().await;
}

/// `securityContext.runAsUser`/`runAsGroup` when podvisor runs as root.
#[tokio::test]
async fn run_as_user_when_root() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("not root: runAsUser is ignored with a warning, nothing to check here");
        return;
    }
    let node = TestNode::start().await;
    node.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: user}
spec:
  restartPolicy: Never
  securityContext: {runAsUser: 65534}
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "echo uid=$(id -u) gid=$(id -g)"]
    securityContext: {runAsGroup: 65533}
"#,
    );
    node.wait_phase("user", "Succeeded", SECS(10)).await;
    let log = wait_log(&node, "user", "app", 0, "uid=").await;
    assert_eq!(log, "uid=65534 gid=65533");
    node.stop().await;
}

/// One log file per restart (`0.log`, `1.log` …), restartPolicy OnFailure until success.
#[tokio::test]
async fn log_file_per_restart() {
    let node = TestNode::start_with(NodeOptions {
        max_backoff: SECS(1),
        ..NodeOptions::default()
    })
    .await;
    node.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: flaky}
spec:
  restartPolicy: OnFailure
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "n=$(cat $DIR/count 2>/dev/null || echo 0); echo run $n; echo $((n+1)) > $DIR/count; [ $n -ge 2 ]"]
"#,
    );
    let p = node.wait_phase("flaky", "Succeeded", SECS(20)).await;
    let cs = container_status(&p, "app");
    assert_eq!(cs.restart_count, 2);
    for i in 0..3 {
        assert_eq!(
            wait_log(&node, "flaky", "app", i, "run").await,
            format!("run {i}")
        );
    }
    node.stop().await;
}
