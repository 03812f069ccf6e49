//! Pruning by server-side apply (what an applier drops goes, unless another manager still owns
//! it), replayed on the exact requests kubectl 1.32 sends when an object made by client-side
//! apply is applied server-side (`kubectl apply --server-side`, `apply.go`
//! `applyOneObject`): the apply, the `kubectl-last-applied` apply of the annotation
//! (`saveLastApplyAnnotationIfNecessary`), the JSON patch of `metadata.managedFields`
//! (`migrateToSSAIfNecessary`, `csaupgrade.UpgradeManagedFieldsPatch`), and the apply again.

use serde_json::{Value, json};

use super::super::{apply, json_patch, record_update};

const T1: &str = "2026-11-27T10:00:00Z";
const T2: &str = "2026-11-27T11:00:00Z";
const T3: &str = "2026-11-27T12:00:00Z";
const T4: &str = "2026-11-27T13:00:00Z";
const T5: &str = "2026-11-27T14:00:00Z";
const T6: &str = "2026-11-27T15:00:00Z";

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What `kubectl apply -f cm.yaml` (client-side) POSTs to create the ConfigMap.
const CSA_CREATE: &str = r#"{"apiVersion":"v1","data":{"mode":"one"},"kind":"ConfigMap","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"data\":{\"mode\":\"one\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{},\"name\":\"settings\",\"namespace\":\"default\"}}\n"},"name":"settings","namespace":"default"}}"#;

/// What `kubectl apply --server-side -f cm.yaml` sends (`fieldManager=kubectl`), with `mode: two`.
const SSA_TWO: &str = r#"{"apiVersion":"v1","data":{"mode":"two"},"kind":"ConfigMap","metadata":{"name":"settings","namespace":"default"}}"#;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn apply_cm(live: Option<&Value>, config: &Value, manager: &str, now: &str) -> Value {
    apply("v1", "ConfigMap", live, config, manager, false, now)
        .unwrap_or_else(|e| panic!("apply by {manager} failed: {e}"))
}

/// The object as the store keeps it: with the metadata the API server sets.
fn stored(mut object: Value, resource_version: u32) -> Value {
    let metadata = object["metadata"].as_object_mut().unwrap();
    metadata.insert(
        "uid".to_owned(),
        json!("5e0f5c2a-1111-2222-3333-444455556666"),
    );
    metadata.insert("creationTimestamp".to_owned(), json!(T1));
    metadata.insert(
        "resourceVersion".to_owned(),
        json!(resource_version.to_string()),
    );
    object
}

