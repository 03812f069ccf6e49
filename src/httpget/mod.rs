//! The HTTP GET client shared by `httpGet` lifecycle hooks and probes.
//!
//! It reproduces what the kubelet does on the wire and in its messages:
//! - the request: upstream's `NewRequestForHTTPGetAction` (pkg/probe/http/request.go): URL
//!   built and rendered as Go builds it, default `User-Agent` and `Accept`, `Host` override;
//! - the client: Go's `http.Client` with the kubelet's `RedirectChecker(false)` (same-host
//!   redirects only, at most 10), no proxy, TLS without certificate verification, one
//!   connection per request;
//! - the results: `DoHTTPProbe` (pkg/probe/http/http.go) for probes, and `runHTTPHandler`
//!   (pkg/kubelet/lifecycle/handlers.go) for hooks, including the HTTPS→HTTP fallback;
//! - the error texts of Go's `net/http`, which users know from `kubectl describe`.
//!
//! It must not do anything else: it never spawns processes (nor tasks: each connection is
//! driven inside the caller's future), knows nothing of pods, containers or ports beyond the
//! [`HttpGetRequest`] it is given (the caller picks the host and resolves named ports), and
//! emits no events or metrics: it reports what happened
//! ([`HttpGetResponse::fell_back_to_http`]) and the caller records it.
//!
//! Cancellation: dropping the future of [`get`] closes the connection; a preStop hook is
//! bounded that way by the grace period, as upstream (hooks have no timeout of their own).

mod client;
mod error;
mod request;
mod tls;
mod url;

#[cfg(test)]
mod tests;

use std::time::Duration;

use bytes::Bytes;

pub use error::{BodyError, Cause, HttpGetError};

use request::Prepared;

/// The Kubernetes minor version in the default User-Agent (`kube-probe/1.32`), the version
/// whose behaviour podvisor reproduces.
pub const KUBE_VERSION: &str = "1.32";

/// How much of a response body is read (upstream's `maxRespBodyLength`, 10 KiB). The rest is
/// ignored, not an error.
pub const MAX_BODY_BYTES: usize = 10 * 1024;

/// A scheme podvisor can send httpGet requests with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP/1.1.
    Http,
    /// HTTP/1.1 over TLS, the server's certificate not verified.
    Https,
}

impl Scheme {
    /// Parses `httpGet.scheme` as upstream does: case-insensitively, "" meaning HTTP. Any
    /// other value is `None`; upstream accepts it in the URL and the request then fails with
    /// `unsupported protocol scheme`, which [`get`] reproduces.
    pub fn parse(scheme: &str) -> Option<Scheme> {
        match scheme.to_ascii_lowercase().as_str() {
            "" | "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }

    /// The lower-case name used in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Who sends the request; decides the User-Agent, the HTTPS→HTTP fallback and which result
/// function applies ([`hook_result`] or [`probe_result`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A postStart or preStop hook: `User-Agent: kube-lifecycle/1.32`, HTTPS→HTTP fallback.
    Hook,
    /// A startup, readiness or liveness probe: `User-Agent: kube-probe/1.32`.
    Probe,
}

/// One httpGet action, with the host and port already chosen by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGetRequest {
    /// `httpGet.scheme` as written in the spec ("HTTP", "https", "baz"); lower-cased here,
    /// "" means HTTP.
    pub scheme: String,
    /// `httpGet.host`, or the pod IP chosen by the caller when that is empty. An IPv6 address
    /// is given without brackets.
    pub host: String,
    /// The port, named ports already resolved against the container's ports by the caller.
    pub port: u16,
    /// `httpGet.path` as written; a leading "/" is added when missing, query and fragment are
    /// kept (the fragment is not sent).
    pub path: String,
    /// `httpGet.httpHeaders`, in order. Names are case-insensitive. A `Host` header sets the
    /// request's Host; a `User-Agent` or `Accept` header replaces the default, and an empty
    /// value removes it.
    pub headers: Vec<(String, String)>,
    /// Hook or probe.
    pub kind: Kind,
    /// Probes: `timeoutSeconds`, covering connection, redirects and body. Hooks: `None`, no
    /// timeout (the caller bounds a preStop hook by dropping the future).
    pub timeout: Option<Duration>,
}

impl HttpGetRequest {
    /// The request URL exactly as upstream renders it, e.g. `http://10.0.0.5:8080/healthz`,
    /// `https://foo:70/bar`, `http://[::1]:80/foo?k=v`, `baz://foo:80/bar`.
    pub fn url(&self) -> String {
        request::request_url(self).to_string()
    }
}

/// What the server answered (after any followed redirects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGetResponse {
    /// The status code of the last response.
    pub status: u16,
    /// At most [`MAX_BODY_BYTES`] of its body.
    pub body: Bytes,
    /// Its Location header, e.g. of a redirect to another host that was not followed.
    pub location: Option<String>,
    /// A hook's HTTPS request was answered in plain HTTP and the retry over HTTP (without the
    /// Authorization header) produced this response. The caller emits the Warning event
    /// `LifecycleHTTPFallback` with [`fallback_event_message`].
    pub fell_back_to_http: bool,
}

