//! Ports of upstream's ReplicaSet unit tests (`pkg/controller/controller_utils_test.go`
//! `TestSortingActivePodsWithRanks`, `replica_set_test.go` `TestSyncReplicaSetDormancy`-style
//! diffs, `pkg/api/v1/pod/util_test.go` `TestIsPodAvailable`); each test names its model.

use jiff::Timestamp;
use serde_json::json;

use super::*;

fn at(sec: i64) -> Timestamp {
    Timestamp::from_second(1_600_000_000 + sec).unwrap()
}

fn time(sec: i64) -> String {
    at(sec).to_string()
}

fn rs(replicas: i32, min_ready: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "rs-uid", "generation": 3},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "tier": "front"}}}
        }
    }))
    .unwrap()
}

/// A pod; `extra` is merged into its JSON (one level deep for metadata, spec, status).
fn pod(name: &str, extra: serde_json::Value) -> Pod {
    let mut p = json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"},
                     "creationTimestamp": time(0)},
        "spec": {"nodeName": "node"},
        "status": {"phase": "Running"}
    });
    for (k, v) in extra.as_object().unwrap() {
        let target = p[k].as_object_mut().unwrap();
        for (k2, v2) in v.as_object().unwrap() {
            target.insert(k2.clone(), v2.clone());
        }
    }
    serde_json::from_value(p).unwrap()
}

fn ready_since(sec: i64) -> serde_json::Value {
    json!({"phase": "Running",
           "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": time(sec)}]})
}

fn names(pods: &[&Pod]) -> Vec<String> {
    pods.iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect()
}

/// Mirrors `TestSortingActivePodsWithRanks` (without LogarithmicScaleDown): each pod must be
/// deleted before every pod after it.
#[test]
fn deletion_order_follows_active_pods_with_ranks() {
    let ordered = [
        pod(
            "unscheduled",
            json!({"spec": {"nodeName": null}, "status": {"phase": "Pending"}}),
        ),
        pod("pending", json!({"status": {"phase": "Pending"}})),
        pod("unknown", json!({"status": {"phase": "Unknown"}})),
        pod("not-ready", json!({"status": {"phase": "Running"}})),
        pod(
            "low-cost",
            json!({"metadata": {"annotations": {POD_DELETION_COST_ANNOTATION: "-10"}}, "status": ready_since(100)}),
        ),
        pod("ready-recently", json!({"status": ready_since(100)})),
        pod(
            "ready-longer-restarts",
            json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": time(50)}],
            "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 5}]}}),
        ),
        pod(
            "ready-longer-newer",
            json!({"metadata": {"creationTimestamp": time(10)}, "status": ready_since(50)}),
        ),
        pod("ready-longer-older", json!({"status": ready_since(50)})),
    ];
    for i in 0..ordered.len() {
        for j in i + 1..ordered.len() {
            assert_eq!(
                compare_for_deletion(&ordered[i], 1, &ordered[j], 1),
                Ordering::Less,
                "{} before {}",
                names(&[&ordered[i]])[0],
                names(&[&ordered[j]])[0]
            );
            assert_eq!(
                compare_for_deletion(&ordered[j], 1, &ordered[i], 1),
                Ordering::Greater
            );
        }
    }
    let mut shuffled: Vec<&Pod> = ordered.iter().rev().collect();
    shuffled.rotate_left(3);
    assert_eq!(
        names(&rank_for_deletion(&shuffled)),
        names(&ordered.iter().collect::<Vec<_>>())
    );
}

/// Mirrors the "doubled up" rank of `TestSortingActivePodsWithRanks`: with everything else
/// equal, a pod on a node with more of the same pods goes first.
#[test]
fn doubled_up_pods_go_first() {
    let a = pod(
        "a",
        json!({"spec": {"nodeName": "one"}, "status": ready_since(0)}),
    );
    let b = pod(
        "b",
        json!({"spec": {"nodeName": "two"}, "status": ready_since(0)}),
    );
    let c = pod(
        "c",
        json!({"spec": {"nodeName": "two"}, "status": ready_since(0)}),
    );
    let ranked = rank_for_deletion(&[&a, &b, &c]);
    assert_eq!(names(&ranked), ["b", "c", "a"]);
}

