//! `decode_for_api`: each served kind, valid and with each class of problem.

use serde_json::json;

use super::*;

fn api(api_version: &str, kind: &str, value: Value) -> ApiDecoded {
    decode_for_api(api_version, kind, &value, FieldValidation::Strict)
}

fn invalid(decoded: &ApiDecoded) -> Vec<String> {
    decoded.invalid.iter().map(ToString::to_string).collect()
}

/// A pod that needs an image map entry and sets fields podvisor ignores: neither matters to
/// the API.
fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.25",
            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "emptyDir": {}}]}})
}

#[test]
fn a_valid_pod_is_defaulted_without_manifest_warnings() {
    let d = api("v1", "Pod", pod());
    assert_eq!((d.bad_request.len(), d.invalid.len()), (0, 0), "{d:?}");
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    let object = d.object.unwrap();
    assert_eq!(object["apiVersion"], "v1");
    assert_eq!(object["kind"], "Pod");
    assert_eq!(object["metadata"]["namespace"], "prod");
    assert_eq!(object["spec"]["restartPolicy"], "Always");
    assert_eq!(
        object["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
}

#[test]
fn unknown_fields_follow_field_validation() {
    let mut body = pod();
    body["spec"]["foo"] = json!(1);
    body["metadata"]["bar"] = json!("x");
    let d = api("v1", "Pod", body.clone());
    assert_eq!(
        d.bad_request,
        [
            "unknown field \"metadata.bar\"",
            "unknown field \"spec.foo\""
        ]
    );
    assert!(d.warnings.is_empty());

    let d = decode_for_api("v1", "Pod", &body, FieldValidation::Warn);
    assert!(d.bad_request.is_empty(), "{d:?}");
    assert_eq!(
        d.warnings,
        [
            "unknown field \"metadata.bar\"",
            "unknown field \"spec.foo\""
        ]
    );
    let object = d.object.unwrap();
    assert!(
        object["spec"].get("foo").is_none(),
        "unknown fields are dropped"
    );

    let d = decode_for_api("v1", "Pod", &body, FieldValidation::Ignore);
    assert!(d.bad_request.is_empty() && d.warnings.is_empty(), "{d:?}");
    assert!(d.object.is_some());
}

#[test]
fn type_errors_are_bad_requests_worded_like_go() {
    let mut body = pod();
    body["spec"]["terminationGracePeriodSeconds"] = json!("soon");
    body["spec"]["containers"][0]["ports"] = json!([{"containerPort": 1.5}]);
    body["spec"]["containers"][0]["command"] = json!("sleep");
    body["spec"]["hostNetwork"] = json!({"a": 1});
    let d = api("v1", "Pod", body);
    assert_eq!(
        d.bad_request,
        [
            "spec.containers[0].command: invalid type: string \"sleep\", expected a sequence",
            "json: cannot unmarshal number 1.5 into Go struct field Pod.spec.containers[0].ports[0].containerPort of type int32",
            "json: cannot unmarshal object into Go struct field Pod.spec.hostNetwork of type bool",
            "json: cannot unmarshal string into Go struct field Pod.spec.terminationGracePeriodSeconds of type int64",
        ]
    );
    assert_eq!(d.object, None);
    assert!(
        d.invalid.is_empty(),
        "fields with type errors are not also invalid"
    );
}

#[test]
fn validation_errors_are_field_errors() {
    let mut body = pod();
    body["metadata"]["name"] = json!("Web");
    body["spec"]["restartPolicy"] = json!("Sometimes");
    let d = api("v1", "Pod", body);
    assert!(d.bad_request.is_empty());
    let errors = invalid(&d);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("metadata.name: Invalid value: \"Web\""));
    assert_eq!(
        errors[1],
        "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
    );
    assert_eq!(d.invalid[1].kind.cause_reason(), "FieldValueNotSupported");
    assert!(d.object.is_some(), "an invalid object still decoded");
}

#[test]
fn config_maps() {
    let body = json!({"metadata": {"name": "settings", "namespace": "prod"},
        "data": {"a": "1"}, "binaryData": {"b": "AAE="}, "immutable": true});
    let d = api("v1", "ConfigMap", body);
    assert_eq!(
        d.object.unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "prod"},
            "data": {"a": "1"}, "binaryData": {"b": "AAE="}, "immutable": true})
    );
    let d = api(
        "v1",
        "ConfigMap",
        json!({"metadata": {"name": "settings"}, "data": {"a": "1"}, "binaryData": {"a": ""}}),
    );
    assert_eq!(
        invalid(&d),
        ["data[a]: Invalid value: \"a\": duplicate of key present in binaryData"]
    );
    let d = api(
        "v1",
        "ConfigMap",
        json!({"metadata": {"name": "settings"}, "data": {"a": 1}, "binaryData": {"b": "%%"}}),
    );
    assert_eq!(d.bad_request.len(), 2, "{d:?}");
    assert_eq!(
        d.bad_request[0],
        "binaryData.b: Invalid symbol 37, offset 0."
    );
    assert_eq!(
        d.bad_request[1],
        "json: cannot unmarshal number 1 into Go struct field ConfigMap.data.a of type string"
    );
}

