//! postStart and preStop hooks: spec §10.1 (HOOK-01..06, HOOK-X1..X6), §10.5 CLC-05, and the
//! cancelled-postStart deviation from upstream bug #116032.

use crate::harness::*;

/// A testapp server pod with its HTTP port on `$POD_IP:8080`, used as a hook handler.
const HANDLER: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: handler}
spec:
  containers:
  - name: handler
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "handler", "--record", "$RECORD"]
    env:
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    ports:
    - {name: http, containerPort: 8080}
"#;

/// Starts the handler pod and returns its IP once it listens.
async fn start_handler(node: &TestNode) -> String {
    node.apply(HANDLER);
    let p = node.wait_running("handler", SECS(10)).await;
    node.wait_record(SECS(10), "handler listening", |r| {
        r.is("handler", "listening")
    })
    .await;
    p.status.as_ref().unwrap().pod_ip.clone().unwrap()
}

/// A pod whose app records as `app`, with `lifecycle` (YAML under `lifecycle:`).
fn hooked_pod(grace: i64, on_term: &str, restart_policy: &str, lifecycle: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: hooked}}
spec:
  terminationGracePeriodSeconds: {grace}
  restartPolicy: {restart_policy}
  containers:
  - name: app
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "app", "--record", "$RECORD", "--port", "0", "--on-signal", "TERM={on_term}"]
    lifecycle:
{lifecycle}
"#
    )
}

fn exec_hook(hook: &str, extra: &str) -> String {
    format!(
        r#"        exec:
          command: ["$TESTAPP", "hook", "{hook}", "--name", "app", "--record", "$RECORD"{extra}]"#
    )
}

/// HOOK-01 "should execute poststart exec hook properly" and HOOK-02 "…prestop exec hook":
/// the preStop hook runs, and completes, before the container gets SIGTERM.
#[tokio::test]
async fn hook_01_02_exec_hooks() {
    let node = TestNode::start().await;
    let lifecycle = format!(
        "      postStart:\n{}\n      preStop:\n{}",
        exec_hook("poststart", ""),
        exec_hook("prestop", "")
    );
    node.apply(&hooked_pod(15, "exit", "Always", &lifecycle));
    node.wait_running("hooked", SECS(10)).await;
    node.wait_record(SECS(5), "postStart", |r| {
        r.is("app", "hook") && r.get("name") == Some("poststart")
    })
    .await;
    node.wait_record(SECS(5), "app started", |r| r.is("app", "started"))
        .await;
    node.delete("hooked", Some(15));
    node.wait_gone("hooked", SECS(10)).await;
    let records = node.records();
    let pre_stop_end = records
        .iter()
        .position(|r| {
            r.is("app", "hook") && r.get("name") == Some("prestop") && r.get("phase") == Some("end")
        })
        .expect("preStop ran");
    let sigterm = records
        .iter()
        .position(|r| r.is("app", "signal"))
        .expect("SIGTERM");
    assert!(pre_stop_end < sigterm, "preStop completed before SIGTERM");
    node.stop().await;
}

/// HOOK-03 and HOOK-04: httpGet hooks to another pod (`host`), query strings kept.
#[tokio::test]
async fn hook_03_04_http_hooks() {
    let node = TestNode::start().await;
    let ip = start_handler(&node).await;
    let lifecycle = format!(
        r#"      postStart:
        httpGet: {{host: "{ip}", port: 8080, path: "/echo?msg=poststart"}}
      preStop:
        httpGet: {{host: "{ip}", port: 8080, path: "/echo?msg=prestop"}}"#
    );
    node.apply(&hooked_pod(15, "exit", "Always", &lifecycle));
    node.wait_running("hooked", SECS(10)).await;
    node.wait_record(SECS(5), "postStart request", |r| {
        r.is("handler", "http") && r.get("msg") == Some("poststart")
    })
    .await;
    node.wait_record(SECS(5), "app started", |r| r.is("app", "started"))
        .await;
    node.delete("hooked", None);
    node.wait_gone("hooked", SECS(10)).await;
    let records = node.records();
    let pre_stop = records
        .iter()
        .position(|r| r.is("handler", "http") && r.get("msg") == Some("prestop"))
        .expect("preStop request");
    let sigterm = records
        .iter()
        .position(|r| r.is("app", "signal"))
        .expect("SIGTERM");
    assert!(pre_stop < sigterm);
    node.stop().await;
}

