//! Allocation through the store, as the API and `up -f` reach it.

use serde_json::{Value, json};

use super::*;
use crate::model::manifest::{FieldValidation, decode_for_api};
use crate::store::{Backend, Error, Part, Store, resources};

/// A store whose Services get addresses from a /29 (six host addresses).
fn store() -> Store {
    let store = Store::new();
    store.set_service_network(ServiceNetwork {
        cidr: "127.20.0.0/29".parse().unwrap(),
        node_address: "127.0.0.1".parse().unwrap(),
    });
    store
}

fn service(name: &str, spec: Value) -> Value {
    let body = json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec});
    let decoded = decode_for_api("v1", "Service", &body, FieldValidation::Strict);
    assert!(
        decoded.bad_request.is_empty() && decoded.invalid.is_empty(),
        "{decoded:?}"
    );
    decoded.object.unwrap()
}

fn create(store: &Store, name: &str, spec: Value) -> Result<Value, Error> {
    store
        .create(&resources::SERVICES, service(name, spec))
        .map(|v| Value::clone(&v))
}

fn messages(error: Error) -> String {
    error.to_string()
}

#[test]
fn cluster_ips_are_handed_out_once_and_released_on_delete() {
    let store = store();
    let a = create(&store, "a", json!({"ports": [{"port": 80}]})).unwrap();
    assert_eq!(a["spec"]["clusterIP"], "127.20.0.1");
    assert_eq!(a["spec"]["clusterIPs"], json!(["127.20.0.1"]));
    assert_eq!(a["status"], json!({"loadBalancer": {}}));
    let err = create(
        &store,
        "b",
        json!({"clusterIP": "127.20.0.1", "ports": [{"port": 80}]}),
    )
    .unwrap_err();
    assert_eq!(
        messages(err),
        "Service \"b\" is invalid: spec.clusterIPs: Invalid value: []string{\"127.20.0.1\"}: failed to allocate IP 127.20.0.1: provided IP is already allocated"
    );
    let err = create(
        &store,
        "b",
        json!({"clusterIP": "127.21.0.1", "ports": [{"port": 80}]}),
    )
    .unwrap_err();
    assert_eq!(
        messages(err),
        "Service \"b\" is invalid: spec.clusterIPs: Invalid value: []string{\"127.21.0.1\"}: failed to allocate IP 127.21.0.1: the provided IP (127.21.0.1) is not in the valid range. The range of valid IPs is 127.20.0.0/29"
    );
    // The broadcast address is not in the range either.
    assert!(
        create(
            &store,
            "b",
            json!({"clusterIP": "127.20.0.7", "ports": [{"port": 80}]})
        )
        .is_err()
    );
    store
        .remove(&resources::SERVICES, "default", "a", None)
        .unwrap();
    let b = create(
        &store,
        "b",
        json!({"clusterIP": "127.20.0.1", "ports": [{"port": 80}]}),
    )
    .unwrap();
    assert_eq!(b["spec"]["clusterIP"], "127.20.0.1");
    // Headless Services hold no address.
    let h = create(
        &store,
        "h",
        json!({"clusterIP": "None", "selector": {"app": "h"}}),
    )
    .unwrap();
    assert_eq!(h["spec"]["clusterIPs"], json!(["None"]));
}

#[test]
fn an_exhausted_range_is_upstreams_internal_error() {
    let store = store();
    for i in 0..6 {
        create(&store, &format!("s{i}"), json!({"ports": [{"port": 80}]})).unwrap();
    }
    let err = create(&store, "full", json!({"ports": [{"port": 80}]})).unwrap_err();
    assert_eq!(
        err,
        Error::Internal("failed to allocate a serviceIP: range is full".to_owned())
    );
    assert!(store.get(&resources::SERVICES, "default", "full").is_none());
}

#[test]
fn node_ports() {
    let store = store();
    let a = create(
        &store,
        "a",
        json!({"type": "NodePort", "ports": [{"name": "web", "port": 80, "nodePort": 30080},
            {"name": "api", "port": 81}]}),
    )
    .unwrap();
    assert_eq!(a["spec"]["ports"][0]["nodePort"], 30080);
    assert_eq!(a["spec"]["ports"][1]["nodePort"], 30000);
    let err = create(
        &store,
        "b",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
    )
    .unwrap_err();
    assert_eq!(
        messages(err),
        "Service \"b\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
    );
    let err = create(
        &store,
        "b",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]}),
    )
    .unwrap_err();
    assert_eq!(
        messages(err),
        "Service \"b\" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"
    );
    // TCP and UDP of one service port share a node port.
    let dns = create(
        &store,
        "dns",
        json!({"type": "NodePort", "ports": [{"name": "tcp", "port": 53},
            {"name": "udp", "port": 53, "protocol": "UDP"}]}),
    )
    .unwrap();
    assert_eq!(
        dns["spec"]["ports"][0]["nodePort"],
        dns["spec"]["ports"][1]["nodePort"]
    );
}

