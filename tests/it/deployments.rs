//! Deployments and ReplicaSets on real processes: the ReplicaSet keeps its replica count,
//! a Deployment rolls a template change out through a new ReplicaSet (spec §9, §10.8), and
//! deleting them cascades to their pods.

use std::sync::Arc;
use std::time::{Duration, Instant};

use podvisor::store::Backend;
use podvisor::store::resources;
use serde_json::Value;

use crate::harness::*;

fn deployment(name: &str, replicas: u32, version: &str, strategy: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
{strategy}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: app
        image: podvisor/testapp
        command: ["$TESTAPP", "serve", "--name", "{name}-{version}", "--record", "$RECORD", "--port", "8080"]
        env:
        - name: POD_IP
          valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
        - name: VERSION
          value: "{version}"
        ports:
        - {{name: http, containerPort: 8080}}
        readinessProbe:
          httpGet: {{path: /readyz, port: http}}
          periodSeconds: 1
"#
    )
}

fn objects(node: &TestNode, resource: &'static resources::Resource) -> Vec<Arc<Value>> {
    node.store.list(resource, Some("default")).0
}

/// Pods owned (as controller) by an object of `kind` named `owner`, not terminating.
fn live_pods_of(node: &TestNode, kind: &str, owner: &str) -> Vec<Arc<Value>> {
    objects(node, &resources::PODS)
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            p["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["kind"] == kind && r["name"] == owner)
        })
        .collect()
}

async fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn get(node: &TestNode, resource: &'static resources::Resource, name: &str) -> Option<Arc<Value>> {
    node.store.get(resource, "default", name)
}

/// A Deployment of 2 creates one ReplicaSet and 2 running pods, reports them available; a
/// template change rolls out through a second ReplicaSet until only new pods run; deleting
/// the Deployment removes its ReplicaSets and pods.
#[tokio::test]
async fn rolling_update_replaces_every_pod_and_delete_cascades() {
    let node = TestNode::start().await;
    node.apply(&deployment("web", 2, "v1", ""));
    let d = eventually(SECS(30), "2 available replicas", || {
        get(&node, &resources::DEPLOYMENTS, "web").filter(|d| {
            d["status"]["availableReplicas"] == 2 && d["status"]["updatedReplicas"] == 2
        })
    })
    .await;
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let rss = objects(&node, &resources::REPLICA_SETS);
    assert_eq!(rss.len(), 1);
    let first = rss[0]["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(first.starts_with("web-"), "{first}");
    assert_eq!(live_pods_of(&node, "ReplicaSet", &first).len(), 2);
    let conditions = d["status"]["conditions"].to_string();
    assert!(
        conditions.contains("MinimumReplicasAvailable"),
        "{conditions}"
    );

    // A new template: a second ReplicaSet takes over.
    node.apply(&deployment("web", 2, "v2", ""));
    let d = eventually(SECS(60), "rollout of v2 complete", || {
        get(&node, &resources::DEPLOYMENTS, "web").filter(|d| {
            d["status"]["updatedReplicas"] == 2
                && d["status"]["availableReplicas"] == 2
                && d["status"]["replicas"] == 2
                && d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        })
    })
    .await;
    let conditions = d["status"]["conditions"].to_string();
    assert!(
        conditions.contains("NewReplicaSetAvailable"),
        "{conditions}"
    );
    let old = get(&node, &resources::REPLICA_SETS, &first).unwrap();
    assert_eq!(old["spec"]["replicas"], 0);
    eventually(SECS(30), "old pods gone", || {
        live_pods_of(&node, "ReplicaSet", &first)
            .is_empty()
            .then_some(())
    })
    .await;
    let started: Vec<String> = node
        .records()
        .iter()
        .filter(|r| r.event == "started")
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(
        started.iter().filter(|n| *n == "web-v2").count(),
        2,
        "{started:?}"
    );

    // Delete: ReplicaSets and pods go.
    node.store
        .remove(&resources::DEPLOYMENTS, "default", "web", None)
        .unwrap();
    eventually(SECS(30), "ReplicaSets and pods removed", || {
        (objects(&node, &resources::REPLICA_SETS).is_empty()
            && objects(&node, &resources::PODS).is_empty())
        .then_some(())
    })
    .await;
    node.stop().await;
}

/// A ReplicaSet replaces a pod that is deleted, and scales down newest-first-ranked pods.
#[tokio::test]
async fn replica_set_keeps_its_count() {
    let node = TestNode::start().await;
    node.apply(
        &deployment("web", 0, "v1", "")
            .replace("kind: Deployment", "kind: ReplicaSet")
            .replace("replicas: 0", "replicas: 3"),
    );
    let pods = eventually(SECS(30), "3 pods", || {
        let pods = live_pods_of(&node, "ReplicaSet", "web");
        (pods.len() == 3).then_some(pods)
    })
    .await;
    let victim = pods[0]["metadata"]["name"].as_str().unwrap().to_owned();
    node.delete(&victim, None);
    eventually(SECS(30), "a replacement", || {
        let pods = live_pods_of(&node, "ReplicaSet", "web");
        (pods.len() == 3
            && pods
                .iter()
                .all(|p| p["metadata"]["name"] != victim.as_str()))
        .then_some(())
    })
    .await;
    eventually(SECS(30), "status: 3 ready", || {
        get(&node, &resources::REPLICA_SETS, "web").filter(|rs| rs["status"]["readyReplicas"] == 3)
    })
    .await;
    node.stop().await;
}

fn kubectl_available() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("kubectl").is_file()))
}

