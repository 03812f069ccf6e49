use k8s_pb::apimachinery::pkg::runtime::TypeMeta;
use serde_json::json;

use super::*;

/// A body as client-go's protobuf serializer writes it: the magic, then a `runtime.Unknown`.
fn envelope(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

/// The ObjectMeta kubectl sends: every string set (empty ones too, as gogo-protobuf writes
/// non-pointer fields) and a zero creationTimestamp (an empty message).
fn kubectl_meta(name: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: Some(name.to_owned()),
        generate_name: Some(String::new()),
        namespace: Some(String::new()),
        self_link: Some(String::new()),
        uid: Some(String::new()),
        resource_version: Some(String::new()),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    }
}

fn decoded(body: &[u8], api_version: &str, kind: &str) -> Value {
    decode(body, api_version, kind).unwrap()
}

#[test]
fn namespace_as_kubectl_create_sends_it() {
    let ns = core::Namespace {
        metadata: Some(kubectl_meta("demo")),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus {
            phase: Some(String::new()),
            conditions: vec![],
        }),
    };
    assert_eq!(
        decoded(&envelope("v1", "Namespace", &ns), "v1", "Namespace"),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"},
               "spec": {}, "status": {}})
    );
}

#[test]
fn configmap_with_everything() {
    let cm = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            labels: [("app".to_owned(), "web".to_owned())].into(),
            annotations: [("note".to_owned(), "x".to_owned())].into(),
            namespace: Some("team".to_owned()),
            ..kubectl_meta("cfg")
        }),
        immutable: Some(false),
        data: [("a".to_owned(), "b".to_owned())].into(),
        binary_data: [("bin".to_owned(), vec![0u8, 1, 255])].into(),
    };
    assert_eq!(
        decoded(&envelope("v1", "ConfigMap", &cm), "v1", "ConfigMap"),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "cfg", "namespace": "team",
                            "labels": {"app": "web"}, "annotations": {"note": "x"}},
               "immutable": false, "data": {"a": "b"}, "binaryData": {"bin": "AAH/"}})
    );
}

#[test]
fn secret_data_is_base64() {
    let s = core::Secret {
        metadata: Some(kubectl_meta("creds")),
        immutable: None,
        data: [
            ("a".to_owned(), b"b".to_vec()),
            ("empty".to_owned(), vec![]),
        ]
        .into(),
        string_data: [("plain".to_owned(), "text".to_owned())].into(),
        r#type: Some("Opaque".to_owned()),
    };
    assert_eq!(
        decoded(&envelope("v1", "Secret", &s), "v1", "Secret"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
               "data": {"a": "Yg==", "empty": ""}, "stringData": {"plain": "text"},
               "type": "Opaque"})
    );
    // An empty type is left out (`omitempty`); the model defaults it.
    let s = core::Secret {
        metadata: Some(kubectl_meta("creds")),
        r#type: Some(String::new()),
        ..Default::default()
    };
    assert_eq!(
        decoded(&envelope("v1", "Secret", &s), "v1", "Secret"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}})
    );
}

#[test]
fn metadata_references_times_and_managed_fields() {
    let m = meta::ObjectMeta {
        generation: Some(3),
        creation_timestamp: Some(meta::Time {
            seconds: Some(1_700_000_000),
            nanos: Some(999_000_000),
        }),
        deletion_timestamp: Some(meta::Time {
            seconds: Some(0),
            nanos: Some(0),
        }),
        deletion_grace_period_seconds: Some(0),
        owner_references: vec![meta::OwnerReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Pod".to_owned()),
            name: Some("web".to_owned()),
            uid: None,
            controller: Some(true),
            block_owner_deletion: None,
        }],
        finalizers: vec!["example.com/f".to_owned()],
        managed_fields: vec![meta::ManagedFieldsEntry {
            manager: Some("kubectl".to_owned()),
            operation: Some("Update".to_owned()),
            api_version: Some("v1".to_owned()),
            time: Some(meta::Time {
                seconds: Some(1_700_000_000),
                nanos: None,
            }),
            fields_type: Some("FieldsV1".to_owned()),
            fields_v1: Some(meta::FieldsV1 {
                raw: Some(br#"{"f:data":{"f:a":{}}}"#.to_vec()),
            }),
            subresource: Some(String::new()),
        }],
        ..kubectl_meta("cfg")
    };
    let cm = core::ConfigMap {
        metadata: Some(m),
        ..Default::default()
    };
    assert_eq!(
        decoded(&envelope("v1", "ConfigMap", &cm), "v1", "ConfigMap")["metadata"],
        json!({"name": "cfg", "generation": 3,
               "creationTimestamp": "2023-11-14T22:13:20Z",
               "deletionTimestamp": "1970-01-01T00:00:00Z",
               "deletionGracePeriodSeconds": 0,
               "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "web",
                                    "uid": "", "controller": true}],
               "finalizers": ["example.com/f"],
               "managedFields": [{"manager": "kubectl", "operation": "Update",
                                  "apiVersion": "v1", "time": "2023-11-14T22:13:20Z",
                                  "fieldsType": "FieldsV1",
                                  "fieldsV1": {"f:data": {"f:a": {}}}}]})
    );
}

