//! The HTTP/1.1 forwarding path: a client connection that speaks HTTP/1.1 to a listener
//! whose backends speak HTTP/1.1, proxied the way nginx and HAProxy do it. A request's head
//! is parsed in place (`httparse`) from the connection's buffer and written once for the
//! backend with only the hop-by-hop headers, the framing and `X-Forwarded-For` changed; its
//! body is forwarded by its framing (`Content-Length`, chunked: passed through as it came);
//! the response comes back the same way over a pooled connection. No `Request`, `Response`
//! or `HeaderMap` is built and no second task is woken per request (BENCHMARKS.md
//! "An HTTP/1.1 forwarding path of podvisor's own").
//!
//! The same rules as hyper's path in `http.rs`: endpoint picks and retries (idempotent
//! requests whose connect failed, or that a new connection lost before any answer), the
//! termination barrier's dispatch count held until the response head, fallback requests on
//! fresh connections with `Connection: close`, 400/431/502/503 written by the gateway. An
//! upgrade (`Connection: upgrade` with `Upgrade`: a WebSocket) is passed on, and a `101`
//! answer turns the connection into a tunnel between client and backend, as on an L4 port.
//!
//! Must not: build a header map or buffer a whole body; pass on a framing element (a chunk
//! size line, a framing field) as received instead of checked and written again; hand the
//! connection to hyper other than between requests (an h2c client's preface, or the
//! listener's backends now speaking h2c); pool a backend connection whose response has not
//! ended cleanly; send a backend connection to another worker (it belongs to the runtime
//! that opened it).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tracing::debug;

use super::http::{Client, error_chain, is_close_or_keep_alive};
use super::route::{Pick, Route, Tried, display_port};
use super::{ConnCount, Protocol, connect};

