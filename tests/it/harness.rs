//! The integration-test harness: a real node in the test process (real processes, real
//! sockets on its own loopback /24, real cgroups where the machine allows them), manifests
//! applied through the same path as `podvisor up`, and waits that watch the store with a
//! deadline instead of sleeping.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use podvisor::daemon::{Daemon, DaemonConfig};
use podvisor::model::check::{CheckOptions, check_loaded};
use podvisor::model::env::NodeAllocatable;
use podvisor::model::image_map::ImageMap;
use podvisor::model::manifest::{self, FieldValidation};
use podvisor::node::NodeConfig;
use podvisor::runtime::CgroupMode;
use podvisor::runtime::logs::Rotation;
use podvisor::store::{DeleteOutcome, ObjectKey, Store};

/// The test application binary.
pub const TESTAPP: &str = env!("CARGO_BIN_EXE_podvisor-testapp");
/// The podvisor binary.
pub const PODVISOR: &str = env!("CARGO_BIN_EXE_podvisor");

/// A node running inside the test.
pub struct TestNode {
    daemon: Option<Daemon>,
    /// How the node was started, to start it again on the same data dir.
    config: DaemonConfig,
    pub store: Arc<Store>,
    pub dir: tempfile::TempDir,
    /// The record file every testapp process of this test appends to.
    pub record: PathBuf,
}

/// Options of a test node.
pub struct NodeOptions {
    /// Start the API (on a free port) too.
    pub api: bool,
    pub cgroups: CgroupMode,
    pub max_backoff: Duration,
    pub image_map: Option<ImageMap>,
    /// Wait for the gateway before stopping a deleted pod (false: `--unordered-termination`).
    pub ordered_termination: bool,
    /// Run the Deployment and ReplicaSet controllers (API semantics tests turn them off).
    pub workload_controllers: bool,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            api: false,
            cgroups: CgroupMode::Auto,
            max_backoff: Duration::from_secs(300),
            image_map: None,
            ordered_termination: true,
            workload_controllers: true,
        }
    }
}

/// A loopback /24 of its own for this test process, so parallel tests never share pod IPs.
pub fn test_cidr() -> String {
    let pid = std::process::id();
    format!("127.{}.{}.0/24", 100 + (pid / 256) % 150, pid % 256)
}

/// The node address of this test process (`--node-address`: NodePort and LoadBalancer
/// listeners, `status.hostIP`): the last address of its [`test_cidr`], which pods (given
/// addresses from the bottom) never reach in a test.
pub fn test_node_address() -> std::net::Ipv4Addr {
    format!("{}254", test_cidr().trim_end_matches("0/24"))
        .parse()
        .unwrap()
}

/// A loopback /24 for Service cluster IPs of this test process, disjoint from every
/// [`test_cidr`] (second octet 250 to 255).
pub fn test_service_cidr() -> String {
    let pid = std::process::id();
    format!("127.{}.{}.0/24", 250 + (pid / 256) % 6, pid % 256)
}

impl TestNode {
    pub async fn start() -> TestNode {
        TestNode::start_with(NodeOptions::default()).await
    }

