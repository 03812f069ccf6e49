//! Server-side apply and ownership tracking: managedFields in upstream's format, pruning,
//! conflicts with upstream's messages, forced ownership moves, and updates.

use serde_json::{Value, json};

use super::super::{
    ApplyError, Conflict, FieldManager, Operation, apply, conflict_causes, conflict_message,
    record_subresource_update, record_update,
};
use super::yaml;

const T1: &str = "2026-11-27T10:00:00Z";
const T2: &str = "2026-11-27T11:00:00Z";
const T3: &str = "2026-11-27T12:00:00Z";

fn manifest(replicas: u32, image: &str) -> Value {
    yaml(&format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ssa
  namespace: default
  labels: {{app: ssa}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: ssa}}
  template:
    metadata:
      labels: {{app: ssa}}
    spec:
      containers:
      - name: app
        image: {image}
        ports:
        - containerPort: 8080
        env:
        - {{name: MODE, value: prod}}
"#
    ))
}

fn apply_deployment(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    apply("apps/v1", "Deployment", live, config, manager, force, now)
}

/// The managedFields entries of an object, by manager and operation.
fn entry<'a>(object: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    object["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn fields_v1<'a>(object: &'a Value, manager: &str, operation: &str) -> &'a Value {
    &entry(object, manager, operation)
        .unwrap_or_else(|| panic!("no {operation} entry for {manager}: {object}"))["fieldsV1"]
}

fn without_managed_fields(object: &Value) -> Value {
    let mut object = object.clone();
    object["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    object
}

#[test]
fn create_records_what_was_applied_in_upstreams_format() {
    let config = manifest(2, "myapp:v1");
    let created = apply_deployment(None, &config, "kubectl", false, T1).unwrap();
    assert_eq!(without_managed_fields(&created), config);
    assert_eq!(
        created["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
                            ".": {},
                            "f:env": {"k:{\"name\":\"MODE\"}": {".": {}, "f:name": {}, "f:value": {}}},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {
                                ".": {}, "f:containerPort": {}
                            }}
                        }}}
                    }
                }
            }
        }])
    );
}

#[test]
fn reapplying_the_same_configuration_changes_nothing() {
    let config = manifest(2, "myapp:v1");
    let created = apply_deployment(None, &config, "kubectl", false, T1).unwrap();
    // Defaults the API server adds do not matter; the key default makes the port the same item.
    let mut live = created.clone();
    live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = json!("TCP");
    live["spec"]["revisionHistoryLimit"] = json!(10);
    let again = apply_deployment(Some(&live), &config, "kubectl", false, T2).unwrap();
    assert_eq!(again, live, "no change, and the entry keeps its time");
}

#[test]
fn fields_dropped_from_the_configuration_are_removed() {
    let created = apply_deployment(None, &manifest(2, "myapp:v1"), "kubectl", false, T1).unwrap();
    let mut smaller = manifest(2, "myapp:v1");
    let container = &mut smaller["spec"]["template"]["spec"]["containers"][0];
    container.as_object_mut().unwrap().remove("env");
    smaller["metadata"]["labels"] = json!({"tier": "web"});
    let applied = apply_deployment(Some(&created), &smaller, "kubectl", false, T2).unwrap();
    let container = &applied["spec"]["template"]["spec"]["containers"][0];
    assert!(
        container.get("env").is_none(),
        "the emptied env list goes: {container}"
    );
    assert_eq!(applied["metadata"]["labels"], json!({"tier": "web"}));
    let fields = fields_v1(&applied, "kubectl", "Apply");
    assert_eq!(fields["f:metadata"], json!({"f:labels": {"f:tier": {}}}));
    assert_eq!(entry(&applied, "kubectl", "Apply").unwrap()["time"], T2);
}