/// Largest request or response head (hyper's default buffer limit is about 400 KiB; nginx's
/// `large_client_header_buffers` 32 KiB); a larger request head is answered 431.
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one head (hyper's default is 100).
const MAX_HEADERS: usize = 100;
/// Room a read gives the kernel at least (hyper starts its buffers at 8 KiB too).
const READ_SIZE: usize = 8 * 1024;
/// Bytes collected before they are written on, when a body is forwarded.
const WRITE_SIZE: usize = 64 * 1024;
/// How long a client may take to send a request head, idle time on a kept-alive connection
/// included (hyper's default header read timeout): an idle client connection closes after it.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The HTTP/2 connection preface an h2c client starts with (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An open HTTP/1.1 connection to a backend with the bytes read from it and not yet used.
pub(crate) struct BackendConn {
    stream: TcpStream,
    buf: BytesMut,
    _count: ConnCount,
}

impl BackendConn {
    /// Whether a pooled connection can take a request: the backend has not closed it and
    /// sent nothing since its last response. Costs no system call unless the socket was
    /// reported readable (then one `read`, which sees the close).
    pub(crate) fn is_usable(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// Serves one client connection on the HTTP/1.1 path until it closes, the listener is
/// removed or the gateway shuts down (a request being served finishes first).
pub(crate) async fn serve(
    route: Arc<Route>,
    stream: TcpStream,
    peer: SocketAddr,
    closed: CancellationToken,
) {
    // Why ignored: Nagle only delays small writes; the connection works either way.
    let _ = stream.set_nodelay(true);
    let mut conn = ClientConn {
        stream,
        buf: BytesMut::with_capacity(READ_SIZE),
        client: Client::new(peer.ip()),
        closed,
        first: true,
        response_text: Vec::new(),
        unread: false,
    };
    let end = conn.serve(&route).await;
    match end {
        End::Closed => {}
        End::HandOff => {
            let ClientConn {
                stream,
                buf,
                closed,
                ..
            } = conn;
            let io = Prefixed {
                prefix: buf.freeze(),
                stream,
            };
            super::http::serve_io(route, io, peer, closed).await;
        }
        End::Error(error) => {
            debug!(service = %route.key.service, port = %route.key.port_name, %peer, %error, "client connection ended with an error");
        }
    }
}

/// How a client connection's loop ended.
enum End {
    /// Closed by the client, or by the gateway after a response.
    Closed,
    /// Not for this path (h2c, or the backends now speak h2c): hyper serves it from here.
    HandOff,
    /// A read or write failed, or the client sent something unusable.
    Error(String),
}

/// A client connection on this path.
struct ClientConn {
    stream: TcpStream,
    /// Bytes read from the client and not yet used (pipelined requests included).
    buf: BytesMut,
    client: Client,
    /// The route's (or a child of it): no new request is read once cancelled.
    closed: CancellationToken,
    /// No request read yet (an h2c preface is looked for only then).
    first: bool,
    /// The last response head written again for the client (see `parse_response`).
    response_text: Vec<u8>,
    /// The client may still be sending a request the gateway will not read (a body cut
    /// short, a rejected head): the connection closes lingering (see `linger_close`).
    unread: bool,
}

/// How a message's body is framed (RFC 9112 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body.
    Empty,
    Length(u64),
    Chunked,
    /// The body ends when the backend closes the connection (responses only).
    UntilClose,
}

/// What the gateway needs from a client's request once its head has been written again.
#[derive(Debug)]
struct RequestInfo {
    framing: Framing,
    /// HTTP/1.0 or HTTP/1.1 (the minor version).
    version: u8,
    /// The client wants the connection kept after the response.
    keep_alive: bool,
    /// `Expect: 100-continue`: the gateway answers `100 Continue` itself before it reads the
    /// body (the backend never sees the expectation).
    expect_continue: bool,
    is_head: bool,
    idempotent: bool,
    /// `Connection: upgrade` with `Upgrade` (a WebSocket, say): passed on; a `101` answer
    /// turns the connection into a tunnel between client and backend.
    upgrade: bool,
}

/// What went wrong with a client's request head: the status to answer it with.
struct Rejected(StatusCode, &'static str);

impl ClientConn {
    async fn serve(&mut self, route: &Route) -> End {
        // The request head written for the backend, and the bytes of each write.
        let mut head = Vec::with_capacity(1024);
        let mut out = Vec::with_capacity(READ_SIZE);
        let cancelled = self.closed.clone().cancelled_owned();
        tokio::pin!(cancelled);
        let sleep = tokio::time::sleep(HEADER_READ_TIMEOUT);
        tokio::pin!(sleep);
        loop {
            if route.protocol() != Protocol::Http {
                return End::HandOff;
            }
            let info = match self
                .read_head(&mut head, cancelled.as_mut(), sleep.as_mut())
                .await
            {
                Next::Request(len, info) => {
                    self.buf.advance(len);
                    info
                }
                Next::Rejected(Rejected(status, why)) => {
                    let body = format!("bad request: {why}\n");
                    // Why ignored: the connection closes either way.
                    let _ =
                        write_local(&mut self.stream, &mut out, status, body.as_bytes(), 1, true)
                            .await;
                    linger_close(&mut self.stream).await;
                    return End::Closed;
                }
                Next::Idle => return End::Closed,
                Next::HandOff => return End::HandOff,
                Next::Error(error) => return End::Error(error),
            };
            self.first = false;
            let start = Instant::now();
            route.metrics.requests.inc();
            let keep = match self.forward(route, &info, &head, &mut out, start).await {
                Ok(keep) => keep,
                Err(error) => return End::Error(error),
            };
            // A connection that forwarded a large body gives its buffer back.
            if out.capacity() > WRITE_SIZE {
                out = Vec::with_capacity(READ_SIZE);
            }
            if !keep || self.closed.is_cancelled() {
                if self.unread || !self.buf.is_empty() {
                    linger_close(&mut self.stream).await;
                } else {
                    // Why ignored: the connection closes either way.
                    let _ = self.stream.shutdown().await;
                }
                return End::Closed;
            }
        }
    }

    /// Reads the next request head and writes it again for the backend into `head` (without
    /// its final empty line).
    async fn read_head(
        &mut self,
        head: &mut Vec<u8>,
        mut cancelled: Pin<&mut WaitForCancellationFutureOwned>,
        mut sleep: Pin<&mut tokio::time::Sleep>,
    ) -> Next {
        let mut deadline_set = false;
        // Bytes known not to end the head: after a partial head, only what completes one is
        // parsed again (a head sent a byte at a time costs linear time, not quadratic).
        let mut scanned: usize = 0;
        loop {
            if !self.buf.is_empty() {
                let n = self.buf.len().min(H2_PREFACE.len());
                if self.first && self.buf[..n] == H2_PREFACE[..n] {
                    if n == H2_PREFACE.len() {
                        return Next::HandOff;
                    }
                    // A prefix of the preface: read on.
                } else if (scanned == 0 || has_blank_line(&self.buf[scanned.saturating_sub(2)..]))
                    && let Some(parsed) = parse_request(&self.buf, &self.client, head)
                {
                    return match parsed {
                        Ok((len, info)) => Next::Request(len, info),
                        Err(rejected) => Next::Rejected(rejected),
                    };
                }
                scanned = self.buf.len();
                if self.buf.len() >= MAX_HEAD {
                    return Next::Rejected(Rejected(
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        "request head larger than 64 KiB",
                    ));
                }
            } else if self.closed.is_cancelled() {
                return Next::Idle;
            }
            self.buf.reserve(READ_SIZE);
            // Most reads find the bytes there; the timer and the shutdown signal are only
            // armed when the client makes us wait.
            let read = match self.stream.try_read_buf(&mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !deadline_set {
                        sleep
                            .as_mut()
                            .reset(tokio::time::Instant::now() + HEADER_READ_TIMEOUT);
                        deadline_set = true;
                    }
                    let idle = self.buf.is_empty();
                    tokio::select! {
                        read = self.stream.read_buf(&mut self.buf) => read,
                        () = cancelled.as_mut(), if idle => return Next::Idle,
                        () = sleep.as_mut() => {
                            return Next::Error("request head not received within 30 s".into());
                        }
                    }
                }
                read => read,
            };
            match read {
                Ok(0) if self.buf.is_empty() => return Next::Idle,
                Ok(0) => {
                    return Next::Error("client closed the connection in a request head".into());
                }
                Ok(_) => {}
                Err(error) => return Next::Error(error.to_string()),
            }
        }
    }

    /// After a `101` to an upgrade: the head in `out` (and what the backend sent after it) to
    /// the client, what the client sent after its request (`pending`: taken but not yet
    /// written, then the buffer) to the backend, then bytes both ways until both directions
    /// have ended, as on an L4 port (a half-close is passed on).
    async fn tunnel(
        &mut self,
        mut conn: BackendConn,
        pending: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        out.extend_from_slice(&conn.buf);
        self.stream
            .write_all(out)
            .await
            .map_err(|e| e.to_string())?;
        conn.stream
            .write_all(pending)
            .await
            .map_err(|e| e.to_string())?;
        conn.stream
            .write_all(&self.buf)
            .await
            .map_err(|e| e.to_string())?;
        self.buf.clear();
        tokio::io::copy_bidirectional(&mut self.stream, &mut conn.stream)
            .await
            .map(drop)
            .map_err(|e| format!("upgraded connection: {e}"))
    }

    /// Sends one request to an endpoint (the tries as in `http::forward`) and its response
    /// back. `Ok(true)`: the client connection can take another request.
    async fn forward(
        &mut self,
        route: &Route,
        info: &RequestInfo,
        head: &[u8],
        out: &mut Vec<u8>,
        start: Instant,
    ) -> Result<bool, String> {
        let config = &route.shared.config;
        let replayable = info.idempotent && info.framing == Framing::Empty;
        let mut tried = Tried::default();
        let mut tries = 0;
        let mut last_error = String::new();
        // How much of the request body has been read from the client: once any has, the
        // request cannot be tried again; a local answer can keep the connection only if
        // all of it has.
        let mut request_body = BodyProgress::new(info.framing);
        let mut body = if info.framing == Framing::Empty {
            BodyRead::All
        } else {
            BodyRead::None
        };
        while let Some(pick) = route.pick_next(self.client.ip, &tried) {
            let Pick {
                backend,
                fallback,
                in_flight,
                mut dispatch,
            } = pick;
            tries += 1;
            let mut fresh = fallback;
            let exchanged = loop {
                let pooled = if fresh {
                    None
                } else {
                    backend.checkout_conn(config.pool_idle_timeout)
                };
                let reused = pooled.is_some();
                let mut conn = match pooled {
                    Some(conn) => conn,
                    None => match connect(backend.addr, config.connect_timeout).await {
                        Ok(stream) => BackendConn {
                            stream,
                            buf: BytesMut::with_capacity(READ_SIZE),
                            _count: ConnCount::new(&backend),
                        },
                        Err(error) => break Err(TryError::Connect(error.to_string())),
                    },
                };
                out.clear();
                out.extend_from_slice(head);
                // (An upgrade's connection ends with its tunnel, or is not pooled.)
                if fallback && !info.upgrade {
                    out.extend_from_slice(b"connection: close\r\n");
                }
                out.extend_from_slice(b"\r\n");
                if body == BodyRead::None {
                    // No 1xx to an HTTP/1.0 client (RFC 9110 §15.2).
                    if info.expect_continue && info.version == 1 && self.buf.is_empty() {
                        self.stream
                            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    body = BodyRead::Part;
                }
                let BackendConn {
                    stream: backend_stream,
                    buf: backend_buf,
                    ..
                } = &mut conn;
                let watch = (info.framing != Framing::Empty).then_some(backend_buf);
                let (mut client_read, _) = self.stream.split();
                let (_, mut backend_write) = backend_stream.split();
                let sent = forward_body(
                    &mut client_read,
                    &mut self.buf,
                    &mut backend_write,
                    &mut request_body,
                    false,
                    out,
                    watch,
                )
                .await;
                let lost = match sent {
                    Ok(()) | Err(BodyError::Answered) => {
                        if sent.is_ok() {
                            body = BodyRead::All;
                        }
                        match read_response_head(&mut conn, info, &mut self.response_text).await {
                            Ok(response) => break Ok((conn, response)),
                            Err(ResponseError::Lost(error)) => error,
                            Err(ResponseError::Invalid(error)) => {
                                break Err(TryError::Invalid(error));
                            }
                        }
                    }
                    Err(BodyError::Read(error)) => {
                        return Err(format!("reading the request body: {error}"));
                    }
                    Err(BodyError::Write(error)) => error,
                };
                // A pooled connection the backend closed as we sent is the keep-alive race:
                // a request without a body goes again on a fresh connection.
                if reused && replayable {
                    fresh = true;
                    continue;
                }
                break Err(TryError::Lost {
                    reused,
                    error: lost,
                });
            };
            match exchanged {
                Ok((mut conn, response)) => {
                    dispatch.done();
                    backend.succeeded(route);
                    route.metrics.latency.observe(start.elapsed().as_secs_f64());
                    debug!(
                        service = %route.key.service, port = %route.key.port_name,
                        endpoint = %backend.name, status = response.status, tries,
                        "proxied"
                    );
                    // An HTTP/1.0 client gets a chunked body decoded, ended by the close.
                    let decode = response.framing == Framing::Chunked && info.version == 0;
                    // A backend that answered before the end of the request body: the
                    // rest of the body is never read, so neither connection goes on.
                    let keep_client = info.keep_alive
                        && body == BodyRead::All
                        && response.framing != Framing::UntilClose
                        && !decode
                        && !self.closed.is_cancelled();
                    // What of the request body was taken but not yet written to the
                    // backend when it answered early.
                    let pending = if body == BodyRead::Part {
                        std::mem::take(out)
                    } else {
                        Vec::new()
                    };
                    out.clear();
                    write_response_head(&response, &self.response_text, info, keep_client, out);
                    conn.buf.advance(response.head_len);
                    if response.status == 101 {
                        let tunnel = self.tunnel(conn, &pending, out).await;
                        drop(in_flight);
                        return tunnel.map(|()| false);
                    }
                    let mut response_body = BodyProgress::new(response.framing);
                    let (mut client_read, mut client_write) = self.stream.split();
                    let (mut backend_read, mut backend_write) = conn.stream.split();
                    let respond = forward_body(
                        &mut backend_read,
                        &mut conn.buf,
                        &mut client_write,
                        &mut response_body,
                        decode,
                        out,
                        None,
                    );
                    let forwarded = if body == BodyRead::Part {
                        // An early answer: the rest of the request body goes on beside it
                        // (a backend may stream its answer as it reads), until the answer
                        // has ended; then both connections close.
                        let mut pending = pending;
                        let rest = forward_body(
                            &mut client_read,
                            &mut self.buf,
                            &mut backend_write,
                            &mut request_body,
                            false,
                            &mut pending,
                            None,
                        );
                        tokio::pin!(respond, rest);
                        tokio::select! {
                            forwarded = &mut respond => forwarded,
                            sent = &mut rest => {
                                if sent.is_ok() {
                                    body = BodyRead::All;
                                }
                                respond.await
                            }
                        }
                    } else {
                        respond.await
                    };
                    self.unread = body != BodyRead::All;
                    drop(in_flight);
                    return match forwarded {
                        Ok(()) => {
                            if response.reusable
                                && !fallback
                                && body == BodyRead::All
                                && conn.buf.is_empty()
                            {
                                backend.checkin_conn(conn, config.max_idle_per_endpoint);
                            }
                            Ok(keep_client)
                        }
                        Err(BodyError::Read(error)) => {
                            Err(backend.failure(format_args!("failed in a response body: {error}")))
                        }
                        Err(BodyError::Write(error)) => Err(error.to_string()),
                        // Only a request body is forwarded watching for an answer.
                        Err(BodyError::Answered) => unreachable!("no answer is watched for"),
                    };
                }
                Err(TryError::Connect(error)) => {
                    backend.failed(route, &error);
                    last_error = backend.failure(format_args!("failed: {error}"));
                    if !info.idempotent || tries >= config.max_connect_tries {
                        break;
                    }
                    tried.push(backend.addr);
                }
                Err(TryError::Lost { reused, error }) => {
                    // A reused connection lost is the keep-alive race, not a sick backend.
                    if !reused {
                        backend.failed(route, &error);
                    }
                    last_error = backend.failure(format_args!("failed: {}", error_chain(&error)));
                    if !(replayable && tries < config.max_connect_tries) {
                        break;
                    }
                    tried.push(backend.addr);
                }
                Err(TryError::Invalid(error)) => {
                    backend.failed(route, &error);
                    last_error = backend.failure(format_args!("sent an invalid response: {error}"));
                    break;
                }
            }
        }
        route.metrics.latency.observe(start.elapsed().as_secs_f64());
        let (status, text) = if tries == 0 {
            route.metrics.no_endpoints.inc();
            debug!(service = %route.key.service, port = %route.key.port_name, "no ready endpoints: 503");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                route.no_endpoints_body.clone(),
            )
        } else {
            route.metrics.backend_failed.inc();
            debug!(service = %route.key.service, port = %route.key.port_name, error = %last_error, "502");
            (
                StatusCode::BAD_GATEWAY,
                Bytes::from(format!(
                    "bad gateway: service {} port {}: {last_error}\n",
                    route.key.service,
                    display_port(&route.key.port_name)
                )),
            )
        };
        // A body not read to its end leaves the connection mid-request: it closes.
        self.unread = body != BodyRead::All;
        let keep = info.keep_alive && body == BodyRead::All && !self.closed.is_cancelled();
        write_local(&mut self.stream, out, status, &text, info.version, !keep)
            .await
            .map_err(|e| e.to_string())?;
        Ok(keep)
    }
}

/// How much of a request's body the gateway has read from the client.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyRead {
    None,
    Part,
    All,
}

/// What reading the next request head gave.
enum Next {
    /// A request: its head's length in the buffer, and what the gateway needs of it.
    Request(usize, RequestInfo),
    /// A request to answer with an error, then close.
    Rejected(Rejected),
    /// The client closed between requests, or the gateway is shutting down and no request
    /// had started.
    Idle,
    HandOff,
    Error(String),
}

/// Why one try at an endpoint failed.
enum TryError {
    /// Nothing was sent.
    Connect(String),
    /// Sent (or partly) and no response head came: the connection failed or closed.
    Lost { reused: bool, error: io::Error },
    /// The backend's answer is not HTTP/1.x.
    Invalid(String),
}

/// Whether `bytes` hold an empty line's end (`\n\n` or `\n\r\n`), which a head ends with.
fn has_blank_line(bytes: &[u8]) -> bool {
    bytes.windows(2).enumerate().any(|(i, w)| {
        w[0] == b'\n' && (w[1] == b'\n' || (w[1] == b'\r' && bytes.get(i + 2) == Some(&b'\n')))
    })
}

/// Parses the request head at the start of `buf` and writes it again for the backend into
/// `head`. `None`: the head is not complete yet.
fn parse_request(
    buf: &[u8],
    client: &Client,
    head: &mut Vec<u8>,
) -> Option<Result<(usize, RequestInfo), Rejected>> {
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return None,
        Err(httparse::Error::TooManyHeaders) => {
            return Some(Err(Rejected(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "more than 100 header fields",
            )));
        }
        Err(error) => {
            return Some(Err(Rejected(
                StatusCode::BAD_REQUEST,
                match error {
                    httparse::Error::HeaderName => "invalid header name",
                    httparse::Error::HeaderValue => "invalid header value",
                    httparse::Error::Token => "invalid method or request target",
                    httparse::Error::Version => "invalid HTTP version",
                    _ => "invalid request line",
                },
            )));
        }
    };
    let method = request.method.unwrap_or_default();
    let target = request.path.unwrap_or_default();
    let version = request.version.unwrap_or(1);
    Some(
        rewrite_request(method, target, version, request.headers, client, head)
            .map(|info| (len, info)),
    )
}

