//! What the Deployment controller decides for one Deployment: pure functions ported from
//! kube-controller-manager `pkg/controller/deployment` (`util/deployment_util.go`,
//! `rolling.go`, `recreate.go`, `sync.go`, `progress.go`). [`sync_deployment`] is one sync
//! (`syncDeployment`) as a [`DeploymentPlan`]; the functions it is made of are public so
//! they can be tested as upstream tests them.
//!
//! Must not: read the store or the clock, or do IO; `now` comes in as an argument. The loop
//! that wires it (not written yet) feeds it the Deployment, the ReplicaSets it owns and their
//! pods, then applies the plan (create, scale, delete ReplicaSets, write status) and requeues.
//!
//! Unset fields take the API defaults of spec §9.1 (replicas 1, RollingUpdate 25 %/25 %,
//! revisionHistoryLimit 10, progressDeadlineSeconds 600), so the result is the same whether
//! or not the API server has defaulted the object.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::replicaset::controller_of;

pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The label (and selector term) that ties a ReplicaSet and its pods to one template.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

pub const CONDITION_PROGRESSING: &str = "Progressing";
pub const CONDITION_AVAILABLE: &str = "Available";
pub const CONDITION_REPLICA_FAILURE: &str = "ReplicaFailure";
pub const REASON_RS_UPDATED: &str = "ReplicaSetUpdated";
pub const REASON_NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const REASON_FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const REASON_NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const REASON_TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const REASON_PAUSED: &str = "DeploymentPaused";
pub const REASON_RESUMED: &str = "DeploymentResumed";
pub const REASON_MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const REASON_MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// `progressDeadlineSeconds` of `MaxInt32` means "no deadline", as upstream.
const NO_DEADLINE: i32 = i32::MAX;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A maxSurge or maxUnavailable that is neither an integer nor `N%`.
    #[error("invalid value for IntOrString: {0}")]
    IntOrString(String),
}

/// A new `spec.replicas` for one ReplicaSet. Applying it also sets the ReplicaSet's
/// desired-replicas and max-replicas annotations to [`replicas_annotations`] of the
/// Deployment, as upstream `scaleReplicaSet` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    pub name: String,
    pub replicas: i32,
}

/// One sync of a Deployment (upstream `syncDeployment`), to be applied in field order.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentPlan {
    /// A ReplicaSet to create for the current template (name `<deployment>-<hash>`); `None`
    /// when one exists or the strategy is not ready for it (Recreate with old pods running).
    pub create: Option<ReplicaSet>,
    /// The new revision to write on an existing new ReplicaSet (`deployment.kubernetes.io/
    /// revision`, and the old one appended to `revision-history`): a rollback to it.
    pub set_revision: Option<(String, String)>,
    /// ReplicaSet scale changes, in the order upstream makes them.
    pub scale: Vec<Scale>,
    /// Old ReplicaSets to delete beyond `revisionHistoryLimit`.
    pub delete: Vec<String>,
    /// The revision annotation the Deployment should carry (the new ReplicaSet's).
    pub revision: Option<String>,
    /// The Deployment's status after the sync; write it when it differs.
    pub status: DeploymentStatus,
}

// ---------------------------------------------------------------------------------------------
// One sync.

/// One sync of `d` (upstream `syncDeployment` after adoption): `rss` are the ReplicaSets the
/// Deployment owns, `pods` their pods (used by Recreate to wait for old pods).
///
/// Paused deployments and scaling events only scale (`sync`); otherwise the strategy rolls
/// out (`rolloutRolling`, `rolloutRecreate`). Rollback (`spec.rollbackTo`) is not handled: it
/// is gone from apps/v1; `rollout undo` copies an old template into the Deployment instead.
pub fn sync_deployment(
    d: &Deployment,
    rss: &[ReplicaSet],
    pods: &[Pod],
    now: Timestamp,
) -> Result<DeploymentPlan, Error> {
    let mut d = d.clone();
    let mut plan = DeploymentPlan {
        create: None,
        set_revision: None,
        scale: Vec::new(),
        delete: Vec::new(),
        revision: None,
        status: DeploymentStatus::default(),
    };
    check_paused_conditions(&mut d, now);
    let new_rs = find_new_replica_set(&d, rss).cloned();
    let old_rss: Vec<ReplicaSet> = find_old_replica_sets(&d, rss)
        .into_iter()
        .cloned()
        .collect();
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);

    if paused || is_scaling_event(&d, rss) {
        let mut new_rs = new_rs;
        if let Some(rs) = new_rs.as_mut() {
            sync_revision(&mut d, rs, &old_rss, &mut plan, now);
        }
        let scales = scale(&d, new_rs.as_ref(), &old_rss);
        let (new_rs, old_rss) = apply(&scales, new_rs, old_rss);
        plan.scale = scales;
        if paused {
            plan.delete = cleanup_deployment(&d, &old_rss);
        }
        plan.status = calculate_status(&all(&new_rs, &old_rss), new_rs.as_ref(), &d, now);
        return Ok(plan);
    }

    if !is_rolling_update(&d) {
        return rollout_recreate(d, new_rs, old_rss, pods, plan, now);
    }
    let new_rs = match new_rs {
        Some(mut rs) => {
            sync_revision(&mut d, &mut rs, &old_rss, &mut plan, now);
            rs
        }
        None => {
            let rs = new_replica_set(&d, &old_rss)?;
            created(&mut d, &rs, &mut plan, now);
            rs
        }
    };
    let mut all_rss = old_rss.clone();
    all_rss.push(new_rs.clone());
    if let Some(n) = reconcile_new_replica_set(&d, &all_rss, &new_rs)? {
        plan.scale.push(Scale {
            name: name(&new_rs).to_owned(),
            replicas: n,
        });
        let (new_rs, old_rss) = apply(&plan.scale, Some(new_rs), old_rss);
        plan.status = sync_rollout_status(&all(&new_rs, &old_rss), new_rs.as_ref(), &d, now);
        return Ok(plan);
    }
    let active_old: Vec<ReplicaSet> = filter_active_replica_sets(&old_rss)
        .into_iter()
        .cloned()
        .collect();
    let scales = reconcile_old_replica_sets(&d, &all_rss, &active_old, &new_rs);
    if !scales.is_empty() {
        plan.scale = scales;
        let (new_rs, old_rss) = apply(&plan.scale, Some(new_rs), old_rss);
        plan.status = sync_rollout_status(&all(&new_rs, &old_rss), new_rs.as_ref(), &d, now);
        return Ok(plan);
    }
    if deployment_complete(&d, &d.status.clone().unwrap_or_default()) {
        plan.delete = cleanup_deployment(&d, &old_rss);
    }
    plan.status = sync_rollout_status(&all_rss, Some(&new_rs), &d, now);
    Ok(plan)
}