#[test]
fn fields_another_manager_owns_too_are_not_removed() {
    let created = apply_deployment(None, &manifest(2, "myapp:v1"), "kubectl", false, T1).unwrap();
    // Another applier sets the same label value: shared ownership.
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "ssa", "labels": {"app": "ssa"}}});
    let shared = apply_deployment(Some(&created), &other, "other", false, T2).unwrap();
    assert_eq!(
        without_managed_fields(&shared),
        without_managed_fields(&created)
    );
    assert_eq!(
        fields_v1(&shared, "other", "Apply"),
        &json!({"f:metadata": {"f:labels": {"f:app": {}}}})
    );
    // kubectl drops the label: the other applier still owns it, so it stays.
    let mut without_label = manifest(2, "myapp:v1");
    without_label["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("labels");
    let applied = apply_deployment(Some(&shared), &without_label, "kubectl", false, T3).unwrap();
    assert_eq!(applied["metadata"]["labels"], json!({"app": "ssa"}));
    assert!(fields_v1(&applied, "kubectl", "Apply")["f:metadata"].is_null());
}

#[test]
fn conflict_with_client_side_apply_as_in_the_spec() {
    // `kubectl apply` (client-side) created the object: kubectl-client-side-apply owns
    // everything through an Update entry.
    let created = record_update(
        "apps/v1",
        "Deployment",
        None,
        &manifest(2, "myapp:v1"),
        "kubectl-client-side-apply",
        T1,
    );
    let error = apply_deployment(
        Some(&created),
        &manifest(3, "myapp:v1"),
        "kubectl",
        false,
        T2,
    )
    .unwrap_err();
    let manager = FieldManager {
        manager: "kubectl-client-side-apply".to_owned(),
        operation: Operation::Update,
        api_version: "apps/v1".to_owned(),
        subresource: String::new(),
    };
    let conflicts = vec![Conflict {
        manager: manager.clone(),
        field: ".spec.replicas".to_owned(),
    }];
    assert_eq!(
        error,
        ApplyError::Conflict {
            conflicts: conflicts.clone()
        }
    );
    assert_eq!(
        error.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    let causes = conflict_causes(&conflicts);
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(
        causes[0].message,
        "conflict with \"kubectl-client-side-apply\" using apps/v1"
    );
    assert_eq!(causes[0].field, ".spec.replicas");

    // --force-conflicts moves the ownership.
    let forced = apply_deployment(
        Some(&created),
        &manifest(3, "myapp:v1"),
        "kubectl",
        true,
        T2,
    )
    .unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    assert!(fields_v1(&forced, "kubectl", "Apply")["f:spec"]["f:replicas"].is_object());
    let csa = fields_v1(&forced, "kubectl-client-side-apply", "Update");
    assert!(csa["f:spec"].get("f:replicas").is_none(), "{csa}");
    assert!(
        csa["f:spec"]["f:template"].is_object(),
        "the rest stays: {csa}"
    );
    // The same values applied are shared, not conflicts.
    assert_eq!(
        csa["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["f:image"],
        json!({})
    );
}

#[test]
fn kubectl_takes_over_fields_still_as_last_applied_client_side() {
    // Client-side apply left its annotation; the live replicas are still the last applied
    // ones, so `kubectl apply --server-side` may change them (upstream's lastAppliedManager).
    let mut csa = manifest(2, "myapp:v1");
    let last_applied = format!("{}\n", serde_json::to_string(&csa).unwrap());
    csa["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": last_applied});
    let created = record_update(
        "apps/v1",
        "Deployment",
        None,
        &csa,
        "kubectl-client-side-apply",
        T1,
    );
    let config = manifest(3, "myapp:v2");
    let applied = apply_deployment(Some(&created), &config, "kubectl", false, T2).unwrap();
    assert_eq!(applied["spec"]["replicas"], 3);
    // ... and then rewrites the annotation to what it applied (upstream's lastAppliedUpdater).
    let annotation =
        applied["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap();
    assert!(annotation.ends_with('\n'));
    assert_eq!(serde_json::from_str::<Value>(annotation).unwrap(), config);

    // The same apply by another manager conflicts, on both fields.
    let error = apply_deployment(Some(&created), &config, "my-tool", false, T2).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
         - .spec.replicas\n\
         - .spec.template.spec.containers[name=\"app\"].image"
    );

    // Once someone else changed a field, it is a conflict for kubectl too.
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(5);
    let scaled = record_update(
        "apps/v1",
        "Deployment",
        Some(&created),
        &scaled,
        "kubectl-scale",
        T2,
    );
    let error = apply_deployment(Some(&scaled), &config, "kubectl", false, T3).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn conflicts_with_several_managers() {
    let created = apply_deployment(None, &manifest(2, "myapp:v1"), "ci", false, T1).unwrap();
    let mut edited = created.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("myapp:hotfix");
    edited["metadata"]["labels"]["app"] = json!("edited");
    let edited = record_update(
        "apps/v1",
        "Deployment",
        Some(&created),
        &edited,
        "kubectl-edit",
        T2,
    );
    let error =
        apply_deployment(Some(&edited), &manifest(4, "myapp:v2"), "dev", false, T3).unwrap_err();
    let ApplyError::Conflict { conflicts } = &error else {
        panic!("{error:?}")
    };
    // The editor took .metadata.labels.app from ci: it is the editor's conflict only.
    assert_eq!(conflicts.len(), 3);
    assert_eq!(
        conflict_message(conflicts),
        "Apply failed with 3 conflicts: conflicts with \"ci\":\n\
         - .spec.replicas\n\
         conflicts with \"kubectl-edit\" using apps/v1:\n\
         - .metadata.labels.app\n\
         - .spec.template.spec.containers[name=\"app\"].image"
    );
}

#[test]
fn updates_take_ownership_and_removals_release_it() {
    let created = apply_deployment(None, &manifest(2, "myapp:v1"), "kubectl", false, T1).unwrap();
    let mut edited = created.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("myapp:hotfix");
    edited["metadata"]["labels"] = json!({});
    edited["metadata"]["annotations"] = json!({"note": "x"});
    let edited = record_update(
        "apps/v1",
        "Deployment",
        Some(&created),
        &edited,
        "kubectl-edit",
        T2,
    );
    assert_eq!(
        fields_v1(&edited, "kubectl-edit", "Update"),
        &json!({
            "f:metadata": {"f:annotations": {".": {}, "f:note": {}}},
            "f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"app\"}": {"f:image": {}}
            }}}}
        })
    );
    let applier = fields_v1(&edited, "kubectl", "Apply");
    assert!(
        applier["f:metadata"].is_null(),
        "the removed label left the applier: {applier}"
    );
    assert!(
        applier["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]
            .get("f:image")
            .is_none()
    );
    let entries = edited["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries[0]["operation"], "Apply", "Apply entries sort first");
    assert_eq!(entries[1]["time"], T2);

    // The applier re-applying its old image now conflicts with the editor.
    let error = apply_deployment(
        Some(&edited),
        &manifest(2, "myapp:v1"),
        "kubectl",
        false,
        T3,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.template.spec.containers[name=\"app\"].image"
    );

    // An update that changes nothing records nothing.
    let same = record_update(
        "apps/v1",
        "Deployment",
        Some(&edited),
        &edited,
        "kubectl-edit",
        T3,
    );
    assert_eq!(same, edited);
}

#[test]
fn create_by_update_records_new_objects_and_lists_as_members() {
    let service = yaml(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {app: web}
  ports:
  - {port: 80, targetPort: 8080, protocol: TCP}
"#,
    );
    let created = record_update("v1", "Service", None, &service, "kubectl-create", T1);
    assert_eq!(
        created["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:ports": {".": {}, "k:{\"port\":80,\"protocol\":\"TCP\"}": {
                        ".": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}
                    }},
                    "f:selector": {}
                }
            }
        }])
    );
}

