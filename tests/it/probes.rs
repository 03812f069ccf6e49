//! Probes and restarts: spec §10.6 (PR-*), §10.7 (BO-*), §10.5 CLC-08..10, and the issue's
//! probe-scheduling requirement.

use k8s_openapi::api::core::v1::Pod;

use crate::harness::*;

/// A testapp pod named `p` with `extra` appended to the container (probes …).
fn pod(grace: i64, restart_policy: &str, args: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  terminationGracePeriodSeconds: {grace}
  restartPolicy: {restart_policy}
  containers:
  - name: app
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "app", "--record", "$RECORD"{args}]
    env:
    - name: POD_IP
      valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
{extra}
"#
    )
}

fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs[0].restart_count)
}

fn ready(p: &Pod) -> bool {
    condition(p, "Ready")
}

fn condition(p: &Pod, type_: &str) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .is_some_and(|c| c.status == "True")
}

fn events_with(node: &TestNode, reason: &str, message: &str) -> i32 {
    node.events("p")
        .iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.message.as_deref().unwrap_or("").contains(message)
        })
        .map(|e| e.count.unwrap_or(1))
        .sum()
}

/// Waits until at least `n` events with this reason and message were counted.
async fn wait_events(node: &TestNode, reason: &str, message: &str, n: i32) {
    node.wait_pod("p", SECS(30), &format!("{n}× {reason} {message}"), |_| {
        events_with(node, reason, message) >= n
    })
    .await;
}

/// An exec probe command that records each run as `probe name=<kind>` (start and end).
fn recording_probe(kind: &str, extra_args: &str) -> String {
    format!(
        r#"exec: {{command: ["$TESTAPP", "hook", "{kind}", "--name", "app", "--record", "$RECORD"{extra_args}]}}"#
    )
}

fn probe_runs(node: &TestNode, kind: &str) -> usize {
    node.records()
        .iter()
        .filter(|r| {
            r.is("app", "hook") && r.get("name") == Some(kind) && r.get("phase") == Some("start")
        })
        .count()
}

/// PR-01 "with readiness probe should not be ready before initial delay and never restart".
#[tokio::test]
async fn pr_01_readiness_waits_for_initial_delay() {
    let node = TestNode::start().await;
    node.apply(&pod(
        30,
        "Always",
        "",
        "    readinessProbe:\n      httpGet: {path: /readyz, port: 8080}\n      initialDelaySeconds: 2\n      periodSeconds: 1",
    ));
    let p = node.wait_pod("p", SECS(15), "Ready", ready).await;
    let cs = container_status(&p, "app");
    let started = cs
        .state
        .as_ref()
        .unwrap()
        .running
        .as_ref()
        .unwrap()
        .started_at
        .as_ref()
        .unwrap()
        .0;
    let ready_at = p
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .last_transition_time
        .as_ref()
        .unwrap()
        .0;
    let secs = ready_at.duration_since(started).as_secs_f64();
    assert!(
        secs >= 2.0,
        "ready {secs:.3}s after start, before the 2 s initial delay"
    );
    assert_eq!(restarts(&p), 0);
    node.stop().await;
}

/// PR-02 "with readiness probe that fails should never be ready and never restart" and
/// PR-10 (a readiness probe that times out).
#[tokio::test]
async fn pr_02_10_failing_readiness_never_ready_never_restarts() {
    let node = TestNode::start().await;
    node.apply(&pod(
        30,
        "Always",
        r#", "--port", "0""#,
        "    readinessProbe:\n      exec: {command: [sh, -c, 'sleep 5']}\n      timeoutSeconds: 1\n      periodSeconds: 1",
    ));
    wait_events(
        &node,
        "Unhealthy",
        "Readiness probe failed: command \"sh -c sleep 5\" timed out",
        3,
    )
    .await;
    let p = node.pod("p").unwrap();
    assert!(!ready(&p));
    assert!(!container_status(&p, "app").ready);
    assert_eq!(restarts(&p), 0);
    node.stop().await;
}

