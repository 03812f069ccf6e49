use serde_json::{Value, json};

use super::*;

fn namespace(value: Value) -> Namespace {
    let mut value = value;
    value["apiVersion"] = json!("v1");
    value["kind"] = json!("Namespace");
    let mut namespace: Namespace = serde_json::from_value(value).unwrap();
    set_defaults(&mut namespace);
    namespace
}

fn messages(namespace: &Namespace) -> Vec<String> {
    validate(namespace)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn defaults_as_the_api_server_sets_them() {
    let ns = namespace(json!({"metadata": {"name": "prod", "namespace": "other",
        "labels": {"team": "a"}}, "status": {"phase": "Terminating"}}));
    assert_eq!(
        serde_json::to_value(&ns).unwrap(),
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "prod",
                "labels": {"team": "a", "kubernetes.io/metadata.name": "prod"}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"}
        })
    );
    assert_eq!(messages(&ns), Vec::<String>::new());
}

#[test]
fn the_kubernetes_finalizer_is_added_once() {
    let ns = namespace(json!({"metadata": {"name": "a"},
        "spec": {"finalizers": ["example.com/x"]}}));
    assert_eq!(
        ns.spec.unwrap().finalizers.unwrap(),
        ["example.com/x", "kubernetes"]
    );
    let ns = namespace(json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["kubernetes"]}}));
    assert_eq!(ns.spec.unwrap().finalizers.unwrap(), ["kubernetes"]);
}

#[test]
fn a_generated_name_gets_no_label_yet() {
    let ns = namespace(json!({"metadata": {"generateName": "tmp-"}}));
    assert_eq!(ns.metadata.labels, None);
    assert_eq!(messages(&ns), Vec::<String>::new());
}

#[test]
fn names_are_dns_labels_and_finalizers_are_checked() {
    let ns = namespace(json!({"metadata": {"name": "a.b"},
        "spec": {"finalizers": ["custom", "bad name/x"]}}));
    assert_eq!(
        messages(&ns),
        [
            "metadata.name: Invalid value: \"a.b\": must not contain dots",
            "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
            "spec.finalizers: Invalid value: \"bad name/x\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ]
    );
}
