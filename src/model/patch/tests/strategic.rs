//! Strategic merge patch: upstream's cases (`strategic_upstream.yaml`) against its test type,
//! and the patches kubectl sends against the kinds podvisor serves.

use serde_json::{Value, json};

use super::super::schema::{
    Field, List, Map, NAME, Node, RETAIN_KEYS, SmpList, SmpMap, SsaList, SsaMap, Table, merge_by,
};
use super::super::{PatchError, strategic, strategic_merge, supports_strategic_merge};
use super::yaml;

/// Upstream's test type `mergeItem` (patch_test.go), as a merge table.
static MERGE_ITEM: Table = Table(&[
    ("mergingList", merge_by("name", NAME)),
    ("mergingList[]", Field::Type(&MERGE_ITEM)),
    ("nonMergingList[]", Field::Type(&MERGE_ITEM)),
    (
        "mergingIntList",
        Field::List(List {
            smp: SmpList::MergeScalars,
            ssa: SsaList::Set,
        }),
    ),
    ("mergeItemPtr", merge_by("name", NAME)),
    ("mergeItemPtr[]", Field::Type(&MERGE_ITEM)),
    (
        "replacingItem",
        Field::Map(Map {
            smp: SmpMap::Replace,
            ssa: SsaMap::Atomic,
        }),
    ),
    ("retainKeysMap", RETAIN_KEYS),
    ("retainKeysMap", Field::Type(&RETAIN_KEYS_MERGE_ITEM)),
    ("retainKeysMergingList", merge_by("name", NAME)),
    ("retainKeysMergingList[]", Field::Type(&MERGE_ITEM)),
    ("retainKeysMergingList[]", RETAIN_KEYS),
]);

/// Upstream's `RetainKeysMergeItem`.
static RETAIN_KEYS_MERGE_ITEM: Table = Table(&[
    (
        "mergingIntList",
        Field::List(List {
            smp: SmpList::MergeScalars,
            ssa: SsaList::Set,
        }),
    ),
    ("mergingList", merge_by("name", NAME)),
    ("mergingList[]", Field::Type(&MERGE_ITEM)),
    ("nonMergingList[]", Field::Type(&MERGE_ITEM)),
]);

fn merge_item(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    strategic::apply(original, patch, &Node::root(&MERGE_ITEM))
}

/// Sorts the merging lists of `value` (by `name`, or by value for `mergingIntList`), as
/// upstream's `sortMergeListsByName` does before comparing some cases.
fn sort_merging_lists(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                sort_merging_lists(field);
                if let Value::Array(items) = field {
                    match name.as_str() {
                        "mergingList" | "mergeItemPtr" | "retainKeysMergingList" => {
                            items.sort_by_key(|item| item["name"].to_string());
                        }
                        "mergingIntList" => items.sort_by_key(|item| item.to_string()),
                        _ => {}
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_merging_lists),
        _ => {}
    }
}