/// Writes a client's request head again for a backend: HTTP/1.1, origin form, hop-by-hop
/// headers (and those `Connection` names) dropped, the framing normalised, the client
/// appended to `X-Forwarded-For`. `Host` is kept as the client sent it.
fn rewrite_request(
    method: &str,
    target: &str,
    version: u8,
    headers: &[httparse::Header<'_>],
    client: &Client,
    head: &mut Vec<u8>,
) -> Result<RequestInfo, Rejected> {
    let bad = |why| Err(Rejected(StatusCode::BAD_REQUEST, why));
    if method == "CONNECT" {
        return Err(Rejected(
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT is not supported by a Service's gateway",
        ));
    }
    let hop = Hop::scan(headers);
    let Ok(length) = hop.content_length() else {
        return bad("invalid or conflicting Content-Length");
    };
    let framing = match (hop.transfer_encoding, length) {
        (Some(value), _) => {
            if !last_coding_is_chunked(value) {
                return bad("Transfer-Encoding must end with chunked");
            }
            // Other codings would have to be passed on with the body (as nginx, answered 501).
            if !value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(Rejected(
                    StatusCode::NOT_IMPLEMENTED,
                    "transfer codings other than chunked are not supported",
                ));
            }
            Framing::Chunked
        }
        (None, Some(0) | None) => Framing::Empty,
        (None, Some(n)) => Framing::Length(n),
    };
    head.clear();
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    let mut host_from_target = None;
    if target.starts_with('/') || target == "*" {
        head.extend_from_slice(target.as_bytes());
    } else {
        // Absolute form (a proxy-style request): the authority becomes the Host if there
        // is none, the request line the path.
        let Ok(uri) = http::Uri::try_from(target) else {
            return bad("invalid request target");
        };
        let (Some(authority), Some(_)) = (uri.authority(), uri.scheme()) else {
            return bad("invalid request target");
        };
        host_from_target = Some(authority.as_str().to_owned());
        head.extend_from_slice(uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    }
    head.extend_from_slice(b" HTTP/1.1\r\n");
    let mut has_host = false;
    let mut forwarded_for: Option<Vec<u8>> = None;
    let mut expect_continue = false;
    for header in headers {
        let name = header.name.as_bytes();
        if hop.drops(name, header.value) {
            continue;
        }
        if name.eq_ignore_ascii_case(b"host") {
            // One Host only (RFC 9112 §3.2); an absolute-form target's authority replaces
            // it (§3.2.2).
            if has_host {
                return bad("more than one Host header");
            }
            has_host = true;
            if host_from_target.is_some() {
                continue;
            }
        } else if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            let value = forwarded_for.get_or_insert_with(Vec::new);
            if !value.is_empty() {
                value.extend_from_slice(b", ");
            }
            value.extend_from_slice(header.value);
            continue;
        } else if name.eq_ignore_ascii_case(b"expect")
            && header.value.eq_ignore_ascii_case(b"100-continue")
        {
            expect_continue = true;
            continue;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        push_header(head, name, header.value);
    }
    if let Some(host) = host_from_target {
        push_header(head, b"host", host.as_bytes());
    } else if !has_host && version == 1 {
        return bad("no Host header");
    }
    match framing {
        Framing::Chunked => push_header(head, b"transfer-encoding", b"chunked"),
        Framing::Length(n) => push_length(head, n),
        Framing::Empty if length == Some(0) => push_length(head, 0),
        Framing::Empty | Framing::UntilClose => {}
    }
    let upgrade = if version == 1 { hop.upgrade() } else { None };
    if let Some(protocols) = upgrade {
        push_header(head, b"upgrade", protocols);
        push_header(head, b"connection", b"upgrade");
    }
    match forwarded_for {
        Some(mut value) if value.iter().all(|b| (b' '..=b'~').contains(b)) => {
            value.extend_from_slice(b", ");
            value.extend_from_slice(client.forwarded_for());
            push_header(head, b"x-forwarded-for", &value);
        }
        _ => push_header(head, b"x-forwarded-for", client.forwarded_for()),
    }
    let keep_alive = if version == 1 {
        !hop.close
    } else {
        hop.keep_alive_token && !hop.close
    };
    Ok(RequestInfo {
        framing,
        version,
        // Both framings given (a request smuggling pattern, RFC 9112 §6.1): answered, then
        // the connection closes.
        // and an HTTP/1.0 request with Transfer-Encoding (§6.1).
        keep_alive: keep_alive
            && !(hop.transfer_encoding.is_some() && (length.is_some() || version == 0)),
        expect_continue,
        is_head: method == "HEAD",
        idempotent: matches!(
            method,
            "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
        ),
        upgrade: upgrade.is_some(),
    })
}

/// A backend's response head, as the gateway needs it.
struct ResponseHead {
    /// Bytes of the head in the connection's buffer.
    head_len: usize,
    status: u16,
    framing: Framing,
    /// The connection can take another request once the body has ended.
    reusable: bool,
    /// How much of the head's text (see `parse_response`) is the status, `200 OK`.
    status_len: usize,
}

enum ResponseError {
    /// The connection failed or closed before a whole head came.
    Lost(io::Error),
    /// Not an HTTP/1.x response.
    Invalid(String),
}

/// Reads a backend's response head to `request`; interim responses (1xx) other than `101`
/// are dropped (hyper's client does the same); a `101` is final for an upgrade request and
/// an error for any other.
async fn read_response_head(
    conn: &mut BackendConn,
    request: &RequestInfo,
    text: &mut Vec<u8>,
) -> Result<ResponseHead, ResponseError> {
    loop {
        if !conn.buf.is_empty() {
            match parse_response(&conn.buf, request.is_head, text) {
                Ok(Some(head)) if (100..200).contains(&head.status) && head.status != 101 => {
                    conn.buf.advance(head.head_len);
                    continue;
                }
                Ok(Some(head)) if head.status == 101 && !request.upgrade => {
                    return Err(ResponseError::Invalid(
                        "101 Switching Protocols to a request without Upgrade".into(),
                    ));
                }
                Ok(Some(head)) => return Ok(head),
                Ok(None) if conn.buf.len() >= MAX_HEAD => {
                    return Err(ResponseError::Invalid(
                        "response head larger than 64 KiB".into(),
                    ));
                }
                Ok(None) => {}
                Err(error) => return Err(ResponseError::Invalid(error)),
            }
        }
        conn.buf.reserve(READ_SIZE);
        match conn.stream.read_buf(&mut conn.buf).await {
            Ok(0) if conn.buf.is_empty() => {
                return Err(ResponseError::Lost(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                )));
            }
            Ok(0) => {
                return Err(ResponseError::Invalid(
                    "connection closed in a response head".into(),
                ));
            }
            Ok(_) => {}
            Err(error) if conn.buf.is_empty() => return Err(ResponseError::Lost(error)),
            Err(error) => return Err(ResponseError::Invalid(error.to_string())),
        }
    }
}

