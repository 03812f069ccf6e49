use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::*;

/// The `now` of every golden case.
const NOW: &str = "2026-11-28T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// `NOW` minus `secs` seconds, in RFC 3339.
fn ago(secs: i64) -> String {
    now()
        .checked_sub(SignedDuration::from_secs(secs))
        .unwrap()
        .to_string()
}

/// The cells of the one row of `kind`'s table of `object`.
fn cells(kind: &str, object: Value) -> Vec<Value> {
    let t = table(kind, &[object], "1", IncludeObject::None, now());
    t["rows"][0]["cells"].as_array().unwrap().clone()
}

fn strs(cells: &[Value]) -> Vec<String> {
    cells
        .iter()
        .map(|c| match c {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

// apimachinery util/duration TestHumanDuration and TestHumanDurationBoundaries.
#[test]
fn human_duration_matches_upstream() {
    let ms = SignedDuration::from_millis;
    let s = SignedDuration::from_secs;
    let m = |n: i64| SignedDuration::from_mins(n);
    let h = |n: i64| SignedDuration::from_hours(n);
    let cases = [
        (s(1), "1s"),
        (s(70), "70s"),
        (s(190), "3m10s"),
        (m(70), "70m"),
        (h(47), "47h"),
        (h(49), "2d1h"),
        (h(8 * 24 + 2), "8d"),
        (h(367 * 24), "367d"),
        (h(365 * 2 * 24 + 25), "2y1d"),
        (h(365 * 8 * 24 + 2), "8y"),
        // Boundaries.
        (s(-2), "<invalid>"),
        (s(-2) + SignedDuration::from_nanos(1), "0s"),
        (SignedDuration::ZERO, "0s"),
        (s(1) - ms(1), "0s"),
        (m(2) - ms(1), "119s"),
        (m(2), "2m"),
        (m(2) + s(1), "2m1s"),
        (m(10) - ms(1), "9m59s"),
        (m(10), "10m"),
        (m(10) + s(1), "10m"),
        (h(3) - ms(1), "179m"),
        (h(3), "3h"),
        (h(3) + m(1), "3h1m"),
        (h(8) - ms(1), "7h59m"),
        (h(8), "8h"),
        (h(8) + m(59), "8h"),
        (h(48) - ms(1), "47h"),
        (h(48), "2d"),
        (h(49), "2d1h"),
        (h(8 * 24) - ms(1), "7d23h"),
        (h(8 * 24), "8d"),
        (h(8 * 24 + 23), "8d"),
        (h(2 * 365 * 24) - ms(1), "729d"),
        (h(2 * 365 * 24), "2y"),
        (h(2 * 365 * 24 + 23), "2y"),
        (h(2 * 365 * 24 + 23) + m(59), "2y"),
        (h(2 * 365 * 24 + 24) - ms(1), "2y"),
        (h(2 * 365 * 24 + 24), "2y1d"),
        (h(3 * 365 * 24), "3y"),
        (h(4 * 365 * 24), "4y"),
        (h(5 * 365 * 24), "5y"),
        (h(6 * 365 * 24), "6y"),
        (h(7 * 365 * 24), "7y"),
        (h(8 * 365 * 24) - ms(1), "7y364d"),
        (h(8 * 365 * 24), "8y"),
        (h(8 * 365 * 24 + 364 * 24), "8y"),
        (h(9 * 365 * 24), "9y"),
        // The spec's examples.
        (s(5), "5s"),
        (s(123), "2m3s"),
        (h(3) + m(4), "3h4m"),
    ];
    for (d, want) in cases {
        assert_eq!(human_duration(d), want, "{d:?}");
    }
}

#[test]
fn pod_table_json_shape() {
    let pod = json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "104",
            "creationTimestamp": ago(300), "labels": {"app": "web"}
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.244.0.11",
            "podIPs": [{"ip": "10.244.0.11"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{
                "name": "app", "ready": true, "restartCount": 0, "started": true,
                "state": {"running": {"startedAt": ago(290)}}
            }]
        }
    });
    let got = table(
        "Pod",
        std::slice::from_ref(&pod),
        "105",
        IncludeObject::Metadata,
        now(),
    );
    let want = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": "105"},
        "columnDefinitions": column_definitions("Pod"),
        "rows": [{
            "cells": ["web", "1/1", "Running", "0", "5m", "10.244.0.11", "node-1", "<none>", "<none>"],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": pod["metadata"].clone()
            }
        }]
    });
    assert_eq!(got, want);

    let columns = column_definitions("Pod");
    let summary: Vec<(String, String, String, i64)> = columns
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert!(!c["description"].as_str().unwrap().is_empty());
            (
                c["name"].as_str().unwrap().to_owned(),
                c["type"].as_str().unwrap().to_owned(),
                c["format"].as_str().unwrap().to_owned(),
                c["priority"].as_i64().unwrap(),
            )
        })
        .collect();
    let s = |n: &str, t: &str, f: &str, p: i64| (n.to_owned(), t.to_owned(), f.to_owned(), p);
    assert_eq!(
        summary,
        vec![
            s("Name", "string", "name", 0),
            s("Ready", "string", "", 0),
            s("Status", "string", "", 0),
            s("Restarts", "string", "", 0),
            s("Age", "string", "", 0),
            s("IP", "string", "", 1),
            s("Node", "string", "", 1),
            s("Nominated Node", "string", "", 1),
            s("Readiness Gates", "string", "", 1),
        ]
    );
    assert!(
        columns[0]["description"]
            .as_str()
            .unwrap()
            .starts_with("Name must be unique within a namespace.")
    );
}

