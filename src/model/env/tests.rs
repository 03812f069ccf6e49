use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::json;

use super::{EnvContext, EnvError, EnvSourceLookup, NoEnvSources, NodeAllocatable, container_env};

/// ConfigMaps and Secrets for tests, by name (one namespace).
#[derive(Default)]
struct Sources {
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
    secrets: BTreeMap<String, BTreeMap<String, String>>,
}

impl EnvSourceLookup for Sources {
    fn config_map(&self, _namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
        self.config_maps.get(name).cloned()
    }

    fn secret(&self, _namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
        self.secrets.get(name).cloned()
    }
}

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A defaulted pod named like upstream's test pod, with one container built from `container`.
fn pod_with(container: serde_json::Value) -> (Pod, Container) {
    let mut pod: Pod = serde_json::from_value(json!({
        "metadata": {
            "name": "dapi-test-pod-name",
            "namespace": "downward-api",
            "uid": "0123-abcd",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"note": "say \"hi\"\n"},
        },
        "spec": {
            "nodeName": "node-name",
            "serviceAccountName": "special",
            "containers": [container],
        }
    }))
    .expect("a Pod");
    crate::model::pod::set_defaults(&mut pod);
    let container = pod.spec.as_ref().expect("spec").containers[0].clone();
    (pod, container)
}

fn ctx() -> EnvContext {
    EnvContext {
        pod_ips: vec!["1.2.3.4".to_owned(), "fd00::6".to_owned()],
        host_ips: vec!["5.6.7.8".to_owned(), "fd00::1".to_owned()],
        node_allocatable: NodeAllocatable {
            cpu_millis: 4000,
            memory_bytes: 8 << 30,
            ephemeral_storage_bytes: 100 << 30,
        },
        service_env: pairs(&[
            ("TEST_SERVICE_HOST", "1.2.3.3"),
            ("TEST_SERVICE_PORT", "8083"),
            ("KUBERNETES_SERVICE_HOST", "1.2.3.1"),
        ]),
    }
}

/// Upstream case "pod with env with expansion" (declared order, then the service variables).
#[test]
fn expansion_against_what_is_defined_so_far() {
    let (pod, container) = pod_with(json!({
        "name": "c",
        "image": "x",
        "env": [
            {"name": "TEST_LITERAL", "value": "test-test-test"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "OUT_OF_ORDER_TEST", "value": "$(OUT_OF_ORDER_TARGET)"},
            {"name": "OUT_OF_ORDER_TARGET", "value": "FOO"},
            {"name": "EMPTY_VAR"},
            {"name": "EMPTY_TEST", "value": "foo-$(EMPTY_VAR)"},
            {"name": "POD_NAME_TEST2", "value": "test2-$(POD_NAME)"},
            {"name": "POD_NAME_TEST3", "value": "$(POD_NAME_TEST2)-3"},
            {"name": "LITERAL_TEST", "value": "literal-$(TEST_LITERAL)"},
            {"name": "SERVICE_VAR_TEST", "value": "$(TEST_SERVICE_HOST):$(TEST_SERVICE_PORT)"},
            {"name": "TEST_UNDEFINED", "value": "$(UNDEFINED_VAR)"},
            {"name": "TEST_SERVICE_PORT", "value": "override"},
        ],
    }));
    let env = container_env(&pod, &container, &ctx(), &NoEnvSources).expect("env");
    assert_eq!(
        env,
        pairs(&[
            ("TEST_LITERAL", "test-test-test"),
            ("POD_NAME", "dapi-test-pod-name"),
            ("OUT_OF_ORDER_TEST", "$(OUT_OF_ORDER_TARGET)"),
            ("OUT_OF_ORDER_TARGET", "FOO"),
            ("EMPTY_VAR", ""),
            ("EMPTY_TEST", "foo-"),
            ("POD_NAME_TEST2", "test2-dapi-test-pod-name"),
            ("POD_NAME_TEST3", "test2-dapi-test-pod-name-3"),
            ("LITERAL_TEST", "literal-test-test-test"),
            ("SERVICE_VAR_TEST", "1.2.3.3:8083"),
            ("TEST_UNDEFINED", "$(UNDEFINED_VAR)"),
            ("TEST_SERVICE_PORT", "override"),
            ("TEST_SERVICE_HOST", "1.2.3.3"),
            ("KUBERNETES_SERVICE_HOST", "1.2.3.1"),
        ])
    );
}

