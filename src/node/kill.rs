//! Stopping one container: the kubelet's `killContainer` and the runtime's `StopContainer`,
//! and the sidecar termination ordering (spec §1.5 to §1.7, §11.3).
//!
//! `kill_container` owns everything it needs (no borrow of the worker), so the worker can run
//! several in parallel, keep handling messages meanwhile, and drop them all to start over with
//! a shorter grace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::sync::watch;

use super::NodeContext;
use crate::hooks::{self, HookTarget};
use crate::lifecycle::ContainerKind;
use crate::lifecycle::events::{self, EventType};
use crate::lifecycle::grace::{self, KillReason};
use crate::runtime::ContainerProcess;

/// A live container instance as the worker tracks it.
pub struct RunningInstance {
    pub process: Arc<ContainerProcess>,
    /// `lifecycle.stopSignal`, else the image map's, else SIGTERM.
    pub stop_signal: i32,
    pub restart_count: i32,
}

/// SIGKILL deadlines per container instance, shared across re-runs of a termination: a re-run may
/// bring a deadline forward, never push it back.
#[derive(Clone, Default)]
pub struct Deadlines(Arc<Mutex<HashMap<String, Instant>>>);

impl Deadlines {
    /// The earlier of the recorded deadline and `proposed`, recorded.
    fn clamp(&self, container: &str, proposed: Instant) -> Instant {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(container.to_owned()).or_insert(proposed);
        if proposed < *entry {
            *entry = proposed;
        }
        *entry
    }
}

/// Background hook tasks the worker aborts when the pod is gone (a preStop hook that outlives
/// its grace keeps running, as upstream's goroutine does, but not forever).
#[derive(Clone, Default)]
pub struct HookTasks(Arc<Mutex<Vec<tokio::task::AbortHandle>>>);

impl HookTasks {
    fn push(&self, handle: tokio::task::AbortHandle) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        v.retain(|h| !h.is_finished());
        v.push(handle);
    }

    pub fn abort_all(&self) {
        for h in self.0.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            h.abort();
        }
    }
}

/// What `kill_container` acts on.
pub struct KillTarget {
    pub pod: Arc<Pod>,
    pub container: Container,
    pub kind: ContainerKind,
    pub instance: Arc<RunningInstance>,
    pub pod_ip: String,
}

/// How to kill it.
pub struct KillOptions {
    /// The `Killing` event message; None for `Stopping container <name>`.
    pub message: Option<String>,
    pub reason: KillReason,
    /// The pod-level grace on the termination path (always set there, as upstream).
    pub grace_override: Option<i64>,
    pub ordering: Option<Arc<TerminationOrdering>>,
}

