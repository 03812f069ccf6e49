//! `compute_pod_actions`: which containers to start, wait for, or kill next.
//!
//! Upstream: `kuberuntime_manager.go` › `computePodActions` and `computeInitContainerActions`,
//! `pkg/kubelet/container/helpers.go` › `ShouldContainerBeRestarted`, and `doBackOff`
//! (spec §1.10, §5, §6.1). Termination is not decided here: once the pod is deleted the worker
//! runs the termination sequence instead of calling this.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

use super::backoff::{self, Backoff};
use super::container::{
    ContainerKind, ContainerObservation, InstanceState, PodObservation, container_hash,
    container_spec,
};
use super::grace::KillReason;

/// What the pod worker must do next. Computed, never executed, here.
#[must_use]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodActions {
    /// Containers to start now, in order. The worker starts the first, waits for its postStart
    /// hook, and asks again (so later containers start only after earlier hooks finished).
    pub start: Vec<String>,
    /// Containers that must be restarted but are waiting out their CrashLoopBackOff.
    pub back_off: Vec<BackOffWait>,
    /// Running containers to kill, with the `Killing` event message and the reason.
    pub kill: Vec<KillAction>,
    /// No container will run again: kill what is left (sidecars) and make the pod terminal.
    pub kill_pod: bool,
}

/// A container waiting out its restart delay.
#[derive(Clone, Debug, PartialEq)]
pub struct BackOffWait {
    pub container: String,
    /// When the container may start again.
    pub until: Instant,
    /// The current delay, for the waiting message.
    pub delay: Duration,
}

/// A container to kill while the pod keeps running.
#[derive(Clone, Debug, PartialEq)]
pub struct KillAction {
    pub container: String,
    /// The `Killing` event message, e.g. `Container app definition changed, will be restarted`.
    pub message: String,
    pub reason: KillReason,
}

impl PodActions {
    /// The earliest instant a back-off ends, to wake the worker then.
    pub fn next_wake(&self) -> Option<Instant> {
        self.back_off.iter().map(|b| b.until).min()
    }
}