#[test]
fn upstream_cases() {
    let cases = yaml(include_str!("strategic_upstream.yaml"));
    let cases = cases.as_array().expect("a list of cases");
    assert!(cases.len() > 80, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let description = case["description"].as_str().expect("a description");
        let sorted = case["sorted"].as_bool().unwrap_or(false);
        let check = |name: &str, got: Result<Value, PatchError>, expected: &Value| {
            let mut got = match got {
                Ok(got) => got,
                Err(e) => return Some(format!("{description} ({name}): {e}")),
            };
            let mut expected = expected.clone();
            if sorted {
                sort_merging_lists(&mut got);
                sort_merging_lists(&mut expected);
            }
            (got != expected).then(|| {
                format!("{description} ({name}):\n  expected {expected}\n  got      {got}")
            })
        };
        let original = case.get("original").cloned().unwrap_or(json!({}));
        if let Some(error) = case["error"].as_str() {
            match merge_item(&original, &case["twoWay"]) {
                Err(e) if e.to_string().contains(error) => {}
                other => failures.push(format!("{description}: expected {error:?}, got {other:?}")),
            }
            continue;
        }
        let expected = case.get("twoWayResult").unwrap_or(&case["modified"]);
        failures.extend(check(
            "two-way",
            merge_item(&original, &case["twoWay"]),
            expected,
        ));
        if let Some(current) = case.get("current") {
            let got = merge_item(current, &case["threeWay"]);
            failures.extend(check("three-way", got, &case["result"]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn deployment() -> Value {
    yaml(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: default
  labels: {app: api}
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"old":true}'
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: app
        image: myapp:v1
        env:
        - {name: MODE, value: prod}
        - {name: LOG, value: info}
        ports:
        - {containerPort: 8080, protocol: TCP}
        - {containerPort: 9090, protocol: TCP, name: metrics}
        volumeMounts:
        - {name: data, mountPath: /data}
      - name: sidecar
        image: proxy:1
      volumes:
      - name: data
        emptyDir: {}
status:
  conditions:
  - {type: Available, status: "True"}
  - {type: Progressing, status: "True"}
"#,
    )
}

fn patch_deployment(patch: &str) -> Value {
    strategic_merge("apps/v1", "Deployment", &deployment(), &yaml(patch))
        .unwrap_or_else(|e| panic!("{patch}: {e}"))
}

#[test]
fn kubectl_set_image() {
    // `kubectl set image deploy/api app=myapp:v2` (spec §15).
    let patched = patch_deployment(
        r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"app"},{"name":"sidecar"}],"containers":[{"image":"myapp:v2","name":"app"}]}}}}"#,
    );
    let containers = &patched["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], "myapp:v2");
    assert_eq!(
        containers[0]["env"],
        deployment()["spec"]["template"]["spec"]["containers"][0]["env"]
    );
    assert_eq!(
        containers[1],
        json!({"name": "sidecar", "image": "proxy:1"})
    );

    // The spec's literal patch, with only one container in $setElementOrder: the other
    // container stays, after it.
    let patched = patch_deployment(
        r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"app"}],"containers":[{"image":"myapp:v2","name":"app"}]}}}}"#,
    );
    let names: Vec<&Value> = patched["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(names, [&json!("app"), &json!("sidecar")]);
}

