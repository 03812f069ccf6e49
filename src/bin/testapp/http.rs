//! The HTTP server of `serve`: HTTP/1.1 and h2c on one port, one handler per endpoint (the
//! gRPC health service is in `grpc`).
//!
//! The server never decides when to stop; `serve` flips the `stop` watch and the server then
//! stops accepting, lets every connection finish its in-flight requests (idle keep-alive
//! connections close, HTTP/2 connections get GOAWAY) and returns.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::grpc::{self, GrpcBody};
use crate::record::Recorder;
use crate::serve::Event;

/// The response header that names the backend that answered.
pub const NAME_HEADER: &str = "x-testapp-name";

/// The body of every response: plain text, or a gRPC message and trailers.
pub type Body = Either<Full<Bytes>, GrpcBody>;

/// State shared by every request handler.
pub struct App {
    /// Where events are recorded; also holds the name.
    pub recorder: Arc<Recorder>,
    /// The name as a header value, made once.
    pub name_header: HeaderValue,
    /// When the process started, for `--ready-after` and `--healthy-for`.
    pub started: Instant,
    /// /readyz fails until this long after `started`.
    pub ready_after: Duration,
    /// /healthz fails from this long after `started`, if set.
    pub healthy_for: Option<Duration>,
    /// /readyz fails once `stop_signalled` is set.
    pub unready_on_term: bool,
    /// Record every request, not only /echo.
    pub record_requests: bool,
    /// Set by /fail-health.
    pub health_failed: AtomicBool,
    /// Set by /fail-ready.
    pub ready_failed: AtomicBool,
    /// Set when a signal handled in `exit` or `drain` mode arrived.
    pub stop_signalled: Arc<AtomicBool>,
    /// Asks `serve` to exit (/exit).
    pub events: mpsc::UnboundedSender<Event>,
}

/// Accepts connections until `stop` turns true, then waits for every connection to finish.
pub async fn run(listener: TcpListener, app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    // Cloned for connections; `stop` itself is borrowed by the select below.
    let connection_stop = stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, app.clone(), connection_stop.clone()));
                }
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning on the same error.
                    eprintln!("podvisor-testapp: accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stopped(&mut stop) => break,
        }
    }
    // Closing the listener makes new connections fail at once (RST) instead of queueing.
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Serves one connection; on `stop`, shuts it down gracefully.
async fn serve_connection(stream: TcpStream, app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let service = service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(route(&app, request).await) }
    });
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    // Why results are ignored: clients resetting connections is normal under test and
    // benchmark load, and nothing about it is worth recording.
    tokio::select! {
        _ = connection.as_mut() => return,
        () = stopped(&mut stop) => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

/// Resolves once `stop` is true (or its sender is gone, which also means stop).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // Why the result is ignored: an error means the sender was dropped, i.e. `serve` is
    // exiting anyway.
    let _ = stop.wait_for(|stopping| *stopping).await;
}

impl App {
    /// Healthy unless /fail-health was hit or `--healthy-for` elapsed; /healthz and the gRPC
    /// health service report this.
    pub fn healthy(&self) -> bool {
        let expired = self
            .healthy_for
            .is_some_and(|period| self.started.elapsed() >= period);
        !expired && !self.health_failed.load(Ordering::Relaxed)
    }
}

/// Records one request if asked to, and hands it to the gRPC service or the HTTP endpoints.
async fn route(app: &App, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path();
    if app.record_requests && path != "/echo" {
        app.recorder.record(
            "http",
            &[("path", &path), ("method", &request.method().as_str())],
        );
    }
    if path == grpc::CHECK_PATH {
        grpc::check(app, request).await
    } else {
        handle(app, request).await.map(Either::Left)
    }
}

