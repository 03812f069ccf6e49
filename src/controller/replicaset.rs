//! What the ReplicaSet controller decides for one ReplicaSet: pure functions ported from
//! kube-controller-manager `pkg/controller/replicaset` (`manageReplicas`, `calculateStatus`),
//! `pkg/controller/controller_utils.go` (`ActivePodsWithRanks`, `getPodsToDelete`,
//! `FilterActivePods`) and `pkg/api/v1/pod` (`IsPodAvailable`).
//!
//! Must not: read the store or the clock, or do IO. The loop that wires it (not written yet)
//! feeds it the ReplicaSet, the pods it owns and `now`, then creates and deletes pods and
//! writes the status this module computes.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};

/// `controller.kubernetes.io/pod-deletion-cost`: pods with a lower cost are deleted first.
pub const POD_DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";

/// Upstream's `BurstReplicas`: at most this many pods are created or deleted in one sync.
pub const BURST_REPLICAS: usize = 500;

/// What one sync of a ReplicaSet should do to its pods (upstream `manageReplicas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodsDiff {
    /// The active pods match `spec.replicas`.
    None,
    /// Create this many pods from `spec.template`.
    Create(usize),
    /// Delete these pods (names), the first-to-go first.
    Delete(Vec<String>),
}

/// What to do about a pod whose ownership may change (upstream `ClaimPods`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The pod is this ReplicaSet's, or nothing to do.
    Keep,
    /// Set this ReplicaSet as the pod's controller ownerReference.
    Adopt,
    /// Remove this ReplicaSet's ownerReference: the pod's labels no longer match.
    Release,
    /// Not this ReplicaSet's and not to be adopted.
    Ignore,
}

/// The ReplicaSet's `spec.replicas`, 1 when unset (the API default).
pub fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// The creates or deletions that bring `pods` (the pods this ReplicaSet owns) to
/// `spec.replicas`. Terminal and terminating pods do not count (upstream `FilterActivePods`).
/// Deletions follow [`compare_for_deletion`]; at most [`BURST_REPLICAS`] either way.
pub fn pods_to_create_or_delete(rs: &ReplicaSet, pods: &[Pod]) -> PodsDiff {
    let active: Vec<&Pod> = pods.iter().filter(|p| is_pod_active(p)).collect();
    let want = replicas(rs).max(0) as usize;
    match active.len().cmp(&want) {
        Ordering::Equal => PodsDiff::None,
        Ordering::Less => PodsDiff::Create((want - active.len()).min(BURST_REPLICAS)),
        Ordering::Greater => {
            let diff = (active.len() - want).min(BURST_REPLICAS);
            let ranked = rank_for_deletion(&active);
            PodsDiff::Delete(
                ranked
                    .into_iter()
                    .take(diff)
                    .map(|p| p.metadata.name.clone().unwrap_or_default())
                    .collect(),
            )
        }
    }
}

/// `pods` sorted so the pods to delete first come first (upstream `ActivePodsWithRanks`,
/// ranked by the number of the given pods on the same node, as `getPodsToDelete` does).
pub fn rank_for_deletion<'a>(pods: &[&'a Pod]) -> Vec<&'a Pod> {
    let mut on_node: BTreeMap<&str, usize> = BTreeMap::new();
    for pod in pods {
        if let Some(node) = node_name(pod) {
            *on_node.entry(node).or_default() += 1;
        }
    }
    let rank = |p: &Pod| node_name(p).map_or(0, |n| on_node[n]);
    let mut ranked: Vec<(&Pod, usize)> = pods.iter().map(|p| (*p, rank(p))).collect();
    ranked.sort_by(|(a, ra), (b, rb)| compare_for_deletion(a, *ra, b, *rb));
    ranked.into_iter().map(|(p, _)| p).collect()
}

