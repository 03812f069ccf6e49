//! Deletion, grace periods and signals: spec §10.4 (DEL-*), §10.1 sleep hooks (HOOK-13..16),
//! §10.2 (PS-*), and the issue's timing requirements.

use std::time::Duration;

use crate::harness::*;

/// A pod whose app records to the shared file; `extra` is appended to the container.
fn app_pod(name: &str, grace: i64, on_term: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: {grace}
  containers:
  - name: app
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "{name}", "--record", "$RECORD", "--port", "0", "--on-signal", "TERM={on_term}"]
{extra}
"#
    )
}

/// Applies an app pod and waits until it runs and its app has installed its signal handlers
/// (an app killed before that dies of the default action, as it would in Kubernetes).
async fn run_app(node: &TestNode, name: &str, yaml: &str) -> Record {
    node.apply(yaml);
    node.wait_running(name, SECS(10)).await;
    node.wait_record(SECS(10), "app started", |r| r.is(name, "started"))
        .await
}

/// Deletes the pod and returns every version of it seen until it disappeared, with the time
/// the delete was sent.
async fn delete_and_follow(
    node: &TestNode,
    name: &str,
    grace: Option<i64>,
    timeout: Duration,
) -> (u128, Vec<std::sync::Arc<k8s_openapi::api::core::v1::Pod>>) {
    let (_, rx) = node.store.watch();
    let t0 = now_ns();
    node.delete(name, grace);
    (t0, follow_until_removed(rx, name, timeout).await)
}

/// Every version of the pod seen on `rx` until it is removed from the store.
async fn follow_until_removed(
    mut rx: tokio::sync::broadcast::Receiver<podvisor::store::Change>,
    name: &str,
    timeout: Duration,
) -> Vec<std::sync::Arc<k8s_openapi::api::core::v1::Pod>> {
    let mut versions = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => panic!("pod {name} not removed within {timeout:?}"),
            Ok(Ok(change)) => {
                if let Some(p) = change.pod()
                    && p.metadata.name.as_deref() == Some(name)
                {
                    let gone = change.change_type == podvisor::store::ChangeType::Deleted;
                    versions.push(p);
                    if gone {
                        return versions;
                    }
                }
            }
            Ok(Err(e)) => panic!("watch failed: {e}"),
        }
    }
}

/// The last status written before removal.
fn final_version(
    versions: &[std::sync::Arc<k8s_openapi::api::core::v1::Pod>],
) -> &k8s_openapi::api::core::v1::Pod {
    versions.last().expect("at least the deletion")
}

/// DEL-03 "should respect termination grace period seconds": a container that ignores
/// SIGTERM is SIGKILLed at the grace (3 s), within 100 ms; exit 137; the pod is removed.
#[tokio::test]
async fn del_03_sigkill_at_grace_when_sigterm_is_ignored() {
    let node = TestNode::start().await;
    let started = run_app(&node, "web", &app_pod("web", 3, "ignore", "")).await;
    let death = death_watch(pid_of(&started));
    let (t0, versions) = delete_and_follow(&node, "web", None, SECS(10)).await;
    let last = final_version(&versions);
    assert_eq!(terminated(last, "app"), Some((137, "Error".to_owned())));
    let dead = death.await.unwrap();
    let secs = (dead - t0) as f64 / 1e9;
    assert!(
        (3.0..3.1).contains(&secs),
        "SIGKILL {secs:.3}s after delete, want 3 s + ≤100 ms"
    );
    let sig = node
        .wait_record(SECS(1), "SIGTERM", |r| r.is("web", "signal"))
        .await;
    assert!(
        sig.secs_after(t0) < 0.5,
        "SIGTERM {:.3}s after delete",
        sig.secs_after(t0)
    );
    assert_eq!(phase_of(last), "Failed", "DEL-X4: 137 means Failed");
    assert!(node.has_event("web", "Killing", "Stopping container app"));
    node.stop().await;
}