/// Upstream `rolloutRecreate`: scale every old ReplicaSet to 0; wait until no old pod runs
/// (terminating ones included); then create or scale up the new ReplicaSet.
fn rollout_recreate(
    mut d: Deployment,
    mut new_rs: Option<ReplicaSet>,
    old_rss: Vec<ReplicaSet>,
    pods: &[Pod],
    mut plan: DeploymentPlan,
    now: Timestamp,
) -> Result<DeploymentPlan, Error> {
    if let Some(rs) = new_rs.as_mut() {
        sync_revision(&mut d, rs, &old_rss, &mut plan, now);
    }
    let scales: Vec<Scale> = filter_active_replica_sets(&old_rss)
        .into_iter()
        .map(|rs| Scale {
            name: name(rs).to_owned(),
            replicas: 0,
        })
        .collect();
    if !scales.is_empty() {
        let (new_rs, old_rss) = apply(&scales, new_rs, old_rss);
        plan.scale = scales;
        plan.status = sync_rollout_status(&all(&new_rs, &old_rss), new_rs.as_ref(), &d, now);
        return Ok(plan);
    }
    if old_pods_running(new_rs.as_ref(), &old_rss, pods) {
        plan.status = sync_rollout_status(&all(&new_rs, &old_rss), new_rs.as_ref(), &d, now);
        return Ok(plan);
    }
    let new_rs = match new_rs {
        Some(rs) => rs,
        None => {
            let rs = new_replica_set(&d, &old_rss)?;
            created(&mut d, &rs, &mut plan, now);
            rs
        }
    };
    let want = replicas(&d);
    if rs_replicas(&new_rs) != want {
        plan.scale.push(Scale {
            name: name(&new_rs).to_owned(),
            replicas: want,
        });
    }
    let (new_rs, old_rss) = apply(&plan.scale, Some(new_rs), old_rss);
    if deployment_complete(&d, &d.status.clone().unwrap_or_default()) {
        plan.delete = cleanup_deployment(&d, &old_rss);
    }
    plan.status = sync_rollout_status(&all(&new_rs, &old_rss), new_rs.as_ref(), &d, now);
    Ok(plan)
}

