//! One pod's worker: the kubelet's pod worker, `SyncPod` and `SyncTerminatingPod` for one pod.
//!
//! The worker owns all mutable state of its pod. Its life has three parts:
//! 1. **sync**: ask `lifecycle::compute_pod_actions` what to do, do it (start a container and
//!    wait for its postStart hook, kill one whose definition changed), publish the status,
//!    wait for the next message, exit or back-off expiry, repeat;
//! 2. **terminate** (deletion, force removal, node shutdown, or every container done): kill
//!    every running container in parallel (`kill::kill_container`), starting over when the
//!    grace shrinks;
//! 3. **finish**: the terminal status, cgroups and IP released, the object removed from the
//!    store if it was deleted.
//!
//! Step 2 of the termination order in DESIGN.md (the gateway barrier) belongs at the start of
//! `terminate`, before any preStop hook runs; the Services issue adds it there.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, PodStatus};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::NodeContext;
use super::kill::{
    Deadlines, HookTasks, KillOptions, KillTarget, RunningInstance, TerminationOrdering,
    kill_container,
};
use super::launch;
use super::prober::{ProbeControl, ProbeUpdate, ProbeWorker};
use crate::hooks::{self, HookTarget};
use crate::lifecycle::actions::{BackOffWait, KillAction, back_off_key, back_off_message};
use crate::lifecycle::container::{Instance, container_hash, container_spec};
use crate::lifecycle::events::{self, EventType};
use crate::lifecycle::ordering::termination_prerequisites;
use crate::lifecycle::probe::{ProbeKind, ProbeResult};
use crate::lifecycle::status::{StatusContext, pod_status};
use crate::lifecycle::{
    Backoff, ContainerKind, InstanceState, KillReason, PodObservation, StartFailure, Terminated,
    compute_pod_actions, effective_pod_grace,
};
use crate::runtime::{ExitInfo, StartRequest};
use crate::store::ObjectKey;

/// How long a container whose configuration cannot be built waits before the next attempt
/// (the kubelet's pod worker requeue period).
const CONFIG_ERROR_RETRY: Duration = Duration::from_secs(10);
/// How long a pod waits for a free IP before trying again.
const IP_RETRY: Duration = Duration::from_secs(5);

/// Everything that can happen to a pod, in the order its worker sees it.
#[derive(Debug)]
pub enum PodMsg {
    /// A new version of the pod object (spec change, deletion timestamp, status written back).
    Update(Arc<Pod>),
    /// The object was removed from the store while the pod still ran (a force delete).
    Removed,
    /// The node is shutting down; a second shutdown message lowers the grace to 1 s.
    NodeShutdown { grace_override: Option<i64> },
    /// A probe's cached result changed.
    Probe(ProbeUpdate),
}

/// Why the pod terminates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    Deleted,
    Removed,
    NodeShutdown,
    /// Every regular container finished and none restarts.
    Done,
}

/// How a postStart hook ended.
enum PostStart {
    Succeeded(hooks::HookSuccess),
    Failed(String),
    /// Termination was requested while the hook ran; the hook was cancelled (unlike upstream
    /// bug #116032, where deletion waits for a hanging hook forever).
    Cancelled,
}

pub struct PodWorker {
    ctx: Arc<NodeContext>,
    key: ObjectKey,
    uid: String,
    /// The latest version of the pod object.
    pod: Arc<Pod>,
    mailbox: mpsc::UnboundedReceiver<PodMsg>,
    /// The worker's own mailbox sender, handed to its probe workers.
    sender: mpsc::UnboundedSender<PodMsg>,
    observed: PodObservation,
    /// Live container instances by container name.
    running: HashMap<String, Arc<RunningInstance>>,
    /// One waiter per started instance: `(container, restartCount, exit)`.
    exits: JoinSet<(String, i32, ExitInfo)>,
    backoff: Backoff,
    /// The back-off end last reported with a `BackOff` event, per container.
    back_off_reported: HashMap<String, Instant>,
    /// Containers whose configuration failed, and when to try again.
    retry_at: HashMap<String, Instant>,
    pod_ip: Option<Ipv4Addr>,
    start_time: Timestamp,
    /// The status last written to the store.
    status: Option<PodStatus>,
    /// The object is gone from the store.
    removed: bool,
    /// Node shutdown requested, with its grace override.
    shutdown: Option<Option<i64>>,
    /// Termination finished: no process of the pod is left.
    terminal: bool,
    /// A pod-level status reason and message (node shutdown).
    status_reason: Option<(&'static str, &'static str)>,
    deadlines: Deadlines,
    hook_tasks: HookTasks,
    /// Probe workers of the running instances.
    probe_tasks: JoinSet<()>,
    /// Per container: the instance its probes watch, their control channel and tasks.
    probes: HashMap<String, Probes>,
}

