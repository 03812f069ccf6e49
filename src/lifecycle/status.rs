//! The API pod status computed from observations: `generateAPIPodStatus` and
//! `convertToAPIContainerStatuses` (spec §2.2, §5.3, §7).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::container::{
    ContainerKind, ContainerObservation, InstanceState, PodObservation, Terminated,
};
use super::phase::get_phase;

/// Inputs of a status computation besides the observation.
pub struct StatusContext<'a> {
    /// The pod's IP once its "sandbox" exists (the address is allocated).
    pub pod_ip: Option<&'a str>,
    /// The node address.
    pub host_ip: &'a str,
    /// When the node accepted the pod (`status.startTime`).
    pub start_time: Option<Timestamp>,
    /// The node finished terminating the pod: no process of it remains.
    pub pod_is_terminal: bool,
    /// The status this computation replaces, for condition transition times and sticky phases.
    pub previous: Option<&'a PodStatus>,
    /// A pod-level reason and message to set (node shutdown: `Terminated`, …).
    pub reason: Option<(&'a str, &'a str)>,
    pub now: Timestamp,
}

/// The full API status of `pod`.
pub fn pod_status(pod: &Pod, observed: &PodObservation, ctx: &StatusContext<'_>) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let has_init = spec.init_containers.as_ref().is_some_and(|v| !v.is_empty());
    let image_of = |name: &str| {
        super::container::container_spec(pod, name)
            .and_then(|c| c.image.clone())
            .unwrap_or_default()
    };
    let mut init_statuses = Vec::new();
    let mut statuses = Vec::new();
    for c in &observed.containers {
        let s = container_status(c, &image_of(&c.name), has_init, ctx.pod_is_terminal);
        if c.kind.is_init_list() {
            init_statuses.push(s);
        } else {
            statuses.push(s);
        }
    }

    let previous_phase = ctx.previous.and_then(|p| p.phase.as_deref());
    let mut phase = get_phase(&spec, &init_statuses, &statuses, ctx.pod_is_terminal);
    // Pods are not allowed to transition out of terminal phases.
    if let Some(p @ ("Succeeded" | "Failed")) = previous_phase {
        phase = if p == "Succeeded" {
            "Succeeded"
        } else {
            "Failed"
        };
    }
    if ctx.reason.is_some() {
        // Node shutdown marks pods Failed from its start, as the kubelet's shutdown manager
        // does in the status it sets before killing.
        phase = "Failed";
    }

    let all: Vec<&ContainerStatus> = init_statuses
        .iter()
        .filter(|s| {
            observed
                .get(&s.name)
                .is_some_and(|c| c.kind == ContainerKind::Sidecar)
        })
        .chain(statuses.iter())
        .collect();
    let terminal_phase = matches!(phase, "Succeeded" | "Failed");
    let mut conditions = Vec::new();
    conditions.push(condition(
        "PodReadyToStartContainers",
        ctx.pod_ip.is_some() && !ctx.pod_is_terminal,
        None,
        ctx,
    ));
    let incomplete_init: Vec<&str> = observed
        .containers
        .iter()
        .filter(|c| c.kind.is_init_list() && !init_complete(c))
        .map(|c| c.name.as_str())
        .collect();
    let initialized = incomplete_init.is_empty()
        || observed
            .containers
            .iter()
            .any(|c| c.kind == ContainerKind::Regular && c.current.is_some());
    conditions.push(condition(
        "Initialized",
        initialized,
        (!initialized).then(|| {
            (
                "ContainersNotInitialized".to_owned(),
                format!(
                    "containers with incomplete status: [{}]",
                    incomplete_init.join(" ")
                ),
            )
        }),
        ctx,
    ));
    let unready: Vec<&str> = all
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let containers_ready = unready.is_empty() && !terminal_phase;
    let not_ready_reason = if terminal_phase {
        Some(("PodCompleted".to_owned(), String::new()))
    } else if !unready.is_empty() {
        Some((
            "ContainersNotReady".to_owned(),
            format!("containers with unready status: [{}]", unready.join(" ")),
        ))
    } else {
        None
    };
    conditions.push(condition(
        "Ready",
        containers_ready,
        not_ready_reason.clone(),
        ctx,
    ));
    conditions.push(condition(
        "ContainersReady",
        containers_ready,
        not_ready_reason,
        ctx,
    ));
    conditions.push(condition("PodScheduled", true, None, ctx));

    let (reason, message) = match ctx.reason {
        Some((r, m)) => (Some(r.to_owned()), Some(m.to_owned())),
        None if previous_phase == Some(phase) => (
            ctx.previous.and_then(|p| p.reason.clone()),
            ctx.previous.and_then(|p| p.message.clone()),
        ),
        None => (None, None),
    };

    PodStatus {
        phase: Some(phase.to_owned()),
        conditions: Some(conditions),
        host_ip: Some(ctx.host_ip.to_owned()),
        host_ips: Some(vec![HostIP {
            ip: ctx.host_ip.to_owned(),
        }]),
        pod_ip: ctx.pod_ip.map(str::to_owned),
        pod_ips: ctx.pod_ip.map(|ip| vec![PodIP { ip: ip.to_owned() }]),
        start_time: ctx.start_time.map(Time),
        init_container_statuses: has_init.then_some(init_statuses),
        container_statuses: Some(statuses),
        qos_class: Some(qos_class(pod).to_owned()),
        reason,
        message,
        ..PodStatus::default()
    }
}