/// HOOK-X1: a failing preStop gives `FailedPreStopHook` and termination goes on at once.
#[tokio::test]
async fn hook_x1_failed_pre_stop_continues() {
    let node = TestNode::start().await;
    let lifecycle = format!(
        "      preStop:\n{}",
        exec_hook("prestop", r#", "--exit-code", "1""#)
    );
    node.apply(&hooked_pod(30, "exit", "Always", &lifecycle));
    node.wait_running("hooked", SECS(10)).await;
    node.wait_record(SECS(5), "started", |r| r.is("app", "started"))
        .await;
    let t0 = now_ns();
    node.delete("hooked", None);
    node.wait_gone("hooked", SECS(10)).await;
    assert!(node.has_event("hooked", "FailedPreStopHook", "PreStopHook failed"));
    let sig = node
        .records()
        .into_iter()
        .find(|r| r.is("app", "signal"))
        .unwrap();
    assert!(
        sig.secs_after(t0) < 1.0,
        "SIGTERM {:.3}s after delete",
        sig.secs_after(t0)
    );
    node.stop().await;
}

/// HOOK-X2 and HOOK-X3: an HTTP 500 is a successful hook; tcpSocket is not a valid hook.
#[tokio::test]
async fn hook_x2_x3_http_500_succeeds_tcp_socket_fails() {
    let node = TestNode::start().await;
    let ip = start_handler(&node).await;
    let lifecycle = format!(
        r#"      preStop:
        httpGet: {{host: "{ip}", port: 8080, path: "/status/500"}}"#
    );
    node.apply(&hooked_pod(30, "exit", "Always", &lifecycle));
    node.wait_running("hooked", SECS(10)).await;
    node.wait_record(SECS(5), "started", |r| r.is("app", "started"))
        .await;
    node.delete("hooked", None);
    node.wait_gone("hooked", SECS(10)).await;
    assert!(!node.has_event("hooked", "FailedPreStopHook", ""));

    let lifecycle = "      preStop:\n        tcpSocket: {port: 8080}";
    node.apply(&hooked_pod(30, "exit", "Always", lifecycle));
    node.wait_running("hooked", SECS(10)).await;
    node.wait_pod("hooked", SECS(5), "started by its app", |_| {
        node.records()
            .iter()
            .filter(|r| r.is("app", "started"))
            .count()
            == 2
    })
    .await;
    node.delete("hooked", None);
    node.wait_gone("hooked", SECS(10)).await;
    assert!(node.has_event("hooked", "FailedPreStopHook", "PreStopHook failed"));
    node.stop().await;
}

/// HOOK-X4: a failing postStart kills the container (preStop runs), `PostStartHookError`,
/// and a restart per restartPolicy with back-off.
#[tokio::test]
async fn hook_x4_failed_post_start_kills_and_restarts() {
    let node = TestNode::start_with(NodeOptions {
        max_backoff: SECS(1),
        ..NodeOptions::default()
    })
    .await;
    let lifecycle = format!(
        "      postStart:\n{}\n      preStop:\n{}",
        exec_hook("poststart", r#", "--exit-code", "1""#),
        exec_hook("prestop", "")
    );
    node.apply(&hooked_pod(5, "exit", "Always", &lifecycle));
    node.wait_event(
        "hooked",
        "FailedPostStartHook",
        "PostStartHook failed",
        SECS(10),
    )
    .await;
    node.wait_event("hooked", "Killing", "FailedPostStartHook", SECS(10))
        .await;
    let p = node
        .wait_pod("hooked", SECS(20), "restarted twice", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| cs[0].restart_count >= 2)
        })
        .await;
    let cs = container_status(&p, "app");
    let waiting = cs.state.as_ref().and_then(|s| s.waiting.as_ref());
    if let Some(w) = waiting {
        let reason = w.reason.as_deref().unwrap_or_default();
        assert!(
            matches!(
                reason,
                "PostStartHookError" | "CrashLoopBackOff" | "ContainerCreating"
            ),
            "{reason}"
        );
    }
    assert!(
        node.records()
            .iter()
            .any(|r| r.is("app", "hook") && r.get("name") == Some("prestop")),
        "the kill after a failed postStart runs preStop"
    );
    assert!(node.has_event(
        "hooked",
        "BackOff",
        "Back-off restarting failed container app"
    ));
    node.stop().await;
}

