use serde_json::json;

use super::*;

fn paths(value: &Value) -> Vec<String> {
    unimplemented_fields("Pod", value)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn implemented_fields_are_silent() {
    let container = json!({
        "name": "app", "image": "i", "imagePullPolicy": "Never",
        "command": ["a"], "args": ["b"], "workingDir": "/",
        "env": [
            {"name": "A", "value": "1"},
            {"name": "B", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "C", "valueFrom": {"resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}}}
        ],
        "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
        "resources": {"limits": {"memory": "1Gi"}},
        "lifecycle": {
            "stopSignal": "SIGQUIT",
            "postStart": {"exec": {"command": ["x"]}},
            "preStop": {
                "httpGet": {"host": "h", "port": 80, "path": "/", "scheme": "HTTP",
                            "httpHeaders": [{"name": "a", "value": "b"}]},
                "sleep": {"seconds": 1},
                "tcpSocket": {"host": "h", "port": "http"}
            }
        },
        "securityContext": {"runAsUser": 1, "runAsGroup": 1},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File"
    });
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web", "namespace": "prod", "labels": {"a": "b"},
            "annotations": {"x": "y"}, "uid": "1", "resourceVersion": "2",
            "creationTimestamp": "2024-01-01T00:00:00Z", "generation": 1,
            "managedFields": [{"manager": "kubectl"}], "selfLink": "/x",
            "generateName": "web-"
        },
        "spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 5, "nodeName": "n",
            "serviceAccountName": "sa", "serviceAccount": "sa", "os": {"name": "linux"},
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000}, "priority": 0,
            "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
            "enableServiceLinks": true,
            "containers": [container]
        },
        "status": {"phase": "Running"}
    });
    assert_eq!(paths(&pod), Vec::<String>::new());
}

#[test]
fn unimplemented_subtrees_collapse_to_their_root() {
    let pod = json!({
        "spec": {
            "volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "hostPath": {"path": "/"}}],
            "containers": [
                {"name": "a", "volumeMounts": [{"name": "a", "mountPath": "/a"}]},
                {"name": "b", "readinessProbe": {"httpGet": {"port": 80}}, "startupProbe": {"exec": {"command": ["x"]}, "foo": {"bar": 1}}}
            ],
            "initContainers": [{"name": "init", "volumeMounts": [{"name": "a", "mountPath": "/a"}]}]
        }
    });
    assert_eq!(
        paths(&pod),
        [
            "spec.containers[0].volumeMounts",
            "spec.containers[1].startupProbe.foo",
            "spec.initContainers[0].volumeMounts",
            "spec.volumes"
        ]
    );
}

#[test]
fn map_keys_render_in_brackets() {
    let pod = json!({"spec": {"containers": [{
        "resources": {"limits": {"memory": "1Gi", "cpu": "1", "nvidia.com/gpu": 1}, "requests": {"cpu": "1"}}
    }]}});
    assert_eq!(
        paths(&pod),
        [
            "spec.containers[0].resources.limits[cpu]",
            "spec.containers[0].resources.limits[nvidia.com/gpu]",
            "spec.containers[0].resources.requests"
        ]
    );
}

#[test]
fn fields_implemented_at_one_value_warn_at_others() {
    let pod = json!({
        "spec": {
            "dnsPolicy": "None", "schedulerName": "custom", "enableServiceLinks": false,
            "containers": [{"terminationMessagePath": "/tmp/x", "terminationMessagePolicy": "FallbackToLogsOnError"}]
        }
    });
    assert_eq!(
        paths(&pod),
        [
            "spec.containers[0].terminationMessagePath",
            "spec.containers[0].terminationMessagePolicy",
            "spec.dnsPolicy",
            "spec.schedulerName"
        ]
    );
}

#[test]
fn partially_implemented_objects_report_only_the_rest() {
    let pod = json!({
        "metadata": {"name": "x", "finalizers": ["f"], "ownerReferences": [{"name": "o"}]},
        "spec": {
            "os": {"name": "linux"},
            "securityContext": {"runAsUser": 1, "fsGroup": 2, "runAsNonRoot": true},
            "containers": [{
                "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "0.0.0.0"}],
                "lifecycle": {"preStop": {"exec": {"command": ["x"]}, "grpc": {"port": 1}}},
                "securityContext": {"privileged": false, "runAsUser": 1}
            }]
        }
    });
    assert_eq!(
        paths(&pod),
        [
            "metadata.finalizers",
            "metadata.ownerReferences",
            "spec.containers[0].lifecycle.preStop.grpc",
            "spec.containers[0].ports[0].hostIP",
            "spec.containers[0].ports[0].hostPort",
            "spec.containers[0].securityContext.privileged",
            "spec.containers[0].volumeMounts",
            "spec.securityContext.fsGroup",
            "spec.securityContext.runAsNonRoot"
        ]
    );
}

#[test]
fn empty_values_are_not_set() {
    let pod = json!({
        "spec": {
            "volumes": [], "nodeSelector": {}, "affinity": null, "tolerations": [{}],
            "containers": [{"resources": {"requests": {}}, "volumeMounts": []}]
        }
    });
    assert_eq!(paths(&pod), Vec::<String>::new());
}

#[test]
fn a_kind_without_a_table_has_no_findings() {
    assert!(unimplemented_fields("Unknown", &json!({"spec": {"x": 1}})).is_empty());
}

#[test]
fn every_rule_path_parses() {
    // Building the tries panics on a malformed path; this makes that a test failure.
    assert!(tries().contains_key("Pod"));
    let pod = &tries()["Pod"];
    let containers = &pod.fields["spec"].fields["containers"];
    assert!(
        containers
            .items
            .as_ref()
            .unwrap()
            .fields
            .contains_key("image")
    );
    let limits = &containers.items.as_ref().unwrap().fields["resources"].fields["limits"];
    assert!(limits.keys.contains_key("memory"));
}

#[test]
fn every_field_of_config_maps_secrets_and_namespaces_is_implemented() {
    let meta = json!({"name": "a", "namespace": "b", "labels": {"x": "y"}});
    let cases = [
        (
            "ConfigMap",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                "data": {"a": "1"}, "binaryData": {"b": "AA=="}, "immutable": true}),
        ),
        (
            "Secret",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
                "data": {"a": "AA=="}, "stringData": {"b": "x"}, "immutable": false}),
        ),
        (
            "Namespace",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta,
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        ),
    ];
    for (kind, value) in cases {
        assert_eq!(
            unimplemented_fields(kind, &value),
            Vec::<FieldPath>::new(),
            "{kind}"
        );
    }
    // Metadata podvisor does not act on is reported for them as for pods.
    let value = json!({"metadata": {"name": "a", "finalizers": ["example.com/x"]}});
    assert_eq!(
        unimplemented_fields("Secret", &value)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["metadata.finalizers"]
    );
}