/// PR-03 "should be restarted with a exec "cat /tmp/health" liveness probe": Unhealthy, then
/// Killing with upstream's message, then a restart.
#[tokio::test]
async fn pr_03_exec_liveness_restarts() {
    let node = TestNode::start().await;
    let health = "$DIR/health";
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "echo ok > {health}; sleep 1; rm -f {health}; sleep 600"]
    livenessProbe:
      exec: {{command: [cat, "{health}"]}}
      initialDelaySeconds: 0
      periodSeconds: 1
      failureThreshold: 1
"#
    ));
    node.wait_pod("p", SECS(20), "restarted", |p| restarts(p) >= 1)
        .await;
    assert!(events_with(&node, "Unhealthy", "Liveness probe failed: cat:") >= 1);
    assert!(
        events_with(
            &node,
            "Killing",
            "Container app failed liveness probe, will be restarted"
        ) >= 1
    );
    node.stop().await;
}

/// PR-04 "should *not* be restarted with a exec liveness probe" (the check keeps passing).
#[tokio::test]
async fn pr_04_passing_liveness_does_not_restart() {
    let node = TestNode::start().await;
    let probe = recording_probe("liveness", "");
    node.apply(&pod(
        30,
        "Always",
        r#", "--port", "0""#,
        &format!(
            "    livenessProbe:\n      {probe}\n      periodSeconds: 1\n      failureThreshold: 1"
        ),
    ));
    node.wait_pod("p", SECS(20), "probed 4 times", |_| {
        probe_runs(&node, "liveness") >= 4
    })
    .await;
    assert_eq!(restarts(&node.pod("p").unwrap()), 0);
    node.stop().await;
}

/// PR-05 "should be restarted with a /healthz http liveness probe" and PR-06/PR-08 (tcp and
/// http checks that pass do not restart).
#[tokio::test]
async fn pr_05_06_http_liveness_restarts_tcp_does_not() {
    let node = TestNode::start().await;
    node.apply(&pod(
        30,
        "Always",
        r#", "--healthy-for", "2""#,
        "    livenessProbe:\n      httpGet: {path: /healthz, port: 8080}\n      initialDelaySeconds: 1\n      periodSeconds: 1\n      failureThreshold: 1\n    readinessProbe:\n      tcpSocket: {port: 8080}\n      initialDelaySeconds: 1\n      periodSeconds: 1",
    ));
    node.wait_pod("p", SECS(20), "restarted", |p| restarts(p) >= 1)
        .await;
    assert!(
        events_with(
            &node,
            "Unhealthy",
            "Liveness probe failed: HTTP probe failed with statuscode: 500"
        ) >= 1
    );
    assert_eq!(
        events_with(&node, "Unhealthy", "Readiness probe failed"),
        0,
        "tcp passes"
    );
    node.stop().await;
}

/// PR-09 / PR-11: an exec liveness probe that times out (or leaves a child behind) fails.
#[tokio::test]
async fn pr_09_exec_liveness_timeout_restarts() {
    let node = TestNode::start().await;
    node.apply(&pod(
        30,
        "Always",
        r#", "--port", "0""#,
        "    livenessProbe:\n      exec: {command: [sh, -c, 'sleep 10']}\n      timeoutSeconds: 1\n      periodSeconds: 1\n      failureThreshold: 1",
    ));
    node.wait_pod("p", SECS(20), "restarted", |p| restarts(p) >= 1)
        .await;
    node.stop().await;
}

/// PR-14 "should be restarted startup probe fails".
#[tokio::test]
async fn pr_14_failing_startup_restarts() {
    let node = TestNode::start().await;
    node.apply(&pod(
        30,
        "Always",
        r#", "--port", "0""#,
        "    startupProbe:\n      exec: {command: ['false']}\n      periodSeconds: 1\n      failureThreshold: 2\n    livenessProbe:\n      exec: {command: ['true']}",
    ));
    node.wait_pod("p", SECS(20), "restarted", |p| restarts(p) >= 1)
        .await;
    assert!(
        events_with(
            &node,
            "Killing",
            "Container app failed startup probe, will be restarted"
        ) >= 1
    );
    node.stop().await;
}

