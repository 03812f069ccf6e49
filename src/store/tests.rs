//! Store semantics: creation defaults, graceful delete resolution (spec §1.1), aggregation.

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use serde_json::Value;

use super::*;

fn pod(name: &str, grace: Option<i64>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("default".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".to_owned(),
                ..Container::default()
            }],
            termination_grace_period_seconds: grace,
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

#[test]
fn create_sets_server_fields_and_rejects_duplicates() {
    let store = Store::new();
    let p = store.create_pod(pod("web", Some(30)), "node-1").unwrap();
    assert!(p.metadata.uid.is_some());
    assert_eq!(p.metadata.resource_version.as_deref(), Some("1"));
    assert_eq!(p.metadata.generation, Some(1));
    assert_eq!(
        p.spec.as_ref().unwrap().node_name.as_deref(),
        Some("node-1")
    );
    assert_eq!(
        store
            .create_pod(pod("web", Some(30)), "node-1")
            .unwrap_err(),
        Error::AlreadyExists {
            resource: "pods".to_owned(),
            name: "web".to_owned()
        }
    );
    let mut generated = pod("", None);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("job-".to_owned());
    let g = store.create_pod(generated, "node-1").unwrap();
    assert!(g.metadata.name.as_deref().unwrap().starts_with("job-"));
    assert_eq!(g.metadata.name.as_deref().unwrap().len(), "job-".len() + 5);
}

#[test]
fn graceful_delete_resolution() {
    let store = Store::new();
    let key = ObjectKey::new("default", "web");
    store.create_pod(pod("web", Some(30)), "node-1").unwrap();
    // No grace given: the spec's 30.
    let DeleteOutcome::Terminating(p) = store.delete_pod(&key, None).unwrap() else {
        panic!()
    };
    assert_eq!(p.metadata.deletion_grace_period_seconds, Some(30));
    let first_deadline = p.metadata.deletion_timestamp.clone().unwrap().0;
    // A longer grace is ignored (DEL-X3).
    let DeleteOutcome::Terminating(p) = store.delete_pod(&key, Some(60)).unwrap() else {
        panic!()
    };
    assert_eq!(p.metadata.deletion_grace_period_seconds, Some(30));
    // A shorter one moves the deadline earlier (DEL-X2).
    let DeleteOutcome::Terminating(p) = store.delete_pod(&key, Some(10)).unwrap() else {
        panic!()
    };
    assert_eq!(p.metadata.deletion_grace_period_seconds, Some(10));
    let second_deadline = p.metadata.deletion_timestamp.clone().unwrap().0;
    let moved = first_deadline.duration_since(second_deadline).as_secs();
    assert_eq!(moved, 20);
    // Force (0) removes at once.
    assert!(matches!(
        store.delete_pod(&key, Some(0)).unwrap(),
        DeleteOutcome::Removed(_)
    ));
    assert!(store.get_pod(&key).is_none());
}

#[test]
fn negative_grace_is_one_and_terminal_pods_go_at_once() {
    let store = Store::new();
    let key = ObjectKey::new("default", "a");
    store.create_pod(pod("a", Some(30)), "n").unwrap();
    let DeleteOutcome::Terminating(p) = store.delete_pod(&key, Some(-5)).unwrap() else {
        panic!()
    };
    assert_eq!(p.metadata.deletion_grace_period_seconds, Some(1));

    let key = ObjectKey::new("default", "done");
    let created = store.create_pod(pod("done", Some(30)), "n").unwrap();
    let status = PodStatus {
        phase: Some("Succeeded".to_owned()),
        ..PodStatus::default()
    };
    store
        .update_pod_status(&key, created.metadata.uid.as_deref().unwrap(), status)
        .unwrap();
    assert!(matches!(
        store.delete_pod(&key, None).unwrap(),
        DeleteOutcome::Removed(_)
    ));
}

#[test]
fn status_updates_check_uid_and_publish_changes() {
    let store = Store::new();
    let (_, mut rx) = store.watch();
    let key = ObjectKey::new("default", "web");
    let p = store.create_pod(pod("web", None), "n").unwrap();
    let uid = p.metadata.uid.clone().unwrap();
    let status = PodStatus {
        phase: Some("Running".to_owned()),
        ..PodStatus::default()
    };
    store.update_pod_status(&key, &uid, status.clone()).unwrap();
    // Unchanged status: no new resourceVersion, no change published.
    store.update_pod_status(&key, &uid, status).unwrap();
    assert_eq!(
        store.update_pod_status(&key, "other", PodStatus::default()),
        Err(Error::Conflict {
            resource: "pods".to_owned(),
            name: "web".to_owned()
        })
    );
    store.remove_pod(&key, &uid).unwrap();
    let kinds: Vec<ChangeType> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|c| c.change_type)
        .collect();
    assert_eq!(
        kinds,
        [ChangeType::Added, ChangeType::Modified, ChangeType::Deleted]
    );
}

#[test]
fn identical_events_are_counted() {
    let store = Store::new();
    let p = store.create_pod(pod("web", None), "n").unwrap();
    let source = events::Source {
        component: "kubelet".to_owned(),
        host: Some("n".to_owned()),
    };
    let e = |msg: &str| events::pod_event(&p, None, "Warning", "BackOff", msg, &source);
    store.record_event(e("a"));
    store.record_event(e("a"));
    store.record_event(e("b"));
    let events = store.list_events();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events
            .iter()
            .find(|e| e.message.as_deref() == Some("a"))
            .unwrap()
            .count,
        Some(2)
    );
}

