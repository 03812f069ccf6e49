//! What a pod worker observed of its containers: the inputs of every decision in this module.

use std::time::Instant;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod};

/// How a container takes part in the pod's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerKind {
    /// `spec.initContainers[]` without `restartPolicy: Always`: runs once, to completion, in order.
    Init,
    /// `spec.initContainers[]` with `restartPolicy: Always` (KEP-753): runs for the pod's lifetime.
    Sidecar,
    /// `spec.containers[]`.
    Regular,
}

impl ContainerKind {
    pub fn of_init(container: &Container) -> Self {
        if container.restart_policy.as_deref() == Some("Always") {
            ContainerKind::Sidecar
        } else {
            ContainerKind::Init
        }
    }

    pub fn is_init_list(self) -> bool {
        matches!(self, ContainerKind::Init | ContainerKind::Sidecar)
    }
}

/// A finished container instance, as the API's `state.terminated`.
#[derive(Clone, Debug, PartialEq)]
pub struct Terminated {
    /// 128 + signal number for a death by signal (143 SIGTERM, 137 SIGKILL); 128 for StartError.
    pub exit_code: i32,
    /// The signal that killed the main process, if any.
    pub signal: Option<i32>,
    /// `Completed`, `Error`, `OOMKilled` or `StartError`.
    pub reason: String,
    /// The OS error for `StartError`; otherwise none.
    pub message: Option<String>,
    /// When the process was spawned; None when it never started.
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
    /// `finished_at` on the monotonic clock, for backoff arithmetic.
    pub finished_mono: Instant,
    pub container_id: String,
}

impl Terminated {
    /// The containerd reason for an exit: `Completed` for 0, `Error` otherwise, or `OOMKilled`.
    pub fn reason_for(exit_code: i32, oom_killed: bool) -> &'static str {
        if oom_killed {
            "OOMKilled"
        } else if exit_code == 0 {
            "Completed"
        } else {
            "Error"
        }
    }
}

/// The state of the latest instance of a container.
#[derive(Clone, Debug, PartialEq)]
pub enum InstanceState {
    /// The process runs, its postStart hook has not finished: the API still shows it Waiting.
    Starting {
        pid: i32,
        started_at: Timestamp,
    },
    /// The process runs and postStart (if any) succeeded.
    Running {
        pid: i32,
        started_at: Timestamp,
        started_mono: Instant,
    },
    Terminated(Terminated),
}

/// One started instance of a container.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// How many instances ran before this one (`restartCount`).
    pub restart_count: i32,
    /// `container_hash` of the spec this instance was started from.
    pub spec_hash: u64,
    pub container_id: String,
    pub state: InstanceState,
}

/// Why the latest start attempt did not produce a running container: the kubelet's
/// "reason cache", shown as `state.waiting` until the next successful start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartFailure {
    /// `CrashLoopBackOff`, `PostStartHookError`, `RunContainerError`, `CreateContainerConfigError`.
    pub reason: String,
    pub message: String,
}

/// Everything known about one container of the pod.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerObservation {
    pub name: String,
    pub kind: ContainerKind,
    /// The latest instance; None before the first start.
    pub current: Option<Instance>,
    /// The instance before `current`, shown as `lastState.terminated`.
    pub previous: Option<Terminated>,
    /// The reason cache; cleared when an instance starts successfully.
    pub start_failure: Option<StartFailure>,
    /// The startup probe succeeded (or there is none) for the running instance.
    pub started: bool,
    /// `started` and the readiness probe succeeded (or there is none).
    pub ready: bool,
    /// A liveness or startup probe of the current instance crossed its failure threshold: the
    /// container must be killed (the kubelet's liveness manager result).
    pub probe_failure: Option<super::grace::KillReason>,
    /// The stop signal when one is configured (`lifecycle.stopSignal` or the image map's),
    /// reported as `status.containerStatuses[].stopSignal` (KEP-4960).
    pub stop_signal: Option<String>,
}

impl ContainerObservation {
    pub fn new(name: &str, kind: ContainerKind) -> Self {
        ContainerObservation {
            name: name.to_owned(),
            kind,
            current: None,
            previous: None,
            start_failure: None,
            started: false,
            ready: false,
            probe_failure: None,
            stop_signal: None,
        }
    }

    /// The process of the latest instance is alive (starting or running).
    pub fn is_running(&self) -> bool {
        matches!(
            self.current.as_ref().map(|i| &i.state),
            Some(InstanceState::Starting { .. } | InstanceState::Running { .. })
        )
    }

    /// The latest instance's termination, if it ended.
    pub fn terminated(&self) -> Option<&Terminated> {
        match self.current.as_ref().map(|i| &i.state) {
            Some(InstanceState::Terminated(t)) => Some(t),
            _ => None,
        }
    }

    /// The `restartCount` the next instance gets.
    pub fn next_restart_count(&self) -> i32 {
        self.current.as_ref().map_or(0, |i| i.restart_count + 1)
    }
}

/// What the pod worker knows of the pod's containers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodObservation {
    /// Init containers (and sidecars) in spec order, then regular containers in spec order.
    pub containers: Vec<ContainerObservation>,
}

impl PodObservation {
    /// One empty observation per container of `pod`.
    pub fn for_pod(pod: &Pod) -> Self {
        let mut containers = Vec::new();
        if let Some(spec) = &pod.spec {
            for c in spec.init_containers.iter().flatten() {
                containers.push(ContainerObservation::new(
                    &c.name,
                    ContainerKind::of_init(c),
                ));
            }
            for c in &spec.containers {
                containers.push(ContainerObservation::new(&c.name, ContainerKind::Regular));
            }
        }
        PodObservation { containers }
    }

    pub fn get(&self, name: &str) -> Option<&ContainerObservation> {
        self.containers.iter().find(|c| c.name == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut ContainerObservation> {
        self.containers.iter_mut().find(|c| c.name == name)
    }

    /// Names of containers whose process is alive.
    pub fn running_names(&self) -> Vec<String> {
        self.containers
            .iter()
            .filter(|c| c.is_running())
            .map(|c| c.name.clone())
            .collect()
    }
}

/// The spec of container `name` in `pod`, from either list.
pub fn container_spec<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .find(|c| c.name == name)
}

/// A stable hash of a container's spec: a change restarts the container and resets its backoff.
pub fn container_hash(container: &Container) -> u64 {
    let bytes = serde_json::to_vec(container).unwrap_or_default();
    fnv1a(&bytes)
}

/// FNV-1a, 64 bit: stable across Rust versions, unlike `DefaultHasher`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}
