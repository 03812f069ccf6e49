//! Which containers a container must wait for before its stop signal: the pure part of
//! `kuberuntime_termination_order.go` › `newTerminationOrdering` (spec §1.5, §6.2).
//!
//! Main containers wait for nobody. Each sidecar waits for every main container and for the
//! sidecar declared after it, so sidecars stop in reverse declaration order after all main
//! containers. Regular init containers wait for nobody.

use super::container::{ContainerKind, PodObservation};

/// For each container of the pod, the containers it must wait for (by name).
/// Only meaningful when the pod has at least one sidecar; otherwise returns None.
pub fn termination_prerequisites(observed: &PodObservation) -> Option<Vec<(String, Vec<String>)>> {
    if !observed
        .containers
        .iter()
        .any(|c| c.kind == ContainerKind::Sidecar)
    {
        return None;
    }
    let mains: Vec<String> = observed
        .containers
        .iter()
        .filter(|c| c.kind == ContainerKind::Regular)
        .map(|c| c.name.clone())
        .collect();
    let mut result: Vec<(String, Vec<String>)> =
        mains.iter().map(|m| (m.clone(), Vec::new())).collect();
    let mut later_sidecar: Option<String> = None;
    for c in observed
        .containers
        .iter()
        .filter(|c| c.kind.is_init_list())
        .rev()
    {
        match c.kind {
            ContainerKind::Sidecar => {
                let mut prereqs = mains.clone();
                if let Some(l) = &later_sidecar {
                    prereqs.push(l.clone());
                }
                result.push((c.name.clone(), prereqs));
                later_sidecar = Some(c.name.clone());
            }
            _ => result.push((c.name.clone(), Vec::new())),
        }
    }
    Some(result)
}