#[test]
fn include_object_modes() {
    let pod = json!({"metadata": {"name": "web", "creationTimestamp": ago(1)}});
    let none = table(
        "Pod",
        std::slice::from_ref(&pod),
        "",
        IncludeObject::None,
        now(),
    );
    assert_eq!(none["rows"][0]["object"], Value::Null);
    assert_eq!(none["metadata"], json!({}));
    let full = table(
        "Pod",
        std::slice::from_ref(&pod),
        "7",
        IncludeObject::Object,
        now(),
    );
    assert_eq!(
        full["rows"][0]["object"],
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": pod["metadata"].clone()})
    );
    let deploy = json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "d"}});
    let full = table(
        "Deployment",
        std::slice::from_ref(&deploy),
        "7",
        IncludeObject::Object,
        now(),
    );
    assert_eq!(full["rows"][0]["object"], deploy);

    assert_eq!(IncludeObject::parse(""), Ok(IncludeObject::Metadata));
    assert_eq!(
        IncludeObject::parse("Metadata"),
        Ok(IncludeObject::Metadata)
    );
    assert_eq!(IncludeObject::parse("Object"), Ok(IncludeObject::Object));
    assert_eq!(IncludeObject::parse("None"), Ok(IncludeObject::None));
    assert_eq!(
        IncludeObject::parse("All"),
        Err("unrecognized includeObject value: \"All\"".to_owned())
    );
}

#[test]
fn empty_lists() {
    let t = table::<Value>("Pod", &[], "9", IncludeObject::Metadata, now());
    assert_eq!(t["rows"], json!([]));
    assert_eq!(t["metadata"]["resourceVersion"], "9");
    // Upstream's default convertor leaves a nil slice.
    let t = table::<Value>("Widget", &[], "9", IncludeObject::Metadata, now());
    assert_eq!(t["rows"], Value::Null);
}

#[test]
fn unknown_kind_gets_the_default_table() {
    let widget = json!({"metadata": {"name": "w", "creationTimestamp": "2026-11-27T23:44:57Z"}});
    let t = table("Widget", &[widget], "3", IncludeObject::Metadata, now());
    let names: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Created At"]);
    assert_eq!(t["columnDefinitions"][1]["type"], "date");
    assert_eq!(t["columnDefinitions"][0]["format"], "name");
    assert_eq!(t["rows"][0]["cells"], json!(["w", "2026-11-27T23:44:57Z"]));
    let t = table(
        "Widget",
        &[json!({"metadata": {"name": "x", "creationTimestamp": "2026-11-27T23:44:57.123456Z"}})],
        "3",
        IncludeObject::None,
        now(),
    );
    assert_eq!(t["rows"][0]["cells"][1], "2026-11-27T23:44:57Z");
    let t = table(
        "Widget",
        &[json!({"metadata": {"name": "x"}})],
        "3",
        IncludeObject::None,
        now(),
    );
    assert_eq!(t["rows"][0]["cells"][1], "0001-01-01T00:00:00Z");
}