/// Upstream downward API case, plus labels, annotations and the uid.
#[test]
fn downward_api_fields() {
    let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
    let (pod, container) = pod_with(json!({
        "name": "c",
        "image": "x",
        "env": [
            {"name": "POD_NAME", "valueFrom": field("metadata.name")},
            {"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")},
            {"name": "POD_UID", "valueFrom": field("metadata.uid")},
            {"name": "POD_NODE_NAME", "valueFrom": field("spec.nodeName")},
            {"name": "POD_SERVICE_ACCOUNT_NAME", "valueFrom": field("spec.serviceAccountName")},
            {"name": "POD_IP", "valueFrom": field("status.podIP")},
            {"name": "POD_IPS", "valueFrom": field("status.podIPs")},
            {"name": "HOST_IP", "valueFrom": field("status.hostIP")},
            {"name": "HOST_IPS", "valueFrom": field("status.hostIPs")},
            {"name": "APP", "valueFrom": field("metadata.labels['app']")},
            {"name": "MISSING_LABEL", "valueFrom": field("metadata.labels['missing']")},
            {"name": "NOTE", "valueFrom": field("metadata.annotations['note']")},
        ],
    }));
    let mut context = ctx();
    context.service_env.clear();
    let env = container_env(&pod, &container, &context, &NoEnvSources).expect("env");
    assert_eq!(
        env,
        pairs(&[
            ("POD_NAME", "dapi-test-pod-name"),
            ("POD_NAMESPACE", "downward-api"),
            ("POD_UID", "0123-abcd"),
            ("POD_NODE_NAME", "node-name"),
            ("POD_SERVICE_ACCOUNT_NAME", "special"),
            ("POD_IP", "1.2.3.4"),
            ("POD_IPS", "1.2.3.4,fd00::6"),
            ("HOST_IP", "5.6.7.8"),
            ("HOST_IPS", "5.6.7.8,fd00::1"),
            ("APP", "web"),
            ("MISSING_LABEL", ""),
            ("NOTE", "say \"hi\"\n"),
        ])
    );
}

#[test]
fn label_and_annotation_maps_are_formatted_like_upstream() {
    let (pod, container) = pod_with(json!({
        "name": "c",
        "image": "x",
        "env": [
            {"name": "LABELS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}},
            {"name": "ANNOTATIONS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations"}}},
        ],
    }));
    let env = container_env(&pod, &container, &EnvContext::default(), &NoEnvSources).expect("env");
    assert_eq!(
        env,
        pairs(&[
            ("LABELS", "app=\"web\"\ntier=\"front\""),
            ("ANNOTATIONS", "note=\"say \\\"hi\\\"\\n\""),
        ])
    );
}

/// Upstream case "configmap": envFrom with and without a prefix, env overriding envFrom.
#[test]
fn config_map_env_from() {
    let (pod, container) = pod_with(json!({
        "name": "c",
        "image": "x",
        "envFrom": [
            {"configMapRef": {"name": "test-config-map"}},
            {"prefix": "p_", "configMapRef": {"name": "test-config-map"}},
        ],
        "env": [
            {"name": "TEST_LITERAL", "value": "test-test-test"},
            {"name": "EXPANSION_TEST", "value": "$(REPLACE_ME)"},
            {"name": "DUPE_TEST", "value": "ENV_VAR"},
        ],
    }));
    let mut sources = Sources::default();
    sources.config_maps.insert(
        "test-config-map".to_owned(),
        data(&[
            ("REPLACE_ME", "FROM_CONFIG_MAP"),
            ("DUPE_TEST", "CONFIG_MAP"),
        ]),
    );
    let mut context = ctx();
    context.service_env.truncate(1);
    let env = container_env(&pod, &container, &context, &sources).expect("env");
    assert_eq!(
        env,
        pairs(&[
            ("DUPE_TEST", "ENV_VAR"),
            ("REPLACE_ME", "FROM_CONFIG_MAP"),
            ("p_DUPE_TEST", "CONFIG_MAP"),
            ("p_REPLACE_ME", "FROM_CONFIG_MAP"),
            ("TEST_LITERAL", "test-test-test"),
            ("EXPANSION_TEST", "FROM_CONFIG_MAP"),
            ("TEST_SERVICE_HOST", "1.2.3.3"),
        ])
    );
}

/// Upstream case "secret".
#[test]
fn secret_env_from_and_key_ref() {
    let (pod, container) = pod_with(json!({
        "name": "c",
        "image": "x",
        "envFrom": [{"prefix": "s_", "secretRef": {"name": "test-secret"}}],
        "env": [
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "test-secret", "key": "password"}}},
            {"name": "EXPANSION", "value": "user:$(s_password)"},
        ],
    }));
    let mut sources = Sources::default();
    sources
        .secrets
        .insert("test-secret".to_owned(), data(&[("password", "hunter2")]));
    let env = container_env(&pod, &container, &EnvContext::default(), &sources).expect("env");
    assert_eq!(
        env,
        pairs(&[
            ("s_password", "hunter2"),
            ("PASSWORD", "hunter2"),
            ("EXPANSION", "user:hunter2"),
        ])
    );
}

