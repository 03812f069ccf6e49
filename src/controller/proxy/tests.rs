use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::*;

const NODE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 9);

fn svc(spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": spec,
    }))
    .unwrap()
}

fn slice(ports: serde_json::Value, endpoints: serde_json::Value) -> Arc<EndpointSlice> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "web-x", "namespace": "shop"},
            "addressType": "IPv4",
            "ports": ports,
            "endpoints": endpoints,
        }))
        .unwrap(),
    )
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn a_cluster_ip_port_listens_on_the_vip_with_the_slices_endpoints() {
    let service = svc(json!({
        "clusterIP": "127.20.0.5", "type": "ClusterIP",
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}]
    }));
    let slices = [slice(
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
        json!([
            {"addresses": ["127.10.0.3"], "conditions": {"ready": false, "serving": true, "terminating": true},
             "targetRef": {"kind": "Pod", "namespace": "shop", "name": "b"}},
            {"addresses": ["127.10.0.2"], "conditions": {}},
        ]),
    )];
    let listeners = desired_listeners(&service, &slices, NODE, |_| false);
    assert_eq!(listeners.len(), 1);
    let l = &listeners[0];
    assert_eq!(l.spec.service, "shop/web");
    assert_eq!(l.spec.port_name, "http");
    assert_eq!(l.spec.addrs, [addr("127.20.0.5:80")]);
    assert_eq!(l.spec.protocol, Protocol::Http);
    assert_eq!(l.spec.client_ip_affinity, None);
    let got: Vec<_> = l
        .endpoints
        .iter()
        .map(|e| (e.addr, e.ready, e.serving, e.terminating, e.target.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (addr("127.10.0.2:8080"), true, true, false, None),
            (
                addr("127.10.0.3:8080"),
                false,
                true,
                true,
                Some("shop/b".to_owned())
            ),
        ]
    );
}

#[test]
fn node_port_and_load_balancer_add_node_addresses() {
    let np = svc(json!({
        "clusterIP": "127.20.0.5", "type": "NodePort",
        "ports": [{"name": "db", "port": 5432, "nodePort": 30001}]
    }));
    let l = desired_listeners(&np, &[], NODE, |_| false);
    assert_eq!(
        l[0].spec.addrs,
        [addr("127.20.0.5:5432"), addr("127.0.0.9:30001")]
    );
    assert_eq!(l[0].spec.protocol, Protocol::Tcp);
    let lb = svc(json!({
        "clusterIP": "127.20.0.5", "type": "LoadBalancer",
        "ports": [{"name": "web", "port": 8080, "nodePort": 30002}]
    }));
    let l = desired_listeners(&lb, &[], NODE, |_| false);
    assert_eq!(
        l[0].spec.addrs,
        [
            addr("127.20.0.5:8080"),
            addr("127.0.0.9:30002"),
            addr("127.0.0.9:8080")
        ]
    );
}

#[test]
fn protocols_follow_app_protocol_then_port_names() {
    let port = |name: &str, app: Option<&str>| {
        serde_json::from_value::<ServicePort>(json!({"name": name, "port": 80, "appProtocol": app}))
            .unwrap()
    };
    assert_eq!(port_protocol(&port("x", Some("http"))), Protocol::Http);
    assert_eq!(port_protocol(&port("x", Some("h2c"))), Protocol::H2c);
    assert_eq!(
        port_protocol(&port("x", Some("kubernetes.io/h2c"))),
        Protocol::H2c
    );
    assert_eq!(port_protocol(&port("http-admin", None)), Protocol::Http);
    assert_eq!(port_protocol(&port("grpc", None)), Protocol::H2c);
    assert_eq!(port_protocol(&port("redis", None)), Protocol::Tcp);
    assert_eq!(
        port_protocol(&port("http", Some("kubernetes.io/ws"))),
        Protocol::Http
    );
}

#[test]
fn headless_external_name_and_udp_ports_get_no_listener() {
    let headless = svc(json!({"clusterIP": "None", "ports": [{"name": "a", "port": 80}]}));
    assert!(desired_listeners(&headless, &[], NODE, |_| false).is_empty());
    let external = svc(json!({"type": "ExternalName", "externalName": "example.org"}));
    assert!(desired_listeners(&external, &[], NODE, |_| false).is_empty());
    let udp = svc(
        json!({"clusterIP": "127.20.0.5", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}),
    );
    assert!(desired_listeners(&udp, &[], NODE, |_| false).is_empty());
}

#[test]
fn session_affinity_client_ip_uses_its_timeout() {
    let service = svc(json!({
        "clusterIP": "127.20.0.5", "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
        "ports": [{"name": "http", "port": 80}]
    }));
    let l = desired_listeners(&service, &[], NODE, |_| false);
    assert_eq!(l[0].spec.client_ip_affinity, Some(Duration::from_secs(60)));
}