/// HOOK-X5: while postStart runs the container is reported Waiting (ContainerCreating), not
/// started, the pod Pending, although the process already runs; `startedAt` is the process
/// start, not the hook's end.
#[tokio::test]
async fn hook_x5_status_during_post_start() {
    let node = TestNode::start().await;
    let lifecycle = format!(
        "      postStart:\n{}",
        exec_hook("poststart", r#", "--sleep", "2""#)
    );
    node.apply(&hooked_pod(5, "exit", "Always", &lifecycle));
    let started = node
        .wait_record(SECS(5), "app started", |r| r.is("app", "started"))
        .await;
    node.wait_record(SECS(5), "postStart running", |r| {
        r.is("app", "hook") && r.get("phase") == Some("start")
    })
    .await;
    let p = node.pod("hooked").unwrap();
    let cs = container_status(&p, "app");
    assert_eq!(
        cs.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("ContainerCreating")
    );
    assert_eq!(cs.started, Some(false));
    assert!(!cs.ready);
    assert_eq!(phase_of(&p), "Pending");
    let hook_end = node
        .wait_record(SECS(5), "postStart done", |r| {
            r.is("app", "hook") && r.get("phase") == Some("end")
        })
        .await;
    let p = node.wait_running("hooked", SECS(5)).await;
    let started_at = container_status(&p, "app")
        .state
        .as_ref()
        .unwrap()
        .running
        .as_ref()
        .unwrap()
        .started_at
        .as_ref()
        .unwrap()
        .0
        .as_nanosecond() as u128;
    assert!(
        started_at < hook_end.time_ns,
        "startedAt is before the hook ended"
    );
    // Status times have whole-second precision (metav1.Time): startedAt is the process
    // start truncated to the second.
    assert!(
        started.time_ns >= started_at && started.time_ns - started_at < 1_000_000_000,
        "startedAt is the process start"
    );
    node.stop().await;
}

/// CLC-05 / HOOK-X6 "should not launch second container before PostStart of the first
/// container completed".
#[tokio::test]
async fn clc_05_second_container_waits_for_first_post_start() {
    let node = TestNode::start().await;
    node.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: two}
spec:
  containers:
  - name: first
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "first", "--record", "$RECORD", "--port", "0"]
    lifecycle:
      postStart:
        exec:
          command: ["$TESTAPP", "hook", "poststart", "--name", "first", "--record", "$RECORD", "--sleep", "1"]
  - name: second
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "second", "--record", "$RECORD", "--port", "0"]
"#,
    );
    node.wait_running("two", SECS(10)).await;
    let second = node
        .wait_record(SECS(5), "second started", |r| r.is("second", "started"))
        .await;
    let hook_end = node
        .records()
        .into_iter()
        .find(|r| r.is("first", "hook") && r.get("phase") == Some("end"))
        .expect("postStart of first");
    assert!(
        second.time_ns > hook_end.time_ns,
        "second started after first's postStart"
    );
    node.stop().await;
}

/// Deleting a pod whose postStart hangs cancels the hook and terminates within the grace
/// (upstream bug #116032 would wait forever).
#[tokio::test]
async fn delete_during_hanging_post_start_cancels_it() {
    let node = TestNode::start().await;
    let lifecycle = format!(
        "      postStart:\n{}",
        exec_hook("poststart", r#", "--sleep", "1000", "--ignore-term""#)
    );
    node.apply(&hooked_pod(2, "exit", "Always", &lifecycle));
    let hook = node
        .wait_record(SECS(5), "postStart running", |r| {
            r.is("app", "hook") && r.get("phase") == Some("start")
        })
        .await;
    node.wait_record(SECS(5), "started", |r| r.is("app", "started"))
        .await;
    let t0 = now_ns();
    node.delete("hooked", None);
    node.wait_gone("hooked", SECS(5)).await;
    assert!(
        (now_ns() - t0) < 3_000_000_000,
        "terminated within the 2 s grace"
    );
    let pid: i32 = hook.get("pid").unwrap().parse().unwrap();
    assert!(!alive(pid), "the cancelled postStart process is gone");
    node.stop().await;
}

/// HOOK-15 "ignore terminated container": a container that exits on its own gets no preStop.
#[tokio::test]
async fn hook_15_no_pre_stop_for_exited_container() {
    let node = TestNode::start().await;
    node.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: once}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "app", "--record", "$RECORD", "--port", "0", "--exit-after", "0.5"]
    lifecycle:
      preStop:
        exec:
          command: ["$TESTAPP", "hook", "prestop", "--name", "app", "--record", "$RECORD"]
"#,
    );
    let p = node.wait_phase("once", "Succeeded", SECS(10)).await;
    assert_eq!(terminated(&p, "app"), Some((0, "Completed".to_owned())));
    assert!(
        !node.records().iter().any(|r| r.is("app", "hook")),
        "no preStop"
    );
    node.stop().await;
}

/// An HTTPS server on 127.0.0.1 with a fresh self-signed certificate; it answers 200 to every
/// request and sends each request line on the channel.
async fn https_handler() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let _ = tx.send(text.lines().next().unwrap_or_default().to_owned());
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, rx)
}

/// HOOK-05 and HOOK-06 "should execute poststart/prestop https hook properly": `scheme:
/// HTTPS` against a self-signed certificate (verification is skipped, as upstream).
#[tokio::test]
async fn hook_05_06_https_hooks() {
    let node = TestNode::start().await;
    let (port, mut requests) = https_handler().await;
    let lifecycle = format!(
        r#"      postStart:
        httpGet: {{host: "127.0.0.1", port: {port}, scheme: HTTPS, path: "/echo?msg=poststart"}}
      preStop:
        httpGet: {{host: "127.0.0.1", port: {port}, scheme: HTTPS, path: "/echo?msg=prestop"}}"#
    );
    node.apply(&hooked_pod(15, "exit", "Always", &lifecycle));
    node.wait_running("hooked", SECS(10)).await;
    let first = tokio::time::timeout(SECS(5), requests.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, "GET /echo?msg=poststart HTTP/1.1");
    node.wait_record(SECS(5), "started", |r| r.is("app", "started"))
        .await;
    node.delete("hooked", None);
    let second = tokio::time::timeout(SECS(5), requests.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second, "GET /echo?msg=prestop HTTP/1.1");
    node.wait_gone("hooked", SECS(10)).await;
    assert!(!node.has_event("hooked", "FailedPreStopHook", ""));
    node.stop().await;
}