/// The deletion order of upstream `ActivePodsWithRanks.Less` (`Less` means "delete first"):
/// 1. unassigned before assigned; 2. Pending < Unknown < Running; 3. not ready before ready;
/// 4. lower `pod-deletion-cost` first; 5. more pods on the same node (`rank`) first;
/// 6. ready for less time first; 7. more container restarts first; 8. newer first.
///
/// Without upstream's `LogarithmicScaleDown` buckets: ready and creation times compare exactly.
pub fn compare_for_deletion(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize) -> Ordering {
    let (na, nb) = (node_name(a), node_name(b));
    if na != nb && (na.is_none() || nb.is_none()) {
        return if na.is_none() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let by_phase = phase_ordinal(a).cmp(&phase_ordinal(b));
    if by_phase != Ordering::Equal {
        return by_phase;
    }
    let (ready_a, ready_b) = (is_pod_ready(a), is_pod_ready(b));
    if ready_a != ready_b {
        return if ready_a {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    let by_cost = deletion_cost(a).cmp(&deletion_cost(b));
    if by_cost != Ordering::Equal {
        return by_cost;
    }
    if rank_a != rank_b {
        return rank_b.cmp(&rank_a);
    }
    if ready_a && ready_b {
        let by_ready = after_or_zero(ready_time(a), ready_time(b));
        if by_ready != Ordering::Equal {
            return by_ready;
        }
    }
    let (restarts_a, restarts_b) = (max_restarts(a), max_restarts(b));
    if restarts_a != restarts_b {
        return restarts_b.cmp(&restarts_a);
    }
    after_or_zero(creation(a), creation(b))
}

/// Whether this ReplicaSet should adopt, release or leave `pod` (upstream
/// `PodControllerRefManager.ClaimPods`): adopt a live pod of its namespace whose labels match
/// the selector and that has no controller; release a pod it controls whose labels no longer
/// match. A ReplicaSet being deleted adopts nothing. An empty selector matches nothing.
pub fn claim(rs: &ReplicaSet, pod: &Pod) -> Claim {
    let matches = pod.metadata.namespace == rs.metadata.namespace
        && selector_matches(
            rs.spec.as_ref().map(|s| &s.selector),
            pod.metadata.labels.as_ref(),
        );
    match controller_of(&pod.metadata.owner_references) {
        Some(owner) if Some(&owner.uid) == rs.metadata.uid.as_ref() => {
            if matches {
                Claim::Keep
            } else {
                Claim::Release
            }
        }
        Some(_) => Claim::Ignore,
        None => {
            if matches
                && pod.metadata.deletion_timestamp.is_none()
                && rs.metadata.deletion_timestamp.is_none()
            {
                Claim::Adopt
            } else {
                Claim::Ignore
            }
        }
    }
}

/// Whether `rs` should adopt `pod`: [`claim`] says [`Claim::Adopt`].
pub fn should_adopt(rs: &ReplicaSet, pod: &Pod) -> bool {
    claim(rs, pod) == Claim::Adopt
}

/// Whether `rs` should release `pod`: [`claim`] says [`Claim::Release`].
pub fn should_release(rs: &ReplicaSet, pod: &Pod) -> bool {
    claim(rs, pod) == Claim::Release
}

/// The ReplicaSet's status given the pods it owns (upstream `calculateStatus` and
/// `updateReplicaSetStatus`): replicas counts active pods; fullyLabeledReplicas those
/// carrying every template label; ready and available (ready for `minReadySeconds`) pods;
/// observedGeneration is the ReplicaSet's generation. Conditions are kept as they are.
pub fn calculate_status(rs: &ReplicaSet, pods: &[Pod], now: Timestamp) -> ReplicaSetStatus {
    let spec = rs.spec.as_ref();
    let template_labels = spec
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let active: Vec<&Pod> = pods.iter().filter(|p| is_pod_active(p)).collect();
    let fully_labeled = active
        .iter()
        .filter(|p| {
            template_labels.is_none_or(|want| {
                let have = p.metadata.labels.as_ref();
                want.iter()
                    .all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
            })
        })
        .count();
    let ready = active.iter().filter(|p| is_pod_ready(p)).count();
    let available = active
        .iter()
        .filter(|p| is_pod_available(p, min_ready, now))
        .count();
    let old = rs.status.clone().unwrap_or_default();
    ReplicaSetStatus {
        replicas: active.len() as i32,
        fully_labeled_replicas: Some(fully_labeled as i32),
        ready_replicas: Some(ready as i32),
        available_replicas: Some(available as i32),
        observed_generation: rs.metadata.generation,
        conditions: old.conditions,
        terminating_replicas: old.terminating_replicas,
    }
}

/// When a pod that is ready but not yet available becomes available, so the loop can
/// requeue the ReplicaSet (upstream re-queues after `minReadySeconds`). `None` if no pod waits.
pub fn next_availability_check(rs: &ReplicaSet, pods: &[Pod], now: Timestamp) -> Option<Timestamp> {
    let min_ready = rs.spec.as_ref()?.min_ready_seconds.unwrap_or(0);
    if min_ready <= 0 {
        return None;
    }
    pods.iter()
        .filter(|p| is_pod_active(p) && is_pod_ready(p) && !is_pod_available(p, min_ready, now))
        .filter_map(ready_time)
        .filter_map(|t| {
            t.checked_add(SignedDuration::from_secs(i64::from(min_ready)))
                .ok()
        })
        .min()
}

/// Whether the pod is Ready and has been for more than `min_ready_seconds` at `now` (upstream
/// `podutil.IsPodAvailable`, which uses the Ready condition's `lastTransitionTime`).
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if !is_pod_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    ready_time(pod).is_some_and(|t| {
        t.checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
            .is_ok_and(|t| t < now)
    })
}

/// Whether the pod's Ready condition is True.
pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// Upstream `FilterActivePods`: neither Succeeded, Failed nor being deleted.
pub fn is_pod_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed")) && pod.metadata.deletion_timestamp.is_none()
}

/// Whether `labels` satisfy `selector` (matchLabels and matchExpressions with `In`, `NotIn`,
/// `Exists`, `DoesNotExist`). A missing or empty selector matches nothing.
pub fn selector_matches(
    selector: Option<&LabelSelector>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let Some(selector) = selector else {
        return false;
    };
    let match_labels = selector.match_labels.as_ref().filter(|m| !m.is_empty());
    let exprs = selector
        .match_expressions
        .as_ref()
        .filter(|e| !e.is_empty());
    if match_labels.is_none() && exprs.is_none() {
        return false;
    }
    let get = |k: &str| labels.and_then(|l| l.get(k));
    let labels_ok = match_labels.is_none_or(|m| m.iter().all(|(k, v)| get(k) == Some(v)));
    let exprs_ok = exprs.is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let value = get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
    });
    labels_ok && exprs_ok
}

