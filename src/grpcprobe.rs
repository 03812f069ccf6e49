//! The gRPC health probe client (KEP-2727): upstream's `pkg/probe/grpc/grpc.go`.
//!
//! [`check`] connects in plain text (h2c, HTTP/2 with prior knowledge) to `host:port`, calls
//! `grpc.health.v1.Health/Check` with the probe's `service`, and maps the answer as upstream:
//! `SERVING` is a success, anything else a failure, with upstream's messages. What grpc-go
//! does underneath is reproduced too, because it decides those messages:
//! - connecting is "dial with `WithBlock`": a refused or failed connection is retried with
//!   grpc-go's connect backoff (1 s, then ×1.6) until the timeout, and a connection is ready
//!   only once the server's HTTP/2 preface arrived, so a server that does not speak h2c (a
//!   plain HTTP/1 server, a silent socket) ends as `timeout: failed to connect service …`;
//! - the call follows grpc-go's client transport: the HTTP status and content type of the
//!   response, `grpc-status`/`grpc-message` from the trailers (or the headers of a
//!   trailers-only response), one framed `HealthCheckResponse`.
//!
//! The protobuf messages and the gRPC framing are written by hand (`wire`): one field each.
//!
//! It must not do anything else: it knows nothing of pods, containers, ports by name or probe
//! thresholds (the caller picks the host, resolves the port and counts results), emits no
//! events, and spawns no task: the connection is driven inside the caller's future (`conn`),
//! so dropping the future closes it. `timeout` bounds everything, connection included.

mod conn;
mod wire;

#[cfg(test)]
mod tests;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_TYPE, HeaderValue, TE, USER_AGENT};
use http::{Method, Request, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::httpget::{KUBE_VERSION, ProbeOutcome};
use crate::model::validation::go_quote;

use conn::{PrefaceWatch, Tasks};
use wire::{RpcStatus, code};

/// grpc-go's connect backoff (`backoff.DefaultConfig`): the first delay after a failed
/// connection attempt. Jitter (±20 % upstream) is left out.
const BASE_BACKOFF: Duration = Duration::from_secs(1);

/// grpc-go's backoff multiplier between two failed attempts.
const BACKOFF_MULTIPLIER: f64 = 1.6;

/// grpc-go's longest backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(120);

/// Runs one gRPC health probe against `host:port` for `service` ("" asks about the server as
/// a whole), bounded by `timeout`; returns the result and its output as upstream's `Probe`.
///
/// - `SERVING`: Success, `service healthy`;
/// - any other status: Failure, `service unhealthy (responded with "NOT_SERVING")`;
/// - no HTTP/2 connection within `timeout`: Failure, `timeout: failed to connect service
///   "10.0.0.5:9090" within 1s: context deadline exceeded`;
/// - no answer within `timeout`, or status `DeadlineExceeded`: Failure, `timeout: health rpc
///   did not complete within 1s`;
/// - status `Unimplemented` (no health service, or an HTTP 404): Failure, `error: this server
///   does not implement the grpc health protocol (grpc.health.v1.Health): MESSAGE`;
/// - any other error: Failure, `error: health rpc probe failed: rpc error: code = NotFound
///   desc = unknown service`.
///
/// The result is never [`ProbeOutcome::Warning`]; it is that type so callers treat every
/// probe kind alike.
pub async fn check(
    host: &str,
    port: u16,
    service: &str,
    timeout: Duration,
) -> (ProbeOutcome, String) {
    let addr = wire::join_host_port(host, port);
    let deadline = Instant::now() + timeout;
    match probe(host, port, &addr, service, timeout, deadline).await {
        Ok(status) if status == wire::SERVING => {
            (ProbeOutcome::Success, "service healthy".to_owned())
        }
        Ok(status) => (
            ProbeOutcome::Failure,
            format!(
                "service unhealthy (responded with {})",
                go_quote(&wire::serving_status_name(status))
            ),
        ),
        Err(failure) => (ProbeOutcome::Failure, failure.message(&addr, timeout)),
    }
}

/// Why a probe failed, in upstream's categories.
#[derive(Debug)]
enum Failure {
    /// No ready connection before the deadline (`grpc.DialContext` returned
    /// `context.DeadlineExceeded`).
    ConnectTimeout,
    /// The call failed with this status; a deadline passed during the call is
    /// `DeadlineExceeded`.
    Rpc(RpcStatus),
}

impl Failure {
    /// Upstream's probe output for this failure.
    fn message(&self, addr: &str, timeout: Duration) -> String {
        let timeout = wire::go_duration(timeout);
        match self {
            Failure::ConnectTimeout => format!(
                "timeout: failed to connect service {} within {timeout}: context deadline exceeded",
                go_quote(addr)
            ),
            Failure::Rpc(status) => match status.code {
                code::UNIMPLEMENTED => format!(
                    "error: this server does not implement the grpc health protocol \
                     (grpc.health.v1.Health): {}",
                    status.message
                ),
                code::DEADLINE_EXCEEDED => {
                    format!("timeout: health rpc did not complete within {timeout}")
                }
                _ => format!("error: health rpc probe failed: {status}"),
            },
        }
    }
}

/// Connects, then calls; the status field of the response.
async fn probe(
    host: &str,
    port: u16,
    addr: &str,
    service: &str,
    timeout: Duration,
    deadline: Instant,
) -> Result<i32, Failure> {
    // An expired context fails the dial before any attempt, as in grpc-go.
    if timeout.is_zero() {
        return Err(Failure::ConnectTimeout);
    }
    // Go dials an empty host as the local system.
    let dial_host = if host.is_empty() { "127.0.0.1" } else { host };
    let (mut tasks, mut sender) = tokio::time::timeout_at(deadline, connect(dial_host, port, addr))
        .await
        .map_err(|_| Failure::ConnectTimeout)?;

    let authority = if host.is_empty() {
        wire::join_host_port(dial_host, port)
    } else {
        addr.to_owned()
    };
    let request = build_request(&authority, service, deadline)?;
    let call = tasks.drive(call(&mut sender, request));
    match tokio::time::timeout_at(deadline, call).await {
        Err(_) => Err(Failure::Rpc(RpcStatus::new(
            code::DEADLINE_EXCEEDED,
            "context deadline exceeded",
        ))),
        Ok(result) => result.map_err(Failure::Rpc),
    }
}

/// grpc-go's blocking dial: attempts until one gets a ready HTTP/2 connection, waiting the
/// connect backoff after each failure. Only the caller's deadline ends it.
async fn connect(host: &str, port: u16, addr: &str) -> (Tasks, http2::SendRequest<Full<Bytes>>) {
    let mut backoff = BASE_BACKOFF;
    loop {
        let mut tasks = Tasks::new();
        match connect_once(host, port, &mut tasks).await {
            Ok(sender) => return (tasks, sender),
            Err(reason) => {
                tracing::debug!(%addr, %reason, ?backoff, "grpc probe: connection attempt failed");
            }
        }
        drop(tasks);
        tokio::time::sleep(backoff).await;
        backoff = backoff.mul_f64(BACKOFF_MULTIPLIER).min(MAX_BACKOFF);
    }
}

/// One connection attempt: TCP, the client preface, then the server's preface.
async fn connect_once(
    host: &str,
    port: u16,
    tasks: &mut Tasks,
) -> Result<http2::SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|error| format!("dial tcp: {error}"))?;
    // Go's dialer sets TCP_NODELAY; a failure only costs latency.
    let _ = stream.set_nodelay(true);
    let (verdict_tx, verdict_rx) = oneshot::channel();
    let io = TokioIo::new(PrefaceWatch::new(stream, verdict_tx));
    let handshake = http2::Builder::new(tasks.executor()).handshake(io);
    let (sender, connection) = tasks
        .drive(handshake)
        .await
        .map_err(|error| format!("http2 handshake: {}", error_chain(&error)))?;
    tasks.push(async move {
        // Why the result is ignored: a connection error also fails the call waiting on it,
        // which is where it is reported.
        let _ = connection.await;
    });
    match tasks.drive(verdict_rx).await {
        Ok(Ok(())) => Ok(sender),
        Ok(Err(reason)) => Err(reason),
        Err(_) => Err("connection closed before server preface received".to_owned()),
    }
}