/// A regular init container completed, or a sidecar started.
fn init_complete(c: &ContainerObservation) -> bool {
    match c.kind {
        ContainerKind::Init => c.terminated().is_some_and(|t| t.exit_code == 0),
        ContainerKind::Sidecar => c.started,
        ContainerKind::Regular => true,
    }
}

/// One container's API status.
pub fn container_status(
    c: &ContainerObservation,
    image: &str,
    pod_has_init: bool,
    pod_is_terminal: bool,
) -> ContainerStatus {
    let default_waiting = if pod_has_init {
        "PodInitializing"
    } else {
        "ContainerCreating"
    };
    let waiting = |reason: &str, message: Option<&str>| ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_owned()),
            message: message.map(str::to_owned),
        }),
        ..ContainerState::default()
    };
    let mut last_state = c.previous.as_ref().map(terminated_state);
    let (state, container_id, restart_count) = match c.current.as_ref() {
        None => match &c.start_failure {
            Some(f) => (waiting(&f.reason, Some(&f.message)), None, 0),
            None => (waiting(default_waiting, None), None, 0),
        },
        Some(instance) => {
            let id = Some(instance.container_id.clone());
            match &instance.state {
                InstanceState::Starting { .. } => {
                    (waiting(default_waiting, None), id, instance.restart_count)
                }
                InstanceState::Running { started_at, .. } => (
                    ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: Some(Time(*started_at)),
                        }),
                        ..ContainerState::default()
                    },
                    id,
                    instance.restart_count,
                ),
                InstanceState::Terminated(t) => match (&c.start_failure, pod_is_terminal) {
                    // Waiting to restart: the last run becomes lastState.
                    (Some(f), false) => {
                        last_state = Some(terminated_state(t));
                        (
                            waiting(&f.reason, Some(&f.message)),
                            id,
                            instance.restart_count,
                        )
                    }
                    _ => (terminated_state(t), id, instance.restart_count),
                },
            }
        }
    };
    let running = state.running.is_some();
    ContainerStatus {
        name: c.name.clone(),
        image: image.to_owned(),
        image_id: String::new(),
        container_id,
        state: Some(state),
        last_state: Some(last_state.unwrap_or_default()),
        ready: running && c.ready,
        started: Some(running && c.started),
        restart_count,
        stop_signal: c.stop_signal.clone(),
        ..ContainerStatus::default()
    }
}

fn terminated_state(t: &Terminated) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: t.exit_code,
            signal: t.signal,
            reason: Some(t.reason.clone()),
            message: t.message.clone(),
            started_at: t.started_at.map(Time),
            finished_at: Some(Time(t.finished_at)),
            container_id: Some(t.container_id.clone()),
        }),
        ..ContainerState::default()
    }
}

/// A kubelet-owned condition, keeping `lastTransitionTime` when the status did not change.
fn condition(
    type_: &str,
    status: bool,
    reason: Option<(String, String)>,
    ctx: &StatusContext<'_>,
) -> PodCondition {
    let status_str = if status { "True" } else { "False" };
    let previous = ctx
        .previous
        .and_then(|p| p.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_));
    let last_transition_time = match previous {
        Some(p) if p.status == status_str => p.last_transition_time.clone(),
        _ => Some(Time(ctx.now)),
    };
    let (reason, message) = match reason {
        Some((r, m)) => (Some(r), (!m.is_empty()).then_some(m)),
        None => (None, None),
    };
    PodCondition {
        type_: type_.to_owned(),
        status: status_str.to_owned(),
        last_transition_time,
        reason,
        message,
        ..PodCondition::default()
    }
}

/// `GetPodQOS`: Guaranteed when every container has equal cpu and memory requests and limits,
/// BestEffort when none has any, Burstable otherwise.
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = &pod.spec else {
        return "BestEffort";
    };
    let containers: Vec<_> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let res = c.resources.as_ref();
        let limits = res.and_then(|r| r.limits.as_ref());
        let requests = res.and_then(|r| r.requests.as_ref());
        for name in ["cpu", "memory"] {
            let l = limits.and_then(|l| l.get(name));
            let r = requests.and_then(|r| r.get(name)).or(l);
            if l.is_some() || r.is_some() {
                any = true;
            }
            if l.is_none() || r.map(|q| &q.0) != l.map(|q| &q.0) {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
