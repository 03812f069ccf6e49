//! `podvisor rollout status|history|undo|restart|pause|resume` against the node's controllers,
//! without kubectl (the kubectl-compared test is `deployments::podvisor_rollout_commands`):
//! the status lines seen through a rolling update, `--watch=false` and `--timeout`, history
//! with change causes, undo to the previous and to a given revision and its errors, pause
//! holding a template change back until resume, restart making a new ReplicaSet, and the
//! errors for other kinds and bad flags.

use std::sync::Arc;
use std::time::{Duration, Instant};

use podvisor::store::resources;
use podvisor::store::{Backend, Part};
use serde_json::Value;

use crate::harness::*;

const REVISION: &str = "deployment.kubernetes.io/revision";

fn deployment(name: &str, replicas: u32, version: &str, change_cause: Option<&str>) -> String {
    deployment_with(name, replicas, version, change_cause, "")
}

/// `spec` is extra Deployment spec lines (indented by 2).
fn deployment_with(
    name: &str,
    replicas: u32,
    version: &str,
    change_cause: Option<&str>,
    spec: &str,
) -> String {
    let annotations = change_cause
        .map(|c| format!("\n  annotations: {{kubernetes.io/change-cause: \"{c}\"}}"))
        .unwrap_or_default();
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}{annotations}
spec:
  replicas: {replicas}{spec}
  selector:
    matchLabels: {{app: {name}}}
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

