use serde_json::{Value, json};

use super::*;

fn messages(value: Value) -> Vec<String> {
    let mut value = value;
    value["apiVersion"] = json!("v1");
    value["kind"] = json!("Event");
    let event: Event = serde_json::from_value(value).unwrap();
    validate(&event).iter().map(ToString::to_string).collect()
}

#[test]
fn an_old_style_event_needs_agreeing_namespaces() {
    let ok = json!({"metadata": {"name": "web.1", "namespace": "prod"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "prod"},
        "reason": "Started", "message": "Started container app"});
    assert_eq!(messages(ok.clone()), Vec::<String>::new());
    let mut other = ok.clone();
    other["involvedObject"]["namespace"] = json!("dev");
    assert_eq!(
        messages(other),
        ["involvedObject.namespace: Invalid value: \"dev\": does not match event.namespace"]
    );
    // A cluster-scoped object's events live in `default`.
    let mut cluster = ok;
    cluster["involvedObject"] = json!({"kind": "Node", "name": "n"});
    assert_eq!(
        messages(cluster.clone()),
        ["involvedObject.namespace: Invalid value: \"\": does not match event.namespace"]
    );
    cluster["metadata"]["namespace"] = json!("default");
    assert_eq!(messages(cluster), Vec::<String>::new());
}

#[test]
fn a_new_style_event_names_its_reporter_action_and_reason() {
    let event = json!({"metadata": {"name": "web.1", "namespace": "prod"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "prod"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingInstance": "x".repeat(129), "message": "m".repeat(1025)});
    assert_eq!(
        messages(event),
        [
            "reportingController: Required value",
            "reportingController: Invalid value: \"\": name part must be non-empty",
            "reportingController: Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            "reportingInstance: Invalid value: \"\": can have at most 128 characters",
            "action: Required value",
            "reason: Required value",
            "message: Invalid value: \"\": can have at most 1024 characters",
        ]
    );
    let event = json!({"metadata": {"name": "web.1", "namespace": "prod"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "prod"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingComponent": "podvisor/node",
        "reportingInstance": "n1", "action": "Start", "reason": "Started"});
    assert_eq!(messages(event), Vec::<String>::new());
}

#[test]
fn event_metadata_is_validated() {
    let event = json!({"metadata": {"namespace": "prod"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "prod"}});
    assert_eq!(
        messages(event),
        ["metadata.name: Required value: name or generateName is required"]
    );
}