/// Parses the response head at the start of `buf`; `Ok(None)`: not complete yet. `text`
/// (the connection's, reused: no allocation per response) gets the head written again for
/// the client: the status (`200 OK`), then the fields without the framing and `Connection`
/// (added per client), without the final empty line.
fn parse_response(
    buf: &[u8],
    is_head: bool,
    text: &mut Vec<u8>,
) -> Result<Option<ResponseHead>, String> {
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let head_len = match httparse::ParserConfig::default()
        .allow_spaces_after_header_name_in_responses(true)
        .parse_response_with_uninit_headers(&mut response, buf, &mut headers)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(format!("invalid response head: {error}")),
    };
    let status = response.code.unwrap_or_default();
    let version = response.version.unwrap_or(1);
    let hop = Hop::scan(response.headers);
    let Ok(length) = hop.content_length() else {
        return Err("invalid or conflicting Content-Length".into());
    };
    let no_body = is_head || (100..200).contains(&status) || status == 204 || status == 304;
    let framing = if no_body {
        Framing::Empty
    } else {
        match (hop.transfer_encoding, length) {
            (Some(value), _) if last_coding_is_chunked(value) => Framing::Chunked,
            (Some(_), _) | (None, None) => Framing::UntilClose,
            (None, Some(0)) => Framing::Empty,
            (None, Some(n)) => Framing::Length(n),
        }
    };
    // Both framings in a response: the connection is not used again (RFC 9112 §6.3).
    let reusable = version == 1
        && !hop.close
        && framing != Framing::UntilClose
        && !(hop.transfer_encoding.is_some() && length.is_some());
    text.clear();
    text.extend_from_slice(itoa3(status).as_slice());
    text.push(b' ');
    text.extend_from_slice(response.reason.unwrap_or_default().as_bytes());
    let status_len = text.len();
    let fields = text;
    let mut has_date = false;
    for header in response.headers.iter() {
        let name = header.name.as_bytes();
        if status == 101 && name.eq_ignore_ascii_case(b"upgrade") {
            // The protocol switched to, for the client (`Connection: upgrade` is added).
            push_header(fields, name, header.value);
            continue;
        }
        if framing == Framing::UntilClose && name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Codings other than chunked: the body is passed on as it comes, still coded, so
            // the field that says how stays.
            push_header(fields, name, header.value);
            continue;
        }
        if hop.drops(name, header.value) {
            continue;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        if name.eq_ignore_ascii_case(b"date") {
            has_date = true;
        }
        push_header(fields, name, header.value);
    }
    if !has_date {
        push_date(fields);
    }
    // A HEAD or 304 response's length describes the body it would have had: it is kept.
    match (framing, length) {
        (Framing::Length(n), _) => push_length(fields, n),
        (Framing::Empty, Some(n)) if status != 204 && !(100..200).contains(&status) => {
            push_length(fields, n);
        }
        _ => {}
    }
    Ok(Some(ResponseHead {
        head_len,
        status,
        framing,
        reusable,
        status_len,
    }))
}

