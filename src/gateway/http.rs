//! L7 listeners with hyper: h2c clients, and every client of a listener whose backends speak
//! h2c (HTTP/1.1 clients of HTTP/1.1 backends go the forwarding path of `h1.rs`, which hands a
//! connection over here between requests), each request sent to one endpoint over a pooled
//! connection (HTTP/1.1 keep-alive, or one shared h2c connection per endpoint).
//!
//! A request picks its endpoint, takes an idle connection (or opens one), sends, and returns
//! the connection to the pool when the response body has ended. Requests with idempotent
//! methods whose connect failed go to another endpoint, up to `max_connect_tries`, and so do
//! idempotent requests without a body that a new connection lost before any answer (a
//! backend that accepts and then resets); a request a pooled connection never sent (it
//! closed under us) goes on a fresh one. Other failures answer 502. With only
//! terminating endpoints left (fallback), every request opens a connection that closes after
//! it (`Connection: close`, or an h2c connection released at once).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tracing::debug;

use super::route::{Backend, InFlight, Pick, Route, Tried, display_port};
use super::{ConnCount, Exec, Protocol, connect};

/// Serves one client connection until it closes, the listener is removed or the gateway
/// shuts down (then requests in flight finish and the connection closes).
/// `closed` is the route's (or a child of it). HTTP/1.1 to HTTP/1.1 backends goes the
/// forwarding path of `h1.rs`, which hands h2c clients back to [`serve_io`].
pub(crate) async fn serve(
    route: Arc<Route>,
    stream: TcpStream,
    peer: SocketAddr,
    closed: tokio_util::sync::CancellationToken,
) {
    if route.protocol() == Protocol::Http {
        return super::h1::serve(route, stream, peer, closed).await;
    }
    // Why ignored: Nagle only delays small writes; the connection works either way.
    let _ = stream.set_nodelay(true);
    serve_io(route, stream, peer, closed).await;
}

/// Serves a client connection with hyper (HTTP/1.1 or h2c from the client).
pub(crate) async fn serve_io<I>(
    route: Arc<Route>,
    io: I,
    peer: SocketAddr,
    closed: tokio_util::sync::CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(Exec(route.shared.clone()));
    // `writev(false)`: hyper copies a message's head and body into one buffer and writes it
    // with one `write`, instead of queueing the pieces for `writev`: 3 % fewer instructions
    // per proxied request (BENCHMARKS.md "Instructions per request"); a large body costs one
    // more copy, as in nginx's and HAProxy's buffers.
    builder.http1().timer(TokioTimer::new()).writev(false);
    builder.http2().timer(TokioTimer::new());
    let service = {
        let route = route.clone();
        let client = Arc::new(Client::new(peer.ip()));
        service_fn(move |request| {
            let route = route.clone();
            let client = client.clone();
            async move { Ok::<_, Infallible>(proxy(&route, &client, request).await) }
        })
    };
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = closed.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        debug!(service = %route.key.service, port = %route.key.port_name, %peer, %error, "client connection ended with an error");
    }
}

/// The body of a response to a client: the backend's, or one the gateway wrote.
pub(crate) enum ProxyBody {
    Upstream(UpstreamBody),
    Local(Option<Bytes>),
}

/// A backend's response body. Keeps the request counted in flight until it ends or is
/// dropped; an HTTP/1.1 connection goes back to the pool once the body has ended.
pub(crate) struct UpstreamBody {
    body: Incoming,
    /// The connection, to be pooled when the body ends (HTTP/1.1 only, not in fallback).
    pooled: Option<http1::SendRequest<ReqBody>>,
    max_idle: usize,
    in_flight: InFlight,
}