/// Upstream `oldPodsRunning`: any old ReplicaSet still reports pods, or a pod not controlled
/// by the new ReplicaSet is not Succeeded or Failed.
pub fn old_pods_running(new_rs: Option<&ReplicaSet>, old_rss: &[ReplicaSet], pods: &[Pod]) -> bool {
    if old_rss.iter().map(rs_status_replicas).sum::<i32>() > 0 {
        return true;
    }
    let new_uid = new_rs.and_then(|rs| rs.metadata.uid.as_deref());
    pods.iter().any(|pod| {
        let owner = controller_of(&pod.metadata.owner_references).map(|o| o.uid.as_str());
        if new_uid.is_some() && owner == new_uid {
            return false;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        !matches!(phase, Some("Succeeded" | "Failed"))
    })
}

/// Upstream `isScalingEvent`: an active ReplicaSet's desired-replicas annotation differs from
/// `spec.replicas`.
pub fn is_scaling_event(d: &Deployment, rss: &[ReplicaSet]) -> bool {
    let want = replicas(d);
    filter_active_replica_sets(rss)
        .into_iter()
        .filter_map(|rs| annotation_i32(rs, DESIRED_REPLICAS_ANNOTATION))
        .any(|desired| desired != want)
}

/// Upstream `checkPausedConditions`: a paused Deployment with a deadline gets Progressing
/// Unknown/DeploymentPaused; resuming it gets Progressing Unknown/DeploymentResumed.
fn check_paused_conditions(d: &mut Deployment, now: Timestamp) {
    if !has_progress_deadline(d) {
        return;
    }
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let status = d.status.get_or_insert_with(Default::default);
    let reason = get_condition(status, CONDITION_PROGRESSING).and_then(|c| c.reason.clone());
    let paused_cond = reason.as_deref() == Some(REASON_PAUSED);
    if paused && !paused_cond {
        let c = new_condition(
            CONDITION_PROGRESSING,
            "Unknown",
            REASON_PAUSED,
            "Deployment is paused".to_owned(),
            now,
        );
        set_condition(status, c);
    } else if !paused && paused_cond {
        let c = new_condition(
            CONDITION_PROGRESSING,
            "Unknown",
            REASON_RESUMED,
            "Deployment is resumed".to_owned(),
            now,
        );
        set_condition(status, c);
    }
}

/// The existing new ReplicaSet's side of upstream `getNewReplicaSet`: bump its revision past
/// the old ones (a rollback), copy it to the Deployment, and note FoundNewReplicaSet when the
/// Deployment has a deadline but no Progressing condition yet.
fn sync_revision(
    d: &mut Deployment,
    rs: &mut ReplicaSet,
    old_rss: &[ReplicaSet],
    plan: &mut DeploymentPlan,
    now: Timestamp,
) {
    let next = max_revision(old_rss) + 1;
    if revision(rs) < next {
        let next = next.to_string();
        rs.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(REVISION_ANNOTATION.to_owned(), next.clone());
        plan.set_revision = Some((name(rs).to_owned(), next));
    }
    plan.revision = Some(revision(rs).to_string());
    if has_progress_deadline(d) {
        let status = d.status.get_or_insert_with(Default::default);
        if get_condition(status, CONDITION_PROGRESSING).is_none() {
            let msg = format!("Found new replica set {:?}", name(rs));
            set_condition(
                status,
                new_condition(CONDITION_PROGRESSING, "True", REASON_FOUND_NEW_RS, msg, now),
            );
        }
    }
}

/// The created ReplicaSet's side of upstream `getNewReplicaSet`.
fn created(d: &mut Deployment, rs: &ReplicaSet, plan: &mut DeploymentPlan, now: Timestamp) {
    plan.revision = Some(revision(rs).to_string());
    plan.create = Some(rs.clone());
    if has_progress_deadline(d) {
        let msg = format!("Created new replica set {:?}", name(rs));
        let status = d.status.get_or_insert_with(Default::default);
        set_condition(
            status,
            new_condition(
                CONDITION_PROGRESSING,
                "True",
                REASON_NEW_RS_CREATED,
                msg,
                now,
            ),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Rolling update (`rolling.go`).

/// Upstream `reconcileNewReplicaSet`: the new ReplicaSet's replicas if they should change —
/// down to `spec.replicas` when above it, else up by [`new_rs_new_replicas`].
pub fn reconcile_new_replica_set(
    d: &Deployment,
    all_rss: &[ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<Option<i32>, Error> {
    let (current, want) = (rs_replicas(new_rs), replicas(d));
    if current == want {
        return Ok(None);
    }
    if current > want {
        return Ok(Some(want));
    }
    let n = new_rs_new_replicas(d, all_rss, new_rs)?;
    Ok((n != current).then_some(n))
}

/// Upstream `reconcileOldReplicaSets`: how far the old ReplicaSets (active ones, `old_rss`)
/// may shrink without going below `replicas − maxUnavailable` available pods, counting the
/// new ReplicaSet's unavailable pods; unhealthy old replicas go first.
pub fn reconcile_old_replica_sets(
    d: &Deployment,
    all_rss: &[ReplicaSet],
    old_rss: &[ReplicaSet],
    new_rs: &ReplicaSet,
) -> Vec<Scale> {
    if old_rss.iter().map(rs_replicas).sum::<i32>() == 0 {
        return Vec::new();
    }
    let all_pods: i32 = all_rss.iter().map(rs_replicas).sum();
    let min_available = replicas(d) - max_unavailable(d);
    let new_rs_unavailable = rs_replicas(new_rs) - rs_available(new_rs);
    let max_scaled_down = all_pods - min_available - new_rs_unavailable;
    if max_scaled_down <= 0 {
        return Vec::new();
    }
    let (mut scales, _) = cleanup_unhealthy_replicas(old_rss, max_scaled_down);
    let (_, old_rss) = apply(&scales, None, old_rss.to_vec());
    let mut all_rss = old_rss.clone();
    all_rss.push(new_rs.clone());
    let (more, _) = scale_down_old_replica_sets_for_rolling_update(d, &all_rss, &old_rss);
    scales.extend(more);
    scales
}

/// Upstream `cleanupUnhealthyReplicas`: scale the old ReplicaSets (oldest first) down by
/// their unavailable replicas, at most `max_cleanup` in all. Returns the scales and the count.
pub fn cleanup_unhealthy_replicas(old_rss: &[ReplicaSet], max_cleanup: i32) -> (Vec<Scale>, i32) {
    let mut sorted: Vec<&ReplicaSet> = old_rss.iter().collect();
    sorted.sort_by(|a, b| by_creation(a, b));
    let mut scales = Vec::new();
    let mut total = 0;
    for rs in sorted {
        if total >= max_cleanup {
            break;
        }
        let (spec, available) = (rs_replicas(rs), rs_available(rs));
        if spec == 0 || spec == available {
            continue;
        }
        let down = (max_cleanup - total).min(spec - available);
        scales.push(Scale {
            name: name(rs).to_owned(),
            replicas: spec - down,
        });
        total += down;
    }
    (scales, total)
}

/// Upstream `scaleDownOldReplicaSetsForRollingUpdate`: scale old ReplicaSets down (oldest
/// first) by as many available pods as exceed `replicas − maxUnavailable`. Returns the scales
/// and the count.
pub fn scale_down_old_replica_sets_for_rolling_update(
    d: &Deployment,
    all_rss: &[ReplicaSet],
    old_rss: &[ReplicaSet],
) -> (Vec<Scale>, i32) {
    let min_available = replicas(d) - max_unavailable(d);
    let available: i32 = all_rss.iter().map(rs_available).sum();
    if available <= min_available {
        return (Vec::new(), 0);
    }
    let mut sorted: Vec<&ReplicaSet> = old_rss.iter().collect();
    sorted.sort_by(|a, b| by_creation(a, b));
    let budget = available - min_available;
    let mut scales = Vec::new();
    let mut total = 0;
    for rs in sorted {
        if total >= budget {
            break;
        }
        let spec = rs_replicas(rs);
        if spec == 0 {
            continue;
        }
        let down = spec.min(budget - total);
        scales.push(Scale {
            name: name(rs).to_owned(),
            replicas: spec - down,
        });
        total += down;
    }
    (scales, total)
}

// ---------------------------------------------------------------------------------------------
// Scaling (`sync.go` › `scale`) and history (`cleanupDeployment`).

/// Upstream `scale`: bring the ReplicaSets to `spec.replicas` (+ maxSurge during a rolling
/// update). One active ReplicaSet (or none: the newest) takes the whole count; a saturated new
/// ReplicaSet means the old ones go to 0; otherwise the difference is spread in proportion to
/// each ReplicaSet's share of the size recorded in its max-replicas annotation, the leftover
/// going to the largest ReplicaSet.
pub fn scale(d: &Deployment, new_rs: Option<&ReplicaSet>, old_rss: &[ReplicaSet]) -> Vec<Scale> {
    let want = replicas(d);
    if let Some(rs) = find_active_or_latest(new_rs, old_rss) {
        if rs_replicas(rs) == want {
            return Vec::new();
        }
        return vec![Scale {
            name: name(rs).to_owned(),
            replicas: want,
        }];
    }
    if new_rs.is_some_and(|rs| is_saturated(d, rs)) {
        return filter_active_replica_sets(old_rss)
            .into_iter()
            .map(|rs| Scale {
                name: name(rs).to_owned(),
                replicas: 0,
            })
            .collect();
    }
    if !is_rolling_update(d) {
        return Vec::new();
    }
    let mut all: Vec<&ReplicaSet> = old_rss.iter().chain(new_rs).collect();
    all.retain(|rs| rs_replicas(rs) > 0);
    let current: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let allowed = if want > 0 { want + max_surge(d) } else { 0 };
    let to_add = allowed - current;
    match to_add.cmp(&0) {
        Ordering::Greater => all.sort_by(|a, b| by_size_newer(a, b)),
        Ordering::Less => all.sort_by(|a, b| by_size_older(a, b)),
        Ordering::Equal => {}
    }
    let mut added = 0;
    let mut sizes: Vec<i32> = Vec::with_capacity(all.len());
    for rs in &all {
        let proportion = if to_add != 0 {
            get_proportion(Some(rs), d, to_add, added)
        } else {
            0
        };
        sizes.push(rs_replicas(rs) + proportion);
        added += proportion;
    }
    if let Some(first) = sizes.first_mut()
        && to_add != 0
    {
        *first = (*first + to_add - added).max(0);
    }
    let (desired, max) = replicas_annotations(d);
    all.iter()
        .zip(sizes)
        .filter(|(rs, size)| {
            *size != rs_replicas(rs)
                || annotation_i32(rs, DESIRED_REPLICAS_ANNOTATION) != Some(desired)
                || annotation_i32(rs, MAX_REPLICAS_ANNOTATION) != Some(max)
        })
        .map(|(rs, size)| Scale {
            name: name(rs).to_owned(),
            replicas: size,
        })
        .collect()
}

/// Upstream `GetProportion`: how many replicas `rs` gets of `to_add` (negative: removes),
/// `added` having been handed out already; never more than what is left.
pub fn get_proportion(rs: Option<&ReplicaSet>, d: &Deployment, to_add: i32, added: i32) -> i32 {
    let Some(rs) = rs else { return 0 };
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = get_replica_set_fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// Upstream `getReplicaSetFraction`: `rs`'s size scaled from the max-replicas annotation
/// (else `status.replicas` of the Deployment) to `replicas + maxSurge`, rounded half away from
/// zero, minus its size.
pub fn get_replica_set_fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    let want = replicas(d);
    if want == 0 {
        return -rs_replicas(rs);
    }
    let max_now = want + max_surge(d);
    let before = match annotation_i32(rs, MAX_REPLICAS_ANNOTATION) {
        Some(n) if n != 0 => n,
        _ => d.status.as_ref().map_or(0, |s| s.replicas.unwrap_or(0)),
    };
    if before == 0 {
        return 0;
    }
    let size = f64::from(rs_replicas(rs)) * f64::from(max_now) / f64::from(before);
    size.round() as i32 - rs_replicas(rs)
}

/// Upstream `FindActiveOrLatest`: the only active ReplicaSet; with none, the new one or else
/// the newest old one; with several, `None` (they are scaled proportionally).
pub fn find_active_or_latest<'a>(
    new_rs: Option<&'a ReplicaSet>,
    old_rss: &'a [ReplicaSet],
) -> Option<&'a ReplicaSet> {
    let mut olds: Vec<&ReplicaSet> = old_rss.iter().collect();
    olds.sort_by(|a, b| by_creation(b, a));
    let active: Vec<&ReplicaSet> = olds
        .iter()
        .copied()
        .chain(new_rs)
        .filter(|rs| rs_replicas(rs) > 0)
        .collect();
    match active.len() {
        0 => new_rs.or(olds.first().copied()),
        1 => Some(active[0]),
        _ => None,
    }
}

/// Upstream `IsSaturated`: the ReplicaSet has `spec.replicas` replicas, desired-replicas says
/// so, and all of them are available.
pub fn is_saturated(d: &Deployment, rs: &ReplicaSet) -> bool {
    let want = replicas(d);
    annotation_i32(rs, DESIRED_REPLICAS_ANNOTATION) == Some(want)
        && rs_replicas(rs) == want
        && rs_available(rs) == want
}

/// Upstream `cleanupDeployment`: the old ReplicaSets to delete, lowest revision first, beyond
/// `revisionHistoryLimit`; only those with no replicas (spec and status), whose status is
/// current and that are not already being deleted.
pub fn cleanup_deployment(d: &Deployment, old_rss: &[ReplicaSet]) -> Vec<String> {
    let limit = d
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10);
    if limit == i32::MAX {
        return Vec::new();
    }
    let mut alive: Vec<&ReplicaSet> = old_rss
        .iter()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let diff = alive.len() as i32 - limit;
    if diff <= 0 {
        return Vec::new();
    }
    alive.sort_by(|a, b| {
        revision(a)
            .cmp(&revision(b))
            .then_with(|| by_creation(a, b))
    });
    alive
        .into_iter()
        .take(diff as usize)
        .filter(|rs| {
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation);
            rs_status_replicas(rs) == 0
                && rs_replicas(rs) == 0
                && rs.metadata.generation.unwrap_or(0) <= observed.unwrap_or(0)
        })
        .map(|rs| name(rs).to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Fenceposts and replica arithmetic (`util/deployment_util.go`).

/// Upstream `ResolveFenceposts`: surge rounds up, unavailable rounds down, and both 0 makes
/// unavailable 1 so a rollout can always progress.
pub fn resolve_fenceposts(
    max_surge: &IntOrString,
    max_unavailable: &IntOrString,
    desired: i32,
) -> Result<(i32, i32), Error> {
    let surge = scaled_value(max_surge, desired, true)?;
    let unavailable = scaled_value(max_unavailable, desired, false)?;
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

/// Upstream `GetScaledValueFromIntOrPercent`: an integer as is, `N%` of `total` rounded up or
/// down; any other string is an error.
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, Error> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let Some(number) = s.strip_suffix('%') else {
                return Err(Error::IntOrString(
                    "invalid type: string is not a percentage".to_owned(),
                ));
            };
            let pct: i32 = number
                .parse()
                .map_err(|_| Error::IntOrString(format!("invalid value {s:?}")))?;
            let v = f64::from(pct) * f64::from(total) / 100.0;
            Ok(if round_up { v.ceil() } else { v.floor() } as i32)
        }
    }
}

/// Upstream `MaxUnavailable`: 0 unless RollingUpdate with replicas; never above replicas.
pub fn max_unavailable(d: &Deployment) -> i32 {
    let want = replicas(d);
    let Some((surge, unavailable)) = rolling_params(d) else {
        return 0;
    };
    if want == 0 {
        return 0;
    }
    let (_, unavailable) = resolve_fenceposts(&surge, &unavailable, want).unwrap_or((0, 0));
    unavailable.min(want)
}

/// Upstream `MaxSurge`: 0 unless RollingUpdate.
pub fn max_surge(d: &Deployment) -> i32 {
    let Some((surge, unavailable)) = rolling_params(d) else {
        return 0;
    };
    resolve_fenceposts(&surge, &unavailable, replicas(d))
        .unwrap_or((0, 0))
        .0
}

/// Upstream `NewRSNewReplicas`: RollingUpdate grows the new ReplicaSet up to
/// `replicas + maxSurge` pods in all (never past `replicas`); Recreate goes straight to
/// `replicas`.
pub fn new_rs_new_replicas(
    d: &Deployment,
    all_rss: &[ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<i32, Error> {
    let want = replicas(d);
    let Some((surge, _)) = rolling_params(d) else {
        return Ok(want);
    };
    let max_surge = scaled_value(&surge, want, true)?;
    let current: i32 = all_rss.iter().map(rs_replicas).sum();
    let max_total = want + max_surge;
    let new = rs_replicas(new_rs);
    if current >= max_total {
        return Ok(new);
    }
    Ok(new + (max_total - current).min(want - new))
}

/// The desired-replicas and max-replicas annotations a ReplicaSet of `d` carries after a
/// scale: `replicas` and `replicas + maxSurge` (upstream `SetReplicasAnnotations`).
pub fn replicas_annotations(d: &Deployment) -> (i32, i32) {
    let want = replicas(d);
    (want, want + max_surge(d))
}

/// The Deployment's `spec.replicas`, 1 when unset.
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// Whether the strategy is RollingUpdate (also when unset, the API default).
pub fn is_rolling_update(d: &Deployment) -> bool {
    rolling_params(d).is_some()
}

/// maxSurge and maxUnavailable of a RollingUpdate Deployment, 25 % each when unset.
fn rolling_params(d: &Deployment) -> Option<(IntOrString, IntOrString)> {
    let strategy = d.spec.as_ref().and_then(|s| s.strategy.as_ref());
    if strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate") {
        return None;
    }
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    let quarter = || IntOrString::String("25%".to_owned());
    Some((
        rolling
            .and_then(|r| r.max_surge.clone())
            .unwrap_or_else(quarter),
        rolling
            .and_then(|r| r.max_unavailable.clone())
            .unwrap_or_else(quarter),
    ))
}

// ---------------------------------------------------------------------------------------------
// Status and conditions (`sync.go` › `calculateStatus`, `progress.go`).

/// Upstream `DeploymentComplete`: every replica updated and available, none extra, and the
/// status observed the current generation.
pub fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let want = replicas(d);
    status.updated_replicas.unwrap_or(0) == want
        && status.replicas.unwrap_or(0) == want
        && status.available_replicas.unwrap_or(0) == want
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Upstream `DeploymentProgressing`: compared with `d.status`, more updated replicas, fewer
/// old ones, or more ready or available ones.
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// Upstream `DeploymentTimedOut`: with a deadline, the Progressing condition of `status`
/// already says ProgressDeadlineExceeded, or was last updated more than
/// `progressDeadlineSeconds` before `now` (and is not NewReplicaSetAvailable).
pub fn deployment_timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(cond) = get_condition(status, CONDITION_PROGRESSING) else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(REASON_NEW_RS_AVAILABLE) => return false,
        Some(REASON_TIMED_OUT) => return true,
        _ => {}
    }
    let Some(from) = cond.last_update_time.as_ref() else {
        return false;
    };
    let deadline = SignedDuration::from_secs(i64::from(progress_deadline_seconds(d)));
    from.0.checked_add(deadline).is_ok_and(|t| t < now)
}

/// When the loop should look at `d` again for the progress deadline (upstream
/// `requeueStuckDeployment`): the Progressing condition's last update plus the deadline, if
/// the rollout is under way and not complete.
pub fn progress_deadline_at(d: &Deployment, status: &DeploymentStatus) -> Option<Timestamp> {
    if !has_progress_deadline(d) || deployment_complete(d, status) {
        return None;
    }
    let cond = get_condition(status, CONDITION_PROGRESSING)?;
    if cond.reason.as_deref() == Some(REASON_TIMED_OUT) {
        return None;
    }
    let deadline = SignedDuration::from_secs(i64::from(progress_deadline_seconds(d)));
    cond.last_update_time.as_ref()?.0.checked_add(deadline).ok()
}

/// Upstream `calculateStatus`: the counts over `all_rss` (updated: the new ReplicaSet's),
/// observedGeneration, and the Available condition; other conditions are kept from `d`.
pub fn calculate_status(
    all_rss: &[ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let available: i32 = all_rss.iter().map(rs_available).sum();
    let total: i32 = all_rss.iter().map(rs_replicas).sum();
    let old = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(all_rss.iter().map(rs_status_replicas).sum()),
        updated_replicas: Some(new_rs.map_or(0, rs_status_replicas)),
        ready_replicas: Some(all_rss.iter().map(rs_ready).sum()),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions,
        terminating_replicas: None,
    };
    let cond = if available >= replicas(d) - max_unavailable(d) {
        new_condition(
            CONDITION_AVAILABLE,
            "True",
            REASON_MIN_AVAILABLE,
            "Deployment has minimum availability.".to_owned(),
            now,
        )
    } else {
        new_condition(
            CONDITION_AVAILABLE,
            "False",
            REASON_MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.".to_owned(),
            now,
        )
    };
    set_condition(&mut status, cond);
    status
}

/// Upstream `syncRolloutStatus`: [`calculate_status`] plus the Progressing condition —
/// NewReplicaSetAvailable when complete, ReplicaSetUpdated (lastUpdateTime refreshed) on
/// progress, ProgressDeadlineExceeded past the deadline; no Progressing condition without a
/// deadline. ReplicaSet failure conditions are not promoted (see the module's gaps).
pub fn sync_rollout_status(
    all_rss: &[ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let mut status = calculate_status(all_rss, new_rs, d, now);
    if !has_progress_deadline(d) {
        remove_condition(&mut status, CONDITION_PROGRESSING);
    }
    let current = d
        .status
        .as_ref()
        .and_then(|s| get_condition(s, CONDITION_PROGRESSING))
        .cloned();
    let complete_before = status.replicas == status.updated_replicas
        && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(REASON_NEW_RS_AVAILABLE);
    if has_progress_deadline(d) && !complete_before {
        let subject = match new_rs {
            Some(rs) => format!("ReplicaSet {:?}", name(rs)),
            None => format!("Deployment {:?}", d.metadata.name.as_deref().unwrap_or("")),
        };
        if deployment_complete(d, &status) {
            let msg = format!("{subject} has successfully progressed.");
            let c = new_condition(
                CONDITION_PROGRESSING,
                "True",
                REASON_NEW_RS_AVAILABLE,
                msg,
                now,
            );
            set_condition(&mut status, c);
        } else if deployment_progressing(d, &status) {
            let msg = format!("{subject} is progressing.");
            let mut c = new_condition(CONDITION_PROGRESSING, "True", REASON_RS_UPDATED, msg, now);
            if let Some(current) = &current {
                if current.status == "True" {
                    c.last_transition_time = current.last_transition_time.clone();
                }
                remove_condition(&mut status, CONDITION_PROGRESSING);
            }
            set_condition(&mut status, c);
        } else if deployment_timed_out(d, &status, now) {
            let msg = format!("{subject} has timed out progressing.");
            let c = new_condition(CONDITION_PROGRESSING, "False", REASON_TIMED_OUT, msg, now);
            set_condition(&mut status, c);
        }
    }
    status
}

/// Upstream `NewDeploymentCondition`: both times `now`.
pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Upstream `GetDeploymentCondition`.
pub fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Upstream `SetDeploymentCondition`: no change when status and reason are the same; keeps
/// lastTransitionTime when only the reason changes; the condition moves to the end.
pub fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = get_condition(status, &cond.type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &cond.type_);
    status.conditions.get_or_insert_with(Vec::new).push(cond);
}

/// Upstream `RemoveDeploymentCondition`.
pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
}