#[test]
fn kubectl_client_side_apply_three_way_patch() {
    // The update path of `kubectl apply` (spec §7.1): the new last-applied annotation, a new
    // label, and `env: null` because the new manifest has no env.
    let patched = patch_deployment(
        r#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"new\":true}\n"},"labels":{"team":"a"}},
            "spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"app"},{"name":"sidecar"}],"containers":[{"env":null,"image":"myapp:v2","name":"app"}]}}}}"#,
    );
    assert_eq!(
        patched["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "{\"new\":true}\n"
    );
    assert_eq!(
        patched["metadata"]["labels"],
        json!({"app": "api", "team": "a"})
    );
    let app = &patched["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(app["image"], "myapp:v2");
    assert!(app.get("env").is_none(), "env was deleted: {app}");
    assert_eq!(
        app["ports"],
        deployment()["spec"]["template"]["spec"]["containers"][0]["ports"]
    );
    assert_eq!(patched["spec"]["replicas"], 2);
}

#[test]
fn kubectl_rollout_restart() {
    let patched = patch_deployment(
        r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-27T23:40:32Z"}}}}}"#,
    );
    assert_eq!(
        patched["spec"]["template"]["metadata"],
        json!({"labels": {"app": "api"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-27T23:40:32Z"}})
    );
    let mut expected = deployment();
    expected["spec"]["template"]["metadata"] = patched["spec"]["template"]["metadata"].clone();
    assert_eq!(patched, expected);
}

#[test]
fn lists_merge_by_their_keys() {
    let patched = patch_deployment(
        r#"
spec:
  template:
    spec:
      containers:
      - name: app
        env:
        - {name: LOG, value: debug}
        - {name: NEW, value: "1"}
        ports:
        - {containerPort: 9090, name: prom}
        volumeMounts:
        - {mountPath: /cache, name: cache}
      volumes:
      - name: cache
        emptyDir: {}
  selector:
    matchLabels: {tier: x}
status:
  conditions:
  - {type: Progressing, status: "False"}
"#,
    );
    let app = &patched["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        app["env"],
        json!([{"name": "MODE", "value": "prod"}, {"name": "LOG", "value": "debug"}, {"name": "NEW", "value": "1"}])
    );
    assert_eq!(
        app["ports"],
        json!([
            {"containerPort": 8080, "protocol": "TCP"},
            {"containerPort": 9090, "protocol": "TCP", "name": "prom"}
        ])
    );
    // Without $setElementOrder, upstream puts items new to the list before the server's (which
    // is why kubectl always sends $setElementOrder).
    assert_eq!(
        app["volumeMounts"],
        json!([{"name": "cache", "mountPath": "/cache"}, {"name": "data", "mountPath": "/data"}])
    );
    assert_eq!(
        patched["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "cache", "emptyDir": {}}, {"name": "data", "emptyDir": {}}])
    );
    // A label selector is an ordinary map to strategic merge patch.
    assert_eq!(
        patched["spec"]["selector"],
        json!({"matchLabels": {"app": "api", "tier": "x"}})
    );
    assert_eq!(
        patched["status"]["conditions"],
        json!([{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "False"}])
    );
}

#[test]
fn directives_on_a_deployment() {
    // Delete a container and an env var by key; replace the volumes.
    let patched = patch_deployment(
        r#"
spec:
  template:
    spec:
      containers:
      - {name: sidecar, $patch: delete}
      - name: app
        env:
        - {name: MODE, $patch: delete}
      volumes:
      - {name: other, configMap: {name: cm}}
      - $patch: replace
"#,
    );
    let spec = &patched["spec"]["template"]["spec"];
    assert_eq!(spec["containers"].as_array().unwrap().len(), 1);
    assert_eq!(
        spec["containers"][0]["env"],
        json!([{"name": "LOG", "value": "info"}])
    );
    assert_eq!(
        spec["volumes"],
        json!([{"name": "other", "configMap": {"name": "cm"}}])
    );

    // `kubectl apply` switching to Recreate sends $retainKeys for the strategy.
    let patched =
        patch_deployment(r#"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}"#);
    assert_eq!(patched["spec"]["strategy"], json!({"type": "Recreate"}));

    // A volume changing its source clears the old one with $retainKeys.
    let patched = patch_deployment(
        r#"{"spec":{"template":{"spec":{"$setElementOrder/volumes":[{"name":"data"}],
            "volumes":[{"$retainKeys":["configMap","name"],"configMap":{"name":"cm"},"name":"data"}]}}}}"#,
    );
    assert_eq!(
        patched["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "configMap": {"name": "cm"}}])
    );

    // $patch: replace on a map, $patch: merge as an explicit default.
    let patched = patch_deployment(r#"{"metadata":{"labels":{"$patch":"replace","x":"y"}}}"#);
    assert_eq!(patched["metadata"]["labels"], json!({"x": "y"}));
    let patched = patch_deployment(r#"{"metadata":{"labels":{"$patch":"merge","x":"y"}}}"#);
    assert_eq!(
        patched["metadata"]["labels"],
        json!({"app": "api", "x": "y"})
    );
    let patched = patch_deployment(
        r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"merge","name":"sidecar","image":"proxy:2"}]}}}}"#,
    );
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"][1]["image"],
        "proxy:2"
    );

    // $patch: delete of a whole map leaves it empty, as upstream does.
    let patched = patch_deployment(r#"{"spec":{"strategy":{"$patch":"delete"}}}"#);
    assert_eq!(patched["spec"]["strategy"], json!({}));
}

#[test]
fn object_meta_everywhere() {
    let config_map = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": "cm",
            "finalizers": ["a", "b"],
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "uid": "1"},
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "y", "uid": "2"}
            ]
        },
        "data": {"k": "v", "old": "1"}
    });
    let patched = strategic_merge(
        "v1",
        "ConfigMap",
        &config_map,
        &yaml(
            r#"
metadata:
  finalizers: [c, a]
  $deleteFromPrimitiveList/finalizers: [b]
  ownerReferences:
  - {uid: "2", controller: true}
  - {uid: "3", apiVersion: v1, kind: Service, name: z}
data:
  old: null
  new: "2"
"#,
        ),
    )
    .unwrap();
    assert_eq!(patched["metadata"]["finalizers"], json!(["c", "a"]));
    assert_eq!(
        patched["metadata"]["ownerReferences"],
        json!([
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x", "uid": "1"},
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "y", "uid": "2", "controller": true},
            {"uid": "3", "apiVersion": "v1", "kind": "Service", "name": "z"}
        ])
    );
    assert_eq!(patched["data"], json!({"k": "v", "new": "2"}));
}