/// `killContainer`: `Killing` event, preStop bounded by the grace (whole seconds subtracted),
/// the sidecar ordering wait, the 2 s floor, the stop signal, SIGKILL of everything at the
/// deadline. Returns once no process of the container is left.
pub async fn kill_container(
    ctx: Arc<NodeContext>,
    target: KillTarget,
    options: KillOptions,
    deadlines: Deadlines,
    hook_tasks: HookTasks,
) {
    let name = target.container.name.clone();
    let mut grace = grace::container_kill_grace(&target.pod, &target.container, options.reason);
    let message = options
        .message
        .unwrap_or_else(|| events::stopping_message(&name));
    ctx.recorder.container(
        &target.pod,
        &name,
        target.kind,
        EventType::Normal,
        events::KILLING,
        &message,
    );
    if let Some(o) = options.grace_override {
        grace = o;
    }
    let process = target.instance.process.clone();
    let pre_stop = target
        .container
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.clone());
    if let Some(handler) = pre_stop.filter(|_| grace > 0 && process.exit_info().is_none()) {
        let started = Instant::now();
        tracing::debug!(target: "podvisor::latency", step = "prestop-spawn", container = %name);
        let hook = {
            let ctx = ctx.clone();
            let pod = target.pod.clone();
            let container = target.container.clone();
            let process = process.clone();
            let pod_ip = target.pod_ip.clone();
            let kind = target.kind;
            tokio::spawn(async move {
                let t = HookTarget {
                    runtime: &ctx.runtime,
                    pod: &pod,
                    container: &container,
                    process: &process,
                    pod_ip: &pod_ip,
                };
                tracing::debug!(target: "podvisor::latency", step = "prestop-task", pod = %events::format_pod(&pod), container = %container.name);
                match hooks::run_handler(&t, &handler).await {
                    Ok(success) => {
                        if let Some(msg) = success.http_fallback {
                            ctx.recorder.container(
                                &pod,
                                &container.name,
                                kind,
                                EventType::Warning,
                                events::LIFECYCLE_HTTP_FALLBACK,
                                &msg,
                            );
                        }
                    }
                    Err(error) => {
                        tracing::warn!(pod = %events::format_pod(&pod), container = %container.name, %error, "preStop hook failed");
                        ctx.recorder.container(
                            &pod,
                            &container.name,
                            kind,
                            EventType::Warning,
                            events::FAILED_PRE_STOP_HOOK,
                            events::PRE_STOP_HOOK_FAILED,
                        );
                    }
                }
            })
        };
        hook_tasks.push(hook.abort_handle());
        tokio::select! {
            _ = hook => {}
            () = tokio::time::sleep(Duration::from_secs(grace as u64)) => {
                // Not cancelled: the hook keeps running until the container is gone.
            }
            _ = process.wait() => {}
        }
        grace -= started.elapsed().as_secs() as i64;
    }
    if let Some(ordering) = &options.ordering
        && grace > 0
    {
        grace -= ordering.wait_for_turn(&name, grace).await.as_secs() as i64;
    }
    let grace = grace.max(grace::MINIMUM_GRACE_PERIOD_IN_SECONDS);
    // Deadlines belong to one instance: a restarted container starts with none.
    let key = format!("{name}#{}", target.instance.restart_count);
    stop_container(&target.instance, &key, grace, &deadlines).await;
    if let Some(ordering) = &options.ordering {
        ordering.container_terminated(&name);
    }
}

/// The runtime's `StopContainer(timeout)`: the stop signal to the main process, then, at the
/// deadline, SIGKILL to every process of the container.
async fn stop_container(instance: &RunningInstance, name: &str, grace: i64, deadlines: &Deadlines) {
    let process = &instance.process;
    let deadline = deadlines.clamp(name, Instant::now() + Duration::from_secs(grace as u64));
    if process.exit_info().is_none()
        && let Err(error) = process.signal(instance.stop_signal)
    {
        tracing::warn!(container = name, %error, "cannot send the stop signal");
    }
    tokio::select! {
        _ = process.wait() => return,
        () = tokio::time::sleep_until(deadline.into()) => {}
    }
    process.kill_all();
    process.wait().await;
}

/// `terminationOrdering`: sidecars wait for main containers and for later sidecars.
pub struct TerminationOrdering {
    /// Whom each container waits for.
    prerequisites: HashMap<String, Vec<String>>,
    /// Set to true when a container has stopped (pre-set for containers not running).
    done: HashMap<String, watch::Sender<bool>>,
}

impl TerminationOrdering {
    pub fn new(prerequisites: Vec<(String, Vec<String>)>, running: &[String]) -> Arc<Self> {
        let done = prerequisites
            .iter()
            .map(|(name, _)| {
                let (tx, _) = watch::channel(!running.contains(name));
                (name.clone(), tx)
            })
            .collect();
        Arc::new(TerminationOrdering {
            prerequisites: prerequisites.into_iter().collect(),
            done,
        })
    }

    /// `waitForTurn`: waits for the container's prerequisites, at most `grace` seconds;
    /// returns how long it waited.
    pub async fn wait_for_turn(&self, name: &str, grace: i64) -> Duration {
        let started = Instant::now();
        if grace <= 0 {
            return Duration::ZERO;
        }
        let waits = self
            .prerequisites
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|p| self.done.get(p))
            .map(|tx| {
                let mut rx = tx.subscribe();
                async move {
                    // Why ignored: a dropped sender means the ordering is gone; stop waiting.
                    let _ = rx.wait_for(|d| *d).await;
                }
            });
        let all = futures_util::future::join_all(waits);
        let _ = tokio::time::timeout(Duration::from_secs(grace as u64), all).await;
        started.elapsed()
    }

    /// `containerTerminated`.
    pub fn container_terminated(&self, name: &str) {
        if let Some(tx) = self.done.get(name) {
            tx.send_replace(true);
        }
    }
}