/// The result of a probe, as upstream's `probe.Result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeOutcome {
    /// The probe succeeded.
    Success,
    /// The probe succeeded with a warning (a redirect that was not followed); upstream
    /// counts it as success and emits a `ProbeWarning` event.
    Warning,
    /// The probe failed.
    Failure,
}

/// Sends the GET described by `req` and reads at most [`MAX_BODY_BYTES`] of the answer.
///
/// Redirects are followed only to the same host name (any port), at most 10; a redirect to
/// another host is returned as the response. For hooks, an HTTPS request answered in plain
/// HTTP is retried over HTTP without the `Authorization` header; if the retry fails too, the
/// first error is returned, as upstream.
pub async fn get(req: &HttpGetRequest) -> Result<HttpGetResponse, HttpGetError> {
    let prepared = Prepared::new(req)?;
    let deadline = req.timeout.map(|t| tokio::time::Instant::now() + t);
    let result = client::do_request(&prepared, deadline).await;
    match result {
        Err(error) if req.kind == Kind::Hook && error.is_http_response_error() => {
            tracing::debug!(
                host = %prepared.url.host,
                %error,
                "HTTPS request to lifecycle hook got HTTP response, retrying with HTTP"
            );
            match client::do_request(&prepared.http_fallback(), deadline).await {
                Ok(mut response) => {
                    response.fell_back_to_http = true;
                    Ok(response)
                }
                // The retry got a response; only its body failed, which hooks ignore.
                Err(HttpGetError::Body {
                    url,
                    mut response,
                    cause,
                }) => {
                    response.fell_back_to_http = true;
                    Err(HttpGetError::Body {
                        url,
                        response,
                        cause,
                    })
                }
                Err(_) => Err(error),
            }
        }
        other => other,
    }
}

/// Upstream's `DoHTTPProbe`: the probe result and its output.
///
/// - 200–299: Success, the body as output;
/// - 300–399 (a redirect that was not followed): Warning, `Probe terminated redirects,
///   Response body: …`;
/// - any other code: Failure, `HTTP probe failed with statuscode: N`;
/// - no response: Failure, Go's error text (`Get "http://…": dial tcp …: connect: connection
///   refused`); a body that failed to read: Failure with that error (upstream reports it as
///   a probe error, which also counts as a failure).
pub fn probe_result(result: Result<HttpGetResponse, HttpGetError>) -> (ProbeOutcome, String) {
    match result {
        Ok(response) => {
            let body = String::from_utf8_lossy(&response.body);
            match response.status {
                200..=299 => (ProbeOutcome::Success, body.into_owned()),
                300..=399 => (
                    ProbeOutcome::Warning,
                    format!("Probe terminated redirects, Response body: {body}"),
                ),
                status => (
                    ProbeOutcome::Failure,
                    format!("HTTP probe failed with statuscode: {status}"),
                ),
            }
        }
        Err(error) => (ProbeOutcome::Failure, error.to_string()),
    }
}

/// Upstream's `runHTTPHandler`: any HTTP response is a success, whatever its status (a 500
/// from a preStop endpoint does not fail the hook); only a request that got no response
/// fails. A body that failed to read is ignored, as upstream discards it.
///
/// On failure the caller reports `HTTP lifecycle hook (PATH) for Container "C" in Pod "P"
/// failed - error: ERROR` with the error's text.
pub fn hook_result(
    result: Result<HttpGetResponse, HttpGetError>,
) -> Result<HttpGetResponse, HttpGetError> {
    match result {
        Err(HttpGetError::Body { response, .. }) => Ok(*response),
        other => other,
    }
}

/// The message of upstream's `LifecycleHTTPFallback` Warning event for `req`:
/// `request to HTTPS lifecycle hook HOST:PORT got HTTP response, retry with HTTP succeeded`.
pub fn fallback_event_message(req: &HttpGetRequest) -> String {
    format!(
        "request to HTTPS lifecycle hook {} got HTTP response, retry with HTTP succeeded",
        request::request_url(req).host
    )
}