/// The probe workers of one container instance.
struct Probes {
    restart_count: i32,
    control: tokio::sync::watch::Sender<ProbeControl>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl PodWorker {
    pub fn new(
        ctx: Arc<NodeContext>,
        pod: Arc<Pod>,
        mailbox: mpsc::UnboundedReceiver<PodMsg>,
        sender: mpsc::UnboundedSender<PodMsg>,
    ) -> Self {
        let backoff = Backoff::new(ctx.config.max_container_backoff);
        PodWorker {
            key: ObjectKey::of_pod(&pod),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            observed: PodObservation::for_pod(&pod),
            ctx,
            pod,
            mailbox,
            sender,
            running: HashMap::new(),
            exits: JoinSet::new(),
            backoff,
            back_off_reported: HashMap::new(),
            retry_at: HashMap::new(),
            pod_ip: None,
            start_time: Timestamp::now(),
            status: None,
            removed: false,
            shutdown: None,
            terminal: false,
            status_reason: None,
            deadlines: Deadlines::default(),
            hook_tasks: HookTasks::default(),
            probe_tasks: JoinSet::new(),
            probes: HashMap::new(),
        }
    }

    /// Runs the pod from creation to the end: sync, terminate, finish.
    ///
    /// Not an `async fn`: that would keep `self` as its argument and again in the block
    /// below, two copies of the worker in every idle task (~1 KB each, per pod).
    pub fn run(mut self) -> impl Future<Output = ()> + Send {
        let span = tracing::info_span!("pod", pod = %self.key);
        async move {
            let cause = self.sync_loop().await;
            tracing::info!(?cause, "terminating pod");
            if cause == Cause::NodeShutdown {
                self.status_reason = Some((
                    "Terminated",
                    "Pod was terminated in response to imminent node shutdown.",
                ));
            }
            // Boxed, as the starts and kills in `sync_loop`: a future is as large as its
            // largest state, and these (hooks, kills) made every idle worker hold ~13 KB.
            Box::pin(self.terminate()).await;
            self.finish(cause);
        }
        .instrument(span)
    }

    fn termination_cause(&self) -> Option<Cause> {
        if self.removed {
            Some(Cause::Removed)
        } else if self.pod.metadata.deletion_timestamp.is_some() {
            Some(Cause::Deleted)
        } else if self.shutdown.is_some() {
            Some(Cause::NodeShutdown)
        } else {
            None
        }
    }

    async fn sync_loop(&mut self) -> Cause {
        loop {
            if let Some(cause) = self.termination_cause() {
                return cause;
            }
            if self.pod_ip.is_none() && !self.allocate_ip() {
                self.publish();
                self.wait_event(Some(Instant::now() + IP_RETRY)).await;
                continue;
            }
            let now = Instant::now();
            let mut actions = compute_pod_actions(&self.pod, &self.observed, &self.backoff, now);
            self.note_back_offs(&actions.back_off);
            if actions.kill_pod {
                self.publish();
                return Cause::Done;
            }
            actions
                .start
                .retain(|name| self.retry_at.get(name).is_none_or(|t| *t <= now));
            let wake = actions
                .next_wake()
                .into_iter()
                .chain(self.retry_at.values().copied().filter(|t| *t > now))
                .min();
            self.publish();
            if let Some(kill) = actions.kill.first().cloned() {
                Box::pin(self.kill_one(kill)).await;
                continue;
            }
            if let Some(name) = actions.start.first().cloned() {
                Box::pin(self.start_container(&name)).await;
                continue;
            }
            self.wait_event(wake).await;
        }
    }

    fn allocate_ip(&mut self) -> bool {
        let ip = self
            .ctx
            .ipam
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allocate();
        match ip {
            Some(ip) => {
                self.pod_ip = Some(ip);
                true
            }
            None => {
                let message = format!(
                    "Failed to create pod sandbox: no free pod IP in {}",
                    self.ctx.config.pod_cidr
                );
                self.ctx.recorder.pod(
                    &self.pod,
                    EventType::Warning,
                    "FailedCreatePodSandBox",
                    &message,
                );
                false
            }
        }
    }

    /// Waits for a message, a container exit, or `wake`.
    async fn wait_event(&mut self, wake: Option<Instant>) {
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = self.mailbox.recv() => self.handle_msg(msg),
            Some(exit) = self.exits.join_next() => self.handle_exit(exit),
            () = sleep => {}
        }
    }