/// Writes a response head for the client: its version, the backend's status and fields, the
/// framing (chunked is passed on to HTTP/1.1 clients, decoded for HTTP/1.0 ones) and whether
/// the connection stays.
fn write_response_head(
    response: &ResponseHead,
    text: &[u8],
    info: &RequestInfo,
    keep: bool,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(if info.version == 0 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    let (status, fields) = text.split_at(response.status_len);
    out.extend_from_slice(status);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(fields);
    if response.framing == Framing::Chunked && info.version == 1 {
        push_header(out, b"transfer-encoding", b"chunked");
    }
    if response.status == 101 {
        push_header(out, b"connection", b"upgrade");
    } else if !keep {
        push_header(out, b"connection", b"close");
    } else if info.version == 0 {
        push_header(out, b"connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");
}

/// Closes a client connection as nginx's `lingering_close` does: the write side first, then
/// what the client still sends is read and dropped (up to 1 MiB, for at most 2 s) until it
/// closes too. Closing with unread bytes would make the kernel reset the connection, which
/// can destroy the response before the client has read it.
async fn linger_close(stream: &mut TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut scratch = [0u8; 4096];
    let mut left = 1usize << 20;
    while left > 0 {
        match tokio::time::timeout_at(deadline, stream.read(&mut scratch)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => return,
        }
    }
}

/// Writes a response of the gateway's own (plain text).
async fn write_local(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    status: StatusCode,
    body: &[u8],
    version: u8,
    close: bool,
) -> io::Result<()> {
    out.clear();
    out.extend_from_slice(if version == 0 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    out.extend_from_slice(itoa3(status.as_u16()).as_slice());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    push_header(out, b"content-type", b"text/plain; charset=utf-8");
    push_length(out, body.len() as u64);
    push_date(out);
    if close {
        push_header(out, b"connection", b"close");
    } else if version == 0 {
        push_header(out, b"connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    stream.write_all(out).await
}

/// Why forwarding a body stopped.
enum BodyError {
    /// Reading from the sender failed, or it closed before the body's end.
    Read(io::Error),
    /// Writing to the receiver failed.
    Write(io::Error),
    /// The receiver (a backend) answered before the end of the body.
    Answered,
}

/// Where forwarding one body is: it can stop (a backend's early answer) and go on later.
struct BodyProgress {
    framing: Framing,
    chunked: ChunkedState,
    /// `Length`: bytes still to come.
    remaining: u64,
    /// All of it has been taken from the sender's buffer (what `out` holds may not have been
    /// written yet).
    done: bool,
}

impl BodyProgress {
    fn new(framing: Framing) -> BodyProgress {
        BodyProgress {
            framing,
            chunked: ChunkedState::Size,
            remaining: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            done: false,
        }
    }
}

/// Forwards a body from `from` (its bytes read so far in `buf`) to `to`, after what `out`
/// already holds (the head): in the same write when the body is there already. A chunked
/// body goes on with its size lines written again, or decoded (`decode`, for an HTTP/1.0
/// client). Uses exactly the body's bytes of `buf`; what follows stays there (a pipelined
/// request).
///
/// `answer`: the receiver's read buffer, when the receiver is a backend that may answer
/// before it has read the whole body (a rejected upload, or one that streams its answer as
/// it reads): whenever forwarding waits, the backend is watched too, and what it sends
/// stops the forwarding (`BodyError::Answered`) with `body` and `out` (what is still to be
/// written) where they were, so that it can go on beside the answer.
async fn forward_body(
    from: &mut ReadHalf<'_>,
    buf: &mut BytesMut,
    to: &mut WriteHalf<'_>,
    body: &mut BodyProgress,
    decode: bool,
    out: &mut Vec<u8>,
    mut answer: Option<&mut BytesMut>,
) -> Result<(), BodyError> {
    loop {
        if !body.done {
            body.done = match body.framing {
                Framing::Empty => true,
                Framing::Length(_) => {
                    let n = buf
                        .len()
                        .min(usize::try_from(body.remaining).unwrap_or(usize::MAX));
                    out.extend_from_slice(&buf[..n]);
                    buf.advance(n);
                    body.remaining -= n as u64;
                    body.remaining == 0
                }
                Framing::Chunked => body
                    .chunked
                    .step(buf, out, decode)
                    .map_err(|e| BodyError::Read(io::Error::new(io::ErrorKind::InvalidData, e)))?,
                Framing::UntilClose => {
                    out.extend_from_slice(buf);
                    buf.clear();
                    false
                }
            };
        }
        if body.done || out.len() >= WRITE_SIZE || (!out.is_empty() && buf.is_empty()) {
            match answer.as_deref_mut() {
                None => to.write_all(out).await.map_err(BodyError::Write)?,
                Some(answer) => write_watching(to.as_ref(), out, answer).await?,
            }
            out.clear();
        }
        if body.done {
            return Ok(());
        }
        buf.reserve(READ_SIZE);
        let read = match answer.as_deref_mut() {
            None => from.read_buf(buf).await,
            Some(answer) => loop {
                // Both cancel-safe: a read that lost the race took nothing.
                tokio::select! {
                    read = from.read_buf(buf) => break read,
                    ready = to.as_ref().readable() => {
                        ready.map_err(BodyError::Write)?;
                        check_answer(to.as_ref(), answer)?;
                    }
                }
            },
        };
        match read {
            Ok(0) if body.framing == Framing::UntilClose => return Ok(()),
            Ok(0) => {
                return Err(BodyError::Read(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the end of the body",
                )));
            }
            Ok(_) => {}
            Err(error) => return Err(BodyError::Read(error)),
        }
    }
}

/// Writes `out` to a backend, watching it for an early answer while the write waits; on an
/// answer or an error, what was written is taken off `out`.
async fn write_watching(
    to: &TcpStream,
    out: &mut Vec<u8>,
    answer: &mut BytesMut,
) -> Result<(), BodyError> {
    let mut written = 0;
    let result = loop {
        if written == out.len() {
            break Ok(());
        }
        match to.try_write(&out[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let waited = tokio::select! {
                    ready = to.writable() => ready.map_err(BodyError::Write),
                    ready = to.readable() => match ready {
                        Ok(()) => check_answer(to, answer),
                        Err(error) => Err(BodyError::Write(error)),
                    },
                };
                if let Err(stop) = waited {
                    break Err(stop);
                }
            }
            Err(error) => {
                // A backend that answered and closed: its answer may be there to read.
                break check_answer(to, answer).and(Err(BodyError::Write(error)));
            }
        }
    };
    out.drain(..written);
    result
}

/// Reads what a backend sent while it was being sent a body: `Err(Answered)` once a final
/// response has begun, an error if it closed, `Ok` if nothing was there after all or only
/// interim responses (`100 Continue` a backend sends unasked), which are dropped.
fn check_answer(to: &TcpStream, answer: &mut BytesMut) -> Result<(), BodyError> {
    answer.reserve(READ_SIZE);
    match to.try_read_buf(answer) {
        Ok(0) if answer.is_empty() => {
            return Err(BodyError::Write(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the backend closed the connection before the end of the request body",
            )));
        }
        Ok(0) => return Err(BodyError::Answered),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
        Err(error) => return Err(BodyError::Write(error)),
    }
    if answer.len() > MAX_HEAD {
        return Err(BodyError::Answered);
    }
    // `HTTP/1.1 1xx`: an interim response, dropped once whole; anything else is the answer.
    while answer.len() >= 12 {
        if answer[9] != b'1' || &answer[9..12] == b"101" {
            return Err(BodyError::Answered);
        }
        match parse_response(answer, false, &mut Vec::new()) {
            Ok(Some(interim)) => answer.advance(interim.head_len),
            Ok(None) => return Ok(()),
            Err(_) => return Err(BodyError::Answered),
        }
    }
    Ok(())
}

/// Where a chunked body is (RFC 9112 §7.1).
enum ChunkedState {
    /// At a chunk-size line.
    Size,
    /// In a chunk's data, with this many bytes left.
    Data(u64),
    /// At the CRLF after a chunk's data.
    DataEnd,
    /// In the trailer section (after the last chunk).
    Trailers,
}

impl ChunkedState {
    /// Moves what `buf` holds of the body to `out` (as it is, or only the data if
    /// `decode`); `Ok(true)` once the body has ended.
    fn step(
        &mut self,
        buf: &mut BytesMut,
        out: &mut Vec<u8>,
        decode: bool,
    ) -> Result<bool, &'static str> {
        loop {
            match self {
                ChunkedState::Size => {
                    let Some(line) = crlf_line(buf, 4096, "chunk size line")? else {
                        return Ok(false);
                    };
                    let size = chunk_size(&buf[..line])?;
                    // Written again, extensions dropped: the backend reads the very framing
                    // the gateway read, whatever its own parser tolerates.
                    if !decode {
                        push_hex(out, size);
                    }
                    buf.advance(line + 2);
                    *self = if size == 0 {
                        ChunkedState::Trailers
                    } else {
                        ChunkedState::Data(size)
                    };
                }
                ChunkedState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(false);
                    }
                    let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&buf[..n]);
                    buf.advance(n);
                    *left -= n as u64;
                    if *left == 0 {
                        *self = ChunkedState::DataEnd;
                    }
                }
                ChunkedState::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(false);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("chunk data not followed by CRLF");
                    }
                    if !decode {
                        out.extend_from_slice(b"\r\n");
                    }
                    buf.advance(2);
                    *self = ChunkedState::Size;
                }
                ChunkedState::Trailers => {
                    let Some(line) = crlf_line(buf, MAX_HEAD, "trailer field")? else {
                        return Ok(false);
                    };
                    if line != 0 && !is_field_line(&buf[..line]) {
                        return Err("invalid trailer field");
                    }
                    if !decode {
                        out.extend_from_slice(&buf[..line + 2]);
                    }
                    buf.advance(line + 2);
                    if line == 0 {
                        return Ok(true);
                    }
                }
            }
        }
    }
}