#[test]
fn event_and_lease() {
    let micro = |nanos| {
        Some(meta::MicroTime {
            seconds: Some(1_700_000_000),
            nanos: Some(nanos),
        })
    };
    let e = core::Event {
        metadata: Some(kubectl_meta("web.1")),
        involved_object: Some(core::ObjectReference {
            kind: Some("Pod".to_owned()),
            name: Some("web".to_owned()),
            namespace: Some(String::new()),
            ..Default::default()
        }),
        reason: Some("Started".to_owned()),
        message: Some(String::new()),
        source: Some(core::EventSource {
            component: Some("kubelet".to_owned()),
            host: Some(String::new()),
        }),
        first_timestamp: Some(meta::Time::default()),
        last_timestamp: None,
        count: Some(0),
        r#type: Some("Normal".to_owned()),
        event_time: micro(123_456_789),
        series: Some(core::EventSeries {
            count: Some(2),
            last_observed_time: micro(0),
        }),
        action: None,
        related: None,
        reporting_component: Some("kubelet".to_owned()),
        reporting_instance: None,
    };
    assert_eq!(
        decoded(&envelope("v1", "Event", &e), "v1", "Event"),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1"},
               "involvedObject": {"kind": "Pod", "name": "web"}, "reason": "Started",
               "source": {"component": "kubelet"}, "type": "Normal",
               "eventTime": "2023-11-14T22:13:20.123456Z",
               "series": {"count": 2, "lastObservedTime": "2023-11-14T22:13:20.000000Z"},
               "reportingComponent": "kubelet", "reportingInstance": ""})
    );

    let l = coordination::Lease {
        metadata: Some(kubectl_meta("node")),
        spec: Some(coordination::LeaseSpec {
            holder_identity: Some("me".to_owned()),
            lease_duration_seconds: Some(40),
            acquire_time: None,
            renew_time: micro(5_000),
            lease_transitions: Some(0),
            strategy: None,
            preferred_holder: Some(String::new()),
        }),
    };
    assert_eq!(
        decoded(
            &envelope("coordination.k8s.io/v1", "Lease", &l),
            "coordination.k8s.io/v1",
            "Lease"
        ),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "node"},
               "spec": {"holderIdentity": "me", "leaseDurationSeconds": 40,
                        "renewTime": "2023-11-14T22:13:20.000005Z", "leaseTransitions": 0,
                        "preferredHolder": ""}})
    );
}

#[test]
fn missing_type_is_the_endpoints_and_another_kind_is_kept() {
    let cm = core::ConfigMap {
        metadata: Some(kubectl_meta("cfg")),
        ..Default::default()
    };
    let mut body = MAGIC.to_vec();
    body.extend(
        Unknown {
            raw: Some(cm.encode_to_vec()),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    assert_eq!(
        decoded(&body, "v1", "ConfigMap"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}})
    );
    // A Secret sent to the configmaps endpoint is a Secret: the caller's kind check refuses it.
    let s = core::Secret {
        metadata: Some(kubectl_meta("s")),
        ..Default::default()
    };
    assert_eq!(
        decoded(&envelope("v1", "Secret", &s), "v1", "ConfigMap")["kind"],
        "Secret"
    );
}