/// DEL-04 "...with long-running preStop hook": the hook is abandoned at the grace, the stop
/// signal follows, SIGKILL 2 s later (the one-off extension); the hook's process dies too.
#[tokio::test]
async fn del_04_hanging_pre_stop_cut_at_grace_then_two_seconds() {
    let node = TestNode::start().await;
    let extra = r#"    lifecycle:
      preStop:
        exec:
          command: ["$TESTAPP", "hook", "prestop", "--name", "web", "--record", "$RECORD", "--sleep", "1000", "--ignore-term"]"#;
    let started = run_app(&node, "web", &app_pod("web", 3, "ignore", extra)).await;
    let death = death_watch(pid_of(&started));
    let (t0, _) = delete_and_follow(&node, "web", None, SECS(15)).await;
    let hook = node
        .wait_record(SECS(1), "preStop started", |r| {
            r.is("web", "hook") && r.get("phase") == Some("start")
        })
        .await;
    assert!(
        hook.secs_after(t0) < 0.5,
        "preStop {:.3}s after delete",
        hook.secs_after(t0)
    );
    let sig = node
        .wait_record(SECS(1), "SIGTERM", |r| {
            r.is("web", "signal") && r.get("pid") != hook.get("pid")
        })
        .await;
    let at = sig.secs_after(t0);
    assert!(
        (3.0..3.3).contains(&at),
        "stop signal at {at:.3}s, want ~3 s"
    );
    let dead = (death.await.unwrap() - t0) as f64 / 1e9;
    assert!(
        (5.0..5.15).contains(&dead),
        "SIGKILL at {dead:.3}s, want 3 + 2 s"
    );
    // The still-running hook is gone with its container.
    let hook_pid: i32 = hook.get("pid").unwrap().parse().unwrap();
    assert!(!alive(hook_pid), "the preStop hook survived");
    node.stop().await;
}

/// HOOK-14 "reduce GracePeriodSeconds during runtime" and the issue's figure: a preStop
/// `sleep 10` deleted with grace 3 sees the stop signal at ~3 s and SIGKILL at ~5 s.
#[tokio::test]
async fn hook_14_sleep_pre_stop_cut_by_delete_grace() {
    let node = TestNode::start().await;
    let extra = r#"    lifecycle:
      preStop:
        sleep:
          seconds: 10"#;
    let started = run_app(&node, "web", &app_pod("web", 30, "ignore", extra)).await;
    let death = death_watch(pid_of(&started));
    let (t0, _) = delete_and_follow(&node, "web", Some(3), SECS(15)).await;
    let sig = node
        .wait_record(SECS(1), "SIGTERM", |r| r.is("web", "signal"))
        .await;
    let at = sig.secs_after(t0);
    assert!(
        (3.0..3.3).contains(&at),
        "stop signal at {at:.3}s, want ~3 s"
    );
    let dead = (death.await.unwrap() - t0) as f64 / 1e9;
    assert!(
        (5.0..5.15).contains(&dead),
        "SIGKILL at {dead:.3}s, want ~5 s"
    );
    node.stop().await;
}

/// HOOK-13 "valid prestop hook using sleep action": the stop signal waits for the sleep; an
/// app that exits 0 on SIGTERM ends Succeeded (DEL-X4).
#[tokio::test]
async fn hook_13_sleep_pre_stop_is_honoured() {
    let node = TestNode::start().await;
    let extra = r#"    lifecycle:
      preStop:
        sleep:
          seconds: 2"#;
    run_app(&node, "web", &app_pod("web", 10, "exit", extra)).await;
    let (t0, versions) = delete_and_follow(&node, "web", None, SECS(10)).await;
    let sig = node
        .wait_record(SECS(1), "SIGTERM", |r| r.is("web", "signal"))
        .await;
    let at = sig.secs_after(t0);
    assert!(
        (2.0..2.5).contains(&at),
        "stop signal at {at:.3}s, want after the 2 s sleep"
    );
    let last = final_version(&versions);
    assert_eq!(terminated(last, "app"), Some((0, "Completed".to_owned())));
    assert_eq!(phase_of(last), "Succeeded");
    node.stop().await;
}

/// HOOK-16: `sleep.seconds: 0` is valid and costs nothing.
#[tokio::test]
async fn hook_16_sleep_zero() {
    let node = TestNode::start().await;
    let extra = r#"    lifecycle:
      preStop:
        sleep:
          seconds: 0"#;
    run_app(&node, "web", &app_pod("web", 30, "exit", extra)).await;
    let (t0, _) = delete_and_follow(&node, "web", None, SECS(5)).await;
    assert!((now_ns() - t0) < 2_000_000_000, "deletion took over 2 s");
    node.stop().await;
}