/// PR-15 "should *not* be restarted by liveness probe because startup probe delays it".
#[tokio::test]
async fn pr_15_liveness_waits_for_startup() {
    let node = TestNode::start().await;
    node.apply(&pod(
        30,
        "Always",
        r#", "--port", "0""#,
        "    startupProbe:\n      exec: {command: [cat, /nonexistent/startup]}\n      periodSeconds: 1\n      failureThreshold: 60\n    livenessProbe:\n      exec: {command: ['false']}\n      periodSeconds: 1\n      failureThreshold: 1",
    ));
    wait_events(&node, "Unhealthy", "Startup probe failed", 3).await;
    let p = node.pod("p").unwrap();
    assert_eq!(restarts(&p), 0);
    assert_eq!(events_with(&node, "Unhealthy", "Liveness probe failed"), 0);
    assert_eq!(container_status(&p, "app").started, Some(false));
    node.stop().await;
}

/// PR-16 "should be restarted by liveness probe after startup probe enables it" and PR-17
/// "should be ready immediately after startupProbe succeeds".
#[tokio::test]
async fn pr_16_17_startup_then_liveness_and_readiness() {
    let node = TestNode::start().await;
    let file = "$DIR/started";
    node.apply(&pod(
        30,
        "Always",
        r#", "--port", "0""#,
        &format!(
            "    startupProbe:\n      exec: {{command: [cat, {file}]}}\n      periodSeconds: 1\n      failureThreshold: 60\n    readinessProbe:\n      exec: {{command: ['true']}}\n      periodSeconds: 60"
        ),
    ));
    node.wait_running("p", SECS(10)).await;
    std::fs::write(node.dir.path().join("started"), "").unwrap();
    let t = now_ns();
    node.wait_pod("p", SECS(5), "Ready", ready).await;
    let secs = (now_ns() - t) as f64 / 1e9;
    assert!(
        secs < 3.0,
        "ready {secs:.1}s after the startup file, not a 60 s readiness period later"
    );
    node.stop().await;

    // PR-16: once started, a failing liveness probe restarts the container.
    let node = TestNode::start().await;
    node.apply(&pod(
        30,
        "Always",
        r#", "--port", "0""#,
        "    startupProbe:\n      exec: {command: ['true']}\n      periodSeconds: 1\n    livenessProbe:\n      exec: {command: ['false']}\n      periodSeconds: 1\n      failureThreshold: 1",
    ));
    node.wait_pod("p", SECS(20), "restarted", |p| restarts(p) >= 1)
        .await;
    node.stop().await;
}

/// PR-18 "should override timeoutGracePeriodSeconds when LivenessProbe field is set" (and
/// PR-19 for startup): the probe's grace (2 s) is used, not the pod's 500 s.
#[tokio::test]
async fn pr_18_19_probe_level_grace() {
    for probe in ["livenessProbe", "startupProbe"] {
        let node = TestNode::start().await;
        node.apply(&pod(
            500,
            "Always",
            r#", "--port", "0", "--on-signal", "TERM=ignore""#,
            &format!(
                "    {probe}:\n      exec: {{command: ['false']}}\n      periodSeconds: 1\n      failureThreshold: 1\n      terminationGracePeriodSeconds: 2"
            ),
        ));
        let p = node
            .wait_pod("p", SECS(20), "restarted", |p| restarts(p) >= 1)
            .await;
        let last = container_status(&p, "app")
            .last_state
            .as_ref()
            .unwrap()
            .terminated
            .clone()
            .unwrap();
        assert_eq!(last.exit_code, 137, "{probe}: killed at the probe's grace");
        let lived = last
            .finished_at
            .unwrap()
            .0
            .duration_since(last.started_at.unwrap().0)
            .as_secs_f64();
        assert!(
            lived < 6.0,
            "{probe}: lived {lived:.1}s: the 500 s pod grace was used"
        );
        node.stop().await;
    }
}