/// A pod with one container `app` and the given status, created 10 minutes before `NOW`.
fn pod(status: Value) -> Value {
    json!({
        "metadata": {"name": "p", "namespace": "default", "creationTimestamp": ago(600)},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
        "status": status
    })
}

/// STATUS, READY and RESTARTS of a pod.
fn pod_summary(pod: Value) -> (String, String, String) {
    let c = strs(&cells("Pod", pod));
    (c[2].clone(), c[1].clone(), c[3].clone())
}

fn summary(status: &str, ready: &str, restarts: &str) -> (String, String, String) {
    (status.to_owned(), ready.to_owned(), restarts.to_owned())
}

#[test]
fn pod_status_main_containers() {
    let cases = [
        (
            "running and ready",
            pod(json!({
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                                       "state": {"running": {"startedAt": ago(500)}}}]
            })),
            summary("Running", "1/1", "0"),
        ),
        (
            "running, not ready",
            pod(json!({
                "phase": "Running",
                "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                                       "state": {"running": {"startedAt": ago(500)}}}]
            })),
            summary("Running", "0/1", "0"),
        ),
        (
            "CrashLoopBackOff with restarts and their age",
            pod(json!({
                "phase": "Running",
                "containerStatuses": [{
                    "name": "app", "ready": false, "restartCount": 5,
                    "state": {"waiting": {"reason": "CrashLoopBackOff",
                                          "message": "back-off 2m40s restarting failed container"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                 "finishedAt": ago(300)}}
                }]
            })),
            summary("CrashLoopBackOff", "0/1", "5 (5m ago)"),
        ),
        (
            "ContainerCreating",
            pod(json!({
                "phase": "Pending",
                "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                                       "state": {"waiting": {"reason": "ContainerCreating"}}}]
            })),
            summary("ContainerCreating", "0/1", "0"),
        ),
        (
            "Pending without statuses",
            pod(json!({"phase": "Pending"})),
            summary("Pending", "0/1", "0"),
        ),
        (
            "Completed",
            pod(json!({
                "phase": "Succeeded",
                "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                                       "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                                "finishedAt": ago(60)}}}]
            })),
            summary("Completed", "0/1", "0"),
        ),
        (
            "OOMKilled",
            pod(json!({
                "phase": "Failed",
                "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                                       "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]
            })),
            summary("OOMKilled", "0/1", "0"),
        ),
        (
            "terminated by a signal, no reason",
            pod(json!({
                "phase": "Failed",
                "containerStatuses": [{"name": "app", "restartCount": 0,
                                       "state": {"terminated": {"exitCode": 137, "signal": 9}}}]
            })),
            summary("Signal:9", "0/1", "0"),
        ),
        (
            "terminated with an exit code, no reason",
            pod(json!({
                "phase": "Failed",
                "containerStatuses": [{"name": "app", "restartCount": 0,
                                       "state": {"terminated": {"exitCode": 2}}}]
            })),
            summary("ExitCode:2", "0/1", "0"),
        ),
        (
            "Terminating while running",
            {
                let mut p = pod(json!({
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"name": "app", "ready": true, "restartCount": 1,
                                           "lastState": {"terminated": {"exitCode": 143,
                                                                        "finishedAt": ago(7200)}},
                                           "state": {"running": {"startedAt": ago(7190)}}}]
                }));
                p["metadata"]["deletionTimestamp"] = json!(ago(-30));
                p
            },
            summary("Terminating", "1/1", "1 (120m ago)"),
        ),
        (
            "deleted but already Succeeded is not Terminating",
            {
                let mut p = pod(json!({
                    "phase": "Succeeded",
                    "containerStatuses": [{"name": "app", "restartCount": 0,
                                           "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]
                }));
                p["metadata"]["deletionTimestamp"] = json!(ago(0));
                p
            },
            summary("Completed", "0/1", "0"),
        ),
        (
            "deleted on a lost node",
            {
                let mut p = pod(json!({"phase": "Running", "reason": "NodeLost"}));
                p["metadata"]["deletionTimestamp"] = json!(ago(0));
                p
            },
            summary("Unknown", "0/1", "0"),
        ),
        (
            "pod-level reason",
            pod(json!({"phase": "Failed", "reason": "Evicted"})),
            summary("Evicted", "0/1", "0"),
        ),
        (
            "scheduling gated",
            pod(json!({"phase": "Pending",
                       "conditions": [{"type": "PodScheduled", "status": "False",
                                       "reason": "SchedulingGated"}]})),
            summary("SchedulingGated", "0/1", "0"),
        ),
    ];
    for (name, pod, want) in cases {
        assert_eq!(pod_summary(pod), want, "{name}");
    }
}