/// DEL-X1 force delete: the object goes at once; the processes get grace 1 → the 2 s floor.
#[tokio::test]
async fn del_x1_force_delete() {
    let node = TestNode::start().await;
    let started = run_app(&node, "web", &app_pod("web", 30, "ignore", "")).await;
    let pid: i32 = started.get("pid").unwrap().parse().unwrap();
    let t0 = now_ns();
    assert!(matches!(
        node.delete("web", Some(0)),
        podvisor::store::DeleteOutcome::Removed(_)
    ));
    assert!(node.pod("web").is_none(), "removed immediately");
    let deadline = std::time::Instant::now() + SECS(5);
    while alive(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "process outlived the force delete"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = (now_ns() - t0) as f64 / 1e9;
    assert!(
        (1.9..2.3).contains(&secs),
        "killed {secs:.3}s after force delete, want ~2 s"
    );
    node.stop().await;
}

/// DEL-X2: a shorter grace restarts termination (a second `Killing` event) and brings the
/// SIGKILL forward.
#[tokio::test]
async fn del_x2_shorter_grace_restarts_termination() {
    let node = TestNode::start().await;
    let started = run_app(&node, "web", &app_pod("web", 60, "ignore", "")).await;
    let death = death_watch(pid_of(&started));
    let (_, rx) = node.store.watch();
    node.delete("web", None);
    node.wait_record(SECS(5), "first SIGTERM", |r| r.is("web", "signal"))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await; // a later, separate delete request
    let t1 = now_ns();
    node.delete("web", Some(3));
    follow_until_removed(rx, "web", SECS(10)).await;
    let dead = (death.await.unwrap() - t1) as f64 / 1e9;
    assert!(
        (3.0..3.2).contains(&dead),
        "SIGKILL {dead:.3}s after the shorter delete, want 3 s"
    );
    let killings = node
        .events("web")
        .iter()
        .filter(|e| e.reason.as_deref() == Some("Killing"))
        .map(|e| e.count.unwrap_or(1))
        .sum::<i32>();
    assert_eq!(killings, 2, "one Killing per termination run");
    let sigterms = node
        .records()
        .iter()
        .filter(|r| r.is("web", "signal"))
        .count();
    assert_eq!(sigterms, 2, "the re-run sends the stop signal again");
    node.stop().await;
}

/// DEL-X3: a longer grace in a later delete is ignored.
#[tokio::test]
async fn del_x3_longer_grace_is_ignored() {
    let node = TestNode::start().await;
    let started = run_app(&node, "web", &app_pod("web", 30, "ignore", "")).await;
    let death = death_watch(pid_of(&started));
    let (_, rx) = node.store.watch();
    let t0 = now_ns();
    node.delete("web", Some(3));
    node.delete("web", Some(60));
    let pod = node.pod("web").unwrap();
    assert_eq!(pod.metadata.deletion_grace_period_seconds, Some(3));
    follow_until_removed(rx, "web", SECS(10)).await;
    let dead = (death.await.unwrap() - t0) as f64 / 1e9;
    assert!(
        (3.0..3.2).contains(&dead),
        "SIGKILL at {dead:.3}s, want 3 s"
    );
    node.stop().await;
}

/// DEL-01 "Delete Grace Period should be submitted and removed": the object shows the
/// deletion timestamp and grace while terminating, then disappears.
#[tokio::test]
async fn del_01_deletion_fields_then_removal() {
    let node = TestNode::start().await;
    run_app(&node, "web", &app_pod("web", 30, "drain:1", "")).await;
    let podvisor::store::DeleteOutcome::Terminating(p) = node.delete("web", Some(5)) else {
        panic!("expected a graceful delete");
    };
    assert_eq!(p.metadata.deletion_grace_period_seconds, Some(5));
    assert!(p.metadata.deletion_timestamp.is_some());
    node.wait_gone("web", SECS(5)).await;
    node.stop().await;
}

/// DEL-02 "Pod TerminationGracePeriodSeconds is negative": stored as 1.
#[tokio::test]
async fn del_02_negative_grace_becomes_one() {
    let node = TestNode::start().await;
    run_app(&node, "web", &app_pod("web", -1, "exit", "")).await;
    let p = node.pod("web").unwrap();
    assert_eq!(
        p.spec.as_ref().unwrap().termination_grace_period_seconds,
        Some(1)
    );
    node.delete("web", None);
    node.wait_gone("web", SECS(5)).await;
    node.stop().await;
}

/// Exit codes: death by SIGTERM is 143 (reason Error, phase Failed).
#[tokio::test]
async fn exit_code_143_for_sigterm_death() {
    let node = TestNode::start().await;
    run_app(&node, "web", &app_pod("web", 30, "default", "")).await;
    let (_, versions) = delete_and_follow(&node, "web", None, SECS(5)).await;
    let last = final_version(&versions);
    assert_eq!(terminated(last, "app"), Some((143, "Error".to_owned())));
    assert_eq!(phase_of(last), "Failed");
    node.stop().await;
}

/// HOOK-17 "StopSignal defined with pod.OS": `lifecycle.stopSignal` replaces SIGTERM and is
/// reported in the container status.
#[tokio::test]
async fn hook_17_stop_signal() {
    let node = TestNode::start().await;
    node.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  os: {name: linux}
  containers:
  - name: app
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "web", "--record", "$RECORD", "--port", "0", "--on-signal", "USR1=exit:3", "--on-signal", "TERM=ignore"]
    lifecycle:
      stopSignal: SIGUSR1
"#,
    );
    let p = node.wait_running("web", SECS(10)).await;
    node.wait_record(SECS(10), "started", |r| r.is("web", "started"))
        .await;
    assert_eq!(
        container_status(&p, "app").stop_signal.as_deref(),
        Some("SIGUSR1")
    );
    let (_, versions) = delete_and_follow(&node, "web", None, SECS(5)).await;
    let sig = node
        .wait_record(SECS(1), "signal", |r| r.is("web", "signal"))
        .await;
    assert_eq!(sig.get("sig"), Some("SIGUSR1"));
    assert_eq!(terminated(final_version(&versions), "app").unwrap().0, 3);
    node.stop().await;
}

