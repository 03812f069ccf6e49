//! Init containers and native sidecars: spec §10.5 (CLC-01..06, SC-01..09) and §6.2.

use crate::harness::*;

/// A testapp container entry; `args` are extra serve flags, `extra` more YAML.
fn app(name: &str, args: &str, extra: &str) -> String {
    format!(
        r#"  - name: {name}
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "{name}", "--record", "$RECORD", "--port", "0"{args}]
{extra}"#
    )
}

fn sidecar(name: &str, args: &str, extra: &str) -> String {
    app(name, args, &format!("    restartPolicy: Always\n{extra}"))
}

fn pod(restart_policy: &str, grace: i64, init: &[String], containers: &[String]) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  restartPolicy: {restart_policy}\n  terminationGracePeriodSeconds: {grace}\n  initContainers:\n{}\n  containers:\n{}\n",
        init.join("\n"),
        containers.join("\n")
    )
}

/// The time of the first record `event` of `name`.
fn at(records: &[Record], name: &str, event: &str) -> u128 {
    records
        .iter()
        .find(|r| r.is(name, event))
        .unwrap_or_else(|| panic!("no {event} record for {name}"))
        .time_ns
}

/// CLC-01 "should launch init container serially before a regular container" and CLC-03
/// "should run Init container to completion before call to PostStart of regular container".
#[tokio::test]
async fn clc_01_03_init_containers_run_serially() {
    let node = TestNode::start().await;
    let quick = r#", "--exit-after", "0.3""#;
    let post_start = r#"    lifecycle:
      postStart:
        exec: {command: ["$TESTAPP", "hook", "poststart", "--name", "regular-1", "--record", "$RECORD"]}
"#;
    node.apply(&pod(
        "Never",
        5,
        &[
            app("init-1", quick, ""),
            app("init-2", quick, ""),
            app("init-3", quick, ""),
        ],
        &[app("regular-1", quick, post_start)],
    ));
    node.wait_phase("p", "Succeeded", SECS(20)).await;
    let r = node.records();
    assert!(at(&r, "init-1", "exiting") < at(&r, "init-2", "started"));
    assert!(at(&r, "init-2", "exiting") < at(&r, "init-3", "started"));
    assert!(at(&r, "init-3", "exiting") < at(&r, "regular-1", "started"));
    assert!(at(&r, "init-3", "exiting") < at(&r, "regular-1", "hook"));
    let p = node.pod("p").unwrap();
    let conditions = p.status.as_ref().unwrap().conditions.as_ref().unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Initialized" && c.status == "True")
    );
    node.stop().await;
}

/// CLC-02 / DEL-07 "should not launch regular containers if an init container fails" and
/// SC-03 (a sidecar after the failing init container never starts).
#[tokio::test]
async fn clc_02_sc_03_failed_init_fails_the_pod() {
    let node = TestNode::start().await;
    node.apply(&pod(
        "Never",
        5,
        &[
            app(
                "init-1",
                r#", "--exit-after", "0.1", "--exit-code", "1""#,
                "",
            ),
            sidecar("restartable-1", "", ""),
        ],
        &[app("regular-1", "", "")],
    ));
    let p = node.wait_phase("p", "Failed", SECS(10)).await;
    assert_eq!(terminated(&p, "init-1"), Some((1, "Error".to_owned())));
    let r = node.records();
    assert!(
        !r.iter().any(|r| r.is("regular-1", "started")),
        "regular never started"
    );
    assert!(
        !r.iter().any(|r| r.is("restartable-1", "started")),
        "sidecar never started"
    );
    let cs = container_status(&p, "regular-1");
    assert_eq!(cs.started, Some(false));
    assert!(cs.state.as_ref().unwrap().waiting.is_some());
    node.stop().await;
}