/// A pod with two containers, `a` Completed and `b` running and ready.
fn completed_and_running(ready_condition: &str) -> Value {
    json!({
        "metadata": {"name": "p", "creationTimestamp": ago(60)},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": ready_condition}],
            "containerStatuses": [
                {"name": "a", "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "b", "ready": true, "restartCount": 0,
                 "state": {"running": {"startedAt": ago(50)}}}
            ]
        }
    })
}

#[test]
fn pod_status_completed_container_beside_a_running_one() {
    assert_eq!(
        pod_summary(completed_and_running("True")),
        summary("Running", "1/2", "0")
    );
    assert_eq!(
        pod_summary(completed_and_running("False")),
        summary("NotReady", "1/2", "0")
    );
}

/// A pod with init containers `init-a`, `init-b` and a main container `app`.
fn init_pod(init_statuses: Value, main_statuses: Value, conditions: Value) -> Value {
    json!({
        "metadata": {"name": "p", "creationTimestamp": ago(120)},
        "spec": {
            "initContainers": [{"name": "init-a"}, {"name": "init-b"}],
            "containers": [{"name": "app"}]
        },
        "status": {
            "phase": "Pending",
            "conditions": conditions,
            "initContainerStatuses": init_statuses,
            "containerStatuses": main_statuses
        }
    })
}

