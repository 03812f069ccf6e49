use serde_json::{Value, json};

use super::{RolloutStatus, rollout_status};
use crate::model::manifest::{FieldValidation, decode_for_api, decode_update_for_api};

fn deployment(spec: Value) -> Value {
    let mut base = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "web:1"}]}
            }
        }
    });
    merge(&mut base["spec"], spec);
    base
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (&mut *into, &from) {
        for (k, v) in from {
            if v.is_object() && into.get(k).is_some_and(Value::is_object) {
                merge(into.get_mut(k).unwrap(), v.clone());
            } else if v.is_null() {
                into.remove(k);
            } else {
                into.insert(k.clone(), v.clone());
            }
        }
    } else {
        *into = from;
    }
}

/// The validation messages of a body, or the defaulted object.
fn decode(api_version: &str, kind: &str, value: Value) -> Result<Value, Vec<String>> {
    let d = decode_for_api(api_version, kind, &value, FieldValidation::Strict);
    assert!(d.bad_request.is_empty(), "{:?}", d.bad_request);
    if d.invalid.is_empty() {
        Ok(d.object.unwrap())
    } else {
        Err(d.invalid.iter().map(ToString::to_string).collect())
    }
}

fn deploy_errors(spec: Value) -> Vec<String> {
    decode("apps/v1", "Deployment", deployment(spec)).unwrap_err()
}

#[test]
fn deployment_defaults() {
    let d = decode("apps/v1", "Deployment", deployment(json!({}))).unwrap();
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(spec.get("minReadySeconds"), None);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["containers"][0]["terminationMessagePolicy"], "File");
    // Pod-only defaults stay off templates, as upstream.
    assert_eq!(pod.get("serviceAccountName"), None);
    assert_eq!(pod.get("enableServiceLinks"), None);
    assert_eq!(d["status"], json!({}));
    assert_eq!(d["metadata"]["namespace"], "default");
}

