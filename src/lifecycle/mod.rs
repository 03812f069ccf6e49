//! The pod state machine: the kubelet's decisions, as pure functions.
//!
//! Pure: no tokio, no processes, no clock reads. Callers pass the spec, what they observed and
//! `now`; this module answers "what should happen next" (`compute_pod_actions`), "how long may
//! this container take to stop" (`grace`), "is it in CrashLoopBackOff" (`backoff`) and "what
//! does the API status say" (`status`, `phase`). The `node` module performs what is decided
//! here; see ARCHITECTURE.md "Pod lifecycle" for the diagram and the termination timeline.
//!
//! Names follow the kubelet's: `compute_pod_actions` is `computePodActions`,
//! `effective_pod_grace` is `calculateEffectiveGracePeriod`, `container_kill_grace` is
//! `setTerminationGracePeriod`, `get_phase` is `getPhase`.

pub mod actions;
pub mod backoff;
pub mod container;
pub mod events;
pub mod grace;
pub mod ordering;
pub mod phase;
pub mod probe;
pub mod status;

#[cfg(test)]
mod tests;

pub use actions::{PodActions, compute_pod_actions, should_container_be_restarted};
pub use backoff::Backoff;
pub use container::{
    ContainerKind, ContainerObservation, InstanceState, PodObservation, StartFailure, Terminated,
};
pub use grace::{KillReason, container_kill_grace, effective_pod_grace};