#[test]
fn pod_status_init_containers() {
    let done = json!({"name": "init-a", "restartCount": 0,
                      "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let app_waiting = json!([{"name": "app", "restartCount": 0,
                              "state": {"waiting": {"reason": "PodInitializing"}}}]);
    let cases = [
        (
            "first init container running",
            init_pod(
                json!([{"name": "init-a", "restartCount": 0, "state": {"running": {}}},
                       {"name": "init-b", "restartCount": 0,
                        "state": {"waiting": {"reason": "PodInitializing"}}}]),
                app_waiting.clone(),
                json!([]),
            ),
            summary("Init:0/2", "0/1", "0"),
        ),
        (
            "second init container running",
            init_pod(
                json!([done.clone(),
                       {"name": "init-b", "restartCount": 0, "state": {"running": {}}}]),
                app_waiting.clone(),
                json!([]),
            ),
            summary("Init:1/2", "0/1", "0"),
        ),
        (
            "init container failed",
            init_pod(
                json!([{"name": "init-a", "restartCount": 0,
                        "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]),
                app_waiting.clone(),
                json!([]),
            ),
            summary("Init:Error", "0/1", "0"),
        ),
        (
            "init container in CrashLoopBackOff, restarts counted",
            init_pod(
                json!([{"name": "init-a", "restartCount": 3,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                     "finishedAt": ago(30)}}}]),
                app_waiting.clone(),
                json!([]),
            ),
            summary("Init:CrashLoopBackOff", "0/1", "3 (30s ago)"),
        ),
        (
            "init container killed by a signal",
            init_pod(
                json!([{"name": "init-a", "restartCount": 0,
                        "state": {"terminated": {"exitCode": 137, "signal": 9}}}]),
                app_waiting.clone(),
                json!([]),
            ),
            summary("Init:Signal:9", "0/1", "0"),
        ),
        (
            "init container exit code without reason",
            init_pod(
                json!([{"name": "init-a", "restartCount": 0,
                        "state": {"terminated": {"exitCode": 3}}}]),
                app_waiting.clone(),
                json!([]),
            ),
            summary("Init:ExitCode:3", "0/1", "0"),
        ),
        (
            "initialized, main container starting",
            init_pod(
                json!([done.clone(),
                       {"name": "init-b", "restartCount": 0,
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]),
                app_waiting.clone(),
                json!([{"type": "Initialized", "status": "True"}]),
            ),
            summary("PodInitializing", "0/1", "0"),
        ),
    ];
    for (name, pod, want) in cases {
        assert_eq!(pod_summary(pod), want, "{name}");
    }
}

/// A pod with a native sidecar `proxy` (an init container with `restartPolicy: Always`), an
/// init container `setup` after it, and a main container `app`.
fn sidecar_pod(init_statuses: Value, main_statuses: Value, initialized: bool) -> Value {
    let status = if initialized { "True" } else { "False" };
    json!({
        "metadata": {"name": "p", "creationTimestamp": ago(3600)},
        "spec": {
            "initContainers": [{"name": "proxy", "restartPolicy": "Always"}, {"name": "setup"}],
            "containers": [{"name": "app"}]
        },
        "status": {
            "phase": if initialized { "Running" } else { "Pending" },
            "conditions": [{"type": "Initialized", "status": status},
                           {"type": "Ready", "status": status}],
            "initContainerStatuses": init_statuses,
            "containerStatuses": main_statuses
        }
    })
}

#[test]
fn pod_status_native_sidecars() {
    let proxy_started = json!({
        "name": "proxy", "ready": true, "started": true, "restartCount": 2,
        "state": {"running": {"startedAt": ago(600)}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(600)}}
    });
    let setup_done = json!({"name": "setup", "restartCount": 0,
                            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let app_running = json!({
        "name": "app", "ready": true, "restartCount": 1,
        "state": {"running": {"startedAt": ago(120)}},
        "lastState": {"terminated": {"exitCode": 2, "finishedAt": ago(125)}}
    });
    let cases = [
        (
            "sidecar not started yet",
            sidecar_pod(
                json!([{"name": "proxy", "started": false, "restartCount": 0,
                        "state": {"running": {}}},
                       {"name": "setup", "restartCount": 0,
                        "state": {"waiting": {"reason": "PodInitializing"}}}]),
                json!([]),
                false,
            ),
            summary("Init:0/2", "0/2", "0"),
        ),
        (
            "sidecar started, next init container running",
            sidecar_pod(
                json!([proxy_started.clone(),
                       {"name": "setup", "restartCount": 0, "state": {"running": {}}}]),
                json!([]),
                false,
            ),
            summary("Init:1/2", "1/2", "2 (10m ago)"),
        ),
        (
            "initialized: sidecar restarts count with the main containers'",
            sidecar_pod(
                json!([proxy_started.clone(), setup_done.clone()]),
                json!([app_running.clone()]),
                true,
            ),
            summary("Running", "2/2", "3 (2m5s ago)"),
        ),
    ];
    for (name, pod, want) in cases {
        assert_eq!(pod_summary(pod), want, "{name}");
    }
}

#[test]
fn pod_wide_columns() {
    let mut p = pod(json!({
        "phase": "Running",
        "podIP": "127.10.0.4",
        "nominatedNodeName": "node-2",
        "conditions": [{"type": "example.com/gate-a", "status": "True"},
                       {"type": "example.com/gate-b", "status": "False"}]
    }));
    p["spec"]["nodeName"] = json!("node-1");
    p["spec"]["readinessGates"] = json!([{"conditionType": "example.com/gate-a"},
                                         {"conditionType": "example.com/gate-b"}]);
    let c = strs(&cells("Pod", p));
    assert_eq!(c[4..], ["10m", "127.10.0.4", "node-1", "node-2", "1/2"]);
    let c = strs(&cells("Pod", json!({"metadata": {"name": "bare"}})));
    assert_eq!(
        c,
        [
            "bare",
            "0/0",
            "",
            "0",
            "<unknown>",
            "<none>",
            "<none>",
            "<none>",
            "<none>"
        ]
    );
}

#[test]
fn pod_row_conditions_for_finished_pods() {
    let succeeded = pod(json!({"phase": "Succeeded"}));
    let t = table("Pod", &[succeeded], "1", IncludeObject::None, now());
    assert_eq!(
        t["rows"][0]["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                "message": "The pod has completed successfully."}])
    );
    let failed = pod(json!({"phase": "Failed"}));
    let t = table("Pod", &[failed], "1", IncludeObject::None, now());
    assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Failed");
    assert_eq!(t["rows"][0]["conditions"][0]["message"], "The pod failed.");
    let running = pod(json!({"phase": "Running"}));
    let t = table("Pod", &[running], "1", IncludeObject::None, now());
    assert!(t["rows"][0].get("conditions").is_none());
}

#[test]
fn namespace_config_map_secret_lease() {
    assert_eq!(
        cells(
            "Namespace",
            json!({"metadata": {"name": "default", "creationTimestamp": ago(3 * 86400)},
                   "status": {"phase": "Active"}})
        ),
        vec![json!("default"), json!("Active"), json!("3d")]
    );
    assert_eq!(
        cells(
            "ConfigMap",
            json!({"metadata": {"name": "cfg", "creationTimestamp": ago(45)},
                   "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}})
        ),
        vec![json!("cfg"), json!(3), json!("45s")]
    );
    assert_eq!(
        cells(
            "Secret",
            json!({"metadata": {"name": "s", "creationTimestamp": ago(7200)},
                   "type": "Opaque", "data": {"a": "MQ=="}, "stringData": {"a": "1", "b": "2"}})
        ),
        vec![json!("s"), json!("Opaque"), json!(2), json!("120m")]
    );
    assert_eq!(
        cells(
            "Lease",
            json!({"metadata": {"name": "node-1", "creationTimestamp": ago(30 * 86400)},
                   "spec": {"holderIdentity": "node-1"}})
        ),
        vec![json!("node-1"), json!("node-1"), json!("30d")]
    );
    assert_eq!(
        cells(
            "Lease",
            json!({"metadata": {"name": "free", "creationTimestamp": ago(1)}})
        ),
        vec![json!("free"), json!(""), json!("1s")]
    );
    let names = |kind: &str| -> Vec<String> {
        column_definitions(kind)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("Namespace"), ["Name", "Status", "Age"]);
    assert_eq!(names("ConfigMap"), ["Name", "Data", "Age"]);
    assert_eq!(names("Secret"), ["Name", "Type", "Data", "Age"]);
    assert_eq!(names("Lease"), ["Name", "Holder", "Age"]);
    assert_eq!(
        names("Event"),
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
    assert_eq!(
        names("Service"),
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "Selector"
        ]
    );
    assert_eq!(names("Endpoints"), ["Name", "Endpoints", "Age"]);
    assert_eq!(
        names("EndpointSlice"),
        ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    );
    assert_eq!(
        names("Deployment"),
        [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert_eq!(
        names("ReplicaSet"),
        [
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
}

#[test]
fn event_rows() {
    let event = json!({
        "metadata": {"name": "web.17a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container app in pod web_default(uid)\n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(600),
        "lastTimestamp": ago(20),
        "count": 7,
        "type": "Warning"
    });
    assert_eq!(
        cells("Event", event),
        vec![
            json!("20s"),
            json!("Warning"),
            json!("BackOff"),
            json!("pod/web"),
            json!("spec.containers{app}"),
            json!("kubelet, node-1"),
            json!("Back-off restarting failed container app in pod web_default(uid)"),
            json!("10m"),
            json!(7),
            json!("web.17a"),
        ]
    );
    // A new-API event: eventTime, series, reporting controller; no count.
    let event = json!({
        "metadata": {"name": "e2"},
        "involvedObject": {"kind": "Node"},
        "reason": "Starting",
        "eventTime": "2026-11-28T11:00:00.123456Z",
        "series": {"count": 4, "lastObservedTime": "2026-11-28T11:59:00.000001Z"},
        "reportingComponent": "podvisor",
        "type": "Normal"
    });
    assert_eq!(
        strs(&cells("Event", event)),
        [
            // Microsecond times truncate: 59.999999 s and 59 min 59.88 s.
            "59s", "Normal", "Starting", "node", "", "podvisor", "", "59m", "4", "e2"
        ]
    );
    // No time at all, and a singleton without count.
    let event = json!({"metadata": {"name": "e3"}, "involvedObject": {"kind": "Pod", "name": "x"}});
    let c = strs(&cells("Event", event));
    assert_eq!(c[0], "<unknown>");
    assert_eq!(c[7], "<unknown>");
    assert_eq!(c[8], "1");
}

#[test]
fn service_rows() {
    let svc = json!({
        "metadata": {"name": "web", "creationTimestamp": ago(90)},
        "spec": {
            "type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080},
                      {"port": 53, "protocol": "UDP"}],
            "selector": {"tier": "fe", "app": "web"}
        }
    });
    assert_eq!(
        strs(&cells("Service", svc)),
        [
            "web",
            "ClusterIP",
            "10.96.0.10",
            "<none>",
            "80/TCP,53/UDP",
            "90s",
            "app=web,tier=fe"
        ]
    );
    let node_port = json!({
        "metadata": {"name": "np", "creationTimestamp": ago(90)},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.11",
                 "externalIPs": ["192.0.2.1", "192.0.2.2"],
                 "ports": [{"port": 80, "nodePort": 30080}]}
    });
    assert_eq!(
        strs(&cells("Service", node_port))[1..5],
        [
            "NodePort",
            "10.96.0.11",
            "192.0.2.1,192.0.2.2",
            "80:30080/TCP"
        ]
    );
    let lb = |status: Value, external: Value| {
        json!({"metadata": {"name": "lb"},
               "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"],
                        "externalIPs": external, "ports": []},
               "status": status})
    };
    assert_eq!(
        strs(&cells("Service", lb(json!({}), json!([]))))[3..5],
        ["<pending>", "<none>"]
    );
    assert_eq!(
        strs(&cells(
            "Service",
            lb(
                json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "a-very-long-load-balancer.example.com"}, {"ip": "203.0.113.9"}]}}),
                json!(["192.0.2.7"])
            )
        ))[3],
        "203.0.113.9,a-very-long-load-balancer.example.com,192.0.2.7"
    );
    let external_name = json!({"metadata": {"name": "ext"},
                               "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
    assert_eq!(
        strs(&cells("Service", external_name))[1..7],
        [
            "ExternalName",
            "<none>",
            "db.example.com",
            "<none>",
            "<unknown>",
            "<none>"
        ]
    );
    let headless = json!({"metadata": {"name": "h"},
                          "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}});
    assert_eq!(
        strs(&cells("Service", headless))[1..5],
        ["ClusterIP", "None", "<none>", "5432/TCP"]
    );
}

#[test]
fn endpoints_rows() {
    let ep = |subsets: Value| json!({"metadata": {"name": "web", "creationTimestamp": ago(5)}, "subsets": subsets});
    assert_eq!(
        strs(&cells("Endpoints", ep(json!([])))),
        ["web", "<none>", "5s"]
    );
    assert_eq!(
        strs(&cells(
            "Endpoints",
            ep(
                json!([{"addresses": [{"ip": "10.244.0.11"}, {"ip": "10.244.0.12"}],
                       "ports": [{"port": 8080}]}])
            )
        ))[1],
        "10.244.0.11:8080,10.244.0.12:8080"
    );
    assert_eq!(
        strs(&cells(
            "Endpoints",
            ep(
                json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}],
                       "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}])
            )
        ))[1],
        "10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 3 more..."
    );
    assert_eq!(
        strs(&cells(
            "Endpoints",
            ep(json!([{"addresses": [{"ip": "10.0.0.1"}]}]))
        ))[1],
        "10.0.0.1"
    );
}

#[test]
fn endpoint_slice_rows() {
    let slice = json!({
        "metadata": {"name": "web-abc12", "creationTimestamp": ago(5)},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}, {"name": "named"}, {}, {"port": 1}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]},
                      {"addresses": ["10.0.0.4", "10.0.0.5"]}]
    });
    assert_eq!(
        strs(&cells("EndpointSlice", slice)),
        [
            "web-abc12",
            "IPv4",
            "8080,named,* + 1 more...",
            "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...",
            "5s"
        ]
    );
    let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv4"});
    assert_eq!(
        strs(&cells("EndpointSlice", empty))[2..4],
        ["<unset>", "<unset>"]
    );
}

