//! Grace periods: how long a pod and each of its containers may take to stop.
//!
//! Upstream: `pkg/kubelet/pod_workers.go` › `calculateEffectiveGracePeriod` and
//! `pkg/kubelet/kuberuntime/kuberuntime_container.go` › `setTerminationGracePeriod`,
//! `killContainer` (spec §1.3, §1.6).

use k8s_openapi::api::core::v1::{Container, Pod};

/// `v1.DefaultTerminationGracePeriodSeconds`.
pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
/// "No matter what, we always supply a grace period of 1" (`calculateEffectiveGracePeriod`).
pub const MIN_EFFECTIVE_POD_GRACE_SECONDS: i64 = 1;
/// The per-container stop window floor, `minimumGracePeriodInSeconds` in kuberuntime.
pub const MINIMUM_GRACE_PERIOD_IN_SECONDS: i64 = 2;
/// Grace used for processes the node finds but no longer knows the pod of (`HandlePodCleanups`).
pub const ORPHAN_KILL_GRACE_SECONDS: i64 = 1;

/// Why a container is being killed; selects the probe-level grace (`containerKillReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillReason {
    /// Pod deletion, node shutdown, a definition change, or the pod finishing.
    Unknown,
    LivenessProbe,
    StartupProbe,
    FailedPostStartHook,
}

/// The pod-level grace the node uses, and whether it shortened an earlier one.
///
/// `current` is the grace this worker already uses (None before termination began),
/// `deletion_grace` the object's `metadata.deletionGracePeriodSeconds`, `override_` a node-side
/// override (node shutdown). Follows current upstream master: an explicit 0 means 1 second,
/// and the grace can only shrink.
pub fn effective_pod_grace(
    current: Option<i64>,
    deletion_grace: Option<i64>,
    override_: Option<i64>,
    spec_grace: Option<i64>,
) -> (i64, bool) {
    let current = current.unwrap_or(0);
    let mut g = current;
    let mut overridden = false;
    if let Some(d) = deletion_grace
        && (g == 0 || d < g)
    {
        g = d;
        overridden = true;
    }
    if let Some(o) = override_
        && (g == 0 || o < g)
    {
        g = o;
        overridden = true;
    }
    if g == 0
        && !overridden
        && let Some(s) = spec_grace
    {
        g = s;
    }
    if g < MIN_EFFECTIVE_POD_GRACE_SECONDS {
        g = MIN_EFFECTIVE_POD_GRACE_SECONDS;
    }
    (g, current != 0 && current != g)
}

/// `setTerminationGracePeriod`: the grace for killing one container outside pod deletion.
///
/// The probe-level `terminationGracePeriodSeconds` applies only to kills caused by that probe,
/// may exceed the pod value, and loses to a deletion grace.
pub fn container_kill_grace(pod: &Pod, container: &Container, reason: KillReason) -> i64 {
    if let Some(d) = pod.metadata.deletion_grace_period_seconds {
        return d;
    }
    let Some(spec_grace) = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
    else {
        return MINIMUM_GRACE_PERIOD_IN_SECONDS;
    };
    let probe = match reason {
        KillReason::StartupProbe => container.startup_probe.as_ref(),
        KillReason::LivenessProbe => container.liveness_probe.as_ref(),
        KillReason::Unknown | KillReason::FailedPostStartHook => None,
    };
    probe
        .and_then(|p| p.termination_grace_period_seconds)
        .unwrap_or(spec_grace)
}

/// The grace left for the stop signal after preStop and ordering waits took `used` whole
/// seconds, floored at 2 s (`killContainer` steps 6 to 8).
pub fn stop_window(grace: i64, used_whole_seconds: i64) -> i64 {
    (grace - used_whole_seconds).max(MINIMUM_GRACE_PERIOD_IN_SECONDS)
}