#[test]
fn type_changes_allocate_and_release_node_ports() {
    let store = store();
    let a = create(&store, "a", json!({"ports": [{"port": 80}]})).unwrap();
    let mut next = a.clone();
    next["spec"]["type"] = json!("NodePort");
    next["spec"]["externalTrafficPolicy"] = json!("Cluster");
    let a = store
        .update(&resources::SERVICES, next, Part::Main)
        .unwrap();
    let node_port = a["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert_eq!(node_port, 30000);
    // Taken while a is a NodePort Service.
    assert!(
        create(
            &store,
            "b",
            json!({"type": "NodePort",
        "ports": [{"port": 80, "nodePort": node_port}]})
        )
        .is_err()
    );
    let mut back = Value::clone(&a);
    back["spec"]["type"] = json!("ClusterIP");
    let a = store
        .update(&resources::SERVICES, back, Part::Main)
        .unwrap();
    assert!(a["spec"]["ports"][0].get("nodePort").is_none());
    create(
        &store,
        "b",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": node_port}]}),
    )
    .unwrap();
}

#[test]
fn load_balancers_share_the_node_address() {
    let store = store();
    let web = create(
        &store,
        "web",
        json!({"type": "LoadBalancer", "ports": [{"port": 8080}]}),
    )
    .unwrap();
    assert_eq!(
        web["status"],
        json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP"}]}})
    );
    let err = create(
        &store,
        "other",
        json!({"type": "LoadBalancer", "ports": [{"port": 8080}]}),
    )
    .unwrap_err();
    assert_eq!(
        messages(err),
        "Service \"other\" is invalid: spec.ports[0].port: Invalid value: 8080: port 8080/TCP of the node address 127.0.0.1 is already used by LoadBalancer service default/web; podvisor serves LoadBalancer services on the node address at their own port, so two of them cannot share a port and protocol"
    );
    // Another protocol on the same port is another listener.
    create(
        &store,
        "udp",
        json!({"type": "LoadBalancer",
        "ports": [{"port": 8080, "protocol": "UDP"}]}),
    )
    .unwrap();
    // A LoadBalancer port in the node port range collides with a node port.
    let np = create(
        &store,
        "np",
        json!({"type": "NodePort", "ports": [{"port": 80}]}),
    )
    .unwrap();
    let taken = np["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    let err = create(
        &store,
        "lb2",
        json!({"type": "LoadBalancer", "ports": [{"port": taken}]}),
    )
    .unwrap_err();
    let message = messages(err);
    assert!(
        message.contains("is already used by a node port of service default/np"),
        "{message}"
    );
    // Node ports never land on a LoadBalancer port.
    create(
        &store,
        "lb3",
        json!({"type": "LoadBalancer",
        "allocateLoadBalancerNodePorts": false, "ports": [{"port": 30002}]}),
    )
    .unwrap();
    let next = create(
        &store,
        "np2",
        json!({"type": "NodePort", "ports": [{"port": 80}]}),
    )
    .unwrap();
    assert_ne!(next["spec"]["ports"][0]["nodePort"], 30002);
}

#[test]
fn health_check_node_port_for_local_load_balancers() {
    let store = store();
    let lb = create(
        &store,
        "lb",
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
    )
    .unwrap();
    let hc = lb["spec"]["healthCheckNodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&hc));
    assert_ne!(lb["spec"]["ports"][0]["nodePort"].as_i64().unwrap(), hc);
}

#[test]
fn a_batch_is_checked_as_a_whole() {
    let store = store();
    let batch = [
        service(
            "a",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30100}]}),
        ),
        service(
            "b",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30100}]}),
        ),
    ];
    let (i, err) = store.check_services(&batch).unwrap_err();
    assert_eq!(i, 1);
    assert!(messages(err).contains("provided port is already allocated"));
    assert!(store.list(&resources::SERVICES, None).0.is_empty());
}

#[test]
fn the_index_is_rebuilt_when_the_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let store = Store::open(&path).unwrap();
        create(
            &store,
            "a",
            json!({"clusterIP": "127.20.0.9", "type": "NodePort",
            "ports": [{"port": 80, "nodePort": 30500}]}),
        )
        .unwrap();
        store.close();
    }
    let store = Store::open(&path).unwrap();
    assert!(
        create(
            &store,
            "b",
            json!({"clusterIP": "127.20.0.9", "ports": [{"port": 80}]})
        )
        .is_err()
    );
    assert!(
        create(
            &store,
            "c",
            json!({"type": "NodePort",
        "ports": [{"port": 80, "nodePort": 30500}]})
        )
        .is_err()
    );
}
