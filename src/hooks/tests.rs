//! Hook handlers against real processes and sockets (U-LH-01, U-LH-02, U-LH-07..09, HOOK-X2/X3).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, ExecAction, HTTPGetAction, LifecycleHandler, Pod, SleepAction,
    TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::runtime::logs::Rotation;
use crate::runtime::process::ProcessSpec;
use crate::runtime::{CgroupMode, RuntimeConfig, StartRequest};

fn pod() -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("podFoo".into()),
            namespace: Some("nsFoo".into()),
            uid: Some(uuid::Uuid::new_v4().to_string()),
            ..ObjectMeta::default()
        },
        ..Pod::default()
    }
}

fn container() -> Container {
    Container {
        name: "containerFoo".into(),
        ports: Some(vec![ContainerPort {
            name: Some("quux".into()),
            container_port: 8080,
            ..ContainerPort::default()
        }]),
        ..Container::default()
    }
}

struct Fixture {
    runtime: Arc<Runtime>,
    process: Arc<ContainerProcess>,
    pod: Pod,
    container: Container,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            data_dir: dir.path().to_owned(),
            node_id: format!("hooks-{}", uuid::Uuid::new_v4()),
            cgroups: CgroupMode::Auto,
            log_rotation: Rotation::default(),
        });
        let pod = pod();
        let process = runtime
            .start_container(StartRequest {
                namespace: "nsFoo".into(),
                pod: "podFoo".into(),
                pod_uid: pod.metadata.uid.clone().unwrap(),
                container: "containerFoo".into(),
                restart_count: 0,
                process: ProcessSpec {
                    argv: vec!["sleep".into(), "100".into()],
                    env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                    working_dir: Some("/".into()),
                    uid: None,
                    gid: None,
                },
                memory_limit: None,
            })
            .unwrap();
        Fixture {
            runtime,
            process,
            pod,
            container: container(),
            _dir: dir,
        }
    }

    fn target<'a>(&'a self, pod_ip: &'a str) -> HookTarget<'a> {
        HookTarget {
            runtime: &self.runtime,
            pod: &self.pod,
            container: &self.container,
            process: &self.process,
            pod_ip,
        }
    }

    async fn stop(self) {
        self.process.kill_all();
        self.process.wait().await;
        self.runtime.shutdown().await;
    }
}

fn exec(cmd: &[&str]) -> LifecycleHandler {
    LifecycleHandler {
        exec: Some(ExecAction {
            command: Some(cmd.iter().map(|s| s.to_string()).collect()),
        }),
        ..LifecycleHandler::default()
    }
}

/// U-LH-02 / U-LH-08: exec handlers run the command; failures carry the kubelet's message.
#[tokio::test]
async fn exec_handler_success_and_failure_message() {
    let f = Fixture::new();
    let t = f.target("127.0.0.1");
    assert_eq!(
        run_handler(&t, &exec(&["true"])).await,
        Ok(HookSuccess::default())
    );
    let err = run_handler(&t, &exec(&["sh", "-c", "echo invalid command; exit 1"]))
        .await
        .unwrap_err();
    let pod = format_pod(&f.pod);
    assert_eq!(
        err.message,
        format!(
            "Exec lifecycle hook ([sh -c echo invalid command; exit 1]) for Container \"containerFoo\" in Pod \"{pod}\" failed - error: command 'sh -c echo invalid command; exit 1' exited with 1: invalid command\n, message: \"invalid command\\n\""
        )
    );
    f.stop().await;
}

/// A one-shot HTTP server on 127.0.0.1 answering `status`; returns its port and the request.
async fn http_server(status: u16) -> (u16, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut req = Vec::new();
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        let resp = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        sock.write_all(resp.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&req).into_owned()
    });
    (port, task)
}

/// U-LH-06 / HOOK-X2: the pod IP is the default host, the query string is kept, and a 500
/// still counts as success for a hook.
#[tokio::test]
async fn http_handler_uses_pod_ip_and_ignores_status() {
    let f = Fixture::new();
    let (port, server) = http_server(500).await;
    let handler = LifecycleHandler {
        http_get: Some(HTTPGetAction {
            path: Some("/echo?msg=prestop".into()),
            port: IntOrString::Int(i32::from(port)),
            ..HTTPGetAction::default()
        }),
        ..LifecycleHandler::default()
    };
    assert_eq!(
        run_handler(&f.target("127.0.0.1"), &handler).await,
        Ok(HookSuccess::default())
    );
    let request = server.await.unwrap();
    assert!(
        request.starts_with("GET /echo?msg=prestop HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request
            .to_lowercase()
            .contains("user-agent: kube-lifecycle/1.32"),
        "{request}"
    );
    f.stop().await;
}

/// U-LH-09: an HTTP hook that gets no response fails with the kubelet's message.
#[tokio::test]
async fn http_handler_failure_message() {
    let f = Fixture::new();
    // A port nothing listens on: bind, learn the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let handler = LifecycleHandler {
        http_get: Some(HTTPGetAction {
            path: Some("bar".into()),
            port: IntOrString::Int(i32::from(port)),
            ..HTTPGetAction::default()
        }),
        ..LifecycleHandler::default()
    };
    let err = run_handler(&f.target("127.0.0.1"), &handler)
        .await
        .unwrap_err();
    let pod = format_pod(&f.pod);
    assert!(
        err.message.starts_with(&format!(
            "HTTP lifecycle hook (bar) for Container \"containerFoo\" in Pod \"{pod}\" failed - error: Get \"http://127.0.0.1:{port}/bar\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )),
        "{}",
        err.message
    );
    f.stop().await;
}

/// HOOK-X3 / U-LH-07: tcpSocket and empty handlers fail.
#[tokio::test]
async fn tcp_socket_and_empty_handlers_fail() {
    let f = Fixture::new();
    let t = f.target("127.0.0.1");
    let tcp = LifecycleHandler {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(80),
            ..TCPSocketAction::default()
        }),
        ..LifecycleHandler::default()
    };
    assert!(run_handler(&t, &tcp).await.is_err());
    assert!(run_handler(&t, &LifecycleHandler::default()).await.is_err());
    // Sleep 0 returns at once (AllowZero).
    let sleep = LifecycleHandler {
        sleep: Some(SleepAction { seconds: 0 }),
        ..LifecycleHandler::default()
    };
    assert!(run_handler(&t, &sleep).await.is_ok());
    f.stop().await;
}

/// U-LH-01 `TestResolvePort`.
#[test]
fn resolve_port_cases() {
    let c = container();
    assert_eq!(resolve_port(&IntOrString::Int(80), &c), Ok(80));
    assert_eq!(resolve_port(&IntOrString::String("80".into()), &c), Ok(80));
    assert_eq!(
        resolve_port(&IntOrString::String("quux".into()), &c),
        Ok(8080)
    );
    assert!(resolve_port(&IntOrString::String("foo".into()), &c).is_err());
    assert!(resolve_port(&IntOrString::Int(0), &c).is_err());
}
