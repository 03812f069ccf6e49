use serde_json::{Value, json};

use super::*;

fn messages(value: Value) -> Vec<String> {
    let mut value = value;
    value["apiVersion"] = json!("coordination.k8s.io/v1");
    value["kind"] = json!("Lease");
    let lease: Lease = serde_json::from_value(value).unwrap();
    validate(&lease).iter().map(ToString::to_string).collect()
}

#[test]
fn a_valid_lease() {
    let lease = json!({"metadata": {"name": "node-1", "namespace": "kube-node-lease",
            "finalizers": ["custom"]},
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40, "leaseTransitions": 0,
            "renewTime": "2026-01-01T00:00:00.000000Z",
            "strategy": "OldestEmulationVersion", "preferredHolder": "node-1"}});
    // apimachinery's metadata rules: no core finalizer-name check.
    assert_eq!(messages(lease), Vec::<String>::new());
}

#[test]
fn lease_spec_rules() {
    let lease = json!({"metadata": {"name": "l", "namespace": "default"},
        "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1, "strategy": "Newest",
            "preferredHolder": "x"}});
    assert_eq!(
        messages(lease),
        [
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
            "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
            "spec.strategy.strategy: Unsupported value: \"Newest\": supported values: \"OldestEmulationVersion\"",
        ]
    );
    let lease = json!({"metadata": {"name": "l", "namespace": "default"},
        "spec": {"preferredHolder": "x", "strategy": "example.com/Custom"}});
    assert_eq!(messages(lease), Vec::<String>::new());
    let lease = json!({"metadata": {"name": "l", "namespace": "default"},
        "spec": {"preferredHolder": "x"}});
    assert_eq!(
        messages(lease),
        ["spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"]
    );
}