/// PR-21, PR-22 and CLC-10 "should execute readiness probe while in preStop, but not
/// liveness": during termination the pod turns not Ready, and a failing liveness probe
/// neither kills nor restarts the container.
#[tokio::test]
async fn pr_21_22_readiness_during_termination_liveness_stopped() {
    let node = TestNode::start().await;
    let marker = "$DIR/terminating";
    node.apply(&pod(
        30,
        "Always",
        r#", "--port", "0""#,
        &format!(
            r#"    readinessProbe:
      exec: {{command: [sh, -c, "test ! -e {marker}"]}}
      periodSeconds: 1
      failureThreshold: 1
    livenessProbe:
      exec: {{command: [sh, -c, "test ! -e {marker}"]}}
      periodSeconds: 1
      failureThreshold: 1
    lifecycle:
      preStop:
        exec: {{command: [sh, -c, "touch {marker}; sleep 3"]}}"#
        ),
    ));
    node.wait_pod("p", SECS(15), "Ready", ready).await;
    node.delete("p", None);
    node.wait_pod("p", SECS(5), "not Ready while terminating", |p| !ready(p))
        .await;
    node.wait_gone("p", SECS(15)).await;
    assert_eq!(events_with(&node, "Killing", "failed liveness probe"), 0);
    node.stop().await;
}

/// CLC-08 / CLC-09 "should call the container's preStop hook and terminate it if its
/// startup/liveness probe fails" with restartPolicy Never: preStop runs, no restart, Failed.
#[tokio::test]
async fn clc_08_09_probe_failure_runs_pre_stop_never_restarts() {
    for probe in ["startupProbe", "livenessProbe"] {
        let node = TestNode::start().await;
        node.apply(&pod(
            5,
            "Never",
            r#", "--port", "0", "--on-signal", "TERM=exit:1""#,
            &format!(
                "    {probe}:\n      exec: {{command: ['false']}}\n      periodSeconds: 1\n      failureThreshold: 1\n    lifecycle:\n      preStop:\n        {}",
                recording_probe("prestop", "")
            ),
        ));
        let p = node.wait_phase("p", "Failed", SECS(20)).await;
        assert_eq!(restarts(&p), 0);
        assert!(
            node.records()
                .iter()
                .any(|r| r.is("app", "hook") && r.get("name") == Some("prestop")),
            "{probe}: preStop ran"
        );
        let kind = if probe == "startupProbe" {
            "Startup"
        } else {
            "Liveness"
        };
        assert!(events_with(&node, "Unhealthy", &format!("{kind} probe failed")) >= 1);
        // Nothing restarts, so upstream kills the whole pod (`KillPod`): default message.
        assert!(events_with(&node, "Killing", "Stopping container app") >= 1);
        node.stop().await;
    }
}