    fn handle_msg(&mut self, msg: Option<PodMsg>) {
        match msg {
            Some(PodMsg::Update(pod)) => self.pod = pod,
            Some(PodMsg::Removed) => self.removed = true,
            Some(PodMsg::NodeShutdown { grace_override }) => {
                let previous = self.shutdown.flatten();
                self.shutdown = Some(match (previous, grace_override) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                });
            }
            Some(PodMsg::Probe(update)) => self.handle_probe(update),
            // The node dropped us: terminate quickly.
            None => self.shutdown = Some(Some(1)),
        }
    }

    /// Applies a probe result change (the kubelet's results managers feeding
    /// `UpdatePodStatus` and `computePodActions`).
    fn handle_probe(&mut self, update: ProbeUpdate) {
        let Some(spec) = container_spec(&self.pod, &update.container).cloned() else {
            return;
        };
        let terminating = self.termination_cause().is_some();
        let Some(c) = self.observed.get_mut(&update.container) else {
            return;
        };
        let current = c.current.as_ref().map(|i| i.restart_count);
        if current != Some(update.restart_count) || !c.is_running() {
            return;
        }
        tracing::info!(container = %update.container, kind = ?update.kind, result = ?update.result, "probe result");
        match (update.kind, update.result) {
            (ProbeKind::Startup, ProbeResult::Success) => {
                c.started = true;
                c.ready = spec.readiness_probe.is_none();
                if let Some(p) = self.probes.get(&update.container) {
                    p.control.send_modify(|c| c.started = true);
                }
            }
            (ProbeKind::Startup, ProbeResult::Failure) => {
                c.probe_failure = Some(KillReason::StartupProbe);
            }
            // Liveness does not act during termination (its workers stop there).
            (ProbeKind::Liveness, ProbeResult::Failure) if !terminating => {
                c.probe_failure = Some(KillReason::LivenessProbe);
            }
            (ProbeKind::Readiness, result) => {
                c.ready = c.started && result == ProbeResult::Success;
            }
            _ => {}
        }
        self.publish();
    }

    /// Starts the probe workers of a container instance that just became Running.
    fn start_probes(&mut self, spec: &Container, instance: &Arc<RunningInstance>) {
        let started = spec.startup_probe.is_none();
        let (control, rx) = tokio::sync::watch::channel(ProbeControl {
            started,
            terminating: self.termination_cause().is_some(),
        });
        let mut tasks = Vec::new();
        let container = Arc::new(spec.clone());
        for kind in [
            ProbeKind::Startup,
            ProbeKind::Readiness,
            ProbeKind::Liveness,
        ] {
            let Some(probe) = kind.of(spec).cloned() else {
                continue;
            };
            let worker = ProbeWorker {
                ctx: self.ctx.clone(),
                pod: crate::store::events::pod_reference(&self.pod),
                container: container.clone(),
                container_kind: self.kind_of(&spec.name),
                instance: instance.clone(),
                pod_ip: self.pod_ip_string(),
                kind,
                probe,
            };
            let rx = rx.clone();
            let tx = self.sender.clone();
            tasks.push(self.probe_tasks.spawn(worker.run(rx, tx)));
        }
        self.stop_probes(&spec.name);
        self.probes.insert(
            spec.name.clone(),
            Probes {
                restart_count: instance.restart_count,
                control,
                tasks,
            },
        );
    }

    fn stop_probes(&mut self, container: &str) {
        if let Some(p) = self.probes.remove(container) {
            for t in p.tasks {
                t.abort();
            }
        }
        while self.probe_tasks.try_join_next().is_some() {}
    }

    fn handle_exit(&mut self, exit: Result<(String, i32, ExitInfo), tokio::task::JoinError>) {
        let Ok((name, restart_count, info)) = exit else {
            return;
        };
        if self
            .running
            .get(&name)
            .is_some_and(|r| r.restart_count == restart_count)
        {
            self.running.remove(&name);
        }
        let Some(c) = self.observed.get_mut(&name) else {
            return;
        };
        let Some(instance) = c
            .current
            .as_mut()
            .filter(|i| i.restart_count == restart_count)
        else {
            return;
        };
        let started_at = match &instance.state {
            InstanceState::Starting { started_at, .. }
            | InstanceState::Running { started_at, .. } => *started_at,
            InstanceState::Terminated(_) => return,
        };
        let code = info.status.code;
        tracing::info!(container = %name, exit_code = code, oom_killed = info.oom_killed, "container exited");
        instance.state = InstanceState::Terminated(Terminated {
            exit_code: code,
            signal: info.status.signal,
            reason: Terminated::reason_for(code, info.oom_killed).to_owned(),
            message: None,
            started_at: Some(started_at),
            finished_at: info.finished_at,
            finished_mono: info.finished_mono,
            container_id: instance.container_id.clone(),
        });
        c.started = false;
        c.ready = false;
        c.probe_failure = None;
        if self
            .probes
            .get(&name)
            .is_some_and(|p| p.restart_count == restart_count)
        {
            self.stop_probes(&name);
        }
        self.publish();
    }

    fn note_back_offs(&mut self, waits: &[BackOffWait]) {
        for w in waits {
            let message = back_off_message(&self.pod, &w.container, w.delay);
            if let Some(c) = self.observed.get_mut(&w.container) {
                c.start_failure = Some(StartFailure {
                    reason: "CrashLoopBackOff".to_owned(),
                    message,
                });
            }
            if self.back_off_reported.get(&w.container) != Some(&w.until) {
                self.back_off_reported.insert(w.container.clone(), w.until);
                let kind = self.kind_of(&w.container);
                self.ctx.recorder.container(
                    &self.pod,
                    &w.container,
                    kind,
                    EventType::Warning,
                    events::BACK_OFF,
                    &events::back_off_event_message(&w.container, &self.pod),
                );
            }
        }
    }

    fn kind_of(&self, name: &str) -> ContainerKind {
        self.observed
            .get(name)
            .map_or(ContainerKind::Regular, |c| c.kind)
    }

    fn pod_ip_string(&self) -> String {
        self.pod_ip.map(|ip| ip.to_string()).unwrap_or_default()
    }

    /// `startContainer`: resolve, spawn, `Created`/`Started` events, then postStart, during
    /// which the container is still reported Waiting and no other container starts.
    async fn start_container(&mut self, name: &str) {
        let Some(spec) = container_spec(&self.pod, name).cloned() else {
            return;
        };
        let kind = self.kind_of(name);
        let now = Instant::now();
        let hash = container_hash(&spec);
        let (restart_count, previous_exit) = match self.observed.get(name) {
            Some(c) if c.current.is_some() => (c.next_restart_count(), c.terminated().cloned()),
            // The first start this worker makes: earlier instances (before a node restart)
            // are known from their log files only.
            Some(_) => {
                let dir = crate::runtime::logs::pod_log_dir(
                    self.ctx.runtime.data_dir(),
                    &self.key.namespace,
                    &self.key.name,
                    &self.uid,
                )
                .join(name);
                (crate::runtime::logs::restart_count_from_logs(&dir), None)
            }
            None => return,
        };
        if let Some(t) = &previous_exit {
            let key = back_off_key(&self.pod, name, hash);
            self.backoff.next(&key, t.finished_mono, now);
        }
        let pod_ip = self.pod_ip_string();
        let launch = match launch::resolve(&self.ctx, &self.pod, &spec, &pod_ip) {
            Ok(l) => l,
            Err(message) => {
                self.ctx.recorder.container(
                    &self.pod,
                    name,
                    kind,
                    EventType::Warning,
                    events::FAILED,
                    &format!("Error: {message}"),
                );
                if let Some(c) = self.observed.get_mut(name) {
                    c.start_failure = Some(StartFailure {
                        reason: "CreateContainerConfigError".to_owned(),
                        message,
                    });
                }
                self.retry_at
                    .insert(name.to_owned(), now + CONFIG_ERROR_RETRY);
                return;
            }
        };
        self.retry_at.remove(name);
        for warning in &launch.warnings {
            self.ctx.recorder.container(
                &self.pod,
                name,
                kind,
                EventType::Warning,
                "NotEnforced",
                warning,
            );
        }
        self.ctx.recorder.container(
            &self.pod,
            name,
            kind,
            EventType::Normal,
            events::CREATED,
            &events::created_message(name),
        );
        let container_id = format!("podvisor://{}/{name}/{restart_count}", self.uid);
        let request = StartRequest {
            namespace: self.key.namespace.clone(),
            pod: self.key.name.clone(),
            pod_uid: self.uid.clone(),
            container: name.to_owned(),
            restart_count,
            process: launch.process.clone(),
            memory_limit: launch.memory_limit,
        };
        let process = match self.start_process(request).await {
            Ok(p) => p,
            Err(error) => {
                let message = match &error {
                    crate::runtime::Error::Spawn(e) => e.to_string(),
                    other => format!("{other}: {}", error_chain(other)),
                };
                tracing::warn!(container = name, %message, "container failed to start");
                self.ctx.recorder.container(
                    &self.pod,
                    name,
                    kind,
                    EventType::Warning,
                    events::FAILED,
                    &format!("Error: {message}"),
                );
                let finished = Timestamp::now();
                if let Some(c) = self.observed.get_mut(name) {
                    c.previous = previous_exit;
                    c.current = Some(Instance {
                        restart_count,
                        spec_hash: hash,
                        container_id: container_id.clone(),
                        state: InstanceState::Terminated(Terminated {
                            exit_code: 128,
                            signal: None,
                            reason: "StartError".to_owned(),
                            message: Some(message.clone()),
                            started_at: None,
                            finished_at: finished,
                            finished_mono: Instant::now(),
                            container_id,
                        }),
                    });
                    c.start_failure = Some(StartFailure {
                        reason: "RunContainerError".to_owned(),
                        message,
                    });
                }
                return;
            }
        };
        tracing::info!(
            container = name,
            pid = process.pid,
            restart_count,
            "container started"
        );
        let instance = Arc::new(RunningInstance {
            process: process.clone(),
            stop_signal: launch.stop_signal,
            restart_count,
        });
        if let Some(c) = self.observed.get_mut(name) {
            c.previous = previous_exit.or_else(|| c.previous.take());
            c.current = Some(Instance {
                restart_count,
                spec_hash: hash,
                container_id,
                state: InstanceState::Starting {
                    pid: process.pid,
                    started_at: process.started_at,
                },
            });
            c.start_failure = None;
            c.stop_signal = launch.stop_signal_name.clone();
        }
        self.running.insert(name.to_owned(), instance);
        {
            let process = process.clone();
            let name = name.to_owned();
            self.exits
                .spawn(async move { (name, restart_count, process.wait().await) });
        }
        self.ctx.recorder.container(
            &self.pod,
            name,
            kind,
            EventType::Normal,
            events::STARTED,
            &events::started_message(name),
        );
        let post_start = spec.lifecycle.as_ref().and_then(|l| l.post_start.clone());
        if post_start.is_some() {
            // The container shows Waiting (with its ID) while its postStart hook runs.
            // Without a hook it is Running at once: one status write, not two (at 1,000 pods
            // every store write counts; BENCHMARKS.md "Scale").
            self.publish();
        }

        if let Some(handler) = post_start {
            match self.run_post_start(&spec, &process, &handler).await {
                PostStart::Cancelled => return,
                PostStart::Failed(message) => {
                    tracing::warn!(container = name, %message, "postStart hook failed");
                    self.ctx.recorder.container(
                        &self.pod,
                        name,
                        kind,
                        EventType::Warning,
                        events::FAILED_POST_START_HOOK,
                        events::POST_START_HOOK_FAILED,
                    );
                    self.kill_one(KillAction {
                        container: name.to_owned(),
                        message: events::FAILED_POST_START_HOOK.to_owned(),
                        reason: KillReason::FailedPostStartHook,
                    })
                    .await;
                    if let Some(c) = self.observed.get_mut(name) {
                        c.start_failure = Some(StartFailure {
                            reason: "PostStartHookError".to_owned(),
                            message,
                        });
                    }
                    return;
                }
                PostStart::Succeeded(success) => {
                    if let Some(message) = success.http_fallback {
                        self.ctx.recorder.container(
                            &self.pod,
                            name,
                            kind,
                            EventType::Warning,
                            events::LIFECYCLE_HTTP_FALLBACK,
                            &message,
                        );
                    }
                }
            }
        }
        if let Some(c) = self.observed.get_mut(name)
            && let Some(instance) = c.current.as_mut()
            && instance.restart_count == restart_count
            && matches!(instance.state, InstanceState::Starting { .. })
        {
            instance.state = InstanceState::Running {
                pid: process.pid,
                started_at: process.started_at,
                started_mono: process.started_mono,
            };
            // `started` waits for a startup probe, `ready` for a readiness probe.
            c.started = spec.startup_probe.is_none();
            c.ready = c.started && spec.readiness_probe.is_none();
            c.probe_failure = None;
            if let Some(instance) = self.running.get(name).cloned() {
                self.start_probes(&spec, &instance);
            }
        }
        self.publish();
    }

    /// `Runtime::start_container` on a blocking thread, at most `MAX_CONCURRENT_STARTS` at
    /// once, so that a burst of starts does not hold the async threads (and the API) up.
    async fn start_process(
        &self,
        request: StartRequest,
    ) -> Result<Arc<crate::runtime::ContainerProcess>, crate::runtime::Error> {
        // Why `ok()`: the semaphore is never closed.
        let _permit = self.ctx.starts.acquire().await.ok();
        let runtime = self.ctx.runtime.clone();
        match tokio::task::spawn_blocking(move || runtime.start_container(request)).await {
            Ok(started) => started,
            Err(error) => Err(crate::runtime::Error::Spawn(std::io::Error::other(
                error.to_string(),
            ))),
        }
    }

    /// Runs a postStart hook while still handling messages and exits.
    async fn run_post_start(
        &mut self,
        spec: &Container,
        process: &Arc<crate::runtime::ContainerProcess>,
        handler: &LifecycleHandler,
    ) -> PostStart {
        let runtime = self.ctx.runtime.clone();
        let pod = self.pod.clone();
        let pod_ip = self.pod_ip_string();
        let process = process.clone();
        let hook = async {
            let target = HookTarget {
                runtime: &runtime,
                pod: &pod,
                container: spec,
                process: &process,
                pod_ip: &pod_ip,
            };
            hooks::run_handler(&target, handler).await
        };
        tokio::pin!(hook);
        loop {
            tokio::select! {
                result = &mut hook => {
                    return match result {
                        Ok(success) => PostStart::Succeeded(success),
                        Err(e) => PostStart::Failed(e.message),
                    };
                }
                msg = self.mailbox.recv() => {
                    self.handle_msg(msg);
                    if self.termination_cause().is_some() {
                        tracing::info!(container = %spec.name, "termination requested during postStart: cancelling the hook");
                        return PostStart::Cancelled;
                    }
                }
                Some(exit) = self.exits.join_next() => self.handle_exit(exit),
            }
        }
    }

    /// Kills one container while the pod keeps running (definition changed, postStart
    /// failure, later probe failures). Abandoned if the pod starts terminating meanwhile:
    /// pod termination then stops the container.
    async fn kill_one(&mut self, kill: KillAction) {
        let Some(instance) = self.running.get(&kill.container).cloned() else {
            return;
        };
        let Some(container) = container_spec(&self.pod, &kill.container).cloned() else {
            return;
        };
        let restart_count = instance.restart_count;
        let target = KillTarget {
            pod: self.pod.clone(),
            kind: self.kind_of(&kill.container),
            container,
            instance,
            pod_ip: self.pod_ip_string(),
        };
        let options = KillOptions {
            message: Some(kill.message),
            reason: kill.reason,
            grace_override: None,
            ordering: None,
        };
        let fut = kill_container(
            self.ctx.clone(),
            target,
            options,
            self.deadlines.clone(),
            self.hook_tasks.clone(),
        );
        tokio::pin!(fut);
        loop {
            tokio::select! {
                () = &mut fut => break,
                msg = self.mailbox.recv() => {
                    self.handle_msg(msg);
                    if self.termination_cause().is_some() {
                        return;
                    }
                }
                Some(exit) = self.exits.join_next() => self.handle_exit(exit),
            }
        }
        // The process is gone; take its exit report now, so the next decision sees the
        // container terminated and does not kill it again.
        while self
            .running
            .get(&kill.container)
            .is_some_and(|r| r.restart_count == restart_count)
        {
            match self.exits.join_next().await {
                Some(exit) => self.handle_exit(exit),
                None => break,
            }
        }
    }

    /// The grace the pod terminates with, and whether it is shorter than `current`.
    fn effective_grace(&self, current: Option<i64>) -> (i64, bool) {
        let deletion = if self.removed {
            Some(0)
        } else {
            self.pod.metadata.deletion_grace_period_seconds
        };
        let spec_grace = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds);
        effective_pod_grace(current, deletion, self.shutdown.flatten(), spec_grace)
    }

    /// DESIGN.md step 2: waits until no gateway listener sends new traffic to this pod as a
    /// ready endpoint (the endpoints controller marks it `ready=false, terminating=true` on
    /// deletion), bounded by `endpoint_barrier`. Node shutdown skips it: every pod is going
    /// and there is nowhere else to send traffic. The event says how long it took.
    async fn leave_endpoints(&mut self) {
        let (Some(routing), Some(limit), Some(ip)) = (
            self.ctx.routing.clone(),
            self.ctx.config.endpoint_barrier,
            self.pod_ip,
        ) else {
            return;
        };
        let ip = IpAddr::V4(ip);
        if !routing.routes_to(ip) {
            return;
        }
        let started = std::time::Instant::now();
        tracing::debug!(target: "podvisor::latency", step = "barrier-start");
        let mut applied = routing.applied();
        let wait = async {
            while routing.routes_new_traffic_to(ip) {
                if applied.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        let confirmed = tokio::time::timeout(limit, wait).await.is_ok();
        tracing::debug!(target: "podvisor::latency", step = "barrier-done");
        let took = started.elapsed();
        routing.barrier_done(took, confirmed);
        let ms = took.as_secs_f64() * 1000.0;
        if confirmed {
            tracing::info!(ms, "removed from every gateway pool");
            self.ctx.recorder.pod(
                &self.pod,
                EventType::Normal,
                "RemovedFromEndpoints",
                &format!("Removed from every gateway pool in {ms:.3}ms; stopping containers"),
            );
        } else {
            tracing::warn!(ms, "a gateway pool still routes to the pod");
            self.ctx.recorder.pod(
                &self.pod,
                EventType::Warning,
                "EndpointsBarrierTimeout",
                &format!(
                    "A gateway pool still sent new traffic to the pod after {ms:.0}ms; stopping containers anyway"
                ),
            );
        }
    }

    /// `SyncTerminatingPod`: every running container killed in parallel; a shorter grace
    /// arriving meanwhile starts the kills over (new `Killing` events, preStop again), never
    /// moving a SIGKILL deadline later.
    async fn terminate(&mut self) {
        tracing::debug!(target: "podvisor::latency", step = "worker-terminate");
        for p in self.probes.values() {
            p.control.send_modify(|c| c.terminating = true);
        }
        self.publish();
        if matches!(
            self.termination_cause(),
            Some(Cause::Deleted | Cause::Removed)
        ) {
            self.leave_endpoints().await;
        }
        let (mut grace, _) = self.effective_grace(None);
        'run: loop {
            let running: Vec<(String, Arc<RunningInstance>)> = self
                .running
                .iter()
                .filter(|(_, r)| r.process.exit_info().is_none())
                .map(|(n, r)| (n.clone(), r.clone()))
                .collect();
            if running.is_empty() {
                break;
            }
            let names: Vec<String> = running.iter().map(|(n, _)| n.clone()).collect();
            let ordering = termination_prerequisites(&self.observed)
                .map(|p| TerminationOrdering::new(p, &names));
            tracing::info!(grace, containers = ?names, "killing containers");
            let kills = running.into_iter().filter_map(|(name, instance)| {
                let container = container_spec(&self.pod, &name)?.clone();
                let target = KillTarget {
                    pod: self.pod.clone(),
                    kind: self.kind_of(&name),
                    container,
                    instance,
                    pod_ip: self.pod_ip_string(),
                };
                let options = KillOptions {
                    message: None,
                    reason: KillReason::Unknown,
                    grace_override: Some(grace),
                    ordering: ordering.clone(),
                };
                Some(kill_container(
                    self.ctx.clone(),
                    target,
                    options,
                    self.deadlines.clone(),
                    self.hook_tasks.clone(),
                ))
            });
            let all = futures_util::future::join_all(kills);
            tokio::pin!(all);
            loop {
                tokio::select! {
                    _ = &mut all => break 'run,
                    msg = self.mailbox.recv() => {
                        self.handle_msg(msg);
                        let (new, shortened) = self.effective_grace(Some(grace));
                        if shortened {
                            tracing::info!(from = grace, to = new, "grace period shortened: restarting termination");
                            grace = new;
                            continue 'run;
                        }
                    }
                    Some(exit) = self.exits.join_next() => self.handle_exit(exit),
                }
            }
        }
        // Every process is gone: collect the remaining exit reports.
        while let Some(exit) = self.exits.join_next().await {
            self.handle_exit(exit);
        }
    }

    /// `SyncTerminatedPod` and the status manager's final delete.
    fn finish(&mut self, cause: Cause) {
        self.terminal = true;
        self.publish();
        self.hook_tasks.abort_all();
        self.probe_tasks.abort_all();
        self.ctx.runtime.remove_pod(&self.uid);
        if let Some(ip) = self.pod_ip.take() {
            self.ctx
                .ipam
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .release(ip);
        }
        if matches!(cause, Cause::Deleted) {
            match self.ctx.store.remove_pod(&self.key, &self.uid) {
                Ok(_) => tracing::info!("pod removed"),
                Err(error) => tracing::debug!(%error, "pod already gone"),
            }
        }
    }

    /// Writes the pod's status to the store if it changed.
    fn publish(&mut self) {
        if self.removed {
            return;
        }
        let pod_ip = self.pod_ip.map(|ip| ip.to_string());
        let host_ip = self.ctx.config.host_ip.to_string();
        let status = pod_status(
            &self.pod,
            &self.observed,
            &StatusContext {
                pod_ip: pod_ip.as_deref(),
                host_ip: &host_ip,
                start_time: Some(self.start_time),
                pod_is_terminal: self.terminal,
                previous: self.status.as_ref(),
                reason: self.status_reason,
                now: Timestamp::now(),
            },
        );
        if self.status.as_ref() == Some(&status) {
            return;
        }
        match self
            .ctx
            .store
            .update_pod_status(&self.key, &self.uid, status.clone())
        {
            Ok(pod) => self.pod = pod,
            Err(error) => tracing::debug!(%error, "status not written"),
        }
        self.status = Some(status);
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}