/// Upstream cases "configmap_missing", "secret_missing" and their key variants.
#[test]
fn missing_sources_are_errors_unless_optional() {
    let cases = [
        (
            json!({"envFrom": [{"configMapRef": {"name": "missing-config-map"}}]}),
            "configmap \"missing-config-map\" not found",
        ),
        (
            json!({"envFrom": [{"secretRef": {"name": "missing-secret"}}]}),
            "secret \"missing-secret\" not found",
        ),
        (
            json!({"env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "missing-config-map", "key": "k"}}}]}),
            "configmap \"missing-config-map\" not found",
        ),
        (
            json!({"env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "absent"}}}]}),
            "couldn't find key absent in ConfigMap downward-api/cm",
        ),
        (
            json!({"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "absent"}}}]}),
            "couldn't find key absent in Secret downward-api/s",
        ),
    ];
    let mut sources = Sources::default();
    sources
        .config_maps
        .insert("cm".to_owned(), data(&[("k", "v")]));
    sources.secrets.insert("s".to_owned(), data(&[("k", "v")]));
    for (fields, message) in cases {
        let mut spec = json!({"name": "c", "image": "x"});
        spec.as_object_mut()
            .expect("object")
            .extend(fields.as_object().expect("object").clone());
        let (pod, container) = pod_with(spec);
        let err = container_env(&pod, &container, &EnvContext::default(), &sources)
            .expect_err("missing source");
        assert_eq!(err.to_string(), message);
    }
}

/// Upstream cases "configmap_missing_optional", "configmapkeyref_missing_optional",
/// "configmapkeyref_missing_key_optional" and the secret equivalents.
#[test]
fn optional_missing_sources_are_skipped() {
    let (pod, container) = pod_with(json!({
        "name": "c",
        "image": "x",
        "envFrom": [
            {"configMapRef": {"name": "missing-config-map", "optional": true}},
            {"secretRef": {"name": "missing-secret", "optional": true}},
        ],
        "env": [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k", "optional": true}}},
            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "absent", "optional": true}}},
            {"name": "C", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k", "optional": true}}},
            {"name": "D", "valueFrom": {"secretKeyRef": {"name": "s", "key": "absent", "optional": true}}},
            {"name": "E", "value": "kept"},
        ],
    }));
    let mut sources = Sources::default();
    sources
        .config_maps
        .insert("cm".to_owned(), data(&[("k", "v")]));
    sources.secrets.insert("s".to_owned(), data(&[("k", "v")]));
    let env = container_env(&pod, &container, &EnvContext::default(), &sources).expect("env");
    assert_eq!(env, pairs(&[("E", "kept")]));
}

#[test]
fn resource_field_refs_use_divisors_and_round_up() {
    let resource = |name: &str, divisor: Option<&str>, container: Option<&str>| {
        let mut r = json!({"resource": name});
        if let Some(d) = divisor {
            r["divisor"] = json!(d);
        }
        if let Some(c) = container {
            r["containerName"] = json!(c);
        }
        json!({"resourceFieldRef": r})
    };
    let (pod, container) = pod_with(json!({
        "name": "c",
        "image": "x",
        "resources": {
            "requests": {"cpu": "250m", "memory": "100Mi"},
            "limits": {"cpu": "1500m", "memory": "512Mi", "hugepages-2Mi": "4Mi"},
        },
        "env": [
            {"name": "CPU_LIMIT", "valueFrom": resource("limits.cpu", None, None)},
            {"name": "CPU_LIMIT_MILLI", "valueFrom": resource("limits.cpu", Some("1m"), None)},
            {"name": "CPU_REQUEST", "valueFrom": resource("requests.cpu", None, None)},
            {"name": "MEMORY_LIMIT", "valueFrom": resource("limits.memory", None, None)},
            {"name": "MEMORY_LIMIT_MI", "valueFrom": resource("limits.memory", Some("1Mi"), None)},
            {"name": "MEMORY_REQUEST_G", "valueFrom": resource("requests.memory", Some("1G"), None)},
            {"name": "STORAGE_LIMIT_GI", "valueFrom": resource("limits.ephemeral-storage", Some("1Gi"), None)},
            {"name": "STORAGE_REQUEST", "valueFrom": resource("requests.ephemeral-storage", None, None)},
            {"name": "HUGEPAGES", "valueFrom": resource("limits.hugepages-2Mi", Some("1Mi"), None)},
            {"name": "NAMED", "valueFrom": resource("limits.cpu", Some("1m"), Some("c"))},
        ],
    }));
    let env = container_env(&pod, &container, &ctx(), &NoEnvSources).expect("env");
    let env: BTreeMap<String, String> = env.into_iter().collect();
    assert_eq!(env["CPU_LIMIT"], "2");
    assert_eq!(env["CPU_LIMIT_MILLI"], "1500");
    assert_eq!(env["CPU_REQUEST"], "1");
    assert_eq!(env["MEMORY_LIMIT"], "536870912");
    assert_eq!(env["MEMORY_LIMIT_MI"], "512");
    assert_eq!(env["MEMORY_REQUEST_G"], "1");
    // No storage limit: the node's allocatable (100Gi); no request: 0.
    assert_eq!(env["STORAGE_LIMIT_GI"], "100");
    assert_eq!(env["STORAGE_REQUEST"], "0");
    assert_eq!(env["HUGEPAGES"], "4");
    assert_eq!(env["NAMED"], "1500");
}

#[test]
fn unset_limits_fall_back_to_node_allocatable() {
    let (pod, container) = pod_with(json!({
        "name": "c",
        "image": "x",
        "env": [
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "CPU_M", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        ],
    }));
    let mut context = ctx();
    context.service_env.clear();
    let env = container_env(&pod, &container, &context, &NoEnvSources).expect("env");
    assert_eq!(
        env,
        pairs(&[("CPU", "4"), ("CPU_M", "4000"), ("MEM", "8192")])
    );
}

#[test]
fn resource_field_ref_to_an_unknown_container_fails_like_the_kubelet() {
    let (pod, container) = pod_with(json!({
        "name": "c",
        "image": "x",
        "env": [{"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "containerName": "other"}}}],
    }));
    let err =
        container_env(&pod, &container, &ctx(), &NoEnvSources).expect_err("unknown container");
    assert_eq!(
        err,
        EnvError::ResourceFieldRef("container other not found".to_owned())
    );
}

#[test]
fn requires_defaulted_enable_service_links() {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "x"}]}
    }))
    .expect("a Pod");
    let container = pod.spec.as_ref().expect("spec").containers[0].clone();
    let err = container_env(&pod, &container, &ctx(), &NoEnvSources).expect_err("not defaulted");
    assert_eq!(
        err.to_string(),
        "nil pod.spec.enableServiceLinks encountered, cannot construct envvars"
    );
}

