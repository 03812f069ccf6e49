//! The node's Prometheus metrics, served at `/metrics` (OpenMetrics text) by the API, behind
//! its bearer token: the gateway's own (requests, failures, latency per service
//! port, connections per endpoint), the termination barrier's durations, and pods by phase
//! and container restarts read from the store at scrape time.
//!
//! Must not: keep per-pod series that outlive the pods (store-derived series are computed
//! at every scrape), or take a lock while encoding other than the store's short one.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde_json::Value;

use crate::gateway::Gateway;
use crate::store::resources;
use crate::store::{Backend, Store};

/// Every metric of a node.
pub struct Metrics {
    registry: Registry,
    barrier_seconds: Histogram,
    barrier_timeouts: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(store: Arc<Store>, gateway: &Gateway) -> Metrics {
        let mut registry = Registry::default();
        // 50 µs to ~1.6 s.
        let barrier_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        let barrier_timeouts = Counter::default();
        registry.register(
            "podvisor_endpoint_barrier_duration_seconds",
            "Time from a deleted pod's termination start until no gateway listener sent it new traffic",
            barrier_seconds.clone(),
        );
        registry.register(
            "podvisor_endpoint_barrier_timeouts",
            "Termination barriers that ended at their timeout, a listener still routing to the pod",
            barrier_timeouts.clone(),
        );
        gateway.register_metrics(&mut registry);
        registry.register_collector(Box::new(StoreCollector { store }));
        Metrics {
            registry,
            barrier_seconds,
            barrier_timeouts,
        }
    }

    /// Records one termination barrier.
    pub fn barrier_done(&self, took: Duration, confirmed: bool) {
        self.barrier_seconds.observe(took.as_secs_f64());
        if !confirmed {
            self.barrier_timeouts.inc();
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Why ignored: writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Pods by phase and restarts per container, read from the store at each scrape.
struct StoreCollector {
    store: Arc<Store>,
}

impl std::fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCollector")
    }
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (pods, _) = self.store.list(&resources::PODS, None);
        let mut phases: std::collections::BTreeMap<String, i64> =
            ["Pending", "Running", "Succeeded", "Failed", "Unknown"]
                .iter()
                .map(|p| ((*p).to_owned(), 0))
                .collect();
        let mut restarts: Vec<([(String, String); 3], i64)> = Vec::new();
        for pod in &pods {
            let phase = pod
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Pending");
            *phases.entry(phase.to_owned()).or_default() += 1;
            let meta = |f: &str| {
                pod.pointer(&format!("/metadata/{f}"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            for kind in ["initContainerStatuses", "containerStatuses"] {
                for c in pod
                    .pointer(&format!("/status/{kind}"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let count = c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
                    let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                    restarts.push((
                        [
                            ("namespace".to_owned(), meta("namespace")),
                            ("pod".to_owned(), meta("name")),
                            ("container".to_owned(), name.to_owned()),
                        ],
                        count,
                    ));
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "podvisor_pods",
            "Pods on the node by phase",
            None,
            MetricType::Gauge,
        )?;
        for (phase, n) in phases {
            let labels = [("phase".to_owned(), phase)];
            ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "podvisor_container_restarts",
            "restartCount of each container of each pod on the node",
            None,
            MetricType::Gauge,
        )?;
        for (labels, n) in restarts {
            ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