/// The `Check` request as grpc-go sends it: POST to the method path with
/// `content-type: application/grpc`, `te: trailers`, the kubelet's user agent and the time
/// left as `grpc-timeout`.
fn build_request(
    authority: &str,
    service: &str,
    deadline: Instant,
) -> Result<Request<Full<Bytes>>, Failure> {
    let uri = format!("http://{authority}{}", wire::CHECK_PATH);
    let timeout = wire::encode_timeout(deadline.saturating_duration_since(Instant::now()));
    Request::builder()
        .method(Method::POST)
        .version(Version::HTTP_2)
        .uri(uri)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/grpc"))
        .header(USER_AGENT, format!("kube-probe/{KUBE_VERSION}"))
        .header(TE, HeaderValue::from_static("trailers"))
        .header("grpc-timeout", timeout)
        .body(Full::new(wire::encode_request(service)))
        .map_err(|error| {
            Failure::Rpc(RpcStatus::new(
                code::INTERNAL,
                format!("transport: invalid request: {error}"),
            ))
        })
}

/// Sends the request and reads the whole answer; the response's serving status.
async fn call(
    sender: &mut http2::SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<i32, RpcStatus> {
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| transport_status(&error))?;
    wire::check_response_head(response.status(), response.headers())?;
    let (parts, mut body) = response.into_parts();
    let mut answer = wire::ResponseBody {
        trailers_only: hyper::body::Body::is_end_stream(&body),
        headers: parts.headers,
        ..Default::default()
    };
    let mut data = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| transport_status(&error))?;
        match frame.into_data() {
            Ok(chunk) => {
                data.extend_from_slice(&chunk);
                // Refuse an oversized message before reading it, as grpc-go does.
                if let Some(status) = wire::oversized_message(&data) {
                    return Err(status);
                }
                // One message and the prefix of a second are enough to know the answer is
                // wrong (a second message is a cardinality violation); stop reading there.
                if data.len() > 2 * (wire::MAX_RECEIVE_MESSAGE_BYTES + 5) {
                    break;
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    answer.trailers = Some(trailers);
                }
            }
        }
    }
    answer.data = data.freeze();
    wire::finish_call(&answer)
}

/// The status grpc-go gives a call whose stream or connection broke: `Unavailable` with what
/// was read (`EOF` for a closed connection).
fn transport_status(error: &hyper::Error) -> RpcStatus {
    let closed = error.is_closed() || error.is_canceled() || error.is_incomplete_message();
    let eof = std::iter::successors(std::error::Error::source(error), |e| e.source())
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::UnexpectedEof);
    let reason = if closed || eof {
        "EOF".to_owned()
    } else {
        error_chain(error)
    };
    RpcStatus::new(
        code::UNAVAILABLE,
        format!("error reading from server: {reason}"),
    )
}

/// An error and its sources, joined with ": ", first letters lowercased.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut current = Some(error);
    while let Some(error) = current {
        let text = error.to_string();
        let mut chars = text.chars();
        let text: String = match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect(),
            None => String::new(),
        };
        if !text.is_empty() && parts.last() != Some(&text) {
            parts.push(text);
        }
        current = error.source();
    }
    parts.join(": ")
}
