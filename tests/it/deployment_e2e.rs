//! The upstream Deployment e2e scenarios (`test/e2e/apps/deployment.go`, spec §10.8 DEP-01..08)
//! on real processes: adoption and revisions, Recreate never overlapping, history cleanup,
//! rollover, proportional scaling, iterative rollouts, the API lifecycle through kubectl,
//! cascading deletes; and the bad input of issue 6 (invalid strategies and selectors, a
//! rollout stuck at its progress deadline keeping the old pods serving).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use podvisor::store::Backend;
use podvisor::store::resources;
use serde_json::Value;

use crate::harness::*;

/// A pod template of the test app named `{app}-{version}`, listening on its pod IP; `ready:
/// false` gives a readiness probe on a port nothing listens on (a pod that never becomes
/// ready).
fn template(labels: &str, app: &str, version: &str, ready: bool, grace: u32) -> String {
    let probe_port = if ready { "http" } else { "9" };
    format!(
        r#"  template:
    metadata:
      labels: {{{labels}}}
    spec:
      terminationGracePeriodSeconds: {grace}
      containers:
      - name: app
        image: podvisor/testapp
        command: ["$TESTAPP", "serve", "--name", "{app}-{version}", "--record", "$RECORD", "--port", "8080"]
        env:
        - name: POD_IP
          valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
        - name: VERSION
          value: "{version}"
        ports:
        - {{name: http, containerPort: 8080}}
        readinessProbe:
          httpGet: {{path: /readyz, port: {probe_port}}}
          periodSeconds: 1
"#
    )
}

/// A ReplicaSet with `labels` on itself, its selector and its template.
fn replica_set(
    name: &str,
    replicas: u32,
    labels: &str,
    annotations: &str,
    version: &str,
) -> String {
    format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\n  annotations: {{{annotations}}}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{{labels}}}\n{}",
        template(labels, name, version, true, 5)
    )
}

/// A Deployment selecting `labels` (its template carries them); `spec` adds spec fields
/// (indented two spaces).
fn deployment(name: &str, replicas: u32, labels: &str, spec: &str, template: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{{labels}}}\n{spec}{template}"
    )
}

fn objects(node: &TestNode, resource: &'static resources::Resource) -> Vec<Arc<Value>> {
    node.store.list(resource, Some("default")).0
}

fn get(node: &TestNode, resource: &'static resources::Resource, name: &str) -> Option<Arc<Value>> {
    node.store.get(resource, "default", name)
}

fn name(v: &Value) -> String {
    v["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn revision(v: &Value) -> String {
    v["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Whether `pod` is controlled by the ReplicaSet named `rs`.
fn controlled_by(pod: &Value, rs: &str) -> bool {
    pod["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["controller"] == true && r["name"] == rs)
}

/// The ReplicaSets controlled by the Deployment `d`.
fn replica_sets_of(node: &TestNode, d: &str) -> Vec<Arc<Value>> {
    objects(node, &resources::REPLICA_SETS)
        .into_iter()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["controller"] == true && r["kind"] == "Deployment" && r["name"] == d)
        })
        .collect()
}

/// The Deployment once its rollout is complete: every replica updated and available, no old
/// one left, the status observed, Progressing because the new ReplicaSet is available.
fn complete(node: &TestNode, d: &str) -> Option<Arc<Value>> {
    get(node, &resources::DEPLOYMENTS, d).filter(|d| {
        let s = &d["status"];
        let want = int(&d["spec"]["replicas"]);
        int(&s["observedGeneration"]) >= int(&d["metadata"]["generation"])
            && int(&s["updatedReplicas"]) == want
            && int(&s["replicas"]) == want
            && int(&s["availableReplicas"]) == want
            && s["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Progressing" && c["reason"] == "NewReplicaSetAvailable")
    })
}

async fn eventually<T>(
    node: &TestNode,
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}\n{}",
            dump(node)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The workloads and pods of the node, for a failure message.
fn dump(node: &TestNode) -> String {
    let mut out = String::new();
    for d in objects(node, &resources::DEPLOYMENTS) {
        out.push_str(&format!(
            "deployment {} generation {} revision {:?} spec.replicas {} status {}\n",
            name(&d),
            d["metadata"]["generation"],
            revision(&d),
            d["spec"]["replicas"],
            d["status"]
        ));
    }
    for rs in objects(node, &resources::REPLICA_SETS) {
        out.push_str(&format!(
            "replicaset {} revision {:?} spec.replicas {} status {}\n",
            name(&rs),
            revision(&rs),
            rs["spec"]["replicas"],
            rs["status"]
        ));
    }
    for p in objects(node, &resources::PODS) {
        let ready = p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        out.push_str(&format!(
            "pod {} phase {} ready {ready} deleting {}\n",
            name(&p),
            p["status"]["phase"],
            !p["metadata"]["deletionTimestamp"].is_null()
        ));
    }
    out
}

fn kubectl_available() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("kubectl").is_file()))
}

