//! Running one probe once: exec, httpGet, tcpSocket and gRPC handlers with the kubelet's
//! semantics (`pkg/kubelet/prober/prober.go`, spec §3.3, §3.4, §3.6, §4.4).
//!
//! Every call is bounded by the probe's `timeoutSeconds`; an exec probe that times out is
//! killed with everything it started. A probe that cannot even start (a command that does not
//! exist, a port name the container does not have) is a failure with a clear message, never a
//! stuck worker. The schedule, thresholds and what follows from results are in
//! `node::prober` and `lifecycle::probe`.
//!
//! Must not: keep state between calls, or spawn processes other than through
//! `runtime::Runtime::exec`.

#[cfg(test)]
mod tests;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};

use crate::hooks::resolve_port;
use crate::httpget::{self, HttpGetRequest, Kind, ProbeOutcome};
use crate::model::expansion::expand_command_only_static;
use crate::runtime::{ContainerProcess, Runtime};

/// Where a probe runs.
pub struct ProbeTarget<'a> {
    pub runtime: &'a Runtime,
    pub container: &'a Container,
    pub process: &'a ContainerProcess,
    /// The default host of httpGet, tcpSocket and gRPC probes.
    pub pod_ip: &'a str,
}

/// Runs `probe` once; returns the outcome and its output (the event message on failure).
pub async fn run(
    target: &ProbeTarget<'_>,
    probe: &Probe,
    timeout: Duration,
) -> (ProbeOutcome, String) {
    if let Some(exec) = &probe.exec {
        let command = expand_command_only_static(
            exec.command.as_deref().unwrap_or_default(),
            target.container.env.as_deref().unwrap_or_default(),
        );
        return run_exec(target, &command, timeout).await;
    }
    if let Some(http) = &probe.http_get {
        let port = match resolve_port(&http.port, target.container) {
            Ok(p) => p,
            Err(e) => return (ProbeOutcome::Failure, e),
        };
        let request = HttpGetRequest {
            scheme: http.scheme.clone().unwrap_or_default(),
            host: http
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| target.pod_ip.to_owned()),
            port,
            path: http.path.clone().unwrap_or_default(),
            headers: http
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
            kind: Kind::Probe,
            timeout: Some(timeout),
        };
        return httpget::probe_result(httpget::get(&request).await);
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = match resolve_port(&tcp.port, target.container) {
            Ok(p) => p,
            Err(e) => return (ProbeOutcome::Failure, e),
        };
        let host = tcp
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| target.pod_ip.to_owned());
        return run_tcp(&host, port, timeout).await;
    }
    if let Some(grpc) = &probe.grpc {
        let Ok(port) = u16::try_from(grpc.port) else {
            return (
                ProbeOutcome::Failure,
                format!("invalid port number: {}", grpc.port),
            );
        };
        let service = grpc.service.clone().unwrap_or_default();
        return crate::grpcprobe::check(target.pod_ip, port, &service, timeout).await;
    }
    (ProbeOutcome::Failure, "missing probe handler".to_owned())
}

/// An exec probe: exit 0 is success; any other code a failure with the command's output; a
/// timeout kills the command and fails with `command "…" timed out`.
async fn run_exec(
    target: &ProbeTarget<'_>,
    command: &[String],
    timeout: Duration,
) -> (ProbeOutcome, String) {
    let handle = match target.runtime.exec(target.process, command).await {
        Ok(h) => h,
        Err(crate::runtime::Error::Spawn(e)) => return (ProbeOutcome::Failure, e.to_string()),
        Err(e) => return (ProbeOutcome::Failure, e.to_string()),
    };
    match tokio::time::timeout(timeout, handle.wait()).await {
        Ok(outcome) => {
            let output = String::from_utf8_lossy(&outcome.output).into_owned();
            if outcome.status.code == 0 {
                (ProbeOutcome::Success, output)
            } else {
                (ProbeOutcome::Failure, output)
            }
        }
        // Dropping the handle kills the command and its children.
        Err(_) => (
            ProbeOutcome::Failure,
            format!("command {:?} timed out", command.join(" ")),
        ),
    }
}

/// A tcpSocket probe: a connection within the timeout is success (it is closed at once).
async fn run_tcp(host: &str, port: u16, timeout: Duration) -> (ProbeOutcome, String) {
    let address = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&address)).await {
        Ok(Ok(_stream)) => (ProbeOutcome::Success, String::new()),
        Ok(Err(e)) => {
            let reason = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_owned(),
                _ => e.to_string(),
            };
            (
                ProbeOutcome::Failure,
                format!("dial tcp {address}: {reason}"),
            )
        }
        Err(_) => (
            ProbeOutcome::Failure,
            format!("dial tcp {address}: i/o timeout"),
        ),
    }
}
