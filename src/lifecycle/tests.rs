//! Table-driven tests of the pure lifecycle rules, each naming the upstream test it mirrors.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::actions::{back_off_key, back_off_message};
use super::backoff::go_duration;
use super::container::{Instance, container_hash};
use super::grace::stop_window;
use super::ordering::termination_prerequisites;
use super::status::{StatusContext, pod_status};
use super::*;

fn container(name: &str) -> Container {
    Container {
        name: name.to_owned(),
        image: Some("busybox".to_owned()),
        ..Container::default()
    }
}

fn sidecar(name: &str) -> Container {
    Container {
        restart_policy: Some("Always".to_owned()),
        ..container(name)
    }
}

fn pod(init: Vec<Container>, containers: Vec<Container>, restart_policy: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web".to_owned()),
            namespace: Some("default".to_owned()),
            uid: Some("uid-1".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            init_containers: (!init.is_empty()).then_some(init),
            containers,
            restart_policy: Some(restart_policy.to_owned()),
            termination_grace_period_seconds: Some(30),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

fn running(pod: &Pod, name: &str, restart_count: i32) -> Instance {
    let spec = container::container_spec(pod, name).unwrap();
    Instance {
        restart_count,
        spec_hash: container_hash(spec),
        container_id: format!("podvisor://{name}"),
        state: InstanceState::Running {
            pid: 1,
            started_at: Timestamp::UNIX_EPOCH,
            started_mono: Instant::now(),
        },
    }
}

fn exited(pod: &Pod, name: &str, restart_count: i32, code: i32, at: Instant) -> Instance {
    let mut i = running(pod, name, restart_count);
    i.state = InstanceState::Terminated(Terminated {
        exit_code: code,
        signal: None,
        reason: Terminated::reason_for(code, false).to_owned(),
        message: None,
        started_at: Some(Timestamp::UNIX_EPOCH),
        finished_at: Timestamp::UNIX_EPOCH,
        finished_mono: at,
        container_id: format!("podvisor://{name}"),
    });
    i
}

/// U-PW-01 `Test_calculateEffectiveGracePeriod` (current master: an explicit 0 means 1).
#[test]
fn effective_grace_matches_calculate_effective_grace_period() {
    let cases = [
        (None, None, None, Some(30), 30),
        (None, Some(5), None, Some(30), 5),
        (None, Some(5), Some(2), Some(30), 2),
        (None, Some(0), None, Some(30), 1),
        (None, Some(5), Some(0), Some(30), 1),
        (None, None, None, Some(0), 1),
        (None, Some(-3), None, Some(30), 1),
    ];
    for (current, deletion, override_, spec, expected) in cases {
        let (g, _) = effective_pod_grace(current, deletion, override_, spec);
        assert_eq!(
            g, expected,
            "{current:?} {deletion:?} {override_:?} {spec:?}"
        );
    }
}

/// U-PW-02: the grace only shrinks, and a shrink is reported.
#[test]
fn grace_only_shrinks() {
    assert_eq!(
        effective_pod_grace(Some(30), Some(10), None, Some(30)),
        (10, true)
    );
    assert_eq!(
        effective_pod_grace(Some(10), Some(60), None, Some(30)),
        (10, false)
    );
    assert_eq!(
        effective_pod_grace(Some(10), None, Some(1), Some(30)),
        (1, true)
    );
    assert_eq!(
        effective_pod_grace(Some(10), Some(10), None, Some(30)),
        (10, false)
    );
}

/// U-KC-07 `TestKillContainerGracePeriod`.
#[test]
fn kill_grace_matches_set_termination_grace_period() {
    let probe = |g: i64| Probe {
        termination_grace_period_seconds: Some(g),
        ..Probe::default()
    };
    let mut p = pod(vec![], vec![container("c")], "Always");
    p.spec.as_mut().unwrap().termination_grace_period_seconds = None;
    let c = container("c");
    assert_eq!(
        container_kill_grace(&p, &c, KillReason::Unknown),
        2,
        "no pod tGPS"
    );

    p.spec.as_mut().unwrap().termination_grace_period_seconds = Some(60);
    assert_eq!(container_kill_grace(&p, &c, KillReason::LivenessProbe), 60);

    let liveness = Container {
        liveness_probe: Some(probe(100)),
        ..container("c")
    };
    assert_eq!(
        container_kill_grace(&p, &liveness, KillReason::LivenessProbe),
        100
    );
    assert_eq!(container_kill_grace(&p, &liveness, KillReason::Unknown), 60);

    let startup = Container {
        startup_probe: Some(probe(10)),
        ..container("c")
    };
    assert_eq!(
        container_kill_grace(&p, &startup, KillReason::StartupProbe),
        10
    );

    p.metadata.deletion_grace_period_seconds = Some(7);
    assert_eq!(
        container_kill_grace(&p, &liveness, KillReason::LivenessProbe),
        7
    );
}

/// Spec §1.6: preStop time is subtracted in whole seconds, then the 2 s floor.
#[test]
fn stop_window_truncates_and_floors() {
    assert_eq!(stop_window(30, 10), 20);
    assert_eq!(stop_window(30, 29), 2);
    assert_eq!(stop_window(30, 30), 2);
    assert_eq!(stop_window(1, 0), 2);
}

/// Spec §5.2: delays 0, 10, 20, 40, 80, 160, 300, 300 measured from the exit.
#[test]
fn crash_loop_back_off_sequence() {
    let mut b = Backoff::default();
    let t0 = Instant::now();
    let key = "k";
    let mut now = t0;
    let mut delays = Vec::new();
    for _ in 0..9 {
        let exit = now;
        let delay = match b.in_back_off_since(key, exit, exit) {
            Some((d, until)) => {
                assert_eq!(until, exit + d);
                d
            }
            None => Duration::ZERO,
        };
        delays.push(delay.as_secs());
        now = exit + delay;
        assert!(b.in_back_off_since(key, exit, now).is_none());
        b.next(key, exit, now);
        now += Duration::from_secs(1); // runs for 1 s, then crashes again
    }
    assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
}

/// Spec §5.2: a container that ran for more than 600 s restarts at once, then 10 s again.
#[test]
fn back_off_resets_after_long_run() {
    let mut b = Backoff::default();
    let t0 = Instant::now();
    b.next("k", t0, t0);
    b.next(
        "k",
        t0 + Duration::from_secs(1),
        t0 + Duration::from_secs(11),
    );
    let exit = t0 + Duration::from_secs(11 + 601);
    assert!(b.in_back_off_since("k", exit, exit).is_none());
    b.next("k", exit, exit);
    let exit2 = exit + Duration::from_secs(1);
    assert_eq!(
        b.in_back_off_since("k", exit2, exit2).unwrap().0.as_secs(),
        10
    );
}

/// KEP-4603: a lower maximum also lowers the initial delay.
#[test]
fn back_off_maximum_flag() {
    let mut b = Backoff::new(Duration::from_secs(2));
    let t0 = Instant::now();
    b.next("k", t0, t0);
    assert_eq!(
        b.in_back_off_since("k", t0, t0).unwrap().0,
        Duration::from_secs(2)
    );
    b.next("k", t0, t0 + Duration::from_secs(2));
    assert_eq!(
        b.in_back_off_since(
            "k",
            t0 + Duration::from_secs(2),
            t0 + Duration::from_secs(2)
        )
        .unwrap()
        .0,
        Duration::from_secs(2)
    );
}

#[test]
fn go_duration_format() {
    assert_eq!(go_duration(Duration::from_secs(10)), "10s");
    assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
    assert_eq!(go_duration(Duration::from_secs(160)), "2m40s");
    assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
}

#[test]
fn back_off_waiting_message() {
    let p = pod(vec![], vec![container("app")], "Always");
    assert_eq!(
        back_off_message(&p, "app", Duration::from_secs(20)),
        "back-off 20s restarting failed container=app pod=web_default(uid-1)"
    );
}

/// `ShouldContainerBeRestarted`.
#[test]
fn restart_policy_decisions() {
    assert!(should_container_be_restarted("Always", 0));
    assert!(should_container_be_restarted("Always", 1));
    assert!(!should_container_be_restarted("OnFailure", 0));
    assert!(should_container_be_restarted("OnFailure", 137));
    assert!(!should_container_be_restarted("Never", 1));
}

#[test]
fn starts_containers_in_order_and_keeps_running_ones() {
    let p = pod(vec![], vec![container("a"), container("b")], "Always");
    let mut obs = PodObservation::for_pod(&p);
    let now = Instant::now();
    let b = Backoff::default();
    let actions = compute_pod_actions(&p, &obs, &b, now);
    assert_eq!(actions.start, ["a", "b"]);
    obs.get_mut("a").unwrap().current = Some(running(&p, "a", 0));
    let actions = compute_pod_actions(&p, &obs, &b, now);
    assert_eq!(actions.start, ["b"]);
    assert!(!actions.kill_pod);
}

#[test]
fn crashed_container_backs_off_on_second_crash() {
    let p = pod(vec![], vec![container("a")], "Always");
    let mut obs = PodObservation::for_pod(&p);
    let mut b = Backoff::default();
    let t0 = Instant::now();
    obs.get_mut("a").unwrap().current = Some(exited(&p, "a", 0, 1, t0));
    let actions = compute_pod_actions(&p, &obs, &b, t0);
    assert_eq!(actions.start, ["a"], "first crash restarts at once");
    let key = back_off_key(&p, "a", container_hash(&container("a")));
    b.next(&key, t0, t0);
    let t1 = t0 + Duration::from_secs(1);
    obs.get_mut("a").unwrap().current = Some(exited(&p, "a", 1, 1, t1));
    let actions = compute_pod_actions(&p, &obs, &b, t1);
    assert!(actions.start.is_empty());
    assert_eq!(actions.back_off.len(), 1);
    assert_eq!(actions.back_off[0].until, t1 + Duration::from_secs(10));
    assert_eq!(actions.next_wake(), Some(t1 + Duration::from_secs(10)));
}

#[test]
fn pod_done_when_nothing_restarts() {
    let now = Instant::now();
    let b = Backoff::default();
    for (policy, code, done) in [
        ("Never", 1, true),
        ("Never", 0, true),
        ("OnFailure", 0, true),
        ("OnFailure", 1, false),
        ("Always", 0, false),
    ] {
        let p = pod(vec![], vec![container("a")], policy);
        let mut obs = PodObservation::for_pod(&p);
        obs.get_mut("a").unwrap().current = Some(exited(&p, "a", 0, code, now));
        let actions = compute_pod_actions(&p, &obs, &b, now);
        assert_eq!(actions.kill_pod, done, "{policy} exit {code}");
    }
}

/// CLC-01: init containers run one at a time, before regular containers.
#[test]
fn init_containers_run_serially() {
    let p = pod(
        vec![container("init-1"), container("init-2")],
        vec![container("regular-1")],
        "Always",
    );
    let mut obs = PodObservation::for_pod(&p);
    let now = Instant::now();
    let b = Backoff::default();
    assert_eq!(compute_pod_actions(&p, &obs, &b, now).start, ["init-1"]);
    obs.get_mut("init-1").unwrap().current = Some(running(&p, "init-1", 0));
    assert!(compute_pod_actions(&p, &obs, &b, now).start.is_empty());
    obs.get_mut("init-1").unwrap().current = Some(exited(&p, "init-1", 0, 0, now));
    assert_eq!(compute_pod_actions(&p, &obs, &b, now).start, ["init-2"]);
    obs.get_mut("init-2").unwrap().current = Some(exited(&p, "init-2", 0, 0, now));
    assert_eq!(compute_pod_actions(&p, &obs, &b, now).start, ["regular-1"]);
}

/// CLC-02 / DEL-07: a failed init container with restartPolicy Never fails the pod.
#[test]
fn failed_init_container_with_never_kills_pod() {
    let p = pod(
        vec![container("init-1")],
        vec![container("regular-1")],
        "Never",
    );
    let mut obs = PodObservation::for_pod(&p);
    let now = Instant::now();
    obs.get_mut("init-1").unwrap().current = Some(exited(&p, "init-1", 0, 1, now));
    let actions = compute_pod_actions(&p, &obs, &Backoff::default(), now);
    assert!(actions.kill_pod);
    assert!(actions.start.is_empty());
}

/// SC-01: a sidecar must be started before the next init container.
#[test]
fn sidecar_started_before_next_init() {
    let p = pod(
        vec![
            container("init1"),
            sidecar("restartable1"),
            container("init2"),
        ],
        vec![container("regular1")],
        "Never",
    );
    let mut obs = PodObservation::for_pod(&p);
    let now = Instant::now();
    let b = Backoff::default();
    obs.get_mut("init1").unwrap().current = Some(exited(&p, "init1", 0, 0, now));
    assert_eq!(
        compute_pod_actions(&p, &obs, &b, now).start,
        ["restartable1"]
    );
    obs.get_mut("restartable1").unwrap().current = Some(running(&p, "restartable1", 0));
    assert!(
        compute_pod_actions(&p, &obs, &b, now).start.is_empty(),
        "not started yet"
    );
    obs.get_mut("restartable1").unwrap().started = true;
    assert_eq!(compute_pod_actions(&p, &obs, &b, now).start, ["init2"]);
    obs.get_mut("init2").unwrap().current = Some(exited(&p, "init2", 0, 0, now));
    assert_eq!(compute_pod_actions(&p, &obs, &b, now).start, ["regular1"]);
    // The main container completes: the pod is done although the sidecar runs.
    obs.get_mut("regular1").unwrap().current = Some(exited(&p, "regular1", 0, 0, now));
    assert!(compute_pod_actions(&p, &obs, &b, now).kill_pod);
}

/// SC-05 / U-TO-02: sidecars wait for main containers and for later sidecars.
#[test]
fn termination_prerequisites_reverse_order() {
    let p = pod(
        vec![sidecar("sc1"), sidecar("sc2"), sidecar("sc3")],
        vec![container("main")],
        "Always",
    );
    let obs = PodObservation::for_pod(&p);
    let mut pre = termination_prerequisites(&obs).unwrap();
    pre.sort();
    assert_eq!(
        pre,
        vec![
            ("main".to_owned(), vec![]),
            ("sc1".to_owned(), vec!["main".to_owned(), "sc2".to_owned()]),
            ("sc2".to_owned(), vec!["main".to_owned(), "sc3".to_owned()]),
            ("sc3".to_owned(), vec!["main".to_owned()]),
        ]
    );
    let plain = pod(vec![], vec![container("main")], "Always");
    assert!(termination_prerequisites(&PodObservation::for_pod(&plain)).is_none());
}

fn ctx(terminal: bool) -> StatusContext<'static> {
    StatusContext {
        pod_ip: Some("127.10.0.1"),
        host_ip: "127.0.0.1",
        start_time: None,
        pod_is_terminal: terminal,
        previous: None,
        reason: None,
        now: Timestamp::UNIX_EPOCH,
    }
}

/// Spec §7.1: a deleted pod is Succeeded iff every regular container exited 0.
#[test]
fn phase_of_terminated_pods() {
    let now = Instant::now();
    for (code, phase) in [(0, "Succeeded"), (143, "Failed"), (137, "Failed")] {
        let p = pod(vec![], vec![container("a")], "Always");
        let mut obs = PodObservation::for_pod(&p);
        obs.get_mut("a").unwrap().current = Some(exited(&p, "a", 0, code, now));
        let status = pod_status(&p, &obs, &ctx(true));
        assert_eq!(status.phase.as_deref(), Some(phase), "exit {code}");
    }
}

#[test]
fn phase_and_waiting_reasons_while_starting() {
    let p = pod(vec![], vec![container("a")], "Always");
    let mut obs = PodObservation::for_pod(&p);
    let status = pod_status(&p, &obs, &ctx(false));
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let cs = &status.container_statuses.as_ref().unwrap()[0];
    let waiting = cs.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("ContainerCreating"));

    // postStart running: still Waiting/ContainerCreating, not started, pod Pending (HOOK-X5).
    let mut inst = running(&p, "a", 0);
    inst.state = InstanceState::Starting {
        pid: 1,
        started_at: Timestamp::UNIX_EPOCH,
    };
    obs.get_mut("a").unwrap().current = Some(inst);
    let status = pod_status(&p, &obs, &ctx(false));
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let cs = &status.container_statuses.as_ref().unwrap()[0];
    assert_eq!(cs.started, Some(false));
    assert!(cs.state.as_ref().unwrap().waiting.is_some());

    obs.get_mut("a").unwrap().current = Some(running(&p, "a", 0));
    obs.get_mut("a").unwrap().started = true;
    obs.get_mut("a").unwrap().ready = true;
    let status = pod_status(&p, &obs, &ctx(false));
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let ready = status
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
}

