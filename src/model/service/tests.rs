use serde_json::{Value, json};

use crate::model::manifest::{FieldValidation, decode_for_api, decode_update_for_api};

/// The Service as the API decodes a create body, or its validation messages.
fn create(spec: Value) -> Result<Value, Vec<String>> {
    let body = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec});
    let decoded = decode_for_api("v1", "Service", &body, FieldValidation::Strict);
    assert!(decoded.bad_request.is_empty(), "{:?}", decoded.bad_request);
    if decoded.invalid.is_empty() {
        Ok(decoded.object.unwrap())
    } else {
        Err(decoded.invalid.iter().map(ToString::to_string).collect())
    }
}

fn errors(spec: Value) -> Vec<String> {
    create(spec).expect_err("the Service is invalid")
}

/// The update of `old` (a stored Service) to `spec`, or its validation messages.
fn update(old: &Value, spec: Value) -> Result<Value, Vec<String>> {
    let body = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec});
    let decoded = decode_update_for_api("v1", "Service", &body, old, FieldValidation::Strict);
    assert!(decoded.bad_request.is_empty(), "{:?}", decoded.bad_request);
    if decoded.invalid.is_empty() {
        Ok(decoded.object.unwrap())
    } else {
        Err(decoded.invalid.iter().map(ToString::to_string).collect())
    }
}

#[test]
fn defaults_of_a_cluster_ip_service() {
    let svc = create(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]})).unwrap();
    assert_eq!(
        svc["spec"],
        json!({
            "selector": {"app": "web"},
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
        })
    );
}

#[test]
fn defaults_of_node_port_and_load_balancer_services() {
    let svc =
        create(json!({"type": "NodePort", "ports": [{"port": 80, "targetPort": "http"}]})).unwrap();
    assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    assert!(svc["spec"].get("allocateLoadBalancerNodePorts").is_none());
    let svc = create(json!({"type": "LoadBalancer", "ports": [{"port": 80}]})).unwrap();
    assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(svc["spec"]["allocateLoadBalancerNodePorts"], true);
}

#[test]
fn session_affinity() {
    let svc = create(json!({"sessionAffinity": "ClientIP", "ports": [{"port": 80}]})).unwrap();
    assert_eq!(
        svc["spec"]["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );
    // A config with affinity None is dropped by defaulting, as upstream.
    let svc = create(
        json!({"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}},
        "ports": [{"port": 80}]}),
    )
    .unwrap();
    assert!(svc["spec"].get("sessionAffinityConfig").is_none());
    for timeout in [0, 86401] {
        assert_eq!(
            errors(json!({"sessionAffinity": "ClientIP",
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": timeout}},
                "ports": [{"port": 80}]})),
            [format!(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: {timeout}: must be greater than 0 and less than 86400"
            )]
        );
    }
    assert_eq!(
        errors(json!({"sessionAffinity": "Sticky", "ports": [{"port": 80}]})),
        [
            "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\""
        ]
    );
}

#[test]
fn port_rules() {
    // The target port defaults to the port, and is checked too (as upstream).
    assert_eq!(
        errors(json!({"ports": [{"port": 0}]})),
        [
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
        ]
    );
    assert_eq!(errors(json!({})), ["spec.ports: Required value"]);
    assert_eq!(
        errors(
            json!({"ports": [{"port": 80}, {"port": 81, "name": "b"}, {"port": 82, "name": "b"}]})
        ),
        [
            "spec.ports[0].name: Required value",
            "spec.ports[2].name: Duplicate value: \"b\"",
        ]
    );
    assert_eq!(
        errors(
            json!({"ports": [{"name": "Web", "port": 70000, "protocol": "ICMP",
            "targetPort": "Http_1", "appProtocol": "-x"}]})
        ),
        [
            "spec.ports[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.ports[0].targetPort: Invalid value: \"Http_1\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "spec.ports[0].appProtocol: Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ]
    );
    assert_eq!(
        errors(
            json!({"ports": [{"name": "a", "port": 80, "nodePort": 30080},
            {"name": "b", "port": 80}]})
        ),
        [
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
            "spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}",
        ]
    );
    // The same port over TCP and UDP is two ports.
    create(
        json!({"ports": [{"name": "dns", "port": 53}, {"name": "dns-udp", "port": 53,
        "protocol": "UDP"}]}),
    )
    .unwrap();
}

#[test]
fn selector_and_name_rules() {
    assert_eq!(
        errors(json!({"selector": {"app": "-bad-"}, "ports": [{"port": 80}]})),
        [
            "spec.selector: Invalid value: \"-bad-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        ]
    );
    let body = json!({"metadata": {"name": "1web", "namespace": "default"},
        "spec": {"ports": [{"port": 80}]}});
    let decoded = decode_for_api("v1", "Service", &body, FieldValidation::Strict);
    assert_eq!(
        decoded
            .invalid
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        ]
    );
}

#[test]
fn types_podvisor_serves() {
    assert_eq!(
        errors(json!({"type": "ExternalName", "externalName": "example.com"})),
        [
            "spec.type: Unsupported value: \"ExternalName\": supported values: \"ClusterIP\", \"LoadBalancer\", \"NodePort\" (podvisor has no cluster DNS to answer an ExternalName; use a Service without selector and an EndpointSlice with the address instead)"
        ]
    );
    assert_eq!(
        errors(json!({"type": "Ingress", "ports": [{"port": 80}]})),
        [
            "spec.type: Unsupported value: \"Ingress\": supported values: \"ClusterIP\", \"LoadBalancer\", \"NodePort\""
        ]
    );
}

#[test]
fn cluster_ip_rules() {
    let svc = create(json!({"clusterIP": "127.20.0.9", "ports": [{"port": 80}]})).unwrap();
    assert_eq!(svc["spec"]["clusterIPs"], json!(["127.20.0.9"]));
    assert_eq!(
        errors(
            json!({"clusterIP": "127.20.0.9", "clusterIPs": ["127.20.0.8"],
            "ports": [{"port": 80}]})
        ),
        [
            "spec.clusterIPs: Invalid value: []string{\"127.20.0.8\"}: first value must match `clusterIP`"
        ]
    );
    assert_eq!(
        errors(json!({"clusterIP": "abc", "ports": [{"port": 80}]})),
        [
            "spec.clusterIPs[0]: Invalid value: \"abc\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        ]
    );
    assert_eq!(
        errors(json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]})),
        [
            "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"
        ]
    );
    // Headless: no ports needed; with a selector single-stack, without one dual as upstream.
    let svc = create(json!({"clusterIP": "None", "selector": {"app": "web"}})).unwrap();
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(svc["spec"]["ipFamilyPolicy"], "SingleStack");
    let svc = create(json!({"clusterIP": "None"})).unwrap();
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    assert_eq!(svc["spec"]["ipFamilyPolicy"], "RequireDualStack");
}

