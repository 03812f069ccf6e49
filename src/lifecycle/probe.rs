//! Probe results and thresholds: the pure part of `pkg/kubelet/prober/worker.go` › `doProbe`
//! (spec §4.2, §4.3). The probe workers in `crate::probe` run the probes and feed outcomes in.

use k8s_openapi::api::core::v1::Probe;

/// Startup, readiness or liveness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Startup,
    Readiness,
    Liveness,
}

impl ProbeKind {
    /// As upstream prints it in events: `Liveness probe failed: …`.
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Liveness => "Liveness",
        }
    }

    /// The spec field of this probe.
    pub fn of(self, c: &k8s_openapi::api::core::v1::Container) -> Option<&Probe> {
        match self {
            ProbeKind::Startup => c.startup_probe.as_ref(),
            ProbeKind::Readiness => c.readiness_probe.as_ref(),
            ProbeKind::Liveness => c.liveness_probe.as_ref(),
        }
    }
}

/// A probe's cached result, as the kubelet's results manager holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    Unknown,
    Success,
    Failure,
}

impl ProbeResult {
    /// The result a new container instance starts with: readiness Failure, liveness
    /// Success, startup Unknown.
    pub fn initial(kind: ProbeKind) -> Self {
        match kind {
            ProbeKind::Readiness => ProbeResult::Failure,
            ProbeKind::Liveness => ProbeResult::Success,
            ProbeKind::Startup => ProbeResult::Unknown,
        }
    }
}

/// A probe's timing and thresholds with upstream's defaults (`SetDefaults_Probe`): a value of
/// 0 or less means the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeTiming {
    pub initial_delay_seconds: i64,
    pub period_seconds: i64,
    pub timeout_seconds: i64,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl ProbeTiming {
    pub fn of(probe: &Probe) -> Self {
        let or =
            |v: Option<i32>, default: i64| v.map(i64::from).filter(|v| *v > 0).unwrap_or(default);
        ProbeTiming {
            initial_delay_seconds: probe
                .initial_delay_seconds
                .map(i64::from)
                .unwrap_or(0)
                .max(0),
            period_seconds: or(probe.period_seconds, 10),
            timeout_seconds: or(probe.timeout_seconds, 1),
            success_threshold: or(probe.success_threshold, 1) as u32,
            failure_threshold: or(probe.failure_threshold, 3) as u32,
        }
    }
}

/// One probe worker's memory of outcomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeState {
    pub kind: ProbeKind,
    /// The cached result (what the pod status and the liveness check read).
    pub result: ProbeResult,
    /// The last outcome and how many times in a row it came.
    last: Option<bool>,
    run: u32,
    /// Stop probing until a new container instance (after a liveness/startup failure, or
    /// startup success).
    pub on_hold: bool,
}

impl ProbeState {
    pub fn new(kind: ProbeKind) -> Self {
        ProbeState {
            kind,
            result: ProbeResult::initial(kind),
            last: None,
            run: 0,
            on_hold: false,
        }
    }

    /// Records one probe outcome (`success`; a warning counts as success). Returns the new
    /// cached result when the thresholds change it.
    pub fn record(&mut self, success: bool, timing: &ProbeTiming) -> Option<ProbeResult> {
        if self.last == Some(success) {
            self.run += 1;
        } else {
            self.last = Some(success);
            self.run = 1;
        }
        let threshold = if success {
            timing.success_threshold
        } else {
            timing.failure_threshold
        };
        if self.run < threshold {
            return None;
        }
        let result = if success {
            ProbeResult::Success
        } else {
            ProbeResult::Failure
        };
        if (self.kind == ProbeKind::Liveness && !success) || self.kind == ProbeKind::Startup {
            self.on_hold = true;
            self.run = 0;
        }
        let changed = self.result != result;
        self.result = result;
        changed.then_some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(success: u32, failure: u32) -> ProbeTiming {
        ProbeTiming {
            initial_delay_seconds: 0,
            period_seconds: 1,
            timeout_seconds: 1,
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    /// `TestInitialDelay` (initial results).
    #[test]
    fn initial_results() {
        assert_eq!(
            ProbeState::new(ProbeKind::Liveness).result,
            ProbeResult::Success
        );
        assert_eq!(
            ProbeState::new(ProbeKind::Readiness).result,
            ProbeResult::Failure
        );
        assert_eq!(
            ProbeState::new(ProbeKind::Startup).result,
            ProbeResult::Unknown
        );
    }

    /// `TestFailureThreshold`: with failureThreshold 3 the result stays Success for two
    /// failures and becomes Failure on the third.
    #[test]
    fn failure_threshold() {
        let t = timing(1, 3);
        let mut s = ProbeState::new(ProbeKind::Readiness);
        assert_eq!(s.record(true, &t), Some(ProbeResult::Success));
        assert_eq!(s.record(false, &t), None);
        assert_eq!(s.record(false, &t), None);
        assert_eq!(s.record(false, &t), Some(ProbeResult::Failure));
        assert_eq!(s.result, ProbeResult::Failure);
    }

    /// `TestSuccessThreshold`: with successThreshold 3 it stays Failure for two successes.
    #[test]
    fn success_threshold() {
        let t = timing(3, 1);
        let mut s = ProbeState::new(ProbeKind::Readiness);
        assert_eq!(s.record(true, &t), None);
        assert_eq!(s.record(true, &t), None);
        assert_eq!(s.record(true, &t), Some(ProbeResult::Success));
        assert_eq!(
            s.record(false, &t),
            Some(ProbeResult::Failure),
            "failureThreshold 1"
        );
    }

    /// `TestOnHoldOnLivenessOrStartupCheckFailure`, `TestStartupProbeSuccessThreshold`.
    #[test]
    fn on_hold_after_liveness_failure_and_startup_result() {
        let t = timing(1, 2);
        let mut l = ProbeState::new(ProbeKind::Liveness);
        assert_eq!(l.record(false, &t), None);
        assert!(!l.on_hold);
        assert_eq!(l.record(false, &t), Some(ProbeResult::Failure));
        assert!(l.on_hold);
        let mut s = ProbeState::new(ProbeKind::Startup);
        assert_eq!(s.record(true, &t), Some(ProbeResult::Success));
        assert!(s.on_hold, "startup stops once it succeeded");
        let mut r = ProbeState::new(ProbeKind::Readiness);
        r.record(false, &t);
        r.record(false, &t);
        assert!(!r.on_hold, "readiness never holds");
    }

    #[test]
    fn defaults_for_zero_values() {
        let t = ProbeTiming::of(&Probe::default());
        assert_eq!(
            (
                t.period_seconds,
                t.timeout_seconds,
                t.success_threshold,
                t.failure_threshold
            ),
            (10, 1, 1, 3)
        );
    }
}