#[test]
fn managed_fields_round_trip() {
    // An entry as the API server writes it for `kubectl create deployment`.
    let entry = json!({
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1",
        "time": T1, "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:selector": {},
                "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
                "f:template": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {
                        "f:containers": {"k:{\"name\":\"nginx\"}": {
                            ".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
                            "f:resources": {}, "f:terminationMessagePath": {}
                        }},
                        "f:dnsPolicy": {}, "f:restartPolicy": {}
                    }
                }
            },
            "f:metadata2": {"f:finalizers": {".": {}, "v:\"a\"": {}, "v:\"b\"": {}}},
            "f:list": {"i:0": {}, "i:1": {"f:x": {}}}
        }
    });
    let mut object = manifest(1, "nginx");
    object["metadata"]["managedFields"] = json!([entry]);
    // An update that changes nothing keeps the entries exactly.
    let same = record_update("apps/v1", "Deployment", Some(&object), &object, "x", T2);
    assert_eq!(same["metadata"]["managedFields"], json!([entry]));
}

#[test]
fn updates_without_tracking_and_client_set_managed_fields() {
    // An object that exists without managedFields is not tracked by updates...
    let untracked = manifest(1, "a");
    let mut changed = untracked.clone();
    changed["spec"]["replicas"] = json!(2);
    let updated = record_update("apps/v1", "Deployment", Some(&untracked), &changed, "x", T1);
    assert_eq!(updated, changed);
    // ... and its first apply records the fields already there for before-first-apply.
    let error =
        apply_deployment(Some(&untracked), &manifest(3, "a"), "kubectl", false, T1).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using apps/v1: .spec.replicas"
    );
    let applied = apply_deployment(Some(&untracked), &manifest(1, "b"), "kubectl", false, T1);
    let applied = match applied {
        Err(ApplyError::Conflict { conflicts }) => conflicts,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        applied[0].field,
        ".spec.template.spec.containers[name=\"app\"].image"
    );

    // managedFields sent in an update replace the stored ones (kubectl's migration of
    // client-side apply ownership)...
    let created = record_update("apps/v1", "Deployment", None, &manifest(1, "a"), "csa", T1);
    let mut migrated = created.clone();
    migrated["metadata"]["managedFields"][0]["manager"] = json!("kubectl");
    migrated["metadata"]["managedFields"][0]["operation"] = json!("Apply");
    let migrated = record_update(
        "apps/v1",
        "Deployment",
        Some(&created),
        &migrated,
        "kubectl",
        T2,
    );
    assert!(entry(&migrated, "csa", "Update").is_none());
    assert!(entry(&migrated, "kubectl", "Apply").is_some());
    // ... and `[{}]` clears them.
    let mut reset = created.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    let reset = record_update("apps/v1", "Deployment", Some(&created), &reset, "x", T2);
    assert!(reset["metadata"].get("managedFields").is_none());
}