fn without_managed_fields(object: &Value) -> Value {
    let mut object = object.clone();
    object["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    object
}

/// The annotation kubectl's server-side apply leaves: the applied configuration
/// (upstream's lastAppliedUpdater).
fn annotation_of(config: &str) -> String {
    let mut text = serde_json::to_string(&parse(config)).unwrap();
    text.push('\n');
    text
}

#[test]
fn client_side_then_server_side_apply_as_kubectl_does() {
    // 1. `kubectl apply -f cm.yaml`: a create recorded as an Update.
    let created = stored(
        record_update(
            "v1",
            "ConfigMap",
            None,
            &parse(CSA_CREATE),
            "kubectl-client-side-apply",
            T1,
        ),
        1,
    );
    let csa_fields = json!({
        "f:data": {".": {}, "f:mode": {}},
        "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}
    });
    assert_eq!(
        created["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
            "time": T1, "fieldsType": "FieldsV1", "fieldsV1": csa_fields
        }])
    );

    // 2. `kubectl apply --server-side` with `mode: two`: kubectl may take `data.mode` over
    // (its live value is still the last applied one), and rewrites the annotation.
    let ssa = parse(SSA_TWO);
    let first = stored(apply_cm(Some(&created), &ssa, "kubectl", T2), 2);
    assert_eq!(first["data"], json!({"mode": "two"}));
    assert_eq!(
        first["metadata"]["annotations"],
        json!({LAST_APPLIED: annotation_of(SSA_TWO)})
    );
    assert_eq!(
        first["metadata"]["managedFields"],
        json!([
            {
                "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T2,
                "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:mode": {}}}
            },
            {
                "manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
                "time": T1, "fieldsType": "FieldsV1",
                "fieldsV1": {
                    // Still a member, with nothing below it any more: `{}`, as upstream
                    // encodes it.
                    "f:data": {},
                    "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}
                }
            }
        ])
    );

    // 3. No applier owns the annotation: kubectl applies it alone as `kubectl-last-applied`.
    // Nothing changes, so the new entry has no time (upstream records the time of an apply
    // only when the object changed).
    let annotation = first["metadata"]["annotations"][LAST_APPLIED].clone();
    let just_annotation = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"annotations": {LAST_APPLIED: annotation}, "name": "settings", "namespace": "default"}
    });
    let saved = apply_cm(Some(&first), &just_annotation, "kubectl-last-applied", T3);
    assert_eq!(
        without_managed_fields(&saved),
        without_managed_fields(&first)
    );
    let last_applied_entry = json!({
        "manager": "kubectl-last-applied", "operation": "Apply", "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}}}
    });
    assert_eq!(saved["metadata"]["managedFields"][0], last_applied_entry);

    // 4. The migration: a JSON patch that folds kubectl-client-side-apply into kubectl's Apply
    // entry (csaupgrade), sent without a fieldManager.
    let migrated_entry = json!({
        "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T2,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:data": {".": {}, "f:mode": {}},
            "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}
        }
    });
    let patch = json!([
        {"op": "replace", "path": "/metadata/managedFields",
         "value": [last_applied_entry, migrated_entry]},
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "2"}
    ]);
    let patched = json_patch(&saved, &patch).unwrap();
    let migrated = stored(
        record_update("v1", "ConfigMap", Some(&saved), &patched, "kubectl", T4),
        3,
    );
    assert_eq!(
        migrated["metadata"]["managedFields"],
        json!([last_applied_entry, migrated_entry])
    );

    // 5. The same apply again: kubectl no longer applies `data` itself nor the annotation, but
    // its new configuration still sets `data.mode` and kubectl-last-applied owns the
    // annotation, so both stay. Nothing else changed: kubectl's entry keeps its time.
    let second = apply_cm(Some(&migrated), &ssa, "kubectl", T5);
    assert_eq!(second["data"], json!({"mode": "two"}), "{second}");
    assert_eq!(
        second["metadata"]["annotations"],
        json!({LAST_APPLIED: annotation_of(SSA_TWO)})
    );
    assert_eq!(
        without_managed_fields(&second),
        without_managed_fields(&migrated)
    );
    assert_eq!(
        second["metadata"]["managedFields"],
        json!([
            last_applied_entry,
            {
                "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T2,
                "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:mode": {}}}
            }
        ])
    );

    // 6. And once more: a no-op, the very object that is stored.
    let second = stored(second, 4);
    let third = apply_cm(Some(&second), &ssa, "kubectl", T6);
    assert_eq!(third, second);
}

/// The live object after the migration when it happens before the first server-side apply
/// (the live `data.mode` is still the client-side one).
fn migrated_before_any_apply(with_last_applied_manager: bool) -> Value {
    let mut object = stored(parse(CSA_CREATE), 3);
    let mut entries = vec![json!({
        "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T1,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:data": {".": {}, "f:mode": {}},
            "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}
        }
    })];
    if with_last_applied_manager {
        entries.push(json!({
            "manager": "kubectl-last-applied", "operation": "Apply", "apiVersion": "v1",
            "time": T2, "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}}}
        }));
    }
    object["metadata"]["managedFields"] = Value::Array(entries);
    object
}