#[test]
fn service_ports_merge_by_port_and_pod_lists_by_their_keys() {
    let service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"selector": {"app": "a"}, "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
        ]}
    });
    let patched = strategic_merge(
        "v1",
        "Service",
        &service,
        &json!({"spec": {"ports": [{"port": 443, "targetPort": 9443}]}}),
    )
    .unwrap();
    assert_eq!(patched["spec"]["ports"][1]["targetPort"], 9443);
    assert_eq!(patched["spec"]["ports"][0], service["spec"]["ports"][0]);

    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "a", "image": "x"}],
            "initContainers": [{"name": "i", "image": "x"}],
            "imagePullSecrets": [{"name": "s1"}],
            "tolerations": [{"key": "k1"}],
            "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a"]}]
        },
        "status": {"conditions": [{"type": "Ready", "status": "False"}], "podIPs": [{"ip": "127.10.0.2"}]}
    });
    let patched = strategic_merge(
        "v1",
        "Pod",
        &pod,
        &json!({
            "spec": {
                "initContainers": [{"name": "i", "image": "y"}],
                "imagePullSecrets": [{"name": "s2"}],
                "tolerations": [{"key": "k2"}],
                "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["b"]}]
            },
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "podIPs": [{"ip": "::1"}]}
        }),
    )
    .unwrap();
    assert_eq!(
        patched["spec"]["initContainers"],
        json!([{"name": "i", "image": "y"}])
    );
    // New items first, as upstream orders them without $setElementOrder.
    assert_eq!(
        patched["spec"]["imagePullSecrets"],
        json!([{"name": "s2"}, {"name": "s1"}])
    );
    // No merge key: the list is replaced.
    assert_eq!(patched["spec"]["tolerations"], json!([{"key": "k2"}]));
    // hostnames is an atomic list inside a merged item.
    assert_eq!(
        patched["spec"]["hostAliases"],
        json!([{"ip": "10.0.0.1", "hostnames": ["b"]}])
    );
    assert_eq!(
        patched["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}])
    );
    assert_eq!(
        patched["status"]["podIPs"],
        json!([{"ip": "::1"}, {"ip": "127.10.0.2"}])
    );
}

#[test]
fn directives_never_reach_the_object() {
    // A field the original lacks: the patch value is applied, not copied.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}});
    let patched = strategic_merge(
        "v1",
        "Pod",
        &pod,
        &json!({"spec": {
            "containers": [{"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}, {"name": "F", "$patch": "delete"}]}],
            "$setElementOrder/volumes": [{"name": "v"}],
            "volumes": [{"name": "v", "emptyDir": {}}]
        }, "metadata": {"labels": {"a": "b", "c": null}, "annotations": {"$patch": "delete"}}}),
    )
    .unwrap();
    assert_eq!(
        patched,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
               "spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}]}],
                        "volumes": [{"name": "v", "emptyDir": {}}]}})
    );
}

