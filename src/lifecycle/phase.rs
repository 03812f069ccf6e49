//! The pod phase: a line-by-line port of `pkg/kubelet/kubelet_pods.go` › `getPhase`
//! (spec §7.1). It reads API container statuses, exactly as upstream does.

use k8s_openapi::api::core::v1::{ContainerStatus, PodSpec};

/// `Pending`, `Running`, `Succeeded` or `Failed`.
///
/// `pod_is_terminal` is true once the node has finished terminating the pod: its containers
/// then never restart, so a pod whose regular containers all exited 0 is Succeeded.
pub fn get_phase(
    spec: &PodSpec,
    init_statuses: &[ContainerStatus],
    statuses: &[ContainerStatus],
    pod_is_terminal: bool,
) -> &'static str {
    let find = |name: &str| {
        init_statuses
            .iter()
            .chain(statuses.iter())
            .find(|s| s.name == name)
    };
    let mut pending_initialization = 0;
    let mut failed_initialization = 0;
    let init_containers = spec.init_containers.as_deref().unwrap_or_default();
    let is_sidecar =
        |c: &k8s_openapi::api::core::v1::Container| c.restart_policy.as_deref() == Some("Always");

    for c in init_containers.iter().filter(|c| !is_sidecar(c)) {
        let Some(s) = find(&c.name) else {
            pending_initialization += 1;
            continue;
        };
        let state = s.state.as_ref();
        if state.and_then(|s| s.running.as_ref()).is_some() {
            pending_initialization += 1;
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            if t.exit_code != 0 {
                failed_initialization += 1;
            }
        } else if state.and_then(|s| s.waiting.as_ref()).is_some() {
            match last_terminated_exit_code(s) {
                Some(code) => {
                    if code != 0 {
                        failed_initialization += 1;
                    }
                }
                None => pending_initialization += 1,
            }
        } else {
            pending_initialization += 1;
        }
    }

    let mut unknown = 0;
    let mut running = 0;
    let mut waiting = 0;
    let mut stopped = 0;
    let mut succeeded = 0;

    for c in init_containers.iter().filter(|c| is_sidecar(c)) {
        let Some(s) = find(&c.name) else {
            unknown += 1;
            continue;
        };
        let state = s.state.as_ref();
        if state.and_then(|s| s.running.as_ref()).is_some() {
            if s.started != Some(true) {
                pending_initialization += 1;
            }
            running += 1;
        } else if state.and_then(|s| s.terminated.as_ref()).is_some() {
            // Terminated restartable init containers are not taken into account.
        } else if state.and_then(|s| s.waiting.as_ref()).is_some() {
            if last_terminated_exit_code(s).is_none() {
                pending_initialization += 1;
                waiting += 1;
            }
        } else {
            pending_initialization += 1;
            unknown += 1;
        }
    }

    for c in &spec.containers {
        let Some(s) = find(&c.name) else {
            unknown += 1;
            continue;
        };
        let state = s.state.as_ref();
        if state.and_then(|s| s.running.as_ref()).is_some() {
            running += 1;
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if state.and_then(|s| s.waiting.as_ref()).is_some() {
            if last_terminated_exit_code(s).is_some() {
                stopped += 1;
            } else {
                waiting += 1;
            }
        } else {
            unknown += 1;
        }
    }

    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");
    if failed_initialization > 0 && restart_policy == "Never" {
        return "Failed";
    }
    let any_regular_started = spec.containers.iter().any(|c| {
        find(&c.name).is_some_and(|s| {
            s.state
                .as_ref()
                .is_some_and(|st| st.running.is_some() || st.terminated.is_some())
                || s.last_state
                    .as_ref()
                    .is_some_and(|st| st.terminated.is_some())
        })
    });
    if (pending_initialization > 0 && !any_regular_started) || waiting > 0 {
        return "Pending";
    }
    if running > 0 && unknown == 0 {
        return "Running";
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        if pod_is_terminal {
            return if stopped == succeeded {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        if restart_policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if restart_policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

fn last_terminated_exit_code(s: &ContainerStatus) -> Option<i32> {
    s.last_state
        .as_ref()
        .and_then(|l| l.terminated.as_ref())
        .map(|t| t.exit_code)
}