#[test]
fn status_belongs_to_the_status_subresource() {
    let pod = yaml(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers: [{name: app, image: nginx}]
"#,
    );
    let created = record_update("v1", "Pod", None, &pod, "kubectl-create", T1);
    let mut running = created.clone();
    running["status"] =
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
    let running = record_subresource_update(
        "v1",
        "Pod",
        Some(&created),
        &running,
        "kubelet",
        "status",
        T2,
    );
    let kubelet = entry(&running, "kubelet", "Update").unwrap();
    assert_eq!(kubelet["subresource"], "status");
    assert_eq!(
        kubelet["fieldsV1"],
        json!({"f:status": {
            "f:conditions": {".": {}, "k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}, "f:type": {}}},
            "f:phase": {}
        }})
    );
    // A write to the main resource does not own status, and an apply ignores it.
    let config = yaml(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {a: b}}
spec:
  containers: [{name: app, image: nginx}]
status: {phase: Failed}
"#,
    );
    let applied = apply("v1", "Pod", Some(&running), &config, "kubectl", false, T3).unwrap();
    assert_eq!(applied["status"]["phase"], "Running");
    assert!(
        fields_v1(&applied, "kubectl", "Apply")
            .get("f:status")
            .is_none()
    );
    let error = ApplyError::Conflict {
        conflicts: vec![Conflict {
            manager: FieldManager {
                manager: "kubelet".to_owned(),
                operation: Operation::Update,
                api_version: "v1".to_owned(),
                subresource: "status".to_owned(),
            },
            field: ".status.phase".to_owned(),
        }],
    };
    assert_eq!(
        error.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubelet\" with subresource \"status\" using v1: .status.phase"
    );
}

