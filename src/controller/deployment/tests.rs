//! Ports of upstream's unit tests (`pkg/controller/deployment/util/deployment_util_test.go`,
//! `rolling_test.go`, `sync_test.go`); each test names the one it mirrors.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DeploymentStrategy, RollingUpdateDeployment};
use serde_json::json;

use super::*;

fn int(n: i32) -> IntOrString {
    IntOrString::Int(n)
}

fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.to_owned())
}

/// Upstream `newDeployment` of `deployment_controller_test.go`: RollingUpdate with maxSurge and
/// maxUnavailable 0 unless given.
fn deployment(
    replicas: i32,
    surge: Option<IntOrString>,
    unavailable: Option<IntOrString>,
) -> Deployment {
    let mut d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "foo", "namespace": "default", "uid": "d-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"foo": "bar"}},
            "template": {"metadata": {"labels": {"foo": "bar"}},
                         "spec": {"containers": [{"name": "app", "image": "img:1"}]}},
            "progressDeadlineSeconds": i32::MAX
        }
    }))
    .unwrap();
    d.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
        type_: Some("RollingUpdate".to_owned()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(surge.unwrap_or(int(0))),
            max_unavailable: Some(unavailable.unwrap_or(int(0))),
        }),
    });
    d
}

fn ts(hour: i8) -> Timestamp {
    jiff::civil::date(2016, 5, 20)
        .at(hour, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
}

/// Upstream `rs(name, replicas, selector, timestamp)`.
fn rs(name: &str, replicas: i32, created: Option<Timestamp>) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("default".to_owned()),
            uid: Some(format!("{name}-uid")),
            creation_timestamp: created.map(Time),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            ..ReplicaSetSpec::default()
        }),
        status: None,
    }
}

fn with_available(mut r: ReplicaSet, available: i32) -> ReplicaSet {
    r.status = Some(k8s_openapi::api::apps::v1::ReplicaSetStatus {
        available_replicas: Some(available),
        ..Default::default()
    });
    r
}

fn with_replica_annotations(mut r: ReplicaSet, desired: i32, max: i32) -> ReplicaSet {
    let a = r.metadata.annotations.get_or_insert_with(BTreeMap::new);
    a.insert(DESIRED_REPLICAS_ANNOTATION.to_owned(), desired.to_string());
    a.insert(MAX_REPLICAS_ANNOTATION.to_owned(), max.to_string());
    r
}

/// Mirrors `TestResolveFenceposts`, plus spec §9.2's 25 %/25 % table.
#[test]
fn resolve_fenceposts_rounds_surge_up_and_unavailable_down() {
    assert_eq!(resolve_fenceposts(&pct("0%"), &pct("0%"), 0), Ok((0, 1)));
    assert_eq!(resolve_fenceposts(&pct("39%"), &pct("39%"), 10), Ok((4, 3)));
    assert!(resolve_fenceposts(&pct("oops"), &pct("39%"), 10).is_err());
    assert!(resolve_fenceposts(&pct("55%"), &pct("urg"), 10).is_err());
    for (replicas, surge, unavailable) in [
        (1, 1, 0),
        (2, 1, 0),
        (3, 1, 0),
        (4, 1, 1),
        (10, 3, 2),
        (100, 25, 25),
    ] {
        assert_eq!(
            resolve_fenceposts(&pct("25%"), &pct("25%"), replicas),
            Ok((surge, unavailable)),
            "{replicas} replicas"
        );
    }
}

/// Mirrors `TestNewRSNewReplicas`.
#[test]
fn new_rs_new_replicas_is_bounded_by_surge_and_replicas() {
    let rs5 = rs("rs5", 5, None);
    let cases = [
        ("can not scale up - to newRSReplicas", true, 1, 5, 1, 5),
        ("scale up - to depReplicas", true, 6, 2, 10, 6),
        ("recreate - to depReplicas", false, 3, 1, 1, 3),
    ];
    for (name, rolling, dep, new, surge, expected) in cases {
        let mut d = deployment(dep, Some(int(surge)), Some(int(1)));
        if !rolling {
            d.spec.as_mut().unwrap().strategy.as_mut().unwrap().type_ = Some("Recreate".to_owned());
        }
        let new_rs = rs("new", new, None);
        assert_eq!(
            new_rs_new_replicas(&d, std::slice::from_ref(&rs5), &new_rs),
            Ok(expected),
            "{name}"
        );
    }
}