/// The length of the line at the start of `buf` without its CRLF, `None` if it has not all
/// come yet; a bare LF or CR, or a line longer than `max`, is an error (RFC 9112 §2.2: a
/// proxy must not pass on what a lenient recipient could frame otherwise).
fn crlf_line(buf: &[u8], max: usize, what: &'static str) -> Result<Option<usize>, &'static str> {
    let Some(lf) = buf.iter().take(max + 2).position(|&b| b == b'\n') else {
        return if buf.len() > max + 1 {
            Err(what)
        } else {
            Ok(None)
        };
    };
    if lf == 0 || buf[lf - 1] != b'\r' || buf[..lf - 1].contains(&b'\r') {
        return Err("line not ended by CRLF in a chunked body");
    }
    Ok(Some(lf - 1))
}

/// A chunk size line's size: 1 to 16 hex digits, then optionally `;` and extensions (with
/// optional white space before it) made of visible characters, spaces and tabs.
fn chunk_size(line: &[u8]) -> Result<u64, &'static str> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err("invalid chunk size");
    }
    let rest = line[digits..].trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';')
        || !rest
            .iter()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err("invalid chunk size");
    }
    let size = line[..digits].iter().fold(0u64, |n, &d| {
        n << 4 | u64::from(char::from(d).to_digit(16).unwrap_or(0))
    });
    Ok(size)
}