fn has_progress_deadline(d: &Deployment) -> bool {
    progress_deadline_seconds(d) != NO_DEADLINE
}

fn progress_deadline_seconds(d: &Deployment) -> i32 {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .unwrap_or(600)
}

// ---------------------------------------------------------------------------------------------
// Template hash, new and old ReplicaSets, revisions.

/// The `pod-template-hash` of a template (upstream `controller.ComputeHash`): FNV-1a (32 bit)
/// over the template, then the collision count as 8 little-endian bytes if set, the decimal
/// digits of the sum mapped through upstream's `SafeEncodeString` alphabet.
///
/// Upstream hashes a `DeepHashObject` dump of the Go struct; this hashes the template's JSON
/// (k8s-openapi serializes fields in a fixed order and maps sorted), so the value is stable
/// across runs and changes with the template, but is not bit-for-bit upstream's.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    // Serializing a k8s-openapi value to JSON cannot fail (no non-string map keys).
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(count) = collision_count {
        bytes.extend_from_slice(&(count as u32).to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
    }
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// Upstream `EqualIgnoreHash`: the templates are equal once the `pod-template-hash` label is
/// removed from both.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH_LABEL);
            if labels.is_empty()
                && let Some(m) = t.metadata.as_mut()
            {
                m.labels = None;
            }
        }
        // Go's semantic equality: an empty struct equals an absent one (`resources: {}`, which
        // `kubectl rollout undo` sends, is no change).
        let mut v = serde_json::to_value(&t).unwrap_or_default();
        drop_empty_objects(&mut v);
        v
    };
    strip(a) == strip(b)
}