    pub async fn start_with(options: NodeOptions) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("record");
        let config = DaemonConfig {
            data_dir: dir.path().join("data"),
            node: NodeConfig {
                node_name: "test-node".to_owned(),
                host_ip: test_node_address(),
                pod_cidr: test_cidr().parse().unwrap(),
                service_cidr: test_service_cidr().parse().unwrap(),
                image_map: options.image_map.map(Arc::new),
                max_container_backoff: options.max_backoff,
                allocatable: NodeAllocatable {
                    cpu_millis: 2000,
                    memory_bytes: 1 << 30,
                    ephemeral_storage_bytes: 1 << 34,
                },
                endpoint_barrier: options
                    .ordered_termination
                    .then_some(Duration::from_secs(2)),
            },
            cgroups: options.cgroups,
            log_rotation: Rotation::default(),
            api_port: options.api.then_some(0),
            workload_controllers: options.workload_controllers,
        };
        let mut daemon = Daemon::start(config.clone()).unwrap();
        daemon.run().await.unwrap();
        TestNode {
            store: daemon.store.clone(),
            daemon: Some(daemon),
            config,
            dir,
            record,
        }
    }

    /// Stops the node (grace 1 for whatever still runs) and starts it again on the same data
    /// dir, as a second `podvisor up` would. The API (if any) comes back on another port.
    pub async fn restart(mut self) -> TestNode {
        let daemon = self.daemon.take().unwrap();
        daemon.shutdown(2);
        daemon.wait().await;
        let mut daemon = Daemon::start(self.config.clone()).unwrap();
        daemon.run().await.unwrap();
        self.store = daemon.store.clone();
        self.daemon = Some(daemon);
        self
    }

    /// Applies YAML through the same decode, defaults and validation as `podvisor up`,
    /// after replacing `$TESTAPP` and `$RECORD`. Panics on any validation error.
    pub fn apply(&self, yaml: &str) {
        let yaml = self.expand(yaml);
        let loaded = vec![manifest::parse("test.yaml", yaml.as_bytes())];
        let report = check_loaded(
            loaded,
            &CheckOptions {
                validation: FieldValidation::Strict,
                image_map: None,
                missing_image_is_error: true,
            },
        );
        assert!(!report.has_errors(), "invalid test manifest: {report}");
        let objects: Vec<_> = report.objects().cloned().collect();
        self.daemon.as_ref().unwrap().apply(objects).unwrap();
    }

    pub fn expand(&self, text: &str) -> String {
        text.replace("$TESTAPP", TESTAPP)
            .replace("$RECORD", &self.record.to_string_lossy())
            .replace("$DIR", &self.dir.path().to_string_lossy())
    }

    /// The node address (NodePort and LoadBalancer listeners, `status.hostIP`).
    pub fn node_address(&self) -> std::net::Ipv4Addr {
        self.config.node.host_ip
    }

    pub fn pod(&self, name: &str) -> Option<Arc<Pod>> {
        self.store.get_pod(&ObjectKey::new("default", name))
    }

    /// Waits until the pod satisfies `pred` (checked on every change), or panics after
    /// `timeout` with the last state seen.
    pub async fn wait_pod(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Pod) -> bool,
    ) -> Arc<Pod> {
        let deadline = Instant::now() + timeout;
        let (_, mut rx) = self.store.watch();
        loop {
            if let Some(p) = self.pod(name)
                && pred(&p)
            {
                return p;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "timed out after {timeout:?} waiting for pod {name} to be {what}; last: {}",
                    self.pod(name)
                        .map(|p| serde_json::to_string_pretty(&p.status).unwrap())
                        .unwrap_or_else(|| "gone".to_owned())
                );
            }
            // Any change (or the deadline) re-checks.
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), rx.recv()).await;
        }
    }

    pub async fn wait_phase(&self, name: &str, phase: &str, timeout: Duration) -> Arc<Pod> {
        self.wait_pod(name, timeout, phase, |p| phase_of(p) == phase)
            .await
    }

    /// Waits until every container of the pod is running (postStart done).
    pub async fn wait_running(&self, name: &str, timeout: Duration) -> Arc<Pod> {
        self.wait_pod(name, timeout, "running", |p| {
            let statuses = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref());
            statuses.is_some_and(|cs| {
                !cs.is_empty()
                    && cs
                        .iter()
                        .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
            })
        })
        .await
    }

    pub async fn wait_gone(&self, name: &str, timeout: Duration) {
        self.wait_pod_absent(name, timeout).await;
    }

    async fn wait_pod_absent(&self, name: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (_, mut rx) = self.store.watch();
        while self.pod(name).is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "pod {name} still exists after {timeout:?}");
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), rx.recv()).await;
        }
    }

    /// A graceful delete with `grace` (`DeleteOptions.gracePeriodSeconds`).
    pub fn delete(&self, name: &str, grace: Option<i64>) -> DeleteOutcome {
        self.store
            .delete_pod(&ObjectKey::new("default", name), grace)
            .unwrap()
    }

    /// Events about the pod, oldest first.
    pub fn events(&self, name: &str) -> Vec<Event> {
        self.store
            .list_events()
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .collect()
    }

    pub fn has_event(&self, name: &str, reason: &str, message: &str) -> bool {
        self.events(name).iter().any(|e| {
            e.reason.as_deref() == Some(reason)
                && e.message.as_deref().unwrap_or("").contains(message)
        })
    }

    pub async fn wait_event(&self, name: &str, reason: &str, message: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (_, mut rx) = self.store.watch();
        while !self.has_event(name, reason, message) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no event {reason} {message:?} for {name} after {timeout:?}; events: {:#?}",
                self.events(name)
                    .iter()
                    .map(|e| format!("{:?} {:?}", e.reason, e.message))
                    .collect::<Vec<_>>()
            );
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), rx.recv()).await;
        }
    }

    /// The record file's lines.
    pub fn records(&self) -> Vec<Record> {
        read_records(&self.record)
    }

    /// Waits until a record line matches.
    pub async fn wait_record(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Record) -> bool,
    ) -> Record {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.records().into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no record {what} after {timeout:?}; records:\n{}",
                self.records()
                    .iter()
                    .map(|r| r.line.clone())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Node shutdown as on a first Ctrl-C (every pod terminated with its own grace), then the
    /// same checks as `stop`.
    /// Returns the record file's final lines (the file goes with the node's temp dir).
    pub async fn stop_gracefully(mut self) -> Vec<Record> {
        let daemon = self.daemon.take().unwrap();
        daemon.shutdown(1);
        daemon.wait().await;
        assert_no_recorded_process_alive(&self.record);
        self.records()
    }

    /// Stops the node (grace 1 for whatever still runs), then checks that no process any
    /// testapp of this test recorded is alive.
    pub async fn stop(mut self) {
        let daemon = self.daemon.take().unwrap();
        daemon.shutdown(2);
        daemon.wait().await;
        assert_no_recorded_process_alive(&self.record);
    }
}

