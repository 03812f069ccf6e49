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
    let listeners = desired_listeners(&service, &slices, NODE);
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
    let l = desired_listeners(&np, &[], NODE);
    assert_eq!(
        l[0].spec.addrs,
        [addr("127.20.0.5:5432"), addr("127.0.0.9:30001")]
    );
    assert_eq!(l[0].spec.protocol, Protocol::Tcp);
    let lb = svc(json!({
        "clusterIP": "127.20.0.5", "type": "LoadBalancer",
        "ports": [{"name": "web", "port": 8080, "nodePort": 30002}]
    }));
    let l = desired_listeners(&lb, &[], NODE);
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
    assert!(desired_listeners(&headless, &[], NODE).is_empty());
    let external = svc(json!({"type": "ExternalName", "externalName": "example.org"}));
    assert!(desired_listeners(&external, &[], NODE).is_empty());
    let udp = svc(
        json!({"clusterIP": "127.20.0.5", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}),
    );
    assert!(desired_listeners(&udp, &[], NODE).is_empty());
}

#[test]
fn session_affinity_client_ip_uses_its_timeout() {
    let service = svc(json!({
        "clusterIP": "127.20.0.5", "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
        "ports": [{"name": "http", "port": 80}]
    }));
    let l = desired_listeners(&service, &[], NODE);
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
    let l = desired_listeners(&service, &slices, NODE);
    assert!(l[0].endpoints.is_empty());
    assert_eq!(l[1].endpoints[0].addr, addr("127.10.0.2:9000"));
}
