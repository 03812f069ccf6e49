//! Probe handlers against real processes and sockets (`TestDoProbe`'s handlers, PR-09/10,
//! PR-06, and the bad-input rules of the probes issue).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, ExecAction, HTTPGetAction, Probe, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;
use crate::runtime::logs::Rotation;
use crate::runtime::process::ProcessSpec;
use crate::runtime::{CgroupMode, RuntimeConfig, StartRequest};

struct Fixture {
    runtime: Arc<Runtime>,
    process: Arc<ContainerProcess>,
    container: Container,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            data_dir: dir.path().to_owned(),
            node_id: format!("probe-{}", uuid::Uuid::new_v4()),
            cgroups: CgroupMode::Auto,
            log_rotation: Rotation::default(),
        });
        let process = runtime
            .start_container(StartRequest {
                namespace: "default".into(),
                pod: "p".into(),
                pod_uid: uuid::Uuid::new_v4().to_string(),
                container: "c".into(),
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
        let container = Container {
            name: "c".into(),
            env: Some(vec![EnvVar {
                name: "WORD".into(),
                value: Some("static".into()),
                ..EnvVar::default()
            }]),
            ports: Some(vec![ContainerPort {
                name: Some("web".into()),
                container_port: 1,
                ..ContainerPort::default()
            }]),
            ..Container::default()
        };
        Fixture {
            runtime,
            process,
            container,
            _dir: dir,
        }
    }

    async fn probe(&self, probe: &Probe, timeout: Duration) -> (ProbeOutcome, String) {
        let target = ProbeTarget {
            runtime: &self.runtime,
            container: &self.container,
            process: &self.process,
            pod_ip: "127.0.0.1",
        };
        run(&target, probe, timeout).await
    }

    async fn stop(self) {
        self.process.kill_all();
        self.process.wait().await;
        self.runtime.shutdown().await;
    }
}

fn exec(cmd: &[&str]) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(cmd.iter().map(|s| s.to_string()).collect()),
        }),
        ..Probe::default()
    }
}

#[tokio::test]
async fn exec_probe_outcomes() {
    let f = Fixture::new();
    let second = Duration::from_secs(1);
    assert_eq!(
        f.probe(&exec(&["true"]), second).await.0,
        ProbeOutcome::Success
    );
    // Static env only: $(WORD) expands from `value`, the output is the message.
    let (outcome, output) = f
        .probe(&exec(&["sh", "-c", "echo $(WORD) not ok; exit 1"]), second)
        .await;
    assert_eq!(
        (outcome, output.as_str()),
        (ProbeOutcome::Failure, "static not ok\n")
    );
    // A command that does not exist is a failure with a clear message.
    let (outcome, output) = f.probe(&exec(&["podvisor-no-such-probe"]), second).await;
    assert_eq!(outcome, ProbeOutcome::Failure);
    assert_eq!(
        output,
        "exec: \"podvisor-no-such-probe\": executable file not found in $PATH"
    );
    f.stop().await;
}

/// PR-09 / PR-10: a probe that outlives its timeout fails, and its processes are killed
/// (a background child too, PR-11 style).
#[tokio::test]
async fn exec_probe_timeout_kills_the_command() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!("sleep 100 & echo $! > {}; wait", pid_file.display());
    let t = Instant::now();
    let (outcome, output) = f
        .probe(&exec(&["sh", "-c", &script]), Duration::from_millis(300))
        .await;
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(outcome, ProbeOutcome::Failure);
    assert!(output.ends_with("timed out"), "{output}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while crate::runtime::tree::stat(pid).is_some_and(|s| s.state != 'Z') {
        assert!(
            Instant::now() < deadline,
            "the probe's child survived its timeout"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        f.process.exit_info().is_none(),
        "the container survives its probe"
    );
    f.stop().await;
}

/// PR-06: tcpSocket succeeds on a listening port, fails with Go's wording otherwise; a port
/// name the container does not have fails.
#[tokio::test]
async fn tcp_probe_outcomes() {
    let f = Fixture::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let tcp = |port: IntOrString| Probe {
        tcp_socket: Some(TCPSocketAction {
            port,
            ..TCPSocketAction::default()
        }),
        ..Probe::default()
    };
    let second = Duration::from_secs(1);
    let open = tcp(IntOrString::Int(i32::from(port)));
    assert_eq!(f.probe(&open, second).await.0, ProbeOutcome::Success);
    drop(listener);
    let (outcome, output) = f.probe(&open, second).await;
    assert_eq!(outcome, ProbeOutcome::Failure);
    assert_eq!(
        output,
        format!("dial tcp 127.0.0.1:{port}: connect: connection refused")
    );
    let (outcome, output) = f
        .probe(&tcp(IntOrString::String("nope".into())), second)
        .await;
    assert_eq!(outcome, ProbeOutcome::Failure);
    assert!(output.contains("couldn't find port: nope"), "{output}");
    f.stop().await;
}

/// httpGet probes use the pod IP by default and need 200–399.
#[tokio::test]
async fn http_probe_defaults_to_pod_ip() {
    let f = Fixture::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let probe = Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/healthz".into()),
            port: IntOrString::Int(i32::from(port)),
            ..HTTPGetAction::default()
        }),
        ..Probe::default()
    };
    let (outcome, output) = f.probe(&probe, Duration::from_secs(1)).await;
    assert_eq!(outcome, ProbeOutcome::Failure);
    assert!(
        output.starts_with(&format!(
            "Get \"http://127.0.0.1:{port}/healthz\": dial tcp"
        )),
        "{output}"
    );
    f.stop().await;
}