/// Removes, recursively, object fields whose value is `{}` (after their own empty fields are
/// removed) or null.
fn drop_empty_objects(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for value in map.values_mut() {
                drop_empty_objects(value);
            }
            map.retain(|_, value| {
                !(value.is_null() || value.as_object().is_some_and(|o| o.is_empty()))
            });
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_empty_objects),
        _ => {}
    }
}

/// Upstream `FindNewReplicaSet`: the oldest ReplicaSet whose template equals the
/// Deployment's, ignoring the hash label.
pub fn find_new_replica_set<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let template = d.spec.as_ref().map(|s| &s.template)?;
    let mut sorted: Vec<&ReplicaSet> = rss.iter().collect();
    sorted.sort_by(|a, b| by_creation(a, b));
    sorted.into_iter().find(|rs| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| equal_ignore_hash(t, template))
    })
}

/// Upstream `FindOldReplicaSets` (all of them): every ReplicaSet but the new one.
pub fn find_old_replica_sets<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> Vec<&'a ReplicaSet> {
    let new = find_new_replica_set(d, rss).map(name);
    rss.iter().filter(|rs| Some(name(rs)) != new).collect()
}

/// Upstream `FilterActiveReplicaSets`: those with `spec.replicas > 0`.
pub fn filter_active_replica_sets(rss: &[ReplicaSet]) -> Vec<&ReplicaSet> {
    rss.iter().filter(|rs| rs_replicas(rs) > 0).collect()
}