impl Drop for TestNode {
    /// A test that panicked before `stop` still must not leave processes behind.
    fn drop(&mut self) {
        if self.daemon.is_some() {
            for pid in recorded_pids(&self.record) {
                kill(pid);
            }
        }
    }
}

/// One line of the record file.
#[derive(Clone, Debug)]
pub struct Record {
    pub time_ns: u128,
    pub name: String,
    pub event: String,
    pub fields: Vec<(String, String)>,
    pub line: String,
}

impl Record {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn is(&self, name: &str, event: &str) -> bool {
        self.name == name && self.event == event
    }

    /// Seconds from `earlier` to this record.
    pub fn secs_after(&self, earlier_ns: u128) -> f64 {
        (self.time_ns as f64 - earlier_ns as f64) / 1e9
    }
}

pub fn read_records(path: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let time_ns = parts.next()?.parse().ok()?;
            let name = parts.next()?.to_owned();
            let event = parts.next()?.to_owned();
            let fields = parts
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            Some(Record {
                time_ns,
                name,
                event,
                fields,
                line: line.to_owned(),
            })
        })
        .collect()
}

/// Every pid a testapp recorded (`started`, `grandchild`, exec `hook`).
pub fn recorded_pids(path: &Path) -> BTreeSet<i32> {
    read_records(path)
        .iter()
        .filter(|r| matches!(r.event.as_str(), "started" | "grandchild" | "hook"))
        .filter_map(|r| r.get("pid")?.parse().ok())
        .collect()
}

/// Whether a process is alive (a zombie counts as dead).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 2..].chars().next())
                .unwrap_or('Z');
            state != 'Z' && state != 'X'
        }
        Err(_) => false,
    }
}

fn kill(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid)
        && alive(pid.as_raw_nonzero().get())
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Asserts that no process recorded in `record` is alive (checked through /proc).
pub fn assert_no_recorded_process_alive(record: &Path) {
    let survivors: Vec<i32> = recorded_pids(record)
        .into_iter()
        .filter(|p| alive(*p))
        .collect();
    for pid in &survivors {
        kill(*pid);
    }
    assert!(
        survivors.is_empty(),
        "processes survived their pod: {survivors:?}"
    );
}

pub fn phase_of(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The status of container `name`.
pub fn container_status<'a>(p: &'a Pod, name: &str) -> &'a ContainerStatus {
    let s = p.status.as_ref().expect("status");
    s.container_statuses
        .iter()
        .flatten()
        .chain(s.init_container_statuses.iter().flatten())
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no status for container {name}"))
}

/// The container's restart count, 0 while it has no status yet.
pub fn restart_count(p: &Pod, name: &str) -> i32 {
    p.status
        .as_ref()
        .into_iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        })
        .find(|c| c.name == name)
        .map_or(0, |c| c.restart_count)
}

/// `(exit code, reason)` of the container's current state, if terminated.
pub fn terminated(p: &Pod, name: &str) -> Option<(i32, String)> {
    let t = container_status(p, name)
        .state
        .as_ref()?
        .terminated
        .as_ref()?;
    Some((t.exit_code, t.reason.clone().unwrap_or_default()))
}

/// Now, as the record file's clock (Unix nanoseconds).
pub fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

pub const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Watches a process and resolves to the time it died (Unix nanoseconds, polled every 2 ms):
/// status timestamps have whole-second precision, as Kubernetes' do.
pub fn death_watch(pid: i32) -> tokio::task::JoinHandle<u128> {
    tokio::spawn(async move {
        loop {
            if !alive(pid) {
                return now_ns();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
}

/// The `pid=` of a record.
pub fn pid_of(record: &Record) -> i32 {
    record
        .get("pid")
        .and_then(|p| p.parse().ok())
        .expect("a pid field")
}