/// `ShouldContainerBeRestarted` for a container whose latest instance ended with `exit_code`
/// (the deletion and never-started cases are handled by the caller).
pub fn should_container_be_restarted(restart_policy: &str, exit_code: i32) -> bool {
    match restart_policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// The backoff key of a container of `pod`.
pub fn back_off_key(pod: &Pod, container: &str, hash: u64) -> String {
    backoff::key(
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.uid.as_deref().unwrap_or_default(),
        container,
        hash,
    )
}

/// Decides the next actions for a pod that is not being terminated.
pub fn compute_pod_actions(
    pod: &Pod,
    observed: &PodObservation,
    backoff: &Backoff,
    now: Instant,
) -> PodActions {
    let mut actions = PodActions::default();
    let restart_policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");

    let initialized = compute_init_container_actions(pod, observed, backoff, now, &mut actions);
    if !initialized || actions.kill_pod {
        return actions;
    }

    let mut keep = 0;
    // Containers killed now that will be started again (definition changed, probe failure
    // with a restartPolicy that restarts): they keep the pod alive.
    let mut restarting = 0;
    for c in observed
        .containers
        .iter()
        .filter(|c| c.kind == ContainerKind::Regular)
    {
        let Some(spec) = container_spec(pod, &c.name) else {
            continue;
        };
        let hash = container_hash(spec);
        match c.current.as_ref().map(|i| (&i.state, i.spec_hash)) {
            None => actions.start.push(c.name.clone()),
            Some((InstanceState::Starting { .. } | InstanceState::Running { .. }, h)) => {
                if h != hash {
                    actions.kill.push(KillAction {
                        container: c.name.clone(),
                        message: format!(
                            "Container {} definition changed, will be restarted",
                            c.name
                        ),
                        reason: KillReason::Unknown,
                    });
                    restarting += 1;
                } else if let Some(reason) = c.probe_failure {
                    let suffix = if restart_policy == "Never" {
                        ""
                    } else {
                        restarting += 1;
                        ", will be restarted"
                    };
                    actions.kill.push(KillAction {
                        container: c.name.clone(),
                        message: format!(
                            "Container {} failed {} probe{suffix}",
                            c.name,
                            probe_word(reason)
                        ),
                        reason,
                    });
                } else {
                    keep += 1;
                }
            }
            Some((InstanceState::Terminated(t), _)) => {
                if should_container_be_restarted(restart_policy, t.exit_code) {
                    start_or_back_off(pod, c, hash, backoff, now, &mut actions);
                }
            }
        }
    }
    if keep == 0 && restarting == 0 && actions.start.is_empty() && actions.back_off.is_empty() {
        // Every regular container finished or is being killed for good: the pod is done, and
        // the pod kill stops what is left (upstream's `KillPod`, with the default `Killing`
        // message and the pod's grace). Sidecars stop last, in reverse order, and do not count
        // for the phase.
        actions.kill = Vec::new();
        actions.kill_pod = true;
    }
    actions
}

/// Init containers and sidecars (`computeInitContainerActions`). Returns true when regular
/// containers may run: every init container completed and every sidecar started, or a regular
/// container already exists (initialization happened before).
fn compute_init_container_actions(
    pod: &Pod,
    observed: &PodObservation,
    backoff: &Backoff,
    now: Instant,
    actions: &mut PodActions,
) -> bool {
    let restart_policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let already_initialized = observed
        .containers
        .iter()
        .any(|c| c.kind == ContainerKind::Regular && c.current.is_some());

    for c in observed.containers.iter().filter(|c| c.kind.is_init_list()) {
        let Some(spec) = container_spec(pod, &c.name) else {
            continue;
        };
        let hash = container_hash(spec);
        let state = c.current.as_ref().map(|i| (&i.state, i.spec_hash));
        match c.kind {
            ContainerKind::Sidecar => match state {
                None => {
                    actions.start.push(c.name.clone());
                    return false;
                }
                Some((InstanceState::Starting { .. }, _)) => {
                    if !already_initialized {
                        return false;
                    }
                }
                Some((InstanceState::Running { .. }, h)) => {
                    if h != hash {
                        actions.kill.push(KillAction {
                            container: c.name.clone(),
                            message: format!(
                                "Init container {} definition changed, will be restarted",
                                c.name
                            ),
                            reason: KillReason::Unknown,
                        });
                    } else if let Some(reason) = c.probe_failure {
                        actions.kill.push(KillAction {
                            container: c.name.clone(),
                            message: format!(
                                "Init container {} failed {} probe",
                                c.name,
                                probe_word(reason)
                            ),
                            reason,
                        });
                    }
                    if !c.started && !already_initialized {
                        return false;
                    }
                }
                Some((InstanceState::Terminated(_), _)) => {
                    // Sidecars always restart, whatever the pod's restartPolicy.
                    start_or_back_off(pod, c, hash, backoff, now, actions);
                    if !already_initialized {
                        return false;
                    }
                }
            },
            ContainerKind::Init => {
                if already_initialized {
                    continue;
                }
                match state {
                    None => {
                        actions.start.push(c.name.clone());
                        return false;
                    }
                    Some((InstanceState::Starting { .. } | InstanceState::Running { .. }, _)) => {
                        return false;
                    }
                    Some((InstanceState::Terminated(t), _)) => {
                        if t.exit_code == 0 {
                            continue;
                        }
                        if restart_policy == "Never" {
                            actions.kill_pod = true;
                        } else {
                            start_or_back_off(pod, c, hash, backoff, now, actions);
                        }
                        return false;
                    }
                }
            }
            ContainerKind::Regular => {}
        }
    }
    true
}

fn probe_word(reason: KillReason) -> &'static str {
    match reason {
        KillReason::StartupProbe => "startup",
        _ => "liveness",
    }
}

/// `doBackOff`: restart now, or wait while the container is in CrashLoopBackOff.
fn start_or_back_off(
    pod: &Pod,
    c: &ContainerObservation,
    hash: u64,
    backoff: &Backoff,
    now: Instant,
    actions: &mut PodActions,
) {
    if let Some(t) = c.terminated() {
        let key = back_off_key(pod, &c.name, hash);
        if let Some((delay, until)) = backoff.in_back_off_since(&key, t.finished_mono, now) {
            actions.back_off.push(BackOffWait {
                container: c.name.clone(),
                until,
                delay,
            });
            return;
        }
    }
    actions.start.push(c.name.clone());
}

/// The waiting message of a container in CrashLoopBackOff:
/// `back-off 10s restarting failed container=app pod=web_default(uid)`.
pub fn back_off_message(pod: &Pod, container: &str, delay: Duration) -> String {
    format!(
        "back-off {} restarting failed container={container} pod={}",
        backoff::go_duration(delay),
        super::events::format_pod(pod)
    )
}
