use serde_json::{Value, json};

use crate::model::manifest::{FieldValidation, decode_for_api, decode_update_for_api};

fn decode(kind: &str, body: Value) -> Result<Value, Vec<String>> {
    let api_version = if kind == "EndpointSlice" {
        "discovery.k8s.io/v1"
    } else {
        "v1"
    };
    let decoded = decode_for_api(api_version, kind, &body, FieldValidation::Strict);
    assert!(decoded.bad_request.is_empty(), "{:?}", decoded.bad_request);
    if decoded.invalid.is_empty() {
        Ok(decoded.object.unwrap())
    } else {
        Err(decoded.invalid.iter().map(ToString::to_string).collect())
    }
}

#[test]
fn endpoints_defaults_and_rules() {
    let ep = decode(
        "Endpoints",
        json!({"metadata": {"name": "ext", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 8080}]}]}),
    )
    .unwrap();
    assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
    assert_eq!(
        decode(
            "Endpoints",
            json!({"metadata": {"name": "ext", "namespace": "default"},
                "subsets": [{"ports": [{"port": 8080}, {"port": 0, "name": "b"}]},
                    {"addresses": [{"ip": "0.0.0.0"}, {"ip": "x"}]}]}),
        ),
        Err(vec![
            "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`".to_owned(),
            "subsets[0].ports[0].name: Required value".to_owned(),
            "subsets[0].ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive"
                .to_owned(),
            "subsets[1].addresses[0].ip: Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0)"
                .to_owned(),
            "subsets[1].addresses[1].ip: Invalid value: \"x\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                .to_owned(),
            "subsets[1].addresses[1].ip: Invalid value: \"x\": must be a valid IP address".to_owned(),
        ])
    );
}

fn slice(extra: Value) -> Value {
    let mut body = json!({"metadata": {"name": "ext-1", "namespace": "default",
            "labels": {"kubernetes.io/service-name": "ext"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
        "ports": [{"port": 8080}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[test]
fn endpoint_slice_defaults() {
    // kubectl's `describe svc` dereferences a port's name: it is never left unset.
    let s = decode("EndpointSlice", slice(json!({}))).unwrap();
    assert_eq!(
        s["ports"],
        json!([{"name": "", "port": 8080, "protocol": "TCP"}])
    );
}

#[test]
fn endpoint_slice_rules() {
    assert_eq!(
        decode("EndpointSlice", slice(json!({"addressType": ""}))),
        Err(vec!["addressType: Required value".to_owned()])
    );
    assert_eq!(
        decode(
            "EndpointSlice",
            slice(json!({"addressType": "IP",
                "ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2, "protocol": "ICMP"}]}))
        ),
        Err(vec![
            "addressType: Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""
                .to_owned(),
            "ports[1].name: Duplicate value: \"a\"".to_owned(),
            "ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
                .to_owned(),
        ])
    );
    assert_eq!(
        decode(
            "EndpointSlice",
            slice(json!({"endpoints": [{"addresses": []}, {"addresses": ["fd00::1", "169.254.1.1"]}]}))
        ),
        Err(vec![
            "endpoints[0].addresses: Required value: must contain at least 1 address".to_owned(),
            "endpoints[1].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address"
                .to_owned(),
            "endpoints[1].addresses[1]: Invalid value: \"169.254.1.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)"
                .to_owned(),
        ])
    );
}

#[test]
fn endpoint_slice_address_type_is_immutable() {
    let old = decode("EndpointSlice", slice(json!({}))).unwrap();
    let decoded = decode_update_for_api(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        &slice(json!({"addressType": "FQDN", "endpoints": [{"addresses": ["db.example.com"]}]})),
        &old,
        FieldValidation::Strict,
    );
    assert_eq!(
        decoded
            .invalid
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["addressType: Invalid value: \"FQDN\": field is immutable"]
    );
}

#[test]
fn manifests_are_told_what_podvisor_does_not_implement() {
    let docs = crate::model::manifest::parse(
        "ext.yaml",
        b"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: db-1}\naddressType: FQDN\nendpoints:\n- addresses: [db.example.com]\n  zone: a\nports:\n- {port: 5432}\n",
    )
    .unwrap();
    let report = crate::model::manifest::decode(&docs[0], FieldValidation::Strict);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        report.warnings,
        [
            "ext.yaml: EndpointSlice \"db-1\": fields not implemented by podvisor (ignored): addressType, endpoints[0].zone"
        ]
    );
}