/// What `kubectl create service nodeport web --tcp=80:8080` sends: every string of the spec
/// set (empty ones too), the target port as an int, no status.
#[test]
fn service_as_kubectl_create_sends_it() {
    use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
    let svc = core::Service {
        metadata: Some(kubectl_meta("web")),
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                name: Some("80-8080".to_owned()),
                protocol: Some("TCP".to_owned()),
                port: Some(80),
                target_port: Some(IntOrString {
                    r#type: Some(0),
                    int_val: Some(8080),
                    str_val: Some(String::new()),
                }),
                node_port: Some(0),
                ..Default::default()
            }],
            selector: [("app".to_owned(), "web".to_owned())].into(),
            cluster_ip: Some(String::new()),
            r#type: Some("NodePort".to_owned()),
            session_affinity: Some(String::new()),
            external_traffic_policy: Some(String::new()),
            health_check_node_port: Some(0),
            publish_not_ready_addresses: Some(false),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus::default()),
    };
    assert_eq!(
        decoded(&envelope("v1", "Service", &svc), "v1", "Service"),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80,
                                   "targetPort": 8080}],
                        "selector": {"app": "web"}, "type": "NodePort"},
               "status": {"loadBalancer": {}}})
    );
    let named = core::Service {
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                port: Some(80),
                target_port: Some(IntOrString {
                    r#type: Some(1),
                    int_val: Some(0),
                    str_val: Some("http".to_owned()),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        decoded(&envelope("v1", "Service", &named), "v1", "Service")["spec"]["ports"],
        json!([{"port": 80, "targetPort": "http"}])
    );
}

#[test]
fn kinds_without_a_conversion_are_unsupported() {
    let pod = core::Pod::default();
    assert_eq!(
        decode(&envelope("v1", "Pod", &pod), "v1", "Pod"),
        Err(ProtobufError::Unsupported)
    );
    assert_eq!(
        decode(&envelope("apps/v1", "Deployment", &pod), "v1", "ConfigMap"),
        Err(ProtobufError::Unsupported)
    );
    // The right kind in an unserved version.
    assert_eq!(
        decode(&envelope("v2", "ConfigMap", &pod), "v1", "ConfigMap"),
        Err(ProtobufError::Unsupported)
    );
}

#[test]
fn malformed_bodies() {
    let not = |why: &str| Err(ProtobufError::NotAnEnvelope(why.to_owned()));
    assert_eq!(decode(b"", "v1", "ConfigMap"), not("empty data"));
    let no_prefix =
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]";
    assert_eq!(
        decode(b"{\"kind\":\"ConfigMap\"}", "v1", "ConfigMap"),
        not(no_prefix)
    );
    assert_eq!(decode(b"k8s", "v1", "ConfigMap"), not(no_prefix));
    assert_eq!(decode(b"k8s\0", "v1", "ConfigMap"), not("empty body"));
    // An envelope that is not a message (a field 1 of length 100 with 2 bytes after it).
    let Err(ProtobufError::NotAnEnvelope(why)) = decode(b"k8s\0\x0a\x64ab", "v1", "ConfigMap")
    else {
        panic!("a broken envelope decoded");
    };
    assert!(why.contains("failed to decode Protobuf message"), "{why}");
    // A good envelope around an object that is not a ConfigMap message.
    let mut body = MAGIC.to_vec();
    body.extend(
        Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some("v1".to_owned()),
                kind: Some("ConfigMap".to_owned()),
            }),
            raw: Some(b"\x0a\x05ab".to_vec()),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    let Err(ProtobufError::Undecodable {
        api_version,
        kind,
        why,
    }) = decode(&body, "v1", "ConfigMap")
    else {
        panic!("a broken object decoded");
    };
    assert_eq!((api_version.as_str(), kind.as_str()), ("v1", "ConfigMap"));
    assert!(why.contains("failed to decode Protobuf message"), "{why}");
    // A time out of range, and managed fields that are not JSON.
    let cm = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            creation_timestamp: Some(meta::Time {
                seconds: Some(i64::MAX),
                nanos: None,
            }),
            ..kubectl_meta("cfg")
        }),
        ..Default::default()
    };
    assert!(matches!(
        decode(&envelope("v1", "ConfigMap", &cm), "v1", "ConfigMap"),
        Err(ProtobufError::Undecodable { why, .. }) if why.starts_with("invalid time")
    ));
    let cm = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            managed_fields: vec![meta::ManagedFieldsEntry {
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(b"{not json".to_vec()),
                }),
                ..Default::default()
            }],
            ..kubectl_meta("cfg")
        }),
        ..Default::default()
    };
    assert!(matches!(
        decode(&envelope("v1", "ConfigMap", &cm), "v1", "ConfigMap"),
        Err(ProtobufError::Undecodable { why, .. }) if why.starts_with("managedFields: fieldsV1 is not JSON")
    ));
}