/// Runs kubectl against the node (bounded by 60 s); returns stdout, panics on failure.
async fn kubectl(node: &TestNode, args: &[&str]) -> String {
    let home = node.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let output = tokio::time::timeout(
        SECS(60),
        tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(node.dir.path().join("data/kubeconfig"))
            .args(args)
            .env("HOME", &home)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("kubectl finished within 60 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kubectl {args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs the podvisor CLI against the node (bounded by 60 s) without blocking the runtime the
/// in-process node serves on.
async fn podvisor(node: &TestNode, args: &[&str]) -> std::process::Output {
    tokio::time::timeout(
        SECS(60),
        tokio::process::Command::new(PODVISOR)
            .args(args)
            .arg("--kubeconfig")
            .arg(node.dir.path().join("data/kubeconfig"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("podvisor finished within 60 s")
    .unwrap()
}

/// `kubectl rollout status`, `set env` (a new revision), `rollout undo` (back to the first
/// ReplicaSet, revision 3), `rollout restart` and `scale` against the node's controllers.
#[tokio::test]
async fn kubectl_rollout_status_undo_restart_and_scale() {
    if !kubectl_available() {
        println!("skipped: kubectl is not on PATH");
        return;
    }
    let node = TestNode::start_with(NodeOptions {
        api: true,
        ..Default::default()
    })
    .await;
    node.apply(&deployment("web", 2, "v1", ""));
    let out = kubectl(
        &node,
        &["rollout", "status", "deployment/web", "--timeout=50s"],
    )
    .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let first = objects(&node, &resources::REPLICA_SETS)[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();

    kubectl(&node, &["set", "env", "deployment/web", "EXTRA=1"]).await;
    let out = kubectl(
        &node,
        &["rollout", "status", "deployment/web", "--timeout=50s"],
    )
    .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    assert_eq!(objects(&node, &resources::REPLICA_SETS).len(), 2);

    kubectl(&node, &["rollout", "undo", "deployment/web"]).await;
    kubectl(
        &node,
        &["rollout", "status", "deployment/web", "--timeout=50s"],
    )
    .await;
    let rs = get(&node, &resources::REPLICA_SETS, &first).unwrap();
    assert_eq!(rs["spec"]["replicas"], 2, "the first ReplicaSet is back");
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(objects(&node, &resources::REPLICA_SETS).len(), 2);

    kubectl(&node, &["rollout", "restart", "deployment/web"]).await;
    kubectl(
        &node,
        &["rollout", "status", "deployment/web", "--timeout=50s"],
    )
    .await;
    assert_eq!(objects(&node, &resources::REPLICA_SETS).len(), 3);

    kubectl(&node, &["scale", "deployment/web", "--replicas=3"]).await;
    eventually(SECS(30), "3 available", || {
        get(&node, &resources::DEPLOYMENTS, "web").filter(|d| d["status"]["availableReplicas"] == 3)
    })
    .await;
    node.stop().await;
}

/// `podvisor scale deployment/web --replicas 3`, and its `--current-replicas` precondition.
#[tokio::test]
async fn podvisor_scale_sets_replicas() {
    let node = TestNode::start_with(NodeOptions {
        api: true,
        ..Default::default()
    })
    .await;
    node.apply(&deployment("web", 1, "v1", ""));
    let out = podvisor(&node, &["scale", "deployment/web", "--replicas", "3"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "deployment.apps/web scaled\n"
    );
    eventually(SECS(30), "3 available", || {
        get(&node, &resources::DEPLOYMENTS, "web").filter(|d| d["status"]["availableReplicas"] == 3)
    })
    .await;
    let out = podvisor(
        &node,
        &[
            "scale",
            "deploy",
            "web",
            "--replicas",
            "1",
            "--current-replicas",
            "2",
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Expected replicas to be 2, was 3"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = podvisor(&node, &["scale", "pod/x", "--replicas", "1"]).await;
    assert!(!out.status.success());
    node.stop().await;
}

/// `podvisor describe` of a Deployment, its ReplicaSet and a ReplicationController prints
/// what kubectl 1.32's describers print for the same objects on the same node, line for line
/// (events left out: their ages tick).
#[tokio::test]
async fn describe_deployment_and_replica_set_match_kubectl() {
    if !kubectl_available() {
        println!("skipped: kubectl is not on PATH");
        return;
    }
    let node = TestNode::start_with(NodeOptions {
        api: true,
        ..Default::default()
    })
    .await;
    node.apply(&deployment("web", 2, "v1", ""));
    node.apply(
        r#"
apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy
spec:
  replicas: 1
  template:
    metadata:
      labels: {app: legacy}
      annotations: {note: "kept"}
    spec:
      terminationGracePeriodSeconds: 5
      tolerations:
      - {key: k, operator: Exists, effect: NoExecute, tolerationSeconds: 30}
      containers:
      - name: app
        image: podvisor/testapp
        command: ["$TESTAPP", "serve", "--name", "legacy", "--record", "$RECORD", "--port", "8081"]
"#,
    );
    eventually(SECS(30), "web available", || {
        get(&node, &resources::DEPLOYMENTS, "web").filter(|d| {
            d["status"]["availableReplicas"] == 2
                && d["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| c.len() == 2)
        })
    })
    .await;
    eventually(SECS(30), "legacy running", || {
        get(&node, &resources::REPLICATION_CONTROLLERS, "legacy")
            .filter(|rc| rc["status"]["readyReplicas"] == 1)
    })
    .await;
    let rs = objects(&node, &resources::REPLICA_SETS)[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    for args in [
        ["describe", "deployment", "web", "--show-events=false"],
        ["describe", "replicaset", &rs, "--show-events=false"],
        ["describe", "rc", "legacy", "--show-events=false"],
    ] {
        let expected = kubectl(&node, &args).await;
        let out = podvisor(&node, &args).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = String::from_utf8_lossy(&out.stdout);
        for (want, have) in expected.lines().zip(got.lines()) {
            assert_eq!(
                have, want,
                "{args:?}\nkubectl:\n{expected}\npodvisor:\n{got}"
            );
        }
        assert_eq!(
            got.lines().count(),
            expected.lines().count(),
            "{args:?}\nkubectl:\n{expected}\npodvisor:\n{got}"
        );
    }
    node.stop().await;
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `podvisor rollout status|history|undo|pause|resume|restart` against the controllers, with
/// kubectl's words; `history` prints what `kubectl rollout history` prints.
#[tokio::test]
async fn podvisor_rollout_commands() {
    if !kubectl_available() {
        println!("skipped: kubectl is not on PATH");
        return;
    }
    let node = TestNode::start_with(NodeOptions {
        api: true,
        ..Default::default()
    })
    .await;
    let complete = |revision: &'static str| {
        let node = &node;
        move || {
            get(node, &resources::DEPLOYMENTS, "web").filter(|d| {
                d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == revision
                    && d["status"]["observedGeneration"] == d["metadata"]["generation"]
                    && d["status"]["updatedReplicas"] == 2
                    && d["status"]["replicas"] == 2
                    && d["status"]["availableReplicas"] == 2
            })
        }
    };
    node.apply(&deployment("web", 2, "v1", ""));
    let out = podvisor(&node, &["rollout", "status", "deployment/web"]).await;
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        stdout_of(&out).lines().last(),
        Some(r#"deployment "web" successfully rolled out"#)
    );

    kubectl(
        &node,
        &[
            "annotate",
            "deployment",
            "web",
            "kubernetes.io/change-cause=set VERSION=v2",
        ],
    )
    .await;
    kubectl(&node, &["set", "env", "deployment/web", "VERSION=v2"]).await;
    let out = podvisor(
        &node,
        &["rollout", "status", "deployment", "web", "--timeout=60s"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        stdout_of(&out).lines().last(),
        Some(r#"deployment "web" successfully rolled out"#)
    );
    eventually(SECS(30), "revision 2 complete", complete("2")).await;

    let want = kubectl(&node, &["rollout", "history", "deployment/web"]).await;
    let out = podvisor(&node, &["rollout", "history", "deployment/web"]).await;
    assert_eq!(stdout_of(&out), want, "{}", stderr_of(&out));
    for revision in ["1", "2"] {
        let args = [
            "rollout",
            "history",
            "deployment/web",
            "--revision",
            revision,
        ];
        let want = kubectl(&node, &args).await;
        let out = podvisor(&node, &args).await;
        assert_eq!(stdout_of(&out), want, "{}", stderr_of(&out));
    }

    // Undo: to a revision that does not exist, then to the previous one.
    let out = podvisor(
        &node,
        &["rollout", "undo", "deployment/web", "--to-revision", "7"],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("unable to find specified revision 7 in history"),
        "{}",
        stderr_of(&out)
    );
    let first_rs = objects(&node, &resources::REPLICA_SETS)
        .iter()
        .find(|rs| rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1")
        .map(|rs| rs["metadata"]["name"].as_str().unwrap().to_owned())
        .unwrap();
    let out = podvisor(&node, &["rollout", "undo", "deployment/web"]).await;
    assert_eq!(
        stdout_of(&out),
        "deployment.apps/web rolled back\n",
        "{}",
        stderr_of(&out)
    );
    eventually(SECS(30), "revision 3 complete", complete("3")).await;
    let reused = get(&node, &resources::REPLICA_SETS, &first_rs).unwrap();
    assert_eq!(
        reused["spec"]["replicas"], 2,
        "the first ReplicaSet is back"
    );
    assert_eq!(objects(&node, &resources::REPLICA_SETS).len(), 2);
    let out = podvisor(
        &node,
        &["rollout", "undo", "deployment/web", "--to-revision", "3"],
    )
    .await;
    assert_eq!(
        stdout_of(&out),
        "deployment.apps/web skipped rollback (current template already matches revision 3)\n",
        "{}",
        stderr_of(&out)
    );

    // Pause: a template change makes no ReplicaSet until resumed.
    let out = podvisor(&node, &["rollout", "pause", "deployment/web"]).await;
    assert_eq!(
        stdout_of(&out),
        "deployment.apps/web paused\n",
        "{}",
        stderr_of(&out)
    );
    let out = podvisor(&node, &["rollout", "pause", "deployment/web"]).await;
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains(r#"deployments.apps "web" is already paused"#),
        "{}",
        stderr_of(&out)
    );
    let out = podvisor(&node, &["rollout", "restart", "deployment/web"]).await;
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("can't restart paused deployment (run rollout resume first)"),
        "{}",
        stderr_of(&out)
    );
    kubectl(&node, &["set", "env", "deployment/web", "VERSION=v3"]).await;
    eventually(SECS(30), "the paused change observed", || {
        get(&node, &resources::DEPLOYMENTS, "web")
            .filter(|d| d["status"]["observedGeneration"] == d["metadata"]["generation"])
    })
    .await;
    assert_eq!(
        objects(&node, &resources::REPLICA_SETS).len(),
        2,
        "no rollout while paused"
    );
    let out = podvisor(&node, &["rollout", "resume", "deployment/web"]).await;
    assert_eq!(
        stdout_of(&out),
        "deployment.apps/web resumed\n",
        "{}",
        stderr_of(&out)
    );
    eventually(SECS(30), "revision 4 complete", complete("4")).await;
    assert_eq!(objects(&node, &resources::REPLICA_SETS).len(), 3);
    let out = podvisor(&node, &["rollout", "resume", "deployment/web"]).await;
    assert!(
        stderr_of(&out).contains(r#"deployments.apps "web" is not paused"#),
        "{}",
        stderr_of(&out)
    );

    // Restart: a new ReplicaSet with the restartedAt annotation.
    let out = podvisor(&node, &["rollout", "restart", "deployment/web"]).await;
    assert_eq!(
        stdout_of(&out),
        "deployment.apps/web restarted\n",
        "{}",
        stderr_of(&out)
    );
    eventually(SECS(30), "revision 5 complete", complete("5")).await;
    let d = get(&node, &resources::DEPLOYMENTS, "web").unwrap();
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );

    // Only Deployments roll out.
    let out = podvisor(&node, &["rollout", "status", "pod/x"]).await;
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("no rollout support for pods"),
        "{}",
        stderr_of(&out)
    );
    node.stop().await;
}