#[test]
fn service_env_follows_from_services() {
    let services: Vec<k8s_openapi::api::core::v1::Service> =
        serde_json::from_value(serde_json::json!([
            {"metadata": {"name": "my-web", "namespace": "default"},
             "spec": {"clusterIP": "127.20.0.7", "ports": [
                 {"name": "http", "port": 80, "protocol": "TCP"},
                 {"name": "admin-port", "port": 9000}]}},
            {"metadata": {"name": "headless", "namespace": "default"},
             "spec": {"clusterIP": "None", "ports": [{"port": 80}]}},
            {"metadata": {"name": "other", "namespace": "shop"},
             "spec": {"clusterIP": "127.20.0.8", "ports": [{"port": 80}]}}
        ]))
        .unwrap();
    let env = super::service_env(&services, "default", true);
    let expected = [
        ("MY_WEB_SERVICE_HOST", "127.20.0.7"),
        ("MY_WEB_SERVICE_PORT", "80"),
        ("MY_WEB_SERVICE_PORT_HTTP", "80"),
        ("MY_WEB_SERVICE_PORT_ADMIN_PORT", "9000"),
        ("MY_WEB_PORT", "tcp://127.20.0.7:80"),
        ("MY_WEB_PORT_80_TCP", "tcp://127.20.0.7:80"),
        ("MY_WEB_PORT_80_TCP_PROTO", "tcp"),
        ("MY_WEB_PORT_80_TCP_PORT", "80"),
        ("MY_WEB_PORT_80_TCP_ADDR", "127.20.0.7"),
        ("MY_WEB_PORT_9000_TCP", "tcp://127.20.0.7:9000"),
        ("MY_WEB_PORT_9000_TCP_PROTO", "tcp"),
        ("MY_WEB_PORT_9000_TCP_PORT", "9000"),
        ("MY_WEB_PORT_9000_TCP_ADDR", "127.20.0.7"),
    ];
    assert_eq!(env, pairs(&expected));
    assert!(super::service_env(&services, "default", false).is_empty());
}
