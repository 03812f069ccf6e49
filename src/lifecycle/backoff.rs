//! CrashLoopBackOff: a port of client-go's `flowcontrol.Backoff` as the kubelet uses it.
//!
//! Upstream: `staging/src/k8s.io/client-go/util/flowcontrol/backoff.go` (`Next`,
//! `IsInBackOffSince`, `hasExpired`, `GC`) and `kuberuntime_manager.go` › `doBackOff` (spec §5.2).
//! No jitter, as the kubelet creates it. Times are `Instant`s passed in by the caller.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The kubelet's default initial restart delay.
pub const INITIAL_CRASH_LOOP_BACK_OFF: Duration = Duration::from_secs(10);
/// `MaxContainerBackOff`.
pub const MAX_CRASH_LOOP_BACK_OFF: Duration = Duration::from_secs(300);

/// Per-key exponential backoff.
#[derive(Clone, Debug)]
pub struct Backoff {
    /// The first delay (10 s, or the maximum when that is smaller; KEP-4603).
    initial: Duration,
    /// The cap (300 s by default; a node flag may lower it to 1 s).
    max: Duration,
    /// Current delay and last update per key.
    entries: HashMap<String, Entry>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The delay the next restart must wait, measured from the exit.
    backoff: Duration,
    /// When `next` was last called for this key.
    last_update: Instant,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(MAX_CRASH_LOOP_BACK_OFF)
    }
}

impl Backoff {
    /// A backoff capped at `max`; the initial delay is 10 s or `max` if that is smaller,
    /// as the kubelet does with `crashLoopBackOff.maxContainerRestartPeriod`.
    pub fn new(max: Duration) -> Self {
        Backoff {
            initial: INITIAL_CRASH_LOOP_BACK_OFF.min(max),
            max,
            entries: HashMap::new(),
        }
    }

    /// `Next`: records a restart decision for `key` whose last exit was at `event_time`.
    pub fn next(&mut self, key: &str, event_time: Instant, now: Instant) {
        let max = self.max;
        let initial = self.initial;
        match self.entries.get_mut(key) {
            Some(entry) if !has_expired(event_time, entry.last_update, max) => {
                entry.backoff = (entry.backoff * 2).min(max);
                entry.last_update = now;
            }
            _ => {
                self.entries.insert(
                    key.to_owned(),
                    Entry {
                        backoff: initial,
                        last_update: now,
                    },
                );
            }
        }
    }

    /// `IsInBackOffSince`: if `key` must still wait after an exit at `event_time`, returns
    /// the current delay and the instant the wait ends.
    pub fn in_back_off_since(
        &self,
        key: &str,
        event_time: Instant,
        now: Instant,
    ) -> Option<(Duration, Instant)> {
        let entry = self.entries.get(key)?;
        if has_expired(event_time, entry.last_update, self.max) {
            return None;
        }
        let until = event_time + entry.backoff;
        (now < until).then_some((entry.backoff, until))
    }

    /// `GC`: forgets keys not updated for twice the maximum.
    pub fn gc(&mut self, now: Instant) {
        let max = self.max;
        self.entries
            .retain(|_, e| !has_expired(now, e.last_update, max));
    }

    /// Forgets every key that starts with `prefix` (a pod's keys when it is removed).
    pub fn forget_prefix(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }
}

/// "Consider stable if it's ok for twice the maxDuration".
fn has_expired(event_time: Instant, last_update: Instant, max: Duration) -> bool {
    event_time.saturating_duration_since(last_update) > max * 2
}

/// The backoff key: `<pod>_<namespace>_<uid>_<container>_<spec hash>`, so a spec change resets it.
pub fn key(pod_name: &str, namespace: &str, uid: &str, container: &str, hash: u64) -> String {
    format!("{pod_name}_{namespace}_{uid}_{container}_{hash:x}")
}

/// Formats a duration the way Go's `time.Duration.String()` does for whole seconds and
/// milliseconds: `10s`, `1m20s`, `5m0s`, `1.5s`, `500ms`.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = (ms / 60_000) % 60;
    let secs_ms = ms % 60_000;
    let secs = if secs_ms.is_multiple_of(1000) {
        format!("{}s", secs_ms / 1000)
    } else {
        let s = format!("{}.{:03}", secs_ms / 1000, secs_ms % 1000);
        format!("{}s", s.trim_end_matches('0'))
    };
    if hours > 0 {
        format!("{hours}h{minutes}m{secs}")
    } else if minutes > 0 {
        format!("{minutes}m{secs}")
    } else {
        secs
    }
}