/// Whether a trailer line is `name: value` (a token, then visible characters, spaces, tabs).
fn is_field_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    colon > 0
        && line[..colon].iter().all(tchar)
        && line[colon + 1..]
            .iter()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

fn push_hex(out: &mut Vec<u8>, n: u64) {
    let digits = if n == 0 {
        1
    } else {
        (64 - n.leading_zeros()).div_ceil(4)
    };
    for i in (0..digits).rev() {
        out.push(b"0123456789abcdef"[((n >> (i * 4)) & 0xf) as usize]);
    }
    out.extend_from_slice(b"\r\n");
}

/// The hop-by-hop headers of one message (RFC 9110 §7.6.1) and its framing fields.
#[derive(Default)]
struct Hop<'a> {
    /// `Connection: close`.
    close: bool,
    /// `Connection: keep-alive` (HTTP/1.0).
    keep_alive_token: bool,
    /// Other names listed in `Connection`: headers of this connection only.
    named: Vec<&'a [u8]>,
    transfer_encoding: Option<&'a [u8]>,
    /// `Connection: upgrade` and the `Upgrade` field's value: a protocol switch asked for
    /// (a request) or made (a `101` response).
    upgrade_token: bool,
    upgrade: Option<&'a [u8]>,
    /// `Content-Length` values, `None` if there is none; an error if two differ.
    content_length: Option<Result<u64, ()>>,
}

impl<'a> Hop<'a> {
    fn scan(headers: &[httparse::Header<'a>]) -> Hop<'a> {
        let mut hop = Hop::default();
        for header in headers {
            let name = header.name.as_bytes();
            if name.eq_ignore_ascii_case(b"connection") {
                if is_close_or_keep_alive(header.value) {
                    hop.connection_token(header.value);
                } else {
                    for token in header.value.split(|&b| b == b',') {
                        let token = token.trim_ascii();
                        if is_close_or_keep_alive(token) {
                            hop.connection_token(token);
                        } else if token.eq_ignore_ascii_case(b"upgrade") {
                            hop.upgrade_token = true;
                        } else if !token.is_empty() {
                            hop.named.push(token);
                        }
                    }
                }
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                hop.upgrade = Some(header.value);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                // Several fields are one list; the last coding counts.
                hop.transfer_encoding = Some(header.value);
            } else if name.eq_ignore_ascii_case(b"content-length") {
                let value = parse_length(header.value);
                hop.content_length = match (hop.content_length, value) {
                    (None, value) => Some(value),
                    (Some(Ok(a)), Ok(b)) if a == b => Some(Ok(a)),
                    _ => Some(Err(())),
                };
            }
        }
        hop
    }

    fn connection_token(&mut self, token: &[u8]) {
        if token.eq_ignore_ascii_case(b"close") {
            self.close = true;
        } else {
            self.keep_alive_token = true;
        }
    }

    /// The protocols an HTTP/1.1 message switches to (`Connection: upgrade` with `Upgrade`).
    fn upgrade(&self) -> Option<&'a [u8]> {
        self.upgrade.filter(|_| self.upgrade_token)
    }

    fn content_length(&self) -> Result<Option<u64>, ()> {
        self.content_length.transpose()
    }

    /// Whether a field is not forwarded: hop-by-hop, or named by `Connection`; `TE:
    /// trailers` stays (gRPC needs it).
    fn drops(&self, name: &[u8], value: &[u8]) -> bool {
        let hop_by_hop = [
            b"connection".as_slice(),
            b"keep-alive",
            b"proxy-connection",
            b"transfer-encoding",
            b"upgrade",
        ];
        if hop_by_hop.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            return true;
        }
        if name.eq_ignore_ascii_case(b"te") {
            return !value.eq_ignore_ascii_case(b"trailers");
        }
        self.named.iter().any(|n| name.eq_ignore_ascii_case(n))
    }
}

/// A `Content-Length` value: digits only (a list of equal values is accepted, RFC 9110
/// §8.6).
fn parse_length(value: &[u8]) -> Result<u64, ()> {
    let mut length = None;
    for part in value.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return Err(());
        }
        let n = part.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        match length {
            Some(previous) if previous != n => return Err(()),
            _ => length = Some(n),
        }
    }
    length.ok_or(())
}

fn last_coding_is_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn push_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"content-length: ");
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

/// A status code's three digits.
fn itoa3(status: u16) -> [u8; 3] {
    let s = status.min(999);
    [
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ]
}

