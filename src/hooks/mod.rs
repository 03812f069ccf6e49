//! postStart and preStop handlers: exec, httpGet and sleep, as the kubelet's
//! `pkg/kubelet/lifecycle/handlers.go` › `handlerRunner.Run` (spec §2, §3).
//!
//! A handler runs until it finishes; the caller bounds it (a preStop hook by the grace period,
//! any hook by pod deletion) by dropping the future, which kills an exec hook's processes.
//!
//! Must not: decide what happens after a hook (that is `node`), or spawn processes other than
//! through `runtime::Runtime::exec`.

#[cfg(test)]
mod tests;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::httpget::{self, HttpGetRequest, Kind};
use crate::lifecycle::events::format_pod;
use crate::runtime::{ContainerProcess, Runtime};

/// Where a handler runs.
pub struct HookTarget<'a> {
    pub runtime: &'a Runtime,
    pub pod: &'a Pod,
    pub container: &'a Container,
    /// The container's running instance (exec hooks run inside it).
    pub process: &'a ContainerProcess,
    /// The pod's IP: the default host of httpGet handlers.
    pub pod_ip: &'a str,
}

/// A handler that succeeded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HookSuccess {
    /// An HTTPS hook was answered in plain HTTP and retried over HTTP: the caller emits the
    /// `LifecycleHTTPFallback` warning with this message.
    pub http_fallback: Option<String>,
}

/// A handler that failed, with the kubelet's message (shown in the container's waiting
/// message for postStart and in the node log; never in events, which may be read by anyone).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HookError {
    pub message: String,
}

/// Runs one lifecycle handler to completion.
pub async fn run_handler(
    target: &HookTarget<'_>,
    handler: &LifecycleHandler,
) -> Result<HookSuccess, HookError> {
    let pod = format_pod(target.pod);
    let name = &target.container.name;
    if let Some(exec) = &handler.exec {
        let command = exec.command.clone().unwrap_or_default();
        let shown = format!("[{}]", command.join(" "));
        let fail = |error: String, output: &[u8]| HookError {
            message: format!(
                "Exec lifecycle hook ({shown}) for Container {name:?} in Pod {pod:?} failed - error: {error}, message: {:?}",
                String::from_utf8_lossy(output)
            ),
        };
        let handle = match target.runtime.exec(target.process, &command).await {
            Ok(h) => h,
            Err(e) => return Err(fail(e.to_string(), b"")),
        };
        tracing::debug!(target: "podvisor::latency", step = "hook-spawned", pid = handle.pid);
        let outcome = handle.wait().await;
        if outcome.status.code == 0 {
            return Ok(HookSuccess::default());
        }
        // The remote runtime's ExecSync error: `command '<cmd>' exited with <code>: <stderr>`.
        let error = format!(
            "command '{}' exited with {}: {}",
            command.join(" "),
            outcome.status.code,
            String::from_utf8_lossy(&outcome.output)
        );
        return Err(fail(error, &outcome.output));
    }
    if let Some(http) = &handler.http_get {
        let path = http.path.clone().unwrap_or_default();
        let fail = |error: String| HookError {
            message: format!(
                "HTTP lifecycle hook ({path}) for Container {name:?} in Pod {pod:?} failed - error: {error}"
            ),
        };
        let port = resolve_port(&http.port, target.container).map_err(fail)?;
        let host = http
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| target.pod_ip.to_owned());
        let request = HttpGetRequest {
            scheme: http.scheme.clone().unwrap_or_default(),
            host,
            port,
            path: path.clone(),
            headers: http
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
            kind: Kind::Hook,
            timeout: None,
        };
        return match httpget::hook_result(httpget::get(&request).await) {
            Ok(response) => Ok(HookSuccess {
                http_fallback: response
                    .fell_back_to_http
                    .then(|| httpget::fallback_event_message(&request)),
            }),
            Err(e) => Err(fail(e.to_string())),
        };
    }
    if let Some(sleep) = &handler.sleep {
        let seconds = u64::try_from(sleep.seconds).unwrap_or(0);
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        return Ok(HookSuccess::default());
    }
    // tcpSocket is deprecated and not supported as a lifecycle handler: the hook fails.
    let what = if handler.tcp_socket.is_some() {
        "tcpSocket"
    } else {
        "no action"
    };
    Err(HookError {
        message: format!("Cannot run handler: invalid handler: {what}"),
    })
}

/// `resolvePort`: a number, a numeric string, or a container port name.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let value = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(s) => match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(s.as_str()))
                .map(|p| i64::from(p.container_port))
                .ok_or_else(|| {
                    format!("couldn't find port: {s} in container {}", container.name)
                })?,
        },
    };
    u16::try_from(value)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port number: {value}"))
}