#[test]
fn an_apply_after_the_migration_keeps_data_and_the_owned_annotation() {
    let live = migrated_before_any_apply(true);
    let applied = apply_cm(Some(&live), &parse(SSA_TWO), "kubectl", T3);
    assert_eq!(applied["data"], json!({"mode": "two"}), "{applied}");
    assert_eq!(
        applied["metadata"]["annotations"],
        json!({LAST_APPLIED: annotation_of(SSA_TWO)})
    );
    assert_eq!(
        applied["metadata"]["managedFields"],
        json!([
            {
                "manager": "kubectl-last-applied", "operation": "Apply", "apiVersion": "v1",
                "time": T2, "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}}}
            },
            {
                "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T3,
                "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:mode": {}}}
            }
        ])
    );
}

#[test]
fn the_annotation_goes_once_no_manager_owns_it() {
    let live = migrated_before_any_apply(false);
    let applied = apply_cm(Some(&live), &parse(SSA_TWO), "kubectl", T3);
    assert_eq!(applied["data"], json!({"mode": "two"}), "{applied}");
    assert!(
        applied["metadata"].get("annotations").is_none(),
        "the emptied annotations go: {applied}"
    );
    assert_eq!(applied["metadata"]["name"], "settings");
    assert_eq!(applied["metadata"]["namespace"], "default");
    assert_eq!(applied["metadata"]["uid"], live["metadata"]["uid"]);
}

fn config_map(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "settings", "namespace": "default"}, "data": data})
}

fn config_map_without_data() -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "settings", "namespace": "default"}})
}

#[test]
fn a_field_another_applier_owns_stays_when_one_drops_it() {
    let a = apply_cm(None, &config_map(json!({"x": "1", "y": "2"})), "a", T1);
    let both = apply_cm(Some(&a), &config_map(json!({"x": "1"})), "b", T2);
    // `a` drops all of `data`: `x` stays (b owns it), `y` goes.
    let dropped = apply_cm(Some(&both), &config_map_without_data(), "a", T3);
    assert_eq!(dropped["data"], json!({"x": "1"}), "{dropped}");
    let managers: Vec<&str> = dropped["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["b"], "a owns nothing any more");

    // The same when `a` owned `data` itself (a migrated client-side entry owns the objects it
    // created): `b` owning something inside keeps it.
    let mut live = both.clone();
    live["metadata"]["managedFields"] = json!([
        {"manager": "a", "operation": "Apply", "apiVersion": "v1", "time": T1,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}, "f:x": {}, "f:y": {}}}},
        {"manager": "b", "operation": "Apply", "apiVersion": "v1", "time": T2,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:x": {}}}}
    ]);
    let dropped = apply_cm(Some(&live), &config_map_without_data(), "a", T3);
    assert_eq!(dropped["data"], json!({"x": "1"}), "{dropped}");
}

#[test]
fn a_field_an_updater_owns_stays_when_the_applier_drops_its_object() {
    let mut live = config_map(json!({"x": "1", "z": "3"}));
    live["metadata"]["managedFields"] = json!([
        {"manager": "a", "operation": "Apply", "apiVersion": "v1", "time": T1,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}, "f:x": {}}}},
        {"manager": "editor", "operation": "Update", "apiVersion": "v1", "time": T2,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:z": {}}}}
    ]);
    let dropped = apply_cm(Some(&live), &config_map_without_data(), "a", T3);
    assert_eq!(dropped["data"], json!({"z": "3"}), "{dropped}");
}

#[test]
fn a_field_only_the_dropping_applier_owns_is_removed() {
    let a = apply_cm(None, &config_map(json!({"x": "1", "y": "2"})), "a", T1);
    let both = apply_cm(Some(&a), &config_map(json!({"x": "1"})), "b", T2);
    // `a` drops `y` only.
    let dropped = apply_cm(Some(&both), &config_map(json!({"x": "1"})), "a", T3);
    assert_eq!(dropped["data"], json!({"x": "1"}));

    // Alone, an applier that drops all of `data` removes it, whether it owned the object
    // itself (migrated) or only what is inside.
    let dropped = apply_cm(Some(&a), &config_map_without_data(), "a", T2);
    assert!(dropped.get("data").is_none(), "{dropped}");
    let mut migrated = a.clone();
    migrated["metadata"]["managedFields"] = json!([
        {"manager": "a", "operation": "Apply", "apiVersion": "v1", "time": T1,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}, "f:x": {}, "f:y": {}}}}
    ]);
    let dropped = apply_cm(Some(&migrated), &config_map_without_data(), "a", T2);
    assert!(dropped.get("data").is_none(), "{dropped}");
    assert!(
        dropped["metadata"].get("managedFields").is_none(),
        "no manager is left: {dropped}"
    );
}