#[test]
fn secrets_get_opaque_and_string_data_merged() {
    let body = json!({"metadata": {"name": "creds", "namespace": "prod"},
        "data": {"user": "b2xk"}, "stringData": {"user": "admin", "pass": "x"}});
    let d = api("v1", "Secret", body);
    assert!(d.bad_request.is_empty() && d.invalid.is_empty(), "{d:?}");
    assert_eq!(
        d.object.unwrap(),
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "prod"},
            "type": "Opaque", "data": {"user": "YWRtaW4=", "pass": "eA=="}})
    );
    let d = api(
        "v1",
        "Secret",
        json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": "x"}}),
    );
    assert_eq!(invalid(&d), ["data[tls.key]: Required value"]);
}

#[test]
fn namespaces_are_cluster_scoped_and_defaulted() {
    let d = api(
        "v1",
        "Namespace",
        json!({"metadata": {"name": "shop", "namespace": "ignored"}}),
    );
    assert!(d.bad_request.is_empty() && d.invalid.is_empty(), "{d:?}");
    assert_eq!(
        d.object.unwrap(),
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {"kubernetes.io/metadata.name": "shop"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
    );
    let d = api(
        "v1",
        "Namespace",
        json!({"metadata": {"name": "shop.example"}}),
    );
    assert_eq!(
        invalid(&d),
        ["metadata.name: Invalid value: \"shop.example\": must not contain dots"]
    );
}

#[test]
fn events() {
    let body = json!({"metadata": {"name": "web.17", "namespace": "prod"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "prod"},
        "reason": "Started", "message": "Started container app", "type": "Normal",
        "count": 1, "firstTimestamp": "2026-01-01T00:00:00Z"});
    let d = api("v1", "Event", body.clone());
    assert!(d.bad_request.is_empty() && d.invalid.is_empty(), "{d:?}");
    assert_eq!(d.object.unwrap()["reason"], "Started");

    let mut other = body.clone();
    other["involvedObject"]["namespace"] = json!("dev");
    assert_eq!(
        invalid(&api("v1", "Event", other)),
        ["involvedObject.namespace: Invalid value: \"dev\": does not match event.namespace"]
    );
    let mut unknown = body;
    unknown["involvedObject"]["bogus"] = json!(1);
    assert_eq!(
        api("v1", "Event", unknown).bad_request,
        ["unknown field \"involvedObject.bogus\""]
    );
}

#[test]
fn leases() {
    let body = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
            "renewTime": "2026-01-01T00:00:00.000000Z"}});
    let d = api("coordination.k8s.io/v1", "Lease", body.clone());
    assert!(d.bad_request.is_empty() && d.invalid.is_empty(), "{d:?}");
    assert_eq!(d.object.unwrap()["spec"]["leaseDurationSeconds"], 40);

    let mut bad = body;
    bad["spec"]["leaseDurationSeconds"] = json!(0);
    bad["metadata"]["name"] = json!("Node_1");
    let errors = invalid(&api("coordination.k8s.io/v1", "Lease", bad));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("metadata.name: Invalid value: \"Node_1\""));
    assert_eq!(
        errors[1],
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
    );
}

#[test]
fn type_and_kind_come_from_the_endpoint() {
    // Missing ones are taken from the endpoint, as the API server's decoder does.
    let d = api("v1", "ConfigMap", json!({"metadata": {"name": "a"}}));
    let object = d.object.unwrap();
    assert_eq!(
        (object["apiVersion"].as_str(), object["kind"].as_str()),
        (Some("v1"), Some("ConfigMap"))
    );
    // Different ones are refused.
    let d = api(
        "v1",
        "Pod",
        json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
    );
    assert_eq!(
        d.bad_request,
        [
            "the API version in the data (apps/v1) does not match the expected API version (v1)",
            "the kind in the data (Deployment) does not match the expected kind (Pod)",
        ]
    );
    assert_eq!(d.object, None);
    // Combinations podvisor does not decode, and bodies that are not objects.
    assert_eq!(
        api("apps/v1", "StatefulSet", json!({})).bad_request,
        ["no kind \"StatefulSet\" is registered for version \"apps/v1\""]
    );
    assert_eq!(
        api("v1", "Lease", json!({})).bad_request,
        ["no kind \"Lease\" is registered for version \"v1\""]
    );
    assert_eq!(
        api("v1", "Pod", json!([1])).bad_request,
        ["the body must be a Pod object, not a list"]
    );
}

#[test]
fn raw_bodies_report_duplicate_keys_and_syntax_errors() {
    let body = br#"{"metadata": {"name": "a", "name": "b"}, "data": {"k": "v"}}"#;
    let d = decode_body_for_api("v1", "ConfigMap", body, FieldValidation::Strict);
    assert_eq!(d.bad_request, ["duplicate field \"metadata.name\""]);
    assert_eq!(
        d.object.unwrap()["metadata"]["name"],
        "b",
        "the last one wins"
    );
    let d = decode_body_for_api("v1", "ConfigMap", body, FieldValidation::Warn);
    assert!(d.bad_request.is_empty());
    assert_eq!(d.warnings, ["duplicate field \"metadata.name\""]);
    let d = decode_body_for_api(
        "v1",
        "ConfigMap",
        b"{\"metadata\": ",
        FieldValidation::Strict,
    );
    assert_eq!(
        d.bad_request,
        ["json parse error: EOF while parsing a value"]
    );
}