/// Mirrors `TestMaxUnavailable`.
#[test]
fn max_unavailable_is_capped_by_replicas() {
    let cases = [
        (10, int(5), 5),
        (10, int(10), 10),
        (5, int(10), 5),
        (0, int(10), 0),
        (10, pct("50%"), 5),
        (10, pct("100%"), 10),
        (5, pct("100%"), 5),
    ];
    for (replicas, unavailable, expected) in cases {
        let d = deployment(replicas, Some(int(1)), Some(unavailable.clone()));
        assert_eq!(max_unavailable(&d), expected, "{replicas} {unavailable:?}");
    }
    let recreate: Deployment = serde_json::from_value(json!({
        "metadata": {}, "spec": {"selector": {}, "template": {}, "strategy": {"type": "Recreate"}}
    }))
    .unwrap();
    assert_eq!(max_unavailable(&recreate), 0);
}

fn status(current: i32, updated: i32, ready: i32, available: i32) -> DeploymentStatus {
    DeploymentStatus {
        replicas: Some(current),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        ..Default::default()
    }
}

/// Mirrors `TestDeploymentComplete`.
#[test]
fn deployment_complete_needs_every_replica_updated_and_available() {
    let cases = [
        ("min but not all pods available", (5, 5, 5, 4, 1, 0), false),
        ("min availability not honored", (5, 5, 5, 3, 1, 0), false),
        ("complete", (5, 5, 5, 5, 0, 0), true),
        ("all available but not updated", (5, 5, 4, 5, 0, 0), false),
        ("still running old pods", (1, 2, 1, 1, 0, 1), false),
        ("one replica never comes up", (1, 1, 1, 0, 1, 1), false),
    ];
    for (name, (desired, current, updated, available, unavailable, surge), expected) in cases {
        let mut d = deployment(desired, Some(int(surge)), Some(int(unavailable)));
        d.metadata.generation = None;
        let s = status(current, updated, 0, available);
        assert_eq!(deployment_complete(&d, &s), expected, "{name}");
    }
}

/// Mirrors `TestDeploymentProgressing`.
#[test]
fn deployment_progressing_compares_with_the_previous_status() {
    let cases = [
        ("updated pods", (10, 4, 4, 4), (10, 6, 4, 4), true),
        ("not progressing", (10, 4, 4, 4), (10, 4, 4, 4), false),
        ("old pods removed", (10, 4, 6, 6), (8, 4, 6, 6), true),
        ("less new pods", (10, 7, 3, 3), (10, 6, 3, 3), false),
        (
            "less overall but more new pods",
            (10, 4, 7, 7),
            (8, 8, 5, 5),
            true,
        ),
        ("more ready pods", (10, 10, 9, 8), (10, 10, 10, 8), true),
        (
            "more available pods",
            (10, 10, 10, 9),
            (10, 10, 10, 10),
            true,
        ),
    ];
    for (name, old, new, expected) in cases {
        let mut d = deployment(10, None, None);
        d.status = Some(status(old.0, old.1, old.2, old.3));
        let s = status(new.0, new.1, new.2, new.3);
        assert_eq!(deployment_progressing(&d, &s), expected, "{name}");
    }
}