#[test]
fn associative_lists_merge_in_upstreams_order() {
    let live = yaml(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: p, finalizers: [x]}
spec:
  containers:
  - {name: a, image: a}
  - {name: b, image: b}
  - {name: c, image: c}
"#,
    );
    let live = record_update("v1", "Pod", None, &live, "creator", T1);
    let config = yaml(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: p, finalizers: ["y"]}
spec:
  containers:
  - {name: c, image: c}
  - {name: a, image: a}
"#,
    );
    let applied = apply("v1", "Pod", Some(&live), &config, "mgr", false, T2).unwrap();
    let names: Vec<&str> = applied["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "c", "a"]);
    assert_eq!(applied["metadata"]["finalizers"], json!(["x", "y"]));
    assert_eq!(
        fields_v1(&applied, "mgr", "Apply")["f:metadata"],
        json!({"f:finalizers": {"v:\"y\"": {}}})
    );

    // Dropping an item the applier owned removes it unless another manager owns the item.
    let mut fewer = config.clone();
    fewer["spec"]["containers"] = json!([{"name": "c", "image": "c"}]);
    fewer["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("finalizers");
    let applied = apply("v1", "Pod", Some(&applied), &fewer, "mgr", false, T3).unwrap();
    assert_eq!(
        applied["spec"]["containers"].as_array().unwrap().len(),
        3,
        "creator owns a"
    );
    assert_eq!(applied["metadata"]["finalizers"], json!(["x"]));
    let owned_by_mgr_only = apply("v1", "Pod", None, &config, "mgr", false, T1).unwrap();
    let applied = apply(
        "v1",
        "Pod",
        Some(&owned_by_mgr_only),
        &fewer,
        "mgr",
        false,
        T2,
    )
    .unwrap();
    assert_eq!(
        applied["spec"]["containers"],
        json!([{"name": "c", "image": "c"}])
    );
    assert!(applied["metadata"].get("finalizers").is_none());
}

#[test]
fn invalid_configurations() {
    let mut duplicate = manifest(1, "a");
    duplicate["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "app", "image": "a"}, {"name": "app", "image": "b"}]);
    assert_eq!(
        apply_deployment(None, &duplicate, "kubectl", false, T1),
        Err(ApplyError::Invalid(
            ".spec.template.spec.containers: duplicate entries for key [name=\"app\"]".to_owned()
        ))
    );
    let mut keyless = manifest(1, "a");
    keyless["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"value": "x"}]);
    assert_eq!(
        apply_deployment(None, &keyless, "kubectl", false, T1),
        Err(ApplyError::Invalid(
            ".spec.template.spec.containers[name=\"app\"].env: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)".to_owned()
        ))
    );
    let mut with_managed_fields = manifest(1, "a");
    with_managed_fields["metadata"]["managedFields"] = json!([]);
    assert_eq!(
        apply_deployment(None, &with_managed_fields, "kubectl", false, T1),
        Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".to_owned()
        ))
    );
    let mut broken = manifest(1, "a");
    broken["metadata"]["managedFields"] =
        json!([{"manager": "x", "operation": "Apply", "fieldsType": "FieldsV2"}]);
    assert_eq!(
        apply_deployment(Some(&broken), &manifest(1, "a"), "kubectl", false, T1),
        Err(ApplyError::BadManagedFields(
            "invalid fieldsType \"FieldsV2\"".to_owned()
        ))
    );
}

#[test]
fn kinds_without_a_table_have_atomic_lists() {
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
                        "metadata": {"name": "w"}, "spec": {"items": [{"name": "a"}], "size": 1}});
    let created = apply("example.com/v1", "Widget", None, &widget, "m", false, T1).unwrap();
    assert_eq!(
        fields_v1(&created, "m", "Apply"),
        &json!({"f:spec": {"f:items": {}, "f:size": {}}})
    );
    let mut bigger = widget.clone();
    bigger["spec"]["items"] = json!([{"name": "b"}]);
    let applied = apply(
        "example.com/v1",
        "Widget",
        Some(&created),
        &bigger,
        "m",
        false,
        T2,
    )
    .unwrap();
    assert_eq!(applied["spec"]["items"], json!([{"name": "b"}]));
}

