//! Sending the request: Go's `http.Client.Do` with the kubelet's redirect policy
//! (`RedirectChecker(false)`), over a transport like the kubelet's (no proxy, no connection
//! reuse, TLS without verification).
//!
//! Each request gets its own TCP connection, closed when the response has been read (keep-alives
//! disabled, `Connection: close`). The connection is driven inside the caller's task, never
//! spawned, so dropping the future closes the connection.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, HOST, HeaderMap, HeaderName, HeaderValue, LOCATION, USER_AGENT};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::error::{BodyError, Cause, HttpGetError};
use super::request::{Header, Prepared};
use super::tls::{self, Sniff, lowercase_first};
use super::url::GoUrl;
use super::{HttpGetResponse, MAX_BODY_BYTES};

/// Go's default redirect limit: the tenth redirect response is not followed.
const MAX_REDIRECTS: usize = 10;

/// Headers Go never copies from `req.Header` onto the wire (`reqWriteExcludeHeader`); Host
/// and User-Agent are written separately.
const EXCLUDED_HEADERS: [&str; 5] = [
    "Host",
    "User-Agent",
    "Content-Length",
    "Transfer-Encoding",
    "Trailer",
];

/// Go's `http.Client.Do` for one prepared request: follows same-host redirects, at most
/// [`MAX_REDIRECTS`], and reads at most [`MAX_BODY_BYTES`] of the final body.
pub(super) async fn do_request(
    prepared: &Prepared,
    deadline: Option<Instant>,
) -> Result<HttpGetResponse, HttpGetError> {
    let mut url = prepared.url.clone();
    let mut url_string = prepared.url_string.clone();
    let mut host = prepared.host.clone();
    let mut header = prepared.header.clone();
    // The URLs of the requests sent so far (Go's `via`).
    let mut via: Vec<GoUrl> = Vec::new();
    loop {
        via.push(url.clone());
        let exchange =
            send(&url, &host, &header, deadline)
                .await
                .map_err(|(cause, timed_out)| HttpGetError::Request {
                    url: url_string.clone(),
                    cause,
                    timed_out,
                })?;

        let status = exchange.status;
        let location = exchange.location.clone().unwrap_or_default();
        // Go follows 301, 302, 303, 307 and 308, and only when a Location is given.
        if !matches!(status, 301 | 302 | 303 | 307 | 308) || location.is_empty() {
            return exchange.finish(&url_string, deadline).await;
        }

        let reference = GoUrl::parse(&location);
        let next = match &reference {
            Ok(reference) => url.resolve(reference),
            Err(reason) => {
                return Err(HttpGetError::Request {
                    url: url_string,
                    cause: Cause::BadLocation {
                        location,
                        reason: reason.clone(),
                    },
                    timed_out: false,
                });
            }
        };
        // Go keeps a custom Host only through relative redirects.
        let next_host = match &reference {
            Ok(reference)
                if !prepared.host.is_empty()
                    && prepared.host != prepared.url.host
                    && !reference.is_abs() =>
            {
                prepared.host.clone()
            }
            _ => String::new(),
        };
        // Headers come from the first request; sensitive ones would be dropped for another
        // domain, but such redirects are never followed (below).
        let mut next_header = prepared.header.clone();
        let referer = referer_for(&url, &next, next_header.get("Referer").unwrap_or_default());
        if !referer.is_empty() {
            next_header.set("Referer", &referer);
        }

        // The kubelet's `RedirectChecker(false)`, used by probes and hooks alike.
        if next.hostname() != via[0].hostname() {
            // Go's `http.ErrUseLastResponse`: the redirect itself is the response.
            return exchange.finish(&url_string, deadline).await;
        }
        if via.len() >= MAX_REDIRECTS {
            return Err(HttpGetError::Request {
                url: location,
                cause: Cause::TooManyRedirects,
                timed_out: false,
            });
        }
        drop(exchange);
        url_string = next.to_string();
        url = next;
        host = next_host;
        header = next_header;
    }
}

/// Go's `refererForURL`: the previous URL, unless that would leak an HTTPS URL to HTTP or
/// the caller set a Referer.
fn referer_for(last: &GoUrl, next: &GoUrl, explicit: &str) -> String {
    if last.scheme == "https" && next.scheme == "http" {
        return String::new();
    }
    if !explicit.is_empty() {
        return explicit.to_owned();
    }
    let mut last = last.clone();
    last.user = None;
    last.to_string()
}