/// Appends `date: <now>` (RFC 9110 §6.6.1: a recipient forwarding a response without one
/// adds it), formatted once a second per thread.
fn push_date(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    thread_local! {
        static DATE: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let now = jiff::Timestamp::now();
    DATE.with_borrow_mut(|(second, text)| {
        if *second != now.as_second() {
            *second = now.as_second();
            *text = jiff::fmt::rfc2822::DateTimePrinter::new()
                .timestamp_to_rfc9110_string(&now)
                .unwrap_or_default();
        }
        push_header(out, b"date", text.as_bytes());
    });
}

/// A client connection handed to hyper with the bytes this path had read from it already.
struct Prefixed {
    prefix: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_body_is_passed_on_or_decoded_and_what_follows_stays() {
        let body = b"4;ext=1\r\nRust\r\n3 ; a=\"b c\"\r\n ok\r\n0\r\nX-Trailer: 1\r\n\r\nGET / HTTP/1.1\r\n";
        for decode in [false, true] {
            // Fed one byte at a time: every split point is a partial read.
            let mut state = ChunkedState::Size;
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            let mut ended_at = None;
            for (i, &b) in body.iter().enumerate() {
                buf.extend_from_slice(&[b]);
                if state.step(&mut buf, &mut out, decode).unwrap() {
                    ended_at = Some(i);
                    break;
                }
            }
            let end = body.len() - b"GET / HTTP/1.1\r\n".len();
            assert_eq!(ended_at, Some(end - 1));
            assert_eq!(buf.len(), 0);
            if decode {
                assert_eq!(out, b"Rust ok");
            } else {
                // Size lines written again (extensions dropped), trailers as they came.
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    "4\r\nRust\r\n3\r\n ok\r\n0\r\nX-Trailer: 1\r\n\r\n"
                );
            }
        }
        // What a lenient backend could frame otherwise is refused, not passed on.
        for bad in [
            &b"zz\r\n"[..],
            b"2\r\nabX\r\n",
            b"2;\nxx\r\n",
            b"\r\n",
            b"2\n",
            b"2\r\r\n",
            b"12345678901234567\r\n",
            b"2;a\x01b\r\n",
            b"0\r\nX-T: 1\n\r\n",
            b"0\r\nnot a field\r\n\r\n",
            b"0\r\n\n",
        ] {
            let mut state = ChunkedState::Size;
            let mut buf = BytesMut::from(bad);
            let mut out = Vec::new();
            let mut result = state.step(&mut buf, &mut out, false);
            // A body that is fine so far must then fail on its next step.
            while result == Ok(false) && !buf.is_empty() {
                result = state.step(&mut buf, &mut out, false);
                if result == Ok(false) {
                    break;
                }
            }
            assert!(
                result.is_err(),
                "{:?} gave {result:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut out = Vec::new();
        push_hex(&mut out, 0);
        push_hex(&mut out, 0x1a2b);
        push_hex(&mut out, u64::MAX);
        assert_eq!(out, b"0\r\n1a2b\r\nffffffffffffffff\r\n");
    }

    #[test]
    fn a_blank_line_is_found_with_either_line_ending() {
        assert!(has_blank_line(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(has_blank_line(b"GET / HTTP/1.1\nHost: a\n\n"));
        assert!(has_blank_line(b"\n\r\n"));
        assert!(!has_blank_line(b"GET / HTTP/1.1\r\nHost: a\r\n\r"));
        assert!(!has_blank_line(b"GET / HTTP/1.1\r\nHost: a\r\n"));
        assert!(!has_blank_line(b""));
    }

    #[test]
    fn content_length_values_are_digits_and_equal_duplicates_only() {
        assert_eq!(parse_length(b"42"), Ok(42));
        assert_eq!(parse_length(b"42, 42"), Ok(42));
        assert_eq!(parse_length(b"42, 43"), Err(()));
        assert_eq!(parse_length(b"-1"), Err(()));
        assert_eq!(parse_length(b"+1"), Err(()));
        assert_eq!(parse_length(b""), Err(()));
        assert_eq!(parse_length(b"99999999999999999999"), Err(()));
    }

    fn rewrite(raw: &[u8]) -> Result<(String, RequestInfo), u16> {
        let client = Client::new("127.0.0.9".parse().unwrap());
        let mut head = Vec::new();
        match parse_request(raw, &client, &mut head) {
            Some(Ok((len, info))) => {
                assert_eq!(len, raw.len());
                Ok((String::from_utf8(head).unwrap(), info))
            }
            Some(Err(Rejected(status, _))) => Err(status.as_u16()),
            None => panic!("incomplete head"),
        }
    }

    #[test]
    fn a_request_head_is_written_again_with_only_hop_by_hop_fields_changed() {
        let (head, info) = rewrite(
            b"POST /a?b=1 HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive, X-Secret\r\n\
              X-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\n\
              X-Forwarded-For: 10.1.2.3\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\
              Accept: */*\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            head,
            "POST /a?b=1 HTTP/1.1\r\nHost: svc\r\nTE: trailers\r\nAccept: */*\r\n\
             content-length: 5\r\nx-forwarded-for: 10.1.2.3, 127.0.0.9\r\n"
        );
        assert_eq!(info.framing, Framing::Length(5));
        assert!(info.keep_alive && info.expect_continue && !info.idempotent);
    }

    #[test]
    fn request_framing_and_keep_alive_follow_rfc_9112() {
        let (head, info) = rewrite(
            b"GET http://example.test/p?q=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            head,
            "GET /p?q=1 HTTP/1.1\r\nhost: example.test\r\ntransfer-encoding: chunked\r\n\
             x-forwarded-for: 127.0.0.9\r\n"
        );
        assert_eq!(info.framing, Framing::Chunked);
        let (_, info) = rewrite(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!info.keep_alive && info.version == 0);
        let (_, info) = rewrite(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(info.keep_alive);
        let (_, info) = rewrite(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!info.keep_alive && info.idempotent);
        // Both framings: chunked wins, the connection closes after the answer.
        let (head, info) = rewrite(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
        assert!(!head.contains("content-length"));
        assert!(!info.keep_alive && info.framing == Framing::Chunked);
        assert_eq!(rewrite(b"GET / HTTP/1.1\r\n\r\n").unwrap_err(), 400);
        assert_eq!(
            rewrite(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n").unwrap_err(),
            400
        );
        assert_eq!(
            rewrite(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
                .unwrap_err(),
            501
        );
        let (_, info) = rewrite(
            b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
        assert!(!info.keep_alive);
        assert_eq!(
            rewrite(
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
            )
            .unwrap_err(),
            400
        );
        assert_eq!(
            rewrite(b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap_err(),
            405
        );
        assert_eq!(
            rewrite(b"GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n").unwrap_err(),
            400
        );
    }

    #[test]
    fn response_framing_follows_the_status_and_the_request() {
        let mut text = Vec::new();
        let mut parse = |raw: &[u8], is_head| {
            let head = parse_response(raw, is_head, &mut text).unwrap().unwrap();
            (head, String::from_utf8(text.clone()).unwrap())
        };
        let (r, text) = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nDate: x\r\n\r\n",
            false,
        );
        assert_eq!((r.framing, r.reusable), (Framing::Length(3), true));
        assert_eq!(&text[..r.status_len], "200 OK");
        let (r, text) = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nDate: x\r\n\r\n",
            true,
        );
        assert_eq!(r.framing, Framing::Empty);
        assert!(text.contains("content-length: 3"));
        let (r, _) = parse(b"HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", false);
        assert_eq!(r.framing, Framing::Empty);
        let (r, _) = parse(b"HTTP/1.1 200 OK\r\nDate: x\r\n\r\n", false);
        assert_eq!((r.framing, r.reusable), (Framing::UntilClose, false));
        let (r, text) = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nDate: x\r\n\r\n",
            false,
        );
        assert_eq!((r.framing, r.reusable), (Framing::UntilClose, false));
        assert!(text.contains("Transfer-Encoding: gzip"));
        let (r, text) = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close, X-In\r\nX-In: 1\r\n\r\n",
            false,
        );
        assert_eq!((r.framing, r.reusable), (Framing::Chunked, false));
        let fields = &text[r.status_len..];
        assert!(
            fields.starts_with("date: ") && !fields.contains("X-In"),
            "{fields}"
        );
        let (r, _) = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            false,
        );
        assert_eq!((r.framing, r.reusable), (Framing::Chunked, false));
        assert!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\r\n",
                false,
                &mut Vec::new()
            )
            .is_err()
        );
        let (r, _) = parse(
            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nDate: x\r\n\r\n",
            false,
        );
        assert_eq!((r.framing, r.reusable), (Framing::Empty, false));
        assert!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                false,
                &mut Vec::new()
            )
            .is_err()
        );
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\n", false, &mut Vec::new())
                .unwrap()
                .is_none()
        );
    }
}