#[test]
fn crash_loop_shows_waiting_with_last_state() {
    let p = pod(vec![], vec![container("a")], "Always");
    let mut obs = PodObservation::for_pod(&p);
    let now = Instant::now();
    let c = obs.get_mut("a").unwrap();
    c.current = Some(exited(&p, "a", 3, 1, now));
    c.start_failure = Some(StartFailure {
        reason: "CrashLoopBackOff".to_owned(),
        message: "back-off 40s restarting failed container=a pod=web_default(uid-1)".to_owned(),
    });
    let status = pod_status(&p, &obs, &ctx(false));
    let cs = &status.container_statuses.as_ref().unwrap()[0];
    assert_eq!(cs.restart_count, 3);
    let state = cs.state.as_ref().unwrap();
    assert_eq!(
        state.waiting.as_ref().unwrap().reason.as_deref(),
        Some("CrashLoopBackOff")
    );
    let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(last.exit_code, 1);
    // Always + every container restarting → Running (getPhase).
    assert_eq!(status.phase.as_deref(), Some("Running"));
}

#[test]
fn terminal_phase_is_sticky() {
    let p = pod(vec![], vec![container("a")], "Never");
    let mut obs = PodObservation::for_pod(&p);
    let now = Instant::now();
    obs.get_mut("a").unwrap().current = Some(exited(&p, "a", 0, 0, now));
    let first = pod_status(&p, &obs, &ctx(false));
    assert_eq!(first.phase.as_deref(), Some("Succeeded"));
    obs.get_mut("a").unwrap().current = Some(running(&p, "a", 1));
    let mut c = ctx(false);
    c.previous = Some(&first);
    let second = pod_status(&p, &obs, &c);
    assert_eq!(second.phase.as_deref(), Some("Succeeded"));
}