#[test]
fn list_items_another_applier_owns_stay() {
    let deployment = |containers: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "default"},
               "spec": {"template": {"spec": {"containers": containers}}}})
    };
    let apply_deployment = |live: Option<&Value>, config: &Value, manager: &str, now: &str| {
        apply("apps/v1", "Deployment", live, config, manager, false, now).unwrap()
    };
    let app = json!({"name": "app", "image": "app:v1"});
    let sidecar = json!({"name": "sidecar", "image": "proxy:v1"});
    let a = apply_deployment(None, &deployment(json!([app, sidecar])), "a", T1);
    let both = apply_deployment(Some(&a), &deployment(json!([app])), "b", T2);
    // `a` drops both containers: `app` stays (b applies it too), `sidecar` goes.
    let dropped = apply_deployment(Some(&both), &deployment(json!([])), "a", T3);
    assert_eq!(
        dropped["spec"]["template"]["spec"]["containers"],
        json!([app]),
        "{dropped}"
    );
}

#[test]
fn create_and_reapply_of_a_config_map() {
    let config = config_map(json!({"mode": "one"}));
    let created = stored(apply_cm(None, &config, "kubectl", T1), 1);
    assert_eq!(
        created["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T1,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:mode": {}}}
        }])
    );
    // Identical re-applies return the stored object, times included.
    let again = apply_cm(Some(&created), &config, "kubectl", T2);
    assert_eq!(again, created);
    // A change records the new time.
    let changed = apply_cm(
        Some(&created),
        &config_map(json!({"mode": "two"})),
        "kubectl",
        T3,
    );
    assert_eq!(changed["metadata"]["managedFields"][0]["time"], T3);
}

#[test]
fn what_the_applier_did_not_own_stays_while_its_object_does() {
    let labels = |labels: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "settings", "labels": labels}})
    };
    let created = apply_cm(None, &labels(json!({"a": "1", "b": "2"})), "a", T1);
    // An unowned label (written by something untracked) next to the applier's.
    let mut live = created.clone();
    live["metadata"]["labels"]["defaulted"] = json!("yes");
    // The applier drops `b`: it goes, the unowned label stays with `a`.
    let dropped = apply_cm(Some(&live), &labels(json!({"a": "1"})), "a", T2);
    assert_eq!(
        dropped["metadata"]["labels"],
        json!({"a": "1", "defaulted": "yes"})
    );
    // The applier drops all its labels: `labels`, a field the applier had something in and
    // nobody else has, goes whole, the unowned label with it (upstream's prune makes such
    // fields members of the applier's last set).
    let dropped = apply_cm(
        Some(&live),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}),
        "a",
        T2,
    );
    assert!(dropped["metadata"].get("labels").is_none(), "{dropped}");
    assert_eq!(dropped["metadata"]["name"], "settings");

    // An empty object: owned as a leaf here, owned by nothing upstream, which keeps it when
    // the applier drops it; so does podvisor.
    let widget = |spec: Value| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
               "metadata": {"name": "w", "namespace": "default"}, "spec": spec})
    };
    let apply_widget = |live: Option<&Value>, config: &Value, now: &str| {
        apply("example.com/v1", "Widget", live, config, "a", false, now).unwrap()
    };
    let created = apply_widget(None, &widget(json!({"size": 1, "options": {}})), T1);
    let applied = apply_widget(Some(&created), &widget(json!({"size": 2})), T2);
    assert_eq!(applied["spec"], json!({"size": 2, "options": {}}));
}
