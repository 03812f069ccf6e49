use std::collections::BTreeSet;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::{default_image_pull_policy, set_defaults, validate};

/// Decodes a YAML manifest like the CLI does: YAML to JSON values, then the typed Pod.
fn pod_from_yaml(yaml: &str) -> Pod {
    let value: serde_json::Value = serde_saphyr::from_str(yaml).expect("valid YAML");
    serde_json::from_value(value).expect("a Pod")
}

fn pod_from_json(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).expect("a Pod")
}

/// Defaults and validates, returning the rendered errors.
fn errors(mut pod: Pod) -> Vec<String> {
    set_defaults(&mut pod);
    validate(&pod).iter().map(ToString::to_string).collect()
}

fn invalid_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/invalid")
}

#[test]
fn invalid_manifests_report_exactly_the_expected_errors() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(invalid_dir())
        .expect("testdata/invalid")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        // The Pod manifests; the other kinds' are checked by `model::check`'s tests.
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.lines().any(|l| l == "kind: Pod")))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "only {} invalid manifests", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable manifest");
        let expected: BTreeSet<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(str::to_owned)
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` lines",
            file.display()
        );
        let actual: Vec<String> = errors(pod_from_yaml(&text));
        let actual_set: BTreeSet<String> = actual.iter().cloned().collect();
        assert_eq!(
            actual.len(),
            actual_set.len(),
            "{}: duplicate errors {actual:#?}",
            file.display()
        );
        if actual_set != expected {
            let missing: Vec<_> = expected.difference(&actual_set).collect();
            let unexpected: Vec<_> = actual_set.difference(&expected).collect();
            failures.push(format!(
                "{}\n  missing:    {missing:#?}\n  unexpected: {unexpected:#?}",
                file.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const REALISTIC_WEB: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web-7d9f8
  namespace: shop
  labels:
    app.kubernetes.io/name: web
    app.kubernetes.io/version: "1.25"
    tier: ""
  annotations:
    prometheus.io/scrape: "true"
    kubectl.kubernetes.io/last-applied-configuration: '{"apiVersion":"v1"}'
spec:
  os:
    name: linux
  terminationGracePeriodSeconds: 45
  securityContext:
    runAsUser: 101
    runAsGroup: 101
    fsGroup: 101
    seccompProfile:
      type: RuntimeDefault
  volumes:
    - name: config
      configMap:
        name: web-config
        items:
          - key: nginx.conf
            path: nginx.conf
    - name: tls
      secret:
        secretName: web-tls
        defaultMode: 256
    - name: cache
    - name: podinfo
      downwardAPI:
        items:
          - path: labels
            fieldRef:
              fieldPath: metadata.labels
          - path: cpu_limit
            resourceFieldRef:
              containerName: web
              resource: limits.cpu
              divisor: 1m
  initContainers:
    - name: wait-for-db
      image: busybox:1.36
      command: ["sh", "-c", "until nc -z db 5432; do sleep 1; done"]
    - name: log-shipper
      image: fluent/fluent-bit:3.0
      restartPolicy: Always
      readinessProbe:
        httpGet:
          path: /api/v1/health
          port: 2020
      lifecycle:
        preStop:
          sleep:
            seconds: 0
  containers:
    - name: web
      image: nginx:1.25.4
      ports:
        - name: http
          containerPort: 8080
        - name: https
          containerPort: 8443
          protocol: TCP
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_IP
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
        - name: VERSION
          valueFrom:
            fieldRef:
              fieldPath: metadata.labels['app.kubernetes.io/version']
        - name: MEMORY_LIMIT_MB
          valueFrom:
            resourceFieldRef:
              resource: limits.memory
              divisor: 1Mi
        - name: DB_PASSWORD
          valueFrom:
            secretKeyRef:
              name: db
              key: password
              optional: true
        - name: UPSTREAM
          value: http://$(POD_IP):9000
        - name: 9_LIVES
          value: relaxed names are fine in 1.33
      envFrom:
        - prefix: CFG_
          configMapRef:
            name: web-env
        - secretRef:
            name: web-secrets
            optional: true
      resources:
        requests:
          cpu: 250m
          memory: 128Mi
        limits:
          cpu: "1"
          memory: 256Mi
          ephemeral-storage: 1Gi
      volumeMounts:
        - name: config
          mountPath: /etc/nginx/nginx.conf
          subPath: nginx.conf
          readOnly: true
        - name: tls
          mountPath: /etc/tls
          readOnly: true
        - name: cache
          mountPath: /var/cache/nginx
        - name: podinfo
          mountPath: /etc/podinfo
      startupProbe:
        httpGet:
          path: /healthz
          port: http
        failureThreshold: 30
        periodSeconds: 1
      readinessProbe:
        httpGet:
          path: /ready
          port: 8080
          httpHeaders:
            - name: X-Probe
              value: readiness
        periodSeconds: 2
      livenessProbe:
        tcpSocket:
          port: http
        terminationGracePeriodSeconds: 5
      lifecycle:
        postStart:
          exec:
            command: ["sh", "-c", "echo started > /tmp/started"]
        preStop:
          httpGet:
            path: /drain
            port: http
        stopSignal: SIGQUIT
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
    - name: metrics
      image: prom/nginx-prometheus-exporter@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
      args: ["--nginx.scrape-uri=http://localhost:8080/stub_status"]
      ports:
        - name: metrics
          containerPort: 9113
      readinessProbe:
        grpc:
          port: 9114
      lifecycle:
        preStop:
          sleep:
            seconds: 45
  tolerations:
    - key: node.kubernetes.io/not-ready
      operator: Exists
      effect: NoExecute
      tolerationSeconds: 300
  readinessGates:
    - conditionType: example.com/load-balancer-ready
"#;

#[test]
fn realistic_pods_are_valid() {
    assert_eq!(errors(pod_from_yaml(REALISTIC_WEB)), Vec::<String>::new());

    let minimal = r#"
apiVersion: v1
kind: Pod
metadata:
  name: hello
spec:
  containers:
    - name: hello
      image: busybox
      command: ["sh", "-c", "echo hello; sleep 3600"]
"#;
    assert_eq!(errors(pod_from_yaml(minimal)), Vec::<String>::new());

    let job = r#"
apiVersion: v1
kind: Pod
metadata:
  generateName: backup-
  namespace: ops
spec:
  restartPolicy: OnFailure
  hostNetwork: true
  activeDeadlineSeconds: 3600
  terminationGracePeriodSeconds: 0
  containers:
    - name: backup
      image: registry.example.com:5000/ops/backup:2024.06.1
      imagePullPolicy: Never
      terminationMessagePolicy: FallbackToLogsOnError
      ports:
        - containerPort: 9100
      lifecycle:
        preStop:
          sleep:
            seconds: 0
      resources:
        limits:
          memory: 1.5Gi
          hugepages-2Mi: 100Mi
"#;
    assert_eq!(errors(pod_from_yaml(job)), Vec::<String>::new());
}

#[test]
fn validate_reports_every_problem_at_once() {
    let pod = pod_from_json(json!({
        "metadata": {"name": "Bad_Name"},
        "spec": {
            "restartPolicy": "Sometimes",
            "containers": [{"name": "", "image": ""}],
        }
    }));
    let errs = errors(pod);
    assert!(errs.len() >= 4, "{errs:#?}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("metadata.name: Invalid value: \"Bad_Name\""))
    );
    assert!(errs.contains(&"spec.containers[0].name: Required value".to_owned()));
    assert!(errs.contains(&"spec.containers[0].image: Required value".to_owned()));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.restartPolicy: Unsupported value"))
    );
}

#[test]
fn set_defaults_fills_what_the_api_server_fills() {
    let mut pod = pod_from_json(json!({
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{
                "name": "c",
                "image": "nginx",
                "ports": [{"containerPort": 80}],
                "env": [
                    {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "M", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
                ],
                "resources": {"limits": {"memory": "1.5Gi", "cpu": "0.0001"}},
                "livenessProbe": {"httpGet": {"port": 80}},
                "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 3},
                "lifecycle": {"preStop": {"httpGet": {"port": "http"}}},
            }],
            "initContainers": [{
                "name": "i",
                "image": "busybox:1.36",
                "startupProbe": {"exec": {"command": ["true"]}},
            }],
            "volumes": [
                {"name": "scratch"},
                {"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "host", "hostPath": {"path": "/tmp"}},
            ],
        }
    }));
    set_defaults(&mut pod);
    let got = serde_json::to_value(&pod).expect("serializable");
    let expected = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {
            "containers": [{
                "name": "c",
                "image": "nginx",
                "imagePullPolicy": "Always",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "env": [
                    {"name": "N", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                    {"name": "M", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "0"}}},
                ],
                "resources": {
                    "limits": {"memory": "1536Mi", "cpu": "1m"},
                    "requests": {"memory": "1536Mi", "cpu": "1m"},
                },
                "livenessProbe": {
                    "httpGet": {"path": "/", "port": 80, "scheme": "HTTP"},
                    "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3,
                },
                "readinessProbe": {
                    "grpc": {"port": 9000, "service": ""},
                    "timeoutSeconds": 1, "periodSeconds": 3, "successThreshold": 1, "failureThreshold": 3,
                },
                "lifecycle": {"preStop": {"httpGet": {"path": "/", "port": "http", "scheme": "HTTP"}}},
            }],
            "initContainers": [{
                "name": "i",
                "image": "busybox:1.36",
                "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "startupProbe": {
                    "exec": {"command": ["true"]},
                    "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3,
                },
            }],
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}},
                {"name": "host", "hostPath": {"path": "/tmp", "type": ""}},
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "enableServiceLinks": true,
            "serviceAccountName": "default",
            "serviceAccount": "default",
        }
    });
    assert_eq!(got, expected);
}

#[test]
fn set_defaults_keeps_what_is_set() {
    let mut pod = pod_from_json(json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "restartPolicy": "Never",
            "dnsPolicy": "Default",
            "terminationGracePeriodSeconds": 5,
            "serviceAccount": "legacy",
            "containers": [{
                "name": "c",
                "image": "nginx:latest",
                "imagePullPolicy": "Never",
                "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "2", "memory": "64Mi"}},
            }],
        }
    }));
    set_defaults(&mut pod);
    let spec = pod.spec.as_ref().expect("spec");
    assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.dns_policy.as_deref(), Some("Default"));
    assert_eq!(spec.termination_grace_period_seconds, Some(5));
    assert_eq!(spec.service_account_name.as_deref(), Some("legacy"));
    let c = &spec.containers[0];
    assert_eq!(c.image_pull_policy.as_deref(), Some("Never"));
    let requests = c
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .expect("requests");
    // Requests default to limits only for resources without a request.
    assert_eq!(requests["cpu"].0, "100m");
    assert_eq!(requests["memory"].0, "64Mi");
}

#[test]
fn a_negative_grace_period_is_stored_as_one() {
    let mut pod = pod_from_json(json!({
        "metadata": {"name": "p"},
        "spec": {"terminationGracePeriodSeconds": -3, "containers": [{"name": "c", "image": "x"}]}
    }));
    set_defaults(&mut pod);
    assert_eq!(
        pod.spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds),
        Some(1)
    );
    assert!(validate(&pod).is_empty());
}

#[test]
fn host_network_defaults_host_ports() {
    let mut pod = pod_from_json(json!({
        "metadata": {"name": "p"},
        "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 8080}]}]}
    }));
    set_defaults(&mut pod);
    let port = &pod.spec.as_ref().expect("spec").containers[0]
        .ports
        .as_ref()
        .expect("ports")[0];
    assert_eq!(port.host_port, Some(8080));
    assert!(validate(&pod).is_empty());
}

#[test]
fn image_pull_policy_defaults_like_upstream() {
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let cases = [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("library/nginx:stable-alpine", "IfNotPresent"),
        ("docker.io/library/nginx", "Always"),
        ("localhost:5000/app", "Always"),
        ("localhost:5000/app:v1", "IfNotPresent"),
        ("registry.example.com/team/app:2024.06", "IfNotPresent"),
        ("[::1]:5000/app:v1", "IfNotPresent"),
        // Not valid references: upstream ignores the parse error and uses IfNotPresent.
        ("NGINX", "IfNotPresent"),
        ("nginx:", "IfNotPresent"),
        ("nginx@sha256:abc", "IfNotPresent"),
        ("", "IfNotPresent"),
    ];
    for (image, policy) in cases {
        assert_eq!(default_image_pull_policy(image), policy, "{image}");
    }
    assert_eq!(
        default_image_pull_policy(&format!("nginx@{digest}")),
        "IfNotPresent"
    );
    assert_eq!(
        default_image_pull_policy(&format!("nginx:latest@{digest}")),
        "Always"
    );
    assert_eq!(
        default_image_pull_policy(&format!("nginx:1.25@{digest}")),
        "IfNotPresent"
    );
}

#[test]
fn sleep_may_equal_the_grace_period() {
    let pod = pod_from_json(json!({
        "metadata": {"name": "p"},
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "containers": [{"name": "c", "image": "x", "lifecycle": {"preStop": {"sleep": {"seconds": 10}}}}]
        }
    }));
    assert_eq!(errors(pod), Vec::<String>::new());
}

#[test]
fn tcp_socket_hooks_pass_validation_for_compatibility() {
    let pod = pod_from_json(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "x", "lifecycle": {"preStop": {"tcpSocket": {"port": 8080}}}}]}
    }));
    assert_eq!(errors(pod), Vec::<String>::new());
}

#[test]
fn missing_name_and_generate_name_is_required() {
    let pod = pod_from_json(json!({"spec": {"containers": [{"name": "c", "image": "x"}]}}));
    assert_eq!(
        errors(pod),
        vec!["metadata.name: Required value: name or generateName is required".to_owned()]
    );
}

#[test]
fn ephemeral_containers_cannot_be_set_on_create() {
    let pod = pod_from_json(json!({
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "x"}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
        }
    }));
    assert_eq!(
        errors(pod),
        vec!["spec.ephemeralContainers: Forbidden: cannot be set on create".to_owned()]
    );
}

#[test]
fn host_ports_conflict_across_containers_but_not_across_init_containers() {
    let pod = pod_from_json(json!({
        "metadata": {"name": "p"},
        "spec": {
            "initContainers": [
                {"name": "i1", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]},
                {"name": "i2", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]},
            ],
            "containers": [
                {"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]},
                {"name": "b", "image": "x", "ports": [{"containerPort": 81, "hostPort": 8080}]},
            ],
        }
    }));
    assert_eq!(
        errors(pod),
        vec!["spec.containers[1].ports[0].hostPort: Duplicate value: \"TCP//8080\"".to_owned()]
    );
}

#[test]
fn annotations_may_not_exceed_256_kib() {
    let big = "x".repeat(256 * 1024);
    let pod = pod_from_json(json!({
        "metadata": {"name": "p", "annotations": {"a": big}},
        "spec": {"containers": [{"name": "c", "image": "x"}]}
    }));
    assert_eq!(
        errors(pod),
        vec!["metadata.annotations: Too long: may not be more than 262144 bytes".to_owned()]
    );
}

#[test]
fn volume_mount_sub_paths_are_relative() {
    let pod = pod_from_json(json!({
        "metadata": {"name": "p"},
        "spec": {
            "volumes": [{"name": "v"}],
            "containers": [{"name": "c", "image": "x", "volumeMounts": [
                {"name": "v", "mountPath": "/a", "subPath": "/abs"},
                {"name": "v", "mountPath": "/b", "subPath": "../up"},
            ]}],
        }
    }));
    // Upstream reports these on the list's path (a quirk kept for parity).
    assert_eq!(
        errors(pod),
        vec![
            "spec.containers[0].volumeMounts.subPath: Invalid value: \"/abs\": must be a relative path".to_owned(),
            "spec.containers[0].volumeMounts.subPath: Invalid value: \"../up\": must not contain '..'".to_owned(),
        ]
    );
}
