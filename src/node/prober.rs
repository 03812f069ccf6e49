//! Probe workers: one task per container instance and probe kind, the kubelet's
//! `prober/worker.go`. Each ticks every `periodSeconds` (no overlapping runs: a run that takes
//! longer than the period delays the next tick instead of stacking), honours
//! `initialDelaySeconds` from the process start, gates startup against liveness/readiness,
//! emits `Unhealthy`/`ProbeWarning` events, and reports result changes to its pod worker.
//!
//! During termination liveness and startup workers report Success and stop; readiness keeps
//! probing until the container is gone (spec §4.6).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, ObjectReference, Probe};
use tokio::sync::{mpsc, watch};

use super::NodeContext;
use super::kill::RunningInstance;
use super::worker::PodMsg;
use crate::httpget::ProbeOutcome;
use crate::lifecycle::ContainerKind;
use crate::lifecycle::events::EventType;
use crate::lifecycle::probe::{ProbeKind, ProbeResult, ProbeState, ProbeTiming};
use crate::probe::{self, ProbeTarget};

/// What the pod worker tells its probe workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeControl {
    /// The container is started (its startup probe succeeded, or it has none).
    pub started: bool,
    /// The pod is terminating.
    pub terminating: bool,
}

/// A change of a probe's cached result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeUpdate {
    pub container: String,
    pub restart_count: i32,
    pub kind: ProbeKind,
    pub result: ProbeResult,
}

/// What a probe worker probes.
pub struct ProbeWorker {
    pub ctx: Arc<NodeContext>,
    /// The pod its events name (`involvedObject`, as of the container's start): a reference,
    /// not the object, which would keep a superseded version of the pod alive for as long as
    /// the container runs (~4 KB per probed pod).
    pub pod: ObjectReference,
    /// Shared by the container's probe workers (a `Container` is ~2 KB before its strings).
    pub container: Arc<Container>,
    pub container_kind: ContainerKind,
    pub instance: Arc<RunningInstance>,
    pub pod_ip: String,
    pub kind: ProbeKind,
    pub probe: Probe,
}

impl ProbeWorker {
    /// Runs until the probe is on hold, the container is gone, or (liveness, startup) the pod
    /// terminates.
    pub async fn run(
        self,
        mut control: watch::Receiver<ProbeControl>,
        tx: mpsc::UnboundedSender<PodMsg>,
    ) {
        let timing = ProbeTiming::of(&self.probe);
        let period = Duration::from_secs(timing.period_seconds as u64);
        let timeout = Duration::from_secs(timing.timeout_seconds as u64);
        let delay_end = self.instance.process.started_mono
            + Duration::from_secs(timing.initial_delay_seconds as u64);
        let mut state = ProbeState::new(self.kind);
        let name = self.container.name.clone();
        let restart_count = self.instance.restart_count;
        let send = |result: ProbeResult| {
            // Why ignored: the pod worker is gone, so is the pod; the task ends right after.
            let _ = tx.send(PodMsg::Probe(ProbeUpdate {
                container: name.clone(),
                restart_count,
                kind: self.kind,
                result,
            }));
        };
        let mut next = Instant::now().max(delay_end);
        loop {
            let sleep = tokio::time::sleep_until(next.into());
            tokio::select! {
                () = sleep => {}
                changed = control.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // A container that just started is probed for readiness at once.
                    next = Instant::now().max(delay_end);
                }
            }
            if Instant::now() < next {
                continue;
            }
            let c = *control.borrow();
            if c.terminating && self.kind != ProbeKind::Readiness {
                if state.result != ProbeResult::Success {
                    send(ProbeResult::Success);
                }
                return;
            }
            if self.instance.process.exit_info().is_some() {
                return;
            }
            match (self.kind, c.started) {
                (ProbeKind::Startup, true) => return,
                (ProbeKind::Readiness | ProbeKind::Liveness, false) => {
                    // Disabled until started; a control change wakes us.
                    next = Instant::now() + Duration::from_secs(3600);
                    continue;
                }
                _ => {}
            }
            let began = Instant::now();
            let target = ProbeTarget {
                runtime: &self.ctx.runtime,
                container: &self.container,
                process: &self.instance.process,
                pod_ip: &self.pod_ip,
            };
            // Boxed: the run (exec, HTTP, gRPC clients) is most of this future's size, and an
            // idle probe worker would hold that much between runs (~10 KB per probed pod).
            let (outcome, output) = Box::pin(probe::run(&target, &self.probe, timeout)).await;
            match outcome {
                ProbeOutcome::Failure => self.event(
                    EventType::Warning,
                    "Unhealthy",
                    &format!("{} probe failed: {output}", self.kind.title()),
                ),
                ProbeOutcome::Warning => self.event(
                    EventType::Warning,
                    "ProbeWarning",
                    &format!("{} probe warning: {output}", self.kind.title()),
                ),
                ProbeOutcome::Success => {}
            }
            tracing::debug!(container = %self.container.name, kind = ?self.kind, ?outcome, "probe");
            if let Some(result) = state.record(outcome != ProbeOutcome::Failure, &timing) {
                send(result);
            }
            if state.on_hold {
                return;
            }
            // The next tick on the period grid; ticks that passed during a slow run are
            // skipped, never run back to back.
            next = began + period;
            while next <= Instant::now() {
                next += period;
            }
        }
    }

    fn event(&self, type_: EventType, reason: &str, message: &str) {
        self.ctx.recorder.container_of(
            &self.pod,
            &self.container.name,
            self.container_kind,
            type_,
            reason,
            message,
        );
    }
}