/// Mirrors `TestDeploymentTimedOut` (upstream's nil deadline is "none"; here unset means the
/// default 600 s, so "none" is `MaxInt32`).
#[test]
fn deployment_timed_out_after_the_deadline() {
    let at = |min: i8, sec: i8| {
        jiff::civil::date(2016, 1, 1)
            .at(0, min, sec, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp()
    };
    let check = |deadline: i32, reason: &str, from: Timestamp, now: Timestamp| {
        let mut d = deployment(1, None, None);
        d.spec.as_mut().unwrap().progress_deadline_seconds = Some(deadline);
        let mut cond = new_condition(CONDITION_PROGRESSING, "True", reason, String::new(), from);
        if reason.is_empty() {
            cond.reason = None;
        }
        let s = DeploymentStatus {
            conditions: Some(vec![cond]),
            ..Default::default()
        };
        deployment_timed_out(&d, &s, now)
    };
    assert!(!check(i32::MAX, "", at(1, 9), at(1, 20)), "no deadline");
    assert!(check(10, "", at(1, 9), at(1, 20)), "11s > 10s");
    assert!(!check(10, "", at(1, 11), at(1, 20)), "9s < 10s");
    assert!(
        !check(10, REASON_NEW_RS_AVAILABLE, at(0, 0), at(1, 20)),
        "previous status was a complete deployment"
    );
    assert!(
        check(10, REASON_TIMED_OUT, at(1, 19), at(1, 20)),
        "already timed out"
    );
}

/// Mirrors `TestDeploymentController_reconcileNewReplicaSet`.
#[test]
fn reconcile_new_replica_set_scales_within_surge() {
    let cases = [
        (10, 0, 10, 0, None),
        (10, 2, 10, 0, Some(2)),
        (10, 2, 5, 0, Some(7)),
        (10, 2, 10, 2, None),
        (10, 2, 2, 11, Some(10)),
    ];
    for (i, (replicas, surge, old, new, expected)) in cases.into_iter().enumerate() {
        let new_rs = rs("foo-v2", new, None);
        let old_rs = rs("foo-v1", old, None);
        let d = deployment(replicas, Some(int(surge)), Some(int(0)));
        let got = reconcile_new_replica_set(&d, &[new_rs.clone(), old_rs], &new_rs);
        assert_eq!(got, Ok(expected), "scenario {i}");
    }
}

/// Mirrors `TestDeploymentController_reconcileOldReplicaSets` (upstream checks only whether
/// it scaled; the expected old replicas are checked here too).
#[test]
fn reconcile_old_replica_sets_keeps_min_available() {
    let cases = [
        (10, 0, 10, 0, 10, 0, Some(9)),
        (10, 2, 10, 0, 10, 0, Some(8)),
        (10, 2, 10, 0, 8, 0, Some(8)),
        (10, 2, 10, 0, 9, 0, Some(8)),
        (10, 2, 8, 2, 8, 0, None),
    ];
    for (i, (replicas, unavailable, old, new, old_ready, new_ready, expected)) in
        cases.into_iter().enumerate()
    {
        let new_rs = with_available(rs("foo-new", new, None), new_ready);
        let old_rs = with_available(rs("foo-old", old, None), old_ready);
        let d = deployment(replicas, Some(int(0)), Some(int(unavailable)));
        let all_rss = [old_rs.clone(), new_rs.clone()];
        let scales = reconcile_old_replica_sets(&d, &all_rss, &[old_rs], &new_rs);
        let last = scales.last().map(|s| s.replicas);
        assert_eq!(last, expected, "scenario {i}: {scales:?}");
    }
}

/// Mirrors `TestDeploymentController_cleanupUnhealthyReplicas`.
#[test]
fn cleanup_unhealthy_replicas_removes_unavailable_first() {
    for (old, ready, max_cleanup, expected) in
        [(10, 8, 1, 1), (10, 8, 3, 2), (10, 8, 0, 0), (10, 10, 3, 0)]
    {
        let old_rs = with_available(rs("foo-v2", old, None), ready);
        let (scales, count) = cleanup_unhealthy_replicas(&[old_rs], max_cleanup);
        assert_eq!(count, expected);
        if expected > 0 {
            assert_eq!(
                scales,
                [Scale {
                    name: "foo-v2".into(),
                    replicas: old - expected
                }]
            );
        } else {
            assert!(scales.is_empty());
        }
    }
}

/// Mirrors `TestDeploymentController_scaleDownOldReplicaSetsForRollingUpdate`.
#[test]
fn scale_down_old_replica_sets_for_rolling_update_respects_max_unavailable() {
    let cases = [
        (10, 0, 10, 10, Some(9)),
        (10, 2, 10, 10, Some(8)),
        (10, 2, 8, 10, None),
        (10, 2, 10, 0, None),
        (10, 2, 1, 10, None),
    ];
    for (i, (replicas, unavailable, ready, old, expected)) in cases.into_iter().enumerate() {
        let old_rs = with_available(rs("foo-v2", old, None), ready);
        let d = deployment(replicas, Some(int(0)), Some(int(unavailable)));
        let all_rss = [old_rs.clone()];
        let (scales, _) = scale_down_old_replica_sets_for_rolling_update(&d, &all_rss, &all_rss);
        assert_eq!(scales.first().map(|s| s.replicas), expected, "scenario {i}");
        assert!(scales.len() <= 1);
    }
}

/// Mirrors `TestScale`: each case scales from `old_d` (whose replicas and surge are in the
/// ReplicaSets' annotations) to `d`. Returns the sizes after the plan, new first.
fn scale_case(
    d: &Deployment,
    old_d: &Deployment,
    new_rs: Option<ReplicaSet>,
    old_rss: Vec<ReplicaSet>,
) -> Vec<i32> {
    let (desired, max) = replicas_annotations(old_d);
    let annotate = |r: ReplicaSet| with_replica_annotations(r, desired, max);
    let new_rs = new_rs.map(annotate);
    let old_rss: Vec<ReplicaSet> = old_rss.into_iter().map(annotate).collect();
    let scales = scale(d, new_rs.as_ref(), &old_rss);
    let (new_rs, old_rss) = apply(&scales, new_rs, old_rss);
    new_rs.iter().chain(&old_rss).map(rs_replicas).collect()
}

/// Name, deployment, old deployment, new ReplicaSet, old ReplicaSets, expected sizes.
type ScaleCase = (
    &'static str,
    Deployment,
    Deployment,
    Option<ReplicaSet>,
    Vec<ReplicaSet>,
    Vec<i32>,
);

#[test]
fn scale_is_proportional() {
    let (new, old, older) = (Some(ts(2)), Some(ts(1)), Some(ts(0)));
    let plain = |n| deployment(n, None, None);
    let surge = |n, s| deployment(n, Some(int(s)), None);
    let cases: Vec<ScaleCase> = vec![
        (
            "normal scaling event: 10 -> 12",
            plain(12),
            plain(10),
            Some(rs("foo-v1", 10, new)),
            vec![],
            vec![12],
        ),
        (
            "normal scaling event: 10 -> 5",
            plain(5),
            plain(10),
            Some(rs("foo-v1", 10, new)),
            vec![],
            vec![5],
        ),
        (
            "proportional scaling: 5 -> 10",
            plain(10),
            plain(5),
            Some(rs("foo-v2", 2, new)),
            vec![rs("foo-v1", 3, old)],
            vec![4, 6],
        ),
        (
            "proportional scaling: 5 -> 3",
            plain(3),
            plain(5),
            Some(rs("foo-v2", 2, new)),
            vec![rs("foo-v1", 3, old)],
            vec![1, 2],
        ),
        (
            "proportional scaling: 9 -> 4",
            plain(4),
            plain(9),
            Some(rs("foo-v2", 8, new)),
            vec![rs("foo-v1", 1, old)],
            vec![4, 0],
        ),
        (
            "proportional scaling: 7 -> 10",
            plain(10),
            plain(7),
            Some(rs("foo-v3", 2, new)),
            vec![rs("foo-v2", 3, old), rs("foo-v1", 2, older)],
            vec![3, 4, 3],
        ),
        (
            "proportional scaling: 13 -> 8",
            plain(8),
            plain(13),
            Some(rs("foo-v3", 2, new)),
            vec![rs("foo-v2", 8, old), rs("foo-v1", 3, older)],
            vec![1, 5, 2],
        ),
        (
            "leftover distribution: 3 -> 4",
            plain(4),
            plain(3),
            Some(rs("foo-v3", 1, new)),
            vec![rs("foo-v2", 1, old), rs("foo-v1", 1, older)],
            vec![2, 1, 1],
        ),
        (
            "leftover distribution: 3 -> 2",
            plain(2),
            plain(3),
            Some(rs("foo-v3", 1, new)),
            vec![rs("foo-v2", 1, old), rs("foo-v1", 1, older)],
            vec![1, 1, 0],
        ),
        (
            "proportional scaling (no new rs): 4 -> 5",
            plain(5),
            plain(4),
            None,
            vec![rs("foo-v2", 2, old), rs("foo-v1", 2, older)],
            vec![3, 2],
        ),
        (
            "proportional scaling: 6 -> 0",
            plain(0),
            plain(6),
            Some(rs("foo-v3", 3, new)),
            vec![rs("foo-v2", 2, old), rs("foo-v1", 1, older)],
            vec![0, 0, 0],
        ),
        (
            "proportional scaling: 0 -> 6",
            plain(6),
            plain(6),
            Some(rs("foo-v3", 0, new)),
            vec![rs("foo-v2", 0, old), rs("foo-v1", 0, older)],
            vec![6, 0, 0],
        ),
        (
            "deployment with surge pods",
            surge(20, 2),
            surge(10, 2),
            Some(rs("foo-v2", 6, new)),
            vec![rs("foo-v1", 6, old)],
            vec![11, 11],
        ),
        (
            "change both surge and size",
            surge(50, 6),
            surge(10, 3),
            Some(rs("foo-v2", 5, new)),
            vec![rs("foo-v1", 8, old)],
            vec![22, 34],
        ),
        (
            "change both size and template",
            plain(14),
            plain(10),
            None,
            vec![rs("foo-v2", 7, new), rs("foo-v1", 3, old)],
            vec![10, 4],
        ),
        // spec §10.8 DEP-05: 10 replicas, surge 3, unavailable 2, stuck at 8 + 5; scaled to 30.
        (
            "DEP-05 proportional scaling",
            deployment(30, Some(int(3)), Some(int(2))),
            deployment(10, Some(int(3)), Some(int(2))),
            Some(rs("second", 5, new)),
            vec![rs("first", 8, old)],
            vec![13, 20],
        ),
    ];
    for (name, d, old_d, new_rs, old_rss, expected) in cases {
        assert_eq!(scale_case(&d, &old_d, new_rs, old_rss), expected, "{name}");
    }
}

/// Mirrors `TestScale` "failed rs update" without the failure: foo-v2 carries desired 3.
#[test]
fn scale_uses_each_replica_set_annotation() {
    let d = deployment(5, None, None);
    let new_rs = with_replica_annotations(rs("foo-v3", 2, Some(ts(2))), 5, 5);
    let olds = vec![
        with_replica_annotations(rs("foo-v2", 1, Some(ts(1))), 3, 3),
        with_replica_annotations(rs("foo-v1", 1, Some(ts(0))), 5, 5),
    ];
    let scales = scale(&d, Some(&new_rs), &olds);
    let (new_rs, olds) = apply(&scales, Some(new_rs), olds);
    let sizes: Vec<i32> = new_rs.iter().chain(&olds).map(rs_replicas).collect();
    assert_eq!(sizes, [2, 2, 1]);
}

/// Mirrors `TestScale` "saturated but broken new replica set does not affect old pods".
#[test]
fn scale_leaves_a_broken_saturated_rollout_alone() {
    let d = deployment(2, Some(int(1)), Some(int(1)));
    let new_rs = with_available(rs("foo-v2", 2, Some(ts(2))), 0);
    let sizes = scale_case(&d, &d, Some(new_rs), vec![rs("foo-v1", 1, Some(ts(1)))]);
    assert_eq!(sizes, [2, 1]);
}

/// Mirrors `TestDeploymentController_cleanupDeployment`.
#[test]
fn cleanup_deployment_deletes_empty_old_replica_sets_beyond_the_limit() {
    let with_status = |name: &str, spec: i32, status: i32| {
        let mut r = rs(name, spec, None);
        r.status = Some(k8s_openapi::api::apps::v1::ReplicaSetStatus {
            replicas: status,
            ..Default::default()
        });
        r
    };
    let mut deleted = with_status("foo-1", 0, 0);
    deleted.metadata.deletion_timestamp = Some(Time(ts(0)));
    let cases = [
        (
            vec![
                with_status("foo-1", 0, 0),
                with_status("foo-2", 0, 0),
                with_status("foo-3", 0, 0),
            ],
            1,
            2,
        ),
        (
            vec![
                with_status("foo-1", 0, 0),
                with_status("foo-2", 0, 1),
                with_status("foo-3", 1, 0),
                with_status("foo-4", 1, 1),
            ],
            0,
            1,
        ),
        (
            vec![with_status("foo-1", 0, 0), with_status("foo-2", 0, 0)],
            0,
            2,
        ),
        (
            vec![with_status("foo-1", 1, 1), with_status("foo-2", 1, 1)],
            0,
            0,
        ),
        (vec![deleted], 0, 0),
        (
            vec![
                with_status("foo-1", 0, 0),
                with_status("foo-2", 0, 0),
                with_status("foo-3", 0, 0),
            ],
            i32::MAX,
            0,
        ),
    ];
    for (i, (olds, limit, expected)) in cases.into_iter().enumerate() {
        let mut d = deployment(1, None, None);
        d.spec.as_mut().unwrap().revision_history_limit = Some(limit);
        assert_eq!(
            cleanup_deployment(&d, &olds).len(),
            expected,
            "scenario {i}"
        );
    }
}

/// The hash is stable, changes with the template and the collision count, and uses
/// upstream's alphabet; `equal_ignore_hash` ignores the label (upstream `TestEqualIgnoreHash`).
#[test]
fn template_hash_and_equality() {
    let d = deployment(1, None, None);
    let t = d.spec.as_ref().unwrap().template.clone();
    let h = compute_hash(&t, None);
    assert_eq!(h, compute_hash(&t, None));
    assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    assert_ne!(h, compute_hash(&t, Some(1)));
    let mut t2 = t.clone();
    t2.spec.as_mut().unwrap().containers[0].image = Some("img:2".into());
    assert_ne!(h, compute_hash(&t2, None));
    let mut labelled = t.clone();
    labelled
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .insert(POD_TEMPLATE_HASH_LABEL.into(), h);
    assert!(equal_ignore_hash(&t, &labelled));
    assert!(!equal_ignore_hash(&t, &t2));
}

/// spec §9.3 steps 1-3 end to end: a template change creates revision 2 with maxSurge pods;
/// once it is available the old ReplicaSet shrinks; DEP-01's adopted revision + 1.
#[test]
fn rolling_update_creates_then_shifts() {
    let mut d = deployment(3, Some(int(1)), Some(int(0)));
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(600);
    d.status = Some(status(3, 0, 3, 3));
    let mut old = with_available(rs("foo-old", 3, Some(ts(0))), 3);
    let st = old.status.as_mut().unwrap();
    (st.replicas, st.ready_replicas) = (3, Some(3));
    old.spec.as_mut().unwrap().template = Some(PodTemplateSpec::default());
    old.metadata.annotations = Some(
        [(
            REVISION_ANNOTATION.to_owned(),
            "3546343826724305832".to_owned(),
        )]
        .into(),
    );
    let plan = sync_deployment(&d, std::slice::from_ref(&old), &[], ts(1)).unwrap();
    let created = plan.create.expect("a new ReplicaSet");
    assert_eq!(revision(&created), 3546343826724305833);
    assert_eq!(created.spec.as_ref().unwrap().replicas, Some(1));
    assert!(name(&created).starts_with("foo-"));
    let cond = get_condition(&plan.status, CONDITION_PROGRESSING).unwrap();
    assert_eq!(cond.reason.as_deref(), Some(REASON_NEW_RS_CREATED));

    let new = with_available(created, 1);
    let plan = sync_deployment(&d, &[old, new], &[], ts(1)).unwrap();
    assert_eq!(
        plan.scale,
        [Scale {
            name: "foo-old".into(),
            replicas: 2
        }]
    );
}

/// Recreate: old ReplicaSets go to 0 first, the new one is created only once no old pod runs.
#[test]
fn recreate_waits_for_old_pods() {
    let mut d = deployment(2, None, None);
    d.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    let mut old = rs("foo-old", 2, Some(ts(0)));
    old.spec.as_mut().unwrap().template = Some(PodTemplateSpec::default());
    let plan = sync_deployment(&d, std::slice::from_ref(&old), &[], ts(1)).unwrap();
    assert_eq!(
        plan.scale,
        [Scale {
            name: "foo-old".into(),
            replicas: 0
        }]
    );
    assert!(plan.create.is_none());

    old.spec.as_mut().unwrap().replicas = Some(0);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "foo-old", "uid": "foo-old-uid", "controller": true}]},
        "status": {"phase": "Running"}
    }))
    .unwrap();
    let plan = sync_deployment(
        &d,
        std::slice::from_ref(&old),
        std::slice::from_ref(&pod),
        ts(1),
    )
    .unwrap();
    assert!(plan.create.is_none() && plan.scale.is_empty());

    let plan = sync_deployment(&d, std::slice::from_ref(&old), &[], ts(1)).unwrap();
    assert_eq!(plan.create.unwrap().spec.unwrap().replicas, Some(2));
}