/// Upstream `Revision`: the revision annotation, 0 when missing or unparsable.
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Upstream `MaxRevision`.
pub fn max_revision(rss: &[ReplicaSet]) -> i64 {
    rss.iter().map(revision).max().unwrap_or(0)
}

/// The ReplicaSet upstream `getNewReplicaSet` creates for `d`'s template: named
/// `<deployment>-<hash>`, the hash label on its template, labels and selector, controlled by
/// `d`, revision = max old revision + 1, the Deployment's annotations (bar the skipped ones)
/// and desired/max-replicas, and replicas from [`new_rs_new_replicas`].
pub fn new_replica_set(d: &Deployment, old_rss: &[ReplicaSet]) -> Result<ReplicaSet, Error> {
    let spec = d.spec.clone().unwrap_or_default();
    let collision = d.status.as_ref().and_then(|s| s.collision_count);
    let hash = compute_hash(&spec.template, collision);
    let mut template = spec.template.clone();
    let labels = {
        let meta = template.metadata.get_or_insert_with(Default::default);
        let labels = meta.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(POD_TEMPLATE_HASH_LABEL.to_owned(), hash.clone());
        labels.clone()
    };
    let mut selector: LabelSelector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH_LABEL.to_owned(), hash.clone());
    let dname = d.metadata.name.clone().unwrap_or_default();
    let skip = [
        LAST_APPLIED_ANNOTATION,
        REVISION_ANNOTATION,
        REVISION_HISTORY_ANNOTATION,
        DESIRED_REPLICAS_ANNOTATION,
        MAX_REPLICAS_ANNOTATION,
    ];
    let mut annotations: BTreeMap<String, String> = d
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (desired, max) = replicas_annotations(d);
    annotations.insert(
        REVISION_ANNOTATION.to_owned(),
        (max_revision(old_rss) + 1).to_string(),
    );
    annotations.insert(DESIRED_REPLICAS_ANNOTATION.to_owned(), desired.to_string());
    annotations.insert(MAX_REPLICAS_ANNOTATION.to_owned(), max.to_string());
    let mut rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{dname}-{hash}")),
            namespace: d.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".to_owned(),
                kind: "Deployment".to_owned(),
                name: dname,
                uid: d.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    };
    let mut all = old_rss.to_vec();
    all.push(rs.clone());
    let n = new_rs_new_replicas(d, &all, &rs)?;
    if let Some(s) = rs.spec.as_mut() {
        s.replicas = Some(n);
    }
    Ok(rs)
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or("")
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    super::replicaset::replicas(rs)
}

fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

fn annotation_i32(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

fn created_at(rs: &ReplicaSet) -> Option<Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Upstream `ReplicaSetsByCreationTimestamp`: older first, then by name.
fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created_at(a)
        .cmp(&created_at(b))
        .then_with(|| name(a).cmp(name(b)))
}

/// Upstream `ReplicaSetsBySizeNewer`: larger first, then newer first.
fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(b, a))
}

/// Upstream `ReplicaSetsBySizeOlder`: larger first, then older first.
fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(a, b))
}

/// The ReplicaSets after `scales`, as the next step of a sync sees them.
fn apply(
    scales: &[Scale],
    new_rs: Option<ReplicaSet>,
    old_rss: Vec<ReplicaSet>,
) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
    let set = |mut rs: ReplicaSet| {
        if let Some(s) = scales.iter().rev().find(|s| s.name == name(&rs)) {
            rs.spec.get_or_insert_with(Default::default).replicas = Some(s.replicas);
        }
        rs
    };
    (new_rs.map(set), old_rss.into_iter().map(set).collect())
}

fn all(new_rs: &Option<ReplicaSet>, old_rss: &[ReplicaSet]) -> Vec<ReplicaSet> {
    old_rss.iter().cloned().chain(new_rs.clone()).collect()
}

#[cfg(test)]
mod tests;
