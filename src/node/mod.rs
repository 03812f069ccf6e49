//! The node: a sync loop that watches pods in the store and one `PodWorker` per pod, the
//! kubelet's pod workers. The only module that calls `runtime`.
//!
//! The sync loop routes every pod change to its worker by uid, creates workers for new pods,
//! and at node shutdown tells every worker to terminate (a second signal lowers every grace to
//! 1 s). A worker owns everything about its pod (processes, backoff, hooks) and writes the
//! pod's status and events to the store; see `worker` for its loop and ARCHITECTURE.md
//! "Pod lifecycle" for the timeline.
//!
//! Must not: be called by `api` or the gateway; they read and write the store only.

pub mod ipam;
pub mod kill;
pub mod launch;
pub mod prober;
mod worker;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use crate::lifecycle::ContainerKind;
use crate::lifecycle::events::{self, EventType};
use crate::model::env::NodeAllocatable;
use crate::model::image_map::ImageMap;
use crate::runtime::Runtime;
use crate::store::events::{Source, object_event, pod_event, pod_reference};
use crate::store::{Change, ChangeType, ObjectKey, Store};

use self::ipam::{Cidr, Ipam};
use self::worker::{PodMsg, PodWorker};

/// Node settings.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// `spec.nodeName` of the pods it runs, and the events' source host.
    pub node_name: String,
    /// The node address (`status.hostIP`).
    pub host_ip: Ipv4Addr,
    /// Where pod IPs come from.
    pub pod_cidr: Cidr,
    /// Where Service cluster IPs come from (`--service-cidr`).
    pub service_cidr: Cidr,
    /// How images map to host commands.
    pub image_map: Option<Arc<ImageMap>>,
    /// The CrashLoopBackOff maximum (KEP-4603), 1 to 300 s.
    pub max_container_backoff: Duration,
    /// For `resourceFieldRef` when a container sets no limit.
    pub allocatable: NodeAllocatable,
    /// How long a deleted pod's worker waits for every gateway listener to stop sending it
    /// new traffic before preStop (DESIGN.md step 2); None: `--unordered-termination`,
    /// upstream's race.
    pub endpoint_barrier: Option<Duration>,
}

/// The gateway as the termination barrier sees it (DESIGN.md "The termination order", step
/// 2). Implemented by the daemon over the gateway, so the node knows nothing of listeners.
pub trait Routing: Send + Sync {
    /// Whether any listener has an endpoint at `ip` (in any state).
    fn routes_to(&self, ip: IpAddr) -> bool;
    /// Whether any listener may still send new traffic to `ip`: an endpoint there is ready,
    /// or a request that picked it while it was ready has not reached the app yet.
    fn routes_new_traffic_to(&self, ip: IpAddr) -> bool;
    /// Changes (a new value) whenever `routes_new_traffic_to` may have changed.
    fn applied(&self) -> watch::Receiver<u64>;
    /// Reports how long a barrier took (and whether it was confirmed or timed out).
    fn barrier_done(&self, took: Duration, confirmed: bool);
}

/// What workers share.
pub struct NodeContext {
    pub config: NodeConfig,
    pub store: Arc<Store>,
    pub runtime: Arc<Runtime>,
    pub recorder: Recorder,
    pub ipam: Mutex<Ipam>,
    /// The gateway, for the termination barrier; None on a node without one.
    pub routing: Option<Arc<dyn Routing>>,
    /// Container starts in flight (`MAX_CONCURRENT_STARTS`), each on a blocking thread.
    pub starts: tokio::sync::Semaphore,
}

/// How many container starts run at once. A start (cgroup, log file, fork and exec) blocks
/// its thread for milliseconds and spawns are serialised by the runtime's lock anyway; run on
/// the async threads, 1,000 starting pods kept the API from answering for the whole start-up
/// (BENCHMARKS.md "Scale"). Two: one spawning while the next prepares its cgroup and log.
pub const MAX_CONCURRENT_STARTS: usize = 2;

/// How far node shutdown has gone: 0 running, 1 terminate every pod gracefully, 2 (second
/// signal) terminate with a grace of 1 s.
pub type ShutdownLevel = u8;

/// Emits events into the store, as the kubelet's recorder.
pub struct Recorder {
    store: Arc<Store>,
    kubelet: Source,
    scheduler: Source,
}