/// BO-03 / CLC-04 "should restart failing container when pod restartPolicy is Always": the
/// kubelet's default delays 0, 10, 20 s measured from the exit, `CrashLoopBackOff` with
/// upstream's message, `BackOff` events.
#[tokio::test]
async fn bo_03_crash_loop_back_off_sequence() {
    let node = TestNode::start().await;
    node.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: app
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "app", "--record", "$RECORD", "--port", "0", "--exit-after", "0.1", "--exit-code", "1"]
"#,
    );
    let waiting = std::cell::RefCell::new(None);
    node.wait_pod("p", SECS(45), "3 restarts", |p| {
        if let Some(w) = p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs[0].state.as_ref())
            .and_then(|s| s.waiting.as_ref())
            && w.reason.as_deref() == Some("CrashLoopBackOff")
            && waiting.borrow().is_none()
        {
            // The first one: by the time 4 starts are seen the next back-off (40 s) may show.
            *waiting.borrow_mut() = w.message.clone();
        }
        restarts(p) >= 3
            && node
                .records()
                .iter()
                .filter(|r| r.is("app", "started"))
                .count()
                >= 4
    })
    .await;
    let seen_waiting = waiting.into_inner();
    // Delays from each exit to the next start, from the app's own records (ns precision).
    let records = node.records();
    let starts: Vec<u128> = records
        .iter()
        .filter(|r| r.is("app", "started"))
        .map(|r| r.time_ns)
        .collect();
    let exits: Vec<u128> = records
        .iter()
        .filter(|r| r.is("app", "exiting"))
        .map(|r| r.time_ns)
        .collect();
    let delays: Vec<f64> = exits
        .iter()
        .zip(starts.iter().skip(1))
        .map(|(e, s)| (*s as f64 - *e as f64) / 1e9)
        .collect();
    assert!(delays.len() >= 3, "{delays:?}");
    for (delay, want) in delays.iter().zip([0.0, 10.0, 20.0]) {
        assert!(
            *delay >= want && *delay < want + 1.0,
            "delays {delays:?}, want 0, 10, 20 s (+1 s)"
        );
    }
    let message = seen_waiting.expect("a CrashLoopBackOff waiting state");
    let uid = node.pod("p").unwrap().metadata.uid.clone().unwrap();
    assert!(
        message.starts_with("back-off 10s restarting failed container=app pod=p_default(")
            || message.starts_with("back-off 20s restarting failed container=app pod=p_default("),
        "{message}"
    );
    assert!(message.ends_with(&format!("({uid})")), "{message}");
    assert!(
        events_with(
            &node,
            "BackOff",
            "Back-off restarting failed container app in pod p_default"
        ) >= 1
    );
    node.stop().await;
}

/// BO-05 / BO-06: OnFailure does not restart exit 0 (Succeeded); Never does not restart
/// exit 1 (Failed, reason Error).
#[tokio::test]
async fn bo_05_06_on_failure_and_never() {
    let node = TestNode::start().await;
    for (name, policy, code, phase) in [
        ("a", "OnFailure", 0, "Succeeded"),
        ("b", "Never", 1, "Failed"),
    ] {
        node.apply(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: {policy}\n  containers:\n  - name: app\n    image: busybox\n    command: [sh, -c, 'exit {code}']\n"
        ));
        let p = node.wait_phase(name, phase, SECS(10)).await;
        let want = if code == 0 { "Completed" } else { "Error" };
        assert_eq!(terminated(&p, "app"), Some((code, want.to_owned())));
        assert_eq!(container_status(&p, "app").restart_count, 0);
    }
    node.stop().await;
}

/// The node flag `--max-container-backoff` (KEP-4603) caps the delay.
#[tokio::test]
async fn max_backoff_flag_caps_delays() {
    let node = TestNode::start_with(NodeOptions {
        max_backoff: SECS(1),
        ..NodeOptions::default()
    })
    .await;
    node.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: app\n    image: busybox\n    command: [sh, -c, 'exit 1']\n",
    );
    let t = now_ns();
    node.wait_pod("p", SECS(15), "4 restarts", |p| restarts(p) >= 4)
        .await;
    let secs = (now_ns() - t) as f64 / 1e9;
    assert!(
        secs < 6.0,
        "4 restarts took {secs:.1}s with a 1 s maximum back-off"
    );
    node.stop().await;
}