/// Runs kubectl against the node with `stdin` (bounded by 60 s), without blocking the runtime
/// the node serves on.
async fn kubectl(node: &TestNode, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let home = node.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut child = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(node.dir.path().join("data/kubeconfig"))
        .args(args)
        .env("HOME", &home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).await.unwrap();
    }
    drop(pipe);
    tokio::time::timeout(SECS(60), child.wait_with_output())
        .await
        .expect("kubectl finished within 60 s")
        .unwrap()
}

async fn kubectl_ok(node: &TestNode, args: &[&str], stdin: Option<&str>) -> String {
    let out = kubectl(node, args, stdin).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn api_node() -> NodeOptions {
    NodeOptions {
        api: true,
        ..Default::default()
    }
}

/// DEP-01: a Deployment adopts a ReplicaSet that matches its selector, takes the revision
/// after the adopted one's, rolls out, and keeps exactly the adopted ReplicaSet as old,
/// scaled to 0.
#[tokio::test]
async fn dep_01_rolling_update_adopts_and_replaces() {
    let node = TestNode::start().await;
    let labels = "name: sample-pod, pod: httpd";
    node.apply(&replica_set(
        "test-rolling-update-controller",
        1,
        labels,
        r#"deployment.kubernetes.io/revision: "3546343826724305832""#,
        "httpd",
    ));
    eventually(&node, SECS(30), "the ReplicaSet's pod is ready", || {
        get(
            &node,
            &resources::REPLICA_SETS,
            "test-rolling-update-controller",
        )
        .filter(|rs| rs["status"]["readyReplicas"] == 1)
    })
    .await;
    node.apply(&deployment(
        "test-rolling-update-deployment",
        1,
        "name: sample-pod",
        "",
        &template(
            "name: sample-pod",
            "test-rolling-update-deployment",
            "agnhost",
            true,
            5,
        ),
    ));
    let d = eventually(&node, SECS(60), "the rollout completes", || {
        complete(&node, "test-rolling-update-deployment")
    })
    .await;
    assert_eq!(revision(&d), "3546343826724305833");
    let rss = replica_sets_of(&node, "test-rolling-update-deployment");
    assert_eq!(rss.len(), 2, "the adopted and the new ReplicaSet: {rss:?}");
    let old: Vec<&Arc<Value>> = rss
        .iter()
        .filter(|rs| name(rs) == "test-rolling-update-controller")
        .collect();
    assert_eq!(old.len(), 1, "exactly one old ReplicaSet");
    assert_eq!(old[0]["spec"]["replicas"], 0);
    node.stop().await;
}

/// DEP-02: Recreate never runs old and new pods at the same time: whenever some replicas are
/// updated but not all, no old pod is running; and the new app starts only after every old
/// process exited (from the test app's own records).
#[tokio::test]
async fn dep_02_recreate_never_overlaps_old_and_new() {
    let node = TestNode::start().await;
    let spec = "  strategy: {type: Recreate}\n";
    node.apply(&deployment(
        "test-recreate-deployment",
        2,
        "name: sample-pod-3",
        spec,
        &template("name: sample-pod-3", "recreate", "v1", true, 5),
    ));
    eventually(&node, SECS(60), "v1 complete", || {
        complete(&node, "test-recreate-deployment")
    })
    .await;
    let old_rs = name(&replica_sets_of(&node, "test-recreate-deployment")[0]);
    node.apply(&deployment(
        "test-recreate-deployment",
        2,
        "name: sample-pod-3",
        spec,
        &template("name: sample-pod-3", "recreate", "v2", true, 5),
    ));
    let deadline = Instant::now() + SECS(60);
    loop {
        let d = get(&node, &resources::DEPLOYMENTS, "test-recreate-deployment").unwrap();
        let s = &d["status"];
        let pods = objects(&node, &resources::PODS);
        let old_running = pods
            .iter()
            .filter(|p| controlled_by(p, &old_rs) && p["status"]["phase"] == "Running")
            .count();
        let new_exist = pods.iter().filter(|p| !controlled_by(p, &old_rs)).count();
        if int(&s["updatedReplicas"]) > 0 && int(&s["replicas"]) != int(&s["updatedReplicas"]) {
            assert_eq!(old_running, 0, "old pods run during a Recreate: {s}");
        }
        assert!(
            old_running == 0 || new_exist == 0,
            "{old_running} old pods running while {new_exist} new pods exist"
        );
        if complete(&node, "test-recreate-deployment").is_some() && revision(&d) == "2" {
            break;
        }
        assert!(Instant::now() < deadline, "v2 did not complete: {s}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let records = node.records();
    let last_old_exit = records
        .iter()
        .filter(|r| r.name == "recreate-v1" && r.event == "exiting")
        .map(|r| r.time_ns)
        .max()
        .expect("the old apps exited");
    let first_new_start = records
        .iter()
        .filter(|r| r.name == "recreate-v2" && r.event == "started")
        .map(|r| r.time_ns)
        .min()
        .expect("the new apps started");
    assert!(
        last_old_exit < first_new_start,
        "a new app started before the last old one exited"
    );
    node.stop().await;
}

/// DEP-03: with `revisionHistoryLimit: 0`, the adopted ReplicaSet is scaled down and deleted;
/// exactly one pod is created for the new template.
#[tokio::test]
async fn dep_03_old_replica_sets_are_deleted() {
    let node = TestNode::start().await;
    node.apply(&replica_set(
        "test-cleanup-controller",
        1,
        "name: cleanup-pod, pod: httpd",
        "",
        "httpd",
    ));
    eventually(&node, SECS(30), "the ReplicaSet's pod is ready", || {
        get(&node, &resources::REPLICA_SETS, "test-cleanup-controller")
            .filter(|rs| rs["status"]["readyReplicas"] == 1)
    })
    .await;
    node.apply(&deployment(
        "test-cleanup-deployment",
        1,
        "name: cleanup-pod",
        "  revisionHistoryLimit: 0\n",
        &template(
            "name: cleanup-pod",
            "test-cleanup-deployment",
            "agnhost",
            true,
            5,
        ),
    ));
    eventually(
        &node,
        SECS(60),
        "complete, the old ReplicaSet deleted",
        || {
            complete(&node, "test-cleanup-deployment").filter(|_| {
                get(&node, &resources::REPLICA_SETS, "test-cleanup-controller").is_none()
                    && objects(&node, &resources::REPLICA_SETS).len() == 1
            })
        },
    )
    .await;
    let created: BTreeSet<String> = objects(&node, &resources::PODS)
        .iter()
        .map(|p| name(p))
        .collect();
    let started = node
        .records()
        .iter()
        .filter(|r| r.name == "test-cleanup-deployment-agnhost" && r.event == "started")
        .count();
    assert_eq!(started, 1, "exactly one new pod: {created:?}");
    node.stop().await;
}

/// DEP-04: a rollout stuck on a template that never becomes ready (maxUnavailable 0, maxSurge
/// 1: old 1 and new 1) rolls over to a good template: revision 2, complete, both earlier
/// ReplicaSets at 0.
#[tokio::test]
async fn dep_04_rollover() {
    let node = TestNode::start().await;
    node.apply(&replica_set(
        "test-rollover-controller",
        1,
        "name: rollover-pod, pod: httpd",
        "",
        "httpd",
    ));
    eventually(&node, SECS(30), "the ReplicaSet's pod is ready", || {
        get(&node, &resources::REPLICA_SETS, "test-rollover-controller")
            .filter(|rs| rs["status"]["readyReplicas"] == 1)
    })
    .await;
    // minReadySeconds 3 instead of upstream's 10: the same rule (a ready pod counts as
    // available only after it), a shorter test.
    let spec =
        "  minReadySeconds: 3\n  strategy:\n    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}\n";
    node.apply(&deployment(
        "test-rollover-deployment",
        1,
        "name: rollover-pod",
        spec,
        &template("name: rollover-pod", "rollover", "bad", false, 5),
    ));
    let stuck = eventually(&node, SECS(30), "old 1 and new 1", || {
        let rss = replica_sets_of(&node, "test-rollover-deployment");
        let old = rss
            .iter()
            .find(|rs| name(rs) == "test-rollover-controller")?;
        let new = rss
            .iter()
            .find(|rs| name(rs) != "test-rollover-controller")?;
        (old["spec"]["replicas"] == 1 && new["spec"]["replicas"] == 1).then(|| name(new))
    })
    .await;
    // Stuck: the old pod keeps serving, the new one is not available.
    let d = get(&node, &resources::DEPLOYMENTS, "test-rollover-deployment").unwrap();
    assert_eq!(d["status"]["availableReplicas"], 1, "{}", d["status"]);
    assert_eq!(d["status"]["updatedReplicas"], 1, "{}", d["status"]);

    node.apply(&deployment(
        "test-rollover-deployment",
        1,
        "name: rollover-pod",
        spec,
        &template("name: rollover-pod", "rollover", "good", true, 5),
    ));
    let d = eventually(&node, SECS(60), "the rollover completes", || {
        complete(&node, "test-rollover-deployment")
    })
    .await;
    assert_eq!(revision(&d), "2");
    for old in ["test-rollover-controller", stuck.as_str()] {
        eventually(&node, SECS(30), "an earlier ReplicaSet at 0", || {
            get(&node, &resources::REPLICA_SETS, old)
                .filter(|rs| rs["spec"]["replicas"] == 0 && int(&rs["status"]["replicas"]) == 0)
        })
        .await;
    }
    node.stop().await;
}

/// DEP-05: proportional scaling. 10 replicas (maxSurge 3, maxUnavailable 2) stuck on a
/// template that never becomes ready: the first ReplicaSet at 8 (8 available), the second at
/// 5; scaled to 30 the extra 20 are shared in proportion: 20 and 13.
#[tokio::test]
async fn dep_05_proportional_scaling() {
    let node = TestNode::start().await;
    let spec = "  strategy:\n    rollingUpdate: {maxSurge: 3, maxUnavailable: 2}\n";
    let labels = "name: webserver";
    node.apply(&deployment(
        "webserver-deployment",
        10,
        labels,
        spec,
        &template(labels, "webserver", "v1", true, 1),
    ));
    eventually(&node, SECS(60), "10 available", || {
        complete(&node, "webserver-deployment")
    })
    .await;
    let first = name(&replica_sets_of(&node, "webserver-deployment")[0]);
    node.apply(&deployment(
        "webserver-deployment",
        10,
        labels,
        spec,
        &template(labels, "webserver", "bad", false, 1),
    ));
    let second = eventually(&node, SECS(60), "first 8 (8 available), second 5", || {
        let rss = replica_sets_of(&node, "webserver-deployment");
        let a = rss.iter().find(|rs| name(rs) == first)?;
        let b = rss.iter().find(|rs| name(rs) != first)?;
        (a["spec"]["replicas"] == 8
            && a["status"]["availableReplicas"] == 8
            && b["spec"]["replicas"] == 5
            && int(&b["status"]["availableReplicas"]) == 0)
            .then(|| name(b))
    })
    .await;

    // Scale to 30, the template unchanged.
    node.apply(&deployment(
        "webserver-deployment",
        30,
        labels,
        spec,
        &template(labels, "webserver", "bad", false, 1),
    ));
    eventually(&node, SECS(60), "first 20, second 13", || {
        let a = get(&node, &resources::REPLICA_SETS, &first)?;
        let b = get(&node, &resources::REPLICA_SETS, &second)?;
        (a["spec"]["replicas"] == 20 && b["spec"]["replicas"] == 13).then_some(())
    })
    .await;
    node.stop().await;
}

/// DEP-06: iterative rollouts. 6 replicas, progressDeadlineSeconds 30, revisionHistoryLimit 2,
/// grace 0: a fixed sequence of template updates, scales, pauses and resumes, each applied once
/// the previous one was observed; the Deployment eventually completes, with at most the new
/// ReplicaSet and 2 old ones kept.
#[tokio::test]
async fn dep_06_iterative_rollouts_eventually_progress() {
    let node = TestNode::start().await;
    let labels = "name: webserver";
    let name_ = "webserver";
    let apply = |replicas: u32, version: u32, paused: bool| {
        let spec = format!(
            "  progressDeadlineSeconds: 30\n  revisionHistoryLimit: 2\n  paused: {paused}\n"
        );
        node.apply(&deployment(
            name_,
            replicas,
            labels,
            &spec,
            &template(labels, "iter", &format!("v{version}"), true, 0),
        ));
    };
    apply(6, 0, false);
    eventually(&node, SECS(60), "v0 complete", || complete(&node, name_)).await;
    // (replicas, template version, paused): updates, scales up and down, a pause with an
    // update under it, then a resume.
    let steps: [(u32, u32, bool); 12] = [
        (6, 1, false),
        (8, 1, false),
        (8, 2, false),
        (4, 2, false),
        (4, 3, true),
        (7, 4, true),
        (7, 4, false),
        (7, 5, false),
        (5, 6, false),
        (5, 6, true),
        (6, 7, true),
        (6, 7, false),
    ];
    for (i, (replicas, version, paused)) in steps.into_iter().enumerate() {
        apply(replicas, version, paused);
        eventually(&node, SECS(30), &format!("step {i} observed"), || {
            get(&node, &resources::DEPLOYMENTS, name_).filter(|d| {
                int(&d["status"]["observedGeneration"]) >= int(&d["metadata"]["generation"])
            })
        })
        .await;
    }
    let d = eventually(&node, SECS(90), "the last template rolled out", || {
        complete(&node, name_).filter(|d| d["spec"]["replicas"] == 6)
    })
    .await;
    assert_eq!(d["status"]["readyReplicas"], 6, "{}", d["status"]);
    eventually(&node, SECS(30), "at most 3 ReplicaSets kept", || {
        (replica_sets_of(&node, name_).len() <= 3).then_some(())
    })
    .await;
    let rss = replica_sets_of(&node, name_);
    let live: Vec<&Arc<Value>> = rss
        .iter()
        .filter(|rs| int(&rs["spec"]["replicas"]) > 0)
        .collect();
    assert_eq!(
        live.len(),
        1,
        "only the new ReplicaSet has replicas: {rss:?}"
    );
    let pods = objects(&node, &resources::PODS);
    assert!(
        pods.iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .all(|p| controlled_by(p, &name(live[0]))),
        "only new pods are left"
    );
    node.stop().await;
}

/// DEP-07: the lifecycle of a Deployment through kubectl: create, patch, replace, a status
/// patch, list by label, delete by label.
#[tokio::test]
async fn dep_07_lifecycle_through_the_api() {
    if !kubectl_available() {
        println!("skipped: kubectl is not on PATH");
        return;
    }
    let node = TestNode::start_with(api_node()).await;
    let manifest = node.expand(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: test-deployment\n  labels: {{test-deployment-static: \"true\"}}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{test-deployment-static: \"true\"}}\n{}",
        template("test-deployment-static: \"true\"", "lifecycle", "v1", true, 1)
    ));
    kubectl_ok(&node, &["create", "-f", "-"], Some(&manifest)).await;
    eventually(&node, SECS(60), "created and available", || {
        complete(&node, "test-deployment")
    })
    .await;

    // Patch: a label and the template (a new ReplicaSet).
    kubectl_ok(
        &node,
        &[
            "patch",
            "deployment",
            "test-deployment",
            "--type=strategic",
            "-p",
            r#"{"metadata":{"labels":{"test-deployment":"patched"}},"spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"app","env":[{"name":"VERSION","value":"patched"}]}]}}}}"#,
        ],
        None,
    )
    .await;
    let d = eventually(&node, SECS(60), "the patch rolled out", || {
        complete(&node, "test-deployment").filter(|d| revision(d) == "2")
    })
    .await;
    assert_eq!(d["metadata"]["labels"]["test-deployment"], "patched");
    assert_eq!(d["spec"]["replicas"], 2);

    // Update (replace) the whole object.
    let mut replaced = (*d).clone();
    replaced["metadata"]["labels"]["test-deployment"] = "updated".into();
    replaced["spec"]["replicas"] = 1.into();
    let out = kubectl_ok(
        &node,
        &["replace", "-f", "-", "-o", "json"],
        Some(&replaced.to_string()),
    )
    .await;
    let reply: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reply["metadata"]["labels"]["test-deployment"], "updated");

    // A status patch goes to the status subresource only.
    let out = kubectl_ok(
        &node,
        &[
            "patch",
            "deployment",
            "test-deployment",
            "--subresource=status",
            "--type=merge",
            "-o",
            "json",
            "-p",
            r#"{"metadata":{"labels":{"ignored":"yes"}},"status":{"conditions":[{"type":"StatusPatched","status":"True","reason":"E2E"}]}}"#,
        ],
        None,
    )
    .await;
    let reply: Value = serde_json::from_str(&out).unwrap();
    assert!(
        reply["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "StatusPatched"),
        "{}",
        reply["status"]
    );
    assert!(reply["metadata"]["labels"]["ignored"].is_null());

    // List by label, then delete by label: the ReplicaSets and pods follow.
    let listed = kubectl_ok(
        &node,
        &[
            "get",
            "deployments",
            "-l",
            "test-deployment-static=true",
            "-o",
            "name",
        ],
        None,
    )
    .await;
    assert_eq!(listed.trim(), "deployment.apps/test-deployment");
    kubectl_ok(
        &node,
        &[
            "delete",
            "deployments",
            "-l",
            "test-deployment-static=true",
            "--wait=false",
        ],
        None,
    )
    .await;
    eventually(
        &node,
        SECS(60),
        "deployment, ReplicaSets and pods gone",
        || {
            (objects(&node, &resources::DEPLOYMENTS).is_empty()
                && objects(&node, &resources::REPLICA_SETS).is_empty()
                && objects(&node, &resources::PODS).is_empty())
            .then_some(())
        },
    )
    .await;
    node.stop().await;
}

/// DEP-08: deleting a Deployment (`kubectl delete`, background propagation) reaps its
/// ReplicaSets and their pods, and their processes.
#[tokio::test]
async fn dep_08_delete_cascades_to_replica_sets_and_pods() {
    if !kubectl_available() {
        println!("skipped: kubectl is not on PATH");
        return;
    }
    let node = TestNode::start_with(api_node()).await;
    let labels = "name: cleanup-pod";
    node.apply(&deployment(
        "test-reap",
        3,
        labels,
        "",
        &template(labels, "reap", "v1", true, 1),
    ));
    eventually(&node, SECS(60), "3 available", || {
        complete(&node, "test-reap")
    })
    .await;
    let pids: Vec<i32> = node
        .records()
        .iter()
        .filter(|r| r.name == "reap-v1" && r.event == "started")
        .map(pid_of)
        .collect();
    assert_eq!(pids.len(), 3);
    kubectl_ok(&node, &["delete", "deployment", "test-reap"], None).await;
    eventually(&node, SECS(60), "ReplicaSets and pods gone", || {
        (objects(&node, &resources::REPLICA_SETS).is_empty()
            && objects(&node, &resources::PODS).is_empty())
        .then_some(())
    })
    .await;
    eventually(&node, SECS(30), "every app process gone", || {
        pids.iter().all(|pid| !alive(*pid)).then_some(())
    })
    .await;
    node.stop().await;
}

/// Issue 6's bad input, through `kubectl apply`: invalid strategies, a selector that does not
/// match the template, a changed selector; each refused with upstream's message (422) and
/// nothing written.
#[tokio::test]
async fn invalid_deployments_are_refused_with_upstreams_messages() {
    if !kubectl_available() {
        println!("skipped: kubectl is not on PATH");
        return;
    }
    let node = TestNode::start_with(api_node()).await;
    let labels = "app: web";
    let good = template(labels, "web", "v1", true, 1);
    let cases: [(&str, String, &[&str]); 5] = [
        (
            "both 0",
            deployment(
                "bad",
                1,
                labels,
                "  strategy:\n    rollingUpdate: {maxSurge: 0, maxUnavailable: 0}\n",
                &good,
            ),
            &[
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value",
                "may not be 0 when `maxSurge` is 0",
            ],
        ),
        (
            "negative",
            deployment(
                "bad",
                1,
                labels,
                "  strategy:\n    rollingUpdate: {maxSurge: -1}\n",
                &good,
            ),
            &[
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: -1",
                "must be greater than or equal to 0",
            ],
        ),
        (
            "over 100 %",
            deployment(
                "bad",
                1,
                labels,
                "  strategy:\n    rollingUpdate: {maxUnavailable: \"150%\"}\n",
                &good,
            ),
            &[
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}",
                "must not be greater than 100%",
            ],
        ),
        (
            "selector does not match",
            deployment("bad", 1, "app: other", "", &good),
            &[
                "spec.template.metadata.labels: Invalid value",
                "`selector` does not match template `labels`",
            ],
        ),
        (
            "negative replicas",
            deployment("bad", 1, labels, "", &good).replace("replicas: 1", "replicas: -1"),
            &[
                "spec.replicas: Invalid value: -1",
                "must be greater than or equal to 0",
            ],
        ),
    ];
    for (case, manifest, wanted) in cases {
        let out = kubectl(&node, &["apply", "-f", "-"], Some(&node.expand(&manifest))).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: accepted");
        assert!(
            stderr.contains(r#"The Deployment "bad" is invalid"#),
            "{case}: {stderr}"
        );
        for w in wanted {
            assert!(stderr.contains(w), "{case}: want {w:?} in {stderr}");
        }
        assert!(
            objects(&node, &resources::DEPLOYMENTS).is_empty(),
            "{case}: written"
        );
    }

    // The selector is immutable in apps/v1.
    kubectl_ok(
        &node,
        &["apply", "-f", "-"],
        Some(&node.expand(&deployment("web", 1, labels, "", &good))),
    )
    .await;
    let changed = deployment(
        "web",
        1,
        "app: web, tier: front",
        "",
        &template("app: web, tier: front", "web", "v1", true, 1),
    );
    let out = kubectl(&node, &["apply", "-f", "-"], Some(&node.expand(&changed))).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a changed selector was accepted");
    assert!(
        stderr.contains("spec.selector: Invalid value") && stderr.contains("field is immutable"),
        "{stderr}"
    );
    let stored = get(&node, &resources::DEPLOYMENTS, "web").unwrap();
    assert!(stored["spec"]["selector"]["matchLabels"]["tier"].is_null());
    node.stop().await;
}

/// A rollout whose new pods never become ready stops at its progress deadline: Progressing
/// False with `ProgressDeadlineExceeded`, and the old pods keep running and ready.
#[tokio::test]
async fn a_stuck_rollout_exceeds_its_progress_deadline_and_keeps_the_old_pods() {
    let node = TestNode::start().await;
    let labels = "app: web";
    let spec = "  progressDeadlineSeconds: 3\n";
    node.apply(&deployment(
        "web",
        2,
        labels,
        spec,
        &template(labels, "web", "v1", true, 1),
    ));
    eventually(&node, SECS(60), "v1 complete", || complete(&node, "web")).await;
    let old = name(&replica_sets_of(&node, "web")[0]);
    node.apply(&deployment(
        "web",
        2,
        labels,
        spec,
        &template(labels, "web", "bad", false, 1),
    ));
    let d = eventually(&node, SECS(60), "ProgressDeadlineExceeded", || {
        get(&node, &resources::DEPLOYMENTS, "web").filter(|d| {
            d["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| {
                    c["type"] == "Progressing"
                        && c["status"] == "False"
                        && c["reason"] == "ProgressDeadlineExceeded"
                })
        })
    })
    .await;
    assert!(
        int(&d["status"]["availableReplicas"]) >= 1,
        "{}",
        d["status"]
    );
    let serving: Vec<Arc<Value>> = objects(&node, &resources::PODS)
        .into_iter()
        .filter(|p| controlled_by(p, &old) && p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            p["status"]["phase"] == "Running"
                && p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .collect();
    // 25 % of 2 rounds down to 0 unavailable: both old pods keep serving.
    assert_eq!(serving.len(), 2, "old pods still running and ready");
    node.stop().await;
}