impl Recorder {
    pub fn new(store: Arc<Store>, node_name: &str) -> Self {
        Recorder {
            store,
            kubelet: Source {
                component: "kubelet".to_owned(),
                host: Some(node_name.to_owned()),
            },
            scheduler: Source {
                component: "default-scheduler".to_owned(),
                host: None,
            },
        }
    }

    /// An event about the pod as a whole.
    pub fn pod(&self, pod: &Pod, type_: EventType, reason: &str, message: &str) {
        tracing::debug!(pod = %events::format_pod(pod), reason, message, "event");
        self.store.record_event(pod_event(
            pod,
            None,
            type_.as_str(),
            reason,
            message,
            &self.kubelet,
        ));
    }

    /// An event about one container (`fieldPath: spec.containers{app}`).
    pub fn container(
        &self,
        pod: &Pod,
        container: &str,
        kind: ContainerKind,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        self.container_of(&pod_reference(pod), container, kind, type_, reason, message);
    }

    /// `container` for a pod known only by its reference (`store::events::pod_reference`),
    /// as probe workers keep it.
    pub fn container_of(
        &self,
        pod: &ObjectReference,
        container: &str,
        kind: ContainerKind,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        tracing::debug!(
            pod = %format_args!(
                "{}_{}({})",
                pod.name.as_deref().unwrap_or_default(),
                pod.namespace.as_deref().unwrap_or("default"),
                pod.uid.as_deref().unwrap_or_default()
            ),
            container,
            reason,
            message,
            "event"
        );
        let list = if kind.is_init_list() {
            "initContainers"
        } else {
            "containers"
        };
        let involved = ObjectReference {
            field_path: Some(format!("spec.{list}{{{container}}}")),
            ..pod.clone()
        };
        self.store.record_event(object_event(
            involved,
            type_.as_str(),
            reason,
            message,
            &self.kubelet,
        ));
    }

    fn scheduled(&self, pod: &Pod, node: &str) {
        let message = events::scheduled_message(
            pod.metadata.namespace.as_deref().unwrap_or("default"),
            pod.metadata.name.as_deref().unwrap_or_default(),
            node,
        );
        self.store.record_event(pod_event(
            pod,
            None,
            "Normal",
            events::SCHEDULED,
            &message,
            &self.scheduler,
        ));
    }
}

/// The node: call `run` to sync pods until shutdown.
pub struct Node {
    ctx: Arc<NodeContext>,
}

struct WorkerHandle {
    tx: mpsc::UnboundedSender<PodMsg>,
}

impl Node {
    pub fn new(config: NodeConfig, store: Arc<Store>, runtime: Arc<Runtime>) -> Node {
        let recorder = Recorder::new(store.clone(), &config.node_name);
        let ipam = Mutex::new(Ipam::new(config.pod_cidr));
        Node {
            ctx: Arc::new(NodeContext {
                config,
                store,
                runtime,
                recorder,
                ipam,
                routing: None,
                starts: tokio::sync::Semaphore::new(MAX_CONCURRENT_STARTS),
            }),
        }
    }

    /// Gives the pod workers the gateway's view for the termination barrier.
    pub fn with_routing(mut self, routing: Arc<dyn Routing>) -> Node {
        if let Some(ctx) = Arc::get_mut(&mut self.ctx) {
            ctx.routing = Some(routing);
        }
        self
    }

    pub fn context(&self) -> &Arc<NodeContext> {
        &self.ctx
    }