#[test]
fn errors() {
    let deployment = deployment();
    let patch = |p: Value| strategic_merge("apps/v1", "Deployment", &deployment, &p);
    assert_eq!(
        patch(json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})),
        Err(PatchError::Unmergeable(
            "map: map[image:x] does not contain declared merge key: name".to_owned()
        ))
    );
    assert_eq!(
        patch(json!({"spec": {"strategy": {"$retainKeys": "type"}}})),
        Err(PatchError::BadRequest(
            "invalid patch format of retainKeys".to_owned()
        ))
    );
    assert_eq!(
        patch(json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}})),
        Err(PatchError::BadRequest(
            "invalid patch format of retainKeys".to_owned()
        ))
    );
    assert_eq!(
        patch(json!({"metadata": {"$patch": "frobnicate"}})),
        Err(PatchError::Unmergeable(
            "unknown patch type: frobnicate in map: map[$patch:frobnicate]".to_owned()
        ))
    );
    assert_eq!(
        patch(json!({"spec": {"template": {"spec": {"containers": [[1]]}}}})),
        Err(PatchError::Invalid(
            "lists of lists are not supported".to_owned()
        ))
    );
    assert!(matches!(
        patch(json!({"metadata": {"finalizers": ["a", {"b": 1}]}})),
        Err(PatchError::Unmergeable(m)) if m.starts_with("list element types are not identical")
    ));
    assert_eq!(
        patch(json!({"metadata": {"$setElementOrderfinalizers": []}})),
        Err(PatchError::BadRequest(
            "invalid patch format of setElementOrder list".to_owned()
        ))
    );
    assert_eq!(
        patch(
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a", "finalizers": ["a"]}})
        ),
        Err(PatchError::BadRequest(
            "invalid patch format of primitive list".to_owned()
        ))
    );
    assert_eq!(
        patch(json!([1])),
        Err(PatchError::BadRequest("invalid JSON document".to_owned()))
    );

    assert!(!supports_strategic_merge("example.com/v1", "Widget"));
    assert!(supports_strategic_merge("apps/v1", "Deployment"));
    assert_eq!(
        strategic_merge("example.com/v1", "Widget", &json!({}), &json!({})),
        Err(PatchError::Unsupported)
    );
}

#[test]
fn every_served_kind_has_a_table() {
    for (api_version, kind) in [
        ("v1", "Pod"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Namespace"),
        ("v1", "Event"),
        ("v1", "Service"),
        ("v1", "Endpoints"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
        ("coordination.k8s.io/v1", "Lease"),
    ] {
        assert!(
            supports_strategic_merge(api_version, kind),
            "{api_version} {kind}"
        );
        let patched = strategic_merge(
            api_version,
            kind,
            &json!({"metadata": {"name": "x", "labels": {"a": "1"}}}),
            &json!({"metadata": {"labels": {"b": "2"}}}),
        )
        .unwrap();
        assert_eq!(patched["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    }
}

#[test]
fn atomic_map_marker_is_ssa_only() {
    // nodeSelector is +mapType=atomic for SSA but merges key by key in SMP.
    let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeSelector": {"a": "1"}}});
    let patched = strategic_merge(
        "v1",
        "Pod",
        &pod,
        &json!({"spec": {"nodeSelector": {"b": "2"}}}),
    )
    .unwrap();
    assert_eq!(patched["spec"]["nodeSelector"], json!({"a": "1", "b": "2"}));
}

#[test]
fn kubectl_apply_removing_a_container_and_an_env_var() {
    // What `kubectl apply` computes when the manifest drops the sidecar and the LOG variable.
    let patched = patch_deployment(
        r#"{"spec":{"template":{"spec":{
            "$setElementOrder/containers":[{"name":"app"}],
            "containers":[{"$setElementOrder/env":[{"name":"MODE"}],"env":[{"$patch":"delete","name":"LOG"}],"name":"app"},
                          {"$patch":"delete","name":"sidecar"}]}}}}"#,
    );
    let containers = patched["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(
        containers[0]["env"],
        json!([{"name": "MODE", "value": "prod"}])
    );

    // Reordering only.
    let patched = patch_deployment(
        r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"sidecar"},{"name":"app"}]}}}}"#,
    );
    let names: Vec<&Value> = patched["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(names, [&json!("sidecar"), &json!("app")]);
}