/// Answers one request to an HTTP endpoint.
async fn handle(app: &App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    match path.as_str() {
        "/" | "/hostname" => text(app, StatusCode::OK, app.recorder.name().to_owned()),
        "/pid" => text(app, StatusCode::OK, std::process::id().to_string()),
        "/healthz" => healthz(app),
        "/readyz" => readyz(app),
        "/fail-health" => {
            app.health_failed.store(true, Ordering::Relaxed);
            text(app, StatusCode::OK, "ok".to_owned())
        }
        "/fail-ready" => {
            app.ready_failed.store(true, Ordering::Relaxed);
            text(app, StatusCode::OK, "ok".to_owned())
        }
        "/echo" => {
            let msg = query_param(&query, "msg").unwrap_or_default();
            app.recorder
                .record("http", &[("path", &"/echo"), ("msg", &msg)]);
            text(app, StatusCode::OK, msg)
        }
        "/sleep" => match query_param(&query, "ms").map(|ms| ms.parse::<u64>()) {
            Some(Ok(ms)) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                text(app, StatusCode::OK, format!("slept ms={ms}"))
            }
            _ => bad_request(app, "expected /sleep?ms=N"),
        },
        "/exit" => match query_param(&query, "code").map_or(Ok(0), |code| code.parse::<u8>()) {
            Ok(code) => {
                // Why the send result is ignored: `serve` holds a receiver for its whole life.
                let _ = app.events.send(Event::Exit {
                    code,
                    reason: "http",
                });
                text(app, StatusCode::OK, format!("exiting code={code}"))
            }
            Err(_) => bad_request(app, "expected /exit?code=N with N in 0-255"),
        },
        _ => {
            if let Some(hook) = path.strip_prefix("/hook/").filter(|h| !h.is_empty()) {
                let hook = percent_decode(hook);
                app.recorder
                    .record("hook", &[("name", &hook), ("via", &"http")]);
                text(app, StatusCode::OK, "ok".to_owned())
            } else if let Some(code) = path.strip_prefix("/status/") {
                match code.parse::<u16>().ok().filter(|c| (200..=599).contains(c)) {
                    Some(code) => {
                        // The range check above guarantees a valid status code.
                        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
                        text(app, status, String::new())
                    }
                    None => bad_request(app, "expected /status/CODE with CODE in 200-599"),
                }
            } else {
                text(app, StatusCode::NOT_FOUND, "not found".to_owned())
            }
        }
    }
}

/// /healthz: 200 unless /fail-health was hit or `--healthy-for` elapsed.
fn healthz(app: &App) -> Response<Full<Bytes>> {
    if app.healthy() {
        text(app, StatusCode::OK, "ok".to_owned())
    } else {
        text(
            app,
            StatusCode::INTERNAL_SERVER_ERROR,
            "unhealthy".to_owned(),
        )
    }
}

/// /readyz: 503 before `--ready-after`, after /fail-ready, and after a stop signal with
/// `--unready-on-term`.
fn readyz(app: &App) -> Response<Full<Bytes>> {
    let ready = app.started.elapsed() >= app.ready_after
        && !app.ready_failed.load(Ordering::Relaxed)
        && !(app.unready_on_term && app.stop_signalled.load(Ordering::Relaxed));
    if ready {
        text(app, StatusCode::OK, "ok".to_owned())
    } else {
        text(app, StatusCode::SERVICE_UNAVAILABLE, "not ready".to_owned())
    }
}

fn bad_request(app: &App, message: &str) -> Response<Full<Bytes>> {
    text(app, StatusCode::BAD_REQUEST, message.to_owned())
}

/// A plain-text response carrying the name header.
pub fn text(app: &App, status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(NAME_HEADER, app.name_header.clone());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// The percent-decoded value of the first `key` in a query string.
fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

/// Decodes `%XX` and `+` (as in HTML forms); malformed escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        // Two hex digits make at most 0xFF.
                        out.push((hi * 16 + lo) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode() {
        assert_eq!(
            query_param("msg=hello%20world", "msg").as_deref(),
            Some("hello world")
        );
        assert_eq!(query_param("a=1&msg=x+y", "msg").as_deref(), Some("x y"));
        assert_eq!(query_param("msg", "msg").as_deref(), Some(""));
        assert_eq!(query_param("a=1", "msg"), None);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }
}