#[test]
fn create_by_update_matches_kubectl_create_deployment() {
    // `kubectl create deployment web --image=nginx`, defaulted: the fieldsV1 the API server
    // records (non-pointer structs such as spec.strategy are not members; rollingUpdate, a
    // pointer, is).
    let deployment = yaml(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: nginx}]
status: {}
"#,
    );
    let created = record_update(
        "apps/v1",
        "Deployment",
        None,
        &deployment,
        "kubectl-create",
        T1,
    );
    assert_eq!(
        fields_v1(&created, "kubectl-create", "Update"),
        &json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:strategy": {
                    "f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}},
                    "f:type": {}
                },
                "f:template": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                        ".": {}, "f:image": {}, "f:name": {}
                    }}}
                }
            }
        })
    );
}

#[test]
fn repeated_keys_in_a_live_list_are_kept() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                     "spec": {"containers": [{"name": "a", "image": "1"}, {"name": "a", "image": "2"}]}});
    let live = record_update("v1", "Pod", None, &pod, "creator", T1);
    let config = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                        "spec": {"containers": [{"name": "b", "image": "3"}]}});
    let applied = apply("v1", "Pod", Some(&live), &config, "mgr", false, T2).unwrap();
    assert_eq!(
        applied["spec"]["containers"],
        json!([{"name": "a", "image": "1"}, {"name": "a", "image": "2"}, {"name": "b", "image": "3"}])
    );
}

/// kubectl 1.32's move from client-side to server-side apply (`csaupgrade`): after it rewrote
/// managedFields so that its Apply entry owns the maps themselves (`"."`, as the client-side
/// Update entry did) and their fields, the next apply without the annotation must keep what
/// it still applies: upstream's prune removes the old set, then adds back every item a manager
/// still owns (`addBackOwnedItems`), so a map whose fields are still owned stays.
#[test]
fn prune_keeps_maps_whose_fields_are_still_owned() {
    let live = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": "cfg", "namespace": "default",
            "labels": {"x": "z"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "managedFields": [
                {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T1,
                 "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:data": {".": {}, "f:a": {}},
                              "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                                             "f:labels": {".": {}, "f:x": {}}}}},
                {"manager": "kubectl-last-applied", "operation": "Apply", "apiVersion": "v1", "time": T1,
                 "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}}}}
            ]
        },
        "data": {"a": "1"}
    });
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "cfg", "namespace": "default", "labels": {"x": "z"}},
                        "data": {"a": "1"}});
    let out = apply(
        "v1",
        "ConfigMap",
        Some(&live),
        &config,
        "kubectl",
        false,
        T2,
    )
    .unwrap();
    assert_eq!(out["data"], json!({"a": "1"}));
    assert_eq!(out["metadata"]["labels"], json!({"x": "z"}));
    assert!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string(),
        "still owned by kubectl-last-applied: {out}"
    );
    // A map nobody owns anything of any more goes, with its fields.
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "cfg", "namespace": "default", "labels": {"x": "z"}}});
    let out = apply(
        "v1",
        "ConfigMap",
        Some(&live),
        &config,
        "kubectl",
        false,
        T2,
    )
    .unwrap();
    assert!(out.get("data").is_none(), "{out}");
}