/// The issue's scheduling check: 20 containers, each with 1 s exec readiness and liveness
/// probes, for a minute: per container and probe, runs never overlap and none is missed
/// (checked from the probes' own start/end records, not from wall-clock assertions on the
/// test).
#[tokio::test]
async fn twenty_containers_probed_every_second_for_a_minute() {
    let node = TestNode::start().await;
    let mut containers = String::new();
    for i in 0..20 {
        containers.push_str(&format!(
            r#"  - name: c{i}
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "c{i}", "--record", "$RECORD", "--port", "0"]
    readinessProbe:
      exec: {{command: ["$TESTAPP", "hook", "readiness", "--name", "c{i}", "--record", "$RECORD"]}}
      periodSeconds: 1
    livenessProbe:
      exec: {{command: ["$TESTAPP", "hook", "liveness", "--name", "c{i}", "--record", "$RECORD"]}}
      periodSeconds: 1
"#
        ));
    }
    node.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: many}}\nspec:\n  containers:\n{containers}"
    ));
    node.wait_pod("many", SECS(30), "Ready", ready).await;
    let t0 = now_ns();
    // Observe one minute of probing.
    node.wait_pod("many", SECS(70), "a minute of probes", |_| {
        now_ns() - t0 >= 60_000_000_000
    })
    .await;
    let records = node.records();
    let pod = node.pod("many").unwrap();
    for i in 0..20 {
        let name = format!("c{i}");
        assert_eq!(
            container_status(&pod, &name).restart_count,
            0,
            "{name} restarted"
        );
        for kind in ["readiness", "liveness"] {
            let runs: Vec<(u128, u128)> = {
                let mine: Vec<_> = records
                    .iter()
                    .filter(|r| r.name == name && r.event == "hook" && r.get("name") == Some(kind))
                    .collect();
                let mut runs: Vec<(u128, u128)> = mine
                    .iter()
                    .filter(|r| r.get("phase") == Some("start"))
                    .filter(|r| r.time_ns >= t0 && r.time_ns < t0 + 60_000_000_000)
                    .filter_map(|start| {
                        let end = mine.iter().find(|e| {
                            e.get("phase") == Some("end") && e.get("pid") == start.get("pid")
                        })?;
                        Some((start.time_ns, end.time_ns))
                    })
                    .collect();
                runs.sort_unstable();
                runs
            };
            assert!(
                (58..=61).contains(&runs.len()),
                "{name} {kind}: {} runs in 60 s, want 60",
                runs.len()
            );
            for w in runs.windows(2) {
                assert!(w[1].0 > w[0].1, "{name} {kind}: runs overlap");
                let gap = (w[1].0 - w[0].0) as f64 / 1e9;
                assert!(
                    gap < 1.9,
                    "{name} {kind}: a run was missed ({gap:.2}s between runs)"
                );
            }
        }
    }
    node.stop().await;
}

/// PR-20 "should *not* be restarted with a GRPC liveness probe" / "should be restarted with a
/// GRPC liveness probe" (the test app serves `grpc.health.v1.Health`, NOT_SERVING once
/// unhealthy).
#[tokio::test]
async fn pr_20_grpc_liveness() {
    let node = TestNode::start().await;
    let counter = recording_probe("readiness", "");
    node.apply(&pod(
        30,
        "Always",
        "",
        &format!(
            "    livenessProbe:\n      grpc: {{port: 8080}}\n      initialDelaySeconds: 1\n      periodSeconds: 1\n      failureThreshold: 1\n    readinessProbe:\n      {counter}\n      periodSeconds: 1"
        ),
    ));
    node.wait_pod("p", SECS(20), "probed 4 times", |_| {
        probe_runs(&node, "readiness") >= 4
    })
    .await;
    assert_eq!(restarts(&node.pod("p").unwrap()), 0, "SERVING: no restart");
    node.stop().await;

    let node = TestNode::start().await;
    node.apply(&pod(
        30,
        "Always",
        r#", "--healthy-for", "2""#,
        "    livenessProbe:\n      grpc: {port: 8080}\n      initialDelaySeconds: 1\n      periodSeconds: 1\n      failureThreshold: 1",
    ));
    node.wait_pod("p", SECS(20), "restarted", |p| restarts(p) >= 1)
        .await;
    assert!(
        events_with(
            &node,
            "Unhealthy",
            "Liveness probe failed: service unhealthy (responded with \"NOT_SERVING\")"
        ) >= 1
    );
    node.stop().await;
}