/// The ownerReference with `controller: true`, if any.
pub fn controller_of(refs: &Option<Vec<OwnerReference>>) -> Option<&OwnerReference> {
    refs.as_ref()?.iter().find(|r| r.controller == Some(true))
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// Upstream `podPhaseToOrdinal`: Pending 0, Unknown 1, Running 2, anything else 0.
fn phase_ordinal(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

/// Upstream `GetDeletionCostFromPodAnnotations`; an unparsable cost counts as 0.
fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

fn ready_time(pod: &Pod) -> Option<Timestamp> {
    ready_condition(pod)?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

fn creation(pod: &Pod) -> Option<Timestamp> {
    pod.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Upstream `afterOrZero` as an ordering: a missing time first, then the later time first.
fn after_or_zero(a: Option<Timestamp>, b: Option<Timestamp>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(&a),
    }
}

/// The highest restart count among the regular containers, then among the init containers
/// (upstream `compareMaxContainerRestarts` compares regular, then sidecar restarts).
fn max_restarts(pod: &Pod) -> (i32, i32) {
    let max = |s: Option<&Vec<k8s_openapi::api::core::v1::ContainerStatus>>| {
        s.map_or(0, |s| s.iter().map(|c| c.restart_count).max().unwrap_or(0))
    };
    let status = pod.status.as_ref();
    (
        max(status.and_then(|s| s.container_statuses.as_ref())),
        max(status.and_then(|s| s.init_container_statuses.as_ref())),
    )
}

#[cfg(test)]
mod tests;
