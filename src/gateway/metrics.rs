//! The gateway's Prometheus metrics: per service port counters and a latency histogram whose
//! handles each route keeps (no label lookup per request), and per endpoint gauges read from
//! the routes at scrape time (no series left behind by endpoints that went away).

use std::sync::Weak;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::Inner;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortLabels {
    service: String,
    port: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    service: String,
    port: String,
    /// `no_endpoints` (503, or a TCP connection closed at once) or `backend_error` (502, or
    /// a TCP connection whose every connect failed).
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    service: String,
    port: String,
    endpoint: String,
    target: String,
}

type LatencyFamily = Family<PortLabels, Histogram, fn() -> Histogram>;

/// The metric families, shared with the registry they are registered in.
pub(crate) struct Metrics {
    requests: Family<PortLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    backend_errors: Family<PortLabels, Counter>,
    latency: LatencyFamily,
}

/// One service port's metric handles.
pub(crate) struct RouteMetrics {
    /// HTTP requests, or TCP connections, received.
    pub(crate) requests: Counter,
    /// Answered 503 / closed: no endpoint to send to.
    pub(crate) no_endpoints: Counter,
    /// Answered 502 / closed: every try failed.
    pub(crate) backend_failed: Counter,
    /// Failed connects and requests to endpoints, retried or not.
    pub(crate) backend_errors: Counter,
    /// Seconds from a request's arrival to its response head (TCP: to the connect).
    pub(crate) latency: Histogram,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~6.5 s.
    Histogram::new(exponential_buckets(0.00005, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            failures: Family::default(),
            backend_errors: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl Metrics {
    pub(crate) fn route(&self, service: &str, port: &str) -> RouteMetrics {
        let labels = PortLabels {
            service: service.to_owned(),
            port: port.to_owned(),
        };
        let failure = |reason| FailureLabels {
            service: service.to_owned(),
            port: port.to_owned(),
            reason,
        };
        RouteMetrics {
            requests: self.requests.get_or_create_owned(&labels),
            no_endpoints: self.failures.get_or_create_owned(&failure("no_endpoints")),
            backend_failed: self.failures.get_or_create_owned(&failure("backend_error")),
            backend_errors: self.backend_errors.get_or_create_owned(&labels),
            latency: self.latency.get_or_create_owned(&labels),
        }
    }

    pub(crate) fn remove_route(&self, service: &str, port: &str) {
        let labels = PortLabels {
            service: service.to_owned(),
            port: port.to_owned(),
        };
        self.requests.remove(&labels);
        self.backend_errors.remove(&labels);
        self.latency.remove(&labels);
        for reason in ["no_endpoints", "backend_error"] {
            self.failures.remove(&FailureLabels {
                service: service.to_owned(),
                port: port.to_owned(),
                reason,
            });
        }
    }

    pub(crate) fn register(&self, registry: &mut Registry, gateway: Weak<Inner>) {
        registry.register(
            "podvisor_gateway_requests",
            "HTTP requests (TCP: connections) received per service port",
            self.requests.clone(),
        );
        registry.register(
            "podvisor_gateway_failures",
            "Requests the gateway failed itself: 503 without endpoints, 502 after backend errors (TCP: connections closed)",
            self.failures.clone(),
        );
        registry.register(
            "podvisor_gateway_backend_errors",
            "Failed connects and requests to endpoints, retried or not",
            self.backend_errors.clone(),
        );
        registry.register(
            "podvisor_gateway_request_duration_seconds",
            "Time from a request's arrival to its response head (TCP: to the backend connect)",
            self.latency.clone(),
        );
        registry.register_collector(Box::new(EndpointCollector { gateway }));
    }
}

/// Per endpoint gauges, read from the current endpoint sets at scrape time.
#[derive(Debug)]
struct EndpointCollector {
    gateway: Weak<Inner>,
}

impl Collector for EndpointCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(gateway) = self.gateway.upgrade() else {
            return Ok(());
        };
        let mut rows = Vec::new();
        gateway.for_each_route(|route| {
            for (_, backend) in &route.table().members {
                rows.push((
                    EndpointLabels {
                        service: route.key.service.clone(),
                        port: route.key.port_name.clone(),
                        endpoint: backend.addr.to_string(),
                        target: backend.target().unwrap_or_default().to_owned(),
                    },
                    backend.connections.load(Ordering::Relaxed),
                    backend.outstanding.load(Ordering::Relaxed),
                ));
            }
        });
        encode_gauges(
            &mut encoder,
            "podvisor_gateway_endpoint_connections",
            "Open connections to an endpoint (HTTP: pooled or busy; TCP: proxied)",
            rows.iter().map(|r| (&r.0, r.1)),
        )?;
        encode_gauges(
            &mut encoder,
            "podvisor_gateway_endpoint_in_flight",
            "Requests (TCP: connections) in flight to an endpoint",
            rows.iter().map(|r| (&r.0, r.2)),
        )?;
        Ok(())
    }
}

fn encode_gauges<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl Iterator<Item = (&'a EndpointLabels, usize)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in values {
        let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
        gauge.encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}