/// One request/response on its own connection, the response header received.
struct Exchange {
    /// The response status code.
    status: u16,
    /// The response's Location header, if any.
    location: Option<String>,
    /// The response body, read lazily.
    body: Incoming,
    /// The connection that delivers the body.
    driver: Driver,
}

impl Exchange {
    /// Reads at most [`MAX_BODY_BYTES`] of the body and closes the connection.
    async fn finish(
        mut self,
        url: &str,
        deadline: Option<Instant>,
    ) -> Result<HttpGetResponse, HttpGetError> {
        let mut body = BytesMut::new();
        let mut failure = None;
        while body.len() < MAX_BODY_BYTES {
            match until(deadline, self.driver.drive(self.body.frame())).await {
                None => {
                    failure = Some(BodyError::Timeout);
                    break;
                }
                Some(None) => break,
                Some(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        body.extend_from_slice(&data);
                    }
                }
                Some(Some(Err(error))) => {
                    failure = Some(self.driver.body_error(&error));
                    break;
                }
            }
        }
        // Read at most the limit and stop there; more is not an error (upstream's
        // `ReadAtMost` reports it as a non-fatal truncation).
        body.truncate(MAX_BODY_BYTES);
        let response = HttpGetResponse {
            status: self.status,
            body: body.freeze(),
            location: self.location,
            fell_back_to_http: false,
        };
        match failure {
            None => Ok(response),
            Some(cause) => Err(HttpGetError::Body {
                url: url.to_owned(),
                response: Box::new(response),
                cause,
            }),
        }
    }
}

/// Sends one GET for `url` on a new connection and waits for the response header.
/// The error carries whether the deadline fired.
async fn send(
    url: &GoUrl,
    host: &str,
    header: &Header,
    deadline: Option<Instant>,
) -> Result<Exchange, (Cause, bool)> {
    let tls = match url.scheme.as_str() {
        "http" => false,
        "https" => true,
        other => return Err((Cause::UnsupportedScheme(other.to_owned()), false)),
    };
    let request = build_request(url, host, header).map_err(|cause| (cause, false))?;
    if url.host.is_empty() {
        return Err((Cause::NoHost, false));
    }

    let tcp = dial(url, tls, deadline).await?;
    let local = tcp.local_addr().ok();
    let peer = tcp.peer_addr().ok();
    let stream = if tls {
        let handshake = tls::handshake(tcp, url.hostname());
        match until(deadline, handshake).await {
            None => return Err((Cause::DeadlineExceeded, true)),
            Some(Err(cause)) => return Err((cause, false)),
            Some(Ok(stream)) => Stream::Tls(Box::new(stream)),
        }
    } else {
        Stream::Plain(tcp)
    };

    let (mut sender, conn) = http1::Builder::new()
        // Go writes header names in canonical form ("X-Custom-Header").
        .title_case_headers(true)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| (Cause::Transport(lowercase_first(&e.to_string())), false))?;
    let mut driver = Driver {
        conn: Some(Box::pin(conn)),
        conn_error: None,
        local,
        peer,
    };
    let response = match until(deadline, driver.drive(sender.send_request(request))).await {
        None => return Err((Cause::DeadlineExceeded, true)),
        Some(Err(error)) => {
            let cause = Cause::Transport(driver.transport_error(&error));
            return Err((cause, false));
        }
        Some(Ok(response)) => response,
    };
    let (parts, body) = response.into_parts();
    let location = parts
        .headers
        .get(LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    Ok(Exchange {
        status: parts.status.as_u16(),
        location,
        body,
        driver,
    })
}