#[test]
fn ip_families_a_node_has() {
    assert_eq!(
        errors(json!({"ipFamilies": ["IPv6"], "ports": [{"port": 80}]})),
        ["spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster"]
    );
    assert_eq!(
        errors(json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]})),
        [
            "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"
        ]
    );
    assert_eq!(
        errors(json!({"clusterIP": "fd00::1", "ports": [{"port": 80}]})),
        [
            "spec.clusterIPs[0]: Invalid value: []string{\"fd00::1\"}: IPv6 is not configured on this cluster"
        ]
    );
    let svc =
        create(json!({"ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]})).unwrap();
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
}

#[test]
fn traffic_policies() {
    assert_eq!(
        errors(json!({"externalTrafficPolicy": "Local", "ports": [{"port": 80}]})),
        [
            "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services"
        ]
    );
    assert_eq!(
        errors(
            json!({"type": "NodePort", "internalTrafficPolicy": "Nearby",
            "externalTrafficPolicy": "Far", "ports": [{"port": 80}]})
        ),
        [
            "spec.externalTrafficPolicy: Unsupported value: \"Far\": supported values: \"Cluster\", \"Local\"",
            "spec.internalTrafficPolicy: Unsupported value: \"Nearby\": supported values: \"Cluster\", \"Local\"",
        ]
    );
    assert_eq!(
        errors(json!({"type": "NodePort", "healthCheckNodePort": 30000, "ports": [{"port": 80}]})),
        [
            "spec.healthCheckNodePort: Invalid value: 30000: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
        ]
    );
    assert_eq!(
        errors(json!({"allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]})),
        [
            "spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is 'LoadBalancer'"
        ]
    );
}

fn stored() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
        "spec": {"type": "NodePort", "clusterIP": "127.20.0.5", "clusterIPs": ["127.20.0.5"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
            "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80,
                "nodePort": 30080}]},
        "status": {"loadBalancer": {}}})
}

#[test]
fn an_update_keeps_what_was_allocated() {
    // The same manifest again: cluster IP and node port come from the stored Service.
    let svc = update(
        &stored(),
        json!({"type": "NodePort", "ports": [{"name": "http", "port": 80}]}),
    )
    .unwrap();
    assert_eq!(svc["spec"]["clusterIP"], "127.20.0.5");
    assert_eq!(svc["spec"]["clusterIPs"], json!(["127.20.0.5"]));
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30080);
    // Back to ClusterIP: the node ports the client left as they were are dropped.
    let svc = update(
        &stored(),
        json!({"type": "ClusterIP", "clusterIP": "127.20.0.5",
            "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}),
    )
    .unwrap();
    assert!(svc["spec"]["ports"][0].get("nodePort").is_none());
    assert!(svc["spec"].get("externalTrafficPolicy").is_none());
}

#[test]
fn cluster_ip_is_immutable() {
    assert_eq!(
        update(
            &stored(),
            json!({"type": "NodePort", "clusterIP": "127.20.0.9",
            "ports": [{"name": "http", "port": 80}]})
        ),
        Err(vec![
            "spec.clusterIPs[0]: Invalid value: []string{\"127.20.0.9\"}: may not change once set"
                .to_owned()
        ])
    );
}

#[test]
fn manifests_are_told_what_podvisor_does_not_implement() {
    let docs = crate::model::manifest::parse(
        "svc.yaml",
        b"apiVersion: v1\nkind: Service\nmetadata: {name: dns}\nspec:\n  type: NodePort\n  externalTrafficPolicy: Local\n  ports:\n  - {name: udp, port: 53, protocol: UDP}\n  - {name: tcp, port: 53, protocol: TCP}\n",
    )
    .unwrap();
    let report = crate::model::manifest::decode(&docs[0], FieldValidation::Strict);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        report.warnings,
        [
            "svc.yaml: Service \"dns\": fields not implemented by podvisor (ignored): spec.externalTrafficPolicy, spec.ports[0].protocol"
        ]
    );
}