#[test]
fn slices_without_the_port_name_do_not_contribute() {
    let service = svc(json!({
        "clusterIP": "127.20.0.5",
        "ports": [{"name": "http", "port": 80}, {"name": "admin", "port": 81}]
    }));
    let slices = [slice(
        json!([{"name": "admin", "port": 9000}]),
        json!([{"addresses": ["127.10.0.2"]}]),
    )];
    let l = desired_listeners(&service, &slices, NODE, |_| false);
    assert!(l[0].endpoints.is_empty());
    assert_eq!(l[1].endpoints[0].addr, addr("127.10.0.2:9000"));
}

#[test]
fn an_endpoint_of_a_pod_being_deleted_takes_no_new_traffic_before_its_slice_says_so() {
    let service = svc(json!({
        "clusterIP": "127.20.0.5",
        "ports": [{"name": "http", "port": 80}]
    }));
    let slices = [slice(
        json!([{"name": "http", "port": 8080}]),
        json!([
            {"addresses": ["127.10.0.2"], "conditions": {"ready": true, "serving": true},
             "targetRef": {"kind": "Pod", "namespace": "shop", "name": "a", "uid": "uid-a"}},
            {"addresses": ["127.10.0.3"], "conditions": {"ready": true, "serving": true},
             "targetRef": {"kind": "Pod", "namespace": "shop", "name": "b", "uid": "uid-b"}},
        ]),
    )];
    let l = desired_listeners(&service, &slices, NODE, |uid| uid == "uid-a");
    let got: Vec<_> = l[0]
        .endpoints
        .iter()
        .map(|e| (e.addr, e.ready, e.serving, e.terminating))
        .collect();
    assert_eq!(
        got,
        [
            (addr("127.10.0.2:8080"), false, true, true),
            (addr("127.10.0.3:8080"), true, true, false),
        ]
    );
    // publishNotReadyAddresses keeps it ready, as the endpoints controller does.
    let publish = svc(json!({
        "clusterIP": "127.20.0.5", "publishNotReadyAddresses": true,
        "ports": [{"name": "http", "port": 80}]
    }));
    let l = desired_listeners(&publish, &slices, NODE, |uid| uid == "uid-a");
    assert!(l[0].endpoints[0].ready && l[0].endpoints[0].terminating);
}

#[test]
fn the_state_marks_the_services_of_a_pod_being_deleted_and_forgets_it_with_its_endpoints() {
    use crate::store::Backend;
    let store = crate::store::Store::new();
    let (_, mut rx) = store.watch();
    let mut changes = Vec::new();
    let drain = |rx: &mut tokio::sync::broadcast::Receiver<Change>| {
        let mut out = Vec::new();
        while let Ok(c) = rx.try_recv() {
            out.push(c);
        }
        out
    };
    let pod = store
        .create(
            &resources::PODS,
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "a", "namespace": "shop"},
                   "spec": {"nodeName": "node", "containers": [{"name": "app", "image": "x"}]}}),
        )
        .unwrap();
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-x", "namespace": "shop",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": ["127.10.0.2"], "conditions": {"ready": true},
                       "targetRef": {"kind": "Pod", "namespace": "shop", "name": "a", "uid": uid}}],
    });
    let created = store.create(&resources::ENDPOINT_SLICES, slice).unwrap();
    changes.extend(drain(&mut rx));
    let mut state = State::default();
    for change in &changes {
        state.apply(change);
        state.pending_extra.clear();
    }
    assert!(state.terminating.is_empty());

    // Deletion with a grace period: the Service is touched at once, the pod noted.
    store
        .delete_pod_with(&ObjectKey::new("shop", "a"), Some(30), None, false)
        .unwrap();
    for change in drain(&mut rx) {
        assert_eq!(state.apply(&change), None);
    }
    assert_eq!(state.pending_extra, [ObjectKey::new("shop", "web")]);
    assert_eq!(state.terminating.get(&uid), Some(&false));
    state.pending_extra.clear();

    // The pod goes; its endpoint is still in the slice: still held back, not touched again.
    store.remove(&resources::PODS, "shop", "a", None).unwrap();
    for change in drain(&mut rx) {
        state.apply(&change);
    }
    assert!(state.pending_extra.is_empty());
    assert_eq!(state.terminating.get(&uid), Some(&true));

    // The slice without it: forgotten.
    let mut updated = serde_json::Value::clone(&created);
    updated["endpoints"] = json!([]);
    store
        .update(
            &resources::ENDPOINT_SLICES,
            updated,
            crate::store::Part::Main,
        )
        .unwrap();
    for change in drain(&mut rx) {
        assert_eq!(state.apply(&change), Some(ObjectKey::new("shop", "web")));
    }
    assert!(state.terminating.is_empty());
}