fn workload(kind: &str, spec: Value, status: Value) -> Value {
    json!({
        "kind": kind,
        "metadata": {"name": "api", "namespace": "default", "creationTimestamp": ago(9000)},
        "spec": spec,
        "status": status
    })
}

#[test]
fn deployment_rows() {
    let spec = json!({
        "replicas": 3,
        "selector": {"matchLabels": {"app": "api"},
                     "matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]}]},
        "template": {"spec": {"containers": [{"name": "api", "image": "api:1"},
                                             {"name": "proxy", "image": "envoy:1.30"}]}}
    });
    let deploy = workload(
        "Deployment",
        spec,
        json!({"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}),
    );
    assert_eq!(
        cells("Deployment", deploy),
        vec![
            json!("api"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("150m"),
            json!("api,proxy"),
            json!("api:1,envoy:1.30"),
            json!("app=api,track notin (canary)"),
        ]
    );
    // Defaults: one replica, no status yet; a missing selector prints as nothing.
    let bare = workload("Deployment", json!({"template": {"spec": {}}}), json!({}));
    assert_eq!(
        strs(&cells("Deployment", bare)),
        ["api", "0/1", "0", "0", "150m", "", "", ""]
    );
    let invalid = workload(
        "Deployment",
        json!({"selector": {"matchExpressions": [{"key": "a", "operator": "Gt"}]}}),
        json!({}),
    );
    assert_eq!(strs(&cells("Deployment", invalid))[7], "<invalid>");
}

#[test]
fn replica_set_rows() {
    let rs = workload(
        "ReplicaSet",
        json!({
            "replicas": 2,
            "selector": {"matchLabels": {"app": "api", "pod-template-hash": "5d8f9"}},
            "template": {"spec": {"containers": [{"name": "api", "image": "api:2"}]}}
        }),
        json!({"replicas": 2, "readyReplicas": 1}),
    );
    assert_eq!(
        cells("ReplicaSet", rs),
        vec![
            json!("api"),
            json!(2),
            json!(2),
            json!(1),
            json!("150m"),
            json!("api"),
            json!("api:2"),
            json!("app=api,pod-template-hash=5d8f9"),
        ]
    );
    let bare = workload("ReplicaSet", json!({}), json!({}));
    assert_eq!(
        strs(&cells("ReplicaSet", bare)),
        ["api", "1", "0", "0", "150m", "", "", "<none>"]
    );
    let invalid = workload(
        "ReplicaSet",
        json!({"selector": {"matchExpressions": [{"key": "a", "operator": "Gt"}]}}),
        json!({}),
    );
    assert_eq!(strs(&cells("ReplicaSet", invalid))[7], "<error>");
}

#[test]
fn ages_of_future_and_zero_timestamps() {
    // A creation time 1 s in the future is clock skew; more is invalid.
    let ns = |t: String| json!({"metadata": {"name": "n", "creationTimestamp": t}});
    assert_eq!(strs(&cells("Namespace", ns(ago(-1))))[2], "0s");
    assert_eq!(strs(&cells("Namespace", ns(ago(-5))))[2], "<invalid>");
    assert_eq!(
        strs(&cells("Namespace", ns("0001-01-01T00:00:00Z".to_owned())))[2],
        "<unknown>"
    );
}