impl UpstreamBody {
    fn finish(&mut self) {
        if let Some(sender) = self.pooled.take() {
            self.in_flight.0.checkin_h1(sender, self.max_idle);
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // A body without content (HEAD, 204, 304) is never polled; one dropped before its end
        // leaves the connection mid-response, which hyper then closes.
        if self.body.is_end_stream() {
            self.finish();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        match &frame {
            None => this.finish(),
            Some(Ok(_)) if this.body.is_end_stream() => this.finish(),
            Some(Ok(_)) => {}
            Some(Err(_)) => this.pooled = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Upstream(body) => Pin::new(body).poll_frame(cx),
            ProxyBody::Local(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Upstream(body) => body.is_end_stream(),
            ProxyBody::Local(data) => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream(body) => body.size_hint(),
            ProxyBody::Local(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

/// Proxies one request and records its metrics.
async fn proxy(route: &Route, client: &Client, request: Request<Incoming>) -> Response<ProxyBody> {
    let start = Instant::now();
    route.metrics.requests.inc();
    let version = request.version();
    let protocol = route.protocol();
    let mut response = forward(route, protocol, client, request.map(ReqBody::Client)).await;
    route.metrics.latency.observe(start.elapsed().as_secs_f64());
    *response.version_mut() = version;
    response
}

/// Why a try failed.
enum Failure {
    /// Nothing was sent: the connect failed or the new connection closed at once. The request
    /// comes back for another try.
    Connect(String, Box<Request<ReqBody>>),
    /// The request was sent (or partly) and failed before a response; `reused` if on a
    /// pooled connection. `replay` is the request again, for an idempotent request without
    /// a body that went out on a new connection (a backend that accepts and then resets).
    Request {
        error: hyper::Error,
        reused: bool,
        replay: Option<Box<Request<ReqBody>>>,
    },
}

/// The body of a request to a backend: the client's, or none (a replayed request).
pub(crate) enum ReqBody {
    Client(Incoming),
    Empty,
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ReqBody::Client(body) => Pin::new(body).poll_frame(cx),
            ReqBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Client(body) => body.is_end_stream(),
            ReqBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Client(body) => body.size_hint(),
            ReqBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// A copy of a request's head, to send it again without a body.
fn replay_copy(request: &Request<ReqBody>) -> Request<ReqBody> {
    let mut copy = Request::new(ReqBody::Empty);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// What a sent request's error becomes: the request again if it may be replayed.
fn sent_failure(error: hyper::Error, reused: bool, replay: Option<Request<ReqBody>>) -> Failure {
    Failure::Request {
        error,
        reused,
        replay: replay.map(Box::new),
    }
}

/// Sends `request` to an endpoint, each try (after a failed connect, or a replayable request
/// reset) picked from the endpoint set current at that moment.
async fn forward(
    route: &Route,
    protocol: Protocol,
    client: &Client,
    mut request: Request<ReqBody>,
) -> Response<ProxyBody> {
    let h2 = protocol == Protocol::H2c;
    if let Err(message) = prepare(&mut request, client, h2) {
        return local(StatusCode::BAD_REQUEST, Bytes::from(format!("{message}\n")));
    }
    let idempotent = is_idempotent(request.method());
    let replayable = idempotent && request.body().is_end_stream();
    let max_tries = route.shared.config.max_connect_tries;
    let mut tried = Tried::default();
    let mut tries = 0;
    let mut last_error = String::new();
    while let Some(pick) = route.pick_next(client.ip, &tried) {
        let Pick {
            backend,
            fallback,
            in_flight,
            mut dispatch,
        } = pick;
        let backend = &backend;
        tries += 1;
        let sent = if h2 {
            send_h2(route, backend, request, fallback, replayable)
                .await
                .map(|r| (r, None))
        } else {
            send_h1(route, backend, request, fallback, replayable).await
        };
        dispatch.done();
        match sent {
            Ok((mut response, pooled)) => {
                backend.succeeded(route);
                debug!(
                    service = %route.key.service, port = %route.key.port_name,
                    endpoint = %backend.name, status = response.status().as_u16(), tries,
                    "proxied"
                );
                strip_hop_by_hop(response.headers_mut());
                return response.map(|body| {
                    ProxyBody::Upstream(UpstreamBody {
                        body,
                        pooled,
                        max_idle: route.shared.config.max_idle_per_endpoint,
                        in_flight,
                    })
                });
            }
            Err(Failure::Connect(error, returned)) => {
                backend.failed(route, &error);
                request = *returned;
                last_error = backend.failure(format_args!("failed: {error}"));
                if !idempotent || tries >= max_tries {
                    break;
                }
                tried.push(backend.addr);
            }
            Err(Failure::Request {
                error,
                reused,
                replay,
            }) => {
                // A reused connection the backend closed as we sent is the keep-alive race,
                // not a sign of a sick backend.
                if !(reused && error.is_incomplete_message()) {
                    backend.failed(route, &error);
                }
                last_error = backend.failure(format_args!("failed: {}", error_chain(&error)));
                match replay {
                    Some(replay) if tries < max_tries => {
                        request = *replay;
                        tried.push(backend.addr);
                    }
                    _ => break,
                }
            }
        }
    }
    if tries == 0 {
        route.metrics.no_endpoints.inc();
        debug!(service = %route.key.service, port = %route.key.port_name, "no ready endpoints: 503");
        return local(
            StatusCode::SERVICE_UNAVAILABLE,
            route.no_endpoints_body.clone(),
        );
    }
    route.metrics.backend_failed.inc();
    debug!(service = %route.key.service, port = %route.key.port_name, error = %last_error, "502");
    local(
        StatusCode::BAD_GATEWAY,
        Bytes::from(format!(
            "bad gateway: service {} port {}: {last_error}\n",
            route.key.service,
            display_port(&route.key.port_name)
        )),
    )
}

/// Sends `request` over HTTP/1.1: on an idle pooled connection if there is one, else (or if
/// that one closed before sending) on a new connection. Returns the connection to pool
/// once the response has ended, unless in fallback.
async fn send_h1(
    route: &Route,
    backend: &Arc<Backend>,
    mut request: Request<ReqBody>,
    fallback: bool,
    replayable: bool,
) -> Result<(Response<Incoming>, Option<http1::SendRequest<ReqBody>>), Failure> {
    let config = &route.shared.config;
    if fallback {
        request
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    } else if let Some(mut sender) = backend.checkout_h1(config.pool_idle_timeout) {
        match sender.try_send_request(request).await {
            Ok(response) => return Ok((response, Some(sender))),
            Err(mut error) => match error.take_message() {
                Some(returned) => request = returned,
                None => return Err(sent_failure(error.into_error(), true, None)),
            },
        }
    }
    let mut sender = match connect_h1(route, backend).await {
        Ok(sender) => sender,
        Err(error) => return Err(Failure::Connect(error.to_string(), Box::new(request))),
    };
    let replay = replayable.then(|| replay_copy(&request));
    match sender.try_send_request(request).await {
        Ok(response) => Ok((response, (!fallback).then_some(sender))),
        Err(mut error) => match error.take_message() {
            Some(returned) => Err(Failure::Connect(
                error_chain(&error.into_error()),
                Box::new(returned),
            )),
            None => Err(sent_failure(error.into_error(), false, replay)),
        },
    }
}

async fn connect_h1(
    route: &Route,
    backend: &Arc<Backend>,
) -> std::io::Result<http1::SendRequest<ReqBody>> {
    let stream = connect(backend.addr, route.shared.config.connect_timeout).await?;
    // `writev(false)`: see `serve`.
    let (sender, connection) = http1::Builder::new()
        .writev(false)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    let count = ConnCount::new(backend);
    route.shared.spawn(async move {
        // Why ignored: errors reach the request that was on the connection.
        let _ = connection.await;
        drop(count);
    });
    Ok(sender)
}

/// Sends `request` over the backend's shared h2c connection, opening it if needed; in
/// fallback on a connection of its own, released at once so it closes after this stream.
async fn send_h2(
    route: &Route,
    backend: &Arc<Backend>,
    mut request: Request<ReqBody>,
    fallback: bool,
    replayable: bool,
) -> Result<Response<Incoming>, Failure> {
    if !fallback && let Some(mut sender) = backend.checkout_h2() {
        match sender.try_send_request(request).await {
            Ok(response) => return Ok(response),
            Err(mut error) => match error.take_message() {
                Some(returned) => request = returned,
                None => return Err(sent_failure(error.into_error(), true, None)),
            },
        }
    }
    let shared = &route.shared;
    let stream = match connect(backend.addr, shared.config.connect_timeout).await {
        Ok(stream) => stream,
        Err(error) => return Err(Failure::Connect(error.to_string(), Box::new(request))),
    };
    let handshake = http2::Builder::new(Exec(shared.clone()))
        .timer(TokioTimer::new())
        .handshake(TokioIo::new(stream))
        .await;
    let (mut sender, connection) = match handshake {
        Ok(pair) => pair,
        Err(error) => {
            return Err(Failure::Connect(error_chain(&error), Box::new(request)));
        }
    };
    let count = ConnCount::new(backend);
    shared.spawn(async move {
        // Why ignored: errors reach the requests that were on the connection.
        let _ = connection.await;
        drop(count);
    });
    if !fallback {
        backend.share_h2(&sender);
    }
    let replay = replayable.then(|| replay_copy(&request));
    match sender.try_send_request(request).await {
        Ok(response) => Ok(response),
        Err(mut error) => match error.take_message() {
            Some(returned) => Err(Failure::Connect(
                error_chain(&error.into_error()),
                Box::new(returned),
            )),
            None => Err(sent_failure(error.into_error(), false, replay)),
        },
    }
}

/// Makes a client's request fit the backend: hop-by-hop headers dropped, `X-Forwarded-For`
/// appended, HTTP/1.1 in origin form with a `Host`, or HTTP/2 in absolute form. `Host` is
/// kept as the client sent it.
fn prepare(request: &mut Request<ReqBody>, client: &Client, h2: bool) -> Result<(), &'static str> {
    strip_hop_by_hop(request.headers_mut());
    client.append_forwarded_for(request.headers_mut());
    if h2 {
        *request.version_mut() = Version::HTTP_2;
        if request.uri().authority().is_none() {
            let host = request
                .headers()
                .get(header::HOST)
                .ok_or("bad request: no Host header")?;
            let authority = Authority::try_from(host.as_bytes())
                .map_err(|_| "bad request: invalid Host header")?;
            let mut parts = std::mem::take(request.uri_mut()).into_parts();
            parts.scheme = Some(Scheme::HTTP);
            parts.authority = Some(authority);
            if parts.path_and_query.is_none() {
                parts.path_and_query = Some(PathAndQuery::from_static("/"));
            }
            *request.uri_mut() = Uri::from_parts(parts).map_err(|_| "bad request: invalid URI")?;
        }
    } else {
        *request.version_mut() = Version::HTTP_11;
        if let Some(authority) = request.uri().authority() {
            // Absolute form (from an h2c client, or a proxy-style request): the authority
            // becomes the Host if there is none, the request line the path.
            if !request.headers().contains_key(header::HOST) {
                let host = HeaderValue::from_str(authority.as_str())
                    .map_err(|_| "bad request: invalid authority")?;
                request.headers_mut().insert(header::HOST, host);
            }
            let mut parts = std::mem::take(request.uri_mut()).into_parts();
            parts.scheme = None;
            parts.authority = None;
            if parts.path_and_query.is_none() {
                parts.path_and_query = Some(PathAndQuery::from_static("/"));
            }
            *request.uri_mut() = Uri::from_parts(parts).map_err(|_| "bad request: invalid URI")?;
        }
    }
    Ok(())
}

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Drops the headers that describe one connection (RFC 9110 §7.6.1), and those the
/// `Connection` header names; `TE: trailers` stays (gRPC needs it).
///
/// On the path of every request and response, so it looks the headers over once and hashes
/// only what it removes: most messages have none of these but `Connection: keep-alive`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut found = Hop::default();
    for name in headers.keys() {
        if *name == header::CONNECTION {
            found.connection = true;
        } else if *name == KEEP_ALIVE {
            found.keep_alive = true;
        } else if *name == PROXY_CONNECTION {
            found.proxy_connection = true;
        } else if *name == header::TRANSFER_ENCODING {
            found.transfer_encoding = true;
        } else if *name == header::UPGRADE {
            found.upgrade = true;
        } else if *name == header::TE {
            found.te = true;
        }
    }
    if found.connection {
        // A value that is just `close` (names no header) or `keep-alive` (removed below) is
        // the common case: it is compared as it is, not split into tokens.
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter(|v| !is_close_or_keep_alive(v.as_bytes()))
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !is_close_or_keep_alive(t.as_bytes()))
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
        headers.remove(header::CONNECTION);
    }
    if found.keep_alive {
        headers.remove(KEEP_ALIVE);
    }
    if found.proxy_connection {
        headers.remove(PROXY_CONNECTION);
    }
    if found.transfer_encoding {
        headers.remove(header::TRANSFER_ENCODING);
    }
    if found.upgrade {
        headers.remove(header::UPGRADE);
    }
    if found.te
        && headers
            .get(header::TE)
            .is_some_and(|te| !te.as_bytes().eq_ignore_ascii_case(b"trailers"))
    {
        headers.remove(header::TE);
    }
}

pub(crate) fn is_close_or_keep_alive(token: &[u8]) -> bool {
    token.eq_ignore_ascii_case(b"close") || token.eq_ignore_ascii_case(b"keep-alive")
}

/// Which hop-by-hop headers a message has (see [`strip_hop_by_hop`]).
#[derive(Default)]
struct Hop {
    connection: bool,
    keep_alive: bool,
    proxy_connection: bool,
    transfer_encoding: bool,
    upgrade: bool,
    te: bool,
}

/// The peer of a client connection, its address written once as the value it adds to
/// `X-Forwarded-For` (not formatted again for every request).
pub(crate) struct Client {
    pub(crate) ip: IpAddr,
    forwarded_for: HeaderValue,
}

impl Client {
    pub(crate) fn new(ip: IpAddr) -> Client {
        let forwarded_for = HeaderValue::from_maybe_shared(Bytes::from(ip.to_string()))
            .expect("an IP address is a valid header value");
        Client { ip, forwarded_for }
    }

    /// The client's address as `X-Forwarded-For` lists it.
    pub(crate) fn forwarded_for(&self) -> &[u8] {
        self.forwarded_for.as_bytes()
    }

    /// Appends the client to `X-Forwarded-For` (a proxy before us may have started it; a
    /// value that is not text is replaced).
    pub(crate) fn append_forwarded_for(&self, headers: &mut HeaderMap) {
        let value = match headers.get(&X_FORWARDED_FOR).map(HeaderValue::to_str) {
            Some(Ok(previous)) => {
                let mut value =
                    BytesMut::with_capacity(previous.len() + 2 + self.forwarded_for.len());
                value.extend_from_slice(previous.as_bytes());
                value.extend_from_slice(b", ");
                value.extend_from_slice(self.forwarded_for.as_bytes());
                match HeaderValue::from_maybe_shared(value.freeze()) {
                    Ok(value) => value,
                    Err(_) => return,
                }
            }
            _ => self.forwarded_for.clone(),
        };
        headers.insert(X_FORWARDED_FOR, value);
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// A response the gateway writes itself, as plain text.
fn local(status: StatusCode, body: Bytes) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::Local(Some(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// An error with its sources, `a: b: c`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