/// The request as Go's transport writes it: Host, User-Agent, the other headers sorted by
/// name, and `Connection: close` (keep-alives disabled).
fn build_request(
    url: &GoUrl,
    host: &str,
    header: &Header,
) -> Result<http::Request<Empty<Bytes>>, Cause> {
    // Validate every header first, as Go's transport does before dialling.
    let mut entries = Vec::new();
    for (name, values) in header.sorted() {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Cause::InvalidHeaderName(name.to_owned()))?;
        let mut header_values = Vec::with_capacity(values.len());
        for value in values {
            // Go trims spaces and tabs around values when it writes them.
            let value = HeaderValue::from_bytes(value.trim_matches([' ', '\t']).as_bytes())
                .map_err(|_| Cause::InvalidHeaderValue(name.to_owned()))?;
            header_values.push(value);
        }
        entries.push((name, header_name, header_values));
    }

    let mut headers = HeaderMap::new();
    let host = clean_host(if host.is_empty() { &url.host } else { host });
    // `clean_host` leaves only bytes that are valid in a header value.
    let host = HeaderValue::from_str(&host).unwrap_or_else(|_| HeaderValue::from_static(""));
    headers.insert(HOST, host);
    // Go writes only the first User-Agent value, and none when it is empty.
    let user_agent = entries
        .iter()
        .find(|(name, _, _)| *name == "User-Agent")
        .and_then(|(_, _, values)| values.first())
        .filter(|value| !value.is_empty());
    if let Some(user_agent) = user_agent {
        headers.insert(USER_AGENT, user_agent.clone());
    }
    let mut close = false;
    for (name, header_name, values) in entries {
        if EXCLUDED_HEADERS.contains(&name) {
            continue;
        }
        if name == "Connection" {
            close |= values
                .iter()
                .any(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        }
        for value in values {
            headers.append(header_name.clone(), value);
        }
    }
    if !close {
        headers.append(CONNECTION, HeaderValue::from_static("close"));
    }

    let target = url.request_uri();
    let uri: http::Uri = target
        .parse()
        .map_err(|_| Cause::InvalidRequestTarget(target.clone()))?;
    let mut request = http::Request::new(Empty::new());
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Go's Host header rules: an invalid Host is sent empty (not truncated, not an error), and
/// an IPv6 zone is removed.
fn clean_host(host: &str) -> String {
    let valid = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!$%&'()*+,-.:;=[]_~".contains(&b));
    if !valid {
        return String::new();
    }
    // Go's `removeZone`: "[fe80::1%en0]:8080" → "[fe80::1]:8080".
    if host.starts_with('[')
        && let (Some(close), Some(percent)) = (host.rfind(']'), host.rfind('%'))
        && percent < close
    {
        return format!("{}{}", &host[..percent], &host[close..]);
    }
    host.to_owned()
}

/// Resolves the URL's host and connects to the first address that accepts, like Go's dialer
/// (the error is that of the first address).
async fn dial(
    url: &GoUrl,
    tls: bool,
    deadline: Option<Instant>,
) -> Result<TcpStream, (Cause, bool)> {
    let hostname = url.hostname();
    let port = match url.port() {
        "" if tls => 443,
        "" => 80,
        port => port.parse::<u16>().map_err(|_| {
            (
                Cause::InvalidPort {
                    port: port.to_owned(),
                },
                false,
            )
        })?,
    };
    let addrs: Vec<SocketAddr> = match hostname.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => match until(deadline, tokio::net::lookup_host((hostname, port))).await {
            None => {
                let cause = Cause::Lookup {
                    host: hostname.to_owned(),
                    reason: "i/o timeout".to_owned(),
                };
                return Err((cause, true));
            }
            Some(Err(error)) => return Err((lookup_error(hostname, &error), false)),
            Some(Ok(addrs)) => addrs.collect(),
        },
    };
    if addrs.is_empty() {
        return Err((
            lookup_error(hostname, &io::ErrorKind::NotFound.into()),
            false,
        ));
    }
    let mut first_error = None;
    for addr in addrs {
        match until(deadline, TcpStream::connect(addr)).await {
            None => {
                let cause = Cause::Dial {
                    addr: addr.to_string(),
                    reason: "i/o timeout".to_owned(),
                };
                return Err((cause, true));
            }
            Some(Ok(stream)) => {
                // Go's dialer sets TCP_NODELAY; a failure only costs latency.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Some(Err(error)) => {
                first_error.get_or_insert(Cause::Dial {
                    addr: addr.to_string(),
                    reason: format!("connect: {}", errno_text(&error)),
                });
            }
        }
    }
    Err((first_error.unwrap_or(Cause::NoHost), false))
}

