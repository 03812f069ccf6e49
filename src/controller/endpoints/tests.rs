use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use serde_json::json;

use super::*;

fn service(extra: serde_json::Value) -> Service {
    let mut svc = json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid", "labels": {"tier": "front"}},
        "spec": {
            "selector": {"app": "web"},
            "clusterIP": "127.20.0.5",
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
        }
    });
    merge(&mut svc, extra);
    serde_json::from_value(svc).unwrap()
}

fn pod(name: &str, ip: &str, ready: bool, extra: serde_json::Value) -> Arc<Pod> {
    let mut p = json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("{name}-uid"), "labels": {"app": "web"}},
        "spec": {"nodeName": "node", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"phase": "Running", "podIP": ip,
                   "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
    });
    merge(&mut p, extra);
    Arc::new(serde_json::from_value(p).unwrap())
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn conditions(e: &Endpoint) -> (bool, bool, bool) {
    let c = e.conditions.as_ref().unwrap();
    (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap())
}

#[test]
fn ready_pods_become_ready_endpoints_with_the_resolved_named_port() {
    let slices = desired_slices(
        &service(json!({})),
        &[
            pod("b", "127.10.0.3", true, json!({})),
            pod("a", "127.10.0.2", true, json!({})),
        ],
    );
    assert_eq!(slices.len(), 1);
    let slice = &slices[0];
    assert_eq!(slice.address_type, "IPv4");
    let ports = slice.ports.as_ref().unwrap();
    assert_eq!(ports[0].port, Some(8080));
    assert_eq!(ports[0].name.as_deref(), Some("http"));
    let addresses: Vec<_> = slice
        .endpoints
        .iter()
        .map(|e| e.addresses[0].as_str())
        .collect();
    assert_eq!(addresses, ["127.10.0.2", "127.10.0.3"]);
    assert_eq!(conditions(&slice.endpoints[0]), (true, true, false));
    let labels = slice.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[LABEL_SERVICE_NAME], "web");
    assert_eq!(labels[LABEL_MANAGED_BY], CONTROLLER_NAME);
    assert_eq!(labels["tier"], "front");
    let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Service", "svc-uid")
    );
    assert!(slice.metadata.name.as_ref().unwrap().starts_with("web-"));
}

#[test]
fn a_terminating_pod_is_not_ready_but_serving_while_its_probe_passes() {
    let slices = desired_slices(
        &service(json!({})),
        &[pod(
            "a",
            "127.10.0.2",
            true,
            json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
        )],
    );
    assert_eq!(conditions(&slices[0].endpoints[0]), (false, true, true));
}

#[test]
fn publish_not_ready_addresses_makes_every_endpoint_ready() {
    let slices = desired_slices(
        &service(json!({"spec": {"publishNotReadyAddresses": true}})),
        &[pod(
            "a",
            "127.10.0.2",
            false,
            json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
        )],
    );
    assert_eq!(conditions(&slices[0].endpoints[0]), (true, false, true));
}

#[test]
fn pods_without_ip_terminal_or_not_selected_are_left_out() {
    let slices = desired_slices(
        &service(json!({})),
        &[
            pod("noip", "", true, json!({})),
            pod(
                "done",
                "127.10.0.4",
                false,
                json!({"status": {"phase": "Succeeded"}}),
            ),
            pod(
                "other",
                "127.10.0.5",
                true,
                json!({"metadata": {"labels": {"app": "db"}}}),
            ),
            pod(
                "elsewhere",
                "127.10.0.6",
                true,
                json!({"metadata": {"namespace": "shop"}}),
            ),
        ],
    );
    assert_eq!(slices.len(), 1, "one placeholder");
    assert!(slices[0].endpoints.is_empty());
    assert_eq!(slices[0].ports, None);
}

#[test]
fn pods_whose_named_port_resolves_differently_get_their_own_slice() {
    let other_port = json!({"spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 9090}]}]}});
    let no_port = json!({"spec": {"containers": [{"name": "c"}]}});
    let slices = desired_slices(
        &service(json!({})),
        &[
            pod("a", "127.10.0.2", true, json!({})),
            pod("b", "127.10.0.3", true, other_port),
            pod("c", "127.10.0.4", true, no_port),
        ],
    );
    assert_eq!(
        slices.len(),
        2,
        "pod c has no port named http and is left out"
    );
    let mut ports: Vec<i32> = slices
        .iter()
        .map(|s| s.ports.as_ref().unwrap()[0].port.unwrap())
        .collect();
    ports.sort();
    assert_eq!(ports, [8080, 9090]);
    assert_ne!(slices[0].metadata.name, slices[1].metadata.name);
}

#[test]
fn numeric_and_defaulted_target_ports() {
    let numeric =
        service(json!({"spec": {"ports": [{"name": "a", "port": 80, "targetPort": 8081}]}}));
    let defaulted =
        service(json!({"spec": {"ports": [{"name": "a", "port": 80, "targetPort": null}]}}));
    let p = pod("a", "127.10.0.2", true, json!({}));
    assert_eq!(
        desired_slices(&numeric, std::slice::from_ref(&p))[0]
            .ports
            .as_ref()
            .unwrap()[0]
            .port,
        Some(8081)
    );
    assert_eq!(
        desired_slices(&defaulted, &[p])[0].ports.as_ref().unwrap()[0].port,
        Some(80)
    );
}

#[test]
fn slice_names_are_stable() {
    let a = desired_slices(
        &service(json!({})),
        &[pod("a", "127.10.0.2", true, json!({}))],
    );
    let b = desired_slices(
        &service(json!({})),
        &[pod("b", "127.10.0.9", false, json!({}))],
    );
    assert_eq!(a[0].metadata.name, b[0].metadata.name);
}

#[test]
fn legacy_endpoints_split_ready_and_not_ready_and_drop_terminating() {
    let eps = desired_endpoints(
        &service(json!({})),
        &[
            pod("a", "127.10.0.2", true, json!({})),
            pod("b", "127.10.0.3", false, json!({})),
            pod(
                "c",
                "127.10.0.4",
                true,
                json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
            ),
        ],
    );
    let subsets = eps.subsets.unwrap();
    assert_eq!(subsets.len(), 1);
    let ready: Vec<_> = subsets[0]
        .addresses
        .iter()
        .flatten()
        .map(|a| a.ip.as_str())
        .collect();
    let not_ready: Vec<_> = subsets[0]
        .not_ready_addresses
        .iter()
        .flatten()
        .map(|a| a.ip.as_str())
        .collect();
    assert_eq!((ready, not_ready), (vec!["127.10.0.2"], vec!["127.10.0.3"]));
    assert_eq!(subsets[0].ports.as_ref().unwrap()[0].port, 8080);
    assert_eq!(eps.metadata.name.as_deref(), Some("web"));
}

#[test]
fn services_without_selector_are_not_managed() {
    let svc = service(json!({"spec": {"selector": null}}));
    assert!(!has_selector(&svc));
    assert!(has_selector(&service(json!({}))));
}