/// CLC-06 "should not restart init container when regular container restarts".
#[tokio::test]
async fn clc_06_init_not_rerun_when_regular_restarts() {
    let node = TestNode::start_with(NodeOptions {
        max_backoff: SECS(1),
        ..NodeOptions::default()
    })
    .await;
    node.apply(&pod(
        "Always",
        5,
        &[app("init-1", r#", "--exit-after", "0.1""#, "")],
        &[app(
            "regular-1",
            r#", "--exit-after", "0.2", "--exit-code", "1""#,
            "",
        )],
    ));
    node.wait_pod("p", SECS(20), "regular restarted twice", |p| {
        restart_count(p, "regular-1") >= 2
    })
    .await;
    let starts = node
        .records()
        .iter()
        .filter(|r| r.is("init-1", "started"))
        .count();
    assert_eq!(starts, 1, "the init container ran once");
    node.stop().await;
}

/// SC-01 "should launch restartable init containers before starting the next init
/// container / regular containers": init1 → restartable1 (Started, per its startup probe) →
/// init2 → restartable2 → init3 → regular1; the pod Succeeds when regular1 exits 0 and the
/// sidecars are stopped (their exit codes ignored).
#[tokio::test]
async fn sc_01_start_order_and_completion() {
    let node = TestNode::start().await;
    let quick = r#", "--exit-after", "0.2""#;
    let startup = "    startupProbe:\n      exec: {command: ['true']}\n      periodSeconds: 1\n";
    node.apply(&pod(
        "Never",
        5,
        &[
            app("init1", quick, ""),
            sidecar("restartable1", r#", "--on-signal", "TERM=exit:3""#, startup),
            app("init2", quick, ""),
            sidecar("restartable2", "", ""),
            app("init3", quick, ""),
        ],
        &[app("regular1", r#", "--exit-after", "0.5""#, "")],
    ));
    let p = node.wait_phase("p", "Succeeded", SECS(20)).await;
    let r = node.records();
    let order = [
        "init1",
        "restartable1",
        "init2",
        "restartable2",
        "init3",
        "regular1",
    ];
    for w in order.windows(2) {
        assert!(
            at(&r, w[0], "started") < at(&r, w[1], "started"),
            "{} before {}",
            w[0],
            w[1]
        );
    }
    assert!(at(&r, "init1", "exiting") < at(&r, "restartable1", "started"));
    assert!(at(&r, "init3", "exiting") < at(&r, "regular1", "started"));
    // Sidecars were stopped after regular1 exited, last-declared first.
    let regular_exit = at(&r, "regular1", "exiting");
    assert!(regular_exit < at(&r, "restartable2", "exiting"));
    assert!(at(&r, "restartable2", "exiting") < at(&r, "restartable1", "exiting"));
    assert_eq!(
        terminated(&p, "restartable1").unwrap().0,
        3,
        "exit code kept, ignored for the phase"
    );
    node.stop().await;
}

/// SC-02 "should restart a restartable init container" whatever the pod's restartPolicy.
#[tokio::test]
async fn sc_02_sidecar_restarts_even_with_never() {
    let node = TestNode::start_with(NodeOptions {
        max_backoff: SECS(1),
        ..NodeOptions::default()
    })
    .await;
    node.apply(&pod(
        "Never",
        5,
        &[sidecar("restartable1", r#", "--exit-after", "0.3""#, "")],
        &[app("regular1", "", "")],
    ));
    node.wait_pod("p", SECS(20), "sidecar restarted twice", |p| {
        restart_count(p, "restartable1") >= 2
    })
    .await;
    assert_eq!(phase_of(&node.pod("p").unwrap()), "Running");
    node.stop().await;
}

/// SC-04 "should call sidecar container PreStop hook and restart it if its startup/liveness
/// probe fails" (pod restartPolicy Never).
#[tokio::test]
async fn sc_04_sidecar_probe_failure_pre_stop_and_restart() {
    let node = TestNode::start_with(NodeOptions {
        max_backoff: SECS(1),
        ..NodeOptions::default()
    })
    .await;
    let extra = r#"    livenessProbe:
      exec: {command: ['false']}
      periodSeconds: 1
      failureThreshold: 1
    lifecycle:
      preStop:
        exec: {command: ["$TESTAPP", "hook", "prestop", "--name", "restartable1", "--record", "$RECORD"]}
"#;
    node.apply(&pod(
        "Never",
        5,
        &[sidecar("restartable1", "", extra)],
        &[app("regular1", "", "")],
    ));
    node.wait_pod("p", SECS(20), "sidecar restarted", |p| {
        restart_count(p, "restartable1") >= 1
    })
    .await;
    assert!(
        node.records().iter().any(|r| r.is("restartable1", "hook")),
        "preStop ran"
    );
    assert!(node.has_event(
        "p",
        "Killing",
        "Init container restartable1 failed liveness probe"
    ));
    node.stop().await;
}

/// SC-05 "should terminate sidecars in reverse order after all main containers have exited"
/// and SC-07 "should call sidecar container PreStop hook simultaneously".
#[tokio::test]
async fn sc_05_07_reverse_order_and_simultaneous_pre_stops() {
    let node = TestNode::start().await;
    let pre_stop = |name: &str| {
        format!(
            r#"    lifecycle:
      preStop:
        exec: {{command: ["$TESTAPP", "hook", "prestop", "--name", "{name}", "--record", "$RECORD", "--sleep", "0.5"]}}
"#
        )
    };
    let slow_exit = r#", "--on-signal", "TERM=drain:0.5""#;
    node.apply(&pod(
        "Always",
        30,
        &[
            sidecar("sc1", slow_exit, &pre_stop("sc1")),
            sidecar("sc2", slow_exit, &pre_stop("sc2")),
            sidecar("sc3", slow_exit, &pre_stop("sc3")),
        ],
        &[app("main", slow_exit, &pre_stop("main"))],
    ));
    node.wait_running("p", SECS(15)).await;
    node.wait_record(SECS(10), "main started", |r| r.is("main", "started"))
        .await;
    node.delete("p", None);
    node.wait_gone("p", SECS(20)).await;
    let r = node.records();
    let pre_stops: Vec<u128> = ["main", "sc1", "sc2", "sc3"]
        .iter()
        .map(|n| at(&r, n, "hook"))
        .collect();
    let spread = (pre_stops.iter().max().unwrap() - pre_stops.iter().min().unwrap()) as f64 / 1e9;
    assert!(spread < 0.5, "preStops spread over {spread:.3}s");
    let exits: Vec<u128> = ["main", "sc3", "sc2", "sc1"]
        .iter()
        .map(|n| at(&r, n, "exiting"))
        .collect();
    assert!(
        exits.windows(2).all(|w| w[0] < w[1]),
        "exit order main, sc3, sc2, sc1"
    );
    node.stop().await;
}

/// SC-06 "should terminate sidecars simultaneously if prestop doesn't exit": with hanging
/// preStops and apps ignoring SIGTERM, everything dies at grace + 2 s, together.
#[tokio::test]
async fn sc_06_hanging_pre_stops_end_together_at_grace_plus_two() {
    let node = TestNode::start().await;
    let hang = |name: &str| {
        format!(
            r#"    lifecycle:
      preStop:
        exec: {{command: ["$TESTAPP", "hook", "prestop", "--name", "{name}", "--record", "$RECORD", "--sleep", "1000", "--ignore-term"]}}
"#
        )
    };
    let ignore = r#", "--on-signal", "TERM=ignore""#;
    node.apply(&pod(
        "Always",
        3,
        &[
            sidecar("sc1", ignore, &hang("sc1")),
            sidecar("sc2", ignore, &hang("sc2")),
        ],
        &[app("main", ignore, &hang("main"))],
    ));
    node.wait_running("p", SECS(15)).await;
    node.wait_record(SECS(10), "main started", |r| r.is("main", "started"))
        .await;
    let records = node.records();
    let watches: Vec<_> = ["main", "sc1", "sc2"]
        .iter()
        .map(|n| {
            let started = records
                .iter()
                .find(|r| r.is(n, "started"))
                .expect("started");
            death_watch(pid_of(started))
        })
        .collect();
    let t0 = now_ns();
    node.delete("p", None);
    node.wait_gone("p", SECS(15)).await;
    let mut deaths = Vec::new();
    for w in watches {
        deaths.push((w.await.unwrap() - t0) as f64 / 1e9);
    }
    for d in &deaths {
        assert!(
            (5.0..5.5).contains(d),
            "died at {d:.3}s, want grace 3 + 2 s: {deaths:?}"
        );
    }
    let spread = deaths.iter().cloned().fold(0.0, f64::max)
        - deaths.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread < 0.5, "spread {spread:.3}s");
    node.stop().await;
}

/// SC-08 "should not hang in termination if terminated during initialization".
#[tokio::test]
async fn sc_08_delete_during_initialization() {
    let node = TestNode::start().await;
    let slow_start = "    startupProbe:\n      exec: {command: [cat, /nonexistent/ready]}\n      periodSeconds: 1\n      failureThreshold: 600\n";
    node.apply(&pod(
        "Always",
        3,
        &[
            sidecar("restartable1", "", slow_start),
            app("init2", "", ""),
        ],
        &[app("regular1", "", "")],
    ));
    node.wait_record(SECS(10), "sidecar started", |r| {
        r.is("restartable1", "started")
    })
    .await;
    let t0 = now_ns();
    node.delete("p", Some(3));
    node.wait_gone("p", SECS(10)).await;
    let secs = (now_ns() - t0) as f64 / 1e9;
    assert!(
        secs < 5.0,
        "termination during initialization took {secs:.1}s"
    );
    node.stop().await;
}

/// SC-09: a sidecar whose liveness fails during pod termination is not restarted.
#[tokio::test]
async fn sc_09_no_sidecar_restart_during_termination() {
    let node = TestNode::start().await;
    let marker = "$DIR/terminating";
    let extra = format!(
        r#"    livenessProbe:
      exec: {{command: [sh, -c, "test ! -e {marker}"]}}
      periodSeconds: 1
      failureThreshold: 1
"#
    );
    let main_pre_stop = format!(
        r#"    lifecycle:
      preStop:
        exec: {{command: [sh, -c, "touch {marker}; sleep 3"]}}
"#
    );
    node.apply(&pod(
        "Always",
        10,
        &[sidecar("sc1", "", &extra)],
        &[app("main", "", &main_pre_stop)],
    ));
    node.wait_running("p", SECS(15)).await;
    node.wait_record(SECS(10), "main started", |r| r.is("main", "started"))
        .await;
    node.delete("p", None);
    node.wait_gone("p", SECS(20)).await;
    let starts = node
        .records()
        .iter()
        .filter(|r| r.is("sc1", "started"))
        .count();
    assert_eq!(
        starts, 1,
        "the sidecar was not restarted during termination"
    );
    assert!(!node.has_event("p", "Killing", "failed liveness probe"));
    node.stop().await;
}