    /// Runs pod workers for the store's pods until `shutdown` reaches 1 and every worker has
    /// finished terminating its pod. Returns then; no process of any pod is left.
    pub async fn run(self, mut shutdown: watch::Receiver<ShutdownLevel>) {
        let (snapshot, mut changes) = self.ctx.store.watch();
        let mut workers: HashMap<String, WorkerHandle> = HashMap::new();
        // Pods whose worker finished while the object stays (terminal, or node shutdown):
        // late changes of them must not start a new worker.
        let mut finished: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut tasks: JoinSet<(String, ObjectKey)> = JoinSet::new();
        let mut level: ShutdownLevel = *shutdown.borrow();
        for change in snapshot {
            if let Some(pod) = change.pod() {
                self.dispatch(
                    &mut workers,
                    &finished,
                    &mut tasks,
                    pod,
                    ChangeType::Modified,
                    level,
                );
            }
        }
        loop {
            if level > 0 && workers.is_empty() {
                break;
            }
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(change) if change.resource == &crate::store::resources::PODS => {
                        tracing::debug!(target: "podvisor::latency", step = "node-wake", rv = change.resource_version);
                        let change_type = change.change_type;
                        let Some(pod) = change.pod() else { continue };
                        if change_type == ChangeType::Deleted
                            && let Some(uid) = &pod.metadata.uid
                        {
                            finished.remove(uid);
                        }
                        self.dispatch(&mut workers, &finished, &mut tasks, pod, change_type, level);
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "pod watch lagged; resyncing");
                        let (snapshot, rx) = self.ctx.store.watch();
                        changes = rx;
                        self.resync(&mut workers, &finished, &mut tasks, snapshot, level);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                Some(done) = tasks.join_next() => {
                    match done {
                        Ok((uid, key)) => {
                            workers.remove(&uid);
                            // One lookup by key: listing every pod here made stopping n pods
                            // take O(n²) (41 s for 1000 pods).
                            let still_stored = self.ctx.store.get_pod(&key).is_some_and(|p| {
                                p.metadata.uid.as_deref() == Some(uid.as_str())
                            });
                            if still_stored {
                                finished.insert(uid);
                            }
                        }
                        Err(error) => tracing::error!(%error, "a pod worker panicked"),
                    }
                }
                changed = shutdown.changed() => {
                    let new_level = if changed.is_ok() { *shutdown.borrow() } else { level.max(1) };
                    if new_level > level {
                        level = new_level;
                        let grace_override = (level >= 2).then_some(1);
                        tracing::info!(level, pods = workers.len(), "node shutdown: terminating pods");
                        for w in workers.values() {
                            // Why ignored: a worker that already ended has nothing to stop.
                            let _ = w.tx.send(PodMsg::NodeShutdown { grace_override });
                        }
                    }
                }
            }
        }
        // Workers end only after their pods' processes are gone; wait for stragglers.
        while tasks.join_next().await.is_some() {}
    }

    fn dispatch(
        &self,
        workers: &mut HashMap<String, WorkerHandle>,
        finished: &std::collections::HashSet<String>,
        tasks: &mut JoinSet<(String, ObjectKey)>,
        pod: Arc<Pod>,
        change: ChangeType,
        level: ShutdownLevel,
    ) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        if let Some(w) = workers.get(&uid) {
            let msg = if change == ChangeType::Deleted {
                PodMsg::Removed
            } else {
                PodMsg::Update(pod)
            };
            // Why ignored: the worker is finishing; it will be removed on join.
            let _ = w.tx.send(msg);
            return;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if change == ChangeType::Deleted
            || level > 0
            || finished.contains(&uid)
            || matches!(phase, Some("Succeeded" | "Failed"))
        {
            return;
        }
        // A pod no worker has touched yet (no start time) was just bound to this node.
        if pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .is_none()
        {
            self.ctx
                .recorder
                .scheduled(&pod, &self.ctx.config.node_name);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let task_key = ObjectKey::of_pod(&pod);
        let worker = PodWorker::new(self.ctx.clone(), pod, rx, tx.clone());
        let task_uid = uid.clone();
        // `map`, not an `async` block that awaits `worker.run()`: the block would hold the
        // worker it moves into `run` as well as `run`'s own copy, in every idle task.
        tasks.spawn(worker.run().map(move |()| (task_uid, task_key)));
        workers.insert(uid, WorkerHandle { tx });
    }

    fn resync(
        &self,
        workers: &mut HashMap<String, WorkerHandle>,
        finished: &std::collections::HashSet<String>,
        tasks: &mut JoinSet<(String, ObjectKey)>,
        snapshot: Vec<Change>,
        level: ShutdownLevel,
    ) {
        let mut present = std::collections::HashSet::new();
        for change in snapshot {
            if let Some(pod) = change.pod() {
                if let Some(uid) = &pod.metadata.uid {
                    present.insert(uid.clone());
                }
                self.dispatch(workers, finished, tasks, pod, ChangeType::Modified, level);
            }
        }
        for (uid, w) in workers.iter() {
            if !present.contains(uid) {
                let _ = w.tx.send(PodMsg::Removed);
            }
        }
    }
}
