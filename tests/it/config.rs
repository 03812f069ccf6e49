//! ConfigMaps and Secrets in pods: `env.valueFrom.configMapKeyRef` / `secretKeyRef` (optional
//! or not) and `envFrom` with a prefix, read from the store when a container starts, as the
//! kubelet's `makeEnvironmentVariables` reads them from the API server. Ports the e2e cases of
//! `test/e2e/common/node/configmap.go` and `secrets.go` ("should be consumable via
//! environment variable", "... via the environment", "should fail to create ... with empty
//! key" is validation, tested in `model`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{TestNode, container_status};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The environment a container wrote with `env > file`, once the file is complete.
async fn read_env(path: &Path, timeout: Duration) -> BTreeMap<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.contains("ENV_DONE=1")
        {
            return text
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} not written within {timeout:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn config_map_and_secret_values_reach_the_environment() {
    let node = TestNode::start().await;
    node.apply(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {LEVEL: debug, COLOR: blue}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: "s3cr3t value"}
data: {token: dG9rZW4tYnl0ZXM=}
---
apiVersion: v1
kind: Pod
metadata: {name: consumer}
spec:
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "env > $DIR/env.tmp && mv $DIR/env.tmp $DIR/env; exec sleep 600"]
    envFrom:
    - prefix: CM_
      configMapRef: {name: settings}
    - secretRef: {name: creds}
    - configMapRef: {name: absent, optional: true}
    env:
    - {name: ENV_DONE, value: "1"}
    - name: LOG_LEVEL
      valueFrom: {configMapKeyRef: {name: settings, key: LEVEL}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: OPTIONAL_KEY
      valueFrom: {secretKeyRef: {name: creds, key: absent, optional: true}}
    - name: OPTIONAL_OBJECT
      valueFrom: {configMapKeyRef: {name: absent, key: k, optional: true}}
    - {name: COMBINED, value: "$(CM_COLOR)-$(LOG_LEVEL)"}
"#,
    );
    let env = read_env(&node.dir.path().join("env"), SECS(15)).await;
    assert_eq!(env.get("CM_LEVEL").map(String::as_str), Some("debug"));
    assert_eq!(env.get("CM_COLOR").map(String::as_str), Some("blue"));
    assert_eq!(env.get("LOG_LEVEL").map(String::as_str), Some("debug"));
    assert_eq!(
        env.get("PASSWORD").map(String::as_str),
        Some("s3cr3t value")
    );
    assert_eq!(
        env.get("password").map(String::as_str),
        Some("s3cr3t value")
    );
    assert_eq!(env.get("token").map(String::as_str), Some("token-bytes"));
    assert_eq!(env.get("COMBINED").map(String::as_str), Some("blue-debug"));
    // Optional references to what does not exist define nothing (kubelet: `continue`).
    assert!(!env.contains_key("OPTIONAL_KEY"), "{env:?}");
    assert!(!env.contains_key("OPTIONAL_OBJECT"), "{env:?}");
    node.stop().await;
}

/// A required ConfigMap that does not exist keeps the container in
/// `CreateContainerConfigError` with the kubelet's message; once the ConfigMap is created the
/// container starts on the next retry.
#[tokio::test]
async fn a_missing_config_map_blocks_the_container_until_it_exists() {
    let node = TestNode::start().await;
    node.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: waiter}
spec:
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "env > $DIR/env.tmp && mv $DIR/env.tmp $DIR/env; exec sleep 600"]
    env:
    - {name: ENV_DONE, value: "1"}
    - name: MODE
      valueFrom: {configMapKeyRef: {name: later, key: mode}}
"#,
    );
    let p = node
        .wait_pod("waiter", SECS(10), "CreateContainerConfigError", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.first())
                .and_then(|c| c.state.as_ref()?.waiting.as_ref())
                .is_some_and(|w| w.reason.as_deref() == Some("CreateContainerConfigError"))
        })
        .await;
    let waiting = container_status(&p, "app")
        .state
        .as_ref()
        .unwrap()
        .waiting
        .clone()
        .unwrap();
    assert_eq!(
        waiting.message.as_deref(),
        Some(r#"configmap "later" not found"#)
    );
    assert!(node.has_event("waiter", "Failed", r#"Error: configmap "later" not found"#));
    node.apply(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: later}
data: {mode: fast}
"#,
    );
    // The kubelet retries a failed sync after its back-off (podvisor: 10 s).
    let env = read_env(&node.dir.path().join("env"), SECS(25)).await;
    assert_eq!(env.get("MODE").map(String::as_str), Some("fast"));
    node.stop().await;
}

/// A key missing from an existing Secret is the kubelet's error too.
#[tokio::test]
async fn a_missing_secret_key_is_a_config_error() {
    let node = TestNode::start().await;
    node.apply(
        r#"
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {user: admin}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: app
    image: busybox
    command: ["sleep", "600"]
    env:
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: password}}
"#,
    );
    node.wait_pod("p", SECS(10), "waiting with the key error", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.first())
            .and_then(|c| c.state.as_ref()?.waiting.as_ref())
            .is_some_and(|w| {
                w.message.as_deref() == Some("couldn't find key password in Secret default/creds")
            })
    })
    .await;
    node.stop().await;
}