#[test]
fn sqlite_keeps_objects_and_resource_version_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let uid;
    {
        let store = Store::open(&path).unwrap();
        store.ensure_default_namespace();
        let p = store.create_pod(pod("web", Some(30)), "n").unwrap();
        uid = p.metadata.uid.clone().unwrap();
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default"}, "data": {"k": "v"}});
        store.create(&resources::CONFIG_MAPS, cm).unwrap();
        store
            .remove(&resources::CONFIG_MAPS, "default", "cfg", None)
            .unwrap();
        store.close();
    }
    let store = Store::open(&path).unwrap();
    let p = store.get_pod(&ObjectKey::new("default", "web")).unwrap();
    assert_eq!(p.metadata.uid.as_deref(), Some(uid.as_str()));
    assert!(
        store
            .get(&resources::CONFIG_MAPS, "default", "cfg")
            .is_none()
    );
    // Namespace, pod, configmap create and delete: the counter continues after 4.
    assert_eq!(store.resource_version(), 4);
    let p2 = store.create_pod(pod("api", None), "n").unwrap();
    assert_eq!(p2.metadata.resource_version.as_deref(), Some("5"));
}

#[tokio::test]
async fn writes_become_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let p = store.create_pod(pod("web", None), "n").unwrap();
    let rv: u64 = p
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), store.wait_durable(rv))
        .await
        .expect("the write reaches the disk");
}

#[test]
fn watch_replays_history_and_expires() {
    let store = Store::new();
    for i in 0..5 {
        store.create_pod(pod(&format!("p{i}"), None), "n").unwrap();
    }
    let (replay, _rx) = store.watch_from(3).unwrap();
    let rvs: Vec<u64> = replay.iter().map(|c| c.resource_version).collect();
    assert_eq!(rvs, [4, 5]);
    let small = Store {
        max_history: 2,
        ..Store::new()
    };
    for i in 0..5 {
        small.create_pod(pod(&format!("p{i}"), None), "n").unwrap();
    }
    assert!(matches!(small.watch_from(1), Err(Error::Expired { .. })));
    assert_eq!(small.watch_from(3).unwrap().0.len(), 2);
}

#[test]
fn watch_replays_superseded_and_deleted_versions() {
    // Superseded versions are kept as JSON in the history; a replay gives them back whole,
    // with the version each change replaced.
    let store = Store::new();
    let created = store.create_pod(pod("web", None), "n").unwrap();
    let key = ObjectKey::new("default", "web");
    let uid = created.metadata.uid.clone().unwrap();
    for phase in ["Running", "Succeeded"] {
        let status = PodStatus {
            phase: Some(phase.to_owned()),
            ..PodStatus::default()
        };
        store.update_pod_status(&key, &uid, status).unwrap();
    }
    store.delete_pod(&key, Some(0)).unwrap();
    let (replay, _rx) = store.watch_from(0).unwrap();
    let phases: Vec<(ChangeType, u64, Option<String>, Option<String>)> = replay
        .iter()
        .map(|c| {
            let phase = |v: &Value| v.pointer("/status/phase").map(|p| p.to_string());
            (
                c.change_type,
                c.resource_version,
                phase(&c.object),
                c.previous.as_deref().and_then(phase),
            )
        })
        .collect();
    let s = |p: &str| Some(format!("\"{p}\""));
    assert_eq!(
        phases,
        [
            (ChangeType::Added, 1, s("Pending"), None),
            (ChangeType::Modified, 2, s("Running"), s("Pending")),
            (ChangeType::Modified, 3, s("Succeeded"), s("Running")),
            // The delete: deletion fields first, then the removal.
            (ChangeType::Modified, 4, s("Succeeded"), s("Succeeded")),
            (ChangeType::Deleted, 5, s("Succeeded"), s("Succeeded")),
        ]
    );
    for c in &replay {
        assert_eq!(
            c.object["metadata"]["resourceVersion"],
            c.resource_version.to_string(),
            "each version is the one its change stored"
        );
    }
    assert_eq!(
        replay[1].object["status"],
        serde_json::json!({"phase": "Running"})
    );
    assert!(
        replay[2]
            .pod()
            .is_some_and(|p| p.metadata.uid.as_deref() == Some(&*uid))
    );
}

#[test]
fn updates_check_resource_version_and_bump_generation() {
    let store = Store::new();
    let created = store.create_pod(pod("web", Some(30)), "n").unwrap();
    let mut v = serde_json::to_value(&*created).unwrap();
    v["metadata"]["labels"] = serde_json::json!({"a": "b"});
    let same_gen = store
        .update(&resources::PODS, v.clone(), Part::Main)
        .unwrap();
    assert_eq!(
        same_gen["metadata"]["generation"], 1,
        "metadata changes keep the generation"
    );
    let mut stale = v.clone();
    stale["metadata"]["resourceVersion"] = serde_json::json!("1");
    assert!(matches!(
        store.update(&resources::PODS, stale, Part::Main),
        Err(Error::Conflict { .. })
    ));
    let mut spec = Value::clone(&same_gen);
    spec["spec"]["activeDeadlineSeconds"] = serde_json::json!(10);
    let bumped = store.update(&resources::PODS, spec, Part::Main).unwrap();
    assert_eq!(bumped["metadata"]["generation"], 2);
    assert_eq!(
        bumped["status"]["phase"], "Pending",
        "status kept by main updates"
    );
}