/// PS-02 "graceful pod terminated should wait until preStop hook completes": while preStop
/// runs the container is still running, then it stops.
#[tokio::test]
async fn ps_02_container_runs_during_pre_stop() {
    let node = TestNode::start().await;
    let extra = r#"    lifecycle:
      preStop:
        sleep:
          seconds: 2"#;
    run_app(&node, "web", &app_pod("web", 10, "exit", extra)).await;
    node.delete("web", None);
    tokio::time::sleep(Duration::from_millis(1000)).await; // mid-preStop, by design of the test
    let p = node.pod("web").expect("still terminating");
    let cs = container_status(&p, "app");
    assert!(
        cs.state.as_ref().unwrap().running.is_some(),
        "running during preStop"
    );
    assert!(
        node.records().iter().all(|r| !r.is("web", "signal")),
        "no stop signal yet"
    );
    node.wait_gone("web", SECS(5)).await;
    node.stop().await;
}

/// Node shutdown (SIGINT of `up`): every pod is terminated in order, preStop included, and
/// keeps a terminal status with reason `Terminated`.
#[tokio::test]
async fn node_shutdown_terminates_every_pod() {
    let node = TestNode::start().await;
    let extra = r#"    lifecycle:
      preStop:
        exec:
          command: ["$TESTAPP", "hook", "prestop", "--name", "NAME", "--record", "$RECORD"]"#;
    for name in ["a", "b"] {
        run_app(
            &node,
            name,
            &app_pod(name, 5, "exit", &extra.replace("NAME", name)),
        )
        .await;
    }
    let store = node.store.clone();
    let records = node.stop_gracefully().await;
    for name in ["a", "b"] {
        let p = store
            .get_pod(&podvisor::store::ObjectKey::new("default", name))
            .unwrap();
        let status = p.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        assert_eq!(status.reason.as_deref(), Some("Terminated"));
        let hook = records
            .iter()
            .position(|r| r.is(name, "hook") && r.get("phase") == Some("end"))
            .expect("preStop ran");
        let sig = records
            .iter()
            .position(|r| r.is(name, "signal"))
            .expect("SIGTERM sent");
        assert!(hook < sig, "preStop before the stop signal");
    }
}