/// Go's wording for a failed name lookup.
fn lookup_error(host: &str, error: &io::Error) -> Cause {
    let text = error.to_string();
    let reason = if error.kind() == io::ErrorKind::NotFound
        || text.contains("Name or service not known")
        || text.contains("No address associated")
        || text.contains("nodename nor servname")
    {
        "no such host".to_owned()
    } else if text.contains("Temporary failure in name resolution") {
        "server misbehaving".to_owned()
    } else {
        lowercase_first(&text)
    };
    Cause::Lookup {
        host: host.to_owned(),
        reason,
    }
}

/// An OS error in Go's words: "Connection refused (os error 111)" → "connection refused".
fn errno_text(error: &io::Error) -> String {
    let text = error.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => &text,
    };
    lowercase_first(text)
}

/// Waits for `fut` until `deadline` (forever when there is none); `None` when it passed.
async fn until<F: Future>(deadline: Option<Instant>, fut: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// The HTTP/1.1 connection of one exchange.
type Connection = http1::Connection<TokioIo<Stream>, Empty<Bytes>>;

/// Drives a connection while the exchange waits for its response and body, in the same task.
struct Driver {
    /// The connection, until it finished.
    conn: Option<Pin<Box<Connection>>>,
    /// The error the connection finished with, if any.
    conn_error: Option<hyper::Error>,
    /// Local address of the TCP connection, for Go-like read errors.
    local: Option<SocketAddr>,
    /// Remote address of the TCP connection, for Go-like read errors.
    peer: Option<SocketAddr>,
}

impl Driver {
    /// Polls `fut` to completion while polling the connection.
    async fn drive<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = pin!(fut);
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return fut.await;
            };
            tokio::select! {
                biased;
                out = &mut fut => return out,
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        self.conn_error = Some(error);
                    }
                    // Dropping the finished connection releases whatever still waits on it.
                    self.conn = None;
                }
            }
        }
    }

    /// Go's text for an error while awaiting the response header.
    fn transport_error(&self, error: &hyper::Error) -> String {
        // A request that was cancelled because the connection failed: report the failure.
        let error = match &self.conn_error {
            Some(conn_error) if error.is_canceled() || error.is_closed() => conn_error,
            _ => error,
        };
        if let Some(text) = self.io_error_text(error) {
            return text;
        }
        if error.is_incomplete_message() || error.is_canceled() || error.is_closed() {
            return "EOF".to_owned();
        }
        if error.is_parse() || error.is_parse_status() || error.is_parse_too_large() {
            return format!(
                "net/http: HTTP/1.x transport connection broken: malformed HTTP response ({error})"
            );
        }
        lowercase_first(&error.to_string())
    }

    /// Go's error for a body that could not be read to its end.
    fn body_error(&self, error: &hyper::Error) -> BodyError {
        // A body cut short reads as Go's `io.ErrUnexpectedEOF`, whichever way hyper saw it.
        let io_eof = std::error::Error::source(error)
            .and_then(|e| e.downcast_ref::<io::Error>())
            .is_some_and(|e| e.kind() == io::ErrorKind::UnexpectedEof);
        if error.is_incomplete_message() || io_eof {
            return BodyError::UnexpectedEof;
        }
        if let Some(text) = self.io_error_text(error) {
            return BodyError::Transport(text);
        }
        BodyError::Transport(lowercase_first(&error.to_string()))
    }

    /// Go's text for an I/O error under a hyper error (`read tcp a->b: read: …`), if any.
    fn io_error_text(&self, error: &hyper::Error) -> Option<String> {
        let mut source: Option<&(dyn std::error::Error + 'static)> =
            std::error::Error::source(error);
        while let Some(current) = source {
            if let Some(tls) = current.downcast_ref::<rustls::Error>() {
                return Some(format!("tls: {}", lowercase_first(&tls.to_string())));
            }
            if let Some(io) = current.downcast_ref::<io::Error>() {
                if let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                    return Some(format!("tls: {}", lowercase_first(&tls.to_string())));
                }
                if io.kind() == io::ErrorKind::UnexpectedEof {
                    return Some("EOF".to_owned());
                }
                let addrs = match (self.local, self.peer) {
                    (Some(local), Some(peer)) => format!(" {local}->{peer}"),
                    _ => String::new(),
                };
                return Some(format!("read tcp{addrs}: read: {}", errno_text(io)));
            }
            source = current.source();
        }
        None
    }
}

/// A plain or TLS connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<Sniff<TcpStream>>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