/// The ReplicaSets whose names start with `name-` (the Deployment's).
fn replica_sets_of(node: &TestNode, name: &str) -> Vec<Arc<Value>> {
    let prefix = format!("{name}-");
    node.store
        .list(&resources::REPLICA_SETS, Some("default"))
        .0
        .into_iter()
        .filter(|rs| {
            rs["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect()
}

/// Waits until Deployment `name` is at `revision`, observed, with `replicas` updated and
/// available and no old pod left.
async fn complete(node: &TestNode, name: &str, revision: &str, replicas: i64) -> Arc<Value> {
    eventually(
        SECS(60),
        &format!("{name} revision {revision} complete"),
        || {
            get(node, &resources::DEPLOYMENTS, name).filter(|d| {
                d["metadata"]["annotations"][REVISION] == revision
                    && d["status"]["observedGeneration"] == d["metadata"]["generation"]
                    && d["status"]["updatedReplicas"] == replicas
                    && d["status"]["replicas"] == replicas
                    && d["status"]["availableReplicas"] == replicas
            })
        },
    )
    .await
}

/// The VERSION env of Deployment `name`'s template.
fn version_of(node: &TestNode, name: &str) -> String {
    let d = get(node, &resources::DEPLOYMENTS, name).unwrap();
    d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "VERSION")
        .map(|e| e["value"].as_str().unwrap().to_owned())
        .unwrap()
}

/// Changes the VERSION env of Deployment `name`'s template through the store (keeps
/// `spec.paused`, which re-applying the manifest would reset).
fn set_version(node: &TestNode, name: &str, version: &str) {
    let mut d = (*get(node, &resources::DEPLOYMENTS, name).unwrap()).clone();
    for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
    {
        if e["name"] == "VERSION" {
            e["value"] = version.into();
        }
    }
    node.store
        .update(&resources::DEPLOYMENTS, d, Part::Main)
        .unwrap();
}

/// Runs the podvisor CLI against the node (bounded by 90 s) without blocking the runtime the
/// in-process node serves on.
async fn podvisor(node: &TestNode, args: &[&str]) -> std::process::Output {
    tokio::time::timeout(
        SECS(90),
        tokio::process::Command::new(PODVISOR)
            .args(args)
            .arg("--kubeconfig")
            .arg(node.dir.path().join("data/kubeconfig"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("podvisor finished within 90 s")
    .unwrap()
}

fn kubectl_available() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("kubectl").is_file()))
}

/// Runs kubectl against the node (bounded by 60 s), if it is on PATH.
async fn kubectl(node: &TestNode, args: &[&str]) -> Option<std::process::Output> {
    if !kubectl_available() {
        return None;
    }
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
    Some(output)
}

/// With kubectl on PATH: kubectl fails with the same message (after its `error: `).
async fn same_error_as_kubectl(node: &TestNode, args: &[&str], ours: &std::process::Output) {
    let Some(theirs) = kubectl(node, args).await else {
        return;
    };
    assert!(!theirs.status.success(), "kubectl {args:?} succeeded");
    let theirs = stderr_of(&theirs);
    let message = theirs.trim_end().trim_start_matches("error: ");
    assert!(
        stderr_of(ours).contains(message),
        "kubectl says {theirs:?}, podvisor {:?}",
        stderr_of(ours)
    );
}

/// With kubectl on PATH: kubectl succeeds and prints the same.
async fn same_output_as_kubectl(node: &TestNode, args: &[&str], ours: &std::process::Output) {
    let Some(theirs) = kubectl(node, args).await else {
        return;
    };
    assert!(
        theirs.status.success(),
        "kubectl {args:?}: {}",
        stderr_of(&theirs)
    );
    assert_eq!(stdout_of(ours), stdout_of(&theirs), "kubectl {args:?}");
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the command succeeded and printed exactly `want`.
#[track_caller]
fn assert_prints(out: &std::process::Output, want: &str) {
    assert!(
        out.status.success(),
        "{:?}: {}{}",
        out.status,
        stdout_of(out),
        stderr_of(out)
    );
    assert_eq!(stdout_of(out), want, "{}", stderr_of(out));
}

/// Asserts the command failed with exit code 1 and `want` on stderr.
#[track_caller]
fn assert_fails(out: &std::process::Output, want: &str) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout_of(out),
        stderr_of(out)
    );
    assert!(stderr_of(out).contains(want), "{}", stderr_of(out));
}

async fn api_node() -> TestNode {
    TestNode::start_with(NodeOptions {
        api: true,
        ..Default::default()
    })
    .await
}

/// `rollout status` follows a rolling update of 3 replicas through the watch: several waiting
/// lines in kubectl's words, never the same line twice in a row, then the success line and
/// exit 0; `--watch=false` prints one line and exits 0 even mid-rollout.
#[tokio::test]
async fn status_follows_a_rolling_update() {
    let node = api_node().await;
    // minReadySeconds: each new pod counts as available a second after it is ready, so the
    // rollout lasts a few seconds however fast the pods start.
    let slow = "\n  minReadySeconds: 1";
    node.apply(&deployment_with("web", 3, "v1", None, slow));
    let out = podvisor(&node, &["rollout", "status", "deployment/web"]).await;
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        stdout_of(&out).lines().last(),
        Some(r#"deployment "web" successfully rolled out"#)
    );
    complete(&node, "web", "1", 3).await;
    let out = podvisor(
        &node,
        &["rollout", "status", "deploy", "web", "--watch=false"],
    )
    .await;
    assert_prints(&out, "deployment \"web\" successfully rolled out\n");

    node.apply(&deployment_with("web", 3, "v2", None, slow));
    let (once, follow) = tokio::join!(
        podvisor(
            &node,
            &["rollout", "status", "deployment/web", "--watch=false"]
        ),
        podvisor(
            &node,
            &["rollout", "status", "deployment.apps/web", "--timeout=80s"]
        )
    );
    assert!(once.status.success(), "{}", stderr_of(&once));
    assert_eq!(stdout_of(&once).lines().count(), 1, "{}", stdout_of(&once));
    assert!(
        stdout_of(&once).starts_with("Waiting for deployment"),
        "{}",
        stdout_of(&once)
    );

    assert!(follow.status.success(), "{}", stderr_of(&follow));
    let text = stdout_of(&follow);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "a waiting line, then done: {text}");
    let (last, waiting) = lines.split_last().unwrap();
    assert_eq!(*last, r#"deployment "web" successfully rolled out"#);
    for line in waiting {
        let known = *line == "Waiting for deployment spec update to be observed..."
            || (line.starts_with(r#"Waiting for deployment "web" rollout to finish: "#)
                && (line.ends_with(" new replicas have been updated...")
                    || line.ends_with(" old replicas are pending termination...")
                    || line.ends_with(" updated replicas are available...")));
        assert!(known, "not kubectl's words: {line:?} in {text}");
    }
    for pair in lines.windows(2) {
        assert_ne!(pair[0], pair[1], "a line repeated: {text}");
    }
    assert!(
        lines.iter().any(|l| l.contains("rollout to finish")),
        "the rollout's progress was followed: {text}"
    );
    complete(&node, "web", "2", 3).await;

    // A missing Deployment is an error from the server.
    let out = podvisor(&node, &["rollout", "status", "deployment/nope"]).await;
    assert_fails(&out, r#""nope" not found"#);
    same_error_as_kubectl(&node, &["rollout", "status", "deployment/nope"], &out).await;
    node.stop().await;
}

/// `rollout history` lists the revisions with their change causes, `--revision N` prints one
/// template; `undo` goes back to the previous revision (a new revision number, the old
/// ReplicaSet reused), `--to-revision` to a given one, skips a rollback to the current
/// template, and refuses a missing revision and a Deployment without history.
#[tokio::test]
async fn history_and_undo() {
    let node = api_node().await;
    node.apply(&deployment("web", 2, "v1", Some("deploy v1")));
    complete(&node, "web", "1", 2).await;
    node.apply(&deployment("web", 2, "v2", Some("deploy v2")));
    complete(&node, "web", "2", 2).await;

    let out = podvisor(&node, &["rollout", "history", "deployment/web"]).await;
    assert_prints(
        &out,
        "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         deploy v1\n2         deploy v2\n\n",
    );
    let out = podvisor(
        &node,
        &["rollout", "history", "deployment/web", "--revision=1"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    assert!(
        text.starts_with("deployment.apps/web with revision #1\nPod Template:\n"),
        "{text}"
    );
    assert!(text.contains("VERSION:"), "{text}");
    assert!(text.contains("v1"), "{text}");
    assert!(!text.contains("v2"), "{text}");
    let out = podvisor(
        &node,
        &["rollout", "history", "deployment/web", "--revision", "9"],
    )
    .await;
    assert_fails(&out, "unable to find the specified revision");
    same_error_as_kubectl(
        &node,
        &["rollout", "history", "deployment/web", "--revision", "9"],
        &out,
    )
    .await;

    // Undo: a missing revision, then the previous one (revision 1 again, as revision 3).
    let out = podvisor(
        &node,
        &["rollout", "undo", "deployment/web", "--to-revision=9"],
    )
    .await;
    assert_fails(&out, "unable to find specified revision 9 in history");
    same_error_as_kubectl(
        &node,
        &["rollout", "undo", "deployment/web", "--to-revision=9"],
        &out,
    )
    .await;
    let first = replica_sets_of(&node, "web")
        .into_iter()
        .find(|rs| rs["metadata"]["annotations"][REVISION] == "1")
        .map(|rs| rs["metadata"]["name"].as_str().unwrap().to_owned())
        .unwrap();
    let out = podvisor(&node, &["rollout", "undo", "deployment/web"]).await;
    assert_prints(&out, "deployment.apps/web rolled back\n");
    let d = complete(&node, "web", "3", 2).await;
    assert_eq!(version_of(&node, "web"), "v1");
    assert_eq!(
        d["metadata"]["annotations"]["kubernetes.io/change-cause"], "deploy v1",
        "the revision's change cause comes back with it"
    );
    assert_eq!(replica_sets_of(&node, "web").len(), 2);
    let reused = get(&node, &resources::REPLICA_SETS, &first).unwrap();
    assert_eq!(reused["metadata"]["annotations"][REVISION], "3");
    let out = podvisor(&node, &["rollout", "history", "deployment/web"]).await;
    assert_prints(
        &out,
        "deployment.apps/web \nREVISION  CHANGE-CAUSE\n2         deploy v2\n3         deploy v1\n\n",
    );

    // The current template: skipped; a given revision: rolled back to it.
    let out = podvisor(
        &node,
        &["rollout", "undo", "deployment", "web", "--to-revision", "3"],
    )
    .await;
    assert_prints(
        &out,
        "deployment.apps/web skipped rollback (current template already matches revision 3)\n",
    );
    let out = podvisor(
        &node,
        &["rollout", "undo", "deployment/web", "--to-revision", "2"],
    )
    .await;
    assert_prints(&out, "deployment.apps/web rolled back\n");
    complete(&node, "web", "4", 2).await;
    assert_eq!(version_of(&node, "web"), "v2");

    // One revision only: no history to go back to.
    node.apply(&deployment("solo", 1, "v1", None));
    complete(&node, "solo", "1", 1).await;
    let out = podvisor(&node, &["rollout", "undo", "deployment/solo"]).await;
    assert_fails(&out, r#"no rollout history found for deployment "solo""#);
    same_error_as_kubectl(&node, &["rollout", "undo", "deployment/solo"], &out).await;
    let out = podvisor(&node, &["rollout", "history", "deploy/solo"]).await;
    assert_prints(
        &out,
        "deployment.apps/solo \nREVISION  CHANGE-CAUSE\n1         <none>\n\n",
    );
    same_output_as_kubectl(&node, &["rollout", "history", "deploy/solo"], &out).await;
    node.stop().await;
}

/// `pause` holds a template change back (no new ReplicaSet, status waits and times out,
/// restart refused), `resume` rolls it out; pausing twice or resuming an unpaused
/// Deployment is an error; `restart` makes a new ReplicaSet with the restartedAt annotation;
/// undo is refused while paused.
#[tokio::test]
async fn pause_resume_and_restart() {
    let node = api_node().await;
    node.apply(&deployment("web", 2, "v1", None));
    complete(&node, "web", "1", 2).await;

    let out = podvisor(&node, &["rollout", "pause", "deployment/web"]).await;
    assert_prints(&out, "deployment.apps/web paused\n");
    let out = podvisor(&node, &["rollout", "pause", "deployment/web"]).await;
    assert_fails(&out, r#"deployments.apps "web" is already paused"#);
    same_error_as_kubectl(&node, &["rollout", "pause", "deployment/web"], &out).await;
    let out = podvisor(&node, &["rollout", "restart", "deployment/web"]).await;
    assert_fails(
        &out,
        r#"deployments.apps "web" can't restart paused deployment (run rollout resume first)"#,
    );
    same_error_as_kubectl(&node, &["rollout", "restart", "deployment/web"], &out).await;

    set_version(&node, "web", "v2");
    eventually(SECS(30), "the paused change observed", || {
        get(&node, &resources::DEPLOYMENTS, "web")
            .filter(|d| d["status"]["observedGeneration"] == d["metadata"]["generation"])
    })
    .await;
    let out = podvisor(
        &node,
        &["rollout", "status", "deployment/web", "--watch=false"],
    )
    .await;
    assert_prints(
        &out,
        "Waiting for deployment \"web\" rollout to finish: 0 out of 2 new replicas have been updated...\n",
    );
    same_output_as_kubectl(
        &node,
        &["rollout", "status", "deployment/web", "--watch=false"],
        &out,
    )
    .await;
    let started = Instant::now();
    let out = podvisor(
        &node,
        &["rollout", "status", "deployment/web", "--timeout=2s"],
    )
    .await;
    assert_fails(&out, "timed out waiting for the condition");
    same_error_as_kubectl(
        &node,
        &["rollout", "status", "deployment/web", "--timeout=2s"],
        &out,
    )
    .await;
    assert!(started.elapsed() >= SECS(2), "{:?}", started.elapsed());
    assert_eq!(
        stdout_of(&out),
        "Waiting for deployment \"web\" rollout to finish: 0 out of 2 new replicas have been updated...\n"
    );
    assert_eq!(
        replica_sets_of(&node, "web").len(),
        1,
        "no new ReplicaSet while paused"
    );
    assert_eq!(
        get(&node, &resources::DEPLOYMENTS, "web").unwrap()["metadata"]["annotations"][REVISION],
        "1"
    );

    let out = podvisor(&node, &["rollout", "resume", "deployment/web"]).await;
    assert_prints(&out, "deployment.apps/web resumed\n");
    complete(&node, "web", "2", 2).await;
    assert_eq!(replica_sets_of(&node, "web").len(), 2);
    let out = podvisor(&node, &["rollout", "resume", "deployment/web"]).await;
    assert_fails(&out, r#"deployments.apps "web" is not paused"#);
    same_error_as_kubectl(&node, &["rollout", "resume", "deployment/web"], &out).await;

    let out = podvisor(&node, &["rollout", "restart", "deployment/web"]).await;
    assert_prints(&out, "deployment.apps/web restarted\n");
    let d = complete(&node, "web", "3", 2).await;
    assert_eq!(replica_sets_of(&node, "web").len(), 3);
    let at = d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        at.parse::<jiff::Timestamp>().is_ok(),
        "restartedAt is RFC 3339: {at}"
    );
    let new_rs = replica_sets_of(&node, "web")
        .into_iter()
        .find(|rs| rs["metadata"]["annotations"][REVISION] == "3")
        .unwrap();
    assert_eq!(
        new_rs["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        at.as_str()
    );

    // Undo is refused while paused (once the revision is found, as kubectl).
    let out = podvisor(&node, &["rollout", "pause", "deployment/web"]).await;
    assert_prints(&out, "deployment.apps/web paused\n");
    let out = podvisor(&node, &["rollout", "undo", "deployment/web"]).await;
    assert_fails(
        &out,
        "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again",
    );
    same_error_as_kubectl(&node, &["rollout", "undo", "deployment/web"], &out).await;
    let out = podvisor(
        &node,
        &["rollout", "undo", "deployment/web", "--to-revision=9"],
    )
    .await;
    assert_fails(&out, "unable to find specified revision 9 in history");
    node.stop().await;
}

/// Only Deployments roll out; a missing name, a bad flag value and an unknown subcommand
/// are errors that name what is wrong.
#[tokio::test]
async fn other_kinds_and_bad_arguments_are_refused() {
    let node = api_node().await;
    for verb in ["status", "history", "undo", "restart", "pause", "resume"] {
        let out = podvisor(&node, &["rollout", verb, "pod/x"]).await;
        assert_fails(&out, "no rollout support for pods");
        assert!(
            stderr_of(&out).contains("deployment"),
            "{}",
            stderr_of(&out)
        );
    }
    let out = podvisor(&node, &["rollout", "status", "deployment"]).await;
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("TYPE/NAME"), "{}", stderr_of(&out));
    let out = podvisor(&node, &["rollout", "status", "widgets/x"]).await;
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("widgets"), "{}", stderr_of(&out));
    let out = podvisor(
        &node,
        &["rollout", "undo", "deployment/web", "--to-revision=two"],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("--to-revision"),
        "{}",
        stderr_of(&out)
    );
    let out = podvisor(
        &node,
        &["rollout", "status", "deployment/web", "--timeout=soon"],
    )
    .await;
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("--timeout"), "{}", stderr_of(&out));
    let out = podvisor(&node, &["rollout", "frobnicate", "deployment/web"]).await;
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("frobnicate"),
        "{}",
        stderr_of(&out)
    );
    node.stop().await;
}

/// A rollout whose pods never become ready: `rollout status` follows it until the progress
/// deadline passes, then fails with kubectl's words and exit 1.
#[tokio::test]
async fn status_fails_once_the_progress_deadline_is_exceeded() {
    let node = api_node().await;
    node.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: stuck
spec:
  replicas: 1
  progressDeadlineSeconds: 2
  selector:
    matchLabels: {app: stuck}
  template:
    metadata:
      labels: {app: stuck}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: podvisor/testapp
        command: ["$TESTAPP", "serve", "--name", "stuck", "--record", "$RECORD", "--port", "8080"]
        readinessProbe:
          exec: {command: ["false"]}
          periodSeconds: 1
"#,
    );
    let out = podvisor(&node, &["rollout", "status", "deployment/stuck"]).await;
    assert_fails(&out, r#"deployment "stuck" exceeded its progress deadline"#);
    let text = stdout_of(&out);
    assert!(
        text.lines()
            .all(|l| l.starts_with("Waiting for deployment")),
        "{text}"
    );
    same_error_as_kubectl(&node, &["rollout", "status", "deployment/stuck"], &out).await;
    node.stop().await;
}