/// `manageReplicas`: too few active pods → create the difference; too many → delete the
/// worst; terminal and terminating pods do not count.
#[test]
fn pods_to_create_or_delete_diffs_active_pods() {
    let done = pod("done", json!({"status": {"phase": "Succeeded"}}));
    let going = pod("going", json!({"metadata": {"deletionTimestamp": time(5)}}));
    let ready = pod("ready", json!({"status": ready_since(0)}));
    let starting = pod("starting", json!({"status": {"phase": "Pending"}}));
    let pods = [done, going, ready.clone(), starting];
    assert_eq!(
        pods_to_create_or_delete(&rs(5, 0), &pods),
        PodsDiff::Create(3)
    );
    assert_eq!(pods_to_create_or_delete(&rs(2, 0), &pods), PodsDiff::None);
    assert_eq!(
        pods_to_create_or_delete(&rs(1, 0), &pods),
        PodsDiff::Delete(vec!["starting".into()])
    );
    assert_eq!(
        pods_to_create_or_delete(&rs(0, 0), &pods),
        PodsDiff::Delete(vec!["starting".into(), "ready".into()])
    );
    assert_eq!(
        pods_to_create_or_delete(&rs(2000, 0), &[ready]),
        PodsDiff::Create(BURST_REPLICAS)
    );
}

/// Mirrors `TestIsPodAvailable`: ready for more than minReadySeconds, strictly.
#[test]
fn pod_available_after_min_ready_seconds() {
    let p = pod("p", json!({"status": ready_since(0)}));
    assert!(is_pod_available(&p, 0, at(0)));
    assert!(!is_pod_available(&p, 10, at(10)));
    assert!(is_pod_available(&p, 10, at(11)));
    let not_ready = pod("n", json!({"status": {"phase": "Running"}}));
    assert!(!is_pod_available(&not_ready, 0, at(100)));
}

/// `calculateStatus`: replicas, fullyLabeled, ready, available with minReadySeconds,
/// observedGeneration; and when to look again.
#[test]
fn status_counts_pods() {
    let r = rs(3, 10);
    let pods = [
        pod(
            "old-ready",
            json!({"metadata": {"labels": {"app": "web", "tier": "front"}}, "status": ready_since(0)}),
        ),
        pod("new-ready", json!({"status": ready_since(95)})),
        pod("starting", json!({"status": {"phase": "Pending"}})),
        pod("done", json!({"status": {"phase": "Failed"}})),
    ];
    let s = calculate_status(&r, &pods, at(100));
    assert_eq!(s.replicas, 3);
    assert_eq!(s.fully_labeled_replicas, Some(1));
    assert_eq!(s.ready_replicas, Some(2));
    assert_eq!(s.available_replicas, Some(1));
    assert_eq!(s.observed_generation, Some(3));
    assert_eq!(next_availability_check(&r, &pods, at(100)), Some(at(105)));
}

/// `ClaimPods`: adopt orphans that match, release owned pods that stopped matching, leave
/// other controllers' pods and terminating pods alone.
#[test]
fn claim_adopts_and_releases() {
    let r = rs(1, 0);
    let owned = |labels: serde_json::Value| {
        pod(
            "p",
            json!({"metadata": {"labels": labels, "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-uid", "controller": true}]}}),
        )
    };
    assert_eq!(claim(&r, &pod("orphan", json!({}))), Claim::Adopt);
    assert!(should_adopt(&r, &pod("orphan", json!({}))));
    assert_eq!(
        claim(
            &r,
            &pod("other", json!({"metadata": {"labels": {"app": "db"}}}))
        ),
        Claim::Ignore
    );
    assert_eq!(
        claim(
            &r,
            &pod("going", json!({"metadata": {"deletionTimestamp": time(1)}}))
        ),
        Claim::Ignore
    );
    assert_eq!(claim(&r, &owned(json!({"app": "web"}))), Claim::Keep);
    assert_eq!(claim(&r, &owned(json!({"app": "db"}))), Claim::Release);
    assert!(should_release(&r, &owned(json!({"app": "db"}))));
    let foreign = pod(
        "f",
        json!({"metadata": {"ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "x", "controller": true}]}}),
    );
    assert_eq!(claim(&r, &foreign), Claim::Ignore);
}

/// Selector expressions as `metav1.LabelSelectorAsSelector` reads them.
#[test]
fn selector_expressions() {
    let sel: LabelSelector = serde_json::from_value(json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "edge"]},
                             {"key": "canary", "operator": "DoesNotExist"}]
    }))
    .unwrap();
    let labels =
        |v: serde_json::Value| serde_json::from_value::<BTreeMap<String, String>>(v).unwrap();
    assert!(selector_matches(
        Some(&sel),
        Some(&labels(json!({"app": "web", "tier": "edge"})))
    ));
    assert!(!selector_matches(
        Some(&sel),
        Some(&labels(json!({"app": "web", "tier": "back"})))
    ));
    assert!(!selector_matches(
        Some(&sel),
        Some(&labels(
            json!({"app": "web", "tier": "front", "canary": "1"})
        ))
    ));
    assert!(!selector_matches(
        Some(&LabelSelector::default()),
        Some(&labels(json!({"app": "web"})))
    ));
}