/// A paused Deployment does not roll out, only scales, and says DeploymentPaused.
#[test]
fn paused_deployment_only_scales() {
    let mut d = deployment(4, Some(int(1)), None);
    d.spec.as_mut().unwrap().paused = Some(true);
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(600);
    let mut old = rs("foo-old", 2, Some(ts(0)));
    old.spec.as_mut().unwrap().template = Some(PodTemplateSpec::default());
    let plan = sync_deployment(&d, &[old], &[], ts(1)).unwrap();
    assert!(plan.create.is_none());
    assert_eq!(
        plan.scale,
        [Scale {
            name: "foo-old".into(),
            replicas: 4
        }]
    );
    let cond = get_condition(&plan.status, CONDITION_PROGRESSING).unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_deref()),
        ("Unknown", Some(REASON_PAUSED))
    );
}

/// The status counts and Available/Progressing conditions of `syncRolloutStatus`.
#[test]
fn rollout_status_reports_counts_and_conditions() {
    let mut d = deployment(2, Some(int(1)), Some(int(0)));
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(600);
    let mut new = with_available(rs("foo-new", 2, Some(ts(1))), 2);
    let st = new.status.as_mut().unwrap();
    st.replicas = 2;
    st.ready_replicas = Some(2);
    let s = sync_rollout_status(std::slice::from_ref(&new), Some(&new), &d, ts(2));
    assert_eq!(
        (
            s.replicas,
            s.updated_replicas,
            s.ready_replicas,
            s.available_replicas,
            s.unavailable_replicas
        ),
        (Some(2), Some(2), Some(2), Some(2), Some(0))
    );
    assert_eq!(s.observed_generation, Some(1));
    let avail = get_condition(&s, CONDITION_AVAILABLE).unwrap();
    assert_eq!(
        avail.message.as_deref(),
        Some("Deployment has minimum availability.")
    );
    let progressing = get_condition(&s, CONDITION_PROGRESSING).unwrap();
    assert_eq!(progressing.reason.as_deref(), Some(REASON_NEW_RS_AVAILABLE));
    assert_eq!(
        progressing.message.as_deref(),
        Some("ReplicaSet \"foo-new\" has successfully progressed.")
    );

    // Stuck: no progress since the condition's last update, past the deadline.
    let stuck = with_available(rs("foo-new", 2, Some(ts(1))), 0);
    d.status = Some(DeploymentStatus {
        conditions: Some(vec![new_condition(
            CONDITION_PROGRESSING,
            "True",
            REASON_RS_UPDATED,
            String::new(),
            ts(0),
        )]),
        ..Default::default()
    });
    let s = sync_rollout_status(std::slice::from_ref(&stuck), Some(&stuck), &d, ts(1));
    let progressing = get_condition(&s, CONDITION_PROGRESSING).unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_deref()),
        ("False", Some(REASON_TIMED_OUT))
    );
    assert_eq!(
        progressing.message.as_deref(),
        Some("ReplicaSet \"foo-new\" has timed out progressing.")
    );
    assert_eq!(
        get_condition(&s, CONDITION_AVAILABLE)
            .unwrap()
            .reason
            .as_deref(),
        Some(REASON_MIN_UNAVAILABLE)
    );
}

/// `kubectl rollout undo` sends the old template with `resources: {}`: still the same template
/// as the old ReplicaSet's, so the rollback reuses it (upstream: semantic equality).
#[test]
fn equal_ignore_hash_treats_empty_structs_as_absent() {
    let a: PodTemplateSpec = serde_json::from_value(serde_json::json!({
        "metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
        "spec": {"containers": [{"name": "app", "image": "x"}]}
    }))
    .unwrap();
    let b: PodTemplateSpec = serde_json::from_value(serde_json::json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "x", "resources": {}}]}
    }))
    .unwrap();
    assert!(equal_ignore_hash(&a, &b));
    let c: PodTemplateSpec = serde_json::from_value(serde_json::json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "y"}]}
    }))
    .unwrap();
    assert!(!equal_ignore_hash(&a, &c));
}
