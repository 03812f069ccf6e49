//! Crash recovery: `kill -9` of `podvisor up` while clients write through the API, then a
//! restart on the same data dir. Every write the API acknowledged is there; the processes the
//! dead node left behind (including a setsid'd grandchild that ignores SIGTERM) are stopped
//! and every pod runs again with exactly one process per container; after a final Ctrl-C no
//! process of any pod is left. Run with cgroups (where the machine has them) and with
//! `--cgroups off` (processes found by their environment marker).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use podvisor::cli::client::Client;
use serde_json::{Value, json};

use crate::harness::{
    PODVISOR, TESTAPP, alive, read_records, recorded_pids, test_cidr, test_service_cidr,
};

const SECS: fn(u64) -> Duration = Duration::from_secs;

struct Up {
    child: Child,
    output: PathBuf,
}

impl Up {
    fn start(dir: &Path, cgroups: &str, run: u32, manifest: Option<&Path>) -> Up {
        let output = dir.join(format!("up-{run}.out"));
        let file = std::fs::File::create(&output).unwrap();
        let mut command = Command::new(PODVISOR);
        command
            .arg("up")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--api-port", "0", "--color", "never", "--cgroups", cgroups])
            .args(["--pod-cidr", &test_cidr()])
            .args(["--service-cidr", &test_service_cidr()])
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        if let Some(m) = manifest {
            command.arg("-f").arg(m);
        }
        Up {
            child: command.spawn().unwrap(),
            output,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// Waits for the API line, then connects with the kubeconfig this run wrote.
    async fn client(&self, dir: &Path) -> Client {
        wait_until(SECS(20), "the API to be up", || {
            self.output().contains("podvisor: API at")
        })
        .await;
        let data = dir.join("data");
        Client::from_config(Some(&data.join("kubeconfig")), &data).unwrap()
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The pids recorded by `event` records of `name`.
fn pids(record: &Path, name: &str, event: &str) -> Vec<i32> {
    read_records(record)
        .iter()
        .filter(|r| r.name == name && r.event == event)
        .filter_map(|r| r.get("pid")?.parse().ok())
        .collect()
}

fn live(pids: &[i32]) -> Vec<i32> {
    pids.iter().copied().filter(|p| alive(*p)).collect()
}

fn pod_manifest(name: &str, record: &Path, extra: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: app
    image: podvisor/testapp
    command: ["{TESTAPP}", "serve", "--name", "{name}", "--record", "{}", "--port", "0"{extra}]
"#,
        record.display()
    )
}

async fn crash_and_recover(cgroups: &str) {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record");
    let manifest = dir.path().join("pods.yaml");
    std::fs::write(
        &manifest,
        format!(
            "{}---\n{}",
            pod_manifest("steady", &record, r#", "--grandchild""#),
            pod_manifest("stubborn", &record, r#", "--on-signal", "TERM=ignore""#),
        ),
    )
    .unwrap();

    let first = Up::start(dir.path(), cgroups, 1, Some(&manifest));
    let client = first.client(dir.path()).await;
    wait_until(SECS(20), "both pods and the grandchild", || {
        !pids(&record, "steady", "started").is_empty()
            && !pids(&record, "stubborn", "started").is_empty()
            && !pids(&record, "steady", "grandchild").is_empty()
    })
    .await;
    // A pod created through the API, acknowledged before the crash.
    let api_pod: Value = serde_saphyr_to_json(&pod_manifest("viaapi", &record, ""));
    let reply = client
        .call(
            "POST",
            "/api/v1/namespaces/default/pods",
            Some("application/json"),
            "application/json",
            serde_json::to_vec(&api_pod).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    wait_until(SECS(20), "the API pod to start", || {
        !pids(&record, "viaapi", "started").is_empty()
    })
    .await;

    // Activity: ConfigMaps written one after another; the node dies in the middle.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let writer = {
        let client = client.clone();
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            for i in 0..5_000 {
                let name = format!("cm-{i}");
                let body = json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name}, "data": {"i": i.to_string()},
                });
                let Ok(reply) = client
                    .call(
                        "POST",
                        "/api/v1/namespaces/default/configmaps",
                        Some("application/json"),
                        "application/json",
                        serde_json::to_vec(&body).unwrap(),
                    )
                    .await
                else {
                    return;
                };
                if reply.status != 201 {
                    return;
                }
                acknowledged.lock().unwrap().push(name);
            }
        })
    };
    wait_until(SECS(30), "some acknowledged writes", || {
        acknowledged.lock().unwrap().len() >= 25
    })
    .await;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(first.pid()).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let _ = tokio::time::timeout(SECS(20), writer).await;
    drop(first);
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 25);

    let old: Vec<i32> = recorded_pids(&record).into_iter().collect();
    assert_eq!(
        live(&old).len(),
        old.len(),
        "the pods' processes outlive a killed node: {old:?}"
    );

    let second = Up::start(dir.path(), cgroups, 2, None);
    let client = second.client(dir.path()).await;
    // Every acknowledged write survived the crash.
    for name in &acknowledged {
        let reply = client
            .get(
                &format!("/api/v1/namespaces/default/configmaps/{name}"),
                "application/json",
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "acknowledged {name} was lost");
    }
    // The old processes are stopped (the stubborn one and the grandchild by SIGKILL)...
    wait_until(SECS(15), "the old processes to be stopped", || {
        live(&old).is_empty()
    })
    .await;
    // ... and every pod runs again, with one process per container.
    for name in ["steady", "stubborn", "viaapi"] {
        wait_until(SECS(20), &format!("{name} to start again"), || {
            pids(&record, name, "started").len() >= 2
        })
        .await;
        let running = live(&pids(&record, name, "started"));
        assert_eq!(running.len(), 1, "{name}: live processes {running:?}");
    }
    wait_until(SECS(10), "a new grandchild", || {
        live(&pids(&record, "steady", "grandchild")).len() == 1
    })
    .await;
    let reply = client
        .get("/api/v1/namespaces/default/pods", "application/json")
        .await
        .unwrap();
    let pods = reply.json().unwrap();
    let mut names: Vec<&str> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["steady", "stubborn", "viaapi"]);

    // A clean stop leaves nothing behind.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(second.pid()).unwrap(),
        rustix::process::Signal::INT,
    )
    .unwrap();
    wait_until(SECS(20), "the node to stop", || {
        second.output().contains("node stopped")
    })
    .await;
    let all: Vec<i32> = recorded_pids(&record).into_iter().collect();
    let survivors = live(&all);
    for pid in &survivors {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(*pid).unwrap(),
            rustix::process::Signal::KILL,
        );
    }
    assert!(
        survivors.is_empty(),
        "orphans after the stop: {survivors:?}\n{}",
        second.output()
    );
}

/// A manifest (YAML) as the JSON the API takes.
fn serde_saphyr_to_json(yaml: &str) -> Value {
    serde_saphyr::from_str(yaml).unwrap()
}

#[tokio::test]
async fn kill_9_then_restart_with_cgroups() {
    crash_and_recover("auto").await;
}

#[tokio::test]
async fn kill_9_then_restart_without_cgroups() {
    crash_and_recover("off").await;
}