#[test]
fn recreate_gets_no_rolling_update() {
    let d = decode(
        "apps/v1",
        "Deployment",
        deployment(json!({"strategy": {"type": "Recreate"}})),
    )
    .unwrap();
    assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(
        deploy_errors(json!({"strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}})),
        [
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
        ]
    );
}

#[test]
fn invalid_strategies() {
    assert_eq!(
        deploy_errors(json!({"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}})),
        [
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0"
        ]
    );
    assert_eq!(
        deploy_errors(
            json!({"strategy": {"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": "0%"}}})
        ),
        [
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"0%\"}: may not be 0 when `maxSurge` is 0"
        ]
    );
    assert_eq!(
        deploy_errors(json!({"strategy": {"rollingUpdate": {"maxSurge": -1}}})),
        [
            "spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0"
        ]
    );
    assert_eq!(
        deploy_errors(json!({"strategy": {"rollingUpdate": {"maxUnavailable": "150%"}}})),
        [
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%"
        ]
    );
    assert_eq!(
        deploy_errors(json!({"strategy": {"rollingUpdate": {"maxSurge": "x"}}})),
        [
            "spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
        ]
    );
    // A surge over 100 % is allowed (only maxUnavailable is capped).
    assert!(
        decode(
            "apps/v1",
            "Deployment",
            deployment(json!({"strategy": {"rollingUpdate": {"maxSurge": "200%"}}}))
        )
        .is_ok()
    );
    assert_eq!(
        deploy_errors(json!({"strategy": {"type": "Blue"}})),
        [
            "spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:\"Blue\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: \"Recreate\", \"RollingUpdate\""
        ]
    );
}

#[test]
fn selector_rules() {
    assert_eq!(
        deploy_errors(json!({"selector": {"matchLabels": {"app": "other"}}})),
        [
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
        ]
    );
    assert_eq!(
        deploy_errors(json!({"selector": null})),
        // A missing selector selects nothing, so it does not match the labels either.
        [
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
        ]
    );
    assert_eq!(
        deploy_errors(json!({"selector": {"matchLabels": null}})),
        [
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
        ]
    );
    let errs = deploy_errors(
        json!({"selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}),
    );
    assert_eq!(
        errs[0],
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
    );
}

#[test]
fn replicas_and_template_rules() {
    assert_eq!(
        deploy_errors(json!({"replicas": -1})),
        ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]
    );
    assert_eq!(
        deploy_errors(json!({"template": {"spec": {"restartPolicy": "Never"}}})),
        [
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
        ]
    );
    assert_eq!(
        deploy_errors(
            json!({"template": {"spec": {"containers": [{"name": "app", "image": ""}]}}})
        ),
        ["spec.template.spec.containers[0].image: Required value"]
    );
    assert_eq!(
        deploy_errors(json!({"minReadySeconds": 700})),
        ["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"]
    );
}

#[test]
fn selector_is_immutable_on_update() {
    let old = decode("apps/v1", "Deployment", deployment(json!({}))).unwrap();
    let new = deployment(json!({
        "selector": {"matchLabels": {"app": "web", "tier": "a"}},
        "template": {"metadata": {"labels": {"app": "web", "tier": "a"}}}
    }));
    let d = decode_update_for_api("apps/v1", "Deployment", &new, &old, FieldValidation::Strict);
    let errs: Vec<String> = d.invalid.iter().map(ToString::to_string).collect();
    assert_eq!(
        errs,
        [
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"tier\":\"a\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
        ]
    );
    // The same selector, another template: fine; the status is kept for the store to handle.
    let new = deployment(
        json!({"template": {"spec": {"containers": [{"name": "app", "image": "web:2"}]}}}),
    );
    let d = decode_update_for_api("apps/v1", "Deployment", &new, &old, FieldValidation::Strict);
    assert!(d.invalid.is_empty(), "{:?}", d.invalid);
}

fn replica_set(spec: Value) -> Value {
    let mut d = deployment(spec);
    d["kind"] = json!("ReplicaSet");
    d
}

#[test]
fn replica_set_defaults_and_rules() {
    let rs = decode("apps/v1", "ReplicaSet", replica_set(json!({}))).unwrap();
    assert_eq!(rs["spec"]["replicas"], 1);
    assert_eq!(rs["spec"].get("strategy"), None);
    assert_eq!(rs["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(rs["status"], json!({"replicas": 0}));
    assert_eq!(
        decode(
            "apps/v1",
            "ReplicaSet",
            replica_set(json!({"selector": {"matchLabels": {"app": "x"}}}))
        )
        .unwrap_err(),
        [
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
        ]
    );
    let old = rs;
    let new = replica_set(
        json!({"selector": {"matchLabels": null, "matchExpressions": [{"key": "app", "operator": "Exists"}]}}),
    );
    let d = decode_update_for_api("apps/v1", "ReplicaSet", &new, &old, FieldValidation::Strict);
    let errs: Vec<String> = d.invalid.iter().map(ToString::to_string).collect();
    assert_eq!(
        errs,
        [
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"app\", Operator:\"Exists\", Values:[]string(nil)}}}: field is immutable"
        ]
    );
}

#[test]
fn replication_controller_defaults_from_template() {
    let rc = json!({
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "old"},
        "spec": {"template": {
            "metadata": {"labels": {"app": "old"}},
            "spec": {"containers": [{"name": "app", "image": "old:1"}]}
        }}
    });
    let rc = decode("v1", "ReplicationController", rc).unwrap();
    assert_eq!(rc["spec"]["selector"], json!({"app": "old"}));
    assert_eq!(rc["metadata"]["labels"], json!({"app": "old"}));
    assert_eq!(rc["spec"]["replicas"], 1);
    assert_eq!(
        rc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        30
    );

    let mut bad = rc.clone();
    bad["spec"]["selector"] = json!({"app": "x"});
    bad["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
    assert_eq!(
        decode("v1", "ReplicationController", bad).unwrap_err(),
        [
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"old\"}: `selector` does not match template `labels`",
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicationController is not Supported"
        ]
    );
    let none = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "x"}, "spec": {}});
    assert_eq!(
        decode("v1", "ReplicationController", none).unwrap_err(),
        [
            "spec.selector: Required value",
            "spec.template: Required value"
        ]
    );
}

#[test]
fn scale_selector_strings() {
    use super::selector_string;
    assert_eq!(
        selector_string(
            Some(&json!({"matchLabels": {"app": "web", "a": "b"}})),
            false
        ),
        "a=b,app=web"
    );
    assert_eq!(
        selector_string(
            Some(
                &json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["x", "y"]}]})
            ),
            false
        ),
        "app in (x,y)"
    );
    assert_eq!(
        selector_string(Some(&json!({"app": "old"})), true),
        "app=old"
    );
    assert_eq!(selector_string(None, false), "");
}

/// kubectl's `TestDeploymentStatusViewerStatus` cases.
#[test]
fn rollout_status_words_it_as_kubectl() {
    let d = |generation: i64, observed: i64, replicas: i64, updated: i64, available: i64| {
        serde_json::json!({
            "metadata": {"name": "foo", "generation": generation},
            "spec": {"replicas": 1},
            "status": {"observedGeneration": observed, "replicas": replicas,
                "updatedReplicas": updated, "availableReplicas": available,
                "unavailableReplicas": replicas - available},
        })
    };
    assert_eq!(
        rollout_status(&d(0, 1, 1, 0, 1)),
        RolloutStatus::Waiting(
            "Waiting for deployment \"foo\" rollout to finish: 0 out of 1 new replicas have been updated...".into()
        )
    );
    assert_eq!(
        rollout_status(&d(1, 1, 2, 1, 1)),
        RolloutStatus::Waiting(
            "Waiting for deployment \"foo\" rollout to finish: 1 old replicas are pending termination...".into()
        )
    );
    let mut two = d(1, 1, 2, 2, 1);
    two["spec"]["replicas"] = 2.into();
    assert_eq!(
        rollout_status(&two),
        RolloutStatus::Waiting(
            "Waiting for deployment \"foo\" rollout to finish: 1 of 2 updated replicas are available...".into()
        )
    );
    assert_eq!(
        rollout_status(&d(1, 1, 1, 1, 1)),
        RolloutStatus::Done("deployment \"foo\" successfully rolled out".into())
    );
    assert_eq!(
        rollout_status(&d(2, 1, 1, 1, 1)),
        RolloutStatus::Waiting("Waiting for deployment spec update to be observed...".into())
    );
    let mut stuck = d(1, 1, 1, 0, 1);
    stuck["status"]["conditions"] = serde_json::json!([
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    ]);
    assert_eq!(
        rollout_status(&stuck),
        RolloutStatus::Failed("deployment \"foo\" exceeded its progress deadline".into())
    );
    // Unobserved generation first: the deadline is not checked.
    stuck["metadata"]["generation"] = 2.into();
    assert_eq!(
        rollout_status(&stuck),
        RolloutStatus::Waiting("Waiting for deployment spec update to be observed...".into())
    );
    // No spec.replicas: the updated count is not compared with it.
    let mut unset = d(1, 1, 2, 1, 1);
    unset["spec"] = serde_json::json!({});
    assert_eq!(
        rollout_status(&unset),
        RolloutStatus::Waiting(
            "Waiting for deployment \"foo\" rollout to finish: 1 old replicas are pending termination...".into()
        )
    );
    let mut unset = d(1, 1, 1, 1, 0);
    unset["spec"] = serde_json::json!({});
    assert_eq!(
        rollout_status(&unset),
        RolloutStatus::Waiting(
            "Waiting for deployment \"foo\" rollout to finish: 0 of 1 updated replicas are available...".into()
        )
    );
}
